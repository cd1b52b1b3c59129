"""`mailer bench scale`: every page an officer uses, timed at the size of a large constituency party.

It seeds, in bulk (SQLite: executemany; PostgreSQL: COPY; never the ORM), N members in 12
branches, deliveries over 10 sent campaigns, inbound messages in threads (one of them very long),
audit events and meetings, into a scratch SQLite file and, with `--database-url`, an empty
PostgreSQL database. Then, through the Flask test client signed in as the CLP secretary, it
requests every page once to warm up, then each page `--repeat` times, the databases interleaved
(page by page, round by round), and reports p50/p95 in ms and the number of SQL statements per page.

The last line printed is one JSON object:
    {"sizes": {...}, "load_average": [1, 5, 15], "seed_seconds": {db: s},
     "databases": {db: {page: {"p50_ms", "p95_ms", "queries", "status"}}}, "slowest_p95": {db: [page, ms]}}

(Over 400 lines with a reason: most of it is the bulk seed, table by table, kept beside the list of
pages it feeds so that a page added is seeded in the same change; a tool run by hand and in CI,
loaded only when `mailer bench` runs.)
"""

from __future__ import annotations

import json
import os
import random
import secrets
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click

FIRST = ("Aisha Alan Amy Andrew Angela Anne Ben Bethan Carl Catherine Chloe Chris Claire Dafydd David Deborah Dylan "
         "Eleanor Emma Fatima Fiona Gareth George Grace Hannah Harry Helen Ian Imran Isla Jack James Jane Jo John "
         "Karen Kate Kwame Laura Liam Lucy Mark Mary Megan Mohammed Nadia Neil Nia Oliver Owen Patrick Paul Priya "
         "Rachel Rhys Richard Ruth Sam Sarah Siân Simon Sophie Steve Susan Tom Una Victoria Wendy Yusuf Zoe").split()
LAST = ("Adams Ahmed Ali Allen Bailey Baker Begum Bell Brown Campbell Carter Clarke Collins Cooper Davies Edwards "
        "Evans Fisher Green Griffiths Hall Harris Hughes Hussain Jackson James Jenkins Johnson Jones Khan King Lewis "
        "Lloyd Martin Mitchell Moore Morgan Morris Murphy Okafor Okonkwo Owen Parry Patel Phillips Powell Price "
        "Roberts Robinson Rogers Shah Singh Smith Taylor Thomas Thompson Turner Walker Ward Watkins Watson White "
        "Williams Wilson Wood Wright Young").split()
BRANCHES = ("Abbey Ashfield Brookside Castle Central Eastgate Hillside Millbrook Northgate Riverside Southfield "
            "Westfield").split()
DOMAINS = ("example.org", "example.com", "mail.example.net", "post.example.co.uk")
STATUSES = ["active"] * 80 + ["new"] * 6 + ["arrears"] * 6 + ["lapsed"] * 5 + ["resigned"] * 3
ACTIONS = ("member.update", "member.create", "import.apply", "campaign.send", "member.welcomed", "officer.login")
NO_MATCH = "zqxjkvw"  # in no generated text


def _say(message: str) -> None:
    click.echo(message, err=True)


class Sizes:
    def __init__(self, members: int, deliveries: int, campaigns: int, inbound: int, longest_thread: int,
                 audit: int, meetings: int):
        self.members, self.campaigns = members, campaigns
        self.per_campaign = min(members, max(1, deliveries // campaigns))
        self.deliveries = self.per_campaign * campaigns
        self.inbound, self.longest_thread = inbound, min(longest_thread, inbound)
        self.audit, self.meetings = audit, meetings

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


# --- bulk loading -------------------------------------------------------------------------------

class Loader:
    """Rows straight into tables through the DBAPI connection: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, engine):
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.raw = engine.raw_connection()

    def ts(self, value: datetime | None):
        """A UTC datetime as each backend's DateTime column stores it."""
        if value is None or self.pg:
            return value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def day(self, value: date | None):
        return value if value is None or self.pg else value.isoformat()

    def json(self, value) -> str:
        return json.dumps(value)

    def load(self, table: str, columns: Iterable[str], rows: Iterable[tuple], chunk: int = 20_000) -> int:
        columns = [f'"{c}"' for c in columns]  # "references" is a reserved word
        cur = self.raw.cursor()
        n = 0
        if self.pg:
            with cur.copy(f'COPY {table} ({", ".join(columns)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        else:
            sql = f'INSERT INTO {table} ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) >= chunk:
                    cur.executemany(sql, batch)
                    n += len(batch)
                    batch = []
            if batch:
                cur.executemany(sql, batch)
                n += len(batch)
        cur.close()
        self.raw.commit()
        return n

    def finish(self, tables: Iterable[str]) -> None:
        """Sequences past the ids given, and planner statistics, as a live database would have."""
        cur = self.raw.cursor()
        if self.pg:
            for table in tables:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
            self.raw.commit()
            self.raw.driver_connection.autocommit = True
            cur = self.raw.cursor()
            cur.execute("VACUUM ANALYZE")  # what autovacuum does on a live database
            self.raw.driver_connection.autocommit = False
        else:
            cur.execute("ANALYZE")  # what `PRAGMA optimize` does on a live SQLite database
            self.raw.commit()
        cur.close()

    def close(self) -> None:
        self.raw.close()


def _raw_message(n: int, sender: str, subject: str, text: str, in_reply_to: str | None) -> bytes:
    head = (f"From: {sender}\r\nTo: secretary@clp.example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <in{n}@example.net>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n")
    if in_reply_to:
        head += f"In-Reply-To: {in_reply_to}\r\n"
    return (head + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()


def seed(engine, sizes: Sizes, password_hash: str, seed_value: int = 13) -> dict:
    """Fill an empty, migrated database. Returns the ids the pages need."""
    rnd = random.Random(seed_value)
    L = Loader(engine)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ts, day, js = L.ts, L.day, L.json
    info: dict = {}
    try:
        L.load("branches", ["id", "name", "created_at"],
               ((i + 1, name, ts(now)) for i, name in enumerate(BRANCHES)))
        L.load("officers", ["id", "email", "name", "password_hash", "role", "branch_id", "active", "created_at"],
               [(1, "secretary@clp.example.org", "CLP Secretary", password_hash, "clp_secretary", None, True, ts(now))])

        people = []  # (first, last, email) by member id - 1

        def members() -> Iterator[tuple]:
            for i in range(sizes.members):
                first, last = FIRST[rnd.randrange(len(FIRST))], LAST[rnd.randrange(len(LAST))]
                email = f"{first.lower()}.{last.lower()}{i}@{DOMAINS[i % len(DOMAINS)]}".replace("â", "a")
                people.append((first, last, email))
                branch = i % len(BRANCHES) + 1
                joined = date(2000, 1, 1) + timedelta(days=rnd.randrange(9000))
                yield (i + 1, f"L{i + 1:07d}", first, last, email, f"07700 9{i % 100000:05d}",
                       f"AB{branch} {i % 10}CD", f"Ward {branch}-{i % 5}", f"P{branch}{i % 20:02d}", branch,
                       STATUSES[i % len(STATUSES)], day(joined), True, i % 7 != 0,
                       "on_hold" if i % 211 == 0 else "ok", i % 500 == 0, secrets.token_hex(16), ts(now), ts(now))

        L.load("members", ["id", "membership_number", "first_name", "last_name", "email", "phone", "postcode", "ward",
                           "polling_district", "branch_id", "status", "joined_on", "notices_consent",
                           "bulletins_consent", "email_health", "to_welcome", "public_id", "created_at",
                           "updated_at"], members())
        L.load("suppressions", ["id", "email", "stream", "reason", "created_at", "note"],
               ((k + 1, people[i][2], "all", "hard_bounce", ts(now), "") for k, i in
                enumerate(range(3, sizes.members, 97))))

        # Ten sent campaigns, a week apart, then a draft for the composer.
        campaign_cols = ["id", "stream", "name", "subject", "preheader", "from_name", "body_format", "body", "segment",
                         "status", "created_at", "updated_at", "scheduled_at", "started_at", "finished_at",
                         "web_token", "counts"]
        body = "Dear {{ member.first_name }},\n\nThis week in the constituency: " + "news. " * 80
        rows = []
        for c in range(sizes.campaigns):
            at = now - timedelta(days=7 * (sizes.campaigns - c))
            failed = sum(1 for i in range(sizes.per_campaign) if (i * 7 + c) % 67 == 0)  # as deliveries() below
            counts = {"sent": sizes.per_campaign - failed, "failed": failed}  # stored as finishing stores them
            rows.append((c + 1, "bulletins", f"Weekly bulletin {c + 1}", f"Bulletin {c + 1}", "", "", "markdown",
                         body, js({}), "sent", ts(at), ts(at), ts(at), ts(at), ts(at + timedelta(hours=1)),
                         secrets.token_urlsafe(12), js(counts)))
        draft_id = sizes.campaigns + 1
        rows.append((draft_id, "bulletins", "Next bulletin", "Next week", "", "", "markdown", body,
                     js({"statuses": ["active"]}), "draft", ts(now), ts(now), None, None, None,
                     secrets.token_urlsafe(12), None))
        L.load("campaigns", campaign_cols, rows)
        info.update(campaign_id=sizes.campaigns, draft_id=draft_id)

        def deliveries() -> Iterator[tuple]:
            did = 0
            for c in range(sizes.campaigns):
                start = now - timedelta(days=7 * (sizes.campaigns - c))
                for i in range(sizes.per_campaign):
                    did += 1
                    failed = (i * 7 + c) % 67 == 0
                    yield (did, c + 1, i + 1, people[i][2], "failed" if failed else "sent", i // 1000,
                           1, f"<c{c + 1}.m{i + 1}@clp.example.org>",
                           "550 5.1.1 mailbox unavailable" if failed else None,
                           None if failed else ts(start + timedelta(milliseconds=20 * i)), ts(start))

        L.load("deliveries", ["id", "campaign_id", "member_id", "email", "status", "batch_no", "attempts", "message_id",
                              "error", "sent_at", "updated_at"], deliveries())

        # Threads: one very long, then many short ones, until the messages are all placed.
        sizes_of_threads = [sizes.longest_thread]
        left = sizes.inbound - sizes.longest_thread
        while left > 0:
            k = min(left, rnd.choice((1, 1, 2, 3, 5, 8, 13, 21)))
            sizes_of_threads.append(k)
            left -= k
        thread_rows, message_rows = [], []
        mid = 0
        for t, count in enumerate(sizes_of_threads):
            m = (t * 37) % sizes.members
            first, last, email = people[m]
            camp = t % sizes.campaigns + 1
            subject = f"Re: Bulletin {camp}"
            started = now - timedelta(days=60) + timedelta(minutes=t)
            last_at = started + timedelta(minutes=count)
            thread_rows.append((t + 1, subject, f"bulletin {camp}", email,
                                "needs_action" if t % 3 else "actioned", ts(started), ts(last_at), m + 1,
                                m % len(BRANCHES) + 1, camp))
            for k in range(count):
                mid += 1
                text = (f"Hello, thank you for the bulletin. On point {k} I think {first} from the ward should "
                        "raise it at the next meeting. " * 3)
                quoted = "> Dear member,\n> This week in the constituency: news.\n" * 5
                raw = _raw_message(mid, email, subject, text + "\r\n" + quoted, f"<in{mid - 1}@example.net>" if k else None)
                message_rows.append((mid, ts(started + timedelta(minutes=k)), "smtp", f"mid:<in{mid}@example.net>",
                                     f"<in{mid}@example.net>", secrets.token_hex(32), raw, len(raw), False,
                                     "processed", 1, ts(started + timedelta(minutes=k)), "reply", js([]), js([]),
                                     email, f"{first} {last}", js(["secretary@clp.example.org"]), js([]), subject,
                                     ts(started + timedelta(minutes=k)), f"<in{mid - 1}@example.net>" if k else None,
                                     js([]), text, quoted, text + "\n" + quoted,
                                     f"<p>{text}</p><blockquote>{quoted}</blockquote>", t + 1,
                                     mid - 1 if k else None, m + 1, camp, "token", "", False))
        L.load("threads", ["id", "subject", "normalised_subject", "correspondent", "status", "created_at",
                           "last_activity_at", "member_id", "branch_id", "campaign_id"], thread_rows)
        L.load("inbound_messages", ["id", "received_at", "transport", "dedupe_key", "message_id", "sha256", "raw",
                                    "size", "oversized", "status", "attempts", "processed_at", "kind", "reasons",
                                    "defects", "from_address", "from_name", "to_addresses", "cc_addresses", "subject",
                                    "sent_at", "in_reply_to", "references", "visible_text", "quoted_text", "full_text",
                                    "html_safe", "thread_id", "parent_id", "member_id", "campaign_id", "match_method",
                                    "match_note", "flagged"], message_rows)
        info.update(long_thread_id=1, threads=len(thread_rows))
        del thread_rows, message_rows

        L.load("audit_events", ["id", "at", "officer_id", "actor", "action", "subject_type", "subject_id", "changes",
                                "note"],
               ((i + 1, ts(now - timedelta(seconds=sizes.audit - i)), 1, "secretary@clp.example.org",
                 ACTIONS[i % len(ACTIONS)], "member", i % sizes.members + 1,
                 js({"ward": [f"Ward {i % 12}", f"Ward {(i + 1) % 12}"]}), "") for i in range(sizes.audit)))

        kinds = ("general", "executive", "branch", "branch", "branch", "agm")
        meeting_rows, minutes_rows, agenda_rows = [], [], []
        for i in range(sizes.meetings):
            kind = kinds[i % len(kinds)]
            branch = (i % len(BRANCHES) + 1) if kind == "branch" else None
            at = now + timedelta(days=30) - timedelta(days=7 * (sizes.meetings - i) // 2)
            past = at < now
            meeting_rows.append((i + 1, branch, kind, f"Meeting {i + 1}", ts(at), ts(at + timedelta(hours=2)),
                                 "Community hall", "1 High Street", "", "", "", js({}), None,
                                 "held" if past else "planned", "", f"m{i + 1}-{secrets.token_hex(4)}@mailer", 0, "",
                                 1, ts(at - timedelta(days=21)), ts(at - timedelta(days=21))))
            for p, title in enumerate(("Apologies", "Minutes of the last meeting", "Correspondence", "Reports")):
                agenda_rows.append((i * 4 + p + 1, i + 1, p + 1, title, "", ""))
            if past:
                minutes_rows.append((len(minutes_rows) + 1, i + 1, "approved", "", secrets.token_hex(16), ts(at),
                                     ts(at)))
        L.load("meetings", ["id", "branch_id", "kind", "title", "starts_at", "ends_at", "venue_name", "venue_address",
                            "online_url", "dial_in", "accessibility", "entitled", "quorum", "status", "cancelled_reason",
                            "ical_uid", "ical_sequence", "notice_override", "created_by_id", "created_at",
                            "updated_at"], meeting_rows)
        L.load("agenda_items", ["id", "meeting_id", "position", "title", "notes", "role"], agenda_rows)
        L.load("minutes", ["id", "meeting_id", "status", "present_text", "web_token", "created_at", "updated_at"],
               minutes_rows)
        info.update(meeting_id=sizes.meetings, past_meeting_id=next(
            (r[0] for r in reversed(meeting_rows) if r[13] == "held"), 1))
        L.finish(["branches", "officers", "members", "suppressions", "campaigns", "deliveries", "threads",
                  "inbound_messages", "audit_events", "meetings", "agenda_items", "minutes"])
    finally:
        L.close()
    info["member_id"] = sizes.members // 2
    first, last, email = people[sizes.members // 2 + 1]
    info["search_email"] = email.split("@")[0][-8:]  # a fragment from inside an address
    info["search_surname"] = "Okonkwo"
    return info


# --- timing -------------------------------------------------------------------------------------

class QueryCounter:
    def __init__(self, engine):
        from sqlalchemy import event

        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args, **_kw):
        self.n += 1


def pages(info: dict) -> dict[str, tuple[str, str, dict | None]]:
    """Every page timed: name -> (method, url, form)."""
    c, d = info["campaign_id"], info["draft_id"]
    return {
        "dashboard": ("GET", "/", None),
        "members_first": ("GET", "/members/", None),
        "members_deep": ("GET", info["members_deep_url"], None),
        "members_last": ("GET", info["members_last_url"], None),
        "member_search_email": ("GET", f"/members/?q={info['search_email']}", None),
        "member_search_surname": ("GET", f"/members/?q={info['search_surname']}", None),
        "member_page": ("GET", f"/members/{info['member_id']}", None),
        "segment_count": ("POST", f"/campaigns/{d}/count", {"segment_form": "1", "seg_statuses": "active"}),
        "composer": ("GET", f"/campaigns/{d}/edit", None),
        "campaign_list": ("GET", "/campaigns/", None),
        "campaign_page": ("GET", f"/campaigns/{c}", None),
        "campaign_progress": ("GET", f"/campaigns/{c}/progress.json", None),
        "inbox": ("GET", "/correspondence/", None),
        "inbox_all": ("GET", "/correspondence/?status=all", None),
        "inbox_search_no_match": ("GET", f"/correspondence/?status=all&q={NO_MATCH}", None),
        "long_thread": ("GET", f"/correspondence/{info['long_thread_id']}", None),
        "bounces": ("GET", "/correspondence/bounces", None),
        "meetings_list": ("GET", "/meetings/", None),
        "meeting_page": ("GET", f"/meetings/{info['meeting_id']}", None),
        "meeting_register": ("GET", f"/meetings/{info['past_meeting_id']}/register", None),
        "agenda_pdf": ("GET", f"/meetings/{info['meeting_id']}/agenda.pdf", None),
        "evidence_csv": ("GET", f"/meetings/{info['past_meeting_id']}/evidence.csv", None),
        "audit_log": ("GET", "/audit/", None),
        "member_export_json": ("POST", f"/members/{info['member_id']}/export", {}),
        "officers": ("GET", "/officers/", None),
        "imports": ("GET", "/imports/", None),
        # the rest of what an officer opens: documents, downloads, and deep pages
        "notice_pdf": ("GET", f"/meetings/{info['meeting_id']}/notice.pdf", None),
        "minutes_page": ("GET", f"/meetings/{info['past_meeting_id']}/minutes", None),
        "minutes_pdf": ("GET", f"/meetings/{info['past_meeting_id']}/minutes.pdf", None),
        "postal_csv": ("GET", f"/meetings/{info['meeting_id']}/postal.csv", None),
        "meeting_register_last": ("GET", f"/meetings/{info['past_meeting_id']}/register?last=1", None),
        "member_export_pdf": ("POST", f"/members/{info['member_id']}/export.pdf", {}),
        "campaign_report_api": ("API GET", f"/api/v1/campaigns/{c}/report", None),
        # the API, with a personal token
        "api_members": ("API GET", "/api/v1/members?limit=50", None),
        "api_member_search": ("API GET", f"/api/v1/members?q={info['search_surname']}", None),
        "api_segment_count": ("API POST", "/api/v1/segments/count", {"segment": {"statuses": ["active"]}}),
        "api_campaigns": ("API GET", "/api/v1/campaigns", None),
        "api_campaign_progress": ("API GET", f"/api/v1/campaigns/{c}/progress", None),
        "api_threads": ("API GET", "/api/v1/threads", None),
        "api_long_thread": ("API GET", f"/api/v1/threads/{info['long_thread_id']}", None),
        "api_meetings": ("API GET", "/api/v1/meetings", None),
        "api_meeting": ("API GET", f"/api/v1/meetings/{info['meeting_id']}", None),
        "api_meeting_register": ("API GET", f"/api/v1/meetings/{info['past_meeting_id']}/register", None),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def scratch_app(name: str, url: str, redis_url: str, instance: Path, stack: ExitStack, queue: str, **settings):
    """A Mailer app on an empty scratch database, migrated, with its engine (disposed with the
    stack): what every benchmark seeds into. Refuses a database that already holds members."""
    from sqlalchemy import func, select

    from mailer import create_app, migrate
    from mailer.db import engine, session
    from mailer.models import Member

    instance.mkdir(parents=True, exist_ok=True)
    os.environ["MAILER_INSTANCE_PATH"] = str(instance)
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": secrets.token_hex(16),
                      "QUEUE_NAME": f"{queue}-{os.getpid()}", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": 9,
                      **settings})
    with app.app_context():
        migrate.upgrade()
        if session.scalar(select(func.count()).select_from(Member)):
            raise click.ClickException(f"{name}: the database must be empty (it has members).")
        session.close()
        bound = engine()
        stack.callback(bound.dispose)
    return app, bound


class Target:
    """One database: its app, signed-in client and query counter."""

    def __init__(self, name: str, url: str, redis_url: str, instance: Path, sizes: Sizes, stack: ExitStack):
        from werkzeug.security import generate_password_hash

        from mailer.db import session

        self.name = name
        self.app, self.engine = scratch_app(name, url, redis_url, instance, stack, "bench-scale",
                                            WTF_CSRF_ENABLED=False)
        with self.app.app_context():
            t = time.perf_counter()
            self.info = seed(self.engine, sizes, generate_password_hash("bench-password"))
            self.seed_seconds = time.perf_counter() - t
            self.info.update(_list_urls(self.app, sizes.members))
        _say(f"{name}: seeded in {self.seed_seconds:.1f} s")
        self.counter = QueryCounter(self.engine)
        self.client = self.app.test_client()
        r = self.client.post("/login", data={"email": "secretary@clp.example.org", "password": "bench-password"})
        if r.status_code != 302:
            raise click.ClickException(f"{name}: could not sign in ({r.status_code})")
        with self.app.app_context():  # the API's calls carry a personal token, as scripts' do
            from mailer.models import Officer
            from mailer.officers import tokens

            _token, self.token = tokens.create(session.get(Officer, 1), "bench scale")
            session.commit()
            session.close()

    def request(self, method: str, url: str, form: dict | None) -> tuple[float, int, int]:
        before = self.counter.n
        t = time.perf_counter()
        if method.startswith("API "):
            headers = {"Authorization": f"Bearer {self.token}"}
            response = (self.client.post(url, json=form, headers=headers) if method == "API POST"
                        else self.client.get(url, headers=headers))
        elif method == "POST":
            response = self.client.post(url, data=form or {})
        else:
            response = self.client.get(url)
        response.get_data()
        elapsed = (time.perf_counter() - t) * 1000
        return elapsed, self.counter.n - before, response.status_code


def _list_urls(app, members: int) -> dict:
    """The deep and last pages of the members list, as its own links reach them: the deep page
    starts after the member halfway down the list (a cursor, as "Next" would give)."""
    from sqlalchemy import select

    from mailer.db import session
    from mailer.models import Member
    from mailer.pagination import _expanded, encode

    with app.app_context():
        from mailer.members.service import sort_keys

        columns = [c for c, _d in _expanded(sort_keys("name"))]
        row = session.execute(select(*columns).select_from(Member).order_by(*columns)
                              .offset(members // 2).limit(1)).one()
        session.close()
    return {"members_deep_url": f"/members/?after={encode(list(row))}", "members_last_url": "/members/?last=1"}


def time_send_start(target: Target) -> dict:
    """The start job of a notice to every member (the real `start`: snapshot the recipients into
    Delivery rows with their batch numbers, commit, enqueue the batch jobs), timed once, last,
    as it adds rows."""
    from sqlalchemy import func, select

    from mailer import jobs
    from mailer.db import session, utcnow
    from mailer.models import Campaign, CampaignStatus, Delivery, Stream
    from mailer.queue import get_queue

    with target.app.app_context():
        campaign = Campaign(stream=Stream.NOTICES, name="Notice to everyone", subject="Notice", body="Notice.",
                            segment={}, status=CampaignStatus.SCHEDULED, scheduled_at=utcnow())
        session.add(campaign)
        session.commit()
        campaign_id = campaign.id
        session.close()
        t = time.perf_counter()
        jobs.start_campaign(campaign_id)  # the job itself: its own session, its commit, its queuing
        seconds = time.perf_counter() - t
        rows = session.scalar(select(func.count()).where(Delivery.campaign_id == campaign_id))
        batches = session.scalar(select(func.count(func.distinct(Delivery.batch_no))).where(
            Delivery.campaign_id == campaign_id))
        get_queue().empty()
        session.close()
    _say(f"{target.name}: send start for {rows} recipients in {seconds:.2f} s")
    return {"recipients": rows, "batches": batches, "seconds": round(seconds, 2)}


def run(sizes: Sizes, sqlite_path: Path, database_url: str | None, repeat: int, stack: ExitStack,
        workdir: Path, only: Iterable[str] | None = None, runs: int = 1) -> dict:
    from mailer.up import start_embedded_redis

    redis_url = os.environ.get("MAILER_BENCH_REDIS_URL") or start_embedded_redis(stack, workdir)
    targets = [Target("sqlite", f"sqlite:///{sqlite_path}", redis_url, workdir / "instance-sqlite", sizes, stack)]
    if database_url:
        targets.append(Target("postgresql", database_url, redis_url, workdir / "instance-pg", sizes, stack))
    chosen = pages(targets[0].info)
    if only:
        chosen = {k: v for k, v in chosen.items() if k in set(only)}
    queries = {t.name: {} for t in targets}
    status = {t.name: {} for t in targets}
    for target in targets:  # warm-up: every page once
        for page, (method, _url, form) in chosen.items():
            url = pages(target.info)[page][1]
            _ms, queries[target.name][page], status[target.name][page] = target.request(method, url, form)
    per_run = []
    for run_no in range(runs):
        _say(f"Run {run_no + 1} of {runs}: {len(chosen)} pages x {repeat} on {', '.join(t.name for t in targets)} ...")
        times = {t.name: {p: [] for p in chosen} for t in targets}
        for _round in range(repeat):
            for page, (method, _url, form) in chosen.items():
                for target in targets:
                    url = pages(target.info)[page][1]
                    ms, n, code = target.request(method, url, form)
                    times[target.name][page].append(ms)
                    queries[target.name][page] = max(queries[target.name][page], n)
                    status[target.name][page] = code
        per_run.append({"load_average": [round(x, 2) for x in os.getloadavg()],
                        "databases": {name: {page: {"p50_ms": round(statistics.median(v), 1),
                                                    "p95_ms": round(_percentile(v, 0.95), 1)}
                                             for page, v in by_page.items()} for name, by_page in times.items()}})
    load = [round(x, 2) for x in os.getloadavg()]
    starts = {t.name: time_send_start(t) for t in targets} if not only or "send_start" in only else {}
    result = {"sizes": sizes.as_dict(), "repeat": repeat, "runs": runs, "load_average": load,
              "seed_seconds": {t.name: round(t.seed_seconds, 1) for t in targets}, "send_start": starts,
              "databases": {}}
    for target in targets:  # the median over the runs of each run's p50 and p95
        per = {}
        for page in chosen:
            figures = [r["databases"][target.name][page] for r in per_run]
            per[page] = {"p50_ms": round(statistics.median(f["p50_ms"] for f in figures), 1),
                         "p95_ms": round(statistics.median(f["p95_ms"] for f in figures), 1),
                         "queries": queries[target.name][page], "status": status[target.name][page]}
        result["databases"][target.name] = per
    result["slowest_p95"] = {name: max(((p, v["p95_ms"]) for p, v in per.items()), key=lambda x: x[1])
                             for name, per in result["databases"].items()}
    if runs > 1:
        result["per_run"] = per_run
    return result


def table(result: dict) -> str:
    """The result as a Markdown table (page, then p50 / p95 / queries per database)."""
    names = list(result["databases"])
    head = "| page | " + " | ".join(f"{n} p50 | {n} p95 | {n} queries" for n in names) + " |"
    lines = [head, "| --- |" + " ---: |" * (3 * len(names))]
    for page in result["databases"][names[0]]:
        cells = []
        for n in names:
            v = result["databases"][n][page]
            cells += [f"{v['p50_ms']}", f"{v['p95_ms']}", f"{v['queries']}"]
        lines.append(f"| {page} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def command_options(f: Callable) -> Callable:
    options = [
        click.option("--members", type=click.IntRange(10), default=100_000, show_default=True),
        click.option("--deliveries", type=click.IntRange(1), default=1_000_000, show_default=True,
                     help="Spread over --campaigns sent campaigns (at most one per member each)."),
        click.option("--campaigns", type=click.IntRange(1), default=10, show_default=True),
        click.option("--inbound", type=click.IntRange(1), default=50_000, show_default=True,
                     help="Inbound messages, in threads."),
        click.option("--longest-thread", type=click.IntRange(1), default=1_000, show_default=True),
        click.option("--audit", type=click.IntRange(1), default=100_000, show_default=True),
        click.option("--meetings", type=click.IntRange(1), default=600, show_default=True),
        click.option("--repeat", type=click.IntRange(1), default=20, show_default=True,
                     help="Timed requests per page and database, after one warm-up."),
        click.option("--runs", type=click.IntRange(1), default=1, show_default=True,
                     help="Time every page this many times over (same data); figures are the medians of the runs."),
        click.option("--database-url", help="An empty PostgreSQL database, timed beside the scratch SQLite file."),
        click.option("--page", "only", multiple=True, help="Time only this page (repeatable)."),
        click.option("--keep", is_flag=True, help="Keep the scratch folder (the SQLite file) and print where."),
        click.option("--json", "as_json", is_flag=True, help="Print only one JSON object on stdout, as the last line."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def main(members: int, deliveries: int, campaigns: int, inbound: int, longest_thread: int, audit: int, meetings: int,
         repeat: int, runs: int, database_url: str | None, only: tuple[str, ...], keep: bool, as_json: bool) -> None:
    import shutil
    import tempfile

    sizes = Sizes(members, deliveries, campaigns, inbound, longest_thread, audit, meetings)
    workdir = Path(tempfile.mkdtemp(prefix="mailer-bench-scale-"))
    try:
        with ExitStack() as stack:
            result = run(sizes, workdir / "scale.sqlite", database_url, repeat, stack, workdir, only, runs)
    finally:
        if keep:
            _say(f"Scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if not as_json:
        click.echo(table(result))
    click.echo(json.dumps(result))
