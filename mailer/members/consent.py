"""Consent per stream: every change lands in the consent log (what, when, how) and the audit log.

Unsubscribing from bulletins keeps notices. Objecting to all email stops both, and the member is
then listed for notices by post.
"""

from __future__ import annotations

from mailer import audit
from mailer.db import session
from mailer.models import ConsentEvent, Member, Officer, Stream

FIELDS = {Stream.BULLETINS: "bulletins_consent", Stream.NOTICES: "notices_consent"}


def set_consent(member: Member, stream: Stream, granted: bool, source: str, campaign_id: int | None = None,
                officer: Officer | None = None, note: str = "") -> bool:
    """Record the member's choice for one stream. Returns False when nothing changed (idempotent).
    Not committed."""
    name = FIELDS[stream]
    if getattr(member, name) is granted:
        return False
    setattr(member, name, granted)
    session.add(ConsentEvent(member_id=member.id, stream=stream.value, granted=granted, source=source,
                             campaign_id=campaign_id, note=note[:500]))
    audit.record("member.consent", "member", member.id, {name: [not granted, granted]}, note=source, officer=officer,
                 actor=None if officer else f"member ({source})")
    return True


def unsubscribe(member: Member, stream: Stream, source: str, campaign_id: int | None = None) -> bool:
    """Stop one stream for the member (a bulletin's unsubscribe keeps notices). Not committed."""
    return set_consent(member, stream, False, source, campaign_id)


def object_to_email(member: Member, source: str, campaign_id: int | None = None) -> bool:
    """Stop all email: notices then go by post. Not committed."""
    changed = set_consent(member, Stream.BULLETINS, False, source, campaign_id)
    return set_consent(member, Stream.NOTICES, False, source, campaign_id) or changed


def log_changes(member_id: int, changes: dict, source: str, note: str = "") -> None:
    """Consent log entries for the consent fields in an audited change ({field: [old, new]}),
    made by an officer's edit or an import. Not committed."""
    for stream, name in FIELDS.items():
        if name in changes:
            session.add(ConsentEvent(member_id=member_id, stream=stream.value, granted=bool(changes[name][1]),
                                     source=source, note=note[:500]))


def history(member: Member) -> list[ConsentEvent]:
    return list(session.query(ConsentEvent).filter_by(member_id=member.id).order_by(ConsentEvent.id.desc()))
