"""Journey: the register at the door of a 99-member meeting, with the keyboard alone. A name
filter (the list is whole without JavaScript), Enter ticks the one member found, the save bar
stays on screen however far the list scrolls, and "I'll be there" answers show as such."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailer.db import session, utcnow
from mailer.meetings import service as meetings
from mailer.models import Attendance, Member, MemberStatus, MeetingKind, Response
from tests.browser.conftest import expect, sign_in

pytestmark = pytest.mark.browser


def _meeting_of_99(secretary, branch):
    for n in range(99):
        session.add(Member(membership_number=f"R{n:04d}", first_name=f"Person{n:02d}", last_name=f"Door{n:02d}",
                           email=f"door{n}@example.org", status=MemberStatus.ACTIVE, branch_id=branch.id))
    session.add(Member(membership_number="R9999", first_name="Zainab", last_name="Okafor", email="z@example.org",
                       status=MemberStatus.ACTIVE, branch_id=branch.id))
    session.commit()
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=20)
    meeting, _ = meetings.create(secretary, {"title": "Branch meeting", "kind": MeetingKind.GENERAL.value,
                                             "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                                             "venue_name": "Library", "branch_id": branch.id})
    session.commit()
    coming = session.query(Member).filter(Member.membership_number.in_(["R0003", "R0004"])).all()
    for member in coming:
        meetings.record_response(meeting, member, Response.ATTENDING, "link")
    session.commit()
    return meeting


def tab_to(page, matches: str, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies the JavaScript test `matches` (given `el`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!({matches}); }})()"):
            return
    raise AssertionError(f"Tab never reached an element where {matches}")


def test_the_register_at_the_door_with_the_keyboard(page, shoot, make_officer, make_branch):
    branch = make_branch("Northgate")
    secretary = make_officer()
    meeting = _meeting_of_99(secretary, branch)
    sign_in(page, secretary.email)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/meetings/{meeting.id}/register")

    expect(page.locator("#attending-count")).to_contain_text("2 said they'll be there")
    expect(page.locator("table.register tr", has_text="Door03")).to_contain_text("I'll be there")
    expect(page.locator("table.register tr", has_text="Door05")).to_contain_text("no answer")
    save = page.get_by_role("button", name="Save who is present")
    expect(save).to_be_in_viewport()  # the list is 5,000 px long; the bar is on screen from the start
    page.screenshot(path=str(shoot("register-phone").with_name("register-phone-screen.png")))

    # Keyboard only: Tab to the filter, type part of a name, Enter ticks the one found.
    tab_to(page, "el.id === 'register-filter'")
    page.keyboard.type("okafor")
    expect(page.locator("table.register tbody tr:visible")).to_have_count(1)
    expect(page.locator("#register-filter-status")).to_have_text("1 member found")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Zainab Okafor is present")).to_be_checked()
    expect(page.locator("table.register tbody tr:visible")).to_have_count(100)  # the filter is cleared
    expect(page.locator("#ticked-count")).to_have_text("1 ticked")

    # A second one by number, ticked with the space bar after tabbing into the list.
    page.keyboard.type("R0042")
    tab_to(page, "el.id && el.id.startsWith('present-')")
    page.keyboard.press("Space")
    expect(page.locator("#ticked-count")).to_have_text("2 ticked")
    tab_to(page, "el.textContent.trim() === 'Save who is present'")
    expect(save).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Register saved")).to_have_text("Register saved: 2 present.")
    present = {m for (m,) in session.query(Member.last_name).join(Attendance, Attendance.member_id == Member.id)
               .filter(Attendance.meeting_id == meeting.id, Attendance.present.is_(True))}
    assert present == {"Okafor", "Door42"}

    # Without JavaScript the page is the plain, whole list, and the filter is not offered.
    context = page.context.browser.new_context(base_url=page.url.split("/meetings")[0], java_script_enabled=False)
    context.add_cookies(page.context.cookies())
    plain = context.new_page()
    plain.goto(f"/meetings/{meeting.id}/register")
    expect(plain.locator("table.register tbody tr")).to_have_count(100)
    expect(plain.locator("#register-filter")).to_be_hidden()
    context.close()
