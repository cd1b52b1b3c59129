"""Fixtures for sending: campaigns, a scripted SMTP server, and running the queue for real."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from rq import SimpleWorker
from rq.scheduler import RQScheduler

from mailer.compose import drafts
from mailer.db import session
from mailer.models import BodyFormat, Campaign, CampaignStatus, Stream
from tests.conftest import free_port


@dataclass
class ScriptedSMTP:
    """A real SMTP server whose answers are scripted per recipient: a list of replies used in
    turn ("451 ...", "550 ...", "drop" to cut the connection during DATA); then 250."""

    script: dict[str, list[str]] = field(default_factory=dict)
    accepted: list = field(default_factory=list)     # (recipient, parsed message)
    attempts: list[str] = field(default_factory=list)
    port: int = 0
    delay: float = 0.0  # seconds to think before accepting each message
    pipelining: bool = False  # offer PIPELINING (RFC 2920): the sender then sends MAIL, RCPT, DATA at once
    refuse: str | None = None  # a greeting such as "421 busy": every connection is answered so and closed
    connections: int = 0  # connections opened to this relay

    def received_by(self, address: str) -> list:
        return [m for rcpt, m in self.accepted if rcpt == address]


class _Handler:
    def __init__(self, smtp: ScriptedSMTP):
        self.smtp, self.lock = smtp, threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.smtp.pipelining:  # as Postfix, Exchange and Gmail offer it
            responses.insert(-1, "250-PIPELINING")
        return responses

    def _next(self, address: str) -> str | None:
        with self.lock:
            replies = self.smtp.script.get(address)
            return replies.pop(0) if replies else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.smtp.attempts.append(address)
        reply = self._next(address)
        if reply and reply != "drop":
            return reply
        if reply == "drop":
            session.drop_after_data = True
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if getattr(session, "drop_after_data", False):
            session.drop_after_data = False
            server.transport.close()  # the relay goes away mid-message
            await asyncio.sleep(0)
            return "421 closing"
        if self.smtp.delay:
            await asyncio.sleep(self.smtp.delay)
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.smtp.accepted.append((rcpt, message))
        return "250 Accepted"


class _Server(SMTP):
    """aiosmtpd's server, counting connections and refusing them at the greeting when told to."""

    async def _handle_client(self):
        smtp = self.event_handler.smtp
        smtp.connections += 1
        if smtp.refuse:
            await self.push(smtp.refuse)
            self.transport.close()
            return
        await super()._handle_client()


class ScriptedController(Controller):
    def factory(self):
        return _Server(self.handler, **self.SMTP_kwargs)


@pytest.fixture(params=["one-by-one", "pipelining"])
def scripted_smtp(request):
    """Every sending test runs against a relay without PIPELINING, and again against one with it."""
    smtp = ScriptedSMTP(pipelining=request.param == "pipelining")
    controller = ScriptedController(_Handler(smtp), hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp.port = controller.port
    yield smtp
    controller.stop()


@pytest.fixture
def app(make_app, scripted_smtp):
    """Here the app's relay is the scripted SMTP server, with quick retries for tests."""
    app = make_app(MAIL_PORT=scripted_smtp.port, RETRY_BASE_SECONDS=0, BATCH_SIZE=4, SEND_CHUNK=2,
                   BASE_URL="https://mailer.example.org", SENDER_ADDRESS="secretary@anytown-labour.example",
                   REPLY_ADDRESS="secretary@anytown-labour.example")
    with app.app_context():
        yield app


def run_queue(rounds: int = 20) -> int:
    """Work the queue with a real RQ worker (in this process), moving scheduled jobs (retries) in
    as they fall due, until nothing is left. Returns the number of rounds taken."""
    from mailer.queue import get_queue, redis_connection

    q, conn = get_queue(), redis_connection()
    for n in range(rounds):
        scheduler = RQScheduler([q], connection=conn)
        scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()
        due = q.scheduled_job_registry.get_jobs_to_schedule(int(time.time()) + 1)
        if q.count == 0 and not due:  # jobs scheduled for later (a meeting's reminder) wait their turn
            return n
        SimpleWorker([q], connection=conn).work(burst=True)
    failed = q.failed_job_registry.get_job_ids()
    raise AssertionError(f"the queue did not empty: {q.count} queued, "
                         f"{q.scheduled_job_registry.get_job_ids()} scheduled, failed: "
                         + "; ".join(str(q.fetch_job(j).exc_info)[-600:] for j in failed[:2]))


@pytest.fixture
def make_campaign(app, make_officer):
    officer = make_officer("sender@anytown-labour.example")

    def factory(body="Dear {{ member.first_name }},\n\nNews for {{ member.ward }}.", subject="News for {{ member.first_name }}",
                stream=Stream.BULLETINS, segment=None, **values) -> Campaign:
        campaign = drafts.create(officer, stream=stream)
        drafts.update(officer, campaign, {"body": body, "subject": subject, "body_format": BodyFormat.MARKDOWN.value,
                                          "segment": segment if segment is not None else {}, **values})
        session.commit()
        return campaign

    factory.officer = officer
    return factory


def status_of(campaign) -> CampaignStatus:
    session.expire_all()
    return session.get(Campaign, campaign.id).status
