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
from helpkit.fold import apply
from helpkit.outcomes import Draft, Outcome
from helpkit.sla.status import BREACH, DueCheck
from helpkit.tickets import Actor, Ticket

__all__ = [
    "record_failed",
    "record_revived",
    "record_sent",
    "record_sla_check",
    "record_sla_reschedule",
    "sla_check_event",
]


def sla_check_event(
    ticket_id: str, seq: int, *, at: datetime, actor: Actor, policy: str, due: DueCheck
) -> SlaWarned | SlaBreached:
    """The event that records the crossed check ``due`` of a ticket under ``policy``, as its
    event ``seq``: ``SlaBreached`` for the breach, ``SlaWarned`` for a warning (with the
    instant it was crossed and the cycle's due date). The one place both of the sweep's
    paths build it (:func:`record_sla_check`, and its fast path, which decides from the kept
    SLA fold without the ticket)."""
    check = due.check
    metric = check.metric._value_  # not .value: the enum property costs more
    if check.fraction >= BREACH:
        return SlaBreached(
            ticket_id=ticket_id,
            seq=seq,
            at=at,
            actor=actor,
            policy=policy,
            metric=metric,
            cycle=check.cycle,
            due=check.at,
        )
    return SlaWarned(
        ticket_id=ticket_id,
        seq=seq,
        at=at,
        actor=actor,
        policy=policy,
        metric=metric,
        cycle=check.cycle,
        threshold=check.fraction,
        crossed_at=check.at,
        due=due.due,
    )


def record_sla_check(
    ticket: Ticket, *, at: datetime, actor: Actor, policy: str, due: DueCheck
) -> Outcome:
    """Record that an SLA metric crossed a check (a warning threshold, or its target
    unachieved: the breach); see :func:`sla_check_event`.

    Allowed on closed tickets too: it records a fact about the time before they closed.
    """
    event = sla_check_event(ticket.id, ticket.seq + 1, at=at, actor=actor, policy=policy, due=due)
    return Outcome(apply(ticket, event), (event,), ticket.seq, ticket)


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
