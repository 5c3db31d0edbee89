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
then a second sweep that finds nothing due. Writes ``bench/results/sweep.md`` and prints the
same Markdown. ``--history N`` gives each due ticket N events (its opening and internal notes,
which move no SLA clock) instead of one; it only prints its Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
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


def run(total: int, fraction: float, folder: str, history: int = 1) -> list[dict[str, Any]]:
    """Load once, copy the file, sweep each copy with one batch size."""
    path = os.path.join(folder, f"sweep-{total}-{fraction}.db")
    store = SqliteStore(path, synchronous="NORMAL")
    due = int(total * fraction)
    started = time.perf_counter()
    load(store, total, due, history)
    loaded = time.perf_counter() - started
    store.close()
    rows = []
    for batch, kept in RUNS:
        copy = os.path.join(folder, f"sweep-{total}-{fraction}-{batch}-{kept}.db")
        shutil.copyfile(path, copy)
        if not kept:
            with sqlite3.connect(copy) as conn:
                conn.execute("DELETE FROM timer_states")
            conn.close()
        desk = Helpdesk(
            SqliteStore(copy, synchronous="NORMAL"),
            config=DeskConfig(sla=SlaPolicySet([POLICY])),
            clock=FixedClock(),
            entry_points=False,
        )
        started = time.perf_counter()
        report = desk.sweep(NOW, batch=batch)
        first = time.perf_counter() - started
        assert report.examined == due and report.warnings == due, report
        started = time.perf_counter()
        again = desk.sweep(NOW)
        second = time.perf_counter() - started
        assert again.examined == 0 and again.warnings == 0, again
        desk.shutdown()
        os.remove(copy)
        rows.append(
            {
                "open": total,
                "due": due,
                "batch": batch,
                "kept": kept,
                "history": history,
                "load_s": loaded,
                "sweep_s": first,
                "per_due_ms": first / max(due, 1) * 1000,
                "again_ms": second * 1000,
            }
        )
    os.remove(path)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="open tickets, comma-separated")
    parser.add_argument("--fractions", default="0.01,0.1", help="due fractions, comma-separated")
    parser.add_argument("--quick", action="store_true", help="10k and 50k only (smoke run)")
    parser.add_argument("--history", type=int, default=1, help="events per due ticket")
    args = parser.parse_args()
    sizes = [10_000, 50_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for total in sizes:
            for fraction in fractions:
                for row in run(total, fraction, folder, args.history):
                    rows.append(row)
                    print(row, flush=True)
    lines = [
        "# SLA sweep on the SQLite store",
        "",
        "`python bench/bench_sweep.py` — one `Helpdesk.sweep` recording the 75% warning of every",
        "due ticket, on three copies of the same file at the same durability",
        "(`synchronous=NORMAL`): one transaction per due ticket (`batch=1`, as before batching)",
        "and one per 500 due tickets (the default), without the timer states kept beside the",
        "tickets (as a file from before schema v6: each due ticket's history is read and",
        "folded), then the default with them; then a second sweep that finds nothing due.",
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
        "| open tickets | due | due tickets per transaction | timer states kept | sweep (s) "
        "| per due ticket (ms) | second sweep (ms) |",
        "|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['open']:,} | {row['due']:,} | {row['batch']:,} | "
            f"{'yes' if row['kept'] else 'no'} | {row['sweep_s']:.2f} | "
            f"{row['per_due_ms']:.3f} | {row['again_ms']:.2f} |"
        )
    lines += ["", *machine(), ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick and args.history == 1:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
