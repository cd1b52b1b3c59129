"""The first page after signing in: the state of the membership at a glance."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy import func, select

from mailer.auth import scope_members
from mailer.db import session
from mailer.models import ImportRun, Member

bp = Blueprint("dashboard", __name__)


@bp.route("/")
def index():
    by_status = dict(session.execute(scope_members(
        select(Member.status, func.count()).group_by(Member.status), current_user)).all())
    to_welcome = session.scalar(scope_members(
        select(func.count()).select_from(Member).where(Member.to_welcome.is_(True)), current_user))
    imports = []
    if current_user.sees_all_branches:
        imports = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(5)).all()
    return render_template("web/dashboard.html", by_status=by_status, total=sum(by_status.values()),
                           to_welcome=to_welcome, imports=imports)
