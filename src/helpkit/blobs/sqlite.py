"""The SQLite blob store (``sqlite:///path/desk.db``): blobs as rows of the desk's own file.

A blob is a row of the ``blobs`` table of an SQLite store's file (schema version 12), keyed by
its SHA-256: content-addressed like the folder store (the same bytes are kept once), but with
no file of its own to create, flush and rename, and no folder to flush. Each put is one
committed transaction of the store (``synchronous=FULL``, the default: on disk before the put
returns, as a folder store's file and folder are flushed; ``?synchronous=NORMAL``: safe against
a crash of the application, not a power cut, as that store's commits are). A reader sees a
whole blob or none; ``get`` checks the bytes against their address
(:class:`~helpkit.errors.BlobCorruptionError` when they differ) and a put of bytes whose kept
copy is damaged writes them again. A delete zeroes the freed pages (``secure_delete``), so a
privacy purge leaves no copy in the file (the write-ahead log keeps the old pages until a
checkpoint: ``Helpdesk.compact`` is that step).

Use it with ``Helpdesk("sqlite:///desk.db", blobs="sqlite:///desk.db")`` (or ``blobs =`` in
``helpkit.toml``): the attachments then live and are backed up with the tickets that name them.
The built-in plugin opens an :class:`~helpkit.stores.sqlite.SqliteStore` for the URL and hands
it here; this module only needs its blob rows (:class:`BlobRows`).
"""

from __future__ import annotations

from typing import Protocol

from helpkit.blobs.addresses import address_of, check_address, check_data
from helpkit.errors import BlobCorruptionError, NotFoundError, StoreError

__all__ = ["BlobRows", "SqliteBlobStore"]


class BlobRows(Protocol):
    """What the SQLite store offers this blob store (its ``blobs`` rows): addresses and bytes
    come checked."""

    path: str

    def put_blob(self, sha256: str, data: bytes) -> None:
        """Keep ``data`` under ``sha256``, durably (a kept copy that differs is replaced)."""
        ...

    def blob(self, sha256: str) -> bytes | None:
        """The bytes kept under ``sha256``, or ``None``."""
        ...

    def has_blob(self, sha256: str) -> bool:
        """Whether bytes are kept under ``sha256``."""
        ...

    def delete_blob(self, sha256: str) -> bool:
        """Forget the bytes kept under ``sha256``; whether there were any."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


class SqliteBlobStore:
    """Blobs kept as rows of an SQLite store's file (see the module's docstring). Thread- and
    process-safe, as the store is.

    ``rows`` is the store (closed with this blob store when ``owned``, the default: the built-in
    plugin opens one store for each blob store URL).
    """

    def __init__(self, rows: BlobRows, *, owned: bool = True) -> None:
        self._rows = rows
        self._owned = owned
        self._closed = False

    @property
    def path(self) -> str:
        """The SQLite file the blobs live in."""
        return self._rows.path

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this blob store is closed")

    def put(self, data: bytes) -> str:
        """Keep ``data`` (in one committed transaction); return its SHA-256. Putting bytes that
        are already kept writes nothing."""
        data = check_data(data)
        self._check_open()
        address = address_of(data)
        self._rows.put_blob(address, data)
        return address

    def get(self, sha256: str) -> bytes:
        """The bytes kept under ``sha256``: NotFoundError if none, BlobCorruptionError if the
        kept bytes are not the ones the address names."""
        address = check_address(sha256)
        self._check_open()
        data = self._rows.blob(address)
        if data is None:
            raise NotFoundError(f"no blob {address} in {self.path}")
        found = address_of(data)
        if found != address:
            raise BlobCorruptionError(
                f"blob {address} in {self.path} is damaged: its {len(data)} bytes hash to {found}",
                sha256=address,
            )
        return data

    def exists(self, sha256: str) -> bool:
        """Whether bytes are kept under ``sha256`` (not whether they are intact)."""
        address = check_address(sha256)
        self._check_open()
        return self._rows.has_blob(address)

    def delete(self, sha256: str) -> bool:
        """Forget the bytes kept under ``sha256`` (their pages zeroed); whether there were
        any."""
        address = check_address(sha256)
        self._check_open()
        return self._rows.delete_blob(address)

    def close(self) -> None:
        """Close the store it owns; the blob store refuses use afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._rows.close()

    def __repr__(self) -> str:
        return f"SqliteBlobStore({self.path!r})"
