"""What a business calendar is built from: reading, checking and writing its pieces.

A calendar is a time zone, weekly periods for each weekday, holiday dates, holiday rules and
per-date exceptions. This module turns what callers give (``ZoneInfo`` or IANA names, weekday
numbers or names, ``datetime.time`` pairs, the text form ``"mon-fri 09:00-17:00"``, ISO dates,
a TOML-style table) into the normalised values a :class:`~helpkit.calendar.BusinessCalendar`
keeps, refuses anything else with a :class:`~helpkit.errors.CalendarError` saying what is
wrong, and writes those values back as text and tables. It knows nothing of instants or of
the open-time arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, time
from typing import Any, Final, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpkit.errors import CalendarError
from helpkit.holidays import HolidayRule, Holidays, check_date

__all__ = [
    "ExceptionsSpec",
    "Period",
    "WeeklySpec",
    "exception_periods",
    "format_hours",
    "holidays_and_rules",
    "parse_hours",
    "table_arguments",
    "table_of",
    "weekly_periods",
    "zone_of",
]

Period: TypeAlias = tuple[time, time]
"""A working period: local wall-clock ``(start, end)``; ``end <= start`` ends the next day."""

WeeklySpec: TypeAlias = (
    Mapping[int, Iterable[Period] | str]
    | Mapping[str, Iterable[Period] | str]
    | Sequence[Iterable[Period]]
    | str
)
"""Weekly periods: weekday (0 = Monday, or ``"mon"``) to periods, seven lists, or text."""

ExceptionsSpec: TypeAlias = (
    Mapping[date, Iterable[Period] | str] | Iterable[tuple[date, Iterable[Period] | str]] | None
)
"""Per-date replacement periods: a date to its periods (an empty list closes the date)."""

_DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TABLE_KEYS: Final = frozenset(
    {"timezone", "hours", "weekly", "holidays", "holiday_rules", "exceptions"}
)


# --- validation and normalisation ------------------------------------------------------------


def zone_of(value: object) -> ZoneInfo:
    """The IANA zone a calendar is given as (a name, a keyed ``ZoneInfo``, or ``UTC``)."""
    if isinstance(value, ZoneInfo):
        if value.key is None:
            raise CalendarError(
                "a calendar needs a time zone with an IANA key, e.g. 'Europe/Paris'"
            )
        value = value.key
    elif value is UTC:
        value = "UTC"
    if not isinstance(value, str):
        raise CalendarError(
            f"timezone must be an IANA name such as 'Europe/Paris', got {type(value).__name__}"
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError(f"unknown time zone {value!r}; use an IANA name") from exc


def _weekday(key: object) -> int:
    if isinstance(key, str):
        name = key.strip().lower()
        if name in _DAY_NAMES:
            return _DAY_NAMES.index(name)
        if name in _FULL_NAMES:
            return _FULL_NAMES.index(name)
        if name.isdigit():
            key = int(name)
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
        return key
    raise CalendarError(
        f"weekday must be 0 (Monday) to 6 (Sunday) or a name like 'mon', got {key!r}"
    )


def _minute_of(value: object, what: str) -> int:
    if not isinstance(value, time):
        raise CalendarError(f"{what} must be a datetime.time, got {value!r}")
    if value.tzinfo is not None:
        raise CalendarError(f"{what} {value} must be a wall-clock time without tzinfo")
    if value.second or value.microsecond:
        raise CalendarError(f"{what} {value} must fall on a whole minute")
    return value.hour * 60 + value.minute


def _periods(value: object, where: str) -> tuple[Period, ...]:
    if isinstance(value, str):
        return tuple(_period_of(bounds) for bounds in _parse_periods(value, where))
    if not isinstance(value, Iterable):
        raise CalendarError(f"{where}: periods must be a list of (start, end) times")
    seen: set[tuple[int, int]] = set()
    for item in value:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            raise CalendarError(f"{where}: a period is a (start, end) pair, got {item!r}")
        start, end = item
        if isinstance(start, str) and isinstance(end, str):
            start, end = _parse_time(start, where), _parse_time(end, where, end=True)
        seen.add((_minute_of(start, f"{where} start"), _minute_of(end, f"{where} end")))
    return tuple(_period_of(bounds) for bounds in sorted(seen))


def _period_of(bounds: tuple[int, int]) -> Period:
    """The period of ``(start, end)`` given in minutes of the day."""
    start, end = bounds
    return (time(start // 60, start % 60), time(end // 60, end % 60))


def weekly_periods(value: object) -> tuple[tuple[Period, ...], ...]:
    """The seven weekdays' sorted, de-duplicated periods (Monday first) of a ``WeeklySpec``."""
    if isinstance(value, str):
        return parse_hours(value)
    if isinstance(value, Mapping):
        out: list[tuple[Period, ...]] = [()] * 7
        for key, periods in value.items():
            day = _weekday(key)
            out[day] = _periods(periods, _DAY_NAMES[day])
        return tuple(out)
    if isinstance(value, Sequence) and len(value) == 7:
        return tuple(_periods(periods, _DAY_NAMES[day]) for day, periods in enumerate(value))
    raise CalendarError(
        "weekly must map weekdays (0 = Monday, or 'mon') to lists of (start, end) times, "
        "or be the text form 'mon-fri 09:00-17:00'"
    )


def exception_periods(value: object) -> tuple[tuple[date, tuple[Period, ...]], ...]:
    """The ``(date, periods)`` pairs of an ``ExceptionsSpec``, sorted by date."""
    if value is None:
        return ()
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, Iterable):
        items = value
    else:
        raise CalendarError("exceptions must map dates to lists of (start, end) times")
    out: dict[date, tuple[Period, ...]] = {}
    for item in items:
        if not isinstance(item, Sequence) or len(item) != 2:
            raise CalendarError(f"exceptions: expected (date, periods), got {item!r}")
        day, periods = item
        if isinstance(day, str):
            day = _iso_date(day, "exception")
        day = check_date(day, "exception date")
        out[day] = _periods(periods, f"exception on {day}")
    return tuple(sorted(out.items()))


def holidays_and_rules(
    holidays: Iterable[date] | Holidays, holiday_rules: Iterable[str | HolidayRule]
) -> tuple[frozenset[date], tuple[HolidayRule, ...]]:
    """The holiday dates, and the rules (``holiday_rules`` then those of a ``Holidays``)."""
    given: object = holidays  # checked at run time: callers are not always type-checked
    if isinstance(given, Holidays):
        dates, extra_rules = given.dates, given.rules
    elif isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise CalendarError("holidays must be an iterable of dates (a set, a list, a dict…)")
    else:
        dates = frozenset(check_date(day, "holiday") for day in given)
        extra_rules = ()
    if isinstance(holiday_rules, str | HolidayRule):
        holiday_rules = [holiday_rules]
    rules = tuple(
        rule if isinstance(rule, HolidayRule) else HolidayRule(rule) for rule in holiday_rules
    ) + tuple(extra_rules)
    return dates, rules


def _iso_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise CalendarError(f"{what} {value!r} is not an ISO date (YYYY-MM-DD)") from exc


def _list(value: object, key: str) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise CalendarError(f"{key!r} must be a list")
    return list(value)


def _rule_from(value: object) -> HolidayRule:
    if isinstance(value, Mapping):
        if "rrule" not in value or set(value) - {"rrule", "days"}:
            raise CalendarError(f"a holiday rule table has keys 'rrule' and 'days', got {value!r}")
        return HolidayRule(value["rrule"], value.get("days", 1))
    return HolidayRule(value)


# --- the compact text form -------------------------------------------------------------------

_TIME = re.compile(r"(\d{1,2}):(\d{2})")


def _parse_time(text: str, where: str, *, end: bool = False) -> time:
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise CalendarError(f"{where}: {text!r} is not a time HH:MM")
    hour, minute = int(match[1]), int(match[2])
    if end and hour == 24 and minute == 0:
        return time(0)  # "…-24:00" ends at the next midnight, which (s, 00:00) already says
    if hour > 23 or minute > 59:
        raise CalendarError(f"{where}: {text!r} is not a valid time of day")
    return time(hour, minute)


def _parse_periods(text: str, where: str) -> list[tuple[int, int]]:
    text = text.strip().lower()
    if text in ("closed", "off", ""):
        return []
    found: set[tuple[int, int]] = set()
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) != 2:
            raise CalendarError(f"{where}: {part.strip()!r} is not a period HH:MM-HH:MM")
        start = _parse_time(bounds[0], where)
        end = _parse_time(bounds[1], where, end=True)
        found.add((start.hour * 60 + start.minute, end.hour * 60 + end.minute))
    return sorted(found)


def _parse_days(text: str, where: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        if "-" in part:
            first_text, _, last_text = part.partition("-")
            first, last = _weekday(first_text), _weekday(last_text)
            days.extend((first + step) % 7 for step in range((last - first) % 7 + 1))
        else:
            days.append(_weekday(part))
    if not days:
        raise CalendarError(f"{where}: no weekdays given")
    return days


def parse_hours(text: str) -> tuple[tuple[Period, ...], ...]:
    """The seven weekdays' periods of the text form, e.g. ``"mon-fri 09:00-17:00"``."""
    if not isinstance(text, str):
        raise CalendarError(f"hours must be text like 'mon-fri 09:00-17:00', got {text!r}")
    weekly: list[tuple[Period, ...]] = [()] * 7
    for clause in text.split(";"):
        clause = clause.strip()
        if not clause:
            continue
        days_text, _, periods_text = clause.partition(" ")
        if not periods_text.strip():
            raise CalendarError(
                f"{clause!r}: expected weekdays then periods, e.g. 'mon-fri 09:00-17:00'"
            )
        periods = tuple(_period_of(bounds) for bounds in _parse_periods(periods_text, clause))
        for day in _parse_days(days_text, clause):
            weekly[day] = periods  # a later clause replaces an earlier one for the same day
    return tuple(weekly)


def _format_periods(periods: Iterable[Period]) -> str:
    parts = []
    for start, end in periods:
        end_text = "24:00" if end == time(0) else f"{end:%H:%M}"
        parts.append(f"{start:%H:%M}-{end_text}")
    return ",".join(parts) or "closed"


def format_hours(weekly: tuple[tuple[Period, ...], ...]) -> str:
    """The text form of seven weekdays' periods; runs of equal days become ``mon-fri``."""
    clauses = []
    day = 0
    while day < 7:
        periods = weekly[day]
        last = day
        while last + 1 < 7 and weekly[last + 1] == periods:
            last += 1
        if periods:
            days = _DAY_NAMES[day] if last == day else f"{_DAY_NAMES[day]}-{_DAY_NAMES[last]}"
            clauses.append(f"{days} {_format_periods(periods)}")
        day = last + 1
    return "; ".join(clauses)


# --- the table form (TOML and JSON) ----------------------------------------------------------


def table_arguments(data: Mapping[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The ``BusinessCalendar`` arguments a table stands for: timezone, weekly, keywords.

    Only the table's own shape is checked here; the calendar checks the values it is given.
    """
    if not isinstance(data, Mapping):
        raise CalendarError(f"a calendar table must be a mapping, got {type(data).__name__}")
    unknown = set(data) - _TABLE_KEYS
    if unknown:
        raise CalendarError(
            f"unknown calendar keys {sorted(unknown)}; allowed: {sorted(_TABLE_KEYS)}"
        )
    if "timezone" not in data:
        raise CalendarError("a calendar table needs a 'timezone' key, e.g. 'Europe/Paris'")
    if ("hours" in data) == ("weekly" in data):
        raise CalendarError("a calendar table needs exactly one of 'hours' and 'weekly'")
    weekly = data["hours"] if "hours" in data else data["weekly"]
    if "hours" in data and not isinstance(weekly, str):
        raise CalendarError("'hours' must be text like 'mon-fri 09:00-17:00'")
    holidays = [
        _iso_date(day, "holiday") if isinstance(day, str) else day
        for day in _list(data.get("holidays", []), "holidays")
    ]
    rules = [_rule_from(rule) for rule in _list(data.get("holiday_rules", []), "holiday_rules")]
    exceptions = data.get("exceptions")
    if exceptions is not None and not isinstance(exceptions, Mapping):
        raise CalendarError("'exceptions' must be a table of ISO dates to periods")
    keywords = {"holidays": holidays, "holiday_rules": rules, "exceptions": exceptions}
    return data["timezone"], weekly, keywords


def table_of(
    timezone: str,
    weekly: tuple[tuple[Period, ...], ...],
    holidays: frozenset[date],
    holiday_rules: tuple[HolidayRule, ...],
    exceptions: tuple[tuple[date, tuple[Period, ...]], ...],
) -> dict[str, Any]:
    """A calendar's pieces as plain data (strings and lists) that :func:`table_arguments` reads."""
    return {
        "timezone": timezone,
        "hours": format_hours(weekly),
        "holidays": sorted(day.isoformat() for day in holidays),
        "holiday_rules": [
            rule.rule if rule.days == 1 else {"rrule": rule.rule, "days": rule.days}
            for rule in holiday_rules
        ],
        "exceptions": {day.isoformat(): _format_periods(periods) for day, periods in exceptions},
    }
