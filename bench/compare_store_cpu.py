"""CPU of the PostgreSQL store's part of a create, this tree's ``src`` against another's.

Run::

    mkdir -p /tmp/sc-base && git -C . archive main src bench | tar -x -C /tmp/sc-base
    python bench/compare_store_cpu.py /tmp/sc-base/src --rounds 31

Each tree gets one worker process (its ``src`` first on ``sys.path``) on a fresh database of
the server at ``--dsn``: it opens ``--creates`` tickets through the desk as the PostgreSQL
bench does (``bench_postgres._helpkit_desk``, ``bench_sqlite.open_spec``), keeping every
``commit_planned`` call's changes and timer states, then replaces the one-statement call
(``helpkit.stores.postgres.store.call``) by one returning a ticket number without a round
trip, and times, with ``time.process_time()``, those commits again inside the store's
``guard_parties`` block of a kept agent and contact, as the desk makes them: direct
parameters, their text, the pool's borrow (its check) and return, the numbered change and
the caches, without the server's reply. A round asks each worker for ``--reps`` passes over
the kept commits, alternating which goes first; prints the median and the least of the rounds
in microseconds of CPU per create. Only CPU is measured: on a shared machine alternate and
read the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _worker(src: str, dsn: str, creates: int) -> None:
    sys.path[:0] = [src, str(HERE)]
    import bench_postgres as bp
    import bench_sqlite as bs

    import helpkit
    from helpkit.stores.postgres import store as store_module

    assert helpkit.__file__ is not None and helpkit.__file__.startswith(src), helpkit.__file__
    kept: list[tuple[list[Any], list[Any]]] = []
    planned = store_module.PostgresStore.commit_planned

    def keeping(self: Any, changes: Any, states: Any) -> Any:
        kept.append((list(changes), list(states)))
        return planned(self, changes, states)

    with bp.fresh_database(dsn, "hkstorecpu") as url:

        class _Result:
            pass

        desk, contacts = bp._helpkit_desk(url, _Result())  # type: ignore[arg-type]
        store: Any = desk.store
        store_module.PostgresStore.commit_planned = keeping  # type: ignore[method-assign]
        for spec in bs.specs(creates):
            bs.open_spec(desk, contacts, spec)
        store_module.PostgresStore.commit_planned = planned  # type: ignore[method-assign]
        # The round trip left out: every call answers ticket number 77.
        setattr(store_module, "call", lambda conn, prepared, name, query, values: b"77")  # noqa: B010
        agent = next(iter(store._kept_agents.values()))[0]
        contact = next(iter(store._kept_contacts.values()))[0]
        print("ready", flush=True)
        for line in sys.stdin:
            reps = int(line)
            start = time.process_time()
            for _ in range(reps):
                for changes, states in kept:
                    with store.guard_parties(agent, contact):
                        store.commit_planned(changes, states)
            spent = time.process_time() - start
            print(f"{1e6 * spent / (reps * len(kept)):.3f}", flush=True)
        desk.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("baseline", help="the other tree's src directory")
    parser.add_argument("--dsn", default="postgresql://127.0.0.1:5432/postgres")
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.dsn, args.creates)
        return
    trees = {"baseline": args.baseline, "this": str(HERE.parent / "src")}
    workers = {}
    for name, src in trees.items():
        command = [sys.executable, __file__, src, "--worker", src, "--dsn", args.dsn]
        command += ["--creates", str(args.creates)]
        worker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert worker.stdin is not None and worker.stdout is not None
        if worker.stdout.readline().strip() != "ready":
            raise SystemExit(f"the {name} worker did not start")
        workers[name] = worker
    spent: dict[str, list[float]] = {name: [] for name in workers}
    for index in range(args.rounds):
        order = list(workers) if index % 2 == 0 else list(workers)[::-1]
        for name in order:
            worker = workers[name]
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(f"{args.reps}\n")
            worker.stdin.flush()
            spent[name].append(float(worker.stdout.readline()))
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
    for name, values in spent.items():
        print(
            f"{name:8s} median {statistics.median(values):7.2f} us  "
            f"least {min(values):7.2f} us of CPU per create (store part, no round trip)"
        )
    base, this = statistics.median(spent["baseline"]), statistics.median(spent["this"])
    print(f"this - baseline: {this - base:+.2f} us ({100 * (this - base) / base:+.1f}%)")


if __name__ == "__main__":
    main()
