"""The folder blob store (``file:///path/to/folder``): blobs as files, content-addressed.

A blob with SHA-256 ``abcd...`` is the file ``<folder>/ab/abcd...`` (one level of 256
folders: after a desk's first thousand or so blobs every folder exists, and a put makes none;
with two levels, 65,536 folders, most puts of a desk holding fewer than some 100,000 blobs made
a folder of their own, which costs a flush of its parent). A put writes the
bytes to a temporary file in that same folder (``.tmp-...``), flushes it to disk (``fsync``),
and renames it over the final name (``os.replace``, atomic): a reader sees the whole blob or
no blob, never half of one, and two writers of the same bytes (threads or processes) both
succeed and leave one file. Once renamed, the folder itself is flushed so the new name
survives a power cut; a folder above it is flushed only when this put created the folder below
it (an existing folder's entry is already on disk). The put that makes the first blob folder
makes all 256 of them, so the root is flushed for them once. ``get`` checks the bytes against their
address and raises :class:`~helpkit.errors.BlobCorruptionError` when they differ; a put of
bytes whose stored copy was damaged writes them again. A temporary file left by a crash
mid-write is never read (its name is not an address);
:meth:`FolderBlobStore.sweep_temporary` removes old ones.

The folder is created (with its parents) by the first put, so a desk that never stores an
attachment leaves no folder behind. A blob kept by an earlier build in two levels of folders
(``<folder>/ab/cd/abcd...``) is still read, checked and deleted where it is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from urllib.request import url2pathname

from helpkit.blobs.addresses import address_of, check_address, check_data
from helpkit.errors import (
    BlobCorruptionError,
    NotFoundError,
    StoreError,
    UnknownBackendError,
    ValidationError,
)

__all__ = ["FolderBlobStore", "folder_blob_store_factory"]

_TEMPORARY = ".tmp-"
_FIRST_BYTES = tuple(f"{n:02x}" for n in range(256))
"""The folders a blob lives in, by the first byte of its address."""
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _fsync_folder(path: Path) -> None:
    """Flush a folder's entries to disk (POSIX; Windows cannot open a folder for this)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FolderBlobStore:
    """Blobs kept as files under ``root`` (see the module's docstring). Thread- and
    process-safe: several desks, in several processes, may share one folder.

    ``fsync=False`` skips the flushes to disk (faster; a power cut may then lose a blob that
    a ticket already names). A ``root`` that exists and is not a folder is refused.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        if not isinstance(root, str | os.PathLike):
            raise ValidationError(f"a blob folder is a path; got {root!r:.80}")
        text = os.fspath(root)
        if not isinstance(text, str) or not text or "\x00" in text:
            raise ValidationError(f"a blob folder is a non-empty path; got {root!r:.80}")
        if fsync is not True and fsync is not False:
            raise ValidationError(f"fsync must be true or false; got {fsync!r:.40}")
        self._root = Path(text)
        if self._root.exists() and not self._root.is_dir():
            raise ValidationError(f"the blob folder {text} exists and is not a folder")
        self._fsync = fsync
        self._closed = False

    @property
    def root(self) -> Path:
        """The folder the blobs live in."""
        return self._root

    def path_of(self, sha256: str) -> Path:
        """The file that holds (or would hold) the blob ``sha256``."""
        address = check_address(sha256)
        return self._root / address[:2] / address

    def _kept(self, sha256: str) -> Path:
        """Where the blob ``sha256`` is kept: :meth:`path_of`, or the two-level path of an
        earlier build's folder (``ab/cd/abcd...``) when only that file exists."""
        path = self.path_of(sha256)
        if not path.exists():
            legacy = self._legacy(path)
            if legacy.is_file():
                return legacy
        return path

    def _legacy(self, path: Path) -> Path:
        """The two-level path of an earlier build for the file ``path``."""
        return self._root / path.name[:2] / path.name[2:4] / path.name

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this blob store is closed")

    # ------------------------------------------------------------ the protocol

    def put(self, data: bytes) -> str:
        """Keep ``data`` (atomically, durably); return its SHA-256. Putting bytes that are
        already kept writes nothing."""
        data = check_data(data)
        self._check_open()
        address = address_of(data)
        path = self.path_of(address)
        if self._intact(path, address, len(data)):
            return address
        try:
            created = self._make_folders(path.parent)
            temporary = path.parent / f"{_TEMPORARY}{address[:16]}-{secrets.token_hex(8)}"
            fd = os.open(temporary, _FLAGS, 0o666)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    if self._fsync:
                        os.fsync(handle.fileno())
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            if self._fsync:
                for folder in (path.parent, *created):
                    _fsync_folder(folder)
        except OSError as exc:
            if self._intact(path, address, len(data)):
                return address  # e.g. Windows refusing to replace a file a reader holds open
            raise StoreError(f"cannot write blob {address} in {self._root}: {exc}") from exc
        return address

    def get(self, sha256: str) -> bytes:
        """The bytes kept under ``sha256``: NotFoundError if none, BlobCorruptionError if the
        kept bytes are not the ones the address names."""
        path = self._kept(sha256)
        self._check_open()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no blob {sha256} in {self._root}") from None
        except OSError as exc:
            raise StoreError(f"cannot read blob {sha256} in {self._root}: {exc}") from exc
        if address_of(data) != sha256:
            raise BlobCorruptionError(
                f"blob {sha256} in {self._root} is damaged: its {len(data)} bytes hash to "
                f"{address_of(data)}",
                sha256=sha256,
            )
        return data

    def exists(self, sha256: str) -> bool:
        """Whether bytes are kept under ``sha256`` (not whether they are intact)."""
        path = self._kept(sha256)
        self._check_open()
        return path.is_file()

    def delete(self, sha256: str) -> bool:
        """Remove the blob's file (and an earlier build's two-level copy of it); whether there
        was one. (Folders stay: another writer may be putting a blob in them.)"""
        path = self.path_of(sha256)
        self._check_open()
        removed = False
        for where in (path, self._legacy(path)):
            try:
                where.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"cannot delete blob {sha256} in {self._root}: {exc}") from exc
            removed = True
            if self._fsync:
                with contextlib.suppress(OSError):
                    _fsync_folder(where.parent)
        return removed

    def close(self) -> None:
        """Nothing is held open; the store refuses use afterwards."""
        self._closed = True

    # ------------------------------------------------------------ upkeep

    def sweep_temporary(self, *, older_than: float = 3600.0) -> int:
        """Remove temporary files older than ``older_than`` seconds (left by writers that
        crashed mid-write); how many were removed. A younger one may be a put in progress."""
        self._check_open()
        if not self._root.is_dir():
            return 0
        limit = time.time() - older_than
        removed = 0
        for temporary in self._root.glob(f"*/{_TEMPORARY}*"):
            with contextlib.suppress(OSError):
                if temporary.stat().st_mtime < limit:
                    temporary.unlink()
                    removed += 1
        return removed

    # ------------------------------------------------------------ helpers

    def _intact(self, path: Path, address: str, size: int) -> bool:
        """Whether ``path`` holds exactly the bytes ``address`` names."""
        try:
            if path.stat().st_size != size:
                return False
            return address_of(path.read_bytes()) == address
        except OSError:
            return False

    def _make_folders(self, folder: Path) -> list[Path]:
        """Create ``folder`` and its missing parents; the parents whose entries changed.

        A folder that already existed needs no flush (its entry in its parent is on disk from
        the put that made it, which flushed that parent); one made here does: its parent's
        entry for it is what makes the blob inside reachable after a power cut.
        """
        if folder.is_dir():  # the common case: one stat, nothing made, no parent to flush
            return []
        changed: list[Path] = []
        missing = [p for p in (folder, self._root) if not p.is_dir()]
        folder.mkdir(parents=True, exist_ok=True)
        # Every sibling at once: the root is flushed once for all 256 of them, not once per
        # put that makes one (a new desk's first thousand or so blobs).
        for first in _FIRST_BYTES:
            (self._root / first).mkdir(exist_ok=True)
        for made in missing:
            if made.parent not in changed:
                changed.append(made.parent)
        return changed

    def __repr__(self) -> str:
        return f"FolderBlobStore({str(self._root)!r})"


def folder_blob_store_factory(url: str) -> FolderBlobStore:
    """A :class:`FolderBlobStore` for ``file:///absolute/folder`` (or ``file:relative/folder``,
    relative to the current directory); the path is percent-decoded. Option: ``?fsync=false``.
    """
    if not isinstance(url, str) or url.partition(":")[0].lower() != "file":
        raise UnknownBackendError(f"the folder blob store serves 'file:' URLs, not {url!r:.80}")
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ValidationError(
            f"a blob folder URL names no host: use file:///absolute/folder or "
            f"file:relative/folder, not {url!r}"
        )
    if not parts.path:
        raise ValidationError(f"a blob folder URL names a folder; got {url!r}")
    fsync = True
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "fsync":
            raise ValidationError(f"unknown option {name!r} in {url!r} (known: fsync)")
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValidationError(f"fsync is true or false; got {value!r}")
        fsync = value.lower() in ("true", "1", "yes")
    return FolderBlobStore(url2pathname(parts.path), fsync=fsync)
