"""Who is signed in and what they may do: Flask-Login sessions, CSRF, roles, branch scope."""

from __future__ import annotations

from functools import wraps

from flask import Flask, abort
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Select, false

from mailer.db import session
from mailer.models import Member, Officer, Role

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "strong"
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Sign-in sessions and CSRF protection on every form."""
    login_manager.init_app(app)
    csrf.init_app(app)


@login_manager.user_loader
def _load_officer(officer_id: str) -> Officer | None:
    officer = session.get(Officer, int(officer_id))
    return officer if officer is not None and officer.active else None


def roles_required(*roles: Role):
    """Refuse (403) a signed-in officer whose role is not one of `roles`."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated or current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


CLP_ROLES = (Role.CLP_SECRETARY, Role.CLP_OFFICER, Role.CHAIR)


def scope_members(stmt: Select, officer: Officer) -> Select:
    """Limit a query over members to those `officer` may see (their branch, for a branch secretary)."""
    if officer.sees_all_branches:
        return stmt
    if officer.branch_id is None:  # never "branch IS NULL": a secretary without a branch sees no one
        return stmt.where(false())
    return stmt.where(Member.branch_id == officer.branch_id)


def can_see_member(officer: Officer, member: Member) -> bool:
    """True when `officer` may see `member`."""
    return officer.sees_all_branches or (officer.branch_id is not None and member.branch_id == officer.branch_id)
