"""Conformance cases of routing states and loads (:attr:`~helpkit.ports.Capability.ROUTING`).

A change routing made carries the routing states it read, each at its version plus one
(:attr:`~helpkit.ports.TicketChange.routing`); the store writes them in the commit's
transaction, each only over the version before it (0: none stored), else the whole commit is
refused with ConflictError and nothing is written (no ticket, no event, no feed position, no
number spent, no other state moved). Bad states are refused before anything is written.
``agent_loads`` counts the stored tickets assigned to each agent in the categories asked.
Persistent stores keep states across reopening; threads, and processes for a store whose suite
names a ``reopen_elsewhere`` fixture, racing to move one version move it once. Skipped, with
the reason shown, for stores that do not declare the capability.
"""

from __future__ import annotations

import functools
import threading
import time as _clock
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import cast

import attrs
import pytest

from helpkit import lifecycle
from helpkit.errors import ConflictError, HelpkitError, ValidationError
from helpkit.ports import Capability, ChangeFeed, Routing, RoutingState, Store, TicketChange
from helpkit.ports import missing_members as _missing
from helpkit.queries import TicketQuery
from helpkit.testing.conformance.helpers import (
    BASE_TIME,
    ReopenStore,
    StoreFactory,
    _open,
    _Time,
    change_of,
)
from helpkit.testing.conformance.inbox import ReopenElsewhere
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, StatusCategory, Ticket

__all__ = ["RoutingCases", "routed"]

_PROCESSES = 4
_ALL = frozenset(StatusCategory)


def _routing(store: Store) -> Routing:
    if Capability.ROUTING not in store.capabilities:
        pytest.skip("the store does not declare Capability.ROUTING")
    assert _missing(store, Routing) == (), "a store with ROUTING implements Routing"
    return cast(Routing, store)


def routed(change: TicketChange, *states: tuple[str, int, str | None]) -> TicketChange:
    """``change`` carrying routing states ``(group, version, cursor)``."""
    return attrs.evolve(
        change,
        routing=tuple(RoutingState(group_id=g, version=v, cursor=c) for g, v, c in states),
    )


def _state(store: Store, group: str) -> tuple[int, str | None]:
    found = cast(Routing, store).routing_states([group])[group]
    assert found.group_id == group
    return found.version, found.cursor


def _fed(store: Store) -> int:
    if Capability.CHANGE_FEED in store.capabilities:
        return cast(ChangeFeed, store).last_position()
    return -1


def _everything(store: Store, groups: Sequence[str]) -> tuple[object, ...]:
    """What a refused commit must leave as it was: every ticket with its history, the feed's
    last position, and the routing states of ``groups``."""
    tickets = list(store.query(TicketQuery(limit=1000)))
    states = cast(Routing, store).routing_states(list(groups))
    return (tickets, [store.events(t.id) for t in tickets], _fed(store), states)


def _race(opener: Callable[[], Store], ticket_id: str, start: float) -> str:
    """One process committing a new ticket with group ``g``'s routing state at version 1,
    from ``start`` (a wall clock instant, so the processes commit together)."""
    store = opener()
    try:
        change = routed(change_of(_open(ticket_id, 0, BASE_TIME)), ("g", 1, ticket_id))
        _clock.sleep(max(0.0, start - _clock.time()))
        try:
            store.commit([change])
        except HelpkitError as exc:
            return type(exc).__name__
        return "won"
    finally:
        store.close()


def _solved(ticket: Ticket, time: _Time) -> TicketChange:
    status = DEFAULT_WORKFLOW.default(StatusCategory.SOLVED).name
    return change_of(
        lifecycle.change_status(
            ticket, status, at=time.tick(), actor=Actor.agent("a1"), workflow=DEFAULT_WORKFLOW
        )
    )


def _commit_routed(
    store: Store,
    ticket_id: str,
    version: int,
    cursor: str,
    barrier: threading.Barrier,
    outcomes: list[str],
) -> None:
    """A thread committing a new ticket with group ``g``'s state at ``version``."""
    change = routed(change_of(_open(ticket_id, 0, BASE_TIME)), ("g", version, cursor))
    barrier.wait()
    try:
        store.commit([change])
        outcomes.append(f"won:{cursor}")
    except HelpkitError as exc:
        outcomes.append(type(exc).__name__)


class RoutingCases:
    """Routing states, written with their commit over the version read, and loads."""

    thread_safe: bool

    def test_a_group_never_routed_is_at_version_0(self, store: Store) -> None:
        routing = _routing(store)
        assert routing.routing_states([]) == {}
        found = routing.routing_states(["g", "h"])
        assert found == {
            "g": RoutingState(group_id="g", version=0),
            "h": RoutingState(group_id="h", version=0),
        }

    def test_routing_states_are_written_with_the_change_routing_made(self, store: Store) -> None:
        _routing(store)
        time = _Time()
        first = routed(change_of(_open("t1", 0, time.tick(), group_id="g")), ("g", 1, "a1"))
        (written,) = store.commit([first])
        assert written.ticket.number == 1
        assert written.routing == first.routing  # returned as written
        assert _state(store, "g") == (1, "a1")
        assert _state(store, "h") == (0, None)
        # Two groups at once, one new and one moving on; the cursor may be cleared.
        second = routed(
            change_of(_open("t2", 0, time.tick(), group_id="g")), ("g", 2, None), ("h", 1, "b")
        )
        store.commit([second])
        assert _state(store, "g") == (2, None)
        assert _state(store, "h") == (1, "b")

    def test_a_stale_routing_version_refuses_the_whole_commit(self, store: Store) -> None:
        _routing(store)
        time = _Time()
        store.commit([routed(change_of(_open("t1", 0, time.tick())), ("g", 1, "a1"))])
        before = _everything(store, ["g", "h"])
        for states in (
            [("g", 1, "a2")],  # another router read version 0 too
            [("g", 3, "a2")],  # skips a version
            [("h", 1, "x"), ("g", 1, "a2")],  # the first state would apply: not alone
            [("h", 2, "x")],  # a group never routed is at 0
        ):
            with pytest.raises(ConflictError):
                store.commit([routed(change_of(_open("t2", 0, time.tick())), *states)])
            assert _everything(store, ["g", "h"]) == before, states
        (written,) = store.commit([routed(change_of(_open("t2", 0, time.tick())), ("g", 2, "a2"))])
        assert written.ticket.number == 2, "a refused commit spent a number"
        assert _state(store, "g") == (2, "a2")

    def test_a_refused_commit_moves_no_routing_state(self, store: Store) -> None:
        _routing(store)
        time = _Time()
        (one,) = store.commit([change_of(_open("t1", 0, time.tick()))])
        stale = change_of(
            lifecycle.change_tags(one.ticket, at=time.tick(), actor=Actor.agent("a1"), add=["x"])
        )
        store.commit([stale])  # so it is stale now
        before = _everything(store, ["g"])
        with pytest.raises(ConflictError):
            store.commit([routed(change_of(_open("t2", 0, time.tick())), ("g", 1, "a1")), stale])
        assert _everything(store, ["g"]) == before

    def test_bad_routing_states_are_refused_before_anything_is_written(self, store: Store) -> None:
        _routing(store)
        time = _Time()
        (one,) = store.commit([change_of(_open("t1", 0, time.tick()))])
        before = _everything(store, ["g"])
        opening = change_of(_open("t2", 0, time.tick()))
        bad: list[TicketChange] = [
            routed(opening, ("g", 0, None)),  # a commit writes version 1 or more
            routed(opening, ("g", 1, None), ("g", 2, None)),  # one group twice
            routed(TicketChange(one.ticket, (), one.ticket.seq), ("g", 1, None)),  # no events
            attrs.evolve(opening, routing=("g",)),  # type: ignore[arg-type]
        ]
        for change in bad:
            with pytest.raises(ValidationError):
                store.commit([change])
            assert _everything(store, ["g"]) == before
        with pytest.raises(ValidationError):  # the same group in two changes of one commit
            store.commit(
                [
                    routed(opening, ("g", 1, None)),
                    routed(change_of(_open("t3", 0, time.tick())), ("g", 2, None)),
                ]
            )
        assert _everything(store, ["g"]) == before

    def test_agent_loads_count_assigned_tickets_by_category(self, store: Store) -> None:
        routing = _routing(store)
        time = _Time()
        assert routing.agent_loads([], _ALL) == {}
        assert routing.agent_loads(["a1", "a2"], _ALL) == {"a1": 0, "a2": 0}
        written = store.commit(
            [
                change_of(_open(f"t{n}", 0, time.tick(), assignee_id=agent))
                for n, agent in enumerate(["a1", "a1", "a1", "a2", None])
            ]
        )
        store.commit([_solved(written[0].ticket, time)])
        active = frozenset(c for c in StatusCategory if c.is_active)
        assert routing.agent_loads(["a1", "a2", "a3"], active) == {"a1": 2, "a2": 1, "a3": 0}
        assert routing.agent_loads(["a1"], _ALL) == {"a1": 3}
        assert routing.agent_loads(["a1", "a2"], frozenset({StatusCategory.SOLVED})) == {
            "a1": 1,
            "a2": 0,
        }
        many = [f"x{n}" for n in range(1200)] + ["a1"]  # more ids than one statement binds
        assert routing.agent_loads(many, active)["a1"] == 2

    def test_routing_states_survive_reopening(
        self, make_store: StoreFactory, reopen_store: ReopenStore
    ) -> None:
        store = make_store()
        try:
            _routing(store)
            if Capability.PERSISTENT not in store.capabilities:
                pytest.skip("the store does not declare Capability.PERSISTENT")
            store.commit([routed(change_of(_open("t1", 0, BASE_TIME)), ("g", 1, "a1"))])
        finally:
            store.close()
        reopened = reopen_store(store)
        try:
            assert _state(reopened, "g") == (1, "a1")
            with pytest.raises(ConflictError):
                reopened.commit([routed(change_of(_open("t2", 0, BASE_TIME)), ("g", 1, "a2"))])
            reopened.commit([routed(change_of(_open("t2", 0, BASE_TIME)), ("g", 2, "a2"))])
            assert _state(reopened, "g") == (2, "a2")
        finally:
            reopened.close()

    def test_threads_moving_one_version_move_it_once(self, store: Store) -> None:
        _routing(store)
        if not self.thread_safe:
            pytest.skip("the suite says this store must not be shared between threads")
        for round_ in range(3):
            outcomes: list[str] = []
            barrier = threading.Barrier(6)
            threads = [
                threading.Thread(
                    target=_commit_routed,
                    args=(store, f"r{round_}-{n}", round_ + 1, f"a{n}", barrier, outcomes),
                )
                for n in range(6)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            winners = [o for o in outcomes if o.startswith("won:")]
            assert len(winners) == 1 and sorted(outcomes).count("ConflictError") == 5, outcomes
            assert _state(store, "g") == (round_ + 1, winners[0][4:])
        numbers = sorted(t.number for t in store.query(TicketQuery(limit=100)))
        assert numbers == [1, 2, 3], "a refused commit spent a number"

    def test_processes_moving_one_version_move_it_once(
        self, store: Store, reopen_elsewhere: ReopenElsewhere | None
    ) -> None:
        _routing(store)
        if Capability.MULTIPROCESS not in store.capabilities:
            pytest.skip("the store does not declare Capability.MULTIPROCESS")
        if reopen_elsewhere is None:
            pytest.skip("the suite names no `reopen_elsewhere` fixture to open it in processes")
        opener = reopen_elsewhere(store)
        with ProcessPoolExecutor(_PROCESSES, mp_context=get_context("spawn")) as pool:
            list(pool.map(_clock.sleep, [0.0] * _PROCESSES))  # warm up: import helpkit once
            start = _clock.time() + 1.0
            outcomes = list(
                pool.map(
                    functools.partial(_race, opener, start=start),
                    [f"p{n}" for n in range(_PROCESSES)],
                )
            )
        assert sorted(outcomes) == ["ConflictError"] * (_PROCESSES - 1) + ["won"], outcomes
        tickets = list(store.query(TicketQuery(limit=100)))
        assert [t.number for t in tickets] == [1]
        assert _state(store, "g") == (1, tickets[0].id)
