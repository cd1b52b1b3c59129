"""`mailer inbound parse FILE --json`: one raw message parsed and classified, nothing stored."""

from __future__ import annotations

import json
import os

import pytest

BOUNCE = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: secretary+b-1k3-abcdefghijklmnop@example.org
Subject: Undelivered Mail Returned to Sender
Date: Tue, 05 Mar 2024 18:04:11 +0000
Message-ID: <dsn-1@mx.example.net>
Return-Path: <>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="R"

--R
Content-Type: text/plain

This is the mail system at host mx.example.net. Your message could not be delivered.

--R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown

--R
Content-Type: message/rfc822

From: Anytown CLP <secretary@example.org>
To: gone@example.net
Subject: Bulletin 12
Message-ID: <bulletin-12.77@example.org>

The bulletin.
--R--
"""

REPLY = """\
From: Ann Member <Ann@Example.NET>
To: Anytown CLP Secretary <secretary+r-1k3-abcdefghijklmnop@example.org>
Subject: Re: Ward meeting
Date: Tue, 05 Mar 2024 18:04:11 +0000
Message-ID: <reply-1@mail.example.net>
In-Reply-To: <notice-3.9@example.org>
References: <notice-3.9@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="M"

--M
Content-Type: text/plain; charset=utf-8

Yes, I'll be there – and I'll bring the minutes.

On Mon, 4 Mar 2024 at 09:00, Anytown CLP Secretary <secretary@example.org> wrote:
> The ward meeting is on Thursday at 7pm.
> Please send apologies if you cannot come.

--M
Content-Type: application/pdf; name="minutes.pdf"
Content-Disposition: attachment; filename="minutes.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--M--
"""

HTML_REPLY = """\
From: Bob <bob@example.net>
To: secretary@example.org
Subject: Re: Ward meeting
Message-ID: <reply-2@mail.example.net>
Content-Type: text/html; charset=utf-8

<div>Sorry, I can't make it.</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Secretary wrote:</div>
<blockquote class="gmail_quote">The ward meeting is on Thursday.</blockquote></div>
"""


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


@pytest.fixture
def cli_app(make_app):
    return make_app(SENDER_ADDRESS="secretary@example.org", REPLY_ADDRESS="secretary@example.org",
                    MESSAGE_ID_DOMAIN="")


def parse_json(app, path):
    result = app.test_cli_runner().invoke(args=["inbound", "parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return json.loads(result.output)


def test_a_bounce(cli_app, tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(crlf(BOUNCE))
    data = parse_json(cli_app, path)
    assert data["kind"] == "bounce"
    assert data["message_id"] == "<dsn-1@mx.example.net>" and data["from"] == "mailer-daemon@mx.example.net"
    assert data["subject"] == "Undelivered Mail Returned to Sender"
    assert data["date"] == "2024-03-05T18:04:11+00:00"
    [recipient] = data["bounce"]["recipients"]
    assert {k: recipient[k] for k in ("address", "status", "action", "hard")} == \
        {"address": "gone@example.net", "status": "5.1.1", "action": "failed", "hard": True}
    assert "User unknown" in recipient["diagnostic"]
    assert data["bounce"]["original_message_id"] == "<bulletin-12.77@example.org>"
    assert [a["content_type"] for a in data["attachments"]] == ["message/delivery-status", "message/rfc822"]


def test_a_reply(cli_app, tmp_path):
    path = tmp_path / "reply.eml"
    path.write_bytes(crlf(REPLY))
    data = parse_json(cli_app, path)
    assert data["kind"] == "reply" and data["bounce"] is None
    assert data["from"] == "ann@example.net" and data["to"] == ["secretary+r-1k3-abcdefghijklmnop@example.org"]
    assert data["in_reply_to"] == "<notice-3.9@example.org>" and data["references"] == ["<notice-3.9@example.org>"]
    assert data["visible_text"] == "Yes, I'll be there – and I'll bring the minutes."
    assert "The ward meeting is on Thursday" in data["quoted_text"]
    assert data["attachments"] == [{"filename": "minutes.pdf", "content_type": "application/pdf", "size": 9,
                                    "dangerous": False}]
    expected_keys = {"kind", "message_id", "in_reply_to", "references", "from", "to", "subject", "date",
                     "visible_text", "quoted_text", "attachments", "bounce"}
    assert expected_keys <= set(data)


def test_an_html_only_reply_is_trimmed_as_html(cli_app, tmp_path):
    path = tmp_path / "html.eml"
    path.write_bytes(crlf(HTML_REPLY))
    data = parse_json(cli_app, path)
    assert data["kind"] == "reply"
    assert "Sorry, I can't make it." in data["visible_text"]
    assert "Thursday" not in data["visible_text"] and "Thursday" in data["quoted_text"]


def test_our_own_message_is_a_loop(cli_app, tmp_path):
    path = tmp_path / "own.eml"
    path.write_bytes(crlf("From: Anytown CLP <secretary@example.org>\nSubject: Bulletin\n"
                          "Message-ID: <bulletin-12.77@example.org>\n\nThe bulletin.\n"))
    assert parse_json(cli_app, path)["kind"] == "loop"


def test_garbage_never_gives_a_traceback(cli_app, tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(os.urandom(4096) + b"\x00\xff" * 100)
    data = parse_json(cli_app, path)
    assert data["kind"] == "other" and data["bounce"] is None
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    assert parse_json(cli_app, empty)["kind"] == "other"


def test_a_missing_file_is_a_usage_error(cli_app, tmp_path):
    result = cli_app.test_cli_runner().invoke(args=["inbound", "parse", str(tmp_path / "nope.eml"), "--json"])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output


def test_the_summary_without_json(cli_app, tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(crlf(BOUNCE))
    result = cli_app.test_cli_runner().invoke(args=["inbound", "parse", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("bounce: 'Undelivered Mail Returned to Sender'")
    assert "gone@example.net: failed 5.1.1 (hard)" in result.output
