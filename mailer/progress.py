"""Live progress of a long task that runs in one request or one job (an import's comparison and
its writing, an IMAP poll), for its page to show without reloading, as a send's progress.json
does. The database cannot say how far an open transaction has gone, so the task writes its count
to Redis (a small hash per task, kept for an hour), at most a few times a second; the page asks
for it every second or so. Best effort: without Redis the task runs the same, unseen.

A task's name says what it is for ("import-12", "imap-poll"); its figures are counts, never
personal data, so any signed-in officer's page may read them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app

from mailer import queue

TTL = 3600
EVERY = 0.25  # seconds between two writes of the same task's count (the last one always goes)

_last_write: dict[str, float] = {}


@dataclass
class Progress:
    stage: str       # what it is doing, in words: "Comparing the file with the members held"
    done: int
    total: int       # 0 when not known yet
    live: bool       # False once finished (or failed)
    note: str = ""   # the outcome, once finished

    @property
    def percent(self) -> int:
        if not self.live:
            return 100
        return min(99, int(100 * self.done / self.total)) if self.total else 0

    def as_dict(self) -> dict:
        text = self.note if not self.live and self.note else (
            f"{self.stage}: {self.done:,} of {self.total:,}" if self.total else f"{self.stage}…")
        return {"stage": self.stage, "done": self.done, "total": self.total, "live": self.live,
                "percent": self.percent, "text": text}


def _key(task: str) -> str:
    return f"mailer:{current_app.config['QUEUE_NAME']}:progress:{task}"


def _write(task: str, fields: dict) -> None:
    try:
        conn = queue.redis_connection()
        pipe = conn.pipeline()
        pipe.hset(_key(task), mapping={k: str(v) for k, v in fields.items()})
        pipe.expire(_key(task), TTL)
        pipe.execute()
    except Exception:  # noqa: BLE001 - no Redis, or away: the task goes on, unseen
        pass


def report(task: str, stage: str, done: int, total: int = 0, force: bool = False) -> None:
    """`task` has done `done` of `total` in `stage` (written at most every EVERY seconds per task,
    unless `force` or it is the last)."""
    now = time.monotonic()
    if not force and done < total and now - _last_write.get(task, 0.0) < EVERY:
        return
    _last_write[task] = now
    _write(task, {"stage": stage, "done": done, "total": total, "live": 1, "note": ""})


def finish(task: str, note: str) -> None:
    """`task` is over; `note` says how it ended ("42 new members, 3 updated")."""
    _last_write.pop(task, None)
    _write(task, {"live": 0, "note": note})


def read(task: str) -> Progress | None:
    """How far `task` has gone, or None when nothing is known (never started, or an hour old)."""
    try:
        raw = queue.redis_connection().hgetall(_key(task))
    except Exception:  # noqa: BLE001 - no Redis: nothing known
        return None
    if not raw:
        return None
    got = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v for k, v in raw.items()}
    return Progress(got.get("stage", ""), int(got.get("done") or 0), int(got.get("total") or 0),
                    got.get("live") == "1", got.get("note", ""))
