"""CPU of the PostgreSQL store's commits alone: the store's client side and the server's.

Run ``python bench/bench_postgres_commit.py --baseline DIR`` (the ``postgres`` extra; the
server as bench/bench_postgres.py finds it). bench/bench_postgres.py times whole commands
(the desk, its pipeline and the store); this one isolates what a store change moves:

1. **capture**: bench/bench_postgres.py's creates and replies (``open_ticket(body=...)`` and
   ``reply(status="pending")`` by agents, with its inputs) run once through a desk on a fresh
   database, and every ``commit_planned`` call the desk makes is recorded with the kept
   parties it was guarded by (the ticket changes in the codec's JSON form);
2. **replay**: each worker process opens a ``PostgresStore`` on a schema of its own in one
   database, saves the same agents and contacts, and makes the same calls (under the same
   guards: ``guard_parties`` / ``guard_agent``), timing the creates and then the replies:
   its own CPU time (``time.process_time``: the store's client side, psycopg and the
   kernel's share of the round trips) and that of the server backends of the database
   (bench/bench_postgres.py's ``CpuMeter``), per call.

With ``--baseline DIR`` (a ``git archive COMMIT src`` tree) every round replays with the
installed helpkit and with DIR's, alternating which goes first; the capture is made with
the installed helpkit (the domain's changes are the same for both). Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_postgres as bp
import bench_sqlite as bs

WARM = 30  # calls replayed before the creates are timed (connections, prepared statements)


def capture(url: str, creates: int, path: Path) -> None:
    """Record the desk's ``commit_planned`` calls for ``creates`` creates and half as many
    replies (bench_postgres.py's) into ``path``."""
    from helpkit import Actor, Helpdesk
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
    for g in range(bs.GROUPS):
        desk.add_group(f"g{g:02d}", f"Group {g}", tier=1 + g % 3)
    for a in range(bs.AGENTS):
        desk.add_agent(
            f"a{a:03d}", f"Agent {a}", email=f"a{a}@help.example", groups=[f"g{a % bs.GROUPS:02d}"]
        )
    contacts = [
        desk.create_contact(f"Contact {c}", emails=[f"c{c}@customer.example"]).id
        for c in range(bs.CONTACTS)
    ]
    calls.clear()
    ids = []
    for s in bs.specs(creates):
        ticket = desk.open_ticket(
            Actor.agent(f"a{s.agent:03d}"),
            requester=contacts[s.contact],
            subject=s.subject,
            body=s.body,
            impact=s.impact,
            urgency=s.urgency,
            group=f"g{s.group:02d}",
            assignee=f"a{s.agent:03d}",
        )
        ids.append((ticket.id, s.agent))
    opened = len(calls)
    for i, body in bs.update_plan(creates, creates // 2):
        desk.reply(ids[i][0], Actor.agent(f"a{ids[i][1]:03d}"), body, status="pending")
    record = {
        "agents": [encode_agent(a) for a in store.list_agents()],
        "contacts": [encode_contact(store.get_contact(c)) for c in dict.fromkeys(contacts)],
        "creates": calls[:opened],
        "updates": calls[opened:],
    }
    desk.shutdown()
    path.write_text(json.dumps(record), encoding="utf-8")


def replay(url: str, schema: str, path: Path) -> dict[str, list[float | None]]:
    """Replay the calls recorded in ``path`` on a new ``schema``: CPU ms per create and per
    update, [client, server]."""
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

    def calls(kind: str) -> list[tuple[Any, list[TicketChange], list[str | None]]]:
        out = []
        for call in record[kind]:
            changes = [
                TicketChange(decode_ticket(t), tuple(map(event_from_dict, es)), seq)
                for t, es, seq in call["changes"]
            ]
            out.append((call["guard"], changes, call["states"]))
        return out

    def run(todo: list[tuple[Any, list[TicketChange], list[str | None]]]) -> None:
        for guard, changes, states in todo:
            if guard is None:
                block: Any = nullcontext()
            elif guard[1] is None:
                block = store.guard_agent(agents[guard[0]])
            else:
                block = store.guard_parties(agents[guard[0]], contacts[guard[1]])
            with block:
                store.commit_planned(changes, states)

    creates, updates = calls("creates"), calls("updates")  # decoded before the timing
    run(creates[:WARM])
    meter = bp.CpuMeter(url)
    run(creates[WARM:])
    create = meter.lap()
    run(updates)
    update = meter.lap()
    meter.close()
    store.close()

    def per(spent: list[float | None], n: int) -> list[float | None]:
        return [None if s is None else s * 1000 / n for s in spent]

    return {"create": per(create, len(creates) - WARM), "update": per(update, len(updates))}


def _median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.3f}" if known else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument(
        "--replay", nargs=3, metavar=("URL", "SCHEMA", "FILE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--creates", type=int, default=2000, help="creates (and half as many replies)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="replays of each source")
    parser.add_argument(
        "--baseline", help="a helpkit source tree (holding src/helpkit) to replay too"
    )
    args = parser.parse_args()
    if args.replay:
        url, schema, file = args.replay
        print(json.dumps(replay(url, schema, Path(file))))
        return
    sources = {"after": ""} | ({"before": args.baseline} if args.baseline else {})
    found: dict[str, dict[str, list[list[float | None]]]] = {
        name: {"create": [], "update": []} for name in sources
    }
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp, bp.fresh_database(bp.DSN, "bench_commit") as url:
        path = Path(tmp) / "calls.json"
        capture(url, args.creates, path)
        for round_ in range(args.rounds):
            order = list(sources) if round_ % 2 == 0 else list(sources)[::-1]
            for name in order:
                env = dict(os.environ)
                if sources[name]:
                    env["PYTHONPATH"] = os.pathsep.join(
                        [str(Path(sources[name]) / "src"), env.get("PYTHONPATH", "")]
                    )
                done = subprocess.run(
                    [sys.executable, __file__, "--replay", url, f"r{round_}_{name}", str(path)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                spent = json.loads(done.stdout.strip().splitlines()[-1])
                for kind in ("create", "update"):
                    found[name][kind].append(spent[kind])
                print(f"round {round_ + 1} {name}: {spent}", file=sys.stderr, flush=True)
    loads.append(os.getloadavg()[0])
    print(
        f"{args.creates - WARM} creates and {args.creates // 2} replies replayed per row, "
        f"{args.rounds} rounds; 1-minute load {loads[0]:.1f} at start, {loads[1]:.1f} at end; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
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
        for round_, (c, u) in enumerate(
            zip(found[name]["create"], found[name]["update"], strict=True), 1
        ):
            print(f"| {name} | {round_} | {row(c)} | {row(u)} |")
    for name in sources:
        medians = []
        for kind in ("create", "update"):
            spent = found[name][kind]
            both = [None if None in s else sum(v for v in s if v is not None) for s in spent]
            medians.append(
                " / ".join(_median([s[i] for s in spent]) for i in (0, 1)) + f" / {_median(both)}"
            )
        print(f"| {name} | median | {medians[0]} | {medians[1]} |")


if __name__ == "__main__":
    main()
