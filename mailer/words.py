"""Plain words for what the code calls by identifiers: fields, actions, roles, streams, statuses.

One mapping, used by every page, flash, export and PDF a person reads, so `bulletins_consent`
or `officer.create` never reach a screen. An identifier with no entry is turned into words
("polling_district" -> "polling district") rather than shown raw.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")

FIELDS = {
    "bulletins_consent": "consent to bulletins",
    "notices_consent": "emailed notices",
    "email_health": "email health",
    "first_name": "first name",
    "last_name": "last name",
    "membership_number": "membership number",
    "polling_district": "polling district",
    "branch_id": "branch",
    "joined_on": "joined",
    "to_welcome": "to welcome",
    "starts_at": "start",
    "ends_at": "end",
    "venue_name": "venue",
    "venue_address": "venue address",
    "online_url": "online link",
    "dial_in": "dial-in",
    "body_name": "meeting of",
    "scheduled_at": "send time",
    "ical_sequence": "version",
    "postal_address": "postal address",
}

VALUES = {True: "yes", False: "no", None: ""}

ACTIONS = {
    "officer.create": "officer added",
    "retention.run": "old personal data deleted (retention)",
    "officer.update": "officer changed",
    "officer.deactivate": "officer switched off",
    "member.create": "member added",
    "member.update": "member details changed",
    "member.erase": "member's personal data erased",
    "member.export": "member's data exported",
    "member.welcomed": "member welcomed",
    "member.import": "member imported",
    "consent.change": "consent changed",
    "campaign.send": "campaign sent",
    "campaign.weekly_bulletin": "weekly bulletin drafted",
    "campaign.schedule": "campaign scheduled",
    "campaign.unschedule": "campaign back to draft",
    "campaign.pause": "campaign paused",
    "campaign.resume": "campaign resumed",
    "campaign.cancel": "campaign cancelled",
    "campaign.test_send": "test email sent",
    "campaign.attach": "attachment added",
    "campaign.detach": "attachment removed",
    "segment.create": "filters saved",
    "meeting.notice": "notice sent",
    "meeting.notice_override": "notice sent late (reason given)",
    "meeting.update_notice": "meeting update sent",
    "meeting.cancel": "meeting cancelled",
    "meeting.held": "meeting marked as held",
    "minutes.approve": "minutes approved",
    "minutes.circulate": "minutes circulated",
    "minutes.adopt": "minutes adopted",
}

ROLES = {"clp_secretary": "CLP secretary", "clp_officer": "CLP officer", "branch_secretary": "Branch secretary",
         "chair": "Chair"}

STREAMS = {"notices": "notices (formal notices and minutes: sent unless the member objected)",
           "bulletins": "bulletins (news: sent only with consent)"}

STATUSES = {"soft_bouncing": "soft bouncing", "on_hold": "on hold", "not_attending": "not attending",
            "hard_bounce": "hard bounce"}

PURPOSES = {"notice": "notice", "update": "update of the notice", "cancellation": "cancellation",
            "reminder": "reminder", "minutes": "minutes"}

ANSWER_SOURCES = {"link": "link in the notice", "calendar": "calendar reply", "reply": "replied by email",
                  "officer": "recorded by an officer", "api": "through the API"}


def _value(raw) -> str:
    raw = getattr(raw, "value", raw)
    return str(raw) if raw is not None else ""


def humanise(identifier) -> str:
    """`polling_district` -> "polling district"; `member.update` -> "member update"."""
    return _value(identifier).replace("_", " ").replace(".", " ").strip()


def field(name) -> str:
    """A model field as a person says it."""
    return FIELDS.get(_value(name)) or humanise(name)


def fields(names) -> str:
    """Several fields in a sentence: "phone, consent to bulletins and tags"."""
    words = [field(n) for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1] if words else ""


def value(raw) -> str:
    """A stored value as a person reads it (yes/no, UK dates, enum values in words)."""
    if isinstance(raw, bool) or raw is None:
        return VALUES[raw]
    if isinstance(raw, datetime):
        return when(raw)
    if isinstance(raw, date):
        return uk_date(raw)
    text = _value(raw)
    if len(text) == 10 and text[4] == "-" and text[7] == "-":  # an ISO date in an audit change
        try:
            return uk_date(date.fromisoformat(text))
        except ValueError:
            pass
    if text in ROLES:
        return ROLES[text]
    return status(text) if text in STATUSES else text


def action(name) -> str:
    """An audit action in words; unknown ones are humanised."""
    return ACTIONS.get(_value(name)) or humanise(name)


def role(name) -> str:
    return ROLES.get(_value(name)) or humanise(name)


def stream(name) -> str:
    return STREAMS.get(_value(name)) or humanise(name)


def status(name) -> str:
    return STATUSES.get(_value(name)) or humanise(name)


def purpose(name) -> str:
    return PURPOSES.get(_value(name)) or humanise(name)


def answer_source(name) -> str:
    """How a member's answer to a notice reached us (register, member story)."""
    return ANSWER_SOURCES.get(_value(name)) or humanise(name)


def uk_date(value) -> str:
    """dd/mm/yyyy (UK), from a date or an aware datetime (in UK time)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(LONDON) if value.tzinfo else value
    return value.strftime("%d/%m/%Y")


def when(value) -> str:
    """An aware (UTC) datetime in UK time: "03/12/2026 19:30"."""
    return value.astimezone(LONDON).strftime("%d/%m/%Y %H:%M") if value else ""


def long_when(value) -> str:
    """"Thu 3 December 2026, 19:30" in UK time."""
    return value.astimezone(LONDON).strftime("%a %-d %B %Y, %H:%M") if value else ""


DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d")
TIME_FORMATS = ("%H:%M", "%H.%M", "%H%M")
DATE_HINT, DATETIME_HINT = "dd/mm/yyyy", "dd/mm/yyyy hh:mm"


def parse_date(text: str) -> date | None:
    """A date as people in the UK type it (03/12/2026, 3/12/26), or ISO (2026-12-03); None if
    it is not one. Never month first: 03/12 is the 3rd of December."""
    text = (text or "").strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parse_datetime(text: str) -> datetime | None:
    """A date and time ("03/12/2026 19:30", "3/12/2026, 7.30"; or the ISO "2026-12-03T19:30"
    older forms and scripts send), naive (the caller says which zone); None if unreadable."""
    text = " ".join((text or "").replace(",", " ").split())
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    day, _, clock = text.rpartition(" ")
    found = parse_date(day)
    if found is None:
        return None
    for fmt in TIME_FORMATS:
        try:
            moment = datetime.strptime(clock, fmt)
        except ValueError:
            continue
        return datetime(found.year, found.month, found.day, moment.hour, moment.minute)
    return None


def local_input(value: datetime | None) -> str:
    """A stored UTC time as a form shows it: UK time, dd/mm/yyyy hh:mm."""
    return value.astimezone(LONDON).strftime("%d/%m/%Y %H:%M") if value else ""


def with_article(noun: str) -> str:
    """"a general meeting", "an annual general meeting"."""
    noun = noun.strip()
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun if noun else noun


def meeting_name(title: str, body_name: str) -> str:
    """"General committee of Anytown CLP", but "Northgate branch meeting - December" alone when
    the title already names its body (not "... - December of Northgate branch")."""
    title, body_name = (title or "").strip(), (body_name or "").strip()
    if not body_name or body_name.lower() in title.lower():
        return title
    return f"{title} of {body_name}"


def campaign_status(campaign, now: datetime | None = None) -> str:
    """A campaign's status as officers read it. "Send now" stores a scheduled campaign due at
    once, for the start job to pick up: that is "starting", not "scheduled"."""
    from mailer.db import utcnow

    raw = _value(campaign.status)
    if raw == "scheduled" and campaign.scheduled_at is not None and campaign.scheduled_at <= (now or utcnow()):
        return "starting"
    return status(raw)


def init_app(app) -> None:
    """Make the words available to every template as filters."""
    for name, fn in (("field_words", field), ("fields_words", fields), ("value_words", value),
                     ("action_words", action), ("role_words", role), ("stream_words", stream),
                     ("status_words", status), ("purpose_words", purpose), ("source_words", answer_source), ("uk_date", uk_date),
                     ("long_when", long_when), ("with_article", with_article),
                     ("campaign_status", campaign_status)):
        app.jinja_env.filters[name] = fn
