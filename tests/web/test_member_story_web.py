"""The member page is their story (a timeline), and the subject access export is one click away,
as JSON and as a PDF, and on the command line; a branch secretary exports only their branch's."""

from __future__ import annotations

import io
import json

import pypdf
from sqlalchemy import func, select

from mailer.db import session
from mailer.models import AuditEvent, Role
from tests.conftest import login
from tests.members.test_story import EXPECTED, seed


def test_the_member_page_tells_their_story(signed_in, make_member, make_officer):
    member = seed(make_member, lambda: signed_in.officer)
    page = signed_in.get(f"/members/{member.id}").data.decode()
    for _section, text in EXPECTED:
        assert text.replace("→", "&rarr;") in page or text in page, text
    assert page.index("Their letter attached to the minutes") < page.index("Stopped bulletins")  # newest first
    assert "member.import" not in page and "bulletins_consent" not in page
    assert f'action="/members/{member.id}/export.pdf"' in page and f'action="/members/{member.id}/export"' in page


def test_one_click_exports_as_pdf_and_json_and_each_is_logged(signed_in, make_member):
    member = seed(make_member, lambda: signed_in.officer)
    response = signed_in.post(f"/members/{member.id}/export.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert f"member-{member.id}.pdf" in response.headers["Content-Disposition"]
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in pypdf.PdfReader(io.BytesIO(response.data)).pages)
    for _section, expected in EXPECTED:
        assert expected in text, expected
    data = json.loads(signed_in.post(f"/members/{member.id}/export").data)
    assert data["Apologies and attendance"][0]["answer"] == "apologies"
    assert session.scalar(select(func.count()).where(AuditEvent.action == "member.export",
                                                     AuditEvent.subject_id == member.id)) == 2


def test_a_branch_secretary_exports_only_their_branchs_members(client, make_officer, make_branch, make_member):
    north, south = make_branch("North"), make_branch("South")
    mine, theirs = make_member(branch=north), make_member(branch=south)
    login(client, make_officer("north@example.org", Role.BRANCH_SECRETARY, north).email)
    assert client.post(f"/members/{mine.id}/export.pdf").status_code == 200
    for path in ("export", "export.pdf"):
        assert client.post(f"/members/{theirs.id}/{path}").status_code == 404
    assert session.scalar(select(func.count()).where(AuditEvent.action == "member.export",
                                                     AuditEvent.subject_id == theirs.id)) == 0


def test_export_data_on_the_command_line(app, make_member, make_officer, tmp_path):
    member = seed(make_member, make_officer)
    pdf_path = tmp_path / "keir.pdf"
    result = app.test_cli_runner().invoke(
        args=["members", "export-data", str(member.id), "--pdf", str(pdf_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["email"] == "keir@example.org"
    for _section, expected in EXPECTED:
        assert expected in result.stdout
    assert pdf_path.read_bytes().startswith(b"%PDF")
    missing = app.test_cli_runner().invoke(args=["members", "export-data", "999999"])
    assert missing.exit_code == 1 and "There is no member with id 999999." in missing.output
