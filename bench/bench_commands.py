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

``--cpu`` measures something else: the CPU time (``time.process_time``) of one create and one
reply as ``bench/bench_postgres.py``'s ``run_helpkit`` makes them (``open_ticket`` with a body,
impact, urgency, group and assignee; ``reply(..., status="pending")``), on the memory store
and on SQLite (``synchronous=normal``), each round in fresh worker processes. With
``--before PATH`` (a ``src`` folder of the code before a change, e.g. from
``git archive main src``) the same workers run that code too, in the same run, the two
alternating which goes first each round; it prints the per-round figures and their medians
as Markdown (not written to the results file: paste it, with the machine's load, into a new
dated section).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
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


# ---------------------------------------------------------------- --cpu: CPU per command


def cpu_worker(store: str, count: int, warmup: int) -> dict[str, float]:
    """In this process (the code on ``sys.path``): CPU seconds per create and per reply on
    ``store``, the desk set up as bench_postgres.py's ``_helpkit_desk`` does."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_sqlite as bs

    with tempfile.TemporaryDirectory() as folder:
        url = "memory://"
        if store == "sqlite":
            url = f"sqlite:///{folder}/cpu.db?synchronous=normal"
        desk = Helpdesk(url, entry_points=False)
        contacts = bs.staffed(desk)
        specs = list(bs.specs(warmup + count))
        ids: list[str] = []
        agents: list[str] = []

        def create(part: list[bs.Spec]) -> None:
            for s in part:
                ids.append(bs.open_spec(desk, contacts, s).id)
                agents.append(f"a{s.agent:03d}")

        def reply(part: range) -> None:
            for i in part:
                desk.reply(ids[i], Actor.agent(agents[i]), f"Update {i}: on it.", status="pending")

        create(specs[:warmup])
        started = time.process_time()
        create(specs[warmup:])
        created = time.process_time() - started
        reply(range(warmup))
        started = time.process_time()
        reply(range(warmup, warmup + count))
        replied = time.process_time() - started
        desk.shutdown()
    return {"create_ms": created / count * 1000, "reply_ms": replied / count * 1000}


def _cpu_run(src: str, store: str, count: int, warmup: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    command = [sys.executable, __file__, "--cpu-worker", store, str(count), str(warmup)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def cpu_main(args: argparse.Namespace) -> int:
    here = str(Path(__file__).resolve().parent.parent / "src")
    variants = [("after", here)]
    if args.before:
        variants.append(("before", str(Path(args.before).resolve())))
    samples: dict[tuple[str, str, str], list[float]] = {}
    lines = [
        "| round | store | code | create CPU (ms) | reply CPU (ms) |",
        "|---:|---|---|---:|---:|",
    ]
    for round_ in range(1, args.rounds + 1):
        order = variants if round_ % 2 else variants[::-1]
        for store in args.stores.split(","):
            for name, src in order:
                got = _cpu_run(src, store, args.count, args.warmup)
                samples.setdefault((store, name, "create"), []).append(got["create_ms"])
                samples.setdefault((store, name, "reply"), []).append(got["reply_ms"])
                lines.append(
                    f"| {round_} | {store} | {name} | {got['create_ms']:.4f} | "
                    f"{got['reply_ms']:.4f} |"
                )
                print(lines[-1], flush=True)
    # The median of the rounds, and their minimum (the least disturbed by other work on a
    # shared machine), in ms of CPU per command.
    lines += ["", "Median and minimum of the rounds (ms of CPU per command):", ""]
    header = "| store | command | " + " | ".join(f"{n} median | {n} min" for n, _ in variants)
    lines.append(header + (" | after / before (median) | (min) |" if args.before else " |"))
    lines.append("|---|---|" + "---:|" * (2 * len(variants) + (2 if args.before else 0)))
    for store in args.stores.split(","):
        for command in ("create", "reply"):
            rounds = [samples[(store, n, command)] for n, _ in variants]
            medians = [statistics.median(r) for r in rounds]
            minima = [min(r) for r in rounds]
            row = f"| {store} | {command} | " + " | ".join(
                f"{m:.4f} | {low:.4f}" for m, low in zip(medians, minima, strict=True)
            )
            if args.before:
                row += f" | {medians[0] / medians[1]:.3f} | {minima[0] / minima[1]:.3f}"
            lines.append(row + " |")
    lines += ["", *machine(), f"- load average at the end: {os.getloadavg()}", ""]
    print("\n".join(lines))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200, help="commands timed per length")
    parser.add_argument("--stores", default="memory,sqlite", help="memory and/or sqlite")
    parser.add_argument("--quick", action="store_true", help="20 commands, no results file")
    parser.add_argument("--cpu", action="store_true", help="CPU per create and per reply")
    parser.add_argument("--before", help="with --cpu: the src folder of the code before")
    parser.add_argument("--rounds", type=int, default=5, help="with --cpu: rounds")
    parser.add_argument("--count", type=int, default=2000, help="with --cpu: commands timed")
    parser.add_argument("--warmup", type=int, default=300, help="with --cpu: untimed first")
    parser.add_argument("--cpu-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu_worker:
        store, count, warmup = args.cpu_worker
        print(json.dumps(cpu_worker(store, int(count), int(warmup))))
        return 0
    if args.cpu:
        return cpu_main(args)
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
