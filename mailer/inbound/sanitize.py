"""HTML from outside, made safe to show: the only HTML from inbound mail a browser ever sees.

Scripts, event handlers, javascript: URLs, forms, frames, SVG and CSS are removed with their
content; remote images are dropped (they track the reader); links keep only http(s) and mailto.
Pages then show it in a sandboxed iframe under a Content-Security-Policy that allows nothing to run.
The markup is bounded first (`htmlbound`, linear); markup over its bounds is shown as plain text.
"""

from __future__ import annotations

import html as html_lib
import re

import bleach

from mailer.inbound.htmlbound import bound_html, text_of

ALLOWED_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "div", "dl", "dt", "em",
                "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "q", "s", "small", "span",
                "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"}
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"],
                      "abbr": ["title"]}
ALLOWED_PROTOCOLS = {"http", "https", "mailto"}

# Elements whose content goes with them: bleach keeps the text of tags it strips. (Comments,
# script, style, head, title, template and noscript are already gone after bound_html.)
_DROPPED = ("iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "form", "select",
            "textarea", "button", "xml", "script", "style", "title", "head", "noscript", "template")
_DROP_START = re.compile(r"<(" + "|".join(_DROPPED) + r")\b[^<>]*>", re.I)


def _drop_elements(markup: str) -> str:
    """Remove the _DROPPED elements with their content, by a scan: a lazy `.*?` regex would re-read
    the rest of the message from every unclosed start tag (quadratic)."""
    out, pos = [], 0
    unclosed: set[str] = set()
    closers: dict[str, re.Pattern] = {}
    while (m := _DROP_START.search(markup, pos)) is not None:
        name = m.group(1).lower()
        out.append(markup[pos:m.start()])
        close = None
        if name not in unclosed:
            close = closers.setdefault(name, re.compile(rf"</{name}\s*>", re.I)).search(markup, m.end())
            if close is None:
                unclosed.add(name)
        pos = close.end() if close is not None else m.end()  # unclosed: the start tag alone goes
    out.append(markup[pos:])
    return "".join(out)


def sanitize_inbound_html(html: str) -> str:
    """Inbound HTML reduced to safe, inert markup."""
    bounded, _, limited = bound_html(html or "")
    if limited:
        return f"<pre>{html_lib.escape(text_of(bounded))}</pre>"
    return bleach.clean(_drop_elements(bounded), tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                        protocols=ALLOWED_PROTOCOLS, strip=True, strip_comments=True)
