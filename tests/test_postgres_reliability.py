"""The PostgreSQL store under conflicting processes, killed clients, a server restart (untimed).

(a) Eight processes, each with its own store on one schema, comment on three shared tickets
    (retrying on ConflictError) and create tickets at the same time: every acknowledged write is
    in the history exactly once, ticket numbers are unique and gapless, the feed is gapless.
(b) A client writing in a loop is SIGKILLed at random moments inside its commits, 40 times:
    every write it acknowledged before the kill is there, the schema opens (``create=False``),
    every history folds to its ticket's state, numbers and feed positions stay gapless, and
    the store takes new writes.
(c) A private PostgreSQL server (initdb'ed in a temporary directory from the same binaries) is
    restarted (immediate mode: a crash and recovery) while a writer runs and while a commit
    waits in flight: the calls in flight fail with StoreError, later calls reconnect and
    succeed, nothing acknowledged is lost. A private
    server because a restart drops every connection to it: the shared test server's other
    sessions (other test runs, the session's own admin connection) must not see it.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip);
(c) also needs PostgreSQL's server binaries (``pg_config --bindir``, ``/usr/lib/postgresql``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from helpkit import lifecycle
from helpkit.errors import ConflictError, NotFoundError, StoreError
from helpkit.events import CommentAdded, Event
from helpkit.ports import TicketChange
from helpkit.queries import SortOrder, TicketQuery
from helpkit.testing.conformance import change_of
from helpkit.testing.conformance.helpers import _open
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, Ticket
from postgres_fixtures import HAS_DRIVER, IN_CI, fresh_schema, unavailable

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
HERE = str(Path(__file__).resolve().parent)

needs_posix = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")


def _comment(ticket: Ticket, comment_id: str, at: datetime) -> TicketChange:
    """An internal comment ``comment_id`` on ``ticket`` (its write, on the state read)."""
    at = max(at, ticket.updated_at)
    comment = Comment(
        id=comment_id,
        author=Actor.agent("writer"),
        body=f"comment {comment_id}",
        public=False,
        channel="internal",
        created_at=at,
    )
    return change_of(lifecycle.add_comment(ticket, comment, at=at, workflow=DEFAULT_WORKFLOW))


def _comment_ids(events: list[Event]) -> list[str]:
    return [e.comment.id for e in events if isinstance(e, CommentAdded)]


def check_store(store: Any) -> dict[str, list[Event]]:
    """What any sound store holds, checked through its API; each ticket's events by id.

    Every ticket's events have seqs 1..n and fold to its stored state; ticket numbers are
    1..N, each once; feed positions are 1..M, each event of every history once, each ticket's
    events in seq order."""
    tickets: list[Ticket] = []
    query: TicketQuery | None = TicketQuery(sort=SortOrder.CREATED, limit=500)
    while query is not None:
        page = store.query(query)
        tickets.extend(page)
        query = (
            None
            if page.next_cursor is None
            else TicketQuery(sort=SortOrder.CREATED, limit=500, after=page.next_cursor)
        )
    histories: dict[str, list[Event]] = {}
    for ticket in tickets:
        events = store.events(ticket.id)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), ticket.id
        assert ticket.seq == len(events), ticket.id
        assert lifecycle.replay(events) == ticket, ticket.id
        histories[ticket.id] = events
    numbers = sorted(t.number for t in tickets)
    assert numbers == list(range(1, len(tickets) + 1)), "ticket numbers have a gap or a repeat"
    for ticket in tickets:
        assert store.get_ticket_by_number(ticket.number).id == ticket.id, ticket.number
    feed = store.changes(limit=1_000_000)
    assert [c.position for c in feed] == list(range(1, len(feed) + 1)), "the feed has a gap"
    assert sorted((c.event.ticket_id, c.event.seq) for c in feed) == sorted(
        (e.ticket_id, e.seq) for events in histories.values() for e in events
    )
    for ticket_id, events in histories.items():
        assert [c.event for c in feed if c.event.ticket_id == ticket_id] == events
    return histories


@pytest.fixture
def schema_url(postgres_database: str) -> Iterator[Callable[..., Any]]:
    """Opens PostgresStores on the test database (a fresh schema unless one is named); closes
    every one of them after the test."""
    from helpkit.stores.postgres.store import PostgresStore

    opened: list[PostgresStore] = []

    def make(schema: str | None = None, **options: Any) -> PostgresStore:
        store = PostgresStore(postgres_database, schema=schema or fresh_schema(), **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# ---------------------------------------------------------------- (a) conflicting processes

WRITERS = 8
SHARED = ("t-a", "t-b", "t-c")
STEPS = 24  # per writer: 16 comments on the shared tickets, 8 new tickets

_start: Barrier | None = None


def _init_writer(start: Barrier) -> None:
    global _start
    _start = start


def conflicting_writer(url: str, schema: str, writer: int) -> dict[str, Any]:
    """Comment on the shared tickets (re-reading and retrying on ConflictError) and create
    tickets, in one process; what it acknowledged and how many conflicts it met."""
    from helpkit.stores.postgres.store import PostgresStore

    store = PostgresStore(url, schema=schema, pool_min=0, pool_max=1)
    comments: list[str] = []
    created: dict[str, int] = {}
    conflicts = 0
    try:
        assert _start is not None
        _start.wait()  # every writer starts at once
        for step in range(STEPS):
            if step % 3 == 2:
                (done,) = store.commit([change_of(_open(f"w{writer}-new{step}", 0, NOW))])
                created[done.ticket.id] = done.ticket.number
                continue
            ticket_id = SHARED[step % len(SHARED)]
            comment_id = f"w{writer}-{step}"
            while True:
                ticket = store.get_ticket(ticket_id)
                try:
                    store.commit([_comment(ticket, comment_id, NOW + timedelta(seconds=step))])
                except ConflictError:
                    conflicts += 1
                    continue
                comments.append(comment_id)
                break
    finally:
        store.close()
    return {"comments": comments, "created": created, "conflicts": conflicts}


def test_eight_conflicting_writer_processes_lose_nothing(
    postgres_database: str, schema_url: Callable[..., Any]
) -> None:
    store = schema_url()
    store.commit([change_of(_open(t, 0, NOW)) for t in SHARED])
    spawn = get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=WRITERS,
        mp_context=spawn,
        initializer=_init_writer,
        initargs=(spawn.Barrier(WRITERS),),
    ) as pool:
        results = list(
            pool.map(
                conflicting_writer,
                [postgres_database] * WRITERS,
                [store.schema] * WRITERS,
                range(WRITERS),
            )
        )
    assert sum(r["conflicts"] for r in results) > 0, "the writers never collided"

    histories = check_store(store)
    # Every acknowledged comment is in the shared tickets' histories exactly once, and nothing
    # else is; each writer's comments on one ticket in the order its commits returned.
    stored = [c for t in SHARED for c in _comment_ids(histories[t]) if c.startswith("w")]
    acknowledged = [c for r in results for c in r["comments"]]
    assert len(acknowledged) == WRITERS * (STEPS - STEPS // 3)
    assert sorted(stored) == sorted(acknowledged)
    for writer, result in enumerate(results):
        for ticket_id in SHARED:
            mine = [c for c in _comment_ids(histories[ticket_id]) if c.startswith(f"w{writer}-")]
            assert mine == [c for c in result["comments"] if c in mine]
    # Every acknowledged create is there with the number its commit returned; the numbers
    # of the shared tickets and the created ones together are 1..N (check_store).
    created = {t: n for r in results for t, n in r["created"].items()}
    assert len(created) == WRITERS * (STEPS // 3)
    for ticket_id, number in created.items():
        assert store.get_ticket(ticket_id).number == number
    assert len(histories) == len(SHARED) + len(created)


# ---------------------------------------------------------------- (b) SIGKILL mid-commit

KILLS = 40


def _child_writer(url: str, schema: str, round_: int, out: int) -> None:
    """Write until killed: a new ticket, comments on it and on the shared ticket, two-ticket
    batches. Before each commit it writes ``begin`` to ``out``, after it one ``ack`` line per
    change (ticket id, seq, the comment id or ``-``)."""
    from helpkit.stores.postgres.store import PostgresStore

    def say(line: str) -> None:
        os.write(out, (line + "\n").encode())

    store = PostgresStore(url, schema=schema, pool_min=0, pool_max=1)
    at = NOW + timedelta(minutes=round_)
    mine: Ticket | None = None
    n = 0
    while True:
        n += 1
        at += timedelta(seconds=1)
        if mine is None or n % 4 == 1:
            changes = [change_of(_open(f"k{round_}-{n}", 0, at))]
        elif n % 4 == 2:
            changes = [_comment(mine, f"k{round_}-{n}", at)]
        else:
            try:
                shared = store.get_ticket("shared")
            except NotFoundError:
                shared = None
            if shared is None:
                changes = [change_of(_open("shared", 0, at))]
            else:
                # A batch of two tickets: the shared one (which other rounds wrote) and mine.
                changes = [
                    _comment(shared, f"k{round_}-{n}s", at),
                    _comment(mine, f"k{round_}-{n}m", at),
                ]
        say("begin")
        try:
            done = store.commit(changes)
        except ConflictError:
            # The backend of the client killed before this one may still be committing.
            say("conflict")
            continue
        for change in done:
            comments = _comment_ids(list(change.events))
            say(f"ack {change.ticket.id} {change.ticket.seq} {comments[0] if comments else '-'}")
        mine = next((c.ticket for c in done if c.ticket.id != "shared"), mine)


def kill_driver(url: str, schema: str, kills: int, seed: int) -> None:
    """Fork a writer ``kills`` times and SIGKILL each at a random moment inside a commit
    (a random number of acknowledged commits, then a random delay after a ``begin``); print
    every line each writer wrote (read to the end after the kill) and one ``killed`` line per
    kill, as JSON lines.

    The writers are forked from this process, which has imported helpkit and psycopg but holds
    no connection: a fork costs milliseconds where starting Python costs hundreds."""
    import helpkit.stores.postgres.store  # noqa: F401 - imported once, before the forks

    rng = random.Random(seed)
    for round_ in range(kills):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the writer, until killed
            os.close(read)
            try:
                _child_writer(url, schema, round_, write)
            finally:
                os._exit(1)
        os.close(write)
        lines: list[str] = []
        wanted_acks = rng.randrange(0, 12)
        buffer = b""
        with os.fdopen(read, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(4096)
                if not chunk:
                    raise RuntimeError(f"writer {round_} ended before it was killed: {lines}")
                buffer += chunk
                *complete, rest = buffer.split(b"\n")
                buffer = rest
                lines.extend(line.decode() for line in complete)
                acks = sum(1 for line in lines if line.startswith("ack"))
                if acks >= wanted_acks and lines and lines[-1] == "begin":
                    break
            time.sleep(rng.uniform(0, 0.003))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            buffer += pipe.read()  # what it wrote before the kill landed
        lines.extend(line.decode() for line in buffer.split(b"\n") if line)
        for line in lines:
            print(json.dumps([round_, line]), flush=True)
        print(json.dumps([round_, "killed"]), flush=True)


@needs_posix
def test_a_client_killed_mid_commit_again_and_again_loses_no_acknowledged_write(
    postgres_database: str, schema_url: Callable[..., Any]
) -> None:
    from helpkit.stores.postgres.store import PostgresStore

    schema = fresh_schema()
    schema_url(schema).close()  # created here; the writers only open it
    seed = random.randrange(2**32)
    code = (
        f"import sys; sys.path.insert(0, {HERE!r}); "
        "from test_postgres_reliability import kill_driver; "
        f"kill_driver({postgres_database!r}, {schema!r}, {KILLS}, {seed})"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sum(1 for _, line in lines if line == "killed") == KILLS

    acknowledged: list[tuple[str, int, str]] = []
    in_doubt = 0  # commits whose kill landed after "begin" and before their ack
    for round_ in range(KILLS):
        mine = [line for r, line in lines if r == round_ and line != "killed"]
        acknowledged.extend(
            (parts[1], int(parts[2]), parts[3])
            for parts in (line.split() for line in mine)
            if parts[0] == "ack"
        )
        in_doubt += bool(mine) and mine[-1] == "begin"
    assert in_doubt >= KILLS // 4, f"only {in_doubt} of {KILLS} kills landed inside a commit"
    assert len(acknowledged) > KILLS

    # The schema opens as it is, and is sound.
    store = PostgresStore(postgres_database, schema=schema, create=False)
    try:
        histories = check_store(store)
        for ticket_id, seq, comment_id in acknowledged:
            events = histories.get(ticket_id)
            assert events is not None, f"acknowledged ticket {ticket_id} was lost"
            assert len(events) >= seq, f"acknowledged seq {seq} of {ticket_id} was lost"
            if comment_id != "-":
                assert _comment_ids([events[seq - 1]]) == [comment_id]
        # It takes new writes: a ticket numbered next, a comment on the shared ticket.
        (opened,) = store.commit([change_of(_open("after", 0, NOW + timedelta(days=1)))])
        assert opened.ticket.number == len(histories) + 1
        shared = store.get_ticket("shared")
        store.commit([_comment(shared, "after-kills", NOW + timedelta(days=1))])
        check_store(store)
    finally:
        store.close()


# ---------------------------------------------------------------- (c) a server restart


def _server_binaries() -> Path | None:
    """PostgreSQL's server binaries (initdb, pg_ctl), or None."""
    found = []
    if shutil.which("pg_config"):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        found.append(Path(bindir))
    found.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for path in found:
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


class PrivateServer:
    """A PostgreSQL server of its own in a temporary directory (trust auth, 127.0.0.1 on a
    free port), started, restarted and stopped by ``pg_ctl``. As root it runs as ``postgres``
    (the server refuses to run as root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="hk-pg-restart-"))
        self.data = self.root / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root without runuser: cannot start postgres")
            shutil.chown(self.root, "postgres")
            self.prefix = [runuser, "-u", "postgres", "--"]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self.prefix, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")

    def _ctl(self, action: str, mode: str = "fast") -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-m",
            mode,
            "-w",
            "-o",
            options,
            action,
        )

    def start(self) -> None:
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        self._ctl("start")

    def restart(self) -> None:
        """Stop the server as a crash does (``-m immediate``: every backend quits at once,
        nothing finishes, recovery at the start) and start it again."""
        self._ctl("restart", "immediate")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._ctl("stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    """A private PostgreSQL server, stopped and removed after the test (even a failed one)."""
    if not HAS_DRIVER:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    bindir = _server_binaries()
    if bindir is None:
        unavailable("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    server = PrivateServer(bindir)
    try:
        server.start()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        server.stop()
        if IN_CI:
            pytest.fail(f"could not start a private PostgreSQL server: {exc}")
        pytest.skip(f"could not start a private PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _waiting_for_a_lock(url: str) -> int:
    """How many sessions wait for a lock."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=3) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()
    return 0 if row is None else int(row[0])


def test_a_server_restart_fails_the_calls_in_flight_and_loses_nothing_acknowledged(
    private_server: PrivateServer,
) -> None:
    import psycopg

    from helpkit.stores.postgres.schema import FEED_LOCK
    from helpkit.stores.postgres.store import PostgresStore

    url = private_server.url
    # A short wait for a free connection: while the server is down, calls fail in about a
    # second (StoreError) instead of ten.
    store = PostgresStore(url, schema="acme", pool_min=2, pool_max=4, timeout=1.0)
    errors: list[BaseException] = []
    acknowledged: list[tuple[str, int, str]] = []
    restarted = threading.Event()
    after_restart = 0
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        # Comments on one ticket, each on the state just read; a StoreError leaves the write
        # in doubt (read it back), so the loop reads again and goes on.
        nonlocal after_restart
        n = 0
        try:
            while not stop.is_set():
                n += 1
                try:
                    ticket = store.get_ticket("t1")
                    (done,) = store.commit([_comment(ticket, f"c{n}", NOW)])
                except StoreError as exc:
                    errors.append(exc)
                    time.sleep(0.05)
                    continue
                acknowledged.append(("t1", done.ticket.seq, f"c{n}"))
                if restarted.is_set():
                    after_restart += 1
                    if after_restart >= 20:
                        return
        except BaseException as exc:
            failures.append(exc)

    in_flight: list[object] = []

    def commit_behind_the_lock() -> None:
        try:
            in_flight.append(store.commit([change_of(_open("t2", 0, NOW))]))
        except BaseException as exc:
            in_flight.append(exc)

    try:
        store.commit([change_of(_open("t1", 0, NOW))])
        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 10:
            assert time.monotonic() < deadline and writer.is_alive(), failures or errors
            time.sleep(0.01)
        # Commits in flight for sure: another session holds the feed lock, so a commit of a
        # new ticket and the writer's next commit wait for it inside their transactions when
        # the server goes down.
        holder = psycopg.connect(url, autocommit=True)
        try:
            holder.execute("SET search_path TO acme")
            holder.execute("BEGIN")
            holder.execute(FEED_LOCK)
            waiting = threading.Thread(target=commit_behind_the_lock)
            waiting.start()
            deadline = time.monotonic() + 10
            while _waiting_for_a_lock(url) < 2:
                assert time.monotonic() < deadline, "the commit never waited for the lock"
                time.sleep(0.02)
            before = len(acknowledged)
            private_server.restart()
            restarted.set()
            waiting.join(timeout=30)
            assert not waiting.is_alive()
        finally:
            holder.close()
        writer.join(timeout=60)
        stop.set()
        writer.join()
        assert failures == []
        assert before >= 10
        # The writer's commit was in flight too: it failed, and so did its calls while the
        # server was down.
        assert errors, "the writer met no error"
        assert after_restart >= 20, "the writer did not get going again after the restart"

        # The commit waiting in flight failed with the typed error, naming the connection.
        (outcome,) = in_flight
        assert isinstance(outcome, StoreError), outcome
        assert "connection" in str(outcome)
        # The writer met only StoreErrors (anything else would be in failures), each one
        # from the driver's error.
        assert all(isinstance(e.__cause__, psycopg.Error) for e in errors), errors
        # The next calls reconnected: the in-flight commit was rolled back and can be redone.
        with pytest.raises(NotFoundError):
            store.get_ticket("t2")
        (redone,) = store.commit([change_of(_open("t2", 0, NOW))])
        assert redone.ticket.number == 2
        # Every acknowledged comment is there, at the seq its commit returned.
        histories = check_store(store)
        for ticket_id, seq, comment_id in acknowledged:
            assert _comment_ids([histories[ticket_id][seq - 1]]) == [comment_id]
    finally:
        stop.set()
        store.close()
