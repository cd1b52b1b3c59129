"""A batch of stored messages processed as one job and one transaction (process.process_many):
each message in a savepoint of its own, so one that fails is flagged alone and the others are
processed; a batch claimed by another job is left to it; nothing is processed twice."""

from __future__ import annotations

from sqlalchemy import select

from mailer import jobs
from mailer.db import session
from mailer.inbound import process, store
from mailer.models import InboundKind, InboundMessage, InboundStatus, MessageReference, Thread
from tests.inbound.conftest import raw_message


def _stored(n: int) -> list[int]:
    pairs = store.store_many([raw_message(subject=f"Re: News {i}", body=f"Reply {i}.\n", in_reply_to=f"<x{i}@example.org>")
                              for i in range(n)], "file")
    session.commit()  # as the command or poll that stored them does (a job reads them in its own session)
    return [m.id for m, _ in pairs]


def test_one_failing_message_is_flagged_alone_and_the_rest_processed(app, monkeypatch):
    ids = _stored(4)
    real = process._fill

    def fill(message, *args, **kwargs):
        real(message, *args, **kwargs)
        session.flush()  # its derived rows are written before it fails: the savepoint must undo them
        if message.id == ids[1]:
            raise RuntimeError("a bug in reading this one")

    monkeypatch.setattr(process, "_fill", fill)
    outcomes = process.process_many(ids)
    session.expire_all()
    assert outcomes == {"reply": 3, "failed": 1}
    statuses = {m.id: m.status for m in session.scalars(select(InboundMessage).where(InboundMessage.id.in_(ids)))}
    assert statuses[ids[1]] is InboundStatus.FAILED and "a bug in reading this one" in session.get(InboundMessage, ids[1]).error
    assert [statuses[i] for i in (ids[0], ids[2], ids[3])] == [InboundStatus.PROCESSED] * 3
    assert session.scalar(select(MessageReference).where(MessageReference.inbound_message_id == ids[1])) is None
    assert session.get(InboundMessage, ids[1]).thread_id is None
    threads = {session.get(InboundMessage, i).thread_id for i in (ids[0], ids[2], ids[3])}
    assert None not in threads and all(session.get(Thread, t) is not None for t in threads)


def test_a_processed_batch_is_not_processed_again_and_reprocessing_replaces_what_it_derived(app):
    ids = _stored(2)
    assert jobs.process_inbound_batch(ids) == {"reply": 2}
    assert process.process_many(ids) == {"already processed": 2}
    message = session.get(InboundMessage, ids[0])
    message.status = InboundStatus.RECEIVED  # an officer's "process again"
    session.commit()
    assert process.process_many([ids[0]]) == {"reply": 1}
    refs = session.scalars(select(MessageReference.referenced).where(MessageReference.inbound_message_id == ids[0])).all()
    assert refs == ["<x0@example.org>"]  # replaced, not doubled
    assert session.get(InboundMessage, ids[0]).kind is InboundKind.REPLY


def test_messages_claimed_by_another_job_are_left_to_it(app):
    ids = _stored(2)
    from datetime import timedelta

    from mailer.db import utcnow

    session.get(InboundMessage, ids[0]).claimed_until = utcnow() + timedelta(minutes=5)
    session.commit()
    assert process.process_many(ids) == {"being processed by another job": 1, "reply": 1}
    session.expire_all()
    assert session.get(InboundMessage, ids[0]).status is InboundStatus.RECEIVED
