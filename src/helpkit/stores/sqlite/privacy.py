"""Redaction and purge for the SQLite store (:class:`helpkit.ports.Redaction`,
:class:`helpkit.ports.Purge`).

Rewrites and purges run in one ``BEGIN IMMEDIATE`` transaction on a connection with
``PRAGMA secure_delete = ON``, so the cells and pages they free are overwritten with zeros
rather than left in the file. The old pages still live in the write-ahead log until it is
checkpointed, and in free space until a ``VACUUM``: :meth:`PrivacyMixin.compact` is that
cleanup step (checkpoint, ``VACUUM``, checkpoint with ``TRUNCATE``), after which the old bytes
are in neither the database file nor its ``-wal`` file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Final

from helpkit._checks import check_text
from helpkit.errors import NotFoundError, StoreError, ValidationError
from helpkit.events import Event, event_from_dict, event_to_dict
from helpkit.ports import Delivery, Receipt
from helpkit.stores.contract import (
    check_delivery,
    check_rewritten_event,
    check_same_event,
)
from helpkit.stores.sqlite.encoding import _decoded, _dumps
from helpkit.stores.sqlite.feed import _encode_delivery
from helpkit.stores.sqlite.inbox import _decode, _row

__all__ = ["PrivacyMixin"]

_PER_QUERY: Final = 500
_HIGHEST: Final = (
    "SELECT ticket_id FROM events WHERE position = (SELECT max(position) FROM events) "
    "UNION SELECT id FROM tickets WHERE number = (SELECT max(number) FROM tickets)"
)


class PrivacyMixin:
    """The store's rewrites, purges and cleanup step."""

    path: str

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - provided by SqliteStore

    @contextmanager
    def _secure_transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction whose freed cells and pages are zeroed (secure_delete)."""
        with self._connection() as conn:
            grouped = conn.in_transaction  # a group commit's (group_commit): a savepoint
            if grouped:
                conn.execute("PRAGMA secure_delete = ON")
                conn.execute("SAVEPOINT helpkit_secure")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK TO helpkit_secure")
                        conn.execute("RELEASE helpkit_secure")
                    raise
                else:
                    conn.execute("RELEASE helpkit_secure")
                finally:
                    conn.execute("PRAGMA secure_delete = OFF")
                return
            conn.execute("PRAGMA secure_delete = ON")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                conn.execute("PRAGMA secure_delete = OFF")

    def rewrite(
        self,
        *,
        events: Sequence[Event] = (),
        deliveries: Sequence[Delivery] = (),
        receipts: Sequence[Receipt] = (),
    ) -> None:
        """Replace stored events (history and feed: one row), deliveries and receipts."""
        new_events = [check_rewritten_event(e) for e in events]
        try:
            event_rows = [
                (_dumps(event_to_dict(e)), e.ticket_id, e.seq, e.TYPE) for e in new_events
            ]
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"an event cannot be stored: {exc}") from exc
        delivery_rows = [_encode_delivery(check_delivery(d)) for d in deliveries]
        receipt_rows = []
        for receipt in receipts:
            if not isinstance(receipt, Receipt):
                raise ValidationError(f"rewrite takes receipts; got {receipt!r:.60}")
            receipt_rows.append(_row(receipt))
        with self._secure_transaction() as conn:
            for event, row in zip(new_events, event_rows, strict=True):
                stored = conn.execute(
                    "SELECT body FROM events WHERE ticket_id = ? AND seq = ?",
                    (event.ticket_id, event.seq),
                ).fetchone()
                if stored is None:
                    raise NotFoundError(f"no event {event.ticket_id}/{event.seq} is stored")
                check_same_event(_decoded(event_from_dict, stored[0], "event"), event)
                conn.execute(
                    "UPDATE events SET body = ? WHERE ticket_id = ? AND seq = ? AND type = ?", row
                )
            for delivery_row in delivery_rows:
                owner = conn.execute(
                    "SELECT ticket_id FROM outbox WHERE id = ?", (delivery_row[0],)
                ).fetchone()
                if owner is None:
                    raise NotFoundError(f"no delivery with id {delivery_row[0]!r:.80}")
                if owner[0] != delivery_row[1]:
                    raise ValidationError(f"delivery {delivery_row[0]!r} cannot change ticket")
                conn.execute(
                    "UPDATE outbox SET state = ?, next_attempt_us = ?, claimed_until_us = ?, "
                    "claimed_by = ?, updated_us = ?, body = ? WHERE id = ?",
                    (*delivery_row[2:], delivery_row[0]),
                )
            for receipt_row in receipt_rows:
                found = conn.execute(
                    "UPDATE inbox SET state = ?, received_us = ?, body = ? WHERE key = ?",
                    (*receipt_row[1:], receipt_row[0]),
                )
                if found.rowcount != 1:
                    raise NotFoundError(f"no inbound message with key {receipt_row[0]!r:.200}")

    def receipts_of(self, ticket_id: str) -> list[Receipt]:
        """The receipts of the messages that made or commented on ``ticket_id``, by key."""
        wanted = check_text(ticket_id, "a ticket id")
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT body FROM inbox WHERE json_extract(body, '$.ticket_id') = ? ORDER BY key",
                (wanted,),
            ).fetchall()
        return [_decode(row[0]) for row in rows]

    def blobs_in_use(self, sha256s: Sequence[str]) -> frozenset[str]:
        """Those of ``sha256s`` an attachment of a stored event refers to (the events' JSON
        holds each attachment's hex SHA-256, which matches nothing else)."""
        wanted = sorted({check_text(s, "a SHA-256") for s in sha256s})
        used = set()
        with self._connection() as conn:
            for sha in wanted:
                if not sha.isascii() or not sha.isalnum():
                    continue  # not a SHA-256: no attachment refers to it
                row = conn.execute(
                    "SELECT 1 FROM events WHERE instr(body, ?) > 0 LIMIT 1", (f'"{sha}"',)
                ).fetchone()
                if row is not None:
                    used.add(sha)
        return frozenset(used)

    def compact(self) -> None:
        """The cleanup step: checkpoint the write-ahead log, ``VACUUM`` (the file is rebuilt
        from its live rows only), then checkpoint again and truncate the log to zero bytes.
        After it, rewritten and purged content is in neither the file nor its ``-wal``.
        StoreError when another connection keeps the log from being truncated (a reader in
        another process): run it again when the desk is idle."""
        with self._connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy is None or busy[0] != 0:
            raise StoreError(
                f"{self.path}: another connection kept the write-ahead log from being "
                "truncated; run the cleanup again when no other process reads the file"
            )

    def purge_tickets(self, ticket_ids: Sequence[str]) -> list[str]:
        """Delete these tickets with their events, timer states, deliveries and receipts."""
        wanted = {check_text(t, "a ticket id") for t in ticket_ids}
        gone: list[str] = []
        with self._secure_transaction() as conn:
            # Positions and numbers are given as the highest stored plus one: the tickets
            # holding the last position and the highest number stay (see the Purge port).
            wanted -= {row[0] for row in conn.execute(_HIGHEST).fetchall()}
            ordered = sorted(wanted)
            for start in range(0, len(ordered), _PER_QUERY):
                chunk = ordered[start : start + _PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                gone.extend(
                    row[0]
                    for row in conn.execute(
                        f"SELECT id FROM tickets WHERE id IN ({marks})", chunk
                    ).fetchall()
                )
                for statement in (
                    f"DELETE FROM ticket_tags WHERE ticket_id IN ({marks})",
                    f"DELETE FROM events WHERE ticket_id IN ({marks})",
                    f"DELETE FROM outbox WHERE ticket_id IN ({marks})",
                    f"DELETE FROM inbox WHERE json_extract(body, '$.ticket_id') IN ({marks})",
                ):
                    conn.execute(statement, chunk)
                conn.execute(f"DELETE FROM tickets WHERE id IN ({marks})", chunk)
        return sorted(gone)
