"""The PostgreSQL store: several processes on several machines share one helpdesk.

A ``postgresql://host/db?schema=acme`` URL opens the helpdesk kept in one schema of a
PostgreSQL database (one schema per tenant; default ``helpkit``), through a pool of psycopg 3
connections whose ``search_path`` is that schema alone. Tickets, events, people, the change
feed and the outbox are the SQLite store's tables and rows (the same JSON, the same indexes);
what differs is how concurrent transactions are kept apart: optimistic checks on each ticket's
seq, a counter row for gapless ticket numbers, a transaction-scoped advisory lock that makes
feed positions follow commit order, and ``FOR UPDATE SKIP LOCKED`` claims in the outbox. See
docs/postgresql.md.

The package's modules, each one concern:

- ``url``: the URL and its options, :func:`postgres_store_factory` (no driver needed to import
  it: opening a store without psycopg raises StoreError saying ``pip install
  'helpkit[postgres]'``);
- ``schema``: the DDL, schema versions and migrations, and the checks that refuse a schema that
  is not helpkit's or is newer;
- ``errors``: psycopg's errors as helpkit's, in one place;
- ``query_sql``: the SELECT statement for a :class:`~helpkit.queries.TicketQuery`;
- ``feed``: the change feed, cursors and outbox;
- ``store``: :class:`~helpkit.stores.postgres.store.PostgresStore` (imports psycopg).

Rows are encoded by the SQLite store's encoding (:mod:`helpkit.stores.sqlite.encoding`), so
both stores keep exactly the same JSON text.
"""

from __future__ import annotations

from helpkit.stores.postgres.url import (
    DEFAULT_SCHEMA,
    SCHEMES,
    PostgresUrl,
    check_schema_name,
    parse_url,
    postgres_store_factory,
    schema_exists,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "SCHEMES",
    "PostgresUrl",
    "check_schema_name",
    "parse_url",
    "postgres_store_factory",
    "schema_exists",
]
