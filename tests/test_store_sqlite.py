"""The SQLite store: conformance, migrations, foreign files, query plans and URLs."""

from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk, lifecycle
from helpkit._codec import encoder
from helpkit.errors import (
    ConflictError,
    DuplicateError,
    NotFoundError,
    SchemaError,
    StoreError,
    UnknownBackendError,
    ValidationError,
)
from helpkit.events import event_to_dict
from helpkit.lifecycle import Outcome
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.ports import Capability, Store, TicketChange
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.queries import NONE_LAST, SortOrder, TicketQuery, encode_cursor
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteStore,
    sqlite_store_factory,
)
from helpkit.stores.sqlite.encoding import _micros
from helpkit.stores.sqlite.query_sql import _select
from helpkit.testing.clock import FrozenClock
from helpkit.testing.conformance import (
    ReopenElsewhere,
    ReopenStore,
    StoreConformance,
    StoreFactory,
    change_of,
    forged,
    with_schedule,
)
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, StatusCategory, Ticket

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
AGENT = Actor.agent("a1")
_HOUR = timedelta(hours=1)


class TestSqliteStore(StoreConformance):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        counter = itertools.count()
        return lambda: SqliteStore(tmp_path / f"desk{next(counter)}.db")

    @pytest.fixture
    def reopen_store(self) -> ReopenStore:
        def reopen(store: Store) -> Store:
            assert isinstance(store, SqliteStore)
            return SqliteStore(store.path)

        return reopen

    @pytest.fixture
    def reopen_elsewhere(self) -> ReopenElsewhere:
        def elsewhere(store: Store) -> Callable[[], Store]:
            assert isinstance(store, SqliteStore)
            return functools.partial(SqliteStore, store.path)

        return elsewhere


# ---------------------------------------------------------------- helpers


def opened(ticket_id: str, number: int, **kwargs: object) -> Outcome:
    at = NOW + timedelta(minutes=number)
    return lifecycle.open_ticket(
        ticket_id=ticket_id,
        number=number,
        at=at,
        actor=AGENT,
        subject=f"Printer {ticket_id} on fire",
        requester_id="c1",
        organization_id=None,
        impact=Impact.HIGH,
        urgency=Urgency.MEDIUM,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="phone",
        first_comment=Comment(
            id=f"{ticket_id}-m1",
            author=AGENT,
            body="It smokes.",
            public=True,
            channel="phone",
            created_at=at,
        ),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    made = SqliteStore(tmp_path / "desk.db")
    try:
        yield made
    finally:
        made.close()


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def folder_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry of ``folder``: its type and, for a regular file, its bytes. A refused file
    must leave it as it was: nothing written, nothing created beside the file."""
    state: dict[str, tuple[int, bytes]] = {}
    for entry in os.scandir(folder):
        mode = entry.stat(follow_symlinks=False).st_mode
        content = Path(entry.path).read_bytes() if stat.S_ISREG(mode) else b""
        state[entry.name] = (stat.S_IFMT(mode), content)
    return state


def pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------- creating and migrating


def test_a_new_file_gets_the_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SqliteStore(path).close()
    assert pragma(path, "application_id") == APPLICATION_ID
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert pragma(path, "journal_mode") == "wal"
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert {
        "events",
        "tickets",
        "ticket_tags",
        "contacts",
        "contact_emails",
        "organizations",
        "organization_domains",
        "agents",
        "groups",
        "blobs",  # v12: attachment bytes for the sqlite: blob store
    } <= tables
    assert "ticket_numbers" not in tables  # dropped in v3: numbers are given in the commit


def test_an_empty_file_and_an_empty_sqlite_database_get_the_schema(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    SqliteStore(empty).close()
    assert pragma(empty, "user_version") == SCHEMA_VERSION

    blank = tmp_path / "blank.db"
    conn = sqlite3.connect(blank)
    conn.execute("VACUUM")  # writes a header: a valid SQLite file without tables
    conn.close()
    assert blank.stat().st_size > 0
    SqliteStore(blank).close()
    assert pragma(blank, "application_id") == APPLICATION_ID


def test_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    first = SqliteStore(path)
    first.save_agent(Agent(id="a1", name="Al"))
    first.close()
    before = path.read_bytes()
    again = SqliteStore(path)
    assert again.list_agents() == [Agent(id="a1", name="Al")]
    again.close()
    assert path.read_bytes() == before
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_a_schema_newer_than_the_code_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before, listing = snapshot(path), folder_state(tmp_path)
    with pytest.raises(SchemaError, match="newer than this helpkit") as info:
        SqliteStore(path)
    assert "Upgrade helpkit" in str(info.value)
    assert snapshot(path) == before
    assert folder_state(tmp_path) == listing


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ann')")
    conn.commit()
    conn.close()
    before, listing = snapshot(path), folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not a helpkit database"):
        SqliteStore(path)
    assert snapshot(path) == before
    assert folder_state(tmp_path) == listing
    assert pragma(path, "journal_mode") == "delete", "the foreign file was switched to WAL"


def test_a_foreign_database_with_another_application_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 12345")
    conn.close()
    before, listing = snapshot(path), folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not a helpkit database"):
        SqliteStore(path)
    assert snapshot(path) == before
    assert folder_state(tmp_path) == listing


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(os.urandom(8192))
    before, listing = snapshot(path), folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not an SQLite database"):
        SqliteStore(path)
    assert snapshot(path) == before
    assert folder_state(tmp_path) == listing
    short = tmp_path / "short.db"
    short.write_text("hello")
    listing = folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not an SQLite database"):
        SqliteStore(short)
    assert folder_state(tmp_path) == listing


def test_a_corrupt_helpkit_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    store = SqliteStore(path)
    store.save_agent(Agent(id="a1", name="Al"))
    store.close()
    data = bytearray(path.read_bytes())
    data[16:100] = b"\xff" * 84  # the header after the magic string: page size, counts...
    path.write_bytes(bytes(data))
    before, listing = snapshot(path), folder_state(tmp_path)
    with pytest.raises(SchemaError, match="may be corrupt"):
        SqliteStore(path)
    assert snapshot(path) == before
    assert folder_state(tmp_path) == listing

    # A damaged schema page behind an intact header (a file in WAL mode, as helpkit leaves it).
    damaged = tmp_path / "damaged.db"
    SqliteStore(damaged).close()
    data = bytearray(damaged.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    damaged.write_bytes(bytes(data))
    listing = folder_state(tmp_path)
    with pytest.raises(SchemaError, match="may be corrupt"):
        SqliteStore(damaged)
    assert folder_state(tmp_path) == listing


def test_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore(tmp_path / "nowhere" / "desk.db")


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="synchronous"):
        SqliteStore(tmp_path / "x.db", synchronous="OFF")
    with pytest.raises(ValidationError, match="timeout"):
        SqliteStore(tmp_path / "x.db", timeout=-1)
    with pytest.raises(ValidationError, match="memory://"):
        SqliteStore(":memory:")
    for bad in (-1, True, 2.5):
        with pytest.raises(ValidationError, match="cache"):
            SqliteStore(tmp_path / "x.db", cache=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "x.db").exists()


def test_synchronous_setting_is_applied(tmp_path: Path) -> None:
    for mode, level in (("FULL", 2), ("normal", 1)):
        store = SqliteStore(tmp_path / f"{mode}.db", synchronous=mode)
        try:
            with store._connection() as conn:
                assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
                assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
                assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        finally:
            store.close()


# ---------------------------------------------------------------- behaviour beyond the suite


def test_capabilities(store: SqliteStore) -> None:
    assert store.capabilities == {
        Capability.PERSISTENT,
        Capability.MULTIPROCESS,
        Capability.CHANGE_FEED,
        Capability.OUTBOX,
        Capability.CLAIMED_ENQUEUE,
        Capability.TIMER_STATE,
        Capability.TIMER_ROWS,
        Capability.INBOX,
        Capability.ROUTING,
        Capability.REDACTION,
        Capability.PURGE,
        Capability.KNOWLEDGE,
        Capability.NEW_CONTACTS,
        Capability.TICKET_READS,
        Capability.SETTLED_COMMIT,
        Capability.AGENT_EMAILS,
        Capability.REQUESTER_COUNTS,
        Capability.GROUP_COMMIT,
    }
    assert isinstance(store, Store)


def _calls(store: SqliteStore) -> dict[str, Callable[[], object]]:
    contact = Contact(id="c1", name="Ann", created_at=NOW, updated_at=NOW)
    return {
        "commit": lambda: store.commit([]),
        "get_ticket": lambda: store.get_ticket("t1"),
        "events": lambda: store.events("t1"),
        "query": lambda: store.query(TicketQuery()),
        "save_contact": lambda: store.save_contact(contact),
        "find_contacts": lambda: store.find_contacts("ann"),
        "save_agent": lambda: store.save_agent(Agent(id="a1", name="Al")),
        "list_groups": lambda: store.list_groups(),
    }


def test_every_call_after_close_raises_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "desk.db")
    calls = _calls(store)
    store.close()
    store.close()  # harmless
    assert "closed" in repr(store)
    for name, call in calls.items():
        with pytest.raises(StoreError, match="closed"):
            call()
        del name


def test_close_closes_connections_opened_by_other_threads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "desk.db")
    barrier = threading.Barrier(4)

    def read() -> None:
        barrier.wait()
        for _ in range(20):
            store.list_agents()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store._open, "no connection was pooled"
    store.close()
    assert not store._open
    assert not store._idle


def test_two_store_objects_on_one_file_see_each_other_and_conflict(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    one, two = SqliteStore(path), SqliteStore(path)
    try:
        (first,) = one.commit([change_of(opened("t1", 0))])
        assert first.ticket.number == 1
        assert two.get_ticket("t1") == first.ticket
        assert one.get_ticket("t1") == first.ticket  # now in one's decoded-state cache
        # The other store object numbers after it: the number is taken inside the commit.
        (other,) = two.commit([change_of(opened("t2", 0))])
        assert other.ticket.number == 2
        a = lifecycle.change_tags(first.ticket, at=NOW, actor=AGENT, add=["a"])
        b = lifecycle.change_tags(first.ticket, at=NOW, actor=AGENT, add=["b"])
        two.commit([change_of(a)])
        with pytest.raises(ConflictError, match="Reload and retry"):
            one.commit([change_of(b)])
        assert one.get_ticket("t1") == a.ticket
        assert one.query(TicketQuery(tags="a")).items == (a.ticket,)
        assert one.query(TicketQuery(tags="b")).items == ()
    finally:
        one.close()
        two.close()


def test_a_failed_commit_leaves_the_connection_usable(store: SqliteStore) -> None:
    first = opened("t1", 1)
    store.commit([change_of(first)])
    with pytest.raises(ConflictError):
        store.commit([change_of(first)])
    clash = opened("t2", first.ticket.number)
    with pytest.raises(DuplicateError):
        store.commit([change_of(clash)])
    (second,) = store.commit([change_of(opened("t2", 0))])
    assert second.ticket.number == 2
    assert store.get_ticket("t2") == second.ticket


def test_a_tag_sqlite_cannot_hold_is_refused_with_nothing_written(store: SqliteStore) -> None:
    # A lone surrogate is valid in a Python str but not in UTF-8 text: the domain refuses it,
    # and the store refuses a ticket forged past that check.
    with pytest.raises(ValidationError, match="lone surrogate"):
        opened("t1", 0, tags=["ok", "bad\udc80"])
    outcome = opened("t1", 0, tags=["ok"])
    bad = forged(outcome.ticket, tags=frozenset({"ok", "bad\udc80"}))
    with pytest.raises(ValidationError, match="lone surrogate"):
        store.commit([TicketChange(bad, outcome.events, 0)])
    with pytest.raises(NotFoundError):
        store.get_ticket("t1")
    (first,) = store.commit([change_of(opened("t2", 0))])
    assert first.ticket.number == 1


def test_tags_follow_every_change(store: SqliteStore) -> None:
    first = opened("t1", 1, tags=["vpn", "wifi"])
    retagged = lifecycle.change_tags(first.ticket, at=NOW, actor=AGENT, add=["x"], remove=["vpn"])
    store.commit([change_of(first), change_of(retagged)])
    with store._connection() as conn:
        tags = conn.execute("SELECT tag FROM ticket_tags ORDER BY tag").fetchall()
    assert [t[0] for t in tags] == ["wifi", "x"]
    assert store.query(TicketQuery(tags="vpn")).items == ()
    assert store.query(TicketQuery(tags={"wifi", "x"})).items == (retagged.ticket,)


def test_store_numbered_rows_hold_the_number_everywhere(store: SqliteStore) -> None:
    store.commit([change_of(opened("t1", 41))])
    (numbered,) = store.commit([change_of(opened("t2", 0))])
    assert numbered.ticket.number == 42
    with store._connection() as conn:
        number, state = conn.execute("SELECT number, state FROM tickets WHERE id = 't2'").fetchone()
        body = conn.execute("SELECT body FROM events WHERE ticket_id = 't2' AND seq = 1").fetchone()
    assert number == 42
    assert json.loads(state)["number"] == 42
    assert json.loads(body[0])["number"] == 42


def test_non_string_keys_are_not_found(store: SqliteStore) -> None:
    store.commit([change_of(opened("5", 5))])
    with pytest.raises(NotFoundError):
        store.get_ticket(5)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.get_ticket_by_number("5")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.events(5)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        store.get_agent(5)  # type: ignore[arg-type]


def test_search_treats_like_wildcards_as_text(store: SqliteStore) -> None:
    for ident, name in (("c1", "100% Ann"), ("c2", "Ann_Lee"), ("c3", "Annie Lee")):
        store.save_contact(Contact(id=ident, name=name, created_at=NOW, updated_at=NOW))
    assert [c.id for c in store.find_contacts("%")] == ["c1"]
    assert [c.id for c in store.find_contacts("n_l")] == ["c2"]
    assert [c.id for c in store.find_contacts("ann")] == ["c1", "c2", "c3"]


def test_unknown_event_data_is_a_schema_error(store: SqliteStore) -> None:
    store.commit([change_of(opened("t1", 1))])
    with store._connection() as conn:
        conn.execute('UPDATE events SET body = \'{"type": "from_the_future"}\'')
        conn.execute("UPDATE tickets SET state = 'not json'")
    # Read as another process would (this store keeps the states it committed).
    other = SqliteStore(store.path)
    try:
        with pytest.raises(SchemaError, match="from_the_future"):
            other.events("t1")
        with pytest.raises(SchemaError, match="JSON"):
            other.get_ticket("t1")
    finally:
        other.close()


def _set(key: str, value: object) -> Callable[[Any], Any]:
    def change(data: Any) -> Any:
        return {**data, key: value}

    return change


@pytest.mark.parametrize(
    ("table", "column", "corrupt", "read"),
    [
        ("tickets", "state", _set("created_at", "yesterday"), lambda s: s.get_ticket("t1")),
        ("tickets", "state", _set("impact", "extreme"), lambda s: s.query(TicketQuery())),
        ("tickets", "state", _set("tags", 5), lambda s: s.get_ticket_by_number(1)),
        (
            "tickets",
            "state",
            _set("updated_at", "9999-12-31T23:59:59-14:00"),  # beyond datetime's range in UTC
            lambda s: s.get_ticket("t1"),
        ),
        ("tickets", "state", lambda data: [data], lambda s: s.get_ticket("t1")),
        ("events", "body", _set("at", "2026-01-05T09:00:00"), lambda s: s.events("t1")),
        ("events", "body", _set("priority", 42), lambda s: s.events("t1")),
        ("contacts", "data", _set("emails", "ann@example.com"), lambda s: s.get_contact("c1")),
        ("contacts", "data", _set("timezone", "Mars/Olympus"), lambda s: s.find_contacts("ann")),
        ("agents", "data", _set("group_ids", 7), lambda s: s.get_agent("a1")),
        ("groups", "data", _set("tier", "top"), lambda s: s.list_groups()),
        ("organizations", "data", _set("domains", [5]), lambda s: s.get_organization("o1")),
    ],
)
def test_stored_data_of_the_wrong_shape_is_a_schema_error(
    store: SqliteStore,
    table: str,
    column: str,
    corrupt: Callable[[Any], Any],
    read: Callable[[Store], object],
) -> None:
    # Valid JSON that is not what helpkit wrote (an edit outside helpkit, a damaged file):
    # a SchemaError saying what could not be read, never a raw TypeError or ValueError.
    store.commit([change_of(opened("t1", 1))])
    store.save_contact(
        Contact(id="c1", name="Ann", emails=("ann@example.com",), created_at=NOW, updated_at=NOW)
    )
    store.save_organization(Organization(id="o1", name="Acme", created_at=NOW, updated_at=NOW))
    store.save_agent(Agent(id="a1", name="Al"))
    store.save_group(Group(id="g1", name="Desk", tier=1))
    with store._connection() as conn:
        (text,) = conn.execute(f"SELECT {column} FROM {table} LIMIT 1").fetchone()
        bad = json.dumps(corrupt(json.loads(text)))
        conn.execute(f"UPDATE {table} SET {column} = ?", (bad,))
    # Read as another process would (this store keeps the states it committed).
    other = SqliteStore(store.path)
    try:
        with pytest.raises(SchemaError, match=f"stored {table.rstrip('s')[:5]}.* cannot be read"):
            read(other)
    finally:
        other.close()


# ---------------------------------------------------------------- query plans


def _plan(store: SqliteStore, query: TicketQuery) -> str:
    sql, params = _select(query)
    with store._connection() as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


def _fill(store: SqliteStore, count: int = 60) -> None:
    changes = []
    for i in range(count):
        outcome = opened(
            f"t{i:03d}",
            i + 1,
            assignee_id=f"a{i % 3}",
            group_id=f"g{i % 2}",
            tags=["vpn"] if i % 4 == 0 else [],
        )
        due = NOW + timedelta(minutes=i - 30)
        scheduled = with_schedule(
            outcome,
            policy="gold" if i % 5 else None,
            deadline=due + timedelta(hours=1) if i % 5 else None,
            check=due if i % 5 and i % 7 else None,
        )
        changes.append(change_of(scheduled))
    store.commit(changes)


QUEUE_CATEGORIES = {StatusCategory.NEW, StatusCategory.OPEN}


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"assignee_ids": "a1", "categories": QUEUE_CATEGORIES}, "tickets_assignee_queue"),
        ({"group_ids": "g1", "categories": QUEUE_CATEGORIES}, "tickets_group_queue"),
        ({"assignee_ids": "a1", "categories": "open"}, "tickets_assignee_queue"),
        ({"group_ids": "g1", "categories": "new"}, "tickets_group_queue"),
        ({"unassigned": True, "categories": QUEUE_CATEGORIES}, "tickets_assignee_queue"),
        (
            {"unassigned": True, "group_ids": "g1", "categories": QUEUE_CATEGORIES},
            "tickets_group_queue",
        ),
        ({"categories": QUEUE_CATEGORIES}, "tickets_category_queue"),
        ({"assignee_ids": {"a1", "a2"}, "categories": QUEUE_CATEGORIES}, "tickets_assignee_queue"),
    ],
)
def test_the_queue_queries_walk_an_index_in_order(
    store: SqliteStore, filters: dict[str, object], index: str
) -> None:
    _fill(store)
    first = TicketQuery(sort=SortOrder.PRIORITY, limit=50, **filters)  # type: ignore[arg-type]
    after = encode_cursor(SortOrder.PRIORITY, (2, 0, 0, "t"))
    after_none = encode_cursor(SortOrder.PRIORITY, (2, NONE_LAST, 0, "t"))
    for query in (first, attrs.evolve(first, after=after), attrs.evolve(first, after=after_none)):
        plan = _plan(store, query)
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert "SCAN tickets" not in plan, plan


def test_the_partial_organization_index_serves_every_organization_filter(
    store: SqliteStore,
) -> None:
    # The index holds only tickets with an organization; a filter on one or several
    # organizations implies that, so SQLite may use it.
    _fill(store)
    for orgs in ("o1", {"o1", "o2"}):
        query = TicketQuery(organization_ids=orgs, sort=SortOrder.CREATED)
        plan = _plan(store, query)
        assert "tickets_organization" in plan, plan
        assert "SCAN tickets" not in plan, plan


@pytest.mark.parametrize(
    ("filters", "sort", "index"),
    [
        ({"requester_ids": "c1"}, SortOrder.CREATED_DESC, "tickets_requester"),
        ({"organization_ids": "o1"}, SortOrder.CREATED, "tickets_organization"),
        ({}, SortOrder.CREATED, "tickets_created"),
        ({}, SortOrder.UPDATED, "tickets_updated"),
    ],
)
def test_other_lists_use_an_index(
    store: SqliteStore, filters: dict[str, object], sort: SortOrder, index: str
) -> None:
    _fill(store)
    plan = _plan(store, TicketQuery(sort=sort, **filters))  # type: ignore[arg-type]
    assert index in plan, plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


SWEEP = TicketQuery(next_check_before=NOW, sort=SortOrder.NEXT_CHECK, limit=500)
BREACHING = TicketQuery(
    deadline_before=NOW + timedelta(hours=1), categories=QUEUE_CATEGORIES, sort=SortOrder.DEADLINE
)


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (SWEEP, "tickets_next_check"),
        (attrs.evolve(SWEEP, limit=3), "tickets_next_check"),
        (BREACHING, "tickets_deadline"),
        (attrs.evolve(BREACHING, categories=None), "tickets_deadline"),
        (attrs.evolve(BREACHING, categories="open"), "tickets_deadline"),
        (TicketQuery(sort=SortOrder.DEADLINE), "tickets_deadline"),
    ],
    ids=["sweep", "sweep-small-pages", "breaching", "breaching-all", "breaching-open", "deadline"],
)
def test_the_sla_queries_walk_an_index_in_order(
    store: SqliteStore, query: TicketQuery, index: str
) -> None:
    _fill(store)
    pages = [query]
    first = store.query(query)
    if first.next_cursor is not None:
        pages.append(attrs.evolve(query, after=first.next_cursor))
    assert first.items, "the data set has nothing for this query"
    for page in pages:
        plan = _plan(store, page)
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert "SCAN" not in plan, plan


def _bulk_insert(store: SqliteStore, count: int, *, first_number: int) -> None:
    """``count`` open, unassigned tickets not due for a check: half have none, half one in a
    year. Written with SQL, for speed: no query below returns them, so their state is a stub.
    """
    later = _micros(NOW + timedelta(days=365))
    with store._transaction() as conn:
        conn.execute(
            """WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO tickets (id, number, seq, status, category, priority, requester_id,
                created_us, updated_us, sla_policy, next_deadline_us, next_check_us, tags, state)
            SELECT 'bulk' || i, i, 1, 'open', 'open', 3, 'c9', ?, ?, 'gold', ?,
                CASE i % 2 WHEN 0 THEN NULL ELSE ? END, '[]', '{}' FROM n""",
            (first_number, first_number + count - 1, later, later, later + 1, later),
        )


def _cost(store: SqliteStore, query: TicketQuery) -> tuple[int, int]:
    """(SQLite virtual machine steps, rows) to run ``query``: a measure of the work done
    that, unlike a timing, does not depend on the machine."""
    sql, params = _select(query)
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    with store._connection() as conn:
        conn.set_progress_handler(tick, 1)
        try:
            rows = conn.execute(sql, params).fetchall()
        finally:
            conn.set_progress_handler(None, 1)
    return steps, len(rows)


@pytest.mark.parametrize(
    "query",
    [
        SWEEP,
        BREACHING,
        TicketQuery(assignee_ids="a1", categories=QUEUE_CATEGORIES, sort=SortOrder.PRIORITY),
        TicketQuery(group_ids="g1", categories=QUEUE_CATEGORIES, sort=SortOrder.PRIORITY),
    ],
    ids=["sweep", "breaching", "assignee-queue", "group-queue"],
)
def test_sla_and_queue_queries_cost_the_same_however_many_tickets_are_open(
    tmp_path: Path, query: TicketQuery
) -> None:
    costs = []
    for others in (100, 5000):
        store = SqliteStore(tmp_path / f"desk{others}.db")
        try:
            _fill(store)
            _bulk_insert(store, others, first_number=1000)
            costs.append(_cost(store, query))
        finally:
            store.close()
    (small, rows), (large, same_rows) = costs
    assert rows == same_rows > 0
    assert large == small, f"{small} steps with 100 other open tickets, {large} with 5000"


def test_the_sweep_reads_only_the_tickets_due(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "desk.db")
    try:
        _fill(store)
        _bulk_insert(store, 2000, first_number=1000)
        steps, due = _cost(store, SWEEP)
        more_steps, more_due = _cost(store, attrs.evolve(SWEEP, next_check_before=NOW + _HOUR))
    finally:
        store.close()
    assert 0 < due < more_due
    # Each due ticket costs about the same: the 2000 open tickets not due cost nothing.
    per_ticket = (more_steps - steps) / (more_due - due)
    assert steps <= per_ticket * (due + 2), (steps, more_steps, due, more_due)


# ---------------------------------------------------------------- schema v1 -> current


def _v1_database(path: Path, outcomes: list[Outcome], *, without_sla_keys: bool = False) -> None:
    """A helpkit file as helpkit with schema version 1 wrote it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in MIGRATIONS[0]:
            assert isinstance(statement, str)
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 1")
        for outcome in outcomes:
            ticket = outcome.ticket
            state = encoder(Ticket)(ticket)
            if without_sla_keys:  # a state written before tickets had SLA fields
                for key in ("sla_policy", "next_deadline", "next_check"):
                    del state[key]
            tags = json.dumps(sorted(ticket.tags), separators=(",", ":"))
            conn.execute(
                "INSERT INTO tickets (id, number, seq, status, category, priority, assignee_id, "
                "group_id, requester_id, organization_id, created_us, updated_us, tags, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ticket.id,
                    ticket.number,
                    ticket.seq,
                    ticket.status,
                    ticket.category.value,
                    int(ticket.priority),
                    ticket.assignee_id,
                    ticket.group_id,
                    ticket.requester_id,
                    ticket.organization_id,
                    _micros(ticket.created_at),
                    _micros(ticket.updated_at),
                    tags,
                    json.dumps(state),
                ),
            )
            conn.executemany(
                "INSERT INTO ticket_tags (ticket_id, tag) VALUES (?, ?)",
                [(ticket.id, tag) for tag in sorted(ticket.tags)],
            )
            conn.executemany(
                "INSERT INTO events (ticket_id, seq, type, at_us, actor, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (e.ticket_id, e.seq, e.TYPE, _micros(e.at), str(e.actor),
                     json.dumps(event_to_dict(e)))
                    for e in outcome.events
                ],
            )  # fmt: skip
        conn.execute("COMMIT")
    finally:
        conn.close()


def _scheduled_outcomes() -> list[Outcome]:
    outcomes = []
    for i, (deadline, check) in enumerate(
        [(-_HOUR, -_HOUR), (None, None), (2 * _HOUR, _HOUR), (_HOUR, None), (None, -2 * _HOUR)]
    ):
        outcome = opened(
            f"t{i}", i + 1, assignee_id="a1", tags=["vpn"] if i % 2 else [], group_id="g1"
        )
        outcomes.append(
            with_schedule(
                outcome,
                policy=None if deadline is None and check is None else "gold",
                deadline=None if deadline is None else NOW + deadline + timedelta(microseconds=i),
                check=None if check is None else NOW + check,
            )
        )
    return outcomes


def test_a_v1_file_is_upgraded_in_place_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    outcomes = _scheduled_outcomes()
    _v1_database(path, outcomes)
    assert pragma(path, "user_version") == 1
    store = SqliteStore(path)
    try:
        assert pragma(path, "user_version") == SCHEMA_VERSION == 13
        tickets = [o.ticket for o in outcomes]
        # v4: the events already there get feed positions, in the order of their instants.
        existing = [e for o in outcomes for e in o.events]
        fed = store.changes(limit=1000)
        assert [c.position for c in fed] == list(range(1, len(existing) + 1))
        assert [c.event for c in fed] == sorted(existing, key=lambda e: (e.at, e.ticket_id, e.seq))
        for outcome in outcomes:
            assert store.get_ticket(outcome.ticket.id) == outcome.ticket
            assert store.events(outcome.ticket.id) == list(outcome.events)
        with store._connection() as conn:
            columns = conn.execute(
                "SELECT id, sla_policy, next_deadline_us, next_check_us FROM tickets ORDER BY id"
            ).fetchall()
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            # v6: no timer states yet (the sweep folds those tickets' histories until a
            # command or a sweep commits them again).
            # (v10 keeps them in the ticket rows.)
            assert (
                conn.execute(
                    "SELECT count(*) FROM tickets WHERE timer_state IS NOT NULL"
                ).fetchone()[0]
                == 0
            )
            # v7: an empty inbox.
            assert conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
            # v9: an empty knowledge base, its full-text index in step with its documents.
            assert conn.execute("SELECT count(*) FROM kb_articles").fetchone()[0] == 0
            for kind in ("published", "current"):
                conn.execute(
                    f"INSERT INTO kb_fts_{kind} (kb_fts_{kind}) VALUES ('integrity-check')"
                )
        assert columns == [
            (
                t.id,
                t.sla_policy,
                NONE_LAST if t.next_deadline is None else _micros(t.next_deadline),
                None if t.next_check is None else _micros(t.next_check),
            )
            for t in tickets
        ]
        for query in (
            SWEEP,
            BREACHING,
            TicketQuery(sort=SortOrder.DEADLINE, limit=2),
            TicketQuery(sort=SortOrder.NEXT_CHECK, limit=2),
            TicketQuery(assignee_ids="a1", categories=QUEUE_CATEGORIES, limit=2),
            TicketQuery(tags="vpn", sort=SortOrder.PRIORITY),
        ):
            reference = MemoryStore()
            reference.commit([change_of(o) for o in outcomes])
            assert _all_pages(store, query) == _all_pages(reference, query), query
        assert "tickets_next_check" in _plan(store, SWEEP)
        # And the upgraded file takes new writes.
        noted = lifecycle.change_tags(tickets[0], at=NOW, actor=AGENT, add=["x"])
        store.commit([change_of(noted)])
        assert store.get_ticket("t0") == noted.ticket
        # v3 numbers new tickets in the commit, after the highest number the file holds.
        (numbered,) = store.commit([change_of(opened("t-new", 0))])
        assert numbered.ticket.number == max(t.number for t in tickets) + 1
        assert store.changes(after=len(existing))[-1].event.ticket_id == "t-new"
        assert store.last_position() == len(existing) + 1 + len(numbered.events)
        with store._connection() as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "ticket_numbers" not in names
    finally:
        store.close()
    again = SqliteStore(path)  # a current file: opening it again changes nothing
    again.close()
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_a_v9_file_keeps_its_timer_states_in_the_ticket_rows(tmp_path: Path) -> None:
    """v10 moves each kept timer state into its ticket's row: the sweep reads the same
    states back, and the table that held them is gone."""
    path = tmp_path / "v9.db"
    outcomes = _scheduled_outcomes()
    _v1_database(path, outcomes)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for steps in MIGRATIONS[1:9]:
            for step in steps:
                conn.execute(step) if isinstance(step, str) else step(conn)
        states = {"t0": '{"sla":["kept",0]}', "t4": '{"sla":["kept",4]}'}
        conn.executemany(
            "INSERT INTO timer_states (ticket_id, state) VALUES (?, ?)", sorted(states.items())
        )
        conn.execute("PRAGMA user_version = 9")
        conn.execute("COMMIT")
    finally:
        conn.close()
    store = SqliteStore(path)
    try:
        page, kept = store.query_states(SWEEP)
        assert [t.id for t in page] == ["t4", "t0"]  # by next check
        assert kept == [states["t4"], states["t0"]]
        with store._connection() as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert "timer_states" not in names
    finally:
        store.close()
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_a_v1_state_without_sla_fields_upgrades_to_no_schedule(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    outcomes = _scheduled_outcomes()
    _v1_database(path, outcomes, without_sla_keys=True)
    store = SqliteStore(path)
    try:
        for outcome in outcomes:
            unscheduled = attrs.evolve(
                outcome.ticket, sla_policy=None, next_deadline=None, next_check=None
            )
            assert store.get_ticket(outcome.ticket.id) == unscheduled
        assert store.query(SWEEP).items == ()
        assert store.query(BREACHING).items == ()
    finally:
        store.close()


def test_a_v1_file_that_cannot_be_upgraded_is_left_at_v1(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    _v1_database(path, _scheduled_outcomes())
    conn = sqlite3.connect(path)
    conn.execute("UPDATE tickets SET state = '{\"next_check\": 42}' WHERE id = 't3'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="bad SLA field"):
        SqliteStore(path)
    assert pragma(path, "user_version") == 1
    conn = sqlite3.connect(path)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(tickets)")]
    finally:
        conn.close()
    assert "next_check_us" not in columns


def _all_pages(store: Store, query: TicketQuery) -> list[list[str]]:
    pages = [store.query(query)]
    while pages[-1].next_cursor is not None:
        pages.append(store.query(attrs.evolve(query, after=pages[-1].next_cursor)))
    return [[t.id for t in page] for page in pages]


@pytest.mark.parametrize(
    ("order", "key"),
    [
        (SortOrder.CREATED, (2**70, "t")),
        (SortOrder.CREATED_DESC, (-(2**70), "t")),
        (SortOrder.PRIORITY, (1, -(2**70), 0, "t")),
        (SortOrder.DEADLINE, (2**64, 0, 0, "t")),
        (SortOrder.NEXT_CHECK, (NONE_LAST + 1, "t")),
        (SortOrder.NEXT_CHECK, (NONE_LAST, "t002")),
        (SortOrder.NEXT_CHECK, (-(2**70), "t")),
    ],
)
def test_cursors_beyond_the_stored_range_match_the_reference(
    store: SqliteStore, order: SortOrder, key: tuple[int | str, ...]
) -> None:
    _fill(store, 12)
    reference = MemoryStore()
    for ticket_id in (f"t{i:03d}" for i in range(12)):
        events = tuple(store.events(ticket_id))
        reference.commit([TicketChange(store.get_ticket(ticket_id), events, 0)])
    query = TicketQuery(sort=order, limit=3, after=encode_cursor(order, key))
    assert _all_pages(store, query) == _all_pages(reference, query)


# ---------------------------------------------------------------- URLs


def test_url_with_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = sqlite_store_factory("sqlite:///sub%20dir.db")
    store.close()
    assert store.path == "sub dir.db"
    assert (tmp_path / "sub dir.db").exists()


def test_url_with_an_absolute_path_and_options(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/desk.db?synchronous=normal&timeout=2.5&cache=100"
    assert url.startswith("sqlite:////")
    store = sqlite_store_factory(url)
    store.close()
    assert store.path == f"{tmp_path}/desk.db"
    assert store.synchronous == "NORMAL"
    assert store.timeout == 2.5
    assert store.cache_size == 100


@pytest.mark.parametrize("size", [0, 3])
def test_the_decoded_state_cache_is_bounded_and_never_stale(tmp_path: Path, size: int) -> None:
    store = SqliteStore(tmp_path / "desk.db", cache=size)
    try:
        changes = [change_of(opened(f"t{i}", i + 1)) for i in range(10)]
        store.commit(changes)
        for _ in range(2):
            page = store.query(TicketQuery(sort=SortOrder.CREATED, limit=50))
            assert list(page) == [c.ticket for c in changes]
            assert len(store._cache) <= size
        # A new seq is a new key: a cached state is never served for a later write.
        tagged = lifecycle.change_tags(changes[0].ticket, at=NOW, actor=AGENT, add=["x"])
        store.commit([change_of(tagged)])
        assert store.get_ticket("t0") == tagged.ticket
    finally:
        store.close()


_OFFSETS = st.timedeltas(min_value=-timedelta(hours=23), max_value=timedelta(hours=23))


@given(st.datetimes(timezones=st.just(UTC) | st.builds(timezone, _OFFSETS)))
def test_instants_are_stored_as_their_exact_microseconds_since_the_epoch(at: datetime) -> None:
    # The integer arithmetic of _micros is the timedelta division it stands for.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert _micros(at) == (at - epoch) // timedelta(microseconds=1)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=12))
def test_the_cache_keeps_only_each_tickets_committed_state(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[int, bool]]
) -> None:
    """A commit replaces its ticket's cached state (the one it moved from is not kept), and
    what the cache serves is what a store object decoding every row reads."""
    path = tmp_path_factory.mktemp("cache") / "desk.db"
    store = SqliteStore(path, cache=100)
    fresh = SqliteStore(path, cache=0)
    try:
        tickets = [
            c.ticket for c in store.commit([change_of(opened(f"t{i}", i + 1)) for i in range(3)])
        ]
        for step, (index, together) in enumerate(writes):
            outcome = lifecycle.change_tags(tickets[index], at=NOW, actor=AGENT, add=[f"x{step}"])
            changes = [change_of(outcome)]
            if together:  # a second change of the same ticket in the same commit
                again = lifecycle.change_tags(outcome.ticket, at=NOW, actor=AGENT, add=["y"])
                changes.append(change_of(again))
            tickets[index] = store.commit(changes)[-1].ticket
            held = [key for key in store._cache if key[0] == tickets[index].id]
            assert held == [(tickets[index].id, tickets[index].seq)]
            for ticket in tickets:
                assert store.get_ticket(ticket.id) == fresh.get_ticket(ticket.id) == ticket
    finally:
        store.close()
        fresh.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "no host"),
        ("sqlite:///", "names no file"),
        ("sqlite://host/desk.db", "no host"),
        ("sqlite://:memory:", "memory://"),
        ("sqlite:///desk.db?journal=delete", "unknown SQLite store option"),
        ("sqlite:///desk.db?timeout=soon", "timeout"),
        ("sqlite:///desk.db?cache=lots", "cache"),
        ("sqlite:///desk.db?cache=-5", "cache"),
        ("sqlite:///desk.db?synchronous=off", "synchronous"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        sqlite_store_factory(url)


@pytest.mark.parametrize("url", ["memory://", "postgresql://db/desk", "sqlite:desk.db", ""])
def test_other_schemes(url: str) -> None:
    with pytest.raises(UnknownBackendError, match="sqlite:///"):
        sqlite_store_factory(url)


def test_a_helpdesk_on_an_sqlite_url_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/desk.db"
    clock = FrozenClock(NOW)
    with Helpdesk(url, clock=clock, entry_points=False) as desk:
        assert isinstance(desk.store, SqliteStore)
        desk.add_agent("a1", "Al")
        ticket = desk.open_ticket(
            AGENT, requester="ann@example.com", subject="VPN down", body="Since 9:00."
        )
    with Helpdesk(url, clock=clock, entry_points=False) as desk:
        assert desk.ticket(ticket.number) == ticket
        assert [c.body for c in desk.conversation(ticket)] == ["Since 9:00."]


def test_a_v10_file_keeps_its_outbox_in_the_order_deliveries_were_added(tmp_path: Path) -> None:
    """v11 copies the outbox into a rowid table (the delivery id a unique key): every
    delivery reads back the same, pending ones stay claimable in due order, and the indexes
    are rebuilt."""
    from helpkit.testing.conformance.outbox import delivery

    source = tmp_path / "current.db"
    store = SqliteStore(source)
    try:
        outcomes = _scheduled_outcomes()
        for outcome in outcomes:
            store.commit([change_of(outcome)])
        tickets = [o.ticket for o in outcomes]
        added = [
            delivery(
                f"{tickets[i % len(tickets)].id}-d{i}",
                ticket_id=tickets[i % len(tickets)].id,
                due=datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta(minutes=7 * (5 - i)),
            )
            for i in range(6)
        ]
        store.enqueue(added, cursor="relay", position=1, expected=0)
        with store._connection() as conn:
            rows = conn.execute(
                "SELECT id, ticket_id, state, next_attempt_us, claimed_until_us, claimed_by,"
                " updated_us, body FROM outbox ORDER BY id"
            ).fetchall()
    finally:
        store.close()
    assert len(rows) == len(added)

    path = tmp_path / "v10.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for steps in MIGRATIONS[:10]:
            for step in steps:
                conn.execute(step) if isinstance(step, str) else step(conn)
        conn.executemany("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 10")
        conn.execute("COMMIT")
    finally:
        conn.close()

    upgraded = SqliteStore(path)
    try:
        assert pragma(path, "user_version") == SCHEMA_VERSION
        for one in added:
            assert upgraded.delivery(one.id) == one
        assert [d.id for d in upgraded.deliveries()] == sorted(d.id for d in added)
        claimed = upgraded.claim(
            owner="r1",
            now=datetime(2026, 3, 3, tzinfo=UTC),
            until=datetime(2026, 3, 3, 1, tzinfo=UTC),
            limit=10,
        )
        assert [d.id for d in claimed] == [
            d.id for d in sorted(added, key=lambda d: (d.next_attempt_at, d.id))
        ]
        with upgraded._connection() as check:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            names = {r[0] for r in check.execute("SELECT name FROM sqlite_master")}
        assert {"outbox_due", "outbox_state", "outbox_ticket"} <= names
        assert "outbox_v9" not in names
    finally:
        upgraded.close()
