"""``helpkit report --html`` and :func:`helpkit.report_html.render_html`, without a browser:
the page parses, loads nothing from outside, escapes every text, and says the report's
figures. (tests/test_report_browser.py renders it in headless Chromium.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli_demo import isolate, make_demo
from helpkit import Actor, Helpdesk
from helpkit.cli import main
from helpkit.cli._config import desk_secret, read_config
from helpkit.report_html import render_html
from helpkit.testing.clock import FrozenClock
from report_page import (
    expected_figures,
    external_references,
    read_page,
    shown_figures,
    tiers_and_fields_report,
)

NOW = "2030-01-01T00:00:00+00:00"
NOW_AT = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo helpdesk (helpkit.db, helpkit.toml, helpkit-report.html)."""
    return make_demo(tmp_path_factory.mktemp("demo"), 40)


@pytest.fixture(autouse=True)
def _isolated(demo_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, demo_folder)


@pytest.fixture
def demo_desk(demo_folder: Path) -> Iterator[Helpdesk]:
    desk = Helpdesk(
        "sqlite:///helpkit.db",
        config=(config := read_config(demo_folder / "helpkit.toml")),
        entry_points=False,
        secret=desk_secret(config),  # the demo's: its surveys' links are signed
    )
    try:
        yield desk
    finally:
        desk.shutdown()


def test_the_page_says_the_report_s_figures(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, demo_desk: Helpdesk
) -> None:
    page_file = tmp_path / "report.html"
    status = main(["report", "--html", str(page_file), "--now", NOW])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.rstrip().endswith(f"HTML report: {page_file}")
    assert "tickets opened: 40" in out  # the tables are printed as without --html
    report = demo_desk.kpis(now=NOW_AT)
    page = page_file.read_text(encoding="utf-8")
    reader = read_page(page)
    assert reader.mismatched == [] and reader.stack == [] and reader.conflicts == []
    assert reader.title == "helpkit report"
    assert report.sla and report.backlog_by_age and report.first_response.count
    assert shown_figures(reader) == expected_figures(report)
    # one chart per section: volume, backlog by age, SLA compliance, first response, CSAT trend
    assert report.satisfaction.responses  # the demo's requesters answer some surveys
    assert len(reader.svgs) == 5
    ids = {attributes.get("id") for _, attributes in reader.tags}
    for svg in reader.svgs:
        assert svg["role"] == "img"
        labels = (svg["aria-labelledby"] or "").split()
        assert len(labels) == 2 and set(labels) <= ids  # its <title> and its <desc>
    assert "Tickets opened per day" in reader.svg_titles
    assert external_references(page) == []


def test_week_volume_and_filters_reach_the_page(tmp_path: Path, demo_desk: Helpdesk) -> None:
    page_file = tmp_path / "week.html"
    args = ["report", "--html", str(page_file), "--now", NOW, "--period", "week", "--json"]
    assert main([*args, "--channel", "email", "--by-field", "form"]) == 0
    reader = read_page(page_file.read_text(encoding="utf-8"))
    report = demo_desk.kpis(now=NOW_AT, period="week", channel="email", fields=["form"])
    assert report.volume_by_field["form"]  # the demo sets no form: all "(none)"
    assert shown_figures(reader) == expected_figures(report)
    assert "Volume per week by form" in reader.text
    assert "Tickets opened per week" in reader.svg_titles


def test_the_checker_finds_external_references() -> None:
    page = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
        "<style>@import 'x.css'; body{background:url(//img.example/b.png)}</style></head>"
        '<body><script src="/app.js"></script><a href="#top">top</a>'
        '<svg><use href="http://x.example/s.svg#a"/><rect fill="url(#p)"/></svg></body></html>'
    )
    found = external_references(page)
    assert "<link>" in found and "<script>" in found and "@import" in found
    assert "link href='https://cdn.example/x.css'" in found
    assert "script src='/app.js'" in found
    assert "use href='http://x.example/s.svg#a'" in found
    assert "url(//img.example/b.png)" in found
    assert not any("#top" in item or "url(#p)" in item for item in found)


def _desk_at(now: datetime) -> Helpdesk:
    return Helpdesk("memory://", clock=FrozenClock(now), entry_points=False)


def test_every_text_is_escaped() -> None:
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)
    desk = _desk_at(start)
    try:
        bob = desk.create_contact("Bob", emails=["bob@acme.example"])
        channel = '<script>alert("x")</script>&amp;'
        desk.open_ticket(
            Actor.contact(bob.id), requester=bob, subject="s", body="b", channel=channel
        )
        report = desk.kpis(now=start + timedelta(hours=2))
    finally:
        desk.shutdown()
    page = render_html(report, title='KPIs <b>"Acme"</b> & co')
    assert "<script" not in page and "<b>" not in page
    reader = read_page(page)
    assert reader.title == 'KPIs <b>"Acme"</b> & co'
    assert f"channel {channel}" in reader.text  # the table's heading, read back as typed
    assert reader.figures[f"volume:2026-11-23:{channel}"] == ("1", None)
    assert shown_figures(reader) == expected_figures(report)
    assert external_references(page) == []


def test_an_empty_report_draws_no_empty_chart() -> None:
    now = datetime(2026, 11, 23, 9, tzinfo=UTC)
    desk = _desk_at(now)
    try:
        report = desk.kpis(now=now)
    finally:
        desk.shutdown()
    reader = read_page(render_html(report))
    assert reader.mismatched == [] and reader.stack == []
    text = "".join(reader.text)
    for message in (
        "No tickets opened.",
        "No active tickets.",
        "No SLA targets.",
        "No surveys offered.",
        "No tickets in a tier.",
        "No agent activity.",
    ):
        assert message in text
    assert len(reader.svgs) == 1  # first response: "no values", said in the chart and table
    assert shown_figures(reader) == expected_figures(report)
    assert 'id="satisfaction-chart-t"' not in render_html(report)  # no surveys, no CSAT chart


def test_a_page_it_cannot_write_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder" / "report.html"
    assert main(["report", "--html", str(missing), "--now", NOW]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("helpkit: error: --html: cannot write") and err.count("\n") == 1
    assert not missing.parent.exists()


def test_the_demo_writes_its_report_beside_its_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "desk"
    folder.mkdir()
    status = main(["--store", f"sqlite:///{folder / 'demo.db'}", "demo", "--tickets", "20"])
    out, err = capsys.readouterr()
    assert status == 0, err
    page_file = folder / "helpkit-report.html"
    assert out.rstrip().splitlines()[-1].startswith(f"The week's KPIs, charted: {page_file} ")
    reader = read_page(page_file.read_text(encoding="utf-8"))
    assert reader.figures["tickets"] == ("20", None)
    # Five charts: the demo offers satisfaction surveys, and some are answered.
    assert len(reader.svgs) == 5
    assert reader.figures["satisfaction"][1] not in (None, "")


def test_a_long_range_keeps_its_labels_apart() -> None:
    start = datetime(2026, 1, 1, 9, tzinfo=UTC)
    clock = FrozenClock(start)
    desk = Helpdesk("memory://", clock=clock, entry_points=False)
    try:
        bob = desk.create_contact("Bob", emails=["bob@acme.example"])
        for _ in range(90):
            desk.open_ticket(Actor.contact(bob.id), requester=bob, subject="s", body="b")
            clock.advance(timedelta(days=1))
        report = desk.kpis()
    finally:
        desk.shutdown()
    page = render_html(report)
    chart = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" role="img"') :]
    chart = chart[: chart.index("</svg>")]
    assert chart.count("<rect ") == 90  # a bar per day, each titled with its day and count
    assert "<title>Jan 01: 1 ticket</title>" in chart
    # no count over bars too narrow for it; a date under about one bar in six
    assert chart.count("<text ") == len(range(0, 90, round(90 / 16)))
    assert shown_figures(read_page(page)) == expected_figures(report)


def test_time_per_tier_handle_time_and_volume_by_field() -> None:
    """docs/kpis.md's second worked example on the page: X (form "access") 3 h in L1, 20 h
    (4 h business) in L2, Ana's handle time 3 h and Tom's 2 h; volume by form Monday
    access 1, billing 1, Tuesday (none) 1. A form's value is user text: escaped."""
    script = "<script>alert(1)</script>"
    report = tiers_and_fields_report(script)
    page = render_html(report)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    reader = read_page(page)
    assert reader.mismatched == [] and reader.stack == [] and reader.conflicts == []
    assert shown_figures(reader) == expected_figures(report)
    assert external_references(page) == []
    text = "".join(reader.text)
    assert "Volume per day by form" in text and script in reader.text  # its column, as typed
    figures = reader.figures
    assert figures["volume_by_field:form:2026-01-05:access"] == ("1", None)
    assert figures["volume_by_field:form:2026-01-05:billing"] == ("1", None)
    assert figures["volume_by_field:form:2026-01-05:(none)"] == ("0", None)
    assert figures["volume_by_field:form:2026-01-06:(none)"] == ("1", None)
    assert figures[f"volume_by_field:form:2026-01-06:{script}"] == ("1", None)
    # L1: X and Y, X escalated; X's 3 h there (3 h business), Y's not final.
    assert figures["escalation:L1:tickets"] == ("2", None)
    assert figures["escalation:L1:escalated"] == ("1", None)
    assert figures["escalation:L1:rate"] == ("50.0%", repr(0.5))
    assert figures["escalation:L1:time:count"] == ("1", None)
    assert figures["escalation:L1:time:median"] == ("3h00m", repr(3 * 3600.0))
    assert figures["escalation:L1:time_business:p90"] == ("3h00m", repr(3 * 3600.0))
    # L2: X 20 h (Mon 16:00 to Tue 12:00), 4 h business (16:00-17:00, 09:00-12:00).
    assert figures["escalation:L2:time:median"] == ("20h00m", repr(20 * 3600.0))
    assert figures["escalation:L2:time:p90"] == ("20h00m", repr(20 * 3600.0))
    assert figures["escalation:L2:time_business:median"] == ("4h00m", repr(4 * 3600.0))
    # Ana 3 h on X, Tom 2 h; Ben's span on Y still runs: he is not listed.
    assert figures["agent:ana:handle_time"] == ("3h00m", repr(3 * 3600.0))
    assert figures["agent:ana:handle_time_business"] == ("3h00m", repr(3 * 3600.0))
    assert figures["agent:tom:handle_time"] == ("2h00m", repr(2 * 3600.0))
    assert figures["agent:tom:solved"] == ("1", None)
    assert "agent:ben:handle_time" not in figures
    assert len(reader.svgs) == 4  # volume, backlog, SLA, first response: no new chart
