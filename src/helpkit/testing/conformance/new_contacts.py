"""Conformance cases of new contacts saved with a commit
(:attr:`~helpkit.ports.Capability.NEW_CONTACTS`).

A change may carry new contacts (:attr:`~helpkit.ports.TicketChange.contacts`, version 1):
the store saves them in the commit's transaction, so the ticket and its new requester are
written together or not at all. An address another contact owns refuses the whole commit with
DuplicateError, and a commit refused for any reason (a stale seq, a contact already stored,
two new contacts sharing an address, a later new contact of the same commit refused) saves no
contact and no ticket. Skipped, with the reason
shown, for stores that do not declare the capability.
"""

from __future__ import annotations

import attrs
import pytest

from helpkit.errors import ConflictError, DuplicateError, NotFoundError, ValidationError
from helpkit.ports import Capability, Store
from helpkit.testing.conformance.helpers import _contact, _note, _open, _Time, change_of


def _declares(store: Store) -> None:
    if Capability.NEW_CONTACTS not in store.capabilities:
        pytest.skip("the store does not declare Capability.NEW_CONTACTS")


def _absent(store: Store, ticket_id: str, contact_id: str, email: str) -> None:
    with pytest.raises(NotFoundError):
        store.get_ticket(ticket_id)
    with pytest.raises(NotFoundError):
        store.get_contact(contact_id)
    with pytest.raises(NotFoundError):
        store.contact_by_email(email)


class NewContactCases:
    """New contacts saved in the transaction of the ticket change that names them."""

    def test_a_new_contact_is_saved_with_the_ticket_it_requests(self, store: Store) -> None:
        _declares(store)
        ann = _contact("c-ann", "Ann Lee", ["ann@example.com"])
        change = change_of(_open("t1", 0, _Time().tick(), requester_id="c-ann"))
        (written,) = store.commit([attrs.evolve(change, contacts=(ann,))])
        assert written.ticket.number == 1
        assert store.get_ticket("t1") == written.ticket
        assert store.get_contact("c-ann") == ann
        assert store.contact_by_email("ann@example.com") == ann

    def test_an_address_another_contact_owns_refuses_the_whole_commit(self, store: Store) -> None:
        _declares(store)
        owner = _contact("c-owner", "Owner", ["shared@example.com"])
        store.save_contact(owner)
        late = _contact("c-late", "Late", ["shared@example.com"])
        change = change_of(_open("t1", 0, _Time().tick(), requester_id="c-late"))
        with pytest.raises(DuplicateError):
            store.commit([attrs.evolve(change, contacts=(late,))])
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        with pytest.raises(NotFoundError):
            store.get_contact("c-late")
        assert store.contact_by_email("shared@example.com") == owner
        # Nothing was spent: the next ticket still takes number 1.
        (written,) = store.commit([change])
        assert written.ticket.number == 1

    def test_a_refused_commit_saves_no_new_contact(self, store: Store) -> None:
        _declares(store)
        time = _Time()
        (opened,) = store.commit([change_of(_open("t1", 0, time.tick()))])
        store.commit([change_of(_note(opened.ticket, time.tick()))])
        ann = _contact("c-ann", "Ann Lee", ["ann@example.com"])
        stale = change_of(_note(opened.ticket, time.tick(), "decided on an old state"))
        with pytest.raises(ConflictError):
            store.commit([attrs.evolve(stale, contacts=(ann,))])
        with pytest.raises(NotFoundError):
            store.get_contact("c-ann")
        # A batch whose second change is stale writes neither the first one nor its contact.
        fresh = change_of(_open("t2", 0, time.tick(), requester_id="c-ann"))
        with pytest.raises(ConflictError):
            store.commit([attrs.evolve(fresh, contacts=(ann,)), stale])
        _absent(store, "t2", "c-ann", "ann@example.com")

    def test_a_refused_later_contact_saves_no_earlier_one(self, store: Store) -> None:
        _declares(store)
        time = _Time()
        owner = _contact("c-owner", "Owner", ["shared@example.com"])
        store.save_contact(owner)
        ann = _contact("c-ann", "Ann Lee", ["ann@example.com"])
        late = _contact("c-late", "Late", ["shared@example.com"])
        first = change_of(_open("t1", 0, time.tick(), requester_id="c-ann"))
        second = change_of(_open("t2", 0, time.tick(), requester_id="c-late"))
        with pytest.raises(DuplicateError):  # in one change
            store.commit([attrs.evolve(first, contacts=(ann, late))])
        _absent(store, "t1", "c-ann", "ann@example.com")
        with pytest.raises(DuplicateError):  # in two changes of one batch
            store.commit(
                [attrs.evolve(first, contacts=(ann,)), attrs.evolve(second, contacts=(late,))]
            )
        _absent(store, "t1", "c-ann", "ann@example.com")
        with pytest.raises(NotFoundError):
            store.get_ticket("t2")
        assert store.contact_by_email("shared@example.com") == owner

    def test_a_contact_stored_already_is_not_new(self, store: Store) -> None:
        _declares(store)
        ann = _contact("c-ann", "Ann Lee", ["ann@example.com"])
        store.save_contact(ann)
        again = _contact("c-ann", "Ann Again", ["ann.again@example.com"])
        change = change_of(_open("t1", 0, _Time().tick(), requester_id="c-ann"))
        with pytest.raises(ConflictError):
            store.commit([attrs.evolve(change, contacts=(again,))])
        assert store.get_contact("c-ann") == ann
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")

    def test_malformed_new_contacts_are_refused_before_anything_is_written(
        self, store: Store
    ) -> None:
        _declares(store)
        time = _Time()
        ann = _contact("c-ann", "Ann Lee", ["ann@example.com"])
        twin = _contact("c-twin", "Ann's twin", ["ann@example.com"])
        first = change_of(_open("t1", 0, time.tick(), requester_id="c-ann"))
        second = change_of(_open("t2", 0, time.tick(), requester_id="c-twin"))
        with pytest.raises(ValidationError):  # two new contacts claiming one address
            store.commit(
                [attrs.evolve(first, contacts=(ann,)), attrs.evolve(second, contacts=(twin,))]
            )
        updated = _contact("c-ann", "Ann Lee", ["ann@example.com"], version=2)
        with pytest.raises(ValidationError):  # not a new contact
            store.commit([attrs.evolve(first, contacts=(updated,))])
        _absent(store, "t1", "c-ann", "ann@example.com")
        with pytest.raises(NotFoundError):
            store.get_ticket("t2")
