"""The Welcome routine: each new member from an import gets the welcome email once, after an
officer's approval on the confirmation page; or by itself after each import when approval is off."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from mailer.db import session
from mailer.models import AuditEvent, Campaign, Member, MemberStatus
from tests.conftest import login
from tests.members.conftest import csv_bytes
from tests.sending.conftest import run_queue

HEADER = ["Membership number", "First name", "Last name", "Email", "Branch", "Status"]


def export(*rows) -> bytes:
    return csv_bytes([HEADER, *rows])


def _import(data: bytes, officer) -> None:
    from mailer.members import importer

    from mailer import welcome

    run = importer.start("export.csv", data, officer)
    session.commit()
    importer.apply(run, officer)
    welcome.after_import(officer)  # as the page or API that applied it does
    session.commit()


@pytest.fixture
def secretary(make_app, smtp_server, make_officer):
    """A CLP secretary's signed-in client, on an app whose relay is a real SMTP server."""
    def build(**settings):
        app = make_app(MAIL_PORT=smtp_server.port, **settings)
        ctx = app.app_context()
        ctx.push()
        client = app.test_client()
        officer = make_officer()
        login(client, officer.email)
        client.officer, client.ctx = officer, ctx
        return client

    made = []
    yield lambda **settings: made.append(build(**settings)) or made[-1]
    for client in made:
        client.ctx.pop()


def _welcomes(smtp_server) -> dict[str, int]:
    found: dict[str, int] = {}
    for message, (_sender, rcpts) in zip(smtp_server.messages, smtp_server.envelopes):
        if str(message["Subject"]).startswith("Welcome to Anytown CLP"):
            for rcpt in rcpts:
                found[rcpt] = found.get(rcpt, 0) + 1
    return found


def test_new_members_are_welcomed_once_after_approval(secretary, smtp_server):
    client = secretary()
    _import(export(["W1", "Wendy", "New", "wendy@example.org", "North", "New"],
                   ["W2", "Walter", "Active", "walter@example.org", "North", "Active"],
                   ["W3", "Lapsed", "Person", "lapsed@example.org", "North", "Lapsed"]), client.officer)
    run_queue()
    assert _welcomes(smtp_server) == {}  # approval is on: nothing goes by itself
    page = client.get("/welcome/").get_data(as_text=True)
    assert "<strong>2</strong> members waiting for a welcome" in page  # the lapsed member is not welcomed
    response = client.post("/welcome/prepare")
    assert re.fullmatch(r"/campaigns/\d+/confirm", response.headers["Location"])
    confirm = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Welcome to Anytown CLP, Wendy" in confirm or "Welcome to Anytown CLP, Walter" in confirm
    assert '<strong id="confirm-addresses">2</strong>' in confirm and "not yet welcomed" in confirm
    token = re.search(r'name="confirm" value="([^"]+)"', confirm).group(1)
    campaign_id = int(response.headers["Location"].split("/")[2])
    assert client.post(f"/campaigns/{campaign_id}/send", data={"confirm": token}).status_code == 302
    run_queue()
    assert _welcomes(smtp_server) == {"wendy@example.org": 1, "walter@example.org": 1}
    session.expire_all()
    assert session.scalar(select(func.count()).where(Member.to_welcome.is_(True))) == 0  # a lapsed one never joins the list
    assert session.scalar(select(func.count()).where(AuditEvent.action == "member.welcomed")) == 2
    assert "<strong>0</strong> members waiting" in client.get("/welcome/").get_data(as_text=True)

    # A later import: only the newcomer is welcomed, never Wendy or Walter again.
    _import(export(["W1", "Wendy", "New", "wendy@example.org", "North", "New"],
                   ["W4", "Nia", "Newer", "nia@example.org", "North", "New"]), client.officer)
    second = client.post("/welcome/prepare").headers["Location"]
    confirm = client.get(second).get_data(as_text=True)
    token = re.search(r'name="confirm" value="([^"]+)"', confirm).group(1)
    client.post(second.replace("/confirm", "/send"), data={"confirm": token})
    run_queue()
    assert _welcomes(smtp_server) == {"wendy@example.org": 1, "walter@example.org": 1, "nia@example.org": 1}


def test_editing_the_welcome_keeps_it_to_the_members_to_welcome(secretary, make_member):
    client = secretary()
    make_member(first_name="Old", email="old@example.org", status=MemberStatus.ACTIVE)
    make_member(first_name="New", email="new@example.org", status=MemberStatus.NEW, to_welcome=True)
    from mailer import welcome
    from mailer.compose import drafts

    campaign = welcome.prepare(client.officer)
    drafts.update(client.officer, campaign, {"segment": {"statuses": ["active", "new"]}})
    assert campaign.segment.get("to_welcome") is True


def test_without_approval_the_welcome_goes_after_each_import(secretary, smtp_server):
    client = secretary(WELCOME_APPROVAL=False)
    _import(export(["A1", "Ann", "Auto", "ann@example.org", "North", "New"]), client.officer)
    run_queue()
    assert _welcomes(smtp_server) == {"ann@example.org": 1}
    _import(export(["A1", "Ann", "Auto", "ann@example.org", "North", "New"],
                   ["A2", "Bob", "Auto", "bob@example.org", "North", "New"]), client.officer)
    run_queue()
    assert _welcomes(smtp_server) == {"ann@example.org": 1, "bob@example.org": 1}
    assert session.scalar(select(func.count()).select_from(Campaign).where(Campaign.starter == "welcome")) == 2
    assert "It goes by itself after each import" in client.get("/welcome/").get_data(as_text=True)
