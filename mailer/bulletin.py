"""The weekly bulletin routine: each week a draft of the bulletin, made from the `weekly-bulletin`
starter with "what's on" filled from the coming meetings, waiting for an officer to finish and
send it (through the confirmation page every mass send has).

With WEEKLY_BULLETIN_DAY set, a job (mailer.jobs.make_weekly_bulletin) makes the CLP's draft on
that day at WEEKLY_BULLETIN_HOUR, UK time; any officer can make their own body's now (the
dashboard's button, `mailer routines weekly-bulletin`): the CLP's for CLP roles, their branch's
for a branch secretary. "Once a week" is kept by the database: a RoutineRun row per week and
body, unique, is written in the draft's transaction, so a job run twice, retried, or queued again
by reconcile after a Redis flush finds it and makes nothing.

What's on is the meetings of the next WINDOW days in the body's scope (a branch secretary's:
their branch's; the CLP's: every body's), not cancelled, not the executive's. Meeting titles,
venues and the like are officers' text: they go in as body data (Campaign.body_data, shown as
text), never into the body's template source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from mailer import audit, scope, words
from mailer.compose import drafts
from mailer.db import session, utcnow
from mailer.errors import Invalid
from mailer.meetings.rules import LONDON
from mailer.models import Campaign, CampaignStatus, Meeting, MeetingKind, MeetingStatus, Officer, RoutineRun

ROUTINE = STARTER = "weekly-bulletin"
WINDOW = timedelta(days=14)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PLACEHOLDER = "{{ whats_on }}"
NOTHING_ON = "No meetings in the next two weeks."
_SECTION = re.compile(r"^##[ \t]+(what'?s on|meetings)[ \t]*\n(.*?)(?=^#{1,2}[ \t]|\Z)", re.I | re.M | re.S)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#]|&(?=#?\w+;))")


class BulletinSettingError(Invalid):
    """WEEKLY_BULLETIN_DAY or _HOUR holds something that is not a day or an hour."""


# --- when ---------------------------------------------------------------------------------------

def scheduled_day() -> int | None:
    """The weekday (0: Monday) the routine runs on, or None when it is off."""
    raw = str(current_app.config["WEEKLY_BULLETIN_DAY"] or "").strip().lower()
    if not raw:
        return None
    for number, name in enumerate(DAYS):
        if raw in (name, name[:3]):
            return number
    raise BulletinSettingError(f"MAILER_WEEKLY_BULLETIN_DAY={raw!r}: a day of the week is needed (monday ... sunday).")


def _hour() -> int:
    hour = int(current_app.config["WEEKLY_BULLETIN_HOUR"])
    if not 0 <= hour <= 23:
        raise BulletinSettingError(f"MAILER_WEEKLY_BULLETIN_HOUR={hour}: an hour from 0 to 23 is needed.")
    return hour


def period(moment: datetime | None = None) -> str:
    """The week `moment` (now by default) falls in, in UK time: "2026-W49" (ISO weeks, from Monday)."""
    year, week, _day = (moment or utcnow()).astimezone(LONDON).isocalendar()
    return f"{year}-W{week:02d}"


def _week_start(moment: datetime) -> date:
    local = moment.astimezone(LONDON).date()
    return local - timedelta(days=local.weekday())


def next_run(now: datetime | None = None) -> tuple[str, datetime] | None:
    """(week, when) of the routine's next run: this week's time, or now when it has passed and this
    week's CLP draft was not made (a worker away that day), else next week's. None when off."""
    day = scheduled_day()
    if day is None:
        return None
    now = now or utcnow()
    monday = _week_start(now)
    due = _local_time(monday + timedelta(days=day), _hour())
    if now < due:
        return period(now), due
    if made(period(now), None) is None:
        return period(now), now
    return period(due + timedelta(days=7)), _local_time(monday + timedelta(days=7 + day), _hour())


def _local_time(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=LONDON).astimezone(timezone.utc)


# --- what's on ----------------------------------------------------------------------------------

def coming_meetings(officer: Officer | None, now: datetime | None = None) -> list[Meeting]:
    """The meetings of the next WINDOW days a bulletin of `officer`'s body lists (None: the CLP's,
    every body's), soonest first."""
    now = now or utcnow()
    stmt = (select(Meeting).options(selectinload(Meeting.branch))
            .where(Meeting.starts_at >= now, Meeting.starts_at < now + WINDOW,
                   Meeting.status.in_([MeetingStatus.PLANNED, MeetingStatus.NOTICED]),
                   Meeting.kind != MeetingKind.EXECUTIVE)
            .order_by(Meeting.starts_at, Meeting.id))
    if officer is not None:
        stmt = scope.meetings(officer, stmt)
    return list(session.scalars(stmt))


def _text(value: str) -> str:
    """Officers' text shown as itself in Markdown (no emphasis, links or entities it did not mean)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join((value or "").split()))


def whats_on(meetings: list[Meeting]) -> str:
    """What's on as Markdown body data: one line per meeting, with its time, name and place."""
    if not meetings:
        return NOTHING_ON
    lines = []
    for meeting in meetings:
        start = meeting.starts_at.astimezone(LONDON)
        where = ", ".join(p for p in (meeting.venue_name, meeting.venue_address) if p.strip())
        if meeting.online_url:
            where = f"{where} (or online)" if where else "online"
        name = words.meeting_name(meeting.title, meeting.body_name)
        lines.append(f"- **{start:%A %-d %B, %H:%M}**: {_text(name)}" + (f", {_text(where)}" if where else ""))
    return "\n".join(lines)


def _with_placeholder(body: str) -> str:
    """The starter's body with its "What's on" (or "Meetings") section given over to the meetings;
    a starter without one gets the section after its first paragraph."""
    section = f"## What's on\n\n{PLACEHOLDER}\n\n"
    if _SECTION.search(body):
        return _SECTION.sub(lambda _m: section, body, count=1)
    head, gap, rest = body.partition("\n\n")
    return f"{head}\n\n{section}{rest}" if gap else f"{body}\n\n{section}"


# --- the draft ----------------------------------------------------------------------------------

def body_key(officer: Officer | None) -> str:
    """Whose bulletin: "clp", or "branch-<id>" for a branch secretary."""
    branch_id = scope.own_branch_id(officer) if officer is not None else None
    return "clp" if branch_id is None else f"branch-{branch_id}"


def made(week: str, officer: Officer | None) -> RoutineRun | None:
    """The record of the bulletin made for `week` for `officer`'s body (None: the CLP's), if any."""
    return session.scalars(select(RoutineRun).where(RoutineRun.routine == ROUTINE, RoutineRun.period == week,
                                                    RoutineRun.body == body_key(officer))).first()


@dataclass
class Made:
    campaign: Campaign | None
    created: bool          # False: this week's was made already (campaign: it, unless deleted since)
    meetings: int = 0


def make(officer: Officer | None, now: datetime | None = None) -> Made:
    """This week's bulletin draft for `officer`'s body (None: the CLP's, by the routine), once a
    week: a second call the same week returns the first draft. Not committed."""
    if officer is not None and not scope.sees_all(officer) and scope.own_branch_id(officer) is None:
        raise BulletinSettingError("A branch secretary without a branch has no bulletin to make.")
    now = now or utcnow()
    week = period(now)
    earlier = made(week, officer)
    if earlier is not None:
        return Made(earlier.campaign, False)
    run = RoutineRun(routine=ROUTINE, period=week, body=body_key(officer), made_at=now)
    try:
        with session.begin_nested():  # a second maker at the same moment meets the unique key
            session.add(run)
            session.flush()
    except IntegrityError:
        earlier = made(week, officer)
        return Made(earlier.campaign if earlier else None, False)
    meetings = coming_meetings(officer, now)
    campaign = drafts.create(officer, STARTER)
    campaign.name = f"Weekly bulletin, week of {words.uk_date(_week_start(now))}"
    campaign.body = _with_placeholder(campaign.body or "")
    campaign.body_data = {"whats_on": whats_on(meetings)}
    if officer is not None:
        campaign.segment = scope.segment_definition(officer, dict(campaign.segment or {}))
    run.campaign_id = campaign.id
    audit.record("campaign.weekly_bulletin", "campaign", campaign.id, {"meetings": len(meetings)}, note=week,
                 officer=officer)
    session.flush()
    return Made(campaign, True, len(meetings))


def this_week(officer: Officer) -> Campaign | None:
    """This week's bulletin for `officer`'s body (a draft to finish, or on its way, or sent)."""
    return session.scalars(select(Campaign).join(RoutineRun, RoutineRun.campaign_id == Campaign.id).where(
        RoutineRun.routine == ROUTINE, RoutineRun.period == period(), RoutineRun.body == body_key(officer),
        scope.branch_condition(Campaign.branch_id, officer))).first()
