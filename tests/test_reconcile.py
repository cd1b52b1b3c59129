"""One reconcile rebuilds every kind of pending work from the database: as `mailer reconcile`,
and on a schedule in a running worker (a message stored while no queue was reachable is
processed within RECONCILE_SECONDS, with no job ever queued for it)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailer import jobs, queue
from mailer.db import session
from mailer.models import InboundMessage, InboundStatus
from tests.test_worker import start_worker, wait_until, worker_env  # noqa: F401 (fixture)

RAW = (b"From: Ann Member <ann@example.org>\r\nTo: secretary@anytown-labour.example\r\nSubject: Apologies\r\n"
       b"Message-ID: <reconcile@mail.example.net>\r\n\r\nSorry, I cannot come.\r\n")


def _stored_without_a_job() -> InboundMessage:
    """As `mailer inbound` does when no queue is reachable: the row, and no job."""
    message = InboundMessage(transport="file", dedupe_key="mid:<reconcile@mail.example.net>",
                             message_id="<reconcile@mail.example.net>", sha256="0" * 64, raw=RAW, size=len(RAW))
    session.add(message)
    session.commit()
    return message


def test_mailer_reconcile_queues_what_redis_does_not_hold(app):
    message = _stored_without_a_job()
    result = app.test_cli_runner().invoke(args=["reconcile"])
    assert result.exit_code == 0, result.output
    assert "inbound jobs: 1" in result.output and "batch jobs: 0" in result.output
    assert any(j.startswith(f"inbound-{message.id}-") for j in queue.get_queue().get_job_ids())
    again = app.test_cli_runner().invoke(args=["reconcile"])
    assert "inbound jobs: 0" in again.output  # queued already: not twice


@pytest.mark.slow
def test_a_running_worker_processes_a_message_stored_with_no_job(app, smtp_server, tmp_path, start_worker):
    proc, log = start_worker(worker_env(app, smtp_server.port, tmp_path / "instance", MAILER_RECONCILE_SECONDS="2"))
    wait_until(lambda: b"Listening on" in log.read_bytes() or b"listening on" in log.read_bytes().lower(), 60,
               "the worker to start", log)
    message = _stored_without_a_job()  # after the worker's own start-up reconcile
    assert queue.get_queue().count == 0

    def processed():
        session.expire_all()
        return session.scalar(select(InboundMessage.status).where(InboundMessage.id == message.id)) \
            is InboundStatus.PROCESSED

    wait_until(processed, 30, "the scheduled reconcile to queue it and the worker to process it", log)
    assert proc.poll() is None


def test_flushall_then_reconcile_brings_back_a_pending_reminder_and_a_pending_reply(make_app, make_officer, make_member):
    """Reminders and officers' replies are pending work the database holds: Redis losing every
    job (FLUSHALL, on this test's own Redis database) loses neither."""
    from datetime import timedelta

    from mailer.db import utcnow
    from mailer.inbound import correspondence
    from mailer.meetings import service
    from mailer.models import Meeting, Role, Thread

    app = make_app(REMINDER_HOURS=24)
    with app.app_context():
        officer = make_officer("secretary@anytown-labour.example", Role.CLP_SECRETARY)
        make_member(first_name="Ann", email="ann@example.org")
        starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=30)
        meeting, _ = service.create(officer, {"title": "General meeting", "kind": "general", "starts_at": starts,
                                              "ends_at": starts + timedelta(hours=2), "venue_name": "Trades Hall"})
        service.send_notice(officer, meeting)
        thread = Thread(subject="Apologies", correspondent="ann@example.org")
        session.add(thread)
        session.flush()
        answer = correspondence.reply(officer, thread, None, "Thank you, noted.")
        session.commit()
        reminder = jobs.reminder_id(meeting.id, meeting.ical_sequence)
        assert reminder in queue.waiting_job_ids()  # queued after the commit
        assert session.get(Meeting, meeting.id).reminder_due_at == starts - timedelta(hours=24)

        queue.redis_connection().flushdb()  # Redis loses every job
        assert queue.waiting_job_ids() == set()
        found = jobs.reconcile_all()
        assert found["reminders"] == 1 and found["replies"] == 1
        assert reminder in queue.get_queue().scheduled_job_registry.get_job_ids()  # for its time, not now
        replies = [j for j in queue.get_queue().get_jobs() if j.func_name.endswith("send_reply")]
        assert [j.args for j in replies] == [(answer.id,)]
        again = jobs.reconcile_all()
        assert again["reminders"] == 0 and again["replies"] == 0  # queued already: not twice

        session.get(Meeting, meeting.id).reminder_sent_at = utcnow()  # once it went, it is not pending
        session.commit()
        queue.redis_connection().flushdb()
        assert jobs.reconcile_all()["reminders"] == 0
