"""The PostgreSQL store's routing states and agents' loads (:class:`helpkit.ports.Routing`).

A mixin of :class:`~helpkit.stores.postgres.store.PostgresStore` (capability ``routing``); it
uses the store's connections. One row per routed group in the ``routing`` table (schema
version 5): its version and round-robin cursor.

A commit writes its routing states with :func:`write_routing` inside its own transaction,
after its seq checks: a first state (version 1) is ``INSERT ... ON CONFLICT DO NOTHING``, a
later one ``UPDATE ... WHERE version =`` the one before. PostgreSQL judges both on the latest
committed row (a concurrent writer of the same row waits for the other transaction to end and
then sees its version), so of two commits that read one version exactly one moves it; the
other finds no row written, raises :class:`~helpkit.errors.ConflictError`, and rolls back
everything it wrote. Loads are counted from the tickets table, through the index of the
agents' queues (``assignee_id, category, ...``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final

import psycopg

from helpkit._checks import check_text
from helpkit.errors import ValidationError
from helpkit.ports import RoutingState
from helpkit.stores.contract import routing_conflict
from helpkit.tickets import StatusCategory

__all__ = ["RoutingMixin", "write_routing"]

_FIRST: Final = (
    "INSERT INTO routing (group_id, version, cursor) VALUES (%s, 1, %s) "
    "ON CONFLICT (group_id) DO NOTHING RETURNING group_id"
)
_NEXT: Final = (
    "UPDATE routing SET version = %s, cursor = %s WHERE group_id = %s AND version = %s "
    "RETURNING group_id"
)


def write_routing(conn: psycopg.Connection[Any], states: Iterable[RoutingState]) -> None:
    """Write a commit's routing states in its transaction (waiting for the results):
    ConflictError, which rolls the transaction back, when a group's stored version is not
    the one before the state's."""
    for state in states:
        if state.version == 1:
            done = conn.execute(_FIRST, (state.group_id, state.cursor)).fetchone()
        else:
            done = conn.execute(
                _NEXT, (state.version, state.cursor, state.group_id, state.version - 1)
            ).fetchone()
        if done is None:
            row = conn.execute(
                "SELECT version FROM routing WHERE group_id = %s", (state.group_id,)
            ).fetchone()
            raise routing_conflict(state, 0 if row is None else int(row[0]))


class RoutingMixin:
    """Routing states and loads of a PostgreSQL store (a mixin of ``PostgresStore``)."""

    def _reading(self) -> AbstractContextManager[psycopg.Cursor[Any]]:
        raise NotImplementedError  # pragma: no cover - PostgresStore's

    def routing_states(self, group_ids: Sequence[str]) -> dict[str, RoutingState]:
        """The state of each group (version 0 and no cursor for one never routed)."""
        wanted = [check_text(g, "a group id") for g in group_ids]
        if not wanted:
            return {}
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT group_id, version, cursor FROM routing WHERE group_id = ANY(%s)",
                (wanted,),
            ).fetchall()
        stored = {
            str(g): RoutingState(group_id=str(g), version=int(v), cursor=c) for g, v, c in rows
        }
        return {g: stored.get(g) or RoutingState(group_id=g, version=0) for g in wanted}

    def agent_loads(
        self, agent_ids: Sequence[str], categories: frozenset[StatusCategory]
    ) -> dict[str, int]:
        """Tickets assigned to each agent whose category is one of ``categories``."""
        loads = {check_text(a, "an agent id"): 0 for a in agent_ids}
        try:
            wanted = sorted(StatusCategory(c).value for c in categories)
        except ValueError as exc:
            raise ValidationError(f"loads count status categories: {exc}") from None
        if not loads or not wanted:
            return loads
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT assignee_id, count(*) FROM tickets "
                "WHERE assignee_id = ANY(%s) AND category = ANY(%s) GROUP BY assignee_id",
                (list(loads), wanted),
            ).fetchall()
        for agent_id, count in rows:
            loads[str(agent_id)] = int(count)
        return loads
