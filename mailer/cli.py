"""The `mailer` command: Flask's CLI (run, shell, routes) plus Mailer's own commands.

The command line starts fast: `mailer --help` imports no command, and each command's module is
imported only when that command runs, so `mailer inbound parse` never builds the web app. The
app (and with it the database and the views) is built only by a command that needs it.
"""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext

from mailer.errors import Refusal


class Refused(click.ClickException):
    """A command's request that a rule does not allow: `Error: <the reason>` and exit status 1."""


def handles_refusals(f):
    """The one place a command's refusal is handled: a `mailer.errors.Refusal` (or `Invalid`) raised
    by the services rolls the session back and ends the command with the reason. A command
    therefore catches no domain error itself, and commits once, when its work is done."""

    @functools.wraps(f)
    def run(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except Refusal as exc:
            if current_app:  # a command run without the app has no session to roll back
                from mailer.db import session

                session.rollback()
            raise Refused(str(exc) or type(exc).__name__) from None

    return run


class Commands(AppGroup):
    """A group of Mailer's commands: each command runs in the app context (as Flask's AppGroup
    does) and its refusals are handled by `handles_refusals`."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)
        return lambda f: register(handles_refusals(f))


db_cli = Commands("db", help="Database schema migrations (Alembic).")
officers_cli = Commands("officers", help="Officer accounts.")
members_cli = Commands("members", help="Members and the membership export.")
routines_cli = Commands("routines", help="Routines: make this week's bulletin now.")

# Every command of `mailer`: where it lives, and the line `mailer --help` shows for it (a test
# checks each line against the command's own help, so the two cannot drift apart).
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("mailer.up:up_command", "Run Mailer on this machine: web admin, worker, Redis and mail catcher as needed."),
    "worker": ("mailer.cli:worker_command", "Start an RQ worker (with scheduler): the same as `python worker.py`."),
    "reconcile": ("mailer.cli:reconcile_command", "Rebuild every kind of pending work from the database (after "
                  "Redis lost its jobs): start jobs, batches and their retries, reminders, inbound processing, "
                  "replies, the IMAP poll."),
    "config": ("mailer.cli:config_command", "Print every setting as a Markdown table (the README's configuration table)."),
    "db": ("mailer.cli:db_cli", "Database schema migrations (Alembic)."),
    "officers": ("mailer.cli:officers_cli", "Officer accounts."),
    "members": ("mailer.cli:members_cli", "Members and the membership export."),
    "inbound": ("mailer.inbound.cli:inbound_cli", "Inbound mail: replies, bounces, auto-replies."),
    "routines": ("mailer.cli:routines_cli", "Routines: make this week's bulletin now."),
    "retention": ("mailer.retention:retention_cli", "Delete personal data older than the retention periods."),
    "bench": ("mailer.bench:bench_cli", "Benchmarks on scratch data (never the app's own database)."),
    "run": ("flask.cli:run_command", "Run a development server."),
    "shell": ("flask.cli:shell_command", "Run a shell in the app context."),
    "routes": ("flask.cli:routes_command", "Show the routes for the app."),
}


def load_command(name: str) -> click.Command:
    module, _, attr = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), attr)


def init_app(app: Flask) -> None:
    """Attach Mailer's commands to the app's CLI (Flask's own are there already)."""
    for name, (target, _help) in COMMANDS.items():
        if not target.startswith("flask."):
            app.cli.add_command(load_command(name), name)


class MailerCommands(click.Group):
    """The root command: finds a subcommand by name and imports it only when it is run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return load_command(name) if name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


def _create_app(*_args) -> Flask:
    from mailer import create_app

    return create_app()


def settings():
    """The settings, for a command that needs nothing else: the app is not built for it (fast)."""
    info = click.get_current_context().find_object(ScriptInfo)
    if info is not None and info.create_app is not _create_app:  # a test runner's app: its settings
        return info.load_app().config
    from mailer.config import standalone_settings

    return standalone_settings()


@click.group(cls=MailerCommands, help="Mailer: email for a local Labour Party's officers.")
def cli() -> None:
    pass


def main() -> None:
    """Entry point of the `mailer` console script."""
    # Flask's commands (and ours, through AppGroup) build the app from this on first need.
    cli.main(prog_name="mailer", obj=ScriptInfo(create_app=_create_app, set_debug_flag=False))


# --- worker ---------------------------------------------------------------------------------

@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Start an RQ worker (with scheduler): the same as `python worker.py`."""
    from mailer.jobs import run_worker

    run_worker(current_app._get_current_object(), burst=burst)


@click.command("reconcile")
@with_appcontext
def reconcile_command() -> None:
    """Rebuild every kind of pending work from the database (after Redis lost its jobs): start
    jobs, batches and their retries, reminders, inbound processing, replies, the IMAP poll."""
    from mailer.jobs import reconcile_all
    from mailer.queue import NoRedisConfigured

    try:
        found = reconcile_all()
    except NoRedisConfigured as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in found.items()
                         if k not in ("imap_poll", "weekly_bulletin")) +
               (f", IMAP poll: {found['imap_poll']}" if found.get("imap_poll") else "") +
               (f", weekly bulletin: {found['weekly_bulletin']}" if found.get("weekly_bulletin") else ""))


@click.command("config")
def config_command() -> None:
    """Print every setting as a Markdown table (the README's configuration table)."""
    from mailer.config import describe

    click.echo("| Variable | Default | Meaning |\n| --- | --- | --- |")
    for row in describe():
        default = f"`{row['default']}`" if row["default"] else ""
        click.echo(f"| `{row['env']}` | {default} | {row['help']} |")


# --- db -------------------------------------------------------------------------------------

@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (the newest by default)."""
    from mailer import migrate

    migrate.upgrade(revision)
    click.echo(f"Database at revision {migrate.current()}.")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION."""
    from mailer import migrate

    migrate.downgrade(revision)
    click.echo(f"Database at revision {migrate.current()}.")


@db_cli.command("current")
def db_current() -> None:
    """Print the database's revision and whether it is the newest."""
    from mailer import migrate

    click.echo(f"{migrate.current() or '(empty)'}{' (head)' if migrate.is_current() else ''}")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--empty", is_flag=True, help="Write an empty migration instead of comparing with the models.")
def db_revision(message: str, empty: bool) -> None:
    """Write a new migration from the difference between the models and the database."""
    from mailer import migrate

    migrate.revision(message, autogenerate=not empty)


# --- officers -------------------------------------------------------------------------------

@officers_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["clp_secretary", "clp_officer", "chair", "branch_secretary"]))
@click.option("--branch", help="The branch (required for a branch secretary).")
@click.option("--name", default="")
def officers_create(email: str, role: str, branch: str | None, name: str) -> None:
    """Create an officer and print their first password once."""
    from mailer.db import session
    from mailer.members.service import branch_by_name
    from mailer.models import Role
    from mailer.officers import service

    branch_row = branch_by_name(branch, create=False) if branch else None
    if branch and branch_row is None:
        raise service.OfficerError(f"There is no branch called {branch!r}.")
    officer, password = service.create_officer(email, Role(role), branch_row, name)
    session.commit()
    click.echo(f"Created {officer.email} ({officer.role.label}). Password, shown once: {password}")


@officers_cli.command("token")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for (shown on the officer's Account page).")
@click.option("--days", type=click.IntRange(1, 366), help="How long it works (default: until revoked).")
def officers_token(email: str, name: str, days: int | None) -> None:
    """Make a personal API token for an officer and print it once."""
    from mailer.db import session
    from mailer.officers import service, tokens

    officer = service.find_by_email(email)
    if officer is None or not officer.active:
        raise click.ClickException(f"There is no active officer {email}.")
    _token, text = tokens.create(officer, name, days)
    session.commit()
    click.echo(text)


@officers_cli.command("list")
def officers_list() -> None:
    """List officers with their role and branch."""
    from sqlalchemy import select

    from mailer.db import session
    from mailer.models import Officer

    for o in session.scalars(select(Officer).order_by(Officer.email)):
        click.echo(f"{o.email}\t{o.role.value}\t{o.branch.name if o.branch else '-'}\t"
                   f"{'active' if o.active else 'disabled'}")


# --- routines -------------------------------------------------------------------------------

@routines_cli.command("weekly-bulletin")
@click.option("--officer", "email", help="Make it as this officer (a branch secretary: their branch's bulletin). "
              "Default: the CLP's, as the weekly routine makes it.")
def routines_weekly_bulletin(email: str | None) -> None:
    """Make this week's bulletin draft now, with what's on in the next 14 days (once a week: if it
    was made already, say where it is)."""
    from mailer import bulletin
    from mailer.db import session
    from mailer.links import external_url
    from mailer.officers import service

    officer = None
    if email:
        officer = service.find_by_email(email)
        if officer is None or not officer.active:
            raise click.ClickException(f"There is no active officer {email}.")
    try:
        made = bulletin.make(officer)
        session.commit()
    except bulletin.BulletinSettingError as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    if made.campaign is None:
        click.echo(f"This week's bulletin ({bulletin.period()}) was made and has since been deleted.")
        return
    link = external_url("admin.campaigns.edit", campaign_id=made.campaign.id)
    if made.created:
        click.echo(f"Made \"{made.campaign.name}\" with {made.meetings} meeting(s) in what's on: {link}")
    else:
        click.echo(f"This week's bulletin was made already: \"{made.campaign.name}\" ({made.campaign.status.value}), "
                   f"{link}")


# --- members --------------------------------------------------------------------------------

@members_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--full", "full_export", is_flag=True, help="The file lists every member: report those missing.")
def members_import(file: Path, dry_run: bool, full_export: bool) -> None:
    """Import a membership export (CSV): new and changed members, with line-numbered errors."""
    from mailer.db import session
    from mailer.members import exportfile, importer

    data = file.read_bytes()
    try:
        run = importer.start(file.name, data, officer=None)
        run.full_export = full_export
        mapping = run.mapping
        click.echo("Columns: " + ", ".join(f"{h} -> {exportfile.FIELDS.get(f, 'not imported')}"
                                          for h, f in mapping.items()))
        result = importer.plan(data, mapping, full_export) if dry_run else importer.apply(run, officer=None)
    except Refusal:
        raise  # handled with every command's (handles_refusals)
    except Exception as exc:  # the import is one transaction: say so, rather than show a traceback
        session.rollback()
        raise click.ClickException(f"The import failed and nothing was changed: {exc}") from None
    if dry_run:
        session.rollback()  # nothing is kept, not even the record of the attempt
    else:
        session.commit()
    _print_plan(result, dry_run)
    if result.errors and not (result.new or result.updated or result.unchanged):
        sys.exit(1)


@members_cli.command("export-data")
@click.argument("member_id", type=int)
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the readable PDF to this file.")
def members_export_data(member_id: int, pdf_path: Path | None) -> None:
    """Print everything held about a member (a subject access request) as JSON."""
    import json

    from mailer import story
    from mailer.db import session
    from mailer.models import Member

    member = session.get(Member, member_id)
    if member is None:
        raise click.ClickException(f"There is no member with id {member_id}.")
    data = story.export_data(None, member)
    if pdf_path is not None:
        pdf_path.write_bytes(story.export_pdf(None, member))
    session.commit()
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    if pdf_path is not None:
        click.echo(f"PDF written to {pdf_path}", err=True)


def _print_plan(result, dry_run: bool) -> None:
    from mailer.models import MemberStatus

    verb = "Would import" if dry_run else "Imported"
    click.echo(f"{verb} {result.rows_read} rows ({result.encoding}, '{result.delimiter}' separated): "
               f"{len(result.new)} new, {len(result.updated)} updated, {result.unchanged} unchanged, "
               f"{len(result.moved)} moved, {len(result.with_status(MemberStatus.LAPSED))} lapsed, "
               f"{len(result.with_status(MemberStatus.RESIGNED))} resigned, {len(result.errors)} errors.")
    if result.new_branches:
        click.echo("New branches: " + ", ".join(result.new_branches))
    for change in result.updated:
        click.echo(f"  line {change.line}: {change.label}: " +
                   ", ".join(f"{k} {v[0]!s} -> {v[1]!s}" for k, v in change.changes.items()))
    if result.missing:
        click.echo(f"{len(result.missing)} members held are not in this full export:")
        for m in result.missing:
            click.echo(f"  {m.full_name} ({m.membership_number or m.email})")
    for err in result.errors:
        click.echo(f"  line {err.line}: {err.reason}" + (f" [{err.who}]" if err.who else ""), err=True)
