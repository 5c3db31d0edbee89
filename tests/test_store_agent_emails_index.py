"""Agents found by address through an index (SQLite schema version 13, PostgreSQL schema
version 9), beyond the conformance suite's case: on the real stores, ``agents_by_email`` stays
``list_agents()`` filtered to the addresses asked, over random saves, re-saves with a changed
address and deactivations; SQLite returns the very rows the scan of schema version 12 returned,
odd rows included; older files and schemas are upgraded with their agents found by address;
and the statement is a search of the index, not a scan of the agents.

The PostgreSQL tests need a server (tests/postgres_fixtures.py says which, and when they skip).
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.errors import SchemaError
from helpkit.people import Agent
from helpkit.stores.sqlite import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, SqliteStore
from helpkit.stores.sqlite import store as sqlite_store
from postgres_fixtures import fresh_schema

IDS = ("a0", "a1", "a2", "a3", "a4")
EMAILS = ("al@desk.example", "bea@desk.example", "cy@desk.example", "o'brien+x@desk.example")
# Addresses asked: the agents' own, one nobody has, and near misses of theirs.
ASKED = (*EMAILS, "nobody@desk.example", "AL@desk.example", "al@desk.example ", "", "5")

# The v12 statement: a scan reading every agent row's JSON. The index must find what it found.
SCAN_V12 = (
    "SELECT data FROM agents WHERE CASE WHEN json_valid(data) "
    "THEN json_extract(data, '$.email') IN (SELECT value FROM json_each(?)) ELSE 1 END "
    "ORDER BY id"
)
# Rows helpkit never writes (an edit outside helpkit, a damaged file): text that is not JSON,
# JSON that is not an object, addresses that are not text, a key given twice.
ODD_ROWS = (
    "not JSON",
    "",
    "[1, 2]",
    '"al@desk.example"',
    "{}",
    '{"email": null}',
    '{"email": 5}',
    '{"email": ["al@desk.example"]}',
    '{"email": "al@desk.example"}',
    '{"email": "bea@desk.example", "email": "al@desk.example"}',
)

saves = st.lists(
    st.tuples(
        st.sampled_from(IDS),
        st.none() | st.sampled_from(EMAILS),
        st.booleans(),  # active
    ),
    max_size=12,
)
asked = st.lists(st.lists(st.sampled_from(ASKED), max_size=4), min_size=1, max_size=4)


def _expected(agents: list[Agent], addresses: list[str]) -> list[Agent]:
    return [a for a in agents if a.email is not None and a.email in addresses]


def _plan(conn: Any, statement: str, parameter: object) -> str:
    rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}", (parameter,)).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


# ---------------------------------------------------------------- SQLite


@contextlib.contextmanager
def _sqlite_store() -> Iterator[SqliteStore]:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "desk.db")
        try:
            yield store
        finally:
            store.close()


@settings(max_examples=60, deadline=None)
@given(saves=saves, asked=asked)
def test_sqlite_agents_by_email_is_list_agents_filtered(
    saves: list[tuple[str, str | None, bool]], asked: list[list[str]]
) -> None:
    with _sqlite_store() as store:
        for step, (agent_id, email, active) in enumerate(saves):
            store.save_agent(Agent(id=agent_id, name=f"Agent {step}", email=email, active=active))
            # After every save: a re-save moves the agent to its new address (or to none).
            agents = store.list_agents()
            for addresses in asked:
                assert store.agents_by_email(addresses) == _expected(agents, addresses)


@settings(max_examples=60, deadline=None)
@given(
    saves=saves,
    odd=st.lists(st.sampled_from(ODD_ROWS), max_size=3),
    asked=asked,
)
def test_sqlite_finds_the_rows_the_v12_scan_found_odd_ones_included(
    saves: list[tuple[str, str | None, bool]], odd: list[str], asked: list[list[str]]
) -> None:
    """Written outside helpkit, rows that are not an agent's: the index finds the very rows
    the scan of schema version 12 returned (one that is not JSON whatever is asked, for its
    decoding to fail), and agents_by_email fails as list_agents does when one is found."""
    with _sqlite_store() as store:
        saved: dict[str, Agent] = {}
        for step, (agent_id, email, active) in enumerate(saves):
            saved[agent_id] = Agent(id=agent_id, name=f"Agent {step}", email=email, active=active)
            store.save_agent(saved[agent_id])
        agents = sorted(saved.values(), key=lambda a: a.id)
        with store._connection() as conn:
            conn.executemany(
                "INSERT INTO agents (id, data) VALUES (?, ?)",
                [(f"odd{i}", text) for i, text in enumerate(odd)],
            )
        for addresses in asked:
            wanted = json.dumps(addresses)
            with store._connection() as conn:
                found = conn.execute(sqlite_store._AGENTS_BY_EMAIL, (wanted,)).fetchall()
                scanned = conn.execute(SCAN_V12, (wanted,)).fetchall()
                plan = _plan(conn, sqlite_store._AGENTS_BY_EMAIL, wanted)
            assert found == scanned, addresses
            assert "SEARCH agents USING INDEX agents_email" in plan, plan
            if any(data in odd for (data,) in found):  # none of them decodes as an agent
                with pytest.raises(SchemaError):
                    store.agents_by_email(addresses)
            else:
                assert store.agents_by_email(addresses) == _expected(agents, addresses)


def test_sqlite_agents_by_email_searches_the_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "desk.db")
    try:
        for i in range(1000):
            store.save_agent(Agent(id=f"a{i:04d}", name=f"Agent {i}", email=f"a{i}@desk.example"))
        with store._connection() as conn:
            plan = _plan(conn, sqlite_store._AGENTS_BY_EMAIL, json.dumps(["a7@desk.example"]))
        assert "SEARCH agents USING INDEX agents_email" in plan, plan
        assert "SCAN agents" not in plan, plan
        assert [a.id for a in store.agents_by_email(["a7@desk.example", "a999@desk.example"])] == [
            "a0007",
            "a0999",
        ]
    finally:
        store.close()


def _v12_file(path: Path, rows: list[tuple[str, str]]) -> None:
    """A helpkit file as helpkit with schema version 12 wrote it, holding those agent rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        for steps in MIGRATIONS[:12]:
            for step in steps:
                conn.execute(step) if isinstance(step, str) else step(conn)
        conn.executemany("INSERT INTO agents (id, data) VALUES (?, ?)", rows)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA user_version = 12")
        conn.execute("COMMIT")
    finally:
        conn.close()


def _agent_rows(agents: list[Agent]) -> list[tuple[str, str]]:
    """The rows the store writes for ``agents`` (read back from a scratch store)."""
    with _sqlite_store() as scratch:
        for agent in agents:
            scratch.save_agent(agent)
        with scratch._connection() as conn:
            return [(str(i), str(d)) for i, d in conn.execute("SELECT id, data FROM agents")]


def _user_version(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return version


def _staff() -> list[Agent]:
    """300 agents, two to each of 150 addresses, a third of them inactive, and one without
    an address: the agents of the upgrade tests."""
    return [
        Agent(id=f"a{i:03d}", name=f"Agent {i}", email=f"a{i % 150}@desk.example", active=i % 3 > 0)
        for i in range(300)
    ] + [Agent(id="nomail", name="No Mail")]


def _found_as_listed(store: Any, agents: list[Agent]) -> None:
    """The upgraded store lists ``agents`` and finds them by address as the list says."""
    listed = store.list_agents()
    assert listed == sorted(agents, key=lambda a: a.id)
    for addresses in (
        ["a7@desk.example"],
        ["a0@desk.example", "a149@desk.example", "nobody@desk.example"],
        [],
    ):
        assert store.agents_by_email(addresses) == _expected(listed, addresses)
    assert [a.id for a in store.agents_by_email(["a7@desk.example"])] == ["a007", "a157"]


def _found_after_a_move(store: Any) -> None:
    """A saved agent's new address is found, its old one no longer (the index in step)."""
    store.save_agent(Agent(id="a007", name="Moved", email="moved@desk.example"))
    assert [a.id for a in store.agents_by_email(["a7@desk.example"])] == ["a157"]
    assert [a.name for a in store.agents_by_email(["moved@desk.example"])] == ["Moved"]


def test_a_v12_file_is_upgraded_with_its_agents_found_by_address(tmp_path: Path) -> None:
    agents = _staff()
    path = tmp_path / "v12.db"
    _v12_file(path, _agent_rows(agents))
    assert _user_version(path) == 12
    store = SqliteStore(path)
    try:
        assert _user_version(path) == SCHEMA_VERSION == 13
        _found_as_listed(store, agents)
        with store._connection() as conn:
            plan = _plan(conn, sqlite_store._AGENTS_BY_EMAIL, json.dumps(["a7@desk.example"]))
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert "SEARCH agents USING INDEX agents_email" in plan, plan
        # The upgraded file keeps its index in step with new saves.
        _found_after_a_move(store)
    finally:
        store.close()


def test_a_v12_file_with_an_agent_row_that_is_not_json_is_upgraded(tmp_path: Path) -> None:
    """The index's guard: a row that is not JSON does not stop the upgrade (json_extract
    would fail building the index), and is found as the v12 scan found it, for its decoding
    to fail as list_agents' does."""
    path = tmp_path / "v12.db"
    rows = _agent_rows([Agent(id="a1", name="Al", email="al@desk.example")])
    _v12_file(path, [*rows, ("broken", "{not JSON")])
    store = SqliteStore(path)
    try:
        assert _user_version(path) == SCHEMA_VERSION
        with pytest.raises(SchemaError, match="not valid JSON"):
            store.list_agents()
        with pytest.raises(SchemaError, match="not valid JSON"):
            store.agents_by_email(["al@desk.example"])
        with store._connection() as conn:
            conn.execute("DELETE FROM agents WHERE id = 'broken'")
        assert [a.id for a in store.agents_by_email(["al@desk.example"])] == ["a1"]
    finally:
        store.close()


# ---------------------------------------------------------------- PostgreSQL


def _pg_store(database: str, schema: str) -> Any:
    from helpkit.stores.postgres.store import PostgresStore

    return PostgresStore(database, schema=schema, pool_max=2)


@contextlib.contextmanager
def _pg_connection(database: str, schema: str) -> Iterator[Any]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        yield conn


def _pg_plan(database: str, schema: str, addresses: list[str]) -> str:
    from helpkit.stores.postgres import store as postgres_store

    with _pg_connection(database, schema) as conn:
        rows = conn.execute(f"EXPLAIN {postgres_store._AGENTS_BY_EMAIL}", (addresses,))
        return " | ".join(str(row[0]).strip() for row in rows)


@settings(max_examples=25, deadline=None)
@given(saves=saves, asked=asked)
def test_postgres_agents_by_email_is_list_agents_filtered(
    postgres_database: str, saves: list[tuple[str, str | None, bool]], asked: list[list[str]]
) -> None:
    store = _pg_store(postgres_database, fresh_schema())
    try:
        for step, (agent_id, email, active) in enumerate(saves):
            store.save_agent(Agent(id=agent_id, name=f"Agent {step}", email=email, active=active))
            agents = store.list_agents()
            for addresses in asked:
                assert store.agents_by_email(addresses) == _expected(agents, addresses)
    finally:
        store.close()


def test_postgres_agents_by_email_searches_the_index(postgres_database: str) -> None:
    schema = fresh_schema()
    store = _pg_store(postgres_database, schema)
    try:
        with _pg_connection(postgres_database, schema) as conn:
            conn.execute(  # 1,000 agents as save_agent writes them, in one statement
                "INSERT INTO agents (id, data) SELECT 'a' || lpad(i::text, 4, '0'), "
                "json_build_object('id', 'a' || lpad(i::text, 4, '0'), 'name', 'Agent ' || i, "
                "'email', 'a' || i || '@desk.example')::text FROM generate_series(0, 999) AS i"
            )
        plan = _pg_plan(postgres_database, schema, ["a7@desk.example"])
        assert re.search(r"Index Scan (using|on) agents_email", plan), plan
        assert "Seq Scan" not in plan, plan
        found = store.agents_by_email(["a7@desk.example", "a999@desk.example"])
        assert [a.id for a in found] == ["a0007", "a0999"]
    finally:
        store.close()


def _v8_schema(database: str, schema: str, rows: list[tuple[str, str]]) -> None:
    """A helpkit schema as helpkit with schema version 8 wrote it, holding those agent rows."""
    from helpkit.stores.postgres.schema import MIGRATIONS, migrate

    with _pg_connection(database, schema) as conn:
        migrate(conn, schema, MIGRATIONS[:8])
        conn.cursor().executemany("INSERT INTO agents (id, data) VALUES (%s, %s)", rows)


def _pg_version(database: str, schema: str) -> str:
    with _pg_connection(database, schema) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return str(row[0])


def test_a_v8_schema_is_upgraded_with_its_agents_found_by_address(postgres_database: str) -> None:
    from helpkit.stores.postgres.schema import SCHEMA_VERSION

    agents = _staff()
    schema = fresh_schema()
    _v8_schema(postgres_database, schema, _agent_rows(agents))
    assert _pg_version(postgres_database, schema) == "8"
    store = _pg_store(postgres_database, schema)
    try:
        assert _pg_version(postgres_database, schema) == str(SCHEMA_VERSION) == "11"
        _found_as_listed(store, agents)
        plan = _pg_plan(postgres_database, schema, ["a7@desk.example"])
        assert re.search(r"Index Scan (using|on) agents_email", plan), plan
        _found_after_a_move(store)
    finally:
        store.close()


def test_a_v8_schema_with_an_agent_row_that_is_not_json_stays_at_v8(
    postgres_database: str,
) -> None:
    """The index cannot hold a row that is not JSON (the cast fails): the upgrade of a schema
    holding one fails, rolled back, the schema left at version 8 (its agents_by_email already
    failed on that row); at version 9 a write of such a row fails."""
    import psycopg

    from helpkit.errors import StoreError

    schema = fresh_schema()
    rows = _agent_rows([Agent(id="a1", name="Al", email="al@desk.example")])
    _v8_schema(postgres_database, schema, [*rows, ("broken", "{not JSON")])
    with pytest.raises(StoreError, match="the agents row 'broken' is not JSON"):
        _pg_store(postgres_database, schema)
    assert _pg_version(postgres_database, schema) == "8"
    with _pg_connection(postgres_database, schema) as conn:
        conn.execute("DELETE FROM agents WHERE id = 'broken'")
    store = _pg_store(postgres_database, schema)
    try:
        assert [a.id for a in store.agents_by_email(["al@desk.example"])] == ["a1"]
        with (
            pytest.raises(psycopg.Error, match="json"),
            _pg_connection(postgres_database, schema) as conn,
        ):
            conn.execute("UPDATE agents SET data = '{not JSON' WHERE id = 'a1'")
    finally:
        store.close()
