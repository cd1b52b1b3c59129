"""Views are thin: the page and API modules (mailer/web, mailer/api) ask services for what they show
and never query the database themselves, so every rule about which rows an officer gets lives in a
service or in mailer/scope.py, where the browser and the API share it.

A source scan (the AST, so comments and docstrings do not count) for the query calls."""

from __future__ import annotations

import ast

from tests.source_scan import PACKAGE, nodes, scan

VIEWS = sorted([*(PACKAGE / "web").glob("*.py"), *(PACKAGE / "api").glob("*.py")])
SESSION_QUERIES = {"execute", "scalar", "scalars", "get", "query"}


def queries(source: str, filename: str) -> list[str]:
    """`select(...)`, `session.execute/scalar/scalars/get(...)` and `.query(...)` calls in `source`."""
    found = []
    for node in nodes(source, filename):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "select":
            found.append(f"{filename}:{node.lineno}: select(...)")
        elif isinstance(func, ast.Attribute) and func.attr == "query":
            found.append(f"{filename}:{node.lineno}: .query(...)")
        elif (isinstance(func, ast.Attribute) and func.attr in SESSION_QUERIES
              and isinstance(func.value, ast.Name) and func.value.id == "session"):
            found.append(f"{filename}:{node.lineno}: session.{func.attr}(...)")
    return found


def test_no_view_queries_the_database():
    found = scan(VIEWS, queries)
    assert found == [], "move these into a service (or mailer/scope.py):\n" + "\n".join(found)


def test_the_scan_sees_each_kind_of_query():
    code = ("rows = session.scalars(select(Member))\n"
            "one = session.get(Member, 1)\n"
            "n = session.execute(stmt)\n"
            "old = db.query(Member).all()\n"
            "session.commit()  # the request's one commit is the view's: not a query\n"
            "page = members.search(officer, mq)\n")
    assert len(queries(code, "x.py")) == 5
