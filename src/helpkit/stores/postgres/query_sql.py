"""The SQL that answers a :class:`~helpkit.queries.TicketQuery` in the PostgreSQL store.

The tickets table has the SQLite store's columns and indexes, so a query is the SQLite store's
statement (:mod:`helpkit.stores.sqlite.query_sql`: the filters, the index order, the keyset
clause after a cursor, the ``UNION ALL`` of index-ordered arms), written with psycopg's
placeholders. PostgreSQL flattens such a ``UNION ALL`` into one append of index scans and
merges them in order (a Merge Append) instead of sorting.

One clause differs: SQLite's ``0`` (a ``next_check`` cursor beyond every stored value, which
matches nothing) is not a boolean to PostgreSQL. :func:`select` answers such a query with
``None`` (no statement: the page is empty) before building the statement.
"""

from __future__ import annotations

from typing import Any, Final

from helpkit.queries import NONE_LAST, SortOrder, TicketQuery
from helpkit.stores.sqlite.query_sql import _select

__all__ = ["select"]

_PLACEHOLDER: Final = "%s"


def _matches_nothing(query: TicketQuery) -> bool:
    """A ``next_check`` cursor beyond every stored check (and beyond "none"): an empty page."""
    if query.sort is not SortOrder.NEXT_CHECK:
        return False
    key = query.cursor_key()
    return key is not None and isinstance(key[0], int) and key[0] > NONE_LAST


def select(query: TicketQuery) -> tuple[str, list[Any]] | None:
    """The SQL (and its parameters) for one page of ``query``, one row beyond the limit; or
    ``None`` when no ticket can match (a cursor beyond every stored key)."""
    if _matches_nothing(query):
        return None
    sql, params = _select(query)
    # The SQLite statement has no literal text, so every "?" is a parameter.
    return sql.replace("?", _PLACEHOLDER), params
