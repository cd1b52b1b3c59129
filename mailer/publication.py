"""What members and the public may read without signing in: the web version and archive of sent
bulletins, circulated minutes, and the stream a campaign's unsubscribe link stops. The rules of
publication live here; the public pages (mailer/web/public.py) only show what these return."""

from __future__ import annotations

from sqlalchemy import select

from mailer.db import session
from mailer.models import Campaign, CampaignStatus, Minutes, MinutesStatus, Stream

PUBLISHED = (CampaignStatus.SENDING, CampaignStatus.SENT)
ARCHIVE_SIZE = 200


def campaign_stream(campaign_id: int | None) -> Stream:
    """The stream a link from campaign `campaign_id` is about (bulletins when it names none)."""
    campaign = session.get(Campaign, campaign_id) if campaign_id else None
    return campaign.stream if campaign is not None else Stream.BULLETINS


def web_version(web_token: str) -> Campaign | None:
    """The campaign whose web version this is, once it has gone out (never a draft)."""
    campaign = session.scalar(select(Campaign).where(Campaign.web_token == web_token))
    return campaign if campaign is not None and campaign.status in PUBLISHED else None


def archive() -> list[Campaign]:
    """The bulletins sent to the whole constituency party (no branch's own), newest first."""
    return list(session.scalars(select(Campaign).where(Campaign.stream == Stream.BULLETINS,
                                                       Campaign.status.in_(PUBLISHED), Campaign.branch_id.is_(None))
                                .order_by(Campaign.started_at.desc()).limit(ARCHIVE_SIZE)))


def circulated_minutes(web_token: str) -> Minutes | None:
    """Minutes with this web copy's token, once circulated (drafts and approved minutes are never shown)."""
    found = session.scalar(select(Minutes).where(Minutes.web_token == web_token))
    return found if found is not None and found.status in (MinutesStatus.CIRCULATED, MinutesStatus.ADOPTED) else None
