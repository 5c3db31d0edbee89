"""Turn attrs value objects into JSON-safe plain data and back, driven by their type hints.

Used for events (the audit trail) and for stored ticket state. Encoders are built once per
type and cached, because stores encode on every write.
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

import attrs

from helpkit._time import to_utc
from helpkit.errors import SchemaError
from helpkit.fields import FieldValue, decode_value, encode_value

__all__ = ["decoder", "encoder"]

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]

_FIELD_VALUE_ARGS = frozenset(typing.get_args(FieldValue))


def _strip_none(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        rest = tuple(a for a in args if a is not type(None))
        optional = len(rest) != len(args)
        if frozenset(rest) == _FIELD_VALUE_ARGS:
            return FieldValue, optional
        if len(rest) == 1:
            return rest[0], optional
        raise TypeError(f"unsupported union {tp!r}")
    return tp, False


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def encoder(tp: Any) -> Encode:
    """An encoder from values of type ``tp`` to JSON-safe data."""
    return _cached_encoder(tp)


@functools.cache
def _cached_encoder(tp: Any) -> Encode:
    inner, optional = _strip_none(tp)
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
        return lambda v: [v.days, v.seconds, v.microseconds]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: v.value
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        parts = [(f.name, f.alias, encoder(hints[f.name])) for f in attrs.fields(tp) if f.init]
        return lambda v: {alias: enc(getattr(v, name)) for name, alias, enc in parts}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        item = encoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin is frozenset:
        item = encoder(args[0])
        return lambda v: sorted((item(x) for x in v), key=_sort_key)
    if origin in (Mapping, dict, MappingProxyType) or origin is typing.get_origin(
        Mapping[str, int]
    ):
        value_enc = encoder(args[1])
        return lambda v: {str(k): value_enc(x) for k, x in sorted(v.items())}
    raise TypeError(f"no encoder for {tp!r}")


def decoder(tp: Any) -> Decode:
    """A decoder from JSON-safe data back to values of type ``tp``."""
    return _cached_decoder(tp)


@functools.cache
def _cached_decoder(tp: Any) -> Decode:
    inner, optional = _strip_none(tp)
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
        return float
    if tp is datetime:
        return lambda d: to_utc(datetime.fromisoformat(d))
    if tp is date:
        return date.fromisoformat
    if tp is timedelta:
        return lambda d: timedelta(days=d[0], seconds=d[1], microseconds=d[2])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        parts = [
            (f.alias, decoder(hints[f.name]), f.default is attrs.NOTHING)
            for f in attrs.fields(tp)
            if f.init
        ]

        def decode_obj(d: Any) -> Any:
            if not isinstance(d, dict):
                raise SchemaError(f"expected an object for {tp.__name__}, found {d!r}")
            kwargs = {}
            for alias, dec, required in parts:
                if alias in d:
                    kwargs[alias] = dec(d[alias])
                elif required:
                    raise SchemaError(f"{tp.__name__} misses field {alias!r}")
            return tp(**kwargs)

        return decode_obj
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        item = decoder(args[0])
        return lambda d: tuple(item(x) for x in d)
    if origin is frozenset:
        item = decoder(args[0])
        return lambda d: frozenset(item(x) for x in d)
    if origin in (Mapping, dict, MappingProxyType) or origin is typing.get_origin(
        Mapping[str, int]
    ):
        value_dec = decoder(args[1])
        return lambda d: {str(k): value_dec(x) for k, x in d.items()}
    raise TypeError(f"no decoder for {tp!r}")
