"""The Hypothesis strategies users import: they generate valid, varied, reachable values."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from helpkit.events import Event, TicketOpened
from helpkit.fields import FieldSet
from helpkit.lifecycle import replay
from helpkit.people import Contact, Organization
from helpkit.ports import InboundMessage, Receipt, ReceiptState
from helpkit.priority import Impact, Priority, PriorityMatrix, Urgency
from helpkit.stores.contract import COMMITTED_RECEIPTS, check_record, check_suspension
from helpkit.testing import strategies as hs
from helpkit.tickets import (
    DEFAULT_WORKFLOW,
    ActorKind,
    Comment,
    Status,
    StatusCategory,
    Ticket,
    Workflow,
)

C = StatusCategory
T = TypeVar("T")


def reaches(strategy: st.SearchStrategy[T], condition: Callable[[T], object], tries: int) -> bool:
    """Whether ``strategy`` produces a value meeting ``condition`` within ``tries`` draws.

    Unlike ``hypothesis.find`` this never shrinks, so it costs at most ``tries`` draws.
    """

    class FoundError(Exception):
        """Stops the probe at the first hit."""

    @settings(
        max_examples=tries,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        derandomize=True,  # the same draws every run: a pass or a failure is never luck
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def probe(value: T) -> None:
        if condition(value):
            raise FoundError

    try:
        probe()
    except FoundError:
        return True
    return False


CUSTOM_WORKFLOW = Workflow(
    (
        Status("triage", C.NEW),
        Status("working", C.OPEN),
        Status("waiting", C.PENDING),
        Status("vendor", C.ON_HOLD),
        Status("fixed", C.SOLVED),
        Status("done", C.CLOSED),
        Status("duplicate", C.CLOSED),
    ),
    merged_status="duplicate",
)
FLAT = PriorityMatrix({(i, u): Priority.P3 for i in Impact for u in Urgency})


@given(hs.contacts(), hs.organizations())
def test_people_are_valid_and_normalized(contact: Contact, org: Organization) -> None:
    assert attrs.evolve(contact) == contact  # already normalized: re-validation is a no-op
    assert attrs.evolve(org) == org
    assert 1 <= len(contact.emails) <= 3
    assert 1 <= len(org.domains) <= 3


def test_names_and_emails_are_sometimes_not_ascii() -> None:
    assert reaches(hs.contacts(), lambda c: not c.name.isascii(), 200)
    assert reaches(hs.contacts(), lambda c: c.name.isascii(), 200)
    assert reaches(hs.emails(), lambda e: not e.isascii(), 200)
    assert reaches(hs.emails(), lambda e: e != e.lower(), 200)


@given(
    hs.contacts(
        ids=st.just("me"),
        organization_ids=st.just("acme"),
        with_emails=False,
        names=st.just("Zoë"),
    )
)
def test_contact_options_are_honoured(contact: Contact) -> None:
    assert (contact.id, contact.organization_id, contact.emails, contact.name) == (
        "me",
        "acme",
        (),
        "Zoë",
    )


@given(hs.actors(kinds=(ActorKind.AGENT,)), hs.comments(public=False))
def test_actors_and_comments(actor: object, note: Comment) -> None:
    assert getattr(actor, "kind", None) is ActorKind.AGENT
    assert not note.public
    assert note.author.kind is not ActorKind.CONTACT  # contacts cannot write notes
    assert note.body.strip()


@given(hs.comments(authors=hs.actors(kinds=(ActorKind.CONTACT,))))
def test_contact_comments_are_public(comment: Comment) -> None:
    assert comment.public


@given(hs.impacts(), hs.urgencies(), hs.priorities())
def test_levels(impact: Impact, urgency: Urgency, priority: Priority) -> None:
    assert isinstance(impact, Impact)
    assert isinstance(urgency, Urgency)
    assert isinstance(priority, Priority)


@given(hs.priority_matrices())
def test_matrices_are_valid(matrix: PriorityMatrix) -> None:
    assert PriorityMatrix.from_rows(matrix.to_rows()) == matrix
    ranks = {"high": 0, "medium": 1, "low": 2}
    for (i1, u1), p1 in matrix.cells.items():
        for (i2, u2), p2 in matrix.cells.items():
            if ranks[i1.value] <= ranks[i2.value] and ranks[u1.value] <= ranks[u2.value]:
                assert p1 <= p2


def test_matrices_are_varied() -> None:
    assert reaches(hs.priority_matrices(), lambda m: len(set(m.cells.values())) >= 4, 200)
    assert reaches(hs.priority_matrices(), lambda m: len(set(m.cells.values())) == 1, 200)


@settings(max_examples=40, deadline=None)
@given(hs.ticket_histories())
def test_histories_replay(history: list[Event]) -> None:
    assert isinstance(history[0], TicketOpened)
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert all(e.ticket_id == history[0].ticket_id for e in history)
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))
    ticket = replay(history)
    assert ticket.seq == len(history)


@settings(max_examples=40, deadline=None)
@given(hs.tickets(workflow=CUSTOM_WORKFLOW, matrix=FLAT, fields=FieldSet()))
def test_ticket_options_are_honoured(ticket: Ticket) -> None:
    status = CUSTOM_WORKFLOW.status(ticket.status)
    assert status.category is ticket.category
    assert ticket.priority is Priority.P3
    assert dict(ticket.custom_fields) == {}
    assert ticket.is_merged is (ticket.status == "duplicate")


@settings(max_examples=40, deadline=None)
@given(hs.tickets())
def test_tickets_are_consistent(ticket: Ticket) -> None:
    assert DEFAULT_WORKFLOW.status(ticket.status).category is ticket.category
    assert ticket.updated_at >= ticket.created_at
    assert (ticket.closed_at is not None) is ticket.is_closed
    assert (ticket.merged_into is not None) is (ticket.status == "merged")
    if ticket.category is C.SOLVED:
        assert ticket.solved_at is not None


REACHABLE: dict[str, Callable[[Ticket], bool]] = {
    "new": lambda t: t.category is C.NEW,
    "open": lambda t: t.category is C.OPEN,
    "pending": lambda t: t.category is C.PENDING,
    "on_hold": lambda t: t.category is C.ON_HOLD,
    "solved": lambda t: t.category is C.SOLVED,
    "closed": lambda t: t.category is C.CLOSED and not t.is_merged,
    "merged": lambda t: t.is_merged,
    "links": lambda t: bool(t.links),
    "custom fields": lambda t: bool(t.custom_fields),
    "followers": lambda t: bool(t.followers),
    "internal notes": lambda t: t.internal_notes > 0,
    "assigned": lambda t: t.assignee_id is not None,
    "reprioritized": lambda t: t.seq > 1 and t.priority is not Priority.P5,
}


def test_tickets_reach_every_kind_of_state() -> None:
    missing = set(REACHABLE)

    def all_seen(ticket: Ticket) -> bool:
        missing.difference_update([name for name in missing if REACHABLE[name](ticket)])
        return not missing

    assert reaches(hs.tickets(), all_seen, 500), f"never generated: {sorted(missing)}"


@given(hs.receipts())
def test_receipts_are_shaped_as_an_inbox_keeps_them(receipt: Receipt) -> None:
    check_record(receipt, Receipt)
    assert receipt.updated_at >= receipt.received_at
    if receipt.state is ReceiptState.SUSPENDED:
        assert receipt.message is not None and receipt.reason is not None
        assert check_suspension(receipt) is receipt
    else:
        assert receipt.message is None
    ingested = receipt.state in COMMITTED_RECEIPTS
    assert (receipt.ticket_id is not None) is ingested


@given(hs.inbound_messages(channels=st.just("web"), external_ids=st.just("x-1")))
def test_inbound_messages_take_their_channel_and_external_id(message: InboundMessage) -> None:
    check_record(message, InboundMessage)
    assert (message.channel, message.external_id) == ("web", "x-1")
    assert all(name == name.lower() for name in message.headers)


def test_inbound_messages_reach_every_shape() -> None:
    shapes: dict[str, Callable[[InboundMessage], object]] = {
        "no external id": lambda m: m.external_id is None,
        "binary attachment": lambda m: any(not _is_utf8(a.data) for a in m.attachments),
        "empty attachment": lambda m: any(a.data == b"" for a in m.attachments),
        "inline image": lambda m: any(a.inline and a.content_id for a in m.attachments),
        "threaded": lambda m: m.in_reply_to is not None and m.references,
        "cc": lambda m: bool(m.cc),
        "headers": lambda m: bool(m.headers),
        "anonymous sender": lambda m: m.sender_name is None,
    }
    missing = set(shapes)

    def all_seen(message: InboundMessage) -> bool:
        missing.difference_update([name for name in missing if shapes[name](message)])
        return not missing

    assert reaches(hs.inbound_messages(), all_seen, 300), f"never generated: {sorted(missing)}"
    states = set(ReceiptState)

    def every_state(receipt: Receipt) -> bool:
        states.discard(receipt.state)
        return not states

    assert reaches(hs.receipts(), every_state, 100), f"never generated: {states}"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.parametrize(
    "make",
    [
        lambda: hs.inbound_messages(channels="email"),  # type: ignore[arg-type]
        lambda: hs.receipts(states=ReceiptState.CREATED),  # type: ignore[arg-type]
        lambda: hs.contacts(ids="c-1"),  # type: ignore[arg-type]
        lambda: hs.contacts(with_emails="yes"),  # type: ignore[arg-type]
        lambda: hs.organizations(with_domains=None),  # type: ignore[arg-type]
        lambda: hs.actors(kinds=()),
        lambda: hs.actors(kinds=("agent",)),  # type: ignore[arg-type]
        lambda: hs.comments(public="no"),  # type: ignore[arg-type]
        lambda: hs.custom_fields(kinds=()),
        lambda: hs.field_values("text"),  # type: ignore[arg-type]
        lambda: hs.ticket_histories(min_commands=3, max_commands=1),
        lambda: hs.ticket_histories(max_commands=-1),
        lambda: hs.tickets(workflow=None),  # type: ignore[arg-type]
        lambda: hs.tickets(matrix={}),  # type: ignore[arg-type]
        lambda: hs.tickets(fields=[]),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_fail_at_once(make: object) -> None:
    with pytest.raises(InvalidArgument):
        make()  # type: ignore[operator]


def test_calendar_strategies_are_reexported() -> None:
    calendar = pytest.importorskip("helpkit.testing.calendar_strategies")
    for name in ("business_calendars", "aware_datetimes", "business_durations"):
        assert getattr(hs, name) is getattr(calendar, name)
        assert name in hs.__all__


def test_every_public_name_is_documented() -> None:
    for name in hs.__all__:
        assert getattr(hs, name).__doc__, name
