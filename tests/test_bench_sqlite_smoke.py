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


def test_bare_commit_rate_measures_durable_commits(bench: Any, tmp_path: Path) -> None:
    rate = bench.bare_commit_rate(0.2, str(tmp_path))
    assert rate > 0
    assert list(tmp_path.iterdir()) == []  # its scratch database is gone


def test_the_report_gives_the_creates_ceiling(bench: Any, tmp_path: Path) -> None:
    job = bench.Job("helpkit", 100, 10, 5, "default", "FULL", str(tmp_path))
    peer_job = bench.Job("django", 100, 10, 5, "default", "FULL", str(tmp_path))
    ours = bench.Result(
        job,
        label="helpkit (sqlite, WAL + FULL)",
        journal_mode="WAL",
        synchronous="FULL",
        create_s=0.1,
        bare_commits=2000.0,
    )
    theirs = bench.Result(
        peer_job,
        label="django-helpdesk (sqlite, DELETE + FULL)",
        journal_mode="DELETE",
        synchronous="FULL",
        create_s=0.5,
    )
    text = bench.render([ours, theirs], bench.Run("today", (100.0, 120.0), 1.0), 5)
    # 1000 creates/s against 200: 5.0x; 2000 bare commits/s against 200 creates/s: 10.0x.
    assert "| 100 | helpkit WAL + FULL vs django-helpdesk DELETE + FULL | 5.0x | 10.0x |" in text
    assert "2,000 bare durable commits/s" in text
