"""Smoke test of bench/bench_postgres_interleaved.py: the turns, the ratios, two helpkit workers
taking turns on a real server, and the report.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when this skips); the
workers create and drop databases of their own there. The django-helpdesk side needs the bench
environment (``nox -s bench -- bench/bench_postgres_interleaved.py --quick`` runs it).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from postgres_fixtures import DSN

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "bench_postgres_interleaved.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts bench/ on it
    spec = importlib.util.spec_from_file_location("bench_postgres_interleaved_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _turn(count: int, wall: float) -> dict[str, Any]:
    return {"count": count, "wall": wall, "client": 0.01, "server": 0.02}


def test_the_sides_take_turns_going_first(bench: Any) -> None:
    assert bench.turn_orders(["a", "b"], 4) == [["a", "b"], ["b", "a"], ["a", "b"], ["b", "a"]]
    assert bench.turn_orders(["a", "b", "c"], 2) == [["a", "b", "c"], ["c", "b", "a"]]
    assert bench.turn_orders(["a", "b"], 0) == []


def test_rates_and_ratios_come_from_the_turns(bench: Any) -> None:
    ours, theirs = bench.Tally("helpkit"), bench.Tally("django")
    ours.turns["creates"] = [_turn(100, 0.1), _turn(100, 0.3)]  # 1,000/s, then 333/s
    theirs.turns["creates"] = [_turn(100, 0.5), _turn(100, 0.5)]  # 200/s both
    assert ours.rate("creates") == pytest.approx(500.0)  # 200 over 0.4 s, not a mean of rates
    assert theirs.rate("updates") is None
    assert bench.pair_ratios(ours, theirs, "creates") == pytest.approx([5.0, 5 / 3])
    assert ours.cpu_ms("creates") == "0.10 / 0.20"  # 0.02 s and 0.04 s over 200 creates
    assert ours.cpu_ms("updates") == "-"


def test_two_helpkit_workers_take_turns_on_a_server(
    bench: Any, postgres_database: str, tmp_path: Path
) -> None:
    # The baseline side runs this very source tree, through the same PYTHONPATH the option sets.
    sides = [("helpkit", ""), ("helpkit (baseline)", str(ROOT))]
    ours, base = bench.run_round(sides, 20, 6, 5, DSN, True)
    for tally in (ours, base):
        assert tally.sync == "on"
        assert [t["count"] for t in tally.turns["creates"]] == [5, 5, 5, 5]
        assert [t["count"] for t in tally.turns["updates"]] == [5, 1]
        assert all(t["wall"] > 0 and t["server"] is not None for t in tally.turns["creates"])
        # 20 tickets opened with a first comment (two events each), 6 replies with a status
        # change (two events each).
        assert tally.counts == "20 tickets, 52 events"
    assert base.revision == f"baseline {ROOT}"
    text = bench.render([[ours, base]], 5, "bench", 1.0)
    assert "| 1 | helpkit vs helpkit (baseline) |" in text
    assert "20 tickets, 52 events" in text
