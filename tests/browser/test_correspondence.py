"""Journeys through the correspondence log: a member's reply arrives, an officer reads it, answers
it by email and marks it actioned; and the side views where bounces, auto-replies and messages
that could not be processed wait for attention."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.db import session
from mailer.inbound import process
from mailer.models import InboundMessage, InboundStatus, OutgoingReply
from tests.browser.conftest import expect, sign_in
from tests.inbound.conftest import raw_message, sent  # noqa: F401 (fixture)
from tests.inbound.test_process import _dsn, ingest, reply_address
from tests.sending.conftest import app, make_campaign, run_queue, scripted_smtp  # noqa: F401 (fixtures)
from tests.web.test_correspondence_web import bounce_address

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("scripted_smtp", ["one-by-one"], indirect=True)]

ANN_WROTE = ("I can help on Saturday, and I will bring the leaflets.\n\n"
             "On Mon, 23 Nov 2026 at 09:12, Anytown CLP Secretary <secretary@anytown-labour.example> wrote:\n"
             "> News of the week\n> Canvassing at ten from the station.\n")


@pytest.mark.browser
def test_an_officer_reads_a_reply_answers_it_and_marks_it_actioned(page, shoot, live_server, make_officer, sent,
                                                                    scripted_smtp):
    _campaign, deliveries = sent
    officer = make_officer(name="Sam Secretary")
    ann = deliveries["ann@example.org"]
    question = ingest(raw_message(sender="Ann Member <ann@example.org>", to=reply_address(ann),
                                  subject="Re: News of the week", body=ANN_WROTE,
                                  html="<p>I can help on <b>Saturday</b>.</p><script>alert(1)</script>",
                                  message_id="<ann-saturday@mail.example.net>"))
    ingest(raw_message(sender="Dee Outsider <dee@elsewhere.example>", subject="Hall booking for March",
                       body="Is the hall free on the 3rd?\n"))

    sign_in(page, officer.email)
    nav = page.get_by_role("navigation", name="Main")
    link = nav.get_by_role("link", name=re.compile(r"^Correspondence"))
    expect(link).to_contain_text("2")  # the unread badge
    link.click()
    expect(page.get_by_role("heading", name="Correspondence", level=1)).to_be_visible()
    expect(page.get_by_text("2 threads", exact=True)).to_be_visible()
    rows = page.locator("table.inbox tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Hall booking for March")  # newest activity first
    expect(page.locator("tr.unread")).to_have_count(2)
    shoot("correspondence-inbox")

    search = page.get_by_role("search", name="Find correspondence")
    search.get_by_label("Search").fill("leaflets")
    search.get_by_role("button", name="Show").click()
    expect(page.get_by_text("1 thread", exact=True)).to_be_visible()
    page.get_by_role("link", name="Re: News of the week").click()

    expect(page.get_by_role("heading", name="Re: News of the week", level=1)).to_be_visible()
    article = page.locator(f"#message-{question.id}")
    expect(article.locator("div.mail-text")).to_have_text("I can help on Saturday, and I will bring the leaflets.")
    quoted = article.locator("details.more pre").first
    expect(quoted).to_be_hidden()  # the quoted bulletin waits behind the toggle
    article.get_by_text("Show full message").click()
    expect(quoted).to_be_visible()
    expect(quoted).to_contain_text("Canvassing at ten from the station.")
    article.get_by_text("Show the formatted (HTML) version").click()
    frame = page.frame_locator(f"#message-{question.id} iframe")
    expect(frame.locator("b")).to_have_text("Saturday")  # the sanitised HTML, framed despite the strict CSP
    expect(article.get_by_role("link", name=re.compile(r"^member: Ann"))).to_be_visible()
    shoot("correspondence-thread")

    page.get_by_label("Your reply").fill("Thank you, Ann: see you at ten at the station.")
    page.get_by_label("Quote their message below my reply").check()
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status").filter(has_text="Your reply to ann@example.org is on its way.")).to_be_visible()
    expect(page.get_by_text("Sending…")).to_be_visible()

    run_queue()  # the worker's part: the reply goes out through the relay
    page.reload()
    expect(page.locator(".sent-ok")).to_contain_text("Sent")
    [email] = scripted_smtp.received_by("ann@example.org")[-1:]
    assert email["In-Reply-To"] == "<ann-saturday@mail.example.net>" and email["Subject"] == "Re: News of the week"
    assert "> I can help on Saturday" in email.get_content()
    assert session.scalar(select(OutgoingReply.sent_at)) is not None

    page.get_by_role("button", name="Mark as actioned").click()
    expect(page.get_by_role("status").filter(has_text="Marked as actioned.")).to_be_visible()
    expect(page.get_by_role("button", name="Mark as needing action")).to_be_visible()
    shoot("correspondence-thread-actioned")

    page.get_by_role("link", name="← Correspondence").click()
    expect(page.get_by_text("1 thread", exact=True)).to_be_visible()  # only Dee's letter needs action now
    expect(page.get_by_role("link", name="Re: News of the week")).to_have_count(0)
    page.get_by_role("navigation", name="Thread status").get_by_role("link", name=re.compile(r"^Actioned")).click()
    expect(page.get_by_role("link", name="Re: News of the week")).to_be_visible()


@pytest.mark.browser
def test_bounces_auto_replies_and_a_failed_message_have_their_own_views(page, shoot, live_server, make_officer, sent,
                                                                        monkeypatch):
    _campaign, deliveries = sent
    officer = make_officer()
    ingest(_dsn("bob@example.org", "5.1.1", "550 5.1.1 User unknown", to=bounce_address(deliveries["bob@example.org"])))
    ingest(raw_message(to=reply_address(deliveries["cat@example.org"]), sender="Cat <cat@example.org>",
                       subject="Automatic reply: News of the week", body="I am away until Monday.\n",
                       headers={"Auto-Submitted": "auto-replied"}))

    def boom(*_a, **_k):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(process, "classify", boom)
    failed = ingest(raw_message(sender="Eve <eve@example.net>", subject="Motion for the AGM",
                                body="Please table it.\n"))
    monkeypatch.undo()
    assert failed.status is InboundStatus.FAILED

    sign_in(page, officer.email)
    page.goto("/correspondence/")
    views = page.get_by_role("navigation", name="Correspondence views")
    views.get_by_role("link", name="Bounces").click()
    expect(page.get_by_role("heading", name="Addresses on hold")).to_be_visible()
    hold = page.locator("section", has=page.get_by_role("heading", name="Addresses on hold"))
    expect(hold.get_by_role("link", name=re.compile(r"^Bob"))).to_be_visible()
    expect(page.get_by_text("1 bounce", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="hard")).to_be_visible()
    shoot("correspondence-bounces")

    views.get_by_role("link", name="Auto-replies").click()
    expect(page.get_by_text("1 auto-reply", exact=True)).to_be_visible()
    page.get_by_role("link", name="Automatic reply: News of the week").click()
    expect(page.get_by_text("I am away until Monday.")).to_be_visible()

    page.goto("/correspondence/failed")
    expect(page.get_by_text("1 failed message", exact=True)).to_be_visible()
    expect(page.get_by_text("RuntimeError: parser exploded").first).to_be_attached()
    shoot("correspondence-failed")
    page.get_by_role("button", name=f"Retry message {failed.id}").click()
    expect(page.get_by_role("status").filter(has_text="Processing again")).to_be_visible()
    run_queue()
    page.reload()
    expect(page.get_by_text("No failed messages.")).to_be_visible()
    session.expire_all()
    assert session.get(InboundMessage, failed.id).thread_id is not None
    page.get_by_role("navigation", name="Correspondence views").get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("link", name="Motion for the AGM")).to_be_visible()
