"""The full recomputation's fast path (helpkit.kpis.ticket_record, added up by
KpiAccumulator.add_record) equals the reference (ticket_facts, added up by
KpiAccumulator.add): random desk histories (every kind of command the KPIs count), their
events' instants moved at random (out of order too), each ticket compared record for record
as of random instants, and whole reports compared with filters, periods and fields."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.errors import HelpkitError, ValidationError
from helpkit.events import Event
from helpkit.kpis import (
    KpiFilter,
    Period,
    aggregate,
    pack_facts,
    ticket_facts,
    ticket_record,
)
from helpkit.reports import KpiReader
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock
from test_kpis_projection import LADDER, MONDAY, POLICY, _desk, _step, steps

H = timedelta(hours=1)


def _histories(
    history: list[tuple[str, int, int, int | None, bool]],
) -> tuple[Helpdesk, FrozenClock]:
    clock = FrozenClock(MONDAY)
    desk = _desk(MemoryStore(), clock)
    tickets: list[str] = []
    for step, which, minutes, _, _ in history:
        clock.advance(timedelta(minutes=minutes))
        with contextlib.suppress(HelpkitError):  # a step the state refuses is skipped
            _step(desk, tickets, step, which)
    return desk, clock


@given(
    steps,
    st.booleans(),  # every step on one ticket (long histories of one ticket)
    st.lists(st.integers(-6 * 60, 6 * 60), max_size=40),  # minutes each event is moved by
    st.lists(st.integers(-3 * 24 * 60, 30 * 24 * 60), min_size=1, max_size=4),  # reports'
)
@example(  # two replies before the resolution (not a first-contact one), then more
    history=[
        (step, 0, 40, None, False)
        for step in (
            "open",
            "agent_reply",
            "agent_reply",
            "resolve",
            "sweep",
            "rate_bad",
            "escalate",
            "assign_ben",
            "pending",
            "open_status",
            "set_form",
            "agent_reply",
            "resolve",
            "close",
        )
    ],
    one=True,
    moves=[],
    nows=[60, -150, -400],
)
@settings(max_examples=150, deadline=None)
def test_a_tickets_record_is_the_record_of_its_facts(
    history: list[tuple[str, int, int, int | None, bool]],
    one: bool,
    moves: list[int],
    nows: list[int],
) -> None:
    if one:
        history = [(step, 0, minutes, fold, reload) for step, _, minutes, fold, reload in history]
    desk, clock = _histories(history)
    try:
        store = desk.store
        for ticket in KpiReader(store, None, None).tickets():
            events: list[Event] = list(store.events(ticket.id))
            # Instants moved (an event dated before its predecessor is read at the
            # predecessor's instant: both paths must do the same).
            moved = [
                attrs.evolve(event, at=event.at + timedelta(minutes=moves[i % len(moves)]))
                if moves
                else event
                for i, event in enumerate(events)
            ]
            for found in (events, moved):
                for minutes in nows:
                    now = clock.now() + timedelta(minutes=minutes)
                    for policy in (POLICY, None):
                        for ladder in (LADDER, None):
                            facts = ticket_facts(found, now, policy=policy, ladder=ladder)
                            record = ticket_record(found, now, policy=policy, ladder=ladder)
                            assert record == (None if facts is None else pack_facts(facts))
    finally:
        desk.shutdown()


@given(steps, st.integers(0, 10 * 24), st.sampled_from([None, "desk", "tech"]))
@settings(max_examples=60, deadline=None)
def test_the_full_recomputation_equals_the_reference_adding_up(
    history: list[tuple[str, int, int, int | None, bool]], hours: int, group: str | None
) -> None:
    desk, clock = _histories(history)
    try:
        now = clock.now() + hours * H
        reader = KpiReader(desk.store, desk.config.sla, LADDER)
        kpi_filter = KpiFilter(groups=None if group is None else [group])
        for period in (Period.DAY, Period.WEEK):
            reference = aggregate(reader.facts(now), now, kpi_filter, period, "form")
            assert reader.report(now, kpi_filter, period, "form") == reference
            assert desk.kpis(now=now, period=period, fields="form", group=group) == reference
    finally:
        desk.shutdown()


def test_a_history_that_is_not_one_is_refused_as_the_reference_refuses_it() -> None:
    desk, clock = _histories([("open", 0, 0, None, False), ("agent_reply", 0, 30, None, False)])
    try:
        ticket = next(KpiReader(desk.store, None, None).tickets())
        events = list(desk.store.events(ticket.id))
        assert len(events) >= 3
        now = clock.now() + H
        for broken in (
            events[:1] + events[2:],  # a gap in seq
            [events[0], events[0]],  # opened twice
            [events[0], attrs.evolve(events[1], ticket_id="other")],  # another ticket's
            events[1:],  # no opening event
            [],
        ):
            with pytest.raises(ValidationError) as reference:
                ticket_facts(broken, now, policy=POLICY, ladder=LADDER)
            with pytest.raises(ValidationError) as fast:
                ticket_record(broken, now, policy=POLICY, ladder=LADDER)
            assert str(fast.value) == str(reference.value)
    finally:
        desk.shutdown()
