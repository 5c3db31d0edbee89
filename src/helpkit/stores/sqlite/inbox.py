"""The SQLite store's inbox (:class:`helpkit.ports.Inbox`): receipts of inbound messages.

A mixin of :class:`~helpkit.stores.sqlite.store.SqliteStore`, kept apart because it is a
capability of its own (``inbox``); it uses the store's connections. One row per key in the
``inbox`` table (schema version 7): the state and the instant received as columns (what the
list of suspended messages selects and sorts on), the receipt itself as JSON
(:mod:`helpkit.serialize` form, attachments' bytes as base64). A commit writes its receipts
with :func:`write_receipts`, inside its own transaction, after its seq checks: under the
write lock, so two processes committing the same key cannot both find it free.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Final

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

__all__ = ["InboxMixin", "write_receipts"]

_SUSPENDED: Final = ReceiptState.SUSPENDED.value

_PUT: Final = "INSERT OR REPLACE INTO inbox (key, state, received_us, body) VALUES (?, ?, ?, ?)"

_WRITE: Final = (
    "INSERT INTO inbox (key, state, received_us, body) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
    "received_us = excluded.received_us, body = excluded.body "
    f"WHERE inbox.state = '{_SUSPENDED}'"
)
"""A commit's receipt in one statement: written on a free key, replacing a suspended
receipt, and changing no row (``rowcount`` 0) on a key held by any other (SQLite 3.24's
upsert; ``write_receipts`` reads the state first on an older SQLite)."""
_UPSERT: Final = sqlite3.sqlite_version_info >= (3, 24, 0)
_KEEP: Final = (
    "INSERT INTO inbox (key, state, received_us, body) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO NOTHING"
)
"""A suspended receipt kept on a free key; no row changed on a taken one (then read)."""

_PAGE: Final = (
    "SELECT body FROM inbox INDEXED BY inbox_suspended "
    f"WHERE state = '{_SUSPENDED}' AND (received_us, key) > (?, ?) "
    "ORDER BY received_us, key LIMIT ?"
)
"""Suspended receipts after (received_us, key), oldest first, through the partial index."""


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
            f"stored receipt cannot be read ({exc}): the file was changed outside helpkit or "
            "is damaged"
        ) from exc


def write_receipts(conn: sqlite3.Connection, receipts: Iterable[Receipt]) -> None:
    """Write a commit's receipts in its transaction (the write lock held): a key held by a
    receipt that is not suspended raises DuplicateError, and the caller's transaction rolls
    back; a suspended one is replaced."""
    for receipt in receipts:
        if _UPSERT:
            if conn.execute(_WRITE, _row(receipt)).rowcount == 1:
                continue  # written (the usual case: one statement)
        else:
            # The state alone: a suspended receipt's body holds its whole message,
            # attachments and all, and a free key (the usual case) has none to read.
            row = conn.execute("SELECT state FROM inbox WHERE key = ?", (receipt.key,)).fetchone()
            if row is None or row[0] == _SUSPENDED:
                conn.execute(_PUT, _row(receipt))
                continue
        body = conn.execute("SELECT body FROM inbox WHERE key = ?", (receipt.key,)).fetchone()
        raise duplicate_receipt(_decode(body[0]))


class InboxMixin:
    """The inbox of an SQLite store (a mixin of ``SqliteStore``)."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    def receipt(self, key: str) -> Receipt | None:
        """The receipt kept under ``key``, or ``None``."""
        check_key(key)
        with self._connection() as conn:
            row = conn.execute("SELECT body FROM inbox WHERE key = ?", (key,)).fetchone()
        return None if row is None else _decode(row[0])

    def suspend(self, receipt: Receipt) -> Receipt:
        """Keep a suspended receipt, unless its key is taken: then return the one there."""
        row = _row(check_suspension(receipt))
        with self._transaction() as conn:
            if _UPSERT and conn.execute(_KEEP, row).rowcount == 1:
                return _decode(row[3])  # kept (the usual case: one statement)
            found = conn.execute("SELECT body FROM inbox WHERE key = ?", (receipt.key,)).fetchone()
            if found is not None:
                return _decode(found[0])
            conn.execute(_PUT, row)
        return _decode(row[3])

    def suspended(self, *, limit: int = 100, after: str | None = None) -> list[Receipt]:
        """Suspended receipts by ``received_at`` then key, those after key ``after``."""
        check_limit(limit)
        if after is not None:
            check_key(after, "after")
        with self._connection() as conn:
            if after is None:
                start: tuple[int, str] = (-(2**63), "")
            else:
                last = conn.execute(
                    "SELECT received_us FROM inbox WHERE key = ?", (after,)
                ).fetchone()
                if last is None:
                    raise NotFoundError(f"no inbound message with key {after!r:.200}")
                start = (int(last[0]), after)
            rows = conn.execute(_PAGE, (*start, limit)).fetchall()
        return [_decode(row[0]) for row in rows]

    def discard(self, key: str, *, now: datetime) -> Receipt:
        """Mark a suspended receipt discarded, dropping its message."""
        check_key(key)
        at = to_utc(now, "now")
        with self._transaction() as conn:
            row = conn.execute("SELECT body FROM inbox WHERE key = ?", (key,)).fetchone()
            discarded = discard_receipt(None if row is None else _decode(row[0]), key, at)
            conn.execute(_PUT, _row(discarded))
        return discarded
