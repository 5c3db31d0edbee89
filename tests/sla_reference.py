"""Helpers for the SLA tests: a story builder over helpkit.lifecycle, and a reference model.

The reference re-derives each metric cycle's running intervals from the events in the most
literal way (a category timeline, then each cycle's window cut by it) so the tests can check
the clock's numbers with ``calendar.elapsed`` over those intervals, independently of the
prefix sums and binary searches in :mod:`helpkit.sla`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs

from helpkit.calendar import BusinessCalendar
from helpkit.events import (
    CommentAdded,
    Event,
    MergedInto,
    PriorityChanged,
    StatusChanged,
    TicketOpened,
)
from helpkit.lifecycle import (
    Outcome,
    add_comment,
    change_priority,
    change_status,
    merge,
    open_ticket,
)
from helpkit.priority import ITIL_MATRIX, Impact, Priority, Urgency
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, ActorKind, Comment, StatusCategory, Ticket

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
AGENT = Actor.agent("alice")
CONTACT = Actor.contact("bob")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Day 0 is Monday 2026-03-02 (UTC); day 4 is Friday, day 7 the next Monday."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


class Story:
    """A ticket's history built with the real lifecycle, so every event list is valid."""

    def __init__(
        self,
        when: datetime,
        *,
        opener: Actor = CONTACT,
        body: bool = True,
        impact: Impact = Impact.MEDIUM,
        urgency: Urgency = Urgency.MEDIUM,
        ticket_id: str = "t1",
    ) -> None:
        self.count = 0
        first = None
        if body:
            first = self._comment(opener, True, when, ticket_id)
        outcome = open_ticket(
            ticket_id=ticket_id,
            number=1,
            at=when,
            actor=opener,
            subject="It does not work",
            requester_id=CONTACT.id,
            organization_id=None,
            impact=impact,
            urgency=urgency,
            matrix=ITIL_MATRIX,
            workflow=DEFAULT_WORKFLOW,
            channel="email",
            first_comment=first,
        )
        self.ticket: Ticket = outcome.ticket
        self.events: list[Event] = list(outcome.events)

    def _comment(self, author: Actor, public: bool, when: datetime, ticket_id: str) -> Comment:
        self.count += 1
        return Comment(
            id=f"c{self.count}",
            author=author,
            body="text",
            public=public,
            channel="email",
            created_at=when,
            ticket_id=ticket_id,
        )

    def _take(self, outcome: Outcome) -> Story:
        self.ticket = outcome.ticket
        self.events.extend(outcome.events)
        return self

    def agent_reply(self, when: datetime, status: str | None = None) -> Story:
        comment = self._comment(AGENT, True, when, self.ticket.id)
        return self._take(
            add_comment(self.ticket, comment, at=when, workflow=DEFAULT_WORKFLOW, status=status)
        )

    def contact_reply(self, when: datetime) -> Story:
        comment = self._comment(CONTACT, True, when, self.ticket.id)
        return self._take(add_comment(self.ticket, comment, at=when, workflow=DEFAULT_WORKFLOW))

    def note(self, when: datetime) -> Story:
        comment = self._comment(AGENT, False, when, self.ticket.id)
        return self._take(add_comment(self.ticket, comment, at=when, workflow=DEFAULT_WORKFLOW))

    def status(self, name: str, when: datetime) -> Story:
        return self._take(
            change_status(self.ticket, name, at=when, actor=AGENT, workflow=DEFAULT_WORKFLOW)
        )

    def priority(
        self, when: datetime, *, impact: Impact | None = None, urgency: Urgency | None = None
    ) -> Story:
        return self._take(
            change_priority(
                self.ticket,
                at=when,
                actor=AGENT,
                matrix=ITIL_MATRIX,
                impact=impact,
                urgency=urgency,
            )
        )

    def merge_into(self, when: datetime) -> Story:
        target = open_ticket(
            ticket_id="t-target",
            number=2,
            at=when,
            actor=AGENT,
            subject="Main ticket",
            requester_id=CONTACT.id,
            organization_id=None,
            impact=Impact.LOW,
            urgency=Urgency.LOW,
            matrix=ITIL_MATRIX,
            workflow=DEFAULT_WORKFLOW,
            channel="email",
        ).ticket
        source, _ = merge(self.ticket, target, [], at=when, actor=AGENT, workflow=DEFAULT_WORKFLOW)
        return self._take(source)

    def merge_in(self, when: datetime) -> Story:
        """Another ticket (with a contact's message) is merged into this one."""
        source = open_ticket(
            ticket_id="t-source",
            number=3,
            at=when,
            actor=CONTACT,
            subject="Duplicate",
            requester_id=CONTACT.id,
            organization_id=None,
            impact=Impact.LOW,
            urgency=Urgency.LOW,
            matrix=ITIL_MATRIX,
            workflow=DEFAULT_WORKFLOW,
            channel="email",
        ).ticket
        moved = [self._comment(CONTACT, True, when, "t-source")]
        _, target = merge(
            source, self.ticket, moved, at=when, actor=AGENT, workflow=DEFAULT_WORKFLOW
        )
        return self._take(target)


# ---------------------------------------------------------------- the reference model


@attrs.define
class RefCycle:
    metric: str
    index: int
    start: datetime
    end: datetime | None = None
    achieved: bool = False
    end_priority: Priority | None = None


@attrs.frozen
class RefModel:
    cycles: tuple[RefCycle, ...]
    timeline: tuple[tuple[datetime, StatusCategory], ...]
    priority: Priority
    pause: frozenset[StatusCategory]

    def counts(self, category: StatusCategory) -> bool:
        return category not in self.pause and category not in (
            StatusCategory.SOLVED,
            StatusCategory.CLOSED,
        )

    def running_intervals(self, cycle: RefCycle) -> list[tuple[datetime, datetime | None]]:
        """The parts of the cycle's window during which the ticket counts."""
        out: list[tuple[datetime, datetime | None]] = []
        for i, (since, category) in enumerate(self.timeline):
            until = self.timeline[i + 1][0] if i + 1 < len(self.timeline) else None
            if not self.counts(category):
                continue
            lo = max(since, cycle.start)
            hi = (
                until
                if cycle.end is None
                else (cycle.end if until is None else min(until, cycle.end))
            )
            if hi is None or lo < hi:
                out.append((lo, hi))
        return out

    def counted(self, calendar: BusinessCalendar, cycle: RefCycle, upto: datetime) -> timedelta:
        total = timedelta(0)
        for lo, hi in self.running_intervals(cycle):
            top = upto if hi is None else min(hi, upto)
            if top > lo:
                total += calendar.elapsed(lo, top)
        return total


def reference(events: Sequence[Event], pause: frozenset[StatusCategory]) -> RefModel:
    opened = events[0]
    assert isinstance(opened, TicketOpened)
    t = opened.at
    category = opened.category
    priority = opened.priority
    timeline: list[tuple[datetime, StatusCategory]] = [(t, category)]
    cycles = [RefCycle("first_response", 0, t), RefCycle("resolution", 0, t)]
    replied = False

    def open_cycles(metric: str) -> list[RefCycle]:
        return [c for c in cycles if c.metric == metric and c.end is None]

    def end(cycle: RefCycle, achieved: bool) -> None:
        cycle.end, cycle.achieved, cycle.end_priority = t, achieved, priority

    for event in events[1:]:
        t = max(t, event.at)
        if category is StatusCategory.CLOSED:
            break
        new_category: StatusCategory | None = None
        if isinstance(event, CommentAdded) and event.comment.public:
            if event.comment.author.kind is ActorKind.AGENT:
                for metric in ("first_response", "next_response", "periodic_update"):
                    for cycle in open_cycles(metric):
                        end(cycle, True)
                count = sum(c.metric == "periodic_update" for c in cycles)
                cycles.append(RefCycle("periodic_update", count, t))
                replied = True
            elif (
                event.comment.author.kind is ActorKind.CONTACT
                and replied
                and not open_cycles("next_response")
            ):
                count = sum(c.metric == "next_response" for c in cycles)
                cycles.append(RefCycle("next_response", count, t))
        elif isinstance(event, StatusChanged):
            new_category = event.category
        elif isinstance(event, MergedInto):
            new_category = StatusCategory.CLOSED
        elif isinstance(event, PriorityChanged):
            priority = event.priority
        if new_category is None:
            continue
        resolution = cycles[1]
        if new_category is StatusCategory.SOLVED:
            for cycle in open_cycles("resolution"):
                end(cycle, True)
        elif new_category is StatusCategory.CLOSED:
            for cycle in cycles:
                if cycle.end is None:
                    end(cycle, False)
        elif category is StatusCategory.SOLVED and resolution.achieved:
            resolution.end, resolution.achieved, resolution.end_priority = None, False, None
        category = new_category
        timeline.append((t, category))
    return RefModel(tuple(cycles), tuple(timeline), priority, pause)
