"""Notice periods and bad input; invites parsed back with the icalendar library, field by field."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

from mailer.db import session, utcnow
from mailer.meetings import calendar, feeds, rules, service
from mailer.meetings.rules import MeetingError
from mailer.models import AuditEvent, MeetingKind, MeetingStatus

LONDON = ZoneInfo("Europe/London")


def test_default_agenda_of_a_general_meeting(make_meeting):
    meeting = make_meeting()
    assert [i.title for i in meeting.agenda] == [
        "Apologies", "Minutes of the last meeting and matters arising", "Correspondence", "Officer reports",
        "Motions", "Any other business", "Date of next meeting"]


def test_an_agm_noticed_too_late_is_refused_with_the_right_date(make_meeting, secretary):
    meeting = make_meeting(days=20, kind=MeetingKind.AGM, title="Annual general meeting")
    check = rules.check_notice(meeting)
    expected = rules.local_date(meeting.starts_at) - timedelta(days=28)
    assert not check.ok and check.days_required == 28 and check.latest_date == expected
    with pytest.raises(MeetingError) as refused:
        service.send_notice(secretary, meeting)
    assert expected.strftime("%A %d %B %Y") in str(refused.value) and "28 days" in str(refused.value)
    assert session.get(type(meeting), meeting.id).status is MeetingStatus.PLANNED


def test_an_ordinary_meeting_needs_seven_days_and_a_branch_rule_can_differ(app, make_meeting, make_branch):
    assert rules.check_notice(make_meeting(days=8)).ok
    assert not rules.check_notice(make_meeting(days=5, title="Soon")).ok
    app.config["NOTICE_DAYS"] = "general=7, branch:general=14"
    branch = make_branch("North")
    branch_meeting = make_meeting(days=10, branch_id=branch.id, title="North general")
    assert rules.notice_days(branch_meeting) == 14 and not rules.check_notice(branch_meeting).ok


def test_override_is_allowed_with_a_reason_and_audited(make_meeting, secretary, make_member):
    make_member(email="m1@example.org")
    meeting = make_meeting(days=3)
    service.send_notice(secretary, meeting, override="Emergency meeting called by the regional office")
    session.commit()
    session.expire_all()
    assert session.get(type(meeting), meeting.id).status is MeetingStatus.NOTICED
    event = session.query(AuditEvent).filter_by(action="meeting.notice_override").one()
    assert event.note == "Emergency meeting called by the regional office"


@pytest.mark.parametrize("values,message", [
    ({"starts_at": utcnow() - timedelta(days=1)}, "in the past"),
    ({"ends_at": "BEFORE"}, "must end after it starts"),
    ({"online_url": "zoom meeting 123"}, "not a web address"),
    ({"venue_name": "", "venue_address": "", "online_url": ""}, "Give a venue"),
])
def test_bad_meeting_input_is_explained(secretary, values, message):
    starts = utcnow() + timedelta(days=14)
    data = {"title": "Bad", "kind": "general", "starts_at": starts, "ends_at": starts + timedelta(hours=1),
            "venue_name": "Hall", **values}
    if data["ends_at"] == "BEFORE":
        data["ends_at"] = starts - timedelta(hours=1)
    with pytest.raises(MeetingError, match=message):
        service.create(secretary, data)


def test_a_clash_is_a_warning(make_meeting, secretary):
    first = make_meeting(days=14)
    _meeting, warnings = service.create(secretary, {
        "title": "Clash", "kind": "general", "starts_at": first.starts_at + timedelta(minutes=30),
        "venue_name": "Hall"})
    assert warnings and "General meeting" in warnings[0]


def test_cancelled_meeting_cannot_be_noticed(make_meeting, secretary):
    meeting = make_meeting()
    service.cancel(secretary, meeting, "Venue flooded")
    session.commit()
    with pytest.raises(MeetingError, match="cancelled"):
        service.send_notice(secretary, meeting)


def _event(data: bytes):
    cal = icalendar.Calendar.from_ical(data)
    [event] = cal.walk("VEVENT")
    return cal, event


def test_invite_parsed_back_field_by_field(make_meeting, app):
    meeting = make_meeting(days=30, online_url="https://meet.example.org/abc", dial_in="0800 000 000")
    cal, event = _event(calendar.invite(meeting))
    assert str(cal["method"]) == "PUBLISH" and str(cal["version"]) == "2.0"
    assert str(event["uid"]) == meeting.ical_uid and int(event["sequence"]) == 0
    start = event["dtstart"].dt
    assert start.tzinfo is not None and str(event["dtstart"].params["TZID"]) == "Europe/London"
    assert start == meeting.starts_at.astimezone(LONDON)
    assert [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    assert "Trades Hall" in str(event["location"]) and "https://meet.example.org/abc" in str(event["location"])
    assert str(event["url"]) == "https://meet.example.org/abc"
    assert "Dial in: 0800 000 000" in str(event["description"]) and "1. Apologies" in str(event["description"])
    assert str(event["status"]) == "CONFIRMED"


def test_a_change_raises_the_sequence_and_a_cancellation_cancels(make_meeting, secretary, make_member):
    make_member(email="m2@example.org")
    meeting = make_meeting(days=30)
    service.send_notice(secretary, meeting)
    session.commit()
    service.update(secretary, meeting, {"venue_name": "Library", "venue_address": "2 Church Lane"})
    session.commit()
    assert service.needs_update_notice(meeting)
    _cal, event = _event(calendar.invite(meeting))
    assert int(event["sequence"]) == 1 and str(event["uid"]) == meeting.ical_uid and "Library" in str(event["location"])
    service.send_update(secretary, meeting)
    session.commit()
    assert not service.needs_update_notice(meeting)
    service.cancel(secretary, meeting, "The hall is closed")
    session.commit()
    cal, event = _event(calendar.invite(meeting))
    assert str(cal["method"]) == "CANCEL" and str(event["status"]) == "CANCELLED" and int(event["sequence"]) == 2


def test_committees_get_request_with_their_members_as_attendees(make_meeting, make_member):
    from mailer.members.service import set_tags

    member = make_member(first_name="Exec", email="exec@example.org")
    set_tags(member, "executive committee")
    session.commit()
    meeting = make_meeting(kind=MeetingKind.EXECUTIVE, title="Executive committee")
    attendees = [(m.full_name, m.email) for m in session.scalars(service.entitled_query(meeting))]
    cal, event = _event(calendar.invite(meeting, attendees))
    assert str(cal["method"]) == "REQUEST"
    assert [str(a) for a in (event["attendee"] if isinstance(event["attendee"], list) else [event["attendee"]])] == \
        ["mailto:exec@example.org"]


def test_feed_lists_upcoming_meetings_of_a_body(make_meeting, client, make_branch):
    clp = make_meeting(days=10, title="CLP meeting")
    branch = make_branch("North")
    make_meeting(days=11, title="North meeting", branch_id=branch.id)
    response = client.get(feeds.feed_url(None).split("5000", 1)[-1].replace("http://127.0.0.1", ""))
    cal = icalendar.Calendar.from_ical(response.data)
    assert [str(e["uid"]) for e in cal.walk("VEVENT")] == [clp.ical_uid]
    assert response.headers["Content-Type"].startswith("text/calendar")
    assert client.get("/calendar/forged.ics").status_code == 404
