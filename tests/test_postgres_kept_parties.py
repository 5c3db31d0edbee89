"""Opening a ticket on the agent and the contact the PostgreSQL store keeps
(``Capability.KEPT_PARTIES``): one statement, no read first; the commit writes only if both are
still stored as kept, else the desk decides again on them read anew. Whatever another store
object changed meanwhile, the outcome is the one a desk reading them first gives.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk, Impact, Urgency
from helpkit.errors import ConflictError, HelpkitError
from helpkit.lifecycle import open_ticket
from helpkit.ports import Capability, TicketChange
from helpkit.stores.postgres.store import PostgresStore
from helpkit.testing.clock import FrozenClock
from postgres_fixtures import fresh_schema

CONFIG = {"roles": {"triage": {"permissions": ["read", "note"]}}}


def _store(url: str, schema: str, **options: Any) -> PostgresStore:
    return PostgresStore(url, schema=schema, pool_max=2, **options)


@pytest.fixture
def three(
    helpkit_clock: FrozenClock, postgres_database: str
) -> Iterator[tuple[Helpdesk, Helpdesk, Helpdesk]]:
    """Three desks on one schema: ``kept`` (keeps parties), ``reads`` (keeps none: cache=0)
    and ``other`` (the other writer, another store object)."""
    schema = fresh_schema()
    other = Helpdesk(_store(postgres_database, schema), clock=helpkit_clock, config=CONFIG)
    other.add_group("l1", "Service desk", tier=1)
    other.add_group("l2", "Technicians", tier=2)
    other.add_agent("me", "Mia Me", groups=["l1"])
    other.add_agent("you", "Yan You", groups=["l1", "l2"])
    org = other.create_organization("Acme", domains=["acme.example"])
    other.create_organization("Initech", domains=["initech.example"])
    other.create_contact("Bob", emails=["bob@acme.example"], contact_id="bob")
    assert org.id
    kept = Helpdesk(_store(postgres_database, schema), clock=helpkit_clock, config=CONFIG)
    reads = Helpdesk(_store(postgres_database, schema, cache=0), clock=helpkit_clock, config=CONFIG)
    try:
        yield kept, reads, other
    finally:
        for desk in (kept, reads, other):
            desk.shutdown()


def _outcome(desk: Helpdesk, kwargs: dict[str, Any]) -> tuple[str, str]:
    try:
        ticket = desk.open_ticket(subject="Printer", body="Help", **kwargs)
    except HelpkitError as exc:
        return type(exc).__name__, re.sub("ticket [0-9a-f]{32}", "ticket ...", str(exc))
    return "opened", (
        f"{ticket.requester_id} {ticket.organization_id} {ticket.assignee_id} "
        f"{ticket.group_id} {ticket.status}"
    )


def _opening(desk: Helpdesk, ticket_id: str, clock: FrozenClock) -> TicketChange:
    """The change opening ``ticket_id`` for bob, by me."""
    outcome = open_ticket(
        ticket_id=ticket_id,
        number=0,
        at=clock.now(),
        actor=Actor.agent("me"),
        subject="Stale",
        requester_id="bob",
        organization_id=None,
        impact=Impact.MEDIUM,
        urgency=Urgency.MEDIUM,
        matrix=desk.config.matrix,
        workflow=desk.config.workflow,
        channel="web",
    )
    return TicketChange(outcome.ticket, outcome.events, 0)


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the store's cursors run from now on (the real ones, counted)."""
    seen: list[str] = []
    run = psycopg.Cursor.execute

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return run(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    return seen


def test_the_store_declares_kept_parties() -> None:
    assert Capability.KEPT_PARTIES in PostgresStore.capabilities


def test_an_open_on_kept_parties_is_one_statement(
    three: tuple[Helpdesk, Helpdesk, Helpdesk], monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, reads, _ = three
    opened = {"actor": Actor.agent("me"), "requester": "bob", "group": "l1", "assignee": "me"}
    _outcome(kept, opened)  # reads them once (another store object saved them)
    _outcome(reads, opened)  # and the group, once per desk
    seen = _statements(monkeypatch)
    assert _outcome(kept, opened)[0] == "opened"
    assert len(seen) == 1 and seen[0].startswith("WITH kept AS MATERIALIZED"), seen
    seen.clear()
    assert _outcome(reads, opened)[0] == "opened"
    assert len(seen) == 2, seen  # a store keeping nothing reads them first


def test_a_change_by_another_writer_counts_at_once(
    three: tuple[Helpdesk, Helpdesk, Helpdesk],
) -> None:
    kept, reads, other = three
    opened = {"actor": Actor.agent("me"), "requester": "bob", "group": "l1", "assignee": "me"}
    assert _outcome(kept, opened)[0] == "opened"
    before = len(kept.tickets())
    other.update_agent("me", active=False)
    assert _outcome(kept, opened) == _outcome(reads, opened)
    assert _outcome(kept, opened)[0] != "opened"
    assert len(kept.tickets()) == before  # nothing written on the stale agent
    other.update_agent("me", active=True)
    initech = other.find_organizations("Initech")[0]
    other.update_contact("bob", organization=initech.id)
    assert _outcome(kept, opened) == _outcome(reads, opened)
    opened_kept = _outcome(kept, opened)
    assert opened_kept[0] == "opened" and initech.id in opened_kept[1]


def test_a_guarded_commit_on_a_stale_party_writes_nothing(
    three: tuple[Helpdesk, Helpdesk, Helpdesk], helpkit_clock: FrozenClock
) -> None:
    kept, _, other = three
    store = kept.store
    assert isinstance(store, PostgresStore)
    agent, contact = store.get_agent("me"), store.get_contact("bob")
    other.update_agent("me", name="Mia Moved")
    change = _opening(kept, "t-stale", helpkit_clock)
    with store.guard_parties(agent, contact), pytest.raises(ConflictError):
        store.commit([change])
    # The batch path (two changes in one commit) checks the same.
    second = _opening(kept, "t-stale-2", helpkit_clock)
    with store.guard_parties(agent, contact), pytest.raises(ConflictError):
        store.commit([change, second])
    assert list(kept.tickets()) == []
    # The number the refused commits took was given back: the next ticket is #1.
    fresh = store.get_agent("me")
    with store.guard_parties(fresh, contact):
        written = store.commit([change])
        # The guard is taken by the block's first commit only (not by what the observers
        # of that commit write on this thread).
        assert store._take_guard() is None
    assert written[0].ticket.number == 1


_AGENT_CHANGES = st.one_of(
    st.fixed_dictionaries({"active": st.booleans()}),
    st.fixed_dictionaries({"role": st.sampled_from(["agent", "triage"])}),
    st.fixed_dictionaries({"groups": st.sampled_from([["l1"], ["l2"], ["l1", "l2"]])}),
    st.fixed_dictionaries({"restricted": st.booleans()}),
    st.fixed_dictionaries({"name": st.sampled_from(["Mia", "Mia Me", "M"])}),
)
_STEP = st.tuples(
    st.sampled_from(["me", "you"]),  # whose data the other writer changes
    _AGENT_CHANGES,
    st.sampled_from([None, "acme", "initech"]),  # the requester's organization then
    st.sampled_from(["me", "you"]),  # who opens
    st.sampled_from([None, "me", "you"]),  # the assignee
    st.sampled_from(["l1", "l2"]),
)


def test_kept_parties_decide_as_reads_do(three: tuple[Helpdesk, Helpdesk, Helpdesk]) -> None:
    """Property: after any change by another writer, opening on kept parties gives what a
    desk reading them first gives (opened alike, or refused with the same error)."""
    kept, reads, other = three
    orgs = {o.name.lower(): o.id for o in other.find_organizations("")}

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(_STEP, min_size=1, max_size=4))
    def run(steps: list[tuple[Any, ...]]) -> None:
        for changed, changes, org, actor, assignee, group in steps:
            other.update_agent(changed, **changes)
            other.update_contact("bob", organization=None if org is None else orgs[org])
            opened = {
                "actor": Actor.agent(actor),
                "requester": "bob",
                "group": group,
                "assignee": assignee,
            }
            assert _outcome(kept, opened) == _outcome(reads, opened)

    run()
