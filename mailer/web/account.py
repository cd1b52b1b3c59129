"""The signed-in officer's own account: their personal API tokens."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from mailer.inputs import TokenIn

from mailer.officers import tokens
from mailer.web import forms

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/")
def index():
    return render_template("web/account.html", tokens=tokens.live_tokens(current_user), max_days=tokens.MAX_DAYS)


@bp.route("/tokens", methods=["POST"])
def create_token():
    given = forms.parse(TokenIn)
    token, text = tokens.create(current_user, given.name, given.days)
    return render_template("web/account_token.html", token=token, text=text)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_token(token_id: int):
    if tokens.own_token(current_user, token_id) is None:  # someone else's, or gone: as if it never was
        abort(404)
    token = tokens.revoke(current_user, token_id)
    flash(f"The token “{token.name}” no longer works.", "success")
    return redirect(url_for(".index"))
