"""The `mailer` command line: fast to start, every command found, `inbound parse` over many files,
and commands of one instance folder sharing the parts a running `mailer up` started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from mailer import cli, config

REPLY = b"From: Ann <ann@example.net>\r\nTo: secretary@example.org\r\nSubject: Re: Bulletin\r\n" \
        b"Message-ID: <r1@example.net>\r\n\r\nSee you on Thursday.\r\n"
BOUNCE = (b"From: MAILER-DAEMON@mx.example.net\r\nTo: secretary@example.org\r\n"
          b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.net>\r\n"
          b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
          b"--b\r\nContent-Type: text/plain\r\n\r\nIt could not be delivered.\r\n"
          b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
          b"Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n")


def loaded_modules_after(code: str) -> set[str]:
    """The mailer.* modules a fresh interpreter has imported after running `code`."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('mailer'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_importing_the_command_line_builds_nothing():
    loaded = loaded_modules_after("import mailer.cli")
    assert not {m for m in loaded if m.startswith(("mailer.web", "mailer.models", "mailer.db"))}, loaded


def test_help_imports_no_command_and_no_view():
    loaded = loaded_modules_after(
        "import sys\nsys.argv = ['mailer', '--help']\nfrom mailer.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass")
    assert loaded == {"mailer", "mailer.cli", "mailer.errors"}, loaded  # errors: the refusal base, no imports


def test_inbound_parse_never_builds_the_app(tmp_path):
    (tmp_path / "reply.eml").write_bytes(REPLY)
    loaded = loaded_modules_after(
        f"import sys\nsys.argv = ['mailer', 'inbound', 'parse', {str(tmp_path / 'reply.eml')!r}]\n"
        "from mailer.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass")
    assert "mailer.inbound.parse" in loaded
    assert not {m for m in loaded if m.startswith(("mailer.web", "mailer.models", "mailer.db"))}, loaded


def test_every_command_is_listed_with_its_own_help(app):
    for name, (_target, line) in cli.COMMANDS.items():
        command = cli.load_command(name)
        assert isinstance(command, click.Command)
        assert line == command.get_short_help_str(limit=1000), name
        if not _target.startswith("flask."):
            assert app.cli.get_command(click.Context(app.cli), name) is command, name


def run_mailer(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mailer", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_inbound_parse_reads_files_and_folders_as_json_lines(tmp_path):
    folder = tmp_path / "mail"
    (folder / "nested").mkdir(parents=True)
    (folder / "reply.eml").write_bytes(REPLY)
    (folder / "nested" / "bounce.eml").write_bytes(BOUNCE)
    (folder / ".hidden").write_bytes(b"not mail")
    single = tmp_path / "one.eml"
    single.write_bytes(REPLY)
    env = {**os.environ, "MAILER_INSTANCE_PATH": str(tmp_path / "instance")}
    result = run_mailer("inbound", "parse", "--json", str(single), str(folder), env=env)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["file"]).name for r in rows] == ["one.eml", "bounce.eml", "reply.eml"]
    assert [r["kind"] for r in rows] == ["reply", "bounce", "reply"]
    assert rows[1]["bounce"]["recipients"][0]["address"] == "gone@example.net"

    summary = run_mailer("inbound", "parse", str(folder), env=env)
    assert summary.returncode == 0, summary.stderr
    assert f"== {folder / 'nested' / 'bounce.eml'}" in summary.stdout and "bounce: " in summary.stdout


def test_running_parts_are_shared_while_mailer_up_lives(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    socket_file = tmp_path / "redis.sock"
    socket_file.touch()
    parts = {"REDIS_URL": f"unix://{socket_file}", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": 1026,
             "MAIL_CATCHER": True}
    config.announce_running(instance, parts)
    assert config.running_parts(instance) == parts

    # A file left by a `mailer up` that was killed names a process that is gone: ignored.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (instance / config.RUNNING_FILE).write_text(json.dumps({"pid": int(dead.stdout), "parts": parts}))
    assert config.running_parts(instance) == {}

    # A Redis socket that has gone is not used either; the catcher still is.
    config.announce_running(instance, parts)
    socket_file.unlink()
    assert "REDIS_URL" not in config.running_parts(instance)
    assert config.running_parts(instance)["MAIL_PORT"] == 1026

    config.announce_running(instance, None)
    assert not (instance / config.RUNNING_FILE).exists()
    assert config.running_parts(instance) == {}


def test_configured_settings_win_over_a_running_mailer_up(tmp_path, monkeypatch):
    from mailer import create_app

    instance = tmp_path / "instance"
    instance.mkdir()
    socket_file = tmp_path / "redis.sock"
    socket_file.touch()
    config.announce_running(instance, {"REDIS_URL": f"unix://{socket_file}", "MAIL_SERVER": "127.0.0.1",
                                       "MAIL_PORT": 1026, "MAIL_CATCHER": True})
    monkeypatch.setenv("MAILER_INSTANCE_PATH", str(instance))
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"})
    assert app.config["REDIS_URL"] == f"unix://{socket_file}"
    assert (app.config["MAIL_SERVER"], app.config["MAIL_PORT"], app.config["MAIL_CATCHER"]) == ("127.0.0.1", 1026, True)

    monkeypatch.setenv("MAILER_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("MAIL_SERVER", "smtp.example.org")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"})
    assert app.config["REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert (app.config["MAIL_SERVER"], app.config["MAIL_PORT"], app.config["MAIL_CATCHER"]) == \
        ("smtp.example.org", 25, False)


@pytest.mark.parametrize("args", [["--help"], ["inbound", "parse", "--help"]])
def test_help_works_without_an_instance(tmp_path, args):
    result = run_mailer(*args, env={**os.environ, "MAILER_INSTANCE_PATH": str(tmp_path / "nowhere")})
    assert result.returncode == 0 and "Usage: mailer" in result.stdout, result.stderr


def test_a_refusal_is_handled_once_rolled_back_with_its_reason(app, tmp_path):
    """A service's refusal reaches the one handler of every command group: the session is rolled
    back (the import run `importer.start` had flushed before the plan was refused is gone from this
    very session), the reason is the command's error, and the exit status is 1."""
    from sqlalchemy import func, select

    from mailer.db import session
    from mailer.models import ImportRun

    path = tmp_path / "no-key.csv"
    path.write_bytes(b"First name,Last name\nAnn,Lee\n")
    result = app.test_cli_runner().invoke(args=["members", "import", str(path), "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "\nError: Map a column to Membership number or Email" in result.output
    assert "The import failed" not in result.output  # a refusal, not a failure
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_every_mailer_command_group_handles_refusals(app):
    """Each command of Mailer's groups is wrapped by the one handler, so none catches refusals itself."""
    for name in ("db", "officers", "members", "inbound"):
        group = cli.load_command(name)
        assert isinstance(group, cli.Commands), name
        for command in group.commands.values():
            assert getattr(command.callback, "__wrapped__", None) is not None, f"{name} {command.name}"
    result = app.test_cli_runner().invoke(args=["officers", "create", "x@example.org", "--role", "branch_secretary",
                                                "--branch", "Nowhere"])
    assert (result.exit_code, result.output) == (1, "Error: There is no branch called 'Nowhere'.\n")
