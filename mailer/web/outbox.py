"""The Outbox: what the local mail catcher received, for trying Mailer out on one machine.

Caught mail holds every member's tokens and every officer's password-reset link, so the Outbox
is the CLP secretary's alone, and exists only while the catcher is in use."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template
from flask_login import current_user

from mailer import catcher
from mailer.models import Role

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
    return render_template("web/outbox/list.html", messages=catcher.messages(outbox_path()))


def _message(key: str) -> catcher.CaughtMessage:
    try:
        return catcher.read(outbox_path(), key)
    except (KeyError, ValueError, OSError):
        abort(404)


@bp.route("/<key>")
def detail(key: str):
    caught = _message(key)
    text = caught.message.get_body(preferencelist=("plain",))
    html = caught.message.get_body(preferencelist=("html",))
    return render_template("web/outbox/detail.html", caught=caught,
                           text=text.get_content() if text else "", has_html=html is not None)


@bp.route("/<key>.eml")
def raw(key: str):
    _message(key)
    return Response(catcher.raw_bytes(outbox_path(), key), mimetype="message/rfc822",
                    headers={"Content-Disposition": f"attachment; filename={key}.eml"})
