"""Journey: the weekly routine has made this week's bulletin; the secretary finds it on the
overview, finishes it (the news), sees it as a member will on the confirmation page, with what's
on from the coming meetings, and sends it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailer import bulletin, jobs
from mailer.db import session, utcnow
from mailer.meetings import service as meetings
from mailer.models import Campaign, CampaignStatus
from tests.browser.conftest import expect, sign_in
from tests.web.test_campaigns_web import clear_queue


@pytest.mark.browser
def test_the_secretary_finishes_and_sends_this_weeks_bulletin(page, shoot, make_officer, make_member):
    clear_queue()
    officer = make_officer("secretary@example.org")
    make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    make_member(first_name="Bob", last_name="Baker", email="bob@example.org")
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=4)
    meetings.create(officer, {"title": "Winter <b>campaign</b> {{ org_name }} planning", "kind": "general",
                              "starts_at": starts, "ends_at": starts + timedelta(hours=2), "venue_name": "Trades Hall"})
    session.commit()
    assert jobs.make_weekly_bulletin(bulletin.period()).startswith("made campaign")  # the routine's job, as it runs

    sign_in(page, officer.email)
    card = page.locator("#needs-bulletin")
    expect(card).to_contain_text("What's on is filled in from the coming meetings")
    shoot("overview-weekly-bulletin")
    card.get_by_role("link", name="This week's bulletin is ready to finish").click()
    expect(page.get_by_role("heading", name=re.compile("^Compose"), level=1)).to_be_visible()
    body = page.get_by_label("Body", exact=True)
    expect(body).to_have_value(re.compile(r"\{\{ whats_on \}\}"))
    body.fill(body.input_value().replace("Write the week's news here.", "Our canvass in Castle ward found 40 new "
                                                                        "supporters."))
    page.get_by_role("button", name="Send now…").click()

    expect(page.get_by_role("heading", name="Send “This week in Anytown CLP” now?", level=1)).to_be_visible()
    expect(page.locator("#confirm-addresses")).to_have_text("2")
    desktop = page.frame_locator("iframe[title='The email at desktop width']")
    # What's on, from the meeting: its title as the officer wrote it, shown as text.
    expect(desktop.get_by_text("Winter <b>campaign</b> {{ org_name }} planning", exact=False)).to_be_visible()
    expect(desktop.get_by_text("40 new supporters", exact=False)).to_be_visible()
    expect(desktop.get_by_text("Dear Ann", exact=False)).to_be_visible()
    page.get_by_role("button", name="Yes, send it to 2 addresses now").click()
    expect(page.locator("#campaign-status")).to_have_text("starting")
    session.expire_all()
    campaign = session.scalars(select(Campaign).where(Campaign.starter == "weekly-bulletin")).one()
    assert campaign.status is CampaignStatus.SCHEDULED
    page.goto("/")
    expect(page.locator("#needs-bulletin")).to_contain_text("This week's bulletin:")
    expect(page.locator("#needs-bulletin")).not_to_contain_text("ready to finish")
