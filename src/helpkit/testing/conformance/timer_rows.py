"""Conformance cases of timer rows (:attr:`~helpkit.ports.Capability.TIMER_ROWS`).

``due_timers`` pages through the due tickets, earliest ``next_check`` first then by id, each
as the stored ticket says (seq, ``updated_at``, SLA fields, kept timer state); a
``commit_timers`` update stores exactly what ``commit`` of the same events and state would
(the ticket with ``seq``, ``updated_at`` and its SLA fields replaced), all or nothing, and
raises ConflictError when a ticket moved on. Skipped, with the reason shown, for stores that
do not declare the capability.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import attrs
import pytest

from helpkit.errors import ConflictError, ValidationError
from helpkit.events import SlaWarned
from helpkit.lifecycle import apply
from helpkit.ports import (
    Capability,
    DueTimer,
    Store,
    TimerRows,
    TimerStates,
    TimerUpdate,
    missing_members,
)
from helpkit.testing.conformance.helpers import _note, _open, _Time, change_of, with_schedule
from helpkit.tickets import Actor, Ticket


def _rows(store: Store) -> tuple[TimerRows, TimerStates]:
    if Capability.TIMER_ROWS not in store.capabilities:
        pytest.skip("the store does not declare Capability.TIMER_ROWS")
    assert Capability.TIMER_STATE in store.capabilities, "TIMER_ROWS needs TIMER_STATE"
    assert missing_members(store, TimerRows) == (), "a store with TIMER_ROWS implements TimerRows"
    return cast(TimerRows, store), cast(TimerStates, store)


def _warned(ticket: Ticket, at: datetime, due: datetime) -> SlaWarned:
    return SlaWarned(
        ticket_id=ticket.id,
        seq=ticket.seq + 1,
        at=at,
        actor=Actor.system("sweep"),
        policy="standard",
        metric="resolution",
        cycle=0,
        threshold=0.75,
        crossed_at=at,
        due=due,
    )


class TimerRowCases:
    """Timer rows: the sweep's narrow reads (``due_timers``) and writes (``commit_timers``)."""

    def _due_store(self, store: Store, time: _Time) -> list[Ticket]:
        _, states = _rows(store)
        opened = []
        for index in range(5):
            at = time.tick()
            outcome = with_schedule(
                _open(f"t{index}", 0, at),
                policy="standard",
                deadline=at + timedelta(hours=8),
                check=at + timedelta(hours=6 if index != 3 else 20),
            )
            opened.append(outcome)
        written = states.commit_planned(
            [change_of(o) for o in opened], [f'{{"n":{i}}}' for i in range(4)] + [None]
        )
        return [change.ticket for change in written]

    def _due(self, store: Store) -> tuple[TimerRows, _Time, list[Ticket], datetime]:
        """The store's timer rows, its clock, five tickets committed by :meth:`_due_store`,
        and an instant when four of them are due (the setup most cases share)."""
        rows, _ = _rows(store)
        time = _Time()
        tickets = self._due_store(store, time)
        return rows, time, tickets, time.now + timedelta(hours=7)

    def test_due_timers_pages_the_due_tickets_in_check_order(self, store: Store) -> None:
        rows, time, tickets, now = self._due(store)
        seen: list[DueTimer] = []
        after = None
        while True:
            page, after = rows.due_timers(now, limit=2, after=after)
            assert len(page) <= 2
            seen.extend(page)
            if after is None:
                break
        due = [t for t in tickets if t.next_check is not None and t.next_check <= now]
        assert [row.ticket_id for row in seen] == [
            t.id for t in sorted(due, key=lambda t: (t.next_check, t.id))
        ]
        for row in seen:
            ticket = store.get_ticket(row.ticket_id)
            assert (row.seq, row.updated_at, row.sla_policy) == (
                ticket.seq,
                ticket.updated_at,
                ticket.sla_policy,
            )
            assert (row.next_deadline, row.next_check) == (ticket.next_deadline, ticket.next_check)
            assert row.plain
        assert [row.timer_state for row in seen] == ['{"n":0}', '{"n":1}', '{"n":2}', None]
        assert rows.due_timers(time.now - timedelta(days=1), limit=10) == ([], None)

    def test_commit_timers_stores_what_commit_would_store(self, store: Store) -> None:
        rows, _time, tickets, now = self._due(store)
        ticket = tickets[0]
        assert ticket.next_deadline is not None
        event = _warned(ticket, now, ticket.next_deadline)
        rows.commit_timers(
            [
                TimerUpdate(
                    ticket_id=ticket.id,
                    expected_seq=ticket.seq,
                    events=(event,),
                    updated_at=now,
                    sla_policy="standard",
                    next_deadline=ticket.next_deadline,
                    next_check=ticket.next_deadline,
                    timer_state='{"n":9}',
                )
            ]
        )
        expected = attrs.evolve(apply(ticket, event), next_check=ticket.next_deadline)
        assert store.get_ticket(ticket.id) == expected
        assert store.events(ticket.id)[-1] == event
        page, _after = rows.due_timers(now, limit=10)
        assert ticket.id not in [row.ticket_id for row in page]
        later, _ = rows.due_timers(ticket.next_deadline, limit=10)
        assert [r.timer_state for r in later if r.ticket_id == ticket.id] == ['{"n":9}']

    def test_an_update_that_moves_the_deadline_and_renames_the_policy_stores_both(
        self, store: Store
    ) -> None:
        """With its due row (found by the store's handle) or without: the ticket, and the
        columns the store reads back (``due_timers``), say the new deadline and policy."""
        rows, _time, tickets, now = self._due(store)
        due, _ = rows.due_timers(now, limit=10)
        by_id = {row.ticket_id: row for row in due}
        updates = []
        for ticket, row in ((tickets[0], by_id[tickets[0].id]), (tickets[1], None)):
            assert ticket.next_deadline is not None
            deadline = ticket.next_deadline + timedelta(hours=3)
            updates.append(
                TimerUpdate(
                    ticket_id=ticket.id,
                    expected_seq=ticket.seq,
                    events=(_warned(ticket, now, deadline),),
                    updated_at=now,
                    sla_policy="renamed",
                    next_deadline=deadline,
                    next_check=now + timedelta(hours=1),
                    timer_state='{"n":7}',
                    row=row,
                )
            )
        rows.commit_timers(updates)
        later, _ = rows.due_timers(now + timedelta(hours=1), limit=10)
        read = {row.ticket_id: row for row in later}
        for ticket, update in zip(tickets, updates, strict=False):
            expected = attrs.evolve(
                apply(ticket, update.events[0]),
                sla_policy="renamed",
                next_deadline=update.next_deadline,
                next_check=update.next_check,
            )
            assert store.get_ticket(ticket.id) == expected
            row = read[ticket.id]
            assert (row.seq, row.sla_policy, row.next_deadline, row.next_check) == (
                expected.seq,
                "renamed",
                update.next_deadline,
                update.next_check,
            )

    def test_commit_timers_on_a_ticket_that_moved_on_writes_nothing(self, store: Store) -> None:
        rows, _time, tickets, now = self._due(store)
        updates = []
        for index, ticket in enumerate(tickets[:2]):
            assert ticket.next_deadline is not None
            updates.append(
                TimerUpdate(
                    ticket_id=ticket.id,
                    expected_seq=ticket.seq - index,  # the second is stale
                    events=(
                        attrs.evolve(
                            _warned(ticket, now, ticket.next_deadline), seq=ticket.seq - index + 1
                        ),
                    ),
                    updated_at=now,
                    sla_policy="standard",
                    next_deadline=ticket.next_deadline,
                    next_check=None,
                    timer_state="{}",
                )
            )
        with pytest.raises(ConflictError):
            rows.commit_timers(updates)
        for ticket in tickets:
            assert store.get_ticket(ticket.id) == ticket
            assert len(store.events(ticket.id)) == ticket.seq

    def test_commit_timers_refuses_events_that_are_not_timer_events_in_order(
        self, store: Store
    ) -> None:
        rows, _time, tickets, now = self._due(store)
        ticket = tickets[0]
        assert ticket.next_deadline is not None
        warned = _warned(ticket, now, ticket.next_deadline)
        note = _note(ticket, now).events[0]
        for events in ((attrs.evolve(warned, seq=ticket.seq + 2),), (note,)):
            with pytest.raises(ValidationError):
                rows.commit_timers(
                    [
                        TimerUpdate(
                            ticket_id=ticket.id,
                            expected_seq=ticket.seq,
                            events=events,
                            updated_at=now,
                            sla_policy="standard",
                            next_deadline=ticket.next_deadline,
                            next_check=None,
                            timer_state="{}",
                        )
                    ]
                )
        assert store.get_ticket(ticket.id) == ticket
        assert len(store.events(ticket.id)) == ticket.seq

    def test_an_update_carrying_its_due_row_conflicts_when_the_ticket_moved_on(
        self, store: Store
    ) -> None:
        rows, time, tickets, now = self._due(store)
        due, _ = rows.due_timers(now, limit=10)
        by_id = {row.ticket_id: row for row in due}
        # t1 moves on after its row was read: the batch conflicts and writes nothing.
        moved = _note(tickets[1], time.tick())
        store.commit([change_of(moved)])
        updates = []
        for ticket in tickets[:3]:
            assert ticket.next_deadline is not None
            updates.append(
                TimerUpdate(
                    ticket_id=ticket.id,
                    expected_seq=ticket.seq,
                    events=(_warned(ticket, now, ticket.next_deadline),),
                    updated_at=now,
                    sla_policy="standard",
                    next_deadline=ticket.next_deadline,
                    next_check=None,
                    timer_state="{}",
                    row=by_id[ticket.id],
                )
            )
        with pytest.raises(ConflictError):
            rows.commit_timers(updates)
        assert store.get_ticket(tickets[0].id) == tickets[0]
        assert store.get_ticket(tickets[1].id) == moved.ticket
        # Without the moved ticket, the same updates go through, as commit would store them.
        rows.commit_timers([updates[0], updates[2]])
        for ticket, update in ((tickets[0], updates[0]), (tickets[2], updates[2])):
            expected = attrs.evolve(apply(ticket, update.events[0]), next_check=None)
            assert store.get_ticket(ticket.id) == expected
