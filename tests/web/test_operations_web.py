"""The operations page (CLP secretary only) and /health (public, for monitors)."""

from __future__ import annotations

import json

from rq import SimpleWorker

from mailer.models import Role
from mailer.queue import get_queue
from tests.conftest import login


def boom(n):  # a job that fails, for the failed-jobs list
    raise ValueError(f"boom {n}")


def test_health_answers_200_with_counts_and_nothing_secret(make_app):
    app = make_app(MAIL_PASSWORD="relay-secret-pw", MAIL_USERNAME="relay-user")
    response = app.test_client().get("/health")
    assert response.status_code == 200
    report = response.get_json()
    assert report["ok"] is True and report["database"] is True and report["redis"] is True
    assert set(report["queues"]) == {"queued", "started", "scheduled", "failed"} and report["workers"] == 0
    text = response.get_data(as_text=True)
    assert "relay-secret-pw" not in text and "relay-user" not in text and "@" not in text


def test_health_answers_503_when_redis_is_away(make_app, tmp_path):
    make_app()  # the fixture empties the first app's queue afterwards: one that reaches Redis
    app = make_app(REDIS_URL=f"unix://{tmp_path}/no-redis.sock")
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert response.get_json()["redis"] is False and response.get_json()["database"] is True


def test_the_page_shows_queues_workers_failed_jobs_and_settings_but_no_password(make_app, make_officer):
    app = make_app(MAIL_PASSWORD="relay-secret-pw", MAIL_USERNAME="relay-user", MAIL_USE_TLS=True)
    with app.app_context():
        officer = make_officer()
        q = get_queue()
        job = q.enqueue(boom, 7)
        SimpleWorker([q], connection=q.connection).work(burst=True)
        client = app.test_client()
        login(client, officer.email)
        page = client.get("/operations/").get_data(as_text=True)
        assert "relay-secret-pw" not in page and "relay-user" in page and "STARTTLS" in page
        assert "ValueError: boom 7" in page and job.id in page
        assert "Failed</td><td>1</td>" in page
        assert "Send a test to secretary@example.org" in page
        # Retry puts the job back on the queue (POST only)
        assert client.get(f"/operations/jobs/{job.id}/retry").status_code == 405
        response = client.post(f"/operations/jobs/{job.id}/retry")
        assert response.status_code == 302
        assert job.id in q.get_job_ids() and job.id not in q.failed_job_registry
        assert "The job is back on the queue." in client.get("/operations/").get_data(as_text=True)


def test_the_page_lists_a_running_worker(make_app, make_officer):
    app = make_app()
    with app.app_context():
        officer = make_officer()
        q = get_queue()
        worker = SimpleWorker([q], connection=q.connection, name="ops-test-worker")
        worker.register_birth()
        try:
            client = app.test_client()
            login(client, officer.email)
            page = client.get("/operations/").get_data(as_text=True)
            assert "ops-test-worker" in page and "No worker is running" not in page
            assert json.loads(client.get("/health").data)["workers"] == 1
        finally:
            worker.register_death()


def test_a_test_send_goes_to_the_secretary_and_a_failure_is_explained(make_app, make_officer, smtp_server):
    app = make_app(MAIL_PORT=smtp_server.port)
    with app.app_context():
        email = make_officer().email
        client = app.test_client()
        login(client, email)
        page = client.post("/operations/test-email", follow_redirects=True).get_data(as_text=True)
        assert "A test message was sent to secretary@example.org" in page
        assert [m["Subject"] for m in smtp_server.to("secretary@example.org")] == ["Anytown CLP: test message from Mailer"]
    closed = make_app(MAIL_PORT=9)  # discard: nothing listens there
    with closed.app_context():
        client = closed.test_client()
        login(client, email)
        page = client.post("/operations/test-email", follow_redirects=True).get_data(as_text=True)
        assert "The test message was not sent." in page and "nothing is listening on that port" in page


def test_only_the_clp_secretary_may_open_it(make_app, make_officer, make_branch):
    app = make_app()
    with app.app_context():
        branch = make_branch("North")
        for role, branch_of in ((Role.BRANCH_SECRETARY, branch), (Role.CLP_OFFICER, None), (Role.CHAIR, None)):
            officer = make_officer(f"{role.value}@example.org", role, branch_of)
            client = app.test_client()
            login(client, officer.email)
            assert client.get("/operations/").status_code == 403
            assert client.post("/operations/test-email").status_code == 403
            assert client.post("/operations/jobs/x/retry").status_code == 403
            assert "/operations/" not in client.get("/").get_data(as_text=True)
