"""Journey: an officer signs in through the login page, sees the overview, and signs out."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import expect, sign_in


@pytest.mark.browser
def test_sign_in_see_the_overview_and_sign_out(page, shoot, make_officer, make_member):
    officer = make_officer("secretary@example.org", name="Sam Secretary")
    make_member()
    make_member(to_welcome=True)

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))  # the login wall, remembering where we were going
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    shoot("login")

    sign_in(page, officer.email)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview")).to_have_attribute(
        "aria-current", "page")
    expect(page.get_by_role("link", name=re.compile(r"^2 members"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^1 not yet welcomed"))).to_be_visible()
    expect(page.get_by_text("Sam Secretary · CLP secretary")).to_be_visible()
    shoot("overview")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto("/members/")
    expect(page).to_have_url(re.compile(r"/login\?next="))  # the session really is gone


@pytest.mark.browser
def test_a_wrong_password_is_refused(page, make_officer):
    officer = make_officer()
    page.goto("/login")
    page.get_by_label("Email").fill(officer.email)
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    expect(page.get_by_label("Email")).to_have_value(officer.email)
