"""Redaction and purge for the PostgreSQL store (:class:`helpkit.ports.Redaction`,
:class:`helpkit.ports.Purge`).

Rewrites and purges are ``UPDATE`` and ``DELETE`` statements in one transaction: every read
returns the new rows at once. PostgreSQL's MVCC keeps the old row versions (dead tuples) in
the table's pages until ``VACUUM`` reclaims them, and its write-ahead log, base backups and
replicas keep what they hold; :meth:`PrivacyMixin.compact` runs ``VACUUM`` on the tables that
hold text (see the page *Privacy* for what that does and does not guarantee).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

import psycopg

from helpkit._checks import check_text
from helpkit.errors import NotFoundError, ValidationError
from helpkit.events import Event, event_from_dict, event_to_dict
from helpkit.ports import Delivery, Receipt
from helpkit.stores.contract import check_delivery, check_rewritten_event, check_same_event
from helpkit.stores.postgres.feed import _encode_delivery
from helpkit.stores.postgres.inbox import _decode, _row
from helpkit.stores.postgres.schema import FEED_LOCK
from helpkit.stores.sqlite.encoding import _decoded, _dumps

__all__ = ["COMPACTED_TABLES", "PrivacyMixin"]

COMPACTED_TABLES: Final = ("events", "outbox", "inbox", "tickets", "timer_states", "contacts")
"""The tables :meth:`PrivacyMixin.compact` vacuums: those that hold text a redaction, an
erasure or a purge rewrites or deletes."""

_HIGHEST: Final = (
    "SELECT ticket_id FROM events WHERE position = (SELECT max(position) FROM events) "
    "UNION SELECT id FROM tickets WHERE number = (SELECT max(number) FROM tickets)"
)


class PrivacyMixin:
    """The store's rewrites, purges and cleanup step (a mixin of ``PostgresStore``)."""

    def _reading(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _transaction(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _forget(self, ticket_ids: Sequence[str]) -> None:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

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
            bodies = [_dumps(event_to_dict(e)) for e in new_events]
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"an event cannot be stored: {exc}") from exc
        delivery_rows = [_encode_delivery(check_delivery(d)) for d in deliveries]
        receipt_rows = []
        for receipt in receipts:
            if not isinstance(receipt, Receipt):
                raise ValidationError(f"rewrite takes receipts; got {receipt!r:.60}")
            receipt_rows.append(_row(receipt))
        with self._transaction() as cur:
            for event, body in zip(new_events, bodies, strict=True):
                stored = cur.execute(
                    "SELECT body FROM events WHERE ticket_id = %s AND seq = %s FOR UPDATE",
                    (event.ticket_id, event.seq),
                ).fetchone()
                if stored is None:
                    raise NotFoundError(f"no event {event.ticket_id}/{event.seq} is stored")
                check_same_event(_decoded(event_from_dict, stored[0], "event"), event)
                cur.execute(
                    "UPDATE events SET body = %s WHERE ticket_id = %s AND seq = %s",
                    (body, event.ticket_id, event.seq),
                )
            for row in delivery_rows:
                owner = cur.execute(
                    "SELECT ticket_id FROM outbox WHERE id = %s FOR UPDATE", (row[0],)
                ).fetchone()
                if owner is None:
                    raise NotFoundError(f"no delivery with id {row[0]!r:.80}")
                if owner[0] != row[1]:
                    raise ValidationError(f"delivery {row[0]!r} cannot change ticket")
                cur.execute(
                    "UPDATE outbox SET state = %s, next_attempt_us = %s, claimed_until_us = %s, "
                    "claimed_by = %s, updated_us = %s, body = %s WHERE id = %s",
                    (*row[2:], row[0]),
                )
            for receipt_row in receipt_rows:
                cur.execute(
                    "UPDATE inbox SET state = %s, received_us = %s, body = %s WHERE key = %s",
                    (*receipt_row[1:], receipt_row[0]),
                )
                if cur.rowcount != 1:
                    raise NotFoundError(f"no inbound message with key {receipt_row[0]!r:.200}")

    def receipts_of(self, ticket_id: str) -> list[Receipt]:
        """The receipts of the messages that made or commented on ``ticket_id``, by key."""
        wanted = check_text(ticket_id, "a ticket id")
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT body FROM inbox WHERE (body::json ->> 'ticket_id') = %s ORDER BY key",
                (wanted,),
            ).fetchall()
        return [_decode(row[0]) for row in rows]

    def blobs_in_use(self, sha256s: Sequence[str]) -> frozenset[str]:
        """Those of ``sha256s`` an attachment of a stored event refers to."""
        wanted = sorted({check_text(s, "a SHA-256") for s in sha256s})
        used = set()
        with self._reading() as cur:
            for sha in wanted:
                if not sha.isascii() or not sha.isalnum():
                    continue  # not a SHA-256: no attachment refers to it
                row = cur.execute(
                    "SELECT 1 FROM events WHERE strpos(body, %s) > 0 LIMIT 1", (f'"{sha}"',)
                ).fetchone()
                if row is not None:
                    used.add(sha)
        return frozenset(used)

    def compact(self) -> None:
        """The cleanup step: ``VACUUM`` the tables that hold text (:data:`COMPACTED_TABLES`),
        so the dead row versions rewrites and deletes left are removed from their pages and
        indexes. It does not rewrite the files (``VACUUM FULL`` does, under an exclusive
        lock), nor reach the write-ahead log, backups or replicas."""
        with self._reading() as cur:
            for table in COMPACTED_TABLES:
                cur.execute(f"VACUUM {table}")

    def purge_tickets(self, ticket_ids: Sequence[str]) -> list[str]:
        """Delete these tickets with their events, timer states, claims, deliveries and
        receipts (the tickets holding the last feed position and the highest number stay)."""
        wanted = {check_text(t, "a ticket id") for t in ticket_ids}
        if not wanted:
            return []
        with self._transaction() as cur:
            # Serialized with the commits that give positions (they take the same lock).
            cur.execute(FEED_LOCK)
            wanted -= {row[0] for row in cur.execute(_HIGHEST).fetchall()}
            ids = sorted(wanted)
            for statement in (
                "DELETE FROM ticket_tags WHERE ticket_id = ANY(%s)",
                "DELETE FROM events WHERE ticket_id = ANY(%s)",
                "DELETE FROM timer_states WHERE ticket_id = ANY(%s)",
                "DELETE FROM due_claims WHERE ticket_id = ANY(%s)",
                "DELETE FROM outbox WHERE ticket_id = ANY(%s)",
                "DELETE FROM inbox WHERE (body::json ->> 'ticket_id') = ANY(%s)",
            ):
                cur.execute(statement, (ids,))
            gone = sorted(
                row[0]
                for row in cur.execute(
                    "DELETE FROM tickets WHERE id = ANY(%s) RETURNING id", (ids,)
                ).fetchall()
            )
        self._forget(gone)
        return gone
