"""The SLA clock: a pure function of a ticket's events, a policy and ``now``.

Nothing here reads a clock, a store or a plugin. :class:`SlaFold` holds what the clock needs
to know of a ticket's history under one policy, built one event at a time; :func:`compute_sla`
folds a whole history and reports every cycle, and :meth:`SlaFold.schedule` gives the
ticket's next deadline and next check from the cycles still open and the checks not yet
recorded, so a command on a long ticket folds only its new events (see :mod:`helpkit.sla` for
the rules).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, NamedTuple

import attrs

from helpkit._records import replace
from helpkit._time import to_utc
from helpkit.errors import CalendarError, ValidationError
from helpkit.events import (
    CommentAdded,
    Event,
    MergedInto,
    PriorityChanged,
    SlaBreached,
    SlaWarned,
    StatusChanged,
    TicketOpened,
)
from helpkit.priority import Priority
from helpkit.sla.policies import Metric, SlaPolicy, _metric
from helpkit.tickets import ActorKind, StatusCategory

__all__ = [
    "BREACH",
    "ClockState",
    "DueCheck",
    "MetricClock",
    "SlaCheck",
    "SlaFold",
    "SlaSchedule",
    "SlaStatus",
    "Threshold",
    "compute_sla",
    "fired_checks",
]

BREACH: Final = 1.0
"""The ``fraction`` of a check that stands for the breach itself (100 % of the target)."""

ClockState = Literal["running", "paused", "never_due", "achieved", "breached", "stopped"]

_METRIC_ORDER: Final = {m: i for i, m in enumerate(Metric)}
_ZERO: Final = timedelta(0)


# ---------------------------------------------------------------- results


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


def _check_order(check: SlaCheck) -> tuple[datetime, int, int, float]:
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
        return _checks(self.metric, self.cycle, self.warnings, self.due, self.ended_at)


def _checks(
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
        found.sort(key=_check_order)
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


# ---------------------------------------------------------------- the fold


@attrs.frozen
class _Cycle:
    """One cycle of one metric, as far as the history goes (immutable: folds share it)."""

    metric: Metric
    index: int
    start: datetime
    base: timedelta
    """Counted business time at ``start`` (cycles measure from there)."""
    achieved_at: datetime | None = None
    stopped_at: datetime | None = None
    end_priority: Priority | None = None
    fired: frozenset[float] = frozenset()
    """The fractions already recorded for this cycle (``1.0`` for the breach)."""

    @property
    def end(self) -> datetime | None:
        return self.achieved_at if self.achieved_at is not None else self.stopped_at

    @property
    def is_open(self) -> bool:
        return self.achieved_at is None and self.stopped_at is None


def _counts(category: StatusCategory, pause: frozenset[StatusCategory]) -> bool:
    return category.is_active and category not in pause


class _Retired(NamedTuple):
    """Ended next-response and periodic-update cycles, newest first (a shared chain, so a
    longer history costs its fold nothing to copy)."""

    cycle: _Cycle
    older: _Retired | None


_SLOTS: Final = ("_first", "_resolution", "_next", "_periodic")


class SlaFold:
    """What the SLA clock knows of one ticket's history under one policy.

    Build one with :meth:`of` from a whole history, then :meth:`extend` it with the events
    that follow: the result is the same as folding the whole longer history (a property the
    tests check), at a cost that depends on the new events, not on the history's length.
    A fold is immutable; :meth:`extend` returns a new one.

    It keeps the ticket's counting intervals with their cumulative business time (due dates
    may fall in the past), the current cycle of each metric (at most four are open), the
    ended cycles they replaced (for :meth:`status` only), and the checks of ended cycles not
    recorded yet. :meth:`schedule` and :meth:`due_checks` look only at the current cycles and
    those pending checks.
    """

    __slots__ = (
        "_after",
        "_agent_replied",
        "_category",
        "_counting_since",
        "_ends",
        "_first",
        "_memo",
        "_next",
        "_pending",
        "_periodic",
        "_priority",
        "_resolution",
        "_retired",
        "_starts",
        "_t",
        "policy",
        "seq",
        "ticket_id",
    )

    policy: SlaPolicy
    ticket_id: str
    seq: int
    """The seq of the last event folded in."""
    _t: datetime
    _category: StatusCategory
    _priority: Priority
    _counting_since: datetime | None
    _starts: tuple[datetime, ...]
    _ends: tuple[datetime, ...]
    _after: tuple[timedelta, ...]
    _first: _Cycle
    _resolution: _Cycle
    _next: _Cycle | None
    _periodic: _Cycle | None
    _retired: _Retired | None
    _agent_replied: bool
    _pending: tuple[DueCheck, ...]
    _memo: dict[tuple[timedelta, timedelta], tuple[datetime | None, tuple[Threshold, ...]]]
    """Thresholds of open cycles by (base, target), valid while the intervals stay as they
    are (shared by folds extended from this one until their intervals change)."""

    @classmethod
    def of(cls, events: Sequence[Event], policy: SlaPolicy) -> SlaFold:
        """The fold of a whole history (its opening event first) under ``policy``."""
        if not isinstance(policy, SlaPolicy):
            raise ValidationError(f"policy must be an SlaPolicy; got {type(policy).__name__}")
        if not events or not isinstance(events[0], TicketOpened):
            raise ValidationError("an SLA clock needs the ticket's events, opening event first")
        opened = events[0]
        fold = object.__new__(cls)
        fold.policy = policy
        fold.ticket_id = opened.ticket_id
        fold.seq = opened.seq
        fold._t = opened.at
        fold._category = opened.category
        fold._priority = opened.priority
        fold._counting_since = None
        fold._starts = ()
        fold._ends = ()
        fold._after = ()
        fold._first = _Cycle(Metric.FIRST_RESPONSE, 0, opened.at, _ZERO)
        fold._resolution = _Cycle(Metric.RESOLUTION, 0, opened.at, _ZERO)
        fold._next = None
        fold._periodic = None
        fold._retired = None
        fold._agent_replied = False
        fold._pending = ()
        fold._memo = {}
        fold._count(_counts(fold._category, policy.pause_categories))
        for event in events[1:]:
            fold._apply(event)
        return fold

    def extend(self, events: Sequence[Event]) -> SlaFold:
        """This fold with ``events`` (those following its last one) folded in."""
        if not events:
            return self  # immutable: nothing to fold in, nothing to copy
        fold = object.__new__(SlaFold)
        for name in SlaFold.__slots__:
            object.__setattr__(fold, name, getattr(self, name))
        for event in events:
            fold._apply(event)
        return fold

    # ------------------------------------------------------------ counted business time

    def _total(self) -> timedelta:
        return self._after[-1] if self._after else _ZERO

    def _until(self, t: datetime) -> timedelta:
        """Counted business time from the opening up to ``t``."""
        since = self._counting_since
        if since is not None and t >= since:
            return self._total() + self.policy.calendar.elapsed(since, t)
        k = bisect_right(self._starts, t) - 1
        if k < 0:
            return _ZERO
        if t >= self._ends[k]:
            return self._after[k]
        before = self._after[k - 1] if k else _ZERO
        return before + self.policy.calendar.elapsed(self._starts[k], t)

    def _reach(self, value: timedelta, limit: datetime | None) -> datetime | None:
        """The earliest instant counted time reaches ``value`` (``None`` if not by ``limit``,
        or never while paused for good)."""
        k = bisect_left(self._after, value)
        if k == len(self._after):
            if self._counting_since is None:
                return None  # paused (or stopped) for good without reaching it
            start, before = self._counting_since, self._total()
        else:
            start, before = self._starts[k], (self._after[k - 1] if k else _ZERO)
        try:
            found = self.policy.calendar.add(start, value - before)
        except CalendarError:
            return None  # a calendar with no open time never gets there
        found = found.astimezone(UTC)
        if limit is not None and found > limit:
            return None
        return found

    def _count(self, counting: bool) -> None:
        if counting and self._counting_since is None:
            self._counting_since = self._t
            self._memo = {}
        elif not counting and self._counting_since is not None:
            self._memo = {}
            since, self._counting_since = self._counting_since, None
            if self._t > since:
                counted = self._total() + self.policy.calendar.elapsed(since, self._t)
                self._starts = (*self._starts, since)
                self._ends = (*self._ends, self._t)
                self._after = (*self._after, counted)

    # ------------------------------------------------------------ cycles

    def _current(self) -> list[_Cycle]:
        cycles = [self._first, self._resolution]
        if self._next is not None:
            cycles.append(self._next)
        if self._periodic is not None:
            cycles.append(self._periodic)
        return cycles

    def _start(self, slot: str, metric: Metric) -> None:
        """A new cycle of ``metric`` in ``slot`` ("_next" or "_periodic"); the ended one it
        replaces is retired."""
        previous: _Cycle | None = getattr(self, slot)
        index = 0
        if previous is not None:
            index = previous.index + 1
            self._retired = _Retired(previous, self._retired)
        setattr(self, slot, _Cycle(metric, index, self._t, self._until(self._t)))

    def _end(self, slot: str, *, achieved: bool) -> None:
        cycle: _Cycle | None = getattr(self, slot)
        if cycle is None or not cycle.is_open:
            return
        ended = replace(
            cycle,
            achieved_at=self._t if achieved else None,
            stopped_at=None if achieved else self._t,
            end_priority=self._priority,
        )
        setattr(self, slot, ended)
        # An ended cycle's checks are fixed from now on: keep those not recorded yet.
        target = self.policy.target(ended.metric, self._priority)
        if target is not None:
            due, warnings = self._thresholds(ended, target, ended.end)
            self._pending = self._pending + tuple(
                DueCheck(check, due, ended.end)
                for check in _checks(ended.metric, ended.index, warnings, due, ended.end)
                if check.fraction not in ended.fired
            )

    def _reopen_resolution(self) -> None:
        self._resolution = replace(self._resolution, achieved_at=None, end_priority=None)
        self._pending = tuple(p for p in self._pending if p.check.metric is not Metric.RESOLUTION)

    def _record(self, metric_name: str, index: int, fraction: float) -> None:
        """A recorded warning or breach of this policy: that check is no longer pending."""
        for slot in _SLOTS:
            cycle: _Cycle | None = getattr(self, slot)
            if (
                cycle is not None
                and cycle.metric.value == metric_name
                and cycle.index == index
                and fraction not in cycle.fired
            ):
                setattr(self, slot, replace(cycle, fired=cycle.fired | {fraction}))
        if self._pending:
            self._pending = tuple(
                p
                for p in self._pending
                if not (
                    p.check.fraction == fraction
                    and p.check.cycle == index
                    and p.check.metric.value == metric_name
                )
            )

    def _apply(self, event: Event) -> None:
        if event.ticket_id != self.ticket_id:
            raise ValidationError(
                f"event {event.TYPE} of ticket {event.ticket_id} among those of {self.ticket_id}"
            )
        self.seq = event.seq
        self._t = max(self._t, event.at)
        if isinstance(event, SlaWarned | SlaBreached):
            # Recorded checks are facts of the history: they count even after closing.
            if event.policy == self.policy.name:
                fraction = float(event.threshold) if isinstance(event, SlaWarned) else BREACH
                self._record(event.metric, event.cycle, fraction)
            return
        if self._category is StatusCategory.CLOSED:
            return  # closed is final: nothing after it moves a clock
        if isinstance(event, CommentAdded) and event.comment.public:
            kind = event.comment.author.kind
            if kind is ActorKind.AGENT:
                self._end("_first", achieved=True)
                self._end("_next", achieved=True)
                self._end("_periodic", achieved=True)
                self._start("_periodic", Metric.PERIODIC_UPDATE)
                self._agent_replied = True
            elif kind is ActorKind.CONTACT and self._agent_replied and not self._next_open():
                self._start("_next", Metric.NEXT_RESPONSE)
        elif isinstance(event, StatusChanged):
            self._category_to(event.category)
        elif isinstance(event, MergedInto):
            self._category_to(StatusCategory.CLOSED)
        elif isinstance(event, PriorityChanged):
            self._priority = event.priority

    def _next_open(self) -> bool:
        return self._next is not None and self._next.is_open

    def _category_to(self, category: StatusCategory) -> None:
        previous, self._category = self._category, category
        if category is StatusCategory.SOLVED:
            self._end("_resolution", achieved=True)
        elif category is StatusCategory.CLOSED:
            for slot in _SLOTS:
                self._end(slot, achieved=False)
        elif previous is StatusCategory.SOLVED and self._resolution.achieved_at is not None:
            self._reopen_resolution()  # a reopen resumes the same clock
        self._count(_counts(category, self.policy.pause_categories))

    # ------------------------------------------------------------ results

    def _thresholds(
        self, cycle: _Cycle, target: timedelta, end: datetime | None
    ) -> tuple[datetime | None, tuple[Threshold, ...]]:
        due = self._reach(cycle.base + target, end)
        warnings = tuple(
            Threshold(f, self._reach(cycle.base + target * f, end)) for f in self.policy.warn_at
        )
        return due, warnings

    def _open_cycles(self) -> list[tuple[_Cycle, datetime | None, tuple[Threshold, ...]]]:
        """Each open, measured cycle with its due date and warning instants."""
        found = []
        for cycle in self._current():
            if not cycle.is_open:
                continue
            target = self.policy.target(cycle.metric, self._priority)
            if target is None:
                continue
            key = (cycle.base, target)
            thresholds = self._memo.get(key)
            if thresholds is None:
                thresholds = self._memo[key] = self._thresholds(cycle, target, None)
            found.append((cycle, *thresholds))
        return found

    def _open_checks(self) -> list[DueCheck]:
        return [
            DueCheck(check, due, None)
            for cycle, due, warnings in self._open_cycles()
            for check in _checks(cycle.metric, cycle.index, warnings, due, None)
            if check.fraction not in cycle.fired
        ]

    def schedule(self) -> SlaSchedule:
        """The earliest due date of the open cycles and the earliest check not recorded.

        Equal to ``status.next_deadline`` and ``status.next_check(fired_checks(events,
        policy=...))`` of the whole history, computed from the open cycles and the pending
        checks only.
        """
        deadline: datetime | None = None
        instants = [p.check.at for p in self._pending]
        for cycle, due, warnings in self._open_cycles():
            if due is not None and (deadline is None or due < deadline):
                deadline = due
            instants.extend(
                check.at
                for check in _checks(cycle.metric, cycle.index, warnings, due, None)
                if check.fraction not in cycle.fired
            )
        return SlaSchedule(deadline, min(instants, default=None))

    def due_checks(self, now: datetime) -> tuple[DueCheck, ...]:
        """The checks not recorded yet whose instant is at or before ``now``, in the order
        they were crossed (what a sweep at ``now`` records)."""
        at = to_utc(now, "now")
        found = [p for p in (*self._pending, *self._open_checks()) if p.check.at <= at]
        found.sort(key=lambda p: _check_order(p.check))
        return tuple(found)

    def status(self, now: datetime) -> SlaStatus:
        """Every measured cycle as of ``now``."""
        at = to_utc(now, "now")
        cycles = self._current()
        retired = self._retired
        while retired is not None:
            cycles.append(retired.cycle)
            retired = retired.older
        clocks: list[MetricClock] = []
        for cycle in cycles:
            priority = cycle.end_priority if cycle.end_priority is not None else self._priority
            target = self.policy.target(cycle.metric, priority)
            if target is not None:
                clocks.append(self._clock(cycle, target, at))
        clocks.sort(key=lambda c: (_METRIC_ORDER[c.metric], c.cycle))
        return SlaStatus(self.policy.name, at, tuple(clocks))

    def _clock(self, cycle: _Cycle, target: timedelta, now: datetime) -> MetricClock:
        end = cycle.end
        cap = now if end is None else min(now, end)
        elapsed = self._until(max(cap, cycle.start)) - cycle.base
        due, warnings = self._thresholds(cycle, target, end)
        crossed = due is not None and due <= now and (end is None or due < end)
        counting = self._counting_since is not None
        return MetricClock(
            metric=cycle.metric,
            cycle=cycle.index,
            started_at=cycle.start,
            target=target,
            elapsed=elapsed,
            remaining=target - elapsed,
            running=cycle.is_open and counting,
            paused=cycle.is_open and not counting,
            due=due,
            achieved_at=cycle.achieved_at,
            stopped_at=cycle.stopped_at,
            breached_at=due if crossed else None,
            warnings=warnings,
        )


def compute_sla(events: Sequence[Event], policy: SlaPolicy, now: datetime) -> SlaStatus:
    """Every measured SLA cycle of one ticket under ``policy``, as of ``now``.

    ``events`` are the ticket's events in sequence order, its opening first. The result is a
    pure function of the arguments (see :mod:`helpkit.sla` for the exact rules).
    """
    if not isinstance(policy, SlaPolicy):
        raise ValidationError(f"policy must be an SlaPolicy; got {type(policy).__name__}")
    at = to_utc(now, "now")
    return SlaFold.of(events, policy).status(at)
