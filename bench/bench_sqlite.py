"""The SQLite store against django-helpdesk on SQLite: creates, updates, the agent queue, memory.

Run ``python bench/bench_sqlite.py`` (the ``bench`` dependency group installs django-helpdesk;
``nox -s bench -- bench/bench_sqlite.py`` does both). Every measurement runs in its own
process (one per system, size and durability setting), on a fresh database file in a temporary
directory, with the same inputs: the same ticket subjects and bodies, priorities, assignees and
queues, the same tickets updated in the same order and the same queue queries. Writes
``bench/results/sqlite.md`` and prints the same Markdown.

The workload, each write its own committed transaction on both sides:

1. create N tickets, each with a first message (helpkit: ``Helpdesk.open_ticket(body=...)``;
   django-helpdesk: a ``Ticket`` and its first ``FollowUp`` saved the way its ``TicketForm``
   does, inside ``transaction.atomic()``);
2. a public comment plus a status change on 10k random tickets (helpkit:
   ``reply(status="pending")``; django-helpdesk: ``helpdesk.update_ticket.update_ticket`` with
   a ``new_status``, the function its views call, inside ``transaction.atomic()``);
3. the agent queue: open tickets of one assignee, and of one group / queue, by priority, first
   50 (helpkit: ``Helpdesk.tickets``; django-helpdesk: its dashboard's queryset), warm;
4. peak memory: ``ru_maxrss`` of each worker process.

helpkit is also measured on the queue query at 1M tickets; that setup is bulk-loaded through
the store's ``commit`` in large transactions and is not timed.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import importlib.metadata
import io
import json
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "sqlite.md"
SEED = 20261123
AGENTS = 100  # agent i belongs to group / queue i % GROUPS
GROUPS = 20
CONTACTS = 1000
LEVELS = ("high", "medium", "low")
# The ITIL matrix helpkit uses by default (impact, urgency) -> priority; django-helpdesk gets
# the same priority number directly.
ITIL = {
    ("high", "high"): 1,
    ("high", "medium"): 2,
    ("high", "low"): 3,
    ("medium", "high"): 2,
    ("medium", "medium"): 3,
    ("medium", "low"): 4,
    ("low", "high"): 3,
    ("low", "medium"): 4,
    ("low", "low"): 5,
}
_WORDS = (
    "printer vpn login password email outlook laptop screen wifi network invoice report access "
    "account server backup restore license install update crash slow error timeout disk quota "
    "badge phone headset meeting calendar share folder permission sync"
)
WORDS = _WORDS.split()
SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
PACKAGES = ["helpkit", "attrs", "pluggy", "python-dateutil", "django-helpdesk", "Django"]


# ---------------------------------------------------------------- the shared inputs


@dataclass(frozen=True)
class Spec:
    """One ticket to create, identical for both systems."""

    subject: str
    body: str
    impact: str
    urgency: str
    agent: int
    contact: int

    @property
    def group(self) -> int:
        return self.agent % GROUPS

    @property
    def priority(self) -> int:
        return ITIL[(self.impact, self.urgency)]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def specs(n: int) -> Iterator[Spec]:
    """The tickets to create, the same sequence in every process."""
    rng = random.Random(SEED)
    for i in range(n):
        yield Spec(
            subject=f"{_text(rng, 4).capitalize()} ({i})",
            body=f"Hello, {_text(rng, 40)}. Thanks, user {i}",
            impact=rng.choice(LEVELS),
            urgency=rng.choice(LEVELS),
            agent=rng.randrange(AGENTS),
            contact=rng.randrange(CONTACTS),
        )


def update_plan(n: int, k: int) -> list[tuple[int, str]]:
    """Which tickets (by creation index) get a comment plus a status change, and the comment."""
    rng = random.Random(SEED + 1)
    return [(i, f"Update: {_text(rng, 25)}.") for i in rng.sample(range(n), min(k, n))]


def query_plan(runs: int) -> list[tuple[int, int]]:
    """(agent, group) pairs for the queue queries: a different agent and group each run."""
    rng = random.Random(SEED + 2)
    return [(rng.randrange(AGENTS), rng.randrange(GROUPS)) for _ in range(runs)]


# ---------------------------------------------------------------- measurement helpers


@dataclass
class Job:
    """What one worker process measures."""

    system: str  # "helpkit", "django" or "helpkit-bulk"
    size: int
    updates: int
    runs: int
    journal: str  # "default" or "wal" (django-helpdesk; helpkit is always WAL)
    synchronous: str  # "default", "FULL" or "NORMAL"
    directory: str
    profile: bool = False


@dataclass
class Result:
    """What one worker process reports back."""

    job: Job
    label: str = ""
    journal_mode: str = ""
    synchronous: str = ""
    create_s: float | None = None
    update_s: float | None = None
    updates: int = 0
    load_s: float | None = None
    q_assignee: list[float] = field(default_factory=list)  # ms per query, every run
    q_group: list[float] = field(default_factory=list)
    rows_assignee: int = 0  # tickets returned on average, as a sanity check
    rows_group: int = 0
    counts: str = ""
    maxrss_kib: int = 0
    load: list[float] = field(default_factory=list)  # 1-minute load average, start and end
    fdatasync: float = 0.0  # syncs per second on the database's disk, just before the work
    bare_commits: float = 0.0  # one-row WAL + FULL SQLite commits per second, just before
    revision: str = ""  # the helpkit source the worker ran (git commit, "+" if modified)
    profile: str = ""

    @property
    def creates_per_s(self) -> float | None:
        return self.job.size / self.create_s if self.create_s else None

    @property
    def updates_per_s(self) -> float | None:
        return self.updates / self.update_s if self.update_s else None


def _progress(what: str, done: int, total: int, start: float) -> None:
    if total >= 10 and done % max(1, total // 10) == 0:
        rate = done / (time.perf_counter() - start)
        print(f"   {what}: {done}/{total} ({rate:,.0f}/s)", file=sys.stderr, flush=True)


def timed_queries(
    plan: Sequence[tuple[int, int]], query: Callable[[int, int], int]
) -> tuple[list[float], int]:
    """Run ``query`` once per plan entry after a warm-up pass; ms per run and mean rows."""
    for agent, group in plan[: max(10, len(plan) // 10)]:
        query(agent, group)
    times: list[float] = []
    rows = 0
    for agent, group in plan:
        start = time.perf_counter()
        rows += query(agent, group)
        times.append((time.perf_counter() - start) * 1e3)
    return times, rows // max(1, len(plan))


def _profiled(result: Result, enabled: bool, fn: Callable[[], None]) -> None:
    if not enabled:
        fn()
        return
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(18)
    result.profile += out.getvalue()


def _sync_name(value: object) -> str:
    return SYNC_NAMES.get(int(str(value)), str(value))


# ---------------------------------------------------------------- helpkit


def _helpkit_desk(
    job: Job, filename: str, synchronous: str, result: Result
) -> tuple[Any, list[str]]:
    """A helpkit desk on a fresh file with the bench's groups, agents and contacts; notes the
    journal and synchronous settings its store's connections run with in ``result``."""
    from helpkit import Helpdesk
    from helpkit.stores.sqlite import SqliteStore

    path = Path(job.directory) / filename
    desk = Helpdesk(f"sqlite:///{path}?synchronous={synchronous}", entry_points=False)
    store = desk.store
    assert isinstance(store, SqliteStore)
    # What the store's own connections run with (a private pool, read here on purpose).
    with store._connection() as conn:
        result.journal_mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).upper()
        result.synchronous = _sync_name(conn.execute("PRAGMA synchronous").fetchone()[0])
    result.label = f"helpkit (sqlite, {result.journal_mode} + {result.synchronous})"
    return desk, staffed(desk)


def staffed(desk: Any) -> list[str]:
    """Give ``desk`` the bench's groups, agents and contacts; the contacts' ids (every helpkit
    bench of creates and replies sets its desk up so)."""
    for g in range(GROUPS):
        desk.add_group(f"g{g:02d}", f"Group {g}", tier=1 + g % 3)
    for a in range(AGENTS):
        desk.add_agent(
            f"a{a:03d}", f"Agent {a}", email=f"a{a}@help.example", groups=[f"g{a % GROUPS:02d}"]
        )
    return [
        desk.create_contact(f"Contact {c}", emails=[f"c{c}@customer.example"]).id
        for c in range(CONTACTS)
    ]


def open_spec(desk: Any, contacts: list[str], s: Spec) -> Any:
    """The bench's create of ``s`` through ``desk``: ``open_ticket`` as an agent, with a body,
    impact and urgency, a group and that agent as assignee; the ticket."""
    from helpkit import Actor

    agent = f"a{s.agent:03d}"
    return desk.open_ticket(
        Actor.agent(agent),
        requester=contacts[s.contact],
        subject=s.subject,
        body=s.body,
        impact=s.impact,
        urgency=s.urgency,
        group=f"g{s.group:02d}",
        assignee=agent,
    )


def helpkit_update(desk: Any, ticket_id: str, agent: int, body: str) -> None:
    """The bench's update through ``desk``: a public reply by agent ``agent`` that moves the
    ticket to pending."""
    from helpkit import Actor

    desk.reply(ticket_id, Actor.agent(f"a{agent:03d}"), body, status="pending")


def django_create(d: dict[str, Any], s: Spec) -> int:
    """The bench's create of ``s`` in django-helpdesk (``d``: its modules and the bench's
    queues and users, as :func:`run_django` and bench_postgres.py's ``_django`` make them):
    ``TicketForm.save()`` without the form and the e-mails (nobody to notify): a Ticket, its
    first FollowUp (whose save() saves the ticket again), the backlink scan and the
    new_ticket_done signal, in one ``transaction.atomic()``; the ticket's id."""
    models, timezone = d["models"], d["timezone"]
    user = d["users"][s.agent]
    with d["db"].transaction.atomic():
        ticket = models.Ticket(
            title=s.subject,
            submitter_email=None,
            created=timezone.now(),
            status=models.Ticket.OPEN_STATUS,
            queue=d["queues"][s.group],
            description=s.body,
            priority=s.priority,
            assigned_to=user,
        )
        ticket.save()
        followup = models.FollowUp(
            ticket=ticket,
            title=f"Ticket Opened & Assigned to {ticket.get_assigned_to}",
            date=timezone.now(),
            public=True,
            comment=s.body,
            user=user,
        )
        followup.save()
        d["update_ticket"].create_ticket_backlinks(ticket, followup, user=user)
        d["signals"].new_ticket_done.send(sender="TicketForm", ticket=ticket)
    return int(ticket.id)


def django_update(d: dict[str, Any], ticket_id: int, agent: int, body: str) -> None:
    """The bench's update in django-helpdesk (``d`` as for :func:`django_create`): what the
    staff "update ticket" view does, ``Ticket.objects.get`` then ``update_ticket`` with a
    public comment and the resolved status, in one ``transaction.atomic()``."""
    ticket_model = d["models"].Ticket
    with d["db"].transaction.atomic():
        ticket = ticket_model.objects.get(id=ticket_id)
        d["update_ticket"].update_ticket(
            d["users"][agent],
            ticket,
            comment=body,
            public=True,
            new_status=ticket_model.RESOLVED_STATUS,
        )


def publish(text: str, output: Path | None) -> None:
    """Write a bench's report to ``output`` (unless None), and print it."""
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    print(text)


def run_helpkit(job: Job) -> Result:
    from helpkit import StatusCategory, TicketQuery
    from helpkit.stores.sqlite import SqliteStore

    result = Result(job)
    sync = "FULL" if job.synchronous == "default" else job.synchronous
    desk, contacts = _helpkit_desk(job, "helpkit.db", sync, result)
    store = desk.store
    assert isinstance(store, SqliteStore)
    ids: list[str] = []

    def create() -> None:
        start = time.perf_counter()
        for i, s in enumerate(specs(job.size), 1):
            ids.append(open_spec(desk, contacts, s).id)
            _progress("helpkit creates", i, job.size, start)
        result.create_s = time.perf_counter() - start

    _profiled(result, job.profile, create)
    agents = [s.agent for s in specs(job.size)]
    plan = update_plan(job.size, job.updates)

    def update() -> None:
        start = time.perf_counter()
        for n, (i, body) in enumerate(plan, 1):
            helpkit_update(desk, ids[i], agents[i], body)
            _progress("helpkit updates", n, len(plan), start)
        result.update_s = time.perf_counter() - start
        result.updates = len(plan)

    _profiled(result, job.profile, update)
    helpkit_queries(desk, result, job.runs, TicketQuery, StatusCategory)
    with store._connection() as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    result.counts = f"{tickets} tickets, {events} events"
    desk.shutdown()
    return result


def helpkit_queries(desk: Any, result: Result, runs: int, query_type: Any, category: Any) -> None:
    active = {category.NEW, category.OPEN}

    def by_assignee(agent: int, _group: int) -> int:
        q = query_type(assignee_ids={f"a{agent:03d}"}, categories=active, limit=50)
        return len(desk.tickets(q))

    def by_group(_agent: int, group: int) -> int:
        q = query_type(group_ids={f"g{group:02d}"}, categories=active, limit=50)
        return len(desk.tickets(q))

    plan = query_plan(runs)
    result.q_assignee, result.rows_assignee = timed_queries(plan, by_assignee)
    result.q_group, result.rows_group = timed_queries(plan, by_group)


def run_helpkit_bulk(job: Job) -> Result:
    """Bulk-load ``job.size`` tickets through the store (untimed), then time the queue query."""
    from helpkit import Actor, Impact, StatusCategory, TicketQuery, Urgency, lifecycle
    from helpkit.ports import TicketChange
    from helpkit.stores.sqlite import SqliteStore
    from helpkit.tickets import Comment

    result = Result(job)
    desk, contacts = _helpkit_desk(job, "helpkit-bulk.db", "FULL", result)  # the default
    store = desk.store
    assert isinstance(store, SqliteStore)
    start = time.perf_counter()
    batch: list[TicketChange] = []
    now = desk.now()
    for i, s in enumerate(specs(job.size), 1):
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
        batch.append(TicketChange(outcome.ticket, outcome.events, outcome.previous_seq))
        if len(batch) == 20_000 or i == job.size:
            store.commit(batch)
            batch = []
            _progress("helpkit bulk load", i, job.size, start)
    result.load_s = time.perf_counter() - start
    with store._connection() as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    helpkit_queries(desk, result, job.runs, TicketQuery, StatusCategory)
    with store._connection() as conn:
        result.counts = f"{conn.execute('SELECT count(*) FROM tickets').fetchone()[0]} tickets"
    desk.shutdown()
    return result


# ---------------------------------------------------------------- django-helpdesk


def _import(name: str) -> Any:
    module: ModuleType = importlib.import_module(name)
    return module


def run_django(job: Job) -> Result:
    result = Result(job)
    path = Path(job.directory) / "django.db"
    pragmas = []
    if job.journal != "default":
        pragmas.append(f"PRAGMA journal_mode = {job.journal}")
    if job.synchronous != "default":
        pragmas.append(f"PRAGMA synchronous = {job.synchronous}")
    options = {"init_command": "; ".join(pragmas)} if pragmas else {}
    conf = _import("django.conf")
    conf.settings.configure(
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
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(path),
                "OPTIONS": options,
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
        # Knowledge-base teams need pinax-teams; tickets do not.
        HELPDESK_TEAMS_MODE_ENABLED=False,
    )
    _import("django").setup()
    management = _import("django.core.management")
    management.call_command("migrate", verbosity=0, interactive=False)
    db = _import("django.db")
    timezone = _import("django.utils.timezone")
    models = _import("helpdesk.models")
    update_ticket_mod = _import("helpdesk.update_ticket")
    signals = _import("helpdesk.signals")
    user_model = _import("django.contrib.auth").get_user_model()
    ticket_model, followup_model, queue_model = models.Ticket, models.FollowUp, models.Queue

    with db.connection.cursor() as cur:
        cur.execute("PRAGMA journal_mode")
        result.journal_mode = str(cur.fetchone()[0]).upper()
        cur.execute("PRAGMA synchronous")
        result.synchronous = _sync_name(cur.fetchone()[0])
    result.label = f"django-helpdesk (sqlite, {result.journal_mode} + {result.synchronous})"
    queues = [
        queue_model.objects.create(title=f"Group {g}", slug=f"g{g:02d}") for g in range(GROUPS)
    ]
    users = [
        user_model.objects.create_user(
            f"a{a:03d}", email=f"a{a}@help.example", password=None, is_staff=True
        )
        for a in range(AGENTS)
    ]
    ids: list[int] = []
    d = {
        "db": db,
        "models": models,
        "timezone": timezone,
        "update_ticket": update_ticket_mod,
        "signals": signals,
        "queues": queues,
        "users": users,
    }

    def create() -> None:
        start = time.perf_counter()
        for i, s in enumerate(specs(job.size), 1):
            ids.append(django_create(d, s))
            _progress("django-helpdesk creates", i, job.size, start)
        result.create_s = time.perf_counter() - start

    _profiled(result, job.profile, create)
    agents = [s.agent for s in specs(job.size)]
    plan = update_plan(job.size, job.updates)

    def update() -> None:
        start = time.perf_counter()
        for n, (i, body) in enumerate(plan, 1):
            django_update(d, ids[i], agents[i], body)
            _progress("django-helpdesk updates", n, len(plan), start)
        result.update_s = time.perf_counter() - start
        result.updates = len(plan)

    _profiled(result, job.profile, update)

    closed = [
        ticket_model.CLOSED_STATUS,
        ticket_model.RESOLVED_STATUS,
        ticket_model.DUPLICATE_STATUS,
    ]
    active = ticket_model.objects.select_related("queue").exclude(status__in=closed)

    def by_assignee(agent: int, _group: int) -> int:
        # The dashboard's "open & reopened tickets assigned to me", by priority, first 50.
        rows = active.filter(assigned_to_id=users[agent].id).order_by("priority", "created", "id")
        return len(list(rows[:50]))

    def by_queue(_agent: int, group: int) -> int:
        rows = active.filter(queue_id=queues[group].id).order_by("priority", "created", "id")
        return len(list(rows[:50]))

    qplan = query_plan(job.runs)
    result.q_assignee, result.rows_assignee = timed_queries(qplan, by_assignee)
    result.q_group, result.rows_group = timed_queries(qplan, by_queue)
    result.counts = (
        f"{ticket_model.objects.count()} tickets, {followup_model.objects.count()} follow-ups, "
        f"{models.TicketChange.objects.count()} ticket changes"
    )
    db.connection.close()
    return result


# ---------------------------------------------------------------- the driver


def worker(spec: str, out: str) -> None:
    job = Job(**json.loads(spec))
    load = os.getloadavg()[0]
    syncs = fsync_rate(1.0, job.directory)[1]
    bare = bare_commit_rate(1.0, job.directory)
    runner = {"helpkit": run_helpkit, "django": run_django, "helpkit-bulk": run_helpkit_bulk}
    result = runner[job.system](job)
    result.maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result.load = [load, os.getloadavg()[0]]
    result.fdatasync = syncs
    result.bare_commits = bare
    result.revision = revision()
    Path(out).write_text(json.dumps(asdict(result)), encoding="utf-8")


def spawn(job: Job) -> Result:
    """Run one job in a fresh interpreter on a fresh database file."""
    directory = Path(tempfile.mkdtemp(prefix=f"hk-bench-{job.system}-"))
    job.directory = str(directory)
    out = directory / "result.json"
    print(
        f"-- {job.system} size={job.size:,} journal={job.journal} synchronous={job.synchronous}",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(asdict(job)), str(out)],
            check=True,
        )
        data = json.loads(out.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    result = _result(data)
    print(f"   done in {time.perf_counter() - start:,.0f} s", file=sys.stderr, flush=True)
    return result


def revision() -> str:
    """The git commit of the helpkit source in use, with "+" if the tree has local changes."""
    import helpkit

    root = Path(helpkit.__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def fsync_rate(seconds: float = 2.0, where: str | None = None) -> tuple[float, float]:
    """fsync() and fdatasync() per second, each after a 4 KiB append, in a temp directory."""
    rates = []
    with tempfile.TemporaryDirectory(prefix="hk-bench-fsync-", dir=where) as directory:
        fd = os.open(Path(directory) / "probe", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for sync in (os.fsync, os.fdatasync):
                n, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    os.write(fd, b"x" * 4096)
                    sync(fd)
                    n += 1
                rates.append(n / (time.perf_counter() - start))
        finally:
            os.close(fd)
    return rates[0], rates[1]


def bare_commit_rate(seconds: float = 2.0, where: str | None = None) -> float:
    """Durable SQLite commits per second with nothing else to do: WAL, synchronous FULL, one
    small row per transaction, on a fresh file in a temp directory (under ``where``).

    No store that commits every command durably on this disk can beat this rate, so
    ``bare_commit_rate() / peer_creates_per_s`` is the highest creates ratio reachable then.
    """
    with tempfile.TemporaryDirectory(prefix="hk-bench-commit-", dir=where) as directory:
        conn = sqlite3.connect(Path(directory) / "bare.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
                conn.execute("COMMIT")
                n += 1
            return n / (time.perf_counter() - start)
        finally:
            conn.close()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return median(values)
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:,.1f}x" if a and b else "-"


def _latency_ratio(slow: Result, fast: Result, which: str) -> str:
    if which == "assignee":
        if not (slow.rows_assignee and fast.rows_assignee):
            return "-"
        return _ratio(median(slow.q_assignee), median(fast.q_assignee))
    if not (slow.rows_group and fast.rows_group):
        return "-"
    return _ratio(median(slow.q_group), median(fast.q_group))


def _ratio_rows(pairs: list[tuple[Result, Result]]) -> list[str]:
    """A table of helpkit / django-helpdesk ratios, one row per (helpkit, peer) pair."""
    rows = [
        "| tickets | durability | creates | creates ceiling | updates | queue assignee"
        " (median) | queue group (median) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r, other in pairs:
        ceiling = (
            _ratio(r.bare_commits, other.creates_per_s)
            if r.bare_commits and r.synchronous == "FULL"
            else "-"
        )
        rows.append(
            f"| {r.job.size:,} | helpkit {r.journal_mode} + {r.synchronous} vs django-helpdesk "
            f"{other.journal_mode} + {other.synchronous} | "
            f"{_ratio(r.creates_per_s, other.creates_per_s)} | {ceiling} | "
            f"{_ratio(r.updates_per_s, other.updates_per_s)} | "
            f"{_latency_ratio(other, r, 'assignee')} | {_latency_ratio(other, r, 'group')} |"
        )
    return rows


@dataclass
class Run:
    """When a set of results was measured, how long it took, and the disk's sync rate then."""

    date: str
    fsync: tuple[float, float]
    took: float


def _queue(times: list[float], rows: int) -> str:
    # A queue emptied by the updates (every ticket of the smallest size updated) says nothing.
    return f"{median(times):.2f} / {p95(times):.2f}" if rows else "- (empty)"


def render(results: list[Result], run: Run, runs: int) -> str:
    fsync, took = run.fsync, run.took

    def peers(r: Result) -> list[Result]:
        """The django-helpdesk rows of the same size at the same synchronous setting."""
        if r.job.system != "helpkit":
            return []
        sync = "NORMAL" if r.job.synchronous == "NORMAL" else "FULL"
        return [
            other
            for other in results
            if other.job.system == "django"
            and other.job.size == r.job.size
            and other.synchronous == sync
        ]

    out = [
        "# SQLite store benchmark: helpkit against django-helpdesk",
        "",
        "Produced by `python bench/bench_sqlite.py` (or `nox -s bench -- bench/bench_sqlite.py`).",
        "Each row is one worker process (one system, one size, one durability setting) on a",
        "fresh database file in a temporary directory; all of them get the same inputs: tickets",
        f"with the same subjects and bodies, ITIL priorities, {AGENTS} agents in {GROUPS} groups",
        "(django-helpdesk: queues), every ticket assigned. Every create and every update is its",
        "own committed transaction on both sides.",
        "",
        "- **creates/s**: helpkit `Helpdesk.open_ticket(..., body=...)`; django-helpdesk: a",
        "  `Ticket` and its first `FollowUp` saved as its `TicketForm.save()` does (plus its",
        "  backlink scan and `new_ticket_done` signal), in one `transaction.atomic()`.",
        "- **updates/s**: a public comment plus a status change on random tickets (each ticket",
        '  at most once). helpkit: `reply(id, agent, body, status="pending")`; django-helpdesk:',
        "  `Ticket.objects.get(id=...)` then `helpdesk.update_ticket.update_ticket(agent, ticket,",
        "  comment=..., public=True, new_status=RESOLVED)` (what its views call) in one",
        "  `transaction.atomic()`.",
        "- **queue**: open tickets of one assignee (and of one group / queue), by priority, first",
        f"  50, as model objects; {runs} runs after a warm-up, a different agent and group each",
        "  run; median and p95 in ms. helpkit: `Helpdesk.tickets(TicketQuery(assignee_ids=...,",
        "  categories={new, open}))`; django-helpdesk: its dashboard queryset",
        '  (`select_related("queue")`, open statuses) ordered by priority, created, id.',
        "- **peak RSS**: `ru_maxrss` of the worker process (interpreter, imports, setup and all",
        "  the work).",
        "- **ratio**: helpkit / django-helpdesk throughput at the same size and durability",
        "  (latency ratios: django-helpdesk / helpkit), so > 1 means helpkit is faster.",
        "",
        "| system | journal + synchronous | tickets | creates/s | updates/s | queue assignee"
        " median / p95 ms | queue group median / p95 ms | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        load = f" (bulk-loaded in {r.load_s:,.0f} s, untimed)" if r.load_s else ""
        out.append(
            f"| {r.label.split(' (')[0]} | {r.journal_mode} + {r.synchronous} | "
            f"{r.job.size:,}{load} | {_fmt(r.creates_per_s, ',.0f')} | "
            f"{_fmt(r.updates_per_s, ',.0f')} | "
            f"{_queue(r.q_assignee, r.rows_assignee)} | "
            f"{_queue(r.q_group, r.rows_group)} | {r.maxrss_kib / 1024:,.0f} |"
        )
    # The fairest pairing leads (the same journal and synchronous on both sides); every other
    # pairing the run produced follows, so the results hold all of them.
    same: list[tuple[Result, Result]] = []
    others: list[tuple[Result, Result]] = []
    for r in results:
        for other in peers(r):
            alike = (r.journal_mode, r.synchronous) == (other.journal_mode, other.synchronous)
            (same if alike else others).append((r, other))
    out += [
        "",
        "## Ratios (helpkit / django-helpdesk)",
        "",
        "The same journal and synchronous on both sides (the fairest pairing):",
        "",
        *(
            _ratio_rows(same)
            if same
            else ["None in this run (`--no-normal` skips django-helpdesk's WAL rows)."]
        ),
    ]
    if others:
        out += [
            "",
            "A different journal on each side (django-helpdesk's default is Django's rollback",
            "journal, `DELETE`): these ratios measure the journals as well as the code.",
            "",
            *_ratio_rows(others),
        ]
    out += [
        "",
        "**creates ceiling**: bare durable SQLite commits per second (WAL + FULL, one small row",
        "per transaction, nothing else; measured just before the helpkit worker on the same",
        "disk) divided by django-helpdesk's creates/s. It is the highest creates ratio that any",
        "store committing each create durably could reach on this disk at that moment: a",
        "create cannot cost less than one durable commit.",
    ]
    out += [
        "",
        "## Notes",
        "",
        "- Sync rate of the temp directory's disk, measured at the start (4 KiB append, then",
        f"  sync, for 2 s each): {fsync[0]:,.0f} fsync/s, {fsync[1]:,.0f} fdatasync/s. A durable",
        "  commit costs at least one sync, so this bounds the creates/s and updates/s of any",
        "  store that commits every command with synchronous=FULL on one connection.",
        "- Journal and synchronous settings are read with `PRAGMA journal_mode` and",
        "  `PRAGMA synchronous` on the connections each system writes with. helpkit: WAL, FULL",
        "  by default; a create is one transaction (the ticket number is taken inside it).",
        "  django-helpdesk: Django's defaults (rollback journal `DELETE`, synchronous FULL);",
        "  the WAL rows set `init_command` in the database `OPTIONS`.",
        "- django-helpdesk is configured in-process (`settings.configure`: its app, auth,",
        "  contenttypes, sites, humanize, rest_framework; `DEBUG=False`; locmem e-mail backend)",
        "  and its schema is created by its own migrations. Tickets have no submitter e-mail",
        "  and agents never notify themselves, so no notification e-mail is rendered on either",
        "  side (helpkit has no channel configured either).",
        '- django-helpdesk has no "pending"-like status by default; its update moves the',
        "  ticket to Resolved (an allowed transition from Open), helpkit's to pending. Both",
        "  leave the queue. Without `transaction.atomic()` its view path commits several",
        "  times per create and per update; the rows above give it one commit each.",
        "- When the updates reach every ticket (10k updates at 10k tickets), the queue is",
        '  empty afterwards and its cells read "- (empty)": the queue counts at 100k and 1M.',
        "- The machine may be shared: the load average at the start and end of each worker is",
        "  listed below; a load above the number of CPUs means other work competed for them.",
        "",
        "Row checks (what each database held at the end) and machine load:",
        "",
    ]
    for r in results:
        out.append(
            f"- {r.label}, {r.job.size:,}: {r.counts}; queue pages held {r.rows_assignee} "
            f"(assignee) and {r.rows_group} (group) tickets on average; disk "
            f"{r.fdatasync:,.0f} fdatasync/s"
            + (f" and {r.bare_commits:,.0f} bare durable commits/s" if r.bare_commits else "")
            + f" just before; helpkit source {r.revision}"
            + (
                f"; 1-minute load average {r.load[0]:.1f} at start, {r.load[1]:.1f} at end"
                if r.load
                else ""
            )
        )
    versions = ", ".join(f"{d} {_version(d)}" for d in PACKAGES)
    out += [
        "",
        "## Machine",
        "",
        f"- Date: {run.date}; total bench time {took / 60:,.1f} min",
        f"- Python {sys.version.split()[0]} ({platform.python_implementation()}); "
        f"SQLite {sqlite3.sqlite_version}",
        f"- {platform.platform()}; CPU: {_cpu()}; {os.cpu_count()} logical CPUs",
        f"- Packages: {versions}",
        "",
    ]
    profiles = [r for r in results if r.profile]
    for r in profiles:
        out += [f"## cProfile: {r.label}, {r.job.size:,}", "", "```", r.profile.strip(), "```", ""]
    return "\n".join(out)


def jobs(args: argparse.Namespace) -> list[Job]:
    todo: list[Job] = []
    for size in args.sizes:
        for system in ("helpkit", "django"):
            todo.append(
                Job(system, size, args.updates, args.runs, "default", "default", "", args.profile)
            )
    if args.normal:
        size = args.sizes[0]
        todo.append(Job("django", size, args.updates, args.runs, "wal", "FULL", ""))
        todo.append(Job("helpkit", size, args.updates, args.runs, "default", "NORMAL", ""))
        todo.append(Job("django", size, args.updates, args.runs, "wal", "NORMAL", ""))
    if args.big:
        todo.append(Job("helpkit-bulk", args.big, 0, args.runs, "default", "default", ""))
    return todo


def _key(job: Job) -> tuple[str, int, str, str]:
    return (job.system, job.size, job.journal, job.synchronous)


def _result(data: dict[str, Any]) -> Result:
    return Result(**{**data, "job": Job(**data["job"])})


def _load(path: Path) -> tuple[Run, dict[tuple[str, int, str, str], Result]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    run = Run(data["date"], (data["fsync"][0], data["fsync"][1]), data["took"])
    results = [_result(item) for item in data["results"]]
    return run, {_key(r.job): r for r in results}


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--worker", nargs=2, metavar=("JOB", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2k/5k, 1k updates, 50k")
    parser.add_argument("--sizes", type=_sizes, help="ticket counts, e.g. 10000,100000")
    parser.add_argument("--updates", type=int, help="updated tickets per size (default 10000)")
    parser.add_argument(
        "--big", type=int, help="helpkit-only queue size (default 1000000; 0 skips)"
    )
    parser.add_argument("--runs", type=int, help="queue query runs (default 200)")
    parser.add_argument(
        "--no-normal", dest="normal", action="store_false", help="skip the WAL/NORMAL rows"
    )
    parser.add_argument(
        "--systems",
        type=lambda text: set(text.split(",")),
        default={"helpkit", "django"},
        help="which systems to measure (default helpkit,django); with --reuse, the rows of"
        " the others come from that file",
    )
    parser.add_argument("--raw", type=Path, help="also write the raw results as JSON here")
    parser.add_argument("--reuse", type=Path, help="raw results (--raw) of an earlier run")
    parser.add_argument("--profile", action="store_true", help="cProfile the create/update loops")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"the Markdown file to write (default {RESULTS.name}, not --quick)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    quick = args.quick
    args.sizes = args.sizes or ([2000, 5000] if quick else [10_000, 100_000])
    args.updates = args.updates if args.updates is not None else (1000 if quick else 10_000)
    args.big = args.big if args.big is not None else (50_000 if quick else 1_000_000)
    args.runs = args.runs or (50 if quick else 200)
    start = time.perf_counter()
    todo = jobs(args)
    earlier, reused = _load(args.reuse) if args.reuse else (None, {})
    fresh = [job for job in todo if job.system.split("-")[0] in args.systems]
    fsync = fsync_rate() if fresh or earlier is None else earlier.fsync
    print(f"fsync/s {fsync[0]:,.0f}, fdatasync/s {fsync[1]:,.0f}", file=sys.stderr)
    done: dict[tuple[str, int, str, str], Result] = {}
    # Peers first: helpkit, whose source may be changing, then runs on the newest code.
    for job in sorted(todo, key=lambda job: job.system.startswith("helpkit")):
        key = _key(job)
        if job.system.split("-")[0] in args.systems:
            done[key] = spawn(job)
        elif key in reused:
            done[key] = reused[key]
    results = [done[_key(job)] for job in todo if _key(job) in done]
    run = Run(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", fsync, time.perf_counter() - start)
    if earlier is not None and not fresh:
        run = earlier  # only re-rendered
    if args.raw:
        raw = {**asdict(run), "results": [asdict(r) for r in results]}
        args.raw.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    text = render(results, run, args.runs)
    publish(text, args.output or (None if quick else RESULTS))


if __name__ == "__main__":
    main()
