"""The SQLite store's narrow reads and writes for the sweep (:class:`helpkit.ports.TimerRows`).

:meth:`TimerRowsMixin.due_timers` reads the due tickets' columns and kept timer states, not
their JSON states (nothing to decode). :meth:`TimerRowsMixin.commit_timers` writes a change
that records only timer events (SLA warnings and breaches, which move nothing but ``seq`` and
``updated_at`` of the ticket) as one ``UPDATE`` of the columns it moves, the kept state, and
the JSON state patched in place by SQLite (``json_set`` of ``seq``, ``updated_at`` and the
three SLA fields, the rest of the text as stored), guarded by the seq; and its events, as
:meth:`SqliteStore.commit` writes them. No ticket is encoded or decoded in Python.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from helpkit._codec.encode import _ISO_TEXT, _utc_isoformat
from helpkit.errors import ConflictError, ValidationError
from helpkit.events import event_to_dict
from helpkit.ports import DueTimer, TimerUpdate
from helpkit.stores.contract import check_limit
from helpkit.stores.sqlite.encoding import _NONE_LAST, _dumps, _micros
from helpkit.stores.sqlite.feed import LAST_POSITION

__all__ = [
    "TimerRowsMixin",
    "due_cursor",
    "due_instant",
    "due_page",
    "due_timer",
    "instant",
    "iso_text",
    "timer_event_rows",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)

# "plain": the next event changes only seq and updated_at of the stored state (helpkit.fold
# pins a missing requester / assignment / unassignment instant at a ticket's next event).
_PLAIN: Final = (
    "(json_extract(state, '$.requester_updated_at') IS NOT NULL AND "
    "(CASE WHEN assignee_id IS NULL THEN json_extract(state, '$.unassigned_at') "
    "ELSE json_extract(state, '$.assigned_at') END) IS NOT NULL)"
)
_DUE: Final = (
    "SELECT id, seq, updated_us, sla_policy, next_deadline_us, next_check_us, timer_state, "
    f"{_PLAIN}, rowid FROM tickets WHERE next_check_us <= ?"
)
_INSERT_EVENTS: Final = (
    "INSERT INTO events (ticket_id, seq, type, at_us, actor, body, position) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def due_instant(now: datetime, limit: int) -> int:
    """``due_timers``' arguments checked (ValidationError): ``now`` in microseconds."""
    check_limit(limit)
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValidationError(f"due_timers takes an aware datetime; got {now!r:.60}")
    return _micros(now)


def due_cursor(after: object) -> tuple[int, str]:
    """A ``due_timers`` cursor (the last row's ``next_check`` in microseconds, a colon, its
    id) as the next check and id to page on from; ValidationError for anything else."""
    check, _, ident = after.partition(":") if isinstance(after, str) else ("", "", "")
    if not check.lstrip("-").isdigit() or not ident or "\x00" in ident:
        raise ValidationError(f"not a due_timers cursor: {after!r:.60}")
    return int(check), ident


def due_page(rows: Sequence[Sequence[Any]], limit: int) -> tuple[list[DueTimer], str | None]:
    """A page of ``due_timers`` from the rows read for it (up to ``limit + 1``, in order: one
    more than the page says there is a next one) and the cursor of the next page."""
    page = rows[:limit]
    cursor = f"{page[-1][5]}:{page[-1][0]}" if len(rows) > limit and page else None
    return [due_timer(row) for row in page], cursor


def timer_event_rows(update: object, seen: set[str]) -> list[tuple[Any, ...]]:
    """``commit_timers``' check of one of its updates (a TimerUpdate, of a ticket not in
    ``seen``, which it joins: ValidationError otherwise) and its events as rows to append
    (ticket_id, seq, type, at_us, actor, body). A TimerUpdate's events were checked when it
    was made (SLA warnings and breaches of its ticket, following its expected seq)."""
    if not isinstance(update, TimerUpdate):
        raise ValidationError(f"commit_timers takes TimerUpdates; got {update!r:.60}")
    ticket_id = update.ticket_id
    if ticket_id in seen:
        raise ValidationError("commit_timers takes one update per ticket")
    seen.add(ticket_id)
    return [
        (
            ticket_id,
            event.seq,
            event.TYPE,
            _micros(event.at),
            str(event.actor),
            _dumps(event_to_dict(event)),
        )
        for event in update.events
    ]


def iso_text(value: datetime) -> str:
    """The codec's text of an instant (memoized as the codec does)."""
    return _ISO_TEXT.get(value) or _utc_isoformat(value)


def instant(micros: int | None) -> datetime | None:
    """A stored instant column (microseconds; None or the stores' missing-deadline value:
    None)."""
    return None if micros is None or micros == _NONE_LAST else _EPOCH + micros * _MICRO


def due_timer(row: Sequence[Any]) -> DueTimer:
    """The timer row of a stored row (id, seq, ``updated_us``, ``sla_policy``,
    ``next_deadline_us``, ``next_check_us``, kept timer state, whether plain, and the store's
    handle of the row if it has one)."""
    return DueTimer(
        ticket_id=row[0],
        seq=row[1],
        updated_at=_EPOCH + row[2] * _MICRO,
        sla_policy=row[3],
        next_deadline=instant(row[4]),
        next_check=instant(row[5]),
        timer_state=row[6],
        plain=bool(row[7]),
        handle=row[8] if len(row) > 8 else None,
    )


@functools.cache
def _update_sql(deadline: bool, policy: bool, by_rowid: bool = False) -> str:
    """The narrow update: only the indexed columns that change are named (SQLite rewrites
    every index holding a column named in SET). ``by_rowid``: the row is found by the rowid
    :meth:`TimerRowsMixin.due_timers` gave (no descent of the id index), its id checked."""
    assigned = ["seq = ?", "updated_us = ?", "next_check_us = ?"]
    if deadline:
        assigned.append("next_deadline_us = ?")
    if policy:
        assigned.append("sla_policy = ?")
    return (
        f"UPDATE tickets SET {', '.join(assigned)}, timer_state = ?, "
        "state = json_set(state, '$.seq', ?, '$.updated_at', ?, '$.sla_policy', ?, "
        "'$.next_deadline', ?, '$.next_check', ?) "
        + ("WHERE rowid = ? AND id = ? AND seq = ?" if by_rowid else "WHERE id = ? AND seq = ?")
    )


class TimerRowsMixin:
    """:class:`helpkit.ports.TimerRows` for :class:`~helpkit.stores.sqlite.SqliteStore`."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # pragma: no cover - SqliteStore's

    def due_timers(
        self, now: datetime, *, limit: int, after: str | None = None
    ) -> tuple[list[DueTimer], str | None]:
        """See :meth:`helpkit.ports.TimerRows.due_timers` (the cursor is the last row's
        ``next_check`` in microseconds and its id)."""
        params: list[Any] = [due_instant(now, limit)]
        sql = _DUE
        if after is not None:
            sql += " AND (next_check_us, id) > (?, ?)"
            params += due_cursor(after)
        sql += " ORDER BY next_check_us, id LIMIT ?"
        params.append(limit + 1)
        with self._connection() as conn:
            return due_page(conn.execute(sql, params).fetchall(), limit)

    def commit_timers(self, updates: Sequence[TimerUpdate]) -> None:
        """See :meth:`helpkit.ports.TimerRows.commit_timers`."""
        # Each update's statement and parameters, made before the write transaction: found
        # by the rowid of the due row it was decided on (whose stored SLA columns tell which
        # indexed columns change; they hold while the seq does, which the update checks), or,
        # without one, by id after a read of the stored rows in the transaction.
        statements: dict[str, list[tuple[Any, ...]]] = {}
        unknown: dict[str, tuple[Any, ...]] = {}
        seen: set[str] = set()
        events: list[tuple[Any, ...]] = []
        for update in updates:
            events.extend(timer_event_rows(update, seen))
            ticket_id = update.ticket_id
            expected = update.expected_seq
            seq = expected + len(update.events)
            deadline = update.next_deadline
            deadline_us = _NONE_LAST if deadline is None else _micros(deadline)
            check = update.next_check
            updated = update.updated_at
            policy = update.sla_policy
            # (seq, updated_us, next_check_us, [next_deadline_us], [sla_policy]) + the rest
            head = (seq, _micros(updated), None if check is None else _micros(check))
            tail = (
                update.timer_state,
                seq,
                iso_text(updated),
                policy,
                None if deadline is None else iso_text(deadline),
                None if check is None else iso_text(check),
            )
            row = update.row
            if (
                row is not None
                and row.ticket_id == ticket_id
                and row.seq == expected
                and type(row.handle) is int
            ):
                stored = row.next_deadline
                moved = deadline_us != (_NONE_LAST if stored is None else _micros(stored))
                renamed = policy != row.sla_policy
                statements.setdefault(_update_sql(moved, renamed, True), []).append(
                    head
                    + ((deadline_us,) if moved else ())
                    + ((policy,) if renamed else ())
                    + tail
                    + (row.handle, ticket_id, expected)
                )
            else:
                unknown[ticket_id] = (head, deadline_us, policy, tail, expected)
        if not updates:
            return
        with self._transaction() as conn:
            position = conn.execute(LAST_POSITION).fetchone()[0]
            if unknown:
                stored_rows = dict(_stored(conn, list(unknown)))
                for ticket_id, (head, deadline_us, policy, tail, expected) in unknown.items():
                    old = stored_rows.get(ticket_id)
                    if old is None or old[0] != expected:
                        raise ConflictError(
                            f"ticket {ticket_id!r} is at seq "
                            f"{None if old is None else old[0]}, not {expected}: it changed "
                            "since it was read. Reload and retry."
                        )
                    moved, renamed = deadline_us != old[1], policy != old[2]
                    statements.setdefault(_update_sql(moved, renamed), []).append(
                        head
                        + ((deadline_us,) if moved else ())
                        + ((policy,) if renamed else ())
                        + tail
                        + (ticket_id, expected)
                    )
            written = 0
            for sql, rows in statements.items():
                written += conn.executemany(sql, rows).rowcount
            if written != len(seen):
                # A ticket found by its due row's rowid moved on (or is gone): nothing written.
                raise ConflictError(
                    f"{len(seen) - written} of these tickets changed since they were read "
                    "(their seq is not the one expected). Reload and retry."
                )
            conn.executemany(
                _INSERT_EVENTS,
                [(*row, position + offset) for offset, row in enumerate(events, start=1)],
            )


def _stored(conn: sqlite3.Connection, ids: list[str]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(id, (seq, next_deadline_us, sla_policy)) of the stored tickets among ``ids``."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(
            "SELECT id, seq, next_deadline_us, sla_policy FROM tickets "
            f"WHERE id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ):
            yield row[0], row[1:]
