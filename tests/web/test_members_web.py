"""The members pages: finding, reading, adding and editing members, within the officer's scope."""

from __future__ import annotations

import html
import re

import json
from datetime import date

from sqlalchemy import select

from mailer.db import session
from mailer.models import AuditEvent, Member, MemberStatus, Role
from tests.conftest import login


def _names(response) -> str:
    return response.data.decode()


def test_members_list_searches_by_name_email_and_number(signed_in, make_member):
    make_member(first_name="Keir", last_name="Hardie", email="keir@example.org", membership_number="L100")
    make_member(first_name="Ellen", last_name="Wilkinson", email="ellen@example.org", membership_number="L200")
    for q in ("hardie", "keir hardie", "KEIR@EXAMPLE", "l100"):
        page = _names(signed_in.get("/members/", query_string={"q": q}))
        assert "Keir Hardie" in page and "Ellen Wilkinson" not in page, q
    assert "1 member<" in _names(signed_in.get("/members/", query_string={"q": "wilkinson"}))


def test_members_list_filters_by_branch_ward_district_and_status(signed_in, make_member, make_branch):
    north, south = make_branch("North"), make_branch("South")
    make_member(first_name="Anne", branch=north, ward="Castle", polling_district="CA1", status=MemberStatus.ACTIVE)
    make_member(first_name="Bert", branch=south, ward="Abbey", polling_district="AB1", status=MemberStatus.LAPSED)
    checks = [({"branch": north.id}, "Anne", "Bert"), ({"ward": "Abbey"}, "Bert", "Anne"),
              ({"pd": "CA1"}, "Anne", "Bert"), ({"status": "lapsed"}, "Bert", "Anne")]
    for args, shown, hidden in checks:
        page = _names(signed_in.get("/members/", query_string=args))
        assert shown in page and hidden not in page, args


def test_members_list_sorts_and_paginates(make_app, make_officer, make_member):
    app = make_app(PAGE_SIZE=2)
    with app.app_context():
        officer = make_officer()
        for last in ("Cole", "Abbott", "Bevan"):
            make_member(last_name=last, first_name="X")
        client = app.test_client()
        login(client, officer.email)
        first = _names(client.get("/members/"))
        assert first.index("Abbott") < first.index("Bevan") and "Cole" not in first
        # Keyset pages: "Next" carries where the page ended; "Last" and "Previous" lead back.
        following = re.search(r'href="([^"]+)" rel="next"', first)
        assert following and "after=" in following.group(1)
        second = _names(client.get(html.unescape(following.group(1))))
        assert "Cole" in second and "Abbott" not in second
        assert 'rel="next"' not in second and 'rel="prev"' in second
        last = _names(client.get("/members/", query_string={"last": "1"}))  # the last full page
        assert last.index("Bevan") < last.index("Cole") and "Abbott" not in last and 'rel="next"' not in last
        reverse = _names(client.get("/members/", query_string={"sort": "-name"}))
        assert reverse.index("Cole") < reverse.index("Bevan")


def test_to_welcome_filter_and_marking_welcomed(signed_in, make_member):
    newcomer = make_member(first_name="Newcomer", to_welcome=True)
    make_member(first_name="Oldhand")
    page = _names(signed_in.get("/members/", query_string={"welcome": "1"}))
    assert "Newcomer" in page and "Oldhand" not in page
    signed_in.post(f"/members/{newcomer.id}/welcomed")
    session.expire_all()
    assert session.get(Member, newcomer.id).to_welcome is False
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "member.welcomed")) is not None


def test_member_page_shows_details_consent_and_history(signed_in, make_member):
    member = make_member(first_name="Jennie", last_name="Lee", phone="07700 900123", bulletins_consent=False)
    page = _names(signed_in.get(f"/members/{member.id}"))
    assert "Jennie Lee" in page and "07700 900123" in page
    assert "No consent: not sent" in page


def test_add_a_member_by_hand(signed_in, make_branch):
    make_branch("North")
    response = signed_in.post("/members/new", data={
        "membership_number": "L777", "first_name": "Barbara", "last_name": "Castle", "email": "Barbara@Example.org",
        "branch": "North", "status": "active", "joined_on": "03/02/2001", "postcode": "bb1 1aa",
        "notices_consent": "yes", "bulletins_consent": "no"})
    assert response.status_code == 302
    member = session.scalar(select(Member).where(Member.membership_number == "L777"))
    assert (member.email, member.branch.name, member.joined_on, member.postcode, member.bulletins_consent) == \
        ("barbara@example.org", "North", date(2001, 2, 3), "BB1 1AA", False)
    event = session.scalar(select(AuditEvent).where(AuditEvent.subject_type == "member", AuditEvent.subject_id == member.id))
    assert event.action == "member.create" and event.actor == signed_in.officer.email
    assert event.changes["email"] == [None, "barbara@example.org"]


def test_bad_input_is_shown_by_field_and_nothing_is_saved(signed_in, make_member):
    make_member(membership_number="TAKEN")
    response = signed_in.post("/members/new", data={
        "membership_number": "", "first_name": "No", "email": "not-an-email", "joined_on": "31/02/2020",
        "status": "emeritus"})
    page = _names(response)
    assert response.status_code == 400
    assert "invalid email address" in page and "malformed date" in page and "unknown status" in page
    response = signed_in.post("/members/new", data={"membership_number": "TAKEN", "first_name": "Dup", "status": "new"})
    assert response.status_code == 400 and "belongs to another member" in _names(response)
    assert session.query(Member).count() == 1


def test_edit_records_old_and_new_values(signed_in, make_member):
    member = make_member(first_name="Nye", last_name="Bevan", email="nye@example.org")
    form = {"membership_number": member.membership_number, "first_name": "Aneurin", "last_name": "Bevan",
            "email": "nye@example.org", "status": "arrears", "notices_consent": "yes", "bulletins_consent": "yes"}
    assert signed_in.post(f"/members/{member.id}/edit", data=form).status_code == 302
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.update"))
    assert event.changes["first_name"] == ["Nye", "Aneurin"]
    assert event.changes["status"] == ["active", "arrears"]
    assert "email" not in event.changes
    page = _names(signed_in.get(f"/members/{member.id}"))
    assert "Aneurin" in page and "Member details changed" in page and "member.update" not in page
    assert "first name: Nye → Aneurin" in page and "first_name" not in page


def test_branch_secretary_sees_only_their_branch(client, make_officer, make_branch, make_member):
    north, south = make_branch("North"), make_branch("South")
    mine = make_member(first_name="Mine", last_name="Northerner", branch=north)
    theirs = make_member(first_name="Theirs", last_name="Southerner", branch=south)
    officer = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    login(client, officer.email)
    listing = _names(client.get("/members/"))
    assert "Northerner" in listing and "Southerner" not in listing
    searched = _names(client.get("/members/", query_string={"q": "Southerner"}))
    assert "0 members" in searched and "Theirs" not in searched
    assert "Southerner" not in _names(client.get("/members/", query_string={"branch": south.id}))
    assert client.get(f"/members/{mine.id}").status_code == 200
    for path in (f"/members/{theirs.id}", f"/members/{theirs.id}/edit"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/members/{theirs.id}/export").status_code == 404
    assert client.post(f"/members/{theirs.id}/export.pdf").status_code == 404
    overview = _names(client.get("/"))
    assert "1</span> members" in overview


def test_branch_secretary_cannot_move_a_member_out_or_add_one_elsewhere(client, make_officer, make_branch, make_member):
    north, south = make_branch("North"), make_branch("South")
    mine = make_member(branch=north)
    officer = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    login(client, officer.email)
    response = client.post(f"/members/{mine.id}/edit", data={"first_name": "X", "branch": "South", "status": "active",
                                                              "notices_consent": "yes", "bulletins_consent": "yes"})
    assert response.status_code == 400
    session.expire_all()
    assert session.get(Member, mine.id).branch_id == north.id
    response = client.post("/members/new", data={"email": "x@example.org", "branch": "South", "status": "new"})
    assert response.status_code == 400
    assert session.query(Member).filter_by(branch_id=south.id).count() == 0


def test_export_gives_everything_held_and_is_audited(signed_in, make_member):
    member = make_member(first_name="Clement", last_name="Attlee", email="clem@example.org")
    response = signed_in.post(f"/members/{member.id}/export")
    data = json.loads(response.data)
    assert data["email"] == "clem@example.org" and data["first_name"] == "Clement"
    assert "attachment" in response.headers["Content-Disposition"]
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "member.export",
                                                   AuditEvent.subject_id == member.id)) is not None


def test_erase_removes_personal_data_and_blanks_history(signed_in, make_member):
    member = make_member(first_name="Ada", last_name="Salter", email="ada@example.org", phone="07700 900555")
    signed_in.post(f"/members/{member.id}/edit", data={"first_name": "Adeline", "last_name": "Salter",
                                                        "email": "ada@example.org", "status": "active",
                                                        "notices_consent": "yes", "bulletins_consent": "yes"})
    response = signed_in.post(f"/members/{member.id}/erase", data={"reason": "erasure request of 1 Nov"})
    assert response.status_code == 302
    session.expire_all()
    erased = session.get(Member, member.id)
    assert (erased.email, erased.phone, erased.first_name, erased.membership_number) == (None, None, "", None)
    dump = json.dumps([e.changes for e in session.scalars(select(AuditEvent))])
    assert "Adeline" not in dump and "ada@example.org" not in dump
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "member.erase")).note == "erasure request of 1 Nov"


def test_erase_needs_a_reason_and_the_secretary_role(client, make_officer, make_member):
    member = make_member()
    officer = make_officer("chair@example.org", Role.CLP_OFFICER)
    login(client, officer.email)
    assert client.post(f"/members/{member.id}/erase", data={"reason": "x"}).status_code == 403
    client.post("/logout")
    secretary = make_officer()
    login(client, secretary.email)
    assert client.post(f"/members/{member.id}/erase", data={"reason": "  "}).status_code == 200
    session.expire_all()
    assert session.get(Member, member.id).email is not None


def test_tags_are_set_from_the_form_and_audited(signed_in, make_member):
    member = make_member(first_name="Tess")
    form = {"membership_number": member.membership_number, "first_name": "Tess", "last_name": member.last_name,
            "email": member.email, "status": "active", "notices_consent": "yes", "bulletins_consent": "yes",
            "tags": "Driver, canvasser,  driver "}
    assert signed_in.post(f"/members/{member.id}/edit", data=form).status_code == 302
    session.expire_all()
    assert sorted((t.name for t in session.get(Member, member.id).tags), key=str.lower) == ["canvasser", "Driver"]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.update"))
    assert event.changes["tags"] == [None, "canvasser, Driver"]
    assert "canvasser, Driver" in signed_in.get(f"/members/{member.id}").data.decode()


def test_consent_changed_by_an_officer_lands_in_the_consent_log(signed_in, make_member):
    from mailer.models import ConsentEvent

    member = make_member(first_name="Connie")
    form = {"membership_number": member.membership_number, "first_name": "Connie", "last_name": member.last_name,
            "email": member.email, "status": "active", "notices_consent": "yes", "bulletins_consent": "no"}
    signed_in.post(f"/members/{member.id}/edit", data=form)
    [event] = session.scalars(select(ConsentEvent).where(ConsentEvent.member_id == member.id)).all()
    assert (event.stream, event.granted, event.source) == ("bulletins", False, "officer")
