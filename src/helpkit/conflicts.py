"""Retrying a read-decide-write that lost to a concurrent writer.

A host that shows a ticket to a person and writes their decision later passes the version it
showed (``expected_seq=ticket.seq``); when someone else changed the ticket meanwhile, the
command raises :class:`~helpkit.errors.ConflictError` with the events since, and writes
nothing. Where the decision can be taken again without asking the person (a background job,
an integration), :func:`retry_on_conflict` re-runs it on fresh data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from helpkit._checks import check_int
from helpkit.errors import ConflictError, ValidationError

__all__ = ["retry_on_conflict"]

_T = TypeVar("_T")


def retry_on_conflict(
    action: Callable[[], _T],
    *,
    attempts: int = 3,
    backoff: float = 0.0,
    on_conflict: Callable[[ConflictError], None] | None = None,
) -> _T:
    """Call ``action`` until it does not raise ConflictError, at most ``attempts`` times.

    ``action`` must read what it decides on itself (``desk.ticket(...)``), so each attempt
    decides on fresh data. ``on_conflict`` sees each conflict (say, to log "Ann replied
    meanwhile"); ``backoff`` seconds, doubled after each conflict, are waited between attempts.
    The last ConflictError propagates when every attempt lost.

    >>> ticket = desk.ticket(1042)                                           # doctest: +SKIP
    >>> retry_on_conflict(lambda: desk.tag(ticket.id, bot, "vip",            # doctest: +SKIP
    ...                   expected_seq=desk.ticket(ticket.id).seq))
    """
    check_int(attempts, "attempts", minimum=1, maximum=1000)
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not 0 <= backoff < 60:
        raise ValidationError(f"backoff is a number of seconds in [0, 60); got {backoff!r}")
    delay = float(backoff)
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except ConflictError as exc:
            if on_conflict is not None:
                on_conflict(exc)
            if attempt == attempts:
                raise
            if delay:
                time.sleep(delay)
                delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover
