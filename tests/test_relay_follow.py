"""The following relay wakes for a commit that lands while a run ends (issue #11)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from helpkit import Actor, Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.ports import Delivery
from helpkit.stores.memory import MemoryStore


class _LateCommit(MemoryStore):
    """Runs ``before_claim`` once, at the first claim: after the relay's run has looked at the
    feed for the last time, before the run returns."""

    def __init__(self) -> None:
        super().__init__()
        self.before_claim: Callable[[], object] | None = None

    def claim(self, *, owner: str, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        hook, self.before_claim = self.before_claim, None
        if hook is not None:
            hook()
        return super().claim(owner=owner, now=now, until=until, limit=limit)


def test_a_commit_while_the_run_ends_is_delivered_without_another_commit() -> None:
    store = _LateCommit()
    channel = RecordingChannel()
    desk = Helpdesk(store, channels=[channel], entry_points=False)
    desk.add_agent("ann", "Ann", email="ann@help.example")
    carol = desk.create_contact("Carol", emails=["carol@example.com"])
    ticket = desk.open_ticket(Actor.agent("ann"), requester=carol.id, subject="VPN")
    store.before_claim = lambda: desk.reply(ticket.id, Actor.agent("ann"), "Fixed?")
    stop = threading.Event()
    relay = threading.Thread(
        target=desk.follow_deliveries,
        args=(stop,),
        # A long recheck: only the wake-up on the feed can deliver it within the 5 s waited.
        kwargs={"poll": 0.01, "recheck": 60},
        daemon=True,
    )
    relay.start()
    try:
        for _ in range(500):  # 5 s at most; it takes one poll
            if channel.messages:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        relay.join(5)
    # Before: the run's end took the reply's position as seen, and waited for another commit.
    assert [m.body for m in channel.messages] == ["Fixed?"]
