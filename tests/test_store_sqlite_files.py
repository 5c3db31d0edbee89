"""The SQLite store against hostile files: what it refuses, and that a refusal creates nothing.

- A path that is a FIFO, a directory, a socket or a device (or that has one as its -journal,
  -wal or -shm) is refused at once, and nothing is created beside any refused file.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest

from helpkit.errors import HelpkitError, StoreError, ValidationError
from helpkit.stores.sqlite import SqliteStore
from test_store_sqlite import folder_state

needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and signals")

# ---------------------------------------------------------------- what is not a regular file


def _refused_without_hanging(path: Path) -> HelpkitError:
    """SqliteStore(path) must fail at once; if it blocks (a FIFO), unblock it and fail."""
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            SqliteStore(path).close()
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        for fifo in [path, *(Path(f"{path}{s}") for s in ("-journal", "-wal", "-shm"))]:
            if fifo.exists() and stat.S_ISFIFO(fifo.stat().st_mode):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail(f"opening {path} blocked")
    (error,) = outcome
    assert isinstance(error, HelpkitError), error
    return error


@needs_posix
def test_a_fifo_is_refused_at_once_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    os.mkfifo(path)
    before = folder_state(tmp_path)
    error = _refused_without_hanging(path)
    assert isinstance(error, StoreError)
    assert "is a FIFO (named pipe), not a database file" in str(error)
    assert folder_state(tmp_path) == before


def test_a_directory_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    path.mkdir()
    before = folder_state(tmp_path)
    error = _refused_without_hanging(path)
    assert "is a directory, not a database file" in str(error)
    assert folder_state(tmp_path) == before


@needs_posix
def test_a_socket_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    if len(os.fsencode(path)) >= 100:
        pytest.skip("the temporary path is too long for a Unix socket")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        before = folder_state(tmp_path)
        error = _refused_without_hanging(path)
    finally:
        server.close()
    assert "is a socket, not a database file" in str(error)
    assert folder_state(tmp_path) == before


@needs_posix
def test_a_device_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    # A device like /dev/null reads as an empty file: SQLite would take it for a new database
    # and create its journal beside it.
    path = tmp_path / "null.db"
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except OSError as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    before = folder_state(tmp_path)
    error = _refused_without_hanging(path)
    assert "is a character device, not a database file" in str(error)
    assert folder_state(tmp_path) == before


@needs_posix
@pytest.mark.parametrize("suffix", ["-journal", "-wal", "-shm"])
def test_a_fifo_beside_a_helpkit_file_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    os.mkfifo(f"{path}{suffix}")
    before = folder_state(tmp_path)
    error = _refused_without_hanging(path)
    assert f"desk.db{suffix} is a FIFO (named pipe)" in str(error)
    assert folder_state(tmp_path) == before


def test_a_path_with_a_nul_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        SqliteStore(f"{tmp_path}/desk\0.db")
