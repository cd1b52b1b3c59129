"""Journey: the secretary welcomes new members from the overview: the confirmation shows the
welcome as the first new member will see it, and once sent they leave the to-welcome list."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.db import session
from mailer.models import Campaign, CampaignStatus, Member, MemberStatus
from tests.browser.conftest import expect, sign_in
from tests.web.test_campaigns_web import clear_queue


@pytest.mark.browser
def test_welcome_new_members_from_the_overview(page, shoot, make_officer, make_member):
    clear_queue()
    officer = make_officer("secretary@example.org")
    make_member(first_name="Nia", last_name="Newer", email="nia@example.org", status=MemberStatus.NEW, to_welcome=True)
    make_member(first_name="Ola", last_name="Other", email="ola@example.org", status=MemberStatus.ACTIVE)
    sign_in(page, officer.email)
    page.get_by_role("link", name="Send them the welcome").click()
    expect(page.get_by_role("heading", name="Welcome new members", level=1)).to_be_visible()
    expect(page.locator("#welcome-waiting")).to_contain_text("1 member waiting for a welcome")
    page.get_by_role("button", name="Check and send the welcome").click()

    expect(page.get_by_role("heading", name=re.compile(r"^Send “Welcome to .*, Nia” now\?"), level=1)).to_be_visible()
    expect(page.locator("#confirm-addresses")).to_have_text("1")  # Ola is no newcomer
    expect(page.frame_locator("iframe[title='The email at desktop width']").get_by_text("Nia").first).to_be_visible()
    shoot("welcome-confirm")
    page.get_by_role("button", name=re.compile(r"^Yes, send it to 1 address now")).click()
    expect(page.get_by_role("status").first).to_be_visible()
    session.expire_all()
    campaign = session.scalars(select(Campaign).where(Campaign.starter == "welcome")).one()
    assert campaign.status is CampaignStatus.SCHEDULED  # approved: on its way once a worker starts it
    page.goto("/welcome/")
    expect(page.get_by_text("A welcome is on its way")).to_be_visible()
    # Nia leaves the list when the start job makes her delivery row (tests/web/test_welcome_web.py), not before.
    assert session.scalars(select(Member.to_welcome).where(Member.email == "nia@example.org")).one() is True
