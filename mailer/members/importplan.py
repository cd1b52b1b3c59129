"""The import's plan: the membership export compared with the members held, as the diff an officer
reads before applying it. Bad rows are reported with their line and never stop good ones.

Planned as a stream, so a 100,000-row export fits in little memory: the file is parsed row by row
as it is compared, and of each member held only a fingerprint is kept (id, status, consent and a
hash of the values the file can change). A row whose values hash as the member's does is unchanged;
the few others are compared exactly with the member's values, read in chunks by id afterwards."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from mailer import audit, progress
from mailer.db import session
from mailer.members import exportfile
from mailer.members.service import EDITABLE, clean_values, value_cleaners
from mailer.models import Branch, Member, MemberStatus

HELD_COLUMNS = tuple(name for name in EDITABLE if name != "branch")
CHUNK = 5_000  # rows written, or members read by id, at a time
SHOWN_FIELDS = ("membership_number", "first_name", "last_name", "email", "phone", "postcode", "ward",
                "polling_district", "branch", "status", "joined_on", "bulletins_consent")


@contextmanager
def bulk_work() -> Iterator[None]:
    """No cyclic garbage collection while an import plans or writes: it makes few cycles, and the
    collector would walk the ever-growing plan again and again (a third of the planning time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class HeldMember:
    """A member as the import compares it: the editable values only, read as plain rows (a
    100,000-member export is compared without loading 100,000 ORM objects)."""

    __slots__ = ("id", "values")

    def __init__(self, member_id: int, values: dict):
        self.id, self.values = member_id, values

    def __getattr__(self, name):
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.values["first_name"], self.values["last_name"]) if p) or "(no name)"


def _held_select():
    return (select(Member.id, *(getattr(Member, c) for c in HELD_COLUMNS), Branch.name)
            .outerjoin(Branch, Branch.id == Member.branch_id).where(Member.last_name != "[erased]"))


def held_members(ids: list[int]) -> dict[int, HeldMember]:
    """The members with these ids (not erased), read in chunks."""
    out = {}
    for start in range(0, len(ids), CHUNK):
        for row in session.execute(_held_select().where(Member.id.in_(ids[start:start + CHUNK])).order_by(Member.id)):
            values = dict(zip(HELD_COLUMNS, row[1:-1]))
            values["branch"] = row[-1]
            out[row[0]] = HeldMember(row[0], values)
    return out


class Held:
    """What the plan keeps of each member held (a fingerprint, not their values)."""

    __slots__ = ("id", "print", "status", "bulletins_consent", "numbered")

    def __init__(self, member_id: int, fingerprint: int, status: MemberStatus, bulletins: bool, numbered: bool):
        self.id, self.print, self.status, self.bulletins_consent, self.numbered = (
            member_id, fingerprint, status, bulletins, numbered)


class HeldIndex:
    """Every member held, by membership number and by email, as fingerprints over `compared`."""

    def __init__(self, compared: tuple[str, ...]):
        self.by_number: dict[str, Held] = {}
        self.by_email: dict[str, tuple[Held, ...]] = {}
        self.all: list[Held] = []
        columns = {c: getattr(Member, c) for c in HELD_COLUMNS} | {"branch": Branch.name}
        stmt = (select(Member.id, Member.membership_number, Member.email, Member.status, Member.bulletins_consent,
                       *(columns[c] for c in compared))
                .outerjoin(Branch, Branch.id == Member.branch_id).where(Member.last_name != "[erased]")
                .order_by(Member.id).execution_options(yield_per=CHUNK))  # streamed: never all rows at once
        for row in session.connection().execute(stmt):  # Core rows: no ORM bookkeeping for 100,000 of them
            held = Held(row[0], hash(tuple(row[5:])), row[3], row[4], bool(row[1]))
            self.all.append(held)
            if row[1]:
                self.by_number[row[1]] = held
            if row[2]:
                self.by_email[row[2]] = self.by_email.get(row[2], ()) + (held,)

    def named(self, raw: dict[str, str]) -> tuple[Held, ...]:
        """The held members a row names by its raw membership number, else by its email."""
        number = (raw.get("membership_number") or "").strip()
        if number:
            return (self.by_number[number],) if number in self.by_number else ()
        return self.by_email.get((raw.get("email") or "").strip().lower(), ())


@dataclass
class RowError:
    line: int
    reason: str
    who: str = ""


@dataclass(slots=True)
class RowChange:
    """One member the import adds or changes, with the cleaned values to write. A new member's
    values are emptied once written (they are then in the database and its audit log), and a dry
    run keeps none (its diff shows a new member's line and label): a 100,000-row import does not
    hold every row's values."""

    line: int
    label: str
    values: dict
    member: HeldMember | None = None      # None for a new member until it is written
    changes: dict = field(default_factory=dict)
    status: str | None = None             # a new member's status (kept when its values are not)

    @property
    def moved(self) -> bool:
        return self.member is not None and bool({"branch", "ward"} & self.changes.keys())

    @property
    def new_status(self) -> str | None:
        return self.changes["status"][1] if "status" in self.changes else None


@dataclass
class ImportPlan:
    """What applying the import would do: the diff an officer confirms."""

    encoding: str
    delimiter: str
    rows_read: int = 0
    new: list[RowChange] = field(default_factory=list)
    updated: list[RowChange] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    missing: list[HeldMember] = field(default_factory=list)   # full export only: held, but not in the file
    new_branches: list[str] = field(default_factory=list)

    @property
    def moved(self) -> list[RowChange]:
        return [c for c in self.updated if c.moved]

    def with_status(self, status: MemberStatus) -> list[RowChange]:
        """Members the import leaves with `status`: changed to it, or new with it (a newcomer
        imported as lapsed is counted as lapsed, and is not welcomed: importer._to_welcome)."""
        return ([c for c in self.new if c.status == status.value]
                + [c for c in self.updated if c.new_status == status.value])

    def summary(self) -> dict:
        """Counts and errors, as kept on the import's record."""
        return {
            "encoding": self.encoding, "delimiter": self.delimiter, "rows": self.rows_read,
            "new": len(self.new), "updated": len(self.updated), "unchanged": self.unchanged,
            "moved": len(self.moved), "lapsed": len(self.with_status(MemberStatus.LAPSED)),
            "resigned": len(self.with_status(MemberStatus.RESIGNED)), "missing": len(self.missing),
            "errors": [{"line": e.line, "reason": e.reason, "who": e.who} for e in self.errors],
            "new_branches": self.new_branches,
        }


def _who(raw: dict, line: int) -> str:
    """How a rejected row is named in the import's record: its membership number or email (what
    erasing a member scrubs from these records), or, when it has neither, a label saying so;
    never a name, which erasure could not find there."""
    ident = (raw.get("membership_number") or raw.get("email") or "").strip()
    return ident or f"line {line}: no membership number or email"


def label(values: dict, line: int) -> str:
    name = " ".join(p for p in (values.get("first_name"), values.get("last_name")) if p)
    ident = values.get("membership_number") or values.get("email") or f"line {line}"
    return f"{name} ({ident})" if name else str(ident)


def _compared(mapping: dict[str, str]) -> tuple[str, ...]:
    """The fields the file's rows carry whose held values are fingerprinted (status and consent,
    which a row may leave blank, are compared on their own)."""
    names = {name for name in mapping.values() if name}
    if "full_name" in names:
        names |= {"first_name", "last_name"}
    return tuple(sorted(names & set(EDITABLE) - {"status", "bulletins_consent"}))


COMPARING, WRITING = "Comparing the file with the members held", "Writing the changes"


def task_name(run_id: int) -> str:
    """The name an import's live progress goes by (mailer.progress)."""
    return f"import-{run_id}"


def plan(data: bytes, mapping: dict[str, str], full_export: bool = False, task: str | None = None,
         write_new: Callable[[ImportPlan, list[RowChange]], None] | None = None) -> ImportPlan:
    """Compare the export with the members held, without changing anything. With `write_new`
    (applying), the new members are handed to it in chunks as they are found. With `task`, how far
    it has gone is reported as that task's live progress, for the page that waits for it."""
    problems = exportfile.check_mapping(mapping)
    export = exportfile.read(data, keep_records=False, whole=False)
    if problems:
        raise exportfile.ExportFileError(" ".join(problems))
    result = ImportPlan(export.encoding, export.delimiter)
    with bulk_work():
        _compare(result, export, mapping, full_export, write_new, task, data.count(b"\n"))
    return result


def _compare(result: ImportPlan, export: exportfile.ExportFile, mapping: dict[str, str], full_export: bool,
             write_new, task: str | None = None, lines: int = 0) -> None:
    compared = _compared(mapping)
    held = HeldIndex(compared)
    branches = {b.name.lower(): b.name for b in session.scalars(select(Branch))}
    defaults = {"bulletins_consent": current_app.config["IMPORT_DEFAULT_BULLETINS"]}
    cleaners = value_cleaners(defaults)
    seen_numbers: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    matched: set[int] = set()
    present: set[int] = set()  # held members the file names, even on a row with errors
    maybe_changed: list[tuple[int, dict, Held]] = []  # rows whose fingerprint differs from the member's
    pending_new = 0

    for line, raw in exportfile.rows(export, mapping):
        result.rows_read += 1
        if task:  # the file's lines less its header: the rows, but for quoted line breaks
            progress.report(task, COMPARING, result.rows_read, max(lines - 1, result.rows_read))
        for named in held.named(raw):
            present.add(named.id)
        for optional in ("status", "bulletins_consent"):
            if not (raw.get(optional) or "").strip():
                raw.pop(optional, None)  # blank: keep what is held (a new member gets the default)
        values, errors = clean_values(raw, defaults, cleaners)
        if errors:
            result.errors.append(RowError(line, "; ".join(errors.values()), _who(raw, line)))
            continue
        number, email = values.get("membership_number"), values.get("email")
        if not number and not email:
            result.errors.append(RowError(line, "no membership number or email address", _who(raw, line)))
            continue
        if number and number in seen_numbers:
            result.errors.append(RowError(line, f"membership number {number} is also on line {seen_numbers[number]}",
                                          _who(raw, line)))
            continue

        member = held.by_number.get(number) if number else None
        if member is None and email:
            candidates = [m for m in held.by_email.get(email, ()) if not number or not m.numbered]
            if len(candidates) > 1:
                result.errors.append(RowError(line, f"{email} belongs to several members: add the membership number",
                                              _who(raw, line)))
                continue
            member = candidates[0] if candidates else None
        if not number and email in seen_emails:
            result.errors.append(RowError(line, f"{email} is also on line {seen_emails[email]} with no membership "
                                                "number", _who(raw, line)))
            continue
        if number:
            seen_numbers[number] = line
        if email:
            seen_emails.setdefault(email, line)

        if values.get("branch"):
            branch = " ".join(values["branch"].split())
            if branch.lower() not in branches:
                branches[branch.lower()] = branch
                result.new_branches.append(branch)
            values["branch"] = branches[branch.lower()]  # the held spelling: "CASTLE" is no move from Castle

        if member is None:
            if "status" not in values:
                values["status"] = MemberStatus.ACTIVE
            values.setdefault("bulletins_consent", defaults["bulletins_consent"])
            if write_new is None:  # a dry run: the diff shows a new member's line and label only
                result.new.append(RowChange(line, label(values, line), {}, status=MemberStatus(values["status"]).value))
                continue
            result.new.append(RowChange(line, label(values, line), values,
                                        status=MemberStatus(values["status"]).value))
            pending_new += 1
            if pending_new >= CHUNK:
                write_new(result, result.new[-pending_new:])
                pending_new = 0
            continue
        if member.id in matched:
            result.errors.append(RowError(line, "matches a member already updated by an earlier line", _who(raw, line)))
            continue
        matched.add(member.id)
        if "bulletins_consent" not in raw:
            values.pop("bulletins_consent", None)  # no column: leave what the member told us alone
        if (hash(tuple(values.get(c) for c in compared)) != member.print
                or values.get("status", member.status) != member.status
                or values.get("bulletins_consent", member.bulletins_consent) != member.bulletins_consent):
            maybe_changed.append((line, values, member))
        else:
            result.unchanged += 1
    if write_new is not None and pending_new:
        write_new(result, result.new[-pending_new:])

    before = held_members([m.id for _line, _values, m in maybe_changed])
    for line, values, member in maybe_changed:
        held_member = before[member.id]
        changes = audit.diff({k: held_member.values.get(k) for k in values}, values)
        if changes:
            result.updated.append(RowChange(line, label(held_member.values | values, line), values, held_member,
                                            changes))
        else:
            result.unchanged += 1

    if full_export:
        named = matched | present
        missing = held_members([m.id for m in held.all if m.id not in named and m.status is not MemberStatus.RESIGNED])
        result.missing = sorted(missing.values(), key=lambda m: (m.last_name, m.first_name))
