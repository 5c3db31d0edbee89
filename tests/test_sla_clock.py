"""The SLA clock: worked cases on Mon-Fri 09:00-17:00 (UTC), one behaviour at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpkit.calendar import BusinessCalendar
from helpkit.errors import HelpkitError, NaiveDatetimeError, ValidationError
from helpkit.events import Event, SlaBreached, SlaWarned
from helpkit.priority import Impact, Priority, Urgency
from helpkit.sla import (
    BREACH,
    Metric,
    MetricClock,
    SlaCheck,
    SlaPolicy,
    Targets,
    Threshold,
    compute_sla,
    fired_checks,
)
from helpkit.testing.strategies import business_calendars, business_durations, ticket_histories
from helpkit.tickets import Actor, StatusCategory
from sla_reference import AGENT, OFFICE, Story, at, reference

H = timedelta(hours=1)
FR, NR, PU, RES = (
    Metric.FIRST_RESPONSE,
    Metric.NEXT_RESPONSE,
    Metric.PERIODIC_UPDATE,
    Metric.RESOLUTION,
)

POLICY = SlaPolicy(
    "standard",
    OFFICE,
    {
        # high/high: "urgent"
        Priority.P1: Targets(
            first_response=H, next_response=H, periodic_update=2 * H, resolution=4 * H
        ),
        # medium/medium
        Priority.P3: Targets(
            first_response=4 * H, next_response=2 * H, periodic_update=4 * H, resolution=8 * H
        ),
        # low/medium: "low"
        Priority.P4: Targets(first_response=8 * H, resolution=16 * H),
    },
)


def clock(story: Story, metric: Metric, now: datetime, policy: SlaPolicy = POLICY) -> MetricClock:
    found = compute_sla(story.events, policy, now).current(metric)
    assert found is not None
    return found


# ---------------------------------------------------------------- the three worked cases


def test_resolution_paused_monday_16_to_18_is_due_tuesday_10() -> None:
    story = Story(at(0, 9)).status("pending", at(0, 16)).status("open", at(0, 18))
    res = clock(story, RES, at(1, 9, 30))
    assert res.target == 8 * H
    assert res.due == at(1, 10)
    assert res.elapsed == 7 * H + 30 * timedelta(minutes=1)
    assert res.remaining == 30 * timedelta(minutes=1)
    assert res.state == "running"
    assert res.breached_at is None


def test_four_hours_from_friday_15_paused_until_monday_10_is_due_monday_13() -> None:
    story = Story(at(4, 15), impact=Impact.HIGH, urgency=Urgency.HIGH)
    story.status("on_hold", at(4, 16)).status("open", at(7, 10))
    res = clock(story, RES, at(7, 10))
    assert res.target == 4 * H
    assert res.due == at(7, 13)
    assert res.elapsed == H
    assert res.running


def test_raising_low_to_urgent_recomputes_from_the_start_and_breaches_at_once() -> None:
    story = Story(at(0, 9), impact=Impact.LOW, urgency=Urgency.MEDIUM)
    before = clock(story, RES, at(0, 14, 59))
    assert before.target == 16 * H
    assert before.due == at(1, 17)
    story.priority(at(0, 15), impact=Impact.HIGH, urgency=Urgency.HIGH)
    assert story.ticket.priority is Priority.P1
    res = clock(story, RES, at(0, 15))
    assert res.target == 4 * H
    assert res.due == at(0, 13)
    assert res.breached_at == at(0, 13)
    assert res.state == "breached"
    assert res.elapsed == 6 * H
    assert res.remaining == -2 * H


# ---------------------------------------------------------------- first response


def test_first_response_is_achieved_by_a_public_agent_reply_only() -> None:
    story = Story(at(0, 9))  # the contact's opening message
    story.note(at(0, 10))  # an internal note is no response
    story.contact_reply(at(0, 10, 30))  # nor is another message from the contact
    fr = clock(story, FR, at(0, 10, 45))
    assert fr.state == "running"
    assert fr.achieved_at is None
    assert fr.due == at(0, 13)
    story.agent_reply(at(0, 11))
    fr = clock(story, FR, at(0, 12))
    assert fr.achieved_at == at(0, 11)
    assert fr.state == "achieved"
    assert fr.elapsed == 2 * H  # counted up to the reply, not to now
    assert fr.remaining == 2 * H
    assert fr.due is None  # achieved before reaching its target
    assert fr.breached_at is None
    assert not fr.running
    assert not fr.paused


def test_a_late_first_response_is_achieved_with_its_breach_recorded() -> None:
    story = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH)  # 1 h
    story.agent_reply(at(0, 11))
    fr = clock(story, FR, at(0, 12))
    assert fr.due == at(0, 10)
    assert fr.breached_at == at(0, 10)
    assert fr.achieved_at == at(0, 11)
    assert fr.state == "achieved"
    assert fr.remaining == -H


def test_a_reply_after_closing_time_breaches_at_closing_time() -> None:
    # 1 h target from Mon 16:00 reaches 1 h at 17:00; a reply at 18:00 is late.
    story = Story(at(0, 16), impact=Impact.HIGH, urgency=Urgency.HIGH).agent_reply(at(0, 18))
    fr = clock(story, FR, at(0, 18))
    assert fr.due == at(0, 17)
    assert fr.breached_at == at(0, 17)


def test_a_reply_exactly_at_the_due_instant_is_on_time() -> None:
    story = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH).agent_reply(at(0, 10))
    fr = clock(story, FR, at(0, 12))
    assert fr.due == at(0, 10)
    assert fr.breached_at is None
    assert fr.checks() == (SlaCheck(FR, 0, 0.75, at(0, 9, 45)),)  # the warning, not the breach


def test_an_agent_opening_with_a_public_message_responds_at_once() -> None:
    story = Story(at(0, 9), opener=AGENT, body=True)
    fr = clock(story, FR, at(0, 12))
    assert fr.achieved_at == at(0, 9)
    assert fr.elapsed == timedelta(0)
    assert clock(story, PU, at(0, 12)).started_at == at(0, 9)


def test_an_agent_opening_without_a_message_has_not_responded() -> None:
    story = Story(at(0, 9), opener=AGENT, body=False)
    fr = clock(story, FR, at(0, 12))
    assert fr.achieved_at is None
    assert fr.state == "running"


def test_solved_pauses_first_response_and_a_reopen_resumes_it() -> None:
    story = Story(at(0, 9)).status("solved", at(0, 10))
    fr = clock(story, FR, at(1, 12))
    assert fr.paused
    assert fr.state == "paused"
    assert fr.elapsed == H
    assert fr.due is None
    story.contact_reply(at(1, 9))  # reopens
    assert story.ticket.category is StatusCategory.OPEN
    fr = clock(story, FR, at(1, 10))
    assert fr.running
    assert fr.elapsed == 2 * H
    assert fr.due == at(1, 12)


# ---------------------------------------------------------------- next response


def test_next_response_cycles_start_with_contact_messages_after_an_agent_reply() -> None:
    story = Story(at(0, 9))
    story.contact_reply(at(0, 9, 15))  # before any agent reply: first response covers it
    status = compute_sla(story.events, POLICY, at(0, 9, 20))
    assert status.current(NR) is None
    story.agent_reply(at(0, 9, 30))
    story.contact_reply(at(0, 10))  # starts cycle 0
    story.contact_reply(at(0, 10, 30))  # cycle 0 is still open: no new cycle
    story.agent_reply(at(0, 11))  # achieves cycle 0
    story.contact_reply(at(0, 13))  # starts cycle 1
    status = compute_sla(story.events, POLICY, at(0, 14))
    cycles = status.cycles(NR)
    assert [c.cycle for c in cycles] == [0, 1]
    assert cycles[0].started_at == at(0, 10)
    assert cycles[0].achieved_at == at(0, 11)
    assert cycles[0].elapsed == H
    assert cycles[1].started_at == at(0, 13)
    assert cycles[1].state == "running"
    assert cycles[1].elapsed == H
    assert cycles[1].due == at(0, 15)
    assert status.current(NR) == cycles[1]


def test_messages_merged_in_do_not_start_next_response_cycles() -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 9, 30)).merge_in(at(0, 10))
    assert compute_sla(story.events, POLICY, at(0, 11)).current(NR) is None


def test_next_response_pauses_while_pending() -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 9, 30)).contact_reply(at(0, 10))
    story.status("pending", at(0, 11))
    nr = clock(story, NR, at(0, 16))
    assert nr.paused
    assert nr.elapsed == H
    assert nr.due is None


# ---------------------------------------------------------------- periodic update


def test_periodic_update_measures_the_gap_between_public_agent_replies() -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 9, 30))
    story.note(at(0, 11))  # notes do not count as an update
    story.agent_reply(at(0, 12, 30))
    status = compute_sla(story.events, POLICY, at(0, 17))
    first, second = status.cycles(PU)
    assert first.achieved_at == at(0, 12, 30)
    assert first.elapsed == 3 * H
    assert second.started_at == at(0, 12, 30)
    assert second.due == at(0, 16, 30)
    assert second.breached_at == at(0, 16, 30)
    assert second.state == "breached"


# ---------------------------------------------------------------- resolution


def test_a_reopen_resumes_the_resolution_clock_without_counting_solved_time() -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 10)).status("solved", at(0, 13))
    res = clock(story, RES, at(1, 8))
    assert res.state == "achieved"
    assert res.achieved_at == at(0, 13)
    assert res.elapsed == 4 * H
    story.contact_reply(at(1, 9))  # reopens the solved ticket
    res = clock(story, RES, at(1, 12))
    assert res.achieved_at is None
    assert res.state == "running"
    assert res.cycle == 0
    assert res.started_at == at(0, 9)
    assert res.elapsed == 7 * H
    assert res.due == at(1, 13)


def test_closing_a_solved_ticket_keeps_resolution_achieved() -> None:
    story = Story(at(0, 9)).status("solved", at(0, 12)).status("closed", at(1, 12))
    res = clock(story, RES, at(2, 9))
    assert res.state == "achieved"
    assert res.achieved_at == at(0, 12)
    assert res.stopped_at is None


@pytest.mark.parametrize("how", ["closed", "merged"])
def test_closing_or_merging_stops_every_open_clock(how: str) -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 10)).contact_reply(at(0, 11))
    if how == "closed":
        story.status("closed", at(0, 12))
    else:
        story.merge_into(at(0, 12))
    status = compute_sla(story.events, POLICY, at(3, 12))
    assert status.current(FR).state == "achieved"  # type: ignore[union-attr]
    for metric in (NR, PU, RES):
        stopped = status.current(metric)
        assert stopped is not None
        assert stopped.state == "stopped"
        assert stopped.stopped_at == at(0, 12)
        assert stopped.due is None
        assert not stopped.running
        assert not stopped.paused
    assert status.current(RES).elapsed == 3 * H  # type: ignore[union-attr]
    assert status.next_deadline is None
    assert status.checks() == ()


def test_a_breached_clock_that_is_closed_keeps_its_breach() -> None:
    story = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH).status("closed", at(0, 15))
    res = clock(story, RES, at(1, 9))
    assert res.state == "stopped"
    assert res.breached_at == at(0, 13)


# ---------------------------------------------------------------- pauses in business time


def test_a_pause_outside_business_hours_changes_nothing() -> None:
    plain = Story(at(4, 15), impact=Impact.HIGH, urgency=Urgency.HIGH)
    paused = Story(at(4, 15), impact=Impact.HIGH, urgency=Urgency.HIGH)
    paused.status("pending", at(4, 17)).status("open", at(7, 9))  # over the weekend
    for story in (plain, paused):
        res = clock(story, RES, at(7, 9))
        assert res.due == at(7, 11)  # 2 h on Friday, 2 h on Monday
        assert res.elapsed == 2 * H


def test_a_clock_does_not_move_while_paused() -> None:
    story = Story(at(0, 9)).status("pending", at(0, 11))
    first = clock(story, RES, at(0, 11))
    later = clock(story, RES, at(2, 16))
    assert first.elapsed == later.elapsed == 2 * H
    assert later.paused
    assert later.due is None
    assert later.warnings[0].at is None


def test_a_pause_after_the_target_was_reached_keeps_the_past_due_date() -> None:
    story = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH).status("pending", at(0, 15))
    res = clock(story, RES, at(1, 9))
    assert res.paused
    assert res.due == at(0, 13)
    assert res.state == "breached"
    assert res.warnings[0].at == at(0, 12)


def test_custom_pause_categories() -> None:
    policy = SlaPolicy(
        "hold-counts", OFFICE, POLICY.targets, pause_categories={StatusCategory.PENDING}
    )
    story = Story(at(0, 9)).status("on_hold", at(0, 10))
    assert clock(story, RES, at(0, 12), policy).elapsed == 3 * H
    assert clock(story, RES, at(0, 12)).elapsed == H


# ---------------------------------------------------------------- targets and policies


def test_a_priority_without_targets_is_not_measured() -> None:
    story = Story(at(0, 9), impact=Impact.LOW, urgency=Urgency.LOW)  # P5: no targets
    assert compute_sla(story.events, POLICY, at(0, 12)).clocks == ()
    low = Story(at(0, 9), impact=Impact.LOW, urgency=Urgency.MEDIUM)  # P4: no next response
    low.agent_reply(at(0, 10)).contact_reply(at(0, 11))
    status = compute_sla(low.events, POLICY, at(0, 12))
    assert status.current(NR) is None
    assert status.current(PU) is None
    assert status.current(FR) is not None


def test_an_ended_cycle_keeps_the_target_of_its_priority_at_the_end() -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 12))  # P3: first response 4 h, on time
    story.priority(at(0, 13), impact=Impact.HIGH, urgency=Urgency.HIGH)  # P1: 1 h
    fr = clock(story, FR, at(0, 14))
    assert fr.target == 4 * H
    assert fr.breached_at is None
    assert clock(story, RES, at(0, 14)).target == 4 * H  # the open cycle takes the new one


def test_warnings_are_computed_at_their_fractions() -> None:
    policy = SlaPolicy("w", OFFICE, POLICY.targets, warn_at=(0.75, 0.5))
    assert policy.warn_at == (0.5, 0.75)
    story = Story(at(0, 9))
    res = clock(story, RES, at(0, 9), policy)
    assert [(w.fraction, w.at) for w in res.warnings] == [(0.5, at(0, 13)), (0.75, at(0, 15))]


# ---------------------------------------------------------------- status, checks, next check


def test_next_deadline_and_checks() -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 10)).contact_reply(at(0, 11))
    status = compute_sla(story.events, POLICY, at(0, 11))
    # next response (2 h from 11:00) is the earliest open deadline
    assert status.next_deadline == at(0, 13)
    checks = status.checks()
    assert checks == tuple(sorted(checks, key=lambda c: c.at))
    assert SlaCheck(NR, 0, 0.75, at(0, 12, 30)) in checks
    assert SlaCheck(NR, 0, BREACH, at(0, 13)) in checks
    assert SlaCheck(RES, 0, BREACH, at(0, 17)) in checks
    assert not any(c.metric is FR for c in checks)  # achieved before any threshold
    assert status.next_check() == at(0, 12, 30)
    fired = {("next_response", 0, 0.75)}
    assert status.next_check(fired) == at(0, 13)
    assert all(c.key not in fired for c in status.pending_checks(fired))


def test_past_unrecorded_checks_are_pending_and_recorded_ones_are_not() -> None:
    story = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH)
    status = compute_sla(story.events, POLICY, at(0, 16))
    assert status.breached
    assert status.next_deadline == at(0, 10)  # first response, already breached
    assert status.next_check() == at(0, 9, 45)
    sweep = Actor.system("sweep")
    recorded = [
        *story.events,
        SlaWarned(
            ticket_id="t1",
            seq=len(story.events) + 1,
            at=at(0, 16),
            actor=sweep,
            policy="standard",
            metric="first_response",
            cycle=0,
            threshold=0.75,
            crossed_at=at(0, 9, 45),
            due=at(0, 10),
        ),
        SlaBreached(
            ticket_id="t1",
            seq=len(story.events) + 2,
            at=at(0, 16),
            actor=sweep,
            policy="standard",
            metric="first_response",
            cycle=0,
            due=at(0, 10),
        ),
    ]
    fired = fired_checks(recorded)
    assert fired == {("first_response", 0, 0.75), ("first_response", 0, 1.0)}
    assert fired_checks(recorded, policy="other") == frozenset()
    # recording the checks changes no clock
    again = compute_sla(recorded, POLICY, at(0, 16))
    assert again == status
    assert again.next_check(fired) == at(0, 12)  # resolution's 75 % warning


def test_a_recorded_breach_stays_fired_after_a_priority_drop() -> None:
    story = Story(at(0, 9), impact=Impact.HIGH, urgency=Urgency.HIGH)
    fired = {("resolution", 0, 1.0), ("resolution", 0, 0.75)}
    story.priority(at(0, 14), impact=Impact.MEDIUM, urgency=Urgency.MEDIUM)  # 8 h now
    status = compute_sla(story.events, POLICY, at(0, 14))
    res = status.current(RES)
    assert res is not None
    assert res.due == at(0, 17)
    assert res.breached_at is None
    assert all(c.metric is not RES for c in status.pending_checks(fired))


# ---------------------------------------------------------------- input checks


def test_naive_now_is_refused() -> None:
    story = Story(at(0, 9))
    with pytest.raises(NaiveDatetimeError):
        compute_sla(story.events, POLICY, datetime(2026, 3, 2, 12))


def test_events_must_start_with_the_opening() -> None:
    story = Story(at(0, 9)).agent_reply(at(0, 10))
    with pytest.raises(ValidationError, match="opening event first"):
        compute_sla(story.events[1:], POLICY, at(0, 12))
    with pytest.raises(ValidationError):
        compute_sla([], POLICY, at(0, 12))
    other = Story(at(0, 9), ticket_id="t2")
    with pytest.raises(ValidationError, match="among those of"):
        compute_sla([*story.events, *other.events[1:]], POLICY, at(0, 12))


def test_results_are_in_utc_whatever_zone_now_is_in() -> None:
    from zoneinfo import ZoneInfo

    story = Story(at(0, 9))
    paris_now = at(0, 12).astimezone(ZoneInfo("Europe/Paris"))
    status = compute_sla(story.events, POLICY, paris_now)
    assert status.now == at(0, 12)
    assert status.now.utcoffset() == timedelta(0)
    res = status.current(RES)
    assert res is not None
    assert res.due is not None
    assert res.due.utcoffset() == timedelta(0)
    assert status == compute_sla(story.events, POLICY, at(0, 12))


# ---------------------------------------------------------------- properties

US = timedelta(microseconds=1)
PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
calendars = business_calendars(
    timezones=["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"],
    max_periods=5,
    min_date=date(2025, 12, 1),
    max_date=date(2027, 6, 30),
    max_holidays=8,
    max_exceptions=4,
)
any_calendars = business_calendars(max_periods=4)
targets = business_durations(
    min_value=timedelta(minutes=1), max_value=timedelta(days=4), whole_minutes=True
) | business_durations(min_value=US, max_value=timedelta(hours=30))
COMMANDS = (
    "agent_reply",
    "agent_reply_pending",
    "agent_reply_solved",
    "contact_reply",
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
)
steps = st.lists(
    st.tuples(st.integers(0, 3 * 24 * 60), st.sampled_from(COMMANDS)), min_size=0, max_size=14
)
starts = st.integers(0, 300 * 24 * 60).map(
    lambda m: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m)
)


def policy_of(
    calendar: BusinessCalendar, target: timedelta, warn_at: tuple[float, ...] = (0.5, 0.75)
) -> SlaPolicy:
    every = Targets(
        first_response=target, next_response=target, periodic_update=target, resolution=target
    )
    return SlaPolicy("p", calendar, dict.fromkeys(Priority, every), warn_at=warn_at)


def run(story: Story, command: str, when: datetime) -> None:
    try:
        if command.startswith("agent_reply"):
            status = {"agent_reply": None, "agent_reply_pending": "pending"}.get(command, "solved")
            story.agent_reply(when, status=status)
        elif command == "contact_reply":
            story.contact_reply(when)
        elif command == "note":
            story.note(when)
        elif command == "raise":
            story.priority(when, impact=Impact.HIGH, urgency=Urgency.HIGH)
        elif command == "lower":
            story.priority(when, impact=Impact.LOW, urgency=Urgency.MEDIUM)
        elif command == "merge_in":
            story.merge_in(when)
        else:
            story.status(command, when)
    except HelpkitError:
        pass  # refused in this state, as a real desk would


def build(
    start: datetime,
    script: list[tuple[int, str]],
    pause: tuple[int, int, int] | None = None,
) -> Story:
    """Run ``script``; with ``pause = (step, a, b)`` put the ticket on pending from a% to b%
    of the gap before that step (when it is counting then), and back to open."""
    story = Story(start)
    now = start
    for index, (delay, command) in enumerate(script):
        if (
            pause is not None
            and pause[0] == index
            and story.ticket.category
            in (
                StatusCategory.NEW,
                StatusCategory.OPEN,
            )
        ):
            lo, hi = sorted(pause[1:])
            story.status("pending", now + timedelta(minutes=delay * lo // 100))
            story.status("open", now + timedelta(minutes=delay * hi // 100))
        now += timedelta(minutes=delay)
        run(story, command, now)
    return story


def last_time(events: list[Event]) -> datetime:
    return max(e.at for e in events)


@PROPERTY_SETTINGS
@given(
    start=starts,
    script=steps,
    pause=st.tuples(st.integers(0, 13), st.integers(0, 100), st.integers(0, 100)),
    calendar=calendars,
    target=targets,
    extra=st.integers(0, 10 * 24 * 60),
)
def test_pausing_never_makes_a_due_date_earlier(
    start: datetime,
    script: list[tuple[int, str]],
    pause: tuple[int, int, int],
    calendar: BusinessCalendar,
    target: timedelta,
    extra: int,
) -> None:
    plain = build(start, script)
    paused = build(start, script, pause)
    now = last_time(paused.events) + timedelta(minutes=extra)
    policy = policy_of(calendar, target)
    before = {(c.metric, c.cycle): c for c in compute_sla(plain.events, policy, now).clocks}
    after = {(c.metric, c.cycle): c for c in compute_sla(paused.events, policy, now).clocks}
    assert before.keys() == after.keys()
    for key, old in before.items():
        new = after[key]
        assert new.elapsed <= old.elapsed
        if old.due is None:
            assert new.due is None
        elif new.due is not None:
            assert new.due >= old.due
        if old.breached_at is None:
            assert new.breached_at is None


@PROPERTY_SETTINGS
@given(
    history=ticket_histories(max_commands=12),
    calendar=any_calendars,
    first=targets,
    second=targets,
    offset=st.integers(0, 60 * 24 * 60),
)
def test_due_dates_are_monotone_in_the_target(
    history: list[Event],
    calendar: BusinessCalendar,
    first: timedelta,
    second: timedelta,
    offset: int,
) -> None:
    small, large = sorted((first, second))
    now = history[0].at + timedelta(minutes=offset)
    low = compute_sla(history, policy_of(calendar, small), now)
    high = compute_sla(history, policy_of(calendar, large), now)
    assert [(c.metric, c.cycle) for c in low.clocks] == [(c.metric, c.cycle) for c in high.clocks]
    for a, b in zip(low.clocks, high.clocks, strict=True):
        assert a.elapsed == b.elapsed
        if a.due is None:
            assert b.due is None
        elif b.due is not None:
            assert a.due <= b.due
        if b.breached_at is not None:
            assert a.breached_at is not None


@PROPERTY_SETTINGS
@given(
    history=ticket_histories(max_commands=15),
    calendar=any_calendars,
    target=targets,
    offset=st.integers(0, 90 * 24 * 60),
    pause=st.sets(st.sampled_from([StatusCategory.PENDING, StatusCategory.ON_HOLD])),
)
def test_the_clock_agrees_with_the_reference_model(
    history: list[Event],
    calendar: BusinessCalendar,
    target: timedelta,
    offset: int,
    pause: set[StatusCategory],
) -> None:
    """elapsed + remaining == target; due is where calendar.elapsed over the running
    intervals reaches the target, and the earliest such instant; warnings come before the
    breach, in threshold order; breaches follow the rule."""
    now = history[0].at + timedelta(minutes=offset)
    every = Targets(
        first_response=target, next_response=target, periodic_update=target, resolution=target
    )
    policy = SlaPolicy("p", calendar, dict.fromkeys(Priority, every), pause_categories=pause)
    status = compute_sla(history, policy, now)
    model = reference(history, frozenset(pause))
    by_key = {(c.metric, c.index): c for c in model.cycles}
    assert {(c.metric.value, c.cycle) for c in status.clocks} == set(by_key)
    for clock in status.clocks:
        ref = by_key[(clock.metric.value, clock.cycle)]
        assert clock.started_at == ref.start
        assert clock.ended_at == ref.end
        assert (clock.achieved_at is not None) == (ref.end is not None and ref.achieved)
        assert clock.target == target
        cap = now if ref.end is None else min(now, ref.end)
        assert clock.elapsed == model.counted(calendar, ref, max(cap, ref.start))
        assert clock.elapsed + clock.remaining == clock.target
        open_ended = (
            model.running_intervals(ref)[-1:] and model.running_intervals(ref)[-1][1] is None
        )
        assert clock.running == bool(ref.end is None and open_ended)
        assert clock.paused == (ref.end is None and not open_ended)
        for threshold in (*clock.warnings, Threshold(1.0, clock.due)):
            goal = target * threshold.fraction
            if threshold.at is None:
                horizon = ref.end if ref.end is not None else last_time(history)
                assert not open_ended or ref.end is not None
                assert model.counted(calendar, ref, horizon) < goal
            else:
                assert model.counted(calendar, ref, threshold.at) == goal
                assert model.counted(calendar, ref, threshold.at - US) < goal
        reached = [w.at for w in clock.warnings if w.at is not None]
        assert reached == sorted(reached)
        assert [w.fraction for w in clock.warnings] == sorted(policy.warn_at)
        if clock.due is not None:
            assert len(reached) == len(clock.warnings)
            assert all(t <= clock.due for t in reached)
        breached = (
            clock.due is not None and clock.due <= now and (ref.end is None or clock.due < ref.end)
        )
        assert clock.breached_at == (clock.due if breached else None)
        for check in clock.checks():
            assert ref.end is None or check.at < ref.end


@PROPERTY_SETTINGS
@given(
    history=ticket_histories(max_commands=12),
    calendar=any_calendars,
    target=targets,
    offset=st.integers(0, 60 * 24 * 60),
)
def test_the_clock_is_a_pure_function_and_recording_checks_changes_nothing(
    history: list[Event], calendar: BusinessCalendar, target: timedelta, offset: int
) -> None:
    now = max(last_time(history), history[0].at + timedelta(minutes=offset))
    policy = policy_of(calendar, target)
    status = compute_sla(history, policy, now)
    assert compute_sla(tuple(history), policy, now) == status
    assert compute_sla(list(history), policy_of(calendar, target), now) == status
    # The sweep's own events (warnings, breaches) never move a clock.
    recorded = list(history)
    sweep = Actor.system("sweep")
    for check in status.pending_checks():
        if check.at > now:
            break
        common: dict[str, Any] = {
            "ticket_id": history[0].ticket_id,
            "seq": len(recorded) + 1,
            "at": now,
            "actor": sweep,
            "policy": policy.name,
            "metric": check.metric.value,
            "cycle": check.cycle,
        }
        clock = next(c for c in status.clocks if (c.metric, c.cycle) == (check.metric, check.cycle))
        # A warning crossed before a pause leaves a clock without a due date.
        due = clock.due if clock.due is not None else check.at
        if check.fraction == BREACH:
            recorded.append(SlaBreached(**common, due=check.at))
        else:
            recorded.append(
                SlaWarned(**common, threshold=check.fraction, crossed_at=check.at, due=due)
            )
    again = compute_sla(recorded, policy, now)
    assert again == status
    fired = fired_checks(recorded)
    pending = again.pending_checks(fired)
    assert all(check.at > now for check in pending)
    next_check = again.next_check(fired)
    assert next_check == (pending[0].at if pending else None)


@PROPERTY_SETTINGS
@given(
    start=starts,
    script=steps,
    calendar=calendars,
    target=targets,
    wait=st.sampled_from(["pending", "on_hold", "solved"]),
    later=st.lists(st.integers(0, 30 * 24 * 60), min_size=2, max_size=2),
)
def test_a_clock_never_counts_while_paused(
    start: datetime,
    script: list[tuple[int, str]],
    calendar: BusinessCalendar,
    target: timedelta,
    wait: str,
    later: list[int],
) -> None:
    story = build(start, script)
    end = last_time(story.events) + timedelta(minutes=1)
    run(story, wait, end)
    assume(story.ticket.category is not StatusCategory.OPEN)
    assume(story.ticket.category is not StatusCategory.NEW)
    policy = policy_of(calendar, target)
    first = compute_sla(story.events, policy, end + timedelta(minutes=min(later)))
    second = compute_sla(story.events, policy, end + timedelta(minutes=max(later)))
    for a, b in zip(first.clocks, second.clocks, strict=True):
        assert not a.running
        assert a.elapsed == b.elapsed
        assert a.due == b.due
        assert a.warnings == b.warnings


def test_a_calendar_without_open_time_is_never_due() -> None:
    closed = BusinessCalendar("UTC", {})
    policy = SlaPolicy("closed", closed, {Priority.P3: Targets(resolution=timedelta(hours=8))})
    story = Story(at(0, 9))
    status = compute_sla(story.events, policy, at(3, 9))
    resolution = status.current("resolution")
    assert resolution is not None
    assert (resolution.state, resolution.due, resolution.breached_at) == ("never_due", None, None)
    assert resolution.elapsed == timedelta(0) and resolution.running
    assert status.next_deadline is None and status.next_check() is None
    story.status("pending", at(3, 10))
    paused = compute_sla(story.events, policy, at(3, 11)).current("resolution")
    assert paused is not None and paused.state == "paused"
