"""KPI reports on the SQLite store: full recomputation against the kept projection.

Run ``python bench/bench_kpis.py`` (or ``nox -s bench -- bench/bench_kpis.py``). For each size
(100k and 1M tickets by default, ~10 events each: the opening, its message, replies, notes,
and a solve for most) it bulk-loads the tickets straight through the store (setup, not
measured), then, each in a fresh process timed in wall-clock and CPU time with its peak
memory (``ru_maxrss``):

- *full*: ``Helpdesk.kpis`` (every ticket's history read and folded);
- *build*: ``Helpdesk.build_kpi_checkpoint``: the checkpoint built from the whole change feed,
  streamed to the file (``--task build-memory``: ``Helpdesk.kpi_projection`` from nothing, in
  memory, then its checkpoint written: the same file);
- *stream*: ``Helpdesk.kpis(checkpoint=...)``: the checkpoint's compact records streamed a
  chunk at a time (the projection never loaded), the tickets changed since folded from the
  store;
- *projection*: the checkpoint loaded, then ``Helpdesk.kpis(projection=...)`` (brought up to
  date, nothing new, and the kept facts added up); the load and the report are timed apart;
- *update*: the checkpoint loaded, 1,000 new events committed (setup), then one
  ``KpiProjection.update``: 1,000 events on 1,000 tickets (one each) and on 100 tickets (ten
  each); then as many again on the same tickets and one more update (the next update of a
  projection the host keeps in memory: the folds resumed are out of their checkpoint form).

Both reports are checked equal. Writes ``bench/results/kpis.md`` and prints the Markdown.

A store of a million tickets takes most of an hour to load in one process on a shared
machine: ``--build FILE TOTAL --workers N`` writes the same file in N processes (see
:func:`build_store`); then run each task on it with ``--task NAME --file FILE --checkpoint
PATH --total TOTAL`` (a checkpoint first: ``--task build``), and ``--touch FILE TOTAL N``
commits a note on N tickets (the tickets changed after a checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import attrs

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.escalation import Tier, TierLadder
from helpkit.events import Assigned, CommentAdded, Event, StatusChanged, TicketOpened
from helpkit.lifecycle import apply
from helpkit.ports import TicketChange
from helpkit.priority import Impact, Urgency
from helpkit.reports import KpiProjection
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.sqlite import SqliteStore
from helpkit.tickets import Comment, StatusCategory, Ticket

RESULTS = Path(__file__).resolve().parent / "results" / "kpis.md"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
POLICY = SlaPolicy(
    "bench",
    BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC"),
    {p: Targets(first_response=4 * H, resolution=16 * H) for p in Priority},
)
BATCH = 2000  # tickets per commit while loading (setup)
EVENTS = 10  # per ticket
GROUPS = ("l1", "l2", "billing")
CHANNELS = ("web", "email", "api")
AGENTS = tuple(Actor.agent(f"agent{i}") for i in range(20))
REQUESTER = Actor.contact("c1")
NEW_EVENTS = 1000


LADDER = TierLadder((Tier(1, "L1", ("l1", "billing")), Tier(2, "L2", ("l2",))))
"""Groups in tiers, so time per tier, escalation and handle time are exercised."""


def config() -> DeskConfig:
    return DeskConfig(sla=SlaPolicySet([POLICY]), tiers=LADDER)


class FixedClock:
    """The bench's "now"."""

    def now(self) -> datetime:
        return NOW


def _comment(state: Ticket, seq: int, at: datetime, actor: Actor, public: bool) -> CommentAdded:
    note = Comment(
        id=f"{state.id}-{seq}",
        author=actor,
        body="Looking into it." if public else "Internal note.",
        public=public,
        channel="web" if public else "internal",
        created_at=at,
    )
    return CommentAdded(ticket_id=state.id, seq=seq, at=at, actor=actor, comment=note)


def history(index: int, events: int = EVENTS) -> tuple[Ticket, list[Event]]:
    """Ticket ``index``'s events: opened over the year (assigned, in a group of a tier), its
    message, then replies and notes a few hours apart (one in four handed over to L2 and
    another agent), and (for 4 in 5) solved at the end."""
    opened = START + timedelta(minutes=(index * 7919) % (300 * 24 * 60))
    event = TicketOpened(
        ticket_id=f"t{index:07d}",
        seq=1,
        at=opened,
        actor=REQUESTER,
        number=0,  # numbered by the store in the commit
        subject="bench",
        requester_id="c1",
        organization_id=None,
        status="open",
        category=StatusCategory.OPEN,
        impact=Impact.MEDIUM,
        urgency=Urgency.MEDIUM,
        priority=Priority.P3,
        channel=CHANNELS[index % 3],
        group_id=GROUPS[index % 3],
        assignee_id=AGENTS[index % len(AGENTS)].id,
    )
    found: list[Event] = [event]
    state = apply(None, event)
    agent = AGENTS[index % len(AGENTS)]
    solve = index % 5 != 0
    last = events - 1 if solve else events
    transfer = index % 4 == 1 and state.group_id != "l2"
    for seq in range(2, last + 1):
        at = opened + timedelta(hours=seq - 1)
        actor = REQUESTER if seq == 2 else agent
        if transfer and seq == 5:  # handed over to L2 and another agent
            other = AGENTS[(index + 7) % len(AGENTS)]
            found.append(
                Assigned(
                    ticket_id=state.id,
                    seq=seq,
                    at=at,
                    actor=agent,
                    assignee_id=other.id,
                    group_id="l2",
                    previous_assignee_id=state.assignee_id,
                    previous_group_id=state.group_id,
                    transfer=True,
                )
            )
            agent = other
        else:
            found.append(_comment(state, seq, at, actor, public=seq % 3 != 0))
        state = apply(state, found[-1])
    if solve:
        found.append(
            StatusChanged(
                ticket_id=state.id,
                seq=events,
                at=opened + timedelta(hours=events),
                actor=agent,
                old_status="open",
                old_category=StatusCategory.OPEN,
                status="solved",
                category=StatusCategory.SOLVED,
            )
        )
        state = apply(state, found[-1])
    return attrs.evolve(state, sla_policy=POLICY.name), found


def load(store: SqliteStore, total: int, start: int = 0) -> None:
    """Tickets ``start`` to ``total - 1`` of :data:`EVENTS` events each, straight through the
    store."""
    changes: list[TicketChange] = []
    for index in range(start, total):
        state, events = history(index)
        changes.append(TicketChange(state, tuple(events), 0))
        if len(changes) == BATCH:
            store.commit_planned(changes, [None] * len(changes))
            changes = []
    if changes:
        store.commit_planned(changes, [None] * len(changes))


SEED: Final = "~seed"
"""A slice's placeholder ticket (see :func:`build_store`): never merged."""


def load_slice(path: str, start: int, stop: int) -> None:
    """Tickets ``start`` to ``stop - 1`` into a store file of their own, numbered and placed
    in the feed as a load of all of them in order would: a placeholder row holding the
    number and the feed position before ``start`` (the store numbers a new ticket and
    places its events after the highest ones stored), removed by the merge."""
    store = SqliteStore(path, synchronous="NORMAL")
    store.close()
    if start:
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT INTO tickets (id, number, seq, status, category, priority, "
                "requester_id, created_us, updated_us, tags, state) "
                "VALUES (?, ?, 0, '', '', 0, '', 0, 0, '[]', '{}')",
                (SEED, start),
            )
            conn.execute(
                "INSERT INTO events (ticket_id, seq, type, at_us, actor, body, position) "
                "VALUES (?, 0, '', 0, '', '', ?)",
                (SEED, start * EVENTS),
            )
        conn.close()
    store = SqliteStore(path, synchronous="NORMAL")
    try:
        load(store, stop, start)
    finally:
        store.close()


def _merge(target: str, slices: list[str]) -> None:
    """Append the slices' rows to ``target`` (the first slice's file), in their order, with
    the indexes dropped during the copy and made again after (the same statements)."""
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%'"
            )
        ]
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('tickets', 'events', 'ticket_tags') ORDER BY rowid"
        ).fetchall()
        conn.execute("BEGIN")
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        for path in slices:
            conn.execute("ATTACH DATABASE ? AS part", (path,))
            for table in tables:
                if conn.execute(f"SELECT 1 FROM part.{table} LIMIT 1").fetchone() is None:
                    continue
                columns = [row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")]
                if table == "tickets":
                    columns.remove("rowid")
                listed = ", ".join(columns)
                if table in ("tickets", "events", "ticket_tags"):
                    order = {"tickets": "rowid", "events": "ticket_id, seq"}.get(table, "1, 2")
                    conn.execute(
                        f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM part.{table}"
                        f" WHERE ticket_id IS NOT ? ORDER BY {order}"
                        if table != "tickets"
                        else f"INSERT INTO main.{table} ({listed}) SELECT {listed} "
                        f"FROM part.{table} WHERE id IS NOT ? ORDER BY {order}",
                        (SEED,),
                    )
                else:  # the same rows in every slice (the requester's contact)
                    conn.execute(
                        f"INSERT OR IGNORE INTO main.{table} ({listed}) "
                        f"SELECT {listed} FROM part.{table}"
                    )
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE part")
            conn.execute("BEGIN")
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def build_store(path: str, total: int, workers: int) -> None:
    """A store of ``total`` tickets as :func:`load` writes it, in ``workers`` processes: each
    loads a slice into a file of its own (:func:`load_slice`), then the slices are appended
    to the first one in order (:func:`_merge`). The file is the one a single load writes:
    the same tickets, numbers, events and feed positions (every table's rows: :func:`dump`,
    compared on a small store by ``tests/test_bench_kpis_smoke.py``)."""
    step = -(-total // workers)
    bounds = [(start, min(start + step, total)) for start in range(0, total, step)]
    parts = [f"{path}.part{k}" for k in range(len(bounds))]
    for part in parts:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(part + suffix):
                os.remove(part + suffix)
    running = [
        (part, subprocess.Popen([sys.executable, __file__, "--slice", part, str(a), str(b)]))
        for part, (a, b) in zip(parts, bounds, strict=True)
    ]
    for part, process in running:
        if process.wait() != 0:
            raise SystemExit(f"the load of the slice {part} failed")
    _merge(parts[0], parts[1:])
    for part in parts[1:]:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(part + suffix):
                os.remove(part + suffix)
    os.replace(parts[0], path)


def dump(path: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Every table's rows in key order (tickets without their rowid): two stores holding the
    same data dump equal."""
    conn = sqlite3.connect(path)
    try:
        found = []
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall():
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            kept = [c for c in columns if c != "rowid"]
            rows = conn.execute(f"SELECT {', '.join(kept)} FROM {table}").fetchall()
            found.append((table, sorted(rows, key=repr)))
        found.append(
            (
                "schema",
                conn.execute(
                    "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
                ).fetchall(),
            )
        )
        found.append(
            (
                "version",
                [
                    conn.execute("PRAGMA user_version").fetchone(),
                    conn.execute("PRAGMA application_id").fetchone(),
                ],
            )
        )
        return found
    finally:
        conn.close()


def add_events(store: SqliteStore, tickets: int, each: int, total: int) -> None:
    """``tickets * each`` internal notes on tickets spread over the file (setup)."""
    changes = []
    for n in range(tickets):
        state = store.get_ticket(f"t{(n * (total // tickets)):07d}")
        events: list[Event] = []
        for k in range(each):
            at = NOW - timedelta(minutes=each - k)
            events.append(_comment(state, state.seq + 1, at, AGENTS[0], public=False))
            state = apply(state, events[-1])
        changes.append(TicketChange(state, tuple(events), state.seq - each))
    store.commit_planned(changes, [None] * len(changes))


def _desk(path: str) -> Helpdesk:
    return Helpdesk(
        SqliteStore(path, synchronous="NORMAL"),
        config=config(),
        clock=FixedClock(),
        entry_points=False,
    )


def measure(task: str, path: str, checkpoint: str, total: int) -> dict[str, Any]:
    """One task in this (fresh) process: timed, with the process's peak memory."""
    desk = _desk(path)
    out: dict[str, Any] = {}
    try:
        if task == "full":
            started, cpu = time.perf_counter(), time.process_time()
            report = desk.kpis(now=NOW)
            out["s"], out["cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
            out["report"] = report.to_data()
        elif task == "build":  # streamed straight to the file
            started, cpu = time.perf_counter(), time.process_time()
            desk.build_kpi_checkpoint(checkpoint)
            out["s"], out["cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
            out["checkpoint_mib"] = os.path.getsize(checkpoint) / 2**20
        elif task == "build-memory":  # the projection in memory, then saved
            started, cpu = time.perf_counter(), time.process_time()
            projection = desk.kpi_projection()
            out["s"], out["cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
            started = time.perf_counter()
            projection.save(checkpoint, desk.store)
            out["save_s"] = time.perf_counter() - started
            out["checkpoint_mib"] = os.path.getsize(checkpoint) / 2**20
        elif task == "stream":
            started, cpu = time.perf_counter(), time.process_time()
            report = desk.kpis(now=NOW, checkpoint=checkpoint)
            out["s"], out["cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
            out["report"] = report.to_data()
        elif task == "projection":
            started = time.perf_counter()
            projection = desk.kpi_projection(checkpoint)
            out["load_s"] = time.perf_counter() - started
            started, cpu = time.perf_counter(), time.process_time()
            report = desk.kpis(now=NOW, projection=projection)
            out["s"], out["cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
            out["report"] = report.to_data()
        else:  # update-T-E: E new events on each of T tickets
            _, tickets, each = task.split("-")
            projection = KpiProjection.load(checkpoint, desk.config.sla, LADDER)
            store = desk.store
            assert isinstance(store, SqliteStore)
            add_events(store, int(tickets), int(each), total)
            started, cpu = time.perf_counter(), time.process_time()
            read = projection.update(store)
            out["s"], out["cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
            assert read == int(tickets) * int(each), read
            # Again, as a host keeping the projection in memory updates it (the folds
            # resumed once are no longer in their checkpoint form).
            add_events(store, int(tickets), int(each), total)
            started, cpu = time.perf_counter(), time.process_time()
            read = projection.update(store)
            out["again_s"] = time.perf_counter() - started
            out["again_cpu_s"] = time.process_time() - cpu
            assert read == int(tickets) * int(each), read
    finally:
        desk.shutdown()
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def widen(source: str, target: str, times: int) -> None:
    """A checkpoint of ``times`` as many tickets as ``source``'s: its records again and again,
    each copy under new ticket ids (``t0000042`` -> ``t0000042-1``...), nothing resumable.
    Loading 1M tickets (10M events) through the store takes most of an hour on a shared
    machine; a report streamed from this file measures the adding up of 1M records, with the
    source's store (no changes after the checkpoint)."""
    import pickle

    with open(source, "rb") as found, open(target, "wb") as out:
        header = pickle.load(found)
        version, position, as_of, chunks, _ = header
        pickle.dump((version, position, as_of, chunks * times, 0), out, protocol=5)
        records = [pickle.load(found) for _ in range(chunks)]
        for copy in range(times):
            for chunk in records:
                renamed = [(f"{r[0]}-{copy}", *r[1:]) if copy else r for r in chunk]
                pickle.dump(renamed, out, protocol=5)


def _in_process(task: str, path: str, checkpoint: str, total: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--task",
            task,
            "--file",
            path,
            "--checkpoint",
            checkpoint,
            "--total",
            str(total),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def run(total: int, folder: str) -> list[dict[str, Any]]:
    """Load ``total`` tickets, then each task in a fresh process; the reports must agree."""
    path = os.path.join(folder, f"kpis-{total}.db")
    checkpoint = os.path.join(folder, f"kpis-{total}.projection")
    store = SqliteStore(path, synchronous="NORMAL")
    started = time.perf_counter()
    load(store, total)
    loaded = time.perf_counter() - started
    events = store.last_position()
    store.close()
    rows = []
    reports = {}
    tasks = [
        "full",
        "build",
        "stream",
        "projection",
        f"update-{NEW_EVENTS}-1",
        f"update-{NEW_EVENTS // 10}-10",
    ]
    for task in tasks:
        target = path
        if task.startswith("update"):  # each on a copy of the file as loaded
            target = os.path.join(folder, f"kpis-{total}-{task}.db")
            shutil.copyfile(path, target)
        found = _in_process(task, target, checkpoint, total)
        report = found.pop("report", None)
        if report is not None:
            reports[task] = report
        rows.append({"tickets": total, "events": events, "task": task, "load_s": loaded, **found})
    assert reports["full"] == reports["projection"], "the projection's report differs"
    assert reports["full"] == reports["stream"], "the report from the checkpoint differs"
    assert reports["full"]["tickets"] == total
    for name in os.listdir(folder):
        if name.startswith(f"kpis-{total}"):
            os.remove(os.path.join(folder, name))
    return rows


def machine() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"- Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}",
        f"- {platform.platform()}; CPU: {cpu}; {os.cpu_count()} logical CPUs",
        f"- run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]


LABELS = {
    "full": "full recomputation (`desk.kpis`)",
    "build": "checkpoint built from the whole feed, streamed (`desk.build_kpi_checkpoint`)",
    "build-memory": "projection built from the whole feed in memory (`desk.kpi_projection`)",
    "stream": "report streamed from the checkpoint (`desk.kpis(checkpoint=...)`)",
    "projection": "report from the projection (`desk.kpis(projection=...)`)",
    f"update-{NEW_EVENTS}-1": f"update: {NEW_EVENTS:,} new events on {NEW_EVENTS:,} tickets",
    f"update-{NEW_EVENTS // 10}-10": f"update: {NEW_EVENTS:,} new events on "
    f"{NEW_EVENTS // 10:,} tickets",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="tickets, comma-separated")
    parser.add_argument("--quick", action="store_true", help="5k only (smoke run)")
    parser.add_argument(
        "--widen",
        nargs=3,
        metavar=("SOURCE", "TARGET", "TIMES"),
        help="write a checkpoint of TIMES as many tickets as SOURCE's (see widen())",
    )
    parser.add_argument(
        "--build",
        nargs=2,
        metavar=("FILE", "TOTAL"),
        help="write a store of TOTAL tickets to FILE in --workers processes (build_store())",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes for --build")
    parser.add_argument(
        "--touch",
        nargs=3,
        metavar=("FILE", "TOTAL", "TICKETS"),
        help="commit a note on each of TICKETS tickets spread over FILE's TOTAL (the tickets "
        "changed after a checkpoint, before a --task stream)",
    )
    parser.add_argument("--slice", nargs=3, help=argparse.SUPPRESS)  # a --build worker
    parser.add_argument("--task", help=argparse.SUPPRESS)  # a worker: run this task
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        started, cpu = time.perf_counter(), time.process_time()
        build_store(args.build[0], int(args.build[1]), args.workers)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(
            json.dumps(
                {
                    "s": time.perf_counter() - started,
                    "merge_cpu_s": time.process_time() - cpu,
                    "slices_cpu_s": children.ru_utime + children.ru_stime,
                }
            )
        )
        return 0
    if args.touch:
        store = SqliteStore(args.touch[0], synchronous="NORMAL")
        try:
            add_events(store, int(args.touch[2]), 1, int(args.touch[1]))
        finally:
            store.close()
        return 0
    if args.slice:
        load_slice(args.slice[0], int(args.slice[1]), int(args.slice[2]))
        return 0
    if args.widen:
        widen(args.widen[0], args.widen[1], int(args.widen[2]))
        return 0
    if args.task:
        print(json.dumps(measure(args.task, args.file, args.checkpoint, args.total)))
        return 0
    sizes = [5_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        for total in sizes:
            for row in run(total, folder):
                rows.append(row)
                print(row, flush=True)
            loads.append(os.getloadavg()[0])
    lines = [
        "# KPI reports on the SQLite store",
        "",
        f"`python bench/bench_kpis.py --sizes {','.join(str(s) for s in sizes)}` — "
        f"tickets of {EVENTS} events each (opening, message, replies and notes, solved for",
        "4 in 5; one SLA policy on a business calendar), bulk-loaded straight through the store",
        "(setup, not measured; `synchronous=NORMAL`). Each task runs in a fresh process: wall",
        "clock and CPU time of the task, and the process's peak resident memory (`ru_maxrss`,",
        "interpreter included). The two reports are checked equal.",
        "",
        "| tickets | events | task | time (s) | CPU (s) | peak RSS (MiB) | notes |",
        "|---:|---:|:---|---:|---:|---:|:---|",
    ]
    for row in rows:
        notes = []
        if "save_s" in row:
            notes.append(
                f"checkpoint {row['checkpoint_mib']:.0f} MiB written in {row['save_s']:.1f} s"
            )
        if "load_s" in row and row["task"] == "projection":
            notes.append(f"checkpoint loaded in {row['load_s']:.1f} s")
        if row["task"].startswith("update"):
            notes.append(
                f"{row['s'] * 1000:.0f} ms; the next such update {row['again_s'] * 1000:.0f} ms "
                f"({row['again_cpu_s'] * 1000:.0f} ms CPU)"
            )
        lines.append(
            f"| {row['tickets']:,} | {row['events']:,} | {LABELS[row['task']]} | {row['s']:.3f} "
            f"| {row['cpu_s']:.3f} | {row['maxrss_mib']:.0f} | {'; '.join(notes)} |"
        )
    lines += [
        "",
        *machine(),
        "- load average (1 min) at the start and after each size: "
        + ", ".join(f"{load:.1f}" for load in loads),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
