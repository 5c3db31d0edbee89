"""Helpers for helpkit's frozen value classes: a faster ``attrs.evolve``, a mapping converter.

``attrs.evolve`` rebuilds an instance through ``__init__``: every field's converter runs again,
for the fields that did not change too. Folding an event into a ticket or stamping a ticket
number changes two or three of a ticket's thirty fields, so :func:`replace` copies the other
fields as they are and converts only the new values. It is exactly ``attrs.evolve`` for
classes without validators and without ``__attrs_post_init__`` (all of helpkit's tickets and
events); for any other class it calls ``attrs.evolve``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

__all__ = ["frozen_mapping", "replace"]

_T = TypeVar("_T")


def frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``value``: the converter of the mapping fields of frozen classes."""
    return MappingProxyType(dict(value))


_Plan = tuple[tuple[str, ...], dict[str, Callable[[Any], Any] | None]]

# attrs.Converter (attrs 24.1+) may take the instance or the field: such fields go to evolve.
_CONVERTER_CLASSES: tuple[type, ...] = tuple(
    c for c in (getattr(attrs, "Converter", None),) if isinstance(c, type)
)


@functools.cache
def _plan(cls: type) -> _Plan | None:
    """The field names and converters of ``cls``, or None when only evolve is safe."""
    if not attrs.has(cls) or any(
        hasattr(cls, hook) for hook in ("__attrs_pre_init__", "__attrs_post_init__")
    ):
        return None
    if any("_attrs_cached_hash" in getattr(c, "__slots__", ()) for c in cls.__mro__):
        return None  # cache_hash=True: a copy would carry no (or a stale) cached hash
    fields = attrs.fields(cls)
    if any(f.validator is not None or not f.init for f in fields):
        return None
    converters: dict[str, Callable[[Any], Any] | None] = {}
    for f in fields:
        converter = f.converter
        if isinstance(converter, _CONVERTER_CLASSES) or (
            converter is not None and not callable(converter)
        ):
            return None  # a converter that may take the instance: leave it to evolve
        converters[f.alias or f.name] = converter
    names = tuple(f.name for f in fields)
    if tuple(converters) != names:
        return None  # private attributes with aliases: keep to evolve
    return names, converters


def replace(inst: _T, **changes: Any) -> _T:
    """``attrs.evolve(inst, **changes)``, converting only the changed fields."""
    cls: type = type(inst)
    plan = _plan(cls)
    if plan is None:
        return attrs.evolve(inst, **changes)  # type: ignore[misc]
    names, converters = plan
    new: _T = object.__new__(cls)
    setattr_ = object.__setattr__
    for name in names:
        setattr_(new, name, getattr(inst, name))
    for name, value in changes.items():
        try:
            converter = converters[name]
        except KeyError:
            raise TypeError(f"{cls.__name__} has no field {name!r}") from None
        setattr_(new, name, value if converter is None else converter(value))
    return new
