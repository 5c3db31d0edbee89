"""The ``helpkit`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpkit.cli import main


def test_demo_shows_the_queue_by_priority(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--tickets", "60", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows, "the demo queue is empty"
    priorities = [row["priority"] for row in rows]
    assert priorities == sorted(priorities)
    assert {row["status"] for row in rows} <= {"new", "open"}


def test_demo_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    main(["demo", "--tickets", "40", "--json", "--seed", "3"])
    first = capsys.readouterr().out
    main(["demo", "--tickets", "40", "--json", "--seed", "3"])
    assert capsys.readouterr().out == first


def test_user_mistakes_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", "nosuch://x", "demo", "--tickets", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("helpkit: error: no store is registered") and err.count("\n") == 1
    assert main(["demo", "--tickets", "0"]) == 2


def test_plugins_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert any(info["source"] == "builtin" and "memory" in info["stores"] for info in infos)


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpkit", "demo", "--tickets", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "helpkit demo: 10 tickets" in result.stdout
