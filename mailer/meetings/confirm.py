"""What a meeting's mass sends (the notice, its update, the minutes) will look like before they
go: a transient copy of the campaign the send will create, never saved, to preview and count,
and the fingerprint the confirmation token is tied to.

The copies are built from the same starters and the same fill as noticing.meeting_campaign and
minutes.circulate; the send itself is unchanged and still builds its own campaign.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from mailer.compose import starters
from mailer.members import segments
from mailer.meetings import minutes as minutes_service
from mailer.meetings import noticing
from mailer.meetings.rules import LONDON, MeetingError
from mailer.models import Campaign, Meeting, MeetingKind, MeetingStatus, Minutes, MinutesStatus, Officer, Stream
from mailer.sending import audience

PURPOSES = ("notice", "update", "minutes")


@dataclass
class PlannedSend:
    """A send a meeting will make: the campaign as it will be, and who it reaches."""

    purpose: str
    campaign: Campaign          # transient: never added to the session
    audience: audience.Audience
    attachments: list[str]
    digest: str


def _draft(meeting: Meeting, purpose: str, starter_slug: str, subject_prefix: str = "") -> Campaign:
    starter = starters.get(starter_slug)
    # Scalar columns only: a relationship (created_by, branch) would cascade the copy into the session.
    campaign = Campaign(stream=Stream.NOTICES, name=f"{meeting.title}: {purpose}",
                        from_name=current_app.config["SENDER_NAME"], branch_id=meeting.branch_id,
                        starter=starter.slug, segment=segments.clean(meeting.entitled),
                        subject=subject_prefix + noticing.fill(starter.subject, meeting),
                        preheader=noticing.fill(starter.preheader, meeting), body_format=starter.body_format,
                        body=noticing.fill(starter.body, meeting), web_token="preview")
    campaign._mailer_meeting_id = meeting.id  # the preview carries the member's real RSVP links
    return campaign


def planned(officer: Officer, meeting: Meeting, purpose: str, minutes: Minutes | None = None) -> PlannedSend:
    """The send `purpose` would make now. Raises MeetingError when it cannot be made at all."""
    if purpose == "notice":
        if meeting.status is not MeetingStatus.PLANNED:
            raise MeetingError(f"This meeting is {meeting.status.value}: its notice cannot be sent now.")
        starter = "agm-notice" if meeting.kind is MeetingKind.AGM else "meeting-notice"
        campaign, files = _draft(meeting, "notice", starter), ["invite.ics (calendar invitation)"]
    elif purpose == "update":
        if meeting.status is not MeetingStatus.NOTICED:
            raise MeetingError("Only a noticed meeting has members to update.")
        campaign = _draft(meeting, "update", "meeting-notice", subject_prefix="Changed: ")
        files = ["invite.ics (the updated calendar invitation)"]
    elif purpose == "minutes":
        if minutes is None or minutes.status is not MinutesStatus.APPROVED:
            raise MeetingError("Minutes are circulated once the chair has approved them.")
        campaign = _draft(meeting, "minutes", "minutes")
        text = minutes_service.body_markdown(minutes, web_link=True).replace("{% endraw %}", "{ % endraw % }")
        campaign.body = "Dear {{ member.first_name }},\n\n{% raw %}" + text + "{% endraw %}\n"
        campaign.subject = f"Minutes: {meeting.title}, {meeting.starts_at.astimezone(LONDON).strftime('%-d %B %Y')}"
        files = ["minutes.pdf"]
    else:
        raise MeetingError("There is no such send.")
    crowd = audience.campaign_audience(campaign, officer)
    state = f"{meeting.status.value}/{meeting.ical_sequence}/{minutes.status.value if minutes else ''}"
    return PlannedSend(purpose, campaign, crowd, files, audience.fingerprint(campaign, extra=state))


def token(officer: Officer, meeting: Meeting, plan: PlannedSend) -> str:
    return audience.confirm_token(f"meeting-{plan.purpose}", meeting.id, plan.digest, officer)


def is_confirmed(officer: Officer, meeting: Meeting, purpose: str, given: str | None,
                 minutes: Minutes | None = None) -> bool:
    """True when `given` confirms exactly the send `purpose` would make now."""
    try:
        plan = planned(officer, meeting, purpose, minutes)
    except MeetingError:
        return False  # nothing that can be sent now: the confirmation page says why
    return audience.confirmed(given, f"meeting-{purpose}", meeting.id, plan.digest, officer)
