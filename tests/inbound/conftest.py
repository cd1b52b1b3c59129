"""Fixtures for inbound mail: a sent campaign to reply to, and raw messages written in the tests."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy import select

from mailer.db import session, utcnow
from mailer.models import Delivery
from mailer.sending import campaigns
from tests.sending.conftest import app, make_campaign, run_queue, scripted_smtp  # noqa: F401 (fixtures)


def raw_message(*, sender="Ann Member <ann@example.org>", to="secretary@anytown-labour.example", subject="Re: News",
                body="Thanks, I will come.\n", message_id=None, in_reply_to=None, references=None, cc=None,
                headers: dict | None = None, html: str | None = None) -> bytes:
    """A raw message as a mail client would write it."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id or make_msgid(domain="mail.example.net")
    if cc:
        msg["Cc"] = cc
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    return bytes(msg)


@pytest.fixture
def sent(make_campaign, make_member):
    """A bulletin sent to three members: (campaign, {email: delivery})."""
    members = [make_member(first_name=n, email=f"{n.lower()}@example.org") for n in ("Ann", "Bob", "Cat")]
    campaign = make_campaign(subject="News of the week")
    campaigns.send_now(campaign, None)
    session.commit()
    run_queue()
    session.expire_all()
    deliveries = {d.email: d for d in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}
    campaign.members = members
    return campaign, deliveries
