"""Delivery reports read by structure, not by example: each family's documented format, written
here with other servers' names, other wording around it, other wrapping, charsets and several
recipients, so that what is tested is the rule and not one report.

Families and the formats they follow: RFC 3464 delivery-status (also mislabelled text/plain, and
RFC 6533's message/global-delivery-status), RFC 5965 feedback reports, provider JSON
notifications (Amazon SES, SendGrid, Mailgun, Postmark), qmail's QSBMF, Postfix, Exim, Sendmail,
Exchange, and a bare SMTP reply code mapped by RFC 3463/5321 (see classify.REPLY_CODE_STATUS).
"""

from __future__ import annotations

import base64
import json

import pytest

from mailer.inbound.classify import REPLY_CODE_STATUS, classify
from mailer.inbound.parse import parse


def _mail(frm: str, subject: str, body: str, headers: str = "", charset: str = "us-ascii",
          encoding: str = "7bit") -> bytes:
    if encoding == "base64":
        payload = base64.encodebytes(body.encode(charset)).decode()
    else:
        payload = body
    return (f"From: {frm}\r\nTo: secretary@example.org\r\nSubject: {subject}\r\n"
            f"Date: Tue, 1 Dec 2026 08:00:00 +0000\r\nMessage-ID: <r{abs(hash(body))}@report.example>\r\n{headers}"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n{payload}").replace("\r\n", "\n").encode(charset)


def _report(report_type: str, status_ctype: str, status_body: str, human: str = "The message could not be delivered.",
            frm: str = "Mail System <postmaster@relay.example.com>") -> bytes:
    return (f"From: {frm}\nTo: secretary@example.org\nSubject: Delivery report\n"
            "Date: Tue, 1 Dec 2026 08:00:00 +0000\nMessage-ID: <dsn1@relay.example.com>\nMIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type={report_type}; boundary=\"XYZ\"\n\n"
            f"--XYZ\nContent-Type: text/plain\n\n{human}\n\n--XYZ\nContent-Type: {status_ctype}\n\n{status_body}\n"
            "--XYZ\nContent-Type: text/rfc822-headers\n\nFrom: secretary@example.org\nTo: a@example.net\n"
            "Message-ID: <bulletin-7@example.org>\nSubject: Bulletin\n\n--XYZ--\n").encode("utf-8")


def _statuses(raw: bytes) -> dict[str, str]:
    result = classify(parse(raw))
    assert result.kind == "bounce", result.reasons
    return {r.address: r.status for r in result.bounce.recipients}


DSN = ("Reporting-MTA: dns; relay.example.com\nArrival-Date: Tue, 1 Dec 2026 07:59:00 +0000\n\n"
       "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\n"
       "Diagnostic-Code: smtp; 550 5.2.1 The mailbox is disabled\n\n"
       "Original-Recipient: rfc822;b@example.net\nFinal-Recipient: RFC822; <B.Alias@example.net>\nAction: delayed\n"
       "Status: 4.4.7\nWill-Retry-Until: Wed, 2 Dec 2026 08:00:00 +0000\n")


@pytest.mark.parametrize("ctype", ["message/delivery-status", "text/plain", "message/global-delivery-status"])
def test_rfc3464_fields_are_read_per_recipient_whatever_the_part_is_labelled(ctype):
    assert _statuses(_report("delivery-status", ctype, DSN)) == {"a@example.net": "5.2.1", "b@example.net": "4.4.7"}


def test_rfc6533_utf8_recipient():
    body = "Reporting-MTA: dns; mx.example.jp\n\nFinal-Recipient: utf-8; 山田@example.jp\nAction: failed\nStatus: 5.1.1\n"
    statuses = _statuses(_report("delivery-status", "message/global-delivery-status", body))
    assert list(statuses.values()) == ["5.1.1"]


def test_a_feedback_report_names_every_complaining_recipient():
    body = ("Feedback-Type: abuse\nUser-Agent: SomeISP-FBL/2.1\nVersion: 1\n"
            "Original-Rcpt-To: <c@example.net>\nOriginal-Rcpt-To: <d@example.net>\nArrival-Date: Tue, 1 Dec 2026\n")
    result = classify(parse(_report("feedback-report", "message/feedback-report", body, "This is an abuse report.",
                                    frm="feedback@fbl.example.com")))
    assert result.kind == "complaint" and result.complaint.recipients == ["c@example.net", "d@example.net"]


@pytest.mark.parametrize("body, want", [
    (json.dumps([{"email": "e@example.net", "event": "bounce", "type": "bounce", "status": "5.1.1",
                  "reason": "550 5.1.1 The email account does not exist"},
                 {"email": "f@example.net", "event": "delivered"}]), {"e@example.net": "5.1.1"}),  # SendGrid
    (json.dumps({"signature": {}, "event-data": {"event": "failed", "severity": "permanent", "recipient": "g@example.net",
                 "delivery-status": {"code": 552, "message": "mailbox over quota", "description": ""}}}),
     {"g@example.net": "5.2.2"}),  # Mailgun, reply code only
    (json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "Email": "h@example.net",
                 "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist"}),
     {"h@example.net": "5.1.1"}),  # Postmark
])
def test_provider_json_notifications_sent_as_mail(body, want):
    assert _statuses(_mail("notifications@provider.example", "Event notification", body)) == want


@pytest.mark.parametrize("server", ["mx1.example.co.uk", "smtp-in.example.org"])
def test_qmail_qsbmf_each_recipient_with_the_remote_text_under_it(server):
    body = (f"Hi. This is the qmail-send program at {server}.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
            "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
            "<i@example.net>:\n198.51.100.7 failed after I sent the message.\n"
            "Remote host said: 552 sorry, mailbox over quota\n\n"
            "<j@example.net>:\n198.51.100.8 does not like recipient.\nRemote host said: 553 5.1.3 bad address syntax\n"
            "Giving up on 198.51.100.8.\n\n--- Below this line is a copy of the message.\n\n"
            "Return-Path: <secretary@example.org>\nTo: i@example.net, j@example.net\nSubject: Bulletin\n\nHello.\n")
    assert _statuses(_mail(f"MAILER-DAEMON@{server}", "failure notice", body)) == {
        "i@example.net": "5.2.2", "j@example.net": "5.1.3"}


def test_postfix_multiline_reply_in_another_charset():
    body = ("This is the mail system at host relay.example.com.\n\n"
            "Désolé, votre message n'a pas pu être remis à un ou plusieurs destinataires.\n\n"
            "<k@example.net>: host mx.example.net[203.0.113.4] said: 550-5.1.1 The email\n"
            "    account that you tried to reach does not exist. (in reply to RCPT TO\n    command)\n\n"
            "<l@example.net>: host mx.example.net[203.0.113.4] said: 451 Temporary local\n"
            "    problem - please try later (in reply to end of DATA command)\n")
    raw = _mail("MAILER-DAEMON@relay.example.com (Mail Delivery System)", "Undelivered Mail Returned to Sender",
                body, charset="iso-8859-1", encoding="base64")
    assert _statuses(raw) == {"k@example.net": "5.1.1", "l@example.net": "4.3.0"}


def test_exim_indented_addresses_with_smtp_errors():
    body = ("This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its recipients. This is a\n"
            "permanent error. The following address(es) failed:\n\n"
            "  m@example.net\n    host mx.example.net [203.0.113.9]\n"
            "    SMTP error from remote mail server after RCPT TO:<m@example.net>:\n    550 5.7.1 Rejected by policy\n"
            "  n@example.org\n    host mx.example.org [203.0.113.10]\n"
            "    SMTP error from remote mail server after end of data:\n    552 Message size exceeds fixed maximum\n")
    assert _statuses(_mail("Mail Delivery System <Mailer-Daemon@exim.example.com>",
                           "Mail delivery failed: returning message to sender", body)) == {
        "m@example.net": "5.7.1", "n@example.org": "5.2.2"}


def test_sendmail_with_two_recipients_and_a_transcript():
    body = ("The original message was received at Tue, 1 Dec 2026 07:58:00 GMT\nfrom office.example.org [192.0.2.10]\n\n"
            "   ----- The following addresses had permanent fatal errors -----\n<o@example.net>\n"
            "    (reason: 550 5.1.1 <o@example.net>... User unknown)\n<p@example.net>\n    (reason: 551 User not local)\n\n"
            "   ----- Transcript of session follows -----\n... while talking to mx.example.net.:\n"
            ">>> RCPT To:<o@example.net>\n<<< 550 5.1.1 <o@example.net>... User unknown\n"
            ">>> RCPT To:<p@example.net>\n<<< 551 User not local\n")
    assert _statuses(_mail("Mail Delivery Subsystem <MAILER-DAEMON@sm.example.net>",
                           "Returned mail: see transcript for details", body)) == {
        "o@example.net": "5.1.1", "p@example.net": "5.1.6"}


def test_exchange_ndr_with_the_remote_servers_code():
    body = ("Delivery has failed to these recipients or groups:\n\nq@example.net\n"
            "The recipient's mailbox is full and can't accept messages now.\n\n"
            "Diagnostic information for administrators:\n\nGenerating server: EX01.corp.example.net\n\n"
            "q@example.net\nmx.example.net #Remote Server returned '552 5.2.2 Mailbox full' #SMTP#\n")
    assert _statuses(_mail("postmaster@corp.example.net", "Undeliverable: Bulletin", body)) == {"q@example.net": "5.2.2"}


def test_a_report_from_a_person_like_address_in_a_known_server_format_is_a_bounce():
    # No daemon address, no null sender, no bounce subject: the qmail preamble is enough.
    body = ("Hi. This is the qmail-send program at mail.example.net.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
            "<r@example.net>:\nSorry, no mailbox here by that name. (#5.1.1)\n")
    assert _statuses(_mail("admin@mail.example.net", "Bulletin", body)) == {"r@example.net": "5.1.1"}


def test_a_member_forwarding_a_bounce_is_still_a_reply():
    body = ("Is this address right?\n\n---------- Forwarded message ---------\n"
            "Hi. This is the qmail-send program at mail.example.net.\n\n<r@example.net>:\n"
            "Sorry, no mailbox here by that name. (#5.1.1)\n")
    raw = _mail("Ann Member <ann@example.org>", "Fwd: failure notice", body, headers="In-Reply-To: <x@example.org>\r\n")
    assert classify(parse(raw)).kind == "reply"


@pytest.mark.parametrize("code, status", [("552", "5.2.2"), ("551", "5.1.6"), ("521", "5.3.2"), ("556", "5.1.10"),
                                          ("550", "5.0.0"), ("554", "5.0.0"), ("451", "4.3.0")])
def test_a_bare_reply_code_maps_by_rfc3463(code, status):
    assert REPLY_CODE_STATUS[code] == status
    body = ("This is the mail system at host relay.example.com.\n\n"
            f"<s@example.net>: host mx.example.net[203.0.113.4] said: {code} Go away (in reply to RCPT TO command)\n")
    assert _statuses(_mail("MAILER-DAEMON@relay.example.com", "Undelivered Mail Returned to Sender", body)) == {
        "s@example.net": status}


def test_a_feedback_report_part_mislabelled_text_plain_is_still_a_complaint():
    body = "Feedback-Type: abuse\nUser-Agent: OtherISP-FBL/0.9\nVersion: 1\nOriginal-Rcpt-To: t@example.net\n"
    result = classify(parse(_report("feedback-report", "text/plain", body, "A complaint.", frm="fbl@isp.example").replace(
        b"report-type=feedback-report", b"report-type=unknown")))
    assert result.kind == "complaint" and result.complaint.recipients == ["t@example.net"]


@pytest.mark.parametrize("subtype, bounce_type, status", [("MailboxFull", "Transient", "4.2.2"),
                                                          ("NoEmail", "Permanent", "5.1.1"),
                                                          ("MessageTooLarge", "Permanent", "5.3.4")])
def test_ses_bounce_without_a_status_reads_its_documented_subtype(subtype, bounce_type, status):
    note = {"notificationType": "Bounce", "bounce": {"bounceType": bounce_type, "bounceSubType": subtype,
            "bouncedRecipients": [{"emailAddress": "u@example.net"}]}, "mail": {"messageId": "m1"}}
    assert _statuses(_mail("no-reply@sns.amazonaws.com", "AWS Notification Message", json.dumps(note))) == {
        "u@example.net": status}
