"""The NATS JetStream sink against a real nats-server (``helpkit.sinks.nats``, ``helpkit publish``).

These tests need nats-py (the ``nats`` extra) and a NATS server with JetStream at
``$HELPKIT_TEST_NATS_URL`` (default ``nats://127.0.0.1:4222``, which ``.ci/run`` starts). Without
them they are skipped, except under ``CI=true``, where they fail. Each test publishes to a stream
and a subject prefix of its own and deletes the stream afterwards. A few start a private
nats-server on a free port of their own (to stop it mid-way, or to run one without JetStream).

What is checked is what the stream holds, read with a client of the test's own: every committed
event once, in commit order; replays after a crash and concurrent sinks dropped as duplicates;
nothing of a refused commit; the cursor moved only over what the server acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast
from urllib.parse import urlsplit

import attrs
import pytest

from helpkit.cli import main
from helpkit.errors import BrokerError, ConfigError, ConflictError, SchemaError
from helpkit.events import Event
from helpkit.lifecycle import Outcome
from helpkit.ports import Change, ChangeFeed, Store
from helpkit.sinks.nats import NatsSink, message_id, read_message, subject, subject_token
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.conformance.helpers import _note, _open, _stale_tag, _Time, change_of

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.api import RawStreamMsg

ROOT = Path(__file__).resolve().parents[1]
NATS_URL = os.environ.get("HELPKIT_TEST_NATS_URL", "nats://127.0.0.1:4222")
IN_CI = os.environ.get("CI", "").lower() == "true"
HAS_CLIENT = importlib.util.find_spec("nats") is not None

_T = TypeVar("_T")


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason}: under CI=true these tests must run (.ci/run starts NATS)")
    pytest.skip(reason)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _on_server(url: str, work: Callable[[JetStreamContext], Awaitable[_T]]) -> _T:
    """Run ``work`` with a JetStream context of the test's own client."""
    import nats

    async def run() -> _T:
        client = await nats.connect(url, allow_reconnect=False)
        try:
            return await work(client.jetstream())
        finally:
            await client.close()

    return asyncio.run(run())


@pytest.fixture(scope="session")
def client() -> None:
    """nats-py is installed (the ``nats`` extra)."""
    if not HAS_CLIENT:
        _unavailable("nats-py is not installed (pip install -e '.[nats]')")


@pytest.fixture(scope="session")
def server(client: None) -> str:
    """The URL of a NATS server with JetStream."""
    parts = urlsplit(NATS_URL)
    if not _port_open(parts.hostname or "127.0.0.1", parts.port or 4222):
        _unavailable(f"no NATS server at {NATS_URL} (nats-server -js -p 4222)")

    if not _has_jetstream(NATS_URL):
        _unavailable(f"the NATS server at {NATS_URL} has no JetStream (nats-server -js)")
    return NATS_URL


@attrs.frozen
class Target:
    """A stream of the test's own, and what it holds."""

    url: str
    stream: str
    prefix: str

    def sink(self, store: Store, **options: Any) -> NatsSink:
        return NatsSink(store, self.url, stream=self.stream, prefix=self.prefix, **options)

    def messages(self) -> list[RawStreamMsg]:
        async def read(js: JetStreamContext) -> list[RawStreamMsg]:
            state = (await js.stream_info(self.stream)).state
            if not state.messages:
                return []
            return [
                await js.get_msg(self.stream, seq)
                for seq in range(state.first_seq, state.last_seq + 1)
            ]

        return _on_server(self.url, read)

    def count(self) -> int:
        async def count(js: JetStreamContext) -> int:
            return (await js.stream_info(self.stream)).state.messages

        return _on_server(self.url, count)

    def changes(self) -> list[Change]:
        return [read_message(m.data or b"") for m in self.messages()]

    def delete(self) -> None:
        from nats.js.errors import NotFoundError

        async def delete(js: JetStreamContext) -> None:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(self.stream)

        _on_server(self.url, delete)


def _target(url: str) -> Target:
    token = uuid.uuid4().hex[:12]
    return Target(url, f"HELPKIT_TEST_{token}", f"helpkit-test.{token}")


@pytest.fixture
def target(server: str) -> Iterator[Target]:
    made = _target(server)
    yield made
    made.delete()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "d.db")
    yield made
    made.close()


def _feed(store: Store) -> ChangeFeed:
    assert isinstance(store, ChangeFeed)
    return store


def _commit_tickets(store: Store, count: int, time: _Time, *, first: int = 1) -> list[Outcome]:
    """Open ``count`` tickets, each in its own commit, and add a note to each (in one commit)."""
    opened = [_open(f"t{n}", n, time.tick()) for n in range(first, first + count)]
    for outcome in opened:
        store.commit([change_of(outcome)])
    notes = [_note(outcome.ticket, time.tick()) for outcome in opened]
    store.commit([change_of(note) for note in notes])
    return notes


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- The message form (no server needed) ---------------------------------------------------------


def test_subject_tokens_keep_ids_and_encode_the_rest_without_collisions() -> None:
    assert subject_token("0190d5c4e8a07b3f") == "0190d5c4e8a07b3f"
    assert subject_token("comment_added") == "comment_added"
    assert subject_token("T-1_a") == "T-1_a"
    assert subject_token("a.b") == "_" + b"a.b".hex()
    assert subject_token("_x") == "_" + b"_x".hex()  # a token starting "_" is always encoded
    assert subject_token("é *>") == "_" + "é *>".encode().hex()
    texts = ["a", "a.b", "a_b", "_a", "_61", "61", "x y", "x*", "x>", "\u00e9", "-a"]
    tokens = [subject_token(t) for t in texts]
    assert len(set(tokens)) == len(texts)
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), token
    assert subject("p.q", "ticket_opened", "t1") == "p.q.ticket_opened.t1"
    assert subject("p.q", ticket_id="t1") == "p.q.*.t1"
    assert subject("p.q", "sla_breached") == "p.q.sla_breached.*"


def test_a_message_body_reads_back_as_its_change() -> None:
    outcome = _open("t1", 1, _Time().tick())
    change = Change(7, outcome.events[0])
    body = _body_of(change, "p.q")
    assert json.loads(body)["position"] == 7
    assert read_message(body) == change
    assert isinstance(read_message(body.decode()).event, Event)
    assert message_id(outcome.events[0]) == "t1:1"
    for bad in (b"", b"[]", b'{"position": 1}', b'{"position": 0, "event": {}}', b"\xff"):
        with pytest.raises(SchemaError):
            read_message(bad)
    with pytest.raises(SchemaError):
        read_message(json.dumps({"position": 3, "event": {"type": "nonsense"}}))


def _body_of(change: Change, prefix: str) -> bytes:
    from helpkit.sinks import nats as module

    body: bytes = module._message(change, prefix).body
    return body


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"url": "http://127.0.0.1:4222"}, "nats://"),
        ({"url": "nats://127.0.0.1:99999"}, "bad NATS URL"),
        ({"url": "nats://:4222"}, "a host"),
        ({"stream": "a.b"}, "stream name"),
        ({"stream": ""}, "stream name"),
        ({"prefix": "a.*"}, "wildcards"),
        ({"prefix": "a..b"}, "subject prefix"),
        ({"cursor": " "}, "cursor"),
        ({"batch": 0}, "batch"),
        ({"timeout": 0}, "timeout"),
        ({"duplicate_window": float("nan")}, "duplicate_window"),
    ],
)
def test_a_bad_configuration_is_refused_at_once(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        NatsSink(MemoryStore(), **options)


def test_a_store_without_a_change_feed_is_refused() -> None:
    class NoFeed:
        capabilities = frozenset[str]()

    with pytest.raises(ConfigError, match="no change feed"):
        NatsSink(cast(Store, NoFeed()))


# -- Publishing ----------------------------------------------------------------------------------


def test_every_committed_event_is_published_once_in_commit_order(
    store: Store, target: Target
) -> None:
    feed = _feed(store)
    time = _Time()
    _commit_tickets(store, 6, time)
    odd = _open("ticket.with dots*", 99, time.tick())  # an id that is no subject token
    store.commit([change_of(odd)])
    committed = feed.changes()
    with target.sink(store, batch=4) as sink:
        report = sink.run_once()
        assert report.published == len(committed) and report.duplicates == 0
        assert report.position == feed.last_position() == feed.cursor("nats")
        assert target.changes() == committed
        messages = target.messages()
        for message, change in zip(messages, committed, strict=True):
            event = change.event
            assert message.subject == subject(target.prefix, event.TYPE, event.ticket_id)
            assert message.headers is not None
            assert message.headers["Nats-Msg-Id"] == message_id(event)
            assert message.headers["Helpkit-Position"] == str(change.position)
        assert str(messages[-1].subject).endswith("." + subject_token("ticket.with dots*"))
        # Nothing new: nothing published.
        assert sink.run_once().published == 0
        more = _commit_tickets(store, 2, time, first=10)
        again = sink.run_once()
    # Each ticket: opened, its first comment, a note.
    assert again.published == len(feed.changes()) - len(committed) == 3 * len(more)
    assert target.changes() == feed.changes()


def test_the_stream_is_created_with_the_sinks_subjects_and_duplicate_window(
    target: Target,
) -> None:
    from datetime import timedelta

    with target.sink(MemoryStore(), duplicate_window=timedelta(minutes=7)) as sink:
        sink.start()

    async def config(js: JetStreamContext) -> Any:
        return (await js.stream_info(target.stream)).config

    created = _on_server(target.url, config)
    assert created.subjects == [f"{target.prefix}.>"]
    assert created.duplicate_window == 420.0


def test_a_replay_after_a_crash_is_dropped_by_the_stream(tmp_path: Path, target: Target) -> None:
    """A sink killed after the server acknowledged a batch and before its cursor moved."""
    path = tmp_path / "d.db"
    store = SqliteStore(path)
    feed = _feed(store)
    _commit_tickets(store, 6, _Time())  # 18 events
    crash = (
        "import os, sys\n"
        "from helpkit.sinks.nats import NatsSink\n"
        "from helpkit.stores.sqlite import SqliteStore\n"
        "path, url, stream, prefix = sys.argv[1:5]\n"
        "def killed(*args, **kwargs):\n"
        "    os._exit(17)\n"
        "SqliteStore.save_cursor = killed\n"
        "NatsSink(SqliteStore(path), url, stream=stream, prefix=prefix, batch=5).run_once()\n"
    )
    args = [str(path), target.url, target.stream, target.prefix]
    done = subprocess.run(
        [sys.executable, "-c", crash, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 17, done.stderr
    # The first batch is in the stream; the cursor did not move.
    assert target.count() == 5
    assert feed.cursor("nats") == 0
    with target.sink(store, batch=5) as sink:
        report = sink.run_once()
    assert report.duplicates == 5  # the replayed batch: acknowledged, not stored again
    assert report.published == len(feed.changes()) - 5
    assert target.changes() == feed.changes()
    assert feed.cursor("nats") == feed.last_position()
    store.close()


def test_a_sink_killed_after_publishing_everything_replays_nothing_new(
    tmp_path: Path, target: Target
) -> None:
    """The same crash, in process: the whole run acknowledged, no cursor saved."""
    store = SqliteStore(tmp_path / "d.db")
    feed = _feed(store)
    _commit_tickets(store, 3, _Time())

    class CrashError(Exception):
        pass

    def killed(name: str, position: int, *, expected: int | None = None) -> None:
        raise CrashError

    with target.sink(store) as sink:
        sink_feed = cast(Any, sink)._feed
        saved = sink_feed.save_cursor
        sink_feed.save_cursor = killed
        with pytest.raises(CrashError):
            sink.run_once()
        sink_feed.save_cursor = saved
    count = target.count()
    assert count == len(feed.changes()) and feed.cursor("nats") == 0
    with target.sink(store) as sink:
        report = sink.run_once()
    assert (report.published, report.duplicates) == (0, count)
    assert target.count() == count
    store.close()


class _Interleaved:
    """A store's change feed that runs ``between`` once, right after its first read of
    changes: there, another sink can publish the same events and move the shared cursor."""

    capabilities = frozenset[str]()

    def __init__(self, feed: ChangeFeed, between: Callable[[], object]) -> None:
        self.feed = feed
        self.between: Callable[[], object] | None = between

    def changes(self, *, after: int = 0, limit: int = 1000) -> list[Change]:
        found = self.feed.changes(after=after, limit=limit)
        if self.between is not None:
            between, self.between = self.between, None
            between()
        return found

    def last_position(self) -> int:
        return self.feed.last_position()

    def cursor(self, name: str) -> int:
        return self.feed.cursor(name)

    def save_cursor(self, name: str, position: int, *, expected: int | None = None) -> None:
        self.feed.save_cursor(name, position, expected=expected)

    def cursors(self) -> dict[str, int]:
        return self.feed.cursors()


def test_two_sinks_racing_on_one_cursor_store_each_event_once(store: Store, target: Target) -> None:
    feed = _feed(store)
    _commit_tickets(store, 4, _Time())
    first = target.sink(store)
    reports = []
    second = target.sink(cast(Store, _Interleaved(feed, lambda: reports.append(first.run_once()))))
    with first, second:
        late = second.run_once()
    everything = len(feed.changes())
    assert reports[0].published == everything
    # The second sink published the same batch (all duplicates), lost the compare-and-set
    # of the cursor, read it again and found nothing left.
    assert (late.published, late.duplicates, late.races) == (0, everything, 1)
    assert late.position == feed.cursor("nats") == feed.last_position()
    assert target.changes() == feed.changes()


def test_two_sinks_following_at_once_store_each_event_once(tmp_path: Path, target: Target) -> None:
    """Two sinks on two connections to one SQLite file, while tickets are committed."""
    path = tmp_path / "d.db"
    writer = SqliteStore(path)
    feed = _feed(writer)
    readers = [SqliteStore(path), SqliteStore(path)]
    sinks = [target.sink(reader, batch=3) for reader in readers]
    stop = threading.Event()
    threads = [
        threading.Thread(target=sink.follow, args=(stop,), kwargs={"poll": 0.01}) for sink in sinks
    ]
    for thread in threads:
        thread.start()
    try:
        time = _Time()
        for n in range(1, 16):
            _commit_tickets(writer, 1, time, first=n)
        last = feed.last_position()
        _wait_for(lambda: feed.cursor("nats") == last, "the sinks to publish everything")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for sink in sinks:
            sink.close()
    messages = target.messages()
    ids = [m.headers["Nats-Msg-Id"] for m in messages if m.headers is not None]
    assert len(ids) == len(set(ids)) == len(messages)
    assert target.changes() == feed.changes()
    for store in (writer, *readers):
        store.close()


def test_a_refused_commit_is_never_published(store: Store, target: Target) -> None:
    feed = _feed(store)
    time = _Time()
    opened = _open("t1", 1, time.tick())
    store.commit([change_of(opened)])
    stale = _stale_tag(opened.ticket, time.tick())
    store.commit([change_of(_note(opened.ticket, time.tick()))])
    with pytest.raises(ConflictError):  # t9 is refused with the stale change
        store.commit([change_of(_open("t9", 9, time.tick())), change_of(stale)])
    with target.sink(store) as sink:
        sink.run_once()
    published = [change.event for change in target.changes()]
    assert published == [change.event for change in feed.changes()]
    assert not any(e.ticket_id == "t9" for e in published)
    assert all(e not in published for e in stale.events)
    assert not any(str(m.subject).endswith(".t9") for m in target.messages())


def test_a_restarted_sink_resumes_from_its_cursor(tmp_path: Path, target: Target) -> None:
    path = tmp_path / "d.db"
    time = _Time()
    store = SqliteStore(path)
    _commit_tickets(store, 3, time)
    with target.sink(store) as sink:
        before = sink.run_once()
    store.close()
    store = SqliteStore(path)  # another process, later
    feed = _feed(store)
    assert feed.cursor("nats") == before.position
    _commit_tickets(store, 2, time, first=4)
    with target.sink(store) as sink:
        after = sink.run_once()
    assert after.duplicates == 0
    assert after.published == len(feed.changes()) - before.published
    assert target.changes() == feed.changes()
    # Another cursor name is another consumer: it publishes everything (to another stream).
    other = _target(target.url)
    try:
        with other.sink(store, cursor="audit") as sink:
            assert sink.run_once().published == len(feed.changes())
        assert feed.cursor("nats") == feed.cursor("audit") == feed.last_position()
    finally:
        other.delete()
    store.close()


def test_follow_publishes_what_gets_committed_until_stopped(store: Store, target: Target) -> None:
    feed = _feed(store)
    time = _Time()
    stop = threading.Event()
    seen = []
    with target.sink(store) as sink:
        thread = threading.Thread(
            target=lambda: seen.append(sink.follow(stop, poll=0.01, on_report=seen.append))
        )
        thread.start()
        try:
            for n in range(1, 4):
                _commit_tickets(store, 1, time, first=n)
                _wait_for(
                    lambda: feed.cursor("nats") == feed.last_position(), "the sink to catch up"
                )
        finally:
            stop.set()
            thread.join(timeout=60)
    assert not thread.is_alive()
    assert seen[-1].published == len(feed.changes())  # follow's total
    assert sum(r.published for r in seen[:-1]) == len(feed.changes())
    assert target.changes() == feed.changes()


# -- Failures ------------------------------------------------------------------------------------


def test_an_unreachable_server_is_a_broker_error_and_the_cursor_stays(
    client: None, store: Store
) -> None:
    feed = _feed(store)
    _commit_tickets(store, 1, _Time())
    port = _free_port()
    with NatsSink(store, f"nats://127.0.0.1:{port}") as sink:
        started = time.monotonic()
        with pytest.raises(BrokerError, match=f"cannot reach NATS at nats://127.0.0.1:{port}"):
            sink.run_once()
        assert time.monotonic() - started < 5
    assert feed.cursor("nats") == 0


def test_a_password_in_the_url_is_not_shown(client: None) -> None:
    port = _free_port()
    sink = NatsSink(MemoryStore(), f"nats://ann:s3cret@127.0.0.1:{port}")
    with sink, pytest.raises(BrokerError) as caught:
        sink.start()
    assert "s3cret" not in str(caught.value) and "ann:***@" in str(caught.value)


def _has_jetstream(url: str) -> bool:
    async def account(js: JetStreamContext) -> object:
        return await js.account_info()

    try:
        _on_server(url, account)
    except Exception:
        return False
    return True


class PrivateServers:
    """nats-servers of the test's own, each on a free port, stopped after the test."""

    def __init__(self, binary: str, storage: Path) -> None:
        self.binary = binary
        self.storage = storage
        self.running: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, port: int = 0, *, jetstream: bool = True) -> int:
        port = port or _free_port()
        args = [self.binary, "-a", "127.0.0.1", "-p", str(port)]
        if jetstream:
            args += ["-js", "-sd", str(self.storage)]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.running[port] = process
        _wait_for(lambda: _port_open("127.0.0.1", port), "the private nats-server")
        if jetstream:  # the port opens before JetStream has read its storage
            _wait_for(lambda: _has_jetstream(f"nats://127.0.0.1:{port}"), "JetStream")
        return port

    def stop(self, port: int) -> None:
        process = self.running.pop(port)
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def private(client: None, tmp_path: Path) -> Iterator[PrivateServers]:
    binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
    if binary is None:
        _unavailable("nats-server is not installed")
    servers = PrivateServers(binary, tmp_path / "jetstream")
    yield servers
    for port in list(servers.running):
        servers.stop(port)


def test_a_server_gone_mid_way_leaves_the_cursor_after_what_it_took(
    store: Store, private: PrivateServers
) -> None:
    feed = _feed(store)
    time = _Time()
    port = private.start()
    target = _target(f"nats://127.0.0.1:{port}")
    _commit_tickets(store, 2, time)
    with target.sink(store, timeout=1.0) as sink:
        assert sink.run_once().published == len(feed.changes())
        published = feed.cursor("nats")
        private.stop(port)
        _commit_tickets(store, 2, time, first=3)
        with pytest.raises(BrokerError):
            sink.run_once()
        assert feed.cursor("nats") == published
        private.start(port)  # the same server again, with the same storage
        report = sink.run_once()  # the sink reconnects by itself
    assert report.published == len(feed.changes()) - published
    assert target.changes() == feed.changes()


def test_a_refused_message_stops_the_batch_and_the_cursor_stays_before_it(
    store: Store, target: Target
) -> None:
    """The server stores the first events of a batch and refuses the next (too big for the
    stream): the cursor moves over the first ones only, and the sink goes no further."""
    from nats.js.api import StreamConfig

    async def make(js: JetStreamContext) -> None:
        config = StreamConfig(
            name=target.stream, subjects=[f"{target.prefix}.>"], max_msg_size=2000
        )
        await js.add_stream(config)

    _on_server(target.url, make)
    feed = _feed(store)
    time = _Time()
    _commit_tickets(store, 2, time)
    accepted = feed.last_position()
    ticket = store.get_ticket("t1")
    store.commit([change_of(_note(ticket, time.tick(), "x" * 5000))])
    _commit_tickets(store, 1, time, first=3)
    with target.sink(store) as sink:
        for _ in range(2):  # and again: the refusal is the server's, it stays
            with pytest.raises(BrokerError, match=f"position {accepted + 1}: .*maximum"):
                sink.run_once()
            assert feed.cursor("nats") == accepted
            assert target.changes() == feed.changes()[:accepted]


def test_a_server_without_jetstream_is_a_broker_error(private: PrivateServers) -> None:
    port = private.start(jetstream=False)
    sink = NatsSink(MemoryStore(), f"nats://127.0.0.1:{port}")
    with sink, pytest.raises(BrokerError, match="no JetStream"):
        sink.start()


def test_an_existing_stream_is_checked_not_changed(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    from nats.js.api import StreamConfig

    async def make(js: JetStreamContext) -> None:
        config = StreamConfig(
            name=target.stream, subjects=[f"{target.prefix}.>"], duplicate_window=10.0
        )
        await js.add_stream(config)

    _on_server(target.url, make)
    sink = target.sink(MemoryStore())
    with caplog.at_level(logging.WARNING, logger="helpkit.sinks.nats"), sink:
        sink.start()
    assert "remembers message ids for 10 s only" in caplog.text
    # A stream that does not take the sink's subjects is a configuration error.
    other = Target(target.url, target.stream, "elsewhere.events")
    with other.sink(MemoryStore()) as sink, pytest.raises(ConfigError, match="does not take"):
        sink.start()
    # One taking them through wider wildcards will do.
    wide = Target(target.url, target.stream, target.prefix + ".deeper")
    with wide.sink(MemoryStore()) as sink:
        sink.start()


# -- The command line ----------------------------------------------------------------------------


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPKIT_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def _publish_args(target: Target, path: Path, *more: str) -> list[str]:
    return [
        *(sys.executable, "-m", "helpkit", "--store", f"sqlite:///{path}", "publish"),
        *("--to", target.url, "--stream", target.stream, "--subject-prefix", target.prefix),
        *more,
    ]


def test_the_command_publishes_once(tmp_path: Path, target: Target) -> None:
    path = tmp_path / "d.db"
    store = SqliteStore(path)
    _commit_tickets(store, 3, _Time())
    count = len(_feed(store).changes())
    store.close()
    done = subprocess.run(
        _publish_args(target, path),
        cwd=tmp_path,
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"published {count} events to NATS stream {target.stream}")
    assert f"cursor 'nats' at position {count}" in done.stdout
    assert target.count() == count


def test_the_command_reports_as_json(
    tmp_path: Path, target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.db"
    store = SqliteStore(path)
    _commit_tickets(store, 1, _Time())
    store.close()
    args = _publish_args(target, path, "--json", "--cursor", "json-test")[3:]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "published": 3,
        "duplicates": 0,
        "races": 0,
        "position": 3,
        "cursor": "json-test",
        "stream": target.stream,
    }


def test_the_command_says_one_line_when_the_server_is_unreachable(
    client: None, tmp_path: Path
) -> None:
    path = tmp_path / "d.db"
    store = SqliteStore(path)
    _commit_tickets(store, 1, _Time())
    store.close()
    target = Target(f"nats://127.0.0.1:{_free_port()}", "S", "p")
    done = subprocess.run(
        _publish_args(target, path, "--follow"),
        cwd=tmp_path,
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("helpkit: error: cannot reach NATS"), lines
    store = SqliteStore(path)
    assert store.cursor("nats") == 0
    store.close()


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_the_command_follows_until_a_signal_stops_it(
    tmp_path: Path, target: Target, stop: signal.Signals, status: int
) -> None:
    path = tmp_path / "d.db"
    store = SqliteStore(path)
    feed = _feed(store)
    time = _Time()
    _commit_tickets(store, 2, time)
    process = subprocess.Popen(
        _publish_args(target, path, "--follow"),
        cwd=tmp_path,
        env=_cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _stream_count(target) == len(feed.changes()), "the first events")
        _commit_tickets(store, 1, time, first=3)  # committed by another process
        _wait_for(lambda: _stream_count(target) == len(feed.changes()), "the new events")
        process.send_signal(stop)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == status, err
    assert err == ("helpkit: interrupted\n" if stop == signal.SIGINT else "")
    assert out.startswith(f"published {len(feed.changes())} events")
    assert feed.cursor("nats") == feed.last_position()
    assert target.changes() == feed.changes()
    store.close()


def _stream_count(target: Target) -> int:
    from nats.js.errors import NotFoundError

    try:
        return target.count()
    except NotFoundError:
        return 0


# -- The documentation's example -----------------------------------------------------------------


def test_the_documentation_example_runs(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/broker.md's ``py`` blocks (test_docs.py runs the ``python`` ones, which need no
    server), against the server, in a folder of their own."""
    if server != "nats://127.0.0.1:4222":
        pytest.skip("the documentation's example uses the default URL")
    page = (ROOT / "docs" / "broker.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```py\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    assert blocks, "docs/broker.md has no py example"
    monkeypatch.chdir(tmp_path)
    example = Target(server, "HELPKIT_EXAMPLE", "example.helpkit")
    example.delete()
    namespace: dict[str, object] = {"__name__": "docs_broker"}
    try:
        for index, block in enumerate(blocks):
            exec(compile(block, f"broker.md[py block {index + 1}]", "exec"), namespace)
    finally:
        example.delete()
