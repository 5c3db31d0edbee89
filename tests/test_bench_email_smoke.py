"""Smoke test of bench/bench_email.py: the helpkit worker on a small corpus gets every category
right, and the report renders. The django-helpdesk worker runs (in its own process, as the
bench runs it) only where django-helpdesk is installed (the ``bench`` dependency group)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # bench_email imports its siblings
    return _load("bench_email", monkeypatch)


@pytest.fixture
def corpus(bench: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    bench.email_corpus.write_corpus(folder, 120, 3)
    return folder


def _helpkit(
    bench: Any,
    corpus: Path,
    tmp_path: Path,
    synchronous: str,
    blobs: str = "sqlite",
    group: int = 1,
) -> Any:
    work = tmp_path / f"helpkit-{synchronous}-{blobs}-{group}"
    shutil.copytree(corpus, work / "mail", ignore=shutil.ignore_patterns("*.json"))
    job = bench.Job("helpkit", "WAL", synchronous, str(corpus), str(work), blobs=blobs, group=group)
    return bench.run_helpkit(job)


def test_the_corpus_has_every_category(bench: Any, corpus: Path) -> None:
    entries = bench.email_corpus.read_manifest(corpus)
    assert len(entries) == 120
    assert {e.category for e in entries} == set(bench.CATEGORIES)
    assert len(list(corpus.glob("*.eml"))) == 120


@pytest.mark.parametrize(("blobs", "group"), [("sqlite", 1), ("folder", 1), ("sqlite", 25)])
def test_helpkit_gets_every_category_right(
    bench: Any, corpus: Path, tmp_path: Path, blobs: str, group: int
) -> None:
    result = _helpkit(bench, corpus, tmp_path, "FULL", blobs, group)
    work = tmp_path / f"helpkit-FULL-{blobs}-{group}"
    # The attachments went where the job says: rows of the database, or the folder beside it.
    assert (work / "helpkit.db.blobs").is_dir() == (blobs == "folder")
    # Each file was deleted once its message was committed (acknowledged), as
    # django-helpdesk's loop deletes them.
    assert list((work / "mail").iterdir()) == []
    assert (result.journal_mode, result.synchronous) == ("WAL", "FULL")
    assert result.messages == 120 and result.seconds > 0
    assert result.wrong == []
    assert result.right == result.total
    assert sum(result.total.values()) == 120
    # Every message had one clear outcome: created, commented, suspended or a duplicate.
    outcomes = dict(result.outcomes)
    assert "unparseable" not in outcomes
    assert sum(outcomes.values()) == 120
    assert outcomes["duplicate"] == result.total["duplicate"]
    assert outcomes["suspended"] == result.total["auto_reply"] + result.total["bounce"]

    text = bench.render([result], 120, 3, 1.0, (0.5, 1.25))
    where = "the database" if blobs == "sqlite" else "files"
    commits = f"a group commit per {group} messages" if group > 1 else "a commit per message"
    assert f"| helpkit, blobs in {where}, {commits} | WAL + FULL |" in text
    assert "load average 0.50 at the start, 1.25 at the end" in text
    for category in bench.CATEGORIES:
        score = f"{result.total[category]}/{result.total[category]}"
        assert score in text


def test_the_judge_finds_wrong_outcomes(bench: Any) -> None:
    """The scoring is not a rubber stamp: a request never opened or opened twice, a reply on
    the wrong ticket, an auto-reply on a ticket, a duplicate held twice all count as wrong."""
    entry = bench.email_corpus.Entry
    entries = [
        entry("1.eml", "new", "a@x"),
        entry("2.eml", "new_html", "b@x"),
        entry("3.eml", "new_attachment", "c@x"),
        entry("4.eml", "reply", "d@x", thread_of="a@x"),
        entry("5.eml", "reply", "e@x", thread_of="a@x"),
        entry("9.eml", "reply", "h@x", thread_of="c@x"),
        entry("6.eml", "auto_reply", "f@x"),
        entry("7.eml", "bounce", "g@x"),
        entry("8.eml", "duplicate", "c@x", duplicate_of="3.eml"),
    ]
    held = {
        "a@x": [("t1", True)],
        "c@x": [("t3", True), ("t4", True)],  # opened twice
        "d@x": [("t1", False)],  # right
        "e@x": [("t2", False)],  # the wrong ticket
        "f@x": [("t1", False)],  # an auto-reply on a ticket
        "h@x": [("t4", False)],  # right: on one of the tickets its request opened
    }
    result = bench.Result(bench.Job("helpkit", "WAL", "FULL"))
    bench.judge(entries, held, result)
    assert result.right == {"new": 1, "reply": 2, "bounce": 1}
    assert result.total["reply"] == 3 and sum(result.total.values()) == 9
    assert [w.split()[0] for w in result.wrong] == ["2.eml", "3.eml", "5.eml", "6.eml", "8.eml"]


@pytest.mark.skipif(
    importlib.util.find_spec("helpdesk") is None, reason="django-helpdesk is not installed"
)
def test_django_helpdesk_worker_and_the_pairings(bench: Any, corpus: Path, tmp_path: Path) -> None:
    ours = _helpkit(bench, corpus, tmp_path, "FULL")
    theirs = bench.spawn(bench.Job("django", "WAL", "FULL", str(corpus)))
    assert theirs.messages == 120 and theirs.seconds > 0
    assert (theirs.journal_mode, theirs.synchronous) == ("WAL", "FULL")
    assert sum(theirs.total.values()) == 120
    text = bench.render([ours, theirs], 120, 3, 1.0)
    assert (
        "helpkit, blobs in the database, a commit per message WAL + FULL vs django-helpdesk "
        "WAL + FULL (same journal and synchronous: the fair pairing)"
    ) in text
