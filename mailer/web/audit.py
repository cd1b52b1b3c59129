"""The audit log, for the CLP secretary."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import func, select

from mailer.auth import roles_required
from mailer.db import session
from mailer.members.service import Page
from mailer.models import AuditEvent, Role

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.route("/")
@roles_required(Role.CLP_SECRETARY)
def index():
    per_page = current_app.config["PAGE_SIZE"]
    page = max(1, request.args.get("page", 1, type=int))
    stmt = select(AuditEvent)
    if request.args.get("action"):
        stmt = stmt.where(AuditEvent.action.startswith(request.args["action"]))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(per_page).offset((page - 1) * per_page)).all()
    return render_template("web/audit/list.html", page=Page(list(rows), total, page, per_page),
                           args=request.args.to_dict())
