"""Reading a membership export as it really comes: any of the usual encodings and separators,
quoted fields with newlines, and column headers that vary from one system to the next; and
writing CSV that a spreadsheet opens as data, never as formulas."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from mailer.errors import Invalid

# Member fields an export column can fill, with the headers seen for each (compared normalised:
# lower case, letters and digits only). "full_name" is split into first and last name.
FIELDS = {
    "membership_number": "Membership number",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name",
    "email": "Email",
    "phone": "Phone",
    "postcode": "Postcode",
    "ward": "Ward",
    "polling_district": "Polling district",
    "branch": "Branch",
    "status": "Status",
    "joined_on": "Joined",
    "bulletins_consent": "Bulletins consent",
}

SYNONYMS = {
    "membership_number": ["membershipnumber", "memberid", "membershipno", "memberno", "membernumber",
                          "membershipid", "membership", "membershipref", "memberref", "membernum"],
    "first_name": ["firstname", "forename", "forenames", "givenname", "first", "preferredname"],
    "last_name": ["lastname", "surname", "familyname", "last"],
    "full_name": ["name", "fullname", "membername", "displayname"],
    "email": ["email", "emailaddress", "email1", "primaryemail", "emailaddress1", "mail", "personalemail"],
    "phone": ["phone", "telephone", "mobile", "mobilephone", "phonenumber", "mobilenumber", "homephone",
              "tel", "telephonenumber", "landline"],
    "postcode": ["postcode", "postalcode", "zip", "zipcode", "postcodezip"],
    "ward": ["ward", "wardname", "electoralward", "localauthorityward"],
    "polling_district": ["pollingdistrict", "pd", "pollingdistrictcode", "pollingdistrictname", "polldistrict"],
    "branch": ["branch", "branchname", "localbranch", "clpbranch", "branchclp"],
    "status": ["status", "membershipstatus", "memberstatus"],
    "joined_on": ["joined", "joindate", "joineddate", "datejoined", "joiningdate", "membersince", "startdate",
                  "joinedon", "dateofjoining"],
    "bulletins_consent": ["emailconsent", "emailoptin", "canemail", "bulletinsconsent", "marketingconsent",
                          "emailmarketing", "contactbyemail", "okaytoemail", "oktoemail"],
}
_SYNONYM_LOOKUP = {syn: name for name, syns in SYNONYMS.items() for syn in syns}


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ExportFileError(Invalid):
    """The file as a whole cannot be read; the message says why."""


def normalise_header(header: str) -> str:
    """Compare headers by their letters and digits only: "Membership No." == "membership_no"."""
    return re.sub(r"[^a-z0-9]", "", header.lower())


def guess_field(header: str) -> str:
    """The member field a header names, or "" when it is not one Mailer keeps."""
    return _SYNONYM_LOOKUP.get(normalise_header(header), "")


@dataclass
class ExportFile:
    """A decoded export: its headers and its records, each with the line it starts on. Read with
    keep_records=False, `records` is empty and `iter_records` parses the text again as it goes (a
    100,000-row export is then never held as cells, only as its text)."""

    encoding: str
    delimiter: str
    headers: list[str]
    records: list[tuple[int, list[str]]]
    text: str = ""
    count: int = 0  # records read (with whole=False, only whether there is one)

    def preview(self, n: int = 5) -> list[list[str]]:
        return [cells for _line, cells in self.records[:n]]

    def iter_records(self) -> Iterator[tuple[int, list[str]]]:
        """Each record with its line, consumed as it is given (`records` is empty afterwards)."""
        if self.records:
            records, self.records = self.records, []
            records.reverse()
            while records:
                yield records.pop()
            return
        parsed = _parse(self.text, self.delimiter)
        next(parsed, None)  # the header row
        yield from parsed


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding name: UTF-16 with its BOM (Excel's "Unicode text"), UTF-8 (with or without
    BOM), else Windows-1252 (Excel's default CSV here)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "windows-1252"


def _delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(text[:20_000], delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: first_line.count(d) for d in ",;\t"}
        return max(counts, key=counts.get) if any(counts.values()) else ","


# A line as io.StringIO(text, newline="") reads it (ending at \r\n, \r or \n), without the
# copy of the whole text (four bytes a character) that StringIO makes.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _parse(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows (the header row first), each with the line it starts on."""
    reader = csv.reader((m.group() for m in _LINE.finditer(text)), delimiter=delimiter)
    last_line = 0
    try:
        for cells in reader:
            start, last_line = last_line + 1, reader.line_num
            if cells and (cells[0].strip() or "".join(cells).strip()):
                yield start, cells
    except csv.Error as exc:
        raise ExportFileError(f"Line {reader.line_num}: the file cannot be read as CSV ({exc}).") from None


def read(data: bytes, keep_records: bool = True, whole: bool = True) -> ExportFile:
    """Parse an export's bytes. Raises ExportFileError when there is nothing to import. Every
    row is read (a malformed one is refused now), but kept only with `keep_records`; without
    `whole` (and records), only the first record is read now, and a malformed row is refused
    when iter_records reaches it."""
    if not data.strip():
        raise ExportFileError("The file is empty.")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ExportFileError("This looks like a spreadsheet, not a CSV file: save it as CSV and try again.")
    text, encoding = decode(data)
    delimiter = _delimiter(text)
    parsed = _parse(text, delimiter)
    first = next(parsed, None)
    headers = [c.strip() for c in first[1]] if first else None
    records: list[tuple[int, list[str]]] = []
    if keep_records:
        records = list(parsed)
        count = len(records)
    elif not whole:
        count = 1 if next(parsed, None) else 0  # at least one record; the rest is read as it is used
    else:
        count = sum(1 for _ in parsed)
    if headers is None:
        raise ExportFileError("The file has no header row.")
    if not any(guess_field(h) for h in headers) and len(headers) < 2:
        raise ExportFileError("No columns found: is this a CSV export with a header row?")
    if any(_EMAIL.match(h) for h in headers):  # else the first member would be taken for the headers
        raise ExportFileError("The first row holds an email address, not column headings: "
                              "export the file with its header row.")
    if not count:
        raise ExportFileError("The file has a header row but no members in it.")
    return ExportFile(encoding, delimiter, headers, records, "" if keep_records else text, count)


def check_mapping(mapping: dict[str, str]) -> list[str]:
    """Problems with a header -> field mapping (an empty list when it can be used)."""
    problems = []
    used: dict[str, str] = {}
    for header, name in mapping.items():
        if not name:
            continue
        if name not in FIELDS:
            problems.append(f"Column {header!r}: unknown field {name!r}.")
        elif name in used:
            problems.append(f"Columns {used[name]!r} and {header!r} are both mapped to {FIELDS[name]}.")
        used[name] = header
    if "membership_number" not in used and "email" not in used:
        problems.append("Map a column to Membership number or Email: members are matched by one of them.")
    return problems


def rows(export: ExportFile, mapping: dict[str, str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Each record as {field: raw text}, only for mapped columns (unmapped ones are never kept).
    The records are consumed as they are read (see ExportFile.iter_records): a 100,000-row export
    is not held twice over, as cells and as fields."""
    index = [(name, export.headers.index(header)) for header, name in mapping.items()
             if name and header in export.headers]
    width = max((i for _name, i in index), default=-1) + 1
    for line, cells in export.iter_records():
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        raw = {name: cells[i] for name, i in index}
        if "full_name" in raw:
            first, _, last = raw.pop("full_name").strip().rpartition(" ")
            raw.setdefault("first_name", first if first else last)
            raw.setdefault("last_name", last if first else "")
        yield line, raw


# --- writing CSV -------------------------------------------------------------------------------

# A spreadsheet runs a cell beginning with these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeWriter:
    """csv.writer whose every cell goes through safe_cell: use it for every CSV Mailer hands out."""

    def __init__(self, out, **kwargs):
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])
