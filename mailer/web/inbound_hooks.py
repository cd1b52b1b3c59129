"""Inbound mail over HTTPS: raw MIME with a bearer token, and the inbound webhooks of Mailgun,
Postmark and SendGrid. No login and no CSRF token (these are machines); each endpoint checks its
own secret or signature instead, and is off (404) until its setting is made.

Every endpoint: not configured -> 404; bad secret or signature -> 401 or 403, nothing stored;
too large -> 413; not a message -> 400; otherwise stored (committed) and then 200, a duplicate
included, so the provider stops retrying. A failure to store is a 500: the provider retries.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import Blueprint, Response, abort, current_app, jsonify, request

from mailer import queue
from mailer.auth import csrf
from mailer.inbound import formats
from mailer.inbound.store import store

bp = Blueprint("inbound_hooks", __name__, url_prefix="/inbound")
csrf.exempt(bp)

MAILGUN_MAX_AGE = 300      # seconds a Mailgun signature stays fresh
MAILGUN_TOKEN_TTL = 3600   # how long a used Mailgun token is remembered (well past MAILGUN_MAX_AGE)


def _plain(text: str, status: int, headers: dict | None = None) -> Response:
    return Response(text + "\n", status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})


def _limit() -> int:
    return int(current_app.config["INBOUND_MAX_BYTES"]) * 2


@bp.before_request
def _size_limits():
    """Mail may be far larger than the app's upload limit: this blueprint has its own."""
    request.max_content_length = _limit()
    request.max_form_memory_size = _limit()
    if request.content_length is not None and request.content_length > _limit():
        return _plain("Too large.", 413)


@bp.errorhandler(413)
def _too_large(_exc):
    return _plain("Too large.", 413)


@bp.errorhandler(formats.PayloadError)
def _bad_payload(exc):
    return _plain(f"Not accepted: {exc}.", 400)


def _body() -> bytes:
    """The request body, whole, or a 413. With a Content-Length werkzeug checks the size; a
    chunked body it would cut off at the limit without a word, so that one is read here, one
    byte past the limit, to tell a message that fits from one that was cut."""
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=True)
    stream, chunks, size = request.environ["wsgi.input"], [], 0
    while size <= _limit():
        chunk = stream.read(min(64 * 1024, _limit() + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > _limit():
        abort(413)
    return b"".join(chunks)


def _secret_matches(given: str, setting: str) -> bool:
    expected = str(current_app.config.get(setting) or "")
    return bool(expected) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _store(raw: bytes, transport: str):
    problem = formats.not_mail(raw)
    if problem:
        raise formats.PayloadError(f"this is not an email message: {problem}")
    message, created = store(raw, transport)
    return jsonify(stored=True, id=message.id, new=created), 200


# --- raw MIME with a bearer token -----------------------------------------------------------

@bp.route("/raw", methods=["POST"])
def raw():
    """POST the raw message (message/rfc822 or application/octet-stream) with
    `Authorization: Bearer <MAILER_INBOUND_WEBHOOK_TOKEN>`."""
    if not current_app.config.get("INBOUND_WEBHOOK_TOKEN"):
        return _plain("Not found.", 404)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _secret_matches(token.strip(), "INBOUND_WEBHOOK_TOKEN"):
        return _plain("A valid bearer token is needed.", 401, {"WWW-Authenticate": 'Bearer realm="mailer-inbound"'})
    if request.mimetype not in {"message/rfc822", "application/octet-stream"}:
        return _plain("Send the raw message as message/rfc822 or application/octet-stream.", 415)
    return _store(_body(), "webhook")


# --- Mailgun --------------------------------------------------------------------------------

def _mailgun_signature_ok(form: formats.Form) -> str | None:
    """Why the Mailgun signature fails (None when it holds): HMAC-SHA256 of timestamp + token
    under the signing key, fresh within MAILGUN_MAX_AGE."""
    timestamp, token, signature = (form.text(k).strip() for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and signature):
        return "the signature fields (timestamp, token, signature) are missing"
    key = str(current_app.config["MAILGUN_SIGNING_KEY"]).encode("utf-8")
    expected = hmac.new(key, (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8", "replace")):
        return "the signature does not match"
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return "the timestamp is not a number"
    if age > MAILGUN_MAX_AGE:
        return "the timestamp is stale"
    return None


@bp.route("/mailgun", methods=["POST"])
@bp.route("/mailgun/mime", methods=["POST"])  # Mailgun posts raw MIME only to a URL ending in "mime"
def mailgun():
    """A Mailgun route's forward() or store(notify=...) POST, checked by its signature; each
    token is taken once (a captured request cannot be replayed)."""
    if not current_app.config.get("MAILGUN_SIGNING_KEY"):
        return _plain("Not found.", 404)
    form = formats.parse_form(request.content_type or "", _body())
    problem = _mailgun_signature_ok(form)
    if problem:
        return _plain(f"Refused: {problem}.", 403)
    # The signature covers timestamp and token only, not the message: remember each token.
    token_key = "mailer:mailgun-token:" + hashlib.sha256(form.text("token").strip().encode()).hexdigest()
    try:
        first_use = queue.redis_connection().set(token_key, "1", nx=True, ex=MAILGUN_TOKEN_TTL)
    except Exception:  # noqa: BLE001 - without Redis a replay cannot be ruled out: Mailgun will retry
        current_app.logger.exception("cannot check the Mailgun token for replay")
        return _plain("Try again later.", 503)
    if not first_use:
        return _plain("Refused: this token was used before (a replay).", 403)
    try:
        return _store(formats.mailgun_to_mime(form), "mailgun")
    except formats.PayloadError:
        raise
    except Exception:
        queue.redis_connection().delete(token_key)  # not stored: Mailgun's retry must get through
        raise


# --- Postmark and SendGrid: a secret in the URL ---------------------------------------------

@bp.route("/postmark/<token>", methods=["POST"])
def postmark(token: str):
    """Postmark's inbound webhook JSON, at a URL carrying MAILER_POSTMARK_WEBHOOK_TOKEN."""
    if not current_app.config.get("POSTMARK_WEBHOOK_TOKEN"):
        return _plain("Not found.", 404)
    if not _secret_matches(token, "POSTMARK_WEBHOOK_TOKEN"):
        return _plain("Wrong token.", 401)
    return _store(formats.postmark_to_mime(_body()), "postmark")


@bp.route("/sendgrid/<token>", methods=["POST"])
def sendgrid(token: str):
    """SendGrid Inbound Parse, at a URL carrying MAILER_SENDGRID_WEBHOOK_TOKEN."""
    if not current_app.config.get("SENDGRID_WEBHOOK_TOKEN"):
        return _plain("Not found.", 404)
    if not _secret_matches(token, "SENDGRID_WEBHOOK_TOKEN"):
        return _plain("Wrong token.", 401)
    return _store(formats.sendgrid_to_mime(formats.parse_form(request.content_type or "", _body())), "sendgrid")
