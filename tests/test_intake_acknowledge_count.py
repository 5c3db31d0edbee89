"""The acknowledgement rate limit counts a requester's recent tickets on a store with
``Capability.REQUESTER_COUNTS`` (``count_recent_requests``) instead of reading the newest
``acknowledge_limit`` of them.

Held against the old path, kept here as the reference: the newest ``limit`` tickets of the
requester (``TicketQuery``, newest first), those created after the window's start counted.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.ports import Capability, InboundMessage, RequesterCounts, Store, missing_members
from helpkit.queries import SortOrder, TicketQuery
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock
from helpkit.testing.conformance.helpers import _open as open_outcome
from helpkit.testing.conformance.helpers import change_of

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
REQUESTERS = ["c1", "c2", "c3"]


def reference_count(store: Store, requester_id: str, since: datetime, limit: int) -> int:
    """The old path: the requester's newest ``limit`` tickets, those created after ``since``."""
    page = store.query(
        TicketQuery(requester_ids={requester_id}, sort=SortOrder.CREATED_DESC, limit=limit)
    )
    return len([t for t in page.items if t.created_at > since])


# Creation instants close together (microseconds apart, equal, or on the window's edge).
offsets = st.integers(min_value=-3, max_value=3).map(lambda s: timedelta(microseconds=s)) | (
    st.integers(min_value=-7200, max_value=7200).map(lambda s: timedelta(seconds=s))
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tickets=st.lists(st.tuples(st.sampled_from(REQUESTERS), offsets), max_size=12),
    since=offsets,
    limit=st.integers(min_value=1, max_value=6),
    requester=st.sampled_from([*REQUESTERS, "nobody"]),
    sqlite=st.booleans(),
)
def test_the_count_is_the_old_reads_count(
    tickets: list[tuple[str, timedelta]], since: timedelta, limit: int, requester: str, sqlite: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store: Any = SqliteStore(Path(tmp) / "desk.db") if sqlite else MemoryStore()
        try:
            for n, (requester_id, offset) in enumerate(tickets, start=1):
                outcome = open_outcome(f"t{n}", 0, NOW + offset, requester_id=requester_id)
                store.commit([change_of(outcome)])
            at = NOW + since
            assert store.count_recent_requests(requester, at, limit) == reference_count(
                store, requester, at, limit
            )
        finally:
            store.close()


def test_the_built_in_stores_count() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for store in (SqliteStore(Path(tmp) / "desk.db"), MemoryStore()):
            assert Capability.REQUESTER_COUNTS in store.capabilities
            assert missing_members(store, RequesterCounts) == ()
            store.close()


def _desk(url: str, limit: int) -> tuple[Helpdesk, RecordingChannel, FrozenClock]:
    clock = FrozenClock(NOW)
    channel = RecordingChannel("email")
    desk = Helpdesk(
        url,
        config={
            "intake": {
                "addresses": ["support@desk.example"],
                "acknowledge": True,
                "acknowledge_limit": limit,
            }
        },
        clock=clock,
        channels=[channel],
        delivery="sync",
        entry_points=False,
    )
    return desk, channel, clock


def _message(n: int, sender: str) -> InboundMessage:
    return InboundMessage(
        channel="email",
        sender_address=sender,
        sender_name=None,
        subject=f"request {n}",
        body="It jams.",
        received_at=NOW,
        external_id=f"<m{n}@acme.example>",
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["ann@acme.example", "bob@acme.example"]),
            st.sampled_from([0, 1, 600, 1800, 3599, 3600, 3601]),  # seconds before it
        ),
        min_size=1,
        max_size=10,
    ),
    limit=st.integers(min_value=1, max_value=3),
)
def test_a_sqlite_desk_acknowledges_what_the_old_reads_did(
    steps: list[tuple[str, int]], limit: int
) -> None:
    acknowledged: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, old in (("new", False), ("old", True)):
            desk, channel, clock = _desk(f"sqlite:///{tmp}/{name}.db", limit)
            if old:
                desk._receiver._recent_requests = None  # the reads of the old path
            else:
                assert desk._receiver._recent_requests is not None
            try:
                for n, (sender, wait) in enumerate(steps, start=1):
                    clock.advance(timedelta(seconds=wait))
                    desk.receive(_message(n, sender))
                acknowledged.append(
                    [
                        (m.ticket_number, [r.address for r in m.to])
                        for m in channel.messages
                        if m.kind == "acknowledgement"
                    ]
                )
            finally:
                desk.shutdown()
    assert acknowledged[0] == acknowledged[1]
