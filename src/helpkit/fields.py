"""Typed custom fields on tickets: definitions and value validation."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from types import MappingProxyType

import attrs

from helpkit._checks import INT64_MAX, INT64_MIN, check_text
from helpkit.errors import ValidationError

__all__ = [
    "CustomField",
    "FieldKind",
    "FieldSet",
    "FieldValue",
    "check_field_value",
    "field_value_map",
    "optional_field_value_map",
]

FieldValue = str | int | float | bool | date | tuple[str, ...]
"""A custom field value: text, integer, number, boolean, date or a multi-choice tuple."""


def check_field_value(value: object, what: str) -> FieldValue:
    """``value`` if it is a storable custom field value, else ValidationError.

    Text (storable, see :func:`helpkit._checks.check_text`), a 64-bit integer, a finite
    float, a bool, a date (not a datetime) or a tuple of texts.
    """
    if isinstance(value, str):
        return check_text(value, what)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(f"{what} does not fit in 64 bits: {value}")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"{what} must be a finite number; got {value!r}")
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, tuple):
        return tuple(check_text(item, what) for item in value)
    raise ValidationError(
        f"{what} must be text, an integer, a number, a boolean, a date or a tuple of texts; "
        f"got {value!r:.60}"
    )


_NO_VALUES: Mapping[str, FieldValue] = MappingProxyType({})
"""The read-only empty mapping :func:`field_value_map` gives for an empty dict."""


def field_value_map(value: object) -> Mapping[str, FieldValue]:
    """A read-only copy of a ``name -> value`` mapping of checked custom field values."""
    kind = value.__class__
    if kind is dict and not value:
        return _NO_VALUES  # (most tickets have no custom fields: one shared empty copy)
    if kind is not dict and kind is not MappingProxyType and not isinstance(value, Mapping):
        raise ValidationError(f"custom fields must be a mapping; got {value!r:.60}")
    mapping: Mapping[object, object] = value  # type: ignore[assignment]
    return MappingProxyType(
        {
            check_text(name, "a custom field name"): check_field_value(item, f"field {name!r}")
            for name, item in mapping.items()
        }
    )


def optional_field_value_map(value: object) -> Mapping[str, FieldValue | None]:
    """Like :func:`field_value_map`, but ``None`` (a cleared field) is allowed as a value."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"custom fields must be a mapping; got {value!r:.60}")
    return MappingProxyType(
        {
            check_text(name, "a custom field name"): None
            if item is None
            else check_field_value(item, f"field {name!r}")
            for name, item in value.items()
        }
    )


class FieldKind(enum.Enum):
    """The type of a custom field."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"


def _choices(values: Iterable[str]) -> tuple[str, ...]:
    result = tuple(dict.fromkeys(values))
    if not all(isinstance(v, str) and check_text(v, "a choice") for v in result):
        raise ValidationError("choices must be non-empty strings")
    return result


@attrs.frozen(kw_only=True)
class CustomField:
    """The definition of one custom field."""

    name: str
    kind: FieldKind = attrs.field(converter=FieldKind)
    choices: tuple[str, ...] = attrs.field(default=(), converter=_choices)
    required: bool = False
    label: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValidationError(
                f"custom field name {self.name!r} must be letters, digits, '_' or '-'"
            )
        wants_choices = self.kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE)
        if wants_choices and not self.choices:
            raise ValidationError(
                f"custom field {self.name!r} of kind {self.kind.value} needs choices"
            )
        if not wants_choices and self.choices:
            raise ValidationError(
                f"custom field {self.name!r} of kind {self.kind.value} takes no choices"
            )

    def validate(self, value: object) -> FieldValue:
        """Return ``value`` checked (and lightly coerced) for this field, or raise."""
        kind = self.kind
        bad = ValidationError(f"custom field {self.name!r} expects {kind.value}, got {value!r}")
        if kind is FieldKind.TEXT:
            if not isinstance(value, str):
                raise bad
            return check_text(value, f"custom field {self.name!r}")
        if kind is FieldKind.INTEGER:
            # 64-bit signed, so every store (SQLite, PostgreSQL bigint) holds it exactly.
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not INT64_MIN <= value <= INT64_MAX
            ):
                raise bad
            return value
        if kind is FieldKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            try:
                number = float(value)
            except OverflowError:  # an int too large for a float
                raise bad from None
            if number != number or number in (float("inf"), float("-inf")):
                raise bad
            return number
        if kind is FieldKind.BOOLEAN:
            if not isinstance(value, bool):
                raise bad
            return value
        if kind is FieldKind.DATE:
            if isinstance(value, str):
                try:
                    return date.fromisoformat(value)
                except ValueError:
                    raise bad from None
            if isinstance(value, datetime) or not isinstance(value, date):
                raise bad
            return value
        if kind is FieldKind.CHOICE:
            if value not in self.choices:
                raise ValidationError(
                    f"custom field {self.name!r} must be one of "
                    f"{', '.join(self.choices)}; got {value!r}"
                )
            assert isinstance(value, str)
            return value
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            raise bad
        picked = tuple(v for v in self.choices if v in value)
        unknown = [v for v in value if v not in self.choices]
        if unknown:
            raise ValidationError(f"custom field {self.name!r} has no choice(s) {unknown!r}")
        return picked


def _field_map(
    fields: Iterable[CustomField] | Mapping[str, CustomField],
) -> Mapping[str, CustomField]:
    items = fields.values() if isinstance(fields, Mapping) else fields
    result: dict[str, CustomField] = {}
    for field in items:
        if field.name in result:
            raise ValidationError(f"custom field {field.name!r} is defined twice")
        result[field.name] = field
    return MappingProxyType(result)


@attrs.frozen
class FieldSet:
    """The custom fields a helpdesk knows about."""

    fields: Mapping[str, CustomField] = attrs.field(factory=dict, converter=_field_map)

    def __hash__(self) -> int:
        return hash(tuple(self.fields.values()))

    def validate(
        self, values: Mapping[str, object], *, partial: bool = True
    ) -> dict[str, FieldValue | None]:
        """Check ``values`` (``None`` clears); ``partial=False`` also demands required fields."""
        result: dict[str, FieldValue | None] = {}
        for name, value in values.items():
            field = self.fields.get(name)
            if field is None:
                known = ", ".join(sorted(self.fields)) or "none defined"
                raise ValidationError(f"unknown custom field {name!r} (known: {known})")
            if value is None:
                if field.required:
                    raise ValidationError(
                        f"custom field {name!r} is required and cannot be cleared"
                    )
                result[name] = None
            else:
                result[name] = field.validate(value)
        if not partial:
            missing = [n for n, f in self.fields.items() if f.required and result.get(n) is None]
            if missing:
                raise ValidationError(f"required custom field(s) missing: {', '.join(missing)}")
        return result


def encode_value(value: FieldValue) -> object:
    """A JSON-safe form of a field value (dates are tagged so they survive the round trip)."""
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    return value


def decode_value(data: object) -> FieldValue:
    """The inverse of :func:`encode_value`."""
    if isinstance(data, dict):
        return date.fromisoformat(str(data["date"]))
    if isinstance(data, list):
        return tuple(str(v) for v in data)
    if isinstance(data, (str, int, float, bool)):
        return data
    raise ValidationError(f"cannot decode custom field value {data!r}")
