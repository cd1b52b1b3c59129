"""The batch job: one connection of the mail transport (mailer/mail/__init__.py), one personal message per
member, each outcome recorded.

A run of a batch claims its Delivery rows a chunk at a time (status SENDING), under its own owner
id: the fencing token. Every write that follows is conditional on that id, so a run that has lost
its rows (its lease ran out while it could not renew it, and another run took them back) can
record nothing and stops before its next message. While the run lives, a heartbeat thread renews
the lease on its rows; only rows whose lease has run out, because their run died, are ever taken
back (`recover`). Consent and suppression are re-checked for each chunk just before it is sent.

Each message accepted by the relay (its 250) is marked accepted in the database at once, before
the next message goes out, and the marks become status SENT once per chunk (or first thing when
another run takes the rows back): a run killed at any moment leaves at most the message in flight
on its connection unrecorded, and that one alone may reach its member twice. Redis is not needed
to know what was sent.

This is a job handler, not a service: its commits (each claim, each message marked accepted, each
chunk's outcomes, each release) are its exactly-once fencing protocol, so it commits as it goes,
where every service leaves the commit to its caller. Its retries are recorded with
`mailer.work.after_commit` and queued by the registry (mailer.jobs) once the commit is in.

Over 400 lines on purpose: the claim, the lease and its heartbeat, the per-message mark, the
release and the recovery are one exactly-once protocol whose invariants each step relies on;
read together they can be checked together (tests/sending/test_faults.py and tests/faults).
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, exists, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import joinedload

from mailer import audit, work
from mailer.db import engine, session, utcnow
from mailer.mail import Connection, RelayUnavailable, Upcoming, transport
from mailer.members import segments
from mailer.models import Branch, Campaign, CampaignStatus, Delivery, DeliveryStatus, EmailHealth, Member, Stream
from mailer.sending import campaigns
from mailer.compose.message import CampaignMessages, Envelope

HARD_CODES = {550, 551, 553}  # mailbox unknown or not allowed: hold the address
log = logging.getLogger("mailer.sending")


class LeaseLost(RuntimeError):
    """This run no longer holds its rows (another run took them back): it must send nothing more."""


@dataclass
class Outcome:
    delivery_id: int
    member_id: int | None
    status: DeliveryStatus
    message_id: str | None = None
    error: str | None = None
    code: int | None = None
    attempts: int = 0


def backoff(attempts: int) -> timedelta:
    """How long a temporary failure waits: doubling with each attempt."""
    return timedelta(seconds=current_app.config["RETRY_BASE_SECONDS"] * 2 ** max(0, attempts - 1))


def chunk_size(cfg) -> int:
    """SEND_CHUNK, or about ten seconds' worth of messages under a relay rate limit, so that the
    consent and suppression re-check before each chunk is never minutes old."""
    size = cfg["SEND_CHUNK"]
    for key, seconds in (("RATE_PER_MINUTE", 60), ("RATE_PER_HOUR", 3600), ("RATE_PER_DAY", 86400)):
        if cfg[key]:
            size = min(size, max(1, cfg[key] * 10 // seconds))
    return size


def send_batch(campaign_id: int, batch_no: int, outage: int = 0) -> dict:
    """Send what is left of one batch. Idempotent: only rows still to do are touched, and two runs
    of one batch at once share its rows, never sending one row twice. `outage` counts the runs in
    a row that found the relay unreachable (it sets how long the next one waits)."""
    lease, recorder = Lease(current_app.config["BATCH_LOCK_TTL"]), _Recorder()
    try:
        return _send(campaign_id, batch_no, lease, recorder, outage)
    finally:
        recorder.close()
        lease.stop()
        _release(lease)


class Lease:
    """A run's hold on the rows it claims: an owner id unique to the run (the fencing token every
    write of an outcome is conditional on) and a heartbeat thread that renews the rows'
    `lease_until` while the process lives, so a slow or stalled relay never lets another run take
    them. Should the heartbeat fail for most of the lease (the database unreachable), `check`
    stops the run before its next message: by then another run may have taken the rows back."""

    def __init__(self, ttl: float):
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(8)}"
        self.ttl = max(1.0, float(ttl))
        self.renewed = time.monotonic()
        self.ids: list[int] = []  # the rows of its current claim: renewed and released by id, never by a scan
        self.all_tried = False  # every row of the claim has its outcome
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def until(self):
        return utcnow() + timedelta(seconds=self.ttl)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, args=(engine(),), name="mailer-lease", daemon=True)
            self._thread.start()

    def _beat(self, eng) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                with eng.begin() as conn:  # a connection of its own: the sending thread keeps the session
                    conn.execute(self.renewal())
                self.renewed = time.monotonic()
            except Exception:  # noqa: BLE001 - the database away: `check` stops the run in time
                log.warning("could not renew the lease of %s", self.owner, exc_info=True)

    def renewal(self):
        """The statement that renews the hold: a batch run's on its rows still sending (found by
        id: the owner column has no index, and the table holds every campaign's deliveries)."""
        return (update(Delivery).where(Delivery.id.in_(self.ids), Delivery.claimed_by == self.owner,
                                       Delivery.status == DeliveryStatus.SENDING)
                .values(lease_until=self.until()).execution_options(synchronize_session=False))

    def claimed(self) -> None:
        """A claim just set the lease afresh."""
        self.renewed = time.monotonic()

    def tried_all(self) -> None:
        """Every row of the claim has its outcome (marked sent at once, the rest written with the
        chunk): the release only folds the marks in, with nothing to give back."""
        self.all_tried = True

    def check(self) -> None:
        if time.monotonic() - self.renewed > self.ttl * 0.75:
            raise LeaseLost(f"{self.owner} could not renew its lease for {time.monotonic() - self.renewed:.0f} s")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def prepare_worker() -> None:
    """Run by a worker before it forks a work-horse per job: what each batch job would otherwise
    do afresh (build the HTML cleaner, compile its SQL statements, about a tenth of a second) is
    done once and inherited. Touches no data: the statements run for a campaign that cannot
    exist. Only an optimisation, so a failure is logged and ignored."""
    from mailer.compose.render import sanitize_html

    try:
        sanitize_html("<p>ready</p>")
        ghost = Campaign(id=-1, stream=Stream.BULLETINS)
        lease = Lease(60)
        session.get(Campaign, -1, options=[joinedload(Campaign.attachments)])
        recover(-1, -1)
        _status(-1)
        _still_reachable(ghost, _claim(-1, -1, 1, lease) or [_Row(-1)])
        _record(-1, [Outcome(-1, None, DeliveryStatus.DEFERRED, attempts=1)], lease)
        recorder = _Recorder()
        _mark_sent(-1, "<ghost@example.invalid>", lease, recorder, strict=False)
        recorder.close()
        _release(lease)
        _schedule_retry(-1, -1)
        campaigns.finish_if_done(-1)
    except Exception:  # noqa: BLE001
        logging.getLogger("mailer").warning("could not prepare the worker for batch jobs", exc_info=True)
    finally:
        session.rollback()
        session.expunge_all()
    # What the worker has built so far is kept out of the collector's way, so a work-horse does
    # not copy the worker's memory page by page just by collecting it (Python's advice for forks).
    gc.freeze()


class _Row:
    def __init__(self, member_id):
        self.member_id = member_id


def _status(campaign_id: int) -> CampaignStatus | None:
    return session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))


STATUS_EVERY = 2.0  # seconds between looks at the campaign's status mid-chunk (a pause or cancel stops the run)


def _send(campaign_id: int, batch_no: int, lease: Lease, recorder: _Recorder, outage: int) -> dict:
    campaign = session.get(Campaign, campaign_id, options=[joinedload(Campaign.attachments)])
    if campaign is None or campaign.status is not CampaignStatus.SENDING:
        if campaign is not None and campaign.status is CampaignStatus.CANCELLED:
            campaigns.settle_cancelled(campaign_id)
            session.commit()
        return {"skipped": campaign.status.value if campaign else "gone"}
    cfg = current_app.config
    recover(campaign_id, batch_no)
    _fewer_syncs()
    messages = CampaignMessages(campaign)
    totals = {s.value: 0 for s in DeliveryStatus}
    stalled = campaign.stalled_reason is not None
    lease.start()
    with transport().connect(many=True) as conn:
        looked = time.monotonic()
        while True:
            rows = _claim(campaign_id, batch_no, chunk_size(cfg), lease)  # nothing once paused or cancelled
            if not rows:
                break
            rows, suppressed, members = _still_reachable(campaign, rows)
            outcomes = [Outcome(r.id, r.member_id, DeliveryStatus.SUPPRESSED, error="unsubscribed or suppressed")
                        for r in suppressed]
            chunk = _Built(messages, rows, members)  # every message of the chunk built before any is sent
            try:
                for row in rows:
                    lease.check()
                    if time.monotonic() - looked > STATUS_EVERY:
                        if _status(campaign_id) is not CampaignStatus.SENDING:
                            break  # paused or cancelled: what is left of the chunk is released below
                        looked = time.monotonic()
                    outcome = _send_one(conn, chunk, row, members.get(row.member_id))
                    if outcome.status is DeliveryStatus.SENT:
                        recorder.record(row.id, outcome.message_id, lease.owner)  # before anything else is sent
                        totals[DeliveryStatus.SENT.value] += 1
                        if stalled:
                            stalled = _unstall(campaign_id)
                    else:
                        outcomes.append(outcome)
                else:
                    lease.tried_all()
            except RelayUnavailable as exc:
                _record(campaign_id, outcomes, lease)
                _release(lease)  # the rows not tried wait, without spending an attempt
                _wait_for_relay(campaign_id, batch_no, outage, str(exc))
                return {k: v for k, v in totals.items() if v} | {"relay_unavailable": str(exc)}
            _record(campaign_id, outcomes, lease)
            _release(lease)
            for o in outcomes:
                totals[o.status.value] += 1
    if stalled:
        _unstall(campaign_id)
    _schedule_retry(campaign_id, batch_no)
    campaigns.finish_if_done(campaign_id)
    session.commit()  # and the retry, if any, is queued
    return {k: v for k, v in totals.items() if v}


def _fewer_syncs() -> None:
    """On SQLite (in WAL mode), this job's connection syncs the log at checkpoints rather than at
    every commit: a commit survives the process being killed, only not the machine losing power,
    and a message's commit no longer holds the write lock through a disk flush."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA synchronous=NORMAL"))


def recover(campaign_id: int, batch_no: int) -> int:
    """Take back rows whose run died: SENDING, with a lease that has run out (a live run renews
    its lease, so its rows are never taken). They are sent again; only the one that was on the
    wire when its run died can have reached its member already (the rest it marked accepted)."""
    now = utcnow()
    theirs = (Delivery.campaign_id == campaign_id, Delivery.batch_no == batch_no, Delivery.lease_ran_out(now))
    campaigns.fold_accepted(*theirs)  # what the relay took before the run died is sent, not taken back
    taken = session.execute(update(Delivery).where(*theirs, Delivery.status == DeliveryStatus.SENDING)
        .values(status=DeliveryStatus.QUEUED, claimed_by=None, lease_until=None, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return taken


def _claim(campaign_id: int, batch_no: int, size: int, lease: Lease):
    """Take the next rows to send (status SENDING, owned by this run), while the campaign is still
    sending: the campaign's status is checked in the same statement, so a pause stops the batch
    here. A row another run holds is skipped (PostgreSQL) or found no longer due (both)."""
    due = or_(Delivery.status == DeliveryStatus.QUEUED,
              and_(Delivery.status == DeliveryStatus.DEFERRED, Delivery.next_attempt_at <= utcnow()))
    sending = exists(select(Campaign.id).where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.SENDING))
    ids = select(Delivery.id).where(Delivery.campaign_id == campaign_id, Delivery.batch_no == batch_no, due, sending) \
        .order_by(Delivery.id).limit(size)
    if session.get_bind().dialect.name == "postgresql":
        ids = ids.with_for_update(of=Delivery, skip_locked=True)
    # The ids first, then the update: PostgreSQL may run a LIMIT subquery inside an UPDATE more
    # than once, claiming more rows than asked for. `due` again in the update: on SQLite two runs
    # may read the same ids, and only one of them then finds each row still due.
    ids = session.scalars(ids).all()
    if not ids:
        session.commit()
        return []
    rows = session.execute(update(Delivery).where(Delivery.id.in_(ids), due)
                           .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1, updated_at=utcnow(),
                                   claimed_by=lease.owner, lease_until=lease.until())
                           .returning(Delivery.id, Delivery.member_id, Delivery.email, Delivery.attempts)
                           .execution_options(synchronize_session=False)).all()
    session.commit()
    lease.claimed()
    rows = sorted(rows, key=lambda r: r.id)
    lease.ids = [r.id for r in rows]
    return rows


class _Recorder:
    """Marks each accepted message, in one autocommit UPDATE of its own, at once: after the
    relay's 250 and before anything else happens on the connection, so a run killed at any moment
    leaves at most the message in flight on its connection unrecorded. The mark sets accepted_at
    and accepted_message_id, which no index covers (moving the row's status and adding its
    sent_at and Message-ID to their indexes was half its cost); the chunk's release folds the
    marks into status SENT in one statement, and any run taking rows back from one that died
    folds them first (campaigns.fold_accepted). (It used to write from a
    thread of its own while the next envelope was on the wire; handing each mark to that thread
    and back cost more CPU than the mark itself, about a third of a message's.)

    The UPDATE runs on a database connection the run holds for itself, in autocommit, without
    fsync at each commit (SQLite's synchronous=NORMAL, PostgreSQL's synchronous_commit=off): a
    mark survives the worker being killed, only not the database's machine losing power, as the
    job's own commits on SQLite. The statement is compiled once and run on the driver's own
    cursor with its bind values made by the columns' own types (no SQLAlchemy execution per
    message)."""

    def __init__(self):
        table = Delivery.__table__
        self.stmt = (table.update()
                     .where(table.c.id == bindparam("d_id"), table.c.claimed_by == bindparam("owner"),
                            table.c.status == DeliveryStatus.SENDING.value)
                     .values(accepted_message_id=bindparam("mid"), accepted_at=bindparam("t_sent"),
                             updated_at=bindparam("t_sent")))
        self.raw = self.cursor = None
        self.engine = None

    def _connect(self) -> None:
        if self.engine is None:
            self.engine = engine()
        eng = self.engine
        dialect = eng.dialect
        compiled = self.stmt.compile(dialect=dialect)
        self.sql, self.positions = compiled.string, compiled.positiontup if compiled.positional else None
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for name, bind in compiled.binds.items()}
        # The statement's own values (the statuses) made once; the five that change, per message.
        self.fixed = {name: processors[name](bind.value) if processors[name] else bind.value
                      for name, bind in compiled.binds.items() if name not in _MARK_VALUES}
        self.process = [(name, processors[name]) for name in _MARK_VALUES if processors.get(name) is not None]
        self.errors = dialect.loaded_dbapi.Error
        pooled = eng.raw_connection()
        raw = pooled.driver_connection
        pooled.detach()  # its autocommit and sync settings never go back to the pool
        if dialect.name == "sqlite":
            raw.isolation_level = None  # autocommit: no BEGIN or COMMIT of our own
            raw.execute("PRAGMA synchronous=NORMAL")
        else:
            raw.autocommit = True
            raw.execute("SET synchronous_commit = off")
        self.raw, self.cursor = raw, raw.cursor()

    def mark(self, delivery_id: int, message_id: str, owner: str) -> int:
        if self.raw is None:
            self._connect()
        now = utcnow()
        params = {"d_id": delivery_id, "owner": owner, "mid": message_id, "t_sent": now}
        for name, process in self.process:
            params[name] = process(params[name])
        params.update(self.fixed)
        try:
            self.cursor.execute(self.sql, tuple(params[k] for k in self.positions) if self.positions else params)
            return self.cursor.rowcount
        except self.errors:
            self._disconnect()  # a connection the database dropped is not used again
            raise

    def record(self, delivery_id: int, message_id: str, owner: str, strict: bool = True) -> None:
        """Mark one accepted message sent, now. Should the database be away, the write is tried
        again until it is back (MARK_SENT_PATIENCE seconds at most): meanwhile no other run can
        take the row either, and once it is back the run's heartbeat renews the lease within a
        quarter of it. LeaseLost if its row is no longer this run's."""
        deadline, pause = time.monotonic() + MARK_SENT_PATIENCE, 0.1
        while True:
            try:
                marked = self.mark(delivery_id, message_id, owner)
                break
            except Exception as exc:  # noqa: BLE001 - the driver's errors (connecting included)
                if not isinstance(exc, (DBAPIError, getattr(self, "errors", DBAPIError))) \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
        if not marked and strict:
            raise LeaseLost(f"delivery {delivery_id} is no longer held by its run")

    def _disconnect(self) -> None:
        if self.raw is not None:
            raw, self.raw, self.cursor = self.raw, None, None
            try:
                raw.close()
            except Exception:  # noqa: BLE001 - already gone
                pass

    def close(self) -> None:
        """Let the connection go."""
        self._disconnect()


_MARK_VALUES = ("d_id", "owner", "mid", "t_sent")


def _mark_sent(delivery_id: int, message_id: str, lease: Lease, recorder: _Recorder, strict: bool = True) -> None:
    """Record one accepted message now: LeaseLost if this run no longer holds its row."""
    recorder.record(delivery_id, message_id, lease.owner, strict)


MARK_SENT_PATIENCE = 300


def _release(lease: Lease) -> int:
    """Fold in the marks of the messages the relay accepted, and give back the rows this run
    claimed and did not try (a pause, a cancel, the relay away, an error): queued again at once,
    or cancelled with their campaign, the attempt not counted."""
    try:
        session.rollback()
        if not lease.ids:
            return 0  # nothing claimed since the last release
        # The claim's rows lie between its first and last id (a range the primary key answers,
        # where a list of 500 ids is 500 look-ups); the owner picks this run's among them.
        mine = (Delivery.id.between(lease.ids[0], lease.ids[-1]), Delivery.claimed_by == lease.owner)
        campaigns.fold_accepted(*mine)  # the messages the relay took are sent, whatever becomes of the rest
        n = 0
        if not lease.all_tried:
            now = utcnow()
            held = (*mine, Delivery.status == DeliveryStatus.SENDING)
            cancelled = exists(select(Campaign.id).where(Campaign.id == Delivery.campaign_id,
                                                         Campaign.status == CampaignStatus.CANCELLED))
            n = session.execute(update(Delivery).where(*held, cancelled)
                                .values(status=DeliveryStatus.CANCELLED, claimed_by=None, lease_until=None, updated_at=now)
                                .execution_options(synchronize_session=False)).rowcount
            n += session.execute(update(Delivery).where(*held)
                                 .values(status=DeliveryStatus.QUEUED, attempts=Delivery.attempts - 1, claimed_by=None,
                                         lease_until=None, updated_at=now)
                                 .execution_options(synchronize_session=False)).rowcount
        session.commit()
        lease.ids, lease.all_tried = [], False
        return n
    except Exception:  # noqa: BLE001 - the database away: the lease runs out and `recover` takes them
        session.rollback()
        log.warning("could not release the rows of %s", lease.owner, exc_info=True)
        return 0


def _unstall(campaign_id: int) -> bool:
    """The send moves again: the campaign's page stops saying why it waits."""
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(stalled_reason=None)
                    .execution_options(synchronize_session=False))
    session.commit()
    return False


def _wait_for_relay(campaign_id: int, batch_no: int, outage: int, why: str) -> None:
    """The relay cannot be reached: the batch tries again after a back-off that doubles with each
    failed run (up to ten minutes), and the campaign's page says why it waits. (Redis away too:
    reconcile queues the batch again.)"""
    delay = min(max(1, current_app.config["RETRY_BASE_SECONDS"]) * 2 ** min(outage, 10), 600)
    when = utcnow() + timedelta(seconds=delay)
    reason = f"Waiting for the mail relay ({why}); trying again at {when:%H:%M:%S} UTC."
    session.execute(update(Campaign).where(Campaign.id == campaign_id).values(stalled_reason=reason[:300])
                    .execution_options(synchronize_session=False))
    work.after_commit("send_batch_later", campaign_id, batch_no, when, f"relay-{outage + 1}-{int(time.time())}",
                      outage + 1)
    session.commit()
    log.warning("campaign %s batch %s: %s", campaign_id, batch_no, reason)


class Recipient:
    """What a message needs of a member, read in one query per chunk rather than as ORM objects
    (which cost more to load than the message costs to build)."""

    __slots__ = ("id", "first_name", "last_name", "email", "membership_number", "ward", "polling_district",
                 "public_id", "branch")

    def __init__(self, row):
        (self.id, self.first_name, self.last_name, self.email, self.membership_number, self.ward,
         self.polling_district, self.public_id, branch_name) = row
        self.branch = _Branch(branch_name) if branch_name is not None else None


class _Branch:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


def _still_reachable(campaign: Campaign, rows):
    """Split claimed rows into those that may still be sent and those now suppressed
    (unsubscribed, objected, bounced or on hold since the snapshot), with the members to write
    to, by id: one query checks and reads them."""
    member_ids = [r.member_id for r in rows if r.member_id is not None]
    found = session.execute(
        select(Member.id, Member.first_name, Member.last_name, Member.email, Member.membership_number, Member.ward,
               Member.polling_district, Member.public_id, Branch.name)
        .outerjoin(Branch, Branch.id == Member.branch_id)
        .where(Member.id.in_(member_ids), segments.reachable(campaign.stream)))
    members = {m.id: m for m in map(Recipient, found)}
    keep = [r for r in rows if r.member_id in members]
    return keep, [r for r in rows if r.member_id not in members], members


class _Built:
    """A chunk's messages, built one after another before the first is sent: building and sending
    each in turn, the template engine, the SMTP conversation and the database each found the
    processor's caches full of the others' work, and every message cost about twice as much.
    `build` hands over each message once, as `CampaignMessages.build` would have built it then
    (a message it does not hold, it builds)."""

    def __init__(self, messages: CampaignMessages, rows, members: dict):
        self.messages = messages
        self.envelopes = {row.id: messages.build(members[row.member_id], row.id, to_address=row.email)
                          for row in rows if row.member_id in members}

    def build(self, member, delivery_id: int | None, to_address: str | None = None) -> Envelope:
        env = self.envelopes.pop(delivery_id, None)
        return env if env is not None else self.messages.build(member, delivery_id, to_address=to_address)

    def upcoming(self) -> Upcoming | None:
        """The message to be sent after the one just handed over (the chunk's rows go in order)."""
        env = next(iter(self.envelopes.values()), None)
        return Upcoming(env.sender, [env.recipient], env.data) if env is not None else None


def _send_one(conn: Connection, messages: CampaignMessages | _Built, row, member, before_content=None) -> Outcome:
    if member is None:
        return Outcome(row.id, row.member_id, DeliveryStatus.SUPPRESSED, error="member removed")
    env = messages.build(member, row.id, to_address=row.email)
    then = messages.upcoming() if isinstance(messages, _Built) else None  # its envelope may go with this one's end
    result = conn.send(env.sender, [env.recipient], env.data, before_content, then)[env.recipient]  # RelayUnavailable: the batch waits
    if result.accepted:
        return Outcome(row.id, row.member_id, DeliveryStatus.SENT, message_id=env.message_id)
    if result.code is None:  # the connection was lost: the transport reopens it for the next message
        return _temporary(row, result.reply)
    return _refused(row, result.code, result.reply)


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _refused(row, code: int, reply) -> Outcome:
    message = f"{code} {_text(reply)}"[:1000]
    if 400 <= code < 500:
        return _temporary(row, message)
    return Outcome(row.id, row.member_id, DeliveryStatus.FAILED, error=message, code=code)


def _temporary(row, message: str) -> Outcome:
    if row.attempts >= current_app.config["MAX_ATTEMPTS"]:
        return Outcome(row.id, row.member_id, DeliveryStatus.FAILED,
                       error=f"gave up after {row.attempts} attempts: {message}"[:1000])
    return Outcome(row.id, row.member_id, DeliveryStatus.DEFERRED, error=message[:1000], attempts=row.attempts)


def _record(campaign_id: int, outcomes: list[Outcome], lease: Lease) -> None:
    """Write a chunk's other outcomes (refused, deferred, suppressed) in one statement, for the
    rows this run still holds. A deferral in a campaign cancelled meanwhile is a cancellation."""
    if not outcomes:
        return
    now = utcnow()
    cancelled = _status(campaign_id) is CampaignStatus.CANCELLED
    rows = []
    for o in outcomes:
        status = DeliveryStatus.CANCELLED if cancelled and o.status is DeliveryStatus.DEFERRED else o.status
        row = {"id": o.delivery_id, "status": status, "error": o.error, "updated_at": now, "lease_until": None}
        if status is DeliveryStatus.DEFERRED:
            row["next_attempt_at"] = now + backoff(o.attempts)
        rows.append(row)
    _update_by_id(rows, lease.owner)
    _count_against_health([o for o in outcomes if o.status is DeliveryStatus.FAILED and o.code])
    session.commit()


def _update_by_id(rows: list[dict], owner: str) -> None:
    """UPDATE deliveries by id, where `owner` still holds them, one executemany per set of columns
    (a chunk is usually one set): the statements the ORM's bulk update makes, without its bookkeeping."""
    table = Delivery.__table__
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for columns, group in groups.items():
        values = {c: bindparam(c) for c in columns if c != "id"}
        session.execute(table.update().where(table.c.id == bindparam("delivery_id"), table.c.claimed_by == owner,
                                             table.c.status == DeliveryStatus.SENDING.value).values(values),
                        [{**row, "delivery_id": row["id"]} for row in group])


def _count_against_health(failures: list[Outcome]) -> None:
    """A permanent refusal counts against the member's email health (hard ones hold the address)."""
    for o in failures:
        member = session.get(Member, o.member_id) if o.member_id else None
        if member is None:
            continue
        new = EmailHealth.ON_HOLD if o.code in HARD_CODES else EmailHealth.SOFT_BOUNCING
        if member.email_health is EmailHealth.ON_HOLD or member.email_health is new:
            continue
        audit.record("member.email_health", "member", member.id, {"email_health": [member.email_health.value, new.value]},
                     note=o.error or "", actor="sending")
        member.email_health = new


def _schedule_retry(campaign_id: int, batch_no: int) -> None:
    """Deferred rows come back after a back-off that doubles with each attempt (queued after the
    commit; Redis away: reconcile finds the deferred rows and queues the batch)."""
    row = session.execute(select(Delivery.attempts, Delivery.next_attempt_at).where(
        Delivery.campaign_id == campaign_id, Delivery.batch_no == batch_no,
        Delivery.status == DeliveryStatus.DEFERRED).order_by(Delivery.next_attempt_at).limit(1)).first()
    if row is None or _status(campaign_id) is not CampaignStatus.SENDING:
        return
    work.after_commit("send_batch_later", campaign_id, batch_no, max(row.next_attempt_at, utcnow()),
                      f"retry-{row.attempts}")
