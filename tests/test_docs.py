"""The documentation's code samples run, and every hook is documented.

Which blocks run, and how:

- a ```` ```python ```` block runs with the page's earlier blocks, in one namespace per page;
- a ```` ```python ```` block whose first line is a ``# test_<name>.py`` comment is a test
  module of a user's suite (it asks for the ``helpkit_`` pytest fixtures): it is written to that
  file and run by pytest in a fresh process, as the user's suite would be;
- a ```` ```toml ```` block is a ``helpkit.toml`` example and must load with
  ``DeskConfig.from_dict``, unless it is a ``pyproject.toml`` fragment (a ``[project...]`` table);
- other blocks are not code: shell commands (``bash``, ``text``), diagrams, Sphinx directives.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from helpkit import DeskConfig, hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
TOML_FENCE = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)
TEST_MODULE = re.compile(r"\A# (test_\w+\.py)\n")
PAGES = sorted(DOCS.glob("*.md"))


def _blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


def _test_modules() -> list[tuple[Path, str, str]]:
    """(page, file name, code) of every block that is a test module of a user's suite."""
    found = []
    for page in PAGES:
        for block in _blocks(page):
            match = TEST_MODULE.match(block)
            if match:
                found.append((page, match.group(1), block))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_samples_run(page: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for index, block in enumerate(_blocks(page)):
        if TEST_MODULE.match(block):
            continue  # test_pytest_samples_pass runs it
        code = compile(block, f"{page.name}[block {index + 1}]", "exec")
        exec(code, namespace)


def test_pytest_samples_pass(tmp_path: Path) -> None:
    modules = _test_modules()
    assert any(page.name == "testing.md" for page, _, _ in modules), "testing.md has no test file"
    names = [name for _, name, _ in modules]
    assert len(set(names)) == len(names), f"two samples claim the same file name: {names}"
    for _, name, code in modules:
        (tmp_path / name).write_text(code, encoding="utf-8")
    tests = sum(len(re.findall(r"^def test_", code, re.MULTILINE)) for _, _, code in modules)
    # A fresh process in a directory of its own, as a user's suite: no configuration of ours,
    # and helpkit's fixtures come from its pytest11 entry point alone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    # Every sample test function ran and passed (a conformance subclass adds its cases).
    assert passed is not None and int(passed.group(1)) >= tests, output
    assert "failed" not in output and "error" not in output, output


def test_config_samples_load() -> None:
    samples = 0
    for page in PAGES:
        for block in TOML_FENCE.findall(page.read_text(encoding="utf-8")):
            data = tomllib.loads(block)
            if "project" in data:
                continue  # a pyproject.toml fragment (entry points)
            DeskConfig.from_dict(data)
            samples += 1
    assert samples >= 2


def test_every_hookspec_is_documented_with_its_signature() -> None:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    specs = [
        name
        for name, obj in vars(hookspecs).items()
        if name.startswith("helpkit_") and callable(obj)
    ]
    assert specs, "no hookspecs found"
    for name in specs:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"## `{name}({params})`" in text, f"{name} has no section in docs/hooks.md"
        assert f"Signature: `{name}(" in text, f"{name} has no signature line"


def test_the_readme_test_command_runs_every_claimed_python() -> None:
    """``nox -s tests`` runs on each Python of the classifiers (noxfile.py's PYTHONS)."""
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "classifiers"
    ]
    claimed = [
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    pythons = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["PYTHONS"]
    )
    assert pythons == claimed
    assert "python3 -m nox -s tests" in (ROOT / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------ the SQLite benchmark's headline and results

RESULTS = ROOT / "bench" / "results" / "sqlite.md"
PAIRING = re.compile(
    r"^\| ([\d,]+) \| helpkit (\w+) \+ (\w+) vs django-helpdesk (\w+) \+ (\w+) \|", re.MULTILINE
)


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def _load_bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    path = ROOT / "bench" / "bench_sqlite.py"
    spec = importlib.util.spec_from_file_location("bench_sqlite_docs_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _skeleton(text: str) -> list[str]:
    """The lines of a ratios section with the measured cells blanked."""
    return [re.sub(r"\| [\d.,]+x |\| - ", "| N ", line) for line in text.splitlines()]


def test_the_sqlite_report_leads_with_the_same_journal_pairing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench: Any = _load_bench(monkeypatch)

    def result(system: str, journal: str, sync: str, size: int, create_s: float) -> Any:
        job = bench.Job(system, size, 10, 5, "default", sync, "")
        name = "helpkit" if system == "helpkit" else "django-helpdesk"
        return bench.Result(
            job,
            label=f"{name} (sqlite, {journal} + {sync})",
            journal_mode=journal,
            synchronous=sync,
            create_s=create_s,
            update_s=create_s,
            updates=10,
        )

    # The committed run's rows, in its order (any numbers: the layout is under test).
    results = [
        result("helpkit", "WAL", "FULL", 10_000, 10.0),
        result("django", "DELETE", "FULL", 10_000, 30.0),
        result("helpkit", "WAL", "FULL", 100_000, 100.0),
        result("django", "DELETE", "FULL", 100_000, 300.0),
        result("django", "WAL", "FULL", 10_000, 20.0),
        result("helpkit", "WAL", "NORMAL", 10_000, 8.0),
        result("django", "WAL", "NORMAL", 10_000, 16.0),
    ]
    rendered = _section(bench.render(results, bench.Run("today", (1.0, 1.0), 1.0), 5), "## Ratios")
    pairings = PAIRING.findall(rendered)
    assert pairings[0] == ("10,000", "WAL", "FULL", "WAL", "FULL")
    assert len(pairings) == 4
    same = [p for p in pairings if p[1:3] == p[3:5]]
    assert pairings[: len(same)] == same, "a different-journal pairing comes first"
    assert "| 10,000 | helpkit WAL + FULL vs django-helpdesk WAL + FULL | 2.0x |" in rendered

    # The committed results are laid out as the report renders them: same pairings, same order.
    committed = _section(RESULTS.read_text(encoding="utf-8"), "## Ratios")
    assert PAIRING.findall(committed) == pairings
    assert _skeleton(committed) == _skeleton(rendered)


def test_the_sqlite_page_lists_every_pairing_of_the_results_fairest_first() -> None:
    page = (DOCS / "sqlite-store.md").read_text(encoding="utf-8")
    performance = _section(page, "## Performance")
    pairings = PAIRING.findall(_section(RESULTS.read_text(encoding="utf-8"), "## Ratios"))
    journal = {"WAL": "WAL", "DELETE": "rollback journal (`DELETE`)"}
    rows = [
        f"| {journal[ours]}, {our_sync} | {journal[theirs]}, {their_sync} | {tickets} |"
        for tickets, ours, our_sync, theirs, their_sync in pairings
    ]
    for row in rows:
        assert row in performance, f"the Performance section has no row {row!r}"
    positions = [performance.index(row) for row in rows]
    assert positions == sorted(positions), "the rows are not in the results' order"
    first_table_row = performance.index("| WAL, ")
    assert performance.startswith("| WAL, FULL | WAL, FULL | 10,000 |", first_table_row)
