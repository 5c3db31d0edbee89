"""Holiday sources for business calendars: RFC 5545 recurrence rules and iCalendar feeds.

A :class:`~helpkit.calendar.BusinessCalendar` takes holidays as any iterable of dates (a set, a
list, the ``holidays`` package's objects) plus recurrence rules. This module holds the rules
(:class:`HolidayRule`, expanded lazily over whatever range a computation reaches, so an
unbounded rule never has to be materialized) and a small reader for the all-day events of
iCalendar (``.ics``) holiday feeds (:func:`parse_ics`, :func:`read_ics`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs
from dateutil.rrule import rrulestr

from helpkit.errors import CalendarError

__all__ = ["DEFAULT_DTSTART", "HolidayRule", "Holidays", "parse_ics", "read_ics"]

#: The first occurrence a rule without a ``DTSTART`` is anchored to (dateutil would otherwise
#: use "now", which would make a calendar depend on the day it was built). A Monday.
DEFAULT_DTSTART = date(1900, 1, 1)

# dateutil iterates a rule from its DTSTART on every query; a cached parse (cache=True keeps the
# occurrences generated so far) plus blocks of years keep repeated expansions cheap. Rules are
# plain strings, so the caches are shared by every calendar using the same rule.
_BLOCK_YEARS = 8


@lru_cache(maxsize=512)
def _parsed(text: str) -> Any:
    if not text:
        raise CalendarError("a holiday rule is empty")
    try:
        return rrulestr(
            text,
            dtstart=datetime.combine(DEFAULT_DTSTART, time.min),
            forceset=True,
            ignoretz=True,
            unfold=True,
            cache=True,
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CalendarError(f"invalid recurrence rule {text!r}: {exc}") from exc


@lru_cache(maxsize=8192)
def _block(text: str, index: int) -> tuple[date, ...]:
    """Occurrence start dates of a rule in the years of block ``index``."""
    first = max(index * _BLOCK_YEARS, 1)
    last = min(index * _BLOCK_YEARS + _BLOCK_YEARS - 1, 9999)
    # dateutil rules here are naive (ignoretz): they speak in local dates.
    starts = _parsed(text).between(
        datetime.combine(date(first, 1, 1), time.min),
        datetime.combine(date(last, 12, 31), time.max),
        inc=True,
    )
    return tuple(sorted({d.date() for d in starts}))


def _check_rule(instance: HolidayRule, attribute: attrs.Attribute[str], value: str) -> None:
    _parsed(value)


def _check_days(instance: HolidayRule, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CalendarError(f"a holiday rule lasts a whole number of days >= 1, got {value!r}")


def _to_rule_text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    # dateutil rrule / rruleset objects print themselves in RFC 5545 form.
    if type(value).__module__.startswith("dateutil.rrule"):
        return str(value).strip()
    raise CalendarError(f"a holiday rule must be an RRULE string, got {type(value).__name__}")


@attrs.frozen(repr=False)
class HolidayRule:
    """A recurring holiday: RFC 5545 recurrence text and how many days each occurrence lasts.

    ``rule`` is either a bare ``RRULE`` value (``"FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25"``,
    anchored to ``DEFAULT_DTSTART``, 1900-01-01) or several content lines (``DTSTART``, ``RRULE``,
    ``RDATE``, ``EXDATE``) separated by newlines. dateutil's ``BYEASTER`` extension is
    accepted (``"FREQ=YEARLY;BYEASTER=1"`` is Easter Monday).
    """

    rule: str = attrs.field(converter=_to_rule_text, validator=_check_rule)
    days: int = attrs.field(default=1, validator=_check_days)

    def __repr__(self) -> str:
        extra = f", days={self.days}" if self.days != 1 else ""
        return f"HolidayRule({self.rule!r}{extra})"

    def between(self, start: date, end: date) -> list[date]:
        """The sorted dates in ``[start, end)`` that an occurrence of the rule covers."""
        if end <= start:
            return []
        first = start - timedelta(days=self.days - 1) if start.toordinal() > self.days else start
        covered: set[date] = set()
        for index in range(first.year // _BLOCK_YEARS, (end.year // _BLOCK_YEARS) + 1):
            for occ in _block(self.rule, index):
                if occ >= end or occ < first:
                    continue
                for k in range(self.days):
                    day = occ + timedelta(days=k)
                    if start <= day < end:
                        covered.add(day)
        return sorted(covered)


def _rules(value: Iterable[HolidayRule | str]) -> tuple[HolidayRule, ...]:
    if isinstance(value, str | HolidayRule):
        value = [value]
    return tuple(v if isinstance(v, HolidayRule) else HolidayRule(v) for v in value)


def _dates(value: Iterable[date]) -> frozenset[date]:
    return frozenset(check_date(d, "holiday") for d in value)


def check_date(value: object, what: str) -> date:
    """Return ``value`` if it is a :class:`date` (not a datetime), else raise CalendarError."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise CalendarError(f"a {what} must be a datetime.date, got {value!r}")
    return value


@attrs.frozen
class Holidays:
    """Holiday dates plus recurring rules, as read from an iCalendar feed.

    Pass it as ``holidays=`` to :class:`~helpkit.calendar.BusinessCalendar`; combine several
    with ``|``.
    """

    dates: frozenset[date] = attrs.field(default=frozenset(), converter=_dates)
    rules: tuple[HolidayRule, ...] = attrs.field(default=(), converter=_rules)

    def __or__(self, other: Holidays) -> Holidays:
        if not isinstance(other, Holidays):
            return NotImplemented
        return Holidays(self.dates | other.dates, self.rules + other.rules)

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date) or isinstance(day, datetime):
            return False
        if day in self.dates:
            return True
        nxt = day + timedelta(days=1)
        return any(rule.between(day, nxt) for rule in self.rules)

    def between(self, start: date, end: date) -> list[date]:
        """The sorted holiday dates in ``[start, end)``."""
        found = {d for d in self.dates if start <= d < end}
        for rule in self.rules:
            found.update(rule.between(start, end))
        return sorted(found)


# --- iCalendar -------------------------------------------------------------------------------

_LINE = re.compile(r"^(?P<name>[A-Za-z0-9-]+)(?P<params>(?:;[^:]*)?):(?P<value>.*)$")


def _unfold(text: str) -> list[str]:
    # RFC 5545 3.1: a line break followed by one space or tab continues the previous line.
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw)
    return lines


def _ics_date(value: str, where: str) -> date:
    value = value.strip()
    if not re.fullmatch(r"\d{8}", value):
        raise CalendarError(f"{where}: expected a date YYYYMMDD, got {value!r}")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError as exc:
        raise CalendarError(f"{where}: {exc}") from exc


def _ics_days(value: str, where: str) -> int:
    match = re.fullmatch(r"\+?P(?:(\d+)W)?(?:(\d+)D)?", value.strip())
    if not match or not any(match.groups()):
        raise CalendarError(f"{where}: an all-day DURATION must be whole days, got {value!r}")
    weeks, days = (int(g) if g else 0 for g in match.groups())
    return weeks * 7 + days


def parse_ics(text: str) -> Holidays:
    """Read the all-day events of iCalendar text as holidays.

    Each ``VEVENT`` whose ``DTSTART`` is a date (``DTSTART;VALUE=DATE:20261225``) becomes a
    holiday lasting until its ``DTEND`` (exclusive) or its ``DURATION``, one day by default;
    ``RRULE``, ``RDATE`` and ``EXDATE`` make it recur. Timed events and cancelled events are
    not holidays and are skipped.
    """
    dates: set[date] = set()
    rules: list[HolidayRule] = []
    event: list[tuple[str, str, str]] | None = None
    for number, line in enumerate(_unfold(text), start=1):
        match = _LINE.match(line)
        if not match:
            raise CalendarError(f"iCalendar line {number} is malformed: {line!r}")
        name = match["name"].upper()
        params, value = match["params"].upper(), match["value"]
        if name == "BEGIN" and value.strip().upper() == "VEVENT":
            event = []
        elif name == "END" and value.strip().upper() == "VEVENT":
            if event is None:
                raise CalendarError(f"iCalendar line {number}: END:VEVENT without BEGIN")
            _add_event(event, dates, rules, number)
            event = None
        elif event is not None:
            event.append((name, params, value))
    if event is not None:
        raise CalendarError("iCalendar text ends inside a VEVENT")
    return Holidays(frozenset(dates), tuple(rules))


def _add_event(
    props: list[tuple[str, str, str]], dates: set[date], rules: list[HolidayRule], line: int
) -> None:
    where = f"VEVENT ending on line {line}"
    first: dict[str, tuple[str, str]] = {}
    recurrence: list[str] = []
    for name, params, value in props:
        first.setdefault(name, (params, value))
        if name in ("RRULE", "RDATE", "EXDATE"):
            recurrence.append(f"{name}{params}:{value.strip()}")
    if "DTSTART" not in first:
        raise CalendarError(f"{where} has no DTSTART")
    status = first.get("STATUS", ("", ""))[1].strip().upper()
    params, value = first["DTSTART"]
    if status == "CANCELLED" or not ("VALUE=DATE" in params or re.fullmatch(r"\d{8}", value)):
        return  # a timed or cancelled event is not a holiday
    start = _ics_date(value, where)
    days = 1
    if "DTEND" in first:
        days = (_ics_date(first["DTEND"][1], where) - start).days
    elif "DURATION" in first:
        days = _ics_days(first["DURATION"][1], where)
    if days < 1:
        raise CalendarError(f"{where} ends before it starts")
    if not recurrence:
        dates.update(start + timedelta(days=k) for k in range(days))
        return
    text = "\n".join([f"DTSTART:{start:%Y%m%d}", *recurrence])
    rules.append(HolidayRule(text, days))


def read_ics(path: str | os.PathLike[str]) -> Holidays:
    """Read the all-day events of an iCalendar file as holidays (see :func:`parse_ics`)."""
    return parse_ics(Path(path).read_text(encoding="utf-8-sig"))
