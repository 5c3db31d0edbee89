"""The new contact cases can fail: run against memory stores broken on purpose (contacts
saved before the commit in a transaction of their own, contacts ignored, a contact stored
already overwritten, an address another contact owns taken, contacts of one commit not checked
against each other nor their version, contacts saved without their addresses, each contact
saved as soon as it is checked), each must fail where the real store passes."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest

from helpkit.errors import HelpkitError
from helpkit.people import Contact
from helpkit.ports import TicketChange
from helpkit.stores.contract import check_version, new_contacts
from helpkit.stores.memory import MemoryStore
from helpkit.testing.conformance import StoreConformance


def _without_contacts(changes: Sequence[TicketChange]) -> list[TicketChange]:
    return [attrs.evolve(change, contacts=()) for change in changes]


def _with_contacts_of(
    written: Sequence[TicketChange], changes: Sequence[TicketChange]
) -> list[TicketChange]:
    return [
        attrs.evolve(done, contacts=change.contacts)
        for done, change in zip(written, changes, strict=True)
    ]


class _ContactsFirstStore(MemoryStore):
    """Saves the new contacts first, each in a transaction of its own, then commits the
    tickets: a refused commit leaves its contacts behind (helpkit's way for a store without
    the capability, claimed as if it were one transaction)."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        for change in changes:
            for contact in change.contacts:
                self.save_contact(contact)
        return _with_contacts_of(super().commit(_without_contacts(changes)), changes)


class _ContactBlindStore(MemoryStore):
    """Declares the capability but drops the contacts a change carries."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        return _with_contacts_of(super().commit(_without_contacts(changes)), changes)


class _OverwritingStore(MemoryStore):
    """Checks only that a new contact's addresses are free: a contact stored already under
    the same id is overwritten (an upsert where an insert was meant)."""

    def _check_new_contact(self, contact: Contact) -> None:
        self._check_emails_free(contact)


class _AddressThiefStore(MemoryStore):
    """Checks only that a new contact is not stored already: it takes an address another
    contact owns (no unique index on the addresses)."""

    def _check_new_contact(self, contact: Contact) -> None:
        check_version("contact", contact.id, self._stored_contact_version(contact.id), 1)


class _UncheckedBatchStore(MemoryStore):
    """Checks each new contact against the stored ones only, before writing anything: two
    new contacts of one commit sharing an address, or a contact at version 2, go through."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        carried = [contact for change in changes for contact in change.contacts]
        for contact in carried:
            self._check_new_contact(contact)
        written = super().commit(_without_contacts(changes))
        self._keep(carried)
        return _with_contacts_of(written, changes)

    def _keep(self, contacts: Sequence[Contact]) -> None:
        for contact in contacts:
            for email in contact.emails:
                self._contact_emails[email] = contact.id
            self._contacts[contact.id] = contact


class _AnyVersionStore(_UncheckedBatchStore):
    """Checks the new contacts of a commit against each other and the stored ones, but not
    their version: a contact at version 2 is saved as a new one."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        carried = new_contacts(changes)
        for contact in carried:
            self._check_new_contact(contact)
        written = MemoryStore.commit(self, _without_contacts(changes))
        self._keep(carried)
        return _with_contacts_of(written, changes)


class _AddresslessStore(MemoryStore):
    """Saves a new contact but not its addresses: ``contact_by_email`` does not find it."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        written = super().commit(changes)
        for change in changes:
            for contact in change.contacts:
                for email in contact.emails:
                    del self._contact_emails[email]
        return written


class _SaveAsCheckedStore(MemoryStore):
    """Saves each new contact as soon as it is checked: when a later one is refused, the
    earlier ones stay."""

    def _check_new_contact(self, contact: Contact) -> None:
        super()._check_new_contact(contact)
        for email in contact.emails:
            self._contact_emails[email] = contact.id
        self._contacts[contact.id] = contact


_MALFORMED = "test_malformed_new_contacts_are_refused_before_anything_is_written"


@pytest.mark.parametrize(
    ("broken", "example"),
    [
        (_ContactsFirstStore, "test_a_refused_commit_saves_no_new_contact"),
        (_ContactBlindStore, "test_a_new_contact_is_saved_with_the_ticket_it_requests"),
        (_OverwritingStore, "test_a_contact_stored_already_is_not_new"),
        (_AddressThiefStore, "test_an_address_another_contact_owns_refuses_the_whole_commit"),
        (_UncheckedBatchStore, _MALFORMED),
        (_AnyVersionStore, _MALFORMED),
        (_AddresslessStore, "test_a_new_contact_is_saved_with_the_ticket_it_requests"),
        (_SaveAsCheckedStore, "test_a_refused_later_contact_saves_no_earlier_one"),
    ],
)
def test_the_new_contact_examples_catch_a_broken_store(
    broken: type[MemoryStore], example: str
) -> None:
    getattr(StoreConformance(), example)(MemoryStore())  # the real store passes
    # A case fails on an assertion, a refusal it waited for and did not get, or an error of
    # the store it did not expect (a contact it reads back not found).
    with pytest.raises((AssertionError, pytest.fail.Exception, HelpkitError)):
        getattr(StoreConformance(), example)(broken())
