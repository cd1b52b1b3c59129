"""The campaign pages: list, composer (segment count, problems, preview, test send, attachments,
saved segments), scheduling in UK time, sending through a real queue, and pause/resume/cancel."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import pytest
from markupsafe import escape
from rq import SimpleWorker
from sqlalchemy import select

from mailer.compose import starters
from mailer.db import session
from mailer.models import (AuditEvent, Campaign, CampaignStatus, Delivery, DeliveryStatus, MemberStatus, MemberTag,
                           Role, Segment, Stream, Tag)
from tests.conftest import login


def clear_queue() -> None:
    """Start from an empty queue. Campaign ids restart with the emptied tables, and an earlier
    test may have left a retry of "campaign-1-batch-0" scheduled in Redis: the start job would
    take it for this campaign's batch and enqueue nothing."""
    from mailer.queue import get_queue
    from tests.conftest import clear_queue as clear

    clear(get_queue())


@pytest.fixture(autouse=True)
def _empty_queue(app):
    clear_queue()


def _page(response) -> str:
    return response.data.decode()


def _campaign(campaign_id: int) -> Campaign:
    session.expire_all()
    return session.get(Campaign, campaign_id)


def _new(client, starter: str = "", stream: str = "bulletins") -> int:
    response = client.post("/campaigns/new", data={"starter": starter, "stream": stream})
    assert response.status_code == 302, response.data
    return int(re.search(r"/campaigns/(\d+)/edit", response.headers["Location"]).group(1))


def _form(**values) -> dict:
    """A composer submission: sensible message fields and the segment builder's marker."""
    form = {"name": "Test campaign", "subject": "Hello {{ member.first_name }}", "preheader": "", "from_name": "Sec",
            "body_format": "markdown", "stream": "bulletins", "body": "Dear {{ member.first_name }},\n\nNews.",
            "segment_form": "1", "seg_statuses": ["new", "active", "arrears"]}
    form.update(values)
    return form


def _run_queue(rounds: int = 10) -> None:
    """Work the queue with a real RQ worker in this process until it is empty."""
    from mailer.queue import get_queue, redis_connection

    q = get_queue()
    for _ in range(rounds):
        if q.count == 0:
            return
        SimpleWorker([q], connection=redis_connection()).work(burst=True)
    raise AssertionError(f"the queue did not empty: {q.job_ids}")


def _token(page: str) -> str:
    """The confirmation page's token: the only way to the POST that sends."""
    return re.search(r'name="confirm" value="([0-9a-f]{64})"', page).group(1)


def _send(client, campaign_id: int):
    """Confirm and send, as an officer does: the confirmation page, then its form."""
    page = _page(client.get(f"/campaigns/{campaign_id}/confirm"))
    return client.post(f"/campaigns/{campaign_id}/send", data={"confirm": _token(page)})


def _schedule(client, campaign_id: int, send_at: str, **fields):
    """The composer's Schedule, then the confirmation's form."""
    page = _page(client.post(f"/campaigns/{campaign_id}/schedule", data=_form(send_at=send_at, **fields)))
    if 'name="confirm"' not in page:
        return page
    return client.post(f"/campaigns/{campaign_id}/schedule", data={"confirm": _token(page), "send_at": send_at},
                       follow_redirects=True)


# --- list and create ------------------------------------------------------------------------

def test_create_from_each_starter_and_blank(signed_in):
    every = starters.all_starters()
    assert len(every) >= 5
    listing = _page(signed_in.get("/campaigns/"))
    for starter in every:
        # Chosen by what they are for; a meeting's mail is named, pointing to the meeting's page.
        assert str(escape(starter.name if starter.meetings_flow else starter.description)) in listing
        campaign = _campaign(_new(signed_in, starter.slug))
        assert (campaign.starter, campaign.stream, campaign.subject, campaign.body) == \
            (starter.slug, starter.stream, starter.subject, starter.body)
        page = _page(signed_in.get(f"/campaigns/{campaign.id}/edit"))
        assert f"Compose: {starter.name}" in page and "No problems" in page
    blank = _campaign(_new(signed_in, "", "notices"))
    assert blank.starter is None and blank.stream is Stream.NOTICES
    assert blank.segment == {"statuses": ["new", "active", "arrears"]}
    response = signed_in.post("/campaigns/new", data={"starter": "no-such-starter"}, follow_redirects=True)
    assert "There is no starter called" in _page(response)


def test_list_shows_status_progress_and_uk_times(signed_in, make_member):
    campaign_id = _new(signed_in, "weekly-bulletin")
    campaign = _campaign(campaign_id)
    campaign.created_at = datetime(2026, 7, 1, 8, 30, tzinfo=timezone.utc)  # 09:30 in London (BST)
    member = make_member()
    session.add_all([Delivery(campaign_id=campaign_id, member_id=member.id, email="a@example.org",
                              status=DeliveryStatus.SENT),
                     Delivery(campaign_id=campaign_id, member_id=member.id, email="b@example.org"),
                     Delivery(campaign_id=campaign_id, member_id=member.id, email="c@example.org")])
    session.commit()
    page = _page(signed_in.get("/campaigns/"))
    assert "Weekly bulletin" in page and "01/07/2026 09:30" in page
    assert "1 / 3" in page and "badge-c-draft" in page
    assert 'aria-current="page">Campaigns<' in page


# --- the composer ---------------------------------------------------------------------------

def test_edit_and_save(signed_in, make_branch):
    north = make_branch("North")
    campaign_id = _new(signed_in, "weekly-bulletin")
    response = signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(
        name="  Bulletin   12 ", subject="Week 12", preheader="Canvassing", from_name="Jo Bloggs",
        stream="notices", body="Hello\r\nthere", seg_branches=[str(north.id)], seg_wards=["Castle"],
        seg_statuses=["active"], seg_joined_after="2020-01-01", ex_wards=["Abbey"]))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/campaigns/{campaign_id}/edit")
    campaign = _campaign(campaign_id)
    assert (campaign.name, campaign.subject, campaign.preheader, campaign.from_name, campaign.stream,
            campaign.body) == ("Bulletin 12", "Week 12", "Canvassing", "Jo Bloggs", Stream.NOTICES, "Hello\nthere")
    assert campaign.segment == {"branches": [north.id], "wards": ["Castle"], "statuses": ["active"],
                                "joined_after": "2020-01-01", "exclude": {"wards": ["Abbey"]}}
    page = _page(signed_in.get(f"/campaigns/{campaign_id}/edit"))
    assert 'value="Bulletin 12"' in page and 'value="01/01/2020"' in page
    assert re.search(r'name="seg_wards" value="Castle" checked', page) is None  # no member has the ward yet
    assert re.search(r'value="notices"[^>]*checked', page)
    # A refused save keeps what was typed and says why.
    response = signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(subject="x" * 300, body="Kept text"))
    page = _page(response)
    assert response.status_code == 400 and "Not saved: The subject is longer than 250 characters." in page
    assert "Kept text" in page
    assert _campaign(campaign_id).subject == "Week 12"
    response = signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(seg_joined_after="31/02/2020"))
    assert response.status_code == 400 and "joined after must be a date" in _page(response)


def test_count_is_members_matching_and_addresses_reached(signed_in, make_member, make_branch):
    north, south = make_branch("North"), make_branch("South")
    make_member(branch=north, status=MemberStatus.ACTIVE, ward="Castle")
    make_member(branch=north, status=MemberStatus.NEW, ward="Abbey")
    make_member(branch=north, status=MemberStatus.ACTIVE, ward="Castle", bulletins_consent=False)  # no bulletins
    make_member(branch=north, status=MemberStatus.ARREARS, ward="Castle", email="shared@example.org")
    make_member(branch=north, status=MemberStatus.ACTIVE, ward="Castle", email="SHARED@example.org")  # one address
    make_member(branch=north, status=MemberStatus.LAPSED, ward="Castle")
    make_member(branch=north, status=MemberStatus.ACTIVE, email=None)  # nowhere to send
    make_member(branch=south, status=MemberStatus.ACTIVE)
    campaign_id = _new(signed_in, "")

    def count(**fields):
        response = signed_in.post(f"/campaigns/{campaign_id}/count", data=_form(**fields))
        assert response.status_code == 200, response.data
        return response.get_json()

    answer = count(seg_branches=[str(north.id)])
    assert (answer["members"], answer["recipients"]) == (6, 3)
    assert answer["text"] == "6 members match; 3 addresses will receive it."
    assert (count(seg_branches=[str(north.id)], stream="notices")["recipients"]) == 4  # notices need no consent
    assert count(seg_branches=[str(north.id)], ex_wards=["Abbey"])["members"] == 5
    assert count(seg_branches=[str(north.id)], seg_statuses=["lapsed"])["text"] == \
        "1 member matches; 1 address will receive it."
    assert count(seg_statuses=[])["members"] == 8  # no status ticked: any status
    assert count()["members"] == 7
    response = signed_in.post(f"/campaigns/{campaign_id}/count", data=_form(seg_joined_before="soon"))
    assert response.status_code == 400 and "must be a date" in response.get_json()["error"]
    assert _campaign(campaign_id).segment == {"statuses": ["new", "active", "arrears"]}  # counting saves nothing


def test_tags_and_officer_roles_filter(signed_in, make_member, make_officer):
    tagged = make_member(email="tagged@example.org")
    make_member(email="plain@example.org")
    make_member(email="chair@example.org")
    make_officer("chair@example.org", Role.CLP_OFFICER)
    tag = Tag(name="activist")
    session.add(tag)
    session.flush()
    session.add(MemberTag(member_id=tagged.id, tag_id=tag.id))
    session.commit()
    campaign_id = _new(signed_in, "")
    page = _page(signed_in.get(f"/campaigns/{campaign_id}/edit"))
    assert 'name="seg_tags" value="activist"' in page and 'name="seg_officer_roles" value="clp_officer"' in page
    answer = signed_in.post(f"/campaigns/{campaign_id}/count", data=_form(seg_tags=["activist"])).get_json()
    assert answer["members"] == 1
    answer = signed_in.post(f"/campaigns/{campaign_id}/count", data=_form(seg_officer_roles=["clp_officer"])).get_json()
    assert answer["members"] == 1


def test_problems_show_their_line_never_a_server_error(signed_in):
    campaign_id = _new(signed_in, "")
    response = signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(
        body="Line one\nLine two\nDear {{ member.frist_name }}\n"), follow_redirects=True)
    page = _page(response)
    assert response.status_code == 200 and "1 problem to fix before sending" in page
    assert "<li>body, line 3: &#39;member&#39; has no attribute &#39;frist_name&#39;</li>" in page, page
    mjml = "<mj-section>\n  <mj-column>\n    <mj-text>Hello\n  </mj-column>\n</mj-section>\n"
    response = signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(body_format="mjml", body=mjml),
                              follow_redirects=True)
    page = _page(response)
    assert response.status_code == 200
    assert re.search(r"<li>body, line 4: invalid MJML", page), page
    response = signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(subject=""), follow_redirects=True)
    assert "<li>subject: a subject is needed</li>" in _page(response)
    response = signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(subject="Hi {{ member.nmae }}"),
                              follow_redirects=True)
    assert "<li>subject: &#39;member&#39; has no attribute &#39;nmae&#39;</li>" in _page(response)
    # The preview says the same, as a page of its own, not a server error.
    response = signed_in.post(f"/campaigns/{campaign_id}/preview", data=_form(body="{{ member.nope }}"))
    assert response.status_code == 200 and "cannot be shown yet" in _page(response) and "nope" in _page(response)
    signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(body="{{ member.nope }}"))
    response = signed_in.get(f"/campaigns/{campaign_id}/preview.txt")
    assert response.status_code == 200 and "cannot be shown yet" in _page(response) and "nope" in _page(response)
    response = signed_in.get(f"/campaigns/{campaign_id}/preview")
    assert response.status_code == 200 and "cannot be shown yet" in _page(response)


def test_preview_is_personalised_and_framed_safely(signed_in, make_member):
    ada = make_member(first_name="Ada", last_name="Lovelace", ward="Castle")
    campaign_id = _new(signed_in, "")
    signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(
        subject="News for {{ member.first_name }}",
        body="Dear {{ member.first_name }} of {{ member.ward }},\n\n**Bold** news."))
    response = signed_in.get(f"/campaigns/{campaign_id}/preview", query_string={"member": ada.id})
    html = _page(response)
    assert response.status_code == 200 and "Dear Ada of Castle," in html and "<strong>Bold</strong>" in html
    assert response.headers["Content-Security-Policy"] == \
        "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    sample = _page(signed_in.get(f"/campaigns/{campaign_id}/preview"))
    assert "Dear Jane of Castle," in sample and "Ada" not in sample
    # The composer itself keeps the strict policy, and frames the preview in a sandbox.
    composer = signed_in.get(f"/campaigns/{campaign_id}/edit", query_string={"member": ada.id})
    assert "frame-ancestors 'none'" in composer.headers["Content-Security-Policy"]
    page = _page(composer)
    assert page.count('sandbox=""') == 2 and f'/campaigns/{campaign_id}/preview?member={ada.id}' in page
    assert "News for Ada" in page  # the subject as Ada would see it
    assert "<script>" not in page.replace('<script src="/static/composer.js" defer></script>', "")
    # Unsaved edits preview without being saved.
    response = signed_in.post(f"/campaigns/{campaign_id}/preview", data=_form(body="Brand new {{ member.last_name }}",
                                                                            member=str(ada.id)))
    assert "Brand new Lovelace" in _page(response) and response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert _campaign(campaign_id).body.startswith("Dear {{ member.first_name }} of")


def test_member_search_for_preview_stays_in_scope(client, make_officer, make_branch, make_member):
    north, south = make_branch("North"), make_branch("South")
    make_member(first_name="Nia", last_name="Finder", branch=north)
    theirs = make_member(first_name="Sid", last_name="Finder", branch=south)
    officer = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    login(client, officer.email)
    campaign_id = _new(client, "")
    found = client.get(f"/campaigns/{campaign_id}/members.json", query_string={"q": "finder"}).get_json()
    assert [f["label"].split(" <")[0] for f in found] == ["Nia Finder"]
    page = _page(client.get(f"/campaigns/{campaign_id}/edit", query_string={"find": "finder"}))
    assert "Nia Finder" in page and "Sid Finder" not in page
    # Another branch's member cannot be previewed: the sample member is shown instead.
    assert "Sid" not in _page(client.get(f"/campaigns/{campaign_id}/preview", query_string={"member": theirs.id}))


def test_plain_text_alternative(signed_in, make_member):
    ada = make_member(first_name="Ada")
    campaign_id = _new(signed_in, "")
    signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(
        subject="Hi {{ member.first_name }}", body="Dear {{ member.first_name }},\n\n**Plain** words."))
    response = signed_in.get(f"/campaigns/{campaign_id}/preview.txt", query_string={"member": ada.id})
    text = _page(response)
    assert response.mimetype == "text/plain" and text.startswith("Subject: Hi Ada\n\n")
    assert "Dear Ada," in text and "**Plain** words." in text and "<p>" not in text


def test_test_send_goes_to_the_officer_only(make_app, make_officer, make_member, smtp_server):
    app = make_app(MAIL_PORT=smtp_server.port)
    with app.app_context():
        officer = make_officer("sec@example.org")
        ada = make_member(first_name="Ada", email="ada@example.org")
        client = app.test_client()
        login(client, officer.email)
        campaign_id = _new(client, "")
        response = client.post(f"/campaigns/{campaign_id}/test-send", data=_form(
            subject="Test for {{ member.first_name }}", member=str(ada.id)), follow_redirects=True)
        assert "Test sent to sec@example.org, as Ada" in _page(response)
        assert len(smtp_server.messages) == 1
        [(_sender, recipients)] = smtp_server.envelopes
        assert recipients == ["sec@example.org"]
        message = smtp_server.messages[0]
        assert message["Subject"] == "Test for Ada" and "ada@example.org" not in message["To"]
        assert "sec@example.org" in message["To"]
        assert _campaign(campaign_id).subject == "Test for {{ member.first_name }}"  # saved first
        audited = session.scalar(select(AuditEvent).where(AuditEvent.action == "campaign.test_send"))
        assert audited.note == "sec@example.org"


def test_test_send_failure_is_a_message_not_a_server_error(signed_in):
    campaign_id = _new(signed_in, "")  # the app's relay is port 9: nothing listens
    response = signed_in.post(f"/campaigns/{campaign_id}/test-send", data=_form(), follow_redirects=True)
    assert response.status_code == 200 and "The test could not be sent" in _page(response)
    response = signed_in.post(f"/campaigns/{campaign_id}/test-send", data=_form(body="{{ member.oops }}"),
                              follow_redirects=True)
    assert response.status_code == 200 and "The test was not sent" in _page(response)


def test_attachments_within_the_limit(make_app, make_officer):
    app = make_app(ATTACHMENT_MAX_BYTES=2048)
    with app.app_context():
        officer = make_officer()
        client = app.test_client()
        login(client, officer.email)
        campaign_id = _new(client, "")
        from io import BytesIO

        def upload(name, size, content_type="application/pdf"):
            data = _form(attachment=(BytesIO(b"%PDF" + b"x" * (size - 4)), name, content_type))
            return client.post(f"/campaigns/{campaign_id}/attachments", data=data, content_type="multipart/form-data",
                               follow_redirects=True)

        page = _page(upload("agenda.pdf", 1500))
        assert "agenda.pdf attached." in page and "Remove agenda.pdf" in page
        page = _page(upload("minutes.pdf", 1000))
        assert "Attachments may total" in page and "Link to large papers instead." in page
        assert [a.filename for a in _campaign(campaign_id).attachments] == ["agenda.pdf"]
        assert "only PDFs, documents" in _page(upload("run.exe", 10, "application/octet-stream"))
        attachment = _campaign(campaign_id).attachments[0]
        page = _page(client.post(f"/campaigns/{campaign_id}/attachments/{attachment.id}/remove", data=_form(),
                                 follow_redirects=True))
        assert "agenda.pdf removed." in page and _campaign(campaign_id).attachments == []


def test_saved_segments(signed_in, make_branch):
    north = make_branch("North")
    campaign_id = _new(signed_in, "")
    response = signed_in.post(f"/campaigns/{campaign_id}/segments/save", data=_form(
        seg_branches=[str(north.id)], seg_statuses=["active"], segment_name="North actives"), follow_redirects=True)
    assert "Filters saved as “North actives”." in _page(response)
    saved = session.scalar(select(Segment))
    assert (saved.name, saved.definition, saved.branch_id) == \
        ("North actives", {"branches": [north.id], "statuses": ["active"]}, None)
    other_id = _new(signed_in, "")
    page = _page(signed_in.get(f"/campaigns/{other_id}/edit"))
    assert f'<option value="{saved.id}">North actives</option>' in page
    response = signed_in.post(f"/campaigns/{other_id}/segments/load", data=_form(saved_segment=str(saved.id),
                                                                               subject="Kept"))
    assert response.status_code == 302
    other = _campaign(other_id)
    assert other.segment == {"branches": [north.id], "statuses": ["active"]} and other.subject == "Kept"
    response = signed_in.post(f"/campaigns/{other_id}/segments/save", data=_form(segment_name=" "),
                              follow_redirects=True)
    assert "Give the filters a name" in _page(response)


def test_branch_secretary_gets_404_elsewhere_and_their_own_branch_only(client, signed_in, make_officer, make_branch,
                                                                       make_member, app):
    north, south = make_branch("North"), make_branch("South")
    make_member(branch=north)
    make_member(branch=south)
    clp_campaign = _new(signed_in, "")  # the CLP secretary's: every branch
    secretary = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    other = app.test_client()
    login(other, secretary.email)
    own = _new(other, "weekly-bulletin")
    assert _campaign(own).branch_id == north.id
    for path in ("", "/edit", "/preview", "/preview.txt", "/progress.json", "/members.json?q=a"):
        assert other.get(f"/campaigns/{clp_campaign}{path}").status_code == 404, path
    for path in ("/edit", "/count", "/preview", "/test-send", "/schedule", "/send", "/pause", "/resume", "/cancel",
                 "/attachments", "/segments/save", "/segments/load"):
        assert other.post(f"/campaigns/{clp_campaign}{path}", data=_form()).status_code == 404, path
    listing = _page(other.get("/campaigns/"))
    assert f"/campaigns/{own}" in listing and f"/campaigns/{clp_campaign}\"" not in listing
    # Whatever the form says, the segment is their branch.
    other.post(f"/campaigns/{own}/edit", data=_form(seg_branches=[str(south.id)]))
    assert _campaign(own).segment["branches"] == [north.id]
    answer = other.post(f"/campaigns/{own}/count", data=_form(seg_branches=[str(south.id)])).get_json()
    assert answer["members"] == 1  # only North's
    page = _page(other.get(f"/campaigns/{own}/edit"))
    assert "a branch secretary's campaigns go to their own branch" in page and 'name="seg_branches"' not in page
    assert _page(signed_in.get(f"/campaigns/{own}")).count("North") >= 1  # the CLP sees the branch's campaign


# --- schedule and send ----------------------------------------------------------------------

def test_schedule_stores_utc_for_a_uk_time_and_refuses_the_past(signed_in, make_member):
    make_member()
    campaign_id = _new(signed_in, "weekly-bulletin")
    year = date.today().year + 1
    response = _schedule(signed_in, campaign_id, f"{year}-07-01T09:00")
    page = _page(response)
    assert f"it will be sent at 09:00 on 01/07/{year} (UK time)" in page
    campaign = _campaign(campaign_id)
    assert campaign.status is CampaignStatus.SCHEDULED
    assert campaign.scheduled_at == datetime(year, 7, 1, 8, 0, tzinfo=timezone.utc)  # BST is UTC+1
    assert f"01/07/{year} 09:00" in page
    from mailer.queue import get_queue

    assert f"campaign-{campaign_id}-start" in get_queue().scheduled_job_registry.get_job_ids()
    # Shown back in UK time in the composer; in winter UK time is UTC.
    assert f'value="01/07/{year} 09:00"' in _page(signed_in.get(f"/campaigns/{campaign_id}/edit"))
    _schedule(signed_in, campaign_id, f"{year}-01-15T09:00")
    assert _campaign(campaign_id).scheduled_at == datetime(year, 1, 15, 9, 0, tzinfo=timezone.utc)
    # Back to draft, then a time in the past is refused.
    signed_in.post(f"/campaigns/{campaign_id}/unschedule", data={})
    assert _campaign(campaign_id).status is CampaignStatus.DRAFT
    response = _schedule(signed_in, campaign_id, "2020-01-01T09:00")
    assert "That time has already passed." in _page(response)
    assert _campaign(campaign_id).status is CampaignStatus.DRAFT
    response = signed_in.post(f"/campaigns/{campaign_id}/schedule", data=_form(send_at=""), follow_redirects=True)
    assert "Choose the date and time to send it." in _page(response)


def test_a_campaign_with_problems_cannot_be_sent(signed_in):
    campaign_id = _new(signed_in, "")
    page = _page(signed_in.post(f"/campaigns/{campaign_id}/send", data=_form(body="{{ member.frist }}")))
    assert "It cannot be sent yet" in page and "disabled" in page
    response = signed_in.post(f"/campaigns/{campaign_id}/send", data={"confirm": _token(page)}, follow_redirects=True)
    assert "Fix the campaign first" in _page(response)
    assert _campaign(campaign_id).status is CampaignStatus.DRAFT


def test_send_now_confirms_then_sends_one_message_per_recipient(make_app, make_officer, make_member, smtp_server):
    app = make_app(MAIL_PORT=smtp_server.port, BATCH_SIZE=2)
    with app.app_context():
        officer = make_officer()
        people = [make_member(first_name=f"P{i}", email=f"p{i}@example.org") for i in range(5)]
        make_member(first_name="NoConsent", email="nc@example.org", bulletins_consent=False)
        client = app.test_client()
        login(client, officer.email)
        campaign_id = _new(client, "")
        # Without composer.js, a confirmation step first: nothing is sent yet.
        page = _page(client.post(f"/campaigns/{campaign_id}/send", data=_form(subject="Hi {{ member.first_name }}")))
        assert "Yes, send it to 5 addresses now" in page
        assert _campaign(campaign_id).status is CampaignStatus.DRAFT
        response = client.post(f"/campaigns/{campaign_id}/send", data={"confirm": _token(page)})
        assert response.status_code == 302 and response.headers["Location"].endswith(f"/campaigns/{campaign_id}")
        assert _campaign(campaign_id).status is CampaignStatus.SCHEDULED
        from mailer.queue import get_queue

        assert f"campaign-{campaign_id}-start" in get_queue().job_ids
        assert client.get(f"/campaigns/{campaign_id}/progress.json").get_json()["live"] is True
        _run_queue()
        assert sorted(rcpt for _f, [rcpt] in smtp_server.envelopes) == sorted(p.email for p in people)
        assert {m["Subject"] for m in smtp_server.messages} == {f"Hi {p.first_name}" for p in people}
        progress = client.get(f"/campaigns/{campaign_id}/progress.json").get_json()
        assert (progress["status"], progress["percent"], progress["sent"], progress["total"], progress["live"]) == \
            ("sent", 100, 5, 5, False)
        page = _page(client.get(f"/campaigns/{campaign_id}"))
        campaign = _campaign(campaign_id)
        assert f"/w/{campaign.web_token}" in page and "No failed deliveries." in page
        assert 'data-live="0"' in page and "5 of 5 sent: finished." in page
        # A sent campaign cannot be edited or sent again.
        response = client.get(f"/campaigns/{campaign_id}/edit", follow_redirects=True)
        assert "it can no longer be changed" in _page(response)
        response = client.post(f"/campaigns/{campaign_id}/send", data={"confirm": "yes"}, follow_redirects=True)
        assert "The campaign is sent; that cannot be done now." in _page(response)
        assert len(smtp_server.messages) == 5


def test_pause_resume_and_cancel(make_app, make_officer, make_member, smtp_server):
    app = make_app(MAIL_PORT=smtp_server.port)
    with app.app_context():
        officer = make_officer()
        for i in range(3):
            make_member(email=f"m{i}@example.org")
        client = app.test_client()
        login(client, officer.email)
        campaign_id = _new(client, "weekly-bulletin")
        _send(client, campaign_id)
        response = client.post(f"/campaigns/{campaign_id}/pause", follow_redirects=True)
        assert "Paused" in _page(response) and _campaign(campaign_id).status is CampaignStatus.PAUSED
        assert ">Resume</button>" in _page(response) and ">Pause</button>" not in _page(response)
        _run_queue()  # the start job finds the campaign paused and sends nothing
        assert smtp_server.messages == [] and _campaign(campaign_id).status is CampaignStatus.PAUSED
        response = client.post(f"/campaigns/{campaign_id}/resume", follow_redirects=True)
        assert "Resumed" in _page(response) and _campaign(campaign_id).status is CampaignStatus.SCHEDULED
        _run_queue()
        assert len(smtp_server.messages) == 3 and _campaign(campaign_id).status is CampaignStatus.SENT
        response = client.post(f"/campaigns/{campaign_id}/pause", follow_redirects=True)
        assert "The campaign is sent; that cannot be done now." in _page(response)

        second = _new(client, "weekly-bulletin")
        _send(client, second)
        response = client.post(f"/campaigns/{second}/cancel", follow_redirects=True)
        assert "Cancelled" in _page(response) and _campaign(second).status is CampaignStatus.CANCELLED
        _run_queue()
        assert len(smtp_server.messages) == 3  # nothing more
        assert "cannot be done now" in _page(client.post(f"/campaigns/{second}/resume", follow_redirects=True))


def test_campaign_page_describes_the_segment_and_reports_failures(signed_in, make_branch, make_member):
    north = make_branch("North")
    member = make_member(branch=north)
    campaign_id = _new(signed_in, "")
    signed_in.post(f"/campaigns/{campaign_id}/edit", data=_form(seg_branches=[str(north.id)], seg_statuses=["active"]))
    campaign = _campaign(campaign_id)
    campaign.status = CampaignStatus.SENT
    session.add(Delivery(campaign_id=campaign_id, member_id=member.id, email="gone@example.org",
                         status=DeliveryStatus.FAILED, error="550 no such mailbox", attempts=1))
    session.commit()
    page = _page(signed_in.get(f"/campaigns/{campaign_id}"))
    assert "branch North; status active" in page
    assert "gone@example.org" in page and "550 no such mailbox" in page
    assert "0 members unsubscribed" in page


@pytest.mark.parametrize("path", ["/campaigns/", "/campaigns/1", "/campaigns/1/edit"])
def test_campaign_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_new_campaign_form_offers_campaigns_and_points_meeting_mail_to_meetings(signed_in):
    page = signed_in.get("/campaigns/").get_data(as_text=True)
    form = page[page.index('id="new-h"'):]
    checked = re.findall(r'<input type="radio" name="starter" value="([^"]*)"[^>]*\bchecked\b', form)
    assert checked == ["weekly-bulletin"]  # the everyday choice, not the AGM notice
    offered = set(re.findall(r'name="starter" value="([^"]*)"', form))
    assert offered == {"weekly-bulletin", "welcome", ""}
    pointer = form[form.index('id="meetings-flow"'):]
    assert "AGM notice" in pointer and "Meeting notice" in pointer and 'href="/meetings/"' in pointer
