"""Officer accounts, managed by the CLP secretary."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer import scope
from mailer.db import session
from mailer.errors import Invalid
from mailer.inputs import OfficerIn
from mailer.models import Branch, Role
from mailer.officers import service
from mailer.web import forms

bp = Blueprint("officers", __name__, url_prefix="/officers")


@bp.before_request
def _secretary_only():
    if current_user.role is not Role.CLP_SECRETARY:
        abort(403)


def _choices():
    return {"roles": list(Role), "branches": scope.branches(current_user)}


def _submitted() -> tuple[OfficerIn, Role, Branch | None]:
    given = forms.parse(OfficerIn)
    return given, Role(given.role), service.get_branch(given.branch)


@bp.route("/")
def index():
    return render_template("web/officers/list.html", officers=service.all_officers())


@bp.route("/new", methods=["GET", "POST"])
def create():
    form, error, password = FlaskForm(), None, None
    if form.validate_on_submit():
        try:
            given, role, branch = _submitted()
            officer, password = service.create_officer(given.email, role, branch, given.name, by=current_user)
            return render_template("web/officers/created.html", officer=officer, password=password)
        except (Invalid, service.OfficerError) as exc:
            session.rollback()
            error = str(exc)
    values = forms.submitted("email", "name", "role", "branch")
    return render_template("web/officers/form.html", form=form, error=error, officer=None, values=values,
                           **_choices()), 400 if error else 200


@bp.route("/<int:officer_id>", methods=["GET", "POST"])
def edit(officer_id: int):
    officer = service.get_officer(officer_id) or abort(404)
    form, error = FlaskForm(), None
    if form.validate_on_submit():
        try:
            given, role, branch = _submitted()
            service.update_officer(officer, role, branch, given.active, given.name, by=current_user)
            flash(f"{officer.email} saved.", "info")
            return redirect(url_for(".index"))
        except (Invalid, service.OfficerError) as exc:
            session.rollback()
            error = str(exc)
    values = {"email": officer.email, "name": officer.name, "role": officer.role.value,
              "branch": officer.branch_id, "active": officer.active}
    return render_template("web/officers/form.html", form=form, error=error, officer=officer, values=values,
                           **_choices()), 400 if error else 200
