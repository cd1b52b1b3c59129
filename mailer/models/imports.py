"""Imports of the membership export, kept as a record of what each one changed."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.members import _enum
from mailer.models.officers import Officer


class ImportStatus(enum.StrEnum):
    PENDING = "pending"        # uploaded; mapping and diff not yet confirmed
    APPLIED = "applied"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ImportRun(Base):
    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[ImportStatus] = mapped_column(_enum(ImportStatus, "import_status"), default=ImportStatus.PENDING)
    full_export: Mapped[bool] = mapped_column(Boolean, default=False)
    # The uploaded bytes, held only until the import is applied or cancelled (collect little).
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    mapping: Mapped[dict] = mapped_column(JSON, default=dict)   # column header -> member field
    summary: Mapped[dict] = mapped_column(JSON, default=dict)   # counts, and the row errors
    error: Mapped[str | None] = mapped_column(String(2000))

    officer: Mapped[Officer | None] = relationship()


class ImportMapping(Base):
    """A remembered choice: this column header means this member field (or is ignored)."""

    __tablename__ = "import_mappings"

    header: Mapped[str] = mapped_column(String(120), primary_key=True)  # normalised header
    field: Mapped[str] = mapped_column(String(40))                      # "" means ignore


class MemberCount(Base):
    """How many members each branch had in each status just after an import was applied: the
    history the overview charts (members over imports). A few rows per import, never a member."""

    __tablename__ = "member_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"), index=True)
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20))   # a MemberStatus value
    count: Mapped[int] = mapped_column(Integer)
