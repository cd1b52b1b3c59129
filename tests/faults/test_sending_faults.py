"""Sends under faults, each counted message by message (see conftest.py). Pass: never > 0 only
for 5xx refusals, recorded with their reason; twice no more than the messages that were on the
wire when the fault struck; every campaign finished by itself."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
from sqlalchemy import text

from tests.faults.conftest import RECIPIENTS

pytestmark = pytest.mark.slow


def _kill_group(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _newest_child(proc, timeout: float = 10) -> psutil.Process:
    """The worker's current work-horse: its child forked last (the scheduler came first). Between
    two batch jobs the worker has none for a moment: wait for the next one to be forked."""
    deadline = time.monotonic() + timeout
    while not (kids := psutil.Process(proc.pid).children()):
        assert time.monotonic() < deadline, f"the worker forked no work-horse within {timeout} s"
        time.sleep(0.005)
    return max(kids, key=lambda k: k.create_time())


def test_worker_and_horse_killed_mid_chunk_then_a_fresh_worker(case):
    case.members()
    first = case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 5)
    _kill_group(first)  # the worker, its work-horse and its scheduler, mid-chunk
    case.worker()
    case.finish(allowed_twice=1)


def test_one_of_two_workers_killed_mid_chunk_no_fresh_worker(case):
    case.members()
    doomed = case.worker()
    case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 4)
    _kill_group(doomed)  # the survivor takes over the dead one's rows once their lease runs out
    case.finish(allowed_twice=1)


def test_work_horse_alone_killed_mid_chunk(case):
    case.members()
    worker = case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 5)
    _newest_child(worker).kill()  # the worker lives on; RQ retries the job, which finds what is left
    case.finish(allowed_twice=1)


def test_421_on_connect_for_a_while(case):
    case.members()
    case.relay.refuse = "421 4.3.2 Too busy, try later"
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    time.sleep(20)
    refused = case.relay.connections
    case.relay.refuse = None
    result = case.finish()
    assert refused < 60, f"{refused} connections in 20 s: the batch backs off, not each message ({result})"


def test_451_on_ten_percent(case):
    case.members()
    case.relay.temporary = {e: 1 for e in case.emails[::10]}
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    case.finish()


def test_550_on_two_percent(case):
    case.members()
    case.relay.permanent = set(case.emails[::50])
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    result = case.finish()
    assert result["never"] == result["failed_5xx"] == len(case.emails[::50])


def test_connection_dropped_mid_data(case):
    case.members()
    case.relay.drop = set(case.emails[7::100])
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    case.finish()


def test_long_stall_longer_than_the_lease(case):
    """A relay that stops answering for 15 s (the lease is 3 s): no other run takes the stalled
    run's rows, however long the heartbeat has to keep them."""
    case.members()
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 4)
    case.relay.stall = 15
    case.finish()


def test_slow_relay_and_a_second_worker_joining(case):
    """Each chunk takes longer than the lease (50 messages at 0.1 s against 3 s)."""
    case.members(RECIPIENTS // 4)
    case.relay.delay = 0.1
    case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(len(case.emails) // 5, timeout=120)
    case.worker()
    case.finish(timeout=300)


def test_database_connections_terminated_and_refused(case):
    """Every connection to the database cut, then refused for 20 s, twice during the send."""
    from sqlalchemy import create_engine

    from mailer.db import engine

    case.members()
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    name = engine().url.database
    admin = create_engine(engine().url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        for fraction in (4, 2):
            case.wait_delivered(RECIPIENTS // fraction)
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                             {"n": name})
            engine().dispose()
            time.sleep(20)
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    case.finish(timeout=300, allowed_twice=4)  # two outages, two connections on the wire at each


def test_flushall_mid_send(case, own_redis):
    case.use_redis(own_redis.url)
    case.members()
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 4)
    import redis

    redis.Redis.from_url(own_redis.url).flushall()
    case.finish(allowed_twice=0)


def test_redis_restarted_mid_send(case, own_redis):
    case.use_redis(own_redis.url)
    case.members()
    workers = [case.worker(), case.worker()]
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 4)
    own_redis.stop()
    time.sleep(5)
    own_redis.start()  # empty: everything Redis held is gone
    case.finish(allowed_twice=0)
    assert all(w.poll() is None for w in workers), "a worker exited when Redis went away"


def test_pause_and_resume_during_451s(case):
    from mailer.db import session
    from mailer.models import Campaign
    from mailer.sending import campaigns

    case.members()
    case.relay.temporary = {e: 2 for e in case.emails[::10]}
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 4)
    campaigns.pause(session.get(Campaign, case.campaign_id), None)
    session.commit()
    time.sleep(5)
    campaigns.resume(session.get(Campaign, case.campaign_id), None)
    session.commit()
    case.finish()


def test_cancel_during_451s(case):
    from mailer.db import session
    from mailer.models import Campaign
    from mailer.sending import campaigns

    case.members()
    case.relay.temporary = {e: 3 for e in case.emails[::10]}
    case.worker()
    case.worker()
    case.send(case.make_campaign)
    case.wait_delivered(RECIPIENTS // 3)
    campaigns.cancel(session.get(Campaign, case.campaign_id), None)
    session.commit()
    result = case.finish(cancelled_ok=True)
    assert result["cancelled"] > 0 and "deferred" not in result["statuses"], result
    assert result["once"] + result["cancelled"] + result["failed_5xx"] == result["targeted"], result
