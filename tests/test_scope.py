"""mailer.scope: what CLP roles, a branch secretary and a secretary without a branch may see."""

from __future__ import annotations

from datetime import timedelta

from mailer import scope
from mailer.db import session, utcnow
from mailer.models import Campaign, Meeting, MeetingKind, Role, Stream


def test_each_officer_sees_their_scope_and_nothing_of_no_branch_unless_clp(make_branch, make_officer, make_member):
    north, south = make_branch("North"), make_branch("South")
    clp = make_officer("clp@example.org")
    sec = make_officer("north@example.org", Role.BRANCH_SECRETARY, north)
    lost = make_officer("lost@example.org", Role.BRANCH_SECRETARY, south)
    lost.branch = None  # as when a branch is deleted under its secretary
    ann, bob = make_member(branch_id=north.id), make_member(branch_id=south.id)
    clp_campaign = Campaign(name="CLP news", stream=Stream.BULLETINS)
    north_campaign = Campaign(name="North news", stream=Stream.BULLETINS, branch_id=north.id)
    clp_meeting = Meeting(kind=MeetingKind.GENERAL, title="GC", starts_at=utcnow() + timedelta(days=30))
    session.add_all([clp_campaign, north_campaign, clp_meeting])
    session.commit()

    assert set(session.scalars(scope.members(clp))) == {ann, bob}
    assert list(session.scalars(scope.members(sec))) == [ann]
    assert scope.get_member(sec, bob.id) is None and scope.get_member(sec, ann.id) is ann
    assert list(session.scalars(scope.campaigns(sec))) == [north_campaign]
    assert scope.get_campaign(sec, clp_campaign.id) is None
    assert scope.get_meeting(clp, clp_meeting.id) is clp_meeting
    assert [b.name for b in scope.branches(sec)] == ["North"]
    assert scope.own_branch_id(sec) == north.id and scope.own_branch_id(clp) is None

    # Never "branch IS NULL": without a branch, a secretary sees none of the CLP's records.
    assert list(session.scalars(scope.members(lost))) == []
    assert list(session.scalars(scope.campaigns(lost))) == []
    assert list(session.scalars(scope.meetings(lost))) == []
    assert scope.get_campaign(lost, clp_campaign.id) is None
    assert scope.get_meeting(lost, clp_meeting.id) is None
    assert scope.get_member(lost, 999_999) is None
