"""The SQL that answers a :class:`~helpkit.queries.TicketQuery` in the SQLite store.

``_select`` builds one SELECT for a page of a query: its filters, its order (the column lists
of the indexes), the keyset clause that resumes after a cursor, and, for queries whose leading
index columns take several values, one index-ordered "arm" per combination, merged with
``UNION ALL`` instead of a sort.
"""

from __future__ import annotations

from itertools import product
from typing import Any, Final

from helpkit.queries import SortOrder, TicketQuery
from helpkit.stores.sqlite.encoding import _NONE_LAST, _micros
from helpkit.tickets import StatusCategory

_ORDER: Final[dict[SortOrder, str]] = {
    SortOrder.PRIORITY: "priority, next_deadline_us, created_us, id",
    SortOrder.DEADLINE: "next_deadline_us, priority, created_us, id",
    # Tickets without a check (NULL) last; a query bounded by next_check_before has none of
    # them and walks the partial index in order (see _order).
    SortOrder.NEXT_CHECK: "next_check_us IS NULL, next_check_us, id",
    SortOrder.CREATED: "created_us, id",
    SortOrder.CREATED_DESC: "created_us DESC, id",
    SortOrder.UPDATED: "updated_us, id",
    SortOrder.UPDATED_DESC: "updated_us DESC, id",
}

# A query whose leading index columns take several values (two categories, say) is split
# into one index-ordered arm per combination, merged by SQLite without a sort; beyond this
# many arms a plain sort is cheaper than the compound statement.
_MAX_ARMS: Final = 16


def _in(column: str, values: frozenset[str] | frozenset[int], params: list[Any]) -> str:
    ordered = sorted(values)  # a stable SQL text keeps the statement cache useful
    params.extend(ordered)
    if len(ordered) == 1:
        return f"{column} = ?"
    return f"{column} IN ({', '.join('?' * len(ordered))})"


def _order(query: TicketQuery) -> str:
    if query.sort is SortOrder.NEXT_CHECK and query.next_check_before is not None:
        return "next_check_us, id"
    return _ORDER[query.sort]


_INT64: Final = (-(2**63), 2**63 - 1)


def _int64(value: int | str) -> int | str:
    # A cursor is caller data: an integer beyond SQLite's range would fail to bind. Clamping
    # keeps the comparison's outcome, since stored keys are far inside the range.
    if isinstance(value, int):
        return min(max(value, _INT64[0]), _INT64[1])
    return value


def _cursor_clause(query: TicketQuery, params: list[Any]) -> str | None:
    raw = query.cursor_key()
    if raw is None:
        return None
    key = tuple(_int64(k) for k in raw)
    order = query.sort
    if order is SortOrder.PRIORITY:
        params.extend(key)
        return "(priority, next_deadline_us, created_us, id) > (?, ?, ?, ?)"
    if order is SortOrder.DEADLINE:
        params.extend(key)
        return "(next_deadline_us, priority, created_us, id) > (?, ?, ?, ?)"
    if order is SortOrder.NEXT_CHECK:
        # A missing check sorts as NONE_LAST, stored as NULL: split the comparison.
        check, ident = key
        if isinstance(check, int) and check > _NONE_LAST:
            return "0"
        if check == _NONE_LAST:
            params.append(ident)
            return "next_check_us IS NULL AND id > ?"
        params.extend((check, ident))
        if query.next_check_before is not None:
            return "(next_check_us, id) > (?, ?)"  # no NULLs here: a plain index range
        return "(next_check_us IS NULL OR (next_check_us, id) > (?, ?))"
    at, ident = key
    if order in (SortOrder.CREATED, SortOrder.UPDATED):
        column = "created_us" if order is SortOrder.CREATED else "updated_us"
        params.extend((at, ident))
        return f"({column}, id) > (?, ?)"
    # Descending time, ascending id: the key holds the negated instant.
    column = "created_us" if order is SortOrder.CREATED_DESC else "updated_us"
    at = _int64(-int(raw[0]))
    params.extend((at, at, ident))
    return f"{column} <= ? AND ({column} < ? OR id > ?)"


def _filters(
    query: TicketQuery, params: list[Any], *, skip: frozenset[str] = frozenset()
) -> list[str]:
    where: list[str] = []
    if query.statuses is not None:
        where.append(_in("status", query.statuses, params))
    if query.categories is not None and "category" not in skip:
        cats = frozenset(c.value for c in query.categories)
        where.append(_in("category", cats, params))
    if query.assignee_ids is not None and "assignee_id" not in skip:
        where.append(_in("assignee_id", query.assignee_ids, params))
    if query.unassigned and "assignee_id" not in skip:
        where.append("assignee_id IS NULL")
    if query.group_ids is not None and "group_id" not in skip:
        where.append(_in("group_id", query.group_ids, params))
    if query.requester_ids is not None:
        where.append(_in("requester_id", query.requester_ids, params))
    if query.organization_ids is not None:
        where.append(_in("organization_id", query.organization_ids, params))
    if query.priorities is not None:
        where.append(_in("priority", frozenset(int(p) for p in query.priorities), params))
    for tag in sorted(query.tags):
        params.append(tag)
        where.append("EXISTS (SELECT 1 FROM ticket_tags g WHERE g.ticket_id = t.id AND g.tag = ?)")
    if query.deadline_before is not None:
        # A missing deadline is stored as NONE_LAST, above every real bound.
        params.append(_micros(query.deadline_before))
        where.append("next_deadline_us <= ?")
    if query.next_check_before is not None:
        params.append(_micros(query.next_check_before))
        where.append("next_check_us <= ?")
    return where


_ALL_CATEGORIES: Final = frozenset(StatusCategory)


def _arms(query: TicketQuery) -> list[dict[str, Any]] | None:
    """For priority-ordered queries on several categories (or assignees, groups), and for
    deadline-ordered ones: the combinations of leading index values, each of which the queue
    or deadline indexes return in order."""
    if query.sort is SortOrder.DEADLINE:
        if query.assignee_ids or query.group_ids or query.unassigned:
            return None  # one person's or group's tickets: few enough to sort
        deadline_categories = sorted(c.value for c in query.categories or _ALL_CATEGORIES)
        if len(deadline_categories) < 2:
            return None
        return [{"category": c} for c in deadline_categories]
    if query.sort is not SortOrder.PRIORITY or not query.categories:
        return None
    lead: tuple[str, list[str | None]] | None = None
    if query.assignee_ids:
        lead = ("assignee_id", [*sorted(query.assignee_ids)])
    elif query.group_ids:
        # Also for unassigned tickets of a group: a group's open tickets are few, while the
        # unassigned open tickets of every group together may be many.
        lead = ("group_id", [*sorted(query.group_ids)])
    elif query.unassigned:
        lead = ("assignee_id", [None])
    categories: list[str | None] = [*sorted(c.value for c in query.categories)]
    columns = ["category"] if lead is None else [lead[0], "category"]
    values = [categories] if lead is None else [lead[1], categories]
    combos = list(product(*values))
    if len(combos) < 2 or len(combos) > _MAX_ARMS:
        return None
    return [dict(zip(columns, combo, strict=True)) for combo in combos]


def _select(query: TicketQuery) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) for one page of ``query``, one row beyond the limit."""
    arms = _arms(query)
    params: list[Any] = []
    if arms is None:
        where = _filters(query, params)
        cursor = _cursor_clause(query, params)
        if cursor is not None:
            where.append(cursor)
        sql = "SELECT id, seq, state FROM tickets t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {_order(query)} LIMIT ?"
        params.append(query.limit + 1)
        return sql, params
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
            f"SELECT {_ORDER[query.sort]}, seq, state FROM tickets t WHERE " + " AND ".join(where)
        )
    sql = " UNION ALL ".join(parts) + " ORDER BY 1, 2, 3, 4 LIMIT ?"
    params.append(query.limit + 1)
    return sql, params
