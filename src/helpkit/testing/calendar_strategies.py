"""Hypothesis strategies for business calendars, aware instants and business durations.

Import them from :mod:`helpkit.testing.strategies`. They need Hypothesis (the ``testing``
extra), which helpkit itself never imports at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from helpkit._calendar_zones import EPOCH, US, transitions_between
from helpkit.calendar import BusinessCalendar, Period
from helpkit.holidays import HolidayRule

__all__ = ["AWKWARD_ZONES", "aware_datetimes", "business_calendars", "business_durations"]

#: Zones whose rules break naive time arithmetic: a 30-minute DST shift (Lord Howe), a skipped
#: calendar day (Apia, 2011-12-30), a +05:45 offset (Kathmandu), and the usual DST pairs.
AWKWARD_ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Paris",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Asia/Kathmandu",
)

_RULES = (
    "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
    "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1",
    "FREQ=YEARLY;BYEASTER=1",
    "FREQ=YEARLY;BYMONTH=5;BYDAY=1MO",
    "DTSTART:19800104\nRRULE:FREQ=MONTHLY;BYDAY=1FR",
    "DTSTART:19800102\nRRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=WE",
)

_DEFAULT_MIN = datetime(2000, 1, 1, tzinfo=UTC)
_DEFAULT_MAX = datetime(2040, 12, 31, tzinfo=UTC)


def _zones(timezones: Sequence[str] | st.SearchStrategy[str] | None) -> st.SearchStrategy[str]:
    if timezones is None:
        return st.sampled_from(AWKWARD_ZONES)
    if isinstance(timezones, st.SearchStrategy):
        return timezones
    if isinstance(timezones, str) or not timezones:
        raise InvalidArgument("timezones must be a non-empty sequence of IANA names or a strategy")
    return st.sampled_from(list(timezones))


def _minutes() -> st.SearchStrategy[int]:
    # Round times (on the hour, half-hour) are what real calendars use and what collides with
    # DST transitions; odd minutes find the off-by-one errors.
    return st.one_of(
        st.integers(0, 47).map(lambda h: h * 30),
        st.integers(0, 1439),
    )


@st.composite
def _period(draw: st.DrawFn, allow_overnight: bool) -> Period:
    start = draw(_minutes())
    if allow_overnight:
        length = draw(st.one_of(st.integers(1, 1440), st.sampled_from([60, 240, 480, 1440])))
    else:
        if start == 1439:
            start = 1438
        length = draw(st.integers(1, 1439 - start))
    end = (start + length) % 1440
    return (time(start // 60, start % 60), time(end // 60, end % 60))


def _check_range(name: str, low: object, high: object) -> None:
    if low is not None and high is not None and low > high:  # type: ignore[operator]
        raise InvalidArgument(f"{name}: min_value={low!r} is greater than max_value={high!r}")


@st.composite
def _calendars(
    draw: st.DrawFn,
    zones: st.SearchStrategy[str],
    min_periods: int,
    max_periods: int,
    allow_overnight: bool,
    allow_holidays: bool,
    allow_holiday_rules: bool,
    allow_exceptions: bool,
    min_date: date,
    max_date: date,
    max_holidays: int,
    max_exceptions: int,
) -> BusinessCalendar:
    zone = draw(zones)
    count = draw(st.integers(min_periods, max_periods))
    weekly: dict[int, list[Period]] = {}
    for _ in range(count):
        day = draw(st.integers(0, 6))
        weekly.setdefault(day, []).append(draw(_period(allow_overnight)))
    dates = st.dates(min_value=min_date, max_value=max_date)
    holidays: frozenset[date] = frozenset()
    rules: list[HolidayRule] = []
    exceptions: dict[date, list[Period]] = {}
    if allow_holidays:
        holidays = draw(st.frozensets(dates, max_size=max_holidays))
    if allow_holiday_rules:
        rules = [HolidayRule(r) for r in draw(st.lists(st.sampled_from(_RULES), max_size=2))]
    if allow_exceptions:
        exceptions = draw(
            st.dictionaries(
                dates,
                st.lists(_period(allow_overnight), max_size=2),
                max_size=max_exceptions,
            )
        )
    return BusinessCalendar(
        zone, weekly, holidays=holidays, holiday_rules=rules, exceptions=exceptions
    )


def business_calendars(
    *,
    timezones: Sequence[str] | st.SearchStrategy[str] | None = None,
    min_periods: int = 1,
    max_periods: int = 8,
    allow_overnight: bool = True,
    allow_holidays: bool = True,
    allow_holiday_rules: bool = False,
    allow_exceptions: bool = True,
    min_date: date = date(2000, 1, 1),
    max_date: date = date(2040, 12, 31),
    max_holidays: int = 12,
    max_exceptions: int = 6,
) -> st.SearchStrategy[BusinessCalendar]:
    """Business calendars with between ``min_periods`` and ``max_periods`` weekly periods.

    Zones come from ``timezones`` (IANA names, or a strategy of them; by default
    :data:`AWKWARD_ZONES`). Periods start on whole minutes, may overlap, and may run past
    midnight unless ``allow_overnight=False``. Holidays and exceptions fall between
    ``min_date`` and ``max_date`` (keep that range near the instants you test, or they will
    rarely matter). With ``min_periods=0`` a calendar may have no weekly hours at all.
    """
    if not 0 <= min_periods <= max_periods:
        raise InvalidArgument(
            f"need 0 <= min_periods <= max_periods, got {min_periods} and {max_periods}"
        )
    if min_date > max_date:
        raise InvalidArgument(f"min_date={min_date} is after max_date={max_date}")
    if max_holidays < 0 or max_exceptions < 0:
        raise InvalidArgument("max_holidays and max_exceptions must be >= 0")
    return _calendars(
        _zones(timezones),
        min_periods,
        max_periods,
        allow_overnight,
        allow_holidays,
        allow_holiday_rules,
        allow_exceptions,
        min_date,
        max_date,
        max_holidays,
        max_exceptions,
    )


def _aware_bound(value: datetime, name: str) -> int:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidArgument(f"{name} must be an aware datetime, got {value!r}")
    return (value - EPOCH) // US


@st.composite
def _instants(
    draw: st.DrawFn, lo: int, hi: int, zones: st.SearchStrategy[str], near_transitions: bool
) -> datetime:
    zone = ZoneInfo(draw(zones))
    minute = 60_000_000
    if near_transitions:
        changes = [t for t, _, _ in transitions_between(zone, lo, hi + 1)]
        near: bool = bool(changes) and draw(st.booleans())
        if near:
            centre = draw(st.sampled_from(changes))
            shift = draw(st.integers(-48 * 60, 48 * 60)) * minute
            fine = draw(st.one_of(st.just(0), st.integers(0, minute - 1)))
            us = min(max(centre + shift + fine, lo), hi)
            return (EPOCH + timedelta(microseconds=us)).astimezone(zone)
    whole = draw(st.booleans())
    if whole:  # period boundaries sit on whole minutes
        first, last = -(-lo // minute), hi // minute
        if first <= last:
            us = draw(st.integers(first, last)) * minute
            return (EPOCH + timedelta(microseconds=us)).astimezone(zone)
    us = draw(st.integers(lo, hi))
    return (EPOCH + timedelta(microseconds=us)).astimezone(zone)


def aware_datetimes(
    *,
    min_value: datetime = _DEFAULT_MIN,
    max_value: datetime = _DEFAULT_MAX,
    timezones: Sequence[str] | st.SearchStrategy[str] | None = None,
    near_transitions: bool = True,
) -> st.SearchStrategy[datetime]:
    """Aware datetimes between two aware bounds (inclusive), in zones from ``timezones``.

    Values are often on whole minutes, and with ``near_transitions`` (the default) often
    within two days of a UTC-offset change of their zone, where business-time code breaks.
    """
    lo = _aware_bound(min_value, "min_value")
    hi = _aware_bound(max_value, "max_value")
    _check_range("aware_datetimes", min_value, max_value)
    return _instants(lo, hi, _zones(timezones), near_transitions)


def business_durations(
    *,
    min_value: timedelta = timedelta(0),
    max_value: timedelta = timedelta(days=30),
    allow_negative: bool = False,
    whole_minutes: bool = False,
) -> st.SearchStrategy[timedelta]:
    """Durations between ``min_value`` and ``max_value`` (inclusive, both >= 0).

    With ``allow_negative`` each value may also come negated (from ``-max_value`` to
    ``-min_value``). With ``whole_minutes`` values are whole minutes, like most SLA targets.
    """
    for name, value in (("min_value", min_value), ("max_value", max_value)):
        if not isinstance(value, timedelta) or value < timedelta(0):
            raise InvalidArgument(f"{name} must be a timedelta >= 0, got {value!r}")
    _check_range("business_durations", min_value, max_value)
    unit = timedelta(minutes=1) if whole_minutes else US
    first, last = -(-min_value // unit), max_value // unit
    if first > last:
        raise InvalidArgument(f"no whole minute between {min_value} and {max_value}")
    positive = st.integers(first, last).map(lambda n: n * unit)
    if not allow_negative:
        return positive
    return st.tuples(positive, st.booleans()).map(lambda p: -p[0] if p[1] else p[0])
