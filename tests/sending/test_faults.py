"""What a real relay does wrong, and what Mailer does about it: temporary refusals retried,
permanent ones recorded, dropped connections resumed without duplicates, unsubscribes honoured
mid-send, pause, resume and cancel."""

from __future__ import annotations

from sqlalchemy import select

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
    run_queue()
    for member in people:
        assert len(scripted_smtp.received_by(member.email)) == 1, member.email
    assert {d.status for d in _deliveries(campaign).values()} == {DeliveryStatus.SENT}
    assert _deliveries(campaign)["drop2@example.org"].attempts == 2


def test_unsubscribe_during_a_send_is_honoured_by_later_batches(make_campaign, make_member, scripted_smtp, app):
    from mailer import jobs
    from mailer.sending.tokens import preferences_token

    people = [make_member(email=f"mid{i}@example.org") for i in range(8)]  # two batches of four
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
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
    jobs.start_campaign(campaign.id)
    jobs.send_batch(campaign.id, 0)
    campaigns.pause(session.get(type(campaign), campaign.id), None)
    run_queue()  # the remaining batch job finds the campaign paused
    assert len(scripted_smtp.accepted) == 4 and status_of(campaign) is CampaignStatus.PAUSED
    campaigns.resume(session.get(type(campaign), campaign.id), None)
    run_queue()
    assert sorted(r for r, _ in scripted_smtp.accepted) == sorted(f"pause{i}@example.org" for i in range(8))
    assert status_of(campaign) is CampaignStatus.SENT


def test_cancel_marks_the_rest_cancelled(make_campaign, make_member, scripted_smtp):
    from mailer import jobs

    for i in range(8):
        make_member(email=f"cancel{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    jobs.start_campaign(campaign.id)
    jobs.send_batch(campaign.id, 0)
    campaigns.cancel(session.get(type(campaign), campaign.id), None)
    run_queue()
    statuses = [d.status for d in _deliveries(campaign).values()]
    assert statuses.count(DeliveryStatus.SENT) == 4 and statuses.count(DeliveryStatus.CANCELLED) == 4
    assert len(scripted_smtp.accepted) == 4 and status_of(campaign) is CampaignStatus.CANCELLED


def test_a_killed_run_is_recovered_from_the_journal(make_campaign, make_member, scripted_smtp):
    """Rows a killed run left claimed: those the relay accepted (in the journal) are marked sent and
    not sent again; the others are sent."""
    from mailer import jobs
    from mailer.queue import redis_connection
    from mailer.sending import batch

    for i in range(4):
        make_member(email=f"killed{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    jobs.start_campaign(campaign.id)
    rows = sorted(_deliveries(campaign).values(), key=lambda d: d.id)
    # As if a worker had claimed all four, had two accepted by the relay, and was then killed.
    for d in rows:
        d.status, d.attempts = DeliveryStatus.SENDING, 1
    session.commit()
    redis_connection().hset(batch.journal_key(campaign.id), mapping={str(rows[0].id): "<a@x>", str(rows[1].id): "<b@x>"})
    jobs.send_batch(campaign.id, 0)
    after = _deliveries(campaign)
    assert [r for r, _ in scripted_smtp.accepted] == [rows[2].email, rows[3].email]
    assert after[rows[0].email].status is DeliveryStatus.SENT and after[rows[0].email].message_id == "<a@x>"
    assert status_of(campaign) is CampaignStatus.SENT


def test_reconcile_rebuilds_the_queue_after_redis_loses_it(make_campaign, make_member, scripted_smtp):
    from mailer import jobs
    from mailer.queue import get_queue

    for i in range(8):
        make_member(email=f"flush{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    jobs.start_campaign(campaign.id)  # batches enqueued...
    get_queue().empty()               # ...and lost, as if Redis had been flushed
    assert campaigns.reconcile()["batch_jobs"] == 2
    assert campaigns.reconcile()["batch_jobs"] == 0  # jobs already waiting: nothing doubled
    run_queue()
    assert len(scripted_smtp.accepted) == 8 and status_of(campaign) is CampaignStatus.SENT
