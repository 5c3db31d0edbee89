"""Compiled encoders: a value of a type to its JSON-safe form (see :mod:`helpkit._codec`).

An attrs class gets one function that reads each field into a local and returns the dict
literal of their encoded forms; any other type, one function returning the expression that
encodes it. Encoding trusts the value's type (domain objects check their fields when they are
built): it converts, it does not check.
"""

from __future__ import annotations

import enum
import functools
import json
import typing
from collections.abc import Callable
from datetime import date, datetime, timedelta
from json.encoder import encode_basestring_ascii
from typing import Any

import attrs

from helpkit._codec.binary import bytes_text
from helpkit._codec.durations import duration_text
from helpkit._codec.source import Source
from helpkit._codec.types import class_fields, is_mapping, is_text, label, strip_none
from helpkit._records import OMIT_DEFAULT
from helpkit._time import to_utc
from helpkit.fields import FieldValue, encode_value

__all__ = ["Encode", "encoder", "sort_key"]

Encode = Callable[[Any], Any]

sort_key: Callable[[Any], str] = json.JSONEncoder(sort_keys=True).encode
"""The order of a set's items in the JSON form: their JSON text with sorted keys, so the same
set always gives the same list. One encoder object, not ``json.dumps(..., sort_keys=True)``
(which builds a new encoder per call); for a string the text is what
``encode_basestring_ascii`` gives, the C function the encoder itself calls."""


# datetime.isoformat() costs more than the rest of encoding an instant, and the same instants
# recur (a ticket's updated time is its last event's time and its comment's). A small memo,
# keyed by the instant: aware datetimes that are equal are the same instant, so they share
# their UTC text. Cleared when full rather than kept in LRU order: the hits are close in time.
_ISO_TEXT: dict[datetime, str] = {}
_ISO_TEXT_SIZE = 4096


def _utc_isoformat(value: datetime) -> str:
    text = to_utc(value).isoformat()  # raises for a naive datetime, which is never stored
    if len(_ISO_TEXT) >= _ISO_TEXT_SIZE:
        _ISO_TEXT.clear()
    _ISO_TEXT[value] = text
    return text


_NAMES: dict[str, Any] = {
    "_datetime": datetime,
    "_to_utc": to_utc,
    "_iso_get": _ISO_TEXT.get,
    "_iso": _utc_isoformat,
    "_sort_key": sort_key,
    "_str_key": encode_basestring_ascii,
    "_encode_value": encode_value,
    "_duration": duration_text,
    "_b64": bytes_text,
}


def encoder(tp: Any) -> Encode:
    """The encoder from values of type ``tp`` to JSON-safe data (built once per type).

    Raises TypeError for a type the codec has no form for.
    """
    return _encoder(tp)


@functools.cache
def _encoder(tp: Any) -> Encode:
    src = Source(_NAMES)
    body: list[str] = []
    if isinstance(tp, type) and attrs.has(tp):
        entries: list[str] = []
        optional: list[str] = []
        for field, hint in class_fields(tp):
            local = src.fresh("v")
            body.append(f"{local} = value.{field.name}")
            expr = _encode_expr(src, hint, local, body)
            if field.metadata.get(OMIT_DEFAULT):
                # A field added after values were stored: left out at its default, so the
                # text written for a value that does not use it stays what it was before.
                if field.default is None and _plain(strip_none(hint)[0]):
                    # (For these types, differing from None is being another value.)
                    test = f"{local} is not None"
                else:
                    test = f"{local} != {src.ref('default', field.default)}"
                optional.append(f"if {test}: out[{field.alias!r}] = {expr}")
            elif optional:
                raise TypeError(f"{label(tp)}: {field.name} follows a field left out at default")
            else:
                entries.append(f"{field.alias!r}: {expr},")
        src.add(0, "def encode(value):")
        for line in body:
            src.add(1, line)
        src.add(1, "out = {" if optional else "return {")
        for entry in entries:
            src.add(2, entry)
        src.add(1, "}")
        for line in optional:
            src.add(1, line)
        if optional:
            src.add(1, "return out")
    else:
        expr = _encode_expr(src, tp, "value", body)
        src.add(0, "def encode(value):")
        for line in body:
            src.add(1, line)
        src.add(1, f"return {expr}")
    function: Encode = src.build("encode", f"encode {label(tp)}")
    return function


def _plain(tp: Any) -> bool:
    """Whether ``tp``'s values equal ``None`` only by being ``None`` (no custom ``__eq__``)."""
    return tp in (str, int, bool, float, datetime, date, timedelta) or (
        isinstance(tp, type) and issubclass(tp, enum.Enum)
    )


def _encode_expr(src: Source, tp: Any, name: str, body: list[str]) -> str:
    """An expression encoding the value in local ``name``; may append setup lines to body."""
    inner, optional = strip_none(tp)
    expr = _encode_inner(src, inner, name, body)
    if optional and expr != name:
        return f"(None if {name} is None else {expr})"
    return expr


def _encode_inner(src: Source, tp: Any, name: str, body: list[str]) -> str:
    if tp is FieldValue:
        return f"_encode_value({name})"
    if tp in (str, int, bool, Any):
        return name
    if tp is float:
        return f"float({name})"
    if tp is datetime:
        # to_utc(v).isoformat(), memoized for plain datetimes (a subclass may format itself).
        return (
            f"((_iso_get({name}) or _iso({name})) if {name}.__class__ is _datetime "
            f"else _to_utc({name}).isoformat())"
        )
    if tp is date:
        return f"{name}.isoformat()"
    if tp is timedelta:
        return f"_duration({name})"
    if tp is bytes:
        return f"_b64({name})"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # _value_ (the attribute behind the .value property) skips a Python-level property.
        return f"{name}._value_"
    if isinstance(tp, type) and attrs.has(tp):
        return f"{src.ref('enc', encoder(tp))}({name})"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = src.fresh("i")
        item_expr = _encode_expr(src, args[0], item, body)
        if item_expr == item:
            return f"list({name})"
        return f"[{item_expr} for {item} in {name}]"
    if origin is frozenset:
        item_type, _ = strip_none(args[0])
        if item_type is str:
            # A string's sort key is its JSON text (see sort_key): the same order.
            return f"(sorted({name}, key=_str_key) if {name} else [])"
        item = src.fresh("i")
        item_expr = _encode_expr(src, args[0], item, body)
        key = _flat_sort_key(src, item_type) if isinstance(item_type, type) else "_sort_key"
        return f"(sorted([{item_expr} for {item} in {name}], key={key}) if {name} else [])"
    if is_mapping(origin) and len(args) == 2:
        key, item = src.fresh("k"), src.fresh("i")
        item_expr = _encode_expr(src, args[1], item, body)
        return (
            f"({{str({key}): {item_expr} for {key}, {item} in sorted({name}.items())}} "
            f"if {name} else {{}})"
        )
    raise TypeError(f"the codec has no form for {tp!r}")


def _flat_sort_key(src: Source, cls: type) -> str:
    """For a set of attrs objects whose fields all encode to strings (or None): a function
    giving the same text as ``sort_key`` (JSON with sorted keys) on their encoded dicts,
    without the JSON encoder. Otherwise ``_sort_key`` itself."""
    if not attrs.has(cls):
        return "_sort_key"
    parts = []
    for field, hint in sorted(class_fields(cls), key=lambda fh: str(fh[0].alias)):
        inner, optional = strip_none(hint)
        if not is_text(inner):
            return "_sort_key"
        value = f"_str_key(d[{field.alias!r}])"
        if optional:
            value = f"('null' if d[{field.alias!r}] is None else {value})"
        parts.append(f"{json.dumps(field.alias)!r} + ': ' + {value}")
    if not parts:
        return "_sort_key"
    function = src.fresh("_key")
    src.add(0, f"def {function}(d):")
    src.add(1, "return '{' + " + " + ', ' + ".join(parts) + " + '}'")
    return function
