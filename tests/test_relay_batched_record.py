"""The relay records a batch of outcomes in one pipeline run (one commit for every ticket of
the batch); recording them one at a time (a relay of batch 1: one derive, one send, one
pipeline run per delivery) must leave exactly the same audit trails, ticket states and
outbox, on the memory store and on an SQLite file. On SQLite the file is also read back by a
store object of its own (nothing decoded kept), which must see what the writing store object
says (it reads its own events back by the text it committed them as: docs/design.md,
Delivery)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import SchemaError
from helpkit.events import CommentAdded, DeliveryRevived, Event
from helpkit.ports import Change, Delivery, Outbox, Store
from helpkit.relay import Relay, RetryPolicy
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.stores.sqlite.encoding import EventTexts
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Ticket

MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ANN = Actor.agent("ann")
BOB = Actor.contact("bob")
QUICK = RetryPolicy(attempts=3, first=timedelta(minutes=1), factor=2.0, jitter=0.0)
TICKETS = 4

# (ticket index, who writes: the agent's public reply, which the requester gets, or the
# requester's own message, which the follower agent gets)
Writes = list[tuple[int, bool]]


def _desk(store: Store | str, channel: RecordingChannel, clock: FrozenClock) -> Helpdesk:
    numbers = itertools.count(1)
    return Helpdesk(
        store,
        channels=[channel],
        clock=clock,
        retry=QUICK,
        entry_points=False,
        id_factory=lambda: f"id{next(numbers)}",
    )


def _relay(desk: Helpdesk, batch: int) -> Relay:
    """The desk's relay with another batch size (the desk takes none: built from its parts)."""
    return Relay(
        desk.store,
        desk._outbound,
        desk._pipeline,
        owner="relay-1",
        lease=timedelta(minutes=5),
        batch=batch,
        policy=QUICK,
    )


def _deliveries(outbox: Outbox) -> list[Delivery]:
    found: list[Delivery] = []
    while True:
        page = outbox.deliveries(after=found[-1].id if found else None, limit=500)
        if not page:
            return found
        found.extend(page)


def _read(store: Store, ids: Sequence[str]) -> tuple[Any, ...]:
    """Everything the run left: each ticket's trail and state, the change feed (each ticket's
    events in it, in order: one commit for several tickets orders them by ticket, so the
    positions of different tickets' records may interleave otherwise), the outbox."""
    assert isinstance(store, Outbox)
    feed: list[Change] = store.changes(after=0, limit=10_000)  # type: ignore[attr-defined]
    positions = [change.position for change in feed]
    assert positions == sorted(set(positions))
    trails = [store.events(ticket_id) for ticket_id in ids]
    in_feed = [[c.event for c in feed if c.event.ticket_id == ticket_id] for ticket_id in ids]
    assert in_feed == trails  # every committed event once, in each ticket's order
    states: list[Ticket] = [store.get_ticket(ticket_id) for ticket_id in ids]
    return trails, states, len(feed), _deliveries(store)


def _run(store: Store | str, writes: Writes, fails: int, batch: int) -> tuple[Any, ...]:
    """Open the tickets, write, then relay with ``batch`` until nothing is left to retry."""
    clock = FrozenClock(MON)
    channel = RecordingChannel("email", fail=fails)
    desk = _desk(store, channel, clock)
    desk.add_agent("ann", "Ann Agent", email="ann@desk.example")
    desk.create_contact("Bob Requester", emails=["bob@example.com"], contact_id="bob")
    ids = [
        desk.open_ticket(BOB, requester="bob", subject=f"Ticket {n}", body="Help.").id
        for n in range(TICKETS)
    ]
    for ticket_id in ids:
        desk.follow(ticket_id, ANN, ANN)
    relay = _relay(desk, batch)
    relay.begin()
    for index, by_agent in writes:
        clock.advance(seconds=1)
        if by_agent:
            desk.reply(ids[index], ANN, f"Reply to ticket {index}")
        else:
            desk.requester_reply(ids[index], f"More from the requester on {index}", actor=BOB)
    for _ in range(QUICK.attempts + 1):
        relay.run_once()
        clock.advance(hours=1)
    relay.run_once()  # reads the last records off the feed
    messages = [(m.idempotency_key, m.to, m.body, m.in_reply_to) for m in channel.messages]
    assert isinstance(desk.store, Store)
    return (*_read(desk.store, ids), messages), ids


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="batched-record-") as name:
        yield Path(name)


_files = itertools.count(1)


@settings(max_examples=30, deadline=None)
@given(
    writes=st.lists(st.tuples(st.integers(0, TICKETS - 1), st.booleans()), min_size=1, max_size=10),
    fails=st.integers(0, 5),
    batch=st.integers(2, 200),
)
def test_batched_recording_equals_one_by_one(
    folder: Path, writes: Writes, fails: int, batch: int
) -> None:
    one, ids = _run(MemoryStore(), writes, fails, batch=1)
    assert one[3], "the example made deliveries"
    batched, _ = _run(MemoryStore(), writes, fails, batch=batch)
    assert batched == one
    for size in (1, batch):
        path = folder / f"relay-{next(_files)}.db"
        store = SqliteStore(path, synchronous="NORMAL")
        try:
            found, _ = _run(store, writes, fails, batch=size)
            assert found == one
        finally:
            store.close()
        fresh = SqliteStore(path, synchronous="NORMAL", cache=0)  # decodes every row it reads
        try:
            assert _read(fresh, ids) == found[:4]
        finally:
            fresh.close()


def test_events_committed_are_read_back_as_stored(folder: Path) -> None:
    """A worked case: the records the relay committed come back off the feed as committed,
    and a redacted event is read as rewritten (the text changed, so it is decoded)."""
    path = folder / "worked.db"
    store = SqliteStore(path, synchronous="NORMAL")
    try:
        (trails, *_), ids = _run(store, [(0, True)], 0, 200)
        assert trails[0][-1].TYPE == "message_sent"
        assert store.changes(after=0, limit=10_000)[-1].event == trails[0][-1]
        desk = Helpdesk(store, entry_points=False)
        desk.add_agent("root", "Root Admin", role="admin")
        [*_, added] = [e for e in trails[0] if isinstance(e, CommentAdded)]
        comment = added.comment
        desk.redact(ids[0], comment.id, Actor.agent("root"), reason="pasted a password")
        [*_, redacted] = [e for e in store.events(ids[0]) if isinstance(e, CommentAdded)]
        assert redacted.comment.body != comment.body
        fresh = SqliteStore(path, synchronous="NORMAL", cache=0)
        try:
            assert fresh.events(ids[0]) == store.events(ids[0])
            assert fresh.changes(after=0, limit=10_000) == store.changes(after=0, limit=10_000)
        finally:
            fresh.close()
    finally:
        store.close()


def _event(seq: int) -> Event:
    return DeliveryRevived(
        ticket_id="t1", seq=seq, at=MON, actor=ANN, delivery_id=f"d{seq}", kind="reply"
    )


def test_the_committed_texts_kept_are_bounded_by_count_and_by_size() -> None:
    """The oldest go first once there are more than ``size`` or more than ``chars``
    characters; a text longer than ``longest`` is never kept (decoded when read)."""
    texts = EventTexts(3, chars=100, longest=40)
    events = {f'{{"n":{n:02d}}}': _event(n) for n in range(1, 6)}  # 8 characters each
    texts.keep(list(events.items()))
    kept = [text for text in events if texts._kept.get(text) is not None]
    assert kept == list(events)[-3:]
    texts.keep([("x" * 41, _event(9))])  # too long: not kept
    assert "x" * 41 not in texts._kept
    texts.keep([("y" * 40, _event(7)), ("z" * 40, _event(8))])  # 96 characters with one more
    assert list(texts._kept) == [list(events)[-1], "y" * 40, "z" * 40]
    assert texts._chars == 88
    text = next(iter(events))  # no longer kept: read from the text itself (not an event: refused)
    with pytest.raises(SchemaError):
        texts.event(text)
    assert texts.event("z" * 40) == _event(8)
