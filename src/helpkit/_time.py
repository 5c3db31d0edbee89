"""Small helpers for aware datetimes, shared by every layer (no I/O, no clock reads)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from helpkit.errors import ConfigError, NaiveDatetimeError

__all__ = ["ensure_aware", "optional_utc", "parse_duration", "to_utc"]


def ensure_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` unchanged if it is timezone-aware, else raise NaiveDatetimeError."""
    if not isinstance(value, datetime):
        raise NaiveDatetimeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(
            f"{name} {value.isoformat()} is naive; pass an aware datetime, "
            "e.g. datetime(..., tzinfo=timezone.utc) or dt.replace(tzinfo=ZoneInfo('Europe/Paris'))"
        )
    return value


def to_utc(value: datetime, name: str = "datetime") -> datetime:
    """Check that ``value`` is aware and convert it to UTC."""
    # Fast path: most values are already UTC datetimes (every one helpkit produces is).
    if value.__class__ is datetime and value.tzinfo is UTC:
        return value
    return ensure_aware(value, name).astimezone(UTC)


def optional_utc(value: datetime | None) -> datetime | None:
    """:func:`to_utc`, or ``None`` for ``None``: the converter of optional instant fields."""
    return None if value is None else to_utc(value)


_SHORT = re.compile(
    r"(?:(?P<w>\d+)\s*w)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*"
    r"(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?",
    re.IGNORECASE,
)
_ISO = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?",
    re.IGNORECASE,
)
_UNIT_SECONDS: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Read a duration such as ``"4h"``, ``"1h30m"``, ``"2d"``, ``"90s"`` or ISO ``"PT1H30M"``.

    Units are ``w`` (7 days), ``d`` (24 hours), ``h``, ``m`` (minutes) and ``s``, in that
    order, each at most once, in whole numbers. ISO 8601 durations take the same units
    (``P1W``, ``P2DT4H``); years and months are refused because they have no fixed length.
    SLA targets count business time, so ``"2d"`` is 48 hours *of open time* (six days of an
    eight-hour calendar): write ``"16h"`` for two eight-hour working days.
    """
    if not isinstance(text, str):
        raise ConfigError(f"a duration must be text like '1h30m' or 'PT4H'; got {text!r}")
    stripped = text.strip()
    iso = stripped[:1] in ("P", "p")
    match = (_ISO if iso else _SHORT).fullmatch(stripped)
    if not stripped or match is None or not any(match.groupdict().values()):
        raise ConfigError(
            f"bad duration {text!r}: write e.g. '45m', '4h', '1h30m', '2d' (24 hours each) "
            "or ISO 8601 'PT1H30M' (no years or months)"
        )
    if iso and stripped.upper().endswith("T"):
        raise ConfigError(f"bad ISO 8601 duration {text!r}: nothing after 'T'")
    seconds = sum(int(v) * _UNIT_SECONDS[k] for k, v in match.groupdict().items() if v)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ConfigError(f"duration {text!r} is too long") from None
