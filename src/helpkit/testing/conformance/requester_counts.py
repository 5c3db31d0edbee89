"""Conformance cases of requester counts (:attr:`~helpkit.ports.Capability.REQUESTER_COUNTS`).

``count_recent_requests(requester_id, since, limit)`` is the number of that requester's
tickets created strictly after ``since``, capped at ``limit``: what reading the requester's
newest ``limit`` tickets and counting those created after ``since`` gives, as the store holds
them at the call (nothing kept from one call to the next). Bad arguments are typed errors.
Skipped, with the reason shown, for stores that do not declare the capability.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest

from helpkit.errors import NaiveDatetimeError, ValidationError
from helpkit.ports import Capability, RequesterCounts, Store
from helpkit.queries import SortOrder, TicketQuery
from helpkit.testing.conformance.helpers import _open, _Time, change_of, declared


def _counts(store: Store) -> RequesterCounts:
    declared(store, Capability.REQUESTER_COUNTS, RequesterCounts)
    return cast(RequesterCounts, store)


def _read_count(store: Store, requester_id: str, since: datetime, limit: int) -> int:
    """The count by reads: the requester's newest ``limit`` tickets, those after ``since``."""
    page = store.query(
        TicketQuery(requester_ids={requester_id}, sort=SortOrder.CREATED_DESC, limit=limit)
    )
    return len([t for t in page.items if t.created_at > since])


class RequesterCountCases:
    """Requester counts: a requester's tickets created since an instant, counted."""

    def test_recent_requests_are_counted(self, store: Store) -> None:
        counts = _counts(store)
        time = _Time()
        start = time.now
        assert counts.count_recent_requests("c1", start, 5) == 0
        opened_at: list[datetime] = []
        for n, requester in enumerate(["c1", "c2", "c1", "c1", "c3", "c1"], start=1):
            at = time.tick(60)
            if requester == "c1":
                opened_at.append(at)
            store.commit([change_of(_open(f"t{n}", 0, at, requester_id=requester))])
        # Each instant (before, on and after each creation) and each limit: what reads give.
        instants = [start, *opened_at, *(at - timedelta(microseconds=1) for at in opened_at)]
        instants += [at + timedelta(microseconds=1) for at in opened_at]
        for requester in ("c1", "c2", "c3", "nobody"):
            for since in instants:
                for limit in (1, 2, 3, 4, 5, 100):
                    expected = _read_count(store, requester, since, limit)
                    got = counts.count_recent_requests(requester, since, limit)
                    assert got == expected, (requester, since, limit, got, expected)
        # Strictly after: a ticket created at ``since`` is not counted.
        assert counts.count_recent_requests("c1", opened_at[-1], 5) == 0
        assert counts.count_recent_requests("c1", opened_at[0], 10) == 3
        assert counts.count_recent_requests("c1", start, 10) == 4
        assert counts.count_recent_requests("c1", start, 2) == 2
        # The same instant in another zone counts alike.
        elsewhere = opened_at[1].astimezone(timezone(timedelta(hours=-5)))
        assert counts.count_recent_requests("c1", elsewhere, 10) == 2
        # As the store holds them at the call: a new ticket is counted at once.
        store.commit([change_of(_open("t9", 0, time.tick(60), requester_id="c1"))])
        assert counts.count_recent_requests("c1", start, 10) == 5

    def test_a_bad_requester_count_is_refused(self, store: Store) -> None:
        counts: Any = _counts(store)
        at = _Time().now
        for bad_id in (None, 5, b"c1", "c\x001"):
            with pytest.raises(ValidationError):
                counts.count_recent_requests(bad_id, at, 1)
        for bad_since in (None, "2026-01-01T00:00:00Z", 0):
            with pytest.raises(ValidationError):
                counts.count_recent_requests("c1", bad_since, 1)
        with pytest.raises(NaiveDatetimeError):
            counts.count_recent_requests("c1", at.replace(tzinfo=None), 1)
        for bad_limit in (0, -1, True, 2.0, "2", None):
            with pytest.raises(ValidationError):
                counts.count_recent_requests("c1", at, bad_limit)
