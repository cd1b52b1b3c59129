"""A NUL character typed into any field or query is refused whole, with a clear 400, on both
databases: PostgreSQL cannot hold one, and before this rule a search for "%00" was a server error."""

from __future__ import annotations

from sqlalchemy import select

from mailer.db import session
from mailer.models import Member
from tests.conftest import login

PAGES = ["/members/?q=%00", "/members/?ward=x%00", "/correspondence/?q=%00", "/campaigns/?after=%00",
         "/members/?after=%00", "/audit/?q=%00", "/meetings/?x%00=1"]


def test_nul_in_a_query_or_form_is_a_clear_400(client, make_officer):
    officer = make_officer()
    login(client, officer.email)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 400, (path, response.status_code)
        assert b"NUL character" in response.data
    created = client.post("/members/new", data={"first_name": "Ann\x00", "last_name": "Able",
                                                "email": "ann@example.org"})
    assert created.status_code == 400
    assert session.scalar(select(Member).where(Member.email == "ann@example.org")) is None
    assert client.get("/members/?q=Ann").status_code == 200  # the same page without it answers


def test_nul_in_an_api_body_or_query_is_a_problem(client, make_officer):
    from mailer.officers import tokens

    officer = make_officer()
    _token, text = tokens.create(officer, "script")
    session.commit()
    headers = {"Authorization": f"Bearer {text}"}
    for response in (client.post("/api/v1/segments/count", json={"segment": {"polling_districts": ["\x00"]}},
                                 headers=headers),
                     client.get("/api/v1/members?q=%00", headers=headers)):
        assert response.status_code == 400 and response.mimetype == "application/problem+json"
        assert "NUL" in response.get_json()["detail"]
