"""iCalendar for meetings, built with the icalendar library: the invite each notice carries,
its updates and cancellation, and each body's subscribable feed of upcoming meetings.

Member-wide notices use METHOD:PUBLISH; small committees use REQUEST (with their members as
attendees). The UID is stable, the SEQUENCE rises with each change, DTSTART carries
TZID=Europe/London with its VTIMEZONE, so calendars put the meeting at the right local time.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import icalendar
from flask import current_app

from mailer.db import utcnow
from mailer.links import base_url
from mailer.models import Meeting, MeetingKind, MeetingStatus

LONDON = ZoneInfo("Europe/London")
PRODID = "-//Mailer//Meetings//EN"

_VTIMEZONE = None


def _vtimezone() -> icalendar.Timezone:
    global _VTIMEZONE
    if _VTIMEZONE is None:  # building the rules for 1970-2038 is slow: once per process
        _VTIMEZONE = icalendar.Timezone.from_tzinfo(LONDON, first_date=date(2020, 1, 1), last_date=date(2037, 1, 1))
    return _VTIMEZONE


def method_for(meeting: Meeting) -> str:
    """REQUEST for a small committee (its members are invited), PUBLISH for member-wide meetings."""
    return "REQUEST" if meeting.kind is MeetingKind.EXECUTIVE else "PUBLISH"


def location(meeting: Meeting) -> str:
    place = ", ".join(p for p in (meeting.venue_name, meeting.venue_address) if p)
    if meeting.online_url:
        place = f"{place} / online: {meeting.online_url}" if place else f"Online: {meeting.online_url}"
    return place


def _event(meeting: Meeting, cancelled: bool = False, attendees: list[tuple[str, str]] | None = None) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", meeting.ical_uid)
    event.add("sequence", meeting.ical_sequence)
    event.add("dtstamp", utcnow())
    event.add("dtstart", meeting.starts_at.astimezone(LONDON))
    event.add("dtend", (meeting.ends_at or meeting.starts_at + timedelta(hours=2)).astimezone(LONDON))
    event.add("summary", f"{meeting.title} ({meeting.body_name})")
    event.add("location", location(meeting))
    description = [meeting.kind.label]
    if meeting.online_url:
        description.append(f"Join online: {meeting.online_url}")
    if meeting.dial_in:
        description.append(f"Dial in: {meeting.dial_in}")
    if meeting.accessibility:
        description.append(f"Accessibility: {meeting.accessibility}")
    if meeting.agenda:
        description.append("Agenda:\n" + "\n".join(f"{i}. {item.title}" for i, item in enumerate(meeting.agenda, 1)))
    event.add("description", "\n\n".join(description))
    event.add("url", meeting.online_url or base_url())
    cfg = current_app.config
    organizer = icalendar.vCalAddress(f"mailto:{cfg['REPLY_ADDRESS']}")
    organizer.params["cn"] = icalendar.vText(cfg["SENDER_NAME"])
    event.add("organizer", organizer)
    for name, email in attendees or []:
        attendee = icalendar.vCalAddress(f"mailto:{email}")
        attendee.params.update({"cn": icalendar.vText(name), "role": icalendar.vText("REQ-PARTICIPANT"),
                                "partstat": icalendar.vText("NEEDS-ACTION"), "rsvp": icalendar.vText("TRUE")})
        event.add("attendee", attendee, encode=0)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def invite(meeting: Meeting, attendees: list[tuple[str, str]] | None = None) -> bytes:
    """The invite (or its update) for a notice: PUBLISH or REQUEST, CANCEL once cancelled."""
    cancelled = meeting.status is MeetingStatus.CANCELLED
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else method_for(meeting))
    cal.add_component(_vtimezone())
    cal.add_component(_event(meeting, cancelled, attendees if method_for(meeting) == "REQUEST" else None))
    return cal.to_ical()


def feed(meetings: list[Meeting], name: str) -> bytes:
    """A subscribable calendar of a body's upcoming meetings."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Europe/London")
    cal.add_component(_vtimezone())
    for meeting in meetings:
        cal.add_component(_event(meeting, meeting.status is MeetingStatus.CANCELLED))
    return cal.to_ical()


def read_reply(data: bytes | str) -> list[tuple[str, str, str]]:
    """(uid, attendee email, partstat) from an iCalendar REPLY a member's calendar sent back."""
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception:  # noqa: BLE001 - a broken calendar part is just not a reply
        return []
    if str(cal.get("method", "")).upper() != "REPLY":
        return []
    out = []
    for event in cal.walk("VEVENT"):
        uid = str(event.get("uid", ""))
        attendees = event.get("attendee")
        for attendee in attendees if isinstance(attendees, list) else [attendees] if attendees else []:
            email = str(attendee).removeprefix("mailto:").removeprefix("MAILTO:").lower()
            out.append((uid, email, str(attendee.params.get("PARTSTAT", "")).upper()))
    return out
