"""CSRF scan: every state-changing rule (POST, PUT, PATCH, DELETE) refuses a request without a
token and one carrying another session's token. Only the endpoints that machines or mail clients
call without a page (RFC 8058 one-click unsubscribe, inbound webhooks) are exempt, each checking
its own token or secret. The JSON API (api.*) takes no CSRF token because it ignores cookies: a
forged request riding the victim's session must be refused there as unauthenticated (401)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from mailer.db import session
from mailer.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.security.conftest import FIGURES, seed_branch
from tests.security.test_route_scan import url_for_rule

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
CSRF_EXEMPT = {"public.one_click", "inbound_hooks.raw", "inbound_hooks.mailgun", "inbound_hooks.postmark",
               "inbound_hooks.sendgrid"}


def _token(client, path: str = "/login") -> str:
    page = client.get(path).data.decode()
    return re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page).group(1)


def _signed_in(app, officer):
    client = app.test_client()
    response = client.post("/login", data={"email": officer.email, "password": TEST_PASSWORD,
                                           "csrf_token": _token(client)})
    assert response.status_code == 302
    return client


def test_every_state_changing_route_needs_this_sessions_token(app, officers):
    app.config.update(WTF_CSRF_ENABLED=True, MAIL_CATCHER=True)  # read at each request
    world = seed_branch(officers.secretary, officers.branch_b, officers.secretary, officers.chair, "S", "")
    ids = {**world.ids, "attachment_id": world.ids["inbound_attachment_id"], "run_id": 1,
           "officer_id": officers.sec_a.id, "key": "x", "token": "x", "web_token": "x", "response": "attending"}
    victim = _signed_in(app, officers.secretary)
    attacker = _signed_in(app, officers.sec_a)
    stolen = _token(attacker, "/meetings/")  # valid, but for the attacker's session
    audit_before = session.scalar(select(func.count()).select_from(AuditEvent))
    failures, attempts, exempt = [], 0, 0
    for rule in app.url_map.iter_rules():
        for method in STATE_CHANGING:
            if method not in rule.methods:
                continue
            if rule.endpoint in CSRF_EXEMPT:
                exempt += 1
                continue
            ids["attachment_id"] = world.ids["campaign_attachment_id" if rule.endpoint.startswith(
                "admin.campaigns.") else "inbound_attachment_id"]
            url = url_for_rule(rule, ids)
            refused = 401 if rule.endpoint.startswith("api.") else 400
            for label, data in (("no token", {}), ("another session's token", {"csrf_token": stolen})):
                response = victim.open(url, method=method, data=data)
                attempts += 1
                if response.status_code != refused:
                    failures.append(f"{method} {url} ({rule.endpoint}) with {label}: {response.status_code}")
    session.expire_all()
    changed = session.scalar(select(func.count()).select_from(AuditEvent)) - audit_before
    # The scan's own check: with this session's token the same kind of request goes through.
    assert victim.post("/logout", data={"csrf_token": _token(victim, "/meetings/")}).status_code == 302
    FIGURES["csrf scan: attempts"] = attempts
    FIGURES["csrf scan: exempt rule-methods (own token or secret)"] = exempt
    FIGURES["csrf scan: failures"] = len(failures)
    print(f"\ncsrf scan: {attempts} attempts, {exempt} exempt, {len(failures)} failures, {changed} audited changes")
    assert attempts > 100
    assert not failures, "\n".join(failures)
    assert changed == 0  # nothing changed anywhere
