"""Keyset pagination: every big list pages by "the rows after this one", never by OFFSET.

OFFSET makes a database read and throw away every row before the page, so page 1,000 of the
members costs a thousand pages. A keyset page asks for the rows that sort after the last row
shown (or before the first), which an index finds directly, whatever the depth.

A list gives its order as `Key`s; the last key must be unique (the id), so the order is total.
The cursor in the URL is the sort values of one row, encoded; a cursor that cannot be read
(edited by hand, from an old link) gives the first page rather than an error. Columns that may be
NULL are ordered by "is null" first, so the order is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select

from mailer.db import session

MAX_CURSOR = 2_000  # characters: a cursor is a handful of sort values


@dataclass(frozen=True)
class Key:
    column: ColumnElement
    descending: bool = False
    nullable: bool | None = None  # None: as the column says

    def may_be_null(self) -> bool:
        if self.nullable is not None:
            return self.nullable
        return bool(getattr(getattr(self.column, "expression", self.column), "nullable", True))


@dataclass
class Cursor:
    """Where a page starts: after a row, before a row, at the end, or (all None) at the start."""

    after: list | None = None
    before: list | None = None
    last: bool = False
    start: bool = False  # asked for the first page (lists that open at their end need to know)

    @classmethod
    def from_args(cls, args) -> Cursor:
        """Read ?after=, ?before= or ?last=1 from request arguments."""
        if args.get("last") == "1":
            return cls(last=True)
        if args.get("first") == "1":
            return cls(start=True)
        for name in ("after", "before"):
            if args.get(name):
                values = decode(args[name])
                if values is not None:
                    return cls(**{name: values})
        return cls()


@dataclass
class KeysetPage:
    """One page of a list. `total` is exact when counted, else None; links are cursors or None."""

    items: list
    per_page: int
    total: int | None = None
    next_after: str | None = None
    prev_before: str | None = None
    first: bool = True           # is this the first page?
    at_end: bool = True          # is this the last page?
    keyset: bool = field(default=True, init=False)  # templates tell it from the numbered Page

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def pages(self) -> int:  # for templates that only ask "is there more than one page?"
        return 1 if self.first and self.at_end else 2


def _plain(value):
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _typed(value):
    if isinstance(value, dict):
        if "t" in value:
            moment = datetime.fromisoformat(value["t"])
            if moment.tzinfo is None:
                raise ValueError("a time without its zone")
            return moment
        if "d" in value:
            return date.fromisoformat(value["d"])
        raise ValueError("unknown cursor value")
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError("unknown cursor value")
    return value


def encode(values: Sequence) -> str:
    raw = json.dumps([_plain(v) for v in values], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> list | None:
    """The sort values in a cursor, or None when it cannot be read."""
    if not text or len(text) > MAX_CURSOR:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = json.loads(raw)
        if not isinstance(values, list):
            return None
        return [_typed(v) for v in values]
    except (ValueError, binascii.Error, UnicodeDecodeError, TypeError):
        return None


def _fits(column: ColumnElement, value) -> bool:
    """Whether a value read from a cursor is of the column's kind (a hand-made cursor must not
    reach the database as a comparison it cannot make)."""
    if value is None:
        return True
    try:
        kind = column.type.python_type
    except (AttributeError, NotImplementedError):
        return True
    if issubclass(kind, Enum):
        return isinstance(value, str) and value in {m.value for m in kind}
    if kind is datetime:
        return isinstance(value, datetime)
    if kind is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, kind)


def _expanded(keys: Sequence[Key]) -> list[tuple[ColumnElement, bool]]:
    """(expression, descending) for each key, a NULL flag before each column that may be NULL."""
    out = []
    for key in keys:
        if key.may_be_null():
            out.append((case((key.column.is_(None), 1), else_=0), key.descending))
        out.append((key.column, key.descending))
    return out


def _beyond(columns: list[tuple[ColumnElement, bool]], values: list, reverse: bool) -> ColumnElement:
    """Rows that come after `values` in the order (before them when `reverse`)."""
    def later(col, desc, value):
        if value is None:
            return false()  # within the NULL group every value is equal
        return col < value if desc != reverse else col > value

    def same(col, value):
        return col.is_(None) if value is None else col == value

    alternatives, prefix = [], []
    for (col, desc), value in zip(columns, values):
        alternatives.append(and_(*prefix, later(col, desc, value)))
        prefix.append(same(col, value))
    condition = or_(*alternatives)
    col, desc = columns[0]
    if values[0] is not None:  # a plain range on the leading column, which an index can seek to
        condition = and_(col <= values[0] if desc != reverse else col >= values[0], condition)
    return condition


def paginate(stmt: Select, keys: Sequence[Key], cursor: Cursor, per_page: int, count: bool | Select = True,
             rows: bool = False) -> KeysetPage:
    """One page of `stmt` in the order of `keys`. Items are the first entity of each row (or whole
    rows, without the sort values, when `rows`). `count` adds the exact total (one more query): of
    `stmt`, or of the Select given, the same rows in a form cheaper to count."""
    columns = _expanded(keys)
    n_values = len(columns)
    reverse = cursor.before is not None or cursor.last
    values = cursor.after if cursor.after is not None else cursor.before
    if values is not None and (len(values) != n_values
                               or not all(_fits(col, v) for (col, _d), v in zip(columns, values))):
        values, reverse, cursor = None, False, Cursor()  # a cursor of another order: start again
    query = stmt.add_columns(*(col.label(f"_key{i}") for i, (col, _desc) in enumerate(columns)))
    if values is not None:
        query = query.where(_beyond(columns, values, reverse))
    order = [(col.asc() if desc == reverse else col.desc()) for col, desc in columns]
    fetched = session.execute(query.order_by(None).order_by(*order).limit(per_page + 1)).all()
    more = len(fetched) > per_page
    fetched = fetched[:per_page]
    if reverse:
        fetched.reverse()
    width = len(fetched[0]) - n_values if fetched else 0
    if rows and fetched:
        shape = namedtuple("Row", fetched[0]._fields[:width], rename=True)
        items = [shape(*r[:width]) for r in fetched]
    else:
        items = [r[0] for r in fetched]
    first_keys = list(fetched[0][width:]) if fetched else None
    last_keys = list(fetched[-1][width:]) if fetched else None
    if reverse:
        at_start, at_end = not more, cursor.last or cursor.before is None
        if cursor.before is not None:
            at_end = False
    else:
        at_start, at_end = values is None, not more
    total = None
    counted = count if isinstance(count, Select) else stmt if count else None
    if counted is not None:
        total = session.scalar(select(func.count()).select_from(counted.order_by(None).subquery()))
    return KeysetPage(items, per_page, total,
                      next_after=encode(last_keys) if last_keys is not None and not at_end else None,
                      prev_before=encode(first_keys) if first_keys is not None and not at_start else None,
                      first=at_start, at_end=at_end)


def paginate_list(items: Sequence, key, cursor: Cursor, per_page: int) -> KeysetPage:
    """One page of a list already in its order (a file index, not a table), with the same cursors
    and pager as the database lists; `key(item)` is unique. A cursor naming no item gives the
    first page."""
    position = {key(item): i for i, item in enumerate(items)}
    start = 0
    if cursor.last:
        start = max(0, len(items) - per_page)
    elif cursor.after:
        start = position.get(cursor.after[0], -1) + 1
    elif cursor.before and cursor.before[0] in position:
        start = max(0, position[cursor.before[0]] - per_page)
    chunk = list(items[start:start + per_page])
    at_end = start + per_page >= len(items)
    return KeysetPage(chunk, per_page, total=len(items),
                      next_after=encode([key(chunk[-1])]) if chunk and not at_end else None,
                      prev_before=encode([key(chunk[0])]) if chunk and start > 0 else None,
                      first=start == 0, at_end=at_end)
