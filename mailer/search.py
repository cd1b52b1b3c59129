"""Substring search that an index answers: FTS5 (trigram tokenizer) on SQLite, pg_trgm on PostgreSQL.

Officers find a member by any part of a name, address or membership number ("okonk", "jones12@").
A LIKE '%text%' cannot use an ordinary index, so on 100,000 members every search read the whole
table (and on SQLite called a Python lower() on every row). Migration 0009 adds:

- SQLite: a `members_fts` FTS5 table with the trigram tokenizer (case-insensitive), kept in step
  by triggers on `members`. A phrase query finds every row with the text inside one column.
- PostgreSQL: trigram GIN indexes on exactly the expressions searched here, so the same
  `lower(...) LIKE '%text%'` is answered from the index.

Text under three characters cannot be found by trigrams: it is searched by scanning, as before.
The objects are not in the models (they are not tables the app reads or writes); the migration
test knows their names from here.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, column, func, literal_column, or_, select, table

from mailer.db import session

MEMBERS_FTS = "members_fts"
INBOUND_FTS = "inbound_fts"
TRIGRAM_INDEXES = ("ix_members_name_trgm", "ix_members_email_trgm", "ix_members_number_trgm",
                   "ix_inbound_messages_text_trgm")
MIN_INDEXED = 3  # trigrams: shorter text cannot be looked up

_fts_present: dict[int, bool] = {}


def is_search_object(name: str) -> bool:
    """A table or index made by the search migration rather than by the models."""
    return name.startswith((MEMBERS_FTS, INBOUND_FTS)) or name in TRIGRAM_INDEXES


def contains(text: str) -> str:
    """A LIKE pattern finding `text` literally ("_" and "%" typed in an email are not wildcards)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def full_name(member_table) -> ColumnElement:
    """first_name || ' ' || last_name, with the space as a literal, so it is the very expression
    the PostgreSQL index is built on (a bound parameter would not match it)."""
    return member_table.first_name.op("||")(literal_column("' '")).op("||")(member_table.last_name)


def _dialect() -> str:
    return session.get_bind().dialect.name


def _has_fts(name: str) -> bool:
    """Whether the SQLite database has the FTS table (asked once per engine and table)."""
    key = (id(session.get_bind()), name)
    if key not in _fts_present:
        _fts_present[key] = session.scalar(select(func.count()).select_from(table("sqlite_master")).where(
            column("name") == name)) == 1
    return _fts_present[key]


def _phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'  # the text as one literal FTS5 phrase, whatever it holds


def member_condition(member, q: str, listed: bool = True) -> ColumnElement:
    """Members whose name, email or membership number contains `q`, ignoring case (`q` already
    has its whitespace collapsed). `listed`: for a list in some order under a LIMIT; False for a
    count, which the trigram indexes answer directly (PostgreSQL then skips the id lookups)."""
    needle = q.lower()
    if _dialect() == "sqlite" and len(q) >= MIN_INDEXED and _has_fts(MEMBERS_FTS):
        fts = table(MEMBERS_FTS, column("rowid"))
        return member.id.in_(select(fts.c.rowid).where(literal_column(MEMBERS_FTS).op("MATCH")(_phrase(q))))
    pattern = contains(needle)
    # Emails are stored lower-case (mailer.members.fields.clean_email), so no lower() on them.
    condition = or_(func.lower(full_name(member)).like(pattern, escape="\\"),
                    member.email.like(pattern, escape="\\"),
                    func.lower(member.membership_number).like(pattern, escape="\\"))
    if listed and _dialect() == "postgresql" and len(q) >= MIN_INDEXED:
        # The matches first, from the trigram indexes: left to itself the planner walks the name
        # index for the page's order and tests the LIKEs on most of the table (200 ms for "okonkwo").
        matches = select(member.id).where(condition).cte("member_matches").prefix_with("MATERIALIZED")
        return member.id.in_(select(matches.c.id))
    return condition


def name_condition(member, q: str) -> ColumnElement:
    """Members whose name ("first last") contains `q`, ignoring case, from the name's index where
    one can answer (FTS5's name column; pg_trgm on the lowered full name): never a pass over every
    member's row to find that nobody matches."""
    if _dialect() == "sqlite" and len(q) >= MIN_INDEXED and _has_fts(MEMBERS_FTS):
        fts = table(MEMBERS_FTS, column("rowid"))
        return member.id.in_(select(fts.c.rowid).where(
            literal_column(MEMBERS_FTS).op("MATCH")("name : " + _phrase(q))))
    condition = func.lower(full_name(member)).like(contains(q.lower()), escape="\\")
    if _dialect() == "postgresql":  # lower() folds every letter there: the indexed expression alone
        if len(q) < MIN_INDEXED:
            return condition
        matches = select(member.id).where(condition).cte("name_matches").prefix_with("MATERIALIZED")
        return member.id.in_(select(matches.c.id))
    return or_(condition, full_name(member).like(contains(q), escape="\\"))  # SQLite folds ASCII only


def inbound_condition(message, q: str) -> ColumnElement | None:
    """Inbound messages whose sender (name or address) or text (visible or whole) contains `q`,
    ignoring case, answered by an index; None when no index can answer (the caller scans)."""
    dialect = _dialect()
    if len(q) < MIN_INDEXED:
        return None
    if dialect == "sqlite" and _has_fts(INBOUND_FTS):
        fts = table(INBOUND_FTS, column("rowid"))
        return message.id.in_(select(fts.c.rowid).where(literal_column(INBOUND_FTS).op("MATCH")(_phrase(q))))
    if dialect == "postgresql":
        newline = literal_column("E'\\n'")
        document = (func.coalesce(message.from_address, literal_column("''")).op("||")(newline)
                    .op("||")(message.from_name).op("||")(newline).op("||")(message.visible_text)
                    .op("||")(newline).op("||")(message.full_text))
        return func.lower(document).like(contains(q.lower()), escape="\\")  # the expression indexed (0009)
    return None
