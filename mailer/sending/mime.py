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


def _qp(text: str, reuse: QuotedPrintable | None = None) -> bytes:
    data = text.replace("\r\n", "\n").encode("utf-8")
    body = reuse.encode(data) if reuse is not None else binascii.b2a_qp(data, istext=True)
    return body.replace(b"\n", CRLF)


class QuotedPrintable:
    """binascii.b2a_qp(data, istext=True), reusing the encoding of the part every member's
    message shares: each member's HTML is a few kilobytes of the campaign's own markup (much of
    it on one long line) with their name and links in it.

    The encoder keeps no state across a line break, soft or hard, beyond its position in the
    input, and looks at most one byte ahead. So where new data agrees with a reference up to
    some point, the reference's output up to its last line break well before that point is
    exactly the new data's output there too, and only the rest needs encoding. (Without any
    CR in the data: b2a_qp chooses its line ending from the first line of the whole input.)
    The tests compare the results with b2a_qp's over many inputs."""

    def __init__(self):
        self.reference: bytes | None = None
        self.encoded = b""
        self.breaks: list[tuple[int, int]] = []  # (input offset, output offset) just after each line break

    def _learn(self, data: bytes) -> bytes:
        encoded = binascii.b2a_qp(data, istext=True)
        self.reference, self.encoded, self.breaks = data, encoded, []
        consumed = at = 0
        for line in encoded.split(b"\n")[:-1]:
            at += len(line) + 1
            soft = line.endswith(b"=")
            if soft:
                line = line[:-1]
            # Every "=" left starts a three-character escape of one input byte.
            consumed += len(line) - 2 * line.count(b"=") + (0 if soft else 1)
            self.breaks.append((consumed, at))
        return encoded

    def encode(self, data: bytes) -> bytes:
        if b"\r" in data:
            return binascii.b2a_qp(data, istext=True)
        ref = self.reference
        if ref is None:
            return self._learn(data)
        if data == ref:
            return self.encoded
        same = _common_prefix(ref, data)
        best = None
        for consumed, at in self.breaks:
            if consumed + 2 > same:
                break
            best = (consumed, at)
        if best is None:
            return binascii.b2a_qp(data, istext=True)
        consumed, at = best
        return self.encoded[:at] + binascii.b2a_qp(data[consumed:], istext=True)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix (a binary search over C-speed slice comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fold(name: str, value: str) -> bytes:
    """One header line; long comma lists are folded so no line passes 998 characters."""
    line = f"{name}: {value}".replace("\r\n", "\n").replace("\n", "\r\n")  # encoded words may fold
    if len(line) > 900 and ", " in value:
        line = f"{name}: " + ",\r\n ".join(value.split(", "))
    return line.encode("ascii") + CRLF


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
        self._qp_text, self._qp_html = QuotedPrintable(), QuotedPrintable()
        self._fixed = b"".join(_fold(k, v) for k, v in
                               [("From", self.from_header), ("List-Id", self.list_id), ("MIME-Version", "1.0"),
                                *self.extra_headers.items()])

    def _attachment(self, a: Attachment) -> bytes:
        name = encode_header(a.filename).replace('"', "")
        encoded = base64.encodebytes(a.data).replace(b"\n", CRLF)
        return (f"--{self.mixed_boundary}\r\nContent-Type: {a.content_type}; name=\"{name}\"\r\n"
                f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n").encode() + encoded

    def build(self, *, to: str, subject: str, message_id: str, reply_to: str, list_unsubscribe: str,
              text: str, html: str) -> bytes:
        """One member's complete message, as bytes ready for SMTP."""
        headers = self._fixed + b"".join(_fold(k, v) for k, v in [
            ("To", to), ("Subject", encode_header(subject)), ("Date", formatdate(localtime=False, usegmt=True)),
            ("Message-ID", message_id), ("Reply-To", reply_to), ("List-Unsubscribe", list_unsubscribe),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")])
        alternative = (
            f"--{self.alt_boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + _qp(text, self._qp_text) + (
            f"\r\n--{self.alt_boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + _qp(html, self._qp_html) + (
            f"\r\n--{self.alt_boundary}--\r\n").encode()
        if not self.attachments:
            return (headers + f'Content-Type: multipart/alternative; boundary="{self.alt_boundary}"\r\n\r\n'.encode()
                    + alternative)
        return (headers + f'Content-Type: multipart/mixed; boundary="{self.mixed_boundary}"\r\n\r\n'.encode()
                + f"--{self.mixed_boundary}\r\n".encode()
                + f'Content-Type: multipart/alternative; boundary="{self.alt_boundary}"\r\n\r\n'.encode()
                + alternative + self._attachment_bytes + f"\r\n--{self.mixed_boundary}--\r\n".encode())
