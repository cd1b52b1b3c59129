"""The meetings pages: plan a meeting (with clear refusals and a clash warning), edit its agenda,
notice it within the rules (or late, with an audited reason) with a calendar invite sent through a
real queue and SMTP server, update and cancel it, keep the register, and write, approve (chair
only), circulate and adopt the minutes. Branch secretaries see only their own branch's meetings."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import icalendar
import pytest
from aiosmtpd.controller import Controller
from markupsafe import escape
from sqlalchemy import func, select

from mailer.db import session, utcnow
from mailer.inbound import store
from mailer.meetings import service
from mailer.meetings.rules import LONDON
from mailer.models import (Attachment, Attendance, AuditEvent, Campaign, Meeting, MeetingCampaign,
                           MeetingKind, MeetingStatus, Minutes, MinutesStatus, Response, Role, Thread)
from tests.conftest import TEST_PASSWORD, confirm_and_send, free_port, login
from tests.inbound.conftest import raw_message
from tests.sending.conftest import ScriptedSMTP, _Handler, run_queue
from tests.web.test_campaigns_web import clear_queue

SECRETARY_ADDRESS = "secretary@anytown-labour.example"


@pytest.fixture
def relay():
    """A real SMTP server (the sending tests' scripted one) that accepts everything."""
    smtp = ScriptedSMTP()
    controller = Controller(_Handler(smtp), hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp.port = controller.port
    yield smtp
    controller.stop()


@pytest.fixture
def app(make_app, relay):
    app = make_app(MAIL_PORT=relay.port, RETRY_BASE_SECONDS=0, BASE_URL="https://mailer.example.org",
                   SENDER_ADDRESS=SECRETARY_ADDRESS, REPLY_ADDRESS=SECRETARY_ADDRESS,
                   REMINDER_HOURS=0)  # no reminder parked in the scheduler for days: run_queue must empty
    with app.app_context():
        clear_queue()
        yield app


# --- helpers --------------------------------------------------------------------------------

def local(days: int, hour: int = 19, minute: int = 30) -> str:
    """A datetime-local value `days` from today (UK time)."""
    day = (utcnow().astimezone(LONDON) + timedelta(days=days)).date()
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}"


def form(**values) -> dict:
    data = {"body": "clp", "kind": "general", "title": "General meeting", "starts_at": local(14),
            "ends_at": local(14, 21, 0), "venue_name": "Trades Hall", "venue_address": "1 High Street, Anytown AN1 1AA",
            "online_url": "", "dial_in": "", "accessibility": "Step-free access; hearing loop.", "quorum": ""}
    data.update(values)
    return data


def create(client, **values) -> int:
    response = client.post("/meetings/new", data=form(**values))
    assert response.status_code == 302, response.data.decode()[:3000]
    return int(re.search(r"/meetings/(\d+)$", response.headers["Location"]).group(1))


def fresh(meeting_id: int) -> Meeting:
    session.expire_all()
    return session.get(Meeting, meeting_id)


def text(response) -> str:
    return response.data.decode()


def audits(action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def invite_of(campaign_id: int) -> icalendar.Calendar:
    attachment = session.scalar(select(Attachment).where(Attachment.campaign_id == campaign_id,
                                                         Attachment.filename == "invite.ics"))
    assert attachment is not None and attachment.content_type.startswith("text/calendar")
    return icalendar.Calendar.from_ical(attachment.data)


def campaigns_of(meeting_id: int, purpose: str) -> list[MeetingCampaign]:
    session.expire_all()
    return list(session.scalars(select(MeetingCampaign).where(MeetingCampaign.meeting_id == meeting_id,
                                                              MeetingCampaign.purpose == purpose)
                                .order_by(MeetingCampaign.id)))


def calendar_parts(message) -> list:
    return [part for part in message.walk() if part.get_content_type() == "text/calendar"]


# --- planning -------------------------------------------------------------------------------

def test_create_lists_and_shows_the_meeting_in_uk_time(signed_in):
    page = text(signed_in.get("/meetings/"))
    assert "No meetings planned." in page and 'aria-current="page">Meetings<' in page
    meeting_id = create(signed_in, title="November general meeting", starts_at="2027-07-01T19:30",
                        ends_at="2027-07-01T21:00", online_url="https://zoom.example/j/123", dial_in="0203 000 0000",
                        quorum="12")
    meeting = fresh(meeting_id)
    assert meeting.starts_at.isoformat() == "2027-07-01T18:30:00+00:00"  # 19:30 in London is 18:30 UTC in July
    assert (meeting.kind, meeting.branch_id, meeting.quorum, meeting.status) == (MeetingKind.GENERAL, None, 12,
                                                                                 MeetingStatus.PLANNED)
    assert [i.title for i in meeting.agenda][:3] == ["Apologies", "Minutes of the last meeting and matters arising",
                                                     "Correspondence"]
    assert audits("meeting.create")[0].subject_id == meeting_id

    listing = text(signed_in.get("/meetings/"))
    upcoming = listing.split('id="upcoming-h"')[1].split('id="new-h"')[0]
    assert "November general meeting" in upcoming and "01/07/2027 19:30" in upcoming and "planned" in upcoming
    detail = text(signed_in.get(f"/meetings/{meeting_id}"))
    assert "Thursday 1 July 2027, 19:30" in detail and "21:00" in detail
    assert "https://zoom.example/j/123" in detail and "0203 000 0000" in detail


@pytest.mark.parametrize("values, message", [
    ({"starts_at": local(-2), "ends_at": ""}, "That date and time is in the past."),
    ({"ends_at": local(14, 18, 0)}, "The meeting must end after it starts."),
    ({"online_url": "zoom meeting 123"}, "is not a web address (it should start with https://)."),
    ({"online_url": "www.zoom.us/j/1"}, "is not a web address"),
    ({"title": "   "}, "Give the meeting a title."),
    ({"venue_name": "", "venue_address": "", "online_url": ""}, "Give a venue, an online link, or both."),
    ({"starts_at": ""}, "Give the date and time the meeting starts."),
    ({"starts_at": "next Tuesday"}, "is not a date and time: write it as dd/mm/yyyy hh:mm."),
    ({"starts_at": "12/31/2027 19:30"}, "is not a date and time"),  # month first is not UK
    ({"quorum": "a dozen"}, "The quorum is a number of members"),
    ({"kind": "picnic"}, "Choose the kind of meeting."),
])
def test_bad_input_gets_a_clear_message_and_nothing_is_saved(signed_in, values, message):
    response = signed_in.post("/meetings/new", data=form(title=values.pop("title", "Kept title"), **values))
    page = text(response)
    assert response.status_code == 400
    assert str(escape(message)) in page, page[:4000]
    assert 'role="alert" id="meeting-error"' in page
    assert session.scalar(select(func.count()).select_from(Meeting)) == 0
    if "title" not in message:
        assert 'value="Kept title"' in page  # what was typed is kept


def test_a_clash_is_a_warning_after_saving(signed_in, make_branch):
    north = make_branch("North")
    first = create(signed_in, title="Executive", kind="executive", starts_at=local(10), ends_at=local(10, 21, 0))
    response = signed_in.post("/meetings/new", data=form(title="Fundraising meeting", starts_at=local(10, 20, 0),
                                                         ends_at=local(10, 22, 0)), follow_redirects=True)
    page = text(response)
    assert response.status_code == 200 and "Fundraising meeting" in page
    assert 'class="flash flash-warning"' in page and "Warning: Executive of the CLP is at an overlapping time" in page
    second = session.scalar(select(Meeting).where(Meeting.title == "Fundraising meeting"))
    assert second is not None and second.id != first  # saved despite the clash
    # Another body's meeting at the same time is no clash.
    page = text(signed_in.post("/meetings/new", data=form(title="North branch meeting", body=str(north.id),
                                                          kind="branch", starts_at=local(10, 20, 0)),
                               follow_redirects=True))
    assert "North branch meeting" in page and "Warning:" not in page


def test_edit_details_and_a_bad_edit_is_refused(signed_in):
    meeting_id = create(signed_in)
    response = signed_in.get(f"/meetings/{meeting_id}/edit")
    day, clock = local(14).split("T")
    uk = f"{day[8:10]}/{day[5:7]}/{day[:4]} {clock}"  # shown back day first
    assert 'value="Trades Hall"' in text(response) and f'value="{uk}"' in text(response)
    # Typed day first, it is read day first: 03/12 is the 3rd of December.
    signed_in.post(f"/meetings/{meeting_id}/edit", data=form(starts_at=f"03/12/{int(day[:4]) + 1} 19:30",
                                                            ends_at=f"03/12/{int(day[:4]) + 1} 21:00"))
    starts = fresh(meeting_id).starts_at.astimezone(LONDON)
    assert (starts.day, starts.month, starts.hour, starts.minute) == (3, 12, 19, 30)
    signed_in.post(f"/meetings/{meeting_id}/edit", data=form())
    bad = signed_in.post(f"/meetings/{meeting_id}/edit", data=form(ends_at=local(14, 17, 0)))
    assert bad.status_code == 400 and "The meeting must end after it starts." in text(bad)
    assert fresh(meeting_id).ends_at.astimezone(LONDON).hour == 21
    page = text(signed_in.post(f"/meetings/{meeting_id}/edit", data=form(venue_name="Labour Club"),
                               follow_redirects=True))
    assert "Saved: venue." in page and fresh(meeting_id).venue_name == "Labour Club"
    assert fresh(meeting_id).ical_sequence == 0  # not noticed: nothing to tell members yet


# --- the agenda -----------------------------------------------------------------------------

def agenda_form(meeting: Meeting, rows: list[dict]) -> dict:
    data = {"rows": str(len(rows))}
    for n, row in enumerate(rows):
        for key, value in row.items():
            data[f"{key}-{n}"] = value
    return data


def test_agenda_edit_reorder_remove_add_and_papers(signed_in):
    meeting_id = create(signed_in)
    meeting = fresh(meeting_id)
    items = meeting.agenda
    rows = [{"id": str(i.id), "position": str(n), "title": i.title, "notes": ""} for n, i in enumerate(items, 1)]
    rows[0]["position"] = "3.5"                          # Apologies moves after Correspondence
    rows[2]["notes"] = "Letter from the council"         # Correspondence gets notes
    rows[3]["remove"] = "1"                              # Officer reports go
    rows.append({"position": "2.5", "title": "  Guest   speaker: the MP ", "notes": "20 minutes"})  # the empty row
    response = signed_in.post(f"/meetings/{meeting_id}/agenda", data=agenda_form(meeting, rows))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/meetings/{meeting_id}")
    agenda = fresh(meeting_id).agenda
    assert [i.title for i in agenda] == ["Minutes of the last meeting and matters arising", "Guest speaker: the MP",
                                         "Correspondence", "Apologies", "Motions", "Any other business",
                                         "Date of next meeting"]
    assert agenda[1].notes == "20 minutes" and agenda[2].notes == "Letter from the council"
    assert agenda[2].role == "correspondence" and agenda[3].role == "apologies"  # roles survive a move
    assert "Guest speaker: the MP" in audits("meeting.agenda")[-1].note
    page = text(signed_in.get(f"/meetings/{meeting_id}"))
    assert page.index("Guest speaker: the MP") < page.index("Letter from the council")

    # Papers: one per item, downloaded as a file, never shown in our origin.
    item = agenda[1]
    response = signed_in.post(f"/meetings/{meeting_id}/papers",
                              data={"item_id": str(item.id),
                                    "paper": (io.BytesIO(b"%PDF-1.4 speech"), "speech.pdf", "application/pdf")},
                              content_type="multipart/form-data")
    assert response.status_code == 302
    page = text(signed_in.get(f"/meetings/{meeting_id}"))
    papers = page.split('id="papers-h"')[1]
    assert "No papers yet." not in papers and papers.index("Guest speaker: the MP") < papers.index("speech.pdf")
    paper_url = re.search(rf'href="(/meetings/{meeting_id}/papers/\d+)">speech.pdf<', page).group(1)
    download = signed_in.get(paper_url)
    assert download.data == b"%PDF-1.4 speech" and "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    empty = signed_in.post(f"/meetings/{meeting_id}/papers",
                           data={"item_id": str(item.id), "paper": (io.BytesIO(b""), "empty.pdf")},
                           content_type="multipart/form-data", follow_redirects=True)
    assert "empty.pdf is empty." in text(empty)


# --- notices --------------------------------------------------------------------------------

def test_an_agm_noticed_too_late_is_refused_with_the_latest_date(signed_in, make_member):
    make_member(first_name="Ann", email="ann@example.org")
    meeting_id = create(signed_in, kind="agm", title="Annual general meeting", starts_at=local(20),
                        ends_at=local(20, 21, 0))
    meeting = fresh(meeting_id)
    latest = meeting.starts_at.astimezone(LONDON).date() - timedelta(days=28)
    page = text(signed_in.get(f"/meetings/{meeting_id}"))
    assert "needs <strong>28 days'</strong> notice" in page
    assert "Too late for the rule." in page and "sent today it would give 20" in page
    assert f'<strong id="latest-date">{latest.strftime("%A %-d %B %Y")}</strong>' in page
    assert latest.strftime("%d/%m/%Y") in page and "Reason for sending late" in page

    refused = text(signed_in.post(f"/meetings/{meeting_id}/notice", data={"override": "  "}, follow_redirects=True))
    assert 'class="flash flash-error"' in refused
    assert f"The notice had to go by {latest.strftime('%A %d %B %Y')}." in refused
    assert fresh(meeting_id).status is MeetingStatus.PLANNED and campaigns_of(meeting_id, "notice") == []


def test_a_late_notice_with_a_reason_is_sent_and_audited(signed_in, make_member):
    make_member(first_name="Ann", email="ann@example.org")
    meeting_id = create(signed_in, kind="agm", title="Annual general meeting", starts_at=local(20),
                        ends_at=local(20, 21, 0))
    reason = "The venue cancelled our booking; the regional office agreed the new date."
    response = confirm_and_send(signed_in, meeting_id, "notice", override=reason)
    page = text(signed_in.get(response.headers["Location"]))
    assert "The notice is on its way" in page and "Sent late because" in page and reason in page
    meeting = fresh(meeting_id)
    assert meeting.status is MeetingStatus.NOTICED and meeting.notice_override == reason
    event = audits("meeting.notice_override")[-1]
    assert event.note == reason and event.changes == {"days": [28, 20]} and event.officer_id == signed_in.officer.id
    assert len(campaigns_of(meeting_id, "notice")) == 1


def test_notice_update_and_cancellation_carry_the_invite_to_each_member(signed_in, make_member, relay):
    ann = make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    bob = make_member(first_name="Bob", last_name="Baker", email="bob@example.org")
    make_member(first_name="Pat", last_name="Post", email=None, postcode="AN1 2BB")  # posted a notice
    meeting_id = create(signed_in, title="December general meeting", starts_at=local(12), ends_at=local(12, 21, 0),
                        online_url="https://meet.example/dec")
    page = text(signed_in.get(f"/meetings/{meeting_id}"))
    assert "it meets the rule" in page and "Sent now, the notice gives 12 days" in page
    assert "1 entitled member without a working email" in page and "Pat Post" in page
    assert "/calendar/" in page and ".ics" in page  # the body's feed address

    response = confirm_and_send(signed_in, meeting_id, "notice")
    assert response.status_code == 302
    meeting = fresh(meeting_id)
    assert meeting.status is MeetingStatus.NOTICED
    [notice] = campaigns_of(meeting_id, "notice")
    cal = invite_of(notice.campaign_id)
    [event] = cal.walk("VEVENT")
    assert str(cal["METHOD"]) == "PUBLISH" and cal.walk("VTIMEZONE")
    assert str(event["UID"]) == meeting.ical_uid and int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    assert event.decoded("DTSTART").astimezone(LONDON).strftime("%H:%M") == "19:30"
    assert "Trades Hall, 1 High Street, Anytown AN1 1AA" in str(event["LOCATION"])
    assert str(event["URL"]) == "https://meet.example/dec"

    run_queue()
    for member in (ann, bob):
        [message] = relay.received_by(member.email)
        assert message["Subject"].startswith("Notice: December general meeting")
        [part] = calendar_parts(message)
        assert icalendar.Calendar.from_ical(part.get_content())["METHOD"] == "PUBLISH"
        body = message.get_body(("plain",)).get_content()
        mine = service.response_links(meeting_id, member)
        assert mine["apologies_url"] in body and mine["attending_url"] in body
        other = service.response_links(meeting_id, bob if member is ann else ann)
        assert other["apologies_url"] not in body  # each member's links are their own

    page = text(signed_in.get(f"/meetings/{meeting_id}"))
    assert f'href="/campaigns/{notice.campaign_id}"' in page and "Noticed." in page and "Send update" not in page
    evidence = signed_in.get(f"/meetings/{meeting_id}/evidence.csv")
    rows = list(csv.DictReader(io.StringIO(evidence.data.decode())))
    assert evidence.mimetype == "text/csv" and {r["email"] for r in rows} == {"ann@example.org", "bob@example.org"}
    assert {r["status"] for r in rows} == {"sent"} and all(r["Message-ID"] for r in rows)

    # A change of place: the invite's SEQUENCE rises and the page offers the update.
    signed_in.post(f"/meetings/{meeting_id}/edit", data=form(title="December general meeting", starts_at=local(12),
                                                            ends_at=local(12, 21, 0), venue_name="Labour Club",
                                                            online_url="https://meet.example/dec"))
    assert fresh(meeting_id).ical_sequence == 1
    page = text(signed_in.get(f"/meetings/{meeting_id}"))
    assert "Send update" in page and "changed after members were sent the notice" in page
    confirm_and_send(signed_in, meeting_id, "update")
    [update] = campaigns_of(meeting_id, "update")
    [event] = invite_of(update.campaign_id).walk("VEVENT")
    assert str(event["UID"]) == meeting.ical_uid and int(event["SEQUENCE"]) == 1
    assert str(event["LOCATION"]).startswith("Labour Club")
    assert "Send update" not in text(signed_in.get(f"/meetings/{meeting_id}"))
    run_queue()
    assert len(relay.received_by("ann@example.org")) == 2

    # Cancelled: a reason is required, then members get METHOD:CANCEL.
    refused = text(signed_in.post(f"/meetings/{meeting_id}/cancel", data={"reason": ""}, follow_redirects=True))
    assert "Say why the meeting is cancelled: members will read it." in refused
    assert fresh(meeting_id).status is MeetingStatus.NOTICED
    signed_in.post(f"/meetings/{meeting_id}/cancel", data={"reason": "The hall flooded."})
    assert fresh(meeting_id).status is MeetingStatus.CANCELLED
    [cancellation] = campaigns_of(meeting_id, "cancellation")
    cal = invite_of(cancellation.campaign_id)
    [event] = cal.walk("VEVENT")
    assert str(cal["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == meeting.ical_uid and int(event["SEQUENCE"]) == 2
    run_queue()
    last = relay.received_by("bob@example.org")[-1]
    assert last["Subject"].startswith("Cancelled: December general meeting")
    assert "The hall flooded." in last.get_body(("plain",)).get_content()
    [part] = calendar_parts(last)
    assert "method=CANCEL" in part["Content-Type"].replace('"', "")
    page = text(signed_in.get(f"/meetings/{meeting_id}"))
    assert "The meeting is cancelled." in page and "The hall flooded." in page and "Send notice" not in page


def test_cancelling_a_meeting_never_noticed_sends_nothing(signed_in, make_member):
    make_member(email="ann@example.org")
    meeting_id = create(signed_in)
    page = text(signed_in.post(f"/meetings/{meeting_id}/cancel", data={"reason": "No business."},
                               follow_redirects=True))
    assert "No notice had gone out, so members are not told." in page
    assert fresh(meeting_id).status is MeetingStatus.CANCELLED and campaigns_of(meeting_id, "cancellation") == []


# --- the register ---------------------------------------------------------------------------

def test_register_proposed_apologies_presence_and_quorum(signed_in, make_member, make_branch):
    ann = make_member(first_name="Ann", last_name="Able")
    bob = make_member(first_name="Bob", last_name="Baker")
    cat = make_member(first_name="Cat", last_name="Cole")
    outsider = make_member(first_name="Old", last_name="Resigned", status="resigned")
    meeting_id = create(signed_in, quorum="2")
    meeting = fresh(meeting_id)
    service.record_response(meeting, ann, Response.APOLOGIES, "reply", proposed=True)
    service.record_response(meeting, bob, Response.APOLOGIES, "reply", proposed=True)
    session.commit()

    page = text(signed_in.get(f"/meetings/{meeting_id}/register"))
    assert "Apologies to confirm" in page and page.count("(proposed)") == 2
    assert "Old Resigned" not in page and "Cat Cole" in page
    assert 'id="quorum"' in page and "Not quorate" in page and "0 of 2 needed" in page
    ann_row = session.scalar(select(Attendance).where(Attendance.member_id == ann.id))
    bob_row = session.scalar(select(Attendance).where(Attendance.member_id == bob.id))
    signed_in.post(f"/meetings/{meeting_id}/register/{ann_row.id}/confirm", data={"accept": "1"})
    signed_in.post(f"/meetings/{meeting_id}/register/{bob_row.id}/confirm", data={"accept": "0"})
    session.expire_all()
    assert (ann_row.response, ann_row.proposed) == (Response.APOLOGIES, False)
    assert (bob_row.response, bob_row.proposed) == (Response.NONE, False)
    assert len(audits("meeting.response_confirm")) == 2
    reg = service.register(fresh(meeting_id))
    assert (reg.apologies, reg.expected) == (1, 2)

    response = signed_in.post(f"/meetings/{meeting_id}/register/present", data={"present": [str(bob.id)]},
                              follow_redirects=True)
    assert "Register saved: 1 present." in text(response) and "Not quorate" in text(response)
    page = text(signed_in.post(f"/meetings/{meeting_id}/register/present",
                               data={"present": [str(bob.id), str(cat.id)]}, follow_redirects=True))
    assert "Quorate" in page and "Not quorate" not in page and "2 of 2 needed" in page
    assert service.register(fresh(meeting_id)).quorate is True
    refused = text(signed_in.post(f"/meetings/{meeting_id}/register/present",
                                  data={"present": [str(outsider.id)]}, follow_redirects=True))
    assert "Only entitled members can be marked present." in refused
    assert service.register(fresh(meeting_id)).present == 2

    # An answer given by phone, recorded by the officer.
    page = text(signed_in.post(f"/meetings/{meeting_id}/register/answer",
                               data={"member_id": str(cat.id), "response": "not_attending"}, follow_redirects=True))
    assert "Recorded for Cat Cole: can&#39;t come." in page  # escaped in HTML
    assert session.scalar(select(Attendance.source).where(Attendance.member_id == cat.id)) == "officer"


# --- minutes --------------------------------------------------------------------------------

def letter(subject: str, body: str) -> Thread:
    """A letter to the secretary from outside the party, through the real inbound path."""
    message, created = store.store(raw_message(sender="Town Clerk <clerk@anytown.gov.uk>", to=SECRETARY_ADDRESS,
                                               subject=subject, body=body), "file")
    session.commit()  # the caller's commit queues its processing
    assert created
    run_queue()
    session.expire_all()
    thread = session.scalar(select(Thread).where(Thread.subject == subject))
    assert thread is not None
    return thread


def chair_client(app, make_officer):
    officer = make_officer("chair@example.org", Role.CHAIR)
    client = app.test_client()
    assert login(client, officer.email).status_code == 302
    client.officer = officer
    return client


def test_minutes_written_approved_by_the_chair_only_circulated_and_adopted(app, signed_in, make_officer,
                                                                          make_member, relay):
    ann = make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    make_member(first_name="Bob", last_name="Baker", email="bob@example.org")
    thread = letter("Polling station changes", "Dear Secretary,\n\nThe polling station in Castle ward moves to the "
                                               "library from May.\n\nYours, the Town Clerk")
    meeting_id = create(signed_in, title="January general meeting")
    later_id = create(signed_in, title="February general meeting", starts_at=local(40), ends_at=local(40, 21, 0))
    meeting = fresh(meeting_id)
    service.record_response(meeting, ann, Response.APOLOGIES, "link")
    session.commit()
    refused = text(signed_in.post(f"/meetings/{meeting_id}/held", data={}, follow_redirects=True))
    assert "more than a day away, so it was not marked as held" in refused  # weeks early: surely a slip
    assert fresh(meeting_id).status is not MeetingStatus.HELD
    signed_in.post(f"/meetings/{meeting_id}/held", data={"early": "1"})
    assert fresh(meeting_id).status is MeetingStatus.HELD

    page = text(signed_in.get(f"/meetings/{meeting_id}/minutes"))
    assert "Start the minutes" in page
    signed_in.post(f"/meetings/{meeting_id}/minutes/start", data={})
    minutes = fresh(meeting_id).minutes
    page = text(signed_in.get(f"/meetings/{meeting_id}/minutes"))
    assert "Apologies were received from: Ann Able." in page  # pre-filled from the register
    assert page.count("<textarea") == len(minutes.items) + 1  # each item, and who was present
    assert "Polling station changes" in page  # offered from the inbox
    assert "goes to every member the minutes are circulated to, and onto the minutes' web copy" in page

    # Write by agenda item; attach the letter to the correspondence item.
    # (as a browser sends a textarea: lines end in CR LF; they are kept as LF, as the API sends them)
    texts = {f"text-{i.id}": f"Minute of {i.title}.\r\nAgreed." for i in minutes.items}
    signed_in.post(f"/meetings/{meeting_id}/minutes/save",
                   data={"present_text": "Bob Baker (chair)\r\nCara Cole", **texts})
    signed_in.post(f"/meetings/{meeting_id}/minutes/correspondence", data={"thread_id": str(thread.id)})
    minutes = fresh(meeting_id).minutes
    assert minutes.present_text == "Bob Baker (chair)\nCara Cole" and minutes.items[0].text == "Minute of Apologies.\nAgreed."
    page = text(signed_in.get(f"/meetings/{meeting_id}/minutes"))
    summary = page.split('id="correspondence"')[1].split('id="appendix"')[0]
    assert "Polling station changes" in summary and "from Town Clerk" in summary
    assert "The polling station in Castle ward moves to the library" in summary  # the opening lines
    appendix = page.split('id="appendix"')[1]
    assert "Yours, the Town Clerk" in appendix  # the whole thread, in the appendix

    # Not the chair: refused, and told why.
    assert "Only the chair can approve minutes." in page and "ask the chair to sign in" in page
    refused = text(signed_in.post(f"/meetings/{meeting_id}/minutes/approve", data={}, follow_redirects=True))
    assert 'class="flash flash-error"' in refused and "Only the chair can approve minutes." in refused
    assert fresh(meeting_id).minutes.status is MinutesStatus.DRAFT
    # The web copy does not exist for a draft.
    assert signed_in.get(f"/minutes/{minutes.web_token}").status_code == 404
    assert signed_in.get("/minutes/not-a-token").status_code == 404

    chair = chair_client(app, make_officer)
    page = text(chair.post(f"/meetings/{meeting_id}/minutes/approve", data={}, follow_redirects=True))
    assert "Minutes approved." in page and "Circulate" in page
    minutes = fresh(meeting_id).minutes
    assert (minutes.status, minutes.approved_by_id) == (MinutesStatus.APPROVED, chair.officer.id)
    assert audits("minutes.approve")[0].officer_id == chair.officer.id
    # Approved minutes are locked, their correspondence too.
    signed_in.post(f"/meetings/{meeting_id}/minutes/save", data={"text-%d" % minutes.items[0].id: "Changed."})
    page = text(signed_in.post(f"/meetings/{meeting_id}/minutes/correspondence/{thread.id}/remove", data={},
                               follow_redirects=True))
    assert "their correspondence can no longer change" in page
    assert fresh(meeting_id).minutes.items[0].text == "Minute of Apologies.\nAgreed."

    confirm_and_send(signed_in, meeting_id, "minutes")
    minutes = fresh(meeting_id).minutes
    assert minutes.status is MinutesStatus.CIRCULATED
    campaign = session.get(Campaign, minutes.circulation_campaign_id)
    names = {a.filename: a for a in campaign.attachments}
    assert set(names) == {"minutes.pdf"} and names["minutes.pdf"].data.startswith(b"%PDF")
    web = signed_in.get(f"/minutes/{minutes.web_token}")
    assert web.status_code == 200 and "Minute of Apologies." in text(web) and "Polling station changes" in text(web)
    assert "The CLP · " in text(web) and "Yours, the Town Clerk" in text(web)
    run_queue()
    [message] = relay.received_by("bob@example.org")
    assert [p.get_filename() for p in message.iter_attachments()] == ["minutes.pdf"]
    assert f"https://mailer.example.org/minutes/{minutes.web_token}" in message.get_body(("plain",)).get_content()

    page = text(signed_in.get(f"/meetings/{meeting_id}/minutes"))
    assert "February general meeting" in page  # the later meeting to adopt them at
    signed_in.post(f"/meetings/{meeting_id}/minutes/adopt", data={"at_meeting": str(later_id)})
    minutes = fresh(meeting_id).minutes
    assert (minutes.status, minutes.adopted_at_meeting_id) == (MinutesStatus.ADOPTED, later_id)
    assert signed_in.get(f"/minutes/{minutes.web_token}").status_code == 200


def test_correspondence_detached_while_a_draft(signed_in):
    thread = letter("Room booking", "The room is booked.")
    meeting_id = create(signed_in)
    signed_in.post(f"/meetings/{meeting_id}/minutes/start", data={})
    signed_in.post(f"/meetings/{meeting_id}/minutes/correspondence", data={"thread_id": str(thread.id)})
    assert [s.thread.id for s in service_summaries(meeting_id)] == [thread.id]
    page = text(signed_in.post(f"/meetings/{meeting_id}/minutes/correspondence/{thread.id}/remove", data={},
                               follow_redirects=True))
    assert "Thread removed" in page and service_summaries(meeting_id) == []
    assert audits("meeting.correspondence_remove")[0].changes == {"thread": [thread.id, None]}
    missing = signed_in.post(f"/meetings/{meeting_id}/minutes/correspondence", data={"thread_id": "999999"},
                             follow_redirects=True)
    assert "Choose a thread from the correspondence inbox." in text(missing)


def service_summaries(meeting_id: int):
    from mailer.meetings import minutes

    return minutes.summaries(fresh(meeting_id))


# --- printable documents --------------------------------------------------------------------

def test_printable_documents_are_pdfs(signed_in, make_member):
    make_member(first_name="Zoë", last_name="Ødegaard")
    meeting_id = create(signed_in)
    assert signed_in.get(f"/meetings/{meeting_id}/minutes.pdf").status_code == 404  # no minutes yet
    signed_in.post(f"/meetings/{meeting_id}/minutes/start", data={})
    for name in ("notice", "agenda", "signin", "minutes"):
        response = signed_in.get(f"/meetings/{meeting_id}/{name}.pdf")
        assert response.status_code == 200 and response.mimetype == "application/pdf", name
        assert response.data.startswith(b"%PDF") and len(response.data) > 800, name


# --- who sees what --------------------------------------------------------------------------

def test_branch_secretaries_see_only_their_branchs_meetings(app, signed_in, make_officer, make_branch):
    north, south = make_branch("North"), make_branch("South")
    clp_id = create(signed_in, title="CLP general meeting")
    south_id = create(signed_in, title="South branch meeting", body=str(south.id), kind="branch")
    secretary = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    client = app.test_client()
    assert login(client, secretary.email).status_code == 302

    listing = text(client.get("/meetings/"))
    assert "CLP general meeting" not in listing and "South branch meeting" not in listing
    assert '<option value="clp"' not in listing and "North branch" in listing
    for other in (clp_id, south_id):
        for path in ("", "/register", "/minutes", "/edit", "/notice.pdf", "/agenda.pdf", "/signin.pdf",
                     "/evidence.csv"):
            assert client.get(f"/meetings/{other}{path}").status_code == 404, path
        for path in ("/notice", "/cancel", "/held", "/agenda", "/minutes/start", "/register/present"):
            assert client.post(f"/meetings/{other}{path}", data={"reason": "x"}).status_code == 404, path
    assert fresh(south_id).status is MeetingStatus.PLANNED and fresh(clp_id).minutes is None

    # Their own meetings are their branch's, whatever the form says.
    own_id = create(client, title="North branch meeting", body=str(north.id), kind="branch")
    assert fresh(own_id).branch_id == north.id and client.get(f"/meetings/{own_id}").status_code == 200
    refused = client.post("/meetings/new", data=form(title="Sneaky", body=str(south.id)))
    assert refused.status_code == 400 and "Choose the CLP or one of your branches." in text(refused)
    client.post(f"/meetings/{own_id}/edit", data=form(title="North branch meeting", body="clp", kind="branch"))
    assert fresh(own_id).branch_id == north.id


def test_every_post_needs_a_csrf_token(make_app, make_officer):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        officer = make_officer()
        client = app.test_client()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                          client.get("/login").data.decode()).group(1)
        assert client.post("/login", data={"email": officer.email, "password": TEST_PASSWORD,
                                           "csrf_token": token}).status_code == 302
        page = client.get("/meetings/").data.decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/meetings/new", data=form()).status_code == 400
        assert session.scalar(select(func.count()).select_from(Meeting)) == 0
        response = client.post("/meetings/new", data=form(csrf_token=token))
        assert response.status_code == 302
        meeting_id = int(response.headers["Location"].rsplit("/", 1)[1])
        assert client.post(f"/meetings/{meeting_id}/held", data={}).status_code == 400
        session.expire_all()
        assert session.get(Meeting, meeting_id).status is MeetingStatus.PLANNED



def test_who_may_attend_can_be_limited_to_a_tag(signed_in, make_member):
    from mailer.db import session
    from mailer.meetings import service
    from mailer.members.service import set_tags
    from mailer.models import Meeting

    delegate = make_member(first_name="Delia", email="delia@example.org")
    make_member(first_name="Other", email="other@example.org")
    set_tags(delegate, "delegates")
    session.commit()
    starts = (utcnow() + timedelta(days=20)).astimezone(LONDON)
    response = signed_in.post("/meetings/new", data={
        "title": "Delegates meeting", "kind": "general", "body": "clp", "starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": "", "venue_name": "Hall", "venue_address": "", "online_url": "", "dial_in": "",
        "accessibility": "", "quorum": "", "entitled_tag": "delegates"})
    assert response.status_code == 302
    meeting = session.query(Meeting).filter_by(title="Delegates meeting").one()
    assert meeting.entitled == {"tags": ["delegates"]}
    assert [m.first_name for m in session.scalars(service.entitled_query(meeting))] == ["Delia"]
