"""How long-running commands stop: the work runs in a thread, a signal only notes itself, the
main thread sets the stop event (setting it from the handler could deadlock)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from helpkit.cli._stopping import run_until_signalled

needs_posix = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


@needs_posix
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_work_and_the_former_handler_comes_back(signum: int) -> None:
    before = signal.getsignal(signum)

    def work(stop: threading.Event) -> str:
        os.kill(os.getpid(), signum)  # as if sent from outside
        assert stop.wait(10), "the signal did not set stop"
        return "done"

    result, received = run_until_signalled(work, name="test-work")
    assert (result, received) == ("done", [signum])
    assert signal.getsignal(signum) == before


def test_what_the_work_raises_is_raised_in_the_caller() -> None:
    def work(stop: threading.Event) -> None:
        raise LookupError("from the worker")

    with pytest.raises(LookupError, match="from the worker"):
        run_until_signalled(work, name="test-work")


def test_whoever_holds_the_event_can_stop_the_work() -> None:
    stop = threading.Event()
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    result, received = run_until_signalled(lambda s: s.wait(10), name="test-work", stop=stop)
    timer.join()
    assert (result, received) == (True, [])
