"""`mailer members import FILE.csv [--dry-run] [--full]`: through Flask's CLI runner and as a real process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailer.db import session
from mailer.models import AuditEvent, ImportRun, ImportStatus, Member, MemberStatus
from tests.conftest import write_csv
from tests.members.conftest import csv_bytes

REPO = Path(__file__).resolve().parents[2]


def invoke(app, *args):
    result = app.test_cli_runner().invoke(args=["members", "import", *map(str, args)])
    session.expire_all()  # the command ran in its own app context and session
    return result


def members() -> dict[str, Member]:
    return {m.membership_number: m for m in session.scalars(select(Member))}


def test_import_adds_members_and_reports_the_counts(app, tmp_path):
    path = write_csv(tmp_path / "export.csv", "Membership Number,First name,Email,Branch,Joined\r\n"
                                              "L001,Ann,ann@example.org,Castle,05/03/2019\r\n"
                                              "L002,Bob,bob@example.org,Riverside,06/04/2020\r\n")
    result = invoke(app, path)
    assert result.exit_code == 0, result.output
    assert "Imported 2 rows" in result.output and "2 new, 0 updated" in result.output
    assert "New branches: Castle, Riverside" in result.output
    assert "Membership Number -> Membership number" in result.output
    held = members()
    assert sorted(held) == ["L001", "L002"] and all(m.to_welcome for m in held.values())
    (run,) = session.scalars(select(ImportRun)).all()
    assert run.status is ImportStatus.APPLIED and run.filename == "export.csv" and run.content is None
    actors = {e.actor for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "member.import"))}
    assert actors == {"cli"}


def test_dry_run_shows_the_changes_and_changes_nothing(app, tmp_path, make_member):
    make_member(membership_number="L001", first_name="Ann", ward="Old Ward", status=MemberStatus.ACTIVE)
    path = write_csv(tmp_path / "export.csv", "Member ID;Firstname;Ward;Status\nL001;Ann;New Ward;Lapsed\n"
                                              "L002;Cat;Cat Ward;Active\n")
    result = invoke(app, path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Would import 2 rows" in result.output and "';' separated" in result.output
    assert "1 new, 1 updated" in result.output and "1 moved, 1 lapsed" in result.output
    assert "line 2: Ann" in result.output and "ward Old Ward -> New Ward" in result.output
    assert "status active -> lapsed" in result.output
    held = members()
    assert sorted(held) == ["L001"] and held["L001"].ward == "Old Ward"
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_the_same_file_applied_after_a_dry_run_does_what_the_dry_run_said(app, tmp_path, make_member):
    make_member(membership_number="L001", ward="Old Ward")
    path = write_csv(tmp_path / "export.csv", "Member ID,Ward\nL001,New Ward\nL002,Cat Ward\n")
    dry = invoke(app, path, "--dry-run").output
    real = invoke(app, path).output
    assert dry.replace("Would import", "Imported").splitlines()[1:] == real.splitlines()[1:]
    assert members()["L001"].ward == "New Ward" and "L002" in members()


def test_full_export_lists_the_members_not_in_the_file(app, tmp_path, make_member):
    make_member(membership_number="L001", first_name="Ann", last_name="Present")
    make_member(membership_number="L002", first_name="Gus", last_name="Gone")
    path = write_csv(tmp_path / "export.csv", "Membership Number,First name,Last name\nL001,Ann,Present\n")
    partial = invoke(app, path, "--dry-run")
    assert "not in this full export" not in partial.output
    full = invoke(app, path, "--full")
    assert full.exit_code == 0
    assert "1 members held are not in this full export" in full.output and "Gus Gone (L002)" in full.output
    assert "Ann Present (L001)" not in full.output
    assert session.scalar(select(ImportRun)).full_export is True


def test_bad_rows_are_reported_with_their_line_and_the_good_rows_imported(app, tmp_path):
    data = csv_bytes([["Membership Number", "Email", "Notes", "Joined"],
                      ["L001", "ann@example.org", "a note\nover\nthree lines", "01/01/2020"],
                      ["L002", "not-an-email", "", "01/01/2020"],
                      ["L003", "cat@example.org", "", "13/13/2020"],
                      ["L004", "dev@example.org", "", ""]])
    result = invoke(app, write_csv(tmp_path / "export.csv", data))
    assert result.exit_code == 0
    assert "line 5: invalid email address 'not-an-email' [L002]" in result.stderr
    assert "line 6: malformed date '13/13/2020'" in result.stderr and "[L003]" in result.stderr
    assert "2 new" in result.stdout and "2 errors" in result.stdout
    assert sorted(members()) == ["L001", "L004"]


def test_a_file_with_only_bad_rows_exits_with_an_error(app, tmp_path):
    path = write_csv(tmp_path / "export.csv", "Membership Number,Email\nL001,nope\n,\nL003,also-nope\n")
    result = invoke(app, path)
    assert result.exit_code == 1
    assert "line 2:" in result.stderr and "line 4:" in result.stderr
    assert members() == {}


def test_windows_encoded_semicolon_export(app, tmp_path):
    path = write_csv(tmp_path / "export.csv", "Membership No;First name;Last name;Email\r\n"
                                              "L001;Zoë;Ó Briain;zoe@example.org\r\n"
                                              "L002;Siân;Jones;sian@example.org\r\n", encoding="cp1252")
    result = invoke(app, path)
    assert result.exit_code == 0 and "windows-1252" in result.output
    held = members()
    assert (held["L001"].first_name, held["L001"].last_name, held["L002"].first_name) == ("Zoë", "Ó Briain", "Siân")


@pytest.mark.parametrize("content, message", [
    (b"", "The file is empty."),
    (b"PK\x03\x04\x00\x00\x00\x00binary", "spreadsheet"),
    (b"First name,Last name\nAnn,Lee\n", "Membership number or Email"),
])
def test_an_unusable_file_is_refused_with_the_reason(app, tmp_path, content, message):
    result = invoke(app, write_csv(tmp_path / "bad.csv", content))
    assert result.exit_code == 1 and message in result.output
    assert members() == {}


def test_a_missing_file_is_refused(app, tmp_path):
    result = invoke(app, tmp_path / "nowhere.csv")
    assert result.exit_code == 2 and "does not exist" in result.output


def _env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_", "FLASK_"))}
    env.update(MAILER_DATABASE_URL=f"sqlite:///{tmp_path / 'real.sqlite'}",
               MAILER_INSTANCE_PATH=str(tmp_path / "instance"), PYTHONPATH=str(REPO))
    return env


def test_import_as_a_real_process_on_a_fresh_database(tmp_path):
    env = _env(tmp_path)
    upgrade = subprocess.run([sys.executable, "-m", "mailer", "db", "upgrade"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    path = write_csv(tmp_path / "export.csv", "\ufeffMember ID,First name,Email address,Ward,Join Date,"
                                              "Date of Birth\r\n"
                                              "L001,Zoë,zoe@example.org,Castle Ward,01/02/2020,17/03/1961\r\n"
                                              "L002,Bob,bad-email,River Ward,01/02/2020,02/09/1977\r\n")
    dry = subprocess.run([sys.executable, "-m", "mailer", "members", "import", str(path), "--dry-run"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "Would import 2 rows" in dry.stdout and "line 3: invalid email" in dry.stderr
    real = subprocess.run([sys.executable, "-m", "mailer", "members", "import", str(path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert real.returncode == 0, real.stderr
    assert "Imported 2 rows" in real.stdout and "1 new" in real.stdout

    with sqlite3.connect(tmp_path / "real.sqlite") as db:
        rows = db.execute("SELECT membership_number, first_name, email, ward, joined_on, to_welcome "
                          "FROM members").fetchall()
        runs = db.execute("SELECT status, content FROM import_runs").fetchall()
        dump = "\n".join(db.iterdump())
    assert rows == [("L001", "Zoë", "zoe@example.org", "Castle Ward", "2020-02-01", 1)]
    assert runs == [("applied", None)]
    assert "17/03/1961" not in dump and "1961-03-17" not in dump and "02/09/1977" not in dump
