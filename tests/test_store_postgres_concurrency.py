"""The PostgreSQL store under concurrency, across tenants, and across lost connections.

- Tenancy: what one schema's store writes, no read of another schema's store finds; and no
  statement of the package names a schema (the search path alone picks the tenant).
- The change feed in commit order: writers in several processes and threads commit while a
  consumer polls; it must see every event exactly once, in increasing positions, skipping none
  (the sequence-gap pitfall: a transaction that took a lower position committing after one
  that took a higher position would be skipped by a consumer already past it).
- Claims: relays claiming at once in several threads never hold one delivery together.
- Connection loss: a call in flight when its server connection dies fails with StoreError; the
  next call works on a new connection.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip).
"""

from __future__ import annotations

import ast
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

from helpkit.errors import NotFoundError, StoreError
from helpkit.people import Agent, Group
from helpkit.ports import Change
from helpkit.queries import Page, TicketQuery
from helpkit.testing.conformance import change_of
from helpkit.testing.conformance.helpers import _contact, _note, _open, _organization
from helpkit.testing.conformance.outbox import delivery
from postgres_fixtures import fresh_schema

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "helpkit" / "stores" / "postgres"


@pytest.fixture
def database(postgres_database: str) -> str:
    return postgres_database


@pytest.fixture
def open_store(database: str) -> Iterator[Callable[..., Any]]:
    """Opens PostgresStores (in a fresh schema unless one is named); closes them after."""
    from helpkit.stores.postgres.store import PostgresStore

    opened: list[PostgresStore] = []

    def make(schema: str | None = None, **options: Any) -> PostgresStore:
        store = PostgresStore(database, schema=schema or fresh_schema(), **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# ---------------------------------------------------------------- tenancy


def test_no_read_of_one_tenant_finds_what_another_wrote(open_store: Callable[..., Any]) -> None:
    acme, globex = open_store(), open_store()
    opened = _open("t1", 0, NOW)
    (written,) = acme.commit([change_of(opened)])
    acme.commit([change_of(_note(written.ticket, NOW + timedelta(minutes=1)))])
    acme.save_contact(_contact("c1", "Ann", ["ann@example.com"]))
    acme.save_organization(_organization("o1", "Acme", ["acme.example"]))
    acme.save_agent(Agent(id="a1", name="Al"))
    acme.save_group(Group(id="g1", name="Desk"))
    last = acme.last_position()
    acme.enqueue([delivery("d1")], cursor="relay", position=last, expected=0)
    acme.save_cursor("nats", last)

    # Everything is there for acme...
    assert acme.query(TicketQuery()).items
    assert acme.deliveries() and acme.cursors() == {"relay": last, "nats": last}
    # ...and nothing of it for globex, through every read.
    assert globex.query(TicketQuery()) == Page((), None)
    reads: list[Callable[[], object]] = [
        lambda: globex.get_ticket("t1"),
        lambda: globex.get_ticket_by_number(1),
        lambda: globex.events("t1"),
        lambda: globex.get_contact("c1"),
        lambda: globex.contact_by_email("ann@example.com"),
        lambda: globex.get_organization("o1"),
        lambda: globex.organization_by_domain("acme.example"),
        lambda: globex.get_agent("a1"),
        lambda: globex.get_group("g1"),
        lambda: globex.delivery("d1"),
    ]
    for call in reads:
        with pytest.raises(NotFoundError):
            call()
    assert globex.find_contacts("") == []
    assert globex.find_organizations("") == []
    assert globex.list_agents() == []
    assert globex.list_groups() == []
    assert globex.changes() == []
    assert globex.last_position() == 0
    assert globex.cursor("relay") == 0
    assert globex.cursors() == {}
    assert globex.deliveries() == []
    assert globex.claim(owner="r", now=NOW, until=NOW + timedelta(minutes=5), limit=10) == []
    # Its own numbers and positions start from the beginning, its ids are its own.
    (mine,) = globex.commit([change_of(_open("t1", 0, NOW))])
    assert mine.ticket.number == 1
    assert [c.position for c in globex.changes()] == [1, 2]
    assert len(acme.events("t1")) == 3  # its opening (two events) and the note


_QUALIFIED = re.compile(
    r"\b\w+\s*\.\s*(meta|ticket_numbers|tickets|ticket_tags|events|cursors|contacts|"
    r"contact_emails|organizations|organization_domains|agents|groups|outbox|feed_listeners)\b"
)
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\b")


def _sql_texts(path: Path) -> list[str]:
    """The string constants of a module that hold SQL (f-strings with their literal parts)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                str(part.value) if isinstance(part, ast.Constant) else "{}"
                for part in node.values
                if isinstance(part, ast.Constant | ast.FormattedValue)
            )
        else:
            continue
        if _SQL.search(text):
            found.append(text)
    return found


def test_no_statement_names_a_schema() -> None:
    # The check finds a qualified name where there is one...
    assert _QUALIFIED.search("SELECT id FROM helpkit.tickets WHERE id = %s")
    assert _QUALIFIED.search("INSERT INTO acme . events (position) VALUES (1)")
    assert not _QUALIFIED.search("SELECT c.data FROM contact_emails e JOIN contacts c")
    # ...and there is none in the store's SQL: every table is the search path's.
    texts = [text for module in sorted(PACKAGE.glob("*.py")) for text in _sql_texts(module)]
    assert len(texts) > 40
    assert [text for text in texts if _QUALIFIED.search(text)] == []
    assert not any(re.search(r"\bpublic\b", text) for text in texts)


# ---------------------------------------------------------------- the change feed


WRITER_PROCESSES = 3
WRITER_THREADS = 3
TICKETS_PER_WRITER = 12
EVENTS_PER_WRITER = TICKETS_PER_WRITER * 5  # two tickets of two events, a note


def _write(store: Any, writer: str) -> int:
    """Open tickets and note on each (two commits a ticket, one of them a batch of two
    changes); the number of events committed."""
    events = 0
    for index in range(TICKETS_PER_WRITER):
        first = _open(f"{writer}-{index}a", 0, NOW)
        second = _open(f"{writer}-{index}b", 0, NOW)
        written = store.commit([change_of(first), change_of(second)])
        events += sum(len(change.events) for change in written)
        noted = store.commit([change_of(_note(written[0].ticket, NOW + timedelta(minutes=1)))])
        events += len(noted[0].events)
    return events


def writer_process(url: str, schema: str, writer: str) -> int:
    """A writer in a process of its own (run by a ProcessPoolExecutor)."""
    from helpkit.stores.postgres.store import PostgresStore

    store = PostgresStore(url, schema=schema, pool_min=0, pool_max=1)
    try:
        return _write(store, writer)
    finally:
        store.close()


def test_a_consumer_polling_during_concurrent_commits_sees_every_event_once_in_order(
    database: str, open_store: Callable[..., Any]
) -> None:
    store = open_store()
    consumer = open_store(store.schema, pool_max=1)
    seen: list[Change] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            while True:
                finished = done.is_set()  # read before the poll: the last poll sees all
                after = seen[-1].position if seen else 0
                seen.extend(consumer.changes(after=after, limit=50))
                if finished and consumer.changes(after=seen[-1].position if seen else 0) == []:
                    return
        except BaseException as exc:
            failures.append(exc)

    def write_in_thread(writer: str, results: list[int]) -> None:
        try:
            results.append(_write(store, writer))
        except BaseException as exc:
            failures.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    thread_results: list[int] = []
    threads = [
        threading.Thread(target=write_in_thread, args=(f"thread{n}", thread_results))
        for n in range(WRITER_THREADS)
    ]
    for thread in threads:
        thread.start()
    with ProcessPoolExecutor(WRITER_PROCESSES, mp_context=get_context("spawn")) as pool:
        process_results = list(
            pool.map(
                writer_process,
                [database] * WRITER_PROCESSES,
                [store.schema] * WRITER_PROCESSES,
                [f"process{n}" for n in range(WRITER_PROCESSES)],
            )
        )
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert failures == []

    committed = sum(process_results) + sum(thread_results)
    everything = store.changes(limit=100_000)
    assert len(everything) == committed == (WRITER_PROCESSES + WRITER_THREADS) * EVENTS_PER_WRITER
    # The consumer saw exactly what was committed: every event once, positions increasing.
    assert [(c.position, c.event) for c in seen] == [(c.position, c.event) for c in everything]
    positions = [c.position for c in seen]
    assert positions == sorted(set(positions))
    assert len({(c.event.ticket_id, c.event.seq) for c in seen}) == len(seen)


# ---------------------------------------------------------------- claims


def test_relays_claiming_at_once_never_hold_one_delivery_together(
    open_store: Callable[..., Any],
) -> None:
    store = open_store(pool_max=8)
    store.commit([change_of(_open("t1", 0, NOW))])
    store.enqueue(
        [delivery(f"d{n:03}") for n in range(120)],
        cursor="relay",
        position=store.last_position(),
        expected=0,
    )
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(6)

    def relay(owner: str) -> None:
        start.wait()
        mine = claimed.setdefault(owner, [])
        while True:
            batch = store.claim(owner=owner, now=NOW, until=NOW + timedelta(hours=1), limit=7)
            if not batch:
                return
            mine.extend(d.id for d in batch)

    threads = [threading.Thread(target=relay, args=(f"relay{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [d for ids in claimed.values() for d in ids]
    assert sorted(every) == [f"d{n:03}" for n in range(120)]  # each once, none left
    assert sum(1 for ids in claimed.values() if ids) > 1, "one relay took everything"
    for owner, ids in claimed.items():
        for delivery_id in ids:
            found = store.delivery(delivery_id)
            assert found.claimed_by == owner and found.claims == 1


# ---------------------------------------------------------------- connection loss


def _terminate(database: str, where: str, *, wait: bool = False) -> int:
    """Terminate the server processes of the test database that match ``where``; with
    ``wait``, return once they have ended (their connections closed by the server)."""
    import psycopg

    timeout_ms = 10_000 if wait else 0
    with psycopg.connect(database, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}",
            (timeout_ms,),
        ).fetchall()
    assert all(row[0] for row in rows), "a server process did not end in time"
    return len(rows)


def test_after_the_server_drops_every_connection_the_next_call_reconnects(
    database: str, open_store: Callable[..., Any]
) -> None:
    store = open_store(pool_min=2)
    store.commit([change_of(_open("t1", 0, NOW))])
    # Returns once the server has closed them (pg_terminate_backend only signals a process).
    assert _terminate(database, "true", wait=True) >= 1
    # The pool checks a connection before lending it: the dead ones are replaced.
    assert store.get_ticket("t1").number == 1
    (second,) = store.commit([change_of(_open("t2", 0, NOW))])
    assert second.ticket.number == 2


def test_a_commit_in_flight_when_its_connection_dies_fails_with_store_error(
    database: str, open_store: Callable[..., Any]
) -> None:
    import psycopg

    from helpkit.stores.postgres.schema import FEED_LOCK

    store = open_store()
    outcome: list[object] = []
    # Hold the store's feed lock from another session: the commit waits for it, in flight.
    with psycopg.connect(database, autocommit=True) as holder:
        holder.execute(f"SET search_path TO {store.schema}")
        with holder.transaction():
            holder.execute(FEED_LOCK)

            def commit() -> None:
                try:
                    outcome.append(store.commit([change_of(_open("t1", 0, NOW))]))
                except BaseException as exc:
                    outcome.append(exc)

            writer = threading.Thread(target=commit)
            writer.start()
            deadline = time.monotonic() + 10
            while not _terminate(database, "wait_event_type = 'Lock'"):
                assert time.monotonic() < deadline, "the commit never waited for the lock"
                time.sleep(0.02)
            writer.join()
    (error,) = outcome
    assert isinstance(error, StoreError), error
    assert "connection" in str(error)
    # Nothing of it was committed, and the next call works.
    with pytest.raises(NotFoundError):
        store.get_ticket("t1")
    (again,) = store.commit([change_of(_open("t1", 0, NOW))])
    assert again.ticket.number == 1
