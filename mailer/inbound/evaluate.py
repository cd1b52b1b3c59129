"""Every inbound reading score in one place, over any folders of messages.

    mailer inbound evaluate FOLDER... [--json]

Each folder is read for what it holds:

- emails/ and trimmed/ (reply bodies and what a reader should see): reply trimming, exact
  matches after normalising whitespace (as mailer/inbound/trim_eval.py);
- maildir/ and not-bounces/ (and expected.json): the bounce rule of bounce_eval.py (every
  report a bounce with a recipient and a status, arf-* complaints, rfc3834-* auto-replies,
  nothing in not-bounces/ a bounce), and the status codes against expected.json;
- any other files (.eml, or anything else, at any depth): how each is classified, how many
  bounces name a recipient and a status, complaints, auto-replies, messages read only in part,
  and the reading time (median and slowest, against the 200 ms / 1 MB target).

Pure reading: nothing is stored, no database or queue is needed.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path

KINDS = ("reply", "auto_reply", "bounce", "complaint", "loop", "other")


def _trimming(folder: Path) -> dict:
    from mailer.inbound.trim_eval import evaluate

    right, total, failures = evaluate(folder)
    return {"right": right, "total": total, "failing": failures}


def _bounces(folder: Path) -> dict:
    from mailer.inbound.bounce_eval import Detail, evaluate, expected_kind

    detail = Detail()
    right, total, failures = evaluate(folder, detail)
    not_bounces = [p for p in (folder / "not-bounces").iterdir() if p.is_file()] \
        if (folder / "not-bounces").is_dir() else []
    false_positives = [name for name, why in failures if why.startswith("a bounce, but")]
    by_kind = Counter(expected_kind(p) for p in (folder / "maildir").iterdir() if p.is_file()) \
        if (folder / "maildir").is_dir() else Counter()
    wrong = dict(failures)
    return {
        "right": right, "total": total,
        "bounces_right": by_kind["bounce"] - sum(1 for n in wrong if not n.startswith(("arf-", "rfc3834-"))
                                                 and n not in false_positives),
        "bounces": by_kind["bounce"],
        "complaints_right": by_kind["complaint"] - sum(1 for n in wrong if n.startswith("arf-")),
        "complaints": by_kind["complaint"],
        "auto_replies_right": by_kind["auto_reply"] - sum(1 for n in wrong if n.startswith("rfc3834-")),
        "auto_replies": by_kind["auto_reply"],
        "not_bounces": len(not_bounces), "not_bounce_false_positives": false_positives,
        "statuses_matched": detail.statuses_matched, "real_statuses": detail.real_statuses,
        "recipients_found": detail.found_recipients, "recipients_expected": detail.expected_recipients,
        "failing": [f"{name}: {why}" for name, why in failures],
    }


def _messages(files: list[Path]) -> dict:
    from mailer.inbound.classify import classify
    from mailer.inbound.parse import parse
    from mailer.inbound.trim_html import trim_message

    kinds: Counter = Counter()
    times: list[float] = []
    slowest = ("", 0.0, 0)
    bounces_read = partial = errors = 0
    for path in files:
        raw = path.read_bytes()
        started = time.perf_counter()
        try:
            parsed = parse(raw)
            result = classify(parsed)
            trimmed = trim_message(parsed)
        except Exception:  # noqa: BLE001 - counted: reading must never raise
            errors += 1
            continue
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        if elapsed > slowest[1]:
            slowest = (str(path), elapsed, len(raw))
        kinds[result.kind] += 1
        if result.kind == "bounce" and result.bounce and any(r.address and r.status for r in result.bounce.recipients):
            bounces_read += 1
        partial += bool(parsed.incomplete or parsed.html_limited or trimmed.limited or result.limited)
    return {
        "messages": len(files), "kinds": {k: kinds[k] for k in KINDS}, "errors": errors,
        "bounces_with_recipient_and_status": bounces_read, "read_in_part": partial,
        "median_ms": round(statistics.median(times) * 1000, 2) if times else 0.0,
        "slowest_ms": round(slowest[1] * 1000, 1), "slowest": slowest[0], "slowest_bytes": slowest[2],
    }


_NOT_MESSAGES = {"license", "source-commit", "readme", "copying"}


def _is_message_file(folder: Path, path: Path) -> bool:
    """A file to read as a message: not hidden, not a body in emails/ or trimmed/, not notes or JSON."""
    parts = path.relative_to(folder).parts
    if not path.is_file() or any(p.startswith(".") for p in parts) or parts[0] in ("emails", "trimmed"):
        return False
    return path.stem.lower() not in _NOT_MESSAGES and path.suffix.lower() not in (".json", ".md")


def evaluate(folders: list[Path]) -> dict:
    """Scores for each folder, by what it holds (see the module docstring)."""
    out: dict = {}
    for folder in folders:
        folder = Path(folder)
        scores: dict = {}
        if (folder / "emails").is_dir() and (folder / "trimmed").is_dir():
            scores["reply_trimming"] = _trimming(folder)
        if (folder / "maildir").is_dir() or (folder / "not-bounces").is_dir():
            scores["bounce_corpus"] = _bounces(folder)
        files = [p for p in sorted(folder.rglob("*")) if _is_message_file(folder, p)]
        if files:
            scores["messages"] = _messages(files)
        out[str(folder)] = scores
    return out


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"


def report_lines(results: dict) -> list[str]:
    """The scores as lines for a person."""
    lines: list[str] = []
    for folder, scores in results.items():
        lines.append(f"{folder}:")
        if not scores:
            lines.append("  no messages found")
        if "reply_trimming" in scores:
            t = scores["reply_trimming"]
            lines.append(f"  reply trimming: {_pct(t['right'], t['total'])} exactly as expected")
            lines += [f"    failing: {name}" for name in t["failing"]]
        if "bounce_corpus" in scores:
            b = scores["bounce_corpus"]
            lines.append(f"  bounce rule: {_pct(b['right'], b['total'])}")
            lines.append(f"  bounces read with recipient and status: {_pct(b['bounces_right'], b['bounces'])}")
            lines.append(f"  status codes as expected.json: {_pct(b['statuses_matched'], b['real_statuses'])}; "
                         f"recipients found: {_pct(b['recipients_found'], b['recipients_expected'])}")
            lines.append(f"  complaints: {_pct(b['complaints_right'], b['complaints'])}; "
                         f"auto-replies: {_pct(b['auto_replies_right'], b['auto_replies'])}")
            lines.append(f"  not-bounces taken for bounces: {len(b['not_bounce_false_positives'])} of {b['not_bounces']}")
            lines += [f"    failing: {why}" for why in b["failing"]]
        if "messages" in scores:
            m = scores["messages"]
            kinds = ", ".join(f"{k} {v}" for k, v in m["kinds"].items() if v)
            lines.append(f"  messages: {m['messages']} ({kinds or 'none read'}); errors: {m['errors']}; "
                         f"read in part: {m['read_in_part']}")
            lines.append(f"  bounces with recipient and status: {_pct(m['bounces_with_recipient_and_status'], m['kinds']['bounce'])}")
            lines.append(f"  reading time: median {m['median_ms']} ms, slowest {m['slowest_ms']} ms "
                         f"({m['slowest_bytes']:,} bytes: {m['slowest']})")
    return lines
