"""`mailer bench import`: importing a membership export of N rows into an empty database, then the
monthly re-export of the same members, timed as an officer runs them.

It writes a realistic export (twelve columns as membership systems write them: dd/mm/yyyy dates,
accented names, shared and rare email domains, a few bad rows) into a scratch folder, and the
next month's export: the same members, ~2% moved branch or ward, ~1% lapsed. Each import runs in
a fresh process (so its peak RSS is its own), as the page does it: the upload is recorded
(`importer.start`, committed), the dry-run diff is made (`importer.plan`), then it is applied as a
full export (`importer.apply`, then the welcome hook) and committed. Each phase reports wall
time, CPU time (`time.process_time` plus reaped children; the database server's own CPU is not
in it on PostgreSQL) and the process's peak RSS (VmHWM, the interpreter and app included; see _peak_rss_mb).
The last line printed is one JSON object.

    mailer bench import --rows 100000 [--database-url postgresql+psycopg://...] [--runs 3] --json
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

FIRST = ["Ann", "Zoë", "Siân", "Mohammed", "Priya", "Tom", "Aoife", "Kwame", "Li", "Grzegorz", "Fatima", "Dylan",
         "Chloé", "Olu", "Rhys", "Niamh", "Sam", "José", "Hannah", "Imran", "Bethan", "Ravi", "Ellie", "Jack"]
LAST = ["Evans", "Ó Briain", "Khan", "Patel", "Smith", "Jones", "Williams", "Nowak", "Okafor", "Chen", "Brown",
        "Davies", "Hughes", "O'Neill", "Murphy", "Ahmed", "Taylor", "Wilson", "Roberts", "Lewis", "Thomas"]
COMMON_DOMAINS = ["gmail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "btinternet.com", "icloud.com",
                  "live.co.uk", "aol.com", "sky.com", "virginmedia.com"]
HEADER = ["Membership Number", "First name", "Last name", "Email address", "Mobile", "Postcode", "Ward",
          "Polling District", "Branch", "Membership Status", "Date Joined", "Email opt-in"]
STATUSES = ["Active"] * 16 + ["Arrears", "New", "Current", "Grace"]


def _say(message: str) -> None:
    click.echo(message, err=True)


def make_members(n: int, seed: int = 13) -> list[list[str]]:
    """N members as export rows (no header), ~0.1% of them bad (invalid email, malformed date, no key)."""
    rng = random.Random(seed)
    branches = [f"{name} Branch" for name in ("Castle", "Riverside", "Abbey", "Hillside", "Marsh", "Northgate",
                                               "St Mary's", "Brook", "Kingsway", "Mill", "Heath", "Docks")]
    wards = [f"{w} Ward" for w in ("Castle", "River", "Abbey", "Hill", "Marsh", "North", "South", "East", "West",
                                     "Central", "Park", "Green", "Old Town", "Harbour", "Priory", "Moor",
                                     "Vale", "Forest", "Bridge", "Market", "Cathedral", "Meadow", "Quay", "Lea")]
    rows = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        # One in five addresses is at a domain few members share (work, university, own domain).
        domain = rng.choice(COMMON_DOMAINS) if rng.random() < 0.8 else f"mail{rng.randrange(5000)}.example.org"
        local = f"{first}.{last}{i}".replace(" ", "").replace("'", "").replace("ë", "e").replace("â", "a") \
            .replace("é", "e").replace("Ó", "O")
        email = f"{local}@{domain}" if rng.random() < 0.97 else ""  # some members have no email
        ward_i = rng.randrange(len(wards))
        joined = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1975, 2025)}"
        row = [f"L{100000 + i:07d}", first, last, email, f"07{rng.randrange(10**9):09d}",
               f"{rng.choice('ABCDEGHLMNS')}{rng.choice('ABCDEGHLMNS')}{rng.randint(1, 20)} "
               f"{rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
               wards[ward_i], f"{wards[ward_i][:2].upper()}{rng.randint(1, 6)}", branches[ward_i % 12],
               rng.choice(STATUSES), joined, rng.choice(["Yes", "Yes", "Yes", "No"])]
        bad = rng.random()
        if bad < 0.0005:
            row[3] = f"{local}@@{domain}"
        elif bad < 0.001:
            row[10] = "31/02/2019"
        elif bad < 0.0012:
            row[0], row[3] = "", ""
        rows.append(row)
    return rows


def month_later(rows: list[list[str]], moved: int, lapsed: int, seed: int = 14) -> list[list[str]]:
    """The next monthly export: the same members, `moved` of them in another ward and branch,
    `lapsed` more of them lapsed."""
    rng = random.Random(seed)
    out = [list(r) for r in rows]
    picked = rng.sample(range(len(out)), min(len(out), moved + lapsed))
    wards = sorted({r[6] for r in rows})
    branches = {r[6]: r[8] for r in rows}
    for k, i in enumerate(picked):
        if k < moved:
            ward = rng.choice([w for w in wards if w != out[i][6]] or wards)
            out[i][6], out[i][7], out[i][8] = ward, f"{ward[:2].upper()}{rng.randint(1, 6)}", branches[ward]
        else:
            out[i][9] = "Lapsed"
    return out


def write_export(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *rows])
    path.write_bytes(buf.getvalue().encode("utf-8"))


# --- one import, in a process of its own ------------------------------------------------------

def _phase(file: str, database_url: str, instance: str) -> dict:
    """Import `file` as the page does (upload, dry-run diff, apply as a full export, welcome hook,
    commit) and measure it. Runs in a fresh process, so its peak RSS is this import's own."""
    from mailer import create_app, welcome
    from mailer.db import session
    from mailer.members import importer

    os.environ["MAILER_INSTANCE_PATH"] = instance
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": secrets.token_hex(16),
                      "REDIS_URL": "redis://127.0.0.1:9/0", "QUEUE_NAME": f"bench-import-{os.getpid()}"})
    with app.app_context():
        server = _server_process(session.connection())  # connected before the clock starts
        rss_before = _peak_rss_mb()
        data = Path(file).read_bytes()
        wall, cpu, server_cpu = time.perf_counter(), _cpu(), _process_cpu(server)
        run = importer.start(Path(file).name, data, None)
        run.full_export = True
        session.commit()
        del data
        planned = importer.plan(run.content, run.mapping, run.full_export)
        summary = planned.summary()
        del planned
        plan_wall, plan_cpu = time.perf_counter() - wall, _cpu() - cpu
        result = importer.apply(run, None)
        welcome.after_import(None)
        session.commit()
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        server_cpu = _process_cpu(server) - server_cpu if server else None
        applied = result.summary()
        if {k: v for k, v in applied.items() if k != "errors"} != {k: v for k, v in summary.items() if k != "errors"}:
            raise click.ClickException(f"the dry run and the import disagree: {summary} / {applied}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "plan_wall_s": round(plan_wall, 2),
            "plan_cpu_s": round(plan_cpu, 2), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "rss_before_mb": round(rss_before, 1),
            # PostgreSQL's own backend for this connection, when it runs on this machine.
            "server_cpu_s": round(server_cpu, 2) if server_cpu is not None else None,
            **{k: applied[k] if k != "errors" else len(applied[k]) for k in
               ("rows", "new", "updated", "unchanged", "moved", "lapsed", "missing", "errors")}}


def _server_process(conn) -> int | None:
    """The pid of the PostgreSQL backend serving `conn`, when its CPU time can be read here."""
    from sqlalchemy import text

    if conn.dialect.name != "postgresql":
        conn.execute(text("SELECT 1"))
        return None
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    return pid if _process_cpu(pid) is not None else None


def _process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM where Linux gives it (ru_maxrss there also counts the RSS of
    the process that started this one, which the kernel carries across fork and exec), else
    ru_maxrss."""
    import resource

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _run_phase(file: Path, database_url: str, instance: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "MAIL_"))}
    proc = subprocess.run([sys.executable, "-m", "mailer.bench_import", str(file), database_url, str(instance)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise click.ClickException(f"the import of {file.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _empty_database(database_url: str, instance: Path) -> None:
    from sqlalchemy import func, select

    from mailer import create_app, migrate
    from mailer.db import engine, session
    from mailer.models import Member

    os.environ["MAILER_INSTANCE_PATH"] = str(instance)
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": secrets.token_hex(16),
                      "REDIS_URL": "redis://127.0.0.1:9/0"})
    with app.app_context():
        migrate.upgrade()
        if session.scalar(select(func.count()).select_from(Member)):
            raise click.ClickException("--database-url must name an empty database: this one has members.")
        session.close()
        engine().dispose()


def _reset(database_url: str) -> None:
    """Empty a given database between runs (every table dropped; the next run migrates it again)."""
    from sqlalchemy import create_engine, text

    eng = create_engine(database_url)
    with eng.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    eng.dispose()


def main(rows: int, moved: int | None, lapsed: int | None, database_url: str | None, runs: int, keep: bool,
         as_json: bool) -> None:
    moved = rows // 50 if moved is None else moved
    lapsed = rows // 100 if lapsed is None else lapsed
    workdir = Path(tempfile.mkdtemp(prefix="mailer-bench-import-"))
    try:
        members = make_members(rows)
        first, second = workdir / "export-2026-10.csv", workdir / "export-2026-11.csv"
        write_export(first, members)
        write_export(second, month_later(members, moved, lapsed))
        del members
        _say(f"Exports written: {first.stat().st_size / 1e6:.1f} MB each, in {workdir}")
        results = []
        for i in range(runs):
            if database_url and database_url.startswith("postgresql") and i:
                _reset(database_url)
            url = database_url or f"sqlite:///{workdir / f'bench-{i}.sqlite'}"
            instance = workdir / f"instance-{i}"
            instance.mkdir()
            _empty_database(url, instance)
            new = _run_phase(first, url, instance)
            _say(f"run {i + 1}: new import {new['wall_s']} s wall, {new['cpu_s']} s CPU, {new['peak_rss_mb']} MB")
            again = _run_phase(second, url, instance)
            _say(f"run {i + 1}: re-export {again['wall_s']} s wall, {again['cpu_s']} s CPU, {again['peak_rss_mb']} MB")
            results.append({"new_import": new, "re_export": again})
    finally:
        if keep:
            _say(f"Scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    def median(phase: str, key: str) -> float:
        return round(statistics.median(r[phase][key] for r in results), 2)

    summary = {
        "rows": rows, "moved": moved, "lapsed": lapsed, "runs": runs,
        "database": "postgresql" if database_url and database_url.startswith("postgresql") else "sqlite",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **{f"{phase}_{key}": median(phase, key) for phase in ("new_import", "re_export")
           for key in ("wall_s", "cpu_s", "peak_rss_mb")},
        **({f"{phase}_server_cpu_s": median(phase, "server_cpu_s") for phase in ("new_import", "re_export")}
           if all(r[p]["server_cpu_s"] is not None for r in results for p in ("new_import", "re_export")) else {}),
        "each_run": results,
    }
    if not as_json:
        for key, value in summary.items():
            if key != "each_run":
                click.echo(f"{key:>22}: {value}")
    click.echo(json.dumps(summary))


def command_options(f):
    options = [
        click.option("--rows", type=click.IntRange(100), default=100_000, show_default=True,
                     help="Members in the export."),
        click.option("--moved", type=click.IntRange(0), help="Members in another ward and branch next month "
                     "[default: 2% of rows]."),
        click.option("--lapsed", type=click.IntRange(0), help="Members lapsed next month [default: 1% of rows]."),
        click.option("--database-url", help="An empty database (PostgreSQL) instead of a scratch SQLite file; "
                     "with --runs above 1 its schema is dropped and made again between runs."),
        click.option("--runs", type=click.IntRange(1), default=1, show_default=True,
                     help="Repeat both imports on a fresh database; the figures are the medians."),
        click.option("--keep", is_flag=True, help="Keep the scratch folder (exports, SQLite files)."),
        click.option("--json", "as_json", is_flag=True, help="Print only one JSON object on stdout, as the last line."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


if __name__ == "__main__":  # one phase, in its own process (see _run_phase)
    print(json.dumps(_phase(*sys.argv[1:4])))
