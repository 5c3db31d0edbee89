"""The background checkpointer of a :class:`~helpkit.stores.sqlite.SqliteStore`.

In WAL mode every commit appends pages to ``file-wal``; a checkpoint copies them back into
the database file and fsyncs it. SQLite's automatic checkpoint runs inside the commit that
crosses its threshold, so that writer waits on the disk. A :class:`Checkpointer` moves that
work to a daemon thread with its own connection: after each commit the store looks at the
size of ``file-wal`` (``os.stat``) and, past the threshold, wakes the thread (a
:class:`threading.Event`), which looks again and runs ``PRAGMA wal_checkpoint(PASSIVE)``:
that never waits for and never blocks writers or readers, so any number of store objects and
processes may share a file. A checkpoint moves only committed pages: durability is that of
the commits. The WAL files are never opened but by SQLite: closing any descriptor of a file
drops every POSIX lock the process holds on it, SQLite's WAL locks on ``file-shm`` included.

The writers keep SQLite's automatic checkpoint as a safety net at a higher threshold (the
store sets it), so the WAL stays bounded when this thread lags.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

log = logging.getLogger(__name__)


def wal_bytes(path: str) -> int:
    """The size of the WAL file of ``path`` (0 when there is none), by ``stat``: never by
    opening it, since closing any descriptor of a file drops every POSIX lock this process
    holds on it, SQLite's included."""
    try:
        return os.stat(path + "-wal").st_size
    except OSError:
        return 0


class Checkpointer:
    """A daemon thread that checkpoints ``path`` (PASSIVE) once its WAL file is larger than
    ``threshold`` bytes; :meth:`wake` after a commit, :meth:`close` to stop it.

    The store sets the writers' ``journal_size_limit`` to the same ``threshold``: SQLite
    truncates the WAL file to it when a writer starts the WAL again after a complete
    checkpoint, so the file grows past it only when the frames written since do."""

    def __init__(self, path: str, threshold: int) -> None:
        self.path = path
        self.threshold = threshold
        self.checkpoints = 0  # checkpoints this thread ran
        self._wake = threading.Event()
        self._stop = False
        self._state = threading.Condition()
        self._asked = 0  # wakes asked for, and handled: settle() waits for the two to meet
        self._handled = 0
        self._thread = threading.Thread(
            target=self._run, name=f"helpkit-checkpointer {path}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """After a commit: wake the thread if the WAL file has grown past the threshold (one
        ``stat``; the thread is left asleep otherwise, so small commits cost no switch)."""
        if wal_bytes(self.path) > self.threshold:
            self._asked += 1  # under the GIL; a lost increment only delays settle's answer
            self._wake.set()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until the thread has handled every wake so far (tests use it); False when it
        did not within ``timeout`` seconds or has stopped."""
        with self._state:
            asked = self._asked
            return self._state.wait_for(
                lambda: self._handled >= asked or not self._thread.is_alive(), timeout
            ) and (self._handled >= asked)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop the thread and close its connection (waits for a checkpoint under way)."""
        self._stop = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                asked = self._asked
                if wal_bytes(self.path) > self.threshold:
                    try:
                        if conn is None:
                            conn = sqlite3.connect(self.path, isolation_level=None)
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        self.checkpoints += 1
                    except sqlite3.Error as exc:
                        # e.g. the file went away: the writers' safety net still holds
                        log.debug("background checkpoint of %s failed: %s", self.path, exc)
                with self._state:
                    self._handled = max(self._handled, asked)
                    self._state.notify_all()
        finally:
            if conn is not None:
                conn.close()
            with self._state:
                self._state.notify_all()
