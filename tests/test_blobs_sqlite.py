"""The SQLite blob store (``sqlite:///desk.db``): it passes the blob store conformance suite,
answers every sequence of puts, reads and deletes as the folder store does, keeps an email
intake's attachments as the folder store does, and a delete leaves no copy in the file."""

from __future__ import annotations

import functools
import hashlib
import itertools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.blobs.folder import FolderBlobStore
from helpkit.blobs.sqlite import SqliteBlobStore
from helpkit.errors import StoreError, UnknownBackendError, ValidationError
from helpkit.plugins import PluginHost
from helpkit.ports import BlobStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.conformance import BlobStoreCases, BlobStoreFactory, BlobStoreOpener

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _open(path: str) -> SqliteBlobStore:
    """A blob store on the SQLite file ``path`` (module level: picklable, for processes)."""
    return SqliteBlobStore(SqliteStore(path))


def _reopen(store: BlobStore) -> functools.partial[SqliteBlobStore]:
    assert isinstance(store, SqliteBlobStore)
    return functools.partial(_open, store.path)


def _corrupt(store: BlobStore, sha256: str) -> None:
    """Flip one bit of the kept copy, as a failing disk would."""
    assert isinstance(store, SqliteBlobStore)
    conn = sqlite3.connect(store.path)
    try:
        (data,) = conn.execute("SELECT data FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        damaged = bytearray(data)
        damaged[len(damaged) // 2] ^= 0x01
        conn.execute("UPDATE blobs SET data = ? WHERE sha256 = ?", (bytes(damaged), sha256))
        conn.commit()
    finally:
        conn.close()


class TestSqliteBlobStore(BlobStoreCases):
    persistent = True

    @pytest.fixture
    def make_blob_store(self, tmp_path: Path) -> BlobStoreFactory:
        counter = itertools.count()
        return lambda: _open(str(tmp_path / f"blobs{next(counter)}.db"))

    @pytest.fixture
    def blob_store_opener(self) -> BlobStoreOpener:
        return _reopen

    @pytest.fixture
    def corrupt_blob(self) -> object:
        return _corrupt


# ---------------------------------------------------------------- the folder store's answers

_POOL = [b"", b"\x00", b"hello", "Grüße".encode(), bytes(range(256)) * 3, b"x" * 70_000]

_operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "get", "exists", "delete"]),
        st.integers(0, len(_POOL) - 1),
    ),
    max_size=25,
)


def _answer(store: BlobStore, operation: str, data: bytes) -> object:
    address = hashlib.sha256(data).hexdigest()
    try:
        if operation == "put":
            return store.put(data)
        if operation == "get":
            return store.get(address)
        if operation == "exists":
            return store.exists(address)
        return store.delete(address)
    except Exception as exc:  # the kind of refusal is part of the answer
        return type(exc).__name__


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_operations)
def test_any_sequence_of_calls_is_answered_as_the_folder_store_answers(
    tmp_path: Path, operations: list[tuple[str, int]]
) -> None:
    case = tmp_path / f"case-{next(_cases)}"
    case.mkdir()
    folder = FolderBlobStore(case / "blobs", fsync=False)
    rows = _open(str(case / "desk.db"))
    try:
        for operation, which in operations:
            data = _POOL[which]
            assert _answer(rows, operation, data) == _answer(folder, operation, data), (
                operation,
                which,
            )
        for data in _POOL:  # and what each keeps afterwards
            assert _answer(rows, "get", data) == _answer(folder, "get", data)
    finally:
        rows.close()
        folder.close()


_cases = itertools.count()


# ---------------------------------------------------------------- email intake, both ways


def _corpus_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCH))
    import email_corpus

    return email_corpus


def _ingest(corpus: Path, desk: Helpdesk) -> list[tuple[Any, ...]]:
    """Receive every message of ``corpus`` in order; what the desk holds afterwards, with
    nothing that differs between two desks by chance (ids, instants): each outcome, each
    ticket's number, subject and status, and each comment's text and attachments with the
    bytes read back from the blob store."""
    from helpkit.channels.email_in import parse

    seen: list[tuple[Any, ...]] = []
    for path in sorted(corpus.glob("*.eml")):
        intake = desk.receive(parse(path.read_bytes(), received_at=datetime.now(UTC)))
        seen.append(("outcome", path.name, intake.kind.value, intake.duplicate))
    for ticket in desk.tickets(limit=1000).items:
        seen.append(("ticket", ticket.number, ticket.subject, ticket.status))
        for comment in desk.conversation(ticket.id):
            files = [
                (
                    a.filename,
                    a.content_type,
                    a.size,
                    a.sha256,
                    a.inline,
                    a.content_id,
                    desk.attachment_bytes(ticket.id, a.id),
                )
                for a in comment.attachments
            ]
            seen.append(("comment", ticket.number, comment.body, comment.external_id, files))
    return seen


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), messages=st.integers(30, 60))
def test_email_intake_keeps_the_same_tickets_and_attachments_in_sqlite_as_in_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, messages: int
) -> None:
    email_corpus = _corpus_module(monkeypatch)
    case = tmp_path / f"intake-{next(_cases)}"
    email_corpus.write_corpus(case / "mail", messages, seed)
    config = {"intake": {"addresses": [email_corpus.DESK]}}
    answers = []
    for blobs in ("file", "sqlite"):
        db = case / f"{blobs}.db"
        url = f"file://{case}/{blobs}.blobs" if blobs == "file" else f"sqlite:///{db}"
        with Helpdesk(f"sqlite:///{db}", blobs=url, entry_points=False, config=config) as desk:
            answers.append(_ingest(case / "mail", desk))
    assert answers[0] == answers[1]
    conn = sqlite3.connect(case / "sqlite.db")
    try:
        kept = conn.execute("SELECT count(*) FROM blobs").fetchone()[0]
    finally:
        conn.close()
    assert not (case / "sqlite.blobs").exists()
    files = [p for p in (case / "file.blobs").rglob("*") if p.is_file()]
    assert kept == len(files)


# ---------------------------------------------------------------- its own promises


def _checkpoint(path: Path) -> bytes:
    """Copy the write-ahead log into the database file and empty it; the file's bytes."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    return path.read_bytes()


def test_a_delete_zeroes_the_bytes_it_frees(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    marker = b"PRIVATE-BYTES-" * 1000  # several overflow pages
    store = SqliteStore(path)
    blobs = SqliteBlobStore(store)
    # As on an SQLite built without SQLITE_SECURE_DELETE (this one may have it on): the
    # delete must turn it on itself. (One thread: the pool holds this one connection.)
    with store._connection() as conn:
        conn.execute("PRAGMA secure_delete = OFF")
    try:
        address = blobs.put(marker)
        assert b"PRIVATE-BYTES-" in _checkpoint(path)
        assert blobs.delete(address) is True
        assert b"PRIVATE-BYTES-" not in _checkpoint(path)  # freed, and overwritten with zeros
        assert blobs.exists(address) is False
    finally:
        blobs.close()


def test_a_put_writes_over_a_damaged_copy(tmp_path: Path) -> None:
    blobs = _open(str(tmp_path / "desk.db"))
    try:
        data = bytes(range(256)) * 8
        address = blobs.put(data)
        _corrupt(blobs, address)
        assert blobs.put(data) == address
        assert blobs.get(address) == data
    finally:
        blobs.close()


def test_a_delete_leaves_no_copy_in_the_file_after_compacting(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    marker = b"SECRET-ATTACHMENT-BYTES-" * 400
    with Helpdesk(f"sqlite:///{path}", blobs=f"sqlite:///{path}", entry_points=False) as desk:
        address = desk.blobs.put(marker)
        assert desk.blobs.delete(address) is True
        assert desk.blobs.delete(address) is False
        desk.compact()
    for name in ("desk.db", "desk.db-wal"):
        kept = tmp_path / name
        assert not kept.exists() or b"SECRET-ATTACHMENT-BYTES-" not in kept.read_bytes()


def test_blob_urls_open_the_sqlite_store_and_bad_ones_are_refused(tmp_path: Path) -> None:
    host = PluginHost(entry_points=False)
    blobs = host.open_blob_store(f"sqlite:///{tmp_path}/a.db?synchronous=NORMAL")
    try:
        assert isinstance(blobs, SqliteBlobStore)
        assert blobs.path == f"{tmp_path}/a.db"
        address = blobs.put(b"kept")
    finally:
        blobs.close()
    store = SqliteStore(tmp_path / "a.db")  # the store's own file, readable as such
    try:
        assert store.blob(address) == b"kept"
    finally:
        store.close()
    with pytest.raises(ValidationError, match="unknown SQLite store option"):
        host.open_blob_store(f"sqlite:///{tmp_path}/b.db?colour=red")
    with pytest.raises(UnknownBackendError):
        host.open_blob_store(f"sqlites:///{tmp_path}/b.db")


def test_a_closed_sqlite_blob_store_refuses_use_and_closes_only_what_it_owns(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "desk.db")
    shared = SqliteBlobStore(store, owned=False)
    address = shared.put(b"x")
    shared.close()
    calls: list[Callable[[str], object]] = [shared.get, shared.exists, shared.delete]
    for call in calls:
        with pytest.raises(StoreError, match="closed"):
            call(address)
    with pytest.raises(StoreError, match="closed"):
        shared.put(b"x")
    assert store.blob(address) == b"x"  # the store it did not own stays open
    owner = SqliteBlobStore(store)
    owner.close()
    owner.close()  # twice is harmless
    with pytest.raises(StoreError, match="closed"):
        store.blob(address)
