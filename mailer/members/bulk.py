"""Writing an import's many rows in the session's transaction the way each database loads them
fastest: COPY on PostgreSQL, the driver's executemany on SQLite. Each value still goes through its
column's own bind processing (the conversion Core would make: JSON, dates, enums), but Core's work
per row (a quarter of a 100,000-row import's time) is not done."""

from __future__ import annotations

from sqlalchemy import Table, text

from mailer.db import session


def _complete(table: Table, rows: list[dict]) -> tuple[list[str], list[dict]]:
    """Every row with the same columns: those any row gives, and those with a default in Python,
    filled as Core's INSERT fills them (the default, else NULL)."""
    given = set().union(*rows)
    fill = {}
    for column in table.columns:
        default = column.default
        if default is not None and not column.primary_key:
            if default.is_scalar:
                fill[column.name] = (lambda value: lambda: value)(default.arg)
            elif default.is_callable:
                fill[column.name] = (lambda arg: lambda: arg(None))(default.arg)
        elif column.name in given:
            fill[column.name] = lambda: None
    names = [c.name for c in table.columns if c.name in fill]
    if all(len(row) == len(names) for row in rows):
        return names, rows
    return names, [row if len(row) == len(names) else {**{n: fill[n]() for n in names if n not in row}, **row}
                   for row in rows]


def _columns(table: Table, rows: list[dict], names: list[str], dialect) -> list[list]:
    """The rows' values column by column, as the driver is handed them."""
    out = []
    for name in names:
        values = [row[name] for row in rows]
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        out.append(list(map(process, values)) if process is not None else values)
    return out


def insert_rows(table: Table, rows: list[dict]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table`, in the session's transaction."""
    if not rows:
        return
    conn = session.connection()
    names, rows = _complete(table, rows)
    values = zip(*_columns(table, rows, names, conn.dialect))
    driver = conn.connection.driver_connection
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
    else:
        # Many rows a statement: SQLite runs one multi-row INSERT several times faster than as many
        # one-row statements (the members' search index, kept by a trigger, most of all).
        per_statement = max(1, min(500, 30_000 // len(names)))
        one = f"({', '.join('?' * len(names))})"
        values = list(values)
        cur = driver.cursor()
        try:
            for start in range(0, len(values), per_statement):
                batch = values[start:start + per_statement]
                cur.execute(f"INSERT INTO {table.name} ({quoted}) VALUES {', '.join([one] * len(batch))}",
                            [value for row in batch for value in row])
        finally:
            cur.close()


def insert_with_ids(table: Table, rows: list[dict], key: str) -> dict:
    """INSERT `rows` into `table` (whose primary key is `id`) and return {row[key]: new id};
    `key` is a unique column each row gives a value of its own."""
    if not rows:
        return {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":  # ids drawn from the table's sequence, then the rows COPied with them
        ids = conn.execute(text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                                "FROM generate_series(1, :n)"), {"n": len(rows)}).scalars().all()
        insert_rows(table, [row | {"id": new_id} for row, new_id in zip(rows, ids)])
        return {row[key]: new_id for row, new_id in zip(rows, ids)}
    insert_rows(table, rows)
    column = table.c[key]
    found: dict = {}
    wanted = [row[key] for row in rows]
    for start in range(0, len(wanted), 5_000):
        found.update(conn.execute(table.select().with_only_columns(column, table.c.id)
                                  .where(column.in_(wanted[start:start + 5_000]))).all())
    return found
