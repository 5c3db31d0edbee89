"""The SQLite store: helpkit's embedded default, a single file shared by threads and processes.

It keeps each ticket's events (the audit trail) and its current state (indexed columns for
every query filter and sort key, plus the full state as JSON), contacts, organizations, agents
and groups, in one SQLite database in WAL mode. Every ``commit`` is one ``BEGIN IMMEDIATE``
transaction, so the ``expected_seq`` check and the writes it guards are atomic across threads
and processes.

The file is recognized by its ``PRAGMA application_id``; its schema version is
``PRAGMA user_version`` and is upgraded by the migrations in :data:`MIGRATIONS`. A file that is
not a helpkit database, or one written by a newer helpkit, is refused before anything is
written to it.

The package's modules, each one concern; import from the package, which re-exports them:

- ``schema``: the DDL, schema versions and migrations, and the checks that refuse a file that
  is foreign, newer or damaged;
- ``encoding``: tickets, events and people to rows and JSON and back;
- ``query_sql``: the SELECT statement for a :class:`~helpkit.queries.TicketQuery`;
- ``store``: :class:`SqliteStore`;
- ``url``: :func:`sqlite_store_factory`, the store for an ``sqlite:///path.db`` URL.
"""

from __future__ import annotations

from helpkit.stores.sqlite.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from helpkit.stores.sqlite.schema import Migration as Migration
from helpkit.stores.sqlite.store import SqliteStore
from helpkit.stores.sqlite.store import Synchronous as Synchronous
from helpkit.stores.sqlite.url import sqlite_store_factory

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SqliteStore",
    "sqlite_store_factory",
]
