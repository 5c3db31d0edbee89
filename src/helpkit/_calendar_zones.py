"""UTC-offset transitions of IANA zones, found by probing (zoneinfo has no public list).

Shared by :mod:`helpkit.calendar` and the Hypothesis strategies in ``helpkit.testing``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["EPOCH", "US", "offset_at", "transitions_between", "year_transitions"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
_SECOND = 1_000_000
_DAY = 86_400 * _SECOND

# tzdata never puts two offset changes of one zone less than two days apart (checked against
# every zone's full transition table), so probing once a day cannot step over a pair of
# transitions; bisection then finds each one to the second (TZif transitions are whole seconds).
_PROBE = _DAY


def offset_at(tz: tzinfo, us: int) -> int:
    """The UTC offset of ``tz`` at the instant ``us`` (microseconds since the epoch), in µs."""
    off = (EPOCH + timedelta(microseconds=us)).astimezone(tz).utcoffset()
    assert off is not None  # an aware datetime always has an offset
    return off // US


@lru_cache(maxsize=8192)
def year_transitions(tz: ZoneInfo, year: int) -> tuple[tuple[int, int, int], ...]:
    """Offset changes in ``(Jan 1 UTC of year, Jan 1 UTC of year + 1]``.

    Each is ``(instant, offset_before, offset_after)`` in microseconds.
    """
    start = (datetime(year, 1, 1, tzinfo=UTC) - EPOCH) // US
    end = (datetime(year + 1, 1, 1, tzinfo=UTC) - EPOCH) // US if year < 9999 else None
    if end is None:
        end = start + 365 * _DAY - _SECOND
    found: list[tuple[int, int, int]] = []
    t = start
    off = offset_at(tz, t)
    while t < end:
        nxt = min(t + _PROBE, end)
        noff = offset_at(tz, nxt)
        if noff != off:
            lo, hi = t // _SECOND, nxt // _SECOND  # offset(lo) == off, offset(hi) == noff
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(tz, mid * _SECOND) == off:
                    lo = mid
                else:
                    hi = mid
            found.append((hi * _SECOND, off, noff))
            off = noff
        t = nxt
    return tuple(found)


def transitions_between(tz: ZoneInfo, start_us: int, end_us: int) -> list[tuple[int, int, int]]:
    """Offset changes of ``tz`` at instants in ``[start_us, end_us)``, in order."""
    # integer arithmetic: the ends may lie beyond what datetime can represent
    year_us = 31_556_952 * _SECOND  # mean Gregorian year
    y0 = max(1970 + start_us // year_us - 1, 1)
    y1 = min(1970 + end_us // year_us + 1, 9999)
    out: list[tuple[int, int, int]] = []
    for year in range(y0, y1 + 1):
        out.extend(tr for tr in year_transitions(tz, year) if start_us <= tr[0] < end_us)
    return out
