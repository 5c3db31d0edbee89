"""Helpers for helpkit's frozen value classes: a faster ``attrs.evolve``, a mapping converter.

``attrs.evolve`` rebuilds an instance through ``__init__``: every field's converter and
validator runs again, for the fields that did not change too. Folding an event into a ticket or
stamping a ticket number changes two or three of a ticket's thirty fields, so :func:`replace`
copies the other fields as they are and converts and validates only the new values (the others
were checked when the instance was built). It is exactly ``attrs.evolve`` for classes without
``__attrs_post_init__`` whose validators each look at their own field (all of helpkit's tickets
and events); for a class with a post-init hook it calls ``attrs.evolve``.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from helpkit._checks import pass_condition
from helpkit._time import optional_utc

__all__ = [
    "OMIT_DEFAULT",
    "SINCE_LATER",
    "build",
    "build_from",
    "builder",
    "frozen_mapping",
    "replace",
    "replace_from",
    "replacer",
]

_T = TypeVar("_T")

OMIT_DEFAULT = "helpkit.codec.omit_default"
"""attrs field metadata key: the codec leaves the field out of a value's JSON form while it
holds its default (fields added to a stored type later, so values that do not use them keep
the text stores wrote before; decoding gives a missing field its default)."""

SINCE_LATER: Mapping[str, Any] = MappingProxyType({OMIT_DEFAULT: True})
"""The metadata of a field added to a stored type after its first release."""


def frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``value``: the converter of the mapping fields of frozen classes."""
    return MappingProxyType(dict(value))


_Step = tuple[
    Callable[[Any], Any] | None,
    Callable[[Any, Any, Any], Any] | None,
    Any,
    Callable[[Any, Any], None],
]
_Plan = tuple[Callable[[Any], Any], dict[str, _Step]]
"""A function copying every field of an instance into a new one (no ``__init__``), and per
init name: the converter, the validator, the attribute and the function setting the field on
a new instance."""

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
    if any(not f.init for f in fields):
        return None
    names = tuple(f.name for f in fields)
    setters = _setters(cls, names)
    steps: dict[str, _Step] = {}
    for f in fields:
        converter = f.converter
        if isinstance(converter, _CONVERTER_CLASSES) or (
            converter is not None and not callable(converter)
        ):
            return None  # a converter that may take the instance: leave it to evolve
        steps[f.alias or f.name] = (converter, f.validator, f, setters[f.name])
    if tuple(steps) != names:
        return None  # private attributes with aliases: keep to evolve
    return _copier(cls, names, setters), steps


def _setters(cls: type, names: tuple[str, ...]) -> dict[str, Callable[[Any, Any], None]]:
    """Per field, the function setting it on an instance of ``cls`` made without
    ``__init__``: the ``__set__`` of its slot (a member descriptor) when the class keeps its
    fields in slots (attrs' default), which costs about two thirds of
    ``object.__setattr__(new, name, value)`` (no lookup by name); else that call."""
    found: dict[str, Callable[[Any, Any], None]] = {}
    for name in names:
        slot = next((c.__dict__[name] for c in cls.__mro__ if name in c.__dict__), None)
        if isinstance(slot, types.MemberDescriptorType):
            found[name] = slot.__set__
        else:
            found[name] = functools.partial(_set_by_name, name=name)
    return found


def _set_by_name(new: Any, value: Any, *, name: str) -> None:
    object.__setattr__(new, name, value)


def _copier(
    cls: type, names: tuple[str, ...], setters: Mapping[str, Callable[[Any, Any], None]]
) -> Callable[[Any], Any]:
    """A function returning a copy of an instance of ``cls`` made without ``__init__``: one
    straight line per field (a loop of ``getattr`` costs about twice as much, and a sweep
    replaces two tickets of thirty fields per due ticket)."""
    lines = ["def _copy(inst):", "    new = _new(_cls)"]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for index, name in enumerate(names):
        namespace[f"_set{index}"] = setters[name]
        lines.append(f"    _set{index}(new, inst.{name})")  # attrs field names are identifiers
    lines.append("    return new")
    exec("\n".join(lines), namespace)
    copy: Callable[[Any], Any] = namespace["_copy"]
    return copy


def replace(inst: _T, **changes: Any) -> _T:
    """``attrs.evolve(inst, **changes)``, converting and validating only the changed fields."""
    cls: type = type(inst)
    key = (cls, tuple(changes))
    replacer = _REPLACERS.get(key) or _made(_REPLACERS, key, _replacer)
    new: _T = replacer(inst, *changes.values())
    return new


def replace_from(inst: _T, changes: dict[str, Any]) -> _T:
    """:func:`replace` of the fields named in ``changes`` (``replace(inst, **changes)``)
    without copying the dictionary into keyword arguments: for callers that built it
    themselves (the fold). ``changes`` is not kept."""
    key = (type(inst), tuple(changes))
    replacer = _REPLACERS.get(key) or _made(_REPLACERS, key, _replacer)
    new: _T = replacer(inst, *changes.values())
    return new


def replacer(cls: type[_T], names: tuple[str, ...]) -> Callable[..., _T]:
    """The function ``(inst, *values)`` that does ``replace(inst, **dict(zip(names,
    values)))`` for an instance of exactly ``cls``, for a call site that always changes the
    same fields (an instance of a subclass needs :func:`replace`). Made at once."""
    made: Callable[..., _T] = _replacer(cls, names)
    return made


_REPLACERS: dict[tuple[type, tuple[str, ...]], Callable[..., Any]] = {}
"""The function replacing each set of fields of each class, by class and names (in the order
given); a call site names the same fields each time, so there are few."""
_CACHE_SIZE = 1024


def _made(
    cache: dict[tuple[type, tuple[str, ...]], Callable[..., Any]],
    key: tuple[type, tuple[str, ...]],
    make: Callable[[type, tuple[str, ...]], Callable[..., Any]],
) -> Callable[..., Any]:
    """``make(*key)``, kept in ``cache`` (emptied when it holds :data:`_CACHE_SIZE`)."""
    made = make(*key)
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = made
    return made


def _function(name: str, lines: list[str], checks: list[str], namespace: dict[str, Any]) -> Any:
    """The function ``name`` that ``lines`` (its header and body) define in ``namespace``,
    with ``checks`` (validator lines) run unless attrs' validators are disabled, returning
    ``new``."""
    if checks:
        namespace["_get_disabled"] = attrs.validators.get_disabled
        lines.append("    if not _get_disabled():")
        lines.extend(checks)
    lines.append("    return new")
    exec("\n".join(lines), namespace)
    return namespace[name]


def _check_lines(
    namespace: dict[str, Any], index: int, validator: Any, attribute: Any, value: str
) -> list[str]:
    """The generated lines validating ``value`` (an expression) of field number ``index``
    with ``validator``: the common checks of :mod:`helpkit._checks` inline
    (:data:`~helpkit._checks.PASSES`), calling the validator only for a value that does not
    plainly pass it."""
    namespace[f"_check{index}"] = validator
    namespace[f"_field{index}"] = attribute
    call = f"_check{index}(new, _field{index}, x)"
    passes = pass_condition(validator, functools.partial(_name, namespace))
    if passes is None:
        return [f"        x = {value}", f"        {call}"]
    return [
        f"        x = {value}",
        f"        if not ({passes.format('x')}):",
        f"            {call}",
    ]


def _replacer(cls: type, names: tuple[str, ...]) -> Callable[..., Any]:
    """The function ``(inst, *values)`` doing :func:`replace` of ``names`` on an instance of
    ``cls``: one straight line per field, made once per class and names. The changed values
    are converted in the order given, every other field is copied as it is, then the changed
    values are validated in the order given: what a loop over the changes did, without the
    loop, the copy of fields set again, and the look-ups. A class :func:`_plan` leaves to
    evolve, or a name that is not a field (TypeError), takes the loop."""
    plan = _plan(cls)
    if plan is None or any(name not in plan[1] for name in names):
        return functools.partial(_replace_by_loop, names=names)
    steps = plan[1]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    arguments = [f"a{index}" for index in range(len(names))]
    lines = [f"def _replace({', '.join(['inst', *arguments])}):"]
    given = dict(zip(names, arguments, strict=True))
    for index, name in enumerate(names):
        converter = steps[name][0]
        if converter is not None:
            namespace[f"_convert{index}"] = converter
            lines.append(f"    a{index} = _convert{index}(a{index})")
    lines.append("    new = _new(_cls)")
    for index, (name, (_converter, _validator, _attribute, set_field)) in enumerate(steps.items()):
        namespace[f"_set{index}"] = set_field
        value = given.get(name, f"inst.{name}")  # attrs field names are identifiers
        lines.append(f"    _set{index}(new, {value})")
    checks = []
    for index, name in enumerate(names):
        _converter, validator, attribute, _set_field = steps[name]
        if validator is not None:
            checks.extend(_check_lines(namespace, index, validator, attribute, f"a{index}"))
    replace_fields: Callable[..., Any] = _function("_replace", lines, checks, namespace)
    return replace_fields


def _replace_by_loop(inst: Any, *values: Any, names: tuple[str, ...]) -> Any:
    """:func:`replace` of ``names`` (given ``values``) by a loop over the changes."""
    changes = dict(zip(names, values, strict=True))
    cls: type = type(inst)
    plan = _plan(cls)
    if plan is None:
        return attrs.evolve(inst, **changes)
    copy, steps = plan
    new = copy(inst)
    checks = []
    for name, value in changes.items():
        try:
            converter, validator, attribute, set_field = steps[name]
        except KeyError:
            raise TypeError(f"{cls.__name__} has no field {name!r}") from None
        converted = value if converter is None else converter(value)
        set_field(new, converted)
        if validator is not None:
            checks.append((validator, attribute, converted))
    if checks and not attrs.validators.get_disabled():
        for validator, attribute, converted in checks:
            validator(new, attribute, converted)
    return new


def build(cls: type[_T], **fields: Any) -> _T:
    """``cls(**fields)``, for the attrs classes :func:`replace` copies: one generated function
    per class and set of names given, which does what the attrs ``__init__`` does (defaults,
    converters and slots in field order, then the validators in field order) and writes the
    common checks of :mod:`helpkit._checks` inline (:data:`~helpkit._checks.PASSES`), calling
    a validator only for a value that does not plainly pass it. Anything else (another kind
    of class, a missing or unknown name) is ``cls(**fields)`` itself."""
    key = (cls, tuple(fields))
    builder = _BUILDERS.get(key) or _made(_BUILDERS, key, _builder)
    made: _T = builder(*fields.values())
    return made


def build_from(cls: type[_T], fields: dict[str, Any]) -> _T:
    """:func:`build` of ``fields`` (``build(cls, **fields)``) without copying the dictionary
    into keyword arguments: for callers that built it themselves. ``fields`` is not kept."""
    key = (cls, tuple(fields))
    made: _T = (_BUILDERS.get(key) or _made(_BUILDERS, key, _builder))(*fields.values())
    return made


def builder(cls: type[_T], names: tuple[str, ...]) -> Callable[..., _T]:
    """The function ``(*values)`` that does ``build(cls, **dict(zip(names, values)))``, for a
    call site that always names the same fields: it calls it with the values in the order of
    ``names``, without a dictionary or a look-up per call. Made at once (not kept in
    :func:`build`'s cache, which may be emptied)."""
    made: Callable[..., _T] = _builder(cls, names)
    return made


_BUILDERS: dict[tuple[type, tuple[str, ...]], Callable[..., Any]] = {}


def _by_init(cls: type, *values: Any, names: tuple[str, ...]) -> Any:
    return cls(**dict(zip(names, values, strict=True)))


def _builder(cls: type, names: tuple[str, ...]) -> Callable[..., Any]:
    """The function ``(*values)`` doing :func:`build` of ``names`` for ``cls``."""
    plan = _plan(cls)
    init = getattr(cls, "__init__", None)
    code = getattr(init, "__code__", None)
    fields = attrs.fields(cls) if attrs.has(cls) else ()
    given = {name: f"a{index}" for index, name in enumerate(names)}
    if (
        plan is None
        or code is None
        or not code.co_filename.startswith("<attrs generated")
        or set(given) - {f.alias for f in fields}
        or any(
            (f.default is attrs.NOTHING and f.alias not in given)
            or (isinstance(f.default, attrs.Factory) and f.default.takes_self)  # type: ignore[arg-type]
            for f in fields
        )
    ):
        return functools.partial(_by_init, cls, names=names)
    steps = plan[1]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def _build({', '.join(given.values())}):", "    new = _new(_cls)"]
    checks: list[str] = []
    for index, field in enumerate(fields):
        converter, validator, attribute, set_field = steps[field.alias]
        if field.alias in given:
            value = given[field.alias]
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            namespace[f"_factory{index}"] = field.default.factory
            value = f"_factory{index}()"
        elif field.default is None and converter is optional_utc:
            value, converter = "None", None  # (what optional_utc gives for its None default)
        else:
            namespace[f"_default{index}"] = field.default
            value = f"_default{index}"
        if converter is not None:
            namespace[f"_convert{index}"] = converter
            value = f"_convert{index}({value})"
        namespace[f"_set{index}"] = set_field
        lines.append(f"    _set{index}(new, {value})")
        if validator is not None:
            checks.extend(_check_lines(namespace, index, validator, attribute, f"new.{field.name}"))
    made: Callable[..., Any] = _function("_build", lines, checks, namespace)
    return made


def _name(namespace: dict[str, Any], value: object) -> str:
    """The name of ``value`` in a generated function's ``namespace`` (added if new)."""
    for name, known in namespace.items():
        if known is value and name.startswith("_kind"):
            return name
    name = f"_kind{len(namespace)}"
    namespace[name] = value
    return name
