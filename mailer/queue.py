"""The RQ queue on Redis: Redis carries only work to do; the database stays the source of truth."""

from __future__ import annotations

import logging

from flask import Flask, current_app
from redis import Redis
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
    """Work the queue (with RQ's scheduler) until stopped; what `python worker.py` runs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with app.app_context():
        reconcile_on_start()
        from mailer.sending.batch import prepare_worker

        prepare_worker()
        worker = Worker([get_queue()], connection=redis_connection())
        return worker.work(burst=burst, with_scheduler=True)


def reconcile_on_start() -> dict:
    """Put back any work Redis lost (a flush, a restart, a killed worker): the database knows."""
    from mailer.inbound import correspondence, imap
    from mailer.sending.campaigns import reconcile

    found = reconcile()
    found["inbound_jobs"] = requeue_inbound()
    found["replies"] = correspondence.requeue_replies()  # officers' answers not yet sent
    found["imap_poll"] = imap.ensure_polling()  # the poll chain, when MAILER_IMAP_HOST is set
    if any(found.values()):
        logging.getLogger("mailer").info("reconciled the queue with the database: %s", found)
    return found


def requeue_inbound() -> int:
    """Queue processing again for stored messages still waiting whose job Redis no longer holds."""
    from mailer.inbound import store

    q = get_queue()
    waiting = (set(q.get_job_ids()) | set(q.scheduled_job_registry.get_job_ids())
               | set(q.started_job_registry.get_job_ids()))
    pending = {job_id.split("-")[1] for job_id in waiting if job_id.startswith("inbound-")}  # inbound-<id>-<attempt>
    lost = [message_id for message_id in store.unprocessed() if str(message_id) not in pending]
    for message_id in lost:
        store.enqueue_processing(message_id)
    return len(lost)
