"""Conformance cases of timer states (:attr:`~helpkit.ports.Capability.TIMER_STATE`).

``commit_planned`` writes exactly what ``commit`` writes (same checks of each change's shape,
seqs and numbers, all or nothing) and keeps each ticket's timer state as given;
``query_states`` answers as ``query`` does, with those states. Skipped, with the reason shown,
for stores that do not declare the capability.
"""

from __future__ import annotations

from typing import cast

import pytest

from helpkit.errors import ConflictError, ValidationError
from helpkit.events import Event
from helpkit.ports import Capability, Store, TicketChange, TimerStates, missing_members
from helpkit.queries import SortOrder, TicketQuery
from helpkit.testing.conformance.helpers import (
    ReopenStore,
    StoreFactory,
    _note,
    _open,
    _stale_tag,
    _Time,
    change_of,
    forged,
)


def _states(store: Store) -> TimerStates:
    if Capability.TIMER_STATE not in store.capabilities:
        pytest.skip("the store does not declare Capability.TIMER_STATE")
    assert missing_members(store, TimerStates) == (), (
        "a store with TIMER_STATE implements TimerStates"
    )
    return cast(TimerStates, store)


def _kept(store: TimerStates, query: TicketQuery | None = None) -> dict[str, str | None]:
    page, states = store.query_states(query or TicketQuery(sort=SortOrder.CREATED))
    assert len(states) == len(page.items)
    return {ticket.id: state for ticket, state in zip(page.items, states, strict=True)}


class TimerStateCases:
    """Timer states: kept beside each ticket by ``commit_planned``, read by ``query_states``."""

    def test_commit_planned_writes_what_commit_writes_and_keeps_the_states(
        self, store: Store
    ) -> None:
        states = _states(store)
        time = _Time()
        first = _open("t1", 0, time.tick())
        second = _open("t2", 0, time.tick())
        written = states.commit_planned([change_of(first), change_of(second)], ['{"a":1}', None])
        assert [c.ticket.number for c in written] == [1, 2]
        assert [c.events[0].number for c in written] == [1, 2]  # type: ignore[attr-defined]
        for change in written:
            assert store.get_ticket(change.ticket.id) == change.ticket
            assert store.events(change.ticket.id) == list(change.events)
        page, kept = states.query_states(TicketQuery(sort=SortOrder.CREATED))
        assert page == store.query(TicketQuery(sort=SortOrder.CREATED))
        assert kept == ['{"a":1}', None]
        # A later state replaces the kept one; None, or a plain commit, leaves it as it is.
        one = written[0].ticket
        note = _note(one, time.tick())
        states.commit_planned([change_of(note)], ['{"a":2}'])
        again = _note(note.ticket, time.tick(), "More.")
        states.commit_planned([change_of(again)], [None])
        last = _note(again.ticket, time.tick(), "Still more.")
        store.commit([change_of(last)])
        assert _kept(states) == {"t1": '{"a":2}', "t2": None}
        assert store.get_ticket("t1") == last.ticket

    def test_of_two_changes_of_a_ticket_in_one_commit_the_later_state_is_kept(
        self, store: Store
    ) -> None:
        states = _states(store)
        time = _Time()
        opened = _open("t1", 0, time.tick())
        other = _open("t2", 0, time.tick())
        states.commit_planned([change_of(opened), change_of(other)], ['{"a":1}', '{"b":1}'])
        note = _note(store.get_ticket("t1"), time.tick())
        again = _note(note.ticket, time.tick(), "More.")
        moved = _note(store.get_ticket("t2"), time.tick())
        states.commit_planned(
            [change_of(note), change_of(moved), change_of(again)],
            ['{"a":2}', None, '{"a":3}'],
        )
        assert _kept(states) == {"t1": '{"a":3}', "t2": '{"b":1}'}
        assert store.get_ticket("t1") == again.ticket

    def test_query_states_pages_like_query(self, store: Store) -> None:
        states = _states(store)
        time = _Time()
        outcomes = [_open(f"t{i}", 0, time.tick()) for i in range(7)]
        states.commit_planned([change_of(o) for o in outcomes], [f"s{i}" for i in range(7)])
        query = TicketQuery(sort=SortOrder.CREATED_DESC, limit=3)
        while True:
            page, kept = states.query_states(query)
            assert page == store.query(query)
            assert kept == [f"s{t.id[1:]}" for t in page.items]
            if page.next_cursor is None:
                break
            query = TicketQuery(sort=SortOrder.CREATED_DESC, limit=3, after=page.next_cursor)
        empty, none = states.query_states(TicketQuery(assignee_ids=frozenset({"nobody"})))
        assert empty.items == () and none == []

    def test_a_refused_commit_planned_writes_nothing_not_even_a_state(self, store: Store) -> None:
        states = _states(store)
        time = _Time()
        opened = _open("t1", 1, time.tick())
        states.commit_planned([change_of(opened)], ["first"])
        note = _note(opened.ticket, time.tick())
        store.commit([change_of(note)])
        stale = _stale_tag(opened.ticket, time.tick())
        other = _open("t2", 2, time.tick())
        with pytest.raises(ConflictError):
            states.commit_planned([change_of(other), change_of(stale)], ["other", "stale"])
        assert _kept(states) == {"t1": "first"}
        assert store.get_ticket("t1") == note.ticket
        # The shape of each change is still checked: seqs follow, events are the ticket's.
        later = _note(note.ticket, time.tick())
        skipping = forged(later.events[0], seq=later.events[0].seq + 1)
        with pytest.raises(ValidationError):
            states.commit_planned(
                [TicketChange(later.ticket, (skipping,), note.ticket.seq)], ["skipping"]
            )
        with pytest.raises(ValidationError):
            states.commit_planned([change_of(later)], [])  # one state per change
        with pytest.raises(ValidationError):
            states.commit_planned([change_of(later)], [b"bytes"])  # type: ignore[list-item]
        assert _kept(states) == {"t1": "first"}
        assert store.events("t1") == [*opened.events, *note.events]

    def test_states_survive_reopening(
        self, make_store: StoreFactory, reopen_store: ReopenStore
    ) -> None:
        store = make_store()
        try:
            states = _states(store)
            if Capability.PERSISTENT not in store.capabilities:
                pytest.skip("the store does not declare Capability.PERSISTENT")
            opened = _open("t1", 0, _Time().tick())
            states.commit_planned([change_of(opened)], ["kept"])
            events: list[Event] = store.events("t1")
        finally:
            store.close()
        reopened = reopen_store(store)
        try:
            assert _kept(_states(reopened)) == {"t1": "kept"}
            assert reopened.events("t1") == events
        finally:
            reopened.close()
