"""A meeting's printed papers: the notice, the agenda and the sign-in sheet for the day (the
minutes print from `minutes.minutes_pdf`)."""

from __future__ import annotations

import html

from mailer.documents import Document, markdown_pdf
from mailer.meetings import attendance, noticing
from mailer.meetings.rules import LONDON
from mailer.models import Meeting


def _when(meeting: Meeting) -> str:
    return meeting.starts_at.astimezone(LONDON).strftime("%A %-d %B %Y, %H:%M")


def notice_markdown(meeting: Meeting) -> str:
    """The posted notice's text: who it is from and how to answer it, not only the meeting."""
    from flask import current_app

    from mailer.words import meeting_name

    config = current_app.config
    view = noticing.MeetingView.of(meeting)
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
    return markdown_pdf(f"Notice: {meeting.title}", notice_markdown(meeting))


def agenda_pdf(meeting: Meeting) -> bytes:
    lines = [f"# Agenda: {html.escape(meeting.title)}", "", f"{html.escape(meeting.body_name)} · {_when(meeting)}", ""]
    for n, item in enumerate(meeting.agenda, 1):
        lines += [f"**{n}. {html.escape(item.title)}**", ""]
        if item.notes:
            lines += [html.escape(item.notes), ""]
        for paper in item.papers:
            lines += [f"Paper: {html.escape(paper.filename)}", ""]
    return markdown_pdf(f"Agenda: {meeting.title}", "\n".join(lines))


def signin_pdf(meeting: Meeting) -> bytes:
    """The sign-in sheet: every entitled member, with a column to sign."""
    register = attendance.register(meeting)
    doc = Document(f"Sign-in: {meeting.title}", meeting.body_name + "".join(
        r.member.full_name + (r.member.membership_number or "") for r in register.rows))
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
