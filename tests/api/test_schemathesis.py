"""The API driven from its own OpenAPI document by schemathesis: generated requests for every
operation, valid and not; no server error, every answer (status, content type, headers, body) as
the document says; and a branch secretary's token never receives another branch's data."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from schemathesis.specs.openapi.checks import positive_data_acceptance

from mailer.db import session
from mailer.models import Role, Stream

MARKER = "MARKER-OTHER-BRANCH"
# Not checked: that every schema-valid request is accepted. A value can be well formed and still
# break a rule no schema states (an address that cannot receive mail, a membership number that
# belongs to someone else); those answer 422 naming the field, which the other checks still hold to.
EXAMPLES = int(os.environ.get("MAILER_SCHEMATHESIS_EXAMPLES", "15"))
TOKENS: dict[str, str] = {}


@pytest.fixture
def api_schema(make_app, make_branch, make_member, make_officer, smtp_server):
    from mailer.compose import drafts
    from mailer.officers import tokens

    app = make_app(MAIL_PORT=smtp_server.port)  # test sends reach a real SMTP server
    with app.app_context():
        north, south = make_branch("Northgate"), make_branch("Southgate")
        for n in range(3):
            make_member(first_name=f"North{n}", email=f"north{n}@example.org", branch=north, tags=[])
            make_member(first_name=MARKER, last_name=MARKER, email=f"marker{n}@example.org", branch=south,
                        ward=MARKER, phone=MARKER)
        secretary = make_officer("secretary@example.org", Role.CLP_SECRETARY)
        branch_secretary = make_officer("north@example.org", Role.BRANCH_SECRETARY, branch=north)
        theirs = make_officer("south@example.org", Role.BRANCH_SECRETARY, branch=south)
        campaign = drafts.create(theirs, stream=Stream.BULLETINS)
        drafts.update(theirs, campaign, {"name": MARKER, "subject": MARKER, "body": MARKER})
        drafts.create(branch_secretary, stream=Stream.NOTICES)
        from tests.api.test_api import _letter

        _letter("North0 <north0@example.org>", "Apologies", "Sorry, I cannot come on Thursday.\n")
        _letter(f"{MARKER} <marker0@example.org>", MARKER, f"{MARKER} private words\n")
        from datetime import timedelta

        from mailer.db import utcnow
        from mailer.meetings import service as meetings

        for body in (north, south):
            meetings.create(secretary, {"title": MARKER if body is south else "Northgate branch meeting",
                                        "kind": "branch", "branch_id": body.id,
                                        "venue_name": MARKER if body is south else "Hall",
                                        "starts_at": utcnow() + timedelta(days=40)})
        TOKENS["clp"] = tokens.create(secretary, "schemathesis")[1]
        TOKENS["branch"] = tokens.create(branch_secretary, "schemathesis")[1]
        session.commit()
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


def drive(schema, token: str, check) -> dict:
    """Every operation of the document, EXAMPLES generated requests each (valid and invalid)."""
    seen = {"calls": 0, "operations": set()}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                              excluded_checks=[positive_data_acceptance])
            seen["calls"] += 1
            seen["operations"].add(f"{case.method.upper()} {operation.path}")
            check(case, response)

        run()
    return seen


def documented(schema) -> set[str]:
    return {f"{method.upper()} {schema.raw_schema.get('basePath', '')}{path}"
            for path, ops in schema.raw_schema["paths"].items() for method in ops}


def test_every_operation_answers_as_documented(api_schema):
    def no_server_error(case, response):
        assert response.status_code < 500, (case.method, case.path, response.text[:300])

    seen = drive(api_schema, TOKENS["clp"], no_server_error)
    print(f"\nschemathesis, CLP secretary: {seen['calls']} requests over {len(seen['operations'])} operations")
    assert {op.split(" ", 1)[0] + " " + op.split(" ", 1)[1] for op in seen["operations"]} == documented(api_schema)


def test_a_branch_secretarys_token_never_sees_another_branch(api_schema):
    def no_marker(case, response):
        assert MARKER not in response.text, (case.method, case.path, response.text[:300])

    seen = drive(api_schema, TOKENS["branch"], no_marker)
    print(f"\nschemathesis, branch secretary: {seen['calls']} requests, none showing another branch's data")
    assert seen["operations"] == documented(api_schema)
