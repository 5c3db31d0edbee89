"""The public Hypothesis strategies respect their bounds and refuse bad arguments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis.errors import InvalidArgument

from helpkit.calendar import BusinessCalendar
from helpkit.testing.strategies import aware_datetimes, business_calendars, business_durations

LOW = datetime(2026, 3, 1, tzinfo=UTC)
HIGH = datetime(2026, 4, 1, tzinfo=UTC)


@settings(max_examples=60)
@given(aware_datetimes(min_value=LOW, max_value=HIGH, timezones=["Europe/Paris", "UTC"]))
def test_aware_datetimes_stay_in_bounds(t: datetime) -> None:
    assert t.tzinfo is not None
    assert LOW <= t <= HIGH
    assert str(t.tzinfo) in ("Europe/Paris", "UTC")


def test_aware_datetimes_favour_offset_changes() -> None:
    near = 0

    @settings(max_examples=80, database=None)
    @given(aware_datetimes(min_value=LOW, max_value=HIGH, timezones=["Europe/Paris"]))
    def probe(t: datetime) -> None:
        nonlocal near
        change = datetime(2026, 3, 29, 1, tzinfo=UTC)  # Paris springs forward
        near += abs(t - change) <= timedelta(days=2)

    probe()
    assert near >= 10  # a uniform draw would land within two days of it about 1 in 8 times


@settings(max_examples=60)
@given(
    business_durations(
        min_value=timedelta(hours=1), max_value=timedelta(hours=3), allow_negative=True
    )
)
def test_business_durations_stay_in_bounds(d: timedelta) -> None:
    assert timedelta(hours=1) <= abs(d) <= timedelta(hours=3)


@settings(max_examples=30)
@given(business_durations(max_value=timedelta(days=2), whole_minutes=True))
def test_whole_minute_durations(d: timedelta) -> None:
    assert d >= timedelta(0)
    assert d % timedelta(minutes=1) == timedelta(0)


@settings(max_examples=40, deadline=None)
@given(
    business_calendars(
        timezones=["Asia/Kathmandu"],
        min_periods=2,
        max_periods=3,
        allow_overnight=False,
        allow_holidays=False,
        allow_exceptions=False,
    )
)
def test_business_calendars_follow_their_options(cal: BusinessCalendar) -> None:
    periods = [p for day in cal.weekly for p in day]
    assert cal.timezone == "Asia/Kathmandu"
    assert 1 <= len(periods) <= 3  # duplicates collapse
    assert all(end > start for start, end in periods)
    assert not cal.holidays
    assert not cal.exceptions


@settings(max_examples=40, deadline=None)
@given(business_calendars(min_date=date(2026, 1, 1), max_date=date(2026, 1, 31)))
def test_holidays_and_exceptions_fall_in_the_date_range(cal: BusinessCalendar) -> None:
    dates = set(cal.holidays) | {d for d, _ in cal.exceptions}
    assert all(date(2026, 1, 1) <= d <= date(2026, 1, 31) for d in dates)


@pytest.mark.parametrize(
    "make",
    [
        lambda: business_calendars(min_periods=3, max_periods=2),
        lambda: business_calendars(min_date=date(2027, 1, 1), max_date=date(2026, 1, 1)),
        lambda: business_calendars(timezones=[]),
        lambda: aware_datetimes(min_value=datetime(2026, 1, 1)),
        lambda: aware_datetimes(min_value=HIGH, max_value=LOW),
        lambda: business_durations(min_value=timedelta(-1)),
        lambda: business_durations(min_value=timedelta(2), max_value=timedelta(1)),
    ],
)
def test_bad_arguments_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidArgument):
        make()  # refused when the strategy is built, not when it is drawn from
