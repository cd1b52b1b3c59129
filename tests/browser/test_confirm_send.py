"""Journey: before a mass send, the secretary sees the email as a real member will (desktop and
phone), how many it goes to, on which stream, and who is left out and why; nothing goes until
they say yes on that page."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.db import session
from mailer.models import Campaign, CampaignStatus, EmailHealth
from tests.browser.conftest import expect, sign_in
from tests.web.test_campaigns_web import clear_queue


@pytest.mark.browser
def test_a_mass_send_is_confirmed_with_the_real_email_and_who_is_left_out(page, shoot, make_officer, make_member):
    clear_queue()
    officer = make_officer("secretary@example.org")
    make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    make_member(first_name="Bob", last_name="Baker", email="bob@example.org")
    make_member(first_name="Hal", email="hal@example.org", email_health=EmailHealth.ON_HOLD)
    make_member(first_name="Colin", email="colin@example.org", bulletins_consent=False)
    sign_in(page, officer.email)

    page.goto("/campaigns/")
    page.get_by_role("radio", name=re.compile(r"^Blank")).check()
    page.get_by_role("button", name="Create the draft").click()
    page.get_by_label("Subject", exact=True).fill("News for {{ member.first_name }}")
    page.get_by_role("button", name="Send now…").click()

    # The confirmation: the subject and the email are Ann's, the first real recipient.
    expect(page.get_by_role("heading", name="Send “News for Ann” now?", level=1)).to_be_visible()
    expect(page.locator("#confirm-addresses")).to_have_text("2")
    expect(page.locator("#confirm-stream")).to_contain_text("bulletins")
    expect(page.locator("#excluded")).to_contain_text("1 member: address on hold")
    expect(page.locator("#excluded")).to_contain_text("1 member: no consent to bulletins")
    desktop = page.frame_locator("iframe[title='The email at desktop width']")
    phone = page.frame_locator("iframe[title='The email at phone width']")
    expect(desktop.get_by_text("Ann", exact=False).first).to_be_visible()
    expect(phone.get_by_text("Ann", exact=False).first).to_be_visible()
    frames = page.locator("iframe[sandbox='']")
    expect(frames).to_have_count(2)
    assert page.locator("iframe[title='The email at phone width']").bounding_box()["width"] <= 376
    shoot("confirm-send-campaign")
    assert session.scalar(select(Campaign.status)) is CampaignStatus.DRAFT  # nothing sent yet

    # At phone width the confirmation fits the screen, and its preview with it.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.get_by_role("button", name="Yes, send it to 2 addresses now")).to_be_visible()
    expect(phone.get_by_text("Ann", exact=False).first).to_be_visible()
    shoot("confirm-send-campaign-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # "No, go back" leaves it a draft; then yes sends it, and it shows as starting.
    page.get_by_role("link", name="No, go back").click()
    expect(page.get_by_role("heading", name=re.compile("^Compose"), level=1)).to_be_visible()
    page.get_by_role("button", name="Send now…").click()
    page.get_by_role("button", name="Yes, send it to 2 addresses now").click()
    expect(page.locator("#campaign-status")).to_have_text("starting")
    session.expire_all()
    assert session.scalar(select(Campaign.status)) is CampaignStatus.SCHEDULED

    page.goto("/campaigns/")
    expect(page.locator(".campaign-subject")).to_have_text("News for Jane")  # the sample member, never {{ }}


@pytest.mark.browser
def test_a_meeting_notice_is_shown_before_it_goes(page, make_officer, make_member):
    from tests.web.test_meetings_web import local

    clear_queue()
    officer = make_officer("secretary@example.org")
    make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    make_member(first_name="Pat", last_name="Post", email=None)
    sign_in(page, officer.email)
    page.goto("/meetings/")
    new = page.locator("#new-meeting")
    new.get_by_label("Title").fill("December general meeting")
    new.get_by_label("Starts").fill(local(12))
    new.get_by_label("Ends").fill(local(12, 21, 0))
    new.get_by_label("Venue", exact=True).fill("Trades Hall")
    new.get_by_role("button", name="Plan the meeting").click()
    expect(page.locator("#meeting-status")).to_have_text("planned")
    page.get_by_role("button", name="Send notice").click()
    expect(page.get_by_role("heading", name="Send the notice to the members?", level=1)).to_be_visible()
    expect(page.locator("#confirm-subject")).to_contain_text("Notice: December general meeting")
    expect(page.locator("#excluded")).to_contain_text("1 member: no email address")
    desktop = page.frame_locator("iframe[title='The email at desktop width']")
    expect(desktop.get_by_text("Ann", exact=False).first).to_be_visible()
    page.get_by_role("button", name="Yes, send the notice to 1 address").click()
    expect(page.get_by_text("The notice is on its way")).to_be_visible()
