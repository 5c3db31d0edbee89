"""The SQLite store's change feed and outbox: the positions of committed events, the
consumers' cursors, and the deliveries the relay derives from them.

A mixin of :class:`~helpkit.stores.sqlite.store.SqliteStore`, kept apart because it is a
capability of its own (``change_feed``, ``outbox``); it uses the store's connections.
Positions are given inside each commit, under the write lock (see ``SqliteStore.commit``);
claims, settlements and enqueues are write transactions, so concurrent relays in several
processes never hold one delivery at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Final

from helpkit import serialize
from helpkit._checks import check_text
from helpkit._records import replace
from helpkit._time import to_utc
from helpkit.errors import (
    ConflictError,
    NotFoundError,
    SchemaError,
    ValidationError,
)
from helpkit.ports import Change, Delivery, DeliveryState
from helpkit.stores.contract import (
    check_cursor,
    check_delivery,
    check_limit,
    check_position,
    claimed_deliveries,
    feed_bounded,
    revive_delivery,
)
from helpkit.stores.sqlite.encoding import EventTexts, _micros

__all__ = ["CLAIM_DUE", "LAST_POSITION", "FeedAndOutbox"]

LAST_POSITION: Final = "SELECT coalesce(max(position), 0) FROM events"
"""The highest position committed (0 for none)."""

CLAIM_DUE: Final = (
    "SELECT body FROM outbox INDEXED BY outbox_due "
    "WHERE state = 'pending' AND next_attempt_us <= ? "
    "AND (claimed_until_us IS NULL OR claimed_until_us <= ?) "
    "ORDER BY next_attempt_us, id LIMIT ?"
)
"""The due, unheld pending deliveries, oldest first (parameters: now, now, limit).

Through ``outbox_due``, which holds the pending deliveries in claim order: the claim reads
the first ``limit`` of them. Left to itself (no statistics), SQLite's planner takes
``outbox_state`` for ``state = ?`` instead, then reads and sorts every pending delivery at
each claim: a backlog of 10,000 cost 57 ms a claim of 200 (bench/bench_relay.py).
"""

_CLAIM_JSON: Final = (
    "UPDATE outbox SET claimed_until_us = ?, claimed_by = ?, updated_us = ?, "
    "body = json_set(body, '$.claimed_by', ?, '$.claimed_until', ?, '$.claims', ?, "
    "'$.updated_at', ?) WHERE id = ?"
)
"""A claim written into a delivery's stored text (parameters: the columns, then the body's
values as the codec writes them: owner, claimed_until and updated_at as UTC ISO text, claims).
"""

_SETTLE_JSON: Final = (
    "UPDATE outbox SET state = ?, next_attempt_us = ?, claimed_until_us = NULL, "
    "claimed_by = NULL, updated_us = ?, body = json_set(body, '$.state', ?, '$.attempts', ?, "
    "'$.next_attempt_at', ?, '$.claimed_by', NULL, '$.claimed_until', NULL, "
    "'$.last_error', ?, '$.external_id', ?, '$.updated_at', ?) "
    "WHERE id = ? AND claimed_by = ? AND state = 'pending'"
)
"""A result settled into a delivery's stored text: the fields an attempt changes (state,
attempts, next attempt, error, external id, updated_at; instants as the codec writes them),
the claim cleared."""


def _settled(result: Delivery, owner: str) -> tuple[object, ...]:
    """The parameters of :data:`_SETTLE_JSON` for ``result``."""
    state = result.state.value
    next_at, updated = result.next_attempt_at, result.updated_at
    return (
        state,
        _micros(next_at),
        _micros(updated),
        state,
        result.attempts,
        next_at.isoformat(),
        result.last_error,
        result.external_id,
        updated.isoformat(),
        result.id,
        owner,
    )


_HAS_JSON = True
"""Whether SQLite has its JSON functions (built in since 3.38; an older build may lack them:
the first claim that finds them missing turns this off, and claims encode in Python)."""


def _no_json() -> None:
    global _HAS_JSON
    _HAS_JSON = False


_INSERT_DELIVERY: Final = (
    "INSERT INTO outbox (id, ticket_id, state, next_attempt_us, claimed_until_us, "
    "claimed_by, updated_us, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)
"""A new delivery (an id already there is left as it is)."""


def _move_cursor(conn: sqlite3.Connection, cursor: str, position: int, expected: int) -> None:
    """Move ``cursor`` from ``expected`` to ``position`` (inside a write transaction)."""
    last = conn.execute(LAST_POSITION).fetchone()[0]
    if position > last:
        raise ValidationError(f"position {position} is beyond the last committed one ({last})")
    row = conn.execute("SELECT position FROM cursors WHERE name = ?", (cursor,)).fetchone()
    stored = 0 if row is None else int(row[0])
    if stored != expected:
        raise ConflictError(
            f"cursor {cursor!r} is at {stored}, not {expected}: another relay moved it"
        )
    conn.execute(
        "INSERT INTO cursors (name, position) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        (cursor, position),
    )


def _encode_delivery(
    delivery: Delivery,
) -> tuple[str, str, str, int, int | None, str | None, int, str]:
    claimed_until = None if delivery.claimed_until is None else _micros(delivery.claimed_until)
    return (
        delivery.id,
        delivery.ticket_id,
        delivery.state.value,
        _micros(delivery.next_attempt_at),
        claimed_until,
        delivery.claimed_by,
        _micros(delivery.updated_at),
        serialize.dumps(delivery),
    )


def _decode_delivery(text: str) -> Delivery:
    try:
        return serialize.loads(Delivery, text)
    except (SchemaError, ValidationError) as exc:
        raise SchemaError(
            f"stored delivery cannot be read ({exc}): the file was changed outside helpkit "
            "or is damaged"
        ) from exc


class FeedAndOutbox:
    """The change feed and the outbox of an SQLite store (a mixin of ``SqliteStore``)."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    _events: EventTexts  # SqliteStore's

    # ------------------------------------------------------------ change feed

    def changes(self, *, after: int = 0, limit: int = 1000) -> list[Change]:
        """Committed events with a position above ``after``, in order, at most ``limit``."""
        check_position(after, "after")
        check_limit(limit)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT position, body FROM events WHERE position > ? ORDER BY position LIMIT ?",
                (after, limit),
            ).fetchall()
        event = self._events.event  # what this store object committed, not decoded again
        return [Change(row[0], event(row[1])) for row in rows]

    def last_position(self) -> int:
        """The highest position committed so far (0 when nothing was)."""
        with self._connection() as conn:
            last: int = conn.execute(LAST_POSITION).fetchone()[0]
        return last

    def cursor(self, name: str) -> int:
        """The position saved under ``name`` (0 if none was)."""
        check_cursor(name)
        with self._connection() as conn:
            row = conn.execute("SELECT position FROM cursors WHERE name = ?", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def cursors(self) -> dict[str, int]:
        """Every saved cursor, by name."""
        with self._connection() as conn:
            rows = conn.execute("SELECT name, position FROM cursors ORDER BY name").fetchall()
        return {str(name): int(position) for name, position in rows}

    def save_cursor(self, name: str, position: int, *, expected: int | None = None) -> None:
        """Save ``position`` under ``name`` (only if it still holds ``expected``, if given)."""
        check_cursor(name)
        check_position(position)
        if expected is not None:
            check_position(expected, "expected")
        with self._transaction() as conn:
            last = conn.execute(LAST_POSITION).fetchone()[0]
            if position > last and feed_bounded(name):
                raise ValidationError(
                    f"position {position} is beyond the last committed one ({last})"
                )
            row = conn.execute("SELECT position FROM cursors WHERE name = ?", (name,)).fetchone()
            stored = 0 if row is None else int(row[0])
            if expected is not None and stored != expected:
                raise ConflictError(
                    f"cursor {name!r} is at {stored}, not {expected}: another consumer moved it"
                )
            conn.execute(
                "INSERT INTO cursors (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

    # ------------------------------------------------------------ outbox

    def enqueue(
        self,
        deliveries: Sequence[Delivery],
        *,
        cursor: str,
        position: int,
        expected: int,
        checked: bool = False,
    ) -> int:
        """Add the new deliveries and move ``cursor`` from ``expected`` to ``position``."""
        check_cursor(cursor)
        check_position(position)
        check_position(expected, "expected")
        rows = [_encode_delivery(check_delivery(d, checked=checked)) for d in deliveries]
        with self._transaction() as conn:
            _move_cursor(conn, cursor, position, expected)
            before = conn.total_changes
            conn.executemany(_INSERT_DELIVERY, rows)
            return conn.total_changes - before

    def enqueue_claimed(
        self,
        deliveries: Sequence[Delivery],
        *,
        cursor: str,
        position: int,
        expected: int,
        owner: str,
        until: datetime,
        checked: bool = False,
    ) -> list[Delivery]:
        """:meth:`enqueue`, the new deliveries stored claimed by ``owner`` until ``until``;
        the deliveries added, as stored."""
        held = claimed_deliveries(
            deliveries,
            cursor=cursor,
            position=position,
            expected=expected,
            owner=owner,
            until=until,
            checked=checked,
        )
        rows = [_encode_delivery(d) for d in held]
        with self._transaction() as conn:
            _move_cursor(conn, cursor, position, expected)
            conn.execute("SAVEPOINT enqueue_claimed")
            before = conn.total_changes
            conn.executemany(_INSERT_DELIVERY, rows)
            if conn.total_changes - before == len(rows):
                conn.execute("RELEASE enqueue_claimed")
                return held
            # Some were there already (the cursor was moved back over events derived before):
            # inserted again one by one, to keep only those this transaction added.
            conn.execute("ROLLBACK TO enqueue_claimed")
            added = [
                delivery
                for delivery, row in zip(held, rows, strict=True)
                if conn.execute(_INSERT_DELIVERY, row).rowcount > 0
            ]
            conn.execute("RELEASE enqueue_claimed")
        return added

    def claim(self, *, owner: str, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` due, unheld pending deliveries for ``owner`` until ``until``."""
        check_text(owner, "owner")
        at, held_until = to_utc(now, "now"), to_utc(until, "until")
        check_limit(limit)
        at_us = _micros(at)
        with self._transaction() as conn:
            rows = conn.execute(CLAIM_DUE, (at_us, at_us, limit)).fetchall()
            claimed = []
            for (text,) in rows:
                found = _decode_delivery(text)
                claimed.append(
                    replace(
                        found,
                        claimed_by=owner,
                        claimed_until=held_until,
                        claims=found.claims + 1,
                        updated_at=at,
                    )
                )
            until_us = _micros(held_until)
            if _HAS_JSON:
                # The claim's four fields written into the stored text by SQLite (the text
                # the codec wrote, with these values as the codec writes them), instead of
                # encoding each delivery again.
                until_text, at_text = held_until.isoformat(), at.isoformat()
                try:
                    conn.executemany(
                        _CLAIM_JSON,
                        [
                            (
                                until_us,
                                owner,
                                at_us,
                                owner,
                                until_text,
                                held.claims,
                                at_text,
                                held.id,
                            )
                            for held in claimed
                        ],
                    )
                    return claimed
                except sqlite3.OperationalError as exc:  # an SQLite built without JSON
                    if "json_set" not in str(exc):
                        raise
                    _no_json()
            conn.executemany(
                "UPDATE outbox SET claimed_until_us = ?, claimed_by = ?, updated_us = ?, "
                "body = ? WHERE id = ?",
                [(until_us, owner, at_us, serialize.dumps(held), held.id) for held in claimed],
            )
        return claimed

    def settle(self, results: Sequence[Delivery], *, owner: str, checked: bool = False) -> int:
        """Store the results of deliveries ``owner`` still holds, and release them."""
        check_text(owner, "owner")
        valid = [check_delivery(d, checked=checked) for d in results]
        if not valid:
            with self._connection():
                return 0
        with self._transaction() as conn:
            return self._settle_in(conn, valid, owner)

    def _settle_in(self, conn: sqlite3.Connection, valid: Sequence[Delivery], owner: str) -> int:
        """:meth:`settle` of checked results in the transaction of ``conn``."""
        if _HAS_JSON:
            # The attempt's fields written into the stored text by SQLite (the other
            # fields are the claimed delivery's, as stored), instead of encoding each
            # delivery again.
            try:
                cursor = conn.executemany(_SETTLE_JSON, [_settled(r, owner) for r in valid])
                return max(cursor.rowcount, 0)
            except sqlite3.OperationalError as exc:  # an SQLite built without JSON
                if "json_set" not in str(exc):
                    raise
                _no_json()
        rows = []
        for result in valid:
            row = _encode_delivery(replace(result, claimed_by=None, claimed_until=None))
            rows.append((row[2], row[3], row[6], row[7], row[0], owner))
        cursor = conn.executemany(
            "UPDATE outbox SET state = ?, next_attempt_us = ?, claimed_until_us = NULL, "
            "claimed_by = NULL, updated_us = ?, body = ? "
            "WHERE id = ? AND claimed_by = ? AND state = 'pending'",
            rows,
        )
        return max(cursor.rowcount, 0)

    def delivery(self, delivery_id: str) -> Delivery:
        """A delivery by id."""
        with self._connection() as conn:
            row = conn.execute("SELECT body FROM outbox WHERE id = ?", (delivery_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no delivery with id {delivery_id!r:.80}")
        return _decode_delivery(row[0])

    def deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        ticket_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries (of one state, of one ticket), by id, those after id ``after``."""
        check_limit(limit)
        if state is not None and not isinstance(state, DeliveryState):
            raise ValidationError(f"state must be a DeliveryState; got {state!r:.40}")
        clauses, params = [], []
        if state is not None:
            clauses.append("state = ?")
            params.append(state.value)
        if ticket_id is not None:
            clauses.append("ticket_id = ?")
            params.append(check_text(ticket_id, "ticket_id"))
        if after is not None:
            clauses.append("id > ?")
            params.append(check_text(after, "after"))
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT body FROM outbox {where}ORDER BY id LIMIT ?", (*params, limit)
            ).fetchall()
        return [_decode_delivery(row[0]) for row in rows]

    def revive(self, delivery_id: str, *, now: datetime) -> Delivery:
        """Make a dead delivery pending again, due at ``now``, its attempts and claims reset."""
        at = to_utc(now, "now")
        with self._transaction() as conn:
            row = conn.execute("SELECT body FROM outbox WHERE id = ?", (delivery_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no delivery with id {delivery_id!r:.80}")
            found = _decode_delivery(row[0])
            revived = revive_delivery(found, at)
            encoded = _encode_delivery(revived)
            conn.execute(
                "UPDATE outbox SET state = ?, next_attempt_us = ?, claimed_until_us = NULL, "
                "claimed_by = NULL, updated_us = ?, body = ? WHERE id = ?",
                (encoded[2], encoded[3], encoded[6], encoded[7], revived.id),
            )
        return revived

    def purge(self, *, sent_before: datetime) -> int:
        """Forget the deliveries sent before ``sent_before``."""
        before = _micros(to_utc(sent_before, "sent_before"))
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM outbox WHERE state = 'sent' AND updated_us < ?", (before,)
            )
            return cursor.rowcount
