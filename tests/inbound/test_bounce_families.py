"""Delivery reports read by the rule of their family, on reports written here from each server's
documented format (RFC 3464 fields, qmail's QSBMF, Exim, Postfix, Sendmail, Exchange, Domino,
Courier, the big providers, list managers' failure lines, Amazon SES notifications).

The family rules (mailer/inbound/classify.py): an RFC 3464 report is read field by field, one
recipient per block, the specific status taken from the Diagnostic-Code when the Status is
generic; a server's own wording is read by recipient: an address named in the notice (before
the copy of the original) and the status code, x.y.z, in the text that follows it up to the next
address, else inferred from the reply code and the words; a sender with no usable address (Courier's
"<@>") is a system, not a person; from a system address, a line that begins with an address and a
colon and says why it failed names a failed recipient (fml and other list managers).
"""

from __future__ import annotations

import pytest

from mailer.inbound.classify import classify
from mailer.inbound.parse import parse

HEAD = "From: {frm}\r\nTo: secretary@example.org\r\nSubject: {subj}\r\nMessage-ID: <n{n}@mx.example.net>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n"
FAM = {
"qmail": ("MAILER-DAEMON@mx.example.net", "failure notice", "Hi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<ann@example.net>:\n192.0.2.1 does not like recipient.\nRemote host said: 550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown\nGiving up on 192.0.2.1.\n\n<bob@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <secretary@example.org>\nFrom: secretary@example.org\nTo: ann@example.net\nSubject: News\n\nNews.\n", {"ann@example.net": "5.1.1", "bob@example.com": "5.1.1"}),
"qmail_nocode": ("MAILER-DAEMON@mx.example.net", "failure notice", "Hi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<cat@example.net>:\nThis user's disk quota exceeded.\n\n--- Below this line is a copy of the message.\n\nFrom: secretary@example.org\nTo: cat@example.net\n\nNews.\n", {"cat@example.net": "5.2.2"}),
"exim": ("Mail Delivery System <Mailer-Daemon@mx.example.net>", "Mail delivery failed: returning message to sender", "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  ann@example.net\n    host mx.example.net [192.0.2.1]\n    SMTP error from remote mail server after RCPT TO:<ann@example.net>:\n    550 5.1.1 User unknown\n\n------ This is a copy of the message, including all the headers. ------\n\nFrom: secretary@example.org\nTo: ann@example.net\nSubject: News\n\nNews.\n", {"ann@example.net": "5.1.1"}),
"postfix": ("MAILER-DAEMON@mx.example.net (Mail Delivery System)", "Undelivered Mail Returned to Sender", "This is the mail system at host mx.example.net.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n<ann@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1\n    <ann@example.net>: Recipient address rejected: User unknown (in reply to RCPT\n    TO command)\n<bob@example.com>: host mx.example.com[192.0.2.2] said: 452 4.2.2 Mailbox full\n", {"ann@example.net": "5.1.1", "bob@example.com": "4.2.2"}),
"sendmail": ("Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>", "Returned mail: see transcript for details", "The original message was received at Mon, 23 Nov 2026 10:00:00 GMT\nfrom localhost [127.0.0.1]\n\n   ----- The following addresses had permanent fatal errors -----\n<ann@example.net>\n    (reason: 550 5.1.1 <ann@example.net>... User unknown)\n\n   ----- Transcript of session follows -----\n... while talking to mx.example.net.:\n>>> RCPT To:<ann@example.net>\n<<< 550 5.1.1 <ann@example.net>... User unknown\n550 5.1.1 <ann@example.net>... User unknown\n", {"ann@example.net": "5.1.1"}),
"exchange": ("Microsoft Outlook <postmaster@example.net>", "Undeliverable: News", "Delivery has failed to these recipients or groups:\n\nann@example.net\nThe email address you entered couldn't be found. Please check the recipient's email address and try to resend the message.\n\nDiagnostic information for administrators:\n\nGenerating server: mail.example.net\n\nann@example.net\nRemote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'\n\nOriginal message headers:\n\nFrom: secretary@example.org\nTo: ann@example.net\nSubject: News\nMessage-ID: <news@example.org>\n", {"ann@example.net": "5.1.10"}),
"domino": ("Postmaster@example.net", "DELIVERY FAILURE: User ann (ann@example.net) not listed in Domino Directory", "Your message\n\n  Subject: News\n\nwas not delivered to:\n\n  ann@example.net\n\nbecause:\n\n  User ann (ann@example.net) not listed in Domino Directory\n", {"ann@example.net": "5.1.1"}),
"courier": ("Courier mail server at mx.example.net <@>", "NOTICE: mail delivery status.", "This is a delivery status notification from mx.example.net,\nrunning the Courier mail server, version 0.65.\n\nThe original message was received on Mon, 23 Nov 2026 10:00:00 +0000\nfrom localhost [127.0.0.1]\n\n---------------------------------------------------------------------------\n\n                           UNDELIVERABLE MAIL\n\nYour message to the following recipients cannot be delivered:\n\n<ann@example.net>:\n    mx.example.net [192.0.2.1]:\n>>> RCPT TO:<ann@example.net>\n<<< 550 User unknown\n\n---------------------------------------------------------------------------\n", {"ann@example.net": "5.1.1"}),
"gmail": ("Mail Delivery Subsystem <mailer-daemon@googlemail.com>", "Delivery Status Notification (Failure)", "** Address not found **\n\nYour message wasn't delivered to ann@example.net because the address couldn't be found, or is unable to receive mail.\n\nThe response from the remote server was:\n550 5.1.1 The email account that you tried to reach does not exist.\n", {"ann@example.net": "5.1.1"}),
"yahoo": ("MAILER-DAEMON@yahoo.com", "Failure Notice", "Sorry, we were unable to deliver your message to the following address.\n\n<ann@yahoo.com>:\n554: delivery error: dd This user doesn't have a yahoo.com account (ann@yahoo.com) [0] - mta1.mail.yahoo.com\n\n--- Below this line is a copy of the message.\n", {"ann@yahoo.com": "5.1.1"}),
"imail": ("Postmaster@example.net", "Undeliverable Mail", "user mailbox is full: ann@example.net\n\nOriginal message follows.\n\nFrom: secretary@example.org\nTo: ann@example.net\n", {"ann@example.net": "5.2.2"}),
"fml": ("fml-owner@example.net", "fml status report", "<ann@example.net>: user unknown\n", {"ann@example.net": "5.1.1"}),
"dsn_text": ("MAILER-DAEMON@mx.example.net", "Delivery Status Notification", "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; ann@example.net\nOriginal-Recipient: rfc822;ann@example.net\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n\nFinal-Recipient: rfc822; bob@example.com\nAction: delayed\nStatus: 4.4.1\n", {"ann@example.net": "5.1.1", "bob@example.com": "4.4.1"}),
"ses": ("no-reply@sns.amazonaws.com", "AWS Notification Message", '{"Type":"Notification","Message":"{\\"notificationType\\":\\"Bounce\\",\\"bounce\\":{\\"bounceType\\":\\"Permanent\\",\\"bouncedRecipients\\":[{\\"emailAddress\\":\\"ann@example.net\\",\\"action\\":\\"failed\\",\\"status\\":\\"5.1.1\\",\\"diagnosticCode\\":\\"smtp; 550 5.1.1 user unknown\\"}]},\\"mail\\":{\\"messageId\\":\\"abc\\"}}"}', {"ann@example.net": "5.1.1"}),
}


@pytest.mark.parametrize("family", list(FAM))
def test_each_family_is_read_as_a_bounce_with_its_recipients_and_statuses(family):
    frm, subj, body, want = FAM[family]
    result = classify(parse((HEAD.format(frm=frm, subj=subj, n=family) + body).encode()))
    assert result.kind == "bounce", result.reasons
    got = {r.address: r.status for r in result.bounce.recipients}
    assert {a: got.get(a) for a in want} == want


def test_a_person_quoting_a_failure_line_is_not_a_bounce():
    body = "Hi, I tried to forward it to Bob but got this back:\n\n<bob@example.com>: user unknown\n\nAny idea?\n"
    raw = HEAD.format(frm="Ann Member <ann@example.org>", subj="Bob's address", n="p").encode() + body.encode()
    assert classify(parse(raw)).kind == "reply"


def test_a_no_reply_notice_without_a_failure_line_is_not_a_bounce():
    body = "Your parcel could not be delivered today. Questions to: help@courier.example\n"
    raw = HEAD.format(frm="no-reply@courier.example", subj="Your parcel", n="q").encode() + body.encode()
    assert classify(parse(raw)).kind != "bounce"
