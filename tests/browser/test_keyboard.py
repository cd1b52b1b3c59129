"""Journey, with the keyboard alone: sign in, start a campaign, write it, preview it, confirm and
send it, by Tab, Shift+Tab, arrows, Space and Enter only (no click, no fill). Every control on the
way must be reached by Tab, and focus must never stick (a keyboard trap) on the way."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.db import session
from mailer.models import Campaign, CampaignStatus
from tests.browser.conftest import expect
from tests.conftest import TEST_PASSWORD
from tests.web.test_campaigns_web import clear_queue

FOCUSED = "() => { const e = document.activeElement; return e ? e.outerHTML.slice(0, 160) : '' }"


def tab_to(page, target, limit: int = 250, backwards: bool = False) -> int:
    """Press Tab (or Shift+Tab) until `target` has the focus; fail if it never does, or if focus
    stays on one element for many presses in a row (a trap), or if it arrives unseen (no focus
    ring). Returns the presses it took."""
    key = "Shift+Tab" if backwards else "Tab"
    same, previous = 0, None
    for n in range(1, limit + 1):
        page.keyboard.press(key)
        if target.evaluate("e => e === document.activeElement"):
            # and one can see where it is (WCAG 2.4.7): the focus ring is drawn
            assert target.evaluate("e => getComputedStyle(e).outlineStyle") != "none", f"{target}: no focus ring"
            return n
        current = page.evaluate(FOCUSED)
        same = same + 1 if current == previous else 0
        assert same < 40, f"focus is stuck on {current}"  # an email preview's links may keep it a while, not for ever
        previous = current
    raise AssertionError(f"{target} is not reached by {key} in {limit} presses (last: {page.evaluate(FOCUSED)})")


@pytest.mark.browser
def test_compose_preview_confirm_and_send_with_the_keyboard_alone(page, make_officer, make_member):
    clear_queue()
    officer = make_officer("secretary@example.org")
    make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    make_member(first_name="Bob", last_name="Baker", email="bob@example.org")

    page.goto("/login")
    tab_to(page, page.get_by_label("Email"))
    page.keyboard.type(officer.email)
    tab_to(page, page.get_by_label("Password", exact=True))
    page.keyboard.type(TEST_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()

    tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()

    # The starters are one radio group: Tab reaches the chosen one, arrows move the choice.
    blank = page.get_by_role("radio", name=re.compile(r"^Blank"))
    tab_to(page, page.locator("input[name=starter]:checked"))
    for _ in range(12):
        if blank.is_checked():
            break
        page.keyboard.press("ArrowDown")
    expect(blank).to_be_checked()
    expect(blank).to_be_focused()
    tab_to(page, page.get_by_role("button", name="Create the draft"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Compose"), level=1)).to_be_visible()

    # Write it: the subject, then the body (Tab leaves the body: no trap in the textarea).
    subject = page.get_by_label("Subject", exact=True)
    tab_to(page, subject)
    page.keyboard.type("Keyboard news for {{ member.first_name }}")
    body = page.get_by_label("Body", exact=True)
    tab_to(page, body)
    page.keyboard.press("Control+End")
    page.keyboard.type("Typed with the keyboard alone.")
    tab_to(page, page.get_by_role("button", name="Save", exact=True), backwards=True)

    # Preview: the button shows the email as written, in the preview frame.
    tab_to(page, page.get_by_role("button", name="Preview", exact=True))
    page.keyboard.press("Enter")
    frame = page.frame_locator("iframe[title='Preview at desktop width']")
    expect(frame.get_by_text("Typed with the keyboard alone.")).to_be_visible()

    # Send now: the confirmation page, then yes, by Space on its button.
    tab_to(page, page.get_by_role("button", name="Send now…"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Send “Keyboard news for Ann” now?", level=1)).to_be_visible()
    yes = page.get_by_role("button", name="Yes, send it to 2 addresses now")
    tab_to(page, yes)
    page.keyboard.press("Space")
    expect(page.locator("#campaign-status")).to_have_text("starting")
    session.expire_all()
    campaign = session.scalars(select(Campaign)).one()
    assert campaign.status is CampaignStatus.SCHEDULED and campaign.subject == "Keyboard news for {{ member.first_name }}"
