"""What a member's message may say about them: a few fields, with safe fallbacks."""

from __future__ import annotations

from flask import current_app
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from mailer.db import session
from mailer.links import external_url

from mailer.models import Campaign, Member
from mailer.compose.tokens import PreferencesTokens, preferences_token


class MemberView:
    """The member as templates see them. Blank names fall back, so "Dear {{ member.first_name }}"
    reads "Dear member" rather than "Dear ,"."""

    FIELDS = frozenset({"first_name", "last_name", "full_name", "email", "membership_number", "branch", "ward",
                        "polling_district"})  # all plain strings: the template sandbox hands them out as they are

    def __init__(self, first_name: str = "", last_name: str = "", email: str = "", membership_number: str = "",
                 branch: str = "", ward: str = "", polling_district: str = ""):
        self.first_name = first_name.strip() or "member"
        self.last_name = last_name.strip()
        self.full_name = " ".join(p for p in (first_name.strip(), last_name.strip()) if p) or "member"
        self.email = email
        self.membership_number = membership_number
        self.branch = branch
        self.ward = ward
        self.polling_district = polling_district

    @classmethod
    def of(cls, member: Member) -> MemberView:
        return cls(member.first_name or "", member.last_name or "", member.email or "",
                   member.membership_number or "", member.branch.name if member.branch else "",
                   member.ward or "", member.polling_district or "")


SAMPLE = MemberView("Jane", "Example", "jane@example.org", "A0000000", "Northgate", "Castle", "CA1")
GENERIC = MemberView()  # any reader of the web version: "Dear member"


def web_url(campaign: Campaign) -> str:
    """The campaign's web version: no personal data, safe to share."""
    return external_url("public.web_version", web_token=campaign.web_token)


class PlaceholderMeeting:
    """What a meeting-notice starter shows when used for a campaign that is not a meeting's."""

    title = "[meeting]"
    body = "[the CLP or branch]"
    kind = "[kind of meeting]"
    when = "[day, date and time]"
    date = "[date]"
    time = "[time]"
    where = "[venue and address]"
    online = ""
    dial_in = ""
    accessibility = "[step-free access, hearing loop...]"
    agenda = "1. Apologies\n2. Minutes of the last meeting\n3. Correspondence\n4. Any other business"
    reason = "[why it is cancelled]"


def _meeting_id(campaign: Campaign) -> int | None:
    """The meeting a campaign notices, looked up once per campaign object (sends render thousands)."""
    if not hasattr(campaign, "_mailer_meeting_id"):
        from mailer.models import MeetingCampaign

        campaign._mailer_meeting_id = session.scalar(
            select(MeetingCampaign.meeting_id).where(MeetingCampaign.campaign_id == campaign.id)) if campaign.id else None
    return campaign._mailer_meeting_id


def context(campaign: Campaign, member: Member | None, reader: MemberView = SAMPLE) -> dict:
    """Per-member template values; `reader` (the sample member) and inert links when `member` is None.
    A meeting's notices also carry the member's one-click attendance links."""
    org = current_app.config["ORG_NAME"]
    meeting_id = _meeting_id(campaign)
    if member is None:
        prefs = external_url("public.preferences", token="preview")
        values = {"member": reader, "unsubscribe_url": prefs, "preferences_url": prefs, "web_url": web_url(campaign),
                  "org_name": org, "meeting": PlaceholderMeeting}
        if meeting_id:
            values |= {f"{n}_url": external_url("public.meeting_response", token="preview", response=n)
                       for n in ("attending", "apologies", "not_attending")}
        return values
    prefs = external_url("public.preferences", token=preferences_token(member, campaign.id))
    values = {"member": MemberView.of(member), "unsubscribe_url": prefs, "preferences_url": prefs,
              "web_url": web_url(campaign), "org_name": org, "meeting": PlaceholderMeeting}
    if meeting_id:
        values |= response_links(meeting_id, member)
    return values


class Contexts:
    """`context(campaign, member)` for many members of one campaign (a send): what is the same for
    every member (the web version's link, the meeting, the preferences link around its token, the
    token's signer) is worked out once. The same values as `context`."""

    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        self.meeting_id = _meeting_id(campaign)
        self.fixed = {"web_url": web_url(campaign), "org_name": current_app.config["ORG_NAME"],
                      "meeting": PlaceholderMeeting}
        self.tokens = PreferencesTokens(campaign.id)
        marker = "MAILERTOKEN" + "0" * 8
        url = external_url("public.preferences", token=marker)
        # Tokens are URL-safe (base64url and dots), so the link is the same around any of them.
        self.prefs_before, self.prefs_after = url.split(marker) if url.count(marker) == 1 else (None, None)

    def __call__(self, member: Member) -> dict:
        token = self.tokens(member)
        prefs = (self.prefs_before + token + self.prefs_after if self.prefs_before is not None
                 else external_url("public.preferences", token=token))
        values = {"member": MemberView.of(member), "unsubscribe_url": prefs, "preferences_url": prefs, **self.fixed}
        if self.meeting_id:
            values |= response_links(self.meeting_id, member)
        return values


def response_serializer() -> URLSafeSerializer:
    """Signs a meeting notice's answer links (read back by mailer.meetings.attendance)."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="mailer.attendance")


def response_token(meeting_id: int, member: Member) -> str:
    """Signed; carries the meeting and the member's random public id, never the member's id."""
    return response_serializer().dumps([meeting_id, member.public_id])


def response_links(meeting_id: int, member: Member) -> dict[str, str]:
    """The three one-click links a notice carries for `member`."""
    token = response_token(meeting_id, member)
    return {f"{name}_url": external_url("public.meeting_response", token=token, response=value) for name, value in
            (("attending", "attending"), ("apologies", "apologies"), ("not_attending", "not_attending"))}
