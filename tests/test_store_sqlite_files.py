"""The SQLite store against hostile files: what it recovers, what it refuses, and that a refusal
creates nothing (docs/sqlite-store.md, "What helpkit refuses, and what it recovers").

- A transaction left unfinished by a killed process (a hot rollback journal, a WAL without its
  index) is recovered when the file is new, empty or helpkit's, and left untouched otherwise.
- A helpkit file this process may not write, or in a folder it may not write, is refused with
  a message that says so (not "may be corrupt").
- A path that is a FIFO, a directory, a socket or a device is refused at once, and nothing is
  created beside any refused file.

The SIGKILL loop over the creation of new files is in test_store_sqlite_reliability.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpkit.errors import HelpkitError, SchemaError, StoreError, ValidationError
from helpkit.people import Agent
from helpkit.stores.sqlite import APPLICATION_ID, SCHEMA_VERSION, SqliteStore
from helpkit.stores.sqlite import schema as sqlite_schema
from test_store_sqlite import folder_state, pragma

needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and signals")

# A child that begins a write transaction, writes enough for SQLite to spill pages to the file
# (so the file holds part of an uncommitted transaction and the journal the originals), then
# waits to be killed: a hot journal, every time.
_HOT_JOURNAL = """
import os, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = DELETE")
conn.execute("PRAGMA cache_size = 10")
conn.execute("BEGIN IMMEDIATE")
for statement in sys.argv[2:]:
    conn.execute(statement)
conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(1000),) for _ in range(300)])
print("ready", flush=True)
time.sleep(60)
"""

# A child that commits through a WAL and is killed before any checkpoint: the commits are in
# the -wal only.
_UNCHECKPOINTED = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
for statement in sys.argv[2:]:
    conn.execute(statement)
print("ready", flush=True)
time.sleep(60)
"""


def _killed_child(code: str, *args: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def leave_hot_journal(path: Path, *statements: str) -> None:
    """Leave ``path`` with a hot journal: a transaction of ``statements`` (and rows in a table
    ``filler``, created if needed) killed after SQLite wrote part of it to the file."""
    statements = (*statements, "CREATE TABLE IF NOT EXISTS filler (x)")
    _killed_child(_HOT_JOURNAL, str(path), *statements)
    assert Path(f"{path}-journal").stat().st_size > 0
    probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as info:
            probe.execute("PRAGMA application_id")
    finally:
        probe.close()
    assert info.value.sqlite_errorcode == sqlite3.SQLITE_READONLY_ROLLBACK


def recovered_copy_identity(path: Path, tmp_path: Path) -> tuple[object, object]:
    """application_id and user_version of ``path`` once SQLite has recovered it (on a copy)."""
    folder = tmp_path / "recovered"
    folder.mkdir()
    for suffix in ("", "-journal", "-wal"):
        if Path(f"{path}{suffix}").exists():
            shutil.copyfile(f"{path}{suffix}", folder / f"copy.db{suffix}")
    copy = folder / "copy.db"
    return pragma(copy, "application_id"), pragma(copy, "user_version")


def _assert_helpkit_file(path: Path) -> None:
    assert pragma(path, "application_id") == APPLICATION_ID
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert pragma(path, "journal_mode") == "wal"
    assert pragma(path, "integrity_check") == "ok"


# ---------------------------------------------------------------- hot journals


@needs_posix
def test_a_new_file_with_a_hot_journal_is_recovered_and_created(tmp_path: Path) -> None:
    # The journal of a transaction that began on an empty file: rolled back, the file is empty.
    path = tmp_path / "new.db"
    leave_hot_journal(path)
    # SQLite wrote pages of the transaction, but not yet the first: no header yet.
    assert path.stat().st_size > 4096
    assert path.read_bytes()[:100] == bytes(100)
    store = SqliteStore(path)
    try:
        assert store.list_agents() == []
        with store._connection() as conn:
            assert (
                conn.execute("SELECT name FROM sqlite_master WHERE name = 'filler'").fetchall()
                == []
            )
    finally:
        store.close()
    assert sorted(os.listdir(tmp_path)) == ["new.db"]
    _assert_helpkit_file(path)


@needs_posix
def test_a_helpkit_file_with_a_hot_journal_is_recovered_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    store = SqliteStore(path)
    store.save_agent(Agent(id="a1", name="Al"))
    store.close()
    # Someone switched the file to a rollback journal and was killed mid-transaction.
    leave_hot_journal(path, "INSERT INTO agents (id, data) VALUES ('zz', '{}')")
    store = SqliteStore(path)
    try:
        assert store.list_agents() == [Agent(id="a1", name="Al")]
    finally:
        store.close()
    assert sorted(os.listdir(tmp_path)) == ["desk.db"]
    _assert_helpkit_file(path)


@needs_posix
def test_a_foreign_file_with_a_hot_journal_is_refused_with_its_journal_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crm.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    leave_hot_journal(path, "INSERT INTO customers (name) VALUES ('Ann')")
    before = folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not a helpkit database"):
        SqliteStore(path)
    assert folder_state(tmp_path) == before


@needs_posix
def test_a_foreign_file_whose_unfinished_transaction_looks_like_helpkit_is_refused(
    tmp_path: Path,
) -> None:
    # The unfinished transaction wrote helpkit's identity, and the process was killed while it
    # committed: the first page on disk says "helpkit", its original in the journal does not.
    # Only the file as SQLite recovers it counts, so it is refused, and nothing is rolled back.
    path = tmp_path / "crm.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    leave_hot_journal(
        path, f"PRAGMA application_id = {APPLICATION_ID}", f"PRAGMA user_version = {SCHEMA_VERSION}"
    )
    data = bytearray(path.read_bytes())
    data[60:64] = SCHEMA_VERSION.to_bytes(4, "big")
    data[68:72] = APPLICATION_ID.to_bytes(4, "big")
    path.write_bytes(bytes(data))
    assert recovered_copy_identity(path, tmp_path) == (0, 0)
    shutil.rmtree(tmp_path / "recovered")
    before = folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not a helpkit database"):
        SqliteStore(path)
    assert folder_state(tmp_path) == before


@needs_posix
def test_a_file_that_is_not_sqlite_is_not_truncated_by_a_journal_beside_it(
    tmp_path: Path,
) -> None:
    # A journal that would empty the file it belongs to, beside a text file: rolled back, it
    # would truncate the text. The text is not an SQLite file, so the journal is not applied.
    leave_hot_journal(tmp_path / "scratch.db")
    path = tmp_path / "notes.db"
    path.write_text("Meeting notes\n" * 1000)
    os.rename(tmp_path / "scratch.db-journal", f"{path}-journal")
    os.remove(tmp_path / "scratch.db")
    before = folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not an SQLite database"):
        SqliteStore(path)
    assert folder_state(tmp_path) == before


@needs_posix
def test_a_hot_journal_on_a_large_file_is_refused_with_how_to_recover_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    leave_hot_journal(path)
    monkeypatch.setattr(sqlite_schema, "_RECOVERY_COPY_LIMIT", 4096)
    before = folder_state(tmp_path)
    with pytest.raises(SchemaError, match="PRAGMA quick_check") as info:
        SqliteStore(path)
    assert "desk.db-journal" in str(info.value)
    assert folder_state(tmp_path) == before


def test_a_file_that_keeps_changing_while_checked_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    Path(f"{path}-journal").write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + bytes(504))
    sizes = iter(range(1000))
    monkeypatch.setattr(sqlite_schema, "_snapshot", lambda _path: {"": (1, next(sizes), 0)})
    with pytest.raises(StoreError, match="kept changing"):
        SqliteStore(path)


# ---------------------------------------------------------------- a WAL without its index


@needs_posix
def test_a_helpkit_wal_whose_index_is_gone_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    _killed_child(_UNCHECKPOINTED, str(path), "INSERT INTO groups (id, data) VALUES ('g1', '')")
    os.remove(f"{path}-shm")
    assert Path(f"{path}-wal").stat().st_size > 0
    store = SqliteStore(path)
    try:
        with store._connection() as conn:
            assert conn.execute("SELECT id FROM groups").fetchall() == [("g1",)]
    finally:
        store.close()
    assert sorted(os.listdir(tmp_path)) == ["desk.db"]


@needs_posix
def test_a_foreign_wal_whose_index_is_gone_is_refused_without_creating_one(
    tmp_path: Path,
) -> None:
    # The file alone (the last checkpoint) is an empty database; its committed tables are in the
    # WAL. Judged on the file alone it would pass for a new database.
    path = tmp_path / "crm.db"
    _killed_child(
        _UNCHECKPOINTED,
        str(path),
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO customers (name) VALUES ('Ann')",
    )
    os.remove(f"{path}-shm")
    before = folder_state(tmp_path)
    with pytest.raises(SchemaError, match="not a helpkit database"):
        SqliteStore(path)
    assert folder_state(tmp_path) == before


# ---------------------------------------------------------------- permissions


_OPEN = """
import sys
from helpkit.errors import HelpkitError
from helpkit.stores.sqlite import SqliteStore
try:
    SqliteStore(sys.argv[1]).close()
except HelpkitError as exc:
    print(f"{type(exc).__name__}: {exc}")
else:
    print("opened")
"""


def open_without_write_permission(path: Path) -> str:
    """Open ``path`` in a process that obeys file permissions; what it printed.

    root may write anywhere, so as root the process runs without the capabilities that let
    it ignore permissions (util-linux's ``setpriv`` drops them); it stays the owner of the
    files, whose write bits are off.
    """
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, which ignores permissions, and setpriv is missing")
        prefix = [
            setpriv,
            "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "--inh-caps=-all",
            "--",
        ]
    done = subprocess.run(
        [*prefix, sys.executable, "-c", _OPEN, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if prefix and done.returncode != 0 and "setpriv" in done.stderr:
        pytest.skip(f"running as root and setpriv cannot drop capabilities: {done.stderr}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    mode = path.stat().st_mode
    path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        path.chmod(mode)


@needs_posix
def test_a_helpkit_file_in_a_read_only_folder_is_refused_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "desk.db"
    SqliteStore(path).close()
    before = folder_state(folder)
    with read_only(folder):
        said = open_without_write_permission(path)
    assert said.startswith("StoreError"), said
    assert "in a folder this process may not write" in said
    assert "write permission on the folder" in said
    assert "corrupt" not in said
    assert folder_state(folder) == before


@needs_posix
def test_a_new_file_in_a_read_only_folder_is_refused_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    with read_only(folder):
        said = open_without_write_permission(folder / "desk.db")
    assert said.startswith("StoreError: cannot create"), said
    assert "may not write the folder" in said
    assert os.listdir(folder) == []


@needs_posix
def test_a_read_only_helpkit_file_is_refused_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    before = folder_state(tmp_path)
    with read_only(path):
        said = open_without_write_permission(path)
    assert said.startswith("StoreError"), said
    assert "is read-only for this process" in said
    assert folder_state(tmp_path) == before


@needs_posix
def test_a_foreign_file_in_a_read_only_folder_is_still_named_foreign(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "crm.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.close()
    before = folder_state(folder)
    with read_only(folder):
        said = open_without_write_permission(path)
    assert said.startswith("SchemaError"), said
    assert "not a helpkit database" in said
    assert folder_state(folder) == before


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
