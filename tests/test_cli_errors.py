"""No traceback reaches a ``helpkit`` user: every reported case, through a real process.

Each case runs ``python -m helpkit`` in its own copy of a small demo directory (``helpkit.db``
and ``helpkit.toml``); the processes run side by side, so the whole table costs about as much
as a few of them. A case that fails must leave the directory byte-identical.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest

from helpkit.cli import main

_CURSOR = "eyJzIjogInByaW9yaXR5IiwgImsiOiBbMSwgMSwgMSwgIngiXX0="  # a --sort priority cursor


@attrs.frozen
class Case:
    args: tuple[str, ...]
    status: int
    says: str = ""  # expected in stderr (or in stdout when the status is 0)
    env: Mapping[str, str] = attrs.field(factory=dict)


# The reported cases: each through a real process.
CASES: dict[str, Case] = {
    "huge ticket number": Case(("show", "99999999999999999999"), 2, "ticket number"),
    "superscript digit": Case(("show", "²"), 2, "no ticket"),
    "float limit": Case(("contacts", "--limit", "1e20"), 2, "--limit"),
    "NUL in store URL": Case(("--store", "sqlite:///x%00y.db", "list"), 2, "NUL"),
    "infinite timeout": Case(
        ("--store", "sqlite:///helpkit.db?timeout=1e309", "list"), 2, "finite"
    ),
    "config is a folder": Case(("--config", "folder", "list"), 2, "is a directory"),
    "config is binary": Case(("--config", "binary.toml", "list"), 2, "not UTF-8"),
    "ascii stdout": Case(("orgs",), 0, "Soci\\xe9t\\xe9", {"PYTHONIOENCODING": "ascii"}),
    "ascii JSON": Case(("orgs", "--json"), 0, "Soci\\u00e9t\\u00e9", {"PYTHONIOENCODING": "ascii"}),
    "sweep at the end of time": Case(("sweep", "--now", "9999-12-31T23:59:59+00:00"), 0, "swept"),
    "sweep past the end of time": Case(("sweep", "--now", "9999-12-31T23:59:59-01:00"), 2, "range"),
    "damaged store": Case(("--store", "sqlite:///damaged.db", "list"), 1, "not an SQLite"),
    "locked store": Case(
        ("--store", "sqlite:///helpkit.db?timeout=0", "groups", "add", "x", "X"), 1, "lock"
    ),
}

# The same checks through main() in this process (quicker): the other mistakes and statuses.
IN_PROCESS: dict[str, Case] = {
    "huge limit": Case(("list", "--limit", "100000000000000000000"), 2, "between 1 and 1000"),
    "config missing": Case(("--config", "nothere.toml", "list"), 2, "not found"),
    "HELPKIT_CONFIG missing": Case(("list",), 2, "HELPKIT_CONFIG", {"HELPKIT_CONFIG": "no.toml"}),
    "unknown status filter": Case(("list", "--status", "nonsense"), 2, "unknown status"),
    "unknown assignee filter": Case(("list", "--assignee", "nobody"), 2, "no agent"),
    "unknown group filter": Case(("list", "--group", "nope"), 2, "no group"),
    "bad cursor": Case(("list", "--after", "garbage"), 2, "not a cursor"),
    "cursor of another order": Case(
        ("list", "--sort", "created", "--after", _CURSOR), 2, "--sort created"
    ),
    "negative window": Case(("list", "--breaching-within", "-1h"), 0, "SLA due"),
    "endless window": Case(("list", "--breaching-within", "99999999h"), 0, "SLA due"),
    "endless negative window": Case(("list", "--breaching-within=-99999999h"), 0, "no tickets"),
    "bad window": Case(("list", "--breaching-within", "soon"), 2, "--breaching-within"),
    "descending sort": Case(("list", "--sort", "-updated", "--limit", "2"), 0, "more:"),
    "missing store, read": Case(("--store", "sqlite:///missing.db", "list"), 2, "helpkit init"),
    "missing store, write": Case(("--store", "sqlite:///missing.db", "note", "1", "x"), 2, "init"),
    "store is a folder": Case(("--store", "sqlite:///folder", "list"), 2, "directory"),
    "unknown store": Case(("--store", "nosuch://x", "list"), 2, "no store is registered"),
    "unknown command": Case(("frobnicate",), 2, "invalid choice"),
    "unknown option": Case(("list", "--bogus"), 2, "--bogus"),
    "unknown agent acting": Case(("--as", "agent:ghost", "note", "1", "hi"), 2, "ghost"),
    "bad actor for plugins": Case(("--as", "nobody", "plugins"), 2, "actor"),
    "unknown status": Case(("status", "31", "bogus"), 2, "unknown status"),
    "refused command": Case(("merge", "1", "1"), 2, "into itself"),
    "contact changing staff": Case(("--as", "contact:c1", "groups", "add", "g", "G"), 2, "agents"),
    "naive sweep instant": Case(("sweep", "--now", "2026-11-23T09:00:00"), 2, "UTC offset"),
    "no queue owner": Case(("queue",), 2, "whose queue"),
    "init over a config": Case(
        ("--store", "sqlite:///new.db", "init", "--write-config"), 2, "already exists"
    ),
    "version": Case(("--version",), 0, "helpkit 0."),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


def _clean_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELPKIT_", "PYTHONIO"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"), **extra)
    return env


@attrs.frozen
class Run:
    status: int
    out: str
    err: str
    before: dict[str, bytes]
    after: dict[str, bytes]


def _prepare(template: Path, folder: Path) -> dict[str, bytes]:
    """A copy of the demo folder, with the odd files the cases name; its snapshot."""
    shutil.copytree(template, folder, dirs_exist_ok=True)
    (folder / "folder").mkdir()
    (folder / "binary.toml").write_bytes(bytes(range(256)))
    (folder / "damaged.db").write_bytes(b"not a database at all" * 10)
    return _snapshot(folder)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo helpdesk: helpkit.db and helpkit.toml; #31 is new."""
    folder = tmp_path_factory.mktemp("demo")
    here = os.getcwd()
    os.chdir(folder)
    try:
        assert main(["demo", "--tickets", "30", "--json"]) == 0
        opened = ["open", "--requester", "zoë@example.com", "--subject", "Printer"]
        assert main(["--as", "system:test", *opened]) == 0
    finally:
        os.chdir(here)
    return folder


@pytest.fixture(scope="module")
def runs(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every case of CASES, run side by side, each in its own copy of the demo folder."""
    home = tmp_path_factory.mktemp("home")
    started = {}
    locks = []
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp("case")
        before = _prepare(template, folder)
        if name == "locked store":  # after the snapshot: closing a file drops POSIX locks
            lock = sqlite3.connect(folder / "helpkit.db", isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            locks.append(lock)
        process = subprocess.Popen(
            [sys.executable, "-m", "helpkit", *case.args],
            cwd=folder,
            env=_clean_env(home, case.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started[name] = (process, folder, before)
    results = {}
    for name, (process, folder, before) in started.items():
        out, err = process.communicate(timeout=120)
        results[name] = Run(
            process.returncode,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            before,
            _snapshot(folder) if name != "locked store" else before,
        )
    for lock in locks:
        lock.rollback()
        lock.close()
    return results


def _check(case: Case, run: Run) -> None:
    assert "Traceback" not in run.err, run.err
    assert run.status == case.status, (run.status, run.err)
    if case.status == 0:
        assert case.says in run.out, run.out
    else:
        assert run.err.startswith("helpkit: error: "), run.err
        assert run.err.count("\n") == 1, run.err  # one line
        assert case.says in run.err, run.err
        assert run.after == run.before, "a refused command changed the folder"


@pytest.mark.parametrize("name", list(CASES))
def test_no_traceback_and_the_right_exit_status(name: str, runs: dict[str, Run]) -> None:
    _check(CASES[name], runs[name])


@pytest.mark.parametrize("name", list(IN_PROCESS))
def test_mistakes_are_one_line_and_change_nothing(
    name: str,
    template: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = IN_PROCESS[name]
    folder = tmp_path / "desk"
    before = _prepare(template, folder)
    monkeypatch.chdir(folder)
    for key in [k for k in os.environ if k.startswith("HELPKIT_")]:
        monkeypatch.delenv(key)
    for key, value in _clean_env(tmp_path, case.env).items():
        monkeypatch.setenv(key, value)
    status = main(list(case.args))
    out, err = capsys.readouterr()
    _check(case, Run(status, out, err, before, _snapshot(folder)))


def test_a_broken_pipe_ends_quietly(tmp_path: Path) -> None:
    """``helpkit list | head -1``: the reader is gone before anything is written."""
    assert main(["--store", f"sqlite:///{tmp_path / 'desk.db'}", "init"]) == 0
    store = ["--store", f"sqlite:///{tmp_path / 'desk.db'}"]
    for args in (["list"], ["--help"], ["plugins"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "helpkit", *store, *args],
            cwd=tmp_path,
            env=_clean_env(tmp_path, {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        err = process.stderr.read().decode()
        process.stderr.close()
        assert process.wait(timeout=60) == 0, err
        assert err == ""
