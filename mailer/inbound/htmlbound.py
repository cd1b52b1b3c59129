"""Inbound HTML made safe to walk: one linear pass before any parser sees it.

HTML from outside goes through html.parser (trimming), html2text (the text of HTML-only mail) and
bleach's html5lib (the safe copy officers see). Each of them can take time that grows much faster
than the input on hostile markup: an unclosed comment or tag re-scanned to the end at every
step, or elements nested a million deep, where every new tag looks through all the open ones.
`bound_html` rewrites the markup so that none of that can happen, keeping every word of text:

- comments, <!DOCTYPE>/<![if ...]>/<?xml?> declarations and the content of script, style, head,
  title, template and noscript (never shown) are removed;
- a "<" that does not begin a complete tag is text, written "&lt;";
- a tag whose attribute quotes do not pair up, or with more than MAX_ATTRIBUTES attributes,
  keeps its name and loses its attributes;
- elements nested deeper than MAX_DEPTH become line breaks;
- outside <pre>, a run of white space in the text becomes one line break or space (HTML shows
  it as one space anyway, and html2text's own patterns are quadratic in long runs of it).

The result is well-formed enough that every later parser works in linear time. Markup with more
than MAX_TAGS tags (or stray "<"), or longer than MAX_CHARS, is "limited": the full parsers are
still too slow for it (bleach's html5lib above all), so callers read its text with
`text_of`, a linear tag stripper, show no HTML, and flag the message. Pure: no Flask.
"""

from __future__ import annotations

import re

MAX_DEPTH = 100
MAX_TAGS = 10_000
MAX_CHARS = 1024 * 1024
# html5lib checks each attribute against the tag's earlier ones (quadratic in their number): a
# tag with more than this many attributes, or this much attribute text, keeps only its name.
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_CHARS = 16 * 1024

_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:_.-]*)([^<>]*)>")
_DECLARATION = re.compile(r"<[!?][^<>]*>")
_INVISIBLE = frozenset({"script", "style", "head", "title", "template", "noscript"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr", "basefont", "bgsound", "frame", "keygen"})
# Elements whose end tag is commonly left out: they do not count as nesting.
_LOOSE = frozenset({"p", "li", "dt", "dd", "td", "th", "tr", "thead", "tbody", "tfoot", "option", "optgroup",
                    "colgroup", "caption", "rb", "rt", "rp", "font", "span", "b", "i", "u", "a", "o:p"})
_ANY_TAG = re.compile(r"<[^<>]*>")
_WHITE_RUN = re.compile(r"[ \t\r\n\f]{2,}")


def _one_space(m: re.Match) -> str:
    return "\n" if "\n" in m.group(0) else " "


def bound_html(source: str) -> tuple[str, list[str], bool]:
    """(markup every parser reads in linear time with the same text, notes on what was changed,
    whether it is over MAX_TAGS / MAX_CHARS: then read it with `text_of`, not a full parser)."""
    src = source or ""
    out: list[str] = []
    notes: list[str] = []
    pos, depth, tags, deep = 0, 0, 0, 0
    closers: dict[str, re.Pattern] = {}
    unclosed: set[str] = set()  # invisible elements with no end tag after some point: none later either
    comment_unclosed = False  # no "-->" after some point: none after any later "<!--" either
    limited = False
    pre = 0  # open <pre> elements: their white space is kept as it is
    n = len(src)
    while pos < n:
        i = src.find("<", pos)
        if i < 0:
            out.append(src[pos:] if pre else _WHITE_RUN.sub(_one_space, src[pos:]))
            break
        if i > pos:
            out.append(src[pos:i] if pre else _WHITE_RUN.sub(_one_space, src[pos:i]))
        pos = i
        if tags >= MAX_TAGS:
            # Past the cap: the rest is kept as it is, for the linear tag stripper.
            notes.append(f"the HTML has more than {MAX_TAGS:,} tags: read as text without its markup")
            out.append(src[pos:])
            limited = True
            break
        if src.startswith("<!--", i):
            end = -1 if comment_unclosed else src.find("-->", i + 4)
            if end < 0:
                comment_unclosed = True
                out.append("&lt;")  # an unclosed comment: what follows stays readable text
                tags += 1
                pos = i + 1
                continue
            pos = end + 3
            continue
        if src.startswith(("<!", "<?"), i):
            m = _DECLARATION.match(src, i)
            if m:
                pos = m.end()
            else:
                out.append("&lt;")
                tags += 1
                pos = i + 1
            continue
        m = _TAG.match(src, i)
        if m is None:
            out.append("&lt;")
            tags += 1  # a stray "<" costs the later parsers as much as a tag
            pos = i + 1
            continue
        pos = m.end()
        closing, name, attrs = m.group(1), m.group(2).lower(), m.group(3)
        tags += 1
        if not closing and name in _INVISIBLE:
            if name not in unclosed:
                closer = closers.setdefault(name, re.compile(rf"</{name}\s*>", re.I))
                c = closer.search(src, pos)
                if c is not None:
                    pos = c.end()
                    continue
                unclosed.add(name)
            continue  # no end tag: drop the start tag alone, keep what follows
        if closing and name in _INVISIBLE:
            continue
        if name in ("pre", "textarea", "listing", "plaintext", "xmp"):
            pre = max(0, pre + (-1 if closing else 1))
        counted = name not in _VOID and name not in _LOOSE and not attrs.rstrip().endswith("/")
        if counted and not closing:
            depth += 1
        too_deep = counted and depth > MAX_DEPTH
        if counted and closing:
            depth = max(0, depth - 1)
        if too_deep:
            deep += 1
            out.append("<br>")
            continue
        if attrs and (attrs.count('"') % 2 or attrs.count("'") % 2 or len(attrs) > MAX_ATTRIBUTE_CHARS
                      or len(attrs.split(None, MAX_ATTRIBUTES)) > MAX_ATTRIBUTES):
            out.append(f"<{closing}{name}>")
        else:
            out.append(m.group(0))
    if deep:
        notes.append(f"HTML elements nested deeper than {MAX_DEPTH}: {deep:,} tags were read as line breaks")
    bounded = "".join(out)
    if len(bounded) > MAX_CHARS and not limited:
        notes.append(f"the HTML is over {MAX_CHARS // 1024:,} KB: read as text without its markup")
        limited = True
    return bounded, notes, limited


_BREAK = re.compile(r"<(?:br|hr|/?p|/?div|/?tr|/?h[1-6]|/?li|/?blockquote|/?table|/?ul|/?ol|/?pre)\b[^<>]*>", re.I)
_SPACES = re.compile(r"[^\S\n]+")
_LINE_ENDS = re.compile(r" ?\n ?")
_BLANK_RUNS = re.compile(r"\n{3,}")


def text_of(source: str) -> str:
    """The text of markup, by a linear tag stripper: block tags are line breaks, entities decoded."""
    import html

    text = _without_comments(source or "")
    text = _BREAK.sub("\n", text)
    text = _ANY_TAG.sub("", text)
    text = html.unescape(text)
    text = _SPACES.sub(" ", text)
    text = _LINE_ENDS.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()  # at most one blank line in a row


def _without_comments(text: str) -> str:
    """Closed <!-- --> comments removed, by a scan (a regex would re-read an unclosed one from every start)."""
    out, pos = [], 0
    while True:
        i = text.find("<!--", pos)
        end = text.find("-->", i + 4) if i >= 0 else -1
        if i < 0 or end < 0:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos:i])
        pos = end + 3
