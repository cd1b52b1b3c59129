"""Minutes: pre-filled from the agenda and the register, correspondence attached as summaries with
the full threads in an appendix, approved by the chair, circulated with a PDF, adopted later."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailer.db import session
from mailer.inbound import store
from mailer.meetings import minutes, pdf, service
from mailer.meetings.rules import MeetingError
from mailer.models import (AuditEvent, InboundMessage, MeetingCampaign, MinutesStatus, Response, Role)
from tests.inbound.conftest import raw_message
from tests.sending.conftest import run_queue


@pytest.fixture
def held(make_meeting, secretary, make_member):
    ann = make_member(first_name="Ann", last_name="Able", email="ann@example.org")
    bob = make_member(first_name="Bob", last_name="Baker", email="bob@example.org")
    meeting = make_meeting()
    service.record_response(meeting, bob, Response.APOLOGIES, "link")
    service.mark_present(secretary, meeting, {ann.id})
    service.mark_held(secretary, meeting)
    session.commit()
    return meeting


def _letter() -> InboundMessage:
    message, _ = store.store(raw_message(sender="Town Clerk <clerk@council.example>", subject="Polling stations 2027",
                                         body="Dear Secretary,\n\nThe polling station at the school moves to the "
                                              "library from May.\n\nRegards,\nThe Town Clerk\n"), "file")
    session.commit()  # the caller's commit queues its processing
    run_queue()
    session.expire_all()
    return session.get(InboundMessage, message.id)


def test_minutes_are_prefilled_from_agenda_and_register(held, secretary):
    draft = minutes.start(secretary, held)
    session.commit()
    assert draft.present_text == "Ann Able"
    assert [i.title for i in draft.items][:3] == ["Apologies", "Minutes of the last meeting and matters arising",
                                                 "Correspondence"]
    assert draft.items[0].text == "Apologies were received from: Bob Baker."
    assert minutes.start(secretary, held).id == draft.id  # one set of minutes per meeting


def test_correspondence_is_summarised_and_appended(held, secretary):
    letter = _letter()
    link = minutes.attach(secretary, held, letter.thread)
    minutes.attach(secretary, held, letter.thread)  # once only
    session.commit()
    draft = minutes.start(secretary, held)
    text = minutes.body_markdown(draft)
    summary_line = next(line for line in text.splitlines() if "Polling stations 2027" in line)
    assert "Town Clerk" in summary_line and "moves to the library" in summary_line
    assert "# Appendix: correspondence" in text and "Regards," in text.split("# Appendix")[1]
    assert link.item.role == "correspondence"


def test_only_the_chair_approves_and_approved_minutes_are_frozen(held, secretary, make_officer):
    draft = minutes.start(secretary, held)
    minutes.save(secretary, draft, {draft.items[3].id: "The treasurer reported a balance of £1,204."})
    with pytest.raises(MeetingError, match="Only the chair"):
        minutes.approve(secretary, draft)
    chair = make_officer("chair@anytown-labour.example", Role.CHAIR)
    minutes.approve(chair, draft)
    session.commit()
    assert draft.status is MinutesStatus.APPROVED and draft.approved_by_id == chair.id
    with pytest.raises(MeetingError, match="no longer be edited"):
        minutes.save(secretary, draft, {draft.items[3].id: "changed"})
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "minutes")))
    assert {"minutes.create", "minutes.edit", "minutes.approve"} <= actions


def test_circulation_sends_the_minutes_with_a_pdf_and_a_web_copy(held, secretary, make_officer, scripted_smtp, client):
    letter = _letter()
    minutes.attach(secretary, held, letter.thread)
    draft = minutes.start(secretary, held)
    minutes.approve(make_officer("chair@anytown-labour.example", Role.CHAIR), draft)
    session.commit()
    with pytest.raises(MeetingError):
        minutes.adopt(secretary, draft, held)  # at a later meeting only
    minutes.circulate(secretary, draft)
    session.commit()
    run_queue()
    [message] = scripted_smtp.received_by("ann@example.org")
    assert message["Subject"].startswith("Minutes: General meeting")
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == "minutes.pdf" and attached.get_content().startswith(b"%PDF")
    text = message.get_body(("plain",)).get_content()
    assert "Polling stations 2027" in text and f"/minutes/{draft.web_token}" in text
    assert session.scalar(select(MeetingCampaign.purpose).where(MeetingCampaign.campaign_id ==
                                                                 draft.circulation_campaign_id)) == "minutes"


def test_adoption_at_the_next_meeting(held, secretary, make_officer, make_meeting):
    draft = minutes.start(secretary, held)
    minutes.approve(make_officer("chair@anytown-labour.example", Role.CHAIR), draft)
    session.commit()
    following = make_meeting(days=40, title="Next general meeting")
    item = next(i for i in following.agenda if i.role == "last_minutes")
    assert item.last_minutes_id == draft.id  # "minutes of the last meeting" links them
    minutes.adopt(secretary, draft, following)
    session.commit()
    assert draft.status is MinutesStatus.ADOPTED and draft.adopted_at_meeting_id == following.id


def test_member_words_cannot_run_as_template_code(held, secretary, make_officer):
    draft = minutes.start(secretary, held)
    minutes.save(secretary, draft, {draft.items[4].id: "Motion: {{ config }} {% for x in y %}{% endraw %}"})
    minutes.approve(make_officer("chair@anytown-labour.example", Role.CHAIR), draft)
    session.commit()
    minutes.circulate(secretary, draft)
    session.commit()
    from mailer.compose.drafts import problems
    from mailer.models import Campaign

    campaign = session.get(Campaign, draft.circulation_campaign_id)
    assert problems(campaign) == []


def test_printable_documents_are_pdfs(held, secretary):
    draft = minutes.start(secretary, held)
    session.commit()
    for data in (minutes.minutes_pdf(draft), pdf.notice_pdf(held), pdf.agenda_pdf(held), pdf.signin_pdf(held)):
        assert data.startswith(b"%PDF") and len(data) > 800


def test_the_posted_notice_says_who_it_is_from_and_whom_to_contact(app, held):
    from mailer.meetings.pdf import notice_markdown

    text = notice_markdown(held)
    assert app.config["ORG_NAME"] in text
    assert f"contact {app.config['SENDER_NAME']}: {app.config['REPLY_ADDRESS']}." in text
    assert app.config["IMPRINT"] in text
    assert f"{held.title} of {held.body_name}" in text or held.body_name.lower() in held.title.lower()
