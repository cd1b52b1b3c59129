"""Retention: personal data kept no longer than it is needed (UK GDPR's storage limitation).

What goes, once older than its setting (0 keeps it for ever):
- RETAIN_RAW_INBOUND_DAYS: the raw MIME of inbound messages already processed. What Mailer made
  of them stays (the sender, subject, text, sanitised HTML and attachments): that is the
  correspondence record officers answer and minute. A message in a thread attached to a meeting's
  correspondence is kept whole, raw included, as part of the minutes' papers. Messages whose
  processing failed keep their raw, so they can still be retried. The Message-ID and hash stay,
  so a message delivered again is still recognised.
- RETAIN_DELIVERY_DETAILS_DAYS: the per-recipient rows (address, outcome, error, Message-ID) of
  campaigns that finished sending that long ago. The campaign keeps its totals.

Each run is recorded in the audit log as counts only: never an address or a name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import delete, exists, select, update

from mailer import audit
from mailer.db import session, utcnow
from mailer.models import (AuditEvent, BounceEvent, Campaign, CampaignStatus, CorrespondenceLink, Delivery,
                           InboundMessage, InboundStatus)

CHUNK = 500  # rows changed per statement and transaction: no long lock on a large table


@dataclass
class RetentionResult:
    raw_inbound_emptied: int = 0
    delivery_rows_deleted: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def periods() -> dict[str, int]:
    """The configured periods, in days (0: kept for ever)."""
    cfg = current_app.config
    return {"raw_inbound": int(cfg["RETAIN_RAW_INBOUND_DAYS"]), "delivery_details": int(cfg["RETAIN_DELIVERY_DETAILS_DAYS"])}


def _kept_for_minutes():
    """True for a message whose thread is attached to a meeting's correspondence."""
    return exists().where(CorrespondenceLink.thread_id == InboundMessage.thread_id)


def empty_old_raw(days: int) -> int:
    """Empty the raw MIME of processed messages received more than `days` ago (see the module's rules)."""
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    done = 0
    while True:
        ids = session.scalars(select(InboundMessage.id).where(
            InboundMessage.received_at < cutoff, InboundMessage.status == InboundStatus.PROCESSED,
            InboundMessage.raw != b"", ~_kept_for_minutes())
            .order_by(InboundMessage.id).limit(CHUNK)).all()
        if not ids:
            return done
        session.execute(update(InboundMessage).where(InboundMessage.id.in_(ids)).values(raw=b"")
                        .execution_options(synchronize_session=False))
        session.commit()
        done += len(ids)


def delete_old_deliveries(days: int) -> int:
    """Delete the delivery rows of campaigns sent (finished) more than `days` ago; their totals stay."""
    if days <= 0:
        return 0
    from mailer.sending.campaigns import _store_counts

    cutoff = utcnow() - timedelta(days=days)
    campaigns = session.scalars(select(Campaign.id).where(
        Campaign.status == CampaignStatus.SENT, Campaign.finished_at < cutoff,
        exists().where(Delivery.campaign_id == Campaign.id)).order_by(Campaign.id)).all()
    done = 0
    for campaign_id in campaigns:
        if session.scalar(select(Campaign.counts).where(Campaign.id == campaign_id)) is None:
            _store_counts(campaign_id)  # the totals outlive the rows
        while True:
            ids = session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign_id).limit(CHUNK)).all()
            if not ids:
                break
            # The links to these rows go with them (the databases' ON DELETE SET NULL, said here too).
            session.execute(update(InboundMessage).where(InboundMessage.delivery_id.in_(ids)).values(delivery_id=None)
                            .execution_options(synchronize_session=False))
            session.execute(update(BounceEvent).where(BounceEvent.delivery_id.in_(ids)).values(delivery_id=None)
                            .execution_options(synchronize_session=False))
            session.execute(delete(Delivery).where(Delivery.id.in_(ids)).execution_options(synchronize_session=False))
            session.commit()
            done += len(ids)
    return done


def last_run() -> AuditEvent | None:
    """The audit entry of the latest retention run, if any."""
    return session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.run")
                           .order_by(AuditEvent.id.desc()).limit(1)).first()


def run() -> RetentionResult:
    """Apply every retention period now; record the counts in the audit log. Safe to run any time.
    Not committed: the job or the command commits."""
    days = periods()
    result = RetentionResult(empty_old_raw(days["raw_inbound"]), delete_old_deliveries(days["delivery_details"]))
    audit.record("retention.run", "retention", None, changes=result.as_dict(), actor=audit.SYSTEM,
                 note=f"periods in days: raw inbound {days['raw_inbound']}, delivery details {days['delivery_details']}")
    return result


# --- `mailer retention` ---------------------------------------------------------------------

@click.group("retention", help="Delete personal data older than the retention periods.")
def retention_cli() -> None:
    pass


@retention_cli.command("run")
@with_appcontext
def run_command() -> None:
    """Apply the retention periods now (what the daily job does)."""
    result = run()
    session.commit()
    days = periods()
    click.echo(f"Raw inbound messages emptied: {result.raw_inbound_emptied} (older than {days['raw_inbound']} days)")
    click.echo(f"Delivery rows deleted: {result.delivery_rows_deleted} (older than {days['delivery_details']} days)")
