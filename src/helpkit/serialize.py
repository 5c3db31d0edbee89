"""helpkit's values as JSON-safe data and back: the form stores keep and the CLI prints.

:func:`to_data` turns a ticket, an event, a comment, a contact, an organization, an agent, a
group, an SLA status or a sweep report into plain data (dicts, lists, strings, numbers,
booleans and ``None``) and :func:`from_data` reads it back, exactly:
``from_data(type(value), to_data(value)) == value``. :func:`dumps` and :func:`loads` do the
same with JSON text. An object is a dict of its fields by name; enums are their values,
instants ISO 8601 text in UTC, durations ISO 8601 text in hours, minutes and seconds
(``PT4H30M``), sets sorted lists. Events carry their ``type`` and schema version ``v``, and
old versions are upgraded when read (:func:`helpkit.events.event_from_dict`). The built-in
stores keep exactly this form, so a store written with these functions stores what they
store. See the "Serialization" page of the documentation for the form of each value.

Data that is not the form of the class asked for raises :class:`~helpkit.errors.SchemaError`,
whatever is wrong with it (a missing field, a wrong JSON type, an unknown enum value or event
type, a value the class itself refuses); the original error is its ``__cause__``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from helpkit._codec import decoder, encoder
from helpkit._codec.text import strict_dumps
from helpkit.errors import SchemaError
from helpkit.events import READ_ERRORS, Event, event_from_dict, event_to_dict

__all__ = ["dumps", "from_data", "loads", "to_data"]

T = TypeVar("T")

# One C encoder made once (json.JSONEncoder(...).encode makes a new one on every call).
_encode_json = strict_dumps


def to_data(value: object) -> Any:
    """The JSON-safe form of a helpkit value.

    ``value`` is an instance of one of helpkit's value classes (any attrs class whose fields
    have the types the form covers), or a plain value of such a type (a ``datetime``, a
    ``timedelta``, an enum member...). Raises TypeError for a value of a type the form does
    not cover (a list of tickets is a list of their forms: ``[to_data(t) for t in tickets]``).
    """
    if isinstance(value, Event):
        return event_to_dict(value)
    return encoder(type(value))(value)


def from_data(cls: type[T], data: object) -> T:
    """The value of class ``cls`` whose form is ``data`` (as :func:`to_data` gives it).

    ``cls`` may be :class:`~helpkit.events.Event` itself: the event's ``type`` says which
    event it is. A specific event class also accepts only events of that class. Raises
    SchemaError when ``data`` is not the form of a ``cls`` value, TypeError when ``cls`` is
    not a class the form covers.
    """
    if isinstance(cls, type) and issubclass(cls, Event):
        event = event_from_dict(cast("Mapping[str, Any]", data))  # it checks what data is
        if not isinstance(event, cls):
            raise SchemaError(f"expected a {cls.__name__} event, found a {event.TYPE!r} event")
        return event
    decode = decoder(cls)  # TypeError for a class the codec does not cover: a caller's error
    try:
        value: T = decode(data)
    except READ_ERRORS as exc:
        raise SchemaError(f"cannot read {_name(cls)}: {exc}") from exc
    return value


def dumps(value: object) -> str:
    """The compact JSON text of :func:`to_data`'s form of ``value``.

    Fields keep their class's order and every non-ASCII character is escaped, so the text is
    ASCII (valid UTF-8 whatever the store's encoding): the text the SQLite store keeps.
    """
    text: str = _encode_json(to_data(value))
    return text


def loads(cls: type[T], text: str | bytes) -> T:
    """The value of class ``cls`` read from JSON text (:func:`dumps`); SchemaError if bad."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"cannot read {_name(cls)}: not JSON text ({exc})") from None
    return from_data(cls, data)


def _name(cls: object) -> str:
    return getattr(cls, "__name__", None) or repr(cls)
