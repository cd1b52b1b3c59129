"""Journey: import a messy membership export through the upload, mapping and preview pages."""

from __future__ import annotations

import re
import time

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

    page.get_by_role("button", name="Apply these changes").click(no_wait_after=True)
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


@pytest.mark.browser
def test_a_large_import_shows_its_progress_while_it_runs(page, tmp_path, make_officer, monkeypatch):
    """While the comparison and the writing take seconds, the page shows the count going up (read
    from the task's progress.json) instead of seeming stuck. The streaming import compares 20,000
    rows in well under a second here, so each row is made to take a fifth of a millisecond (the
    server runs in this process): what is tested is the page, not how fast the import is."""
    from mailer import progress

    real_report = progress.report

    def slow_report(*args, **kwargs):
        time.sleep(0.0002)
        return real_report(*args, **kwargs)

    monkeypatch.setattr(progress, "report", slow_report)
    officer = make_officer()
    rows = "".join(f"B{n:05d},Name{n},Family{n},b{n}@example.org,Riverside,Active\n" for n in range(20_000))
    export = write_csv(tmp_path / "big.csv", "Membership number,First name,Last name,Email,Branch,Status\n" + rows)
    sign_in(page, officer.email)
    page.goto("/imports/new")
    page.get_by_label("CSV file").set_input_files(export)
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_text("20000 rows")).to_be_visible()
    # What the progress box says, noted as it changes: Playwright's own checks wait for the next
    # page, and the note is kept in the tab's sessionStorage to read once it has come.
    record_progress(page)
    page.get_by_role("button", name="Continue: show the changes").click(no_wait_after=True)
    expect(page.get_by_role("heading", name="What this import will change")).to_be_visible(timeout=60_000)
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('progress') || '[]')")
    assert seen[0] == "Starting…"
    counts = [int(m.group(1).replace(",", "")) for t in seen
              if (m := re.fullmatch(r"Comparing the file with the members held: ([\d,]+) of 20,000", t))]
    assert counts and 0 < counts[0] < 20_000 and counts == sorted(counts), seen  # it went up while the page waited
    expect(page.locator("#count-new")).to_have_text("20000")

    page.evaluate("sessionStorage.removeItem('progress')")
    record_progress(page)
    page.get_by_role("button", name="Apply these changes").click(no_wait_after=True)  # it takes longer than a click waits
    expect(page.get_by_text("Imported: 20000 new")).to_be_visible(timeout=120_000)
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('progress') || '[]')")
    assert any(re.fullmatch(r"(Comparing the file with the members held|Writing the changes): [\d,]+ of 20,000", t)
               for t in seen), seen


def record_progress(page) -> None:
    """Note each text the page's import progress box shows, in sessionStorage (kept across pages)."""
    page.evaluate("""() => {
        const text = document.querySelector('#import-progress .live-progress-text');
        new MutationObserver(() => {
            const seen = JSON.parse(sessionStorage.getItem('progress') || '[]');
            if (seen[seen.length - 1] !== text.textContent) seen.push(text.textContent);
            sessionStorage.setItem('progress', JSON.stringify(seen));
        }).observe(text, {childList: true, characterData: true, subtree: true});
    }""")
