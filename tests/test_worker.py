"""`python worker.py`, as production runs it: a real process on the test database and Redis, sending
through a real SMTP server, stopped by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mailer import jobs, queue

pytestmark = pytest.mark.slow

WORKER_PY = Path(__file__).resolve().parents[1] / "worker.py"


def worker_env(app, smtp_port: int, instance: Path, **extra: str) -> dict[str, str]:
    """The environment production would give the worker: the very settings the test app uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env.update(MAILER_DATABASE_URL=app.config["DATABASE_URL"], MAILER_REDIS_URL=app.config["REDIS_URL"],
               MAILER_SECRET_KEY=app.config["SECRET_KEY"], MAILER_QUEUE_NAME=app.config["QUEUE_NAME"],
               MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port), MAILER_INSTANCE_PATH=str(instance))
    env.update(extra)
    return env


@pytest.fixture
def start_worker(tmp_path):
    """Start `python worker.py` processes; each is stopped, or killed with its children, at the end."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def factory(env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"worker{len(started)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, str(WORKER_PY)], env=env, cwd=tmp_path,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        started.append((proc, log))
        return proc, log

    yield factory
    for proc, _log in started:
        if proc.poll() is None:
            try:
                kids = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                kids = []
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
            for kid in kids:
                try:
                    kid.kill()
                except psutil.NoSuchProcess:
                    pass


def wait_until(predicate, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s" + (f"\n--- worker log ---\n{log.read_text()}" if log else ""))


def test_worker_py_sends_a_queued_password_reset_and_stops_on_sigterm(app, make_officer, smtp_server, tmp_path,
                                                                      start_worker):
    officer = make_officer("treasurer@example.org")
    instance = tmp_path / "worker-instance"
    instance.mkdir()
    # An instance file, as an operator would write one.
    (instance / "mailer.cfg").write_text('BASE_URL = "https://mailer.example.org"\n')
    env = worker_env(app, smtp_server.port, instance, MAILER_ORG_NAME="Worker Town CLP")

    job = queue.enqueue(jobs.send_password_reset, officer.id)
    proc, log = start_worker(env)
    wait_until(lambda: smtp_server.to(officer.email), 120, "no reset email arrived", log)
    assert proc.poll() is None, log.read_text()

    [message] = smtp_server.to(officer.email)
    # Settings from the environment and from the instance file both reached the worker.
    assert message["Subject"] == "Worker Town CLP: reset your Mailer password"
    body = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(https?://\S+/reset/(\S+))", body)
    assert link and link.group(1).startswith("https://mailer.example.org/reset/"), body
    # Signed with the same secret key as the web app: the web app accepts the link.
    from mailer.officers.service import officer_from_reset_token

    assert officer_from_reset_token(link.group(2)).id == officer.id
    wait_until(lambda: job.get_status(refresh=True) == "finished", 60, "the job was not marked finished", log)
    assert job.return_value() == "sent"

    # SIGTERM: RQ's warm shutdown, exit code 0, its scheduler process gone too.
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()
    for child in children:
        wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, 30,
                   f"worker child {child.pid} still running")
    assert "Traceback" not in log.read_text(), log.read_text()


def test_worker_skips_a_disabled_officer(app, make_officer, smtp_server, tmp_path, start_worker):
    """A job is idempotent and re-checks the database: a reset queued for an officer disabled
    since is not sent."""
    from mailer.db import session

    officer = make_officer("former@example.org")
    job = queue.enqueue(jobs.send_password_reset, officer.id)
    officer.active = False
    session.commit()
    proc, log = start_worker(worker_env(app, smtp_server.port, tmp_path / "instance"))
    wait_until(lambda: job.get_status(refresh=True) == "finished", 120, "the job did not finish", log)
    assert job.return_value() == "skipped"
    assert smtp_server.to(officer.email) == []
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()
