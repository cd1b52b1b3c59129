"""The Welcome page: new members waiting for their welcome, and the way to send it (through the
confirmation every mass send has, which is the officer's approval)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer import welcome
from mailer.db import session

bp = Blueprint("welcome", __name__, url_prefix="/welcome")


@bp.route("/")
def index():
    return render_template("web/welcome.html", form=FlaskForm(), waiting=welcome.waiting(current_user),
                           pending=welcome.in_progress(current_user),
                           approval=current_app.config["WELCOME_APPROVAL"])


@bp.route("/prepare", methods=["POST"])
def prepare():
    """Make (or reopen) the welcome draft, then show its confirmation: the rendered email, who gets it."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    campaign = welcome.prepare(current_user._get_current_object())
    session.commit()
    return redirect(url_for("admin.campaigns.confirm", campaign_id=campaign.id))
