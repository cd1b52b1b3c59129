"""What a real relay does wrong, and what Mailer does about it: temporary refusals retried,
permanent ones recorded, dropped connections resumed without duplicates, unsubscribes honoured
mid-send, pause, resume and cancel."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from mailer import jobs
from mailer.db import session
from mailer.models import CampaignStatus, Delivery, DeliveryStatus, EmailHealth, Member
from mailer.sending import campaigns
from tests.sending.conftest import run_queue, status_of


def _deliveries(campaign) -> dict[str, Delivery]:
    session.expire_all()
    return {d.email: d for d in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}


def test_temporary_refusal_is_retried_and_delivered_once(make_campaign, make_member, scripted_smtp):
    make_member(email="busy@example.org")
    make_member(email="fine@example.org")
    scripted_smtp.script["busy@example.org"] = ["451 4.7.1 Try again later", "452 4.2.2 Mailbox full, try later"]
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    run_queue()
    assert len(scripted_smtp.received_by("busy@example.org")) == 1
    assert len(scripted_smtp.received_by("fine@example.org")) == 1
    busy = _deliveries(campaign)["busy@example.org"]
    assert busy.status is DeliveryStatus.SENT and busy.attempts == 3
    assert status_of(campaign) is CampaignStatus.SENT


def test_temporary_refusals_give_up_after_the_limit(make_app, scripted_smtp, make_campaign, make_member, app):
    app.config["MAX_ATTEMPTS"] = 2
    make_member(email="never@example.org")
    scripted_smtp.script["never@example.org"] = ["451 later"] * 5
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    run_queue()
    never = _deliveries(campaign)["never@example.org"]
    assert never.status is DeliveryStatus.FAILED and "gave up after 2 attempts: 451 later" in never.error
    assert scripted_smtp.received_by("never@example.org") == []
    assert status_of(campaign) is CampaignStatus.SENT  # finished, with a failure on record


def test_permanent_refusal_is_recorded_and_holds_the_address(make_campaign, make_member, scripted_smtp):
    gone = make_member(email="gone@example.org")
    make_member(email="here@example.org")
    scripted_smtp.script["gone@example.org"] = ["550 5.1.1 No such user here"]
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    run_queue()
    failed = _deliveries(campaign)["gone@example.org"]
    assert failed.status is DeliveryStatus.FAILED and failed.error == "550 5.1.1 No such user here"
    assert failed.attempts == 1
    assert session.get(Member, gone.id).email_health is EmailHealth.ON_HOLD
    assert len(scripted_smtp.received_by("here@example.org")) == 1
    report = campaigns.report(session.get(type(campaign), campaign.id))
    assert [(f.email, f.error) for f in report["failures"]] == [("gone@example.org", "550 5.1.1 No such user here")]


def test_dropped_connection_resumes_without_duplicates(make_campaign, make_member, scripted_smtp):
    people = [make_member(email=f"drop{i}@example.org") for i in range(8)]
    scripted_smtp.script["drop2@example.org"] = ["drop"]
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    run_queue()
    for member in people:
        assert len(scripted_smtp.received_by(member.email)) == 1, member.email
    assert {d.status for d in _deliveries(campaign).values()} == {DeliveryStatus.SENT}
    assert _deliveries(campaign)["drop2@example.org"].attempts == 2


def test_unsubscribe_during_a_send_is_honoured_by_later_batches(make_campaign, make_member, scripted_smtp, app):
    from mailer import jobs
    from mailer.compose.tokens import preferences_token

    people = [make_member(email=f"mid{i}@example.org") for i in range(8)]  # two batches of four
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    jobs.start_campaign(campaign.id)
    jobs.send_batch(campaign.id, 0)  # the first batch goes out
    late = people[6]
    response = app.test_client().post(f"/u/{preferences_token(late, campaign.id)}",
                                      data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    run_queue()
    assert scripted_smtp.received_by(late.email) == []
    assert _deliveries(campaign)[late.email].status is DeliveryStatus.SUPPRESSED
    assert len(scripted_smtp.accepted) == 7


def test_pause_stops_and_resume_finishes_without_resending(make_campaign, make_member, scripted_smtp):
    from mailer import jobs

    for i in range(8):
        make_member(email=f"pause{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    jobs.start_campaign(campaign.id)
    jobs.send_batch(campaign.id, 0)
    campaigns.pause(session.get(type(campaign), campaign.id), None)
    session.commit()
    run_queue()  # the remaining batch job finds the campaign paused
    assert len(scripted_smtp.accepted) == 4 and status_of(campaign) is CampaignStatus.PAUSED
    campaigns.resume(session.get(type(campaign), campaign.id), None)
    session.commit()
    run_queue()
    assert sorted(r for r, _ in scripted_smtp.accepted) == sorted(f"pause{i}@example.org" for i in range(8))
    assert status_of(campaign) is CampaignStatus.SENT


def test_cancel_marks_the_rest_cancelled(make_campaign, make_member, scripted_smtp):
    from mailer import jobs

    for i in range(8):
        make_member(email=f"cancel{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    jobs.start_campaign(campaign.id)
    jobs.send_batch(campaign.id, 0)
    campaigns.cancel(session.get(type(campaign), campaign.id), None)
    session.commit()
    run_queue()
    statuses = [d.status for d in _deliveries(campaign).values()]
    assert statuses.count(DeliveryStatus.SENT) == 4 and statuses.count(DeliveryStatus.CANCELLED) == 4
    assert len(scripted_smtp.accepted) == 4 and status_of(campaign) is CampaignStatus.CANCELLED


def test_a_killed_run_is_recovered_from_the_database(make_campaign, make_member, scripted_smtp):
    """Rows a killed run left claimed, once their lease has run out, are sent again; rows it had
    sent are marked so in the database and are not; rows a live run holds are left to it."""
    from datetime import timedelta

    from mailer import jobs
    from mailer.db import utcnow

    for i in range(4):
        make_member(email=f"killed{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    jobs.start_campaign(campaign.id)
    rows = sorted(_deliveries(campaign).values(), key=lambda d: d.id)  # batch 0: all four
    # A dead run had sent the first (recorded at its 250) and held the next two; a live run holds the last.
    rows[0].status, rows[0].message_id, rows[0].claimed_by = DeliveryStatus.SENT, "<a@x>", "dead"
    for d in rows[1:3]:
        d.status, d.attempts, d.claimed_by, d.lease_until = DeliveryStatus.SENDING, 1, "dead", utcnow() - timedelta(seconds=1)
    rows[3].status, rows[3].claimed_by, rows[3].lease_until = DeliveryStatus.SENDING, "alive", utcnow() + timedelta(minutes=5)
    session.commit()
    jobs.send_batch(campaign.id, 0)
    after = _deliveries(campaign)
    assert sorted(r for r, _ in scripted_smtp.accepted) == [rows[1].email, rows[2].email]
    assert after[rows[0].email].message_id == "<a@x>"
    assert after[rows[3].email].status is DeliveryStatus.SENDING and after[rows[3].email].claimed_by == "alive"
    assert status_of(campaign) is CampaignStatus.SENDING  # not finished while a live run holds a row


def _dead_run_with_one_accepted(campaign):
    """A run died holding the first two rows: the relay had taken the first (marked accepted, not
    yet folded into SENT), the second was on the way. Its lease has run out."""
    from datetime import timedelta

    from mailer.db import utcnow

    jobs.start_campaign(campaign.id)
    rows = sorted(_deliveries(campaign).values(), key=lambda d: d.id)
    expired, accepted_at = utcnow() - timedelta(seconds=1), utcnow() - timedelta(seconds=30)
    for d in rows[:2]:
        d.status, d.attempts, d.claimed_by, d.lease_until = DeliveryStatus.SENDING, 1, "dead", expired
    rows[0].accepted_at, rows[0].accepted_message_id = accepted_at, "<taken@x>"
    session.commit()
    return rows, accepted_at


@pytest.mark.parametrize("then", ["recovered", "cancelled"])
def test_what_a_dead_run_marked_accepted_is_sent_neither_again_nor_cancelled(make_campaign, make_member,
                                                                             scripted_smtp, then):
    """Taking rows back from a run that died (its batch run again, or its campaign cancelled)
    first folds in its marks: the message the relay took is SENT, with its Message-ID and time."""
    for i in range(3):
        make_member(email=f"dead{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    rows, accepted_at = _dead_run_with_one_accepted(campaign)
    if then == "recovered":
        jobs.send_batch(campaign.id, 0)
    else:
        campaigns.cancel(session.get(type(campaign), campaign.id), None)
        session.commit()
    after = _deliveries(campaign)
    taken = after[rows[0].email]
    assert (taken.status, taken.message_id, taken.sent_at, taken.accepted_at) == (
        DeliveryStatus.SENT, "<taken@x>", accepted_at, None)
    assert rows[0].email not in [r for r, _ in scripted_smtp.accepted]
    others = {after[r.email].status for r in rows[1:]}
    assert others == ({DeliveryStatus.SENT} if then == "recovered" else {DeliveryStatus.CANCELLED})


def test_two_runs_of_one_batch_never_send_to_the_same_member(app, make_campaign, make_member, scripted_smtp):
    """Two runs of one batch at once, on a relay slower than their lease: each member gets one
    message. The heartbeat keeps a live run's rows its own however slow the relay."""
    import threading

    from mailer.sending import batch

    app.config.update(BATCH_SIZE=100, SEND_CHUNK=4, BATCH_LOCK_TTL=1)
    people = [make_member(email=f"twice{i}@example.org") for i in range(12)]
    scripted_smtp.delay = 0.4  # 4 messages a chunk: 1.6 s per chunk, longer than the 1 s lease
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    campaigns.start(campaign.id)
    session.commit()  # as the start job does
    results, errors = [], []

    def run():
        try:
            with app.app_context():
                results.append(batch.send_batch(campaign.id, 0))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.7)  # the second starts while the first holds its first chunk, past the lease's first renewal
    for t in threads:
        t.join(60)
    assert not errors, errors
    for member in people:
        assert len(scripted_smtp.received_by(member.email)) == 1, member.email
    assert all(r.get("sent") for r in results), results  # both runs sent a share
    assert status_of(campaign) is CampaignStatus.SENT


def test_a_run_that_lost_its_rows_sends_nothing_more(app, make_campaign, make_member, scripted_smtp, monkeypatch):
    """Fencing: once another run has taken the rows back, the first cannot record or send again."""
    from sqlalchemy import update

    from mailer.sending import batch

    for i in range(4):
        make_member(email=f"lost{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    campaigns.start(campaign.id)
    session.commit()  # as the start job does
    real = batch._send_one

    def then_taken(conn, messages, row, member, before_content=None):
        outcome = real(conn, messages, row, member, before_content)
        session.execute(update(Delivery).where(Delivery.campaign_id == campaign.id, Delivery.status == DeliveryStatus.SENDING)
                        .values(claimed_by="another run"))  # as recover() by another run would
        session.commit()
        return outcome

    monkeypatch.setattr(batch, "_send_one", then_taken)
    with pytest.raises(batch.LeaseLost):
        batch.send_batch(campaign.id, 0)
    assert len(scripted_smtp.accepted) == 1  # the message on the wire when it lost its rows, and no other
    statuses = sorted(d.status.value for d in _deliveries(campaign).values())
    assert statuses == ["queued", "queued", "sending", "sending"]  # the other run's two, untouched


def test_421_at_connect_backs_off_the_batch_not_each_message(app, make_campaign, make_member, scripted_smtp):
    from mailer.queue import get_queue

    for i in range(6):
        make_member(email=f"busy{i}@example.org")
    scripted_smtp.refuse = "421 4.3.2 Too busy, try later"
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    campaigns.start(campaign.id)
    session.commit()  # as the start job does
    from mailer import jobs

    before = scripted_smtp.connections  # aiosmtpd's controller connects once itself, at its start
    result = jobs.send_batch(campaign.id, 0)
    assert "421" in result["relay_unavailable"] and scripted_smtp.connections - before == 1
    rows = _deliveries(campaign).values()
    assert {(d.status, d.attempts) for d in rows} == {(DeliveryStatus.QUEUED, 0)}  # no attempt spent
    page = campaigns.progress(session.get(type(campaign), campaign.id))
    assert "Waiting for the mail relay (421 4.3.2 Too busy, try later)" in page.why_waiting
    assert any(j.startswith("campaign-%d-batch-0-relay-1-" % campaign.id)
               for j in get_queue().scheduled_job_registry.get_job_ids())
    scripted_smtp.refuse = None
    time.sleep(1.2)  # the batch's next try, a second away (RETRY_BASE_SECONDS is 0 here: the least wait)
    run_queue()
    assert len(scripted_smtp.accepted) == 6 and status_of(campaign) is CampaignStatus.SENT
    assert session.get(type(campaign), campaign.id).stalled_reason is None


def test_cancel_while_rows_are_deferred_leaves_none_deferred(app, make_campaign, make_member, scripted_smtp):
    from mailer import jobs

    app.config["RETRY_BASE_SECONDS"] = 3600
    for i in range(4):
        make_member(email=f"defer{i}@example.org")
    scripted_smtp.script["defer1@example.org"] = ["451 later"]
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    jobs.start_campaign(campaign.id)
    jobs.send_batch(campaign.id, 0)
    assert _deliveries(campaign)["defer1@example.org"].status is DeliveryStatus.DEFERRED
    campaigns.cancel(session.get(type(campaign), campaign.id), None)
    session.commit()
    progress = campaigns.progress(session.get(type(campaign), campaign.id))
    assert progress.queued == 0 and progress.sent == 3 and progress.cancelled == 1
    assert progress.sent + progress.queued + progress.failed + progress.suppressed + progress.cancelled == progress.total


def test_a_deferral_recorded_after_cancel_is_a_cancellation(app, make_campaign, make_member, scripted_smtp, monkeypatch):
    """A run in the middle of a chunk when the campaign is cancelled: its temporary failures are
    recorded as cancelled, and it stops before its next message."""
    from mailer.sending import batch

    for i in range(4):
        make_member(email=f"late{i}@example.org")
    scripted_smtp.script["late0@example.org"] = ["451 later"]
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    campaigns.start(campaign.id)
    session.commit()  # as the start job does
    real = batch._send_one
    monkeypatch.setattr(batch, "STATUS_EVERY", 0)

    def cancel_after(conn, messages, row, member, before_content=None):
        outcome = real(conn, messages, row, member, before_content)
        campaigns.cancel(session.get(type(campaign), campaign.id), None)
        session.commit()
        return outcome

    monkeypatch.setattr(batch, "_send_one", cancel_after)
    batch.send_batch(campaign.id, 0)
    statuses = {d.email: d.status for d in _deliveries(campaign).values()}
    assert statuses["late0@example.org"] is DeliveryStatus.CANCELLED
    assert list(statuses.values()).count(DeliveryStatus.CANCELLED) == 4 and len(scripted_smtp.attempts) == 1


def test_reconcile_rebuilds_the_queue_after_redis_loses_it(make_campaign, make_member, scripted_smtp):
    from mailer import jobs
    from mailer.queue import get_queue

    for i in range(8):
        make_member(email=f"flush{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    jobs.start_campaign(campaign.id)  # batches enqueued...
    get_queue().empty()               # ...and lost, as if Redis had been flushed
    assert jobs.reconcile_campaigns()["batch_jobs"] == 2
    assert jobs.reconcile_campaigns()["batch_jobs"] == 0  # jobs already waiting: nothing doubled
    run_queue()
    assert len(scripted_smtp.accepted) == 8 and status_of(campaign) is CampaignStatus.SENT


def test_a_send_with_no_worker_says_so_on_its_page(app, make_campaign, make_member, scripted_smtp, signed_in):
    make_member(email="waiting@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    campaigns.start(campaign.id)
    session.commit()  # as the start job does
    progress = campaigns.progress(session.get(type(campaign), campaign.id))
    assert progress.queued == 1 and progress.why_waiting.startswith("No worker is running")
    page = signed_in.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert '<p class="note" id="progress-why">No worker is running' in page
    assert signed_in.get(f"/campaigns/{campaign.id}/progress.json").get_json()["why_waiting"] == progress.why_waiting
    assert status_of(campaign) is CampaignStatus.SENDING
    run_queue()
    assert campaigns.progress(session.get(type(campaign), campaign.id)).why_waiting is None
