"""Importing the membership export: the diff against what Mailer holds, bad rows, one transaction, audit."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from mailer.db import session
from mailer.members import exportfile, importer
from mailer.models import AuditEvent, Branch, ImportMapping, ImportRun, ImportStatus, Member, MemberStatus
from tests.members.conftest import csv_bytes, database_text, member_rows

HEADER = ["Membership Number", "First name", "Last name", "Email", "Branch", "Ward", "Polling District", "Status",
          "Joined"]


def export(*rows: list[str], header=HEADER, **kw) -> bytes:
    return csv_bytes([header, *rows], **kw)


def by_number(number: str) -> Member | None:
    return session.scalar(select(Member).where(Member.membership_number == number))


def member_count() -> int:
    return session.scalar(select(func.count()).select_from(Member))


# --- new members ----------------------------------------------------------------------------

def test_new_members_are_created_with_their_fields_and_put_on_the_to_welcome_list(app, run_import):
    result = run_import(export(
        ["L001", "Zoë", "Evans", "Zoe.Evans@Example.org", "Castle", "Castle Ward", "CA1", "Active", "05/03/2019"],
        ["L002", "Siân", "Ó Briain", "sian@example.org", "Riverside", "River Ward", "RV2", "New", "28/11/2023"],
    ))
    # Once written, a new member's values are in the database (and its log), not in the plan.
    assert [session.get(Member, c.member.id).membership_number for c in result.new] == ["L001", "L002"]
    assert all(c.values == {} for c in result.new)
    zoe, sian = by_number("L001"), by_number("L002")
    assert (zoe.first_name, zoe.last_name, zoe.email) == ("Zoë", "Evans", "zoe.evans@example.org")
    assert (zoe.branch.name, zoe.ward, zoe.polling_district) == ("Castle", "Castle Ward", "CA1")
    assert zoe.status is MemberStatus.ACTIVE and sian.status is MemberStatus.NEW
    assert zoe.joined_on == date(2019, 3, 5) and sian.joined_on == date(2023, 11, 28)
    assert zoe.to_welcome and sian.to_welcome
    assert sorted(result.new_branches) == ["Castle", "Riverside"]
    assert sorted(session.scalars(select(Branch.name))) == ["Castle", "Riverside"]


def test_new_member_without_a_status_is_active_and_gets_the_default_bulletin_consent(app, run_import):
    app.config["IMPORT_DEFAULT_BULLETINS"] = False
    run_import(export(["L001", "Ann", "Lee", "ann@example.org", "", "", "", "", ""]))
    ann = by_number("L001")
    assert ann.status is MemberStatus.ACTIVE
    assert ann.bulletins_consent is False and ann.notices_consent is True
    assert ann.branch is None and ann.joined_on is None


def test_a_consent_column_is_read_as_yes_or_no(app, run_import):
    run_import(csv_bytes([["Email", "Email opt-in"], ["yes@example.org", "Yes"], ["no@example.org", "No"]]))
    consent = dict(session.execute(select(Member.email, Member.bulletins_consent)).all())
    assert consent == {"yes@example.org": True, "no@example.org": False}


# --- matching and the diff ------------------------------------------------------------------

def test_a_member_is_matched_by_membership_number_and_only_changed_fields_are_reported(app, make_branch, make_member,
                                                                                       run_import):
    castle = make_branch("Castle")
    held = make_member(membership_number="L001", first_name="Ann", last_name="Lee", email="ann@example.org",
                       branch=castle, ward="Castle Ward", polling_district="CA1", status=MemberStatus.ACTIVE,
                       joined_on=date(2019, 3, 5))
    result = run_import(export(
        ["L001", "Ann", "Lee-Smith", "ann.smith@example.org", "Castle", "Castle Ward", "CA1", "Active", "05/03/2019"]))
    assert result.new == [] and result.unchanged == 0
    (change,) = result.updated
    assert change.member.id == held.id
    assert change.changes == {"last_name": ["Lee", "Lee-Smith"], "email": ["ann@example.org", "ann.smith@example.org"]}
    assert not change.moved
    session.expire_all()
    assert member_count() == 1
    assert (held.last_name, held.email) == ("Lee-Smith", "ann.smith@example.org")
    assert held.to_welcome is False  # only new members are to be welcomed


def test_a_member_is_matched_by_email_when_the_file_has_no_membership_number(app, make_member, run_import):
    held = make_member(membership_number="L001", email="ann@example.org", ward="Old Ward")
    result = run_import(csv_bytes([["Email address", "Ward"], ["ANN@example.org", "New Ward"]]))
    assert [c.member.id for c in result.updated] == [held.id] and result.new == []
    session.expire_all()
    assert held.ward == "New Ward" and held.membership_number == "L001"


def test_a_member_held_without_a_number_is_matched_by_email_and_given_the_number(app, make_member, run_import):
    held = make_member(membership_number=None, email="ann@example.org")
    result = run_import(csv_bytes([["Member ID", "Email"], ["L777", "ann@example.org"]]))
    assert [c.changes for c in result.updated] == [{"membership_number": [None, "L777"]}]
    session.expire_all()
    assert held.membership_number == "L777" and member_count() == 1


def test_a_different_membership_number_is_a_different_member_even_with_the_same_email(app, make_member, run_import):
    make_member(membership_number="L001", email="family@example.org")
    result = run_import(csv_bytes([["Member ID", "Email"], ["L002", "family@example.org"]]))
    assert len(result.new) == 1 and result.updated == []
    assert member_count() == 2


def test_unchanged_members_are_counted_and_not_touched(app, make_member, run_import):
    held = make_member(membership_number="L001", first_name="Ann", last_name="Lee", email="ann@example.org",
                       status=MemberStatus.ACTIVE)
    before = member_rows()
    result = run_import(csv_bytes([["Membership Number", "First name", "Last name", "Email", "Status"],
                                   ["L001", "Ann", "Lee", "ann@example.org", "Current"]]))
    assert (result.unchanged, result.updated, result.new) == (1, [], [])
    assert member_rows() == before
    assert session.scalars(select(AuditEvent).where(AuditEvent.subject_id == held.id,
                                                    AuditEvent.subject_type == "member")).all() == []


def test_moves_of_branch_or_ward_are_listed(app, make_branch, make_member, plan_import):
    castle, _riverside = make_branch("Castle"), make_branch("Riverside")
    make_member(membership_number="L001", branch=castle, ward="Castle Ward", email="a@example.org")
    make_member(membership_number="L002", branch=castle, ward="Castle Ward", email="b@example.org")
    make_member(membership_number="L003", branch=castle, ward="Castle Ward", email="c@example.org")
    make_member(membership_number="L004", branch=castle, ward="Castle Ward", email="d@example.org")
    result = plan_import(csv_bytes([["Membership Number", "Branch", "Ward", "Email"],
                                    ["L001", "Riverside", "Castle Ward", "a@example.org"],   # moved branch
                                    ["L002", "Castle", "North Ward", "b@example.org"],      # moved ward
                                    ["L003", "Castle", "Castle Ward", "new-c@example.org"],  # email only
                                    ["L004", "Castle", "Castle Ward", "d@example.org"]]))   # unchanged
    assert sorted(c.member.membership_number for c in result.moved) == ["L001", "L002"]
    assert len(result.updated) == 3 and result.unchanged == 1
    l001 = next(c for c in result.updated if c.member.membership_number == "L001")
    assert l001.changes == {"branch": ["Castle", "Riverside"]}
    assert result.new_branches == []  # Riverside is already held


def test_branch_names_differing_only_in_case_are_the_same_branch(app, make_branch, make_member, run_import):
    castle = make_branch("Castle")
    make_member(membership_number="L001", branch=castle, email="a@example.org")
    result = run_import(csv_bytes([["Membership Number", "Branch", "Email"],
                                   ["L001", "CASTLE", "a@example.org"],
                                   ["L002", "castle ", "b@example.org"]]))
    assert result.updated == [] and result.unchanged == 1 and result.new_branches == []
    assert list(session.scalars(select(Branch.name))) == ["Castle"]
    assert by_number("L002").branch_id == castle.id


def test_lapsed_and_resigned_members_are_listed(app, make_member, run_import):
    for n in ("L001", "L002", "L003", "L004"):
        make_member(membership_number=n, email=f"{n.lower()}@example.org", status=MemberStatus.ACTIVE)
    result = run_import(csv_bytes([["Membership Number", "Status"], ["L001", "Lapsed"], ["L002", "Resigned"],
                                   ["L003", "Active"], ["L004", "In arrears"]]))
    assert [c.member.membership_number for c in result.with_status(MemberStatus.LAPSED)] == ["L001"]
    assert [c.member.membership_number for c in result.with_status(MemberStatus.RESIGNED)] == ["L002"]
    assert result.summary()["lapsed"] == 1 and result.summary()["resigned"] == 1
    session.expire_all()
    assert by_number("L001").status is MemberStatus.LAPSED
    assert by_number("L004").status is MemberStatus.ARREARS


def test_a_blank_status_keeps_the_status_held(app, make_member, run_import):
    make_member(membership_number="L001", status=MemberStatus.ARREARS)
    result = run_import(csv_bytes([["Membership Number", "Status", "Ward"], ["L001", "", "Castle Ward"]]))
    assert [c.changes for c in result.updated] == [{"ward": [None, "Castle Ward"]}]
    session.expire_all()
    assert by_number("L001").status is MemberStatus.ARREARS


def test_an_existing_members_consent_is_left_alone_when_the_file_has_no_consent_column(app, make_member, run_import):
    make_member(membership_number="L001", bulletins_consent=False, ward="A")
    run_import(csv_bytes([["Membership Number", "Ward"], ["L001", "B"]]))
    session.expire_all()
    assert by_number("L001").bulletins_consent is False and by_number("L001").ward == "B"


def test_a_full_export_lists_members_no_longer_present_and_changes_nothing_about_them(app, make_member, run_import):
    make_member(membership_number="L001", last_name="Present")
    gone = make_member(membership_number="L002", last_name="Gone", status=MemberStatus.ACTIVE)
    make_member(membership_number="L003", last_name="Resigned", status=MemberStatus.RESIGNED)
    data = csv_bytes([["Membership Number", "Last name"], ["L001", "Present"], ["L009", "Newcomer"]])
    result = run_import(data, full_export=True)
    assert [m.membership_number for m in result.missing] == ["L002"]  # a resigned member is not missed
    assert result.summary()["missing"] == 1
    session.expire_all()
    assert gone.status is MemberStatus.ACTIVE and gone.last_name == "Gone"


def test_an_ordinary_export_lists_nobody_as_missing(app, make_member, plan_import):
    make_member(membership_number="L002")
    assert plan_import(csv_bytes([["Membership Number"], ["L001"]])).missing == []


def test_a_member_whose_row_has_an_error_is_not_reported_as_missing(app, make_member, plan_import):
    make_member(membership_number="L001", email="ann@example.org")
    result = plan_import(csv_bytes([["Membership Number", "Joined"], ["L001", "31/31/2020"]]), full_export=True)
    assert [e.line for e in result.errors] == [2]
    assert result.missing == []


def test_erased_members_are_never_matched(app, make_officer, make_member, run_import):
    from mailer.members import service

    officer = make_officer()
    member = make_member(membership_number="L001", email="ann@example.org")
    service.erase(officer, member, "erasure request")
    session.commit()
    result = run_import(csv_bytes([["Email"], ["ann@example.org"]]))
    assert len(result.new) == 1 and result.updated == []
    session.expire_all()
    assert member.last_name == "[erased]" and member.email is None


# --- bad rows -------------------------------------------------------------------------------

def test_bad_rows_are_listed_with_their_line_and_reason_and_do_not_stop_the_good_rows(app, run_import):
    rows = [
        ["Membership Number", "First name", "Email", "Joined", "Status", "Notes"],
        ["L001", "Good", "good1@example.org", "01/02/2020", "Active", "multi\nline\nnote"],  # lines 2-4
        ["", "Nobody", "", "01/02/2020", "Active", ""],                                     # 5: no identifier
        ["L003", "Bad", "not-an-email", "01/02/2020", "Active", "two\r\nlines"],             # 6-7: email
        ["L004", "Bad", "bad4@example.org", "2020-31-31", "Active", ""],                      # 8: date
        ["L005", "Bad", "bad5@example.org", "01/02/2020", "Pending-ish", ""],                # 9: status
        ["L006", "Good", "good6@example.org", "", "", ""],                                   # 10
    ]
    result = run_import(csv_bytes(rows, delimiter=";"))
    errors = {e.line: e.reason for e in result.errors}
    assert sorted(errors) == [5, 6, 8, 9]
    assert "no membership number or email" in errors[5]
    assert "invalid email" in errors[6] and "not-an-email" in errors[6]
    assert "malformed date" in errors[8] and "2020-31-31" in errors[8]
    assert "unknown status" in errors[9] and "Pending-ish" in errors[9]
    assert {e.who for e in result.errors} == {"line 5: no membership number or email", "L003", "L004", "L005"}
    assert sorted(session.get(Member, c.member.id).membership_number for c in result.new) == ["L001", "L006"]
    assert sorted(session.scalars(select(Member.membership_number))) == ["L001", "L006"]
    summary = session.get(ImportRun, run_import.last_run.id).summary
    assert [e["line"] for e in summary["errors"]] == [5, 6, 8, 9]


def test_a_row_with_several_problems_lists_them_all(app, plan_import):
    result = plan_import(csv_bytes([["Membership Number", "Email", "Joined"], ["L1", "nope", "soon"]]))
    (error,) = result.errors
    assert "invalid email" in error.reason and "malformed date" in error.reason


def test_a_membership_number_twice_in_the_file_is_an_error_on_the_second_line(app, plan_import):
    result = plan_import(csv_bytes([["Membership Number", "Email"], ["L001", "a@example.org"],
                                    ["L002", "b@example.org"], ["L001", "c@example.org"]]))
    assert [(e.line, e.who) for e in result.errors] == [(4, "L001")]
    assert "also on line 2" in result.errors[0].reason
    assert len(result.new) == 2


def test_an_email_twice_without_membership_numbers_is_an_error_on_the_second_line(app, plan_import):
    result = plan_import(csv_bytes([["Email", "First name"], ["a@example.org", "A"], ["b@example.org", "B"],
                                    ["A@example.org", "A again"]]))
    assert [e.line for e in result.errors] == [4] and "also on line 2" in result.errors[0].reason
    assert len(result.new) == 2


def test_two_rows_matching_one_held_member_update_it_once(app, make_member, plan_import):
    make_member(membership_number=None, email="ann@example.org")
    result = plan_import(csv_bytes([["Membership Number", "Email"], ["L1", "ann@example.org"],
                                    ["L2", "ann@example.org"]]))
    assert len(result.updated) == 1 and [e.line for e in result.errors] == [3]


# --- one transaction ------------------------------------------------------------------------

def test_planning_changes_nothing(app, make_member, plan_import):
    make_member(membership_number="L001", ward="A")
    before = member_rows()
    result = plan_import(csv_bytes([["Membership Number", "Ward", "Branch"], ["L001", "B", "New Branch"],
                                    ["L002", "C", "New Branch"]]))
    session.commit()
    assert len(result.new) == 1 and len(result.updated) == 1
    assert member_rows() == before
    assert session.scalar(select(func.count()).select_from(Branch)) == 0


@pytest.mark.parametrize("fail_on_call", [1, 3, 5])
def test_a_failure_part_way_through_changes_nothing_and_marks_the_import_failed(app, make_member, monkeypatch,
                                                                                 fail_on_call):
    make_member(membership_number="L001", ward="Old Ward", email="a@example.org")
    make_member(membership_number="L002", ward="Old Ward", email="b@example.org")
    before = member_rows()
    data = csv_bytes([["Membership Number", "Ward", "Branch", "Email"],
                      ["L001", "New Ward", "Fresh Branch", "a@example.org"],
                      ["L002", "New Ward", "Fresh Branch", "b@example.org"],
                      ["L003", "New Ward", "Fresh Branch", "c@example.org"],
                      ["L004", "New Ward", "Fresh Branch", "d@example.org"]])
    run = importer.start("export.csv", data, None)
    run.mapping = {"Membership Number": "membership_number", "Ward": "ward", "Branch": "branch",
                   "Email": "email"}
    session.commit()
    calls = []

    def flaky_write(_conn, _cursor, statement, *_args):  # the Nth INSERT or UPDATE the import sends
        if len(calls) < fail_on_call and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            calls.append(statement)
            if len(calls) == fail_on_call:
                raise RuntimeError("disk on fire")

    from sqlalchemy import event

    from mailer.db import engine

    event.listen(engine(), "before_cursor_execute", flaky_write)
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            importer.apply(run, None)
    finally:
        event.remove(engine(), "before_cursor_execute", flaky_write)
    assert len(calls) == fail_on_call

    session.expire_all()
    assert member_rows() == before
    assert session.scalar(select(func.count()).select_from(Branch)) == 0
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "member.import")).all() == []
    assert session.scalars(select(ImportMapping)).all() == []
    failed = session.get(ImportRun, run.id)
    assert failed.status is ImportStatus.FAILED and "disk on fire" in failed.error
    assert failed.content is None and failed.finished_at is not None


def test_a_failure_before_the_import_was_committed_is_still_recorded(app, make_member, monkeypatch):
    """The command line applies straight after uploading, without a commit in between."""
    make_member(membership_number="L001", ward="Old Ward")
    run = importer.start("export.csv", csv_bytes([["Membership Number", "Ward"], ["L001", "New Ward"]]), None)

    def broken(*_a, **_k):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(importer.audit, "record", broken)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        importer.apply(run, None)
    monkeypatch.undo()
    session.expire_all()
    assert by_number("L001").ward == "Old Ward"
    (failed,) = session.scalars(select(ImportRun)).all()
    assert failed.status is ImportStatus.FAILED and "audit log unavailable" in failed.error
    assert failed.filename == "export.csv" and failed.content is None


def test_an_import_cannot_be_applied_twice(app, run_import):
    run_import(csv_bytes([["Email"], ["a@example.org"]]))
    run = session.get(ImportRun, run_import.last_run.id)
    with pytest.raises(exportfile.ExportFileError, match="already applied"):
        importer.apply(run, None)
    assert member_count() == 1


def test_a_cancelled_import_changes_nothing_and_forgets_the_file(app, make_officer, make_member):
    officer = make_officer()
    make_member(membership_number="L001", ward="A")
    before = member_rows()
    run = importer.start("export.csv", csv_bytes([["Membership Number", "Ward"], ["L001", "B"], ["L002", "C"]]),
                         officer)
    session.commit()
    importer.cancel(run, officer)
    session.commit()
    session.expire_all()
    run = session.get(ImportRun, run.id)
    assert run.status is ImportStatus.CANCELLED and run.content is None
    assert member_rows() == before
    with pytest.raises(exportfile.ExportFileError, match="already cancelled"):
        importer.apply(run, officer)
    assert member_rows() == before


def test_a_mapping_without_an_identifier_is_refused(app):
    data = csv_bytes([["Membership Number", "Email"], ["L1", "a@example.org"]])
    with pytest.raises(exportfile.ExportFileError, match="Membership number or Email"):
        importer.plan(data, {"Membership Number": "", "Email": ""})


# --- what is kept, and the audit log --------------------------------------------------------

def test_columns_mailer_does_not_need_are_stored_nowhere(app, make_officer, run_import):
    officer = make_officer()
    rows = [["Membership Number", "First name", "Email", "Date of Birth", "Ethnicity", "Religion"],
            ["L001", "Ann", "ann@example.org", "17/03/1961", "Ethnicity-Marker-Qz7", "Religion-Marker-Vk2"],
            ["L002", "Bob", "bob@example.org", "02/09/1977", "Ethnicity-Marker-Jw4", "Religion-Marker-Pp9"]]
    result = run_import(csv_bytes(rows), officer=officer)
    assert len(result.new) == 2
    session.expire_all()
    run = session.get(ImportRun, run_import.last_run.id)
    assert run.status is ImportStatus.APPLIED and run.content is None
    text = database_text()
    assert "ann@example.org" in text  # the search does see imported values...
    for secret in ("17/03/1961", "1961-03-17", "02/09/1977", "Ethnicity-Marker", "Religion-Marker"):
        assert secret not in text  # ...but none of the columns Mailer does not keep


def test_every_member_created_or_changed_has_an_audit_event_with_old_and_new_values(app, make_officer, make_member,
                                                                                   run_import):
    officer = make_officer()
    changed = make_member(membership_number="L001", first_name="Ann", ward="Old Ward", email="ann@example.org")
    same = make_member(membership_number="L002", first_name="Bob", ward="Same", email="bob@example.org")
    rows = [["Membership Number", "First name", "Ward", "Email", "Joined"],
            ["L001", "Ann", "New Ward", "ann@example.org", ""],
            ["L002", "Bob", "Same", "bob@example.org", ""],
            ["L003", "Cat", "Cat Ward", "cat@example.org", "01/06/2021"]]
    run_import(csv_bytes(rows), officer=officer)
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.import")).all()
    by_subject = {e.subject_id: e for e in events}
    new = by_number("L003")
    assert set(by_subject) == {changed.id, new.id}
    assert by_subject[changed.id].changes == {"ward": ["Old Ward", "New Ward"]}
    assert by_subject[new.id].changes["first_name"] == [None, "Cat"]
    assert by_subject[new.id].changes["joined_on"] == [None, "2021-06-01"]
    assert by_subject[new.id].changes["membership_number"] == [None, "L003"]
    assert all(e.officer_id == officer.id and e.actor == officer.email for e in events)
    assert all(f"import #{run_import.last_run.id}" in e.note for e in events)
    assert same.id not in by_subject
    (applied,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "import.apply")).all()
    assert applied.changes["new"] == 1 and applied.changes["updated"] == 1 and applied.changes["unchanged"] == 1


def test_an_import_without_an_officer_is_recorded_as_the_command_line(app, run_import):
    run_import(csv_bytes([["Email"], ["a@example.org"]]))
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.import"))
    assert event.actor == "cli" and event.officer_id is None


# --- the mapping, remembered ----------------------------------------------------------------

def test_usual_headers_are_mapped_by_synonyms(app):
    headers = ["membership_no", "Firstname", "Surname", "Email address", "Branch", "Ward", "Polling District",
               "Status", "Join Date", "Date of Birth"]
    assert importer.suggest_mapping(headers) == {
        "membership_no": "membership_number", "Firstname": "first_name", "Surname": "last_name",
        "Email address": "email", "Branch": "branch", "Ward": "ward", "Polling District": "polling_district",
        "Status": "status", "Join Date": "joined_on", "Date of Birth": ""}


def test_an_officers_mapping_is_remembered_for_the_next_import(app, run_import):
    data = csv_bytes([["Ref Code", "Email", "Member ID"], ["L001", "a@example.org", "junk"]])
    assert importer.suggest_mapping(["Ref Code", "Member ID"]) == {"Ref Code": "", "Member ID": "membership_number"}
    run_import(data, mapping={"Ref Code": "membership_number", "Email": "email", "Member ID": ""})
    assert by_number("L001") is not None
    assert importer.suggest_mapping(["REF CODE", "Member ID", "Email"]) == {
        "REF CODE": "membership_number", "Member ID": "", "Email": "email"}


def test_a_remembered_header_and_a_synonym_never_claim_the_same_field(app, run_import):
    run_import(csv_bytes([["Ref Code", "Email"], ["L001", "a@example.org"]]),
               mapping={"Ref Code": "membership_number", "Email": "email"})
    suggested = importer.suggest_mapping(["Ref Code", "Membership Number", "Email"])
    assert suggested["Ref Code"] == "membership_number"
    assert suggested["Membership Number"] == ""
    assert exportfile.check_mapping(suggested) == []


def test_a_failed_import_does_not_remember_its_mapping(app):
    data = csv_bytes([["Ref Code", "Email"], ["L001", "a@example.org"]])
    run = importer.start("x.csv", data, None)
    run.mapping = {"Ref Code": "", "Email": ""}
    session.commit()
    with pytest.raises(exportfile.ExportFileError):
        importer.apply(run, None)
    assert session.scalars(select(ImportMapping)).all() == []
    assert session.get(ImportRun, run.id).status is ImportStatus.FAILED
