"""Journeys on the members pages: finding a member, and a branch secretary's limits."""

from __future__ import annotations

import re

import pytest

from mailer.models import Role
from tests.browser.conftest import expect, sign_in


@pytest.mark.browser
def test_search_for_a_member_and_open_their_page(page, shoot, make_officer, make_branch, make_member):
    officer = make_officer()
    riverside = make_branch("Riverside")
    make_member(first_name="Ada", last_name="Lovelace", membership_number="L0001", email="ada@example.org",
                branch=riverside, ward="Castle", polling_district="CA1", postcode="AB1 2CD")
    make_member(first_name="Grace", last_name="Hopper", branch=riverside, ward="Castle")
    make_member(first_name="Alan", last_name="Turing", branch=riverside, ward="Abbey")

    sign_in(page, officer.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members", level=1)).to_be_visible()
    expect(page.get_by_text("3 members", exact=True)).to_be_visible()
    shoot("members-list")

    search = page.get_by_role("search", name="Find members")
    search.get_by_label("Search").fill("lovelace")
    search.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"[?&]q=lovelace"))
    expect(page.get_by_text("1 member", exact=True)).to_be_visible()
    expect(search.get_by_label("Search")).to_have_value("lovelace")
    expect(page.get_by_role("link", name="Grace Hopper")).to_have_count(0)

    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_role("heading", name="Ada Lovelace", level=1)).to_be_visible()
    details = page.locator("dl.details").first
    expect(details).to_contain_text("L0001")
    expect(details).to_contain_text("ada@example.org")
    expect(details).to_contain_text("Riverside")
    expect(details).to_contain_text("CA1")
    shoot("member-page")

    page.get_by_role("link", name="← Members").click()
    page.get_by_label("Ward").select_option("Castle")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("2 members", exact=True)).to_be_visible()


@pytest.mark.browser
def test_a_branch_secretary_cannot_see_another_branchs_member(page, shoot, make_officer, make_branch, make_member):
    north, south = make_branch("North"), make_branch("South")
    secretary = make_officer("north@example.org", role=Role.BRANCH_SECRETARY, branch=north)
    ours = make_member(first_name="Nia", last_name="Northern", branch=north)
    theirs = make_member(first_name="Sid", last_name="Southern", branch=south, email="sid@example.org")

    sign_in(page, secretary.email)
    expect(page.get_by_role("link", name=re.compile(r"^1 members in North"))).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Imports")).to_have_count(0)  # an export holds every branch

    nav.get_by_role("link", name="Members").click()
    expect(page.get_by_text("1 member", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Nia Northern")).to_be_visible()
    expect(page.get_by_role("link", name="Sid Southern")).to_have_count(0)
    expect(page.get_by_label("Branch")).to_have_count(0)  # no branch filter: there is only one to see

    for term in ("Southern", "sid@example.org", theirs.membership_number):
        page.get_by_label("Search").fill(term)
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_text("0 members", exact=True)).to_be_visible()
        expect(page.get_by_text("No members match.")).to_be_visible()

    response = page.goto(f"/members/{theirs.id}")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("There is nothing at this address.")
    expect(page.get_by_text("Southern")).to_have_count(0)
    shoot("not-found")
    for path in (f"/members/{theirs.id}/edit", f"/members/{ours.id + theirs.id + 1000}"):
        assert page.goto(path).status == 404

    assert page.goto(f"/members/{ours.id}").status == 200
    expect(page.get_by_role("heading", name="Nia Northern", level=1)).to_be_visible()
