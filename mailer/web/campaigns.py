"""Campaign pages: the list, the composer (segment with a live count, preview, test send,
attachments, schedule or send now) and the campaign page with its live progress and report.
Scheduling, sending and pausing, on the same blueprint, are in mailer.web.campaign_sends.

The rules live in mailer.compose.drafts, mailer.members.segments and mailer.sending.campaigns;
these views only read the form, call them, and show what they say. Every button in the composer
saves what the officer typed before it acts, so what is tested, scheduled or sent is what is on
the screen.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from mailer import audit, scope, words
from mailer.compose import drafts, starters
from mailer.compose.render import TemplateError
from mailer.db import session
from mailer.errors import Invalid
from mailer.inputs import CampaignIn, CampaignPatch, SavedSegmentIn, SegmentNameIn
from mailer.mail import NotSent
from mailer.members import count_cache, segments
from mailer.members import service as members
from mailer.models import Campaign, CampaignStatus, MemberStatus, Role, Segment, Stream
from mailer.pagination import Cursor
from mailer.sending import campaigns as sending
from mailer.web import LONDON, forms

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

# The preview is the email itself: its own styles, pictures from anywhere, never a script, and
# framed only by our own composer (inside a sandbox="" iframe).
PREVIEW_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
                               "frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}
LIVE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)
TEXT_FIELDS = ("name", "subject", "preheader", "from_name", "body", "body_format", "stream")
SEGMENT_PREFIXES = {"": "seg_", "exclude": "ex_"}


# --- helpers --------------------------------------------------------------------------------

def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = scope.get_campaign(current_user, campaign_id)
    if campaign is None:
        abort(404)  # the same answer for "no such campaign" and "another branch's"
    return campaign


def _checked_form() -> None:
    """Refuse a POST without a valid CSRF token (CSRFProtect answers first when it is on)."""
    if not FlaskForm().validate_on_submit():
        abort(400)


SEGMENT_FORM = {"segment": "seg_", "segment.exclude": "ex_"}  # the segment builder's inputs


def _segment_prefixes(with_segment: bool) -> dict | None:
    return SEGMENT_FORM if with_segment and forms.sent("segment_form") else None


def _composer_values(with_segment: bool = True) -> dict:
    """What the composer sent, read by the API's CampaignPatch, for drafts.update. Only fields
    present are included, so a form without them (the confirmation step, a button elsewhere)
    changes nothing; a box left empty is saved empty. Raises InputInvalid."""
    patch = forms.parse(CampaignPatch, _segment_prefixes(with_segment))
    values = {k: ("" if v is None else v) for k, v in patch.model_dump(exclude_unset=True, exclude={"segment"}).items()}
    if patch.segment is not None:
        values["segment"] = patch.segment.model_dump(mode="json", exclude_none=True)
    return values


def _typed(with_segment: bool = True) -> dict:
    """What the composer sent, as typed (to show again after a refusal)."""
    raw = forms.read(CampaignPatch, _segment_prefixes(with_segment))
    return {k: ("" if v is None else v) for k, v in raw.items()}


def _save(campaign: Campaign, values: dict | None = None) -> str | None:
    """Save the composer's fields; the refusal's message, or None when saved."""
    try:  # the composer shows the refusal beside what was typed (not the page-wide handler)
        values = _composer_values() if values is None else values
        if not values:
            return None
        drafts.update(current_user, campaign, values)
    except Invalid as exc:
        session.rollback()
        return str(exc)
    return None


def _branch_names() -> dict[int, str]:
    return {b.id: b.name for b in scope.branches(current_user)}


def _saved_segments() -> list[Segment]:
    return scope.segments(current_user)


def _preview_member_id() -> int | None:
    raw = request.args.get("member") or forms.submitted("member")["member"]  # a link's, or the composer's
    return int(raw) if raw.isdigit() else None


def _local_input(value: datetime | None) -> str:
    """A stored UTC time as the form shows it: UK time, dd/mm/yyyy hh:mm."""
    return words.local_input(value)


def _count_text(numbers: dict) -> str:
    m, r = numbers["members"], numbers["recipients"]
    return (f"{m} member{' matches' if m == 1 else 's match'}; "
            f"{r} address{'' if r == 1 else 'es'} will receive it.")


def _as_of_text(numbers: dict) -> str:
    moment = count_cache.as_of(numbers)
    return f"As counted at {moment.astimezone(LONDON):%H:%M:%S}." if moment else ""


def _composer(campaign: Campaign, error: str | None = None, submitted: dict | None = None, status: int = 200):
    """Render the composer: the saved campaign, or (after a refused save) what was submitted."""
    values = {name: getattr(campaign, name) for name in TEXT_FIELDS}
    values = {k: (v.value if hasattr(v, "value") else v) or "" for k, v in values.items()}
    definition = dict(campaign.segment or {})
    if submitted:
        values.update({k: v for k, v in submitted.items() if k != "segment"})
        definition = submitted.get("segment", definition)
    stream = Stream(values["stream"]) if values["stream"] in Stream._value2member_map_ else campaign.stream
    try:
        numbers = segments.remembered_count(definition, stream, current_user)
        count_text, as_of_text = _count_text(numbers), _as_of_text(numbers)
    except segments.SegmentError as exc:
        count_text, as_of_text = f"The filters cannot be used: {exc}", ""
    preview_member = drafts.preview_member(current_user, _preview_member_id())
    problems = drafts.problems(campaign)
    preview_subject = None
    if not problems:
        try:
            preview_subject = drafts.preview(campaign, preview_member)[0]
        except TemplateError:
            pass
    found = []
    if request.args.get("find", "").strip():
        found = members.search(current_user, members.MemberQuery(q=request.args["find"]), per_page=10,
                                count=False).items
    choices = members.filter_choices(current_user)
    return render_template(
        "web/campaigns/compose.html", campaign=campaign, values=values, seg=definition,
        exclude={k: v for k, v in (definition.get("exclude") or {}).items() if v}, error=error, count_text=count_text, as_of_text=as_of_text,
        problems=problems, form=FlaskForm(), choices=choices,
        tags=members.visible_tags(current_user), roles=list(Role),
        statuses=list(MemberStatus), saved_segments=_saved_segments(), preview_member=preview_member,
        found=found, preview_subject=preview_subject, send_at=_local_input(campaign.scheduled_at),
        attachment_limit=current_app.config["ATTACHMENT_MAX_BYTES"],
        attachment_types=sorted(drafts.ATTACHMENT_TYPES)), status


def _after_save_failure(campaign: Campaign, error: str):
    return _composer(campaign, error=error, submitted=_typed(), status=400)


def _preview_response(body: str, mimetype: str = "text/html") -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers.update(PREVIEW_HEADERS)
    return response


# --- list and create ------------------------------------------------------------------------

@bp.route("/")
def index():
    page = drafts.listing(current_user, Cursor.from_args(request.args), current_app.config["PAGE_SIZE"])
    subjects = {c.id: drafts.sample_subject(c) for c in page.items}
    page.items = [(c, sending.progress(c)) for c in page.items]  # stored counts once a campaign finished
    return render_template("web/campaigns/list.html", page=page, subjects=subjects, starters=starters.all_starters(),
                           form=FlaskForm(), Stream=Stream)


@bp.route("/new", methods=["POST"])
def create():
    _checked_form()
    new = forms.parse(CampaignIn)  # as POST /api/v1/campaigns reads it
    campaign = drafts.create(current_user, new.starter, Stream(new.stream))
    flash(f"{campaign.name}: a new draft. Nothing is sent until you choose Send now or Schedule.", "info")
    return redirect(url_for(".edit", campaign_id=campaign.id))


# --- the composer ---------------------------------------------------------------------------

@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
def edit(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    if campaign.status not in drafts.EDITABLE_STATUSES:
        flash(f"This campaign is {campaign.status.value}: it can no longer be changed.", "info")
        return redirect(url_for(".detail", campaign_id=campaign.id))
    if request.method == "POST":
        _checked_form()
        error = _save(campaign)
        if error:
            return _after_save_failure(campaign, error)
        found = drafts.problems(campaign)
        flash("Saved." + (f" {len(found)} problem{'' if len(found) == 1 else 's'} to fix before sending."
                          if found else ""), "info")
        return redirect(url_for(".edit", campaign_id=campaign.id, member=_preview_member_id() or None))
    return _composer(campaign)


@bp.route("/<int:campaign_id>/count", methods=["POST"])
def count(campaign_id: int):
    """The live recipient count for the filters on screen (nothing is saved). The filters go
    through the same rules as a save (a branch secretary's are their branch's)."""
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    copy, error = _unsaved_copy(campaign, with_segment=True)
    if error:
        return jsonify(error=error, text=f"The filters cannot be used: {error}"), 400
    numbers = segments.remembered_count(copy.segment, copy.stream, current_user)
    return jsonify(numbers | {"text": _count_text(numbers), "as_of_text": _as_of_text(numbers)})


@bp.route("/<int:campaign_id>/members.json")
def find_members(campaign_id: int):
    """Members to preview as: a few matches for what was typed, within the officer's scope."""
    _campaign_or_404(campaign_id)
    q = request.args.get("q", "").strip()
    found = members.search(current_user, members.MemberQuery(q=q), per_page=10, count=False).items if q else []
    return jsonify([{"id": m.id, "label": f"{m.full_name} <{m.email or 'no email'}>"} for m in found])


@bp.route("/<int:campaign_id>/preview", methods=["GET", "POST"])
def preview(campaign_id: int):
    """The email as the chosen member would receive it. GET: the saved campaign; POST: the
    composer's unsaved fields, rendered from a copy that is never saved."""
    campaign = _campaign_or_404(campaign_id)
    member = drafts.preview_member(current_user, _preview_member_id())
    if request.method == "POST":
        _checked_form()
        campaign, error = _unsaved_copy(campaign)
        if error:
            return _preview_error([error])
    try:
        _subject, html, _text = drafts.preview(campaign, member)
    except TemplateError:
        return _preview_error([str(p) for p in drafts.problems(campaign)] or ["The campaign cannot be shown."])
    return _preview_response(html)


def _unsaved_copy(campaign: Campaign, with_segment: bool = False) -> tuple[Campaign, str | None]:
    """A transient copy of `campaign` with the composer's fields applied by the same rules as a save."""
    copy = Campaign(id=campaign.id, web_token=campaign.web_token, status=CampaignStatus.DRAFT,
                    branch_id=campaign.branch_id, segment=dict(campaign.segment or {}),
                    **{name: getattr(campaign, name) for name in TEXT_FIELDS})
    try:
        drafts.update(current_user, copy, _composer_values(with_segment))
    except Invalid as exc:
        return copy, str(exc)
    return copy, None


def _preview_error(problems: list[str]) -> Response:
    return _preview_response(render_template("web/campaigns/preview_error.html", problems=problems))


@bp.route("/<int:campaign_id>/preview.txt")
def preview_text(campaign_id: int):
    """The plain-text alternative, exactly as sent."""
    campaign = _campaign_or_404(campaign_id)
    member = drafts.preview_member(current_user, _preview_member_id())
    try:
        subject, _html, text = drafts.preview(campaign, member)
    except TemplateError:
        problems = "\n".join(f"- {p}" for p in drafts.problems(campaign))
        return _preview_response(f"This campaign cannot be shown yet:\n{problems}\n", "text/plain")
    return _preview_response(f"Subject: {subject}\n\n{text}", "text/plain")


@bp.route("/<int:campaign_id>/test-send", methods=["POST"])
def test_send(campaign_id: int):
    """Save, then send one copy to the officer's own address (never to a member)."""
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    error = _save(campaign)
    if error:
        return _after_save_failure(campaign, error)
    member = drafts.preview_member(current_user, _preview_member_id())
    try:
        address = drafts.test_send(current_user, campaign, member)
        flash(f"Test sent to {address}, as {member.full_name if member else 'the sample member'} would see it.", "info")
    except TemplateError as exc:
        session.rollback()
        flash(f"The test was not sent: {exc}", "error")
    except NotSent as exc:
        session.rollback()
        flash(f"The test could not be sent: the mail server said {exc}", "error")
    return redirect(url_for(".edit", campaign_id=campaign.id, member=member.id if member else None))


@bp.route("/<int:campaign_id>/attachments", methods=["POST"])
def attach(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    error = _save(campaign)
    if error:
        return _after_save_failure(campaign, error)
    upload = request.files.get("attachment")
    if upload is None or not upload.filename:
        flash("Choose a file to attach.", "error")
    else:
        drafts.add_attachment(current_user, campaign, upload.filename, upload.read(), upload.mimetype)
        flash(f"{upload.filename} attached.", "info")
    return redirect(url_for(".edit", campaign_id=campaign.id) + "#attachments")


@bp.route("/<int:campaign_id>/attachments/<int:attachment_id>/remove", methods=["POST"])
def remove_attachment(campaign_id: int, attachment_id: int):
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    error = _save(campaign)
    if error:
        return _after_save_failure(campaign, error)
    attachment = scope.campaign_attachment(campaign, attachment_id)
    if attachment is None:
        abort(404)
    if campaign.status not in drafts.EDITABLE_STATUSES:
        flash("Attachments can only change before sending.", "error")
    else:
        name = attachment.filename
        campaign.attachments.remove(attachment)
        audit.record("campaign.detach", "campaign", campaign.id, note=name, officer=current_user)
        flash(f"{name} removed.", "info")
    return redirect(url_for(".edit", campaign_id=campaign.id) + "#attachments")


@bp.route("/<int:campaign_id>/segments/save", methods=["POST"])
def save_segment(campaign_id: int):
    """Save the campaign, then keep its filters under a name for later campaigns."""
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    error = _save(campaign)
    if error:
        return _after_save_failure(campaign, error)
    name = " ".join(forms.parse(SegmentNameIn).segment_name.split())[:120]
    if not name:
        flash("Give the filters a name to save them.", "error")
    else:
        segments.save(current_user, name, campaign.segment)
        flash(f"Filters saved as “{name}”.", "info")
    return redirect(url_for(".edit", campaign_id=campaign.id) + "#segment")


@bp.route("/<int:campaign_id>/segments/load", methods=["POST"])
def load_segment(campaign_id: int):
    """Save the campaign with a saved segment's filters in place of those on screen."""
    campaign = _campaign_or_404(campaign_id)
    _checked_form()
    chosen = forms.parse(SavedSegmentIn).saved_segment
    segment = next((s for s in _saved_segments() if s.id == chosen), None)
    if segment is None:
        flash("Choose saved filters to use.", "error")
        error = _save(campaign)
    else:
        error = _save(campaign, _composer_values(with_segment=False) | {"segment": segment.definition})
        if not error:
            flash(f"Using the filters “{segment.name}”.", "info")
    if error:
        return _after_save_failure(campaign, error)
    return redirect(url_for(".edit", campaign_id=campaign.id) + "#segment")


# --- the campaign page ----------------------------------------------------------------------

@bp.route("/<int:campaign_id>")
def detail(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    try:
        subject = drafts.preview(campaign, None)[0]  # as the sample member reads it
    except TemplateError:
        subject = None
    report = sending.report(campaign, Cursor.from_args(request.args), current_app.config["PAGE_SIZE"])
    return render_template("web/campaigns/detail.html", campaign=campaign, report=report,
                           subject=subject,
                           described=segments.describe(campaign.segment, _branch_names()),
                           live=campaign.status in LIVE_STATUSES, editable=campaign.status in drafts.EDITABLE_STATUSES,
                           form=FlaskForm())


@bp.route("/<int:campaign_id>/progress.json")
def progress(campaign_id: int):
    campaign = _campaign_or_404(campaign_id)
    return jsonify(sending.progress(campaign).as_dict() | {"live": campaign.status in LIVE_STATUSES})
