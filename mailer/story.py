"""A member's whole story: everything Mailer holds about one member, as sections (for the subject
access export) and as one timeline (for the member page).

It reads what every service keeps (letters, meetings, emails as each member read them), so it sits
above the services, beside the pages and the command line that show it.

One query per section whatever the member's history: no per-row loading. The member page asks
for the latest `limit` of each section; the export asks for everything (limit=None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import func, or_, select

from mailer import audit, words
from mailer.compose.personal import MemberView, PlaceholderMeeting
from mailer.compose.render import render_subject
from mailer.db import session
from mailer.members import service
from mailer.models import (AgendaItem, AuditEvent, BounceEvent, Campaign, ConsentEvent, CorrespondenceLink, Delivery,
                           InboundAttachment, InboundMessage, Meeting, Member, MinuteItem, Minutes, Officer,
                           OutgoingReply, Suppression, Thread, ThreadNote)
from mailer.models.meetings import Attendance

PAGE_LIMIT = 50  # per section on the member page; the export has no limit

SECTIONS = {
    "changes": "Changes to their record",
    "consent": "Consent",
    "emails": "Emails sent to them",
    "bounces": "Bounces",
    "letters": "Letters and replies from them",
    "replies": "Our replies to them",
    "notes": "Officers' notes on their correspondence",
    "attendance": "Apologies and attendance",
    "minutes": "Minutes that name them",
}


@dataclass
class Entry:
    """One line of the timeline."""

    at: datetime | None
    section: str
    title: str
    detail: str = ""
    link: tuple[str, dict] | None = None  # (endpoint, values) for the page

    def as_dict(self) -> dict:
        return {"at": self.at.isoformat() if self.at else None, "section": SECTIONS[self.section],
                "what": self.title, "detail": self.detail}


@dataclass
class Story:
    member: Member
    details: dict                                     # the record, in words
    tags: list[str]
    suppressions: list[dict]
    sections: dict[str, list[dict]] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    more: dict[str, bool] = field(default_factory=dict)  # sections cut at the limit

    def timeline(self) -> list[Entry]:
        return sorted(self.entries, key=lambda e: (e.at is not None, e.at or datetime.min), reverse=True)


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _limited(stmt, limit: int | None):
    return stmt.limit(limit + 1) if limit else stmt


def _cut(rows: list, limit: int | None) -> tuple[list, bool]:
    return (rows[:limit], True) if limit and len(rows) > limit else (rows, False)


def details(member: Member) -> dict:
    """The member's record, field by field in words."""
    return {
        "Membership number": member.membership_number or "", "First name": member.first_name,
        "Last name": member.last_name, "Email": member.email or "", "Phone": member.phone or "",
        "Postcode": member.postcode or "", "Branch": member.branch.name if member.branch else "",
        "Ward": member.ward or "", "Polling district": member.polling_district or "",
        "Status": words.status(member.status), "Joined": words.uk_date(member.joined_on),
        "Emailed notices": "yes" if member.notices_consent else "no (objected)",
        "Consent to bulletins": "yes" if member.bulletins_consent else "no",
        "Email health": words.status(member.email_health), "To welcome": "yes" if member.to_welcome else "no",
        "Record created": words.when(member.created_at), "Record last changed": words.when(member.updated_at),
    }


def story(member: Member, limit: int | None = PAGE_LIMIT) -> Story:
    """Everything held about `member`: each section newest first, cut at `limit` (None: all)."""
    address = (member.email or "").lower()
    found = Story(member=member, details=details(member), tags=[t.name for t in member.tags],
                  suppressions=[{"email": s.email, "stream": s.stream, "reason": words.status(s.reason),
                                 "at": _iso(s.created_at), "note": s.note}
                                for s in session.scalars(select(Suppression).where(Suppression.email == address))]
                  if address else [])

    def add(section: str, rows: list[dict], entries: list[Entry], more: bool) -> None:
        found.sections[section], found.more[section] = rows, more
        found.entries.extend(entries)

    # Changes to the record (imports, consent and health changes, welcome, exports) from the audit log.
    events, more = _cut(session.scalars(_limited(select(AuditEvent).where(
        AuditEvent.subject_type == "member", AuditEvent.subject_id == member.id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()), limit)).all(), limit)
    rows, entries = [], []
    for e in events:
        changes = {words.field(k): [words.value(v[0]), words.value(v[1])] if isinstance(v, list) and len(v) == 2
                   else words.value(v) for k, v in (e.changes or {}).items()}
        rows.append({"at": _iso(e.at), "by": e.actor, "what": words.action(e.action), "changes": changes,
                     "note": e.note})
        text = "; ".join(f"{k}: {v[0] or '—'} → {v[1] or '—'}" if isinstance(v, list) else f"{k}: {v}"
                         for k, v in changes.items())
        entries.append(Entry(e.at, "changes", words.action(e.action).capitalize(),
                             " · ".join(p for p in (text, e.note, f"by {e.actor}") if p)))
    add("changes", rows, entries, more)

    consents, more = _cut(session.scalars(_limited(select(ConsentEvent).where(ConsentEvent.member_id == member.id)
                                                   .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc()),
                                                   limit)).all(), limit)
    add("consent", [{"at": _iso(c.at), "stream": c.stream, "granted": c.granted, "how": c.source, "note": c.note}
                    for c in consents],
        [Entry(c.at, "consent", f"{'Agreed to' if c.granted else 'Stopped'} {c.stream}",
               " · ".join(p for p in (f"how: {c.source}", c.note) if p)) for c in consents], more)

    # Emails: one row per delivery, with the campaign's subject as this member read it.
    deliveries, more = _cut(session.execute(_limited(
        select(Delivery, Campaign).join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.member_id == member.id).order_by(Delivery.id.desc()), limit)).all(), limit)
    rows, entries = [], []
    for d, c in deliveries:
        subject = _subject(c, member)
        rows.append({"campaign": c.name, "subject": subject, "stream": c.stream.value, "address": d.email,
                     "outcome": d.status.value, "attempts": d.attempts, "error": d.error, "sent_at": _iso(d.sent_at),
                     "updated_at": _iso(d.updated_at)})
        entries.append(Entry(d.sent_at or d.updated_at, "emails", f"Email: {subject}",
                             f"{words.status(d.status)} to {d.email}" + (f" ({d.error})" if d.error else ""),
                             ("admin.campaigns.detail", {"campaign_id": c.id})))
    add("emails", rows, entries, more)

    bounce_match = BounceEvent.member_id == member.id
    if address:
        bounce_match = or_(bounce_match, BounceEvent.email == address)
    bounces, more = _cut(session.scalars(_limited(select(BounceEvent).where(bounce_match)
                                                  .order_by(BounceEvent.at.desc(), BounceEvent.id.desc()),
                                                  limit)).all(), limit)
    add("bounces", [{"at": _iso(b.at), "address": b.email, "hard": b.hard, "status": b.status,
                     "diagnostic": b.diagnostic} for b in bounces],
        [Entry(b.at, "bounces", f"{'Hard' if b.hard else 'Soft'} bounce from {b.email}", b.diagnostic)
         for b in bounces], more)

    letters, more = _cut(session.scalars(_limited(select(InboundMessage).where(InboundMessage.member_id == member.id)
                                                  .order_by(InboundMessage.received_at.desc(),
                                                            InboundMessage.id.desc()), limit)).all(), limit)
    files: dict[int, list[str]] = {}
    if letters:  # the attachments' names (not their bytes), one query for all the letters shown
        for message_id, filename, size in session.execute(
                select(InboundAttachment.message_id, InboundAttachment.filename, InboundAttachment.size)
                .where(InboundAttachment.message_id.in_([m.id for m in letters])).order_by(InboundAttachment.id)):
            files.setdefault(message_id, []).append(f"{filename} ({size} bytes)")
    add("letters", [{"received_at": _iso(m.received_at), "from": m.from_address, "subject": m.subject,
                     "kind": m.kind.value if m.kind else None, "text": m.full_text or m.visible_text,
                     "attachments": files.get(m.id, []), "thread": m.thread_id} for m in letters],
        [Entry(m.received_at, "letters", f"From them: {m.subject or '(no subject)'}",
               _opening(m.visible_text), ("admin.correspondence.thread", {"thread_id": m.thread_id})
               if m.thread_id else None) for m in letters], more)

    theirs = select(Thread.id).where(Thread.member_id == member.id)
    replies, more = _cut(session.scalars(_limited(select(OutgoingReply).where(OutgoingReply.thread_id.in_(theirs))
                                                  .order_by(OutgoingReply.created_at.desc(), OutgoingReply.id.desc()),
                                                  limit)).all(), limit)
    add("replies", [{"at": _iso(r.created_at), "sent_at": _iso(r.sent_at), "to": r.to_address, "subject": r.subject,
                     "text": r.body, "error": r.error} for r in replies],
        [Entry(r.sent_at or r.created_at, "replies", f"Our reply: {r.subject}", _opening(r.body),
               ("admin.correspondence.thread", {"thread_id": r.thread_id})) for r in replies], more)

    notes, more = _cut(session.scalars(_limited(select(ThreadNote).where(ThreadNote.thread_id.in_(theirs))
                                                .order_by(ThreadNote.at.desc(), ThreadNote.id.desc()),
                                                limit)).all(), limit)
    add("notes", [{"at": _iso(n.at), "text": n.text} for n in notes],
        [Entry(n.at, "notes", "Officers' note on their letter", _opening(n.text),
               ("admin.correspondence.thread", {"thread_id": n.thread_id})) for n in notes], more)

    answers, more = _cut(session.execute(_limited(
        select(Attendance, Meeting).join(Meeting, Meeting.id == Attendance.meeting_id)
        .where(Attendance.member_id == member.id).order_by(Meeting.starts_at.desc()), limit)).all(), limit)
    rows, entries = [], []
    for a, m in answers:
        said = words.status(a.response) if a.response.value != "none" else "no answer"
        rows.append({"meeting": m.title, "starts_at": _iso(m.starts_at), "answer": said, "how": a.source,
                     "answered_at": _iso(a.responded_at), "to_confirm": a.proposed, "present": a.present})
        entries.append(Entry(a.responded_at or m.starts_at, "attendance", f"{m.title}: {said}",
                             ("present" if a.present else "not recorded as present")
                             + (" · read from their reply, to confirm" if a.proposed else ""),
                             ("admin.meetings.detail", {"meeting_id": m.id})))
    add("attendance", rows, entries, more)

    add("minutes", *_minutes(member, theirs, limit))
    return found


def _minutes(member: Member, theirs, limit: int | None) -> tuple[list[dict], list[Entry], bool]:
    """Minutes naming the member (by full name, in an item or the list of those present) and
    minutes their letters were attached to."""
    rows, entries, more = [], [], False
    name = f"{member.first_name} {member.last_name}".strip()
    if member.first_name and member.last_name:
        pattern = f"%{name.lower()}%"
        named, more = _cut(session.execute(_limited(
            select(MinuteItem.title, MinuteItem.text, Minutes.present_text, Minutes.status, Meeting.id, Meeting.title,
                   Meeting.starts_at).join(Minutes, Minutes.id == MinuteItem.minutes_id)
            .join(Meeting, Meeting.id == Minutes.meeting_id)
            .where(or_(func.lower(MinuteItem.text).like(pattern), func.lower(Minutes.present_text).like(pattern)))
            .order_by(Meeting.starts_at.desc(), MinuteItem.position), limit)).all(), limit)
        for item_title, text, present, status, meeting_id, title, starts in named:
            where = item_title if name.lower() in (text or "").lower() else "present"
            quote = text if where == item_title else present
            rows.append({"meeting": title, "starts_at": _iso(starts), "minutes": status.value, "item": where,
                         "text": quote})
            entries.append(Entry(starts, "minutes", f"Named in the minutes of {title}", f"item: {where}",
                                 ("admin.meetings.minutes", {"meeting_id": meeting_id})))
    attached = session.execute(_limited(
        select(CorrespondenceLink.added_at, Thread.subject, Meeting.id, Meeting.title, Meeting.starts_at)
        .join(Thread, Thread.id == CorrespondenceLink.thread_id)
        .join(AgendaItem, AgendaItem.id == CorrespondenceLink.item_id).join(Meeting, Meeting.id == AgendaItem.meeting_id)
        .where(CorrespondenceLink.thread_id.in_(theirs)).order_by(CorrespondenceLink.added_at.desc()), limit)).all()
    attached, more_attached = _cut(attached, limit)
    for added, subject, meeting_id, title, starts in attached:
        rows.append({"meeting": title, "starts_at": _iso(starts), "item": "correspondence",
                     "text": f"their letter “{subject}” attached"})
        entries.append(Entry(added, "minutes", f"Their letter attached to the minutes of {title}", subject,
                             ("admin.meetings.minutes", {"meeting_id": meeting_id})))
    return rows, entries, more or more_attached


def _opening(text: str | None, size: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= size else text[:size - 1] + "…"


def _subject(campaign: Campaign, member: Member) -> str:
    return render_subject(campaign, {"member": MemberView.of(member), "org_name": current_app.config["ORG_NAME"],
                                     "meeting": PlaceholderMeeting})


def export(member: Member) -> dict:
    """The subject access export: the whole story, complete, as plain JSON-ready data."""
    found = story(member, limit=None)
    return {
        "about": f"Everything {current_app.config['ORG_NAME']} holds about this member in Mailer.",
        "member": found.details, "tags": found.tags, "suppressions": found.suppressions,
        **{SECTIONS[key]: rows for key, rows in found.sections.items()},
        "Timeline": [e.as_dict() for e in found.timeline()],
    }


def export_data(officer: Officer | None, member: Member) -> dict:
    """Everything Mailer holds about a member (a subject access request): their record and their
    whole story (changes, consent, emails, letters, meetings...), logged as taken. Not committed."""
    data = service.record_data(member)
    data.update(export(member))
    audit.record("member.export", "member", member.id, note="personal data exported", officer=officer)
    return data


def export_pdf(officer: Officer | None, member: Member) -> bytes:
    """The PDF export, logged as taken (as export_data logs the JSON). Not committed."""
    data = pdf(member)
    audit.record("member.export", "member", member.id, note="personal data exported (PDF)", officer=officer)
    return data


def pdf(member: Member) -> bytes:
    """The subject access export as a readable PDF: the record, then each section in full.
    Drawn as text (headings, fields, bullets), so nothing a member wrote is read as markup."""
    from mailer.documents import Document  # fpdf is loaded only when a PDF is asked for

    found = story(member, limit=None)
    by_section: dict[str, list[Entry]] = {}
    for entry in found.timeline():
        by_section.setdefault(entry.section, []).append(entry)
    full = {title: [r for r in found.sections[key] if r.get("text")]
            for key, title in (("letters", "Their letters in full"), ("replies", "Our replies in full"))}
    intro = (f"Everything {current_app.config['ORG_NAME']} holds about this member in Mailer, "
             f"as of {words.when(datetime.now().astimezone())}.")
    doc = Document(f"Personal data held: {member.full_name}", intro + _all_text(found, by_section, full))
    doc.heading(f"Personal data held about {member.full_name}")
    doc.paragraph(intro)
    doc.heading("Their record", 2)
    for key, value in found.details.items():
        doc.paragraph(str(value) or "—", label=f"{key}:", gap=0)
    doc.ln(2)
    doc.paragraph(", ".join(found.tags) or "none", label="Tags:")
    if found.suppressions:
        doc.paragraph("; ".join(f"{s['email']} ({s['stream']}, {s['reason']})" for s in found.suppressions),
                      label="Addresses we must not write to:")
    for key, heading in SECTIONS.items():
        doc.heading(heading, 2)
        entries = by_section.get(key, [])
        if not entries:
            doc.paragraph("None.")
        for e in entries:
            doc.bullet(e.title + (f": {e.detail}" if e.detail else ""), label=words.when(e.at) or "undated")
    for heading, rows in full.items():
        if rows:
            doc.heading(heading, 2)
            for r in rows:
                when = r.get("received_at") or r.get("at") or ""
                doc.paragraph(f"({when})", label=r.get("subject") or "(no subject)")
                doc.paragraph(r["text"])
    return bytes(doc.output())


def _all_text(found: Story, by_section: dict[str, list[Entry]], full: dict[str, list[dict]]) -> str:
    """Every piece of member text the PDF draws, so the document picks a font that holds it all."""
    return " ".join([*map(str, found.details.values()), *found.tags, *(s["email"] for s in found.suppressions),
                     *(f"{e.title} {e.detail}" for entries in by_section.values() for e in entries),
                     *(f"{r.get('subject') or ''} {r['text']}" for rows in full.values() for r in rows)])
