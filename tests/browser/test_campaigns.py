"""Journey: compose a bulletin from a starter, watch the live count and preview, send a test,
send it for real through a real RQ worker and SMTP server, pause, resume, and watch it finish."""

from __future__ import annotations

import re
import threading
import traceback

import pytest
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from mailer.models import Role
from tests.browser.conftest import LiveServer, expect, sign_in
from tests.web.test_campaigns_web import clear_queue


@pytest.fixture
def live_server(make_app, app, smtp_server):
    """The conftest's live server, but sending through the test SMTP server."""
    server = LiveServer(make_app(WTF_CSRF_ENABLED=True, MAIL_PORT=smtp_server.port))
    server.start()
    yield server
    server.stop()
    if server.errors:
        pytest.fail("the server raised:\n" + "\n".join(server.errors), pytrace=False)


class _ThreadWorker(SimpleWorker):
    """An RQ worker that can run in a thread: no signal handlers, a timer for job timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


class BackgroundWorker:
    """Works the live server's queue in a thread once started, as `python worker.py` would."""

    def __init__(self, app):
        self.app, self.errors = app, []
        self._stop, self._thread = threading.Event(), None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rq-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from mailer.queue import get_queue, redis_connection

        with self.app.app_context():
            while not self._stop.is_set():
                try:
                    _ThreadWorker([get_queue()], connection=redis_connection()).work(burst=True)
                except Exception:
                    self.errors.append(traceback.format_exc())
                self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


@pytest.fixture
def worker(live_server):
    clear_queue()  # within the `app` fixture's context, on the same Redis and queue
    background = BackgroundWorker(live_server.app)
    yield background
    background.stop()
    assert not background.errors, background.errors


@pytest.mark.browser
def test_compose_preview_test_send_and_send_a_bulletin(page, shoot, worker, smtp_server, make_officer, make_branch,
                                                       make_member):
    officer = make_officer("secretary@example.org")
    riverside = make_branch("Riverside")
    make_member(first_name="Ada", last_name="Lovelace", email="ada@example.org", branch=riverside, ward="Castle")
    make_member(first_name="Grace", last_name="Hopper", email="grace@example.org", branch=riverside, ward="Castle")
    make_member(first_name="Alan", last_name="Turing", email="alan@example.org", branch=riverside, ward="Abbey")
    make_member(first_name="Quiet", last_name="Member", email="quiet@example.org", branch=riverside, ward="Abbey",
                bulletins_consent=False)

    sign_in(page, officer.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()
    expect(page.get_by_text("News, campaign sessions and dates for the week ahead.")).to_be_visible()
    page.get_by_role("radio", name=re.compile(r"^Weekly bulletin")).check()
    page.get_by_role("button", name="Create the draft").click()

    # The composer, filled from the starter, with the live count and previews.
    expect(page.get_by_role("heading", name="Compose: Weekly bulletin", level=1)).to_be_visible()
    expect(page.get_by_label("Subject", exact=True)).to_have_value("This week in {{ org_name }}")
    count = page.locator("#recipient-count")
    expect(count).to_have_text("4 members match; 3 addresses will receive it.")
    desktop = page.frame_locator('iframe[name="preview-desktop"]')
    phone = page.frame_locator('iframe[name="preview-phone"]')
    expect(desktop.get_by_text("Dear Jane,")).to_be_visible()  # the sample member

    # The count follows the filters as they are ticked, before anything is saved.
    segment = page.locator("#segment")
    segment.get_by_role("group", name="Wards").get_by_label("Castle").check()
    expect(count).to_have_text("2 members match; 2 addresses will receive it.")
    page.get_by_role("radio", name="Notice").check()
    expect(count).to_have_text("2 members match; 2 addresses will receive it.")
    segment.get_by_role("group", name="Wards").get_by_label("Castle").uncheck()
    expect(count).to_have_text("4 members match; 4 addresses will receive it.")  # notices: no consent needed
    page.get_by_role("radio", name="Bulletin").check()
    expect(count).to_have_text("4 members match; 3 addresses will receive it.")

    # The preview follows the body as it is typed, at both widths.
    body = page.get_by_label("Body", exact=True)
    body.fill("Dear {{ member.first_name }},\n\nCanvassing on Saturday in {{ member.ward }}.\n\nThe Secretary")
    expect(desktop.get_by_text("Canvassing on Saturday in Castle.")).to_be_visible()
    expect(phone.get_by_text("Canvassing on Saturday in Castle.")).to_be_visible()
    # A misspelt name shows the problem, with its line, in the preview.
    body.fill("Dear {{ member.frist_name }},\n\nCanvassing on Saturday.")
    expect(desktop.get_by_text("This campaign cannot be shown yet")).to_be_visible()
    expect(desktop.get_by_text(re.compile(r"body, line 1: .*frist_name"))).to_be_visible()
    body.fill("Dear {{ member.first_name }},\n\nCanvassing on Saturday in {{ member.ward }}.\n\nThe Secretary")
    expect(desktop.get_by_text("Canvassing on Saturday in Castle.")).to_be_visible()

    # Preview as a real member, found by name.
    page.get_by_label("Find a member").fill("Lovelace")
    expect(page.get_by_label("Member", exact=True)).to_have_value(re.compile(r"^\d+$"))
    expect(desktop.get_by_text("Dear Ada,")).to_be_visible()
    expect(phone.get_by_text("Dear Ada,")).to_be_visible()
    page.get_by_label("Subject", exact=True).fill("This week: canvassing, {{ member.first_name }}")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.locator("#problems")).to_have_text("No problems: the campaign renders for every member.")
    expect(page.locator("#preview-subject")).to_have_text("This week: canvassing, Ada")
    expect(desktop.get_by_text("Dear Ada,")).to_be_visible()  # the saved version, as Ada
    page.set_viewport_size({"width": 1680, "height": 1000})
    shoot("campaign-composer")
    page.set_viewport_size({"width": 1280, "height": 900})
    shoot("campaign-composer-1280")

    # The plain-text alternative.
    text = page.request.get(page.get_by_role("link", name="Plain-text version").get_attribute("href"))
    assert text.ok and "Dear Ada," in text.text() and "Canvassing on Saturday in Castle." in text.text()

    # A test goes to the officer only.
    page.get_by_role("button", name="Test send to me").click()
    expect(page.get_by_role("status").filter(has_text="Test sent to secretary@example.org")).to_be_visible()
    assert [rcpts for _f, rcpts in smtp_server.envelopes] == [["secretary@example.org"]]
    assert smtp_server.messages[0]["Subject"] == "This week: canvassing, Ada"

    # Send now: first the confirmation page, with the email as a real recipient sees it.
    page.get_by_role("button", name="Send now…").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Send “This week: canvassing, \w+” now\?$"))).to_be_visible()
    expect(page.locator("#confirm-addresses")).to_have_text("3")
    page.get_by_role("button", name="Yes, send it to 3 addresses now").click()
    expect(page.get_by_role("heading", name="Weekly bulletin", level=1)).to_be_visible()
    expect(page.locator("#campaign-status")).to_have_text("starting")  # not "scheduled": it was sent now

    # Pause before the worker starts it, then resume: still nothing sent twice.
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#campaign-status")).to_have_text("paused")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#campaign-status")).to_have_text("starting")

    # The worker sends; the page follows by itself until the send is finished.
    worker.start()
    expect(page.locator("#progress-percent")).to_have_text("100%", timeout=20_000)
    expect(page.locator("#campaign-status")).to_have_text("sent")
    expect(page.locator("#count-sent")).to_have_text("3")
    expect(page.locator("#progress-status")).to_have_text("3 of 3 sent: finished.")
    web_link = page.locator('a[href*="/w/"]')
    expect(web_link).to_be_visible()
    expect(page.get_by_text("No failed deliveries.")).to_be_visible()
    shoot("campaign-page-sent")
    sent = sorted(rcpts[0] for _f, rcpts in smtp_server.envelopes[1:])
    assert sent == ["ada@example.org", "alan@example.org", "grace@example.org"]
    by_address = {rcpts[0]: m for m, (_f, rcpts) in zip(smtp_server.messages, smtp_server.envelopes)}
    assert by_address["grace@example.org"]["Subject"] == "This week: canvassing, Grace"

    # The list shows it sent.
    page.get_by_role("link", name="← Campaigns").click()
    row = page.get_by_role("row").filter(has_text="Weekly bulletin")
    expect(row).to_contain_text("sent")
    expect(row).to_contain_text("3 / 3")
    shoot("campaigns-list")

    # The web version: the bulletin for any reader, with nobody's name in it.
    page.go_back()
    web_link.click()
    expect(page.get_by_text("Dear member,")).to_be_visible()
    expect(page.get_by_text("Canvassing on Saturday in .")).to_be_visible()


@pytest.mark.browser
def test_a_branch_secretarys_notice_goes_to_their_branch_and_the_page_follows_it(
        page, shoot, worker, smtp_server, make_officer, make_branch, make_member):
    north = make_branch("North")
    secretary = make_officer("north@example.org", role=Role.BRANCH_SECRETARY, branch=north)
    for i in range(4):
        make_member(first_name=f"N{i}", email=f"n{i}@example.org", branch=north)
    make_member(first_name="Elsewhere", email="else@example.org")

    sign_in(page, secretary.email)
    page.goto("/campaigns/")
    # A notice of the branch's own (a meeting's notice goes from its page; this is any other notice).
    page.get_by_role("radio", name=re.compile(r"^Blank")).check()
    page.get_by_label("Stream (for a blank campaign)").select_option("notices")
    page.get_by_role("button", name="Create the draft").click()
    expect(page.get_by_text("a branch secretary's campaigns go to their own branch")).to_be_visible()
    expect(page.locator("#recipient-count")).to_have_text("4 members match; 4 addresses will receive it.")
    page.get_by_label("Subject", exact=True).fill("North branch meeting: {{ org_name }}")
    page.get_by_label("Body", exact=True).fill("Dear {{ member.first_name }},\n\nThe branch meets on Thursday.\n")
    page.get_by_role("button", name="Send now…").click()
    expect(page.locator("#confirm-subject")).to_have_text("North branch meeting: Anytown CLP")
    page.get_by_role("button", name="Yes, send it to 4 addresses now").click()
    expect(page.locator("#campaign-status")).to_have_text("starting")
    expect(page.locator("#progress-status")).to_have_text("Starting: the recipients are being chosen.")
    expect(page.locator("#progress-percent")).to_have_text("0%")
    expect(page.locator("dl.details")).to_contain_text("North branch meeting: Anytown CLP")  # saved, then sent
    expect(page.locator("dl.details")).to_contain_text("branch North")
    shoot("campaign-page-waiting")
    worker.start()
    expect(page.locator("#campaign-status")).to_have_text("sent", timeout=20_000)
    expect(page.locator("#progress-percent")).to_have_text("100%")
    assert sorted(r[0] for _f, r in smtp_server.envelopes) == [f"n{i}@example.org" for i in range(4)]
    assert {m["Subject"] for m in smtp_server.messages} == {"North branch meeting: Anytown CLP"}
    # Finished: pause is refused, and the buttons are gone.
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel the send")).to_have_count(0)
