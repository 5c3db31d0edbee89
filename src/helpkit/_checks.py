"""Checks of the primitive values domain objects hold: storable text, real flags, 64-bit integers.

Every domain class (people, tickets, comments, events) declares these as attrs validators on
its fields, so an object that exists holds only values every store can write and read back,
and a bad argument is refused before anything is written, whichever store is behind the desk:

* text is a ``str`` that UTF-8 can encode (no lone surrogates ``\\ud800``..``\\udfff``, which
  SQLite, PostgreSQL and JSON-over-UTF-8 cannot carry) and holds no NUL character (PostgreSQL
  text cannot hold one);
* a flag is a real ``bool`` (not ``"yes"``, ``0`` or ``None``);
* an integer is a real ``int`` (not a ``bool``) that fits in a signed 64-bit column.

A failed check raises :class:`~helpkit.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from helpkit.errors import ValidationError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "PASSES",
    "check_flag",
    "check_int",
    "check_items",
    "check_text",
    "count",
    "flag",
    "fraction",
    "ident",
    "instance",
    "instances_of",
    "int64",
    "member_of",
    "nonblank_text",
    "optional_count",
    "optional_ident",
    "optional_text",
    "pass_condition",
    "passes_when",
    "text",
    "text_set",
]

_T = TypeVar("_T")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def check_text(value: object, what: str) -> str:
    """``value`` if it is text every store can hold, else ValidationError naming ``what``."""
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be text; got {type(value).__name__} {value!r:.60}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"{what} holds a lone surrogate ({value!r:.60}): that is not valid Unicode "
                "text and no store can keep it (decode bytes with errors='replace' first)"
            ) from None
    if "\x00" in value:
        raise ValidationError(f"{what} holds a NUL character, which no store can keep as text")
    return value


def check_flag(value: object, what: str) -> bool:
    """``value`` if it is ``True`` or ``False``, else ValidationError."""
    if value is True or value is False:
        return value
    raise ValidationError(f"{what} must be true or false; got {value!r:.60}")


def check_int(
    value: object, what: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int:
    """``value`` if it is an ``int`` (not a bool) within ``minimum..maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an integer; got {value!r:.60}")
    if not minimum <= value <= maximum:
        raise ValidationError(f"{what} must be in {minimum}..{maximum}; got {value}")
    return value


def check_items(value: object, what: str, kind: type[_T]) -> tuple[_T, ...]:
    """The items of a collection argument, as a tuple of ``kind`` instances.

    One ``kind`` instance (a text, say) is one item; a list, tuple, set or other iterable
    gives its items; anything else (``None``, a number, a mapping, bytes) or an item of
    another type is a ValidationError.
    """
    if value.__class__ is not tuple and value.__class__ is not list:
        # (A tuple or a list, the common case, skips these ABC checks: it is iterable, not
        # text or a mapping, and never taken as one item.)
        if isinstance(value, kind) and not isinstance(value, list | tuple | set | frozenset):
            return (value,)
        if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
            raise ValidationError(f"{what} must be a list of values; got {value!r:.60}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise ValidationError(
                f"{what} holds {item!r:.60}, not a {getattr(kind, '__name__', kind)}"
            )
    return items


# ---------------------------------------------------------------- attrs validators


# The common case is checked inline, fast: a plain ``str`` that is ASCII without NUL is
# storable as it is; anything else goes through check_text.


def text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Storable text (may be empty)."""
    if not (value.__class__ is str and value.isascii() and "\x00" not in value):
        check_text(value, attribute.name)


def nonblank_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Storable text with at least one non-space character."""
    if not (value.__class__ is str and value.isascii() and "\x00" not in value):
        value = check_text(value, attribute.name)
    if not value.strip():
        raise ValidationError(f"{attribute.name} must be non-empty text")


def optional_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Storable text or ``None``."""
    if value is not None and not (
        value.__class__ is str and value.isascii() and "\x00" not in value
    ):
        check_text(value, attribute.name)


def ident(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An id: non-empty storable text without surrounding spaces."""
    if not (value.__class__ is str and value.isascii() and "\x00" not in value):
        value = check_text(value, attribute.name)
    if not value or value != value.strip():
        raise ValidationError(
            f"{attribute.name} must be a non-empty id without surrounding spaces; got {value!r:.60}"
        )


def optional_ident(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An id or ``None``."""
    if value is not None:
        ident(instance, attribute, value)


def flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A real ``bool``."""
    check_flag(value, attribute.name)


def int64(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An integer that fits in 64 bits."""
    if value.__class__ is not int or not INT64_MIN <= value <= INT64_MAX:
        check_int(value, attribute.name)


def count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An integer ``>= 0`` that fits in 64 bits (numbers, seqs, counters)."""
    if value.__class__ is not int or not 0 <= value <= INT64_MAX:
        check_int(value, attribute.name, minimum=0)


def optional_count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A :func:`count` or ``None``."""
    if value is not None:
        check_int(value, attribute.name, minimum=0)


def fraction(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A fraction ``0 < value <= 1`` (a float)."""
    if not isinstance(value, float) or not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise ValidationError(f"{attribute.name} must be a number in (0, 1]; got {value!r:.60}")


def text_set(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``frozenset`` of non-empty storable texts."""
    if not isinstance(value, frozenset):
        raise ValidationError(f"{attribute.name} must be a frozenset; got {value!r:.60}")
    for item in value:
        if not check_text(item, attribute.name):
            raise ValidationError(f"{attribute.name} holds an empty text")


def member_of(cls: type[enum.Enum]) -> Validator:
    """A validator: the value is a member of the enum ``cls``."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, cls):
            known = ", ".join(str(m.value) for m in cls)
            raise ValidationError(
                f"{attribute.name} must be a {cls.__name__} ({known}); got {value!r:.60}"
            )

    _KINDS[validate] = (cls, None)
    return validate


def instances_of(cls: type, *, container: type = frozenset) -> Validator:
    """A validator: the value is a ``container`` (frozenset or tuple) of ``cls`` instances."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        # A plain loop (no generator for all()): most values hold none or one item.
        if isinstance(value, container):
            for item in value:  # type: ignore[attr-defined]
                if not isinstance(item, cls):
                    break
            else:
                return
        raise ValidationError(
            f"{attribute.name} must be a {container.__name__} of {cls.__name__}; got {value!r:.60}"
        )

    _KINDS[validate] = (cls, container)
    return validate


def instance(cls: type) -> Validator:
    """A validator: the value is an instance of ``cls``."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, cls):
            raise ValidationError(f"{attribute.name} must be a {cls.__name__}; got {value!r:.60}")

    _KINDS[validate] = (cls, None)
    return validate


_PLAIN_TEXT = "{0}.__class__ is str and {0}.isascii() and '\\x00' not in {0}"
PASSES: dict[Any, str] = {
    # validator -> a condition under which it accepts the value (it is called otherwise)
    text: _PLAIN_TEXT,
    optional_text: "{0} is None or (" + _PLAIN_TEXT + ")",
    nonblank_text: _PLAIN_TEXT + " and {0}.strip()",
    ident: _PLAIN_TEXT + " and {0} and {0} == {0}.strip()",
    optional_ident: "{0} is None or (" + _PLAIN_TEXT + " and {0} and {0} == {0}.strip())",
    count: f"{{0}}.__class__ is int and 0 <= {{0}} <= {INT64_MAX}",
    int64: f"{{0}}.__class__ is int and {INT64_MIN} <= {{0}} <= {INT64_MAX}",
    flag: "{0} is True or {0} is False",
}
"""For the validators above that most fields carry: a condition (a format string of the
value's expression) under which the validator accepts the value without a word. Generated
code (the codec's decoders, :func:`helpkit._records.build`) writes it inline and calls the
validator only when it does not hold, which accepts or refuses the value as ever (see
:func:`pass_condition`, which covers :func:`member_of`, :func:`instance` and
:func:`instances_of` too)."""


def passes_when(validator: Validator, condition: str) -> Validator:
    """Register ``condition`` (a format string of the value's expression) as one under which
    ``validator`` (of another module) accepts the value without a word; ``validator``."""
    PASSES[validator] = condition
    return validator


_KINDS: dict[Any, tuple[type, type | None]] = {}
"""The validators :func:`member_of` and :func:`instance` made, with their class (and None),
and those :func:`instances_of` made, with their item class and container."""


def pass_condition(validator: Any, ref: Callable[[object], str]) -> str | None:
    """A condition (a format string of the value's expression) under which ``validator``
    accepts the value, or None; ``ref`` gives the name generated code knows an object by. A
    value of exactly a member_of or instance validator's class is one of its instances; an
    empty container of exactly an instances_of validator's container holds no other item."""
    passes = PASSES.get(validator)
    if passes is not None:
        return passes
    kind = _KINDS.get(validator)
    if kind is None:
        return None
    cls, container = kind
    if container is None:
        return f"{{0}}.__class__ is {ref(cls)}"
    return f"{{0}}.__class__ is {ref(container)} and not {{0}}"
