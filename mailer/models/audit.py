"""The audit log: who did what to whose personal data, when, with old and new values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.officers import Officer


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(254))  # kept as text: survives the officer's removal
    action: Mapped[str] = mapped_column(String(60), index=True)  # e.g. member.update, import.apply
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    # {field: [old, new]} for changes; free-form details for other actions.
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")

    officer: Mapped[Officer | None] = relationship()
