"""The router: routing's reads and its place in the command pipeline (see the page *Routing*).

:mod:`helpkit.routing` decides; this module reads what it decides on (the group's members,
the requester's language and VIP flag, the groups' routing states, the candidates' loads)
from a store with :attr:`~helpkit.ports.Capability.ROUTING`, and turns a decision into an
``Assigned`` event by ``system:routing`` whose reason says who was chosen and why. The
pipeline calls it after a command's decision, inside the command's turn, and commits the
routing states it read, each at its version plus one, with the ticket's change: a routing
decision that another one overtook (in any thread or process) makes the commit raise
ConflictError, and the pipeline decides the command again on fresh data.

Which states are guarded: those of every routed group of every member of the ticket's
group. Two decisions that could give one agent a ticket both read (and move) the states of
that agent's routed groups, so they never both fill the agent's last slot, even from two
groups sharing the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final, Protocol

import attrs

from helpkit import lifecycle
from helpkit.conditions import ALWAYS, Subject
from helpkit.config import DeskConfig
from helpkit.errors import ConfigError, NotFoundError
from helpkit.events import Assigned, TicketOpened
from helpkit.outcomes import Outcome
from helpkit.people import Contact, Organization
from helpkit.ports import Capability, Routing, RoutingState, Store, capable
from helpkit.queries import SortOrder, TicketQuery
from helpkit.routing import (
    DEFAULT_LOAD,
    Decision,
    GroupRouting,
    Request,
    choose,
    waiting_order,
)
from helpkit.tickets import Actor, Ticket

__all__ = ["ROUTING_ACTOR", "Routed", "Router"]

log = logging.getLogger("helpkit.routing")

ROUTING_ACTOR: Final = Actor.system("routing")
"""The actor of the assignments routing makes."""

_WAITING_PAGE: Final = 200
"""How many of a group's oldest waiting tickets :meth:`Router.waiting` orders (VIP first)."""


@attrs.frozen
class Routed:
    """The outcomes after routing, and the routing states to commit with each ticket."""

    outcomes: list[Outcome]
    states: Mapping[str, tuple[RoutingState, ...]]
    decisions: Mapping[str, Decision]


class Lookups(Protocol):
    """A ticket's requester and organization, looked up when first asked for
    (:meth:`helpkit.directory.Directory.lookups`)."""

    def requester(self) -> Contact | None: ...

    def organization(self) -> Organization | None: ...


class Router:
    """Routes the tickets of the desk's routed groups (``config.routing``)."""

    def __init__(
        self, store: Store, config: DeskConfig, lookups: Callable[[Ticket], Lookups]
    ) -> None:
        self._config = config
        self._lookups = lookups
        self._policies = config.routing
        self._store = store
        self._tests: dict[str, Callable[[Subject], bool]] = {
            group_id: policy.when.compiled()
            for group_id, policy in self._policies.groups.items()
            if policy.when != ALWAYS
        }
        self._routing = capable(store, Capability.ROUTING, Routing)
        if self._policies and self._routing is None:
            raise ConfigError(
                f"routing is configured but {type(store).__name__} keeps no routing state "
                "(Capability.ROUTING): use a store that does (memory, SQLite, PostgreSQL)"
            )

    @property
    def enabled(self) -> bool:
        """Whether any group is routed."""
        return bool(self._policies)

    def policy(self, group_id: str | None) -> GroupRouting | None:
        """The routing of a group, or ``None``."""
        return self._policies.get(group_id)

    def routable(self, ticket: Ticket) -> bool:
        """Whether routing may hand ``ticket`` to an agent: unassigned, not solved or closed,
        in a routed group, meeting the group's ``when``."""
        if not (
            ticket.assignee_id is None
            and ticket.merged_into is None
            and ticket.category.is_active
            and ticket.group_id in self._policies
        ):
            return False
        test = self._tests.get(ticket.group_id or "")
        return test is None or test(self._subject(ticket))

    def _subject(self, ticket: Ticket) -> Subject:
        """What a group's ``when`` reads: the ticket, its requester and organization (looked
        up only if the condition reads them). The condition has no time part."""
        people = self._lookups(ticket)
        return Subject(
            ticket=ticket,
            now=ticket.updated_at,
            find_requester=people.requester,
            find_organization=people.organization,
        )

    def wants(self, outcome: Outcome) -> bool:
        """Whether a command's outcome is routed automatically: a routable ticket that was
        opened, or that entered its group without an assignee."""
        if not outcome.changed or not self.routable(outcome.ticket):
            return False
        for event in outcome.events:
            if isinstance(event, TicketOpened):
                return True
            if isinstance(event, Assigned) and event.group_id != event.previous_group_id:
                return True
        return False

    def groups(self, outcomes: Sequence[Outcome], *, force: bool = False) -> list[str]:
        """The groups routing decides in for these outcomes (``force``: every routable
        ticket, changed or not)."""
        found = {
            o.ticket.group_id
            for o in outcomes
            if (self.routable(o.ticket) if force else self.wants(o))
        }
        return sorted(g for g in found if g is not None)

    def route(self, outcomes: Sequence[Outcome], now: datetime, *, force: bool = False) -> Routed:
        """Route the tickets of ``outcomes`` that want it (``force``: every routable one)."""
        routed = list(outcomes)
        states: dict[str, tuple[RoutingState, ...]] = {}
        decisions: dict[str, Decision] = {}
        seen: set[str] = set()
        for index, outcome in enumerate(outcomes):
            ticket = outcome.ticket
            if not (self.routable(ticket) if force else self.wants(outcome)):
                continue
            policy = self._policies.get(ticket.group_id)
            assert policy is not None
            decision, moved = self.decide(policy, ticket, now)
            decisions[ticket.id] = decision
            if decision.agent_id is None:
                log.info("ticket %s waits: %s", ticket.reference, decision.reason())
                continue
            if seen & {s.group_id for s in moved}:
                # One commit moves a group's state once: route the rest in a later command.
                continue
            seen.update(s.group_id for s in moved)
            assigned = lifecycle.assign(
                ticket,
                at=now,
                actor=ROUTING_ACTOR,
                assignee_id=decision.agent_id,
                group_id=ticket.group_id,
                reason=decision.reason(),
            )
            routed[index] = Outcome(
                assigned.ticket, outcome.events + assigned.events, outcome.previous_seq
            )
            states[ticket.id] = moved
            log.info("ticket %s: %s", ticket.reference, decision.reason())
        return Routed(routed, states, decisions)

    def decide(
        self, policy: GroupRouting, ticket: Ticket, now: datetime
    ) -> tuple[Decision, tuple[RoutingState, ...]]:
        """Choose the agent for ``ticket`` in its group; the states to commit with it.

        The states are read before the loads: a load read after a state's version is never
        older than what the routers that moved that version wrote.
        """
        store = self._routing
        assert store is not None
        members = [a for a in self._store.list_agents() if a.in_group(policy.group_id)]
        guarded = {policy.group_id}
        for agent in members:
            guarded.update(g for g in agent.group_ids if g in self._policies)
        read = store.routing_states(sorted(guarded))
        loads = store.agent_loads([a.id for a in members], policy.load)
        cursor = read[policy.group_id].cursor
        decision = choose(
            policy,
            members,
            loads,
            cursor,
            self._request(policy, ticket),
            now=now,
            calendars=self._config.calendars,
        )
        moved = tuple(
            RoutingState(
                group_id=g,
                version=read[g].version + 1,
                cursor=decision.cursor if g == policy.group_id else read[g].cursor,
            )
            for g in sorted(guarded)
        )
        return decision, moved

    def _request(self, policy: GroupRouting, ticket: Ticket) -> Request:
        language = None
        if policy.language:
            try:
                language = self._store.get_contact(ticket.requester_id).language
            except NotFoundError:
                language = None
        return Request(skills=policy.required_skills(ticket), language=language)

    def vip(self, ticket: Ticket) -> bool:
        """Whether the ticket's requester, or its organization, is a VIP."""
        people = self._lookups(ticket)
        requester = people.requester()
        if requester is None:
            return False
        if requester.vip:
            return True
        organization = people.organization()
        return organization is not None and organization.vip

    def waiting(self, group_id: str, *, limit: int = _WAITING_PAGE) -> list[Ticket]:
        """The group's tickets waiting for an agent, in the order routing takes them: VIP
        first (when the group says so), then by priority, then oldest first. Looks at the
        ``limit`` oldest waiting tickets."""
        policy = self._policies.get(group_id)
        if policy is None:
            return []
        page = self._store.query(
            TicketQuery(
                group_ids={group_id},
                unassigned=True,
                categories=DEFAULT_LOAD,
                sort=SortOrder.CREATED,
                limit=limit,
            )
        )
        tickets = [t for t in page if self.routable(t)]
        vip = frozenset(t.id for t in tickets if policy.vip_first and self.vip(t))
        return waiting_order(tickets, vip, vip_first=policy.vip_first)
