"""Reading tickets together (``Capability.TICKET_READS``, the pipeline's load of a command's
tickets: the relay's record of a batch) gives what reading them one by one gives: the same
states in the asked order, or the same NotFoundError (the first missing id in that order), on
the memory store and on a real SQLite file, read by the writing store object (decoded states
kept) and by one of its own (nothing kept)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.errors import NotFoundError
from helpkit.ports import Capability, Store, TicketReads
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.conformance.helpers import _note, _open, _Time, change_of
from helpkit.tickets import Ticket

IDS = ["t1", "t2", "t3", "t4", "t5", "nobody", "t\x00"]


def _one_by_one(store: Store, ticket_ids: Sequence[str]) -> list[Ticket] | str:
    try:
        return [store.get_ticket(ticket_id) for ticket_id in ticket_ids]
    except NotFoundError as exc:
        return str(exc)


def _together(store: Store, ticket_ids: Sequence[str]) -> list[Ticket] | str:
    assert Capability.TICKET_READS in store.capabilities
    assert isinstance(store, TicketReads)
    try:
        return store.get_tickets(ticket_ids)
    except NotFoundError as exc:
        return str(exc)


def _fill(store: Store, opened: int, notes: Sequence[int]) -> None:
    """``opened`` tickets, then a note on each ticket index in ``notes`` (one commit each)."""
    time = _Time()
    tickets = {}
    for i in range(1, opened + 1):
        outcome = _open(f"t{i}", i, time.tick())
        store.commit([change_of(outcome)])
        tickets[i] = outcome.ticket
    for i in notes:
        if i in tickets:
            outcome = _note(tickets[i], time.tick())
            store.commit([change_of(outcome)])
            tickets[i] = outcome.ticket


scenario = given(
    opened=st.integers(0, 5),
    notes=st.lists(st.integers(1, 5), max_size=6),
    asks=st.lists(st.lists(st.sampled_from(IDS), max_size=8), min_size=1, max_size=4),
)


@settings(max_examples=60, deadline=None)
@scenario
def test_memory_reads_together_as_one_by_one(
    opened: int, notes: list[int], asks: list[list[str]]
) -> None:
    store = MemoryStore()
    _fill(store, opened, notes)
    for ask in asks:
        assert _together(store, ask) == _one_by_one(store, ask)


@settings(max_examples=30, deadline=None)
@scenario
def test_sqlite_reads_together_as_one_by_one(
    opened: int, notes: list[int], asks: list[list[str]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "desk.db"
        writer = SqliteStore(path)
        reader = SqliteStore(path, cache=0)
        try:
            _fill(writer, opened, notes)
            for ask in asks:
                # Asked of the reader first: nothing decoded yet, nothing kept.
                assert _together(reader, ask) == _one_by_one(writer, ask)
                assert _together(writer, ask) == _one_by_one(reader, ask)
        finally:
            reader.close()
            writer.close()
