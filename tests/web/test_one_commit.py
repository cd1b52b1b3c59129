"""Who commits: services never do; a request commits once, at its end, and its work is queued
only after that commit. A refused send leaves nothing half-done (no meeting noticed, no minutes
circulated, without their send)."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

import mailer
from mailer import queue
from mailer.db import session, utcnow
from mailer.errors import Refusal
from mailer.meetings import service as meetings
from mailer.models import AuditEvent, Campaign, Meeting, MeetingCampaign, MeetingStatus, OutgoingReply
from mailer.sending import campaigns
from tests.inbound.conftest import sent  # noqa: F401 (fixture)
from tests.sending.conftest import app, make_campaign, scripted_smtp  # noqa: F401 (fixtures)
from tests.web.test_correspondence_web import officer_client, reply_from  # noqa: F401 (fixture)

one_relay = pytest.mark.parametrize("scripted_smtp", ["one-by-one"], indirect=True)

SERVICES = ("members", "officers", "compose", "sending", "inbound", "meetings")
# Job bodies whose commits are their protocol, not a request's: each says so in its docstring.
COMMITS_ALLOWED = {
    "sending/batch.py": None,  # the send engine: its per-chunk commits fence exactly-once sending
    "inbound/process.py": {"process", "process_many"},  # a batch: claimed in one commit, processed in another
    "inbound/correspondence.py": {"send_reply", "_claim_reply", "_reply_sent", "_release_reply"},  # a reply's lease
    "inbound/imap.py": {"_state", "_poll", "_take"},  # stored and committed before leaving the mailbox
    "inbound/smtpd.py": {"_store"},  # the SMTP receiver is a handler, like a view: 250 once committed
    "members/importer.py": {"apply"},  # records a failed import after the rollback, which the caller cannot
    "inbound/cli.py": None,  # commands (mailer inbound ...): each commits what it stored
    "inbound/benchmark.py": None,  # a benchmark command
}


def _commits(path: Path) -> list[tuple[str, int]]:
    """(enclosing function, line) of every `.commit()` call in a module."""
    found = []

    def walk(node, where):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else where
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr == "commit":
                found.append((where, child.lineno))
            walk(child, name)

    walk(ast.parse(path.read_text()), "<module>")
    return found


def test_no_service_module_commits():
    root = Path(mailer.__file__).parent
    offenders = []
    for package in SERVICES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            allowed = COMMITS_ALLOWED.get(rel, set())
            offenders += [f"{rel}:{line} in {fn}" for fn, line in _commits(path)
                          if allowed is not None and fn not in allowed]
    assert offenders == []
    assert _commits(root / "sending" / "campaigns.py") == []  # the scan finds what it looks for:
    assert _commits(root / "sending" / "batch.py")  # a module that does commit is seen to


def test_services_queue_no_job_themselves():
    root = Path(mailer.__file__).parent
    importing = [path.relative_to(root).as_posix() for package in SERVICES for path in (root / package).rglob("*.py")
                 if re.search(r"^\s*(from mailer import [^\n]*\bjobs\b|from mailer\.jobs import|import mailer\.jobs)",
                              path.read_text(), re.M)]
    assert importing == []


@pytest.fixture
def commits(app):
    """How many times the app's sessions commit (reset it before each request)."""
    counted = {"n": 0}

    def count(_session):
        counted["n"] += 1

    factory = app.extensions["mailer.db"]
    event.listen(factory, "after_commit", count)
    yield counted
    event.remove(factory, "after_commit", count)


def _meeting(officer, days: int = 30) -> Meeting:
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=days)
    meeting, _ = meetings.create(officer, {"title": "General meeting", "kind": "general", "starts_at": starts,
                                           "ends_at": starts + timedelta(hours=2), "venue_name": "Trades Hall"})
    session.commit()
    return meeting


def _token(page: str) -> str:
    return re.search(r'name="confirm" value="([0-9a-f]{64})"', page).group(1)


@one_relay
def test_a_request_commits_at_most_once_and_queues_after_it(officer_client, sent, make_campaign, commits):
    client = officer_client
    campaign = make_campaign(subject="Once")
    session.commit()
    queue.get_queue().empty()

    # a campaign send
    page = client.get(f"/campaigns/{campaign.id}/confirm").get_data(as_text=True)
    commits["n"] = 0
    assert client.post(f"/campaigns/{campaign.id}/send", data={"confirm": _token(page)}).status_code == 302
    assert commits["n"] == 1
    assert f"campaign-{campaign.id}-start" in queue.get_queue().get_job_ids()  # queued, after the commit

    # a meeting notice
    meeting = _meeting(client.officer)
    page = client.get(f"/meetings/{meeting.id}/send/notice").get_data(as_text=True)
    commits["n"] = 0
    assert client.post(f"/meetings/{meeting.id}/notice", data={"confirm": _token(page)}).status_code == 302
    assert commits["n"] == 1
    session.expire_all()
    assert session.get(Meeting, meeting.id).status is MeetingStatus.NOTICED

    # a reply
    message = reply_from(sent, "Ann", "Is the meeting on?\n")
    commits["n"] = 0
    response = client.post(f"/correspondence/{message.thread_id}/reply", data={"body": "Yes."})
    assert response.status_code in (302, 303) and commits["n"] == 1
    answer_id = session.scalar(select(OutgoingReply.id))
    waiting = queue.get_queue().get_jobs()
    assert any(job.func_name.endswith("send_reply") and job.args == (answer_id,) for job in waiting)


@one_relay
def test_a_refused_send_leaves_the_meeting_as_it_was(officer_client, monkeypatch, commits):
    """The notice is built, the meeting marked noticed, then the send is refused: nothing of it stays."""
    meeting = _meeting(officer_client.officer)
    queue.get_queue().empty()

    def refuse(campaign):
        raise campaigns.CampaignError("Fix the campaign first: the relay said no")

    monkeypatch.setattr(campaigns, "_check_sendable", refuse)
    before = session.scalar(select(func.count()).select_from(Campaign))
    page = officer_client.get(f"/meetings/{meeting.id}/send/notice").get_data(as_text=True)
    commits["n"] = 0
    response = officer_client.post(f"/meetings/{meeting.id}/notice", data={"confirm": _token(page)})
    assert response.status_code == 303 and commits["n"] == 0  # handled once: rolled back, back to the form
    page = officer_client.get(response.location).get_data(as_text=True)
    assert "the relay said no" in page and "Nothing was sent and nothing has changed" in page
    session.expire_all()
    assert session.get(Meeting, meeting.id).status is MeetingStatus.PLANNED
    assert session.get(Meeting, meeting.id).reminder_due_at is None
    assert session.scalar(select(func.count()).select_from(Campaign)) == before
    assert session.scalars(select(MeetingCampaign).where(MeetingCampaign.meeting_id == meeting.id)).all() == []
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "meeting.notice")).all() == []
    assert queue.get_queue().count == 0  # and nothing was queued


def test_every_domain_error_is_a_refusal():
    from mailer.compose.drafts import DraftError
    from mailer.compose.render import TemplateError
    from mailer.inbound.correspondence import CorrespondenceError
    from mailer.inbound.formats import PayloadError
    from mailer.meetings.rules import MeetingError
    from mailer.members.exportfile import ExportFileError
    from mailer.members.fields import FieldError
    from mailer.members.segments import SegmentError
    from mailer.members.service import MemberError
    from mailer.officers.service import OfficerError
    from mailer.officers.tokens import TokenError

    for error in (campaigns.CampaignError, TokenError, OfficerError, TemplateError, DraftError, MeetingError,
                  PayloadError, CorrespondenceError, MemberError, FieldError, ExportFileError, SegmentError):
        assert issubclass(error, Refusal) and not issubclass(error, ValueError), error
