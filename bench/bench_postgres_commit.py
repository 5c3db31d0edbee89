"""CPU of the PostgreSQL store's commits alone: the store's client side and the server's.

Run ``python bench/bench_postgres_commit.py --baseline DIR`` (the ``postgres`` extra; the
server as bench/bench_postgres.py finds it). bench/bench_postgres.py times whole commands
(the desk, its pipeline and the store); this one isolates what a store change moves:

1. **capture**: bench/bench_postgres.py's creates and replies (``open_ticket(body=...)`` and
   ``reply(status="pending")`` by agents, with its inputs) run once through a desk on a fresh
   database, and every ``commit_planned`` call the desk makes is recorded with the kept
   parties it was guarded by (the ticket changes in the codec's JSON form);
2. **replay**: a worker process per source opens a ``PostgresStore`` on a new schema of a
   database of its own, saves the same agents and contacts, replays the first calls untimed,
   then makes the same calls (under the same guards: ``guard_parties`` / ``guard_agent``),
   timing the creates and the replies apart: its own CPU time (``time.process_time``: the
   store's client side, psycopg and the kernel's share of the round trips) and that of the
   server backends of its database (bench/bench_postgres.py's ``CpuMeter``), per call.

With ``--baseline DIR`` (a ``git archive COMMIT src`` tree) the installed helpkit and DIR's
replay side by side, taking turns of ``--slice`` calls (which goes first alternates), so a
change of the machine's load meets both alike; the capture is made with the installed
helpkit (the changes the domain makes are the same for both). Prints Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_postgres as bp
import bench_sqlite as bs

WARM = 30  # calls replayed before the creates are timed (connections, prepared statements)


def capture(url: str, creates: int, path: Path) -> None:
    """Record the desk's ``commit_planned`` calls for ``creates`` creates and half as many
    replies (bench_postgres.py's) into ``path``."""
    from helpkit import Helpdesk
    from helpkit._codec import encoder
    from helpkit.events import event_to_dict
    from helpkit.people import Agent, Contact
    from helpkit.stores.postgres.store import PostgresStore
    from helpkit.tickets import Ticket

    encode_ticket, encode_agent, encode_contact = encoder(Ticket), encoder(Agent), encoder(Contact)
    calls: list[dict[str, Any]] = []

    class Recording(PostgresStore):
        """Records each commit_planned call and the guard it was made under."""

        guard: list[str | None] | None = None

        def guard_agent(self, agent: Agent) -> Any:
            self.guard = [agent.id, None]
            return super().guard_agent(agent)

        def guard_parties(self, agent: Agent, contact: Contact) -> Any:
            self.guard = [agent.id, contact.id]
            return super().guard_parties(agent, contact)

        def commit_planned(self, changes: Any, states: Any) -> Any:
            for change in changes:
                if change.receipt is not None or change.routing or change.contacts:
                    raise SystemExit("a change the capture does not record")
            calls.append(
                {
                    "guard": self.guard,
                    "changes": [
                        [
                            encode_ticket(c.ticket),
                            [event_to_dict(e) for e in c.events],
                            c.expected_seq,
                        ]
                        for c in changes
                    ],
                    "states": list(states),
                }
            )
            self.guard = None
            return super().commit_planned(changes, states)

    store = Recording(url, schema="helpkit", pool_max=4)
    desk = Helpdesk(store, entry_points=False)
    contacts = bs.staffed(desk)
    calls.clear()
    ids = []
    for s in bs.specs(creates):
        ids.append((bs.open_spec(desk, contacts, s).id, s.agent))
    opened = len(calls)
    for i, body in bs.update_plan(creates, creates // 2):
        bs.helpkit_update(desk, ids[i][0], ids[i][1], body)
    record = {
        "agents": [encode_agent(a) for a in store.list_agents()],
        "contacts": [encode_contact(store.get_contact(c)) for c in dict.fromkeys(contacts)],
        "creates": calls[:opened],
        "updates": calls[opened:],
    }
    desk.shutdown()
    path.write_text(json.dumps(record), encoding="utf-8")


def replay(
    url: str, schema: str, path: Path
) -> Generator[dict[str, list[float | None]], int, None]:
    """Replay the calls recorded in ``path`` on a new ``schema``, a slice at a time: each
    ``send(n)`` replays the next ``n`` calls (the creates, then the replies) and gives the CPU
    seconds they took, ``{"create": [client, server], "update": [...]}``."""
    from contextlib import nullcontext

    from helpkit._codec import decoder
    from helpkit.events import event_from_dict
    from helpkit.people import Agent, Contact
    from helpkit.ports import TicketChange
    from helpkit.stores.postgres.store import PostgresStore
    from helpkit.tickets import Ticket

    record = json.loads(path.read_text(encoding="utf-8"))
    decode_ticket, decode_agent, decode_contact = decoder(Ticket), decoder(Agent), decoder(Contact)
    store = PostgresStore(url, schema=schema, pool_max=4)
    agents = {a.id: a for a in map(decode_agent, record["agents"])}
    contacts = {c.id: c for c in map(decode_contact, record["contacts"])}
    for agent in agents.values():
        store.save_agent(agent)
    for contact in contacts.values():
        store.save_contact(contact)
    todo = [  # decoded before any timing
        (
            kind,
            call["guard"],
            [
                TicketChange(decode_ticket(t), tuple(map(event_from_dict, es)), seq)
                for t, es, seq in call["changes"]
            ],
            call["states"],
        )
        for kind in ("creates", "updates")
        for call in record[kind]
    ]

    def run(kind: str, guard: list[str | None] | None, changes: Any, states: Any) -> None:
        if guard is None:
            block: Any = nullcontext()
        elif guard[1] is None:
            block = store.guard_agent(agents[str(guard[0])])
        else:
            block = store.guard_parties(agents[str(guard[0])], contacts[guard[1]])
        with block:
            store.commit_planned(changes, states)

    for call in todo[:WARM]:
        run(*call)
    meter = bp.CpuMeter(url)
    meter.lap()
    spent: dict[str, list[float | None]] = {"create": [0.0, 0.0], "update": [0.0, 0.0]}
    at = WARM
    try:
        while at < len(todo):
            n = yield spent
            spent = {"create": [0.0, 0.0], "update": [0.0, 0.0]}
            for kind in ("creates", "updates"):
                # A slice's calls of one kind, timed together.
                end = at
                while end < min(at + n, len(todo)) and todo[end][0] == kind:
                    end += 1
                if end == at:
                    continue
                for call in todo[at:end]:
                    run(*call)
                lap = meter.lap()
                total = spent[kind[:-1]]
                for i in (0, 1):
                    held, new = total[i], lap[i]
                    total[i] = None if held is None or new is None else held + new
                at = end
        yield spent
    finally:
        meter.close()
        store.close()


def _worker(url: str, schema: str, path: str) -> None:
    """A replaying process: a line ``n`` on stdin replays the next ``n`` calls, and the CPU
    they took is printed as a JSON line; ``ready`` is printed once set up."""
    slices = replay(url, schema, Path(path))
    next(slices)
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            spent = slices.send(int(line))
        except StopIteration:
            spent = {"create": [0.0, 0.0], "update": [0.0, 0.0]}
        print(json.dumps(spent), flush=True)


def _median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.3f}" if known else "-"


def _spawn(source: str, url: str, schema: str, path: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(source) / "src"), env.get("PYTHONPATH", "")])
    worker = subprocess.Popen(
        [sys.executable, __file__, "--replay", url, schema, str(path)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None
    if worker.stdout.readline().strip() != "ready":
        raise SystemExit(f"the replay of {source or 'the installed helpkit'} did not start")
    return worker


def _ask(worker: subprocess.Popen[str], n: int) -> dict[str, list[float | None]]:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(f"{n}\n")
    worker.stdin.flush()
    spent: dict[str, list[float | None]] = json.loads(worker.stdout.readline())
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument(
        "--replay", nargs=3, metavar=("URL", "SCHEMA", "FILE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--creates", type=int, default=2000, help="creates (and half as many replies)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="replays of each source")
    parser.add_argument("--slice", type=int, default=50, help="calls replayed in one turn")
    parser.add_argument(
        "--baseline", help="a helpkit source tree (holding src/helpkit) to replay too"
    )
    args = parser.parse_args()
    if args.replay:
        _worker(*args.replay)
        return
    missing = bp._missing()
    if missing:  # as bench_postgres.py: run_all.py goes on with the other benches
        print(f"bench_postgres_commit.py skipped: {missing}", file=sys.stderr)
        return
    sources = {"after": ""} | ({"before": args.baseline} if args.baseline else {})
    per_call: dict[str, dict[str, list[list[float | None]]]] = {
        name: {"create": [], "update": []} for name in sources
    }
    loads = [os.getloadavg()[0]]
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        path = Path(tmp) / "calls.json"
        with bp.fresh_database(bp.DSN, "bench_commit") as url:
            capture(url, args.creates, path)
        # A database per source: each worker's meter sees only its own server backends.
        urls = {
            name: stack.enter_context(bp.fresh_database(bp.DSN, f"bench_commit_{name}"))
            for name in sources
        }
        record = json.loads(path.read_text(encoding="utf-8"))
        counts = {"create": len(record["creates"]) - WARM, "update": len(record["updates"])}
        turns = -(-(counts["create"] + counts["update"]) // args.slice) + 1
        for round_ in range(args.rounds):
            # Each source in its database (a new schema each round), a slice of calls at a
            # time, taking turns (which goes first alternates): both meet the same machine.
            workers = {
                name: _spawn(sources[name], urls[name], f"r{round_}", path) for name in sources
            }
            totals: dict[str, dict[str, list[float | None]]] = {
                name: {"create": [0.0, 0.0], "update": [0.0, 0.0]} for name in sources
            }
            for turn in range(turns):
                order = list(sources) if (turn + round_) % 2 == 0 else list(sources)[::-1]
                for name in order:
                    for kind, spent in _ask(workers[name], args.slice).items():
                        for i in (0, 1):
                            held, new = totals[name][kind][i], spent[i]
                            totals[name][kind][i] = (
                                None if held is None or new is None else held + new
                            )
            for name, worker in workers.items():
                assert worker.stdin is not None
                worker.stdin.close()
                worker.wait()
                for kind in ("create", "update"):
                    per_call[name][kind].append(
                        [None if t is None else t * 1000 / counts[kind] for t in totals[name][kind]]
                    )
                print(f"round {round_ + 1} {name}: {per_call[name]}", file=sys.stderr, flush=True)
    loads.append(os.getloadavg()[0])
    print(
        f"{counts['create']} creates and {counts['update']} replies replayed per row, in turns "
        f"of {args.slice} calls, {args.rounds} rounds; 1-minute load {loads[0]:.1f} at start, "
        f"{loads[1]:.1f} at end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    print(
        "| source | round | CPU ms per create: client / server / both "
        "| CPU ms per update: client / server / both |"
    )
    print("|---|---:|---:|---:|")

    def row(spent: list[float | None]) -> str:
        both = None if None in spent else sum(v for v in spent if v is not None)
        return " / ".join("-" if v is None else f"{v:.3f}" for v in (*spent, both))

    for name in sources:
        rounds = zip(per_call[name]["create"], per_call[name]["update"], strict=True)
        for round_, (c, u) in enumerate(rounds, 1):
            print(f"| {name} | {round_} | {row(c)} | {row(u)} |")
    for name in sources:
        medians = []
        for kind in ("create", "update"):
            found = per_call[name][kind]
            both = [None if None in s else sum(v for v in s if v is not None) for s in found]
            medians.append(
                " / ".join(_median([s[i] for s in found]) for i in (0, 1)) + f" / {_median(both)}"
            )
        print(f"| {name} | median | {medians[0]} | {medians[1]} |")


if __name__ == "__main__":
    main()
