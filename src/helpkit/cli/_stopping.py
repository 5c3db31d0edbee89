"""Long-running commands (``deliver --follow``, ``mail poll``, ``publish --follow``): work in a
thread until SIGTERM or SIGINT.

The signal handler only notes the signal. Setting a :class:`threading.Event` from a handler can
deadlock: Python runs the handler in the main thread between two bytecodes, possibly while that
thread holds the event's own lock (inside ``Event.wait``), and ``Event.set`` takes it again. So
the work runs in a thread, and the main thread, waiting on it, sets the event.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_received() -> Iterator[list[int]]:
    """The signals (SIGTERM, SIGINT) received meanwhile; the former handlers come back after.
    Only the main thread can install handlers: elsewhere the list stays empty."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)  # nothing that takes a lock: see the module's docstring

    before: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # else Python refuses handlers
        for wanted in STOPPING_SIGNALS:
            before[wanted] = signal.signal(wanted, handler)
    try:
        yield received
    finally:
        for signum, former in before.items():
            signal.signal(signum, former)


def run_until_signalled(
    work: Callable[[threading.Event], T], *, name: str, stop: threading.Event | None = None
) -> tuple[T, list[int]]:
    """Run ``work(stop)`` in a thread named ``name``; the first SIGTERM or SIGINT sets ``stop``
    (as does whoever else holds it). What ``work`` returned, and the signals received; what it
    raised is raised here."""
    stop = threading.Event() if stop is None else stop
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work(stop))
        except BaseException as exc:  # handed to the main thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=run, name=name, daemon=True)
    with signals_received() as received:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            if received and not stop.is_set():
                stop.set()
    if failure:
        raise failure[0]
    return outcome[0], list(received)
