"""Every send to more than one member passes a confirmation page: the email as its first real
recipient will see it, the numbers, the stream, who is left out and why; and the POST that sends
takes only that page's token, for exactly the content that was shown."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.db import session
from mailer.models import (Campaign, CampaignStatus, EmailHealth, Meeting, MeetingStatus, MemberStatus, Role, Suppression,
                           SuppressionReason)
from mailer.sending import audience
from tests.conftest import login
from tests.web.test_campaigns_web import _form, _new, _page, _token, clear_queue


@pytest.fixture(autouse=True)
def _empty_queue(app):
    clear_queue()


def _crowd(make_member):
    """Two who receive it (one shares an address), and one for every reason to leave a member out."""
    ann = make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    make_member(first_name="Andy", last_name="Able", email="ANN@example.org")  # same address: one email
    bob = make_member(first_name="Bob", last_name="Baker", email="bob@example.org")
    make_member(first_name="Nora", email=None)
    make_member(first_name="Quentin", email="quit@example.org", status=MemberStatus.RESIGNED)
    make_member(first_name="Sue", email="sue@example.org")
    session.add(Suppression(email="sue@example.org", stream="all", reason=SuppressionReason.HARD_BOUNCE))
    make_member(first_name="Hal", email="hal@example.org", email_health=EmailHealth.ON_HOLD)
    make_member(first_name="Colin", email="colin@example.org", bulletins_consent=False)
    session.commit()
    return ann, bob


def test_audience_counts_every_exclusion_once_with_its_reason(app, make_officer, make_member):
    officer = make_officer()
    ann, _bob = _crowd(make_member)
    found = audience.audience({"statuses": ["active", "resigned"]}, audience.Stream.BULLETINS, officer)
    assert (found.members, found.addresses, found.shared) == (8, 2, 1)
    assert dict(found.excluded) == {audience.REASONS["no_email"]: 1, audience.REASONS["resigned"]: 1,
                                    audience.REASONS["suppressed"]: 1, audience.REASONS["on_hold"]: 1,
                                    audience.REASONS["no_consent_bulletins"]: 1}
    assert found.sample.id == ann.id  # a real recipient, the first
    # On the notices stream the member without bulletins consent is sent it.
    notices = audience.audience({"statuses": ["active"]}, audience.Stream.NOTICES, officer)
    assert notices.addresses == 3 and audience.REASONS["no_consent_bulletins"] not in dict(notices.excluded)


def test_send_now_shows_the_email_numbers_and_exclusions_before_anything_is_sent(signed_in, make_member):
    ann, _bob = _crowd(make_member)
    campaign_id = _new(signed_in, "")
    page = _page(signed_in.post(f"/campaigns/{campaign_id}/send",
                                data=_form(subject="News for {{ member.first_name }} from {{ org_name }}")))
    # The subject as the first real recipient reads it: no template code on the page.
    assert "News for Ann from" in page and "{{" not in page
    assert '<strong id="confirm-addresses">2</strong>' in page and 'id="confirm-members">7<' in page
    for reason in ("no email address", "address suppressed", "address on hold", "no consent to bulletins"):
        assert reason in page
    assert "bulletins (news: sent only with consent)" in page
    # Desktop and phone previews of the same email, sandboxed, as Ann sees it.
    frames = re.findall(r'<iframe title="[^"]+" sandbox="" src="([^"]+)"', page)
    assert len(frames) == 2 and frames[0] == frames[1] and f"member={ann.id}" in frames[0]
    preview = signed_in.get(frames[0].replace("&amp;", "&"))
    assert "Ann" in preview.data.decode() and "sandbox" not in preview.headers.get("Content-Security-Policy", "x")
    assert session.get(Campaign, campaign_id).status is CampaignStatus.DRAFT

    # Neither a made-up answer nor another send's token starts it.
    for forged in ("yes", "0" * 64, audience.confirm_token("schedule", campaign_id, "x", signed_in.officer)):
        page = _page(signed_in.post(f"/campaigns/{campaign_id}/send", data={"confirm": forged}))
        assert "Yes, send it to 2 addresses now" in page
        session.expire_all()
        assert session.get(Campaign, campaign_id).status is CampaignStatus.DRAFT
    token = _token(page)
    # A change after the confirmation voids it: what is sent is what was shown.
    signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(subject="Changed {{ member.first_name }}"))
    page = _page(signed_in.post(f"/campaigns/{campaign_id}/send", data={"confirm": token}))
    assert "changed after the confirmation was shown" in page and "Changed Ann" in page
    session.expire_all()
    assert session.get(Campaign, campaign_id).status is CampaignStatus.DRAFT

    response = signed_in.post(f"/campaigns/{campaign_id}/send", data={"confirm": _token(page)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Campaign, campaign_id).status is CampaignStatus.SCHEDULED  # due now: the start job's
    detail = _page(signed_in.get(f"/campaigns/{campaign_id}"))
    assert 'id="campaign-status">starting</span>' in detail and ">scheduled<" not in detail
    listing = _page(signed_in.get("/campaigns/"))
    assert "Changed Jane" in listing and "{{ member.first_name }}" not in listing  # the sample member
    assert ">starting</span>" in listing


def test_a_scheduled_campaign_still_shows_as_scheduled(signed_in, make_member):
    make_member()
    campaign_id = _new(signed_in, "")
    page = _page(signed_in.post(f"/campaigns/{campaign_id}/schedule", data=_form(send_at="2099-07-01T09:00")))
    assert "Schedule “Hello First1” for Wed 1 July 2099, 09:00?" in page
    assert session.get(Campaign, campaign_id).status is CampaignStatus.DRAFT
    signed_in.post(f"/campaigns/{campaign_id}/schedule", data={"confirm": _token(page), "send_at": "2099-07-01T09:00"})
    detail = _page(signed_in.get(f"/campaigns/{campaign_id}"))
    assert 'id="campaign-status">scheduled</span>' in detail


def test_a_branch_secretary_confirms_for_their_branch_only(app, client, make_officer, make_member, make_branch):
    north, south = make_branch("North"), make_branch("South")
    make_member(first_name="Nia", branch=north, email="nia@example.org")
    make_member(first_name="Sam", branch=south, email="sam@example.org")
    officer = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    login(client, officer.email)
    campaign_id = _new(client, "")
    page = _page(client.post(f"/campaigns/{campaign_id}/send", data=_form()))
    assert '<strong id="confirm-addresses">1</strong>' in page and "Hello Nia" in page and "Sam" not in page


def _meeting(signed_in, **extra) -> int:
    from tests.web.test_meetings_web import create, local

    return create(signed_in, title="December general meeting", starts_at=local(12), ends_at=local(12, 21, 0), **extra)


def test_a_meeting_notice_is_confirmed_from_its_page_before_it_goes(signed_in, make_member):
    ann, _bob = _crowd(make_member)
    meeting_id = _meeting(signed_in)
    page = _page(signed_in.get(f"/meetings/{meeting_id}"))
    assert f'action="/meetings/{meeting_id}/send/notice"' in page and 'method="get"' in page

    # A POST that did not come from the confirmation page sends nothing: it is taken there.
    response = signed_in.post(f"/meetings/{meeting_id}/notice", data={})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/meetings/{meeting_id}/send/notice")
    session.expire_all()
    assert session.get(Meeting, meeting_id).status is MeetingStatus.PLANNED
    assert session.scalar(select(Campaign.id)) is None

    page = _page(signed_in.get(f"/meetings/{meeting_id}/send/notice"))
    assert "Notice: December general meeting" in page and "{{" not in page
    # Notices go to those without bulletins consent; the rest are left out, with the reason.
    assert '<strong id="confirm-addresses">3</strong>' in page
    assert "objected to emailed notices" not in page and "no email address" in page and "address on hold" in page
    assert "notices (formal notices and minutes" in page and "invite.ics" in page
    frames = re.findall(r'sandbox="" src="([^"]+)"', page)
    assert len(frames) == 2
    preview = signed_in.get(frames[0])
    body = preview.data.decode()
    assert preview.status_code == 200 and "Ann" in body and "/r/" in body  # Ann's own RSVP links
    assert "default-src 'none'" in preview.headers["Content-Security-Policy"]
    assert session.scalar(select(Campaign.id)) is None  # previewing made nothing

    token = re.search(r'name="confirm" value="([0-9a-f]{64})"', page).group(1)
    response = signed_in.post(f"/meetings/{meeting_id}/notice", data={"confirm": token})
    assert response.headers["Location"].endswith(f"/meetings/{meeting_id}")
    session.expire_all()
    assert session.get(Meeting, meeting_id).status is MeetingStatus.NOTICED
    # The same token cannot send it twice: the meeting has moved on.
    response = signed_in.post(f"/meetings/{meeting_id}/notice", data={"confirm": token}, follow_redirects=True)
    assert "its notice cannot be sent now" in _page(response)
    assert len(session.scalars(select(Campaign.id)).all()) == 1


def test_a_changed_meeting_voids_the_confirmation(signed_in, make_member):
    make_member(first_name="Ann", email="ann@example.org")
    meeting_id = _meeting(signed_in)
    page = _page(signed_in.get(f"/meetings/{meeting_id}/send/notice"))
    token = re.search(r'name="confirm" value="([0-9a-f]{64})"', page).group(1)
    from tests.web.test_meetings_web import form, local

    signed_in.post(f"/meetings/{meeting_id}/edit", data=form(title="December general meeting", starts_at=local(13),
                                                           ends_at=local(13, 21, 0)))
    response = signed_in.post(f"/meetings/{meeting_id}/notice", data={"confirm": token}, follow_redirects=True)
    assert "changed after the confirmation was shown" in _page(response)
    session.expire_all()
    assert session.get(Meeting, meeting_id).status is MeetingStatus.PLANNED
