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

__all__ = ["TimerRowsMixin"]

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


def _iso(value: datetime) -> str:
    """The codec's text of an instant (memoized as the codec does)."""
    return _ISO_TEXT.get(value) or _utc_isoformat(value)


def _instant(micros: int | None) -> datetime | None:
    return None if micros is None or micros == _NONE_LAST else _EPOCH + micros * _MICRO


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
        check_limit(limit)
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise ValidationError(f"due_timers takes an aware datetime; got {now!r:.60}")
        params: list[Any] = [_micros(now)]
        sql = _DUE
        if after is not None:
            check, _, ident = after.partition(":") if isinstance(after, str) else ("", "", "")
            if not check.lstrip("-").isdigit() or not ident:
                raise ValidationError(f"not a due_timers cursor: {after!r:.60}")
            sql += " AND (next_check_us, id) > (?, ?)"
            params += [int(check), ident]
        sql += " ORDER BY next_check_us, id LIMIT ?"
        params.append(limit + 1)
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        timers = [
            DueTimer(
                ticket_id=row[0],
                seq=row[1],
                updated_at=_EPOCH + row[2] * _MICRO,
                sla_policy=row[3],
                next_deadline=_instant(row[4]),
                next_check=_instant(row[5]),
                timer_state=row[6],
                plain=bool(row[7]),
                handle=row[8],
            )
            for row in rows
        ]
        cursor = f"{rows[-1][5]}:{rows[-1][0]}" if more and rows else None
        return timers, cursor

    def commit_timers(self, updates: Sequence[TimerUpdate]) -> None:
        """See :meth:`helpkit.ports.TimerRows.commit_timers`."""
        groups: dict[str, list[tuple[Any, ...]]] = {}
        known: dict[str, tuple[Any, ...]] = {}  # (rowid, seq, next_deadline_us, sla_policy)
        events: list[tuple[Any, ...]] = []
        for update in updates:
            # A TimerUpdate's events were checked when it was made (SLA warnings and
            # breaches of its ticket, following its expected seq).
            if not isinstance(update, TimerUpdate):
                raise ValidationError(f"commit_timers takes TimerUpdates; got {update!r:.60}")
            seq = update.expected_seq + len(update.events)
            deadline = _NONE_LAST if update.next_deadline is None else _micros(update.next_deadline)
            check = None if update.next_check is None else _micros(update.next_check)
            # Which indexed columns change is told by the stored row: the due row the update
            # was decided on (it holds while the seq does, which the update checks), else
            # read in the write transaction below; the statements are chosen there.
            row = update.row
            if (
                row is not None
                and row.ticket_id == update.ticket_id
                and row.seq == update.expected_seq
                and type(row.handle) is int
            ):
                known[update.ticket_id] = (
                    row.handle,
                    row.seq,
                    _NONE_LAST if row.next_deadline is None else _micros(row.next_deadline),
                    row.sla_policy,
                )
            groups.setdefault(update.ticket_id, []).append(
                (
                    seq,
                    _micros(update.updated_at),
                    check,
                    deadline,
                    update.sla_policy,
                    update.timer_state,
                    seq,
                    _iso(update.updated_at),
                    update.sla_policy,
                    None if update.next_deadline is None else _iso(update.next_deadline),
                    None if update.next_check is None else _iso(update.next_check),
                    update.ticket_id,
                    update.expected_seq,
                )
            )
            for event in update.events:
                events.append(
                    (
                        event.ticket_id,
                        event.seq,
                        event.TYPE,
                        _micros(event.at),
                        str(event.actor),
                        _dumps(event_to_dict(event)),
                    )
                )
        if any(len(rows) > 1 for rows in groups.values()):
            raise ValidationError("commit_timers takes one update per ticket")
        if not updates:
            return
        with self._transaction() as conn:
            position = conn.execute(LAST_POSITION).fetchone()[0]
            unknown = [ticket_id for ticket_id in groups if ticket_id not in known]
            stored = dict(_stored(conn, unknown)) if unknown else {}
            statements: dict[str, list[tuple[Any, ...]]] = {}
            for ticket_id, (params,) in groups.items():
                handle = known.get(ticket_id)
                if handle is not None:
                    # Found by rowid, guarded by id and seq: counted below.
                    deadline, policy = params[3] != handle[2], params[4] != handle[3]
                    values = (
                        params[:3]
                        + ((params[3],) if deadline else ())
                        + ((params[4],) if policy else ())
                        + params[5:-2]
                        + (handle[0], ticket_id, params[-1])
                    )
                    statements.setdefault(_update_sql(deadline, policy, True), []).append(values)
                    continue
                old = stored.get(ticket_id)
                if old is None or old[0] != params[-1]:
                    raise ConflictError(
                        f"ticket {ticket_id!r} is at seq {None if old is None else old[0]}, "
                        f"not {params[-1]}: it changed since it was read. Reload and retry."
                    )
                deadline, policy = params[3] != old[1], params[4] != old[2]
                values = (
                    params[:3]
                    + ((params[3],) if deadline else ())
                    + ((params[4],) if policy else ())
                    + params[5:]
                )
                statements.setdefault(_update_sql(deadline, policy), []).append(values)
            written = 0
            for sql, rows in statements.items():
                written += conn.executemany(sql, rows).rowcount
            if written != len(groups):
                # A ticket found by its due row's rowid moved on (or is gone): nothing written.
                raise ConflictError(
                    f"{len(groups) - written} of these tickets changed since they were read "
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
