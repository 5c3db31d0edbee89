"""A pytest plugin (entry point ``pytest11``) with ``helpkit_`` fixtures for users' suites.

Installed with helpkit; pytest loads it automatically. Fixtures:

- ``helpkit_clock``: a :class:`~helpkit.testing.clock.FrozenClock` at Monday 2026-01-05 09:00 UTC
  (override the ``helpkit_start`` fixture to start elsewhere).
- ``helpkit_channel``: a :class:`~helpkit.channels.recording.RecordingChannel` named ``email``.
- ``helpkit_desk``: a :class:`~helpkit.Helpdesk` on the in-memory store with that clock and
  channel, entry-point plugins off (so the test sees only what it sets up).
- ``helpkit_agent``: an agent ``agent-1`` in group ``l1`` of that desk, as an :class:`Actor`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from helpkit.channels.recording import RecordingChannel
from helpkit.desk import Helpdesk
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor

__all__ = [
    "helpkit_agent",
    "helpkit_channel",
    "helpkit_clock",
    "helpkit_desk",
    "helpkit_start",
]


@pytest.fixture
def helpkit_start() -> datetime:
    """The instant ``helpkit_clock`` starts at (a Monday, 09:00 UTC)."""
    return datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def helpkit_clock(helpkit_start: datetime) -> FrozenClock:
    """A frozen clock; move it with ``advance(hours=1)`` or ``set(instant)``."""
    return FrozenClock(helpkit_start)


@pytest.fixture
def helpkit_channel() -> RecordingChannel:
    """A channel named ``email`` that records outbound messages in ``.messages``."""
    return RecordingChannel("email")


@pytest.fixture
def helpkit_desk(
    helpkit_clock: FrozenClock, helpkit_channel: RecordingChannel
) -> Iterator[Helpdesk]:
    """An in-memory helpdesk with the frozen clock and the recording channel; it delivers
    synchronously (``delivery="sync"``), so a test sees a reply's message as soon as the
    command returns."""
    desk = Helpdesk(
        "memory://",
        clock=helpkit_clock,
        channels=[helpkit_channel],
        entry_points=False,
        delivery="sync",
    )
    with desk:
        yield desk


@pytest.fixture
def helpkit_agent(helpkit_desk: Helpdesk) -> Actor:
    """An agent ``agent-1`` (group ``l1``, tier 1) registered in ``helpkit_desk``."""
    helpkit_desk.add_group("l1", "Service desk", tier=1)
    helpkit_desk.add_agent("agent-1", "Alex Agent", email="alex@helpdesk.example", groups=["l1"])
    return Actor.agent("agent-1")
