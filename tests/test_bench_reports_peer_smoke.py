"""Smoke test of bench/bench_reports_peer.py: the figures it compares are read right from a
helpkit report, and (where django-helpdesk is installed: the ``bench`` dependency group) a
tiny run of both sides agrees and renders its Markdown.

No timing is checked (performance belongs in bench/).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # it imports its sibling bench_kpis
    spec = importlib.util.spec_from_file_location(
        "bench_reports_peer", BENCH / "bench_reports_peer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_shared_figures_of_a_helpkit_report(bench: ModuleType, tmp_path: Path) -> None:
    from helpkit.stores.sqlite import SqliteStore

    path = str(tmp_path / "k.db")
    store = SqliteStore(path, synchronous="NORMAL")
    bench.kpis.load(store, 50)
    store.close()
    desk = bench.kpis._desk(path)
    try:
        figures = bench.helpkit_figures(desk.kpis(now=bench.kpis.NOW).to_data())
    finally:
        desk.shutdown()
    # Ticket i stays open when i % 5 == 0 (bench_kpis.history), in its last group (one in
    # four is handed over to l2).
    open_ones = [i for i in range(50) if i % 5 == 0]
    by_group: dict[str, int] = {}
    for i in open_ones:
        group = str(bench.kpis.history(i)[0].group_id)
        by_group[group] = by_group.get(group, 0) + 1
    assert by_group["l2"] > sum(1 for i in open_ones if bench.kpis.GROUPS[i % 3] == "l2")
    assert figures == {"tickets": 50, "resolved": 40, "open_by_group": by_group}


@pytest.mark.skipif(
    importlib.util.find_spec("helpdesk") is None, reason="django-helpdesk is not installed"
)
def test_both_sides_run_agree_and_render(bench: ModuleType, tmp_path: Path) -> None:
    found = bench.run(120, str(tmp_path))  # asserts the shared figures agree
    assert found["figures"]["tickets"] == 120
    assert set(found["django"]["pages"]) == {"report_index", *bench.DJANGO_REPORTS}
    assert all(page["bytes"] > 1000 for page in found["django"]["pages"].values())
    text = bench.markdown([found], "python bench/bench_reports_peer.py --quick")
    assert "**the fair pairing**" in text and "| 120 | helpkit |" in text
