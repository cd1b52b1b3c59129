"""`mailer bench ingest`: how fast inbound mail is stored and processed, against bare parsing.

In one run, on the same messages: (a) Mailer's path, store_many() of the raw messages in
batches of 200 (committed, deduplicated, one job queued per 50) and then processing by a real RQ worker on a real Redis (parse,
classify, trim, sanitise, match, thread, bounce handling), into a scratch database; (b) the
baseline, `email.message_from_bytes` of each message and nothing else. Wall-clock rates and their
ratio, and the same in CPU time (the worker runs in this process), which load disturbs less. The messages are made
here (replies with quotes, HTML replies, delivery reports, auto-replies), so the run needs
nothing from outside.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import ExitStack
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from pathlib import Path

KINDS = ("reply", "html_reply", "bounce", "auto_reply")


def make_messages(n: int) -> list[bytes]:
    """`n` distinct, realistic inbound messages of the four common kinds, in turn."""
    out = []
    now = format_datetime(datetime.now(timezone.utc))
    quote = "\n".join(f"> Line {i} of the bulletin we sent, quoted back at us by the mail client." for i in range(40))
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        if kind == "bounce":
            out.append((f"From: Mail Delivery System <MAILER-DAEMON@mx{i}.example.org>\r\n"
                        f"To: secretary@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
                        f"Date: {now}\r\nMessage-ID: <dsn{i}@mx.example.org>\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
                        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
                        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
                        f"Final-Recipient: rfc822; member{i}@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--B--\r\n").encode())
            continue
        msg = EmailMessage()
        msg["From"] = f"Member {i} <member{i}@example.net>"
        msg["To"] = "secretary@example.org"
        msg["Date"], msg["Message-ID"] = now, make_msgid(idstring=str(i), domain="mail.example.net")
        if kind == "auto_reply":
            msg["Subject"], msg["Auto-Submitted"] = "Automatic reply: This week in the CLP", "auto-replied"
            msg.set_content("I am out of the office until Monday.")
        else:
            msg["Subject"] = f"Re: This week in the CLP ({i})"
            msg["In-Reply-To"] = f"<{i}.{i}.abc@example.org>"
            text = (f"Thanks, I can help on Saturday {i}.\n\nOn Mon, 23 Nov 2026 at 09:12, Anytown CLP Secretary "
                    f"<secretary@example.org> wrote:\n{quote}\n")
            msg.set_content(text)
            if kind == "html_reply":
                msg.add_alternative(f"<div>Thanks, I can help on Saturday {i}.</div><div class=\"gmail_quote\">"
                                    f"<blockquote>{quote}</blockquote></div>", subtype="html")
        out.append(bytes(msg))
    return out


def bare_parse(messages: list[bytes]) -> tuple[float, float]:
    """Seconds (wall, CPU) to parse every message with the standard library alone."""
    started, cpu = time.perf_counter(), time.process_time()
    for raw in messages:
        message_from_bytes(raw, policy=policy.default)
    return time.perf_counter() - started, time.process_time() - cpu


def run(n: int = 2000, database_url: str | None = None, redis_url: str | None = None) -> dict:
    """Store and process `n` messages in a scratch instance; returns the figures."""
    from rq import SimpleWorker
    from sqlalchemy import func, select

    from mailer import create_app, migrate
    from mailer.db import session
    from mailer.inbound import store
    from mailer.models import InboundMessage, InboundStatus
    from mailer.queue import get_queue, redis_connection
    from mailer.up import start_embedded_redis

    messages = make_messages(n)
    baseline, baseline_cpu = bare_parse(messages)
    with tempfile.TemporaryDirectory(prefix="mailer-bench-ingest-") as scratch, ExitStack() as stack:
        redis_url = redis_url or start_embedded_redis(stack, Path(scratch))
        os.environ["MAILER_INSTANCE_PATH"] = scratch
        app = create_app({"DATABASE_URL": database_url or f"sqlite:///{Path(scratch) / 'bench.sqlite'}",
                          "REDIS_URL": redis_url, "SECRET_KEY": "bench", "QUEUE_NAME": "bench-ingest"})
        with app.app_context():
            migrate.upgrade()
            get_queue().empty()
            started, cpu = time.perf_counter(), time.process_time()
            for start in range(0, n, 200):  # stored as an import or a poll hands them over: in batches
                store.store_many(messages[start:start + 200], "file")
                session.commit()
            stored, stored_cpu = time.perf_counter() - started, time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            # SimpleWorker runs the jobs in this process: their CPU time is this process's.
            SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True, logging_level="WARNING")
            processed, processed_cpu = time.perf_counter() - started, time.process_time() - cpu
            counts = dict(session.execute(select(InboundMessage.status, func.count())
                                          .group_by(InboundMessage.status)).all())
    total = stored + processed
    return {
        "messages": n,
        "ingest_msgs_per_s": round(n / total, 1),
        "store_msgs_per_s": round(n / stored, 1),
        "process_msgs_per_s": round(n / processed, 1),
        "bare_parse_msgs_per_s": round(n / baseline, 1),
        "ratio_to_bare_parse": round((n / total) / (n / baseline), 4),
        # CPU time, which a busy shared machine disturbs far less than the wall clock.
        "cpu_us_per_msg": round((stored_cpu + processed_cpu) / n * 1e6),
        "process_cpu_us_per_msg": round(processed_cpu / n * 1e6),
        "bare_parse_cpu_us_per_msg": round(baseline_cpu / n * 1e6),
        "cpu_ratio_to_bare_parse": round(baseline_cpu / (stored_cpu + processed_cpu), 4),
        "processed": counts.get(InboundStatus.PROCESSED, 0),
        "failed": counts.get(InboundStatus.FAILED, 0),
    }


def main(n: int, database_url: str | None = None, redis_url: str | None = None) -> str:
    """Run the benchmark and return its JSON line."""
    return json.dumps(run(n, database_url, redis_url))
