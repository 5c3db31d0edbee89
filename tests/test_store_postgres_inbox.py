"""The PostgreSQL store's inbox beyond the conformance suite: schema version 4, a refused
commit that leaves every table as it was, and inboxes broken on purpose that the suite's cases
must catch (a write that accepts duplicates; receipts checked and written outside the commit's
transaction, raced for by processes).

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import pytest

from helpkit.errors import DuplicateError
from helpkit.ports import ReceiptState, Store, TicketChange
from helpkit.testing.conformance import StoreConformance, change_of
from helpkit.testing.conformance.helpers import BASE_TIME, _note, _open
from helpkit.testing.conformance.inbox import receipt_of, suspension
from postgres_fixtures import fresh_schema

try:
    from helpkit.stores.postgres.store import PostgresStore
except ImportError:  # without psycopg: the fixtures skip (or fail under CI) before any use
    PostgresStore = object  # type: ignore[assignment,misc]


@pytest.fixture
def open_store(postgres_database: str) -> Iterator[Callable[..., Any]]:
    """Opens PostgresStores (of a class, in a fresh schema unless one is named); closes them
    after."""
    opened: list[Any] = []

    def make(schema: str | None = None, cls: type[Any] = PostgresStore) -> Any:
        store = cls(postgres_database, schema=schema or fresh_schema())
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _contents(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the store's schema, in key order."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                (store.schema,),
            )
        ]
        return {
            name: conn.execute(
                sql.SQL("SELECT * FROM {}.{} ORDER BY 1").format(
                    sql.Identifier(store.schema), sql.Identifier(name)
                )
            ).fetchall()
            for name in names
        }


def test_a_version_3_schema_is_upgraded_to_keep_an_inbox(
    postgres_database: str, open_store: Callable[..., Any]
) -> None:
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.schema import SCHEMA_VERSION

    schema = fresh_schema()
    old = open_store(schema)
    (written,) = old.commit([change_of(_open("t1", 0, BASE_TIME))])
    old.close()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        # Back to version 3, as a helpkit of before wrote it.
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("DROP TABLE inbox")
        conn.execute("DROP TABLE routing")
        conn.execute(  # version 7's knowledge base
            "DROP TABLE kb_categories, kb_sections, kb_articles, kb_changes, kb_docs, "
            "kb_counts, kb_terms, kb_links, kb_suggestions"
        )
        conn.execute("DROP INDEX agents_email")  # version 9's index of agents by address
        conn.execute("DROP TABLE feed_listeners")  # version 11's listeners of the feed
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    upgraded = open_store(schema)
    assert upgraded.get_ticket("t1") == written.ticket
    assert upgraded.suspended() == []
    tables = _contents(upgraded)
    assert tables["inbox"] == []
    assert tables["meta"] == [("application", "helpkit"), ("schema_version", str(SCHEMA_VERSION))]
    assert SCHEMA_VERSION >= 5
    note = receipt_of(
        change_of(_note(written.ticket, BASE_TIME)),
        "email:m1@example.com",
        state=ReceiptState.COMMENTED,
    )
    upgraded.commit([note])
    assert upgraded.receipt("email:m1@example.com") == note.receipt


def test_a_duplicate_leaves_every_table_as_it_was(open_store: Callable[..., Any]) -> None:
    store = open_store()
    (first,) = store.commit(
        [receipt_of(change_of(_open("t1", 0, BASE_TIME)), "email:m1@example.com")]
    )
    store.suspend(suspension("email:held@example.com"))
    before = _contents(store)
    for batch in (
        [receipt_of(change_of(_open("t2", 0, BASE_TIME)), "email:m1@example.com")],
        [
            change_of(_note(first.ticket, BASE_TIME)),
            receipt_of(change_of(_open("t2", 0, BASE_TIME)), "email:m1@example.com"),
        ],
    ):
        with pytest.raises(DuplicateError, match="received before"):
            store.commit(batch)
        assert _contents(store) == before
    # The number the refused commits took was given back.
    (second,) = store.commit([change_of(_open("t3", 0, BASE_TIME))])
    assert second.ticket.number == 2


# ---------------------------------------------------------------- broken inboxes


class UnguardedInboxStore(PostgresStore):
    """Checks a commit's keys and writes its receipts in transactions of their own, before
    the commit: a refused commit keeps its receipt, and writers racing for one key all find
    it free (the wait widens the window, as a busy server would, and outlasts any spread of
    the racers' start on a loaded machine)."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        from helpkit.stores.postgres.inbox import _row

        receipts = [c.receipt for c in changes if c.receipt is not None]
        for receipt in receipts:
            found = self.receipt(receipt.key)
            if found is not None and found.state is not ReceiptState.SUSPENDED:
                raise DuplicateError(f"{receipt.key} was received before")
        time.sleep(2.0)  # wider than any spread of the racers on a loaded machine
        with self._transaction() as cur:
            cur.executemany(
                "INSERT INTO inbox (key, state, received_us, body) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET state = excluded.state, body = excluded.body",
                [_row(receipt) for receipt in receipts],
            )
        written: list[TicketChange] = super().commit(
            [attrs.evolve(c, receipt=None) for c in changes]
        )
        return written


@pytest.mark.parametrize(
    "case",
    [
        "test_a_key_received_before_refuses_the_whole_commit",
        "test_a_release_replaces_the_suspended_receipt",
        "test_threads_ingesting_one_message_make_one_ticket",
    ],
)
def test_the_inbox_cases_catch_a_write_that_accepts_duplicates(
    case: str, open_store: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpkit.stores.postgres import inbox

    suite = StoreConformance()
    getattr(suite, case)(open_store())  # the real store passes
    # The upsert without its condition: it replaces whatever the key holds.
    sloppy = inbox.PUT_RECEIPTS.replace(
        f"WHERE inbox.state = '{ReceiptState.SUSPENDED.value}' ", ""
    )
    assert sloppy != inbox.PUT_RECEIPTS
    monkeypatch.setattr(inbox, "PUT_RECEIPTS", sloppy)
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(suite, case)(open_store())


def test_the_inbox_cases_catch_receipts_written_outside_the_commit(
    open_store: Callable[..., Any],
) -> None:
    suite = StoreConformance()
    suite.test_a_refused_commit_writes_no_receipt(open_store())
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        suite.test_a_refused_commit_writes_no_receipt(open_store(cls=UnguardedInboxStore))


def test_the_process_case_catches_receipts_written_outside_the_commit(
    open_store: Callable[..., Any],
) -> None:
    suite = StoreConformance()

    def elsewhere(store: Store) -> Callable[[], Store]:
        assert isinstance(store, PostgresStore)
        return functools.partial(type(store), store.conninfo, schema=store.schema)

    suite.test_processes_ingesting_one_message_make_one_ticket(open_store(), elsewhere)
    with pytest.raises(AssertionError):
        suite.test_processes_ingesting_one_message_make_one_ticket(
            open_store(cls=UnguardedInboxStore), elsewhere
        )
