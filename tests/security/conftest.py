"""The attack suite: two branches, their secretaries, CLP officers, and B's records seeded with a
marker string, so that a leak into anything branch A's secretary receives can be seen.

Every scan adds to FIGURES; the figures are printed at the end of the run (also without -s)."""

from __future__ import annotations

from collections import Counter

import pytest

from mailer.db import session
from mailer.models import Role
from tests.conftest import login

MARKER = "ZQXMARKERB"  # in every one of branch B's records; must never reach branch A's secretary

FIGURES: Counter = Counter()


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("attack suite figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture
def app(make_app, smtp_server):
    """The app on a real SMTP server (aiosmtpd) that keeps what it is sent."""
    app = make_app(MAIL_PORT=smtp_server.port, BASE_URL="https://mailer.example.org",
                   SENDER_ADDRESS="secretary@anytown-labour.example", REPLY_ADDRESS="secretary@anytown-labour.example",
                   RETRY_BASE_SECONDS=0)
    with app.app_context():
        yield app


@pytest.fixture
def officers(app, make_branch, make_officer):
    """The CLP secretary, a CLP officer, the chair, and the secretaries of branches A and B."""
    a, b = make_branch("Northgate"), make_branch(f"Southgate {MARKER}")

    class Cast:
        branch_a, branch_b = a, b
        secretary = make_officer("secretary@anytown-labour.example", Role.CLP_SECRETARY)
        officer = make_officer("vicechair@anytown-labour.example", Role.CLP_OFFICER)
        chair = make_officer("chair@anytown-labour.example", Role.CHAIR)
        sec_a = make_officer("north@anytown-labour.example", Role.BRANCH_SECRETARY, branch=a)
        sec_b = make_officer("south@anytown-labour.example", Role.BRANCH_SECRETARY, branch=b)

    session.commit()
    return Cast


def client_for(app, officer):
    """A fresh client signed in as `officer` through the real form."""
    client = app.test_client()
    response = login(client, officer.email)
    assert response.status_code == 302, response.data
    return client


def ingest(raw: bytes):
    """Store and process one inbound message through the real queue and worker."""
    from mailer.inbound import store
    from mailer.models import InboundMessage
    from tests.sending.conftest import run_queue

    message, _created = store.store(raw, "file")
    session.commit()  # the caller's commit queues its processing
    run_queue()
    session.expire_all()
    return session.get(InboundMessage, message.id)


def _letter_with_file(sender: str, subject: str, body: str, filename: str, data: bytes, html: str | None = None) -> bytes:
    from email.message import EmailMessage
    from email.utils import make_msgid

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "secretary@anytown-labour.example", subject
    msg["Message-ID"] = make_msgid(domain="mail.example.net")
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return bytes(msg)


class World:
    """Ids of one branch's records, by the URL parameter names that reach them."""

    def __init__(self):
        self.ids: dict[str, int | str] = {}


def seed_branch(officer, branch, clp_secretary, chair, tag: str, marker: str = "") -> World:
    """A branch's records of every kind, each carrying `marker` in its names, subjects and bodies:
    members, a sent campaign (deliveries) with an attachment, a thread with messages, an inbound
    attachment and a reply, a meeting with a paper, a register answer, minutes, and a bounce."""
    from datetime import timedelta

    from mailer.compose import drafts
    from mailer.db import utcnow
    from mailer.inbound import correspondence
    from mailer.meetings import minutes as minutes_service
    from mailer.meetings import service as meetings
    from mailer.models import Attendance, Member, MemberStatus, MeetingKind, Response, Tag
    from mailer.sending import campaigns
    from tests.sending.conftest import run_queue

    world = World()
    m = marker
    member = Member(membership_number=f"{tag}0001", first_name=f"Bea{m}", last_name=f"Branch{m}",
                    email=f"bea.{tag.lower()}@example.org", status=MemberStatus.ACTIVE, branch_id=branch.id,
                    ward=f"Ward {m}", polling_district=f"PD{m}", postcode="AN1 1AA", phone="07700 900000")
    member.tags = [Tag(name=f"{tag} tag {m}")]
    session.add(member)
    session.commit()
    world.member = member
    world.ids["member_id"] = member.id

    campaign = drafts.create(officer)
    drafts.update(officer, campaign, {"name": f"{tag} bulletin {m}", "subject": f"{tag} news {m}",
                                      "body": f"Dear {{{{ member.first_name }}}}, {tag} news {m}.",
                                      "body_format": "markdown", "segment": {}})
    attachment = drafts.add_attachment(officer, campaign, f"{tag}-paper-{m}.pdf", b"%PDF-1.4 " + m.encode(),
                                       "application/pdf")
    session.commit()
    world.ids["campaign_id"] = campaign.id
    world.ids["campaign_attachment_id"] = attachment.id
    campaigns.send_now(campaign, officer)
    session.commit()
    run_queue()

    letter = ingest(_letter_with_file(f"Bea {m} <{member.email}>", f"{tag} letter {m}", f"A letter {m}.",
                                      f"{tag}-file-{m}.pdf", b"%PDF-1.4 " + m.encode(), html=f"<p>Letter {m}</p>"))
    assert letter.thread is not None and letter.thread.branch_id == branch.id, "the letter must be the branch's"
    world.ids["thread_id"] = letter.thread_id
    world.ids["message_id"] = letter.id
    world.ids["inbound_attachment_id"] = letter.attachments[0].id
    answer = correspondence.reply(officer, letter.thread, letter, f"Our answer {m}.")
    session.commit()
    run_queue()
    world.ids["reply_id"] = answer.id

    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=30)
    meeting, _ = meetings.create(officer, {"title": f"{tag} meeting {m}", "kind": MeetingKind.GENERAL.value,
                                           "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                                           "venue_name": f"Hall {m}", "branch_id": branch.id})
    session.commit()
    paper = meetings.add_paper(officer, meeting.agenda[0], f"{tag}-motion-{m}.pdf", b"%PDF-1.4 " + m.encode(),
                               "application/pdf")
    meetings.record_response(meeting, member, Response.APOLOGIES, "link")
    minutes_service.attach(officer, meeting, letter.thread)
    draft = minutes_service.start(officer, meeting)
    minutes_service.save(officer, draft, {draft.items[-1].id: f"Minuted {m}."})
    session.commit()
    world.ids["meeting_id"] = meeting.id
    world.ids["paper_id"] = paper.id
    world.ids["attendance_id"] = session.query(Attendance).filter_by(meeting_id=meeting.id).first().id
    world.meeting = meeting
    return world
