"""Sending with real worker processes (`python worker.py`): a worker killed mid-send, and the relay's
rate limit held by two workers at once."""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import func, select

from mailer.db import session
from mailer.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from mailer.sending import campaigns
from tests.test_worker import start_worker, wait_until, worker_env  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def _count(campaign_id: int, *statuses: DeliveryStatus) -> int:
    session.rollback()
    return session.scalar(select(func.count()).where(Delivery.campaign_id == campaign_id,
                                                     Delivery.status.in_(statuses)))


def test_worker_killed_mid_send_resumes_without_resending(app, make_campaign, make_member, scripted_smtp,
                                                          start_worker, tmp_path):
    people = [make_member(email=f"k{i:02d}@example.org") for i in range(40)]
    scripted_smtp.delay = 0.05  # a relay slow enough to be caught in the middle
    env = worker_env(app, scripted_smtp.port, tmp_path, MAILER_BATCH_SIZE="40", MAILER_SEND_CHUNK="5",
                     MAILER_BATCH_LOCK_TTL="2", MAILER_BASE_URL=app.config["BASE_URL"])
    first, log = start_worker(env)
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    wait_until(lambda: len(scripted_smtp.accepted) >= 10, 60, "the first worker to send some", log)
    os.killpg(first.pid, signal.SIGKILL)  # the worker, its work-horse and its scheduler, mid-batch
    first.wait(10)
    stopped_at = len(scripted_smtp.accepted)
    assert stopped_at < len(people)

    _second, log2 = start_worker(env)  # reconciles at start: the batch is enqueued again
    wait_until(lambda: _count(campaign.id, DeliveryStatus.SENT) == len(people), 120,
               "every delivery to be sent after the restart", log2)
    copies = {member.email: len(scripted_smtp.received_by(member.email)) for member in people}
    # Everyone once, but for the message the kill may have caught between the relay's 250 and
    # its mark (the one on the wire of the killed worker's one connection): the promise, and all
    # the promise (README, "Nothing sent twice").
    assert all(n >= 1 for n in copies.values()), copies
    assert sum(n - 1 for n in copies.values()) <= 1, copies
    session.expire_all()
    assert session.get(Campaign, campaign.id).status is CampaignStatus.SENT


def test_relay_rate_limit_holds_across_two_workers(app, make_campaign, make_member, scripted_smtp, start_worker,
                                                   tmp_path):
    for i in range(12):
        make_member(email=f"r{i:02d}@example.org")
    env = worker_env(app, scripted_smtp.port, tmp_path, MAILER_BATCH_SIZE="3", MAILER_SEND_CHUNK="1",
                     MAILER_RATE_PER_MINUTE="5")
    _a, log_a = start_worker(env)
    _b, log_b = start_worker(env)
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    # Two workers each hold a batch, both asking the same bucket in Redis for tokens.
    wait_until(lambda: len({b for (b,) in session.execute(select(Delivery.batch_no).where(
        Delivery.campaign_id == campaign.id, Delivery.status.in_((DeliveryStatus.SENDING, DeliveryStatus.SENT))))})
        >= 2 and len(scripted_smtp.accepted) >= 5, 60, "two workers to be sending", log_a)
    time.sleep(4)  # at 5 a minute, the bucket refills a third of a message in 4 s
    assert len(scripted_smtp.accepted) == 5
