"""Inbound processing end to end on the database: store, classify, match, thread; bounces and
complaints acted on; nothing lost. Messages are written the way real clients write replies."""

from __future__ import annotations

from sqlalchemy import func, select

from mailer import jobs
from mailer.db import session
from mailer.inbound import process, store
from mailer.models import (BounceEvent, ConsentEvent, EmailHealth, InboundKind, InboundMessage, InboundStatus, Member,
                           Suppression, SuppressionReason, Thread)
from mailer.compose.message import CampaignMessages
from mailer.compose.tokens import address_token, plus_address
from tests.inbound.conftest import raw_message
from tests.sending.conftest import run_queue


def ingest(raw: bytes) -> InboundMessage:
    message, created = store.store(raw, "file")
    session.commit()  # the caller's commit queues its processing
    assert created
    run_queue()
    session.expire_all()
    return session.get(InboundMessage, message.id)


def reply_address(delivery) -> str:
    return plus_address("secretary@anytown-labour.example", address_token("r", delivery.id))


def test_reply_by_token_only(sent):
    campaign, deliveries = sent
    d = deliveries["ann@example.org"]
    msg = ingest(raw_message(to=reply_address(d), subject="Re: News of the week",
                             body="I can help on Saturday.\n\nOn Mon, 23 Nov 2026 at 09:12, Anytown CLP Secretary <secretary@anytown-labour.example> wrote:\n> News of the week\n"))
    assert (msg.kind, msg.match_method, msg.delivery_id, msg.member_id) == (InboundKind.REPLY, "token", d.id, d.member_id)
    assert msg.visible_text.strip() == "I can help on Saturday." and "News of the week" in msg.quoted_text
    thread = session.get(Thread, msg.thread_id)
    assert thread.campaign_id == campaign.id and thread.member_id == d.member_id and not msg.flagged


def test_reply_by_in_reply_to_only(sent):
    _campaign, deliveries = sent
    d = deliveries["bob@example.org"]
    msg = ingest(raw_message(sender="bob@example.org", in_reply_to=d.message_id))
    assert (msg.match_method, msg.delivery_id) == ("in-reply-to", d.id)


def test_reply_by_references_only_uses_the_last_known(sent):
    _campaign, deliveries = sent
    d = deliveries["cat@example.org"]
    msg = ingest(raw_message(sender="cat@example.org", references=f"<unknown@x.example> {d.message_id}"))
    assert (msg.match_method, msg.delivery_id) == ("references", d.id)


def test_forward_with_someone_elses_token_is_filed_and_flagged(sent):
    _campaign, deliveries = sent
    d = deliveries["ann@example.org"]
    msg = ingest(raw_message(sender="neighbour@example.com", to=reply_address(d), subject="Fwd: News of the week"))
    assert msg.delivery_id == d.id and msg.flagged and "neighbour@example.com" in msg.match_note


def test_reply_all_with_the_token_in_cc(sent):
    _campaign, deliveries = sent
    d = deliveries["bob@example.org"]
    msg = ingest(raw_message(sender="bob@example.org", to="friend@example.com", cc=reply_address(d)))
    assert (msg.match_method, msg.delivery_id) == ("token", d.id)


def test_replies_to_one_campaign_share_a_thread_and_a_reply_to_a_reply_nests(sent):
    _campaign, deliveries = sent
    d = deliveries["ann@example.org"]
    first = ingest(raw_message(to=reply_address(d), message_id="<first@mail.example.net>"))
    second = ingest(raw_message(to="secretary@anytown-labour.example", in_reply_to="<first@mail.example.net>",
                                references=f"{d.message_id} <first@mail.example.net>"))
    assert second.thread_id == first.thread_id and second.parent_id == first.id
    assert second.match_method == "in-reply-to"


def test_a_reply_that_arrives_before_its_parent_is_reparented(sent):
    early = ingest(raw_message(sender="dan@example.com", subject="Re: Council letter",
                               in_reply_to="<letter@council.example>"))
    assert early.match_method == "none"
    early_thread = early.thread_id
    letter = ingest(raw_message(sender="clerk@council.example", subject="Council letter",
                                message_id="<letter@council.example>"))
    session.expire_all()
    early = session.get(InboundMessage, early.id)
    assert early.thread_id == letter.thread_id and early.parent_id == letter.id
    assert session.get(Thread, early_thread) is None


def test_unmatched_mail_starts_a_thread_and_a_guess_is_marked(app):
    letter = ingest(raw_message(sender="clerk@council.example", subject="Polling station changes"))
    assert letter.match_method == "none" and letter.thread_id
    follow = ingest(raw_message(sender="clerk@council.example", subject="RE: Polling station changes"))
    assert follow.thread_id == letter.thread_id and follow.match_method == "guess" and follow.match_note
    other = ingest(raw_message(sender="someone@else.example", subject="RE: Polling station changes"))
    assert other.thread_id != letter.thread_id  # a different sender is never guessed on


def test_duplicates_are_stored_once(app):
    raw = raw_message(message_id="<same@mail.example.net>")
    first, created = store.store(raw, "imap")
    session.commit()  # the caller's commit queues its processing
    again, created_again = store.store(raw + b"\n", "webhook")
    session.commit()  # the caller's commit queues its processing
    assert created and not created_again and again.id == first.id
    nomid = raw_message().replace(b"Message-ID:", b"X-Old-Message-ID:")
    a, _ = store.store(nomid, "file")
    session.commit()  # the caller's commit queues its processing
    b, created_b = store.store(nomid, "file")
    session.commit()  # the caller's commit queues its processing
    assert a.id == b.id and not created_b and a.dedupe_key.startswith("sha256:")


def test_hard_bounce_holds_the_address_and_is_matched_by_the_bounce_token(sent):
    _campaign, deliveries = sent
    d = deliveries["bob@example.org"]
    bounce_to = plus_address("secretary@anytown-labour.example", address_token("b", d.id))
    dsn = _dsn("bob@example.org", "5.1.1", "550 5.1.1 User unknown", to=bounce_to)
    msg = ingest(dsn)
    assert msg.kind is InboundKind.BOUNCE and msg.delivery_id == d.id and msg.thread_id is None
    assert session.get(Member, d.member_id).email_health is EmailHealth.ON_HOLD
    assert session.scalar(select(Suppression).where(Suppression.email == "bob@example.org")).reason \
        is SuppressionReason.HARD_BOUNCE
    [event] = session.scalars(select(BounceEvent)).all()
    assert event.hard and event.status == "5.1.1" and event.delivery_id == d.id


def test_soft_bounces_hold_the_address_only_after_the_limit(sent, app):
    _campaign, deliveries = sent
    d = deliveries["cat@example.org"]
    app.config.update(SOFT_BOUNCE_LIMIT=2)
    bounce_to = plus_address("secretary@anytown-labour.example", address_token("b", d.id))  # only ours count
    ingest(_dsn("cat@example.org", "4.2.2", "452 4.2.2 Mailbox full", to=bounce_to, action="failed", n=1))
    assert session.get(Member, d.member_id).email_health is EmailHealth.SOFT_BOUNCING
    ingest(_dsn("cat@example.org", "4.2.2", "452 4.2.2 Mailbox full", to=bounce_to, action="failed", n=2))
    assert session.get(Member, d.member_id).email_health is EmailHealth.ON_HOLD
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0  # soft: held, not suppressed


def test_complaint_suppresses_bulletins_at_once(sent):
    _campaign, deliveries = sent
    d = deliveries["ann@example.org"]
    msg = ingest(_arf("ann@example.org", d.message_id))
    assert msg.kind is InboundKind.COMPLAINT and msg.delivery_id == d.id
    s = session.scalar(select(Suppression).where(Suppression.email == "ann@example.org"))
    assert (s.reason, s.stream) == (SuppressionReason.COMPLAINT, "bulletins")
    member = session.get(Member, d.member_id)
    assert member.bulletins_consent is False and member.notices_consent is True
    assert session.scalar(select(ConsentEvent.source).where(ConsentEvent.member_id == member.id)) == "complaint"


def test_auto_reply_is_linked_but_never_threaded(sent):
    _campaign, deliveries = sent
    d = deliveries["ann@example.org"]
    msg = ingest(raw_message(to=reply_address(d), subject="Automatic reply: News of the week",
                             headers={"Auto-Submitted": "auto-replied"}))
    assert msg.kind is InboundKind.AUTO_REPLY and msg.delivery_id == d.id and msg.thread_id is None


def test_our_own_message_coming_back_is_a_loop(sent):
    campaign, deliveries = sent
    d = deliveries["ann@example.org"]
    member = session.get(Member, d.member_id)
    ours = CampaignMessages(campaign).build(member, d.id)
    msg = ingest(ours.data)
    assert msg.kind is InboundKind.LOOP and msg.thread_id is None and msg.flagged


def test_unsubscribe_by_mailto(sent):
    _campaign, deliveries = sent
    d = deliveries["bob@example.org"]
    to = plus_address("secretary@anytown-labour.example", address_token("u", d.id))
    msg = ingest(raw_message(sender="bob@example.org", to=to, subject="unsubscribe", body=""))
    assert msg.match_note == "unsubscribe by email"
    assert session.get(Member, d.member_id).bulletins_consent is False


def test_html_only_reply_is_sanitised_and_trimmed(app):
    html = ('<div>Count me in!<script>alert(1)</script><img src="https://tracker.example/p.gif" onerror="x()">'
            '<a href="javascript:evil()">click</a></div><div class="gmail_quote"><div class="gmail_attr">'
            'On Mon, Secretary wrote:</div><blockquote>Old news</blockquote></div>')
    raw = raw_message(body="", html=html)
    msg = ingest(raw.replace(b"Content-Type: text/plain", b"Content-Type: text/x-ignore"))
    assert "Count me in!" in msg.visible_text and "Old news" not in msg.visible_text
    for bad in ("<script", "alert(1)", "onerror", "javascript:", "tracker.example"):
        assert bad not in (msg.html_safe or ""), bad


def test_a_processing_failure_is_kept_and_can_be_retried(app, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(process, "classify", boom)
    msg = ingest(raw_message(subject="Will fail once"))
    assert msg.status is InboundStatus.FAILED and "parser exploded" in msg.error and msg.raw
    monkeypatch.undo()
    assert jobs.process_inbound(msg.id) == "reply"
    session.expire_all()
    assert session.get(InboundMessage, msg.id).status is InboundStatus.PROCESSED


def test_garbage_is_stored_and_processed_without_crashing(app):
    msg = ingest(b"\x00\xff this is not an email at all \r\n\r\n\xfe")
    assert msg.status is InboundStatus.PROCESSED and msg.raw.startswith(b"\x00\xff")


def _dsn(address: str, status: str, diagnostic: str, to: str = "secretary@anytown-labour.example",
         action: str = "failed", n: int = 0) -> bytes:
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: {to}\r\n"
            f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn{n}.{address}@mx.example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
            f"Final-Recipient: rfc822; {address}\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; {diagnostic}\r\n--B--\r\n").encode()


def _arf(address: str, original_message_id: str) -> bytes:
    return ("From: complaints@feedback.example\r\nTo: secretary@anytown-labour.example\r\n"
            "Subject: Complaint\r\nMessage-ID: <arf1@feedback.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n"
            "--F\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
            "--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: test/1.0\r\n"
            f"Version: 1\r\nOriginal-Rcpt-To: {address}\r\n"
            "--F\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"From: secretary@anytown-labour.example\r\nTo: {address}\r\nMessage-ID: {original_message_id}\r\n"
            "Subject: News of the week\r\n--F--\r\n").encode()


def test_store_many_keeps_each_once_and_processes_them_in_batch_jobs(sent):
    _campaign, deliveries = sent
    held = raw_message(sender="ann@example.org", in_reply_to=deliveries["ann@example.org"].message_id)
    first, created = store.store(held, "file")
    session.commit()  # the caller's commit queues its processing
    assert created
    run_queue()
    raws = [raw_message(sender=f"member{i}@example.org", subject=f"Re: News {i}") for i in range(60)]
    results = store.store_many([held, *raws, raws[0]], "file")
    session.commit()  # the caller's commit queues its processing
    assert [created for _, created in results] == [False, *([True] * 60), False]
    assert results[0][0].id == first.id and results[-1][0].id == results[1][0].id
    run_queue()
    session.expire_all()
    ids = [m.id for m, _ in results[1:61]]
    kept = session.scalars(select(InboundMessage).where(InboundMessage.id.in_(ids))).all()
    assert len(kept) == 60 and all(m.status is InboundStatus.PROCESSED and m.kind is InboundKind.REPLY for m in kept)
    assert sorted(bytes(m.raw) for m in kept) == sorted(raws)
