"""Branch scope has one home, mailer/scope.py: no other module asks whether an officer sees all
branches or filters by the officer's own branch, so the rule cannot drift between copies.

A source scan (the AST, so comments and docstrings do not count): outside the scope module, no
`.sees_all_branches` and no comparison with an officer's `.branch_id`. Models may define the role's
meaning (Officer.sees_all_branches); templates only show it."""

from __future__ import annotations

import ast

from tests.source_scan import PACKAGE, nodes, scan

HOME = PACKAGE / "scope.py"
OFFICERS = {"officer", "current_user", "me", "reader", "who"}  # names an officer goes by in the code


def _officer(node: ast.AST) -> bool:
    """`officer`, `current_user`, `officer()`: an expression that is the acting officer."""
    if isinstance(node, ast.Call):
        node = node.func
    return isinstance(node, ast.Name) and node.id in OFFICERS


def offences(source: str, filename: str) -> list[str]:
    found = []
    for node in nodes(source, filename):
        if isinstance(node, ast.Attribute) and node.attr == "sees_all_branches":
            found.append(f"{filename}:{node.lineno}: asks sees_all_branches")
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Attribute) and side.attr == "branch_id" and _officer(side.value):
                    found.append(f"{filename}:{node.lineno}: filters by the officer's branch_id")
    return found


def test_no_module_but_scope_decides_branch_scope():
    found = scan((path for path in sorted(PACKAGE.rglob("*.py")) if path != HOME), offences)
    assert found == [], "branch scope belongs in mailer/scope.py:\n" + "\n".join(found)


def test_the_scan_catches_both_shapes():
    code = ("def f(officer, stmt):\n"
            "    if not officer.sees_all_branches:\n"
            "        stmt = stmt.where(Meeting.branch_id == officer.branch_id)\n"
            "    return current_user.branch_id != 3\n")
    assert len(offences(code, "x.py")) == 3
    assert offences("stmt.where(Thread.branch_id == branch_id)  # officer.sees_all_branches\n", "y.py") == []
