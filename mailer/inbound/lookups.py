"""What processing an inbound message looks up of what was there before it, asked once per batch.

Processing matches a message by what it names: the Message-IDs in In-Reply-To and References (our
deliveries, our answers, earlier inbound messages), its sender (a member), the delivery its token
names, an earlier thread with the same sender and subject, and replies that arrived before it.
One at a time, that was six to eight queries a message, most of a batch job's time. A batch job
(process.process_many) reads its messages first, then asks each question once for all of them
with IN (...) (Lookups.prefetch), and processing answers from those maps.

Rules that keep the answers the same as one query a message:
- a key that was not asked in advance is asked of the database there and then (never guessed);
- what processing changes in the batch (a message threaded, a thread made, touched, merged or
  deleted, references recorded) is written into the maps as it happens (Lookups.note_*), and a
  message whose savepoint is rolled back has its changes to the maps rolled back too
  (snapshot/restore), so a message that failed leaves no trace in the next one's matching;
- deliveries, members and our answers are not changed by processing, so they are read once.
The maps hold only the keys of one batch's messages: bounded by the batch size.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select, tuple_

from mailer.db import session
from mailer.models import Delivery, InboundMessage, Member, MessageReference, OutgoingReply, Thread

_MISSING = object()
# Parameters per IN (...): SQLite allows 32,766 and PostgreSQL 65,535; a batch asks far fewer.
_CHUNK = 500


def _chunks(values: set) -> list[list]:
    ordered = sorted(values)
    return [ordered[i:i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]


class Lookups:
    """Answers to processing's questions, from maps filled for a batch or else one query each."""

    def __init__(self) -> None:
        self.deliveries: dict[str, Delivery | None] = {}      # Message-ID -> our delivery
        self.answers: dict[str, OutgoingReply | None] = {}    # Message-ID -> our answer
        self.earlier: dict[str, list[tuple[int, int]]] = {}   # Message-ID -> [(inbound id, thread id)]
        self.members: dict[str, int | None] = {}              # lower-cased address -> the one member
        self.branches: dict[int, int | None] = {}             # member id -> branch id
        self.threads: dict[tuple[str, str], Thread | None] = {}  # (correspondent, subject) -> latest thread
        self.threads_since: datetime | None = None
        self.referenced: set[str] | None = None               # Message-IDs some stored message references
        self.referenced_asked: set[str] = set()

    # --- the batch -----------------------------------------------------------------------------

    def prefetch(self, *, message_ids: set[str], addresses: set[str], delivery_ids: set[int],
                 guesses: set[tuple[str, str]], since: datetime, own_ids: set[str]) -> None:
        """Ask each question once for a batch: Message-IDs referenced (deliveries, answers, earlier
        messages), senders and named addresses (members), token deliveries, guess keys, and the
        batch's own Message-IDs (are they referenced by a message that arrived before them?)."""
        message_ids = {m for m in message_ids if m} - set(self.deliveries)
        for chunk in _chunks(message_ids):
            for d in session.scalars(select(Delivery).where(Delivery.message_id.in_(chunk)).order_by(Delivery.id)):
                self.deliveries.setdefault(d.message_id, d)
            for a in session.scalars(select(OutgoingReply).where(OutgoingReply.message_id.in_(chunk))
                                     .order_by(OutgoingReply.id)):
                self.answers.setdefault(a.message_id, a)
            for row in session.execute(select(InboundMessage.message_id, InboundMessage.id, InboundMessage.thread_id)
                                       .where(InboundMessage.message_id.in_(chunk),
                                              InboundMessage.thread_id.is_not(None)).order_by(InboundMessage.id)):
                self.earlier.setdefault(row.message_id, []).append((row.id, row.thread_id))
        for mid in message_ids:
            self.deliveries.setdefault(mid, None)
            self.answers.setdefault(mid, None)
            self.earlier.setdefault(mid, [])
        addresses = {a.lower() for a in addresses if a} - set(self.members)
        for chunk in _chunks(addresses):
            found: dict[str, list[tuple[int, int | None]]] = {}
            for row in session.execute(select(func.lower(Member.email).label("email"), Member.id, Member.branch_id)
                                       .where(func.lower(Member.email).in_(chunk))):
                found.setdefault(row.email, []).append((row.id, row.branch_id))
            for address in chunk:
                rows = found.get(address, [])
                self.members[address] = rows[0][0] if len(rows) == 1 else None
                for member_id, branch_id in rows:
                    self.branches[member_id] = branch_id
        for chunk in _chunks(set(delivery_ids)):
            session.scalars(select(Delivery).where(Delivery.id.in_(chunk))).all()  # into the identity map
        self.threads_since = since
        guesses = {g for g in guesses if all(g)} - set(self.threads)
        for chunk in _chunks(guesses):
            for t in session.scalars(select(Thread).where(tuple_(Thread.correspondent, Thread.normalised_subject)
                                                          .in_(chunk), Thread.last_activity_at >= since)
                                     .order_by(Thread.last_activity_at.desc(), Thread.id)):
                self.threads.setdefault((t.correspondent, t.normalised_subject), t)
        for g in guesses:
            self.threads.setdefault(g, None)
        own_ids = {m for m in own_ids if m}
        if self.referenced is None:
            self.referenced = set()
        for chunk in _chunks(own_ids - self.referenced_asked):
            self.referenced.update(session.scalars(select(MessageReference.referenced).distinct()
                                                   .where(MessageReference.referenced.in_(chunk))))
        self.referenced_asked |= own_ids

    def snapshot(self) -> dict:
        """The maps as they are, to restore if the message being processed fails."""
        return {name: copy.copy(value) for name, value in vars(self).items()
                if isinstance(value, (dict, set))} | {"earlier": {k: list(v) for k, v in self.earlier.items()}}

    def restore(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    # --- questions -------------------------------------------------------------------------------

    def delivery(self, message_id: str) -> Delivery | None:
        """Our delivery with this Message-ID."""
        found = self.deliveries.get(message_id, _MISSING)
        if found is _MISSING:
            with session.no_autoflush:  # nothing processing changes can alter it: no flush first
                found = self.deliveries[message_id] = session.scalar(
                    select(Delivery).where(Delivery.message_id == message_id).order_by(Delivery.id).limit(1))
        return found

    def answer(self, message_id: str) -> OutgoingReply | None:
        """Our answer (an officer's reply) with this Message-ID."""
        found = self.answers.get(message_id, _MISSING)
        if found is _MISSING:
            with session.no_autoflush:
                found = self.answers[message_id] = session.scalar(
                    select(OutgoingReply).where(OutgoingReply.message_id == message_id).order_by(OutgoingReply.id)
                    .limit(1))
        return found

    def earlier_message(self, message_id: str, other_than: int) -> tuple[int, int] | None:
        """(id, thread id) of a threaded inbound message with this Message-ID, not `other_than`."""
        found = self.earlier.get(message_id)
        if found is None:
            found = self.earlier[message_id] = [
                (row.id, row.thread_id) for row in session.execute(
                    select(InboundMessage.id, InboundMessage.thread_id).where(
                        InboundMessage.message_id == message_id, InboundMessage.thread_id.is_not(None))
                    .order_by(InboundMessage.id))]
        return next(((i, t) for i, t in found if i != other_than), None)

    def member(self, address: str | None) -> int | None:
        """The one member with this address (None for none or several)."""
        if not address:
            return None
        address = address.lower()
        found = self.members.get(address, _MISSING)
        if found is _MISSING:
            with session.no_autoflush:
                rows = session.execute(select(Member.id, Member.branch_id)
                                       .where(func.lower(Member.email) == address).limit(2)).all()
            found = self.members[address] = rows[0].id if len(rows) == 1 else None
            for row in rows:
                self.branches[row.id] = row.branch_id
        return found

    def branch(self, member_id: int) -> int | None:
        found = self.branches.get(member_id, _MISSING)
        if found is _MISSING:
            found = self.branches[member_id] = session.scalar(select(Member.branch_id).where(Member.id == member_id))
        return found

    def latest_thread(self, correspondent: str, subject: str, since: datetime) -> Thread | None:
        """The thread with this correspondent and subject with the latest activity since `since`."""
        key = (correspondent, subject)
        if key in self.threads and self.threads_since is not None and since >= self.threads_since:
            thread = self.threads[key]
            return thread if thread is None or thread.last_activity_at >= since else None
        return session.scalar(select(Thread).where(Thread.correspondent == correspondent,
                                                   Thread.normalised_subject == subject,
                                                   Thread.last_activity_at >= since)
                              .order_by(Thread.last_activity_at.desc(), Thread.id).limit(1))

    def may_have_orphans(self, message_id: str) -> bool:
        """False only when certainly no stored message references `message_id` (so none to adopt)."""
        return self.referenced is None or message_id not in self.referenced_asked or message_id in self.referenced

    # --- what processing changed -----------------------------------------------------------------

    def note_threaded(self, message_id: str | None, inbound_id: int, thread: Thread,
                      references: list[str]) -> None:
        """A message was threaded: it can be found by its Message-ID, its thread is the latest for
        its key, and what it references may now have an orphan to adopt."""
        if message_id and message_id in self.earlier:
            self.earlier[message_id] = [*(e for e in self.earlier[message_id] if e[0] != inbound_id),
                                        (inbound_id, thread.id)]
        self.threads[(thread.correspondent, thread.normalised_subject)] = thread
        self.note_references(references)

    def note_references(self, references: list[str]) -> None:
        if self.referenced is not None:
            self.referenced.update(r for r in references if r)

    def note_merged(self, old_thread_id: int, new_thread_id: int) -> None:
        """Every message of one thread moved to another, and the first deleted."""
        for mid, entries in self.earlier.items():
            self.earlier[mid] = [(i, new_thread_id if t == old_thread_id else t) for i, t in entries]
        for key, thread in list(self.threads.items()):
            if thread is not None and thread.id == old_thread_id:
                del self.threads[key]  # asked again if needed


_active: Lookups | None = None  # the look-ups of the batch (or message) being processed


def current() -> Lookups:
    """The look-ups of the batch or message being processed; outside processing (an officer
    confirming a report), a fresh set: every question a query."""
    return _active if _active is not None else Lookups()


@contextmanager
def active(looked_up: Lookups) -> Iterator[Lookups]:
    """Process with these look-ups (process and process_many set them for their messages)."""
    global _active
    previous, _active = _active, looked_up
    try:
        yield looked_up
    finally:
        _active = previous
