"""The one pager (mailer.pagination, the `pagination` macro) on lists that used to page by OFFSET or
not at all: the audit log keeps its filter from page to page; imports page instead of stopping at 100."""

from __future__ import annotations

from mailer import audit
from mailer.db import session
from mailer.models import ImportRun
from tests.conftest import login, next_page


def _in_order(pages: list[str], labels: dict) -> list:
    """The keys of `labels` in the order their text appears, page after page."""
    return [key for page in pages for key in sorted((k for k in labels if labels[k] in page),
                                                    key=lambda k: page.index(labels[k]))]


def _pages(client, url: str) -> list[str]:
    pages = []
    while url:
        pages.append(client.get(url).data.decode())
        url = next_page(pages[-1])
    return pages


def test_the_audit_log_pages_newest_first_within_its_filter(make_app, make_officer):
    app = make_app(PAGE_SIZE=2)
    with app.app_context():
        officer = make_officer()
        for n in range(5):
            audit.record("member.update", "member", 9000 + n, officer=officer)
        audit.record("campaign.create", "campaign", 1, note="not a member change", officer=officer)
        session.commit()
        client = app.test_client()
        login(client, officer.email)
        pages = _pages(client, "/audit/?action=member.")
        assert len(pages) == 3 and all("action=member." in (next_page(p) or "action=member.") for p in pages)
        assert _in_order(pages, {n: f"member {n}<" for n in range(9000, 9005)}) == [9004, 9003, 9002, 9001, 9000]
        assert not any("not a member change" in p for p in pages)


def test_imports_page_through_every_run(make_app, make_officer):
    app = make_app(PAGE_SIZE=2)
    with app.app_context():
        officer = make_officer()
        session.add_all([ImportRun(filename=f"export-{n}.csv") for n in range(5)])
        session.commit()
        client = app.test_client()
        login(client, officer.email)
        pages = _pages(client, "/imports/")
        assert len(pages) == 3
        assert _in_order(pages, {n: f"export-{n}.csv" for n in range(5)}) == [4, 3, 2, 1, 0]
