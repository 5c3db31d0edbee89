# Over 600 lines: the per-ticket fold (facts, compact records, kept state) and the report it adds
# up to share their private running state and field layout, and checkpoints name these classes
# by this module (moving one would outdate every saved checkpoint). A split is due with the next
# checkpoint format.
"""Key performance indicators of a helpdesk, computed from tickets' events.

Pure: :func:`ticket_facts` folds one ticket's events (as of ``now``, a parameter) into the
:class:`TicketFacts` every KPI is made of; :class:`KpiAccumulator` (or :func:`aggregate`)
adds facts up, one ticket at a time, into a :class:`KpiReport`; :func:`keep_resumable` and
:func:`resume_facts` keep a ticket's fold and go on with its later events (the KPI projection's
updates). Nothing here reads a clock or a store: :mod:`helpkit.reports` streams the tickets
and their events from a store. Because every figure comes from events (and the events are the
same in every store), the memory, SQLite and PostgreSQL stores give the same numbers.
``docs/kpis.md`` defines each KPI.
"""

from __future__ import annotations

import enum
import math
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeAlias

import attrs

from helpkit._checks import check_items, check_text
from helpkit._records import replace
from helpkit._time import to_utc
from helpkit.calendar import BusinessCalendar
from helpkit.errors import ValidationError
from helpkit.escalation import EscalationKind, TierLadder
from helpkit.events import (
    Assigned,
    CommentAdded,
    CommentRedacted,
    ContactErased,
    DeliveryFailed,
    DeliveryRevived,
    Escalated,
    Event,
    FollowersChanged,
    Linked,
    MergedInto,
    MergeReceived,
    MessageSent,
    Notified,
    SatisfactionOffered,
    SatisfactionRated,
    SlaBreached,
    SlaRescheduled,
    SlaWarned,
    StatusChanged,
    SubjectChanged,
    TicketOpened,
    Unlinked,
    WebhookRequested,
)
from helpkit.fields import FieldValue
from helpkit.fold import apply
from helpkit.priority import Priority
from helpkit.sla import SlaFold, SlaPolicy
from helpkit.tickets import ActorKind, StatusCategory, Ticket

__all__ = [
    "AGE_BUCKETS",
    "RECORD_LENGTH",
    "WORKING",
    "Activity",
    "AgentActivity",
    "Distribution",
    "FactRecord",
    "FoldState",
    "HandleTime",
    "KeptFacts",
    "KpiAccumulator",
    "KpiFilter",
    "KpiReport",
    "Period",
    "Rate",
    "Satisfaction",
    "SlaCompliance",
    "SlaOutcome",
    "TicketFacts",
    "TierEscalation",
    "age_bucket",
    "aggregate",
    "field_keys",
    "keep_facts",
    "keep_resumable",
    "pack_facts",
    "percentile",
    "resume_facts",
    "ticket_facts",
    "ticket_record",
]

AGE_BUCKETS: Final[tuple[tuple[timedelta, str], ...]] = (
    (timedelta(days=1), "<1d"),
    (timedelta(days=3), "1-3d"),
    (timedelta(days=7), "3-7d"),
    (timedelta(days=30), "7-30d"),
)
"""The backlog's age buckets: each is ``age < bound``; older tickets are ``>30d``."""
_OLDEST: Final = ">30d"
AGE_LABELS: Final = (*(label for _, label in AGE_BUCKETS), _OLDEST)


def age_bucket(age: timedelta) -> str:
    """The label of the age bucket ``age`` falls in."""
    for bound, label in AGE_BUCKETS:
        if age < bound:
            return label
    return _OLDEST


class Period(enum.Enum):
    """How volume over time is bucketed: by UTC day, or by ISO week (starting Monday, UTC)."""

    DAY = "day"
    WEEK = "week"

    @classmethod
    def coerce(cls, value: Period | str) -> Period:
        """A member, or its value (``day``, ``week``)."""
        if isinstance(value, Period):
            return value
        try:
            return cls(value)
        except ValueError:
            raise ValidationError(f"a period is 'day' or 'week'; got {value!r:.40}") from None

    def start(self, at: datetime) -> date:
        """The first day of the bucket ``at`` falls in."""
        day = to_utc(at).date()
        if self is Period.WEEK:
            return day - timedelta(days=day.weekday())
        return day


# ------------------------------------------------------------------ per-ticket facts


@attrs.frozen
class SlaOutcome:
    """How one SLA cycle of a ticket stands as of ``now``: ``achieved`` (within its target),
    ``breached`` (its target was reached first, whether achieved late or still open),
    ``pending`` (open, not yet due) or ``stopped`` (closed before it was achieved or due)."""

    policy: str
    metric: str
    cycle: int
    state: str


@attrs.frozen
class Activity:
    """Something an agent did on a ticket that agent activity counts."""

    agent_id: str
    kind: str
    """``reply`` (a public comment), ``solved`` (the ticket entered a solved status) or
    ``handle`` (a span of the agent's handle time ended)."""
    at: datetime
    """When: for ``handle``, the end of the span."""


@attrs.frozen
class HandleTime(Activity):
    """A span of an agent's handle time (kind ``handle``), dated at its end (a subclass, so
    that replies and solves, the many, keep three fields)."""

    duration: timedelta
    """The span's calendar time."""
    business: timedelta | None = None
    """The span's business time (``None`` without a calendar)."""


WORKING: Final = frozenset({StatusCategory.NEW, StatusCategory.OPEN})
"""The status categories in which a ticket awaits its agents: time counts in its tier and in
its assignee's handle time only then (not pending on the requester, on hold, solved or
closed)."""


def field_keys(value: FieldValue | None) -> tuple[str | None, ...]:
    """The keys a custom field's value counts under in volume by field: text as is, a
    boolean as ``true``/``false``, a number as written, a date in ISO 8601, each choice of a
    multi-choice value, and ``None`` for a field not set."""
    if value is None:
        return (None,)
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple):
        return tuple(dict.fromkeys(value)) or (None,)
    if isinstance(value, date):
        return (value.isoformat(),)
    return (str(value),)


@attrs.frozen(kw_only=True)
class TicketFacts:
    """What the KPIs need of one ticket, as of ``now``: its state then, and its measures.

    Durations are ``None`` when the ticket has no such measure (no first response yet, not
    resolved, or, for the ``_business`` ones, no calendar: no SLA policy).
    """

    ticket_id: str
    opened_at: datetime
    channel: str
    priority: Priority
    organization_id: str | None
    group_id: str | None
    assignee_id: str | None
    tags: frozenset[str]
    status: str
    category: StatusCategory
    merged: bool
    first_response_at: datetime | None
    first_response: timedelta | None
    first_response_business: timedelta | None
    resolved_at: datetime | None
    resolution: timedelta | None
    resolution_business: timedelta | None
    solved_times: int
    reopens: int
    replies_before_resolution: int
    sla: tuple[SlaOutcome, ...]
    tiers: frozenset[int]
    escalated_from: frozenset[int]
    activity: tuple[Activity, ...]
    surveyed_at: datetime | None = None
    """When the ticket's latest satisfaction survey was offered (``None``: never)."""
    rating: str | None = None
    """The ticket's latest satisfaction rating (``good``, ``bad``; ``None``: unrated)."""
    fields: tuple[tuple[str, FieldValue], ...] = ()
    """The ticket's custom fields (name and value, by name)."""
    tier_time: tuple[tuple[int, timedelta, timedelta | None], ...] = ()
    """Per tier the ticket was in while working (:data:`WORKING`): the calendar and business
    time it spent there so far (business ``None`` without a calendar), by tier."""
    tier_now: int | None = None
    """The tier of the ticket's group while it is active (its time there is still running)."""
    span_since: datetime | None = None
    """When the ticket's current span (same tier, same assignee, working) began, if working."""

    @property
    def active(self) -> bool:
        """In the backlog: neither solved nor closed."""
        return self.category.is_active

    @property
    def first_contact_resolution(self) -> bool:
        """Resolved, never reopened, with exactly one public agent reply before that."""
        return (
            self.resolved_at is not None
            and self.reopens == 0
            and self.replies_before_resolution == 1
        )


_NONE: Final[frozenset[Any]] = frozenset()
_NO_FIELDS: Final[tuple[tuple[str, FieldValue], ...]] = ()
"""One empty set shared by every ticket's facts (an empty frozenset is not a singleton)."""


def _shared(text: str) -> str:
    # The same few names (statuses, groups, agents) recur in every ticket's facts.
    return sys.intern(text)


def _shared_or_none(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def ticket_facts(
    events: Sequence[Event],
    now: datetime,
    *,
    policy: SlaPolicy | None = None,
    ladder: TierLadder | None = None,
) -> TicketFacts | None:
    """The facts of a ticket from its events (in sequence order), as of ``now``.

    Events are read at their instants made monotonic (an event dated before its predecessor
    happened at the predecessor's instant, as the SLA clock reads them); those after ``now``
    are ignored, and a ticket opened after ``now`` has no facts (``None``). ``policy`` is the
    ticket's SLA policy: its calendar measures business hours and its clocks give the SLA
    outcomes. ``ladder`` places groups in tiers.
    """
    found = _fold(events, to_utc(now, "now"), policy, ladder)
    return None if found is None else found[0]


def _level(ladder: TierLadder | None, group_id: str | None) -> int | None:
    # The level of the tier a group is in (None: no ladder, no group, a group in no tier).
    tier = None if ladder is None else ladder.tier_of(group_id)
    return None if tier is None else tier.level


def _span_of(state: Ticket, ladder: TierLadder | None) -> tuple[int | None, str | None] | None:
    # What the time of a ticket in this state counts for: its tier and its assignee while it
    # is working (awaiting its agents), None otherwise.
    if state.category not in WORKING or state.merged_into is not None:
        return None
    return _level(ladder, state.group_id), state.assignee_id


class _Running:
    """The running state of one ticket's fold: what its facts are made of, as far as its
    events go (the fold's own state, resumable: :func:`resume_facts`)."""

    __slots__ = (
        "activity",
        "escalated_from",
        "first_response_at",
        "last",
        "opened_at",
        "rating",
        "reopens",
        "replies",
        "replies_at_resolution",
        "resolved_at",
        "solved_times",
        "span",
        "span_since",
        "state",
        "surveyed_at",
        "tier_now",
        "tier_time",
        "tiers",
    )

    def __init__(self, state: Ticket | None, opened_at: datetime, last: datetime) -> None:
        self.state: Ticket | None = state
        self.opened_at = opened_at
        self.last = last
        self.first_response_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.solved_times = self.reopens = self.replies = self.replies_at_resolution = 0
        self.tiers: set[int] = set()
        self.escalated_from: set[int] = set()
        self.activity: list[Activity] = []
        self.surveyed_at: datetime | None = None
        self.rating: str | None = None
        # The current span: (tier level, assignee) while working, since ``span_since``.
        self.span: tuple[int | None, str | None] | None = None
        self.span_since: datetime | None = None
        self.tier_time: dict[int, tuple[timedelta, timedelta | None]] = {}
        self.tier_now: int | None = None

    @classmethod
    def resumed(cls, kept: KeptFacts, state: Ticket, ladder: TierLadder | None) -> _Running:
        """The running state a fold had when it made ``kept`` (``state``: its ticket then,
        ``ladder`` the fold's)."""
        facts = kept.facts
        running = cls(state, facts.opened_at, kept.last_at)
        running.first_response_at = facts.first_response_at
        running.resolved_at = facts.resolved_at
        running.solved_times = facts.solved_times
        running.reopens = facts.reopens
        # Every public agent reply is an activity; the replies at resolution only count
        # while resolved (they are set again with the next resolution).
        running.replies = sum(1 for act in facts.activity if act.kind == "reply")
        running.replies_at_resolution = facts.replies_before_resolution
        running.tiers = set(facts.tiers)
        running.escalated_from = set(facts.escalated_from)
        running.activity = list(facts.activity)
        running.surveyed_at = facts.surveyed_at
        running.rating = facts.rating
        running.tier_time = {tier: (spent, business) for tier, spent, business in facts.tier_time}
        running.span_since = facts.span_since
        if facts.span_since is not None:
            running.span = _span_of(state, ladder)
        running.tier_now = facts.tier_now
        return running

    def step(
        self,
        event: Event,
        last: datetime,
        ladder: TierLadder | None,
        calendar: BusinessCalendar | None,
    ) -> None:
        """Fold in ``event``, at ``last`` (its instant made monotonic); ``calendar`` measures
        business hours (``None``: none)."""
        self.last = last
        before = self.state
        state = self.state = self._next_state(before, event)

        def tier_of(group_id: str | None) -> int | None:
            return _level(ladder, group_id)

        span = _span_of(state, ladder)
        if span != self.span:
            self._end_span(last, calendar)
            self.span = span
            self.span_since = None if span is None else last
        self.tier_now = (
            _level(ladder, state.group_id)
            if state.category.is_active and state.merged_into is None
            else None
        )

        if isinstance(event, TicketOpened):
            level = tier_of(event.group_id)
            if level is not None:
                self.tiers.add(level)
        elif isinstance(event, CommentAdded):
            # The opening message: the comment recorded with the opening (same command).
            opening_message = event.seq == 2 and event.at == self.opened_at
            author = event.comment.author
            if event.comment.public and author.kind is ActorKind.AGENT and not opening_message:
                self.replies += 1
                self.activity.append(Activity(_shared(author.id), "reply", last))
                if self.first_response_at is None:
                    self.first_response_at = last
        elif isinstance(event, StatusChanged):
            if event.category is StatusCategory.SOLVED and event.old_category.is_active:
                self.solved_times += 1
                self.resolved_at, self.replies_at_resolution = last, self.replies
                if event.actor.kind is ActorKind.AGENT:
                    self.activity.append(Activity(_shared(event.actor.id), "solved", last))
            elif event.old_category is StatusCategory.SOLVED and event.category.is_active:
                self.reopens += 1
                self.resolved_at = None
            elif event.category is StatusCategory.CLOSED and event.old_category.is_active:
                self.resolved_at, self.replies_at_resolution = last, self.replies
        elif isinstance(event, Escalated):
            for level in (event.tier, event.previous_tier):
                if level is not None:
                    self.tiers.add(level)
            if event.kind == EscalationKind.HIERARCHICAL.value and event.previous_tier is not None:
                self.escalated_from.add(event.previous_tier)
        elif isinstance(event, Assigned):
            level = tier_of(event.group_id)
            if level is not None and before is not None and event.group_id != before.group_id:
                self.tiers.add(level)
        elif isinstance(event, MergedInto):
            self.resolved_at = None
        elif isinstance(event, SatisfactionOffered):
            self.surveyed_at = last
        elif isinstance(event, SatisfactionRated):
            self.rating = _shared(event.rating)

    def _next_state(self, state: Ticket | None, event: Event) -> Ticket:
        # The ticket's state after ``event`` (the whole of it: a projection keeps it).
        return apply(state, event)

    def _end_span(self, end: datetime, calendar: BusinessCalendar | None) -> None:
        # The current span ends at ``end``: its time counts in its tier and, assigned, as its
        # agent's handle time (an activity dated at its end).
        span, since = self.span, self.span_since
        if span is None or since is None:
            return
        spent = end - since
        business = None if calendar is None else calendar.elapsed(since, end)
        tier, agent = span
        if tier is not None:
            total, total_business = self.tier_time.get(tier, (timedelta(0), None))
            if business is not None:
                total_business = business + (total_business or timedelta(0))
            self.tier_time[tier] = (total + spent, total_business)
        if agent is not None and spent:
            self.activity.append(HandleTime(agent, "handle", end, spent, business))

    def facts(
        self,
        policy: SlaPolicy | None,
        outcomes: Sequence[SlaOutcome],
        before: TicketFacts | None = None,
    ) -> TicketFacts:
        """The facts of the events folded so far, with these SLA ``outcomes``; ``before``,
        the facts this fold was resumed from (same policy), lends the business-hour spans
        whose ends have not moved (measuring them again is a calendar walk each)."""
        state = self.state
        assert state is not None  # the opening event is folded in
        calendar: BusinessCalendar | None = None if policy is None else policy.calendar
        opened_at = self.opened_at

        def spans(
            end: datetime | None, end_before: datetime | None, business_before: timedelta | None
        ) -> tuple[timedelta | None, timedelta | None]:
            if end is None:
                return None, None
            if calendar is None:
                business = None
            elif before is not None and end == end_before and business_before is not None:
                business = business_before
            else:
                business = calendar.elapsed(opened_at, end)
            return end - opened_at, business

        first, first_business = spans(
            self.first_response_at,
            None if before is None else before.first_response_at,
            None if before is None else before.first_response_business,
        )
        resolution, resolution_business = spans(
            self.resolved_at,
            None if before is None else before.resolved_at,
            None if before is None else before.resolution_business,
        )
        return TicketFacts(
            ticket_id=state.id,
            opened_at=opened_at,
            channel=_shared(state.channel),
            priority=state.priority,
            organization_id=_shared_or_none(state.organization_id),
            group_id=_shared_or_none(state.group_id),
            assignee_id=_shared_or_none(state.assignee_id),
            tags=state.tags or _NONE,
            status=_shared(state.status),
            category=state.category,
            merged=state.merged_into is not None,
            first_response_at=self.first_response_at,
            first_response=first,
            first_response_business=first_business,
            resolved_at=self.resolved_at,
            resolution=resolution,
            resolution_business=resolution_business,
            solved_times=self.solved_times,
            reopens=self.reopens,
            replies_before_resolution=(
                self.replies_at_resolution if self.resolved_at is not None else 0
            ),
            sla=_shared_outcomes(outcomes),
            tiers=frozenset(self.tiers) if self.tiers else _NONE,
            escalated_from=frozenset(self.escalated_from) if self.escalated_from else _NONE,
            activity=tuple(self.activity),
            surveyed_at=self.surveyed_at,
            rating=self.rating,
            fields=tuple(sorted(state.custom_fields.items()))
            if state.custom_fields
            else _NO_FIELDS,
            tier_time=tuple(
                (tier, spent, business)
                for tier, (spent, business) in sorted(self.tier_time.items())
            ),
            tier_now=self.tier_now,
            span_since=self.span_since,
        )


_SHARED_LIMIT: Final = 4096
_OUTCOMES: dict[tuple[str, str, int, str], SlaOutcome] = {}
_OUTCOME_TUPLES: dict[tuple[SlaOutcome, ...], tuple[SlaOutcome, ...]] = {}


def _outcome(policy: str, metric: str, cycle: int, state: str) -> SlaOutcome:
    # One shared object per outcome: the same few (a policy's metrics, cycle 0, achieved or
    # breached) recur in every ticket's kept facts (at most _SHARED_LIMIT are shared).
    key = (policy, metric, cycle, state)
    found = _OUTCOMES.get(key)
    if found is None:
        found = SlaOutcome(policy, metric, cycle, state)
        if len(_OUTCOMES) < _SHARED_LIMIT:
            _OUTCOMES[key] = found
    return found


def _breached(outcome: SlaOutcome) -> SlaOutcome:
    return _outcome(outcome.policy, outcome.metric, outcome.cycle, "breached")


def _shared_outcomes(outcomes: Sequence[SlaOutcome]) -> tuple[SlaOutcome, ...]:
    # One shared tuple per combination of outcomes (most tickets have one of a few).
    key = tuple(outcomes)
    found = _OUTCOME_TUPLES.get(key)
    if found is None:
        found = key
        if len(_OUTCOME_TUPLES) < _SHARED_LIMIT:
            _OUTCOME_TUPLES[key] = found
    return found


def _outcomes(fold: SlaFold, now: datetime) -> tuple[list[SlaOutcome], tuple[datetime | None, ...]]:
    # The SLA outcomes as of ``now`` and the due instant of each pending one (kept facts stay
    # small: no dues when none is pending).
    outcomes: list[SlaOutcome] = []
    dues: list[datetime | None] = []
    name = fold.policy.name
    for clock in fold.status(now).clocks:
        if clock.breached_at is not None:
            state_name = "breached"
        elif clock.achieved_at is not None:
            state_name = "achieved"
        elif clock.stopped_at is not None:
            state_name = "stopped"
        else:
            state_name = "pending"
        outcomes.append(_outcome(name, clock.metric.value, clock.cycle, state_name))
        dues.append(clock.due if state_name == "pending" else None)
    return outcomes, tuple(dues) if any(d is not None for d in dues) else ()


def _fold(
    events: Sequence[Event],
    at_now: datetime | None,
    policy: SlaPolicy | None,
    ladder: TierLadder | None,
) -> tuple[TicketFacts, datetime, tuple[datetime | None, ...], _Running, SlaFold | None] | None:
    # The facts as of ``at_now`` (None: after every event), the last event's instant (made
    # monotonic), the due instant of each pending SLA outcome (None for the others), and the
    # fold's running state and SLA fold (to resume it).
    if not events or not isinstance(events[0], TicketOpened):
        raise ValidationError("a ticket's facts need its events, opening event first")
    opened = events[0]
    if at_now is not None and opened.at > at_now:
        return None
    last = opened.at
    calendar = None if policy is None else policy.calendar
    prefix: list[Event] = []
    running = _Running(None, opened.at, last)
    for event in events:
        if event.at > last:
            last = event.at
        if at_now is not None and last > at_now:
            break
        prefix.append(event)
        running.step(event, last, ladder, calendar)
    sla: SlaFold | None = None
    outcomes: list[SlaOutcome] = []
    dues: tuple[datetime | None, ...] = ()
    if policy is not None:
        sla = SlaFold.of(prefix, policy)
        outcomes, dues = _outcomes(sla, last if at_now is None else at_now)
    return running.facts(policy, outcomes), last, dues, running, sla


_KPI_STATE_KEPT: Final[frozenset[type[Event]]] = frozenset(
    {
        CommentAdded,
        CommentRedacted,
        ContactErased,
        DeliveryFailed,
        DeliveryRevived,
        FollowersChanged,
        Linked,
        MergeReceived,
        MessageSent,
        Notified,
        SatisfactionOffered,
        SatisfactionRated,
        SlaBreached,
        SlaRescheduled,
        SlaWarned,
        SubjectChanged,
        Unlinked,
        WebhookRequested,
    }
)
"""The event types (exactly these, not their subclasses) whose :func:`helpkit.fold.apply`
changes none of the ticket's fields a KPI fold reads (its id, channel, priority,
organization, group, assignee, tags, status, category, merge target and custom fields): only
its seq, its instants of last update and its counts of comments, followers, links and
satisfaction. :func:`ticket_record` does not fold them into the ticket's state."""


class _RecordRunning(_Running):
    """The running state of :func:`ticket_record`'s fold: the ticket's state is folded only by
    the events that change what the KPIs read of it (not :data:`_KPI_STATE_KEPT`), so it
    holds those fields as the whole fold would, and not the others (its seq is kept apart,
    and the state brought to it before the next event folded in, so a history out of order
    is refused as :func:`helpkit.fold.apply` refuses it)."""

    __slots__ = ("seq",)

    def __init__(self, opened_at: datetime) -> None:
        super().__init__(None, opened_at, opened_at)
        self.seq = 0

    def _next_state(self, state: Ticket | None, event: Event) -> Ticket:
        seq = self.seq
        if (
            state is not None
            and event.__class__ in _KPI_STATE_KEPT
            and event.seq == seq + 1
            and event.ticket_id == state.id
        ):
            self.seq = event.seq
            return state
        if state is not None and state.seq != seq:
            state = replace(state, seq=seq)
        found = apply(state, event)
        self.seq = found.seq
        return found

    def record(self, policy: SlaPolicy | None, outcomes: Sequence[SlaOutcome]) -> FactRecord:
        """``pack_facts(self.facts(policy, outcomes))``, without the facts."""
        state = self.state
        assert state is not None  # the opening event is folded in
        calendar: BusinessCalendar | None = None if policy is None else policy.calendar
        opened_at = self.opened_at
        first_at, resolved_at = self.first_response_at, self.resolved_at
        first = first_business = resolution = resolution_business = None
        if first_at is not None:
            first = (first_at - opened_at) // _MICROSECOND
            if calendar is not None:
                first_business = calendar.elapsed(opened_at, first_at) // _MICROSECOND
        if resolved_at is not None:
            resolution = (resolved_at - opened_at) // _MICROSECOND
            if calendar is not None:
                resolution_business = calendar.elapsed(opened_at, resolved_at) // _MICROSECOND
        tier_now = self.tier_now
        custom = state.custom_fields
        return (
            state.id,
            (opened_at - _EPOCH) // _MICROSECOND,
            state.channel,
            state.priority.label,
            state.organization_id,
            state.group_id,
            state.assignee_id,
            tuple(sorted(state.tags)),
            state.status,
            state.category.is_active,
            first,
            first_business,
            resolution,
            resolution_business,
            resolved_at is not None and state.merged_into is None,
            resolved_at is not None and self.reopens == 0 and self.replies_at_resolution == 1,
            self.solved_times > 0,
            self.reopens > 0,
            tuple((o.policy, o.metric, o.state, None) for o in outcomes),
            tuple(sorted(self.tiers)),
            tuple(sorted(self.escalated_from)),
            tuple(
                (
                    act.agent_id,
                    act.kind,
                    (act.at - _EPOCH) // _MICROSECOND,
                    act.duration // _MICROSECOND,
                    0 if act.business is None else act.business // _MICROSECOND,
                )
                if act.__class__ is HandleTime
                else (act.agent_id, act.kind, (act.at - _EPOCH) // _MICROSECOND)
                for act in self.activity
            ),
            None if self.surveyed_at is None else (self.surveyed_at - _EPOCH) // _MICROSECOND,
            self.rating,
            tuple((name, field_keys(custom[name])) for name in sorted(custom)) if custom else (),
            tuple(
                (
                    tier,
                    spent // _MICROSECOND,
                    None if business is None else business // _MICROSECOND,
                )
                for tier, (spent, business) in sorted(self.tier_time.items())
                if tier != tier_now
            ),
            None,
        )


def ticket_record(
    events: Sequence[Event],
    now: datetime,
    *,
    policy: SlaPolicy | None = None,
    ladder: TierLadder | None = None,
) -> FactRecord | None:
    """``pack_facts(ticket_facts(events, now, policy=policy, ladder=ladder))``, made at less
    cost (what a full recomputation adds up with :meth:`KpiAccumulator.add_record`): no
    :class:`TicketFacts` is built, and the ticket's state is folded only by the events that
    change what the KPIs read of it (:data:`_KPI_STATE_KEPT`). ``None`` for a ticket opened
    after ``now``; the same errors as :func:`ticket_facts` for a history that is not one."""
    at_now = to_utc(now, "now")
    if not events or not isinstance(events[0], TicketOpened):
        raise ValidationError("a ticket's facts need its events, opening event first")
    opened = events[0]
    if opened.at > at_now:
        return None
    last = opened.at
    calendar = None if policy is None else policy.calendar
    running = _RecordRunning(opened.at)
    step = running.step
    count = 0
    for event in events:
        if event.at > last:
            last = event.at
            if last > at_now:
                break
        step(event, last, ladder, calendar)
        count += 1
    outcomes: Sequence[SlaOutcome] = ()
    if policy is not None:
        prefix = events if count == len(events) else events[:count]
        outcomes = _outcomes(SlaFold.of(prefix, policy), at_now)[0]
    return running.record(policy, outcomes)


@attrs.frozen
class KeptFacts:
    """A ticket's facts as of its last event, kept by a projection
    (:class:`helpkit.reports.KpiProjection`) and turned into its facts as of any later ``now``
    by :meth:`as_of`: only its SLA outcomes change with time (a pending cycle is breached once
    its due instant is reached); the backlog's ages are counted from ``opened_at`` at report
    time."""

    facts: TicketFacts
    last_at: datetime
    """The instant of the ticket's last event (its instants made monotonic)."""
    dues: tuple[datetime | None, ...]
    """The due instant of each of ``facts.sla``, for those pending (``None`` for the others,
    and for a cycle paused or never due); empty when none has one."""

    def as_of(self, now: datetime) -> TicketFacts:
        """The ticket's facts as of ``now``, at or after ``last_at`` (equal to
        :func:`ticket_facts` of its events as of ``now``)."""
        if now < self.last_at:
            raise ValidationError("kept facts are facts as of their last event or later")
        facts = self.facts
        if not any(due is not None and due <= now for due in self.dues):
            return facts
        outcomes = tuple(
            _breached(outcome) if due is not None and due <= now else outcome
            for outcome, due in zip(facts.sla, self.dues, strict=True)
        )
        return attrs.evolve(facts, sla=outcomes)


def keep_facts(
    events: Sequence[Event],
    *,
    policy: SlaPolicy | None = None,
    ladder: TierLadder | None = None,
) -> KeptFacts:
    """The facts of a ticket as of its last event, to keep (``policy`` and ``ladder`` as for
    :func:`ticket_facts`)."""
    found = _fold(events, None, policy, ladder)
    assert found is not None  # without a ``now``, every history has facts
    return KeptFacts(*found[:3])


@attrs.frozen
class FoldState:
    """What a ticket's fold needs, besides its :class:`KeptFacts`, to go on with the events
    that follow (:func:`resume_facts`): the ticket's state as of its last event folded in, and
    its SLA fold (``None`` without a policy)."""

    state: Ticket
    sla: SlaFold | None


def keep_resumable(
    events: Sequence[Event],
    *,
    policy: SlaPolicy | None = None,
    ladder: TierLadder | None = None,
) -> tuple[KeptFacts, FoldState]:
    """:func:`keep_facts`, and the state to resume the fold from (:func:`resume_facts`)."""
    found = _fold(events, None, policy, ladder)
    assert found is not None  # without a ``now``, every history has facts
    facts, last, dues, running, sla = found
    assert running.state is not None  # the opening event is folded in
    return KeptFacts(facts, last, dues), FoldState(running.state, sla)


def resume_facts(
    kept: KeptFacts,
    fold: FoldState,
    events: Sequence[Event],
    *,
    ladder: TierLadder | None = None,
) -> tuple[KeptFacts, FoldState]:
    """The kept facts of a ticket, and its fold state, after the ``events`` that follow those
    ``kept`` and ``fold`` were made of (from :func:`keep_resumable` or this function, with the
    same ``ladder``): equal to :func:`keep_resumable` of the whole history, at a cost that
    depends on the new events only. Events that do not follow (a gap in ``seq``, another
    ticket) raise ValidationError."""
    if not events:
        return kept, fold
    running = _Running.resumed(kept, fold.state, ladder)
    calendar = None if fold.sla is None else fold.sla.policy.calendar
    last = kept.last_at
    for event in events:
        state = running.state
        assert state is not None
        if event.ticket_id != state.id or event.seq != state.seq + 1:
            raise ValidationError(
                f"event {event.seq} of ticket {event.ticket_id} does not follow "
                f"event {state.seq} of ticket {state.id}"
            )
        if event.at > last:
            last = event.at
        running.step(event, last, ladder, calendar)
    assert running.state is not None
    sla = fold.sla
    if sla is None:
        return KeptFacts(running.facts(None, ()), last, ()), FoldState(running.state, None)
    extended = sla.extend(events)
    if extended.same_clocks(sla):
        # No clock moved: the outcomes as of the last event are the kept ones as of it (a
        # pending cycle due by then is breached), and only the later dues stay pending.
        outcomes: Sequence[SlaOutcome] = kept.facts.sla
        dues = kept.dues
        if any(due is not None and due <= last for due in dues):
            outcomes = tuple(
                _breached(outcome) if due is not None and due <= last else outcome
                for outcome, due in zip(outcomes, dues, strict=True)
            )
            dues = tuple(None if due is None or due <= last else due for due in dues)
            if not any(due is not None for due in dues):
                dues = ()
    else:
        outcomes, dues = _outcomes(extended, last)
    facts = running.facts(extended.policy, outcomes, kept.facts)
    return KeptFacts(facts, last, dues), FoldState(running.state, extended)


# ------------------------------------------------------------------ compact records

FactRecord: TypeAlias = tuple[Any, ...]
"""A ticket's facts as one flat tuple of plain values (:func:`pack_facts`): what
:meth:`KpiAccumulator.add_record` adds up, and what a KPI projection keeps and checkpoints.
Instants are whole microseconds since 1970-01-01 UTC, durations whole microseconds; only
strings, integers, booleans, ``None`` and tuples of them, so a million of them pickle and
unpickle without building any class."""

RECORD_LENGTH: Final = 27
"""The number of items in a :data:`FactRecord`."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY: Final = _EPOCH.date()
_DAY_US: Final = 86_400_000_000


def _us(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _us_or_none(at: datetime | None) -> int | None:
    return None if at is None else _us(at)


def _span_us(value: timedelta | None) -> int | None:
    return None if value is None else value // timedelta(microseconds=1)


def pack_facts(
    facts: TicketFacts,
    dues: Sequence[datetime | None] = (),
    last_at: datetime | None = None,
) -> FactRecord:
    """``facts`` as a :data:`FactRecord`: :meth:`KpiAccumulator.add_record` of it adds up
    what :meth:`KpiAccumulator.add` of ``facts`` does. With the ``dues`` and ``last_at`` of
    :class:`KeptFacts`, the record stands for the ticket as of any ``now`` at or after
    ``last_at`` (a pending SLA cycle due by then counts as breached: :meth:`KeptFacts.as_of`).
    Only what the KPIs count is kept: custom fields as the keys they count under, time per
    tier only for the tiers the ticket is done with."""
    due_of = tuple(dues) if dues else (None,) * len(facts.sla)
    activity = tuple(
        (act.agent_id, act.kind, _us(act.at), _span_us(act.duration), _span_us(act.business) or 0)
        if isinstance(act, HandleTime)
        else (act.agent_id, act.kind, _us(act.at))
        for act in facts.activity
    )
    return (
        facts.ticket_id,
        _us(facts.opened_at),
        facts.channel,
        facts.priority.label,
        facts.organization_id,
        facts.group_id,
        facts.assignee_id,
        tuple(sorted(facts.tags)),
        facts.status,
        facts.category.is_active,
        _span_us(facts.first_response),
        _span_us(facts.first_response_business),
        _span_us(facts.resolution),
        _span_us(facts.resolution_business),
        facts.resolved_at is not None and not facts.merged,
        facts.first_contact_resolution,
        facts.solved_times > 0,
        facts.reopens > 0,
        tuple(
            (outcome.policy, outcome.metric, outcome.state, _us_or_none(due))
            for outcome, due in zip(facts.sla, due_of, strict=True)
        ),
        tuple(sorted(facts.tiers)),
        tuple(sorted(facts.escalated_from)),
        activity,
        _us_or_none(facts.surveyed_at),
        facts.rating,
        tuple((name, field_keys(value)) for name, value in facts.fields),
        tuple(
            (tier, _span_us(spent), _span_us(business))
            for tier, spent, business in facts.tier_time
            if tier != facts.tier_now
        ),
        _us_or_none(last_at),
    )


# ------------------------------------------------------------------ filters


def _strings(values: Iterable[str] | str | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = (values,)
    return frozenset(check_text(v, "a filter value") for v in check_items(values, "filter", str))


def _tags(values: Iterable[str] | str | None) -> frozenset[str]:
    return _strings(values) or frozenset()


def _priorities(
    values: Priority | int | str | Iterable[Priority | int | str] | None,
) -> frozenset[Priority] | None:
    if values is None:
        return None
    if isinstance(values, (str, int, Priority)):
        values = (values,)
    return frozenset(Priority.coerce(v) for v in values)


def _instant(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value, "a report's date range")


@attrs.frozen(kw_only=True)
class KpiFilter:
    """Which tickets a report covers.

    ``since`` (included) and ``until`` (excluded) bound the instants tickets were opened (and,
    for agent activity, the instants of the replies and solves counted). The other filters
    match the ticket's state as of the report's ``now``: any of the values given (its group,
    assignee, organization, priority, channel), and all of ``tags``.
    """

    since: datetime | None = attrs.field(default=None, converter=_instant)
    until: datetime | None = attrs.field(default=None, converter=_instant)
    groups: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    agents: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    organizations: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    priorities: frozenset[Priority] | None = attrs.field(default=None, converter=_priorities)
    channels: frozenset[str] | None = attrs.field(default=None, converter=_strings)
    tags: frozenset[str] = attrs.field(factory=frozenset, converter=_tags)

    def __attrs_post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValidationError("a report's date range must end after it starts (until > since)")

    def in_range(self, at: datetime) -> bool:
        """Whether ``at`` is in ``[since, until)``."""
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)

    def matches(self, facts: TicketFacts) -> bool:
        """Whether the ticket passes every filter but the date range."""
        return (
            (self.groups is None or facts.group_id in self.groups)
            and (self.agents is None or facts.assignee_id in self.agents)
            and (self.organizations is None or facts.organization_id in self.organizations)
            and (self.priorities is None or facts.priority in self.priorities)
            and (self.channels is None or facts.channel in self.channels)
            and self.tags <= facts.tags
        )

    def record_matcher(self) -> Callable[[FactRecord], bool] | None:
        """:meth:`matches` for a :data:`FactRecord` (``None``: every record matches)."""
        checks: list[tuple[int, frozenset[str]]] = []
        for index, values in (
            (5, self.groups),
            (6, self.agents),
            (4, self.organizations),
            (2, self.channels),
        ):
            if values is not None:
                checks.append((index, values))
        if self.priorities is not None:
            checks.append((3, frozenset(p.label for p in self.priorities)))
        tags = self.tags
        if not checks and not tags:
            return None

        def match(record: FactRecord) -> bool:
            for index, values in checks:
                if record[index] not in values:
                    return False
            return not tags or tags.issubset(record[7])

        return match

    def to_data(self) -> dict[str, Any]:
        """The JSON-safe form (sets as sorted lists, instants as ISO 8601)."""
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "groups": _sorted(self.groups),
            "agents": _sorted(self.agents),
            "organizations": _sorted(self.organizations),
            "priorities": (
                None if self.priorities is None else sorted(p.label for p in self.priorities)
            ),
            "channels": _sorted(self.channels),
            "tags": sorted(self.tags),
        }


def _sorted(values: frozenset[str] | None) -> list[str] | None:
    return None if values is None else sorted(values)


# ------------------------------------------------------------------ aggregates


def percentile(ordered: Sequence[timedelta], p: float) -> timedelta:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of sorted, non-empty ``ordered``:
    the smallest value with at least ``p`` % of the values at or below it (an order
    statistic, so always one of the values)."""
    if not ordered:
        raise ValidationError("a percentile needs at least one value")
    if not 0 < p <= 100:
        raise ValidationError(f"a percentile is in (0, 100]; got {p!r}")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@attrs.frozen
class Distribution:
    """Count, median (nearest rank, p50), 90th percentile, mean, minimum and maximum of some
    durations (all ``None`` when there are none)."""

    count: int
    median: timedelta | None
    p90: timedelta | None
    mean: timedelta | None
    minimum: timedelta | None
    maximum: timedelta | None

    @classmethod
    def of(cls, values: Iterable[timedelta]) -> Distribution:
        """The distribution of ``values``."""
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None, None, None)
        total = sum(ordered, timedelta(0))
        return cls(
            len(ordered),
            percentile(ordered, 50),
            percentile(ordered, 90),
            total / len(ordered),
            ordered[0],
            ordered[-1],
        )

    @classmethod
    def of_micros(cls, values: Iterable[int]) -> Distribution:
        """The distribution of durations given in whole microseconds (a compact column of
        them, such as an ``array("q")``): equal to :meth:`of` of the same durations."""
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None, None, None)
        n = len(ordered)

        def at(p: float) -> timedelta:
            return timedelta(microseconds=ordered[max(1, math.ceil(p / 100 * n)) - 1])

        return cls(
            n,
            at(50),
            at(90),
            timedelta(microseconds=sum(ordered)) / n,
            timedelta(microseconds=ordered[0]),
            timedelta(microseconds=ordered[-1]),
        )

    def to_data(self) -> dict[str, Any]:
        """Durations in seconds (floats), or ``None``."""

        def seconds(value: timedelta | None) -> float | None:
            return None if value is None else value.total_seconds()

        return {
            "count": self.count,
            "median_seconds": seconds(self.median),
            "p90_seconds": seconds(self.p90),
            "mean_seconds": seconds(self.mean),
            "min_seconds": seconds(self.minimum),
            "max_seconds": seconds(self.maximum),
        }


@attrs.frozen
class Rate:
    """``numerator`` of ``denominator`` tickets; ``rate`` is ``None`` over none."""

    numerator: int
    denominator: int

    @property
    def rate(self) -> float | None:
        """The share, in [0, 1]."""
        return None if self.denominator == 0 else self.numerator / self.denominator

    def to_data(self) -> dict[str, Any]:
        """The counts and the share."""
        return {"count": self.numerator, "of": self.denominator, "rate": self.rate}


@attrs.frozen(kw_only=True)
class SlaCompliance:
    """The cycles of one metric under one policy, by outcome."""

    policy: str
    metric: str
    achieved: int
    breached: int
    pending: int
    stopped: int

    @property
    def compliance(self) -> float | None:
        """Achieved among the cycles decided (achieved or breached); ``None`` before any."""
        decided = self.achieved + self.breached
        return None if decided == 0 else self.achieved / decided

    def to_data(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {
            "policy": self.policy,
            "metric": self.metric,
            "achieved": self.achieved,
            "breached": self.breached,
            "pending": self.pending,
            "stopped": self.stopped,
            "compliance": self.compliance,
        }


_EMPTY: Final = Distribution(0, None, None, None, None, None)


@attrs.frozen(kw_only=True)
class TierEscalation:
    """Tickets that were in tier ``tier``, those escalated up from it, and the time tickets
    spent in it."""

    tier: int
    tickets: int
    escalated: int
    time: Distribution = _EMPTY
    """Per ticket that is done with the tier (left it, or no longer active), the calendar
    time it spent in the tier while working (:data:`WORKING`)."""
    time_business: Distribution = _EMPTY
    """The same in business hours (tickets with a calendar only)."""

    @property
    def rate(self) -> float | None:
        """Escalated among the tickets of the tier."""
        return None if self.tickets == 0 else self.escalated / self.tickets

    def to_data(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {
            "tier": self.tier,
            "tickets": self.tickets,
            "escalated": self.escalated,
            "rate": self.rate,
            "time": self.time.to_data(),
            "time_business": self.time_business.to_data(),
        }


@attrs.frozen(kw_only=True)
class AgentActivity:
    """What one agent did in the date range on the report's tickets."""

    agent_id: str
    public_replies: int
    solved: int
    handle_time: timedelta = timedelta(0)
    """The calendar time tickets spent assigned to the agent while working
    (:data:`WORKING`), in spans ended in the date range."""
    handle_time_business: timedelta = timedelta(0)
    """The same in business hours (tickets with a calendar only)."""

    def to_data(self) -> dict[str, Any]:
        """The JSON-safe form (handle times in seconds)."""
        return {
            "agent": self.agent_id,
            "public_replies": self.public_replies,
            "solved": self.solved,
            "handle_seconds": self.handle_time.total_seconds(),
            "handle_business_seconds": self.handle_time_business.total_seconds(),
        }


@attrs.frozen(kw_only=True)
class Satisfaction:
    """Satisfaction surveys of some tickets: how many were offered, and the latest rating of
    those rated (``good`` or ``bad``)."""

    offered: int = 0
    good: int = 0
    bad: int = 0

    @property
    def responses(self) -> int:
        """The surveyed tickets that were rated."""
        return self.good + self.bad

    @property
    def response_rate(self) -> float | None:
        """Rated among the surveyed; ``None`` before any survey."""
        return None if self.offered == 0 else self.responses / self.offered

    @property
    def score(self) -> float | None:
        """Satisfaction: good / (good + bad); ``None`` before any rating."""
        return None if self.responses == 0 else self.good / self.responses

    def to_data(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return {
            "offered": self.offered,
            "responses": self.responses,
            "good": self.good,
            "bad": self.bad,
            "response_rate": self.response_rate,
            "satisfaction": self.score,
        }


def _counts(counter: Mapping[str | None, int]) -> dict[str | None, int]:
    return dict(sorted(counter.items(), key=lambda kv: (kv[0] is None, kv[0] or "")))


@attrs.frozen(kw_only=True)
class KpiReport:
    """Every KPI of the tickets a :class:`KpiFilter` selects, as of ``now``.

    Ticket figures (volume, response and resolution times, FCR, reopens, SLA, escalation)
    are over the tickets opened in the date range; the backlog is every matching ticket
    active at ``now``; agent activity counts the replies and solves dated in the range.
    Mappings keyed by a ticket field use ``None`` for "none" (no group, no organization).
    """

    now: datetime
    filter: KpiFilter
    period: Period
    tickets: int
    first_response: Distribution
    first_response_business: Distribution
    resolution: Distribution
    resolution_business: Distribution
    first_contact_resolution: Rate
    reopened: Rate
    sla: tuple[SlaCompliance, ...]
    backlog_by_status: Mapping[str | None, int]
    backlog_by_group: Mapping[str | None, int]
    backlog_by_age: Mapping[str | None, int]
    volume_by_channel: Mapping[date, Mapping[str | None, int]]
    volume_by_priority: Mapping[date, Mapping[str | None, int]]
    volume_by_organization: Mapping[date, Mapping[str | None, int]]
    volume_by_field: Mapping[str, Mapping[date, Mapping[str | None, int]]] = attrs.field(
        factory=dict
    )
    """Per custom field asked for (``fields``), by its value as of ``now`` (see
    :func:`field_keys`)."""
    escalation: tuple[TierEscalation, ...]
    agents: tuple[AgentActivity, ...]
    satisfaction: Satisfaction = Satisfaction()
    """The tickets surveyed in the date range (their latest offer dated in it), by their
    latest rating."""
    satisfaction_by_group: Mapping[str | None, Satisfaction] = attrs.field(factory=dict)
    satisfaction_by_agent: Mapping[str | None, Satisfaction] = attrs.field(factory=dict)
    """By the ticket's assignee as of ``now``."""
    satisfaction_over_time: Mapping[date, Satisfaction] = attrs.field(factory=dict)
    """By the period of the latest offer."""

    @property
    def backlog(self) -> int:
        """How many matching tickets are active at ``now``."""
        return sum(self.backlog_by_status.values())

    def to_data(self) -> dict[str, Any]:
        """The JSON-safe form: durations in seconds, dates and instants in ISO 8601, keyed
        counts as lists of ``{"key": ..., "count": ...}`` (``key`` ``None`` for none)."""

        def keyed(counts: Mapping[str | None, int]) -> list[dict[str, Any]]:
            return [{"key": k, "count": n} for k, n in counts.items()]

        def over_time(
            volume: Mapping[date, Mapping[str | None, int]],
        ) -> list[dict[str, Any]]:
            return [{"start": d.isoformat(), "counts": keyed(c)} for d, c in volume.items()]

        return {
            "now": self.now.isoformat(),
            "filter": self.filter.to_data(),
            "period": self.period.value,
            "tickets": self.tickets,
            "first_response": self.first_response.to_data(),
            "first_response_business": self.first_response_business.to_data(),
            "resolution": self.resolution.to_data(),
            "resolution_business": self.resolution_business.to_data(),
            "first_contact_resolution": self.first_contact_resolution.to_data(),
            "reopened": self.reopened.to_data(),
            "sla": [s.to_data() for s in self.sla],
            "backlog": {
                "total": self.backlog,
                "by_status": keyed(self.backlog_by_status),
                "by_group": keyed(self.backlog_by_group),
                "by_age": keyed(self.backlog_by_age),
            },
            "volume": {
                "by_channel": over_time(self.volume_by_channel),
                "by_priority": over_time(self.volume_by_priority),
                "by_organization": over_time(self.volume_by_organization),
                "by_field": [
                    {"field": name, "over_time": over_time(volume)}
                    for name, volume in self.volume_by_field.items()
                ],
            },
            "escalation": [e.to_data() for e in self.escalation],
            "agents": [a.to_data() for a in self.agents],
            "satisfaction": {
                **self.satisfaction.to_data(),
                "by_group": [
                    {"key": k, **v.to_data()} for k, v in self.satisfaction_by_group.items()
                ],
                "by_agent": [
                    {"key": k, **v.to_data()} for k, v in self.satisfaction_by_agent.items()
                ],
                "over_time": [
                    {"start": d.isoformat(), **v.to_data()}
                    for d, v in self.satisfaction_over_time.items()
                ],
            },
        }


def _field_names(fields: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(fields, str):
        fields = (fields,)
    names = (check_text(name, "a custom field name") for name in check_items(fields, "fields", str))
    return tuple(dict.fromkeys(names))


class KpiAccumulator:
    """Adds up :class:`TicketFacts` one ticket at a time (streaming: it keeps the durations
    and counters, never the tickets) into a :class:`KpiReport`; ``fields`` names the custom
    fields to count the volume by."""

    def __init__(
        self,
        now: datetime,
        kpi_filter: KpiFilter | None = None,
        period: Period = Period.DAY,
        fields: Iterable[str] | str = (),
    ) -> None:
        self._now = to_utc(now, "now")
        self._filter = KpiFilter() if kpi_filter is None else kpi_filter
        self._period = Period.coerce(period)
        self._fields = _field_names(fields)
        self._starts: dict[date, date] = {}
        # The same in microseconds since the epoch, for records (add_record).
        self._now_us = _us(self._now)
        self._since_us = _us_or_none(self._filter.since)
        self._until_us = _us_or_none(self._filter.until)
        self._match = self._filter.record_matcher()
        self._by_field: dict[str, dict[date, Counter[str | None]]] = {
            name: {} for name in self._fields
        }
        # Durations in microseconds, 8 bytes each (a timedelta object and its list slot take
        # 48): a report over a million tickets keeps a few million of them.
        self._tier_time: dict[int, array[int]] = {}
        self._tier_time_business: dict[int, array[int]] = {}
        self._tickets = 0
        self._durations: dict[str, array[int]] = {
            name: array("q")
            for name in (
                "first_response",
                "first_response_business",
                "resolution",
                "resolution_business",
            )
        }
        self._fcr = self._resolved = self._reopened = self._ever_solved = 0
        self._sla: dict[tuple[str, str], Counter[str]] = {}
        self._backlog: dict[str, Counter[str | None]] = {
            "status": Counter(),
            "group": Counter(),
            "age": Counter(),
        }
        self._volume: dict[str, dict[date, Counter[str | None]]] = {
            "channel": {},
            "priority": {},
            "organization": {},
        }
        self._tiers: Counter[int] = Counter()
        self._escalated: Counter[int] = Counter()
        self._agents: dict[str, Counter[str]] = {}
        self._csat: dict[str, dict[Any, Counter[str]]] = {
            "total": {},
            "group": {},
            "agent": {},
            "period": {},
        }

    def add(self, facts: TicketFacts) -> None:
        """Count one ticket (facts made as of this accumulator's ``now``)."""
        flt = self._filter
        if not flt.matches(facts):
            return
        in_range = flt.in_range
        if facts.category.is_active:
            backlog = self._backlog
            backlog["status"][facts.status] += 1
            backlog["group"][facts.group_id] += 1
            backlog["age"][age_bucket(self._now - facts.opened_at)] += 1
        agents = self._agents
        for act in facts.activity:
            if in_range(act.at):
                found_agent = agents.get(act.agent_id)
                if found_agent is None:
                    found_agent = agents[act.agent_id] = Counter()
                if isinstance(act, HandleTime):
                    found_agent["handle_us"] += _micros(act.duration)
                    found_agent["handle_business_us"] += _micros(act.business)
                else:
                    found_agent[act.kind] += 1
        if facts.surveyed_at is not None and in_range(facts.surveyed_at):
            csat = self._csat
            for name, key in (
                ("total", None),
                ("group", facts.group_id),
                ("agent", facts.assignee_id),
                ("period", self._period.start(facts.surveyed_at)),
            ):
                found = _counter(csat[name], key)
                found["offered"] += 1
                if facts.rating is not None:
                    found[facts.rating] += 1
        if not in_range(facts.opened_at):
            return
        self._tickets += 1
        start = self._start(facts.opened_at)
        volume = self._volume
        _counter(volume["channel"], start)[facts.channel] += 1
        _counter(volume["priority"], start)[facts.priority.label] += 1
        _counter(volume["organization"], start)[facts.organization_id] += 1
        if self._fields:
            values = dict(facts.fields)
            for name in self._fields:
                per_value = _counter(self._by_field[name], start)
                for key in field_keys(values.get(name)):
                    per_value[key] += 1
        durations = self._durations
        for name, value in (
            ("first_response", facts.first_response),
            ("first_response_business", facts.first_response_business),
            ("resolution", facts.resolution),
            ("resolution_business", facts.resolution_business),
        ):
            if value is not None:
                durations[name].append(value // _MICROSECOND)
        if facts.resolved_at is not None and not facts.merged:
            self._resolved += 1
            self._fcr += facts.first_contact_resolution
        if facts.solved_times:
            self._ever_solved += 1
            self._reopened += facts.reopens > 0
        for outcome in facts.sla:
            _counter(self._sla, (outcome.policy, outcome.metric))[outcome.state] += 1
        for tier in facts.tiers:
            self._tiers[tier] += 1
        for tier in facts.escalated_from:
            self._escalated[tier] += 1
        for tier, spent, business in facts.tier_time:
            if tier == facts.tier_now:
                continue  # still in the tier: its time there is not final
            self._tier_time.setdefault(tier, array("q")).append(spent // _MICROSECOND)
            if business is not None:
                spent_business = self._tier_time_business.setdefault(tier, array("q"))
                spent_business.append(business // _MICROSECOND)

    def add_record(self, record: FactRecord) -> None:
        """Count one ticket from its :data:`FactRecord` (:func:`pack_facts`), as of this
        accumulator's ``now``: the same as :meth:`add` of its facts as of ``now`` (kept facts:
        :meth:`KeptFacts.as_of`). A record whose ticket has events after ``now`` raises
        ValidationError; one of another shape, ValueError or TypeError."""
        (
            _,
            opened,
            channel,
            priority,
            organization,
            group,
            assignee,
            _tags,
            status,
            active,
            first_response,
            first_response_business,
            resolution,
            resolution_business,
            resolved,
            fcr,
            ever_solved,
            reopened,
            sla,
            tiers,
            escalated_from,
            activity,
            surveyed,
            rating,
            fields,
            tier_time,
            last,
        ) = record
        now = self._now_us
        if last is not None and now < last:
            raise ValidationError("kept facts are facts as of their last event or later")
        match = self._match
        if match is not None and not match(record):
            return
        since, until = self._since_us, self._until_us
        if active:
            backlog = self._backlog
            backlog["status"][status] += 1
            backlog["group"][group] += 1
            backlog["age"][_age_label(now - opened)] += 1
        agents = self._agents
        for act in activity:
            at = act[2]
            if (since is None or at >= since) and (until is None or at < until):
                found_agent = agents.get(act[0])
                if found_agent is None:
                    found_agent = agents[act[0]] = Counter()
                if len(act) == 5:
                    found_agent["handle_us"] += act[3]
                    found_agent["handle_business_us"] += act[4]
                else:
                    found_agent[act[1]] += 1
        if (
            surveyed is not None
            and (since is None or surveyed >= since)
            and (until is None or surveyed < until)
        ):
            csat = self._csat
            for name, key in (
                ("total", None),
                ("group", group),
                ("agent", assignee),
                ("period", self._start_us(surveyed)),
            ):
                found = _counter(csat[name], key)
                found["offered"] += 1
                if rating is not None:
                    found[rating] += 1
        if (since is not None and opened < since) or (until is not None and opened >= until):
            return
        self._tickets += 1
        start = self._start_us(opened)
        volume = self._volume
        _counter(volume["channel"], start)[channel] += 1
        _counter(volume["priority"], start)[priority] += 1
        _counter(volume["organization"], start)[organization] += 1
        if self._fields:
            values = dict(fields)
            for name in self._fields:
                per_value = _counter(self._by_field[name], start)
                for key in values.get(name, _NOT_SET):
                    per_value[key] += 1
        durations = self._durations
        if first_response is not None:
            durations["first_response"].append(first_response)
        if first_response_business is not None:
            durations["first_response_business"].append(first_response_business)
        if resolution is not None:
            durations["resolution"].append(resolution)
        if resolution_business is not None:
            durations["resolution_business"].append(resolution_business)
        if resolved:
            self._resolved += 1
            self._fcr += fcr
        if ever_solved:
            self._ever_solved += 1
            self._reopened += reopened
        for policy, metric, state_name, due in sla:
            if due is not None and due <= now:
                state_name = "breached"
            _counter(self._sla, (policy, metric))[state_name] += 1
        for tier in tiers:
            self._tiers[tier] += 1
        for tier in escalated_from:
            self._escalated[tier] += 1
        for tier, spent, business in tier_time:
            self._tier_time.setdefault(tier, array("q")).append(spent)
            if business is not None:
                self._tier_time_business.setdefault(tier, array("q")).append(business)

    def _start_us(self, at: int) -> date:
        # The period of the UTC day of ``at`` (microseconds since the epoch), looked up once.
        day = _EPOCH_DAY + timedelta(days=at // _DAY_US)
        found = self._starts.get(day)
        if found is None:
            found = self._period.start(datetime(day.year, day.month, day.day, tzinfo=UTC))
            self._starts[day] = found
        return found

    def _start(self, at: datetime) -> date:
        # The period ``at`` falls in, by its UTC day (a day's period is looked up once).
        day = at.date() if at.utcoffset() == _ZERO else to_utc(at).date()
        found = self._starts.get(day)
        if found is None:
            found = self._starts[day] = self._period.start(at)
        return found

    def report(self) -> KpiReport:
        """The KPIs of the tickets added so far."""
        ages = self._backlog["age"]

        def over_time(name: str) -> dict[date, Mapping[str | None, int]]:
            found = self._volume[name]
            return {d: _counts(found[d]) for d in sorted(found)}

        return KpiReport(
            now=self._now,
            filter=self._filter,
            period=self._period,
            tickets=self._tickets,
            first_response=Distribution.of_micros(self._durations["first_response"]),
            first_response_business=Distribution.of_micros(
                self._durations["first_response_business"]
            ),
            resolution=Distribution.of_micros(self._durations["resolution"]),
            resolution_business=Distribution.of_micros(self._durations["resolution_business"]),
            first_contact_resolution=Rate(self._fcr, self._resolved),
            reopened=Rate(self._reopened, self._ever_solved),
            sla=tuple(
                SlaCompliance(
                    policy=policy,
                    metric=metric,
                    achieved=found["achieved"],
                    breached=found["breached"],
                    pending=found["pending"],
                    stopped=found["stopped"],
                )
                for (policy, metric), found in sorted(self._sla.items())
            ),
            backlog_by_status=_counts(self._backlog["status"]),
            backlog_by_group=_counts(self._backlog["group"]),
            backlog_by_age={label: ages[label] for label in AGE_LABELS if ages[label]},
            volume_by_channel=over_time("channel"),
            volume_by_priority=over_time("priority"),
            volume_by_organization=over_time("organization"),
            volume_by_field={
                name: {d: _counts(per[d]) for d in sorted(per)}
                for name, per in self._by_field.items()
            },
            escalation=tuple(
                TierEscalation(
                    tier=tier,
                    tickets=self._tiers[tier],
                    escalated=self._escalated[tier],
                    time=Distribution.of_micros(self._tier_time.get(tier, ())),
                    time_business=Distribution.of_micros(self._tier_time_business.get(tier, ())),
                )
                for tier in sorted(self._tiers.keys() | self._tier_time.keys())
            ),
            agents=tuple(
                AgentActivity(
                    agent_id=agent,
                    public_replies=found["reply"],
                    solved=found["solved"],
                    handle_time=timedelta(microseconds=found["handle_us"]),
                    handle_time_business=timedelta(microseconds=found["handle_business_us"]),
                )
                for agent, found in sorted(self._agents.items())
            ),
            satisfaction=_satisfaction(self._csat["total"].get(None, Counter())),
            satisfaction_by_group={
                k: _satisfaction(self._csat["group"][k]) for k in _keys(self._csat["group"])
            },
            satisfaction_by_agent={
                k: _satisfaction(self._csat["agent"][k]) for k in _keys(self._csat["agent"])
            },
            satisfaction_over_time={
                d: _satisfaction(found) for d, found in sorted(self._csat["period"].items())
            },
        )


_MICROSECOND: Final = timedelta(microseconds=1)
_ZERO: Final = timedelta(0)
_AGE_BUCKETS_US: Final = tuple((bound // _MICROSECOND, label) for bound, label in AGE_BUCKETS)
_NOT_SET: Final[tuple[str | None, ...]] = (None,)


def _age_label(age: int) -> str:
    # :func:`age_bucket` of an age in microseconds.
    for bound, label in _AGE_BUCKETS_US:
        if age < bound:
            return label
    return _OLDEST


def _counter(found: dict[Any, Counter[Any]], key: Any) -> Counter[Any]:
    # ``found[key]``, a new Counter if there is none yet (``setdefault`` would make one each
    # time: a quarter of a report's adding up).
    counter = found.get(key)
    if counter is None:
        counter = found[key] = Counter()
    return counter


def _micros(value: timedelta | None) -> int:
    return 0 if value is None else value // _MICROSECOND


def _keys(found: Mapping[Any, object]) -> list[str | None]:
    return sorted(found, key=lambda k: (k is None, k or ""))


def _satisfaction(found: Counter[str]) -> Satisfaction:
    return Satisfaction(offered=found["offered"], good=found["good"], bad=found["bad"])


def aggregate(
    facts: Iterable[TicketFacts],
    now: datetime,
    kpi_filter: KpiFilter | None = None,
    period: Period = Period.DAY,
    fields: Iterable[str] | str = (),
) -> KpiReport:
    """The KPIs of ``facts`` (see :class:`KpiAccumulator`)."""
    accumulator = KpiAccumulator(now, kpi_filter, period, fields)
    for one in facts:
        accumulator.add(one)
    return accumulator.report()
