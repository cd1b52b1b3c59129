"""Printable documents: A4 PDF from Markdown (fpdf2: pure Python, nothing to install).

The one PDF builder, below every service: meetings print notices, agendas, minutes and sign-in
sheets with it; a member's subject access export prints with it too.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from markdown_it import MarkdownIt

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_md = MarkdownIt("commonmark").enable("table")


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False


class Document(FPDF):
    """A4 with Mailer's margins and a footer. `content` is all the text the document will hold:
    when it is Latin-1 (most agendas and notices) the PDF uses the built-in Helvetica, which
    costs nothing to load; otherwise DejaVu, where the system has it (reading and subsetting its
    four TrueType files takes most of a second)."""

    def __init__(self, title: str, content: str = ""):
        super().__init__(format="A4")
        self.doc_title = title
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(True, margin=18)
        self.unicode = not _latin1(title + content) and (_FONT_DIR / "DejaVuSans.ttf").exists()
        if self.unicode:  # names are not all Latin-1: use a Unicode font where the system has one
            self.add_font("body", "", str(_FONT_DIR / "DejaVuSans.ttf"))
            self.add_font("body", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
            self.add_font("body", "I", str(_FONT_DIR / "DejaVuSans-Oblique.ttf"))
            self.add_font("body", "BI", str(_FONT_DIR / "DejaVuSans-BoldOblique.ttf"))
            self.family = "body"
        else:
            self.family = "helvetica"
        self.set_title(title)
        self.add_page()
        self.set_font(self.family, size=11)

    def footer(self):
        self.set_y(-12)
        self.set_font(self.family, size=8)
        self.cell(0, 8, self.text(f"{self.doc_title} · page {self.page_no()}"), align="C")

    def text(self, value: str) -> str:
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")

    def markdown(self, text: str) -> None:
        self.write_html(self.text(_md.render(text)), font_family=self.family)


def markdown_pdf(title: str, text: str) -> bytes:
    """`text` (Markdown; escape what members or outsiders wrote) as a PDF titled `title`."""
    doc = Document(title, text)
    doc.markdown(text)
    return bytes(doc.output())
