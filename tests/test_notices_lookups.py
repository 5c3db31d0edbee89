"""The people one planning run looks up (helpkit.notices.Lookups): each contact is read once,
and addressed once (the recipient every message to them shares), exactly as a recipient made
from the contact the store holds at the first lookup."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from hypothesis import given
from hypothesis import strategies as st

from helpkit.notices import Lookups
from helpkit.people import Contact
from helpkit.ports import Recipient
from helpkit.stores.memory import MemoryStore
from helpkit.testing.strategies import contacts

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _reference(store: MemoryStore, contact_id: str) -> tuple[Recipient, str | None] | None:
    """The recipient made from the stored contact, read anew (the path before the memo)."""
    person = _get(store, contact_id)
    if person is None:
        return None
    return Recipient("contact", person.id, person.name, person.email), person.language


def _get(store: MemoryStore, contact_id: str) -> Contact | None:
    try:
        return store.get_contact(contact_id)
    except LookupError:
        return None


@given(
    st.lists(contacts(), unique_by=lambda c: c.id, max_size=5).filter(
        lambda people: (
            len({e for c in people for e in c.emails}) == sum(len(c.emails) for c in people)
        )
    ),
    st.lists(st.integers(0, 6), max_size=20),
)
def test_addressed_contacts_are_the_recipients_made_from_the_store(
    people: list[Contact], asked: list[int]
) -> None:
    store = MemoryStore()
    for person in people:
        store.save_contact(person)
    ids = [c.id for c in people] + ["nobody-1", "nobody-2"]
    lookups = Lookups(store)
    for index in asked:
        contact_id = ids[index % len(ids)]
        assert lookups.addressed(contact_id) == _reference(store, contact_id)
        assert lookups.contact(contact_id) == _get(store, contact_id)


def test_a_run_addresses_each_contact_as_first_read() -> None:
    store = MemoryStore()
    first = Contact(id="c1", name="Ann", emails=("ann@example.com",), created_at=AT, updated_at=AT)
    store.save_contact(first)
    lookups = Lookups(store)
    before = lookups.addressed("c1")
    store.save_contact(attrs.evolve(first, name="Ann B", version=2))
    # The run plans on the directory as it first read it (as Lookups.contact does).
    assert lookups.addressed("c1") is before
    assert before is not None and before[0].name == "Ann"
    assert Lookups(store).addressed("c1") == (
        Recipient("contact", "c1", "Ann B", "ann@example.com"),
        None,
    )
