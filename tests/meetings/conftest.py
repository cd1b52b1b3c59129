"""Fixtures for meetings: a planned meeting of the CLP, with members entitled to attend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailer.db import session, utcnow
from mailer.meetings import service
from mailer.models import MeetingKind, Role
from tests.inbound.conftest import raw_message  # noqa: F401
from tests.sending.conftest import app, run_queue, scripted_smtp  # noqa: F401 (fixtures)


@pytest.fixture
def secretary(app, make_officer):
    return make_officer("secretary@anytown-labour.example", Role.CLP_SECRETARY)


@pytest.fixture
def make_meeting(secretary):
    def factory(days: float = 14, kind: MeetingKind = MeetingKind.GENERAL, **values):
        starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=days)
        data = {"title": values.pop("title", "General meeting"), "kind": kind.value, "starts_at": starts,
                "ends_at": starts + timedelta(hours=2), "venue_name": "Trades Hall",
                "venue_address": "1 High Street, Anytown AN1 1AA", **values}
        meeting, _warnings = service.create(secretary, data)
        session.commit()
        return meeting

    return factory
