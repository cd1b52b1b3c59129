"""What a member's message may say about them: a few fields, with safe fallbacks."""

from __future__ import annotations

from flask import current_app

from mailer.models import Campaign, Member
from mailer.sending.tokens import preferences_token


class MemberView:
    """The member as templates see them. Blank names fall back, so "Dear {{ member.first_name }}"
    reads "Dear member" rather than "Dear ,"."""

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


def base_url() -> str:
    return current_app.config["BASE_URL"].rstrip("/")


def web_url(campaign: Campaign) -> str:
    """The campaign's web version: no personal data, safe to share."""
    return f"{base_url()}/w/{campaign.web_token}"


def context(campaign: Campaign, member: Member | None, reader: MemberView = SAMPLE) -> dict:
    """Per-member template values; `reader` (the sample member) and inert links when `member` is None."""
    org = current_app.config["ORG_NAME"]
    if member is None:
        prefs = f"{base_url()}/u/preview"
        return {"member": reader, "unsubscribe_url": prefs, "preferences_url": prefs, "web_url": web_url(campaign),
                "org_name": org}
    prefs = f"{base_url()}/u/{preferences_token(member, campaign.id)}"
    return {"member": MemberView.of(member), "unsubscribe_url": prefs, "preferences_url": prefs,
            "web_url": web_url(campaign), "org_name": org}
