"""The first page after signing in: what needs me now, within my scope (mailer.overview)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer import bulletin, charts, overview
from mailer.db import session

bp = Blueprint("dashboard", __name__)


@bp.route("/")
def index():
    return render_template("web/dashboard.html", o=overview.overview(current_user), charts=charts.charts(current_user),
                           form=FlaskForm())


@bp.route("/weekly-bulletin", methods=["POST"])
def weekly_bulletin():
    """Make this week's bulletin now (or open the one made already), to finish in the composer."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    made = bulletin.make(current_user._get_current_object())
    session.commit()
    if made.campaign is None:
        return redirect(url_for("admin.campaigns.index"))
    return redirect(url_for("admin.campaigns.edit", campaign_id=made.campaign.id))
