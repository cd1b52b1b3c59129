"""Trimming an HTML reply, and choosing what of a message is trimmed (mailer.inbound.trim).

`trim_html` renders HTML to the same lines as a text reply, using what the clients' markup says
for certain (Gmail's gmail_quote/gmail_attr, Outlook's divRplyFwdMsg/appendonsend, Apple Mail's
and Thunderbird's blockquote type=cite and moz-cite-prefix, Yahoo's yahoo_quoted, signature
blocks) as hints that overrule the guesses of trim_kinds, then applies trim's rules. HTML beyond
its bounds (mailer.inbound.htmlbound) is trimmed as its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from mailer.inbound.trim import Trimmed, _trim_lines, trim_text
from mailer.inbound.trim_kinds import Kind

__all__ = ["trim_html", "trim_message"]


# --- rendering --------------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
})
_VOID_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
})
_SKIPPED_TAGS = frozenset({"head", "style", "script", "title", "template", "noscript"})

# What the clients' markup says (class and id names; Outlook on the web prefixes quoted ones "x_").
_QUOTE_CLASSES = frozenset({"yahoo_quoted", "protonmail_quote"})  # quote levels besides <blockquote>
_ATTRIBUTION_CLASSES = frozenset({"gmail_attr", "moz-cite-prefix"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature", "protonmail_signature_block"})
_SIGNATURE_IDS = frozenset({"signature", "ms-outlook-mobile-signature"})
# Outlook's reply header (and what precedes it): an earlier message starts here.
_EARLIER_MESSAGE_IDS = frozenset({
    "divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container",
    "olk_src_body_section", "zwchr",
})
_EARLIER_MESSAGE_CLASSES = frozenset({"outlookmessageheader"})
# Outlook for Windows draws its reply header in a div with a thin rule on top, in one of these colours.
_EARLIER_MESSAGE_STYLE = re.compile(r"border-top:solid#(?:e1e1e1|b5c4df)")


@dataclass
class _Element:
    tag: str
    quote: bool = False  # a quote level: its lines are rendered "> ..."
    hint: Kind | None = None  # what every line inside it is
    skip: bool = False  # not rendered (head, style, display:none)
    pre: bool = False
    paragraph: bool = False  # a <p> with margins: a blank line before and after


def _names(value: str | None) -> set[str]:
    """Class or id names, lower-cased, without Outlook on the web's "x_" prefix."""
    return {n.lower().removeprefix("x_") for n in (value or "").split()}


class _HtmlLines(HTMLParser):
    """Renders HTML to text lines, each with the kind the markup says it has (if it says)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.hints: dict[int, Kind] = {}
        self._open: list[_Element] = []
        # What the open elements add up to, kept as they open and close: asking the whole stack
        # on every piece of text was quadratic in unclosed elements ("<b@example.org>" x 4,000).
        self._quotes = self._skips = self._pres = 0
        self._hints: list[Kind] = []
        self._tags: dict[str, int] = {}
        self._words: list[str] = []
        self._words_have_text = False  # some of self._words is not white space
        self._line_hint: Kind | None = None  # the hint in force where the current line began
        self._line_depth = 0
        self._pending: Kind | None = None  # a hint for the next line (an empty marker element)
        self._ol_counters: list[int] = []

    # state of the open elements
    def _depth(self) -> int:
        return self._quotes

    def _hint(self) -> Kind | None:
        return self._hints[-1] if self._hints else None

    def _skipping(self) -> bool:
        return self._skips > 0

    def _in_pre(self) -> bool:
        return self._pres > 0

    def _push(self, element: _Element) -> None:
        self._open.append(element)
        self._quotes += element.quote
        self._skips += element.skip
        self._pres += element.pre
        if element.hint:
            self._hints.append(element.hint)
        self._tags[element.tag] = self._tags.get(element.tag, 0) + 1

    def _pop(self) -> _Element:
        element = self._open.pop()
        self._quotes -= element.quote
        self._skips -= element.skip
        self._pres -= element.pre
        if element.hint:
            self._hints.pop()
        self._tags[element.tag] -= 1
        return element

    # output
    def _emit(self, text: str, depth: int, hint: Kind | None) -> None:
        prefix = ">" * depth
        line = f"{prefix} {text}" if prefix and text else (prefix or text)
        if not text and self.lines and self.lines[-1] == line:
            return  # one blank line is enough
        if self._pending and text:  # the first line after an empty marker element
            hint, self._pending = hint or self._pending, None
        if hint is not None:
            self.hints[len(self.lines)] = hint
        self.lines.append(line)

    def _break(self) -> None:
        """End the current line, if anything is on it."""
        text = "".join(self._words).strip()
        self._words, self._words_have_text = [], False
        if text:
            self._emit(text, self._line_depth, self._line_hint)

    def _blank(self) -> None:
        self._break()
        if self.lines and self.lines[-1].strip(">"):
            self._emit("", self._depth(), None)

    def _add(self, text: str) -> None:
        if not self._words_have_text:  # (a flag: joining the words on every add was quadratic)
            self._line_hint, self._line_depth = self._hint(), self._depth()
        self._words.append(text)
        self._words_have_text = self._words_have_text or bool(text.strip())

    # parser callbacks
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes, ids = _names(attrs.get("class")), _names(attrs.get("id"))
        style = (attrs.get("style") or "").replace(" ", "").lower()
        if tag == "br":
            if self._words_have_text:
                self._break()
            else:
                self._words = []
                self._emit("", self._depth(), None)
            return
        earlier = bool(ids & _EARLIER_MESSAGE_IDS or classes & _EARLIER_MESSAGE_CLASSES
                       or _EARLIER_MESSAGE_STYLE.search(style))
        if earlier:
            self._break()
            self._pending = Kind.BANNER
        if tag == "hr":
            self._break()
            self._emit("_" * 32, self._depth(), self._hint())
            return
        if tag in _VOID_TAGS:
            return
        element = _Element(tag)
        element.skip = tag in _SKIPPED_TAGS or "display:none" in style
        element.quote = tag == "blockquote" or bool(classes & _QUOTE_CLASSES)
        element.pre = tag == "pre"
        element.paragraph = tag == "p" and "msonormal" not in classes  # Outlook's have no margins
        if classes & _ATTRIBUTION_CLASSES:
            element.hint = Kind.ATTRIBUTION
        elif classes & _SIGNATURE_CLASSES or ids & _SIGNATURE_IDS:
            element.hint = Kind.SIGNOFF
        elif earlier:
            element.hint = Kind.BANNER
        if tag in _BLOCK_TAGS or element.quote:
            self._break()
        if element.paragraph:
            self._blank()
        self._push(element)
        if tag == "ol":
            self._ol_counters.append(0)
        elif tag == "li":
            if self._ol_counters and self._tags.get("ol"):
                self._ol_counters[-1] += 1
                self._add(f"{self._ol_counters[-1]}. ")
            else:
                self._add("- ")
        elif tag in ("td", "th"):
            self._add(" ")

    def handle_endtag(self, tag):
        if not self._tags.get(tag):
            return  # a stray end tag
        closing = []  # the elements this end tag closes (each element is closed once: linear)
        for element in reversed(self._open):
            closing.append(element)
            if element.tag == tag:
                break
        if tag in _BLOCK_TAGS or any(e.quote for e in closing if e.tag == tag):
            self._break()
        while self._open:
            element = self._pop()
            if element.tag == "ol" and self._ol_counters:
                self._ol_counters.pop()
            if element.tag == tag:
                break
        if element.paragraph:
            self._blank()

    def handle_data(self, data):
        if self._skipping():
            return
        if self._in_pre():
            parts = data.split("\n")
            for k, part in enumerate(parts):
                if k:
                    self._break()
                self._add(part)
            return
        text = re.sub(r"\s+", " ", data)
        if text.strip() or self._words:
            self._add(text)

    def close(self):
        super().close()
        self._break()


def trim_html(html: str) -> Trimmed:
    """Split an HTML reply into the member's own words and everything else, as plain text."""
    if not html or not html.strip():
        return Trimmed(visible="", quoted="")
    from mailer.inbound.htmlbound import bound_html, text_of

    html, _, limited = bound_html(html)  # linear; html.parser can stall on hostile markup
    if limited:  # too big or busy to render: its text, trimmed as text
        trimmed = trim_text(text_of(html))
        return Trimmed(trimmed.visible, trimmed.quoted, limited=True)
    parser = _HtmlLines()
    parser.feed(html)
    parser.close()
    return _trim_lines(parser.lines, parser.hints)


def trim_message(parsed) -> Trimmed:
    """A parsed message trimmed as Mailer shows it: its HTML when it has no text part and the HTML
    is within its bounds, else its text. The one rule processing, `inbound parse` and `evaluate` share."""
    if parsed.html_only and parsed.html and not parsed.html_limited:
        return trim_html(parsed.html)
    return trim_text(parsed.text or "")
