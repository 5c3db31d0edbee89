"""The PostgreSQL store: conformance, schemas and migrations, URLs and registration.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip).
Tenancy, the change feed under concurrent writers, claims and connection loss are in
tests/test_store_postgres_concurrency.py.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from helpkit import Helpdesk
from helpkit.errors import (
    ConflictError,
    DuplicateError,
    NotFoundError,
    SchemaError,
    StoreError,
    UnknownBackendError,
    ValidationError,
)
from helpkit.plugins import PluginHost
from helpkit.ports import Store
from helpkit.queries import SortOrder, TicketQuery, encode_cursor
from helpkit.stores.postgres import PostgresUrl, parse_url, postgres_store_factory
from helpkit.testing.clock import FrozenClock
from helpkit.testing.conformance import (
    ReopenElsewhere,
    ReopenStore,
    StoreConformance,
    StoreFactory,
)
from helpkit.tickets import Actor, StatusCategory
from postgres_fixtures import fresh_schema

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
AGENT = Actor.agent("a1")


class TestPostgresStore(StoreConformance):
    # Every example of the side-by-side machine opens a store in a new schema (about 60 ms of
    # DDL), and each step is a few round trips to the server: fewer and shorter examples than
    # the SQLite store's keep this class near 20 s.
    stateful_settings = settings(
        max_examples=20,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

    @pytest.fixture
    def make_store(self, postgres_database: str) -> StoreFactory:
        from helpkit.stores.postgres.store import PostgresStore

        return lambda: PostgresStore(postgres_database, schema=fresh_schema(), pool_max=4)

    @pytest.fixture
    def reopen_store(self) -> ReopenStore:
        from helpkit.stores.postgres.store import PostgresStore

        def reopen(store: Store) -> Store:
            assert isinstance(store, PostgresStore)
            return PostgresStore(store.conninfo, schema=store.schema)

        return reopen

    @pytest.fixture
    def reopen_elsewhere(self) -> ReopenElsewhere:
        from helpkit.stores.postgres.store import PostgresStore

        def elsewhere(store: Store) -> Callable[[], Store]:
            assert isinstance(store, PostgresStore)
            return functools.partial(PostgresStore, store.conninfo, schema=store.schema)

        return elsewhere


# ---------------------------------------------------------------- helpers


def admin(database: str) -> Any:
    """A plain autocommit connection to the test database (close it)."""
    import psycopg

    return psycopg.connect(database, autocommit=True)


def tables(database: str, schema: str) -> dict[str, int]:
    """The tables of ``schema`` and their row counts."""
    from psycopg import sql

    with admin(database) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
            )
        ]
        return {
            name: conn.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            ).fetchone()[0]
            for name in names
        }


def schema_exists_in(database: str, schema: str) -> bool:
    with admin(database) as conn:
        row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,))
        return bool(row.fetchone()[0])


@pytest.fixture
def database(postgres_database: str) -> str:
    return postgres_database


@pytest.fixture
def store(database: str) -> Iterator[Any]:
    from helpkit.stores.postgres.store import PostgresStore

    made = PostgresStore(database, schema=fresh_schema())
    try:
        yield made
    finally:
        made.close()


# ---------------------------------------------------------------- creating and migrating


def test_a_new_schema_gets_the_tables_and_its_identity(database: str) -> None:
    from helpkit.stores.postgres.schema import SCHEMA_VERSION
    from helpkit.stores.postgres.store import PostgresStore

    schema = fresh_schema()
    assert not schema_exists_in(database, schema)
    PostgresStore(database, schema=schema).close()
    found = tables(database, schema)
    assert {"meta", "tickets", "events", "ticket_numbers", "cursors", "outbox"} <= set(found)
    with admin(database) as conn:
        meta = dict(conn.execute(f"SELECT key, value FROM {schema}.meta").fetchall())
    assert meta == {"application": "helpkit", "schema_version": str(SCHEMA_VERSION)}
    # Nothing lands in public.
    with admin(database) as conn:
        public = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert public.fetchone()[0] == 0


def test_reopening_is_a_no_op_and_keeps_the_data(store: Any) -> None:
    from helpkit.stores.postgres.store import PostgresStore

    store.save_agent(_agent("a1"))
    before = tables(store.conninfo, store.schema)
    again = PostgresStore(store.conninfo, schema=store.schema)
    try:
        assert again.list_agents() == [_agent("a1")]
    finally:
        again.close()
    assert tables(store.conninfo, store.schema) == before


def test_an_empty_schema_is_ours_to_fill(database: str) -> None:
    from helpkit.stores.postgres.store import PostgresStore

    schema = fresh_schema()
    with admin(database) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    PostgresStore(database, schema=schema).close()
    assert "tickets" in tables(database, schema)


def test_a_foreign_schema_is_refused_untouched(database: str) -> None:
    from helpkit.stores.postgres.store import PostgresStore

    schema = fresh_schema()
    with admin(database) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.tickets (id int)")
        conn.execute(f"INSERT INTO {schema}.tickets VALUES (1)")
    before = tables(database, schema)
    with pytest.raises(SchemaError, match="not a helpkit schema"):
        PostgresStore(database, schema=schema)
    assert tables(database, schema) == before


def test_a_schema_of_another_application_is_refused_untouched(database: str) -> None:
    from helpkit.stores.postgres.store import PostgresStore

    schema = fresh_schema()
    with admin(database) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.meta (key text PRIMARY KEY, value text)")
        conn.execute(f"INSERT INTO {schema}.meta VALUES ('application', 'zammad')")
    before = tables(database, schema)
    with pytest.raises(SchemaError, match="zammad"):
        PostgresStore(database, schema=schema)
    assert tables(database, schema) == before


def test_a_newer_schema_is_refused_untouched(store: Any) -> None:
    from helpkit.stores.postgres.schema import SCHEMA_VERSION
    from helpkit.stores.postgres.store import PostgresStore

    newer = str(SCHEMA_VERSION + 1)
    with admin(store.conninfo) as conn:
        conn.execute(
            f"UPDATE {store.schema}.meta SET value = %s WHERE key = 'schema_version'", (newer,)
        )
    before = tables(store.conninfo, store.schema)
    with pytest.raises(SchemaError, match="newer"):
        PostgresStore(store.conninfo, schema=store.schema)
    assert tables(store.conninfo, store.schema) == before


def test_an_upgrade_runs_the_missing_steps_once(store: Any) -> None:
    import psycopg

    from helpkit.stores.postgres.schema import MIGRATIONS, inspect, migrate
    from helpkit.stores.postgres.store import PostgresStore

    store.save_agent(_agent("a1"))
    later = (*MIGRATIONS, ("CREATE TABLE notes (id text PRIMARY KEY)",))
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {store.schema}")
        assert inspect(conn, store.schema, len(later)) == "older"
        migrate(conn, store.schema, later)
        migrate(conn, store.schema, later)  # current now: a no-op
        assert inspect(conn, store.schema, len(later)) == "current"
    assert "notes" in tables(store.conninfo, store.schema)
    # The data is still there, and this helpkit now refuses the newer schema.
    assert tables(store.conninfo, store.schema)["agents"] == 1
    with pytest.raises(SchemaError, match="newer"):
        PostgresStore(store.conninfo, schema=store.schema)


def test_a_failed_upgrade_leaves_the_schema_as_it_was(store: Any) -> None:
    import psycopg

    from helpkit.stores.postgres.schema import MIGRATIONS, migrate

    before = tables(store.conninfo, store.schema)
    broken = (*MIGRATIONS, ("CREATE TABLE notes (id text)", "SELECT no_such_function()"))
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {store.schema}")
        with pytest.raises(psycopg.errors.UndefinedFunction):
            migrate(conn, store.schema, broken)
    assert tables(store.conninfo, store.schema) == before


def test_stores_opening_a_new_schema_at_once_create_it_once(database: str) -> None:
    from helpkit.stores.postgres.store import PostgresStore

    schema = fresh_schema()
    opened: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        try:
            opened.append(PostgresStore(database, schema=schema, pool_min=0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for made in opened:
        made.close()
    assert errors == []
    assert len(opened) == 6
    assert tables(database, schema)["meta"] == 2


def test_create_false_refuses_a_missing_schema_and_creates_nothing(database: str) -> None:
    from helpkit.stores.postgres.store import PostgresStore, schema_exists

    schema = fresh_schema()
    with pytest.raises(StoreError, match="helpkit init"):
        PostgresStore(database, schema=schema, create=False)
    assert not schema_exists_in(database, schema)
    assert not schema_exists(database, schema)
    PostgresStore(database, schema=schema).close()
    assert schema_exists(database, schema)
    PostgresStore(database, schema=schema, create=False).close()


# ---------------------------------------------------------------- settings


def test_every_connection_searches_the_schema_alone(store: Any) -> None:
    with store._reading() as cur:
        assert cur.execute("SHOW search_path").fetchone()[0] == store.schema
        assert cur.execute("SHOW synchronous_commit").fetchone()[0] == "on"


def test_synchronous_commit_off_is_applied_when_asked(database: str) -> None:
    store = postgres_store_factory(f"{database}?schema={fresh_schema()}&synchronous_commit=off")
    try:
        with store._reading() as cur:  # type: ignore[attr-defined]
            assert cur.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    finally:
        store.close()


def test_every_call_after_close_raises_store_error(store: Any) -> None:
    store.close()
    store.close()  # harmless
    calls: list[Callable[[], object]] = [
        lambda: store.get_ticket("t1"),
        lambda: store.get_ticket(1),
        lambda: store.query(TicketQuery()),
        lambda: store.list_agents(),
        lambda: store.commit([]),
        lambda: store.changes(),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            call()


def test_an_unreachable_server_is_a_store_error() -> None:
    from helpkit.stores.postgres.store import PostgresStore

    with pytest.raises(StoreError, match="connection"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout=2)


def test_a_key_postgresql_cannot_hold_finds_nothing(store: Any) -> None:
    # The domain refuses a NUL in every id and text, so none is stored: a lookup by one is
    # NotFoundError (as in the other stores), not an error of the driver.
    calls: list[Callable[[], object]] = [
        lambda: store.get_ticket("t\x00"),
        lambda: store.events("t\x00"),
        lambda: store.get_contact("c\x00"),
        lambda: store.get_agent("a\x00"),
        lambda: store.get_group("g\x00"),
        lambda: store.get_organization("o\x00"),
        lambda: store.delivery("d\x00"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()
    assert store.find_contacts("a\x00") == []


def test_driver_errors_become_helpkit_errors(database: str) -> None:
    import psycopg

    from helpkit.stores.postgres.errors import translate

    def raised(statement: str, *params: object) -> psycopg.Error:
        with admin(database) as conn:
            conn.execute(
                "CREATE TEMP TABLE tickets (id text CONSTRAINT tickets_pkey PRIMARY KEY, "
                "number int CONSTRAINT tickets_number_key UNIQUE)"
            )
            conn.execute("INSERT INTO tickets VALUES ('t1', 1)")
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement, params)
            return caught.value

    taken = translate(raised("INSERT INTO tickets VALUES ('t2', 1)"), "db")
    assert isinstance(taken, DuplicateError)
    assert "ticket number (1)" in str(taken)
    race = translate(raised("INSERT INTO tickets VALUES ('t1', 2)"), "db")
    assert isinstance(race, ConflictError)
    assert isinstance(translate(raised("SELECT %s::text", "a\x00"), "db"), ValidationError)
    assert isinstance(translate(raised("SELECT 1/0"), "db"), ValidationError)
    other = translate(raised("SELECT * FROM no_such_table"), "db")
    assert type(other) is StoreError


# ---------------------------------------------------------------- query plans


def _plan(database: str, schema: str, query: TicketQuery) -> str:
    """The plan PostgreSQL chooses for the store's statement answering ``query``, when it can
    avoid sorting (``enable_sort`` off: a sort is then chosen only if nothing else can give
    the order)."""
    from helpkit.stores.postgres.query_sql import select

    statement = select(query)
    assert statement is not None
    text, params = statement
    with admin(database) as conn:
        conn.execute(f"SET search_path TO {schema}")
        conn.execute("SET enable_sort TO off")
        rows = conn.execute("EXPLAIN " + text, params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize(
    "query",
    [
        TicketQuery(
            assignee_ids={"a3"},
            categories={StatusCategory.NEW, StatusCategory.OPEN},
            limit=50,
        ),
        TicketQuery(
            group_ids={"g1"}, categories={StatusCategory.NEW, StatusCategory.OPEN}, limit=50
        ),
        TicketQuery(
            group_ids={"g1", "g2"},
            categories={StatusCategory.OPEN},
            limit=20,
            after=encode_cursor(SortOrder.PRIORITY, [2, 5, 6, "t9"]),
        ),
        TicketQuery(categories={StatusCategory.NEW, StatusCategory.PENDING}, limit=50),
    ],
    ids=["assignee", "group", "groups-after-a-cursor", "categories"],
)
def test_a_queue_page_is_merged_index_walks_without_a_sort(
    store: Any, database: str, query: TicketQuery
) -> None:
    # Rows written straight into the table (only the columns the plan depends on matter).
    with admin(database) as conn:
        conn.execute(
            f"INSERT INTO {store.schema}.tickets (id, number, seq, status, category, priority, "
            "assignee_id, group_id, requester_id, created_us, updated_us, next_deadline_us, "
            "tags, state) "
            "SELECT 't' || n, n, 1, 'open', "
            "(ARRAY['new', 'open', 'pending', 'closed'])[n % 4 + 1], "
            "n % 4 + 1, 'a' || n % 20, 'g' || n % 5, 'c1', n, n, n * 7 % 1000, '[]', '{}' "
            "FROM generate_series(1, 5000) AS n"
        )
        conn.execute(f"ANALYZE {store.schema}.tickets")
    plan = _plan(database, store.schema, query)
    # One index walk per arm, each cut at the page, merged in order: no Sort node anywhere.
    assert "Merge Append" in plan, plan
    assert re.search(r"(^|->)\s*(Incremental )?Sort\s+\(", plan, re.MULTILINE) is None, plan
    assert "Index Scan" in plan, plan
    assert "Seq Scan" not in plan and "Bitmap" not in plan, plan


# ---------------------------------------------------------------- URLs


def test_url_options_are_read_and_the_rest_goes_to_libpq() -> None:
    parsed = parse_url(
        "postgresql://u:p@db.example:5433/desk?schema=acme&pool_min=2&pool_max=20&timeout=3.5"
        "&synchronous_commit=off&cache=10&connect_timeout=4&sslmode=require"
    )
    assert parsed == PostgresUrl(
        "postgresql://u:p@db.example:5433/desk?sslmode=require",
        schema="acme",
        pool_min=2,
        pool_max=20,
        timeout=3.5,
        connect_timeout=4,
        synchronous_commit=False,
        cache=10,
    )
    assert parse_url("postgres://localhost/desk").schema == "helpkit"
    assert parse_url("postgres://localhost/desk").conninfo == "postgresql://localhost/desk"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://localhost/db?schema=Acme", "schema name"),
        ("postgresql://localhost/db?schema=pg_catalog", "schema name"),
        ("postgresql://localhost/db?schema=a.b", "schema name"),
        ("postgresql://localhost/db?schema=", "schema name"),
        ("postgresql://localhost/db?pool_max=0", "pool_max"),
        ("postgresql://localhost/db?pool_min=5&pool_max=2", "below"),
        ("postgresql://localhost/db?timeout=soon", "timeout"),
        ("postgresql://localhost/db?timeout=inf", "timeout"),
        ("postgresql://localhost/db?synchronous_commit=maybe", "synchronous_commit"),
        ("postgresql://localhost/db?cache=-1", "cache"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_url(url)


def test_other_schemes_are_not_postgres() -> None:
    with pytest.raises(UnknownBackendError):
        parse_url("sqlite:///desk.db")


def test_both_schemes_are_registered() -> None:
    plugins = PluginHost(entry_points=False)
    assert {"postgresql", "postgres"} <= set(plugins.store_schemes)


def test_a_helpdesk_on_a_postgresql_url_survives_a_restart(database: str) -> None:
    from helpkit.stores.postgres.store import PostgresStore

    url = f"{database.replace('postgresql://', 'postgres://', 1)}?schema={fresh_schema()}"
    clock = FrozenClock(NOW)
    with Helpdesk(url, clock=clock, entry_points=False) as desk:
        assert isinstance(desk.store, PostgresStore)
        desk.add_agent("a1", "Al")
        ticket = desk.open_ticket(
            AGENT, requester="ann@example.com", subject="VPN down", body="Since 9:00."
        )
    with Helpdesk(url, clock=clock, entry_points=False) as desk:
        assert desk.ticket(ticket.number) == ticket
        assert [c.body for c in desk.conversation(ticket)] == ["Since 9:00."]


def test_without_psycopg_opening_says_how_to_install_it() -> None:
    # A fresh interpreter where psycopg cannot be imported: helpkit, the store registry and the
    # URL parser still work, and opening a store says which extra to install.
    script = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "sys.modules['psycopg_pool'] = None\n"
        "import helpkit\n"
        "from helpkit.errors import StoreError\n"
        "from helpkit.plugins import PluginHost\n"
        "plugins = PluginHost(entry_points=False)\n"
        "assert 'postgresql' in plugins.store_schemes\n"
        "try:\n"
        "    plugins.open_store('postgresql://localhost/db')\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'helpkit[postgres]'" in result.stdout


def _agent(agent_id: str) -> Any:
    from helpkit.people import Agent

    return Agent(id=agent_id, name="Al")


# ---------------------------------------------------------------- the command line


def test_the_cli_creates_a_schema_only_with_init(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpkit.cli import main

    monkeypatch.delenv("HELPKIT_STORE", raising=False)
    schema = fresh_schema()
    url = f"{database}?schema={schema}"
    for args in (["list"], ["agents"], ["sweep"], ["agents", "add", "ana", "Ana"]):
        assert main(["--store", url, *args]) == 2, args
        err = capsys.readouterr().err
        assert f"no helpkit store in schema {schema!r}" in err
        assert "helpkit init" in err
        assert "postgres@" not in err  # the URL (and any password in it) is not echoed
    assert not schema_exists_in(database, schema)
    # (The server trusts local users: the password is sent only if asked for.)
    with_password = url.replace("postgres@", "postgres:hunter2@", 1)
    assert main(["--store", with_password, "init"]) == 0
    assert schema_exists_in(database, schema)
    out = capsys.readouterr().out
    assert "store ready at postgresql://postgres:***@" in out and "hunter2" not in out
    assert main(["--store", url, "list"]) == 0
    assert capsys.readouterr().out == "no tickets\n"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:secret@db/desk", "postgresql://app:***@db/desk"),
        ("postgresql://app@db/desk", "postgresql://app@db/desk"),
        ("postgresql://db/desk?schema=a", "postgresql://db/desk?schema=a"),
        ("sqlite:///desk.db", "sqlite:///desk.db"),
        ("memory://", "memory://"),
    ],
)
def test_the_cli_masks_a_password_it_prints(url: str, expected: str) -> None:
    from helpkit.cli._store import shown

    assert shown(url) == expected
