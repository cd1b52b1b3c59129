"""Officer accounts: creation, passwords, password-reset links, role changes (all audited)."""

from __future__ import annotations

import secrets

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from mailer import audit
from mailer.db import session, utcnow
from mailer.errors import Refusal
from mailer.links import external_url
from mailer.mail import send_message
from mailer.models import Branch, Officer, Role

MIN_PASSWORD = 10
# Compared against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password")


class OfficerError(Refusal):
    """A request about officers that cannot be carried out; the message says why."""


def normalise_email(raw: str) -> str:
    """A checked, lower-cased address (no DNS look-up: mail is often sent from offline set-ups)."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise OfficerError(f"{raw!r} is not a valid email address: {exc}") from None


def check_role_branch(role: Role, branch: Branch | None) -> None:
    """A branch secretary needs a branch; CLP roles have none."""
    if role is Role.BRANCH_SECRETARY and branch is None:
        raise OfficerError("A branch secretary needs a branch.")
    if role is not Role.BRANCH_SECRETARY and branch is not None:
        raise OfficerError("Only a branch secretary is tied to a branch.")


def find_by_email(email: str) -> Officer | None:
    return session.scalar(select(Officer).where(func.lower(Officer.email) == email.strip().lower()))


def all_officers() -> list[Officer]:
    """Every account, the active first, by email (for the CLP secretary's list)."""
    return list(session.scalars(select(Officer).order_by(Officer.active.desc(), Officer.email)))


def get_officer(officer_id: int) -> Officer | None:
    return session.get(Officer, officer_id)


def get_branch(branch_id: int | None) -> Branch | None:
    return session.get(Branch, branch_id) if branch_id else None


def create_officer(email: str, role: Role, branch: Branch | None = None, name: str = "",
                   password: str | None = None, by: Officer | None = None) -> tuple[Officer, str]:
    """Create an officer; returns it with its password (generated when not given). Not committed."""
    email = normalise_email(email)
    check_role_branch(role, branch)
    if find_by_email(email) is not None:
        raise OfficerError(f"An officer with the email {email} already exists.")
    password = password or secrets.token_urlsafe(12)
    check_password_strength(password)
    officer = Officer(email=email, name=name.strip(), role=role, branch=branch,
                      password_hash=generate_password_hash(password))
    session.add(officer)
    session.flush()
    audit.record("officer.create", "officer", officer.id,
                 {"email": [None, email], "role": [None, role.value], "branch": [None, branch.name if branch else None]},
                 officer=by)
    return officer, password


def update_officer(officer: Officer, role: Role, branch: Branch | None, active: bool, name: str,
                   by: Officer | None = None) -> None:
    """Change an officer's role, branch, name or access. Not committed."""
    check_role_branch(role, branch)
    if by is not None and by.id == officer.id and (role is not Role.CLP_SECRETARY or not active):
        raise OfficerError("You cannot remove your own secretary access; ask another CLP secretary.")
    before = {"role": officer.role, "branch": officer.branch.name if officer.branch else None,
              "active": officer.active, "name": officer.name}
    officer.role, officer.branch, officer.active, officer.name = role, branch, active, name.strip()
    after = {"role": role, "branch": branch.name if branch else None, "active": active, "name": officer.name}
    changes = audit.diff(before, after)
    if changes:
        audit.record("officer.update", "officer", officer.id, changes, officer=by)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise OfficerError(f"A password needs at least {MIN_PASSWORD} characters.")


def end_sessions(officer: Officer) -> None:
    """End every session and remember-me cookie of `officer`, on every computer. Not committed."""
    officer.session_generation = (officer.session_generation or 0) + 1


def set_password(officer: Officer, password: str) -> None:
    """Set a new password (which also voids outstanding reset links and signs the officer out
    everywhere). Not committed."""
    check_password_strength(password)
    officer.password_hash = generate_password_hash(password)
    end_sessions(officer)
    audit.record("officer.password", "officer", officer.id, note="password changed", officer=officer)


def authenticate(email: str, password: str) -> Officer | None:
    """The active officer with these credentials, or None."""
    officer = find_by_email(email)
    if officer is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not officer.active or not check_password_hash(officer.password_hash, password):
        return None
    officer.last_login_at = utcnow()
    return officer


def sign_in_failed(email: str, address: str | None, limited: bool = False) -> None:
    """Audit a refused sign-in (wrong password, unknown or disabled account, or over the limit):
    guessing is visible in the log. Not committed."""
    email = (email or "").strip()[:254]
    officer = find_by_email(email) if email else None
    audit.record("officer.sign_in_limited" if limited else "officer.sign_in_failed", "officer",
                 officer.id if officer else None, note=f"{email or '(no email)'} from {address or 'unknown address'}",
                 actor="sign-in")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="mailer.password-reset")


def make_reset_token(officer: Officer) -> str:
    """A signed token naming the officer and a fingerprint of the current password hash,
    so it stops working once the password changes (single use)."""
    return _serializer().dumps([officer.id, officer.password_hash[-16:]])


def officer_from_reset_token(token: str) -> Officer | None:
    """The officer a valid, unexpired, unused reset token names, or None."""
    try:
        officer_id, fingerprint = _serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
    except (BadSignature, SignatureExpired, ValueError, TypeError):
        return None
    officer = session.get(Officer, officer_id)
    if officer is None or not officer.active or officer.password_hash[-16:] != fingerprint:
        return None
    return officer


def send_reset_email(officer: Officer) -> None:
    """Email the reset link (called by the job, after the request has finished)."""
    link = external_url("auth.reset_password", token=make_reset_token(officer))
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    send_message(
        officer.email,
        f"{current_app.config['ORG_NAME']}: reset your Mailer password",
        f"Hello {officer.label},\n\nSomeone (we hope you) asked to reset your Mailer password.\n"
        f"Open this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
        "If you did not ask, ignore this email: your password stays as it is.\n",
    )
