"""Journey: the overview shows what needs the secretary now, and a send's progress bar moves by
itself as deliveries are made."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from mailer.db import session
from mailer.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from tests.browser.conftest import expect, sign_in
from tests.web.test_dashboard_web import _seed


@pytest.mark.browser
def test_the_overview_and_its_live_progress(page, shoot, make_officer, make_member, make_branch):
    officer = make_officer("secretary@example.org")
    _seed(make_member, make_branch("North"), officer)
    sign_in(page, officer.email)
    expect(page.locator("#needs-correspondence")).to_contain_text("1 assigned to you")
    expect(page.locator("#needs-meetings")).to_contain_text("Notice by")
    expect(page.locator("#needs-minutes")).to_contain_text("waiting for the chair's approval")
    expect(page.locator("#needs-welcome")).to_contain_text("New0 Joiner")
    expect(page.locator("#needs-on-hold")).to_contain_text("Held0 Bouncer")
    bar = page.locator(".send-progress progress")
    expect(bar).to_have_attribute("value", "50")
    shoot("overview")

    # The worker delivers the rest: the bar follows without a reload.
    sending = session.query(Campaign).filter(Campaign.status == CampaignStatus.SENDING).one()
    session.execute(update(Delivery).where(Delivery.campaign_id == sending.id)
                    .values(status=DeliveryStatus.SENT))
    sending.status = CampaignStatus.SENT
    session.commit()
    expect(bar).to_have_attribute("value", "100", timeout=10_000)
    expect(page.locator(".send-count")).to_have_text("2 of 2 sent: finished")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
