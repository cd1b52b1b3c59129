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

from sqlalchemy import case, func, select

from mailer import scope
from mailer.db import session, utcnow
from mailer.models import (Branch, Campaign, CampaignStatus, DeliveryStatus, ImportRun, ImportStatus,
                           InboundKind, InboundMessage, Member, MemberCount, MemberStatus, Officer)
from mailer.sending.campaigns import delivery_counts_of
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
    counted = scope.members(officer, select(Member.branch_id, Member.status, func.count().label("n"))
                            .group_by(Member.branch_id, Member.status)).subquery()  # from an index alone
    rows = session.execute(select(Branch.name, counted.c.status, counted.c.n).select_from(counted)
                           .outerjoin(Branch, Branch.id == counted.c.branch_id)).all()
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
    counts = delivery_counts_of(list(recent))  # stored on each campaign when it finished
    for campaign in reversed(recent):
        chart.bars.append(Bar(campaign.name, [counts[campaign.id].get(s, 0) for s in outcomes]))
    return chart


def mail_by_week(officer: Officer) -> Chart:
    """Bounces and letters (replies and new messages that reached the correspondence log), by week."""
    chart = Chart("weekly", f"Bounces and letters, last {WEEKS} weeks", ["bounces", "letters"])
    now = utcnow()
    starts = [now - timedelta(weeks=WEEKS - n) for n in range(WEEKS)]
    # Each message's week found once (newest first: most mail is recent), then grouped: one pass
    # over an index (received_at, kind, thread_id, member_id), a few comparisons per message.
    week = case(*((InboundMessage.received_at >= start, n) for n, start in reversed(list(enumerate(starts)))))
    each = scope.inbound_messages(officer, select(week.label("week"), InboundMessage.kind,
                                                  InboundMessage.thread_id.is_not(None).label("letter"))
                                  .where(InboundMessage.received_at >= starts[0], InboundMessage.received_at < now,
                                         InboundMessage.kind.in_([InboundKind.BOUNCE, InboundKind.REPLY]))).subquery()
    rows = session.execute(select(each.c.week, each.c.kind, each.c.letter, func.count())
                           .group_by(each.c.week, each.c.kind, each.c.letter)).all()
    counts = [[0, 0] for _ in starts]
    for n, kind, threaded, count in rows:
        if kind is InboundKind.BOUNCE:
            counts[n][0] += count
        elif threaded:
            counts[n][1] += count
    for n, start in enumerate(starts):
        chart.bars.append(Bar(f"w/c {uk_date(start)[:5]}", counts[n]))
    return chart


def charts(officer: Officer) -> list[Chart]:
    found = [members_by_branch(officer), members_over_imports(officer), imports(officer), campaign_outcomes(officer), mail_by_week(officer)]
    return [c for c in found if any(b.total for b in c.bars)]
