"""No field or role identifiers where a person reads, UK dates, and a favicon from the app."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from mailer import words
from mailer.db import session
from mailer.models import AuditEvent, MeetingKind, Role
from tests.conftest import login

IDENTIFIERS = ("officer.create", "clp_officer", "bulletins_consent", "notices_consent", "member.update",
               "True → False", "(version 0)", "a annual")


def _text(response) -> str:
    return response.data.decode()


def test_the_mapping_reads_as_english():
    assert words.action("officer.create") == "officer added"
    assert words.action("something.new_thing") == "something new thing"  # never shown raw
    assert words.role("clp_officer") == "CLP officer" and words.role(Role.CHAIR) == "Chair"
    assert words.fields(["phone", "bulletins_consent", "tags"]) == "phone, consent to bulletins and tags"
    assert words.value(True) == "yes" and words.value(False) == "no" and words.value("2026-12-03") == "03/12/2026"
    assert words.with_article(MeetingKind.AGM.label.lower()) == "an annual general meeting"
    assert words.with_article("general meeting") == "a general meeting"
    moment = datetime(2026, 12, 3, 19, 30, tzinfo=timezone.utc)
    assert words.long_when(moment) == "Thu 3 December 2026, 19:30" and words.when(moment) == "03/12/2026 19:30"
    summer = datetime(2026, 7, 1, 8, 0, tzinfo=timezone.utc)
    assert words.local_input(summer) == "01/07/2026 09:00"  # UK time, day first


@pytest.mark.parametrize("typed, expected", [
    ("03/12/2026 19:30", datetime(2026, 12, 3, 19, 30)),
    ("3/12/2026, 7.30", datetime(2026, 12, 3, 7, 30)),
    ("03-12-2026 1930", datetime(2026, 12, 3, 19, 30)),
    ("2026-12-03T19:30", datetime(2026, 12, 3, 19, 30)),  # what older forms and scripts send
    ("12/31/2026 19:30", None),  # month first: not a UK date, refused rather than misread
    ("next Tuesday", None), ("", None), ("03/12/2026", None),
])
def test_dates_are_read_day_first(typed, expected):
    assert words.parse_datetime(typed) == expected


def test_parse_date():
    assert words.parse_date("3/12/26") == date(2026, 12, 3) and words.parse_date("2026-12-03") == date(2026, 12, 3)
    assert words.parse_date("31/02/2026") is None


def test_audit_log_and_member_page_use_words(signed_in, make_member, make_officer):
    make_officer("vice@example.org", Role.CLP_OFFICER)
    session.add(AuditEvent(actor="secretary@example.org", action="officer.create", subject_type="officer",
                           subject_id=2, changes={"role": [None, "clp_officer"]}))
    member = make_member(first_name="Nye", last_name="Bevan", phone="1")
    form = {"membership_number": member.membership_number, "first_name": "Nye", "last_name": "Bevan",
            "email": member.email, "status": "active", "phone": "2", "notices_consent": "yes",
            "bulletins_consent": "no", "tags": "driver"}
    page = _text(signed_in.post(f"/members/{member.id}/edit", data=form, follow_redirects=True))
    assert "Saved: phone, consent to bulletins and tags." in page
    assert "consent to bulletins: yes → no" in page
    session.add(AuditEvent(actor="x", action="member.update", subject_type="member", subject_id=member.id,
                           changes={"bulletins_consent": [True, False]}))
    session.commit()
    audit = _text(signed_in.get("/audit/"))
    assert "Officer added" in audit and "CLP officer" in audit and "consent to bulletins" in audit
    for identifier in IDENTIFIERS:
        assert identifier not in audit and identifier not in page, identifier


def test_meeting_pages_say_it_plainly(signed_in, make_branch):
    from tests.web.test_meetings_web import confirm_and_send, create, local

    north = make_branch("Northgate")
    meeting_id = create(signed_in, kind="agm", title="Annual general meeting", starts_at=local(40),
                        ends_at=local(40, 21, 0))
    page = _text(signed_in.get(f"/meetings/{meeting_id}"))
    assert "an annual general meeting of the CLP" in page and "a annual" not in page
    confirm_and_send(signed_in, meeting_id, "notice")
    page = _text(signed_in.get(f"/meetings/{meeting_id}"))
    assert "(version 0)" not in page and "Notice" in page
    branch_meeting = create(signed_in, body=str(north.id), kind="branch", title="Northgate branch meeting - December",
                            starts_at=local(20), ends_at=local(20, 21, 0))
    preview = _text(signed_in.get(f"/meetings/{branch_meeting}/send/notice/preview"))
    assert "Northgate branch meeting - December" in preview and "December of Northgate branch" not in preview


def test_header_names_the_role_once(client, make_officer):
    officer = make_officer("sec@example.org", Role.CLP_SECRETARY, name="CLP Secretary")
    login(client, officer.email)
    page = _text(client.get("/"))
    assert "CLP Secretary · CLP secretary" not in page and "CLP Secretary" in page


def test_favicon_is_served_by_the_app(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert response.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
