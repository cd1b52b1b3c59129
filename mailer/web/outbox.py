"""The Outbox: what the local mail catcher received, for trying Mailer out on one machine.

Caught mail holds every member's tokens and every officer's password-reset link, so the Outbox
is the CLP secretary's alone, and exists only while the catcher is in use. Lists and searches
read the catcher's index (mailer/catcher.py), never the message files; a message's page reads
its one file. Its HTML part is sanitised and shown in a sandboxed frame that runs nothing."""

from __future__ import annotations

from pathlib import Path

import bleach
from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user
from markupsafe import Markup, escape

from mailer import catcher
from mailer.inbound.sanitize import sanitize_inbound_html
from mailer.pagination import Cursor, paginate_list
from mailer.models import Role
from mailer.web.correspondence import MESSAGE_HTML_HEADERS

bp = Blueprint("outbox", __name__, url_prefix="/outbox")


def outbox_path() -> Path:
    return Path(current_app.instance_path) / "outbox"


def outbox_open_to(officer) -> bool:
    """Only the CLP secretary reads the catcher: anyone else could read a reset link meant for them."""
    return bool(current_app.config["MAIL_CATCHER"]) and officer.is_authenticated and officer.role is Role.CLP_SECRETARY


@bp.before_request
def _only_with_catcher():
    if not outbox_open_to(current_user):
        abort(404)


@bp.route("/")
def index():
    q = (request.args.get("q") or "").strip()[:200]
    entries = catcher.search(catcher.index(outbox_path()), q)
    page = paginate_list(entries, lambda e: e["key"], Cursor.from_args(request.args), current_app.config["PAGE_SIZE"])
    page.items = [catcher.summary(e) for e in page.items]
    return render_template("web/outbox/list.html", page=page, q=q, args={"q": q} if q else {})


def _message(key: str) -> catcher.CaughtMessage:
    try:
        return catcher.read(outbox_path(), key)
    except (KeyError, ValueError, OSError):
        abort(404)


def _clickable(text: str) -> Markup:
    """The text part, escaped, with its http(s) addresses made links (opening in a new tab)."""
    linked = bleach.linkify(str(escape(text)), callbacks=[bleach.callbacks.nofollow, bleach.callbacks.target_blank],
                            parse_email=False)
    return Markup(bleach.clean(linked, tags={"a"}, attributes={"a": ["href", "rel", "target"]},
                               protocols={"http", "https"}))


@bp.route("/<key>")
def detail(key: str):
    caught = _message(key)
    text = caught.message.get_body(preferencelist=("plain",))
    html = caught.message.get_body(preferencelist=("html",))
    headers = [(name, str(value)) for name, value in caught.message.raw_items()]
    return render_template("web/outbox/detail.html", caught=caught, headers=headers,
                           text=_clickable(text.get_content()) if text else "", has_html=html is not None)


@bp.route("/<key>/html")
def html(key: str):
    """The HTML part, sanitised, for the detail page's sandboxed frame: nothing in it may run."""
    part = _message(key).message.get_body(preferencelist=("html",))
    if part is None:
        abort(404)
    page = ('<!doctype html><html><head><meta charset="utf-8"><style>body{font-family:sans-serif;margin:.5rem}'
            "img{max-width:100%}table{max-width:100%}</style></head><body>"
            f"{sanitize_inbound_html(part.get_content())}</body></html>")
    return Response(page, mimetype="text/html", headers=MESSAGE_HTML_HEADERS)


@bp.route("/<key>.eml")
def raw(key: str):
    _message(key)
    return Response(catcher.raw_bytes(outbox_path(), key), mimetype="message/rfc822",
                    headers={"Content-Disposition": f"attachment; filename={key}.eml"})
