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
    # And the one-statement commits sent through libpq (helpkit.stores.postgres.call).
    from helpkit.stores.postgres import store as store_module
    from helpkit.stores.postgres.call import call as send

    def counted_call(conn: Any, prepared: Any, name: Any, query: bytes, values: Any) -> Any:
        seen.append(query.decode())
        return send(conn, prepared, name, query, values)

    monkeypatch.setattr(store_module, "call", counted_call)
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


# ---------------------------------------------------------------- the acting agent alone


def _replied(desk: Helpdesk, ticket_id: str, actor: str, status: str | None) -> tuple[str, str]:
    try:
        ticket = desk.reply(ticket_id, Actor.agent(actor), "On it", status=status)
    except HelpkitError as exc:
        return type(exc).__name__, re.sub("ticket [0-9a-f]{32}", "ticket ...", str(exc))
    return "replied", f"{ticket.status} {ticket.seq}"


def _open_for(desk: Helpdesk, group: str) -> str:
    return desk.open_ticket(
        Actor.agent("you"), requester="bob", subject="Printer", body="Help", group=group
    ).id


def test_a_reply_on_the_kept_agent_is_one_statement(
    three: tuple[Helpdesk, Helpdesk, Helpdesk], monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, reads, _ = three
    mine, theirs = _open_for(kept, "l1"), _open_for(reads, "l1")
    assert _replied(kept, mine, "me", None)[0] == "replied"  # reads me once (saved by other)
    assert _replied(reads, theirs, "me", None)[0] == "replied"
    seen = _statements(monkeypatch)
    assert _replied(kept, mine, "me", "pending")[0] == "replied"
    assert len(seen) == 1 and seen[0].startswith("WITH kept AS MATERIALIZED"), seen
    seen.clear()
    assert _replied(reads, theirs, "me", "pending")[0] == "replied"
    # A store keeping nothing reads the agent and the ticket first.
    assert len(seen) == 3 and "FROM agents" in seen[0], seen


def test_a_reply_counts_a_change_of_the_agent_by_another_writer_at_once(
    three: tuple[Helpdesk, Helpdesk, Helpdesk],
) -> None:
    kept, reads, other = three
    mine, theirs = _open_for(kept, "l1"), _open_for(reads, "l1")
    assert _replied(kept, mine, "me", None)[0] == "replied"
    seq = kept.ticket(mine).seq
    other.update_agent("me", active=False)
    refused = _replied(kept, mine, "me", None)
    assert refused[0] == "AccessDeniedError", refused
    assert refused == _replied(reads, theirs, "me", None)
    assert kept.ticket(mine).seq == seq  # nothing written on the stale agent
    other.update_agent("me", active=True, role="triage")  # may read and note, not reply
    assert _replied(kept, mine, "me", None) == _replied(reads, theirs, "me", None)
    assert kept.ticket(mine).seq == seq
    other.update_agent("me", role="agent")
    assert _replied(kept, mine, "me", "pending")[0] == "replied"


def test_a_guarded_commit_on_a_stale_agent_writes_nothing(
    three: tuple[Helpdesk, Helpdesk, Helpdesk],
) -> None:
    kept, _, other = three
    store = kept.store
    assert isinstance(store, PostgresStore)
    ticket = kept.ticket(_open_for(kept, "l1"))
    agent = store.get_agent("me")
    assert store.kept_agent("me") is agent
    assert store.kept_agent("nobody") is None
    other.update_agent("me", name="Mia Moved")
    reply = _reply_change(kept, ticket.id)
    with store.guard_agent(agent), pytest.raises(ConflictError, match="agent 'me' changed"):
        store.commit([reply])
    # The batch path (two changes in one commit) checks the same.
    second = _reply_change(kept, _open_for(kept, "l1"))
    with store.guard_agent(agent), pytest.raises(ConflictError, match="agent 'me' changed"):
        store.commit([reply, second])
    assert kept.ticket(ticket.id).seq == reply.expected_seq
    with store.guard_agent(store.get_agent("me")):
        written = store.commit([reply])
    assert written[0].ticket.seq == reply.ticket.seq


def _reply_change(desk: Helpdesk, ticket_id: str) -> TicketChange:
    """A note by me on ``ticket_id`` as its current state, not committed."""
    from helpkit.lifecycle import add_comment
    from helpkit.tickets import Comment

    ticket = desk.ticket(ticket_id)
    now = desk.now()
    comment = Comment(
        id=f"c-{ticket.seq}-{ticket_id[:8]}",
        author=Actor.agent("me"),
        body="guarded",
        public=False,
        channel="internal",
        created_at=now,
        ticket_id=ticket_id,
    )
    outcome = add_comment(ticket, comment, at=now, workflow=desk.config.workflow)
    return TicketChange(outcome.ticket, outcome.events, ticket.seq)


def test_commands_on_the_kept_agent_decide_as_reads_do(
    three: tuple[Helpdesk, Helpdesk, Helpdesk],
) -> None:
    """Property: after any change of an agent by another writer, a reply (or a note) on the
    kept agent gives what a desk reading the agent first gives (written alike, or refused
    with the same error), on tickets alike."""
    kept, reads, other = three

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.sampled_from(["l1", "l2"]),
        st.lists(
            st.tuples(
                st.sampled_from(["me", "you"]),
                _AGENT_CHANGES,
                st.sampled_from(["me", "you"]),
                st.sampled_from([None, "pending", "open"]),
                st.booleans(),  # a note instead of a reply
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def run(group: str, steps: list[tuple[Any, ...]]) -> None:
        for name in ("me", "you"):  # both start able to work on either group
            other.update_agent(
                name, active=True, role="agent", groups=["l1", "l2"], restricted=False
            )
        mine = _open_for(other, group)
        theirs = _open_for(other, group)
        kept.ticket(mine)  # the kept desk keeps its ticket's state (and reads desk none)
        for changed, changes, actor, status, note in steps:
            other.update_agent(changed, **changes)
            if note:
                assert _noted(kept, mine, actor) == _noted(reads, theirs, actor)
            else:
                assert _replied(kept, mine, actor, status) == _replied(reads, theirs, actor, status)

    run()


def _noted(desk: Helpdesk, ticket_id: str, actor: str) -> tuple[str, str]:
    try:
        ticket = desk.note(ticket_id, Actor.agent(actor), "Looked")
    except HelpkitError as exc:
        return type(exc).__name__, re.sub("ticket [0-9a-f]{32}", "ticket ...", str(exc))
    return "noted", f"{ticket.status} {ticket.seq}"
