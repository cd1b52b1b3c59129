"""The attack suite: two branches, their secretaries, CLP officers, and B's records seeded with a
marker string, so that a leak into anything branch A's secretary receives can be seen.

Every scan adds to FIGURES; the figures are printed at the end of the run (also without -s)."""

from __future__ import annotations

from collections import Counter

import pytest

from mailer.db import session
from mailer.models import Role
from tests.conftest import TEST_PASSWORD, login  # noqa: F401

MARKER = "ZQXMARKERB"  # in every one of branch B's records; must never reach branch A's secretary

FIGURES: Counter = Counter()


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("attack suite figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture
def app(make_app, smtp_server):
    """The app on a real SMTP server (aiosmtpd) that keeps what it is sent."""
    app = make_app(MAIL_PORT=smtp_server.port, BASE_URL="https://mailer.example.org",
                   SENDER_ADDRESS="secretary@anytown-labour.example", REPLY_ADDRESS="secretary@anytown-labour.example",
                   RETRY_BASE_SECONDS=0)
    with app.app_context():
        yield app


@pytest.fixture
def officers(app, make_branch, make_officer):
    """The CLP secretary, a CLP officer, the chair, and the secretaries of branches A and B."""
    a, b = make_branch("Northgate"), make_branch(f"Southgate {MARKER}")

    class Cast:
        branch_a, branch_b = a, b
        secretary = make_officer("secretary@anytown-labour.example", Role.CLP_SECRETARY)
        officer = make_officer("vicechair@anytown-labour.example", Role.CLP_OFFICER)
        chair = make_officer("chair@anytown-labour.example", Role.CHAIR)
        sec_a = make_officer("north@anytown-labour.example", Role.BRANCH_SECRETARY, branch=a)
        sec_b = make_officer("south@anytown-labour.example", Role.BRANCH_SECRETARY, branch=b)

    session.commit()
    return Cast


def client_for(app, officer):
    """A fresh client signed in as `officer` through the real form."""
    client = app.test_client()
    response = login(client, officer.email)
    assert response.status_code == 302, response.data
    return client
