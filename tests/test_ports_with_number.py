"""``TicketChange.with_number`` against its code before it built the numbered change with a
replacer (``_with_number_before``, kept verbatim): the same change, of the same classes, for
any reachable history, with a Ticket or another ticket class, a TicketChange or a subclass's
instance, a receipt or routing states or contacts carried along."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import lifecycle
from helpkit._records import replace
from helpkit.events import Event, TicketOpened
from helpkit.ports import _NUMBERED, _NUMBERED_OPENING, Receipt, ReceiptState, TicketChange
from helpkit.testing.strategies import ticket_histories
from helpkit.tickets import Ticket

_FIELDS = [f.name for f in attrs.fields(Ticket)]


def _with_number_before(self: TicketChange, number: int) -> TicketChange:
    """``TicketChange.with_number`` as it was (helpkit 2829d8a), verbatim but for ``self``."""
    ticket = self.ticket
    if ticket.number == number:
        return self
    return TicketChange(
        _NUMBERED(ticket, number) if ticket.__class__ is Ticket else replace(ticket, number=number),
        tuple(
            (
                (
                    _NUMBERED_OPENING(e, number)
                    if e.__class__ is TicketOpened
                    else replace(e, number=number)
                )
                if isinstance(e, TicketOpened)
                else e
            )
            for e in self.events
        ),
        self.expected_seq,
        self.receipt,
        self.routing,
        self.contacts,
    )


class _OtherTicket(Ticket):
    """A ticket of another class (numbered through replace)."""


class _OtherChange(TicketChange):
    """A change of another class (numbered into a TicketChange, as before)."""


@settings(max_examples=100, deadline=None)
@given(
    ticket_histories(min_commands=1, max_commands=5),
    st.sampled_from([0, 1, 2, 9, 10**12]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_with_number_is_what_it_was(
    history: list[Event], number: int, other_ticket: bool, other_change: bool, receipt: bool
) -> None:
    events = (replace(history[0], number=0), *history[1:])
    ticket: Any = replace(lifecycle.replay(events), number=0)
    if other_ticket:
        ticket = _OtherTicket(**{f: getattr(ticket, f) for f in _FIELDS})
    at = history[0].at
    kept = (
        Receipt(key="email:m1", state=ReceiptState.CREATED, received_at=at, updated_at=at)
        if receipt
        else None
    )
    cls = _OtherChange if other_change else TicketChange
    change = cls(ticket, events, 0, kept)
    new, old = change.with_number(number), _with_number_before(change, number)
    assert new == old
    assert type(new) is type(old)
    assert type(new.ticket) is type(old.ticket)
    assert [type(e) for e in new.events] == [type(e) for e in old.events]
    assert (new.expected_seq, new.receipt, new.routing, new.contacts) == (
        old.expected_seq,
        old.receipt,
        old.routing,
        old.contacts,
    )
