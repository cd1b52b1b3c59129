"""`mailer inbound ...`: look at inbound mail from the command line, without storing anything."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from mailer.inbound.classify import Classification, classify, own_identity
from mailer.inbound.parse import DEFAULT_MAX_BYTES, ParsedMessage, parse

inbound_cli = AppGroup("inbound", help="Inbound mail: replies, bounces, auto-replies.")


@inbound_cli.command("parse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a summary.")
@click.option("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, show_default=True,
              help="Larger messages are read for their headers only.")
def parse_command(file: Path, as_json: bool, max_bytes: int) -> None:
    """Parse and classify one raw message (an .eml file); nothing is stored."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror or exc}") from None
    msg = parse(raw, max_bytes=max_bytes)
    own_addresses, own_domains = own_identity(current_app.config)
    result = classify(msg, own_addresses, own_domains)
    data = describe(msg, result)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_summary(data)


def describe(msg: ParsedMessage, result: Classification) -> dict:
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


def _trimmed(msg: ParsedMessage) -> tuple[str, str]:
    """(visible, quoted): trim_html when the message has HTML and no text part, else trim_text."""
    from mailer.inbound.trim import trim_html, trim_text

    try:
        trimmed = trim_html(msg.html) if msg.html_only and msg.html else trim_text(msg.text)
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
