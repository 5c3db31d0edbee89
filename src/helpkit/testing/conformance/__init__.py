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

import attrs
import pytest
from hypothesis.stateful import run_state_machine_as_test

from helpkit import lifecycle
from helpkit.errors import ConflictError, DuplicateError, NotFoundError
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


class StoreConformance(QueryCases, NumberingCases, CommitCases, SuiteBase):
    """The behaviour every store must show. Subclass it as ``TestXxx`` and supply fixtures.

    Required: ``make_store`` (a fixture returning a callable that creates a fresh, empty
    store each call). For persistent stores: ``reopen_store`` (a fixture returning a callable
    that, given a store the suite has closed, opens the same data again).

    Class attributes to adjust: ``thread_safe`` (set False if a store object must not be
    shared between threads; the thread tests are then skipped) and ``stateful_settings``
    (Hypothesis settings of the side-by-side state machine).
    """

    # ------------------------------------------------------------ contacts

    def test_contact_insert_update_and_version_conflicts(self, store: Store) -> None:
        first = _contact("c1", "Ann Lee", ["ann@example.com"])
        store.save_contact(first)
        assert store.get_contact("c1") == first
        second = attrs.evolve(first, name="Ann Leigh", version=2)
        store.save_contact(second)
        assert store.get_contact("c1") == second

        stale = attrs.evolve(first, name="Someone else's edit", version=2)
        with pytest.raises(ConflictError):
            store.save_contact(stale)
        skipping = attrs.evolve(first, version=4)
        with pytest.raises(ConflictError):
            store.save_contact(skipping)
        reinsert = _contact("c1", "Ann Again")
        with pytest.raises(ConflictError):
            store.save_contact(reinsert)
        assert store.get_contact("c1") == second

        with pytest.raises(NotFoundError):
            store.save_contact(_contact("c2", "Never inserted", version=2))
        with pytest.raises(NotFoundError):
            store.get_contact("c2")

    def test_contact_emails_are_unique(self, store: Store) -> None:
        ann = _contact("c1", "Ann", ["ann@example.com", "a.lee@example.com"])
        store.save_contact(ann)
        thief = _contact("c2", "Bob", ["bob@example.com", "ANN@Example.com"])
        with pytest.raises(DuplicateError):
            store.save_contact(thief)
        with pytest.raises(NotFoundError):
            store.get_contact("c2")
        with pytest.raises(NotFoundError):
            store.contact_by_email("bob@example.com")
        assert store.contact_by_email("ann@example.com") == ann

        # Updating a contact with its own addresses is not a duplicate.
        ann2 = attrs.evolve(ann, name="Ann Lee", version=2)
        store.save_contact(ann2)
        # An address a contact gives up can be taken by another one.
        ann3 = attrs.evolve(ann2, emails=("a.lee@example.com",), version=3)
        store.save_contact(ann3)
        with pytest.raises(NotFoundError):
            store.contact_by_email("ann@example.com")
        bob = _contact("c2", "Bob", ["bob@example.com", "ann@example.com"])
        store.save_contact(bob)
        assert store.contact_by_email("ann@example.com") == bob
        assert store.contact_by_email("a.lee@example.com") == ann3

    def test_a_refused_contact_update_changes_nothing(self, store: Store) -> None:
        ann = _contact("c1", "Ann", ["ann@example.com"])
        bob = _contact("c2", "Bob", ["bob@example.com"])
        store.save_contact(ann)
        store.save_contact(bob)
        grab = attrs.evolve(bob, name="Bob Grabs", emails=("bob2@example.com", "ann@example.com"))
        with pytest.raises(DuplicateError):
            store.save_contact(attrs.evolve(grab, version=2))
        assert store.get_contact("c2") == bob
        assert store.contact_by_email("bob@example.com") == bob
        with pytest.raises(NotFoundError):
            store.contact_by_email("bob2@example.com")
        assert store.find_contacts("grabs") == []

    def test_contact_by_email_is_case_insensitive(self, store: Store) -> None:
        jose = _contact("c1", "José Pérez", ["Jose.Perez@Example.COM"])
        store.save_contact(jose)
        for email in (
            "jose.perez@example.com",
            "JOSE.PEREZ@EXAMPLE.COM",
            " Jose.Perez@example.com ",
        ):
            assert store.contact_by_email(email) == jose, email

    def test_find_contacts_ignores_case_and_accents(self, store: Store) -> None:
        jose = _contact("c1", "José Pérez")
        zoe = _contact("c2", "Zoë  Ångström")
        joseph = _contact("c3", "Joseph Smith")
        for contact in (jose, zoe, joseph):
            store.save_contact(contact)
        assert store.find_contacts("jose") == [jose, joseph]  # "jose perez" < "joseph smith"
        assert store.find_contacts("JOSÉ") == [jose, joseph]
        assert store.find_contacts("josé pérez") == [jose]
        assert store.find_contacts("  JOSE   PEREZ ") == [jose]
        assert store.find_contacts("perez") == [jose]
        assert store.find_contacts("zoe angstrom") == [zoe]
        assert store.find_contacts("ÅNG") == [zoe]
        assert store.find_contacts("nobody") == []

    def test_find_contacts_orders_by_name_then_id_and_limits(self, store: Store) -> None:
        people = [
            _contact("c3", "Ann"),
            _contact("c1", "ann"),
            _contact("c2", "Ánn"),
            _contact("c4", "Annabel"),
            _contact("c0", "Zed Ann"),
        ]
        for contact in people:
            store.save_contact(contact)
        found = store.find_contacts("ann")
        assert [c.id for c in found] == ["c1", "c2", "c3", "c4", "c0"]
        assert [c.id for c in store.find_contacts("ann", limit=2)] == ["c1", "c2"]
        assert len(store.find_contacts("", limit=3)) == 3

    # ------------------------------------------------------------ organizations

    def test_organization_insert_update_and_version_conflicts(self, store: Store) -> None:
        acme = _organization("o1", "Acme", ["acme.example"])
        store.save_organization(acme)
        assert store.get_organization("o1") == acme
        acme2 = attrs.evolve(acme, name="Acme Corp", version=2)
        store.save_organization(acme2)
        with pytest.raises(ConflictError):
            store.save_organization(attrs.evolve(acme, name="stale", version=2))
        with pytest.raises(ConflictError):
            store.save_organization(_organization("o1", "Again"))
        with pytest.raises(NotFoundError):
            store.save_organization(_organization("o2", "Ghost", version=3))
        assert store.get_organization("o1") == acme2
        with pytest.raises(NotFoundError):
            store.get_organization("o2")

    def test_organization_domains_are_unique(self, store: Store) -> None:
        acme = _organization("o1", "Acme", ["acme.example", "acme.test"])
        store.save_organization(acme)
        with pytest.raises(DuplicateError):
            store.save_organization(_organization("o2", "Globex", ["globex.test", "ACME.example"]))
        with pytest.raises(NotFoundError):
            store.get_organization("o2")
        with pytest.raises(NotFoundError):
            store.organization_by_domain("globex.test")
        acme2 = attrs.evolve(acme, domains=("acme.test",), version=2)
        store.save_organization(acme2)
        globex = _organization("o2", "Globex", ["globex.test", "acme.example"])
        store.save_organization(globex)
        assert store.organization_by_domain("ACME.EXAMPLE") == globex
        assert store.organization_by_domain("acme.test") == acme2

    def test_find_organizations_by_name_and_domain(self, store: Store) -> None:
        acme = _organization("o1", "Société Générale d'Acme", ["acme.example"])
        globex = _organization("o2", "Globex", ["globex.example"])
        store.save_organization(acme)
        store.save_organization(globex)
        assert store.find_organizations("societe") == [acme]
        assert store.find_organizations("SOCIÉTÉ GÉNÉRALE") == [acme]
        assert store.find_organizations("e") == [globex, acme]  # "globex" < "societe..."
        assert store.find_organizations("e", limit=1) == [globex]
        assert store.find_organizations("initech") == []
        assert store.organization_by_domain("Globex.Example") == globex

    # ------------------------------------------------------------ agents and groups

    def test_agents_and_groups(self, store: Store) -> None:
        bea = Agent(id="a2", name="Bea", email="bea@desk.example", group_ids=("g1",))
        al = Agent(id="a1", name="Al", group_ids=("g1", "g2"), languages=("en", "fr"))
        store.save_agent(bea)
        store.save_agent(al)
        assert store.get_agent("a1") == al
        assert store.list_agents() == [al, bea]
        inactive = attrs.evolve(bea, active=False, group_ids=())
        store.save_agent(inactive)
        assert store.get_agent("a2") == inactive
        assert store.list_agents() == [al, inactive]

        l2 = Group(id="l2", name="Technicians", tier=2)
        l1 = Group(id="l1", name="Service desk", tier=1, description="First line")
        store.save_group(l2)
        store.save_group(l1)
        assert store.list_groups() == [l1, l2]
        renamed = attrs.evolve(l2, name="Field technicians")
        store.save_group(renamed)
        assert store.get_group("l2") == renamed
        assert store.list_groups() == [l1, renamed]

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
