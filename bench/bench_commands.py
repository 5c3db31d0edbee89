"""A command's cost against the length of its ticket's history, with an SLA policy on.

Run ``python bench/bench_commands.py`` (or ``nox -s bench -- bench/bench_commands.py``). For
each store (memory; SQLite with ``synchronous=NORMAL``, so the disk's sync rate does not hide
the CPU cost being measured) it builds tickets with 0, 10, 100 and 1,000 events (replies,
customer answers, notes and SLA warnings and breaches recorded by sweeps), then times the same
commands on each, side by side in one run:

* ``note`` and ``reply`` (a reply also moves the SLA cycles) with the desk's SLA fold cache,
  as a desk runs (the fold is kept after each commit, so a command folds its own events);
* the same with ``fold_cache=0``: each command re-reads and re-folds the whole history, which
  is what every command did before the fold could be extended;
* ``note`` without an SLA policy, for reference.

Each figure is the median (and p95) of 200 commands per ticket length, on a fresh desk per
configuration. The ratio column is each length's median over the 0-event median of the same
configuration (goal of issue #10: at most 1.5 at 1,000 events). Writes
``bench/results/commands.md`` and prints the same Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpkit import Actor, BusinessCalendar, DeskConfig, Helpdesk, Priority, Ticket
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock

RESULTS = Path(__file__).resolve().parent / "results" / "commands.md"
START = datetime(2026, 3, 2, 8, tzinfo=UTC)
LENGTHS = (0, 10, 100, 1000)
POLICY = SlaPolicy(
    "standard",
    BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="Europe/Paris"),
    dict.fromkeys(
        Priority,
        Targets(
            first_response=timedelta(hours=4),
            next_response=timedelta(hours=8),
            periodic_update=timedelta(hours=16),
            resolution=timedelta(hours=40),
        ),
    ),
    warn_at=(0.5, 0.75),
)
ANN = Actor.agent("ann")


def _desk(store: str, folder: str, name: str, *, sla: bool, fold_cache: int) -> Helpdesk:
    if store == "memory":
        target: str | SqliteStore = "memory://"
    else:
        target = SqliteStore(
            os.path.join(folder, f"{name}-{sla}-{fold_cache}.db"), synchronous="NORMAL"
        )
    desk = Helpdesk(
        target,
        config=DeskConfig(sla=SlaPolicySet([POLICY]) if sla else None),
        clock=FrozenClock(START),
        entry_points=False,
        fold_cache=fold_cache,
    )
    desk.add_agent("ann", "Ann")
    desk.create_contact("Carol", emails=["carol@acme.example"], contact_id="carol")
    return desk


def _grow(desk: Helpdesk, ticket: Ticket, events: int) -> Ticket:
    """Add a realistic mix of events until the ticket has ``events`` of them."""
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    step = 0
    while ticket.seq < events:
        clock.advance(timedelta(minutes=37))
        kind = step % 5
        if kind == 0:
            ticket = desk.reply(ticket, ANN, "Could you try again?", status="pending")
        elif kind == 1:
            ticket = desk.requester_reply(ticket, "Still broken")
        elif kind == 2:
            ticket = desk.note(ticket, ANN, "Looked at the logs")
        elif kind == 3:
            desk.sweep()
            ticket = desk.ticket(ticket)
        else:
            ticket = desk.tag(ticket, ANN, f"t{step % 7}")
        step += 1
    return ticket


def _time(command: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        command()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.95)] * 1000


def _command(desk: Helpdesk, command: str, ticket_id: str) -> Callable[[], object]:
    if command == "note":
        return lambda: desk.note(ticket_id, ANN, "checked")
    return lambda: desk.reply(ticket_id, ANN, "Any news?")


def measure(store: str, folder: str, repeat: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    configurations = [
        ("note", True, 8192),
        ("reply", True, 8192),
        ("note", True, 0),
        ("reply", True, 0),
        ("note", False, 8192),
    ]
    for command, sla, cache in configurations:
        desk = _desk(store, folder, command, sla=sla, fold_cache=cache)
        base: float | None = None
        for length in LENGTHS:
            ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="It drops")
            ticket = _grow(desk, ticket, length)
            run = _command(desk, command, ticket.id)
            median, p95 = _time(run, repeat)
            base = median if base is None else base
            rows.append(
                {
                    "store": store,
                    "command": command,
                    "sla": "on" if sla else "off",
                    "fold cache": "kept" if cache else "none (whole history)",
                    "events": length,
                    "median_ms": median,
                    "p95_ms": p95,
                    "ratio": median / base,
                }
            )
            print(rows[-1], flush=True)
        desk.shutdown()
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
    parser.add_argument("--repeat", type=int, default=200, help="commands timed per length")
    parser.add_argument("--stores", default="memory,sqlite", help="memory and/or sqlite")
    parser.add_argument("--quick", action="store_true", help="20 commands, no results file")
    args = parser.parse_args()
    repeat = 20 if args.quick else args.repeat
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        for store in args.stores.split(","):
            rows.extend(measure(store, folder, repeat))
    lines = [
        "# Command cost against history length (SLA on)",
        "",
        "`python bench/bench_commands.py` — the same command on tickets with 0, 10, 100 and",
        "1,000 events, with the desk's SLA fold kept between commands (as a desk runs) and",
        "with `fold_cache=0` (every command re-reads and re-folds the whole history, as all",
        "commands did before), side by side in one run; `note` without SLA for reference.",
        f"Median and p95 of {repeat} commands; SQLite with `synchronous=NORMAL`. Ratio: the",
        "median over the same configuration's median at 0 events.",
        "",
        "| store | command | SLA | fold | events | median (ms) | p95 (ms) | ratio |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['store']} | {row['command']} | {row['sla']} | {row['fold cache']} | "
            f"{row['events']:,} | {row['median_ms']:.3f} | {row['p95_ms']:.3f} | "
            f"{row['ratio']:.2f} |"
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
