"""Conformance cases for ticket numbers.

Numbers are unique; number 0 is replaced by the store's next number, in commit order
and without gaps; numbers are validated; threads get unique ones.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs
import pytest

from helpkit.errors import ConflictError, DuplicateError, NotFoundError, ValidationError
from helpkit.events import TicketOpened
from helpkit.ports import Store, TicketChange
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import BASE_TIME, _note, _open, _Time, change_of, forged


class NumberingCases(SuiteBase):
    """Ticket numbers: unique, given by the store in commit order, never spent in vain."""

    def test_ticket_numbers_are_unique(self, store: Store) -> None:
        time = _Time()
        first = _open("t1", 7, time.tick())
        store.commit([change_of(first)])
        clash = _open("t2", first.ticket.number, time.tick())
        with pytest.raises(DuplicateError):
            store.commit([change_of(clash)])
        with pytest.raises(NotFoundError):
            store.get_ticket("t2")
        assert store.get_ticket_by_number(first.ticket.number) == first.ticket

        twins = [_open(f"twin{i}", 8, time.tick()) for i in range(2)]
        with pytest.raises(DuplicateError):
            store.commit([change_of(t) for t in twins])
        with pytest.raises(NotFoundError):
            store.get_ticket_by_number(8)

    # ------------------------------------------------------------ ticket numbers

    def test_number_zero_is_numbered_by_the_store(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 0, time.tick())
        (written,) = store.commit([change_of(opened)])
        assert written.ticket == attrs.evolve(opened.ticket, number=1)
        assert written.expected_seq == 0
        first, *rest = written.events
        assert isinstance(first, TicketOpened) and first.number == 1
        assert tuple(rest) == opened.events[1:]
        assert store.get_ticket("t1") == written.ticket
        assert store.get_ticket_by_number(1) == written.ticket
        assert store.events("t1") == list(written.events)
        # A later change may carry 0 too: the ticket keeps its number.
        noted = _note(opened.ticket, time.tick())
        (again,) = store.commit([change_of(noted)])
        assert again.ticket.number == 1
        assert store.get_ticket("t1") == again.ticket
        assert store.events("t1", after_seq=opened.ticket.seq) == list(noted.events)

    def test_numbers_follow_commit_order_without_gaps(self, store: Store) -> None:
        time = _Time()
        numbers = [
            store.commit([change_of(_open(f"t{i}", 0, time.tick()))])[0].ticket.number
            for i in range(5)
        ]
        assert numbers == [1, 2, 3, 4, 5]
        # A refused commit spends no number.
        stale = _open("t0", 0, time.tick())
        with pytest.raises(ConflictError):
            store.commit([change_of(_open("t9", 0, time.tick())), change_of(stale)])
        with pytest.raises(NotFoundError):
            store.get_ticket("t9")
        # A batch numbers its new tickets in order; a change given with its number is kept.
        written = store.commit(
            [change_of(_open("t5", 0, time.tick())), change_of(_open("t6", 0, time.tick()))]
        )
        assert [c.ticket.number for c in written] == [6, 7]
        given = change_of(_open("t7", 40, time.tick()))
        assert store.commit([given]) == [given]
        # After an imported number, numbering continues above it.
        assert store.commit([change_of(_open("t8", 0, time.tick()))])[0].ticket.number == 41

    def test_numbers_are_validated(self, store: Store) -> None:
        time = _Time()
        bad_numbers: tuple[Any, ...] = (-1, True, 2.0)
        for bad in bad_numbers:
            change = change_of(_open("t1", 1, time.tick()))
            change = TicketChange(
                forged(change.ticket, number=bad), change.events, change.expected_seq
            )
            with pytest.raises(ValidationError):
                store.commit([change])
        # The opening event must say the ticket's number.
        opened = change_of(_open("t1", 3, time.tick()))
        with pytest.raises(ValidationError):
            store.commit([TicketChange(attrs.evolve(opened.ticket, number=4), opened.events, 0)])
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        # A ticket left to the store that cannot be stored is refused like any other, and
        # spends no number.
        unstorable = change_of(_open("t1", 0, time.tick()))
        unstorable = TicketChange(
            forged(unstorable.ticket, custom_fields={"blob": object()}),
            unstorable.events,
            0,
        )
        with pytest.raises(ValidationError):
            store.commit([unstorable])
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        (first,) = store.commit([change_of(_open("t2", 0, time.tick()))])
        assert first.ticket.number == 1

    def test_a_guard_without_events_returns_the_stored_number(self, store: Store) -> None:
        time = _Time()
        (opened,) = store.commit([change_of(_open("t1", 0, time.tick()))])
        guard = TicketChange(attrs.evolve(opened.ticket, number=0), (), opened.ticket.seq)
        (written,) = store.commit([guard])
        assert written.ticket == opened.ticket
        assert written.events == ()

    def test_numbers_are_unique_across_threads(self, store: Store) -> None:
        if not self.thread_safe:
            pytest.skip("the suite declares thread_safe = False for this store")
        per_thread, threads_count = 25, 8
        numbers: list[int] = []
        errors: list[BaseException] = []
        guard = threading.Lock()
        barrier = threading.Barrier(threads_count)

        def create(worker: int) -> None:
            barrier.wait()
            try:
                mine = [
                    store.commit([change_of(_open(f"w{worker}-{i}", 0, BASE_TIME))])[
                        0
                    ].ticket.number
                    for i in range(per_thread)
                ]
            except BaseException as exc:  # reported below
                with guard:
                    errors.append(exc)
                return
            with guard:
                numbers.extend(mine)

        threads = [threading.Thread(target=create, args=(w,)) for w in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert sorted(numbers) == list(range(1, per_thread * threads_count + 1))
