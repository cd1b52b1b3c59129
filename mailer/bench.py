"""`mailer bench send`: how fast the real sending pipeline is, against what the machine allows.

In one run, on a scratch database and Redis, it seeds N members, starts W real RQ worker
processes (`python -m mailer worker`) and times a whole campaign send through them, from the
officer's "send now" to the campaign being marked sent. Then, over the same number of SMTP
connections (W) and the same SMTP sink, it times two baselines on the first
`min(N, --baseline-sample)` members:

- the ceiling: the very message bytes the pipeline would send, rendered beforehand, handed to
  `smtplib.SMTP.sendmail` in W processes (nothing but SMTP is timed);
- the naive loop from Flask-Mail's documentation: load the members, and for each one render the
  campaign, make a `flask_mail.Message` and `conn.send` it, in W processes.

The sink is postfix's C `smtp-sink` (fast enough not to be what is measured), fetched once with
`apt-get download postfix` into a cache folder; where that cannot be had, an aiosmtpd sink in
this process (it tops out near 460 messages/s, so the ratios then say little).

The last line printed is one JSON object (see `_result`).

(Over 400 lines with a reason: one command, read top to bottom as one experiment (scratch parts,
seed, the timed pipeline, the two baselines over the same sink, the report); it is a tool run by
hand and in CI, loaded only when `mailer bench` runs, and splitting it would part each baseline from
the measurement it is compared with.)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import click
from flask.cli import AppGroup

from mailer.bench_import import command_options as import_options
from mailer.bench_scale import command_options as scale_options
from mailer.bench_start import command_options as start_options
from mailer.up import start_embedded_redis

bench_cli = AppGroup("bench", help="Benchmarks on scratch data (never the app's own database).")

SINK_PACKAGE = "postfix"


def _say(message: str) -> None:
    """Progress goes to stderr, so the JSON line is the last thing on stdout."""
    click.echo(message, err=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(100)  # the greeting: the server is really serving
                return True
        except OSError:
            time.sleep(0.05)
    return False


# --- sinks ----------------------------------------------------------------------------------

class SmtpSink:
    """postfix's smtp-sink, throwing every message away and counting them (`-c`).

    How duplicates are found: smtp-sink cannot report recipients without dumping every message
    to disk (`-d`/`-D`, which slows it enough to cap the ceiling), so its running message count is
    used instead. The pipeline sends one recipient per message and records a delivery as sent
    only once the sink accepted a message for that member, so every member with a sent delivery
    received at least one message; the messages received beyond the sent deliveries
    (received - recorded) are therefore at least the duplicates, and exactly them whenever every
    member is recorded sent. The count is read before and after each phase on the one sink."""

    name = "postfix smtp-sink"

    def __init__(self, binary: Path, workdir: Path):
        self.port = _free_port()
        self.log = workdir / "smtp-sink.out"
        env = dict(os.environ, LD_LIBRARY_PATH=str(binary.parents[2] / "usr/lib/postfix"))
        args = [str(binary), "-c"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]  # it refuses to run as root
        args += [f"127.0.0.1:{self.port}", "256"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        if not _wait_for_port(self.port):
            self.stop()
            raise RuntimeError(f"smtp-sink did not start: {self.log.read_text(errors='replace')[-500:]}")

    def received(self) -> int:
        """Messages received so far (the last `mesg=` of its running counter)."""
        counts = re.findall(rb"mesg=(\d+)", self.log.read_bytes())
        return int(counts[-1]) if counts else 0

    def recipients_seen(self) -> int | None:
        return None  # not known: see the class docstring

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class AiosmtpdSink:
    """The fallback: an aiosmtpd server in this process that counts messages per recipient, so
    duplicates are exact here. It is slow (a few hundred messages/s) and shares this process."""

    name = "aiosmtpd (fallback: smtp-sink unavailable)"

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.lock = threading.Lock()
        self.messages = 0
        self.per_rcpt: Counter[str] = Counter()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.messages += 1
                    sink.per_rcpt.update(a.lower() for a in envelope.rcpt_tos)
                return "250 OK"

        from aiosmtpd.smtp import SMTP

        class LenientSMTP(SMTP):
            # Flask-Mail sends pure-ASCII HTML as 7bit, unwrapped (MJML's is one line of 6 KB):
            # take it, as smtp-sink (and Postfix) do, so the naive loop can be timed at all.
            line_length_limit = 1 << 20

        class LenientController(Controller):
            def factory(self):
                return LenientSMTP(self.handler, **self.SMTP_kwargs)

        self.port = _free_port()
        self.controller = LenientController(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def received(self) -> int:
        with self.lock:
            return self.messages

    def recipients_seen(self) -> int | None:
        with self.lock:
            return len(self.per_rcpt)

    def reset(self) -> None:
        with self.lock:
            self.messages = 0
            self.per_rcpt.clear()

    def stop(self) -> None:
        self.controller.stop()


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mailer-bench" / SINK_PACKAGE


def find_smtp_sink(fetch: bool = True) -> Path | None:
    """smtp-sink from the cache, or fetched there with `apt-get download postfix` + `dpkg -x`."""
    on_path = shutil.which("smtp-sink")
    if on_path:
        return Path(on_path).resolve()
    cache = _cache_dir()
    binary = cache / "root/usr/sbin/smtp-sink"
    if binary.exists():
        return binary
    if not fetch or not (shutil.which("apt-get") and shutil.which("dpkg")):
        return None
    cache.mkdir(parents=True, exist_ok=True)

    def download() -> bool:
        for old in cache.glob("postfix_*.deb"):
            old.unlink()
        done = subprocess.run(["apt-get", "download", SINK_PACKAGE], cwd=cache, capture_output=True, text=True)
        return done.returncode == 0 and any(cache.glob("postfix_*.deb"))

    _say(f"Fetching postfix's smtp-sink: apt-get download {SINK_PACKAGE} (into {cache}) ...")
    if not download():
        _say("  not found in apt's package lists: running apt-get update first ...")
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
        if not download():
            _say("  apt-get download postfix failed.")
            return None
    deb = next(cache.glob("postfix_*.deb"))
    unpacked = subprocess.run(["dpkg", "-x", str(deb), str(cache / "root")], capture_output=True, text=True)
    if unpacked.returncode != 0 or not binary.exists():
        _say(f"  dpkg -x failed: {unpacked.stderr.strip()[-300:]}")
        return None
    _say(f"  smtp-sink ready: {binary}")
    return binary


def start_sink(choice: str, workdir: Path):
    if choice in ("auto", "smtp-sink"):
        binary = find_smtp_sink()
        if binary is not None:
            try:
                return SmtpSink(binary, workdir)
            except (OSError, RuntimeError) as exc:
                if choice == "smtp-sink":
                    raise click.ClickException(f"smtp-sink could not start: {exc}") from None
                _say(f"smtp-sink could not start ({exc}).")
        elif choice == "smtp-sink":
            raise click.ClickException("smtp-sink is not available (apt-get download postfix failed).")
        _say("Falling back to an aiosmtpd sink: far slower than the pipeline, so the ratios say little.")
    return AiosmtpdSink()


# --- scratch parts --------------------------------------------------------------------------

def seed(n: int) -> tuple[int, int]:
    """A secretary, five branches, N members and a weekly bulletin campaign to all of them.
    Returns (campaign id, officer id)."""
    officer_id = seed_officer()
    add_members(0, n)
    return new_campaign(officer_id), officer_id


def seed_officer() -> int:
    """The secretary who sends, and the five branches members belong to."""
    from sqlalchemy import insert

    from mailer.db import session, utcnow
    from mailer.models import Branch, Role
    from mailer.officers.service import create_officer

    officer, _ = create_officer("bench-secretary@example.org", Role.CLP_SECRETARY,
                                password=secrets.token_urlsafe(16))
    now = utcnow()
    session.execute(insert(Branch.__table__), [{"name": f"Bench branch {b}", "created_at": now} for b in range(5)])
    session.commit()
    return officer.id


def add_members(start: int, end: int) -> None:
    """Members number `start` to `end - 1`, straight into the table through the driver (COPY on
    PostgreSQL, executemany on SQLite: the scale benchmark's loader), never through the ORM."""
    from mailer.bench_scale import Loader
    from mailer.db import engine, session, utcnow
    from mailer.models import Branch

    now = utcnow()
    branch_ids = [b.id for b in session.query(Branch.id).order_by(Branch.id)]
    session.commit()
    wards = ["Castle", "Abbey", "Riverside", "Northgate", "St Mary's", "Hillside", "Market", "Parkland"]
    loader = Loader(engine())
    stamp = loader.ts(now)
    try:
        loader.load("members", ["membership_number", "first_name", "last_name", "email", "postcode", "ward",
                                "polling_district", "branch_id", "status", "notices_consent", "bulletins_consent",
                                "email_health", "to_welcome", "public_id", "created_at", "updated_at"],
                    ((f"B{i:07d}", f"First{i}", f"Last{i}", f"member{i}@bench.example.org", "AN1 1AA",
                      wards[i % len(wards)], f"PD{i % 40}", branch_ids[i % len(branch_ids)], "active", True, True,
                      "ok", False, secrets.token_hex(16), stamp, stamp) for i in range(start, end)))
    finally:
        loader.close()


def new_campaign(officer_id: int) -> int:
    """The weekly bulletin as it comes (about 10 KB as sent, most of it MJML's HTML), to every member."""
    from mailer.compose import drafts
    from mailer.db import session
    from mailer.models import Officer

    campaign = drafts.create(session.get(Officer, officer_id), "weekly-bulletin")
    session.commit()
    return campaign.id


def _worker_env(settings: dict[str, str]) -> dict[str, str]:
    from mailer import PACKAGE_DIR

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(settings)
    # This checkout's code, whatever the workers' working folder.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_DIR.parent), env.get("PYTHONPATH")) if p)
    return env


def start_workers(stack: ExitStack, count: int, env: dict[str, str], workdir: Path) -> list[subprocess.Popen]:
    """W real worker processes, `python -m mailer worker`, as production runs them; each is
    stopped with RQ's warm shutdown (SIGTERM) at the end, or killed with its work-horse."""
    import psutil

    procs = []
    for w in range(count):
        log = open(workdir / f"worker{w}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "mailer", "worker"], env=env, cwd=workdir, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        procs.append(proc)

        def stop(proc=proc):
            if proc.poll() is not None:
                return
            try:
                kids = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                kids = []
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for kid in kids:
                try:
                    kid.kill()
                except psutil.NoSuchProcess:
                    pass

        stack.callback(stop)
    return procs


def wait_for_workers(procs, count: int, workdir: Path, timeout: float = 120) -> None:
    from rq import Worker

    from mailer.queue import get_queue, redis_connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise click.ClickException("a worker stopped at start:\n" + _worker_logs(workdir))
        if Worker.count(connection=redis_connection(), queue=get_queue()) >= count:
            return
        time.sleep(0.1)
    raise click.ClickException("the workers did not start in time:\n" + _worker_logs(workdir))


def _worker_logs(workdir: Path) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted(workdir.glob("worker*.log")))


class RssSampler(threading.Thread):
    """Peak resident memory of any single process of the worker trees (a worker, its scheduler,
    the work-horse it forks per job), sampled every 50 ms while the send runs. A work-horse's
    pages shared with its parent count in full, so this overstates rather than understates.
    Children are found through /proc/PID/task/TID/children: psutil's children() reads every
    process on the machine, which at this rate would itself take a core from the workers."""

    def __init__(self, procs):
        super().__init__(daemon=True)
        self.roots = [p.pid for p in procs]
        self.peak = 0
        self.stopping = threading.Event()

    @staticmethod
    def _children(pid: int) -> list[int]:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return []
        kids = []
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    kids += [int(k) for k in fh.read().split()]
            except OSError:
                pass
        return kids

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def _tree(self, pid: int) -> list[int]:
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += self._children(p)
        return out

    def run(self):
        while not self.stopping.is_set():
            for root in self.roots:
                for pid in self._tree(root):
                    self.peak = max(self.peak, self._rss(pid))
            self.stopping.wait(0.05)

    def stop(self) -> float:
        self.stopping.set()
        self.join()
        return self.peak / 2**20


# --- the three measurements -----------------------------------------------------------------

def run_pipeline(campaign_id: int, officer_id: int, n: int, procs, workdir: Path, timeout: float) -> float:
    """Send the campaign for real; seconds from "send now" to the campaign marked sent."""
    from sqlalchemy import func, select

    from mailer.db import session
    from mailer.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Officer
    from mailer.sending import campaigns

    campaign, officer = session.get(Campaign, campaign_id), session.get(Officer, officer_id)
    started = time.perf_counter()
    campaigns.send_now(campaign, officer)
    session.commit()  # as the "Send now" request does: its start job is queued after the commit
    last_done, last_change, last_check = -1, time.monotonic(), 0.0
    while True:
        session.rollback()  # a fresh read each time
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        if status is CampaignStatus.SENT:
            return time.perf_counter() - started
        if status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
            raise click.ClickException(f"the campaign ended {status.value}:\n" + _worker_logs(workdir))
        if any(p.poll() is not None for p in procs):
            raise click.ClickException("a worker died during the send:\n" + _worker_logs(workdir))
        if time.monotonic() - last_check > 5:  # progress, rarely: counting rows takes CPU from the workers
            last_check = time.monotonic()
            done = session.scalar(select(func.count()).where(Delivery.campaign_id == campaign_id,
                                                             Delivery.status != DeliveryStatus.QUEUED))
            if done != last_done:
                last_done, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > timeout:
                raise click.ClickException(f"no progress for {timeout:.0f} s ({done} of {n} done):\n"
                                           + _worker_logs(workdir))
        time.sleep(0.05)


def _sample_ids(n: int) -> list[int]:
    from sqlalchemy import select

    from mailer.db import session
    from mailer.models import Member

    return list(session.scalars(select(Member.id).order_by(Member.id).limit(n)))


def _slices(items: list, parts: int) -> list[list]:
    size, extra = divmod(len(items), parts)
    out, at = [], 0
    for p in range(parts):
        take = size + (1 if p < extra else 0)
        out.append(items[at:at + take])
        at += take
    return out


def _timed_in_processes(workers: int, target, args_per_worker: list[tuple]) -> float:
    """Run `target(barrier, *args)` in one forked process per worker; each connects, waits at the
    barrier, then sends. Seconds from the barrier's release to the last one finishing."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(workers + 1)
    procs = [ctx.Process(target=target, args=(barrier, *args)) for args in args_per_worker]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    if any(p.exitcode for p in procs):
        raise click.ClickException("a baseline process failed (see above)")
    return elapsed


def _ceiling_worker(barrier, port: int, envelopes: list[tuple[str, str, bytes]]) -> None:
    import smtplib

    conn = smtplib.SMTP("127.0.0.1", port)
    conn.ehlo()
    barrier.wait(timeout=120)
    for sender, recipient, data in envelopes:
        conn.sendmail(sender, [recipient], data)
    conn.quit()


def prerender(campaign_id: int, ids: list[int]) -> list[tuple[str, str, bytes]]:
    """The pipeline's own message bytes for the sample members (delivery ids stood in by member ids)."""
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    from mailer.db import session
    from mailer.mail import dkim_signer
    from mailer.models import Campaign, Member
    from mailer.compose.message import CampaignMessages

    messages = CampaignMessages(session.get(Campaign, campaign_id))
    sign = dkim_signer() or (lambda data: data)  # as the transport signs them
    out = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for m in session.scalars(select(Member).options(joinedload(Member.branch)).where(Member.id.in_(chunk))
                                 .order_by(Member.id)):
            env = messages.build(m, m.id)
            out.append((env.sender, env.recipient, sign(env.data)))
        session.expunge_all()
    return out


def _naive_worker(barrier, app, campaign_id: int, ids: list[int]) -> None:
    """Flask-Mail's documented bulk loop: `with mail.connect() as conn: for user in users:
    conn.send(Message(...))`, each member's message rendered from the compiled campaign."""
    from flask import current_app
    from flask_mail import Message
    from sqlalchemy import select

    from mailer.compose import personal
    from mailer.compose.render import compile_campaign
    from mailer.db import session
    from mailer.mail import mail
    from mailer.models import Campaign, Member

    with app.app_context():
        cfg = current_app.config
        campaign = session.get(Campaign, campaign_id)
        compiled = compile_campaign(campaign)  # compiled once: generous to the naive loop
        list_id = f'"{cfg["ORG_NAME"]} {campaign.stream.value}" <{campaign.stream.value}.example.org>'
        with mail.connect() as conn:
            barrier.wait(timeout=120)
            users = session.scalars(select(Member).where(Member.id.in_(ids)).order_by(Member.id)).all()
            for user in users:
                context = personal.context(campaign, user)
                subject, html, text = compiled.render(context)
                conn.send(Message(subject=subject, recipients=[(user.full_name, user.email)], body=text, html=html,
                                  sender=(campaign.from_name, cfg["SENDER_ADDRESS"]), reply_to=cfg["REPLY_ADDRESS"],
                                  extra_headers={"List-Id": list_id,
                                                 "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
                                                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}))


def run_baseline(kind: str, app, sink, campaign_id: int, ids: list[int], workers: int,
                 envelopes: list | None = None) -> tuple[float, int]:
    """(seconds, messages the sink received) for the ceiling or the naive loop over `ids`."""
    from mailer.db import session

    session.close()  # the forked processes must not share this process's connection
    before = sink.received()
    parts = _slices(ids, workers) if kind == "naive" else _slices(envelopes, workers)
    if kind == "naive":
        app.extensions["mail"].server, app.extensions["mail"].port = "127.0.0.1", sink.port
        elapsed = _timed_in_processes(workers, _naive_worker, [(app, campaign_id, part) for part in parts])
    else:
        elapsed = _timed_in_processes(workers, _ceiling_worker, [(sink.port, part) for part in parts])
    return elapsed, _settled_count(sink) - before


def _wait_idle(timeout: float = 30) -> None:
    from rq import Worker

    from mailer.queue import get_queue, redis_connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = Worker.all(connection=redis_connection(), queue=get_queue())
        if all(w.get_state() != "busy" for w in workers):
            return
        time.sleep(0.05)


def _workers_cpu(procs) -> float:
    """CPU seconds of the worker processes, with their reaped work-horses and scheduler."""
    import psutil

    total = 0.0
    for p in procs:
        try:
            t = psutil.Process(p.pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children (the baselines' processes)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _settled_count(sink, wait: float = 0.3) -> int:
    """The sink's count once it stops moving (its counter is updated as each session ends)."""
    last = sink.received()
    while True:
        time.sleep(wait)
        now = sink.received()
        if now == last:
            return now
        last = now


# --- the command ----------------------------------------------------------------------------

def _sizes(ctx, param, values) -> list[int]:
    """-n 10000 -n 100000, or -n 10000,100000: each size once, smallest first."""
    out = set()
    for value in values:
        for part in str(value).replace("_", "").split(","):
            if part.strip():
                try:
                    size = int(part)
                except ValueError:
                    raise click.BadParameter(f"{part!r} is not a number of recipients") from None
                if size < 1:
                    raise click.BadParameter("a size is at least 1")
                out.add(size)
    return sorted(out) or [10_000]


@bench_cli.command("send", with_appcontext=False)
@click.option("--recipients", "-n", "sizes", multiple=True, callback=_sizes, metavar="N[,N...]",
              help="Members to send to (default 10,000). Repeat it, or give several separated by commas, to "
              "measure several sizes in one run: smallest first, each a campaign of its own to that many members.")
@click.option("--workers", "-w", type=click.IntRange(1), default=2, show_default=True,
              help="Worker processes, and SMTP connections for the baselines.")
@click.option("--baseline-sample", type=click.IntRange(1), default=10_000, show_default=True,
              help="The ceiling is timed on the first min(N, this) members, just before and just after each size's send.")
@click.option("--naive-sample", type=click.IntRange(0), default=2_000, show_default=True,
              help="Flask-Mail's naive loop is timed once, on the first min(N, this) members (0: not at all).")
@click.option("--sink", "sink_choice", type=click.Choice(["auto", "smtp-sink", "aiosmtpd"]), default="auto",
              show_default=True, help="The SMTP server that receives everything.")
@click.option("--database-url", help="An empty database to use instead of a scratch SQLite file.")
@click.option("--redis-url", help="A Redis to use instead of an embedded one: give it a database number of its "
              "own (the queue name is private to the run, but relay limits and journals are keyed by campaign).")
@click.option("--timeout", type=float, default=120, show_default=True, help="Give up after this many seconds "
              "without progress.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A setting for the scratch app and its workers, e.g. --set SEND_CHUNK=100 (repeatable).")
@click.option("--keep", is_flag=True, help="Keep the scratch folder (database, worker logs) and print where.")
@click.option("--json", "as_json", is_flag=True, help="Print only one JSON object on stdout, as the last line.")
def bench_send(sizes: list[int], workers: int, baseline_sample: int, naive_sample: int, sink_choice: str,
               database_url: str | None, redis_url: str | None, timeout: float, overrides: tuple[str, ...], keep: bool,
               as_json: bool) -> None:
    """Time real campaign sends (N members each, W worker processes) against the SMTP ceiling,
    measured beside each, and Flask-Mail's naive loop, on scratch data."""
    workdir = Path(tempfile.mkdtemp(prefix="mailer-bench-"))
    os.chmod(workdir, 0o755)
    try:
        with ExitStack() as stack:
            result = _bench(stack, workdir, sizes, workers, baseline_sample, naive_sample, sink_choice, database_url,
                            redis_url, timeout, _settings_from(overrides))
    finally:
        if keep:
            _say(f"Scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if not as_json:
        click.echo(_table(result))
    click.echo(json.dumps(result))


def _table(result: dict) -> str:
    """The per-size figures as a small table, for people (the JSON line follows it)."""
    head = ("recipients", "pipeline/s", "ceiling/s", "ratio", "CPU us/msg pipeline", "ceiling", "x ceiling",
            "recorded", "duplicates")
    rows = [head] + [(f"{r['recipients']:,}", f"{r['pipeline_msgs_per_s']:,.0f}", f"{r['ceiling_msgs_per_s']:,.0f}",
                      f"{r['ratio_to_ceiling']:.3f}", f"{r['pipeline_cpu_us_per_msg']:,}",
                      f"{r['ceiling_cpu_us_per_msg']:,}", f"{r['cpu_ratio_to_ceiling']:.2f}",
                      f"{r['deliveries_recorded']:,}", str(r["duplicates"])) for r in result["sizes"]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    naive = result.get("naive")
    if naive:
        lines.append(f"naive Flask-Mail loop: {naive['msgs_per_s']:,.0f}/s on {naive['sample']:,} members, "
                     f"{naive['cpu_us_per_msg']:,} us CPU per message")
    lines.append(f"load average {result['load_average']} -> {result['load_average_after']}; sink: {result['sink']}")
    return "\n".join(lines)


def _settings_from(overrides: tuple[str, ...]) -> dict[str, str]:
    """--set KEY=VALUE as environment variables (MAILER_KEY, or MAIL_* as it is)."""
    from mailer.config import setting

    out = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint="--set")
        try:
            out[setting(key.strip().upper()).env] = value
        except KeyError:
            raise click.BadParameter(f"unknown setting {key!r} (see `mailer config`)", param_hint="--set") from None
    return out


def _ceiling(app, sink, campaign_id: int, ids: list[int], workers: int, envelopes: list) -> tuple[float, int, float]:
    """(seconds, messages received, CPU seconds) of the ceiling over the pre-rendered `envelopes`."""
    cpu_before = _children_cpu()
    seconds, received = run_baseline("ceiling", app, sink, campaign_id, ids, workers, envelopes)
    return seconds, received, _children_cpu() - cpu_before


def _bench(stack: ExitStack, workdir: Path, sizes: list[int], workers: int, baseline_sample: int, naive_sample: int,
           sink_choice: str, database_url: str | None, redis_url: str | None, timeout: float,
           extra: dict[str, str]) -> dict:
    from sqlalchemy import func, select

    from mailer import create_app, migrate
    from mailer.db import engine, session
    from mailer.models import Delivery, DeliveryStatus, Member

    load_before = [round(x, 2) for x in os.getloadavg()]
    sink = start_sink(sink_choice, workdir)
    stack.callback(sink.stop)
    _say(f"SMTP sink: {sink.name} on 127.0.0.1:{sink.port}")

    instance = workdir / "instance"
    instance.mkdir()
    settings = {
        "MAILER_DATABASE_URL": database_url or f"sqlite:///{workdir / 'bench.sqlite'}",
        "MAILER_REDIS_URL": redis_url or start_embedded_redis(stack, workdir),
        "MAILER_QUEUE_NAME": f"bench-{os.getpid()}-{secrets.token_hex(3)}",
        "MAILER_SECRET_KEY": secrets.token_hex(32),
        "MAILER_INSTANCE_PATH": str(instance),
        **extra,
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(sink.port),
    }
    # This process's scratch app reads exactly what the workers read, and nothing of the shell's.
    for name in [k for k in os.environ if k.startswith(("MAILER_", "MAIL_"))]:
        del os.environ[name]
    os.environ.update(settings)
    app = create_app()
    stack.enter_context(app.app_context())
    stack.callback(lambda: engine().dispose())
    if redis_url:
        stack.callback(_clean_redis)

    migrate.upgrade()
    if session.scalar(select(func.count()).select_from(Member)):
        raise click.ClickException("--database-url must name an empty database: this one has members.")
    officer_id = seed_officer()

    procs = start_workers(stack, workers, _worker_env(settings), workdir)
    wait_for_workers(procs, workers, workdir)
    _say(f"{workers} worker process(es) ready.")

    sampler = RssSampler(procs)
    sampler.start()
    results, seeded, size_bytes, naive = [], 0, 0, None
    try:
        for n in sizes:
            t = time.perf_counter()
            add_members(seeded, n)
            seeded = n
            campaign_id = new_campaign(officer_id)
            _say(f"[{n:,}] seeded up to {n:,} members in {time.perf_counter() - t:.1f} s; a campaign to all of them.")

            sample = min(n, baseline_sample)
            ids = _sample_ids(sample)
            envelopes = prerender(campaign_id, ids)
            size_bytes = sum(len(e[2]) for e in envelopes) / len(envelopes)
            before_s, before_received, before_cpu = _ceiling(app, sink, campaign_id, ids, workers, envelopes)
            _say(f"[{n:,}] ceiling before: {sample / before_s:.0f}/s")

            load = [round(x, 2) for x in os.getloadavg()]
            if hasattr(sink, "reset"):
                sink.reset()  # a sink that counts recipients counts the pipeline's alone
            received_before, cpu_before = sink.received(), _workers_cpu(procs)
            pipeline_s = run_pipeline(campaign_id, officer_id, n, procs, workdir, timeout)
            _wait_idle()  # the last work-horses exit (and are counted) just after the campaign is marked sent
            pipeline_cpu = _workers_cpu(procs) - cpu_before
            received = _settled_count(sink) - received_before
            seen = sink.recipients_seen()
            _say(f"[{n:,}] pipeline: {n / pipeline_s:.0f}/s ({pipeline_s:.1f} s)")

            after_s, after_received, after_cpu = _ceiling(app, sink, campaign_id, ids, workers, envelopes)
            del envelopes
            _say(f"[{n:,}] ceiling after: {sample / after_s:.0f}/s")

            session.rollback()
            recorded = session.scalar(select(func.count(func.distinct(Delivery.member_id))).where(
                Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.SENT))
            # Messages beyond one per member: exact where the sink knows recipients (aiosmtpd); with
            # smtp-sink, received minus members recorded sent (see SmtpSink for why that is sound).
            duplicates = received - (recorded if seen is None else seen)
            # The ceiling's rate: both measurements together (the same messages twice, around the send).
            ceiling_rate = 2 * sample / (before_s + after_s)
            ceiling_cpu_us = (before_cpu + after_cpu) / (2 * sample) * 1e6
            pipeline_rate, pipeline_cpu_us = n / pipeline_s, pipeline_cpu / n * 1e6
            results.append({
                "recipients": n,
                "pipeline_seconds": round(pipeline_s, 3),
                "pipeline_msgs_per_s": round(pipeline_rate, 1),
                "ceiling_msgs_per_s": round(ceiling_rate, 1),
                "ceiling_before_msgs_per_s": round(sample / before_s, 1),
                "ceiling_after_msgs_per_s": round(sample / after_s, 1),
                "ratio_to_ceiling": round(pipeline_rate / ceiling_rate, 3),
                "pipeline_cpu_us_per_msg": round(pipeline_cpu_us),
                "ceiling_cpu_us_per_msg": round(ceiling_cpu_us),
                "cpu_ratio_to_ceiling": round(pipeline_cpu_us / ceiling_cpu_us, 2),
                "baseline_sample": sample,
                "deliveries_recorded": recorded,
                "sink_received": received,
                "baseline_received": before_received + after_received,
                "duplicates": duplicates,
                "load_average": load,
            })
            if naive is None and naive_sample:
                naive_ids = ids[:min(n, naive_sample)]
                cpu_before = _children_cpu()
                naive_s, naive_received = run_baseline("naive", app, sink, campaign_id, naive_ids, workers)
                naive = {"sample": len(naive_ids), "msgs_per_s": round(len(naive_ids) / naive_s, 1),
                         "cpu_us_per_msg": round((_children_cpu() - cpu_before) / len(naive_ids) * 1e6),
                         "received": naive_received}
                _say(f"Naive Flask-Mail loop: {naive['msgs_per_s']:.0f}/s on {len(naive_ids)} members.")
    finally:
        peak_rss = sampler.stop()

    first = results[0]
    out = {
        "sizes": results,
        "workers": workers,
        **({"settings": extra} if extra else {}),
        "message_bytes": round(size_bytes),
        "min_ratio_to_ceiling": min(r["ratio_to_ceiling"] for r in results),
        "max_cpu_ratio_to_ceiling": max(r["cpu_ratio_to_ceiling"] for r in results),
        "naive": naive,
        "peak_worker_rss_mb": round(peak_rss, 1),
        "sink": sink.name,
        "load_average": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    if naive:
        out["ratio_to_naive"] = round(first["pipeline_msgs_per_s"] / naive["msgs_per_s"], 3)
    return out


def _clean_redis() -> None:
    """On a given Redis, remove the bench's queue (its name is private to this run)."""
    from flask import current_app

    from mailer.queue import get_queue, redis_connection

    get_queue().empty()
    conn = redis_connection()
    for key in conn.scan_iter(f"rq:*{current_app.config['QUEUE_NAME']}*"):
        conn.delete(key)


@bench_cli.command("ingest", with_appcontext=False)
@click.option("--messages", "-n", type=click.IntRange(1), default=2_000, show_default=True,
              help="How many generated inbound messages to store and process.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def bench_ingest(messages: int, as_json: bool) -> None:
    """Inbound mail: store + process (a real RQ worker, real Redis) against bare parsing, same messages."""
    from mailer.inbound import benchmark

    result = benchmark.run(messages)
    if not as_json:
        click.echo(f"{messages} messages: {result['ingest_msgs_per_s']}/s stored and processed; "
                   f"bare email.message_from_bytes {result['bare_parse_msgs_per_s']}/s")
    click.echo(json.dumps(result))



@bench_cli.command("scale", with_appcontext=False)
@scale_options  # defined with the benchmark; that module imports nothing heavy until it runs
def bench_scale(**kwargs) -> None:
    """Every page an officer uses, timed at 100,000 members and a million deliveries, on a scratch
    SQLite file and (with --database-url) an empty PostgreSQL database, interleaved."""
    from mailer import bench_scale as scale

    scale.main(**kwargs)


@bench_cli.command("import", with_appcontext=False)
@import_options  # defined with the benchmark; that module imports nothing heavy until it runs
def bench_import(**kwargs) -> None:
    """Importing an N-row membership export into an empty database, then next month's re-export
    (same members, some moved, some lapsed): wall, CPU and peak memory of each."""
    from mailer import bench_import as benchmark

    benchmark.main(**kwargs)


@bench_cli.command("start", with_appcontext=False)
@start_options
def bench_start(**kwargs) -> None:
    """The send start alone (snapshot, batch numbers, queuing) at 100,000 recipients, on a scratch
    SQLite file and (with --database-url) an empty PostgreSQL database: wall, CPU and the
    database's own time, a few runs."""
    from mailer import bench_start as start

    start.main(**kwargs)
