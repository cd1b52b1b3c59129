"""What needs me now: the dashboard's service. Everything is within the officer's scope (their
branch, for a branch secretary), and each part is one aggregate or one short list, so the
number of queries is the same with ten members or a hundred thousand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from mailer import bulletin, scope
from mailer.compose import drafts
from mailer.db import session, utcnow
from mailer.inbound.correspondence import _unread_condition
from mailer.meetings import rules
from mailer.models import (Campaign, CampaignStatus, DeliveryStatus, EmailHealth, ImportRun, Meeting,
                           MeetingStatus, Member, MemberStatus, Minutes, MinutesStatus, Officer, Thread, ThreadStatus)
from mailer.sending.campaigns import ACTIVE_DELIVERY, delivery_counts_of

LIST_SIZE = 5


@dataclass
class UpcomingMeeting:
    meeting: Meeting
    noticed: bool
    latest_notice: date      # the last day the notice can legally go (UK)
    days_left: int           # until that day; negative: too late without a reason
    minimum_days: int


@dataclass
class SendFigures:
    campaign: Campaign
    subject: str
    total: int
    sent: int
    failed: int
    suppressed: int
    waiting: int

    @property
    def percent(self) -> int:
        done = self.sent + self.failed + self.suppressed
        return 100 if not self.total else int(100 * done / self.total)


@dataclass
class Overview:
    by_status: dict[MemberStatus, int]
    total: int
    to_welcome: int
    on_hold: int
    welcome_list: list[Member]
    on_hold_list: list[Member]
    needs_action: int
    unread: int
    assigned_to_me: int
    meetings: list[UpcomingMeeting]
    minutes_to_approve: list[Minutes]
    minutes_to_circulate: list[Minutes]
    sending: list[SendFigures]
    last_sent: SendFigures | None
    imports: list[ImportRun] = field(default_factory=list)
    bulletin: Campaign | None = None   # this week's (mailer.bulletin)


def _counts(officer: Officer) -> tuple[dict, int, int]:
    """Members by status, those to welcome and those on hold: one grouped query."""
    rows = session.execute(scope.members(officer, select(
        Member.status, func.count(),
        func.sum(case((Member.to_welcome.is_(True), 1), else_=0)),
        func.sum(case((Member.email_health == EmailHealth.ON_HOLD, 1), else_=0)))
        .group_by(Member.status))).all()
    by_status = {status: n for status, n, _w, _h in rows}
    return by_status, sum(int(w or 0) for *_x, w, _h in rows), sum(int(h or 0) for *_x, h in rows)


def _members(officer: Officer, condition) -> list[Member]:
    return list(session.scalars(scope.members(officer, select(Member).where(condition)
                                              .order_by(Member.created_at.desc(), Member.id.desc())
                                              .limit(LIST_SIZE))))


def _correspondence(officer: Officer) -> tuple[int, int, int]:
    waiting = Thread.status == ThreadStatus.NEEDS_ACTION
    row = session.execute(scope.threads(officer, select(
        func.sum(case((waiting, 1), else_=0)),
        func.sum(case((_unread_condition(officer), 1), else_=0)),
        func.sum(case(((Thread.assigned_to_id == officer.id) & waiting, 1), else_=0))).select_from(Thread))).one()
    return tuple(int(n or 0) for n in row)


def _meetings(officer: Officer) -> list[UpcomingMeeting]:
    found = session.scalars(scope.meetings(officer).order_by(None).options(selectinload(Meeting.branch))
                            .where(Meeting.starts_at >= utcnow(),
                                   Meeting.status.in_([MeetingStatus.PLANNED, MeetingStatus.NOTICED]))
                            .order_by(Meeting.starts_at).limit(LIST_SIZE)).all()
    today = rules.local_date(utcnow())
    out = []
    for meeting in found:
        check = rules.check_notice(meeting)
        out.append(UpcomingMeeting(meeting, meeting.status is MeetingStatus.NOTICED, check.latest_date,
                                   (check.latest_date - today).days, check.days_required))
    return out


def _minutes(officer: Officer) -> tuple[list[Minutes], list[Minutes]]:
    stmt = (select(Minutes).join(Meeting, Meeting.id == Minutes.meeting_id)
            .options(selectinload(Minutes.meeting))
            .where(Minutes.status.in_([MinutesStatus.DRAFT, MinutesStatus.APPROVED]))
            .order_by(Meeting.starts_at).limit(2 * LIST_SIZE))
    rows = session.scalars(scope.meetings(officer, stmt)).all()
    return ([m for m in rows if m.status is MinutesStatus.DRAFT][:LIST_SIZE],
            [m for m in rows if m.status is MinutesStatus.APPROVED][:LIST_SIZE])


def _sends(officer: Officer) -> tuple[list[SendFigures], SendFigures | None]:
    """Sends in progress, and the last one finished, with their figures from one grouped query."""
    visible = scope.campaigns(officer).order_by(None)
    live = session.scalars(visible.where(Campaign.status.in_([CampaignStatus.SENDING, CampaignStatus.PAUSED]))
                           .order_by(Campaign.id.desc()).limit(LIST_SIZE)).all()
    last = session.scalars(visible.where(Campaign.status == CampaignStatus.SENT)
                           .order_by(Campaign.finished_at.desc(), Campaign.id.desc()).limit(1)).first()
    campaigns = list(live) + ([last] if last else [])
    counts = delivery_counts_of(campaigns)  # a finished send's counts are stored on it

    def figures(c: Campaign) -> SendFigures:
        by = counts[c.id]
        return SendFigures(c, drafts.sample_subject(c), sum(by.values()), by.get(DeliveryStatus.SENT, 0),
                           by.get(DeliveryStatus.FAILED, 0), by.get(DeliveryStatus.SUPPRESSED, 0),
                           sum(by.get(s, 0) for s in ACTIVE_DELIVERY))

    return [figures(c) for c in live], figures(last) if last else None


def overview(officer: Officer) -> Overview:
    """Everything the dashboard shows for `officer`, in a fixed number of queries."""
    by_status, to_welcome, on_hold = _counts(officer)
    needs_action, unread, mine = _correspondence(officer)
    to_approve, to_circulate = _minutes(officer)
    sending, last = _sends(officer)
    imports = []
    if scope.sees_all(officer):
        imports = list(session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(LIST_SIZE)))
    return Overview(
        by_status=by_status, total=sum(by_status.values()), to_welcome=to_welcome, on_hold=on_hold,
        welcome_list=_members(officer, Member.to_welcome.is_(True)),
        on_hold_list=_members(officer, Member.email_health == EmailHealth.ON_HOLD),
        needs_action=needs_action, unread=unread, assigned_to_me=mine, meetings=_meetings(officer),
        minutes_to_approve=to_approve, minutes_to_circulate=to_circulate, sending=sending, last_sent=last,
        imports=imports, bulletin=bulletin.this_week(officer))
