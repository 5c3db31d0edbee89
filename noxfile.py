"""Developer sessions: ``nox -s tests lint typecheck docs bench imap``."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


# Every Python the package claims (pyproject.toml's classifiers; tests/test_docs.py keeps the two
# lists equal). `nox -s tests` runs the suite on each one installed here (tests-3.11, ...); one
# that is not installed is skipped with a warning, or fails the run where CI is set (nox's
# default) or with --error-on-missing-interpreters. Interpreters are never downloaded.
PYTHONS = ["3.11", "3.12", "3.13"]


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


def _pyenv_installed(versions: list[str]) -> None:
    """Let nox find the claimed Pythons that pyenv installed but did not activate.

    nox finds interpreters on PATH and through pyenv's shims, which answer only for the active
    versions (`pyenv global`, `.python-version`, PYENV_VERSION). When PYENV_VERSION is unset,
    set it to the active versions followed by the newest installed patch release of each claimed
    version, so the shims find those too while `python3` stays what it was.
    """
    root = os.environ.get("PYENV_ROOT")
    if not root or os.environ.get("PYENV_VERSION") or not Path(root, "versions").is_dir():
        return
    try:
        active = subprocess.run(
            [str(Path(root, "bin", "pyenv")), "version-name"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return
    chosen = [name for name in active.split(":") if name]
    installed = [p.name for p in Path(root, "versions").iterdir() if (p / "bin").is_dir()]
    for version in versions:
        patches = [n for n in installed if re.fullmatch(rf"{re.escape(version)}\.\d+", n)]
        newest = max(patches, key=lambda n: int(n.rsplit(".", 1)[1]), default=None)
        if newest is not None and newest not in chosen:
            chosen.append(newest)
    os.environ["PYENV_VERSION"] = ":".join(chosen)


_pyenv_installed(PYTHONS)


@nox.session(python=PYTHONS, download_python="never")
def tests(session: nox.Session) -> None:
    """Run the test suite (unit, property-based, conformance, docs samples) on each Python."""
    # The nats extra: tests/test_sink_nats.py publishes to the NATS server .ci/run starts; the
    # postgres extra: the PostgreSQL store's tests use the server .ci/run starts; the email
    # extra: HTML mail is read with inscriptis (tests/test_channels_email_in.py).
    session.install("-e", ".[nats,postgres,email]", *_group("test"))
    session.run("pytest", *session.posargs)


@nox.session
def imap(session: nox.Session) -> None:
    """The IMAP tests: polling and ``helpkit mail`` against a private Dovecot that the tests
    start (``apt-get install dovecot-imapd`` first; without it they skip, or fail under CI)."""
    session.install("-e", ".", *_group("test"))
    files = ["tests/test_channels_imap.py", "tests/test_cli_mail.py"]
    session.run("pytest", "-p", "no:cacheprovider", *files, *session.posargs)


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
    # The postgres extra: bench/bench_postgres.py runs helpkit's PostgreSQL store.
    session.install("-e", ".[postgres]", *_group("bench"))
    scripts = session.posargs or ["bench/run_all.py"]
    for script in scripts:
        session.run("python", script)
