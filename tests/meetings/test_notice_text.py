"""A meeting's title, venue and agenda are officers' words put into the notice's template source:
they must reach the member as written, never run as template code."""

from __future__ import annotations

from mailer.compose import personal
from mailer.compose.render import compile_campaign
from mailer.db import session
from mailer.meetings import noticing

TITLE = 'Budget {{ member.email }} {% if true %}ran{% endif %} {# note #}'


def test_template_code_in_a_meetings_words_is_shown_as_written(make_meeting, secretary, make_member):
    meeting = make_meeting(title=TITLE, venue_name="Hall {{ org_name }}")
    member = make_member(first_name="Ada", email="ada@example.org")
    campaign = noticing.meeting_campaign(secretary, meeting, "notice", "meeting-notice")
    session.commit()
    subject, html, text = compile_campaign(campaign).render(personal.context(campaign, member))
    assert TITLE in subject
    assert TITLE in text and "Hall {{ org_name }}" in text
    assert "ada@example.org" not in subject + text  # {{ member.email }} was not evaluated
    assert "{{ member.email }}" in html and "{% if true %}ran{% endif %}" in html
