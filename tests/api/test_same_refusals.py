"""One input schema per action (mailer.inputs): the page's form and the API refuse the same bad
input with the same words. Each case sends it both ways, as the same officer, and finds the API's
field message (problem+json) on the page; nothing is saved either way."""

from __future__ import annotations

import html
from datetime import timedelta

from sqlalchemy import func, select

from mailer.db import session, utcnow
from mailer.models import Campaign, CampaignStatus, Meeting, Member
from tests.api.conftest import TokenClient


def _both(signed_in, make_token) -> TokenClient:
    return TokenClient(signed_in, make_token(signed_in.officer))


def _messages(response, status: int = 422) -> dict[str, str]:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_member_update_is_refused_alike(signed_in, make_token, make_member):
    api = _both(signed_in, make_token)
    member = make_member(first_name="Ann", email="ann@example.org", membership_number="A1")
    form = {"membership_number": "A1", "first_name": "Ann", "last_name": "Member", "email": "ann@example.org",
            "status": "active", "notices_consent": "yes", "bulletins_consent": "yes", "joined_on": "", "tags": ""}
    for field, bad in (("status", "emeritus"), ("joined_on", "31/02/2020"), ("email", "not an address"),
                       ("first_name", "x" * 101)):
        etag = api.get(f"/api/v1/members/{member.id}").headers["ETag"]
        said = _messages(api.patch(f"/api/v1/members/{member.id}", json={field: bad}, headers={"If-Match": etag}))
        assert list(said) == [field]
        page = signed_in.post(f"/members/{member.id}/edit", data=form | {field: bad})
        assert page.status_code == 400
        assert said[field] in _page(page), (field, said[field])
    kept = session.get(Member, member.id)
    assert kept.status.value == "active" and kept.first_name == "Ann" and kept.email == "ann@example.org"


def test_campaign_schedule_is_refused_alike(signed_in, make_token):
    api = _both(signed_in, make_token)
    made = api.post("/api/v1/campaigns", json={"name": "December bulletin"})
    assert made.status_code == 201, made.data
    campaign_id = made.get_json()["id"]
    for bad in ("next Tuesday", "12/31/2027 19:30", ""):
        said = _messages(api.post(f"/api/v1/campaigns/{campaign_id}/schedule", json={"at": bad}))
        assert list(said) == ["at"]
        page = signed_in.post(f"/campaigns/{campaign_id}/schedule", data={"send_at": bad}, follow_redirects=True)
        assert said["at"] in _page(page), (bad, said["at"])
    assert session.get(Campaign, campaign_id).status is CampaignStatus.DRAFT


def test_meeting_create_is_refused_alike(signed_in, make_token):
    api = _both(signed_in, make_token)
    starts = (utcnow() + timedelta(days=30)).strftime("%d/%m/%Y 19:30")
    good = {"title": "General meeting", "kind": "general", "starts_at": starts, "venue_name": "Trades Hall"}
    for field, bad in (("kind", "picnic"), ("starts_at", "next Tuesday"), ("starts_at", ""), ("quorum", "a dozen"),
                       ("title", "x" * 201)):
        said = _messages(api.post("/api/v1/meetings", json=good | {field: bad}))
        assert list(said) == [field]
        page = signed_in.post("/meetings/new", data=good | {"body": "clp", field: bad})
        assert page.status_code == 400
        assert said[field] in _page(page), (field, said[field])
        assert 'value="Trades Hall"' in _page(page)  # what was typed is kept
    assert session.scalar(select(func.count()).select_from(Meeting)) == 0
