"""IMAP polling against a real server: Debian's Dovecot, started once for the run with a
throwaway configuration (plain IMAP with STARTTLS, and IMAPS, on free loopback ports, with a
self-signed certificate); each test gets a mailbox user of its own.

Without `dovecot` installed these tests are skipped, saying why, unless
MAILER_TEST_REQUIRE_DOVECOT=1 (CI sets it), when they fail instead: a missing server must not pass.
"""

from __future__ import annotations

import datetime
import grp
import imaplib
import ipaddress
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rq import SimpleWorker
from rq.scheduler import RQScheduler
from sqlalchemy import func, select

from mailer import jobs
from mailer import queue
from mailer.db import session
from mailer.inbound import imap
from mailer.models import ImapState, InboundMessage, InboundStatus
from tests.conftest import free_port
from tests.inbound.conftest import raw_message
from tests.sending.conftest import run_queue

SBIN = os.pathsep.join(["/usr/sbin", "/sbin", "/usr/local/sbin"])


def _required() -> bool:
    return os.environ.get("MAILER_TEST_REQUIRE_DOVECOT") == "1"


def _skip_or_fail(reason: str):
    if _required():
        pytest.fail(f"MAILER_TEST_REQUIRE_DOVECOT=1 but {reason}", pytrace=False)
    print(f"\nSkipping the IMAP tests: {reason}")
    pytest.skip(f"IMAP tests skipped: {reason}")


def _self_signed(root: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that the tests trust through SSL_CERT_FILE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _running(pid: int) -> bool:
    """Alive, and not a zombie (in a container nobody may reap the daemon)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Dovecot:
    root: Path
    imap_port: int
    imaps_port: int
    cert: Path
    password: str = "secret"
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_user(self) -> str:
        """A fresh, empty mailbox (any user name logs in with the one password)."""
        return f"secretary{next(self._n)}@example.org"

    def client(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        conn.login(user, self.password)
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.session(user) as conn:
            typ, data = conn.append(imap.quote_folder(folder), None, None, raw)
            assert typ == "OK", data

    def session(self, user: str):
        dovecot = self

        class _Session:
            def __enter__(self):
                self.conn = dovecot.client(user)
                return self.conn

            def __exit__(self, *exc):
                self.conn.logout()

        return _Session()

    def messages(self, user: str, folder: str = "INBOX") -> dict[int, tuple[bytes, str]]:
        """uid -> (raw, flags) of a folder, read without changing anything."""
        with self.session(user) as conn:
            typ, _ = conn.select(imap.quote_folder(folder), readonly=True)
            if typ != "OK":
                return {}
            _typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            found = {}
            for item in data:
                if isinstance(item, tuple):
                    meta = item[0].decode()
                    uid = int(meta.split("UID ")[1].split()[0])
                    found[uid] = (item[1], meta.split("FLAGS (")[1].split(")")[0] if "FLAGS (" in meta else "")
            return found

    def folders(self, user: str) -> list[str]:
        with self.session(user) as conn:
            _typ, data = conn.list()
            # (\\HasNoChildren) "." "Mailer"  ->  Mailer
            return [re.match(r'^\(.*?\) (?:"[^"]*"|NIL) (.*)$', line.decode()).group(1).strip('"')
                    for line in data if line]


@pytest.fixture(scope="session")
def dovecot():
    """A real Dovecot for the whole run, stopped at the end."""
    exe = shutil.which("dovecot", path=os.pathsep.join([os.environ.get("PATH", ""), SBIN]))
    if exe is None:
        _skip_or_fail("`dovecot` is not installed (apt-get install dovecot-imapd)")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _skip_or_fail("the cryptography package is missing (pip install -e '.[test]')")
    # Not under pytest's own temporary folder: that one is private to us, and Dovecot's
    # processes run as another user when we are root.
    root = Path(tempfile.mkdtemp(prefix="mailer-dovecot-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        user, group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    else:
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    cert, key = _self_signed(root)
    imap_port, imaps_port = free_port(), free_port()
    for sub in ("mail", "state", "run"):
        (root / sub).mkdir()
    if os.geteuid() == 0:
        shutil.chown(root / "mail", user, group)
    conf = root / "dovecot.conf"
    conf.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_login_user = {user}
default_internal_group = {group}
passdb {{
  driver = static
  args = password={Dovecot.password}
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
  chroot =
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""")
    # Output to a file, not a pipe: the daemon keeps its inherited descriptors open, and reading a
    # pipe to its end would wait for as long as Dovecot runs.
    log, start_log = root / "dovecot.log", root / "start.log"
    with start_log.open("wb") as out:
        started = subprocess.run([exe, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30)
    if started.returncode != 0:
        reason = start_log.read_text(errors="replace").strip()
        shutil.rmtree(root, ignore_errors=True)
        _skip_or_fail(f"dovecot did not start: {reason}")
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", imap_port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"dovecot did not answer on {imap_port}: {log.read_text() if log.exists() else ''}")
            time.sleep(0.1)
    yield Dovecot(root, imap_port, imaps_port, cert)
    pid_file = root / "run" / "master.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(20):
            if not _running(pid):
                break
            time.sleep(0.05)
        else:  # Dovecot takes seconds over a polite stop; this one is thrown away anyway
            try:
                os.killpg(pid, signal.SIGKILL)  # its own process group: the master and its children
            except ProcessLookupError:
                pass
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_imap_app(make_app, dovecot):
    """An app whose IMAP settings point at a fresh Dovecot user; `app.imap_user` is that user."""

    def factory(**overrides):
        user = dovecot.new_user()
        settings = dict(IMAP_HOST="127.0.0.1", IMAP_PORT=dovecot.imap_port, IMAP_SECURITY="none",
                        IMAP_USERNAME=user, IMAP_PASSWORD=dovecot.password, IMAP_FOLDER="INBOX",
                        IMAP_PROCESSED_FOLDER="Mailer", SENDER_ADDRESS="secretary@anytown-labour.example",
                        REPLY_ADDRESS="secretary@anytown-labour.example")
        settings.update(overrides)
        app = make_app(**settings)
        app.imap_user = user
        return app

    return factory


@pytest.fixture
def app(make_imap_app):
    app = make_imap_app()
    with app.app_context():
        yield app
        _drop_poll_jobs()


def _drop_poll_jobs():
    """Poll jobs left on the schedule would keep run_queue() of later tests waiting."""
    registry = queue.get_queue().scheduled_job_registry
    for job_id in registry.get_job_ids():
        registry.remove(job_id)  # deleting the job can trip over RQ's execution records


def stored() -> list[InboundMessage]:
    session.expire_all()
    return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


# --- polling --------------------------------------------------------------------------------

def test_poll_stores_processes_moves_and_takes_each_message_once(app, dovecot):
    user = app.imap_user
    dovecot.append(user, raw_message(subject="Apologies for Thursday", message_id="<a1@mail.example.net>"))
    dovecot.append(user, raw_message(sender="Bob <bob@example.org>", subject="Question about the AGM",
                                     message_id="<b1@mail.example.net>"))

    result = imap.poll()
    assert (result.found, result.fetched, result.new, result.held, result.done) == (2, 2, 2, 0, 2)
    assert result.action == "moved to Mailer" and not result.reset

    messages = stored()
    assert [m.message_id for m in messages] == ["<a1@mail.example.net>", "<b1@mail.example.net>"]
    assert all(m.transport == "imap" and m.imap_mailbox == f"{user}@127.0.0.1/INBOX" for m in messages)
    assert [m.imap_uid for m in messages] == [1, 2] and messages[0].imap_uidvalidity == result.uidvalidity
    # Moved, not deleted: the folder was made, the inbox is empty, nothing was marked read.
    assert dovecot.messages(user, "INBOX") == {}
    moved = dovecot.messages(user, "Mailer")
    assert sorted(raw for raw, _ in moved.values()) == sorted(m.raw for m in messages)
    assert all("\\Seen" not in flags for _, flags in moved.values())
    assert "Mailer" in dovecot.folders(user)

    run_queue()
    assert [(m.status, m.subject) for m in stored()] == [(InboundStatus.PROCESSED, "Apologies for Thursday"),
                                                         (InboundStatus.PROCESSED, "Question about the AGM")]

    again = imap.poll()
    assert (again.found, again.fetched, again.new) == (0, 0, 0)
    state = session.get(ImapState, f"{user}@127.0.0.1/INBOX")
    assert state.last_uid == 2 and state.uidvalidity == result.uidvalidity and state.polled_at is not None

    dovecot.append(user, raw_message(subject="One more", message_id="<c1@mail.example.net>"))
    third = imap.poll()
    assert (third.found, third.new) == (1, 1) and len(stored()) == 3


def test_a_message_held_already_is_not_stored_twice_but_still_moved(app, dovecot):
    user = app.imap_user
    copy = raw_message(subject="Sent twice", message_id="<twice@mail.example.net>")
    dovecot.append(user, copy)
    dovecot.append(user, copy)
    no_id = b"From: ann@example.org\r\nTo: secretary@anytown-labour.example\r\nSubject: No id\r\n\r\nHello\r\n"
    dovecot.append(user, no_id)
    dovecot.append(user, no_id)  # the same bytes: the content hash dedupes it

    result = imap.poll()
    assert (result.found, result.new, result.held, result.done) == (4, 2, 2, 4)
    assert len(stored()) == 2
    assert dovecot.messages(user, "INBOX") == {} and len(dovecot.messages(user, "Mailer")) == 4


def test_flag_mode_leaves_messages_in_place_seen_and_keyworded(make_imap_app, dovecot):
    app = make_imap_app(IMAP_PROCESSED_FOLDER="")
    with app.app_context():
        user = app.imap_user
        dovecot.append(user, raw_message(subject="Keep me here", message_id="<k1@mail.example.net>"))
        result = imap.poll()
        assert (result.new, result.done, result.action) == (1, 1, "flagged \\Seen")
        (raw, flags), = dovecot.messages(user, "INBOX").values()
        assert "\\Seen" in flags and imap.KEYWORD in flags and b"Keep me here" in raw
        assert "Mailer" not in dovecot.folders(user)

        # Even if the remembered UID were lost, the keyword keeps the message from being taken again.
        state = session.get(ImapState, imap.mailbox_key())
        state.last_uid = 0
        session.commit()
        again = imap.poll()
        assert (again.found, again.fetched, again.new) == (0, 0, 0) and len(stored()) == 1


def test_uidvalidity_change_reads_the_folder_again_without_duplicates(make_imap_app, dovecot):
    app = make_imap_app(IMAP_FOLDER="Replies", IMAP_PROCESSED_FOLDER="")
    with app.app_context():
        user = app.imap_user
        first = [raw_message(subject=f"Reply {n}", message_id=f"<r{n}@mail.example.net>") for n in (1, 2)]
        with dovecot.session(user) as conn:
            assert conn.create("Replies")[0] == "OK"
        for raw in first:
            dovecot.append(user, raw, "Replies")
        before = imap.poll()
        assert before.new == 2

        # The folder is deleted and made again (a restore, a migration): new UIDVALIDITY, UIDs from 1.
        with dovecot.session(user) as conn:
            assert conn.delete("Replies")[0] == "OK"
            assert conn.create("Replies")[0] == "OK"
        for raw in first + [raw_message(subject="Reply 3", message_id="<r3@mail.example.net>")]:
            dovecot.append(user, raw, "Replies")

        after = imap.poll()
        assert after.reset and after.uidvalidity != before.uidvalidity
        assert (after.found, after.fetched, after.new, after.held, after.done) == (3, 3, 1, 2, 3)
        assert sorted(m.message_id for m in stored()) == [f"<r{n}@mail.example.net>" for n in (1, 2, 3)]
        state = session.get(ImapState, imap.mailbox_key())
        assert (state.uidvalidity, state.last_uid) == (after.uidvalidity, 3)
        assert imap.poll().found == 0


def test_a_crash_after_storing_loses_nothing_and_is_not_downloaded_again(app, dovecot, monkeypatch):
    user = app.imap_user
    dovecot.append(user, raw_message(subject="Stored then crash", message_id="<crash@mail.example.net>"))
    real_done = imap._done

    def crash(*args, **kwargs):
        raise imaplib.IMAP4.abort("connection lost")

    monkeypatch.setattr(imap, "_done", crash)
    with pytest.raises(imap.ImapError, match="connection lost"):
        imap.poll()
    # Stored and committed before the move was tried; still in the mailbox, unread.
    assert [m.message_id for m in stored()] == ["<crash@mail.example.net>"]
    (_raw, flags), = dovecot.messages(user, "INBOX").values()
    assert "\\Seen" not in flags

    monkeypatch.setattr(imap, "_done", real_done)
    fetches = []
    real_fetch = imap._fetch
    monkeypatch.setattr(imap, "_fetch", lambda conn, uids: fetches.append(uids) or real_fetch(conn, uids))
    result = imap.poll()
    assert (result.found, result.fetched, result.new, result.held, result.done) == (1, 0, 0, 1, 1)
    assert fetches == []  # known by its UID: not downloaded again
    assert len(stored()) == 1 and dovecot.messages(user, "INBOX") == {} and len(dovecot.messages(user, "Mailer")) == 1


def test_a_failure_to_store_leaves_the_message_in_the_mailbox(app, dovecot, monkeypatch):
    user = app.imap_user
    dovecot.append(user, raw_message(subject="Database away", message_id="<away@mail.example.net>"))

    def database_away(*args, **kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(imap, "store", database_away)
    with pytest.raises(RuntimeError, match="database away"):
        imap.poll()
    assert stored() == []
    (_raw, flags), = dovecot.messages(user, "INBOX").values()
    assert "\\Seen" not in flags and dovecot.messages(user, "Mailer") == {}
    assert session.get(ImapState, imap.mailbox_key()).last_uid == 0

    monkeypatch.undo()
    assert imap.poll().new == 1 and dovecot.messages(user, "INBOX") == {}


def test_a_processed_folder_with_a_non_ascii_name(make_imap_app, dovecot):
    app = make_imap_app(IMAP_PROCESSED_FOLDER="Wedi’u darllen é")
    with app.app_context():
        user = app.imap_user
        dovecot.append(user, raw_message(subject="Diolch", message_id="<cy@mail.example.net>"))
        assert imap.poll().done == 1
        assert imap._utf7("Wedi’u darllen é") in dovecot.folders(user)
        assert len(dovecot.messages(user, "Wedi’u darllen é")) == 1


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_connections_verify_the_certificate(make_imap_app, dovecot, monkeypatch, security):
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    app = make_imap_app(IMAP_SECURITY=security, IMAP_PORT=port)
    with app.app_context():
        dovecot.append(app.imap_user, raw_message(subject=f"Over {security}", message_id=f"<{security}@x.example>"))
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(imap.ImapError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            imap.poll()  # a self-signed certificate nobody told us to trust
        assert stored() == []
        monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert))
        assert imap.poll().new == 1
        assert [m.message_id for m in stored()] == [f"<{security}@x.example>"]


def test_wrong_password_and_refused_settings_say_what_is_wrong(make_imap_app, dovecot):
    app = make_imap_app(IMAP_PASSWORD="not-the-password")
    with app.app_context():
        with pytest.raises(imap.ImapError, match="refused the login"):
            imap.poll()
    app = make_imap_app(IMAP_HOST="imap.example.org", IMAP_SECURITY="none")
    with app.app_context():
        with pytest.raises(imap.ImapError, match="only allowed for a server on this machine"):
            imap.poll()
    app = make_imap_app(IMAP_SECURITY="tls1")
    with app.app_context():
        with pytest.raises(imap.ImapError, match="use ssl, starttls or none"):
            imap.poll()
    app = make_imap_app(IMAP_FOLDER="No such folder")
    with app.app_context():
        with pytest.raises(imap.ImapError, match="opening the IMAP folder"):
            imap.poll()
    app = make_imap_app(IMAP_PORT=free_port())
    with app.app_context():
        with pytest.raises(imap.ImapError, match="cannot reach"):
            imap.poll()


def test_cli_poll(make_imap_app, dovecot):
    app = make_imap_app()
    with app.app_context():
        dovecot.append(app.imap_user, raw_message(subject="From the CLI", message_id="<cli@mail.example.net>"))
    result = app.test_cli_runner().invoke(args=["inbound", "poll"])
    assert result.exit_code == 0, result.output
    assert "1 to take, 1 stored new, 0 already held, 1 moved to Mailer." in result.output
    again = app.test_cli_runner().invoke(args=["inbound", "poll"])
    assert "0 to take, 0 stored new" in again.output

    bad = make_imap_app(IMAP_PASSWORD="wrong")
    result = bad.test_cli_runner().invoke(args=["inbound", "poll"])
    assert result.exit_code == 1 and "refused the login" in result.output

    off = make_imap_app(IMAP_HOST="")
    result = off.test_cli_runner().invoke(args=["inbound", "poll"])
    assert result.exit_code == 1 and "IMAP is not configured" in result.output


# --- on a schedule, and at worker start -----------------------------------------------------

def _poll_jobs() -> list[str]:
    return [j for j in queue.get_queue().scheduled_job_registry.get_job_ids() if j.startswith(jobs.IMAP_PREFIX)]


def test_polling_recurs_as_one_chain_through_the_rq_scheduler(make_imap_app, dovecot):
    app = make_imap_app(IMAP_POLL_SECONDS=1)
    with app.app_context():
        try:
            first = jobs.ensure_polling()
            assert jobs.ensure_polling() == first and jobs.reconcile_all()["imap_poll"] == first
            assert _poll_jobs() == [first]  # however often it is asked for: one chain
            dovecot.append(app.imap_user, raw_message(subject="On schedule", message_id="<sched@mail.example.net>"))

            q, conn = queue.get_queue(), queue.redis_connection()
            deadline = time.monotonic() + 10
            while not stored() and time.monotonic() < deadline:
                time.sleep(0.2)
                scheduler = RQScheduler([q], connection=conn)
                scheduler.acquire_locks()
                scheduler.enqueue_scheduled_jobs()
                scheduler.release_locks()
                SimpleWorker([q], connection=conn).work(burst=True)
            (message,) = stored()
            assert message.subject == "On schedule" and message.status is InboundStatus.PROCESSED
            following = _poll_jobs()
            assert len(following) == 1 and following[0] != first  # the job put the next one on
        finally:
            _drop_poll_jobs()


def test_the_poll_job_ends_the_chain_when_imap_is_switched_off(make_app):
    app = make_app(IMAP_HOST="")
    with app.app_context():
        assert jobs.ensure_polling() is None and _poll_jobs() == []
        assert jobs.poll_imap() == {"skipped": "IMAP is not configured"} and _poll_jobs() == []


def test_a_failing_poll_is_reported_and_the_chain_goes_on(make_imap_app, dovecot):
    app = make_imap_app(IMAP_PASSWORD="wrong")
    with app.app_context():
        try:
            outcome = jobs.poll_imap()
            assert "refused the login" in outcome["error"]
            assert len(_poll_jobs()) == 1
        finally:
            _drop_poll_jobs()


def test_worker_start_requeues_stored_messages_whose_jobs_were_lost(app):
    from mailer.inbound import store

    ids = [store.store(raw_message(message_id=f"<lost{n}@mail.example.net>"), "imap")[0].id for n in (1, 2)]
    session.commit()  # the caller's commit queues its processing
    queue.get_queue().empty()  # Redis lost its queue
    found = jobs.reconcile_all()
    assert found["inbound_jobs"] == 2 and found["imap_poll"].startswith(jobs.IMAP_PREFIX)
    assert jobs.reconcile_all()["inbound_jobs"] == 0  # queued already: not twice
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 2
    run_queue_without_polls()
    assert {m.id: m.status for m in stored()} == {i: InboundStatus.PROCESSED for i in ids}


def run_queue_without_polls():
    _drop_poll_jobs()
    run_queue()


def test_the_operations_diagnosis_names_imap_failures(make_imap_app, dovecot, monkeypatch):
    """What the operations page says when the mailbox cannot be opened, from real Dovecot failures."""
    from mailer import operations

    def diagnosis(**settings) -> operations.Diagnosis:
        app = make_imap_app(**settings)
        with app.app_context():
            with pytest.raises(imap.ImapError) as caught:
                operations.check_imap()
            return operations.diagnose(caught.value, "IMAP")

    wrong = diagnosis(IMAP_PASSWORD="not-the-password")
    assert wrong.kind == "auth" and "MAILER_IMAP_PASSWORD" in wrong.sentence
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    untrusted = diagnosis(IMAP_SECURITY="ssl", IMAP_PORT=dovecot.imaps_port)
    assert untrusted.kind == "tls" and "certificate could not be verified" in untrusted.sentence
    assert diagnosis(IMAP_PORT=free_port()).kind == "refused"


def test_a_poll_shows_its_progress_live_and_how_it_ended(app, dovecot, monkeypatch, make_officer):
    """What the Correspondence and Operations pages show while a poll runs, read back from Redis
    at each step (mailer.progress), then its outcome through the page's JSON."""
    from mailer import progress
    from tests.conftest import login

    for n in range(3):
        dovecot.append(app.imap_user, raw_message(subject=f"Letter {n}", message_id=f"<p{n}@mail.example.net>"))
    monkeypatch.setattr(imap, "BATCH", 1)  # a step per message
    monkeypatch.setattr(progress, "EVERY", 0)
    seen = []
    real_report = progress.report

    def report_and_read(*args, **kwargs):
        real_report(*args, **kwargs)
        seen.append(progress.read(imap.PROGRESS_TASK).as_dict())

    monkeypatch.setattr(progress, "report", report_and_read)
    imap.poll()
    assert [(s["stage"], s["done"], s["total"], s["live"]) for s in seen] == [
        ("Checking the mailbox", 0, 0, True), ("Taking in new mail", 0, 3, True), ("Taking in new mail", 1, 3, True),
        ("Taking in new mail", 2, 3, True), ("Taking in new mail", 3, 3, True)]
    assert seen[2]["text"] == "Taking in new mail: 1 of 3" and seen[2]["percent"] == 33
    make_officer("secretary@example.org")
    client = app.test_client()
    login(client, "secretary@example.org")
    ended = client.get("/correspondence/mailbox.json").get_json()
    assert ended["live"] is False and re.fullmatch(r"Mailbox checked at \d\d:\d\d: 3 new messages\.", ended["text"])
    page = client.get("/correspondence/").get_data(as_text=True)
    assert 'id="mailbox-progress"' in page and "3 new messages." in page
