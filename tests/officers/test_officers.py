"""Officer accounts and roles: the CLP secretary manages them; every change is audited."""

from __future__ import annotations

import pytest
from click.testing import Result
from sqlalchemy import select

from mailer.db import session
from mailer.models import AuditEvent, Officer, Role
from mailer.officers import service
from tests.conftest import login


def test_officers_page_is_for_the_clp_secretary_only(client, make_officer, make_branch):
    north = make_branch("North")
    for officer in (make_officer("chair@example.org", Role.CLP_OFFICER),
                    make_officer("north@example.org", Role.BRANCH_SECRETARY, north)):
        login(client, officer.email)
        for path in ("/officers/", "/officers/new", "/audit/"):
            assert client.get(path).status_code == 403, (officer.email, path)
        client.post("/logout")


def test_secretary_creates_an_officer_and_sees_the_password_once(signed_in, make_branch):
    north = make_branch("North")
    response = signed_in.post("/officers/new", data={"email": "North.Sec@Example.org", "name": "N Sec",
                                                     "role": "branch_secretary", "branch": north.id})
    page = response.data.decode()
    assert response.status_code == 200 and "can now sign in" in page
    officer = session.scalar(select(Officer).where(Officer.email == "north.sec@example.org"))
    assert officer.role is Role.BRANCH_SECRETARY and officer.branch_id == north.id
    password = page.split('id="new-password">')[1].split("<")[0]
    assert password not in officer.password_hash
    fresh = signed_in.application.test_client()
    assert login(fresh, "north.sec@example.org", password).status_code == 302
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "officer.create",
                                                   AuditEvent.subject_id == officer.id))
    assert event.changes["role"] == [None, "branch_secretary"] and event.actor == signed_in.officer.email


@pytest.mark.parametrize("form,message", [
    ({"email": "x@example.org", "role": "branch_secretary"}, "needs a branch"),
    ({"email": "not-an-email", "role": "clp_officer"}, "not a valid email"),
    ({"email": "secretary@example.org", "role": "clp_officer"}, "already exists"),
    ({"email": "y@example.org", "role": "emperor"}, "Choose a role"),
])
def test_bad_officer_input_is_explained(signed_in, form, message):
    response = signed_in.post("/officers/new", data=form)
    assert response.status_code == 400 and message in response.data.decode()
    assert session.query(Officer).count() == 1


def test_secretary_changes_a_role_and_disables_an_officer(signed_in, make_officer):
    chair = make_officer("chair@example.org", Role.CLP_OFFICER)
    response = signed_in.post(f"/officers/{chair.id}", data={"role": "clp_secretary", "name": "Chair", "active": ""})
    assert response.status_code == 302
    session.expire_all()
    chair = session.get(Officer, chair.id)
    assert chair.role is Role.CLP_SECRETARY and chair.active is False
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "officer.update"))
    assert event.changes["active"] == [True, False] and event.changes["role"] == ["clp_officer", "clp_secretary"]
    fresh = signed_in.application.test_client()
    assert login(fresh, chair.email).status_code == 200  # disabled: refused


def test_secretary_cannot_lock_themselves_out(signed_in):
    me = signed_in.officer
    response = signed_in.post(f"/officers/{me.id}", data={"role": "clp_officer", "active": "1"})
    assert response.status_code == 400 and "your own secretary access" in response.data.decode()
    session.expire_all()
    assert session.get(Officer, me.id).role is Role.CLP_SECRETARY


def test_disabled_officer_loses_an_open_session(client, make_officer):
    officer = make_officer("chair@example.org", Role.CLP_OFFICER)
    login(client, officer.email)
    assert client.get("/").status_code == 200
    officer.active = False
    session.commit()
    assert client.get("/").status_code == 302


def test_cli_creates_officers(app, make_branch):
    make_branch("Riverside")
    runner = app.test_cli_runner()
    result: Result = runner.invoke(args=["officers", "create", "river@example.org", "--role", "branch_secretary",
                                         "--branch", "riverside"])
    assert result.exit_code == 0, result.output
    password = result.output.rsplit(": ", 1)[1].strip()
    officer = service.authenticate("river@example.org", password)
    assert officer is not None and officer.branch.name == "Riverside"
    result = runner.invoke(args=["officers", "create", "x@example.org", "--role", "branch_secretary",
                                 "--branch", "Nowhere"])
    assert result.exit_code != 0 and "no branch called" in result.output
    result = runner.invoke(args=["officers", "list"])
    assert "river@example.org\tbranch_secretary\tRiverside" in result.output


def test_passwords_are_hashed_and_short_ones_refused(app):
    with pytest.raises(service.OfficerError, match="at least"):
        service.create_officer("a@example.org", Role.CLP_OFFICER, password="short")
    officer, password = service.create_officer("b@example.org", Role.CLP_OFFICER)
    assert password not in officer.password_hash and officer.password_hash.startswith(("scrypt:", "pbkdf2:"))
