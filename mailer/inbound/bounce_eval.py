"""Score the bounce classifier on a corpus of real delivery reports.

    python -m mailer.inbound.bounce_eval ../shared/corpora/bounces [-v]

The rule: every file in maildir/ is a bounce with at least one recipient and a status code,
except arf-* (a complaint) and rfc3834-* (an auto-reply); no file in not-bounces/ is a bounce.
Separately, for information, the recipients' status codes, reply codes and hard/soft flags are
compared with expected.json (sisimai's expectations), counting only real status codes: x.9.NNN
codes are sisimai's own and never appear in the mail. -v lists the status codes that differ.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mailer.inbound.classify import Classification, classify
from mailer.inbound.parse import parse


@dataclass
class Detail:
    """The informative comparison with expected.json."""

    files: int = 0
    expected_recipients: int = 0
    found_recipients: int = 0  # recipients found, up to the number expected, per file
    real_statuses: int = 0  # expected statuses that are real codes
    statuses_matched: int = 0
    statuses_inferred_matched: int = 0  # of which our status was inferred, not read
    reply_codes: int = 0
    reply_codes_matched: int = 0
    hard_compared: int = 0
    hard_matched: int = 0
    mismatches: list[str] = field(default_factory=list)


def expected_kind(path: Path) -> str:
    """What the rule expects for a corpus file: "bounce", "complaint", "auto_reply" or "not-bounce"."""
    if path.parent.name == "not-bounces":
        return "not-bounce"
    if path.name.startswith("arf-"):
        return "complaint"
    if path.name.startswith("rfc3834-"):
        return "auto_reply"
    return "bounce"


def judge(path: Path, result: Classification) -> str | None:
    """None when the classification follows the rule, else why not."""
    want = expected_kind(path)
    if want == "not-bounce":
        return None if result.kind != "bounce" else "a bounce, but it is not one"
    if result.kind != want:
        return f"{result.kind}, expected {want}"
    if want == "bounce":
        recipients = result.bounce.recipients if result.bounce else []
        if not recipients:
            return "a bounce without any recipient"
        if not any(r.status for r in recipients):
            return "a bounce without a status code"
    return None


def _files(corpus: Path) -> list[Path]:
    files = []
    for sub in ("maildir", "not-bounces"):
        folder = corpus / sub
        if folder.is_dir():
            files.extend(sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")))
    return files


def _real(status: str) -> bool:
    return bool(re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", status or "")) and status.split(".")[1] != "9"


def evaluate(corpus_dir, detail: Detail | None = None) -> tuple[int, int, list[tuple[str, str]]]:
    """(right, total, [(file name, why it is wrong)]) for the corpus at `corpus_dir`."""
    corpus = Path(corpus_dir)
    expected_path = corpus / "expected.json"
    expected = json.loads(expected_path.read_text())["files"] if expected_path.exists() else {}
    right, failures = 0, []
    files = _files(corpus)
    for path in files:
        try:
            result = classify(parse(path.read_bytes()))
            problem = judge(path, result)
        except Exception as exc:  # noqa: BLE001 - a crash is a failure of that file, not of the run
            result, problem = None, f"raised {type(exc).__name__}: {exc}"
        if problem is None:
            right += 1
        else:
            failures.append((path.name, problem))
        if detail is not None and result is not None and path.name in expected and expected_kind(path) == "bounce":
            _compare(path.name, expected[path.name], result, detail)
    return right, len(files), failures


def _compare(name: str, want: list[dict], result: Classification, detail: Detail) -> None:
    got = result.bounce.recipients if result.bounce else []
    detail.files += 1
    detail.expected_recipients += len(want)
    detail.found_recipients += min(len(want), len(got))
    got_statuses = Counter(r.status for r in got)
    inferred = Counter(r.status for r in got if r.status_inferred)
    missed = []
    for w in want:
        if _real(w["status"]):
            detail.real_statuses += 1
            if got_statuses[w["status"]] > 0:
                got_statuses[w["status"]] -= 1
                detail.statuses_matched += 1
                if inferred[w["status"]] > 0:
                    inferred[w["status"]] -= 1
                    detail.statuses_inferred_matched += 1
            else:
                missed.append(w["status"])
    if missed:
        detail.mismatches.append(f"{name}: expected {', '.join(w['status'] or '-' for w in want)}; "
                                 f"found {', '.join(r.status or '-' for r in got) or 'nothing'}")
    got_replies = Counter(r.reply_code for r in got)
    for w in want:
        if w.get("reply"):
            detail.reply_codes += 1
            if got_replies[w["reply"]] > 0:
                got_replies[w["reply"]] -= 1
                detail.reply_codes_matched += 1
    for w, g in zip(want, got):
        detail.hard_compared += 1
        detail.hard_matched += int(bool(w.get("hard")) == g.hard)


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    corpus = Path(args[0])
    if not (corpus / "maildir").is_dir():
        print(f"no maildir/ in {corpus}: not a bounce corpus", file=sys.stderr)
        return 2
    detail = Detail()
    right, total, failures = evaluate(corpus, detail)
    print(f"bounces: {_pct(right, total)}")
    for name, why in failures:
        print(f"  FAIL {name}: {why}")
    print("Compared with expected.json (informative; real status codes only):")
    print(f"  recipients found:   {_pct(detail.found_recipients, detail.expected_recipients)}")
    print(f"  status codes:       {_pct(detail.statuses_matched, detail.real_statuses)}"
          f" ({detail.statuses_inferred_matched} of them inferred from the wording)")
    print(f"  SMTP reply codes:   {_pct(detail.reply_codes_matched, detail.reply_codes)}")
    print(f"  hard/soft agrees:   {_pct(detail.hard_matched, detail.hard_compared)}")
    if "-v" in args or "--verbose" in args:
        for line in detail.mismatches:
            print(f"    {line}")
    return 0 if total and right == total else 1


if __name__ == "__main__":
    sys.exit(main())
