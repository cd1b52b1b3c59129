"""The job registry: every RQ job function, its deterministic id, how it is queued (now or at a
time, retries, timeout), and the one reconcile that rebuilds all pending work from the database.

Services never queue: they record work with `mailer.work.after_commit(name, *args)`, and once the
session commits, `hand_over` queues it by name through QUEUERS below (a rollback discards it).
Each job takes ids, runs in its own app context, commits its own work, and is safe to run twice.
Ids are built here only, and never read back: what a job is for is in its arguments.

(Over 400 lines with a reason: the registry is one list of jobs, ids and queuing rules, and the
reconcile that mirrors it; splitting it would put an id's building and its finding apart.)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import wraps

from flask import Flask, current_app, has_app_context
from redis import exceptions as redis_errors
from rq import Retry, Worker
from rq.job import Job

from mailer import queue
from mailer.db import session, utcnow
from mailer.models import Officer

log = logging.getLogger("mailer")

# A failed job is tried again for as long as the trouble lasts (the database away, a work-horse
# killed), every five minutes at most: the retry finds only what is left.
RETRY_FOREVER = Retry(max=100_000, interval=[5, 15, 30, 60, 120, 300])
IMAP_PREFIX = "imap-poll-"


def init_app(app: Flask) -> None:
    """Be the registry the app's commits hand their work to (mailer.work)."""
    app.extensions["mailer.jobs"] = hand_over


def _app():
    if has_app_context():
        return current_app._get_current_object()
    from mailer import create_app

    return create_app()


def job(fn):
    """Run `fn` inside its own app context (its own database session)."""

    @wraps(fn)
    def wrapped(*args, **kwargs):
        with _app().app_context():
            return fn(*args, **kwargs)

    return wrapped


# --- ids: built here, and only here ------------------------------------------------------------

def start_id(campaign_id: int) -> str:
    return f"campaign-{campaign_id}-start"


def batch_id(campaign_id: int, batch_no: int, *why) -> str:
    """A batch's job: `why` (a resume, a reconcile, a retry) makes a second job for the same batch."""
    return "-".join(str(part) for part in ("campaign", campaign_id, "batch", batch_no, *why))


def reminder_id(meeting_id: int, sequence: int) -> str:
    return f"meeting-{meeting_id}-reminder-{sequence}"


def reply_id(answer_id: int) -> str:
    return f"reply-{answer_id}-{time.time_ns()}"  # a resend is a new job, whatever the old one left


def inbound_id(message_id: int, attempt: int) -> str:
    return f"inbound-{message_id}-{attempt}"


def inbound_batch_id(message_ids: list[int]) -> str:
    return f"inbound-batch-{message_ids[0]}-{message_ids[-1]}"


def poll_id(every: int, slot: int) -> str:
    return f"{IMAP_PREFIX}{every}-{slot}"


def bulletin_id(week: str) -> str:
    """The weekly bulletin's run for `week` ("2026-W49"): one job a week, whoever queues it."""
    return f"weekly-bulletin-{week}"


# --- the jobs ----------------------------------------------------------------------------------

@job
def send_password_reset(officer_id: int) -> str:
    """Email an officer a signed, expiring link to set a new password."""
    from mailer.officers import service

    officer = session.get(Officer, officer_id)
    if officer is None or not officer.active:
        return "skipped"
    service.send_reset_email(officer)
    return "sent"


@job
def start_campaign(campaign_id: int) -> str:
    """Snapshot a campaign's recipients and fan out its batch jobs (once, whenever it runs)."""
    from mailer.sending import campaigns

    outcome = campaigns.start(campaign_id)
    session.commit()  # the snapshot; its batch jobs are queued once it is in
    return outcome


@job
def send_batch(campaign_id: int, batch_no: int, outage: int = 0) -> dict:
    """Send what is left of one batch of a campaign (`outage`: runs in a row that found the relay away).
    The batch commits as it goes (its fencing protocol); the last commit queues its retry."""
    from mailer.sending import batch

    result = batch.send_batch(campaign_id, batch_no, outage)
    session.commit()
    return result


@job
def reconcile() -> dict:
    """Rebuild the queue from the database (after a Redis flush or a restart)."""
    return reconcile_all()


@job
def process_inbound(message_id: int) -> str:
    """Parse, classify, match and thread one stored inbound message (it claims, then commits, the
    message itself: see mailer.inbound.process)."""
    from mailer.inbound import process

    outcome = process.process(message_id)
    session.commit()
    return outcome


@job
def process_inbound_batch(message_ids: list[int]) -> dict:
    """Process several stored inbound messages as one job and one transaction (each message in a
    savepoint of its own: see process.process_many)."""
    from mailer.inbound import process

    outcomes = process.process_many(message_ids)
    session.expunge_all()  # committed: keep the identity map small for the worker's next job
    return outcomes


@job
def send_reply(reply_id: int) -> str:
    """Send an officer's reply from the correspondence log (after the commit that recorded it)."""
    from mailer.inbound import correspondence

    try:
        return correspondence.send_reply(reply_id)
    finally:
        session.commit()  # sent, or why not yet: kept either way (a temporary failure is retried)


@job
def send_meeting_reminder(meeting_id: int, sequence: int) -> str:
    """Remind entitled members who have not sent apologies (for this version of the meeting)."""
    from mailer.meetings import service

    outcome = service.send_reminder(meeting_id, sequence)
    session.commit()
    return outcome


@job
def apply_retention() -> dict:
    """Delete what is older than the retention periods (counts only in the audit log)."""
    from mailer import retention

    outcome = retention.run().as_dict()
    session.commit()
    return outcome


@job
def make_weekly_bulletin(week: str) -> str:
    """Make the CLP's weekly bulletin draft for `week`, once (a second run finds it made: the
    database's routine record), then put next week's run on the schedule."""
    from mailer import bulletin

    if week != bulletin.period():
        outcome = f"skipped: the week {week} has passed"
    else:
        made = bulletin.make(None)
        outcome = f"made campaign {made.campaign.id}" if made.created else "already made this week"
    session.commit()
    schedule_bulletin()
    return outcome


@job
def poll_imap() -> dict:
    """The IMAP poll: schedule the next one first (a killed poll must not end the chain), then poll.
    A failure is logged and reported, not raised: the chain goes on and tries again."""
    from mailer.inbound import imap

    if not imap.configured():
        return {"skipped": "IMAP is not configured"}  # and the chain ends here
    schedule_poll()
    try:
        result = imap.locked_poll()
    except imap.ImapError as exc:
        log.error("IMAP poll failed: %s", exc)
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - e.g. the database away for a moment: next poll retries
        log.exception("IMAP poll failed")
        return {"error": f"{type(exc).__name__}: {exc}"}
    return result.as_dict() if result is not None else {"skipped": "another poll is running"}


# --- how each is queued --------------------------------------------------------------------------

def _at(when: datetime | None, func, *args, job_id: str, **options):
    """Queue now, or at `when` when that is still to come."""
    q = queue.get_queue()
    if when is not None and when > utcnow() + timedelta(seconds=1):
        return q.enqueue_at(when, func, *args, job_id=job_id, **options)
    return q.enqueue(func, *args, job_id=job_id, **options)


def queue_password_reset(officer_id: int) -> None:
    """Nothing to commit first: the request asks only for an email."""
    queue.get_queue().enqueue(send_password_reset, officer_id)


def queue_start(campaign_id: int, scheduled_at: datetime | None = None) -> None:
    _at(scheduled_at, start_campaign, campaign_id, job_id=start_id(campaign_id), retry=RETRY_FOREVER)


def batch_options() -> dict:
    """How every batch job is queued: retried while the trouble lasts, and given the time its
    messages need: BATCH_TIMEOUT, or more under a relay rate limit that makes the batch slower."""
    cfg = current_app.config
    timeout = cfg["BATCH_TIMEOUT"]
    slowest = min((n / seconds for n, seconds in ((cfg["RATE_PER_MINUTE"], 60), (cfg["RATE_PER_HOUR"], 3600),
                                                   (cfg["RATE_PER_DAY"], 86400)) if n), default=None)
    if slowest:
        timeout = max(timeout, int(cfg["BATCH_SIZE"] / slowest * 1.5) + 60)
    return {"job_timeout": timeout, "retry": RETRY_FOREVER}


def queue_batches(campaign_id: int, batch_nos: list[int], reason: str = "", waiting: set[str] | None = None) -> int:
    """A job for each batch, unless one is already waiting for it (the start's ids are
    deterministic, so a repeated start queues nothing twice; a resume or reconcile adds `reason`).
    Returns how many were queued."""
    waiting = queue.waiting_job_ids() if waiting is None else waiting
    queued = 0
    for batch_no in batch_nos:
        base = batch_id(campaign_id, batch_no)
        if any(job_id == base or job_id.startswith(base + "-") for job_id in waiting):
            continue
        queue.get_queue().enqueue(send_batch, campaign_id, batch_no, job_id=batch_id(campaign_id, batch_no,
                                                                                       *([reason] if reason else [])),
                                  **batch_options())
        queued += 1
    return queued


def queue_batch_later(campaign_id: int, batch_no: int, when: datetime, why: str, outage: int = 0) -> None:
    """A batch again at `when`: its deferred rows' retry, or after the relay was away."""
    queue.get_queue().enqueue_at(when, send_batch, campaign_id, batch_no, outage,
                                 job_id=batch_id(campaign_id, batch_no, why), **batch_options())


def queue_reply(answer_id: int) -> None:
    base = current_app.config["RETRY_BASE_SECONDS"]
    queue.get_queue().enqueue(send_reply, answer_id, job_id=reply_id(answer_id),
                              retry=Retry(max=3, interval=[base, base * 4, base * 16]))


def queue_inbound(message_id: int, attempt: int = 0) -> None:
    queue.get_queue().enqueue(process_inbound, message_id, job_id=inbound_id(message_id, attempt), retry=RETRY_FOREVER)


def queue_inbound_batch(message_ids: list[int]) -> None:
    queue.get_queue().enqueue(process_inbound_batch, message_ids, job_id=inbound_batch_id(message_ids))


def queue_reminder(meeting_id: int, sequence: int, when: datetime) -> None:
    _at(when, send_meeting_reminder, meeting_id, sequence, job_id=reminder_id(meeting_id, sequence))


def schedule_poll(now: float | None = None) -> str | None:
    """Put the next IMAP poll on RQ's schedule, at the start of the next time slot, under that
    slot's id: scheduling it again (another worker, reconcile) replaces it, so there is one chain."""
    from mailer.inbound import imap

    if not imap.configured():
        return None
    every = max(1, int(current_app.config["IMAP_POLL_SECONDS"]))
    slot = int((time.time() if now is None else now) // every) + 1
    job_id = poll_id(every, slot)
    queue.get_queue().enqueue_at(datetime.fromtimestamp(slot * every, timezone.utc), poll_imap,
                                 job_id=job_id, job_timeout=imap.LOCK_TTL, result_ttl=max(600, every * 3),
                                 failure_ttl=86400, description="poll the IMAP mailbox")
    return job_id


def schedule_bulletin(waiting: set[str] | None = None) -> str | None:
    """Queue the weekly bulletin's next run (at its time; now when this week's is due and was not
    made) unless it is waiting already. Returns the job id when it queued one. Off, or wrongly
    set (logged), it queues nothing."""
    from mailer import bulletin

    try:
        upcoming = bulletin.next_run()
    except bulletin.BulletinSettingError as exc:
        log.error("the weekly bulletin routine is not running: %s", exc)
        return None
    if upcoming is None:
        return None
    week, when = upcoming
    job_id = bulletin_id(week)
    if job_id in (queue.waiting_job_ids() if waiting is None else waiting):
        return None
    _at(when, make_weekly_bulletin, week, job_id=job_id, retry=RETRY_FOREVER)
    return job_id


QUEUERS = {"start_campaign": queue_start, "send_batches": queue_batches, "send_batch_later": queue_batch_later,
           "send_reply": queue_reply, "process_inbound": queue_inbound, "process_inbound_batch": queue_inbound_batch,
           "meeting_reminder": queue_reminder}


def hand_over(work: list[tuple]) -> None:
    """Queue what a transaction recorded, now that it has committed. A failure (Redis away) is
    logged, not raised: the commit stands, the database holds the work, and reconcile queues it."""
    for kind, args, options in work:
        try:
            QUEUERS[kind](*args, **options)
        except (redis_errors.RedisError, OSError, queue.NoRedisConfigured) as exc:
            log.warning("could not queue %s%s (%s); reconcile will", kind, args, exc)
        except Exception:  # noqa: BLE001 - as above: the work is in the database
            log.exception("could not queue %s%s; reconcile will", kind, args)


# --- reconcile: all pending work, rebuilt from the database ------------------------------------

def reconcile_all() -> dict:
    """Put back any work Redis lost (a flush, a restart, a killed worker): the database knows.
    Start jobs and scheduled campaigns, batches (and their deferred retries), cancelled campaigns'
    rows, meeting reminders, inbound processing, officers' replies, the IMAP poll and the weekly
    bulletin routine's next run. Run at worker
    start, every RECONCILE_SECONDS by one worker, and by `mailer reconcile`. Safe to run any time,
    from any number of places: nothing is queued twice."""
    found = {"due_jobs": queue.release_due_jobs()}
    waiting = queue.waiting_job_ids()
    found.update(reconcile_campaigns(waiting))
    found["reminders"] = reconcile_reminders(waiting)
    found["inbound_jobs"] = reconcile_inbound(waiting)
    found["replies"] = reconcile_replies()
    found["imap_poll"] = ensure_polling()
    found["weekly_bulletin"] = schedule_bulletin(waiting)
    session.commit()
    if any(found.values()):
        log.info("reconciled the queue with the database: %s", found)
    return found


def reconcile_campaigns(waiting: set[str] | None = None) -> dict:
    """Every scheduled campaign has its start job, every sending one its batch jobs (for rows
    queued, deferred, or left by a run that died), every cancelled one no row left waiting."""
    from mailer.sending import campaigns

    waiting = queue.waiting_job_ids() if waiting is None else waiting
    started = batches = 0
    for campaign in campaigns.scheduled():
        if start_id(campaign.id) not in waiting:
            queue_start(campaign.id, campaign.scheduled_at)
            started += 1
    reason = f"reconcile-{int(utcnow().timestamp())}"
    for campaign in campaigns.sending():
        batches += queue_batches(campaign.id, campaigns.batches_with_work(campaign.id), reason, waiting)
        campaigns.finish_if_done(campaign.id)
    settled = campaigns.settle_all_cancelled()
    session.commit()
    return {"start_jobs": started, "batch_jobs": batches, "cancelled_rows": settled}


def reconcile_reminders(waiting: set[str] | None = None) -> int:
    """Queue again the reminder of every noticed meeting still to come whose reminder is due and
    has not gone (the meeting's row says so), when Redis no longer holds its job."""
    from mailer.meetings import service

    waiting = queue.waiting_job_ids() if waiting is None else waiting
    lost = [m for m in service.reminders_to_send() if reminder_id(m.id, m.ical_sequence) not in waiting]
    for meeting in lost:
        queue_reminder(meeting.id, meeting.ical_sequence, meeting.reminder_due_at)
    return len(lost)


def _waiting_args(prefix: str, waiting: set[str]) -> list[tuple]:
    """The arguments of the waiting jobs whose ids start with `prefix` (what they are for)."""
    ids = [job_id for job_id in waiting if job_id.startswith(prefix)]
    return [j.args for j in Job.fetch_many(ids, connection=queue.redis_connection()) if j is not None]


def reconcile_inbound(waiting: set[str] | None = None) -> int:
    """Queue processing again for stored messages still waiting, not held by a live job, whose
    job Redis no longer holds (or never held: stored while no queue was reachable)."""
    from mailer.inbound import store

    waiting = queue.waiting_job_ids() if waiting is None else waiting
    pending: set[int] = set()
    for args in _waiting_args("inbound-", waiting):
        pending.update(args[0] if isinstance(args[0], list) else [args[0]])
    lost = [message_id for message_id in store.unprocessed() if message_id not in pending]
    for message_id in lost:
        queue_inbound(message_id, store.attempts(message_id))
    return len(lost)


def reconcile_replies() -> int:
    """Queue again every reply not sent, not refused for good, whose job Redis no longer holds."""
    from mailer.inbound import correspondence

    waiting = queue.waiting_job_ids()  # a running job holds its reply's lease (unsent_replies)
    pending = {args[0] for args in _waiting_args("reply-", waiting)}
    lost = [answer_id for answer_id in correspondence.unsent_replies() if answer_id not in pending]
    for answer_id in lost:
        queue_reply(answer_id)
    return len(lost)


def ensure_polling() -> str | None:
    """Make sure the IMAP poll chain exists when IMAP is set. A poll already waiting is the chain:
    return it rather than start another in the next time slot."""
    from mailer.inbound import imap

    if not imap.configured():
        return None
    polls = sorted(job_id for job_id in queue.waiting_job_ids() if job_id.startswith(IMAP_PREFIX))
    return polls[0] if polls else schedule_poll()


# --- the worker ----------------------------------------------------------------------------------

def run_worker(app: Flask, burst: bool = False) -> bool:
    """Work the queue (with RQ's scheduler) until stopped; what `python worker.py` runs.

    Redis going away (a restart, a network cut) does not end the worker: RQ's worker gives up on
    a connection error outside its wait for jobs, so it is started again after a back-off that
    doubles up to 30 s, and what Redis may have lost is rebuilt from the database first. Only
    SIGTERM/SIGINT (or the end of a burst) stops it. Every RECONCILE_SECONDS one worker of all
    those sharing the Redis rebuilds lost work from the database."""
    from rq.exceptions import StopRequested

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    wlog = logging.getLogger("mailer.worker")
    with app.app_context():
        _reconcile_logged(wlog)
        from mailer.sending.batch import prepare_worker

        prepare_worker()
    if not burst:
        start_reconciler(app)
    wait = 1.0
    while True:
        worker = None
        try:
            with app.app_context():
                worker = Worker([queue.get_queue()], connection=queue.redis_connection())
                worked = worker.work(burst=burst, with_scheduler=True)
            if burst or _stopping(worker):
                return worked
            wlog.warning("the worker stopped (Redis unreachable?); starting again in %.0f s", wait)
        except (StopRequested, KeyboardInterrupt):
            return False
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            if _stopping(worker):
                return False
            wlog.warning("Redis unreachable (%s); trying again in %.0f s", exc, wait)
        try:
            time.sleep(wait)
        except (StopRequested, KeyboardInterrupt):
            return False
        if _stopping(worker):
            return False
        wait = min(wait * 2, 30.0)
        with app.app_context():
            if _reconcile_logged(wlog):
                wait = 1.0


def _stopping(worker: Worker | None) -> bool:
    """Whether the worker was asked to stop (SIGTERM, SIGINT), rather than lost Redis."""
    return worker is not None and (worker._stop_requested or worker._shutdown_requested_date is not None)


def _reconcile_logged(wlog) -> bool:
    """Reconcile, logging rather than raising when Redis or the database is away (True if it ran)."""
    try:
        reconcile_all()
        return True
    except Exception as exc:  # noqa: BLE001 - the next try, or the next worker, will do it
        session.rollback()
        wlog.warning("could not reconcile the queue with the database: %s", exc)
        return False


def _once_per(name: str, seconds: int) -> bool:
    """True for the first caller, of all the workers sharing the Redis, in each period of `seconds`:
    it takes the key `mailer:<queue>:<name>` (SET NX, expiring after the period); the others find
    it taken until then. A period of 0 or less never comes."""
    if seconds <= 0:
        return False
    key = f"mailer:{current_app.config['QUEUE_NAME']}:{name}"
    return bool(queue.redis_connection().set(key, os.getpid(), nx=True, ex=seconds))


def schedule_retention() -> str | None:
    """Queue the retention job when a day (RETENTION_SECONDS) has passed since it was last queued,
    by whichever worker's reconcile tick gets there first. Returns the job id when queued."""
    if not _once_per("retention", int(current_app.config["RETENTION_SECONDS"])):
        return None
    job_id = f"retention-{utcnow():%Y%m%d%H%M}"
    queue.get_queue().enqueue(apply_retention, job_id=job_id)
    return job_id


def start_reconciler(app: Flask) -> threading.Thread:
    """A thread that, every RECONCILE_SECONDS, rebuilds lost work from the database, in one
    worker at a time: the first to claim the interval does it."""
    interval = max(1, int(app.config["RECONCILE_SECONDS"]))
    wlog = logging.getLogger("mailer.worker")

    def loop():
        while True:
            time.sleep(interval)
            try:
                with app.app_context():
                    if _once_per("reconcile", interval):
                        found = reconcile_all()
                        if any(found.values()):
                            wlog.info("reconciled: %s", found)
                    schedule_retention()  # once a day, by whichever worker comes first
            except Exception as exc:  # noqa: BLE001 - Redis or the database away: next time
                wlog.warning("scheduled reconcile failed: %s", exc)

    thread = threading.Thread(target=loop, name="mailer-reconcile", daemon=True)
    thread.start()
    return thread
