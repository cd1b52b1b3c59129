"""Every main page, for the CLP secretary and for a branch secretary, checked in Chromium by
axe-core (WCAG 2.2 A and AA rules): no serious or critical violation. At a 390 px phone width the
same pages are no wider than the screen, and every wide table scrolls inside a visible box.

axe-core is the npm package's own file, kept under tests/browser/axe (see its README: why it is
in the repository, and how to move to a newer release). It is evaluated into each page by the
browser's debugging protocol, so the app's Content-Security-Policy stays as it is in production."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from mailer.compose import drafts
from mailer.db import session, utcnow
from mailer.meetings import service as meetings
from mailer.members import importer
from mailer.models import Campaign, Member, MemberStatus, MeetingKind
from mailer.compose.tokens import preferences_token
from tests.browser.conftest import expect, sign_in
from tests.security.conftest import app, seed_branch  # noqa: F401 - app: on a real SMTP server

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "axe" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').split('\\n')[1])}));
}"""
# What is wider than the viewport, when the page is: the elements to look at first.
TOO_WIDE = """() => {
  const w = document.documentElement.clientWidth, out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > w + 1 && !el.closest('.scroll')) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') + ' ' + Math.round(r.right));
  }
  return out.slice(0, 8);
}"""
# Tables wider than their box must sit in a .scroll box that shows it can scroll.
HIDDEN_OVERFLOW = """() => Array.from(document.querySelectorAll('table')).filter(t => {
  const box = t.closest('.scroll');
  if (t.getBoundingClientRect().width <= document.documentElement.clientWidth) return false;
  return !box || getComputedStyle(box).overflowX !== 'auto' || !getComputedStyle(box).backgroundImage.includes('gradient');
}).map(t => (t.id || t.className || 'table'))"""


def seed(make_branch, make_officer):
    """Records of every kind in branch Northgate, and the pages that show them."""
    from mailer.models import Role

    north = make_branch("Northgate")
    secretary = make_officer("secretary@anytown-labour.example", Role.CLP_SECRETARY)
    chair = make_officer("chair@anytown-labour.example", Role.CHAIR)
    branch_secretary = make_officer("north@anytown-labour.example", Role.BRANCH_SECRETARY, branch=north)
    world = seed_branch(branch_secretary, north, secretary, chair, "NG")
    for n in range(6):
        session.add(Member(membership_number=f"NG1{n:03d}", first_name=f"Member{n}", last_name="Northgate",
                           email=f"m{n}@example.org", status=MemberStatus.ACTIVE, branch_id=north.id,
                           ward="Northgate", polling_district="NGA", postcode="AN1 1AA"))
    draft = drafts.create(branch_secretary)
    drafts.update(branch_secretary, draft, {"name": "This week", "subject": "News for {{ member.first_name }}",
                                            "body": "Dear {{ member.first_name }},\n\nThe news.", "body_format": "markdown",
                                            "segment": {}})
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=40)
    later, _ = meetings.create(secretary, {"title": "General committee", "kind": MeetingKind.GENERAL.value,
                                           "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                                           "venue_name": "Town hall", "branch_id": north.id})
    run = importer.start("export.csv", ("Membership number,First name,Last name,Email,Branch,Status,Joined\n"
                                        "NG2001,Ann,Other,ann@example.org,Northgate,Active,01/02/2020\n"
                                        ",,,,Northgate,Active,\n").encode(), secretary)
    session.commit()
    sent = session.get(Campaign, world.ids["campaign_id"])
    ids = world.ids
    shared = ["/", "/members/", f"/members/{ids['member_id']}", f"/members/{ids['member_id']}/edit",
              "/campaigns/", f"/campaigns/{draft.id}/edit", f"/campaigns/{draft.id}/confirm",
              f"/campaigns/{ids['campaign_id']}", "/correspondence/", f"/correspondence/{ids['thread_id']}",
              "/correspondence/bounces", "/meetings/", f"/meetings/{ids['meeting_id']}",
              f"/meetings/{ids['meeting_id']}/register", f"/meetings/{ids['meeting_id']}/minutes",
              f"/meetings/{ids['meeting_id']}/send/notice", f"/meetings/{later.id}", "/account/", "/api/v1/docs",
              f"/correspondence/message/{ids['message_id']}"]
    clp_only = ["/imports/", "/imports/new", f"/imports/{run.id}/mapping", f"/imports/{run.id}/preview", "/officers/",
                "/officers/new", f"/officers/{branch_secretary.id}", "/audit/"]
    public = [f"/u/{preferences_token(world.member, sent.id)}",
              f"/r/{meetings.response_token(ids['meeting_id'], world.member)}/attending",
              f"/w/{sent.web_token}", "/archive", "/login", "/reset"]
    return secretary, branch_secretary, shared, clp_only, public


# What a person should never read: identifiers from the code, Python's booleans, broken grammar.
# Addresses, links and file names are taken out of the text first (their dots are theirs).
IDENTIFIER = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b"                       # bulletins_consent, clp_officer
                        r"|\b(?:member|officer|campaign|meeting|minutes|consent|segment|import|thread)\.[a-z_]+\b"
                        r"|\b(?:True|False|None)\b(?!\s+[a-z])|\bversion 0\b|\ba (?:annual|[aeiou]\w+ meeting)\b")
NOT_WORDS = re.compile(r"\S+@\S+|https?://\S+|/\S*|\S+\.(?:csv|pdf|ics|eml|json|txt)\b")
NO_WORD_SCAN = {"/api/v1/docs"}  # the API's reference: its field names are the point


# The page's text less what is shown as code on purpose (the composer's merge fields, typed as is).
READABLE_TEXT = """() => {
  const code = Array.from(document.querySelectorAll('code')), was = code.map(c => c.style.display);
  code.forEach(c => { c.style.display = 'none'; });
  const text = document.body.innerText;
  code.forEach((c, i) => { c.style.display = was[i]; });
  return text;
}"""


def identifiers(page) -> list[str]:
    text = NOT_WORDS.sub(" ", page.evaluate(READABLE_TEXT))
    return sorted(set(m.group(0) for m in IDENTIFIER.finditer(text)))


def axe_violations(page) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    return page.evaluate(RUN_AXE, WCAG_TAGS)


def check_pages(page, urls: list[str], who: str) -> list[str]:
    failures = []
    for url in urls:
        response = page.goto(url)
        assert response is not None and response.status < 400, f"{who}: {url} answered {response and response.status}"
        found = [] if url in NO_WORD_SCAN else identifiers(page)
        if found:
            failures.append(f"{who} {url}: identifiers where a person reads: {found}")
        for v in axe_violations(page):
            failures.append(f"{who} {url}: [{v['impact']}] {v['id']}: {v['help']}\n      "
                            + "\n      ".join(v["nodes"]))
    return failures


def test_every_main_page_passes_axe_and_speaks_plainly_for_both_secretaries(page, live_server, make_branch, make_officer):
    secretary, branch_secretary, shared, clp_only, public = seed(make_branch, make_officer)
    session.commit()
    failures = check_pages(page, public, "no one")
    sign_in(page, secretary.email)
    failures += check_pages(page, shared + clp_only, "CLP secretary")
    page.context.clear_cookies()
    sign_in(page, branch_secretary.email)
    failures += check_pages(page, shared, "branch secretary")
    assert not failures, f"{len(failures)} serious or critical axe violations or raw identifiers:\n" + "\n".join(failures)


def test_every_main_page_passes_axe_at_phone_width_for_both_secretaries(page, live_server, make_branch, make_officer):
    """The same check at 390 px: the phone layout (collapsed tables, wrapped navigation, the
    stacked composer) has contrast, names and targets of its own to get right."""
    secretary, branch_secretary, shared, clp_only, public = seed(make_branch, make_officer)
    session.commit()
    page.set_viewport_size({"width": 390, "height": 844})
    failures = check_pages(page, public, "no one, at 390 px")
    sign_in(page, secretary.email)
    failures += check_pages(page, shared + clp_only + ["/operations/", "/welcome/"], "CLP secretary, at 390 px")
    page.context.clear_cookies()
    sign_in(page, branch_secretary.email)
    failures += check_pages(page, shared, "branch secretary, at 390 px")
    assert not failures, f"{len(failures)} serious or critical axe violations or raw identifiers:\n" + "\n".join(failures)


def test_every_main_page_fits_a_phone(page, live_server, make_branch, make_officer):
    secretary, _branch_secretary, shared, clp_only, public = seed(make_branch, make_officer)
    session.commit()
    sign_in(page, secretary.email)
    page.set_viewport_size({"width": 390, "height": 844})
    failures = []
    for url in public[1:] + shared + clp_only:
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            failures.append(f"{url}: {width} px wide: {json.dumps(page.evaluate(TOO_WIDE))}")
        hidden = page.evaluate(HIDDEN_OVERFLOW)
        if hidden:
            failures.append(f"{url}: tables wider than the screen with no visible scroll box: {hidden}")
        if url.startswith("/w/"):
            continue  # the web copy of an email: the email's own layout, checked by its width alone
        header = page.locator("body > header").bounding_box()
        if header is None or header["width"] < 389:
            failures.append(f"{url}: the header is {header and header['width']} px wide")
    assert not failures, "\n".join(failures)
    # The import's column mapping: every column's choice is on the screen, none hidden sideways.
    page.goto(clp_only[2])
    for column in ("Membership number", "Status", "Joined"):
        choice = page.get_by_label(f"Field for column {column}")
        expect(choice).to_be_visible()
        box = choice.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, f"{column}'s choice is off the screen: {box}"


def test_the_word_scan_finds_what_issue_14_found():
    """The scan itself: each of the words found on the pages before, and none of plain English."""
    seen = ["officer.create", "clp_officer", "bulletins consent: True → False", "Saved: phone, bulletins_consent, tags.",
            "notice (version 0)", "a annual general meeting"]
    for text in seen:
        assert IDENTIFIER.search(NOT_WORDS.sub(" ", text)), text
    plain = ["None ticked: every branch.", "an annual general meeting", "Write to sec@example.org or see "
             "https://example.org/a_b", "export_2026.csv", "Consent to bulletins: yes → no"]
    for text in plain:
        assert not IDENTIFIER.search(NOT_WORDS.sub(" ", text)), text
