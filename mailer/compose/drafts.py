"""Writing a campaign: start blank or from a starter, edit, check, preview, test-send, attach.
A template error is returned with its line for the composer, never raised as a server error."""

from __future__ import annotations

import mimetypes

from flask import current_app

from mailer import audit, scope
from mailer.compose import personal, starters
from mailer.compose.message import CampaignMessages
from mailer.compose.render import TemplateError, compile_campaign, find_line
from mailer.db import session
from mailer.errors import Refusal
from mailer.mail import PAGE_PATIENCE, send_now
from mailer.members import segments
from mailer.models import Attachment, BodyFormat, Campaign, CampaignStatus, Member, Officer, Stream
from mailer.pagination import Cursor, Key, KeysetPage, paginate

EDITABLE_STATUSES = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
# Papers and pictures; never anything a mail client might run.
ATTACHMENT_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain", "text/csv",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    "application/vnd.oasis.opendocument.text", "application/msword",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class DraftError(Refusal):
    """A change the campaign cannot take; the message says why."""


def listing(officer: Officer, cursor: Cursor | None = None, per_page: int = 50) -> KeysetPage:
    """One page of the campaigns `officer` may see, newest first."""
    return paginate(scope.campaigns(officer), [Key(Campaign.id, descending=True)], cursor or Cursor(), per_page,
                    count=False)


def create(officer: Officer | None, starter_slug: str | None = None, stream: Stream = Stream.BULLETINS) -> Campaign:
    """A new draft, blank or from a starter in campaigns/ (officer None: the CLP's, made by a
    routine). Not committed."""
    cfg = current_app.config
    campaign = Campaign(stream=stream, name="New campaign", from_name=cfg["SENDER_NAME"], created_by=officer,
                        branch_id=scope.own_branch_id(officer) if officer is not None else None,
                        segment={"statuses": list(segments.DEFAULT_STATUSES)}, body="Dear {{ member.first_name }},\n\n")
    if starter_slug:
        starter = starters.get(starter_slug)
        if starter is None:
            raise DraftError(f"There is no starter called {starter_slug!r}.", field="starter")
        campaign.name, campaign.stream, campaign.subject = starter.name, starter.stream, starter.subject
        campaign.preheader, campaign.body_format, campaign.body = starter.preheader, starter.body_format, starter.body
        campaign.starter = starter.slug
    session.add(campaign)
    session.flush()
    audit.record("campaign.create", "campaign", campaign.id, note=campaign.name, officer=officer)
    return campaign


def update(officer: Officer, campaign: Campaign, values: dict) -> None:
    """Save the composer's fields. Template problems do not stop a save (drafts may be unfinished);
    `problems` reports them. Not committed."""
    if campaign.status not in EDITABLE_STATUSES:
        raise DraftError(f"A {campaign.status.value} campaign can no longer be changed.")
    for name, limit in (("name", 200), ("subject", 250), ("preheader", 250), ("from_name", 120)):
        if name in values:
            value = " ".join(str(values[name]).split())
            if len(value) > limit:
                raise DraftError(f"The {name.replace('_', ' ')} is longer than {limit} characters.")
            setattr(campaign, name, value)
    if "body" in values:
        campaign.body = str(values["body"]).replace("\r\n", "\n")
    if "body_format" in values:
        campaign.body_format = _choice(BodyFormat, values["body_format"], "body format")
    if "stream" in values:
        campaign.stream = _choice(Stream, values["stream"], "stream")
    if "segment" in values:
        try:
            definition = segments.clean(values["segment"])
        except segments.SegmentError as exc:
            raise DraftError(str(exc)) from None
        if (campaign.segment or {}).get("to_welcome"):
            definition["to_welcome"] = True  # a welcome stays one: the composer has no field for it (mailer/welcome.py)
        campaign.segment = scope.segment_definition(officer, definition)  # a branch secretary: their branch


def _choice(kind, value, name: str):
    """`value` as one of the enum `kind`, or refused with the choices there are."""
    try:
        return kind(value)
    except ValueError:
        raise DraftError(f"There is no {name} called {value!r}.", field=name.replace(" ", "_")) from None


def problems(campaign: Campaign) -> list[TemplateError]:
    """Everything that would stop the campaign rendering, each with its line."""
    found = []
    if not (campaign.subject or "").strip():
        found.append(TemplateError("a subject is needed", where="subject"))
    if not (campaign.body or "").strip():
        found.append(TemplateError("the body is empty"))
    try:
        compiled = compile_campaign(campaign)
        compiled.render(personal.context(campaign, None))
    except TemplateError as exc:
        if exc.line is None and exc.where == "body":
            exc.line = find_line(campaign.body or "", exc.message)
        found.append(exc)
    return found


def preview_member(officer: Officer, member_id: int | None) -> Member | None:
    """The member to preview as (None means the sample member), within the officer's scope."""
    return scope.get_member(officer, member_id) if member_id else None


def preview(campaign: Campaign, member: Member | None) -> tuple[str, str, str]:
    """(subject, html, text) exactly as `member` (or the sample member) would receive it."""
    return compile_campaign(campaign).render(personal.context(campaign, member))


def sample_subject(campaign: Campaign) -> str:
    """The subject as the sample member reads it, without compiling the body (cheap enough for a
    list of campaigns: no query, no MJML)."""
    from flask import current_app

    from mailer.compose.personal import SAMPLE, PlaceholderMeeting
    from mailer.compose.render import render_subject

    return render_subject(campaign, {"member": SAMPLE, "org_name": current_app.config["ORG_NAME"],
                                     "meeting": PlaceholderMeeting})


def test_send(officer: Officer, campaign: Campaign, member: Member | None = None) -> str:
    """Send the campaign, as `member` would see it, to the officer's own address only (through the
    transport, within the relay's limits); mail.NotSent when it did not go."""
    envelope = CampaignMessages(campaign).build(member, None, to_address=officer.email)
    send_now(envelope.sender, officer.email, envelope.data, patience=PAGE_PATIENCE)
    audit.record("campaign.test_send", "campaign", campaign.id, note=officer.email, officer=officer)
    return officer.email


def add_attachment(officer: Officer, campaign: Campaign, filename: str, data: bytes,
                   content_type: str | None = None) -> Attachment:
    """Attach a paper (PDF agenda and the like) within the size limit. Not committed."""
    if campaign.status not in EDITABLE_STATUSES:
        raise DraftError("Attachments can only change before sending.")
    content_type = content_type if content_type in ATTACHMENT_TYPES else mimetypes.guess_type(filename)[0]
    if content_type not in ATTACHMENT_TYPES:
        raise DraftError(f"{filename}: only PDFs, documents, spreadsheets and images can be attached.")
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    total = sum(a.size for a in campaign.attachments) + len(data)
    if total > limit:
        raise DraftError(f"Attachments may total {limit // (1024 * 1024)} MB; this would make "
                         f"{total / (1024 * 1024):.1f} MB. Link to large papers instead.")
    if not data:
        raise DraftError(f"{filename} is empty.")
    attachment = Attachment(campaign=campaign, filename=filename[-200:], content_type=content_type,
                            size=len(data), data=data)
    session.add(attachment)
    audit.record("campaign.attach", "campaign", campaign.id, note=f"{filename} ({len(data)} bytes)", officer=officer)
    return attachment
