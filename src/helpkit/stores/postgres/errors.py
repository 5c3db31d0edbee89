"""psycopg's errors as helpkit's: the one place the PostgreSQL store maps them.

Every call of :class:`~helpkit.stores.postgres.store.PostgresStore` that reaches the server
runs inside :func:`translated`, so a caller sees helpkit's typed errors, never a psycopg one:

- a lost race is :class:`~helpkit.errors.ConflictError` (a unique key another transaction took
  first, a deadlock, a serialization failure): nothing was written, reload and retry;
- a ticket number, email or domain another transaction took first is
  :class:`~helpkit.errors.DuplicateError`;
- a value PostgreSQL cannot hold (a NUL character in text, a number out of range) is
  :class:`~helpkit.errors.ValidationError`;
- anything else (the connection lost or refused, the server restarting, no connection free in
  the pool in time) is :class:`~helpkit.errors.StoreError`. The transaction in flight was
  rolled back by the server; the pool replaces a broken connection before the next call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout

from helpkit.errors import (
    ConflictError,
    DuplicateError,
    HelpkitError,
    StoreError,
    ValidationError,
)

__all__ = ["TRANSLATED", "translate", "translated"]

# Unique keys whose violation means "another transaction got there first".
_RACES: Final = {
    "tickets_pkey": "ticket {} was created by another commit meanwhile. Reload and retry.",
    "events_pkey": "ticket {} changed since it was read. Reload and retry.",
    "contacts_pkey": "contact {} was created by another writer meanwhile. Reload and retry.",
    "organizations_pkey": (
        "organization {} was created by another writer meanwhile. Reload and retry."
    ),
    "cursors_pkey": "cursor {} was saved by another consumer meanwhile.",
}
# Unique keys that belong to one owner: someone else's value.
_TAKEN: Final = {
    "tickets_number_key": "ticket number {} is already taken",
    "contact_emails_pkey": "email {} already belongs to another contact",
    "organization_domains_pkey": "domain {} already belongs to another organization",
    "inbox_pkey": "inbound message {} was received before",
}


def _key_value(exc: psycopg.Error) -> str:
    # "Key (id)=(t1) already exists." -> "(t1)"
    detail = exc.diag.message_detail or ""
    _, _, rest = detail.partition("=")
    return rest.removesuffix(" already exists.") or "(?)"


def translate(exc: BaseException, where: str) -> HelpkitError:
    """The helpkit error for a psycopg (or psycopg_pool) error raised on ``where`` (the
    database and schema, for messages)."""
    if isinstance(exc, pg_errors.UniqueViolation):
        constraint = exc.diag.constraint_name or ""
        value = _key_value(exc)
        if constraint in _TAKEN:
            return DuplicateError(_TAKEN[constraint].format(value))
        return ConflictError(_RACES.get(constraint, "{} was written meanwhile").format(value))
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return ConflictError(
            f"another transaction wrote the same rows at the same time ({exc}); nothing was "
            "written. Reload and retry."
        )
    if isinstance(exc, psycopg.DataError):
        return ValidationError(f"PostgreSQL cannot store a value: {exc}")
    if isinstance(exc, PoolTimeout):
        return StoreError(
            f"no connection to {where} became free in time ({exc}); the server may be down, "
            "or every pooled connection busy (raise pool_max or timeout in the store URL)"
        )
    if isinstance(exc, PoolClosed):
        return StoreError(f"this PostgresStore ({where}) is closed")
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(
            f"lost or could not open the connection to {where} ({exc}); the call in flight "
            "failed (a write interrupted before its COMMIT was acknowledged may or may not "
            "have been committed: read it back). The next call reconnects."
        )
    return StoreError(f"PostgreSQL error on {where}: {exc}")


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Turn psycopg errors raised in the block into helpkit's (see :func:`translate`)."""
    try:
        yield
    except TRANSLATED as exc:
        raise translate(exc, where) from exc


TRANSLATED: Final = (psycopg.Error, PoolTimeout, PoolClosed)
"""The errors :func:`translated` turns into helpkit's."""
