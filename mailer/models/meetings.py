"""Meetings: the notice, the agenda, who came, and the minutes with the correspondence attached."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timedelta

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.campaigns import Campaign
from mailer.models.inbound import InboundMessage, Thread
from mailer.models.members import Branch, Member, _enum
from mailer.models.officers import Officer


class MeetingKind(enum.StrEnum):
    GENERAL = "general"        # an ordinary general meeting
    AGM = "agm"
    SPECIAL = "special"
    EXECUTIVE = "executive"    # the executive committee
    BRANCH = "branch"          # a branch meeting

    @property
    def label(self) -> str:
        return {"general": "General meeting", "agm": "Annual general meeting", "special": "Special meeting",
                "executive": "Executive committee", "branch": "Branch meeting"}[self.value]


class MeetingStatus(enum.StrEnum):
    PLANNED = "planned"
    NOTICED = "noticed"
    HELD = "held"
    CANCELLED = "cancelled"


class Response(enum.StrEnum):
    NONE = "none"
    ATTENDING = "attending"
    APOLOGIES = "apologies"
    NOT_ATTENDING = "not_attending"


class MinutesStatus(enum.StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"       # by the chair
    CIRCULATED = "circulated"   # sent to the meeting's members
    ADOPTED = "adopted"         # agreed as a true record at the next meeting


def _uid() -> str:
    return f"{uuid.uuid4()}@mailer"


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"), index=True)  # None: the CLP
    kind: Mapped[MeetingKind] = mapped_column(_enum(MeetingKind, "meeting_kind"))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    venue_name: Mapped[str] = mapped_column(String(200), default="")
    venue_address: Mapped[str] = mapped_column(String(500), default="")
    online_url: Mapped[str] = mapped_column(String(500), default="")
    dial_in: Mapped[str] = mapped_column(String(500), default="")
    accessibility: Mapped[str] = mapped_column(Text, default="")
    entitled: Mapped[dict] = mapped_column(JSON, default=dict)  # a segment definition: who may attend
    quorum: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[MeetingStatus] = mapped_column(_enum(MeetingStatus, "meeting_status"), default=MeetingStatus.PLANNED)
    cancelled_reason: Mapped[str] = mapped_column(String(500), default="")
    ical_uid: Mapped[str] = mapped_column(String(120), default=_uid, unique=True)
    ical_sequence: Mapped[int] = mapped_column(Integer, default=0)  # rises with every change members are told of
    # The reminder: when it is due, and when it went (the database, not Redis, holds pending work).
    reminder_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    notice_override: Mapped[str] = mapped_column(String(500), default="")  # why a late notice was allowed
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    branch: Mapped[Branch | None] = relationship()
    agenda: Mapped[list[AgendaItem]] = relationship(back_populates="meeting", cascade="all, delete-orphan",
                                                    order_by="AgendaItem.position")
    minutes: Mapped[Minutes | None] = relationship(back_populates="meeting", uselist=False,
                                                   foreign_keys="Minutes.meeting_id")

    @property
    def body_name(self) -> str:
        return f"{self.branch.name} branch" if self.branch else "the CLP"

    @property
    def more_than_a_day_away(self) -> bool:
        """Marking such a meeting held is most likely a slip: the pages ask the officer to confirm."""
        return self.starts_at - utcnow() > timedelta(days=1)


class AgendaItem(Base):
    __tablename__ = "agenda_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    notes: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(String(30), default="")  # apologies, last_minutes, correspondence, ...
    last_minutes_id: Mapped[int | None] = mapped_column(ForeignKey("minutes.id", ondelete="SET NULL"))

    meeting: Mapped[Meeting] = relationship(back_populates="agenda")
    papers: Mapped[list[AgendaPaper]] = relationship(back_populates="item", cascade="all, delete-orphan",
                                                     order_by="AgendaPaper.id")
    correspondence: Mapped[list[CorrespondenceLink]] = relationship(back_populates="item", cascade="all, delete-orphan",
                                                                    order_by="CorrespondenceLink.id")


class AgendaPaper(Base):
    __tablename__ = "agenda_papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded when downloaded or attached

    item: Mapped[AgendaItem] = relationship(back_populates="papers")


class Attendance(Base):
    """One entitled member's answer to a meeting, and whether they came."""

    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    response: Mapped[Response] = mapped_column(_enum(Response, "attendance_response"), default=Response.NONE)
    source: Mapped[str] = mapped_column(String(30), default="")  # link, reply, calendar, officer
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    proposed: Mapped[bool] = mapped_column(Boolean, default=False)  # read from a reply: an officer confirms it
    message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id", ondelete="SET NULL"))
    present: Mapped[bool] = mapped_column(Boolean, default=False)

    member: Mapped[Member] = relationship()
    message: Mapped[InboundMessage | None] = relationship()


class Minutes(Base):
    __tablename__ = "minutes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), unique=True)
    status: Mapped[MinutesStatus] = mapped_column(_enum(MinutesStatus, "minutes_status"), default=MinutesStatus.DRAFT)
    present_text: Mapped[str] = mapped_column(Text, default="")
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    circulated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    circulation_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    adopted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    adopted_at_meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"))
    web_token: Mapped[str] = mapped_column(String(40), default=lambda: uuid.uuid4().hex, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    meeting: Mapped[Meeting] = relationship(back_populates="minutes", foreign_keys=[meeting_id])
    items: Mapped[list[MinuteItem]] = relationship(back_populates="minutes", cascade="all, delete-orphan",
                                                   order_by="MinuteItem.position")
    approved_by: Mapped[Officer | None] = relationship()


class MinuteItem(Base):
    __tablename__ = "minute_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    minutes_id: Mapped[int] = mapped_column(ForeignKey("minutes.id", ondelete="CASCADE"), index=True)
    agenda_item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text, default="")

    minutes: Mapped[Minutes] = relationship(back_populates="items")
    agenda_item: Mapped[AgendaItem | None] = relationship()


class CorrespondenceLink(Base):
    """A correspondence thread attached to a meeting's correspondence item."""

    __tablename__ = "correspondence_links"
    __table_args__ = (UniqueConstraint("item_id", "thread_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"), index=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    item: Mapped[AgendaItem] = relationship(back_populates="correspondence")
    thread: Mapped[Thread] = relationship()


class MeetingCampaign(Base):
    """The campaigns a meeting sent: its notice, updates, cancellation, reminders, the minutes."""

    __tablename__ = "meeting_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))  # notice, update, cancellation, reminder, minutes
    ical_sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign] = relationship()
    meeting: Mapped[Meeting] = relationship()
