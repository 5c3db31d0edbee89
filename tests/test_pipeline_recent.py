"""The pipeline on a store that keeps recent tickets (``Capability.RECENT_TICKETS``): a command
runs on the state kept in memory without reading the ticket, and a stale one never writes,
raises or answers "nothing to do" (the command then runs on the ticket read anew)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from helpkit import Actor, ConflictError, Helpdesk, Ticket, ValidationError
from helpkit.lifecycle import Outcome
from helpkit.ports import Capability, TicketChange
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock
from helpkit.testing.conformance import StoreConformance

ANN = Actor.agent("ann")
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


class RecentStore(MemoryStore):
    """The reference store keeping the last state it committed or read of each ticket (which
    a test may set to an older one, as if another process had committed since), counting the
    tickets it reads."""

    capabilities = MemoryStore.capabilities | {Capability.RECENT_TICKETS}

    def __init__(self) -> None:
        super().__init__()
        self.recent: dict[str, Ticket] = {}
        self.reads = 0

    def recent_ticket(self, ticket_id: str) -> Ticket | None:
        return self.recent.get(ticket_id)

    def get_ticket(self, ticket_id: str) -> Ticket:
        self.reads += 1
        ticket = super().get_ticket(ticket_id)
        self._keep(ticket)
        return ticket

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        written = super().commit(changes)
        for change in written:
            self._keep(change.ticket)
        return written

    def _keep(self, ticket: Ticket) -> None:
        kept = self.recent.get(ticket.id)
        if kept is None or kept.seq <= ticket.seq:
            self.recent[ticket.id] = ticket


class TestRecentStore(StoreConformance):
    """The test store itself passes the suite (its recent ticket cases included)."""

    @pytest.fixture
    def make_store(self) -> Any:
        return RecentStore


def _desk() -> tuple[Helpdesk, RecentStore, list[float]]:
    store = RecentStore()
    desk = Helpdesk(store, clock=FrozenClock(START), entry_points=False)
    desk.add_agent("ann", "Ann")
    desk.create_contact("Carol", emails=["carol@acme.example"], contact_id="carol")
    waits: list[float] = []
    desk._pipeline._sleep = waits.append
    return desk, store, waits


def test_a_command_on_the_recent_state_reads_no_ticket() -> None:
    desk, store, _ = _desk()
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    store.reads = 0
    after = desk.reply(ticket.id, ANN, "Looking", status="pending")
    assert store.reads == 0
    assert after == desk.ticket(ticket.id) and after.status == "pending"


def test_a_stale_recent_state_loses_its_commit_and_the_command_runs_on_a_read() -> None:
    desk, store, waits = _desk()
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    replied = desk.reply(ticket.id, ANN, "Looking")
    store.recent[ticket.id] = ticket  # as if another process had replied since
    noted = desk.note(ticket.id, ANN, "checked")
    assert noted.seq == replied.seq + 1 and noted.internal_notes == 1
    assert [e.TYPE for e in desk.history(ticket.id)].count("comment_added") == 3
    assert waits == []  # a stale state is not a lost race: no wait before the read


def test_a_refusal_on_a_stale_state_is_decided_again_on_a_read() -> None:
    desk, store, _ = _desk()
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    current = desk.reply(ticket.id, ANN, "Looking")
    store.recent[ticket.id] = ticket
    seen: list[int] = []

    def decide(tickets: Sequence[Ticket], now: datetime) -> list[Outcome]:
        seen.append(tickets[0].seq)
        if tickets[0].seq < current.seq:
            raise ValidationError("refused on an old state")
        return [Outcome(tickets[0], (), tickets[0].seq)]

    assert desk._pipeline.run([ticket.id], decide) == [current]
    assert seen == [ticket.seq, current.seq]


def test_nothing_to_do_on_a_stale_state_is_decided_again_on_a_read() -> None:
    desk, store, _ = _desk()
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    desk.set_status(ticket.id, ANN, "pending")
    store.recent[ticket.id] = ticket  # says "open", the ticket is pending
    after = desk.set_status(ticket.id, ANN, "open")
    assert after.status == "open" == desk.ticket(ticket.id).status


def test_a_version_the_recent_state_does_not_have_reads_the_ticket() -> None:
    desk, store, _ = _desk()
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    replied = desk.reply(ticket.id, ANN, "Looking")
    store.recent[ticket.id] = ticket
    store.reads = 0
    noted = desk.note(ticket.id, ANN, "checked", expected_seq=replied.seq)
    assert store.reads == 1 and noted.seq == replied.seq + 1
    with pytest.raises(ConflictError):
        desk.note(ticket.id, ANN, "late", expected_seq=replied.seq)


def test_a_recent_state_that_is_current_commits_once() -> None:
    desk, store, _ = _desk()
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    commits: list[int] = []
    original = store.commit

    def counting(changes: Sequence[TicketChange]) -> list[TicketChange]:
        commits.append(len(changes))
        return original(changes)

    store.commit = counting  # type: ignore[method-assign]
    desk.tag(ticket.id, ANN, "vpn")
    assert commits == [1]
    assert desk.ticket(ticket.id).tags == frozenset({"vpn"})
    assert attrs.evolve(desk.ticket(ticket.id)) == store.recent[ticket.id]
