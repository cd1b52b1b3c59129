"""RQ job functions. Each takes ids, runs in a fresh app context, and is safe to run twice."""

from __future__ import annotations

from functools import wraps

from flask import current_app, has_app_context

from mailer.db import session
from mailer.models import Officer


def _app():
    if has_app_context():
        return current_app._get_current_object()
    from mailer import create_app

    return create_app()


def job(fn):
    """Run `fn` inside its own app context (its own database session)."""

    @wraps(fn)
    def wrapped(*args, **kwargs):
        with _app().app_context():
            return fn(*args, **kwargs)

    return wrapped


@job
def send_password_reset(officer_id: int) -> str:
    """Email an officer a signed, expiring link to set a new password."""
    from mailer.officers import service

    officer = session.get(Officer, officer_id)
    if officer is None or not officer.active:
        return "skipped"
    service.send_reset_email(officer)
    return "sent"


@job
def start_campaign(campaign_id: int) -> str:
    """Snapshot a campaign's recipients and fan out its batch jobs (once, whenever it runs)."""
    from mailer.sending import campaigns

    return campaigns.start(campaign_id)


@job
def send_batch(campaign_id: int, batch_no: int, outage: int = 0) -> dict:
    """Send what is left of one batch of a campaign (`outage`: runs in a row that found the relay away)."""
    from mailer.sending import batch

    return batch.send_batch(campaign_id, batch_no, outage)


@job
def reconcile() -> dict:
    """Rebuild the queue from the database (after a Redis flush or a restart)."""
    from mailer import queue

    return queue.reconcile_all()


@job
def process_inbound(message_id: int) -> str:
    """Parse, classify, match and thread one stored inbound message."""
    from mailer.inbound import process

    return process.process(message_id)


@job
def process_inbound_batch(message_ids: list[int]) -> dict:
    """Process several stored inbound messages as one job and one transaction (each message in a
    savepoint of its own: see process.process_many)."""
    from mailer.inbound import process

    outcomes = process.process_many(message_ids)
    session.expunge_all()  # committed: keep the identity map small for the worker's next job
    return outcomes


@job
def send_reply(reply_id: int) -> str:
    """Send an officer's reply from the correspondence log (after the commit that recorded it)."""
    from mailer.inbound import correspondence

    return correspondence.send_reply(reply_id)


@job
def send_meeting_reminder(meeting_id: int, sequence: int) -> str:
    """Remind entitled members who have not sent apologies (for this version of the meeting)."""
    from mailer.meetings import service

    return service.send_reminder(meeting_id, sequence)


@job
def apply_retention() -> dict:
    """Delete what is older than the retention periods (counts only in the audit log)."""
    from mailer import retention

    return retention.run().as_dict()
