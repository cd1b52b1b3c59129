"""The rules a meeting and its notice must keep: notice periods per body and kind, and the checks
that turn bad input into a clear message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, or_, select

from mailer.db import session, utcnow
from mailer.errors import Refusal
from mailer.models import Meeting, MeetingKind, MeetingStatus
from mailer.words import parse_datetime, with_article

LONDON = ZoneInfo("Europe/London")


class MeetingError(Refusal):
    """Input a meeting cannot take; the message says why."""


def notice_days(meeting: Meeting) -> int:
    """The minimum notice, in days, for this meeting's body and kind (from NOTICE_DAYS)."""
    rules: dict[str, int] = {}
    for part in str(current_app.config["NOTICE_DAYS"]).split(","):
        key, _, value = part.partition("=")
        if key.strip() and value.strip().isdigit():
            rules[key.strip().lower()] = int(value)
    body = "branch" if meeting.branch_id else "clp"
    kind = meeting.kind.value
    return rules.get(f"{body}:{kind}", rules.get(kind, 7))


@dataclass
class NoticeCheck:
    ok: bool
    days_required: int
    days_given: int
    latest_date: date  # the last day a notice could have gone out (London)
    reason: str = ""


def local_date(moment: datetime) -> date:
    return moment.astimezone(LONDON).date()


def check_notice(meeting: Meeting, sent_at: datetime | None = None) -> NoticeCheck:
    """Whether a notice sent now (or at `sent_at`) meets the rule, and the latest valid day."""
    sent_at = sent_at or utcnow()
    required = notice_days(meeting)
    meeting_day = local_date(meeting.starts_at)
    latest = meeting_day - timedelta(days=required)
    given = (meeting_day - local_date(sent_at)).days
    if given >= required:
        return NoticeCheck(True, required, given, latest)
    kind = with_article(meeting.kind.label.lower()).capitalize()
    reason = (f"{kind} of {meeting.body_name} needs {required} days' notice; sent today it "
              f"would give {max(given, 0)}. The notice had to go by {latest.strftime('%A %d %B %Y')}.")
    return NoticeCheck(False, required, given, latest, reason)


def validate(values: dict, meeting: Meeting | None = None) -> list[str]:
    """Problems with a meeting's details (each a sentence for the officer). Warnings are separate."""
    problems = []
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is None:
        problems.append("Give the date and time the meeting starts.")
    elif starts < utcnow() and (meeting is None or meeting.starts_at != starts):
        problems.append("That date and time is in the past.")
    if starts is not None and ends is not None and ends <= starts:
        problems.append("The meeting must end after it starts.")
    url = (values.get("online_url") or "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
            problems.append(f"The online link {url!r} is not a web address (it should start with https://).")
    if not (values.get("venue_address") or values.get("venue_name") or url):
        problems.append("Give a venue, an online link, or both.")
    if not (values.get("title") or "").strip():
        problems.append("Give the meeting a title.")
    return problems


def clashes(branch_id: int | None, starts_at: datetime, ends_at: datetime | None,
            exclude_id: int | None = None) -> list[Meeting]:
    """Other live meetings of the same body overlapping this time (a warning, not a refusal)."""
    end = ends_at or starts_at + timedelta(hours=2)
    stmt = select(Meeting).where(
        Meeting.branch_id.is_(None) if branch_id is None else Meeting.branch_id == branch_id,
        Meeting.status != MeetingStatus.CANCELLED,
        Meeting.starts_at < end,
        or_(and_(Meeting.ends_at.is_not(None), Meeting.ends_at > starts_at),
            and_(Meeting.ends_at.is_(None), Meeting.starts_at > starts_at - timedelta(hours=2))))
    if exclude_id:
        stmt = stmt.where(Meeting.id != exclude_id)
    return list(session.scalars(stmt))


def parse_local(value: str) -> datetime | None:
    """A form's date and time ("03/12/2026 19:30", or ISO), read as Europe/London, returned in UTC."""
    value = (value or "").strip()
    if not value:
        return None
    naive = parse_datetime(value)
    if naive is None:
        raise MeetingError(f"{value!r} is not a date and time: write it as dd/mm/yyyy hh:mm.")
    if naive.tzinfo is not None:
        return naive.astimezone(ZoneInfo("UTC"))
    return naive.replace(tzinfo=LONDON).astimezone(ZoneInfo("UTC"))


DEFAULT_AGENDA = [
    ("apologies", "Apologies"),
    ("last_minutes", "Minutes of the last meeting and matters arising"),
    ("correspondence", "Correspondence"),
    ("reports", "Officer reports"),
    ("motions", "Motions"),
    ("aob", "Any other business"),
    ("next", "Date of next meeting"),
]
AGM_AGENDA = [
    ("apologies", "Apologies"),
    ("last_minutes", "Minutes of the last AGM"),
    ("reports", "Annual reports: Chair, Secretary, Treasurer"),
    ("elections", "Election of officers"),
    ("motions", "Motions"),
    ("correspondence", "Correspondence"),
    ("aob", "Any other business"),
]


def default_agenda(kind: MeetingKind) -> list[tuple[str, str]]:
    """The model standing orders' agenda for a kind of meeting."""
    return AGM_AGENDA if kind is MeetingKind.AGM else DEFAULT_AGENDA
