"""Properties of the KPI aggregates (helpkit.kpis): they equal the per-ticket facts added up
naively, filters partition the tickets, percentiles are order statistics, and the order in
which tickets are streamed does not matter."""

from __future__ import annotations

import contextlib
import math
import random
from array import array
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Actor, DeskConfig, Helpdesk
from helpkit.calendar import BusinessCalendar
from helpkit.errors import HelpkitError, ValidationError
from helpkit.escalation import Tier, TierLadder
from helpkit.events import CommentAdded, StatusChanged
from helpkit.fold import replay
from helpkit.kpis import (
    AGE_BUCKETS,
    Activity,
    Distribution,
    HandleTime,
    KpiFilter,
    KpiReport,
    SlaOutcome,
    TicketFacts,
    age_bucket,
    aggregate,
    keep_facts,
    keep_resumable,
    percentile,
    resume_facts,
    ticket_facts,
)
from helpkit.priority import Priority
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import ActorKind, StatusCategory

H = timedelta(hours=1)
START = datetime(2026, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=60)
CHANNELS = ("web", "email", "api")
GROUPS = ("desk", "tech", None)

durations = st.integers(min_value=0, max_value=30 * 86_400).map(lambda s: timedelta(seconds=s))
instants = st.integers(min_value=0, max_value=59 * 86_400).map(
    lambda s: START + timedelta(seconds=s)
)


@st.composite
def facts(draw: st.DrawFn) -> TicketFacts:
    opened = draw(instants)
    category = draw(st.sampled_from(StatusCategory))
    resolved = draw(st.booleans()) and not category.is_active
    first = draw(st.none() | durations)
    resolution = draw(durations) if resolved else None
    solved_times = draw(st.integers(0, 3)) if resolved else draw(st.integers(0, 1))
    return TicketFacts(
        ticket_id=f"t{draw(st.integers(0, 10**9))}",
        opened_at=opened,
        channel=draw(st.sampled_from(CHANNELS)),
        priority=draw(st.sampled_from(Priority)),
        organization_id=draw(st.sampled_from(("acme", "globex", None))),
        group_id=draw(st.sampled_from(GROUPS)),
        assignee_id=draw(st.sampled_from(("ana", "ben", None))),
        tags=draw(st.frozensets(st.sampled_from(("vip", "vpn", "mail")))),
        status=category.value,
        category=category,
        merged=category is StatusCategory.CLOSED and draw(st.booleans()),
        first_response_at=None if first is None else opened + first,
        first_response=first,
        first_response_business=draw(st.none() | durations) if first is not None else None,
        resolved_at=None if resolution is None else opened + resolution,
        resolution=resolution,
        resolution_business=draw(st.none() | durations) if resolution is not None else None,
        solved_times=solved_times,
        reopens=draw(st.integers(0, max(0, solved_times - 1))),
        replies_before_resolution=draw(st.integers(0, 3)) if resolved else 0,
        sla=tuple(
            draw(
                st.lists(
                    st.builds(
                        SlaOutcome,
                        st.just("standard"),
                        st.sampled_from(("first_response", "resolution")),
                        st.integers(0, 2),
                        st.sampled_from(("achieved", "breached", "pending", "stopped")),
                    ),
                    max_size=3,
                )
            )
        ),
        tiers=draw(st.frozensets(st.integers(1, 3))),
        escalated_from=frozenset(),
        activity=tuple(
            draw(
                st.lists(
                    st.builds(
                        Activity,
                        st.sampled_from(("ana", "ben")),
                        st.sampled_from(("reply", "solved")),
                        instants,
                    )
                    | st.builds(
                        HandleTime,
                        st.sampled_from(("ana", "ben")),
                        st.just("handle"),
                        instants,
                        durations,
                        st.none() | durations,
                    ),
                    max_size=4,
                )
            )
        ),
        fields=tuple(
            sorted(
                draw(
                    st.dictionaries(
                        st.sampled_from(("form", "vip")),
                        st.sampled_from(("access", "billing"))
                        | st.booleans()
                        | st.tuples(st.sampled_from(("a", "b"))),
                    )
                ).items()
            )
        ),
        tier_time=tuple(
            (tier, spent, draw(st.none() | durations))
            for tier, spent in sorted(draw(st.dictionaries(st.integers(1, 3), durations)).items())
        ),
        tier_now=draw(st.none() | st.integers(1, 3)),
    )


tickets = st.lists(facts(), max_size=25)
SHARED_MACHINE = settings(suppress_health_check=[HealthCheck.too_slow])
"""Drawing 25 tickets' facts can pass Hypothesis's time limit on a busy machine."""
filters = st.builds(
    KpiFilter,
    since=st.none() | instants,
    channels=st.none() | st.frozensets(st.sampled_from(CHANNELS), min_size=1),
    groups=st.none() | st.frozensets(st.sampled_from(("desk", "tech")), min_size=1),
    tags=st.frozensets(st.sampled_from(("vip", "vpn"))),
)


def naive_distribution(values: list[timedelta]) -> Distribution:
    if not values:
        return Distribution(0, None, None, None, None, None)
    ordered = sorted(values)
    n = len(ordered)
    return Distribution(
        n,
        ordered[math.ceil(n / 2) - 1],
        ordered[math.ceil(0.9 * n) - 1],
        sum(ordered, timedelta(0)) / n,
        min(ordered),
        max(ordered),
    )


@given(tickets, filters)
@SHARED_MACHINE
def test_aggregates_are_the_facts_added_up(
    all_facts: list[TicketFacts], kpi_filter: KpiFilter
) -> None:
    report = aggregate(all_facts, NOW, kpi_filter)
    matching = [f for f in all_facts if kpi_filter.matches(f)]
    cohort = [f for f in matching if kpi_filter.in_range(f.opened_at)]
    assert report.tickets == len(cohort)
    for name in ("first_response", "first_response_business", "resolution", "resolution_business"):
        values = [getattr(f, name) for f in cohort if getattr(f, name) is not None]
        assert getattr(report, name) == naive_distribution(values)
    resolved = [f for f in cohort if f.resolved_at is not None and not f.merged]
    assert report.first_contact_resolution.denominator == len(resolved)
    assert report.first_contact_resolution.numerator == sum(
        f.reopens == 0 and f.replies_before_resolution == 1 for f in resolved
    )
    solved = [f for f in cohort if f.solved_times > 0]
    assert report.reopened.denominator == len(solved)
    assert report.reopened.numerator == sum(f.reopens > 0 for f in solved)
    outcomes = [o for f in cohort for o in f.sla]
    for row in report.sla:
        for state in ("achieved", "breached", "pending", "stopped"):
            assert getattr(row, state) == sum(
                o.state == state and o.metric == row.metric for o in outcomes
            )
    assert sum(r.achieved + r.breached + r.pending + r.stopped for r in report.sla) == len(outcomes)
    backlog = [f for f in matching if f.category.is_active]
    assert report.backlog == len(backlog)
    assert sum(report.backlog_by_group.values()) == len(backlog)
    assert sum(report.backlog_by_age.values()) == len(backlog)
    for volume in (
        report.volume_by_channel,
        report.volume_by_priority,
        report.volume_by_organization,
    ):
        assert sum(n for counts in volume.values() for n in counts.values()) == len(cohort)
    acts = [a for f in matching for a in f.activity if kpi_filter.in_range(a.at)]
    assert sum(a.public_replies + a.solved for a in report.agents) == sum(
        a.kind != "handle" for a in acts
    )
    for agent in report.agents:
        handled = [a for a in acts if a.kind == "handle" and a.agent_id == agent.agent_id]
        assert all(isinstance(a, HandleTime) for a in handled)
        assert agent.handle_time == sum(
            (a.duration for a in handled if isinstance(a, HandleTime)), timedelta(0)
        )
        assert agent.handle_time_business == sum(
            (a.business or timedelta(0) for a in handled if isinstance(a, HandleTime)),
            timedelta(0),
        )
    for tier in report.escalation:
        assert tier.tickets == sum(tier.tier in f.tiers for f in cohort)
        done = [(s, b) for f in cohort for t, s, b in f.tier_time if t == tier.tier != f.tier_now]
        assert tier.time == naive_distribution([s for s, _ in done])
        assert tier.time_business == naive_distribution([b for _, b in done if b is not None])
    assert {t.tier for t in report.escalation} == {
        t for f in cohort for t in f.tiers | {t for t, _, _ in f.tier_time if t != f.tier_now}
    }
    by_form = aggregate(all_facts, NOW, kpi_filter, fields="form").volume_by_field["form"]
    assert sum(by_form[d][None] for d in by_form if None in by_form[d]) == sum(
        "form" not in dict(f.fields) for f in cohort
    )
    assert sum(n for counts in by_form.values() for k, n in counts.items() if k) == sum(
        "form" in dict(f.fields) for f in cohort
    )


def _totals(report: KpiReport) -> tuple[int, ...]:
    return (
        report.tickets,
        report.backlog,
        report.first_response.count,
        report.resolution.count,
        report.first_contact_resolution.numerator,
        report.first_contact_resolution.denominator,
        report.reopened.numerator,
        report.reopened.denominator,
        sum(r.achieved + r.breached + r.pending + r.stopped for r in report.sla),
        sum(a.public_replies + a.solved for a in report.agents),
    )


@given(tickets)
@SHARED_MACHINE
def test_channel_filters_partition_the_tickets(all_facts: list[TicketFacts]) -> None:
    whole = _totals(aggregate(all_facts, NOW))
    parts = [_totals(aggregate(all_facts, NOW, KpiFilter(channels=[c]))) for c in CHANNELS]
    assert tuple(map(sum, zip(*parts, strict=True))) == whole


@given(tickets, instants)
@SHARED_MACHINE
def test_a_date_split_partitions_the_opened_tickets(
    all_facts: list[TicketFacts], split: datetime
) -> None:
    whole = aggregate(all_facts, NOW)
    before = aggregate(all_facts, NOW, KpiFilter(until=split))
    after = aggregate(all_facts, NOW, KpiFilter(since=split))
    assert before.tickets + after.tickets == whole.tickets
    assert before.resolution.count + after.resolution.count == whole.resolution.count
    assert (
        before.first_contact_resolution.denominator + after.first_contact_resolution.denominator
        == whole.first_contact_resolution.denominator
    )
    # The backlog is a snapshot at ``now``: the date range does not cut it.
    assert before.backlog == after.backlog == whole.backlog
    replies = [sum(a.public_replies for a in r.agents) for r in (before, after, whole)]
    assert replies[0] + replies[1] == replies[2]


@given(tickets, st.randoms(use_true_random=False))
@SHARED_MACHINE
def test_the_order_tickets_come_in_does_not_matter(
    all_facts: list[TicketFacts], rng: random.Random
) -> None:
    shuffled = list(all_facts)
    rng.shuffle(shuffled)
    assert aggregate(shuffled, NOW).to_data() == aggregate(all_facts, NOW).to_data()


@given(
    st.lists(durations, min_size=1, max_size=40),
    st.floats(min_value=0.01, max_value=100),
    st.floats(min_value=0.01, max_value=100),
)
def test_percentiles_are_order_statistics(values: list[timedelta], p: float, q: float) -> None:
    ordered = sorted(values)
    found = percentile(ordered, p)
    assert found in ordered
    assert ordered[0] <= found <= ordered[-1]
    # At least p % of the values are at or below it, and fewer are strictly below it.
    assert sum(v <= found for v in ordered) >= p / 100 * len(ordered) - 1e-9
    assert sum(v < found for v in ordered) < p / 100 * len(ordered) + 1e-9
    low, high = sorted((p, q))
    assert percentile(ordered, low) <= percentile(ordered, high)
    assert percentile(ordered, 100) == ordered[-1]


@given(durations)
def test_age_buckets_are_ordered(age: timedelta) -> None:
    label = age_bucket(age)
    bounds = [bound for bound, _ in AGE_BUCKETS]
    index = sum(age >= bound for bound in bounds)
    assert label == ([name for _, name in AGE_BUCKETS] + [">30d"])[index]


# -- Facts of real histories -----------------------------------------------------------------

OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
POLICY = SlaPolicy(
    "standard",
    OFFICE,
    {p: Targets(first_response=4 * H, resolution=16 * H) for p in Priority},
)
MONDAY = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
LADDER = TierLadder([Tier(1, "L1", ("desk",)), Tier(2, "L2", ("tech",))])
STEPS = ("agent_reply", "requester_reply", "note", "resolve", "reopen", "pending", "escalate")


@given(
    st.lists(
        st.tuples(st.sampled_from(STEPS), st.integers(min_value=0, max_value=20 * 60)),
        max_size=12,
    ),
    st.data(),
)
@settings(max_examples=40, deadline=None)
def test_facts_of_a_history(steps: list[tuple[str, int]], data: st.DataObject) -> None:
    clock = FrozenClock(MONDAY)
    desk = Helpdesk(
        MemoryStore(),
        config=DeskConfig(sla=SlaPolicySet((POLICY,))),
        clock=clock,
        entry_points=False,
    )
    try:
        desk.add_group("desk", "Service desk", tier=1)
        desk.add_group("tech", "Technicians", tier=2)
        desk.add_agent("ana", "Ana", email="ana@support.example", groups=["desk"])
        desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")
        ana = Actor.agent("ana")
        opener = data.draw(st.sampled_from((Actor.contact("bob"), ana)), label="opener")
        ticket = desk.open_ticket(
            opener, requester="bob", subject="VPN", body="down", group="desk"
        ).id
        for step, minutes in steps:
            clock.advance(timedelta(minutes=minutes))
            with contextlib.suppress(HelpkitError):  # a step the state refuses is skipped
                if step == "agent_reply":
                    desk.reply(ticket, ana, "hello")
                elif step == "requester_reply":
                    desk.requester_reply(ticket, "still broken")
                elif step == "note":
                    desk.note(ticket, ana, "looking")
                elif step == "resolve":
                    desk.resolve(ticket, ana)
                elif step == "reopen":
                    desk.reopen(ticket, ana)
                elif step == "pending":
                    desk.set_status(ticket, ana, "pending")
                else:
                    desk.escalate(ticket, ana)
        events = desk.history(ticket)
        now = clock.now()
        found = ticket_facts(events, now, policy=POLICY, ladder=LADDER)
        assert found is not None
        opened = events[0].at
        agent_replies = [  # events[1] is the opening message
            e.at
            for e in events[2:]
            if isinstance(e, CommentAdded)
            and e.comment.public
            and e.comment.author.kind is ActorKind.AGENT
        ]
        assert found.first_response_at == (agent_replies[0] if agent_replies else None)
        if found.first_response_at is not None:
            assert found.first_response == found.first_response_at - opened
            assert found.first_response_business == OFFICE.elapsed(opened, found.first_response_at)
            assert found.first_response_business <= found.first_response
        changes = [e for e in events if isinstance(e, StatusChanged)]
        assert found.reopens == sum(
            e.old_category is StatusCategory.SOLVED and e.category.is_active for e in changes
        )
        assert found.solved_times == sum(e.category is StatusCategory.SOLVED for e in changes)
        assert (found.resolved_at is not None) == (found.category is StatusCategory.SOLVED)
        if found.resolution is not None and found.resolution_business is not None:
            assert found.resolution_business <= found.resolution
        assert found.escalated_from <= found.tiers
        state = replay(events)
        assert (found.group_id, found.assignee_id, found.status, found.category) == (
            state.group_id,
            state.assignee_id,
            state.status,
            state.category,
        )
        assert (found.priority, found.tags, found.channel) == (
            state.priority,
            state.tags,
            state.channel,
        )
        replies = sum(a.kind == "reply" for a in found.activity)
        assert replies == len(agent_replies)
        # As of an earlier instant, the facts are those of the history up to it.
        cut = data.draw(st.sampled_from([e.at for e in events]))
        upto = [e for e in events if e.at <= cut]
        assert ticket_facts(events, cut, policy=POLICY, ladder=LADDER) == (
            ticket_facts(upto, cut, policy=POLICY, ladder=LADDER)
        )
        # A fold resumed in random-sized steps is the fold of the whole history.
        whole, whole_fold = keep_resumable(events, policy=POLICY, ladder=LADDER)
        assert whole == keep_facts(events, policy=POLICY, ladder=LADDER)
        assert whole_fold.state == state
        splits = sorted(data.draw(st.lists(st.integers(1, len(events)), max_size=4)))
        kept, fold = keep_resumable(
            events[: splits[0] if splits else 1], ladder=LADDER, policy=POLICY
        )
        done = splits[0] if splits else 1
        for end in [*splits[1:], len(events)]:
            kept, fold = resume_facts(kept, fold, events[done:end], ladder=LADDER)
            done = max(done, end)
        assert kept == whole
        assert fold.state == whole_fold.state
        assert fold.sla is not None and whole_fold.sla is not None
        assert fold.sla.to_data() == whole_fold.sla.to_data()
        assert fold.sla.same_clocks(whole_fold.sla)
        for later in (now, now + timedelta(days=data.draw(st.integers(0, 9)))):
            assert kept.as_of(later) == ticket_facts(events, later, policy=POLICY, ladder=LADDER)
        with pytest.raises(ValidationError):  # events that do not follow
            resume_facts(kept, fold, events[1:2], ladder=LADDER)
    finally:
        desk.shutdown()


@given(st.lists(st.integers(min_value=0, max_value=10**14)))
def test_a_column_of_microseconds_has_the_distribution_of_its_durations(
    values: list[int],
) -> None:
    durations = [timedelta(microseconds=v) for v in values]
    assert Distribution.of_micros(array("q", values)) == Distribution.of(durations)
    assert Distribution.of(durations) == naive_distribution(durations)
