"""Desks a test opened, shut down after it by the autouse fixture in conftest.py (their SQLite
connections with them: Python 3.13 reports unclosed ones)."""

from __future__ import annotations

from helpkit import Helpdesk

OPEN: list[Helpdesk] = []


def opened(desk: Helpdesk) -> Helpdesk:
    """``desk``, to be shut down when the test ends."""
    OPEN.append(desk)
    return desk


def shut_all() -> None:
    """Shut down every desk :func:`opened` since the last call."""
    while OPEN:
        OPEN.pop().shutdown()
