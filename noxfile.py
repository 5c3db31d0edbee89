"""Developer sessions: ``nox -s tests lint typecheck docs bench``."""

from __future__ import annotations

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
    # The nats extra: tests/test_sink_nats.py publishes to the NATS server .ci/run starts.
    session.install("-e", ".[nats]", *_group("test"))
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


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    session.install("-e", ".", *_group("docs"))
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks under bench/ (peers are installed here only, never as dependencies)."""
    session.install("-e", ".", *_group("bench"))
    scripts = session.posargs or ["bench/run_all.py"]
    for script in scripts:
        session.run("python", script)
