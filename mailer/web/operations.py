"""Operations, for the CLP secretary: queues, workers, failed jobs, the mail settings and a test
send; and /health, public, for monitoring."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from redis.exceptions import RedisError

from mailer import operations
from mailer.inbound import imap
from mailer.models import Role

bp = Blueprint("operations", __name__, url_prefix="/operations")
health_bp = Blueprint("health", __name__)


@health_bp.route("/health")
def status():
    """For monitors: 200 when the database and Redis answer, 503 when not; counts only."""
    report = operations.health()
    return jsonify(report), 200 if report["ok"] else 503


@bp.before_request
def _secretary_only():
    if current_user.role is not Role.CLP_SECRETARY:
        abort(403)


@bp.route("/")
def index():
    conn = operations._redis()
    queues, workers, failed, redis_error = {}, [], [], None
    if conn is None:
        redis_error = "No Redis is configured: set MAILER_REDIS_URL, or start everything with `mailer up`."
    else:
        try:
            queues = operations.queue_lengths(conn)
            workers = operations.workers(conn)
            failed = operations.failed_jobs(conn)
        except (RedisError, OSError):
            redis_error = "Redis does not answer: nothing can be sent or received until it is back."
        finally:
            conn.close()
    return render_template("web/operations/index.html", form=FlaskForm(), queues=queues, workers=workers,
                           failed=failed, redis_error=redis_error, settings=operations.mail_settings(),
                           database_ok=operations.database_ok(), mailbox=imap.poll_progress())


@bp.route("/jobs/<job_id>/retry", methods=["POST"])
def retry(job_id: str):
    if not FlaskForm().validate_on_submit():
        abort(400)
    conn = operations._redis()
    try:
        done = conn is not None and operations.retry_failed(conn, job_id)
    except (RedisError, OSError):
        done = False
    finally:
        if conn is not None:
            conn.close()
    if done:
        flash("The job is back on the queue.", "info")
    else:
        flash("That job is no longer in the failed list.", "error")
    return redirect(url_for(".index"))


@bp.route("/test-email", methods=["POST"])
def test_email():
    """A test message to the signed-in secretary's own address, sent now so the answer is immediate."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        operations.send_test(current_user.email)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is said in words below
        flash("The test message was not sent. " + operations.diagnose(exc, "SMTP").sentence, "error")
    else:
        flash(f"A test message was sent to {current_user.email}. If it does not arrive, look in the spam folder.",
              "info")
    return redirect(url_for(".index"))


@bp.route("/check-mailbox", methods=["POST"])
def check_mailbox():
    """Log in to the reply mailbox once, to show whether the IMAP settings work."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        operations.check_imap()
    except Exception as exc:  # noqa: BLE001 - said in words below
        flash("Mailer could not open the reply mailbox. " + operations.diagnose(exc, "IMAP").sentence, "error")
    else:
        flash("Mailer signed in to the reply mailbox.", "info")
    return redirect(url_for(".index"))
