"""Compiled decoders: JSON-safe data back to values of a type (see :mod:`helpkit._codec`).

An attrs class gets one function that reads, checks and converts each field into a local and
builds the object: through the class, or, when its attrs ``__init__`` would only convert and
validate, by setting its slots directly and running the same converters and validators
(:func:`_slot_setters`). Small frozen values made only of text (actors, links) are remembered
(:func:`_memoized`). Any other type gets one function that checks and converts its argument.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs

from helpkit._checks import pass_condition
from helpkit._codec.binary import bytes_from_text
from helpkit._codec.durations import duration_from_text
from helpkit._codec.source import Source
from helpkit._codec.types import class_fields, is_mapping, is_text, label, strip_none
from helpkit._time import optional_utc, to_utc
from helpkit.errors import SchemaError
from helpkit.fields import FieldValue, decode_value

__all__ = ["Decode", "decoder"]

Decode = Callable[[Any], Any]

_MISSING = object()
_MEMO_SIZE = 4096


_NAMES: dict[str, Any] = {
    "SchemaError": SchemaError,
    "_UTC": UTC,
    "_to_utc": to_utc,
    "_new": object.__new__,
    "_validators_off": attrs.validators.get_disabled,
    "_fromiso": datetime.fromisoformat,
    "_date_fromiso": date.fromisoformat,
    "_duration": duration_from_text,
    "_b64": bytes_from_text,
    "_decode_value": decode_value,
    "_MISSING": _MISSING,
}


def decoder(tp: Any) -> Decode:
    """The decoder from JSON-safe data back to values of type ``tp`` (built once per type).

    Raises TypeError for a type the codec has no form for.
    """
    return _decoder(tp)


@functools.cache
def _decoder(tp: Any) -> Decode:
    if isinstance(tp, type) and attrs.has(tp):
        decode = _class_decoder(tp)
        keys = _text_fields(tp)
        return decode if keys is None else _memoized(tp, decode, keys)
    src = Source(_NAMES)
    src.add(0, "def decode(data):")
    _decode_into(src, tp, "data", 1)
    src.add(1, "return data")
    function: Decode = src.build("decode", f"decode {label(tp)}")
    return function


def _text_fields(cls: type) -> list[str] | None:
    """The keys of a frozen class whose fields all hold text (``str``, ``str | None``, enums
    of strings), or None. Such small values (actors, links) recur in every event."""
    if getattr(cls.__setattr__, "__name__", "") != "_frozen_setattrs":
        return None
    keys = []
    for field, hint in class_fields(cls):
        if not is_text(strip_none(hint)[0]):
            return None
        keys.append(str(field.alias))
    return keys or None


def _memoized(cls: type, decode: Decode, keys: list[str]) -> Decode:
    # Decoding such a value is a pure function of its raw strings, and the value is frozen,
    # so equal data may share one decoded object. The raw values are JSON scalars: one that
    # equals a remembered string is that string, so nothing unchecked gets through. Only
    # successes are remembered; the memo is cleared when full.
    src = Source(_NAMES)
    src.names.update(_full=decode, _memo={}, _SIZE=_MEMO_SIZE)
    src.add(0, "def decode(data):")
    src.add(1, "if data.__class__ is not dict:")
    src.add(2, "return _full(data)")
    raw = ", ".join(f"data.get({key!r}, _MISSING)" for key in keys)
    src.add(1, f"key = ({raw},)")
    src.add(1, "try:")
    src.add(2, "return _memo[key]")
    src.add(1, "except (KeyError, TypeError):")  # TypeError: an unhashable (so bad) value
    src.add(2, "pass")
    src.add(1, "value = _full(data)")
    src.add(1, "if len(_memo) >= _SIZE:")
    src.add(2, "_memo.clear()")
    src.add(1, "_memo[key] = value")
    src.add(1, "return value")
    function: Decode = src.build("decode", f"decode {label(cls)} (memoized)")
    return function


def _class_decoder(cls: type) -> Decode:
    fields = class_fields(cls)
    src = Source(_NAMES)
    src.names["_cls"] = cls
    class_name = cls.__name__
    src.add(0, "def decode(data):")
    src.add(1, "if data.__class__ is not dict and not isinstance(data, dict):")
    src.add(2, f"raise SchemaError(f'expected an object for {class_name}, found {{data!r:.60}}')")
    arguments = []
    for field, hint in fields:
        local = src.fresh("v")
        alias = field.alias
        if field.default is None and strip_none(hint)[1]:
            # Absent or null, the same None (its default): read as it is, checked if not None.
            src.add(1, f"{local} = data.get({alias!r})")
            _decode_into(src, hint, local, 1)
            arguments.append((field, local))
            continue
        src.add(1, f"{local} = data.get({alias!r}, _MISSING)")
        src.add(1, f"if {local} is _MISSING:")
        if field.default is attrs.NOTHING:
            src.add(2, f"raise SchemaError({f'{class_name} misses field {alias!r}'!r})")
            _decode_into(src, hint, local, 1)
        else:
            # Absent: the field's default (converters apply to it as attrs would).
            given: Any = field.default
            if isinstance(given, attrs.Factory):  # type: ignore[arg-type]
                if given.takes_self:
                    raise TypeError(f"the codec cannot decode {class_name}: a default takes self")
                default = f"{src.ref('factory', given.factory)}()"
            else:
                default = src.ref("default", given)
            src.add(2, f"{local} = {default}")
            src.add(1, "else:")
            if not _decode_into(src, hint, local, 2):
                src.add(2, "pass")
        arguments.append((field, local))
    setters = _slot_setters(cls, [field for field, _ in fields])
    if setters is None:
        call = ", ".join(f"{field.alias}={local}" for field, local in arguments)
        src.add(1, f"return _cls({call})")
    else:
        # What the attrs __init__ would do, without its call: the checks above and the field
        # converters are all the class asks for (see _slot_setters).
        src.add(1, "obj = _new(_cls)")
        checks: list[tuple[attrs.Attribute[Any], Any]] = []
        hints = dict(fields)
        for field, local in arguments:
            setter, converter, validator = setters[field.name]
            if converter is not None and not (
                converter in _UTC_CONVERTERS and strip_none(hints[field])[0] is datetime
            ):
                local = f"{src.ref('convert', converter)}({local})"
            # (A to-UTC converter gives back the instant decoded above as it is: it is UTC.)
            src.add(1, f"{src.ref('set', setter)}(obj, {local})")
            if validator is not None:
                checks.append((field, validator))
        if checks:
            # After every field is set, as attrs runs them; the value as stored.
            src.add(1, "if not _validators_off():")
            for field, validator in checks:
                call = f"{src.ref('check', validator)}(obj, {src.ref('field', field)}, x)"
                src.add(2, f"x = obj.{field.name}")
                passes = pass_condition(validator, lambda kind: src.ref("kind", kind))
                if passes is None:
                    src.add(2, call)
                else:
                    # A value that plainly passes the check skips its call; any other value
                    # goes through the validator, which accepts or refuses it as ever.
                    src.add(2, f"if not ({passes.format('x')}):")
                    src.add(3, call)
        src.add(1, "return obj")
    function: Decode = src.build("decode", f"decode {label(cls)}")
    return function


_UTC_CONVERTERS = frozenset({to_utc, optional_utc})
"""Converters that give back an instant as it is when it is a ``datetime`` in UTC, which
every instant decoded above is (and ``None``)."""

_Setter = tuple[
    Callable[[Any, Any], None], Callable[[Any], Any] | None, Callable[[Any, Any, Any], Any] | None
]
"""A field's slot setter, converter and validator (what the attrs __init__ applies)."""


def _slot_setters(cls: type, fields: list[attrs.Attribute[Any]]) -> dict[str, _Setter] | None:
    """The slot setters, converters and validators that build ``cls`` exactly as its
    attrs-generated ``__init__`` does, or None when it does more: pre- or post-init hooks,
    converters that need the instance, fields outside ``__init__``, a hand-written
    ``__init__`` or no slots. Such classes are built by calling them."""
    init = getattr(cls, "__init__", None)
    code = getattr(init, "__code__", None)
    if code is None or not code.co_filename.startswith("<attrs generated"):
        return None
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return None
    if len(fields) != len(attrs.fields(cls)):
        return None
    # Slots beyond the fields (a cached hash, say) are filled by __init__ too.
    slots = {name for base in cls.__mro__ for name in base.__dict__.get("__slots__", ())}
    if slots - {"__weakref__"} != {field.name for field in fields}:
        return None
    setters: dict[str, _Setter] = {}
    for field in fields:
        slot = getattr(cls, field.name, None)
        converter: Any = field.converter
        if not isinstance(slot, types.MemberDescriptorType) or isinstance(
            converter, attrs.Converter
        ):
            return None
        setters[field.name] = (slot.__set__, converter, field.validator)
    return setters


def _decode_into(src: Source, tp: Any, name: str, indent: int) -> bool:
    """Lines that check and convert local ``name`` in place; False if it needs none."""
    inner, optional = strip_none(tp)
    if optional:
        start = len(src.lines)
        src.add(indent, f"if {name} is not None:")
        if not _decode_inner(src, inner, name, indent + 1):
            del src.lines[start:]
            return False
        return True
    return _decode_inner(src, inner, name, indent)


_CHECKS: Mapping[Any, tuple[str, str]] = {
    # type -> (condition for "not of this type", what the error message says was expected)
    str: ("{0}.__class__ is not str and not isinstance({0}, str)", "a string"),
    int: (
        "{0}.__class__ is not int and (not isinstance({0}, int) or isinstance({0}, bool))",
        "an integer",
    ),
    bool: ("{0}.__class__ is not bool", "a boolean"),
    list: ("{0}.__class__ is not list and not isinstance({0}, list)", "a list"),
    dict: ("{0}.__class__ is not dict and not isinstance({0}, dict)", "an object"),
}


def _check(src: Source, kind: type, name: str, indent: int) -> None:
    condition, expected = _CHECKS[kind]
    src.add(indent, f"if {condition.format(name)}:")
    src.add(indent + 1, f"raise SchemaError(f'expected {expected}, found {{{name}!r:.60}}')")


def _decode_inner(src: Source, tp: Any, name: str, indent: int) -> bool:
    add = src.add
    if tp is FieldValue:
        add(indent, f"{name} = _decode_value({name})")
        return True
    if tp in (str, int, bool):
        _check(src, tp, name, indent)
        return True
    if tp is Any:
        return False
    if tp is float:
        # A JSON number: an integer (as other JSON writers give 1.0) becomes a float.
        add(indent, f"if {name}.__class__ is not float:")
        add(indent + 1, f"if {name}.__class__ is bool or not isinstance({name}, (int, float)):")
        add(indent + 2, f"raise SchemaError(f'expected a number, found {{{name}!r:.60}}')")
        add(indent + 1, f"{name} = float({name})")
        return True
    if tp is datetime:
        add(indent, f"{name} = _fromiso({name})")
        add(indent, f"if {name}.tzinfo is not _UTC:")
        add(indent + 1, f"{name} = _to_utc({name})")
        return True
    if tp is date:
        add(indent, f"{name} = _date_fromiso({name})")
        return True
    if tp is timedelta:
        add(indent, f"{name} = _duration({name})")
        return True
    if tp is bytes:
        add(indent, f"{name} = _b64({name})")
        return True
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # A dict lookup for stored values; anything else goes through the enum's own call,
        # which accepts what it accepts and raises what it raises.
        table = src.ref("members", dict(tp._value2member_map_))
        if all(type(m.value) is int for m in tp):
            _check(src, int, name, indent)  # else true and 1.0 would find the member 1
        add(indent, "try:")
        add(indent + 1, f"{name} = {table}[{name}]")
        add(indent, "except (KeyError, TypeError):")
        add(indent + 1, f"{name} = {src.ref('enum', tp)}({name})")
        return True
    if isinstance(tp, type) and attrs.has(tp):
        add(indent, f"{name} = {src.ref('dec', decoder(tp))}({name})")
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or origin is frozenset:
        collect = "tuple" if origin is tuple else "frozenset"
        item_type = args[0]
        item = src.fresh("i")
        _check(src, list, name, indent)
        if item_type is Any:
            add(indent, f"{name} = {collect}({name})")
        elif item_type in (str, int, bool):
            # Check every item, then build the collection from the data as it is.
            add(indent, f"for {item} in {name}:")
            _check(src, item_type, item, indent + 1)
            add(indent, f"{name} = {collect}({name})")
        else:
            items = src.fresh("items")
            add(indent, f"{items} = []")
            add(indent, f"for {item} in {name}:")
            _decode_into(src, item_type, item, indent + 1)
            add(indent + 1, f"{items}.append({item})")
            add(indent, f"{name} = {collect}({items})")
        return True
    if is_mapping(origin) and len(args) == 2:
        key, item = src.fresh("k"), src.fresh("i")
        _check(src, dict, name, indent)
        value_type, optional = strip_none(args[1])
        if value_type is FieldValue:
            value = f"_decode_value({item})"
            if optional:
                value = f"(None if {item} is None else {value})"
            add(indent, f"{name} = {{str({key}): {value} for {key}, {item} in {name}.items()}}")
        elif value_type is Any:
            add(indent, f"{name} = {{str({key}): {item} for {key}, {item} in {name}.items()}}")
        else:
            items = src.fresh("items")
            add(indent, f"{items} = {{}}")
            add(indent, f"for {key}, {item} in {name}.items():")
            _decode_into(src, args[1], item, indent + 1)
            add(indent + 1, f"{items}[str({key})] = {item}")
            add(indent, f"{name} = {items}")
        return True
    raise TypeError(f"the codec has no form for {tp!r}")
