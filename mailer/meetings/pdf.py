"""Printable documents as PDF (fpdf2: pure Python, nothing to install): the notice, the agenda,
the minutes with their correspondence appendix, and the sign-in sheet for the day."""

from __future__ import annotations

import html
from pathlib import Path

from fpdf import FPDF
from markdown_it import MarkdownIt

from mailer.meetings import service
from mailer.meetings.rules import LONDON
from mailer.models import Meeting, Minutes

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_md = MarkdownIt("commonmark").enable("table")


class _Document(FPDF):
    def __init__(self, title: str):
        super().__init__(format="A4")
        self.doc_title = title
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(True, margin=18)
        self.unicode = (_FONT_DIR / "DejaVuSans.ttf").exists()
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


def _when(meeting: Meeting) -> str:
    return meeting.starts_at.astimezone(LONDON).strftime("%A %-d %B %Y, %H:%M")


def minutes_pdf(minutes: Minutes, reader=None) -> bytes:
    """The minutes, with the correspondence appendix (only what `reader`, an officer, may open)."""
    from mailer.meetings.minutes import body_markdown

    doc = _Document(f"Minutes: {minutes.meeting.title}")
    doc.markdown(body_markdown(minutes, reader=reader))
    return bytes(doc.output())


def notice_markdown(meeting: Meeting) -> str:
    """The posted notice's text: who it is from and how to answer it, not only the meeting."""
    from flask import current_app

    from mailer.words import meeting_name

    config = current_app.config
    view = service.MeetingView.of(meeting)
    return (f"# Notice of meeting\n\n{html.escape(config['ORG_NAME'])}\n\n"
            f"**{html.escape(meeting_name(meeting.title, meeting.body_name))}**\n\n"
            f"**When:** {html.escape(view.when)}\n\n**Where:** {html.escape(view.where)}\n\n"
            + (f"**Online:** {html.escape(view.online)}\n\n" if view.online else "")
            + f"**Accessibility:** {html.escape(view.accessibility)}\n\n## Agenda\n\n{html.escape(view.agenda)}\n\n"
            f"To send apologies or ask about the meeting, contact {html.escape(config['SENDER_NAME'])}: "
            f"{html.escape(config['REPLY_ADDRESS'])}.\n\n"
            f"{html.escape(config['IMPRINT'])}")


def notice_pdf(meeting: Meeting) -> bytes:
    """The notice as posted to members without email."""
    doc = _Document(f"Notice: {meeting.title}")
    doc.markdown(notice_markdown(meeting))
    return bytes(doc.output())


def agenda_pdf(meeting: Meeting) -> bytes:
    doc = _Document(f"Agenda: {meeting.title}")
    lines = [f"# Agenda: {html.escape(meeting.title)}", "", f"{html.escape(meeting.body_name)} · {_when(meeting)}", ""]
    for n, item in enumerate(meeting.agenda, 1):
        lines += [f"**{n}. {html.escape(item.title)}**", ""]
        if item.notes:
            lines += [html.escape(item.notes), ""]
        for paper in item.papers:
            lines += [f"Paper: {html.escape(paper.filename)}", ""]
    doc.markdown("\n".join(lines))
    return bytes(doc.output())


def signin_pdf(meeting: Meeting) -> bytes:
    """The sign-in sheet: every entitled member, with a column to sign."""
    register = service.register(meeting)
    doc = _Document(f"Sign-in: {meeting.title}")
    doc.set_font(doc.family, "B", 14)
    doc.multi_cell(0, 8, doc.text(f"Sign-in sheet: {meeting.title}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_font(doc.family, size=10)
    doc.multi_cell(0, 6, doc.text(f"{meeting.body_name} · {_when(meeting)}"), new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)
    with doc.table(col_widths=(60, 35, 30, 49), text_align="LEFT") as table:
        head = table.row()
        for title in ("Name", "Membership no.", "Apologies", "Signature"):
            head.cell(title)
        for r in register.rows:
            row = table.row()
            row.cell(doc.text(r.member.full_name))
            row.cell(doc.text(r.member.membership_number or ""))
            row.cell("apologies" if r.response.value == "apologies" else "")
            row.cell("")
    return bytes(doc.output())
