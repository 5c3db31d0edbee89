"""Smoke test of bench/bench_routing.py on a tiny workload: it runs, the routed desks route
(the bench checks it), and the report has a row per configuration."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_routing.py"


def test_the_bench_runs_and_reports_every_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_routing_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    report = module.run(rounds=2, batch=3, agents=3)
    for name in ("no routing", "round_robin", "least_loaded"):
        assert f"| {name} |" in report
    assert "load average" in report
