"""Smoke test of bench/bench_sqlite.py: the helpkit workers and the report, on a tiny workload.

The django-helpdesk worker needs the bench environment and its migrations alone take several
seconds; ``nox -s bench -- bench/bench_sqlite.py --quick`` exercises it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_sqlite.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sqlite_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    # A small helpdesk: the setup commits one transaction per agent and contact.
    monkeypatch.setattr(module, "AGENTS", 6)
    monkeypatch.setattr(module, "GROUPS", 3)
    monkeypatch.setattr(module, "CONTACTS", 5)
    return module


def _job(bench: Any, system: str, tmp_path: Path, size: int) -> Any:
    return bench.Job(system, size, 10, 5, "default", "NORMAL", str(tmp_path))


def test_same_inputs_in_every_process(bench: Any) -> None:
    assert list(bench.specs(20)) == list(bench.specs(20))
    plan = bench.update_plan(20, 10)
    assert len({i for i, _ in plan}) == 10
    assert all(0 <= i < 20 for i, _ in plan)
    assert len(bench.update_plan(5, 10)) == 5  # never more updates than tickets


def test_helpkit_worker_and_report(bench: Any, tmp_path: Path) -> None:
    result = bench.run_helpkit(_job(bench, "helpkit", tmp_path, 30))
    assert (result.journal_mode, result.synchronous) == ("WAL", "NORMAL")
    assert result.creates_per_s > 0
    assert result.updates == 10
    assert result.updates_per_s > 0
    assert len(result.q_assignee) == len(result.q_group) == 5
    # 30 tickets with their first comment (opened, commented) and 10 replies with a status
    # change (commented, status changed).
    assert result.counts == "30 tickets, 80 events"
    bulk = bench.run_helpkit_bulk(_job(bench, "helpkit-bulk", tmp_path, 40))
    assert bulk.counts == "40 tickets"
    assert bulk.rows_group > 0

    text = bench.render([result, bulk], bench.Run("today", (100.0, 120.0), 1.0), 5)
    assert "| helpkit | WAL + NORMAL | 30 |" in text
    assert "| helpkit | WAL + FULL | 40 (bulk-loaded" in text
    assert "SQLite" in text
