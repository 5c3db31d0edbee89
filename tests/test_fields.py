"""Typed custom fields: each kind validates and refuses; stored values round-trip."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit.errors import ValidationError
from helpkit.fields import CustomField, FieldKind, FieldSet, FieldValue, decode_value, encode_value
from helpkit.testing.strategies import custom_fields, field_values

TEXT = CustomField(name="asset", kind=FieldKind.TEXT)
INTEGER = CustomField(name="seats", kind="integer")
NUMBER = CustomField(name="cost", kind=FieldKind.NUMBER)
BOOLEAN = CustomField(name="onsite", kind=FieldKind.BOOLEAN)
DATE = CustomField(name="due", kind=FieldKind.DATE)
CHOICE = CustomField(name="product", kind=FieldKind.CHOICE, choices=("vpn", "mail"))
MULTI = CustomField(name="os", kind=FieldKind.MULTI_CHOICE, choices=("linux", "mac", "windows"))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (TEXT, "ÄB-12", "ÄB-12"),
        (TEXT, "", ""),
        (INTEGER, 42, 42),
        (NUMBER, 3, 3.0),
        (NUMBER, 2.5, 2.5),
        (BOOLEAN, False, False),
        (DATE, date(2026, 2, 28), date(2026, 2, 28)),
        (DATE, "2026-02-28", date(2026, 2, 28)),
        (CHOICE, "vpn", "vpn"),
        (MULTI, ["windows", "linux"], ("linux", "windows")),  # configured order, not input order
        (MULTI, {"mac"}, ("mac",)),
        (MULTI, [], ()),
    ],
)
def test_kinds_accept(field: CustomField, value: object, expected: FieldValue) -> None:
    result = field.validate(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (TEXT, 3),
        (TEXT, None),
        (INTEGER, True),
        (INTEGER, 1.0),
        (INTEGER, "1"),
        (NUMBER, True),
        (NUMBER, float("nan")),
        (NUMBER, float("inf")),
        (NUMBER, "2.5"),
        pytest.param(NUMBER, 10**400, id="huge-int"),  # used to escape as OverflowError
        (BOOLEAN, 1),
        (BOOLEAN, "true"),
        (DATE, datetime(2026, 2, 28, 12)),
        (DATE, "2026-02-30"),
        (DATE, "tomorrow"),
        (DATE, 20260228),
        (CHOICE, "VPN"),
        (CHOICE, ["vpn"]),
        (MULTI, "linux"),
        (MULTI, ["linux", "beos"]),
        (MULTI, [1]),
    ],
)
def test_kinds_refuse(field: CustomField, value: object) -> None:
    with pytest.raises(ValidationError, match=field.name):
        field.validate(value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "kind": "text"},
        {"name": "has space", "kind": "text"},
        {"name": "x", "kind": "choice"},
        {"name": "x", "kind": "multi_choice", "choices": ()},
        {"name": "x", "kind": "text", "choices": ("a",)},
        {"name": "x", "kind": "choice", "choices": ("a", "")},
    ],
)
def test_bad_definitions(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CustomField(**kwargs)  # type: ignore[arg-type]


def test_unknown_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="colour"):
        CustomField(name="x", kind="colour")


def test_fieldset_validation() -> None:
    required = CustomField(name="product", kind=FieldKind.CHOICE, choices=("vpn",), required=True)
    fields = FieldSet([required, TEXT])
    assert fields.validate({"asset": "A1", "product": "vpn"}) == {"asset": "A1", "product": "vpn"}
    assert fields.validate({"asset": None}) == {"asset": None}  # None clears an optional field
    with pytest.raises(ValidationError, match="unknown custom field 'nope'"):
        fields.validate({"nope": 1})
    with pytest.raises(ValidationError, match="cannot be cleared"):
        fields.validate({"product": None})
    with pytest.raises(ValidationError, match="missing: product"):
        fields.validate({"asset": "A1"}, partial=False)
    with pytest.raises(ValidationError, match="defined twice"):
        FieldSet([TEXT, TEXT])


def test_fieldset_accepts_a_mapping_and_is_read_only() -> None:
    fields = FieldSet({"anything": TEXT})
    assert list(fields.fields) == ["asset"]
    with pytest.raises(TypeError):
        fields.fields["x"] = TEXT  # type: ignore[index]


@given(st.data(), custom_fields())
def test_generated_values_validate_and_round_trip_through_json(
    data: st.DataObject, field: CustomField
) -> None:
    value = data.draw(field_values(field))
    assert field.validate(value) == value
    stored = json.loads(json.dumps(encode_value(value)))
    decoded = decode_value(stored)
    assert decoded == value
    assert type(decoded) is type(value)


def test_date_and_multi_choice_survive_json() -> None:
    for value in (date(1999, 12, 31), ("a", "b"), (), 0.1, True, 7, "2026-01-01"):
        assert decode_value(json.loads(json.dumps(encode_value(value)))) == value
    # A text value that looks like a date stays text.
    assert decode_value(encode_value("2026-01-01")) == "2026-01-01"


def test_decode_refuses_unknown_shapes() -> None:
    with pytest.raises(ValidationError):
        decode_value(None)
