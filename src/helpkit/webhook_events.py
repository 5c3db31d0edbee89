"""What a webhook endpoint hears of: which committed events (its :class:`Subscription`) and the
JSON payload each one becomes (:func:`payload`).

An endpoint configured as ``[webhooks.NAME]`` subscribes to event types (``ticket_opened``,
``comment_added``, ``status_changed``...) or to ``*``, every event that is not the relay's
bookkeeping. Internal notes are left out unless ``include_internal`` is set. The relay's records
of webhook deliveries themselves (``message_sent``, ``delivery_failed`` and ``delivery_revived``
of kind ``webhook``) are never sent to any endpoint, even one that names them: each would be
recorded in its turn, and so on without end.

Pure: no I/O, no clock; the planner (:mod:`helpkit.delivery`) calls it on committed events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from helpkit.errors import ConfigError
from helpkit.events import (
    EVENT_TYPES,
    CommentAdded,
    DeliveryFailed,
    DeliveryRevived,
    Event,
    MessageSent,
)
from helpkit.serialize import to_data
from helpkit.tickets import Ticket

__all__ = [
    "ALL_EVENTS",
    "WEBHOOK",
    "Subscription",
    "payload",
    "payload_text",
    "ticket_summary",
]

WEBHOOK: Final = "webhook"
"""The kind of a webhook delivery (``Delivery.kind``, ``OutboundMessage.kind`` and the ``kind``
of the relay's records of it)."""
ALL_EVENTS: Final = "*"
"""In ``events``: every event that is not bookkeeping (``Event.BOOKKEEPING``)."""
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OPTIONS: Final = ("events", "include_internal")


def _event_names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class Subscription:
    """The events one webhook endpoint is sent: those of ``events`` (event types, or ``*``),
    internal notes only with ``include_internal``."""

    name: str
    """The endpoint's name (``[webhooks.NAME]``): letters, digits, ``_`` and ``-``, at most 64
    (it is part of each delivery's id, the ``webhook-id`` header, which may hold no ``.``)."""
    events: frozenset[str] = attrs.field(converter=_event_names)
    include_internal: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(
                f"a webhook endpoint's name is 1 to 64 letters, digits, '_' or '-'; "
                f"got {self.name!r:.80}"
            )
        if not self.events:
            raise ConfigError(f"webhook {self.name!r}: events is empty (use ['*'] for all)")
        unknown = sorted(e for e in self.events if e != ALL_EVENTS and e not in EVENT_TYPES)
        if unknown:
            raise ConfigError(
                f"webhook {self.name!r}: unknown event type {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(EVENT_TYPES))}, or '*')"
            )
        if self.include_internal is not True and self.include_internal is not False:
            raise ConfigError(
                f"webhook {self.name!r}: include_internal must be true or false; "
                f"got {self.include_internal!r:.40}"
            )

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> Subscription:
        """The subscription of the ``[webhooks.NAME]`` table ``options`` (the keys ``events``,
        default ``["*"]``, and ``include_internal``, default false; other keys are the
        endpoint's own and are ignored here). Raises ConfigError."""
        events = options.get("events", [ALL_EVENTS])
        if isinstance(events, str):
            events = [events]
        if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
            raise ConfigError(
                f"webhook {name!r}: events must be a list of event types; got {events!r:.80}"
            )
        return cls(name, events, options.get("include_internal", False))

    def matches(self, event: Event) -> bool:
        """Whether ``event`` is sent to this endpoint."""
        if (
            isinstance(event, MessageSent | DeliveryFailed | DeliveryRevived)
            and event.kind == WEBHOOK
        ):
            return False  # the record of a webhook's delivery: sending it would loop
        if event.TYPE not in self.events and not (
            ALL_EVENTS in self.events and not event.BOOKKEEPING
        ):
            return False
        if isinstance(event, CommentAdded) and not event.comment.public:
            return self.include_internal
        return True


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    """The ticket as a webhook payload shows it (after the event): what a receiver needs to
    route the event without calling back."""
    return {
        "id": ticket.id,
        "number": ticket.number,
        "reference": ticket.reference,
        "subject": ticket.subject,
        "status": ticket.status,
        "category": to_data(ticket.category),
        "priority": to_data(ticket.priority),
        "impact": to_data(ticket.impact),
        "urgency": to_data(ticket.urgency),
        "channel": ticket.channel,
        "requester_id": ticket.requester_id,
        "organization_id": ticket.organization_id,
        "assignee_id": ticket.assignee_id,
        "group_id": ticket.group_id,
        "tags": sorted(ticket.tags),
        "created_at": to_data(ticket.created_at),
        "updated_at": to_data(ticket.updated_at),
        "seq": ticket.seq,
    }


def payload(event: Event, ticket: Ticket) -> dict[str, Any]:
    """The payload of ``event`` (``ticket`` is its ticket just after it), in the Standard
    Webhooks shape: ``type`` (the event's type), ``timestamp`` (when it happened, ISO 8601 in
    UTC) and ``data``: the event in helpkit's JSON form (:func:`helpkit.serialize.to_data`)
    with ``ticket``, the :func:`ticket_summary`, beside its fields."""
    data = to_data(event)
    data["ticket"] = ticket_summary(ticket)
    return {"type": event.TYPE, "timestamp": to_data(event.at), "data": data}


def payload_text(event: Event, ticket: Ticket) -> str:
    """The :func:`payload` as compact JSON text: the body every attempt sends, unchanged."""
    return json.dumps(
        payload(event, ticket), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
