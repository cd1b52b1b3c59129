"""The members service: search, filters, sorting, pages, branch scope, validation, export and erasure."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from mailer import scope, story
from mailer.db import session
from mailer.members import service
from mailer.members.service import MemberError, MemberQuery
from mailer.models import AuditEvent, Member, MemberStatus, Officer, Role


@pytest.fixture
def branches(make_branch):
    return make_branch("Castle"), make_branch("Riverside")


def _officer(email: str, role: Role, branch=None) -> Officer:
    # Made directly: the service needs only the role and branch, not a (slow to hash) password.
    officer = Officer(email=email, role=role, branch=branch)
    session.add(officer)
    session.commit()
    return officer


@pytest.fixture
def clp(app):
    return _officer("clp@example.org", Role.CLP_SECRETARY)


@pytest.fixture
def castle_secretary(branches):
    return _officer("castle-sec@example.org", Role.BRANCH_SECRETARY, branches[0])


@pytest.fixture
def people(make_member, branches):
    """Six members across two branches, wards and districts, with distinct names and dates."""
    castle, river = branches
    return {
        "zoe": make_member(membership_number="L0001", first_name="Zoë", last_name="Evans", email="zoe@example.org",
                           branch=castle, ward="Castle Ward", polling_district="CA1", status=MemberStatus.ACTIVE,
                           joined_on=date(2015, 1, 1)),
        "sian": make_member(membership_number="L0002", first_name="Siân", last_name="Ó Briain",
                            email="sian.obriain@example.org", branch=castle, ward="Castle Ward",
                            polling_district="CA2", status=MemberStatus.ARREARS, joined_on=date(2019, 6, 1),
                            to_welcome=True),
        "ann": make_member(membership_number="L0003", first_name="Ann", last_name="Abbott", email="ann@example.org",
                           branch=castle, ward="Keep Ward", polling_district="KP1", status=MemberStatus.LAPSED,
                           joined_on=date(2010, 3, 3)),
        "bob": make_member(membership_number="L0004", first_name="Bob", last_name="Young", email="bob_y@example.org",
                           branch=river, ward="River Ward", polling_district="RV1", status=MemberStatus.ACTIVE,
                           joined_on=date(2021, 2, 2), to_welcome=True),
        "cat": make_member(membership_number="L0005", first_name="Cat", last_name="Morris", email="cat@example.org",
                           branch=river, ward="River Ward", polling_district="RV1", status=MemberStatus.NEW,
                           joined_on=date(2024, 1, 1)),
        "dev": make_member(membership_number="L0006", first_name="Dev", last_name="Patel", email="dev@example.org",
                           branch=river, ward="Bridge Ward", polling_district="BR1", status=MemberStatus.RESIGNED,
                           joined_on=date(2012, 9, 9)),
    }


def numbers(page) -> list[str]:
    return [m.membership_number for m in page.items]


# --- search and filters ---------------------------------------------------------------------

@pytest.mark.parametrize("q, expected", [
    ("evans", ["L0001"]), ("ZOË", ["L0001"]), ("zoë evans", ["L0001"]),
    ("Ó Briain", ["L0002"]), ("Siân Ó", ["L0002"]), ("briain", ["L0002"]),
    ("sian.obriain@", ["L0002"]), ("EXAMPLE.ORG", ["L0003", "L0004", "L0002", "L0001", "L0005", "L0006"]),
    ("l0004", ["L0004"]), ("0005", ["L0005"]), ("  young ", ["L0004"]), ("nobody-like-this", []),
])
def test_search_by_name_email_or_membership_number(clp, people, q, expected):
    page = service.search(clp, MemberQuery(q=q))
    assert sorted(numbers(page)) == sorted(expected) and page.total == len(expected)


def test_search_text_is_literal_not_a_pattern(clp, people):
    assert numbers(service.search(clp, MemberQuery(q="bob_y"))) == ["L0004"]
    assert numbers(service.search(clp, MemberQuery(q="b_b"))) == []
    assert numbers(service.search(clp, MemberQuery(q="%"))) == []


@pytest.mark.parametrize("query, expected", [
    (dict(ward="Castle Ward"), ["L0001", "L0002"]),
    (dict(polling_district="RV1"), ["L0004", "L0005"]),
    (dict(status=MemberStatus.ACTIVE), ["L0001", "L0004"]),
    (dict(status=MemberStatus.RESIGNED), ["L0006"]),
    (dict(to_welcome=True), ["L0002", "L0004"]),
    (dict(ward="River Ward", status=MemberStatus.NEW), ["L0005"]),
    (dict(q="example.org", to_welcome=True, ward="Castle Ward"), ["L0002"]),
])
def test_filters(clp, people, query, expected):
    assert sorted(numbers(service.search(clp, MemberQuery(**query)))) == expected


def test_branch_filter(clp, people, branches):
    castle, river = branches
    assert sorted(numbers(service.search(clp, MemberQuery(branch_id=river.id)))) == ["L0004", "L0005", "L0006"]
    assert sorted(numbers(service.search(clp, MemberQuery(branch_id=castle.id)))) == ["L0001", "L0002", "L0003"]


@pytest.mark.parametrize("sort, descending, expected", [
    ("name", False, ["L0003", "L0001", "L0005", "L0006", "L0004"]),           # Abbott, Evans, Morris, Patel, Young
    ("name", True, ["L0004", "L0006", "L0005", "L0001", "L0003"]),
    ("number", True, ["L0006", "L0005", "L0004", "L0003", "L0002", "L0001"]),
    ("joined", False, ["L0003", "L0006", "L0001", "L0002", "L0004", "L0005"]),
    ("joined", True, ["L0005", "L0004", "L0002", "L0001", "L0006", "L0003"]),
    ("status", False, ["L0001", "L0004", "L0002", "L0003", "L0005", "L0006"]),  # by stored word, then surname
])
def test_sorting(clp, people, sort, descending, expected):
    got = numbers(service.search(clp, MemberQuery(sort=sort, descending=descending)))
    # Where "Ó Briain" (L0002) sorts by name depends on the database's collation: compare the rest.
    assert [n for n in got if n in expected] == expected
    assert len(got) == 6


def test_sorting_by_branch_keeps_each_branch_together_by_surname(clp, people):
    got = numbers(service.search(clp, MemberQuery(sort="branch")))
    assert got[3:] == ["L0005", "L0006", "L0004"]  # Riverside: Morris, Patel, Young
    assert set(got[:3]) == {"L0001", "L0002", "L0003"} and got.index("L0003") < got.index("L0001")


def test_an_unknown_sort_falls_back_to_name(clp, people):
    by_name = numbers(service.search(clp, MemberQuery(sort="name")))
    assert numbers(service.search(clp, MemberQuery(sort="drop table"))) == by_name


def test_pagination_walks_every_member_once_by_keyset(clp, make_member):
    from mailer.pagination import Cursor

    for i in range(23):
        make_member(membership_number=f"P{i:03d}", last_name=f"Surname{i:03d}")
    pages = [service.search(clp, MemberQuery(sort="number"), per_page=10)]
    while pages[-1].next_after:
        pages.append(service.search(clp, MemberQuery(sort="number", cursor=Cursor(after=pages[-1].next_after and
                                                                                  decode(pages[-1].next_after))),
                                    per_page=10))
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert all(p.total == 23 for p in pages)
    assert [(p.first, p.at_end) for p in pages] == [(True, False), (False, False), (False, True)]
    assert numbers(pages[0]) + numbers(pages[1]) + numbers(pages[2]) == [f"P{i:03d}" for i in range(23)]
    # The last page, then back one: the same rows as walking forward.
    last = service.search(clp, MemberQuery(sort="number", cursor=Cursor(last=True)), per_page=10)
    assert numbers(last) == [f"P{i:03d}" for i in range(13, 23)] and last.at_end and not last.first
    back = service.search(clp, MemberQuery(sort="number", cursor=Cursor(before=decode(last.prev_before))), per_page=10)
    assert numbers(back) == [f"P{i:03d}" for i in range(3, 13)] and not back.at_end
    # Descending pages too.
    down = service.search(clp, MemberQuery(sort="number", descending=True), per_page=20)
    more = service.search(clp, MemberQuery(sort="number", descending=True, cursor=Cursor(after=decode(down.next_after))),
                          per_page=20)
    assert numbers(down) + numbers(more) == [f"P{i:03d}" for i in reversed(range(23))]


@pytest.mark.parametrize("cursor", ["not-base64!", "W10", "WyJ4Il0", "eyJhIjoxfQ", "WyJ4IiwgInkiLCAiMSJd",
                                    "W3sidCI6IjIwMjAtMDEtMDFUMDA6MDAifSwgMV0", "x" * 5000])
def test_a_cursor_that_cannot_be_read_gives_the_first_page(clp, people, cursor):
    from mailer.pagination import Cursor

    first = numbers(service.search(clp, MemberQuery()))
    for name in ("after", "before"):
        page = service.search(clp, MemberQuery(cursor=Cursor.from_args({name: cursor})))
        assert numbers(page) == first and page.first


def test_a_cursor_naming_no_status_gives_the_first_page(clp, people):
    from mailer.pagination import Cursor, encode

    first = numbers(service.search(clp, MemberQuery(sort="status")))
    page = service.search(clp, MemberQuery(sort="status", cursor=Cursor.from_args({"after": encode(["bogus", "X", 1])})))
    assert numbers(page) == first and page.first


def decode(text):
    from mailer.pagination import decode as decode_cursor

    return decode_cursor(text)


def test_an_empty_list_has_one_page(clp):
    page = service.search(clp, MemberQuery())
    assert (page.items, page.total, page.pages, page.first, page.at_end) == ([], 0, 1, True, True)


# --- branch scope ---------------------------------------------------------------------------

def test_a_branch_secretary_sees_only_their_branch(castle_secretary, people):
    page = service.search(castle_secretary, MemberQuery())
    assert sorted(numbers(page)) == ["L0001", "L0002", "L0003"] and page.total == 3
    assert numbers(service.search(castle_secretary, MemberQuery(q="young"))) == []
    assert numbers(service.search(castle_secretary, MemberQuery(ward="River Ward"))) == []


def test_a_branch_secretary_filtering_on_another_branch_gets_nothing(castle_secretary, people, branches):
    assert numbers(service.search(castle_secretary, MemberQuery(branch_id=branches[1].id))) == []


def test_filter_choices_are_scoped(clp, castle_secretary, people):
    mine = service.filter_choices(castle_secretary)
    assert [b.name for b in mine["branches"]] == ["Castle"]
    assert mine["wards"] == ["Castle Ward", "Keep Ward"] and mine["polling_districts"] == ["CA1", "CA2", "KP1"]
    everything = service.filter_choices(clp)
    assert [b.name for b in everything["branches"]] == ["Castle", "Riverside"]
    assert everything["wards"] == ["Bridge Ward", "Castle Ward", "Keep Ward", "River Ward"]


def test_filter_choices_for_every_branch_are_the_distinct_values_in_order(clp, people, make_member, branches):
    """CLP roles' choices come by index probes, value after value: the same list a DISTINCT gives,
    members without a ward or district left out, whatever the case and however many share one."""
    make_member(membership_number="L0007", first_name="No", last_name="Ward", email="noward@example.org",
                branch=branches[0], ward=None, polling_district=None)
    make_member(membership_number="L0008", first_name="Low", last_name="Case", email="low@example.org",
                branch=branches[1], ward="abbey ward", polling_district="ab1")
    choices = service.filter_choices(clp)
    for name, col in (("wards", Member.ward), ("polling_districts", Member.polling_district)):
        distinct = list(session.scalars(select(col).where(col.is_not(None)).distinct().order_by(col)))
        assert choices[name] == distinct and None not in distinct
    assert sorted(choices["wards"], key=str.lower) == ["abbey ward", "Bridge Ward", "Castle Ward", "Keep Ward",
                                                        "River Ward"]


def test_a_searchs_total_counts_what_its_pages_list(clp, castle_secretary, people):
    """The total is counted from its own statement (the plain search condition, which the trigram
    indexes answer): it must keep the branch scope and the filters the pages keep."""
    from mailer.pagination import Cursor

    for officer, mq in ((clp, MemberQuery(q="example.org")), (castle_secretary, MemberQuery(q="example.org")),
                        (clp, MemberQuery(q="example.org", status=MemberStatus.ACTIVE)),
                        (castle_secretary, MemberQuery(q="example.org", ward="Keep Ward"))):
        listed, page = [], service.search(officer, mq, per_page=2)
        listed += numbers(page)
        while page.next_after:
            mq.cursor = Cursor(after=decode(page.next_after))
            page = service.search(officer, mq, per_page=2)
            listed += numbers(page)
        assert page.total == len(listed) == len(set(listed)) > 0


def test_get_member_respects_the_branch_scope(clp, castle_secretary, people):
    assert scope.get_member(castle_secretary, people["zoe"].id) is people["zoe"]
    assert scope.get_member(castle_secretary, people["bob"].id) is None
    assert scope.get_member(clp, people["bob"].id) is people["bob"]
    assert scope.get_member(clp, 999_999) is None


# --- create and update ----------------------------------------------------------------------

def test_create_member_cleans_values_records_an_audit_event_and_creates_the_branch(clp):
    member = service.create_member(clp, {"membership_number": " L0100 ", "first_name": "Ann", "last_name": "Lee",
                                         "email": "Ann.Lee@Example.org", "postcode": "sw1a1aa",
                                         "branch": "New Town", "joined_on": "01/02/2020", "status": ""})
    session.commit()
    assert (member.membership_number, member.email, member.postcode) == ("L0100", "ann.lee@example.org", "SW1A 1AA")
    assert member.branch.name == "New Town" and member.joined_on == date(2020, 2, 1)
    assert member.status is MemberStatus.NEW
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.create"))
    assert event.subject_id == member.id and event.officer_id == clp.id
    assert event.changes["email"] == [None, "ann.lee@example.org"]
    assert event.changes["joined_on"] == [None, "2020-02-01"]


def test_create_member_reports_every_bad_field_by_name(clp):
    with pytest.raises(MemberError) as caught:
        service.create_member(clp, {"membership_number": "L1", "email": "nope", "joined_on": "30/02/2020",
                                    "status": "pending-ish", "postcode": "X" * 30, "first_name": "A" * 101})
    assert set(caught.value.errors) == {"email", "joined_on", "status", "postcode", "first_name"}
    assert "invalid email" in caught.value.errors["email"]
    assert session.scalars(select(Member)).all() == []


def test_a_member_needs_a_membership_number_or_an_email(clp):
    with pytest.raises(MemberError) as caught:
        service.create_member(clp, {"first_name": "Ann", "membership_number": "", "email": " "})
    assert list(caught.value.errors) == ["membership_number"]


def test_a_membership_number_belongs_to_one_member(clp, people):
    with pytest.raises(MemberError) as caught:
        service.create_member(clp, {"membership_number": "L0001", "email": "other@example.org"})
    assert "belongs to another member" in caught.value.errors["membership_number"]
    with pytest.raises(MemberError) as caught:
        service.update_member(clp, people["ann"], {"membership_number": "L0002"})
    assert "membership_number" in caught.value.errors


def test_a_branch_secretary_adds_members_only_to_their_own_branch(castle_secretary):
    with pytest.raises(MemberError) as caught:
        service.create_member(castle_secretary, {"email": "x@example.org", "branch": "Riverside"})
    assert "branch" in caught.value.errors
    member = service.create_member(castle_secretary, {"email": "x@example.org", "branch": "castle"})
    assert member.branch.name == "Castle"


def test_update_member_returns_and_records_only_the_changes(clp, people):
    ann = people["ann"]
    changes = service.update_member(clp, ann, {"first_name": "Ann", "ward": "New Ward", "status": "active",
                                               "bulletins_consent": "no"})
    session.commit()
    assert changes == {"ward": ["Keep Ward", "New Ward"], "status": ["lapsed", "active"],
                       "bulletins_consent": [True, False]}
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.update"))
    assert event.changes == changes and event.subject_id == ann.id
    assert ann.ward == "New Ward" and ann.status is MemberStatus.ACTIVE


def test_an_edit_that_changes_nothing_records_nothing(clp, people):
    assert service.update_member(clp, people["ann"], {"first_name": "Ann", "ward": "Keep Ward"}) == {}
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "member.update")).all() == []


def test_update_reports_bad_fields_and_changes_nothing(clp, people):
    ann = people["ann"]
    with pytest.raises(MemberError) as caught:
        service.update_member(clp, ann, {"email": "bad@", "ward": "Elsewhere"})
    assert list(caught.value.errors) == ["email"]
    session.rollback()
    assert session.get(Member, ann.id).ward == "Keep Ward"


def test_clearing_one_identifier_is_fine_while_the_other_remains(clp, make_member):
    member = make_member(membership_number="L0900", email="only@example.org")
    assert service.update_member(clp, member, {"email": ""}) == {"email": ["only@example.org", None]}
    with pytest.raises(MemberError) as caught:
        service.update_member(clp, member, {"membership_number": "", "email": ""})
    assert "membership_number" in caught.value.errors


def test_clearing_the_only_identifier_is_refused(clp, make_member):
    no_number = make_member(membership_number=None, email="only@example.org")
    with pytest.raises(MemberError) as caught:
        service.update_member(clp, no_number, {"email": ""})
    assert "membership_number" in caught.value.errors
    no_email = make_member(membership_number="L0901", email=None)
    with pytest.raises(MemberError):
        service.update_member(clp, no_email, {"membership_number": " "})


def test_a_branch_secretary_cannot_edit_or_move_members_outside_their_branch(castle_secretary, people):
    with pytest.raises(MemberError) as caught:
        service.update_member(castle_secretary, people["bob"], {"ward": "Mine now"})
    assert caught.value.errors == {"member": "not found"}
    with pytest.raises(MemberError) as caught:
        service.update_member(castle_secretary, people["zoe"], {"branch": "Riverside"})
    assert "branch" in caught.value.errors
    session.rollback()
    assert session.get(Member, people["zoe"].id).branch.name == "Castle"


def test_mark_welcomed_takes_a_member_off_the_list_once(clp, people):
    sian = people["sian"]
    service.mark_welcomed(clp, sian)
    service.mark_welcomed(clp, sian)
    session.commit()
    assert sian.to_welcome is False
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.welcomed")).all()
    assert [e.subject_id for e in events] == [sian.id]


# --- subject access and erasure -------------------------------------------------------------

def test_export_data_gives_everything_held_and_logs_the_export(clp, people):
    zoe = people["zoe"]
    service.update_member(clp, zoe, {"phone": "07700 900123"})
    session.commit()
    data = story.export_data(clp, zoe)
    session.commit()
    assert data["email"] == "zoe@example.org" and data["first_name"] == "Zoë" and data["branch"] == "Castle"
    assert data["joined_on"] == "2015-01-01" and data["status"] == "active" and data["phone"] == "07700 900123"
    changes = data["Changes to their record"]  # in words: the export is read by the member
    assert [h["what"] for h in changes] == ["member details changed"]
    assert changes[0]["changes"] == {"phone": ["", "07700 900123"]}
    exports = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.export")).all()
    assert [e.subject_id for e in exports] == [zoe.id]


def test_erase_removes_personal_data_and_blanks_the_audit_values(clp, people):
    zoe, bob = people["zoe"], people["bob"]
    service.update_member(clp, zoe, {"phone": "07700 900123", "email": "zoe.new@example.org"})
    service.update_member(clp, bob, {"phone": "07700 900999"})
    session.commit()
    service.erase(clp, zoe, "erasure request received 1 May")
    session.commit()
    session.expire_all()
    zoe = session.get(Member, zoe.id)
    for name in ("membership_number", "email", "phone", "postcode", "ward", "polling_district", "joined_on"):
        assert getattr(zoe, name) is None, name
    assert (zoe.first_name, zoe.last_name, zoe.status) == ("", "[erased]", MemberStatus.RESIGNED)
    assert not (zoe.notices_consent or zoe.bulletins_consent or zoe.to_welcome)
    for event in service.history(zoe):
        for old_new in event.changes.values():
            assert old_new == ["[erased]", "[erased]"]
    texts = " ".join(str(e.changes) for e in session.scalars(select(AuditEvent)))
    assert "zoe" not in texts.lower() and "900123" not in texts
    assert "900999" in texts  # someone else's history is untouched
    erase_event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.erase"))
    assert erase_event.note == "erasure request received 1 May" and erase_event.subject_id == zoe.id
    assert service.search(clp, MemberQuery(q="zoe")).total == 0


def test_erase_leaves_no_address_in_the_members_deliveries(clp, people):
    """Deliveries have no foreign key to members (0016_send_start): erasure itself takes the
    address off the member's delivery rows, in every campaign, queued or long sent, and out of a
    relay's reply quoting it; others' rows and every row's status stay."""
    from mailer.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Stream

    zoe, bob = people["zoe"], people["bob"]
    sent = Campaign(stream=Stream.BULLETINS, name="Sent", subject="s", status=CampaignStatus.SENT)
    live = Campaign(stream=Stream.BULLETINS, name="Live", subject="l", status=CampaignStatus.SENDING)
    session.add_all([sent, live])
    session.flush()
    session.add_all([
        Delivery(campaign_id=sent.id, member_id=zoe.id, email="zoe@example.org", status=DeliveryStatus.FAILED,
                 error="550 <zoe@example.org>: no such mailbox"),
        Delivery(campaign_id=live.id, member_id=zoe.id, email="zoe@example.org", status=DeliveryStatus.QUEUED),
        Delivery(campaign_id=sent.id, member_id=bob.id, email=bob.email, status=DeliveryStatus.SENT)])
    session.commit()
    service.erase(clp, zoe, "erasure request")
    session.commit()
    session.expire_all()
    rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(r.member_id, r.status) for r in rows] == [(zoe.id, DeliveryStatus.FAILED), (zoe.id, DeliveryStatus.QUEUED),
                                                       (bob.id, DeliveryStatus.SENT)]
    assert [r.email for r in rows] == [f"[erased {rows[0].id}]", f"[erased {rows[1].id}]", bob.email]
    assert rows[0].error == "550 <[erased]>: no such mailbox"
    everything = " ".join(f"{r.email} {r.error}" for r in rows)
    assert "zoe" not in everything.lower()


def test_erase_needs_a_reason(clp, people):
    with pytest.raises(MemberError) as caught:
        service.erase(clp, people["zoe"], "   ")
    assert "reason" in caught.value.errors
    assert people["zoe"].email == "zoe@example.org"


def test_erase_also_removes_the_member_from_import_error_reports(clp, make_member, run_import):
    from mailer.models import ImportRun
    from tests.members.conftest import csv_bytes

    member = make_member(membership_number="L0777", email="erase.me@example.org")
    run_import(csv_bytes([["Membership Number", "Email", "Joined"], ["L0777", "erase.me@example.org", "soon"],
                          ["L07770", "keep.me@example.org", "never"]]))
    service.erase(clp, member, "erasure request")
    session.commit()
    summary = session.get(ImportRun, run_import.last_run.id).summary
    assert [e["line"] for e in summary["errors"]] == [2, 3]  # the reports stay, without the person
    assert summary["errors"][0]["who"] == "[erased]" and "erase.me" not in str(summary)
    assert summary["errors"][1]["who"] == "L07770"  # a number that merely starts the same is someone else


def test_search_ignores_case_of_accented_capitals(app, make_officer, make_member):
    from mailer.members import service

    make_member(first_name="Siân", last_name="Évans")
    officer = make_officer()
    page = service.search(officer, service.MemberQuery(q="SIÂN ÉVANS"))
    assert [m.first_name for m in page.items] == ["Siân"]


def test_branch_secretary_without_a_branch_sees_no_one(app, make_officer, make_member, make_branch):
    from mailer.members import service
    from mailer.models import Role

    make_member(first_name="Unbranched")
    officer = make_officer("nobranch@example.org", Role.CLP_OFFICER)
    officer.role = Role.BRANCH_SECRETARY  # as if the account had lost its branch
    assert service.search(officer, service.MemberQuery()).total == 0
