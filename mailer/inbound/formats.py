"""From what arrives to raw MIME: provider webhook payloads (Mailgun, Postmark, SendGrid), the
multipart forms they post, and .eml / mbox files. Pure functions: no database, no Flask.

Providers that send the raw message (Mailgun's .../mime route, Postmark's RawEmail, SendGrid's
"POST the raw, full MIME message") are taken as sent, with an X-Original-To trace header for the
envelope recipient. Without it, the message is rebuilt with Python's email package from the parsed
fields, and says so in an X-Mailer-Rebuilt header: the text, HTML, attachments and the original
headers (Message-ID, In-Reply-To and References above all) survive; the exact bytes do not.
"""

from __future__ import annotations

import base64
import binascii
import json
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formataddr
from pathlib import Path
from urllib.parse import parse_qsl

from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData
from mailer.errors import Invalid


class PayloadError(Invalid):
    """The payload is not what the provider sends: refused with 400, nothing stored."""


# --- is it mail at all? ---------------------------------------------------------------------

_MAIL_HEADERS = {"from", "sender", "to", "cc", "subject", "date", "message-id", "received", "return-path",
                 "delivered-to", "x-original-to", "in-reply-to", "references"}


def not_mail(raw: bytes) -> str | None:
    """Why `raw` cannot be an email message (None when it can): empty, or no mail header at the top."""
    if not raw or not raw.strip():
        return "it is empty"
    try:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:256 * 1024])
    except Exception:  # noqa: BLE001 - unreadable headers are no headers
        return "its headers cannot be read"
    if not any(name.lower() in _MAIL_HEADERS for name in headers.keys()):
        return "it has no mail headers (From, To, Subject, Date, Message-ID, Received...)"
    return None


def with_trace(raw: bytes, original_to: list[str]) -> bytes:
    """Prepend X-Original-To for each envelope recipient, as a delivery agent does: the reply
    token may be only in the envelope (Bcc, a forward)."""
    eol = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"  # as the message has them
    return b"".join(b"X-Original-To: " + _clean(a).encode("utf-8") + eol for a in original_to if _clean(a)) + raw


# --- forms, read to bytes -------------------------------------------------------------------

@dataclass
class FormPart:
    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None


class Form:
    """A posted form with every value as the bytes sent (werkzeug would decode text fields as
    UTF-8 and replace what is not, which would damage a raw message in another charset)."""

    def __init__(self, parts: list[FormPart]):
        self.parts = parts

    def get(self, name: str) -> bytes | None:
        return next((p.value for p in self.parts if p.name == name), None)

    def text(self, name: str, charset: str = "utf-8") -> str:
        value = self.get(name)
        if value is None:
            return ""
        try:
            return value.decode(charset or "utf-8", "replace")
        except LookupError:  # an unknown charset name
            return value.decode("utf-8", "replace")

    def part(self, name: str) -> FormPart | None:
        return next((p for p in self.parts if p.name == name), None)


def parse_form(content_type: str, body: bytes, max_parts: int = 1000) -> Form:
    """Read multipart/form-data or application/x-www-form-urlencoded into bytes values."""
    mimetype, params = parse_options_header(content_type or "")
    if mimetype == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1",
                          max_num_fields=max_parts)
        return Form([FormPart(k.encode("latin-1").decode("utf-8", "replace"), v.encode("latin-1")) for k, v in pairs])
    if mimetype != "multipart/form-data" or not params.get("boundary"):
        raise PayloadError(f"expected a form (multipart/form-data), not {mimetype or 'no content type'}")
    decoder = MultipartDecoder(params["boundary"].encode("latin-1"), max_parts=max_parts)
    decoder.receive_data(body)
    decoder.receive_data(None)
    parts: list[FormPart] = []
    current, chunks = None, []
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, (Epilogue, NeedData)):
                break
            if isinstance(event, (Field, File)):
                current, chunks = event, []
            elif isinstance(event, Data) and current is not None:
                chunks.append(event.data)
                if not event.more_data:
                    parts.append(FormPart(current.name, b"".join(chunks),
                                          current.filename if isinstance(current, File) else None,
                                          current.headers.get("content-type")))
                    current = None
    except ValueError as exc:  # werkzeug's word for a broken multipart body
        raise PayloadError(f"the form cannot be read: {exc}") from None
    if not parts:
        raise PayloadError("the form is empty")
    return Form(parts)


# --- building a message from parsed fields --------------------------------------------------

@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None


_FIELD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
_TOKEN = re.compile(r"[a-z0-9!#$&^_.+-]+")  # a MIME type or subtype
_SKIP = re.compile(r"^(content-|mime-version$)", re.IGNORECASE)  # the rebuilt body brings its own


def _clean(value) -> str:
    """A header value on one line: folding undone, no CR or LF left to smuggle a header in."""
    return " ".join(str(value if value is not None else "").split())


def _header_line(name: str, value: str) -> bytes:
    value = _clean(value)
    if value.isascii():
        return f"{name}: {value}\n".encode("ascii")  # as sent: encoded-words and all
    try:  # non-ASCII (decoded by the provider): RFC 2047 words, addresses kept readable
        return policy.default.header_factory(name, value).fold(policy=policy.default).encode("ascii")
    except Exception:  # noqa: BLE001 - a value the email package cannot parse: encode it whole
        from email.header import Header

        return f"{name}: {Header(value, 'utf-8').encode()}\n".encode("ascii")


def build_message(headers: list[tuple[str, str]], text: str | None, html: str | None,
                  attachments: list[Attachment], source: str, notes: list[str] = ()) -> bytes:
    """Raw MIME from a provider's parsed fields: its headers as given (less the MIME ones, which
    the new body brings), a text and/or HTML body, and the attachments."""
    body = EmailMessage(policy=policy.default)
    text = text or ""
    if notes:
        text = (text.rstrip("\n") + "\n\n" if text else "") + "\n".join(f"[{n}]" for n in notes) + "\n"
    if html and text.strip():
        body.set_content(text)
        body.add_alternative(html, subtype="html")
    elif html:
        body.set_content(html, subtype="html")
    else:
        body.set_content(text)
    for a in attachments:
        maintype, _, subtype = (a.content_type or "").partition(";")[0].strip().lower().partition("/")
        if not (_TOKEN.fullmatch(maintype or "") and _TOKEN.fullmatch(subtype or "")):
            maintype, subtype = "application", "octet-stream"
        cid = _clean(a.content_id) if a.content_id else None
        if cid and not cid.startswith("<"):
            cid = f"<{cid}>"
        # As bytes, base64-encoded, whatever the type: a text attachment keeps its own charset.
        body.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=_clean(a.filename) or "attachment",
                            cid=cid, disposition="inline" if cid else "attachment")
    lines = [_header_line(name, value) for name, value in headers
             if _FIELD_NAME.match(name or "") and not _SKIP.match(name) and _clean(value)]
    lines.append(_header_line("X-Mailer-Rebuilt", f"from {source}'s parsed fields (no raw MIME was sent)"))
    return b"".join(lines) + bytes(body)


def _split_header_block(block: str) -> list[tuple[str, str]]:
    """'Name: value' fields of a raw header block, continuation lines joined."""
    fields: list[list[str]] = []
    for line in block.replace("\r\n", "\n").split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append([name.strip(), value.strip()])
    return [(n, v) for n, v in fields if n]


def _has(headers: list[tuple[str, str]], name: str) -> bool:
    return any(n.lower() == name.lower() for n, _ in headers)


def _json(value, what: str):
    if value in (None, b"", ""):
        return None
    try:
        return json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError(f"{what} is not valid JSON") from None


# --- Mailgun --------------------------------------------------------------------------------

def mailgun_to_mime(form: Form) -> bytes:
    """A Mailgun route's POST: `body-mime` (a forward() to a URL ending in "mime") taken whole;
    otherwise (a parsed forward, or store(notify=...)) rebuilt from message-headers, body-plain,
    body-html and attachment-1..n."""
    recipients = [r for r in form.text("recipient").split(",") if r.strip()]
    raw = form.get("body-mime")
    if raw:
        return with_trace(raw, recipients)
    pairs = _json(form.get("message-headers"), "message-headers") or []
    headers = [(str(p[0]), str(p[1])) for p in pairs if isinstance(p, (list, tuple)) and len(p) == 2]
    for name, field in (("From", "from"), ("Subject", "subject"), ("To", "To")):
        if not _has(headers, name) and form.text(field):
            headers.append((name, form.text(field)))
    if not _has(headers, "To") and recipients:
        headers.append(("To", ", ".join(recipients)))
    if not form.text("body-plain") and not form.text("body-html") and not headers:
        raise PayloadError("neither body-mime nor the parsed message fields were posted")
    cids = {str(v): str(k) for k, v in (_json(form.get("content-id-map"), "content-id-map") or {}).items()}
    attachments = [Attachment(p.filename or p.name, p.content_type or "application/octet-stream", p.value,
                              cids.get(p.name)) for p in form.parts if re.fullmatch(r"attachment-\d+", p.name)]
    notes = []
    listed = _json(form.get("attachments"), "attachments")  # store(notify): links, not files
    if isinstance(listed, list) and listed:
        names = ", ".join(str(a.get("name") or a.get("filename") or "?") for a in listed if isinstance(a, dict))
        notes.append(f"Mailgun kept {len(listed)} attachment(s) on its servers, not sent here: {names}")
    return with_trace(build_message(headers, form.text("body-plain"), form.text("body-html") or None,
                                    attachments, "Mailgun", notes), recipients)


# --- Postmark -------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value):
    """JSON may carry lone surrogates ("\\ud800"), which no encoder takes: make them U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def postmark_to_mime(payload: bytes) -> bytes:
    """Postmark's inbound JSON: RawEmail when the server includes it; otherwise rebuilt from
    From/To/Cc/Subject/Date, Headers[], TextBody, HtmlBody and Attachments[]."""
    data = _scrub(_json(payload, "the body"))
    if not isinstance(data, dict):
        raise PayloadError("the body is not Postmark's inbound JSON (an object)")
    original_to = [str(data["OriginalRecipient"])] if data.get("OriginalRecipient") else []
    if isinstance(data.get("RawEmail"), str) and data["RawEmail"].strip():
        return with_trace(data["RawEmail"].encode("utf-8"), original_to)
    if not any(data.get(k) for k in ("From", "FromFull", "TextBody", "HtmlBody", "Headers", "Subject")):
        raise PayloadError("the body has none of Postmark's inbound fields (From, Subject, TextBody...)")
    headers: list[tuple[str, str]] = []
    sender = data.get("FromFull") if isinstance(data.get("FromFull"), dict) else {}
    address = str(sender.get("Email") or data.get("From") or "")
    name = str(sender.get("Name") or data.get("FromName") or "")
    if address:
        headers.append(("From", formataddr((name, address)) if name and "<" not in address else address))
    for key, header in (("To", "To"), ("Cc", "Cc"), ("ReplyTo", "Reply-To"), ("Subject", "Subject"), ("Date", "Date")):
        if data.get(key):
            headers.append((header, str(data[key])))
    given = {"from", "to", "cc", "reply-to", "subject", "date"}
    for h in data.get("Headers") or []:
        if isinstance(h, dict) and h.get("Name") and str(h["Name"]).lower() not in given:
            headers.append((str(h["Name"]), str(h.get("Value", ""))))
    if not _has(headers, "Message-ID") and data.get("MessageID"):
        # Postmark's MessageID is its own id, not the sender's: as a Message-ID it still makes a
        # Postmark retry of the same message a duplicate.
        headers.append(("Message-ID", f"<{_clean(data['MessageID']).strip('<>')}@inbound.postmarkapp.com>"))
    attachments = []
    for a in data.get("Attachments") or []:
        if not isinstance(a, dict):
            raise PayloadError("Attachments holds something that is not an attachment")
        try:
            content = base64.b64decode(str(a.get("Content") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadError(f"attachment {a.get('Name')!r} is not valid base64") from None
        attachments.append(Attachment(str(a.get("Name") or "attachment"), str(a.get("ContentType") or ""), content,
                                      str(a["ContentID"]) if a.get("ContentID") else None))
    return with_trace(build_message(headers, data.get("TextBody"), data.get("HtmlBody") or None, attachments,
                                    "Postmark"), original_to)


# --- SendGrid -------------------------------------------------------------------------------

def sendgrid_to_mime(form: Form) -> bytes:
    """SendGrid Inbound Parse: the `email` field when "POST the raw, full MIME message" is on;
    otherwise rebuilt from headers, text, html (in the charsets SendGrid names) and attachment1..n."""
    envelope = _json(form.get("envelope"), "envelope") or {}
    to = envelope.get("to") if isinstance(envelope, dict) else None
    original_to = [str(a) for a in ([to] if isinstance(to, str) else to if isinstance(to, list) else [])]
    raw = form.get("email")
    if raw:
        return with_trace(raw, original_to)
    charsets = _json(form.get("charsets"), "charsets") or {}
    charsets = charsets if isinstance(charsets, dict) else {}
    text = lambda field: form.text(field, str(charsets.get(field) or "utf-8"))  # noqa: E731
    headers = _split_header_block(text("headers"))
    for name, field in (("From", "from"), ("To", "to"), ("Cc", "cc"), ("Subject", "subject")):
        if not _has(headers, name) and text(field):
            headers.append((name, text(field)))
    if not headers and not text("text") and not text("html"):
        raise PayloadError("neither `email` nor the parsed message fields were posted")
    info = _json(form.get("attachment-info"), "attachment-info") or {}
    info = info if isinstance(info, dict) else {}
    attachments = []
    for p in form.parts:
        if re.fullmatch(r"attachment\d+", p.name):
            meta = info.get(p.name) if isinstance(info.get(p.name), dict) else {}
            attachments.append(Attachment(str(meta.get("filename") or p.filename or p.name),
                                          str(meta.get("type") or p.content_type or ""), p.value,
                                          meta.get("content-id")))
    return with_trace(build_message(headers, text("text"), text("html") or None, attachments, "SendGrid"),
                      original_to)


# --- files ----------------------------------------------------------------------------------

@dataclass
class FileMessage:
    label: str            # "reply.eml" or "archive.mbox #3"
    raw: bytes | None     # None when it could not be read
    problem: str | None = None


def is_mbox(path: Path) -> bool:
    """An mbox starts with a "From " line (the envelope line), an .eml with a header."""
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def read_messages(path: Path) -> Iterator[FileMessage]:
    """The messages in an .eml file (one) or an mbox file (each), each checked to be mail."""
    if not is_mbox(path):
        raw = path.read_bytes()
        yield FileMessage(path.name, raw, not_mail(raw))
        return
    box = mailbox.mbox(str(path), create=False)
    try:
        keys = box.keys()
        if not keys:
            yield FileMessage(path.name, None, "no messages in this mbox")
        for n, key in enumerate(keys, 1):
            label = f"{path.name} #{n}"
            try:
                raw = box.get_bytes(key)
            except Exception as exc:  # noqa: BLE001 - one unreadable message must not hide the rest
                yield FileMessage(label, None, f"cannot be read: {exc}")
                continue
            yield FileMessage(label, raw, not_mail(raw))
    finally:
        box.close()
