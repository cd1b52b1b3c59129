"""Officers: the people who log in, and what their role lets them see."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.db import Base, UTCDateTime, utcnow
from mailer.models.members import Branch, _enum


class Role(enum.StrEnum):
    CLP_SECRETARY = "clp_secretary"       # everything, and manages officers
    CLP_OFFICER = "clp_officer"           # vice-chair, treasurer, membership...: every branch, no officer admin
    BRANCH_SECRETARY = "branch_secretary"  # their own branch's members only
    CHAIR = "chair"                       # a CLP officer who also approves minutes

    @property
    def label(self) -> str:
        return {"clp_secretary": "CLP secretary", "clp_officer": "CLP officer",
                "branch_secretary": "Branch secretary", "chair": "Chair"}[self.value]


class Officer(UserMixin, Base):
    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "officer_role"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of every session's and remember-me cookie's id: bumped on sign-out and password change,
    # it ends all of them at once, on every computer.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    branch: Mapped[Branch | None] = relationship()

    def get_id(self) -> str:
        """Flask-Login's id for sessions and remember-me cookies: the officer and the generation."""
        return f"{self.id}:{self.session_generation}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive officers
        return self.active

    @property
    def sees_all_branches(self) -> bool:
        return self.role in (Role.CLP_SECRETARY, Role.CLP_OFFICER, Role.CHAIR)

    @property
    def label(self) -> str:
        return self.name or self.email

    def __repr__(self) -> str:
        return f"<Officer {self.email} {self.role.value}>"


class ApiToken(Base):
    """A personal token for the JSON API: the officer's own roles and branch scope, nothing more.
    Only a hash is kept; the token itself is shown once, when it is made."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("officers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of a 256-bit random token
    hint: Mapped[str] = mapped_column(String(12))  # the first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    officer: Mapped[Officer] = relationship()
