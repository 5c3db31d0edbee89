"""Conformance cases of group commits (:attr:`~helpkit.ports.Capability.GROUP_COMMIT`).

``with store.group_commit():`` makes the writes of the block one transaction: each write
applied at once as a nested unit (one that raises leaves nothing of itself, the others
stand), read back in the thread that made it, seen by no other thread until the block ends,
stored all together when it ends normally and not at all when it raises (then what the store
keeps in memory of the block's writes is forgotten: a read gives the state stored before).
A block entered again in the same thread joins the outer one. Skipped, with the reason shown,
for stores that do not declare the capability.
"""

from __future__ import annotations

import threading
from typing import cast

import pytest

from helpkit.errors import ConflictError, NotFoundError
from helpkit.ports import Capability, ChangeFeed, GroupCommits, Store
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import _note, _open, _stale_tag, _Time, change_of, declared
from helpkit.testing.conformance.inbox import ReopenElsewhere
from helpkit.tickets import Ticket


def _groups(store: Store) -> GroupCommits:
    declared(store, Capability.GROUP_COMMIT, GroupCommits)
    return cast(GroupCommits, store)


class _PlantedError(Exception):
    """The exception a case raises inside a block."""


def _position(store: Store) -> int | None:
    if Capability.CHANGE_FEED not in store.capabilities:
        return None
    return cast(ChangeFeed, store).last_position()


def _stored(store: Store, ticket_id: str) -> tuple[Ticket, list[object]]:
    return store.get_ticket(ticket_id), list(store.events(ticket_id))


class GroupCommitCases(SuiteBase):
    """Group commits: a block of writes stored together, or not at all."""

    def test_a_group_stores_its_writes_together(self, store: Store) -> None:
        groups = _groups(store)
        time = _Time()
        with groups.group_commit():
            first = store.commit([change_of(_open("t1", 0, time.tick()))])[0].ticket
            # Read back in the block, and built on: a second change of the same ticket.
            assert store.get_ticket("t1") == first
            noted = store.commit([change_of(_note(first, time.tick()))])[0].ticket
            second = store.commit([change_of(_open("t2", 0, time.tick()))])[0].ticket
        assert (first.number, second.number) == (1, 2)
        assert store.get_ticket("t1") == noted
        assert store.get_ticket("t2") == second
        assert [e.seq for e in store.events("t1")] == list(range(1, noted.seq + 1))
        assert noted.seq > first.seq
        # And the next write, outside any block, goes on from there.
        third = store.commit([change_of(_open("t3", 0, time.tick()))])[0].ticket
        assert third.number == 3

    def test_a_group_that_raises_stores_nothing(self, store: Store) -> None:
        groups = _groups(store)
        time = _Time()
        before = store.commit([change_of(_open("t0", 0, time.tick()))])[0].ticket
        kept = _stored(store, "t0")
        position = _position(store)

        def rolled_back() -> None:
            with groups.group_commit():
                store.commit([change_of(_open("t1", 0, time.tick()))])
                changed = store.commit([change_of(_note(before, time.tick(), "gone"))])
                assert store.get_ticket("t0") == changed[0].ticket
                raise _PlantedError

        with pytest.raises(_PlantedError):
            rolled_back()
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        # The state read is the one stored before the block, not one the block cached.
        assert _stored(store, "t0") == kept
        assert _position(store) == position
        # Nothing of the block is left: its number is given again, the old seq still holds.
        again = store.commit([change_of(_open("t1", 0, time.tick()))])[0].ticket
        assert again.number == 2
        noted = store.commit([change_of(_note(before, time.tick(), "kept"))])[0].ticket
        assert noted.seq == before.seq + 1

    def test_a_group_rolled_back_leaves_no_state_behind(
        self, store: Store, reopen_elsewhere: ReopenElsewhere | None
    ) -> None:
        groups = _groups(store)
        if Capability.MULTIPROCESS not in store.capabilities:
            pytest.skip("the store does not declare Capability.MULTIPROCESS")
        if reopen_elsewhere is None:
            pytest.skip("the suite names no `reopen_elsewhere` fixture to open it elsewhere")
        time = _Time()
        before = store.commit([change_of(_open("t0", 0, time.tick()))])[0].ticket

        def rolled_back() -> None:
            with groups.group_commit():
                store.commit([change_of(_note(before, time.tick(), "rolled back"))])
                store.get_ticket("t0")
                raise _PlantedError

        with pytest.raises(_PlantedError):
            rolled_back()
        # Another writer then makes the same seq with other content: this store must read
        # that, not a state it kept from the block.
        other = reopen_elsewhere(store)()
        try:
            theirs = other.commit([change_of(_note(before, time.tick(), "theirs"))])[0].ticket
            their_events = list(other.events("t0"))
        finally:
            other.close()
        assert store.get_ticket("t0") == theirs
        assert list(store.events("t0")) == their_events

    def test_a_write_that_fails_in_a_group_leaves_the_others(self, store: Store) -> None:
        groups = _groups(store)
        time = _Time()
        with groups.group_commit():
            opened = store.commit([change_of(_open("t1", 0, time.tick()))])[0].ticket
            noted = store.commit([change_of(_note(opened, time.tick()))])[0].ticket
            # Built on the state before the note: it loses, and writes nothing of itself
            # (neither the new ticket it carries nor its tag)...
            with pytest.raises(ConflictError):
                store.commit(
                    [
                        change_of(_open("t9", 0, time.tick())),
                        change_of(_stale_tag(opened, time.tick())),
                    ]
                )
            # ... and the block goes on.
            second = store.commit([change_of(_open("t2", 0, time.tick()))])[0].ticket
        assert store.get_ticket("t1") == noted
        assert second.number == 2
        with pytest.raises(NotFoundError):
            store.get_ticket("t9")

    def test_a_group_entered_again_joins_the_outer_one(self, store: Store) -> None:
        groups = _groups(store)
        time = _Time()

        def rolled_back() -> None:
            with groups.group_commit():
                with groups.group_commit():
                    store.commit([change_of(_open("t1", 0, time.tick()))])
                # The inner block's end stored nothing of its own: the outer one decides.
                raise _PlantedError

        with pytest.raises(_PlantedError):
            rolled_back()
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        with groups.group_commit():
            with groups.group_commit():
                store.commit([change_of(_open("t1", 0, time.tick()))])
            store.commit([change_of(_open("t2", 0, time.tick()))])
        assert [store.get_ticket(t).number for t in ("t1", "t2")] == [1, 2]

    def test_other_threads_see_a_group_only_once_it_ends(self, store: Store) -> None:
        groups = _groups(store)
        if not self.thread_safe:
            pytest.skip("the store is not used from several threads (thread_safe = False)")
        time = _Time()
        seen: list[str] = []

        def look() -> None:
            try:
                store.get_ticket("t1")
            except NotFoundError:
                seen.append("missing")
            else:
                seen.append("found")

        with groups.group_commit():
            store.commit([change_of(_open("t1", 0, time.tick()))])
            reader = threading.Thread(target=look)
            reader.start()
            reader.join(timeout=30)
            assert not reader.is_alive(), "a read in another thread waited for the block"
        reader = threading.Thread(target=look)
        reader.start()
        reader.join(timeout=30)
        assert seen == ["missing", "found"]
