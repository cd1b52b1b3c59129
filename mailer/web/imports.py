"""Importing the membership export in the browser: upload, confirm the columns, read the diff, apply."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer import progress, scope, welcome
from mailer.members import exportfile, importer
from mailer.inputs import ColumnIn, ImportUploadIn
from mailer.models import ImportRun, ImportStatus
from mailer.pagination import Cursor
from mailer.web import forms

bp = Blueprint("imports", __name__, url_prefix="/imports")


@bp.before_request
def _clp_officers_only():
    # An export holds every branch's members, so only CLP-wide officers may import it.
    if not scope.sees_all(current_user):
        abort(403)


def _run_or_404(run_id: int) -> ImportRun:
    run = scope.get_import(current_user, run_id)
    if run is None:
        abort(404)
    return run


@bp.route("/")
def index():
    page = importer.runs(current_user, Cursor.from_args(request.args), current_app.config["PAGE_SIZE"])
    return render_template("web/imports/list.html", runs=page.items, page=page)


@bp.route("/new", methods=["GET", "POST"])
def upload():
    form = FlaskForm()
    if form.validate_on_submit():
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("Choose the CSV file exported from the membership system.", "error")
        else:
            run = importer.start(upload.filename, upload.read(), current_user)
            run.full_export = forms.parse(ImportUploadIn).full_export
            return redirect(url_for(".mapping", run_id=run.id))
    return render_template("web/imports/upload.html", form=form)


@bp.route("/<int:run_id>/mapping", methods=["GET", "POST"])
def mapping(run_id: int):
    run = _run_or_404(run_id)
    if run.status is not ImportStatus.PENDING:
        return redirect(url_for(".detail", run_id=run.id))
    export = exportfile.read(run.content)
    form = FlaskForm()
    if form.validate_on_submit():
        chosen = {h: forms.parse(ColumnIn, names={"field": f"col-{i}"}).field for i, h in enumerate(export.headers)}
        problems = exportfile.check_mapping(chosen)
        run.mapping = chosen
        if not problems:
            return redirect(url_for(".preview", run_id=run.id))
        status = 400
    else:
        # Say at once what the suggested mapping lacks (no column recognised, say), not only after a submit.
        problems, status = exportfile.check_mapping(run.mapping), 200
    return render_template("web/imports/mapping.html", run=run, export=export, fields=exportfile.FIELDS,
                           form=form, problems=problems), status


@bp.route("/<int:run_id>/preview")
def preview(run_id: int):
    run = _run_or_404(run_id)
    if run.status is not ImportStatus.PENDING:
        return redirect(url_for(".detail", run_id=run.id))
    task = importer.task_name(run.id)
    plan = importer.plan(run.content, run.mapping, run.full_export, task)
    progress.finish(task, "Compared: showing the changes.")
    return render_template("web/imports/preview.html", run=run, plan=plan, form=FlaskForm(),
                           fields=exportfile.FIELDS)


@bp.route("/<int:run_id>/apply", methods=["POST"])
def apply(run_id: int):
    run = _run_or_404(run_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        plan = importer.apply(run, current_user._get_current_object())
        welcome.after_import(current_user._get_current_object())
        flash(f"Imported: {len(plan.new)} new, {len(plan.updated)} updated, {len(plan.errors)} rows with errors.",
              "info")
    except exportfile.ExportFileError:
        raise  # a refusal, with its reason: the pages' one handler shows it
    except Exception:  # the import recorded its own failure (importer.apply); shown below
        flash("The import failed and nothing was changed. The reason is shown below.", "error")
    return redirect(url_for(".detail", run_id=run_id))


@bp.route("/<int:run_id>/progress.json")
def progress_json(run_id: int):
    """How far the comparison or the writing of this import has gone, for its page (mailer.progress)."""
    _run_or_404(run_id)
    found = progress.read(importer.task_name(run_id))
    return jsonify(found.as_dict() if found else {"live": False, "percent": 0, "text": ""})


@bp.route("/<int:run_id>/cancel", methods=["POST"])
def cancel(run_id: int):
    run = _run_or_404(run_id)
    if FlaskForm().validate_on_submit():
        if run.status is not ImportStatus.PENDING:  # never claim to cancel what was already applied
            flash(f"Import #{run.id} was already {run.status.value}: there is nothing to cancel.", "error")
            return redirect(url_for(".detail", run_id=run.id))
        importer.cancel(run, current_user)
        flash("Import cancelled: nothing was changed.", "info")
    return redirect(url_for(".index"))


@bp.route("/<int:run_id>")
def detail(run_id: int):
    run = _run_or_404(run_id)
    if run.status is ImportStatus.PENDING:
        return redirect(url_for(".preview", run_id=run.id))
    return render_template("web/imports/detail.html", run=run)


@bp.route("/<int:run_id>/rejected.csv")
def rejected(run_id: int):
    """The rows the import skipped, to fix in a spreadsheet and import again."""
    run = _run_or_404(run_id)
    try:
        data = importer.rejected_csv(run)
    except exportfile.ExportFileError as exc:
        flash(str(exc), "error")
        return redirect(url_for(".detail", run_id=run.id))
    return Response(data, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="import-{run.id}-rejected-rows.csv"'})
