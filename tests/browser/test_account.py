"""Journey: an officer makes an API token on their account page, uses it once, and revokes it;
and reads the API's description page."""

from __future__ import annotations

import json
import re
from urllib.request import Request, urlopen

import pytest

from tests.browser.conftest import expect, sign_in


def _members_with(base: str, token: str) -> int:
    """The API's answer to a script holding `token` (the status code)."""
    request = Request(f"{base}/api/v1/members", headers={"Authorization": f"Bearer {token}"})
    try:
        with urlopen(request, timeout=10) as response:
            json.loads(response.read())
            return response.status
    except OSError as exc:  # HTTPError is one: 401 for a token that no longer works
        return getattr(exc, "code", 0)


@pytest.mark.browser
def test_make_use_and_revoke_an_api_token(page, shoot, live_server, make_officer):
    officer = make_officer("secretary@example.org", name="Sam Secretary")
    page.goto("/login")
    sign_in(page, officer.email)
    page.get_by_role("link", name=re.compile(r"^Sam Secretary")).click()  # the name in the header
    expect(page.get_by_role("heading", name="Your account", level=1)).to_be_visible()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()

    page.get_by_label("What it is for").fill("weekly bulletin script")
    page.get_by_label(re.compile(r"^Works for")).fill("30")
    page.get_by_role("button", name="Make a token").click()
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("mlr_")
    shoot("api-token-made")
    base = page.url.split("/account")[0]
    assert _members_with(base, token) == 200

    page.get_by_role("link", name="Back to your account").click()
    expect(page.get_by_role("cell", name="weekly bulletin script", exact=True)).to_be_visible()
    expect(page.get_by_text(token)).to_have_count(0)  # shown once, never again
    page.get_by_role("button", name=re.compile(r"^Revoke")).click()
    expect(page.get_by_role("status")).to_contain_text("no longer works")
    assert _members_with(base, token) == 401


@pytest.mark.browser
def test_the_api_description_reads_as_a_page(page):
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name=re.compile(r"^Mailer API"), level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="PATCH /api/v1/members/{member_id}")).to_be_visible()
    expect(page.get_by_role("link", name="openapi.json")).to_be_visible()
