"""Printable documents: A4 PDF from Markdown (fpdf2: pure Python, nothing to install).

The one PDF builder, below every service: meetings print notices, agendas, minutes and sign-in
sheets with it; a member's subject access export prints with it too.
"""

from __future__ import annotations

import copy
import functools
import io
import os
import tempfile
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TextEmphasis
from fpdf.fonts import SubsetMap, TTFFont
from markdown_it import MarkdownIt

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_md = MarkdownIt("commonmark").enable("table")


_CORE_ENCODING = "windows-1252"  # the built-in fonts' WinAnsiEncoding: Latin-1 and — – … ‘ ’ “ ” • €


def _core(text: str) -> bool:
    """Whether the built-in Helvetica can show every character of `text`."""
    try:
        text.encode(_CORE_ENCODING)
        return True
    except UnicodeEncodeError:
        return False


_STYLES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf",
           "BI": "DejaVuSans-BoldOblique.ttf"}
# What names and letters use (Latin with its extensions, Greek, Cyrillic, punctuation, currency,
# arrows): DejaVu cut down to these once is ~1,000 glyphs instead of ~6,000, which is what makes
# each document's fonts cheap to read and subset. Text outside them gets the whole font.
_COMMON = ((0x20, 0x7E), (0xA0, 0x52F), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF),
           (0x2100, 0x214F), (0x2190, 0x21FF), (0x2212, 0x2212), (0x2022, 0x2022), (0xFB00, 0xFB06),
           (0xFFFD, 0xFFFD))
_COMMON_SET = frozenset(c for a, b in _COMMON for c in range(a, b + 1))


@functools.lru_cache(maxsize=None)
def _common_file(style: str) -> Path:
    """DejaVu `style` cut down to the common letters, made once per machine (a cache file beside
    the other temporary files, named by the source's size and time) and reused by every process."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    source = _FONT_DIR / _STYLES[style]
    stat = source.stat()
    target = Path(tempfile.gettempdir()) / "mailer-fonts" / f"{source.stem}-{stat.st_size}-{int(stat.st_mtime)}.ttf"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        font = TTFont(str(source), recalcTimestamp=False)
        options = subset.Options()
        options.name_IDs, options.notdef_outline, options.glyph_names = ["*"], True, True
        options.drop_tables += ["FFTM", "GSUB", "GPOS", "GDEF"]  # fpdf2 drops them when it embeds too
        cutter = subset.Subsetter(options)
        cutter.populate(unicodes=sorted(_COMMON_SET))
        cutter.subset(font)
        partial = target.with_suffix(f".{os.getpid()}.part")
        font.save(str(partial))
        partial.replace(target)  # atomic: a parallel process reads the whole file or makes its own
    return target


@functools.lru_cache(maxsize=None)
def _parsed(path: Path, style: str) -> tuple[TTFFont, bytes]:
    """The font read once per process (fpdf2's reading of its widths and character map is most of
    the cost), with the file's bytes for each document's own copy of the tables."""
    scratch = FPDF()
    scratch.add_font("body", style, str(path))
    return scratch.fonts[f"body{style}"], path.read_bytes()


def _font_for(doc: FPDF, path: Path, style: str) -> TTFFont:
    """A document's own font object from the parsed one: the widths and character map shared
    (fpdf2's own deep copy shares them), the tables read afresh (embedding subsets them in place)."""
    from fontTools.ttLib import TTFont

    parsed, data = _parsed(path, style)
    font = copy.deepcopy(parsed)
    font.i = len(doc.fonts) + 1
    font.ttfont = TTFont(io.BytesIO(data), recalcTimestamp=False, lazy=True)
    font.subset = SubsetMap(font)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    return font


class Document(FPDF):
    """A4 with Mailer's margins and a footer. `content` is all the text the document will hold:
    when Windows-1252 holds it (most agendas, notices and exports: Latin-1 with dashes and curly
    quotes) the PDF uses the built-in Helvetica, which
    costs nothing to load; otherwise DejaVu, where the system has it: cut down to the common
    letters when the text needs no others, each style read once per process and added to the
    document only when the text first uses it."""

    def __init__(self, title: str, content: str = ""):
        super().__init__(format="A4")
        self.doc_title = title
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(True, margin=18)
        self.unicode = not _core(title + content) and (_FONT_DIR / _STYLES[""]).exists()
        self.core_fonts_encoding = _CORE_ENCODING
        if self.unicode:  # names beyond Windows-1252: use a Unicode font where the system has one
            self.common = set(map(ord, title + content)) <= _COMMON_SET | {0x0A, 0x0D, 0x09}
            self.family = "body"
        else:
            self.family = "helvetica"
        self.set_title(title)
        self.add_page()
        self.set_font(self.family, size=11)

    def set_font(self, family=None, style="", size=0):
        if self.unicode and (family or "").lower() == "body":
            emphasis = TextEmphasis.coerce(style or "")
            key = ("B" if TextEmphasis.B in emphasis else "") + ("I" if TextEmphasis.I in emphasis else "")
            if f"body{key}" not in self.fonts:
                path = _common_file(key) if self.common else _FONT_DIR / _STYLES[key]
                self.fonts[f"body{key}"] = _font_for(self, path, key)
        return super().set_font(family, style, size)

    def footer(self):
        self.set_y(-12)
        self.set_font(self.family, size=8)
        self.cell(0, 8, self.text(f"{self.doc_title} · page {self.page_no()}"), align="C")

    def text(self, value: str) -> str:
        return value if self.unicode else value.encode(_CORE_ENCODING, "replace").decode(_CORE_ENCODING)

    # Drawing with fpdf2's cells: what is drawn is text, never markup, so what members wrote needs
    # no escaping. Lines are broken here, a word at a time, because fpdf2's multi_cell and
    # write_html measure a line again for every character they add: most of a long export's time.

    def heading(self, text: str, level: int = 1) -> None:
        """A bold heading: level 1 for the document's title, 2 for a section."""
        if level > 1:
            self.ln(3)
        self.lines([("B", text)], size=16 if level == 1 else 13)
        self.ln(2)

    def paragraph(self, text: str, label: str = "", gap: float = 2) -> None:
        """`label` in bold, then `text`, wrapped at the margins (a newline in `text` starts a new
        line), then `gap` mm of space: 0 between the lines of a list, such as a record's fields."""
        self.lines(_labelled(label, text))
        self.ln(gap)

    def bullet(self, text: str, label: str = "") -> None:
        """One item of a bulleted list: the bullet, `label` in bold, then `text`, hanging from the
        bullet."""
        self.lines(_labelled(label, text), indent=6, marker="\u2022")
        self.ln(0.5)

    def lines(self, runs: list[tuple[str, str]], size: float = 11, indent: float = 0, marker: str = "") -> None:
        """`runs` ((style, text): "" regular, "B" bold) wrapped between the margins, `indent` mm in,
        with `marker` (a bullet) before the first line; a page breaks between lines as needed."""
        height = size * 0.45  # mm: 1.3 times the size in points
        left = self.l_margin + indent
        for n, line in enumerate(self._wrap(runs, size, self.w - self.r_margin - left)):
            if n == 0 and marker:
                self.set_x(self.l_margin + 2)
                self._draw([("", marker)], size, height)  # breaks the page first if the line needs it
            self.set_x(left)
            self._draw(line, size, height)
            self.ln(height)
        self.set_font(self.family, size=11)

    def _wrap(self, runs: list[tuple[str, str]], size: float, room: float) -> list[list[tuple[str, str]]]:
        """The runs broken into lines no wider than `room` mm: at spaces, or within a word wider
        than a whole line."""
        lines: list[list[tuple[str, str]]] = [[]]
        used = 0.0

        def put(style: str, piece: str, width: float) -> None:
            nonlocal used
            line = lines[-1]
            if not piece:
                return
            if line and line[-1][0] == style:
                line[-1] = (style, line[-1][1] + piece)
            else:
                line.append((style, piece))
            used += width

        for style, text in runs:
            self.set_font(self.family, style, size)
            for n, row in enumerate(self.text(text).replace("\r\n", "\n").replace("\t", " ").split("\n")):
                if n:
                    lines.append([])
                    used = 0.0
                for m, word in enumerate(row.split(" ")):
                    piece = f" {word}" if m and lines[-1] else word
                    width = self._width(piece)
                    if used + width > room and lines[-1]:
                        lines.append([])
                        piece, used, width = word, 0.0, self._width(word)
                    while width > room:  # longer than a line (an address, a link): cut it
                        cut = self._fits(piece, room)
                        put(style, piece[:cut], self._width(piece[:cut]))
                        lines.append([])
                        piece, used = piece[cut:], 0.0
                        width = self._width(piece)
                    put(style, piece, width)
        return lines

    def _fits(self, word: str, room: float) -> int:
        """How many of `word`'s first characters fit in `room` mm (at least one)."""
        width = 0.0
        for i, char in enumerate(word):
            width += self._width(char)
            if width > room:
                return max(i, 1)
        return len(word)

    def _width(self, text: str) -> float:
        """`text`'s width in the current font, in mm: what get_string_width gives (this document
        sets no character spacing or stretching) without its cost per call."""
        return self.current_font.get_text_width(self.normalize_text(text), self.font_size_pt, None)[1] / self.k

    def _draw(self, line: list[tuple[str, str]], size: float, height: float) -> None:
        """One line's runs, each in its style, side by side from the current position."""
        margin, self.c_margin = self.c_margin, 0  # no padding between the runs of a line
        try:
            for style, piece in line:
                self.set_font(self.family, style, size)
                self.cell(self._width(piece), height, piece)
        finally:
            self.c_margin = margin

    def markdown(self, text: str) -> None:
        # "•" itself for the built-in font: fpdf2's own bullet for it is pre-encoded for Latin-1
        self.write_html(self.text(_md.render(text)), font_family=self.family,
                        ul_bullet_char="disc" if self.unicode else "\u2022")


def _labelled(label: str, text: str) -> list[tuple[str, str]]:
    """`label` in bold, then `text` after a space (no space when there is no label)."""
    return [("B", label), ("", f" {text}" if label else text)]


def markdown_pdf(title: str, text: str) -> bytes:
    """`text` (Markdown; escape what members or outsiders wrote) as a PDF titled `title`."""
    doc = Document(title, text)
    doc.markdown(text)
    return bytes(doc.output())
