"""Algebraic properties of add/elapsed/is_open/next_open, across zones with awkward rules."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import calendar_reference as ref
from helpkit.calendar import BusinessCalendar
from helpkit.testing.calendar_strategies import (
    AWKWARD_ZONES,
    aware_datetimes,
    business_calendars,
    business_durations,
)

US = timedelta(microseconds=1)
LOW = datetime(2009, 1, 1, tzinfo=UTC)
HIGH = datetime(2031, 1, 1, tzinfo=UTC)

calendars = business_calendars(
    min_date=date(2009, 1, 1), max_date=date(2031, 1, 1), allow_holiday_rules=True
)
instants = aware_datetimes(min_value=LOW, max_value=HIGH)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _u(t: datetime) -> datetime:
    return t.astimezone(UTC)


def _weekly(cal: BusinessCalendar) -> timedelta:
    return cal.elapsed(datetime(2000, 1, 3, tzinfo=UTC), datetime(2000, 1, 10, tzinfo=UTC))


@st.composite
def durations(draw: st.DrawFn, cal: BusinessCalendar, *, allow_negative: bool = True) -> timedelta:
    # up to a few hundred regular weeks of open time: years of calendar, yet fast to check
    cap = min(_weekly(cal) * 300, timedelta(days=400))
    assume(cap > timedelta(0))
    return draw(business_durations(max_value=cap, allow_negative=allow_negative))


@SETTINGS
@given(calendars, instants, st.data())
def test_add_then_elapsed_gives_the_duration_back(
    cal: BusinessCalendar, a: datetime, data: st.DataObject
) -> None:
    d = data.draw(durations(cal))
    t = cal.add(a, d)
    assert cal.elapsed(a, t) == d
    assert (t >= a) if d >= timedelta(0) else (t <= a)


@SETTINGS
@given(calendars, instants, st.data())
def test_add_returns_the_earliest_instant(
    cal: BusinessCalendar, a: datetime, data: st.DataObject
) -> None:
    d = data.draw(durations(cal))
    assume(d != timedelta(0))
    t = _u(cal.add(a, d))  # one real microsecond, not one of the calendar zone's wall clock
    if d > timedelta(0):  # open time runs right up to t: nothing earlier would do
        assert cal.elapsed(t - US, t) == US
    else:
        assert cal.elapsed(t, t + US) == US


@SETTINGS
@given(calendars, instants, instants, st.data())
def test_add_is_monotone(
    cal: BusinessCalendar, a1: datetime, a2: datetime, data: st.DataObject
) -> None:
    d1, d2 = sorted([data.draw(durations(cal)), data.draw(durations(cal))])
    assert _u(cal.add(a1, d1)) <= _u(cal.add(a1, d2))
    a1, a2 = sorted([a1, a2], key=_u)
    assert _u(cal.add(a1, d1)) <= _u(cal.add(a2, d1))


@SETTINGS
@given(calendars, instants, st.data())
def test_add_is_additive_for_durations_of_one_sign(
    cal: BusinessCalendar, a: datetime, data: st.DataObject
) -> None:
    negative = data.draw(st.booleans())
    d1 = data.draw(durations(cal, allow_negative=False))
    d2 = data.draw(durations(cal, allow_negative=False))
    if negative:
        d1, d2 = -d1, -d2
    assert _u(cal.add(cal.add(a, d1), d2)) == _u(cal.add(a, d1 + d2))


PARIS = ZoneInfo("Europe/Paris")
# 02:30 twice on 2026-10-25: an hour apart in real time, zero apart by wall-clock subtraction
FIRST_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).astimezone(PARIS)
SECOND_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC).astimezone(PARIS)


@SETTINGS
@example(BusinessCalendar.always("Europe/Paris"), FIRST_0230, SECOND_0230, SECOND_0230)
@given(calendars, instants, instants, instants)
def test_elapsed_is_antisymmetric_and_additive(
    cal: BusinessCalendar, a: datetime, b: datetime, c: datetime
) -> None:
    ab, bc = cal.elapsed(a, b), cal.elapsed(b, c)
    assert cal.elapsed(b, a) == -ab
    assert ab + bc == cal.elapsed(a, c)
    assert abs(ab) <= abs(_u(b) - _u(a))  # real time: b - a in one zone is wall-clock time
    assert cal.elapsed(a, a) == timedelta(0)


@SETTINGS
@given(calendars, instants, instants)
def test_add_elapsed_lands_at_or_before_the_end(
    cal: BusinessCalendar, a: datetime, b: datetime
) -> None:
    a, b = sorted([a, b], key=_u)  # by instant: one zone's datetimes compare by wall clock
    t = cal.add(a, cal.elapsed(a, b))
    assert _u(t) <= _u(b)
    assert cal.elapsed(t, b) == timedelta(0)


@SETTINGS
@given(calendars, instants)
def test_is_open_and_next_open_agree_with_elapsed(cal: BusinessCalendar, t: datetime) -> None:
    nxt = _u(cal.next_open(t))  # so that +/- US are real microseconds
    assert cal.is_open(t) == (nxt == _u(t))
    assert cal.elapsed(t, nxt) == timedelta(0)
    assert cal.is_open(nxt)
    assert cal.elapsed(nxt, nxt + US) == US  # open right after next_open
    if nxt > t:
        assert not cal.is_open(nxt - US)


@SETTINGS
@given(st.sampled_from(AWKWARD_ZONES), instants, business_durations(allow_negative=True))
def test_always_open_is_real_time(zone: str, a: datetime, d: timedelta) -> None:
    cal = BusinessCalendar.always(zone)
    assert _u(cal.add(a, d)) == _u(a) + d
    # in UTC: aware + timedelta is wall-clock arithmetic in the value's own zone (and drops fold)
    assert cal.elapsed(a, _u(a) + d) == d
    assert cal.is_open(a)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    business_calendars(
        min_date=date(2014, 1, 1), max_date=date(2026, 1, 1), allow_holiday_rules=True
    ),
    aware_datetimes(min_value=datetime(2015, 1, 1, tzinfo=UTC), max_value=HIGH),
)
def test_ten_year_elapsed_matches_the_reference(cal: BusinessCalendar, a: datetime) -> None:
    b = a + timedelta(days=3653)
    assert cal.elapsed(a, b) == ref.elapsed(cal, a, b)


@settings(max_examples=40, deadline=None)
@given(calendars)
def test_text_dict_and_pickle_forms_round_trip(cal: BusinessCalendar) -> None:
    assert BusinessCalendar.from_dict(cal.to_dict()) == cal
    assert pickle.loads(pickle.dumps(cal)) == cal
    assert BusinessCalendar.parse(cal.hours, timezone=cal.timezone).weekly == cal.weekly
    assert hash(BusinessCalendar.from_dict(cal.to_dict())) == hash(cal)


def test_periods_are_normalised_so_equal_calendars_compare_equal() -> None:
    one = BusinessCalendar("UTC", {0: [(time(13), time(17)), (time(9), time(12))]})
    two = BusinessCalendar("UTC", {"mon": [(time(9), time(12)), (time(13), time(17))] * 2})
    assert one == two
    assert hash(one) == hash(two)
