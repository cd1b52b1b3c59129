"""CI's smoke test of the README's first command, as a new user runs it on a fresh machine.

Runs the command (`pip install -e . && mailer up`) in a shell of its own session, with a clean
HOME and no MAILER_/MAIL_ variables, in the active virtual environment; waits for /login to answer
200 within 60 s of Mailer starting; presses Ctrl-C (SIGINT to the whole process group, as a
terminal does); then checks that every process it started has gone, the embedded Redis included
(a daemon in a session of its own, found by its working folder, the instance folder).

Standard library only. Usage: python .ci/smoke_up.py "COMMAND" [PORT]
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

START_LIMIT = 60  # seconds from "mailer up" starting to /login answering
INSTALL_LIMIT = 600  # seconds for pip before that


def processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (session id, command line, working folder) of every process we may look at."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            sid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                cwd = ""
            found[int(entry.name)] = (sid, cmdline, cwd)
        except (OSError, IndexError, ValueError):
            continue
    return found


def ours(session: int, instance: Path) -> dict[int, str]:
    """Processes left of the command's session, and redis-servers working in its instance folder."""
    return {pid: cmd for pid, (sid, cmd, cwd) in processes().items()
            if pid != os.getpid() and (sid == session or ("redis-server" in cmd and cwd == str(instance)))}


def main() -> int:
    command = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    repo = Path(__file__).resolve().parents[1]
    instance = repo / "instance"
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            print(f"!! port {port} is taken: the README's command needs it free")
            return 1
    if instance.exists():
        print(f"!! {instance} exists: the smoke test wants a fresh instance folder")
        return 1
    home = Path(tempfile.mkdtemp(prefix="mailer-home-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    env["HOME"] = str(home)
    log = home / "up.log"
    print(f"$ {command}   (HOME={home}, no MAILER_ or MAIL_ variables)")
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", command], cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    failures = []
    try:
        started = time.monotonic()
        up_started = None
        answered = None
        while answered is None:
            if proc.poll() is not None:
                failures.append(f"the command exited with {proc.returncode} before /login answered")
                break
            if up_started is None and any(cmd.split()[0].rsplit("/", 1)[-1].startswith("python") and "mailer up" in cmd
                                          for cmd in ours(proc.pid, instance).values() if cmd):
                up_started = time.monotonic()
            now = time.monotonic()
            if up_started is not None and now - up_started > START_LIMIT:
                failures.append(f"/login did not answer 200 within {START_LIMIT} s of mailer up starting")
                break
            if now - started > INSTALL_LIMIT + START_LIMIT:
                failures.append("the install and start took longer than "
                                f"{INSTALL_LIMIT + START_LIMIT} s")
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
                    if response.status == 200 and b"password" in response.read().lower():
                        answered = now - (up_started or started)
            except OSError:
                time.sleep(0.25)
        if answered is not None:
            print(f"/login answered 200, {answered:.1f} s after mailer up started.")
            time.sleep(3)  # let the worker finish starting, so Ctrl-C meets every part running
        running = ours(proc.pid, instance)
        print(f"Processes of the command before Ctrl-C: {len(running)}")
        for pid, cmd in sorted(running.items()):
            print(f"  {pid} {cmd[:110]}")
        if not any("redis-server" in cmd for cmd in running.values()):
            failures.append("no embedded redis-server was running")
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(60)
            print(f"After Ctrl-C the command exited with {code}.")
            if code != 0:
                failures.append(f"exit code {code} after Ctrl-C")
        except subprocess.TimeoutExpired:
            failures.append("the command did not stop within 60 s of Ctrl-C")
        deadline = time.monotonic() + 30
        while ours(proc.pid, instance) and time.monotonic() < deadline:
            time.sleep(0.25)
        left = ours(proc.pid, instance)
        if left:
            failures.append(f"processes left behind: {left}")
        text = log.read_text(errors="replace")
        # Python's warnings print as "...: SAWarning: ..."; pip's own notices about this machine's
        # package index ("WARNING: Location ...") are not Mailer's.
        for word in ("Traceback", "Warning: ", "development server"):
            if word in text:
                failures.append(f"the output holds {word!r}")
    finally:
        for pid in ours(proc.pid, instance):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if failures:
            print("---- output of the command ----")
            print(log.read_text(errors="replace")[-8000:])
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(instance, ignore_errors=True)
    for failure in failures:
        print(f"!! {failure}")
    if not failures:
        print("Smoke test passed: it started, answered, and Ctrl-C stopped every part.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
