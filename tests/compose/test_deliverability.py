"""Deliverability, judged on the final bytes: every starter in campaigns/, rendered for a sample
member and DKIM-signed as it would be sent, verifies with dkimpy and scores at most 1.0 in
SpamAssassin's local rules (Debian's `spamassassin -L -t`), with no rule about malformed headers,
HTML-only mail, a missing text part or bad MIME firing.

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

from mailer.compose import drafts, starters
from mailer.db import session
from mailer.sending.message import CampaignMessages
from tests.sending.test_dkim import make_dkim_keys

SPAMASSASSIN = shutil.which("spamassassin")
MAX_SCORE = 1.0
# Rule families that say the message itself is badly made (SpamAssassin's rule names).
MALFORMED = re.compile(r"^(MISSING_|MIME_|MPART_ALT_DIFF|HTML_MIME_NO_HTML_TAG|INVALID_|MSGID_|HEADER_|"
                       r"MALFORMED|BAD_ENC_HEADER|FROM_EXCESS_BASE64|TO_NO_BRKTS|DATE_IN_|SUBJ_ILLEGAL_CHARS|"
                       r"TVD_SPACE_RATIO|HTML_IMAGE_ONLY|HTML_SHORT_LINK_IMG|__)")
SIGNED_HEADERS = {b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"}


def _require_spamassassin():
    if SPAMASSASSIN:
        return
    if os.environ.get("MAILER_TEST_REQUIRE_SPAMASSASSIN") == "1":
        pytest.fail("spamassassin is not installed (apt-get install spamassassin), and this run requires it")
    pytest.skip("spamassassin is not installed (apt-get install spamassassin): deliverability not checked")


@pytest.fixture(scope="module")
def dkim_keys() -> tuple[str, bytes]:
    return make_dkim_keys()


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
    private, public = dkim_keys
    app.config.update(DKIM_PRIVATE_KEY=private, DKIM_SELECTOR="mailer", DKIM_DOMAIN="anytown-labour.example",
                      SENDER_ADDRESS="secretary@anytown-labour.example",
                      REPLY_ADDRESS="secretary@anytown-labour.example",
                      BASE_URL="https://mailer.anytown-labour.example")
    officer = make_officer("sender@anytown-labour.example")
    campaign = drafts.create(officer, starter_slug=slug)
    session.commit()
    member = make_member(first_name="Dora", last_name="Jones", email="dora.jones@example.net", ward="Riverside")
    data = CampaignMessages(campaign).build(member, 1).data

    def dns(name, timeout=5):
        assert name == b"mailer._domainkey.anytown-labour.example."
        return b"v=DKIM1; k=rsa; p=" + public

    assert dkim.verify(data, dnsfunc=dns), slug
    signature = data.split(b"\r\n\r\n", 1)[0].decode()
    signed = re.search(r"\bh=([^;]+);", re.sub(r"\s+", "", signature.split("DKIM-Signature:", 1)[1]))
    covered = {h.strip().lower().encode() for h in signed.group(1).split(":")}
    assert SIGNED_HEADERS <= covered, (slug, covered)

    score, rules = spamassassin(data)
    malformed = [r for r in rules if MALFORMED.match(r)]
    print(f"\n{slug}: SpamAssassin {score} ({', '.join(rules) or 'no rules'})")
    assert not malformed, (slug, score, rules)
    assert score <= MAX_SCORE, (slug, score, rules)


def test_the_check_notices_a_badly_made_message():
    """The rule families above do fire on an HTML-only message with no Date or Message-ID: the
    check is not blind."""
    _require_spamassassin()
    bad = (b"From: someone@example.org\r\nTo: dora@example.net\r\nSubject: hello\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Only HTML here, no text part at all.</p>\r\n")
    _score, rules = spamassassin(bad)
    assert [r for r in rules if MALFORMED.match(r)], rules
