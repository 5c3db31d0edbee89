"""The sweep with the timer states the SQLite store keeps beside each ticket (issue #10).

A desk on the SQLite store keeps each ticket's SLA fold beside it with every commit. A sweep
in another process (here: a new desk, whose fold cache is empty) reads the due tickets and
their states in one query per batch and reads no history, and records exactly what a sweep
that folds every history records. A state that is behind the ticket (committed since by a
plain store commit), was built under another definition of the policy, or is not a state at
all, is only a missed shortcut: the sweep then folds the history, as before.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.escalation import EscalationRules
from helpkit.events import Event, SlaBreached, SlaWarned
from helpkit.lifecycle import add_comment
from helpkit.ports import Store, TicketChange
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import DEFAULT_WORKFLOW, Comment

H = timedelta(hours=1)
MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
AGENT = Actor.agent("ana")
RULES = EscalationRules.from_list(
    [
        {"name": "warn", "metric": "resolution", "at": 0.75, "actions": ["notify_group"]},
        {"name": "breach", "metric": "resolution", "at": "breach", "actions": ["escalate"]},
        {
            "name": "first",
            "metric": "first_response",
            "at": "breach",
            "actions": ["raise_priority"],
        },
    ]
)


def policy(hours: int = 8) -> SlaPolicy:
    every = Targets(first_response=H, next_response=2 * H, resolution=hours * H)
    return SlaPolicy("standard", OFFICE, dict.fromkeys(Priority, every), warn_at=(0.5, 0.75))


class Counting(SqliteStore):
    """The SQLite store, counting the histories read."""

    histories = 0

    def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
        Counting.histories += 1
        return super().events(ticket_id, after_seq=after_seq)


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[list[Store]]:
    """Stores opened by a test, closed after it."""
    stores: list[Store] = []
    yield stores
    for store in stores:
        store.close()


def desk_on(store: Store, now: datetime, sla: SlaPolicy | None = None) -> Helpdesk:
    config = DeskConfig(sla=SlaPolicySet((sla or policy(),)), escalation=RULES)
    return Helpdesk(store, config=config, clock=FrozenClock(now), entry_points=False)


def staff(desk: Helpdesk) -> None:
    desk.add_group("desk", "Service desk", tier=1)
    desk.add_group("tech", "Technicians", tier=2)
    desk.add_agent("ana", "Ana", groups=["desk"])
    desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")


def open_some(desk: Helpdesk, count: int) -> list[str]:
    return [
        desk.open_ticket(Actor.contact("bob"), requester="bob", subject=f"VPN {i}", body="down").id
        for i in range(count)
    ]


def recorded(desk: Helpdesk, ticket: str) -> list[tuple[Any, ...]]:
    """The SLA checks and escalations recorded on ``ticket``, and where it stands."""
    found: list[tuple[Any, ...]] = []
    for event in desk.history(ticket):
        if isinstance(event, SlaWarned | SlaBreached):
            found.append((event.TYPE, event.metric, event.cycle, getattr(event, "threshold", 1)))
        elif event.TYPE in ("escalated", "priority_changed"):
            found.append((event.TYPE, event.at))
    state = desk.ticket(ticket)
    return [*found, (state.group_id, state.priority, state.next_check, state.next_deadline)]


def drop_states(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tickets SET timer_state = NULL")
    conn.close()


def test_a_fresh_desk_sweeps_due_tickets_without_reading_their_history(
    tmp_path: Path, opened: list[Store]
) -> None:
    path = tmp_path / "desk.db"
    store = Counting(path, synchronous="NORMAL")
    opened.append(store)
    desk = desk_on(store, MON)
    staff(desk)
    tickets = open_some(desk, 12)
    for ticket in tickets[:4]:
        desk.assign(ticket, AGENT, agent="ana", group="desk")
        desk.reply(ticket, AGENT, "Looking", status="pending")
        desk.requester_reply(ticket, "Still down")
    late = MON + 7 * H
    # Another process: a new desk (an empty fold cache) on the same file.
    Counting.histories = 0
    report = desk_on(store, late).sweep(batch=5)
    assert report.examined == 12 and report.warnings > 0 and report.failures == 0
    assert Counting.histories == 0
    # The same sweep on a copy without the kept states folds every history, and agrees.
    copy = tmp_path / "copy.db"
    other = Counting(copy, synchronous="NORMAL")
    opened.append(other)
    # (Rebuilt the same way, deterministically, on its own file.)
    again = desk_on(other, MON)
    staff(again)
    same = open_some(again, 12)
    for ticket in same[:4]:
        again.assign(ticket, AGENT, agent="ana", group="desk")
        again.reply(ticket, AGENT, "Looking", status="pending")
        again.requester_reply(ticket, "Still down")
    other.close()
    drop_states(copy)
    other = Counting(copy, synchronous="NORMAL")
    opened.append(other)
    Counting.histories = 0
    fresh = desk_on(other, late)
    assert fresh.sweep(batch=5) == report
    assert Counting.histories >= 12
    checked = desk_on(store, late)
    assert [recorded(checked, t) for t in tickets] == [recorded(fresh, t) for t in same]
    assert desk_on(store, late).sweep().examined == 0


def test_a_state_behind_the_ticket_is_brought_up_to_date_from_the_events_since(
    tmp_path: Path, opened: list[Store]
) -> None:
    store = Counting(tmp_path / "desk.db", synchronous="NORMAL")
    opened.append(store)
    desk = desk_on(store, MON)
    staff(desk)
    [ticket] = open_some(desk, 1)
    # A plain store commit (not through a pipeline) leaves the kept state behind: an agent's
    # public reply achieves the first response and starts a periodic update.
    current = store.get_ticket(ticket)
    comment = Comment(
        id="m2", author=AGENT, body="On it", public=True, channel="web", created_at=MON + H / 2
    )
    outcome = add_comment(current, comment, at=MON + H / 2, workflow=DEFAULT_WORKFLOW)
    store.commit([TicketChange(outcome.ticket, outcome.events, outcome.previous_seq)])
    Counting.histories = 0
    late = MON + 7 * H
    report = desk_on(store, late).sweep()
    assert Counting.histories == 1  # the events after the kept state, once
    # The reply was recorded in time: no first-response breach, only the resolution warnings.
    assert (report.warnings, report.breaches, report.priority_raises) == (2, 0, 0)


def test_a_state_of_another_policy_definition_or_no_state_at_all_is_ignored(
    tmp_path: Path, opened: list[Store]
) -> None:
    path = tmp_path / "desk.db"
    store = Counting(path, synchronous="NORMAL")
    opened.append(store)
    desk = desk_on(store, MON)
    staff(desk)
    tickets = open_some(desk, 3)
    # The policy of the same name now has a longer target: the kept folds do not count.
    longer = policy(hours=16)
    Counting.histories = 0
    report = desk_on(store, MON + 7 * H, longer).sweep()
    assert Counting.histories == 3
    # First responses warned and breached (1h); resolution at 7h of 16h: short of its 50%
    # warning (under the kept 8h folds it would be past both warnings).
    assert (report.breaches, report.warnings) == (3, 6)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tickets SET timer_state = ? WHERE id = ?", ("{", tickets[0]))
        conn.execute("UPDATE tickets SET timer_state = '[1]' WHERE id = ?", (tickets[1],))
        conn.execute(
            'UPDATE tickets SET timer_state = \'{"sla": ["x", 1]}\' WHERE id = ?',
            (tickets[2],),
        )
    conn.close()
    # Tuesday 00:00: 8 office hours counted, the 50% resolution warning of each.
    report = desk_on(store, MON + 15 * H, longer).sweep()
    assert (report.examined, report.warnings, report.failures) == (3, 3, 0)


COMMANDS = ("reply", "pending", "requester", "open", "solve", "raise", "note", "sweep", "sweep")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.integers(0, 6 * 60), st.integers(0, 2), st.sampled_from(COMMANDS)),
        max_size=14,
    )
)
def test_sweeps_in_fresh_desks_agree_with_one_desk_folding_every_history(
    tmp_path_factory: pytest.TempPathFactory, script: list[tuple[int, int, str]]
) -> None:
    """A random life of three tickets, swept now and then by a new desk each time (kept
    states), against the same life on the memory store (no states, every history folded)."""
    store = SqliteStore(tmp_path_factory.mktemp("s") / "desk.db", synchronous="NORMAL")
    try:
        lives = []
        for kind in ("sqlite", "memory"):
            shared: Store = store if kind == "sqlite" else MemoryStore()
            clock = FrozenClock(MON)
            config = DeskConfig(sla=SlaPolicySet((policy(),)), escalation=RULES)
            desk = Helpdesk(shared, config=config, clock=clock, entry_points=False)
            staff(desk)
            tickets = open_some(desk, 3)
            reports: list[object] = []
            for minutes, which, command in script:
                clock.set(clock.now() + timedelta(minutes=minutes))
                ticket = tickets[which]
                if command == "sweep":
                    sweeper = desk_on(shared, clock.now()) if kind == "sqlite" else desk
                    reports.append(sweeper.sweep(batch=2))
                    continue
                state = desk.ticket(ticket)
                try:
                    if command == "reply":
                        desk.reply(ticket, AGENT, "Looking")
                    elif command == "pending":
                        desk.set_status(ticket, AGENT, "pending")
                    elif command == "requester":
                        desk.requester_reply(ticket, "Any news?")
                    elif command == "open":
                        desk.set_status(ticket, AGENT, "open")
                    elif command == "solve":
                        desk.resolve(ticket, AGENT)
                    elif command == "raise" and state.priority is not Priority.P1:
                        desk.prioritize(ticket, AGENT, impact="high", urgency="high")
                    elif command == "note":
                        desk.note(ticket, AGENT, "internal")
                except Exception as exc:  # a transition the workflow refuses: same on both
                    reports.append(type(exc).__name__)
            end = clock.now() + 30 * H
            sweeper = desk_on(shared, end) if kind == "sqlite" else desk
            reports.append(sweeper.sweep(end))
            lives.append((reports, [recorded(desk, t) for t in tickets]))
        assert lives[0] == lives[1]
    finally:
        store.close()
