"""What a decision produces: :class:`Outcome` (the events and the ticket after them), and
:class:`Draft`, which decisions use to emit events one by one, folding each as it is added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from helpkit._records import build
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
        seq = (self.ticket.seq if self.ticket is not None else 0) + 1
        event = build(cls, ticket_id=ticket_id, seq=seq, at=self.at, actor=self.actor, **fields)
        self.ticket = apply(self.ticket, event)
        self.events.append(event)

    def outcome(self) -> Outcome:
        assert self.ticket is not None
        return Outcome(self.ticket, tuple(self.events), self.previous_seq, self._before)
