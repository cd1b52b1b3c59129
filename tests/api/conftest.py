"""Fixtures for the JSON API: officers with tokens, and a client that sends one."""

from __future__ import annotations

import pytest

from mailer.db import session
from mailer.models import Role


class TokenClient:
    """The app's test client, sending `Authorization: Bearer TOKEN` with every request."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def __getattr__(self, method):
        def call(path, headers=None, **kwargs):
            return getattr(self.client, method)(path, headers={"Authorization": f"Bearer {self.token}",
                                                               **(headers or {})}, **kwargs)

        return call


@pytest.fixture
def make_token(app):
    from mailer.officers import tokens

    def factory(officer, name="script", days=None) -> str:
        _token, text = tokens.create(officer, name, days)
        session.commit()
        return text

    return factory


@pytest.fixture
def api(client, make_officer, make_token):
    """A client with a CLP secretary's token."""
    officer = make_officer("secretary@example.org", Role.CLP_SECRETARY)
    api = TokenClient(client, make_token(officer))
    api.officer = officer
    return api


@pytest.fixture
def two_branches(make_branch, make_member, make_officer, make_token, client):
    """Branch A's secretary (with a token) and a member in each of A and B."""
    a, b = make_branch("Northgate"), make_branch("Southgate")
    secretary = make_officer("north@example.org", Role.BRANCH_SECRETARY, branch=a)
    ours = make_member(first_name="Ann", email="ann@example.org", branch=a)
    theirs = make_member(first_name="Bea", last_name="MARKER-B", email="bea@example.org", branch=b)
    return TokenClient(client, make_token(secretary)), ours, theirs
