"""Intake's CPU per inbound message as a desk's staff grows.

Run ``python bench/bench_intake_agents.py`` (``--agents 0,200,1000``, ``--messages N``,
``--rounds N``, ``--before PATH`` for another ``src`` tree run side by side, the order
alternating round by round). Each job is a fresh worker process: a fresh SQLite desk
(``synchronous=normal``) with that many agents (each with an address), then ``desk.receive`` of
new requests from 300 customers (200 untimed to warm up, then ``--messages`` timed); it prints
the CPU (``time.process_time``) per message. Intake looks up the agents among a message's
addresses (the sender's and the CC'd): a store that finds agents by address
(``Capability.AGENT_EMAILS``) reads those only, where a store without it lists every agent for
every message. Nothing is asserted: bench/results/email.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

WARMUP = 200


def worker(agents: int, messages: int) -> float:
    """CPU ms per message received by a desk with ``agents`` agents."""
    from helpkit import Helpdesk
    from helpkit.ports import InboundMessage

    with tempfile.TemporaryDirectory() as scratch:
        desk = Helpdesk(
            f"sqlite:///{scratch}/desk.db?synchronous=normal",
            config={"intake": {"addresses": ["support@desk.example"]}},
            entry_points=False,
        )
        desk.add_group("l1", "L1", tier=1)
        for a in range(agents):
            desk.add_agent(f"a{a:05d}", f"Agent {a}", email=f"a{a}@desk.example", groups=["l1"])
        at = datetime(2026, 3, 2, 9, tzinfo=UTC)

        def receive(first: int, last: int) -> None:
            for i in range(first, last):
                desk.receive(
                    InboundMessage(
                        channel="email",
                        sender_address=f"c{i % 300}@customer.example",
                        sender_name=None,
                        subject=f"Help {i}",
                        body="It jams.",
                        received_at=at,
                        external_id=f"<m{i}@customer.example>",
                    )
                )

        receive(0, WARMUP)
        start = time.process_time()
        receive(WARMUP, WARMUP + messages)
        spent = time.process_time() - start
        desk.shutdown()
    return spent / messages * 1000


def run(src: str | None, agents: int, messages: int) -> float:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(agents), "--messages", str(messages)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="0,200,1000")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="another src tree, run side by side")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.messages)))
        return
    sources: list[tuple[str, str | None]] = [("this helpkit", None)]
    if args.before:
        sources.append((f"before ({args.before})", str(Path(args.before).resolve())))
    sizes = [int(n) for n in args.agents.split(",") if n.strip()]
    spent: dict[tuple[str, int], list[float]] = {}
    for r in range(args.rounds):
        order = sources if r % 2 == 0 else sources[::-1]
        for n in sizes:
            for name, src in order:
                spent.setdefault((name, n), []).append(run(src, n, args.messages))
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")
    print("| helpkit | agents | CPU ms per message, rounds | median |")
    print("|---|---:|---|---:|")
    for n in sizes:
        for name, _ in sources:
            values = spent[(name, n)]
            rounds = " / ".join(f"{v:.3f}" for v in values)
            print(f"| {name} | {n:,} | {rounds} | {median(values):.3f} |")


if __name__ == "__main__":
    main()
