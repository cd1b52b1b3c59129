"""IMAP polling of an ordinary mailbox (the secretary's reply mailbox).

Each poll opens the folder, asks for the messages it has not taken yet, and for each one:
stores it (through store.store, then committed), and only then moves it to IMAP_PROCESSED_FOLDER
(created if missing) or, when that setting is empty, flags it \\Seen and with a keyword. Nothing
is ever deleted, and a crash between the two steps loses nothing: the next poll finds the message
still there, sees by its (UIDVALIDITY, UID) that it is already held, and moves it without
downloading it again.

What has been taken is remembered per folder in ImapState (the folder's UIDVALIDITY and the
highest UID done). When the server changes UIDVALIDITY (a folder deleted and made again, a
server migration) the UIDs mean nothing any more: the folder is read again from the start and
the Message-ID (or hash) dedupe in store() keeps out what is already held.

Polling recurs through RQ's scheduler (the job and its chain are the registry's: mailer.jobs).

The poll is a job's body, not a service: its commits (the folder's state, each batch stored
before it leaves the mailbox) are the protocol that loses nothing, so it commits as it goes.
"""

from __future__ import annotations

import base64
import imaplib
import logging
import re
import ssl
from dataclasses import asdict, dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mailer import progress, queue, words
from mailer.db import session, utcnow
from mailer.inbound.store import store
from mailer.models import ImapState, InboundMessage

log = logging.getLogger("mailer.inbound.imap")

KEYWORD = "MailerStored"   # set on messages left in place (no processed folder)
BATCH = 50                 # messages fetched, stored and moved per round trip
TIMEOUT = 60               # seconds for each network operation
LOCK_TTL = 3600            # a poll job may run this long; its lock expires with it
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class ImapError(RuntimeError):
    """Polling cannot go on (no settings, login refused, folder missing...): said in words."""


@dataclass
class PollResult:
    mailbox: str
    uidvalidity: int
    found: int = 0       # messages not taken before
    fetched: int = 0     # bodies downloaded
    new: int = 0         # stored for the first time
    held: int = 0        # already held (same UID, Message-ID or content)
    done: int = 0        # moved or flagged
    reset: bool = False  # UIDVALIDITY had changed: the folder was read again
    action: str = ""     # what happened to them, in words

    def as_dict(self) -> dict:
        return asdict(self)


def configured() -> bool:
    return bool(current_app.config.get("IMAP_HOST"))


def mailbox_key() -> str:
    """user@host/folder: how ImapState and InboundMessage name the polled folder."""
    cfg = current_app.config
    return f"{cfg['IMAP_USERNAME']}@{cfg['IMAP_HOST']}/{cfg['IMAP_FOLDER'] or 'INBOX'}"[:200]


# --- talking IMAP ---------------------------------------------------------------------------

def connect() -> imaplib.IMAP4:
    """A logged-in connection, over SSL, STARTTLS, or (for a server on this machine) in clear."""
    cfg = current_app.config
    host, port = cfg["IMAP_HOST"], int(cfg["IMAP_PORT"])
    security = str(cfg["IMAP_SECURITY"] or "ssl").strip().lower()
    if not host:
        raise ImapError("IMAP is not configured: set MAILER_IMAP_HOST and the other MAILER_IMAP_* settings.")
    if security not in {"ssl", "starttls", "none"}:
        raise ImapError(f"MAILER_IMAP_SECURITY={security!r}: use ssl, starttls or none.")
    if security == "none" and host.lower() not in _LOCAL_HOSTS:
        # The password would cross the network in clear.
        raise ImapError(f"MAILER_IMAP_SECURITY=none is only allowed for a server on this machine, not {host}.")
    context = ssl.create_default_context()
    try:
        if security == "ssl":
            conn = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
        else:
            conn = imaplib.IMAP4(host, port, timeout=TIMEOUT)
            if security == "starttls":
                conn.starttls(ssl_context=context)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"cannot reach the IMAP server {host}:{port} ({security}): {exc}") from exc
    user, password = cfg["IMAP_USERNAME"], cfg["IMAP_PASSWORD"] or ""
    try:
        if (user + password).isascii():
            conn.login(user, password)
        else:  # LOGIN is ASCII-only; SASL PLAIN carries UTF-8
            conn.authenticate("PLAIN", lambda _challenge: f"\0{user}\0{password}".encode())
    except (OSError, imaplib.IMAP4.error) as exc:
        _logout(conn)
        raise ImapError(f"the IMAP server {host} refused the login for {user!r}: {_text(exc)}") from exc
    return conn


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value if v is not None)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _check(typ: str, data, what: str):
    if typ != "OK":
        raise ImapError(f"{what}: the server said {typ} {_text(data)}")
    return data


def _utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): "Réponses" -> "R&AOk-ponses"."""
    out, pending = [], []

    def flush():
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def quote_folder(name: str) -> str:
    """A folder name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + _utf7(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _capabilities(conn: imaplib.IMAP4) -> set[str]:
    # Asked again after login: servers (Dovecot among them) list MOVE only to a logged-in client.
    typ, data = conn.capability()
    return set(_text(data[-1]).upper().split()) if typ == "OK" and data else set(conn.capabilities)


def _ensure_folder(conn: imaplib.IMAP4, name: str) -> None:
    quoted = quote_folder(name)
    typ, data = conn.list('""', quoted)
    if typ == "OK" and any(item for item in data if item):
        return
    typ, data = conn.create(quoted)
    if typ != "OK":  # made meanwhile by another client?
        typ2, data2 = conn.list('""', quoted)
        if not (typ2 == "OK" and any(item for item in data2 if item)):
            raise ImapError(f"cannot create the IMAP folder {name!r}: {_text(data)}")
    conn.subscribe(quoted)  # so the secretary's mail client shows it


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(u) for u in uids)


_FETCH_UID = re.compile(rb"\bUID (\d+)")


def _fetch(conn: imaplib.IMAP4, uids: list[int]) -> dict[int, bytes]:
    """uid -> raw bytes. BODY.PEEK leaves \\Seen alone until the message is safely stored."""
    data = _check(*conn.uid("FETCH", _uid_set(uids), "(UID BODY.PEEK[])"), "fetching messages")
    found = {}
    for item in data:
        if isinstance(item, tuple) and len(item) >= 2:
            match = _FETCH_UID.search(item[0])
            if match:
                found[int(match.group(1))] = item[1]
    return found


def _done(conn: imaplib.IMAP4, uids: list[int], processed: str, can_move: bool, keyword_ok: bool) -> None:
    """Move the stored messages to the processed folder, or flag them. Never delete."""
    uid_set = _uid_set(uids)
    if processed and can_move:
        _check(*conn.uid("MOVE", uid_set, quote_folder(processed)), f"moving messages to {processed!r}")
        return
    if processed:  # no MOVE (RFC 6851): copy them over, and flag the originals rather than delete them
        _check(*conn.uid("COPY", uid_set, quote_folder(processed)), f"copying messages to {processed!r}")
    flags = f"(\\Seen {KEYWORD})" if keyword_ok else "(\\Seen)"
    _check(*conn.uid("STORE", uid_set, "+FLAGS.SILENT", flags), "flagging messages")


# --- the poll -------------------------------------------------------------------------------

def _state(key: str, uidvalidity: int) -> tuple[ImapState, bool]:
    """This folder's ImapState, started afresh when UIDVALIDITY changed. (state, reset)."""
    state = session.get(ImapState, key)
    if state is None:
        session.add(ImapState(mailbox=key, uidvalidity=uidvalidity, last_uid=0))
        try:
            session.commit()
        except IntegrityError:  # another poll made it at the same moment
            session.rollback()
        state = session.get(ImapState, key)
    if state.uidvalidity != uidvalidity:
        log.warning("UIDVALIDITY of %s changed (%s -> %s): reading the folder again; Message-IDs keep out "
                    "duplicates", key, state.uidvalidity, uidvalidity)
        state.uidvalidity, state.last_uid = uidvalidity, 0
        session.commit()
        return state, True
    return state, False


PROGRESS_TASK = "imap-poll"  # its live progress, for the Correspondence and Operations pages


def poll(limit: int | None = None) -> PollResult:
    """Take the new messages of the configured folder once: store each (committed), then move
    or flag it. `limit` caps how many are taken this time (the rest wait for the next poll).
    How far it has gone is reported as PROGRESS_TASK (mailer.progress)."""
    progress.report(PROGRESS_TASK, "Checking the mailbox", 0, 0, force=True)
    try:
        result = _poll(limit)
    except Exception:
        progress.finish(PROGRESS_TASK, f"The last check of the mailbox failed, at {words.when(utcnow())[-5:]}.")
        raise
    progress.finish(PROGRESS_TASK, f"Mailbox checked at {words.when(utcnow())[-5:]}: {result.new} new "
                                   f"message{'' if result.new == 1 else 's'}.")
    return result


def poll_progress() -> dict | None:
    """The poll's live progress, or how the last one ended, for pages (None: no mailbox is polled)."""
    if not configured():
        return None
    found = progress.read(PROGRESS_TASK)
    return found.as_dict() if found else {"live": False, "percent": 0,
                                          "text": "Waiting for the first check of the mailbox."}


def _poll(limit: int | None) -> PollResult:
    cfg = current_app.config
    folder = cfg["IMAP_FOLDER"] or "INBOX"
    processed = str(cfg["IMAP_PROCESSED_FOLDER"] or "").strip()
    key = mailbox_key()
    conn = connect()
    try:
        _check(*conn.select(quote_folder(folder)), f"opening the IMAP folder {folder!r}")
        uidvalidity = int(_text(conn.response("UIDVALIDITY")[1][0] or b"0") or 0)
        if not uidvalidity:
            raise ImapError(f"the server gave no UIDVALIDITY for {folder!r}")
        permanent = _text(conn.response("PERMANENTFLAGS")[1])
        keyword_ok = "\\*" in permanent or KEYWORD.lower() in permanent.lower()
        can_move = "MOVE" in _capabilities(conn)
        if processed:
            if processed.strip('"').lower() == folder.lower():
                raise ImapError("MAILER_IMAP_PROCESSED_FOLDER must differ from MAILER_IMAP_FOLDER.")
            _ensure_folder(conn, processed)

        state, reset = _state(key, uidvalidity)
        result = PollResult(mailbox=key, uidvalidity=uidvalidity, reset=reset,
                            action=f"moved to {processed}" if processed and can_move
                            else f"copied to {processed} and flagged" if processed else "flagged \\Seen")
        criteria = ["UID", f"{state.last_uid + 1}:*"] + (["UNKEYWORD", KEYWORD] if keyword_ok else [])
        data = _check(*conn.uid("SEARCH", *criteria), "searching the folder")
        # "n:*" always includes the highest UID, even when it is below n.
        uids = sorted(u for u in (int(x) for x in _text(data[0]).split()) if u > state.last_uid)
        if limit is not None:
            uids = uids[:limit]
        result.found = len(uids)
        progress.report(PROGRESS_TASK, "Taking in new mail", 0, len(uids), force=True)
        for start in range(0, len(uids), BATCH):
            _take(conn, uids[start:start + BATCH], key, uidvalidity, state, processed, can_move, keyword_ok, result)
            progress.report(PROGRESS_TASK, "Taking in new mail", min(start + BATCH, len(uids)), len(uids))
        state.polled_at = utcnow()
        session.commit()
        return result
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(f"IMAP conversation with {cfg['IMAP_HOST']} failed: {_text(exc)}") from exc
    finally:
        _logout(conn)


def _take(conn, batch, key, uidvalidity, state, processed, can_move, keyword_ok, result) -> None:
    # Already held by UID: a poll that stored them and then stopped before moving them.
    held = set(session.scalars(select(InboundMessage.imap_uid).where(
        InboundMessage.imap_mailbox == key, InboundMessage.imap_uidvalidity == uidvalidity,
        InboundMessage.imap_uid.in_(batch))))
    result.held += len(held)
    wanted = [u for u in batch if u not in held]
    bodies = _fetch(conn, wanted) if wanted else {}
    result.fetched += len(bodies)
    for uid in wanted:
        if uid in bodies:
            _message, created = store(bodies[uid], "imap", imap=(key, uidvalidity, uid))
            if created:
                result.new += 1
            else:
                result.held += 1
    # Only what is now in the database leaves the folder (a UID that vanished meanwhile is skipped).
    done = [u for u in batch if u in held or u in bodies]
    session.commit()  # what is stored is committed (and queued) before it may leave the mailbox
    if done:
        _done(conn, done, processed, can_move, keyword_ok)
        result.done += len(done)
    state.last_uid = max([state.last_uid, *batch])
    session.commit()


# --- polling on a schedule ------------------------------------------------------------------

def locked_poll(limit: int | None = None) -> PollResult | None:
    """One poll, unless another is running now (None then). Without Redis, just poll."""
    try:
        conn = queue.redis_connection()
        lock = conn.lock(f"mailer:{current_app.config['QUEUE_NAME']}:imap-poll:{mailbox_key()}",
                         timeout=LOCK_TTL, blocking=False)
        acquired = lock.acquire()
    except Exception:  # noqa: BLE001 - no Redis (a CLI run beside `mailer up`): dedupe still protects
        return poll(limit)
    if not acquired:
        return None
    try:
        return poll(limit)
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - expired meanwhile: nothing to release
            pass
