"""Real-browser journeys: Playwright driving Debian's Chromium against the app served by a real
WSGI server in a thread, on the same database the data fixtures write to.

Without /usr/bin/chromium or the playwright package the journeys are skipped, saying why, unless
MAILER_TEST_REQUIRE_BROWSER=1 (CI sets it), when they fail instead: a missing browser must not pass.
Screenshots go to MAILER_TEST_SCREENSHOTS, or to a temporary folder printed at the end of the run.
"""

from __future__ import annotations

import os
import re
import threading
import traceback
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import TEST_PASSWORD

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture then skips (or fails) every journey before it runs
    expect = None

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]


def _browser_required() -> bool:
    """True when MAILER_TEST_REQUIRE_BROWSER=1 was set for this run (MAILER_TEST_* survive the
    clean-up of settings in tests/conftest.py)."""
    return os.environ.get("MAILER_TEST_REQUIRE_BROWSER") == "1"


def _why_no_browser() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    reason = _why_no_browser()
    if reason is not None:
        if _browser_required():
            pytest.fail(f"MAILER_TEST_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        print(f"\nSkipping the browser journeys: {reason}")
        pytest.skip(f"browser journeys skipped: {reason}")
    if "chromium" in _RUNNING:  # another folder's tests import this fixture: one Playwright per process
        yield _RUNNING["chromium"]
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = _RUNNING["chromium"] = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        del _RUNNING["chromium"]
        chromium.close()


_RUNNING: dict = {}


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory, request) -> Path:
    folder = os.environ.get("MAILER_TEST_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    yield path
    if reporter is not None and any(path.iterdir()):
        reporter.write_line(f"browser screenshots: {path}")


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.errors: list[str] = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="live-server", daemon=True)

    def _wsgi(self, environ, start_response):
        # TESTING makes Flask re-raise a view's exception; keep it so the test fails with it.
        try:
            return self.app(environ, start_response)
        except Exception:
            self.errors.append(traceback.format_exc())
            raise

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


@pytest.fixture
def live_server(make_app, app):
    """The app, with CSRF checks on, served over HTTP on a free loopback port."""
    server = LiveServer(make_app(WTF_CSRF_ENABLED=True))
    server.start()
    yield server
    server.stop()
    if server.errors:
        pytest.fail("the server raised:\n" + "\n".join(server.errors), pytrace=False)


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) and page, with relative URLs going to the live server."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                  locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def shoot(page, screenshot_dir):
    """shoot("name"): a full-page screenshot of the current page into the screenshot folder."""

    def take(name: str) -> Path:
        path = screenshot_dir / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page, email: str, password: str = TEST_PASSWORD) -> None:
    """Sign in through the login page, as an officer would, and wait for the overview."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
