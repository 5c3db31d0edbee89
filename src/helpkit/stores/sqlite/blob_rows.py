"""Attachment bytes kept in the SQLite file: the ``blobs`` table (schema version 12).

A mixin of :class:`~helpkit.stores.sqlite.store.SqliteStore`, the rows behind the ``sqlite:``
blob store (:class:`helpkit.blobs.sqlite.SqliteBlobStore`, which checks addresses and bytes
before they reach these methods and the bytes against their address after a read). One row
per blob: its SHA-256 in lower-case hex (the primary key) and its bytes.

Each write is one ``BEGIN IMMEDIATE`` transaction on the store's connections, so a blob is
durable as the store's commits are (``synchronous=FULL``: flushed to disk before the put
returns; ``NORMAL``: as safe against a crash of the application, not against a power cut) and
a reader sees all of a blob or none of it. A delete runs with ``PRAGMA secure_delete = ON``,
as the privacy rewrites do: the freed pages are overwritten with zeros, not left in the file
(the write-ahead log holds them until it is checkpointed; ``compact`` is that step).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Final

__all__ = ["BlobRowsMixin"]

# A put of bytes already kept writes nothing, unless the kept copy differs (damaged): then
# the bytes named by the address are written again.
_PUT: Final = (
    "INSERT INTO blobs (sha256, data) VALUES (?, ?) ON CONFLICT (sha256) DO UPDATE "
    "SET data = excluded.data WHERE data IS NOT excluded.data"
)
_GET: Final = "SELECT data FROM blobs WHERE sha256 = ?"
_HAS: Final = "SELECT 1 FROM blobs WHERE sha256 = ?"
_DELETE: Final = "DELETE FROM blobs WHERE sha256 = ?"


class BlobRowsMixin:
    """The store's ``blobs`` rows. Addresses and bytes come checked (by the blob store)."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - provided by SqliteStore

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - provided by SqliteStore

    def _secure_transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - provided by PrivacyMixin

    def put_blob(self, sha256: str, data: bytes) -> None:
        """Keep ``data`` under ``sha256`` in one committed transaction (a kept copy that
        differs is replaced)."""
        with self._transaction() as conn:
            conn.execute(_PUT, (sha256, data))

    def blob(self, sha256: str) -> bytes | None:
        """The bytes kept under ``sha256``, or ``None``."""
        with self._connection() as conn:
            row = conn.execute(_GET, (sha256,)).fetchone()
        return None if row is None else bytes(row[0])

    def has_blob(self, sha256: str) -> bool:
        """Whether bytes are kept under ``sha256``."""
        with self._connection() as conn:
            return conn.execute(_HAS, (sha256,)).fetchone() is not None

    def delete_blob(self, sha256: str) -> bool:
        """Forget the bytes kept under ``sha256`` (their pages zeroed); whether there were
        any."""
        with self._secure_transaction() as conn:
            return conn.execute(_DELETE, (sha256,)).rowcount > 0
