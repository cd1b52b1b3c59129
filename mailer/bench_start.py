"""`mailer bench start`: the send start alone (the real start job: snapshot the recipients into
Delivery rows with their batch numbers, commit, queue the batch jobs), timed at N recipients on a
scratch SQLite file and, with `--database-url`, an empty PostgreSQL database, without seeding
everything `mailer bench scale` seeds.

It seeds, in bulk (bench_scale's Loader), members as `bench scale` makes them (the same mix of
statuses, held addresses and suppressions) until exactly N of them may receive a notice, and
optionally `--deliveries` rows of earlier sent campaigns. Then, `--runs` times, the databases
interleaved, it starts a notice to everyone: the wall time of the whole job (`jobs.start_campaign`,
its commit and the queuing included), the process's CPU time (on SQLite the database works in
this process, so that is the database's own time plus Python's), and each SQL statement's time
at the client; on PostgreSQL running on this machine, also the server processes' own CPU time
for the job (read from /proc: robust when the machine is loaded). On PostgreSQL each run is followed by the database's own account of the snapshot's
INSERT: EXPLAIN (ANALYZE, BUFFERS) of the same statement for another campaign, rolled back
(execution time, its foreign-key triggers' time). After each run the campaign and its rows are
deleted again (and, on PostgreSQL, the table vacuumed), so every run starts from the same data.

The last line printed is one JSON object:
    {"recipients": N, "load_average": [..] (before and after), "databases": {db: {"runs": [...],
     "median_wall_s", "median_cpu_s", "median_server_cpu_s" and "median_explain_ms" (PostgreSQL)}}}
"""

from __future__ import annotations

import json
import os
import random
import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click

from mailer.bench_scale import BRANCHES, DOMAINS, FIRST, LAST, STATUSES, Loader, scratch_app


def _say(message: str) -> None:
    click.echo(message, err=True)


def _reachable(i: int) -> bool:
    """Whether seeded member i may receive a notice: as seed_members makes them (not resigned,
    address not held, not suppressed)."""
    return STATUSES[i % len(STATUSES)] != "resigned" and i % 211 != 0 and i % 97 != 3


def seed_members(engine, recipients: int, deliveries: int, seed_value: int = 13) -> dict:
    """Members (as bench scale makes them) until `recipients` may receive a notice, their
    suppressions, and `deliveries` rows of earlier sent campaigns (at most one per member each)."""
    rnd = random.Random(seed_value)
    L = Loader(engine)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ts, day = L.ts, L.day
    emails: list[str] = []
    try:
        L.load("branches", ["id", "name", "created_at"], ((i + 1, n, ts(now)) for i, n in enumerate(BRANCHES)))

        def members() -> Iterator[tuple]:
            reached, i = 0, 0
            while reached < recipients:
                first, last = FIRST[rnd.randrange(len(FIRST))], LAST[rnd.randrange(len(LAST))]
                email = f"{first.lower()}.{last.lower()}{i}@{DOMAINS[i % len(DOMAINS)]}".replace("â", "a")
                emails.append(email)
                branch = i % len(BRANCHES) + 1
                yield (i + 1, f"L{i + 1:07d}", first, last, email, f"AB{branch} {i % 10}CD", f"Ward {branch}-{i % 5}",
                       branch, STATUSES[i % len(STATUSES)], day(date(2000, 1, 1) + timedelta(days=i % 9000)), True,
                       i % 7 != 0, "on_hold" if i % 211 == 0 else "ok", False, secrets.token_hex(16), ts(now),
                       ts(now))
                reached += _reachable(i)
                i += 1

        L.load("members", ["id", "membership_number", "first_name", "last_name", "email", "postcode", "ward",
                           "branch_id", "status", "joined_on", "notices_consent", "bulletins_consent",
                           "email_health", "to_welcome", "public_id", "created_at", "updated_at"], members())
        L.load("suppressions", ["id", "email", "stream", "reason", "created_at", "note"],
               ((k + 1, emails[i], "all", "hard_bounce", ts(now), "") for k, i in
                enumerate(range(3, len(emails), 97))))
        campaigns = 0
        if deliveries:
            per = min(len(emails), deliveries)
            campaigns = -(-deliveries // per)
            L.load("campaigns", ["id", "stream", "name", "subject", "preheader", "from_name", "body_format", "body",
                                 "segment", "status", "created_at", "updated_at", "started_at", "finished_at",
                                 "web_token", "counts"],
                   [(c + 1, "bulletins", f"Bulletin {c + 1}", f"Bulletin {c + 1}", "", "", "markdown", "News.",
                     L.json({}), "sent",
                     ts(now), ts(now), ts(now), ts(now), secrets.token_urlsafe(12), L.json({"sent": per}))
                    for c in range(campaigns)])

            def rows() -> Iterator[tuple]:
                did = 0
                for c in range(campaigns):
                    for i in range(min(per, deliveries - did)):
                        did += 1
                        yield (did, c + 1, i + 1, emails[i], "sent", i // 1000, 1, f"<c{c + 1}.m{i + 1}@clp.example.org>",
                               ts(now + timedelta(milliseconds=20 * i)), ts(now))

            L.load("deliveries", ["id", "campaign_id", "member_id", "email", "status", "batch_no", "attempts",
                                  "message_id", "sent_at", "updated_at"], rows())
        L.finish(["branches", "members", "suppressions", "campaigns", "deliveries"])
    finally:
        L.close()
    return {"members": len(emails), "earlier_campaigns": campaigns}


def backends_cpu(database: str) -> float | None:
    """CPU seconds used so far by the PostgreSQL server processes serving `database` (a scratch
    database only this benchmark uses), when the server runs on this machine; else None."""
    total, found = 0.0, False
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not cmd.startswith("postgres: ") or f" {database} " not in cmd:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
        found = True
    return total if found else None


class StatementClock:
    """Each SQL statement's wall and CPU time at the client, summed by its first words."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.engine, self.on = engine, False
        self.by: dict[str, list[float]] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, _cursor, statement, *_args):
        conn.info["bench_t"] = (time.perf_counter(), time.process_time())

    def _after(self, conn, _cursor, statement, *_args):
        t0 = conn.info.pop("bench_t", None)
        if not self.on or t0 is None:
            return
        key = " ".join(statement.split()[:4])[:60]
        wall, cpu = time.perf_counter() - t0[0], time.process_time() - t0[1]
        agg = self.by.setdefault(key, [0, 0.0, 0.0])
        agg[0] += 1
        agg[1] += wall
        agg[2] += cpu

    @contextmanager
    def measuring(self):
        self.by, self.on = {}, True
        try:
            yield self
        finally:
            self.on = False

    def report(self) -> list[dict]:
        return [{"sql": k, "n": n, "wall_ms": round(w * 1000, 1), "cpu_ms": round(c * 1000, 1)}
                for k, (n, w, c) in sorted(self.by.items(), key=lambda kv: -kv[1][1])]


class Target:
    def __init__(self, name: str, url: str, redis_url: str, instance: Path, recipients: int, deliveries: int,
                 stack: ExitStack):
        self.name = name
        self.app, self.engine = scratch_app(name, url, redis_url, instance, stack, "bench-start")
        with self.app.app_context():
            t = time.perf_counter()
            self.seeded = seed_members(self.engine, recipients, deliveries)
            self.seed_seconds = time.perf_counter() - t
        self.clock = StatementClock(self.engine)
        _say(f"{name}: seeded {self.seeded} in {self.seed_seconds:.1f} s")

    def _campaign(self) -> int:
        from mailer.db import session, utcnow
        from mailer.models import Campaign, CampaignStatus, Stream

        campaign = Campaign(stream=Stream.NOTICES, name="Notice to everyone", subject="Notice", body="Notice.",
                            segment={}, status=CampaignStatus.SCHEDULED, scheduled_at=utcnow())
        session.add(campaign)
        session.commit()
        return campaign.id

    def run(self) -> dict:
        """One start job, timed, then (PostgreSQL) the INSERT explained; the rows removed again."""
        from sqlalchemy import func, select

        from mailer import jobs
        from mailer.db import session
        from mailer.models import Delivery
        from mailer.queue import get_queue

        with self.app.app_context():
            campaign_id = self._campaign()
            session.close()
            server = self.engine.url.database if self.engine.dialect.name == "postgresql" else None
            with self.clock.measuring():
                s0 = backends_cpu(server) if server else None
                w, c = time.perf_counter(), time.process_time()
                outcome = jobs.start_campaign(campaign_id)  # its own app context, commit and queuing
                wall, cpu = time.perf_counter() - w, time.process_time() - c
                s1 = backends_cpu(server) if server else None
            rows = session.scalar(select(func.count()).where(Delivery.campaign_id == campaign_id))
            batches = session.scalar(select(func.count(func.distinct(Delivery.batch_no)))
                                     .where(Delivery.campaign_id == campaign_id))
            queued = get_queue().count
            get_queue().empty()
            session.close()
            result = {"outcome": outcome, "recipients": rows, "batches": batches, "jobs_queued": queued,
                      "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "statements": self.clock.report()}
            if s0 is not None and s1 is not None:
                result["server_cpu_s"] = round(s1 - s0, 3)  # PostgreSQL's own CPU for the job
            if self.engine.dialect.name == "postgresql":
                result["explain"] = self._explain()
            self._remove(campaign_id)
        _say(f"{self.name}: start of {rows} recipients: {wall:.2f} s wall, {cpu:.2f} s CPU"
             + (f", {result['server_cpu_s']:.2f} s server CPU" if "server_cpu_s" in result else "")
             + (f", INSERT {result['explain']['execution_ms']:.0f} ms in PostgreSQL" if "explain" in result else ""))
        return result

    def _explain(self) -> dict:
        """The snapshot's INSERT for another campaign under EXPLAIN (ANALYZE, BUFFERS), rolled back."""
        from sqlalchemy import event

        from mailer.db import session
        from mailer.models import Campaign
        from mailer.sending import campaigns

        plans: list = []
        campaign_id = self._campaign()

        def explain(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO DELIVERIES"):
                return "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters
            return statement, parameters

        def keep(conn, cursor, statement, *_args):
            if statement.startswith("EXPLAIN"):
                plans.append(cursor.fetchone()[0])

        event.listen(self.engine, "before_cursor_execute", explain, retval=True)
        event.listen(self.engine, "after_cursor_execute", keep)
        try:
            campaigns.snapshot(session.get(Campaign, campaign_id, with_for_update=True))
        finally:
            event.remove(self.engine, "before_cursor_execute", explain)
            event.remove(self.engine, "after_cursor_execute", keep)
            session.rollback()
        self._remove(campaign_id)
        plan = plans[0][0]
        top = plan["Plan"]
        return {"execution_ms": round(plan["Execution Time"], 1), "planning_ms": round(plan["Planning Time"], 1),
                "triggers": {t["Trigger Name"]: round(t["Time"], 1) for t in plan.get("Triggers", [])},
                "select_ms": round(top["Plans"][0]["Actual Total Time"], 1) if top.get("Plans") else None,
                "shared_blocks": {k: top.get(f"Shared {k} Blocks") for k in ("Hit", "Read", "Dirtied", "Written")}}

    def _remove(self, campaign_id: int) -> None:
        from sqlalchemy import delete

        from mailer.db import session
        from mailer.models import Campaign, Delivery

        session.execute(delete(Delivery).where(Delivery.campaign_id == campaign_id))
        session.execute(delete(Campaign).where(Campaign.id == campaign_id))
        session.commit()
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE deliveries")


def main(recipients: int, deliveries: int, runs: int, database_url: str | None, redis_url: str | None,
         keep: bool, as_json: bool) -> None:
    import shutil
    import tempfile

    from mailer.up import start_embedded_redis

    workdir = Path(tempfile.mkdtemp(prefix="mailer-bench-start-"))
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        with ExitStack() as stack:
            redis = redis_url or os.environ.get("MAILER_BENCH_REDIS_URL") or start_embedded_redis(stack, workdir)
            targets = [Target("sqlite", f"sqlite:///{workdir / 'start.sqlite'}", redis, workdir / "instance-sqlite",
                              recipients, deliveries, stack)]
            if database_url:
                targets.append(Target("postgresql", database_url, redis, workdir / "instance-pg", recipients,
                                      deliveries, stack))
            results = {t.name: [] for t in targets}
            for _ in range(runs):
                for t in targets:
                    results[t.name].append(t.run())
    finally:
        if keep:
            _say(f"Scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    out = {"recipients": recipients, "earlier_deliveries": deliveries, "runs": runs,
           "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
           "databases": {}}
    for name, per in results.items():
        summary = {"median_wall_s": round(statistics.median(r["wall_s"] for r in per), 3),
                   "median_cpu_s": round(statistics.median(r["cpu_s"] for r in per), 3)}
        if per and "server_cpu_s" in per[0]:
            summary["median_server_cpu_s"] = round(statistics.median(r["server_cpu_s"] for r in per), 3)
        if per and "explain" in per[0]:
            summary["median_explain_ms"] = round(statistics.median(r["explain"]["execution_ms"] for r in per), 1)
        out["databases"][name] = summary | {"runs": per}
    if not as_json:
        for name, s in out["databases"].items():
            click.echo(f"{name}: wall {s['median_wall_s']} s, CPU {s['median_cpu_s']} s"
                       + (f", server CPU {s['median_server_cpu_s']} s" if "median_server_cpu_s" in s else "")
                       + (f", INSERT in PostgreSQL {s['median_explain_ms']} ms" if "median_explain_ms" in s else ""))
    click.echo(json.dumps(out))


def command_options(f):
    options = [
        click.option("--recipients", "-n", type=click.IntRange(1), default=100_000, show_default=True,
                     help="Members who may receive the notice (more are seeded: resigned, held, suppressed)."),
        click.option("--deliveries", type=click.IntRange(0), default=0, show_default=True,
                     help="Rows of earlier sent campaigns already in the table (a million in bench scale)."),
        click.option("--runs", type=click.IntRange(1), default=3, show_default=True),
        click.option("--database-url", help="An empty PostgreSQL database, timed beside the scratch SQLite file."),
        click.option("--redis-url", help="A Redis for the queue (a database of its own); else an embedded one."),
        click.option("--keep", is_flag=True, help="Keep the scratch folder (the SQLite file) and print where."),
        click.option("--json", "as_json", is_flag=True, help="Print only one JSON object on stdout, as the last line."),
    ]
    for option in reversed(options):
        f = option(f)
    return f
