"""One Helpdesk shared by the threads of a web server (issue #10), on both built-in stores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpkit import (
    Actor,
    BusinessCalendar,
    DeskConfig,
    Helpdesk,
    Priority,
)
from helpkit.channels.recording import RecordingChannel
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.testing.clock import FrozenClock

THREADS = 8
ANN = Actor.agent("ann")
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
POLICY = SlaPolicy(
    "std",
    BusinessCalendar.always("UTC"),
    dict.fromkeys(
        Priority, Targets(first_response=timedelta(hours=1), resolution=timedelta(hours=8))
    ),
    warn_at=(0.5,),
)


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Helpdesk]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    with Helpdesk(
        url,
        config=DeskConfig(sla=SlaPolicySet([POLICY])),
        clock=FrozenClock(START),
        entry_points=False,
        channels=[RecordingChannel("email")],
    ) as opened:
        opened.add_agent("ann", "Ann")
        yield opened


def _together(work: Callable[[int], None], threads: int = THREADS) -> list[BaseException]:
    """Run ``work(i)`` in ``threads`` threads released at once; the exceptions they raised."""
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as exc:
            failures.append(exc)

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return failures


def test_opening_tickets_for_one_new_address_from_many_threads(desk: Helpdesk) -> None:
    def work(index: int) -> None:
        for round_ in range(5):
            desk.open_ticket(
                ANN,
                requester=f"new{round_}@acme.example",
                subject=f"from thread {index}",
                body="hello",
            )

    assert _together(work) == []
    for round_ in range(5):
        contact = desk.contact_by_email(f"new{round_}@acme.example")
        assert desk.tickets_of_contact(contact, limit=100).items.__len__() == THREADS
    assert len(desk.find_contacts("new", limit=100)) == 5


def test_contact_for_email_from_many_threads_gives_one_contact(desk: Helpdesk) -> None:
    found: list[str] = []

    def work(index: int) -> None:
        found.append(desk.contact_for_email("same@acme.example").id)

    assert _together(work) == []
    assert len(set(found)) == 1 and len(found) == THREADS


def test_commands_on_one_ticket_from_many_threads_all_land(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(ANN, requester="carol@acme.example", subject="VPN", body="drops")

    def work(index: int) -> None:
        for step in range(6):
            desk.note(ticket.id, ANN, f"thread {index} step {step}")
            desk.tag(ticket.id, ANN, f"t{index}")

    assert _together(work) == []
    final = desk.ticket(ticket)
    assert final.internal_notes == THREADS * 6
    assert final.tags == {f"t{i}" for i in range(THREADS)}
    assert [e.seq for e in desk.history(ticket)] == list(range(1, final.seq + 1))


def test_numbers_stay_gapless_and_sweeps_record_once(desk: Helpdesk) -> None:
    def work(index: int) -> None:
        for _ in range(10):
            desk.open_ticket(ANN, requester="carol@acme.example", subject="VPN", body="drops")

    assert _together(work) == []
    tickets = desk.tickets(limit=1000).items
    assert sorted(t.number for t in tickets) == list(range(1, THREADS * 10 + 1))
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(hours=10))

    def sweep(index: int) -> None:
        desk.sweep(batch=7)

    assert _together(sweep) == []
    for ticket in tickets:
        recorded = [
            (e.TYPE, getattr(e, "metric", None), getattr(e, "cycle", None))
            for e in desk.history(ticket)
            if e.TYPE in {"sla_warned", "sla_breached"}
        ]
        # An agent's public opening message is the first response: resolution is left,
        # warned and breached once each, however many sweeps ran at once.
        assert sorted(recorded) == [
            ("sla_breached", "resolution", 0),
            ("sla_warned", "resolution", 0),
        ]
        assert desk.ticket(ticket).next_check is None
