"""The Welcome routine: each new member from an import gets the welcome email once.

A welcome is a campaign from the `welcome` starter sent to the members on the to-welcome list
(segment {"to_welcome": true}, with the usual statuses: a member imported as lapsed is not
welcomed). With WELCOME_APPROVAL on (the default) an officer prepares it and approves it on the
confirmation page every mass send has; with it off, it is sent by itself after each import.
"Once" is kept by the database: when the start job makes a welcome's delivery rows, it takes
those members (and anyone sharing their address) off the list in the same transaction
(`members.service.welcomed_by`), so no later welcome can pick them again."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import func, select

from mailer import scope
from mailer.compose import drafts
from mailer.db import session, utcnow
from mailer.members import segments
from mailer.members.service import WELCOME_STARTER
from mailer.models import Campaign, CampaignStatus, Member, Officer

STARTER = WELCOME_STARTER
SEGMENT = {"statuses": list(segments.DEFAULT_STATUSES), "to_welcome": True}


def waiting(officer: Officer) -> int:
    """Members in `officer`'s scope a welcome would pick (before consent and address checks)."""
    stmt = select(func.count()).select_from(Member).where(segments.condition(segments.clean(SEGMENT)))
    return session.scalar(scope.members(officer, stmt))


def in_progress(officer: Officer) -> Campaign | None:
    """A welcome already prepared or on its way, in the officer's reach: prepare no second one."""
    return session.scalars(scope.campaigns(officer).where(
        Campaign.starter == STARTER, Campaign.status.in_([CampaignStatus.DRAFT, CampaignStatus.SCHEDULED]))
        .order_by(Campaign.id.desc()).limit(1)).first()


def prepare(officer: Officer) -> Campaign:
    """A draft welcome to the to-welcome list (reused when one is waiting). Not committed."""
    campaign = in_progress(officer)
    if campaign is not None and campaign.status is CampaignStatus.DRAFT:
        return campaign
    campaign = drafts.create(officer, STARTER)
    campaign.segment = dict(SEGMENT)
    campaign.name = f"Welcome, {utcnow():%d/%m/%Y}"
    return campaign


def after_import(officer: Officer | None) -> Campaign | None:
    """With approval switched off, send the welcome now to whoever an import put on the list
    (called by the handler that applied the import, before its commit). The import stands
    whatever happens to the welcome: it is made in a savepoint, and a failure is logged; an
    officer can still send it from the Welcome page. Not committed."""
    if current_app.config["WELCOME_APPROVAL"] or officer is None or not waiting(officer):
        return None
    pending = in_progress(officer)
    if pending is not None and pending.status is CampaignStatus.SCHEDULED:
        return None  # one on its way already picks them up when it starts
    from mailer.sending import campaigns

    try:
        with session.begin_nested():
            campaign = prepare(officer)
            session.flush()
            campaigns.send_now(campaign, officer)
    except Exception:  # noqa: BLE001 - the import is applied whatever the welcome does
        logging.getLogger("mailer.welcome").exception("the welcome after an import was not sent")
        return None
    return campaign
