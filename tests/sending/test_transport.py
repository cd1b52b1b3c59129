"""The mail transport: the one way mail leaves, with a result per recipient, the relay's limits
for every kind of message, and the relay's login."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from mailer.compose import drafts
from mailer.db import session
from mailer.mail import NotSent, Upcoming, Verdict, transport
from tests.conftest import free_port


def test_one_message_has_a_result_per_recipient(app, scripted_smtp):
    scripted_smtp.script = {"gone@example.org": ["550 5.1.1 no such user"], "full@example.org": ["452 4.2.2 full"]}
    with transport().connect() as conn:
        results = conn.send("secretary@anytown-labour.example", ["ok@example.org", "gone@example.org",
                                                                  "full@example.org"], b"Subject: hi\r\n\r\nhello\r\n")
        assert results["ok@example.org"].accepted
        assert (results["gone@example.org"].verdict, results["gone@example.org"].code) == (Verdict.PERMANENT, 550)
        assert (results["full@example.org"].verdict, results["full@example.org"].code) == (Verdict.TEMPORARY, 452)
        nobody = conn.send("secretary@anytown-labour.example", ["gone@example.org"], b"Subject: x\r\n\r\nx\r\n")
        assert nobody["gone@example.org"].accepted  # the same connection goes on (the script said 550 once)
    assert [rcpt for rcpt, _m in scripted_smtp.accepted] == ["ok@example.org", "gone@example.org"]


SENDER = "secretary@anytown-labour.example"


def _message(n: int) -> bytes:
    return f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode()


def _writes(monkeypatch) -> list[bytes]:
    """What the transport writes to the relay, one entry per write."""
    import smtplib

    writes, real = [], smtplib.SMTP.send
    monkeypatch.setattr(smtplib.SMTP, "send", lambda host, data: (writes.append(data if isinstance(data, bytes) else data.encode()), real(host, data))[1])
    return writes


def test_a_run_of_messages_costs_one_write_each_where_the_relay_pipelines(app, scripted_smtp, monkeypatch):
    """Each message's end of data goes with the next message's envelope (RFC 2920), and every
    message still reaches its own recipient with its own content."""
    writes = _writes(monkeypatch)
    messages = [(f"m{n}@example.org", _message(n)) for n in range(4)]
    with transport().connect() as conn:
        for n, (rcpt, data) in enumerate(messages):
            then = Upcoming(SENDER, [messages[n + 1][0]], messages[n + 1][1]) if n + 1 < len(messages) else None
            assert conn.send(SENDER, [rcpt], data, then=then)[rcpt].accepted
    assert [(rcpt, m["Subject"]) for rcpt, m in scripted_smtp.accepted] == [
        (f"m{n}@example.org", f"message {n}") for n in range(4)]
    sends = [w for w in writes if not w.startswith((b"ehlo", b"quit"))]
    if scripted_smtp.pipelining:  # the first envelope alone, then one write per message
        assert len(sends) == 1 + 4 and all(b"RCPT TO:<m%d@" % (n + 1) in sends[n + 1] for n in range(3))
    else:
        assert len(sends) == 4 * 4  # MAIL, RCPT, DATA and the content, one at a time


def test_a_message_announced_but_never_sent_is_not_delivered(app, scripted_smtp):
    """A run that stops after announcing the next envelope (paused, cancelled, its lease lost)
    drops the connection: the relay, still waiting for content, delivers nothing."""
    with transport().connect() as conn:
        assert conn.send(SENDER, ["a@example.org"], _message(1), then=Upcoming(SENDER, ["b@example.org"], _message(2)))[
            "a@example.org"].accepted
    with transport().connect() as conn:  # the relay is still there for the next run
        assert conn.send(SENDER, ["c@example.org"], _message(3))["c@example.org"].accepted
    assert [rcpt for rcpt, _m in scripted_smtp.accepted] == ["a@example.org", "c@example.org"]


def test_another_message_than_the_one_announced_goes_to_its_own_recipient(app, scripted_smtp):
    """Should the caller send something else after all, the announced envelope is never used for
    it: the content of one member's message can never go to another's address."""
    with transport().connect() as conn:
        conn.send(SENDER, ["a@example.org"], _message(1), then=Upcoming(SENDER, ["b@example.org"], _message(2)))
        assert conn.send(SENDER, ["c@example.org"], _message(3))["c@example.org"].accepted
        assert conn.send(SENDER, ["b@example.org"], _message(2))["b@example.org"].accepted
    assert [(rcpt, m["Subject"]) for rcpt, m in scripted_smtp.accepted] == [
        ("a@example.org", "message 1"), ("c@example.org", "message 3"), ("b@example.org", "message 2")]


def test_a_refusal_of_an_announced_recipient_is_that_message_s_result(app, scripted_smtp):
    """The relay's answers to an envelope that went out early are read as that message's own, and
    the run goes on with the next."""
    scripted_smtp.script = {"gone@example.org": ["550 5.1.1 no such user"]}
    upcoming = [("gone@example.org", _message(2)), ("c@example.org", _message(3))]
    with transport().connect() as conn:
        first = conn.send(SENDER, ["a@example.org"], _message(1), then=Upcoming(SENDER, [upcoming[0][0]], upcoming[0][1]))
        gone = conn.send(SENDER, ["gone@example.org"], upcoming[0][1], then=Upcoming(SENDER, ["c@example.org"], upcoming[1][1]))
        last = conn.send(SENDER, ["c@example.org"], upcoming[1][1])
    assert first["a@example.org"].accepted and last["c@example.org"].accepted
    assert (gone["gone@example.org"].verdict, gone["gone@example.org"].code) == (Verdict.PERMANENT, 550)
    assert [(rcpt, m["Subject"]) for rcpt, m in scripted_smtp.accepted] == [
        ("a@example.org", "message 1"), ("c@example.org", "message 3")]


@pytest.mark.parametrize("greeting, verdict", [("421 4.3.2 busy", Verdict.TEMPORARY), ("554 5.7.1 go away", Verdict.PERMANENT)])
def test_a_relay_that_refuses_the_connection(app, scripted_smtp, greeting, verdict):
    scripted_smtp.refuse = greeting
    result = transport().send("s@anytown-labour.example", ["a@example.org"], b"Subject: x\r\n\r\nx\r\n")["a@example.org"]
    assert (result.verdict, str(result)) == (verdict, greeting)


def test_no_relay_at_all_is_temporary(app):
    app.config["MAIL_PORT"] = free_port()  # nothing listens
    result = transport().send("s@anytown-labour.example", ["a@example.org"], b"Subject: x\r\n\r\nx\r\n")["a@example.org"]
    assert result.verdict is Verdict.TEMPORARY and result.code is None and "ConnectionRefused" in result.reply


def _limited(app, per_minute: int) -> None:
    """A relay limit of `per_minute`, its buckets (kept in the shared Redis) starting full."""
    from mailer.mail import relay_limiter

    app.config["RATE_PER_MINUTE"] = per_minute
    limiter = relay_limiter()
    limiter.redis.delete(*(key for key, _cap, _rate in limiter._buckets))


def test_test_sends_keep_to_the_relays_rate_limit(app, make_campaign, scripted_smtp):
    """A test send is counted against the relay's limits like a campaign's message; over the
    limit, the page is told at once rather than waiting a minute."""
    _limited(app, 1)
    campaign = make_campaign()
    drafts.test_send(make_campaign.officer, campaign)
    with pytest.raises(NotSent, match="sending limit"):
        drafts.test_send(make_campaign.officer, campaign)
    assert len(scripted_smtp.accepted) == 1


def test_replies_keep_to_the_relays_rate_limit(app, make_officer, scripted_smtp):
    """A reply to a member spends a token of the relay's limit, shared with every other message."""
    from mailer.inbound import correspondence
    from mailer.mail import relay_limiter
    from mailer.models import OutgoingReply, Thread

    _limited(app, 2)
    officer = make_officer("sec@anytown-labour.example")
    thread = Thread(subject="Polling stations", correspondent="dora@example.org")
    session.add(thread)
    session.flush()
    answer = OutgoingReply(thread_id=thread.id, officer_id=officer.id, to_address="dora@example.org",
                           message_id="<r1@anytown-labour.example>", subject="Re: Polling stations", body="Library.")
    session.add(answer)
    session.commit()
    assert relay_limiter().wait_for_token(give_up_after=0)  # one of the minute's two messages
    assert correspondence.send_reply(answer.id) == "sent"  # the other
    assert not relay_limiter().wait_for_token(give_up_after=0)  # none left: the reply spent it
    assert scripted_smtp.received_by("dora@example.org")


def test_the_relays_login_is_used(app, make_officer):
    """MAIL_USERNAME and MAIL_PASSWORD log in (AUTH PLAIN, as Microsoft 365 and Gmail relays need)."""
    from mailer.officers import service

    received = []

    class Handler:
        async def handle_DATA(self, server, sess, envelope):
            received.append((sess.authenticated, envelope.content))
            return "250 OK"

    def authenticator(server, sess, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"mailer", b"s3cret"))

    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    try:
        app.config.update(MAIL_PORT=controller.port, SMTP_TIMEOUT=10)
        with pytest.raises(NotSent, match="530"):  # no login: the relay refuses the sender
            service.send_reset_email(make_officer())
        app.config.update(MAIL_USERNAME="mailer", MAIL_PASSWORD="s3cret")
        service.send_reset_email(make_officer("second@anytown-labour.example"))
    finally:
        controller.stop()
    assert [authenticated for authenticated, _ in received] == [True]


def test_a_batch_takes_relay_tokens_in_blocks_and_never_more_than_the_limit(app):
    """A batch's limiter asks Redis once per block of tokens (a hundredth of the limit, at most
    20), spending them one message at a time; two of them together still get no more than the
    limit allows, and a single send (a page's) takes one token at a time."""
    from mailer.mail import RelayLimiter, relay_limiter

    _limited(app, 600)  # a block of 6
    first, second = relay_limiter(RelayLimiter.BLOCK_MAX), relay_limiter(RelayLimiter.BLOCK_MAX)
    assert first.block == 6 and relay_limiter().block == 1
    calls = []
    real = first._take
    first._take = lambda **kw: calls.append(kw) or real(**kw)
    assert all(first.wait_for_token(give_up_after=0) for _ in range(13))
    assert len(calls) == 3  # 6 + 6 + 1 of the third block
    key = first._buckets[0][0]
    assert float(first.redis.hget(key, "tokens")) == pytest.approx(600 - 18, abs=1)  # taken before being spent
    sent = 13
    while first.wait_for_token(give_up_after=0) or second.wait_for_token(give_up_after=0):
        sent += 1
        assert sent <= 600 + 5  # the bucket refills 10 a second: a few may come while this loop runs
    assert sent >= 600  # every token taken was spent: each limiter spends what it holds before asking again
