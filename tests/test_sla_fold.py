"""An extended fold equals the full fold (issue #10: command cost independent of history).

:class:`helpkit.sla.SlaFold` is built once per ticket and extended with each command's events.
These properties check, over random histories with sweeps recording warnings and breaches
along the way, that

* folding at once agrees with the full fold the clock used before (``sla_full_fold``);
* folding a prefix and extending it with the rest, at any split, agrees with folding at once;
* the schedule the desk stores (next deadline, next check) and the checks a sweep records
  agree with what the full status says;
* a fold kept as plain data (what a store keeps beside the ticket) and read back, at any
  point of the history, is the fold of that prefix, and extends like it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit.calendar import BusinessCalendar
from helpkit.errors import ValidationError
from helpkit.events import Event, SlaBreached, SlaWarned
from helpkit.lifecycle import apply
from helpkit.priority import Priority
from helpkit.sla import BREACH, SlaFold, SlaPolicy, SlaStatus, Targets, fired_checks
from helpkit.testing.calendar_strategies import business_calendars, business_durations
from helpkit.tickets import Actor
from sla_full_fold import compute_sla as full_fold
from sla_reference import Story
from test_sla_clock import run, starts

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
calendars = st.just(BusinessCalendar.always("UTC")) | business_calendars(
    timezones=["UTC", "Europe/Paris", "America/New_York"],
    max_periods=4,
    min_date=date(2025, 12, 1),
    max_date=date(2027, 6, 30),
    max_holidays=6,
    max_exceptions=3,
)
targets = business_durations(
    min_value=timedelta(minutes=1), max_value=timedelta(hours=12), whole_minutes=True
)
COMMANDS = (
    "agent_reply",
    "agent_reply_pending",
    "agent_reply_solved",
    "contact_reply",
    "note",
    "pending",
    "on_hold",
    "open",
    "solved",
    "closed",
    "raise",
    "lower",
    "merge_in",
    "sweep",
    "sweep",
    "sweep",
    "sweep",
)
scripts = st.lists(
    st.tuples(st.integers(0, 24 * 60), st.sampled_from(COMMANDS)), min_size=0, max_size=24
)
SWEEP = Actor.system("sweep")


def policy_of(calendar: BusinessCalendar, target: timedelta, name: str = "p") -> SlaPolicy:
    every = Targets(
        first_response=target,
        next_response=target,
        periodic_update=target * 2,
        resolution=target * 3,
    )
    # P5 is not measured: a priority change can end up with no target at all.
    measured = {p: every for p in Priority if p is not Priority.P5}
    return SlaPolicy(name, calendar, measured, warn_at=(0.5, 0.75))


def sweep(story: Story, policy: SlaPolicy, now: datetime) -> None:
    """Record what a sweep at ``now`` would, as the real one does: crossing order."""
    status = full_fold(story.events, policy, now)
    fired = fired_checks(story.events, policy=policy.name)
    for check in status.pending_checks(fired):
        if check.at > now:
            break
        clock = next(c for c in status.clocks if (c.metric, c.cycle) == (check.metric, check.cycle))
        common: dict[str, Any] = {
            "ticket_id": story.ticket.id,
            "seq": story.ticket.seq + 1,
            "at": now,
            "actor": SWEEP,
            "policy": policy.name,
            "metric": check.metric.value,
            "cycle": check.cycle,
        }
        event: Event
        if check.fraction == BREACH:
            event = SlaBreached(**common, due=check.at)
        else:
            event = SlaWarned(
                **common, threshold=check.fraction, crossed_at=check.at, due=clock.due
            )
        story.events.append(event)
        story.ticket = apply(story.ticket, event)


def build(start: datetime, script: list[tuple[int, str]], policy: SlaPolicy) -> Story:
    story = Story(start)
    now = start
    for delay, command in script:
        now += timedelta(minutes=delay)
        if command == "sweep":
            sweep(story, policy, now)
        else:
            run(story, command, now)
    return story


def _same(fold: SlaFold, events: list[Event], policy: SlaPolicy, now: datetime) -> SlaStatus:
    status = fold.status(now)
    assert status == full_fold(events, policy, now)
    fired = fired_checks(events, policy=policy.name)
    schedule = fold.schedule()
    assert schedule.next_deadline == status.next_deadline
    assert schedule.next_check == status.next_check(fired)
    due = fold.due_checks(now)
    expected = [c for c in status.pending_checks(fired) if c.at <= now]
    assert [d.check for d in due] == expected
    for item in due:
        clock = next(
            c for c in status.clocks if (c.metric, c.cycle) == (item.check.metric, item.check.cycle)
        )
        assert (item.due, item.ended_at) == (clock.due, clock.ended_at)
    return status


@SETTINGS
@given(
    start=starts,
    script=scripts,
    calendar=calendars,
    target=targets,
    extra=st.integers(0, 5 * 24 * 60),
)
def test_folding_at_once_agrees_with_the_full_fold(
    start: datetime,
    script: list[tuple[int, str]],
    calendar: BusinessCalendar,
    target: timedelta,
    extra: int,
) -> None:
    policy = policy_of(calendar, target)
    story = build(start, script, policy)
    now = max(e.at for e in story.events) + timedelta(minutes=extra)
    _same(SlaFold.of(story.events, policy), story.events, policy, now)


@SETTINGS
@given(
    start=starts,
    script=scripts,
    calendar=calendars,
    target=targets,
    cuts=st.lists(st.integers(1, 60), max_size=4),
    extra=st.integers(0, 5 * 24 * 60),
)
def test_extending_a_fold_equals_folding_the_whole_history(
    start: datetime,
    script: list[tuple[int, str]],
    calendar: BusinessCalendar,
    target: timedelta,
    cuts: list[int],
    extra: int,
) -> None:
    policy = policy_of(calendar, target)
    story = build(start, script, policy)
    events = story.events
    points = sorted({min(c, len(events)) for c in cuts})
    fold = SlaFold.of(events[: points[0]] if points else events, policy)
    previous = points[0] if points else len(events)
    for point in [*points[1:], len(events)]:
        prefix_now = max(e.at for e in events[:previous])
        # Every intermediate fold is itself right for its prefix.
        _same(fold, events[:previous], policy, prefix_now)
        fold = fold.extend(events[previous:point])
        previous = point
    assert fold.seq == events[-1].seq
    now = max(e.at for e in events) + timedelta(minutes=extra)
    _same(fold, events, policy, now)


@SETTINGS
@given(start=starts, script=scripts, calendar=calendars, target=targets)
def test_a_fold_is_not_changed_by_extending_it(
    start: datetime, script: list[tuple[int, str]], calendar: BusinessCalendar, target: timedelta
) -> None:
    policy = policy_of(calendar, target)
    story = build(start, script, policy)
    half = max(1, len(story.events) // 2)
    fold = SlaFold.of(story.events[:half], policy)
    now = max(e.at for e in story.events)
    before = (fold.status(now), fold.schedule(), fold.due_checks(now), fold.seq)
    fold.extend(story.events[half:])
    fold.extend(story.events[half:])
    assert (fold.status(now), fold.schedule(), fold.due_checks(now), fold.seq) == before


def test_checks_recorded_under_another_policy_do_not_count() -> None:
    calendar = BusinessCalendar.always("UTC")
    policy = policy_of(calendar, timedelta(hours=1))
    story = Story(datetime.fromisoformat("2026-03-02T09:00:00+00:00"))
    later = story.ticket.created_at + timedelta(hours=5)
    other = policy_of(calendar, timedelta(hours=1), name="other")
    sweep(story, other, later)
    assert any(isinstance(e, SlaBreached) for e in story.events)
    fold = SlaFold.of(story.events, policy)
    assert fold.schedule().next_check is not None
    assert fold.schedule().next_check == full_fold(story.events, policy, later).next_check()


def _kept(fold: SlaFold, policy: SlaPolicy) -> SlaFold:
    """``fold`` as a store keeps it (JSON text) and reads it back."""
    return SlaFold.from_data(json.loads(json.dumps(fold.to_data())), policy)


@SETTINGS
@given(
    start=starts,
    script=scripts,
    calendar=calendars,
    target=targets,
    cuts=st.lists(st.integers(1, 60), max_size=4),
    extra=st.integers(0, 5 * 24 * 60),
)
def test_a_kept_fold_read_back_equals_the_full_fold(
    start: datetime,
    script: list[tuple[int, str]],
    calendar: BusinessCalendar,
    target: timedelta,
    cuts: list[int],
    extra: int,
) -> None:
    policy = policy_of(calendar, target)
    story = build(start, script, policy)
    events = story.events
    points = sorted({min(c, len(events)) for c in cuts} | {len(events)})
    # Kept after each commit and read back before the next, as the sweep does.
    fold = _kept(SlaFold.of(events[: points[0]], policy), policy)
    previous = points[0]
    for point in points[1:]:
        _same(fold, events[:previous], policy, max(e.at for e in events[:previous]))
        fold = _kept(fold.extend(events[previous:point]), policy)
        previous = point
    assert fold.seq == events[-1].seq
    assert fold.to_data() == SlaFold.of(events, policy).to_data()
    now = max(e.at for e in events) + timedelta(minutes=extra)
    _same(fold, events, policy, now)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d[:-1],  # too short
        lambda d: [3, *d[1:]],  # another format
        lambda d: [1, *d[1:]],  # version 1 has no thresholds
        lambda d: [*d, []],  # too long
        lambda d: [*d[:17], [[0, 3600000000, None, []]]],  # no instant for the warning
        lambda d: [d[0], 7, *d[2:]],  # ticket id not text
        lambda d: [*d[:2], 0, *d[3:]],  # seq 0
        lambda d: [*d[:3], "2026", *d[4:]],  # an instant as text
        lambda d: [*d[:4], "gone", *d[5:]],  # unknown category
        lambda d: [*d[:7], [1], *d[8:]],  # intervals of different lengths
        lambda d: [*d[:15], 1, *d[16:]],  # agent_replied not a bool
        # instants equal to the last event's, but not integers (that one's decoding is shared)
        lambda d: [*d[:6], float(d[3]), *d[7:]],
        lambda d: [*d[:10], [*d[10][:2], float(d[3]), *d[10][3:]], *d[11:]],
        lambda d: [*d[:11], [*d[11][:2], True, *d[11][3:]], *d[12:]],
    ],
)
def test_data_that_is_not_a_fold_is_refused(change: Any) -> None:
    policy = policy_of(BusinessCalendar.always("UTC"), timedelta(hours=1))
    story = Story(datetime.fromisoformat("2026-03-02T09:00:00+00:00"))
    data = SlaFold.of(story.events, policy).to_data()
    assert SlaFold.from_data(data, policy).to_data() == data
    with pytest.raises(ValidationError):
        SlaFold.from_data(change(data), policy)


def test_a_fold_kept_in_the_first_form_is_read_back() -> None:
    """Version 1 kept no thresholds: read back, the fold computes them from its calendar."""
    policy = policy_of(BusinessCalendar.always("UTC"), timedelta(hours=1))
    story = Story(datetime.fromisoformat("2026-03-02T09:00:00+00:00"))
    fold = SlaFold.of(story.events, policy)
    data = fold.to_data()
    assert data[0] == 2 and len(data) == 18 and data[17]  # the open resolution cycle's
    old = SlaFold.from_data([1, *data[1:17]], policy)
    assert old.to_data() == data
    later = story.events[-1].at + timedelta(hours=2)
    assert old.due_checks(later) == fold.due_checks(later) != ()
    assert old.schedule() == fold.schedule()


def test_kept_thresholds_spare_the_calendar() -> None:
    """A fold read back with its thresholds answers without calendar arithmetic."""
    calendar = BusinessCalendar.always("UTC")
    policy = policy_of(calendar, timedelta(hours=1))
    story = Story(datetime.fromisoformat("2026-03-02T09:00:00+00:00"))
    fold = SlaFold.of(story.events, policy)
    later = story.events[-1].at + timedelta(hours=2)
    expected = fold.due_checks(later), fold.schedule()
    kept = _kept(fold, policy)
    calls = []
    real = type(calendar).add

    def counted(self: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
        calls.append(start)
        return real(self, start, duration)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(calendar), "add", counted)
        assert (kept.due_checks(later), kept.schedule()) == expected
        assert calls == []
        assert SlaFold.from_data([1, *fold.to_data()[1:17]], policy).schedule() == expected[1]
        assert calls  # the first form computes them


@SETTINGS
@given(
    start=starts,
    script=scripts,
    calendar=calendars,
    target=targets,
    cuts=st.lists(st.integers(1, 60), min_size=1, max_size=4),
)
def test_a_fold_read_back_and_kept_again_gives_the_data_of_the_fold_itself(
    start: datetime,
    script: list[tuple[int, str]],
    calendar: BusinessCalendar,
    target: timedelta,
    cuts: list[int],
) -> None:
    """A fold read back (from the JSON text, or from the very lists :meth:`SlaFold.to_data`
    gave) gives its data again, and extended by any events (as the sweep and commands do)
    it is the fold folded from the history: the same data and status."""
    policy = policy_of(calendar, target)
    events = build(start, script, policy).events
    points = sorted({min(c, len(events)) for c in cuts} | {len(events)})
    for point in points:
        fold = SlaFold.of(events[:point], policy)
        data = fold.to_data()
        for read in (SlaFold.from_data(data, policy), _kept(fold, policy)):
            assert read.to_data() == data
            for later in points:
                if later > point:
                    expected = SlaFold.of(events[:later], policy)
                    extended = read.extend(events[point:later])
                    assert extended.to_data() == expected.to_data()
                    assert extended.status(events[-1].at) == expected.status(events[-1].at)
        assert data == fold.to_data()  # nothing the reading kept was changed


def test_data_not_as_written_is_kept_again_as_written() -> None:
    """A fold read from data this module would not write that way (tuples for lists, a
    cycle's fractions unsorted or repeated) is kept again in the written form (what is
    kept is a function of the fold, never a copy of what was read)."""
    policy = policy_of(BusinessCalendar.always("UTC"), timedelta(hours=1))
    story = Story(datetime.fromisoformat("2026-03-02T09:00:00+00:00"))
    later = story.events[-1].at + timedelta(hours=4)
    sweep(story, policy, later)
    fold = SlaFold.of(story.events, policy)
    data = fold.to_data()
    fired = data[11][7]
    assert len(fired) >= 2, data  # the resolution cycle's warnings and breach
    odd = [*data]
    odd[7], odd[8], odd[9] = tuple(data[7]), tuple(data[8]), tuple(data[9])
    odd[10] = tuple(data[10])
    odd[11] = [*data[11][:7], [*reversed(fired), fired[0]]]
    odd[17] = [tuple(entry) for entry in data[17]]
    assert SlaFold.from_data(odd, policy).to_data() == data
