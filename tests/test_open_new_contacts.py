"""Opening a ticket for a new email address: on a store with ``Capability.NEW_CONTACTS``
(memory, SQLite, PostgreSQL) the new contact is saved by the ticket's commit, in its
transaction; the address's contact is still got or created at once (a contact another writer
saved meanwhile gets the ticket), and a refused ticket saves no contact.

The PostgreSQL cases need a server (tests/postgres_fixtures.py says which, and when they skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpkit import Actor, Helpdesk
from helpkit.errors import NotFoundError, ValidationError
from helpkit.ports import Capability, Store
from helpkit.testing.clock import FrozenClock
from postgres_fixtures import fresh_schema

ME = Actor.agent("me")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def desk(
    request: pytest.FixtureRequest, helpkit_clock: FrozenClock, tmp_path: Path
) -> Iterator[Helpdesk]:
    store: str | Store
    if request.param == "postgres":
        from helpkit.stores.postgres.store import PostgresStore

        store = PostgresStore(request.getfixturevalue("postgres_database"), schema=fresh_schema())
    else:
        store = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'd.db'}"
    desk = Helpdesk(store, clock=helpkit_clock, entry_points=False)
    desk.add_group("l1", "Service desk")
    desk.add_agent("me", "Mia Me", groups=["l1"])
    try:
        yield desk
    finally:
        desk.shutdown()


def _count_saves(desk: Helpdesk, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    saved: list[str] = []
    store: Any = desk.store
    save = store.save_contact

    def counted(contact: Any) -> None:
        saved.append(contact.id)
        save(contact)

    monkeypatch.setattr(store, "save_contact", counted)
    return saved


def test_a_new_requester_is_saved_by_the_tickets_commit(
    desk: Helpdesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Capability.NEW_CONTACTS in desk.store.capabilities
    saved = _count_saves(desk, monkeypatch)
    ticket = desk.open_ticket(
        ME,
        requester="New.Person@Example.com",
        subject="Hi",
        body="Hello",
        group="l1",
        cc=["new.person@example.com", "other@example.com", "OTHER@example.com"],
    )
    assert saved == []  # no save of its own: the commit wrote it
    requester = desk.contact(ticket.requester_id)
    assert requester.emails == ("new.person@example.com",)
    assert desk.contact_by_email("new.person@example.com") == requester
    other = desk.contact_by_email("other@example.com")
    assert {f.id for f in ticket.followers} == {other.id}
    assert len(desk.find_contacts("")) == 2


def test_a_refused_ticket_saves_no_new_contact(desk: Helpdesk) -> None:
    with pytest.raises(NotFoundError):
        desk.open_ticket(ME, requester="new@example.com", subject="Hi", assignee="nobody-here")
    with pytest.raises(ValidationError):
        desk.open_ticket(ME, requester="new@example.com", subject=" ", group="l1")
    assert desk.find_contacts("") == []
    assert len(desk.tickets()) == 0


def test_a_contact_another_writer_saved_meanwhile_gets_the_ticket(
    desk: Helpdesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory: Any = desk._directory
    requester = directory.requester
    raced: list[str] = []

    def racing(who: Any) -> Any:
        found = requester(who)
        if found[1] and not raced:
            # Another process saves the address after this one found it new.
            theirs = desk.create_contact("Theirs", emails=["race@example.com"])
            raced.append(theirs.id)
        return found

    monkeypatch.setattr(directory, "requester", racing)
    ticket = desk.open_ticket(ME, requester="race@example.com", subject="Hi", group="l1")
    assert raced and ticket.requester_id == raced[0]
    assert [c.id for c in desk.find_contacts("")] == raced
    assert len(desk.tickets()) == 1
