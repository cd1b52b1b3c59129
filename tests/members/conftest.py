"""Helpers for the members tests: write exports the way membership systems do, and import them."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from mailer.db import Base, session


def csv_bytes(rows: list[list[str]], delimiter: str = ",", encoding: str = "utf-8", bom: bool = False,
              lineterminator: str = "\r\n") -> bytes:
    """An export as bytes: `rows` (header first) written by the csv module, then encoded."""
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator).writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode(encoding)


@pytest.fixture
def run_import(app):
    """Upload `data` as the CLI does (suggested mapping unless given), apply it and return the plan."""
    from mailer.members import importer

    def go(data: bytes, mapping: dict | None = None, full_export: bool = False, officer=None,
           filename: str = "export.csv"):
        run = importer.start(filename, data, officer)
        if mapping is not None:
            run.mapping = mapping
        run.full_export = full_export
        session.commit()
        result = importer.apply(run, officer)
        session.commit()
        go.last_run = run
        return result

    return go


@pytest.fixture
def plan_import(app):
    """The plan (the diff) for `data`, with the suggested mapping unless given; changes nothing."""
    from mailer.members import exportfile, importer

    def go(data: bytes, mapping: dict | None = None, full_export: bool = False):
        if mapping is None:
            mapping = importer.suggest_mapping(exportfile.read(data).headers)
        return importer.plan(data, mapping, full_export)

    return go


def member_rows() -> list[dict]:
    """Every member as a plain dict, for before/after comparisons."""
    from mailer.models import Member

    session.expire_all()
    out = []
    for m in session.scalars(select(Member).order_by(Member.id)):
        row = {c.name: getattr(m, c.key) for c in Member.__table__.columns}
        out.append(row)
    return out


def database_text() -> str:
    """Every value in every table, as one big string (bytes decoded), to look for what must not be kept."""
    from mailer.db import engine

    parts = []
    with engine().connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        value = bytes(value).decode("utf-8", "replace") + bytes(value).decode("cp1252", "replace")
                    parts.append(str(value))
    return "\n".join(parts)
