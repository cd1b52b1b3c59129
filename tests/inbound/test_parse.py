"""parse(): every field of a message, whatever state it arrives in, and never an exception."""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from mailer.inbound.parse import is_dangerous, parse, sanitise_filename


def eml(headers: list[tuple[str, str]] | str, body: bytes | str = b"") -> bytes:
    """A raw message with CRLF line ends from (name, value) headers (or a ready header block) and a body."""
    head = headers if isinstance(headers, str) else "".join(f"{k}: {v}\r\n" for k, v in headers)
    body = body.encode("utf-8") if isinstance(body, str) else body
    return head.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n" + body


REPLY_HEADERS = [
    ("Return-Path", "<ann@example.net>"),
    ("Delivered-To", "secretary+r-1k3-abcdefghijklmnop@example.org"),
    ("X-Original-To", "Secretary+r-1k3-abcdefghijklmnop@example.org"),
    ("From", "=?utf-8?q?Ann_M=C3=BCller?= <Ann.Muller@Example.NET>"),
    ("To", '"Anytown CLP Secretary" <secretary+r-1k3-abcdefghijklmnop@example.org>, bob@example.org'),
    ("Cc", "Carol <carol@example.org>"),
    ("Subject", "Re: =?utf-8?b?V2FyZCBtZWV0aW5nIOKAkyBhZ2VuZGE=?="),
    ("Date", "Tue, 05 Mar 2024 18:04:11 +0000"),
    ("Message-ID", "<CAF=reply-1@mail.example.net>"),
    ("In-Reply-To", "<bulletin-7.42@example.org>"),
    ("References", "<notice-1@example.org>\r\n <bulletin-7.42@example.org>"),
    ("MIME-Version", "1.0"),
    ("Content-Type", "text/plain; charset=utf-8"),
]


def test_a_plain_reply_gives_every_header_field():
    msg = parse(eml(REPLY_HEADERS, "I can come on Thursday.\r\n\r\nOn Tue, the Secretary wrote:\r\n> Agenda\r\n"))
    assert msg.message_id == "<CAF=reply-1@mail.example.net>"
    assert msg.in_reply_to == "<bulletin-7.42@example.org>"
    assert msg.references == ["<notice-1@example.org>", "<bulletin-7.42@example.org>"]
    assert (msg.from_name, msg.from_address) == ("Ann Müller", "ann.muller@example.net")
    assert msg.to == ["secretary+r-1k3-abcdefghijklmnop@example.org", "bob@example.org"]
    assert msg.cc == ["carol@example.org"]
    assert msg.delivered_to == ["secretary+r-1k3-abcdefghijklmnop@example.org"]
    assert msg.x_original_to == ["secretary+r-1k3-abcdefghijklmnop@example.org"]
    assert msg.subject == "Re: Ward meeting – agenda"
    assert msg.date == datetime(2024, 3, 5, 18, 4, 11, tzinfo=timezone.utc)
    assert msg.return_path == "ann@example.net"
    assert msg.text.startswith("I can come on Thursday.")
    assert msg.html is None and msg.attachments == [] and msg.defects == []
    assert msg.header("subject") == "Re: Ward meeting – agenda"
    assert msg.header_all("References") == ["<notice-1@example.org> <bulletin-7.42@example.org>"]


def test_message_ids_are_normalised():
    msg = parse(eml([("From", "a@example.net"), ("Message-ID", "  no-brackets@example.net "),
                     ("In-Reply-To", "<first@example.org> (sent by Mailer) <second@example.org>"),
                     ("References", "<a@x> <b@x>\t<a@x> <c@x>")], "hi"))
    assert msg.message_id == "<no-brackets@example.net>"
    assert msg.in_reply_to == "<first@example.org>"
    assert msg.references == ["<a@x>", "<b@x>", "<c@x>"]


def test_dates_are_aware_or_none():
    utc_unknown = parse(eml([("From", "a@example.net"), ("Date", "Tue, 05 Mar 2024 18:04:11 -0000")], "x"))
    assert utc_unknown.date.tzinfo is not None and utc_unknown.date.utcoffset() == timedelta(0)
    zoned = parse(eml([("From", "a@example.net"), ("Date", "Tue, 5 Mar 2024 19:04:11 +0100 (CET)")], "x"))
    assert zoned.date.utcoffset() == timedelta(hours=1)
    broken = parse(eml([("From", "a@example.net"), ("Date", "the day after tomorrow")], "x"))
    assert broken.date is None
    assert any("Date" in d for d in broken.defects)


def test_missing_headers_are_none_and_listed_as_defects():
    msg = parse(b"Subject: hello\r\n\r\nJust a body.\r\n")
    assert msg.from_address is None and msg.message_id is None and msg.date is None
    assert msg.to == [] and msg.references == [] and msg.in_reply_to is None
    assert msg.text.strip() == "Just a body."
    assert {"no From header", "no Message-ID header", "no Date header"} <= set(msg.defects)


def test_a_from_without_an_address():
    msg = parse(eml([("From", "MAILER-DAEMON <>")], "x"))
    assert msg.from_address is None and msg.from_name == "MAILER-DAEMON"
    assert any("From header has no address" in d for d in msg.defects)


@pytest.mark.parametrize("raw", [b"", b"\r\n\r\n", b"   "])
def test_an_empty_message(raw):
    msg = parse(raw)
    assert msg.text == "" and msg.from_address is None
    assert msg.defects


def test_an_empty_body():
    msg = parse(eml([("From", "a@example.net"), ("Subject", "nothing to say")], b""))
    assert msg.subject == "nothing to say" and msg.text == ""
    assert "the body is empty" in msg.defects


@pytest.mark.parametrize("raw", [
    None, "a str, not bytes", b"\x00\xff" * 1000, bytes(range(256)) * 50,
    b"Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: multipart/mixed\r\n\r\n--x--",
    b"Content-Type: message/rfc822\r\n\r\nnot a message at all",
    b"From: =?utf-8?B?####?= <\r\nSubject: =?x-none?Q?=ZZ?=\r\nDate: 99 Foo 99999 99:99\r\n\r\nbody",
    b"Content-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!",
    b"\n\n\nFrom: late@example.net\n\nbody after blank lines",
])
def test_parse_never_raises(raw):
    msg = parse(raw)
    assert isinstance(msg.defects, list)


def test_deeply_nested_multiparts_do_not_recurse_forever():
    raw = b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(60):
        raw += f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n".encode()
    msg = parse(raw)
    assert any("nested deeper" in d for d in msg.defects)


# --- malformed MIME -------------------------------------------------------------------------

def test_a_multipart_without_a_boundary_is_read_as_text():
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "multipart/mixed")],
                    "Hello, there is no boundary here.\r\n"))
    assert "Hello, there is no boundary here." in msg.text
    assert any("boundary" in d for d in msg.defects)


def test_a_wrong_boundary_is_guessed_from_the_body():
    body = ("--real-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe reply text.\r\n"
            "--real-boundary\r\nContent-Type: application/pdf; name=minutes.pdf\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"%PDF-1.4 minutes").decode() + "\r\n"
            "--real-boundary--\r\n")
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", 'multipart/mixed; boundary="declared-one"')], body))
    assert msg.text.strip() == "The reply text."
    assert [(a.filename, a.data) for a in msg.attachments] == [("minutes.pdf", b"%PDF-1.4 minutes")]
    assert any("guessed" in d for d in msg.defects)


def test_an_unclosed_multipart_and_broken_base64_are_reported_not_fatal():
    body = ("--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "SGVsbG8gd29ybGQ\r\n")  # missing padding, and no closing boundary
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "multipart/mixed; boundary=b")], body))
    assert msg.text.startswith("Hello worl")
    assert any("not closed" in d for d in msg.defects)
    assert any("base64" in d for d in msg.defects)


def test_headers_without_a_blank_line_before_the_body():
    msg = parse(b"From: a@example.net\r\nSubject: hi\r\nThis line is body text.\r\nMore.\r\n")
    assert msg.subject == "hi"
    assert "This line is body text." in msg.text
    assert msg.defects


def test_an_mbox_from_line_is_skipped():
    msg = parse(b"From MAILER-DAEMON  Sat Oct  4 08:00:09 2025\nFrom: a@example.net\nSubject: s\n\nbody\n")
    assert msg.from_address == "a@example.net" and msg.subject == "s"


# --- charsets -------------------------------------------------------------------------------

def test_an_unknown_charset_falls_back_to_utf8():
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "text/plain; charset=x-klingon")],
                    "Très bien, à jeudi.".encode("utf-8")))
    assert msg.text == "Très bien, à jeudi."
    assert any("unknown charset 'x-klingon'" in d and "UTF-8" in d for d in msg.defects)


def test_an_unknown_charset_on_latin1_bytes_falls_back_to_windows_1252():
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "text/plain; charset=x-klingon")],
                    "Café – 5 €".encode("cp1252")))
    assert msg.text == "Café – 5 €"


def test_a_wrongly_declared_charset():
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "text/plain; charset=utf-8")],
                    "Grüße aus Köln".encode("latin-1")))
    assert msg.text == "Grüße aus Köln"
    assert any("does not fit its declared charset" in d for d in msg.defects)


def test_declared_charsets_are_used():
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "text/plain; charset=iso-8859-2")],
                    "Dziękuję, będę.".encode("iso-8859-2")))
    assert msg.text == "Dziękuję, będę."
    jp = parse(eml([("From", "a@example.net"), ("Content-Type", "text/plain; charset=ISO-2022-JP")],
                   "出席します".encode("iso2022_jp")))
    assert jp.text == "出席します"


def test_headers_in_unknown_charsets_and_raw_8bit():
    raw = (b"From: =?x-unknown?Q?Jos=C3=A9?= <jose@example.net>\r\n"
           b"Subject: Caf\xc3\xa9 meeting \xe2\x80\x93 =?utf-8?B?8J+Ziw==?=\r\n"
           b"Comments: Caf\xe9 in Windows-1252\r\n\r\nbody")
    msg = parse(raw)
    assert msg.from_name == "José"  # an unknown charset: UTF-8 fits
    assert msg.subject == "Café meeting – 🙋"  # raw UTF-8 and an encoded word
    assert msg.header("comments") == "Café in Windows-1252"  # raw 8-bit that is not UTF-8
    split = parse(b"Subject: =?utf-8?B?w6k=?= =?utf-8?B?w6k=?=\r\n\r\nx")  # adjacent words join
    assert split.subject == "éé"
    badly_padded = parse(b"From: =?utf-8?B?eHB0bw?= <dummy@example.com>\r\n\r\nx")
    assert badly_padded.from_name == "xpto"


# --- bodies ---------------------------------------------------------------------------------

def test_alternative_parts_give_text_and_raw_html():
    body = ("--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain words\r\n"
            "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML <b>words</b></p>\r\n--alt--\r\n")
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "multipart/alternative; boundary=alt")], body))
    assert msg.text.strip() == "Plain words"
    assert msg.html.strip() == "<p>HTML <b>words</b></p>"
    assert not msg.html_only and msg.attachments == []


def test_html_only_gives_text_and_keeps_scripts_in_the_raw_html():
    html = ('<html><head><style>p {color: red}</style><script>alert("x")</script></head>'
            '<body><p>Yes, <b>count me in</b>.</p><img src="x" onerror="steal()"><script>evil()</script></body></html>')
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "text/html; charset=utf-8")], html))
    assert msg.html_only
    assert "count me in" in msg.text
    assert "alert" not in msg.text and "evil" not in msg.text and "color" not in msg.text
    # parse keeps the HTML as it came: sanitising is for the code that displays it.
    assert '<script>evil()</script>' in msg.html and 'onerror="steal()"' in msg.html


def test_an_attached_message_is_an_attachment_not_the_body():
    inner = "From: original@example.org\r\nSubject: The bulletin\r\nMessage-ID: <b1@example.org>\r\n\r\nInner text\r\n"
    body = ("--m\r\nContent-Type: text/plain\r\n\r\nSee the attached.\r\n"
            "--m\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--m--\r\n")
    msg = parse(eml([("From", "a@example.net"), ("Content-Type", "multipart/mixed; boundary=m")], body))
    assert msg.text.strip() == "See the attached."
    [att] = msg.attachments
    assert att.content_type == "message/rfc822" and att.filename.endswith(".eml")
    assert b"Message-ID: <b1@example.org>" in att.data and b"Inner text" in att.data
    assert parse(att.data).message_id == "<b1@example.org>"


def test_report_parts_keep_their_text():
    body = ("--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
            "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
            "Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n--r--\r\n")
    msg = parse(eml([("From", "MAILER-DAEMON@example.net"), ("Return-Path", "<>"),
                     ("Content-Type", "multipart/report; report-type=delivery-status; boundary=r")], body))
    assert msg.content_type == "multipart/report" and msg.report_type == "delivery-status"
    assert msg.return_path == ""
    [part] = [p for p in msg.parts if p.content_type == "message/delivery-status"]
    assert "Final-Recipient: rfc822; gone@example.net" in part.text and "Status: 5.1.1" in part.text


def test_auto_reply_headers_are_collected():
    msg = parse(eml([("From", "a@example.net"), ("Auto-Submitted", "auto-replied"), ("X-Autoreply", "yes"),
                     ("X-Autorespond", "1"), ("Precedence", "bulk"), ("X-Auto-Response-Suppress", "All"),
                     ("X-MS-Exchange-Inbox-Rules-Loop", "a@example.net"), ("List-Id", "<news.example.org>"),
                     ("X-Failed-Recipients", "x@example.org, y@example.org")], "x"))
    assert (msg.auto_submitted, msg.x_autoreply, msg.x_autorespond, msg.precedence) == ("auto-replied", "yes", "1", "bulk")
    assert msg.x_auto_response_suppress == "All" and msg.x_ms_exchange_inbox_rules_loop == "a@example.net"
    assert msg.list_id == "<news.example.org>"
    assert msg.x_failed_recipients == ["x@example.org", "y@example.org"]
    assert msg.return_path is None  # absent, unlike the null sender ""


# --- attachments ----------------------------------------------------------------------------

def attachment_message(*parts: tuple[str, bytes, str]) -> bytes:
    """A message with a text part and attachments given as (headers, data, transfer encoding)."""
    body = "--a\r\nContent-Type: text/plain\r\n\r\nFiles attached.\r\n"
    for headers, data, _ in parts:
        body += f"--a\r\n{headers}\r\nContent-Transfer-Encoding: base64\r\n\r\n{base64.b64encode(data).decode()}\r\n"
    body += "--a--\r\n"
    return eml([("From", "a@example.net"), ("Content-Type", "multipart/mixed; boundary=a")], body)


def test_attachment_names_are_sanitised():
    msg = parse(attachment_message(
        ('Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="../../etc/passwd"', b"%PDF", ""),
        ("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''Proc%C3%A8s-verbal.pdf",
         b"%PDF", ""),
        ('Content-Type: application/pdf; name="=?utf-8?B?TWludXRlcyDigJMgTWFyY2gucGRm?="', b"%PDF", ""),
        ('Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="C:\\\\Users\\\\ann\\\\notes.txt"',
         b"notes", ""),
        ("Content-Type: image/png", b"\x89PNG", ""),
    ))
    names = [a.filename for a in msg.attachments]
    assert names[0] == "passwd"
    assert names[1] == "Procès-verbal.pdf"
    assert names[2] == "Minutes – March.pdf"
    assert names[3] == "notes.txt"
    assert names[4].endswith(".png") and "/" not in names[4]
    assert [a.size for a in msg.attachments] == [4, 4, 4, 5, 4]
    assert msg.text.strip() == "Files attached."


@pytest.mark.parametrize("name, expected", [
    ("../../secret", "secret"), ("invoice\u202efdp.exe", "invoicefdp.exe"), ("  .hidden. ", "hidden"),
    ("CON.txt", "_CON.txt"), ("a<b>c:d|e?.pdf", "a_b_c_d_e_.pdf"), ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
])
def test_sanitise_filename(name, expected):
    assert sanitise_filename(name) == expected


@pytest.mark.parametrize("filename, content_type, data", [
    ("setup.exe", "application/octet-stream", b""), ("minutes.pdf.exe", "application/pdf", b""),
    ("run.js", "application/octet-stream", b""), ("budget.xlsm", "application/vnd.ms-excel", b""),
    ("motion.docm", "application/octet-stream", b""), ("page.html", "application/octet-stream", b""),
    ("logo.svg", "image/svg+xml", b""), ("report.pdf", "application/x-msdownload", b""),
    ("report.pdf", "application/octet-stream", b"MZ\x90\x00"), ("notes", "application/octet-stream", b"#!/bin/sh\n"),
    ("index", "application/octet-stream", b"<!DOCTYPE html><html>"), ("a.hta", "text/plain", b""),
    ("invoice.iso", "application/octet-stream", b""), ("link.lnk", "application/octet-stream", b""),
])
def test_dangerous_files(filename, content_type, data):
    assert is_dangerous(filename, content_type, data)


@pytest.mark.parametrize("filename, content_type, data", [
    ("minutes.pdf", "application/pdf", b"%PDF-1.7"), ("photo.jpg", "image/jpeg", b"\xff\xd8\xff"),
    ("agenda.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04 plain"),
    ("notes.txt", "text/plain", b"MZ is a postcode area? no, but text is text"),
])
def test_safe_files(filename, content_type, data):
    assert not is_dangerous(filename, content_type, data)


def test_a_docx_with_macros_inside_is_dangerous_whatever_its_name():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("word/vbaProject.bin", b"\x00macro")
    assert is_dangerous("agenda.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                        buf.getvalue())


def test_dangerous_attachments_are_flagged_and_never_inline():
    msg = parse(attachment_message(
        ('Content-Type: image/svg+xml\r\nContent-Disposition: inline; filename="logo.svg"\r\nContent-ID: <logo>',
         b"<svg onload='x()'/>", ""),
        ('Content-Type: image/png\r\nContent-Disposition: inline; filename="photo.png"\r\nContent-ID: <photo>',
         b"\x89PNG\r\n", ""),
        ('Content-Type: application/octet-stream; name="payslip.pdf.exe"', b"MZ\x90\x00\x03", ""),
        ('Content-Type: text/html; name="form.html"\r\nContent-Disposition: attachment', b"<form>", ""),
    ))
    by_name = {a.filename: a for a in msg.attachments}
    assert by_name["logo.svg"].dangerous and not by_name["logo.svg"].inline
    assert not by_name["photo.png"].dangerous and by_name["photo.png"].inline
    assert by_name["photo.png"].content_id == "photo"
    assert by_name["payslip.pdf.exe"].dangerous
    assert by_name["form.html"].dangerous and msg.html is None  # an attached page is not the body


# --- size -----------------------------------------------------------------------------------

def test_an_oversized_message_is_read_for_its_headers_only():
    big = base64.b64encode(b"\x00" * 300_000).decode()
    raw = eml(REPLY_HEADERS[:-1] + [("Content-Type", "multipart/mixed; boundary=z")],
              f"--z\r\nContent-Type: text/plain\r\n\r\nHello\r\n--z\r\nContent-Type: application/zip\r\n"
              f"Content-Transfer-Encoding: base64\r\n\r\n{big}\r\n--z--\r\n")
    msg = parse(raw, max_bytes=100_000)
    assert msg.oversized and msg.size == len(raw)
    assert msg.message_id == "<CAF=reply-1@mail.example.net>" and msg.in_reply_to == "<bulletin-7.42@example.org>"
    assert msg.from_address == "ann.muller@example.net" and msg.subject == "Re: Ward meeting – agenda"
    assert msg.text == "" and msg.attachments == []
    assert any("over the limit" in d for d in msg.defects)
    assert not parse(raw).oversized  # the default limit is far larger


def test_an_oversized_message_without_a_header_end_is_capped():
    msg = parse(b"From: a@example.net\r\nX-Junk: " + b"y" * 5_000_000, max_bytes=1000)
    assert msg.oversized and msg.from_address == "a@example.net"
