"""The in-memory blob store (``memory://``): the reference, for tests and memory desks."""

from __future__ import annotations

import threading

from helpkit.blobs.addresses import address_of, check_address, check_data
from helpkit.errors import NotFoundError, StoreError, UnknownBackendError, ValidationError

__all__ = ["MemoryBlobStore", "memory_blob_store_factory"]


class MemoryBlobStore:
    """Blobs kept in a dictionary, for the life of the object. Thread-safe."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _open(self) -> None:
        if self._closed:
            raise StoreError("this blob store is closed")

    def put(self, data: bytes) -> str:
        """Keep ``data``; return its SHA-256 (the same bytes are kept once)."""
        data = check_data(data)
        address = address_of(data)
        with self._lock:
            self._open()
            self._blobs.setdefault(address, data)
        return address

    def get(self, sha256: str) -> bytes:
        """The bytes kept under ``sha256``; NotFoundError if none."""
        address = check_address(sha256)
        with self._lock:
            self._open()
            found = self._blobs.get(address)
        if found is None:
            raise NotFoundError(f"no blob {address}")
        return found

    def exists(self, sha256: str) -> bool:
        """Whether bytes are kept under ``sha256``."""
        address = check_address(sha256)
        with self._lock:
            self._open()
            return address in self._blobs

    def delete(self, sha256: str) -> bool:
        """Forget the bytes kept under ``sha256``; whether there were any."""
        address = check_address(sha256)
        with self._lock:
            self._open()
            return self._blobs.pop(address, None) is not None

    def close(self) -> None:
        """Forget every blob; the store refuses use afterwards."""
        with self._lock:
            self._closed = True
            self._blobs.clear()

    def __repr__(self) -> str:
        return f"MemoryBlobStore({len(self._blobs)} blobs)"


def memory_blob_store_factory(url: str) -> MemoryBlobStore:
    """A new, empty :class:`MemoryBlobStore` for the URL ``memory://`` (or ``memory:``)."""
    scheme, sep, rest = url.partition(":") if isinstance(url, str) else ("", "", "")
    if not sep or scheme.lower() != "memory":
        raise UnknownBackendError(f"the memory blob store serves 'memory://' URLs, not {url!r}")
    if rest not in ("", "//"):
        raise ValidationError(
            f"the memory blob store takes no path or options; use 'memory://' (got {url!r})"
        )
    return MemoryBlobStore()
