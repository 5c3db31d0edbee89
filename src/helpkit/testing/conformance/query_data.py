"""The query data set: a dozen tickets covering every filter and sort order.

The tickets tie in created and updated times and in SLA deadlines and checks, some of
which later writes change. The query cases run :data:`_FILTERS` over them; the
persistence cases reopen a store holding them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from helpkit import lifecycle
from helpkit.lifecycle import Outcome
from helpkit.ports import Store
from helpkit.priority import Impact, Urgency
from helpkit.testing.conformance.helpers import (
    _AGENT,
    _H,
    _US,
    BASE_TIME,
    _note,
    _open,
    _Time,
    change_of,
    with_schedule,
)
from helpkit.tickets import DEFAULT_WORKFLOW, StatusCategory, Ticket

_FILTERS: tuple[dict[str, Any], ...] = (
    {},
    {"statuses": "open"},
    {"statuses": {"pending", "solved"}},
    {"categories": StatusCategory.NEW},
    {"categories": ["open", "on_hold"]},
    {"categories": "closed"},
    {"assignee_ids": "a1"},
    {"assignee_ids": {"a1", "a2"}},
    {"unassigned": True},
    {"group_ids": "g1"},
    {"group_ids": {"g1", "g2"}},
    {"requester_ids": "c2"},
    {"organization_ids": "o1"},
    {"organization_ids": {"o1", "o2"}},
    {"priorities": 1},
    {"priorities": [2, 3]},
    {"tags": "vpn"},
    {"tags": {"vpn", "urgent"}},
    {"tags": "no-ticket-has-this"},
    {"categories": ["new", "open"], "group_ids": "g1", "tags": "vpn"},
    {"unassigned": True, "organization_ids": "o2", "priorities": [3, 4, 5]},
    # The SLA filters: the bounds are inclusive, instants exact to the microsecond, and a
    # ticket without a deadline (or check) never matches.
    {"deadline_before": BASE_TIME - timedelta(days=30)},
    {"deadline_before": BASE_TIME + timedelta(hours=2)},
    {"deadline_before": BASE_TIME + timedelta(hours=2) - _US},
    {"deadline_before": BASE_TIME + timedelta(days=3650)},
    {"next_check_before": BASE_TIME},
    {"next_check_before": BASE_TIME + timedelta(minutes=90)},
    {"next_check_before": BASE_TIME + timedelta(minutes=90) - _US},
    {"next_check_before": BASE_TIME + timedelta(days=3650)},
    {"categories": ["new", "open"], "next_check_before": BASE_TIME + timedelta(days=1)},
    {"assignee_ids": "a1", "deadline_before": BASE_TIME + timedelta(hours=3)},
    {"group_ids": "g1", "categories": ["new", "open", "pending"], "deadline_before": BASE_TIME},
    {
        "deadline_before": BASE_TIME + timedelta(hours=2),
        "next_check_before": BASE_TIME + timedelta(minutes=90),
    },
)


# (policy, next deadline, next check) of each query ticket when opened, relative to
# BASE_TIME: ties within and across priorities, past and future instants, a microsecond
# apart, and missing ones (a ticket without a policy, a deadline without a pending check, a
# check without a deadline).
_SCHEDULES: dict[str, tuple[str | None, timedelta | None, timedelta | None]] = {
    "t000": ("gold", 2 * _H, 1.5 * _H),
    "t001": ("gold", -_H, -_H),
    "t002": (None, None, None),
    "t003": ("silver", 2 * _H, 1.5 * _H),
    "t004": ("silver", None, 26 * _H),
    "t005": ("gold", 2 * _H + _US, 2 * _H),
    "t100": ("gold", 30 * _H, None),
    "t101": ("gold", 2 * _H, 1.5 * _H - _US),
    "t102": (None, None, None),
    "t103": ("silver", -48 * _H, -48 * _H),
    "t104": ("bronze", None, None),
    "t105": ("gold", 2 * _H - _US, _H),
}

# Schedules changed by a later write: a store must re-index them on update, not only on insert.
_RESCHEDULES: dict[str, tuple[str | None, timedelta | None, timedelta | None]] = {
    "t000": ("gold", 2 * _H, 40 * _H),  # pending: the check moves away
    "t001": ("gold", -_H, None),  # on hold: no check pending, the deadline stays
    "t100": (None, None, None),  # solved: every clock stopped
    "t104": ("gold", 0.5 * _H, -2 * _H),  # reopened: due soon, a check overdue
    "t101": ("gold", 2 * _H, 1.5 * _H),  # noted: into the tie with t000 and t003
    "t105": ("silver", -3 * _H, -3 * _H),  # noted: another policy, already breached
}


def _scheduled(outcome: Outcome) -> Outcome:
    ticket_id = outcome.ticket.id
    table = _SCHEDULES if outcome.previous_seq == 0 else _RESCHEDULES
    if ticket_id not in table:
        return outcome
    policy, deadline, check = table[ticket_id]
    return with_schedule(
        outcome,
        policy=policy,
        deadline=None if deadline is None else BASE_TIME + deadline,
        check=None if check is None else BASE_TIME + check,
    )


def _build_query_data(store: Store) -> list[Ticket]:
    """A dozen tickets covering every filter, with ties in created and updated times and in
    SLA deadlines and checks (some missing, some changed by later writes)."""
    time = _Time()
    specs: list[dict[str, Any]] = [
        {"requester_id": "c1", "organization_id": "o1", "impact": Impact.HIGH,
         "urgency": Urgency.HIGH, "assignee_id": "a1", "group_id": "g1", "tags": ["vpn"]},
        {"requester_id": "c2", "organization_id": "o1", "impact": Impact.HIGH,
         "urgency": Urgency.MEDIUM, "group_id": "g1", "tags": ["vpn", "urgent"]},
        {"requester_id": "c2", "organization_id": "o2", "impact": Impact.MEDIUM,
         "urgency": Urgency.MEDIUM, "assignee_id": "a2", "group_id": "g2"},
        {"requester_id": "c3", "organization_id": None, "impact": Impact.LOW,
         "urgency": Urgency.LOW, "tags": ["billing"]},
        {"requester_id": "c1", "organization_id": "o2", "impact": Impact.MEDIUM,
         "urgency": Urgency.LOW, "tags": ["vpn"], "group_id": "g1"},
        {"requester_id": "c3", "organization_id": "o2", "impact": Impact.LOW,
         "urgency": Urgency.HIGH, "assignee_id": "a1", "group_id": "g2", "tags": ["urgent"]},
    ]  # fmt: skip
    tickets: dict[str, Ticket] = {}

    def commit(*outcomes: Outcome) -> None:
        scheduled = [_scheduled(o) for o in outcomes]
        store.commit([change_of(o) for o in scheduled])
        for outcome in scheduled:
            tickets[outcome.ticket.id] = outcome.ticket

    # Two rounds; tickets of the same round position share a creation time, so the id
    # tie-break is exercised in every sort order.
    for round_ in range(2):
        for i, spec in enumerate(specs):
            at = BASE_TIME + timedelta(hours=i)
            ticket_id = f"t{round_}{i:02d}"
            commit(_open(ticket_id, round_ * len(specs) + i + 1, at, **spec))
    # Move some tickets through the workflow so statuses and updated times differ.
    moves = {
        "t000": "pending",
        "t001": "on_hold",
        "t002": "solved",
        "t003": "closed",
        "t100": "solved",
        "t104": "open",
    }
    for ticket_id, status in moves.items():
        at = time.tick(3600 * 24)
        commit(
            lifecycle.change_status(
                tickets[ticket_id], status, at=at, actor=_AGENT, workflow=DEFAULT_WORKFLOW
            )
        )
    at = time.tick(3600 * 24)
    # Same updated time for two tickets (a tie in the updated orders).
    commit(_note(tickets["t101"], at), _note(tickets["t105"], at))
    at = time.tick(3600 * 24)
    commit(
        *lifecycle.merge(
            tickets["t102"],
            tickets["t104"],
            (),
            at=at,
            actor=_AGENT,
            workflow=DEFAULT_WORKFLOW,
        )
    )
    return list(tickets.values())
