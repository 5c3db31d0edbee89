"""Ticket queries as values: filters, sort orders, keyset pagination and the reference matcher.

Stores translate a :class:`TicketQuery` into their own query language; :meth:`TicketQuery.matches`
and :meth:`TicketQuery.sort_key` are the reference semantics every store must reproduce (the
in-memory store uses them directly, the conformance suite compares against them).
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from helpkit._checks import check_items, check_text, flag
from helpkit._time import to_utc
from helpkit.errors import ValidationError
from helpkit.priority import Priority
from helpkit.tickets import StatusCategory, Ticket

__all__ = ["NONE_LAST", "Page", "SortOrder", "TicketQuery", "encode_cursor", "sort_key"]

T = TypeVar("T")

MAX_LIMIT = 1000


class SortOrder(enum.Enum):
    """How a ticket list is ordered. Ties are always broken by ticket id, so order is total."""

    PRIORITY = "priority"
    """Most urgent first (P1 before P5), then by next SLA deadline (none last), then oldest."""
    DEADLINE = "deadline"
    """Next SLA deadline first (breached ones, being past, lead; none last), then priority."""
    NEXT_CHECK = "next_check"
    """Earliest pending SLA check first (none last): the sweep's order."""
    CREATED = "created"
    """Oldest first."""
    CREATED_DESC = "-created"
    """Newest first."""
    UPDATED = "updated"
    """Least recently updated first."""
    UPDATED_DESC = "-updated"
    """Most recently updated first."""


def _categories(values: Iterable[StatusCategory | str] | None) -> frozenset[StatusCategory] | None:
    if values is None:
        return None
    out: set[StatusCategory] = set()
    for value in check_items(values, "categories", StatusCategory | str):  # type: ignore[arg-type]
        try:
            out.add(StatusCategory(value))
        except ValueError:
            known = ", ".join(c.value for c in StatusCategory)
            raise ValidationError(f"unknown category {value!r:.40} (known: {known})") from None
    return frozenset(out)


def _priorities(values: Iterable[Priority | int | str] | None) -> frozenset[Priority] | None:
    if values is None:
        return None
    return frozenset(
        Priority.coerce(v)
        for v in check_items(values, "priorities", Priority | int | str)  # type: ignore[arg-type]
    )


def _strings(values: Iterable[str] | str | None) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset(check_text(v, "a filter value") for v in check_items(values, "filter", str))


def _tags(values: Iterable[str] | str | None) -> frozenset[str]:
    return _strings(values) or frozenset()


def _sort(value: SortOrder | str) -> SortOrder:
    try:
        return SortOrder(value)
    except ValueError:
        known = ", ".join(o.value for o in SortOrder)
        raise ValidationError(f"unknown sort order {value!r} (known: {known})") from None


def _optional_instant(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value, "query instant")


def _limit(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}; got {value!r}")
    return value


def _cursor(instance: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None:
        check_text(value, "a pagination cursor (after)")


@attrs.frozen(kw_only=True)
class TicketQuery:
    """Which tickets to list, in which order, and from where (keyset pagination).

    Every filter that is set must match (AND); a set of values matches any of them (OR).
    ``tags`` must all be present. ``unassigned=True`` keeps only tickets without an assignee.
    """

    statuses: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    categories: frozenset[StatusCategory] | None = attrs.field(default=None, converter=_categories)
    assignee_ids: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    unassigned: bool = attrs.field(default=False, validator=flag)
    group_ids: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    requester_ids: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    organization_ids: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    priorities: frozenset[Priority] | None = attrs.field(default=None, converter=_priorities)
    tags: frozenset[str] = attrs.field(factory=frozenset, converter=_tags)
    deadline_before: datetime | None = attrs.field(default=None, converter=_optional_instant)
    """Only tickets whose next SLA deadline is at or before this instant ("breaching within")."""
    next_check_before: datetime | None = attrs.field(default=None, converter=_optional_instant)
    """Only tickets whose next SLA check is at or before this instant (what a sweep reads)."""
    sort: SortOrder = attrs.field(default=SortOrder.PRIORITY, converter=_sort)
    limit: int = attrs.field(default=50, converter=_limit)
    after: str | None = attrs.field(default=None, validator=_cursor)
    """The ``next_cursor`` of the previous page."""

    def __attrs_post_init__(self) -> None:
        if self.unassigned and self.assignee_ids:
            raise ValidationError("unassigned=True contradicts assignee_ids")
        if self.after is not None:
            self.cursor_key()  # validate early: a bad cursor is the caller's mistake

    def matches(self, ticket: Ticket) -> bool:
        """Whether ``ticket`` passes every filter (sort and pagination aside)."""
        return (
            (self.statuses is None or ticket.status in self.statuses)
            and (self.categories is None or ticket.category in self.categories)
            and (self.assignee_ids is None or ticket.assignee_id in self.assignee_ids)
            and (not self.unassigned or ticket.assignee_id is None)
            and (self.group_ids is None or ticket.group_id in self.group_ids)
            and (self.requester_ids is None or ticket.requester_id in self.requester_ids)
            and (self.organization_ids is None or ticket.organization_id in self.organization_ids)
            and (self.priorities is None or ticket.priority in self.priorities)
            and self.tags <= ticket.tags
            and (
                self.deadline_before is None
                or (
                    ticket.next_deadline is not None
                    and ticket.next_deadline <= self.deadline_before
                )
            )
            and (
                self.next_check_before is None
                or (ticket.next_check is not None and ticket.next_check <= self.next_check_before)
            )
        )

    def sort_key(self, ticket: Ticket) -> tuple[int | str, ...]:
        """The total order of results as a tuple compared ascending."""
        return sort_key(self.sort, ticket)

    def cursor_key(self) -> tuple[int | str, ...] | None:
        """The sort key after which this page starts, decoded from ``after``."""
        if self.after is None:
            return None
        if not isinstance(self.after, str):
            raise ValidationError(f"invalid pagination cursor: {self.after!r} is not a string")
        try:
            raw = json.loads(base64.urlsafe_b64decode(self.after.encode("ascii")))
            order, key = raw["s"], raw["k"]
            if order != self.sort.value or not isinstance(key, list):
                raise ValueError("cursor belongs to another sort order")
            # The key must have the shape of this order's sort key, or comparing it with real
            # keys would fail (or silently mean nothing).
            shape = _KEY_SHAPES.get(self.sort, (int, str))
            if len(key) != len(shape) or not all(
                isinstance(k, kind) and not isinstance(k, bool)
                for k, kind in zip(key, shape, strict=True)
            ):
                raise ValueError("bad key")
            return tuple(key)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationError(f"invalid pagination cursor: {exc}") from None

    def page(self, tickets: Iterable[Ticket]) -> Page[Ticket]:
        """Filter, sort and cut a page out of ``tickets`` (the reference implementation)."""
        start = self.cursor_key()
        keyed = sorted(
            ((self.sort_key(t), t) for t in tickets if self.matches(t)), key=lambda kt: kt[0]
        )
        if start is not None:
            keyed = [kt for kt in keyed if kt[0] > start]
        return Page.cut([t for _, t in keyed], self)


def _micros(value: datetime) -> int:
    # Integer microseconds since the epoch: exact, sortable, and simple to index in SQL.
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


# A missing instant sorts after every real one (this is above any datetime's microseconds).
NONE_LAST = 2**62

_KEY_SHAPES: dict[SortOrder, tuple[type, ...]] = {
    SortOrder.PRIORITY: (int, int, int, str),
    SortOrder.DEADLINE: (int, int, int, str),
    SortOrder.NEXT_CHECK: (int, str),
}


def _micros_or_last(value: datetime | None) -> int:
    return NONE_LAST if value is None else _micros(value)


def sort_key(order: SortOrder, ticket: Ticket) -> tuple[int | str, ...]:
    """The ascending sort key of ``ticket`` under ``order`` (ticket id breaks ties)."""
    if order is SortOrder.PRIORITY:
        return (
            int(ticket.priority),
            _micros_or_last(ticket.next_deadline),
            _micros(ticket.created_at),
            ticket.id,
        )
    if order is SortOrder.DEADLINE:
        return (
            _micros_or_last(ticket.next_deadline),
            int(ticket.priority),
            _micros(ticket.created_at),
            ticket.id,
        )
    if order is SortOrder.NEXT_CHECK:
        return (_micros_or_last(ticket.next_check), ticket.id)
    if order is SortOrder.CREATED:
        return (_micros(ticket.created_at), ticket.id)
    if order is SortOrder.CREATED_DESC:
        return (-_micros(ticket.created_at), ticket.id)
    if order is SortOrder.UPDATED:
        return (_micros(ticket.updated_at), ticket.id)
    return (-_micros(ticket.updated_at), ticket.id)


def encode_cursor(order: SortOrder, key: Sequence[int | str]) -> str:
    """An opaque cursor for "after this key"."""
    data = json.dumps({"s": order.value, "k": list(key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode("ascii")


@attrs.frozen
class Page(Generic[T]):
    """One page of results; pass ``next_cursor`` as ``after`` to get the next one."""

    items: tuple[T, ...]
    next_cursor: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @staticmethod
    def cut(ordered: Sequence[Ticket], query: TicketQuery) -> Page[Ticket]:
        """The first ``query.limit`` of already ordered and filtered tickets, with a cursor."""
        items = tuple(ordered[: query.limit])
        more = len(ordered) > query.limit
        cursor = encode_cursor(query.sort, query.sort_key(items[-1])) if more and items else None
        return Page(items, cursor)
