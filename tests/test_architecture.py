"""The import contracts of docs/design.md ("Layers and the direction of imports") bite.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and run in the ``lint``
session as ``lint-imports``; relative imports are refused by ruff (``TID252``, all of them).
These tests copy the source tree, plant one violation, run the checker on the copy and expect
it to fail naming the violation (and the clean copy to pass), so a contract that stopped
biting would be noticed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "helpkit"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONTRACTS: dict[str, dict[str, Any]] = {
    contract["id"]: contract for contract in PYPROJECT["tool"]["importlinter"]["contracts"]
}

needs_import_linter = pytest.mark.skipif(
    importlib.util.find_spec("importlinter") is None,
    reason="import-linter is not installed (it is in the test dependency group)",
)


def _top_level_modules() -> set[str]:
    """Every module and package directly under helpkit, as import-linter names them."""
    found = {p.stem for p in SRC.glob("*.py") if p.name != "__init__.py"}
    found |= {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    return {f"helpkit.{name}" for name in found}


def _layer_modules(layer: str) -> set[str]:
    return {f"helpkit.{name.strip()}" for name in re.split(r"[|:]", layer)}


# -- The configuration says what docs/design.md says --------------------------------------------

DOMAIN = {
    "helpkit.calendar",
    "helpkit.notifications",
    "helpkit.holidays",
    "helpkit.priority",
    "helpkit.people",
    "helpkit.fields",
    "helpkit.tickets",
    "helpkit.events",
    "helpkit.fold",
    "helpkit.outcomes",
    "helpkit.observations",
    "helpkit.lifecycle",
    "helpkit.queries",
    "helpkit.sla",
    "helpkit.escalation",
    "helpkit.serialize",
    "helpkit.webhook_events",
    "helpkit.conditions",
    "helpkit.rules",
    "helpkit.routing",
    "helpkit.kpis",
    "helpkit.roles",
    "helpkit.satisfaction",
    "helpkit.redaction",
    "helpkit.scrubbers",
    "helpkit.knowledge",
    "helpkit.locales",
    "helpkit._checks",
    "helpkit._records",
    "helpkit._time",
    "helpkit._codec",
    "helpkit._calendar_zones",
}
FACES = {"helpkit.__main__", "helpkit.cli", "helpkit.testing"}


def test_every_module_is_in_exactly_one_layer() -> None:
    layers = [_layer_modules(layer) for layer in CONTRACTS["layers"]["layers"]]
    placed = [module for layer in layers for module in layer]
    assert len(placed) == len(set(placed))
    assert set(placed) == _top_level_modules()
    assert CONTRACTS["layers"]["exhaustive"] is True


def test_the_domain_is_the_same_in_every_contract() -> None:
    layers = [_layer_modules(layer) for layer in CONTRACTS["layers"]["layers"]]
    assert DOMAIN in layers
    assert set(CONTRACTS["pure-domain"]["source_modules"]) == DOMAIN
    assert set(CONTRACTS["no-clock-reads"]["source_modules"]) == DOMAIN


def test_the_forbidden_contracts_cover_every_module_they_should() -> None:
    everything = _top_level_modules()
    assert set(CONTRACTS["test-tools"]["source_modules"]) == everything - {"helpkit.testing"}
    assert set(CONTRACTS["postgres-driver"]["source_modules"]) == everything
    assert set(CONTRACTS["facade"]["source_modules"]) == everything - FACES - {"helpkit.desk"}
    adapters = {"helpkit.stores", "helpkit.channels", "helpkit.sinks", "helpkit.blobs"}
    ports = {"helpkit.ports", "helpkit.ids", "helpkit.errors"}
    assert set(CONTRACTS["adapters"]["forbidden_modules"]) == everything - adapters - ports - DOMAIN


def test_ruff_refuses_every_relative_import() -> None:
    tidy = PYPROJECT["tool"]["ruff"]["lint"]["flake8-tidy-imports"]
    assert tidy["ban-relative-imports"] == "all"
    assert "TID" in PYPROJECT["tool"]["ruff"]["lint"]["select"]


# -- Planting violations in a copy of the tree ----------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what ``lint-imports`` reads: the package, pyproject.toml and tools/."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(SRC, tmp_path / "src" / "helpkit", ignore=ignore)
    shutil.copytree(ROOT / "tools", tmp_path / "tools", ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _plant(tree: Path, module_file: str, code: str) -> None:
    path = tree / "src" / "helpkit" / module_file
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(before + "\n" + code, encoding="utf-8")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the copy: its helpkit comes first on the path, its config is read."""
    env = os.environ.copy()
    env["PYTHONPATH"] = str(tree / "src")
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
            "--no-cache",
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _broken(output: str) -> set[str]:
    """The names of the contracts the report says are broken."""
    return set(re.findall(r"^(.+) BROKEN(?: \(.*\))?$", output, re.MULTILINE))


def _names(*ids: str) -> set[str]:
    return {CONTRACTS[contract_id]["name"] for contract_id in ids}


@needs_import_linter
def test_the_clean_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@dataclass(frozen=True)
class Plant:
    """A violation: code added to a module, what the report must say, which contracts break.

    Others may break too, through indirect imports (a domain module that imports the desk
    imports pluggy through it): ``breaks`` lists the contracts that must.
    """

    module_file: str
    code: str
    says: tuple[str, ...]
    breaks: tuple[str, ...]


PLANTS = {
    # The four the hand checker let through (issue #10).
    "domain module imports the facade": Plant(
        "tickets.py",
        "from helpkit.desk import Helpdesk\n",
        ("helpkit.tickets -> helpkit.desk",),
        # and, through the desk, the domain would import pluggy
        ("layers", "facade", "no-cycles", "pure-domain"),
    ),
    "relative import of the facade": Plant(
        "sla/policies.py",
        "from ..desk import Helpdesk\n",
        ("helpkit.sla.policies -> helpkit.desk",),
        # and, through the desk, the domain would import pluggy
        ("layers", "facade", "no-cycles", "pure-domain"),
    ),
    "store imports the facade": Plant(
        "stores/memory.py",
        "from helpkit.desk import Helpdesk\n",
        ("helpkit.stores.memory -> helpkit.desk",),
        ("adapters", "facade"),
    ),
    "time.time() in the SLA clock": Plant(
        "sla/clock.py",
        "import time\n\n\ndef _wall_clock() -> float:\n    return time.time()\n",
        ("helpkit.sla.clock reads the clock: time.time (l.",),
        ("no-clock-reads",),
    ),
    # The other rules of the section.
    "the sweep imports the facade": Plant(
        "sweep.py",
        "from helpkit.desk import Helpdesk\n",
        ("helpkit.sweep -> helpkit.desk",),
        ("layers", "facade", "no-cycles"),
    ),
    "the built-ins import the facade when called": Plant(
        "builtins.py",
        "def _desk() -> object:\n    from helpkit.desk import Helpdesk\n\n    return Helpdesk\n",
        ("helpkit.builtins -> helpkit.desk",),
        ("facade",),
    ),
    "domain imports pluggy": Plant(
        "priority.py",
        "import pluggy\n",
        ("helpkit.priority -> pluggy",),
        ("pure-domain",),
    ),
    "domain imports urllib": Plant(
        "queries.py",
        "from urllib.request import urlopen\n",
        ("helpkit.queries -> urllib",),
        ("pure-domain",),
    ),
    "desk imports pytest": Plant(
        "desk.py",
        "import pytest\n",
        ("helpkit.desk -> pytest",),
        # and `import helpkit` would import pytest, through the desk
        ("test-tools", "test-tools-root"),
    ),
    "the package root imports helpkit.testing": Plant(
        "__init__.py",
        "from helpkit.testing.clock import FrozenClock\n",
        ("helpkit -> helpkit.testing.clock",),
        ("test-tools-root",),
    ),
    "the SQLite store imports psycopg": Plant(
        "stores/sqlite/store.py",
        "import psycopg\n",
        ("helpkit.stores.sqlite.store -> psycopg",),
        ("postgres-driver",),
    ),
    "a loop inside the domain": Plant(
        "holidays.py",
        "from helpkit.calendar import BusinessCalendar\n",
        ("No cycles are allowed in helpkit.",),
        ("no-cycles",),
    ),
    "a module in no layer": Plant(
        "newcomer.py",
        '"""A new module nobody placed."""\n',
        ("helpkit.newcomer",),
        ("layers",),
    ),
}


@needs_import_linter
@pytest.mark.parametrize("name", list(PLANTS))
def test_a_planted_violation_breaks_its_contracts(tree: Path, name: str) -> None:
    plant = PLANTS[name]
    _plant(tree, plant.module_file, plant.code)
    result = _lint_imports(tree)
    report = result.stdout + result.stderr
    assert result.returncode != 0, report
    for text in plant.says:
        assert text in report
    assert _names(*plant.breaks) <= _broken(result.stdout), report


def _ruff_tid252(tree: Path, module_file: str) -> subprocess.CompletedProcess[str]:
    """ruff's relative-import rule, configured by the copy's pyproject.toml."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "TID252"),
            str(Path("src", "helpkit", module_file)),
        ],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module_file", "code"),
    [
        ("sla/policies.py", "from ..desk import Helpdesk\n"),
        # Harmless to the layers (a sibling), still refused: every import is absolute.
        ("sla/clock.py", "from .policies import Metric\n"),
    ],
)
def test_ruff_refuses_a_planted_relative_import(tree: Path, module_file: str, code: str) -> None:
    assert _ruff_tid252(tree, module_file).returncode == 0
    _plant(tree, module_file, code)
    result = _ruff_tid252(tree, module_file)
    assert result.returncode != 0
    assert "TID252" in result.stdout
    assert f"{Path(module_file).name}:" in result.stdout


# -- The clock check reads names through the module's imports -------------------------------------


@pytest.fixture(scope="module")
def clock_contract() -> ModuleType:
    pytest.importorskip("importlinter", reason="import-linter is not installed")
    path = ROOT / "tools" / "clock_contract.py"
    spec = importlib.util.spec_from_file_location("clock_contract_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


READS = {
    "import time\ntime.time()": "time.time",
    "import time as t\nt.time()": "time.time",
    "from time import time\ntime()": "time.time",
    "from time import time as wall\nwall()": "time.time",
    "import time\ntime.monotonic()": "time.monotonic",
    "import time\ntime.perf_counter_ns()": "time.perf_counter_ns",
    "import time\ntime.localtime()": "time.localtime",
    "from datetime import datetime\ndatetime.now(UTC)": "datetime.datetime.now",
    "from datetime import datetime\ndatetime.utcnow()": "datetime.datetime.utcnow",
    "from datetime import datetime as dt\ndt.today()": "datetime.datetime.today",
    "from datetime import date\ndate.today()": "datetime.date.today",
    "import datetime\ndatetime.datetime.now()": "datetime.datetime.now",
    "import datetime as dt\ndt.date.today()": "datetime.date.today",
    "def f():\n    import time\n    return time.time()": "time.time",
    # Handing the function over reads the clock later.
    "from datetime import datetime\nfactory = datetime.now": "datetime.datetime.now",
}

NOT_READS = [
    "clock.now()",
    "self.now()",
    "ctx.clock.now()",
    "def f(now):\n    return now",
    "from datetime import time\ntime(9, 30)",
    "from datetime import datetime\ndatetime.fromtimestamp(0, UTC)",
    "from datetime import date\ndate.fromisoformat('2026-01-01')",
    "import time\ntime.localtime(0)",
    "import time\ntime.gmtime(seconds)",
    "today = calendar.today()",
]


@pytest.mark.parametrize("source", list(READS))
def test_clock_reads_are_found(clock_contract: ModuleType, source: str) -> None:
    reads = clock_contract.clock_reads(source)
    assert [read.resolved for read in reads] == [READS[source]]
    assert reads[0].line == len(source.splitlines())


@pytest.mark.parametrize("source", NOT_READS)
def test_other_calls_are_not_clock_reads(clock_contract: ModuleType, source: str) -> None:
    assert clock_contract.clock_reads(source) == []


def test_the_domain_reads_no_clock_today(clock_contract: ModuleType) -> None:
    """The contract's check on the real source, without import-linter's graph."""
    for module in sorted(DOMAIN):
        base = SRC / module.removeprefix("helpkit.")
        paths = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
        for path in paths:
            source = path.read_text(encoding="utf-8")
            assert clock_contract.clock_reads(source, str(path)) == [], path
