"""No page's number of queries grows with the data (no N+1): the main pages are requested on the
benchmark's data at two sizes, and each must send the database the same number of statements."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from werkzeug.security import generate_password_hash

from mailer.bench_scale import Sizes, pages, seed
from mailer.db import engine, session
from tests.conftest import _empty_tables

MAIN_PAGES = ("dashboard", "members_first", "members_deep", "members_last", "member_search_email",
              "member_search_surname", "member_page", "segment_count", "composer", "campaign_list", "campaign_page",
              "campaign_progress", "inbox", "inbox_all", "inbox_search_no_match", "long_thread", "bounces",
              "meetings_list", "audit_log", "officers", "imports",
              # documents and downloads (h6: each read a whole register, list or font before)
              "meeting_page", "meeting_register", "minutes_page", "postal_csv", "member_export_pdf",
              # the API, with a personal token: the register comes a page at a time
              "api_meeting_register", "api_long_thread", "campaign_report_api")


def _count_queries(app, size: int) -> dict[str, int]:
    from mailer.bench_scale import _list_urls

    sizes = Sizes(members=size, deliveries=size * 3, campaigns=3, inbound=size, longest_thread=size // 2,
                  audit=size, meetings=size // 2)
    _empty_tables(app)
    session.close()
    info = seed(engine(), sizes, generate_password_hash("bench-password"))
    info.update(_list_urls(app, sizes.members))
    client = app.test_client()
    assert client.post("/login", data={"email": "secretary@clp.example.org",
                                       "password": "bench-password"}).status_code == 302
    counted = {"n": 0}

    def count(*_args, **_kw):
        counted["n"] += 1

    with app.app_context():  # the API's calls carry a personal token, as the benchmark's do
        from mailer.models import Officer
        from mailer.officers import tokens

        _token, secret = tokens.create(session.get(Officer, 1), "query counts")
        session.commit()
        session.close()
    bearer = {"Authorization": f"Bearer {secret}"}

    def request(method, url, form):
        if method.startswith("API "):
            return client.open(url, method=method[4:], json=form, headers=bearer)
        return client.open(url, method=method, data=form)

    event.listen(engine(), "before_cursor_execute", count)
    out = {}
    try:
        for name in MAIN_PAGES:
            method, url, form = pages(info)[name]
            request(method, url, form)  # once to settle caches (the FTS check, ...)
            counted["n"] = 0
            response = request(method, url, form)
            assert response.status_code == 200, (name, response.status_code)
            out[name] = counted["n"]
    finally:
        event.remove(engine(), "before_cursor_execute", count)
    return out


@pytest.mark.slow
def test_queries_per_page_do_not_grow_with_the_data(app):
    small = _count_queries(app, 120)
    large = _count_queries(app, 600)
    grew = {name: (small[name], large[name]) for name in MAIN_PAGES if large[name] != small[name]}
    assert not grew, f"queries per page grew with the data (page: (120 rows, 600 rows)): {grew}"
    assert all(n >= 1 for n in small.values())
