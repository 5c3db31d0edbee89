# Over 600 lines: SlaFold is one class; its updates, results and plain-data form share its
# private fields.
"""The SLA clock: a pure function of a ticket's events, a policy and ``now``.

Nothing here reads a clock, a store or a plugin. :class:`SlaFold` holds what the clock needs
to know of a ticket's history under one policy, built one event at a time; :func:`compute_sla`
folds a whole history and reports every cycle, and :meth:`SlaFold.schedule` gives the
ticket's next deadline and next check from the cycles still open and the checks not yet
recorded, so a command on a long ticket folds only its new events (see :mod:`helpkit.sla` for
the rules). :meth:`SlaFold.to_data` and :meth:`SlaFold.from_data` turn a fold into plain data
and back, so a store can keep it beside the ticket (the sweep then reads no history).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

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
from helpkit.sla.policies import Metric, SlaPolicy
from helpkit.sla.status import (
    BREACH,
    DueCheck,
    MetricClock,
    SlaCheck,
    SlaSchedule,
    SlaStatus,
    Threshold,
    check_order,
    checks_of,
)
from helpkit.tickets import ActorKind, StatusCategory

__all__ = ["SlaFold", "compute_sla"]

_ZERO: Final = timedelta(0)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_DATA_FORMAT: Final = 2
"""The version of :meth:`SlaFold.to_data`'s form (data of another version is refused, but
for version 1, which is version 2 without the open cycles' thresholds)."""
_FIELDS: Final = {1: 17, 2: 18}  # list items of each version's form
_METRIC_ORDER: Final = {m: i for i, m in enumerate(Metric)}


# ---------------------------------------------------------------- the fold


class _Cycle(NamedTuple):
    """One cycle of one metric, as far as the history goes (immutable: folds share it; a
    named tuple, as the sweep builds and updates thousands of them)."""

    metric: Metric
    number: int
    """Which cycle of its metric (0 first)."""
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
_CLOCK_SLOTS: Final = (
    *_SLOTS,
    "_retired",
    "_priority",
    "_counting_since",
    "_starts",
    "_ends",
    "_after",
)
"""What :meth:`SlaFold.status` reads of a fold besides its policy."""


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
        "_open",
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
    _open: list[tuple[_Cycle, timedelta, datetime | None, tuple[Threshold, ...]]] | None
    """:meth:`_open_cycles`, once asked (a fold is immutable once built: :meth:`of`,
    :meth:`extend` and :meth:`from_data` leave it ``None``; two threads asking at once both
    work it out, to the same value)."""

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
        fold._open = None
        fold._count(_counts(fold._category, policy.pause_categories))
        for event in events[1:]:
            fold._apply(event)
        return fold

    def extend(self, events: Sequence[Event]) -> SlaFold:
        """This fold with ``events`` (those following its last one) folded in."""
        if not events:
            return self  # immutable: nothing to fold in, nothing to copy
        fold: SlaFold = _copy(self)
        fold._open = None  # the events may change the cycles
        for event in events:
            fold._apply(event)
        return fold

    def same_clocks(self, other: SlaFold) -> bool:
        """Whether ``other`` (this fold extended, or the one it was extended from) measures
        the same clocks: the same policy, cycles, counting intervals and priority, so
        :meth:`status` as of any instant is the same for both (the events between them moved
        no clock)."""
        return self.policy is other.policy and all(
            getattr(self, slot) == getattr(other, slot) for slot in _CLOCK_SLOTS
        )

    # ------------------------------------------------------------ as plain data

    def to_data(self) -> list[Any]:
        """This fold as JSON-safe data (lists, integers, strings, floats), for a store to keep.

        Instants are integer microseconds since the epoch (UTC), durations integer
        microseconds. The policy is not in it: :meth:`from_data` takes it, and only the
        policy the fold was built under gives the same fold back (its counted time and
        pending checks depend on the calendar and targets).
        """
        retired = []
        link = self._retired
        while link is not None:
            retired.append(_cycle_data(link.cycle))
            link = link.older
        return [
            _DATA_FORMAT,
            self.ticket_id,
            self.seq,
            _us(self._t),
            self._category._value_,
            int(self._priority),
            None if self._counting_since is None else _us(self._counting_since),
            [_us(t) for t in self._starts],
            [_us(t) for t in self._ends],
            [d // _MICRO for d in self._after],
            _cycle_data(self._first),
            _cycle_data(self._resolution),
            None if self._next is None else _cycle_data(self._next),
            None if self._periodic is None else _cycle_data(self._periodic),
            retired,
            self._agent_replied,
            [
                [
                    p.check.metric._value_,
                    p.check.cycle,
                    p.check.fraction,
                    _us(p.check.at),
                    None if p.due is None else _us(p.due),
                    None if p.ended_at is None else _us(p.ended_at),
                ]
                for p in self._pending
            ],
            self._thresholds_data(),
        ]

    def _thresholds_data(self) -> list[Any]:
        """The due date and warning instants of each open cycle, by its base and target:
        what :meth:`_open_cycles` asks the calendar for (usually computed already, by the
        :meth:`schedule` of the commit that keeps this fold), so a fold read back answers
        :meth:`due_checks` and :meth:`schedule` without calendar arithmetic until its counting
        intervals change. A function of the fold's state (the same data however it was
        built)."""
        entries: dict[tuple[timedelta, timedelta], list[Any]] = {}
        for cycle, target, due, warnings in self._open_cycles():
            if (cycle.base, target) in entries:
                continue
            entries[cycle.base, target] = [
                cycle.base // _MICRO,
                target // _MICRO,
                None if due is None else _us(due),
                [None if w.at is None else _us(w.at) for w in warnings],
            ]
        return sorted(entries.values(), key=lambda entry: (entry[0], entry[1]))

    @classmethod
    def from_data(cls, data: Any, policy: SlaPolicy) -> SlaFold:
        """The fold :meth:`to_data` gave ``data`` for, under ``policy`` (the one it was
        built under). Data that is not such a fold raises ValidationError."""
        try:
            (
                version,
                ticket_id,
                seq,
                t,
                category,
                priority,
                counting_since,
                starts,
                ends,
                after,
                first,
                resolution,
                next_,
                periodic,
                retired,
                agent_replied,
                pending,
                *thresholds,
            ) = data
            if _FIELDS.get(version) != len(data):
                raise ValueError(f"format {version!r} of {len(data)} items, not {_DATA_FORMAT}")
            if not isinstance(ticket_id, str) or type(seq) is not int or seq < 1:
                raise ValueError("bad ticket id or seq")
            if not isinstance(agent_replied, bool):
                raise ValueError("bad agent_replied")
            fold = object.__new__(cls)
            fold.policy = policy
            fold.ticket_id = ticket_id
            fold.seq = seq
            # The instant of the last event is often that of the counting or of a cycle's
            # start too: those share its datetime (equal values, one decoding).
            fold._t = at = _instant(t)
            fold._category = _CATEGORIES[category]
            fold._priority = _PRIORITIES[priority]
            fold._counting_since = _instant_or(counting_since, t, at)
            # (Most kept folds never paused: no intervals, nothing to convert. Only an empty
            # list is taken as none: any other value goes through the checks.)
            fold._starts = () if starts == [] else tuple(map(_instant, starts))
            fold._ends = () if ends == [] else tuple(map(_instant, ends))
            fold._after = () if after == [] else tuple(map(_duration, after))
            if not len(fold._starts) == len(fold._ends) == len(fold._after):
                raise ValueError("counting intervals of different lengths")
            fold._first = _cycle_of(first, t, at)
            fold._resolution = _cycle_of(resolution, t, at)
            fold._next = None if next_ is None else _cycle_of(next_, t, at)
            fold._periodic = None if periodic is None else _cycle_of(periodic, t, at)
            chain: _Retired | None = None
            for item in reversed(retired):
                chain = _Retired(_cycle_of(item), chain)
            fold._retired = chain
            fold._agent_replied = agent_replied
            fold._pending = tuple(
                DueCheck(
                    SlaCheck(_METRICS[metric], _int(cycle), _fraction(fraction), _instant(at)),
                    None if due is None else _instant(due),
                    None if ended is None else _instant(ended),
                )
                for metric, cycle, fraction, at, due, ended in pending
            )
            fold._memo = _memo_of(thresholds[0], policy) if thresholds else {}
            fold._open = None
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise ValidationError(f"not the data of an SLA fold: {exc}") from None
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
            index = previous.number + 1
            self._retired = _Retired(previous, self._retired)
        setattr(self, slot, _Cycle(metric, index, self._t, self._until(self._t)))

    def _end(self, slot: str, *, achieved: bool) -> None:
        cycle: _Cycle | None = getattr(self, slot)
        if cycle is None or not cycle.is_open:
            return
        ended = cycle._replace(
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
                for check in checks_of(ended.metric, ended.number, warnings, due, ended.end)
                if check.fraction not in ended.fired
            )

    def _reopen_resolution(self) -> None:
        self._resolution = self._resolution._replace(achieved_at=None, end_priority=None)
        self._pending = tuple(p for p in self._pending if p.check.metric is not Metric.RESOLUTION)

    def _record(self, metric_name: str, index: int, fraction: float) -> None:
        """A recorded warning or breach of this policy: that check is no longer pending."""
        for slot in _SLOTS:
            cycle: _Cycle | None = getattr(self, slot)
            if (
                cycle is not None
                and cycle.metric._value_ == metric_name
                and cycle.number == index
                and fraction not in cycle.fired
            ):
                # Built field by field: NamedTuple._replace costs several times more, and a
                # sweep records a check on every due ticket's fold.
                setattr(
                    self,
                    slot,
                    _Cycle(
                        cycle.metric,
                        cycle.number,
                        cycle.start,
                        cycle.base,
                        cycle.achieved_at,
                        cycle.stopped_at,
                        cycle.end_priority,
                        cycle.fired | {fraction},
                    ),
                )
        if self._pending:
            self._pending = tuple(
                p
                for p in self._pending
                if not (
                    p.check.fraction == fraction
                    and p.check.cycle == index
                    and p.check.metric._value_ == metric_name
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

    def _open_cycles(
        self,
    ) -> list[tuple[_Cycle, timedelta, datetime | None, tuple[Threshold, ...]]]:
        """Each open, measured cycle with its target, due date and warning instants (worked
        out once per fold: :meth:`due_checks`, :meth:`schedule` and :meth:`to_data` all
        ask)."""
        found = self._open
        if found is not None:
            return found
        found = []
        for cycle in self._current():
            if not cycle.is_open:
                continue
            target = self.policy.target(cycle.metric, self._priority)
            if target is None:
                continue
            found.append((cycle, target, *self._memoized(cycle, target)))
        self._open = found
        return found

    def _memoized(
        self, cycle: _Cycle, target: timedelta
    ) -> tuple[datetime | None, tuple[Threshold, ...]]:
        """The due date and warning instants of an open cycle (kept in the memo)."""
        key = (cycle.base, target)
        thresholds = self._memo.get(key)
        if thresholds is None:
            thresholds = self._memo[key] = self._thresholds(cycle, target, None)
        return thresholds

    def _open_checks(self, until: datetime) -> list[DueCheck]:
        """The checks of the open cycles not recorded yet, at or before ``until``: those of
        ``checks_of`` (an open cycle's warnings with an instant, then its breach when it has
        a due date), only the due ones built."""
        found = []
        for cycle, _target, due, warnings in self._open_cycles():
            fired = cycle.fired
            for w in warnings:
                at = w.at
                if at is not None and at <= until and w.fraction not in fired:
                    found.append(
                        DueCheck(SlaCheck(cycle.metric, cycle.number, w.fraction, at), due, None)
                    )
            if due is not None and due <= until and BREACH not in fired:
                found.append(DueCheck(SlaCheck(cycle.metric, cycle.number, BREACH, due), due, None))
        return found

    def schedule(self) -> SlaSchedule:
        """The earliest due date of the open cycles and the earliest check not recorded.

        Equal to ``status.next_deadline`` and ``status.next_check(fired_checks(events,
        policy=...))`` of the whole history, computed from the open cycles and the pending
        checks only.
        """
        deadline: datetime | None = None
        instants = [p.check.at for p in self._pending]
        for cycle, _target, due, warnings in self._open_cycles():
            fired = cycle.fired
            # The instants of checks_of(...) of an open cycle, those not recorded yet.
            instants.extend(w.at for w in warnings if w.at is not None and w.fraction not in fired)
            if due is not None:
                if deadline is None or due < deadline:
                    deadline = due
                if BREACH not in fired:
                    instants.append(due)
        return SlaSchedule(deadline, min(instants, default=None))

    def due_checks(self, now: datetime) -> tuple[DueCheck, ...]:
        """The checks not recorded yet whose instant is at or before ``now``, in the order
        they were crossed (what a sweep at ``now`` records)."""
        at = to_utc(now, "now")
        found = [p for p in self._pending if p.check.at <= at]
        found.extend(self._open_checks(at))
        if len(found) > 1:
            found.sort(key=lambda p: check_order(p.check))
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
            cycle=cycle.number,
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


def _copy_function() -> Any:
    # Straight-line slot copies: a loop of getattr/setattr costs several times more, and a
    # sweep extends each due ticket's fold twice.
    lines = ["def _copy(self):", "    fold = _new(_SlaFold)"]
    lines += [f"    fold.{name} = self.{name}" for name in SlaFold.__slots__]
    lines.append("    return fold")
    namespace: dict[str, Any] = {"_new": object.__new__, "_SlaFold": SlaFold}
    exec("\n".join(lines), namespace)  # the slot names are this module's own
    return namespace["_copy"]


_copy: Final[Callable[[SlaFold], SlaFold]] = _copy_function()


def _us(value: datetime) -> int:
    return (value - _EPOCH) // _MICRO


def _int(value: object) -> int:
    # type() is: JSON gives plain ints; a bool (or any other subclass) is refused.
    if type(value) is not int:
        raise ValueError(f"not an integer: {value!r:.40}")
    return value


def _instant(value: object) -> datetime:
    if type(value) is not int:
        raise ValueError(f"not an integer: {value!r:.40}")
    return _EPOCH + timedelta(0, 0, value)  # positional: keywords cost twice as much


def _duration(value: object) -> timedelta:
    if type(value) is not int:
        raise ValueError(f"not an integer: {value!r:.40}")
    return timedelta(0, 0, value)


# Enum members by value, looked up directly (calling the enum class costs several times more;
# a value that is not one raises KeyError, refused like the enum's ValueError). A member's value
# is read as ``_value_`` here for the same reason: the ``value`` property costs more.
_METRICS: Final[dict[object, Metric]] = {m.value: m for m in Metric}
_CATEGORIES: Final[dict[object, StatusCategory]] = {c.value: c for c in StatusCategory}
_PRIORITIES: Final[dict[object, Priority]] = {p.value: p for p in Priority}


def _fraction(value: object) -> float:
    if not isinstance(value, float) or not 0 < value <= BREACH:
        raise ValueError(f"not a check fraction: {value!r:.40}")
    return value


def _cycle_data(cycle: _Cycle) -> list[Any]:
    return [
        cycle.metric._value_,
        cycle.number,
        _us(cycle.start),
        cycle.base // _MICRO,
        None if cycle.achieved_at is None else _us(cycle.achieved_at),
        None if cycle.stopped_at is None else _us(cycle.stopped_at),
        None if cycle.end_priority is None else int(cycle.end_priority),
        sorted(cycle.fired),
    ]


def _memo_of(
    data: Any, policy: SlaPolicy
) -> dict[tuple[timedelta, timedelta], tuple[datetime | None, tuple[Threshold, ...]]]:
    """The thresholds memo of :meth:`SlaFold._thresholds_data`'s form."""
    memo: dict[tuple[timedelta, timedelta], tuple[datetime | None, tuple[Threshold, ...]]] = {}
    warn_at = policy.warn_at
    for base, target, due, warnings in data:
        if len(warnings) != len(warn_at):
            raise ValueError(f"{len(warnings)} warning instants for {len(warn_at)} warnings")
        memo[_duration(base), _duration(target)] = (
            None if due is None else _instant(due),
            tuple(
                [
                    Threshold(f, None if at is None else _instant(at))
                    for f, at in zip(warn_at, warnings, strict=True)
                ]
            ),
        )
    return memo


_NONE_FIRED: Final[frozenset[float]] = frozenset()


def _instant_or(value: object, known: int, at: datetime) -> datetime | None:
    """:func:`_instant` of ``value`` (``None`` for ``None``), which is ``at`` when ``value``
    is the integer ``known`` (whose instant ``at`` is)."""
    if value is None:
        return None
    if value == known and type(value) is int:
        return at
    return _instant(value)


def _cycle_of(data: Any, known: int = 0, at: datetime = _EPOCH) -> _Cycle:
    """The cycle of :func:`_cycle_data`'s form (``at`` the instant of ``known``, if it is
    the cycle's start)."""
    metric, index, start, base, achieved, stopped, end_priority, fired = data
    return _Cycle(
        _METRICS[metric],
        _int(index),
        at if start == known and type(start) is int else _instant(start),
        _duration(base),
        None if achieved is None else _instant(achieved),
        None if stopped is None else _instant(stopped),
        None if end_priority is None else _PRIORITIES[end_priority],
        _NONE_FIRED if fired == [] else frozenset(map(_fraction, fired)),
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
