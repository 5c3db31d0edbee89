"""Compact JSON text of the codec's forms, for stores and kept states.

``json.JSONEncoder(separators=(",", ":")).encode`` builds a new C encoder object on every call,
which for the small documents helpkit writes per ticket (its state, an event, a kept timer
state) costs about as much as the encoding itself. :func:`dumps` makes that C encoder once, with
the same arguments the standard encoder hands it, so the text is the same; it leaves out only
the check for containers that hold themselves (the forms are trees built by the codec: a cycle
would raise RecursionError instead of ValueError). Without the C accelerator (another Python
implementation) it is the standard encoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _std
from typing import Any, Final

__all__ = ["dumps", "dumps_unescaped", "strict_dumps"]


def _default(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _compact(*, allow_nan: bool = True, ensure_ascii: bool = True) -> Callable[[Any], str]:
    make = getattr(_std, "c_make_encoder", None)
    standard: Callable[[Any], str] = json.JSONEncoder(
        separators=(",", ":"), allow_nan=allow_nan, ensure_ascii=ensure_ascii
    ).encode
    if make is None:
        return standard
    # The arguments JSONEncoder.iterencode passes (markers None: no cycle check; indent None;
    # the separators; sort_keys, skipkeys False; allow_nan; the string encoder of
    # ensure_ascii).
    strings = _std.encode_basestring_ascii if ensure_ascii else _std.encode_basestring
    chunks = make(None, _default, strings, None, ":", ",", False, False, allow_nan)

    def dumps(value: Any) -> str:
        return "".join(chunks(value, 0))

    return dumps


dumps: Final[Callable[[Any], str]] = _compact()
"""``value`` as compact JSON text, non-ASCII escaped (what
``json.JSONEncoder(separators=(",", ":")).encode`` gives)."""

strict_dumps: Final[Callable[[Any], str]] = _compact(allow_nan=False)
""":func:`dumps` refusing NaN and infinities (ValueError), which JSON has no text for (what
``json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode`` gives)."""

dumps_unescaped: Final[Callable[[Any], str]] = _compact(ensure_ascii=False)
""":func:`dumps` with non-ASCII characters as they are (what ``ensure_ascii=False`` gives):
for a JSON text read by a database server, which then needs no Unicode escapes (those it
refuses for characters beyond ASCII unless the database is UTF-8)."""
