"""The admin web app: public sign-in pages, and everything else behind a login."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, render_template
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError

from mailer.models import MemberStatus, Role

LONDON = ZoneInfo("Europe/London")


def init_app(app: Flask) -> None:
    """Register the blueprints, error pages and what every page template needs."""
    from mailer.web import (account, audit, auth, campaigns, correspondence, dashboard, imports, meetings, members, officers,
                            outbox, public)

    admin = Blueprint("admin", __name__)

    @admin.before_request
    @login_required
    def _signed_in_only():
        """Every admin page needs a signed-in officer: secure by default, not per view."""

    for bp in (dashboard.bp, members.bp, campaigns.bp, correspondence.bp, meetings.bp, imports.bp, officers.bp, audit.bp,
               outbox.bp, account.bp):
        admin.register_blueprint(bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(public.bp)  # reached from members' email: no login, token-checked
    from mailer.web import inbound_hooks
    app.register_blueprint(inbound_hooks.bp)  # mail coming in: no login, secret- or signature-checked
    app.register_blueprint(admin)

    app.register_error_handler(403, _error_page(403, "You do not have access to this page."))
    app.register_error_handler(404, _error_page(404, "There is nothing at this address."))
    app.register_error_handler(413, _error_page(413, "That file is too large."))
    app.register_error_handler(CSRFError, lambda e: (render_template(
        "web/error.html", code=400, message="The form had expired. Go back, reload the page and try again."), 400))

    @app.context_processor
    def _page_context():
        return {"org_name": app.config["ORG_NAME"], "Role": Role, "Status": MemberStatus,
                "outbox_enabled": app.config["MAIL_CATCHER"], "me": current_user, "pairs": _pairs}

    app.jinja_env.filters["when"] = _when

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
        return response


def _error_page(code: int, message: str):
    def handler(_exc):
        return render_template("web/error.html", code=code, message=message), code

    return handler


def _when(value) -> str:
    """A stored UTC time as officers read it: UK local time."""
    return value.astimezone(LONDON).strftime("%d/%m/%Y %H:%M") if value else ""


def _pairs(values, labels=None) -> list[tuple]:
    """(value, label) options for a <select>, from values and optional labels."""
    values = list(values)
    return list(zip(values, list(labels) if labels is not None else values))
