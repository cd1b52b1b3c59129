"""`mailer inbound ...`: inbound mail from the command line. `parse` looks at a message without
storing it; `ingest`, `poll` and `smtpd` take mail in (stored, deduplicated, queued for processing)."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app

from mailer.cli import Commands

inbound_cli = Commands("inbound", help="Inbound mail: replies, bounces, auto-replies.")


def _message_files(paths: tuple[Path, ...]):
    """Each file named, and every file under each folder named (sorted, hidden ones skipped)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            yield path


@inbound_cli.command("parse", with_appcontext=False)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file (JSON Lines), with its name.")
@click.option("--max-bytes", type=click.IntRange(1), help="Larger messages are read for their headers only "
              "(default: the parser's own limit).")
def parse_command(paths: tuple[Path, ...], as_json: bool, max_bytes: int) -> None:
    """Parse and classify raw messages (.eml files, or folders of them); nothing is stored."""
    # Imported here, not above: `mailer --help` and the other commands need not pay for the parser.
    from mailer.cli import settings
    from mailer.inbound.classify import classify, own_identity
    from mailer.inbound.parse import parse

    own_addresses, own_domains = own_identity(settings())
    unreadable = 0
    files = list(_message_files(paths))
    for number, file in enumerate(files):
        try:
            raw = file.read_bytes()
        except OSError as exc:
            unreadable += 1
            problem = f"cannot read {file}: {exc.strerror or exc}"
            click.echo(json.dumps({"file": str(file), "error": problem}) if as_json else problem, err=not as_json)
            continue
        msg = parse(raw, **({"max_bytes": max_bytes} if max_bytes else {}))
        data = {"file": str(file), **describe(msg, classify(msg, own_addresses, own_domains))}
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False))
        else:
            if len(files) > 1:
                click.echo(f"{'' if number == 0 else chr(10)}== {file}")
            _print_summary(data)
    if unreadable:
        raise SystemExit(1)


def describe(msg, result) -> dict:
    """The JSON-ready view of one parsed and classified message."""
    visible, quoted = _trimmed(msg)
    bounce = None
    if result.bounce is not None:
        bounce = {"recipients": [
            {"address": r.address, "status": r.status, "action": r.action, "diagnostic": r.diagnostic,
             "hard": r.hard, "reply_code": r.reply_code, "status_inferred": r.status_inferred}
            for r in result.bounce.recipients],
            "original_message_id": result.bounce.original_message_id}
    complaint = None
    if result.complaint is not None:
        c = result.complaint
        complaint = {"feedback_type": c.feedback_type, "recipients": c.recipients,
                     "original_message_id": c.original_message_id}
    return {
        "kind": result.kind,
        "message_id": msg.message_id,
        "in_reply_to": msg.in_reply_to,
        "references": msg.references,
        "from": msg.from_address,
        "from_name": msg.from_name,
        "to": msg.to,
        "subject": msg.subject,
        "date": msg.date.isoformat() if msg.date else None,
        "visible_text": visible,
        "quoted_text": quoted,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "dangerous": a.dangerous} for a in msg.attachments],
        "bounce": bounce,
        "complaint": complaint,
        "reasons": result.reasons,
        "defects": msg.defects,
    }


def _trimmed(msg) -> tuple[str, str]:
    """(visible, quoted), trimmed by the rule processing uses."""
    from mailer.inbound.trim_html import trim_message

    try:
        trimmed = trim_message(msg)
        return trimmed.visible, trimmed.quoted
    except Exception:  # noqa: BLE001 - a trimming bug must not hide the message: show it whole
        return msg.text, ""


def _print_summary(data: dict) -> None:
    click.echo(f"{data['kind']}: {data['subject']!r} from {data['from'] or '(no address)'}")
    for key in ("message_id", "in_reply_to", "date"):
        if data[key]:
            click.echo(f"  {key.replace('_', ' ')}: {data[key]}")
    for reason in data["reasons"]:
        click.echo(f"  - {reason}")
    for r in (data["bounce"] or {}).get("recipients", []):
        click.echo(f"  {r['address']}: {r['action']} {r['status'] or '-'} ({'hard' if r['hard'] else 'soft'}) "
                   f"{r['diagnostic'][:120]}")
    for a in data["attachments"]:
        click.echo(f"  attachment: {a['filename']} ({a['content_type']}, {a['size']} bytes"
                   f"{', dangerous' if a['dangerous'] else ''})")
    for d in data["defects"]:
        click.echo(f"  defect: {d}")
    if data["visible_text"]:
        click.echo("")
        click.echo(data["visible_text"])


# --- taking mail in -------------------------------------------------------------------------

def _queue_reachable() -> bool:
    from mailer import queue

    try:
        return bool(queue.redis_connection().ping())
    except Exception:  # noqa: BLE001 - no Redis configured, or not answering
        return False


class _NoQueueNoise(logging.Filter):
    def filter(self, record):
        return "could not queue inbound message" not in record.getMessage()


@contextmanager
def _queue_note():
    """Without Redis, messages are still stored; say so once instead of once per message."""
    reachable = _queue_reachable()
    quiet = _NoQueueNoise()
    if not reachable:
        current_app.logger.addFilter(quiet)
    try:
        yield
    finally:
        current_app.logger.removeFilter(quiet)
        if not reachable:
            click.echo("Note: no job queue (Redis) is reachable, so processing was not queued. The messages are "
                       "safely stored: a running worker finds them within a minute, or the next `mailer up` or "
                       "`python worker.py` processes them when it starts.", err=True)


@inbound_cli.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ingest_command(files: tuple[Path, ...]) -> None:
    """Store messages from .eml files and mbox files (an mbox starts with a "From " line)."""
    from mailer.inbound.formats import read_messages
    from mailer.db import session
    from mailer.inbound.store import store

    new = held = skipped = 0
    with _queue_note():
        for path in files:
            try:
                for item in read_messages(path):
                    if item.problem:
                        skipped += 1
                        click.echo(f"{item.label}: skipped, {item.problem}", err=True)
                        continue
                    message, created = store(item.raw, "file")
                    session.commit()  # each file's message kept, and queued, as it is read
                    new, held = new + created, held + (not created)
                    click.echo(f"{item.label}: {'stored' if created else 'already held'} (#{message.id})")
            except OSError as exc:
                skipped += 1
                click.echo(f"{path}: skipped, cannot be read ({exc.strerror or exc})", err=True)
    click.echo(f"{new} stored new, {held} already held" + (f", {skipped} skipped" if skipped else "") + ".")
    if skipped:
        raise SystemExit(1)


@inbound_cli.command("evaluate", with_appcontext=False)
@click.argument("folders", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def evaluate_command(folders: tuple[Path, ...], as_json: bool) -> None:
    """Every reading score over folders of messages: reply trimming (emails/ + trimmed/), the bounce
    corpus rule (maildir/, not-bounces/, expected.json), and how any other messages are read."""
    from mailer.inbound.evaluate import evaluate, report_lines

    results = evaluate(list(folders))
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for line in report_lines(results):
            click.echo(line)


@inbound_cli.command("poll")
def poll_command() -> None:
    """Poll the IMAP mailbox once now (MAILER_IMAP_* settings)."""
    from mailer.inbound import imap

    if not imap.configured():
        raise click.ClickException("IMAP is not configured: set MAILER_IMAP_HOST and the other MAILER_IMAP_* settings.")
    try:
        with _queue_note():
            result = imap.locked_poll()
    except imap.ImapError as exc:
        raise click.ClickException(str(exc)) from None
    if result is None:
        click.echo("Another poll of this mailbox is running; nothing done.")
        return
    if result.reset:
        click.echo(f"UIDVALIDITY changed ({result.uidvalidity}): the folder was read again.")
    click.echo(f"{result.mailbox}: {result.found} to take, {result.new} stored new, {result.held} already held, "
               f"{result.done} {result.action}.")


@inbound_cli.command("smtpd")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep it local when Postfix hands mail over on this machine).")
@click.option("--lmtp", is_flag=True, help="Speak LMTP (for Postfix's lmtp transport) instead of SMTP.")
def smtpd_command(port: int, host: str, lmtp: bool) -> None:
    """Receive mail over SMTP or LMTP and store each message (250 only once it is committed)."""
    from mailer.inbound import smtpd

    app = current_app._get_current_object()

    def ready(controller):
        click.echo(f"Mailer inbound {'LMTP' if lmtp else 'SMTP'} listening on {host}:{port}. Ctrl+C to stop.")
        if not _queue_reachable():
            click.echo("Note: no job queue (Redis) is reachable: messages are stored, and a running worker finds "
                       "them within a minute (or the next one to start does).", err=True)

    try:
        smtpd.serve(app, host, port, lmtp, ready=ready)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
