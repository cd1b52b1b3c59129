"""Meetings pages: plan a meeting, build its agenda, notice it within the rules, keep the register
on the day. The same blueprint's minutes pages are in mailer.web.minutes, and the confirmation
before each mass send (notice, update, minutes) in mailer.web.meeting_sends.

The rules live in mailer.meetings (service, rules, minutes); these views read the form, call them
and show what they say. A meeting out of the officer's branch answers 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer import audit, scope, words
from mailer.db import session
from mailer.errors import Invalid
from mailer.inputs import (AcceptIn, AgendaIn, AgendaRowIn, AgendaRowsIn, AnswerIn, HeldIn, MeetingIn, NoticeIn,
                           PaperIn, ReasonIn, RegisterIn, validate)
from mailer.meetings import feeds, rules, service
from mailer.meetings import minutes as minutes_service
from mailer.meetings.rules import LONDON, MeetingError
from mailer.models import Meeting, MeetingKind, MeetingStatus, Response as Answer
from mailer.pagination import Cursor
from mailer.web import downloads, forms

bp = Blueprint("meetings", __name__, url_prefix="/meetings")

# A downloaded paper never runs in our origin, whatever it claims to be.
TEXT_FIELDS = ("title", "venue_name", "venue_address", "online_url", "dial_in", "accessibility")
FORM_FIELDS = (*TEXT_FIELDS, "kind", "body", "starts_at", "ends_at", "quorum", "entitled_tag")
ANSWERS = {Answer.NONE: "no answer", Answer.ATTENDING: "I'll be there", Answer.APOLOGIES: "apologies",
           Answer.NOT_ATTENDING: "can't come"}


POSTAL_SHOWN = 100  # on the meeting's page; the whole postal list is a download
REGISTER_PAGE = 200  # a branch meeting's register fits on one page, so the filter at the door sees everyone;
                     # an AGM's (every member) pages, and its search (?q=) looks across all of them

# --- helpers --------------------------------------------------------------------------------

def _checked_form() -> None:
    """Refuse a POST without a valid CSRF token (CSRFProtect answers first when it is on)."""
    if not FlaskForm().validate_on_submit():
        abort(400)


def _meeting_or_404(meeting_id: int) -> Meeting:
    meeting = scope.get_meeting(current_user, meeting_id)
    if meeting is None:
        abort(404)  # the same answer for "no such meeting" and "another branch's"
    return meeting


def _local_input(value: datetime | None) -> str:
    """A stored UTC time as the form shows it: UK time, dd/mm/yyyy hh:mm."""
    return words.local_input(value)


def _bodies() -> list[tuple[str, str]]:
    """The bodies the officer may plan meetings for: the CLP and branches, or their own branch."""
    clp = [("clp", "The CLP")] if scope.sees_all(current_user) else []
    return clp + [(str(b.id), f"{b.name} branch") for b in scope.branches(current_user)]


def _form_values(meeting: Meeting | None = None) -> dict:
    """What the details form shows: the meeting's values, or a new meeting's defaults."""
    if meeting is None:
        own = scope.own_branch_id(current_user)
        return {"kind": MeetingKind.BRANCH.value if own else MeetingKind.GENERAL.value,
                "body": str(own) if own else "clp"}
    values = {k: getattr(meeting, k) or "" for k in TEXT_FIELDS}
    values |= {"kind": meeting.kind.value, "body": str(meeting.branch_id) if meeting.branch_id else "clp",
               "starts_at": _local_input(meeting.starts_at), "ends_at": _local_input(meeting.ends_at),
               "quorum": "" if meeting.quorum is None else str(meeting.quorum),
               "entitled_tag": ", ".join(meeting.entitled.get("tags", []))}
    return values


def _submitted() -> dict:
    """What was typed, to show again beside what is wrong with it."""
    return forms.submitted(*FORM_FIELDS)


def _meeting_values() -> dict:
    """The details form read by the API's MeetingIn, as service values (or Invalid). The form's
    "body" is the CLP or one of the officer's branches; the schema's branch_id follows from it."""
    body = forms.submitted("body")["body"]
    if body in ("clp", ""):
        branch_id = None
    elif body in {v for v, _ in _bodies()}:
        branch_id = int(body)
    else:
        raise Invalid("Choose the CLP or one of your branches.", field="branch_id")
    return forms.parse(MeetingIn, names={"entitled_tags": "entitled_tag"}, branch_id=branch_id).values()


def _details_form(template: str, **context):
    return render_template(template, form=FlaskForm(), kinds=list(MeetingKind), bodies=_bodies(), **context)


def _flash_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        flash(f"Warning: {warning} Check the two do not clash.", "warning")


# --- the list and a new meeting --------------------------------------------------------------

def _listing() -> dict:
    """Upcoming meetings, soonest first, and past ones a page at a time (newest first), each with
    its branch and minutes loaded alongside (a fixed number of queries, however many meetings)."""
    upcoming, past = service.listing(current_user, Cursor.from_args(request.args), current_app.config["PAGE_SIZE"])
    return {"upcoming": upcoming, "past": past}


@bp.route("/")
def index():
    return _details_form("web/meetings/list.html", values=_form_values(), error=None, **_listing())


@bp.route("/new", methods=["POST"])
def create():
    _checked_form()
    submitted = _submitted()
    try:
        meeting, warnings = service.create(current_user, _meeting_values())
    except (Invalid, MeetingError) as exc:  # the schema's (as POST /api/v1/meetings) or the rules': shown as typed
        session.rollback()
        return _details_form("web/meetings/list.html", values=submitted, error=str(exc), **_listing()), 400
    flash(f"{meeting.title} is planned, with the standard agenda. Check the agenda, then send the notice.", "info")
    _flash_warnings(warnings)
    return redirect(url_for(".detail", meeting_id=meeting.id))


# --- a meeting -------------------------------------------------------------------------------

@bp.route("/<int:meeting_id>")
def detail(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    live = meeting.status in (MeetingStatus.PLANNED, MeetingStatus.NOTICED)
    return render_template("web/meetings/detail.html", meeting=meeting, form=FlaskForm(), live=live,
                           check=rules.check_notice(meeting) if live else None,
                           notice_days=rules.notice_days(meeting), needs_update=service.needs_update_notice(meeting),
                           notices=service.notices(meeting), postal=service.postal_list(meeting, POSTAL_SHOWN),
                           postal_total=service.postal_count(meeting),
                           feed_url=feeds.feed_url(meeting.branch), register=service.register_summary(meeting))


@bp.route("/<int:meeting_id>/edit", methods=["GET", "POST"])
def edit(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    values, error = _form_values(meeting), None
    if request.method == "POST":
        _checked_form()
        values = _submitted()
        try:
            changes, warnings = service.update(current_user, meeting, _meeting_values())
            if changes:
                flash(f"Saved: {words.fields(changes)}.", "info")
            else:
                flash("Nothing changed.", "info")
            if service.needs_update_notice(meeting):
                flash("Members were noticed of the meeting as it was: send them the update.", "warning")
            _flash_warnings(warnings)
            return redirect(url_for(".detail", meeting_id=meeting.id))
        except (Invalid, MeetingError) as exc:
            session.rollback()
            error = str(exc)
    return _details_form("web/meetings/edit.html", meeting=meeting, values=values, error=error), 400 if error else 200


@bp.route("/<int:meeting_id>/agenda", methods=["POST"])
def agenda(meeting_id: int):
    """The agenda editor: every row's title, notes and position; removed rows and an empty title go."""
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    rows = []
    for n, row in enumerate(forms.rows(AgendaRowIn, forms.parse(AgendaRowsIn).rows)):
        if row.remove or not row.title.strip():  # removed rows and an empty title go
            continue
        raw = row.position.strip()
        position = float(raw) if raw.replace(".", "", 1).isdigit() else float("inf")
        rows.append((position, n, {"id": row.id, "title": row.title, "notes": row.notes}))
    rows.sort(key=lambda r: (r[0], r[1]))  # by the numbers typed; ties keep the page's order
    agenda = validate(AgendaIn, {"items": [entry for _, _, entry in rows]})  # as PUT /api/v1/meetings/{id}/agenda
    service.set_agenda(current_user, meeting, [item.model_dump() for item in agenda.items])
    flash("Agenda saved.", "info")
    return redirect(url_for(".detail", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/papers", methods=["POST"])
def add_paper(meeting_id: int):
    """A paper (a report, a motion's text) for one agenda item."""
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    item_id = forms.parse(PaperIn).item_id
    item = next((i for i in meeting.agenda if i.id == item_id), None)
    upload = request.files.get("paper")
    if item is None:
        flash("Choose the agenda item the paper is for.", "error")
    elif upload is None or not upload.filename:
        flash("Choose a file to attach to the item.", "error")
    else:
        service.add_paper(current_user, item, upload.filename, upload.read(), upload.mimetype)
        flash(f"{upload.filename} added to “{item.title}”.", "info")
    return redirect(url_for(".detail", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/papers/<int:paper_id>")
def paper(meeting_id: int, paper_id: int):
    meeting = _meeting_or_404(meeting_id)
    found = scope.meeting_paper(meeting, paper_id)
    if found is None:
        abort(404)
    return downloads.download(found.data, found.filename, found.content_type)


# --- notices ---------------------------------------------------------------------------------

def _sent(what: str) -> None:
    flash(f"{what} is on its way to the members: its campaign page follows the send.", "info")


@bp.route("/<int:meeting_id>/notice", methods=["POST"])
def send_notice(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    service.send_notice(current_user, meeting, forms.parse(NoticeIn).override)  # as POST /api/v1/meetings/{id}/notice
    _sent("The notice")
    return redirect(url_for(".detail", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/update", methods=["POST"])
def send_update(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    service.send_update(current_user, meeting)
    _sent("The update")
    return redirect(url_for(".detail", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/cancel", methods=["POST"])
def cancel(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    campaign = service.cancel(current_user, meeting, forms.parse(ReasonIn).reason)
    if campaign is not None:
        _sent("The cancellation")
    else:
        flash("The meeting is cancelled. No notice had gone out, so members are not told.", "info")
    return redirect(url_for(".detail", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/held", methods=["POST"])
def held(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    if meeting.more_than_a_day_away and not forms.parse(HeldIn).early:
        flash("This meeting is more than a day away, so it was not marked as held. If it really was held early, "
              "tick the box to say so and press Mark as held again.", "error")
        return redirect(url_for(".detail", meeting_id=meeting.id))
    service.mark_held(current_user, meeting)
    flash("Marked as held. Record who was present, then write the minutes.", "info")
    return redirect(url_for(".detail", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/evidence.csv")
def evidence(meeting_id: int):
    """Who was sent each notice, and when: the record that the rules were kept."""
    meeting = _meeting_or_404(meeting_id)
    data = service.evidence_csv(meeting)
    audit.record("meeting.evidence_export", "meeting", meeting.id, officer=current_user)  # it lists members
    return Response(data, mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=meeting-{meeting.id}-notices.csv"})


@bp.route("/<int:meeting_id>/postal.csv")
def postal(meeting_id: int):
    """Every entitled member to post the notice to, with the postcode to address it."""
    meeting = _meeting_or_404(meeting_id)
    data = service.postal_csv(meeting)
    audit.record("meeting.postal_export", "meeting", meeting.id, officer=current_user)  # it lists members
    session.commit()
    return Response(data, mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=meeting-{meeting.id}-by-post.csv"})


# --- printable documents ----------------------------------------------------------------------

def _pdf(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


@bp.route("/<int:meeting_id>/notice.pdf")
def notice_pdf(meeting_id: int):
    from mailer.meetings import pdf  # fpdf is loaded only when a PDF is asked for
    return _pdf(pdf.notice_pdf(_meeting_or_404(meeting_id)), f"notice-{meeting_id}.pdf")


@bp.route("/<int:meeting_id>/agenda.pdf")
def agenda_pdf(meeting_id: int):
    from mailer.meetings import pdf  # fpdf is loaded only when a PDF is asked for
    return _pdf(pdf.agenda_pdf(_meeting_or_404(meeting_id)), f"agenda-{meeting_id}.pdf")


@bp.route("/<int:meeting_id>/signin.pdf")
def signin_pdf(meeting_id: int):
    from mailer.meetings import pdf  # fpdf is loaded only when a PDF is asked for
    return _pdf(pdf.signin_pdf(_meeting_or_404(meeting_id)), f"sign-in-{meeting_id}.pdf")


@bp.route("/<int:meeting_id>/minutes.pdf")
def minutes_pdf(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    if meeting.minutes is None:
        abort(404)
    return _pdf(minutes_service.minutes_pdf(meeting.minutes, reader=current_user), f"minutes-{meeting_id}.pdf")


# --- the register -----------------------------------------------------------------------------

@bp.route("/<int:meeting_id>/register")
def register(meeting_id: int):
    """The register a page at a time (an AGM's is every member), with its counts counted in SQL."""
    meeting = _meeting_or_404(meeting_id)
    replies = service.proposals_read_from(meeting)
    q = (request.args.get("q") or "").strip()[:100]
    page = service.register_page(meeting, Cursor.from_args(request.args), REGISTER_PAGE, q)
    return render_template("web/meetings/register.html", meeting=meeting, register=service.register_summary(meeting),
                           page=page, proposed=service.proposed_apologies(meeting), q=q,
                           form=FlaskForm(), answers=ANSWERS, replies=replies)


@bp.route("/<int:meeting_id>/register/present", methods=["POST"])
def present(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    register = forms.parse(RegisterIn)  # the API's PresentIn, for the rows on this page
    ids, shown = set(register.present), set(register.shown) if register.shown is not None else None
    service.mark_present(current_user, meeting, ids, shown)
    flash(f"Register saved: {len(ids)} present.", "info")
    return redirect(url_for(".register", meeting_id=meeting.id, **_register_place()))


def _register_place() -> dict:
    """Back to the register's page the form was on (and its search)."""
    return {k: v for k, v in request.args.items() if k in ("after", "before", "last", "first", "q")}


@bp.route("/<int:meeting_id>/register/<int:attendance_id>/confirm", methods=["POST"])
def confirm(meeting_id: int, attendance_id: int):
    """Confirm (or reject) apologies read from a member's reply."""
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    row = scope.meeting_attendance(meeting, attendance_id)
    if row is None:
        abort(404)
    accept = forms.parse(AcceptIn).accept
    service.confirm(current_user, row, accept)
    flash(f"Apologies from {row.member.full_name} {'confirmed' if accept else 'rejected'}.", "info")
    return redirect(url_for(".register", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/register/answer", methods=["POST"])
def answer(meeting_id: int):
    """An answer a member gave another way (by phone, at a meeting), recorded by an officer."""
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    given = forms.parse(AnswerIn)
    value = given.response or ""
    member = service.entitled_member(meeting, given.member_id) if given.member_id else None
    if member is None or value not in Answer._value2member_map_:
        flash("Choose an entitled member and their answer.", "error")
        return redirect(url_for(".register", meeting_id=meeting.id))
    service.record_response(meeting, member, Answer(value), "officer")
    flash(f"Recorded for {member.full_name}: {ANSWERS[Answer(value)]}.", "info")
    return redirect(url_for(".register", meeting_id=meeting.id))


@bp.app_template_filter("london_date")
def _london_date(value) -> str:
    return value.astimezone(LONDON).strftime("%A %-d %B %Y") if value else ""


@bp.app_template_filter("london_time")
def _london_time(value) -> str:
    return value.astimezone(LONDON).strftime("%H:%M") if value else ""
