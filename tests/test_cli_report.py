"""``helpkit report``: the KPIs of ``desk.kpis()`` as a table, ``--json`` and ``--csv``."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli_demo import isolate, make_demo
from helpkit import Helpdesk
from helpkit.cli import main
from helpkit.cli._config import desk_secret, read_config

NOW = "2030-01-01T00:00:00+00:00"
NOW_AT = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo helpdesk (helpkit.db, helpkit.toml)."""
    return make_demo(tmp_path_factory.mktemp("demo"), 30)


@pytest.fixture(autouse=True)
def _isolated(demo_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, demo_folder)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def test_json_is_the_api_s_report(capsys: pytest.CaptureFixture[str], demo_folder: Path) -> None:
    status, out, err = run(capsys, "report", "--json", "--now", NOW, "--period", "week")
    assert status == 0, err
    desk = Helpdesk(
        "sqlite:///helpkit.db",
        config=(config := read_config(demo_folder / "helpkit.toml")),
        entry_points=False,
        secret=desk_secret(config),  # the demo's: its surveys' links are signed
    )
    try:
        expected = desk.kpis(now=NOW_AT, period="week").to_data()
    finally:
        desk.shutdown()
    assert json.loads(out) == expected
    assert expected["tickets"] == 30
    assert expected["sla"]  # the demo measures SLAs: the report reads the configured policies


def test_table_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "report", "--now", NOW)
    assert status == 0, err
    assert "tickets opened: 30" in out
    assert "first response (business)" in out
    assert "backlog:" in out
    status, out, err = run(capsys, "report", "--csv", "--now", NOW, "--channel", "email")
    assert status == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["kpi", "start", "key", "value"]
    values = {(kpi, start, key): value for kpi, start, key, value in rows[1:]}
    status, out, err = run(capsys, "report", "--json", "--now", NOW, "--channel", "email")
    data = json.loads(out)
    assert values["tickets", "", ""] == str(data["tickets"])
    assert values["first_response", "", "count"] == str(data["first_response"]["count"])
    channels = {key for kpi, _, key in values if kpi == "volume_by_channel"}
    assert channels <= {"email"}


def test_time_per_tier_handle_time_and_volume_by_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "report", "--json", "--now", NOW, "--by-field", "form")
    assert status == 0, err
    data = json.loads(out)
    (by_field,) = data["volume"]["by_field"]
    assert by_field["field"] == "form"
    counted = sum(c["count"] for day in by_field["over_time"] for c in day["counts"])
    # The demo's tickets have no custom field: every one counts under "none".
    assert counted == data["tickets"]
    assert {c["key"] for day in by_field["over_time"] for c in day["counts"]} == {None}
    status, out, err = run(capsys, "report", "--csv", "--now", NOW, "--by-field", "form")
    rows = list(csv.reader(io.StringIO(out)))
    values = {(kpi, start, key): value for kpi, start, key, value in rows[1:]}
    for agent in data["agents"]:
        found = values[f"agent:{agent['agent']}", "", "handle_seconds"]
        assert float(found) == agent["handle_seconds"]
    for tier in data["escalation"]:
        found = values[f"tier_time:L{tier['tier']}", "", "count"]
        assert int(found) == tier["time"]["count"]
    assert (
        sum(int(value) for (kpi, _, _), value in values.items() if kpi == "volume_by_field:form")
        == counted
    )
    status, out, err = run(capsys, "report", "--now", NOW, "--by-field", "form")
    assert "by form:" in out
    assert "handle time" in out
    assert "time in tier" in out


def test_filters_and_dates(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "report", "--json", "--now", NOW)
    whole = json.loads(out)
    first_day = whole["volume"]["by_channel"][0]["start"]
    _, out, _ = run(capsys, "report", "--json", "--now", NOW, "--until", first_day)
    assert json.loads(out)["tickets"] == 0
    _, out, _ = run(capsys, "report", "--json", "--now", NOW, "--since", first_day)
    assert json.loads(out)["tickets"] == whole["tickets"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--csv"], "--json and --csv are exclusive"),
        (["--since", "2026-13-01"], "--since must be a date or an ISO 8601 instant"),
        (["--now", "2026-01-01T00:00:00"], "--now needs a UTC offset"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "must end after it starts"),
        (["--group", "nope"], "no group with id 'nope'"),
        (["--priority", "urgentest"], "urgentest"),
        (["--period", "month"], "invalid choice"),
    ],
)
def test_mistakes_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, _out, err = run(capsys, "report", *args)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) <= 2


def test_a_report_from_a_checkpoint_is_the_full_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    checkpoint = str(tmp_path / "kpis.projection")
    full = run(capsys, "report", "--json", "--now", NOW)
    made = run(capsys, "report", "--json", "--now", NOW, "--checkpoint", checkpoint)
    assert Path(checkpoint).exists()  # made from the change feed, then streamed
    streamed = run(capsys, "report", "--json", "--now", NOW, "--checkpoint", checkpoint)
    assert full[0] == made[0] == streamed[0] == 0
    assert json.loads(made[1]) == json.loads(streamed[1]) == json.loads(full[1])
    # A checkpoint of an earlier helpkit (format 5) is made anew.
    import pickle

    Path(checkpoint).write_bytes(pickle.dumps((5, 0, None, 0, 0)))
    again = run(capsys, "report", "--json", "--now", NOW, "--checkpoint", checkpoint)
    assert json.loads(again[1]) == json.loads(run(capsys, "report", "--json", "--now", NOW)[1])
