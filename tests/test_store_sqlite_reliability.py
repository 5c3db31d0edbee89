"""The SQLite store under several processes and under SIGKILL (not timed).

(a) Processes adding comments to the same tickets with retry on conflict lose nothing.
(b) A writer killed with SIGKILL mid-stream leaves a sound file holding every acknowledged write.
(c) A process killed while it creates a new file (the schema, the switch to WAL) leaves a file
    that the next open recovers and completes, whatever the moment of the kill.
Foreign and corrupt files are covered in test_store_sqlite.py, hostile files (hot journals,
permissions, FIFOs) in test_store_sqlite_files.py.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from helpkit import lifecycle
from helpkit.errors import ConflictError
from helpkit.events import CommentAdded
from helpkit.ports import TicketChange
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.queries import SortOrder, TicketQuery
from helpkit.stores.sqlite import APPLICATION_ID, SCHEMA_VERSION, SqliteStore
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, Ticket

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
TICKETS = ("t-a", "t-b", "t-c")
WORKERS = 4
COMMENTS_PER_WORKER = 24

needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _open(ticket_id: str, number: int, at: datetime) -> TicketChange:
    actor = Actor.contact("c1")
    outcome = lifecycle.open_ticket(
        ticket_id=ticket_id,
        number=number,
        at=at,
        actor=actor,
        subject=f"Ticket {ticket_id}",
        requester_id="c1",
        organization_id=None,
        impact=Impact.MEDIUM,
        urgency=Urgency.HIGH,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="web",
        first_comment=Comment(
            id=f"{ticket_id}-opening",
            author=actor,
            body="Help.",
            public=True,
            channel="web",
            created_at=at,
        ),
    )
    return TicketChange(outcome.ticket, outcome.events, 0)


def _comment(ticket: Ticket, comment_id: str, author: str, at: datetime) -> TicketChange:
    comment = Comment(
        id=comment_id,
        author=Actor.agent(author),
        body=f"comment {comment_id}",
        public=False,
        channel="internal",
        created_at=at,
    )
    outcome = lifecycle.add_comment(ticket, comment, at=at, workflow=DEFAULT_WORKFLOW)
    return TicketChange(outcome.ticket, outcome.events, outcome.previous_seq)


def _check_history(store: SqliteStore, ticket_id: str) -> list[str]:
    """Gapless seqs, state == fold of events; returns the ticket's comment ids."""
    events = store.events(ticket_id)
    state = store.get_ticket(ticket_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), ticket_id
    assert state.seq == len(events), ticket_id
    assert lifecycle.replay(events) == state, ticket_id
    return [c.id for c in lifecycle.conversation(events)]


# ---------------------------------------------------------------- (a) conflicting processes


_start: Barrier | None = None


def _init_worker(start: Barrier) -> None:
    global _start
    _start = start


def comment_worker(path: str, worker: int) -> tuple[list[str], int]:
    """Add comments round-robin to the shared tickets, retrying on conflict.

    Returns the acknowledged comment ids (commit returned) and how many conflicts it met.
    """
    store = SqliteStore(path, timeout=30)
    assert _start is not None
    _start.wait()  # all workers write at the same time
    acknowledged: list[str] = []
    conflicts = 0
    try:
        for n in range(COMMENTS_PER_WORKER):
            ticket_id = TICKETS[n % len(TICKETS)]
            comment_id = f"w{worker}-{n}"
            while True:
                ticket = store.get_ticket(ticket_id)
                at = ticket.updated_at + timedelta(seconds=1)
                try:
                    store.commit([_comment(ticket, comment_id, f"agent{worker}", at)])
                except ConflictError:
                    conflicts += 1
                    continue
                acknowledged.append(comment_id)
                break
    finally:
        store.close()
    return acknowledged, conflicts


def test_conflicting_processes_lose_no_comment(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStore(path)
    try:
        store.commit([_open(t, 0, NOW) for t in TICKETS])
    finally:
        store.close()
    spawn = get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=WORKERS,
        mp_context=spawn,
        initializer=_init_worker,
        initargs=(spawn.Barrier(WORKERS),),
    ) as pool:
        results = list(pool.map(comment_worker, [path] * WORKERS, range(WORKERS)))
    acknowledged = [c for acked, _ in results for c in acked]
    assert len(acknowledged) == WORKERS * COMMENTS_PER_WORKER
    assert sum(conflicts for _, conflicts in results) > 0, "the workers never collided"

    store = SqliteStore(path)
    try:
        stored: list[str] = []
        for ticket_id in TICKETS:
            stored.extend(c for c in _check_history(store, ticket_id) if c.startswith("w"))
        feed = store.changes(limit=100_000)
        histories = {t: store.events(t) for t in TICKETS}
    finally:
        store.close()
    # The change feed holds every committed event once, in commit order across the processes:
    # positions increase without gaps, each ticket's events in seq order, and each worker's
    # acknowledged comments in the order the worker's commits returned.
    assert [c.position for c in feed] == list(range(1, len(feed) + 1))
    assert sorted((c.event.ticket_id, c.event.seq) for c in feed) == sorted(
        (e.ticket_id, e.seq) for events in histories.values() for e in events
    )
    for ticket_id, events in histories.items():
        assert [c.event for c in feed if c.event.ticket_id == ticket_id] == events
    fed_comments = [c.event.comment.id for c in feed if isinstance(c.event, CommentAdded)]
    for worker, (acked, _) in enumerate(results):
        assert [c for c in fed_comments if c.startswith(f"w{worker}-")] == acked
    # Every acknowledged comment is there exactly once, and nothing else.
    assert sorted(stored) == sorted(acknowledged)
    # Each worker's comments on one ticket keep the worker's order.
    for worker in range(WORKERS):
        mine = [c for c in stored if c.startswith(f"w{worker}-")]
        for ticket_index in range(len(TICKETS)):
            on_ticket = [c for c in mine if int(c.split("-")[1]) % len(TICKETS) == ticket_index]
            assert on_ticket == sorted(on_ticket, key=lambda c: int(c.split("-")[1]))


# ---------------------------------------------------------------- (b) SIGKILL mid-stream


def killed_writer(path: str) -> None:
    """Write forever: new tickets, comments, two-ticket batches; print each ack after commit."""
    store = SqliteStore(path)
    at = NOW
    tickets: list[Ticket] = []
    n = 0
    while True:
        n += 1
        at += timedelta(seconds=1)
        if n % 3 == 1 or len(tickets) < 2:
            (change,) = store.commit([_open(f"k{n}", 0, at)])
            tickets.append(change.ticket)
            acks = [change]
        elif n % 3 == 2:
            index = n % len(tickets)
            change = _comment(tickets[index], f"k{n}", "writer", at)
            store.commit([change])
            tickets[index] = change.ticket
            acks = [change]
        else:
            first, second = n % len(tickets), (n + 1) % len(tickets)
            one = _comment(tickets[first], f"k{n}a", "writer", at)
            two = _comment(tickets[second], f"k{n}b", "writer", at)
            store.commit([one, two])
            tickets[first], tickets[second] = one.ticket, two.ticket
            acks = [one, two]
        for change in acks:
            print(f"ack {change.ticket.id} {change.ticket.seq}", flush=True)


@needs_posix
def test_a_writer_killed_mid_stream_leaves_every_acknowledged_write(tmp_path: Path) -> None:
    path = str(tmp_path / "killed.db")
    SqliteStore(path).close()
    here = str(Path(__file__).resolve().parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); "
        f"from test_store_sqlite_reliability import killed_writer; killed_writer({path!r})"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    acknowledged: dict[str, int] = {}

    def record(line: str) -> None:
        _, ticket_id, seq = line.split()
        acknowledged[ticket_id] = max(acknowledged.get(ticket_id, 0), int(seq))

    assert writer.stdout is not None
    try:
        for count, line in enumerate(writer.stdout, start=1):
            record(line)
            if count >= 150:
                break
        writer.send_signal(signal.SIGKILL)
        # Acks printed before the kill landed count too: drain the pipe.
        for line in writer.stdout:
            record(line)
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # No state without its events, no events without state.
        orphans = conn.execute(
            "SELECT t.id FROM tickets t LEFT JOIN events e ON e.ticket_id = t.id "
            "GROUP BY t.id HAVING coalesce(max(e.seq), 0) != t.seq"
        ).fetchall()
        assert orphans == []
    finally:
        conn.close()

    store = SqliteStore(path)
    try:
        for ticket_id, seq in acknowledged.items():
            state = store.get_ticket(ticket_id)
            assert state.seq >= seq, f"acknowledged seq {seq} of {ticket_id} was lost"
            _check_history(store, ticket_id)
        page = store.query(TicketQuery(sort=SortOrder.CREATED, limit=1000))
        assert page.next_cursor is None
        assert {t.id for t in page} >= set(acknowledged)
        # Numbers are given inside the commits, so the survivors are numbered without gaps.
        numbers = sorted(t.number for t in page)
        assert numbers == list(range(1, len(numbers) + 1))
        for ticket in page:
            _check_history(store, ticket.id)
    finally:
        store.close()


# ---------------------------------------------------------------- (c) SIGKILL while creating

CREATION_KILLS = 100


def creation_killer(folder: str, kills: int) -> None:
    """SIGKILL ``kills`` processes, each after a random delay, that create a new store again and
    again (``k<n>.db``: create, close, delete, create...): each kill lands inside a creation.

    The processes are forked from this one, which has imported helpkit but opened nothing: a
    fork costs a few milliseconds where starting Python costs several hundred.
    """
    rng = random.Random()
    for kill in range(kills):
        path = os.path.join(folder, f"k{kill:03d}.db")
        pid = os.fork()
        if pid == 0:  # the child: create, until killed
            try:
                for _ in range(1000):
                    SqliteStore(path).close()
                    os.remove(path)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.001, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


@needs_posix
@pytest.mark.slow
def test_files_killed_while_being_created_reopen(tmp_path: Path) -> None:
    here = str(Path(__file__).resolve().parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); "
        "from test_store_sqlite_reliability import creation_killer; "
        f"creation_killer({str(tmp_path)!r}, {CREATION_KILLS})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=os.environ.copy())
    files = sorted(name for name in os.listdir(tmp_path) if name.endswith(".db"))
    # What each kill left beside the file it was creating.
    left = {
        name: [s for s in ("-journal", "-wal", "-shm") if (tmp_path / f"{name}{s}").exists()]
        for name in files
    }
    for name in files:
        path = tmp_path / name
        try:
            SqliteStore(path).close()
        except Exception as exc:
            raise AssertionError(f"{name}, killed leaving {left[name]}, did not reopen") from exc
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], name
            assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID, name
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION, name
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", name
        finally:
            conn.close()
    # Recovered and closed: nothing is left beside any file.
    assert sorted(os.listdir(tmp_path)) == files
    # The kills landed inside the creation, not only between two files: some left a journal
    # or a WAL behind. (How many left a journal varies with the disk's fsync latency.)
    assert sum(1 for suffixes in left.values() if suffixes) >= CREATION_KILLS // 4, left
