"""Importing the membership export: plan it as a diff against what Mailer holds, show it, then
apply it in one transaction. Bad rows are reported with their line and never stop good ones."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import bindparam, func, select

from mailer import audit, progress, scope
from mailer.db import session, utcnow
from mailer.members import consent, exportfile
from mailer.members.service import EDITABLE, clean_values
from mailer.pagination import Cursor, Key, KeysetPage, paginate
from mailer.models import (AuditEvent, Branch, ConsentEvent, ImportMapping, ImportRun, ImportStatus, Member,
                           MemberCount, MemberStatus, Officer)

HELD_COLUMNS = tuple(name for name in EDITABLE if name != "branch")


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


def _held_members() -> list[HeldMember]:
    rows = session.execute(select(Member.id, *(getattr(Member, c) for c in HELD_COLUMNS), Branch.name)
                           .outerjoin(Branch, Branch.id == Member.branch_id)
                           .where(Member.last_name != "[erased]").order_by(Member.id))
    out = []
    for row in rows:
        values = dict(zip(HELD_COLUMNS, row[1:-1]))
        values["branch"] = row[-1]
        out.append(HeldMember(row[0], values))
    return out

SHOWN_FIELDS = ("membership_number", "first_name", "last_name", "email", "phone", "postcode", "ward",
                "polling_district", "branch", "status", "joined_on", "bulletins_consent")


@dataclass
class RowError:
    line: int
    reason: str
    who: str = ""


@dataclass
class RowChange:
    """One member the import adds or changes, with the cleaned values to write."""

    line: int
    label: str
    values: dict
    member: HeldMember | None = None      # None for a new member
    changes: dict = field(default_factory=dict)

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
        imported as lapsed is counted as lapsed, and is not welcomed: _to_welcome)."""
        return ([c for c in self.new if MemberStatus(c.values.get("status", MemberStatus.ACTIVE)) is status]
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


def suggest_mapping(headers: list[str]) -> dict[str, str]:
    """header -> field: the officer's earlier choice for this header, else the usual synonyms.
    No field is suggested twice (a usable mapping even when a synonym meets a remembered header)."""
    remembered = {m.header: m.field for m in session.scalars(select(ImportMapping))}
    mapping = {h: remembered.get(exportfile.normalise_header(h)) for h in headers}
    taken = {name for name in mapping.values() if name}
    for header, name in mapping.items():
        if name is None:
            guess = exportfile.guess_field(header)
            mapping[header] = "" if guess in taken else guess
            taken.add(mapping[header])
    return mapping


def remember_mapping(mapping: dict[str, str]) -> None:
    """Keep the officer's mapping so the next export with these headers maps itself."""
    for header, name in mapping.items():
        key = exportfile.normalise_header(header)
        if not key:
            continue
        row = session.get(ImportMapping, key)
        if row is None:
            session.add(ImportMapping(header=key, field=name))
        else:
            row.field = name


def _who(raw: dict, line: int) -> str:
    """How a rejected row is named in the import's record: its membership number or email (what
    erasing a member scrubs from these records), or, when it has neither, a label saying so;
    never a name, which erasure could not find there."""
    ident = (raw.get("membership_number") or raw.get("email") or "").strip()
    return ident or f"line {line}: no membership number or email"


def _label(values: dict, line: int) -> str:
    name = " ".join(p for p in (values.get("first_name"), values.get("last_name")) if p)
    ident = values.get("membership_number") or values.get("email") or f"line {line}"
    return f"{name} ({ident})" if name else str(ident)


def _named(raw: dict[str, str], by_number: dict[str, HeldMember],
           by_email: dict[str, list[HeldMember]]) -> list[HeldMember]:
    """The held members a row names by its raw membership number, else by its email."""
    number = (raw.get("membership_number") or "").strip()
    if number:
        return [by_number[number]] if number in by_number else []
    return by_email.get((raw.get("email") or "").strip().lower(), [])


COMPARING, WRITING = "Comparing the file with the members held", "Writing the changes"


def task_name(run_id: int) -> str:
    """The name an import's live progress goes by (mailer.progress)."""
    return f"import-{run_id}"


def plan(data: bytes, mapping: dict[str, str], full_export: bool = False, task: str | None = None) -> ImportPlan:
    """Compare the export with the members held, without changing anything (reporting how far it
    has gone as `task`, when given, for the page that waits for it)."""
    export = exportfile.read(data)
    total = len(export.records)
    problems = exportfile.check_mapping(mapping)
    if problems:
        raise exportfile.ExportFileError(" ".join(problems))
    result = ImportPlan(export.encoding, export.delimiter)

    members = _held_members()
    by_number = {m.membership_number: m for m in members if m.membership_number}
    by_email: dict[str, list[HeldMember]] = {}
    for m in members:
        if m.email:
            by_email.setdefault(m.email, []).append(m)
    branches = {b.name.lower(): b.name for b in session.scalars(select(Branch))}
    defaults = {"bulletins_consent": current_app.config["IMPORT_DEFAULT_BULLETINS"]}
    seen_numbers: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    matched: set[int] = set()
    present: set[int] = set()  # held members the file names, even on a row with errors

    for line, raw in exportfile.rows(export, mapping):
        result.rows_read += 1
        if task:
            progress.report(task, COMPARING, result.rows_read, total)
        present.update(m.id for m in _named(raw, by_number, by_email))
        for optional in ("status", "bulletins_consent"):
            if not (raw.get(optional) or "").strip():
                raw.pop(optional, None)  # blank: keep what is held (a new member gets the default)
        values, errors = clean_values(raw, defaults)
        who = _who(raw, line)
        if errors:
            result.errors.append(RowError(line, "; ".join(errors.values()), who))
            continue
        number, email = values.get("membership_number"), values.get("email")
        if not number and not email:
            result.errors.append(RowError(line, "no membership number or email address", who))
            continue
        if number and number in seen_numbers:
            result.errors.append(RowError(line, f"membership number {number} is also on line {seen_numbers[number]}", who))
            continue

        member = by_number.get(number) if number else None
        if member is None and email:
            candidates = [m for m in by_email.get(email, []) if not number or not m.membership_number]
            if len(candidates) > 1:
                result.errors.append(RowError(line, f"{email} belongs to several members: add the membership number", who))
                continue
            member = candidates[0] if candidates else None
        if not number and email in seen_emails:
            result.errors.append(RowError(line, f"{email} is also on line {seen_emails[email]} with no membership number", who))
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
            result.new.append(RowChange(line, _label(values, line), values))
            continue
        if member.id in matched:
            result.errors.append(RowError(line, "matches a member already updated by an earlier line", who))
            continue
        matched.add(member.id)
        if "bulletins_consent" not in raw:
            values.pop("bulletins_consent", None)  # no column: leave what the member told us alone
        before = member.values
        changes = audit.diff({k: before.get(k) for k in values}, values)
        if changes:
            result.updated.append(RowChange(line, _label(before | values, line), values, member, changes))
        else:
            result.unchanged += 1

    if full_export:
        named = matched | present
        result.missing = sorted((m for m in members if m.id not in named and m.status is not MemberStatus.RESIGNED),
                                key=lambda m: (m.last_name, m.first_name))
    return result


def _to_welcome(values: dict) -> bool:
    """A member new to Mailer is welcomed only if they are a member now: one imported as lapsed
    or resigned is not (their history, not a joining)."""
    return MemberStatus(values.get("status", MemberStatus.ACTIVE)) not in (MemberStatus.LAPSED, MemberStatus.RESIGNED)


def rejected_csv(run: ImportRun) -> str:
    """The rows an import skipped, as CSV: while the file is held (before it is applied), the
    rows as they were with a Problem column added, to fix and import again; after, the line,
    member and problem kept on the import's record."""
    out = io.StringIO()
    writer = exportfile.SafeWriter(out)  # the cells came from a file: never formulas in a spreadsheet
    if run.content is not None and run.mapping:
        export = exportfile.read(run.content)
        found = plan(run.content, run.mapping, run.full_export)
        reasons = {e.line: e.reason for e in found.errors}
        writer.writerow(["Line", *export.headers, "Problem"])
        for line, cells in export.records:
            if line in reasons:
                writer.writerow([line, *cells, reasons[line]])
        return out.getvalue()
    writer.writerow(["Line", "Member", "Problem"])
    for e in (run.summary or {}).get("errors", []):
        writer.writerow([e.get("line"), e.get("who"), e.get("reason")])
    return out.getvalue()


def _apply(result: ImportPlan, run: ImportRun, officer: Officer | None, task: str | None = None) -> None:
    """Write the plan in bulk (multi-row INSERTs, UPDATEs by primary key), with an audit event and
    the consent log for every member added or changed, as officers' edits have."""
    branches = {b.name.lower(): b for b in session.scalars(select(Branch))}
    for name in result.new_branches:
        branches[name.lower()] = Branch(name=name)
        session.add(branches[name.lower()])
    session.flush()
    branch_ids = {key: b.id for key, b in branches.items()}
    now = utcnow()

    def columns(values: dict) -> dict:
        out = {k: v for k, v in values.items() if k != "branch"}
        if "branch" in values:
            out["branch_id"] = branch_ids[values["branch"].lower()] if values["branch"] else None
        return out

    note = f"import #{run.id} ({run.filename})"
    officer_id, actor = audit.actor(officer)
    actor = actor if officer else "cli"
    events, consents = [], []

    audit_table, consent_table, member_table = AuditEvent.__table__, ConsentEvent.__table__, Member.__table__

    def log(member_id: int, changes: dict) -> None:
        events.append({"at": now, "officer_id": officer_id, "actor": actor, "action": "member.import",
                       "subject_type": "member", "subject_id": member_id, "changes": changes, "note": note})
        for stream, name in consent.FIELDS.items():
            if name in changes:
                consents.append({"member_id": member_id, "at": now, "stream": stream.value,
                                 "granted": bool(changes[name][1]), "source": "import", "note": note[:500]})

    def flush_logs() -> None:  # written as they are made: 100,000 rows of log are not held at once
        # Core inserts (executemany): the ORM's bulk path spent longer on its bookkeeping than the
        # database spent writing the rows.
        if events:
            session.execute(audit_table.insert(), events)
            events.clear()
        if consents:
            session.execute(consent_table.insert(), consents)
            consents.clear()

    chunk = 5_000
    total, written = len(result.new) + len(result.updated), 0

    def wrote(n: int) -> None:
        nonlocal written
        written += n
        if task:
            progress.report(task, WRITING, written, total, force=True)

    for start_at in range(0, len(result.new), chunk):
        part = result.new[start_at:start_at + chunk]
        # Each row's new id is found by its public id (unique, made here): RETURNING in the rows'
        # own order would make SQLite insert them one statement at a time.
        public_ids = [secrets.token_hex(16) for _ in part]
        ids: dict[str, int] = {}
        for rows in _same_keys(columns(c.values) | {"to_welcome": _to_welcome(c.values), "created_at": now,
                                                    "updated_at": now, "public_id": public_id}
                               for c, public_id in zip(part, public_ids)):
            ids.update(session.execute(member_table.insert().returning(member_table.c.public_id, member_table.c.id),
                                       rows).all())
        for change, member_id in zip(part, (ids[p] for p in public_ids)):
            change.member = HeldMember(member_id, change.values)
            log(member_id, {k: [None, v if type(v) is str else audit.plain(v)]
                            for k, v in change.values.items() if v is not None and v != ""})
        flush_logs()
        wrote(len(part))
    for start_at in range(0, len(result.updated), chunk):
        part = result.updated[start_at:start_at + chunk]
        for change in part:
            log(change.member.id, change.changes)
        by_id = member_table.update().where(member_table.c.id == bindparam("member_id"))
        for rows in _same_keys({"member_id": c.member.id, "updated_at": now} | columns(c.values) for c in part):
            session.execute(by_id.values({k: bindparam(k) for k in rows[0] if k != "member_id"}), rows)
        flush_logs()
        wrote(len(part))
    flush_logs()
    session.expire_all()  # members held in this session were written past it


def _count_members(run: ImportRun) -> None:
    """Keep how many members each branch has in each status now, after this import (one grouped
    query; a few rows): the history the overview's members-over-imports chart draws."""
    rows = session.execute(select(Member.branch_id, Member.status, func.count()).group_by(Member.branch_id,
                                                                                        Member.status)).all()
    session.add_all([MemberCount(import_run_id=run.id, branch_id=branch_id, status=MemberStatus(status).value, count=n)
                     for branch_id, status, n in rows])


def _same_keys(rows) -> list[list[dict]]:
    """Rows grouped by their set of keys: one executemany needs the same columns in every row."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def start(filename: str, data: bytes, officer: Officer | None) -> ImportRun:
    """Record an uploaded export, pending the officer's confirmation. Not committed."""
    export = exportfile.read(data)  # refuse an unreadable file now, with its reason
    run = ImportRun(filename=filename[:255], content=data, officer=officer,
                    mapping=suggest_mapping(export.headers))
    session.add(run)
    session.flush()
    return run


def apply(run: ImportRun, officer: Officer | None) -> ImportPlan:
    """Re-plan from the stored file and apply it, all in the caller's transaction, then forget the
    file. On any failure nothing is changed and the run is marked failed with the reason: that
    record alone is committed here (after a rollback), since the caller's failure rolls back."""
    if run.status is not ImportStatus.PENDING or run.content is None:
        raise exportfile.ExportFileError(f"Import #{run.id} was already {run.status.value}.")
    run_id = run.id
    # Kept to record the failure even when the run itself was never committed (the CLI applies at once).
    kept = {"filename": run.filename, "officer_id": run.officer_id, "mapping": run.mapping,
            "full_export": run.full_export, "created_at": run.created_at}
    task = task_name(run_id)
    try:
        result = plan(run.content, run.mapping, run.full_export, task)
        _apply(result, run, officer, task)
        remember_mapping(run.mapping)
        _count_members(run)
        run.status, run.finished_at, run.content, run.summary = ImportStatus.APPLIED, utcnow(), None, result.summary()
        audit.record("import.apply", "import", run.id,
                     {k: v for k, v in result.summary().items() if isinstance(v, int)},
                     note=run.filename, officer=officer, actor=None if officer else "cli")
        session.flush()
        progress.finish(task, f"Imported: {len(result.new):,} new, {len(result.updated):,} updated, "
                              f"{len(result.errors):,} rows with errors.")
        return result
    except Exception as exc:
        progress.finish(task, "The import failed and nothing was changed.")
        session.rollback()
        failed = session.get(ImportRun, run_id)
        if failed is None:
            failed = ImportRun(**kept)
            session.add(failed)
        failed.status, failed.finished_at, failed.error = ImportStatus.FAILED, utcnow(), str(exc)[:2000]
        failed.content = None
        session.commit()
        raise



def cancel(run: ImportRun, officer: Officer | None) -> None:
    """Drop a pending import: nothing changes, and the uploaded file is forgotten. Not committed."""
    if run.status is ImportStatus.PENDING:
        run.status, run.finished_at, run.content = ImportStatus.CANCELLED, utcnow(), None
        audit.record("import.cancel", "import", run.id, note=run.filename, officer=officer)


def runs(officer: Officer, cursor: Cursor | None = None, per_page: int = 50) -> KeysetPage:
    """One page of the import runs `officer` may see, newest first."""
    return paginate(scope.imports(officer), [Key(ImportRun.id, descending=True)], cursor or Cursor(), per_page,
                    count=False)
