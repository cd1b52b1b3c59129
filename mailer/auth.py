"""Who is signed in and what they may do: Flask-Login sessions, CSRF, roles, branch scope."""

from __future__ import annotations

from functools import wraps

from flask import Flask, abort, request
from flask_limiter import Limiter
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Select, false

from mailer.db import session
from mailer.models import Member, Officer, Role

# Every endpoint reached without signing in: everything else is behind the admin blueprint's login
# check, or the API's token check (mailer/api). tests/security/test_route_scan.py requests every
# rule without a session: a new route answering anything but the login redirect, 401 or 404
# fails it until it is classified here.
PUBLIC_ENDPOINTS = frozenset({
    "static", "favicon",
    # Signing in, out, and resetting a forgotten password.
    "auth.login", "auth.logout", "auth.reset_request", "auth.reset_password",
    # Reached from members' email, each by a signed or random token: preferences and one-click
    # unsubscribe, the RSVP links, web versions and the archive, calendar feeds, circulated minutes.
    "public.preferences", "public.one_click", "public.save_preferences", "public.meeting_response",
    "public.web_version", "public.archive", "public.calendar_feed", "public.minutes",
    # The organisation's colour for those pages (a stylesheet made from the settings: no data).
    "public.org_css",
    # Mail coming in from machines: each checks its own secret or signature (mailer/web/inbound_hooks.py).
    "inbound_hooks.raw", "inbound_hooks.mailgun", "inbound_hooks.postmark", "inbound_hooks.sendgrid",
    # The API's description, for people and for clients; the data behind it needs a token.
    "api.docs", "api.openapi",
})


def holds_nul(value) -> bool:
    """True when a text anywhere in `value` (strings, lists, dicts, their keys) holds a NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_nul(v) for v in value)
    return False


def refuse_nul():
    """No text that an officer, a member or a stranger types reaches the database with a NUL in it:
    PostgreSQL cannot hold one, and no person writes one. Refused whole, before any view runs.
    (Mail coming in is the exception: it is stored as received, and read with its NULs replaced.)"""
    if (request.endpoint or "").startswith("inbound_hooks."):
        return
    fields = [request.args] + ([request.form] if request.method in {"POST", "PUT", "PATCH", "DELETE"} else [])
    if any(holds_nul(key) or holds_nul(value) for field in fields for key, value in field.items(multi=True)):
        abort(400, "The request holds a NUL character, which no text field may contain.")


login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "strong"
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Sign-in sessions, CSRF protection on every form, a sign-in rate limiter, and no NUL in input."""
    login_manager.init_app(app)
    csrf.init_app(app)
    app.before_request(refuse_nul)
    app.config.setdefault("SIGN_IN_LIMIT_ACCOUNT", "10 per 15 minutes")  # failed sign-ins per account
    app.config.setdefault("SIGN_IN_LIMIT_ADDRESS", "30 per 15 minutes")  # failed sign-ins per client address
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "mailer-limits")
    # One limiter per app (its storage is its own): kept where the sign-in view finds it.
    app.extensions["mailer.limiter"] = Limiter(
        key_func=client_address, app=app, storage_uri=limiter_storage(app.config.get("REDIS_URL")),
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1} if app.config.get("REDIS_URL") else {},
        in_memory_fallback_enabled=True,  # Redis gone mid-run: keep limiting, in this process's memory
        key_prefix=app.config["RATELIMIT_KEY_PREFIX"], strategy="moving-window")


def limiter_storage(redis_url: str | None) -> str:
    """The app's Redis when it answers (so every web process shares the counts), memory otherwise."""
    if not redis_url:
        return "memory://"
    try:
        Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (RedisError, OSError, ValueError):
        return "memory://"
    if redis_url.startswith("unix://"):  # the embedded Redis of `mailer up` and the tests
        return "redis+unix://" + redis_url[len("unix://"):]
    return redis_url


def client_address() -> str:
    return request.remote_addr or "unknown"


def sign_in_account() -> str:
    """The account a sign-in attempt names: the email typed, as an officer's email compares."""
    return "account:" + (request.form.get("email") or "").strip().lower()[:254]


def limit_sign_in(app: Flask, endpoint: str, failures_only: bool = True) -> None:
    """Throttle POSTs to `endpoint` per account and per address: failed sign-ins (one that signs
    in, answered by a redirect, is not counted; once a limit is reached even the right password
    waits), or every request (password-reset emails: no flooding an officer's inbox)."""
    limiter: Limiter = app.extensions["mailer.limiter"]
    deduct = (lambda response: response.status_code != 302) if failures_only else None
    view = app.view_functions[endpoint]
    view = limiter.limit(lambda: app.config["SIGN_IN_LIMIT_ACCOUNT"], key_func=sign_in_account, methods=["POST"],
                         deduct_when=deduct, scope=f"{endpoint}-account")(view)
    view = limiter.limit(lambda: app.config["SIGN_IN_LIMIT_ADDRESS"], key_func=client_address, methods=["POST"],
                         deduct_when=deduct, scope=f"{endpoint}-address")(view)
    app.view_functions[endpoint] = view


def sign_in_wait() -> int:
    """Seconds until the limit just reached lets the next attempt through (at least one)."""
    import time

    from flask import current_app

    current = current_app.extensions["mailer.limiter"].current_limit
    return max(1, int(current.reset_at - time.time())) if current is not None else 60


@login_manager.user_loader
def _load_officer(session_id: str) -> Officer | None:
    """The officer a session or remember-me cookie names, if its generation is still current."""
    officer_id, _, generation = str(session_id).partition(":")
    if not officer_id.isdigit() or not generation.isdigit():
        return None  # a cookie from before generations, or forged: signed out
    officer = session.get(Officer, int(officer_id))
    if officer is None or not officer.active or officer.session_generation != int(generation):
        return None
    return officer


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


def can_see_branch(officer: Officer, branch_id: int | None) -> bool:
    """True when `officer` may see records of branch `branch_id` (None: records of no branch, CLP roles only)."""
    return officer.sees_all_branches or (officer.branch_id is not None and branch_id == officer.branch_id)


def can_see_member(officer: Officer, member: Member) -> bool:
    """True when `officer` may see `member`."""
    return can_see_branch(officer, member.branch_id)


def body_may_see(body_branch_id: int | None, branch_id: int | None) -> bool:
    """True when everyone who sees a body's records (the CLP's: None, or a branch's) may also see a
    record of branch `branch_id`: what may be put in a meeting's papers or minutes."""
    return body_branch_id is None or branch_id == body_branch_id
