"""Importing the membership export in the browser: upload, check the columns, read the diff, apply or cancel."""

from __future__ import annotations

import html
import io
import re

import pytest
from sqlalchemy import func, select

from mailer.db import session
from mailer.members import importer
from mailer.models import AuditEvent, ImportRun, ImportStatus, Member, MemberStatus, Role
from tests.conftest import login
from tests.members.conftest import csv_bytes, database_text

EXPORT = csv_bytes([
    ["Membership Number", "First name", "Last name", "Email", "Branch", "Ward", "Status", "Joined", "Date of Birth"],
    ["L001", "Zoë", "Evans", "zoe@example.org", "Castle", "Castle Ward", "Active", "05/03/2019", "17/03/1961"],
    ["L002", "Siân", "Ó Briain", "sian@example.org", "Castle", "New Ward", "Lapsed", "01/01/2018", "02/09/1977"],
    ["L003", "Bad", "Email", "not-an-email", "Castle", "Castle Ward", "Active", "01/01/2018", "03/03/1990"],
], encoding="cp1252", delimiter=";")


def upload(client, data: bytes, filename: str = "export.csv", full: bool = False):
    form = {"file": (io.BytesIO(data), filename)}
    if full:
        form["full_export"] = "1"
    return client.post("/imports/new", data=form, content_type="multipart/form-data")


def run_id_from(response) -> int:
    assert response.status_code == 302, response.data
    match = re.fullmatch(r"/imports/(\d+)/mapping", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def count(page: str, key: str) -> int:
    match = re.search(rf'id="count-{key}">(\d+)<', page)
    assert match, f"no count-{key}"
    return int(match.group(1))


def selected(page: str, column: int) -> str:
    """The field chosen for column `column` on the mapping page ("" for Do not import)."""
    select_html = re.search(rf'<select id="col-{column}" name="col-{column}">(.*?)</select>', page, re.S).group(1)
    chosen = re.findall(r'<option value="([^"]*)" selected>', select_html)
    assert len(chosen) <= 1
    return chosen[0] if chosen else ""


def members() -> dict[str, Member]:
    session.expire_all()
    return {m.membership_number: m for m in session.scalars(select(Member))}


def test_upload_check_the_columns_preview_and_apply(signed_in, make_member, make_branch):
    castle = make_branch("Castle")
    make_member(membership_number="L002", first_name="Siân", last_name="Ó Briain", email="sian@example.org",
                branch=castle, ward="Castle Ward", status=MemberStatus.ACTIVE)
    run_id = run_id_from(upload(signed_in, EXPORT))

    mapping = signed_in.get(f"/imports/{run_id}/mapping")
    page = text(mapping)
    assert mapping.status_code == 200
    for header in ("Membership Number", "Date of Birth", "Joined"):
        assert f"<th scope=\"row\">{header}</th>" in page  # a row per column of the file
    assert "Zoë" in page and "Ó Briain" in page and "windows-1252" in page and "3 rows" in page
    assert [selected(page, i) for i in range(9)] == ["membership_number", "first_name", "last_name", "email",
                                                     "branch", "ward", "status", "joined_on", ""]

    response = signed_in.post(f"/imports/{run_id}/mapping",
                              data={f"col-{i}": f for i, f in enumerate(["membership_number", "first_name",
                                                                         "last_name", "email", "branch", "ward",
                                                                         "status", "joined_on", ""])})
    assert response.status_code == 302 and response.headers["Location"] == f"/imports/{run_id}/preview"

    preview = signed_in.get(f"/imports/{run_id}/preview")
    page = text(preview)
    assert preview.status_code == 200 and "Nothing has changed yet" in page
    assert (count(page, "new"), count(page, "updated"), count(page, "moved"), count(page, "lapsed"),
            count(page, "errors")) == (1, 1, 1, 1, 1)
    assert "invalid email address 'not-an-email'" in page
    assert re.search(r"<td>4</td><td>L003</td>", page)  # the bad row, by its line in the file
    assert "Castle Ward → New Ward" in page
    assert members()["L002"].ward == "Castle Ward"  # the preview changes nothing

    applied = signed_in.post(f"/imports/{run_id}/apply")
    assert applied.status_code == 302 and applied.headers["Location"] == f"/imports/{run_id}"
    detail = signed_in.get(f"/imports/{run_id}")
    page = text(detail)
    assert '<strong id="import-status">applied</strong>' in page
    assert "Imported: 1 new, 1 updated, 1 rows with errors." in page
    assert (count(page, "new"), count(page, "updated"), count(page, "lapsed"), count(page, "errors")) == (1, 1, 1, 1)
    held = members()
    assert sorted(held) == ["L001", "L002"]
    assert held["L001"].to_welcome and held["L001"].first_name == "Zoë"
    assert held["L002"].ward == "New Ward" and held["L002"].status is MemberStatus.LAPSED
    run = session.get(ImportRun, run_id)
    assert run.status is ImportStatus.APPLIED and run.content is None and run.officer_id == signed_in.officer.id
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.import")).all()
    assert {e.subject_id for e in events} == {held["L001"].id, held["L002"].id}
    assert all(e.officer_id == signed_in.officer.id for e in events)
    stored = database_text()
    assert "zoe@example.org" in stored
    assert not {"17/03/1961", "1961-03-17", "02/09/1977", "03/03/1990"} & set(re.findall(r"[\d/-]{10}", stored))

    # Once applied, the mapping and preview pages show the result instead.
    assert signed_in.get(f"/imports/{run_id}/mapping").headers["Location"] == f"/imports/{run_id}"
    assert signed_in.get(f"/imports/{run_id}/preview").headers["Location"] == f"/imports/{run_id}"
    again = signed_in.post(f"/imports/{run_id}/apply", follow_redirects=True)
    assert "already applied" in text(again)
    assert len(members()) == 2


def test_changing_the_mapping_changes_what_is_imported_and_is_remembered(signed_in):
    data = csv_bytes([["Ref Code", "E-mail", "Shoe size"], ["X100", "a@example.org", "9"]])
    run_id = run_id_from(upload(signed_in, data))
    page = text(signed_in.get(f"/imports/{run_id}/mapping"))
    assert [selected(page, i) for i in range(3)] == ["", "email", ""]

    response = signed_in.post(f"/imports/{run_id}/mapping", data={"col-0": "membership_number", "col-1": "email",
                                                                  "col-2": ""})
    assert response.status_code == 302
    assert session.get(ImportRun, run_id).mapping == {"Ref Code": "membership_number", "E-mail": "email",
                                                      "Shoe size": ""}
    signed_in.post(f"/imports/{run_id}/apply")
    assert members()["X100"].email == "a@example.org"

    second = run_id_from(upload(signed_in, csv_bytes([["Shoe size", "REF CODE", "Email"], ["10", "X200", ""]])))
    page = text(signed_in.get(f"/imports/{second}/mapping"))
    assert [selected(page, i) for i in range(3)] == ["", "membership_number", "email"]


def test_the_mapping_page_previews_only_the_first_rows(signed_in):
    data = csv_bytes([["Email", "First name"]] + [[f"m{i}@example.org", f"Name{i}"] for i in range(1, 9)])
    page = text(signed_in.get(f"/imports/{run_id_from(upload(signed_in, data))}/mapping"))
    assert "8 rows" in page
    assert [f"Name{i}" in page for i in range(1, 9)] == [True] * 5 + [False] * 3


def test_a_mapping_without_an_identifier_is_refused_with_the_reason(signed_in):
    run_id = run_id_from(upload(signed_in, csv_bytes([["Membership Number", "Email"], ["L1", "a@example.org"]])))
    response = signed_in.post(f"/imports/{run_id}/mapping", data={"col-0": "", "col-1": "first_name"})
    assert response.status_code == 400
    page = text(response)
    assert "Map a column to Membership number or Email" in page
    assert selected(page, 1) == "first_name"  # the officer's choice is shown back
    assert session.get(ImportRun, run_id).mapping == {"Membership Number": "membership_number", "Email": "email"}


def test_two_columns_for_one_field_are_refused(signed_in):
    run_id = run_id_from(upload(signed_in, csv_bytes([["Email", "Email 2"], ["a@example.org", "b@example.org"]])))
    response = signed_in.post(f"/imports/{run_id}/mapping", data={"col-0": "email", "col-1": "email"})
    assert response.status_code == 400 and "both mapped to Email" in text(response)


def test_a_full_export_shows_the_members_it_no_longer_lists(signed_in, make_member):
    make_member(membership_number="L001", first_name="Ann", last_name="Present")
    make_member(membership_number="L002", first_name="Gus", last_name="Gone")
    run_id = run_id_from(upload(signed_in, csv_bytes([["Membership Number"], ["L001"]]), full=True))
    page = text(signed_in.get(f"/imports/{run_id}/preview"))
    assert count(page, "missing") == 1 and "Gus Gone" in page and "Ann Present" not in page
    ordinary = run_id_from(upload(signed_in, csv_bytes([["Membership Number"], ["L001"]])))
    assert 'id="count-missing"' not in text(signed_in.get(f"/imports/{ordinary}/preview"))


def test_cancel_changes_nothing_and_forgets_the_file(signed_in, make_member):
    make_member(membership_number="L001", ward="Old Ward")
    run_id = run_id_from(upload(signed_in, csv_bytes([["Membership Number", "Ward"], ["L001", "New"], ["L9", "X"]])))
    response = signed_in.post(f"/imports/{run_id}/cancel", follow_redirects=True)
    assert "Import cancelled: nothing was changed." in text(response)
    run = session.get(ImportRun, run_id)
    session.refresh(run)
    assert run.status is ImportStatus.CANCELLED and run.content is None
    assert sorted(members()) == ["L001"] and members()["L001"].ward == "Old Ward"
    signed_in.post(f"/imports/{run_id}/apply")
    assert sorted(members()) == ["L001"]
    assert "cancelled" in text(signed_in.get(f"/imports/{run_id}"))


def test_cancelling_an_applied_import_does_not_claim_to_cancel_it(signed_in):
    run_id = run_id_from(upload(signed_in, csv_bytes([["Email"], ["a@example.org"]])))
    signed_in.post(f"/imports/{run_id}/apply")
    response = signed_in.post(f"/imports/{run_id}/cancel", follow_redirects=True)
    assert "was already applied: there is nothing to cancel" in text(response)
    assert "Import cancelled" not in text(response)
    assert session.get(ImportRun, run_id).status is ImportStatus.APPLIED
    assert len(members()) == 1


def test_a_failure_while_applying_changes_nothing_and_shows_why(signed_in, make_member, monkeypatch):
    make_member(membership_number="L001", ward="Old Ward")
    run_id = run_id_from(upload(signed_in, csv_bytes([["Membership Number", "Ward"], ["L001", "New"], ["L2", "X"],
                                                      ["L3", "Y"]])))
    calls = []

    def flaky(*args, **kwargs):  # the "import.apply" record, after every member is written
        calls.append(args[0])
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    real = importer.audit.record
    monkeypatch.setattr(importer.audit, "record", flaky)
    response = signed_in.post(f"/imports/{run_id}/apply", follow_redirects=True)
    monkeypatch.undo()
    page = text(response)
    assert "The import failed and nothing was changed" in page and "database went away" in page
    assert '<strong id="import-status">failed</strong>' in page
    assert sorted(members()) == ["L001"] and members()["L001"].ward == "Old Ward"
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "member.import")) == 0


@pytest.mark.parametrize("data, message", [
    (b"", "The file is empty."),
    (b"\r\n\r\n  \r\n", "The file is empty."),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "This looks like a spreadsheet, not a CSV file"),
    (b"Dear secretary please find attached\n", "No columns found"),
    (b"Dear secretary, please find attached\n", "no members in it"),
    (b"L001;Ann;ann@example.org\nL002;Bob;bob@example.org\n", "not column headings"),
])
def test_an_empty_or_garbage_file_gets_a_clear_message(signed_in, data, message):
    response = upload(signed_in, data)
    assert response.status_code == 303 and response.location == "/imports/new"  # back to the form
    assert message in text(signed_in.get(response.location))
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_a_file_with_no_column_recognised_says_so_on_the_mapping_page(signed_in):
    letter = b"Dear secretary,\nplease find attached the minutes,\nRegards, Ann\n"
    run_id = run_id_from(upload(signed_in, letter))
    response = signed_in.get(f"/imports/{run_id}/mapping")
    assert response.status_code == 200
    assert "Map a column to Membership number or Email" in text(response)
    assert 'role="alert"' not in text(signed_in.get(f"/imports/{run_id_from(upload(signed_in, EXPORT))}/mapping"))


def test_a_file_over_the_size_limit_is_refused(app, signed_in):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    response = upload(signed_in, csv_bytes([["Email"]] + [[f"m{i}@example.org"] for i in range(500)]))
    assert response.status_code == 413 and "too large" in text(response)
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_no_file_chosen_gets_a_clear_message(signed_in):
    response = signed_in.post("/imports/new", data={}, content_type="multipart/form-data")
    assert response.status_code == 200 and "Choose the CSV file" in text(response)


def test_the_imports_list_shows_each_run(signed_in):
    run_id = run_id_from(upload(signed_in, csv_bytes([["Email"], ["a@example.org"]]), filename="march.csv"))
    signed_in.post(f"/imports/{run_id}/apply")
    page = text(signed_in.get("/imports/"))
    assert "march.csv" in page and "applied" in page and signed_in.officer.email in page


def test_the_upload_page_answers(signed_in):
    page = text(signed_in.get("/imports/new"))
    assert 'type="file"' in page and 'name="full_export"' in page


def test_a_branch_secretary_may_not_import(client, make_officer, make_branch):
    run = importer.start("export.csv", csv_bytes([["Email"], ["a@example.org"]]), None)
    session.commit()
    officer = make_officer("branch@example.org", Role.BRANCH_SECRETARY, branch=make_branch("Castle"))
    assert login(client, officer.email).status_code == 302
    for method, path in [("get", "/imports/"), ("get", "/imports/new"), ("post", "/imports/new"),
                         ("get", "/imports/{id}/mapping"), ("get", "/imports/{id}/preview"),
                         ("post", "/imports/{id}/apply"), ("post", "/imports/{id}/cancel"), ("get", "/imports/{id}")]:
        response = getattr(client, method)(path.format(id=run.id))
        assert response.status_code == 403, (method, path)
    assert client.get("/members/").status_code == 200  # signed in all along: refused for the role only
    session.expire_all()
    assert session.get(ImportRun, run.id).status is ImportStatus.PENDING and members() == {}


def test_a_clp_officer_may_import(client, make_officer):
    officer = make_officer("chair@example.org", Role.CLP_OFFICER)
    login(client, officer.email)
    assert client.get("/imports/").status_code == 200


def test_an_unknown_import_is_not_found(signed_in):
    assert signed_in.get("/imports/9999").status_code == 404
    assert signed_in.post("/imports/9999/apply").status_code == 404


def test_lapsed_newcomers_are_not_to_welcome_and_rejected_rows_download(signed_in):
    export = csv_bytes([
        ["Membership Number", "First name", "Last name", "Email", "Status"],
        ["W001", "Ann", "Active", "ann@example.org", "Active"],
        ["W002", "Len", "Lapsed", "len@example.org", "Lapsed"],
        ["W003", "Rob", "Resigned", "rob@example.org", "Resigned"],
        ["", "", "", "", "Active"],
        ["W005", "=cmd|' /C calc'!A0", "Bad", "not-an-email", "Active"],
    ])
    run_id = run_id_from(upload(signed_in, export))
    signed_in.post(f"/imports/{run_id}/mapping", data={f"col-{i}": f for i, f in enumerate(
        ["membership_number", "first_name", "last_name", "email", "status"])})
    preview = text(signed_in.get(f"/imports/{run_id}/preview"))
    assert "line 5: no membership number or email" in preview  # not a blank cell
    # Newcomers imported as lapsed or resigned are counted on those cards (not only members changed to it).
    assert (count(preview, "new"), count(preview, "lapsed"), count(preview, "resigned")) == (3, 1, 1)
    before = signed_in.get(f"/imports/{run_id}/rejected.csv")
    assert before.mimetype == "text/csv" and "attachment" in before.headers["Content-Disposition"]
    rows = before.get_data(as_text=True).splitlines()
    assert rows[0] == "Line,Membership Number,First name,Last name,Email,Status,Problem"
    assert rows[1].startswith("5,,,,,Active,no membership number or email address")
    assert rows[2].startswith("6,W005,'=cmd") and "not-an-email" in rows[2]  # a formula is neutralised
    assert len(rows) == 3

    signed_in.post(f"/imports/{run_id}/apply")
    held = members()
    assert held["W001"].to_welcome and not held["W002"].to_welcome and not held["W003"].to_welcome
    detail = text(signed_in.get(f"/imports/{run_id}"))
    assert (count(detail, "new"), count(detail, "lapsed"), count(detail, "resigned")) == (3, 1, 1)
    overview = text(signed_in.get("/"))  # one to welcome (not the lapsed newcomer), and one on the lapsed card
    assert "<strong>1</strong> not yet welcomed" in overview
    assert re.search(r'status=lapsed"><span class="num">1</span> lapsed', overview)
    after = signed_in.get(f"/imports/{run_id}/rejected.csv").get_data(as_text=True).splitlines()
    assert after[0] == "Line,Member,Problem" and len(after) == 3
    assert after[1].startswith("5,line 5: no membership number or email")


def test_the_comparison_and_the_writing_show_their_progress_live(signed_in, make_member, monkeypatch):
    """What the mapping and preview pages show while the work runs, read back from Redis at each
    step (mailer.progress), and its outcome through the page's progress.json."""
    from mailer import progress

    make_member(membership_number="P0000", email="p0@example.org")
    export = csv_bytes([["Membership Number", "First name", "Email"]] +
                       [[f"P{n:04d}", f"Name{n}", f"p{n}@example.org"] for n in range(12)])
    run_id = run_id_from(upload(signed_in, export))
    monkeypatch.setattr(progress, "EVERY", 0)
    seen = []
    real_report = progress.report

    def report_and_read(*args, **kwargs):
        real_report(*args, **kwargs)
        seen.append(progress.read(importer.task_name(run_id)).as_dict())

    monkeypatch.setattr(progress, "report", report_and_read)
    assert signed_in.get(f"/imports/{run_id}/progress.json").get_json()["live"] is False  # nothing yet
    mapping = signed_in.get(f"/imports/{run_id}/mapping").get_data(as_text=True)
    assert 'data-progress="import-progress"' in mapping and 'id="import-progress"' in mapping
    preview = signed_in.get(f"/imports/{run_id}/preview").get_data(as_text=True)
    assert 'data-progress="import-progress"' in preview and "progress.js" in preview
    assert [s["done"] for s in seen] == list(range(1, 13)) and all(s["total"] == 12 for s in seen)
    assert seen[5] == {"stage": importer.COMPARING, "done": 6, "total": 12, "live": True, "percent": 50,
                       "text": f"{importer.COMPARING}: 6 of 12"}
    assert signed_in.get(f"/imports/{run_id}/progress.json").get_json()["text"] == "Compared: showing the changes."
    seen.clear()
    signed_in.post(f"/imports/{run_id}/apply")
    writing = [(s["done"], s["total"]) for s in seen if s["stage"] == importer.WRITING]
    assert writing == [(11, 12), (12, 12)]  # 11 new, then 1 updated: a step per chunk written
    assert all(s["live"] for s in seen)
    ended = signed_in.get(f"/imports/{run_id}/progress.json").get_json()
    assert ended == {"stage": importer.WRITING, "done": 12, "total": 12, "live": False, "percent": 100,
                     "text": "Imported: 11 new, 1 updated, 0 rows with errors."}


def test_a_big_import_preview_lists_the_first_rows_and_says_how_many_more(signed_in):
    """A 100,000-row export must not make a 100,000-row page: each list shows its first 500 and
    says that the rest are written too."""
    export = csv_bytes([["Membership Number", "First name", "Email"]] +
                       [[f"Q{n:04d}", f"Name{n}", f"q{n}@example.org"] for n in range(520)])
    run_id = run_id_from(upload(signed_in, export))
    signed_in.get(f"/imports/{run_id}/mapping")
    preview = signed_in.get(f"/imports/{run_id}/preview").get_data(as_text=True)
    assert "New members (520)" in preview
    assert preview.count("<tr><td>") == 500
    assert "The first 500 of 520 are shown here; applying the import writes every one of them." in preview
