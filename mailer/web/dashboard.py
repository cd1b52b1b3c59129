"""The first page after signing in: what needs me now, within my scope (mailer.overview)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from mailer import charts, overview

bp = Blueprint("dashboard", __name__)


@bp.route("/")
def index():
    return render_template("web/dashboard.html", o=overview.overview(current_user), charts=charts.charts(current_user))
