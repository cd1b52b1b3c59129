"""A member's whole story: one member seeded into every table that can hold their data, and each
item found in the timeline, the JSON export, the PDF export and `mailer members export-data`."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import event

from mailer import story
from mailer.db import Base, session
from mailer.models import (AgendaItem, AuditEvent, BounceEvent, Campaign, ConsentEvent, CorrespondenceLink, Delivery,
                           DeliveryStatus, InboundAttachment, InboundKind, InboundMessage, Meeting, MeetingKind,
                           MemberTag, MinuteItem, Minutes, OutgoingReply, Response, Stream, Suppression,
                           SuppressionReason, Tag, Thread, ThreadNote)
from mailer.models.meetings import Attendance

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=timezone.utc)

# Every item seeded, by where it must show: (section key, text that must appear).
EXPECTED = [
    ("changes", "phone: 07700 900001 → 07700 900002"),
    ("changes", "import #7 (members-march.csv)"),
    ("consent", "Stopped bulletins"),
    ("emails", "Spring news for Keir"),
    ("bounces", "550 5.1.1 mailbox full forever"),
    ("letters", "I cannot come on Thursday, sorry"),
    ("replies", "Thank you for letting us know"),
    ("notes", "Called him back about the motion"),
    ("attendance", "March general meeting: apologies"),
    ("minutes", "Named in the minutes of March general meeting"),
    ("minutes", "Their letter attached to the minutes of March general meeting"),
]


def seed(make_member, make_officer):
    """One member in every table that refers to members, and in the text that names them."""
    officer = make_officer()
    member = make_member(first_name="Keir", last_name="Hardie", email="keir@example.org", phone="07700 900002")
    tag = Tag(name="delegates")
    session.add(tag)
    session.flush()
    session.add(MemberTag(member_id=member.id, tag_id=tag.id))
    session.add(AuditEvent(actor="secretary@example.org", action="member.update", subject_type="member",
                           subject_id=member.id, changes={"phone": ["07700 900001", "07700 900002"]}, at=T0))
    session.add(AuditEvent(actor="secretary@example.org", action="member.import", subject_type="member",
                           subject_id=member.id, note="import #7 (members-march.csv)", at=T0))
    session.add(ConsentEvent(member_id=member.id, stream="bulletins", granted=False, source="preferences page", at=T0))
    session.add(Suppression(email="keir@example.org", stream="bulletins", reason=SuppressionReason.OBJECTION))
    campaign = Campaign(stream=Stream.BULLETINS, name="Spring bulletin", subject="Spring news for {{ member.first_name }}")
    session.add(campaign)
    session.flush()
    delivery = Delivery(campaign_id=campaign.id, member_id=member.id, email="keir@example.org",
                        status=DeliveryStatus.SENT, sent_at=T0, attempts=1)
    session.add(delivery)
    session.flush()
    session.add(BounceEvent(email="keir@example.org", hard=False, diagnostic="550 5.1.1 mailbox full forever",
                            delivery_id=delivery.id, member_id=member.id, at=T0))
    thread = Thread(subject="Apologies", correspondent="keir@example.org", member_id=member.id)
    session.add(thread)
    session.flush()
    letter = InboundMessage(transport="file", dedupe_key="sha256:keir", sha256="0" * 64, raw=b"x", size=1,
                            kind=InboundKind.REPLY, from_address="keir@example.org", subject="Apologies",
                            visible_text="I cannot come on Thursday, sorry.", thread_id=thread.id,
                            member_id=member.id, received_at=T0)
    session.add(letter)
    session.flush()
    session.add(InboundAttachment(message_id=letter.id, filename="motion.pdf", content_type="application/pdf",
                                  size=3, data=b"pdf"))
    session.add(OutgoingReply(thread_id=thread.id, message_id="<r1@example.org>", to_address="keir@example.org",
                              subject="Re: Apologies", body="Thank you for letting us know.", sent_at=T0))
    session.add(ThreadNote(thread_id=thread.id, officer_id=officer.id, text="Called him back about the motion."))
    meeting = Meeting(kind=MeetingKind.GENERAL, title="March general meeting", starts_at=T0 + timedelta(days=3))
    session.add(meeting)
    session.flush()
    session.add(Attendance(meeting_id=meeting.id, member_id=member.id, response=Response.APOLOGIES, source="reply",
                           responded_at=T0))
    item = AgendaItem(meeting_id=meeting.id, position=1, title="Correspondence")
    session.add(item)
    session.flush()
    minutes = Minutes(meeting_id=meeting.id, present_text="Ann Able, Bob Baker")
    session.add(minutes)
    session.flush()
    session.add(MinuteItem(minutes_id=minutes.id, position=1, title="Motions",
                           text="Keir Hardie moved the motion on bus services."))
    session.add(CorrespondenceLink(item_id=item.id, thread_id=thread.id))
    session.commit()
    return member


def test_the_seed_covers_every_table_that_refers_to_members(app, make_member, make_officer):
    """A new table holding members' data must be added to the seed (and so to the story)."""
    seeded = set()

    @event.listens_for(session.get_bind(), "before_cursor_execute")  # noqa: the tables written to
    def _tables(conn, cursor, statement, *args):
        match = re.match(r"\s*INSERT INTO (\w+)", statement)
        if match:
            seeded.add(match.group(1))

    try:
        seed(make_member, make_officer)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", _tables)
    referring = {t.name for t in Base.metadata.sorted_tables
                 if any(fk.column.table.name == "members" for c in t.columns for fk in c.foreign_keys)}
    assert referring and referring <= seeded, referring - seeded


def test_every_item_appears_in_the_timeline_and_the_exports(app, make_member, make_officer):
    member = seed(make_member, make_officer)
    found = story.story(member)
    for section, text in EXPECTED:
        assert any(text in f"{e.title} {e.detail}" for e in found.entries if e.section == section), (section, text)

    data = story.export_data(None, member)
    session.commit()
    dumped = json.dumps(data, ensure_ascii=False)
    for _section, text in EXPECTED:
        assert text in dumped, text
    assert data["email"] == "keir@example.org" and data["tags"] == ["delegates"]
    assert data["suppressions"][0]["stream"] == "bulletins"
    assert data["Letters and replies from them"][0]["attachments"] == ["motion.pdf (3 bytes)"]
    assert "member.update" not in dumped and "phone_" not in dumped  # words, not identifiers
    times = [e["at"] for e in data["Timeline"] if e["at"]]
    assert len(times) == len(data["Timeline"]) >= len(EXPECTED) and times == sorted(times, reverse=True)  # newest first

    pdf = story.pdf(member)
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf)
    for _section, expected in EXPECTED:
        assert expected in text, expected


def test_what_members_wrote_is_printed_as_written_not_read_as_markup(app, make_member):
    """Names and letters go into the PDF as text: Markdown and HTML in them show literally."""
    member = make_member(first_name="**Bold**", last_name="<b>Hardie</b>", email="keir@example.org")
    session.add(InboundMessage(transport="file", dedupe_key="sha256:md", sha256="1" * 64, raw=b"x", size=1,
                               kind=InboundKind.REPLY, from_address="keir@example.org", subject="_Motion_ & <i>",
                               visible_text="# Not a heading\n- not a list\n[a link](http://x.example)",
                               member_id=member.id, received_at=T0))
    session.commit()
    text = _pdf_text(story.pdf(member))
    for literal in ("about **Bold** <b>Hardie</b>", "_Motion_ & <i>", "# Not a heading - not a list",
                    "[a link](http://x.example)"):
        assert literal in text, literal


def test_the_page_view_is_capped_and_bounded(app, make_member, make_officer):
    """Long histories are cut on the page (the export has all), and the number of queries does
    not grow with the history."""
    member = seed(make_member, make_officer)
    session.add_all([AuditEvent(actor="x", action="member.update", subject_type="member", subject_id=member.id,
                                changes={"ward": [None, f"W{i}"]}) for i in range(60)])
    session.commit()
    queries = []

    def count(*_args):
        queries.append(1)

    event.listens_for(session.get_bind(), "before_cursor_execute")(count)
    try:
        session.expire_all()
        found = story.story(session.get(type(member), member.id), limit=10)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", count)
    assert len(found.sections["changes"]) == 10 and found.more["changes"] is True
    assert len(queries) <= 16, len(queries)
    assert len(story.story(member, limit=None).sections["changes"]) == 62


def _pdf_text(data: bytes) -> str:
    """The PDF's text, read back with pypdf."""
    import io

    import pypdf

    return " ".join(" ".join((page.extract_text() or "").split()) for page in pypdf.PdfReader(io.BytesIO(data)).pages)
