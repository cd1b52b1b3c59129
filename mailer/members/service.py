"""Members: finding, reading, adding, editing, exporting and erasing, always within the
officer's scope and always audited. Views and the CLI call these; the rules live here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Select, String, cast, func, insert, literal, select, update
from sqlalchemy.orm import defer, joinedload

from mailer import audit, scope
from mailer.db import session, utcnow
from mailer.errors import Invalid
from mailer.members import consent
from mailer.members.fields import FieldError, clean_bool, clean_date, clean_email, clean_postcode, clean_status, clean_text
from mailer.models import (AuditEvent, Branch, Campaign, Delivery, EmailHealth, ImportRun, Member, MemberStatus, MemberTag,
                           Officer, Tag)
from mailer.pagination import Cursor, Key, KeysetPage, paginate
from mailer.search import contains, member_condition

# Fields an officer may set on a member, in the order forms and exports show them.
EDITABLE = ("membership_number", "first_name", "last_name", "email", "phone", "postcode", "ward",
            "polling_district", "branch", "status", "joined_on", "notices_consent", "bulletins_consent")

# Each order ends with the id, so it is total and pages by keyset (mailer.pagination).
SORTS = {
    "name": (Member.last_name, Member.first_name, Member.id),
    "number": (Member.membership_number, Member.id),
    "joined": (Member.joined_on, Member.id),
    "status": (Member.status, Member.last_name, Member.id),
    "branch": (Branch.name, Member.last_name, Member.id),
    "updated": (Member.updated_at, Member.id),
}
NULLABLE_SORT_COLUMNS = {"branch": {0}}  # members without a branch: an outer join gives NULL


class MemberError(Invalid):
    """Values that cannot be saved: `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors

    def field_errors(self) -> list[dict]:
        return [{"field": field, "message": message} for field, message in self.errors.items()]


@dataclass
class MemberQuery:
    """What the members page asks for: search text, filters, sort and page."""

    q: str = ""
    branch_id: int | None = None
    ward: str | None = None
    polling_district: str | None = None
    status: MemberStatus | None = None
    to_welcome: bool = False
    sort: str = "name"
    descending: bool = False
    cursor: Cursor = field(default_factory=Cursor)


_contains = contains  # kept under its old name: other services import it from here


def _filtered(officer: Officer, mq: MemberQuery, listed: bool = True) -> Select:
    """The members `officer` may see that match `mq`; `listed` False for a statement only counted."""
    stmt = scope.members(officer, select(Member).outerjoin(Member.branch))
    q = " ".join(mq.q.split())
    if q:  # name, email or membership number containing q, ignoring case, from an index (mailer.search)
        stmt = stmt.where(member_condition(Member, q, listed))
    if mq.branch_id:
        stmt = stmt.where(Member.branch_id == mq.branch_id)
    if mq.ward:
        stmt = stmt.where(Member.ward == mq.ward)
    if mq.polling_district:
        stmt = stmt.where(Member.polling_district == mq.polling_district)
    if mq.status:
        stmt = stmt.where(Member.status == mq.status)
    if mq.to_welcome:
        stmt = stmt.where(Member.to_welcome.is_(True))
    return stmt


def sort_keys(sort: str, descending: bool = False) -> list[Key]:
    sort = sort if sort in SORTS else "name"
    nullable = NULLABLE_SORT_COLUMNS.get(sort, set())
    return [Key(c, descending, True if i in nullable else None) for i, c in enumerate(SORTS[sort])]


def search(officer: Officer, mq: MemberQuery, per_page: int = 50, count: bool = True) -> KeysetPage:
    """One page of the members `officer` may see that match `mq` (with the total when `count`)."""
    stmt = _filtered(officer, mq).options(joinedload(Member.branch))
    counted = _filtered(officer, mq, listed=False) if count else False  # the same members, counted faster
    return paginate(stmt, sort_keys(mq.sort, mq.descending), mq.cursor, per_page, count=counted)


def _distinct_by_index(col) -> list:
    """The distinct non-NULL values of an indexed member column, in order, by one index probe per
    value ("the first value after the last one found") rather than a DISTINCT over every member's
    index entry: 60 wards of 100,000 members are 61 probes (0.3 ms) instead of a walk of the
    whole index (4 ms on PostgreSQL, on every members page)."""
    first = select(col).where(col.is_not(None)).order_by(col).limit(1).scalar_subquery()
    found = select(first.label("value")).cte("found", recursive=True)
    after = select(col).where(col > found.c.value).order_by(col).limit(1).scalar_subquery()
    found = found.union_all(select(after).where(found.c.value.is_not(None)))
    return list(session.scalars(select(found.c.value).where(found.c.value.is_not(None)).order_by(found.c.value)))


def filter_choices(officer: Officer) -> dict:
    """Branches, wards and polling districts present among the members `officer` may see."""
    def distinct(col):
        if scope.sees_all(officer):  # every member: probe the column's index value by value
            return _distinct_by_index(col)
        # One branch's members (wards and districts lie within a branch, so probing the whole
        # index would walk past the other branches' values): their rows, then DISTINCT.
        stmt = scope.members(officer, select(col).where(col.is_not(None)).distinct().order_by(col))
        return list(session.scalars(stmt))

    return {"branches": scope.branches(officer), "wards": distinct(Member.ward),
            "polling_districts": distinct(Member.polling_district), "statuses": list(MemberStatus)}


def branch_by_name(name: str | None, create: bool = True) -> Branch | None:
    """The branch called `name` (case-insensitive), created when new."""
    name = " ".join((name or "").split())
    if not name:
        return None
    branch = session.scalar(select(Branch).where(func.lower(Branch.name) == name.lower()))
    if branch is None and create:
        branch = Branch(name=name)
        session.add(branch)
        session.flush()
    return branch


def value_cleaners(defaults: dict | None = None) -> dict:
    """field -> the function that cleans its raw text (made once for the many rows of an import)."""
    defaults = defaults or {}
    status_default = defaults.get("status")
    notices_default = defaults.get("notices_consent", True)
    bulletins_default = defaults.get("bulletins_consent", True)
    return {
        "membership_number": lambda v: clean_text(v, 40),
        "first_name": lambda v: clean_text(v, 100) or "",
        "last_name": lambda v: clean_text(v, 100) or "",
        "email": clean_email,
        "phone": lambda v: clean_text(v, 40),
        "postcode": clean_postcode,
        "ward": lambda v: clean_text(v, 120),
        "polling_district": lambda v: clean_text(v, 40),
        "branch": lambda v: clean_text(v, 120),
        "status": lambda v: clean_status(v, status_default),
        "joined_on": clean_date,
        "notices_consent": lambda v: clean_bool(v, notices_default),
        "bulletins_consent": lambda v: clean_bool(v, bulletins_default),
    }


def clean_values(raw: dict[str, str | None], defaults: dict | None = None,
                 cleaners: dict | None = None) -> tuple[dict, dict[str, str]]:
    """Check raw member values (text as typed or exported). Returns (values, errors by field).
    Only fields present in `raw` are returned, so an import without a column leaves it alone.
    `cleaners`, from value_cleaners(defaults), saves making them again for every row."""
    cleaners = cleaners or value_cleaners(defaults)
    values, errors = {}, {}
    for name, value in raw.items():
        clean = cleaners.get(name)
        if clean is None:
            continue
        try:
            values[name] = clean(value)
        except FieldError as exc:
            errors[name] = str(exc)
    return values, errors


def snapshot(member: Member) -> dict:
    """The member's editable values, with the branch by name (as the audit log records it)."""
    data = {name: getattr(member, name) for name in EDITABLE if name != "branch"}
    data["branch"] = member.branch.name if member.branch else None
    return data


def assign(member: Member, values: dict) -> dict:
    """Set `values` on `member`; returns {field: [old, new]} of what changed."""
    before = snapshot(member)
    for name, value in values.items():
        if name == "branch":
            member.branch = branch_by_name(value)
        else:
            setattr(member, name, value)
    return audit.diff(before, {k: v for k, v in values.items()})


def _check_unique_number(values: dict, member: Member | None) -> None:
    number = values.get("membership_number")
    if number:
        clash = session.scalar(select(Member).where(Member.membership_number == number))
        if clash is not None and clash is not member:
            raise MemberError({"membership_number": f"membership number {number} belongs to another member"})


def _check_branch_scope(officer: Officer, values: dict) -> None:
    if scope.sees_all(officer):
        return
    own = scope.own_branch_name(officer)
    if (values.get("branch") or "").lower() != (own or "").lower():
        raise MemberError({"branch": f"as a branch secretary you can only keep members in {own}"})


def create_member(officer: Officer, raw: dict[str, str | None]) -> Member:
    """Add a member typed in by an officer. Not committed."""
    values, errors = clean_values(raw, {"status": MemberStatus.NEW})
    if not values.get("membership_number") and not values.get("email"):
        errors.setdefault("membership_number", "a member needs a membership number or an email address")
    if errors:
        raise MemberError(errors)
    _check_branch_scope(officer, values)
    _check_unique_number(values, None)
    member = Member(email_health=EmailHealth.OK)
    session.add(member)
    changes = assign(member, values)
    session.flush()
    if raw.get("tags"):
        changes |= set_tags(member, raw["tags"])
    audit.record("member.create", "member", member.id, changes, officer=officer)
    consent.log_changes(member.id, changes, "officer")
    return member


def update_member(officer: Officer, member: Member, raw: dict[str, str | None]) -> dict:
    """Apply an officer's edit; returns the changes recorded. Not committed."""
    if not scope.can_see_member(officer, member):
        raise MemberError({"member": "not found"})
    values, errors = clean_values(raw, {"status": member.status})
    # Judge the identifiers the member would be left with, whichever of the two the edit clears.
    if ({"membership_number", "email"} & values.keys() and not values.get("membership_number", member.membership_number)
            and not values.get("email", member.email)):
        errors.setdefault("membership_number", "a member needs a membership number or an email address")
    if errors:
        raise MemberError(errors)
    if "branch" in values:
        _check_branch_scope(officer, values)
    _check_unique_number(values, member)
    changes = assign(member, values)
    if "tags" in raw:
        changes |= set_tags(member, raw.get("tags") or "")
    if changes:
        audit.record("member.update", "member", member.id, changes, officer=officer)
        consent.log_changes(member.id, changes, "officer")
    return changes


def set_tags(member: Member, text: str) -> dict:
    """Set a member's tags from "campaigner, driver"; returns {"tags": [old, new]} when they change.
    Tags are created on first use. Not committed."""
    unique = {}
    for raw in text.split(","):
        name = " ".join(raw.split())[:60]
        if name:
            unique.setdefault(name.lower(), name)  # "Driver" and "driver" are one tag
    names = sorted(unique.values(), key=str.lower)
    old = sorted((t.name for t in member.tags), key=str.lower)
    if names == old:
        return {}
    existing = {t.name.lower(): t for t in session.scalars(select(Tag).where(
        func.lower(Tag.name).in_([n.lower() for n in names])))} if names else {}
    tags = []
    for name in names:
        tag = existing.get(name.lower())
        if tag is None:
            tag = Tag(name=name)
            session.add(tag)
        tags.append(tag)
    member.tags = tags
    return {"tags": [", ".join(old) or None, ", ".join(names) or None]}


def visible_tags(officer: Officer) -> list[str]:
    """Tag names on members `officer` may see: another branch's tags say something about its members."""
    stmt = select(Tag.name).join(MemberTag, MemberTag.tag_id == Tag.id).join(Member, Member.id == MemberTag.member_id)
    if scope.sees_all(officer):
        stmt = select(Tag.name)  # CLP roles: every tag, used or not yet
    return list(session.scalars(scope.members(officer, stmt).distinct().order_by(Tag.name)))


def mark_welcomed(officer: Officer, member: Member) -> None:
    """Take a member off the to-welcome list. Not committed."""
    if member.to_welcome:
        member.to_welcome = False
        audit.record("member.welcomed", "member", member.id, {"to_welcome": [True, False]}, officer=officer)


WELCOME_STARTER = "welcome"  # the Welcome routine's starter (campaigns/welcome; mailer/welcome.py sends it)


def welcomed_by(campaign: Campaign) -> int:
    """Take the members a welcome's delivery rows reach off the to-welcome list, audited; called by
    the start job in the snapshot's transaction. Returns how many."""
    if campaign.starter != WELCOME_STARTER:
        return 0
    addresses = select(Delivery.email).where(Delivery.campaign_id == campaign.id)
    ids = session.scalars(select(Member.id).where(Member.to_welcome.is_(True), Member.email.in_(addresses))).all()
    if not ids:
        return 0
    session.execute(update(Member).where(Member.id.in_(ids)).values(to_welcome=False)
                    .execution_options(synchronize_session=False))
    now = utcnow()
    session.execute(insert(AuditEvent), [
        {"at": now, "officer_id": None, "actor": audit.SYSTEM, "action": "member.welcomed", "subject_type": "member",
         "subject_id": member_id, "changes": {"to_welcome": [True, False]}, "note": f"welcome campaign {campaign.id}"}
        for member_id in ids])
    return len(ids)


def history(member: Member, limit: int = 100) -> list[AuditEvent]:
    """The audit events about this member, newest first."""
    return list(session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "member",
                                                         AuditEvent.subject_id == member.id)
                                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))


def record_data(member: Member) -> dict:
    """The member's record as plain data: the first part of a subject access export (the whole
    export, with their story and the audit entry, is `mailer.story.export_data`)."""
    data = {name: audit.plain(value) for name, value in snapshot(member).items()}
    data.update(id=member.id, email_health=member.email_health.value, to_welcome=member.to_welcome,
                created_at=member.created_at.isoformat(), updated_at=member.updated_at.isoformat())
    return data


def erase(officer: Officer, member: Member, reason: str) -> None:
    """Erase a member's personal data on request; the history keeps only that it happened. Not committed."""
    if not reason.strip():
        raise MemberError({"reason": "say why (for example: erasure request received on a date)"})
    _erase_from_import_reports(member)
    _erase_from_deliveries(member)
    for event in session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "member",
                                                          AuditEvent.subject_id == member.id)):
        event.changes = {name: ["[erased]", "[erased]"] for name in event.changes}
    for name in ("membership_number", "email", "phone", "postcode", "ward", "polling_district", "joined_on"):
        setattr(member, name, None)
    member.first_name, member.last_name = "", "[erased]"
    member.status, member.notices_consent, member.bulletins_consent = MemberStatus.RESIGNED, False, False
    member.to_welcome = False
    audit.record("member.erase", "member", member.id, note=reason.strip(), officer=officer)


def _erase_from_deliveries(member: Member) -> None:
    """The member's delivery rows keep their status and times (a campaign's totals), not the
    address: it becomes "[erased <row id>]" (unique, as one campaign's addresses must be; never an
    address, so a row still queued is found unreachable and suppressed), and any relay reply
    quoting it loses it too."""
    values = {"email": literal("[erased ") + cast(Delivery.id, String) + literal("]")}
    if member.email:
        values["error"] = func.replace(Delivery.error, member.email, "[erased]")
    session.execute(update(Delivery).where(Delivery.member_id == member.id).values(**values)
                    .execution_options(synchronize_session=False))


def _erase_from_import_reports(member: Member) -> None:
    """Import reports name the rows they skipped by membership number or email: remove this member's."""
    found = [re.escape(v) for v in (member.membership_number, member.email) if v]
    if not found:
        return
    pattern = re.compile(r"(?<![\w.@+-])(?:" + "|".join(found) + r")(?![\w.@+-])", re.IGNORECASE)  # whole values
    for run in session.scalars(select(ImportRun).options(defer(ImportRun.content))):
        errors = (run.summary or {}).get("errors") or []
        if any(pattern.search(f"{e.get('who', '')} {e.get('reason', '')}") for e in errors):
            scrubbed = [{**e, "who": pattern.sub("[erased]", e.get("who", "")),
                         "reason": pattern.sub("[erased]", e.get("reason", ""))} for e in errors]
            run.summary = {**run.summary, "errors": scrubbed}  # a new dict, so the JSON column is saved


def matching(officer: Officer, mq: MemberQuery) -> Select:
    """SELECT of the members `officer` may see that match `mq` (search and filters), unordered."""
    return _filtered(officer, mq)
