"""Smoke test of bench/bench_kpis.py on a tiny file: every task runs, and the report from the
projection equals the full recomputation.

No timing is checked (performance belongs in bench/); the bench's own assertions check that
the two reports agree, that the report counts every ticket loaded, and that each update
folds in exactly the new events.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_kpis.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_kpis_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "BATCH", 70)  # several load commits
    return module


def test_every_task_runs_and_the_reports_agree(bench: ModuleType, tmp_path: Path) -> None:
    rows = bench.run(1200, str(tmp_path))
    assert [r["task"] for r in rows] == [
        "full",
        "build",
        "stream",
        "projection",
        "update-1000-1",
        "update-100-10",
    ]
    assert all(r["events"] == 1200 * bench.EVENTS for r in rows)
    assert all(r["maxrss_mib"] > 0 and r["cpu_s"] > 0 for r in rows)
    assert list(tmp_path.iterdir()) == []  # every file removed


def test_a_history_has_its_events_in_order(bench: ModuleType) -> None:
    for index in (0, 1, 5):
        state, events = bench.history(index)
        assert [e.seq for e in events] == list(range(1, bench.EVENTS + 1))
        assert state.seq == bench.EVENTS
        assert state.category.value == ("open" if index % 5 == 0 else "solved")


def test_a_store_built_in_slices_is_the_one_a_single_load_writes(
    bench: ModuleType, tmp_path: Path
) -> None:
    from helpkit.stores.sqlite import SqliteStore

    single = str(tmp_path / "single.db")
    store = SqliteStore(single, synchronous="NORMAL")
    bench.load(store, 701)
    store.close()
    built = str(tmp_path / "built.db")
    bench.build_store(built, 701, 3)  # slices of 234, 234 and 233 tickets
    assert bench.dump(built) == bench.dump(single)  # every table's rows, schema, version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built.db", "single.db"]
    store = SqliteStore(built)
    try:
        assert store.last_position() == 701 * bench.EVENTS
        assert [e.seq for e in store.events("t0000700")] == list(range(1, bench.EVENTS + 1))
        assert store.get_ticket("t0000234").number == 235
        assert [c.position for c in store.changes(after=2339, limit=2)] == [2340, 2341]
    finally:
        store.close()
