"""The PostgreSQL store's feed wake-ups: LISTEN/NOTIFY instead of polling the change feed.

A mixin of :class:`~helpkit.stores.postgres.store.PostgresStore` (capability ``feed_wakeup``,
:class:`helpkit.ports.FeedWakeup`).

Every commit that adds events sends a notification (``pg_notify``) on the tenant's channel
(:func:`channel`) inside its transaction: PostgreSQL delivers it when, and only if, the
transaction commits. :meth:`WakeupMixin.wait_for_changes` waits for it on a connection of its
own (not a pooled one: a listening connection must stay the same), opened at the first wait
and kept. It listens before it looks at the feed, so a commit that lands between the look and
the wait still wakes it. A dropped listening connection fails the wait with StoreError; the
next wait opens a new one (notifications sent meanwhile are lost, which is why consumers keep
looking at the feed now and then).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Final

import psycopg
from psycopg import sql

from helpkit.errors import ValidationError
from helpkit.stores.postgres.errors import translated
from helpkit.stores.postgres.feed import LAST_POSITION

__all__ = ["NOTIFY", "WakeupMixin", "channel"]

NOTIFY: Final = "SELECT pg_notify(%s, '')"
"""Sent by each commit that adds events (parameter: the tenant's channel)."""


def channel(schema: str) -> str:
    """The notification channel of ``schema``'s change feed. A channel name is at most 63
    bytes, as a schema name is, so it is a digest of the schema's name (two schemas sharing a
    channel would only wake each other's consumers for nothing)."""
    return "helpkit_feed_" + hashlib.sha256(schema.encode("ascii")).hexdigest()[:32]


class WakeupMixin:
    """Feed wake-ups of a PostgreSQL store (a mixin of ``PostgresStore``)."""

    schema: str
    conninfo: str
    _where: str
    _connect_kwargs: dict[str, Any]
    _listener: psycopg.Connection[Any] | None
    _listener_lock: threading.Lock
    wakeups: int
    """How many waits a notification ended (for tests and metrics)."""

    def _check_open(self) -> None:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def wait_for_changes(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a commit; True when the feed holds a position
        above ``after`` (at once if it already does)."""
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise ValidationError(f"timeout must be a number of seconds >= 0; got {timeout!r}")
        self._check_open()
        with self._listener_lock, translated(self._where):
            try:
                conn = self._listener
                if conn is None:
                    conn = psycopg.connect(self.conninfo, **self._connect_kwargs)
                    try:
                        self._configure(conn)
                        listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel(self.schema)))
                        conn.execute(listen)
                        # Listening from here on: look at the feed once, for what came before.
                        already = self._beyond(conn, after)
                    except BaseException:
                        conn.close()
                        raise
                    # Kept only now, listening and caught up: a commit from here on notifies.
                    self._listener = conn
                    if already:
                        return True
                for _ in conn.notifies(timeout=float(timeout), stop_after=1):
                    self.wakeups += 1
                    return True
                return False
            except psycopg.Error:
                self._close_listener()
                raise

    @staticmethod
    def _beyond(conn: psycopg.Connection[Any], after: int) -> bool:
        row = conn.execute(LAST_POSITION).fetchone()
        return row is not None and int(row[0]) > after

    def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            conn.close()

    def _stop_listening(self) -> None:
        with self._listener_lock:
            self._close_listener()
