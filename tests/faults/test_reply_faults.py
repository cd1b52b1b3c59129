"""Officers' replies under faults: Redis flushed while a reply stalls on the wire, then a worker
killed mid-reply. Whether a reply is in flight is the database's to say (its claim), not RQ's
started registry: reconcile queues again only replies no live job holds, so each reply reaches its
correspondent once, bar the one on the wire when its worker died."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from sqlalchemy import func, select

from mailer.db import session
from mailer.models import OutgoingReply
from tests.test_worker import wait_until

pytestmark = pytest.mark.slow

N = 60


def _unsent() -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(OutgoingReply).where(OutgoingReply.sent_at.is_(None)))


def test_replies_flushall_then_a_worker_killed_mid_reply(case, own_redis, make_officer):
    import redis

    from mailer.inbound import correspondence
    from mailer.models import Thread

    case.use_redis(own_redis.url)
    officer = make_officer("replier@example.org")
    writers = [f"writer{i:03d}@example.net" for i in range(N)]
    for address in writers:
        thread = Thread(subject=f"A question from {address}", correspondent=address)
        session.add(thread)
        session.flush()
        correspondence.reply(officer, thread, None, "Thank you for writing. We will be in touch.")
    session.commit()  # as the reply page does: each reply is queued after the commit
    case.relay.delay = 0.4  # each reply is on the wire a while: the faults strike mid-reply
    started = time.monotonic()
    doomed = case.worker()
    case.worker()
    wait_until(lambda: case.relay.total >= N // 5, 120, "some replies sent", case.logs[-1])
    case.relay.stall = 10  # the next reply waits 10 s for its 250: reconcile runs meanwhile (every 3 s)
    wait_until(lambda: case.relay.stall == 0, 30, "a reply stalled on the wire", case.logs[-1])
    stalled = time.monotonic()
    redis.Redis.from_url(own_redis.url).flushall()  # replies on the wire, their jobs forgotten
    time.sleep(max(0.0, stalled + 12 - time.monotonic()))  # the stalled one is through; reconcile ran meanwhile
    twice_before_kill = sum(1 for n in case.relay.received.values() if n >= 2)
    os.killpg(doomed.pid, signal.SIGKILL)  # the worker, its work-horse and scheduler, mid-reply
    doomed.wait(10)
    finished = True
    try:
        wait_until(lambda: _unsent() == 0 and case.relay.total >= N, 180, "every reply sent", case.logs[-1])
    except AssertionError:
        finished = False
    time.sleep(3)  # a reconcile round more: nothing is queued again once all is sent
    got = case.relay.received
    result = {"case": "replies_flushall_then_worker_killed_mid_reply", "targeted": N,
              "once": sum(1 for w in writers if got[w] == 1), "twice": sum(1 for w in writers if got[w] >= 2),
              "never": sum(1 for w in writers if got[w] == 0), "failed_5xx": 0, "cancelled": 0,
              "finished": finished, "seconds": round(time.monotonic() - started, 1)}
    with open(os.environ["MAILER_TEST_FAULTS_RESULTS"], "a") as out:
        out.write(json.dumps(result) + "\n")
    print(result, "twice before the kill:", twice_before_kill)
    assert finished and result["never"] == 0, result
    assert twice_before_kill == 0, "a reply was sent again while its job was still sending it"
    assert result["twice"] <= 1, f"only the reply on the killed worker's wire may go twice: {result}"
    assert case.relay.total == result["once"] + 2 * result["twice"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(OutgoingReply)
                          .where(OutgoingReply.claimed_by.is_not(None))) == 0  # no claim left behind
