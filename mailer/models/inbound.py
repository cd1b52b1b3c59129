"""Mail that comes in: every raw message kept whole, what Mailer made of it, and the threads of
correspondence officers work through."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.campaigns import Campaign, Delivery
from mailer.models.members import Branch, Member, _enum
from mailer.models.officers import Officer


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"    # stored raw; processing is queued
    PROCESSED = "processed"
    FAILED = "failed"        # processing raised: the error is kept, and it can be retried


class InboundKind(enum.StrEnum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    LOOP = "loop"
    OTHER = "other"


class ThreadStatus(enum.StrEnum):
    NEEDS_ACTION = "needs_action"
    ACTIONED = "actioned"


class Thread(Base):
    """A conversation: a member's replies to one campaign, or a letter and what followed it."""

    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_status_activity", "status", "last_activity_at"),
                      Index("ix_threads_activity", "last_activity_at", "id"))  # every thread, newest first

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(300), default="")
    normalised_subject: Mapped[str] = mapped_column(String(300), default="", index=True)
    correspondent: Mapped[str] = mapped_column(String(254), default="", index=True)  # the outside address
    status: Mapped[ThreadStatus] = mapped_column(_enum(ThreadStatus, "thread_status"), default=ThreadStatus.NEEDS_ACTION)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"), index=True)  # for branch scoping
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))

    member: Mapped[Member | None] = relationship()
    branch: Mapped[Branch | None] = relationship()
    campaign: Mapped[Campaign | None] = relationship()
    assigned_to: Mapped[Officer | None] = relationship()


class InboundMessage(Base):
    """One message as received (raw, whole) and as understood (parsed, classified, threaded)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("imap_mailbox", "imap_uidvalidity", "imap_uid"),
                      Index("ix_inbound_messages_thread_order", "thread_id", "id"),  # a thread, page by page
                      # mail by week (dashboard), from the index alone; reports to confirm, newest first
                      Index("ix_inbound_messages_received_kind", "received_at", "kind", "thread_id", "member_id"),
                      Index("ix_inbound_messages_match_received", "match_method", "received_at", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    transport: Mapped[str] = mapped_column(String(20))  # imap, smtp, webhook, mailgun, postmark, sendgrid, file
    dedupe_key: Mapped[str] = mapped_column(String(320), unique=True)  # "mid:<Message-ID>" or "sha256:<hash>"
    message_id: Mapped[str | None] = mapped_column(String(300), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded when read: never in lists
    size: Mapped[int] = mapped_column(Integer)
    oversized: Mapped[bool] = mapped_column(Boolean, default=False)
    imap_mailbox: Mapped[str | None] = mapped_column(String(200))
    imap_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    imap_uid: Mapped[int | None] = mapped_column(BigInteger)

    status: Mapped[InboundStatus] = mapped_column(_enum(InboundStatus, "inbound_status"),
                                                  default=InboundStatus.RECEIVED, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While a job processes the message: until when it holds it. A job killed mid-way leaves the
    # message RECEIVED; once this has passed, reconcile queues it again.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    kind: Mapped[InboundKind | None] = mapped_column(_enum(InboundKind, "inbound_kind"), index=True)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    defects: Mapped[list] = mapped_column(JSON, default=list)
    from_address: Mapped[str | None] = mapped_column(String(254), index=True)
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to_addresses: Mapped[list] = mapped_column(JSON, default=list)
    cc_addresses: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(500), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    in_reply_to: Mapped[str | None] = mapped_column(String(300), index=True)
    references: Mapped[list] = mapped_column(JSON, default=list)
    visible_text: Mapped[str] = mapped_column(Text, default="")
    quoted_text: Mapped[str] = mapped_column(Text, default="")
    full_text: Mapped[str] = mapped_column(Text, default="")
    html_safe: Mapped[str | None] = mapped_column(Text)   # sanitised: the only HTML a browser ever sees
    report: Mapped[dict | None] = mapped_column(JSON)     # bounce or complaint details

    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id", ondelete="SET NULL"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    match_method: Mapped[str] = mapped_column(String(20), default="")  # token, in-reply-to, references, guess, none
    match_note: Mapped[str] = mapped_column(String(500), default="")
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # e.g. a token used by someone else (a forward)

    thread: Mapped[Thread | None] = relationship(foreign_keys=[thread_id])
    member: Mapped[Member | None] = relationship()
    delivery: Mapped[Delivery | None] = relationship()
    campaign: Mapped[Campaign | None] = relationship()
    attachments: Mapped[list[InboundAttachment]] = relationship(back_populates="message", cascade="all, delete-orphan",
                                                                order_by="InboundAttachment.id")


class InboundAttachment(Base):
    __tablename__ = "inbound_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(150))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    dangerous: Mapped[bool] = mapped_column(Boolean, default=False)  # never shown inline; downloaded as octet-stream

    message: Mapped[InboundMessage] = relationship(back_populates="attachments")


class OutgoingReply(Base):
    """An officer's answer, written in the browser and sent through the normal SMTP path."""

    __tablename__ = "outgoing_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id", ondelete="SET NULL"))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(1000))
    claimed_by: Mapped[str | None] = mapped_column(String(64))  # the job sending it (its fencing token)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # renewed while that job lives

    officer: Mapped[Officer | None] = relationship()


class ThreadNote(Base):
    """An officer's internal note on a thread: never sent to anyone."""

    __tablename__ = "thread_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    text: Mapped[str] = mapped_column(Text)

    officer: Mapped[Officer | None] = relationship()


class ThreadRead(Base):
    """When an officer last read a thread: newer activity makes it unread for them."""

    __tablename__ = "thread_reads"

    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"), primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageReference(Base):
    """An earlier Message-ID a stored message answers (its In-Reply-To and References), indexed so
    that when that earlier message arrives late, its replies are found without a scan."""

    __tablename__ = "message_references"

    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id", ondelete="CASCADE"),
                                                    primary_key=True)
    referenced: Mapped[str] = mapped_column(String(300), primary_key=True, index=True)


class BounceEvent(Base):
    """One failed recipient in one bounce: the record email health is judged on."""

    __tablename__ = "bounce_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    email: Mapped[str] = mapped_column(String(254), index=True)
    hard: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20), default="")
    diagnostic: Mapped[str] = mapped_column(String(1000), default="")
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"), index=True)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id", ondelete="SET NULL"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))


class ImapState(Base):
    """What has been fetched from an IMAP folder, so each message is taken once."""

    __tablename__ = "imap_state"

    mailbox: Mapped[str] = mapped_column(String(300), primary_key=True)  # user@host/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
