"""The overview's charts, as figures for server-rendered SVG (templates/web/_charts.html): no
script and nothing from elsewhere. Each chart is one aggregate query within the officer's scope.

- members by branch, stacked by status; members by status after each recent import (the counts
  kept when it was applied: MemberCount), and what each changed;
- each recent campaign's outcome (sent, failed, suppressed);
- bounces and letters received, week by week.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, case, func, or_, select

from mailer import scope
from mailer.db import session, utcnow
from mailer.models import (Branch, Campaign, CampaignStatus, Delivery, DeliveryStatus, ImportRun, ImportStatus,
                           InboundKind, InboundMessage, Member, MemberCount, MemberStatus, Officer, Thread)
from mailer.words import status as status_words
from mailer.words import uk_date

WEEKS = 12
RECENT = 8


@dataclass
class Bar:
    label: str
    values: list[int]  # one per series of the chart

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass
class Chart:
    key: str
    title: str
    series: list[str]
    bars: list[Bar] = field(default_factory=list)

    @property
    def largest(self) -> int:
        return max((b.total for b in self.bars), default=0) or 1


def members_by_branch(officer: Officer) -> Chart:
    statuses = list(MemberStatus)
    chart = Chart("members", "Members by branch and status", [status_words(s) for s in statuses])
    rows = session.execute(scope.members(officer, select(Branch.name, Member.status, func.count())
                                         .select_from(Member).outerjoin(Branch, Branch.id == Member.branch_id)
                                         .group_by(Branch.name, Member.status))).all()
    by_branch: dict[str, dict] = {}
    for name, status, n in rows:
        by_branch.setdefault(name or "No branch", {})[status] = n
    for name in sorted(by_branch):
        chart.bars.append(Bar(name, [by_branch[name].get(s, 0) for s in statuses]))
    return chart


def members_over_imports(officer: Officer) -> Chart:
    """Members by status as each of the last imports left them, in the officer's scope (a branch
    secretary: their branch's), from the counts kept when each was applied."""
    statuses = list(MemberStatus)
    chart = Chart("history", "Members after each import", [status_words(s) for s in statuses])
    runs = session.execute(select(ImportRun.id, ImportRun.created_at).where(
        ImportRun.id.in_(select(MemberCount.import_run_id))).order_by(ImportRun.id.desc()).limit(RECENT)).all()
    if not runs:
        return chart
    counts: dict[int, dict[str, int]] = {run_id: {} for run_id, _at in runs}
    for run_id, status, n in session.execute(
            select(MemberCount.import_run_id, MemberCount.status, func.sum(MemberCount.count))
            .where(MemberCount.import_run_id.in_(list(counts)), scope.branch_condition(MemberCount.branch_id, officer))
            .group_by(MemberCount.import_run_id, MemberCount.status)):
        counts[run_id][status] = int(n or 0)
    for run_id, created_at in reversed(runs):
        chart.bars.append(Bar(f"#{run_id} {uk_date(created_at)}", [counts[run_id].get(s.value, 0) for s in statuses]))
    return chart


def imports(officer: Officer) -> Chart:
    """What the last imports changed (CLP-wide officers only: an export holds every branch)."""
    keys = ["new", "updated", "lapsed", "resigned"]
    chart = Chart("imports", "What each import changed", keys)
    if not scope.sees_all(officer):
        return chart
    runs = session.scalars(select(ImportRun).where(ImportRun.status == ImportStatus.APPLIED)
                           .order_by(ImportRun.id.desc()).limit(RECENT)).all()
    for run in reversed(runs):
        summary = run.summary or {}
        chart.bars.append(Bar(f"#{run.id} {uk_date(run.created_at)}", [int(summary.get(k, 0) or 0) for k in keys]))
    return chart


def campaign_outcomes(officer: Officer) -> Chart:
    outcomes = [DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED]
    chart = Chart("campaigns", "Each campaign's outcome", [s.value for s in outcomes])
    recent = session.scalars(scope.campaigns(officer).order_by(None)
                             .where(Campaign.status == CampaignStatus.SENT)
                             .order_by(Campaign.finished_at.desc(), Campaign.id.desc()).limit(RECENT)).all()
    if not recent:
        return chart
    counts: dict[int, dict] = {c.id: {} for c in recent}
    for campaign_id, status, n in session.execute(
            select(Delivery.campaign_id, Delivery.status, func.count())
            .where(Delivery.campaign_id.in_(list(counts))).group_by(Delivery.campaign_id, Delivery.status)):
        counts[campaign_id][status] = n
    for campaign in reversed(recent):
        chart.bars.append(Bar(campaign.name, [counts[campaign.id].get(s, 0) for s in outcomes]))
    return chart


def mail_by_week(officer: Officer) -> Chart:
    """Bounces and letters (replies and new messages that reached the correspondence log), by week."""
    chart = Chart("weekly", f"Bounces and letters, last {WEEKS} weeks", ["bounces", "letters"])
    now = utcnow()
    starts = [now - timedelta(weeks=WEEKS - n) for n in range(WEEKS)]
    bounce = InboundMessage.kind == InboundKind.BOUNCE
    letter = and_(InboundMessage.kind == InboundKind.REPLY, InboundMessage.thread_id.is_not(None))
    columns = []
    for start in starts:
        week = and_(InboundMessage.received_at >= start, InboundMessage.received_at < start + timedelta(weeks=1))
        columns += [func.sum(case((and_(week, bounce), 1), else_=0)), func.sum(case((and_(week, letter), 1), else_=0))]
    row = session.execute(select(*columns).select_from(InboundMessage)
                          .outerjoin(Thread, Thread.id == InboundMessage.thread_id)
                          .outerjoin(Member, Member.id == InboundMessage.member_id)
                          .where(InboundMessage.received_at >= starts[0])
                          .where(or_(scope.branch_condition(Thread.branch_id, officer),
                                     scope.branch_condition(Member.branch_id, officer)))).one()
    for n, start in enumerate(starts):
        chart.bars.append(Bar(f"w/c {uk_date(start)[:5]}", [int(row[2 * n] or 0), int(row[2 * n + 1] or 0)]))
    return chart


def charts(officer: Officer) -> list[Chart]:
    found = [members_by_branch(officer), members_over_imports(officer), imports(officer), campaign_outcomes(officer), mail_by_week(officer)]
    return [c for c in found if any(b.total for b in c.bars)]
