"""Business calendars: working hours in an IANA time zone, with exact business-time arithmetic.

A :class:`BusinessCalendar` is a time zone, weekly working periods for each weekday, holiday
dates (and recurring holiday rules), and per-date exceptions. It answers ``add``,
``elapsed``, ``is_open``, ``next_open`` and ``open_intervals`` to the contract in the design
notes: a period belongs to the date it starts on, ends the next day when its end is not after
its start, turns into instants by PEP 495 (``fold=0``), and the open set is the union of all
periods; elapsed time is real time inside that set.

How it stays fast: away from holidays, exceptions and UTC-offset changes the open set is the
weekly wall-clock pattern shifted by a constant offset, so the open time up to any instant is
``weeks * weekly_total + table lookup``. The irregular stretches (a few days around each
holiday, exception and offset change) are computed exactly once, stored as sorted interval
lists with their correction to the regular count, and found by binary search. An ``add`` or
``elapsed`` therefore costs the same over ten years as over a day, once the stretches in the
span have been computed (lazily, and cached on the calendar).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Final, TypeAlias
from zoneinfo import ZoneInfo

import attrs

from helpkit._calendar_zones import EPOCH, US, offset_at, transitions_between
from helpkit._time import ensure_aware
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
from helpkit.errors import CalendarError, ValidationError
from helpkit.holidays import HolidayRule, Holidays

__all__ = ["BusinessCalendar", "Period"]
# ExceptionsSpec and WeeklySpec, the types of the arguments, are importable from here as before
# ("X as X" marks them re-exported for type checkers).

_Minutes: TypeAlias = tuple[tuple[int, int], ...]

_MINUTE: Final = 60_000_000
_DAY: Final = 1440 * _MINUTE
_WEEK: Final = 7 * _DAY
_MONDAY0: Final = -3 * _DAY  # wall-clock 1969-12-29 00:00, a Monday, in µs since 1970-01-01
_EPOCH_ORD: Final = date(1970, 1, 1).toordinal()
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)  # noqa: DTZ001 - wall-clock arithmetic base
_MIN_ORD: Final = date(1, 1, 1).toordinal() + 15
_MAX_ORD: Final = date(9999, 12, 31).toordinal() - 15
_CHUNK_DAYS: Final = 7  # longest irregular stretch computed in one piece


def _to_minutes(periods: tuple[Period, ...]) -> _Minutes:
    return tuple((s.hour * 60 + s.minute, e.hour * 60 + e.minute) for s, e in periods)


# --- internal machinery ----------------------------------------------------------------------


def _length(p: tuple[int, int]) -> int:
    """Length of a period in minutes; ``end <= start`` runs into the next day."""
    return p[1] - p[0] if p[1] > p[0] else p[1] + 1440 - p[0]


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    intervals.sort()
    merged: list[tuple[int, int]] = []
    for s, e in intervals:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


class _Pattern:
    """The regular weekly open set in wall-clock µs, with cumulative sums for O(log) lookups."""

    __slots__ = ("cum", "cumend", "ends", "starts", "total")

    def __init__(self, weekly: tuple[_Minutes, ...]) -> None:
        pieces: list[tuple[int, int]] = []
        for day, periods in enumerate(weekly):
            for p in periods:
                start = (day * 1440 + p[0]) * _MINUTE
                end = start + _length(p) * _MINUTE
                if end > _WEEK:  # Sunday's overnight period wraps into Monday
                    pieces.append((start, _WEEK))
                    pieces.append((0, end - _WEEK))
                else:
                    pieces.append((start, end))
        merged = _merge(pieces)
        self.starts = tuple(s for s, _ in merged)
        self.ends = tuple(e for _, e in merged)
        cum = [0]
        for s, e in merged:
            cum.append(cum[-1] + e - s)
        self.total = cum[-1]
        self.cum = tuple(cum[:-1])
        self.cumend = tuple(cum[1:])

    def measure_to(self, wall: int) -> int:
        """Regular open time from the reference Monday to the wall-clock instant ``wall``."""
        weeks, r = divmod(wall - _MONDAY0, _WEEK)
        i = bisect_right(self.starts, r) - 1
        if i < 0:
            return weeks * self.total
        return weeks * self.total + self.cum[i] + min(r, self.ends[i]) - self.starts[i]

    def earliest(self, value: int) -> int:
        """Earliest wall-clock instant where :meth:`measure_to` reaches ``value``."""
        weeks, r = divmod(value, self.total)
        if r == 0:  # reached at the end of the last period of the previous week
            weeks -= 1
            r = self.total
        i = bisect_left(self.cumend, r)
        return _MONDAY0 + weeks * _WEEK + self.starts[i] + r - self.cum[i]

    def latest(self, value: int) -> int:
        """Latest wall-clock instant where :meth:`measure_to` equals ``value``."""
        weeks, r = divmod(value, self.total)
        i = bisect_right(self.cum, r) - 1
        return _MONDAY0 + weeks * _WEEK + self.starts[i] + r - self.cum[i]

    def is_open(self, wall: int) -> bool:
        r = (wall - _MONDAY0) % _WEEK
        i = bisect_right(self.starts, r) - 1
        return i >= 0 and r < self.ends[i]


class _Window:
    """An irregular stretch ``[s, e)`` of instants, with its exact open intervals."""

    __slots__ = ("be", "bs", "cum", "cumend", "e", "ends", "measure", "s", "starts")

    def __init__(self, s: int, e: int, bs: int, be: int, intervals: list[tuple[int, int]]) -> None:
        # bs/be: wall-clock µs of the window's first and last midnight
        self.s, self.e, self.bs, self.be = s, e, bs, be
        self.starts = tuple(a for a, _ in intervals)
        self.ends = tuple(b for _, b in intervals)
        cum = [0]
        for a, b in intervals:
            cum.append(cum[-1] + b - a)
        self.measure = cum[-1]
        self.cum = tuple(cum[:-1])
        self.cumend = tuple(cum[1:])

    def rel(self, t: int) -> int:
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.cum[i] + min(t, self.ends[i]) - self.starts[i]

    def earliest(self, u: int) -> int:
        i = bisect_left(self.cumend, u)
        return self.starts[i] + u - self.cum[i]

    def latest(self, u: int) -> int:
        i = bisect_right(self.cum, u) - 1
        return self.starts[i] + u - self.cum[i]

    def is_open(self, t: int) -> bool:
        i = bisect_right(self.starts, t) - 1
        return i >= 0 and t < self.ends[i]


class _Coverage:
    """An immutable snapshot of the cumulative open-time function C over ``[lo, hi]``.

    C(t) is the open time from an arbitrary origin to instant ``t``; ``elapsed(a, b)`` is
    ``C(b) - C(a)``. Between windows, C is the regular weekly count at the wall-clock time
    (``t + goff[k]``) plus the sum ``p[k]`` of the corrections of the windows before.
    """

    __slots__ = (
        "c_hi",
        "c_lo",
        "ce",
        "cs",
        "goff",
        "hi",
        "lo",
        "p",
        "pat",
        "tail_gap",
        "v_hi",
        "v_lo",
        "we",
        "wins",
        "ws",
    )

    def __init__(
        self,
        pat: _Pattern,
        v_lo: int,
        v_hi: int,
        lo: int,
        hi: int,
        wins: list[_Window],
        lo_off: int,
    ) -> None:
        self.pat, self.v_lo, self.v_hi, self.lo, self.hi = pat, v_lo, v_hi, lo, hi
        self.wins = tuple(wins)
        self.ws = tuple(w.s for w in wins)
        self.we = tuple(w.e for w in wins)
        p = [0]
        cs: list[int] = []
        goff = [lo_off if not wins else wins[0].bs - wins[0].s]
        for w in wins:
            regular = pat.measure_to(w.be) - pat.measure_to(w.bs)
            cs.append(pat.measure_to(w.bs) + p[-1])
            p.append(p[-1] + w.measure - regular)
            goff.append(0)
        # A gap's offset is read at the window boundary next to it; a boundary between two
        # windows may be unclean (inside an offset change) but then the gap is empty and unused.
        for k in range(1, len(wins)):
            goff[k] = wins[k].bs - wins[k].s
        if wins:
            goff[-1] = wins[-1].be - wins[-1].e
        self.p = tuple(p)
        self.cs = tuple(cs)
        self.ce = tuple(c + w.measure for c, w in zip(cs, wins, strict=True))
        self.goff = tuple(goff)
        self.tail_gap = not wins or wins[-1].e < hi
        self.c_lo = self.c(lo)
        self.c_hi = self.c(hi)

    def c(self, t: int) -> int:
        k = bisect_right(self.ws, t) - 1
        if k >= 0 and t <= self.we[k]:
            return self.cs[k] + self.wins[k].rel(t)
        return self.pat.measure_to(t + self.goff[k + 1]) + self.p[k + 1]

    def latest(self, v: int) -> int | None:
        """Largest t with C(t) == v, for v >= C(lo); None if it may lie at or after ``hi``."""
        k = bisect_right(self.cs, v)
        if k > 0 and self.ce[k - 1] > v:
            return self.wins[k - 1].latest(v - self.cs[k - 1])
        if k == len(self.wins):
            if not self.tail_gap or not self.pat.total:
                return None
            t = self.pat.latest(v - self.p[k]) - self.goff[k]
            return t if t < self.hi else None
        return self.pat.latest(v - self.p[k]) - self.goff[k]

    def is_open(self, t: int) -> bool:
        k = bisect_right(self.ws, t) - 1
        if k >= 0 and t < self.we[k]:
            return self.wins[k].is_open(t)
        return self.pat.is_open(t + self.goff[k + 1])

    def pieces(self, a: int, b: int) -> Iterator[tuple[int, int]]:
        """Open intervals clipped to ``[a, b)``, in order (adjacent ones not yet merged)."""
        k = bisect_right(self.ws, a) - 1
        t = a
        if k >= 0 and t < self.we[k]:
            yield from _clip(self.wins[k], t, b)
            t = self.we[k]
        k += 1
        while t < b:
            gap_end = min(self.ws[k] if k < len(self.wins) else self.hi, b)
            if t < gap_end:
                yield from self._gap_pieces(t, gap_end, self.goff[k])
            if k >= len(self.wins) or gap_end >= b:
                break
            yield from _clip(self.wins[k], max(t, self.ws[k]), b)
            t = self.we[k]
            k += 1

    def _gap_pieces(self, a: int, b: int, off: int) -> Iterator[tuple[int, int]]:
        pat = self.pat
        if not pat.total:
            return
        wa, wb = a + off, b + off
        week = (wa - _MONDAY0) // _WEEK
        while True:
            base = _MONDAY0 + week * _WEEK
            if base >= wb:
                return
            for s, e in zip(pat.starts, pat.ends, strict=True):
                lo, hi = max(base + s, wa), min(base + e, wb)
                if lo < hi:
                    yield lo - off, hi - off
            week += 1


def _clip(w: _Window, a: int, b: int) -> Iterator[tuple[int, int]]:
    for s, e in zip(w.starts, w.ends, strict=True):
        lo, hi = max(s, a), min(e, b)
        if lo < hi:
            yield lo, hi


class _State:
    """Mutable lazily-filled caches of one calendar (shared by copies, never compared)."""

    __slots__ = ("covs", "rule_years", "windows")

    def __init__(self) -> None:
        # A few disjoint coverages, most recent first, so queries in far-apart eras do not
        # force one coverage spanning everything between them.
        self.covs: tuple[_Coverage, ...] = ()
        self.rule_years: dict[int, frozenset[int]] = {}
        self.windows: dict[tuple[int, int], _Window] = {}


def _duration_us(value: object) -> int:
    if not isinstance(value, timedelta):
        raise ValidationError(
            f"duration must be a datetime.timedelta, got {type(value).__name__} "
            "(helpkit never takes float hours)"
        )
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _instant_us(value: datetime, name: str) -> int:
    """Microseconds since the epoch of an aware datetime (the hot path: no timedelta division)."""
    try:
        d = value - EPOCH
    except TypeError:  # naive (or not a datetime at all): let ensure_aware say what to do
        ensure_aware(value, name)
        raise
    given: object = value  # callers are not always type-checked
    if not isinstance(given, datetime):
        ensure_aware(value, name)
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


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
class BusinessCalendar:
    """Working hours in an IANA time zone, with holidays and per-date exceptions.

    ``weekly`` maps weekdays (0 = Monday, or ``"mon"``) to ``(start, end)`` wall-clock
    periods at whole minutes; a period with ``end <= start`` ends the next day, and
    ``(time(0), time(0))`` is a whole day. ``holidays`` is any iterable of dates (or a
    :class:`~helpkit.holidays.Holidays`), ``holiday_rules`` are RFC 5545 recurrence rules, and
    ``exceptions`` replace the periods of single dates (an exception wins over a holiday).

    Values are immutable, hashable, picklable and safe to share between threads. Every method
    takes aware datetimes and returns aware datetimes in the calendar's zone.
    """

    timezone: str
    weekly: tuple[tuple[Period, ...], ...]
    holidays: frozenset[date]
    holiday_rules: tuple[HolidayRule, ...]
    exceptions: tuple[tuple[date, tuple[Period, ...]], ...]
    _tz: ZoneInfo = attrs.field(init=False, eq=False, hash=False)
    _weekly_min: tuple[_Minutes, ...] = attrs.field(init=False, eq=False, hash=False)
    _exc: dict[int, _Minutes] = attrs.field(init=False, eq=False, hash=False)
    _exc_ords: tuple[int, ...] = attrs.field(init=False, eq=False, hash=False)
    _hol_ords: tuple[int, ...] = attrs.field(init=False, eq=False, hash=False)
    _hol_set: frozenset[int] = attrs.field(init=False, eq=False, hash=False)
    _pattern: _Pattern = attrs.field(init=False, eq=False, hash=False)
    _state: _State = attrs.field(init=False, eq=False, hash=False)
    _closed: bool = attrs.field(init=False, eq=False, hash=False)
    _epoch_tz: datetime = attrs.field(init=False, eq=False, hash=False)

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
        setattr_ = object.__setattr__
        setattr_(self, "_tz", tz)
        setattr_(self, "_weekly_min", tuple(_to_minutes(p) for p in week))
        setattr_(self, "_exc", {d.toordinal(): _to_minutes(p) for d, p in exc})
        setattr_(self, "_exc_ords", tuple(sorted(self._exc)))
        ords = frozenset(d.toordinal() for d in dates)
        setattr_(self, "_hol_set", ords)
        setattr_(self, "_hol_ords", tuple(sorted(ords)))
        setattr_(self, "_pattern", _Pattern(self._weekly_min))
        setattr_(self, "_state", _State())
        setattr_(self, "_closed", not self._pattern.total and not any(self._exc.values()))
        setattr_(self, "_epoch_tz", _EPOCH_NAIVE.replace(tzinfo=tz))

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

    # --- queries ---------------------------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of open time after ``start`` (before it, if negative).

        For ``duration >= 0`` this is the earliest ``t >= start`` with
        ``elapsed(start, t) == duration``, so an addition that ends at a closing time returns
        that closing time; ``add(start, timedelta(0))`` is ``start``, even when closed.
        """
        a = _instant_us(start, "start")
        d = _duration_us(duration)
        if d == 0:
            return start.astimezone(self._tz)
        if self._closed:
            raise CalendarError(f"{self!r} has no open time; cannot add {duration}")
        cov = self._ensure(a, a)
        while True:
            v = cov.c(a) + d
            if d > 0 and v <= cov.c_hi:
                k = bisect_left(cov.ce, v)
                if k < len(cov.wins) and cov.cs[k] < v:
                    return self._dt(cov.wins[k].earliest(v - cov.cs[k]))
                # In a gap the wall-clock time is unambiguous: build it directly (fold=0),
                # which is cheaper than converting the instant through the zone.
                wall = cov.pat.earliest(v - cov.p[k])
                try:
                    return self._epoch_tz + timedelta(microseconds=wall)
                except OverflowError as exc:
                    raise CalendarError("the result is outside the range of datetime") from exc
            if d < 0 and v >= cov.c_lo:
                t = cov.latest(v)
                assert t is not None  # t < start < hi
                return self._dt(t)
            cov = self._grow(cov, up=d > 0, missing=abs(d), start=a)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Open time between two instants, negative when ``end`` is before ``start``."""
        a = _instant_us(start, "start")
        b = _instant_us(end, "end")
        cov = self._ensure(min(a, b), max(a, b))
        return timedelta(microseconds=cov.c(b) - cov.c(a))

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` lies in open time (periods include their start, not their end)."""
        a = _instant_us(t, "t")
        return self._ensure(a, a).is_open(a)

    def next_open(self, t: datetime) -> datetime:
        """``t`` if open, else the next instant the calendar opens."""
        a = _instant_us(t, "t")
        if self._closed:
            raise CalendarError(f"{self!r} has no open time")
        cov = self._ensure(a, a)
        while True:
            found = cov.latest(cov.c(a))
            if found is not None:
                return t.astimezone(self._tz) if found == a else self._dt(found)
            cov = self._grow(cov, up=True, missing=1, start=a)

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals ``(from, to)`` between two instants, clipped to them, in order."""
        a = _instant_us(start, "start")
        b = _instant_us(end, "end")
        return self._intervals(a, b)

    # --- internals -------------------------------------------------------------------------

    def _dt(self, us: int) -> datetime:
        try:
            # aware + timedelta is field arithmetic, so this holds the UTC fields under the
            # calendar's tzinfo: exactly what fromutc expects
            return self._tz.fromutc(self._epoch_tz + timedelta(microseconds=us))
        except OverflowError as exc:
            raise CalendarError("the result is outside the range of datetime") from exc

    def _intervals(self, a: int, b: int) -> Iterator[tuple[datetime, datetime]]:
        pending: tuple[int, int] | None = None
        t = a
        while t < b:
            seg = min(b, t + 366 * _DAY)  # a year at a time, so a far end costs nothing upfront
            for s, e in self._ensure(t, seg).pieces(t, seg):
                if pending is not None and s <= pending[1]:
                    pending = (pending[0], max(e, pending[1]))
                    continue
                if pending is not None:
                    yield self._dt(pending[0]), self._dt(pending[1])
                pending = (s, e)
            t = seg
        if pending is not None:
            yield self._dt(pending[0]), self._dt(pending[1])

    def _instant(self, ordinal: int, minute: int) -> int:
        """The instant of wall-clock ``minute`` on date ``ordinal`` (PEP 495, fold=0)."""
        d = date.fromordinal(ordinal)
        local = datetime(d.year, d.month, d.day, minute // 60, minute % 60, tzinfo=self._tz)
        return (local - EPOCH) // US

    def _rule_dates(self, year: int) -> frozenset[int]:
        got = self._state.rule_years.get(year)
        if got is None:
            first, nxt = date(year, 1, 1), date(year + 1, 1, 1) if year < 9999 else date.max
            got = frozenset(
                d.toordinal() for rule in self.holiday_rules for d in rule.between(first, nxt)
            )
            self._state.rule_years[year] = got
        return got

    def _periods_on(self, ordinal: int) -> _Minutes:
        exc = self._exc.get(ordinal)
        if exc is not None:
            return exc
        if ordinal in self._hol_set or (
            self.holiday_rules and ordinal in self._rule_dates(date.fromordinal(ordinal).year)
        ):
            return ()
        return self._weekly_min[(ordinal - 1) % 7]

    def _irregular(self, lo: int, hi: int) -> list[int]:
        """Dates in ``[lo, hi)`` whose periods differ from their weekday's regular ones."""
        found: set[int] = set()
        for ords in (self._hol_ords, self._exc_ords):
            found.update(ords[bisect_left(ords, lo) : bisect_left(ords, hi)])
        if self.holiday_rules:
            for year in range(date.fromordinal(lo).year, date.fromordinal(hi - 1).year + 1):
                found.update(o for o in self._rule_dates(year) if lo <= o < hi)
        return sorted(o for o in found if self._periods_on(o) != self._weekly_min[(o - 1) % 7])

    def _window(self, a: int, b: int) -> _Window:
        """The exact open intervals of the stretch of dates ``[a, b)``."""
        key = (a, b)
        got = self._state.windows.get(key)
        if got is not None:
            return got
        s, e = self._instant(a, 0), self._instant(b, 0)
        e = max(e, s)
        pieces: list[tuple[int, int]] = []
        # Periods of the day before can run past midnight into the stretch.
        for o in range(a - 1, b):
            for p in self._periods_on(o):
                start = self._instant(o, p[0])
                end = self._instant(o if p[1] > p[0] else o + 1, p[1])
                if end <= start:
                    continue  # the contract: an empty period (e.g. inside a DST gap)
                lo, hi = max(start, s), min(end, e)
                if lo < hi:
                    pieces.append((lo, hi))
        got = _Window(s, e, (a - _EPOCH_ORD) * _DAY, (b - _EPOCH_ORD) * _DAY, _merge(pieces))
        self._state.windows[key] = got
        return got

    def _build(self, v_lo: int, v_hi: int) -> _Coverage:
        """Coverage of the dates ``[v_lo, v_hi)``: every irregular stretch in it, computed."""
        # A date's periods end before the midnight two days later, so an irregular date
        # disturbs two days; an offset change disturbs the days whose periods can cross it.
        g_lo, g_hi = v_lo - 6, v_hi + 6
        spans = [(o, o + 2) for o in self._irregular(g_lo, g_hi)]
        for instant, before, after in transitions_between(
            self._tz, (g_lo - _EPOCH_ORD - 2) * _DAY, (g_hi - _EPOCH_ORD + 2) * _DAY
        ):
            w1, w2 = instant + before, instant + after
            spans.append(
                (_EPOCH_ORD + min(w1, w2) // _DAY - 1, _EPOCH_ORD + max(w1, w2) // _DAY + 2)
            )
        wins: list[_Window] = []
        for a, b in _merge(spans):
            a, b = max(a, v_lo), min(b, v_hi)
            while a < b:  # long stretches are cut into pieces so a lookup inside stays cheap
                c = min(b, a + _CHUNK_DAYS)
                wins.append(self._window(a, c))
                a = c
        lo, hi = self._instant(v_lo, 0), self._instant(v_hi, 0)
        return _Coverage(self._pattern, v_lo, v_hi, lo, hi, wins, offset_at(self._tz, lo))

    def _ensure(self, t_lo: int, t_hi: int) -> _Coverage:
        """A coverage with ``lo <= t_lo`` and ``t_hi < hi``, extending a cached one if near."""
        covs = self._state.covs
        if covs and covs[0].lo <= t_lo and t_hi < covs[0].hi:  # the usual case, kept short
            return covs[0]
        for cov in covs:
            if cov.lo <= t_lo and t_hi < cov.hi:
                return cov
        need_lo = _EPOCH_ORD + t_lo // _DAY - 2
        need_hi = _EPOCH_ORD + t_hi // _DAY + 3
        if need_lo < _MIN_ORD or need_hi > _MAX_ORD:
            raise CalendarError("the instant is too close to the limits of datetime")
        base: _Coverage | None = None
        for cov in covs:
            span = cov.v_hi - cov.v_lo
            if max(cov.v_lo - need_hi, need_lo - cov.v_hi) <= max(span, 366):
                base = cov
                break
        if base is None:
            v_lo, v_hi = need_lo - 45, need_hi + 45
        else:
            grow = max(92, (base.v_hi - base.v_lo) // 2)  # geometric, so extensions stay rare
            v_lo = min(base.v_lo, need_lo - grow) if t_lo < base.lo else base.v_lo
            v_hi = max(base.v_hi, need_hi + grow) if t_hi >= base.hi else base.v_hi
        return self._store(self._build(max(v_lo, _MIN_ORD), min(v_hi, _MAX_ORD)), base)

    def _store(self, new: _Coverage, old: _Coverage | None) -> _Coverage:
        # A plain attribute swap of an immutable tuple: concurrent readers keep the snapshot
        # they took, and a lost update only costs a recomputation later.
        rest = tuple(c for c in self._state.covs if c is not old)
        self._state.covs = (new, *rest[:3])
        return new

    def _grow(self, cov: _Coverage, *, up: bool, missing: int, start: int) -> _Coverage:
        """A wider coverage for an ``add`` that ran past ``cov``; raises when it never could."""
        total = self._pattern.total
        span = cov.v_hi - cov.v_lo
        if total:
            days = max((missing // total + 1) * 9 + 14, span // 2)  # ~7 days/week + holidays
        else:
            # Only exceptions open anything; past the last (or before the first) one, nothing.
            open_days = [o for o, p in self._exc.items() if p]
            edge = max(open_days) + 2 if up else min(open_days) - 1
            if (up and cov.v_hi > edge + 1) or (not up and cov.v_lo < edge - 1):
                when = self._dt(start).isoformat()
                raise CalendarError(
                    f"no open time {'after' if up else 'before'} {when}: the calendar has no "
                    "weekly hours and no exception beyond that"
                )
            days = abs(edge - (cov.v_hi if up else cov.v_lo)) + 8
        if up:
            v_lo, v_hi = cov.v_lo, min(cov.v_hi + days, _MAX_ORD)
            if v_hi <= cov.v_hi:
                raise CalendarError("the result would be after the year 9999")
        else:
            v_lo, v_hi = max(cov.v_lo - days, _MIN_ORD), cov.v_hi
            if v_lo >= cov.v_lo:
                raise CalendarError("the result would be before the year 1")
        new = self._store(self._build(v_lo, v_hi), cov)
        gained = new.c_hi - new.c(cov.hi) if up else new.c(cov.lo) - new.c_lo
        if total and not gained and abs(v_hi - v_lo - span) >= 3 * 366:
            raise CalendarError(
                f"no open time in the {abs(v_hi - v_lo - span) // 365} years "
                f"{'after' if up else 'before'} {self._dt(cov.hi if up else cov.lo).date()}: "
                "the holidays cancel every working period"
            )
        return new
