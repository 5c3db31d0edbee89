"""A clock for tests: it only moves when told to."""

from __future__ import annotations

from datetime import datetime, timedelta

from helpkit._time import to_utc
from helpkit.errors import ValidationError

__all__ = ["FrozenClock"]


class FrozenClock:
    """A :class:`helpkit.ports.Clock` that stands still until :meth:`advance` or :meth:`set`.

    ``now()`` returns the same aware instant (in UTC) every time. :meth:`advance` only moves
    forward; to go back in time (a test of clock skew, say) call :meth:`set` explicitly.
    Naive datetimes are refused with :class:`helpkit.errors.NaiveDatetimeError`.

    >>> from datetime import UTC, datetime
    >>> clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    >>> clock.advance(hours=8).isoformat()
    '2026-03-02T17:00:00+00:00'
    """

    __slots__ = ("_now",)

    def __init__(self, start: datetime) -> None:
        self._now = to_utc(start, "start")

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()!r})"

    def now(self) -> datetime:
        """The current (frozen) instant, in UTC."""
        return self._now

    def advance(self, delta: timedelta | None = None, /, **timedelta_kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**timedelta_kwargs)``; return the new now.

        ``advance(timedelta(minutes=5))`` and ``advance(minutes=5)`` are the same. A negative
        step raises :class:`~helpkit.errors.ValidationError`: use :meth:`set` to go back on
        purpose.
        """
        if delta is not None and timedelta_kwargs:
            raise TypeError("pass either a timedelta or keyword arguments, not both")
        if delta is None:
            delta = timedelta(**timedelta_kwargs)
        elif not isinstance(delta, timedelta):
            raise TypeError(f"advance() takes a timedelta, got {type(delta).__name__}")
        if delta < timedelta(0):
            raise ValidationError(
                f"advance() only moves forward; got {delta}. Use set() to go back."
            )
        self._now = self._now + delta
        return self._now

    def set(self, instant: datetime) -> datetime:
        """Jump to ``instant`` (forwards or backwards); return it in UTC."""
        self._now = to_utc(instant, "instant")
        return self._now
