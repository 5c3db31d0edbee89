"""SLA policies and the SLA clock: a pure function of a ticket's events, a policy and ``now``.

Nothing here reads a clock, a store or a plugin. Policies live in :mod:`helpkit.sla.policies`,
the clock in :mod:`helpkit.sla.clock`. :func:`compute_sla` folds a ticket's whole history;
:class:`SlaFold` holds that fold so that it can be extended with new events, giving the same
result as folding the longer history again (the desk keeps one per ticket, so a command on a
long ticket costs what it costs on a new one). Due dates are recomputed from history, never
patched.

The clock of a metric **cycle** counts business time (the policy's calendar) while the cycle
is open and the ticket is *counting*: its status category is neither in the policy's
``pause_categories`` (pending and on_hold by default) nor solved nor closed. Paused time does
not count and is itself measured in business time: a cycle's ``elapsed`` is the sum of
``calendar.elapsed`` over its running intervals up to ``min(now, achieved/stopped)``.

Metrics:

* **first_response** -- one cycle (0) from the opening; achieved at the first public comment
  by an agent, including an agent's public opening message (achieved at once). Internal
  notes, contacts' messages and system messages never achieve it.
* **next_response** -- after the first public agent reply, each public comment by a contact
  that arrives while no next-response cycle is open starts a cycle (0, 1, 2...); the next
  public agent reply achieves it.
* **periodic_update** -- each public agent reply starts a cycle and achieves the previous one:
  the longest allowed gap between public agent replies while the ticket is active.
* **resolution** -- one cycle from the opening, achieved when the ticket becomes solved; a
  reopen (leaving solved for an active category) un-achieves it and resumes the same clock,
  the time spent solved not counting. Closing a solved ticket keeps it achieved.

Solved pauses the three response metrics. Closed (merged included) stops every open cycle for
good (``stopped_at``). Comments folded in by a merge (``MergeReceived``) neither start nor
achieve anything.

A cycle's target comes from the ticket's priority when the cycle ended (achieved or stopped)
or, for an open cycle, from the current priority: a priority change recomputes an open cycle
from its original start. A priority with no :class:`Targets` in the policy (or a ``None``
target) is not measured: that cycle has no clock. Breaches already recorded as
:class:`~helpkit.events.SlaBreached` events stay in the audit trail whatever happens later;
:func:`fired_checks` reads them.

``due`` is the earliest instant at which the cycle's counted business time reaches its
target: walking the running intervals in order, the first interval whose cumulative time
reaches the target ``X`` gives ``calendar.add(interval_start, X - counted_before)``; the last
interval of a running clock is open-ended, which projects the due date into the future. It is
``None`` when the cycle ended (achieved or stopped) or is paused without its counted time
having reached the target. Warning instants are computed the same way at ``fraction x target``.
A cycle is breached (``breached_at == due``) when ``due <= now`` and the cycle was not achieved
or stopped at or before ``due``; a late achievement keeps its ``breached_at`` (its ``state`` is
``achieved``).

The whole history is taken as given: ``now`` caps ``elapsed`` and decides whether a due date
has passed, but an event dated after ``now`` still counts (pass ``now`` at or after the last
event for a status "as of now"). Event times are read in sequence order and never go back (an
event dated before its predecessor is taken to happen at the predecessor's instant). Every
datetime returned is in UTC.
"""

from __future__ import annotations

from helpkit.sla.clock import SlaFold, compute_sla
from helpkit.sla.policies import (
    DEFAULT_PAUSE_CATEGORIES,
    Metric,
    SlaCondition,
    SlaContext,
    SlaPolicy,
    SlaPolicySet,
    Targets,
    parse_duration,
)
from helpkit.sla.status import (
    BREACH,
    ClockState,
    DueCheck,
    MetricClock,
    SlaCheck,
    SlaSchedule,
    SlaStatus,
    Threshold,
    fired_checks,
)

__all__ = [
    "BREACH",
    "DEFAULT_PAUSE_CATEGORIES",
    "ClockState",
    "DueCheck",
    "Metric",
    "MetricClock",
    "SlaCheck",
    "SlaCondition",
    "SlaContext",
    "SlaFold",
    "SlaPolicy",
    "SlaPolicySet",
    "SlaSchedule",
    "SlaStatus",
    "Targets",
    "Threshold",
    "compute_sla",
    "fired_checks",
    "parse_duration",
]
