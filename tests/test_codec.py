"""The compiled codec against the reference one (``codec_reference``): same data, same errors."""

from __future__ import annotations

import base64
import json
import linecache
import math
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec_reference import generic_decoder, generic_encoder
from helpkit import serialize
from helpkit._codec import decoder, encoder
from helpkit._codec.text import dumps as compact_dumps
from helpkit._codec.text import strict_dumps
from helpkit.errors import NaiveDatetimeError, SchemaError, ValidationError
from helpkit.events import EVENT_TYPES, Event, event_from_dict, event_to_dict
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.ports import (
    Address,
    InboundAttachment,
    InboundMessage,
    Receipt,
    ReceiptState,
)
from helpkit.testing.strategies import (
    contacts,
    inbound_messages,
    organizations,
    receipts,
    ticket_histories,
    tickets,
)
from helpkit.tickets import Actor, Comment, Link, LinkKind, Ticket
from test_events import every_event_type

NOW = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")

_instants = st.none() | st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, PARIS, ZoneInfo("America/New_York")]),
)


@st.composite
def _scheduled_tickets(draw: st.DrawFn) -> Ticket:
    ticket = draw(tickets(max_commands=8))
    return attrs.evolve(
        ticket,
        sla_policy=draw(st.none() | st.sampled_from(["gold", "Été"])),
        next_deadline=draw(_instants),
        next_check=draw(_instants),
        tags=draw(st.frozensets(st.sampled_from(["a", "a ", "Z", "é", "ž", '"q"', "\\", "\x01"]))),
        followers=ticket.followers
        | draw(st.frozensets(st.builds(Actor.agent, st.sampled_from(["a", "é", "b c"])))),
    )


def _same(compiled: Any, generic: Any) -> None:
    assert compiled == generic
    # The same text, not only equal data: sets are listed in the same order.
    assert json.dumps(compiled) == json.dumps(generic)


@settings(max_examples=80, deadline=None)
@given(_scheduled_tickets())
def test_tickets_encode_and_decode_like_the_reference(ticket: Ticket) -> None:
    data = encoder(Ticket)(ticket)
    _same(data, generic_encoder(Ticket)(ticket))
    back = decoder(Ticket)(json.loads(json.dumps(data)))
    assert back == ticket == generic_decoder(Ticket)(data)
    assert _fields(back) == _fields(ticket)
    assert type(back.custom_fields) is type(generic_decoder(Ticket)(data).custom_fields)


def _fields(value: Any) -> dict[str, Any]:
    # == on a ticket is field equality; also compare what __hash__ and attrs.evolve see.
    return {f.name: getattr(value, f.name) for f in attrs.fields(type(value))}


@settings(max_examples=60, deadline=None)
@given(ticket_histories(max_commands=12))
def test_events_encode_and_decode_like_the_reference(history: list[Event]) -> None:
    for event in history:
        cls = type(event)
        data = encoder(cls)(event)
        _same(data, generic_encoder(cls)(event))
        assert decoder(cls)(data) == event == generic_decoder(cls)(data)
        assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event


@settings(max_examples=30, deadline=None)
@given(contacts(), organizations())
def test_people_encode_and_decode_like_the_reference(
    contact: Contact, organization: Organization
) -> None:
    agent = Agent(id="a1", name="Al", email="AL@example.com", group_ids=("g1",))
    for value in (contact, organization, agent, Group(id="g1", name="Desk", tier=2)):
        cls = type(value)
        data = encoder(cls)(value)
        _same(data, generic_encoder(cls)(value))
        assert decoder(cls)(data) == value == generic_decoder(cls)(data)


@settings(max_examples=60, deadline=None)
@given(receipts(), inbound_messages())
def test_receipts_and_inbound_messages_encode_and_decode_like_the_reference(
    receipt: Receipt, message: InboundMessage
) -> None:
    for value in (receipt, message, *message.attachments):
        cls = type(value)
        data = encoder(cls)(value)
        _same(data, generic_encoder(cls)(value))
        assert decoder(cls)(data) == value == generic_decoder(cls)(data)
        # And through JSON text, as a store keeps it.
        assert serialize.loads(cls, serialize.dumps(value)) == value


@given(st.binary(max_size=64))
def test_bytes_are_standard_base64_text(data: bytes) -> None:
    text = encoder(bytes)(data)
    assert text == generic_encoder(bytes)(data) == base64.b64encode(data).decode("ascii")
    assert decoder(bytes)(text) == data == generic_decoder(bytes)(text)
    assert serialize.from_data(bytes, serialize.to_data(data)) == data


_BASE64_ISH = st.text(st.sampled_from("AQgwBCDE/+=az09 \n\xe9-_"), max_size=12) | st.binary(
    max_size=9
).map(lambda b: base64.b64encode(b).decode("ascii"))


@given(_BASE64_ISH)
def test_only_canonical_base64_is_read_like_the_reference(text: str) -> None:
    expected = _outcome(lambda: generic_decoder(bytes)(text))
    assert _outcome(lambda: decoder(bytes)(text)) == expected
    if expected[0] == "ok":
        assert encoder(bytes)(expected[1]) == text  # one value, one text
    else:
        with pytest.raises(SchemaError):
            serialize.from_data(bytes, text)


@pytest.mark.parametrize(
    "text", ["QQ", "QR==", "QUI=x", "QUJD\n", " QUJD", "QUJD====", "QU JD", "QUJ-", "Q===", 5, None]
)
def test_bad_base64_is_a_schema_error(text: object) -> None:
    with pytest.raises(SchemaError):
        decoder(bytes)(text)
    with pytest.raises(SchemaError, match="cannot read InboundAttachment"):
        serialize.from_data(
            InboundAttachment,
            {"filename": "a", "content_type": "text/plain", "data": text},
        )


_BAD_VALUES: tuple[object, ...] = (
    None,
    5,
    True,
    1.5,
    "",
    "x",
    "2026-03-02T09:00:00",  # a naive instant
    "2026-03-02T09:00:00+01:00",
    [],
    ["a", 1],
    [{"kind": "agent", "id": " "}],
    {},
    {"kind": "robot", "id": "x"},
    {"kind": "agent", "id": 5},
    {"due": {"when": "2026-01-01"}},
    "QR==",  # base64 with stray bits
    "QUJD\n",
    # what the checks refuse that the decoders' type checks let through (ids, text, counts)
    " x",
    "x ",
    " ",
    "a\x00b",
    "caf\udce9",
    "caf\u00e9",
    " caf\u00e9",
    -1,
    0,
    2**63,
    -(2**63) - 1,
    False,
)


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except (SchemaError, ValidationError, TypeError, ValueError, AttributeError, KeyError) as exc:
        return ("error", type(exc))


def _samples() -> list[tuple[type, dict[str, Any]]]:
    ticket = attrs.evolve(
        _ticket(), next_deadline=NOW, next_check=NOW, followers=frozenset({Actor.agent("x")})
    )
    samples: list[tuple[type, dict[str, Any]]] = [(Ticket, encoder(Ticket)(ticket))]
    comment = Comment(id="m1", author=Actor.agent("a"), body="Hi", public=True, channel="web",
                      created_at=NOW)  # fmt: skip
    samples.append((Comment, encoder(Comment)(comment)))
    samples.append((Actor, {"kind": "agent", "id": "a"}))
    samples.append((Link, {"kind": "related", "target_id": "t2"}))
    for event in _every_event():
        samples.append((type(event), encoder(type(event))(event)))
    attachment = InboundAttachment(filename="a.bin", content_type="x/y", data=b"\x00\xff")
    message = InboundMessage(
        channel="email",
        sender_address="a@example.com",
        sender_name=None,
        subject="Hi",
        body="Hello",
        received_at=NOW,
        external_id="m1@example.com",
        to=(Address("b@example.com", "B"),),
        headers={"X-A": "1"},
        attachments=(attachment,),
    )
    receipt = Receipt(
        key="email:m1@example.com",
        state=ReceiptState.SUSPENDED,
        received_at=NOW,
        updated_at=NOW,
        reason="auto-reply",
        message=message,
    )
    samples.append((InboundAttachment, encoder(InboundAttachment)(attachment)))
    samples.append((InboundMessage, encoder(InboundMessage)(message)))
    samples.append((Receipt, encoder(Receipt)(receipt)))
    return samples


def _ticket() -> Ticket:
    from helpkit import lifecycle
    from helpkit.priority import ITIL_MATRIX, Impact, Urgency
    from helpkit.tickets import DEFAULT_WORKFLOW

    return lifecycle.open_ticket(
        ticket_id="t1",
        number=1,
        at=NOW,
        actor=Actor.contact("c1"),
        subject="Printer",
        requester_id="c1",
        organization_id=None,
        impact=Impact.HIGH,
        urgency=Urgency.LOW,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="web",
        tags=["x"],
        custom_fields={"due": date(2026, 4, 1), "os": ("linux",), "seats": 2},
    ).ticket


def _every_event() -> list[Event]:
    return every_event_type()


@pytest.mark.parametrize(("cls", "data"), _samples(), ids=lambda v: getattr(v, "__name__", ""))
def test_malformed_fields_fail_like_the_reference(cls: type, data: dict[str, Any]) -> None:
    for key in data:
        for bad in _BAD_VALUES:
            broken = {**data, key: bad}
            expected = _outcome(lambda: generic_decoder(cls)(broken))  # noqa: B023
            got = _outcome(lambda: decoder(cls)(broken))  # noqa: B023
            assert got == expected, (cls.__name__, key, bad)
        missing = {k: v for k, v in data.items() if k != key}
        expected = _outcome(lambda: generic_decoder(cls)(missing))  # noqa: B023
        assert _outcome(lambda: decoder(cls)(missing)) == expected, (cls.__name__, key)  # noqa: B023
    not_objects: tuple[object, ...] = (None, [], "x", 5)
    for not_an_object in not_objects:
        with pytest.raises(SchemaError, match=f"expected an object for {cls.__name__}"):
            decoder(cls)(not_an_object)


def test_a_missing_required_field_is_named() -> None:
    data = encoder(Ticket)(_ticket())
    del data["subject"]
    with pytest.raises(SchemaError, match="Ticket misses field 'subject'"):
        decoder(Ticket)(data)


def test_every_event_type_has_a_compiled_codec() -> None:
    for cls in EVENT_TYPES.values():
        assert "<helpkit codec" in encoder(cls).__code__.co_filename
        assert "<helpkit codec" in decoder(cls).__code__.co_filename


def test_instants_are_written_in_utc_whatever_their_zone() -> None:
    encode = encoder(Ticket)
    utc = attrs.evolve(_ticket(), next_check=NOW)
    paris = attrs.evolve(utc, next_check=NOW.astimezone(PARIS))
    assert encode(utc)["next_check"] == encode(paris)["next_check"]
    assert encode(paris)["next_check"] == "2026-03-02T09:00:00.123456+00:00"
    # A naive datetime never gets into a ticket, so no remembered text can let one through.
    with pytest.raises(NaiveDatetimeError):
        attrs.evolve(utc, next_check=NOW.replace(tzinfo=None))
    for _ in range(5000):  # past the memo's size: it is cleared, not grown
        encode(attrs.evolve(utc, next_check=NOW + timedelta(seconds=_)))
    assert encode(paris)["next_check"] == "2026-03-02T09:00:00.123456+00:00"


def test_remembered_small_values_let_no_bad_data_through() -> None:
    decode = decoder(Actor)
    assert decode({"kind": "agent", "id": "5"}) == Actor.agent("5")
    with pytest.raises(SchemaError):
        decode({"kind": "agent", "id": 5})
    with pytest.raises(ValidationError):
        decode({"kind": "agent", "id": " "})
    with pytest.raises(ValueError):
        decode({"kind": "robot", "id": "5"})
    assert decode({"kind": "agent", "id": "5", "extra": 1}) == Actor.agent("5")
    assert decoder(Link)({"kind": "related", "target_id": "t"}) == Link(LinkKind.RELATED, "t")


def test_any_mapping_and_date_field_compiles() -> None:
    @attrs.frozen
    class Odd:
        counts: dict[str, int]
        when: date
        spans: Mapping[str, tuple[timedelta, ...]] = attrs.field(factory=dict)

    value = Odd({"b": 2, "a": 1}, date(2026, 1, 2), {"x": (timedelta(hours=1),)})
    data = encoder(Odd)(value)
    assert data == {"counts": {"a": 1, "b": 2}, "when": "2026-01-02", "spans": {"x": ["PT1H"]}}
    assert data == generic_encoder(Odd)(value)
    assert decoder(Odd)(data) == value == generic_decoder(Odd)(data)
    assert "<helpkit codec: decode " in decoder(Odd).__code__.co_filename
    with pytest.raises(SchemaError, match="an integer"):
        decoder(Odd)({"counts": {"a": "1"}, "when": "2026-01-02"})
    with pytest.raises(SchemaError, match="an object"):
        decoder(Odd)({"counts": [], "when": "2026-01-02"})


def test_types_without_a_form_are_refused_when_the_codec_is_built() -> None:
    @attrs.frozen
    class Mixed:
        value: int | str

    for tp in (Mixed, list[int], set[str], int | str, object):
        with pytest.raises(TypeError, match="no form"):
            encoder(tp)
        with pytest.raises(TypeError, match="no form"):
            decoder(tp)


def test_plain_types_get_compiled_codecs_too() -> None:
    paris = NOW.astimezone(PARIS)
    assert encoder(datetime)(paris) == "2026-03-02T09:00:00.123456+00:00"
    assert decoder(datetime)("2026-03-02T10:00:00.123456+01:00") == NOW
    assert encoder(tuple[Actor, ...])((Actor.agent("a"),)) == [{"kind": "agent", "id": "a"}]
    assert decoder(Actor | None)(None) is None
    assert decoder(frozenset[LinkKind])(["related"]) == {LinkKind.RELATED}
    assert encoder(timedelta)(timedelta(minutes=-90)) == "-PT1H30M"
    with pytest.raises(SchemaError, match="a list"):
        decoder(tuple[str, ...])("abc")


def test_validation_of_classes_with_checks_still_runs_on_decode() -> None:
    @attrs.frozen
    class Checked:
        name: str = attrs.field(validator=attrs.validators.min_len(2))

    assert decoder(Checked)({"name": "ok"}) == Checked("ok")
    with pytest.raises(ValueError):
        decoder(Checked)({"name": "x"})
    with pytest.raises(ValidationError, match="non-empty"):
        decoder(Comment)({**encoder(Comment)(_comment()), "body": " "})


def _comment() -> Comment:
    return Comment(
        id="m1", author=Actor.agent("a"), body="Hi", public=True, channel="web", created_at=NOW
    )


def test_classes_with_more_to_initialize_are_built_by_their_init() -> None:
    @attrs.frozen(cache_hash=True)
    class Hashed:
        name: str

    value = decoder(Hashed)({"name": "x"})
    assert hash(value) == hash(Hashed("x"))


def test_tickets_are_built_without_their_init_but_with_their_converters() -> None:
    source = getattr(decoder(Ticket), "__source__", "")
    assert "_new(_cls)" in source
    back = decoder(Ticket)(encoder(Ticket)(_ticket()))
    assert back == _ticket()
    assert type(back.custom_fields).__name__ == "mappingproxy"
    assert hash(back) == hash(_ticket())


def test_tracebacks_show_the_generated_line_that_failed() -> None:
    data = {**encoder(Ticket)(_ticket()), "created_at": 5}
    linecache.checkcache()  # what traceback does: generated entries survive it
    try:
        decoder(Ticket)(data)
    except TypeError:
        text = traceback.format_exc()
    else:
        pytest.fail("a number is not an instant")
    assert 'File "<helpkit codec: decode helpkit.tickets.Ticket>", line ' in text
    failed = text.split("<helpkit codec: decode helpkit.tickets.Ticket>", 1)[1].splitlines()[1]
    assert failed.strip().startswith("v") and "= _fromiso(v" in failed
    source = getattr(decoder(Ticket), "__source__", "")
    filename = decoder(Ticket).__code__.co_filename
    assert "".join(linecache.getlines(filename)) == source


def _local_class(with_number: bool) -> type:
    if with_number:

        @attrs.frozen
        class Same:
            number: int

        return Same

    @attrs.frozen
    class Same:  # type: ignore[no-redef]
        text: str

    return Same


def test_generated_file_names_are_unique_per_source() -> None:
    first, second = _local_class(True), _local_class(False)
    assert first.__qualname__ == second.__qualname__
    names = {decoder(first).__code__.co_filename, decoder(second).__code__.co_filename}
    names |= {encoder(first).__code__.co_filename, encoder(second).__code__.co_filename}
    assert len(names) == 4
    for function in (decoder(first), decoder(second), encoder(first), encoder(second)):
        lines = linecache.getlines(function.__code__.co_filename)
        assert "".join(lines) == getattr(function, "__source__", None)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: written as the standard encoder writes them
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(value=_JSON_VALUES)
def test_compact_dumps_writes_what_the_standard_encoder_writes(value: Any) -> None:
    assert compact_dumps(value) == json.JSONEncoder(separators=(",", ":")).encode(value)


def test_compact_dumps_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact_dumps({"at": datetime(2026, 1, 1, tzinfo=UTC)})
    with pytest.raises(TypeError, match="not JSON serializable"):
        strict_dumps({"at": datetime(2026, 1, 1, tzinfo=UTC)})


def _standard_strict(value: Any) -> str | type[ValueError]:
    """What ``json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode`` gives (the
    encoder helpkit.serialize.dumps used to build on every call), or ValueError."""
    try:
        return json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode(value)
    except ValueError:
        return ValueError


@settings(max_examples=300)
@given(value=_JSON_VALUES)
def test_strict_dumps_writes_and_refuses_what_the_standard_strict_encoder_does(
    value: Any,
) -> None:
    # NaN and infinities (which JSON has no text for) are refused, the rest written alike.
    try:
        fast: str | type[ValueError] = strict_dumps(value)
    except ValueError:
        fast = ValueError
    assert fast == _standard_strict(value)


def test_strict_dumps_refuses_nan_and_infinities() -> None:
    for value in (math.nan, [1.0, -math.inf], {"a": {"b": math.inf}}):
        with pytest.raises(ValueError, match="not JSON compliant"):
            strict_dumps(value)
