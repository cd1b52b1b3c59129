"""Signing in and out, the login wall, CSRF and password resets (through a real worker and SMTP)."""

from __future__ import annotations

import re

import pytest
from rq import SimpleWorker

from mailer.db import session
from mailer.models import AuditEvent, Officer
from tests.conftest import TEST_PASSWORD, login


def test_login_page_answers(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b'name="password"' in response.data


@pytest.mark.parametrize("path", ["/", "/members/", "/members/1", "/imports/", "/imports/new", "/officers/",
                                  "/audit/", "/outbox/"])
def test_every_admin_page_needs_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_every_admin_route_is_behind_the_login_wall(app):
    """No route outside the public allowlist escapes the admin blueprint's login check, or the API's
    token check (tests/security/test_route_scan.py requests them all)."""
    from mailer.auth import PUBLIC_ENDPOINTS

    for rule in app.url_map.iter_rules():
        assert rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith(("admin.", "api.")), rule.endpoint


def test_sign_in_and_out(client, make_officer):
    officer = make_officer()
    response = login(client, officer.email)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert session.get(Officer, officer.id).last_login_at is not None
    client.post("/logout")
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(client, make_officer):
    officer = make_officer()
    response = login(client, officer.email, "wrong-password-123")
    assert response.status_code == 200
    assert b"do not match" in response.data
    assert client.get("/").status_code == 302


def test_disabled_officer_cannot_sign_in(client, make_officer):
    officer = make_officer()
    officer.active = False
    session.commit()
    assert login(client, officer.email).status_code == 200
    assert client.get("/").status_code == 302


def test_login_redirects_only_within_the_site(client, make_officer):
    officer = make_officer()
    response = client.post("/login?next=https://evil.example/", data={"email": officer.email, "password": TEST_PASSWORD})
    assert response.headers["Location"] == "/"


def test_session_cookie_flags(client, make_officer):
    officer = make_officer()
    response = login(client, officer.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_forms_need_a_csrf_token(make_app, make_officer):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        officer = make_officer()
        client = app.test_client()
        response = client.post("/login", data={"email": officer.email, "password": TEST_PASSWORD})
        assert response.status_code == 400
        assert client.get("/").status_code == 302  # not signed in
        page = client.get("/login").data.decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        response = client.post("/login", data={"email": officer.email, "password": TEST_PASSWORD, "csrf_token": token})
        assert response.status_code == 302


def test_password_reset_by_emailed_link(make_app, make_officer, smtp_server):
    app = make_app(MAIL_PORT=smtp_server.port, BASE_URL="https://mailer.example.org")
    with app.app_context():
        officer = make_officer()
        client = app.test_client()
        response = client.post("/reset", data={"email": officer.email.upper()}, follow_redirects=True)
        assert b"reset link is on its way" in response.data

        from mailer.queue import get_queue, redis_connection

        SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True)  # a real RQ worker
        [message] = smtp_server.to(officer.email)
        link = re.search(r"https://mailer\.example\.org/reset/\S+", message.get_content()).group(0)
        path = link.removeprefix("https://mailer.example.org")

        response = client.post(path, data={"password": "a-brand-new-pass", "confirm": "a-brand-new-pass"})
        assert response.status_code == 302
        assert login(client, officer.email, "a-brand-new-pass").status_code == 302
        # The link works once: the new password hash voids it.
        response = client.get(path)
        assert response.status_code == 302 and "/reset" in response.headers["Location"]
        assert session.query(AuditEvent).filter_by(action="officer.password", subject_id=officer.id).count() == 1


def test_reset_for_unknown_email_says_the_same_and_sends_nothing(make_app, smtp_server):
    app = make_app(MAIL_PORT=smtp_server.port)
    with app.app_context():
        client = app.test_client()
        response = client.post("/reset", data={"email": "nobody@example.org"}, follow_redirects=True)
        assert b"reset link is on its way" in response.data
        from mailer.queue import get_queue

        assert get_queue().count == 0


def test_expired_or_forged_reset_token_is_refused(app, make_officer):
    from mailer.officers.service import make_reset_token, officer_from_reset_token

    officer = make_officer()
    token = make_reset_token(officer)
    assert officer_from_reset_token(token).id == officer.id
    assert officer_from_reset_token(token[:-2] + "xx") is None
    app.config["PASSWORD_RESET_MAX_AGE"] = -1
    assert officer_from_reset_token(token) is None
