"""A brute-force business calendar, written literally from the contract in docs/design.md
(section "Business calendar").

It enumerates every date in a range, takes that date's periods (exception, else nothing on a
holiday, else the weekday's), turns each boundary into an instant with ``fold=0``, drops empty
periods, merges the rest, and measures or walks the union. Slow and obviously right; the real
implementation is checked against it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from helpkit.calendar import BusinessCalendar, Period

Interval = tuple[datetime, datetime]


@lru_cache(maxsize=256)
def _rrule(text: str) -> Any:
    # the contract's reading: a rule without DTSTART starts on 1900-01-01
    return rrulestr(text, dtstart=datetime(1900, 1, 1), forceset=True, ignoretz=True, cache=True)


def _rule_dates(cal: BusinessCalendar, first: date, last: date) -> set[date]:
    found: set[date] = set()
    for rule in cal.holiday_rules:
        after = datetime.combine(first - timedelta(days=rule.days), time.min)
        for occurrence in _rrule(rule.rule).between(
            after, datetime.combine(last, time.max), inc=True
        ):
            for k in range(rule.days):
                found.add(occurrence.date() + timedelta(days=k))
    return found


def periods_on(cal: BusinessCalendar, day: date, rule_days: set[date]) -> tuple[Period, ...]:
    exceptions = dict(cal.exceptions)
    if day in exceptions:
        return exceptions[day]
    if day in cal.holidays or day in rule_days:
        return ()
    return cal.weekly[day.weekday()]


def open_set(cal: BusinessCalendar, first: date, last: date) -> list[Interval]:
    """The merged open intervals (UTC) of the periods starting on dates ``first..last``."""
    tz = ZoneInfo(cal.timezone)
    rule_days = _rule_dates(cal, first, last)
    raw: list[Interval] = []
    day = first
    while day <= last:
        for start, end in periods_on(cal, day, rule_days):
            end_day = day if end > start else day + timedelta(days=1)
            a = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)  # fold=0
            b = datetime.combine(end_day, end, tzinfo=tz).astimezone(UTC)
            if b > a:
                raw.append((a, b))
        day += timedelta(days=1)
    raw.sort()
    merged: list[Interval] = []
    for a, b in raw:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _dates_around(cal: BusinessCalendar, a: datetime, b: datetime, pad: int) -> tuple[date, date]:
    tz = ZoneInfo(cal.timezone)
    lo, hi = min(a, b).astimezone(tz).date(), max(a, b).astimezone(tz).date()
    return lo - timedelta(days=pad), hi + timedelta(days=pad)


def elapsed(cal: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    # in UTC: arithmetic between datetimes of one zone is wall-clock arithmetic
    a, b = a.astimezone(UTC), b.astimezone(UTC)
    lo, hi = min(a, b), max(a, b)
    total = timedelta(0)
    for s, e in open_set(cal, *_dates_around(cal, lo, hi, 3)):
        overlap = min(e, hi) - max(s, lo)
        if overlap > timedelta(0):
            total += overlap
    return total if a <= b else -total


def is_open(cal: BusinessCalendar, t: datetime) -> bool:
    t = t.astimezone(UTC)
    return any(s <= t < e for s, e in open_set(cal, *_dates_around(cal, t, t, 3)))


def _trusted(cal: BusinessCalendar, first: date, last: date) -> list[Interval]:
    """open_set clipped to where no period of a date outside ``first..last`` can reach.

    Periods of later dates start at or after their midnight, i.e. at most 14 hours (the
    largest UTC offset) before that midnight read as UTC; periods of earlier dates end by the
    midnight after ``first``, at most 12 hours (the most negative offset) after it in UTC.
    """
    low = datetime.combine(first + timedelta(days=1), time(), tzinfo=UTC) + timedelta(hours=13)
    high = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC) - timedelta(hours=15)
    return [
        (max(s, low), min(e, high)) for s, e in open_set(cal, first, last) if s < high and e > low
    ]


def add(
    cal: BusinessCalendar, a: datetime, d: timedelta, horizon_days: int = 800
) -> datetime | None:
    """The contract's add, looking at most ``horizon_days`` away; None if not found there."""
    a = a.astimezone(UTC)
    if d == timedelta(0):
        return a
    pad = 4
    while pad <= horizon_days:
        first, last = _dates_around(cal, a, a, 3)
        left = abs(d)
        if d > timedelta(0):
            for s, e in _trusted(cal, first, last + timedelta(days=pad)):
                if e <= a:
                    continue
                s = max(s, a)
                if e - s >= left:
                    return s + left
                left -= e - s
        else:
            for s, e in reversed(_trusted(cal, first - timedelta(days=pad), last)):
                if s >= a:
                    continue
                e = min(e, a)
                if e - s >= left:
                    return e - left
                left -= e - s
        pad *= 3
    return None


def next_open(cal: BusinessCalendar, t: datetime, horizon_days: int = 800) -> datetime | None:
    t = t.astimezone(UTC)
    pad = 4
    while pad <= horizon_days:
        first, last = _dates_around(cal, t, t, 3)
        for s, e in _trusted(cal, first, last + timedelta(days=pad)):
            if e > t:
                return max(s, t)
        pad *= 3
    return None
