"""The README's screenshots, taken by this journey through the main screens of a demo CLP.

Every run walks the screens and checks each shows what its screenshot is meant to show; the
pictures are written to tests/screenshots/ (the folder the README links) only when
MAILER_TEST_UPDATE_SCREENSHOTS=1 asks, so they can be brought up to date in one command without
changing on every run:

    MAILER_TEST_UPDATE_SCREENSHOTS=1 pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mailer import bulletin, demo
from mailer.db import session
from tests.browser.conftest import expect, sign_in
from tests.browser.test_accessibility import app, seed  # noqa: F401 - the app fixture, on a real SMTP server

pytestmark = pytest.mark.browser

FOLDER = Path(__file__).resolve().parents[1] / "screenshots"
README = Path(__file__).resolve().parents[2] / "README.md"
SCREENS = ("overview", "members", "composer", "confirmation", "thread", "meeting", "phone-members")


def test_the_readme_links_every_screenshot_and_each_is_there():
    linked = set(re.findall(r"\(tests/screenshots/([a-z-]+)\.png\)", README.read_text(encoding="utf-8")))
    assert linked == set(SCREENS)
    for name in SCREENS:
        data = (FOLDER / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, name


def test_the_main_screens(page, live_server, make_branch, make_officer, screenshot_dir):
    update = os.environ.get("MAILER_TEST_UPDATE_SCREENSHOTS") == "1"
    folder = FOLDER if update else screenshot_dir

    def shot(name: str, whole: bool = False) -> None:
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(folder / f"{name}.png"), full_page=whole)

    demo.seed(members=60, echo=lambda *_: None)
    session.commit()
    secretary, _branch_secretary, shared, _clp_only, _public = seed(make_branch, make_officer)
    bulletin.make(None)  # as the weekly routine makes it
    session.commit()
    urls = dict(zip(("overview", "members", "member", "edit", "campaigns", "composer", "confirmation", "campaign",
                     "inbox", "thread", "bounces", "meetings", "meeting"), shared))

    sign_in(page, secretary.email)
    expect(page.locator("#needs-correspondence")).to_be_visible()
    expect(page.locator("#needs-bulletin")).to_contain_text("This week's bulletin is ready to finish")
    expect(page.locator("#chart-members svg.bars rect")).not_to_have_count(0)
    shot("overview", whole=True)  # what needs me, and the charts beneath

    page.goto(urls["members"])
    expect(page.get_by_role("heading", name="Members", level=1)).to_be_visible()
    expect(page.locator("table.list tbody tr")).not_to_have_count(0)
    shot("members")

    page.goto(urls["composer"])
    expect(page.get_by_role("heading", name=re.compile("^Compose"), level=1)).to_be_visible()
    shot("composer")

    page.goto(urls["confirmation"])
    expect(page.locator("#confirm-send")).to_be_visible()
    shot("confirmation")

    page.goto(urls["thread"])
    expect(page.locator("ol.entries")).to_be_visible()
    shot("thread")

    page.goto(urls["meeting"])
    expect(page.get_by_role("navigation", name="This meeting")).to_be_visible()
    shot("meeting")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(urls["members"])
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot("phone-members")
    for name in SCREENS:
        assert (folder / f"{name}.png").stat().st_size > 10_000, name
