"""Cleaning member fields as they arrive from spreadsheets and forms: what is accepted, what is refused."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mailer.members.fields import (FieldError, clean_bool, clean_date, clean_email, clean_postcode, clean_status,
                                   clean_text)
from mailer.models import MemberStatus


@pytest.mark.parametrize("raw, expected", [
    ("  Ann.Smith@Example.ORG ", "ann.smith@example.org"),
    ("zoe+labour@example.co.uk", "zoe+labour@example.co.uk"),
])
def test_email_is_trimmed_and_lower_cased(raw, expected):
    assert clean_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_blank_email_is_none(raw):
    assert clean_email(raw) is None


@pytest.mark.parametrize("raw", ["not-an-email", "ann@", "@example.org", "ann smith@example.org", "ann@@example.org"])
def test_invalid_email_is_refused_with_the_value(raw):
    with pytest.raises(FieldError, match="invalid email"):
        clean_email(raw)


@pytest.mark.parametrize("raw, expected", [
    ("Active", MemberStatus.ACTIVE), ("CURRENT", MemberStatus.ACTIVE), ("In Good Standing", MemberStatus.ACTIVE),
    ("new member", MemberStatus.NEW), ("New", MemberStatus.NEW),
    ("In Arrears", MemberStatus.ARREARS), ("in_arrears", MemberStatus.ARREARS), ("Grace period", MemberStatus.ARREARS),
    ("Lapsed", MemberStatus.LAPSED), ("expired", MemberStatus.LAPSED),
    ("Resigned", MemberStatus.RESIGNED), ("Deceased", MemberStatus.RESIGNED),
])
def test_status_words_from_exports(raw, expected):
    assert clean_status(raw) is expected


def test_unknown_status_is_refused_naming_the_word():
    with pytest.raises(FieldError, match="unknown status 'Suspended-ish'"):
        clean_status("Suspended-ish")


def test_blank_status_takes_the_default_or_is_refused_without_one():
    assert clean_status("  ", MemberStatus.LAPSED) is MemberStatus.LAPSED
    with pytest.raises(FieldError, match="no membership status"):
        clean_status("")


@pytest.mark.parametrize("raw, expected", [
    ("05/03/2019", date(2019, 3, 5)),       # dd/mm/yyyy, never mm/dd
    ("5/3/2019", date(2019, 3, 5)),
    ("05/03/19", date(2019, 3, 5)),
    ("2019-03-05", date(2019, 3, 5)),
    ("05.03.2019", date(2019, 3, 5)),
    ("5 March 2019", date(2019, 3, 5)),
    ("05-Mar-2019", date(2019, 3, 5)),
    ("05/03/2019 00:00:00", date(2019, 3, 5)),  # Excel adds midnight
    ("2019-03-05T00:00:00", date(2019, 3, 5)),
])
def test_dates_are_read_the_british_way(raw, expected):
    assert clean_date(raw) == expected


@pytest.mark.parametrize("raw", ["03/25/2019", "31/02/2019", "yesterday", "2019-13-01", "05/03"])
def test_malformed_date_is_refused(raw):
    with pytest.raises(FieldError, match="malformed date"):
        clean_date(raw)


def test_future_date_is_refused():
    tomorrow = (date.today() + timedelta(days=1)).strftime("%d/%m/%Y")
    with pytest.raises(FieldError, match="in the future"):
        clean_date(tomorrow)


def test_blank_date_is_none():
    assert clean_date(" ") is None


@pytest.mark.parametrize("raw, expected", [
    ("sw1a1aa", "SW1A 1AA"), (" m1  1ae ", "M1 1AE"), ("B33 8TH", "B33 8TH"), ("cr2 6xh", "CR2 6XH"),
    ("BFPO 61", "BFPO 61"),  # not a standard form: kept as written (upper-cased)
])
def test_postcode_is_put_in_its_usual_form(raw, expected):
    assert clean_postcode(raw) == expected


def test_postcode_too_long_for_the_column_is_refused():
    with pytest.raises(FieldError, match="too long"):
        clean_postcode("NOT A POSTCODE AT ALL")


@pytest.mark.parametrize("raw, expected", [("Yes", True), ("Y", True), ("opted in", True), ("1", True),
                                           ("No", False), ("do not email", False), ("0", False), ("FALSE", False)])
def test_yes_and_no_words(raw, expected):
    assert clean_bool(raw, default=not expected) is expected


def test_blank_yes_no_takes_the_default_and_nonsense_is_refused():
    assert clean_bool("", True) is True and clean_bool(None, False) is False
    with pytest.raises(FieldError, match="expected yes or no"):
        clean_bool("maybe", True)


def test_text_is_trimmed_and_limited():
    assert clean_text("  Castle Ward ", 20) == "Castle Ward"
    assert clean_text("   ", 20) is None
    assert clean_text("x" * 20, 20) == "x" * 20
    with pytest.raises(FieldError, match="longer than 20"):
        clean_text("x" * 21, 20)


# The fast path of clean_email must judge every address exactly as email-validator does.
EDGE_ADDRESSES = [
    "a@b.co", "Ann.Smith@Example.ORG", "x@localhost", "x@foo.test", "x@foo.invalid", "x@example.com", "a..b@x.org",
    ".a@x.org", "a.@x.org", "a@-x.org", "a@x-.org", "a@x.o", "a@x.123", "a@123.123.123.123", "a@[1.2.3.4]",
    "a" * 64 + "@x.org", "a" * 65 + "@x.org", "a@" + "b" * 63 + ".org", "a@" + "b" * 64 + ".org", "a@x..org",
    "a@x.org.", "a@.x.org", "a+tag@x.org", "o'brien@x.org", "a@x_y.org", "a@xn--bcher-kva.example", "a@xn--zz.org",
    "a@x.local", "a@x.onion", "a@x.arpa", "a@x.example", "a@x.c0m", "a@x.co-", "a@x.-co", "a@x", "a b@x.org",
    "ä@x.org", "a@ä.org", " a@x.org ", "a{b}@x.org", "a@x.internal", "a@x.home.arpa", "a@" + ".".join(["b" * 60] * 4) + ".org",
    "a@x.o-rg", "a@1.org", "a@x.12a", "a@x.a1", "a@x.alt", "a@x.localhost", "a@a-b.c-d.org", "a@xn--.org",
    "a@x--y.org", "a@ab--cd.org", "A@B.CO", "\"quoted\"@x.org", "a@x.org\n", "a@@x.org", "@x.org", "a@",
]


@pytest.mark.parametrize("address", EDGE_ADDRESSES)
def test_clean_email_agrees_with_email_validator(address):
    from email_validator import EmailNotValidError, validate_email

    from mailer.members.fields import FieldError, clean_email

    try:
        expected = validate_email(address.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        expected = None
    try:
        got = clean_email(address)
    except FieldError:
        got = None
    assert got == expected
