"""The SQLite store's inbox beyond the conformance suite: schema version 7, a refused commit
that leaves the file byte for byte as it was, stored receipts that are not helpkit's, the
page query's index, and inboxes broken on purpose that the suite's cases must catch (receipts
written outside the commit's transaction)."""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

import helpkit.stores.sqlite.inbox as inbox_module
from helpkit import knowledge
from helpkit.errors import DuplicateError, SchemaError
from helpkit.ports import ReceiptState, Store, TicketChange
from helpkit.stores.sqlite import SCHEMA_VERSION, SqliteStore
from helpkit.stores.sqlite.inbox import _PAGE, _PUT, _row
from helpkit.testing.conformance import ReopenStore, StoreConformance, StoreFactory, change_of
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import BASE_TIME, _note, _open
from helpkit.testing.conformance.inbox import InboxCases, receipt_of, suspension
from helpkit.tickets import Actor


def _files(path: Path) -> dict[str, bytes]:
    """The database and its write-ahead log, byte for byte (not the ``-shm`` index, which
    readers and lock holders write to as they go: it holds no data)."""
    return {
        p.name: p.read_bytes()
        for p in sorted(path.parent.iterdir())
        if p.name in (path.name, f"{path.name}-wal")
    }


def test_a_v6_file_is_upgraded_to_keep_an_inbox(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    store = SqliteStore(path)
    (written,) = store.commit([change_of(_open("t1", 0, BASE_TIME))])
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE inbox")  # what a helpkit of schema version 6 wrote
    conn.execute("DROP TABLE routing")
    conn.execute("DROP TABLE blobs")  # version 12's attachment bytes
    conn.execute("DROP INDEX agents_email")  # version 13's index of agents by address
    for table in (  # version 9's knowledge base
        "kb_fts_published", "kb_fts_current", "kb_categories", "kb_sections", "kb_articles",
        "kb_changes", "kb_docs", "kb_counts", "kb_terms", "kb_links", "kb_suggestions",
    ):  # fmt: skip
        conn.execute(f"DROP TABLE {table}")
    # Version 10 keeps timer states in the ticket rows; version 6 kept them in a table.
    conn.execute("ALTER TABLE tickets DROP COLUMN timer_state")
    conn.execute(
        "CREATE TABLE timer_states (ticket_id TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID"
    )
    conn.execute("PRAGMA user_version = 6")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    try:
        with store._connection() as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 13
            assert conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.get_ticket("t1") == written.ticket
        note = receipt_of(
            change_of(_note(written.ticket, BASE_TIME)),
            "email:m1@example.com",
            state=ReceiptState.COMMENTED,
        )
        store.commit([note])
        assert store.receipt("email:m1@example.com") == note.receipt
        # Version 9: the upgraded file keeps a knowledge base, searched through FTS5.
        draft = knowledge.create(
            "a1", title="Reset a password", body="Click reset.", locale="en",
            actor=Actor.agent("ann"), now=BASE_TIME,
        )  # fmt: skip
        store.save_article(*draft)
        store.save_article(*knowledge.publish(draft[0], actor=Actor.agent("ann"), now=BASE_TIME))
        assert [h.article_id for h in store.search_articles(["password"])] == ["a1"]
    finally:
        store.close()


def test_a_duplicate_leaves_the_file_byte_for_byte_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    store = SqliteStore(path)
    try:
        (first,) = store.commit(
            [receipt_of(change_of(_open("t1", 0, BASE_TIME)), "email:m1@example.com")]
        )
        store.suspend(suspension("email:held@example.com"))
        before = _files(path)
        for batch in (
            [receipt_of(change_of(_open("t2", 0, BASE_TIME)), "email:m1@example.com")],
            [
                change_of(_note(first.ticket, BASE_TIME)),
                receipt_of(change_of(_open("t2", 0, BASE_TIME)), "email:m1@example.com"),
            ],
        ):
            with pytest.raises(DuplicateError):
                store.commit(batch)
            assert _files(path) == before
        # Suspending a key that is taken writes nothing either.
        store.suspend(suspension("email:m1@example.com"))
        store.suspend(suspension("email:held@example.com", reason="other"))
        assert _files(path) == before
    finally:
        store.close()


@pytest.mark.parametrize(
    ("change", "read"),
    [
        (lambda data: {**data, "state": "lost"}, "receipt"),
        (lambda data: {**data, "received_at": "yesterday"}, "receipt"),
        (lambda data: [data], "suspended"),
        (
            lambda data: {
                **data,
                "message": {
                    **data["message"],
                    "attachments": [{**data["message"]["attachments"][0], "data": "not base64!"}],
                },
            },
            "suspended",
        ),
    ],
)
def test_a_stored_receipt_that_is_not_helpkits_is_a_schema_error(
    tmp_path: Path, change: Callable[[Any], Any], read: str
) -> None:
    store = SqliteStore(tmp_path / "desk.db")
    try:
        store.suspend(suspension("email:held@example.com"))
        with store._connection() as conn:
            (text,) = conn.execute("SELECT body FROM inbox").fetchone()
            bad = json.dumps(change(json.loads(text)))
            conn.execute("UPDATE inbox SET body = ?", (bad,))
        reading: dict[str, Callable[[], object]] = {
            "receipt": lambda: store.receipt("email:held@example.com"),
            "suspended": store.suspended,
        }
        read_it = reading[read]
        with pytest.raises(SchemaError, match="stored receipt cannot be read"):
            read_it()
    finally:
        store.close()


def test_the_page_of_suspended_messages_walks_the_partial_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "desk.db")
    try:
        with store._connection() as conn:
            plan = " ".join(
                str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + _PAGE, (0, "", 10))
            )
        assert "inbox_suspended" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        store.close()


# ---------------------------------------------------------------- broken inboxes


class UnguardedInboxStore(SqliteStore):
    """Checks a commit's keys and writes its receipts in transactions of their own, before
    the commit: a refused commit keeps its receipt, and writers racing for one key all find
    it free (the wait widens the window, as a busy machine would)."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        receipts = [c.receipt for c in changes if c.receipt is not None]
        for receipt in receipts:
            found = self.receipt(receipt.key)
            if found is not None and found.state is not ReceiptState.SUSPENDED:
                raise DuplicateError(f"{receipt.key} was received before")
        time.sleep(2.0)  # wider than any spread of the racers on a loaded machine
        with self._transaction() as conn:
            conn.executemany(_PUT, [_row(receipt) for receipt in receipts])
        return super().commit([attrs.evolve(c, receipt=None) for c in changes])


@pytest.mark.parametrize(
    "case",
    [
        "test_a_refused_commit_writes_no_receipt",
        "test_threads_ingesting_one_message_make_one_ticket",
    ],
)
def test_the_inbox_cases_catch_receipts_written_outside_the_commit(
    tmp_path: Path, case: str
) -> None:
    suite = StoreConformance()
    good = SqliteStore(tmp_path / "good.db")
    broken = UnguardedInboxStore(tmp_path / "broken.db")
    try:
        getattr(suite, case)(good)  # the real store passes
        with pytest.raises((AssertionError, pytest.fail.Exception)):
            getattr(suite, case)(broken)
    finally:
        good.close()
        broken.close()


def test_the_process_case_catches_receipts_written_outside_the_commit(tmp_path: Path) -> None:
    suite = StoreConformance()

    def elsewhere(store: Store) -> Callable[[], Store]:
        assert isinstance(store, SqliteStore)
        return functools.partial(type(store), store.path)

    broken = UnguardedInboxStore(tmp_path / "broken.db")
    try:
        with pytest.raises(AssertionError):
            suite.test_processes_ingesting_one_message_make_one_ticket(broken, elsewhere)
    finally:
        broken.close()


class TestInboxWithoutUpsert(InboxCases, SuiteBase):
    """The inbox cases on the statements kept for an SQLite older than 3.24, which has no
    upsert: a commit's receipt and a suspension read the key's row before writing."""

    @pytest.fixture
    def make_store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StoreFactory:
        monkeypatch.setattr(inbox_module, "_UPSERT", False)
        counter = itertools.count()
        return lambda: SqliteStore(tmp_path / f"desk{next(counter)}.db")

    @pytest.fixture
    def reopen_store(self) -> ReopenStore:
        def reopen(store: Store) -> Store:
            assert isinstance(store, SqliteStore)
            return SqliteStore(store.path)

        return reopen
