"""The API's output schemas: what each operation gives, documented as JSON Schema 2020-12 (the
dialect of OpenAPI 3.1). What each operation takes is in mailer.inputs, shared with the pages."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from mailer.inputs import MeetingKindName, Status, StreamName, ThreadStatusName


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


class SegmentCount(BaseModel):
    members: int = Field(description="Members matching the segment.")
    recipients: int = Field(description="Distinct addresses that would receive it (consent and suppressions applied).")
    as_of: datetime | None = Field(None, description="When it was counted (UTC): a count is remembered until the "
                                                   "members change, half an hour at most.")


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


class ImportOut(BaseModel):
    id: int
    filename: str
    status: Literal["pending", "applied", "failed", "cancelled"]
    mapping: dict[str, str] = Field(description="Column heading -> member field, as Mailer guessed or was told.")
    summary: dict | None = Field(description="What it would change (pending) or changed (applied).")
    error: str | None


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


class RegisterRowOut(BaseModel):
    member_id: int
    name: str
    response: Literal["none", "attending", "apologies", "not_attending"]
    present: bool


class RegisterOut(BaseModel):
    entitled: int = Field(description="Members entitled to attend (every page's rows together).")
    expected: int
    apologies: int
    present: int
    quorum: int
    quorate: bool | None
    rows: list[RegisterRowOut] = Field(description="One page of the register, by surname, first name and id "
                                                   "(an AGM's is every member): follow Link: rel=next for the rest.")


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

