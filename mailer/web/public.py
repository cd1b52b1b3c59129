"""Pages members reach from their email, with no login: preferences, one-click unsubscribe, and
the web version and archive of bulletins (which carry no personal data)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_wtf import FlaskForm

from mailer import publication
from mailer.auth import csrf
from mailer.compose import personal
from mailer.compose.render import compile_campaign, render_subject
from mailer.db import session
from mailer.errors import Invalid
from mailer.inputs import PreferencesIn
from mailer.members import consent
from mailer.models import Stream
from mailer.compose.tokens import read_preferences_token
from mailer.web import forms

bp = Blueprint("public", __name__)

# --- the organisation's own look: members see its name and colour, not the officers' tool --------

DEFAULT_COLOUR = "#c8102e"


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def org_colours(setting: str | None) -> tuple[str, str]:
    """ORG_COLOUR as a header background, and the text colour readable on it (WCAG AA, 4.5:1).
    Only #rgb or #rrggbb is taken: anything else falls back to the default red."""
    colour = (setting or "").strip().lower()
    if re.fullmatch(r"#[0-9a-f]{3}", colour):
        colour = "#" + "".join(c * 2 for c in colour[1:])
    if not re.fullmatch(r"#[0-9a-f]{6}", colour):
        colour = DEFAULT_COLOUR
    white_contrast = 1.05 / (_luminance(colour) + 0.05)
    return colour, "#ffffff" if white_contrast >= 4.5 else "#1d1d1f"


@bp.route("/org.css")
def org_css():
    """The organisation's colour for the members' pages, as a stylesheet (the pages' CSP allows
    no inline style)."""
    background, ink = org_colours(current_app.config.get("ORG_COLOUR"))
    return Response(f":root {{ --org: {background}; --org-ink: {ink}; }}\n", mimetype="text/css")


@bp.context_processor
def _members_pages():
    return {"imprint": current_app.config.get("IMPRINT", ""), "contact_address": current_app.config.get("REPLY_ADDRESS", "")}


@bp.route("/u/<token>", methods=["GET"])
def preferences(token: str):
    """The confirmation page: shows the member's choices; a GET never changes anything
    (link scanners follow GETs)."""
    found = read_preferences_token(token)
    if found is None:
        return render_template("web/public/preferences.html", member=None, preview=token == "preview"), \
            200 if token == "preview" else 404
    member, campaign_id = found
    return render_template("web/public/preferences.html", member=member, token=token, form=FlaskForm(),
                           stream=publication.campaign_stream(campaign_id), saved=False)


@bp.route("/u/<token>", methods=["POST"])
@csrf.exempt
def one_click(token: str):
    """RFC 8058 one-click unsubscribe: a POST with no cookie and no CSRF token, answered 200 with
    no redirect, idempotent. It stops the stream of the campaign the link came in."""
    found = read_preferences_token(token)
    if found is None:
        return "Unknown or damaged link.\n", 404, {"Content-Type": "text/plain; charset=utf-8"}
    member, campaign_id = found
    stream = publication.campaign_stream(campaign_id)
    consent.unsubscribe(member, stream, "one-click", campaign_id)
    return f"Unsubscribed from {stream.value}.\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.route("/u/<token>/preferences", methods=["POST"])
def save_preferences(token: str):
    """The choices made on the preferences page (a form, with CSRF)."""
    found = read_preferences_token(token)
    if found is None:
        abort(404)
    member, campaign_id = found
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        choice = forms.parse(PreferencesIn).choice
    except Invalid:
        abort(400)  # a member's page: no form of ours sends anything else
    if choice == "none":
        consent.object_to_email(member, "preferences page", campaign_id)
    elif choice in ("notices", "all"):
        consent.set_consent(member, Stream.NOTICES, True, "preferences page", campaign_id)
        consent.set_consent(member, Stream.BULLETINS, choice == "all", "preferences page", campaign_id)
    else:
        abort(400)
    return render_template("web/public/preferences.html", member=member, token=token, form=FlaskForm(),
                           stream=publication.campaign_stream(campaign_id), saved=True)


@bp.route("/w/<web_token>")
def web_version(web_token: str):
    """A sent campaign as a web page, for a generic reader: no member's data in it."""
    campaign = publication.web_version(web_token)
    if campaign is None:
        abort(404)
    _subject, html, _text = compile_campaign(campaign).render(personal.context(campaign, None, personal.GENERIC))
    return html, 200, {"Content-Security-Policy": "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'"}


@bp.route("/archive")
def archive():
    """The bulletins sent to the whole constituency party, newest first."""
    entries = [(c, render_subject(c, personal.context(c, None, personal.GENERIC))) for c in publication.archive()]
    return render_template("web/public/archive.html", entries=entries)


# --- meetings: one-click answers and calendar feeds ---------------------------------------------

RESPONSES = {"attending": "I'll be there", "apologies": "Send my apologies", "not_attending": "I can't come"}


@bp.route("/r/<token>/<response>", methods=["GET", "POST"])
def meeting_response(token: str, response: str):
    """A notice's attendance link. The GET page submits itself (one click for a member) but a link
    scanner, which runs no script, changes nothing; without JavaScript the member presses the button."""
    from mailer.meetings import service as meetings
    from mailer.meetings.rules import MeetingError
    from mailer.models import Response

    if response not in RESPONSES:
        abort(404)
    if token == "preview":
        return render_template("web/public/response.html", preview=True, response=response, labels=RESPONSES)
    found = meetings.read_response_token(token)
    if found is None:
        return render_template("web/public/response.html", invalid=True, labels=RESPONSES), 404
    meeting, member = found
    error, saved = None, False
    if request.method == "POST":
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            meetings.record_response(meeting, member, Response(response), "link")
            saved = True
        except MeetingError as exc:
            session.rollback()
            error = str(exc)
    elif meeting.status.value in ("held", "cancelled"):
        error = ("This meeting has already been held: apologies can no longer be sent."
                 if meeting.status.value == "held" else "This meeting was cancelled.")
    current = meetings.response_of(meeting, member)
    return render_template("web/public/response.html", meeting=meeting, member=member, response=response,
                           labels=RESPONSES, token=token, form=FlaskForm(), saved=saved, error=error,
                           current=current), 409 if error and request.method == "POST" else 200


@bp.route("/calendar/<token>.ics")
def calendar_feed(token: str):
    """A body's subscribable feed of upcoming meetings (the address is signed: not guessable)."""
    from mailer.meetings import calendar as ical
    from mailer.meetings.feeds import read_feed_token, upcoming

    found = read_feed_token(token)
    if found is None:
        abort(404)
    branch, name = found
    return ical.feed(upcoming(branch.id if branch else None), name), 200, {
        "Content-Type": "text/calendar; charset=utf-8",
        "Content-Disposition": 'inline; filename="meetings.ics"'}


# --- meetings: the minutes' web copy -----------------------------------------------------------

@bp.route("/minutes/<web_token>")
def minutes(web_token: str):
    """The web copy of circulated minutes (the link in the circulation email); drafts are never shown."""
    from markdown_it import MarkdownIt

    from mailer.meetings.minutes import body_markdown

    found = publication.circulated_minutes(web_token)
    if found is None:
        abort(404)
    # Members' and correspondents' words stay text; their line breaks stay line breaks.
    html = MarkdownIt("commonmark", {"html": False, "breaks": True}).render(body_markdown(found))
    return render_template("web/public/minutes.html", minutes=found, html=html), 200, {"X-Robots-Tag": "noindex"}
