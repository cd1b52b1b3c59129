"""The JSON API: tokens, scope, problems, keyset pages, ETags, and the same services as the pages."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mailer.db import session, utcnow
from mailer.models import ApiToken, AuditEvent, Campaign, CampaignStatus, Member
from tests.api.conftest import TokenClient
from tests.conftest import login


def problem_of(response, status):
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# --- tokens ---------------------------------------------------------------------------------

def test_no_token_no_data(client, api, make_member):
    make_member(email="ann@example.org")
    for headers in ({}, {"Authorization": "Bearer mlr_not-a-real-token"}, {"Authorization": "Basic abc"}):
        response = client.get("/api/v1/members", headers=headers)
        body = problem_of(response, 401)
        assert "ann@example.org" not in response.get_data(as_text=True) and "token" in body["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_session_cookie_does_not_open_the_api(client, api):
    assert login(client, api.officer.email).status_code == 302
    problem_of(client.get("/api/v1/members"), 401)  # signed in, but no token: refused


def test_a_token_is_stored_hashed_and_ends_when_revoked_expired_or_the_officer_is_disabled(api, make_officer,
                                                                                          make_token, client):
    from mailer.officers import tokens

    assert api.get("/api/v1/members").status_code == 200
    stored = session.scalars(select(ApiToken)).one()
    assert api.token not in {stored.token_hash, stored.hint} and stored.token_hash != api.token
    assert stored.last_used_at is not None

    tokens.revoke(api.officer, stored.id)
    session.commit()
    problem_of(api.get("/api/v1/members"), 401)

    other = make_officer("chair@example.org")
    text = make_token(other, days=1)
    row = session.scalar(select(ApiToken).where(ApiToken.officer_id == other.id))
    assert TokenClient(client, text).get("/api/v1/members").status_code == 200
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    problem_of(TokenClient(client, text).get("/api/v1/members"), 401)

    third = make_officer("treasurer@example.org")
    text = make_token(third)
    third.active = False
    session.commit()
    problem_of(TokenClient(client, text).get("/api/v1/members"), 401)


def test_tokens_are_made_and_revoked_on_the_account_page(signed_in):
    page = signed_in.get("/account/")
    assert page.status_code == 200 and b"You have no API tokens" in page.data
    made = signed_in.post("/account/tokens", data={"name": "bulletin script", "days": "30"})
    assert made.status_code == 200
    text = made.get_data(as_text=True).split('id="new-token">')[1].split("<")[0]
    assert text.startswith("mlr_")
    assert TokenClient(signed_in, text).get("/api/v1/members").status_code == 200
    listed = signed_in.get("/account/").get_data(as_text=True)
    assert "bulletin script" in listed and text not in listed  # shown once, never again
    token = session.scalars(select(ApiToken)).one()
    assert token.expires_at is not None
    signed_in.post(f"/account/tokens/{token.id}/revoke")
    problem_of(TokenClient(signed_in, text).get("/api/v1/members"), 401)
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"api_token.create", "api_token.revoke"} <= actions


def test_a_token_needs_a_name_and_a_sane_lifetime(signed_in):
    for data in ({"name": ""}, {"name": "x", "days": "0"}, {"name": "x", "days": "5000"}):
        response = signed_in.post("/account/tokens", data=data, follow_redirects=True)
        assert response.status_code == 200 and b"new-token" not in response.data
    assert session.scalars(select(ApiToken)).all() == []


# --- branch scope ---------------------------------------------------------------------------

def test_a_branch_secretarys_token_sees_only_their_branch(two_branches):
    api, ours, theirs = two_branches
    listed = api.get("/api/v1/members")
    assert [m["id"] for m in listed.get_json()["items"]] == [ours.id]
    assert "MARKER-B" not in listed.get_data(as_text=True)
    assert api.get(f"/api/v1/members/{ours.id}").status_code == 200
    problem_of(api.get(f"/api/v1/members/{theirs.id}"), 404)
    problem_of(api.patch(f"/api/v1/members/{theirs.id}", json={"first_name": "X"}, headers={"If-Match": "*"}), 404)
    counted = api.post("/api/v1/segments/count", json={"segment": {}})
    assert counted.get_json()["members"] == 1


# --- members --------------------------------------------------------------------------------

def test_members_page_by_keyset_with_link_headers(api, make_member):
    made = [make_member(last_name=f"Member{n:02d}") for n in range(7)]
    seen, url, pages = [], "/api/v1/members?limit=3", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        seen += [m["id"] for m in response.get_json()["items"]]
        link = response.headers.get("Link")
        url = link.split(">")[0].lstrip("<").replace("http://localhost", "") if link else None
        pages += 1
    assert seen == sorted(m.id for m in made) and pages == 3  # 3 + 3 + 1: a short page has no next link


def test_member_search_and_filters(api, make_member):
    make_member(first_name="Zelda", email="zelda@example.org")
    make_member(first_name="Yann", email="yann@example.org", status="lapsed")
    assert [m["first_name"] for m in api.get("/api/v1/members?q=zeld").get_json()["items"]] == ["Zelda"]
    assert [m["first_name"] for m in api.get("/api/v1/members?status=lapsed").get_json()["items"]] == ["Yann"]
    problem_of(api.get("/api/v1/members?status=sleeping"), 422)
    problem_of(api.get("/api/v1/members?limit=100000"), 422)


def test_an_update_needs_the_etag_of_the_last_read(api, make_member):
    member = make_member(first_name="Ann", email="ann@example.org")
    read = api.get(f"/api/v1/members/{member.id}")
    etag = read.headers["ETag"]
    problem_of(api.patch(f"/api/v1/members/{member.id}", json={"phone": "01234 567890"}), 428)
    changed = api.patch(f"/api/v1/members/{member.id}", json={"phone": "01234 567890", "tags": ["driver"]},
                        headers={"If-Match": etag})
    assert changed.status_code == 200, changed.data
    assert changed.get_json()["phone"] == "01234 567890" and changed.get_json()["tags"] == ["driver"]
    assert changed.headers["ETag"] != etag
    # A second officer still holding the old ETag cannot overwrite the change.
    problem_of(api.patch(f"/api/v1/members/{member.id}", json={"phone": "0"}, headers={"If-Match": etag}), 412)
    assert session.get(Member, member.id).phone == "01234 567890"
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "member.update")).one()


def test_invalid_fields_are_named(api, make_member):
    member = make_member()
    etag = api.get(f"/api/v1/members/{member.id}").headers["ETag"]
    body = problem_of(api.patch(f"/api/v1/members/{member.id}", json={"email": "not an address"},
                                headers={"If-Match": etag}), 422)
    assert body["errors"][0]["field"] == "email"
    body = problem_of(api.patch(f"/api/v1/members/{member.id}", json={"shoe_size": 9}, headers={"If-Match": etag}), 422)
    assert body["errors"][0]["field"] == "shoe_size"
    problem_of(api.post("/api/v1/campaigns", data="{not json", content_type="application/json"), 400)
    problem_of(api.post("/api/v1/campaigns", data="name=x", content_type="application/x-www-form-urlencoded"), 415)
    problem_of(api.get("/api/v1/no-such-thing"), 404)
    problem_of(api.delete("/api/v1/members"), 405)


# --- campaigns ------------------------------------------------------------------------------

def test_a_campaign_from_draft_to_sending(api, make_member, redis_url):
    make_member(email="ann@example.org")
    counted = api.post("/api/v1/segments/count", json={"segment": {"statuses": ["active"]}, "stream": "bulletins"})
    answer = counted.get_json()
    assert (answer["members"], answer["recipients"]) == (1, 1) and answer["as_of"].startswith("20")  # when counted
    made = api.post("/api/v1/campaigns", json={"starter": "weekly-bulletin", "segment": {"statuses": ["active"]}})
    assert made.status_code == 201, made.data
    campaign_id = made.get_json()["id"]
    preview = api.get(f"/api/v1/campaigns/{campaign_id}/preview").get_json()
    assert preview["subject"] and "<html" in preview["html"].lower() and preview["text"]
    sent = api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert sent.status_code == 200, sent.data
    assert session.get(Campaign, campaign_id).status is CampaignStatus.SCHEDULED  # its start job is queued
    # Asking again is harmless: one start job, with a deterministic id (and the start is idempotent).
    assert api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 200
    from mailer.queue import get_queue

    assert {j for j in get_queue().get_job_ids() if j.startswith(f"campaign-{campaign_id}-")} == \
        {f"campaign-{campaign_id}-start"}
    progress = api.get(f"/api/v1/campaigns/{campaign_id}/progress").get_json()
    assert progress["status"] == "scheduled" and progress["total"] == 0
    report = api.get(f"/api/v1/campaigns/{campaign_id}/report").get_json()
    assert report["failures"] == [] and report["unsubscribed"] == 0 and report["progress"]["status"] == "scheduled"
    assert api.post(f"/api/v1/campaigns/{campaign_id}/cancel").status_code == 200
    problem_of(api.patch(f"/api/v1/campaigns/{campaign_id}", json={"name": "late"}, headers={"If-Match": "*"}), 409)
    problem_of(api.post(f"/api/v1/campaigns/{campaign_id}/resume"), 409)


def test_campaign_lists_page_newest_first(api):
    ids = [api.post("/api/v1/campaigns", json={"name": f"C{n}"}).get_json()["id"] for n in range(5)]
    first = api.get("/api/v1/campaigns?limit=2")
    assert [c["id"] for c in first.get_json()["items"]] == ids[::-1][:2]
    second = api.get(first.headers["Link"].split(">")[0].lstrip("<").replace("http://localhost", ""))
    assert [c["id"] for c in second.get_json()["items"]] == ids[::-1][2:4]


def test_the_document_and_its_page_are_public(client, api):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert {"/api/v1/members", "/api/v1/campaigns/{campaign_id}/send", "/api/v1/segments/count"} <= set(document["paths"])
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"PATCH /api/v1/members/{member_id}" in page.data


# --- correspondence -------------------------------------------------------------------------

def _letter(sender: str, subject: str, body: str) -> int:
    from mailer.inbound.process import process
    from mailer.inbound.store import store
    from tests.inbound.conftest import raw_message

    message, _created = store(raw_message(sender=sender, subject=subject, body=body), "file")
    session.commit()
    process(message.id)
    session.expire_all()
    from mailer.models import InboundMessage

    return session.get(InboundMessage, message.id).thread_id


def test_threads_are_listed_read_answered_and_actioned(api, make_member, make_officer):
    make_member(first_name="Ann", email="ann@example.org")
    thread_id = _letter("Ann Member <ann@example.org>", "Motion for the AGM",
                        "Please put my motion on the agenda.\n\nOn Mon, 23 Nov 2026 at 19:02, Bob Baker <bob@example.org> wrote:\n"
                        "> old text\n")
    listed = api.get("/api/v1/threads?status=needs_action").get_json()["items"]
    assert [t["id"] for t in listed] == [thread_id] and listed[0]["subject"] == "Motion for the AGM"
    assert api.get("/api/v1/threads?q=no-such-words").get_json()["items"] == []
    thread = api.get(f"/api/v1/threads/{thread_id}").get_json()
    [entry] = thread["entries"]
    assert entry["kind"] == "message" and entry["text"] == "Please put my motion on the agenda."

    answered = api.post(f"/api/v1/threads/{thread_id}/reply", json={"body": "It is on the agenda."})
    assert answered.status_code == 202, answered.data
    kinds = [e["kind"] for e in api.get(f"/api/v1/threads/{thread_id}").get_json()["entries"]]
    assert kinds == ["message", "reply"]
    assert api.post(f"/api/v1/threads/{thread_id}/status", json={"status": "actioned"}).status_code == 200
    assert api.get("/api/v1/threads?status=needs_action").get_json()["items"] == []
    chair = make_officer("chair@example.org")
    assert api.post(f"/api/v1/threads/{thread_id}/assign", json={"officer_id": chair.id}).status_code == 200
    assert api.get(f"/api/v1/threads/{thread_id}").get_json()["assigned_to"] == "chair@example.org"
    problem_of(api.post(f"/api/v1/threads/{thread_id}/reply", json={"body": "x", "in_reply_to": 999999}), 409)


def test_a_branch_secretary_reads_no_other_branchs_thread(two_branches):
    api, _ours, theirs = two_branches
    thread_id = _letter(f"Bea <{theirs.email}>", "MARKER-B letter", "MARKER-B private words\n")
    assert api.get("/api/v1/threads").get_json()["items"] == []
    problem_of(api.get(f"/api/v1/threads/{thread_id}"), 404)
    problem_of(api.post(f"/api/v1/threads/{thread_id}/reply", json={"body": "hello"}), 404)


# --- imports --------------------------------------------------------------------------------

EXPORT = ("Membership number,First name,Surname,Email,Branch,Status\n"
          "A0001,Ann,Able,ann@example.org,Northgate,Active\n"
          "A0002,Bob,Baker,not-an-address,Northgate,Active\n")


def test_an_import_is_a_dry_run_until_applied(api):
    made = api.post("/api/v1/imports", json={"filename": "export.csv", "csv": EXPORT})
    assert made.status_code == 201, made.data
    run = made.get_json()
    assert run["status"] == "pending" and run["summary"]["new"] == 1 and len(run["summary"]["errors"]) == 1
    assert session.scalar(select(Member).where(Member.membership_number == "A0001")) is None  # nothing yet
    applied = api.post(f"/api/v1/imports/{run['id']}/apply")
    assert applied.status_code == 200 and applied.get_json()["status"] == "applied"
    assert session.scalar(select(Member).where(Member.membership_number == "A0001")).first_name == "Ann"
    problem_of(api.post(f"/api/v1/imports/{run['id']}/apply"), 409)
    problem_of(api.post("/api/v1/imports", json={"filename": "x.csv", "csv": "name\n"}), 422)  # no members in it
    problem_of(api.post("/api/v1/imports", json={"filename": "x.csv", "csv": "\x00\x01 not a csv"}), 400)  # a NUL


def test_a_branch_secretary_cannot_import(two_branches):
    api, _ours, _theirs = two_branches
    problem_of(api.post("/api/v1/imports", json={"filename": "export.csv", "csv": EXPORT}), 403)


# --- meetings and minutes -------------------------------------------------------------------

def test_a_meeting_planned_noticed_and_registered(api, make_member):
    from datetime import datetime, timezone

    ann = make_member(first_name="Ann", email="ann@example.org")
    starts = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    made = api.post("/api/v1/meetings", json={"title": "December general meeting", "kind": "general",
                                              "starts_at": starts.isoformat(), "venue_name": "Town hall"})
    assert made.status_code == 201, made.data
    meeting = made.get_json()
    assert meeting["status"] == "planned" and meeting["agenda"]  # the default agenda for its kind
    agenda = [{"id": meeting["agenda"][0]["id"], "title": meeting["agenda"][0]["title"]},
              {"title": "Motion on the local bus service"}]
    changed = api.put(f"/api/v1/meetings/{meeting['id']}/agenda", json={"items": agenda})
    assert [i["title"] for i in changed.get_json()["agenda"]][1] == "Motion on the local bus service"
    noticed = api.post(f"/api/v1/meetings/{meeting['id']}/notice", json={})
    assert noticed.status_code == 200, noticed.data
    assert api.get(f"/api/v1/meetings/{meeting['id']}").get_json()["status"] == "noticed"
    body = problem_of(api.post(f"/api/v1/meetings/{meeting['id']}/notice", json={}), 409)  # never twice
    assert "already gone" in body["detail"]
    register = api.put(f"/api/v1/meetings/{meeting['id']}/register", json={"present": [ann.id]}).get_json()
    assert register["present"] == 1 and register["rows"][0]["member_id"] == ann.id
    assert register["entitled"] == len(register["rows"]) == 1
    problem_of(api.put(f"/api/v1/meetings/{meeting['id']}/register", json={"present": [999999]}), 409)
    problem_of(api.get(f"/api/v1/meetings/{meeting['id']}/minutes"), 404)
    past = datetime(2020, 1, 1, 19, tzinfo=timezone.utc).isoformat()
    problem_of(api.post("/api/v1/meetings", json={"title": "Old", "kind": "general", "starts_at": past,
                                                  "venue_name": "Hall"}), 409)
    future = datetime(2031, 1, 1, 19, tzinfo=timezone.utc).isoformat()
    nowhere = problem_of(api.post("/api/v1/meetings", json={"title": "Somewhere", "kind": "general",
                                                            "starts_at": future, "branch_id": 999999,
                                                            "venue_name": "Hall"}), 409)
    assert nowhere["detail"] == "There is no such branch."  # refused, not a database error


def test_the_register_comes_a_page_at_a_time_with_its_counts_for_the_whole(api, make_member):
    """An AGM's register is every member: a page of rows by name, Link: rel=next to the rest,
    and the counts always for the whole register."""
    people = [make_member(first_name=f"P{n:02d}", last_name=f"Surname{n:02d}", email=f"p{n}@example.org")
              for n in range(7)]
    starts = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    meeting = api.post("/api/v1/meetings", json={"title": "AGM", "kind": "general", "starts_at": starts.isoformat(),
                                                 "venue_name": "Town hall"}).get_json()
    api.put(f"/api/v1/meetings/{meeting['id']}/register", json={"present": [people[5].id]})
    url, names, counts = f"/api/v1/meetings/{meeting['id']}/register?limit=3", [], set()
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.data
        body = response.get_json()
        assert len(body["rows"]) <= 3
        names += [r["name"] for r in body["rows"]]
        counts.add((body["entitled"], body["present"]))
        link = response.headers.get("Link", "")
        url = link[link.index("/api/"):link.index(">")] if link else None
    assert names == [f"P{n:02d} Surname{n:02d}" for n in range(7)]
    assert counts == {(7, 1)}


def test_a_late_notice_is_refused_with_the_reason(api):
    soon = (utcnow() + timedelta(days=2)).replace(microsecond=0).isoformat()
    meeting = api.post("/api/v1/meetings", json={"title": "AGM", "kind": "agm", "starts_at": soon,
                                                 "venue_name": "Hall"}).get_json()
    body = problem_of(api.post(f"/api/v1/meetings/{meeting['id']}/notice", json={}), 409)
    assert "notice" in body["detail"].lower()
    assert api.get(f"/api/v1/meetings/{meeting['id']}").get_json()["status"] == "planned"


def test_minutes_read_approved_by_the_chair_and_circulated(api, client, make_officer, make_token, make_member):
    from mailer.meetings import minutes as minutes_service
    from mailer.meetings import service as meetings
    from mailer.models import MeetingStatus, Minutes, MinutesStatus, Role

    make_member(email="ann@example.org")
    meeting, _ = meetings.create(api.officer, {"title": "November meeting", "kind": "general",
                                               "starts_at": utcnow() + timedelta(days=1), "venue_name": "Hall"})
    meeting.status = MeetingStatus.HELD
    minutes_service.start(api.officer, meeting)
    session.commit()
    read = api.get(f"/api/v1/meetings/{meeting.id}/minutes").get_json()
    assert read["status"] == "draft" and read["items"]
    problem_of(api.post(f"/api/v1/meetings/{meeting.id}/minutes/approve"), 409)  # a secretary is not the chair
    problem_of(api.post(f"/api/v1/meetings/{meeting.id}/minutes/circulate"), 409)  # not yet approved
    chair = TokenClient(client, make_token(make_officer("chair@example.org", Role.CHAIR)))
    assert chair.post(f"/api/v1/meetings/{meeting.id}/minutes/approve").status_code == 200
    circulated = api.post(f"/api/v1/meetings/{meeting.id}/minutes/circulate")
    assert circulated.status_code == 200, circulated.data
    assert session.scalar(select(Minutes).where(Minutes.meeting_id == meeting.id)).status is MinutesStatus.CIRCULATED


def test_an_officer_cannot_revoke_anothers_token(signed_in, make_officer, make_token, client):
    other = make_officer("chair@example.org")
    text = make_token(other)
    token = session.scalar(select(ApiToken).where(ApiToken.officer_id == other.id))
    assert signed_in.post(f"/account/tokens/{token.id}/revoke").status_code == 404
    assert TokenClient(client, text).get("/api/v1/members").status_code == 200
