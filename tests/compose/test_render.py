"""From what an officer writes to what a member receives: Markdown and MJML bodies, sanitising,
personalisation with fallbacks, and errors reported with their line."""

from __future__ import annotations

import pytest

from mailer.compose import drafts, personal, starters
from mailer.compose.render import TemplateError, compile_campaign, markdown_to_html
from mailer.db import session
from mailer.models import BodyFormat, Role


@pytest.fixture
def draft(app, make_officer):
    officer = make_officer()

    def factory(body: str, body_format: BodyFormat = BodyFormat.MARKDOWN, subject: str = "Hello {{ member.first_name }}",
                **values):
        campaign = drafts.create(officer)
        drafts.update(officer, campaign, {"body": body, "body_format": body_format.value, "subject": subject,
                                          **values})
        session.commit()
        return campaign

    return factory


def render(campaign, member=None):
    return compile_campaign(campaign).render(personal.context(campaign, member))


def test_markdown_body_is_personalised_in_html_and_text(draft, make_member):
    campaign = draft("Dear {{ member.first_name }},\n\n**Canvassing** in {{ member.ward }} on Saturday.",
                     preheader="Out this weekend")
    member = make_member(first_name="Keir", ward="Castle")
    subject, html, text = render(campaign, member)
    assert subject == "Hello Keir"
    assert "Dear Keir," in html and "<strong>Canvassing</strong> in Castle" in html
    assert "Dear Keir," in text and "**Canvassing** in Castle" in text
    assert "Out this weekend" in html  # the preheader


def test_blank_first_name_falls_back_to_member(draft, make_member):
    campaign = draft("Dear {{ member.first_name }},")
    _subject, html, text = render(campaign, make_member(first_name="", last_name=""))
    assert "Dear member," in html and "Dear member," in text


def test_member_values_are_escaped_in_html(draft, make_member):
    campaign = draft("Hello {{ member.last_name }}")
    _s, html, text = render(campaign, make_member(last_name="<script>x</script>"))
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "<script>x</script>" in text  # plain text is not HTML


def test_officer_html_is_sanitised_before_mjml(draft):
    campaign = draft('Hi <script>alert(1)</script><a href="javascript:alert(2)">x</a>'
                     '<img src="https://example.org/a.png" onerror="alert(3)"><iframe src="https://evil"></iframe>'
                     '<style>body{}</style>')
    _s, html, _t = render(campaign)
    for bad in ("<script>alert", "javascript:", "onerror", "<iframe", "body{}"):
        assert bad not in html, bad
    assert 'src="https://example.org/a.png"' in html


def test_layout_carries_imprint_reason_and_links(draft, app):
    app.config["IMPRINT"] = "Promoted by A. Agent on behalf of Testtown CLP, at 1 Road, Testtown."
    campaign = draft("Body")
    _s, html, text = render(campaign)
    for part in (html, text):
        assert "Promoted by A. Agent on behalf of Testtown CLP" in part
        assert app.config["BULLETIN_REASON"][:40] in part
        assert "/u/preview" in part and f"/w/{campaign.web_token}" in part


def test_unknown_variable_is_reported_with_its_line(draft):
    campaign = draft("Line one\nLine two\nDear {{ member.frist_name }}")
    [problem] = drafts.problems(campaign)
    assert problem.line == 3 and "frist_name" in problem.message


def test_template_syntax_error_is_reported_with_its_line(draft):
    campaign = draft("ok\n{% if member.ward %}\nno end")
    [problem] = drafts.problems(campaign)
    assert problem.line == 3 or problem.line == 2
    assert "endif" in problem.message or "end of template" in problem.message


def test_mjml_body_renders_and_is_sanitised(draft, make_member):
    body = ('<mj-section><mj-column>\n<mj-text>Hi {{ member.first_name }} <b>bold</b> <script>x()</script></mj-text>\n'
            '<mj-button href="https://example.org/join">Join</mj-button>\n'
            '<mj-button href="javascript:evil()">Bad</mj-button>\n</mj-column></mj-section>')
    campaign = draft(body, BodyFormat.MJML)
    _s, html, text = render(campaign, make_member(first_name="Ada"))
    assert "Hi Ada <b>bold</b>" in html and "x()" not in html.split("Hi Ada")[1][:200]
    assert "https://example.org/join" in html and "javascript:" not in html
    assert "Hi Ada" in text


def test_invalid_mjml_is_reported_with_its_line(draft):
    campaign = draft("<mj-section>\n<mj-column>\n<mj-text>unclosed\n</mj-column>\n</mj-section>", BodyFormat.MJML)
    [problem] = drafts.problems(campaign)
    assert problem.line == 4 and "MJML" in problem.message


def test_unknown_mjml_element_is_refused_with_its_line(draft):
    campaign = draft("<mj-section>\n<mj-column><mj-raw><script>x</script></mj-raw></mj-column>\n</mj-section>",
                     BodyFormat.MJML)
    [problem] = drafts.problems(campaign)
    assert "mj-raw" in problem.message and problem.line == 2


def test_markdown_tables_and_links_survive():
    html = markdown_to_html("| a | b |\n|---|---|\n| 1 | 2 |\n\n[Join](https://labour.org.uk/join)")
    assert "<table>" in html and '<a href="https://labour.org.uk/join">Join</a>' in html


@pytest.mark.parametrize("starter", [s.slug for s in starters.all_starters()])
def test_every_starter_renders_without_problems(app, make_officer, starter):
    campaign = drafts.create(make_officer(f"{starter}@example.org", Role.CLP_SECRETARY), starter)
    assert drafts.problems(campaign) == []
    subject, html, text = render(campaign)
    assert subject and "Jane" in html and "Jane" in text


def test_there_are_the_five_starters():
    names = {s.slug for s in starters.all_starters()}
    assert {"weekly-bulletin", "meeting-notice", "agm-notice", "welcome", "minutes"} <= names


def test_template_error_str_names_the_place():
    assert str(TemplateError("boom", 4)) == "body, line 4: boom"
