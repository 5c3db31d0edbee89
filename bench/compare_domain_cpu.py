"""CPU per create and per reply, this tree's ``src`` against another's, side by side.

Run::

    git -C . archive main src | tar -x -C /tmp/domain-base   # (mkdir -p /tmp/domain-base)
    python bench/compare_domain_cpu.py /tmp/domain-base/src --rounds 7

The commands are the PostgreSQL bench's (``bench/bench_postgres.py``): a create is
``bench_sqlite.open_spec`` (``open_ticket`` as an agent with a body, impact, urgency, a group
and that agent as assignee), a reply ``desk.reply(id, Actor.agent(...), body,
status="pending")``. They run on an SQLite store in a file on ``/dev/shm`` when there is one
(``synchronous=NORMAL``: no disk's sync rate in the figures; ``checkpoints=inline``: no
checkpointer thread's CPU landing in a random round), the desk set up as
``bench_sqlite.staffed`` does. Each round runs one fresh worker process per tree (its
``PYTHONPATH`` the tree's ``src``), alternating which goes first; a worker times
``--count`` creates then ``--count`` replies (after ``--warmup`` untimed ones each) with
``time.process_time()``, then the same again with every public method of the store wrapped
to add up its own CPU (outermost calls only): the part outside the store (the domain and the
pipeline: what differs between the trees when only those changed) is the second run's CPU
less the store's. Prints each round and the medians of the rounds, in ms of CPU per command.
Only CPU is measured: on a shared machine alternate and read the medians.
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

HERE = Path(__file__).resolve().parent


def _wrap_store(store: Any, spent: list[float]) -> None:
    """Wrap ``store``'s public methods so that ``spent[0]`` adds up their CPU seconds (a call
    made from inside another one is counted with it)."""
    depth = [0]
    clock = time.process_time
    for name in dir(type(store)):
        if name.startswith("_"):
            continue
        method = getattr(store, name, None)
        if not callable(method):
            continue

        def wrapped(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            if depth[0]:
                return _method(*args, **kwargs)
            depth[0] = 1
            started = clock()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[0] += clock() - started
                depth[0] = 0

        setattr(store, name, wrapped)


def worker(count: int, warmup: int) -> dict[str, float]:
    """In this process (the tree on ``sys.path``): ms of CPU per create and per reply, and
    their parts outside the store."""
    sys.path.insert(0, str(HERE))
    import bench_sqlite as bs

    from helpkit import Actor, Helpdesk

    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        desk = Helpdesk(
            f"sqlite:///{folder}/cpu.db?synchronous=normal&checkpoints=inline", entry_points=False
        )
        contacts = bs.staffed(desk)
        specs = list(bs.specs(2 * (warmup + count)))
        ids: list[str] = []
        agents: list[str] = []

        def create(part: list[Any]) -> float:
            started = time.process_time()
            for s in part:
                ids.append(bs.open_spec(desk, contacts, s).id)
                agents.append(f"a{s.agent:03d}")
            return time.process_time() - started

        def reply(part: range) -> float:
            started = time.process_time()
            for i in part:
                desk.reply(ids[i], Actor.agent(agents[i]), f"Update {i}: on it.", status="pending")
            return time.process_time() - started

        n = warmup + count
        create(specs[:warmup])
        created = create(specs[warmup:n])
        reply(range(warmup))
        replied = reply(range(warmup, n))
        # Again, with the store's own CPU added up.
        spent = [0.0]
        _wrap_store(desk.store, spent)
        create(specs[n : n + warmup])
        spent[0] = 0.0
        created_wrapped = create(specs[n + warmup :])
        store_create = spent[0]
        reply(range(n, n + warmup))
        spent[0] = 0.0
        replied_wrapped = reply(range(n + warmup, 2 * n))
        store_reply = spent[0]
        desk.shutdown()
    ms = 1000 / count
    return {
        "create": created * ms,
        "reply": replied * ms,
        "create_domain": (created_wrapped - store_create) * ms,
        "reply_domain": (replied_wrapped - store_reply) * ms,
    }


def _run(src: str, count: int, warmup: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    command = [sys.executable, __file__, "--worker", str(count), str(warmup)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


KEYS = ("create", "reply", "create_domain", "reply_domain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("before", nargs="?", help="the src folder of the code before")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=3000, help="commands timed per kind")
    parser.add_argument("--warmup", type=int, default=300, help="untimed commands first")
    parser.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0
    if not args.before:
        parser.error("give the src folder of the code before")
    trees = [("after", str(HERE.parent / "src")), ("before", str(Path(args.before).resolve()))]
    samples: dict[tuple[str, str], list[float]] = {}
    print("| round | tree | " + " | ".join(KEYS) + " |")
    print("|---:|---|" + "---:|" * len(KEYS))
    for round_ in range(1, args.rounds + 1):
        for name, src in trees if round_ % 2 else trees[::-1]:
            got = _run(src, args.count, args.warmup)
            for key in KEYS:
                samples.setdefault((name, key), []).append(got[key])
            print(f"| {round_} | {name} | " + " | ".join(f"{got[k]:.4f}" for k in KEYS) + " |")
    print("\nMedians of the rounds (ms of CPU per command; *_domain: outside the store):\n")
    print("| | before | after | after / before |")
    print("|---|---:|---:|---:|")
    for key in KEYS:
        before = statistics.median(samples[("before", key)])
        after = statistics.median(samples[("after", key)])
        print(f"| {key} | {before:.4f} | {after:.4f} | {after / before:.3f} |")
    print(f"\nload average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
