"""The RQ queue on Redis: Redis carries only work to do; the database stays the source of truth.

Only the connection and the queue: which jobs exist, how they are queued and how lost work is
rebuilt is the job registry's (mailer.jobs), so any layer may use Redis without importing jobs."""

from __future__ import annotations

import time

from flask import Flask, current_app
from redis import Redis
from rq import Queue


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
        # No CLIENT SETINFO on connecting: it costs two round trips and a look through the installed
        # packages for redis-py's version (about 3 ms), paid again by every job's work-horse.
        conn = Redis.from_url(url, driver_info=None)
        current_app.extensions["mailer.redis"] = conn
    return conn


def get_queue() -> Queue:
    """The queue that web, CLI and every worker share."""
    return Queue(current_app.config["QUEUE_NAME"], connection=redis_connection())


def enqueue(func, *args, job_id: str | None = None, **kwargs):
    """Put `func(*args)` on the queue; `job_id` makes a repeated enqueue of the same work harmless."""
    return get_queue().enqueue(func, args=args, job_id=job_id, **kwargs)


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


def waiting_job_ids(started: bool = False) -> set[str]:
    """Ids of jobs waiting to run: queued, or scheduled for later (and, if `started`, running)."""
    q = get_queue()
    found = set(q.get_job_ids()) | set(q.scheduled_job_registry.get_job_ids())
    return found | set(q.started_job_registry.get_job_ids()) if started else found
