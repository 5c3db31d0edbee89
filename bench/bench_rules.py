"""What rules cost: a command's overhead with 100 triggers, and the automation sweep per due
ticket beside the SLA sweep.

Run ``python bench/bench_rules.py`` (or ``nox -s bench -- bench/bench_rules.py``).

1. **Trigger overhead.** The same commands (internal notes on 200 tickets, round robin) on a
   desk without triggers and on one with 100 triggers of every kind (ticket fields, tags,
   custom fields, requester and organization attributes, the command's events, changes, time
   since an instant; a realistic configuration in which a few fire now and then), side by
   side: rounds of 500 commands alternate between the two desks so both see the same machine.
   Memory store (the rules' own cost) and SQLite with ``synchronous=NORMAL``. Per command:
   median over the rounds of CPU time (``time.process_time``) and wall time. Goal (#14): at
   most 0.1 ms of overhead per command.
2. **Automation sweep.** For each size (100k open tickets by default; ``--sizes 100000
   1000000``), tickets bulk-loaded straight through the store (setup, not measured), 1% of
   them pending for more than two days and so due for a reminder automation (their
   ``next_check`` set as the pipeline sets it), then one ``Helpdesk.sweep`` at the same
   durability as a command; beside it, in the same run, bench/bench_sweep.py's SLA sweep of the
   same size and share of due tickets (its default batches, timer states kept). Per due
   ticket, both. Goal (#14): the same order as the SLA sweep.

Writes ``bench/results/rules.md`` and prints the same Markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from helpkit import Actor, Helpdesk, Priority
from helpkit.events import TicketOpened
from helpkit.lifecycle import apply
from helpkit.ports import TicketChange
from helpkit.priority import Impact, Urgency
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import StatusCategory

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_sweep

RESULTS = Path(__file__).resolve().parent / "results" / "rules.md"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
ANA = Actor.agent("ana")
TICKETS = 200
ROUND = 500
BATCH = 2000


def hundred_triggers() -> list[dict[str, Any]]:
    """100 triggers of every kind; on the bench's notes a few fire now and then."""
    triggers: list[dict[str, Any]] = []
    for i in range(100):
        kind = i % 10
        when: Any
        if kind == 0:
            when = {
                "all": [{"field": "priority", "le": 1}, {"field": "tags", "has_any": [f"t{i}"]}]
            }
        elif kind == 1:
            when = {"field": "status", "changed_to": "solved"}
        elif kind == 2:
            when = {
                "all": [
                    {"field": "requester.vip", "is": True},
                    {"field": "event", "has_any": ["ticket_opened"]},
                ]
            }
        elif kind == 3:
            when = {"field": "organization.region", "is": f"region-{i}"}
        elif kind == 4:
            when = {
                "all": [
                    {"field": "comment.public", "is": True},
                    {"field": "comment.author", "is": "contact"},
                ]
            }
        elif kind == 5:
            when = {"field": "fields.product", "in": ["mobile", "desktop"]}
        elif kind == 6:
            when = {
                "any": [
                    {"field": "subject", "contains": f"outage {i}"},
                    {"field": "tags", "added": [f"x{i}"]},
                ]
            }
        elif kind == 7:
            when = {"not": {"field": "channel", "in": ["web", "email", "chat", "phone"]}}
        elif kind == 8:
            when = {
                "all": [
                    {"field": "internal_notes", "ge": 1000 + i},
                    {"since": "created", "at_least": "30d"},
                ]
            }
        else:
            # Fires on every 50th note of a ticket: now and then.
            when = {
                "all": [
                    {"field": "internal_notes", "is": 50 + i},
                    {"field": "event", "has_any": ["comment_added"]},
                ]
            }
        action: dict[str, Any] = {"add_tags": [f"rule{i}"]}
        triggers.append({"name": f"rule-{i}", "when": when, "actions": [action]})
    return triggers


def _desk(store: str, triggers: list[dict[str, Any]]) -> Helpdesk:
    config = {
        "fields": {"product": {"kind": "choice", "choices": ["mobile", "desktop", "web"]}},
        "triggers": triggers,
    }
    desk = Helpdesk(store, config=config, clock=FrozenClock(START), entry_points=False)
    desk.add_group("l1", "Service desk")
    desk.add_agent("ana", "Ana", groups=["l1"])
    return desk


def trigger_overhead(kind: str, folder: str, rounds: int) -> dict[str, Any]:
    """Median CPU and wall time per note without triggers and with 100."""
    desks = {}
    tickets: dict[str, list[str]] = {}
    for label, triggers in (("none", []), ("100 triggers", hundred_triggers())):
        store = "memory://"
        if kind == "sqlite":
            path = os.path.join(folder, f"rules-{label.replace(' ', '-')}.db")
            store = SqliteStore(path, synchronous="NORMAL")  # type: ignore[assignment]
        desk = _desk(store, triggers)
        org = desk.create_organization("Client", domains=["client.example"], region="EU")
        contact = desk.create_contact("Carla", emails=["carla@client.example"], organization=org.id)
        tickets[label] = [
            desk.open_ticket(
                requester=contact,
                subject=f"Request {n}",
                body="Hello",
                actor=Actor.contact(contact.id),
                custom_fields={"product": "web"},
            ).id
            for n in range(TICKETS)
        ]
        desks[label] = desk
    cpu: dict[str, list[float]] = {label: [] for label in desks}
    wall: dict[str, list[float]] = {label: [] for label in desks}
    for _ in range(rounds):
        for label, desk in desks.items():
            ids = tickets[label]
            c0, w0 = time.process_time(), time.perf_counter()
            for n in range(ROUND):
                desk.note(ids[n % TICKETS], ANA, "looked at it")
            cpu[label].append((time.process_time() - c0) / ROUND * 1000)
            wall[label].append((time.perf_counter() - w0) / ROUND * 1000)
    fired = sum(
        1
        for e in desks["100 triggers"].history(tickets["100 triggers"][0])
        if str(e.actor).startswith("system:trigger:")
    )
    for desk in desks.values():
        desk.shutdown()
    none_cpu, with_cpu = statistics.median(cpu["none"]), statistics.median(cpu["100 triggers"])
    return {
        "store": "memory" if kind == "memory" else "SQLite, WAL + NORMAL",
        "none_cpu": none_cpu,
        "with_cpu": with_cpu,
        "none_wall": statistics.median(wall["none"]),
        "with_wall": statistics.median(wall["100 triggers"]),
        "overhead_cpu": with_cpu - none_cpu,
        "fired_on_first_ticket": fired,
    }


REMIND = {
    "automations": [
        {
            "name": "remind",
            "when": {
                "all": [
                    {"field": "category", "is": "pending"},
                    {"since": "status", "at_least": "2d"},
                ]
            },
            "actions": [
                {"notify": ["requester"], "subject": "Still there?", "body": "We wait for you."}
            ],
        }
    ]
}


def load_pending(store: SqliteStore, total: int, due: int, now: datetime) -> None:
    """``total`` pending tickets; ``due`` of them entered pending more than two days ago."""
    actor = Actor.system("bench")
    step = total // due if due else total + 1
    changes: list[TicketChange] = []
    for index in range(total):
        late = index % step == 0 and index // step < due
        at = now - (timedelta(days=2, minutes=30) if late else timedelta(hours=1))
        event = TicketOpened(
            ticket_id=f"t{index:07d}",
            seq=1,
            at=at,
            actor=actor,
            number=0,
            subject="bench",
            requester_id="c1",
            organization_id=None,
            status="pending",
            category=StatusCategory.PENDING,
            impact=Impact.MEDIUM,
            urgency=Urgency.MEDIUM,
            priority=Priority.P3,
            channel="web",
            group_id="l1",
        )
        state = attrs.evolve(apply(None, event), next_check=at + timedelta(days=2))
        changes.append(TicketChange(state, (event,), 0))
        if len(changes) == BATCH:
            store.commit(changes)
            changes = []
    if changes:
        store.commit(changes)


def automation_sweep(total: int, folder: str) -> dict[str, Any]:
    """One sweep firing the reminder on 1% of ``total`` pending tickets, and the SLA sweep of
    bench_sweep on the same size and share, side by side."""
    now = bench_sweep.NOW
    due = total // 100
    path = os.path.join(folder, f"auto-{total}.db")
    store = SqliteStore(path, synchronous="NORMAL")
    started = time.perf_counter()
    load_pending(store, total, due, now)
    loaded = time.perf_counter() - started
    desk = Helpdesk(store, config=REMIND, clock=FrozenClock(now), entry_points=False)
    desk.create_contact("Carla", emails=["carla@client.example"])  # id differs; not needed
    cpu0, wall0 = time.process_time(), time.perf_counter()
    report = desk.sweep(now)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    assert report.examined == due, report
    again = desk.sweep(now)
    assert again.examined == 0, again
    desk.shutdown()
    os.remove(path)
    sla = [
        row for row in bench_sweep.run(total, 0.01, folder) if row["batch"] == 500 and row["kept"]
    ]
    return {
        "open": total,
        "due": due,
        "load_s": loaded,
        "auto_per_due_ms": wall / due * 1000,
        "auto_cpu_per_due_ms": cpu / due * 1000,
        "sla_per_due_ms": sla[0]["per_due_ms"],
    }


def _markdown(overheads: list[dict[str, Any]], sweeps: list[dict[str, Any]], rounds: int) -> str:
    load = os.getloadavg()
    lines = [
        "# Rules: trigger overhead and the automation sweep",
        "",
        "`python bench/bench_rules.py` — see its docstring for the method.",
        "",
        "## A command with 100 triggers",
        "",
        f"Internal notes on {TICKETS} tickets, {rounds} rounds of {ROUND} alternating between a"
        " desk without triggers and one with 100 (bench_rules.hundred_triggers); median per"
        " command over the rounds.",
        "",
        "| store | CPU ms, none | CPU ms, 100 triggers | overhead CPU ms | wall ms, none"
        " | wall ms, 100 triggers |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in overheads:
        lines.append(
            f"| {row['store']} | {row['none_cpu']:.3f} | {row['with_cpu']:.3f} | "
            f"**{row['overhead_cpu']:.3f}** | {row['none_wall']:.3f} | {row['with_wall']:.3f} |"
        )
    met = all(row["overhead_cpu"] <= 0.1 for row in overheads)
    lines += [
        "",
        f"Goal: at most 0.1 ms of overhead per command: **{'met' if met else 'not met'}**.",
        "",
        "## The automation sweep beside the SLA sweep",
        "",
        "One sweep firing a reminder automation on 1% of the open tickets (pending for more than"
        " two days), and bench_sweep.py's SLA sweep (75% warnings, default batches, timer states"
        " kept) of the same size and share, in the same run, SQLite WAL + NORMAL.",
        "",
        "| open tickets | due | automation ms per due ticket (CPU) | SLA sweep ms per due ticket |",
        "|---:|---:|---:|---:|",
    ]
    for row in sweeps:
        lines.append(
            f"| {row['open']:,} | {row['due']:,} | {row['auto_per_due_ms']:.3f}"
            f" ({row['auto_cpu_per_due_ms']:.3f}) | {row['sla_per_due_ms']:.3f} |"
        )
    lines += [
        "",
        f"- Python {sys.version.split()[0]}; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 minutes) on "
        f"{os.cpu_count()} logical CPUs; a busy machine inflates wall times, CPU figures hold up"
        " better.",
        f"- run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no results file")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    sizes = [2_000] if args.quick else args.sizes
    with tempfile.TemporaryDirectory() as folder:
        overheads = [trigger_overhead(kind, folder, rounds) for kind in ("memory", "sqlite")]
        sweeps = [automation_sweep(size, folder) for size in sizes]
    text = _markdown(overheads, sweeps, rounds)
    print(text)
    if not args.quick:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
