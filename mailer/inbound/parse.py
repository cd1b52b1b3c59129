"""Parse one raw inbound message into plain fields, whatever state it arrives in.

`parse(raw)` never raises: broken MIME, wrong or unknown charsets, missing headers, an empty
body or a message over `max_bytes` (then only its headers are read) all give a ParsedMessage,
with what was wrong listed in `defects`. Pure: no database, no Flask.

Python's email package does the MIME work (policy.default where it copes, compat32-style
fallbacks where it raises); header text and body charsets are decoded here, with fallbacks:
the declared charset, then UTF-8, then Windows-1252 with replacement characters.

Over 400 lines on purpose: one pass over a hostile message, whose bounds (bytes, header lines,
MIME depth and parts) and defects are kept on the one ParsedMessage as it goes. The header,
body, charset and filename readers each call the others' fallbacks (a header's charset, a
part's filename, a broken part read as headers only), so split they would pass that state
between modules. The parts with no such state (HTML bounds, filename rules) are already their
own (htmlbound.py) or small.
"""

from __future__ import annotations

import binascii
import codecs
import io
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from mailer.inbound.htmlbound import bound_html, text_of

DEFAULT_MAX_BYTES = 30 * 1024 * 1024
MAX_DEPTH = 30
# Python's MIME parser checks every line against every open boundary and recurses once per level:
# 1,000 nested multiparts take seconds and then overflow the stack. A message declaring more
# boundaries than this is read up to the line that declares the next one (and flagged).
MAX_BOUNDARIES = 60
# The same parser's work is (lines) x (open boundaries): one line read costs about as much as
# five boundary checks. The lines given to it are capped so that lines x (4 + boundaries) stays
# under MIME_LINE_WORK: 400,000 lines (30 MB of base64) for ordinary mail, fewer when it nests.
MIME_LINE_WORK = 2_000_000
_BOUNDARY_PARAM = re.compile(rb"boundary\s*=", re.I)
# The header section is read up to these bounds (real ones are a few kilobytes; a hundred
# Received lines or a thousand recipients stay well inside); a header value is decoded up to
# MAX_HEADER_VALUE characters.
MAX_HEADER_BYTES = 256 * 1024
MAX_HEADER_LINES = 2000
MAX_HEADER_VALUE = 64 * 1024

# Content types whose text classifiers need (report parts); message/rfc822 stays bytes.
REPORT_TYPES = frozenset({
    "message/delivery-status", "message/global-delivery-status", "message/feedback-report",
    "message/disposition-notification", "message/global-disposition-notification",
    "text/rfc822-headers", "message/global-headers",
})
EMBEDDED_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global", "message/news"})


@dataclass
class Attachment:
    """A file carried by the message (everything that is not the text or HTML body)."""

    filename: str  # sanitised: no path, no control characters, never empty
    content_type: str
    size: int
    data: bytes = field(repr=False)
    inline: bool = False  # meant to be shown in the body (never true for a dangerous file)
    dangerous: bool = False  # executable, script, HTML, SVG or macro-enabled office file
    content_id: str | None = None


@dataclass
class Part:
    """One leaf MIME part, in order, outside attached messages: what classifiers read."""

    content_type: str
    params: dict[str, str]
    disposition: str  # "inline", "attachment" or ""
    filename: str | None
    text: str | None  # decoded, for text/* and report parts; None for binary parts
    data: bytes = field(repr=False, default=b"")


@dataclass
class ParsedMessage:
    """The fields of one inbound message. Addresses are lower-cased; missing values are None or []."""

    size: int = 0
    oversized: bool = False
    headers: list[tuple[str, str]] = field(default_factory=list, repr=False)  # decoded, unfolded, in order
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    from_name: str = ""
    from_address: str | None = None
    reply_to: list[str] = field(default_factory=list)
    sender: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    delivered_to: list[str] = field(default_factory=list)
    x_original_to: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    text: str = ""
    html: str | None = None
    html_only: bool = False  # no text/plain part: `text` was made from the HTML
    html_limited: bool = False  # the HTML is too big or busy for the full parsers: read by a tag stripper
    incomplete: bool = False  # the MIME structure could not be read whole: an officer should look
    attachments: list[Attachment] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list, repr=False)
    # Headers that tell automatic mail from a person's.
    auto_submitted: str | None = None
    x_autoreply: str | None = None
    x_autorespond: str | None = None
    precedence: str | None = None
    x_auto_response_suppress: str | None = None
    x_ms_exchange_inbox_rules_loop: str | None = None
    list_id: str | None = None
    return_path: str | None = None  # "" for the null sender <>, None when absent
    x_failed_recipients: list[str] = field(default_factory=list)
    content_type: str = "text/plain"  # of the top part
    report_type: str | None = None  # its report-type parameter (multipart/report)
    defects: list[str] = field(default_factory=list)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first decoded value of header `name` (any case), else `default`."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def header_all(self, name: str) -> list[str]:
        """Every decoded value of header `name`, in order."""
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]


# --- entry point ----------------------------------------------------------------------------

def parse(raw: bytes, max_bytes: int | None = DEFAULT_MAX_BYTES) -> ParsedMessage:
    """Parse a raw RFC 5322 message. Never raises; problems are listed in `defects`."""
    try:
        data = _as_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - the promise is "never raises"
        return ParsedMessage(defects=[f"input is not a message ({type(exc).__name__})"])
    try:
        return _parse(data, max_bytes)
    except Exception as exc:  # noqa: BLE001 - a bug here must not lose the message
        return _headers_only(data, f"could not be parsed ({type(exc).__name__}: {str(exc)[:200]})")


def _headers_only(data: bytes, why: str) -> ParsedMessage:
    """Degrade, don't discard: From, Subject, Message-ID and references from the header block alone."""
    pm = ParsedMessage(size=len(data), incomplete=True,
                       defects=[f"{why}: only the headers were read (the raw message is kept)"])
    block = _header_block(data.lstrip(b"\r\n"), len(data) or 1)
    for attempt in (block, block.replace(b"\x00", b"")):
        try:
            msg = BytesParser(policy=email_policy.compat32).parsebytes(attempt, headersonly=True)
            _read_headers(msg, pm)
            return pm
        except Exception:  # noqa: BLE001 - then by hand, below
            pm.headers, pm.defects = [], pm.defects[:1]
    # Last resort: the fields by a line scan.
    text = decode_bytes(block.replace(b"\x00", b""), None)[0]
    for line in re.split(r"\r?\n(?![ \t])", text):
        name, colon, value = line.partition(":")
        if colon and name.strip() and " " not in name.strip():
            pm.headers.append((name.strip(), decode_words(value.strip())))
    pm.subject = (pm.header("subject") or "").strip()
    pm.message_id = normalise_msgid(pm.header("message-id"))
    pm.in_reply_to = normalise_msgid(pm.header("in-reply-to"))
    pm.references = msgid_list(pm.header("references"))
    found = _plain_addresses([pm.header("from") or ""])
    if found:
        pm.from_name, pm.from_address = found[0][0], found[0][1] or None
    return pm


def _as_bytes(raw) -> bytes:
    if raw is None:
        return b""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw)


def _parse(data: bytes, max_bytes: int | None) -> ParsedMessage:
    pm = ParsedMessage(size=len(data))
    if not data.strip():
        pm.defects.append("the message is empty")
        return pm
    if data[:1] in (b"\r", b"\n", b" ", b"\t"):
        stripped = data.lstrip(b"\r\n")
        if stripped[:1] not in (b" ", b"\t"):
            pm.defects.append("blank lines before the headers")
            data = stripped
    if max_bytes is not None and len(data) > max_bytes:
        pm.oversized = True
        pm.defects.append(f"the message is {len(data):,} bytes, over the limit of {max_bytes:,}: "
                          "only its headers were read")
        data = _header_block(data, max_bytes)

    if not pm.oversized:
        data = _bounded_headers(data, pm)
        data = _bounded_mime(data, pm)
    msg = _message_from_bytes(data, pm.defects, headers_only=pm.oversized)
    _read_headers(msg, pm)
    if not pm.oversized:
        _read_body(msg, pm)
    _collect_defects(msg, pm)
    return pm


def _bounded_headers(data: bytes, pm: ParsedMessage) -> bytes:
    """The message with its header section cut to MAX_HEADER_BYTES / MAX_HEADER_LINES (body kept)."""
    m = re.search(rb"\r?\n\r?\n", data)
    end = m.start() if m else len(data)
    if end <= MAX_HEADER_BYTES and data.count(b"\n", 0, end) <= MAX_HEADER_LINES:
        return data
    cut = min(end, MAX_HEADER_BYTES)
    nth = -1
    for _ in range(MAX_HEADER_LINES):
        nth = data.find(b"\n", nth + 1, cut)
        if nth < 0:
            break
    if nth >= 0:
        cut = nth
    cut = data.rfind(b"\n", 0, cut) + 1 if data.rfind(b"\n", 0, cut) > 0 else cut
    pm.incomplete = True
    pm.defects.append(f"a header section over {MAX_HEADER_BYTES // 1024} KB or {MAX_HEADER_LINES:,} lines: "
                      "only its first fields and the key ones after them were read (the raw message is kept)")
    kept = data[:cut].rstrip(b"\r\n")
    # The fields that matter (sender, subject, ids, MIME type), found by a line scan of the rest.
    have = {f.lower() for f in _FIELD_NAME.findall(kept)}
    extra = []
    for f in _FIELD_NAME.finditer(data, cut, end):
        name = f.group(1).lower()
        if name in _KEY_FIELDS and name not in have:
            have.add(name)
            stop = f.start()
            while True:  # the field with its continuation lines, bounded
                nl = data.find(b"\n", stop, end)
                stop = end if nl < 0 else nl + 1
                if stop >= end or data[stop:stop + 1] not in (b" ", b"\t") or stop - f.start() > MAX_HEADER_VALUE:
                    break
            extra.append(data[f.start():min(stop, f.start() + MAX_HEADER_VALUE)].rstrip(b"\r\n"))
    return b"\r\n".join([kept, *extra]) + (data[m.start():] if m else b"\r\n\r\n")


_FIELD_NAME = re.compile(rb"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:", re.M)
_KEY_FIELDS = frozenset(n.encode() for n in (
    "from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
    "content-type", "content-transfer-encoding", "mime-version", "auto-submitted", "return-path", "delivered-to",
    "x-original-to", "x-failed-recipients", "precedence", "list-id", "x-autoreply", "x-autorespond"))


def _bounded_mime(data: bytes, pm: ParsedMessage) -> bytes:
    """The message up to the line declaring boundary number MAX_BOUNDARIES + 1 (all of it when fewer),
    and at most MIME_LINE_WORK / (4 + boundaries) lines of it."""
    found = 0
    for m in _BOUNDARY_PARAM.finditer(data):
        found += 1
        if found > MAX_BOUNDARIES:
            cut = data.rfind(b"\n", 0, m.start()) + 1
            pm.incomplete = True
            pm.defects.append(f"more than {MAX_BOUNDARIES} multipart parts: only the first {MAX_BOUNDARIES} "
                              f"were read (the raw message is kept)")
            data = data[:cut]
            found = MAX_BOUNDARIES
            break
    budget = MIME_LINE_WORK // (4 + found)
    if data.count(b"\n") > budget:
        cut = -1
        for _ in range(budget):
            cut = data.find(b"\n", cut + 1)
        pm.incomplete = True
        pm.defects.append(f"more than {budget:,} lines: only those were read (the raw message is kept)")
        data = data[:cut + 1]
    return data


def _header_block(data: bytes, max_bytes: int) -> bytes:
    """The header section of a message too big to parse whole (capped, so a body without a blank line is not read)."""
    cap = min(max_bytes, 1024 * 1024)
    m = re.search(rb"\r?\n\r?\n", data[:cap])
    return data[:m.end()] if m else data[:cap]


def _message_from_bytes(data: bytes, defects: list[str], headers_only: bool = False) -> Message:
    # compat32 first: this module decodes headers itself from the raw values, and the modern
    # policy's header objects made parsing several times slower for nothing it needs here.
    try:
        return BytesParser(policy=email_policy.compat32).parsebytes(data, headersonly=headers_only)
    except Exception as exc:  # noqa: BLE001
        defects.append(f"MIME structure could not be read leniently ({type(exc).__name__}); read strictly")
        return BytesParser(policy=email_policy.default).parsebytes(data, headersonly=headers_only)


# --- headers --------------------------------------------------------------------------------

def _read_headers(msg: Message, pm: ParsedMessage) -> None:
    raw_headers = []
    try:
        raw_headers = list(msg.raw_items())
    except Exception:  # noqa: BLE001
        pm.defects.append("the headers could not be read")
    raw = {}
    for name, value in raw_headers:
        text = _raw_header_text(value)[:MAX_HEADER_VALUE]
        pm.headers.append((str(name), decode_words(text)))
        raw.setdefault(str(name).lower(), []).append(text)

    def first(name: str) -> str | None:
        values = raw.get(name)
        return values[0] if values else None

    def decoded(name: str) -> str | None:
        value = first(name)
        return decode_words(value).strip() if value is not None else None

    pm.message_id = normalise_msgid(first("message-id"))
    pm.in_reply_to = normalise_msgid(first("in-reply-to"))
    pm.references = msgid_list(" ".join(raw.get("references", [])))
    pm.subject = decoded("subject") or ""

    from_addresses = _addresses(msg, "from", raw.get("from", []))
    if from_addresses:
        pm.from_name, pm.from_address = from_addresses[0]
        pm.from_address = pm.from_address or None
    if "from" not in raw:
        pm.defects.append("no From header")
    elif not pm.from_address:
        pm.defects.append(f"the From header has no address: {decoded('from')!r}")
    sender = _addresses(msg, "sender", raw.get("sender", []))
    pm.sender = sender[0][1] if sender else None
    pm.reply_to = [a for _, a in _addresses(msg, "reply-to", raw.get("reply-to", [])) if a]
    pm.to = [a for _, a in _addresses(msg, "to", raw.get("to", [])) if a]
    pm.cc = [a for _, a in _addresses(msg, "cc", raw.get("cc", [])) if a]
    pm.delivered_to = [a for _, a in _plain_addresses(raw.get("delivered-to", [])) if a]
    pm.x_original_to = [a for _, a in _plain_addresses(raw.get("x-original-to", [])) if a]
    pm.x_failed_recipients = [a for _, a in _plain_addresses(raw.get("x-failed-recipients", [])) if a]
    if "message-id" not in raw:
        pm.defects.append("no Message-ID header")
    elif pm.message_id is None:
        pm.defects.append("an empty Message-ID header")

    date_value = first("date")
    if date_value is None:
        pm.defects.append("no Date header")
    else:
        pm.date = _parse_date(date_value)
        if pm.date is None:
            pm.defects.append(f"an unreadable Date header: {date_value.strip()[:80]!r}")

    pm.auto_submitted = decoded("auto-submitted")
    pm.x_autoreply = decoded("x-autoreply")
    pm.x_autorespond = decoded("x-autorespond")
    pm.precedence = decoded("precedence")
    pm.x_auto_response_suppress = decoded("x-auto-response-suppress")
    pm.x_ms_exchange_inbox_rules_loop = decoded("x-ms-exchange-inbox-rules-loop")
    pm.list_id = decoded("list-id")
    return_path = first("return-path")
    if return_path is not None:
        addresses = _plain_addresses([return_path])
        pm.return_path = addresses[0][1] if addresses else ""
    pm.content_type, params = _content_type(msg, pm.defects)
    pm.report_type = (params.get("report-type") or "").lower() or None


_SURROGATE = re.compile("[\udc80-\udcff]")
# Control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) but the tab.
_CONTROLS = dict.fromkeys([c for c in range(0x20) if c != 9] + list(range(0x7F, 0xA0)))


def _has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _raw_header_text(value) -> str:
    """A raw header value as text: 8-bit bytes read as UTF-8 (else Windows-1252), unfolded."""
    if not isinstance(value, str):
        value = str(value)
    if _has_surrogates(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"), None)[0]
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    return value.replace("\r", " ").replace("\n", " ").strip()


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")


def decode_words(value: str | None) -> str:
    """Decode RFC 2047 encoded words leniently (bad padding, unknown charsets, split characters)."""
    if not value:
        return ""
    out: list[str] = []
    pos = 0
    run_charset: str | None = None
    run_bytes = b""

    def flush():
        nonlocal run_bytes, run_charset
        if run_charset is not None:
            out.append(decode_bytes(run_bytes, run_charset)[0])
        run_bytes, run_charset = b"", None

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        if between.strip() or run_charset is None:
            flush()
            out.append(between)
        charset = m.group(1).split("*")[0]
        chunk = _b64_lenient(m.group(3)) if m.group(2) in "bB" else _q_decode(m.group(3))
        if run_charset is not None and charset.lower() != run_charset.lower():
            flush()
        # Adjacent words in one charset are joined before decoding: mailers split characters.
        run_charset = charset
        run_bytes += chunk
        pos = m.end()
    flush()
    out.append(value[pos:])
    return "".join(out).translate(_CONTROLS)


def _b64_lenient(s: str) -> bytes:
    s = re.sub(r"[^A-Za-z0-9+/]", "", s)
    if len(s) % 4 == 1:
        s = s[:-1]
    try:
        return binascii.a2b_base64(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError):
        return b""


def _q_decode(s: str) -> bytes:
    raw = s.replace("_", " ").encode("utf-8", "surrogateescape")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def normalise_msgid(value: str | None) -> str | None:
    """'<id@host>' from a Message-ID-like header value (brackets added when missing), else None."""
    ids = msgid_list(value)
    return ids[0] if ids else None


def msgid_list(value: str | None) -> list[str]:
    """Every message id in a References-like value, in order, without repeats."""
    if not value:
        return []
    found = re.findall(r"<\s*([^<>\s]+)\s*>", value)
    if not found:
        found = [t.strip("\"'<>,;") for t in value.split()]
    seen: list[str] = []
    for ident in found:
        ident = f"<{ident}>" if ident else ""
        if ident and ident not in seen:
            seen.append(ident)
    return seen


def _addresses(msg: Message, name: str, raw_values: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs: the modern parser first, the lenient one if it fails."""
    if not raw_values:
        return []
    try:
        header = msg[name]
        pairs = []
        for value in msg.get_all(name) or []:
            for addr in getattr(value, "addresses", ()):
                spec = (addr.addr_spec or "").strip().lower()
                if spec in ("<>", ""):
                    continue
                pairs.append((str(addr.display_name or "").strip(), spec))
        garbled = any(_has_surrogates(name) or "\ufffd" in name for name, _ in pairs)
        if (pairs or header is None) and not garbled:
            return pairs
    except Exception:  # noqa: BLE001 - known parser bugs on malformed addresses
        pass
    return _plain_addresses(raw_values)


def _plain_addresses(raw_values: list[str]) -> list[tuple[str, str]]:
    try:
        pairs = getaddresses(list(raw_values))
    except Exception:  # noqa: BLE001
        pairs = [("", a) for v in raw_values for a in re.findall(r"[^\s<>,;\"]+@[^\s<>,;\"]+", v)]
    out = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>").lower()
        if addr or name:
            out.append((decode_words(name).strip(), addr))
    return out


def _parse_date(value: str) -> datetime | None:
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    if dt.tzinfo is None:  # "-0000": the time is UTC, the zone unknown
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def _content_type(part: Message, defects: list[str] | None = None) -> tuple[str, dict[str, str]]:
    """(lower-cased type, parameters) of a part; text/plain when it cannot be read."""
    try:
        ctype = part.get_content_type()
        params = {}
        for key, value in (part.get_params() or [])[1:]:
            if isinstance(value, tuple):  # RFC 2231
                value = value[2]
            params[str(key).lower()] = str(value)
        return ctype, params
    except Exception:  # noqa: BLE001
        raw = str(part.get("content-type", "") if hasattr(part, "get") else "")
        if defects is not None:
            defects.append(f"an unreadable Content-Type: {raw[:80]!r}")
        m = re.match(r"\s*([\w.+-]+/[\w.+-]+)", raw)
        params = dict((k.lower(), v.strip('"')) for k, v in re.findall(r";\s*([\w-]+)\s*=\s*(\"[^\"]*\"|[^;\s]+)", raw))
        return (m.group(1).lower() if m else "text/plain"), params


# --- body -----------------------------------------------------------------------------------

@dataclass
class _Walk:
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_body(msg: Message, pm: ParsedMessage) -> None:
    walk = _Walk()
    _walk(msg, pm, walk, depth=0, alternative=None)
    pm.defects.extend(walk.notes)
    if walk.htmls:
        # Apple Mail splits a body around inline images into several HTML parts: keep them all.
        # pm.html is kept as it came; what reads it bounds it first (linear), as here.
        pm.html = "\n".join(walk.htmls)
        bounded, notes, pm.html_limited = bound_html(pm.html)
        pm.defects.extend(notes)
    if walk.texts:
        pm.text = "\n\n".join(t.rstrip() for t in walk.texts if t.strip()) or walk.texts[0]
    elif pm.html is not None:
        pm.text = text_of(bounded) if pm.html_limited else html_to_text(bounded)
        pm.html_only = True
    if not pm.text.strip() and pm.html is None and not pm.attachments:
        pm.defects.append("the body is empty")


def _walk(part: Message, pm: ParsedMessage, walk: _Walk, depth: int, alternative: dict | None) -> None:
    if depth > MAX_DEPTH:
        walk.notes.append(f"MIME parts nested deeper than {MAX_DEPTH}: the rest was ignored")
        return
    ctype, params = _content_type(part, walk.notes)
    payload = _payload(part)
    if ctype in EMBEDDED_MESSAGE_TYPES or (ctype.startswith("message/") and ctype not in REPORT_TYPES):
        _leaf_message(part, ctype, params, pm)
        return
    if ctype.startswith("multipart/"):
        if isinstance(payload, list):
            seen = {} if ctype == "multipart/alternative" else None
            for child in payload:
                if isinstance(child, Message):
                    _walk(child, pm, walk, depth + 1, seen)
            return
        recovered = _with_guessed_boundary(part, ctype, params)
        if recovered is not None:
            walk.notes.append(f"a {ctype} part whose boundary does not match its body: the boundary was "
                              "guessed from the body")
            _walk(recovered, pm, walk, depth + 1, alternative)
            return
        walk.notes.append(f"a {ctype} part without readable parts (missing or wrong boundary): read as text")
        ctype = "text/plain"
    _leaf(part, ctype, params, pm, walk, alternative)


def _with_guessed_boundary(part: Message, ctype: str, params: dict) -> Message | None:
    """Re-read a multipart part whose boundary is missing or wrong, using the delimiter lines in its body."""
    payload = _payload(part)
    if not isinstance(payload, str):
        return None
    declared = params.get("boundary")
    tried: set[str] = set()
    for m in re.finditer(r"(?m)^--([^\s]{1,70}?)(--)?[ \t]*\r?$", payload):
        boundary = m.group(1)
        if boundary == declared or boundary.strip("-") == "" or boundary in tried:
            continue
        tried.add(boundary)
        if len(tried) > 8:
            return None  # each candidate costs a pass over the body: a few, not one per line
        if payload.count("--" + boundary) < 2 and f"--{boundary}--" not in payload:
            continue
        head = f'Content-Type: {ctype}; boundary="{boundary}"\n\n'
        raw = head.encode() + payload.encode("utf-8", "surrogateescape")
        try:
            recovered = BytesParser(policy=email_policy.default).parsebytes(raw)
        except Exception:  # noqa: BLE001
            return None
        if isinstance(_payload(recovered), list) and _payload(recovered):
            return recovered
        return None
    return None


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        raw = str(part.get("content-disposition", "") or "")
        return raw.split(";")[0].strip().lower()


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if name is None:
        try:
            name = part.get_param("name")
            if isinstance(name, tuple):
                name = name[2]
        except Exception:  # noqa: BLE001
            name = None
    return decode_words(str(name)) if name else None


def _payload(part: Message):
    """part.get_payload(), except that a charset the codecs cannot even look up (a NUL in its name
    raises ValueError, which the email package does not catch) gives the undecoded payload."""
    try:
        return part.get_payload()
    except (ValueError, LookupError, TypeError):
        return part._payload  # noqa: SLF001 - the same value, without the charset step


def _transfer_encoding(part: Message) -> str:
    """The Content-Transfer-Encoding as a token: unfolded, unquoted, without comments or parameters
    (the email package compares the raw value, so "quoted-printable " or a folded value stayed encoded)."""
    raw = str(part.get("content-transfer-encoding", "") or "")
    token = re.sub(r"\([^()]*\)", " ", raw).split(";")[0]
    return token.strip().strip("\"'").strip().lower()


def _payload_bytes(part: Message) -> bytes:
    cte = _transfer_encoding(part)
    payload = _payload(part)
    if cte in ("quoted-printable", "base64") and isinstance(payload, str) and \
            str(part.get("content-transfer-encoding", "")).lower() != cte:
        return _decode_cte(payload.encode("utf-8", "surrogateescape"), cte)
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if data is None:
        payload = _payload(part)
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    return data


def _leaf(part: Message, ctype: str, params: dict, pm: ParsedMessage, walk: _Walk, alternative: dict | None) -> None:
    disposition = _disposition(part)
    filename = _filename(part)
    data = _payload_bytes(part)
    text = None
    if ctype.startswith("text/") or ctype in REPORT_TYPES:
        text, note = decode_bytes(data, params.get("charset"))
        if note:
            walk.notes.append(f"{ctype} part: {note}")
    is_body = ctype in ("text/plain", "text/html") and disposition != "attachment"
    if is_body and alternative is not None:
        if ctype in alternative:  # a second choice of the same type: not the body
            is_body = False
        else:
            alternative[ctype] = True
    if ctype in REPORT_TYPES and isinstance(_payload(part), list):
        text = _report_text(part)  # the parser split it into header blocks: join them again
        data = text.encode("utf-8")
    pm.parts.append(Part(ctype, params, disposition, filename, text, data))
    if is_body and ctype == "text/plain":
        walk.texts.append(text or "")
        return
    if is_body and ctype == "text/html":
        walk.htmls.append(text or "")
        return
    _add_attachment(pm, part, ctype, disposition, filename, data)


def _leaf_message(part: Message, ctype: str, params: dict, pm: ParsedMessage) -> None:
    """An attached message: kept whole as bytes (not searched for the body)."""
    disposition = _disposition(part)
    filename = _filename(part)
    data = _message_bytes(part)
    pm.parts.append(Part(ctype, params, disposition, filename, None, data))
    _add_attachment(pm, part, ctype, disposition or "attachment", filename, data)


def _message_bytes(part: Message) -> bytes:
    payload = _payload(part)
    cte = str(part.get("content-transfer-encoding", "") or "").strip().lower()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message) and cte not in ("base64", "quoted-printable"):
        inner = payload[0]
        try:
            buf = io.BytesIO()
            BytesGenerator(buf, mangle_from_=False, maxheaderlen=0,
                           policy=email_policy.compat32).flatten(inner)
            return buf.getvalue()
        except Exception:  # noqa: BLE001
            try:
                return inner.as_string(policy=email_policy.compat32).encode("utf-8", "surrogateescape")
            except Exception:  # noqa: BLE001
                return b""
    if isinstance(payload, list):
        # An encoded message/* part: the parser read its encoded text as a message; undo that.
        text = "\n\n".join(_block_text(b) for b in payload if isinstance(b, Message))
        raw = text.encode("utf-8", "surrogateescape")
        return _decode_cte(raw, cte)
    return _payload_bytes(part)


def _decode_cte(raw: bytes, cte: str) -> bytes:
    if cte == "base64":
        return _b64_lenient(raw.decode("ascii", "ignore"))
    if cte == "quoted-printable":
        import quopri
        return quopri.decodestring(raw)
    return raw


def _block_text(block: Message) -> str:
    lines = [f"{k}: {v}" for k, v in block.raw_items()]
    body = _payload(block)
    if isinstance(body, str) and body.strip():
        lines.append(body.rstrip("\n"))
    return "\n".join(lines)


def _report_text(part: Message) -> str:
    """The text of a report part (message/delivery-status and the like), which the parser split into header blocks."""
    payload = _payload(part)
    text = "\n\n".join(_block_text(b) for b in payload if isinstance(b, Message))
    cte = str(part.get("content-transfer-encoding", "") or "").strip().lower()
    if cte in ("base64", "quoted-printable"):
        text = decode_bytes(_decode_cte(text.encode("utf-8", "surrogateescape"), cte), None)[0]
    elif any("\udc80" <= ch <= "\udcff" for ch in text):
        text = decode_bytes(text.encode("utf-8", "surrogateescape"), None)[0]
    return text


def _add_attachment(pm: ParsedMessage, part: Message, ctype: str, disposition: str, filename: str | None,
                    data: bytes) -> None:
    n = len(pm.attachments) + 1
    name = sanitise_filename(filename) if filename else ""
    if not name:
        name = _default_name(ctype, n)
    content_id = None
    try:
        cid = part.get("content-id")
        content_id = str(cid).strip().strip("<>") or None if cid else None
    except Exception:  # noqa: BLE001
        content_id = None
    danger = is_dangerous(name, ctype, data)
    inline = (disposition == "inline" or (not disposition and content_id is not None)) and not danger
    pm.attachments.append(Attachment(name, ctype, len(data), data, inline, danger, content_id))


def _default_name(ctype: str, n: int) -> str:
    special = {"message/rfc822": ".eml", "message/global": ".eml", "message/delivery-status": ".txt",
               "message/feedback-report": ".txt", "text/rfc822-headers": ".txt", "text/plain": ".txt",
               "text/html": ".html", "application/octet-stream": ".bin"}
    ext = special.get(ctype) or mimetypes.guess_extension(ctype, strict=False) or ".bin"
    stem = ctype.split("/")[-1] if ctype.startswith(("message/", "text/rfc822")) else "attachment"
    return f"{stem}-{n}{ext}"


# --- filenames and dangerous files ----------------------------------------------------------

_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.I)


def sanitise_filename(name: str, max_length: int = 150) -> str:
    """A safe file name: no directories, control or bidi characters, reserved names or leading dots."""
    name = unicodedata.normalize("NFC", str(name))
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name) > max_length:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[:max_length - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:max_length].rstrip(" .")
    return name


DANGEROUS_EXTENSIONS = frozenset("""
    exe com bat cmd scr pif msi msp mst msix msixbundle appx appxbundle application gadget cpl dll sys
    ocx drv vbs vbe js jse mjs jar ws wsf wsc wsh ps1 ps1xml ps2 ps2xml psc1 psc2 psm1 msh msh1 msh2
    mshxml msh1xml msh2xml hta reg lnk inf scf sct url website chm hlp msc xll xla xlam xltm xlsm docm
    dotm pptm potm ppam ppsm sldm one iso img vhd vhdx udf sh bash csh ksh zsh command app pkg dmg apk
    deb rpm html htm xhtml shtml xht mht mhtml svg svgz xml xsl xslt swf py pyw pl rb php asp aspx jsp
    cgi library-ms settingcontent-ms
""".split())

DANGEROUS_TYPES = frozenset({
    "application/x-msdownload", "application/x-msdos-program", "application/x-msi", "application/x-ms-installer",
    "application/x-dosexec", "application/x-executable", "application/x-elf", "application/x-mach-binary",
    "application/vnd.microsoft.portable-executable", "application/x-sh", "application/x-csh",
    "application/x-shellscript", "application/javascript", "application/x-javascript", "application/ecmascript",
    "text/javascript", "text/ecmascript", "text/jscript", "text/vbscript", "application/x-vbscript",
    "text/html", "application/xhtml+xml", "image/svg+xml", "application/hta", "application/x-bat",
    "application/java-archive", "application/x-java-archive", "application/x-ms-shortcut",
    "application/x-powershell", "application/x-python", "text/x-python", "application/x-perl",
    "application/x-php", "application/vnd.ms-htmlhelp", "application/x-shockwave-flash", "message/external-body",
    "application/vnd.android.package-archive", "application/x-apple-diskimage", "application/x-iso9660-image",
    "text/xml", "application/xml", "application/xslt+xml", "multipart/related",
})

_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"#!", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
_MARKUP_SNIFF = re.compile(rb"^\s*(<!doctype\s+html|<html|<script|<svg|<\?xml[^>]*>\s*<svg)", re.I)


def is_dangerous(filename: str, content_type: str, data: bytes = b"") -> bool:
    """True for files that run code or render as a web page: never to be shown inline."""
    lowered = filename.lower()
    ext = lowered.rpartition(".")[2] if "." in lowered else ""
    ctype = content_type.lower()
    if ext in DANGEROUS_EXTENSIONS or ctype in DANGEROUS_TYPES:
        return True
    if "macroenabled" in ctype or ctype.startswith("application/vnd.ms-office.vba"):
        return True
    head = data[:512]
    if head.startswith(_EXECUTABLE_MAGIC[:3]) and not ctype.startswith("text/plain"):
        return True
    if head.startswith(_EXECUTABLE_MAGIC[3:]):
        return True
    if _MARKUP_SNIFF.match(head) and not ctype.startswith("text/plain"):
        return True
    if data.startswith(b"PK\x03\x04") and b"vbaProject.bin" in data:
        return True  # an Office file with macros, whatever its name says
    if data.startswith(b"\xd0\xcf\x11\xe0") and "_VBA_PROJECT".encode("utf-16-le") in data:
        return True
    return False


# --- charsets -------------------------------------------------------------------------------

_CHARSET_ALIASES = {
    "iso-8859-1": ["cp1252", "latin-1"], "latin1": ["cp1252", "latin-1"], "latin-1": ["cp1252", "latin-1"],
    "iso8859-1": ["cp1252", "latin-1"], "us-ascii": ["ascii"], "ascii": ["ascii"], "ansi_x3.4-1968": ["ascii"],
    "ks_c_5601-1987": ["cp949"], "ks_c_5601": ["cp949"], "euc-kr": ["cp949"],
    "gb2312": ["gb18030"], "gbk": ["gb18030"], "x-gbk": ["gb18030"], "cn-gb": ["gb18030"],
    "shift_jis": ["cp932", "shift_jis_2004"], "shift-jis": ["cp932"], "x-sjis": ["cp932"], "sjis": ["cp932"],
    "windows-31j": ["cp932"], "iso-2022-jp": ["iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3"],
    "euc-jp": ["euc_jp", "euc_jis_2004"], "iso-8859-8-i": ["iso-8859-8"], "windows-874": ["cp874"],
    "unicode-1-1-utf-7": ["utf-7"], "utf8": ["utf-8"], "x-unknown": [], "unknown-8bit": [], "unknown": [],
    "default": [], "x-user-defined": [], "charset": [],
}


def _codecs_for(charset: str | None) -> tuple[list[str], bool]:
    """(codec names to try, whether the charset was recognised)."""
    if not charset:
        return [], True
    name = charset.strip().strip("\"' ;").lower()
    if name in _CHARSET_ALIASES:
        return _CHARSET_ALIASES[name], bool(_CHARSET_ALIASES[name])
    try:
        return [codecs.lookup(name).name], True
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return [], False


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """(text, note): the declared charset, else UTF-8, else Windows-1252 with replacement characters."""
    if not data:
        return "", None
    candidates, known = _codecs_for(charset)
    for codec in candidates:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            continue
    if charset and not known:
        note = f"unknown charset {charset.strip()!r}"
    elif charset:
        note = f"the text does not fit its declared charset {charset.strip()!r}"
    else:
        note = None if data.isascii() else "8-bit text without a declared charset"
    try:
        text = data.decode("utf-8")
        return text, (note + "; read as UTF-8") if note else None
    except UnicodeDecodeError:
        text = data.decode("cp1252", "replace")
        return text, (note or "undecodable text") + "; read as Windows-1252"


# --- HTML to text ---------------------------------------------------------------------------

def html_to_text(source: str) -> str:
    """Readable plain text of an HTML body (html2text on bounded markup; a linear tag stripper when
    the markup is over the bounds or html2text fails)."""
    cleaned, _, limited = bound_html(source or "")
    if limited:
        return text_of(cleaned)
    try:
        import html2text

        converter = html2text.HTML2Text()
        converter.body_width = 0
        converter.ignore_images = True
        converter.unicode_snob = True
        return converter.handle(cleaned).strip()
    except Exception:  # noqa: BLE001
        return text_of(cleaned)


# --- defects --------------------------------------------------------------------------------

_DEFECT_TEXT = {
    "NoBoundaryInMultipartDefect": "a multipart part without a boundary",
    "StartBoundaryNotFoundDefect": "the MIME boundary never appears",
    "CloseBoundaryNotFoundDefect": "the last MIME part is not closed",
    "FirstHeaderLineIsContinuationDefect": "the first header line is a continuation line",
    "MisplacedEnvelopeHeaderDefect": "a 'From ' envelope line among the headers",
    "MissingHeaderBodySeparatorDefect": "a line in the headers that is not a header (no blank line before the body?)",
    "MultipartInvariantViolationDefect": "a multipart part that is not multipart",
    "InvalidMultipartContentTransferEncodingDefect": "a multipart part with an invalid transfer encoding",
    "UndecodableBytesDefect": "undecodable bytes in a header",
    "InvalidBase64PaddingDefect": "broken base64 (padding)",
    "InvalidBase64CharactersDefect": "broken base64 (invalid characters)",
    "InvalidBase64LengthDefect": "broken base64 (length)",
    "InvalidHeaderDefect": "an invalid header",
    "HeaderMissingRequiredValue": "a header without its required value",
    "NonPrintableDefect": "non-printable characters in a header",
    "NonASCIILocalPartDefect": "a non-ASCII address",
    "InvalidDateDefect": "an invalid date",
}
_IGNORED_DEFECTS = {"ObsoleteHeaderDefect"}


def _collect_defects(msg: Message, pm: ParsedMessage) -> None:
    seen = set(pm.defects)

    def add(defect) -> None:
        kind = type(defect).__name__
        if kind in _IGNORED_DEFECTS:
            return
        label = _DEFECT_TEXT.get(kind, re.sub(r"(?<!^)(?=[A-Z])", " ", kind.removesuffix("Defect")).lower())
        detail = str(defect).strip()
        text = f"{label}: {detail}" if detail and detail.lower() != label.lower() else label
        if text not in seen:
            seen.add(text)
            pm.defects.append(text)

    stack = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        for defect in getattr(part, "defects", ()) or ():
            add(defect)
        if depth > MAX_DEPTH:
            continue
        try:
            ctype = part.get_content_type()
        except Exception:  # noqa: BLE001
            ctype = ""
        if ctype in EMBEDDED_MESSAGE_TYPES:
            continue  # an attached message's own defects are not this message's
        payload = _payload(part)
        if isinstance(payload, list):
            stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
    # Header-level defects of the modern parser show up when headers are read.
    for name in ("from", "to", "cc", "date", "message-id", "subject", "content-type"):
        try:
            for value in msg.get_all(name) or []:
                for defect in getattr(value, "defects", ()) or ():
                    add(defect)
        except Exception as exc:  # noqa: BLE001
            text = f"the {name} header could not be parsed ({type(exc).__name__})"
            if text not in seen:
                seen.add(text)
                pm.defects.append(text)
