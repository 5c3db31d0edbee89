"""An import-linter contract: the domain never reads the clock (docs/design.md, "Layers").

Import contracts only see imports, and the domain may import :mod:`datetime` (it computes with
instants) but must take "now" as a parameter. This contract reads the source of every module it
is given (and their submodules) and refuses any use of a function that reads the clock:
``datetime.now()``, ``datetime.utcnow()``, ``datetime.today()``, ``date.today()``,
``time.time()``, ``time.monotonic()``, ``time.perf_counter()`` and their kin, however the module
or class was imported (``import time as t; t.time()``, ``from time import time; time()``,
``from datetime import datetime as dt; dt.now()``). A name is resolved through the module's own
imports, so a method that happens to be called ``now`` on some other object (``clock.now()``) is
not a clock read. Passing the function without calling it (``default_factory=datetime.now``)
is refused too: it reads the clock later.

It is registered in ``pyproject.toml``::

    [tool.importlinter]
    contract_types = ["no_clock_reads: tools.clock_contract.NoClockReadsContract"]

and ``lint-imports`` imports it from the project's root (the working directory).
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.helpers import module_expressions_to_modules
from importlinter.domain.imports import ModuleExpression

__all__ = ["ClockRead", "NoClockReadsContract", "clock_reads"]

# Fully qualified names that read the clock. The time module's conversions (localtime, gmtime,
# ctime) read it only when called without an argument; see _NO_ARGUMENT_READS.
CLOCK_READS = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        *(
            f"time.{name}{suffix}"
            for name in ("time", "monotonic", "perf_counter", "process_time", "thread_time")
            for suffix in ("", "_ns")
        ),
        "time.clock_gettime",
        "time.clock_gettime_ns",
    }
)
_NO_ARGUMENT_READS = frozenset({"time.localtime", "time.gmtime", "time.ctime"})


@dataclass(frozen=True)
class ClockRead:
    """One clock read: where it is, how it is written and what it resolves to."""

    line: int
    written: str
    resolved: str


def _bindings(tree: ast.AST) -> dict[str, str]:
    """Local name -> fully qualified name, for every import of ``time`` or ``datetime``."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in {"time", "datetime"}:
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound[top] = top
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] in {"time", "datetime"}
        ):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _qualified(node: ast.expr, bound: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _qualified(node.value, bound)
        return None if base is None else f"{base}.{node.attr}"
    return None


def clock_reads(source: str, filename: str = "<source>") -> list[ClockRead]:
    """Every clock read in a module's source, in line order."""
    tree = ast.parse(source, filename=filename)
    bound = _bindings(tree)
    if not bound:
        return []
    called_bare: set[int] = set()  # ids of function nodes called with no argument
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not node.args and not node.keywords:
            called_bare.add(id(node.func))
    found: list[ClockRead] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name | ast.Attribute) or not isinstance(node.ctx, ast.Load):
            continue
        resolved = _qualified(node, bound)
        if resolved in CLOCK_READS or (resolved in _NO_ARGUMENT_READS and id(node) in called_bare):
            assert resolved is not None
            found.append(ClockRead(node.lineno, ast.unparse(node), resolved))
    return sorted(found, key=lambda read: (read.line, read.written))


def _source_path(module: str) -> Path | None:
    """The file of ``module``, found without importing (and so running) any of the package."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level name: finding it imports nothing
    if spec is None or spec.origin is None:
        return None
    base = Path(spec.origin).parent
    if not spec.submodule_search_locations:
        return Path(spec.origin) if not rest else None
    stem = base.joinpath(*rest)
    for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


class NoClockReadsContract(Contract):
    """The source modules (and their submodules) use no function that reads the clock.

    Configuration options:
        - source_modules: the modules to check; each one's submodules are checked too.
    """

    type_name = "no_clock_reads"

    source_modules = fields.SetField(subfield=fields.ModuleExpressionField())

    def _modules(self, graph: grimp.ImportGraph) -> Iterator[str]:
        expressions = cast(Iterable[ModuleExpression], self.source_modules)
        for module in sorted(module_expressions_to_modules(graph, expressions), key=str):
            yield module.name
            yield from sorted(graph.find_descendants(module.name))

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        reads: list[tuple[str, ClockRead]] = []
        missing: list[str] = []
        for module in self._modules(graph):
            path = _source_path(module)
            if path is None:
                missing.append(module)
                continue
            output.verbose_print(verbose, f"Looking for clock reads in {module}...")
            source = path.read_text(encoding="utf-8")
            reads.extend((module, read) for read in clock_reads(source, str(path)))
        return ContractCheck(
            kept=not reads and not missing, metadata={"reads": reads, "missing": missing}
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module in check.metadata["missing"]:
            output.print_error(f"{module}: no source file found to check.")
        for module, read in check.metadata["reads"]:
            shown = read.written
            if read.written != read.resolved:
                shown += f", that is {read.resolved}"
            output.print_error(f"{module} reads the clock: {shown} (l.{read.line})")
        output.new_line()
        output.print(
            'The domain takes "now" as a parameter (docs/design.md, "Layers and the direction'
            ' of imports"); read the clock in the pipeline or through ports.Clock.'
        )
