"""The requester-count cases can fail: run against memory stores broken on purpose (a ticket
created at ``since`` counted, the limit ignored, every requester counted, a naive instant
compared as UTC wall time, a count kept from the first call, bad limits let through), each
must fail where the real store passes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from helpkit.errors import HelpkitError
from helpkit.stores.memory import MemoryStore
from helpkit.testing.conformance import StoreConformance

_CASES = ("test_recent_requests_are_counted", "test_a_bad_requester_count_is_refused")


def _all(store: MemoryStore) -> list[tuple[str, datetime]]:
    return [(t.requester_id, t.created_at) for t in store._tickets.values()]


class _AtSinceStore(MemoryStore):
    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        super().count_recent_requests(requester_id, since, limit)
        found = sum(1 for r, at in _all(self) if r == requester_id and at >= since)
        return min(found, limit)


class _NoLimitStore(MemoryStore):
    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        return super().count_recent_requests(requester_id, since, 10**6)


class _EveryRequesterStore(MemoryStore):
    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        super().count_recent_requests(requester_id, since, limit)
        return min(sum(1 for _, at in _all(self) if at > since), limit)


class _WallTimeStore(MemoryStore):
    """Reads ``since``'s wall time as UTC (the zone dropped)."""

    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        if isinstance(since, datetime) and since.tzinfo is not None:
            since = since.replace(tzinfo=UTC)
        return super().count_recent_requests(requester_id, since, limit)


class _KeptStore(MemoryStore):
    """Keeps the first answer for each requester."""

    def __init__(self) -> None:
        super().__init__()
        self._kept: dict[str, int] = {}

    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        found = super().count_recent_requests(requester_id, since, limit)
        return self._kept.setdefault(f"{requester_id}|{since}|{limit}", found)


class _LaxLimitStore(MemoryStore):
    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        if isinstance(limit, int) and limit < 1:
            return 0
        return super().count_recent_requests(requester_id, since, limit)


@pytest.mark.parametrize(
    "broken",
    [
        _AtSinceStore,
        _NoLimitStore,
        _EveryRequesterStore,
        _WallTimeStore,
        _KeptStore,
        _LaxLimitStore,
    ],
)
def test_the_requester_count_cases_catch_a_broken_store(broken: type[MemoryStore]) -> None:
    for case in _CASES:
        getattr(StoreConformance(), case)(MemoryStore())  # the real store passes
    failed = 0
    for case in _CASES:
        try:
            getattr(StoreConformance(), case)(broken())
        except (AssertionError, pytest.fail.Exception, HelpkitError):
            failed += 1
    assert failed, f"{broken.__name__} passed every requester-count case"
