"""Deliverability, judged on the final bytes as the mail transport hands them on (the memory
transport keeps them): with a DKIM key configured, every kind of message Mailer sends (campaign,
welcome, test send, meeting notice, update, reminder, cancellation, minutes, correspondence reply,
password reset) verifies with dkimpy, its signature covering From and Subject and, where the
message carries them, List-Unsubscribe and List-Unsubscribe-Post (every bulk message must). Every
starter in campaigns/, and every kind above, scores at most 1.0 in SpamAssassin's local rules
(Debian's `spamassassin -L -t`), with no rule about malformed headers, HTML-only mail, a missing
text part or bad MIME firing.

SpamAssassin is a real part: where it is not installed these tests skip and say so, unless
MAILER_TEST_REQUIRE_SPAMASSASSIN=1 (CI sets it), when they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import dkim
import pytest
from sqlalchemy import select

from mailer.compose import drafts, starters
from mailer.db import session
from mailer.mail import outbox, transport
from mailer.models import Member, Officer, Response, Role
from mailer.compose.message import CampaignMessages
from tests.inbound.conftest import raw_message
from tests.meetings.conftest import make_meeting, secretary  # noqa: F401 (fixtures)
from tests.sending.conftest import run_queue as _work_the_queue
from tests.sending.test_dkim import make_dkim_keys

SPAMASSASSIN = shutil.which("spamassassin")
MAX_SCORE = 1.0
# Rule families that say the message itself is badly made (SpamAssassin's rule names).
MALFORMED = re.compile(r"^(MISSING_|MIME_|MPART_ALT_DIFF|HTML_MIME_NO_HTML_TAG|INVALID_|MSGID_|HEADER_|"
                       r"MALFORMED|BAD_ENC_HEADER|FROM_EXCESS_BASE64|TO_NO_BRKTS|DATE_IN_|SUBJ_ILLEGAL_CHARS|"
                       r"TVD_SPACE_RATIO|HTML_IMAGE_ONLY|HTML_SHORT_LINK_IMG|__)")
DOMAIN = "anytown-labour.example"
ALWAYS_SIGNED = {"from", "subject"}
LIST_HEADERS = {"list-unsubscribe", "list-unsubscribe-post"}


def _require_spamassassin():
    if SPAMASSASSIN:
        return
    if os.environ.get("MAILER_TEST_REQUIRE_SPAMASSASSIN") == "1":
        pytest.fail("spamassassin is not installed (apt-get install spamassassin), and this run requires it")
    pytest.skip("spamassassin is not installed (apt-get install spamassassin): deliverability not checked")


@pytest.fixture(scope="module")
def dkim_keys() -> tuple[str, bytes]:
    return make_dkim_keys()


@pytest.fixture
def app(make_app, dkim_keys):
    """Mail kept by the memory transport, signed with a DKIM key, from the party's own domain."""
    app = make_app(MAIL_TRANSPORT="memory", DKIM_PRIVATE_KEY=dkim_keys[0], DKIM_SELECTOR="mailer", DKIM_DOMAIN=DOMAIN,
                   SENDER_ADDRESS=f"secretary@{DOMAIN}", REPLY_ADDRESS=f"secretary@{DOMAIN}",
                   BASE_URL=f"https://mailer.{DOMAIN}", RETRY_BASE_SECONDS=0)
    with app.app_context():
        yield app


def signed_headers(data: bytes, public: bytes) -> set[str]:
    """The headers the message's DKIM signature covers, once it has verified against `public`."""
    def dns(name, timeout=5):
        assert name == f"mailer._domainkey.{DOMAIN}.".encode()
        return b"v=DKIM1; k=rsa; p=" + public

    assert data.startswith(b"DKIM-Signature:"), data[:200]
    assert dkim.verify(data, dnsfunc=dns)
    signature = data.split(b"\r\n\r\n", 1)[0].decode()
    signed = re.search(r"\bh=([^;]+);", re.sub(r"\s+", "", signature.split("DKIM-Signature:", 1)[1]))
    return {h.strip().lower() for h in signed.group(1).split(":")}


def header_names(data: bytes) -> set[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return {line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and line[0] not in " \t"}


def assert_scores_clean(kind: str, data: bytes) -> None:
    score, rules = spamassassin(data)
    malformed = [r for r in rules if MALFORMED.match(r)]
    print(f"\n{kind}: SpamAssassin {score} ({', '.join(rules) or 'no rules'})")
    assert not malformed, (kind, score, rules)
    assert score <= MAX_SCORE, (kind, score, rules)


def spamassassin(data: bytes) -> tuple[float, list[str]]:
    """(score, rules that fired) from SpamAssassin's local rules, no network."""
    result = subprocess.run([SPAMASSASSIN, "-L", "-t"], input=data, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    headers = result.stdout.split(b"\r\n\r\n" if b"\r\n\r\n" in result.stdout else b"\n\n", 1)[0].decode()
    status = re.search(r"^X-Spam-Status:(.*(?:\r?\n[ \t].*)*)", headers, flags=re.M)
    assert status, headers
    text = re.sub(r",\s+", ",", re.sub(r"\s+", " ", status.group(1)))  # the rule list is folded
    score = float(re.search(r"score=(-?[\d.]+)", text).group(1))
    tests = re.search(r"tests=(\S*)", text).group(1)
    return score, [t for t in tests.split(",") if t and t != "none"]


@pytest.mark.parametrize("slug", sorted(s.slug for s in starters.all_starters()))
def test_every_starter_is_signed_and_scores_clean(app, make_officer, make_member, dkim_keys, slug):
    _require_spamassassin()
    officer = make_officer(f"sender@{DOMAIN}")
    campaign = drafts.create(officer, starter_slug=slug)
    session.commit()
    member = make_member(first_name="Dora", last_name="Jones", email="dora.jones@example.net", ward="Riverside")
    envelope = CampaignMessages(campaign).build(member, 1)
    assert transport().send(envelope.sender, [envelope.recipient], envelope.data)[envelope.recipient].accepted
    [sent] = outbox()
    covered = signed_headers(sent.data, dkim_keys[1])
    assert ALWAYS_SIGNED | LIST_HEADERS <= covered, (slug, covered)
    assert_scores_clean(slug, sent.data)


# --- every kind of message, as it leaves ---------------------------------------------------------

def run_queue():
    """Commit what the services did, as the request or job would, so its work is queued; then work it."""
    session.commit()
    _work_the_queue()


def _campaign(officer, slug: str):
    campaign = drafts.create(officer, starter_slug=slug)
    session.commit()
    from mailer.sending import campaigns

    campaigns.send_now(campaign, officer)
    run_queue()


def _noticed(secretary, make_meeting):
    from mailer.meetings import service

    meeting = make_meeting()
    service.send_notice(secretary, meeting)
    return meeting


def _kind_campaign(secretary, make_meeting):
    _campaign(secretary, "weekly-bulletin")


def _kind_welcome(secretary, make_meeting):
    _campaign(secretary, "welcome")


def _kind_test_send(secretary, make_meeting):
    campaign = drafts.create(secretary, starter_slug="weekly-bulletin")
    session.commit()
    drafts.test_send(secretary, campaign)


def _kind_notice(secretary, make_meeting):
    _noticed(secretary, make_meeting)
    run_queue()


def _kind_update(secretary, make_meeting):
    from mailer.meetings import service

    meeting = _noticed(secretary, make_meeting)
    run_queue()
    outbox().clear()
    meeting.venue_name = "Library"
    meeting.ical_sequence += 1
    service.send_update(secretary, meeting)
    run_queue()


def _kind_reminder(secretary, make_meeting):
    from mailer.meetings import service

    meeting = _noticed(secretary, make_meeting)
    run_queue()
    outbox().clear()
    assert service.send_reminder(meeting.id, meeting.ical_sequence) == "sent"
    run_queue()


def _kind_cancellation(secretary, make_meeting):
    from mailer.meetings import service

    meeting = _noticed(secretary, make_meeting)
    run_queue()
    outbox().clear()
    service.cancel(secretary, meeting, "The hall is flooded.")
    run_queue()


def _kind_minutes(secretary, make_meeting):
    from mailer.meetings import minutes, service

    meeting = make_meeting()
    service.record_response(meeting, session.scalars(select(Member).order_by(Member.id)).first(), Response.APOLOGIES,
                            "link")
    service.mark_held(secretary, meeting)
    session.commit()
    draft = minutes.start(secretary, meeting)
    minutes.approve(session.scalar(select(Officer).where(Officer.role == Role.CHAIR)), draft)
    session.commit()
    minutes.circulate(secretary, draft)
    run_queue()


def _kind_reply(secretary, make_meeting):
    from mailer.inbound import correspondence, store
    from mailer.models import InboundMessage

    message, _ = store.store(raw_message(sender="Dora Jones <dora.jones@example.net>", to=f"secretary@{DOMAIN}",
                                         subject="Polling stations", body="Where do I vote this year?\n"), "file")
    run_queue()
    session.expire_all()
    thread = session.get(InboundMessage, message.id).thread
    correspondence.reply(secretary, thread, None, "Dear Dora,\n\nAt the library on Mill Lane, from 7am to "
                                                  "10pm.\n\nBest wishes,\nSam, Secretary\n")
    run_queue()


def _kind_password_reset(secretary, make_meeting):
    from mailer.officers import service

    service.send_reset_email(secretary)
    session.commit()


KINDS = {"campaign": (_kind_campaign, True), "welcome": (_kind_welcome, True), "test send": (_kind_test_send, False),
         "meeting notice": (_kind_notice, True), "meeting update": (_kind_update, True),
         "meeting reminder": (_kind_reminder, True), "meeting cancellation": (_kind_cancellation, True),
         "minutes circulation": (_kind_minutes, True), "correspondence reply": (_kind_reply, False),
         "password reset": (_kind_password_reset, False)}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_of_message_is_signed_and_scores_clean(app, secretary, make_officer, make_meeting, make_member,
                                                         dkim_keys, kind):
    make_, bulk = KINDS[kind]
    make_officer(f"chair@{DOMAIN}", Role.CHAIR)
    make_member(first_name="Dora", last_name="Jones", email="dora.jones@example.net", ward="Riverside")
    make_member(first_name="Ed", last_name="Evans", email="ed.evans@example.net", ward="Castle")
    make_(secretary, make_meeting)
    sent = outbox()
    assert sent, f"{kind}: nothing left through the transport"
    for message in sent:
        covered = signed_headers(message.data, dkim_keys[1])
        assert ALWAYS_SIGNED <= covered, (kind, covered)
        present = header_names(message.data) & LIST_HEADERS
        assert present <= covered, (kind, present, covered)  # a list header is never left unsigned
        if bulk:
            assert present == LIST_HEADERS, (kind, present)
    _require_spamassassin()
    assert_scores_clean(kind, sent[-1].data)


def test_the_check_notices_a_badly_made_message():
    """The rule families above do fire on an HTML-only message with no Date or Message-ID: the
    check is not blind."""
    _require_spamassassin()
    bad = (b"From: someone@example.org\r\nTo: dora@example.net\r\nSubject: hello\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Only HTML here, no text part at all.</p>\r\n")
    _score, rules = spamassassin(bad)
    assert [r for r in rules if MALFORMED.match(r)], rules
