"""The SLA clock as it was before folds could be extended: the whole history, every time.

A test oracle (issue #10): :class:`helpkit.sla.SlaFold` must give what this full fold gives,
whether it folded a history at once or one piece after another. Kept as it was when the
independent checks of the SLA math agreed with it; only its imports changed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs

from helpkit._time import to_utc
from helpkit.calendar import BusinessCalendar
from helpkit.errors import CalendarError, ValidationError
from helpkit.events import (
    CommentAdded,
    Event,
    MergedInto,
    PriorityChanged,
    StatusChanged,
    TicketOpened,
)
from helpkit.priority import Priority
from helpkit.sla import Metric, MetricClock, SlaPolicy, SlaStatus, Threshold
from helpkit.tickets import ActorKind, StatusCategory

_METRIC_ORDER = {m: i for i, m in enumerate(Metric)}


@attrs.define
class _Cycle:
    metric: Metric
    index: int
    start: datetime
    achieved_at: datetime | None = None
    stopped_at: datetime | None = None
    end_priority: Priority | None = None

    @property
    def end(self) -> datetime | None:
        return self.achieved_at if self.achieved_at is not None else self.stopped_at

    @property
    def is_open(self) -> bool:
        return self.achieved_at is None and self.stopped_at is None


class _Counted:
    """Counted business time since the opening, over the ticket's counting intervals.

    ``until(t)`` is the counted time up to ``t``; ``reach(v, limit)`` is the earliest instant
    at which it reaches ``v`` (``None`` if not by ``limit``, or never while paused).
    """

    def __init__(
        self, calendar: BusinessCalendar, intervals: list[tuple[datetime, datetime | None]]
    ) -> None:
        self.calendar = calendar
        self.starts = [s for s, _ in intervals]
        self.ends = [e for _, e in intervals]
        self.open_ended = bool(intervals) and intervals[-1][1] is None
        self.before: list[timedelta] = []  # counted before interval k
        self.after: list[timedelta] = []  # counted at the end of closed interval k
        total = timedelta(0)
        for s, e in intervals:
            self.before.append(total)
            if e is not None:
                total += calendar.elapsed(s, e)
                self.after.append(total)

    def until(self, t: datetime) -> timedelta:
        k = bisect_right(self.starts, t) - 1
        if k < 0:
            return timedelta(0)
        end = self.ends[k]
        if end is not None and t >= end:
            return self.after[k]
        return self.before[k] + self.calendar.elapsed(self.starts[k], t)

    def reach(self, value: timedelta, limit: datetime | None) -> datetime | None:
        k = bisect_left(self.after, value)
        if k == len(self.after) and not self.open_ended:
            return None  # paused (or stopped) for good without reaching it
        try:
            found = self.calendar.add(self.starts[k], value - self.before[k])
        except CalendarError:
            return None  # a calendar with no open time never gets there
        found = found.astimezone(UTC)
        if limit is not None and found > limit:
            return None
        return found


def _counts(category: StatusCategory, pause: frozenset[StatusCategory]) -> bool:
    return category.is_active and category not in pause


class _Fold:
    """Walks a ticket's events once, recording counting intervals, priorities and cycles."""

    def __init__(self, events: Sequence[Event], pause: frozenset[StatusCategory]) -> None:
        if not events or not isinstance(events[0], TicketOpened):
            raise ValidationError("an SLA clock needs the ticket's events, opening event first")
        opened = events[0]
        self.pause = pause
        self.ticket_id = opened.ticket_id
        self.t = opened.at
        self.category = opened.category
        self.priority = opened.priority
        self.intervals: list[tuple[datetime, datetime | None]] = []
        self.counting_since: datetime | None = None
        self.cycles: list[_Cycle] = []
        self.first = self._start(Metric.FIRST_RESPONSE)
        self.resolution = self._start(Metric.RESOLUTION)
        self.next: _Cycle | None = None
        self.periodic: _Cycle | None = None
        self.agent_replied = False
        self._count(_counts(self.category, pause))
        for event in events[1:]:
            self._apply(event)

    def _start(self, metric: Metric) -> _Cycle:
        index = sum(1 for c in self.cycles if c.metric is metric)
        cycle = _Cycle(metric, index, self.t)
        self.cycles.append(cycle)
        return cycle

    def _achieve(self, cycle: _Cycle | None) -> None:
        if cycle is not None and cycle.is_open:
            cycle.achieved_at = self.t
            cycle.end_priority = self.priority

    def _count(self, counting: bool) -> None:
        if counting and self.counting_since is None:
            self.counting_since = self.t
        elif not counting and self.counting_since is not None:
            if self.t > self.counting_since:
                self.intervals.append((self.counting_since, self.t))
            self.counting_since = None

    def finish(self) -> list[tuple[datetime, datetime | None]]:
        if self.counting_since is None:
            return self.intervals
        return [*self.intervals, (self.counting_since, None)]

    def _apply(self, event: Event) -> None:
        if event.ticket_id != self.ticket_id:
            raise ValidationError(
                f"event {event.TYPE} of ticket {event.ticket_id} among those of {self.ticket_id}"
            )
        self.t = max(self.t, event.at)
        if self.category is StatusCategory.CLOSED:
            return  # closed is final: nothing after it moves a clock
        if isinstance(event, CommentAdded) and event.comment.public:
            kind = event.comment.author.kind
            if kind is ActorKind.AGENT:
                self._achieve(self.first)
                self._achieve(self.next)
                self._achieve(self.periodic)
                self.periodic = self._start(Metric.PERIODIC_UPDATE)
                self.agent_replied = True
            elif kind is ActorKind.CONTACT and self.agent_replied and not self._next_open():
                self.next = self._start(Metric.NEXT_RESPONSE)
        elif isinstance(event, StatusChanged):
            self._category(event.category)
        elif isinstance(event, MergedInto):
            self._category(StatusCategory.CLOSED)
        elif isinstance(event, PriorityChanged):
            self.priority = event.priority

    def _next_open(self) -> bool:
        return self.next is not None and self.next.is_open

    def _category(self, category: StatusCategory) -> None:
        previous, self.category = self.category, category
        if category is StatusCategory.SOLVED:
            self._achieve(self.resolution)
        elif category is StatusCategory.CLOSED:
            for cycle in self.cycles:
                if cycle.is_open:
                    cycle.stopped_at = self.t
                    cycle.end_priority = self.priority
        elif previous is StatusCategory.SOLVED and self.resolution.achieved_at is not None:
            self.resolution.achieved_at = None  # a reopen resumes the same clock
            self.resolution.end_priority = None
        self._count(_counts(category, self.pause))


def compute_sla(events: Sequence[Event], policy: SlaPolicy, now: datetime) -> SlaStatus:
    """Every measured SLA cycle of one ticket under ``policy``, as of ``now``.

    ``events`` are the ticket's events in sequence order, its opening first. The result is a
    pure function of the arguments (see the module documentation for the exact rules).
    """
    if not isinstance(policy, SlaPolicy):
        raise ValidationError(f"policy must be an SlaPolicy; got {type(policy).__name__}")
    at = to_utc(now, "now")
    fold = _Fold(events, policy.pause_categories)
    counted = _Counted(policy.calendar, fold.finish())
    clocks: list[MetricClock] = []
    for cycle in fold.cycles:
        priority = cycle.end_priority if cycle.end_priority is not None else fold.priority
        target = policy.target(cycle.metric, priority)
        if target is not None:
            clocks.append(_clock(cycle, target, counted, at, policy.warn_at))
    clocks.sort(key=lambda c: (_METRIC_ORDER[c.metric], c.cycle))
    return SlaStatus(policy.name, at, tuple(clocks))


def _clock(
    cycle: _Cycle,
    target: timedelta,
    counted: _Counted,
    now: datetime,
    warn_at: tuple[float, ...],
) -> MetricClock:
    end = cycle.end
    base = counted.until(cycle.start)
    cap = now if end is None else min(now, end)
    elapsed = counted.until(max(cap, cycle.start)) - base
    due = counted.reach(base + target, end)
    warnings = tuple(Threshold(f, counted.reach(base + target * f, end)) for f in warn_at)
    crossed = due is not None and due <= now and (end is None or due < end)
    return MetricClock(
        metric=cycle.metric,
        cycle=cycle.index,
        started_at=cycle.start,
        target=target,
        elapsed=elapsed,
        remaining=target - elapsed,
        running=cycle.is_open and counted.open_ended,
        paused=cycle.is_open and not counted.open_ended,
        due=due,
        achieved_at=cycle.achieved_at,
        stopped_at=cycle.stopped_at,
        breached_at=due if crossed else None,
        warnings=warnings,
    )
