"""What the SLA clock reports: each cycle's clock, a ticket's status, its checks and schedule.

Values only; :mod:`helpkit.sla.clock` computes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final, Literal, NamedTuple

import attrs

from helpkit.events import Event, SlaBreached, SlaWarned
from helpkit.sla.policies import Metric, _metric

__all__ = [
    "BREACH",
    "ClockState",
    "DueCheck",
    "Fired",
    "MetricClock",
    "SlaCheck",
    "SlaSchedule",
    "SlaStatus",
    "Threshold",
    "check_order",
    "checks_of",
    "fired_checks",
]

BREACH: Final = 1.0
"""The ``fraction`` of a check that stands for the breach itself (100 % of the target)."""

ClockState = Literal["running", "paused", "never_due", "achieved", "breached", "stopped"]

_METRIC_ORDER: Final = {m: i for i, m in enumerate(Metric)}


@attrs.frozen
class Threshold:
    """A warning threshold of a clock: the instant its counted time reaches ``fraction``.

    ``at`` follows the same rule as :attr:`MetricClock.due` (past, projected, or ``None``).
    """

    fraction: float
    at: datetime | None


class SlaCheck(NamedTuple):
    """A warning (``fraction < 1``) or breach (``fraction == 1.0``) instant of one cycle."""

    metric: Metric
    cycle: int
    fraction: float
    at: datetime

    @property
    def key(self) -> tuple[str, int, float]:
        """``(metric value, cycle, fraction)``: how :func:`fired_checks` names it."""
        return (self.metric.value, self.cycle, self.fraction)


def check_order(check: SlaCheck) -> tuple[datetime, int, int, float]:
    return (check.at, _METRIC_ORDER[check.metric], check.cycle, check.fraction)


@attrs.frozen(kw_only=True)
class MetricClock:
    """One cycle of one metric, as of ``now``.

    ``elapsed`` is the counted business time up to ``min(now, achieved/stopped)``;
    ``remaining = target - elapsed`` (negative past due). ``running`` and ``paused`` say
    whether an open cycle is counting at the end of the history; both are false once the
    cycle is achieved or stopped.
    """

    metric: Metric
    cycle: int
    started_at: datetime
    target: timedelta
    elapsed: timedelta
    remaining: timedelta
    running: bool
    paused: bool
    due: datetime | None
    achieved_at: datetime | None
    stopped_at: datetime | None
    breached_at: datetime | None
    warnings: tuple[Threshold, ...]

    @property
    def ended_at(self) -> datetime | None:
        """When the cycle was achieved or stopped, if it was."""
        return self.achieved_at if self.achieved_at is not None else self.stopped_at

    @property
    def state(self) -> ClockState:
        """``achieved`` or ``stopped`` once ended (see ``breached_at`` for a late one);
        otherwise ``breached`` if the target was reached, else ``running`` or ``paused``;
        ``never_due`` when it runs but the calendar has no open time left to reach its target
        (a calendar without any open time, say), so it has no due date and never breaches."""
        if self.achieved_at is not None:
            return "achieved"
        if self.stopped_at is not None:
            return "stopped"
        if self.breached_at is not None:
            return "breached"
        if self.running:
            return "running" if self.due is not None else "never_due"
        return "paused"

    def checks(self) -> tuple[SlaCheck, ...]:
        """The warnings and the breach crossed (or to be crossed) before the cycle ends."""
        return checks_of(self.metric, self.cycle, self.warnings, self.due, self.ended_at)


def checks_of(
    metric: Metric,
    cycle: int,
    warnings: Iterable[Threshold],
    due: datetime | None,
    end: datetime | None,
) -> tuple[SlaCheck, ...]:
    out = [
        SlaCheck(metric, cycle, w.fraction, w.at)
        for w in warnings
        if w.at is not None and (end is None or w.at < end)
    ]
    if due is not None and (end is None or due < end):
        out.append(SlaCheck(metric, cycle, BREACH, due))
    return tuple(out)


Fired = tuple[str, int, float]


@attrs.frozen
class SlaStatus:
    """Every measured cycle of a ticket under ``policy``, as of ``now`` (UTC)."""

    policy: str
    now: datetime
    clocks: tuple[MetricClock, ...]

    def current(self, metric: Metric | str) -> MetricClock | None:
        """The latest cycle of ``metric``, or ``None`` if it has no measured cycle."""
        wanted = _metric(metric)
        found = [c for c in self.clocks if c.metric is wanted]
        return max(found, key=lambda c: c.cycle) if found else None

    def cycles(self, metric: Metric | str) -> tuple[MetricClock, ...]:
        """Every measured cycle of ``metric``, oldest first."""
        wanted = _metric(metric)
        return tuple(c for c in self.clocks if c.metric is wanted)

    @property
    def next_deadline(self) -> datetime | None:
        """The earliest ``due`` among cycles neither achieved nor stopped (past if breached)."""
        dues = [
            c.due
            for c in self.clocks
            if c.due is not None and c.achieved_at is None and c.stopped_at is None
        ]
        return min(dues, default=None)

    @property
    def breached(self) -> bool:
        """Whether any cycle has breached (as of ``now``)."""
        return any(c.breached_at is not None for c in self.clocks)

    def checks(self) -> tuple[SlaCheck, ...]:
        """Every warning and breach crossed or to be crossed, in time order."""
        found = [check for clock in self.clocks for check in clock.checks()]
        found.sort(key=check_order)
        return tuple(found)

    def pending_checks(self, fired: Iterable[Fired] = ()) -> tuple[SlaCheck, ...]:
        """The checks not yet recorded (``fired`` as from :func:`fired_checks`), in order.

        Past ones are due now; the sweep records them, then waits for :meth:`next_check`.
        """
        done = frozenset(fired)
        return tuple(c for c in self.checks() if c.key not in done)

    def next_check(self, fired: Iterable[Fired] = ()) -> datetime | None:
        """The instant of the earliest check not yet recorded (the sweep's index), or None."""
        pending = self.pending_checks(fired)
        return pending[0].at if pending else None


def fired_checks(events: Iterable[Event], *, policy: str | None = None) -> frozenset[Fired]:
    """The checks already recorded: ``(metric, cycle, threshold)`` of ``SlaWarned`` events and
    ``(metric, cycle, 1.0)`` of ``SlaBreached`` events (of ``policy`` only, if given)."""
    out: set[Fired] = set()
    for event in events:
        if isinstance(event, SlaWarned) and (policy is None or event.policy == policy):
            out.add((event.metric, event.cycle, float(event.threshold)))
        elif isinstance(event, SlaBreached) and (policy is None or event.policy == policy):
            out.add((event.metric, event.cycle, BREACH))
    return frozenset(out)


class SlaSchedule(NamedTuple):
    """What a ticket stores for the sweep: its earliest open due date and its next check."""

    next_deadline: datetime | None
    next_check: datetime | None


class DueCheck(NamedTuple):
    """A check that is due, with what recording it needs to know of its cycle."""

    check: SlaCheck
    due: datetime | None
    """The cycle's due date (``None`` while paused short of its target)."""
    ended_at: datetime | None
    """When the cycle was achieved or stopped (``None`` while it is open)."""
