"""The SLA sweep on the SQLite store: its cost follows the number of due tickets, not open ones.

Run ``python bench/bench_sweep.py`` (or ``nox -s bench -- bench/bench_sweep.py``). For each
size (100k and 1M open tickets by default) it bulk-loads tickets straight through the store
(setup, not measured), with 1% or 10% of them due for their 75% warning, each with the timer
state the pipeline keeps beside it (its SLA fold), copies the file, then times one
``Helpdesk.sweep`` that records those warnings on each copy, side by side at the same
durability (``synchronous=NORMAL``): with ``batch=1`` (one transaction per due ticket, as the
sweep committed before batching), with the default batches (one transaction per 500 due
tickets) on a copy without the kept states (as a file written before schema v6: the sweep
reads and folds each ticket's history), and with the default batches and the kept states;
then a second sweep that finds nothing due. Each sweep runs in a fresh process and is timed in
wall-clock and CPU time (the machine is often shared). ``--before SRC`` also sweeps a copy with
the default batches and kept states using the helpkit of another source tree (``SRC`` holds its
``helpkit`` package, e.g. ``git archive main src | tar -x -C /tmp/main``), whose kept states are
written by that code, so the change shows side by side in one run (SRC must write the schema
version this tree writes: the file is loaded by this tree; across a schema change, run the
bench in each tree). For the default sweep it
also says how much CPU went inside the store's commits (their write transactions), and replays
the same writes alone on another copy (``replay_sql``: the store's statements with every
parameter made beforehand, no helpkit code running), the floor of the writes. Writes
``bench/results/sweep.md`` and prints the same Markdown. ``--history N`` gives each due ticket N
events (its opening and internal notes, which move no SLA clock) instead of one; it only prints
its Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.events import CommentAdded, Event, TicketOpened
from helpkit.lifecycle import apply
from helpkit.ports import TicketChange
from helpkit.priority import Impact, Urgency
from helpkit.sla import SlaFold, SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.sqlite import SqliteStore
from helpkit.tickets import Comment, StatusCategory

RESULTS = Path(__file__).resolve().parent / "results" / "sweep.md"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TARGET = timedelta(hours=8)  # resolution target; the warning is at 75% = 6h (24/7 calendar)
POLICY = SlaPolicy(
    "bench",
    BusinessCalendar.always("UTC"),
    {p: Targets(resolution=TARGET) for p in Priority},
    warn_at=(0.75,),
)
BATCH = 2000  # tickets per commit while loading (setup)
AGENT = Actor.agent("ana")
# (due tickets per sweep transaction, timer states kept): 1 = as before batching, 500 = default
RUNS = ((1, False), (500, False), (500, True))


class FixedClock:
    """The bench's "now"."""

    def now(self) -> datetime:
        return NOW


def load(store: SqliteStore, total: int, due: int, history: int = 1) -> None:
    """``total`` open tickets; ``due`` of them crossed their warning 30 minutes ago, each
    with ``history`` events (its opening, then internal notes)."""
    actor = Actor.system("bench")
    changes: list[TicketChange] = []
    states: list[str | None] = []
    fingerprint = POLICY.fingerprint()
    # Spread the due tickets evenly over the table, as real ones would be.
    step = total // due if due else total + 1
    for index in range(total):
        late = index % step == 0 and index // step < due
        opened = NOW - (timedelta(hours=6, minutes=30) if late else timedelta(hours=1))
        event = TicketOpened(
            ticket_id=f"t{index:07d}",
            seq=1,
            at=opened,
            actor=actor,
            number=0,  # numbered by the store in the commit
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
        events: list[Event] = [event]
        state = apply(None, event)
        for seq in range(2, history + 1 if late else 2):
            at = opened + timedelta(minutes=seq)
            note = Comment(
                id=f"t{index:07d}-{seq}",
                author=AGENT,
                body="Still looking into it.",
                public=False,
                channel="internal",
                created_at=at,
            )
            events.append(
                CommentAdded(ticket_id=state.id, seq=seq, at=at, actor=AGENT, comment=note)
            )
            state = apply(state, events[-1])
        state = attrs.evolve(
            state,
            sla_policy=POLICY.name,
            next_deadline=opened + TARGET,
            next_check=opened + TARGET * 0.75,
        )
        changes.append(TicketChange(state, tuple(events), 0))
        # The timer state as the pipeline keeps it (helpkit.timers.Timers.state).
        fold = SlaFold.of(events, POLICY)
        states.append(json.dumps({"sla": [fingerprint, fold.to_data()]}, separators=(",", ":")))
        if len(changes) == BATCH:
            store.commit_planned(changes, states)
            changes, states = [], []
    if changes:
        store.commit_planned(changes, states)


def _settle(copy: str) -> None:
    """Write a fresh copy's pages to disk before it is swept: a copy left dirty in the page
    cache makes the sweep's WAL checkpoints pay for writing it back (at 1M open tickets the
    COMMIT took 27.5 µs per due ticket on such a copy, 19.8 on a synced one), which is the
    copy's cost, not the sweep's."""
    with open(copy, "rb+") as handle:
        os.fsync(handle.fileno())


def run(
    total: int, fraction: float, folder: str, history: int = 1, before: str | None = None
) -> list[dict[str, Any]]:
    """Load once, copy the file, sweep each copy with one batch size (and, with ``before``,
    one copy with the helpkit found in that folder), each in a fresh process."""
    path = os.path.join(folder, f"sweep-{total}-{fraction}.db")
    store = SqliteStore(path, synchronous="NORMAL")
    due = int(total * fraction)
    started = time.perf_counter()
    load(store, total, due, history)
    loaded = time.perf_counter() - started
    store.close()
    runs: list[tuple[int, bool, str | None]] = [(batch, kept, None) for batch, kept in RUNS]
    if before is not None:
        runs.insert(len(runs) - 1, (500, True, before))  # side by side with this version's
    rows = []
    for batch, kept, source in runs:
        copy = os.path.join(folder, f"sweep-{total}-{fraction}-{batch}-{kept}-{bool(source)}.db")
        shutil.copyfile(path, copy)
        if not kept:
            with sqlite3.connect(copy) as conn:
                conn.execute("UPDATE tickets SET timer_state = NULL")
            conn.close()
        _settle(copy)
        swept = _sweep_in_process(copy, batch, due, source)
        os.remove(copy)
        if kept and source is None:
            # The same writes without helpkit, on a fresh copy (see replay_sql).
            shutil.copyfile(path, copy)
            _settle(copy)
            replayed = _sweep_in_process(copy, batch, due, None, replay=True)
            os.remove(copy)
            assert replayed["replayed"] == due, replayed
            swept.update(replayed)
        rows.append(
            {
                "open": total,
                "due": due,
                "batch": batch,
                "kept": kept,
                "version": "before" if source else "this",
                "history": history,
                "load_s": loaded,
                "sweep_s": swept["sweep_s"],
                "sweep_cpu_s": swept["cpu_s"],
                "per_due_ms": swept["sweep_s"] / max(due, 1) * 1000,
                "per_due_cpu_ms": swept["cpu_s"] / max(due, 1) * 1000,
                "again_ms": swept["again_ms"],
                "commit_cpu_ms": swept["commit_cpu_s"] / max(due, 1) * 1000,
                "commit_ms": swept["commit_s"] / max(due, 1) * 1000,
                "sql_cpu_ms": swept.get("sql_cpu_s", float("nan")) / max(due, 1) * 1000,
                "sql_ms": swept.get("sql_s", float("nan")) / max(due, 1) * 1000,
            }
        )
    os.remove(path)
    return rows


def _sweep_in_process(
    path: str, batch: int, due: int, source: str | None, *, replay: bool = False
) -> dict[str, float]:
    """:func:`sweep_file` (or, with ``replay``, :func:`replay_sql`) in a fresh Python process
    (with ``source`` first on its path)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, __file__, "--sweep-file", path, "--batch", str(batch), "--due", str(due)]
        + (["--rewrite-states"] if source is not None else [])
        + (["--replay-sql"] if replay else []),
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def rewrite_states(path: str) -> None:
    """Replace the kept timer state of each due ticket with the one this process's helpkit
    keeps (another version may keep another form of the fold). Setup, not measured."""
    with sqlite3.connect(path) as conn:
        due = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM tickets WHERE timer_state IS NOT NULL AND next_check_us <= ?",
                ((NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1),),
            )
        ]
    conn.close()
    store = SqliteStore(path, synchronous="NORMAL")
    fingerprint = POLICY.fingerprint()
    states = []
    for ticket_id in due:
        fold = SlaFold.of(store.events(ticket_id), POLICY)
        states.append(
            (json.dumps({"sla": [fingerprint, fold.to_data()]}, separators=(",", ":")), ticket_id)
        )
    store.close()
    with sqlite3.connect(path) as conn:
        conn.executemany("UPDATE tickets SET timer_state = ? WHERE id = ?", states)
    conn.close()


def sweep_file(path: str, batch: int, due: int) -> dict[str, float]:
    """Time one sweep of the file (wall clock and CPU), then a second that finds nothing."""
    store = SqliteStore(path, synchronous="NORMAL")
    desk = Helpdesk(
        store,
        config=DeskConfig(sla=SlaPolicySet([POLICY])),
        clock=FixedClock(),
        entry_points=False,
    )
    # The time spent inside the store's commits (the write transactions: their SQL, and the
    # Python that turns the prepared rows into statements), measured around the real method.
    # The sweep's fast path writes through commit_timers (its narrow updates), timed alike.
    inside = [0.0, 0.0]

    def timed(method: Any) -> Any:
        def call(*args: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return method(*args)
            finally:
                inside[0] += time.perf_counter() - wall
                inside[1] += time.process_time() - cpu

        return call

    setattr(store, "_commit", timed(store._commit))  # noqa: B010 - an instance attribute
    if hasattr(store, "commit_timers"):  # (a --before tree may not have the fast path)
        setattr(store, "commit_timers", timed(store.commit_timers))  # noqa: B010
    started, cpu = time.perf_counter(), time.process_time()
    report = desk.sweep(NOW, batch=batch)
    first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert report.examined == due and report.warnings == due, report
    started = time.perf_counter()
    again = desk.sweep(NOW)
    second = time.perf_counter() - started
    assert again.examined == 0 and again.warnings == 0, again
    desk.shutdown()
    return {
        "sweep_s": first,
        "cpu_s": first_cpu,
        "again_ms": second * 1000,
        "commit_s": inside[0],
        "commit_cpu_s": inside[1],
    }


def replay_sql(path: str, batch: int = 500, *, checkpoint: bool = True) -> dict[str, float]:
    """The SQL a sweep's commits run, alone: the same statements of the SQLite store (the feed
    position, the batch's stored rows, one update of each due ticket's changed columns and
    its timer state, its event), with every parameter made beforehand from the file (each due
    ticket's next state, event and timer state, as a sweep would write them), in one write
    transaction per ``batch`` due tickets on one of the store's own connections. No helpkit
    code runs while it is timed: the floor of the writes as the file is laid out today.

    Also the CPU of each statement alone (``update_cpu_s``, ``insert_cpu_s``, and
    ``commit_cpu_s``: the ``COMMIT``, with SQLite's automatic WAL checkpoints). Without
    ``checkpoint`` there are none during the replay; one checkpoint of the whole WAL after it
    is timed apart (``checkpoint_cpu_s``, not in ``sql_cpu_s``)."""
    from helpkit._codec.text import dumps
    from helpkit.stores.sqlite import store as sqlite_store
    from helpkit.stores.sqlite.encoding import _TICKET_COLUMNS
    from helpkit.stores.sqlite.feed import LAST_POSITION

    now_us = (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    store = SqliteStore(path, synchronous="NORMAL")
    with store._connection() as conn:
        due = conn.execute(
            "SELECT id, seq, state, timer_state FROM tickets "
            "WHERE next_check_us <= ? AND timer_state IS NOT NULL ORDER BY next_check_us, id",
            (now_us,),
        ).fetchall()
    work = []
    for ticket_id, seq, text, kept in due:
        state = json.loads(text)
        breach = datetime.fromisoformat(state["next_deadline"])
        crossed = state["next_check"]
        state.update(seq=seq + 1, updated_at=NOW.isoformat(), next_check=breach.isoformat())
        body = {
            "type": "sla_warned",
            "v": 1,
            "ticket_id": ticket_id,
            "seq": seq + 1,
            "at": NOW.isoformat(),
            "actor": {"kind": "system", "id": "sweep"},
            "policy": POLICY.name,
            "metric": "resolution",
            "cycle": 0,
            "threshold": 0.75,
            "crossed_at": crossed,
            "due": breach.isoformat(),
        }
        check_us = (breach - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        work.append((ticket_id, seq + 1, dumps(state), dumps(body), kept, check_us))
    # The columns a recorded warning changes, in the store's order, and the timer state.
    update = sqlite_store._update_sql(
        tuple(_TICKET_COLUMNS.index(c) for c in ("seq", "updated_us", "next_check_us", "state")),
        True,
    )
    if not checkpoint:
        with store._connection() as conn:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    clock = time.process_time
    phases = {"update_cpu_s": 0.0, "insert_cpu_s": 0.0, "commit_cpu_s": 0.0}
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(work), batch):
        chunk = work[start : start + batch]
        with store._transaction() as conn:
            position = conn.execute(LAST_POSITION).fetchone()[0]
            ids = [item[0] for item in chunk]
            rowids = {
                row[1]: row[0]
                for row in conn.execute(
                    f"{sqlite_store._SELECT_STORED} IN ({', '.join('?' * len(ids))})", ids
                ).fetchall()
            }
            updates = [
                (s, now_us, check, text, kept, rowids[t]) for t, s, text, _, kept, check in chunk
            ]
            events = [
                (t, s, "sla_warned", now_us, "system:sweep", body, position + offset)
                for offset, (t, s, _, body, _, _) in enumerate(chunk, start=1)
            ]
            mark = clock()
            conn.executemany(update, updates)
            phases["update_cpu_s"] += (after := clock()) - mark
            conn.executemany(sqlite_store._INSERT_EVENTS, events)
            phases["insert_cpu_s"] += (mark := clock()) - after
        phases["commit_cpu_s"] += clock() - mark
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    result = {"sql_s": wall, "sql_cpu_s": cpu, "replayed": len(work), **phases}
    if not checkpoint:
        mark = clock()
        with store._connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        result["checkpoint_cpu_s"] = clock() - mark
    store.close()
    return result


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="open tickets, comma-separated")
    parser.add_argument("--fractions", default="0.01,0.1", help="due fractions, comma-separated")
    parser.add_argument("--quick", action="store_true", help="10k and 50k only (smoke run)")
    parser.add_argument("--history", type=int, default=1, help="events per due ticket")
    parser.add_argument(
        "--before", metavar="SRC", help="also sweep with the helpkit package found in SRC"
    )
    parser.add_argument("--sweep-file", help=argparse.SUPPRESS)  # a worker: sweep this file
    parser.add_argument("--batch", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--due", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rewrite-states", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay-sql", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-checkpoint", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sweep_file and args.replay_sql:
        replayed = replay_sql(args.sweep_file, args.batch, checkpoint=not args.no_checkpoint)
        print(json.dumps(replayed))
        return 0
    if args.sweep_file:
        if args.rewrite_states:
            rewrite_states(args.sweep_file)
        print(json.dumps(sweep_file(args.sweep_file, args.batch, args.due)))
        return 0
    before = None if args.before is None else os.path.abspath(args.before)
    sizes = [10_000, 50_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    rows = []
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        for total in sizes:
            for fraction in fractions:
                for row in run(total, fraction, folder, args.history, before):
                    rows.append(row)
                    print(row, flush=True)
                loads.append(os.getloadavg()[0])
    lines = [
        "# SLA sweep on the SQLite store",
        "",
        "`python bench/bench_sweep.py"
        + (" --before SRC" if before else "")
        + "` — one `Helpdesk.sweep` recording the 75% warning of every",
        "due ticket, on copies of the same file at the same durability",
        "(`synchronous=NORMAL`): one transaction per due ticket (`batch=1`, as before batching)",
        "and one per 500 due tickets (the default), without the timer states kept beside the",
        "tickets (as a file from before schema v6: each due ticket's history is read and",
        "folded), then the default with them"
        + (" (with the helpkit of `SRC` too: version *before*)" if before else "")
        + "; then a second sweep that finds nothing due.",
        "Each sweep runs in a fresh process; CPU is that process's CPU time during the sweep.",
        "Setup (bulk load) is not measured.",
        *(
            [
                f"`--history {args.history}`: each due ticket has {args.history} events (its "
                "opening, then internal notes)."
            ]
            if args.history != 1
            else []
        ),
        "",
        "| open tickets | due | due tickets per transaction | timer states kept | version "
        "| sweep (s) | per due ticket (ms) | CPU per due ticket (ms) | second sweep (ms) |",
        "|---:|---:|---:|:---:|:---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['open']:,} | {row['due']:,} | {row['batch']:,} | "
            f"{'yes' if row['kept'] else 'no'} | {row['version']} | {row['sweep_s']:.2f} | "
            f"{row['per_due_ms']:.3f} | {row['per_due_cpu_ms']:.3f} | {row['again_ms']:.2f} |"
        )
    lines += [
        "",
        "Where the time of the default sweep (500 per transaction, timer states kept, this",
        "version) goes, per due ticket: inside the store's commits (their write transactions:",
        "the SQL, and the Python that binds the prepared rows), the rest (reading the due",
        "tickets and their states, deciding, the timers, encoding), and the same writes replayed",
        "alone with parameters made beforehand, no helpkit code running (`replay_sql`: the floor",
        "of the writes as the file is laid out).",
        "",
        "| open tickets | due | sweep CPU (ms) | in the commits, CPU (ms) | the rest, CPU (ms) "
        "| the writes alone, CPU (ms) | the writes alone, wall (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if row["kept"] and row["version"] == "this":
            lines.append(
                f"| {row['open']:,} | {row['due']:,} | {row['per_due_cpu_ms']:.3f} | "
                f"{row['commit_cpu_ms']:.3f} | "
                f"{row['per_due_cpu_ms'] - row['commit_cpu_ms']:.3f} | "
                f"{row['sql_cpu_ms']:.3f} | {row['sql_ms']:.3f} |"
            )
    lines += [
        "",
        *machine(),
        "- load average (1 min) at the start and after each size and fraction: "
        + ", ".join(f"{load:.1f}" for load in loads),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.quick and args.history == 1:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
