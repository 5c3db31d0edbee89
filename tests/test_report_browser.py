"""The demo's HTML report in a real headless browser: Debian's Chromium.

It loads with no console message (no script error, no resource refused or missing), its five
charts (the CSAT trend of the demo's surveys with them) are in the DOM Chromium built, and a
screenshot of it is a picture, not a blank page; a custom field's value that is markup stays
text there.
Without Chromium (``apt-get install chromium``) the tests are skipped, except under
``CI=true``, where they fail (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import NoReturn

import pytest

from cli_demo import make_demo
from helpkit.report_html import render_html
from report_page import tiers_and_fields_report

IN_CI = os.environ.get("CI", "").lower() == "true"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
_CONSOLE = re.compile(r":CONSOLE[:(]")
_PNG = b"\x89PNG\r\n\x1a\n"


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under ``CI=true`` (where Chromium must be there)."""
    if IN_CI:
        pytest.fail(f"{reason}: under CI=true the browser tests must run (.ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    """The ``chromium`` program (Debian's package puts it in /usr/bin)."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found is None:
        unavailable("Chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page ``helpkit demo`` writes beside its store."""
    return make_demo(tmp_path_factory.mktemp("demo"), 60) / "helpkit-report.html"


def browse(chromium: str, page: Path, tmp_path: Path, *args: str) -> tuple[str, str]:
    """Run headless Chromium on ``page`` with ``args``; its stdout and stderr."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    result = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def console_messages(stderr: str) -> list[str]:
    """The lines of Chromium's log that are messages of the page's console."""
    return [line for line in stderr.splitlines() if _CONSOLE.search(line)]


def test_the_report_renders_with_no_console_message(
    chromium: str, demo_page: Path, tmp_path: Path
) -> None:
    dom, log = browse(chromium, demo_page, tmp_path, "--dump-dom")
    assert console_messages(log) == []
    assert "net::ERR" not in log
    assert "<title>helpkit report</title>" in dom
    assert dom.count("<svg") == 5 and dom.count("</svg>") == 5
    charts = ("volume-chart", "backlog-chart", "sla-chart", "first-response-chart")
    for chart in (*charts, "satisfaction-chart"):
        assert f'aria-labelledby="{chart}-t {chart}-d"' in dom
    # The CSAT trend drew its columns: the demo's requesters rated some surveys good.
    assert 'fill="url(#csat-good)"' in dom
    # The escalation (with time per tier) and agent activity (with handle time) tables.
    assert 'data-kpi="escalation:L1:time:median"' in dom
    assert 'data-kpi="escalation:L1:time_business:p90"' in dom
    assert re.search(r'data-kpi="agent:[^"]+:handle_time"', dom)


def test_a_field_value_is_text_in_the_browser(chromium: str, tmp_path: Path) -> None:
    """Volume by a custom field whose value is markup: Chromium shows it as text (no script
    element, nothing run, no console message), in the field's table."""
    script = '<script>console.error("ran")</script>'
    page = tmp_path / "fields.html"
    page.write_text(render_html(tiers_and_fields_report(script)), encoding="utf-8")
    dom, log = browse(chromium, page, tmp_path, "--dump-dom")
    assert console_messages(log) == []
    assert "<script" not in dom
    assert "&lt;script&gt;console.error(" in dom
    assert 'id="volume-field-0"' in dom
    assert 'data-kpi="volume_by_field:form:2026-01-05:access"' in dom
    assert 'data-kpi="agent:ana:handle_time" data-value="10800.0"' in dom


def test_a_console_error_would_be_seen(chromium: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body>"
        '<img src="missing.png" alt="missing"><script>undefinedFunction();</script></body></html>',
        encoding="utf-8",
    )
    _, log = browse(chromium, broken, tmp_path, "--dump-dom")
    messages = console_messages(log)
    assert any("undefinedFunction is not defined" in line for line in messages), log[-2000:]


def _png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values the image's (decompressed) rows hold."""
    assert data.startswith(_PNG)
    width, height = struct.unpack(">II", data[16:24])
    position, idat = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            idat += data[position + 8 : position + 8 + length]
        position += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_a_screenshot_of_the_report(chromium: str, demo_page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _, log = browse(
        chromium, demo_page, tmp_path, "--window-size=1100,1600", f"--screenshot={shot}"
    )
    assert console_messages(log) == []
    width, height, values = _png_size_and_colours(shot.read_bytes())
    assert (width, height) == (1100, 1600)
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>", encoding="utf-8")
    empty = tmp_path / "blank.png"
    browse(chromium, blank, tmp_path, "--window-size=1100,1600", f"--screenshot={empty}")
    assert values > 4 * _png_size_and_colours(empty.read_bytes())[2]  # text, bars, patterns
