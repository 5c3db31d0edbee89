"""The SQLite store's routing states and agents' loads (:class:`helpkit.ports.Routing`).

A mixin of :class:`~helpkit.stores.sqlite.store.SqliteStore`, kept apart because it is a
capability of its own (``routing``); it uses the store's connections. One row per routed group
in the ``routing`` table (schema version 8): its version and round-robin cursor. A commit
writes its routing states with :func:`write_routing`, inside its own transaction, after its
seq checks: under the write lock, so of two processes that read one version, only the first
to commit moves it, and the other's whole commit is refused. Loads are counted from the
tickets table, through the index of the agents' queues (``assignee_id, category, ...``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Final

from helpkit._checks import check_text
from helpkit.errors import ValidationError
from helpkit.ports import RoutingState
from helpkit.stores.contract import routing_conflict
from helpkit.tickets import StatusCategory

__all__ = ["RoutingMixin", "write_routing"]

_CHUNK: Final = 500
"""Agent ids per load query (SQLite bounds the number of parameters of a statement)."""


def write_routing(conn: sqlite3.Connection, states: Iterable[RoutingState]) -> None:
    """Write a commit's routing states in its transaction (the write lock held): a group
    whose stored version is not the one before the state's raises ConflictError, and the
    caller's transaction rolls back."""
    for state in states:
        row = conn.execute(
            "SELECT version FROM routing WHERE group_id = ?", (state.group_id,)
        ).fetchone()
        stored = 0 if row is None else int(row[0])
        if stored != state.version - 1:
            raise routing_conflict(state, stored)
        conn.execute(
            "INSERT OR REPLACE INTO routing (group_id, version, cursor) VALUES (?, ?, ?)",
            (state.group_id, state.version, state.cursor),
        )


def _categories(categories: Iterable[StatusCategory]) -> list[str]:
    try:
        return sorted(StatusCategory(c).value for c in categories)
    except ValueError as exc:
        raise ValidationError(f"loads count status categories: {exc}") from None


class RoutingMixin:
    """Routing states and loads (:attr:`~helpkit.ports.Capability.ROUTING`)."""

    def _connection(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    def routing_states(self, group_ids: Sequence[str]) -> dict[str, RoutingState]:
        """The state of each group (version 0 and no cursor for one never routed)."""
        wanted = [check_text(g, "a group id") for g in group_ids]
        found: dict[str, RoutingState] = {}
        with self._connection() as conn:
            for group_id in wanted:
                row = conn.execute(
                    "SELECT version, cursor FROM routing WHERE group_id = ?", (group_id,)
                ).fetchone()
                found[group_id] = (
                    RoutingState(group_id=group_id, version=0)
                    if row is None
                    else RoutingState(group_id=group_id, version=int(row[0]), cursor=row[1])
                )
        return found

    def agent_loads(
        self, agent_ids: Sequence[str], categories: frozenset[StatusCategory]
    ) -> dict[str, int]:
        """Tickets assigned to each agent whose category is one of ``categories``."""
        loads = {check_text(a, "an agent id"): 0 for a in agent_ids}
        wanted = _categories(categories)
        if not loads or not wanted:
            return loads
        ids = list(loads)
        marks = ", ".join("?" * len(wanted))
        with self._connection() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows = conn.execute(
                    "SELECT assignee_id, count(*) FROM tickets "
                    f"WHERE assignee_id IN ({', '.join('?' * len(chunk))}) "
                    f"AND category IN ({marks}) GROUP BY assignee_id",
                    (*chunk, *wanted),
                ).fetchall()
                for agent_id, count in rows:
                    loads[agent_id] = int(count)
        return loads
