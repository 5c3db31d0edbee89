"""``helpkit kb``: the knowledge base from the command line, on an SQLite file."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from cli_demo import isolate
from helpkit import Helpdesk
from helpkit.cli import main
from helpkit.tickets import Actor


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_articles_from_draft_to_search_and_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "kb", "categories", "--add-category", "Accounts", "--id", "acc")[0] == 0
    assert (
        run(capsys, "kb", "categories", "--add-section", "acc", "Passwords", "--id", "pw")[0] == 0
    )
    status, out, _ = run(
        capsys, "kb", "add", "Reset your password", "--body", "Open settings, click Reset.",
        "--section", "pw", "--id", "a1",
    )  # fmt: skip
    assert status == 0 and "draft" in out
    assert json.loads(run(capsys, "kb", "search", "password", "--json")[1]) == []
    assert run(capsys, "kb", "publish", "a1")[0] == 0
    hits = json.loads(run(capsys, "kb", "search", "reset password", "--json")[1])
    assert [h["article_id"] for h in hits] == ["a1"]
    status, out, _ = run(capsys, "kb", "suggest", "Forgot password", "--json")
    suggested = json.loads(out)
    assert suggested["suggestion_id"] and suggested["hits"][0]["article_id"] == "a1"
    status, out, _ = run(capsys, "kb", "deflection", "--json")
    assert json.loads(out)["shown"] == 1
    status, out, _ = run(capsys, "kb", "show", "a1", "--json")
    shown = json.loads(out)
    assert [c["action"] for c in shown["history"]] == ["created", "published"]
    status, out, _ = run(capsys, "kb", "categories")
    assert "acc  Accounts" in out and "pw  Passwords" in out
    assert "a1" in run(capsys, "kb", "list")[1]


def test_from_ticket_drafts_the_answer_and_links_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "init")[0] == 0
    with Helpdesk(f"sqlite:///{tmp_path / 'helpkit.db'}", entry_points=False) as desk:
        desk.add_agent("ann", "Ann", email="ann@desk.example")
        ticket = desk.open_ticket(
            Actor.system(), requester="c@example.com", subject="VPN drops", body="It drops."
        )
        desk.reply(ticket.id, Actor.agent("ann"), "Update the client to 5.2.")
        desk.resolve(ticket.id, Actor.agent("ann"))
    status, out, _ = run(capsys, "--as", "agent:ann", "kb", "from-ticket", "1", "--json")
    article = json.loads(out)
    assert status == 0 and article["versions"][0]["state"] == "draft"
    assert article["versions"][0]["variants"][0]["body"] == "Update the client to 5.2."
    status, out, _ = run(capsys, "kb", "show", article["id"], "--json")
    assert [x["ticket_id"] for x in json.loads(out)["tickets"]] == [ticket.id]


@pytest.mark.parametrize(
    "args",
    [
        ("kb", "publish", "nope"),
        ("kb", "edit", "a1"),
        ("kb", "from-ticket", "99"),
        ("kb", "search", "x", "--locale", "not a tag"),
        ("kb", "add", "T", "--section", "missing"),
        ("--as", "contact:c1", "kb", "add", "T"),
    ],
)
def test_mistakes_are_one_line_and_change_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    assert run(capsys, "init")[0] == 0
    status, out, err = run(capsys, *args)
    assert status == 2 and out == ""
    assert err.startswith("helpkit: error: ") and err.count("\n") == 1
    with contextlib.closing(sqlite3.connect(tmp_path / "helpkit.db")) as conn:
        assert conn.execute("SELECT count(*) FROM kb_articles").fetchone()[0] == 0
    assert "Traceback" not in err
