"""The SLA sweep on the SQLite store: its cost follows the number of due tickets, not open ones.

Run ``python bench/bench_sweep.py`` (or ``nox -s bench -- bench/bench_sweep.py``). For each
size (100k and 1M open tickets by default) it bulk-loads tickets straight through the store
(setup, not measured), with 1% or 10% of them due for their 75% warning, copies the file, then
times one ``Helpdesk.sweep`` that records those warnings on each copy, side by side at the same
durability (``synchronous=NORMAL``): with ``batch=1`` (one transaction per due ticket, as the
sweep committed before) and with the default batches (one transaction per 500 due tickets),
and a second sweep that finds nothing due. Writes ``bench/results/sweep.md`` and prints the
same Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.events import TicketOpened
from helpkit.lifecycle import apply
from helpkit.ports import TicketChange
from helpkit.priority import Impact, Urgency
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.sqlite import SqliteStore
from helpkit.tickets import StatusCategory

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
BATCHES = (1, 500)  # due tickets per sweep transaction: 1 = as before batching, 500 = default


class FixedClock:
    """The bench's "now"."""

    def now(self) -> datetime:
        return NOW


def load(store: SqliteStore, total: int, due: int) -> None:
    """``total`` open tickets; ``due`` of them crossed their warning 30 minutes ago."""
    actor = Actor.system("bench")
    changes: list[TicketChange] = []
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
        state = attrs.evolve(
            apply(None, event),
            sla_policy=POLICY.name,
            next_deadline=opened + TARGET,
            next_check=opened + TARGET * 0.75,
        )
        changes.append(TicketChange(state, (event,), 0))
        if len(changes) == BATCH:
            store.commit(changes)
            changes = []
    if changes:
        store.commit(changes)


def run(total: int, fraction: float, folder: str) -> list[dict[str, float]]:
    """Load once, copy the file, sweep each copy with one batch size."""
    path = os.path.join(folder, f"sweep-{total}-{fraction}.db")
    store = SqliteStore(path, synchronous="NORMAL")
    due = int(total * fraction)
    started = time.perf_counter()
    load(store, total, due)
    loaded = time.perf_counter() - started
    store.close()
    rows = []
    for batch in BATCHES:
        copy = os.path.join(folder, f"sweep-{total}-{fraction}-{batch}.db")
        shutil.copyfile(path, copy)
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
    args = parser.parse_args()
    sizes = [10_000, 50_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for total in sizes:
            for fraction in fractions:
                for row in run(total, fraction, folder):
                    rows.append(row)
                    print(row, flush=True)
    lines = [
        "# SLA sweep on the SQLite store",
        "",
        "`python bench/bench_sweep.py` — one `Helpdesk.sweep` recording the 75% warning of every",
        "due ticket, on two copies of the same file at the same durability",
        "(`synchronous=NORMAL`): one transaction per due ticket (`batch=1`, as before batching)",
        "and one per 500 due tickets (the default); then a second sweep that finds nothing due.",
        "Setup (bulk load) is not measured.",
        "",
        "| open tickets | due | due tickets per transaction | sweep (s) | per due ticket (ms) "
        "| second sweep (ms) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['open']:,} | {row['due']:,} | {row['batch']:,} | {row['sweep_s']:.2f} | "
            f"{row['per_due_ms']:.3f} | {row['again_ms']:.2f} |"
        )
    lines += ["", *machine(), ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
