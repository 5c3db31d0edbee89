"""Turn attrs value objects into JSON-safe plain data and back, driven by their type hints.

Used for events (the audit trail) and for stored ticket state, so it runs on every store
write and on every state or event read. For an attrs class it builds, once per class, a
specialised encoder and decoder: Python source with one line per field, compiled with
``exec``. They do what the generic, closure-based functions (:func:`generic_encoder`,
:func:`generic_decoder`, kept as the reference and for other types) do, about three to five
times faster: no per-call loop over fields, no per-value wrapper calls, no kwargs dict.

Decoding still checks what it reads (types of strings, integers and booleans, enum values,
aware datetimes) and builds objects through their class, so attrs converters and
``__attrs_post_init__`` checks run on stored data as they do on new data. Malformed data
raises :class:`~helpkit.errors.SchemaError` where the generic decoder does, and otherwise the
same ``TypeError``/``ValueError`` as before, which callers turn into their own errors.
"""

from __future__ import annotations

import enum
import functools
import itertools
import json
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from json.encoder import encode_basestring_ascii
from types import MappingProxyType
from typing import Any

import attrs

from helpkit._time import to_utc
from helpkit.errors import SchemaError
from helpkit.fields import FieldValue, decode_value, encode_value

__all__ = ["decoder", "encoder", "generic_decoder", "generic_encoder"]

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


# The order of a set's items in the JSON form: their JSON text with sorted keys, so the same
# set always gives the same text. One encoder object, not json.dumps(..., sort_keys=True)
# (which builds a new encoder per call); for a string the text is what
# encode_basestring_ascii gives, the C function the encoder itself calls.
_sort_key: Callable[[Any], str] = json.JSONEncoder(sort_keys=True).encode


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


def _is_mapping(origin: Any) -> bool:
    return origin in (Mapping, dict, MappingProxyType) or origin is typing.get_origin(
        Mapping[str, int]
    )


def encoder(tp: Any) -> Encode:
    """An encoder from values of type ``tp`` to JSON-safe data."""
    return _cached_encoder(tp)


def decoder(tp: Any) -> Decode:
    """A decoder from JSON-safe data back to values of type ``tp``."""
    return _cached_decoder(tp)


@functools.cache
def _cached_encoder(tp: Any) -> Encode:
    inner, optional = _strip_none(tp)
    if not optional and isinstance(inner, type) and attrs.has(inner):
        return _compile_encoder(inner)
    return generic_encoder(tp)


@functools.cache
def _cached_decoder(tp: Any) -> Decode:
    inner, optional = _strip_none(tp)
    if not optional and isinstance(inner, type) and attrs.has(inner):
        return _compile_decoder(inner)
    return generic_decoder(tp)


# ---------------------------------------------------------------- the generic reference


def generic_encoder(tp: Any) -> Encode:
    """The encoder built from closures, one per type in ``tp`` (the reference behaviour)."""
    return _generic_encoder_cached(tp)


@functools.cache
def _generic_encoder_cached(tp: Any) -> Encode:
    inner, optional = _strip_none(tp)
    base = _generic_encoder(inner)
    if optional:
        return lambda v: None if v is None else base(v)
    return base


def _generic_encoder(tp: Any) -> Encode:
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
        parts = [
            (f.name, f.alias, generic_encoder(hints[f.name])) for f in attrs.fields(tp) if f.init
        ]
        return lambda v: {alias: enc(getattr(v, name)) for name, alias, enc in parts}
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        item = generic_encoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin is frozenset:
        item = generic_encoder(args[0])
        return lambda v: sorted((item(x) for x in v), key=_sort_key)
    if _is_mapping(origin):
        value_enc = generic_encoder(args[1])
        return lambda v: {str(k): value_enc(x) for k, x in sorted(v.items())}
    raise TypeError(f"no encoder for {tp!r}")


def generic_decoder(tp: Any) -> Decode:
    """The decoder built from closures, one per type in ``tp`` (the reference behaviour)."""
    return _generic_decoder_cached(tp)


@functools.cache
def _generic_decoder_cached(tp: Any) -> Decode:
    inner, optional = _strip_none(tp)
    base = _generic_decoder(inner)
    if optional:
        return lambda d: None if d is None else base(d)
    return base


def _checked(kind: type, name: str) -> Decode:
    def decode(data: Any) -> Any:
        if not isinstance(data, kind) or (kind is int and isinstance(data, bool)):
            raise SchemaError(f"expected {name}, found {data!r}")
        return data

    return decode


def _generic_decoder(tp: Any) -> Decode:
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
            (f.alias, generic_decoder(hints[f.name]), f.default is attrs.NOTHING)
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
        item = generic_decoder(args[0])
        return lambda d: tuple(item(x) for x in d)
    if origin is frozenset:
        item = generic_decoder(args[0])
        return lambda d: frozenset(item(x) for x in d)
    if _is_mapping(origin):
        value_dec = generic_decoder(args[1])
        return lambda d: {str(k): value_dec(x) for k, x in d.items()}
    raise TypeError(f"no decoder for {tp!r}")


# ---------------------------------------------------------------- compiled codecs
#
# Each attrs class gets one function of straight-line code. A _Source collects its lines and
# the objects they refer to (classes, enum tables, nested codecs) under generated names.


class _Source:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "SchemaError": SchemaError,
            "_datetime": datetime,
            "_UTC": UTC,
            "_to_utc": to_utc,
            "_iso_get": _ISO_TEXT.get,
            "_iso": _utc_isoformat,
            "_new": object.__new__,
            "_validating": _validators_on,
            "_fromiso": datetime.fromisoformat,
            "_date_fromiso": date.fromisoformat,
            "_timedelta": timedelta,
            "_sort_key": _sort_key,
            "_str_key": encode_basestring_ascii,
            "_encode_value": encode_value,
            "_decode_value": decode_value,
            "_MISSING": _MISSING,
        }
        self._counter = itertools.count()

    def fresh(self, stem: str) -> str:
        return f"{stem}{next(self._counter)}"

    def ref(self, stem: str, value: Any) -> str:
        for name, known in self.names.items():
            if known is value and name.startswith(f"_{stem}"):
                return name
        name = self.fresh(f"_{stem}")
        self.names[name] = value
        return name

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def build(self, name: str, qualname: str) -> Any:
        text = "\n".join(self.lines)
        code = compile(text, f"<helpkit codec: {qualname}>", "exec")
        exec(code, self.names)  # the source is built above from field names and types only
        function = self.names[name]
        function.__source__ = text  # for debugging: print(encoder(Ticket).__source__)
        return function


_MISSING = object()


def _class_fields(cls: type) -> list[tuple[attrs.Attribute[Any], Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in attrs.fields(cls) if f.init]


def _compile_encoder(cls: type) -> Encode:
    try:
        fields = _class_fields(cls)
        src = _Source()
        body: list[str] = []
        entries: list[str] = []
        for field, hint in fields:
            local = src.fresh("v")
            body.append(f"{local} = value.{field.name}")
            entries.append(f"{field.alias!r}: {_encode_expr(src, hint, local, body)},")
    except TypeError:
        return generic_encoder(cls)
    src.add(0, "def encode(value):")
    for line in body:
        src.add(1, line)
    src.add(1, "return {")
    for entry in entries:
        src.add(2, entry)
    src.add(1, "}")
    function: Encode = src.build("encode", cls.__qualname__)
    return function


def _encode_expr(src: _Source, tp: Any, name: str, body: list[str]) -> str:
    """An expression encoding the value in local ``name``; may append setup lines to body."""
    inner, optional = _strip_none(tp)
    expr = _encode_inner(src, inner, name, body)
    if optional and expr != name:
        return f"(None if {name} is None else {expr})"
    return expr


def _encode_inner(src: _Source, tp: Any, name: str, body: list[str]) -> str:
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
        return f"[{name}.days, {name}.seconds, {name}.microseconds]"
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
        item_type, _ = _strip_none(args[0])
        if item_type is str:
            # A string's sort key is its JSON text (see _sort_key): the same order.
            return f"(sorted({name}, key=_str_key) if {name} else [])"
        item = src.fresh("i")
        item_expr = _encode_expr(src, args[0], item, body)
        key = _flat_sort_key(src, item_type) if isinstance(item_type, type) else "_sort_key"
        return f"(sorted([{item_expr} for {item} in {name}], key={key}) if {name} else [])"
    if _is_mapping(origin) and len(args) == 2:
        key, item = src.fresh("k"), src.fresh("i")
        item_expr = _encode_expr(src, args[1], item, body)
        return (
            f"({{str({key}): {item_expr} for {key}, {item} in sorted({name}.items())}} "
            f"if {name} else {{}})"
        )
    raise TypeError(f"no compiled encoder for {tp!r}")


def _flat_sort_key(src: _Source, cls: type) -> str:
    """For a set of attrs objects whose fields all encode to strings (or None): a function
    giving the same text as ``_sort_key`` (JSON with sorted keys) on their encoded dicts,
    without the JSON encoder. Otherwise ``_sort_key`` itself."""
    if not attrs.has(cls):
        return "_sort_key"
    parts = []
    for field, hint in sorted(_class_fields(cls), key=lambda fh: str(fh[0].alias)):
        inner, optional = _strip_none(hint)
        is_text = inner is str or (
            isinstance(inner, type)
            and issubclass(inner, enum.Enum)
            and all(isinstance(m.value, str) for m in inner)
        )
        if not is_text:
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


def _compile_decoder(cls: type) -> Decode:
    decode = _compile_full_decoder(cls)
    text_fields = _text_fields(cls)
    if text_fields is None:
        return decode
    return _memoized(cls, decode, text_fields)


def _text_fields(cls: type) -> list[str] | None:
    """The keys of a frozen class whose fields all hold text (``str``, ``str | None``, enums
    of strings), or None. Such small values (actors, links) recur in every event."""
    if getattr(cls.__setattr__, "__name__", "") != "_frozen_setattrs":
        return None
    keys = []
    for field, hint in _class_fields(cls):
        inner, _ = _strip_none(hint)
        if not (
            inner is str
            or (
                isinstance(inner, type)
                and issubclass(inner, enum.Enum)
                and all(isinstance(m.value, str) for m in inner)
            )
        ):
            return None
        keys.append(str(field.alias))
    return keys or None


def _memoized(cls: type, decode: Decode, keys: list[str]) -> Decode:
    # Decoding such a value is a pure function of its raw strings, and the value is frozen,
    # so equal data may share one decoded object. The raw values are JSON scalars: one that
    # equals a remembered string is that string, so nothing unchecked gets through. Only
    # successes are remembered; the memo is cleared when full.
    src = _Source()
    src.names.update(_cls=cls, _full=decode, _memo={}, _SIZE=_ISO_TEXT_SIZE)
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
    function: Decode = src.build("decode", f"{cls.__qualname__} (memoized)")
    return function


def _compile_full_decoder(cls: type) -> Decode:
    try:
        fields = _class_fields(cls)
        src = _Source()
        src.names["_cls"] = cls
        class_name = cls.__name__
        src.add(0, "def decode(data):")
        src.add(1, "if data.__class__ is not dict and not isinstance(data, dict):")
        src.add(2, f"raise SchemaError(f'expected an object for {class_name}, found {{data!r}}')")
        arguments = []
        for field, hint in fields:
            local = src.fresh("v")
            alias = field.alias
            if field.default is attrs.NOTHING:
                src.add(1, f"{local} = data.get({alias!r}, _MISSING)")
                src.add(1, f"if {local} is _MISSING:")
                src.add(2, f"raise SchemaError({f'{class_name} misses field {alias!r}'!r})")
                _decode_into(src, hint, local, 1)
            else:
                # Absent: the field's default (converters apply to it as attrs would).
                given: Any = field.default
                if isinstance(given, attrs.Factory):  # type: ignore[arg-type]
                    if given.takes_self:
                        raise TypeError("a default that takes self")
                    default = f"{src.ref('factory', given.factory)}()"
                else:
                    default = src.ref("default", given)
                src.add(1, f"{local} = data.get({alias!r}, _MISSING)")
                src.add(1, f"if {local} is _MISSING:")
                src.add(2, f"{local} = {default}")
                src.add(1, "else:")
                if not _decode_into(src, hint, local, 2):
                    src.add(2, "pass")
            arguments.append(f"{alias}={local}")
        setters = _slot_setters(cls, [field for field, _ in fields])
        if setters is None:
            src.add(1, f"return _cls({', '.join(arguments)})")
        else:
            # What the attrs __init__ would do, without its call: the checks above and the
            # field converters are all the class asks for (see _slot_setters).
            src.add(1, "obj = _new(_cls)")
            checks: list[str] = []
            for (field, _), local in zip(fields, arguments, strict=True):
                value = local.partition("=")[2]
                setter, converter, validator = setters[field.name]
                if converter is not None:
                    value = f"{src.ref('convert', converter)}({value})"
                src.add(1, f"{src.ref('set', setter)}(obj, {value})")
                if validator is not None:
                    # After every field is set, as attrs runs them; the value as stored.
                    checks.append(
                        f"{src.ref('check', validator)}(obj, {src.ref('field', field)}, "
                        f"obj.{field.name})"
                    )
            if checks:
                src.add(1, "if _validating():")
                for check in checks:
                    src.add(2, check)
            src.add(1, "return obj")
    except TypeError:
        return generic_decoder(cls)
    function: Decode = src.build("decode", cls.__qualname__)
    return function


def _validators_on() -> bool:
    return not attrs.validators.get_disabled()


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


def _decode_into(src: _Source, tp: Any, name: str, indent: int) -> bool:
    """Lines that check and convert local ``name`` in place; False if it needs none."""
    inner, optional = _strip_none(tp)
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
}


def _decode_inner(src: _Source, tp: Any, name: str, indent: int) -> bool:
    add = src.add
    if tp is FieldValue:
        add(indent, f"{name} = _decode_value({name})")
        return True
    if tp in _CHECKS:
        condition, expected = _CHECKS[tp]
        add(indent, f"if {condition.format(name)}:")
        add(indent + 1, f"raise SchemaError(f'expected {expected}, found {{{name}!r}}')")
        return True
    if tp is Any:
        return False
    if tp is float:
        add(indent, f"{name} = float({name})")
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
        add(
            indent,
            f"{name} = _timedelta(days={name}[0], seconds={name}[1], microseconds={name}[2])",
        )
        return True
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        # A dict lookup for stored values; anything else goes through the enum's own call,
        # which accepts what it accepts and raises what it raises.
        table = src.ref("members", dict(tp._value2member_map_))
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
        if item_type is Any:
            add(indent, f"{name} = {collect}({name})")
        elif item_type in _CHECKS:
            # Check every item, then build the collection from the data as it is.
            add(indent, f"for {item} in {name}:")
            _decode_inner(src, item_type, item, indent + 1)
            add(indent, f"{name} = {collect}({name})")
        else:
            items = src.fresh("items")
            add(indent, f"{items} = []")
            add(indent, f"for {item} in {name}:")
            _decode_into(src, item_type, item, indent + 1)
            add(indent + 1, f"{items}.append({item})")
            add(indent, f"{name} = {collect}({items})")
        return True
    if _is_mapping(origin) and len(args) == 2:
        key, item = src.fresh("k"), src.fresh("i")
        value_type, optional = _strip_none(args[1])
        if value_type is FieldValue:
            value = f"_decode_value({item})"
            if optional:
                value = f"(None if {item} is None else {value})"
        elif value_type is Any:
            value = item
        else:
            raise TypeError(f"no compiled decoder for mappings of {args[1]!r}")
        add(indent, f"{name} = {{str({key}): {value} for {key}, {item} in {name}.items()}}")
        return True
    raise TypeError(f"no compiled decoder for {tp!r}")
