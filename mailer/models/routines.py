"""Routines' record of what they made: one row per routine, period and body (the CLP or a
branch), so a routine run twice (a retried job, a Redis flush, two workers) makes its draft once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.campaigns import Campaign


class RoutineRun(Base):
    __tablename__ = "routine_runs"
    __table_args__ = (UniqueConstraint("routine", "period", "body"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    routine: Mapped[str] = mapped_column(String(40))   # "weekly-bulletin"
    period: Mapped[str] = mapped_column(String(20))    # "2026-W49": the ISO week, in UK time
    body: Mapped[str] = mapped_column(String(40))      # "clp", or "branch-<id>" (never NULL: it is in the key)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    made_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign | None] = relationship()
