"""The ``helpkit`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from helpkit import DeskConfig, Priority, SweepReport, serialize
from helpkit.cli import main
from helpkit.cli._config import demo_config_template
from helpkit.events import Event
from helpkit.tickets import Comment, Ticket


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("HELPKIT_STORE", "HELPKIT_ACTOR", "HELPKIT_CONFIG", "HELPKIT_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no per-user configuration
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


MEM = ["--store", "memory://"]


def test_demo_shows_the_queue_by_priority(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*MEM, "demo", "--tickets", "60", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows, "the demo queue is empty"
    priorities = [row["priority"] for row in rows]
    assert priorities == sorted(priorities)
    assert {row["status"] for row in rows} <= {"new", "open"}


def test_json_output_is_the_serialize_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*MEM, "demo", "--tickets", "20", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    queue = [serialize.from_data(Ticket, row) for row in rows]
    assert [serialize.to_data(t) for t in queue] == rows
    assert all(isinstance(row["priority"], int) for row in rows)  # 1 for P1, as stored


def test_show_json_reads_back_as_values(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'desk.db'}"]
    assert main([*store, "demo", "--tickets", "10"]) == 0
    capsys.readouterr()
    assert main([*store, "show", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    ticket = serialize.from_data(Ticket, shown["ticket"])
    history = [serialize.from_data(Event, e) for e in shown["history"]]
    comments = [serialize.from_data(Comment, c) for c in shown["conversation"]]
    assert ticket.number == 1 and ticket.seq == history[-1].seq
    assert len(comments) == ticket.public_comments + ticket.internal_notes
    assert main([*store, "sweep", "--now", "2026-11-23T10:00:00+01:00", "--json"]) == 0
    report = serialize.from_data(SweepReport, json.loads(capsys.readouterr().out))
    assert report.now == datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_demo_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    main([*MEM, "demo", "--tickets", "40", "--json", "--seed", "3"])
    first = json.loads(capsys.readouterr().out)
    main([*MEM, "demo", "--tickets", "40", "--json", "--seed", "3"])
    second = json.loads(capsys.readouterr().out)
    # the ids differ (drawn at random), and so does the Message-ID made of a ticket's id
    strip = ("id", "requester_id", "organization_id", "created_at", "updated_at", "last_message_id")
    assert all(
        r["last_message_id"] is None or r["last_message_id"].startswith(f"<{r['id']}-")
        for r in first + second
    )
    assert [{k: v for k, v in r.items() if k not in strip} for r in first] == [
        {k: v for k, v in r.items() if k not in strip} for r in second
    ]


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 12, 7, 0, 25, tzinfo=UTC),  # a Monday just after midnight
        datetime(2026, 12, 8, 7, tzinfo=UTC),  # a Tuesday morning
        datetime(2026, 12, 13, 23, 59, tzinfo=UTC),  # a Sunday night
    ],
)
def test_the_demo_week_is_over_before_now(
    now: datetime, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the day and hour it runs, the simulated week (long gaps drawn) ended before
    the week of the run began: nothing it wrote is dated after now (a demo run early on a
    Monday once simulated hours past now, and its SLA figures depended on the hour)."""
    import helpkit.cli as cli

    class _Fixed(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> _Fixed:
            return cls.fromtimestamp(now.timestamp(), tz)

    monkeypatch.setattr(cli, "datetime", _Fixed)
    assert main([*MEM, "demo", "--tickets", "60", "--json", "--seed", "5"]) == 0
    rows = json.loads(capsys.readouterr().out)
    monday = now.date() - timedelta(days=now.weekday())
    this_week = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    latest = max(datetime.fromisoformat(r["updated_at"]) for r in rows)
    assert latest < this_week <= now


def test_user_mistakes_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", "nosuch://x", "demo", "--tickets", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("helpkit: error: no store is registered")
    assert err.count("\n") == 1
    assert main([*MEM, "demo", "--tickets", "0"]) == 2
    assert main([*MEM, "--as", "agent:ghost", "reply", "1", "hello"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main([*MEM, "--as", "nobody", "list"]) == 2


def test_plugins_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert any(info["source"] == "builtin" and "memory" in info["stores"] for info in infos)


def test_init_writes_a_loadable_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([*MEM, "init", "--write-config"]) == 0
    assert (tmp_path / "helpkit.toml").exists()
    # the written configuration is picked up and valid
    assert main([*MEM, "list"]) == 0
    assert main([*MEM, "init", "--write-config"]) == 2  # never overwrites


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "helpkit", "--store", "memory://", "demo", "--tickets", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "helpkit demo: 10 tickets" in result.stdout


def test_demo_writes_a_config_with_sla_and_sweeps(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*MEM, "demo", "--tickets", "80"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "helpkit.toml").exists()
    assert "SLA sweep:" in out and "SLA due" in out


def test_sweep_and_escalate_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*MEM, "init", "--write-config"]) == 0
    assert main([*MEM, "sweep", "--json"]) == 0
    capsys.readouterr()
    report_line = main([*MEM, "sweep", "--now", "2026-11-23T09:00:00+00:00"])
    assert report_line == 0
    assert capsys.readouterr().out.startswith("swept at 2026-11-23 09:00:00 UTC: 0 due")
    assert main([*MEM, "sweep", "--now", "yesterday"]) == 2
    assert main([*MEM, "sweep", "--now", "2026-11-23T09:00:00"]) == 2  # naive
    assert main([*MEM, "list", "--breaching-within", "soon"]) == 2
    assert main([*MEM, "list", "--breaching-within", "1h", "--sort", "deadline"]) == 0
    assert main([*MEM, "--as", "agent:ghost", "escalate", "1"]) == 2


def _template() -> str:
    return files("helpkit.cli").joinpath("helpkit.toml").read_text(encoding="utf-8")


def test_the_shipped_template_is_a_valid_configuration(tmp_path: Path) -> None:
    path = tmp_path / "template.toml"
    path.write_text(_template(), encoding="utf-8")
    config = DeskConfig.load(path)
    assert config.sla is not None and config.sla.names == ("standard",)
    assert config.matrix.priority("high", "high") is Priority.P1
    assert config.tiers is not None
    assert [tier.label for tier in config.tiers.tiers] == ["L1", "L2", "L3", "L4"]
    assert [rule.name for rule in config.escalation.rules] == [
        "resolution-75",
        "resolution-breach",
    ]


def test_init_and_demo_write_the_shipped_template(tmp_path: Path) -> None:
    assert main([*MEM, "init", "--write-config"]) == 0
    assert (tmp_path / "helpkit.toml").read_text(encoding="utf-8") == _template()
    (tmp_path / "helpkit.toml").unlink()
    assert main([*MEM, "demo", "--tickets", "5"]) == 0
    # The demo's: the template, with satisfaction surveys on and a secret file of its own.
    written = (tmp_path / "helpkit.toml").read_text(encoding="utf-8")
    assert written == demo_config_template() and _template() in written
    secret = tmp_path / "helpkit.secret"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) >= 32
    loaded = DeskConfig.load(tmp_path / "helpkit.toml")
    assert loaded.csat.enabled and loaded.secret_file == str(secret)
