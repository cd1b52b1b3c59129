"""Campaigns (bulletins and notices) and one Delivery row per recipient: the checkpoint that
makes a send resumable and auditable."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, or_, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.members import Branch, Member, _enum
from mailer.models.officers import Officer


class Stream(enum.StrEnum):
    NOTICES = "notices"      # formal notices and minutes: a service message, sent unless objected to
    BULLETINS = "bulletins"  # campaigning news: marketing in law, sent only with consent


class BodyFormat(enum.StrEnum):
    MARKDOWN = "markdown"
    MJML = "mjml"


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    SENT = "sent"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"          # snapshotted, not yet tried
    SENDING = "sending"        # claimed by a batch job
    DEFERRED = "deferred"      # temporary failure: tried again after a back-off
    SENT = "sent"
    FAILED = "failed"          # permanent failure (5xx), or retries used up
    SUPPRESSED = "suppressed"  # unsubscribed, objected or bounced after the snapshot
    CANCELLED = "cancelled"    # the campaign was cancelled first


def _token() -> str:
    return secrets.token_urlsafe(12)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    stream: Mapped[Stream] = mapped_column(_enum(Stream, "stream"))
    name: Mapped[str] = mapped_column(String(200))               # for officers; members see the subject
    subject: Mapped[str] = mapped_column(String(250), default="")
    preheader: Mapped[str] = mapped_column(String(250), default="")
    from_name: Mapped[str] = mapped_column(String(120), default="")
    body_format: Mapped[BodyFormat] = mapped_column(_enum(BodyFormat, "body_format"), default=BodyFormat.MARKDOWN)
    body: Mapped[str] = mapped_column(Text, default="")
    # Text the body shows but must never run: {name: Markdown}, reached from the body as {{ name }}
    # (the minutes, with members' and correspondents' words). Data, never template source.
    body_data: Mapped[dict | None] = mapped_column(JSON)
    starter: Mapped[str | None] = mapped_column(String(60))
    segment: Mapped[dict] = mapped_column(JSON, default=dict)    # the filters, as saved when sent
    status: Mapped[CampaignStatus] = mapped_column(_enum(CampaignStatus, "campaign_status"),
                                                   default=CampaignStatus.DRAFT, index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"))  # a branch's own campaign
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    web_token: Mapped[str] = mapped_column(String(32), default=_token, unique=True)  # the web version's address
    # Why a send is not moving just now (the relay refusing connections, ...), for its page; cleared
    # as soon as a message goes out again.
    stalled_reason: Mapped[str | None] = mapped_column(String(300))
    # {delivery status: count}, stored when the campaign finishes: lists never count a million rows.
    counts: Mapped[dict | None] = mapped_column(JSON)

    branch: Mapped[Branch | None] = relationship()
    created_by: Mapped[Officer | None] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(back_populates="campaign", cascade="all, delete-orphan",
                                                         order_by="Attachment.id")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)

    campaign: Mapped[Campaign] = relationship(back_populates="attachments")


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "email"),  # one message per address, even where members share one
        Index("ix_deliveries_campaign_status", "campaign_id", "status"),
        Index("ix_deliveries_campaign_batch", "campaign_id", "batch_no"),
        # The rate over the last minute, and finding a bounce's or reply's delivery by Message-ID:
        # partial, only rows that have been sent. A send's start inserts every row with neither,
        # so it writes no entry to these two indexes (see 0016_send_start).
        Index("ix_deliveries_campaign_sent_at", "campaign_id", "sent_at",
              postgresql_where=text("sent_at IS NOT NULL"), sqlite_where=text("sent_at IS NOT NULL")),
        Index("ix_deliveries_message_id", "message_id",
              postgresql_where=text("message_id IS NOT NULL"), sqlite_where=text("message_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys on these two (0016_send_start): a send's start inserts a row per recipient
    # in one statement, and PostgreSQL checks a foreign key row by row (each check a lookup and a
    # lock on the row referred to: together half of the start's time at 100,000 rows). The rows
    # are right by construction: the start takes the member ids from the members table in the
    # same statement, for the campaign whose row it holds locked; and Mailer never deletes a
    # campaign (it is cancelled) or a member (erasure blanks the row in place, and the member's
    # delivery addresses with it: members.service.erase), so nothing could cascade.
    campaign_id: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(Integer, index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"),
                                                   default=DeliveryStatus.QUEUED)
    batch_no: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(250))  # indexed where set (above)
    error: Mapped[str | None] = mapped_column(String(1000))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The run of a batch that holds this row while SENDING (its fencing token: every write of an
    # outcome is conditional on it), and until when: the run renews the lease while it lives, and
    # only a row whose lease has run out may be taken back by another run.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The relay's 250, recorded by the run at once, in columns no index covers (a cheap write per
    # message); folded into status, sent_at and message_id once per chunk, or by whoever takes
    # the row back from a run that died (0017_accepted_marks; sending.campaigns.fold_accepted).
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_message_id: Mapped[str | None] = mapped_column(String(250))

    campaign: Mapped[Campaign] = relationship(primaryjoin="foreign(Delivery.campaign_id) == Campaign.id")
    member: Mapped[Member | None] = relationship(primaryjoin="foreign(Delivery.member_id) == Member.id")

    @classmethod
    def lease_ran_out(cls, now: datetime):
        """Rows whose run's lease has run out, or that never had one (their run died): they may
        be taken back."""
        return or_(cls.lease_until.is_(None), cls.lease_until < now)
