"""The Outbox at scale: thousands of caught messages page and search from the catcher's index,
opening no message file; a message shows its headers, clickable links and sanitised HTML."""

from __future__ import annotations

import mailbox
import time
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

import pytest

from mailer import catcher
from tests.conftest import login, next_page

MESSAGES = 3000
UNINDEXED = 200  # kept before the index existed: indexed once, on the first look


def _quick(n: int, to: str | None = None) -> bytes:
    """A plain caught message, made fast (thousands of them)."""
    return (f"From: Anytown CLP <secretary@example.org>\r\nTo: {to or f'member{n}@example.org'}\r\n"
            f"Subject: Bulletin number {n}\r\nDate: Thu, 26 Nov 2026 18:00:00 +0000\r\n"
            f"Message-ID: <{n}@anytown.example>\r\n\r\nHello {n}.\r\n").encode()


def _message(n: int, to: str | None = None, subject: str | None = None, html: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = "Anytown CLP <secretary@example.org>", to or f"member{n}@example.org"
    msg["Subject"] = subject or f"Bulletin number {n}"
    msg["Date"] = "Thu, 26 Nov 2026 18:00:00 +0000"
    msg["Message-ID"] = f"<{n}@anytown.example>"
    msg.set_content(f"Hello {n}. Read more at https://example.org/news/{n} (not javascript:alert(1)).")
    if html:
        msg.add_alternative(html, subtype="html")
    return bytes(msg)


def catch(path: Path, raw: bytes) -> None:
    """Keep a message as the running catcher does (its own handler: the Maildir and the index)."""
    envelope = SimpleNamespace(mail_from="bounces@example.org", rcpt_tos=["x@example.org"], original_content=raw)
    step = catcher._KeepInMaildir(path).handle_DATA(None, None, envelope)
    try:  # driven by hand, not asyncio.run: a browser test's thread already runs Playwright's loop
        step.send(None)
    except StopIteration:
        return
    raise AssertionError("the handler waited on something")


@pytest.fixture
def outbox(make_app, make_officer, tmp_path):
    app = make_app(MAIL_CATCHER=True)
    path = tmp_path / "instance" / "outbox"
    with app.app_context():
        email = make_officer().email
        for n in range(MESSAGES):  # as the running catcher keeps them (see catch(): no asyncio.run)
            catch(path, _quick(n, to="needle@example.org" if n % 500 == 7 else None))
        box = mailbox.Maildir(path)
        for n in range(MESSAGES, MESSAGES + UNINDEXED):
            box.add(_quick(n))
        client = app.test_client()
        login(client, email)
        client.path = path
        yield client


@pytest.fixture
def file_reads(monkeypatch):
    """How many message files each request opens (headers or whole)."""
    reads = {"head": 0, "whole": 0}
    head, whole = catcher.read_head, catcher.read

    def counting_head(*args):
        reads["head"] += 1
        return head(*args)

    def counting_whole(*args):
        reads["whole"] += 1
        return whole(*args)

    monkeypatch.setattr(catcher, "read_head", counting_head)
    monkeypatch.setattr(catcher, "read", counting_whole)
    return reads


def timed_get(client, url: str) -> tuple[str, float]:
    """A benchmark-style helper: the page and how long it took (printed, not asserted: the machine is shared)."""
    started = time.perf_counter()
    response = client.get(url)
    took = time.perf_counter() - started
    assert response.status_code == 200
    print(f"\n{url}: {took * 1000:.0f} ms")
    return response.get_data(as_text=True), took


def test_pages_and_searches_read_the_index_not_the_files(outbox, file_reads):
    page, _ = timed_get(outbox, "/outbox/")  # the first look indexes the messages kept before the index
    assert file_reads == {"head": UNINDEXED, "whole": 0}
    assert f"{MESSAGES + UNINDEXED} messages" in page and 'rel="next"' in page
    assert f"Bulletin number {MESSAGES + UNINDEXED - 1}<" in page  # newest first
    file_reads.update(head=0, whole=0)
    second = next_page(page)
    for url in ("/outbox/", second, "/outbox/?last=1"):
        page, _ = timed_get(outbox, url)
        if url == second:
            assert f"Bulletin number {MESSAGES + UNINDEXED - 1}<" not in page and 'rel="prev"' in page
    assert "Bulletin number 0<" in page and 'rel="next"' not in page  # the last page ends with the oldest
    page, _ = timed_get(outbox, "/outbox/?q=needle")
    assert file_reads == {"head": 0, "whole": 0}  # bounded: no message file opened, however many there are
    assert "6 messages matching" in page and page.count("needle@example.org") == 6
    page, _ = timed_get(outbox, "/outbox/?q=Bulletin+number+2999")
    assert "1 message matching" in page and "Bulletin number 2999<" in page
    assert "No message matches" in outbox.get("/outbox/?q=nothing-like-it").get_data(as_text=True)


def test_a_message_kept_while_the_page_was_open_appears(make_app, make_officer, tmp_path):
    app = make_app(MAIL_CATCHER=True)
    path = tmp_path / "instance" / "outbox"
    with app.app_context():
        email = make_officer().email
        catch(path, _quick(1))
        client = app.test_client()
        login(client, email)
        assert "Bulletin number 1<" in client.get("/outbox/").get_data(as_text=True)
        catch(path, _message(2, subject="Just now"))
        mailbox.Maildir(path).add(_message(3, subject="Dropped in by hand"))
        page = client.get("/outbox/").get_data(as_text=True)
        assert "Just now" in page and "Dropped in by hand" in page and "3 messages" in page


def test_a_message_shows_headers_clickable_links_and_sanitised_sandboxed_html(make_app, make_officer, tmp_path):
    app = make_app(MAIL_CATCHER=True)
    path = tmp_path / "instance" / "outbox"
    with app.app_context():
        email = make_officer().email
        catch(path, _message(1, html='<p>Hi <b>there</b><script>window.__xss=1</script>'
                                     '<img src=x onerror="window.__xss=2"><a href="javascript:alert(3)">j</a></p>'))
        client = app.test_client()
        login(client, email)
        key = catcher.index(path)[0]["key"]
        page = client.get(f"/outbox/{key}").get_data(as_text=True)
        assert '<a href="https://example.org/news/1" rel="nofollow" target="_blank">https://example.org/news/1</a>' in page
        assert 'href="javascript' not in page
        assert "<dt>Message-ID</dt><dd>&lt;1@anytown.example&gt;</dd>" in page and "<dt>X-Envelope-To</dt>" in page
        assert f'<iframe sandbox="" src="/outbox/{key}/html"' in page
        framed = client.get(f"/outbox/{key}/html")
        csp = framed.headers["Content-Security-Policy"]
        assert "sandbox" in csp and "default-src 'none'" in csp and "script" not in csp
        body = framed.get_data(as_text=True)
        assert "<b>there</b>" in body and "<script" not in body and "onerror" not in body and "javascript:" not in body
        assert client.get("/outbox/no-such-key/html").status_code == 404
