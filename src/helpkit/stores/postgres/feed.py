"""The PostgreSQL store's change feed and outbox: the positions of committed events, the
consumers' cursors, and the deliveries the relay derives from them.

A mixin of :class:`~helpkit.stores.postgres.store.PostgresStore`, kept apart because it is a
capability of its own (``change_feed``, ``outbox``); it uses the store's connections.

- Positions are given at the end of each commit, under the feed lock (``schema.FEED_LOCK``):
  see ``PostgresStore.commit`` and docs/postgresql.md for why a reader then never skips one.
- A cursor moves by compare-and-set (``UPDATE ... WHERE position = expected``, or an insert
  that fails when another consumer inserted first), so two consumers sharing a name cannot
  both move it from the same place.
- A claim selects due deliveries ``FOR UPDATE SKIP LOCKED``: relays claiming at once in
  several processes each take different deliveries, none waits for another's, and none takes
  one another holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final

import psycopg

from helpkit import serialize
from helpkit._checks import check_text
from helpkit._codec.text import dumps_unescaped as _dumps_unescaped
from helpkit._records import replace
from helpkit._time import to_utc
from helpkit.errors import (
    ConflictError,
    NotFoundError,
    SchemaError,
    ValidationError,
)
from helpkit.events import event_from_dict
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
from helpkit.stores.sqlite.encoding import _decoded, _micros

__all__ = [
    "CLAIM_DUE",
    "INSERT_EVENTS",
    "LAST_POSITION",
    "SETTLE",
    "FeedAndOutbox",
    "events_json",
    "settle_parameters",
]

LAST_POSITION: Final = "SELECT coalesce(max(position), 0) FROM events"
"""The highest position committed (0 for none): one step down the ``events_position`` index."""
INSERT_EVENTS: Final = (
    "INSERT INTO events (ticket_id, seq, type, at_us, actor, body, position) "
    "SELECT e.ticket_id, e.seq, e.type, e.at_us, e.actor, e.body, last.position + e.n "
    "FROM (SELECT coalesce(max(position), 0) AS position FROM events) AS last, "
    "ROWS FROM (json_to_recordset(%s::json) AS (ticket_id text, seq bigint, type text, "
    "at_us bigint, actor text, body text)) "
    "WITH ORDINALITY AS e(ticket_id, seq, type, at_us, actor, body, n)"
)
"""Append events (parameter: their :func:`events_json`), numbered in their order after the
last position committed: sent right after :data:`~helpkit.stores.postgres.schema.FEED_LOCK`,
in the transaction holding it, so the positions follow commit order. The events go as one
JSON text, which the server parses once (psycopg escapes each element of a text array in
Python, with regular expressions: most of a large batch's client time)."""
_EVENT_KEYS: Final = ("ticket_id", "seq", "type", "at_us", "actor", "body")


def events_json(rows: Iterable[Sequence[object]]) -> str:
    """The parameter of :data:`INSERT_EVENTS` for event rows ``(ticket_id, seq, type, at_us,
    actor, body)``, in their order."""
    return _dumps_unescaped([dict(zip(_EVENT_KEYS, row, strict=True)) for row in rows])


CLAIM_DUE: Final = (
    "SELECT body FROM outbox "
    "WHERE state = 'pending' AND next_attempt_us <= %s "
    "AND (claimed_until_us IS NULL OR claimed_until_us <= %s) "
    "ORDER BY next_attempt_us, id LIMIT %s "
    "FOR UPDATE SKIP LOCKED"
)
"""The due, unheld pending deliveries, oldest first (parameters: now, now, limit), locked for
the claiming transaction; those another relay's claim has locked right now are skipped."""

SETTLE: Final = (
    "UPDATE outbox SET state = %s, next_attempt_us = %s, "
    "claimed_until_us = NULL, claimed_by = NULL, updated_us = %s, body = %s "
    "WHERE id = %s AND claimed_by = %s AND state = 'pending'"
)
"""Store one result of a delivery the owner still holds, and release it (parameters:
:func:`settle_parameters`); a delivery the owner no longer holds is left as it is."""


def settle_parameters(result: Delivery, owner: str) -> tuple[object, ...]:
    """The parameters of :data:`SETTLE` for ``result`` (a checked delivery) of ``owner``."""
    row = _encode_delivery(replace(result, claimed_by=None, claimed_until=None))
    return (row[2], row[3], row[6], row[7], row[0], owner)


_SAVE_CURSOR: Final = (
    "INSERT INTO cursors (name, position) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)

_Row = tuple[str, str, str, int, int | None, str | None, int, str]


def _encode_delivery(delivery: Delivery) -> _Row:
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
            f"stored delivery cannot be read ({exc}): the schema was changed outside helpkit "
            "or is damaged"
        ) from exc


def _move_cursor(
    cur: psycopg.Cursor[Any], name: str, position: int, expected: int, who: str
) -> None:
    """Move cursor ``name`` from ``expected`` to ``position`` (compare-and-set), or raise
    ConflictError naming where it is."""
    moved = cur.execute(
        "UPDATE cursors SET position = %s WHERE name = %s AND position = %s",
        (position, name, expected),
    ).rowcount
    if not moved and expected == 0:
        # Never saved (a cursor never saved is at 0): the first insert wins.
        moved = cur.execute(
            "INSERT INTO cursors (name, position) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (name, position),
        ).rowcount
    if not moved:
        row = cur.execute("SELECT position FROM cursors WHERE name = %s", (name,)).fetchone()
        stored = 0 if row is None else int(row[0])
        raise ConflictError(f"cursor {name!r} is at {stored}, not {expected}: {who} moved it")


def _check_committed(cur: psycopg.Cursor[Any], position: int) -> None:
    last = cur.execute(LAST_POSITION).fetchone()
    if last is not None and position > last[0]:
        raise ValidationError(f"position {position} is beyond the last committed one ({last[0]})")


class FeedAndOutbox:
    """The change feed and the outbox of a PostgreSQL store (a mixin of ``PostgresStore``)."""

    def _reading(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _transaction(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    # ------------------------------------------------------------ change feed

    def changes(self, *, after: int = 0, limit: int = 1000) -> list[Change]:
        """Committed events with a position above ``after``, in order, at most ``limit``."""
        check_position(after, "after")
        check_limit(limit)
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT position, body FROM events WHERE position > %s ORDER BY position LIMIT %s",
                (after, limit),
            ).fetchall()
        return [Change(row[0], _decoded(event_from_dict, row[1], "event")) for row in rows]

    def last_position(self) -> int:
        """The highest position committed so far (0 when nothing was)."""
        with self._reading() as cur:
            row = cur.execute(LAST_POSITION).fetchone()
        return 0 if row is None else int(row[0])

    def cursor(self, name: str) -> int:
        """The position saved under ``name`` (0 if none was)."""
        check_cursor(name)
        with self._reading() as cur:
            row = cur.execute("SELECT position FROM cursors WHERE name = %s", (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def cursors(self) -> dict[str, int]:
        """Every saved cursor, by name."""
        with self._reading() as cur:
            rows = cur.execute("SELECT name, position FROM cursors ORDER BY name").fetchall()
        return {str(name): int(position) for name, position in rows}

    def save_cursor(self, name: str, position: int, *, expected: int | None = None) -> None:
        """Save ``position`` under ``name`` (only if it still holds ``expected``, if given)."""
        check_cursor(name)
        check_position(position)
        if expected is not None:
            check_position(expected, "expected")
        with self._transaction() as cur:
            if feed_bounded(name):
                _check_committed(cur, position)
            if expected is None:
                cur.execute(_SAVE_CURSOR, (name, position))
            else:
                _move_cursor(cur, name, position, expected, "another consumer")

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
        with self._transaction() as cur:
            _check_committed(cur, position)
            _move_cursor(cur, cursor, position, expected, "another relay")
            added = 0
            for row in rows:
                added += cur.execute(
                    "INSERT INTO outbox (id, ticket_id, state, next_attempt_us, "
                    "claimed_until_us, claimed_by, updated_us, body) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    row,
                ).rowcount
        return added

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
        added = []
        with self._transaction() as cur:
            _check_committed(cur, position)
            _move_cursor(cur, cursor, position, expected, "another relay")
            for delivery, row in zip(held, rows, strict=True):
                if cur.execute(
                    "INSERT INTO outbox (id, ticket_id, state, next_attempt_us, "
                    "claimed_until_us, claimed_by, updated_us, body) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    row,
                ).rowcount:
                    added.append(delivery)
        return added

    def claim(self, *, owner: str, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` due, unheld pending deliveries for ``owner`` until ``until``."""
        check_text(owner, "owner")
        at, held_until = to_utc(now, "now"), to_utc(until, "until")
        check_limit(limit)
        at_us = _micros(at)
        with self._transaction() as cur:
            rows = cur.execute(CLAIM_DUE, (at_us, at_us, limit)).fetchall()
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
            if claimed:
                cur.executemany(
                    "UPDATE outbox SET claimed_until_us = %s, claimed_by = %s, updated_us = %s, "
                    "body = %s WHERE id = %s",
                    [
                        (_micros(held_until), owner, at_us, serialize.dumps(held), held.id)
                        for held in claimed
                    ],
                )
        return claimed

    def settle(self, results: Sequence[Delivery], *, owner: str, checked: bool = False) -> int:
        """Store the results of deliveries ``owner`` still holds, and release them."""
        check_text(owner, "owner")
        valid = [check_delivery(d, checked=checked) for d in results]
        stored = 0
        with self._transaction() as cur:
            for result in valid:
                stored += cur.execute(SETTLE, settle_parameters(result, owner)).rowcount
        return stored

    def delivery(self, delivery_id: str) -> Delivery:
        """A delivery by id."""
        key: object = delivery_id
        with self._reading() as cur:
            row = (
                cur.execute("SELECT body FROM outbox WHERE id = %s", (key,)).fetchone()
                if isinstance(key, str) and "\x00" not in key
                else None
            )
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
        clauses: list[str] = []
        params: list[object] = []
        if state is not None:
            clauses.append("state = %s")
            params.append(state.value)
        if ticket_id is not None:
            clauses.append("ticket_id = %s")
            params.append(check_text(ticket_id, "ticket_id"))
        if after is not None:
            clauses.append("id > %s")
            params.append(check_text(after, "after"))
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        with self._reading() as cur:
            rows = cur.execute(
                f"SELECT body FROM outbox {where}ORDER BY id LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [_decode_delivery(row[0]) for row in rows]

    def revive(self, delivery_id: str, *, now: datetime) -> Delivery:
        """Make a dead delivery pending again, due at ``now``, its attempts and claims reset."""
        at = to_utc(now, "now")
        with self._transaction() as cur:
            row = cur.execute(
                "SELECT body FROM outbox WHERE id = %s FOR UPDATE", (delivery_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no delivery with id {delivery_id!r:.80}")
            found = _decode_delivery(row[0])
            revived = revive_delivery(found, at)
            encoded = _encode_delivery(revived)
            cur.execute(
                "UPDATE outbox SET state = %s, next_attempt_us = %s, claimed_until_us = NULL, "
                "claimed_by = NULL, updated_us = %s, body = %s WHERE id = %s",
                (encoded[2], encoded[3], encoded[6], encoded[7], revived.id),
            )
        return revived

    def purge(self, *, sent_before: datetime) -> int:
        """Forget the deliveries sent before ``sent_before``."""
        before = _micros(to_utc(sent_before, "sent_before"))
        with self._transaction() as cur:
            return cur.execute(
                "DELETE FROM outbox WHERE state = 'sent' AND updated_us < %s", (before,)
            ).rowcount
