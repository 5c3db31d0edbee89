"""``helpkit redact``, ``erase`` and ``purge`` on an SQLite file: what they print, what they
refuse, and that the file holds no redacted byte once they return."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from cli_demo import isolate
from helpkit.cli import main
from helpkit.cli._privacy import parse_age

MARK = "OCELOT-91b2-private"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("HELPKIT_STORE", f"sqlite:///{tmp_path / 'desk.db'}")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def json_of(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    status, out, err = run(capsys, *args, "--json")
    assert status == 0, err
    return json.loads(out)


def _file_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob("desk.db*") if p.is_file())


def _open_secret(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    assert run(capsys, "init")[0] == 0
    ticket = json_of(
        capsys, "open", "--requester", "bob@example.com", "--subject", "Card", "--body", MARK
    )
    shown = json_of(capsys, "show", "1")
    (comment,) = shown["conversation"]
    return ticket["id"], comment["id"]


def test_redact_prints_what_it_rewrote_and_the_file_keeps_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, comment_id = _open_secret(capsys)
    status, out, _ = run(capsys, "redact", "1", comment_id, "--reason", "card pasted")
    assert status == 0
    assert out.startswith(f"comment {comment_id} redacted: 1 events")
    assert MARK.encode() not in _file_bytes(tmp_path)
    shown = json_of(capsys, "show", "1")
    assert [c["body"] for c in shown["conversation"]] == ["[redacted]"]
    assert shown["history"][-1]["type"] == "comment_redacted"
    assert shown["history"][-1]["reason"] == "card pasted"
    again = json_of(capsys, "redact", "#1", comment_id, "--reason", "again")
    assert (again["recorded"], again["events"]) == (False, 0)


def test_redact_refuses_without_a_reason_or_an_unknown_comment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, comment_id = _open_secret(capsys)
    status, _, err = run(capsys, "redact", "1", "nope", "--reason", "x")
    assert status != 0 and "no comment 'nope'" in err
    status, _, err = run(capsys, "redact", "1", comment_id)
    assert status == 2 and "--reason" in err
    status, _, err = run(
        capsys, "--as", "contact:someone", "redact", "1", comment_id, "--reason", "x"
    )
    assert status != 0 and "not contacts" in err
    assert MARK.encode() in _file_bytes(tmp_path)


def test_erase_tombstones_the_contact(capsys: pytest.CaptureFixture[str]) -> None:
    _open_secret(capsys)
    done = json_of(capsys, "erase", "bob@example.com", "--reason", "GDPR")
    assert len(done["tickets"]) == 1
    status, _, err = run(capsys, "erase", "bob@example.com", "--reason", "GDPR")
    assert status != 0 and "bob@example.com" in err  # no contact has the address any more
    status, out, _ = run(capsys, "erase", done["contact_id"], "--reason", "again")
    assert status == 0 and "erased: 0 comments redacted" in out


def test_purge_dry_run_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    # (What a purge deletes is tested through the facade, with a clock that moves.)
    _open_secret(capsys)
    assert run(capsys, "close", "1")[0] == 0
    assert run(capsys, "open", "--requester", "c@example.com", "--subject", "Newer")[0] == 0
    status, out, _ = run(capsys, "purge", "--older-than", "1d", "--dry-run")
    assert (status, out.splitlines()[0][:2]) == (0, "0 ")
    report = json_of(capsys, "purge", "--older-than", "90m", "--dry-run")
    assert report["tickets"] == []
    status, _, err = run(capsys, "purge", "--older-than", "0d")
    assert status == 2 and "positive age" in err


def test_ages() -> None:
    assert [parse_age(t).total_seconds() for t in ("365d", "2w", "48h", "90m", " 1d ")] == [
        365 * 86400,
        14 * 86400,
        48 * 3600,
        90 * 60,
        86400,
    ]
    for bad in ("", "1y", "d", "-1d", "0h", "1.5d"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_age(bad)
