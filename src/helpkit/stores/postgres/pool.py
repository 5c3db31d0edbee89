"""The store's connection pool: psycopg_pool's, lending the connection given back last.

psycopg_pool's ``ConnectionPool`` keeps its idle connections in a queue: a borrow takes the
one idle longest and a return puts it at the back. Once the pool holds two connections or
more, a thread running one command after another therefore gets a different connection, and
so a different server backend process, for each command: every connection, its backend and
its objects in the client come round again cold in the CPU's caches. On the project's bench
machine that cost a create through the desk about 0.07 ms of the client's CPU and 0.08 ms of
the server's (1,150 against 1,390 creates per second, two connections in the pool; see
docs/postgresql.md, "Figures").

:class:`RecentFirstPool` lends the idle connection given back last (a stack): a quiet
moment's commands keep to the connection just used, and the ones a burst opened sink to the
other end, where the pool's shrinking (one connection per ``max_idle`` while some stayed
unused) closes the one idle longest first, as it does with a queue. Nothing else changes:
the same checks on borrow, the same waits, the same sizes.

It overrides a method that is not public API of psycopg_pool (``_get_ready_connection``,
called with the pool's lock held, which takes the connection at the left end of the deque
``_pool``; returns append at the right end): :func:`usable` admits the releases it was
written and tested against, and :data:`POOL` is the plain ``ConnectionPool`` under any other
(connections lent in turn, as before), so a psycopg_pool upgrade never breaks the store.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

import psycopg_pool
from psycopg_pool import ConnectionPool

__all__ = ["POOL", "USABLE", "RecentFirstPool", "usable"]

_TESTED: Final = frozenset({(3, 2), (3, 3)})
"""The psycopg_pool releases (major, minor) whose idle connections this class reorders (each
takes from the left of ``_pool`` under the pool's lock in ``_get_ready_connection``)."""


def usable(version: str) -> bool:
    """Whether :class:`RecentFirstPool` may be used with psycopg_pool ``version``: one of the
    releases it was tested against, whose pool has the method it overrides."""
    try:
        release = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return release in _TESTED and callable(getattr(ConnectionPool, "_get_ready_connection", None))


USABLE: Final = usable(psycopg_pool.__version__)
"""Whether this process's psycopg_pool takes :class:`RecentFirstPool` (see :func:`usable`)."""


class RecentFirstPool(ConnectionPool[Any]):
    """A ``ConnectionPool`` lending the idle connection given back last (see the module)."""

    def _get_ready_connection(self, timeout: float | None) -> Any:
        # Called with the pool's lock held. The idle connections are in the order they came
        # back (the last one at the right): that one is turned to the left, where the pool
        # takes its connection, and the others keep their order (the one idle longest at
        # the left, the first to be closed when the pool shrinks).
        idle: deque[Any] = self._pool
        if len(idle) > 1 and (timeout is None or timeout > 0):
            idle.rotate(1)
        return super()._get_ready_connection(timeout)


POOL: Final[type[ConnectionPool[Any]]] = RecentFirstPool if USABLE else ConnectionPool
"""The pool class the store opens: :class:`RecentFirstPool` where :data:`USABLE`, else
psycopg_pool's own."""
