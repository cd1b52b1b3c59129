"""Members pages: find, read, add, edit, export and erase."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer.auth import roles_required
from mailer.db import session
from mailer.errors import Invalid
from mailer.inputs import EraseIn, MemberPatch
from mailer.members import service
from mailer import scope, words
from mailer.members.exportfile import FIELDS
from mailer.models import MemberStatus, Role
from mailer.pagination import Cursor
from mailer.web import forms

bp = Blueprint("members", __name__, url_prefix="/members")


def _query_from_args() -> service.MemberQuery:
    args = request.args
    status = args.get("status") or None
    sort = args.get("sort", "name")
    return service.MemberQuery(
        q=args.get("q", ""),
        branch_id=args.get("branch", type=int),
        ward=args.get("ward") or None,
        polling_district=args.get("pd") or None,
        status=MemberStatus(status) if status in MemberStatus._value2member_map_ else None,
        to_welcome=args.get("welcome") == "1",
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        cursor=Cursor.from_args(args),
    )


@bp.route("/")
def index():
    mq = _query_from_args()
    page = service.search(current_user, mq, per_page=current_app.config["PAGE_SIZE"])
    return render_template("web/members/list.html", page=page, mq=mq, choices=service.filter_choices(current_user),
                           args=request.args.to_dict())


def _branch_names() -> list[str]:
    return [b.name for b in scope.branches(current_user)]


def _form_values(member=None) -> dict:
    if member is None:
        own = scope.own_branch_name(current_user) or ""
        return {"status": "new", "branch": own, "notices_consent": "yes", "bulletins_consent": "yes"}
    values = service.snapshot(member)
    out = {k: ("" if v is None else str(v.value if hasattr(v, "value") else v)) for k, v in values.items()}
    out["joined_on"] = member.joined_on.strftime("%d/%m/%Y") if member.joined_on else ""
    for name in ("notices_consent", "bulletins_consent"):
        out[name] = "yes" if values[name] else "no"
    out["tags"] = ", ".join(t.name for t in member.tags)
    return out


def _submitted() -> dict:
    """What was typed, to show again beside what is wrong with it."""
    return forms.submitted(*service.EDITABLE, "tags")


def _errors(exc: Invalid) -> dict[str, str]:
    return {e["field"] or "member": e["message"] for e in exc.field_errors()}


@bp.route("/new", methods=["GET", "POST"])
def create():
    form, errors, values = FlaskForm(), {}, _form_values()
    if form.validate_on_submit():
        values = _submitted()
        try:
            member = service.create_member(current_user, forms.parse(MemberPatch).raw())
            flash(f"{member.full_name} added.", "info")
            return redirect(url_for(".detail", member_id=member.id))
        except Invalid as exc:  # the schema's or the service's: shown beside what was typed
            session.rollback()
            errors = _errors(exc)
    return render_template("web/members/form.html", form=form, values=values, errors=errors, member=None,
                           branches=_branch_names(), labels=FIELDS, statuses=list(MemberStatus)), 400 if errors else 200


def _member_or_404(member_id: int):
    member = scope.get_member(current_user, member_id)
    if member is None:
        abort(404)  # the same answer for "no such member" and "not in your branch"
    return member


@bp.route("/<int:member_id>")
def detail(member_id: int):
    member = _member_or_404(member_id)
    from mailer import story

    return render_template("web/members/detail.html", member=member, story=story.story(member),
                           sections=story.SECTIONS, form=FlaskForm())


@bp.route("/<int:member_id>/edit", methods=["GET", "POST"])
def edit(member_id: int):
    member = _member_or_404(member_id)
    form, errors, values = FlaskForm(), {}, _form_values(member)
    if form.validate_on_submit():
        values = _submitted()
        try:
            changes = service.update_member(current_user, member, forms.parse(MemberPatch).raw())
            flash(f"Saved: {words.fields(changes)}." if changes else "Nothing changed.", "info")
            return redirect(url_for(".detail", member_id=member.id))
        except Invalid as exc:  # the same schema as the API's PATCH /members/{id}, then the service's rules
            session.rollback()
            errors = _errors(exc)
    return render_template("web/members/form.html", form=form, values=values, errors=errors, member=member,
                           branches=_branch_names(), labels=FIELDS, statuses=list(MemberStatus)), 400 if errors else 200


@bp.route("/<int:member_id>/welcomed", methods=["POST"])
def welcomed(member_id: int):
    member = _member_or_404(member_id)
    if FlaskForm().validate_on_submit():
        service.mark_welcomed(current_user, member)
        flash(f"{member.full_name} is off the to-welcome list.", "info")
    return redirect(request.referrer or url_for(".detail", member_id=member.id))


@bp.route("/<int:member_id>/export", methods=["POST"])
def export(member_id: int):
    member = _member_or_404(member_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    from mailer import story

    data = story.export_data(current_user, member)
    return Response(json.dumps(data, indent=2, ensure_ascii=False), mimetype="application/json",
                    headers={"Content-Disposition": f"attachment; filename=member-{member.id}.json"})


@bp.route("/<int:member_id>/export.pdf", methods=["POST"])
def export_pdf(member_id: int):
    """The subject access export as a readable PDF (the same story as the JSON)."""
    from mailer import story

    member = _member_or_404(member_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    data = story.export_pdf(current_user, member)
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename=member-{member.id}.pdf"})


@bp.route("/<int:member_id>/erase", methods=["GET", "POST"])
@roles_required(Role.CLP_SECRETARY)
def erase(member_id: int):
    member = _member_or_404(member_id)
    form, error = FlaskForm(), None
    if form.validate_on_submit():
        try:
            service.erase(current_user, member, forms.parse(EraseIn).reason)
            flash("The member's personal data is erased.", "info")
            return redirect(url_for(".detail", member_id=member.id))
        except Invalid as exc:
            session.rollback()
            error = _errors(exc).get("reason")
    return render_template("web/members/erase.html", member=member, form=form, error=error)
