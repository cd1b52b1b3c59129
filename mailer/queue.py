"""The RQ queue on Redis: Redis carries only work to do; the database stays the source of truth."""

from __future__ import annotations

import logging
import os
import threading
import time

from flask import Flask, current_app
from redis import Redis
from redis import exceptions as redis_errors
from rq import Queue, Worker


class NoRedisConfigured(RuntimeError):
    pass


def init_app(app: Flask) -> None:
    """Connections are opened lazily, on first use, so pages that need no queue never wait for Redis."""
    app.extensions["mailer.redis"] = None


def redis_connection() -> Redis:
    """The app's Redis connection (MAILER_REDIS_URL; `mailer up` points it at the embedded one)."""
    conn = current_app.extensions.get("mailer.redis")
    if conn is None:
        url = current_app.config.get("REDIS_URL")
        if not url:
            raise NoRedisConfigured("No Redis configured: set MAILER_REDIS_URL, or start everything with `mailer up`.")
        conn = Redis.from_url(url)
        current_app.extensions["mailer.redis"] = conn
    return conn


def get_queue() -> Queue:
    """The queue that web, CLI and every worker share."""
    return Queue(current_app.config["QUEUE_NAME"], connection=redis_connection())


def enqueue(func, *args, job_id: str | None = None, **kwargs):
    """Put `func(*args)` on the queue; `job_id` makes a repeated enqueue of the same work harmless."""
    return get_queue().enqueue(func, args=args, job_id=job_id, **kwargs)


def run_worker(app: Flask, burst: bool = False) -> bool:
    """Work the queue (with RQ's scheduler) until stopped; what `python worker.py` runs.

    Redis going away (a restart, a network cut) does not end the worker: RQ's worker gives up on
    a connection error outside its wait for jobs, so it is started again after a back-off that
    doubles up to 30 s, and what Redis may have lost is rebuilt from the database first. Only
    SIGTERM/SIGINT (or the end of a burst) stops it. Every RECONCILE_SECONDS one worker of all
    those sharing the Redis rebuilds lost work from the database."""
    from rq.exceptions import StopRequested

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log = logging.getLogger("mailer.worker")
    with app.app_context():
        _reconcile_logged(log)
        from mailer.sending.batch import prepare_worker

        prepare_worker()
    if not burst:
        start_reconciler(app)
    wait = 1.0
    while True:
        worker = None
        try:
            with app.app_context():
                worker = Worker([get_queue()], connection=redis_connection())
                worked = worker.work(burst=burst, with_scheduler=True)
            if burst or _stopping(worker):
                return worked
            log.warning("the worker stopped (Redis unreachable?); starting again in %.0f s", wait)
        except (StopRequested, KeyboardInterrupt):
            return False
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            if _stopping(worker):
                return False
            log.warning("Redis unreachable (%s); trying again in %.0f s", exc, wait)
        try:
            time.sleep(wait)
        except (StopRequested, KeyboardInterrupt):
            return False
        if _stopping(worker):
            return False
        wait = min(wait * 2, 30.0)
        with app.app_context():
            if _reconcile_logged(log):
                wait = 1.0


def _stopping(worker: Worker | None) -> bool:
    """Whether the worker was asked to stop (SIGTERM, SIGINT), rather than lost Redis."""
    return worker is not None and (worker._stop_requested or worker._shutdown_requested_date is not None)


def _reconcile_logged(log) -> bool:
    """Reconcile, logging rather than raising when Redis or the database is away (True if it ran)."""
    try:
        reconcile_all()
        return True
    except Exception as exc:  # noqa: BLE001 - the next try, or the next worker, will do it
        log.warning("could not reconcile the queue with the database: %s", exc)
        return False


def start_reconciler(app: Flask) -> threading.Thread:
    """A thread that, every RECONCILE_SECONDS, rebuilds lost work from the database, in one
    worker at a time: the first to take a Redis key (SET NX, expiring after the interval) does it."""
    interval = max(1, int(app.config["RECONCILE_SECONDS"]))
    log = logging.getLogger("mailer.worker")

    def loop():
        while True:
            time.sleep(interval)
            try:
                with app.app_context():
                    key = f"mailer:{current_app.config['QUEUE_NAME']}:reconcile"
                    if redis_connection().set(key, os.getpid(), nx=True, ex=interval):
                        found = reconcile_all()
                        if any(found.values()):
                            log.info("reconciled: %s", found)
                    from mailer.retention import schedule_if_due

                    schedule_if_due()  # once a day, by whichever worker comes first
            except Exception as exc:  # noqa: BLE001 - Redis or the database away: next time
                log.warning("scheduled reconcile failed: %s", exc)

    thread = threading.Thread(target=loop, name="mailer-reconcile", daemon=True)
    thread.start()
    return thread


def reconcile_all() -> dict:
    """Put back any work Redis lost (a flush, a restart, a killed worker): the database knows.
    Start jobs, batches (and their deferred retries), cancelled campaigns' rows, meeting
    reminders, inbound processing, officers' replies and the IMAP poll. Safe to run any time,
    from any number of places: nothing is queued twice."""
    from mailer.inbound import correspondence, imap
    from mailer.sending.campaigns import reconcile

    found = {"due_jobs": release_due_jobs()}
    found.update(reconcile())
    found["reminders"] = requeue_reminders()
    found["inbound_jobs"] = requeue_inbound()
    found["replies"] = correspondence.requeue_replies()  # officers' answers not yet sent
    found["imap_poll"] = imap.ensure_polling()  # the poll chain, when MAILER_IMAP_HOST is set
    if any(found.values()):
        logging.getLogger("mailer").info("reconciled the queue with the database: %s", found)
    return found


reconcile_on_start = reconcile_all  # the name the worker's start used


def release_due_jobs(grace: int = 5) -> int:
    """Move scheduled jobs whose time has come (retries, reminders) onto the queue, should RQ's
    scheduler not have: when the worker holding its lock is killed, the others try to take it
    over only at their maintenance, every ten minutes. A job moved twice is harmless: every job
    is idempotent."""
    q = get_queue()
    registry = q.scheduled_job_registry
    moved = 0
    for job_id in registry.get_jobs_to_schedule(int(time.time()) - grace):
        job = q.fetch_job(job_id)
        registry.remove(job_id)
        if job is not None:
            q.enqueue_job(job)
            moved += 1
    return moved


def requeue_inbound() -> int:
    """Queue processing again for stored messages still waiting, not held by a live job, whose
    job Redis no longer holds (or never held: stored while no queue was reachable)."""
    from mailer.inbound import store

    q = get_queue()
    waiting = set(q.get_job_ids()) | set(q.scheduled_job_registry.get_job_ids())
    pending = {job_id.split("-")[1] for job_id in waiting if job_id.startswith("inbound-")}  # inbound-<id>-<attempt>
    lost = [message_id for message_id in store.unprocessed() if str(message_id) not in pending]
    for message_id in lost:
        store.enqueue_processing(message_id)
    return len(lost)


def requeue_reminders() -> int:
    """Schedule again the reminder of every noticed meeting still to come whose job Redis lost."""
    from datetime import timedelta

    from sqlalchemy import select

    from mailer.db import session, utcnow
    from mailer.meetings.service import schedule_reminder
    from mailer.models import Meeting, MeetingStatus

    hours = current_app.config["REMINDER_HOURS"]
    if not hours:
        return 0
    waiting = set(get_queue().scheduled_job_registry.get_job_ids())
    meetings = session.scalars(select(Meeting).where(Meeting.status == MeetingStatus.NOTICED,
                                                     Meeting.starts_at > utcnow() + timedelta(hours=hours))).all()
    lost = [m for m in meetings if f"meeting-{m.id}-reminder-{m.ical_sequence}" not in waiting]
    for meeting in lost:
        schedule_reminder(meeting)
    return len(lost)
