"""Threading a member's mail: which conversation an inbound message belongs to.

First the signed reply token in To, Cc, Delivered-To or X-Original-To; then In-Reply-To and
References, last to first, against our outgoing and stored incoming Message-IDs; then a
conservative guess (same sender, same subject with a reply prefix, recent), marked as a guess.
Anything else starts a new thread. A reply that arrived before its parent is moved under the
parent when the parent arrives. What was there before is asked through mailer.inbound.lookups
(once per batch). Part of processing (mailer.inbound.process), which calls thread_message.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from mailer.db import session, utcnow
from mailer.inbound import lookups
from mailer.inbound.parse import ParsedMessage
from mailer.models import Campaign, Delivery, InboundMessage, Member, MessageReference, Thread, ThreadStatus

SUBJECT_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|tr|rv|r|ref|antw|odp|pd|vá|ynt|ats)\s*(\[\d+\])?\s*:\s*)+",
                             re.IGNORECASE)


def normalise_subject(subject: str) -> str:
    """"Re: Fwd: AW: Branch meeting" -> "branch meeting": what a guess compares."""
    return " ".join(SUBJECT_PREFIX.sub("", subject or "").split()).lower()[:300]


def base_address(address: str | None) -> str:
    local, _, domain = (address or "").lower().rpartition("@")
    return f"{local.split('+')[0]}@{domain}"


def referenced(parsed: ParsedMessage) -> list[tuple[str, str]]:
    """(Message-ID, how) to try, in order: In-Reply-To, then References from last to first."""
    ids = [(parsed.in_reply_to, "in-reply-to")] if parsed.in_reply_to else []
    ids += [(mid, "references") for mid in reversed(parsed.references) if mid != parsed.in_reply_to]
    return ids


def from_delivery(message: InboundMessage, delivery: Delivery, how: str, parsed: ParsedMessage) -> None:
    message.delivery_id, message.campaign_id, message.member_id = delivery.id, delivery.campaign_id, delivery.member_id
    message.match_method = how
    if parsed.from_address and base_address(parsed.from_address) != base_address(delivery.email):
        message.flagged = True
        message.match_note = (f"sent by {parsed.from_address}, not {delivery.email} to whom the message went "
                              "(a forward, or another address of theirs)")[:500]


def thread_message(message: InboundMessage, parsed: ParsedMessage, tokens: dict[str, Delivery]) -> None:
    thread, parent = None, None
    if "r" in tokens:
        from_delivery(message, tokens["r"], "token", parsed)
        thread = _campaign_thread(tokens["r"], message)
    if thread is None:
        ask = lookups.current()
        for mid, how in referenced(parsed):
            delivery = ask.delivery(mid)
            if delivery is not None:
                from_delivery(message, delivery, how, parsed)
                thread = _campaign_thread(delivery, message)
                break
            earlier = ask.earlier_message(mid, other_than=message.id)
            if earlier is not None:
                parent, thread_id = earlier
                thread, message.match_method = session.get(Thread, thread_id), how
                break
            answer = ask.answer(mid)
            if answer is not None:
                thread, message.match_method = session.get(Thread, answer.thread_id), how
                parent = answer.in_reply_to_id
                break
    if thread is None:
        thread = _guess(message, parsed)
    created = thread is None
    if thread is None:
        thread = _new_thread(message, parsed)
        message.match_method = message.match_method or "none"
        message.member_id = message.member_id or thread.member_id  # _new_thread looked the sender up
    elif message.member_id is None:
        message.member_id = thread.member_id or lookups.current().member(parsed.from_address)
    if thread.member_id is None and message.member_id is not None:
        thread.member_id = message.member_id
        thread.branch_id = lookups.current().branch(message.member_id)
    # By the relationship: a new thread and the message's one UPDATE go in the savepoint's flush.
    message.thread, message.parent_id = thread, parent
    if not created:  # a new thread was made with both (no second UPDATE of it)
        thread.last_activity_at, thread.status = utcnow(), ThreadStatus.NEEDS_ACTION
    if message.message_id and lookups.current().may_have_orphans(message.message_id):
        session.flush()
        _adopt_orphans(message)


def _campaign_thread(delivery: Delivery, message: InboundMessage) -> Thread:
    """A member's replies to one campaign share a thread."""
    thread = session.scalar(select(Thread).where(Thread.campaign_id == delivery.campaign_id,
                                                 Thread.member_id == delivery.member_id).order_by(Thread.id).limit(1))
    if thread is None:
        campaign = session.get(Campaign, delivery.campaign_id)
        member = session.get(Member, delivery.member_id) if delivery.member_id else None
        thread = Thread(subject=message.subject or (campaign.subject if campaign else ""),
                        normalised_subject=normalise_subject(message.subject), correspondent=base_address(delivery.email),
                        member_id=delivery.member_id, branch_id=member.branch_id if member else None,
                        campaign_id=delivery.campaign_id)
        session.add(thread)
        session.flush()
    return thread


def _guess(message: InboundMessage, parsed: ParsedMessage) -> Thread | None:
    subject = normalise_subject(parsed.subject)
    # Only a "Re:"/"Fwd:" subject from a known sender may be guessed onto an earlier thread.
    if not parsed.from_address or not subject or not SUBJECT_PREFIX.match(parsed.subject or ""):
        return None
    since = utcnow() - timedelta(days=current_app.config["THREAD_GUESS_DAYS"])
    thread = lookups.current().latest_thread(base_address(parsed.from_address), subject, since)
    if thread is not None:
        message.match_method = "guess"
        message.match_note = "joined on sender and subject only: check it belongs here"
    return thread


def _new_thread(message: InboundMessage, parsed: ParsedMessage) -> Thread:
    """Not flushed here: it is inserted with the message's UPDATE when the savepoint ends."""
    member_id = message.member_id or lookups.current().member(parsed.from_address)
    thread = Thread(subject=(parsed.subject or "(no subject)")[:300], normalised_subject=normalise_subject(parsed.subject),
                    correspondent=base_address(parsed.from_address) if parsed.from_address else "", member_id=member_id,
                    branch_id=lookups.current().branch(member_id) if member_id else None,
                    last_activity_at=utcnow(), status=ThreadStatus.NEEDS_ACTION)
    session.add(thread)
    return thread


def _adopt_orphans(parent: InboundMessage) -> None:
    """Replies that arrived before `parent` started threads of their own: move them under it."""
    if not parent.message_id:
        return
    orphans = session.scalars(select(InboundMessage).join(
        MessageReference, MessageReference.inbound_message_id == InboundMessage.id).where(
        MessageReference.referenced == parent.message_id, InboundMessage.id != parent.id,
        InboundMessage.match_method == "none")).all()
    for orphan in orphans:
        old_thread_id = orphan.thread_id
        for moved in session.scalars(select(InboundMessage).where(InboundMessage.thread_id == old_thread_id)):
            moved.thread_id = parent.thread_id
        orphan.parent_id, orphan.match_method = parent.id, "in-reply-to" if orphan.in_reply_to == parent.message_id \
            else "references"
        orphan.match_note = "arrived before the message it answers; moved under it when that arrived"
        session.flush()
        if old_thread_id and old_thread_id != parent.thread_id:
            session.execute(delete(Thread).where(Thread.id == old_thread_id))
            lookups.current().note_merged(old_thread_id, parent.thread_id)
