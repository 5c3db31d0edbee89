"""The SLA sweep: record due warnings and breaches, and carry out escalation rules.

Application layer (it drives a :class:`~helpkit.Helpdesk`). It reads only the tickets whose
stored ``next_check`` is due, recomputes each one's SLA from its history, and records every
check crossed up to ``now`` exactly once per metric cycle: a second sweep, or a concurrent one
in another process, finds the checks already recorded (and a concurrent write loses on its
sequence number, reloads and finds them). Checks are processed in the order they were crossed,
recomputing after each escalation action, so the outcome does not depend on how often the
sweep ran.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from helpkit import lifecycle
from helpkit.errors import ConflictError, HelpkitError, InvalidTransitionError
from helpkit.escalation import Action, EscalationKind, escalation_target
from helpkit.events import Event
from helpkit.lifecycle import Outcome
from helpkit.queries import SortOrder, TicketQuery
from helpkit.sla import BREACH, compute_sla, fired_checks
from helpkit.tickets import Actor, Ticket

if TYPE_CHECKING:
    from helpkit.desk import Helpdesk

__all__ = ["SWEEP_ACTOR", "SweepReport", "plan_ticket", "sweep"]

log = logging.getLogger("helpkit.sweep")

SWEEP_ACTOR = Actor.system("sweep")
_MAX_STEPS = 200  # checks + actions per ticket per sweep; far above any real policy
_RETRIES = 5


@attrs.frozen
class SweepReport:
    """What one sweep did."""

    now: datetime
    examined: int = 0
    """Tickets whose next check was due."""
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    priority_raises: int = 0
    conflicts: int = 0
    """Writes that lost to a concurrent writer and were redone on fresh data."""
    failures: int = 0
    """Tickets that could not be processed (logged on ``helpkit.sweep``)."""

    def __add__(self, other: SweepReport) -> SweepReport:
        return SweepReport(
            now=self.now,
            examined=self.examined + other.examined,
            warnings=self.warnings + other.warnings,
            breaches=self.breaches + other.breaches,
            escalations=self.escalations + other.escalations,
            priority_raises=self.priority_raises + other.priority_raises,
            conflicts=self.conflicts + other.conflicts,
            failures=self.failures + other.failures,
        )


def plan_ticket(
    desk: Helpdesk, ticket: Ticket, events: Sequence[Event], now: datetime
) -> tuple[Outcome | None, SweepReport]:
    """The events a sweep at ``now`` records on ``ticket`` (``None`` if there is nothing)."""
    outcomes: list[Outcome] = []
    state = ticket
    history = list(events)
    counts = {"warnings": 0, "breaches": 0, "escalations": 0, "priority_raises": 0}
    policy = desk.sla_policy_for(state)
    for _ in range(_MAX_STEPS):
        if policy is None:
            break
        status = compute_sla(history, policy, now)
        fired = fired_checks(history, policy=policy.name)
        due = [c for c in status.pending_checks(fired) if c.at <= now]
        if not due:
            break
        check = due[0]
        clock = next(
            c for c in status.clocks if c.metric is check.metric and c.cycle == check.cycle
        )
        step: list[Outcome] = []
        if check.fraction >= BREACH:
            step.append(
                lifecycle.record_sla_breach(
                    state,
                    at=now,
                    actor=SWEEP_ACTOR,
                    policy=policy.name,
                    metric=check.metric.value,
                    cycle=check.cycle,
                    due=check.at,
                )
            )
            counts["breaches"] += 1
        else:
            step.append(
                lifecycle.record_sla_warning(
                    state,
                    at=now,
                    actor=SWEEP_ACTOR,
                    policy=policy.name,
                    metric=check.metric.value,
                    cycle=check.cycle,
                    threshold=check.fraction,
                    crossed_at=check.at,
                    due=clock.due,
                )
            )
            counts["warnings"] += 1
        state = step[-1].ticket
        # Actions act on live tickets only: a clock that ended meanwhile is just recorded.
        if state.category.is_active and clock.ended_at is None:
            for rule, action in desk.config.escalation.actions_for(
                check.metric.value, check.fraction
            ):
                reason = (
                    f"SLA {check.metric.value} "
                    + ("breached" if check.fraction >= BREACH else f"at {check.fraction:.0%}")
                    + f" (rule {rule.name})"
                )
                if action is Action.ESCALATE:
                    try:
                        group, new, old = escalation_target(
                            desk.ladder(), state.group_id, EscalationKind.HIERARCHICAL
                        )
                    except (InvalidTransitionError, HelpkitError) as exc:
                        log.info(
                            "ticket %s: rule %s cannot escalate: %s",
                            state.reference,
                            rule.name,
                            exc,
                        )
                        continue
                    step.append(
                        lifecycle.escalate(
                            state,
                            at=now,
                            actor=SWEEP_ACTOR,
                            kind=EscalationKind.HIERARCHICAL.value,
                            group_id=group,
                            tier=new.level if new else None,
                            previous_tier=old.level if old else None,
                            reason=reason,
                            rule=rule.name,
                        )
                    )
                    counts["escalations"] += 1
                elif action is Action.RAISE_PRIORITY:
                    raised = state.priority.raised()
                    if raised == state.priority:
                        continue
                    step.append(
                        lifecycle.override_priority(
                            state, raised, at=now, actor=SWEEP_ACTOR, reason=reason
                        )
                    )
                    counts["priority_raises"] += 1
                else:
                    continue  # notifications go out from the recorded event (see builtins)
                state = step[-1].ticket
        for outcome in step:
            history.extend(outcome.events)
        outcomes.extend(step)
        policy = desk.sla_policy_for(state)
    else:
        log.warning("ticket %s: sweep stopped after %d steps", ticket.reference, _MAX_STEPS)
    report = SweepReport(now=now, **counts)
    if not outcomes:
        return None, report
    return lifecycle.chain(outcomes), report


def sweep(desk: Helpdesk, now: datetime, *, batch: int = 500) -> SweepReport:
    """Process every ticket whose next check is at or before ``now``."""
    report = SweepReport(now=now)
    after: str | None = None
    while True:
        page = desk.store.query(
            TicketQuery(next_check_before=now, sort=SortOrder.NEXT_CHECK, limit=batch, after=after)
        )
        for ticket in page:
            report = report + _sweep_one(desk, ticket.id, now)
        if page.next_cursor is None:
            return report
        after = page.next_cursor


def _sweep_one(desk: Helpdesk, ticket_id: str, now: datetime) -> SweepReport:
    conflicts = 0
    for _ in range(_RETRIES):
        try:
            ticket = desk.store.get_ticket(ticket_id)
            if ticket.next_check is None or ticket.next_check > now:
                # Another sweep got here first and left nothing due.
                return SweepReport(now=now, examined=1, conflicts=conflicts)
            events = desk.store.events(ticket_id)
            outcome, report = plan_ticket(desk, ticket, events, now)
            if outcome is None:
                outcome = desk.reschedule_outcome(ticket, events, now)
            desk.commit_outcomes([outcome], known_events={ticket_id: events})
            return attrs.evolve(report, examined=1, conflicts=conflicts)
        except ConflictError:
            conflicts += 1
        except HelpkitError:
            log.exception("sweep failed on ticket %s", ticket_id)
            return SweepReport(now=now, examined=1, conflicts=conflicts, failures=1)
    log.error("ticket %s: gave up after %d conflicting writes", ticket_id, conflicts)
    return SweepReport(now=now, examined=1, conflicts=conflicts, failures=1)
