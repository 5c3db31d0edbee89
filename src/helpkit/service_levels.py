"""Service levels of a desk: which SLA policy applies to a ticket, its SLA status, the tier
ladder and the time a ticket spent in each tier.

Application layer: it reads the store (the requester and the organization a policy condition
looks at, the groups the ladder is made of) and applies the pure rules of :mod:`helpkit.sla`
and :mod:`helpkit.escalation`. The desk, the timers and the sweep share one instance.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Final, TypeVar

from helpkit.calendar import BusinessCalendar
from helpkit.conditions import Subject
from helpkit.config import DeskConfig
from helpkit.errors import NotFoundError
from helpkit.escalation import DEFAULT_TIER_NAMES, Tier, TierLadder, tier_times
from helpkit.events import Event
from helpkit.ports import Store
from helpkit.sla import DEFAULT_PAUSE_CATEGORIES, SlaContext, SlaFold, SlaPolicy, SlaStatus
from helpkit.tickets import Ticket

T = TypeVar("T")

__all__ = ["ServiceLevels"]

_ALWAYS: Final = BusinessCalendar.always("UTC")


class ServiceLevels:
    """SLA policies and escalation tiers as they apply to the tickets of one store."""

    def __init__(self, store: Store, config: DeskConfig) -> None:
        self._store = store
        self._config = config
        self._local = threading.local()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Within the block, this thread reads each requester's and organization's SLA facts
        once (a sweep of many tickets of few customers reads each customer once)."""
        outer: dict[tuple[str, str | None], SlaContext] | None = getattr(
            self._local, "contexts", None
        )
        if outer is None:
            self._local.contexts = {}
        try:
            yield
        finally:
            if outer is None:
                self._local.contexts = None

    @property
    def measured(self) -> bool:
        """Whether the desk has SLA policies at all."""
        return self._config.sla is not None

    def context(self, ticket: Ticket) -> SlaContext:
        """What SLA conditions need about the requester and the organization."""
        memo: dict[tuple[str, str | None], SlaContext] | None = getattr(
            self._local, "contexts", None
        )
        if memo is None:
            return self._read_context(ticket)
        key = (ticket.requester_id, ticket.organization_id)
        found = memo.get(key)
        if found is None:
            found = memo[key] = self._read_context(ticket)
        return found

    def _read_context(self, ticket: Ticket) -> SlaContext:
        segment = region = None
        vip = False
        try:
            contact = self._store.get_contact(ticket.requester_id)
            segment, vip = contact.segment, contact.vip
        except NotFoundError:
            pass
        if ticket.organization_id is not None:
            try:
                org = self._store.get_organization(ticket.organization_id)
                segment = org.segment or segment
                region = org.region
                vip = vip or org.vip
            except NotFoundError:
                pass
        return SlaContext(segment=segment, region=region, vip=vip)

    def policy_for(self, ticket: Ticket) -> SlaPolicy | None:
        """The SLA policy that applies to ``ticket`` now (first match, else the default)."""
        sla = self._config.sla
        if sla is None:
            return None
        subject = None
        if sla.reads_people:
            subject = Subject(
                ticket=ticket,
                now=ticket.updated_at,
                find_requester=lambda: self._find(self._store.get_contact, ticket.requester_id),
                find_organization=lambda: self._find(
                    self._store.get_organization, ticket.organization_id
                ),
            )
        return sla.select(ticket, self.context(ticket), subject)

    def uniform_policy(self) -> SlaPolicy | None:
        """The policy that applies to every ticket whatever it holds (the first policy has
        no conditions, or there are none but a default), or ``None`` when the choice depends
        on the ticket (or there is no SLA): the sweep's fast path decides without the ticket
        only then."""
        sla = self._config.sla
        if sla is None:
            return None
        if not sla.policies:
            return sla.default
        first = sla.policies[0]
        return first if not first.conditions and first.when is None else None

    @staticmethod
    def _find(read: Callable[[str], T], key: str | None) -> T | None:
        if key is None:
            return None
        try:
            return read(key)
        except NotFoundError:
            return None

    def status(self, ticket: Ticket, events: Sequence[Event], now: datetime) -> SlaStatus | None:
        """Every SLA clock of the ticket as of ``now``, or ``None`` without a policy."""
        policy = self.policy_for(ticket)
        if policy is None:
            return None
        return SlaFold.of(events, policy).status(now)

    def ladder(self) -> TierLadder:
        """The escalation ladder: configured tiers, else the groups' ``tier`` in the store."""
        if self._config.tiers is not None:
            return self._config.tiers
        by_level: dict[int, list[str]] = {}
        for group in self._store.list_groups():
            if group.tier is not None:
                by_level.setdefault(group.tier, []).append(group.id)
        levels = set(DEFAULT_TIER_NAMES) | set(by_level)
        return TierLadder(
            [
                Tier(
                    level,
                    DEFAULT_TIER_NAMES.get(level, f"L{level}"),
                    tuple(by_level.get(level, ())),
                )
                for level in sorted(levels)
            ]
        )

    def tier_times(
        self, ticket: Ticket, events: Sequence[Event], now: datetime
    ) -> dict[int, timedelta]:
        """Business time the ticket spent in each tier, pauses excluded, on the calendar of
        its SLA policy (24/7 UTC without one)."""
        policy = self.policy_for(ticket)
        calendar = policy.calendar if policy is not None else _ALWAYS
        pause = policy.pause_categories if policy is not None else DEFAULT_PAUSE_CATEGORIES
        return tier_times(events, self.ladder(), calendar, now, pause_categories=pause)
