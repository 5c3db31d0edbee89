"""The side-by-side state machine: a store under test against the reference store.

:class:`StoreComparison` drives the store under test and a
:class:`~helpkit.stores.memory.MemoryStore` with the same random commands built by
:mod:`helpkit.lifecycle`, and checks after every step that both give the same
answers. :class:`SideBySideCases` runs it as the suite's
``test_behaves_like_the_reference_store``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from operator import methodcaller
from typing import Any, cast

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from helpkit import lifecycle
from helpkit.errors import ConflictError, InvalidTransitionError, ValidationError
from helpkit.lifecycle import Outcome
from helpkit.people import Agent, Group
from helpkit.ports import Capability, ChangeFeed, Store, TicketChange
from helpkit.priority import ITIL_MATRIX, Impact, Priority, Urgency
from helpkit.queries import SortOrder, TicketQuery
from helpkit.stores.memory import MemoryStore
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import (
    _AGENT,
    _H,
    _US,
    BASE_TIME,
    StoreFactory,
    _contact,
    _open,
    _organization,
    _outcome,
    _pages,
    _reference_pages,
    _stale_tag,
    change_of,
    with_schedule,
)
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, StatusCategory, Ticket

_CONTACT_IDS = ("c1", "c2", "c3", "c4")
_ORG_IDS = ("o1", "o2", "o3")
_AGENT_IDS = ("a1", "a2")
_GROUP_IDS = ("g1", "g2")
_TAGS = ("vpn", "billing", "urgent")
_NAMES = ("José Pérez", "jose perez", "JOSÉ", "Zoë Ångström", "zoe", "Ann Lee", "Anne  Leé")
_EMAILS = ("jose@example.com", "JOSE@example.com", "zoe@example.org", "ann@example.net")
_ORG_NAMES = ("Acme", "ÄCME Corp", "Globex", "Société Générale")
_DOMAINS = ("acme.example", "ACME.example", "globex.example", "sg.example")
_SEARCHES = ("", "jose", "JOSÉ", "pérez", "zo", "ann lee", "acme", "societe", "nobody")
_STATUSES = tuple(s.name for s in DEFAULT_WORKFLOW.statuses if s.name != "merged")
_TICKET_SPECS = st.fixed_dictionaries(
    {
        "requester_id": st.sampled_from(_CONTACT_IDS),
        "organization_id": st.sampled_from((None, *_ORG_IDS)),
        "impact": st.sampled_from(Impact),
        "urgency": st.sampled_from(Urgency),
        "assignee_id": st.sampled_from((None, *_AGENT_IDS)),
        "group_id": st.sampled_from((None, *_GROUP_IDS)),
        "tags": st.lists(st.sampled_from(_TAGS), unique=True, max_size=2),
        "with_comment": st.booleans(),
    }
)

_seconds = st.sampled_from((0, 1, 59, 3600, 86_400))

# An SLA instant as drawn: missing, or an offset from BASE_TIME (``True``; fixed instants that
# many tickets share) or from the machine's current time (``False``; past or future of the
# queries that follow). A microsecond offset catches stores that round instants.
_DrawnInstant = tuple[bool, timedelta] | None
_DrawnSchedule = tuple[str | None, _DrawnInstant, _DrawnInstant]
_instants: st.SearchStrategy[_DrawnInstant] = st.none() | st.tuples(
    st.booleans(),
    st.sampled_from(
        (-timedelta(days=1), -_H, timedelta(0), _US, 0.5 * _H, _H, timedelta(days=1, hours=1))
    ),
)
# In the general query rule the SLA filters join the others now and then; alone they would
# narrow most queries to nothing and hide what the other filters do.
_sometimes_instants: st.SearchStrategy[_DrawnInstant] = st.integers(0, 3).flatmap(
    lambda n: _instants if n == 0 else st.none()
)
_schedules: st.SearchStrategy[_DrawnSchedule] = st.tuples(
    st.sampled_from((None, "gold", "silver")), _instants, _instants
)


class StoreComparison(RuleBasedStateMachine):
    """Drives a store and a MemoryStore with the same random commands; they must agree."""

    def __init__(self, make_store: StoreFactory) -> None:
        super().__init__()
        self.store = make_store()
        self.reference = MemoryStore()
        self.now = BASE_TIME
        self.ticket_ids: list[str] = []
        self.numbers: set[int] = set()

    def teardown(self) -> None:
        self.store.close()
        self.reference.close()

    # ------------------------------------------------------------ helpers

    def _instant(self, drawn: _DrawnInstant) -> datetime | None:
        if drawn is None:
            return None
        from_base, offset = drawn
        return (BASE_TIME if from_base else self.now) + offset

    def _commit(self, *outcomes: Outcome, schedules: tuple[_DrawnSchedule, ...]) -> None:
        """Commit ``outcomes`` to both stores, each with its drawn SLA schedule."""
        outcomes = tuple(
            with_schedule(
                outcome,
                policy=schedule[0],
                deadline=self._instant(schedule[1]),
                check=self._instant(schedule[2]),
            )
            for outcome, schedule in zip(outcomes, schedules, strict=True)
        )
        changes = [change_of(o) for o in outcomes if o.changed]
        if not changes:
            return
        expected = self.reference.commit(changes)
        written = self.store.commit(changes)
        assert written == expected, "the store returned other changes than the reference"
        for change in written:
            if change.expected_seq == 0:
                self.numbers.add(change.ticket.number)

    def _both(self, call: Callable[[Store], object]) -> None:
        """Run ``call`` on both stores; they must both succeed or fail the same way."""
        expected = _outcome(lambda: call(self.reference))
        got = _outcome(lambda: call(self.store))
        assert got == expected, f"store gave {got}, the reference {expected}"

    def _schedule(self, data: st.DataObject) -> _DrawnSchedule:
        return data.draw(_schedules, label="SLA schedule")

    def _ticket(self, data: st.DataObject) -> Ticket:
        ticket_id = data.draw(st.sampled_from(self.ticket_ids), label="ticket")
        return self.reference.get_ticket(ticket_id)

    def _has_tickets(self) -> bool:
        return bool(self.ticket_ids)

    # ------------------------------------------------------------ time

    @rule(seconds=_seconds)
    def wait(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    # ------------------------------------------------------------ ticket commands

    @initialize(specs=st.lists(st.tuples(_TICKET_SPECS, _schedules), min_size=1, max_size=6))
    def open_some_tickets(self, specs: list[tuple[dict[str, Any], _DrawnSchedule]]) -> None:
        for spec, schedule in specs:
            self.open_ticket(spec, schedule)
            self.now += timedelta(seconds=30)

    @rule(spec=_TICKET_SPECS, schedule=_schedules)
    def open_ticket(self, spec: dict[str, Any], schedule: _DrawnSchedule) -> None:
        # Number 0: both stores number the ticket, one more than the highest number stored.
        ticket_id = f"t{len(self.ticket_ids):03d}"
        highest = max(self.numbers, default=0)
        self._commit(_open(ticket_id, 0, self.now, **spec), schedules=(schedule,))
        number = self.store.get_ticket(ticket_id).number
        assert number == highest + 1, f"ticket numbered {number} after {highest}"
        self.ticket_ids.append(ticket_id)

    @rule(spec=_TICKET_SPECS, schedule=_schedules, ahead=st.integers(0, 3))
    def import_ticket(self, spec: dict[str, Any], schedule: _DrawnSchedule, ahead: int) -> None:
        """A ticket brought in with its own number (a free one, or one already taken)."""
        ticket_id = f"t{len(self.ticket_ids):03d}"
        number = max(self.numbers, default=0) + ahead
        outcome = _open(ticket_id, number, self.now, **spec) if number else None
        if outcome is None:
            return
        change = change_of(with_schedule(outcome, policy=None, deadline=None, check=None))
        self._both(lambda store: store.commit([change]))
        if number not in self.numbers:
            self.numbers.add(number)
            self.ticket_ids.append(ticket_id)

    @precondition(_has_tickets)
    @rule(
        data=st.data(),
        by_requester=st.booleans(),
        public=st.booleans(),
        status=st.sampled_from((None, "pending", "on_hold", "solved")),
    )
    def comment(
        self, data: st.DataObject, by_requester: bool, public: bool, status: str | None
    ) -> None:
        ticket = self._ticket(data)
        author = Actor.contact(ticket.requester_id) if by_requester else _AGENT
        comment = Comment(
            id=f"{ticket.id}-m{ticket.seq + 1}",
            author=author,
            body="A message.",
            public=public or by_requester,
            channel="web",
            created_at=self.now,
        )
        try:
            outcome = lifecycle.add_comment(
                ticket,
                comment,
                at=self.now,
                workflow=DEFAULT_WORKFLOW,
                status=None if by_requester else status,
            )
        except (InvalidTransitionError, ValidationError):
            return
        self._commit(outcome, schedules=(self._schedule(data),))

    @precondition(_has_tickets)
    @rule(data=st.data(), status=st.sampled_from(_STATUSES))
    def set_status(self, data: st.DataObject, status: str) -> None:
        ticket = self._ticket(data)
        try:
            outcome = lifecycle.change_status(
                ticket, status, at=self.now, actor=_AGENT, workflow=DEFAULT_WORKFLOW
            )
        except (InvalidTransitionError, ValidationError):
            return
        self._commit(outcome, schedules=(self._schedule(data),))

    @precondition(_has_tickets)
    @rule(
        data=st.data(),
        assignee=st.sampled_from((None, *_AGENT_IDS)),
        group=st.sampled_from((None, *_GROUP_IDS)),
    )
    def assign(self, data: st.DataObject, assignee: str | None, group: str | None) -> None:
        ticket = self._ticket(data)
        try:
            outcome = lifecycle.assign(
                ticket, at=self.now, actor=_AGENT, assignee_id=assignee, group_id=group
            )
        except (InvalidTransitionError, ValidationError):
            return
        self._commit(outcome, schedules=(self._schedule(data),))

    @precondition(_has_tickets)
    @rule(data=st.data(), impact=st.sampled_from(Impact), urgency=st.sampled_from(Urgency))
    def reprioritize(self, data: st.DataObject, impact: Impact, urgency: Urgency) -> None:
        ticket = self._ticket(data)
        try:
            outcome = lifecycle.change_priority(
                ticket,
                at=self.now,
                actor=_AGENT,
                matrix=ITIL_MATRIX,
                impact=impact,
                urgency=urgency,
            )
        except (InvalidTransitionError, ValidationError):
            return
        self._commit(outcome, schedules=(self._schedule(data),))

    @precondition(_has_tickets)
    @rule(
        data=st.data(),
        add=st.frozensets(st.sampled_from(_TAGS)),
        remove=st.frozensets(st.sampled_from(_TAGS)),
    )
    def retag(self, data: st.DataObject, add: frozenset[str], remove: frozenset[str]) -> None:
        ticket = self._ticket(data)
        try:
            outcome = lifecycle.change_tags(
                ticket, at=self.now, actor=_AGENT, add=add - remove, remove=remove - add
            )
        except (InvalidTransitionError, ValidationError):
            return
        self._commit(outcome, schedules=(self._schedule(data),))

    @precondition(lambda self: len(self.ticket_ids) >= 2)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        source = self._ticket(data)
        target = self._ticket(data)
        comments = lifecycle.conversation(self.reference.events(source.id))
        try:
            src, dst = lifecycle.merge(
                source, target, comments, at=self.now, actor=_AGENT, workflow=DEFAULT_WORKFLOW
            )
        except (InvalidTransitionError, ValidationError):
            return
        self._commit(src, dst, schedules=(self._schedule(data), self._schedule(data)))

    @precondition(lambda self: any(self.reference.get_ticket(t).seq >= 2 for t in self.ticket_ids))
    @rule(data=st.data(), with_valid_change=st.booleans())
    def stale_write(self, data: st.DataObject, with_valid_change: bool) -> None:
        candidates = [t for t in self.ticket_ids if self.reference.get_ticket(t).seq >= 2]
        ticket_id = data.draw(st.sampled_from(candidates), label="stale ticket")
        history = self.reference.events(ticket_id)
        upto = data.draw(st.integers(1, len(history) - 1), label="stale seq")
        stale = _stale_tag(lifecycle.replay(history[:upto]), self.now)
        changes = [change_of(stale)]
        if with_valid_change:
            # A valid change to another ticket, first in the batch: it must not be written.
            other = self._ticket(data)
            if other.id != ticket_id:
                changes.insert(0, change_of(_stale_tag(other, self.now, "fresh")))
        self._expect_conflict(changes)

    @precondition(_has_tickets)
    @rule(data=st.data())
    def reopen_existing(self, data: st.DataObject) -> None:
        ticket = self._ticket(data)
        again = _open(ticket.id, ticket.number, self.now)
        self._expect_conflict([change_of(again)])

    def _expect_conflict(self, changes: list[TicketChange]) -> None:
        for target in (self.reference, self.store):
            with pytest.raises(ConflictError):
                target.commit(changes)

    # ------------------------------------------------------------ people

    @rule(
        data=st.data(),
        contact_id=st.sampled_from(_CONTACT_IDS),
        name=st.sampled_from(_NAMES),
        emails=st.lists(st.sampled_from(_EMAILS), max_size=2),
        organization=st.sampled_from((None, *_ORG_IDS)),
    )
    def save_contact(
        self,
        data: st.DataObject,
        contact_id: str,
        name: str,
        emails: list[str],
        organization: str | None,
    ) -> None:
        stored = _outcome(lambda: self.reference.get_contact(contact_id))
        current = stored[1].version if stored[0] == "ok" else 0
        version = data.draw(
            st.sampled_from((current + 1, current + 1, current + 1, current, current + 2, 1)),
            label="version",
        )
        if version < 1:
            return
        contact = _contact(
            contact_id, name, emails, version=version, at=self.now, organization_id=organization
        )
        self._both(methodcaller("save_contact", contact))

    @rule(
        data=st.data(),
        organization_id=st.sampled_from(_ORG_IDS),
        name=st.sampled_from(_ORG_NAMES),
        domains=st.lists(st.sampled_from(_DOMAINS), max_size=2),
    )
    def save_organization(
        self, data: st.DataObject, organization_id: str, name: str, domains: list[str]
    ) -> None:
        stored = _outcome(lambda: self.reference.get_organization(organization_id))
        current = stored[1].version if stored[0] == "ok" else 0
        version = data.draw(
            st.sampled_from((current + 1, current + 1, current, current + 2, 1)), label="version"
        )
        if version < 1:
            return
        org = _organization(organization_id, name, domains, version=version, at=self.now)
        self._both(methodcaller("save_organization", org))

    @rule(
        agent_id=st.sampled_from(_AGENT_IDS),
        name=st.sampled_from(_NAMES),
        groups=st.lists(st.sampled_from(_GROUP_IDS), max_size=2, unique=True),
        active=st.booleans(),
    )
    def save_agent(self, agent_id: str, name: str, groups: list[str], active: bool) -> None:
        agent = Agent(id=agent_id, name=name, group_ids=tuple(groups), active=active)
        self._both(methodcaller("save_agent", agent))

    @rule(
        group_id=st.sampled_from(_GROUP_IDS),
        name=st.sampled_from(_ORG_NAMES),
        tier=st.sampled_from((None, 1, 2, 3)),
    )
    def save_group(self, group_id: str, name: str, tier: int | None) -> None:
        group = Group(id=group_id, name=name, tier=tier)
        self._both(methodcaller("save_group", group))

    # ------------------------------------------------------------ reads

    @rule(
        statuses=st.none() | st.frozensets(st.sampled_from(_STATUSES), min_size=1),
        categories=st.none() | st.frozensets(st.sampled_from(StatusCategory), min_size=1),
        assignees=st.none() | st.frozensets(st.sampled_from(_AGENT_IDS), min_size=1),
        unassigned=st.booleans(),
        groups=st.none() | st.frozensets(st.sampled_from(_GROUP_IDS), min_size=1),
        requesters=st.none() | st.frozensets(st.sampled_from(_CONTACT_IDS), min_size=1),
        organizations=st.none() | st.frozensets(st.sampled_from(_ORG_IDS), min_size=1),
        priorities=st.none() | st.frozensets(st.sampled_from(Priority), min_size=1),
        tags=st.frozensets(st.sampled_from(_TAGS), max_size=2),
        deadline_before=_sometimes_instants,
        next_check_before=_sometimes_instants,
        order=st.sampled_from(SortOrder),
        limit=st.integers(1, 4),
    )
    def query(
        self,
        statuses: frozenset[str] | None,
        categories: frozenset[StatusCategory] | None,
        assignees: frozenset[str] | None,
        unassigned: bool,
        groups: frozenset[str] | None,
        requesters: frozenset[str] | None,
        organizations: frozenset[str] | None,
        priorities: frozenset[Priority] | None,
        tags: frozenset[str],
        deadline_before: _DrawnInstant,
        next_check_before: _DrawnInstant,
        order: SortOrder,
        limit: int,
    ) -> None:
        query = TicketQuery(
            statuses=statuses,
            categories=categories,
            assignee_ids=None if unassigned else assignees,
            unassigned=unassigned,
            group_ids=groups,
            requester_ids=requesters,
            organization_ids=organizations,
            priorities=priorities,
            tags=tags,
            deadline_before=self._instant(deadline_before),
            next_check_before=self._instant(next_check_before),
            sort=order,
            limit=limit,
        )
        self._check_query(query)

    @rule(
        scope=st.sampled_from(("all", "assignee", "group", "unassigned")),
        instant=_instants,
        order=st.sampled_from((SortOrder.PRIORITY, SortOrder.DEADLINE, SortOrder.NEXT_CHECK)),
        limit=st.integers(1, 3),
    )
    def sla_query(self, scope: str, instant: _DrawnInstant, order: SortOrder, limit: int) -> None:
        """The shapes SLA work asks for: the sweep, "breaching within", a deadline-aware queue."""
        active = frozenset({StatusCategory.NEW, StatusCategory.OPEN})
        scopes: dict[str, dict[str, Any]] = {
            "all": {},
            "assignee": {"assignee_ids": _AGENT_IDS[0], "categories": active},
            "group": {"group_ids": _GROUP_IDS[0], "categories": active},
            "unassigned": {"unassigned": True, "categories": active},
        }
        filters = dict(scopes[scope])
        bound = self._instant(instant)
        if order is SortOrder.NEXT_CHECK:
            filters["next_check_before"] = bound
        elif order is SortOrder.DEADLINE:
            filters["deadline_before"] = bound
        self._check_query(TicketQuery(sort=order, limit=limit, **filters))

    def _check_query(self, query: TicketQuery) -> None:
        everything = [self.reference.get_ticket(t) for t in self.ticket_ids]
        assert _pages(self.store.query, query) == _reference_pages(everything, query), query

    @rule(text=st.sampled_from(_SEARCHES), limit=st.integers(1, 5))
    def search(self, text: str, limit: int) -> None:
        self._both(methodcaller("find_contacts", text, limit=limit))
        self._both(methodcaller("find_organizations", text, limit=limit))

    # ------------------------------------------------------------ invariants

    @invariant()
    def same_tickets(self) -> None:
        for ticket_id in self.ticket_ids:
            expected = self.reference.get_ticket(ticket_id)
            assert self.store.get_ticket(ticket_id) == expected
            assert self.store.get_ticket_by_number(expected.number) == expected
            history = self.reference.events(ticket_id)
            assert self.store.events(ticket_id) == history
            middle = len(history) // 2
            assert self.store.events(ticket_id, after_seq=middle) == history[middle:]

    @invariant()
    def same_feed(self) -> None:
        # The same commits, in the same order: the same events in the same order (the
        # positions themselves are the store's own).
        if Capability.CHANGE_FEED not in self.store.capabilities:
            return
        store, reference = cast(ChangeFeed, self.store), cast(ChangeFeed, self.reference)
        mine = store.changes(limit=100_000)
        assert [c.event for c in mine] == [c.event for c in reference.changes(limit=100_000)]
        assert [c.position for c in mine] == sorted({c.position for c in mine})

    @invariant()
    def same_pages(self) -> None:
        for order in SortOrder:
            query = TicketQuery(sort=order, limit=4)
            assert _pages(self.store.query, query) == _pages(self.reference.query, query), order
        # What a sweep run now reads, and what is breaching within the hour.
        for query in (
            TicketQuery(next_check_before=self.now, sort=SortOrder.NEXT_CHECK, limit=4),
            TicketQuery(deadline_before=self.now + _H, sort=SortOrder.DEADLINE, limit=4),
        ):
            assert _pages(self.store.query, query) == _pages(self.reference.query, query), query

    @invariant()
    def same_people(self) -> None:
        for contact_id in _CONTACT_IDS:
            self._both(methodcaller("get_contact", contact_id))
        for email in _EMAILS:
            self._both(methodcaller("contact_by_email", email))
        for org_id in _ORG_IDS:
            self._both(methodcaller("get_organization", org_id))
        for domain in _DOMAINS:
            self._both(methodcaller("organization_by_domain", domain))
        self._both(methodcaller("list_agents"))
        self._both(methodcaller("list_groups"))
        for text in _SEARCHES:
            self._both(methodcaller("find_contacts", text))
            self._both(methodcaller("find_organizations", text))


class SideBySideCases(SuiteBase):
    """The store under test behaves like the reference store, step by step."""

    def test_behaves_like_the_reference_store(self, make_store: StoreFactory) -> None:
        class Comparison(StoreComparison):
            def __init__(self) -> None:
                super().__init__(make_store)

        run_state_machine_as_test(Comparison, settings=self.stateful_settings)
