"""Conformance cases for people: contacts, organizations, agents and groups."""

from __future__ import annotations

from typing import cast

import attrs
import pytest

from helpkit.errors import ConflictError, DuplicateError, NotFoundError, ValidationError
from helpkit.people import Agent, Group
from helpkit.ports import (
    AgentEmails,
    Capability,
    KeptParties,
    PartyReads,
    Store,
    missing_members,
)
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import (
    _contact,
    _note,
    _open,
    _organization,
    _Time,
    change_of,
)


class PeopleCases(SuiteBase):
    """Contacts, organizations, agents and groups: versions, uniqueness, lookups, search."""

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

    def test_an_agent_and_a_contact_read_together(self, store: Store) -> None:
        """:attr:`Capability.PARTY_READS`: what the two reads give, and their errors in
        their order (the agent's first); skipped for stores without it."""
        if Capability.PARTY_READS not in store.capabilities:
            pytest.skip("the store does not declare Capability.PARTY_READS")
        assert missing_members(store, PartyReads) == ()
        parties = cast(PartyReads, store)
        al = Agent(id="a1", name="Al", group_ids=("g1",))
        ann = _contact("c1", "Ann", ["ann@example.com"])
        store.save_agent(al)
        store.save_contact(ann)
        assert parties.agent_and_contact("a1", "c1") == (al, ann)
        ann2 = attrs.evolve(ann, name="Ann Lee", version=2)
        store.save_contact(ann2)
        al2 = attrs.evolve(al, active=False)
        store.save_agent(al2)
        # Nothing is kept from one call to the next.
        assert parties.agent_and_contact("a1", "c1") == (al2, ann2)
        for agent_id, contact_id, missing in (
            ("nobody", "c1", "agent"),
            ("nobody", "nobody", "agent"),
            ("a\x00", "c1", "agent"),
            ("nobody", "c\x00", "agent"),
            ("a1", "nobody", "contact"),
            ("a1", "c\x00", "contact"),
            ("a1", "a1", "contact"),
        ):
            with pytest.raises(NotFoundError, match=f"no {missing}"):
                parties.agent_and_contact(agent_id, contact_id)

    def test_agents_found_by_email(self, store: Store) -> None:
        """:attr:`Capability.AGENT_EMAILS`: the agents of some addresses are what
        list_agents gives, filtered to those addresses (active or not, by id), as they are
        now; skipped for stores without it."""
        if Capability.AGENT_EMAILS not in store.capabilities:
            pytest.skip("the store does not declare Capability.AGENT_EMAILS")
        assert missing_members(store, AgentEmails) == ()
        finder = cast(AgentEmails, store)
        assert finder.agents_by_email(["al@example.com"]) == []
        agents = [
            Agent(id="a2", name="Al", email="al@example.com"),
            Agent(id="a1", name="Al Old", email="al@example.com", active=False),
            Agent(id="a3", name="Bea", email="bea@example.com", group_ids=("g1",)),
            Agent(id="a4", name="Nobody's"),
            Agent(id="a5", name="Zoe", email="o'brien+x@example.com"),
            Agent(id="a0", name="Other", email="other@example.com"),
        ]
        for agent in agents:
            store.save_agent(agent)

        def expected(*addresses: str) -> list[Agent]:
            return [a for a in store.list_agents() if a.email in addresses]

        for asked in (
            ("al@example.com",),
            ("al@example.com", "bea@example.com", "o'brien+x@example.com"),
            ("bea@example.com", "bea@example.com", "nobody@example.com"),
            ("AL@example.com", "al@example.com ", "example.com", "", "al@example.com\x00"),
            (),
        ):
            found = finder.agents_by_email(list(asked))
            assert found == expected(*asked), asked
            assert finder.agents_by_email(frozenset(asked)) == found
        assert [a.id for a in finder.agents_by_email(["al@example.com"])] == ["a1", "a2"]
        # As stored now: an address changed is found under the new one only.
        store.save_agent(attrs.evolve(agents[2], email="bea@other.example"))
        assert finder.agents_by_email(["bea@example.com"]) == []
        assert [a.email for a in finder.agents_by_email(["bea@other.example"])] == [
            "bea@other.example"
        ]
        for bad in ("al@example.com", b"al@example.com", None, 3, [1], ["al@example.com", None]):
            with pytest.raises(ValidationError):
                finder.agents_by_email(bad)  # type: ignore[arg-type]

    def test_kept_parties_guard_a_commit(self, store: Store) -> None:
        """:attr:`Capability.KEPT_PARTIES`: the agent and the contact saved or read are kept
        as read back; a commit guarded by kept ones writes only if they are still stored so
        (ConflictError, nothing written, otherwise); skipped for stores without it."""
        if Capability.KEPT_PARTIES not in store.capabilities:
            pytest.skip("the store does not declare Capability.KEPT_PARTIES")
        kept = cast(KeptParties, store)
        al = Agent(id="a1", name="Al", group_ids=("g1",))
        ann = _contact("c1", "Ann", ["ann@example.com"])
        store.save_agent(al)
        store.save_contact(ann)
        parties = kept.kept_parties("a1", "c1")
        assert parties == (store.get_agent("a1"), store.get_contact("c1"))
        assert kept.kept_parties("a1", "nobody") is None
        agent, contact = store.get_agent("a1"), store.get_contact("c1")
        store.save_agent(attrs.evolve(al, active=False))
        opening = change_of(_open("t1", 0, _Time().tick()))
        with kept.guard_parties(agent, contact), pytest.raises(ConflictError):
            store.commit([opening])
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        agent = store.get_agent("a1")
        with kept.guard_parties(agent, contact):
            written = store.commit([opening])
        assert written[0].ticket.number == 1  # the refused commit took no number
        # The agent alone (a command on an existing ticket): kept as read back, and a
        # commit guarded by it writes only if it is still stored so.
        assert kept.kept_agent("a1") == agent
        assert kept.kept_agent("nobody") is None
        store.save_agent(attrs.evolve(al, name="Al Moved"))
        later = written[0].ticket
        noting = change_of(_note(later, _Time().tick()))
        with kept.guard_agent(agent), pytest.raises(ConflictError):
            store.commit([noting])
        assert store.get_ticket("t1").seq == later.seq
        with kept.guard_agent(store.get_agent("a1")):
            store.commit([noting])
        assert store.get_ticket("t1").seq == noting.ticket.seq

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
