"""The API's schemas: what each operation takes and gives, validated by pydantic, documented as
JSON Schema 2020-12 (the dialect of OpenAPI 3.1)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mailer.compose.starters import all_starters
from mailer.pagination import MAX_CURSOR

MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL; a larger one names nothing
Text = Annotated[str, StringConstraints(max_length=250)]
Status = Literal["new", "active", "arrears", "lapsed", "resigned"]
StreamName = Literal["notices", "bulletins"]
StarterName = Literal[tuple(s.slug for s in all_starters())]  # the folders of campaigns/


class Strict(BaseModel):
    """Input: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error, as RFC 9457 describes it; `errors` names each invalid field."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


class FieldProblem(BaseModel):
    field: str | None
    message: str


class PageQuery(Strict):
    limit: int = Field(50, ge=1, le=200, description="Items per page.")
    after: str | None = Field(None, min_length=1, max_length=MAX_CURSOR, pattern=r"^[A-Za-z0-9_-]+$",
                              description="The cursor from the previous page's Link: rel=next (opaque).")


# --- members --------------------------------------------------------------------------------

class MemberQuery(PageQuery):
    q: Annotated[str, StringConstraints(max_length=200)] = Field("", description="Name, email or membership number.")
    status: Status | None = None
    branch_id: int | None = Field(None, ge=1, le=MAX_ID)


class MemberOut(BaseModel):
    id: int
    membership_number: str | None
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    postcode: str | None
    ward: str | None
    polling_district: str | None
    branch: str | None
    status: Status
    joined_on: date | None
    notices_consent: bool
    bulletins_consent: bool
    email_health: Literal["ok", "soft_bouncing", "on_hold"]
    tags: list[str]


class MemberList(BaseModel):
    items: list[MemberOut]


class MemberPatch(Strict):
    """The fields to change; those left out stay as they are. Values are read as the membership
    export's are (dates as YYYY-MM-DD or DD/MM/YYYY; consent as yes/no)."""

    membership_number: Annotated[str, StringConstraints(max_length=40)] | None = None
    first_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    postcode: Annotated[str, StringConstraints(max_length=12)] | None = None
    ward: Annotated[str, StringConstraints(max_length=120)] | None = None
    polling_district: Annotated[str, StringConstraints(max_length=40)] | None = None
    branch: Annotated[str, StringConstraints(max_length=120)] | None = None
    status: Status | None = None
    joined_on: date | None = None
    notices_consent: bool | None = None
    bulletins_consent: bool | None = None
    tags: list[Annotated[str, StringConstraints(max_length=60)]] | None = Field(None, max_length=50)


# --- segments -------------------------------------------------------------------------------

class Segment(Strict):
    """Who a campaign goes to; every filter left out matches everyone."""

    statuses: list[Status] | None = Field(None, max_length=5)
    branches: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=100)
    wards: list[Annotated[str, StringConstraints(max_length=120)]] | None = Field(None, max_length=200)
    polling_districts: list[Annotated[str, StringConstraints(max_length=40)]] | None = Field(None, max_length=200)
    tags: list[Annotated[str, StringConstraints(max_length=60)]] | None = Field(None, max_length=50)
    officer_roles: list[Literal["clp_secretary", "clp_officer", "branch_secretary", "chair"]] | None = None
    joined_after: date | None = None
    joined_before: date | None = None


class SegmentCountIn(Strict):
    segment: Segment = Field(default_factory=Segment)
    stream: StreamName = "bulletins"


class SegmentCount(BaseModel):
    members: int = Field(description="Members matching the segment.")
    recipients: int = Field(description="Distinct addresses that would receive it (consent and suppressions applied).")
    as_of: datetime | None = Field(None, description="When it was counted (UTC): a count is remembered until the "
                                                   "members change, half an hour at most.")


# --- campaigns ------------------------------------------------------------------------------

class CampaignIn(Strict):
    starter: StarterName | None = Field(None, description="A starter from campaigns/.")
    stream: StreamName = "bulletins"
    name: Text | None = None
    subject: Text | None = None
    preheader: Text | None = None
    body: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    body_format: Literal["markdown", "mjml"] | None = None
    segment: Segment | None = None


class CampaignPatch(Strict):
    name: Text | None = None
    subject: Text | None = None
    preheader: Text | None = None
    from_name: Annotated[str, StringConstraints(max_length=120)] | None = None
    body: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    body_format: Literal["markdown", "mjml"] | None = None
    stream: StreamName | None = None
    segment: Segment | None = None


class CampaignOut(BaseModel):
    id: int
    name: str
    subject: str
    preheader: str
    stream: StreamName
    status: Literal["draft", "scheduled", "sending", "paused", "cancelled", "sent"]
    body_format: Literal["markdown", "mjml"]
    body: str
    segment: dict
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class CampaignSummary(BaseModel):
    id: int
    name: str
    subject: str
    stream: StreamName
    status: Literal["draft", "scheduled", "sending", "paused", "cancelled", "sent"]
    created_at: datetime


class CampaignList(BaseModel):
    items: list[CampaignSummary]


class ScheduleIn(Strict):
    at: datetime = Field(description="When to send, with its time zone (e.g. 2026-12-03T18:00:00+00:00).")


class Preview(BaseModel):
    subject: str
    html: str
    text: str


class Progress(BaseModel):
    status: str
    total: int
    sent: int
    queued: int
    failed: int
    suppressed: int
    cancelled: int
    percent: int
    rate_per_min: float
    seconds_left: int | None
    why_waiting: str | None = Field(None, description="Why a send with work left is not moving just now.")


class Done(BaseModel):
    detail: str


Problem.model_rebuild()


# --- correspondence ---------------------------------------------------------------------------

ThreadStatusName = Literal["needs_action", "actioned"]


class ThreadQuery(PageQuery):
    status: ThreadStatusName | None = None
    q: Annotated[str, StringConstraints(max_length=200)] = Field("", description="Words in the subject, sender or text.")
    assigned_to_me: bool = False


class ThreadSummary(BaseModel):
    id: int
    subject: str
    correspondent: str
    status: ThreadStatusName
    member_id: int | None
    campaign_id: int | None
    assigned_to: str | None
    last_activity_at: datetime


class ThreadList(BaseModel):
    items: list[ThreadSummary]


class ThreadEntry(BaseModel):
    kind: Literal["message", "reply", "note"]
    id: int
    at: datetime
    who: str
    subject: str | None
    text: str = Field(description="For a message, the sender's own words (quotes and signature trimmed).")
    message_kind: str | None = Field(None, description="reply, auto_reply, bounce, complaint...: messages only.")


class ThreadOut(ThreadSummary):
    entries: list[ThreadEntry]


class ReplyIn(Strict):
    body: Annotated[str, StringConstraints(min_length=1, max_length=50_000)]
    with_quote: bool = False
    in_reply_to: int | None = Field(None, ge=1, le=MAX_ID, description="The message answered (default: the newest).")


class StatusIn(Strict):
    status: ThreadStatusName


class AssignIn(Strict):
    officer_id: int | None = Field(None, ge=1, le=MAX_ID, description="None: give it to nobody.")


# --- imports ----------------------------------------------------------------------------------

class ImportIn(Strict):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    csv: Annotated[str, StringConstraints(min_length=1, max_length=20_000_000)] = Field(
        description="The export as exported from the membership system (CSV text).")
    full_export: bool = Field(False, description="The file lists every member: report those missing.")


class ImportOut(BaseModel):
    id: int
    filename: str
    status: Literal["pending", "applied", "failed", "cancelled"]
    mapping: dict[str, str] = Field(description="Column heading -> member field, as Mailer guessed or was told.")
    summary: dict | None = Field(description="What it would change (pending) or changed (applied).")
    error: str | None


# --- meetings and minutes ---------------------------------------------------------------------

MeetingKindName = Literal["general", "agm", "special", "executive", "branch"]


class MeetingIn(Strict):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    kind: MeetingKindName
    starts_at: datetime = Field(description="With its time zone.")
    ends_at: datetime | None = None
    branch_id: int | None = Field(None, ge=1, le=MAX_ID, description="None: a CLP meeting.")
    venue_name: Annotated[str, StringConstraints(max_length=200)] = ""
    venue_address: Annotated[str, StringConstraints(max_length=500)] = ""
    online_url: Annotated[str, StringConstraints(max_length=500)] = ""
    dial_in: Annotated[str, StringConstraints(max_length=500)] = ""
    accessibility: Annotated[str, StringConstraints(max_length=5000)] = ""
    quorum: int | None = Field(None, ge=0, le=100_000)


class AgendaItemIn(Strict):
    id: int | None = Field(None, ge=1, le=MAX_ID, description="An existing item's id, to keep its papers.")
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    notes: Annotated[str, StringConstraints(max_length=5000)] = ""


class AgendaIn(Strict):
    items: list[AgendaItemIn] = Field(max_length=100)


class AgendaItemOut(BaseModel):
    id: int
    position: int
    title: str
    notes: str


class MeetingOut(BaseModel):
    id: int
    title: str
    kind: MeetingKindName
    status: Literal["planned", "noticed", "held", "cancelled"]
    branch_id: int | None
    starts_at: datetime
    ends_at: datetime | None
    venue_name: str
    venue_address: str
    online_url: str
    agenda: list[AgendaItemOut]
    warnings: list[str] = []


class MeetingSummary(BaseModel):
    id: int
    title: str
    kind: MeetingKindName
    status: Literal["planned", "noticed", "held", "cancelled"]
    starts_at: datetime


class MeetingList(BaseModel):
    items: list[MeetingSummary]


class NoticeIn(Strict):
    override: Annotated[str, StringConstraints(max_length=500)] = Field(
        "", description="Why a notice shorter than the rules' period is allowed (audited); empty: keep to the rules.")


class RegisterRowOut(BaseModel):
    member_id: int
    name: str
    response: Literal["none", "attending", "apologies", "not_attending"]
    present: bool


class RegisterQuery(PageQuery):
    limit: int = Field(100, ge=1, le=500, description="Members per page.")


class RegisterOut(BaseModel):
    entitled: int = Field(description="Members entitled to attend (every page's rows together).")
    expected: int
    apologies: int
    present: int
    quorum: int
    quorate: bool | None
    rows: list[RegisterRowOut] = Field(description="One page of the register, by surname, first name and id "
                                                   "(an AGM's is every member): follow Link: rel=next for the rest.")


class PresentIn(Strict):
    present: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(max_length=100_000,
                                                                   description="Every member present (the whole list).")


class MinuteItemOut(BaseModel):
    title: str
    text: str


class MinutesOut(BaseModel):
    meeting_id: int
    status: Literal["draft", "approved", "circulated", "adopted"]
    present: str
    items: list[MinuteItemOut]
    approved_at: datetime | None
    circulated_at: datetime | None


class Failure(BaseModel):
    email: str | None
    error: str | None
    attempts: int


class Report(BaseModel):
    progress: Progress
    unsubscribed: int
    failures: list[Failure] = Field(description="The first 500 failures, by address.")
