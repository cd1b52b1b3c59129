"""Score the reply trimmer on a corpus of real replies.

    python -m mailer.inbound.trim_eval ../shared/corpora/reply-trimming [--diff]

The corpus has, for each reply body in emails/NAME, the text a reader should see in trimmed/NAME.
A reply scores when `trim_text` gives exactly that text after normalising both sides: line endings
become "\\n", each line loses its trailing spaces, runs of blank lines become one blank line, and
blank lines at the start and end go (the first line keeps its indentation).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

from mailer.inbound.trim import trim_text


def normalise(text: str) -> str:
    """The comparison form of a text: see the module docstring."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip("\n")


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def evaluate(corpus_dir: str | Path) -> tuple[int, int, list[str]]:
    """(replies trimmed exactly as expected, replies in the corpus, names of the others)."""
    corpus = Path(corpus_dir)
    names = sorted(p.name for p in (corpus / "emails").iterdir() if p.is_file())
    failures = [
        name for name in names
        if normalise(trim_text(_read(corpus / "emails" / name)).visible)
        != normalise(_read(corpus / "trimmed" / name))
    ]
    return len(names) - len(failures), len(names), failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailer.inbound.trim_eval", description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path, help="the reply-trimming corpus (with emails/ and trimmed/)")
    parser.add_argument("--diff", action="store_true", help="show how each failing reply differs")
    args = parser.parse_args(argv)
    if not (args.corpus / "emails").is_dir() or not (args.corpus / "trimmed").is_dir():
        print(f"{args.corpus}: no emails/ and trimmed/ here", file=sys.stderr)
        return 2
    score, total, failures = evaluate(args.corpus)
    print(f"reply trimming: {score}/{total}")
    for name in failures:
        print(f"  failing: {name}")
        if args.diff:
            got = normalise(trim_text(_read(args.corpus / "emails" / name)).visible)
            want = normalise(_read(args.corpus / "trimmed" / name))
            for line in difflib.unified_diff(want.split("\n"), got.split("\n"), "expected", "trimmed", lineterm=""):
                print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
