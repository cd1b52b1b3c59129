"""Journey: a meeting's whole cycle in Chromium. Plan it, build its agenda, send the notice (through
a real queue and SMTP server), receive a member's apologies by email and confirm them in the
register, hold the meeting and take the register, write the minutes, attach a letter from the
correspondence inbox, have the chair approve them, and circulate them with their web copy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailer.db import session, utcnow
from mailer.inbound import store
from mailer.meetings.rules import LONDON
from mailer.models import Attendance, Delivery, Meeting, MeetingCampaign, MinutesStatus, Response, Role, Thread
from tests.browser.conftest import LiveServer, expect, sign_in
from tests.inbound.conftest import raw_message
from tests.sending.conftest import run_queue
from tests.web.test_campaigns_web import clear_queue

SECRETARY_ADDRESS = "secretary@anytown-labour.example"
SETTINGS = {"RETRY_BASE_SECONDS": 0, "SENDER_ADDRESS": SECRETARY_ADDRESS, "REPLY_ADDRESS": SECRETARY_ADDRESS,
            "REMINDER_HOURS": 0}  # no reminder parked in the scheduler for days: the queue must empty


@pytest.fixture
def app(make_app, smtp_server):
    """The test's own app (whose context works the queue) sends through the test SMTP server."""
    app = make_app(MAIL_PORT=smtp_server.port, **SETTINGS)
    with app.app_context():
        clear_queue()
        yield app


@pytest.fixture
def live_server(make_app, app, smtp_server):
    """The conftest's live server, sending through the same SMTP server; links in mail point at it."""
    server = LiveServer(make_app(WTF_CSRF_ENABLED=True, MAIL_PORT=smtp_server.port, **SETTINGS))
    server.app.config["BASE_URL"] = app.config["BASE_URL"] = server.url
    server.start()
    yield server
    server.stop()
    if server.errors:
        pytest.fail("the server raised:\n" + "\n".join(server.errors), pytrace=False)


def local_day(days: int):
    return (utcnow().astimezone(LONDON) + timedelta(days=days)).date()


def ingest(raw: bytes) -> None:
    """Mail arriving, as any transport hands it over: stored raw, then processed by the worker."""
    _message, created = store.store(raw, "file")
    session.commit()  # the caller's commit queues its processing
    assert created
    run_queue()
    session.expire_all()


@pytest.mark.browser
def test_a_meeting_from_plan_to_circulated_minutes(page, shoot, live_server, smtp_server, make_officer, make_member):
    secretary = make_officer("secretary@example.org", name="Sam Secretary")
    chair = make_officer("chair@example.org", Role.CHAIR, name="Chris Chair")
    ann = make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    make_member(first_name="Bob", last_name="Baker", email="bob@example.org")
    make_member(first_name="Cat", last_name="Cole", email="cat@example.org")
    make_member(first_name="Pat", last_name="Post", email=None, postcode="AN1 2BB")
    day = local_day(12)

    # 1. Plan the meeting.
    sign_in(page, secretary.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Meetings").click()
    expect(page.get_by_role("heading", name="Meetings", level=1)).to_be_visible()
    new = page.locator("#new-meeting")
    new.get_by_label("Kind of meeting").select_option(label="General meeting")
    new.get_by_label("Title").fill("December general meeting")
    new.get_by_label("Starts").fill(f"{day.isoformat()}T19:30")
    new.get_by_label("Ends").fill(f"{day.isoformat()}T21:00")
    new.get_by_label("Venue", exact=True).fill("Trades Hall")
    new.get_by_label("Venue address").fill("1 High Street, Anytown AN1 1AA")
    new.get_by_label("Online link").fill("not a link")
    new.get_by_label("Accessibility notes").fill("Step-free access from Mill Lane; hearing loop.")
    new.get_by_label("Quorum").fill("2")
    new.get_by_role("button", name="Plan the meeting").click()
    # The browser itself refuses a malformed URL in a type=url field; clear it and it goes through.
    assert new.get_by_label("Online link").evaluate("e => e.validity.typeMismatch") is True
    assert page.url.endswith("/meetings/")
    new.get_by_label("Online link").fill("")
    new.get_by_role("button", name="Plan the meeting").click()
    expect(page.get_by_role("heading", name=re.compile(r"^December general meeting"), level=1)).to_be_visible()
    expect(page.locator("#meeting-status")).to_have_text("planned")
    expect(page.get_by_text(f"{day.strftime('%A %-d %B %Y')}, 19:30 to 21:00").first).to_be_visible()
    meeting_id = int(re.search(r"/meetings/(\d+)", page.url).group(1))

    # 2. Build the agenda: add an item with notes, move it up, drop another.
    agenda = page.locator("form.agenda-editor")
    agenda.get_by_label("Title of a new item").fill("Motion: Sunday bus services")
    agenda.get_by_label("Notes on the new item").fill("Proposed by Castle ward; seconded by Abbey ward.")
    agenda.get_by_label("Number of the new item").fill("4.5")
    agenda.get_by_label("Remove item 4").check()  # officer reports
    agenda.get_by_role("button", name="Save the agenda").click()
    expect(page.get_by_text("Agenda saved.")).to_be_visible()
    titles = page.locator("form.agenda-editor input[name^='title-']")
    expect(titles).to_have_count(8)  # seven items and the empty row
    expect(titles.nth(3)).to_have_value("Motion: Sunday bus services")
    expect(page.locator("form.agenda-editor input[value='Officer reports']")).to_have_count(0)
    expect(page.locator("#notice-check")).to_contain_text("it meets the rule")
    expect(page.locator("#postal")).to_contain_text("Pat Post")
    shoot("meeting-planned")

    # 3. Send the notice; the worker sends it to everyone with an email, with the invite.
    page.get_by_role("button", name="Send notice").click()
    expect(page.locator("#confirm-addresses")).to_have_text("3")  # Pat, with no email, is posted it
    expect(page.locator("#excluded")).to_contain_text("1 member: no email address")
    page.get_by_role("button", name="Yes, send the notice to 3 addresses").click()
    expect(page.get_by_text("The notice is on its way")).to_be_visible()
    expect(page.locator("#meeting-status")).to_have_text("noticed")
    run_queue()
    for address in ("ann@example.org", "bob@example.org", "cat@example.org"):
        [message] = smtp_server.to(address)
        assert message["Subject"] == f"Notice: December general meeting, {day.strftime('%A %-d %B %Y')}"
        assert [p.get_content_type() for p in message.iter_attachments()] == ["text/calendar"]
        assert f"{live_server.url}/r/" in message.get_body(("plain",)).get_content()
    page.reload()
    expect(page.locator("#notices-sent")).to_contain_text("sent")
    shoot("meeting-noticed")

    # 4. Ann replies to her notice with apologies: it arrives by email and is proposed in the register.
    notice = session.scalar(select(MeetingCampaign).where(MeetingCampaign.meeting_id == meeting_id))
    delivery = session.scalar(select(Delivery).where(Delivery.campaign_id == notice.campaign_id,
                                                     Delivery.member_id == ann.id))
    ingest(raw_message(sender="Ann Able <ann@example.org>", to=SECRETARY_ADDRESS,
                       subject="Re: Notice: December general meeting", in_reply_to=delivery.message_id,
                       references=delivery.message_id,
                       body="Sorry, I can't make it this time - please pass on my apologies.\n\nAnn\n\n"
                            "> Dear Ann,\n> You are invited to the December general meeting\n"))
    proposed = session.scalar(select(Attendance).where(Attendance.member_id == ann.id))
    assert (proposed.response, proposed.proposed) == (Response.APOLOGIES, True)
    page.get_by_role("navigation", name="This meeting").get_by_role("link", name="Register").click()
    box = page.locator("#proposed")
    expect(box).to_contain_text("Ann Able")
    expect(box).to_contain_text("please pass on my apologies")
    expect(page.locator("table.register")).to_contain_text("apologies (proposed)")
    box.get_by_role("button", name="Confirm apologies from Ann Able").click()
    expect(page.get_by_text("Apologies from Ann Able confirmed.")).to_be_visible()
    expect(page.locator("#proposed")).to_have_count(0)
    ann_row = page.locator("table.register tr", has_text="Ann Able")
    expect(ann_row).to_contain_text("apologies")
    expect(ann_row).not_to_contain_text("proposed")

    # 5. Hold the meeting: take the register (quorum 2), then write the minutes.
    page.get_by_role("link", name="Meeting and notice").click()
    page.get_by_role("button", name="Mark as held").click()  # twelve days early: the page asks first
    expect(page.locator("#meeting-status")).not_to_have_text("held")
    expect(page.locator("#held-early")).to_contain_text("more than a day from now")
    page.get_by_label("It really was held early").check()
    page.get_by_role("button", name="Mark as held").click()
    expect(page.locator("#meeting-status")).to_have_text("held")
    page.get_by_role("navigation", name="This meeting").get_by_role("link", name="Register").click()
    page.get_by_label("Bob Baker is present").check()
    page.get_by_role("button", name="Save who is present").click()
    expect(page.locator("#quorum")).to_contain_text("Not quorate")
    page.get_by_label("Cat Cole is present").check()
    page.get_by_role("button", name="Save who is present").click()
    expect(page.locator("#quorum")).to_contain_text("Quorate")
    expect(page.locator("#quorum")).not_to_contain_text("Not quorate")
    expect(page.locator("#present-count")).to_have_text("2")
    shoot("meeting-register")

    # A letter to the secretary, in the correspondence inbox before the minutes are written.
    ingest(raw_message(sender="Town Clerk <clerk@anytown.gov.uk>", to=SECRETARY_ADDRESS,
                       subject="Polling station changes",
                       body="Dear Secretary,\n\nThe polling station for Castle ward moves to the library from May.\n\n"
                            "Yours faithfully,\nThe Town Clerk\n"))

    page.get_by_role("navigation", name="This meeting").get_by_role("link", name="Minutes").click()
    page.get_by_role("button", name="Start the minutes").click()
    expect(page.get_by_label("Present", exact=True)).to_have_value("Bob Baker, Cat Cole")
    expect(page.get_by_label("1. Apologies")).to_have_value("Apologies were received from: Ann Able.")
    page.get_by_label("Motion: Sunday bus services").fill(
        "The motion was moved, debated and carried: 2 for, 0 against. The secretary will write to the council.")
    page.get_by_label("Any other business").fill("None.")
    page.get_by_role("button", name="Save the minutes").click()
    expect(page.get_by_text("Minutes saved.")).to_be_visible()
    expect(page.get_by_label("Motion: Sunday bus services")).to_have_value(re.compile("carried: 2 for"))
    shoot("meeting-minutes-draft")

    # 6. Attach the letter to the correspondence item.
    letter = session.scalar(select(Thread).where(Thread.subject == "Polling station changes"))
    choice = page.get_by_label("Attach a thread from the correspondence inbox")
    expect(choice.locator("option", has_text="Re: Notice: December general meeting")).to_have_count(1)  # Ann's reply
    choice.select_option(str(letter.id))
    expect(choice.locator("option:checked")).to_contain_text("Polling station changes — clerk@anytown.gov.uk")
    page.get_by_role("button", name="Attach", exact=True).click()
    summary = page.locator("#correspondence .corr-list")
    expect(summary).to_contain_text("Polling station changes")
    expect(summary).to_contain_text("from Town Clerk")
    expect(summary).to_contain_text("moves to the library")
    expect(page.locator("#appendix")).to_contain_text("Yours faithfully")

    # 7. Approve: the secretary cannot, and is told why; the chair can.
    expect(page.locator("#approve-why")).to_contain_text("Only the chair can approve minutes.")
    expect(page.locator("#workflow").get_by_role("button", name="Approve")).to_be_disabled()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, chair.email)
    page.goto(f"/meetings/{meeting_id}/minutes")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Minutes approved.")).to_be_visible()
    expect(page.locator("#minutes-status")).to_contain_text("approved by Chris Chair")
    expect(page.locator("#minutes-form")).to_have_count(0)  # locked

    # 8. Circulate: to the meeting's members, with the PDF and a link to the web copy.
    page.get_by_role("button", name="Circulate").click()
    page.get_by_role("button", name=re.compile(r"^Yes, send the minutes to \d+ address")).click()
    expect(page.get_by_text("The minutes are on their way to the members")).to_be_visible()
    expect(page.locator("#minutes-status")).to_contain_text("circulated")
    run_queue()
    session.expire_all()
    minutes = session.get(Meeting, meeting_id).minutes
    assert minutes.status is MinutesStatus.CIRCULATED
    for address in ("ann@example.org", "bob@example.org", "cat@example.org"):
        message = smtp_server.to(address)[-1]
        assert message["Subject"].startswith("Minutes: December general meeting")
        [pdf] = list(message.iter_attachments())
        assert pdf.get_filename() == "minutes.pdf" and pdf.get_content().startswith(b"%PDF")
        assert f"{live_server.url}/minutes/{minutes.web_token}" in message.get_body(("plain",)).get_content()
    page.reload()
    shoot("meeting-minutes")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Meetings").click()
    row = page.locator("table.meetings tr", has_text="December general meeting")
    expect(row).to_contain_text("held")
    expect(row).to_contain_text("minutes circulated")
    expect(page.get_by_text("No meetings planned.")).to_be_visible()  # held: it is in the past list now
    shoot("meetings-list")

    # The web copy, as a member opens it from the email (no sign-in needed).
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"/minutes/{minutes.web_token}")
    copy = page.locator("#minutes")
    expect(copy.get_by_role("heading", name="Minutes: December general meeting")).to_be_visible()
    expect(copy).to_contain_text("carried: 2 for, 0 against")
    expect(copy).to_contain_text("Polling station changes")
    shoot("meeting-minutes-web-copy")
