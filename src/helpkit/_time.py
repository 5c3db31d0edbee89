"""Small helpers for aware datetimes, shared by every layer (no I/O, no clock reads)."""

from __future__ import annotations

from datetime import UTC, datetime

from helpkit.errors import NaiveDatetimeError

__all__ = ["ensure_aware", "to_utc"]


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
