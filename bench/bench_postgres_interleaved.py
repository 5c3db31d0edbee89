"""helpkit's and django-helpdesk's creates and updates on PostgreSQL, interleaved.

Run ``python bench/bench_postgres_interleaved.py`` (the ``postgres`` extra and the ``bench``
dependency group; ``--quick`` is a smoke run). Writes ``bench/results/postgres-interleaved.md``
(or ``--output``) and prints the same Markdown.

bench/bench_postgres.py runs each side's creates and updates in a worker process of its own,
one side after the other: each of its pairings compares two windows of a few seconds. On a
machine shared with other jobs the two windows differ, and single pairings of one run have
ranged from 0.7x to 3.7x. Here the sides' workers run at the same time, each on a database of
its own on the same server, and take turns at the work: ``--chunk`` creates (then updates) on
one side, the same on the other, then the other side first, and so on (A B, B A, A B...). The
two sides share every minute of the run, so a change of the machine weighs on both alike.
Each worker times its own turns (wall clock, its process's CPU, the CPU of its database's
server backends); a worker waiting for its turn is blocked on a pipe and uses no CPU.

The work is bench_postgres.py's, command for command (:func:`bench_sqlite.django_create`,
:func:`bench_sqlite.helpkit_update`, ...): the same tickets, updates and durability
(``synchronous_commit`` read back on each side). ``--baseline DIR`` adds a third worker
running the helpkit of another source tree (before and after, in the same turns).

Reported per round: each side's creates/s and updates/s over all its turns, the ratio of
those, and the spread of the ratio over the turn pairs (the k-th turn of one side against the
k-th of the other, which ran within a second of each other).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_postgres as bp
import bench_sqlite as bs

RESULTS = Path(__file__).resolve().parent / "results" / "postgres-interleaved.md"
SMALL = {"AGENTS": 6, "GROUPS": 3, "CONTACTS": 5}
"""bench_sqlite's helpdesk shrunk for ``--quick`` (its setup commits per agent and contact)."""


# ---------------------------------------------------------------- the worker (one per side)


class Side:
    """One system's work in a worker process: set up on a fresh database, then creates and
    updates in the order of bench_sqlite's specs and update plan, a turn at a time."""

    def __init__(self, system: str, url: str, creates: int, updates: int) -> None:
        self.system = system
        self.url = url
        self.result = bp.Result(bp.Job(system, creates, updates))
        self.specs = list(bs.specs(creates))
        self.plan = bs.update_plan(creates, updates)
        self.agents = [s.agent for s in self.specs]
        self.ids: list[Any] = []
        self.done = 0  # updates done
        self.create: Callable[[bs.Spec], Any]
        self.update: Callable[[Any, int, str], None]
        self.close: Callable[[], str]
        if system == "django":
            d = bp._django(url, self.result)
            self.create = lambda s: bs.django_create(d, s)
            self.update = lambda ticket, agent, body: bs.django_update(d, ticket, agent, body)

            def close() -> str:
                models = d["models"]
                counts = (
                    f"{models.Ticket.objects.count()} tickets, "
                    f"{models.FollowUp.objects.count()} follow-ups"
                )
                d["db"].connection.close()
                return counts

            self.close = close
        else:
            desk, contacts = bp._helpkit_desk(url, self.result)
            self.create = lambda s: bs.open_spec(desk, contacts, s).id
            self.update = lambda ticket, agent, body: bs.helpkit_update(desk, ticket, agent, body)

            def close_desk() -> str:
                counts = (
                    f"{bp._count(desk.store, 'tickets')} tickets, "
                    f"{bp._count(desk.store, 'events')} events"
                )
                desk.shutdown()
                return counts

            self.close = close_desk
        self.meter = bp.CpuMeter(url)

    def turn(self, op: str, n: int) -> dict[str, Any]:
        """The next ``n`` creates or updates, timed: wall seconds, client and server CPU."""
        self.meter.lap()
        start = time.perf_counter()
        if op == "creates":
            first = len(self.ids)
            for s in self.specs[first : first + n]:
                self.ids.append(self.create(s))
            count = len(self.ids) - first
        else:
            first = self.done
            for i, body in self.plan[first : first + n]:
                self.update(self.ids[i], self.agents[i], body)
            self.done += len(self.plan[first : first + n])
            count = self.done - first
        wall = time.perf_counter() - start
        client, server = self.meter.lap()
        return {"count": count, "wall": wall, "client": client, "server": server}


def worker(system: str, creates: int, updates: int, dsn: str, quick: bool) -> None:
    """A side's worker: reads turns from stdin (one JSON object a line: ``{"op": "creates" |
    "updates", "n": N}`` or ``{"op": "end"}``), answers each on stdout."""
    if quick:
        for name, value in SMALL.items():
            setattr(bs, name, value)
    out = sys.stdout
    with bp.fresh_database(dsn, f"hk_bench_il_{system.replace('-', '_')}") as url:
        side = Side(system.split("-")[0], url, creates, updates)
        _say(out, {"label": side.result.label, "sync": side.result.synchronous_commit})
        for line in sys.stdin:
            order = json.loads(line)
            if order["op"] == "end":
                counts = side.close()
                side.meter.close()
                maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                _say(out, {"counts": counts, "maxrss_kib": maxrss, "revision": bs.revision()})
                break
            _say(out, side.turn(order["op"], int(order["n"])))


def _say(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


# ---------------------------------------------------------------- the coordinator


@dataclass
class Tally:
    """One side's turns of one round."""

    name: str
    label: str = ""
    sync: str = ""
    turns: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"creates": [], "updates": []}
    )
    counts: str = ""
    maxrss_kib: int = 0
    revision: str = ""

    def rate(self, op: str) -> float | None:
        """Commands per second over all the turns of ``op``."""
        done = sum(t["count"] for t in self.turns[op])
        wall = sum(t["wall"] for t in self.turns[op])
        return done / wall if wall else None

    def cpu_ms(self, op: str) -> str:
        """CPU ms per command, client / server, over the turns of ``op``."""
        done = sum(t["count"] for t in self.turns[op])
        if not done:
            return "-"
        parts = []
        for key in ("client", "server"):
            values = [t[key] for t in self.turns[op]]
            parts.append("?" if None in values else f"{sum(values) * 1000 / done:.2f}")
        return " / ".join(parts)


class Worker:
    """A side's worker process, driven through its pipes."""

    def __init__(
        self, name: str, source: str, creates: int, updates: int, dsn: str, quick: bool
    ) -> None:
        env = None
        if source:
            paths = [str(Path(source) / "src"), os.environ.get("PYTHONPATH", "")]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        command = [sys.executable, __file__, "--worker", name.split(" ")[0], str(creates)]
        command += [str(updates), dsn] + (["--quick"] if quick else [])
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.tally = Tally(name)
        self.source = source

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.tally.name} worker ended early (its stderr says why)")
        message: dict[str, Any] = json.loads(line)
        return message

    def send(self, order: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()

    def ready(self) -> None:
        hello = self.read()
        self.tally.label, self.tally.sync = hello["label"], hello["sync"]

    def end(self) -> Tally:
        self.send({"op": "end"})
        last = self.read()
        self.tally.counts = last["counts"]
        self.tally.maxrss_kib = last["maxrss_kib"]
        self.tally.revision = f"baseline {self.source}" if self.source else last["revision"]
        self.process.wait(timeout=60)
        return self.tally

    def close(self) -> None:
        """Stop the worker if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def turn_orders(names: Sequence[str], turns: int) -> list[list[str]]:
    """Who goes first in each turn: the sides in order, then in reverse, and so on (A B, B A,
    A B, ...; with three, A B C, C B A, ...), so none always runs on what another left."""
    return [list(names) if k % 2 == 0 else list(reversed(names)) for k in range(turns)]


def play(workers: Sequence[Worker], op: str, total: int, chunk: int) -> None:
    """``total`` commands of ``op`` on every side, ``chunk`` a turn, in :func:`turn_orders`."""
    by_name = {w.tally.name: w for w in workers}
    turns = -(-total // chunk) if total else 0
    for k, order in enumerate(turn_orders([w.tally.name for w in workers], turns)):
        n = min(chunk, total - k * chunk)
        for name in order:
            w = by_name[name]
            w.send({"op": op, "n": n})
            w.tally.turns[op].append(w.read())
        if (k + 1) % max(1, turns // 5) == 0:
            print(f"   {op}: turn {k + 1}/{turns}", file=sys.stderr, flush=True)


def run_round(
    sides: Sequence[tuple[str, str]], creates: int, updates: int, chunk: int, dsn: str, quick: bool
) -> list[Tally]:
    """One round: a worker per side (name, helpkit source or ""), set up, then the creates
    and the updates in turns; each side's tally."""
    workers = [Worker(name, source, creates, updates, dsn, quick) for name, source in sides]
    try:
        for w in workers:
            w.ready()
        play(workers, "creates", creates, chunk)
        play(workers, "updates", updates, chunk)
        return [w.end() for w in workers]
    finally:
        for w in workers:
            w.close()


def pair_ratios(ours: Tally, theirs: Tally, op: str) -> list[float]:
    """Our turn k's rate over their turn k's, for every k (turns of the same size, run one
    right after the other)."""
    return [
        (a["count"] / a["wall"]) / (b["count"] / b["wall"])
        for a, b in zip(ours.turns[op], theirs.turns[op], strict=True)
        if a["wall"] and b["wall"] and b["count"]
    ]


def _over(ours: float | None, theirs: float | None) -> float | None:
    """``ours / theirs``, None when either is unknown (a side that made none)."""
    return ours / theirs if ours and theirs else None


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    low, high = ordered[len(ordered) // 10], ordered[-1 - len(ordered) // 10]
    return f"{bs.median(values):.2f}x ({low:.2f}x-{high:.2f}x)"


def render(rounds: list[list[Tally]], chunk: int, command: str, took: float) -> str:
    first = rounds[0]
    creates = sum(t["count"] for t in first[0].turns["creates"])
    updates = sum(t["count"] for t in first[0].turns["updates"])
    out = [
        "# PostgreSQL store benchmark, interleaved: helpkit and django-helpdesk taking turns",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. In each round one",
        "worker process per side, each on a database of its own on the same PostgreSQL server,",
        f"made {creates:,} creates and then {updates:,} updates, {chunk:,} at a turn, the sides",
        "taking turns (A B, B A, ...): bench/bench_postgres.py's work (the same tickets,",
        "updates and inputs), with every create and update its own committed transaction.",
        "**creates/s** and **updates/s**: a side's commands over the wall time of its turns.",
        "**turn pairs**: the ratio of the k-th turns of the two sides, which ran one right",
        "after the other: the median (10th-90th percentile). CPU: the worker's process and",
        "its database's server backends over its turns, per command.",
        "",
        "| round | system | synchronous_commit | creates/s | updates/s |"
        " CPU ms per create: client / server | CPU ms per update: client / server |"
        " peak RSS MiB |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for n, tallies in enumerate(rounds, 1):
        for t in tallies:
            out.append(
                f"| {n} | {t.name} | {t.sync} | {bs._fmt(t.rate('creates'), ',.0f')} | "
                f"{bs._fmt(t.rate('updates'), ',.0f')} | {t.cpu_ms('creates')} | "
                f"{t.cpu_ms('updates')} | {t.maxrss_kib / 1024:,.0f} |"
            )
    out += [
        "",
        "## Ratios",
        "",
        "| round | pairing | creates | creates, turn pairs | updates | updates, turn pairs |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    summary: dict[str, list[tuple[float | None, float | None]]] = {}
    for n, tallies in enumerate(rounds, 1):
        peer = next((t for t in tallies if t.name == "django"), None)
        pairs = [(t, peer) for t in tallies if t is not peer and peer is not None]
        base = next((t for t in tallies if t.name == "helpkit (baseline)"), None)
        ours = next((t for t in tallies if t.name == "helpkit"), None)
        if base is not None and ours is not None:
            pairs.append((ours, base))
        for a, b in pairs:
            assert b is not None
            if a.sync != b.sync:
                continue
            name = f"{a.name} vs {b.name}"
            rates = [_over(a.rate(op), b.rate(op)) for op in ("creates", "updates")]
            summary.setdefault(name, []).append((rates[0], rates[1]))
            out.append(
                f"| {n} | {name} | {_times(rates[0])} | "
                f"{_spread(pair_ratios(a, b, 'creates'))} | {_times(rates[1])} | "
                f"{_spread(pair_ratios(a, b, 'updates'))} |"
            )
    if len(rounds) > 1:
        out += [
            "",
            f"Over the {len(rounds)} rounds (median, lowest-highest round):",
            "",
        ]
        for name, values in summary.items():
            parts = []
            for op, column in (("creates", 0), ("updates", 1)):
                known = [ratio for v in values if (ratio := v[column]) is not None]
                if known:
                    parts.append(
                        f"{op} {bs.median(known):.2f}x ({min(known):.2f}x-{max(known):.2f}x)"
                    )
            out.append(f"- {name}: {', '.join(parts) or '-'}")
    out += ["", "## Rows", ""]
    for n, tallies in enumerate(rounds, 1):
        for t in tallies:
            out.append(f"- round {n}, {t.label}: {t.counts}; helpkit source {t.revision}")
    versions = ", ".join(f"{d} {bs._version(d)}" for d in bp.PACKAGES)
    load = os.getloadavg()
    out += [
        "",
        "## Machine",
        "",
        f"- Total bench time {took / 60:,.1f} min; load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.2f}' for x in load)} at the end ({os.cpu_count()} logical CPUs; "
        "other jobs share the machine)",
        f"- Python {sys.version.split()[0]}; PostgreSQL {bp.server_version(bp.DSN)} "
        "(same machine, TCP)",
        f"- {platform.platform()}; CPU: {bs._cpu()}",
        f"- Packages: {versions}",
        "",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument(
        "--worker", nargs=4, metavar=("SYSTEM", "C", "U", "DSN"), help=argparse.SUPPRESS
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--creates", type=int, help="creates per side and round (default 2000)")
    parser.add_argument("--updates", type=int, help="updates per side and round (default 1000)")
    parser.add_argument("--chunk", type=int, help="commands per turn (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each with new workers")
    parser.add_argument(
        "--systems", default="helpkit,django", help="helpkit and/or django (default both)"
    )
    parser.add_argument("--baseline", help="a helpkit source tree run as a third side")
    parser.add_argument("--output", type=Path, help="Markdown file (default: results, not --quick)")
    args = parser.parse_args(argv)
    if args.worker:
        system, creates, updates, dsn = args.worker
        worker(system, int(creates), int(updates), dsn, args.quick)
        return
    missing = bp._missing()
    if missing:
        print(f"bench_postgres_interleaved.py skipped: {missing}", file=sys.stderr)
        return
    quick = args.quick
    creates = args.creates or (40 if quick else 2000)
    updates = args.updates if args.updates is not None else (20 if quick else 1000)
    chunk = args.chunk or (10 if quick else 100)
    systems = [s for s in args.systems.split(",") if s]
    sides = [(s, "") for s in systems]
    if args.baseline:
        sides.append(("helpkit (baseline)", args.baseline))
    start = time.perf_counter()
    rounds = []
    for n in range(args.rounds):
        print(f"-- round {n + 1}/{args.rounds}", file=sys.stderr, flush=True)
        rounds.append(run_round(sides, creates, updates, chunk, bp.DSN, quick))
    command = "python bench/bench_postgres_interleaved.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    text = render(rounds, chunk, command, time.perf_counter() - start)
    bs.publish(text, args.output or (None if quick else RESULTS))


if __name__ == "__main__":
    main()
