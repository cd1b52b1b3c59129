"""The correspondence log in the browser's terms: the inbox and its filters, a thread page, the
downloads and the HTML frame, the officers' actions, replies by email that thread both ways,
bounces, auto-replies and failed messages, and branch scoping everywhere."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from sqlalchemy import select, update

from mailer import jobs
from mailer.db import session, utcnow
from mailer.inbound import correspondence, process
from mailer.models import (AuditEvent, BounceEvent, InboundMessage, InboundStatus, Member, OutgoingReply, Role, Thread,
                           ThreadNote, ThreadStatus)
from tests.conftest import login, next_page
from tests.inbound.conftest import raw_message, sent  # noqa: F401 (fixture)
from mailer.compose.tokens import address_token, plus_address
from tests.inbound.test_process import _dsn, ingest, reply_address
from tests.sending.conftest import app, make_campaign, run_queue, scripted_smtp  # noqa: F401 (fixtures)

# One relay is enough here (the sending tests try both kinds); a reply is one plain message.
pytestmark = pytest.mark.parametrize("scripted_smtp", ["one-by-one"], indirect=True)

OUR_DOMAIN = "anytown-labour.example"


def text(response) -> str:
    return response.data.decode()


def reply_from(sent_fixture, name: str, body: str, **kw) -> InboundMessage:
    """A member's reply to the bulletin, by its reply token."""
    _campaign, deliveries = sent_fixture
    d = deliveries[f"{name.lower()}@example.org"]
    return ingest(raw_message(sender=f"{name} Member <{name.lower()}@example.org>", to=reply_address(d),
                              subject=kw.pop("subject", "Re: News of the week"), body=body, **kw))


@pytest.fixture
def officer_client(app, make_officer):
    officer = make_officer("clp@example.org")
    client = app.test_client()
    assert login(client, officer.email).status_code == 302
    client.officer = officer
    return client


# --- the inbox --------------------------------------------------------------------------------

def test_inbox_lists_threads_newest_first_with_unread_state(officer_client, sent):
    older = reply_from(sent, "Ann", "I can deliver leaflets on Saturday.\n")
    newer = reply_from(sent, "Bob", "Please send me the minutes.\n")
    page = text(officer_client.get("/correspondence/"))
    assert "2 threads" in page
    assert page.index("Please send me the minutes.") < page.index("I can deliver leaflets")
    assert page.count('class="unread"') == 2 and "New<span" in page

    officer_client.get(f"/correspondence/{older.thread_id}")  # opening it marks it read
    page = text(officer_client.get("/correspondence/"))
    assert page.count('class="unread"') == 1
    unread_only = text(officer_client.get("/correspondence/", query_string={"unread": "1"}))
    assert "Please send me the minutes." in unread_only and "leaflets" not in unread_only
    assert session.get(Thread, newer.thread_id).status is ThreadStatus.NEEDS_ACTION


def test_nav_shows_the_unread_count(officer_client, sent):
    reply_from(sent, "Ann", "Hello.\n")
    page = text(officer_client.get("/"))
    assert 'Correspondence <span class="nav-badge">1<span class="visually-hidden"> unread</span>' in page


def test_inbox_filters_by_status_campaign_and_branch(officer_client, sent, make_branch, make_member):
    campaign, deliveries = sent
    north = make_branch("North")
    ann = session.get(Member, deliveries["ann@example.org"].member_id)
    ann.branch = north
    session.commit()
    a = reply_from(sent, "Ann", "From the north.\n")
    b = reply_from(sent, "Bob", "From nowhere in particular.\n")
    letter = ingest(raw_message(sender="Stranger <stranger@example.net>", subject="A letter", body="Not a reply.\n"))
    correspondence.set_status(officer_client.officer, session.get(Thread, b.thread_id), ThreadStatus.ACTIONED)
    session.commit()

    needs = text(officer_client.get("/correspondence/"))
    assert "From the north." in needs and "Not a reply." in needs and "From nowhere" not in needs
    actioned = text(officer_client.get("/correspondence/", query_string={"status": "actioned"}))
    assert "From nowhere" in actioned and "From the north." not in actioned
    everything = text(officer_client.get("/correspondence/", query_string={"status": "all"}))
    assert all(s in everything for s in ("From the north.", "From nowhere", "Not a reply."))
    by_campaign = text(officer_client.get("/correspondence/", query_string={"campaign": campaign.id, "status": "all"}))
    assert "From the north." in by_campaign and "From nowhere" in by_campaign and "Not a reply." not in by_campaign
    by_branch = text(officer_client.get("/correspondence/", query_string={"branch": north.id, "status": "all"}))
    assert "From the north." in by_branch and "From nowhere" not in by_branch
    assert session.get(Thread, a.thread_id).branch_id == north.id and letter.thread_id


def test_inbox_search_covers_subject_correspondent_member_and_text(officer_client, sent):
    ann = session.get(Member, reply_from(sent, "Ann", "The bus to conference leaves at nine.\n").member_id)
    ingest(raw_message(sender="Dee Outsider <dee@elsewhere.example>", subject="Ward boundaries 100%",
                       body="About the boundary review.\n"))
    searches = [("conference", "bus to conference"), ("DEE@ELSEWHERE", "boundary review"),
                ("ward boundaries", "boundary review"), ("100%", "boundary review"),
                (ann.full_name.upper(), "bus to conference"),
                ("ann@example.org", "bus to conference")]
    for q, expected in searches:
        page = text(officer_client.get("/correspondence/", query_string={"q": q}))
        assert expected in page and "1 thread<" in page, q
    nothing = text(officer_client.get("/correspondence/", query_string={"q": "no such words"}))
    assert "0 threads" in nothing and "No threads match." in nothing


def test_inbox_paginates(app, officer_client, sent):
    app.config["PAGE_SIZE"] = 2
    for name in ("Ann", "Bob", "Cat"):
        reply_from(sent, name, f"Note from {name}.\n")
    first = text(officer_client.get("/correspondence/"))
    assert "3 threads" in first and "Note from Cat." in first and "Note from Ann." not in first
    second = text(officer_client.get(next_page(first)))
    assert "Note from Ann." in second and "Note from Cat." not in second and next_page(second) is None


def test_bounces_and_auto_replies_stay_out_of_the_inbox(officer_client, sent):
    _campaign, deliveries = sent
    ingest(_dsn("bob@example.org", "5.1.1", "550 5.1.1 User unknown", to=bounce_address(deliveries["bob@example.org"])))
    ingest(raw_message(to=reply_address(deliveries["ann@example.org"]), subject="Automatic reply: News of the week",
                       body="I am away until Monday.\n", headers={"Auto-Submitted": "auto-replied"}))
    inbox = text(officer_client.get("/correspondence/", query_string={"status": "all"}))
    assert "0 threads" in inbox and "away until Monday" not in inbox and "User unknown" not in inbox


def bounce_address(delivery) -> str:
    """Where a relay returns a bounce of `delivery`: only a bounce tied to our mail acts."""
    return plus_address("secretary@anytown-labour.example", address_token("b", delivery.id))


# --- scope ----------------------------------------------------------------------------------

def test_a_branch_secretary_sees_only_their_branch(app, sent, make_branch, make_officer):
    _campaign, deliveries = sent
    north, south = make_branch("North"), make_branch("South")
    for email, branch in (("ann@example.org", north), ("bob@example.org", south)):
        session.get(Member, deliveries[email].member_id).branch = branch
    session.commit()
    ours = reply_from(sent, "Ann", "Northern news.\n", html="<p>Northern news.</p>")
    theirs = reply_from(sent, "Bob", "Southern secrets.\n", html="<p>Southern secrets.</p>")
    with_file = ingest(_with_attachment("bob@example.org", reply_address(deliveries["bob@example.org"])))
    ingest(_dsn("bob@example.org", "5.1.1", "550 5.1.1 User unknown", to=bounce_address(deliveries["bob@example.org"])))
    secretary = make_officer("north@example.org", role=Role.BRANCH_SECRETARY, branch=north)
    client = app.test_client()
    login(client, secretary.email)

    inbox = text(client.get("/correspondence/", query_string={"status": "all"}))
    assert "Northern news." in inbox and "Southern secrets." not in inbox
    found = text(client.get("/correspondence/", query_string={"q": "Southern", "status": "all"}))
    assert "Southern secrets." not in found and "0 threads" in found
    assert client.get(f"/correspondence/{ours.thread_id}").status_code == 200
    attachment_id = with_file.attachments[0].id
    for path in (f"/correspondence/{theirs.thread_id}", f"/correspondence/message/{theirs.id}",
                 f"/correspondence/message/{theirs.id}/html", f"/correspondence/message/{theirs.id}/raw",
                 f"/correspondence/attachment/{attachment_id}"):
        assert client.get(path).status_code == 404, path
    for path, data in ((f"/correspondence/{theirs.thread_id}/status", {"status": "actioned"}),
                       (f"/correspondence/{theirs.thread_id}/notes", {"text": "sneaky"}),
                       (f"/correspondence/{theirs.thread_id}/reply", {"body": "sneaky"}),
                       (f"/correspondence/{ours.thread_id}/reply", {"body": "sneaky", "in_reply_to": theirs.id})):
        assert client.post(path, data=data).status_code == 404, path
    assert session.scalar(select(OutgoingReply.id)) is None and session.scalar(select(ThreadNote.id)) is None
    bounces = text(client.get("/correspondence/bounces"))
    assert "bob@example.org" not in bounces and "0 bounces" in bounces
    assert "No failed messages." in text(client.get("/correspondence/failed"))
    # Nor can a thread be handed to an officer who cannot see it.
    other = make_officer("south@example.org", role=Role.BRANCH_SECRETARY, branch=south)
    client.post(f"/correspondence/{ours.thread_id}/assign", data={"officer_id": other.id})
    assert session.get(Thread, ours.thread_id).assigned_to_id is None


# --- a thread -------------------------------------------------------------------------------

def test_thread_page_shows_the_trimmed_text_and_the_whole_behind_a_toggle(officer_client, sent):
    msg = reply_from(sent, "Ann", "Count me in for Saturday.\n\nOn Mon, 23 Nov 2026 at 09:12, Anytown CLP "
                                  "Secretary <secretary@anytown-labour.example> wrote:\n> News of the week\n"
                                  "> Canvassing at ten.\n")
    assert session.get(Thread, msg.thread_id) is not None
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    trimmed_at = page.index("Count me in for Saturday.")
    toggle = page.index("<summary>Show full message</summary>")
    assert trimmed_at < toggle < page.index("&gt; Canvassing at ten.")
    assert page.count("Canvassing at ten.") == 1  # the quote only inside the toggle
    assert f'href="/members/{msg.member_id}"' in page and "News of the week" in page
    assert f'href="/correspondence/message/{msg.id}/raw"' in page
    assert not correspondence.is_unread(officer_client.officer, session.get(Thread, msg.thread_id))


def test_thread_page_shows_the_flags(officer_client, sent):
    _campaign, deliveries = sent
    forwarded = ingest(raw_message(sender="neighbour@example.com", to=reply_address(deliveries["ann@example.org"]),
                                   subject="Fwd: News of the week", body="My neighbour showed me this.\n"))
    page = text(officer_client.get(f"/correspondence/{forwarded.thread_id}"))
    assert "Check the sender:" in page and "sent by neighbour@example.com, not ann@example.org" in page
    first = ingest(raw_message(sender="dee@elsewhere.example", subject="Hall booking", body="Is the hall free?\n"))
    guessed = ingest(raw_message(sender="dee@elsewhere.example", subject="Re: Hall booking", body="Any news?\n"))
    assert guessed.thread_id == first.thread_id and guessed.match_method == "guess"
    page = text(officer_client.get(f"/correspondence/{first.thread_id}"))
    assert "Match guessed:" in page and "not matched to a member" in page


def test_the_html_frame_is_sanitised_and_locked_down(officer_client, sent):
    html = ('<p>Hello <b>there</b></p><script>alert(1)</script><img src="https://tracker.example/p.gif" '
            'onerror="steal()"><a href="javascript:evil()">click</a><a href="https://labour.org.uk/">ok</a>')
    msg = reply_from(sent, "Ann", "Hello there\n", html=html)
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert f'<iframe sandbox="" src="/correspondence/message/{msg.id}/html"' in page
    response = officer_client.get(f"/correspondence/message/{msg.id}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    body = text(response).lower()
    assert "<b>there</b>" in body and "https://labour.org.uk/" in body
    for bad in ("<script", "alert(1)", "onerror", "javascript:", "tracker.example"):
        assert bad not in body, bad
    # The thread page itself keeps the app's strict policy, and no frame of its own.
    page_response = officer_client.get(f"/correspondence/{msg.thread_id}")
    assert "frame-ancestors 'none'" in page_response.headers["Content-Security-Policy"]
    assert page_response.headers["X-Frame-Options"] == "DENY"
    plain_only = reply_from(sent, "Bob", "No HTML here.\n")
    assert officer_client.get(f"/correspondence/message/{plain_only.id}/html").status_code == 404


def _with_attachment(sender: str, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "Re: News of the week"
    msg["Date"], msg["Message-ID"] = format_datetime(utcnow()), f"<files.{sender}@mail.example.net>"
    msg.set_content("Two files attached.\n")
    msg.add_attachment(b"%PDF-1.4 minutes", maintype="application", subtype="pdf", filename="minutes.pdf")
    msg.add_attachment(b"<html><script>alert(1)</script></html>", maintype="text", subtype="html",
                       filename="invoice.html")
    msg.add_attachment(b"MZ\x90\x00 program", maintype="application", subtype="octet-stream",
                       filename="motion « final ».exe")
    return bytes(msg)


def test_attachments_are_listed_and_always_downloaded(officer_client, sent):
    _campaign, deliveries = sent
    msg = ingest(_with_attachment("ann@example.org", reply_address(deliveries["ann@example.org"])))
    pdf, page_file, program = msg.attachments
    assert not pdf.dangerous and page_file.dangerous and program.dangerous
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert "minutes.pdf" in page and "application/pdf" in page and "16 Bytes" in page
    assert page.count("could run code: download only") == 2

    response = officer_client.get(f"/correspondence/attachment/{pdf.id}")
    assert response.mimetype == "application/pdf" and response.data == b"%PDF-1.4 minutes"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    for dangerous in (page_file, program):
        response = officer_client.get(f"/correspondence/attachment/{dangerous.id}")
        assert response.mimetype == "application/octet-stream", dangerous.filename
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "filename*=UTF-8''motion%20%C2%AB%20final%20%C2%BB.exe" in response.headers["Content-Disposition"]
    assert officer_client.get("/correspondence/attachment/999999").status_code == 404
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "correspondence.download_attachment"))


def test_the_raw_message_downloads_whole(officer_client, sent):
    msg = reply_from(sent, "Ann", "Raw and whole.\n")
    response = officer_client.get(f"/correspondence/message/{msg.id}/raw")
    assert response.status_code == 200 and response.mimetype == "message/rfc822"
    assert response.headers["Content-Disposition"] == f"attachment; filename=message-{msg.id}.eml"
    assert response.data == session.get(InboundMessage, msg.id).raw


# --- actions ----------------------------------------------------------------------------------

def test_mark_actioned_and_back_again_is_audited(officer_client, sent):
    msg = reply_from(sent, "Ann", "Please call me.\n")
    response = officer_client.post(f"/correspondence/{msg.thread_id}/status", data={"status": "actioned"})
    assert response.status_code == 302
    assert session.get(Thread, msg.thread_id).status is ThreadStatus.ACTIONED
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert "Marked as actioned." in page and "Mark as needing action" in page
    officer_client.post(f"/correspondence/{msg.thread_id}/status", data={"status": "needs_action"})
    assert session.get(Thread, msg.thread_id).status is ThreadStatus.NEEDS_ACTION
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "correspondence.status")).all()
    assert [e.changes["status"] for e in events] == [["needs_action", "actioned"], ["actioned", "needs_action"]]
    # A status no button sends is refused by StatusIn, the API's schema, in its words; nothing changes.
    refused = officer_client.post(f"/correspondence/{msg.thread_id}/status", data={"status": "gone"},
                                  follow_redirects=True)
    assert "The status must be one of &#39;needs_action&#39; or &#39;actioned&#39;." in refused.get_data(as_text=True)
    assert session.get(Thread, msg.thread_id).status is ThreadStatus.NEEDS_ACTION


def test_a_new_reply_puts_an_actioned_thread_back_in_needs_action(officer_client, sent):
    msg = reply_from(sent, "Ann", "First.\n")
    officer_client.post(f"/correspondence/{msg.thread_id}/status", data={"status": "actioned"})
    officer_client.get(f"/correspondence/{msg.thread_id}")
    again = reply_from(sent, "Ann", "Second thoughts.\n", message_id="<second@mail.example.net>")
    thread = session.get(Thread, again.thread_id)
    assert again.thread_id == msg.thread_id and thread.status is ThreadStatus.NEEDS_ACTION
    assert correspondence.is_unread(officer_client.officer, thread)


def test_assign_to_an_officer_and_to_nobody(officer_client, sent, make_officer):
    colleague = make_officer("chair@example.org", role=Role.CLP_OFFICER, name="Chris Chair")
    msg = reply_from(sent, "Ann", "Who deals with this?\n")
    officer_client.post(f"/correspondence/{msg.thread_id}/assign", data={"officer_id": colleague.id})
    assert session.get(Thread, msg.thread_id).assigned_to_id == colleague.id
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert "Assigned to Chris Chair." in page
    mine = text(officer_client.get("/correspondence/", query_string={"mine": "1"}))
    assert "0 threads" in mine
    officer_client.post(f"/correspondence/{msg.thread_id}/assign", data={"officer_id": ""})
    assert session.get(Thread, msg.thread_id).assigned_to_id is None
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "correspondence.assign")).all()
    assert [e.changes["assigned_to"] for e in event] == [[None, "chair@example.org"], ["chair@example.org", None]]
    officer_client.post(f"/correspondence/{msg.thread_id}/assign", data={"officer_id": 999999})
    assert "cannot take this thread" in text(officer_client.get(f"/correspondence/{msg.thread_id}"))


def test_internal_notes_are_shown_and_never_sent(officer_client, sent, scripted_smtp):
    msg = reply_from(sent, "Ann", "A complaint about the chair.\n")
    before = len(scripted_smtp.accepted)
    response = officer_client.post(f"/correspondence/{msg.thread_id}/notes", data={"text": "Passed to the <b>EC</b>."})
    assert response.status_code == 302 and "#note-" in response.headers["Location"]
    run_queue()
    assert len(scripted_smtp.accepted) == before
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert "Internal note by clp@example.org" in page and "Passed to the &lt;b&gt;EC&lt;/b&gt;." in page
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "correspondence.note"))
    officer_client.post(f"/correspondence/{msg.thread_id}/notes", data={"text": "   "})
    assert "Write the note first." in text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert session.scalar(select(ThreadNote.id).where(ThreadNote.text == "")) is None


# --- replies ----------------------------------------------------------------------------------

def test_reply_goes_by_smtp_threaded_and_the_answer_comes_back_to_the_thread(officer_client, sent, scripted_smtp):
    msg = reply_from(sent, "Ann", "Can I bring my son to the meeting?\n",
                     message_id="<ann-question@mail.example.net>")
    parent = session.get(InboundMessage, msg.id)
    response = officer_client.post(f"/correspondence/{msg.thread_id}/reply",
                                   data={"body": "Of course, all welcome.", "quote": "1", "in_reply_to": msg.id})
    assert response.status_code == 302
    answer = session.scalar(select(OutgoingReply))
    assert answer.sent_at is None and answer.to_address == "ann@example.org"  # queued, not sent in the request
    run_queue()
    session.expire_all()
    answer = session.get(OutgoingReply, answer.id)
    assert answer.sent_at is not None and answer.error is None

    [email] = scripted_smtp.received_by("ann@example.org")[-1:]
    assert email["To"] == "ann@example.org" and email["Subject"] == "Re: News of the week"
    assert email["From"] == "Anytown CLP Secretary <secretary@anytown-labour.example>"
    assert email["Reply-To"] == "Anytown CLP Secretary <secretary@anytown-labour.example>"
    assert email["Message-ID"] == answer.message_id and answer.message_id.endswith(f"@{OUR_DOMAIN}>")
    assert email["In-Reply-To"] == "<ann-question@mail.example.net>"
    assert email["References"].split() == [*parent.references, "<ann-question@mail.example.net>"]
    body = email.get_content()
    assert email.get_content_type() == "text/plain" and "Of course, all welcome." in body
    assert "> Can I bring my son to the meeting?" in body
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "correspondence.reply"))

    # Ann answers our reply from her mail client: In-Reply-To our Message-ID, no token.
    answer_back = ingest(raw_message(sender="ann@example.org", to="secretary@anytown-labour.example",
                                     subject="Re: Re: News of the week", body="Thank you!\n",
                                     in_reply_to=answer.message_id, references=email["References"] + " "
                                     + answer.message_id))
    assert answer_back.thread_id == msg.thread_id and answer_back.match_method == "in-reply-to"
    entries, _page = correspondence.timeline(session.get(Thread, msg.thread_id))
    assert [(e.kind, e.depth) for e in entries] == [("message", 0), ("reply", 1), ("message", 2)]
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert page.index("Can I bring my son") < page.index("Of course, all welcome.") < page.index("Thank you!")
    assert "Sent " in page and "Reply from clp@example.org" in page


def test_replies_refused_by_the_relay_say_so_and_can_be_sent_again(officer_client, sent, scripted_smtp):
    msg = reply_from(sent, "Bob", "Question.\n")
    scripted_smtp.script["bob@example.org"] = ["550 5.1.1 No such user here"]
    officer_client.post(f"/correspondence/{msg.thread_id}/reply", data={"body": "Answer."})
    run_queue()
    session.expire_all()
    answer = session.scalar(select(OutgoingReply))
    assert answer.sent_at is None and "550" in answer.error and answer.error.startswith("Refused")
    page = text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert "Not sent." in page and "Send again" in page
    officer_client.post(f"/correspondence/reply/{answer.id}/resend")
    run_queue()
    session.expire_all()
    answer = session.get(OutgoingReply, answer.id)
    assert answer.sent_at is not None and answer.error is None
    assert len(scripted_smtp.received_by("bob@example.org")) == 2  # the bulletin, then the reply
    officer_client.post(f"/correspondence/reply/{answer.id}/resend")
    assert "already been sent" in text(officer_client.get(f"/correspondence/{msg.thread_id}"))


def test_a_temporary_refusal_is_retried(officer_client, sent, scripted_smtp):
    msg = reply_from(sent, "Cat", "Question.\n")
    scripted_smtp.script["cat@example.org"] = ["451 4.3.0 Try again later"]
    officer_client.post(f"/correspondence/{msg.thread_id}/reply", data={"body": "Answer."})
    run_queue()
    session.expire_all()
    answer = session.scalar(select(OutgoingReply))
    assert answer.sent_at is not None and answer.error is None


def test_an_empty_reply_is_refused(officer_client, sent):
    msg = reply_from(sent, "Ann", "Hello.\n")
    officer_client.post(f"/correspondence/{msg.thread_id}/reply", data={"body": "  \n "})
    assert "Write the reply first." in text(officer_client.get(f"/correspondence/{msg.thread_id}"))
    assert session.scalar(select(OutgoingReply.id)) is None


# --- bounces, auto-replies, failures ------------------------------------------------------------

def test_bounces_view_lists_events_and_addresses_on_hold(officer_client, sent):
    campaign, deliveries = sent
    ingest(_dsn("bob@example.org", "5.1.1", "550 5.1.1 User unknown", to=bounce_address(deliveries["bob@example.org"])))
    ingest(_dsn("cat@example.org", "4.2.2", "452 4.2.2 Mailbox full", to=bounce_address(deliveries["cat@example.org"]),
                n=2))
    page = text(officer_client.get("/correspondence/bounces"))
    assert "2 bounces" in page
    assert "bob@example.org" in page and "5.1.1" in page and ">hard<" in page and "User unknown" in page
    assert "cat@example.org" in page and ">soft<" in page
    assert f'href="/campaigns/{campaign.id}"' in page
    hold = page[page.index("Addresses on hold"):page.index('id="bounces-h"')]
    bob = session.get(Member, deliveries["bob@example.org"].member_id)
    assert f'href="/members/{bob.id}"' in hold and "bob@example.org" in hold and "cat@example.org" not in hold
    event = session.scalar(select(BounceEvent).where(BounceEvent.email == "bob@example.org"))
    bounce_page = officer_client.get(f"/correspondence/message/{event.inbound_message_id}")
    assert bounce_page.status_code == 200 and "Undelivered Mail Returned to Sender" in text(bounce_page)


def test_auto_replies_have_their_own_view(officer_client, sent):
    _campaign, deliveries = sent
    msg = ingest(raw_message(to=reply_address(deliveries["ann@example.org"]), subject="Automatic reply: News",
                             body="I am away until Monday.\n", headers={"Auto-Submitted": "auto-replied"}))
    page = text(officer_client.get("/correspondence/auto-replies"))
    assert "1 auto-reply" in page and "Automatic reply: News" in page and "I am away until Monday." in page
    assert text(officer_client.get(f"/correspondence/message/{msg.id}")).count("I am away until Monday.") >= 1


def test_failed_messages_are_listed_and_retried(officer_client, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(process, "classify", boom)
    msg = ingest(raw_message(subject="Will fail once", body="Retry me.\n"))
    monkeypatch.undo()
    assert msg.status is InboundStatus.FAILED
    page = text(officer_client.get("/correspondence/failed"))
    assert "1 failed message" in page and "RuntimeError: parser exploded" in page and "Retry" in page
    assert "0 threads" in text(officer_client.get("/correspondence/"))

    response = officer_client.post(f"/correspondence/message/{msg.id}/retry")
    assert response.status_code == 302
    run_queue()
    session.expire_all()
    msg = session.get(InboundMessage, msg.id)
    assert msg.status is InboundStatus.PROCESSED and msg.thread_id is not None
    assert "Retry me." in text(officer_client.get("/correspondence/"))
    assert "No failed messages." in text(officer_client.get("/correspondence/failed"))
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "correspondence.retry"))
    officer_client.post(f"/correspondence/message/{msg.id}/retry")  # not failed: refused, nothing queued
    assert "Only a message whose processing failed" in text(officer_client.get("/correspondence/failed"))


# --- for the campaign page ----------------------------------------------------------------------

def test_replies_and_bounces_for_a_campaign(officer_client, sent, make_branch, make_officer):
    campaign, deliveries = sent
    reply_from(sent, "Ann", "One.\n")
    reply_from(sent, "Ann", "Two.\n", message_id="<two@mail.example.net>")
    reply_from(sent, "Bob", "Three.\n")
    ingest(raw_message(to=reply_address(deliveries["cat@example.org"]), subject="Out of office",
                       headers={"Auto-Submitted": "auto-replied"}))
    ingest(_dsn("cat@example.org", "5.1.1", "550 5.1.1 User unknown", to=bounce_address(deliveries["cat@example.org"])))
    report = correspondence.replies_and_bounces(campaign)
    assert report["counts"] == {"threads": 2, "replies": 3, "needs_action": 2, "actioned": 0, "auto_replies": 1,
                                "complaints": 0, "hard_bounces": 1, "soft_bounces": 0}
    assert len(report["threads"]) == 2 and [b.email for b in report["bounces"]] == ["cat@example.org"]
    north = make_branch("North")
    secretary = make_officer("north@example.org", role=Role.BRANCH_SECRETARY, branch=north)
    scoped = correspondence.replies_and_bounces(campaign, secretary)
    assert scoped["counts"]["threads"] == 0 and scoped["bounces"] == []


def test_a_reply_whose_job_redis_lost_is_queued_again_by_reconcile(officer_client, sent, scripted_smtp):
    from mailer.queue import get_queue

    msg = reply_from(sent, "Ann", "Hello?\n")
    officer_client.post(f"/correspondence/{msg.thread_id}/reply", data={"body": "Hello!"})
    assert jobs.reconcile_replies() == 0  # its job is still waiting
    get_queue().empty()  # Redis flushed
    assert jobs.reconcile_replies() == 1
    run_queue()
    session.expire_all()
    assert session.scalar(select(OutgoingReply.sent_at)) is not None
    assert jobs.reconcile_replies() == 0


def test_a_reply_a_live_job_holds_is_not_queued_again_though_redis_forgot_its_job(officer_client, sent, scripted_smtp):
    """Whether a reply is in flight is the database's to say (its claim), not RQ's started registry."""
    from datetime import timedelta

    from mailer.db import utcnow
    from mailer.queue import get_queue

    msg = reply_from(sent, "Ann", "Hello?\n")
    officer_client.post(f"/correspondence/{msg.thread_id}/reply", data={"body": "Hello!"})
    answer_id = session.scalar(select(OutgoingReply.id))
    get_queue().empty()  # Redis flushed while a job sends it
    before = len(scripted_smtp.accepted)
    lease = correspondence._claim_reply(answer_id)
    assert lease is not None and correspondence._claim_reply(answer_id) is None
    assert jobs.reconcile_replies() == 0
    assert correspondence.send_reply(answer_id) == "being sent by another job"
    assert len(scripted_smtp.accepted) == before
    # The job died: once its lease has run out, reconcile queues the reply again, and it goes once.
    session.execute(update(OutgoingReply).values(lease_until=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert jobs.reconcile_replies() == 1
    run_queue()
    session.expire_all()
    answer = session.get(OutgoingReply, answer_id)
    assert answer.sent_at is not None and answer.claimed_by is None and len(scripted_smtp.accepted) == before + 1


def test_a_long_thread_is_shown_a_page_at_a_time_newest_first(signed_in):
    """A thread of a thousand messages is not one page of 3 MB: the newest page opens, earlier
    pages follow by keyset, and each message keeps its depth in the conversation."""
    from datetime import timedelta

    from mailer.db import utcnow
    from mailer.models import InboundMessage

    thread = Thread(subject="Long one", correspondent="long@example.org")
    session.add(thread)
    session.flush()
    start = utcnow() - timedelta(days=1)
    previous = None
    for i in range(7):
        m = InboundMessage(transport="smtp", dedupe_key=f"mid:<long{i}@x>", message_id=f"<long{i}@x>", sha256="0" * 64,
                           raw=b"raw bytes never shown", size=20, thread_id=thread.id, received_at=start + timedelta(minutes=i),
                           from_address="long@example.org", visible_text=f"Message number {i}.",
                           full_text=f"Message number {i}.", parent_id=previous)
        session.add(m)
        session.flush()
        previous = m.id if i < 2 else None  # 0 <- 1 <- 2: depths 0, 1, 2
    session.commit()

    newest, page = correspondence.timeline(thread, per_page=3)
    assert [e.item.visible_text for e in newest] == ["Message number 4.", "Message number 5.", "Message number 6."]
    assert page.total == 7 and page.at_end and not page.first
    from mailer.pagination import Cursor, decode

    earlier, page2 = correspondence.timeline(thread, Cursor(before=decode(page.prev_before)), per_page=3)
    assert [e.item.visible_text for e in earlier] == ["Message number 1.", "Message number 2.", "Message number 3."]
    assert [e.depth for e in earlier] == [1, 2, 0]  # depths from the whole thread, not the page
    first, page3 = correspondence.timeline(thread, Cursor(start=True), per_page=3)
    assert first[0].item.visible_text == "Message number 0." and page3.first

    signed_in.application.config["PAGE_SIZE"] = 3
    html = signed_in.get(f"/correspondence/{thread.id}").data.decode()
    assert "Message number 6." in html and "Message number 0." not in html and "7 messages" in html
    assert "raw bytes never shown" not in html
