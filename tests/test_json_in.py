"""The JSON payload -> InboundMessage adapter (helpkit.channels.json_in): worked examples, and
Hypothesis properties: arbitrary JSON (and arbitrary bytes) give an InboundMessage or an
InboundPayloadError, never anything else; a well-formed payload's fields come through."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import NaiveDatetimeError, ValidationError
from helpkit.channels.json_in import InboundPayloadError, parse, parse_data
from helpkit.ports import Address, InboundAttachment, InboundMessage

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_a_form_submission() -> None:
    body = {
        "from": {"email": "bob@acme.example", "name": "Bob\r\nNúñez"},
        "subject": "VPN\ndrops",
        "body": "It drops\r\nevery 10 minutes.",
        "id": "form-7f3a",
        "cc": ["ann@acme.example", {"email": "joe@acme.example", "name": "Joe"}],
        "ticket": 1042,
        "attachments": [
            {
                "filename": "log.txt",
                "content_type": "Text/Plain",
                "data": base64.b64encode(b"line 1\nline 2").decode(),
            },
            {
                "filename": "shot.png",
                "content_type": "image/png",
                "data": "iVBO\nRw0K",
                "inline": True,
                "content_id": "shot1",
            },
        ],
    }
    message = parse(json.dumps(body).encode(), received_at=AT, external_id="ignored")
    assert message == InboundMessage(
        channel="web",
        sender_address="bob@acme.example",
        sender_name="Bob Núñez",
        subject="VPN drops",
        body="It drops\nevery 10 minutes.",
        received_at=AT,
        external_id="form-7f3a",
        ticket_number=1042,
        cc=[Address("ann@acme.example"), Address("joe@acme.example", "Joe")],
        attachments=[
            InboundAttachment(
                filename="log.txt", content_type="text/plain", data=b"line 1\nline 2"
            ),
            InboundAttachment(
                filename="shot.png",
                content_type="image/png",
                data=base64.b64decode("iVBORw0K"),
                inline=True,
                content_id="shot1",
            ),
        ],
    )


def test_the_least_payload_takes_the_webhook_id() -> None:
    message = parse(
        '{"from": "bob@acme.example", "body": "Help"}',
        received_at=AT,
        channel="chat",
        external_id="msg_1",
    )
    assert (message.channel, message.sender_address, message.sender_name) == (
        "chat",
        "bob@acme.example",
        None,
    )
    assert (message.subject, message.body, message.external_id) == ("", "Help", "msg_1")
    assert message.cc == () and message.attachments == () and message.ticket_number is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        ("{", "not JSON"),
        ("[" * 100_000, "not JSON"),
        ("1" * 5000, "not JSON"),
        ("[]", "a JSON object; got a list"),
        ('{"body": "x"}', "'from' is required"),
        ('{"from": "a@b.example"}', "'body' is required"),
        ('{"from": "a@b.example", "body": "x", "bdy": 1}', "unknown key 'bdy'"),
        ('{"from": "not an address", "body": "x"}', "not an email address"),
        ('{"from": "a@b@c", "body": "x"}', "not an email address"),
        ('{"from": {"name": "A"}, "body": "x"}', "needs 'email'"),
        ('{"from": "a@b.example", "body": 3}', "'body' is text; got a number"),
        ('{"from": "a@b.example", "body": "x\\u0000"}', "NUL"),
        ('{"from": "a@b.example", "body": "\\ud800"}', "surrogate"),
        ('{"from": "a@b.example", "body": "x", "id": " "}', "'id' is empty"),
        ('{"from": "a@b.example", "body": "x", "ticket": true}', "ticket number"),
        ('{"from": "a@b.example", "body": "x", "ticket": 0}', "ticket number"),
        ('{"from": "a@b.example", "body": "x", "cc": "c@d.example"}', "'cc' is a list"),
        ('{"from": "a@b.example", "body": "x", "attachments": [{"data": ""}]}', "filename"),
        (
            '{"from": "a@b.example", "body": "x", "attachments": [{"filename": "a", "data": "!"}]}',
            "not base64",
        ),
        (
            '{"from": "a@b.example", "body": "x", '
            '"attachments": [{"filename": "a", "data": "", "content_type": "text"}]}',
            "type/subtype",
        ),
    ],
)
def test_what_is_not_the_shape_is_a_typed_error(payload: str | bytes, message: str) -> None:
    with pytest.raises(InboundPayloadError, match=message) as caught:
        parse(payload, received_at=AT)
    assert isinstance(caught.value, ValidationError) and isinstance(caught.value, ValueError)


def test_a_naive_instant_is_the_callers_mistake() -> None:
    with pytest.raises(NaiveDatetimeError):
        parse('{"from": "a@b.example", "body": "x"}', received_at=datetime(2026, 3, 2, 9))


def test_a_blank_channel_is_a_typed_error() -> None:
    with pytest.raises(InboundPayloadError, match="channel"):
        parse_data({"from": "a@b.example", "body": "x"}, received_at=AT, channel=" ")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["from", "subject", "body", "id", "cc", "ticket", "attachments"])
near_payloads = st.dictionaries(keys, json_values, max_size=7)


def _parsed_or_refused(payload: Any) -> None:
    try:
        message = parse_data(payload, received_at=AT)
    except InboundPayloadError:
        return
    assert isinstance(message, InboundMessage)


@given(json_values | near_payloads)
def test_arbitrary_json_gives_a_message_or_the_typed_error(payload: Any) -> None:
    _parsed_or_refused(payload)
    try:
        text = json.dumps(payload)
    except ValueError:
        return
    try:
        message = parse(text, received_at=AT)
    except InboundPayloadError:
        return
    assert isinstance(message, InboundMessage)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_message_or_the_typed_error(body: bytes) -> None:
    with contextlib.suppress(InboundPayloadError):
        assert isinstance(parse(body, received_at=AT), InboundMessage)


safe_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
local = st.text(st.sampled_from("abcxyz0189._+-"), min_size=1, max_size=10)
addresses = st.builds(lambda a, b: f"{a}@{b}.example", local, local)


@given(
    addresses,
    safe_text,
    safe_text,
    st.lists(st.tuples(st.text(st.sampled_from("abc.-_ "), min_size=1), st.binary()), max_size=3),
)
def test_a_well_formed_payload_comes_through(
    sender: str, subject: str, body: str, files: list[tuple[str, bytes]]
) -> None:
    payload = {
        "from": sender,
        "subject": subject,
        "body": body,
        "attachments": [
            {"filename": name, "data": base64.b64encode(data).decode()} for name, data in files
        ],
    }
    if any(not name.strip() for name, _ in files):
        with pytest.raises(InboundPayloadError, match="filename is empty"):
            parse(json.dumps(payload), received_at=AT)
        return
    message = parse(json.dumps(payload), received_at=AT)
    assert message.sender_address == sender
    assert message.subject == " ".join(subject.split())
    assert message.body == body.replace("\r\n", "\n").replace("\r", "\n")
    assert [a.data for a in message.attachments] == [data for _, data in files]
    assert all(a.content_type == "application/octet-stream" for a in message.attachments)
