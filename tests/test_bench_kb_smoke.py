"""Smoke test of bench/bench_kb.py at a tiny size: every store it finds runs every task, and
the labelled set's relevance is measured.

No timing is checked (performance belongs in bench/); the relevance floor is what the
stores reach on the labelled set with their ranking today, so a search that stops ranking
(or stops finding) fails here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_kb.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_kb_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "SEARCHES", 30)
    monkeypatch.setattr(module, "SUGGESTIONS", 30)
    return module


def test_every_store_runs_and_ranks_the_labelled_set(bench: ModuleType, tmp_path: Path) -> None:
    rows = bench.run(200, str(tmp_path), ["memory", "sqlite"])
    assert [r["store"] for r in rows] == ["memory", "sqlite"]
    for row in rows:
        assert row["articles"] == 200 and row["questions"] == 22
        assert row["search_found"] > 0.5 and row["suggest_found"] > 0.5
        assert row["p_at_3"] >= 0.4 and row["hit_at_3"] >= 0.9
        assert row["search"]["p50"] <= row["search"]["p95"] <= row["search"]["max"]
    assert list(tmp_path.iterdir()) == []  # every file removed


def test_generated_articles_are_the_same_each_run(bench: ModuleType) -> None:
    assert bench.generated(7) == bench.generated(7)
    assert bench.generated(9).status.value == "draft"
    assert bench.generated(8).status.value == "published"
