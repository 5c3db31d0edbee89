"""What a decision produces: :class:`Outcome` (the events and the ticket after them), and
:class:`Draft`, which decisions use to emit events one by one, folding each as it is added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from helpkit._records import build_from
from helpkit.events import Event
from helpkit.fold import apply
from helpkit.tickets import Actor, Ticket

__all__ = ["Draft", "Outcome"]


@attrs.frozen
class Outcome:
    """The events a command produced and the ticket state after them."""

    ticket: Ticket
    events: tuple[Event, ...]
    previous_seq: int
    before: Ticket | None = attrs.field(default=None, eq=False, repr=False)
    """The ticket before the events (``None`` when they opened it, or when the decision that
    built the outcome did not say): what triggers compare with to see what changed."""

    @property
    def changed(self) -> bool:
        """False when the command was a no-op (nothing to write)."""
        return bool(self.events)


_DRAFTED = frozenset({"seq", "at", "actor"})
"""The fields :meth:`Draft.emit` sets itself."""


class Draft:
    """Accumulates events for one ticket, applying each as it is added."""

    def __init__(self, ticket: Ticket | None, at: datetime, actor: Actor) -> None:
        self.ticket = ticket
        self._before = ticket
        self.previous_seq = ticket.seq if ticket is not None else 0
        self.at = at
        self.actor = actor
        self.events: list[Event] = []

    def emit(self, cls: type[Event], ticket_id: str, **fields: Any) -> None:
        if "seq" in fields or "at" in fields or "actor" in fields:
            # What ``build(..., seq=seq, **fields)`` raises for a name given twice.
            name = next(n for n in fields if n in _DRAFTED)
            raise TypeError(
                f"helpkit._records.build() got multiple values for keyword argument {name!r}"
            )
        ticket = self.ticket
        # ``build(cls, ticket_id=..., seq=..., at=..., actor=..., **fields)``, on the keyword
        # arguments' own dictionary (the order of the names does not change what is built).
        fields["ticket_id"] = ticket_id
        fields["seq"] = (ticket.seq if ticket is not None else 0) + 1
        fields["at"] = self.at
        fields["actor"] = self.actor
        event = build_from(cls, fields)
        self.ticket = apply(ticket, event)
        self.events.append(event)

    def add(self, event: Event) -> None:
        """Add ``event``, built by the caller as :meth:`emit` builds one (its seq the next,
        at this draft's instant, by its actor), applying it."""
        self.ticket = apply(self.ticket, event)
        self.events.append(event)

    def outcome(self) -> Outcome:
        assert self.ticket is not None
        return Outcome(self.ticket, tuple(self.events), self.previous_seq, self._before)
