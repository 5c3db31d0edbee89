"""Smoke test of bench/bench_relay.py: its workers and its report, on a tiny workload.

The bench reaches into the relay's private attributes to time its stages: this fails when
they move, rather than the bench measuring nothing. ``python bench/bench_relay.py --quick``
exercises the rest (worker processes, SQLite copies, the old source from git).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_relay.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_relay_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def _drain(bench: Any, mode: str, store: str, path: str) -> dict[str, Any]:
    job = {"store": store, "path": path, "synchronous": "NORMAL", "tickets": 3, "replies": 12}
    result: dict[str, Any] = bench.work_drain({**job, "mode": mode})
    result["mode"] = mode
    return result


def test_throughput_workers_and_report(bench: Any, tmp_path: Path) -> None:
    memory = [_drain(bench, mode, "memory", "") for mode in ("plain", "stages")]
    base = str(tmp_path / "base.db")
    bench.build_base(base, 3, 12)
    sqlite = [
        _drain(bench, mode, "sqlite", bench._copy(base, str(tmp_path / f"{mode}.db")))
        for mode in ("plain", "stages", "profile")
    ]
    stages = memory[1]["stages"]
    assert {"derive", "deliver", "deliver: claim", "deliver: send", "record: store commit"} <= set(
        stages
    )
    assert all(spent > 0 for spent in stages.values())
    assert sqlite[2]["profile"]["cumulative"]
    data = {
        "tickets": 3,
        "replies": 12,
        "repeat": 1,
        "rows": [
            {"store": "memory", "synchronous": "-", "runs": memory},
            {"store": "sqlite", "synchronous": "NORMAL", "runs": sqlite},
        ],
    }
    text = "\n".join(bench.render_throughput(data))
    assert "| memory |" in text
    assert "deliver: claim" in text
    assert "cProfile of one drain, SQLite WAL + NORMAL" in text


def test_reply_worker_and_report(bench: Any, tmp_path: Path) -> None:
    results = {}
    for variant in ("outbox", "sync", "none"):
        job = {
            "store": "memory",
            "synchronous": "-",
            "path": str(tmp_path / "reply.db"),
            "variant": variant,
            "tickets": 3,
            "warm": 3,
            "timed": 6,
        }
        results[f"memory -|new {variant}"] = [bench.work_reply(job)]
    assert results["memory -|new outbox"][0]["sent_inline"] == 0
    assert results["memory -|new outbox"][0]["delivered"] == 6
    assert results["memory -|new sync"][0]["sent_inline"] == 6
    assert results["memory -|new none"][0]["delivered"] == 0
    data = {
        "results": results,
        "stores": [("memory", "-")],
        "variants": [("new", "outbox"), ("new", "sync"), ("new", "none")],
        "tickets": 3,
        "warm": 3,
        "timed": 6,
        "rounds": 1,
    }
    text = "\n".join(bench.render_replies(data, "not available"))
    assert "outbox vs sync mode, both today" in text
    assert "the headline pairing is missing" in text


def test_latencies(bench: Any) -> None:
    commits = [["a", 1.0, 1.01], ["b", 2.0, 2.01], ["c", 3.0, 3.01]]
    stats = bench._latencies(commits, {"a": 1.02, "b": 2.04})
    assert stats["n"] == 2
    assert stats["missing"] == 1
    assert stats["p50"] == pytest.approx(20.0)
    assert stats["max"] == pytest.approx(30.0)
