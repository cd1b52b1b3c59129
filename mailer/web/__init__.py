"""The admin web app: public sign-in pages, and everything else behind a login."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError

from mailer.auth import PUBLIC_ENDPOINTS  # noqa: F401 - the allowlist, read here by the tests
from mailer.errors import Refusal
from mailer.models import MemberStatus, Role

LONDON = ZoneInfo("Europe/London")



def init_app(app: Flask) -> None:
    """Register the blueprints, error pages and what every page template needs."""
    from mailer.web import (account, audit, auth, campaigns, correspondence, dashboard, imports, meetings, members, officers,
                            operations, outbox, privacy, public, welcome)
    # The campaigns' and meetings' blueprints' other pages (split by concern):
    from mailer.web import campaign_sends, meeting_sends, minutes  # noqa: F401

    admin = Blueprint("admin", __name__)

    @admin.before_request
    @login_required
    def _signed_in_only():
        """Every admin page needs a signed-in officer: secure by default, not per view."""

    for bp in (dashboard.bp, members.bp, campaigns.bp, correspondence.bp, meetings.bp, imports.bp, officers.bp, audit.bp,
               outbox.bp, account.bp, operations.bp, privacy.bp, welcome.bp):
        admin.register_blueprint(bp)
    app.register_blueprint(auth.bp)
    from mailer.auth import limit_sign_in
    limit_sign_in(app, "auth.login")
    limit_sign_in(app, "auth.reset_request", failures_only=False)
    app.register_error_handler(429, auth.too_many_sign_ins)
    app.register_blueprint(public.bp)  # reached from members' email: no login, token-checked
    from mailer.web import inbound_hooks
    app.register_blueprint(inbound_hooks.bp)  # mail coming in: no login, secret- or signature-checked
    app.register_blueprint(operations.health_bp)  # for monitors: no login, counts only
    app.register_blueprint(admin)

    app.register_error_handler(400, lambda e: (render_template(
        "web/error.html", code=400, message=e.description or "That request could not be read."), 400))
    app.register_error_handler(403, _error_page(403, "You do not have access to this page."))
    app.register_error_handler(404, _error_page(404, "There is nothing at this address."))
    app.register_error_handler(413, _error_page(413, "That file is too large."))
    app.register_error_handler(CSRFError, lambda e: (render_template(
        "web/error.html", code=400, message="The form had expired. Go back, reload the page and try again."), 400))
    app.register_error_handler(Refusal, refused)

    @app.context_processor
    def _page_context():
        return {"org_name": app.config["ORG_NAME"], "Role": Role, "Status": MemberStatus,
                "outbox_enabled": outbox.outbox_open_to(current_user), "me": current_user, "pairs": _pairs}

    app.jinja_env.filters["when"] = _when
    app.jinja_env.tests["web_address"] = _web_address

    https = str(app.config["BASE_URL"]).startswith("https://")

    @app.route("/favicon.ico")
    def favicon():
        """Browsers ask for it on every page: answer from the app (no 404s in the log)."""
        return app.send_static_file("favicon.ico")
    from mailer import words
    words.init_app(app)

    @app.after_request
    def _security_headers(response):
        if request.endpoint != "static":
            # Pages, exports and token pages carry personal data: no browser or proxy keeps a copy.
            response.headers["Cache-Control"] = "no-store"
        if https:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
        return response


def refused(exc: Refusal):
    """Every page's answer to a refusal: nothing of the request is kept, the reason is shown, and
    the officer is back on the form they came from (303, so a reload does not post again). A GET
    refused has no form to go back to: its reason is the page. A form its schema refuses
    (mailer.web.forms.parse) says what is wrong with each field, in the API's words; the forms
    with much to type (a member, a meeting, the composer, an officer) catch it themselves and
    show it beside what was typed."""
    from mailer.db import session

    session.rollback()
    if request.method == "GET":
        return render_template("web/error.html", code=400, message=str(exc)), 400
    flash(str(exc), "error")
    form_page = request.path if request.url_rule is not None and "GET" in request.url_rule.methods else None
    return redirect(_same_site_referrer() or form_page or url_for("admin.dashboard.index"), 303)


def _same_site_referrer() -> str | None:
    """The page the form was on, when it is one of ours (never an address elsewhere)."""
    came_from = urlsplit(request.referrer or "")
    if not came_from.path.startswith("/") or (came_from.netloc and came_from.netloc != request.host):
        return None
    return came_from.path + (f"?{came_from.query}" if came_from.query else "")


def _error_page(code: int, message: str):
    def handler(_exc):
        return render_template("web/error.html", code=code, message=message), code

    return handler


def _when(value) -> str:
    """A stored UTC time as officers read it: UK local time."""
    return value.astimezone(LONDON).strftime("%d/%m/%Y %H:%M") if value else ""


def _web_address(value) -> bool:
    """`{% if url is web_address %}`: only http(s) addresses become links (never javascript: or data:)."""
    return str(value or "").strip().lower().startswith(("https://", "http://"))


def _pairs(values, labels=None) -> list[tuple]:
    """(value, label) options for a <select>, from values and optional labels."""
    values = list(values)
    return list(zip(values, list(labels) if labels is not None else values))
