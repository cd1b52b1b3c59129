"""Member fields as they arrive from people and spreadsheets: cleaned and checked in one place,
so the import, the edit form and the CLI all agree on what is valid."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from mailer.errors import Invalid
from mailer.models import MemberStatus


class FieldError(Invalid):
    """A value that cannot be stored; the message is shown to the officer as it is."""


# Words membership systems use for each status (Organise / Admin Hub, MemberCentre, spreadsheets).
STATUS_WORDS = {
    MemberStatus.NEW: {"new", "new member", "newmember", "pending", "recent"},
    MemberStatus.ACTIVE: {"active", "current", "member", "in good standing", "good standing", "paid", "ok"},
    MemberStatus.ARREARS: {"arrears", "in arrears", "inarrears", "overdue", "grace", "grace period"},
    MemberStatus.LAPSED: {"lapsed", "lapsing", "expired", "former", "ex-member", "ex member"},
    MemberStatus.RESIGNED: {"resigned", "cancelled", "canceled", "left", "deceased", "expelled", "terminated"},
}
_STATUS_LOOKUP = {word: status for status, words in STATUS_WORDS.items() for word in words}

DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d %b %Y", "%d %B %Y",
                "%Y/%m/%d", "%d-%b-%Y", "%d-%b-%y")

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})$")


def clean_text(value: str | None, limit: int) -> str | None:
    """Trimmed text or None, refused when longer than the column holds."""
    value = (value or "").strip()
    if len(value) > limit:
        raise FieldError(f"is longer than {limit} characters")
    return value or None


# A plain ASCII address: dot-atom local part (RFC 5322 atext) and letters-digits-hyphens domain
# labels. Only its domain needs email-validator's judgement (special-use names, label rules,
# length), and a membership export has few domains: see clean_email.
_PLAIN_ADDRESS = re.compile(r"^([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
                            r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]+)$")


@lru_cache(maxsize=65_536)  # a big export has thousands of domains: one member's own, one employer's
def _checked_domain(domain: str) -> str | None:
    """The normalised domain as email-validator gives it, or None when it refuses the domain
    (judged on a stand-in local part: the domain's rules do not depend on it)."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def clean_email(value: str | None) -> str | None:
    """A syntactically valid address, lower-cased; None when blank. The rules are email-validator's;
    for a plain ASCII address only the domain is handed to it (once per domain), which is what
    makes a 100,000-row import fast; anything else goes to it whole."""
    value = (value or "").strip()
    if not value:
        return None
    plain = _PLAIN_ADDRESS.match(value)
    if plain and len(plain.group(1)) <= 64 and len(value) <= 254:
        domain = _checked_domain(plain.group(2).lower())
        if domain is not None:
            return f"{plain.group(1)}@{domain}".lower()
        raise FieldError(f"invalid email address {value!r}")
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise FieldError(f"invalid email address {value!r}") from None


def clean_status(value: str | None, default: MemberStatus | None = None) -> MemberStatus:
    """A membership status from the words exports use; blank gives `default`."""
    word = " ".join((value or "").strip().lower().replace("_", " ").split())
    if not word:
        if default is None:
            raise FieldError("no membership status")
        return default
    if word in _STATUS_LOOKUP:
        return _STATUS_LOOKUP[word]
    raise FieldError(f"unknown status {value!r} (expected one of: new, active, arrears, lapsed, resigned)")


def clean_date(value: str | None) -> date | None:
    """A date written the British way (dd/mm/yyyy) or in ISO form; None when blank."""
    value = (value or "").strip()
    if not value:
        return None
    value = value.split(" 00:00")[0].split("T00:00")[0]  # spreadsheets add midnight to dates
    parsed = _common_date(value)
    if parsed is not None:
        if parsed > date.today():
            raise FieldError(f"date {value!r} is in the future")
        return parsed
    for fmt in DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if parsed > date.today():
            raise FieldError(f"date {value!r} is in the future")
        return parsed
    raise FieldError(f"malformed date {value!r} (expected dd/mm/yyyy)")


_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _common_date(value: str) -> date | None:
    """dd/mm/yyyy or yyyy-mm-dd, the forms nearly every export uses, without strptime (which
    looks up the locale on every call: a fifth of a 100,000-row import's planning). None for
    anything else, which the formats in DATE_FORMATS then try."""
    try:
        if m := _DMY.fullmatch(value):
            return date(int(m[3]), int(m[2]), int(m[1]))
        if m := _ISO.fullmatch(value):
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:  # 31/02/2020: let the formats below refuse it as they always have
        return None
    return None


def clean_postcode(value: str | None) -> str | None:
    """A UK postcode in its usual form ("SW1A 1AA"); anything else is kept as written."""
    value = " ".join((value or "").upper().split())
    if not value:
        return None
    m = _POSTCODE.match(value)
    cleaned = f"{m.group(1)} {m.group(2)}" if m else value
    if len(cleaned) > 10:
        raise FieldError(f"postcode {value!r} is too long")
    return cleaned


def clean_bool(value: str | None, default: bool) -> bool:
    """Yes/no words from a spreadsheet; blank gives `default`."""
    word = (value or "").strip().lower()
    if not word:
        return default
    if word in {"y", "yes", "true", "1", "opt in", "opted in", "opt-in", "subscribed"}:
        return True
    if word in {"n", "no", "false", "0", "opt out", "opted out", "opt-out", "unsubscribed", "do not email"}:
        return False
    raise FieldError(f"expected yes or no, got {value!r}")
