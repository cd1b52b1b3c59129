"""Route scan: every URL rule, every method, without a session. Only the public allowlist kept in
mailer/auth.py (PUBLIC_ENDPOINTS) may answer anything but the login redirect, 401 or 404."""

from __future__ import annotations

from mailer.auth import PUBLIC_ENDPOINTS
from tests.security.conftest import FIGURES, seed_branch

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def url_for_rule(rule, ids: dict) -> str:
    """The rule's URL with real ids where there are records (so a missing record's 404 cannot hide
    a missing login check), and harmless values elsewhere."""
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name].__class__.__name__
        values[name] = ids.get(name, 1) if converter == "IntegerConverter" else ids.get(name, "x")
    return rule.build(values, append_unknown=False)[1]


def scan(app, ids: dict) -> tuple[list[str], int, int]:
    """(failures, requests made, public rule-methods skipped)."""
    client = app.test_client()
    failures, requests, public = [], 0, 0
    for rule in app.url_map.iter_rules():
        url = url_for_rule(rule, ids)
        for method in METHODS:
            if method not in rule.methods:
                continue
            if rule.endpoint in PUBLIC_ENDPOINTS:
                public += 1
                continue
            requests += 1
            response = client.open(url, method=method)
            login_wall = response.status_code == 302 and response.headers["Location"].startswith("/login")
            if not (login_wall or response.status_code in (401, 404)):
                failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}")
    return failures, requests, public


def test_every_route_needs_a_session_unless_it_is_public(app, officers):
    world = seed_branch(officers.sec_b, officers.branch_b, officers.secretary, officers.chair, "S", "ZQX")
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    assert PUBLIC_ENDPOINTS <= endpoints, f"allowlisted endpoints that no longer exist: {PUBLIC_ENDPOINTS - endpoints}"
    failures, requests, public = scan(app, world.ids)
    rules = len(list(app.url_map.iter_rules()))
    FIGURES["route scan: rules"] = rules
    FIGURES["route scan: requests without a session"] = requests
    FIGURES["route scan: public (allowlisted) rule-methods"] = public
    FIGURES["route scan: failures"] = len(failures)
    print(f"\nroute scan: {rules} rules, {requests} requests without a session, {public} public rule-methods, "
          f"{len(failures)} failures")
    assert requests > 80
    assert not failures, "\n".join(failures)


def test_an_unclassified_route_fails_the_scan(make_app):
    """The scan's own check: a route added outside the admin blueprint, and not classified, is caught."""
    app = make_app()

    @app.route("/leaky", methods=["GET", "POST"])
    def leaky():
        return "members' data"

    failures, _requests, _public = scan(app, {})
    assert failures == ["GET /leaky (leaky): 200", "POST /leaky (leaky): 200"]
