"""/api/v1/imports: the membership export uploaded, its dry-run diff read, then applied or
dropped. CLP-wide officers only: an export holds every branch's members."""

from __future__ import annotations

from flask import abort

from mailer import scope, welcome
from mailer.api import bp, officer, problem, responses, spec
from mailer.api.schemas import Done, ImportOut
from mailer.inputs import ImportIn
from mailer.db import session
from mailer.members import exportfile, importer
from mailer.models import ImportRun, ImportStatus


def _clp_only() -> None:
    if not scope.sees_all(officer()):
        abort(problem(403, "Only CLP-wide officers import the membership export (it holds every branch)."))


def _out(run: ImportRun, summary: dict | None) -> ImportOut:
    return ImportOut(id=run.id, filename=run.filename, status=run.status.value, mapping=run.mapping or {},
                     summary=summary, error=run.error)


def _run(run_id: int) -> ImportRun:
    _clp_only()
    run = scope.get_import(officer(), run_id)
    if run is None:
        abort(problem(404, "There is no such import."))
    return run


def _planned(run: ImportRun) -> dict | None:
    if run.status is ImportStatus.PENDING and run.content is not None:
        return importer.plan(run.content, run.mapping, run.full_export).summary()
    return run.summary


@bp.post("/imports")
@spec.validate(json=ImportIn, resp=responses(ImportOut, 403, status=201), tags=["imports"])
def upload_import(json: ImportIn):
    """Upload an export: nothing changes yet; the answer is what applying it would do (the dry run)."""
    _clp_only()
    try:
        run = importer.start(json.filename, json.csv.encode(), officer())
        run.full_export = json.full_export
        session.flush()
        summary = _planned(run)
    except exportfile.ExportFileError as exc:
        session.rollback()
        return problem(422, str(exc), errors=[{"field": "csv", "message": str(exc)}])
    return _out(run, summary), 201


@bp.get("/imports/<int(max=2147483647):run_id>")
@spec.validate(resp=responses(ImportOut, 403, 404), tags=["imports"])
def read_import(run_id: int):
    """An import: pending with its dry-run diff, or what it changed."""
    run = _run(run_id)
    return _out(run, _planned(run))


@bp.post("/imports/<int(max=2147483647):run_id>/apply")
@spec.validate(resp=responses(ImportOut, 403, 404, 409), tags=["imports"])
def apply_import(run_id: int):
    """Apply a pending import, all in one transaction (it fails whole, with its reason, or not at all)."""
    run = _run(run_id)
    if run.status is not ImportStatus.PENDING:
        return problem(409, f"Import #{run.id} was already {run.status.value}.")
    try:
        result = importer.apply(run, officer())
        welcome.after_import(officer())
    except Exception as exc:  # noqa: BLE001 - the import records its own failure; say why
        return problem(409, f"The import failed and nothing was changed: {exc}")
    return _out(scope.get_import(officer(), run_id), result.summary())


@bp.post("/imports/<int(max=2147483647):run_id>/cancel")
@spec.validate(resp=responses(Done, 403, 404, 409), tags=["imports"])
def cancel_import(run_id: int):
    """Drop a pending import: nothing changes, and the uploaded file is forgotten."""
    run = _run(run_id)
    if run.status is not ImportStatus.PENDING:
        return problem(409, f"Import #{run.id} was already {run.status.value}.")
    importer.cancel(run, officer())
    return Done(detail=f"Import #{run.id} was dropped.")
