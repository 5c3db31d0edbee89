"""Conformance cases of recent tickets (:attr:`~helpkit.ports.Capability.RECENT_TICKETS`).

``recent_ticket`` answers from memory with the state of the highest seq the store object
committed or read: None for a ticket it has not seen, the state a commit wrote, the state a
read returned; never an older state after a newer one; and a commit guarded by a state that
another writer moved past still raises ConflictError, writing nothing. Skipped, with the
reason shown, for stores that do not declare the capability.
"""

from __future__ import annotations

from typing import cast

import pytest

from helpkit.errors import ConflictError
from helpkit.ports import Capability, RecentTickets, Store
from helpkit.testing.conformance.helpers import _note, _open, _Time, change_of, declared


def _recent(store: Store) -> RecentTickets:
    declared(store, Capability.RECENT_TICKETS, RecentTickets)
    return cast(RecentTickets, store)


class RecentTicketCases:
    """Recent tickets: the last state committed or read, from memory."""

    def test_the_recent_state_is_the_last_committed_or_read(self, store: Store) -> None:
        recent = _recent(store)
        time = _Time()
        assert recent.recent_ticket("t1") is None
        (opened,) = store.commit([change_of(_open("t1", 0, time.tick()))])
        assert recent.recent_ticket("t1") == opened.ticket == store.get_ticket("t1")
        (noted,) = store.commit([change_of(_note(opened.ticket, time.tick()))])
        assert recent.recent_ticket("t1") == noted.ticket
        assert store.get_ticket("t1") == noted.ticket
        # A stale commit changes nothing, and the recent state stays the newest.
        with pytest.raises(ConflictError):
            store.commit([change_of(_note(opened.ticket, time.tick(), "late"))])
        assert recent.recent_ticket("t1") == noted.ticket == store.get_ticket("t1")
        assert recent.recent_ticket("nope") is None

    def test_a_commit_on_a_recent_state_another_writer_moved_past_is_refused(
        self, store: Store
    ) -> None:
        recent = _recent(store)
        time = _Time()
        (opened,) = store.commit([change_of(_open("t1", 0, time.tick()))])
        kept = recent.recent_ticket("t1")
        assert kept is not None
        # Another writer (here the same store, as another process would) moves on...
        (noted,) = store.commit([change_of(_note(kept, time.tick()))])
        # ...so a command decided on the state kept before loses its commit.
        with pytest.raises(ConflictError):
            store.commit([change_of(_note(kept, time.tick(), "decided on an old state"))])
        assert store.events("t1") == [*opened.events, *noted.events]
