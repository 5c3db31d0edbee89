"""The import direction of DESIGN.md, checked on the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "helpkit"

DOMAIN = {
    "_time",
    "_codec",
    "_records",
    "_checks",
    "errors",
    "calendar",
    "holidays",
    "priority",
    "people",
    "fields",
    "tickets",
    "events",
    "lifecycle",
    "queries",
    "sla",
    "escalation",
}
# Everything above the domain, in layer order; a module may import only its own layer or below.
LAYERS = [
    DOMAIN,
    {"ports", "ids"},
    {"hookspecs", "plugins", "config"},
    {"service_levels", "directory", "delivery", "conflicts"},
    {"timers"},
    {"pipeline"},
    {"sweep", "commands"},
    {"desk"},
    {"stores", "channels", "builtins", "cli", "__main__", "__init__"},
]
FORBIDDEN_IN_DOMAIN = {
    "pluggy",
    "sqlite3",
    "psycopg",
    "socket",
    "smtplib",
    "urllib",
    "pytest",
    "hypothesis",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return ".".join(rel.parts)


def _top(name: str) -> str:
    first = name.split(".")[0]
    return "calendar" if first.startswith("_calendar") else first


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, only under TYPE_CHECKING) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                guarded.add(id(child))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, id(node) in guarded) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in guarded))
    return found


SOURCES = sorted(p for p in SRC.rglob("*.py"))


def _layer(module: str) -> int:
    top = _top(module)
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    return len(LAYERS)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_imports_point_down(path: Path) -> None:
    module = _module_name(path)
    if module.startswith("testing"):
        return  # the testing face may use anything
    here = _layer(module)
    for imported, type_only in _imports(path):
        assert not imported.startswith("helpkit.testing"), f"{module} imports {imported}"
        assert _top(imported) not in {"pytest", "hypothesis"}, f"{module} imports {imported}"
        if type_only or not imported.startswith("helpkit."):
            continue
        target = imported.removeprefix("helpkit.")
        assert _layer(target) <= here, f"{module} (layer {here}) imports {imported}"


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if _top(_module_name(p)) in DOMAIN], ids=_module_name
)
def test_domain_is_pure(path: Path) -> None:
    module = _module_name(path)
    for imported, _ in _imports(path):
        assert imported.split(".")[0] not in FORBIDDEN_IN_DOMAIN, f"{module} imports {imported}"
        if imported.startswith("helpkit."):
            assert _top(imported.removeprefix("helpkit.")) in DOMAIN, (
                f"domain module {module} imports {imported}"
            )
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in {"now", "utcnow", "today"}, (
                f"domain module {module} reads the clock: {ast.unparse(node)}"
            )


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import pluggy\nfrom helpkit.desk import Helpdesk\n", encoding="utf-8")
    assert ("pluggy", False) in _imports(bad)
    assert _layer("desk") > _layer("tickets")
