"""The SQL that answers a :class:`~helpkit.queries.TicketQuery` in the PostgreSQL store.

The tickets table has the SQLite store's columns and indexes, so a query is built from the
SQLite store's pieces (:mod:`helpkit.stores.sqlite.query_sql`: the filters, the index order,
the keyset clause after a cursor, the index-ordered "arms"), written with psycopg's
placeholders.

One thing differs: the arms. A query whose leading index columns take several values (an
agent's queue over the categories new and open, say) is one arm per combination, each of which
an index returns in order. SQLite merges a plain ``UNION ALL`` of such arms in order; PostgreSQL
does not: it reads every row of every arm (a bitmap scan of the agent's or group's whole queue)
and sorts them. Here each arm is a parenthesized ``SELECT ... ORDER BY <index order> LIMIT n``,
which PostgreSQL answers with an index scan that stops after ``n`` rows, and the arms are merged
in order (a Merge Append) under the outer ``ORDER BY ... LIMIT n``: a page costs about ``n``
rows per arm, whatever the size of the queue.

One clause differs too: SQLite's ``0`` (a ``next_check`` cursor beyond every stored value, which
matches nothing) is not a boolean to PostgreSQL. :func:`select` answers such a query with
``None`` (no statement: the page is empty) before building the statement.
"""

from __future__ import annotations

from typing import Any, Final

from helpkit.queries import NONE_LAST, SortOrder, TicketQuery
from helpkit.stores.sqlite.query_sql import _ORDER, _arms, _cursor_clause, _filters, _select

__all__ = ["select"]

_PLACEHOLDER: Final = "%s"


def _matches_nothing(query: TicketQuery) -> bool:
    """A ``next_check`` cursor beyond every stored check (and beyond "none"): an empty page."""
    if query.sort is not SortOrder.NEXT_CHECK:
        return False
    key = query.cursor_key()
    return key is not None and isinstance(key[0], int) and key[0] > NONE_LAST


def _select_arms(query: TicketQuery, arms: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """One page of ``query`` as index-ordered arms, each cut at the page size, merged."""
    order = _ORDER[query.sort]
    page = query.limit + 1
    params: list[Any] = []
    parts = []
    skip = frozenset(arms[0])
    for arm in arms:
        where = []
        for column, value in arm.items():
            if value is None:
                where.append(f"{column} IS NULL")
            else:
                where.append(f"{column} = ?")
                params.append(value)
        where.extend(_filters(query, params, skip=skip))
        cursor = _cursor_clause(query, params)
        if cursor is not None:
            where.append(cursor)
        parts.append(
            f"(SELECT {order}, seq, state FROM tickets t WHERE {' AND '.join(where)} "
            f"ORDER BY {order} LIMIT ?)"
        )
        params.append(page)
    sql = " UNION ALL ".join(parts) + " ORDER BY 1, 2, 3, 4 LIMIT ?"
    params.append(page)
    return sql, params


def select(query: TicketQuery) -> tuple[str, list[Any]] | None:
    """The SQL (and its parameters) for one page of ``query``, one row beyond the limit; or
    ``None`` when no ticket can match (a cursor beyond every stored key)."""
    if _matches_nothing(query):
        return None
    arms = _arms(query)
    sql, params = _select(query) if arms is None else _select_arms(query, arms)
    # The statements have no literal text, so every "?" is a parameter.
    return sql.replace("?", _PLACEHOLDER), params
