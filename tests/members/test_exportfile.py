"""Reading membership exports as they really come: encodings, separators, quoted newlines, varying headers."""

from __future__ import annotations

import pytest

from mailer.members import exportfile
from mailer.members.exportfile import ExportFileError, check_mapping, guess_field, read, rows
from tests.members.conftest import csv_bytes

NAMES = ["Zoë", "Siân", "Ó Briain", "Siobhán", "Müller"]


@pytest.mark.parametrize("header, field", [
    ("Membership Number", "membership_number"), ("Member ID", "membership_number"),
    ("membership_no", "membership_number"), ("Membership No.", "membership_number"),
    ("First name", "first_name"), ("Firstname", "first_name"), ("FIRST_NAME", "first_name"),
    ("Surname", "last_name"), ("Last Name", "last_name"),
    ("Email", "email"), ("Email address", "email"), ("E-mail Address", "email"),
    ("Branch", "branch"), ("Ward", "ward"), ("Polling District", "polling_district"),
    ("Status", "status"), ("Membership Status", "status"),
    ("Joined", "joined_on"), ("Join Date", "joined_on"), ("Date Joined", "joined_on"),
    ("Postcode", "postcode"), ("Mobile", "phone"), ("Name", "full_name"),
])
def test_headers_are_recognised_by_their_synonyms(header, field):
    assert guess_field(header) == field


@pytest.mark.parametrize("header", ["Date of Birth", "Ethnicity", "Gender", "Address Line 1", "", "Notes"])
def test_headers_mailer_does_not_keep_map_to_nothing(header):
    assert guess_field(header) == ""


@pytest.mark.parametrize("encoding, bom", [("utf-8", False), ("utf-8", True), ("cp1252", False)])
def test_names_survive_every_usual_encoding(encoding, bom):
    data = csv_bytes([["Membership Number", "First name"]] + [[f"L{i}", n] for i, n in enumerate(NAMES)],
                     encoding=encoding, bom=bom)
    export = read(data)
    assert export.headers == ["Membership Number", "First name"]  # no BOM glued to the first header
    assert [cells[1] for _line, cells in export.records] == NAMES
    assert export.encoding == ("windows-1252" if encoding == "cp1252" else "utf-8")


def test_cp1252_punctuation_is_decoded():
    data = "Email,Last name\nann@example.org,O\u2019Neill \u2013 Smith\n".encode("cp1252")
    assert read(data).records[0][1][1] == "O\u2019Neill \u2013 Smith"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_separator_is_detected_even_when_values_hold_the_other_one(delimiter):
    other = ";" if delimiter == "," else ","
    table = [["Membership Number", "Address", "Email"],
             ["L1", f"Flat 2{other} 10 High St{other} Anytown", "a@example.org"],
             ["L2", f"3 Low Rd{other} Town", "b@example.org"]]
    export = read(csv_bytes(table, delimiter=delimiter))
    assert export.delimiter == delimiter
    assert export.headers == table[0]
    assert [cells for _l, cells in export.records] == table[1:]


def test_quoted_fields_with_newlines_keep_their_text_and_the_line_numbers_stay_physical():
    table = [["Membership Number", "Notes", "Email"],
             ["L1", "first line\r\nsecond line\r\nthird line", "a@example.org"],  # lines 2-4
             ["L2", "plain", "b@example.org"],                                    # line 5
             ["L3", "one\ntwo", "c@example.org"],                                 # lines 6-7
             ["L4", "", "d@example.org"]]                                         # line 8
    export = read(csv_bytes(table))
    assert [line for line, _c in export.records] == [2, 5, 6, 8]
    assert export.records[0][1][1] == "first line\r\nsecond line\r\nthird line"


def test_blank_lines_are_skipped_but_still_counted():
    data = b"Membership Number,Email\r\n\r\nL1,a@example.org\r\n,\r\n\r\nL2,b@example.org\r\n"
    export = read(data)
    assert [(line, cells[0]) for line, cells in export.records] == [(3, "L1"), (6, "L2")]


def test_old_mac_line_endings_count_as_lines():
    table = [["Membership Number", "Notes"], ["L1", "a\rb"], ["L2", "c"]]
    export = read(csv_bytes(table, lineterminator="\r"))
    assert [(line, cells) for line, cells in export.records] == [(2, ["L1", "a\rb"]), (4, ["L2", "c"])]


def test_bare_newlines_and_no_final_newline_are_fine():
    export = read(b"Member ID;Email address\nL1;a@example.org\nL2;b@example.org")
    assert [(line, cells) for line, cells in export.records] == [(2, ["L1", "a@example.org"]),
                                                                  (3, ["L2", "b@example.org"])]


def test_header_cells_are_trimmed():
    assert read(b" Membership Number , Email \nL1,a@example.org\n").headers == ["Membership Number", "Email"]


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"  \r\n \r\n", "empty"),
    (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "spreadsheet"),
    (b"hello there this is a letter\nnot a table at all\n", "No columns found"),
])
def test_unreadable_files_are_refused_with_a_reason(data, message):
    with pytest.raises(ExportFileError, match=message):
        read(data)


def test_a_file_with_headers_but_no_members_is_refused():
    with pytest.raises(ExportFileError, match="no members"):
        read(b"Membership Number,Email\r\n\r\n")


def test_a_file_without_its_header_row_is_refused_rather_than_losing_the_first_member():
    with pytest.raises(ExportFileError, match="not column headings"):
        read(b"L001,Ann,ann@example.org\r\nL002,Bob,bob@example.org\r\n")


def test_preview_gives_the_first_rows_only():
    table = [["Email"]] + [[f"m{i}@example.org"] for i in range(8)]
    export = read(csv_bytes(table))
    assert export.preview(3) == [["m0@example.org"], ["m1@example.org"], ["m2@example.org"]]


def test_rows_keep_only_mapped_columns():
    table = [["Membership Number", "Date of Birth", "Email", "Ethnicity"],
             ["L1", "01/01/1960", "a@example.org", "Secret"]]
    export = read(csv_bytes(table))
    mapping = {"Membership Number": "membership_number", "Date of Birth": "", "Email": "email", "Ethnicity": ""}
    assert list(rows(export, mapping)) == [(2, {"membership_number": "L1", "email": "a@example.org"})]
    assert export.records == []  # consumed as read: a big export is not held twice


def test_short_rows_read_missing_cells_as_blank():
    export = read(b"Membership Number,Email,Ward\r\nL1,a@example.org\r\n")
    assert list(rows(export, {"Membership Number": "membership_number", "Email": "email", "Ward": "ward"})) == \
        [(2, {"membership_number": "L1", "email": "a@example.org", "ward": ""})]


@pytest.mark.parametrize("full, first, last", [
    ("Ann Smith", "Ann", "Smith"), ("Mary Ann Smith", "Mary Ann", "Smith"), ("Cher", "Cher", ""),
])
def test_a_full_name_column_fills_first_and_last_name(full, first, last):
    export = read(csv_bytes([["Email", "Name"], ["a@example.org", full]]))
    (_line, raw), = rows(export, {"Email": "email", "Name": "full_name"})
    assert (raw["first_name"], raw["last_name"]) == (first, last)
    assert "full_name" not in raw


def test_separate_name_columns_win_over_a_full_name():
    export = read(csv_bytes([["Email", "Name", "First name"], ["a@example.org", "Ann Smith", "Annie"]]))
    (_line, raw), = rows(export, {"Email": "email", "Name": "full_name", "First name": "first_name"})
    assert raw["first_name"] == "Annie" and raw["last_name"] == "Smith"


def test_a_usable_mapping_has_no_problems():
    assert check_mapping({"Member ID": "membership_number", "DOB": "", "Email": "email"}) == []
    assert check_mapping({"Email address": "email"}) == []


@pytest.mark.parametrize("mapping, problem", [
    ({"First name": "first_name"}, "Membership number or Email"),
    ({"Email": "email", "Email 2": "email"}, "both mapped to Email"),
    ({"Email": "email", "DOB": "date_of_birth"}, "unknown field 'date_of_birth'"),
])
def test_mapping_problems_are_explained(mapping, problem):
    problems = check_mapping(mapping)
    assert any(problem in p for p in problems), problems


def test_every_field_a_column_can_fill_has_a_label_and_synonyms():
    assert set(exportfile.SYNONYMS) == set(exportfile.FIELDS)


def test_utf16_unicode_text_from_excel_is_read():
    from mailer.members import exportfile

    data = "Membership Number\tFirst name\tEmail\r\nA1\tSiân\tsian@example.org\r\n".encode("utf-16")
    export = exportfile.read(data)
    assert export.encoding == "utf-16" and export.delimiter == "\t"
    assert export.records[0][1][1] == "Siân"
