"""The reply trimmer on 64 real reply bodies (../shared/corpora/reply-trimming, MIT licence).

The corpus is read where it lies, beside the checkout; it is never copied into the project. Where
it is absent the test is skipped, saying so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.inbound.trim_eval import evaluate, main, normalise

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "reply-trimming"

TARGET = 60  # the target: at least 60 of the 64 replies exactly as expected
BEST = 64  # a ratchet: the best score reached so far. A regression fails; raise it on progress.


def _corpus_or_skip() -> Path:
    if not (CORPUS / "emails").is_dir() or not (CORPUS / "trimmed").is_dir():
        reason = f"reply-trimming corpus not found at {CORPUS.resolve()}"
        print(reason)
        pytest.skip(reason)
    return CORPUS


def test_reply_trimming_corpus_score():
    score, total, failures = evaluate(_corpus_or_skip())
    summary = f"reply trimming: {score}/{total}" + (f"; failing: {', '.join(failures)}" if failures else "")
    print(summary)
    assert total == 64, summary
    assert score >= BEST, summary
    assert score >= TARGET, summary


def test_evaluation_counts_and_names_the_failures(tmp_path, capsys):
    (tmp_path / "emails").mkdir()
    (tmp_path / "trimmed").mkdir()
    (tmp_path / "emails" / "good.txt").write_text("Yes.\n\nOn 5 Mar 2024, Ann <a@example.org> wrote:\n> Come?\n")
    (tmp_path / "trimmed" / "good.txt").write_text("Yes.\n")
    (tmp_path / "emails" / "bad.txt").write_text("Yes.\n\nAnd more.\n")
    (tmp_path / "trimmed" / "bad.txt").write_text("Yes.\n")
    assert evaluate(tmp_path) == (1, 2, ["bad.txt"])
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["reply trimming: 1/2", "  failing: bad.txt"]


def test_normalisation_only_forgives_whitespace():
    assert normalise("a  \r\n\r\n\r\n\r\nb\n\n") == "a\n\nb"
    assert normalise("\n\n    indented first line\n") == "    indented first line"
    assert normalise("a\nb") != normalise("a\n\nb")  # one blank line still counts
    assert normalise("a b") != normalise("a  b")  # spaces inside a line count
