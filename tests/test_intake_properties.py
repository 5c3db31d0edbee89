"""Properties of desk.receive, as a Hypothesis state machine over random traffic:

- a sender never lands on a ticket they are not a party of (requester, follower, agent):
  not by a subject tag, not by an unsigned reference, not by a forged token; a signed token
  (which only the ticket's parties were sent) is the one way in;
- the same message twice gives one outcome (the second is the first again, ``duplicate``);
- a message is always one clear outcome, and a suspended one writes no ticket (any message
  the strategies draw: headers, attachments, threading ids, no external id).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from helpkit import Actor, Helpdesk
from helpkit.errors import InvalidTransitionError
from helpkit.intake import Intake, IntakeKind
from helpkit.ports import Address, InboundMessage
from helpkit.testing.clock import FrozenClock
from helpkit.testing.strategies import inbound_messages
from helpkit.thread_tokens import ThreadTokens
from helpkit.tickets import LinkKind, Ticket

SECRET = "property secret, long enough!"
TOKENS = ThreadTokens(SECRET)
CUSTOMERS = ("ann@a.example", "bob@b.example", "cat@a.example", "dan@d.example")
AGENT_EMAIL = "alice@desk.example"
AGENT = Actor.agent("alice")
SENDERS = (*CUSTOMERS, AGENT_EMAIL)
SUBJECTS = ("Printer", "Re: [#{n}] Printer", "[Ticket #{n}] help", "Fwd: [#{n}]", "Hello")
HEADERS: tuple[dict[str, str], ...] = (
    {},
    {},
    {},
    {"Auto-Submitted": "auto-replied"},
    {"Precedence": "bulk"},
)


class IntakeMachine(RuleBasedStateMachine):
    strangers = "new_ticket"

    @initialize()
    def start(self) -> None:
        self.clock = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
        self.desk = Helpdesk(
            config={"intake": {"addresses": ["support@desk.example"], "strangers": self.strangers}},
            clock=self.clock,
            secret=SECRET,
            entry_points=False,
        )
        self.desk.add_group("l1", "L1", tier=1)
        self.desk.add_agent("alice", "Alice", email=AGENT_EMAIL, groups=["l1"])
        self.sent: list[InboundMessage] = []
        self.outcomes: dict[str, Intake] = {}
        self.n = 0

    # ------------------------------------------------------------ the model's view

    def tickets(self) -> list[Ticket]:
        return list(self.desk.tickets(limit=1000).items)

    def is_party(self, address: str, ticket: Ticket) -> bool:
        if address == AGENT_EMAIL:
            return True
        try:
            contact = self.desk.contact_by_email(address)
        except LookupError:
            return False
        return ticket.requester_id == contact.id or Actor.contact(contact.id) in ticket.followers

    def signed_reference(self, ticket: Ticket) -> str:
        return f"<{ticket.id}-2-reply.{TOKENS.sign(ticket.id)}@desk.example>"

    # ------------------------------------------------------------ traffic

    @rule(
        sender=st.sampled_from(SENDERS),
        subject=st.sampled_from(SUBJECTS),
        number=st.integers(1, 6),
        reference=st.sampled_from(["none", "received", "sent", "forged", "signed"]),
        pick=st.integers(0, 100),
        cc=st.lists(st.sampled_from(CUSTOMERS), max_size=2),
        headers=st.sampled_from(HEADERS),
    )
    def receive(
        self,
        sender: str,
        subject: str,
        number: int,
        reference: str,
        pick: int,
        cc: list[str],
        headers: dict[str, str],
    ) -> None:
        self.n += 1
        tickets = self.tickets()
        references: list[str] = []
        signed_for: Ticket | None = None
        if reference == "received" and self.sent:
            references.append(f"<{self.sent[pick % len(self.sent)].external_id}>")
        elif tickets and reference != "none":
            ticket = tickets[pick % len(tickets)]
            if reference == "sent":
                references.append(f"<{ticket.id}-4-reply@desk.example>")
            elif reference == "forged":
                references.append(f"<x.hk1-{ticket.id}-{'b' * 16}@desk.example>")
            elif self.is_party(sender, ticket):
                # Only the parties of a ticket were sent its signed Message-IDs.
                references.append(self.signed_reference(ticket))
                signed_for = ticket
        message = InboundMessage(
            channel="email",
            sender_address=sender,
            sender_name=None,
            subject=subject.format(n=number),
            body=f"message {self.n}",
            received_at=self.clock.now(),
            external_id=f"m{self.n}@mail.example",
            references=references,
            cc=[Address(a) for a in cc],
            headers=headers,
        )
        before = {t.id: t for t in tickets}
        got = self.desk.receive(message)
        self.sent.append(message)
        self.outcomes[got.key] = got
        assert not got.duplicate
        if got.kind is IntakeKind.SUSPENDED:
            assert got.reason
            assert {t.id: t.seq for t in self.tickets()} == {t.id: t.seq for t in tickets}
            return
        assert got.ticket_id is not None
        written = self.desk.ticket(got.ticket_id)
        if got.kind is IntakeKind.COMMENTED:
            # The heart of it: the sender was a party of the ticket before the message.
            assert self.is_party(sender, before[written.id]) or (
                signed_for is not None and self.desk.live_ticket(signed_for.id).id == written.id
            ), f"{sender} landed on {written.reference}, not being a party of it"
        else:
            assert got.kind is IntakeKind.CREATED and written.id not in before
            for link in written.links:
                if link.kind is LinkKind.FOLLOW_UP_OF:
                    assert self.is_party(sender, before[link.target_id])
            if sender != AGENT_EMAIL or not written.links:
                assert written.requester_id == self.desk.contact_by_email(sender).id

    @rule(pick=st.integers(0, 1000))
    def redeliver(self, pick: int) -> None:
        if not self.sent:
            return
        message = self.sent[pick % len(self.sent)]
        count = len(self.tickets())
        got = self.desk.receive(message)
        first = self.outcomes[got.key]
        assert got.duplicate
        assert (got.kind, got.ticket_id, got.comment_id, got.reason) == (
            first.kind,
            first.ticket_id,
            first.comment_id,
            first.reason,
        )
        assert len(self.tickets()) == count

    @rule(pick=st.integers(0, 1000))
    def release(self, pick: int) -> None:
        held = self.desk.suspended(limit=1000)
        if not held:
            return
        receipt = held[pick % len(held)]
        got = self.desk.release(receipt.key, AGENT)
        assert got.kind in (IntakeKind.CREATED, IntakeKind.COMMENTED)
        assert got.reason == receipt.reason
        self.outcomes[got.key] = got
        try:
            self.desk.release(receipt.key, AGENT)
        except InvalidTransitionError:
            pass
        else:
            raise AssertionError("a message was released twice")

    @rule(pick=st.integers(0, 1000), action=st.sampled_from(["close", "merge", "solve"]))
    def agent_acts(self, pick: int, action: str) -> None:
        live = [t for t in self.tickets() if not t.is_closed]
        if not live:
            return
        ticket = live[pick % len(live)]
        if action == "close":
            self.desk.close(ticket.id, AGENT)
        elif action == "solve":
            self.desk.resolve(ticket.id, AGENT)
        elif len(live) > 1:
            other = live[(pick + 1) % len(live)]
            self.desk.merge(ticket.id, other.id, AGENT)
        self.clock.advance(timedelta(minutes=5))

    @invariant()
    def receipts_name_existing_tickets(self) -> None:
        for outcome in self.outcomes.values():
            if outcome.ticket_id is not None:
                self.desk.ticket(outcome.ticket_id)


class SuspendingStrangers(IntakeMachine):
    strangers = "suspend"


_settings: Any = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIntakeMachine = IntakeMachine.TestCase
TestIntakeMachine.settings = _settings
TestSuspendingStrangers = SuspendingStrangers.TestCase
TestSuspendingStrangers.settings = _settings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inbound_messages())
def test_any_message_has_one_clear_outcome(message: InboundMessage) -> None:
    desk = Helpdesk(secret=SECRET, entry_points=False)
    got = desk.receive(message)
    assert isinstance(got, Intake) and not got.duplicate
    if got.kind is IntakeKind.SUSPENDED:
        assert got.reason and not desk.tickets().items
    else:
        assert got.ticket_id is not None and got.comment_id is not None
        (comment,) = desk.conversation(got.ticket_id)
        assert comment.id == got.comment_id
        assert len(comment.attachments) == len(message.attachments)
        for kept, sent in zip(comment.attachments, message.attachments, strict=True):
            assert desk.blobs.get(kept.sha256) == sent.data
    again = desk.receive(message)
    if message.external_id is None:
        assert not again.duplicate and again.key != got.key
    else:
        assert again.duplicate
        assert (again.kind, again.ticket_id, again.comment_id, again.reason) == (
            got.kind,
            got.ticket_id,
            got.comment_id,
            got.reason,
        )
