"""The PostgreSQL store's due claims: sweep workers leasing the tickets due for an SLA check.

A mixin of :class:`~helpkit.stores.postgres.store.PostgresStore` (capability ``due_claims``,
:class:`helpkit.ports.DueClaims`); it uses the store's connections.

A claim runs in one transaction, in two statements (then a read of the tickets claimed: whole,
:meth:`DueClaimsMixin.claim_due`, or as timer rows, :meth:`DueClaimsMixin.claim_due_timers`):

1. :data:`DUE_CANDIDATES` walks the ``tickets_next_check`` index from the earliest check and
   locks due tickets that no committed claim holds, ``FOR NO KEY UPDATE SKIP LOCKED``: workers
   claiming at once each lock different tickets, and none waits for another.
2. :data:`TAKE` writes the claims of those candidates with ``INSERT ... ON CONFLICT DO
   UPDATE ... WHERE`` the existing claim has lapsed, which PostgreSQL judges on the latest
   committed row, not on the statement's snapshot.

The second step is what makes a claim exclusive. The first one reads under its statement's
snapshot: a worker that locks a ticket just after another worker's claim of it committed
(its lock then released) does not see that claim yet, and takes the ticket as a candidate.
The second step then finds the committed claim and leaves the ticket out. When that leaves
nothing, the claim looks again (a new statement, which sees the claims committed since).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final

import psycopg

from helpkit._checks import check_text
from helpkit._time import to_utc
from helpkit.errors import ValidationError
from helpkit.ports import DueTimer
from helpkit.stores.contract import check_limit
from helpkit.stores.postgres.timer_rows import DUE_COLUMNS
from helpkit.stores.sqlite.encoding import _micros
from helpkit.stores.sqlite.timer_rows import due_timer
from helpkit.tickets import Ticket

__all__ = ["DUE_CANDIDATES", "TAKE", "DueClaimsMixin"]

DUE_CANDIDATES: Final = (
    "SELECT t.id FROM tickets t "
    "WHERE t.next_check_us IS NOT NULL AND t.next_check_us <= %s "
    "AND NOT EXISTS (SELECT 1 FROM due_claims c "
    "WHERE c.ticket_id = t.id AND c.claimed_until_us > %s) "
    "ORDER BY t.next_check_us, t.id LIMIT %s "
    "FOR NO KEY UPDATE OF t SKIP LOCKED"
)
"""Due tickets no committed claim holds, earliest check first (parameters: now, now, limit),
locked for the claiming transaction; those another worker's claim has locked are skipped."""

TAKE: Final = (
    "INSERT INTO due_claims (ticket_id, claimed_by, claimed_until_us) "
    "SELECT unnest(%s::text[]), %s, %s "
    "ON CONFLICT (ticket_id) DO UPDATE "
    "SET claimed_by = excluded.claimed_by, claimed_until_us = excluded.claimed_until_us "
    "WHERE due_claims.claimed_until_us <= %s "
    "RETURNING ticket_id"
)
"""Claim the candidates whose claim is missing or lapsed (parameters: ids, owner, until,
now); returns those it claimed."""

_CLAIMED: Final = (
    "SELECT t.id, t.seq, t.state, k.state FROM tickets t "
    "LEFT JOIN timer_states k ON k.ticket_id = t.id "
    "WHERE t.id = ANY(%s) ORDER BY t.next_check_us, t.id"
)

_CLAIMED_TIMERS: Final = f"SELECT {DUE_COLUMNS} WHERE t.id = ANY(%s) ORDER BY t.next_check_us, t.id"

_ATTEMPTS: Final = 8  # looks for candidates per claim: each one sees the claims committed before


class DueClaimsMixin:
    """The due claims of a PostgreSQL store (a mixin of ``PostgresStore``)."""

    def _transaction(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _ticket(self, row: tuple[Any, ...]) -> Ticket:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def claim_due(
        self, *, owner: str, now: datetime, until: datetime, limit: int
    ) -> tuple[list[Ticket], list[str | None]]:
        """Claim up to ``limit`` due tickets no one holds for ``owner`` until ``until``."""
        rows = self._claim(_CLAIMED, owner, now, until, limit)
        return [self._ticket(row[:3]) for row in rows], [row[3] for row in rows]

    def claim_due_timers(
        self, *, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[DueTimer]:
        """:meth:`claim_due`, the tickets claimed read as timer rows
        (:class:`helpkit.ports.DueTimerClaims`)."""
        return [due_timer(row) for row in self._claim(_CLAIMED_TIMERS, owner, now, until, limit)]

    def _claim(
        self, read: str, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[tuple[Any, ...]]:
        """Claim up to ``limit`` due tickets no one holds for ``owner`` until ``until``, and
        read them with ``read`` (parameter: their ids), in the claim's transaction."""
        check_text(owner, "owner")
        at_us = _micros(to_utc(now, "now"))
        until_us = _micros(to_utc(until, "until"))
        check_limit(limit)
        with self._transaction() as cur:
            taken: list[str] = []
            for _ in range(_ATTEMPTS):
                candidates = [
                    str(row[0])
                    for row in cur.execute(DUE_CANDIDATES, (at_us, at_us, limit)).fetchall()
                ]
                if not candidates:
                    break
                taken = [
                    str(row[0])
                    for row in cur.execute(TAKE, (candidates, owner, until_us, at_us)).fetchall()
                ]
                if taken:
                    break
            return cur.execute(read, (taken,)).fetchall() if taken else []

    def release_due(self, ticket_ids: Sequence[str], *, owner: str) -> int:
        """Release ``owner``'s claims on ``ticket_ids``; how many were released."""
        check_text(owner, "owner")
        if isinstance(ticket_ids, str):
            raise ValidationError("release_due takes a sequence of ticket ids, not one id")
        ids = [check_text(ticket_id, "ticket id") for ticket_id in ticket_ids]
        if not ids:
            return 0
        with self._transaction() as cur:
            return cur.execute(
                "DELETE FROM due_claims WHERE ticket_id = ANY(%s) AND claimed_by = %s",
                (ids, owner),
            ).rowcount
