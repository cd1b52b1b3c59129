"""Delivery reports and complaints acted on, and unsubscribes by mail.

- bounce: matched to the Delivery by something we sent (the bounce or reply token, or our
  Message-ID in the returned headers); hard bounces hold the address at once, soft ones after
  SOFT_BOUNCE_LIMIT within SOFT_BOUNCE_DAYS.
- complaint: tied the same way, bulletins are suppressed for the address at once.
  A bounce or complaint is a stranger's claim: one that only names an address (anyone can write
  a report naming any member) acts on no one. It is flagged and listed for a CLP officer to
  confirm (confirm_report), and acts only then.
- an unsubscribe by mail (the List-Unsubscribe mailto with its token) unsubscribes the member.
Part of processing (mailer.inbound.process).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from mailer import audit, scope
from mailer.db import session, utcnow
from mailer.errors import Refusal
from mailer.inbound import lookups
from mailer.inbound.classify import FAILED_ACTIONS, Classification
from mailer.inbound.threads import base_address
from mailer.members import consent
from mailer.models import (BounceEvent, Campaign, Delivery, EmailHealth, InboundKind, InboundMessage, Member, Stream,
                           Suppression, SuppressionReason)

def _our_delivery(message_id: str | None) -> Delivery | None:
    """The delivery whose Message-ID a report returned, if it is one of ours."""
    if not message_id:
        return None
    return lookups.current().delivery(message_id)


def _delivery_for(address: str, ours: Delivery | None, token: Delivery | None) -> Delivery | None:
    """The delivery to `address` this report is tied to by something we sent, or None."""
    for delivery in (token, ours):
        if delivery is not None and (not address or base_address(delivery.email) == base_address(address)):
            return delivery
    return None


def _tie(message: InboundMessage, delivery: Delivery, how: str) -> None:
    if message.delivery_id is None:
        message.delivery_id, message.campaign_id, message.member_id = (delivery.id, delivery.campaign_id,
                                                                       delivery.member_id)
        message.match_method = how


def _unconfirmed(message: InboundMessage, addresses: list[str]) -> None:
    """A report naming addresses with nothing of ours in it: recorded and flagged, acted on by no one."""
    message.flagged, message.match_method = True, UNCONFIRMED
    message.match_note = (f"names {', '.join(sorted(set(addresses)))} but carries nothing we sent (no bounce token, "
                          "no Message-ID of ours): a CLP officer must confirm it before anyone is held or "
                          "unsubscribed")[:500]
    if message.member_id is None:
        message.member_id = lookups.current().member(addresses[0])


UNCONFIRMED = "address"  # match_method of a report that names an address only
CONFIRMED = "confirmed"


def bounce(message: InboundMessage, result: Classification, tokens: dict[str, Delivery]) -> None:
    report = result.bounce
    token = tokens.get("b") or tokens.get("r")
    ours = _our_delivery(report.original_message_id)
    unconfirmed = []
    for r in report.recipients:
        if not r.failed or r.action == "delayed":
            continue  # a delay warning or a success report: nothing is wrong with the address yet
        address = (r.address or (token.email if token else "") or (ours.email if ours else "")).lower()
        if not address:
            continue
        delivery = _delivery_for(address, ours, token)
        if delivery is None:
            unconfirmed.append(address)
            continue
        _tie(message, delivery, "token" if delivery is token else "report")
        record_bounce(message, address, r.hard, r.status, r.diagnostic, delivery)
    if unconfirmed:
        _unconfirmed(message, unconfirmed)


def record_bounce(message: InboundMessage, address: str, hard: bool, status: str, diagnostic: str,
                  delivery: Delivery | None) -> None:
    """One failed recipient, recorded and judged (only for a bounce tied to us, or confirmed)."""
    session.add(BounceEvent(email=address, hard=hard, status=status, diagnostic=diagnostic[:1000],
                            delivery_id=delivery.id if delivery else None, inbound_message_id=message.id,
                            member_id=delivery.member_id if delivery else lookups.current().member(address)))
    session.flush()
    apply_health(address, hard, f"{status} {diagnostic}".strip()[:500])


def apply_health(address: str, hard: bool, why: str) -> EmailHealth:
    """Judge an address after a bounce: hard holds it at once (and suppresses it); soft ones hold
    it after SOFT_BOUNCE_LIMIT within SOFT_BOUNCE_DAYS. Members with the address are updated."""
    cfg = current_app.config
    since = utcnow() - timedelta(days=cfg["SOFT_BOUNCE_DAYS"])
    soft = session.scalar(select(func.count()).where(BounceEvent.email == address, BounceEvent.hard.is_(False),
                                                     BounceEvent.at >= since))
    health = EmailHealth.ON_HOLD if hard or soft >= cfg["SOFT_BOUNCE_LIMIT"] else EmailHealth.SOFT_BOUNCING
    if hard and session.scalar(select(Suppression.id).where(Suppression.email == address,
                                                            Suppression.reason == SuppressionReason.HARD_BOUNCE)) is None:
        session.add(Suppression(email=address, stream="all", reason=SuppressionReason.HARD_BOUNCE, note=why))
    for member in session.scalars(select(Member).where(func.lower(Member.email) == address)):
        if member.email_health is EmailHealth.ON_HOLD or member.email_health is health:
            continue
        audit.record("member.email_health", "member", member.id,
                     {"email_health": [member.email_health.value, health.value]}, note=why, actor="bounce")
        member.email_health = health
    return health


def complaint(message: InboundMessage, result: Classification, tokens: dict[str, Delivery]) -> None:
    report = result.complaint
    token = tokens.get("b") or tokens.get("r")
    delivery = _our_delivery(report.original_message_id) or token
    named = {a.lower() for a in report.recipients if a}
    if delivery is not None:
        _tie(message, delivery, "report" if delivery is not token else "token")
        suppress_complaint(delivery.email.lower(), report.feedback_type, delivery.campaign_id)
    # Addresses the report names besides the one we sent it to are a claim only.
    others = sorted(a for a in named if delivery is None or base_address(a) != base_address(delivery.email))
    if others:
        _unconfirmed(message, others)


def suppress_complaint(address: str, feedback_type: str | None, campaign_id: int | None) -> None:
    """A complaint about our mail to `address`: no more bulletins to it."""
    if session.scalar(select(Suppression.id).where(Suppression.email == address,
                                                   Suppression.reason == SuppressionReason.COMPLAINT)) is None:
        session.add(Suppression(email=address, stream="bulletins", reason=SuppressionReason.COMPLAINT,
                                note=f"feedback report ({feedback_type or 'abuse'})"))
    for member in session.scalars(select(Member).where(func.lower(Member.email) == address)):
        consent.unsubscribe(member, Stream.BULLETINS, "complaint", campaign_id)


def confirm_report(officer, message: InboundMessage) -> list[str]:
    """A CLP officer confirms a bounce or complaint that only named addresses: it acts now, as if
    it had been tied to our mail. Returns the addresses acted on. Audited; not committed."""
    if not scope.sees_all(officer):
        raise PermissionError("Only a CLP officer can confirm a report that names addresses only.")
    if message.match_method != UNCONFIRMED or message.kind not in (InboundKind.BOUNCE, InboundKind.COMPLAINT):
        raise Refusal("This message has nothing to confirm.")
    report = message.report or {}
    acted = []
    if "bounce" in report:
        for r in report["bounce"]["recipients"]:
            address = (r.get("address") or "").lower()
            if address and r.get("action") in FAILED_ACTIONS and r.get("action") != "delayed" \
                    and (message.delivery_id is None or base_address(address) != base_address(message.delivery.email)):
                record_bounce(message, address, bool(r.get("hard")), r.get("status") or "", r.get("diagnostic") or "",
                              None)
                acted.append(address)
    if "complaint" in report:
        tied = message.delivery.email if message.delivery_id else None
        for address in sorted({a.lower() for a in report["complaint"]["recipients"] if a}):
            if tied is None or base_address(address) != base_address(tied):
                suppress_complaint(address, report["complaint"].get("feedback_type"), None)
                acted.append(address)
    message.match_method, message.flagged = CONFIRMED, False
    message.match_note = f"confirmed by {officer.email}: acted on {', '.join(acted) or 'no one'}"[:500]
    audit.record("inbound.confirm_report", "inbound_message", message.id, {"addresses": [None, acted]},
                 officer=officer)
    return acted


def unsubscribe_by_mail(message: InboundMessage, delivery: Delivery) -> None:
    """The List-Unsubscribe mailto: the member wrote to secretary+u-TOKEN@."""
    message.delivery_id, message.campaign_id, message.member_id = delivery.id, delivery.campaign_id, delivery.member_id
    message.match_method, message.match_note = "token", "unsubscribe by email"
    member = session.get(Member, delivery.member_id) if delivery.member_id else None
    campaign = session.get(Campaign, delivery.campaign_id)
    if member is not None and campaign is not None:
        consent.unsubscribe(member, campaign.stream, "email (List-Unsubscribe mailto)", campaign.id)
