"""From what an officer writes to what a member receives.

A campaign is compiled once: its Markdown (or MJML) body is sanitised with bleach, placed in
`templates/email/layout.mjml`, and turned into HTML by MJML. Jinja expressions, the officer's and
the layout's per-member ones, are protected by placeholder tokens through Markdown, bleach and
MJML, then restored, giving one Jinja template for the HTML part and one for the plain-text part.
Each member's message is then a fast render of those two templates.
"""

from __future__ import annotations

import html
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.entities import name2codepoint

import bleach
import html2text
from flask import current_app
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markdown_it import MarkdownIt
from markupsafe import Markup
from mjml import mjml2html

from mailer import TEMPLATES_DIR
from mailer.compose.personal import MemberView
from mailer.errors import Refusal
from mailer.models import BodyFormat, Campaign, Stream

# What an officer's HTML may contain. No scripts, styles, forms or event handlers, ever.
ALLOWED_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "img",
                "li", "ol", "p", "pre", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "th",
                "thead", "tr", "u", "ul"}
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "title", "width", "height"],
                      "td": ["colspan", "rowspan", "align"], "th": ["colspan", "rowspan", "align"], "abbr": ["title"]}
ALLOWED_PROTOCOLS = {"http", "https", "mailto", "tel"}

# MJML elements an officer may use in advanced mode, with the attributes each may carry.
MJ_ATTRS = {"padding", "padding-top", "padding-bottom", "padding-left", "padding-right", "background-color",
            "color", "font-size", "font-weight", "align", "line-height", "width", "height", "border-radius",
            "font-family", "text-align", "css-class", "border", "border-color", "border-width"}
MJ_TAGS = {
    "mj-section": MJ_ATTRS | {"full-width", "background-url"},
    "mj-column": MJ_ATTRS | {"vertical-align"},
    "mj-group": MJ_ATTRS,
    "mj-wrapper": MJ_ATTRS | {"full-width"},
    "mj-text": MJ_ATTRS,
    "mj-button": MJ_ATTRS | {"href", "title", "inner-padding"},
    "mj-image": MJ_ATTRS | {"src", "alt", "href", "title"},
    "mj-divider": MJ_ATTRS,
    "mj-spacer": MJ_ATTRS,
    "mj-table": MJ_ATTRS | {"cellpadding", "cellspacing"},
}
HTML_CONTENT_TAGS = {"mj-text", "mj-button", "mj-table"}

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_TOKEN = re.compile(r"MJX(\d{4,6})Z")

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable("table")
# For body data (members' and correspondents' words): any HTML in it is shown as text, line breaks kept.
_data_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False}).enable("table")


class TemplateError(Refusal):
    """A problem in what the officer wrote: shown in the composer with its line."""

    def __init__(self, message: str, line: int | None = None, where: str = "body"):
        super().__init__(message, field=where)
        self.message, self.line, self.where = message, line, where

    def __str__(self) -> str:
        place = f"{self.where}, line {self.line}" if self.line else self.where
        return f"{place}: {self.message}"


class _Sandbox(SandboxedEnvironment):
    """The sandbox, handing out a member's fields (plain strings) without vetting each lookup:
    a send looks them up for every member."""

    def getattr(self, obj, attribute):
        if type(obj) is MemberView and attribute in MemberView.FIELDS:
            return obj.__dict__[attribute]
        return super().getattr(obj, attribute)


def environment(autoescape: bool) -> SandboxedEnvironment:
    """The Jinja environment for email: sandboxed (officers write templates), and strict, so a
    misspelt variable is an error at compose time rather than a blank in 2,000 inboxes."""
    env = _Sandbox(undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True)
    return env


class _Tokens:
    """Swaps Jinja expressions for inert placeholder words and back."""

    def __init__(self):
        self.originals: list[str] = []

    def add(self, expression: str) -> str:
        self.originals.append(expression)
        return f"MJX{len(self.originals) - 1:04d}Z"

    def protect(self, text: str) -> str:
        return _JINJA.sub(lambda m: self.add(m.group(0)), text)

    def restore(self, text: str) -> str:
        return _TOKEN.sub(lambda m: self.originals[int(m.group(1))], text)


class _Later:
    """Stands for a per-member value in the layout: renders as a token now, the expression later."""

    def __init__(self, tokens: _Tokens, expression: str):
        self._tokens, self._expression = tokens, expression

    def __getattr__(self, name: str) -> _Later:
        return _Later(self._tokens, f"{self._expression}.{name}")

    def __html__(self) -> str:
        return self._tokens.add("{{ " + self._expression + " }}")

    __str__ = __html__


# Elements whose content must go with them (bleach keeps the text of the tags it strips).
_DROP_WITH_CONTENT = re.compile(r"<(script|style|iframe|object|embed|noscript|template|svg|math|title)\b[^>]*>.*?"
                                r"</\1\s*>", re.S | re.I)


def sanitize_html(fragment: str) -> str:
    """Officer-written HTML, cleaned to the tags and protocols email may safely carry."""
    return _cleaner().clean(_DROP_WITH_CONTENT.sub("", fragment))


_cleaners = threading.local()


def _cleaner() -> bleach.Cleaner:
    """What bleach.clean uses, made once per thread (a Cleaner is not thread-safe): making one,
    with its HTML parser, costs more than cleaning a bulletin. A worker makes its own before it
    forks, so each batch job inherits it."""
    cleaner = getattr(_cleaners, "cleaner", None)
    if cleaner is None:
        cleaner = _cleaners.cleaner = bleach.Cleaner(tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                                                     protocols=ALLOWED_PROTOCOLS, strip=True, strip_comments=True)
    return cleaner


def _check_jinja(source: str, where: str) -> None:
    try:
        environment(False).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(exc.message or "template syntax error", exc.lineno, where) from None


def markdown_to_html(body: str) -> str:
    """Markdown (with any HTML in it sanitised) as an HTML fragment."""
    return sanitize_html(_markdown.render(body))


def _mjml_body(body: str) -> str:
    """Check and clean an advanced (MJML) body: only known mj- elements and attributes, and the
    HTML inside text blocks sanitised. Errors carry the line they are on."""
    parser = ET.XMLParser()
    parser.entity.update({name: chr(code) for name, code in name2codepoint.items()})
    try:
        root = ET.fromstring(f"<mj-body>{body}</mj-body>", parser=parser)
    except ET.ParseError as exc:
        line, _col = exc.position
        raise TemplateError(f"invalid MJML: {exc.msg if hasattr(exc, 'msg') else exc}".split(": line")[0], line) from None

    def clean_element(el: ET.Element) -> str:
        if el.tag not in MJ_TAGS:
            raise TemplateError(f"<{el.tag}> is not allowed here (use mj-section, mj-column, mj-text, mj-button, "
                                f"mj-image, mj-divider, mj-spacer, mj-table)", _line_of(body, el.tag))
        attrs = []
        for name, value in el.attrib.items():
            if name not in MJ_TAGS[el.tag]:
                continue
            if name in {"href", "src", "background-url"} and not _safe_url(value):
                continue
            attrs.append(f' {name}="{html.escape(value, quote=True)}"')
        if el.tag in HTML_CONTENT_TAGS:
            inner = (html.escape(el.text or "", quote=False) +
                     "".join(ET.tostring(child, encoding="unicode", method="html") for child in el))
            content = sanitize_html(inner)
        else:
            content = "".join(clean_element(child) for child in el)
        return f"<{el.tag}{''.join(attrs)}>{content}</{el.tag}>"

    return "".join(clean_element(child) for child in root)


def _line_of(text: str, tag: str) -> int | None:
    pos = text.find(f"<{tag}")
    return text.count("\n", 0, pos) + 1 if pos >= 0 else None


def _safe_url(value: str) -> bool:
    value = value.strip().lower()
    return value.startswith(("http://", "https://", "mailto:", "mjx")) or _TOKEN.fullmatch(value.upper()) is not None


def _layout_source(name: str) -> str:
    return (TEMPLATES_DIR / "email" / name).read_text(encoding="utf-8")


def layout_context(campaign: Campaign, tokens: _Tokens) -> dict:
    """What the layout sees at compile time: organisation settings now, per-member values later."""
    cfg = current_app.config
    reason = {Stream.BULLETINS: cfg["BULLETIN_REASON"], Stream.NOTICES: cfg["NOTICE_REASON"]}[campaign.stream]
    return {
        "org_name": cfg["ORG_NAME"], "org_colour": cfg["ORG_COLOUR"], "imprint": cfg["IMPRINT"],
        "reason": reason, "subject": campaign.subject, "preheader": campaign.preheader,
        "stream": campaign.stream.value,
        "member": _Later(tokens, "member"), "unsubscribe_url": _Later(tokens, "unsubscribe_url"),
        "preferences_url": _Later(tokens, "preferences_url"), "web_url": _Later(tokens, "web_url"),
    }


@dataclass
class CompiledCampaign:
    """A campaign ready to personalise: Jinja templates for the subject, HTML and text parts, and
    the body data those templates show as values (never compiled)."""

    subject_source: str
    html_source: str
    text_source: str
    html_data: dict = field(default_factory=dict)
    text_data: dict = field(default_factory=dict)

    def __post_init__(self):
        self._subject = environment(False).from_string(self.subject_source)
        self._html = environment(True).from_string(self.html_source)
        self._text = environment(False).from_string(self.text_source)
        self.subject_names = meta.find_undeclared_variables(self._subject.environment.parse(self.subject_source))
        # Each part's variables in the order Jinja would look them up: the template's globals,
        # then the context, then the body data (which wins, as `render` merges them).
        self._html_globals, self._text_globals = dict(self._html.globals), dict(self._text.globals)

    def render_subject(self, context: dict) -> str:
        try:
            return " ".join(self._subject.render(context).split())
        except (UndefinedError, SecurityError) as exc:
            raise TemplateError(str(exc)) from None

    def render_parts(self, context: dict) -> tuple[list[str], list[str]]:
        """(html, text) as the pieces Jinja renders them in, as `render_pieces` gives them: each
        part's context made in one step rather than Jinja's three."""
        html, text = self._html, self._text
        try:
            return (list(html.root_render_func(html.new_context({**self._html_globals, **context, **self.html_data},
                                                                shared=True))),
                    list(text.root_render_func(text.new_context({**self._text_globals, **context, **self.text_data},
                                                                shared=True))))
        except (UndefinedError, SecurityError) as exc:
            raise TemplateError(str(exc)) from None

    def render_pieces(self, context: dict) -> tuple[str, list[str], list[str]]:
        """(subject, html, text) with the HTML and text as the pieces Jinja renders in turn: the
        campaign's own markup, the same objects for every member, and each member's values.
        Joined, they are exactly what `render` returns."""
        try:
            return (" ".join(self._subject.render(context).split()), list(self._html.generate(context | self.html_data)),
                    list(self._text.generate(context | self.text_data)))
        except (UndefinedError, SecurityError) as exc:
            raise TemplateError(str(exc)) from None

    def render(self, context: dict) -> tuple[str, str, str]:
        """(subject, html, text) for one member's context."""
        try:
            subject = " ".join(self._subject.render(context).split())
        except (UndefinedError, SecurityError) as exc:
            raise TemplateError(_readable(exc), where="subject") from None
        try:
            return subject, self._html.render(context | self.html_data), self._text.render(context | self.text_data)
        except (UndefinedError, SecurityError) as exc:
            raise TemplateError(_readable(exc)) from None


def _readable(exc: Exception) -> str:
    """Jinja's message in the officer's words: "'member' has no attribute 'frist_name'"."""
    return str(exc).replace("'mailer.compose.personal.MemberView object'", "'member'")


def render_subject(campaign: Campaign, context: dict) -> str:
    """Only the subject line, for lists (the archive) where compiling the whole body is waste."""
    try:
        return " ".join(environment(False).from_string(campaign.subject or "").render(context).split())
    except (TemplateSyntaxError, UndefinedError, SecurityError):
        return campaign.name


def _to_html(mjml_source: str) -> str:
    try:
        return mjml2html(mjml_source)
    except Exception as exc:  # mjml reports structure errors without lines; they are the body's
        raise TemplateError(f"invalid MJML: {exc}") from None


def _to_text(html_source: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # never wrap: a wrapped line could split a placeholder
    return converter.handle(html_source).strip()


def compile_campaign(campaign: Campaign) -> CompiledCampaign:
    """Compile a campaign once. Raises TemplateError, with its line, for anything that will not render."""
    _check_jinja(campaign.subject or "", "subject")
    _check_jinja(campaign.body or "", "body")
    tokens = _Tokens()
    body = tokens.protect(campaign.body or "")
    data = {name: str(value) for name, value in (campaign.body_data or {}).items()}
    if campaign.body_format is BodyFormat.MJML:
        body_mjml = _mjml_body(body)
        body_text = _to_text(_to_html(f"<mjml><mj-body>{body_mjml}</mj-body></mjml>"))
    else:
        body_html = _blocks_for_data(markdown_to_html(body), tokens, data)
        body_mjml = f'<mj-section><mj-column><mj-text>{body_html}</mj-text></mj-column></mj-section>'
        body_text = body.strip()  # Markdown is already good plain text
    context = layout_context(campaign, tokens)
    html_out = _to_html(environment(True).from_string(_layout_source("layout.mjml"))
                        .render(context | {"body": Markup(body_mjml)}))
    text_out = environment(False).from_string(_layout_source("layout.txt")).render(context | {"body": body_text})
    try:
        return CompiledCampaign(campaign.subject or "", tokens.restore(html_out), tokens.restore(text_out),
                                {name: Markup(data_to_html(value)) for name, value in data.items()}, data)
    except TemplateSyntaxError as exc:  # e.g. an {% if %} split across MJML blocks
        raise TemplateError(exc.message or "template syntax error") from None


def data_to_html(text: str) -> str:
    """Body data (Markdown written or quoted by members and outsiders) as safe HTML: its own HTML
    shown as text, then sanitised all the same."""
    return sanitize_html(_data_markdown.render(text))


def _blocks_for_data(body_html: str, tokens: _Tokens, data: dict) -> str:
    """A paragraph holding only {{ name }} of body data becomes a block: the data is HTML blocks."""
    def block(m: re.Match) -> str:
        expression = tokens.originals[int(m.group(1))]
        name = expression.strip("{} ")
        return f"<div>{m.group(0)[3:-4]}</div>" if name in data else m.group(0)

    return re.sub(r"<p>MJX(\d{4,6})Z</p>", block, body_html) if data else body_html


def find_line(body: str, message: str) -> int | None:
    """For an unknown-variable error, the body line that names the variable."""
    m = re.search(r"'([^']+)' (?:is undefined|has no attribute '([^']+)')", message)
    if not m:
        return None
    needle = m.group(2) or m.group(1)
    for number, line in enumerate(body.splitlines(), 1):
        if needle in line and "{" in line:
            return number
    return None
