"""Conformance cases for reads and queries.

Unknown keys raise NotFoundError; queries give exactly the reference's pages (every
filter and sort order, paginated); the SLA orders put missing instants last, and the
SLA index follows every write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest

from helpkit import lifecycle
from helpkit.errors import NotFoundError
from helpkit.lifecycle import Outcome
from helpkit.ports import Store
from helpkit.priority import ITIL_MATRIX, Impact, Priority, Urgency
from helpkit.queries import SortOrder, TicketQuery
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import (
    _AGENT,
    _H,
    _US,
    BASE_TIME,
    _contact,
    _note,
    _open,
    _organization,
    _pages,
    _reference_pages,
    _Time,
    change_of,
    with_schedule,
)
from helpkit.testing.conformance.query_data import _FILTERS, _build_query_data
from helpkit.tickets import DEFAULT_WORKFLOW, Ticket


class QueryCases(SuiteBase):
    """Reads: unknown keys raise NotFoundError; queries match the reference exactly."""

    # ------------------------------------------------------------ not found

    def test_unknown_keys_raise_not_found(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        store.save_contact(_contact("c1", "Ann", ["ann@example.com"]))
        store.save_organization(_organization("o1", "Acme", ["acme.example"]))
        lookups: dict[str, Callable[[], object]] = {
            "get_ticket": lambda: store.get_ticket("nope"),
            "get_ticket_by_number": lambda: store.get_ticket_by_number(opened.ticket.number + 1),
            "events": lambda: store.events("nope"),
            "get_contact": lambda: store.get_contact("nope"),
            "contact_by_email": lambda: store.contact_by_email("nobody@example.com"),
            "contact_by_email (not an address)": lambda: store.contact_by_email("not an email"),
            "get_organization": lambda: store.get_organization("nope"),
            "organization_by_domain": lambda: store.organization_by_domain("nowhere.example"),
            "get_agent": lambda: store.get_agent("nope"),
            "get_group": lambda: store.get_group("nope"),
        }
        for name, lookup in lookups.items():
            try:
                lookup()
            except NotFoundError:
                continue
            pytest.fail(f"{name} of an unknown key returned instead of raising NotFoundError")

    # ------------------------------------------------------------ queries

    @pytest.mark.parametrize("order", list(SortOrder), ids=[o.value for o in SortOrder])
    def test_queries_match_the_reference_semantics(self, store: Store, order: SortOrder) -> None:
        tickets = _build_query_data(store)
        for ticket in tickets:
            assert store.get_ticket(ticket.id) == ticket
        for filters in _FILTERS:
            for limit in (1, 3, 50):
                query = TicketQuery(sort=order, limit=limit, **filters)
                expected = _reference_pages(tickets, query)
                got = _pages(store.query, query)
                assert got == expected, f"query {query!r}"
                seen = [t.id for page in got for t in page]
                matching = [t.id for t in tickets if query.matches(t)]
                assert len(seen) == len(set(seen)), f"a ticket was listed twice by {query!r}"
                assert sorted(seen) == sorted(matching), f"query {query!r}"
                keys = [query.sort_key(t) for page in got for t in page]
                assert keys == sorted(keys)

    def test_the_last_full_page_has_no_cursor(self, store: Store) -> None:
        time = _Time()
        for i in range(4):
            store.commit([change_of(_open(f"t{i}", i + 1, time.tick()))])
        page = store.query(TicketQuery(sort=SortOrder.CREATED, limit=4))
        assert [t.id for t in page] == ["t0", "t1", "t2", "t3"]
        assert page.next_cursor is None
        first = store.query(TicketQuery(sort=SortOrder.CREATED, limit=2))
        assert [t.id for t in first] == ["t0", "t1"]
        assert first.next_cursor is not None
        second = store.query(TicketQuery(sort=SortOrder.CREATED, limit=2, after=first.next_cursor))
        assert [t.id for t in second] == ["t2", "t3"]
        assert second.next_cursor is None

    def test_queries_see_committed_changes(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        assigned = lifecycle.assign(
            opened.ticket, at=time.tick(), actor=_AGENT, assignee_id="a1", group_id="g1"
        )
        tagged = lifecycle.change_tags(assigned.ticket, at=time.tick(), actor=_AGENT, add=["vpn"])
        raised = lifecycle.change_priority(
            tagged.ticket,
            at=time.tick(),
            actor=_AGENT,
            matrix=ITIL_MATRIX,
            impact=Impact.HIGH,
            urgency=Urgency.HIGH,
        )
        store.commit([change_of(assigned), change_of(tagged), change_of(raised)])
        assert store.query(TicketQuery(unassigned=True)).items == ()
        found = store.query(
            TicketQuery(assignee_ids="a1", group_ids="g1", tags="vpn", priorities=[Priority.P1])
        )
        assert found.items == (raised.ticket,)

    def test_sla_orders_put_missing_instants_last(self, store: Store) -> None:
        time = _Time()
        p1 = {"impact": Impact.HIGH, "urgency": Urgency.HIGH}
        p3 = {"impact": Impact.MEDIUM, "urgency": Urgency.MEDIUM}
        p5 = {"impact": Impact.LOW, "urgency": Urgency.LOW}
        # In creation order; ids are not, so a tie broken by creation time instead of id shows.
        specs: list[tuple[str, dict[str, Any], timedelta | None, timedelta | None]] = [
            ("d", p3, _H, None),
            ("f", p1, None, 0.5 * _H),
            ("a", p3, _H, 0.5 * _H),
            ("c", p1, 3 * _H, 3 * _H),
            ("b", p3, None, None),
            ("e", p5, -_H, -_H),
        ]
        tickets = []
        for number, (ticket_id, priority, deadline, check) in enumerate(specs, start=1):
            outcome = with_schedule(
                _open(ticket_id, number, time.tick(), **priority),
                policy="gold" if deadline or check else None,
                deadline=None if deadline is None else BASE_TIME + deadline,
                check=None if check is None else BASE_TIME + check,
            )
            store.commit([change_of(outcome)])
            tickets.append(outcome.ticket)
        expected = {
            (SortOrder.PRIORITY, None): "cfdabe",
            (SortOrder.DEADLINE, None): "edacfb",
            (SortOrder.NEXT_CHECK, None): "eafcbd",
            (SortOrder.DEADLINE, ("deadline_before", _H)): "eda",
            (SortOrder.DEADLINE, ("deadline_before", _H - _US)): "e",
            (SortOrder.PRIORITY, ("deadline_before", 3 * _H)): "cdae",
            (SortOrder.NEXT_CHECK, ("next_check_before", 0.5 * _H)): "eaf",
            (SortOrder.NEXT_CHECK, ("next_check_before", 0.5 * _H - _US)): "e",
            (SortOrder.NEXT_CHECK, ("next_check_before", -_H - _US)): "",
        }
        for (order, bound), ids in expected.items():
            filters: dict[str, Any] = {} if bound is None else {bound[0]: BASE_TIME + bound[1]}
            for limit in range(1, len(specs) + 2):
                query = TicketQuery(sort=order, limit=limit, **filters)
                got = _pages(store.query, query)
                assert "".join(t.id for page in got for t in page) == ids, f"query {query!r}"
                assert got == _reference_pages(tickets, query), f"query {query!r}"

    def test_the_sla_index_follows_every_write(self, store: Store) -> None:
        time = _Time()
        now = BASE_TIME + 2 * _H
        sweep = TicketQuery(next_check_before=now, sort=SortOrder.NEXT_CHECK)
        breaching = TicketQuery(deadline_before=now + _H, sort=SortOrder.DEADLINE)
        queue = TicketQuery(categories=["new", "open"], sort=SortOrder.PRIORITY)

        def ids(query: TicketQuery) -> list[str]:
            return [
                t.id for page in _pages(store.query, attrs.evolve(query, limit=1)) for t in page
            ]

        def commit(outcome: Outcome, deadline: timedelta | None, check: timedelta | None) -> Ticket:
            scheduled = with_schedule(
                outcome,
                policy=None if deadline is None and check is None else "gold",
                deadline=None if deadline is None else now + deadline,
                check=None if check is None else now + check,
            )
            store.commit([change_of(scheduled)])
            assert store.get_ticket(scheduled.ticket.id) == scheduled.ticket
            return scheduled.ticket

        t1 = commit(_open("t1", 1, time.tick()), 4 * _H, _H)
        t2 = commit(_open("t2", 2, time.tick()), -_H, -_H)
        assert (ids(sweep), ids(breaching)) == (["t2"], ["t2"])
        # t1 becomes due: its check moves into the past, its deadline closer.
        t1 = commit(_note(t1, time.tick()), 0.5 * _H, -0.5 * _H)
        assert (ids(sweep), ids(breaching)) == (["t2", "t1"], ["t2", "t1"])
        # A sweep records t2's breach: nothing left to check, the deadline stays.
        t2 = commit(_note(t2, time.tick()), -_H, None)
        assert (ids(sweep), ids(breaching)) == (["t1"], ["t2", "t1"])
        # t1 is solved: every clock stops.
        solved = lifecycle.change_status(
            t1, "solved", at=time.tick(), actor=_AGENT, workflow=DEFAULT_WORKFLOW
        )
        t1 = commit(solved, None, None)
        assert (ids(sweep), ids(breaching)) == ([], ["t2"])
        # Within a priority, the queue follows the current deadline (none last).
        commit(_open("t3", 3, time.tick()), 3 * _H, None)
        t4 = commit(_open("t4", 4, time.tick()), 2 * _H, None)
        assert ids(queue) == ["t2", "t4", "t3"]
        t4 = commit(_note(t4, time.tick()), None, None)
        assert ids(queue) == ["t2", "t3", "t4"]
        t2 = commit(_note(t2, time.tick()), 5 * _H, 5 * _H)
        assert ids(queue) == ["t3", "t2", "t4"]
        assert (ids(sweep), ids(breaching)) == ([], [])
