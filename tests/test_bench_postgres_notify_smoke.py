"""Smoke test of bench/bench_postgres_notify.py: tiny, in a process of its own (its writers are
spawned processes, which import the script by its path).

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when this skips); the
bench creates and drops a database of its own there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from postgres_fixtures import DSN

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_postgres_notify.py"


def test_the_three_cases_run_and_are_reported(postgres_database: str, tmp_path: Path) -> None:
    output = tmp_path / "notify.md"
    env = {**os.environ, "HELPKIT_BENCH_POSTGRES_DSN": DSN}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = output.read_text(encoding="utf-8")
    for case in ("version 10", "version 11, nobody waiting", "version 11, a consumer waiting"):
        assert f"| {case} | " in text
    assert "| version 10 | " in text and "| 1.00x |" in text
