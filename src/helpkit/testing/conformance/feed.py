"""Conformance cases of the change feed (:attr:`~helpkit.ports.Capability.CHANGE_FEED`).

Skipped, with the reason shown, for stores that do not declare the capability.
"""

from __future__ import annotations

import threading
from typing import cast

import pytest

from helpkit.errors import ConflictError, DuplicateError, ValidationError
from helpkit.events import Event
from helpkit.ports import Capability, ChangeFeed, Store, TicketChange
from helpkit.testing.conformance.helpers import (
    ReopenStore,
    StoreFactory,
    _note,
    _open,
    _stale_tag,
    _Time,
    change_of,
    declared,
)


def _feed(store: Store) -> ChangeFeed:
    declared(store, Capability.CHANGE_FEED, ChangeFeed)
    return cast(ChangeFeed, store)


def _keys(events: list[Event]) -> list[tuple[str, int]]:
    return [(e.ticket_id, e.seq) for e in events]


class FeedCases:
    """The change feed: every committed event once, in commit order; named cursors."""

    thread_safe: bool

    def test_the_feed_holds_every_committed_event_once_in_commit_order(self, store: Store) -> None:
        feed = _feed(store)
        assert feed.changes() == [] and feed.last_position() == 0
        time = _Time()
        first = _open("t1", 1, time.tick())
        second = _open("t2", 2, time.tick())
        store.commit([change_of(first)])
        store.commit([change_of(second)])
        note = _note(first.ticket, time.tick())
        store.commit([change_of(note)])
        committed = [*first.events, *second.events, *note.events]
        changes = feed.changes()
        assert [c.event for c in changes] == committed
        positions = [c.position for c in changes]
        assert positions == sorted(set(positions)) and positions[0] > 0
        assert feed.last_position() == positions[-1]

    def test_events_of_one_commit_are_consecutive_in_change_order(self, store: Store) -> None:
        feed = _feed(store)
        time = _Time()
        first = _open("t1", 1, time.tick())
        second = _open("t2", 2, time.tick())
        again = _note(first.ticket, time.tick())
        store.commit([change_of(first), change_of(second), change_of(again)])
        changes = feed.changes()
        assert [c.event for c in changes] == [*first.events, *second.events, *again.events]
        positions = [c.position for c in changes]
        assert positions == list(range(positions[0], positions[0] + len(positions)))

    def test_a_refused_commit_shows_nothing(self, store: Store) -> None:
        feed = _feed(store)
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        stale = _stale_tag(opened.ticket, time.tick())
        store.commit([change_of(_note(opened.ticket, time.tick()))])
        before = feed.changes()
        with pytest.raises(ConflictError):
            store.commit([change_of(_open("t9", 9, time.tick())), change_of(stale)])
        with pytest.raises(DuplicateError):
            store.commit([change_of(_open("t8", 1, time.tick()))])
        with pytest.raises(ValidationError):
            store.commit([TicketChange(opened.ticket, stale.events, 0)])
        assert feed.changes() == before
        assert feed.last_position() == before[-1].position

    def test_changes_page_with_after_and_limit(self, store: Store) -> None:
        feed = _feed(store)
        time = _Time()
        outcomes = [_open(f"t{i}", i, time.tick()) for i in range(1, 6)]
        for outcome in outcomes:
            store.commit([change_of(outcome)])
        everything = feed.changes()
        assert len(everything) == sum(len(o.events) for o in outcomes)
        pages, after = [], 0
        while True:
            page = feed.changes(after=after, limit=3)
            if not page:
                break
            assert len(page) <= 3
            pages.extend(page)
            after = page[-1].position
        assert pages == everything
        assert feed.changes(after=everything[-1].position) == []
        middle = everything[3].position
        assert feed.changes(after=middle) == [c for c in everything if c.position > middle]
        for bad in (-1, True, 1.5, "3", 2**64):
            with pytest.raises(ValidationError):
                feed.changes(after=bad)  # type: ignore[arg-type]
        for bad_limit in (0, -5, True, 10**20):
            with pytest.raises(ValidationError):
                feed.changes(limit=bad_limit)

    def test_cursors_are_named_positions_with_compare_and_set(self, store: Store) -> None:
        feed = _feed(store)
        time = _Time()
        store.commit([change_of(_open("t1", 1, time.tick()))])
        last = feed.last_position()
        assert feed.cursor("relay") == 0
        feed.save_cursor("relay", last)
        assert feed.cursor("relay") == last
        assert feed.cursor("other") == 0  # cursors are independent
        feed.save_cursor("relay", 1, expected=last)
        with pytest.raises(ConflictError):
            feed.save_cursor("relay", last, expected=last)  # another consumer moved it
        assert feed.cursor("relay") == 1
        with pytest.raises(ConflictError):
            feed.save_cursor("new", 1, expected=5)
        feed.save_cursor("new", 1, expected=0)  # an unsaved cursor is at 0
        assert feed.cursor("new") == 1
        with pytest.raises(ValidationError):
            feed.save_cursor("relay", last + 1)  # beyond what was committed
        # A cursor of another sequence (an IMAP mailbox's last UID) is not bounded by the feed.
        outside = "imap:support.example:INBOX:1796516935"
        feed.save_cursor(outside, last + 1000, expected=0)
        assert feed.cursor(outside) == last + 1000
        with pytest.raises(ConflictError):
            feed.save_cursor(outside, last + 1001, expected=last)
        feed.save_cursor(outside, last + 1001, expected=last + 1000)
        assert feed.cursor(outside) == last + 1001
        for bad_name in ("", " x", "a b", "é", None, 5, "x" * 201):
            with pytest.raises(ValidationError):
                feed.cursor(bad_name)  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                feed.save_cursor(bad_name, 0)  # type: ignore[arg-type]
        for bad_position in (-1, True, "1", 2**64):
            with pytest.raises(ValidationError):
                feed.save_cursor("relay", bad_position)  # type: ignore[arg-type]
        assert feed.cursor("relay") == 1

    def test_cursors_lists_every_saved_cursor(self, store: Store) -> None:
        feed = _feed(store)
        assert feed.cursors() == {}
        feed.save_cursor("zeta", 0)  # saved at 0: listed, unlike a name never saved
        store.commit([change_of(_open("t1", 1, _Time().tick()))])
        feed.save_cursor("alpha", feed.last_position())
        listed = feed.cursors()
        assert listed == {"alpha": feed.last_position(), "zeta": 0}
        assert list(listed) == ["alpha", "zeta"]  # by name
        listed["alpha"] = 99  # a copy
        assert feed.cursor("alpha") == feed.last_position()

    def test_positions_follow_commit_order_across_threads(self, store: Store) -> None:
        feed = _feed(store)
        if not self.thread_safe:
            pytest.skip("the suite says this store must not be shared between threads")
        time = _Time()
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            try:
                for index in range(15):
                    outcome = _open(f"w{worker}-{index}", 0, time.tick())
                    store.commit([change_of(outcome)])
                    later = _note(outcome.ticket, time.tick())
                    store.commit([change_of(later)])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        changes = feed.changes(limit=10_000)
        assert len(changes) == 6 * 15 * 3
        assert len({(c.event.ticket_id, c.event.seq) for c in changes}) == len(changes)
        positions = [c.position for c in changes]
        assert positions == sorted(set(positions))
        seen: dict[str, int] = {}
        for change in changes:  # each ticket's events appear in seq order
            assert change.event.seq == seen.get(change.event.ticket_id, 0) + 1
            seen[change.event.ticket_id] = change.event.seq

    def test_the_feed_and_cursors_survive_reopening(
        self, make_store: StoreFactory, reopen_store: ReopenStore
    ) -> None:
        store = make_store()
        if Capability.PERSISTENT not in store.capabilities:
            store.close()
            pytest.skip("the store does not declare Capability.PERSISTENT")
        feed = _feed(store)
        time = _Time()
        try:
            store.commit([change_of(_open("t1", 1, time.tick()))])
            changes = feed.changes()
            feed.save_cursor("relay", changes[-1].position)
        finally:
            store.close()
        reopened = reopen_store(store)
        try:
            again = _feed(reopened)
            assert again.changes() == changes
            assert again.cursor("relay") == changes[-1].position
            assert again.cursors() == {"relay": changes[-1].position}
            more = _open("t2", 2, time.tick())
            reopened.commit([change_of(more)])
            fresh = again.changes(after=changes[-1].position)
            assert [c.event for c in fresh] == list(more.events)
            assert fresh[0].position > changes[-1].position
        finally:
            reopened.close()
