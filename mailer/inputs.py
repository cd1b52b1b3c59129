"""What each action takes as input, one pydantic schema per action, for the pages and the API alike.

The JSON API validates its request bodies and queries with these (spectree documents them in the
OpenAPI document), and the pages read their forms into the same schemas (`mailer.web.forms.parse`),
so the same bad input is refused with the same words whichever way it came. A refusal names each
field at fault in one shape, `[{"field": ..., "message": ...}]` (`field_problems`).

Below the pages, the API and the command line, above the services: it may read the services'
constants (the starters, the cursor's size) but never imports mailer.web or mailer.api.

Over 400 lines on purpose: it is a catalogue, one short declaration per action (the API's, then
those only the pages have), read by looking an action up; kept in one module so that the shared
field types and messages at the top are seen beside every use.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

from mailer.compose.starters import all_starters
from mailer.errors import Invalid
from mailer.pagination import MAX_CURSOR
from mailer.members.fields import FieldError, clean_date, clean_email, clean_status
from mailer.words import parse_date, parse_datetime

LONDON = ZoneInfo("Europe/London")


WHEN_MISSING = {"starts_at": "Give the date and time the meeting starts."}


def _read_when(value, info):
    """A date and time as an aware UTC datetime: ISO 8601 with its zone, or as officers type it
    ("03/12/2026 19:30", read as UK time, as is an ISO time without a zone)."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise PydanticCustomError("when_missing", WHEN_MISSING.get(info.field_name, "Give the date and time."))
        value = parse_datetime(text)
        if value is None:
            raise PydanticCustomError("when", "{text} is not a date and time: write it as dd/mm/yyyy hh:mm.",
                                      {"text": repr(text[:40])})
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=LONDON)).astimezone(timezone.utc)
    return value


def _read_day(value, info):
    """A date: ISO (2026-12-03) or as typed in the UK (03/12/2026); never month first."""
    if isinstance(value, str):
        found = parse_date(value)
        if found is None:  # in the words of mailer.members.segments
            raise PydanticCustomError("day", "{label} must be a date (dd/mm/yyyy)",
                                      {"label": (info.field_name or "it").replace("_", " ")})
        return found
    return value


def _refused_unless(check, message: str):
    """A before-validator refusing, in `message`, what `check` does not accept (what it accepts is
    then read by the field's type)."""
    def read(value):
        if not check(value):
            raise PydanticCustomError("refused", message)
        return value
    return BeforeValidator(read)


def _read_words(value):
    """A list of words (tags): each item may hold several, separated by commas, as typed in a box."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [word.strip() for v in value for word in v.split(",") if word.strip()]
    return value


def _by(cleaner, then=lambda found: found):
    """A before-validator from one of the member fields' cleaners (mailer.members.fields): the same
    rule and words as an import's, for the pages and the API. Blank text is left to the schema."""
    def check(value):
        if not isinstance(value, str) or not value.strip():
            return value
        try:
            return then(cleaner(value))
        except FieldError as exc:
            raise PydanticCustomError("member_field", "{reason}", {"reason": str(exc)}) from None
    return BeforeValidator(check)


When = Annotated[datetime, BeforeValidator(_read_when)]
Day = Annotated[date, BeforeValidator(_read_day)]
# A browser sends a textarea's line ends as CR LF (HTML's form encoding): text kept as written
# stores them as LF, as the API's clients send them.
TypedText = Annotated[str, BeforeValidator(lambda v: v.replace("\r\n", "\n") if isinstance(v, str) else v),
                      StringConstraints(max_length=100_000)]


# pydantic's words for the commonest refusals, as an officer reads them ({label}: the field's name).
MESSAGES = {
    "missing": "Give the {label}.",
    "string_too_long": "The {label} is longer than {max_length} characters.",
    "string_too_short": "Give the {label}.",
    "too_long": "The {label} has more than {max_length} entries.",
    "int_parsing": "The {label} must be a whole number.",
    "int_type": "The {label} must be a whole number.",
    "greater_than_equal": "The {label} must be at least {ge}.",
    "less_than_equal": "The {label} must be at most {le}.",
    "literal_error": "The {label} must be one of {expected}.",
    "enum": "The {label} must be one of {expected}.",
    "extra_forbidden": "There is no field called {label}.",
}


def field_problems(error: ValidationError) -> list[dict]:
    """A schema's refusal, field by field: the one shape of field errors (pages and API)."""
    problems = []
    for e in error.errors(include_url=False):
        loc = [str(p) for p in e.get("loc", ()) if p != "__root__"]
        names = [p for p in loc if not p.isdigit()]
        label = names[-1].replace("_", " ") if names else "value"
        template = MESSAGES.get(e.get("type", ""))
        message = template.format(label=label, **(e.get("ctx") or {})) if template else e.get("msg", "invalid")
        problems.append({"field": ".".join(loc) or None, "message": message})
    return problems


class InputInvalid(Invalid):
    """Input its schema refuses: `errors` is the list of field problems (`field_problems`)."""

    def __init__(self, errors: list[dict]):
        super().__init__(" ".join(e["message"] for e in errors), field=errors[0]["field"] if errors else None)
        self.errors = errors

    def field_errors(self) -> list[dict]:
        return self.errors


def validate(schema: type[BaseModel], data: dict) -> BaseModel:
    """`data` read into `schema`, or InputInvalid (422) naming each field at fault."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InputInvalid(field_problems(exc)) from None


# --- shared -----------------------------------------------------------------------------------

MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL; a larger one names nothing
Text = Annotated[str, StringConstraints(max_length=250)]
Status = Literal["new", "active", "arrears", "lapsed", "resigned"]
StreamName = Literal["notices", "bulletins"]
def _known_starter(value):
    if isinstance(value, str) and value not in {s.slug for s in all_starters()}:
        raise PydanticCustomError("starter", "There is no starter called {name!r}.", {"name": value[:80]})
    return value


StarterName = Annotated[Literal[tuple(s.slug for s in all_starters())],  # the folders of campaigns/
                        BeforeValidator(_known_starter)]


class Strict(BaseModel):
    """Input: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(Strict):
    limit: int = Field(50, ge=1, le=200, description="Items per page.")
    after: str | None = Field(None, min_length=1, max_length=MAX_CURSOR, pattern=r"^[A-Za-z0-9_-]+$",
                              description="The cursor from the previous page's Link: rel=next (opaque).")


class RegisterQuery(PageQuery):
    limit: int = Field(100, ge=1, le=500, description="Members per page.")


class MemberQuery(PageQuery):
    q: Annotated[str, StringConstraints(max_length=200)] = Field("", description="Name, email or membership number.")
    status: Status | None = None
    branch_id: int | None = Field(None, ge=1, le=MAX_ID)


class MemberPatch(Strict):
    """The fields to change; those left out stay as they are. Values are read as the membership
    export's are (dates as YYYY-MM-DD or DD/MM/YYYY; consent as yes/no)."""

    membership_number: Annotated[str, StringConstraints(max_length=40)] | None = None
    first_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    email: Annotated[str, StringConstraints(max_length=254), _by(clean_email)] | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    postcode: Annotated[str, StringConstraints(max_length=12)] | None = None
    ward: Annotated[str, StringConstraints(max_length=120)] | None = None
    polling_district: Annotated[str, StringConstraints(max_length=40)] | None = None
    branch: Annotated[str, StringConstraints(max_length=120)] | None = None
    status: Annotated[Status, _by(clean_status, lambda found: found.value)] | None = None
    joined_on: Annotated[date, _by(clean_date)] | None = None
    notices_consent: bool | None = None
    bulletins_consent: bool | None = None
    tags: Annotated[list[Annotated[str, StringConstraints(max_length=60)]] | None,
                    BeforeValidator(_read_words)] = Field(None, max_length=50,
                                                          description="Also: one text, comma-separated.")

    def raw(self) -> dict[str, str]:
        """The fields given, as the member service reads them (the membership export's words)."""
        raw = {}
        for name, value in self.model_dump(exclude_unset=True).items():
            if name == "tags":
                raw["tags"] = ", ".join(value or [])
            elif isinstance(value, bool):
                raw[name] = "yes" if value else "no"
            else:
                raw[name] = "" if value is None else str(value)
        return raw


class EraseIn(Strict):
    """Erasing a member's personal data (pages only): why, for the audit log."""

    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class ListFilters(Strict):
    """Members matching every filter given; a filter left out matches everyone."""

    statuses: list[Status] | None = Field(None, max_length=5)
    branches: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=100)
    wards: list[Annotated[str, StringConstraints(max_length=120)]] | None = Field(None, max_length=200)
    polling_districts: list[Annotated[str, StringConstraints(max_length=40)]] | None = Field(None, max_length=200)
    tags: list[Annotated[str, StringConstraints(max_length=60)]] | None = Field(None, max_length=50)
    officer_roles: list[Literal["clp_secretary", "clp_officer", "branch_secretary", "chair"]] | None = None


class Segment(ListFilters):
    """Who a campaign goes to; every filter left out matches everyone."""

    joined_after: Day | None = None
    joined_before: Day | None = None
    exclude: ListFilters | None = Field(None, description="Members to leave out: those matching any of these.")


class SegmentCountIn(Strict):
    segment: Segment = Field(default_factory=Segment)
    stream: StreamName = "bulletins"


class CampaignIn(Strict):
    starter: StarterName | None = Field(None, description="A starter from campaigns/.")
    stream: StreamName = "bulletins"
    name: Text | None = None
    subject: Text | None = None
    preheader: Text | None = None
    body: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    body_format: Literal["markdown", "mjml"] | None = None
    segment: Segment | None = None


class CampaignPatch(Strict):
    name: Text | None = None
    subject: Text | None = None
    preheader: Text | None = None
    from_name: Annotated[str, StringConstraints(max_length=120)] | None = None
    body: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    body_format: Literal["markdown", "mjml"] | None = None
    stream: StreamName | None = None
    segment: Segment | None = None


class ConfirmIn(Strict):
    """The token of a confirmation page's "yes" (pages only: mailer.sending.audience)."""

    confirm: Annotated[str, StringConstraints(max_length=2000)] | None = None


class SegmentNameIn(Strict):
    """Saving the composer's filters under a name (pages only)."""

    segment_name: Annotated[str, StringConstraints(max_length=500)] = ""


class SavedSegmentIn(Strict):
    """Using saved filters in the composer (pages only)."""

    saved_segment: int | None = Field(None, ge=1, le=MAX_ID)


class ScheduleIn(Strict):
    at: When = Field(description="When to send, with its time zone (e.g. 2026-12-03T18:00:00+00:00); "
                                 "without one, UK time.")


ThreadStatusName = Literal["needs_action", "actioned"]


class ThreadQuery(PageQuery):
    status: ThreadStatusName | None = None
    q: Annotated[str, StringConstraints(max_length=200)] = Field("", description="Words in the subject, sender or text.")
    assigned_to_me: bool = False


class ReplyIn(Strict):
    body: Annotated[str, StringConstraints(max_length=50_000),
                    _refused_unless(lambda v: not isinstance(v, str) or v.strip(), "Write the reply first.")]
    with_quote: bool = False
    in_reply_to: int | None = Field(None, ge=1, le=MAX_ID, description="The message answered (default: the newest).")


class StatusIn(Strict):
    status: ThreadStatusName


class AssignIn(Strict):
    officer_id: int | None = Field(None, ge=1, le=MAX_ID, description="None: give it to nobody.")


class NoteIn(Strict):
    """An internal note on a thread (pages only)."""

    text: Annotated[str, StringConstraints(max_length=50_000)] = ""


class ImportUploadIn(Strict):
    """A membership export uploaded as a file (pages); the API's ImportIn sends it as text."""

    full_export: bool = Field(False, description="The file lists every member: report those missing.")


class ColumnIn(Strict):
    """One column's choice on the import's mapping page: the member field it fills, or none."""

    field: Annotated[str, StringConstraints(max_length=60)] = ""


class ImportIn(Strict):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    csv: Annotated[str, StringConstraints(min_length=1, max_length=20_000_000)] = Field(
        description="The export as exported from the membership system (CSV text).")
    full_export: bool = Field(False, description="The file lists every member: report those missing.")


MeetingKindName = Literal["general", "agm", "special", "executive", "branch"]


class MeetingIn(Strict):
    title: Annotated[str, StringConstraints(max_length=200),
                     _refused_unless(lambda v: not isinstance(v, str) or v.strip(), "Give the meeting a title.")]
    kind: Annotated[MeetingKindName,
                    _refused_unless(lambda v: v in get_args(MeetingKindName), "Choose the kind of meeting.")]
    starts_at: When = Field(description="With its time zone; without one, UK time.")
    ends_at: When | None = None
    branch_id: int | None = Field(None, ge=1, le=MAX_ID, description="None: a CLP meeting.")
    venue_name: Annotated[str, StringConstraints(max_length=200)] = ""
    venue_address: Annotated[str, StringConstraints(max_length=500)] = ""
    online_url: Annotated[str, StringConstraints(max_length=500)] = ""
    dial_in: Annotated[str, StringConstraints(max_length=500)] = ""
    accessibility: Annotated[str, StringConstraints(max_length=5000)] = ""
    quorum: Annotated[int, _refused_unless(
        lambda v: not isinstance(v, str) or v.strip().isdigit(),
        "The quorum is a number of members (leave it empty for the usual rule).")] | None = Field(
        None, ge=0, le=100_000)
    entitled_tags: Annotated[list[Annotated[str, StringConstraints(max_length=60)]] | None,
                             BeforeValidator(_read_words)] = Field(
        None, max_length=50, description="Who may attend: members with one of these tags (delegates, a committee); "
                                         "left out: the body's members.")

    def values(self) -> dict:
        """The meeting's values as the meetings service takes them (one line for each line of text)."""
        values = self.model_dump(exclude={"entitled_tags"})
        for name in ("title", "venue_name", "venue_address", "online_url", "dial_in"):
            values[name] = " ".join(values[name].split())
        values["accessibility"] = values["accessibility"].strip()
        values["entitled"] = {"tags": self.entitled_tags} if self.entitled_tags else None
        return values


class AgendaItemIn(Strict):
    id: int | None = Field(None, ge=1, le=MAX_ID, description="An existing item's id, to keep its papers.")
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    notes: Annotated[str, StringConstraints(max_length=5000)] = ""


class AgendaIn(Strict):
    items: list[AgendaItemIn] = Field(max_length=100)


class NoticeIn(Strict):
    override: Annotated[str, StringConstraints(max_length=500)] = Field(
        "", description="Why a notice shorter than the rules' period is allowed (audited); empty: keep to the rules.")


class PresentIn(Strict):
    present: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(max_length=100_000,
                                                                   description="Every member present (the whole list).")



# --- pages only: meetings ----------------------------------------------------------------------

class AgendaRowIn(Strict):
    """One row of the agenda editor: the API's AgendaItemIn, with where it goes and whether it goes."""

    id: int | None = Field(None, ge=1, le=MAX_ID)
    title: Annotated[str, StringConstraints(max_length=300)] = ""
    notes: Annotated[str, StringConstraints(max_length=5000)] = ""
    position: Annotated[str, StringConstraints(max_length=20)] = ""
    remove: bool = False


class AgendaRowsIn(Strict):
    rows: int = Field(0, ge=0, le=500)  # an agenda, not a denial of service


class PaperIn(Strict):
    item_id: int | None = Field(None, ge=1, le=MAX_ID)


class ReasonIn(Strict):
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class HeldIn(Strict):
    early: bool = False


class RegisterIn(PresentIn):
    """The register's page: the API's PresentIn, for the members shown on this page of it."""

    present: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field([], max_length=100_000)
    shown: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=100_000)


class AcceptIn(Strict):
    accept: bool = False


class AnswerIn(Strict):
    member_id: int | None = Field(None, ge=1, le=MAX_ID)
    response: Literal["none", "attending", "apologies", "not_attending"] | None = None


class MinutesTextIn(Strict):
    """The minutes' editor: each item's text by its id, and who was present."""

    texts: dict[int, TypedText] = {}
    present_text: TypedText = None  # not on the form: unchanged


class ThreadChoiceIn(Strict):
    thread_id: int | None = Field(None, ge=1, le=MAX_ID)


class AdoptIn(Strict):
    at_meeting: int | None = Field(None, ge=1, le=MAX_ID)


# --- pages only: officers, tokens, members' own choices -----------------------------------------

class OfficerIn(Strict):
    email: Annotated[str, StringConstraints(max_length=254)] = ""
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    role: Annotated[str, _refused_unless(lambda v: v in ("clp_secretary", "clp_officer", "branch_secretary", "chair"),
                                         "Choose a role.")] = ""
    branch: int | None = Field(None, ge=1, le=MAX_ID)
    active: bool = False


class TokenIn(Strict):
    name: Annotated[str, StringConstraints(max_length=200)] = ""
    days: int | None = Field(None, ge=1, le=100_000)


class PreferencesIn(Strict):
    choice: Literal["none", "notices", "all"]
