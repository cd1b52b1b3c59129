"""A campaign sent end to end through real parts: RQ jobs on Redis, a real RQ worker, a real SMTP
server. The captured messages are parsed back and checked header by header."""

from __future__ import annotations

import base64
import json
import re
from email.utils import parseaddr

from sqlalchemy import func, select

from mailer.db import session
from mailer.models import (CampaignStatus, Delivery, DeliveryStatus, EmailHealth, MemberStatus, Stream, Suppression,
                           SuppressionReason)
from mailer.sending import campaigns
from mailer.compose.tokens import read_address_token
from tests.sending.conftest import run_queue, status_of


def _send(campaign):
    campaigns.send_now(campaign, None)
    session.commit()
    run_queue()


def test_every_member_gets_one_personal_message_with_every_header(make_campaign, make_member, scripted_smtp):
    people = [make_member(first_name=f"Person{i}", last_name="Test", ward=f"Ward{i}", email=f"p{i}@example.org")
              for i in range(9)]
    campaign = make_campaign()
    _send(campaign)
    assert status_of(campaign) is CampaignStatus.SENT
    assert sorted(r for r, _ in scripted_smtp.accepted) == sorted(p.email for p in people)
    message_ids = set()
    for member in people:
        [message] = scripted_smtp.received_by(member.email)
        # Personalised, and about nobody else.
        assert message["Subject"] == f"News for {member.first_name}"
        assert parseaddr(message["To"])[1] == member.email
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert f"Dear {member.first_name}," in text and f"News for {member.ward}." in text
        assert f"Dear {member.first_name}," in html
        raw = message.as_string()
        assert not [p.email for p in people if p.email != member.email and p.email in raw]
        # The headers every bulk message carries.
        assert message["Date"] and message["From"] == "Anytown CLP Secretary <secretary@anytown-labour.example>"
        assert re.fullmatch(r"<\d+\.\d+\.[0-9a-f]+@anytown-labour\.example>", message["Message-ID"])
        message_ids.add(message["Message-ID"])
        reply_local = parseaddr(message["Reply-To"])[1].split("@")[0]
        kind, delivery_id = read_address_token(reply_local.split("+", 1)[1])
        assert kind == "r" and session.get(Delivery, delivery_id).member_id == member.id
        assert message["List-Id"] == '"Anytown CLP bulletins" <bulletins.anytown-labour.example>'
        https, mailto = [u.strip(" <>") for u in message["List-Unsubscribe"].split(",")]
        assert https.startswith("https://mailer.example.org/u/") and mailto.startswith("mailto:secretary+u-")
        payload = https.rsplit("/", 1)[1].split(".")[0]
        # The token carries only the member's random public id and the campaign: no member id.
        assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == \
            [member.public_id, campaign.id]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert https in html  # the visible unsubscribe link
    assert len(message_ids) == len(people)
    rows = session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).all()
    assert {r.status for r in rows} == {DeliveryStatus.SENT}
    assert all(r.message_id and r.sent_at for r in rows)


def test_envelope_sender_carries_a_bounce_token(make_campaign, make_member):
    member = make_member(email="env@example.org")
    campaign = make_campaign()
    _send(campaign)
    delivery = session.scalar(select(Delivery).where(Delivery.member_id == member.id))
    from mailer.compose.message import CampaignMessages

    envelope = CampaignMessages(campaign).build(member, delivery.id)
    local = envelope.sender.split("@")[0]
    assert local.startswith("secretary+b-") and read_address_token(local.split("+")[1]) == ("b", delivery.id)


def test_shared_address_gets_one_message(make_campaign, make_member, scripted_smtp):
    make_member(first_name="Ann", email="household@example.org")
    make_member(first_name="Bob", email="Household@Example.org")
    _send(make_campaign())
    assert len(scripted_smtp.received_by("household@example.org")) == 1


def test_consent_suppression_and_health_are_applied_in_the_snapshot(make_campaign, make_member, scripted_smtp):
    yes = make_member(email="yes@example.org")
    make_member(email="no-consent@example.org", bulletins_consent=False)
    make_member(email="held@example.org", email_health=EmailHealth.ON_HOLD)
    make_member(email="resigned@example.org", status=MemberStatus.RESIGNED)
    make_member(email="suppressed@example.org")
    make_member(email=None)
    session.add(Suppression(email="suppressed@example.org", reason=SuppressionReason.COMPLAINT, stream="bulletins"))
    session.commit()
    _send(make_campaign())
    assert [r for r, _ in scripted_smtp.accepted] == [yes.email]


def test_notices_reach_members_without_bulletin_consent_but_not_objectors(make_campaign, make_member, scripted_smtp):
    make_member(email="no-bulletins@example.org", bulletins_consent=False)
    make_member(email="objector@example.org", notices_consent=False, bulletins_consent=False)
    make_member(email="complained@example.org")
    session.add(Suppression(email="complained@example.org", reason=SuppressionReason.COMPLAINT, stream="bulletins"))
    session.commit()
    _send(make_campaign(stream=Stream.NOTICES))
    assert sorted(r for r, _ in scripted_smtp.accepted) == ["complained@example.org", "no-bulletins@example.org"]


def test_segment_picks_recipients_in_sql(make_campaign, make_member, make_branch, scripted_smtp):
    north, south = make_branch("North"), make_branch("South")
    make_member(email="n1@example.org", branch=north, ward="Castle")
    make_member(email="n2@example.org", branch=north, ward="Abbey")
    make_member(email="s1@example.org", branch=south, ward="Castle")
    make_member(email="n3@example.org", branch=north, ward="Castle", status=MemberStatus.LAPSED)
    campaign = make_campaign(segment={"branches": [north.id], "statuses": ["active"], "exclude": {"wards": ["Abbey"]}})
    _send(campaign)
    assert [r for r, _ in scripted_smtp.accepted] == ["n1@example.org"]


def test_starting_twice_snapshots_once(make_campaign, make_member, scripted_smtp):
    for i in range(5):
        make_member(email=f"twice{i}@example.org")
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    from mailer import jobs
    from mailer.queue import get_queue

    get_queue().enqueue(jobs.start_campaign, campaign.id)  # a duplicate start
    run_queue()
    assert session.scalar(select(func.count()).where(Delivery.campaign_id == campaign.id)) == 5
    assert len(scripted_smtp.accepted) == 5


def test_start_queues_each_batch_of_its_snapshot_once(app, make_campaign, make_member):
    """The start knows its batches from the rows it added (runs of BATCH_SIZE, 4 here, in member
    order): it queues exactly those; a snapshot repeated over the rows adds none and keeps them."""
    from mailer import work

    members = [make_member(email=f"batch{i}@example.org") for i in range(9)]
    campaign = make_campaign()
    campaigns.send_now(campaign, None)
    session.commit()
    assert campaigns.start(campaign.id) == "started"
    assert [w for w in work.pending() if w[0] == "send_batches"] == [("send_batches", (campaign.id, [0, 1, 2], ""), {})]
    rows = session.execute(select(Delivery.member_id, Delivery.batch_no, Delivery.status)
                           .where(Delivery.campaign_id == campaign.id).order_by(Delivery.id)).all()
    assert rows == [(m.id, i // 4, DeliveryStatus.QUEUED) for i, m in enumerate(members)]
    again = campaigns.snapshot(campaign)
    assert (again.fresh, again.last_batch) == (False, 2)
    assert session.scalar(select(func.count()).where(Delivery.campaign_id == campaign.id)) == 9
    session.rollback()


def test_progress_reports_counts_and_percent(make_campaign, make_member):
    for i in range(6):
        make_member(email=f"prog{i}@example.org")
    make_member(email="later-unsub@example.org")
    campaign = make_campaign()
    _send(campaign)
    session.expire_all()
    progress = campaigns.progress(campaign).as_dict()
    assert progress["total"] == 7 and progress["sent"] == 7 and progress["percent"] == 100
    assert progress["status"] == "sent" and progress["queued"] == 0
