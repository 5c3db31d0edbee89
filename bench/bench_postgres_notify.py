"""Concurrent commits of several tenants on one PostgreSQL server, with and without the feed's
notification: ``commit_change`` of schema version 10 against version 11's.

Run ``python bench/bench_postgres_notify.py`` (the ``postgres`` extra; ``--quick`` is a smoke
run). Writes ``bench/results/postgres-notify.md`` (or ``--output``) and prints the same
Markdown.

PostgreSQL serializes the commits of transactions that sent a notification, across the whole
server: each holds one lock from before its commit record until the commit is flushed, so
such commits cannot share a WAL flush. Version 10's ``commit_change`` notified on every commit;
version 11's notifies only while a consumer of that tenant waits for the feed
(helpkit.stores.postgres.wakeup). Here ``--writers`` processes, each in a tenant (a schema) of
its own, send the one-statement commits of bench_sqlite.py's creates at once (recorded from a
desk first, then sent again with new ticket ids through the store's libpq call, as
bench_postgres.py's "statements alone"; each commit durable, at the server's
``synchronous_commit``). Each round runs three cases, each on every tenant:

- ``version 10``: every commit notifies;
- ``version 11, nobody waiting``: no commit notifies;
- ``version 11, a consumer waiting``: a row in each tenant's ``feed_listeners`` for the
  whole case (a live connection's), so every commit notifies, as with version 10.

Within one tenant, commits take turns under the feed lock anyway (it orders the change feed);
the notification's lock is the one all tenants share.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_postgres as bp
import bench_sqlite as bs

RESULTS = Path(__file__).resolve().parent / "results" / "postgres-notify.md"
NOTIFYING, QUIET, WAITED = (
    "version 10",
    "version 11, nobody waiting",
    "version 11, a consumer waiting",
)
CASES = (NOTIFYING, QUIET, WAITED)


def record(url: str, creates: int) -> list[bp.Call]:
    """The one-statement commits of ``creates`` creates through a desk on the schema
    ``recorded`` of the database ``url``, without the kept parties' guard (each tenant has
    agents and contacts of its own ids)."""
    from helpkit import Helpdesk
    from helpkit.stores.postgres.commit import COMMIT_CHANGE
    from helpkit.stores.postgres.store import _CALLS

    desk = Helpdesk(f"{url}?schema=recorded", entry_points=False)
    try:
        contacts = bs.staffed(desk)
        with bp.recording_calls() as calls:
            for s in bs.specs(creates):
                bs.open_spec(desk, contacts, s)
    finally:
        desk.shutdown()
    if calls is None or len(calls) != creates:
        raise SystemExit("this helpkit does not commit a create in one call")
    name, query = _CALLS[COMMIT_CHANGE]
    plain = []
    for called, _text, values in calls:
        if called != name:  # a guarded commit: agent and contact ids first, their texts last
            values = values[2:-2]
        plain.append((name, query, values))
    return plain


def tenant(k: int) -> str:
    return f"tenant{k}"


def replay(url: str, k: int, tag: int, calls: list[bp.Call], ready: Any, go: Any, out: Any) -> None:
    """Writer ``k``: the recorded commits, with new ticket ids and its tenant's channel, into
    its tenant; says so on ``ready`` once connected, starts when ``go`` is set, and puts its
    wall seconds on ``out``."""
    import psycopg

    from helpkit.stores.postgres.call import call
    from helpkit.stores.postgres.wakeup import channel

    schema = tenant(k)
    own = channel(schema).encode("ascii")
    jobs = []
    for name, query, values in calls:
        old = values[0]
        assert old is not None
        new = b"%02x%02x" % (tag % 256, k) + old[4:]
        sent = [v.replace(old, new) if v else v for v in values]
        sent[-1] = own
        jobs.append((name, query, sent))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        prepared: set[bytes] = set()
        ready.put(k)
        go.wait()
        start = time.perf_counter()
        for name, query, values in jobs:
            call(conn, prepared, name, query, values)
        out.put(time.perf_counter() - start)


def run_case(url: str, writers: int, tag: int, calls: list[bp.Call]) -> float:
    """Every writer's commits at once; commits per second over all of them."""
    context = mp.get_context("spawn")
    ready, go, out = context.Queue(), context.Event(), context.Queue()
    processes = [
        context.Process(target=replay, args=(url, k, tag, calls, ready, go, out))
        for k in range(writers)
    ]
    for p in processes:
        p.start()
    for _ in processes:  # every writer started, connected and its commits made
        ready.get(timeout=120)
    start = time.perf_counter()
    go.set()
    for p in processes:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a writer failed (exit code {p.exitcode})")
    return writers * len(calls) / (time.perf_counter() - start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--creates", type=int, help="commits per writer and case (default 1000)")
    parser.add_argument("--writers", type=int, help="writer processes, a tenant each (default 6)")
    parser.add_argument("--rounds", type=int, help="rounds of the three cases (default 3)")
    parser.add_argument("--output", type=Path, help="Markdown file (default: results, not --quick)")
    args = parser.parse_args(argv)
    missing = bp._missing()
    if missing:
        print(f"bench_postgres_notify.py skipped: {missing}", file=sys.stderr)
        return
    import psycopg

    from helpkit.stores.postgres.commit import function_ddl
    from helpkit.stores.postgres.schema import _FEED_LOCK_CLASS
    from helpkit.stores.postgres.store import PostgresStore
    from helpkit.stores.postgres.wakeup import _ME

    quick = args.quick
    if quick:
        for name, value in {"AGENTS": 6, "GROUPS": 3, "CONTACTS": 5}.items():
            setattr(bs, name, value)
    creates = args.creates or (20 if quick else 1000)
    writers = args.writers or (2 if quick else 6)
    rounds = args.rounds or (1 if quick else 3)
    started = time.perf_counter()
    rates: dict[str, list[float]] = {case: [] for case in CASES}
    with bp.fresh_database(bp.DSN, "hk_bench_notify") as url:
        calls = record(url, creates)
        for k in range(writers):
            PostgresStore(url, schema=tenant(k)).close()  # created at the current version
        with psycopg.connect(url, autocommit=True) as admin:
            me = admin.execute(_ME).fetchone()  # its row, as a waiting consumer registers it
            assert me is not None
            tag = 0x80
            for n in range(rounds):
                for case in CASES:
                    for k in range(writers):
                        admin.execute(f'SET search_path TO "{tenant(k)}"')
                        admin.execute(
                            function_ddl(_FEED_LOCK_CLASS, 10 if case == NOTIFYING else 11)
                        )
                        admin.execute("DELETE FROM feed_listeners")
                        if case == WAITED:  # this live connection, as a consumer waiting
                            admin.execute("INSERT INTO feed_listeners VALUES (%s, %s)", me)
                    tag += 1
                    rate = run_case(url, writers, tag, calls)
                    rates[case].append(rate)
                    print(f"   round {n + 1}, {case}: {rate:,.0f} commits/s", file=sys.stderr)
    text = render(rates, writers, creates, time.perf_counter() - started, argv)
    bs.publish(text, args.output or (None if quick else RESULTS))


def render(
    rates: dict[str, list[float]],
    writers: int,
    creates: int,
    took: float,
    argv: Sequence[str] | None,
) -> str:
    command = "python bench/bench_postgres_notify.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    first = bs.median(rates[NOTIFYING]) if rates[NOTIFYING] else 0.0
    out = [
        "# Concurrent commits of several tenants: the feed's notification",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {writers} writer",
        "processes, each in a tenant (schema) of its own on one database, each sending the",
        f"one-statement commits of {creates:,} creates at once (durable, the server's",
        "`synchronous_commit`); commits per second over all writers, in each round.",
        "",
        "| case | commits/s (rounds) | median | against version 10 |",
        "|---|---|---:|---:|",
    ]
    for case in CASES:
        values = rates[case]
        median = bs.median(values) if values else 0.0
        against = f"{median / first:.2f}x" if first else "-"
        out.append(
            f"| {case} | {', '.join(f'{v:,.0f}' for v in values)} | {median:,.0f} | {against} |"
        )
    out += [
        "",
        "## Machine",
        "",
        f"- Total bench time {took / 60:,.1f} min; load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end ({os.cpu_count()} logical "
        "CPUs; other jobs share the machine)",
        f"- Python {sys.version.split()[0]}; PostgreSQL {bp.server_version(bp.DSN)} "
        "(same machine, TCP)",
        f"- {platform.platform()}; CPU: {bs._cpu()}; helpkit source {bs.revision()}",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    main()
