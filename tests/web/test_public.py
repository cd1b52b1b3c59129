"""Pages members reach from their email: one-click unsubscribe (RFC 8058), the preferences page,
the consent log, and the web version and archive of bulletins."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.compose import drafts
from mailer.db import session
from mailer.models import CampaignStatus, ConsentEvent, Member, Stream
from mailer.compose.tokens import preferences_token


@pytest.fixture
def csrf_client(make_app):
    """A client of an app with CSRF on, as in production."""
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        yield app.test_client()


@pytest.fixture
def bulletin(app, make_officer):
    campaign = drafts.create(make_officer(), "weekly-bulletin")
    session.commit()
    return campaign


def test_one_click_post_needs_no_cookie_or_csrf_and_answers_200(csrf_client, make_member, bulletin):
    member = make_member()
    token = preferences_token(member, bulletin.id)
    response = csrf_client.post(f"/u/{token}", data="List-Unsubscribe=One-Click",
                                content_type="application/x-www-form-urlencoded", headers={"Cookie": ""})
    assert response.status_code == 200 and "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    session.expire_all()
    member = session.get(Member, member.id)
    assert member.bulletins_consent is False and member.notices_consent is True  # bulletins only
    [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.member_id == member.id)).all()
    assert (event.stream, event.granted, event.source, event.campaign_id) == ("bulletins", False, "one-click",
                                                                              bulletin.id)
    again = csrf_client.post(f"/u/{token}", data="List-Unsubscribe=One-Click",
                             content_type="application/x-www-form-urlencoded")
    assert again.status_code == 200
    assert session.scalar(select(ConsentEvent.id).where(ConsentEvent.id != event.id)) is None  # idempotent


def test_one_click_from_a_notice_stops_notices(client, make_member, make_officer):
    notice = drafts.create(make_officer(), "meeting-notice")
    session.commit()
    member = make_member()
    assert notice.stream is Stream.NOTICES
    client.post(f"/u/{preferences_token(member, notice.id)}", data={"List-Unsubscribe": "One-Click"})
    session.expire_all()
    assert session.get(Member, member.id).notices_consent is False


def test_get_never_unsubscribes_and_shows_the_choices(client, make_member, bulletin):
    member = make_member()
    page = client.get(f"/u/{preferences_token(member, bulletin.id)}")
    assert page.status_code == 200 and b"Bulletins and meeting notices" in page.data
    session.expire_all()
    assert session.get(Member, member.id).bulletins_consent is True


@pytest.mark.parametrize("token", ["nonsense", "WyJhIiwxXQ.forged-signature"])
def test_bad_tokens_change_nothing(client, make_member, token):
    member = make_member()
    assert client.post(f"/u/{token}").status_code == 404
    assert client.get(f"/u/{token}").status_code == 404
    session.expire_all()
    assert session.get(Member, member.id).bulletins_consent is True


def test_preferences_form_objects_to_all_email_and_back(csrf_client, make_member, bulletin):
    member = make_member()
    token = preferences_token(member, bulletin.id)
    page = csrf_client.get(f"/u/{token}").data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert csrf_client.post(f"/u/{token}/preferences", data={"choice": "none"}).status_code == 400  # no token
    response = csrf_client.post(f"/u/{token}/preferences", data={"choice": "none", "csrf_token": csrf})
    assert response.status_code == 200 and b"Saved" in response.data
    session.expire_all()
    member = session.get(Member, member.id)
    assert (member.bulletins_consent, member.notices_consent) == (False, False)  # notices go by post
    csrf_client.post(f"/u/{token}/preferences", data={"choice": "notices", "csrf_token": csrf})
    session.expire_all()
    member = session.get(Member, member.id)
    assert (member.bulletins_consent, member.notices_consent) == (False, True)
    events = session.scalars(select(ConsentEvent).where(ConsentEvent.member_id == member.id)).all()
    assert [(e.stream, e.granted) for e in events] == [("bulletins", False), ("notices", False), ("notices", True)]


def test_web_version_has_no_personal_data_and_only_once_sent(client, bulletin, make_member):
    make_member(first_name="Zebedee")
    assert client.get(f"/w/{bulletin.web_token}").status_code == 404  # a draft is not published
    bulletin.status = CampaignStatus.SENT
    session.commit()
    page = client.get(f"/w/{bulletin.web_token}")
    text = page.data.decode()
    assert page.status_code == 200 and "Dear member," in text
    assert "Zebedee" not in text and "Jane" not in text
    assert "/u/preview" in text  # no member's real preference link
    assert "script-src" not in page.headers["Content-Security-Policy"]


def test_archive_lists_sent_clp_bulletins_only(client, bulletin, make_officer):
    draft = drafts.create(make_officer("other@example.org"), "weekly-bulletin")
    drafts.update(draft.created_by, draft, {"subject": "Still a draft"})
    drafts.update(bulletin.created_by, bulletin, {"subject": "Sent bulletin of the week"})
    bulletin.status = CampaignStatus.SENT
    session.commit()
    page = client.get("/archive").data.decode()
    assert "Sent bulletin of the week" in page and "Still a draft" not in page
    drafts.update(draft.created_by, draft, {"subject": "News from {{ org_name }}"})
    draft.status = CampaignStatus.SENT
    session.commit()
    assert "News from Anytown CLP" in client.get("/archive").data.decode()  # subjects rendered, not raw


def test_members_pages_carry_the_organisation_not_the_officers_tool(app, client, make_officer, make_member):
    from datetime import timedelta

    from mailer.db import utcnow
    from mailer.meetings import service as meetings
    from mailer.models import MeetingKind

    app.config.update(ORG_NAME="Riverside CLP", ORG_COLOUR="#1a5fb4", REPLY_ADDRESS="sec@riverside.example")
    member = make_member()
    starts = utcnow() + timedelta(days=30)
    meeting, _ = meetings.create(make_officer(), {"title": "General meeting", "kind": MeetingKind.GENERAL.value,
                                                  "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                                                  "venue_name": "Hall"})
    session.commit()
    pages = [f"/u/{preferences_token(member, None)}", f"/r/{meetings.response_token(meeting.id, member)}/attending",
             "/archive", "/r/nonsense/apologies", "/u/preview"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert "Riverside CLP" in html.split("</header>")[0], path
        assert "Mailer" not in html and "special category" not in html, path
        assert "/org.css" in html and "sec@riverside.example" in html, path
    css = client.get("/org.css")
    assert css.mimetype == "text/css" and "--org: #1a5fb4; --org-ink: #ffffff;" in css.get_data(as_text=True)


@pytest.mark.parametrize(("setting", "expected"), [
    ("#c8102e", ("#c8102e", "#ffffff")), ("#FC0", ("#ffcc00", "#1d1d1f")), ("#ffffff", ("#ffffff", "#1d1d1f")),
    ("red; } body { display: none", ("#c8102e", "#ffffff")), ("", ("#c8102e", "#ffffff"))])
def test_the_organisations_colour_is_checked_and_given_readable_text(setting, expected):
    from mailer.web.public import org_colours

    assert org_colours(setting) == expected
