"""The PostgreSQL store's inbox (:class:`helpkit.ports.Inbox`): receipts of inbound messages.

A mixin of :class:`~helpkit.stores.postgres.store.PostgresStore` (capability ``inbox``); it
uses the store's connections. One row per key in the ``inbox`` table (schema version 4): the
state and the instant received as columns, the receipt itself as JSON (:mod:`helpkit.serialize`
form, attachments' bytes as base64).

A commit writes its receipts with :data:`PUT_RECEIPTS` inside its own transaction, after its
seq checks: ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE`` the stored receipt is
suspended, ``RETURNING`` the keys written. PostgreSQL judges the conflict on the latest
committed row (a concurrent insert of the same key waits for the other transaction to end),
so of two commits carrying one key exactly one writes it; the other finds a key it did not
write, raises :class:`~helpkit.errors.DuplicateError`, and rolls back everything it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final

import psycopg

from helpkit import serialize
from helpkit._time import to_utc
from helpkit.errors import NotFoundError, SchemaError, ValidationError
from helpkit.ports import Receipt, ReceiptState
from helpkit.stores.contract import (
    check_key,
    check_limit,
    check_suspension,
    discard_receipt,
    duplicate_receipt,
)
from helpkit.stores.sqlite.encoding import _micros

__all__ = ["PUT_RECEIPTS", "InboxMixin", "write_receipts"]

_SUSPENDED: Final = ReceiptState.SUSPENDED.value

PUT_RECEIPTS: Final = (
    "INSERT INTO inbox (key, state, received_us, body) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[]) "
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
    "received_us = excluded.received_us, body = excluded.body "
    f"WHERE inbox.state = '{_SUSPENDED}' "
    "RETURNING key"
)
"""Write a commit's receipts (parameters: keys, states, received instants, bodies): new keys
are inserted, suspended receipts replaced; returns the keys written (a key held by a receipt
that is not suspended is left out)."""

_PAGE: Final = (
    "SELECT body FROM inbox "
    f"WHERE state = '{_SUSPENDED}' AND (received_us, key) > (%s, %s) "
    "ORDER BY received_us, key LIMIT %s"
)


def _row(receipt: Receipt) -> tuple[str, str, int, str]:
    return (
        receipt.key,
        receipt.state.value,
        _micros(receipt.received_at),
        serialize.dumps(receipt),
    )


def _decode(text: str) -> Receipt:
    try:
        return serialize.loads(Receipt, text)
    except (SchemaError, ValidationError) as exc:
        raise SchemaError(
            f"stored receipt cannot be read ({exc}): the schema was changed outside helpkit"
        ) from exc


def write_receipts(conn: psycopg.Connection[Any], receipts: Iterable[Receipt]) -> None:
    """Write a commit's receipts in its transaction (waiting for the result): DuplicateError,
    which rolls the transaction back, when a key is held by a receipt not suspended."""
    rows = [_row(receipt) for receipt in receipts]
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    written = {str(row[0]) for row in conn.execute(PUT_RECEIPTS, columns).fetchall()}
    for key, *_ in rows:
        if key not in written:
            found = conn.execute("SELECT body FROM inbox WHERE key = %s", (key,)).fetchone()
            if found is None:  # pragma: no cover - a key not written is a key held
                raise SchemaError(f"the inbox refused key {key!r} but holds no receipt for it")
            raise duplicate_receipt(_decode(found[0]))


class InboxMixin:
    """The inbox of a PostgreSQL store (a mixin of ``PostgresStore``)."""

    def _reading(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _transaction(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def receipt(self, key: str) -> Receipt | None:
        """The receipt kept under ``key``, or ``None``."""
        check_key(key)
        with self._reading() as cur:
            row = cur.execute("SELECT body FROM inbox WHERE key = %s", (key,)).fetchone()
        return None if row is None else _decode(row[0])

    def suspend(self, receipt: Receipt) -> Receipt:
        """Keep a suspended receipt, unless its key is taken: then return the one there."""
        row = _row(check_suspension(receipt))
        with self._transaction() as cur:
            added = cur.execute(
                "INSERT INTO inbox (key, state, received_us, body) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING RETURNING key",
                row,
            ).fetchone()
            if added is None:
                found = cur.execute(
                    "SELECT body FROM inbox WHERE key = %s", (receipt.key,)
                ).fetchone()
                if found is not None:
                    return _decode(found[0])
        return _decode(row[3])

    def suspended(self, *, limit: int = 100, after: str | None = None) -> list[Receipt]:
        """Suspended receipts by ``received_at`` then key, those after key ``after``."""
        check_limit(limit)
        if after is not None:
            check_key(after, "after")
        with self._reading() as cur:
            if after is None:
                start: tuple[int, str] = (-(2**63), "")
            else:
                last = cur.execute(
                    "SELECT received_us FROM inbox WHERE key = %s", (after,)
                ).fetchone()
                if last is None:
                    raise NotFoundError(f"no inbound message with key {after!r:.200}")
                start = (int(last[0]), after)
            rows = cur.execute(_PAGE, (*start, limit)).fetchall()
        return [_decode(row[0]) for row in rows]

    def discard(self, key: str, *, now: datetime) -> Receipt:
        """Mark a suspended receipt discarded, dropping its message."""
        check_key(key)
        at = to_utc(now, "now")
        with self._transaction() as cur:
            row = cur.execute("SELECT body FROM inbox WHERE key = %s FOR UPDATE", (key,)).fetchone()
            discarded = discard_receipt(None if row is None else _decode(row[0]), key, at)
            cur.execute(
                "UPDATE inbox SET state = %s, body = %s WHERE key = %s",
                (discarded.state.value, serialize.dumps(discarded), key),
            )
        return discarded
