"""The cost of add/elapsed does not grow with the span (counted in calls, not seconds)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import pytest

from helpkit.calendar import BusinessCalendar

FRENCH_RULES = [
    "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1",
    "FREQ=YEARLY;BYEASTER=1",
    "FREQ=YEARLY;BYMONTH=5;BYMONTHDAY=1",
    "FREQ=YEARLY;BYMONTH=5;BYMONTHDAY=8",
    "FREQ=YEARLY;BYEASTER=39",
    "FREQ=YEARLY;BYEASTER=50",
    "FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=14",
    "FREQ=YEARLY;BYMONTH=8;BYMONTHDAY=15",
    "FREQ=YEARLY;BYMONTH=11;BYMONTHDAY=1",
    "FREQ=YEARLY;BYMONTH=11;BYMONTHDAY=11",
    "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
]


def _calls(fn: Callable[[], object]) -> int:
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize(
    "cal",
    [
        BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC"),
        BusinessCalendar.parse(
            "mon-fri 09:00-12:00,13:00-17:00", timezone="Europe/Paris", holiday_rules=FRENCH_RULES
        ),
        BusinessCalendar.parse("mon-sun 22:00-06:00", timezone="Australia/Lord_Howe"),
    ],
    ids=["utc", "paris-holidays", "lord-howe-nights"],
)
def test_ten_years_cost_what_a_day_costs(cal: BusinessCalendar) -> None:
    start = datetime(2026, 3, 27, 10, 17, tzinfo=UTC)
    day_end, decade_end = start + timedelta(days=1), start + timedelta(days=3653)
    long_add = cal.elapsed(start, decade_end)
    cal.add(start, long_add)  # the first call over a new range fills the caches once
    short = _calls(lambda: cal.elapsed(start, day_end))
    long = _calls(lambda: cal.elapsed(start, decade_end))
    assert long <= 1.5 * short
    short = _calls(lambda: cal.add(start, timedelta(hours=8)))
    long = _calls(lambda: cal.add(start, long_add))
    assert long <= 1.5 * short
