"""Ticket queries: filters, sort orders and keyset pagination (the reference semantics)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.errors import ValidationError
from helpkit.priority import Impact, Priority, Urgency
from helpkit.queries import MAX_LIMIT, SortOrder, TicketQuery
from helpkit.tickets import StatusCategory, Ticket

C = StatusCategory
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CATEGORY_OF = {
    "new": C.NEW,
    "open": C.OPEN,
    "pending": C.PENDING,
    "on_hold": C.ON_HOLD,
    "solved": C.SOLVED,
    "closed": C.CLOSED,
}


def ticket(
    tid: str,
    *,
    priority: int = 3,
    created: int = 0,
    updated: int | None = None,
    status: str = "open",
    assignee: str | None = None,
    group: str | None = None,
    requester: str = "c-1",
    org: str | None = None,
    tags: frozenset[str] = frozenset(),
    deadline: int | None = None,
    check: int | None = None,
) -> Ticket:
    created_at = T0 + timedelta(minutes=created)
    return Ticket(
        id=tid,
        number=1,
        subject="s",
        requester_id=requester,
        organization_id=org,
        status=status,
        category=CATEGORY_OF[status],
        impact=Impact.MEDIUM,
        urgency=Urgency.MEDIUM,
        priority=Priority(priority),
        channel="web",
        created_at=created_at,
        updated_at=created_at + timedelta(minutes=updated or 0),
        seq=1,
        assignee_id=assignee,
        group_id=group,
        tags=tags,
        next_deadline=None if deadline is None else T0 + timedelta(minutes=deadline),
        next_check=None if check is None else T0 + timedelta(minutes=check),
    )


A = ticket(
    "a", priority=2, created=5, status="new", requester="c-1", org="o-1", tags=frozenset({"vpn"})
)
B = ticket(
    "b",
    priority=1,
    created=9,
    status="open",
    assignee="ana",
    group="l1",
    tags=frozenset({"vpn", "mac"}),
)
D = ticket("d", priority=2, created=1, status="pending", assignee="bo", group="l2", org="o-2")
E = ticket("e", priority=5, created=1, status="closed", requester="c-2", org="o-1", updated=60)
ALL = [A, B, D, E]


def ids(query: TicketQuery, tickets: list[Ticket] = ALL) -> list[str]:
    return [t.id for t in query.page(tickets)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TicketQuery(), ["b", "d", "a", "e"]),
        (TicketQuery(statuses="open"), ["b"]),
        (TicketQuery(statuses=["new", "pending"]), ["d", "a"]),
        (TicketQuery(categories="closed"), ["e"]),
        (TicketQuery(categories=[C.NEW, "open"]), ["b", "a"]),
        (TicketQuery(assignee_ids="ana"), ["b"]),
        (TicketQuery(unassigned=True), ["a", "e"]),
        (TicketQuery(group_ids=["l1", "l2"]), ["b", "d"]),
        (TicketQuery(requester_ids="c-2"), ["e"]),
        (TicketQuery(organization_ids="o-1"), ["a", "e"]),
        (TicketQuery(priorities="P2"), ["d", "a"]),
        (TicketQuery(priorities=[1, "critical", Priority.P5]), ["b", "e"]),
        (TicketQuery(tags="vpn"), ["b", "a"]),
        (TicketQuery(tags=["vpn", "mac"]), ["b"]),  # every tag must be present
        (TicketQuery(tags="vpn", unassigned=True), ["a"]),  # filters combine with AND
        (TicketQuery(organization_ids="o-1", categories="new"), ["a"]),
        (TicketQuery(statuses="solved"), []),
    ],
)
def test_filters(query: TicketQuery, expected: list[str]) -> None:
    assert ids(query) == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (SortOrder.PRIORITY, ["b", "d", "a", "e"]),  # P1, then P2 oldest first, ...
        ("created", ["d", "e", "a", "b"]),  # d and e tie on created: id breaks the tie
        ("-created", ["b", "a", "d", "e"]),
        (SortOrder.UPDATED, ["d", "a", "b", "e"]),
        (SortOrder.UPDATED_DESC, ["e", "b", "a", "d"]),
    ],
)
def test_sort_orders(order: SortOrder | str, expected: list[str]) -> None:
    assert ids(TicketQuery(sort=order)) == expected


def test_pages_and_cursor_worked_example() -> None:
    first = TicketQuery(limit=3).page(ALL)
    assert [t.id for t in first] == ["b", "d", "a"]
    assert len(first) == 3
    assert first.next_cursor is not None
    second = TicketQuery(limit=3, after=first.next_cursor).page(ALL)
    assert [t.id for t in second] == ["e"]
    assert second.next_cursor is None
    exact = TicketQuery(limit=4).page(ALL)
    assert exact.next_cursor is None  # no empty last page


def test_keyset_pagination_survives_inserts_before_the_cursor() -> None:
    first = TicketQuery(sort="created", limit=2).page(ALL)
    newcomer = ticket("0-early", created=-10)  # sorts before everything already seen
    rest = TicketQuery(sort="created", limit=10, after=first.next_cursor).page([*ALL, newcomer])
    assert [t.id for t in rest] == ["a", "b"]


@st.composite
def ticket_sets(draw: st.DrawFn) -> list[Ticket]:
    n = draw(st.integers(0, 15))
    result = []
    for i in range(n):
        result.append(
            ticket(
                f"t{draw(st.integers(0, 99)):02d}-{i}",
                priority=draw(st.integers(1, 5)),
                created=draw(st.integers(0, 20)),  # small range: plenty of ties
                updated=draw(st.integers(0, 20)),
                status=draw(st.sampled_from(sorted(CATEGORY_OF))),
                assignee=draw(st.sampled_from([None, "ana", "bo"])),
                group=draw(st.sampled_from([None, "l1"])),
                requester=draw(st.sampled_from(["c-1", "c-2"])),
                org=draw(st.sampled_from([None, "o-1"])),
                tags=frozenset(draw(st.sets(st.sampled_from(["vpn", "mac"])))),
                deadline=draw(st.none() | st.integers(0, 20)),
                check=draw(st.none() | st.integers(0, 20)),
            )
        )
    return result


queries = st.builds(
    TicketQuery,
    categories=st.none() | st.sets(st.sampled_from(C), min_size=1),
    assignee_ids=st.none() | st.just(frozenset({"ana"})),
    requester_ids=st.none() | st.just(frozenset({"c-1"})),
    priorities=st.none() | st.sets(st.integers(1, 5), min_size=1),
    tags=st.sets(st.sampled_from(["vpn", "mac"]), max_size=1),
    sort=st.sampled_from(SortOrder),
    limit=st.integers(1, 7),
    deadline_before=st.none() | st.integers(0, 20).map(lambda m: T0 + timedelta(minutes=m)),
    next_check_before=st.none() | st.integers(0, 20).map(lambda m: T0 + timedelta(minutes=m)),
)


def expected_order(query: TicketQuery, tickets: list[Ticket]) -> list[str]:
    """Filter and sort with plain Python, independently of sort_key and matches."""
    hits = [
        t
        for t in tickets
        if (query.categories is None or t.category in query.categories)
        and (query.assignee_ids is None or t.assignee_id in query.assignee_ids)
        and (query.requester_ids is None or t.requester_id in query.requester_ids)
        and (query.priorities is None or t.priority in query.priorities)
        and all(tag in t.tags for tag in query.tags)
        and (
            query.deadline_before is None
            or (t.next_deadline is not None and t.next_deadline <= query.deadline_before)
        )
        and (
            query.next_check_before is None
            or (t.next_check is not None and t.next_check <= query.next_check_before)
        )
    ]
    hits.sort(key=lambda t: t.id)  # stable sorts below: id breaks every tie
    far = T0 + timedelta(days=36500)  # stands for "no deadline / no check": after all others
    if query.sort is SortOrder.PRIORITY:
        hits.sort(key=lambda t: (t.priority.value, t.next_deadline or far, t.created_at))
    elif query.sort is SortOrder.DEADLINE:
        hits.sort(key=lambda t: (t.next_deadline or far, t.priority.value, t.created_at))
    elif query.sort is SortOrder.NEXT_CHECK:
        hits.sort(key=lambda t: t.next_check or far)
    elif query.sort is SortOrder.CREATED:
        hits.sort(key=lambda t: t.created_at)
    elif query.sort is SortOrder.CREATED_DESC:
        hits.sort(key=lambda t: t.created_at, reverse=True)
    elif query.sort is SortOrder.UPDATED:
        hits.sort(key=lambda t: t.updated_at)
    else:
        hits.sort(key=lambda t: t.updated_at, reverse=True)
    return [t.id for t in hits]


@settings(max_examples=100)
@given(ticket_sets(), queries)
def test_pagination_visits_every_match_once_in_order(
    tickets: list[Ticket], query: TicketQuery
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(len(tickets) + 2):
        page = attrs.evolve(query, after=cursor).page(tickets)
        assert len(page) <= query.limit
        seen += [t.id for t in page]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page) == query.limit  # only full pages have a next page
    assert cursor is None, "pagination did not end"
    assert seen == expected_order(query, tickets)


def _cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    "after",
    [
        "not a cursor!",
        "",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _cursor([1, 2]),
        _cursor({"s": "priority"}),
        _cursor({"s": "created", "k": [1, "a"]}),  # belongs to another sort order
        _cursor({"s": "priority", "k": "abc"}),
        _cursor({"s": "priority", "k": [1, True, "a"]}),
        _cursor({"s": "priority", "k": [1.5, 2, "a"]}),
        # Right order, wrong shape: used to pass and then crash the sort with a TypeError.
        _cursor({"s": "priority", "k": ["x"]}),
        _cursor({"s": "priority", "k": ["a", 1, 2]}),
        _cursor({"s": "priority", "k": [1, 2]}),
        _cursor({"s": "priority", "k": [1, 2, "a", "b"]}),
    ],
)
def test_bad_cursors_are_validation_errors(after: str) -> None:
    with pytest.raises(ValidationError, match="cursor"):
        TicketQuery(after=after).page(ALL)


def test_cursor_must_be_text() -> None:
    with pytest.raises(ValidationError, match="cursor"):
        TicketQuery(after=12)  # type: ignore[arg-type]


def test_cursor_from_another_sort_order_is_refused() -> None:
    cursor = TicketQuery(sort="created", limit=1).page(ALL).next_cursor
    assert cursor is not None
    with pytest.raises(ValidationError, match="cursor"):
        TicketQuery(sort="updated", after=cursor)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, True, "10", 2.0])
def test_bad_limits(limit: object) -> None:
    with pytest.raises(ValidationError, match="limit"):
        TicketQuery(limit=limit)  # type: ignore[arg-type]


def test_limits_at_the_bounds() -> None:
    assert TicketQuery(limit=1).limit == 1
    assert TicketQuery(limit=MAX_LIMIT).limit == MAX_LIMIT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sort": "newest"},
        {"categories": ["opened"]},
        {"priorities": ["P9"]},
        {"unassigned": True, "assignee_ids": ["ana"]},
    ],
)
def test_bad_filters_are_validation_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TicketQuery(**kwargs)  # type: ignore[arg-type]
