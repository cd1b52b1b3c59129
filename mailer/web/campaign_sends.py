"""Scheduling and sending a campaign, and pausing, resuming or cancelling its send (the campaigns
blueprint, split from mailer.web.campaigns by concern). Every send to members passes through the
confirmation page; its token ties the officer's "yes" to what they were shown. The rules are
mailer.sending.campaigns'; the form is read through mailer.web.forms into mailer.inputs' schemas.
"""

from __future__ import annotations

from datetime import datetime

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from mailer.compose import drafts
from mailer.compose.render import TemplateError
from mailer.db import session
from mailer.errors import Invalid
from mailer.inputs import ConfirmIn, ScheduleIn, validate
from mailer.members import segments
from mailer.models import Campaign
from mailer.sending import audience
from mailer.sending import campaigns as sending
from mailer.web import LONDON, forms
from mailer.web.campaigns import (_after_save_failure, _branch_names, _campaign_or_404, _checked_form, _local_input,
                                  _save, bp)


# --- schedule and send ----------------------------------------------------------------------

def _confirmation(campaign: Campaign, action: str, when: datetime | None = None, status: int = 200):
    """The page every send to members passes through: the email as its first real recipient will
    see it (desktop and phone), how many members and addresses, the stream, and who is left out
    and why. Its form carries the token that send_now and schedule require."""
    found = drafts.problems(campaign)
    try:
        crowd = audience.campaign_audience(campaign, current_user)
    except segments.SegmentError as exc:
        found = found + [str(exc)]
        crowd = audience.Audience(stream=campaign.stream, members=0, addresses=0)
    sample_id = crowd.sample.id if crowd.sample else None
    try:
        subject = drafts.preview(campaign, crowd.sample)[0] if not found else campaign.subject
    except TemplateError:
        subject = campaign.subject
    token = audience.confirm_token(action, campaign.id, audience.fingerprint(campaign), current_user)
    fields = {"confirm": token}
    if action == "schedule":
        fields["send_at"] = _local_input(when)
        title = f"Schedule “{subject}” for {when.astimezone(LONDON).strftime('%a %-d %B %Y, %H:%M')}?"
        button = f"Yes, schedule it for {crowd.addresses} address{'' if crowd.addresses == 1 else 'es'}"
        endpoint = ".schedule"
    else:
        title = f"Send “{subject}” now?"
        button = f"Yes, send it to {crowd.addresses} address{'' if crowd.addresses == 1 else 'es'} now"
        endpoint = ".send_now"
    notes = [("Attachments", ", ".join(a.filename for a in campaign.attachments) or "none")]
    send = {"title": title, "subject": subject, "audience": crowd, "problems": found, "fields": fields,
            "button": button, "action": url_for(endpoint, campaign_id=campaign.id), "notes": notes,
            "recipients_described": segments.describe(campaign.segment, _branch_names()),
            "preview_url": url_for(".preview", campaign_id=campaign.id, member=sample_id),
            "text_url": url_for(".preview_text", campaign_id=campaign.id, member=sample_id),
            "back_url": url_for(".edit", campaign_id=campaign.id), "back_label": "Back to the composer"}
    return render_template("web/campaigns/confirm.html", campaign=campaign, send=send), status


def _is_confirmed(campaign: Campaign, action: str) -> bool:
    return audience.confirmed(forms.parse(ConfirmIn).confirm, action, campaign.id, audience.fingerprint(campaign),
                              current_user)


@bp.route("/<int:campaign_id>/confirm")
def confirm(campaign_id: int):
    """The confirmation page, reached again (from a link, or after a refused send)."""
    campaign = _campaign_or_404(campaign_id)
    if campaign.status not in drafts.EDITABLE_STATUSES:
        return redirect(url_for(".detail", campaign_id=campaign.id))
    when = None
    if request.args.get("action") == "schedule":
        try:  # the time in the link, read as ScheduleIn reads it
            when = validate(ScheduleIn, {"at": request.args.get("send_at", "")}).at
        except Invalid:
            when = None
    return _confirmation(campaign, "schedule" if when else "send", when)


@bp.route("/<int:campaign_id>/schedule", methods=["POST"])
def schedule(campaign_id: int):
    """From the composer: save, then show the confirmation. From the confirmation's form (its
    token matches what is saved): send at that UK date and time (stored in UTC)."""
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    confirmed = _is_confirmed(campaign, "schedule")
    if not confirmed and campaign.status in drafts.EDITABLE_STATUSES:
        error = _save(campaign)
        if error:
            return _after_save_failure(campaign, error)
    try:  # as POST /api/v1/campaigns/{id}/schedule reads it: the same refusal, in the same words
        when = forms.parse(ScheduleIn, names={"at": "send_at"}).at
    except Invalid as exc:
        session.rollback()
        flash(f"Choose the date and time to send it. {exc}", "error")
        return redirect(url_for(".edit", campaign_id=campaign.id) + "#send")
    if not confirmed and campaign.status in drafts.EDITABLE_STATUSES:
        return _confirmation(campaign, "schedule", when)
    try:
        sending.schedule(campaign, when, current_user)
    except sending.CampaignError as exc:
        session.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".edit", campaign_id=campaign.id) + "#send")
    flash(f"Scheduled: it will be sent at {when.astimezone(LONDON).strftime('%H:%M on %d/%m/%Y')} (UK time).", "info")
    return redirect(url_for(".detail", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/send", methods=["POST"])
def send_now(campaign_id: int):
    """From the composer: save, then show the confirmation. From the confirmation's form (its
    token matches what is saved, so what is sent is what was shown): start the send."""
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    if not _is_confirmed(campaign, "send") and campaign.status in drafts.EDITABLE_STATUSES:
        error = _save(campaign)
        if error:
            return _after_save_failure(campaign, error)
        if forms.parse(ConfirmIn).confirm:
            flash("The campaign changed after the confirmation was shown: check it again.", "warning")
        return _confirmation(campaign, "send")
    sending.send_now(campaign, current_user)
    flash("Sending has started: this page follows it as it goes.", "info")
    return redirect(url_for(".detail", campaign_id=campaign.id))


def _state_change(campaign_id: int, action, done: str):
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    action(campaign, current_user)
    flash(done, "info")
    return redirect(url_for(".detail", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/pause", methods=["POST"])
def pause(campaign_id: int):
    return _state_change(campaign_id, sending.pause, "Paused: nothing more is sent until you resume.")


@bp.route("/<int:campaign_id>/resume", methods=["POST"])
def resume(campaign_id: int):
    return _state_change(campaign_id, sending.resume, "Resumed: sending carries on where it stopped.")


@bp.route("/<int:campaign_id>/cancel", methods=["POST"])
def cancel(campaign_id: int):
    return _state_change(campaign_id, sending.cancel, "Cancelled: nothing more will be sent.")


@bp.route("/<int:campaign_id>/unschedule", methods=["POST"])
def unschedule(campaign_id: int):
    return _state_change(campaign_id, sending.unschedule, "Back to a draft: it will not be sent.")
