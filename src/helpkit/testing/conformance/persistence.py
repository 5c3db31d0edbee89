"""Conformance cases for what a store hands out and what it keeps.

Returned lists do not alias stored data; a store that declares
``Capability.PERSISTENT`` keeps everything across reopening, seqs and versions included.
"""

from __future__ import annotations

import pytest

from helpkit import lifecycle
from helpkit.errors import ConflictError
from helpkit.events import Event
from helpkit.people import Agent, Group
from helpkit.ports import Capability, Store
from helpkit.queries import SortOrder, TicketQuery
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import (
    BASE_TIME,
    ReopenStore,
    StoreFactory,
    _contact,
    _open,
    _organization,
    _pages,
    _reference_pages,
    _stale_tag,
    _Time,
    change_of,
)
from helpkit.testing.conformance.query_data import _build_query_data
from helpkit.tickets import Ticket


class PersistenceCases(SuiteBase):
    """Results do not alias stored data; persistent stores keep everything across reopening."""

    # ------------------------------------------------------------ isolation

    def test_results_do_not_alias_stored_data(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        store.save_contact(_contact("c1", "Ann"))
        store.save_agent(Agent(id="a1", name="Al"))
        store.save_group(Group(id="g1", name="Desk"))
        store.save_organization(_organization("o1", "Acme"))
        for returned in (
            store.events("t1"),
            store.find_contacts("ann"),
            store.find_organizations("acme"),
            store.list_agents(),
            store.list_groups(),
        ):
            returned.clear()
        assert store.events("t1") == list(opened.events)
        assert len(store.find_contacts("ann")) == 1
        assert len(store.find_organizations("acme")) == 1
        assert len(store.list_agents()) == 1
        assert len(store.list_groups()) == 1

    # ------------------------------------------------------------ persistence

    def test_data_survives_reopening(
        self, make_store: StoreFactory, reopen_store: ReopenStore
    ) -> None:
        store = make_store()
        if Capability.PERSISTENT not in store.capabilities:
            store.close()
            pytest.skip("the store does not declare Capability.PERSISTENT")
        try:
            tickets = _build_query_data(store)
            events = {t.id: store.events(t.id) for t in tickets}
            ann = _contact("c1", "José Pérez", ["jose@example.com"])
            acme = _organization("o1", "Acme", ["acme.example"])
            agent = Agent(id="a1", name="Al", group_ids=("g1",))
            group = Group(id="g1", name="Desk", tier=1)
            store.save_contact(ann)
            store.save_organization(acme)
            store.save_agent(agent)
            store.save_group(group)
        finally:
            store.close()
        reopened = reopen_store(store)
        try:
            for ticket in tickets:
                assert reopened.get_ticket(ticket.id) == ticket
                assert reopened.get_ticket_by_number(ticket.number) == ticket
                assert reopened.events(ticket.id) == events[ticket.id]
            for order in SortOrder:
                query = TicketQuery(sort=order, limit=5)
                assert _pages(reopened.query, query) == _reference_pages(tickets, query)
            assert reopened.find_contacts("jose") == [ann]
            assert reopened.contact_by_email("JOSE@example.com") == ann
            assert reopened.organization_by_domain("acme.example") == acme
            assert reopened.list_agents() == [agent]
            assert reopened.list_groups() == [group]
            # Numbering continues above the numbers stored before.
            highest = max(t.number for t in tickets)
            (numbered,) = reopened.commit([change_of(_open("t-new", 0, BASE_TIME))])
            assert numbered.ticket.number == highest + 1
            # Seqs and versions survive too: stale writes still conflict.
            ticket = tickets[0]
            with pytest.raises(ConflictError):
                reopened.commit([change_of(_stale_tag(_first_state(events[ticket.id]), BASE_TIME))])
            with pytest.raises(ConflictError):
                reopened.save_contact(ann)
        finally:
            reopened.close()


def _first_state(events: list[Event]) -> Ticket:
    return lifecycle.replay(events[:1])
