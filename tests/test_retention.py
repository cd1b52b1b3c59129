"""Retention: old raw inbound messages and delivery details go; what the rules keep stays; the
audit log records counts only; the job runs on the worker's schedule and as `mailer retention run`."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mailer import jobs, retention
from mailer.db import session, utcnow
from mailer.models import (AgendaItem, AuditEvent, BounceEvent, Campaign, CampaignStatus, CorrespondenceLink,
                           Delivery, DeliveryStatus, InboundMessage, InboundStatus, Meeting, MeetingKind, Stream,
                           Thread)
from tests.conftest import login
from tests.sending.conftest import run_queue

_n = iter(range(1, 10_000))


def _inbound(days_old: int, status=InboundStatus.PROCESSED, thread=None) -> InboundMessage:
    n = next(_n)
    raw = f"From: ann{n}@example.org\r\nSubject: Letter {n}\r\n\r\nHello {n}\r\n".encode()
    message = InboundMessage(transport="file", dedupe_key=f"mid:<{n}@x.example>", message_id=f"<{n}@x.example>",
                             sha256=f"{n:064d}", raw=raw, size=len(raw), status=status, subject=f"Letter {n}",
                             from_address=f"ann{n}@example.org", visible_text=f"Hello {n}",
                             received_at=utcnow() - timedelta(days=days_old), thread=thread)
    session.add(message)
    session.flush()
    return message


def _sent_campaign(days_ago: int, recipients: int = 3) -> Campaign:
    campaign = Campaign(stream=Stream.BULLETINS, name=f"Old {days_ago}", subject="News", status=CampaignStatus.SENT,
                        finished_at=utcnow() - timedelta(days=days_ago))
    session.add(campaign)
    session.flush()
    session.add_all([Delivery(campaign_id=campaign.id, email=f"m{i}.{days_ago}@example.org",
                              status=DeliveryStatus.SENT if i else DeliveryStatus.FAILED, error="550 no such user")
                     for i in range(recipients)])
    session.flush()
    return campaign


def _world():
    kept_thread, minuted_thread = Thread(subject="Ordinary"), Thread(subject="Minuted")
    session.add_all([kept_thread, minuted_thread])
    session.flush()
    meeting = Meeting(kind=MeetingKind.GENERAL, title="October GC", starts_at=utcnow() - timedelta(days=200))
    session.add(meeting)
    session.flush()
    item = AgendaItem(meeting_id=meeting.id, position=1, title="Correspondence", role="correspondence")
    session.add(item)
    session.flush()
    session.add(CorrespondenceLink(item_id=item.id, thread_id=minuted_thread.id))
    old = _inbound(100, thread=kept_thread)
    minuted = _inbound(300, thread=minuted_thread)
    failed = _inbound(100, status=InboundStatus.FAILED)
    recent = _inbound(10, thread=kept_thread)
    old_campaign, new_campaign = _sent_campaign(400), _sent_campaign(30)
    first = session.scalars(select(Delivery).where(Delivery.campaign_id == old_campaign.id)).first()
    bounce = _inbound(399)
    bounce.delivery_id = first.id
    session.add(BounceEvent(email=first.email, hard=True, delivery_id=first.id))
    session.commit()
    return old, minuted, failed, recent, bounce, old_campaign, new_campaign


def test_old_raw_and_old_deliveries_go_and_what_the_rules_keep_stays(app):
    old, minuted, failed, recent, bounce, old_campaign, new_campaign = _world()
    result = retention.run()
    session.commit()
    session.expire_all()
    assert result.raw_inbound_emptied == 2 and result.delivery_rows_deleted == 3  # old and bounce; old campaign's 3
    assert session.get(InboundMessage, old.id).raw == b""
    assert session.get(InboundMessage, old.id).visible_text.startswith("Hello")  # the correspondence text stays
    assert session.get(InboundMessage, minuted.id).raw != b""  # attached to minutes: kept whole
    assert session.get(InboundMessage, failed.id).raw != b""   # still to be retried
    assert session.get(InboundMessage, recent.id).raw != b""
    assert session.scalars(select(Delivery).where(Delivery.campaign_id == old_campaign.id)).all() == []
    assert len(session.scalars(select(Delivery).where(Delivery.campaign_id == new_campaign.id)).all()) == 3
    assert session.get(Campaign, old_campaign.id).counts == {"sent": 2, "failed": 1}  # the totals outlive the rows
    assert session.get(InboundMessage, bounce.id).delivery_id is None
    assert session.scalars(select(BounceEvent.delivery_id)).all() == [None]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.run")).one()
    assert event.changes == {"raw_inbound_emptied": 2, "delivery_rows_deleted": 3} and event.actor == "system"
    assert "@" not in str(event.changes) + event.note  # counts, never an address
    again = retention.run()  # idempotent: nothing left to do
    assert (again.raw_inbound_emptied, again.delivery_rows_deleted) == (0, 0)


def test_a_period_of_zero_keeps_everything(make_app):
    app = make_app(RETAIN_RAW_INBOUND_DAYS=0, RETAIN_DELIVERY_DETAILS_DAYS=0)
    with app.app_context():
        _world()
        assert retention.run().as_dict() == {"raw_inbound_emptied": 0, "delivery_rows_deleted": 0}


def test_the_worker_schedule_queues_it_once_a_day_and_the_job_runs(app):
    old, *_ = _world()
    assert jobs.schedule_retention() is not None
    assert jobs.schedule_retention() is None  # the day's key is taken: one run, whichever worker asks
    run_queue()
    session.expire_all()
    assert session.get(InboundMessage, old.id).raw == b""
    from mailer.queue import redis_connection

    redis_connection().delete(f"mailer:{app.config['QUEUE_NAME']}:retention")


def test_the_cli_command(app):
    _world()
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert "Raw inbound messages emptied: 2 (older than 90 days)" in result.output
    assert "Delivery rows deleted: 3 (older than 365 days)" in result.output


def test_the_data_protection_page_reads_the_periods_from_the_settings(make_app, make_officer):
    from mailer.members.service import branch_by_name
    from mailer.models import Role

    app = make_app(RETAIN_RAW_INBOUND_DAYS=45, RETAIN_DELIVERY_DETAILS_DAYS=0)
    with app.app_context():
        email = make_officer("north@example.org", Role.BRANCH_SECRETARY, branch_by_name("North")).email
        client = app.test_client()
        assert client.get("/data-protection/").status_code == 302  # officers only
        login(client, email)
        page = client.get("/data-protection/").get_data(as_text=True)
        assert "<strong>45 days</strong> after it arrived" in page
        assert "<strong>for ever</strong> (the period is switched off) after the campaign" in page
        assert "It has not run yet." in page
        retention.run()
        session.commit()
        assert "0 raw messages emptied" in client.get("/data-protection/").get_data(as_text=True)


def test_an_emptied_raw_message_is_not_offered_as_an_empty_file(app, signed_in):
    old, *_ = _world()
    retention.run()
    session.commit()
    response = signed_in.get(f"/correspondence/message/{old.id}/raw", follow_redirects=True)
    assert response.mimetype == "text/html" and "was deleted after 90 days" in response.get_data(as_text=True)
