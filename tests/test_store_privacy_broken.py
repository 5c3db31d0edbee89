"""The redaction and purge cases can fail: run against memory stores broken on purpose (a
rewrite that misses the change feed, a rewrite applied half-way, blobs said unused while an
event refers to them, a purge that deletes the ticket holding the last position), each must
fail where the real store passes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from helpkit.events import Event
from helpkit.ports import Delivery, Receipt
from helpkit.stores.memory import MemoryStore
from helpkit.testing.conformance import StoreConformance


class _HistoryOnlyRewriteStore(MemoryStore):
    """Rewrites the history but leaves the change feed holding the old events."""

    def rewrite(
        self,
        *,
        events: Sequence[Event] = (),
        deliveries: Sequence[Delivery] = (),
        receipts: Sequence[Receipt] = (),
    ) -> None:
        feed = list(self._feed)
        super().rewrite(events=events, deliveries=deliveries, receipts=receipts)
        self._feed = feed


class _HalfRewriteStore(MemoryStore):
    """Rewrites one record at a time: what comes before a refused record stays rewritten."""

    def rewrite(
        self,
        *,
        events: Sequence[Event] = (),
        deliveries: Sequence[Delivery] = (),
        receipts: Sequence[Receipt] = (),
    ) -> None:
        for event in events:
            super().rewrite(events=[event])
        super().rewrite(deliveries=deliveries, receipts=receipts)


class _BlobBlindStore(MemoryStore):
    """Says no blob is in use (helpkit would delete files other comments still show)."""

    def blobs_in_use(self, sha256s: Sequence[str]) -> frozenset[str]:
        return frozenset()


class _GreedyPurgeStore(MemoryStore):
    """Deletes every ticket asked for, the one holding the last position included."""

    def purge_tickets(self, ticket_ids: Sequence[str]) -> list[str]:
        with self._lock:
            gone = sorted({t for t in ticket_ids if t in self._tickets})
            for ticket_id in gone:
                self._numbers.pop(self._tickets.pop(ticket_id).number, None)
                del self._events[ticket_id]
            self._feed = [None if e is None or e.ticket_id in gone else e for e in self._feed]
            return gone


@pytest.mark.parametrize(
    ("broken", "example"),
    [
        (_HistoryOnlyRewriteStore, "test_after_a_rewrite_no_read_returns_the_text"),
        (_HalfRewriteStore, "test_a_rewrite_is_all_or_nothing"),
        (_BlobBlindStore, "test_blobs_in_use_are_those_an_event_still_refers_to"),
        (_GreedyPurgeStore, "test_a_purge_deletes_tickets_and_what_they_hold"),
    ],
)
def test_the_privacy_examples_catch_a_broken_store(broken: type[MemoryStore], example: str) -> None:
    getattr(StoreConformance(), example)(MemoryStore())  # the real store passes
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(StoreConformance(), example)(broken())
