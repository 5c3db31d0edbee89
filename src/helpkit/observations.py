"""Decisions that record what the system observed about a ticket: an SLA check crossed, a
schedule recomputed, a message sent, failed or put back to be sent again. They are allowed on
closed tickets too (they record facts about a ticket, they do not change it) and are
re-exported by :mod:`helpkit.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from helpkit.events import (
    DeliveryFailed,
    DeliveryRevived,
    MessageSent,
    SlaBreached,
    SlaRescheduled,
    SlaWarned,
)
from helpkit.outcomes import Draft, Outcome
from helpkit.tickets import Actor, Ticket

__all__ = [
    "record_failed",
    "record_revived",
    "record_sent",
    "record_sla_breach",
    "record_sla_reschedule",
    "record_sla_warning",
]


def record_sla_warning(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    policy: str,
    metric: str,
    cycle: int,
    threshold: float,
    crossed_at: datetime,
    due: datetime | None,
) -> Outcome:
    """Record that an SLA metric crossed a warning threshold.

    Allowed on closed tickets too: it records a fact about the time before they closed.
    """
    draft = Draft(ticket, at, actor)
    draft.emit(
        SlaWarned,
        ticket.id,
        policy=policy,
        metric=metric,
        cycle=cycle,
        threshold=threshold,
        crossed_at=crossed_at,
        due=due,
    )
    return draft.outcome()


def record_sla_breach(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    policy: str,
    metric: str,
    cycle: int,
    due: datetime,
) -> Outcome:
    """Record that an SLA metric reached its target unachieved (allowed on closed tickets)."""
    draft = Draft(ticket, at, actor)
    draft.emit(SlaBreached, ticket.id, policy=policy, metric=metric, cycle=cycle, due=due)
    return draft.outcome()


def record_sla_reschedule(
    ticket: Ticket, *, at: datetime, actor: Actor, policy: str | None
) -> Outcome:
    """Record that the SLA schedule was recomputed (the configuration changed)."""
    draft = Draft(ticket, at, actor)
    draft.emit(SlaRescheduled, ticket.id, policy=policy, previous_policy=ticket.sla_policy)
    return draft.outcome()


def record_sent(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    delivery_id: str,
    kind: str,
    channel: str,
    recipients: Sequence[str],
    attempt: int,
    external_id: str | None,
    comment_id: str | None,
) -> Outcome:
    """Record that a channel took a message of the ticket (allowed on closed tickets: a reply
    may go out after the ticket was closed)."""
    draft = Draft(ticket, at, actor)
    draft.emit(
        MessageSent,
        ticket.id,
        delivery_id=delivery_id,
        kind=kind,
        channel=channel,
        recipients=tuple(recipients),
        attempt=attempt,
        external_id=external_id,
        comment_id=comment_id,
    )
    return draft.outcome()


def record_failed(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    delivery_id: str,
    kind: str,
    channel: str | None,
    reason: str,
    attempt: int,
    final: bool,
    next_attempt_at: datetime | None,
    comment_id: str | None,
) -> Outcome:
    """Record a failed attempt to send a message of the ticket (``final``: given up)."""
    draft = Draft(ticket, at, actor)
    draft.emit(
        DeliveryFailed,
        ticket.id,
        delivery_id=delivery_id,
        kind=kind,
        channel=channel,
        reason=reason,
        attempt=attempt,
        final=final,
        next_attempt_at=next_attempt_at,
        comment_id=comment_id,
    )
    return draft.outcome()


def record_revived(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    delivery_id: str,
    kind: str,
    comment_id: str | None,
) -> Outcome:
    """Record that a dead delivery was put back to be sent again, by ``actor``."""
    draft = Draft(ticket, at, actor)
    draft.emit(
        DeliveryRevived, ticket.id, delivery_id=delivery_id, kind=kind, comment_id=comment_id
    )
    return draft.outcome()
