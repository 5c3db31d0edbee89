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
