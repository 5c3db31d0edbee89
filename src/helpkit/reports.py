"""KPI reports read from a store: the tickets and their events, streamed a page at a time.

Application layer (a service): it reads the store and hands each ticket's events to the pure
:func:`helpkit.kpis.ticket_facts`, then adds the facts up with
:class:`helpkit.kpis.KpiAccumulator`. Only one page of tickets and one ticket's events are
held at a time, so a report's memory grows with the number of tickets' small facts it keeps
(durations, counters), not with their histories.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from helpkit.errors import NotFoundError
from helpkit.escalation import TierLadder
from helpkit.kpis import KpiAccumulator, KpiFilter, KpiReport, Period, TicketFacts, ticket_facts
from helpkit.ports import Store
from helpkit.queries import SortOrder, TicketQuery
from helpkit.sla import SlaPolicy, SlaPolicySet
from helpkit.tickets import Ticket

__all__ = ["PAGE", "KpiReader"]

PAGE = 500
"""Tickets read per query page."""


class KpiReader:
    """Streams a store's tickets into KPI facts and reports."""

    def __init__(
        self, store: Store, policies: SlaPolicySet | None, ladder: TierLadder | None
    ) -> None:
        self._store = store
        self._policies = policies
        self._ladder = ladder

    def tickets(self) -> Iterator[Ticket]:
        """Every ticket, oldest first, one query page at a time."""
        after: str | None = None
        while True:
            page = self._store.query(TicketQuery(sort=SortOrder.CREATED, limit=PAGE, after=after))
            yield from page.items
            if page.next_cursor is None:
                return
            after = page.next_cursor

    def policy(self, ticket: Ticket) -> SlaPolicy | None:
        """The SLA policy the ticket was last measured under (``None``: none, or a policy no
        longer configured)."""
        if self._policies is None or ticket.sla_policy is None:
            return None
        try:
            return self._policies.get(ticket.sla_policy)
        except NotFoundError:
            return None

    def facts(self, now: datetime) -> Iterator[TicketFacts]:
        """The facts of every ticket opened by ``now``."""
        for ticket in self.tickets():
            if ticket.created_at > now:
                continue
            found = ticket_facts(
                self._store.events(ticket.id),
                now,
                policy=self.policy(ticket),
                ladder=self._ladder,
            )
            if found is not None:
                yield found

    def report(
        self, now: datetime, kpi_filter: KpiFilter | None = None, period: Period = Period.DAY
    ) -> KpiReport:
        """The KPIs of the tickets ``kpi_filter`` selects, as of ``now``."""
        accumulator = KpiAccumulator(now, kpi_filter, period)
        for facts in self.facts(now):
            accumulator.add(facts)
        return accumulator.report()
