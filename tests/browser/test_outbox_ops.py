"""Journeys: the secretary reads a caught message's HTML in the Outbox, where no script can run,
even were the sanitiser to let one through; and opens the operations page and sends a test."""

from __future__ import annotations

import re
import uuid

import pytest

from mailer import catcher
from tests.browser.conftest import expect, sign_in
from tests.web.test_outbox_web import _message, catch

HOSTILE = ('<p id="hello">Hello <b>there</b></p><script>window.__xss = 1; parent.__xss = 1;</script>'
           '<img src="x" onerror="window.__xss = 2; parent.__xss = 2">'
           '<a href="javascript:parent.__xss=3" id="j">click</a>')


def _open_caught_html(page, live_server, tmp_path, officer):
    live_server.app.config["MAIL_CATCHER"] = True
    path = tmp_path / "instance" / "outbox"
    catch(path, _message(1, subject="Hostile HTML", html=HOSTILE))
    sign_in(page, officer.email)
    page.get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Hostile HTML").click()
    expect(page.get_by_role("heading", name="Hostile HTML", level=1)).to_be_visible()
    frame_element = page.locator("iframe[title='The formatted version of this message']")
    expect(frame_element).to_have_attribute("sandbox", "")
    frame = frame_element.content_frame
    expect(frame.locator("b")).to_have_text("there")  # the HTML is shown
    return frame


def _flags(page) -> list:
    return page.evaluate("() => [window.__xss || 0]") + [page.frames[1].evaluate("() => window.__xss || 0")]


@pytest.mark.browser
def test_the_outbox_html_preview_runs_no_script(page, live_server, make_officer, tmp_path, shoot):
    officer = make_officer()
    frame = _open_caught_html(page, live_server, tmp_path, officer)
    assert frame.locator("script").count() == 0 and frame.locator("[onerror]").count() == 0  # sanitised
    page.get_by_text("Headers (").click()
    expect(page.locator("#headers dt", has_text="Message-ID")).to_be_visible()
    expect(page.get_by_role("link", name="https://example.org/news/1")).to_have_attribute("target", "_blank")
    shoot("outbox-message")
    assert _flags(page) == [0, 0]


@pytest.mark.browser
def test_the_sandbox_alone_stops_script_the_sanitiser_let_through(page, live_server, make_officer, tmp_path,
                                                                  monkeypatch):
    """The second wall, tested on its own: with sanitising switched off, the script reaches the
    frame's markup and still cannot run (sandboxed frame, CSP with no script source)."""
    from mailer.web import outbox

    monkeypatch.setattr(outbox, "sanitize_inbound_html", lambda html: html)
    officer = make_officer()
    frame = _open_caught_html(page, live_server, tmp_path, officer)
    assert frame.locator("script").count() == 1  # it is there...
    frame.locator("#j").click(force=True)        # ...a javascript: link is clicked...
    page.wait_for_timeout(300)
    assert _flags(page) == [0, 0]               # ...and nothing ran
    assert len(catcher.index(tmp_path / "instance" / "outbox")) == 1


def _relay_port(app, port: int) -> None:
    """Point the served app's Flask-Mail at `port` (it reads its settings when bound)."""
    from mailer.mail import mail

    app.config["MAIL_PORT"] = port
    mail.init_app(app)


@pytest.mark.browser
def test_the_operations_page_and_a_test_send(page, live_server, make_officer, smtp_server, shoot):
    _relay_port(live_server.app, smtp_server.port)
    # A queue no worker listens on: workers of this test process's queue (the fault suite's,
    # killed on purpose) stay registered in Redis for a while after they die.
    live_server.app.config["QUEUE_NAME"] = f"ops-{uuid.uuid4().hex}"
    officer = make_officer()
    sign_in(page, officer.email)
    page.get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", name="Operations", level=1)).to_be_visible()
    expect(page.get_by_text("No worker is running")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Send a test to")).click()
    expect(page.get_by_role("status")).to_contain_text("A test message was sent to secretary@example.org")
    assert [m["Subject"] for m in smtp_server.to("secretary@example.org")] == ["Anytown CLP: test message from Mailer"]
    shoot("operations")
    _relay_port(live_server.app, 9)  # nothing listens there
    page.get_by_role("button", name=re.compile(r"^Send a test to")).click()
    expect(page.get_by_role("alert")).to_contain_text("nothing is listening on that port")
