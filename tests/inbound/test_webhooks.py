"""The HTTPS inbound endpoints: raw MIME with a bearer token, Mailgun (signed), Postmark and
SendGrid (a secret in the URL). Payloads are written the way each provider documents them; forms
are built byte by byte, so 8-bit bodies reach the app as a provider would send them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from mailer import queue
from mailer.db import session
from mailer.models import InboundAttachment, InboundMessage, InboundStatus
from mailer.web import inbound_hooks
from tests.conftest import free_port
from tests.inbound.conftest import raw_message
from tests.sending.conftest import run_queue

RAW_TOKEN = "raw-token-" + "r" * 30
MAILGUN_KEY = "key-mailgun-signing-0123456789"
POSTMARK_TOKEN = "pm-" + "p" * 30
SENDGRID_TOKEN = "sg-" + "s" * 30

LATIN1 = (b"From: =?iso-8859-1?q?Si=E2n?= <sian@example.org>\r\nTo: secretary@anytown-labour.example\r\n"
          b"Subject: Caf\xe9 meeting\r\nMessage-ID: <latin1@mail.example.net>\r\n"
          b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
          b"Diolch, I'll bring the caf\xe9 list.\r\n")


@pytest.fixture
def app(make_app):
    app = make_app(INBOUND_WEBHOOK_TOKEN=RAW_TOKEN, MAILGUN_SIGNING_KEY=MAILGUN_KEY,
                   POSTMARK_WEBHOOK_TOKEN=POSTMARK_TOKEN, SENDGRID_WEBHOOK_TOKEN=SENDGRID_TOKEN,
                   SENDER_ADDRESS="secretary@anytown-labour.example",
                   REPLY_ADDRESS="secretary@anytown-labour.example")
    with app.app_context():
        yield app


def stored() -> list[InboundMessage]:
    session.expire_all()
    return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def multipart(*fields) -> tuple[bytes, str]:
    """A multipart/form-data body from (name, value[, filename, content type]) tuples, as bytes."""
    boundary = "----mailer" + uuid.uuid4().hex
    out = b""
    for name, value, *rest in fields:
        filename, ctype = (rest + [None, None])[:2]
        value = value if isinstance(value, bytes) else value.encode("utf-8")
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# --- every endpoint -------------------------------------------------------------------------

ENDPOINTS = ["/inbound/raw", "/inbound/mailgun", "/inbound/mailgun/mime", f"/inbound/postmark/{POSTMARK_TOKEN}",
             f"/inbound/sendgrid/{SENDGRID_TOKEN}"]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_an_endpoint_is_off_until_its_secret_is_set(make_app, url):
    app = make_app()
    with app.app_context():
        response = app.test_client().post(url, data=raw_message(), content_type="message/rfc822",
                                          headers={"Authorization": f"Bearer {RAW_TOKEN}"})
        assert response.status_code == 404 and stored() == []


@pytest.mark.parametrize("url", ENDPOINTS)
def test_no_login_and_no_csrf_token_needed_but_get_is_not_allowed(make_app, url):
    app = make_app(INBOUND_WEBHOOK_TOKEN=RAW_TOKEN, MAILGUN_SIGNING_KEY=MAILGUN_KEY, WTF_CSRF_ENABLED=True,
                   POSTMARK_WEBHOOK_TOKEN=POSTMARK_TOKEN, SENDGRID_WEBHOOK_TOKEN=SENDGRID_TOKEN)
    with app.app_context():
        client = app.test_client()
        assert client.get(url).status_code == 405
        # With CSRF on, as in production: refused for its own reasons (401/403/400), never a CSRF 400 page.
        response = client.post(url, data=b"{}", content_type="application/json")
        assert response.status_code in (400, 401, 403, 415) and b"form had expired" not in response.data


# --- raw MIME -------------------------------------------------------------------------------

def post_raw(client, body: bytes, token: str | None = RAW_TOKEN, content_type="message/rfc822"):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/inbound/raw", data=body, content_type=content_type, headers=headers)


def test_raw_mime_is_stored_byte_for_byte_and_a_duplicate_is_still_200(client):
    response = post_raw(client, LATIN1)
    assert response.status_code == 200
    (message,) = stored()
    assert response.json == {"stored": True, "id": message.id, "new": True}
    assert message.raw == LATIN1 and message.transport == "webhook"

    again = post_raw(client, LATIN1, content_type="application/octet-stream")
    assert again.status_code == 200 and again.json["new"] is False and len(stored()) == 1

    run_queue()
    (message,) = stored()
    assert message.status is InboundStatus.PROCESSED and message.subject == "Café meeting"
    assert "café list" in message.visible_text and message.from_name == "Siân"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {RAW_TOKEN}", f"Bearer {RAW_TOKEN}x",
                                           "Bearer", ""])
def test_raw_without_the_right_bearer_token_is_401_and_stores_nothing(client, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.post("/inbound/raw", data=raw_message(), content_type="message/rfc822", headers=headers)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored() == []


@pytest.mark.parametrize("body, status", [(b"", 400), (b"   \r\n", 400), (b'{"From": "a@b.example"}', 400),
                                          (b"\x00\xff\xfe garbage \x89PNG", 400), (b"hello there\n", 400)])
def test_raw_that_is_not_a_message_is_refused(client, body, status):
    response = post_raw(client, body)
    assert response.status_code == status and b"not an email message" in response.data
    assert stored() == []


def test_raw_in_the_wrong_content_type_is_415(client):
    assert post_raw(client, raw_message(), content_type="text/plain").status_code == 415
    assert post_raw(client, raw_message(), content_type="application/json").status_code == 415
    assert stored() == []


def test_size_limit_is_twice_inbound_max_bytes_and_oversized_ones_are_kept_flagged(make_app):
    app = make_app(INBOUND_WEBHOOK_TOKEN=RAW_TOKEN, INBOUND_MAX_BYTES=4000)
    with app.app_context():
        client = app.test_client()
        big = raw_message(body="a line of text\n" * 600)  # > 8000 bytes
        assert len(big) > 8000
        assert post_raw(client, big).status_code == 413 and stored() == []
        fits = raw_message(body="a line of text\n" * 350)  # between the two limits
        assert 4000 < len(fits) <= 8000
        assert post_raw(client, fits).status_code == 200
        assert stored()[0].oversized is True


@contextmanager
def http_server(app):
    """`app` behind a real HTTP server (werkzeug's, threaded), for real HTTP clients."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()


def chunks(data: bytes, size: int = 500) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_raw_over_real_http(app):
    """Through a real HTTP server and client (Content-Length and chunked bodies, as proxies send)."""
    with http_server(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/inbound/raw", body=raw_message(message_id="<http@mail.example.net>"),
                     headers={"Authorization": f"Bearer {RAW_TOKEN}", "Content-Type": "message/rfc822"})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["new"] is True
        conn.request("POST", "/inbound/raw", body=iter([b"From: ann@example.org\r\n", b"Subject: chunked\r\n",
                                                        b"Message-ID: <chunked@mail.example.net>\r\n\r\nHi\r\n"]),
                     headers={"Authorization": f"Bearer {RAW_TOKEN}", "Content-Type": "message/rfc822"},
                     encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
        conn.close()
        assert [m.message_id for m in stored()] == ["<http@mail.example.net>", "<chunked@mail.example.net>"]


@pytest.mark.parametrize("chunked", [False, True])
def test_too_large_over_real_http_is_refused_not_cut_short(make_app, chunked):
    """werkzeug stops reading a chunked body at the limit without complaint: a message must never
    be stored cut short."""
    app = make_app(INBOUND_WEBHOOK_TOKEN=RAW_TOKEN, INBOUND_MAX_BYTES=1000)
    with app.app_context(), http_server(app) as port:
        headers = {"Authorization": f"Bearer {RAW_TOKEN}", "Content-Type": "message/rfc822"}
        too_big = raw_message(body="line of text\n" * 300)
        fits = raw_message(body="line of text\n" * 100, message_id="<fits@x.example>")
        assert len(too_big) > 2000 >= len(fits) > 1000
        for body, status in ((too_big, 413), (fits, 200)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/inbound/raw", body=iter(chunks(body)) if chunked else body, headers=headers,
                         encode_chunked=chunked)
            assert conn.getresponse().status == status
            conn.close()
        (message,) = stored()
        assert message.raw == fits and message.oversized


# --- Mailgun --------------------------------------------------------------------------------

def signed(timestamp: int | None = None, token: str | None = None, key: str = MAILGUN_KEY) -> list[tuple[str, str]]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    token = token or uuid.uuid4().hex + uuid.uuid4().hex[:18]  # 50 characters, as Mailgun's
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return [("timestamp", str(timestamp)), ("token", token), ("signature", signature)]


def post_mailgun(client, fields, url="/inbound/mailgun/mime"):
    body, content_type = multipart(*fields)
    return client.post(url, data=body, content_type=content_type)


def test_mailgun_raw_mime_is_stored_as_sent_with_the_route_recipient(client):
    fields = signed() + [("recipient", "secretary+r-abc@anytown-labour.example"), ("sender", "sian@example.org"),
                         ("body-mime", LATIN1)]
    response = post_mailgun(client, fields)
    assert response.status_code == 200 and response.json["new"] is True
    (message,) = stored()
    assert message.transport == "mailgun"
    assert message.raw == b"X-Original-To: secretary+r-abc@anytown-labour.example\r\n" + LATIN1


@pytest.mark.parametrize("tamper", ["signature", "key", "stale", "future", "missing", "not-a-number"])
def test_mailgun_refuses_what_is_not_signed_fresh_by_mailgun(client, tamper):
    now = int(time.time())
    fields = {
        "signature": lambda: [(k, v if k != "signature" else "0" * 64) for k, v in signed()],
        "key": lambda: signed(key="someone-elses-key"),
        "stale": lambda: signed(timestamp=now - 301),
        "future": lambda: signed(timestamp=now + 301),
        "missing": lambda: signed()[:2],
        "not-a-number": lambda: [("timestamp", "soon")] + signed()[1:],
    }[tamper]() + [("body-mime", raw_message())]
    response = post_mailgun(client, fields)
    assert response.status_code == 403 and stored() == []


def test_mailgun_signature_within_five_minutes_is_fresh(client):
    response = post_mailgun(client, signed(timestamp=int(time.time()) - 240) + [("body-mime", raw_message())])
    assert response.status_code == 200


def test_mailgun_token_cannot_be_replayed_even_with_another_message(client):
    fields = signed()
    assert post_mailgun(client, fields + [("body-mime", raw_message(message_id="<one@x.example>"))]).status_code == 200
    replay = post_mailgun(client, fields + [("body-mime", raw_message(message_id="<evil@x.example>"))])
    assert replay.status_code == 403 and b"replay" in replay.data
    assert [m.message_id for m in stored()] == ["<one@x.example>"]


def test_mailgun_token_is_released_when_storing_fails_so_the_retry_gets_through(client, monkeypatch):
    fields = signed() + [("body-mime", raw_message(message_id="<retry@x.example>"))]

    def database_away(*args, **kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(inbound_hooks, "store", database_away)
    with pytest.raises(RuntimeError, match="database away"):  # TESTING propagates; production answers 500
        post_mailgun(client, fields)
    monkeypatch.undo()
    assert post_mailgun(client, fields).status_code == 200 and len(stored()) == 1


def test_mailgun_without_redis_cannot_rule_out_a_replay_and_says_try_later(client, monkeypatch):
    def no_redis():
        raise ConnectionError("redis away")

    with monkeypatch.context() as patch:  # undone before the app's own teardown needs Redis
        patch.setattr(queue, "redis_connection", no_redis)
        response = post_mailgun(client, signed() + [("body-mime", raw_message())])
    assert response.status_code == 503 and stored() == []


def test_mailgun_parsed_post_is_rebuilt_from_its_fields(client):
    headers = [["Received", "from mx.example.net by mxa.mailgun.org"], ["From", "Siân Jones <sian@example.org>"],
               ["To", "secretary@anytown-labour.example"], ["Subject", "Re: Branch meeting"],
               ["Message-Id", "<parsed@mail.example.net>"], ["In-Reply-To", "<notice-1@anytown-labour.example>"],
               ["Content-Type", "multipart/alternative; boundary=\"xyz\""], ["Mime-Version", "1.0"]]
    body, content_type = multipart(*signed(), ("recipient", "secretary@anytown-labour.example"),
                                   ("message-headers", json.dumps(headers)),
                                   ("body-plain", "Sorry, I can't make Thursday.\n\n> Branch meeting"),
                                   ("body-html", "<p>Sorry, I can't make Thursday.</p>"),
                                   ("attachment-count", "1"),
                                   ("attachment-1", b"%PDF-1.4 minutes", "minutes.pdf", "application/pdf"))
    response = client.post("/inbound/mailgun", data=body, content_type=content_type)
    assert response.status_code == 200
    run_queue()
    (message,) = stored()
    assert b"X-Mailer-Rebuilt: from Mailgun's parsed fields" in message.raw
    assert (message.message_id, message.in_reply_to, message.subject) == (
        "<parsed@mail.example.net>", "<notice-1@anytown-labour.example>", "Re: Branch meeting")
    assert (message.from_address, message.from_name) == ("sian@example.org", "Siân Jones")
    assert message.visible_text.strip().startswith("Sorry, I can't make Thursday.")
    (attachment,) = session.scalars(select(InboundAttachment).where(InboundAttachment.message_id == message.id))
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "minutes.pdf", "application/pdf", b"%PDF-1.4 minutes")


def test_mailgun_urlencoded_store_notify_is_rebuilt_and_says_what_it_could_not_bring(client):
    from urllib.parse import urlencode

    fields = signed() + [("recipient", "secretary@anytown-labour.example"), ("from", "Bob <bob@example.org>"),
                         ("subject", "Photos"), ("body-plain", "Photos attached."),
                         ("message-url", "https://storage.eu.mailgun.net/v3/domains/x/messages/abc"),
                         ("attachments", json.dumps([{"name": "march.jpg", "content-type": "image/jpeg", "size": 9,
                                                      "url": "https://storage.eu.mailgun.net/v3/x/att/0"}]))]
    response = client.post("/inbound/mailgun", data=urlencode(fields),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    run_queue()
    (message,) = stored()
    assert message.subject == "Photos" and message.from_address == "bob@example.org"
    assert "Mailgun kept 1 attachment(s) on its servers, not sent here: march.jpg" in message.full_text


@pytest.mark.parametrize("extra, content_type", [([], None), ([("message-headers", "{not json")], None),
                                                 ([("body-mime", "just words, no headers")], None)])
def test_mailgun_signed_but_not_a_message_is_400(client, extra, content_type):
    response = post_mailgun(client, signed() + extra)
    assert response.status_code == 400 and stored() == []


def test_mailgun_garbage_bodies(client):
    assert client.post("/inbound/mailgun", data=b"\x00\x01garbage", content_type="application/octet-stream"
                       ).status_code == 400
    assert client.post("/inbound/mailgun", data=b"--x\r\nbroken", content_type="multipart/form-data; boundary=x"
                       ).status_code in (400, 403)
    assert stored() == []


# --- Postmark -------------------------------------------------------------------------------

def postmark_payload(**overrides) -> dict:
    payload = {
        "FromName": "Siân Jones", "From": "sian@example.org",
        "FromFull": {"Email": "sian@example.org", "Name": "Siân Jones", "MailboxHash": ""},
        "To": "\"Secretary\" <secretary+r-tok@anytown-labour.example>",
        "Cc": "\"Chair\" <chair@anytown-labour.example>", "OriginalRecipient": "secretary+r-tok@anytown-labour.example",
        "Subject": "Re: Cyfarfod — AGM", "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "Date": "Thu, 5 Nov 2026 16:59:01 +0000", "MailboxHash": "r-tok",
        "TextBody": "I send my apologies.\n\nOn Mon, 2 Nov 2026 at 09:12, Anytown CLP Secretary "
                    "<secretary@anytown-labour.example> wrote:\n> AGM notice\n",
        "HtmlBody": "<p>I send my apologies.</p>", "StrippedTextReply": "I send my apologies.",
        "Tag": "", "MessageStream": "inbound",
        "Headers": [{"Name": "X-Spam-Status", "Value": "No"}, {"Name": "Message-ID", "Value": "<pm@mail.example.net>"},
                    {"Name": "In-Reply-To", "Value": "<agm-notice@anytown-labour.example>"},
                    {"Name": "MIME-Version", "Value": "1.0"},
                    {"Name": "Content-Type", "Value": "multipart/mixed; boundary=\"abc\""}],
        "Attachments": [
            {"Name": "apologies.pdf", "Content": base64.b64encode(b"%PDF-1.4 sorry").decode(),
             "ContentType": "application/pdf", "ContentLength": 14},
            {"Name": "logo.png", "Content": base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode(),
             "ContentType": "image/png", "ContentLength": 12, "ContentID": "logo@pm"}],
    }
    payload.update(overrides)
    return payload


def post_postmark(client, payload, token=POSTMARK_TOKEN):
    data = payload if isinstance(payload, bytes) else json.dumps(payload)
    return client.post(f"/inbound/postmark/{token}", data=data, content_type="application/json")


def test_postmark_raw_email_is_used_when_included(client):
    response = post_postmark(client, postmark_payload(RawEmail=LATIN1.decode("latin-1")))
    assert response.status_code == 200
    (message,) = stored()
    assert message.transport == "postmark" and message.message_id == "<latin1@mail.example.net>"
    # JSON carries text, not bytes: the 8-bit body arrives as the text Postmark decoded, in UTF-8.
    assert message.raw == (b"X-Original-To: secretary+r-tok@anytown-labour.example\r\n"
                           + LATIN1.decode("latin-1").encode("utf-8"))


def test_postmark_json_is_rebuilt_with_headers_bodies_and_attachments(client):
    assert post_postmark(client, postmark_payload()).status_code == 200
    run_queue()
    (message,) = stored()
    assert (message.message_id, message.in_reply_to) == ("<pm@mail.example.net>", "<agm-notice@anytown-labour.example>")
    assert (message.from_address, message.from_name, message.subject) == ("sian@example.org", "Siân Jones",
                                                                          "Re: Cyfarfod — AGM")
    assert message.to_addresses == ["secretary+r-tok@anytown-labour.example"]
    assert message.cc_addresses == ["chair@anytown-labour.example"]
    assert message.visible_text.strip() == "I send my apologies."
    assert message.raw.isascii() and b"X-Spam-Status: No" in message.raw
    assert message.raw.count(b"MIME-Version") >= 1 and b'boundary="abc"' not in message.raw
    attachments = session.scalars(select(InboundAttachment).where(InboundAttachment.message_id == message.id)
                                  .order_by(InboundAttachment.id)).all()
    assert [(a.filename, a.content_type, a.data) for a in attachments] == [
        ("apologies.pdf", "application/pdf", b"%PDF-1.4 sorry"), ("logo.png", "image/png", b"\x89PNG\r\n\x1a\nfake")]


def test_postmark_without_a_message_id_header_dedupes_its_retries(client):
    payload = postmark_payload(Headers=[], Attachments=[])
    first, retry = post_postmark(client, payload), post_postmark(client, payload)
    assert (first.status_code, retry.status_code) == (200, 200) and retry.json["new"] is False
    (message,) = stored()
    assert message.message_id == "<22c74902-a0c1-4511-804f-341342852c90@inbound.postmarkapp.com>"


def test_postmark_header_values_cannot_smuggle_headers(client):
    payload = postmark_payload(Subject="Hello\r\nBcc: everyone@example.org", Attachments=[],
                               Headers=[{"Name": "X-Evil\r\nBcc", "Value": "x@example.org"},
                                        {"Name": "Message-ID", "Value": "<smuggle@x.example>"}])
    assert post_postmark(client, payload).status_code == 200
    raw = stored()[0].raw
    assert b"\nBcc:" not in raw and b"Subject: Hello Bcc: everyone@example.org\n" in raw


def test_postmark_lone_surrogates_in_the_json_do_not_break_it(client):
    payload = json.dumps(postmark_payload(Subject="Broken \ud800 emoji", TextBody="Half a pair: \udc00.",
                                          Attachments=[], Headers=[{"Name": "Message-ID", "Value": "<sur@x.example>"}]))
    assert "\\ud800" in payload  # as JSON escapes it
    assert post_postmark(client, payload.encode()).status_code == 200
    run_queue()
    (message,) = stored()
    assert message.status is InboundStatus.PROCESSED and message.subject == "Broken \ufffd emoji"
    raw = postmark_payload(RawEmail="From: a@example.org\r\nSubject: x \ud83d\r\n"
                                    "Message-ID: <rs@x.example>\r\n\r\nHi\r\n")
    assert post_postmark(client, json.dumps(raw).encode()).status_code == 200


@pytest.mark.parametrize("token", ["wrong", POSTMARK_TOKEN + "x", POSTMARK_TOKEN[:-1], SENDGRID_TOKEN])
def test_postmark_wrong_token_is_401(client, token):
    assert post_postmark(client, postmark_payload(), token=token).status_code == 401 and stored() == []


@pytest.mark.parametrize("payload", [b"", b"not json", b"[1, 2]", b'"a string"', b"{}", b'{"Foo": "bar"}',
                                     json.dumps(postmark_payload(Attachments=[{"Name": "x", "Content": "%"}])).encode(),
                                     json.dumps(postmark_payload(Attachments="nope")).encode()])
def test_postmark_garbage_is_400(client, payload):
    response = post_postmark(client, payload)
    assert response.status_code == 400 and stored() == []


# --- SendGrid -------------------------------------------------------------------------------

def post_sendgrid(client, *fields, token=SENDGRID_TOKEN):
    body, content_type = multipart(*fields)
    return client.post(f"/inbound/sendgrid/{token}", data=body, content_type=content_type)


def test_sendgrid_raw_mime_is_stored_as_sent_with_the_envelope_recipient(client):
    envelope = json.dumps({"to": ["secretary+r-x@anytown-labour.example"], "from": "sian@example.org"})
    response = post_sendgrid(client, ("envelope", envelope), ("email", LATIN1), ("spam_score", "0.1"),
                             ("charsets", json.dumps({"to": "UTF-8"})))
    assert response.status_code == 200
    (message,) = stored()
    assert message.transport == "sendgrid"
    assert message.raw == b"X-Original-To: secretary+r-x@anytown-labour.example\r\n" + LATIN1

    other = raw_message(message_id="<sg-string-envelope@x.example>")
    envelope = json.dumps({"to": "chair@anytown-labour.example", "from": "bob@example.org"})  # a string, not a list
    assert post_sendgrid(client, ("envelope", envelope), ("email", other)).status_code == 200
    assert stored()[1].raw == b"X-Original-To: chair@anytown-labour.example\n" + other


def test_sendgrid_parsed_fields_are_rebuilt_in_their_charsets(client):
    headers = ("Received: by mx.sendgrid.net with SMTP id abc\n\tfor <secretary@anytown-labour.example>\n"
               "From: =?utf-8?q?Si=C3=A2n?= <sian@example.org>\nTo: secretary@anytown-labour.example\n"
               "Subject: Caf=?iso-8859-1?q?=E9?= rota\nMessage-ID: <sg-parsed@mail.example.net>\n"
               "References: <rota-1@anytown-labour.example>\n"
               "Content-Type: multipart/mixed; boundary=\"zzz\"\nMIME-Version: 1.0\n")
    response = post_sendgrid(
        client, ("headers", headers), ("text", "I can do the caf\xe9 on Saturday.".encode("iso-8859-1")),
        ("html", "<p>I can do the café on Saturday.</p>"), ("from", "Siân <sian@example.org>"),
        ("to", "secretary@anytown-labour.example"), ("subject", "Café rota"),
        ("charsets", json.dumps({"text": "iso-8859-1", "html": "UTF-8", "subject": "UTF-8", "headers": "UTF-8"})),
        ("envelope", json.dumps({"to": ["secretary@anytown-labour.example"], "from": "sian@example.org"})),
        ("attachments", "1"),
        ("attachment-info", json.dumps({"attachment1": {"filename": "rota.csv", "type": "text/csv"}})),
        ("attachment1", b"day,who\nSat,Sian\n", "rota.csv", "text/csv"))
    assert response.status_code == 200
    run_queue()
    (message,) = stored()
    assert b"X-Mailer-Rebuilt: from SendGrid's parsed fields" in message.raw
    assert (message.message_id, message.subject, message.from_name) == (
        "<sg-parsed@mail.example.net>", "Café rota", "Siân")
    assert message.references == ["<rota-1@anytown-labour.example>"]
    assert message.visible_text.strip() == "I can do the café on Saturday."
    (attachment,) = session.scalars(select(InboundAttachment).where(InboundAttachment.message_id == message.id))
    assert (attachment.filename, attachment.content_type, attachment.data) == (
        "rota.csv", "text/csv", b"day,who\nSat,Sian\n")


def test_sendgrid_wrong_token_is_401(client):
    assert post_sendgrid(client, ("email", LATIN1), token="nope").status_code == 401 and stored() == []


def test_sendgrid_garbage_is_400(client):
    assert client.post(f"/inbound/sendgrid/{SENDGRID_TOKEN}", data=b'{"email": "x"}',
                       content_type="application/json").status_code == 400
    assert post_sendgrid(client, ("spam_score", "0")).status_code == 400  # no message in it
    assert post_sendgrid(client, ("email", b"\x00\x01 not mail")).status_code == 400
    assert post_sendgrid(client, ("envelope", "{broken"), ("email", LATIN1)).status_code == 400
    assert client.post(f"/inbound/sendgrid/{SENDGRID_TOKEN}", data=b"",
                       content_type="multipart/form-data; boundary=abc").status_code == 400
    assert stored() == []


def test_sendgrid_raw_larger_than_werkzeugs_form_field_limit(client):
    """Werkzeug keeps form fields under 500 kB by default; a raw message field may be far larger."""
    big = raw_message(body="photo data line\n" * 50_000)  # ~800 kB
    assert len(big) > 500_000
    assert post_sendgrid(client, ("email", big)).status_code == 200
    assert stored()[0].raw == big
