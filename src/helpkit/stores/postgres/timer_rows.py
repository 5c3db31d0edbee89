"""The PostgreSQL store's narrow reads and writes for the sweep (:class:`helpkit.ports.TimerRows`).

:meth:`TimerRowsMixin.due_timers` reads the due tickets' columns and kept timer states, not
their JSON states (nothing sent to the client, nothing decoded); so does a claim of due
tickets as timer rows (``claim_due_timers`` of
:class:`~helpkit.stores.postgres.claims.DueClaimsMixin`, with :data:`DUE_COLUMNS`).
:meth:`TimerRowsMixin.commit_timers` writes a change that records only timer events (SLA
warnings and breaches, which move nothing but ``seq`` and ``updated_at`` of the ticket) for a
whole batch of tickets in one transaction of two round trips:

1. one ``UPDATE`` of every ticket's moved columns, guarded by its expected seq, with its JSON
   state patched on the server (:data:`_PATCHED`: the top-level members ``seq``,
   ``updated_at``, ``sla_policy``, ``next_deadline`` and ``next_check`` replaced, every other
   byte of the stored text kept; a member missing is added at the end, as SQLite's
   ``json_set`` does), and one upsert of their kept timer states; the count of tickets
   updated is read, and a ticket not at its seq rolls everything back (ConflictError);
2. the feed lock, the events (numbered after the last position), the notification of a
   waiting consumer, and the ``COMMIT``.

No ticket is encoded or decoded in Python. The text patched is what
:meth:`~helpkit.stores.postgres.store.PostgresStore.commit` of the same events and state
would store: the codec writes every member of a ticket, in the order of its fields, and the
five members' new values are written here as the codec writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final

import psycopg

from helpkit._codec.text import dumps_unescaped as _dumps_unescaped
from helpkit.errors import ConflictError, ValidationError
from helpkit.ports import DueTimer, TimerUpdate
from helpkit.stores.postgres.feed import INSERT_EVENTS, events_json
from helpkit.stores.postgres.schema import FEED_LOCK
from helpkit.stores.postgres.wakeup import NOTIFY
from helpkit.stores.sqlite.encoding import _NONE_LAST, _dumps, _micros
from helpkit.stores.sqlite.timer_rows import (
    due_cursor,
    due_instant,
    due_page,
    iso_text,
    timer_event_rows,
)

__all__ = ["DUE_COLUMNS", "TimerRowsMixin"]


# "plain": the next event changes only seq and updated_at of the stored state (helpkit.fold
# pins a missing requester / assignment / unassignment instant at a ticket's next event).
_PLAIN: Final = (
    "((t.state::json ->> 'requester_updated_at') IS NOT NULL AND "
    "(CASE WHEN t.assignee_id IS NULL THEN t.state::json ->> 'unassigned_at' "
    "ELSE t.state::json ->> 'assigned_at' END) IS NOT NULL)"
)
DUE_COLUMNS: Final = (
    "t.id, t.seq, t.updated_us, t.sla_policy, t.next_deadline_us, t.next_check_us, "
    f"k.state, {_PLAIN} "
    "FROM tickets t LEFT JOIN timer_states k ON k.ticket_id = t.id"
)
"""What a due timer row is read from (the ``SELECT`` list and ``FROM``, aliases ``t`` and
``k``): the columns :func:`helpkit.stores.sqlite.timer_rows.due_timer` takes."""
_DUE: Final = f"SELECT {DUE_COLUMNS} WHERE t.next_check_us IS NOT NULL AND t.next_check_us <= %s"

# The members the update replaces, in the order of the values it is given.
_MEMBERS: Final = ("seq", "updated_at", "sla_policy", "next_deadline", "next_check")
_PATCHED: Final = (
    "(SELECT '{' || string_agg(to_json(e.key)::text || ':' || CASE e.key "
    + " ".join(f"WHEN '{member}' THEN u.{member}" for member in _MEMBERS)
    + " ELSE e.value::text END, ',' ORDER BY e.n) "
    + " ".join(
        f"|| CASE WHEN bool_or(e.key = '{member}') THEN '' "
        f"""ELSE ',"{member}":' || u.{member} END"""
        for member in _MEMBERS
    )
    + " || '}' FROM json_each(t.state::json) WITH ORDINALITY AS e(key, value, n))"
)
"""The stored JSON state with the members of ``_MEMBERS`` replaced by ``u``'s JSON texts (one
parse of the state; each other member's text as stored)."""
_UPDATE: Final = (
    "WITH updated AS (UPDATE tickets AS t SET seq = u.new_seq, updated_us = u.updated_us, "
    "next_check_us = u.check_us, next_deadline_us = u.deadline_us, sla_policy = u.policy, "
    f"state = {_PATCHED} "
    "FROM json_to_recordset(%s::json) AS u(id text, expected bigint, new_seq bigint, "
    "updated_us bigint, check_us bigint, deadline_us bigint, policy text, "
    f"{', '.join(f'{member} text' for member in _MEMBERS)}) "
    "WHERE t.id = u.id AND t.seq = u.expected RETURNING 1) SELECT count(*) FROM updated"
)
"""The narrow update of every ticket of a batch (parameter: the JSON text of an array of one
object per ticket, :data:`_KEYS`); a ticket not at its expected seq (or gone) is not updated.
Returns how many were. (One JSON text, which the server parses once: psycopg would escape
every element of a text array in Python.)"""
_KEYS: Final = (
    "id",
    "expected",
    "new_seq",
    "updated_us",
    "check_us",
    "deadline_us",
    "policy",
    *_MEMBERS,
    "state",
)
_KEEP_STATES: Final = (
    "INSERT INTO timer_states (ticket_id, state) "
    "SELECT u.id, u.state FROM json_to_recordset(%s::json) AS u(id text, state text) "
    "ON CONFLICT (ticket_id) DO UPDATE SET state = excluded.state"
)


def _instant_json(value: datetime | None) -> str:
    """An instant's JSON text as the codec writes it (``null`` for None)."""
    return "null" if value is None else f'"{iso_text(value)}"'


class TimerRowsMixin:
    """:class:`helpkit.ports.TimerRows` for
    :class:`~helpkit.stores.postgres.store.PostgresStore` (a mixin)."""

    _channel: str

    def _reading(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def _pipelined(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def due_timers(
        self, now: datetime, *, limit: int, after: str | None = None
    ) -> tuple[list[DueTimer], str | None]:
        """See :meth:`helpkit.ports.TimerRows.due_timers` (the cursor is the last row's
        ``next_check`` in microseconds and its id)."""
        params: list[Any] = [due_instant(now, limit)]
        query = _DUE
        if after is not None:
            query += " AND (t.next_check_us, t.id) > (%s, %s)"
            params += due_cursor(after)
        query += " ORDER BY t.next_check_us, t.id LIMIT %s"
        params.append(limit + 1)
        with self._reading() as cur:
            return due_page(cur.execute(query, params).fetchall(), limit)

    def commit_timers(self, updates: Sequence[TimerUpdate]) -> None:
        """See :meth:`helpkit.ports.TimerRows.commit_timers` (the module says how)."""
        if isinstance(updates, TimerUpdate) or not isinstance(updates, Sequence):
            raise ValidationError(
                f"commit_timers takes a sequence of TimerUpdates; got {updates!r:.60}"
            )
        rows: list[dict[str, Any]] = []
        events: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        for update in updates:
            events.extend(timer_event_rows(update, seen))
            ticket_id = update.ticket_id
            seq = update.expected_seq + len(update.events)
            deadline, check = update.next_deadline, update.next_check
            values = (
                ticket_id,
                update.expected_seq,
                seq,
                _micros(update.updated_at),
                None if check is None else _micros(check),
                _NONE_LAST if deadline is None else _micros(deadline),
                update.sla_policy,
                # The members' JSON texts, as the codec writes them.
                str(seq),
                _instant_json(update.updated_at),
                _dumps(update.sla_policy),
                _instant_json(deadline),
                _instant_json(check),
                update.timer_state,
            )
            rows.append(dict(zip(_KEYS, values, strict=True)))
        if not seen:
            return
        text = _dumps_unescaped(rows)
        with self._pipelined() as conn:
            updated = conn.execute(_UPDATE, (text,))
            conn.execute(_KEEP_STATES, (text,))
            # Read before the feed lock is taken (it is held for as short as possible).
            row = updated.fetchone()
            written = 0 if row is None else int(row[0])
            if written != len(seen):
                # A ticket moved on (or is gone): nothing is written.
                raise ConflictError(
                    f"{len(seen) - written} of these tickets changed since they were read "
                    "(their seq is not the one expected). Reload and retry."
                )
            conn.execute(FEED_LOCK)
            conn.execute(INSERT_EVENTS, (events_json(events),))
            # Delivered to a waiting consumer when (and only if) this transaction commits.
            conn.execute(NOTIFY, (self._channel,))
