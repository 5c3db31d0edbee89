"""A dead delivery sent again (``desk.retry_delivery``, ``helpkit deliver --retry``) is really
sent again: reviving starts a new round, which the relay does not settle from the round that
was given up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpkit import Actor, Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.events import DeliveryFailed, MessageSent
from helpkit.ports import DeliveryState, Outbox
from helpkit.relay import RetryPolicy
from helpkit.testing.clock import FrozenClock

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"


def _desk(url: str, channel: RecordingChannel, clock: FrozenClock, attempts: int) -> Helpdesk:
    desk = Helpdesk(
        url, channels=[channel], clock=clock, retry=RetryPolicy(attempts=attempts, jitter=0.0)
    )
    desk.add_agent("ann", "Ann", email="ann@help.example")
    bob = desk.create_contact("Bob", emails=["bob@acme.example"])
    ticket = desk.open_ticket(Actor.contact(bob.id), requester=bob, subject="VPN", body="down")
    desk.reply(ticket, Actor.agent("ann"), "Looking into it")
    return desk


def test_a_revived_delivery_is_sent(store_url: str) -> None:
    channel = RecordingChannel("email", fail=1)
    clock = FrozenClock(START)
    with _desk(store_url, channel, clock, attempts=1) as desk:
        assert desk.deliver_pending().dead == 1
        (dead,) = desk.deliveries(state="dead")
        revived = desk.retry_delivery(dead.id)
        assert (revived.state, revived.attempts, revived.claims) == (DeliveryState.PENDING, 0, 0)
        report = desk.deliver_pending()
        assert (report.sent, report.recovered, report.dead) == (1, 0, 0)
        assert len(channel.messages) == 1
        (sent,) = desk.deliveries(state="sent")
        assert sent.id == dead.id and sent.attempts == 1
        trail = [
            e for e in desk.history(sent.ticket_id) if isinstance(e, DeliveryFailed | MessageSent)
        ]
        assert [type(e).__name__ for e in trail] == ["DeliveryFailed", "MessageSent"]


def test_a_relay_that_stops_in_the_new_round_is_recovered_from_that_round(store_url: str) -> None:
    """Given up (recorded), revived, failed once in the new round (recorded), then claimed by
    a relay that stops: the next relay carries on from the new round's record, and sends."""
    channel = RecordingChannel("email", fail=3)
    clock = FrozenClock(START)
    with _desk(store_url, channel, clock, attempts=2) as desk:
        desk.deliver_pending()
        clock.advance(timedelta(minutes=10))
        assert desk.deliver_pending().dead == 1
        (dead,) = desk.deliveries(state="dead")
        desk.retry_delivery(dead.id)
        assert desk.deliver_pending().retried == 1  # the new round's first attempt fails
        clock.advance(timedelta(minutes=10))
        outbox = desk.store
        assert isinstance(outbox, Outbox)
        (held,) = outbox.claim(  # a relay that dies holding it
            owner="stopped", now=clock.now(), until=clock.now() + timedelta(minutes=1), limit=5
        )
        assert held.claims == 2
        clock.advance(timedelta(minutes=10))
        report = desk.deliver_pending()
        assert (report.sent, report.recovered, report.dead) == (1, 0, 0)
        assert len(channel.messages) == 1
        (sent,) = desk.deliveries(state="sent")
        assert sent.attempts == 2
