"""Minutes pages (the meetings blueprint, split from mailer.web.meetings by concern): write the
minutes from the agenda and the register with the correspondence attached, approve (the chair),
circulate and adopt them. The rules are mailer.meetings.minutes'; the form is read through
mailer.web.forms into mailer.inputs' schemas.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer import scope
from mailer.inputs import AdoptIn, MinutesTextIn, ThreadChoiceIn
from mailer.meetings import minutes as minutes_service
from mailer.meetings import service
from mailer.meetings.rules import MeetingError
from mailer.models import Meeting, Role
from mailer.web import forms
from mailer.web.meetings import _checked_form, _meeting_or_404, bp


# --- the minutes ------------------------------------------------------------------------------

def _recent_threads():
    from mailer.inbound import correspondence

    page = correspondence.list_threads(current_user, correspondence.ThreadQuery(status=None), per_page=50)
    return [row.thread for row in page.items]


@bp.route("/<int:meeting_id>/minutes")
def minutes(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    found = meeting.minutes
    summaries = minutes_service.summaries(meeting, reader=current_user)
    attached = {s.thread.id for s in summaries}
    return render_template("web/meetings/minutes.html", meeting=meeting, minutes=found, form=FlaskForm(),
                           summaries=summaries, threads=[t for t in _recent_threads() if t.id not in attached
                                                         and scope.body_may_see(meeting.branch_id, t.branch_id)],
                           register=service.register_summary(meeting),
                           later=minutes_service.adoption_meetings(meeting) if found else [],
                           is_chair=current_user.role is Role.CHAIR)


def _minutes_or_back(meeting: Meeting):
    if meeting.minutes is None:
        flash("Start the minutes first.", "error")
        return None
    return meeting.minutes


def _to_minutes(meeting: Meeting):
    # No #anchor: the page opens at the top, where the flash message says what happened.
    return redirect(url_for(".minutes", meeting_id=meeting.id))


@bp.route("/<int:meeting_id>/minutes/start", methods=["POST"])
def start_minutes(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    minutes_service.start(current_user, meeting)
    flash("Draft minutes started from the agenda and the register.", "info")
    return _to_minutes(meeting)


@bp.route("/<int:meeting_id>/minutes/save", methods=["POST"])
def save_minutes(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    found = _minutes_or_back(meeting)
    if found is None:
        return _to_minutes(meeting)
    given = forms.parse(MinutesTextIn, texts=forms.keyed("text-", [item.id for item in found.items]))
    minutes_service.save(current_user, found, given.texts, given.present_text)
    flash("Minutes saved.", "info")
    return _to_minutes(meeting)


@bp.route("/<int:meeting_id>/minutes/correspondence", methods=["POST"])
def attach(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    thread = scope.get_thread(current_user, forms.parse(ThreadChoiceIn).thread_id or 0)
    if thread is None:
        flash("Choose a thread from the correspondence inbox.", "error")
        return _to_minutes(meeting)
    minutes_service.attach(current_user, meeting, thread)
    flash(f"“{thread.subject or '(no subject)'}” attached to the correspondence item.", "info")
    return _to_minutes(meeting)


@bp.route("/<int:meeting_id>/minutes/correspondence/<int:thread_id>/remove", methods=["POST"])
def detach(meeting_id: int, thread_id: int):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    link = next((link for item in meeting.agenda for link in item.correspondence if link.thread_id == thread_id), None)
    if link is None:
        abort(404)
    minutes_service.detach(current_user, link)
    flash("Thread removed from the correspondence item.", "info")
    return _to_minutes(meeting)


def _workflow(meeting_id: int, action, done: str):
    meeting = _meeting_or_404(meeting_id)
    _checked_form()
    found = _minutes_or_back(meeting)
    if found is None:
        return _to_minutes(meeting)
    action(meeting, found)
    flash(done, "info")
    return _to_minutes(meeting)


@bp.route("/<int:meeting_id>/minutes/approve", methods=["POST"])
def approve(meeting_id: int):
    return _workflow(meeting_id, lambda m, found: minutes_service.approve(current_user, found),
                     "Minutes approved. They can now be circulated to the meeting's members.")


@bp.route("/<int:meeting_id>/minutes/circulate", methods=["POST"])
def circulate(meeting_id: int):
    return _workflow(meeting_id, lambda m, found: minutes_service.circulate(current_user, found),
                     "The minutes are on their way to the members, with the PDF and a link to the web copy.")


@bp.route("/<int:meeting_id>/minutes/adopt", methods=["POST"])
def adopt(meeting_id: int):
    def action(meeting, found):
        chosen = forms.parse(AdoptIn).at_meeting
        at = next((m for m in minutes_service.adoption_meetings(meeting) if m.id == chosen), None)
        if at is None:
            raise MeetingError("Choose the later meeting that agreed the minutes.")
        minutes_service.adopt(current_user, found, at)

    return _workflow(meeting_id, action, "Recorded: the minutes were adopted as a true record.")
