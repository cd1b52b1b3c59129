"""Scans of Mailer's own source for the tests that hold a rule of the code's shape (branch scope in
one module, views that do not query): each rule says what an offence looks like in one file's
syntax tree (so comments and docstrings do not count), and `scan` walks the files."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import mailer

PACKAGE = Path(mailer.__file__).parent


def nodes(source: str, filename: str) -> Iterator[ast.AST]:
    """Every node of `source`'s syntax tree."""
    return ast.walk(ast.parse(source, filename))


def scan(paths: Iterable[Path], offences: Callable[[str, str], list[str]]) -> list[str]:
    """What `offences(source, filename)` finds in each of `paths`, the files named from the
    checkout (mailer/...)."""
    found = []
    for path in paths:
        found += offences(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    return found
