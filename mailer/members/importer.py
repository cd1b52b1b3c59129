"""Importing the membership export: plan it as a diff against what Mailer holds
(mailer.members.importplan), show it, then apply it in one transaction, written in bulk."""

from __future__ import annotations

import io
import secrets
from datetime import date

from sqlalchemy import bindparam, func, select

from mailer import audit, progress, scope
from mailer.db import session, utcnow
from mailer.members import bulk, consent, exportfile
from mailer.members.importplan import (COMPARING, SHOWN_FIELDS, WRITING, HeldMember, ImportPlan,  # noqa: F401
                                       RowChange, RowError, bulk_work, plan, task_name)
from mailer.pagination import Cursor, Key, KeysetPage, paginate
from mailer.models import (AuditEvent, Branch, ConsentEvent, ImportMapping, ImportRun, ImportStatus, Member,
                           MemberCount, MemberStatus, Officer)


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


_AS_LOGGED = {str, bool, int}
_STATUS_LOGGED = {s: s.value for s in MemberStatus}


def _logged(value: object) -> object:
    """audit.plain, quicker for the types a member's values have (it runs for 100,000 rows)."""
    kind = type(value)
    if kind in _AS_LOGGED:
        return value
    if kind is MemberStatus:
        return _STATUS_LOGGED[value]
    if kind is date:
        return value.isoformat()
    return audit.plain(value)


class _Writer:
    """Writes a plan in bulk (Core executemany: multi-row INSERTs, UPDATEs by primary key), with an
    audit event and the consent log for every member added or changed, as officers' edits have.
    New members are written in chunks while the file is still being read (see importplan.plan)."""

    def __init__(self, run: ImportRun, officer: Officer | None):
        self.branch_ids = {b.name.lower(): b.id for b in session.scalars(select(Branch))}
        self.now = utcnow()
        self.note = f"import #{run.id} ({run.filename})"
        self.officer_id, actor = audit.actor(officer)
        self.actor = actor if officer else "cli"
        self.events: list[dict] = []
        self.consents: list[dict] = []

    def _branches(self, result: ImportPlan) -> None:
        made = [Branch(name=name) for name in result.new_branches if name.lower() not in self.branch_ids]
        if made:
            session.add_all(made)
            session.flush()
            self.branch_ids.update((b.name.lower(), b.id) for b in made)

    def _columns(self, values: dict) -> dict:
        out = {k: v for k, v in values.items() if k != "branch"}
        if "branch" in values:
            out["branch_id"] = self.branch_ids[values["branch"].lower()] if values["branch"] else None
        return out

    def _log(self, member_id: int, changes: dict) -> None:
        self.events.append({"at": self.now, "officer_id": self.officer_id, "actor": self.actor,
                            "action": "member.import", "subject_type": "member", "subject_id": member_id,
                            "changes": changes, "note": self.note})
        for stream, name in consent.FIELDS.items():
            if name in changes:
                self.consents.append({"member_id": member_id, "at": self.now, "stream": stream.value,
                                      "granted": bool(changes[name][1]), "source": "import",
                                      "note": self.note[:500]})

    def _flush_logs(self) -> None:  # written as they are made: 100,000 rows of log are not held at once
        bulk.insert_rows(AuditEvent.__table__, self.events)
        self.events.clear()
        bulk.insert_rows(ConsentEvent.__table__, self.consents)
        self.consents.clear()

    def new(self, result: ImportPlan, part: list[RowChange]) -> None:
        """Insert these new members (at most a chunk) and log them."""
        self._branches(result)
        extra = {"created_at": self.now, "updated_at": self.now}
        public_ids = [secrets.token_hex(16) for _ in part]  # each row's new id is found by it
        ids = bulk.insert_with_ids(Member.__table__, [
            self._columns(c.values) | extra | {"to_welcome": _to_welcome(c.values), "public_id": public_id}
            for c, public_id in zip(part, public_ids)], "public_id")
        for change, public_id in zip(part, public_ids):
            member_id = ids[public_id]
            self._log(member_id, {k: [None, _logged(v)] for k, v in change.values.items() if v is not None and v != ""})
            change.member, change.values = HeldMember(member_id, {}), {}
        self._flush_logs()

    def updated(self, result: ImportPlan, task: str | None = None) -> None:
        """Update the changed members by id, a chunk at a time, and log what changed (reporting
        how far it has gone as `task`, when given)."""
        self._branches(result)
        table = Member.__table__
        by_id = table.update().where(table.c.id == bindparam("member_id"))
        done, total = len(result.new), len(result.new) + len(result.updated)  # the new were written as compared
        if task:
            progress.report(task, WRITING, done, total, force=True)
        for start_at in range(0, len(result.updated), CHUNK):
            part = result.updated[start_at:start_at + CHUNK]
            for change in part:
                self._log(change.member.id, change.changes)
            # Only the changed columns: setting a name or email to itself would still rewrite the
            # member's search index entry (SQLite's FTS trigger fires on the columns set).
            for rows in _same_keys({"member_id": c.member.id, "updated_at": self.now}
                                   | self._columns({k: c.values[k] for k in c.changes}) for c in part):
                session.execute(by_id.values({k: bindparam(k) for k in rows[0] if k != "member_id"}), rows)
            self._flush_logs()
            if task:
                progress.report(task, WRITING, done + start_at + len(part), total, force=True)


def _count_members(run: ImportRun) -> None:
    """Keep how many members each branch has in each status now, after this import (one grouped
    query; a few rows): the history the overview's members-over-imports chart draws."""
    rows = session.execute(select(Member.branch_id, Member.status, func.count()).group_by(Member.branch_id,
                                                                                        Member.status)).all()
    session.add_all([MemberCount(import_run_id=run.id, branch_id=branch_id, status=MemberStatus(status).value, count=n)
                     for branch_id, status, n in rows])


CHUNK = 5_000


def _same_keys(rows) -> list[list[dict]]:
    """Rows grouped by their set of keys: one executemany needs the same columns in every row."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def start(filename: str, data: bytes, officer: Officer | None) -> ImportRun:
    """Record an uploaded export, pending the officer's confirmation. Not committed."""
    export = exportfile.read(data, keep_records=False)  # refuse an unreadable file now, with its reason
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
    try:
        writer = _Writer(run, officer)
        task = task_name(run_id)
        result = plan(run.content, run.mapping, run.full_export, task, write_new=writer.new)
        with bulk_work():
            writer.updated(result, task)
        session.expire_all()  # members held in this session were written past it
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
        progress.finish(task_name(run_id), "The import failed and nothing was changed.")
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
