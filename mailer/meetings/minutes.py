"""Minutes: written in the browser by agenda item, pre-filled from the agenda and the register,
with the correspondence received attached to the correspondence item; then approved by the chair,
circulated to the meeting's members, and adopted at the next meeting. Every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from mailer import audit, scope
from mailer.db import session, utcnow
from mailer.links import external_url
from mailer.meetings import attendance, noticing
from mailer.meetings.rules import LONDON, MeetingError
from mailer.models import (AgendaItem, Attachment, CorrespondenceLink, InboundMessage, Meeting, MeetingStatus,
                           MinuteItem, Minutes, MinutesStatus, Officer, Response, Role, Thread)

OPENING_CHARS = 280


def _names(rows, test) -> str:
    return ", ".join(r.member.full_name for r in rows if test(r)) or "none"


def start(officer: Officer, meeting: Meeting) -> Minutes:
    """Draft minutes, one section per agenda item, pre-filled from the agenda and the register.
    Returns the existing draft if there is one. Not committed."""
    existing = session.scalar(select(Minutes).where(Minutes.meeting_id == meeting.id))
    if existing is not None:
        return existing
    if meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("A cancelled meeting has no minutes.")
    register = attendance.register(meeting)
    minutes = Minutes(meeting_id=meeting.id, present_text=_names(register.rows, lambda r: r.present))
    session.add(minutes)
    session.flush()
    for position, item in enumerate(meeting.agenda, 1):
        session.add(MinuteItem(minutes_id=minutes.id, agenda_item_id=item.id, position=position, title=item.title,
                               text=_prefill(item, register)))
    audit.record("minutes.create", "minutes", minutes.id, note=meeting.title, officer=officer)
    session.flush()
    session.refresh(minutes)
    return minutes


def _prefill(item: AgendaItem, register) -> str:
    if item.role == "apologies":
        return "Apologies were received from: " + _names(
            register.rows, lambda r: r.response is Response.APOLOGIES and not r.proposed) + "."
    if item.role == "last_minutes" and item.last_minutes_id:
        return "The minutes of the last meeting were agreed as a true record. Matters arising: none."
    if item.role == "correspondence":
        return "The secretary reported the correspondence received (see the appendix)."
    return item.notes or ""


def save(officer: Officer, minutes: Minutes, texts: dict[int, str], present_text: str | None = None) -> None:
    """Save what was written, section by section. Only a draft can change. Not committed."""
    if minutes.status is not MinutesStatus.DRAFT:
        raise MeetingError(f"The minutes are {minutes.status.value}: they can no longer be edited.")
    changed = {}
    for item in minutes.items:
        if item.id in texts and texts[item.id] != item.text:
            changed[item.title] = [len(item.text), len(texts[item.id])]
            item.text = texts[item.id]
    if present_text is not None and present_text != minutes.present_text:
        minutes.present_text, changed["present"] = present_text, ["", present_text[:200]]
    if changed:
        audit.record("minutes.edit", "minutes", minutes.id, changed, officer=officer)


def approve(officer: Officer, minutes: Minutes) -> None:
    """The chair approves the draft. Not committed."""
    if officer.role is not Role.CHAIR:
        raise MeetingError("Only the chair can approve minutes.")
    if minutes.status is not MinutesStatus.DRAFT:
        raise MeetingError(f"The minutes are already {minutes.status.value}.")
    minutes.status, minutes.approved_by_id, minutes.approved_at = MinutesStatus.APPROVED, officer.id, utcnow()
    audit.record("minutes.approve", "minutes", minutes.id, {"status": ["draft", "approved"]}, officer=officer)


def circulate(officer: Officer, minutes: Minutes) -> None:
    """Send the approved minutes, with a web copy and a PDF, to the meeting's members (notices
    stream, the normal pipeline). Either they are sent (committed, then queued) or, when the send
    cannot start, the minutes stay approved and nothing is kept (raises): circulate again later."""
    if minutes.status is not MinutesStatus.APPROVED:
        raise MeetingError("Minutes are circulated once the chair has approved them.")
    meeting = minutes.meeting
    campaign = noticing.meeting_campaign(officer, meeting, "minutes", "minutes")
    # The minutes quote members and correspondents: their words are data the body shows, never template source.
    campaign.body = "Dear {{ member.first_name }},\n\n{{ minutes }}\n"
    campaign.body_data = {"minutes": body_markdown(minutes, web_link=True)}
    campaign.subject = f"Minutes: {meeting.title}, {meeting.starts_at.astimezone(LONDON).strftime('%-d %B %Y')}"
    for attachment in list(campaign.attachments):  # minutes carry their PDF, not the meeting's invite
        session.delete(attachment)
    data = minutes_pdf(minutes)
    session.add(Attachment(campaign_id=campaign.id, filename="minutes.pdf", content_type="application/pdf",
                           size=len(data), data=data))
    minutes.status, minutes.circulated_at, minutes.circulation_campaign_id = (MinutesStatus.CIRCULATED, utcnow(),
                                                                              campaign.id)
    audit.record("minutes.circulate", "minutes", minutes.id, {"status": ["approved", "circulated"]}, officer=officer)
    session.flush()
    session.refresh(campaign)
    noticing.send_or_leave(campaign, officer)  # checks it renders before committing; queues after


def minutes_pdf(minutes: Minutes, reader: Officer | None = None) -> bytes:
    """The minutes, with the correspondence appendix (only what `reader`, an officer, may open)."""
    from mailer.documents import markdown_pdf  # fpdf is loaded only when a PDF is asked for

    return markdown_pdf(f"Minutes: {minutes.meeting.title}", body_markdown(minutes, reader=reader))


def adoption_meetings(meeting: Meeting) -> list[Meeting]:
    """The body's later meetings (not cancelled): where its minutes may be adopted."""
    return list(session.scalars(select(Meeting).where(
        Meeting.branch_id.is_(None) if meeting.branch_id is None else Meeting.branch_id == meeting.branch_id,
        Meeting.starts_at > meeting.starts_at, Meeting.status != MeetingStatus.CANCELLED).order_by(Meeting.starts_at)))


def adopt(officer: Officer, minutes: Minutes, at_meeting: Meeting) -> None:
    """Record that a later meeting agreed the minutes as a true record. Not committed."""
    if minutes.status not in (MinutesStatus.APPROVED, MinutesStatus.CIRCULATED):
        raise MeetingError("Only approved minutes can be adopted.")
    if at_meeting.starts_at <= minutes.meeting.starts_at:
        raise MeetingError("Minutes are adopted at a later meeting.")
    if at_meeting.branch_id != minutes.meeting.branch_id or at_meeting.status is MeetingStatus.CANCELLED:
        raise MeetingError("Minutes are adopted at a later meeting of the same body.")
    minutes.status, minutes.adopted_at, minutes.adopted_at_meeting_id = MinutesStatus.ADOPTED, utcnow(), at_meeting.id
    audit.record("minutes.adopt", "minutes", minutes.id, {"status": ["circulated", "adopted"],
                                                          "meeting": [None, at_meeting.id]}, officer=officer)


# --- correspondence ------------------------------------------------------------------------------

def correspondence_item(meeting: Meeting) -> AgendaItem:
    """The meeting's correspondence item (added to the agenda if it had none)."""
    item = next((i for i in meeting.agenda if i.role == "correspondence"), None)
    if item is None:
        item = AgendaItem(meeting_id=meeting.id, position=len(meeting.agenda) + 1, title="Correspondence",
                          role="correspondence")
        session.add(item)
        session.flush()
        session.expire(meeting, ["agenda"])
    return item


def attach(officer: Officer, meeting: Meeting, thread: Thread) -> CorrespondenceLink:
    """Attach a correspondence thread to the meeting's correspondence item (once). Only a thread
    that everyone who reads the meeting's minutes may open: a branch's minutes take that branch's
    threads, never another's. Not committed."""
    if not scope.can_see_branch(officer, thread.branch_id) or not scope.can_see_branch(officer, meeting.branch_id):
        raise MeetingError("You cannot attach that thread.")
    if not scope.body_may_see(meeting.branch_id, thread.branch_id):
        raise MeetingError("That thread is about another branch's member: a branch's minutes can only carry its own "
                           "branch's correspondence.")
    held = session.scalar(select(Minutes).where(Minutes.meeting_id == meeting.id))
    if held is not None and held.status is not MinutesStatus.DRAFT:
        raise MeetingError("The minutes are approved: their correspondence can no longer change.")
    item = correspondence_item(meeting)
    link = session.scalar(select(CorrespondenceLink).where(CorrespondenceLink.item_id == item.id,
                                                           CorrespondenceLink.thread_id == thread.id))
    if link is None:
        link = CorrespondenceLink(item_id=item.id, thread_id=thread.id, added_by_id=officer.id)
        session.add(link)
        audit.record("meeting.correspondence", "meeting", meeting.id, {"thread": [None, thread.id]}, officer=officer)
    return link


def detach(officer: Officer, link: CorrespondenceLink) -> None:
    """Take a thread off the correspondence item (while the minutes are a draft). Not committed."""
    minutes = link.item.meeting.minutes
    if minutes is not None and minutes.status is not MinutesStatus.DRAFT:
        raise MeetingError("The minutes are approved: their correspondence can no longer change.")
    audit.record("meeting.correspondence_remove", "meeting", link.item.meeting_id, {"thread": [link.thread_id, None]},
                 officer=officer)
    session.delete(link)


@dataclass
class ThreadSummary:
    thread: Thread
    sender: str
    date: datetime | None
    subject: str
    opening: str
    messages: list[InboundMessage]


def summaries(meeting: Meeting, reader: Officer | None = None) -> list[ThreadSummary]:
    """The attached threads, each as the minutes show it: from, date, subject, opening lines. Only
    threads the meeting's body may see, and (for an officer reading) that `reader` may open."""
    out = []
    for item in meeting.agenda:
        for link in item.correspondence:
            if not scope.body_may_see(meeting.branch_id, link.thread.branch_id) or (
                    reader is not None and not scope.can_see_branch(reader, link.thread.branch_id)):
                continue
            messages = list(session.scalars(select(InboundMessage).where(InboundMessage.thread_id == link.thread_id)
                                            .order_by(InboundMessage.received_at, InboundMessage.id)))
            first = messages[0] if messages else None
            opening = " ".join((first.visible_text if first else "").split())
            out.append(ThreadSummary(link.thread, (first.from_name or first.from_address) if first else "",
                                     (first.sent_at or first.received_at) if first else None, link.thread.subject,
                                     opening[:OPENING_CHARS] + ("…" if len(opening) > OPENING_CHARS else ""),
                                     messages))
    return out


def body_markdown(minutes: Minutes, web_link: bool = False, reader: Officer | None = None) -> str:
    """The minutes as Markdown: sections, the correspondence summaries (those `reader` may open),
    and the appendix."""
    meeting = minutes.meeting
    when = meeting.starts_at.astimezone(LONDON).strftime("%A %-d %B %Y, %H:%M")
    lines = [f"# Minutes: {meeting.title}", f"{meeting.body_name[:1].upper()}{meeting.body_name[1:]} · {when}", "",
             f"**Present:** {minutes.present_text or 'not recorded'}", ""]
    found = summaries(meeting, reader)
    for n, item in enumerate(minutes.items, 1):
        lines += [f"## {n}. {item.title}", "", item.text or "", ""]
        if item.agenda_item and item.agenda_item.role == "correspondence" and found:
            for s in found:
                date = s.date.astimezone(LONDON).strftime("%d/%m/%Y") if s.date else ""
                lines.append(f"- **{s.subject}** from {s.sender}, {date}: {s.opening}")
            lines.append("")
    status = {MinutesStatus.DRAFT: "Draft", MinutesStatus.APPROVED: "Approved by the chair",
              MinutesStatus.CIRCULATED: "Approved by the chair and circulated",
              MinutesStatus.ADOPTED: "Adopted as a true record"}[minutes.status]
    lines += [f"*{status}.*", ""]
    if found:
        lines += ["---", "", "# Appendix: correspondence", ""]
        for n, s in enumerate(found, 1):
            lines += [f"## A{n}. {s.subject}", ""]
            for m in s.messages:
                date = (m.sent_at or m.received_at).astimezone(LONDON).strftime("%d/%m/%Y %H:%M")
                lines += [f"**From {m.from_name or m.from_address}, {date}**", "", m.visible_text or m.full_text, ""]
    if web_link:
        lines += [f"Read the minutes online: {external_url('public.minutes', web_token=minutes.web_token)}"]
    return "\n".join(lines)
