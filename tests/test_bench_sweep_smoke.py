"""Smoke test of bench/bench_sweep.py on a tiny file: every run sweeps what it should.

No timing is checked (performance belongs in bench/); the bench's own assertions check that
each sweep records one warning per due ticket and that a second sweep finds nothing due.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_sweep.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sweep_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "BATCH", 70)  # several load commits
    return module


def test_each_run_sweeps_every_due_ticket_once(bench: ModuleType, tmp_path: Path) -> None:
    rows = bench.run(300, 0.1, str(tmp_path))
    assert [(r["batch"], r["kept"], r["due"]) for r in rows] == [
        (1, False, 30),
        (500, False, 30),
        (500, True, 30),
    ]
    # The default run also says how much of it the commits took, and replays their writes.
    default = rows[-1]
    assert 0 < default["commit_cpu_ms"] < default["per_due_cpu_ms"]
    assert default["sql_cpu_ms"] > 0 and default["sql_ms"] > 0
    assert list(tmp_path.iterdir()) == []  # every copy removed


def test_a_before_run_sweeps_with_the_other_source_tree(bench: ModuleType, tmp_path: Path) -> None:
    """``--before SRC``: one more sweep, by the helpkit found in SRC (here this one), whose
    kept states it writes itself; its row sits beside this version's."""
    source = Path(__file__).resolve().parent.parent / "src"
    folder = tmp_path / "files"
    folder.mkdir()
    rows = bench.run(200, 0.1, str(folder), before=str(source))
    assert [(r["batch"], r["kept"], r["version"], r["due"]) for r in rows] == [
        (1, False, "this", 20),
        (500, False, "this", 20),
        (500, True, "before", 20),
        (500, True, "this", 20),
    ]
    assert all(r["sweep_cpu_s"] > 0 for r in rows)
    assert list(folder.iterdir()) == []
