"""The store conformance suite: what every :class:`helpkit.ports.Store` must do.

Subclass :class:`StoreConformance` in your test suite and supply one fixture, ``make_store``,
returning a zero-argument callable that creates a fresh, empty store::

    import pytest
    from helpkit.testing.conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def make_store(self, tmp_path):
            counter = itertools.count()
            return lambda: MyStore(tmp_path / f"desk{next(counter)}.db")

Stores that declare :attr:`helpkit.ports.Capability.PERSISTENT` also supply a
``reopen_store`` fixture returning a callable ``(closed_store) -> Store`` that opens the same
data again; the persistence tests are skipped (with the reason shown) for stores that do not
declare the capability.

Besides example-based tests, the suite runs a Hypothesis state machine that drives the store
under test and a :class:`~helpkit.stores.memory.MemoryStore` side by side with random
commands built by :mod:`helpkit.lifecycle`, and checks after every step that both give the
same answers. This module needs pytest and Hypothesis (the ``testing`` extra).
"""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from helpkit import lifecycle
from helpkit.errors import ConflictError
from helpkit.events import Event
from helpkit.people import Agent, Group
from helpkit.ports import Capability, Store
from helpkit.queries import SortOrder, TicketQuery
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.commits import CommitCases
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
    with_schedule,
)
from helpkit.testing.conformance.helpers import forged as forged
from helpkit.testing.conformance.numbering import NumberingCases
from helpkit.testing.conformance.people import PeopleCases
from helpkit.testing.conformance.queries import QueryCases
from helpkit.testing.conformance.query_data import _build_query_data
from helpkit.testing.conformance.stateful import StoreComparison
from helpkit.tickets import Ticket

__all__ = [
    "BASE_TIME",
    "ReopenStore",
    "StoreComparison",
    "StoreConformance",
    "StoreFactory",
    "change_of",
    "with_schedule",
]


class StoreConformance(PeopleCases, QueryCases, NumberingCases, CommitCases, SuiteBase):
    """The behaviour every store must show. Subclass it as ``TestXxx`` and supply fixtures.

    Required: ``make_store`` (a fixture returning a callable that creates a fresh, empty
    store each call). For persistent stores: ``reopen_store`` (a fixture returning a callable
    that, given a store the suite has closed, opens the same data again).

    Class attributes to adjust: ``thread_safe`` (set False if a store object must not be
    shared between threads; the thread tests are then skipped) and ``stateful_settings``
    (Hypothesis settings of the side-by-side state machine).
    """

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

    # ------------------------------------------------------------ side by side

    def test_behaves_like_the_reference_store(self, make_store: StoreFactory) -> None:
        class Comparison(StoreComparison):
            def __init__(self) -> None:
                super().__init__(make_store)

        run_state_machine_as_test(Comparison, settings=self.stateful_settings)


def _first_state(events: list[Event]) -> Ticket:
    return lifecycle.replay(events[:1])
