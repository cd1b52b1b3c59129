"""The weekly bulletin routine: one draft a week from the starter, what's on filled from the coming
meetings as text (never template source), in the officer's scope, made by a scheduled job that
reconcile puts back after a Redis flush, and by the dashboard's button or the command line."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailer import bulletin, jobs, queue
from mailer.compose import drafts
from mailer.db import session, utcnow
from mailer.meetings import service as meetings
from mailer.meetings.rules import LONDON
from mailer.models import AuditEvent, Campaign, Meeting, MeetingKind, MeetingStatus, Role, RoutineRun
from tests.conftest import clear_queue, login
from tests.sending.conftest import run_queue


def _meeting(officer, days: float, title: str, kind: MeetingKind = MeetingKind.GENERAL, **values) -> Meeting:
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=days)
    meeting, _warnings = meetings.create(officer, {"title": title, "kind": kind.value, "starts_at": starts,
                                                   "ends_at": starts + timedelta(hours=2),
                                                   "venue_name": "Trades Hall", "venue_address": "1 High Street",
                                                   **values})
    session.commit()
    return meeting


@pytest.fixture
def world(app, make_officer, make_branch):
    north, south = make_branch("Northgate"), make_branch("Southgate")
    secretary = make_officer("secretary@example.org")
    north_sec = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    south_sec = make_officer("south@example.org", Role.BRANCH_SECRETARY, south)
    made = {
        "gc": _meeting(secretary, 3, "GC {{ config }} <script>alert(1)</script> *loud* [x](http://evil.example)"),
        "north": _meeting(north_sec, 5, "Northgate branch meeting"),
        "south": _meeting(south_sec, 6, "Southgate branch meeting", online_url="https://meet.example/s"),
        "later": _meeting(secretary, 20, "December GC"),
        "exec": _meeting(secretary, 4, "Executive", MeetingKind.EXECUTIVE),
        "past": _meeting(secretary, 1, "Last week's GC"),
        "off": _meeting(secretary, 8, "Called off"),
    }
    made["off"].status = MeetingStatus.CANCELLED
    made["past"].starts_at = utcnow() - timedelta(days=2)  # planned in the past cannot be: moved there
    session.commit()
    return {"secretary": secretary, "north_sec": north_sec, "north": north, "meetings": made}


def test_whats_on_is_the_next_two_weeks_meetings_shown_as_text(world):
    made = bulletin.make(world["secretary"])
    session.commit()
    assert made.created and made.meetings == 3
    campaign = made.campaign
    assert campaign.starter == "weekly-bulletin" and campaign.branch_id is None
    assert "{{ whats_on }}" in campaign.body and "## What's on" in campaign.body
    assert "Branch meeting: see the notice" not in campaign.body  # the starter's placeholder section is replaced
    whats_on = campaign.body_data["whats_on"]
    lines = whats_on.splitlines()
    assert len(lines) == 3
    assert "GC" in lines[0] and "Northgate branch meeting" in lines[1] and "Southgate branch meeting" in lines[2]
    assert "(or online)" in lines[2] and "Trades Hall, 1 High Street" in lines[1]
    gc_start = world["meetings"]["gc"].starts_at.astimezone(LONDON)
    assert lines[0].startswith(f"- **{gc_start:%A %-d %B, %H:%M}**")
    for absent in ("December GC", "Executive", "Last week", "Called off"):
        assert absent not in whats_on
    assert drafts.problems(campaign) == []
    subject, html, text = drafts.preview(campaign, None)
    # An officer's title is shown as written: never run as a template, never markup, never a link.
    assert "{{ config }}" in html and "SECRET" not in html and "test-secret" not in html
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "*loud*" in html and "<em>loud</em>" not in html and 'href="http://evil.example"' not in html
    assert "Northgate branch meeting" in text and subject == "This week in Anytown CLP"
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "campaign.weekly_bulletin")) == 1


def test_a_branch_secretarys_bulletin_is_their_branchs(world):
    north_sec, north = world["north_sec"], world["north"]
    made = bulletin.make(north_sec)
    session.commit()
    campaign = made.campaign
    assert made.meetings == 1 and campaign.branch_id == north.id
    assert campaign.segment["branches"] == [north.id]
    assert campaign.body_data["whats_on"].count("\n") == 0 and "Northgate branch meeting" in campaign.body_data[
        "whats_on"]
    # The CLP's bulletin is another one, the same week; each sees only their own as this week's.
    clp = bulletin.make(world["secretary"]).campaign
    session.commit()
    assert clp.id != campaign.id
    assert bulletin.this_week(north_sec).id == campaign.id and bulletin.this_week(world["secretary"]).id == clp.id
    assert bulletin.make(north_sec).campaign.id == campaign.id  # and theirs once a week


def test_nothing_on_says_so(app, make_officer):
    campaign = bulletin.make(make_officer()).campaign
    assert campaign.body_data["whats_on"] == bulletin.NOTHING_ON


def _routine_app(make_app, day_offset: int = 0, hour: int = 0):
    weekday = (utcnow().astimezone(LONDON).weekday() + day_offset) % 7
    app = make_app(WEEKLY_BULLETIN_DAY=bulletin.DAYS[weekday], WEEKLY_BULLETIN_HOUR=hour)
    ctx = app.app_context()
    ctx.push()
    return app, ctx


def _bulletins() -> int:
    return session.scalar(select(func.count()).select_from(Campaign).where(Campaign.starter == "weekly-bulletin"))


def test_the_job_makes_one_draft_a_week_however_often_it_runs_and_after_a_redis_flush(make_app):
    _app, ctx = _routine_app(make_app)  # today, from midnight: this week's is due and not made
    try:
        clear_queue(queue.get_queue())
        week = bulletin.period()
        found = jobs.reconcile_all()
        assert found["weekly_bulletin"] == jobs.bulletin_id(week)  # due: queued to run now
        assert jobs.reconcile_all()["weekly_bulletin"] is None      # waiting already: not twice
        run_queue()
        session.expire_all()
        assert _bulletins() == 1
        # Next week's is now on the schedule, at its time.
        next_week = bulletin.period(utcnow() + timedelta(days=7))
        scheduled = queue.get_queue().scheduled_job_registry.get_job_ids()
        assert jobs.bulletin_id(next_week) in scheduled
        # The job again (a retry, a second worker): nothing new.
        assert jobs.make_weekly_bulletin(week) == "already made this week"
        # Redis flushed: reconcile puts back next week's run, not this week's, and makes nothing.
        clear_queue(queue.get_queue())
        assert jobs.reconcile_all()["weekly_bulletin"] == jobs.bulletin_id(next_week)
        run_queue()
        session.expire_all()
        assert _bulletins() == 1
        assert session.scalar(select(func.count()).select_from(RoutineRun)) == 1
        # A run left over from a past week makes nothing.
        assert jobs.make_weekly_bulletin("2001-W01").startswith("skipped")
        assert _bulletins() == 1
    finally:
        clear_queue(queue.get_queue())
        ctx.pop()


def test_the_run_waits_for_its_day_and_hour(make_app):
    _app, ctx = _routine_app(make_app, day_offset=1, hour=7)  # tomorrow at 07:00 UK time
    try:
        clear_queue(queue.get_queue())
        week, when = bulletin.next_run()
        assert when > utcnow() + timedelta(hours=1)
        assert when.astimezone(LONDON).hour == 7 and when.astimezone(LONDON).date() == (
            utcnow().astimezone(LONDON) + timedelta(days=1)).date()
        assert week == bulletin.period(when)
        assert jobs.reconcile_all()["weekly_bulletin"] == jobs.bulletin_id(week)
        assert jobs.bulletin_id(week) in queue.get_queue().scheduled_job_registry.get_job_ids()
        run_queue()
        assert _bulletins() == 0  # not before its time
    finally:
        clear_queue(queue.get_queue())
        ctx.pop()


def test_off_or_wrongly_set_queues_nothing_and_reconcile_goes_on(make_app):
    for day in ("", "someday"):
        app = make_app(WEEKLY_BULLETIN_DAY=day)
        with app.app_context():
            clear_queue(queue.get_queue())
            assert bulletin.next_run() is None if not day else True
            found = jobs.reconcile_all()
            assert found["weekly_bulletin"] is None
            assert not any(j.startswith("weekly-bulletin-") for j in queue.waiting_job_ids())


def test_the_dashboard_card_and_button(world, app):
    client = app.test_client()
    login(client, "north@example.org")
    page = client.get("/").get_data(as_text=True)
    assert "This week's bulletin is ready to finish" not in page and "Make this week's bulletin now" in page
    response = client.post("/weekly-bulletin")
    match = re.fullmatch(r"/campaigns/(\d+)/edit", response.headers["Location"])
    assert match
    campaign = session.get(Campaign, int(match.group(1)))
    assert campaign.branch_id == world["north"].id
    page = client.get("/").get_data(as_text=True)
    assert "This week's bulletin is ready to finish" in page and f"/campaigns/{campaign.id}/edit" in page
    assert client.post("/weekly-bulletin").headers["Location"].endswith(f"/campaigns/{campaign.id}/edit")
    # The CLP secretary's card is about the CLP's bulletin, not made yet.
    other = app.test_client()
    login(other, "secretary@example.org")
    assert "Make this week's bulletin now" in other.get("/").get_data(as_text=True)


def test_the_command_line(world, app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["routines", "weekly-bulletin"])
    assert first.exit_code == 0, first.output
    assert "with 3 meeting(s) in what's on" in first.output
    again = runner.invoke(args=["routines", "weekly-bulletin"])
    assert again.exit_code == 0 and "made already" in again.output
    branch = runner.invoke(args=["routines", "weekly-bulletin", "--officer", "north@example.org"])
    assert branch.exit_code == 0 and "with 1 meeting(s)" in branch.output
    assert _bulletins() == 2
