"""Segments: who receives a campaign, as filters that compile to SQL (never filtered in Python).

A definition is plain JSON, saved with a campaign or as a reusable Segment:
    {"branches": [ids], "wards": [...], "polling_districts": [...], "statuses": [...],
     "tags": [...], "officer_roles": [...], "joined_after": "2020-01-01", "joined_before": "...",
     "exclude": {the same list keys}, "to_welcome": true}
Within a filter any value matches; filters combine with AND; exclusions remove members.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, case, distinct, exists, false, func, not_, or_, select, true

from mailer import audit, scope
from mailer.db import session
from mailer.errors import Invalid
from mailer.members import count_cache
from mailer.words import parse_date, uk_date
from mailer.models import (Attendance, EmailHealth, Member, MemberStatus, MemberTag, Officer, Response, Role, Stream,
                           Segment, Suppression, Tag)

LIST_KEYS = ("branches", "wards", "polling_districts", "statuses", "tags", "officer_roles")
DEFAULT_STATUSES = [MemberStatus.NEW.value, MemberStatus.ACTIVE.value, MemberStatus.ARREARS.value]


class SegmentError(Invalid):
    """A definition that cannot be used; the message says which part."""

    def __init__(self, reason: str = "", field: str | None = "segment"):
        super().__init__(reason, field)


def clean(definition: dict | None) -> dict:
    """A checked copy of a definition: known keys only, values of the right kinds."""
    definition = definition or {}
    out: dict = {}
    for key in LIST_KEYS:
        values = [v for v in (definition.get(key) or []) if v not in ("", None)]
        if key == "branches":
            try:
                values = [int(v) for v in values]
            except (TypeError, ValueError):
                raise SegmentError("branches must be branch ids") from None
        if key == "statuses":
            bad = [v for v in values if v not in MemberStatus._value2member_map_]
            if bad:
                raise SegmentError(f"unknown status {bad[0]!r}")
        if key == "officer_roles":
            bad = [v for v in values if v not in Role._value2member_map_]
            if bad:
                raise SegmentError(f"unknown officer role {bad[0]!r}")
        if values:
            out[key] = sorted(set(values), key=str)
    for key in ("joined_after", "joined_before"):
        if definition.get(key):
            found = parse_date(str(definition[key]))
            if found is None:
                raise SegmentError(f"{key.replace('_', ' ')} must be a date (dd/mm/yyyy)")
            out[key] = found.isoformat()
    if definition.get("not_declined_meeting"):
        try:  # a meeting's reminder: leave out those who sent apologies or said they will not come
            out["not_declined_meeting"] = int(definition["not_declined_meeting"])
        except (TypeError, ValueError):
            raise SegmentError("not_declined_meeting must be a meeting id") from None
    if definition.get("to_welcome"):  # members on the to-welcome list (the Welcome routine, mailer/welcome.py)
        out["to_welcome"] = True
    exclude = clean({k: v for k, v in (definition.get("exclude") or {}).items() if k in LIST_KEYS}) \
        if definition.get("exclude") else {}
    if exclude:
        out["exclude"] = exclude
    return out


def _tagged(names: list[str]) -> ColumnElement:
    return exists(select(MemberTag.member_id).join(Tag, Tag.id == MemberTag.tag_id)
                  .where(MemberTag.member_id == Member.id, Tag.name.in_(names)))


def _officer(roles: list[str]) -> ColumnElement:
    # Officers and members are separate records; an officer is a member with the same address
    # (both stored lower-case).
    return Member.email.in_(select(Officer.email).where(
        Officer.role.in_([Role(r) for r in roles]), Officer.active.is_(True)))


def _matches(key: str, values: list) -> ColumnElement:
    if key == "branches":
        return Member.branch_id.in_(values)
    if key == "wards":
        return Member.ward.in_(values)
    if key == "polling_districts":
        return Member.polling_district.in_(values)
    if key == "statuses":
        return Member.status.in_([MemberStatus(v) for v in values])
    if key == "tags":
        return _tagged(values)
    if key == "officer_roles":
        return _officer(values)
    raise SegmentError(f"unknown filter {key!r}")


def condition(definition: dict) -> ColumnElement:
    """The SQL condition on Member for a (cleaned) definition."""
    parts = [_matches(key, definition[key]) for key in LIST_KEYS if definition.get(key)]
    if definition.get("joined_after"):
        parts.append(Member.joined_on >= date.fromisoformat(definition["joined_after"]))
    if definition.get("joined_before"):
        parts.append(Member.joined_on <= date.fromisoformat(definition["joined_before"]))
    if definition.get("not_declined_meeting"):
        parts.append(not_(exists(select(Attendance.id).where(
            Attendance.member_id == Member.id, Attendance.meeting_id == definition["not_declined_meeting"],
            Attendance.response.in_([Response.APOLOGIES, Response.NOT_ATTENDING]), Attendance.proposed.is_(False)))))
    if definition.get("to_welcome"):
        parts.append(Member.to_welcome.is_(True))
    for key, values in (definition.get("exclude") or {}).items():
        if values:
            # A NULL ward or district must not hide a member from "not in ward X".
            parts.append(or_(not_(_matches(key, values)), _column_is_null(key)))
    return and_(true(), *parts)


def _column_is_null(key: str) -> ColumnElement:
    column = {"branches": Member.branch_id, "wards": Member.ward, "polling_districts": Member.polling_district}.get(key)
    return column.is_(None) if column is not None else false()


def members(definition: dict, officer: Officer):
    """SELECT of the members a definition picks, within what `officer` may see."""
    return scope.members(officer, select(Member).where(condition(clean(definition))))


def reachable(stream: Stream) -> ColumnElement:
    """Members that may be emailed on `stream`: an address in good health, consent for the stream,
    and no suppression of the address. Suppressions win over everything."""
    consent = Member.bulletins_consent.is_(True) if stream is Stream.BULLETINS else Member.notices_consent.is_(True)
    # Addresses are stored lower-case (members, and suppressions), so they compare as they are.
    suppressed = exists(select(Suppression.id).where(Suppression.email == Member.email,
                                                     Suppression.stream.in_(["all", stream.value])))
    return and_(Member.email.is_not(None), Member.email != "", Member.email_health != EmailHealth.ON_HOLD,
                Member.status != MemberStatus.RESIGNED, consent, not_(suppressed))


def recipients(definition: dict, stream: Stream, officer: Officer | None):
    """SELECT (member id, address): one row per distinct address, the lowest member id for a shared one.
    Addresses are stored lower-case, so grouping on the column (and its index) is grouping by address."""
    stmt = select(func.min(Member.id).label("member_id"), Member.email.label("email")) \
        .where(condition(clean(definition)), reachable(stream)).group_by(Member.email)
    return scope.members(officer, stmt) if officer is not None else stmt


def count(definition: dict, stream: Stream, officer: Officer) -> dict:
    """How many members match, and how many distinct addresses would receive the campaign: one
    pass over the members. PostgreSQL groups by address (a hash) with the suppressions joined
    once; SQLite counts distinct reachable addresses, a suppression looked up per member."""
    if session.get_bind().dialect.name != "postgresql":
        reached = case((reachable(stream), Member.email))
        matched, addresses = session.execute(members(definition, officer).with_only_columns(
            func.count(Member.id), func.count(distinct(reached)))).one()
        return {"members": matched, "recipients": addresses}
    consent = Member.bulletins_consent.is_(True) if stream is Stream.BULLETINS else Member.notices_consent.is_(True)
    suppressed = select(Suppression.email).where(Suppression.stream.in_(["all", stream.value])).distinct().subquery()
    reachable_here = and_(Member.email.is_not(None), Member.email != "", Member.email_health != EmailHealth.ON_HOLD,
                          Member.status != MemberStatus.RESIGNED, consent, suppressed.c.email.is_(None))
    by_address = members(definition, officer).outerjoin(suppressed, suppressed.c.email == Member.email) \
        .with_only_columns(func.count(Member.id).label("n"),
                           func.max(case((reachable_here, 1), else_=0)).label("reached")) \
        .group_by(Member.email).subquery()
    matched, addresses = session.execute(select(func.coalesce(func.sum(by_address.c.n), 0),
                                                func.coalesce(func.sum(by_address.c.reached), 0))).one()
    return {"members": int(matched), "recipients": int(addresses)}


def save(officer: Officer, name: str, definition: dict) -> Segment:
    """Keep a campaign's filters under a name, for the officer's branch (the CLP's for CLP roles). Not committed."""
    segment = Segment(name=name, definition=dict(definition or {}), created_by=officer,
                      branch_id=scope.own_branch_id(officer))
    session.add(segment)
    session.flush()
    audit.record("segment.create", "segment", segment.id, note=name, officer=officer)
    return segment


def remembered_count(definition: dict, stream: Stream, officer: Officer) -> dict:
    """count(), remembered until the members change (at most count_cache.COUNT_TTL seconds), with
    "as_of": when it was counted. For pages; sending always snapshots afresh."""
    return count_cache.counted(clean(definition), stream, officer, count)


def describe(definition: dict, branch_names: dict[int, str] | None = None) -> str:
    """The definition in words, for officers ("active or new members in Northgate, not tagged x")."""
    definition = clean(definition)
    names = branch_names or {}

    def words(d: dict) -> list[str]:
        out = []
        labels = {"branches": "branch", "wards": "ward", "polling_districts": "polling district",
                  "statuses": "status", "tags": "tag", "officer_roles": "officer role"}
        for key in LIST_KEYS:
            if d.get(key):
                shown = [names.get(v, str(v)) if key == "branches" else str(v) for v in d[key]]
                out.append(f"{labels[key]} {' or '.join(shown)}")
        return out

    parts = words(definition)
    if definition.get("joined_after"):
        parts.append(f"joined on or after {uk_date(date.fromisoformat(definition['joined_after']))}")
    if definition.get("joined_before"):
        parts.append(f"joined on or before {uk_date(date.fromisoformat(definition['joined_before']))}")
    if definition.get("to_welcome"):
        parts.append("not yet welcomed")
    text = "; ".join(parts) or "every member"
    excluded = words(definition.get("exclude") or {})
    return text + (f"; except {'; '.join(excluded)}" if excluded else "")
