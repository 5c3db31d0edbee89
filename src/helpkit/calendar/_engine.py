# Over 600 lines on purpose: the representation below and the queries on it read as one.
"""The open-time arithmetic of a business calendar: exact, and as cheap over ten years as a day.

**Instants.** Every instant is an ``int``: microseconds since 1970-01-01 00:00 UTC. An aware
datetime becomes one by subtracting the epoch (:func:`instant_us`), and one turns back into a
datetime in the calendar's zone by ``fromutc`` (:meth:`CalendarEngine._to_datetime`). Durations
are microseconds too, so adding and comparing is integer arithmetic, never float hours.

**Wall clock.** A *wall* value is microseconds since 1970-01-01 00:00 *on the calendar's
clock*: the instant plus the UTC offset in force. Periods are kept as wall minutes, pairs
``(start, end)`` of minutes of the day where ``end <= start`` runs into the next day. Dates
are proleptic ordinals (``date.toordinal()``); a date's midnight is wall
``(ordinal - EPOCH_ORDINAL) * DAY_US``.

**The weekly pattern.** Away from holidays, exceptions and offset changes, the open set is
the weekly wall-clock pattern (:class:`WeeklyPattern`): the merged open intervals of one week,
from the reference Monday 1969-12-29 00:00, with running sums of their lengths. The regular
open time up to any wall value is then ``weeks * open_per_week`` plus one binary search.

**Windows.** A :class:`Window` is an irregular stretch of whole dates (at most
``WINDOW_DAYS``): the days around a holiday, an exception or an offset change. Its open
intervals are computed exactly once, as instants, with running sums; they are cached by
dates on the calendar (:class:`Caches`).

**Coverage.** A :class:`Coverage` is an immutable snapshot, over a range of dates, of the
*counted* function: open time from an arbitrary origin up to an instant. Inside a window it is
the open time counted before the window plus a lookup in the window; in a gap between windows
it is the pattern's count at the gap's wall clock plus the corrections (exact minus regular
open time) of the windows before. ``elapsed(a, b)`` is ``counted(b) - counted(a)``, and
``add`` inverts ``counted`` by binary search over the windows' counts, then the pattern. A
calendar keeps a few coverages, most recent first; a query outside them extends a nearby one
geometrically (or builds a new one for a far-away era), so the windows of a span are computed
once and every later query costs a few binary searches.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Final, TypeAlias
from zoneinfo import ZoneInfo

from helpkit._calendar_zones import EPOCH, US, offset_at, transitions_between
from helpkit._time import ensure_aware
from helpkit.calendar._spec import Period
from helpkit.errors import CalendarError, ValidationError
from helpkit.holidays import HolidayRule

__all__ = ["CalendarEngine", "duration_us", "instant_us"]

WallMinutes: TypeAlias = tuple[tuple[int, int], ...]
"""A day's periods as ``(start, end)`` minutes of the day; ``end <= start`` ends the next day."""

MINUTE_US: Final = 60_000_000
DAY_US: Final = 1440 * MINUTE_US
WEEK_US: Final = 7 * DAY_US
REFERENCE_MONDAY: Final = -3 * DAY_US  # wall-clock 1969-12-29 00:00, a Monday, in µs since 1970
EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
EPOCH_WALL: Final = datetime(1970, 1, 1)  # noqa: DTZ001 - wall-clock arithmetic base
FIRST_ORDINAL: Final = date(1, 1, 1).toordinal() + 15
LAST_ORDINAL: Final = date(9999, 12, 31).toordinal() - 15
WINDOW_DAYS: Final = 7  # longest irregular stretch computed in one piece


def wall_minutes(periods: tuple[Period, ...]) -> WallMinutes:
    """Periods as minutes of the day."""
    return tuple(
        (start.hour * 60 + start.minute, end.hour * 60 + end.minute) for start, end in periods
    )


def period_minutes(period: tuple[int, int]) -> int:
    """Length of a period in minutes; ``end <= start`` runs into the next day."""
    start, end = period
    return end - start if end > start else end + 1440 - start


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort ``intervals`` in place and join those that overlap or touch."""
    intervals.sort()
    merged: list[tuple[int, int]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


class WeeklyPattern:
    """The regular weekly open set in wall-clock µs, with running sums for O(log) lookups.

    ``starts`` and ``ends`` are the merged open intervals as offsets from a Monday 00:00;
    ``open_before[i]`` is the open time of the week before interval ``i`` starts and
    ``open_through[i]`` the open time up to its end.
    """

    __slots__ = ("ends", "open_before", "open_per_week", "open_through", "starts")

    def __init__(self, weekly: tuple[WallMinutes, ...]) -> None:
        pieces: list[tuple[int, int]] = []
        for day, periods in enumerate(weekly):
            for period in periods:
                start = (day * 1440 + period[0]) * MINUTE_US
                end = start + period_minutes(period) * MINUTE_US
                if end > WEEK_US:  # Sunday's overnight period wraps into Monday
                    pieces.append((start, WEEK_US))
                    pieces.append((0, end - WEEK_US))
                else:
                    pieces.append((start, end))
        merged = merge_intervals(pieces)
        self.starts = tuple(start for start, _ in merged)
        self.ends = tuple(end for _, end in merged)
        running = [0]
        for start, end in merged:
            running.append(running[-1] + end - start)
        self.open_per_week = running[-1]
        self.open_before = tuple(running[:-1])
        self.open_through = tuple(running[1:])

    def open_until(self, wall: int) -> int:
        """Regular open time from the reference Monday to the wall-clock instant ``wall``."""
        weeks, into_week = divmod(wall - REFERENCE_MONDAY, WEEK_US)
        index = bisect_right(self.starts, into_week) - 1
        if index < 0:
            return weeks * self.open_per_week
        return (
            weeks * self.open_per_week
            + self.open_before[index]
            + min(into_week, self.ends[index])
            - self.starts[index]
        )

    def earliest_wall(self, counted: int) -> int:
        """Earliest wall-clock instant where :meth:`open_until` reaches ``counted``."""
        weeks, into_week = divmod(counted, self.open_per_week)
        if into_week == 0:  # reached at the end of the last period of the previous week
            weeks -= 1
            into_week = self.open_per_week
        index = bisect_left(self.open_through, into_week)
        return (
            REFERENCE_MONDAY
            + weeks * WEEK_US
            + self.starts[index]
            + into_week
            - self.open_before[index]
        )

    def latest_wall(self, counted: int) -> int:
        """Latest wall-clock instant where :meth:`open_until` equals ``counted``."""
        weeks, into_week = divmod(counted, self.open_per_week)
        index = bisect_right(self.open_before, into_week) - 1
        return (
            REFERENCE_MONDAY
            + weeks * WEEK_US
            + self.starts[index]
            + into_week
            - self.open_before[index]
        )

    def is_open(self, wall: int) -> bool:
        into_week = (wall - REFERENCE_MONDAY) % WEEK_US
        index = bisect_right(self.starts, into_week) - 1
        return index >= 0 and into_week < self.ends[index]


class Window:
    """An irregular stretch ``[start, end)`` of instants, with its exact open intervals.

    ``wall_start`` and ``wall_end`` are the wall clock of its first and last midnight (the
    stretch is whole dates). ``starts``/``ends`` are its open intervals as instants,
    ``open_before``/``open_through`` the open time from ``start`` to each one's start/end, and
    ``open_time`` the open time of the whole stretch.
    """

    __slots__ = (
        "end",
        "ends",
        "open_before",
        "open_through",
        "open_time",
        "start",
        "starts",
        "wall_end",
        "wall_start",
    )

    def __init__(
        self,
        start: int,
        end: int,
        wall_start: int,
        wall_end: int,
        intervals: list[tuple[int, int]],
    ) -> None:
        self.start, self.end, self.wall_start, self.wall_end = start, end, wall_start, wall_end
        self.starts = tuple(open_start for open_start, _ in intervals)
        self.ends = tuple(open_end for _, open_end in intervals)
        running = [0]
        for open_start, open_end in intervals:
            running.append(running[-1] + open_end - open_start)
        self.open_time = running[-1]
        self.open_before = tuple(running[:-1])
        self.open_through = tuple(running[1:])

    def open_until(self, instant: int) -> int:
        """Open time from the window's start to ``instant`` (inside the window)."""
        index = bisect_right(self.starts, instant) - 1
        if index < 0:
            return 0
        return self.open_before[index] + min(instant, self.ends[index]) - self.starts[index]

    def earliest(self, counted: int) -> int:
        """Earliest instant where :meth:`open_until` reaches ``counted`` (``> 0``)."""
        index = bisect_left(self.open_through, counted)
        return self.starts[index] + counted - self.open_before[index]

    def latest(self, counted: int) -> int:
        """Latest instant where :meth:`open_until` equals ``counted``."""
        index = bisect_right(self.open_before, counted) - 1
        return self.starts[index] + counted - self.open_before[index]

    def is_open(self, instant: int) -> bool:
        index = bisect_right(self.starts, instant) - 1
        return index >= 0 and instant < self.ends[index]


class Coverage:
    """An immutable snapshot of the counted open-time function over ``[start, end]``.

    ``counted(t)`` is the open time from an arbitrary origin to instant ``t``, and
    ``elapsed(a, b)`` is ``counted(b) - counted(a)``. The coverage spans the dates
    ``[first_day, end_day)`` and holds every irregular window among them, in order. Gap ``k``
    is the stretch before window ``k`` (after the last window for ``k == len(windows)``): there
    ``counted`` is the pattern's count at the wall clock ``t + gap_offsets[k]`` plus
    ``corrections[k]``, the sum of the corrections (exact minus regular open time) of the
    windows before it.
    """

    __slots__ = (
        "corrections",
        "counted_at_end",
        "counted_at_start",
        "counted_at_window_end",
        "counted_at_window_start",
        "end",
        "end_day",
        "ends_in_gap",
        "first_day",
        "gap_offsets",
        "pattern",
        "start",
        "window_ends",
        "window_starts",
        "windows",
    )

    def __init__(
        self,
        pattern: WeeklyPattern,
        first_day: int,
        end_day: int,
        start: int,
        end: int,
        windows: list[Window],
        start_offset: int,
    ) -> None:
        self.pattern, self.first_day, self.end_day = pattern, first_day, end_day
        self.start, self.end = start, end
        self.windows = tuple(windows)
        self.window_starts = tuple(window.start for window in windows)
        self.window_ends = tuple(window.end for window in windows)
        corrections = [0]
        at_window_start: list[int] = []
        gap_offsets = [start_offset if not windows else windows[0].wall_start - windows[0].start]
        for window in windows:
            regular = pattern.open_until(window.wall_end) - pattern.open_until(window.wall_start)
            at_window_start.append(pattern.open_until(window.wall_start) + corrections[-1])
            corrections.append(corrections[-1] + window.open_time - regular)
            gap_offsets.append(0)
        # A gap's offset is read at the window boundary next to it; a boundary between two
        # windows may be unclean (inside an offset change) but then the gap is empty and unused.
        for index in range(1, len(windows)):
            gap_offsets[index] = windows[index].wall_start - windows[index].start
        if windows:
            gap_offsets[-1] = windows[-1].wall_end - windows[-1].end
        self.corrections = tuple(corrections)
        self.counted_at_window_start = tuple(at_window_start)
        self.counted_at_window_end = tuple(
            counted + window.open_time
            for counted, window in zip(at_window_start, windows, strict=True)
        )
        self.gap_offsets = tuple(gap_offsets)
        self.ends_in_gap = not windows or windows[-1].end < end
        self.counted_at_start = self.counted(start)
        self.counted_at_end = self.counted(end)

    def counted(self, instant: int) -> int:
        """Open time from the coverage's origin to ``instant``."""
        index = bisect_right(self.window_starts, instant) - 1
        if index >= 0 and instant <= self.window_ends[index]:
            return self.counted_at_window_start[index] + self.windows[index].open_until(instant)
        return (
            self.pattern.open_until(instant + self.gap_offsets[index + 1])
            + self.corrections[index + 1]
        )

    def latest(self, target: int) -> int | None:
        """Largest instant where ``counted`` is ``target`` (``>= counted_at_start``).

        None if that instant may lie at or after ``end``.
        """
        gap = bisect_right(self.counted_at_window_start, target)
        if gap > 0 and self.counted_at_window_end[gap - 1] > target:
            return self.windows[gap - 1].latest(target - self.counted_at_window_start[gap - 1])
        if gap == len(self.windows):
            if not self.ends_in_gap or not self.pattern.open_per_week:
                return None
            instant = (
                self.pattern.latest_wall(target - self.corrections[gap]) - self.gap_offsets[gap]
            )
            return instant if instant < self.end else None
        return self.pattern.latest_wall(target - self.corrections[gap]) - self.gap_offsets[gap]

    def is_open(self, instant: int) -> bool:
        index = bisect_right(self.window_starts, instant) - 1
        if index >= 0 and instant < self.window_ends[index]:
            return self.windows[index].is_open(instant)
        return self.pattern.is_open(instant + self.gap_offsets[index + 1])

    def pieces(self, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        """Open intervals clipped to ``[lo, hi)``, in order (adjacent ones not yet merged)."""
        index = bisect_right(self.window_starts, lo) - 1
        cursor = lo
        if index >= 0 and cursor < self.window_ends[index]:
            yield from clip(self.windows[index], cursor, hi)
            cursor = self.window_ends[index]
        index += 1
        while cursor < hi:
            gap_end = min(self.window_starts[index] if index < len(self.windows) else self.end, hi)
            if cursor < gap_end:
                yield from self._gap_pieces(cursor, gap_end, self.gap_offsets[index])
            if index >= len(self.windows) or gap_end >= hi:
                break
            yield from clip(self.windows[index], max(cursor, self.window_starts[index]), hi)
            cursor = self.window_ends[index]
            index += 1

    def _gap_pieces(self, lo: int, hi: int, offset: int) -> Iterator[tuple[int, int]]:
        pattern = self.pattern
        if not pattern.open_per_week:
            return
        wall_lo, wall_hi = lo + offset, hi + offset
        week = (wall_lo - REFERENCE_MONDAY) // WEEK_US
        while True:
            week_start = REFERENCE_MONDAY + week * WEEK_US
            if week_start >= wall_hi:
                return
            for start, end in zip(pattern.starts, pattern.ends, strict=True):
                piece_lo = max(week_start + start, wall_lo)
                piece_hi = min(week_start + end, wall_hi)
                if piece_lo < piece_hi:
                    yield piece_lo - offset, piece_hi - offset
            week += 1


def clip(window: Window, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """The window's open intervals clipped to ``[lo, hi)``."""
    for start, end in zip(window.starts, window.ends, strict=True):
        piece_lo, piece_hi = max(start, lo), min(end, hi)
        if piece_lo < piece_hi:
            yield piece_lo, piece_hi


class Caches:
    """Mutable lazily-filled caches of one calendar (shared by copies, never compared)."""

    __slots__ = ("coverages", "rule_dates", "windows")

    def __init__(self) -> None:
        # A few disjoint coverages, most recent first, so queries in far-apart eras do not
        # force one coverage spanning everything between them.
        self.coverages: tuple[Coverage, ...] = ()
        self.rule_dates: dict[int, frozenset[int]] = {}  # year -> ordinals of rule holidays
        self.windows: dict[tuple[int, int, int], Window] = {}  # (first, stop, reach) -> window


def duration_us(value: object) -> int:
    """Microseconds of a ``timedelta`` (anything else is refused)."""
    if not isinstance(value, timedelta):
        raise ValidationError(
            f"duration must be a datetime.timedelta, got {type(value).__name__} "
            "(helpkit never takes float hours)"
        )
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def instant_us(value: datetime, name: str) -> int:
    """Microseconds since the epoch of an aware datetime (the hot path: no timedelta division)."""
    try:
        since_epoch = value - EPOCH
    except TypeError:  # naive (or not a datetime at all): let ensure_aware say what to do
        ensure_aware(value, name)
        raise
    given: object = value  # callers are not always type-checked
    if not isinstance(given, datetime):
        ensure_aware(value, name)
    return (since_epoch.days * 86_400 + since_epoch.seconds) * 1_000_000 + since_epoch.microseconds


class CalendarEngine:
    """The queries of :class:`~helpkit.calendar.BusinessCalendar`, on its normalised pieces.

    The calendar inherits this class rather than holding an engine object, so that a query
    costs no call more than the arithmetic itself; :meth:`_start_engine` fills the slots.
    """

    __slots__ = (
        "_caches",
        "_epoch_wall",
        "_exception_minutes",
        "_exception_ordinals",
        "_holiday_ordinals",
        "_holiday_rules",
        "_never_open",
        "_pattern",
        "_sorted_holiday_ordinals",
        "_tz",
        "_weekly_minutes",
    )

    _tz: ZoneInfo
    _weekly_minutes: tuple[WallMinutes, ...]
    _exception_minutes: dict[int, WallMinutes]  # date ordinal -> that date's periods
    _exception_ordinals: tuple[int, ...]  # sorted
    _holiday_ordinals: frozenset[int]
    _sorted_holiday_ordinals: tuple[int, ...]
    _holiday_rules: tuple[HolidayRule, ...]
    _pattern: WeeklyPattern
    _caches: Caches
    _never_open: bool  # no weekly hours and no exception with periods
    _epoch_wall: datetime  # 1970-01-01 00:00 wall clock, in the calendar's zone

    def _start_engine(
        self,
        tz: ZoneInfo,
        weekly: tuple[tuple[Period, ...], ...],
        holidays: frozenset[date],
        holiday_rules: tuple[HolidayRule, ...],
        exceptions: tuple[tuple[date, tuple[Period, ...]], ...],
    ) -> None:
        # object.__setattr__: the calendar is frozen
        set_slot = object.__setattr__
        set_slot(self, "_tz", tz)
        set_slot(self, "_weekly_minutes", tuple(wall_minutes(periods) for periods in weekly))
        set_slot(
            self,
            "_exception_minutes",
            {day.toordinal(): wall_minutes(periods) for day, periods in exceptions},
        )
        set_slot(self, "_exception_ordinals", tuple(sorted(self._exception_minutes)))
        ordinals = frozenset(day.toordinal() for day in holidays)
        set_slot(self, "_holiday_ordinals", ordinals)
        set_slot(self, "_sorted_holiday_ordinals", tuple(sorted(ordinals)))
        set_slot(self, "_holiday_rules", holiday_rules)
        set_slot(self, "_pattern", WeeklyPattern(self._weekly_minutes))
        set_slot(self, "_caches", Caches())
        set_slot(
            self,
            "_never_open",
            not self._pattern.open_per_week and not any(self._exception_minutes.values()),
        )
        set_slot(self, "_epoch_wall", EPOCH_WALL.replace(tzinfo=tz))

    # --- queries ---------------------------------------------------------------------------

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of open time after ``start`` (before it, if negative).

        For ``duration >= 0`` this is the earliest ``t >= start`` with
        ``elapsed(start, t) == duration``, so an addition that ends at a closing time returns
        that closing time; ``add(start, timedelta(0))`` is ``start``, even when closed.
        """
        start_us = instant_us(start, "start")
        delta_us = duration_us(duration)
        if delta_us == 0:
            return start.astimezone(self._tz)
        if self._never_open:
            raise CalendarError(f"{self!r} has no open time; cannot add {duration}")
        coverage = self._coverage(start_us, start_us)
        while True:
            target = coverage.counted(start_us) + delta_us
            if delta_us > 0 and target <= coverage.counted_at_end:
                index = bisect_left(coverage.counted_at_window_end, target)
                if (
                    index < len(coverage.windows)
                    and coverage.counted_at_window_start[index] < target
                ):
                    return self._to_datetime(
                        coverage.windows[index].earliest(
                            target - coverage.counted_at_window_start[index]
                        )
                    )
                # In a gap the wall-clock time is unambiguous: build it directly (fold=0),
                # which is cheaper than converting the instant through the zone.
                wall = coverage.pattern.earliest_wall(target - coverage.corrections[index])
                try:
                    return self._epoch_wall + timedelta(microseconds=wall)
                except OverflowError as exc:
                    raise CalendarError("the result is outside the range of datetime") from exc
            if delta_us < 0 and target >= coverage.counted_at_start:
                found = coverage.latest(target)
                assert found is not None  # found < start < coverage.end
                return self._to_datetime(found)
            coverage = self._widen(
                coverage, forward=delta_us > 0, missing=abs(delta_us), start=start_us
            )

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Open time between two instants, negative when ``end`` is before ``start``."""
        start_us = instant_us(start, "start")
        end_us = instant_us(end, "end")
        coverage = self._coverage(min(start_us, end_us), max(start_us, end_us))
        return timedelta(microseconds=coverage.counted(end_us) - coverage.counted(start_us))

    def is_open(self, t: datetime) -> bool:
        """Whether ``t`` lies in open time (periods include their start, not their end)."""
        instant = instant_us(t, "t")
        return self._coverage(instant, instant).is_open(instant)

    def next_open(self, t: datetime) -> datetime:
        """``t`` if open, else the next instant the calendar opens."""
        instant = instant_us(t, "t")
        if self._never_open:
            raise CalendarError(f"{self!r} has no open time")
        coverage = self._coverage(instant, instant)
        while True:
            found = coverage.latest(coverage.counted(instant))
            if found is not None:
                return t.astimezone(self._tz) if found == instant else self._to_datetime(found)
            coverage = self._widen(coverage, forward=True, missing=1, start=instant)

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals ``(from, to)`` between two instants, clipped to them, in order."""
        start_us = instant_us(start, "start")
        end_us = instant_us(end, "end")
        return self._intervals(start_us, end_us)

    # --- instants and dates ----------------------------------------------------------------

    def _to_datetime(self, instant: int) -> datetime:
        try:
            # aware + timedelta is field arithmetic, so this holds the UTC fields under the
            # calendar's tzinfo: exactly what fromutc expects
            return self._tz.fromutc(self._epoch_wall + timedelta(microseconds=instant))
        except OverflowError as exc:
            raise CalendarError("the result is outside the range of datetime") from exc

    def _intervals(self, lo: int, hi: int) -> Iterator[tuple[datetime, datetime]]:
        pending: tuple[int, int] | None = None
        cursor = lo
        while cursor < hi:
            # a year at a time, so a far end costs nothing upfront
            segment_end = min(hi, cursor + 366 * DAY_US)
            coverage = self._coverage(cursor, segment_end)
            for start, end in coverage.pieces(cursor, segment_end):
                if pending is not None and start <= pending[1]:
                    pending = (pending[0], max(end, pending[1]))
                    continue
                if pending is not None:
                    yield self._to_datetime(pending[0]), self._to_datetime(pending[1])
                pending = (start, end)
            cursor = segment_end
        if pending is not None:
            yield self._to_datetime(pending[0]), self._to_datetime(pending[1])

    def _instant_of(self, ordinal: int, minute: int) -> int:
        """The instant of wall-clock ``minute`` on date ``ordinal`` (PEP 495, fold=0)."""
        day = date.fromordinal(ordinal)
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self._tz)
        return (local - EPOCH) // US

    def _rule_dates(self, year: int) -> frozenset[int]:
        """Ordinals of the dates of ``year`` that a holiday rule covers."""
        ordinals = self._caches.rule_dates.get(year)
        if ordinals is None:
            first = date(year, 1, 1)
            stop = date(year + 1, 1, 1) if year < 9999 else date.max
            ordinals = frozenset(
                day.toordinal() for rule in self._holiday_rules for day in rule.between(first, stop)
            )
            self._caches.rule_dates[year] = ordinals
        return ordinals

    def _periods_on(self, ordinal: int) -> WallMinutes:
        exception = self._exception_minutes.get(ordinal)
        if exception is not None:
            return exception
        if ordinal in self._holiday_ordinals or (
            self._holiday_rules and ordinal in self._rule_dates(date.fromordinal(ordinal).year)
        ):
            return ()
        return self._weekly_minutes[(ordinal - 1) % 7]

    def _irregular_dates(self, first: int, stop: int) -> list[int]:
        """Dates in ``[first, stop)`` whose periods differ from their weekday's regular ones."""
        found: set[int] = set()
        for ordinals in (self._sorted_holiday_ordinals, self._exception_ordinals):
            found.update(ordinals[bisect_left(ordinals, first) : bisect_left(ordinals, stop)])
        if self._holiday_rules:
            first_year = date.fromordinal(first).year
            for year in range(first_year, date.fromordinal(stop - 1).year + 1):
                found.update(
                    ordinal for ordinal in self._rule_dates(year) if first <= ordinal < stop
                )
        return sorted(
            ordinal
            for ordinal in found
            if self._periods_on(ordinal) != self._weekly_minutes[(ordinal - 1) % 7]
        )

    # --- windows and coverages -------------------------------------------------------------

    def _window(self, first: int, stop: int, reach: int) -> Window:
        """The exact open intervals of the stretch of dates ``[first, stop)``.

        ``reach`` is how many more dates either way can have periods inside the stretch
        because of a gap next to it (see :meth:`_build`); usually none.
        """
        key = (first, stop, reach)
        window = self._caches.windows.get(key)
        if window is not None:
            return window
        start, end = self._instant_of(first, 0), self._instant_of(stop, 0)
        end = max(end, start)
        pieces: list[tuple[int, int]] = []
        # Periods of the day before can run past midnight into the stretch; near a gap, those
        # of ``reach`` more dates either way can reach it too.
        for ordinal in range(first - 1 - reach, stop + reach):
            for period in self._periods_on(ordinal):
                period_start = self._instant_of(ordinal, period[0])
                end_ordinal = ordinal if period[1] > period[0] else ordinal + 1
                period_end = self._instant_of(end_ordinal, period[1])
                if period_end <= period_start:
                    continue  # the contract: an empty period (e.g. inside a DST gap)
                piece_start, piece_end = max(period_start, start), min(period_end, end)
                if piece_start < piece_end:
                    pieces.append((piece_start, piece_end))
        wall_start = (first - EPOCH_ORDINAL) * DAY_US
        wall_end = (stop - EPOCH_ORDINAL) * DAY_US
        window = Window(start, end, wall_start, wall_end, merge_intervals(pieces))
        self._caches.windows[key] = window
        return window

    def _build(self, first_day: int, end_day: int) -> Coverage:
        """Coverage of the dates ``[first_day, end_day)``: every irregular stretch computed."""
        # A date's periods end before the midnight two days later, so an irregular date
        # disturbs two days; an offset change disturbs the days whose periods can cross it
        # (that span also covers an irregular date whose periods a gap pushes further).
        search_first, search_end = first_day - 6, end_day + 6
        spans = [
            (ordinal, ordinal + 2) for ordinal in self._irregular_dates(search_first, search_end)
        ]
        # Long stretches are cut into pieces so a lookup stays cheap; a piece reads the periods
        # of its own dates and of the date before. Near some gaps that is not enough: a wall
        # time in a gap is read with the offset before it, so it lands after the instants of
        # the wall times just after the gap (by up to the gap's length). A piece starting at a
        # midnight less than that after the gap can hold the end of a period of two days
        # before (Samoa's skipped 2011-12-30, Nuuk's gap from 23:00 to 00:00), and a piece
        # ending at a midnight inside the gap the start of a period of the date after it
        # (Toronto, 1919-03-31). So when a midnight falls after a gap starts and less than
        # twice its length later, the pieces of its stretch read one more date either way per
        # day (or part of one) that the gap skips.
        reaches: list[tuple[int, int]] = []  # (first date of a gap's span, dates to add)
        for instant, offset_before, offset_after in transitions_between(
            self._tz,
            (search_first - EPOCH_ORDINAL - 2) * DAY_US,
            (search_end - EPOCH_ORDINAL + 2) * DAY_US,
        ):
            wall_before, wall_after = instant + offset_before, instant + offset_after
            span_first = EPOCH_ORDINAL + min(wall_before, wall_after) // DAY_US - 1
            spans.append((span_first, EPOCH_ORDINAL + max(wall_before, wall_after) // DAY_US + 2))
            gap = offset_after - offset_before
            if gap > 0 and (wall_before // DAY_US + 1) * DAY_US < wall_before + 2 * gap:
                reaches.append((span_first, -(-gap // DAY_US)))
        windows: list[Window] = []
        for span_first, span_stop in merge_intervals(spans):
            reach = max(
                (dates for day, dates in reaches if span_first <= day < span_stop), default=0
            )
            chunk_first, span_stop = max(span_first, first_day), min(span_stop, end_day)
            while chunk_first < span_stop:
                chunk_stop = min(span_stop, chunk_first + WINDOW_DAYS)
                windows.append(self._window(chunk_first, chunk_stop, reach))
                chunk_first = chunk_stop
        start, end = self._instant_of(first_day, 0), self._instant_of(end_day, 0)
        return Coverage(
            self._pattern, first_day, end_day, start, end, windows, offset_at(self._tz, start)
        )

    def _coverage(self, lo: int, hi: int) -> Coverage:
        """A coverage with ``start <= lo`` and ``hi < end``, extending a cached one if near."""
        coverages = self._caches.coverages
        # the usual case, kept short
        if coverages and coverages[0].start <= lo and hi < coverages[0].end:
            return coverages[0]
        for coverage in coverages:
            if coverage.start <= lo and hi < coverage.end:
                return coverage
        needed_first = EPOCH_ORDINAL + lo // DAY_US - 2
        needed_end = EPOCH_ORDINAL + hi // DAY_US + 3
        if needed_first < FIRST_ORDINAL or needed_end > LAST_ORDINAL:
            raise CalendarError("the instant is too close to the limits of datetime")
        nearby: Coverage | None = None
        for coverage in coverages:
            days = coverage.end_day - coverage.first_day
            distance = max(coverage.first_day - needed_end, needed_first - coverage.end_day)
            if distance <= max(days, 366):
                nearby = coverage
                break
        if nearby is None:
            first_day, end_day = needed_first - 45, needed_end + 45
        else:
            # geometric, so extensions stay rare
            margin = max(92, (nearby.end_day - nearby.first_day) // 2)
            first_day = (
                min(nearby.first_day, needed_first - margin)
                if lo < nearby.start
                else nearby.first_day
            )
            end_day = (
                max(nearby.end_day, needed_end + margin) if hi >= nearby.end else nearby.end_day
            )
        built = self._build(max(first_day, FIRST_ORDINAL), min(end_day, LAST_ORDINAL))
        return self._remember(built, nearby)

    def _remember(self, new: Coverage, replaced: Coverage | None) -> Coverage:
        # A plain attribute swap of an immutable tuple: concurrent readers keep the snapshot
        # they took, and a lost update only costs a recomputation later.
        others = tuple(kept for kept in self._caches.coverages if kept is not replaced)
        self._caches.coverages = (new, *others[:3])
        return new

    def _widen(self, coverage: Coverage, *, forward: bool, missing: int, start: int) -> Coverage:
        """A wider coverage for an ``add`` that ran past ``coverage``; raises if it never could."""
        per_week = self._pattern.open_per_week
        days = coverage.end_day - coverage.first_day
        if per_week:
            # ~7 days a week, plus holidays
            more_days = max((missing // per_week + 1) * 9 + 14, days // 2)
        else:
            # Only exceptions open anything; past the last (or before the first) one, nothing.
            open_days = [ordinal for ordinal, periods in self._exception_minutes.items() if periods]
            edge = max(open_days) + 2 if forward else min(open_days) - 1
            if (forward and coverage.end_day > edge + 1) or (
                not forward and coverage.first_day < edge - 1
            ):
                when = self._to_datetime(start).isoformat()
                raise CalendarError(
                    f"no open time {'after' if forward else 'before'} {when}: the calendar has "
                    "no weekly hours and no exception beyond that"
                )
            more_days = abs(edge - (coverage.end_day if forward else coverage.first_day)) + 8
        if forward:
            first_day = coverage.first_day
            end_day = min(coverage.end_day + more_days, LAST_ORDINAL)
            if end_day <= coverage.end_day:
                raise CalendarError("the result would be after the year 9999")
        else:
            first_day = max(coverage.first_day - more_days, FIRST_ORDINAL)
            end_day = coverage.end_day
            if first_day >= coverage.first_day:
                raise CalendarError("the result would be before the year 1")
        new = self._remember(self._build(first_day, end_day), coverage)
        if forward:
            gained = new.counted_at_end - new.counted(coverage.end)
        else:
            gained = new.counted(coverage.start) - new.counted_at_start
        added_days = abs(end_day - first_day - days)
        if per_week and not gained and added_days >= 3 * 366:
            edge_day = self._to_datetime(coverage.end if forward else coverage.start).date()
            raise CalendarError(
                f"no open time in the {added_days // 365} years "
                f"{'after' if forward else 'before'} {edge_day}: "
                "the holidays cancel every working period"
            )
        return new
