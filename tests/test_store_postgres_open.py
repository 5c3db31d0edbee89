"""Opening a ticket on the PostgreSQL store: the acting agent and the requester are read once,
together (``Capability.PARTY_READS``), and every refusal is the one the memory store gives, in
the same order, leaving nothing written.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from helpkit import Actor, Helpdesk
from helpkit.errors import HelpkitError
from helpkit.ports import Store
from helpkit.testing.clock import FrozenClock
from postgres_fixtures import fresh_schema

CONFIG = {"roles": {"triage": {"permissions": ["read", "note"]}}}


def _desk(clock: FrozenClock, store: str | Store) -> Helpdesk:
    desk = Helpdesk(store, clock=clock, config=CONFIG, entry_points=False)
    desk.add_group("l1", "Service desk", tier=1)
    desk.add_group("l2", "Technicians", tier=2)
    desk.add_agent("me", "Mia Me", groups=["l1"])
    desk.add_agent("idle", "Ida Idle", groups=["l1"], active=False)
    desk.add_agent("tri", "Tom Triage", groups=["l1"], role="triage")
    desk.add_agent("mine", "Rita Restricted", groups=["l1"], restricted=True)
    desk.create_contact("Bob", emails=["bob@acme.example"], contact_id="bob")
    return desk


@pytest.fixture
def desks(
    helpkit_clock: FrozenClock, postgres_database: str
) -> Iterator[tuple[Helpdesk, Helpdesk]]:
    from helpkit.stores.postgres.store import PostgresStore

    memory = _desk(helpkit_clock, "memory://")
    postgres = _desk(helpkit_clock, PostgresStore(postgres_database, schema=fresh_schema()))
    try:
        yield memory, postgres
    finally:
        postgres.shutdown()
        memory.shutdown()


def _outcome(desk: Helpdesk, kwargs: dict[str, Any]) -> tuple[str, str]:
    try:
        ticket = desk.open_ticket(subject="Printer", body="Help", **kwargs)
    except HelpkitError as exc:
        # The id a refused ticket would have had is random: the message without it.
        return type(exc).__name__, re.sub("ticket [0-9a-f]{32}", "ticket ...", str(exc))
    requester = desk.contact(ticket.requester_id)
    return "opened", f"#{ticket.number} {requester.emails} {ticket.assignee_id}"


ATTEMPTS: dict[str, dict[str, Any]] = {
    "an agent for a contact id": {"actor": Actor.agent("me"), "requester": "bob"},
    "assigned": {"actor": Actor.agent("me"), "requester": "bob", "assignee": "me"},
    "a new email address": {"actor": Actor.agent("me"), "requester": "new@else.example"},
    "a known email address": {"actor": Actor.agent("me"), "requester": "BOB@acme.example"},
    "an unknown agent": {"actor": Actor.agent("nobody"), "requester": "bob"},
    "an unknown agent and requester": {"actor": Actor.agent("nobody"), "requester": "nobody"},
    "an unknown requester": {"actor": Actor.agent("me"), "requester": "nobody"},
    "a blank requester": {"actor": Actor.agent("nobody"), "requester": " "},
    "a NUL in the requester": {"actor": Actor.agent("me"), "requester": "b\x00b"},
    "an inactive agent": {"actor": Actor.agent("idle"), "requester": "bob"},
    "a role without open": {"actor": Actor.agent("tri"), "requester": "bob"},
    "restricted, in its group": {"actor": Actor.agent("mine"), "requester": "bob"},
    "restricted, elsewhere": {"actor": Actor.agent("mine"), "requester": "bob", "group": "l2"},
    "an inactive assignee": {"actor": Actor.agent("me"), "requester": "bob", "assignee": "idle"},
    "a contact for itself": {"actor": Actor.contact("bob"), "requester": "bob"},
    "a contact for another": {"actor": Actor.contact("bob"), "requester": "new@else.example"},
    "the system": {"actor": Actor.system("import"), "requester": "bob"},
}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
def test_opening_a_ticket_answers_as_on_the_memory_store(
    desks: tuple[Helpdesk, Helpdesk], attempt: str
) -> None:
    memory, postgres = desks
    kwargs = {"group": "l1", **ATTEMPTS[attempt]}
    outcomes = [_outcome(desk, kwargs) for desk in (memory, postgres)]
    assert outcomes[0] == outcomes[1]
    opened = 1 if outcomes[0][0] == "opened" else 0
    assert [len(desk.tickets()) for desk in desks] == [opened, opened]
    assert len(postgres.find_contacts("")) == len(memory.find_contacts(""))


def test_an_agent_opening_for_a_contact_id_reads_both_in_one_statement(
    desks: tuple[Helpdesk, Helpdesk], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, desk = desks
    store: Any = desk.store
    calls: list[str] = []
    for name in ("get_agent", "get_contact", "agent_and_contact"):
        method = getattr(store, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            calls.append(_name)
            return _method(*args)

        monkeypatch.setattr(store, name, counted)
    ticket = desk.open_ticket(
        Actor.agent("me"),
        requester="bob",
        subject="Printer",
        body="Help",
        group="l1",
        assignee="me",
    )
    # The desk saved both through this store object, which keeps them
    # (Capability.KEPT_PARTIES): the open reads neither, its commit checks them.
    assert calls == []
    assert (ticket.requester_id, ticket.assignee_id, ticket.group_id) == ("bob", "me", "l1")
    store._init_parties()  # kept no more: read, both in one statement
    ticket = desk.open_ticket(
        Actor.agent("me"), requester="bob", subject="Printer", group="l1", assignee="me"
    )
    assert calls == ["agent_and_contact"]
    desk.deactivate_agent("me")
    calls.clear()
    # Refused on the kept (inactive) agent, so decided again on the agent read anew: no
    # error comes from a kept state.
    with pytest.raises(HelpkitError, match="inactive"):
        desk.open_ticket(Actor.agent("me"), requester="bob", subject="Again", group="l1")
    assert calls == ["agent_and_contact"]
    assert len(desk.tickets()) == 2
