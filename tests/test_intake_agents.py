"""Intake's agents of a message: on a store that finds agents by address
(``Capability.AGENT_EMAILS``) intake reads only the agents of the sender's and the CC'd
addresses, never the whole staff, and every message comes out as it does on a store without
the capability (which lists every agent)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk
from helpkit.errors import HelpkitError
from helpkit.intake import Intake
from helpkit.people import Agent
from helpkit.ports import Address, Capability, InboundMessage
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
# Agents: active, inactive, two sharing an address (the later id wins, as in list_agents'
# order), one without an address.
AGENTS = (
    ("alice", "alice@desk.example", True),
    ("bob", "bob@desk.example", False),
    ("carl", "shared@desk.example", True),
    ("dora", "shared@desk.example", True),
    ("eve", None, True),
)
ADDRESSES = (
    "alice@desk.example",
    "bob@desk.example",
    "shared@desk.example",
    "ann@acme.example",
    "cat@acme.example",
    "support@desk.example",
    "not an address",
    "ALICE@desk.example",
)


class _ListingStore(MemoryStore):
    """The memory store without ``AGENT_EMAILS``: intake lists every agent."""

    capabilities = MemoryStore.capabilities - {Capability.AGENT_EMAILS}


class _FindingStore(MemoryStore):
    """The memory store with ``AGENT_EMAILS``, counting the calls listing every agent."""

    listed = 0

    def list_agents(self) -> list[Agent]:
        self.listed += 1
        return super().list_agents()


def _desk(store: MemoryStore, cc_followers: bool) -> Helpdesk:
    desk = Helpdesk(
        store,
        config={"intake": {"addresses": ["support@desk.example"], "cc_followers": cc_followers}},
        clock=FrozenClock(START),
        delivery="sync",
        entry_points=False,
    )
    desk.add_group("l1", "L1", tier=1)
    for agent_id, email, active in AGENTS:
        desk.add_agent(agent_id, agent_id.title(), email=email, groups=["l1"])
        if not active:
            desk.update_agent(agent_id, active=False)
    return desk


def _seen(desk: Helpdesk, got: Intake) -> tuple[Any, ...]:
    """What a message did, with contacts named by their addresses (their ids are random)."""

    def who(actor: Actor) -> tuple[str, object]:
        if actor.kind.value == "contact":
            return ("contact", desk.contact(actor.id).emails)
        return (actor.kind.value, actor.id)

    if got.ticket_number is None:
        return (got.kind, got.duplicate, None)
    ticket = desk.ticket(got.ticket_number)
    authors = tuple(who(c.author) for c in desk.conversation(got.ticket_number))
    return (
        got.kind,
        got.duplicate,
        got.ticket_number,
        who(Actor.contact(ticket.requester_id)),
        tuple(sorted(map(repr, map(who, ticket.followers)))),
        authors,
    )


messages = st.lists(
    st.tuples(
        st.sampled_from(ADDRESSES[:6]),
        st.lists(st.sampled_from(ADDRESSES), max_size=5),
        st.sampled_from(["Printer", "Re: [#1] Printer", "[Ticket #2] help"]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(messages, st.booleans())
def test_a_message_names_the_same_agents_with_or_without_the_lookup(
    traffic: list[tuple[str, list[str], str]], cc_followers: bool
) -> None:
    finding, listing = _FindingStore(), _ListingStore()
    desks = (_desk(finding, cc_followers), _desk(listing, cc_followers))
    listed_before = finding.listed
    for n, (sender, cc, subject) in enumerate(traffic):
        message = InboundMessage(
            channel="email",
            sender_address=sender,
            sender_name=None,
            subject=subject,
            body="It jams.",
            received_at=START,
            external_id=f"<m{n}@acme.example>",
            cc=tuple(Address(a) for a in cc),
        )
        seen = []
        for desk in desks:
            try:
                seen.append(_seen(desk, desk.receive(message)))
            except HelpkitError as exc:  # the same refusal on both sides
                seen.append((type(exc), str(exc)))
        assert seen[0] == seen[1], (sender, cc, subject)
    assert finding.listed == listed_before  # never the whole staff


@pytest.mark.parametrize("cc_followers", [True, False])
def test_an_agent_sending_and_agents_copied_are_found(cc_followers: bool) -> None:
    store = _FindingStore()
    desk = _desk(store, cc_followers)
    got = desk.receive(
        InboundMessage(
            channel="email",
            sender_address="ann@acme.example",
            sender_name="Ann",
            subject="Printer",
            body="It jams.",
            received_at=START,
            external_id="<m1@acme.example>",
            cc=(
                Address("ALICE@desk.example"),
                Address("bob@desk.example"),
                Address("shared@desk.example"),
            ),
        )
    )
    assert got.ticket_number is not None
    followers = desk.ticket(got.ticket_number).followers
    # Alice (her address normalized) and the later of the two sharing one; Bob is inactive.
    assert {f for f in followers if f.kind.value == "agent"} == (
        {Actor.agent("alice"), Actor.agent("dora")} if cc_followers else set()
    )
    reply = desk.receive(
        InboundMessage(
            channel="email",
            sender_address="alice@desk.example",
            sender_name=None,
            subject=f"Re: [#{got.ticket_number}] Printer",
            body="On it.",
            received_at=START,
            external_id="<m2@desk.example>",
        )
    )
    assert reply.ticket_number == got.ticket_number
    assert desk.conversation(got.ticket_number)[-1].author == Actor.agent("alice")
    assert store.listed == 0
