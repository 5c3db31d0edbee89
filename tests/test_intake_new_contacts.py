"""A new sender's contact is saved in the commit of the ticket it opens (stores with
Capability.NEW_CONTACTS), on the memory store and a real SQLite file; the path for other
stores (contact first, then the ticket); a sender saved by another writer meanwhile."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpkit import Helpdesk
from helpkit.errors import ValidationError
from helpkit.intake import IntakeKind
from helpkit.people import Contact
from helpkit.ports import Capability, InboundMessage, TicketChange
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def message(n: int, sender: str = "ann@acme.example") -> InboundMessage:
    return InboundMessage(
        channel="email",
        sender_address=sender,
        sender_name="Ann Archer",
        subject="The printer on floor 2",
        body="It jams.",
        received_at=START,
        external_id=f"<m{n}@acme.example>",
    )


class RecordingStore(MemoryStore):
    """A memory store that remembers its commits and its separate contact saves."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[list[TicketChange]] = []
        self.saved: list[Contact] = []

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        self.commits.append(list(changes))
        return super().commit(changes)

    def save_contact(self, contact: Contact) -> None:
        self.saved.append(contact)
        super().save_contact(contact)


class WithoutNewContacts(RecordingStore):
    capabilities = MemoryStore.capabilities - {Capability.NEW_CONTACTS}


class AnotherWriterFirst(RecordingStore):
    """Another writer saves the sender's address just before this desk's first commit."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        if not self.commits:
            for change in changes:
                for contact in change.contacts:
                    rival = Contact(
                        id="rival",
                        name="Ann (saved elsewhere)",
                        emails=contact.emails,
                        created_at=START,
                        updated_at=START,
                    )
                    MemoryStore.save_contact(self, rival)
        return super().commit(changes)


def _desk(store: MemoryStore | str) -> Helpdesk:
    return Helpdesk(
        store,
        clock=FrozenClock(START),
        config={"intake": {"addresses": ["support@desk.example"], "acknowledge": True}},
        entry_points=False,
    )


def test_a_new_senders_contact_is_saved_in_the_commit_of_its_ticket() -> None:
    store = RecordingStore()
    desk = _desk(store)
    intake = desk.receive(message(1))
    assert intake.kind is IntakeKind.CREATED
    assert store.saved == []  # no separate save
    ((change,),) = store.commits
    (contact,) = change.contacts
    assert contact.emails == ("ann@acme.example",)
    ticket = desk.ticket(intake.ticket_number or 0)
    assert ticket.requester_id == contact.id == store.contact_by_email("ann@acme.example").id
    # The contact made here is new: its first ticket is acknowledged without counting.
    assert any(getattr(e, "acknowledge", False) for e in change.events)
    # The second message of the same sender finds the contact: nothing new to save.
    desk.receive(message(2))
    assert store.commits[-1][0].contacts == ()
    desk.shutdown()


def test_a_store_without_the_capability_saves_the_contact_first() -> None:
    store = WithoutNewContacts()
    desk = _desk(store)
    intake = desk.receive(message(1))
    (saved,) = store.saved
    ((change,),) = store.commits
    assert change.contacts == ()
    assert desk.ticket(intake.ticket_number or 0).requester_id == saved.id
    desk.shutdown()


def test_a_sender_saved_by_another_writer_meanwhile_writes_as_that_contact() -> None:
    store = AnotherWriterFirst()
    desk = _desk(store)
    intake = desk.receive(message(1))
    assert intake.kind is IntakeKind.CREATED
    # The first commit was refused whole (the address was taken); the second, as the rival.
    assert len(store.commits) == 2
    assert store.commits[1][0].contacts == ()
    assert desk.ticket(intake.ticket_number or 0).requester_id == "rival"
    assert [t.number for t in desk.tickets().items] == [1]  # no number spent by the refusal
    desk.shutdown()


def test_the_pipeline_refuses_new_contacts_for_a_store_that_cannot_save_them() -> None:
    desk = _desk(WithoutNewContacts())
    contact = Contact(
        id="c1", name="Ann", emails=("ann@acme.example",), created_at=START, updated_at=START
    )
    with pytest.raises(ValidationError, match="NEW_CONTACTS"):
        desk._pipeline.run([], lambda _tickets, _at: [], contacts=[contact])
    desk.shutdown()


def test_sqlite_saves_a_new_sender_and_its_ticket_in_one_transaction(tmp_path: Path) -> None:
    db = tmp_path / "desk.db"
    desk = _desk(f"sqlite:///{db}")
    store = desk.store
    assert isinstance(store, SqliteStore)
    statements: list[str] = []
    with store._connection() as conn:
        conn.set_trace_callback(statements.append)
    intake = desk.receive(message(1))
    with store._connection() as conn:
        conn.set_trace_callback(None)
    assert intake.kind is IntakeKind.CREATED
    assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT") == 1
    contact = store.contact_by_email("ann@acme.example")
    assert desk.ticket(intake.ticket_number or 0).requester_id == contact.id
    desk.shutdown()
