"""Confirming a meeting's mass send (the meetings blueprint, split from mailer.web.meetings by
concern): the notice, its update and the minutes each go only after the officer has seen the
email as its first real recipient will, with the numbers and who is left out.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from mailer.inputs import ConfirmIn, NoticeIn
from mailer.meetings import rules
from mailer.meetings.rules import LONDON, MeetingError
from mailer.models import Meeting
from mailer.web import forms
from mailer.web.meetings import _meeting_or_404, bp


# --- confirming a mass send (the notice, its update, the minutes) -----------------------------
# The POSTs that send (send_notice, send_update, circulate) are reached only from the
# confirmation page's form: its token ties the officer's "yes" to the email they were shown.

CONFIRMED_SENDS = {"send_notice": "notice", "send_update": "update", "circulate": "minutes"}


@bp.before_request
def _sends_need_confirmation():
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    if request.method != "POST" or endpoint not in CONFIRMED_SENDS:
        return None
    from mailer.meetings import confirm as confirm_service

    meeting = _meeting_or_404((request.view_args or {}).get("meeting_id", 0))
    purpose = CONFIRMED_SENDS[endpoint]
    token = forms.parse(ConfirmIn).confirm
    if confirm_service.is_confirmed(current_user, meeting, purpose, token, meeting.minutes):
        return None
    if token:
        flash("The email changed after the confirmation was shown: check it again.", "warning")
    override = forms.parse(NoticeIn).override.strip()
    return redirect(url_for(".confirm_send", meeting_id=meeting.id, purpose=purpose, override=override or None))


def _planned_or_back(meeting: Meeting, purpose: str):
    from mailer.meetings import confirm as confirm_service

    if purpose not in confirm_service.PURPOSES:
        abort(404)
    try:
        return confirm_service.planned(current_user, meeting, purpose, meeting.minutes)
    except MeetingError as exc:
        flash(str(exc), "error")
        return None


@bp.route("/<int:meeting_id>/send/<purpose>")
def confirm_send(meeting_id: int, purpose: str):
    """The confirmation before a meeting's mass send: the email as its first real recipient will
    see it, the numbers, the stream, and who is left out and why."""
    from mailer.compose import drafts
    from mailer.compose.render import TemplateError
    from mailer.meetings import confirm as confirm_service

    meeting = _meeting_or_404(meeting_id)
    plan = _planned_or_back(meeting, purpose)
    back = url_for(".minutes" if purpose == "minutes" else ".detail", meeting_id=meeting.id)
    if plan is None:
        return redirect(back)
    override = request.args.get("override", "").strip()
    problems = []
    check = rules.check_notice(meeting) if purpose == "notice" else None
    if check is not None and not check.ok and not override:
        problems.append(f"{check.reason} Give a reason for sending late on the meeting's page.")
    try:
        subject = drafts.preview(plan.campaign, plan.audience.sample)[0]
    except TemplateError as exc:
        subject, problems = plan.campaign.subject, problems + [str(exc)]
    fields = {"confirm": confirm_service.token(current_user, meeting, plan)}
    if override:
        fields["override"] = override
    endpoint = {"notice": ".send_notice", "update": ".send_update", "minutes": ".circulate"}[purpose]
    what = {"notice": "the notice", "update": "the update", "minutes": "the minutes"}[purpose]
    n = plan.audience.addresses
    notes = [("Meeting", f"{meeting.title}, {meeting.starts_at.astimezone(LONDON).strftime('%a %-d %B %Y, %H:%M')}"),
             ("Attachments", ", ".join(plan.attachments))]
    if override:
        notes.append(("Sent late because", override))
    send = {"title": f"Send {what} to the members?", "subject": subject, "audience": plan.audience,
            "problems": problems, "fields": fields, "notes": notes,
            "button": f"Yes, send {what} to {n} address{'' if n == 1 else 'es'}",
            "action": url_for(endpoint, meeting_id=meeting.id),
            "preview_url": url_for(".send_preview", meeting_id=meeting.id, purpose=purpose),
            "back_url": back, "back_label": "Back to the meeting" if purpose != "minutes" else "Back to the minutes"}
    return render_template("web/meetings/confirm.html", meeting=meeting, send=send)


@bp.route("/<int:meeting_id>/send/<purpose>/preview")
def send_preview(meeting_id: int, purpose: str):
    """The email of a meeting's send as its first real recipient will see it (framed, sandboxed)."""
    from mailer.compose import drafts
    from mailer.compose.render import TemplateError
    from mailer.web.campaigns import _preview_error, _preview_response

    meeting = _meeting_or_404(meeting_id)
    plan = _planned_or_back(meeting, purpose)
    if plan is None:
        return _preview_error(["There is nothing to send now."])
    try:
        return _preview_response(drafts.preview(plan.campaign, plan.audience.sample)[1])
    except TemplateError as exc:
        return _preview_error([str(exc)])
