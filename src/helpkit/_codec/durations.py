"""Durations as ISO 8601 text in hours, minutes and seconds: ``PT4H``, ``PT1H30M``, ``-PT15M``.

The form is exact (seconds keep up to six decimals, a ``timedelta``'s microseconds) and
written without days: a day is 24 hours (``PT36H``), since an SLA duration counts business
time and "a day" would be ambiguous. Zero is ``PT0S``; a negative duration (an SLA clock's
``remaining`` past due) starts with ``-``. Reading also takes whole days (``P1DT2H`` is 26
hours), so hand-written text such as ``P2D`` works; anything else raises
:class:`~helpkit.errors.SchemaError`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from helpkit.errors import SchemaError

__all__ = ["duration_from_text", "duration_text"]

_MICROS = 1_000_000
_ISO = re.compile(
    r"(?P<sign>-)?P(?:(?P<d>\d{1,20})D)?"
    r"(?:T(?=\d)(?:(?P<h>\d{1,20})H)?(?:(?P<m>\d{1,20})M)?(?:(?P<s>\d{1,20})(?:\.(?P<f>\d{1,6}))?S)?)?",
    re.ASCII,
)


def duration_text(value: timedelta) -> str:
    """The ISO 8601 text of a duration, in hours, minutes and seconds."""
    micros = (value.days * 86_400 + value.seconds) * _MICROS + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), _MICROS)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours}H" if hours else ""
    if minutes:
        text += f"{minutes}M"
    if fraction:
        text += f"{seconds}.{fraction:06d}".rstrip("0") + "S"
    elif seconds or not text:
        text += f"{seconds}S"
    return f"{sign}PT{text}"


def duration_from_text(text: object) -> timedelta:
    """The duration :func:`duration_text` wrote (whole days are read too); else SchemaError."""
    match = _ISO.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.group("d", "h", "m", "s")):
        raise SchemaError(
            f"expected an ISO 8601 duration such as 'PT4H' or '-PT1M30.5S', found {text!r:.60}"
        )
    days, hours, minutes, seconds = (int(v or 0) for v in match.group("d", "h", "m", "s"))
    micros = int((match["f"] or "").ljust(6, "0"))
    try:
        value = timedelta(
            days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=micros
        )
    except OverflowError:
        raise SchemaError(f"duration {text!r:.60} is too long") from None
    return -value if match["sign"] else value
