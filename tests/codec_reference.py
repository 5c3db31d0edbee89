"""The reference codec: the JSON-safe form written plainly, one closure per type.

This was helpkit's generic codec before the compiled one (``helpkit._codec``) became the only
one; it stays here as the test oracle. The compiled codec must give the same data, the same
text and, for malformed data, the same kind of error (``tests/test_codec.py``). Keep it plain:
a loop over the fields, ``cls(**kwargs)``, no memo.
"""

from __future__ import annotations

import base64
import enum
import json
import re
import typing
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from helpkit._codec.types import is_mapping, strip_none
from helpkit._records import OMIT_DEFAULT
from helpkit._time import to_utc
from helpkit.errors import SchemaError
from helpkit.fields import FieldValue, decode_value, encode_value

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]

_sort_key: Callable[[Any], str] = json.JSONEncoder(sort_keys=True).encode

_HOUR = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)


def duration_text(value: timedelta) -> str:
    """ISO 8601 in hours, minutes and seconds, computed with timedelta arithmetic."""
    sign, value = ("-", -value) if value < timedelta(0) else ("", value)
    hours, value = divmod(value, _HOUR)
    minutes, value = divmod(value, _MINUTE)
    seconds, value = divmod(value, _SECOND)
    parts = [f"{hours}H" if hours else "", f"{minutes}M" if minutes else ""]
    if value:
        parts.append(f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S")
    elif seconds or not any(parts):
        parts.append(f"{seconds}S")
    return sign + "PT" + "".join(parts)


_DURATION = re.compile(
    r"(-?)P(?:([0-9]+)D)?(?:T([0-9]+H)?([0-9]+M)?(?:([0-9]+)(?:\.([0-9]{1,6}))?S)?)?"
)


def duration_from_text(text: Any) -> timedelta:
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or text.endswith(("P", "T")) or len(text) > 120:
        raise SchemaError(f"expected an ISO 8601 duration, found {text!r}")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    try:
        value = timedelta(
            days=int(days or 0),
            hours=int((hours or "0H")[:-1]),
            minutes=int((minutes or "0M")[:-1]),
            seconds=int(seconds or 0),
            microseconds=int((fraction or "0").ljust(6, "0")),
        )
    except OverflowError:
        raise SchemaError(f"duration {text!r} is too long") from None
    return -value if sign else value


# Canonical standard base64: whole quads, then a last quad with the padding it needs and no
# stray bits (one byte left: its second character is A, Q, g or w; two: a multiple of 4).
_BASE64 = re.compile(
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?"
)


def bytes_from_text(data: Any) -> bytes:
    if not isinstance(data, str) or _BASE64.fullmatch(data) is None:
        raise SchemaError(f"expected base64 text, found {data!r}")
    return base64.standard_b64decode(data)


def generic_encoder(tp: Any) -> Encode:
    """The encoder of values of type ``tp``."""
    inner, optional = strip_none(tp)
    base = _encoder(inner)
    if optional:
        return lambda v: None if v is None else base(v)
    return base


def _encoder(tp: Any) -> Encode:
    if tp is FieldValue:
        return encode_value
    if tp in (str, int, bool, Any):
        return lambda v: v
    if tp is float:
        return float
    if tp is datetime:
        return lambda v: to_utc(v).isoformat()
    if tp is date:
        return lambda v: v.isoformat()
    if tp is timedelta:
        return duration_text
    if tp is bytes:
        return lambda v: base64.standard_b64encode(v).decode("ascii")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: v.value
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        parts = [
            (f.name, f.alias, generic_encoder(hints[f.name]), f) for f in attrs.fields(tp) if f.init
        ]
        return lambda v: {
            alias: enc(getattr(v, name))
            for name, alias, enc, f in parts
            # fields added later are left out at their default (stored text stays the same)
            if not (f.metadata.get(OMIT_DEFAULT) and getattr(v, name) == f.default)
        }
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = generic_encoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin is frozenset:
        item = generic_encoder(args[0])
        return lambda v: sorted((item(x) for x in v), key=_sort_key)
    if is_mapping(origin):
        value_enc = generic_encoder(args[1])
        return lambda v: {str(k): value_enc(x) for k, x in sorted(v.items())}
    raise TypeError(f"no encoder for {tp!r}")


def generic_decoder(tp: Any) -> Decode:
    """The decoder of data of type ``tp``."""
    inner, optional = strip_none(tp)
    base = _decoder(inner)
    if optional:
        return lambda d: None if d is None else base(d)
    return base


def _checked(kind: type, name: str) -> Decode:
    def decode(data: Any) -> Any:
        if not isinstance(data, kind) or (kind is int and isinstance(data, bool)):
            raise SchemaError(f"expected {name}, found {data!r}")
        return data

    return decode


def _number(data: Any) -> float:
    if isinstance(data, bool) or not isinstance(data, int | float):
        raise SchemaError(f"expected a number, found {data!r}")
    return float(data)


def _decoder(tp: Any) -> Decode:
    if tp is FieldValue:
        return decode_value
    if tp is str:
        return _checked(str, "a string")
    if tp is int:
        return _checked(int, "an integer")
    if tp is bool:
        return _checked(bool, "a boolean")
    if tp is Any:
        return lambda d: d
    if tp is float:
        return _number
    if tp is datetime:
        return lambda d: to_utc(datetime.fromisoformat(d))
    if tp is date:
        return date.fromisoformat
    if tp is timedelta:
        return duration_from_text
    if tp is bytes:
        return bytes_from_text
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if all(type(m.value) is int for m in tp):
            check = _checked(int, "an integer")
            return lambda d: tp(check(d))
        return tp
    if attrs.has(tp):
        return _object_decoder(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    as_list = _checked(list, "a list")
    if origin is tuple:
        item = generic_decoder(args[0])
        return lambda d: tuple(item(x) for x in as_list(d))
    if origin is frozenset:
        item = generic_decoder(args[0])
        return lambda d: frozenset(item(x) for x in as_list(d))
    if is_mapping(origin):
        as_dict = _checked(dict, "an object")
        value_dec = generic_decoder(args[1])
        return lambda d: {str(k): value_dec(x) for k, x in as_dict(d).items()}
    raise TypeError(f"no decoder for {tp!r}")


def _object_decoder(cls: type) -> Decode:
    hints = typing.get_type_hints(cls)
    parts = [
        (f.alias, generic_decoder(hints[f.name]), f.default is attrs.NOTHING)
        for f in attrs.fields(cls)
        if f.init
    ]

    def decode(data: Any) -> Any:
        if not isinstance(data, dict):
            raise SchemaError(f"expected an object for {cls.__name__}, found {data!r}")
        kwargs = {}
        for alias, dec, required in parts:
            if alias in data:
                kwargs[alias] = dec(data[alias])
            elif required:
                raise SchemaError(f"{cls.__name__} misses field {alias!r}")
        return cls(**kwargs)

    return decode
