"""Holiday rules (RFC 5545 via dateutil) and iCalendar import."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dateutil.rrule import YEARLY, rrule

from helpkit.calendar import BusinessCalendar
from helpkit.errors import CalendarError
from helpkit.holidays import HolidayRule, Holidays, parse_ics, read_ics

H = timedelta(hours=1)
CHRISTMAS = "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25"


def utc(y: int, m: int, d: int, hh: int = 0) -> datetime:
    return datetime(y, m, d, hh, tzinfo=UTC)


def test_an_unbounded_rule_is_seen_fifty_years_ahead() -> None:
    cal = BusinessCalendar.parse("mon-sun 09:00-17:00", timezone="UTC", holiday_rules=[CHRISTMAS])
    assert cal.elapsed(utc(2076, 12, 25), utc(2076, 12, 26)) == timedelta(0)
    start = utc(2026, 12, 24, 9)
    # 50 years of 8h days, minus one Christmas per year
    days = (date(2076, 12, 24) - date(2026, 12, 24)).days - 50
    assert cal.add(start, days * 8 * H) == utc(2076, 12, 23, 17)
    assert cal.add(start, days * 8 * H + 9 * H) == utc(2076, 12, 26, 10)


def test_rule_forms() -> None:
    easter_monday = HolidayRule("FREQ=YEARLY;BYEASTER=1")
    assert easter_monday.between(date(2026, 1, 1), date(2027, 1, 1)) == [date(2026, 4, 6)]
    bounded = HolidayRule("DTSTART:20200101\nRRULE:FREQ=YEARLY;UNTIL=20221231")
    assert bounded.between(date(2000, 1, 1), date(2030, 1, 1)) == [
        date(2020, 1, 1),
        date(2021, 1, 1),
        date(2022, 1, 1),
    ]
    from_object = HolidayRule(rrule(YEARLY, dtstart=datetime(2000, 7, 14)))
    assert from_object.between(date(2026, 1, 1), date(2027, 1, 1)) == [date(2026, 7, 14)]
    two_days = HolidayRule(CHRISTMAS, days=2)
    assert two_days.between(date(2026, 12, 26), date(2027, 1, 1)) == [date(2026, 12, 26)]
    assert HolidayRule(CHRISTMAS) == HolidayRule("  " + CHRISTMAS + "\n")
    assert "days=2" in repr(two_days)


@pytest.mark.parametrize("bad", ["", "FREQ=FORTNIGHTLY", "FREQ=YEARLY;BYMONTH=x", 42])
def test_bad_rules_are_refused(bad: object) -> None:
    with pytest.raises(CalendarError):
        HolidayRule(bad)


@pytest.mark.parametrize("days", [0, -1, True, 1.5])
def test_bad_rule_lengths_are_refused(days: object) -> None:
    with pytest.raises(CalendarError, match="whole number of days"):
        HolidayRule(CHRISTMAS, days)  # type: ignore[arg-type]


def test_holidays_values_combine() -> None:
    a = Holidays({date(2026, 5, 1)})
    b = Holidays(rules=[CHRISTMAS])
    both = a | b
    assert date(2026, 5, 1) in both
    assert date(2031, 12, 25) in both
    assert date(2031, 12, 24) not in both
    assert both.between(date(2026, 1, 1), date(2027, 1, 1)) == [
        date(2026, 5, 1),
        date(2026, 12, 25),
    ]
    cal = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC", holidays=both)
    assert cal.holidays == {date(2026, 5, 1)}
    assert cal.holiday_rules == (HolidayRule(CHRISTMAS),)


ICS = (
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//Example//Holidays//EN\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:xmas@example\r\n"
    "DTSTART;VALUE=DATE:20201225\r\n"
    "DTEND;VALUE=DATE:20201227\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=12;BYMO\r\n"
    " NTHDAY=25\r\n"  # a folded line
    "EXDATE;VALUE=DATE:20271225\r\n"
    "SUMMARY:Christmas and\r\n"
    "\tBoxing Day\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "DTSTART;VALUE=DATE:20260714\r\n"
    "SUMMARY:Bastille Day\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "DTSTART:20260501\r\n"
    "DURATION:P1D\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "DTSTART:20260601T090000Z\r\n"
    "DTEND:20260601T100000Z\r\n"
    "SUMMARY:a meeting, not a holiday\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "DTSTART;VALUE=DATE:20260815\r\n"
    "STATUS:CANCELLED\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def test_ics_all_day_events_become_holidays(tmp_path: Path) -> None:
    parsed = parse_ics(ICS)
    assert parsed.dates == {date(2026, 7, 14), date(2026, 5, 1)}
    assert len(parsed.rules) == 1
    assert parsed.rules[0].days == 2
    assert parsed.between(date(2026, 12, 1), date(2028, 1, 1)) == [
        date(2026, 12, 25),
        date(2026, 12, 26),  # 2027-12-25 is an EXDATE: that whole occurrence is gone
    ]
    path = tmp_path / "holidays.ics"
    path.write_text(ICS, encoding="utf-8")
    assert read_ics(path) == parsed
    cal = BusinessCalendar.parse("mon-sun 09:00-17:00", timezone="UTC", holidays=read_ics(path))
    assert cal.elapsed(utc(2040, 12, 24), utc(2040, 12, 28)) == 16 * H
    assert cal.elapsed(utc(2027, 12, 24), utc(2027, 12, 28)) == 32 * H
    assert cal.is_open(utc(2026, 6, 1, 9))  # the timed event did not close the day
    assert cal.is_open(utc(2026, 8, 15, 9))  # nor did the cancelled one


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("BEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\n", "no DTSTART"),
        ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:2026-01-01\nEND:VEVENT\n", "YYYYMMDD"),
        ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\n", "ends inside"),
        ("END:VEVENT\n", "without BEGIN"),
        ("BEGIN:VEVENT\nnot a property line\nEND:VEVENT\n", "malformed"),
        (
            "BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260105\nDTEND;VALUE=DATE:20260101\nEND:VEVENT\n",
            "ends before",
        ),
        ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nDURATION:PT3H\nEND:VEVENT\n", "whole days"),
        ("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=NEVER\nEND:VEVENT\n", "rule"),
    ],
)
def test_bad_ics_is_refused(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_ics(text)
