"""What a type hint asks the codec for: optional values, custom field values, mappings, fields."""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from helpkit.fields import FieldValue

__all__ = ["class_fields", "is_mapping", "is_text", "label", "strip_none"]

_FIELD_VALUE_ARGS = frozenset(typing.get_args(FieldValue))


def strip_none(tp: Any) -> tuple[Any, bool]:
    """``(inner type, optional)``: ``X | None`` gives ``(X, True)``; the union of the custom
    field value types gives :data:`~helpkit.fields.FieldValue`. Other unions are refused."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        rest = tuple(a for a in args if a is not type(None))
        optional = len(rest) != len(args)
        if frozenset(rest) == _FIELD_VALUE_ARGS:
            return FieldValue, optional
        if len(rest) == 1:
            return rest[0], optional
        raise TypeError(f"the codec has no form for the union {tp!r}")
    return tp, False


_MAPPING_ORIGINS = (Mapping, dict, MappingProxyType, typing.get_origin(Mapping[str, int]))


def is_mapping(origin: Any) -> bool:
    """Whether a generic's origin is a mapping kept as a JSON object."""
    return any(origin is known for known in _MAPPING_ORIGINS)


def is_text(tp: Any) -> bool:
    """``str``, or an enum whose values are all strings: encoded as JSON strings."""
    return tp is str or (
        isinstance(tp, type)
        and issubclass(tp, enum.Enum)
        and all(isinstance(m.value, str) for m in tp)
    )


def class_fields(cls: type) -> list[tuple[attrs.Attribute[Any], Any]]:
    """The ``__init__`` fields of an attrs class, each with its resolved type hint."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in attrs.fields(cls) if f.init]


def label(tp: Any) -> str:
    """A type's name in generated file names: ``helpkit.tickets.Ticket``."""
    if isinstance(tp, type):
        return f"{tp.__module__}.{tp.__qualname__}"
    return repr(tp)
