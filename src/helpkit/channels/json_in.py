"""JSON to :class:`~helpkit.ports.InboundMessage`: what a web form, a chat widget or another
system posts becomes a message ``desk.receive`` takes (a new ticket, or a comment).

The shape (only ``from`` and ``body`` are required; other keys are refused, so a misspelt key
is an error rather than lost text)::

    {
      "from": {"email": "bob@example.com", "name": "Bob Núñez"},   // or "bob@example.com"
      "subject": "VPN drops",                                     // default ""
      "body": "It drops every 10 minutes.",
      "id": "form-7f3a",              // the sender's id of this message: ingested once
      "cc": ["ann@example.com", {"email": "joe@example.com", "name": "Joe"}],
      "ticket": 1042,                 // the ticket it answers, if the form knows it
      "attachments": [
        {"filename": "log.txt", "content_type": "text/plain", "data": "<base64>",
         "inline": false, "content_id": null}
      ]
    }

Line breaks in the subject and in names become spaces (they may end up in an email header);
the body's ``\\r\\n`` become ``\\n``. Anything that is not this shape raises
:class:`InboundPayloadError` (a ValidationError, so a ValueError) naming the key, never another
exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from helpkit._time import to_utc
from helpkit.errors import HelpkitError, ValidationError
from helpkit.ports import Address, InboundAttachment, InboundMessage

__all__ = ["InboundPayloadError", "parse", "parse_data"]

_KEYS: Final = frozenset({"from", "subject", "body", "id", "cc", "ticket", "attachments"})
_ATTACHMENT_KEYS: Final = frozenset({"filename", "content_type", "data", "inline", "content_id"})
_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+")
_BREAKS = re.compile(r"[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]+")
_MAX_ADDRESS: Final = 254
_MAX_CC: Final = 100
_MAX_ATTACHMENTS: Final = 100


class InboundPayloadError(ValidationError):
    """A JSON payload that is not the shape :mod:`helpkit.channels.json_in` reads."""


def parse(
    body: bytes | str,
    *,
    received_at: datetime,
    channel: str = "web",
    external_id: str | None = None,
) -> InboundMessage:
    """The message a JSON request body describes (UTF-8 text, see the module's text).

    ``external_id`` (e.g. the verified ``webhook-id``) is used when the payload has no ``id``.
    Raises :class:`InboundPayloadError`.
    """
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InboundPayloadError(f"the payload is not UTF-8 text ({exc.reason})") from None
    if not isinstance(body, str):
        raise InboundPayloadError(f"the payload is bytes or text; got {type(body).__name__}")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InboundPayloadError(f"the payload is not JSON: {str(exc)[:120]}") from None
    return parse_data(data, received_at=received_at, channel=channel, external_id=external_id)


def parse_data(
    data: object,
    *,
    received_at: datetime,
    channel: str = "web",
    external_id: str | None = None,
) -> InboundMessage:
    """:func:`parse` for a payload already read from JSON (a dict)."""
    received_at = to_utc(received_at, "received_at")  # the caller's mistake, not the payload's
    if not isinstance(data, Mapping):
        raise InboundPayloadError(f"the payload is a JSON object; got {_kind(data)}")
    unknown = sorted(str(k)[:40] for k in data if k not in _KEYS)
    if unknown:
        raise InboundPayloadError(
            f"unknown key {', '.join(map(repr, unknown[:5]))} (known: {', '.join(sorted(_KEYS))})"
        )
    if "from" not in data:
        raise InboundPayloadError("'from' is required: who wrote it")
    if "body" not in data:
        raise InboundPayloadError("'body' is required")
    sender = _address(data["from"], "from")
    subject = _line(_text(data.get("subject", ""), "subject"))
    text = _text(data["body"], "body").replace("\r\n", "\n").replace("\r", "\n")
    given_id = data.get("id")
    if given_id is not None:
        given_id = _text(given_id, "id").strip()
        if not given_id:
            raise InboundPayloadError("'id' is empty")
    ticket = data.get("ticket")
    if ticket is not None and (
        not isinstance(ticket, int) or isinstance(ticket, bool) or not 0 < ticket < 2**63
    ):
        raise InboundPayloadError(f"'ticket' is a ticket number; got {_kind(ticket)}")
    cc = _list(data.get("cc", []), "cc", _MAX_CC)
    attachments = _list(data.get("attachments", []), "attachments", _MAX_ATTACHMENTS)
    try:
        return InboundMessage(
            channel=channel,
            sender_address=sender.address,
            sender_name=sender.name,
            subject=subject,
            body=text,
            received_at=received_at,
            external_id=given_id if given_id is not None else external_id,
            ticket_number=ticket,
            cc=[_address(item, f"cc[{i}]") for i, item in enumerate(cc)],
            attachments=[_attachment(item, i) for i, item in enumerate(attachments)],
        )
    except InboundPayloadError:
        raise
    except HelpkitError as exc:
        raise InboundPayloadError(str(exc)) from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "text"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InboundPayloadError(f"{where!r} is text; got {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InboundPayloadError(f"{where!r} holds a lone surrogate") from None
    if "\x00" in value:
        raise InboundPayloadError(f"{where!r} holds a NUL character")
    return value


def _line(value: str) -> str:
    return " ".join(_BREAKS.sub(" ", value).split())


def _list(value: object, where: str, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise InboundPayloadError(f"{where!r} is a list; got {_kind(value)}")
    if len(value) > most:
        raise InboundPayloadError(f"{where!r} has {len(value)} items; at most {most}")
    return value


def _address(value: object, where: str) -> Address:
    name: str | None = None
    if isinstance(value, Mapping):
        unknown = sorted(str(k)[:40] for k in value if k not in ("email", "name"))
        if unknown:
            raise InboundPayloadError(f"{where!r}: unknown key {', '.join(map(repr, unknown))}")
        if "email" not in value:
            raise InboundPayloadError(f"{where!r} needs 'email'")
        if value.get("name") is not None:
            name = _line(_text(value["name"], f"{where}.name")) or None
        value = value["email"]
    email = _text(value, where).strip()
    if len(email) > _MAX_ADDRESS or not _ADDRESS.fullmatch(email) or email.count("@") != 1:
        raise InboundPayloadError(f"{where!r} is not an email address: {email[:80]!r}")
    return Address(email, name)


def _attachment(value: object, index: int) -> InboundAttachment:
    where = f"attachments[{index}]"
    if not isinstance(value, Mapping):
        raise InboundPayloadError(f"{where!r} is an object; got {_kind(value)}")
    unknown = sorted(str(k)[:40] for k in value if k not in _ATTACHMENT_KEYS)
    if unknown:
        raise InboundPayloadError(f"{where!r}: unknown key {', '.join(map(repr, unknown))}")
    for key in ("filename", "data"):
        if key not in value:
            raise InboundPayloadError(f"{where!r} needs {key!r}")
    filename = _line(_text(value["filename"], f"{where}.filename"))
    if not filename:
        raise InboundPayloadError(f"{where}.filename is empty")
    content_type = _text(value.get("content_type", "application/octet-stream"), f"{where}.type")
    content_type = content_type.strip().lower()
    if not re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", content_type):
        raise InboundPayloadError(f"{where}.content_type is not a type/subtype")
    encoded = _text(value["data"], f"{where}.data")
    try:
        data = base64.b64decode("".join(encoded.split()).encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise InboundPayloadError(f"{where}.data is not base64") from None
    inline = value.get("inline", False)
    if inline is not True and inline is not False:
        raise InboundPayloadError(f"{where}.inline is true or false; got {_kind(inline)}")
    content_id = value.get("content_id")
    if content_id is not None:
        content_id = _line(_text(content_id, f"{where}.content_id")) or None
    return InboundAttachment(
        filename=filename,
        content_type=content_type,
        data=data,
        inline=inline,
        content_id=content_id,
    )
