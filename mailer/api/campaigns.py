"""/api/v1/campaigns: drafts made and changed, previewed, tested, sent or scheduled, paused,
resumed or cancelled, and their progress; each through the same services as the pages."""

from __future__ import annotations

from flask import abort

from mailer import scope
from mailer.api import bp, cursor, etag_of, officer, page_links, problem, require_match, responses, spec, with_etag
from mailer.api.schemas import CampaignList, CampaignOut, CampaignSummary, Done, Preview, Progress, Report
from mailer.inputs import CampaignIn, CampaignPatch, PageQuery, ScheduleIn
from mailer.compose import drafts
from mailer.db import session
from mailer.mail import NotSent
from mailer.models import Campaign
from mailer.sending import campaigns


def _out(c: Campaign) -> CampaignOut:
    return CampaignOut(id=c.id, name=c.name, subject=c.subject, preheader=c.preheader, stream=c.stream.value,
                       status=c.status.value, body_format=c.body_format.value, body=c.body, segment=c.segment or {},
                       created_at=c.created_at, scheduled_at=c.scheduled_at, started_at=c.started_at,
                       finished_at=c.finished_at)


def _visible(campaign_id: int) -> Campaign:
    campaign = scope.get_campaign(officer(), campaign_id)
    if campaign is None:
        abort(problem(404, "There is no such campaign."))
    return campaign


def _draft_values(body) -> dict:
    values = body.model_dump(exclude_unset=True, exclude={"starter"})
    if "segment" in values:
        values["segment"] = body.segment.model_dump(mode="json", exclude_none=True) if body.segment else {}
    return {k: v for k, v in values.items() if v is not None or k == "segment"}


@bp.get("/campaigns")
@spec.validate(query=PageQuery, resp=responses(CampaignList), tags=["campaigns"])
def list_campaigns(query: PageQuery):
    """Campaigns you may see, newest first; follow Link: rel=next for more."""
    page = drafts.listing(officer(), cursor(query), query.limit)
    items = [CampaignSummary(id=c.id, name=c.name, subject=c.subject, stream=c.stream.value, status=c.status.value,
                             created_at=c.created_at) for c in page]
    return CampaignList(items=items), 200, page_links(page, "api.list_campaigns")


@bp.post("/campaigns")
@spec.validate(json=CampaignIn, resp=responses(CampaignOut, 409, status=201), tags=["campaigns"])
def create_campaign(json: CampaignIn):
    """A new draft, blank or from a starter, with any fields given."""
    from mailer.models import Stream

    campaign = drafts.create(officer(), json.starter, Stream(json.stream))
    drafts.update(officer(), campaign, _draft_values(json))
    session.flush()
    return with_etag(_out(campaign), etag_of("campaign", campaign.id, campaign.updated_at), status=201)


@bp.get("/campaigns/<int(max=2147483647):campaign_id>")
@spec.validate(resp=responses(CampaignOut, 404), tags=["campaigns"])
def read_campaign(campaign_id: int):
    """One campaign, with an ETag to send back as If-Match when you change it."""
    campaign = _visible(campaign_id)
    return with_etag(_out(campaign), etag_of("campaign", campaign.id, campaign.updated_at))


@bp.patch("/campaigns/<int(max=2147483647):campaign_id>")
@spec.validate(json=CampaignPatch, resp=responses(CampaignOut, 404, 409, 412, 428), tags=["campaigns"])
def update_campaign(campaign_id: int, json: CampaignPatch):
    """Change a draft (If-Match required)."""
    campaign = _visible(campaign_id)
    require_match(etag_of("campaign", campaign.id, campaign.updated_at))
    drafts.update(officer(), campaign, _draft_values(json))
    session.flush()
    return with_etag(_out(campaign), etag_of("campaign", campaign.id, campaign.updated_at))


@bp.get("/campaigns/<int(max=2147483647):campaign_id>/preview")
@spec.validate(resp=responses(Preview, 404, 409), tags=["campaigns"])
def preview_campaign(campaign_id: int):
    """The subject, HTML and text as a sample member would receive them."""
    campaign = _visible(campaign_id)
    subject, html, text = drafts.preview(campaign, None)
    return Preview(subject=subject, html=html, text=text)


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/test")
@spec.validate(resp=responses(Done, 404, 409, 503), tags=["campaigns"])
def test_send_campaign(campaign_id: int):
    """Send it, as a sample member would see it, to your own address only."""
    campaign = _visible(campaign_id)
    problems = drafts.problems(campaign)
    if problems:
        raise problems[0]  # a refusal: answered as a problem by the API's one handler
    try:
        address = drafts.test_send(officer(), campaign)
    except NotSent as exc:
        return problem(503, f"The mail server did not take it: {exc}")
    return Done(detail=f"A test copy went to {address}.")


def _transition(campaign_id: int, action, *args, done: str = "") -> Done | tuple:
    campaign = _visible(campaign_id)
    action(campaign, *args, officer())
    return Done(detail=done or f"The campaign is {campaign.status.value}.")


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/send")
@spec.validate(resp=responses(Done, 404, 409), tags=["campaigns"])
def send_campaign(campaign_id: int):
    """Send now: the recipients are taken from the segment as the send starts."""
    return _transition(campaign_id, campaigns.send_now,
                       done="Sending starts now: follow it at /progress.")


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/schedule")
@spec.validate(json=ScheduleIn, resp=responses(Done, 404, 409), tags=["campaigns"])
def schedule_campaign(campaign_id: int, json: ScheduleIn):
    """Send at a time to come."""
    return _transition(campaign_id, campaigns.schedule, json.at)


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/pause")
@spec.validate(resp=responses(Done, 404, 409), tags=["campaigns"])
def pause_campaign(campaign_id: int):
    """Stop sending for now; resume carries on where it stopped."""
    return _transition(campaign_id, campaigns.pause)


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/resume")
@spec.validate(resp=responses(Done, 404, 409), tags=["campaigns"])
def resume_campaign(campaign_id: int):
    """Carry on sending a paused campaign."""
    return _transition(campaign_id, campaigns.resume)


@bp.post("/campaigns/<int(max=2147483647):campaign_id>/cancel")
@spec.validate(resp=responses(Done, 404, 409), tags=["campaigns"])
def cancel_campaign(campaign_id: int):
    """Stop for good: no one not yet sent to will be."""
    return _transition(campaign_id, campaigns.cancel)


@bp.get("/campaigns/<int(max=2147483647):campaign_id>/progress")
@spec.validate(resp=responses(Progress, 404), tags=["campaigns"])
def campaign_progress(campaign_id: int):
    """Live counts of the send: sent, queued, failed, suppressed, cancelled."""
    return Progress(**campaigns.progress(_visible(campaign_id)).as_dict())


@bp.get("/campaigns/<int(max=2147483647):campaign_id>/report")
@spec.validate(resp=responses(Report, 404), tags=["campaigns"])
def campaign_report(campaign_id: int):
    """The outcome: the counts, unsubscribes, and each failure with its reason (no open or click tracking)."""
    report = campaigns.report(_visible(campaign_id), per_page=500)
    return Report(progress=Progress(**report["progress"].as_dict()), unsubscribed=report["unsubscribed"] or 0,
                  failures=[{"email": f.email, "error": f.error, "attempts": f.attempts or 0}
                            for f in report["failures"].items])
