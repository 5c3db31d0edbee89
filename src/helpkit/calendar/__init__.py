"""Business calendars: working hours in an IANA time zone, with exact business-time arithmetic.

A :class:`BusinessCalendar` is a time zone, weekly working periods for each weekday, holiday
dates (and recurring holiday rules), and per-date exceptions. It answers ``add``,
``elapsed``, ``is_open``, ``next_open`` and ``open_intervals`` to the contract in the design
notes: a period belongs to the date it starts on, ends the next day when its end is not after
its start, turns into instants by PEP 495 (``fold=0``), and the open set is the union of all
periods; elapsed time is real time inside that set.

The package has three parts: this module, the calendar value itself; ``_spec``, which reads,
checks and writes the pieces a calendar is built from (zones, weekdays, periods, the text
form ``"mon-fri 09:00-17:00"``, exceptions, holidays, tables); and ``_engine``, the open-time
arithmetic on microsecond instants, which explains how an ``add`` or ``elapsed`` costs the
same over ten years as over a day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from helpkit.calendar._engine import CalendarEngine
from helpkit.calendar._spec import ExceptionsSpec as ExceptionsSpec
from helpkit.calendar._spec import (
    Period,
    exception_periods,
    format_hours,
    holidays_and_rules,
    parse_hours,
    table_arguments,
    table_of,
    weekly_periods,
    zone_of,
)
from helpkit.calendar._spec import WeeklySpec as WeeklySpec
from helpkit.errors import CalendarError
from helpkit.holidays import HolidayRule, Holidays

__all__ = ["BusinessCalendar", "Period"]
# ExceptionsSpec and WeeklySpec, the types of the arguments, are importable from here as before
# ("X as X" marks them re-exported for type checkers).


def _restore(
    timezone: str,
    weekly: tuple[tuple[Period, ...], ...],
    holidays: frozenset[date],
    holiday_rules: tuple[HolidayRule, ...],
    exceptions: tuple[tuple[date, tuple[Period, ...]], ...],
) -> BusinessCalendar:
    return BusinessCalendar(
        timezone, weekly, holidays=holidays, holiday_rules=holiday_rules, exceptions=exceptions
    )


@attrs.frozen(init=False, repr=False)
class BusinessCalendar(CalendarEngine):
    """Working hours in an IANA time zone, with holidays and per-date exceptions.

    ``weekly`` maps weekdays (0 = Monday, or ``"mon"``) to ``(start, end)`` wall-clock
    periods at whole minutes; a period with ``end <= start`` ends the next day, and
    ``(time(0), time(0))`` is a whole day. ``holidays`` is any iterable of dates (or a
    :class:`~helpkit.holidays.Holidays`), ``holiday_rules`` are RFC 5545 recurrence rules, and
    ``exceptions`` replace the periods of single dates (an exception wins over a holiday).

    Values are immutable, hashable, picklable and safe to share between threads. Every method
    takes aware datetimes and returns aware datetimes in the calendar's zone.
    """

    # The queries (add, elapsed, is_open, next_open, open_intervals) and the private state
    # they use (caches included, never compared) come from CalendarEngine.

    timezone: str
    weekly: tuple[tuple[Period, ...], ...]
    holidays: frozenset[date]
    holiday_rules: tuple[HolidayRule, ...]
    exceptions: tuple[tuple[date, tuple[Period, ...]], ...]

    def __init__(
        self,
        timezone: str | ZoneInfo,
        weekly: WeeklySpec,
        *,
        holidays: Iterable[date] | Holidays = (),
        holiday_rules: Iterable[str | HolidayRule] = (),
        exceptions: ExceptionsSpec = None,
    ) -> None:
        tz = zone_of(timezone)
        dates, rules = holidays_and_rules(holidays, holiday_rules)
        week = weekly_periods(weekly)
        exc = exception_periods(exceptions)
        self.__attrs_init__(tz.key, week, dates, tuple(dict.fromkeys(rules)), exc)
        self._start_engine(tz, week, dates, self.holiday_rules, exc)

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        timezone: str | ZoneInfo,
        holidays: Iterable[date] | Holidays = (),
        holiday_rules: Iterable[str | HolidayRule] = (),
        exceptions: ExceptionsSpec = None,
    ) -> BusinessCalendar:
        """Build a calendar from the text form, e.g. ``"mon-fri 09:00-12:00,13:00-17:00"``.

        Clauses are separated by ``;``; each is weekdays (``mon``, ``mon-fri``, ``sat,sun``,
        ``fri-mon``) then comma-separated ``HH:MM-HH:MM`` periods or ``closed``. ``24:00``
        is accepted as an end; an end not after the start runs into the next day. A later
        clause replaces an earlier one for the same weekday.
        """
        if not isinstance(text, str):
            raise CalendarError(f"hours must be text like 'mon-fri 09:00-17:00', got {text!r}")
        return cls(
            timezone,
            parse_hours(text),
            holidays=holidays,
            holiday_rules=holiday_rules,
            exceptions=exceptions,
        )

    @classmethod
    def always(cls, timezone: str | ZoneInfo = "UTC") -> BusinessCalendar:
        """A calendar open all the time (24/7) in ``timezone``."""
        return cls(timezone, {day: [(time(0), time(0))] for day in range(7)})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """Build a calendar from a mapping such as a TOML table.

        Keys: ``timezone`` (required, IANA name); ``hours`` (text form) or ``weekly`` (a
        table of weekday name or number to text periods or ``[start, end]`` string pairs);
        ``holidays`` (dates or ISO date strings); ``holiday_rules`` (RRULE strings, or
        tables ``{rrule = "...", days = 2}``); ``exceptions`` (a table of ISO date to text
        periods, ``"closed"``, or a list of ``[start, end]`` string pairs). Unknown keys are
        refused.
        """
        timezone, weekly, keywords = table_arguments(data)
        return cls(timezone, weekly, **keywords)

    def to_dict(self) -> dict[str, Any]:
        """This calendar as plain data (strings and lists) that :meth:`from_dict` reads back."""
        return table_of(
            self.timezone, self.weekly, self.holidays, self.holiday_rules, self.exceptions
        )

    @property
    def hours(self) -> str:
        """The weekly periods in the text form accepted by :meth:`parse`."""
        return format_hours(self.weekly)

    @property
    def tzinfo(self) -> ZoneInfo:
        """The calendar's time zone."""
        return self._tz

    def __repr__(self) -> str:
        parts = [repr(self.timezone), repr(self.hours)]
        if self.holidays:
            parts.append(f"holidays=<{len(self.holidays)} dates>")
        if self.holiday_rules:
            parts.append(f"holiday_rules={list(self.holiday_rules)!r}")
        if self.exceptions:
            parts.append(f"exceptions=<{len(self.exceptions)} dates>")
        return f"BusinessCalendar({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The private caches (and their lazily computed tables) are rebuilt, not pickled.
        return (
            _restore,
            (self.timezone, self.weekly, self.holidays, self.holiday_rules, self.exceptions),
        )
