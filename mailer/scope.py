"""Branch scope, in one place: what an officer may see and where what they make belongs.

CLP roles (secretary, officer, chair) see every branch; a branch secretary sees only their own
branch's members, campaigns, meetings, threads and what hangs off them (deliveries, messages,
minutes, attendance, segments, bounces). Records of no branch (the CLP's meetings and campaigns,
mail matched to no member, imports) are for CLP roles only. A branch secretary without a branch
sees nothing: a condition is never "branch IS NULL" for them.

Every query for those records is scoped here, and nothing else asks `Officer.sees_all_branches`
(tests/security/test_scope_rule.py keeps it so). Functions take the officer as an argument: this
is the services' layer, for views, the API and jobs alike. A getter answers None both for "no such
row" and "another branch's", so a caller cannot tell one from the other (a 404 either way).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, exists, false, func, select, true
from sqlalchemy.orm import aliased

from mailer.db import session
from mailer.models import (AgendaPaper, Attachment, Attendance, Branch, Campaign, ImportRun, InboundAttachment,
                           InboundMessage, Meeting, Member, Officer, Segment, Thread)


# --- who sees what ------------------------------------------------------------------------------

def sees_all(officer: Officer) -> bool:
    """True for CLP roles: every branch, and records of no branch."""
    return officer.sees_all_branches


def own_branch_id(officer: Officer) -> int | None:
    """The branch a record made by `officer` belongs to: None (the CLP's) for CLP roles."""
    return None if officer.sees_all_branches else officer.branch_id


def own_branch_name(officer: Officer) -> str | None:
    """The branch a branch secretary's members must stay in (None for CLP roles, or without a branch)."""
    return None if officer.sees_all_branches or officer.branch is None else officer.branch.name


def can_see_branch(officer: Officer, branch_id: int | None) -> bool:
    """True when `officer` may see records of branch `branch_id` (None: records of no branch, CLP roles only)."""
    return officer.sees_all_branches or (officer.branch_id is not None and branch_id == officer.branch_id)


def body_may_see(body_branch_id: int | None, branch_id: int | None) -> bool:
    """True when everyone who sees a body's records (the CLP's: None, or a branch's) may also see a
    record of branch `branch_id`: what may be put in a meeting's papers or minutes."""
    return body_branch_id is None or branch_id == body_branch_id


def officers_who_see(officers: list[Officer], branch_id: int | None) -> list[Officer]:
    """Those of `officers` who may see records of branch `branch_id`."""
    return [o for o in officers if can_see_branch(o, branch_id)]


def branch_condition(column, officer: Officer) -> ColumnElement:
    """The condition on a branch id column that limits rows to what `officer` may see."""
    if officer.sees_all_branches:
        return true()
    if officer.branch_id is None:  # never "branch IS NULL": a secretary without a branch sees nothing
        return false()
    return column == officer.branch_id


def member_condition(column, officer: Officer) -> ColumnElement:
    """Rows whose member (by the member id `column`) `officer` may see; every row for CLP roles
    (rows of no member included)."""
    if officer.sees_all_branches:
        return true()
    member = aliased(Member)  # the query may join Member itself: never correlate with it
    return exists().where(member.id == column, branch_condition(member.branch_id, officer))


def segment_definition(officer: Officer, definition: dict) -> dict:
    """A segment as `officer` may use it: a branch secretary's reaches their own branch only."""
    if not officer.sees_all_branches:
        definition["branches"] = [officer.branch_id]
    return definition


# --- queries: a SELECT already limited to the officer's scope ------------------------------------

def members(officer: Officer, stmt: Select | None = None) -> Select:
    """`stmt` (a query over members; by default all of them) limited to those `officer` may see."""
    return (select(Member) if stmt is None else stmt).where(branch_condition(Member.branch_id, officer))


def campaigns(officer: Officer, stmt: Select | None = None) -> Select:
    """The campaigns `officer` may see, newest first."""
    stmt = select(Campaign).order_by(Campaign.id.desc()) if stmt is None else stmt
    return stmt.where(branch_condition(Campaign.branch_id, officer))


def meetings(officer: Officer, stmt: Select | None = None) -> Select:
    """The meetings `officer` may see, latest first."""
    stmt = select(Meeting).order_by(Meeting.starts_at.desc()) if stmt is None else stmt
    return stmt.where(branch_condition(Meeting.branch_id, officer))


def threads(officer: Officer, stmt: Select | None = None) -> Select:
    """`stmt` (a query over threads) limited to the threads `officer` may see."""
    return (select(Thread) if stmt is None else stmt).where(branch_condition(Thread.branch_id, officer))


def inbound_messages(officer: Officer, stmt: Select) -> Select:
    """`stmt` (a query over inbound messages) limited to those of `officer`'s branch, by their
    thread's branch or their member's. CLP roles see every message: no join at all, so a count over
    the messages can be answered from an index alone."""
    if officer.sees_all_branches:
        return stmt
    return (stmt.outerjoin(Thread, Thread.id == InboundMessage.thread_id)
            .outerjoin(Member, Member.id == InboundMessage.member_id)
            .where(branch_condition(Thread.branch_id, officer) | branch_condition(Member.branch_id, officer)))


def branches(officer: Officer) -> list[Branch]:
    """The branches `officer` may see (all, or their own), by name."""
    return list(session.scalars(select(Branch).where(branch_condition(Branch.id, officer)).order_by(Branch.name)))


def segments(officer: Officer) -> list[Segment]:
    """The saved segments `officer` may use, by name: every one for CLP roles, else their branch's."""
    return list(session.scalars(select(Segment).where(branch_condition(Segment.branch_id, officer))
                                .order_by(func.lower(Segment.name))))


def imports(officer: Officer) -> Select:
    """The import runs, newest first, for CLP roles only: an export holds every branch's members."""
    return select(ImportRun).where(true() if officer.sees_all_branches else false()).order_by(ImportRun.id.desc())


# --- getters: the row, or None when missing or out of scope (never tell which) -------------------

def can_see_member(officer: Officer, member: Member) -> bool:
    return can_see_branch(officer, member.branch_id)


def can_see_campaign(officer: Officer, campaign: Campaign) -> bool:
    return can_see_branch(officer, campaign.branch_id)


def can_see_meeting(officer: Officer, meeting: Meeting) -> bool:
    return can_see_branch(officer, meeting.branch_id)


def can_see_thread(officer: Officer, thread: Thread) -> bool:
    return can_see_branch(officer, thread.branch_id)


def _message_branch_id(message: InboundMessage) -> int | None:
    if message.thread_id is not None:
        return message.thread.branch_id if message.thread else None
    return message.member.branch_id if message.member else None


def can_see_message(officer: Officer, message: InboundMessage) -> bool:
    """A threaded message goes with its thread; an unthreaded one with its member's branch; one
    matched to no member (or not processed) only CLP roles may see."""
    return can_see_branch(officer, _message_branch_id(message))


def _get(model, ident, officer: Officer, allowed):
    row = session.get(model, ident) if ident is not None else None
    return row if row is not None and allowed(officer, row) else None


def get_member(officer: Officer, member_id: int | None) -> Member | None:
    return _get(Member, member_id, officer, can_see_member)


def get_campaign(officer: Officer, campaign_id: int | None) -> Campaign | None:
    return _get(Campaign, campaign_id, officer, can_see_campaign)


def get_meeting(officer: Officer, meeting_id: int | None) -> Meeting | None:
    return _get(Meeting, meeting_id, officer, can_see_meeting)


def get_thread(officer: Officer, thread_id: int | None) -> Thread | None:
    return _get(Thread, thread_id, officer, can_see_thread)


def get_message(officer: Officer, message_id: int | None) -> InboundMessage | None:
    return _get(InboundMessage, message_id, officer, can_see_message)


def get_import(officer: Officer, run_id: int | None) -> ImportRun | None:
    return _get(ImportRun, run_id, officer, lambda o, _run: sees_all(o))


def get_attachment(officer: Officer, attachment_id: int | None) -> InboundAttachment | None:
    """The attachment, or None when missing or its message is out of scope."""
    return _get(InboundAttachment, attachment_id, officer, lambda o, a: can_see_message(o, a.message))


# --- children of a record already in scope: the row, or None when it is another record's ---------

def campaign_attachment(campaign: Campaign, attachment_id: int | None) -> Attachment | None:
    found = session.get(Attachment, attachment_id) if attachment_id is not None else None
    return found if found is not None and found.campaign_id == campaign.id else None


def meeting_paper(meeting: Meeting, paper_id: int | None) -> AgendaPaper | None:
    found = session.get(AgendaPaper, paper_id) if paper_id is not None else None
    return found if found is not None and found.item.meeting_id == meeting.id else None


def meeting_attendance(meeting: Meeting, attendance_id: int | None) -> Attendance | None:
    found = session.get(Attendance, attendance_id) if attendance_id is not None else None
    return found if found is not None and found.meeting_id == meeting.id else None


def thread_message(thread: Thread, message_id: int | None) -> InboundMessage | None:
    found = session.get(InboundMessage, message_id) if message_id is not None else None
    return found if found is not None and found.thread_id == thread.id else None
