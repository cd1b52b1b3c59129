"""Journey: import a messy membership export through the upload, mapping and preview pages."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import expect, sign_in
from tests.conftest import write_csv

# As exports really arrive: semicolons, Windows-1252 (Excel), CRLF, a blank line, a column Mailer must
# never keep, and a membership-number header ("Mem Ref") that no synonym knows.
EXPORT = (
    "Mem Ref;Forename;Surname;Email Address;Branch;Date of Birth;Status\r\n"
    "A0001;Zoë;Okafor;zoe@example.org;Riverside;01/02/1980;Active\r\n"
    "A0002;Tom;Baker;tom.new@example.org;Riverside;03/04/1975;Active\r\n"
    "\r\n"
    "A0003;Priya;Shah;not-an-email;Hillside;05/06/1990;Active\r\n"
    "A0004;Dee;Wright;dee@example.org;Hillside;07/08/1965;In arrears\r\n"
)


@pytest.mark.browser
def test_import_a_messy_export(page, shoot, tmp_path, make_officer, make_member):
    officer = make_officer()
    make_member(membership_number="A0002", first_name="Tom", last_name="Baker", email="tom@example.org")
    export = write_csv(tmp_path / "members export.csv", EXPORT, encoding="cp1252")

    sign_in(page, officer.email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports").click()
    page.get_by_role("link", name="Import the membership export").click()
    page.get_by_label("CSV file").set_input_files(export)
    page.get_by_role("button", name="Upload and check").click()

    # The mapping page: the known headers are guessed, "Mem Ref" is not; the officer chooses it.
    expect(page.get_by_role("heading", level=1)).to_have_text("Check the columns of members export.csv")
    expect(page.get_by_text("4 rows · windows-1252 · separated by “;”")).to_be_visible()
    mem_ref = page.get_by_label("Field for column Mem Ref")
    expect(mem_ref).to_have_value("")
    expect(page.get_by_label("Field for column Surname")).to_have_value("last_name")
    expect(page.get_by_label("Field for column Date of Birth")).to_have_value("")  # never stored
    expect(page.get_by_role("listitem").filter(has_text="Zoë")).to_be_visible()  # decoded from Windows-1252
    # However many columns the export has, the table scrolls inside its box and the page stays put.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    mem_ref.select_option(label="Membership number")
    shoot("import-mapping")
    page.get_by_role("button", name="Continue: show the changes").click()

    # The diff: nothing has changed yet.
    expect(page.get_by_role("heading", name="What this import will change")).to_be_visible()
    expect(page.locator("#count-new")).to_have_text("2")
    expect(page.locator("#count-updated")).to_have_text("1")
    expect(page.locator("#count-errors")).to_have_text("1")
    expect(page.locator("#count-unchanged")).to_have_text("0")
    error_row = page.locator("#errors").get_by_role("row").filter(has_text="A0003")
    # Line 5 of the file: the header is line 1 and the blank line 4 still counts.
    expect(error_row.get_by_role("cell").first).to_have_text("5")
    expect(error_row).to_contain_text("invalid email address 'not-an-email'")
    expect(page.locator("#updated")).to_contain_text("tom@example.org → tom.new@example.org")
    shoot("import-preview")
    page.get_by_role("link", name="Members", exact=True).click()
    expect(page.get_by_text("1 member", exact=True)).to_be_visible()  # really nothing changed yet
    page.go_back()

    page.get_by_role("button", name="Apply these changes").click()
    expect(page.get_by_role("status").filter(has_text="Imported")).to_have_text(
        "Imported: 2 new, 1 updated, 1 rows with errors.")
    expect(page.locator("#import-status")).to_have_text("applied")
    shoot("import-applied")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_text("3 members", exact=True)).to_be_visible()
    rows = page.get_by_role("table").get_by_role("row")
    expect(rows.filter(has_text="A0001")).to_contain_text("Zoë Okafor")
    expect(rows.filter(has_text="A0001")).to_contain_text("to welcome")
    expect(rows.filter(has_text="A0002")).to_contain_text("tom.new@example.org")
    expect(rows.filter(has_text="A0004")).to_contain_text("arrears")
    expect(rows.filter(has_text="A0003")).to_have_count(0)
    expect(page.get_by_text("1980")).to_have_count(0)  # the date of birth was never stored
