"""Operations: is Mailer healthy (database, Redis, workers, queues), what failed, and why the mail
settings do not work, said in plain words for a volunteer secretary.

Read by the public /health endpoint (for monitoring: counts and yes/no only, never a setting,
an address or a job's arguments) and by the CLP secretary's operations page."""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
from dataclasses import dataclass

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job
from sqlalchemy import text

from mailer.db import session
from mailer.mail import NotSent

HEALTH_TIMEOUT = 2  # seconds: a monitor asking must get an answer, not wait on a dead Redis


# --- health ---------------------------------------------------------------------------------

def _redis() -> Redis | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    return Redis.from_url(url, socket_connect_timeout=HEALTH_TIMEOUT, socket_timeout=HEALTH_TIMEOUT)


def database_ok() -> bool:
    try:
        session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable" to a monitor
        session.rollback()
        return False


def queue_lengths(conn: Redis) -> dict[str, int]:
    """Jobs waiting, running, scheduled for later (retries, reminders) and failed."""
    q = Queue(current_app.config["QUEUE_NAME"], connection=conn)
    return {"queued": q.count, "started": q.started_job_registry.count,
            "scheduled": q.scheduled_job_registry.count, "failed": q.failed_job_registry.count}


def health() -> dict:
    """What a monitor needs: {ok, database, redis, workers, queues}; no setting, no personal data."""
    report = {"database": database_ok(), "redis": False, "workers": 0, "queues": {}}
    conn = _redis()
    if conn is not None:
        try:
            conn.ping()
            report["redis"] = True
            report["workers"] = Worker.count(queue=Queue(current_app.config["QUEUE_NAME"], connection=conn))
            report["queues"] = queue_lengths(conn)
        except (RedisError, OSError):
            pass
        finally:
            conn.close()
    report["ok"] = report["database"] and report["redis"]
    return report


# --- the operations page ----------------------------------------------------------------------

@dataclass
class WorkerInfo:
    name: str
    host: str
    state: str
    current_job: str
    last_seen: object
    successes: int
    failures: int


@dataclass
class FailedJob:
    id: str
    what: str          # the job function's short name
    ended_at: object
    error: str         # the last line of the traceback: the exception, not the stack


def workers(conn: Redis) -> list[WorkerInfo]:
    """The workers listening on our queue (RQ's worker registry: a Redis shared with other queues,
    or the tests', holds theirs too), as the page lists them."""
    out = []
    for w in Worker.all(queue=Queue(current_app.config["QUEUE_NAME"], connection=conn)):
        out.append(WorkerInfo(w.name, w.hostname or "", str(w.get_state()), w.get_current_job_id() or "",
                              w.last_heartbeat, w.successful_job_count, w.failed_job_count))
    return sorted(out, key=lambda w: w.name)


def failed_jobs(conn: Redis, limit: int = 50) -> list[FailedJob]:
    """The newest failed jobs (their ids and errors; arguments are ids only, and are not shown)."""
    q = Queue(current_app.config["QUEUE_NAME"], connection=conn)
    registry = q.failed_job_registry
    ids = registry.get_job_ids(0, -1)[-limit:][::-1]
    out = []
    for job in Job.fetch_many(ids, connection=conn):
        if job is None:
            continue
        result = job.latest_result()
        lines = ((result.exc_string if result else "") or "").strip().splitlines()
        out.append(FailedJob(job.id, (job.func_name or "").rpartition(".")[2], job.ended_at,
                             lines[-1][:300] if lines else ""))
    return out


def retry_failed(conn: Redis, job_id: str) -> bool:
    """Put a failed job back on the queue (jobs are idempotent: a retry never sends twice)."""
    q = Queue(current_app.config["QUEUE_NAME"], connection=conn)
    if job_id not in q.failed_job_registry:
        return False
    q.failed_job_registry.requeue(job_id)
    return True


def mail_settings() -> dict:
    """The outgoing and incoming mail settings an officer may see: never a password."""
    cfg = current_app.config
    security = "SSL (implicit TLS)" if cfg.get("MAIL_USE_SSL") else "STARTTLS" if cfg.get("MAIL_USE_TLS") else "none"
    return {
        "smtp": {"host": cfg.get("MAIL_SERVER") or "", "port": cfg.get("MAIL_PORT"), "tls": security,
                 "user": cfg.get("MAIL_USERNAME") or "", "password_set": bool(cfg.get("MAIL_PASSWORD")),
                 "catcher": bool(cfg.get("MAIL_CATCHER"))},
        "imap": {"host": cfg.get("IMAP_HOST") or "", "port": cfg.get("IMAP_PORT"), "tls": cfg.get("IMAP_SECURITY"),
                 "user": cfg.get("IMAP_USERNAME") or "", "password_set": bool(cfg.get("IMAP_PASSWORD")),
                 "folder": cfg.get("IMAP_FOLDER")},
    }


def send_test(to: str) -> None:
    """A test message to `to`, through the mail transport every message takes (its limits, DKIM);
    NotSent when it did not go, raised from the relay's own exception when it could not be
    reached, so that `diagnose` can name the cause."""
    from mailer.mail import PAGE_PATIENCE, envelope_sender, send_now, service_message

    org = current_app.config["ORG_NAME"]
    message = service_message(to, f"{org}: test message from Mailer",
                              "This is a test message from Mailer's operations page.\n\n"
                              "It reached you, so the outgoing mail settings work.\n")
    send_now(envelope_sender(), to, message.as_bytes(), patience=PAGE_PATIENCE)


# --- diagnosis ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Diagnosis:
    kind: str       # auth, tls, port, host, refused, timeout, rejected, other
    sentence: str   # what went wrong and what to check, in plain words


def _chain(exc: BaseException):
    """`exc`, then what it was raised from: a transport's NotSent names its cause."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__


def diagnose(exc: BaseException, service: str = "SMTP") -> Diagnosis:
    """A plain sentence for an SMTP or IMAP failure (`service`: "SMTP" or "IMAP"), from the
    exception or any exception it was raised from (the deepest cause first: smtplib reports a
    timeout as a disconnection raised while handling it)."""
    prefix = "MAIL" if service == "SMTP" else "MAILER_IMAP"
    server = "mail relay" if service == "SMTP" else "mailbox server"
    for e in reversed(list(_chain(exc))):
        if isinstance(e, smtplib.SMTPAuthenticationError) or (
                isinstance(e, imaplib.IMAP4.error) and _looks_like_auth(str(e))):
            code = f" ({e.smtp_code})" if isinstance(e, smtplib.SMTPAuthenticationError) else ""
            return Diagnosis("auth", f"The {server} refused the user name or password{code}. Check {prefix}_USERNAME "
                             f"and {prefix}_PASSWORD; some providers need an app password rather than the "
                             "account's own.")
        if isinstance(e, smtplib.SMTPNotSupportedError) or (isinstance(e, imaplib.IMAP4.error)
                                                             and "TLS" in str(e).upper()):
            return Diagnosis("tls", f"The {server} does not offer STARTTLS on this port. Check the port and the TLS "
                             "setting: port 465 (or 993 for IMAP) uses SSL from the start, port 587 (or 143) "
                             "uses STARTTLS.")
        if isinstance(e, ssl.SSLCertVerificationError):
            return Diagnosis("tls", f"The {server}'s certificate could not be verified ({e.verify_message}). "
                             "Check that the host name is the one on its certificate.")
        if isinstance(e, ssl.SSLError):
            return Diagnosis("tls", f"The secure connection to the {server} failed: it did not answer in TLS "
                             f"on this port. Check the port and the TLS setting: port 465 (or 993 for IMAP) uses "
                             "SSL from the start, port 587 (or 143) uses STARTTLS.")
        if isinstance(e, socket.gaierror):
            setting = "MAIL_SERVER" if service == "SMTP" else "MAILER_IMAP_HOST"
            return Diagnosis("host", f"The {server}'s name could not be found. Check {setting} for a typing "
                             "mistake, and that this machine can reach the internet.")
        if isinstance(e, ConnectionRefusedError):
            return Diagnosis("refused", f"The {server} refused the connection: nothing is listening on that port. "
                             "Check the port number (SMTP relays use 587, 465 or 25; IMAP uses 993 or 143).")
        if isinstance(e, (TimeoutError, socket.timeout)):
            return Diagnosis("timeout", f"The {server} did not answer in time. Check the host and port; a firewall "
                             "may be blocking the port, or SSL was chosen for a STARTTLS port.")
        if isinstance(e, smtplib.SMTPServerDisconnected):
            return Diagnosis("port", f"The {server} closed the connection without a word. Usually the port and TLS "
                             "setting do not match: port 465 needs SSL, port 587 needs STARTTLS.")
        if isinstance(e, (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)):
            return Diagnosis("rejected", f"The {server} refused the message: {_said(e)}. Check that the sender "
                             "address is one the relay lets this account send from.")
        if isinstance(e, smtplib.SMTPResponseException):
            return Diagnosis("other", f"The {server} answered with an error: {_said(e)}.")
        if isinstance(e, NotSent) and e.result.code is not None:  # the relay took the connection, not the message
            return Diagnosis("rejected", f"The {server} refused the message: {e.result}. Check that the sender "
                             "address is one the relay lets this account send from.")
    return Diagnosis("other", f"The {server} could not be used: {type(exc).__name__}: {str(exc)[:200]}")


def _looks_like_auth(message: str) -> bool:
    words = message.upper()
    return any(w in words for w in ("AUTHENTICATIONFAILED", "LOGIN FAILED", "INVALID CREDENTIALS", "AUTHENTICATE FAILED",
                                    "REFUSED THE LOGIN"))


def _said(e) -> str:
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = {code for code, _msg in e.recipients.values()}
        return "recipient refused (" + ", ".join(str(c) for c in sorted(codes)) + ")"
    code, msg = getattr(e, "smtp_code", ""), getattr(e, "smtp_error", b"")
    msg = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return f"{code} {msg}".strip()[:200]


def check_imap() -> None:
    """Log in to the reply mailbox and out again (raises ImapError when it cannot)."""
    from mailer.inbound import imap

    imap._logout(imap.connect())
