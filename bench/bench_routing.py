"""Routing's cost per create on SQLite: creates in a routed group against creates without.

Run ``python bench/bench_routing.py`` (or ``nox -s bench -- bench/bench_routing.py``). Three
desks on SQLite files (``synchronous=NORMAL`` for all three, so the disk's sync rate does not
hide the CPU cost being measured; the durability is the same in every configuration), each
with one group of ``--agents`` agents:

* ``no routing``: the group has no ``[routing]`` table (``open_ticket`` with the group);
* ``round_robin``: the group routes round robin, without a capacity;
* ``least_loaded``: least loaded with a capacity no agent reaches, language matching on
  (the requester has a language): the most reads a decision makes.

Creates are interleaved in rounds (a batch of each configuration in turn), so a busy neighbour
on the machine weighs on all three alike. Each figure is the median over the batches of the
wall time and of the process CPU time per create (``time.process_time``), and the overhead is
the difference with ``no routing``. Writes ``bench/results/routing.md`` (with the load
average) and prints the same Markdown.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpkit import Actor, Helpdesk
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock

RESULTS = Path(__file__).resolve().parent / "results" / "routing.md"
START = datetime(2026, 3, 2, 10, tzinfo=UTC)
WEB = Actor.system("web")
CONFIGS: dict[str, dict[str, Any]] = {
    "no routing": {},
    "round_robin": {"routing": {"support": {"strategy": "round_robin"}}},
    "least_loaded": {
        "routing": {"support": {"strategy": "least_loaded", "capacity": 100_000, "language": True}}
    },
}


def _desk(folder: str, name: str, config: dict[str, Any], agents: int) -> Helpdesk:
    store = SqliteStore(os.path.join(folder, f"{name.replace(' ', '_')}.db"), synchronous="NORMAL")
    desk = Helpdesk(store, config=config, clock=FrozenClock(START), entry_points=False)
    desk.add_group("support", "Support")
    for n in range(agents):
        desk.add_agent(f"a{n:03}", f"Agent {n}", groups=["support"], languages=["en", "fr"])
    desk.create_contact("Requester", emails=["r@example.com"], language="fr")
    return desk


def _batch(desk: Helpdesk, size: int) -> tuple[float, float]:
    """Create ``size`` tickets; the wall and CPU seconds per create."""
    contact = desk.contact_by_email("r@example.com")
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(size):
        desk.open_ticket(WEB, requester=contact, subject="Help", body="Hello", group="support")
    return (time.perf_counter() - wall) / size, (time.process_time() - cpu) / size


def run(rounds: int, batch: int, agents: int) -> str:
    """Run the bench; the Markdown report."""
    with tempfile.TemporaryDirectory() as folder:
        desks = {name: _desk(folder, name, config, agents) for name, config in CONFIGS.items()}
        for desk in desks.values():
            _batch(desk, 20)  # warm up: caches, statements, the first pages
        walls: dict[str, list[float]] = {name: [] for name in desks}
        cpus: dict[str, list[float]] = {name: [] for name in desks}
        for _ in range(rounds):
            for name, desk in desks.items():
                wall, cpu = _batch(desk, batch)
                walls[name].append(wall)
                cpus[name].append(cpu)
        routed = [
            t.assignee_id is not None
            for t in desks["least_loaded"].tickets(group_ids={"support"}, limit=50)
        ]
        for desk in desks.values():
            desk.shutdown()
    assert all(routed), "the routed desk left tickets unassigned"
    load = os.getloadavg()
    base_wall = statistics.median(walls["no routing"])
    base_cpu = statistics.median(cpus["no routing"])
    lines = [
        "# Routing: cost per create on SQLite",
        "",
        f"`python bench/bench_routing.py --rounds {rounds} --batch {batch} --agents {agents}`:",
        f"{rounds} rounds of {batch} creates per configuration, interleaved; one group of "
        f"{agents} agents; SQLite `synchronous=NORMAL` in every configuration. Medians over "
        "the batches of the time per create (wall, and this process's CPU).",
        "",
        "| configuration | wall ms / create | CPU ms / create | routing overhead (CPU ms) |",
        "|---|---:|---:|---:|",
    ]
    for name in desks:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        over = "" if name == "no routing" else f"{(cpu - base_cpu) * 1000:+.3f}"
        lines.append(f"| {name} | {wall * 1000:.3f} | {cpu * 1000:.3f} | {over} |")
    lines += [
        "",
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} when the run ended (other work shares "
        f"the machine: compare the CPU column). Wall overhead of round_robin: "
        f"{(statistics.median(walls['round_robin']) - base_wall) * 1000:+.3f} ms.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, write the results (unless ``--no-write``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    report = run(args.rounds, args.batch, args.agents)
    print(report)
    if not args.no_write:
        RESULTS.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
