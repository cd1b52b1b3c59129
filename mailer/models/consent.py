"""Consent and suppression: what each member agreed to, every change to it, and the addresses
that must not be written to whatever a segment says."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.members import Branch, Member, _enum
from mailer.models.officers import Officer


class SuppressionReason(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    OBJECTION = "objection"
    MANUAL = "manual"


class ConsentEvent(Base):
    """One change of a member's consent: what, when, and how (the consent log)."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stream: Mapped[str] = mapped_column(String(20))      # "bulletins", "notices" or "all"
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(40))      # one-click, preferences page, officer, import, complaint
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(500), default="")

    member: Mapped[Member] = relationship()


class Suppression(Base):
    """An address Mailer must not write to (on one stream, or on all). Wins over everything."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)  # lower-cased
    stream: Mapped[str] = mapped_column(String(20), default="all")  # "all" or "bulletins"
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason, "suppression_reason"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(String(1000), default="")

    @validates("email")
    def _stored_lower_case(self, _key: str, value: str) -> str:
        return value.lower() if value else value


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)


class MemberTag(Base):
    __tablename__ = "member_tags"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True)


class Segment(Base):
    """A saved set of filters, reused across campaigns. Compiled to SQL each time it is used."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"))  # a branch secretary's own
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    branch: Mapped[Branch | None] = relationship()
    created_by: Mapped[Officer | None] = relationship()
