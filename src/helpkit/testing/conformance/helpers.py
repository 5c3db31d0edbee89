"""Builders and helpers the conformance cases share.

Store changes from lifecycle outcomes, values forged past their checks, SLA schedules,
tickets, comments and people to commit, a clock that moves by steps, and pagination
through cursors (of a store, or of the reference :meth:`TicketQuery.page`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
import pytest

from helpkit import lifecycle
from helpkit.errors import HelpkitError
from helpkit.events import TagsChanged
from helpkit.lifecycle import Outcome
from helpkit.people import Contact, Organization
from helpkit.ports import Store, TicketChange, missing_members
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.queries import Page, TicketQuery
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, Ticket

StoreFactory = Callable[[], Store]
"""Creates a fresh, empty store each time it is called."""
ReopenStore = Callable[[Store], Store]
"""Given a closed store, opens the same data again (persistent stores only)."""

BASE_TIME = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""The fixed instant the suite's scenarios start at (a Monday); time only moves by steps."""

_T = TypeVar("_T")
_AGENT = Actor.agent("agent-1")
_US = timedelta(microseconds=1)
_H = timedelta(hours=1)


class _Time:
    """A deterministic clock for scenarios: it moves only by explicit steps."""

    def __init__(self) -> None:
        self.now = BASE_TIME

    def tick(self, seconds: int = 60) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def forged(value: _T, **changes: Any) -> _T:
    """A copy of the frozen ``value`` with ``changes`` set around its validators.

    Domain objects refuse bad values when they are built; a store must still refuse one that
    was forged past those checks (by a plugin bug, a pickle, ``object.__setattr__``). The
    suite uses this to build them.
    """
    cls: Any = type(value)
    copy: _T = object.__new__(cls)
    for field in attrs.fields(cls):
        object.__setattr__(copy, field.name, changes.pop(field.name, getattr(value, field.name)))
    if changes:
        raise TypeError(f"{type(value).__name__} has no field(s) {sorted(changes)}")
    return copy


def change_of(outcome: Outcome) -> TicketChange:
    """The store write for a lifecycle outcome."""
    return TicketChange(outcome.ticket, outcome.events, outcome.previous_seq)


def with_schedule(
    outcome: Outcome,
    *,
    policy: str | None,
    deadline: datetime | None,
    check: datetime | None,
) -> Outcome:
    """``outcome`` with the SLA fields a desk derives before committing (policy, next deadline,
    next check) set on its ticket: stores index them, so the suite varies them on purpose."""
    ticket = attrs.evolve(
        outcome.ticket, sla_policy=policy, next_deadline=deadline, next_check=check
    )
    return attrs.evolve(outcome, ticket=ticket)


def _open(
    ticket_id: str,
    number: int,
    at: datetime,
    *,
    requester_id: str = "c1",
    organization_id: str | None = None,
    impact: Impact = Impact.MEDIUM,
    urgency: Urgency = Urgency.MEDIUM,
    assignee_id: str | None = None,
    group_id: str | None = None,
    tags: Iterable[str] = (),
    with_comment: bool = True,
    subject: str | None = None,
    body: str = "The VPN drops every few minutes.",
) -> Outcome:
    requester = Actor.contact(requester_id)
    first = (
        Comment(
            id=f"{ticket_id}-m1",
            author=requester,
            body=body,
            public=True,
            channel="web",
            created_at=at,
        )
        if with_comment
        else None
    )
    return lifecycle.open_ticket(
        ticket_id=ticket_id,
        number=number,
        at=at,
        actor=requester,
        subject=subject if subject is not None else f"Problem {ticket_id}",
        requester_id=requester_id,
        organization_id=organization_id,
        impact=impact,
        urgency=urgency,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="web",
        first_comment=first,
        tags=tags,
        assignee_id=assignee_id,
        group_id=group_id,
    )


def _note(ticket: Ticket, at: datetime, text: str = "Looking into it.") -> Outcome:
    comment = Comment(
        id=f"{ticket.id}-m{ticket.seq + 1}",
        author=_AGENT,
        body=text,
        public=False,
        channel="web",
        created_at=at,
    )
    return lifecycle.add_comment(ticket, comment, at=at, workflow=DEFAULT_WORKFLOW)


def _stale_tag(stale: Ticket, at: datetime, tag: str = "stale") -> Outcome:
    """A well-formed change built on an old state (``apply`` does not check writability)."""
    event = TagsChanged(
        ticket_id=stale.id, seq=stale.seq + 1, at=at, actor=_AGENT, added=frozenset({tag})
    )
    return Outcome(lifecycle.apply(stale, event), (event,), stale.seq)


def _contact(
    contact_id: str,
    name: str,
    emails: Iterable[str] = (),
    *,
    version: int = 1,
    at: datetime = BASE_TIME,
    organization_id: str | None = None,
) -> Contact:
    return Contact(
        id=contact_id,
        name=name,
        emails=tuple(emails),
        organization_id=organization_id,
        created_at=at,
        updated_at=at,
        version=version,
    )


def _organization(
    organization_id: str,
    name: str,
    domains: Iterable[str] = (),
    *,
    version: int = 1,
    at: datetime = BASE_TIME,
) -> Organization:
    return Organization(
        id=organization_id,
        name=name,
        domains=tuple(domains),
        created_at=at,
        updated_at=at,
        version=version,
    )


def _pages(fetch: Callable[[TicketQuery], Page[Ticket]], query: TicketQuery) -> list[Page[Ticket]]:
    """Every page of ``query``, following the cursors ``fetch`` hands out."""
    pages = [fetch(query)]
    while pages[-1].next_cursor is not None:
        if len(pages) > 10_000:
            raise AssertionError(f"pagination of {query!r} does not end")
        pages.append(fetch(attrs.evolve(query, after=pages[-1].next_cursor)))
    return pages


def _reference_pages(tickets: Iterable[Ticket], query: TicketQuery) -> list[Page[Ticket]]:
    snapshot = list(tickets)
    return _pages(lambda q: q.page(snapshot), query)


def _outcome(call: Callable[[], _T]) -> tuple[str, Any]:
    """``("ok", value)`` or ``("error", exception type)`` for helpkit errors."""
    try:
        return ("ok", call())
    except HelpkitError as exc:
        return ("error", type(exc))


def declared(store: Store, capability: str, protocol: type) -> None:
    """Skip the case, with the reason shown, for a store that does not declare
    ``capability``; fail it for one that declares it without implementing ``protocol``, the
    part of the store protocol that capability adds."""
    name = capability.upper()
    if capability not in store.capabilities:
        pytest.skip(f"the store does not declare Capability.{name}")
    missing = missing_members(store, protocol)
    assert missing == (), f"a store with {name} implements {protocol.__name__}: missing {missing}"
