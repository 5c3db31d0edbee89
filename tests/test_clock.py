"""The frozen clock users inject in their tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from helpkit.errors import NaiveDatetimeError, ValidationError
from helpkit.ports import Clock
from helpkit.testing.clock import FrozenClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_is_a_clock_and_stands_still() -> None:
    clock = FrozenClock(T0)
    assert isinstance(clock, Clock)
    assert clock.now() == T0
    assert clock.now() == clock.now()
    assert "2026-03-02T09:00:00+00:00" in repr(clock)


def test_now_is_utc_whatever_the_start_zone() -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == T0
    assert clock.now().utcoffset() == timedelta(0)


def test_advance_by_timedelta_or_keywords() -> None:
    clock = FrozenClock(T0)
    assert clock.advance(timedelta(hours=8)) == T0 + timedelta(hours=8)
    assert clock.advance(minutes=30, seconds=1) == T0 + timedelta(hours=8, minutes=30, seconds=1)
    assert clock.advance() == clock.now()  # zero step is fine
    assert clock.now() == T0 + timedelta(hours=8, minutes=30, seconds=1)


def test_advance_never_goes_back() -> None:
    clock = FrozenClock(T0)
    with pytest.raises(ValidationError, match="set"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValidationError):
        clock.advance(days=-1)
    assert clock.now() == T0


def test_advance_argument_errors() -> None:
    clock = FrozenClock(T0)
    with pytest.raises(TypeError):
        clock.advance(timedelta(1), hours=1)
    with pytest.raises(TypeError):
        clock.advance(5)  # type: ignore[arg-type]
    assert clock.now() == T0


def test_set_jumps_both_ways() -> None:
    clock = FrozenClock(T0)
    assert clock.set(T0 - timedelta(days=3)) == T0 - timedelta(days=3)
    assert clock.now() == T0 - timedelta(days=3)
    paris = timezone(timedelta(hours=2))
    assert clock.set(datetime(2026, 7, 1, 12, tzinfo=paris)) == datetime(2026, 7, 1, 10, tzinfo=UTC)


def test_naive_datetimes_refused() -> None:
    naive = datetime(2026, 3, 2, 9, 0)
    with pytest.raises(NaiveDatetimeError, match="naive"):
        FrozenClock(naive)
    clock = FrozenClock(T0)
    with pytest.raises(NaiveDatetimeError):
        clock.set(naive)
    assert clock.now() == T0
