"""Telling members of a meeting: the notice within the rules (with its invite), an update of time or
place, a cancellation, the reminder; and the records of it (the postal list, who was sent what).

Notices go through the normal sending pipeline on the notices stream: a campaign per notice,
linked to the meeting, so the record of who was sent what and when is its Delivery rows."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from mailer import audit, work
from mailer.compose import starters
from mailer.db import session, utcnow
from mailer.members import segments
from mailer.meetings import calendar, rules
from mailer.meetings.planning import PostalRow, entitled_query, postal_list
from mailer.meetings.rules import LONDON, MeetingError
from mailer.models import (Attachment, Campaign, Delivery, EmailHealth, Meeting, MeetingCampaign, MeetingKind,
                           MeetingStatus, Member, Officer, Stream)
from mailer.sending import campaigns as sending


class _Keep:
    """Renders as the Jinja expression it stands for, to be filled per member when sending."""

    def __init__(self, expression: str):
        self.expression = expression

    def __getattr__(self, name: str) -> _Keep:
        return _Keep(f"{self.expression}.{name}")

    def __str__(self) -> str:
        return "{{ " + self.expression + " }}"


@dataclass
class MeetingView:
    """A meeting as notice templates see it."""

    title: str
    body: str
    kind: str
    when: str
    date: str
    time: str
    where: str
    online: str
    dial_in: str
    accessibility: str
    agenda: str
    reason: str = ""

    @classmethod
    def of(cls, meeting: Meeting) -> MeetingView:
        start = meeting.starts_at.astimezone(LONDON)
        end = meeting.ends_at.astimezone(LONDON) if meeting.ends_at else None
        when = start.strftime("%A %-d %B %Y, %-I:%M%p").replace("AM", "am").replace("PM", "pm")
        if end:
            when += end.strftime(" to %-I:%M%p").replace("AM", "am").replace("PM", "pm")
        where = ", ".join(p for p in (meeting.venue_name, meeting.venue_address) if p) or "online only"
        agenda = "\n".join(f"{i}. {item.title}" for i, item in enumerate(meeting.agenda, 1))
        text = _literal  # officers' words become the campaign's template source: data, never code
        return cls(text(meeting.title), text(meeting.body_name), meeting.kind.label, when,
                   start.strftime("%A %-d %B %Y"), start.strftime("%H:%M"), text(where), text(meeting.online_url),
                   text(meeting.dial_in), text(meeting.accessibility or "Please tell the secretary of any access needs."),
                   text(agenda), text(meeting.cancelled_reason))


def _literal(value: str | None) -> str:
    """`value` as template source that renders to itself: every "{" becomes a raw block holding
    "{", so no "{{", "{%" or "{#" in a title, venue or agenda item is read as template code when the
    notice is rendered for each member."""
    return (value or "").replace("{", "{% raw %}{{% endraw %}")


def fill(template: str, meeting: Meeting) -> str:
    """A starter's text with the meeting filled in now; member values and links stay for each member."""
    env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
    return env.from_string(template).render(
        meeting=MeetingView.of(meeting), member=_Keep("member"), org_name=_Keep("org_name"),
        attending_url=_Keep("attending_url"), apologies_url=_Keep("apologies_url"),
        not_attending_url=_Keep("not_attending_url"), web_url=_Keep("web_url"),
        preferences_url=_Keep("preferences_url"))


def meeting_campaign(officer: Officer, meeting: Meeting, purpose: str, starter_slug: str, subject_prefix: str = "",
                      definition: dict | None = None) -> Campaign:
    starter = starters.get(starter_slug)
    campaign = Campaign(stream=Stream.NOTICES, name=f"{meeting.title}: {purpose}", from_name=current_app.config[
        "SENDER_NAME"], created_by=officer, branch_id=meeting.branch_id, starter=starter.slug,
                        segment=segments.clean(definition if definition is not None else meeting.entitled),
                        subject=subject_prefix + fill(starter.subject, meeting), preheader=fill(starter.preheader, meeting),
                        body_format=starter.body_format, body=fill(starter.body, meeting))
    session.add(campaign)
    session.flush()
    attendees = None
    if calendar.method_for(meeting) == "REQUEST":
        attendees = [(m.full_name, m.email) for m in session.scalars(entitled_query(meeting)) if m.email]
    method = "CANCEL" if meeting.status is MeetingStatus.CANCELLED else calendar.method_for(meeting)
    ics = calendar.invite(meeting, attendees)
    session.add(Attachment(campaign_id=campaign.id, filename="invite.ics", size=len(ics), data=ics,
                           content_type=f"text/calendar; method={method}; charset=utf-8"))
    session.add(MeetingCampaign(meeting_id=meeting.id, campaign_id=campaign.id, purpose=purpose,
                                ical_sequence=meeting.ical_sequence))
    session.flush()
    session.refresh(campaign)
    return campaign


def send_or_leave(campaign: Campaign, officer: Officer | None) -> None:
    """Send the campaign with the meeting's change (both committed by the caller, the send queued
    after that commit), or, when it cannot be sent, refuse with the reason: the caller rolls back,
    so the meeting is not left noticed (or its minutes circulated) without its send."""
    try:
        sending.send_now(campaign, officer)
    except sending.CampaignError as exc:
        raise MeetingError(f"Nothing was sent and nothing has changed: {exc}") from None


def send_notice(officer: Officer, meeting: Meeting, override: str = "") -> Campaign:
    """Notice the meeting to everyone entitled, with its agenda and invite. Refused with the reason
    and the latest valid date when the rule cannot be met, unless an override reason is given
    (audited). The send is queued once the caller commits."""
    if meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("This meeting is cancelled: it cannot be noticed.")
    if meeting.status is MeetingStatus.HELD:
        raise MeetingError("This meeting has been held.")
    if meeting.status is MeetingStatus.NOTICED:  # a second notice to everyone would only confuse
        raise MeetingError("The notice has already gone: tell members of a change with an update instead.")
    check = rules.check_notice(meeting)
    if not check.ok:
        if not override.strip():
            raise MeetingError(check.reason)
        meeting.notice_override = override.strip()[:500]
        audit.record("meeting.notice_override", "meeting", meeting.id, {"days": [check.days_required, check.days_given]},
                     note=override.strip(), officer=officer)
    starter = "agm-notice" if meeting.kind is MeetingKind.AGM else "meeting-notice"
    campaign = meeting_campaign(officer, meeting, "notice", starter)
    meeting.status = MeetingStatus.NOTICED
    audit.record("meeting.notice", "meeting", meeting.id, {"campaign": [None, campaign.id]}, officer=officer)
    # The notice and the meeting's new state are committed together by the caller, only once the notice
    # renders: if it cannot be sent, the meeting is left as it was (rolled back) and can be noticed again.
    send_or_leave(campaign, officer)
    schedule_reminder(meeting)
    return campaign


def send_update(officer: Officer, meeting: Meeting) -> Campaign:
    """Tell members of a change of time or place, with the updated invite (higher SEQUENCE)."""
    if meeting.status is not MeetingStatus.NOTICED:
        raise MeetingError("Only a noticed meeting has members to update.")
    campaign = meeting_campaign(officer, meeting, "update", "meeting-notice", subject_prefix="Changed: ")
    audit.record("meeting.update_notice", "meeting", meeting.id, {"sequence": [None, meeting.ical_sequence]},
                 officer=officer)
    send_or_leave(campaign, officer)  # committed with the update, once it renders
    schedule_reminder(meeting)
    return campaign


def cancel(officer: Officer, meeting: Meeting, reason: str) -> Campaign | None:
    """Cancel the meeting; if it was noticed, members get a cancellation (METHOD:CANCEL)."""
    if meeting.status in (MeetingStatus.CANCELLED, MeetingStatus.HELD):
        raise MeetingError(f"The meeting is already {meeting.status.value}.")
    if not reason.strip():
        raise MeetingError("Say why the meeting is cancelled: members will read it.")
    was_noticed = meeting.status is MeetingStatus.NOTICED
    meeting.status, meeting.cancelled_reason = MeetingStatus.CANCELLED, reason.strip()[:500]
    meeting.ical_sequence += 1
    audit.record("meeting.cancel", "meeting", meeting.id, note=reason.strip(), officer=officer)
    campaign = None
    if was_noticed:
        campaign = meeting_campaign(officer, meeting, "cancellation", "meeting-cancelled")
        send_or_leave(campaign, officer)  # committed with the cancellation, once it renders
    meeting.reminder_due_at = None
    return campaign


def mark_held(officer: Officer, meeting: Meeting) -> None:
    if meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("A cancelled meeting cannot be held.")
    meeting.status = MeetingStatus.HELD
    audit.record("meeting.held", "meeting", meeting.id, officer=officer)


def schedule_reminder(meeting: Meeting) -> None:
    """The reminder, REMINDER_HOURS before the start (one per version of the meeting): the meeting's
    row says when it is due, so reconcile can rebuild it; its job is queued after the commit."""
    hours = current_app.config["REMINDER_HOURS"]
    when = meeting.starts_at - timedelta(hours=hours)
    if not hours or when <= utcnow():
        meeting.reminder_due_at = None
        return
    meeting.reminder_due_at, meeting.reminder_sent_at = when, None
    work.after_commit("meeting_reminder", meeting.id, meeting.ical_sequence, when)


def reminders_to_send() -> list[Meeting]:
    """Noticed meetings still to come whose reminder is due (now or later) and has not gone."""
    return list(session.scalars(select(Meeting).where(
        Meeting.status == MeetingStatus.NOTICED, Meeting.reminder_due_at.is_not(None),
        Meeting.reminder_sent_at.is_(None), Meeting.starts_at > utcnow())))


def send_reminder(meeting_id: int, sequence: int) -> str:
    """The reminder job: to entitled members who sent no apologies and did not say they won't come."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None or meeting.status is not MeetingStatus.NOTICED or meeting.ical_sequence != sequence:
        return "not needed"
    if session.scalar(select(MeetingCampaign.id).where(MeetingCampaign.meeting_id == meeting.id,
                                                       MeetingCampaign.purpose == "reminder",
                                                       MeetingCampaign.ical_sequence == sequence)):
        return "already sent"
    definition = dict(segments.clean(meeting.entitled))
    definition["not_declined_meeting"] = meeting.id
    officer = session.get(Officer, meeting.created_by_id) if meeting.created_by_id else None
    campaign = meeting_campaign(officer, meeting, "reminder", "meeting-notice", subject_prefix="Reminder: ",
                                 definition=definition)
    sending.send_now(campaign, officer)
    meeting.reminder_sent_at = utcnow()
    return "sent"


def postal_csv(meeting: Meeting) -> str:
    """The whole postal list, to address the printed notices."""
    from mailer.members.exportfile import SafeWriter

    out = io.StringIO()
    writer = SafeWriter(out)  # names come from members: never formulas
    writer.writerow(["membership number", "name", "postcode", "why by post"])
    for m in postal_list(meeting):
        writer.writerow([m.membership_number or "", m.full_name, m.postcode or "", postal_reason(m)])
    return out.getvalue()


def postal_reason(m: PostalRow) -> str:
    if not m.email:
        return "no email"
    if not m.notices_consent:
        return "objected to email"
    return "email on hold" if m.email_health is EmailHealth.ON_HOLD else "email suppressed"


def evidence_csv(meeting: Meeting) -> str:
    """Who was sent what, and when: every delivery of the meeting's notices, updates and reminders."""
    from mailer.members.exportfile import SafeWriter

    out = io.StringIO()
    writer = SafeWriter(out)  # names and subjects come from members and officers: never formulas
    writer.writerow(["purpose", "campaign", "membership number", "name", "email", "status", "sent at (UTC)",
                     "Message-ID", "error"])
    rows = session.execute(select(MeetingCampaign.purpose, Campaign.subject, Member.membership_number,
                                  Member.first_name, Member.last_name, Delivery.email, Delivery.status,
                                  Delivery.sent_at, Delivery.message_id, Delivery.error)
                           .join(Campaign, Campaign.id == MeetingCampaign.campaign_id)
                           .join(Delivery, Delivery.campaign_id == Campaign.id)
                           .outerjoin(Member, Member.id == Delivery.member_id)
                           .where(MeetingCampaign.meeting_id == meeting.id)
                           .order_by(MeetingCampaign.id, Delivery.id))
    for r in rows:
        writer.writerow([r.purpose, r.subject, r.membership_number or "", f"{r.first_name or ''} {r.last_name or ''}".strip(),
                         r.email, r.status.value, r.sent_at.isoformat() if r.sent_at else "", r.message_id or "",
                         r.error or ""])
    return out.getvalue()
