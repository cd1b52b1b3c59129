"""Building each member's message fast.

Python's `email` package spends most of a send in serialisation, so a campaign's MIME skeleton
(boundaries, fixed headers, encoded attachments) is built once, and each member's message is
that skeleton with their headers and their two quoted-printable parts filled in. The result is
checked against the `email` parser in the tests.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate

from mailer.models import Attachment

CRLF = b"\r\n"


def encode_header(value: str) -> str:
    """A header value, RFC 2047-encoded when it is not plain ASCII."""
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        return Header(value, "utf-8").encode()


def address(name: str, email: str) -> str:
    """"Name" <email>, with the name encoded when needed."""
    return formataddr((name, email), charset="utf-8") if name else email


def _qp(text: str) -> bytes:
    body = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return body.replace(b"\n", CRLF)


class QuotedPrintable:
    """A part's quoted-printable body from the pieces Jinja rendered it in: the long runs of the
    campaign's own markup, the same for every member, are encoded once; each member's values are
    encoded with the text around them, as ever.

    A long piece (ANCHOR characters or more) keeps CONTEXT characters at each end with its
    neighbours; its middle is encoded on its own, on fresh lines: a soft line break (a final "=",
    which decoders remove) ends whatever comes before it and the middle itself, unless a line
    ends there anyway. So the decoded text is exactly the joined pieces, and only where some
    encoded lines wrap differs from encoding the whole at once. Text with a CR in it is encoded
    whole, as `_qp` does, since CR LF might span two pieces."""

    ANCHOR, CONTEXT = 256, 64
    LIMIT = 1024  # long pieces remembered: the campaign's markup comes first

    def __init__(self):
        self.known: dict[str, bytes] = {}
        self.runs: dict[str, bytes] = {}

    RUNS = 512  # encoded runs remembered: those with nothing personal in them recur for every member

    def encode(self, pieces: list[str]) -> bytes:
        out: list[bytes] = []
        run: list[str] = []
        edge, known, runs = self.CONTEXT, self.known, self.runs
        for piece in pieces:
            if len(piece) < self.ANCHOR:
                if "\r" in piece:
                    return _qp("".join(pieces))
                run.append(piece)
                continue
            middle = known.get(piece)
            if middle is None:
                if "\r" in piece:
                    return _qp("".join(pieces))
                middle = _qp_line_ended(piece[edge:-edge])
                if len(known) < self.LIMIT:
                    known[str(piece)] = middle
            run.append(piece[:edge])
            text = "".join(run)
            encoded = runs.get(text)
            if encoded is None:
                encoded = _qp_line_ended(text)
                if len(runs) >= self.RUNS:
                    runs.clear()
                runs[text] = encoded
            out.append(encoded)
            out.append(middle)
            run = [piece[-edge:]]
        out.append(_qp("".join(run)))
        body = b"".join(out)
        return body[:-3] if body.endswith(b"=" + CRLF) else body


def _qp_line_ended(text: str) -> bytes:
    """`text` encoded, ending at the end of a line: with a soft line break unless it ends one
    (its last line split first where the "=" would take it past 76 characters)."""
    encoded = _qp(text)
    if not encoded or encoded.endswith(CRLF):
        return encoded
    start = encoded.rfind(CRLF) + 2
    if len(encoded) - start > 75:
        cut = start + 73
        while b"=" in encoded[cut - 2:cut]:  # never inside an =XX escape
            cut -= 1
        encoded = encoded[:cut] + b"=" + CRLF + encoded[cut:]
    return encoded + b"=" + CRLF


def _fold(name: str, value: str) -> bytes:
    """One header line; long comma lists are folded so no line passes 998 characters."""
    line = f"{name}: {value}".replace("\r\n", "\n").replace("\n", "\r\n")  # encoded words may fold
    if len(line) > 900 and ", " in value:
        line = f"{name}: " + ",\r\n ".join(value.split(", "))
    return line.encode("ascii") + CRLF


def _headers(*pairs: tuple[str, str]) -> bytes:
    """The header lines, as `_fold` makes each: in one piece when none needs folding or
    re-ending (no line break in it, every line well under 900 characters)."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in pairs)
    if "\n" in lines.replace("\r\n", "") or "\r" in lines.replace("\r\n", "") \
            or any(len(name) + len(value) > 897 for name, value in pairs):
        return b"".join(_fold(name, value) for name, value in pairs)
    return lines.encode("ascii")


_date = [0, ""]


def _now() -> str:
    """The Date header's value, made once a second (it names the second)."""
    second = int(time.time())
    if _date[0] != second:
        _date[:] = [second, formatdate(second, localtime=False, usegmt=True)]
    return _date[1]


@dataclass
class Skeleton:
    """The parts of a campaign's message that are the same for every member."""

    from_header: str
    list_id: str
    attachments: list[Attachment] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.alt_boundary = "=_alt_" + secrets.token_hex(12)
        self.mixed_boundary = "=_mix_" + secrets.token_hex(12)
        self._attachment_bytes = b"".join(self._attachment(a) for a in self.attachments)
        self._qp = {"text": QuotedPrintable(), "html": QuotedPrintable()}
        self._fixed = b"".join(_fold(k, v) for k, v in
                               [("From", self.from_header), ("List-Id", self.list_id), ("MIME-Version", "1.0"),
                                *self.extra_headers.items()])

    def _attachment(self, a: Attachment) -> bytes:
        name = encode_header(a.filename).replace('"', "")
        encoded = base64.encodebytes(a.data).replace(b"\n", CRLF)
        return (f"--{self.mixed_boundary}\r\nContent-Type: {a.content_type}; name=\"{name}\"\r\n"
                f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + encoded

    def _encode(self, part: str, body: str | list[str]) -> bytes:
        return _qp(body) if isinstance(body, str) else self._qp[part].encode(body)

    def build(self, *, to: str, subject: str, message_id: str, reply_to: str, list_unsubscribe: str,
              text: str | list[str], html: str | list[str]) -> bytes:
        """One member's complete message, as bytes ready for SMTP. The text and HTML may be given
        whole, or as the pieces the campaign's templates rendered them in (see QuotedPrintable)."""
        headers = self._fixed + _headers(
            ("To", to), ("Subject", encode_header(subject)), ("Date", _now()),
            ("Message-ID", message_id), ("Reply-To", reply_to), ("List-Unsubscribe", list_unsubscribe),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        alternative = (
            f"--{self.alt_boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + self._encode("text", text) + (
            f"\r\n--{self.alt_boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + self._encode("html", html) + (
            f"\r\n--{self.alt_boundary}--\r\n").encode()
        if not self.attachments:
            return (headers + f'Content-Type: multipart/alternative; boundary="{self.alt_boundary}"\r\n\r\n'.encode()
                    + alternative)
        return (headers + f'Content-Type: multipart/mixed; boundary="{self.mixed_boundary}"\r\n\r\n'.encode()
                + f"--{self.mixed_boundary}\r\n".encode()
                + f'Content-Type: multipart/alternative; boundary="{self.alt_boundary}"\r\n\r\n'.encode()
                + alternative + self._attachment_bytes + f"\r\n--{self.mixed_boundary}--\r\n".encode())
