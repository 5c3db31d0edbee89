"""The PostgreSQL store against django-helpdesk on the same PostgreSQL server.

Run ``python bench/bench_postgres.py`` (needs the ``postgres`` extra and, for the peer, the
``bench`` dependency group's django-helpdesk; ``--quick`` is a smoke run). The server is
``$HELPKIT_BENCH_POSTGRES_DSN``, else ``$HELPKIT_TEST_POSTGRES_DSN``, else the local one
(``postgresql://postgres@127.0.0.1:5432/postgres``). Every measurement runs in its own process
on a database of its own (created, then dropped), at the server's durability
(``synchronous_commit`` is read back on each side's connections and reported). Writes
``bench/results/postgres.md`` and prints the same Markdown.

The workload is bench/bench_sqlite.py's, with its inputs (the same tickets, updates and
queue queries, imported from it):

1. creates and updates, each its own committed transaction on both sides: helpkit
   ``Helpdesk.open_ticket(body=...)`` and ``reply(status="pending")``; django-helpdesk a
   ``Ticket`` and its first ``FollowUp`` as its ``TicketForm`` saves them, and
   ``update_ticket(comment=..., new_status=...)``, each inside ``transaction.atomic()``;
2. the agent queue (open tickets of one assignee, of one group / queue, by priority, first 50)
   on tickets bulk-loaded without timing (helpkit through the store's ``commit`` in batches,
   django-helpdesk with ``bulk_create``), warm, p50 / p95;
3. the SLA sweep of ``due`` tickets by 1, 2 and 4 worker processes at once, each with its own
   desk on the same schema (a copy of one loaded database per run, made with
   ``CREATE DATABASE ... TEMPLATE``), checked afterwards: every due ticket warned exactly once;
4. peak memory: ``ru_maxrss`` of each worker process;
5. the floor of a durable commit: one-row ``INSERT`` commits per second on the same server
   just before and after each side's creates and updates (:func:`bare_commit_rate`), and
   from it the highest ratio reachable in each pairing. ``--rounds N`` runs the creates and
   updates of both sides N times, alternating, and pairs every run of one side with every
   run of the other;
6. the commit statements alone (``helpkit-alone``, a worker of its own in each round): helpkit
   creates through the desk, untimed, recording the one-statement commit each sends, then
   sends those statements once more with new ticket ids through the store's own libpq call
   on one of its pooled connections (:func:`replay_creates`), timed: the same rows, indexes,
   checks and durable commits with no Python pipeline before them. Its creates/s is what
   helpkit's creates would reach if the library's Python cost nothing beyond that call;
   against django-helpdesk's creates it shows how much of a ratio the server's side allows
   and how much the Python side takes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The shared inputs, from the script beside this one (on the path just above).
import bench_sqlite as bs

RESULTS = Path(__file__).resolve().parent / "results" / "postgres.md"
DSN = os.environ.get(
    "HELPKIT_BENCH_POSTGRES_DSN",
    os.environ.get("HELPKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
PACKAGES = ["helpkit", "psycopg", "psycopg-pool", "django-helpdesk", "Django"]
LOAD_BATCH = 2000  # ticket changes per store commit while bulk-loading (setup)


@dataclass
class Job:
    """What one worker process measures."""

    system: str  # helpkit, django, helpkit-alone, helpkit-bulk, django-bulk or sweep
    size: int  # tickets created (helpkit, django), loaded (*-bulk) or due (sweep)
    updates: int = 0
    runs: int = 0
    workers: list[int] = field(default_factory=list)  # sweep: processes per run
    dsn: str = DSN
    # A helpkit source tree to run instead of the installed one (--baseline: its src/ goes
    # first on the worker's PYTHONPATH), for a before/after in one run.
    source: str = ""


@dataclass
class Result:
    """What one worker process reports back."""

    job: Job
    label: str = ""
    synchronous_commit: str = ""
    create_s: float | None = None
    update_s: float | None = None
    # CPU seconds over the creates and over the updates: the worker process's
    # (time.process_time) and the server backends' of its database (/proc, same machine).
    create_cpu: list[float | None] = field(default_factory=list)  # client, server
    update_cpu: list[float | None] = field(default_factory=list)
    updates: int = 0
    load_s: float | None = None
    q_assignee: list[float] = field(default_factory=list)  # ms per query, every run
    q_group: list[float] = field(default_factory=list)
    rows_assignee: int = 0
    rows_group: int = 0
    counts: str = ""
    sweeps: list[dict[str, Any]] = field(default_factory=list)  # one per worker count
    maxrss_kib: int = 0
    load: list[float] = field(default_factory=list)  # 1-minute load average, start and end
    # One-row INSERT commits per second on the same server, just before and just after the
    # creates and updates (bare_commit_rate): the floor of one durable commit then.
    bare_commits: list[float] = field(default_factory=list)
    revision: str = ""

    @property
    def creates_per_s(self) -> float | None:
        return self.job.size / self.create_s if self.create_s else None

    @property
    def updates_per_s(self) -> float | None:
        return self.updates / self.update_s if self.update_s else None


# ---------------------------------------------------------------- databases


def database_url(dsn: str, database: str) -> str:
    """``dsn`` naming ``database`` instead of its own."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


@contextmanager
def fresh_database(dsn: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """The URL of a database created for the block (from ``template`` if given), dropped
    after it."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(create)
    try:
        yield database_url(dsn, name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def server_version(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return "unknown" if row is None else str(row[0])


class CpuMeter:
    """CPU time spent since the last lap: this process's (``time.process_time``) and that
    of the server backends serving the database ``url`` (from ``/proc/<pid>/schedstat``, the
    scheduler's nanoseconds on a CPU, where the kernel keeps it; else ``/proc/<pid>/stat``'s
    utime and stime, in whole clock ticks of 10 ms, too coarse to tell two runs of a few
    hundred milliseconds apart; so only with the server on this machine and readable; else
    None), the meter's own connection aside. A backend that ends between two laps is not
    counted (the runs keep theirs)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._schedstat = Path("/proc/self/schedstat").exists()
        self._client = time.process_time()
        self._server = self._backends()

    def _backends(self) -> dict[int, float] | None:
        rows = self._conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        cpu: dict[int, float] = {}
        for (pid,) in rows:
            try:
                if self._schedstat:
                    # Time on a CPU, in nanoseconds: the scheduler's own count.
                    on_cpu = Path(f"/proc/{pid}/schedstat").read_text().split()[0]
                    cpu[int(pid)] = int(on_cpu) / 1e9
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except (OSError, IndexError, ValueError):
                return None
            # utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
            cpu[int(pid)] = (int(fields[11]) + int(fields[12])) / self._tick
        return cpu

    def lap(self) -> list[float | None]:
        """[client s, server s] since the last lap (or the start)."""
        client, server = time.process_time(), self._backends()
        spent: list[float | None] = [client - self._client, None]
        if server is not None and self._server is not None:
            before = self._server
            spent[1] = sum(t - before.get(pid, 0.0) for pid, t in server.items())
        self._client, self._server = client, server
        return spent

    def close(self) -> None:
        self._conn.close()


# ---------------------------------------------------------------- helpkit


def _helpkit_desk(url: str, result: Result) -> tuple[Any, list[str]]:
    """A helpkit desk in a fresh database with the bench's groups, agents and contacts."""
    from helpkit import Helpdesk
    from helpkit.stores.postgres.store import PostgresStore

    desk = Helpdesk(f"{url}?schema=helpkit&pool_max=4", entry_points=False)
    store = desk.store
    assert isinstance(store, PostgresStore)
    # What the store's own connections run with (a private method, read here on purpose).
    with store._reading() as cur:
        row = cur.execute("SHOW synchronous_commit").fetchone()
    result.synchronous_commit = str(row[0]) if row else "?"
    result.label = f"helpkit (postgresql, synchronous_commit={result.synchronous_commit})"
    contacts = bs.staffed(desk)
    return desk, contacts


def _count(store: Any, table: str) -> int:
    with store._reading() as cur:
        row = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


Call = tuple[bytes, bytes, list[bytes | None]]


@contextmanager
def recording_calls() -> Iterator[list[Call] | None]:
    """The one-statement commits the PostgreSQL store sends while the block runs, each
    ``(name, query, values)`` of its libpq call (``helpkit.stores.postgres.store.call``),
    kept as sent (one list append per commit); None where the store has no such call (a
    helpkit without it, or a psycopg it does not use it with)."""
    from helpkit.stores.postgres import store as store_module

    sent = getattr(store_module, "call", None)
    if sent is None or not getattr(store_module, "CALLS_BY_LIBPQ", False):
        yield None
        return
    calls: list[Call] = []
    keep = calls.append

    def recorded(conn: Any, prepared: Any, name: bytes, query: bytes, values: Any) -> Any:
        keep((name, query, values))
        return sent(conn, prepared, name, query, values)

    setattr(store_module, "call", recorded)  # noqa: B010
    try:
        yield calls
    finally:
        setattr(store_module, "call", sent)  # noqa: B010


def replay_creates(store: Any, calls: list[Call], cpu: CpuMeter) -> tuple[int, float, list[Any]]:
    """Send the recorded commits of creates ``calls`` once more, each with its ticket's id
    replaced by a new one everywhere in its values (the row, its JSON state, its events),
    through the same libpq call on one of ``store``'s pooled connections, one by one: the
    creates' statements alone. Their numbers come from the server, as the creates' did.
    Returns how many, the wall seconds and ``cpu``'s lap over them."""
    from helpkit.stores.postgres.call import call as sent

    ids = {values[2] for _, _, values in calls}  # a guarded commit's: agent, contact, id...
    jobs: list[Call] = []
    for name, query, values in calls:
        old = values[2]
        assert old is not None and len(old) > 2
        new = b"ff" + old[2:]
        assert new not in ids
        jobs.append((name, query, [v.replace(old, new) if v else v for v in values]))
    conn = store._pool.getconn()
    try:
        prepared = conn.prepared_statements()
        cpu.lap()
        start = time.perf_counter()
        for name, query, values in jobs:
            sent(conn, prepared, name, query, values)
        took = time.perf_counter() - start
        spent = cpu.lap()
    finally:
        store._pool.putconn(conn)
    return len(jobs), took, spent


def run_helpkit(job: Job, url: str) -> Result:
    """Creates and updates through the desk, then the queue on what they left."""
    from helpkit import StatusCategory, TicketQuery

    result = Result(job)
    desk, contacts = _helpkit_desk(url, result)
    ids: list[str] = []
    cpu = CpuMeter(url)
    start = time.perf_counter()
    for i, s in enumerate(bs.specs(job.size), 1):
        ids.append(bs.open_spec(desk, contacts, s).id)
        bs._progress("helpkit creates", i, job.size, start)
    result.create_s = time.perf_counter() - start
    result.create_cpu = cpu.lap()
    agents = [s.agent for s in bs.specs(job.size)]
    plan = bs.update_plan(job.size, job.updates)
    start = time.perf_counter()
    for n, (i, body) in enumerate(plan, 1):
        bs.helpkit_update(desk, ids[i], agents[i], body)
        bs._progress("helpkit updates", n, len(plan), start)
    result.update_s = time.perf_counter() - start
    result.update_cpu = cpu.lap()
    cpu.close()
    result.updates = len(plan)
    bs.helpkit_queries(desk, result, job.runs, TicketQuery, StatusCategory)  # type: ignore[arg-type]
    result.counts = (
        f"{_count(desk.store, 'tickets')} tickets, {_count(desk.store, 'events')} events"
    )
    desk.shutdown()
    return result


def run_helpkit_alone(job: Job, url: str) -> Result:
    """Creates through the desk, untimed, then their commit statements alone, timed
    (:func:`replay_creates`): ``create_s`` and ``create_cpu`` are the replay's."""
    result = Result(job)
    desk, contacts = _helpkit_desk(url, result)
    result.label = result.label.replace("helpkit (", "helpkit, statements alone (", 1)
    start = time.perf_counter()
    with recording_calls() as calls:
        for i, s in enumerate(bs.specs(job.size), 1):
            bs.open_spec(desk, contacts, s)
            bs._progress("helpkit creates (untimed)", i, job.size, start)
    if calls is None or len(calls) != job.size:
        raise SystemExit("helpkit-alone: this helpkit does not commit a create in one call")
    cpu = CpuMeter(url)
    replayed, result.create_s, result.create_cpu = replay_creates(desk.store, calls, cpu)
    cpu.close()
    tickets = _count(desk.store, "tickets")
    if replayed != job.size or tickets != 2 * job.size:
        raise SystemExit(f"helpkit-alone: {tickets} tickets after replaying {replayed}")
    result.counts = (
        f"{tickets} tickets (half of them replayed), {_count(desk.store, 'events')} events"
    )
    desk.shutdown()
    return result


def _opened(desk: Any, contacts: list[str], i: int, s: bs.Spec, now: datetime) -> Any:
    """The store write opening ticket ``i`` of the specs (as run_helpkit_bulk of
    bench_sqlite.py builds it)."""
    from helpkit import Actor, Impact, Urgency, lifecycle
    from helpkit.ports import TicketChange
    from helpkit.tickets import Comment

    actor = Actor.agent(f"a{s.agent:03d}")
    ticket_id = f"t{i:08d}"
    first = Comment(
        id=f"c{i:08d}",
        author=actor,
        body=s.body,
        public=True,
        channel="web",
        created_at=now,
        ticket_id=ticket_id,
    )
    outcome = lifecycle.open_ticket(
        ticket_id=ticket_id,
        number=i,
        at=now,
        actor=actor,
        subject=s.subject,
        requester_id=contacts[s.contact],
        organization_id=None,
        impact=Impact.coerce(s.impact),
        urgency=Urgency.coerce(s.urgency),
        matrix=desk.config.matrix,
        workflow=desk.config.workflow,
        channel="web",
        first_comment=first,
        assignee_id=f"a{s.agent:03d}",
        group_id=f"g{s.group:02d}",
    )
    return TicketChange(outcome.ticket, outcome.events, outcome.previous_seq)


def run_helpkit_bulk(job: Job, url: str) -> Result:
    """Bulk-load ``job.size`` tickets through the store's commit (untimed), then the queue."""
    from helpkit import StatusCategory, TicketQuery

    result = Result(job)
    desk, contacts = _helpkit_desk(url, result)
    start = time.perf_counter()
    batch: list[Any] = []
    now = desk.now()
    for i, s in enumerate(bs.specs(job.size), 1):
        batch.append(_opened(desk, contacts, i, s, now))
        if len(batch) == LOAD_BATCH or i == job.size:
            desk.store.commit(batch)
            batch = []
            bs._progress("helpkit bulk load", i, job.size, start)
    result.load_s = time.perf_counter() - start
    with desk.store._reading() as cur:
        cur.execute("VACUUM ANALYZE tickets")
    bs.helpkit_queries(desk, result, job.runs, TicketQuery, StatusCategory)  # type: ignore[arg-type]
    result.counts = f"{_count(desk.store, 'tickets')} tickets"
    desk.shutdown()
    return result


# ---------------------------------------------------------------- django-helpdesk


def _django(url: str, result: Result) -> dict[str, Any]:
    """django-helpdesk configured in this process on the database ``url`` (its schema made by
    its migrations), with the bench's queues and agents; its modules by name."""
    parts = urlsplit(url)
    imp = bs._import
    imp("django.conf").settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        USE_TZ=True,
        TIME_ZONE="UTC",
        SITE_ID=1,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sites",
            "django.contrib.humanize",
            "rest_framework",
            "helpdesk",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": parts.path.lstrip("/"),
                "USER": unquote(parts.username or ""),
                "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname or "",
                "PORT": str(parts.port or ""),
            }
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {"context_processors": []},
            }
        ],
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        LOGGING_CONFIG=None,
        HELPDESK_TEAMS_MODE_ENABLED=False,
    )
    imp("django").setup()
    imp("django.core.management").call_command("migrate", verbosity=0, interactive=False)
    db = imp("django.db")
    with db.connection.cursor() as cur:
        cur.execute("SHOW synchronous_commit")
        result.synchronous_commit = str(cur.fetchone()[0])
    result.label = f"django-helpdesk (postgresql, synchronous_commit={result.synchronous_commit})"
    models = imp("helpdesk.models")
    user_model = imp("django.contrib.auth").get_user_model()
    return {
        "db": db,
        "models": models,
        "timezone": imp("django.utils.timezone"),
        "update_ticket": imp("helpdesk.update_ticket"),
        "signals": imp("helpdesk.signals"),
        "queues": [
            models.Queue.objects.create(title=f"Group {g}", slug=f"g{g:02d}")
            for g in range(bs.GROUPS)
        ],
        "users": [
            user_model.objects.create_user(
                f"a{a:03d}", email=f"a{a}@help.example", password=None, is_staff=True
            )
            for a in range(bs.AGENTS)
        ],
    }


def _django_queries(d: dict[str, Any], result: Result, runs: int) -> None:
    ticket_model = d["models"].Ticket
    closed = [
        ticket_model.CLOSED_STATUS,
        ticket_model.RESOLVED_STATUS,
        ticket_model.DUPLICATE_STATUS,
    ]
    active = ticket_model.objects.select_related("queue").exclude(status__in=closed)
    users, queues = d["users"], d["queues"]

    def by_assignee(agent: int, _group: int) -> int:
        rows = active.filter(assigned_to_id=users[agent].id).order_by("priority", "created", "id")
        return len(list(rows[:50]))

    def by_queue(_agent: int, group: int) -> int:
        rows = active.filter(queue_id=queues[group].id).order_by("priority", "created", "id")
        return len(list(rows[:50]))

    plan = bs.query_plan(runs)
    result.q_assignee, result.rows_assignee = bs.timed_queries(plan, by_assignee)
    result.q_group, result.rows_group = bs.timed_queries(plan, by_queue)


def run_django(job: Job, url: str) -> Result:
    """bench_sqlite.py's django-helpdesk creates and updates, on PostgreSQL."""
    result = Result(job)
    d = _django(url, result)
    models = d["models"]
    ticket_model, followup_model = models.Ticket, models.FollowUp
    ids: list[int] = []
    cpu = CpuMeter(url)
    start = time.perf_counter()
    for i, s in enumerate(bs.specs(job.size), 1):
        ids.append(bs.django_create(d, s))
        bs._progress("django-helpdesk creates", i, job.size, start)
    result.create_s = time.perf_counter() - start
    result.create_cpu = cpu.lap()
    agents = [s.agent for s in bs.specs(job.size)]
    plan = bs.update_plan(job.size, job.updates)
    start = time.perf_counter()
    for n, (i, body) in enumerate(plan, 1):
        bs.django_update(d, ids[i], agents[i], body)
        bs._progress("django-helpdesk updates", n, len(plan), start)
    result.update_s = time.perf_counter() - start
    result.update_cpu = cpu.lap()
    cpu.close()
    result.updates = len(plan)
    _django_queries(d, result, job.runs)
    result.counts = (
        f"{ticket_model.objects.count()} tickets, {followup_model.objects.count()} follow-ups, "
        f"{models.TicketChange.objects.count()} ticket changes"
    )
    d["db"].connection.close()
    return result


def run_django_bulk(job: Job, url: str) -> Result:
    """``job.size`` tickets by ``bulk_create`` (untimed; no follow-ups: the queue query does
    not read them), then the queue."""
    result = Result(job)
    d = _django(url, result)
    ticket_model, users, queues = d["models"].Ticket, d["users"], d["queues"]
    now = d["timezone"].now()
    start = time.perf_counter()
    batch = []
    for i, s in enumerate(bs.specs(job.size), 1):
        batch.append(
            ticket_model(
                title=s.subject,
                created=now,
                modified=now,
                status=ticket_model.OPEN_STATUS,
                queue=queues[s.group],
                description=s.body,
                priority=s.priority,
                assigned_to=users[s.agent],
            )
        )
        if len(batch) == 5000 or i == job.size:
            ticket_model.objects.bulk_create(batch)
            batch = []
            bs._progress("django-helpdesk bulk load", i, job.size, start)
    result.load_s = time.perf_counter() - start
    with d["db"].connection.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {ticket_model._meta.db_table}")
    _django_queries(d, result, job.runs)
    result.counts = f"{ticket_model.objects.count()} tickets"
    d["db"].connection.close()
    return result


# ---------------------------------------------------------------- the sweep


def _sweep_load(url: str, due: int) -> float:
    """``due`` open tickets, each past its 75% warning by 30 minutes (bench_sweep.py's), each
    with the timer state the pipeline keeps beside a ticket it commits (as bench_sweep.py
    loads them: a ticket opened through a desk has one)."""
    import attrs
    import bench_sweep as bw

    from helpkit import Actor, Priority
    from helpkit.events import TicketOpened
    from helpkit.lifecycle import apply
    from helpkit.ports import TicketChange
    from helpkit.priority import Impact, Urgency
    from helpkit.sla import SlaFold
    from helpkit.stores.postgres.store import PostgresStore
    from helpkit.tickets import StatusCategory

    store = PostgresStore(url, schema="helpkit")
    start = time.perf_counter()
    changes: list[TicketChange] = []
    states: list[str | None] = []
    opened = bw.NOW - timedelta(hours=6, minutes=30)
    fingerprint = bw.POLICY.fingerprint()
    for index in range(due):
        event = TicketOpened(
            ticket_id=f"t{index:07d}",
            seq=1,
            at=opened,
            actor=Actor.system("bench"),
            number=0,
            subject="bench",
            requester_id="c1",
            organization_id=None,
            status="open",
            category=StatusCategory.OPEN,
            impact=Impact.MEDIUM,
            urgency=Urgency.MEDIUM,
            priority=Priority.P3,
            channel="web",
            group_id="l1",
        )
        state = attrs.evolve(
            apply(None, event),
            sla_policy=bw.POLICY.name,
            next_deadline=opened + bw.TARGET,
            next_check=opened + bw.TARGET * 0.75,
        )
        changes.append(TicketChange(state, (event,), 0))
        # The timer state as the pipeline keeps it (helpkit.timers.Timers.state).
        fold = SlaFold.of([event], bw.POLICY)
        states.append(json.dumps({"sla": [fingerprint, fold.to_data()]}, separators=(",", ":")))
        if len(changes) == LOAD_BATCH or index == due - 1:
            store.commit_planned(changes, states)
            changes, states = [], []
            bs._progress("sweep load", index + 1, due, start)
    with store._reading() as cur:
        cur.execute("VACUUM ANALYZE tickets")
    store.close()
    return time.perf_counter() - start


def sweep_worker(url: str) -> None:
    """One sweeping process: open the desk, say ready, wait for the go, sweep, report."""
    import bench_sweep as bw

    from helpkit import DeskConfig, Helpdesk
    from helpkit.sla import SlaPolicySet

    desk = Helpdesk(
        f"{url}?schema=helpkit&pool_max=2",
        config=DeskConfig(sla=SlaPolicySet([bw.POLICY])),
        clock=bw.FixedClock(),
        entry_points=False,
    )
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    report = desk.sweep(bw.NOW)
    took = time.perf_counter() - start
    desk.shutdown()
    print(
        json.dumps(
            {
                "seconds": took,
                "examined": report.examined,
                "warnings": report.warnings,
                "conflicts": report.conflicts,
                "failures": report.failures,
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        ),
        flush=True,
    )


def _warned(url: str) -> tuple[int, int]:
    """(warnings recorded, tickets warned more than once)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET search_path TO helpkit")
        rows = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'sla_warned' GROUP BY ticket_id"
        ).fetchall()
    return sum(int(r[0]) for r in rows), sum(1 for r in rows if r[0] > 1)


def run_sweep(job: Job, url: str) -> Result:
    """Load ``job.size`` due tickets once; for each worker count, sweep a copy of them with
    that many processes at once."""
    result = Result(job, label="helpkit sweep (postgresql)")
    result.load_s = _sweep_load(url, job.size)
    template = urlsplit(url).path.lstrip("/")
    for count in job.workers:
        with fresh_database(job.dsn, "hk_bench_sweep_run", template=template) as copy:
            procs = [
                subprocess.Popen(
                    [sys.executable, __file__, "--sweep-worker", copy],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(count)
            ]
            for proc in procs:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            start = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            reports = []
            for proc in procs:
                out, _ = proc.communicate(timeout=3600)
                if proc.returncode:
                    raise RuntimeError(f"a sweep worker failed ({proc.returncode})")
                reports.append(json.loads(out.strip().splitlines()[-1]))
            wall = time.perf_counter() - start
            warned, twice = _warned(copy)
        result.sweeps.append(
            {
                "workers": count,
                "due": job.size,
                "wall_s": wall,
                "per_due_ms": wall / max(job.size, 1) * 1000,
                "warned": warned,
                "warned_twice": twice,
                "examined": sum(r["examined"] for r in reports),
                "warnings": sum(r["warnings"] for r in reports),
                "conflicts": sum(r["conflicts"] for r in reports),
                "failures": sum(r["failures"] for r in reports),
                "per_worker_warnings": [r["warnings"] for r in reports],
                "maxrss_kib": max(r["maxrss_kib"] for r in reports),
            }
        )
        print(f"   sweep: {result.sweeps[-1]}", file=sys.stderr, flush=True)
    return result


# ---------------------------------------------------------------- the driver

RUNNERS: dict[str, Callable[[Job, str], Result]] = {
    "helpkit": run_helpkit,
    "django": run_django,
    "helpkit-alone": run_helpkit_alone,
    "helpkit-bulk": run_helpkit_bulk,
    "django-bulk": run_django_bulk,
    "sweep": run_sweep,
}


def bare_commit_rate(url: str, seconds: float = 1.0) -> float:
    """Durable commits per second with nothing else to do: a one-row INSERT in autocommit
    (one statement, one round trip, one WAL flush at the server's ``synchronous_commit``), in
    a table made for it in the database ``url`` and dropped after.

    No store that commits each command durably can do more commits than this per second
    then, so ``bare_commit_rate() / peer_creates_per_s`` is the highest creates ratio
    reachable on the machine as it was (and the same for updates)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_bare_commits (id bigserial PRIMARY KEY, v text NOT NULL)")
        try:
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                conn.execute("INSERT INTO bench_bare_commits (v) VALUES (%s)", ("x" * 200,))
                n += 1
            return n / (time.perf_counter() - start)
        finally:
            conn.execute("DROP TABLE bench_bare_commits")


def worker(spec: str, out: str) -> None:
    job = Job(**json.loads(spec))
    load = os.getloadavg()[0]
    with fresh_database(job.dsn, f"hk_bench_{job.system.replace('-', '_')}") as url:
        timed = job.system in ("helpkit", "django")
        bare = [bare_commit_rate(url)] if timed else []
        result = RUNNERS[job.system](job, url)
        if timed:
            bare.append(bare_commit_rate(url))
    result.bare_commits = bare
    result.maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.load = [load, os.getloadavg()[0]]
    result.revision = f"baseline {job.source}" if job.source else bs.revision()
    Path(out).write_text(json.dumps(asdict(result)), encoding="utf-8")


def _result(data: dict[str, Any]) -> Result:
    return Result(**{**data, "job": Job(**data["job"])})


def spawn(job: Job, scratch: Path) -> Result:
    """Run one job in a fresh interpreter."""
    out = scratch / f"result-{secrets.token_hex(4)}.json"
    print(f"-- {job.system} size={job.size:,}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    env = None
    if job.source:
        paths = [str(Path(job.source) / "src"), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(asdict(job)), str(out)],
        check=True,
        env=env,
    )
    result = _result(json.loads(out.read_text(encoding="utf-8")))
    out.unlink()
    print(f"   done in {time.perf_counter() - start:,.0f} s", file=sys.stderr, flush=True)
    return result


def _per(cpu: list[float | None], count: int) -> str:
    """CPU ms per command, client / server, from seconds over ``count`` commands."""
    if not cpu or not count:
        return "-"
    return " / ".join("?" if x is None else f"{x * 1000 / count:.2f}" for x in cpu)


def _queue(times: list[float], rows: int) -> str:
    return f"{bs.median(times):.2f} / {bs.p95(times):.2f}" if rows else "- (empty)"


@dataclass
class Run:
    """When the results were measured, on what, under which load."""

    date: str
    took: float
    load_start: list[float]
    load_end: list[float]
    server: str
    command: str


def _system(r: Result) -> str:
    """A row's system, marked when it ran the baseline source."""
    return r.label.split(" (")[0] + (" (baseline)" if r.job.source else "")


def _sources(results: list[Result]) -> list[str]:
    """The helpkit sources of the creates/updates rows: "" (installed) first, then baselines."""
    return sorted({r.job.source for r in results if r.job.system == "helpkit"} | {""})


def render(results: list[Result], run: Run) -> str:
    def find(system: str, size: int | None = None) -> list[Result]:
        return [
            r for r in results if r.job.system == system and (size is None or r.job.size == size)
        ]

    out = [
        "# PostgreSQL store benchmark: helpkit against django-helpdesk",
        "",
        f"Produced by `{run.command}` on {run.date}. Each row is one worker process on a",
        "database of its own on the same PostgreSQL server, with bench/bench_sqlite.py's inputs",
        f"({bs.AGENTS} agents in {bs.GROUPS} groups / queues, {bs.CONTACTS} contacts, the same",
        "subjects, bodies, ITIL priorities and assignees). Every create and update is its own",
        "committed transaction on both sides; `synchronous_commit` is read back (`SHOW`) on",
        "each side's connections.",
        "",
        "- **creates/s**: helpkit `Helpdesk.open_ticket(..., body=...)`; django-helpdesk a",
        "  `Ticket` and its first `FollowUp` saved as its `TicketForm.save()` does (backlink",
        "  scan, `new_ticket_done` signal), in one `transaction.atomic()`.",
        "- **updates/s**: a public comment plus a status change: helpkit",
        '  `reply(..., status="pending")`; django-helpdesk `update_ticket(agent, ticket,',
        "  comment=..., public=True,",
        "  new_status=RESOLVED)` after `Ticket.objects.get`, in one `transaction.atomic()`.",
        "- **queue**: open tickets of one assignee (and of one group / queue) by priority, first",
        "  50, as model objects, warm; a different agent and group each run; p50 / p95 in ms.",
        "  helpkit `Helpdesk.tickets(TicketQuery(assignee_ids=..., categories={new, open}))`;",
        '  django-helpdesk its dashboard queryset (`select_related("queue")`, open statuses).',
        "  On the `*-bulk` rows the tickets were bulk-loaded first (untimed; helpkit through",
        "  `Store.commit` in batches of 2,000, django-helpdesk with `bulk_create`, tickets only),",
        "  then `VACUUM ANALYZE`.",
        "- **CPU ms per create / update**: the worker process's CPU time (`time.process_time`)",
        "  and the server backends' of its database (their time on a CPU in",
        "  `/proc/<pid>/schedstat`, nanoseconds; where the kernel has none, utime + stime in",
        "  `/proc/<pid>/stat`, 10 ms ticks) over the creates and over the updates, per command.",
        "- **peak RSS**: `ru_maxrss` of the worker process (interpreter, imports, setup, work).",
        "- **bare commits/s**: one-row `INSERT`s in autocommit on the same server, for 1 s",
        "  just before and just after that row's creates and updates (one round trip and one",
        "  WAL flush each, nothing else): the most durable commits per second the machine gave",
        "  then. **ceiling** in the ratios: those bare commits/s (the mean of the pairing's four",
        "  measurements) over django-helpdesk's creates/s or updates/s, the highest ratio a store",
        "  committing each command durably could reach in that pairing.",
        "- **helpkit, statements alone**: a worker of its own in each round makes the same",
        "  creates through the desk, untimed, then sends the one-statement commit each of them",
        "  sent once more, with new ticket ids, through the store's own libpq call on one of",
        "  its pooled connections (the same rows, indexes, checks and durable commits, no",
        "  Python pipeline before them): its creates/s and CPU are those of the statements.",
        "  Against django-helpdesk's creates: what the server's side of helpkit's creates",
        "  allows, if the library's Python cost nothing beyond the call.",
        "",
        "## Creates, updates and the queue",
        "",
        "| system | synchronous_commit | tickets | creates/s | updates/s | bare commits/s"
        " (before / after) | CPU ms per create: client / server | CPU ms per update:"
        " client / server | queue assignee p50 / p95 ms | queue group p50 / p95 ms |"
        " peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.job.system == "sweep":
            continue
        # The statements-alone rows measure no queue.
        queues = (
            "- | -"
            if r.job.system == "helpkit-alone"
            else f"{_queue(r.q_assignee, r.rows_assignee)} | {_queue(r.q_group, r.rows_group)}"
        )
        loaded = f" (bulk-loaded in {r.load_s:,.0f} s, untimed)" if r.load_s else ""
        out.append(
            f"| {_system(r)} | {r.synchronous_commit} | {r.job.size:,}{loaded} | "
            f"{bs._fmt(r.creates_per_s, ',.0f')} | {bs._fmt(r.updates_per_s, ',.0f')} | "
            f"{' / '.join(f'{x:,.0f}' for x in r.bare_commits) or '-'} | "
            f"{_per(r.create_cpu, r.job.size)} | {_per(r.update_cpu, r.updates)} | "
            f"{queues} | "
            f"{r.maxrss_kib / 1024:,.0f} |"
        )
    out += [
        "",
        "## Ratios (helpkit / django-helpdesk; latency: django-helpdesk / helpkit)",
        "",
        "Every pairing of this run at the same size and the same `synchronous_commit`.",
        "",
        "| pairing | tickets | creates | creates ceiling | updates | updates ceiling |"
        " queue assignee p50 | queue group p50 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, source in [("helpkit", s) for s in _sources(results)] + [("helpkit-bulk", "")]:
        ratios: list[tuple[float, float, float, float]] = []
        name = f"{kind} (baseline)" if source else kind
        for ours in [r for r in find(kind) if r.job.source == source]:
            for theirs in find(kind.replace("helpkit", "django"), ours.job.size):
                if theirs.synchronous_commit != ours.synchronous_commit:
                    continue
                bare = [*ours.bare_commits, *theirs.bare_commits]
                floor = sum(bare) / len(bare) if bare else None
                if ours.creates_per_s and theirs.creates_per_s and theirs.updates_per_s:
                    ratios.append(
                        (
                            ours.creates_per_s / theirs.creates_per_s,
                            (floor or 0.0) / theirs.creates_per_s,
                            (ours.updates_per_s or 0.0) / theirs.updates_per_s,
                            (floor or 0.0) / theirs.updates_per_s,
                        )
                    )
                out.append(
                    f"| {name} vs {theirs.job.system} | {ours.job.size:,} | "
                    f"{bs._ratio(ours.creates_per_s, theirs.creates_per_s)} | "
                    f"{bs._ratio(floor, theirs.creates_per_s)} | "
                    f"{bs._ratio(ours.updates_per_s, theirs.updates_per_s)} | "
                    f"{bs._ratio(floor, theirs.updates_per_s)} | "
                    f"{bs._latency_ratio(theirs, ours, 'assignee')} | "  # type: ignore[arg-type]
                    f"{bs._latency_ratio(theirs, ours, 'group')} |"  # type: ignore[arg-type]
                )
        if len(ratios) > 1:
            medians = [f"{bs.median(list(column)):,.1f}x" for column in zip(*ratios, strict=True)]
            out.append(
                f"| {name} vs django, median of the {len(ratios)} pairings above | | "
                + " | ".join(medians)
                + " | | |"
            )
    alone = [
        (ours, theirs)
        for ours in find("helpkit-alone")
        for theirs in find("django", ours.job.size)
        if theirs.synchronous_commit == ours.synchronous_commit
    ]
    for ours, theirs in alone:
        out.append(
            f"| helpkit, statements alone vs django | {ours.job.size:,} | "
            f"{bs._ratio(ours.creates_per_s, theirs.creates_per_s)} | | | | | |"
        )
    if len(alone) > 1:
        creates = [
            ours.creates_per_s / theirs.creates_per_s
            for ours, theirs in alone
            if ours.creates_per_s and theirs.creates_per_s
        ]
        out.append(
            f"| helpkit, statements alone vs django, median of the {len(alone)} pairings above"
            f" | | {bs.median(creates):,.1f}x | | | | | |"
        )
    sweeps = [row for r in find("sweep") for row in r.sweeps]
    if sweeps:
        one = next((row["wall_s"] for row in sweeps if row["workers"] == 1), None)
        out += [
            "",
            "## Sweep",
            "",
            "One `Helpdesk.sweep` per worker process, all started at once on a copy of the same",
            "loaded database (every ticket due for its 75% warning, 24/7 calendar, as",
            "bench/bench_sweep.py); wall time from the go to the last worker's end. Afterwards",
            "the warnings in the events table are counted: each due ticket must have exactly one.",
            "",
            "| workers | due | wall s | per due ticket ms | speed-up vs 1 | warnings recorded"
            " (tickets warned twice) | warnings per worker | conflicts | peak RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for row in sweeps:
            out.append(
                f"| {row['workers']} | {row['due']:,} | {row['wall_s']:.2f} | "
                f"{row['per_due_ms']:.3f} | {bs._ratio(one, row['wall_s'])} | "
                f"{row['warned']:,} ({row['warned_twice']}) | "
                f"{', '.join(f'{w:,}' for w in row['per_worker_warnings'])} | "
                f"{row['conflicts']:,} | {row['maxrss_kib'] / 1024:,.0f} |"
            )
    out += ["", "## Rows and load", ""]
    for r in results:
        loaded = f"; loaded in {r.load_s:,.1f} s" if r.load_s else ""
        load = (
            f"; 1-minute load average {r.load[0]:.1f} at start, {r.load[1]:.1f} at end"
            if r.load
            else ""
        )
        out.append(
            f"- {r.label}, {r.job.size:,}: {r.counts or '-'}{loaded}{load}; "
            f"helpkit source {r.revision or '-'}"
        )
    versions = ", ".join(f"{d} {bs._version(d)}" for d in PACKAGES)
    out += [
        "",
        "## Machine",
        "",
        f"- Total bench time {run.took / 60:,.1f} min; load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.2f}' for x in run.load_start)} at start, "
        f"{', '.join(f'{x:.2f}' for x in run.load_end)} at end "
        f"({os.cpu_count()} logical CPUs; other jobs share the machine)",
        f"- Python {sys.version.split()[0]}; PostgreSQL {run.server} (same machine, TCP)",
        f"- {platform.platform()}; CPU: {bs._cpu()}",
        f"- Packages: {versions}",
        "",
    ]
    return "\n".join(out)


def jobs(args: argparse.Namespace) -> list[Job]:
    todo: list[Job] = []
    for round_ in range(args.rounds):  # alternating, so a change of the machine hits both sides
        todo.append(Job("django", args.creates, args.updates, args.runs))
        ours = [Job("helpkit", args.creates, args.updates, args.runs)]
        if args.baseline:
            # The baseline after the installed helpkit in the first round, before it in the
            # next, and so on: neither always runs on the machine the other left.
            base = Job("helpkit", args.creates, args.updates, args.runs, source=args.baseline)
            ours = [*ours, base] if round_ % 2 == 0 else [base, *ours]
        todo.extend(ours)
        todo.append(Job("helpkit-alone", args.creates))
    for size in args.queue_sizes:
        for system in ("django-bulk", "helpkit-bulk"):
            if system == "django-bulk" and size > args.peer_max:
                continue
            todo.append(Job(system, size, 0, args.runs))
    if args.due:
        todo.append(Job("sweep", args.due, workers=args.workers))
    return todo


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _missing() -> str | None:
    """Why the bench cannot run here (no psycopg, no server), or None."""
    try:
        import psycopg
    except ModuleNotFoundError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        psycopg.connect(DSN, autocommit=True, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"no PostgreSQL server at {DSN} ({str(exc).strip()[:200]})"
    return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--worker", nargs=2, metavar=("JOB", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--sweep-worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--creates", type=int, help="tickets created one by one (default 2000)")
    parser.add_argument("--updates", type=int, help="updates (default 1000)")
    parser.add_argument(
        "--queue-sizes", type=_ints, help="bulk-loaded queue sizes (default 100000,1000000)"
    )
    parser.add_argument(
        "--peer-max", type=int, default=100_000, help="largest django-helpdesk queue size"
    )
    parser.add_argument("--due", type=int, help="due tickets for the sweep (default 100000)")
    parser.add_argument("--workers", type=_ints, default=[1, 2, 4], help="sweep processes")
    parser.add_argument("--runs", type=int, help="queue query runs (default 200)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="django-helpdesk then helpkit creates/updates runs"
    )
    parser.add_argument("--systems", default="helpkit,django,sweep", help="what to measure")
    parser.add_argument(
        "--baseline",
        help="a helpkit source tree (a directory holding src/helpkit, e.g. from `git archive "
        "COMMIT src | tar -x -C DIR`) whose creates/updates run in each round too, after the "
        "installed helpkit's in the first round, before it in the second, and so on: before and "
        "after side by side",
    )
    parser.add_argument("--output", type=Path, help="Markdown file (default: results, not --quick)")
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    if args.sweep_worker:
        sweep_worker(args.sweep_worker)
        return
    missing = _missing()
    if missing:
        # run_all.py runs every bench: without a server or driver this one says why and
        # steps aside instead of stopping the others.
        print(f"bench_postgres.py skipped: {missing}", file=sys.stderr)
        return
    quick = args.quick
    args.creates = args.creates or (50 if quick else 2000)
    args.updates = args.updates if args.updates is not None else (20 if quick else 1000)
    if args.queue_sizes is None:  # "--queue-sizes ''" (an empty list) skips the queue runs
        args.queue_sizes = [300] if quick else [100_000, 1_000_000]
    args.due = args.due if args.due is not None else (200 if quick else 100_000)
    args.runs = args.runs or (10 if quick else 200)
    systems = set(args.systems.split(","))
    todo = [j for j in jobs(args) if j.system.split("-")[0] in systems]
    load_start = list(os.getloadavg())
    start = time.perf_counter()
    server = server_version(DSN)
    with tempfile.TemporaryDirectory(prefix="hk-bench-pg-") as scratch:
        results = [spawn(job, Path(scratch)) for job in todo]
    command = "python bench/bench_postgres.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    run = Run(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        time.perf_counter() - start,
        load_start,
        list(os.getloadavg()),
        server,
        command,
    )
    text = render(results, run)
    bs.publish(text, args.output or (None if quick else RESULTS))


if __name__ == "__main__":
    main()
