"""Smoke test of bench/bench_postgres.py: the helpkit workers, the sweep and the report, tiny.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when this skips); the
bench creates and drops databases of its own there. The django-helpdesk workers need the bench
environment (``nox -s bench -- bench/bench_postgres.py --quick`` runs them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from postgres_fixtures import DSN

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_postgres.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, postgres_database: str) -> ModuleType:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts bench/ on it
    spec = importlib.util.spec_from_file_location("bench_postgres_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    # A small helpdesk: the setup commits one transaction per agent and contact.
    monkeypatch.setattr(module.bs, "AGENTS", 6)
    monkeypatch.setattr(module.bs, "GROUPS", 3)
    monkeypatch.setattr(module.bs, "CONTACTS", 5)
    return module


def _databases(prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)
        ).fetchall()
    return [str(row[0]) for row in rows]


def test_helpkit_workers_sweep_and_report(bench: Any) -> None:
    job = bench.Job("helpkit", 30, 10, 5, dsn=DSN)
    with bench.fresh_database(DSN, "hk_smoke_helpkit") as url:
        bare = bench.bare_commit_rate(url, 0.2)
        result = bench.run_helpkit(job, url)
        assert bare > 0 and bench.bare_commit_rate(url, 0.2) > 0  # its table made and dropped
    assert result.synchronous_commit == "on"
    assert result.creates_per_s > 0 and result.updates == 10 and result.updates_per_s > 0
    assert len(result.q_assignee) == len(result.q_group) == 5
    # 30 tickets opened with a first comment (two events each), 10 replies with a status
    # change (two events each).
    assert result.counts == "30 tickets, 80 events"

    alone_job = bench.Job("helpkit-alone", 30, dsn=DSN)
    with bench.fresh_database(DSN, "hk_smoke_alone") as url:
        alone = bench.run_helpkit_alone(alone_job, url)
    # 30 creates through the desk, then their 30 commit statements once more (new ids).
    assert alone.counts == "60 tickets (half of them replayed), 120 events"
    assert alone.creates_per_s > 0 and len(alone.create_cpu) == 2 and alone.create_cpu[0] > 0
    assert alone.label == "helpkit, statements alone (postgresql, synchronous_commit=on)"

    bulk_job = bench.Job("helpkit-bulk", 40, 0, 5, dsn=DSN)
    with bench.fresh_database(DSN, "hk_smoke_bulk") as url:
        bulk = bench.run_helpkit_bulk(bulk_job, url)
    assert bulk.counts == "40 tickets" and bulk.rows_group > 0

    sweep_job = bench.Job("sweep", 30, workers=[1, 2], dsn=DSN)
    with bench.fresh_database(DSN, "hk_smoke_sweep") as url:
        sweep = bench.run_sweep(sweep_job, url)
    assert [row["workers"] for row in sweep.sweeps] == [1, 2]
    for row in sweep.sweeps:
        # Every due ticket warned once, whoever of the workers did it.
        assert (row["warned"], row["warned_twice"], row["warnings"]) == (30, 0, 30)
    assert _databases("hk_smoke_") == []  # every database it made is gone

    run = bench.Run("today", 1.0, [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], "15.0", "python x")
    text = bench.render([result, alone, bulk, sweep], run)
    assert "| helpkit | on | 30 |" in text
    assert "| helpkit, statements alone | on | 30 |" in text
    assert "| helpkit | on | 40 (bulk-loaded" in text
    assert "| 2 | 30 |" in text
    assert "1.00, 1.00, 1.00 at start, 2.00, 2.00, 2.00 at end" in text


def test_the_report_pairs_peers_of_the_same_durability(bench: Any) -> None:
    ours = bench.Result(
        bench.Job("helpkit", 100, 10), synchronous_commit="on", create_s=0.1, update_s=0.01
    )
    ours.updates = 10
    theirs = bench.Result(
        bench.Job("django", 100, 10), synchronous_commit="on", create_s=0.5, update_s=0.1
    )
    theirs.updates = 10
    other = bench.Result(bench.Job("django", 100, 10), synchronous_commit="off", create_s=0.2)
    for r in (ours, theirs, other):
        r.load = [0.0, 0.0]
    ours.bare_commits = [1500.0, 1700.0]
    theirs.bare_commits = [1400.0, 1800.0]
    run = bench.Run("today", 1.0, [0.0] * 3, [0.0] * 3, "15.0", "python x")
    text = bench.render([ours, theirs, other], run)
    # 1000 creates/s against 200, 1000 updates/s against 100; never paired with "off". The
    # ceilings: 1600 bare commits/s (the mean of the pairing's four) over 200 and over 100.
    assert "| helpkit vs django | 100 | 5.0x | 8.0x | 10.0x | 16.0x |" in text
    assert text.count("| helpkit vs django |") == 1
    assert "| 1,500 / 1,700 |" in text


COMMIT_BENCH = BENCH.with_name("bench_postgres_commit.py")


def test_the_commit_bench_replays_what_the_desk_committed(
    bench: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """bench/bench_postgres_commit.py: the calls captured from a desk, replayed on a schema
    of their own a slice at a time, write the same tickets and events, and each slice reports
    the CPU its creates and replies took."""
    import psycopg

    spec = importlib.util.spec_from_file_location("bench_commit_under_test", COMMIT_BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "bp", bench)  # the small helpdesk of the fixture
    monkeypatch.setattr(module, "bs", bench.bs)
    path = tmp_path / "calls.json"
    with bench.fresh_database(DSN, "hk_smoke_commit") as url:
        module.capture(url, 40, path)
        slices = module.replay(url, "replayed", path)
        next(slices)  # set up, the first calls replayed untimed
        first = slices.send(5)  # five creates
        spent = slices.send(1000)  # the rest
        with psycopg.connect(url, autocommit=True) as conn:
            rows = {
                schema: (
                    conn.execute(
                        f"SELECT id, number, seq, state FROM {schema}.tickets ORDER BY id"
                    ).fetchall(),
                    conn.execute(
                        f"SELECT ticket_id, seq, body, position FROM {schema}.events ORDER BY 4"
                    ).fetchall(),
                )
                for schema in ("helpkit", "replayed")
            }
    assert len(rows["helpkit"][0]) == 40 and len(rows["helpkit"][1]) == 40 * 2 + 20 * 2
    assert rows["replayed"] == rows["helpkit"]
    assert first["update"] == [0.0, 0.0] and first["create"][0] > 0
    assert all(len(v) == 2 and v[0] is not None and v[0] > 0 for v in spent.values())


def test_the_meter_reads_the_servers_cpu_in_nanoseconds_where_the_kernel_has_them(
    bench: Any,
) -> None:
    """The server's CPU per backend comes from ``/proc/<pid>/schedstat`` (nanoseconds) where
    there is one (else from ``stat``'s 10 ms ticks, too coarse to tell two sources apart): a
    backend's reading lies between two reads of its schedstat made around it."""
    import psycopg

    if not Path("/proc/self/schedstat").exists():
        pytest.skip("no /proc/<pid>/schedstat here: the meter reads whole clock ticks")
    with bench.fresh_database(DSN, "hk_smoke_meter") as url, psycopg.connect(url) as worker:
        pid = worker.info.backend_pid
        worker.execute("SELECT count(*) FROM generate_series(1, 100000)")
        schedstat = Path(f"/proc/{pid}/schedstat")
        if not schedstat.exists():
            pytest.skip("the server runs elsewhere: its backends are not in this /proc")
        meter = bench.CpuMeter(url)
        try:
            before = int(schedstat.read_text().split()[0])
            readings = meter._backends()
            after = int(schedstat.read_text().split()[0])
        finally:
            meter.close()
    assert readings is not None
    assert before / 1e9 <= readings[pid] <= after / 1e9


def test_the_statements_alone_are_paired_with_every_peer_run(bench: Any) -> None:
    """Two statements-alone runs against one django-helpdesk run at the same durability (and
    one at another, never paired): a row per pairing, then their median."""
    theirs = bench.Result(
        bench.Job("django", 100, 10), synchronous_commit="on", create_s=0.5, update_s=0.1
    )
    theirs.updates = 10
    other = bench.Result(bench.Job("django", 100, 10), synchronous_commit="off", create_s=0.2)
    results = [theirs, other]
    for create_s in (0.05, 1 / 30):
        ours = bench.Result(
            bench.Job("helpkit-alone", 100),
            label="helpkit, statements alone (postgresql, synchronous_commit=on)",
            synchronous_commit="on",
            create_s=create_s,
            create_cpu=[0.01, 0.02],
        )
        results.append(ours)
    for r in results:
        r.load = [0.0, 0.0]
    run = bench.Run("today", 1.0, [0.0] * 3, [0.0] * 3, "15.0", "python x")
    text = bench.render(results, run)
    # 2000 and 3000 creates/s against 200; the queue is not measured on those rows.
    assert (
        "| helpkit, statements alone | on | 100 | 2,000 | - | - | 0.10 / 0.20 | - | - | - |" in text
    )
    assert "| helpkit, statements alone vs django | 100 | 10.0x | | | | | |" in text
    assert "| helpkit, statements alone vs django | 100 | 15.0x | | | | | |" in text
    assert text.count("| helpkit, statements alone vs django |") == 2
    assert (
        "| helpkit, statements alone vs django, median of the 2 pairings above | | 12.5x |" in text
    )
