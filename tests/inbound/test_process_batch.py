"""A batch of stored messages processed as one job and one transaction (process.process_many):
each message in a savepoint of its own, so one that fails is flagged alone and the others are
processed; a batch claimed by another job is left to it; nothing is processed twice."""

from __future__ import annotations

from sqlalchemy import func, select

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


def _store(raws: list[bytes]) -> list[int]:
    pairs = store.store_many(raws, "file")
    session.commit()
    return [m.id for m, _ in pairs]


def test_a_reply_and_the_message_it_answers_in_one_batch_share_a_thread_in_either_order(app):
    # The look-ups are asked once for the batch: what the batch itself threads must be seen by the
    # messages after it (the parent first), and a reply before its parent must still be adopted.
    parent_first = _store([raw_message(subject="Fundraiser", message_id="<p1@example.net>"),
                           raw_message(subject="Re: Fundraiser", message_id="<c1@example.net>",
                                       in_reply_to="<p1@example.net>")])
    child_first = _store([raw_message(subject="Re: Rota", message_id="<c2@example.net>", in_reply_to="<p2@example.net>"),
                          raw_message(subject="Rota", message_id="<p2@example.net>")])
    assert process.process_many(parent_first + child_first) == {"reply": 4}
    session.expire_all()
    p1, c1, c2, p2 = (session.get(InboundMessage, i) for i in parent_first + child_first)
    assert c1.thread_id == p1.thread_id and c1.parent_id == p1.id and c1.match_method == "in-reply-to"
    assert c2.thread_id == p2.thread_id and c2.parent_id == p2.id and c2.match_method == "in-reply-to"
    assert p1.thread_id != p2.thread_id
    assert session.scalar(select(func.count()).select_from(Thread)) == 2  # the orphan's own thread was removed


def test_a_guess_sees_a_thread_made_earlier_in_the_same_batch(app):
    ids = _store([raw_message(subject="Re: Leaflets", body="First.\n"), raw_message(subject="Re: Leaflets", body="Second.\n")])
    assert process.process_many(ids) == {"reply": 2}
    session.expire_all()
    first, second = (session.get(InboundMessage, i) for i in ids)
    assert second.thread_id == first.thread_id and second.match_method == "guess"


def test_a_message_that_failed_leaves_nothing_for_the_next_to_match(app, monkeypatch):
    ids = _store([raw_message(subject="Canvass", message_id="<bad@example.net>"),
                  raw_message(subject="Re: Canvass", in_reply_to="<bad@example.net>", sender="Bob <bob@example.org>")])
    real = process.thread_message

    def thread(message, *args, **kwargs):
        real(message, *args, **kwargs)
        session.flush()
        if message.id == ids[0]:
            raise RuntimeError("failed after threading")

    monkeypatch.setattr(process, "thread_message", thread)
    assert process.process_many(ids) == {"failed": 1, "reply": 1}
    session.expire_all()
    bad, reply = (session.get(InboundMessage, i) for i in ids)
    assert bad.thread_id is None and bad.status is InboundStatus.FAILED
    assert reply.thread_id is not None and reply.parent_id is None and reply.match_method == "none"
    assert session.scalar(select(func.count()).select_from(Thread)) == 1


def test_nothing_of_a_batch_is_seen_by_others_before_its_one_commit(app, monkeypatch):
    # On SQLite the driver opens no transaction before a SAVEPOINT, so each message's RELEASE
    # committed it alone: a job killed mid-way left half a batch processed.
    from mailer.db import engine

    ids = _stored(3)
    seen = []
    real = process._fill

    def fill(message, *args, **kwargs):
        with engine().connect() as other:  # another connection: what another job or page sees
            seen.append(other.scalar(select(func.count()).select_from(InboundMessage)
                                     .where(InboundMessage.status == InboundStatus.PROCESSED)))
        real(message, *args, **kwargs)

    monkeypatch.setattr(process, "_fill", fill)
    assert process.process_many(ids) == {"reply": 3}
    assert seen == [0, 0, 0]
    with engine().connect() as other:
        assert other.scalar(select(func.count()).select_from(InboundMessage)
                            .where(InboundMessage.status == InboundStatus.PROCESSED)) == 3
