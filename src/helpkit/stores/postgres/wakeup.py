"""The PostgreSQL store's feed wake-ups: LISTEN/NOTIFY instead of polling the change feed.

A mixin of :class:`~helpkit.stores.postgres.store.PostgresStore` (capability ``feed_wakeup``,
:class:`helpkit.ports.FeedWakeup`).

While a consumer waits, every commit that adds events sends a notification (``pg_notify``) on
the tenant's channel (:func:`channel`) inside its transaction: PostgreSQL delivers it when,
and only if, the transaction commits. :meth:`WakeupMixin.wait_for_changes` waits for it on a
connection of its own (not a pooled one: a listening connection must stay the same), opened
at the first wait and kept listening. A dropped listening connection fails the wait with
StoreError; the next wait opens a new one.

A commit notifies only while some consumer waits. PostgreSQL serializes the commits of
transactions that notify, across the whole server (each holds one lock from before its commit
record until the commit is flushed), so notifying commits cannot share a WAL flush; writers
that notify on every commit are capped near one commit per flush. So a wait first looks at
the feed and returns at once when it holds a position above ``after`` (a busy consumer
rarely waits at all). Otherwise it registers its connection in the table ``feed_listeners``
(its backend's pid and start; schema version 11), drops the notifications heard before, looks
at the feed again, waits for a notification, and removes its row. A commit sends
``pg_notify`` only when that table holds a row (:data:`NOTIFY`, and ``commit_change``'s own
check).

No wake-up is lost to it. The row is written under the feed lock, and a commit checks the
table under the feed lock, in a statement after the one that took it (so in a snapshot that
sees every registration committed before). A commit that took the lock before the
registration is committed before the registration is, and the look after the registration
sees its events; a commit that takes the lock after the registration sees the row and
notifies, and the listening connection hears it. A row left by a process that died (its
backend gone) is removed by the next registration; until then it only costs notifications
that nobody hears.
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
from helpkit.stores.postgres.schema import FEED_LOCK

__all__ = ["NOTIFY", "WakeupMixin", "channel"]

NOTIFY: Final = "SELECT pg_notify(%s, '') FROM feed_listeners LIMIT 1"
"""Sent by each commit that adds events, after the feed lock (parameter: the tenant's
channel): notifies only while some consumer waits (a row of ``feed_listeners``)."""

_STARTED_US: Final = "(extract(epoch FROM backend_start) * 1000000)::bigint"
"""A backend's start in pg_stat_activity, as ``feed_listeners.started_us`` holds it."""
_ME: Final = f"SELECT pid, {_STARTED_US} FROM pg_stat_activity WHERE pid = pg_backend_pid()"
"""This connection's row of ``feed_listeners`` (pid, start)."""
_GONE: Final = (
    "DELETE FROM feed_listeners f WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a "
    f"WHERE a.pid = f.pid AND {_STARTED_US} = f.started_us)"
)
_REGISTER: Final = (
    "INSERT INTO feed_listeners (pid, started_us) VALUES (%s, %s) ON CONFLICT DO NOTHING"
)
_UNREGISTER: Final = "DELETE FROM feed_listeners WHERE pid = %s AND started_us = %s"


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
                    conn = self._listener = self._listen()
                if self._beyond(conn, after):
                    return True  # something to do already: no need to be woken
                # Registered while it waits, so that commits notify (see the module), then
                # the notifications heard before dropped (the look after covers them), and
                # a look at the feed, for what committed before.
                me = self._listening_as = _register(conn)
                try:
                    for _ in conn.notifies(timeout=0):
                        pass
                    if self._beyond(conn, after):
                        return True
                    for _ in conn.notifies(timeout=float(timeout), stop_after=1):
                        self.wakeups += 1
                        return True
                    return False
                finally:
                    # (A connection that broke leaves its row to the next registration.)
                    self._listening_as = None
                    conn.execute(_UNREGISTER, me)
            except psycopg.Error:
                self._close_listener()
                raise

    def _listen(self) -> psycopg.Connection[Any]:
        """A connection of its own listening on the tenant's channel."""
        conn = psycopg.connect(self.conninfo, **self._connect_kwargs)
        try:
            self._configure(conn)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel(self.schema))))
        except BaseException:
            conn.close()
            raise
        return conn

    _listening_as: tuple[int, int] | None = None
    """The listener's row in ``feed_listeners`` (pid, start), while it waits."""

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


def _register(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Register ``conn`` (listening already, in autocommit) in ``feed_listeners``, in one
    transaction under the feed lock, removing the rows of backends gone; its row (pid,
    start). Under the feed lock, so that a commit that took it first is committed before
    the registration is (and seen by the look after it), and one that takes it after sees
    the row (see the module)."""
    row = conn.execute(_ME).fetchone()
    assert row is not None  # a backend sees itself in pg_stat_activity
    me = (int(row[0]), int(row[1]))
    with conn.transaction():
        conn.execute(FEED_LOCK)
        conn.execute(_GONE)
        conn.execute(_REGISTER, me)
    return me
