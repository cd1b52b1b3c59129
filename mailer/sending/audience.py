"""Before a mass send: who will receive it, who will not and why, one real recipient to preview
as, and a confirmation token that ties the officer's "yes" to exactly what they saw.

Every send to more than one member (a campaign, a meeting's notice or update, its reminder, the
minutes) is confirmed through these rules; the views only show what they say.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import case, exists, func, not_, or_, select

from mailer import scope
from mailer.db import session
from mailer.members import segments
from mailer.models import Campaign, EmailHealth, Member, MemberStatus, Officer, Stream, Suppression

# Why a member the filters pick is not sent the email, in the order the reasons are checked (a
# member is counted once, under the first reason that applies). The words are the officer's.
REASONS = {
    "no_email": "no email address",
    "resigned": "resigned",
    "suppressed": "address suppressed (a hard bounce, a complaint, or they asked not to be emailed)",
    "on_hold": "address on hold after bounces: correct it on the member's page",
    "no_consent_bulletins": "no consent to bulletins",
    "no_consent_notices": "objected to emailed notices (send these by post)",
}


@dataclass
class Audience:
    """What a mass send will do: counts, exclusions with reasons, and a real recipient."""

    stream: Stream
    members: int                      # members the filters pick, within the officer's scope
    addresses: int                    # distinct addresses the email goes to
    excluded: list[tuple[str, int]] = field(default_factory=list)  # (reason in words, members)
    shared: int = 0                   # reachable members sharing an address with another (sent once)
    sample: Member | None = None      # the first real recipient: the preview is theirs

    @property
    def excluded_total(self) -> int:
        return sum(n for _, n in self.excluded)


def _reason(stream: Stream):
    consent = Member.bulletins_consent.is_(True) if stream is Stream.BULLETINS else Member.notices_consent.is_(True)
    suppressed = exists(select(Suppression.id).where(Suppression.email == func.lower(Member.email),
                                                     Suppression.stream.in_(["all", stream.value])))
    return case(
        (or_(Member.email.is_(None), Member.email == ""), "no_email"),
        (Member.status == MemberStatus.RESIGNED, "resigned"),
        (suppressed, "suppressed"),
        (Member.email_health == EmailHealth.ON_HOLD, "on_hold"),
        (not_(consent), f"no_consent_{stream.value}"),
        else_="ok")


def audience(definition: dict | None, stream: Stream, officer: Officer, branch_id: int | None = None) -> Audience:
    """Who a send to `definition` on `stream` reaches, as the start job will choose them (see
    segments.reachable), within `officer`'s scope and, for a branch's send, that branch. Three
    aggregate queries whatever the membership's size."""
    cleaned = segments.clean(definition)
    picked = select(_reason(stream).label("reason")).where(segments.condition(cleaned))
    recipients = segments.recipients(cleaned, stream, officer)
    if branch_id:
        picked = picked.where(Member.branch_id == branch_id)
        recipients = recipients.where(Member.branch_id == branch_id)
    picked = scope.members(officer, picked).subquery()
    by_reason = dict(session.execute(select(picked.c.reason, func.count()).group_by(picked.c.reason)).all())
    recipients = recipients.subquery()
    addresses, first = session.execute(select(func.count(), func.min(recipients.c.member_id))).one()
    excluded = [(words, by_reason[key]) for key, words in REASONS.items() if by_reason.get(key)]
    return Audience(stream=stream, members=sum(by_reason.values()), addresses=addresses, excluded=excluded,
                    shared=max(0, by_reason.get("ok", 0) - addresses),
                    sample=session.get(Member, first) if first else None)


def campaign_audience(campaign: Campaign, officer: Officer) -> Audience:
    """A campaign's audience (a branch's campaign never leaves its branch, as in the snapshot)."""
    return audience(campaign.segment, campaign.stream, officer, campaign.branch_id)


# --- the confirmation token ---------------------------------------------------------------------

def fingerprint(campaign: Campaign, extra: str = "") -> str:
    """A digest of everything the members will be sent: change any of it and an earlier "yes" no
    longer applies."""
    parts = [campaign.stream.value if campaign.stream else "", campaign.subject or "", campaign.preheader or "",
             campaign.from_name or "", campaign.body_format.value if campaign.body_format else "", campaign.body or "",
             json.dumps(campaign.segment or {}, sort_keys=True), str(campaign.branch_id or ""),
             "|".join(f"{a.filename}:{a.size}" for a in campaign.attachments), extra]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def confirm_token(purpose: str, object_id: int, digest: str, officer: Officer) -> str:
    """The token the confirmation page's form carries: this officer, this send, this content."""
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    message = f"confirm-send\x1f{purpose}\x1f{object_id}\x1f{digest}\x1f{officer.id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def confirmed(token: str | None, purpose: str, object_id: int, digest: str, officer: Officer) -> bool:
    """True when `token` is the confirmation of exactly this send by this officer."""
    return bool(token) and hmac.compare_digest(str(token), confirm_token(purpose, object_id, digest, officer))
