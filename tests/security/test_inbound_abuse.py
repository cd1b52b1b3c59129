"""Inbound abuse, as an outsider who can only email the reply address: spoofed bounces and
complaints silence no one, and template syntax in anything they write stays text in every email
Mailer sends (circulated minutes, officers' replies quoting them, bulletins to members)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from mailer.compose import drafts
from mailer.db import session, utcnow
from mailer.inbound import correspondence
from mailer.meetings import minutes as minutes_service
from mailer.meetings import service as meetings
from mailer.models import ConsentEvent, Delivery, EmailHealth, Member, MeetingKind, Suppression
from mailer.sending import campaigns
from mailer.compose.tokens import address_token, plus_address
from tests.conftest import confirm_and_send
from tests.inbound.conftest import raw_message
from tests.security.conftest import FIGURES, client_for, ingest
from tests.security.test_holes import _arf, _dsn
from tests.sending.conftest import run_queue

REPLY = "secretary@anytown-labour.example"
PAYLOADS = ["{{ member.email }}", "{{ 12345*11 }}", "{%endraw%}{{ member.membership_number }}{%raw%}",
            "{%- endraw %}{{ unsubscribe_url }}", "{% for x in range(3) %}X{% endfor %}", "{# hidden #}",
            "{{ ''.__class__.__mro__ }}", "{{ 1 / }}"]


def _send(officer, subject: str) -> dict[str, Delivery]:
    campaign = drafts.create(officer)
    drafts.update(officer, campaign, {"subject": subject, "body": "Dear {{ member.first_name }}, news.",
                                      "body_format": "markdown", "segment": {}})
    session.commit()
    campaigns.send_now(campaign, officer)
    session.commit()
    run_queue()
    session.expire_all()
    return {d.email: d for d in session.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id))}


def test_spoofed_bounces_and_complaints_suppress_no_one(app, officers, make_member):
    ann = make_member(first_name="Ann", email="ann@example.org")
    bob = make_member(first_name="Bob", email="bob@example.org")
    deliveries = _send(officers.secretary, "News")
    ann_delivery = deliveries["ann@example.org"]
    forged_token = plus_address(REPLY, "b-1-notavalidsignature")
    spoofs = [
        _dsn("bob@example.org"),  # names a member, carries nothing of ours
        _dsn("bob@example.org", to=forged_token, n=1),  # a token we never signed
        # Ann's real bounce token, naming Bob: the token ties the report to Ann's delivery only.
        _dsn("bob@example.org", to=plus_address(REPLY, address_token("b", ann_delivery.id)), n=2),
        _arf("bob@example.org", "<guessed@anytown-labour.example>", n=3),  # a Message-ID we never sent
        _arf("bob@example.org", ann_delivery.message_id, n=4),  # Ann's Message-ID, naming Bob
        raw_message(sender="MAILER-DAEMON@mx.example.org", subject="Delivery Status Notification (Failure)",
                    body="Delivery to the following recipient failed permanently:\n\n     bob@example.org\n\n"
                         "550 5.1.1 The email account that you tried to reach does not exist.\n"),
    ]
    for raw in spoofs:
        ingest(raw)
    session.expire_all()
    bob = session.get(Member, bob.id)
    assert bob.email_health is EmailHealth.OK and bob.bulletins_consent is not False
    assert not session.scalars(select(Suppression).where(Suppression.email == "bob@example.org")).all()
    assert not session.scalars(select(ConsentEvent).where(ConsentEvent.member_id == bob.id)).all()
    # The Message-ID of Ann's delivery did tie the last complaint to Ann: that one acts, on Ann only.
    assert session.get(Member, ann.id).bulletins_consent is False
    FIGURES["inbound abuse: spoofed reports"] = len(spoofs)
    print(f"\ninbound abuse: {len(spoofs)} spoofed bounces and complaints, "
          f"{session.scalar(select(func.count()).select_from(Suppression))} suppression (the one tied to us)")


def test_template_syntax_from_outside_is_text_in_every_email_we_send(app, officers, make_member, smtp_server):
    ann = make_member(first_name="Ann", email="ann@example.org", membership_number="L7654321")
    odd = make_member(first_name="{{ 12345*11 }}", last_name="{% raw %}", email="odd@example.org")
    payload = " ".join(PAYLOADS)
    letter = ingest(raw_message(sender=f'"{PAYLOADS[0]}" <clerk@council.example>', subject=f"Motion {PAYLOADS[1]}",
                                body=f"Dear Secretary,\n\n{payload}\n"))
    placements = 3

    # 1. An officer's reply quoting the letter.
    correspondence.reply(officers.secretary, letter.thread, letter, "Thank you.", with_quote=True)
    session.commit()
    # 2. The minutes with the letter attached, circulated to every member.
    starts = utcnow().replace(second=0, microsecond=0) + timedelta(days=14)
    meeting, _ = meetings.create(officers.secretary, {"title": "General meeting", "kind": MeetingKind.GENERAL.value,
                                                      "starts_at": starts, "ends_at": starts + timedelta(hours=2),
                                                      "venue_name": "Hall"})
    meetings.mark_held(officers.secretary, meeting)
    minutes_service.attach(officers.secretary, meeting, letter.thread)
    draft = minutes_service.start(officers.secretary, meeting)
    minutes_service.save(officers.secretary, draft, {draft.items[-1].id: f"A member moved: {payload}"})
    minutes_service.approve(officers.chair, draft)
    session.commit()
    response = confirm_and_send(client_for(app, officers.secretary), meeting.id, "minutes")
    assert response.status_code == 302
    # 3. A bulletin to a member whose own name is template syntax.
    _send(officers.secretary, "News")
    run_queue()

    sent = {"reply": smtp_server.to("clerk@council.example"), "minutes+bulletin to Ann": smtp_server.to(ann.email),
            "minutes+bulletin to Odd": smtp_server.to(odd.email)}
    assert [len(v) for v in sent.values()] == [1, 2, 2], {k: len(v) for k, v in sent.items()}
    checked = 0
    for what, messages in sent.items():
        for message in messages:
            for part in message.walk():
                if part.get_content_type() not in ("text/plain", "text/html"):
                    continue
                text = part.get_content()
                checked += 1
                assert "135795" not in text, what  # {{ 12345*11 }} never ran
                assert "L7654321" not in text, what  # nor {{ member.membership_number }}
                assert "<class" not in text and "&lt;class" not in text, what  # nor the sandbox escape
                if "inutes" in (message["Subject"] or "") or what == "reply":
                    shown = text.replace("&#34;", '"').replace("&#39;", "'")
                    assert "{{ member.email }}" in shown and "{{ 12345*11 }}" in shown, what
        if what.endswith("Odd"):
            bulletin = [m for m in messages if m["Subject"] == "News"][0]
            assert "Dear {{ 12345*11 }}" in bulletin.get_body(("plain",)).get_content()
    FIGURES["inbound abuse: template payloads"] = len(PAYLOADS)
    FIGURES["inbound abuse: email parts checked"] = checked
    print(f"\ninbound abuse: {len(PAYLOADS)} template payloads in {placements} places, {checked} email parts checked")
