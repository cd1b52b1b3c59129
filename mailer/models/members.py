"""Branches and members: the people Mailer writes to, as the membership export describes them."""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Enum, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from mailer.db import Base, UTCDateTime, utcnow


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as the lower-case value, checked by a constraint on every backend.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], native_enum=False,
                create_constraint=True, length=20)


class MemberStatus(enum.StrEnum):
    NEW = "new"
    ACTIVE = "active"
    ARREARS = "arrears"
    LAPSED = "lapsed"
    RESIGNED = "resigned"


class EmailHealth(enum.StrEnum):
    OK = "ok"
    SOFT_BOUNCING = "soft_bouncing"   # some temporary failures; still sent to
    ON_HOLD = "on_hold"               # hard bounce or too many soft ones: skipped until corrected


class Branch(Base):
    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[Member]] = relationship(back_populates="branch")

    def __str__(self) -> str:
        return self.name


class Member(Base):
    """A member of the party, as far as Mailer needs to know them (and no further)."""

    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_email_lower", text("lower(email)")),  # officers search and match by email
        Index("ix_members_last_first", "last_name", "first_name"),
        # the dashboard's counts and lists, answered from indexes alone (no pass over the table's rows)
        Index("ix_members_status_welcome_health", "status", "to_welcome", "email_health"),
        Index("ix_members_branch_status", "branch_id", "status"),
        Index("ix_members_welcome_recent", "to_welcome", "created_at", "id"),
        Index("ix_members_health_recent", "email_health", "created_at", "id"),
        Index("ix_members_notices_consent", "notices_consent", "id"),  # the postal list: who objected
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254), index=True)  # stored lower-case
    phone: Mapped[str | None] = mapped_column(String(40))
    postcode: Mapped[str | None] = mapped_column(String(10))
    ward: Mapped[str | None] = mapped_column(String(120), index=True)
    polling_district: Mapped[str | None] = mapped_column(String(40), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"), index=True)
    status: Mapped[MemberStatus] = mapped_column(_enum(MemberStatus, "member_status"), default=MemberStatus.NEW,
                                                 index=True)
    joined_on: Mapped[date | None] = mapped_column(Date)

    # Consent per stream. Notices are a service message: sent unless the member objects.
    # Bulletins are marketing in law: sent only with consent.
    notices_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    bulletins_consent: Mapped[bool] = mapped_column(Boolean, default=True)

    email_health: Mapped[EmailHealth] = mapped_column(_enum(EmailHealth, "email_health"), default=EmailHealth.OK)
    to_welcome: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    # The random identity in unsubscribe and preference links: tokens never carry the member's id.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: secrets.token_hex(16))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    branch: Mapped[Branch | None] = relationship(back_populates="members")
    tags: Mapped[list["Tag"]] = relationship(secondary="member_tags", order_by="Tag.name")  # noqa: F821

    @validates("email")
    def _stored_lower_case(self, _key: str, value: str | None) -> str | None:
        """Addresses are kept lower-case, whoever writes them, so matching, grouping and the
        indexes on them never need lower() (see migration 0009)."""
        return value.lower() if value else value

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or "(no name)"

    def __repr__(self) -> str:
        return f"<Member {self.id} {self.membership_number!r}>"
