"""The overview: what needs me now, within my scope, in a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select, update

from mailer.db import session, utcnow
from mailer.meetings.rules import LONDON
from mailer.models import (Branch, Campaign, CampaignStatus, Delivery, DeliveryStatus, EmailHealth, Meeting, MeetingKind,
                           MeetingStatus, Member, MemberStatus, Minutes, MinutesStatus, Role, Stream, Thread,
                           ThreadStatus)
from tests.conftest import login


def _seed(make_member, branch, officer, n: int = 1, tag: str = ""):
    """n of everything the overview looks at, in `branch`."""
    for i in range(n):
        make_member(first_name=f"New{tag}{i}", last_name="Joiner", branch=branch, to_welcome=True,
                    email=f"new{tag}{i}@example.org")
        make_member(first_name=f"Held{tag}{i}", last_name="Bouncer", branch=branch, email_health=EmailHealth.ON_HOLD,
                    email=f"held{tag}{i}@example.org")
        session.add(Thread(subject=f"Letter {tag}{i}", branch_id=branch.id, status=ThreadStatus.NEEDS_ACTION,
                           assigned_to_id=officer.id if i == 0 else None))
        meeting = Meeting(kind=MeetingKind.BRANCH, title=f"{branch.name} meeting {tag}{i}", branch_id=branch.id,
                          starts_at=utcnow() + timedelta(days=20 + i))
        past = Meeting(kind=MeetingKind.BRANCH, title=f"{branch.name} past {tag}{i}", branch_id=branch.id,
                       starts_at=utcnow() - timedelta(days=10 + i), status=MeetingStatus.HELD)
        session.add_all([meeting, past])
        session.flush()
        session.add(Minutes(meeting_id=past.id, status=MinutesStatus.APPROVED if i % 2 else MinutesStatus.DRAFT))
        sending = Campaign(stream=Stream.BULLETINS, name=f"Bulletin {tag}{i}", subject="News for {{ member.first_name }}",
                           status=CampaignStatus.SENDING, branch_id=branch.id)
        sent = Campaign(stream=Stream.BULLETINS, name=f"Old {tag}{i}", subject="Old news", status=CampaignStatus.SENT,
                        branch_id=branch.id, finished_at=utcnow() - timedelta(days=1 + i))
        session.add_all([sending, sent])
        session.flush()
        session.add_all([Delivery(campaign_id=sending.id, email=f"a{tag}{i}@example.org", status=DeliveryStatus.SENT),
                         Delivery(campaign_id=sending.id, email=f"b{tag}{i}@example.org", status=DeliveryStatus.QUEUED),
                         Delivery(campaign_id=sent.id, email=f"c{tag}{i}@example.org", status=DeliveryStatus.SENT),
                         Delivery(campaign_id=sent.id, email=f"d{tag}{i}@example.org", status=DeliveryStatus.FAILED)])
    session.commit()


def test_the_overview_shows_what_needs_me(signed_in, make_member, make_branch):
    north = make_branch("North")
    _seed(make_member, north, signed_in.officer)
    page = signed_in.get("/").data.decode()
    assert "<strong>1</strong> waiting for action" in page and "<strong>1</strong> assigned to you" in page
    assert "<strong>1</strong> unread" in page
    meeting = session.query(Meeting).filter(Meeting.title == "North meeting 0").one()
    latest = (meeting.starts_at.astimezone(LONDON).date() - timedelta(days=7))  # a branch meeting: 7 days
    assert f"Notice by <strong>{latest.strftime('%a %-d %B %Y')}</strong>" in page
    assert "North past 0</a>: waiting for the chair's approval" in page
    assert "New0 Joiner" in page and "<strong>1</strong> not yet welcomed" in page
    assert "Held0 Bouncer" in page and "cannot be emailed until the address is corrected" in page
    assert "News for Jane" in page and 'value="50"' in page and "1 of 2 sent" in page  # the send in progress
    assert "1 sent · 1 failed · 0 suppressed, of 2" in page  # the last campaign's figures
    assert 'src="/static/dashboard.js"' in page


def test_a_branch_secretary_sees_their_branch_only(client, make_officer, make_member, make_branch):
    north, south = make_branch("North"), make_branch("South")
    secretary = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    _seed(make_member, north, secretary, tag="n")
    _seed(make_member, south, secretary, n=2, tag="s")
    login(client, secretary.email)
    page = client.get("/").data.decode()
    assert "Newn0 Joiner" in page and "News0" not in page and "News1" not in page
    assert "North meeting n0" in page and "South meeting" not in page and "South past" not in page
    assert "<strong>1</strong> waiting for action" in page and "<strong>1</strong> not yet welcomed" in page


def test_the_overview_takes_the_same_number_of_queries_whatever_the_data(signed_in, make_member, make_branch):
    north = make_branch("North")
    _seed(make_member, north, signed_in.officer, n=1, tag="a")

    def queries() -> int:
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(session.get_bind(), "before_cursor_execute", listener)
        try:
            assert signed_in.get("/").status_code == 200
        finally:
            event.remove(session.get_bind(), "before_cursor_execute", listener)
        return len(seen)

    few = queries()
    _seed(make_member, north, signed_in.officer, n=12, tag="b")
    session.expire_all()
    many = queries()
    assert few == many and many <= 21, (few, many)  # 16, and one to three for each of the charts


def test_the_overview_charts_are_svg_within_scope(client, make_officer, make_member, make_branch):
    import re

    from mailer import charts
    from mailer.models import InboundKind, InboundMessage

    north, south = make_branch("North"), make_branch("South")
    secretary = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    clp = make_officer("clp@example.org", Role.CLP_SECRETARY)
    _seed(make_member, north, secretary, tag="n")
    _seed(make_member, south, secretary, n=2, tag="s")
    ours = make_member(first_name="Bo", last_name="Unce", branch=north, email="bo@example.org")
    theirs = make_member(first_name="So", last_name="Uth", branch=south, email="so@example.org")
    for n, (member, days) in enumerate(((ours, 1), (ours, 20), (theirs, 1))):
        session.add(InboundMessage(raw=b"x", size=1, sha256="0" * 64, dedupe_key=f"sha256:{n}", transport="file",
                                   kind=InboundKind.BOUNCE, member_id=member.id,
                                   received_at=utcnow() - timedelta(days=days)))
    session.commit()

    mine = {c.key: c for c in charts.charts(secretary)}
    assert [b.label for b in mine["members"].bars] == ["North"]
    assert "imports" not in mine  # an export holds every branch: not a branch secretary's
    assert [b.label for b in mine["campaigns"].bars] == ["Old n0"] and mine["campaigns"].bars[0].values == [1, 1, 0]
    assert [b.values[0] for b in mine["weekly"].bars][-1] == 1 and sum(b.values[0] for b in mine["weekly"].bars) == 2
    everyone = {c.key: c for c in charts.charts(clp)}
    assert [b.label for b in everyone["members"].bars] == ["North", "South"]
    assert sum(b.values[0] for b in everyone["weekly"].bars) == 3

    login(client, secretary.email)
    page = client.get("/").data.decode()
    assert len(re.findall(r'<svg class="bars"[^>]*role="img"', page)) == len(mine)
    assert 'id="chart-members-title"' in page and "South" not in page and "<script" not in page.split("At a glance")[1].split("</svg>")[0]


def test_members_over_imports_are_charted_from_the_counts_kept_at_each_import(make_officer, make_branch):
    """Each applied import keeps members by branch and status as it left them; the chart shows
    that history (not only today's figures), in the officer's scope."""
    from mailer import charts
    from mailer.members import importer
    from tests.members.conftest import csv_bytes

    clp = make_officer("clp@example.org", Role.CLP_SECRETARY)
    header = ["Membership number", "First name", "Email", "Branch", "Status"]

    def apply(*rows):
        run = importer.start("export.csv", csv_bytes([header, *rows]), clp)
        importer.apply(run, clp)
        session.commit()

    apply(["H1", "Ann", "ann@example.org", "North", "Active"], ["H2", "Bob", "bob@example.org", "North", "Active"],
          ["H3", "Cy", "cy@example.org", "South", "Active"])
    apply(["H2", "Bob", "bob@example.org", "North", "Lapsed"], ["H4", "Di", "di@example.org", "North", "New"],
          ["H5", "Ed", "ed@example.org", "South", "Lapsed"])
    north = session.scalars(select(Branch).where(Branch.name == "North")).one()
    north_sec = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    labels = [s.value for s in MemberStatus]

    def history(officer) -> list[dict]:
        chart = {c.key: c for c in charts.charts(officer)}["history"]
        return [{labels[i]: v for i, v in enumerate(b.values) if v} for b in chart.bars]

    assert history(clp) == [{"active": 3}, {"active": 2, "lapsed": 2, "new": 1}]
    assert history(north_sec) == [{"active": 2}, {"active": 1, "lapsed": 1, "new": 1}]  # North's only
    # Today's figures move on; the history keeps what each import left.
    session.execute(update(Member).values(status=MemberStatus.RESIGNED))
    session.commit()
    assert history(clp) == [{"active": 3}, {"active": 2, "lapsed": 2, "new": 1}]
