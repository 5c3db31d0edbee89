"""Conformance cases of feed wake-ups (:attr:`~helpkit.ports.Capability.FEED_WAKEUP`).

``wait_for_changes(after, timeout)`` returns True at once when the feed already holds a
position above ``after``, True when a commit lands while it waits, and False when the time
runs out with nothing new. Skipped, with the reason shown, for stores that do not declare the
capability (and the threaded case for suites that declare ``thread_safe = False``).
"""

from __future__ import annotations

import threading
import time as _clock
from typing import cast

import pytest

from helpkit.ports import Capability, ChangeFeed, FeedWakeup, Store, missing_members
from helpkit.testing.conformance.helpers import _note, _open, _Time, change_of

# Long enough that a wait ending on its own time is a failure, not a slow machine.
_PATIENCE = 30.0


def _wakeup(store: Store) -> FeedWakeup:
    if Capability.FEED_WAKEUP not in store.capabilities:
        pytest.skip("the store does not declare Capability.FEED_WAKEUP")
    assert missing_members(store, FeedWakeup) == (), (
        "a store with FEED_WAKEUP implements FeedWakeup"
    )
    return cast(FeedWakeup, store)


class WakeupCases:
    """Feed wake-ups: a wait that a commit ends, so an idle consumer needs no polling."""

    thread_safe: bool

    def test_a_wait_returns_at_once_when_a_change_is_already_there(self, store: Store) -> None:
        wakeup = _wakeup(store)
        store.commit([change_of(_open("t1", 1, _Time().tick()))])
        assert wakeup.wait_for_changes(0, _PATIENCE) is True

    def test_a_wait_with_nothing_new_runs_out_and_says_so(self, store: Store) -> None:
        wakeup = _wakeup(store)
        store.commit([change_of(_open("t1", 1, _Time().tick()))])
        last = cast(ChangeFeed, store).last_position()
        assert wakeup.wait_for_changes(last, 0.05) is False

    def test_a_commit_during_a_wait_ends_it(self, store: Store) -> None:
        wakeup = _wakeup(store)
        if not self.thread_safe:
            pytest.skip("the suite declares thread_safe = False for this store")
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        last = cast(ChangeFeed, store).last_position()
        results: list[bool] = []
        returned: list[float] = []
        waiting = threading.Event()

        def wait() -> None:
            waiting.set()
            results.append(wakeup.wait_for_changes(last, _PATIENCE))
            returned.append(_clock.monotonic())

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        assert waiting.wait(_PATIENCE)
        _clock.sleep(min(_PATIENCE / 5, 0.2))  # the waiter is inside its wait by now
        store.commit([change_of(_note(opened.ticket, time.tick()))])
        committed = _clock.monotonic()
        waiter.join(_PATIENCE + 5)
        assert not waiter.is_alive(), "the wait did not return"
        assert results == [True], "a commit during the wait must end it with True"
        # Not a speed requirement: a wait that only looks again when its time has run out is
        # a poll, not a wake-up (it would return most of its time after the commit).
        assert returned[0] - committed < _PATIENCE / 2, "the commit did not end the wait"
