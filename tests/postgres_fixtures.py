"""A PostgreSQL database for the tests of the PostgreSQL store (``tests/conftest.py`` makes the
fixtures below available to every test module).

The server is ``$HELPKIT_TEST_POSTGRES_DSN`` (a ``postgresql://`` URL; default the local
server, ``postgresql://postgres@127.0.0.1:5432/postgres``, which ``.ci/run`` starts). Each run
creates a database of its own (``helpkit_test_<pid>_<random>``) and drops it at the end; each
store a test opens gets a fresh schema in it. Without psycopg or a server the tests are
skipped, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import secrets
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

DSN = os.environ.get("HELPKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
HAS_DRIVER = (
    importlib.util.find_spec("psycopg") is not None
    and importlib.util.find_spec("psycopg_pool") is not None
)

_schemas = itertools.count(1)


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it under ``CI=true`` (where PostgreSQL must be there)."""
    if IN_CI:
        pytest.fail(f"{reason}: under CI=true the PostgreSQL tests must run (.ci/run starts it)")
    pytest.skip(reason)


def database_url(dsn: str, database: str) -> str:
    """``dsn`` naming ``database`` instead of its own."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def fresh_schema() -> str:
    """A schema name no other store of this run has used."""
    return f"t{next(_schemas)}_{secrets.token_hex(3)}"


def postgres_database_fixture() -> Iterator[str]:
    """The URL of a database created for this run (no options), dropped at the end."""
    if not HAS_DRIVER:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    import psycopg
    from psycopg import sql

    name = f"helpkit_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(DSN, autocommit=True, connect_timeout=3) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        unavailable(f"no PostgreSQL server at {DSN} ({str(exc).strip()[:200]})")
    try:
        yield database_url(DSN, name)
    finally:
        # A fresh connection: a test may have restarted the server since the database was made.
        with psycopg.connect(DSN, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def ticket_rows(store: Any, ticket_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of ``ticket_id`` in every table a ticket commit writes, in the schema of the
    PostgreSQL store ``store`` (read on a connection of their own)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {}.{} WHERE {} = %s ORDER BY 1, 2").format(
                    sql.Identifier(store.schema), sql.Identifier(table), sql.Identifier(key)
                ),
                (ticket_id,),
            ).fetchall()
            for table, key in (
                ("tickets", "id"),
                ("events", "ticket_id"),
                ("ticket_tags", "ticket_id"),
                ("timer_states", "ticket_id"),
            )
        }
