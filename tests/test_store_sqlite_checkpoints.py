"""WAL checkpoints of the SQLite store: on a background thread (the default) or inline.

Real SQLite files. The checkpoint threshold is lowered to a few pages so that a few dozen
commits cross it; the tests wait for the checkpointer with ``settle`` (no timed assertions).
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import lifecycle
from helpkit.errors import StoreError, ValidationError
from helpkit.ports import TicketChange
from helpkit.stores import sqlite as sqlite_package
from helpkit.stores.sqlite import SqliteStore
from helpkit.stores.sqlite import checkpointer as checkpointer_module
from helpkit.stores.sqlite import store as store_module
from helpkit.testing.conformance.helpers import _note, change_of
from helpkit.testing.conformance.helpers import _open as open_outcome
from helpkit.tickets import Ticket

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
THRESHOLD = 16  # pages: the safety net is 4x that
COMMIT_FRAMES = 32  # more frames than one commit of these tests writes (14 to 21)
PAGE = 4096
FRAME = PAGE + 24  # a WAL frame: its header and a page
WAL_HEADER = 32
SETTLE = 60.0  # seconds: only how long a broken checkpointer may hang the test


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_WAL_CHECKPOINT_PAGES", THRESHOLD)


def _open(ticket_id: str, at: datetime, body: str = "Help.") -> TicketChange:
    return change_of(open_outcome(ticket_id, 0, at, body=body))


def _comment(ticket: Ticket, at: datetime, body: str) -> TicketChange:
    return change_of(_note(ticket, at, body))


def _started(store: SqliteStore) -> checkpointer_module.Checkpointer | None:
    """The store's checkpointer, if its first write started it."""
    return store._checkpointer


def _wal_bytes(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _checkpointer_threads(folder: Path) -> list[threading.Thread]:
    """The checkpointer threads alive for files in ``folder``."""
    name = f"helpkit-checkpointer {folder}"
    return [t for t in threading.enumerate() if t.name.startswith(name)]


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables a commit writes, in a stable order."""
    conn = sqlite3.connect(path)
    try:
        return {
            "tickets": conn.execute("SELECT * FROM tickets ORDER BY id").fetchall(),
            "events": conn.execute("SELECT * FROM events ORDER BY ticket_id, seq").fetchall(),
        }
    finally:
        conn.close()


def _commit_tickets(store: SqliteStore, count: int) -> int:
    """Open ``count`` tickets t0, t1, ..., one commit each (a body of a page, so a commit
    writes about 14 to 21 pages); returns the largest the WAL file was after a commit."""
    most = 0
    for i in range(count):
        store.commit([_open(f"t{i}", NOW + timedelta(seconds=i), "x" * PAGE)])
        most = max(most, _wal_bytes(Path(store.path)))
    return most


def test_the_background_checkpointer_keeps_the_wal_under_its_threshold(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()  # the schema's pages are in the file: the WAL starts empty
    store = SqliteStore(path)
    assert store.checkpoints == "background"
    assert _started(store) is None  # not started before a write
    assert store.get_tickets([]) == []
    assert _started(store) is None  # nor by a read
    most = 0
    checkpointer = None
    for i in range(120):
        store.commit([_open(f"t{i}", NOW + timedelta(seconds=i), "x" * PAGE)])
        checkpointer = _started(store)
        assert checkpointer is not None and checkpointer.alive
        assert checkpointer.settle(SETTLE)
        most = max(most, _wal_bytes(path))
    assert checkpointer is not None and checkpointer.checkpoints > 0
    # Past the threshold the checkpointer copies the WAL back (no reader holds a snapshot,
    # so all of it), the next commit starts the WAL again, truncated to the threshold: the
    # file never held more than the threshold and a commit, well below the safety net's 4x.
    assert THRESHOLD + COMMIT_FRAMES < 4 * THRESHOLD
    assert most <= WAL_HEADER + (THRESHOLD + COMMIT_FRAMES) * FRAME, most
    store.close()
    assert not Path(f"{path}-wal").exists()  # the last connection checkpointed and removed it
    assert _checkpointer_threads(tmp_path) == []
    fresh = SqliteStore(path, checkpoints="inline")
    assert len(fresh.get_tickets([f"t{i}" for i in range(120)])) == 120
    fresh.close()


def test_without_its_checkpointer_a_writer_checkpoints_inline_past_four_times_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkpointer whose thread never checkpoints (starved, or it cannot read the index).
    monkeypatch.setattr(checkpointer_module.Checkpointer, "_run", lambda self: None)
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    store = SqliteStore(path)
    most = _commit_tickets(store, 150)  # some 2,500 frames in all
    checkpointer = _started(store)
    assert checkpointer is not None and checkpointer.checkpoints == 0
    assert 0 < most <= WAL_HEADER + (4 * THRESHOLD + COMMIT_FRAMES) * FRAME, most
    store.close()
    fresh = SqliteStore(path)
    assert len(fresh.get_tickets([f"t{i}" for i in range(150)])) == 150
    fresh.close()


def test_inline_checkpoints_start_no_thread_and_keep_the_wal_bounded(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    store = SqliteStore(path, checkpoints="inline")
    most = _commit_tickets(store, 60)
    assert _started(store) is None and _checkpointer_threads(tmp_path) == []
    assert most <= WAL_HEADER + (THRESHOLD + COMMIT_FRAMES) * FRAME, most
    store.close()


def test_close_stops_the_checkpointer_and_later_calls_fail_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    store = SqliteStore(path)
    _commit_tickets(store, 40)
    checkpointer = _started(store)
    assert checkpointer is not None and checkpointer.alive
    assert len(_checkpointer_threads(tmp_path)) == 1
    store.close()
    assert not checkpointer._thread.is_alive()
    assert _checkpointer_threads(tmp_path) == []
    with pytest.raises(StoreError, match="closed"):
        store.commit([_open("late", NOW)])
    assert _started(store) is None and _checkpointer_threads(tmp_path) == []
    store.close()  # twice: harmless


def test_two_store_objects_on_one_file_committing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    SqliteStore(path).close()
    stores = [SqliteStore(path), SqliteStore(path)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(store: SqliteStore, prefix: str) -> None:
        try:
            start.wait()
            for i in range(60):
                ticket = store.commit([_open(f"{prefix}{i}", NOW, "y" * PAGE)])[0].ticket
                store.commit([_comment(ticket, NOW, "z" * PAGE)])
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(store, prefix))
        for store, prefix in zip(stores, ("a", "b"), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(_started(store) is not None for store in stores)
    for store in stores:
        store.close()
    assert _checkpointer_threads(tmp_path) == []
    fresh = SqliteStore(path)
    ids = [f"{prefix}{i}" for prefix in "ab" for i in range(60)]
    tickets = fresh.get_tickets(ids)
    assert [t.id for t in tickets] == ids
    assert sorted(t.number for t in tickets) == list(range(1, 121))
    for ticket in tickets:
        events = fresh.events(ticket.id)
        assert [e.seq for e in events] == list(range(1, ticket.seq + 1))
        assert lifecycle.replay(events) == ticket
        assert [c.id for c in lifecycle.conversation(events)] == [
            f"{ticket.id}-m1",  # the opening comment (conformance helpers' ids)
            f"{ticket.id}-m3",  # the note, the ticket's third event
        ]
    fresh.close()


def test_the_option_is_validated_and_taken_from_the_url(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="checkpoints"):
        SqliteStore(tmp_path / "a.db", checkpoints="sometimes")
    factory = sqlite_package.sqlite_store_factory
    store = factory(f"sqlite:///{tmp_path / 'b.db'}?checkpoints=inline")
    assert store.checkpoints == "inline"
    store.close()
    store = factory(f"sqlite:///{tmp_path / 'c.db'}")
    assert store.checkpoints == "background"
    store.close()


# A command: open a ticket (with a body of 0..3 pages), or comment on the n-th ticket opened.
commands = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(1, 3 * PAGE)),
        st.tuples(st.integers(0, 40), st.integers(1, 3 * PAGE)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(commands, min_size=1, max_size=6))
def test_background_and_inline_stores_hold_the_same_rows(
    batches: list[list[tuple[object, int]]],
) -> None:
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "_WAL_CHECKPOINT_PAGES", THRESHOLD)
        paths = {mode: Path(folder) / f"{mode}.db" for mode in ("inline", "background")}
        for mode, path in paths.items():
            store = SqliteStore(path, checkpoints=mode)
            tickets: list[Ticket] = []
            step = 0
            for batch in batches:
                changes: list[TicketChange] = []
                latest: dict[str, Ticket] = {}
                for what, size in batch:
                    step += 1
                    at = NOW + timedelta(seconds=step)
                    if what == "open":
                        changes.append(_open(f"t{step}", at, "b" * size))
                    elif tickets:
                        target = tickets[int(what) % len(tickets)]  # type: ignore[call-overload]
                        target = latest.get(target.id, target)
                        changes.append(_comment(target, at, "b" * size))
                    else:
                        continue
                    latest[changes[-1].ticket.id] = changes[-1].ticket
                committed = store.commit(changes)
                seen = {t.id: i for i, t in enumerate(tickets)}
                for change in committed:
                    if change.ticket.id in seen:
                        tickets[seen[change.ticket.id]] = change.ticket
                    else:
                        seen[change.ticket.id] = len(tickets)
                        tickets.append(change.ticket)
            store.close()
        assert _checkpointer_threads(Path(folder)) == []
        assert _rows(paths["background"]) == _rows(paths["inline"])
