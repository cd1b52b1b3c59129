"""A notice through the real pipeline: each member gets the invite and their own one-click links;
answers by link, by reply and by calendar land in the register; reminders skip those who said no."""

from __future__ import annotations

import re

import icalendar
from sqlalchemy import select

from mailer.db import session
from mailer.inbound import store
from mailer.meetings import service
from mailer.models import Attendance, Delivery, MeetingCampaign, MeetingStatus, Response
from tests.inbound.conftest import raw_message
from tests.sending.conftest import run_queue


def _notice(secretary, meeting):
    campaign = service.send_notice(secretary, meeting)
    session.commit()
    run_queue()
    session.expire_all()
    return campaign


def test_each_member_gets_the_invite_and_their_own_links(make_meeting, secretary, make_member, scripted_smtp, client):
    ann, bob = make_member(first_name="Ann", email="ann@example.org"), make_member(first_name="Bob", email="bob@example.org")
    meeting = make_meeting()
    _notice(secretary, meeting)
    links = {}
    for member in (ann, bob):
        [message] = scripted_smtp.received_by(member.email)
        assert message["Subject"].startswith("Notice: General meeting")
        [invite] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
        cal = icalendar.Calendar.from_ical(invite.get_content())
        assert str(cal["method"]) == "PUBLISH" and str(cal.walk("VEVENT")[0]["uid"]) == meeting.ical_uid
        text = message.get_body(("plain",)).get_content()
        assert "Trades Hall, 1 High Street" in text and "1. Apologies" in text
        links[member.email] = re.findall(r"https://mailer\.example\.org/r/\S+?/(?:attending|apologies|not_attending)",
                                         text)
        assert len(links[member.email]) == 3
    assert set(links["ann@example.org"]).isdisjoint(links["bob@example.org"])
    apologies = links["ann@example.org"][1].removeprefix("https://mailer.example.org")
    assert client.get(apologies).status_code == 200
    assert session.scalar(select(Attendance)) is None  # a GET (a link scanner) records nothing
    assert client.post(apologies).status_code == 200
    row = session.scalar(select(Attendance))
    assert (row.member_id, row.response, row.source, row.proposed) == (ann.id, Response.APOLOGIES, "link", False)
    client.post(links["ann@example.org"][0].removeprefix("https://mailer.example.org"))  # changed her mind
    session.expire_all()
    assert session.scalar(select(Attendance)).response is Response.ATTENDING


def test_apologies_link_for_a_held_meeting_says_so(make_meeting, secretary, make_member, client):
    member = make_member(email="late@example.org")
    meeting = make_meeting()
    token = service.response_token(meeting.id, member)
    service.mark_held(secretary, meeting)
    session.commit()
    response = client.post(f"/r/{token}/apologies")
    assert response.status_code == 409 and b"already been held" in response.data
    assert session.scalar(select(Attendance)) is None


def test_an_apologies_reply_is_proposed_for_an_officer_to_confirm(make_meeting, secretary, make_member):
    member = make_member(first_name="Cat", email="cat@example.org")
    meeting = make_meeting()
    _notice(secretary, meeting)
    delivery = session.scalar(select(Delivery).where(Delivery.member_id == member.id))
    store.store(raw_message(sender="cat@example.org", subject="Re: Notice", in_reply_to=delivery.message_id,
                            body="Hi, please send my apologies, I'm away that week.\n"), "file")
    session.commit()  # the caller's commit queues its processing
    run_queue()
    session.expire_all()
    row = session.scalar(select(Attendance).where(Attendance.member_id == member.id))
    assert (row.response, row.source, row.proposed) == (Response.APOLOGIES, "reply", True)
    register = service.register(session.get(type(meeting), meeting.id))
    assert register.apologies == 0  # proposed only, until confirmed
    service.confirm(secretary, row, accept=True)
    session.commit()
    assert service.register(session.get(type(meeting), meeting.id)).apologies == 1


def test_a_reply_that_is_not_apologies_proposes_nothing(make_meeting, secretary, make_member):
    member = make_member(email="dan@example.org")
    meeting = make_meeting()
    _notice(secretary, meeting)
    delivery = session.scalar(select(Delivery).where(Delivery.member_id == member.id))
    store.store(raw_message(sender="dan@example.org", in_reply_to=delivery.message_id,
                            body="Can I bring a motion about the library?\n"), "file")
    session.commit()  # the caller's commit queues its processing
    run_queue()
    assert session.scalar(select(Attendance)) is None


def test_a_calendar_reply_is_recorded(make_meeting, secretary, make_member):
    member = make_member(email="eve@example.org")
    meeting = make_meeting()
    _notice(secretary, meeting)
    delivery = session.scalar(select(Delivery).where(Delivery.member_id == member.id))
    reply = icalendar.Calendar()
    reply.add("method", "REPLY")
    event = icalendar.Event()
    event.add("uid", meeting.ical_uid)
    attendee = icalendar.vCalAddress("mailto:eve@example.org")
    attendee.params["PARTSTAT"] = icalendar.vText("DECLINED")
    event.add("attendee", attendee)
    reply.add_component(event)
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "eve@example.org", "secretary@anytown-labour.example", "Declined: Notice"
    msg["In-Reply-To"], msg["Message-ID"] = delivery.message_id, "<decline@example.org>"
    msg.set_content("Declined")
    msg.add_attachment(reply.to_ical(), maintype="text", subtype="calendar", filename="reply.ics")
    store.store(bytes(msg), "file")
    session.commit()  # the caller's commit queues its processing
    run_queue()
    row = session.scalar(select(Attendance).where(Attendance.member_id == member.id))
    assert (row.response, row.source, row.proposed) == (Response.APOLOGIES, "calendar", False)


def test_register_counts_presence_and_quorum(app, make_meeting, secretary, make_member):
    app.config["QUORUM"] = 2
    people = [make_member(first_name=f"P{i}", email=f"p{i}@example.org") for i in range(3)]
    meeting = make_meeting()
    service.record_response(meeting, people[0], Response.APOLOGIES, "officer")
    service.mark_present(secretary, meeting, {people[1].id})
    session.commit()
    register = service.register(meeting)
    assert (len(register.rows), register.expected, register.apologies, register.present) == (3, 2, 1, 1)
    assert register.quorate is False
    service.mark_present(secretary, meeting, {people[1].id, people[2].id})
    session.commit()
    assert service.register(meeting).quorate is True


def test_reminder_goes_only_to_those_who_sent_no_apologies(make_meeting, secretary, make_member, scripted_smtp):
    coming = make_member(email="coming@example.org")
    sorry = make_member(email="sorry@example.org")
    meeting = make_meeting()
    _notice(secretary, meeting)
    service.record_response(meeting, sorry, Response.APOLOGIES, "link")
    session.commit()
    assert service.send_reminder(meeting.id, meeting.ical_sequence) == "sent"
    session.commit()
    assert service.send_reminder(meeting.id, meeting.ical_sequence) == "already sent"
    session.commit()
    run_queue()
    reminders = [r for r, m in scripted_smtp.accepted if m["Subject"].startswith("Reminder:")]
    assert reminders == [coming.email]


def test_members_without_email_are_listed_for_posting(make_meeting, make_member):
    make_member(email="fine@example.org")
    nomail = make_member(first_name="Posty", email=None)
    objector = make_member(first_name="Paper", email="paper@example.org", notices_consent=False)
    meeting = make_meeting()
    assert {m.id for m in service.postal_list(meeting)} == {nomail.id, objector.id}


def test_evidence_lists_who_was_sent_what(make_meeting, secretary, make_member):
    make_member(first_name="Ev", last_name="Idence", email="ev@example.org")
    meeting = make_meeting()
    _notice(secretary, meeting)
    csv_text = service.evidence_csv(session.get(type(meeting), meeting.id))
    header, row = csv_text.strip().splitlines()
    assert header.startswith("purpose,campaign,membership number")
    assert row.startswith("notice,\"Notice: General meeting, ") and "ev@example.org,sent," in row
    assert session.scalar(select(MeetingCampaign.purpose)) == "notice"
    assert session.get(type(meeting), meeting.id).status is MeetingStatus.NOTICED


def test_the_register_summary_counts_what_the_register_lists(make_meeting, make_member):
    """The meeting page counts in SQL what the register page lists row by row."""
    from mailer.db import session
    from mailer.meetings import service
    from mailer.models import Attendance, MemberStatus, Response

    people = [make_member() for _ in range(6)]
    make_member(status=MemberStatus.RESIGNED)  # never entitled
    meeting = make_meeting()
    answers = [(people[0], Response.APOLOGIES, False, False), (people[1], Response.APOLOGIES, True, False),
               (people[2], Response.NOT_ATTENDING, False, False), (people[3], Response.ATTENDING, False, True)]
    for member, response, proposed, present in answers:
        session.add(Attendance(meeting_id=meeting.id, member_id=member.id, response=response, proposed=proposed,
                               present=present))
    session.commit()
    full, summary = service.register(meeting), service.register_summary(meeting)
    assert (summary.entitled, summary.expected, summary.apologies, summary.present, summary.quorum) == \
        (len(full.rows), full.expected, full.apologies, full.present, full.quorum)
    assert (summary.entitled, summary.apologies, summary.present) == (6, 1, 1)
