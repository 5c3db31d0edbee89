"""Worked examples of docs/design.md ("Business calendar") and what a user sees at the edges."""

from __future__ import annotations

import copy
import pickle
import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest

from helpkit.calendar import BusinessCalendar
from helpkit.errors import CalendarError, NaiveDatetimeError, ValidationError

PARIS = ZoneInfo("Europe/Paris")
H = timedelta(hours=1)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=UTC)


def paris(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


@pytest.fixture
def office() -> BusinessCalendar:
    """Mon-Fri 09:00-17:00 UTC (2026-11-23 is a Monday)."""
    return BusinessCalendar("UTC", {d: [(time(9), time(17))] for d in range(5)})


# --- docs/design.md worked examples----------------------------------------------------------


def test_monday_nine_plus_eight_hours_is_monday_five(office: BusinessCalendar) -> None:
    assert office.add(utc(2026, 11, 23, 9), 8 * H) == utc(2026, 11, 23, 17)


def test_saturday_noon_plus_one_hour_is_monday_ten(office: BusinessCalendar) -> None:
    assert office.add(utc(2026, 11, 28, 12), H) == utc(2026, 11, 30, 10)


def test_tuesday_nine_minus_one_hour_is_monday_four(office: BusinessCalendar) -> None:
    assert office.add(utc(2026, 11, 24, 9), -H) == utc(2026, 11, 23, 16)


def test_elapsed_over_a_weekend_is_one_working_day_and_signed(office: BusinessCalendar) -> None:
    fri, mon = utc(2026, 11, 27, 18), utc(2026, 11, 30, 18)
    assert office.elapsed(fri, mon) == 8 * H
    assert office.elapsed(mon, fri) == -8 * H


def test_always_open_paris_days_have_23_and_25_hours() -> None:
    cal = BusinessCalendar.always("Europe/Paris")
    assert cal.elapsed(paris(2026, 3, 29), paris(2026, 3, 30)) == 23 * H
    assert cal.elapsed(paris(2026, 10, 25), paris(2026, 10, 26)) == 25 * H
    assert cal.elapsed(paris(2026, 3, 28), paris(2026, 3, 29)) == 24 * H


# --- conventions at the edges ----------------------------------------------------------------


def test_adding_to_exactly_closing_time_returns_closing_time(office: BusinessCalendar) -> None:
    # a whole week of work from Monday morning ends Friday 17:00, not next Monday 09:00
    assert office.add(utc(2026, 11, 23, 9), 40 * H) == utc(2026, 11, 27, 17)
    assert office.add(utc(2026, 11, 23, 9), 80 * H) == utc(2026, 12, 4, 17)


def test_subtracting_to_exactly_opening_time_returns_opening_time(
    office: BusinessCalendar,
) -> None:
    assert office.add(utc(2026, 11, 27, 17), -40 * H) == utc(2026, 11, 23, 9)


def test_adding_zero_returns_the_start_even_when_closed(office: BusinessCalendar) -> None:
    sunday = utc(2026, 11, 29, 3, 14, 15, 926535)
    assert office.add(sunday, timedelta(0)) == sunday
    assert office.add(sunday, timedelta(microseconds=1)) == utc(2026, 11, 30, 9, 0, 0, 1)


def test_adding_zero_at_a_repeated_wall_time_keeps_the_instant() -> None:
    ny = ZoneInfo("America/New_York")
    second = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ny)  # the second 01:30, EST
    cal = BusinessCalendar.always("America/New_York")
    assert cal.add(second, timedelta(0)).astimezone(UTC) == utc(2026, 11, 1, 6, 30)
    assert cal.add(second, H).astimezone(UTC) == utc(2026, 11, 1, 7, 30)


def test_results_are_in_the_calendar_zone() -> None:
    cal = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="Europe/Paris")
    got = cal.add(utc(2026, 11, 23, 8), H)  # 09:00 in Paris + 1h
    assert got == paris(2026, 11, 23, 10)
    assert got.tzinfo is PARIS
    assert cal.next_open(utc(2026, 11, 23, 20)).tzinfo is PARIS


def test_is_open_includes_the_start_and_not_the_end(office: BusinessCalendar) -> None:
    assert office.is_open(utc(2026, 11, 23, 9))
    assert not office.is_open(utc(2026, 11, 23, 17))
    assert office.is_open(utc(2026, 11, 23, 16, 59, 59, 999999))


def test_next_open(office: BusinessCalendar) -> None:
    assert office.next_open(utc(2026, 11, 23, 10)) == utc(2026, 11, 23, 10)
    assert office.next_open(utc(2026, 11, 27, 17)) == utc(2026, 11, 30, 9)


def test_open_intervals_are_clipped_and_merged() -> None:
    cal = BusinessCalendar.parse("mon-fri 09:00-12:00,12:00-17:00", timezone="UTC")
    got = list(cal.open_intervals(utc(2026, 11, 27, 10), utc(2026, 11, 30, 11)))
    assert got == [
        (utc(2026, 11, 27, 10), utc(2026, 11, 27, 17)),
        (utc(2026, 11, 30, 9), utc(2026, 11, 30, 11)),
    ]
    assert list(cal.open_intervals(utc(2026, 11, 30, 11), utc(2026, 11, 27, 10))) == []


def test_always_open_intervals_are_one_piece_across_weeks() -> None:
    cal = BusinessCalendar.always("UTC")
    a, b = utc(2026, 1, 1), utc(2026, 3, 1)
    assert list(cal.open_intervals(a, b)) == [(a, b)]


# --- DST, overnight, holidays, exceptions ----------------------------------------------------


def test_dst_inside_open_hours_changes_that_days_length() -> None:
    night = BusinessCalendar.parse("mon-sun 00:00-06:00", timezone="Europe/Paris")
    assert night.elapsed(paris(2026, 3, 29), paris(2026, 3, 29, 12)) == 5 * H
    assert night.elapsed(paris(2026, 10, 25), paris(2026, 10, 25, 12)) == 7 * H
    assert night.add(paris(2026, 10, 25), 6 * H) == paris(2026, 10, 25, 5)


def test_a_period_starting_in_the_dst_gap_starts_after_the_gap() -> None:
    cal = BusinessCalendar.parse("sun 02:30-04:00", timezone="Europe/Paris")
    # 02:30 does not exist on 2026-03-29; read with the winter offset it is 03:30 summer time
    assert cal.next_open(paris(2026, 3, 29)) == paris(2026, 3, 29, 3, 30)
    assert cal.elapsed(paris(2026, 3, 29), paris(2026, 3, 30)) == timedelta(minutes=30)


def test_a_period_whose_end_instant_is_not_after_its_start_is_empty() -> None:
    # 02:30 reads as 03:30 summer time, 03:15 is 03:15: the end instant comes first
    cal = BusinessCalendar.parse("sun 02:30-03:15; mon 09:00-10:00", timezone="Europe/Paris")
    assert cal.elapsed(paris(2026, 3, 29), paris(2026, 3, 30)) == timedelta(0)
    assert cal.next_open(paris(2026, 3, 29)) == paris(2026, 3, 30, 9)
    # both ends in the gap: both move forward by the hour, the period keeps its 40 minutes
    inside = BusinessCalendar.parse("sun 02:10-02:50", timezone="Europe/Paris")
    assert list(inside.open_intervals(paris(2026, 3, 29), paris(2026, 3, 30))) == [
        (paris(2026, 3, 29, 3, 10), paris(2026, 3, 29, 3, 50))
    ]


def test_repeated_wall_time_takes_its_first_occurrence() -> None:
    cal = BusinessCalendar.parse("sun 02:30-03:00", timezone="Europe/Paris")
    # 02:30 (first, summer time) to 03:00 (winter time): 1h30 of real time
    assert cal.elapsed(paris(2026, 10, 25), paris(2026, 10, 26)) == timedelta(minutes=90)


def test_samoa_skipped_friday_2011_12_30() -> None:
    cal = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="Pacific/Apia")
    apia = ZoneInfo("Pacific/Apia")
    thu = datetime(2011, 12, 29, 9, tzinfo=apia)
    # Friday 30 never happened; its periods land on Saturday's instants, Saturday has none
    assert cal.add(thu, 9 * H) == datetime(2011, 12, 31, 10, tzinfo=apia)
    assert cal.elapsed(thu, datetime(2012, 1, 3, tzinfo=apia)) == 24 * H


# Found by Hypothesis against tests/calendar_reference.py. Holidays and exceptions chain the
# irregular days before the skipped date, so the engine cut its stretch of irregular days into
# pieces, one of them starting on the 31st; that piece looked back one date only and missed
# Thursday's shift, which ends on the skipped date.
APIA_THURSDAY_NIGHT = BusinessCalendar(
    "Pacific/Apia",
    {0: [(time(0), time(0, 1))], 1: [(time(0), time(0, 1))], 3: [(time(16, 30), time(0, 1))]},
    holidays={date(2011, 12, 27)},
    exceptions={
        date(2011, 12, 24): [(time(0), time(0, 1))],
        date(2011, 12, 25): [(time(0), time(0, 1))],
    },
)


def test_a_period_ending_on_the_skipped_day_ends_after_the_gap() -> None:
    cal = APIA_THURSDAY_NIGHT
    apia = cal.tzinfo
    # Thursday 29 16:30 (UTC-10) to "Friday 30 00:01", a wall time in the gap: read with the
    # offset before it (UTC-10) it is 10:01 UTC, 00:01 on Saturday 31 (UTC+14).
    start = datetime(2011, 12, 29, 16, 30, tzinfo=apia)
    end = datetime(2011, 12, 31, 0, 1, tzinfo=apia)
    assert end.astimezone(UTC) == datetime(2011, 12, 30, 0, 1, tzinfo=UTC) + 10 * H
    saturday = datetime(2011, 12, 31, tzinfo=apia)
    assert cal.is_open(saturday)
    assert not cal.is_open(end)
    assert cal.next_open(saturday) == saturday
    assert cal.next_open(end) == datetime(2012, 1, 2, tzinfo=apia)
    assert cal.elapsed(start, end) == 7 * H + timedelta(minutes=31)
    assert cal.elapsed(saturday, datetime(2012, 1, 1, tzinfo=apia)) == timedelta(minutes=1)
    assert cal.add(start, 7 * H + timedelta(minutes=31)) == end
    assert cal.add(end, -(7 * H + timedelta(minutes=31))) == start
    # a minute before Saturday 00:00 (10:00 UTC) is Thursday 23:59, UTC-10
    assert cal.add(saturday, -timedelta(minutes=1)) == datetime(2011, 12, 29, 23, 59, tzinfo=apia)
    assert list(cal.open_intervals(start - H, end + H)) == [(start, end)]


@pytest.mark.parametrize(
    ("zone", "skipped"),
    [
        ("Pacific/Apia", date(2011, 12, 30)),  # UTC-10 to UTC+14
        ("Pacific/Fakaofo", date(2011, 12, 30)),  # UTC-11 to UTC+13
        ("Pacific/Kwajalein", date(1993, 8, 21)),  # UTC-12 to UTC+12
    ],
)
def test_a_night_shift_into_a_skipped_day_among_holidays(zone: str, skipped: date) -> None:
    tz = ZoneInfo(zone)
    day_before = skipped - timedelta(days=1)
    weekly = {day: [(time(12), time(12, 1))] for day in range(7)}
    weekly[day_before.weekday()] = [(time(18, 30), time(0, 1))]
    # holidays on the five days before make one irregular stretch of nine days with the gap,
    # computed in pieces of at most a week: the second piece starts the day after the gap
    holidays = {skipped - timedelta(days=k) for k in range(2, 7)}
    cal = BusinessCalendar(zone, weekly, holidays=holidays)
    start = datetime.combine(day_before, time(18, 30), tzinfo=tz)
    after_gap = datetime.combine(skipped + timedelta(days=1), time(), tzinfo=tz)
    assert cal.is_open(after_gap)
    assert cal.elapsed(start, after_gap + H) == 5 * H + timedelta(minutes=31)
    assert cal.add(start, 5 * H + timedelta(minutes=31)) == after_gap + timedelta(minutes=1)


def test_a_shift_ending_in_a_gap_just_before_midnight_ends_after_that_midnight() -> None:
    # Nuuk springs forward from 23:00 (UTC-2) to 00:00 (UTC-1), every year since 2024. Friday
    # 27 March 2026's shift to Saturday 23:30, a wall time in the gap, ends at 00:30 on Sunday,
    # after Sunday's midnight: the stretch of irregular days starting that midnight must see
    # a period of two days before.
    nuuk = ZoneInfo("America/Nuuk")
    weekly = {day: [(time(12), time(12, 1))] for day in range(7)}
    weekly[4] = [(time(23, 30), time(23, 30))]  # Friday 23:30 to Saturday 23:30
    holidays = {date(2026, 3, day) for day in range(22, 27)}
    cal = BusinessCalendar("America/Nuuk", weekly, holidays=holidays)
    start = datetime(2026, 3, 27, 23, 30, tzinfo=nuuk)
    end = datetime(2026, 3, 29, 0, 30, tzinfo=nuuk)
    assert cal.is_open(datetime(2026, 3, 29, 0, 15, tzinfo=nuuk))
    assert list(cal.open_intervals(start - H, end + H)) == [(start, end)]
    assert cal.elapsed(start, end) == 24 * H
    assert cal.add(start, 24 * H) == end


def test_a_gap_across_midnight_moves_that_midnight_after_the_dates_first_period() -> None:
    # Toronto, 1919-03-30: clocks went from 23:30 (UTC-5) to 00:30 (UTC-4) on the 31st, so the
    # wall time 31 March 00:00 reads as 05:00 UTC, after the 31st's 00:30-01:00 (04:30 UTC).
    # The stretch of irregular days ending that midnight must see the 31st's periods.
    toronto = ZoneInfo("America/Toronto")
    weekly = {day: [(time(9), time(10))] for day in range(7)}
    weekly[0] = [(time(0, 30), time(1)), (time(9), time(10))]
    holidays = {date(1919, 3, 24), date(1919, 3, 26), date(1919, 3, 27)}
    cal = BusinessCalendar("America/Toronto", weekly, holidays=holidays)
    assert cal.is_open(datetime(1919, 3, 31, 4, 45, tzinfo=UTC))
    assert list(cal.open_intervals(utc(1919, 3, 31), utc(1919, 3, 31, 6))) == [
        (datetime(1919, 3, 31, 0, 30, tzinfo=toronto), datetime(1919, 3, 31, 1, tzinfo=toronto))
    ]
    assert cal.elapsed(utc(1919, 3, 30), utc(1919, 4, 1)) == 2 * H + H / 2


def test_lord_howe_half_hour_shift() -> None:
    cal = BusinessCalendar.always("Australia/Lord_Howe")
    lh = ZoneInfo("Australia/Lord_Howe")
    day = timedelta(days=1)
    assert (
        cal.elapsed(datetime(2026, 4, 5, tzinfo=lh), datetime(2026, 4, 6, tzinfo=lh)) == day + H / 2
    )
    assert (
        cal.elapsed(datetime(2026, 10, 4, tzinfo=lh), datetime(2026, 10, 5, tzinfo=lh))
        == day - H / 2
    )


def test_overnight_period_belongs_to_the_date_it_starts_on() -> None:
    cal = BusinessCalendar.parse("fri 22:00-06:00", timezone="UTC", holidays={date(2026, 11, 28)})
    # Saturday is a holiday, but the shift that started Friday night runs until Saturday 06:00
    assert cal.elapsed(utc(2026, 11, 27), utc(2026, 11, 29)) == 8 * H
    assert cal.is_open(utc(2026, 11, 28, 5))
    friday_off = attrs.evolve(cal, holidays={date(2026, 11, 27)})
    assert not friday_off.is_open(utc(2026, 11, 28, 5))


def test_midnight_to_midnight_is_a_whole_day() -> None:
    cal = BusinessCalendar("UTC", {2: [(time(0), time(0))]})
    assert cal.elapsed(utc(2026, 11, 23), utc(2026, 11, 30)) == 24 * H


def test_holidays_cancel_and_exceptions_replace() -> None:
    exceptions: dict[date, list[tuple[time, time]] | str] = {
        date(2026, 12, 24): [(time(9), time(12))],
        date(2026, 12, 26): "10:00-11:00",
    }
    cal = BusinessCalendar.parse(
        "mon-fri 09:00-17:00",
        timezone="UTC",
        holidays=[date(2026, 12, 25), date(2026, 12, 24)],
        exceptions=exceptions,
    )
    # Thu 24: exception wins over the holiday (3h); Fri 25: holiday; Sat 26: exception (1h)
    assert cal.elapsed(utc(2026, 12, 24), utc(2026, 12, 27)) == 4 * H
    assert cal.add(utc(2026, 12, 24, 11), 2 * H) == utc(2026, 12, 26, 11)


def test_holidays_accept_any_iterable_of_dates() -> None:
    days = {date(2026, 12, 25): "Christmas"}
    for holidays in (days, list(days), set(days), frozenset(days), tuple(days), iter(days)):
        cal = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC", holidays=holidays)
        assert cal.elapsed(utc(2026, 12, 25), utc(2026, 12, 26)) == timedelta(0)


def test_holidays_package_objects() -> None:
    holidays = pytest.importorskip("holidays")
    fr = holidays.France(years=range(2026, 2028))
    cal = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="Europe/Paris", holidays=fr)
    # 2026-07-14 (Tuesday) is Bastille Day
    assert cal.elapsed(paris(2026, 7, 14), paris(2026, 7, 15)) == timedelta(0)
    assert cal.elapsed(paris(2026, 7, 15), paris(2026, 7, 16)) == 8 * H


# --- long spans, empty and bounded calendars -------------------------------------------------


def test_ten_years_of_weeks(office: BusinessCalendar) -> None:
    start = utc(2026, 11, 23, 9)
    end = office.add(start, 52 * 10 * 40 * H)
    assert end == utc(2036, 11, 7, 17)  # 520 whole weeks later, a Friday evening
    assert office.elapsed(start, end) == 52 * 10 * 40 * H


def test_no_open_time_raises_instead_of_looping() -> None:
    empty = BusinessCalendar("UTC", {})
    with pytest.raises(CalendarError, match="no open time"):
        empty.add(utc(2026, 1, 1), H)
    with pytest.raises(CalendarError, match="no open time"):
        empty.next_open(utc(2026, 1, 1))
    assert empty.add(utc(2026, 1, 1), timedelta(0)) == utc(2026, 1, 1)
    assert empty.elapsed(utc(2026, 1, 1), utc(2030, 1, 1)) == timedelta(0)
    assert not empty.is_open(utc(2026, 1, 1))


def test_only_exceptions_open_a_bounded_range() -> None:
    cal = BusinessCalendar("UTC", {}, exceptions={date(2030, 6, 3): "09:00-17:00"})
    assert cal.add(utc(2026, 1, 1), 8 * H) == utc(2030, 6, 3, 17)
    assert cal.add(utc(2031, 1, 1), -H) == utc(2030, 6, 3, 16)
    with pytest.raises(CalendarError, match="no open time after"):
        cal.add(utc(2026, 1, 1), 8 * H + timedelta(microseconds=1))
    with pytest.raises(CalendarError, match="no open time before"):
        cal.add(utc(2031, 1, 1), -9 * H)
    with pytest.raises(CalendarError, match="no open time"):
        cal.next_open(utc(2030, 6, 3, 17))


def test_holiday_rules_that_cancel_every_day_raise() -> None:
    cal = BusinessCalendar.parse(
        "mon-fri 09:00-17:00", timezone="UTC", holiday_rules=["DTSTART:20260101\nRRULE:FREQ=DAILY"]
    )
    assert cal.add(utc(2025, 12, 31, 9), 8 * H) == utc(2025, 12, 31, 17)
    with pytest.raises(CalendarError, match="no open time"):
        cal.add(utc(2025, 12, 31, 9), 9 * H)


def test_far_past_and_future_are_reported_not_crashed(office: BusinessCalendar) -> None:
    with pytest.raises(CalendarError):
        office.add(utc(9999, 12, 1), timedelta(days=365))
    with pytest.raises(CalendarError):
        office.add(datetime(1, 2, 1, tzinfo=UTC), -timedelta(days=365))


# --- bad input -------------------------------------------------------------------------------


def test_naive_datetimes_are_refused(office: BusinessCalendar) -> None:
    naive = datetime(2026, 11, 23, 9)
    with pytest.raises(NaiveDatetimeError, match="naive"):
        office.add(naive, H)
    with pytest.raises(NaiveDatetimeError):
        office.elapsed(utc(2026, 11, 23), naive)
    with pytest.raises(NaiveDatetimeError):
        office.is_open(naive)
    with pytest.raises(NaiveDatetimeError):
        office.next_open(naive)
    with pytest.raises(NaiveDatetimeError):
        office.open_intervals(naive, utc(2026, 11, 24))


def test_float_durations_are_refused(office: BusinessCalendar) -> None:
    with pytest.raises(ValidationError, match="timedelta"):
        office.add(utc(2026, 11, 23), 1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"timezone": 3}, "IANA"),
        ({"weekly": {7: [(time(9), time(17))]}}, "weekday"),
        ({"weekly": {"funday": [(time(9), time(17))]}}, "weekday"),
        ({"weekly": {0: [(time(9, 0, 30), time(17))]}}, "whole minute"),
        ({"weekly": {0: [(time(9, tzinfo=UTC), time(17))]}}, "tzinfo"),
        ({"weekly": {0: [(9, 17)]}}, "datetime.time"),
        ({"weekly": {0: [(time(9),)]}}, "pair"),
        ({"weekly": 42}, "weekly"),
        ({"holidays": [datetime(2026, 1, 1)]}, "datetime.date"),
        ({"holidays": "2026-01-01"}, "iterable of dates"),
        ({"holiday_rules": ["FREQ=SOMETIMES"]}, "recurrence rule"),
        ({"exceptions": {"2026-13-01": "closed"}}, "ISO date"),
    ],
)
def test_bad_calendars_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"timezone": "UTC", "weekly": {0: [(time(9), time(17))]}}
    args.update(kwargs)
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "mon-fri",
        "mon-fri 9-17",
        "mon-fri 09:00-25:00",
        "moon 09:00-17:00",
        "mon 09:60-10:00",
        "mon 24:00-10:00",
        "mon 09:00-10:00-11:00",
    ],
)
def test_bad_text_forms_are_refused(text: str) -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar.parse(text, timezone="UTC")


# --- text form, dict form, values ------------------------------------------------------------


def test_text_form() -> None:
    cal = BusinessCalendar.parse(
        "mon-fri 09:00-12:00, 13:00-17:00; sat 10:00-14:00; fri 09:00-15:00; sun 22:00-24:00",
        timezone="Europe/Paris",
    )
    assert cal.weekly[0] == ((time(9), time(12)), (time(13), time(17)))
    assert cal.weekly[4] == ((time(9), time(15)),)  # a later clause replaces an earlier one
    assert cal.weekly[6] == ((time(22), time(0)),)
    assert cal.hours == (
        "mon-thu 09:00-12:00,13:00-17:00; fri 09:00-15:00; sat 10:00-14:00; sun 22:00-24:00"
    )
    assert BusinessCalendar.parse(cal.hours, timezone="Europe/Paris") == cal
    wrap = BusinessCalendar.parse("fri-mon 00:00-24:00", timezone="UTC")
    assert [bool(p) for p in wrap.weekly] == [True, False, False, False, True, True, True]


def test_dict_form_round_trips() -> None:
    table = {
        "timezone": "Europe/Paris",
        "hours": "mon-fri 09:00-12:00,13:00-17:00",
        "holidays": ["2026-05-01", date(2026, 7, 14)],
        "holiday_rules": [
            "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
            {"rrule": "FREQ=YEARLY;BYEASTER=1", "days": 2},
        ],
        "exceptions": {"2026-12-24": "09:00-12:00", "2026-12-31": "closed"},
    }
    cal = BusinessCalendar.from_dict(table)
    assert cal.holidays == {date(2026, 5, 1), date(2026, 7, 14)}
    assert cal.holiday_rules[1].days == 2
    assert dict(cal.exceptions) == {
        date(2026, 12, 24): ((time(9), time(12)),),
        date(2026, 12, 31): (),
    }
    assert BusinessCalendar.from_dict(cal.to_dict()) == cal
    weekly = BusinessCalendar.from_dict(
        {"timezone": "UTC", "weekly": {"mon": "09:00-17:00", "2": [["08:00", "24:00"]]}}
    )
    assert weekly.weekly[0] == ((time(9), time(17)),)
    assert weekly.weekly[2] == ((time(8), time(0)),)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"hours": "mon 09:00-17:00"}, "timezone"),
        ({"timezone": "UTC"}, "exactly one"),
        ({"timezone": "UTC", "hours": "mon 09:00-10:00", "weekly": {}}, "exactly one"),
        ({"timezone": "UTC", "hours": "mon 09:00-10:00", "name": "x"}, "unknown calendar keys"),
        ({"timezone": "UTC", "hours": "mon 09:00-10:00", "holidays": "2026-01-01"}, "list"),
        ({"timezone": "UTC", "hours": ["mon"]}, "hours"),
        ({"timezone": "UTC", "hours": "", "holiday_rules": [{"rule": "x"}]}, "rrule"),
    ],
)
def test_bad_dict_forms_are_refused(table: dict[str, object], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar.from_dict(table)


def test_values_are_hashable_comparable_picklable(office: BusinessCalendar) -> None:
    same = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone=ZoneInfo("UTC"))
    assert same == office
    assert hash(same) == hash(office)
    assert len({same, office}) == 1
    office.add(utc(2026, 11, 23), 100 * H)  # fill the caches; they are not part of the value
    for clone in (pickle.loads(pickle.dumps(office)), copy.deepcopy(office), copy.copy(office)):
        assert clone == office
        assert clone.add(utc(2026, 11, 23), 100 * H) == office.add(utc(2026, 11, 23), 100 * H)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        office.timezone = "Europe/Paris"  # type: ignore[misc]
    other = attrs.evolve(office, timezone="Europe/Paris")
    assert other != office
    assert other.tzinfo == PARIS
    assert "mon-fri 09:00-17:00" in repr(office)


def test_shared_between_threads_gives_the_same_answers() -> None:
    cal = BusinessCalendar.parse(
        "mon-fri 09:00-12:00,13:00-17:00",
        timezone="Europe/Paris",
        holiday_rules=["FREQ=YEARLY;BYMONTH=5;BYMONTHDAY=1", "FREQ=YEARLY;BYEASTER=1"],
    )
    starts = [utc(2000 + k, 1 + k % 12, 1 + k % 28, k % 24) for k in range(40)]
    spans = [timedelta(hours=37 * k + 1) for k in range(40)]
    fresh = BusinessCalendar.from_dict(cal.to_dict())
    expected = [fresh.add(s, d) for s, d in zip(starts, spans, strict=True)]
    results: dict[int, list[datetime]] = {}

    def work(n: int) -> None:
        order = starts[n:] + starts[:n], spans[n:] + spans[:n]
        got = [cal.add(s, d) for s, d in zip(*order, strict=True)]
        results[n] = got[-n:] + got[:-n] if n else got

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results.values())
