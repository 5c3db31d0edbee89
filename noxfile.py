"""Developer sessions: ``nox -s tests lint typecheck docs bench``."""

from __future__ import annotations

import re
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (unit, property-based, conformance, docs samples)."""
    session.install("-e", ".", *_group("test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and formatting) and the import contracts of docs/design.md (import-linter)."""
    # lint-imports builds the import graph of the installed helpkit: install the package too.
    session.install("-e", ".", *_group("lint"))
    paths = ["src", "tests", "bench", "tools", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the benchmarks."""
    session.install("-e", ".", *_group("typecheck"))
    session.run("mypy", "--strict")


# A default as attrs' generated __init__ spells it (`attr_dict['matrix'].default`, `NOTHING`), in
# a rendered signature: docs/_ext/attrs_signatures.py should have replaced it.
_ATTRS_INTERNALS = re.compile(
    r'class="default_value"><span class="pre">(attr_dict\[[^<]*|NOTHING)</span>'
)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors; no attrs internals in a signature."""
    session.install("-e", ".", *_group("docs"))
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    leaks = [
        f"{page.name}: {match}"
        for page in sorted(Path("docs/_build/html").glob("*.html"))
        for match in _ATTRS_INTERNALS.findall(page.read_text(encoding="utf-8"))
    ]
    if leaks:
        session.error("attrs-generated defaults in the API pages: " + "; ".join(leaks))


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks under bench/ (peers are installed here only, never as dependencies)."""
    session.install("-e", ".", *_group("bench"))
    scripts = session.posargs or ["bench/run_all.py"]
    for script in scripts:
        session.run("python", script)
