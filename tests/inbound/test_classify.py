"""classify(): replies, auto-replies, bounces, complaints, loops and the rest, from synthetic messages."""

from __future__ import annotations

import pytest

from mailer.inbound.classify import classify, own_identity
from mailer.inbound.parse import parse

OWN = {"secretary@example.org"}
OWN_DOMAINS = {"example.org"}


def eml(headers: list[tuple[str, str]], body: str = "") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (head + "\r\n" + body.replace("\r\n", "\n").replace("\n", "\r\n")).encode("utf-8")


def run(headers, body="", own=OWN, domains=OWN_DOMAINS):
    return classify(parse(eml(headers, body)), own, domains)


def person(*extra: tuple[str, str], subject="Re: Ward meeting") -> list[tuple[str, str]]:
    return [("From", "Ann Member <ann@example.net>"), ("To", "secretary+r-1k3-abc@example.org"),
            ("Subject", subject), ("Date", "Tue, 05 Mar 2024 18:04:11 +0000"),
            ("Message-ID", "<reply-1@mail.example.net>"), *extra]


# --- replies --------------------------------------------------------------------------------

def test_a_normal_reply():
    result = run(person(("In-Reply-To", "<bulletin-7@example.org>"),
                        ("References", "<notice-1@example.org> <bulletin-7@example.org>")),
                 "Thanks, I'll be there.\n\nOn Tue, Secretary wrote:\n> See you on Thursday\n")
    assert result.kind == "reply"
    assert result.bounce is None and result.complaint is None
    assert any("ann@example.net" in r for r in result.reasons)
    assert any("<bulletin-7@example.org>" in r for r in result.reasons)


def test_a_message_from_a_person_without_threading_is_a_reply():
    assert run(person(subject="Question about the AGM"), "When is it?").kind == "reply"


@pytest.mark.parametrize("subject", [
    "Re: Apologies for absence", "Apologies for absence - Thursday", "Absence of quorum?",
    "Re: Out of office hours canvassing", "Fwd: Undelivered leaflets for Castle ward",
])
def test_people_writing_about_absence_or_undelivered_things_stay_replies(subject):
    result = run(person(subject=subject), "Sorry, I can't make it. The leaflets could not be delivered on time.")
    assert result.kind == "reply", result.reasons


# --- auto-replies ---------------------------------------------------------------------------

@pytest.mark.parametrize("header", [
    ("Auto-Submitted", "auto-replied"), ("Auto-Submitted", "auto-generated; owner-email=x@example.net"),
    ("X-Autoreply", "yes"), ("X-Autorespond", "Out of office"), ("Precedence", "auto_reply"),
])
def test_auto_reply_headers(header):
    result = run(person(header, subject="Re: Bulletin"), "Thanks for your message.")
    assert result.kind == "auto_reply"
    assert any(header[0] in r for r in result.reasons)


def test_auto_submitted_no_is_a_person():
    assert run(person(("Auto-Submitted", "no")), "I wrote this myself.").kind == "reply"


def test_exchange_rule_replies_need_both_headers():
    both = run(person(("X-Auto-Response-Suppress", "All"), ("X-MS-Exchange-Inbox-Rules-Loop", "ann@example.net"),
                      subject="Thanks"), "Thanks.")
    assert both.kind == "auto_reply"
    assert any("X-MS-Exchange-Inbox-Rules-Loop" in r for r in both.reasons)
    only_one = run(person(("X-Auto-Response-Suppress", "All"), subject="Thanks"), "Thanks.")
    assert only_one.kind == "reply"


@pytest.mark.parametrize("subject", [
    "Out of Office: Bulletin 12", "Automatic reply: Ward meeting", "Auto-Reply: Ward meeting", "Autoreply",
    "Absence: back on Monday", "Abwesenheitsnotiz: Newsletter", "Automatische Antwort: Einladung",
    "Réponse automatique : Bulletin", "Absent du bureau", "Respuesta automática: Boletín",
    "Fuera de la oficina", "Risposta automatica: Notiziario", "Afwezig: Nieuwsbrief", "Automatisch antwoord: x",
    "Resposta automática: Boletim", "Poza biurem", "Autosvar: Nyhetsbrev", "Automatisk svar: x", "Frånvaro",
    "Fraværende", "Automaattinen vastaus: Uutiskirje", "[Auto-Reply] Ward meeting", "Re: Bulletin (Out of Office)",
])
def test_out_of_office_subjects(subject):
    result = run(person(subject=subject), "I'm away until Monday.")
    assert result.kind == "auto_reply", result.reasons


def test_bulk_precedence_with_out_of_office_words_is_an_auto_reply():
    result = run(person(("Precedence", "bulk"), subject="Re: Bulletin"),
                 "Hello, I am currently out of the office with limited access to email.")
    assert result.kind == "auto_reply"
    assert any("Precedence: bulk" in r for r in result.reasons)


def test_bulk_precedence_alone_is_other():
    assert run(person(("Precedence", "bulk"), subject="Offers this week"), "Buy now.").kind == "other"


# --- bounces --------------------------------------------------------------------------------

ORIGINAL = ("From: Anytown CLP <secretary@example.org>\n"
            "To: gone@example.net\n"
            "Subject: Bulletin 12\n"
            "Message-ID: <bulletin-12.77@example.org>\n\nThe bulletin.\n")


def dsn(recipients: str, human: str = "Delivery failed.", extra=()) -> list:
    headers = [("From", "Mail Delivery System <MAILER-DAEMON@mx.example.net>"), ("To", "secretary+b-1-x@example.org"),
               ("Subject", "Undelivered Mail Returned to Sender"), ("Return-Path", "<>"),
               ("Auto-Submitted", "auto-replied"), ("Message-ID", "<dsn-1@mx.example.net>"), *extra,
               ("Content-Type", 'multipart/report; report-type=delivery-status; boundary="R"')]
    body = (f"--R\nContent-Type: text/plain\n\n{human}\n"
            f"--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n{recipients}\n"
            f"--R\nContent-Type: message/rfc822\n\n{ORIGINAL}--R--\n")
    return [headers, body]


def test_an_rfc3464_dsn_with_two_recipients():
    headers, body = dsn("Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1.1\n"
                        "Remote-MTA: dns; mx.example.net\n"
                        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown\n\n"
                        "Original-Recipient: rfc822;Full@Example.net\nFinal-Recipient: rfc822; full-alias@example.net\n"
                        "Action: delayed\nStatus: 4.2.2\nDiagnostic-Code: smtp; 452 4.2.2 Mailbox full\n")
    result = run(headers, body)
    assert result.kind == "bounce"  # although Auto-Submitted: a report comes before the auto-reply check
    report = result.bounce
    assert report.source == "delivery-status" and report.reporting_mta == "mx.example.net"
    assert report.original_message_id == "<bulletin-12.77@example.org>"
    gone, full = report.recipients
    assert (gone.address, gone.status, gone.action, gone.reply_code, gone.hard) == \
        ("gone@example.net", "5.1.1", "failed", "550", True)
    assert "User unknown" in gone.diagnostic and not gone.status_inferred and gone.failed
    assert (full.address, full.final_recipient, full.status, full.action, full.hard) == \
        ("full@example.net", "full-alias@example.net", "4.2.2", "delayed", False)
    assert any("RFC 3464" in r for r in result.reasons)


@pytest.mark.parametrize("status, diagnostic, hard", [
    ("5.1.1", "550 5.1.1 user unknown", True),
    ("5.2.2", "552 5.2.2 mailbox full", False),
    ("5.0.0", "550 Requested action not taken: mailbox over quota", False),
    ("5.7.1", "550 5.7.1 Message rejected as spam", False),
    ("5.7.26", "550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy", False),
    ("5.0.0", "550 No such user here", True),
    ("4.4.1", "421 4.4.1 Connection timed out", False),
    ("5.1.8", "553 5.1.8 Domain of sender address does not exist", False),
    ("5.4.7", "Message expired", False),
])
def test_hard_and_soft(status, diagnostic, hard):
    headers, body = dsn(f"Final-Recipient: rfc822; m@example.net\nAction: failed\nStatus: {status}\n"
                        f"Diagnostic-Code: smtp; {diagnostic}\n")
    [recipient] = run(headers, body).bounce.recipients
    assert recipient.hard is hard


def test_a_success_report_is_a_delivery_report_but_not_a_failure():
    headers, body = dsn("Final-Recipient: rfc822; ok@example.net\nAction: delivered\nStatus: 2.0.0\n"
                        "Diagnostic-Code: smtp; 250 2.0.0 OK\n")
    result = run(headers, body)
    [recipient] = result.bounce.recipients
    assert result.kind == "bounce" and recipient.action == "delivered"
    assert not recipient.failed and not recipient.hard and recipient.reply_code == "250"


EXCHANGE_NDR = """\
Delivery has failed to these recipients or groups:

gone@example.net<mailto:gone@example.net>
The email address wasn't found at the destination domain. It might be misspelled or it might not
exist any longer. Try retyping the address and resending the message.

Diagnostic information for administrators:

Generating server: AM0PR01MB1234.eurprd01.prod.exchangelabs.com

gone@example.net
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'

Original message headers:

Received: from AM0PR01MB1234.eurprd01.prod.exchangelabs.com by AM0PR01MB1234 with HTTPS; Tue, 5 Mar 2024
From: Anytown CLP <secretary@example.org>
To: <gone@example.net>
Subject: Bulletin 12
Message-ID: <bulletin-12.77@example.org>
"""


def test_an_exchange_style_ndr_without_a_delivery_status_part():
    result = run([("From", "Microsoft Outlook <postmaster@outlook.com>"), ("To", "secretary+b-1-x@example.org"),
                  ("Subject", "Undeliverable: Bulletin 12"), ("Message-ID", "<ndr-1@outlook.com>"),
                  ("Content-Type", "text/plain; charset=utf-8")], EXCHANGE_NDR)
    assert result.kind == "bounce"
    [recipient] = result.bounce.recipients
    assert (recipient.address, recipient.status, recipient.reply_code, recipient.action, recipient.hard) == \
        ("gone@example.net", "5.1.10", "550", "failed", True)
    assert not recipient.status_inferred
    assert "RecipientNotFound" in recipient.diagnostic
    assert result.bounce.original_message_id == "<bulletin-12.77@example.org>"
    assert result.bounce.source == "text"


def test_an_exim_style_report_with_x_failed_recipients():
    body = ("This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its\n"
            "recipients. This is a permanent error. The following address(es) failed:\n\n"
            "  full@example.net\n    mailbox is full: retry timeout exceeded\n\n"
            "------ This is a copy of the message, including all the headers. ------\n\n" + ORIGINAL)
    result = run([("From", "Mail Delivery System <Mailer-Daemon@mx.example.net>"), ("To", "secretary@example.org"),
                  ("Subject", "Mail delivery failed: returning message to sender"),
                  ("X-Failed-Recipients", "full@example.net")], body)
    assert result.kind == "bounce"
    [recipient] = result.bounce.recipients
    assert recipient.address == "full@example.net"
    assert recipient.status == "5.2.2" and recipient.status_inferred and not recipient.hard
    assert any("X-Failed-Recipients" in r for r in result.reasons)


def test_a_qmail_style_report_without_codes_gets_an_inferred_status():
    body = ("Hi. This is the qmail-send program at mx.example.net.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
            "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
            "<nobody-here@example.net>:\nSorry, no mailbox here by that name.\n\n"
            "--- Below this line is a copy of the message.\n\n" + ORIGINAL)
    result = run([("From", "MAILER-DAEMON@mx.example.net"), ("To", "secretary@example.org"),
                  ("Subject", "failure notice")], body)
    [recipient] = result.bounce.recipients
    assert (recipient.address, recipient.status, recipient.status_inferred, recipient.hard) == \
        ("nobody-here@example.net", "5.1.1", True, True)


def test_a_postfix_report_names_a_contact_address_that_is_not_a_recipient():
    body = ("This is the mail system at host mx.example.net.\n\nI'm sorry to have to inform you that your message "
            "could not\nbe delivered to one or more recipients.\n\nFor further assistance, please contact "
            "<help@isp.example.com>\n\n<gone@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1\n"
            "    <gone@example.net>: Recipient address rejected: User unknown (in reply to RCPT TO command)\n")
    result = run([("From", "MAILER-DAEMON@mx.example.net (Mail Delivery System)"), ("To", "secretary@example.org"),
                  ("Subject", "Undelivered Mail Returned to Sender")], body)
    assert [r.address for r in result.bounce.recipients] == ["gone@example.net"]


def test_a_forwarded_bounce_from_a_member_is_a_reply():
    body = ("Hi, I got this when I sent the minutes on.\n\n---------- Forwarded message ---------\n"
            "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n\n"
            "Delivery to the following recipient failed permanently:\n\n     friend@example.net\n\n"
            "550 5.1.1 The email account that you tried to reach does not exist.\n")
    result = run(person(subject="Fwd: Delivery Status Notification (Failure)"), body)
    assert result.kind == "reply"


def test_a_mailer_daemon_message_without_recipients_is_other():
    result = run([("From", "MAILER-DAEMON@mx.example.net"), ("To", "secretary@example.org"),
                  ("Subject", "Postmaster warning: queue statistics")], "Everything is fine today.")
    assert result.kind == "other"
    assert any("mail system" in r for r in result.reasons)


# --- complaints -----------------------------------------------------------------------------

def test_a_feedback_report_is_a_complaint():
    headers = [("From", "Feedback Loop <fbl@isp.example.com>"), ("To", "abuse@example.org"),
               ("Subject", "Abuse report"), ("Message-ID", "<fbl-1@isp.example.com>"),
               ("Content-Type", 'multipart/report; report-type=feedback-report; boundary="F"')]
    body = ("--F\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
            "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\n"
            "Version: 1\nOriginal-Mail-From: <secretary+b-1-x@example.org>\nOriginal-Rcpt-To: <member@isp.example.com>\n"
            "Source-IP: 192.0.2.5\n"
            f"--F\nContent-Type: message/rfc822\n\n{ORIGINAL}--F--\n")
    result = run(headers, body)
    assert result.kind == "complaint" and result.bounce is None
    report = result.complaint
    assert report.feedback_type == "abuse" and report.recipients == ["member@isp.example.com"]
    assert report.original_message_id == "<bulletin-12.77@example.org>"
    assert report.original_from == "secretary+b-1-x@example.org" and report.source_ip == "192.0.2.5"
    assert any("RFC 5965" in r for r in result.reasons)


# --- loops ----------------------------------------------------------------------------------

def test_our_own_message_coming_back_is_a_loop():
    from_us = run([("From", "Anytown CLP <Secretary@Example.org>"), ("To", "secretary@example.org"),
                   ("Subject", "Bulletin 12"), ("Message-ID", "<elsewhere@mail.example.net>")], "The bulletin.")
    assert from_us.kind == "loop" and any("own address" in r for r in from_us.reasons)
    plus = run([("From", "secretary+b-1-x@example.org"), ("Subject", "x")], "x")
    assert plus.kind == "loop"
    our_id = run([("From", "someone@example.net"), ("Subject", "Bulletin 12"),
                  ("Message-ID", "<bulletin-12.77@example.org>")], "The bulletin.")
    assert our_id.kind == "loop" and any("Message-ID" in r for r in our_id.reasons)


def test_a_loop_comes_before_an_auto_reply_and_a_reply_answering_us_is_not_a_loop():
    ours = run([("From", "secretary@example.org"), ("Auto-Submitted", "auto-replied"), ("Subject", "x")], "x")
    assert ours.kind == "loop"
    reply = run(person(("In-Reply-To", "<bulletin-12.77@example.org>")), "Thanks")
    assert reply.kind == "reply"


def test_without_own_addresses_nothing_is_a_loop():
    assert classify(parse(eml([("From", "secretary@example.org"), ("Subject", "x")], "x"))).kind == "reply"


def test_own_identity_from_settings():
    assert own_identity({"SENDER_ADDRESS": "Secretary@Example.org", "REPLY_ADDRESS": "replies@example.org",
                         "BOUNCE_ADDRESS": "", "MESSAGE_ID_DOMAIN": ""}) == \
        ({"secretary@example.org", "replies@example.org"}, {"example.org"})
    assert own_identity({"SENDER_ADDRESS": "s@example.org", "MESSAGE_ID_DOMAIN": "mail.example.org"})[1] == \
        {"mail.example.org"}


# --- other ----------------------------------------------------------------------------------

def test_a_mailing_list_message_is_other():
    result = run([("From", "Chris <chris@example.net>"), ("To", "ward-news@lists.example.net"),
                  ("Subject", "[ward-news] Street stall on Saturday"), ("List-Id", "Ward news <ward-news.lists.example.net>"),
                  ("List-Unsubscribe", "<mailto:leave@lists.example.net>"), ("Precedence", "list")], "Who can help?")
    assert result.kind == "other"
    assert any("List-Id" in r for r in result.reasons)


@pytest.mark.parametrize("sender", ["noreply@bank.example.com", "no-reply@council.example.gov",
                                    "do-not-reply@shop.example.com", "notifications@service.example.com"])
def test_system_senders_are_other(sender):
    result = run([("From", sender), ("To", "secretary@example.org"), ("Subject", "Your statement")], "Hello.")
    assert result.kind == "other"


def test_a_newsletter_with_list_unsubscribe_is_other():
    result = run([("From", "Campaign News <news@campaign.example.com>"), ("To", "secretary@example.org"),
                  ("Subject", "This week"), ("List-Unsubscribe", "<https://campaign.example.com/u/1>")], "News.")
    assert result.kind == "other"


def test_garbage_is_other_not_an_error():
    result = classify(parse(b"\x00\xff\xfe garbage \x01" * 50), OWN, OWN_DOMAINS)
    assert result.kind == "other" and result.reasons


def test_a_colleague_answering_from_our_domain_is_not_a_loop():
    result = run([("From", "Treasurer <treasurer@example.org>"), ("Subject", "Re: Budget"),
                  ("Message-ID", "<4f1c-thunderbird@example.org>"), ("In-Reply-To", "<bulletin-12.77@example.org>")],
                 "Agreed.")
    assert result.kind == "reply"


def test_delivery_status_fields_pasted_into_a_members_reply_are_not_a_bounce():
    result = run(person(("In-Reply-To", "<bulletin-12.77@example.org>"), subject="Re: Bulletin 12"),
                 "My husband's copy bounced:\n\nFinal-Recipient: rfc822; him@example.net\nAction: failed\n"
                 "Status: 5.1.1\n")
    assert result.kind == "reply"
