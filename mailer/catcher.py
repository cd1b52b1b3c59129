"""The local mail catcher: a real SMTP server (aiosmtpd) that keeps every message it is sent in a
Maildir in the instance folder, so a new user sees Mailer's email without a relay. It is an
endpoint of the SMTP transport (mailer/mail/smtp.py), reached exactly as a relay would be.

Beside the Maildir, an index (one JSON line per message: key, date, from, to, subject) lets the
Outbox list and search thousands of messages without opening their files: the catcher appends to
it as it keeps each message, and a message found in the Maildir but not in the index (kept before
the index existed, or dropped in by hand) has its headers read once and is added."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiosmtpd.controller import Controller

INDEX = ".outbox-index.jsonl"
HEAD_BYTES = 64 * 1024  # the most of a file read to index it: headers, not bodies
_lock = threading.Lock()


class _KeepInMaildir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.box = mailbox.Maildir(path, create=True)

    async def handle_DATA(self, server, session, envelope):
        # Record the envelope too: it is what the relay would have acted on.
        head = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        data = head + envelope.original_content
        key = self.box.add(data)
        _append(self.path, [_entry(key, data[:HEAD_BYTES])])
        return "250 Message accepted for delivery"


def start(path: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    """Start the catcher on host:port in a background thread; returns its controller (call .stop())."""
    controller = Controller(_KeepInMaildir(path), hostname=host, port=port)
    controller.start()
    return controller


@dataclass
class CaughtMessage:
    key: str
    received: datetime | None
    sender: str
    to: str
    subject: str
    message: email.message.EmailMessage | None = None


# --- the index --------------------------------------------------------------------------------

def _date(value) -> datetime | None:
    try:
        return parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None


def _entry(key: str, head: bytes) -> dict:
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head)

    def text(name: str) -> str:
        try:
            return str(headers.get(name, "") or "")[:500]
        except Exception:  # noqa: BLE001 - a malformed header shows empty rather than breaking the list
            return ""

    when = _date(text("Date"))
    return {"key": key, "date": when.isoformat() if when else "", "from": text("From"), "to": text("To"),
            "subject": text("Subject")}


def _append(path: Path, entries: list[dict]) -> None:
    if not entries:
        return
    lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries).encode()
    with _lock, open(Path(path) / INDEX, "ab") as fh:  # one write: lines from two writers never interleave
        fh.write(lines)


def _keys(path: Path) -> dict[str, str]:
    """The Maildir's message keys and their files ("new/KEY" or "cur/KEY:2,S"), from the directory
    listings alone (no file is opened)."""
    keys = {}
    for sub in ("new", "cur"):
        try:
            names = os.listdir(Path(path) / sub)
        except FileNotFoundError:
            continue
        keys.update((name.split(mailbox.Maildir.colon)[0], f"{sub}/{name}") for name in names
                    if not name.startswith("."))
    return keys


def read_head(path: Path, name: str) -> bytes:
    """The start of one message's file (enough for its headers)."""
    with open(Path(path) / name, "rb") as fh:
        return fh.read(HEAD_BYTES)


def index(path: Path) -> list[dict]:
    """Every caught message's index entry, newest first; messages missing from the index are added."""
    path = Path(path)
    mailbox.Maildir(path, create=True)
    known: dict[str, dict] = {}
    try:
        with open(path / INDEX, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                    known[entry["key"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: its message is indexed again below
    except FileNotFoundError:
        pass
    present = _keys(path)
    missing = []
    for key, name in present.items():
        if key not in known:
            try:
                missing.append(_entry(key, read_head(path, name)))
            except OSError:  # moved or deleted meanwhile
                continue
    _append(path, missing)
    known.update((e["key"], e) for e in missing)
    entries = [known[k] for k in present if k in known]
    entries.sort(key=lambda e: _kept_order(e["key"]), reverse=True)
    return entries


def _kept_order(key: str) -> tuple:
    """Maildir keys begin with when they were kept ("SECONDS.M<micro>P<pid>Q<n>.host"): newest
    first by that, not by the Date header a sender wrote."""
    seconds, _, rest = key.partition(".")
    micro = rest[1:].split("P", 1)[0] if rest.startswith("M") else ""
    return (int(seconds) if seconds.isdigit() else 0, int(micro) if micro.isdigit() else 0, key)


def search(entries: list[dict], q: str) -> list[dict]:
    """Entries whose subject, recipient or sender holds every word of `q` (ignoring case)."""
    words = q.casefold().split()
    if not words:
        return entries
    return [e for e in entries if all(w in f"{e['subject']} {e['to']} {e['from']}".casefold() for w in words)]


def summary(entry: dict) -> CaughtMessage:
    return CaughtMessage(entry["key"], datetime.fromisoformat(entry["date"]) if entry["date"] else None,
                         entry["from"], entry["to"], entry["subject"])


# --- one message ------------------------------------------------------------------------------

def messages(path: Path, limit: int = 200) -> list[CaughtMessage]:
    """The newest caught messages first (from the index: no message file is parsed)."""
    return [summary(e) for e in index(path)[:limit]]


def read(path: Path, key: str) -> CaughtMessage:
    """One caught message by its Maildir key (KeyError when there is none)."""
    raw = mailbox.Maildir(path, create=True).get_bytes(key)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return CaughtMessage(key, _date(msg["Date"]), str(msg.get("From", "")), str(msg.get("To", "")),
                         str(msg.get("Subject", "")), msg)


def raw_bytes(path: Path, key: str) -> bytes:
    return mailbox.Maildir(path, create=True).get_bytes(key)
