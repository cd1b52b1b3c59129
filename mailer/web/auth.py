"""Signing in and out, and resetting a forgotten password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from mailer import jobs
from mailer.officers import service as officers
from mailer.web import forms

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in on this computer")


class ResetRequestForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=officers.MIN_PASSWORD)])
    confirm = PasswordField("Repeat the new password", validators=[EqualTo("password", "The passwords differ.")])


def _safe_next(target: str | None) -> str:
    """Only ever redirect within this site after signing in."""
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("admin.dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        officer = officers.authenticate(form.email.data, form.password.data)
        if officer is not None:
            login_user(officer, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")))
        officers.sign_in_failed(form.email.data, request.remote_addr)
        flash("That email and password do not match an active officer.", "error")
    return render_template("web/auth/login.html", form=form)


def too_many_sign_ins(_exc):
    """The answer once a sign-in limit is reached: how long to wait, and the attempt audited."""
    from mailer.auth import sign_in_wait

    wait = sign_in_wait()
    minutes = -(-wait // 60)
    officers.sign_in_failed(forms.submitted("email")["email"], request.remote_addr, limited=True)
    g.commit_on = {429}  # the request's one commit keeps the audited attempt (mailer.db)
    later = f"Wait {minutes} minute{'s' if minutes != 1 else ''}, then try again"
    if request.endpoint == "auth.reset_request":
        flash(f"Too many reset requests. {later}.", "error")
        page = render_template("web/auth/reset_request.html", form=ResetRequestForm(formdata=None))
    else:
        flash(f"Too many sign-in attempts. {later} (or reset your password).", "error")
        page = render_template("web/auth/login.html", form=LoginForm(formdata=None))
    return page, 429, {"Retry-After": str(wait)}


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:  # signing out here signs out everywhere, remember-me cookies too
        officers.end_sessions(current_user._get_current_object())
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/reset", methods=["GET", "POST"])
def reset_request():
    form = ResetRequestForm()
    if form.validate_on_submit():
        officer = officers.find_by_email(form.email.data)
        if officer is not None and officer.active:
            try:
                jobs.queue_password_reset(officer.id)
            except Exception:  # Redis down: say so, rather than pretend an email is coming
                current_app.logger.exception("could not queue a password reset")
                flash("Mailer cannot send email just now. Please try again in a few minutes.", "error")
                return render_template("web/auth/reset_request.html", form=form), 503
        # The same answer whether or not the address is an officer's: no account discovery.
        flash("If that address belongs to an officer, a reset link is on its way.", "info")
        return redirect(url_for("auth.login"))
    return render_template("web/auth/reset_request.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    officer = officers.officer_from_reset_token(token)
    if officer is None:
        flash("That reset link has expired or was already used. Ask for a new one.", "error")
        return redirect(url_for("auth.reset_request"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        officers.set_password(officer, form.password.data)
        flash("Your password is changed. Sign in with it now.", "info")
        return redirect(url_for("auth.login"))
    return render_template("web/auth/reset_password.html", form=form)
