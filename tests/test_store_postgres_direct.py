"""The PostgreSQL store's one-statement commit made straight from a change
(:func:`helpkit.stores.postgres.commit.direct_parameters`): the same parameters of
``commit_change`` as the batch path's rows give (:func:`call_parameters` of a ``_Prepared``,
kept as the reference), or None (the general path then commits it), for any change of any
reachable history. No server needed."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.events import Event, TicketOpened
from helpkit.lifecycle import replay
from helpkit.ports import Receipt, ReceiptState, TicketChange
from helpkit.testing import strategies as hs
from helpkit.testing.conformance import change_of
from helpkit.testing.conformance.helpers import BASE_TIME, _open

commit = pytest.importorskip("helpkit.stores.postgres.commit")

from helpkit.stores.sqlite.encoding import _Prepared  # noqa: E402

_CHANNEL = "helpkit_t"
# Timer states as the pipeline keeps them, and texts beyond ASCII (the general path's).
_STATES = st.none() | st.text(max_size=20)


def _changes(history: list[Event], cuts: list[int], numbered: bool) -> list[TicketChange]:
    """``history`` committed in the pieces ``cuts`` make, the first one left to the store to
    number unless ``numbered``."""
    ends = sorted({min(max(cut, 1), len(history)) for cut in cuts} | {len(history)})
    changes = []
    start = 0
    for end in ends:
        events = tuple(history[start:end])
        ticket = replay(list(history[:end]))
        if not numbered:
            ticket = attrs.evolve(ticket, number=0)
            events = tuple(
                attrs.evolve(e, number=0) if isinstance(e, TicketOpened) else e for e in events
            )
        changes.append(TicketChange(ticket, events, history[start - 1].seq if start else 0))
        numbered = True
        start = end
    return changes


def _reference(change: TicketChange, state: str | None) -> tuple[object, ...] | None:
    """The parameters the general path sends for ``change`` (None: it takes no one statement,
    or raises)."""
    item = _Prepared(change, checked=True)
    if not commit.takes_one_statement(item):
        return None
    params: tuple[object, ...] = commit.call_parameters(item, state, _CHANNEL)
    return params


@settings(max_examples=150, deadline=None)
@given(
    history=hs.ticket_histories(max_commands=8),
    cuts=st.lists(st.integers(1, 10), max_size=3),
    numbered=st.booleans(),
    state=_STATES,
)
def test_direct_parameters_are_the_batch_rows_parameters(
    history: list[Event], cuts: list[int], numbered: bool, state: str | None
) -> None:
    """Property: for every change of a reachable history (numbered by the store or not, with
    any texts hs generates: accented names, tags), the direct parameters are None or exactly
    those of the batch path's rows; and None only for a text beyond ASCII."""
    for change in _changes(history, cuts, numbered):
        direct = commit.direct_parameters(change, state, _CHANNEL)
        expected = _reference(change, state)
        if direct is None:
            assert expected is None or _beyond_ascii(change)
        else:
            assert direct == expected


def _beyond_ascii(change: TicketChange) -> bool:
    """Whether a text of ``change`` that the direct path checks is not ASCII."""
    t = change.ticket
    texts = [
        t.id,
        t.status,
        t.category.value,
        t.assignee_id,
        t.group_id,
        t.requester_id,
        t.organization_id,
        t.sla_policy,
        *t.tags,
        *(text for e in change.events for text in (e.ticket_id, e.TYPE, str(e.actor))),
    ]
    return not all(text is None or text.isascii() for text in texts)


def test_a_change_the_general_path_must_take_gets_no_direct_parameters() -> None:
    """A change with a receipt, without events, or invalid, is the general path's."""
    change = change_of(_open("t1", 0, BASE_TIME))
    assert commit.direct_parameters(change, None, _CHANNEL) == _reference(change, None)
    receipt = Receipt(
        key="web:1",
        state=ReceiptState.CREATED,
        received_at=BASE_TIME,
        updated_at=BASE_TIME,
        ticket_id="t1",
    )
    for other in (
        attrs.evolve(change, receipt=receipt),
        attrs.evolve(change, events=()),
        attrs.evolve(change, expected_seq=5),  # seqs that do not follow it
    ):
        assert commit.direct_parameters(other, None, _CHANNEL) is None
