"""Live progress beyond the overview: a meeting's notice or minutes circulation shows a progress bar
that the page's script fills from the campaign's progress.json, without reloading."""

from __future__ import annotations

import pytest

from tests.conftest import confirm_and_send, login
from tests.sending.conftest import run_queue
from tests.web.test_meetings_web import create, local


@pytest.fixture
def signed_in(make_app, smtp_server, make_officer):
    """A CLP secretary's client on an app whose relay is a real SMTP server."""
    app = make_app(MAIL_PORT=smtp_server.port)
    with app.app_context():
        client = app.test_client()
        login(client, make_officer().email)
        yield client


def test_a_meeting_being_noticed_shows_live_progress_until_sent(signed_in, make_member):
    for n in range(3):
        make_member(email=f"m{n}@example.org")
    meeting_id = create(signed_in, title="Branch meeting", starts_at=local(20), ends_at=local(20, 21, 0))
    confirm_and_send(signed_in, meeting_id, "notice")
    page = signed_in.get(f"/meetings/{meeting_id}").get_data(as_text=True)
    campaign_id = int(page.split('data-url="/campaigns/')[1].split("/")[0])
    assert f'<div class="send-progress" data-url="/campaigns/{campaign_id}/progress.json">' in page
    assert 'src="/static/dashboard.js"' in page
    progress = signed_in.get(f"/campaigns/{campaign_id}/progress.json").get_json()
    assert progress["live"] is True and progress["sent"] == 0
    run_queue()
    progress = signed_in.get(f"/campaigns/{campaign_id}/progress.json").get_json()
    assert progress["live"] is False and progress["sent"] == 3 and progress["percent"] == 100
    page = signed_in.get(f"/meetings/{meeting_id}").get_data(as_text=True)
    assert "send-progress" not in page and "dashboard.js" not in page  # finished: nothing left to poll
