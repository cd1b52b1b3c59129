"""Trim a member's reply down to their own words.

Members answer bulletins and notices from every mail client there is. Most clients append the
earlier message under the reply ("top-posting"), some put the reply under it ("bottom-posting"),
and careful writers answer point by point between quoted lines ("inline" or interleaved). On top
of that come signatures, "Sent from my iPhone" lines and forwarded-message headers. Officers must
see what each member actually wrote, so this module splits a reply into

    Trimmed.visible   the member's own words (with the quoted lines they answer inline, if any)
    Trimmed.quoted    everything else, in order, so that nothing is ever lost

It is a readable rule set, not a model:

1.  Every line is given a kind (`Kind`, in mailer.inbound.trim_kinds): blank, text, quote ("> ..."), attribution ("On <date>,
    <someone> wrote:" in a dozen languages, also when a client wrapped it over several lines),
    banner ("-----Original Message-----", "Begin forwarded message:"), header block ("From: /
    Sent: / To: / Subject:"), signature separator ("-- "), horizontal rule ("_____"), or sign-off
    ("Sent from my iPhone", "Envoyé de mon iPad", "Get Outlook for Android"...).
2.  Then a few rules, each a small function below, decide which lines stay visible:
    a.  what follows the "-- " signature separator is a signature, when it is at most
        SIG_DASHES_MAX_LINES lines before the earlier message or the end (longer: not certain, kept);
    b.  sign-off lines ("Sent from" + words that all name a device or mail app, from a closed
        vocabulary) are dropped when they end the member's writing;
    c.  a rule line after the member's text with only a few lines under it, or a block of contact
        details (short lines, no sentences) of up to CONTACT_BLOCK_MAX_LINES, starts a signature;
    d.  an earlier message starts at an attribution, banner or header block (or at a quote block
        that begins with one). Under the member's text (top-posting) everything from there on
        goes, unless the member goes on writing under the quote (text followed by more quotes,
        or more than SIGNATURE_MAX_LINES lines): then it is an inline reply and only the
        attribution goes. With nothing of the member's above it (bottom-posting), the
        attribution and the quote under it go, unless the member answers between quotes;
    e.  a quote left at the very end, under the member's text, is the earlier message too.
    A quote without an attribution, above or between the member's lines, is kept: it is what the
    member chose to answer. A reply that is only such a quote is shown as it is.

`trim_html` (mailer.inbound.trim_html) renders HTML to the same lines, using what the clients'
markup says for certain (Gmail's gmail_quote/gmail_attr, Outlook's divRplyFwdMsg/appendonsend,
Apple Mail's and Thunderbird's blockquote type=cite and moz-cite-prefix, Yahoo's yahoo_quoted,
signature blocks) as hints that overrule the guesses of step 1, and then applies the same rules.
Step 1 is mailer.inbound.trim_kinds; this module is step 2 and the text reply's way in.

Known limits, all of them guesses that keep the words in `quoted` when wrong: a member's own line
that reads like an attribution ("On 3 May 2024 the council wrote:") followed by unquoted text is
taken for the start of an earlier message; a few lines under a rule ("____") are taken for a
signature; and a few lines under a quoted message in a top-posted reply are taken for the quoted
sender's signature.

Over 400 lines on purpose (just): the rules a. to e. above are read as one rule set, each a
small function beside the others whose order it depends on.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from mailer.inbound.trim_kinds import HEAD_KINDS, SETEXT_UNDERLINE, Kind, classify_lines, dequote, find_heads

__all__ = ["Trimmed", "trim_text", "Kind"]


@dataclass
class Trimmed:
    visible: str  # the member's own words
    quoted: str  # everything removed from the reply: quotes, headers, signatures
    limited: bool = False  # longer than TRIM_MAX_LINES / TRIM_MAX_CHARS: only the start was trimmed


# A block of text of at most this many lines, alone at the end of a reply under a quote or a rule,
# is a signature (the member's, or the quoted sender's); longer, it is the member writing.
SIGNATURE_MAX_LINES = 6
# Under a rule line, a longer block is a signature only when it reads as contact details: at most
# this many lines, each at most SIGNATURE_LINE_MAX_CHARS long, none of them a sentence.
CONTACT_BLOCK_MAX_LINES = 12
SIGNATURE_LINE_MAX_CHARS = 72
# Under "-- " (RFC 3676's signature separator) a signature is certain up to this many lines.
SIG_DASHES_MAX_LINES = 15

# Trimming reads at most this many lines (and characters) of a reply: the work per message is
# bounded. Beyond that, if the part read showed where the earlier message (or the signature)
# begins, the rest belongs to it and goes with it; otherwise the rest is shown as it is.
TRIM_MAX_LINES = 5000
TRIM_MAX_CHARS = 256 * 1024


# --- the rules ---------------------------------------------------------------------------------


class _Reply:
    """The lines of a reply, their kinds, and which of them are still visible."""

    def __init__(self, lines: list[str], kinds: list[Kind], limited: bool = False, hinted=frozenset()):
        self.lines, self.kinds = lines, kinds
        self.hinted = hinted  # lines whose kind the HTML markup gave
        self.keep = [True] * len(lines)
        self.limited = limited  # more lines follow that were not read: "the end" is not known
        self.cut = False  # everything from some line to the end was dropped (earlier message, signature)

    def visible(self, start: int = 0, stop: int | None = None):
        """Indices of visible lines in [start, stop)."""
        stop = len(self.lines) if stop is None else stop
        return (i for i in range(start, stop) if self.keep[i])

    def next_visible(self, after: int, skip=frozenset({Kind.BLANK})) -> int | None:
        return next((i for i in self.visible(after + 1) if self.kinds[i] not in skip), None)

    def own_text(self, start: int = 0, stop: int | None = None) -> list[int]:
        return [i for i in self.visible(start, stop) if self.kinds[i] is Kind.TEXT]

    def has_own_text(self, start: int = 0, stop: int | None = None) -> bool:
        return any(self.kinds[i] is Kind.TEXT for i in self.visible(start, stop))

    def drop(self, indices) -> None:
        for i in indices:
            self.keep[i] = False

    def cut_from(self, start: int) -> None:
        """Drop everything from `start` on, with the blank lines and rules just above it."""
        above = [i for i in self.visible(0, start)]
        while above and self.kinds[above[-1]] in (Kind.BLANK, Kind.RULE):
            start = above.pop()
        self.drop(range(start, len(self.lines)))
        self.cut = True


class _Below:
    """For each visible line, the block of lines under it up to the next earlier message (an
    attribution, banner, header block or quote) or the end: where that block stops, how many
    non-blank lines it has, and how many of them are prose rather than contact details.

    Worked out in one pass from the end, so that judging every rule line stays linear."""

    def __init__(self, reply: "_Reply"):
        self.stop: dict[int, int] = {}  # index of the head or quote ending the block; len(lines) at the end
        self.lines: dict[int, int] = {}
        self.prose: dict[int, int] = {}
        stop, lines, prose = len(reply.lines), 0, 0
        for i in reversed(list(reply.visible())):
            self.stop[i], self.lines[i], self.prose[i] = stop, lines, prose
            kind = reply.kinds[i]
            if kind in HEAD_KINDS or kind is Kind.QUOTE:
                stop, lines, prose = i, 0, 0
            elif kind is not Kind.BLANK:
                lines += 1
                prose += _is_prose(reply.lines[i])
        self.end = len(reply.lines)


def _is_prose(line: str) -> bool:
    """A line of sentences, not a signature's name, role, phone, address or link."""
    text = line.strip()
    return len(text) > SIGNATURE_LINE_MAX_CHARS or (
        text.endswith((".", "?", "!")) and len(text.split()) > 4)


def _is_signature_block(lines: int, prose: int) -> bool:
    """A few lines of anything, or a longer block of contact details (short lines, no sentences)."""
    return lines <= SIGNATURE_MAX_LINES or (lines <= CONTACT_BLOCK_MAX_LINES and not prose)


def _cut_at_signature_dashes(reply: _Reply, below: _Below) -> None:
    """ "-- " starts a signature (RFC 3676): what is under it goes (and the earlier message below
    it), when it is at most SIG_DASHES_MAX_LINES lines before the earlier message or the end.
    A longer block under "-- " is not certainly a signature: it stays."""
    dashes = next((i for i in reply.visible() if reply.kinds[i] is Kind.SIG_DASHES), None)
    if dashes is not None and below.lines[dashes] <= SIG_DASHES_MAX_LINES:
        reply.drop(range(dashes, len(reply.lines)))
        reply.cut = True


# What may follow a sign-off: the earlier message, the signature, or more sign-off lines.
_AFTER_SIGNOFF = frozenset({Kind.QUOTE, Kind.SIG_DASHES, Kind.RULE}) | HEAD_KINDS


def _drop_signoffs(reply: _Reply) -> None:
    """ "Sent from my iPhone" goes when it ends the member's writing: nothing but blank lines,
    other sign-offs, a signature, a rule or the earlier message follows it. A line like it with
    the member's own text below is their words, and stays (as text). Lines the markup marks as a
    signature go wherever they are."""
    after: dict[int, Kind | None] = {}
    following: Kind | None = None
    for i in reversed(list(reply.visible())):
        kind = reply.kinds[i]
        after[i] = following
        if kind not in (Kind.BLANK, Kind.SIGNOFF):
            following = kind
    for i, next_kind in after.items():
        if reply.kinds[i] is not Kind.SIGNOFF:
            continue
        if i in reply.hinted or next_kind is None or next_kind in _AFTER_SIGNOFF:
            reply.keep[i] = False
        else:
            reply.kinds[i] = Kind.TEXT


def _cut_at_closing_rule(reply: _Reply) -> None:
    """A rule under the member's text with only a few lines below it starts a signature.

    With more lines below, the rule is the member's own section break and stays (and when the
    reply was too long to read to its end, the lines below are not known: it stays too).
    """
    if reply.limited:
        return
    visible = list(reply.visible())
    below = _Below(reply)
    # How many visible non-blank lines follow each visible line (one pass from the end: linear).
    below_count: dict[int, int] = {}
    count = 0
    for i in reversed(visible):
        below_count[i] = count
        if reply.kinds[i] is not Kind.BLANK:
            count += 1
    seen_text = False
    for i in visible:
        if reply.kinds[i] is Kind.TEXT:
            seen_text = True
        if reply.kinds[i] is not Kind.RULE or not seen_text:
            continue
        if i > 0 and reply.kinds[i - 1] is Kind.TEXT and SETEXT_UNDERLINE.match(reply.lines[i]):
            continue  # "Agenda\n------" underlines a heading
        if below_count[i] <= SIGNATURE_MAX_LINES or (
                below.stop[i] == below.end and _is_signature_block(below.lines[i], below.prose[i])):
            reply.drop(range(i, len(reply.lines)))  # the signature, and the few lines under it
            reply.cut = True
            return
        stop = below.stop[i]
        if stop < below.end and reply.kinds[stop] in HEAD_KINDS and _is_signature_block(below.lines[i], below.prose[i]):
            reply.drop(range(i, stop))  # the signature above the earlier message: that is judged on its own
            return


def _quote_block_end(reply: _Reply, start: int) -> int:
    """The last quote line of the quote block starting at `start` (blank lines don't end it)."""
    end = start
    for i in reply.visible(start):
        if reply.kinds[i] is Kind.QUOTE:
            end = i
        elif reply.kinds[i] is not Kind.BLANK:
            break
    return end


def _quoted_head(reply: _Reply, start: int, end: int) -> list[int]:
    """The lines of an attribution, banner or header that opens the quote block [start, end]."""
    block = list(reply.visible(start, end + 1))
    inner = [dequote(reply.lines[i]) for i in block]
    heads = find_heads(inner, [False] * len(inner))
    first = next((k for k, text in enumerate(inner) if text.strip()), None)
    if first not in heads:
        return []
    head = []
    for k in range(first, len(inner)):  # the head, with any blank lines inside it
        if k in heads:
            head.append(block[k])
        elif inner[k].strip():
            break
    return head


def _next_earlier_message(reply: _Reply, after: int):
    """The next place an earlier message begins, as (start, head lines, quote body end or None).

    That is an attribution, banner or header block (with the quote block under it, if any), or a
    quote block that opens with one (e.g. "> On Mon, 1 Jun 2020, Ann wrote:").
    """
    i = after
    while (i := reply.next_visible(i)) is not None:
        kind = reply.kinds[i]
        if kind in HEAD_KINDS:
            head = [i]
            while (j := reply.next_visible(head[-1])) is not None and reply.kinds[j] in HEAD_KINDS:
                head.append(j)
            below = reply.next_visible(head[-1])
            body_end = None
            if below is not None and reply.kinds[below] is Kind.QUOTE:
                body_end = _quote_block_end(reply, below)
            return i, head, body_end
        if kind is Kind.QUOTE:
            end = _quote_block_end(reply, i)
            head = _quoted_head(reply, i, end)
            if head:
                return i, head, end
            i = end
    return None


def _writing_below(reply: _Reply, quote_end: int) -> tuple[bool, int]:
    """What the member writes below a quote, up to the next earlier message.

    Returns whether their text is followed by another quote (point-by-point answers), and how
    many lines of text they write.
    """
    text_lines = 0
    for i in reply.visible(quote_end + 1):
        kind = reply.kinds[i]
        if kind in HEAD_KINDS:
            break  # the next earlier message: it gets judged on its own
        if kind is Kind.TEXT:
            text_lines += 1
        elif kind is Kind.QUOTE and text_lines:
            return True, text_lines
    return False, text_lines


def _remove_earlier_messages(reply: _Reply) -> None:
    """Find each earlier message in turn and decide what of it goes (step d of the docstring)."""
    position = -1
    # The member's own lines above each line. Only heads and quotes are dropped until the loop
    # ends, never TEXT lines, so this is computed once (not once per earlier message: quadratic).
    text_above, count = [], 0
    for i, kind in enumerate(reply.kinds):
        text_above.append(count)
        if kind is Kind.TEXT and reply.keep[i]:
            count += 1
    while (found := _next_earlier_message(reply, position)) is not None:
        start, head, body_end = found
        end = body_end if body_end is not None else head[-1]
        in_head = set(head)
        body = [i for i in reply.visible(start, end + 1) if i not in in_head]
        answers_between, lines_below = (False, 0) if body_end is None else _writing_below(reply, body_end)
        if not text_above[start]:
            # Nothing of the member's above: a bottom-posted reply (or a bare forward): the
            # attribution and the quote under it go. Unless the member answers inside the quote
            # (their text, then more quotes): an inline reply from its first line, where both
            # stay, the attribution saying whose words the kept quotes are.
            if not answers_between:
                reply.drop(head + body)
        elif body_end is not None and (answers_between or lines_below > SIGNATURE_MAX_LINES):
            # Under the member's opening words, they answer between the quoted lines: only the
            # attribution goes. (A few lines alone under the quote are the sender's signature.)
            reply.drop(head)
        else:
            # Top-posted: everything from here on is the earlier message, or the thread before it.
            reply.cut_from(start)
            return
        position = end


def _drop_trailing_quote(reply: _Reply) -> None:
    """A quote left at the very end, under the member's text, is the earlier message."""
    own = reply.own_text()
    if not own or reply.limited:
        return  # a quote and nothing else: show it rather than nothing; or the end was not read
    trailing = [i for i in reply.visible(own[-1] + 1)]
    if all(reply.kinds[i] in (Kind.QUOTE, Kind.BLANK) for i in trailing):
        reply.drop(trailing)


def _strip_blank_ends(lines: list[str]) -> str:
    """Lines joined, without the blank lines at either end; the lines themselves are untouched."""
    start, stop = 0, len(lines)
    while start < stop and not lines[start].strip():
        start += 1
    while stop > start and not lines[stop - 1].strip():
        stop -= 1
    return "\n".join(lines[start:stop])


def _trim_lines(lines: list[str], hints: dict[int, Kind] | None = None) -> Trimmed:
    """Trim at most TRIM_MAX_LINES lines (TRIM_MAX_CHARS characters); the rest follows what they showed."""
    read, chars = 0, 0
    for line in lines:
        if read >= TRIM_MAX_LINES or chars + len(line) > TRIM_MAX_CHARS:
            break
        read, chars = read + 1, chars + len(line) + 1
    if read == len(lines):
        return _trim_read(lines, hints, limited=False)[0]
    head, tail = lines[:read], lines[read:]
    trimmed, cut = _trim_read(head, hints, limited=True)
    rest = "\n".join(tail)
    if cut:  # the earlier message or the signature began above: the rest is part of it
        quoted = f"{trimmed.quoted}\n{rest}" if trimmed.quoted else rest
        return Trimmed(visible=trimmed.visible, quoted=_strip_blank_ends(quoted.split("\n")), limited=True)
    visible = f"{trimmed.visible}\n{rest}" if trimmed.visible else rest
    return Trimmed(visible=_strip_blank_ends(visible.split("\n")), quoted=trimmed.quoted, limited=True)


def _trim_read(lines: list[str], hints: dict[int, Kind] | None, limited: bool) -> tuple[Trimmed, bool]:
    hints = hints or {}
    reply = _Reply(lines, classify_lines(lines, hints), limited, frozenset(hints))
    _cut_at_signature_dashes(reply, _Below(reply))
    _drop_signoffs(reply)
    _cut_at_closing_rule(reply)
    _remove_earlier_messages(reply)
    _drop_trailing_quote(reply)
    visible = [line for line, keep in zip(lines, reply.keep) if keep]
    quoted = [line for line, keep in zip(lines, reply.keep) if not keep]
    return Trimmed(visible=_strip_blank_ends(visible), quoted=_strip_blank_ends(quoted)), reply.cut


def _split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


_SOFT_BREAK = re.compile(r"=\r?\n")
_NOT_QP = re.compile(r"=(?![0-9A-F]{2}|\r?\n|$)", re.MULTILINE)


def _undo_quoted_printable(text: str) -> str:
    """Text still in quoted-printable ("w=\nrote:"), decoded; any other text as it is.

    The rule: the text has soft line breaks ("=" at a line end) and every "=" in it is either
    that or "=" with two upper-case hex digits (RFC 2045 6.7). Ordinary prose with an "=" in it
    ("a = b") fails the second test and is left alone."""
    if "=" not in text or not _SOFT_BREAK.search(text) or _NOT_QP.search(text):
        return text
    import quopri

    data = quopri.decodestring(text.encode("utf-8", "surrogateescape"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def trim_text(text: str) -> Trimmed:
    """Split a plain-text reply into the member's own words and everything else."""
    if not text or not text.strip():
        return Trimmed(visible="", quoted="")
    return _trim_lines(_split_lines(_undo_quoted_printable(text)))
