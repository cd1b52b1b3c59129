"""The fault suite: real `python worker.py` processes, PostgreSQL, a Redis server and a scripted
relay that records every message and misbehaves on command. Each case breaks something during a
send (or an inbound run), lets the system recover by itself, and counts every message:
targeted, delivered once, twice, never, and whether the campaign finished without a human.

It runs on PostgreSQL and a Redis server only (MAILER_TEST_DATABASE_URL, MAILER_TEST_REDIS_URL):
the faults are theirs (terminated connections, FLUSHALL, a restart). Under pytest-xdist each
process gets a database of its own (<name>_<worker id>), made here. Recipients per case:
MAILER_TEST_FAULTS_RECIPIENTS (default 2000)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from sqlalchemy import func, select

from tests.conftest import free_port, migrated, worker_database
from tests.test_worker import start_worker, wait_until, worker_env  # noqa: F401 (fixture)

RECIPIENTS = int(os.environ.get("MAILER_TEST_FAULTS_RECIPIENTS", "2000"))
_PG = (os.environ.get("MAILER_TEST_DATABASE_URL") or "").startswith("postgresql")
_REDIS = bool(os.environ.get("MAILER_TEST_REDIS_URL"))

pytestmark = pytest.mark.slow


def pytest_collection_modifyitems(config, items):
    if _PG and _REDIS:
        return
    skip = pytest.mark.skip(reason="the fault suite needs PostgreSQL (MAILER_TEST_DATABASE_URL) and a Redis "
                                   "server (MAILER_TEST_REDIS_URL): its faults are theirs")
    for item in items:
        if "tests/faults/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


def pytest_configure(config):
    # One results file for the whole run, shared by xdist's processes, printed at the end.
    os.environ.setdefault("MAILER_TEST_FAULTS_RESULTS", str(Path(tempfile.mkdtemp(prefix="mailer-faults-")) / "results.jsonl"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = Path(os.environ.get("MAILER_TEST_FAULTS_RESULTS", ""))
    if not path.is_file() or hasattr(config, "workerinput"):
        return
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    tr = terminalreporter
    tr.section("fault suite: every message counted")
    head = f"{'case':<54} {'targeted':>8} {'once':>6} {'twice':>5} {'never':>5} {'5xx':>4} {'cancel':>6} " \
           f"{'by itself':>9} {'secs':>5}"
    tr.write_line(head)
    for r in sorted(rows, key=lambda r: r["case"]):
        tr.write_line(f"{r['case']:<54} {r['targeted']:>8} {r['once']:>6} {r['twice']:>5} {r['never']:>5} "
                      f"{r['failed_5xx']:>4} {r['cancelled']:>6} {('yes' if r['finished'] else 'NO'):>9} "
                      f"{r['seconds']:>5.0f}")


# --- a database per xdist process -----------------------------------------------------------

@pytest.fixture(scope="session")
def database_url(worker_id):
    return migrated(worker_database(os.environ["MAILER_TEST_DATABASE_URL"], f"faults_{worker_id}"))


@pytest.fixture(scope="session")
def worker_id(request):
    return getattr(request.config, "workerinput", {}).get("workerid", "main")


# --- the scripted relay ---------------------------------------------------------------------

@dataclass
class FaultRelay:
    """A real SMTP server (aiosmtpd) that records every message it accepts, per recipient, and
    misbehaves on command."""

    port: int = 0
    received: Counter = field(default_factory=Counter)
    connections: int = 0
    refuse: str | None = None           # answer every new connection so ("421 ...") and close it
    temporary: dict = field(default_factory=dict)   # recipient -> how many 451s before accepting
    permanent: set = field(default_factory=set)     # recipients refused with 550
    drop: set = field(default_factory=set)          # recipients whose first DATA is cut off
    delay: float = 0.0                  # seconds before each 250
    stall: float = 0.0                  # the next message waits this long, once
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self.received.values())


class _Handler:
    def __init__(self, relay: FaultRelay):
        self.relay = relay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        relay = self.relay
        with relay.lock:
            if address in relay.permanent:
                return "550 5.1.1 No such user here"
            if relay.temporary.get(address, 0) > 0:
                relay.temporary[address] -= 1
                return "451 4.7.1 Greylisted, try again later"
            if address in relay.drop:
                relay.drop.discard(address)
                session.cut = True
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        relay = self.relay
        if getattr(session, "cut", False):
            session.cut = False
            server.transport.close()  # the connection drops mid-DATA: nothing accepted
            await asyncio.sleep(0)
            return "421 closing"
        if relay.stall:
            stall, relay.stall = relay.stall, 0.0
            await asyncio.sleep(stall)
        if relay.delay:
            await asyncio.sleep(relay.delay)
        with relay.lock:
            for rcpt in envelope.rcpt_tos:
                relay.received[rcpt] += 1
        return "250 2.0.0 Accepted"


class _Server(SMTP):
    async def _handle_client(self):
        relay = self.event_handler.relay
        relay.connections += 1
        if relay.refuse:
            await self.push(relay.refuse)
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def factory(self):
        return _Server(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def relay():
    relay = FaultRelay()
    controller = _Controller(_Handler(relay), hostname="127.0.0.1", port=free_port())
    controller.start()
    relay.port = controller.port
    relay.connections = 0
    yield relay
    controller.stop()


# --- a Redis server of the case's own (to flush or restart without touching anyone else's) ---

class OwnRedis:
    def __init__(self, workdir: Path, host: str = "127.0.0.1", password: str | None = None):
        self.host, self.port, self.dir, self.proc = host, free_port(), workdir, None
        self.password = password  # beyond the loopback Redis answers only with one (its protected mode)
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://{':' + self.password + '@' if self.password else ''}{self.host}:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(self.port), "--bind", self.host,
                                      "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                                      *(["--requirepass", self.password] if self.password else [])],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                try:
                    if redis.Redis.from_url(self.url).ping():
                        return
                except redis.exceptions.ConnectionError:
                    time.sleep(0.1)
            raise RuntimeError("redis-server did not start")
        except BaseException:
            self.stop()  # not left running for no one
            raise

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


# --- a case: members, a campaign, workers, a fault, and the count -----------------------------

@dataclass
class Case:
    name: str
    app: object
    relay: FaultRelay
    start_worker: object
    tmp_path: Path
    env_extra: dict = field(default_factory=dict)
    campaign_id: int | None = None
    emails: list[str] = field(default_factory=list)
    started: float = 0.0
    logs: list[Path] = field(default_factory=list)

    def env(self, **extra) -> dict:
        settings = dict(MAILER_BATCH_SIZE="200", MAILER_SEND_CHUNK="50", MAILER_BATCH_LOCK_TTL="3",
                        MAILER_RETRY_BASE_SECONDS="1", MAILER_RECONCILE_SECONDS="3", MAILER_MAX_ATTEMPTS="10",
                        MAILER_BASE_URL="https://mailer.example.org", MAILER_SENDER_ADDRESS="secretary@example.org",
                        MAILER_REPLY_ADDRESS="secretary@example.org")
        settings.update(self.env_extra)
        settings.update(extra)
        return worker_env(self.app, self.relay.port, self.tmp_path / "instance", **settings)

    def worker(self, **extra):
        proc, log = self.start_worker(self.env(**extra))
        self.logs.append(log)
        return proc

    def use_redis(self, url: str) -> None:
        """This case's own Redis server, for the test process and its workers alike."""
        self.app.config["REDIS_URL"] = url
        self.app.extensions["mailer.redis"] = None
        self.env_extra["MAILER_REDIS_URL"] = url

    def members(self, n: int = RECIPIENTS) -> None:
        from mailer.db import session
        from mailer.models import Member, MemberStatus

        self.emails = [f"m{i:05d}@example.org" for i in range(n)]
        session.execute(Member.__table__.insert(), [
            {"membership_number": f"F{i:06d}", "first_name": f"First{i}", "last_name": "Member", "email": e,
             "status": MemberStatus.ACTIVE.value, "notices_consent": True, "bulletins_consent": True,
             "email_health": "ok", "to_welcome": False, "public_id": f"{i:032x}"} for i, e in enumerate(self.emails)])
        session.commit()

    def send(self, make_campaign) -> int:
        from mailer.db import session
        from mailer.sending import campaigns

        campaign = make_campaign()
        campaigns.send_now(campaign, None)
        session.commit()
        self.campaign_id, self.started = campaign.id, time.monotonic()
        return campaign.id

    def counts(self) -> dict:
        from mailer.db import session
        from mailer.models import Delivery

        session.rollback()
        return dict(session.execute(select(Delivery.status, func.count()).where(
            Delivery.campaign_id == self.campaign_id).group_by(Delivery.status)).all())

    def status(self):
        from mailer.db import session
        from mailer.models import Campaign

        session.rollback()
        return session.scalar(select(Campaign.status).where(Campaign.id == self.campaign_id))

    def wait_delivered(self, n: int, timeout: float = 120) -> None:
        wait_until(lambda: self.relay.total >= n, timeout, f"{n} messages delivered ({self.relay.total} so far)",
                   self.logs[-1] if self.logs else None)

    def finish(self, timeout: float = 240, allowed_twice: int = 0, cancelled_ok: bool = False) -> dict:
        """Wait for the campaign to finish by itself, then count every message and check the rules."""
        from mailer.db import session
        from mailer.models import CampaignStatus, Delivery, DeliveryStatus

        active = {DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED}
        deadline = time.monotonic() + timeout
        finished = False
        while time.monotonic() < deadline:
            status = self.status()
            if status in (CampaignStatus.SENT, CampaignStatus.CANCELLED) and not (set(self.counts()) & active):
                finished = True
                break
            time.sleep(0.5)
        session.rollback()
        rows = session.execute(select(Delivery.email, Delivery.status, Delivery.error).where(
            Delivery.campaign_id == self.campaign_id)).all()
        got = self.relay.received
        failed = {r.email: r.error for r in rows if r.status is DeliveryStatus.FAILED}
        cancelled = {r.email for r in rows if r.status is DeliveryStatus.CANCELLED}
        never = [r.email for r in rows if got[r.email] == 0]
        result = {"case": self.name, "targeted": len(rows), "once": sum(1 for r in rows if got[r.email] == 1),
                  "twice": sum(1 for r in rows if got[r.email] >= 2), "never": len(never),
                  "failed_5xx": sum(1 for e in failed.values() if (e or "").startswith("5")),
                  "cancelled": len(cancelled), "finished": finished,
                  "seconds": round(time.monotonic() - self.started, 1),
                  "statuses": {k.value: v for k, v in self.counts().items()}}
        with open(os.environ["MAILER_TEST_FAULTS_RESULTS"], "a") as out:
            out.write(json.dumps(result) + "\n")
        print(result)
        log = "\n".join(p.read_text()[-3000:] for p in self.logs)
        assert finished, f"{self.name}: not finished by itself within {timeout} s: {result}\n{log}"
        assert result["twice"] <= allowed_twice, f"{self.name}: {result}"
        unexplained = [e for e in never if not (e in failed and (failed[e] or "").startswith("5"))
                       and not (cancelled_ok and e in cancelled)]
        assert not unexplained, f"{self.name}: never delivered, with no 5xx on record: {unexplained[:5]} {result}"
        assert not [e for e in failed if not (failed[e] or "").startswith("5")], f"{self.name}: {failed}"
        assert sum(1 for r in rows if r.status is DeliveryStatus.SENT) == sum(1 for r in rows if got[r.email] >= 1), \
            f"{self.name}: sent rows and delivered members differ: {result}"
        return result


@pytest.fixture
def case(request, app, relay, start_worker, tmp_path, make_campaign):
    c = Case(request.node.name.removeprefix("test_"), app, relay, start_worker, tmp_path)
    c.make_campaign = make_campaign
    redis_url = app.config["REDIS_URL"]
    yield c
    c.use_redis(redis_url)  # the shared Redis again, for the clean-up


@pytest.fixture
def app(make_app, relay):
    app = make_app(MAIL_PORT=relay.port, BASE_URL="https://mailer.example.org", SENDER_ADDRESS="secretary@example.org",
                   REPLY_ADDRESS="secretary@example.org", BATCH_SIZE=200, SEND_CHUNK=50, BATCH_LOCK_TTL=3,
                   RETRY_BASE_SECONDS=1, MAX_ATTEMPTS=10)
    with app.app_context():
        yield app


@pytest.fixture
def make_campaign(app, make_officer):
    from mailer.compose import drafts
    from mailer.db import session
    from mailer.models import BodyFormat, Stream

    officer = make_officer("sender@example.org")

    def factory():
        campaign = drafts.create(officer, stream=Stream.BULLETINS)
        drafts.update(officer, campaign, {"body": "Dear {{ member.first_name }},\n\nNews.", "subject": "News",
                                          "body_format": BodyFormat.MARKDOWN.value, "segment": {}})
        session.commit()
        return campaign

    return factory
