"""The audit log, for the CLP secretary."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from mailer import audit
from mailer.auth import roles_required
from mailer.models import Role
from mailer.pagination import Cursor

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.route("/")
@roles_required(Role.CLP_SECRETARY)
def index():
    page = audit.events(request.args.get("action", ""), Cursor.from_args(request.args), current_app.config["PAGE_SIZE"])
    return render_template("web/audit/list.html", page=page, args=request.args.to_dict())
