"""Properties of routing (Hypothesis): round-robin fairness, capacity never exceeded, an
unavailable agent never chosen; on the pure decision and on a desk driven by a state machine
(create, solve, away, back, clock moves)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from helpkit import Helpdesk
from helpkit.calendar import BusinessCalendar
from helpkit.people import Agent
from helpkit.routing import GroupRouting, Request, Strategy, choose, unavailable
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = BusinessCalendar.from_dict({"timezone": "UTC", "hours": "mon-fri 09:00-17:00"})
CALENDARS = {"day": DAY}

agents_st = st.lists(
    st.builds(
        lambda n, active, away, shift, skills: Agent(
            id=f"a{n}",
            name=f"A{n}",
            group_ids=["g"],
            active=active,
            away_until=None if away is None else NOW + timedelta(minutes=away),
            calendar="day" if shift else None,
            skills=skills,
        ),
        st.integers(0, 20),
        st.booleans(),
        st.none() | st.integers(-120, 120),
        st.booleans(),
        st.sets(st.sampled_from(["billing", "vpn"])),
    ),
    max_size=8,
    unique_by=lambda a: a.id,
)


def _available(agent: Agent, now: datetime) -> bool:
    """Written out here, not read from :func:`helpkit.routing.unavailable`, so that a mistake
    there (an away agent, or one off their shift, taken as available) fails the property."""
    if not agent.active:
        return False
    if agent.away_until is not None and now < agent.away_until:
        return False
    return agent.calendar is None or DAY.is_open(now)


@given(
    agents=agents_st,
    strategy=st.sampled_from(Strategy),
    capacity=st.none() | st.integers(0, 3),
    loads=st.dictionaries(st.sampled_from([f"a{n}" for n in range(21)]), st.integers(0, 5)),
    skills=st.sets(st.sampled_from(["billing", "vpn"])),
    hours=st.integers(0, 24 * 7),
    cursor=st.none() | st.sampled_from([f"a{n}" for n in range(21)]),
)
def test_the_chosen_agent_is_available_skilled_and_below_capacity(
    agents: list[Agent],
    strategy: Strategy,
    capacity: int | None,
    loads: dict[str, int],
    skills: set[str],
    hours: int,
    cursor: str | None,
) -> None:
    now = NOW + timedelta(hours=hours)
    policy = GroupRouting(group_id="g", strategy=strategy, capacity=capacity)
    request = Request(skills=frozenset(skills))
    decision = choose(policy, agents, loads, cursor, request, now=now, calendars=CALENDARS)
    again = choose(policy, agents, loads, cursor, request, now=now, calendars=CALENDARS)
    assert decision == again  # deterministic
    able = [
        a
        for a in agents
        if _available(a, now)
        and skills <= set(a.skills)
        and (capacity is None or loads.get(a.id, 0) < capacity)
    ]
    if decision.agent_id is None:
        assert able == []
        assert {a for a, _ in decision.skipped} == {a.id for a in agents}
        return
    chosen = next(a for a in agents if a.id == decision.agent_id)
    assert chosen in able
    assert _available(chosen, now), "an unavailable agent was chosen"
    assert unavailable(chosen, now, CALENDARS) is None
    assert capacity is None or loads.get(chosen.id, 0) < capacity
    if strategy is Strategy.LEAST_LOADED:
        assert loads.get(chosen.id, 0) == min(loads.get(a.id, 0) for a in able)
    assert decision.cursor == chosen.id
    assert {a for a, _ in decision.skipped} == {a.id for a in agents} - {a.id for a in able}


@given(
    count=st.integers(1, 7),
    strategy=st.sampled_from(Strategy),
    tickets=st.integers(0, 60),
    start=st.none() | st.integers(0, 6),
)
def test_round_robin_is_fair_over_any_run(
    count: int, strategy: Strategy, tickets: int, start: int | None
) -> None:
    """Among always-available agents, after any number of tickets (none solved), the most
    and the least served differ by at most one, for both strategies."""
    agents = [Agent(id=f"a{n}", name=f"A{n}", group_ids=["g"]) for n in range(count)]
    policy = GroupRouting(group_id="g", strategy=strategy)
    cursor = None if start is None else f"a{start % count}"
    loads: Counter[str] = Counter()
    for _ in range(tickets):
        decision = choose(policy, agents, loads, cursor, Request(), now=NOW, calendars={})
        assert decision.agent_id is not None
        loads[decision.agent_id] += 1
        cursor = decision.cursor
        served = [loads[a.id] for a in agents]
        assert max(served) - min(served) <= 1


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 5),
    strategy=st.sampled_from(Strategy),
    steps=st.lists(st.sampled_from(["open", "move", "by_hand"]), max_size=25),
)
def test_a_desk_routes_round_robin_fairly_over_any_run(
    count: int, strategy: Strategy, steps: list[str]
) -> None:
    """On a desk, through the command pipeline (the cursor stored with each commit): tickets
    opened in the routed group, moved into it, or opened there already assigned by hand (which
    routing leaves alone); nobody solves anything. Round robin: the agents routing served
    differ by at most one ticket after every step. Least loaded: each ticket goes to an agent
    with the fewest tickets (those given by hand count), and without tickets given by hand the
    loads differ by at most one after every step."""
    desk = Helpdesk("memory://", config={"routing": {"g": {"strategy": strategy.value}}})
    desk.add_group("g", "G")
    desk.add_group("other", "Other")
    desk.add_agent("boss", "Boss", groups=["other"])
    agents = [f"a{n}" for n in range(count)]
    for agent in agents:
        desk.add_agent(agent, agent.upper(), groups=["g"])
    boss = Actor.agent("boss")
    routed: Counter[str] = Counter()
    loads: Counter[str] = Counter()
    for index, step in enumerate(steps):
        requester = f"r{index}@example.com"
        if step == "open":
            ticket = desk.open_ticket(boss, requester=requester, subject="T", group="g")
        elif step == "move":
            ticket = desk.open_ticket(boss, requester=requester, subject="T", group="other")
            ticket = desk.transfer(ticket, boss, group="g", reason="belongs there")
        else:
            desk.open_ticket(boss, requester=requester, subject="T", group="g", assignee=agents[0])
            loads[agents[0]] += 1
            continue
        assert ticket.assignee_id in agents
        assert str(desk.history(ticket)[-1].actor) == "system:routing"
        if strategy is Strategy.LEAST_LOADED:
            assert loads[ticket.assignee_id] == min(loads[a] for a in agents), loads
        routed[ticket.assignee_id] += 1
        loads[ticket.assignee_id] += 1
        if strategy is Strategy.ROUND_ROBIN or "by_hand" not in steps:
            served = [routed[a] for a in agents]  # without by hand, the loads
            assert max(served) - min(served) <= 1, routed


class RoutingMachine(RuleBasedStateMachine):
    """A desk with a routed group of four agents with capacities, one of them (a2) on a
    Mon-Fri 09:00-17:00 shift: tickets come, are solved, agents go away and come back, the
    clock moves (across the end of the shift). After every step: nobody over capacity, and
    nobody unavailable (away, inactive, off shift) given a ticket."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(NOW)
        self.desk = Helpdesk(
            "memory://",
            clock=self.clock,
            config={
                "routing": {"g": {"capacity": 3, "capacities": {"a3": 1}}},
                "calendars": {"day": {"timezone": "UTC", "hours": "mon-fri 09:00-17:00"}},
            },
        )
        self.desk.add_group("g", "G")
        for n in range(4):
            self.desk.add_agent(f"a{n}", f"A{n}", groups=["g"], calendar="day" if n == 2 else None)
        self.actor = Actor.agent("a0")
        self.contact = self.desk.create_contact("R", emails=["r@example.com"])
        self.count = 0

    @rule()
    def create(self) -> None:
        self.count += 1
        before = {a.id: a for a in self.desk.agents()}
        ticket = self.desk.open_ticket(
            self.actor, requester=self.contact.id, subject=f"T{self.count}", group="g"
        )
        if ticket.assignee_id is not None:
            chosen = before[ticket.assignee_id]
            assert _available(chosen, self.desk.now()), "an unavailable agent was chosen"

    @precondition(lambda self: self.count > 0)
    @rule(data=st.data())
    def solve(self, data: st.DataObject) -> None:
        mine = list(self.desk.tickets(categories=["new", "open"], limit=100))
        assigned = [t for t in mine if t.assignee_id is not None]
        if assigned:
            ticket = data.draw(st.sampled_from(assigned))
            self.desk.resolve(ticket, self.actor)

    @rule(agent=st.integers(0, 3), minutes=st.integers(1, 90))
    def away(self, agent: int, minutes: int) -> None:
        self.desk.set_away(f"a{agent}", self.desk.now() + timedelta(minutes=minutes))

    @rule(agent=st.integers(0, 3))
    def back(self, agent: int) -> None:
        self.desk.set_away(f"a{agent}", None)

    @rule(minutes=st.integers(1, 60 * 8))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        agents = {a.id: a for a in self.desk.agents()}
        for ticket in self.desk.route_waiting():
            assert ticket.assignee_id is not None
            assert _available(agents[ticket.assignee_id], self.desk.now()), "unavailable chosen"

    @invariant()
    def nobody_over_capacity(self) -> None:
        loads = Counter(
            t.assignee_id
            for t in self.desk.tickets(categories=["new", "open"], limit=500)
            if t.assignee_id is not None
        )
        for agent, load in loads.items():
            assert load <= (1 if agent == "a3" else 3), (agent, load)

    @invariant()
    def a_waiting_ticket_means_nobody_has_room(self) -> None:
        # Every way capacity comes back routes the waiting tickets: a solve, an agent back,
        # the clock moving (with route_waiting, as a host's periodic job runs it).
        for ticket in self.desk.tickets(unassigned=True, categories=["new", "open"]):
            decision = self.desk.routing_decision(ticket)
            assert decision is not None and decision.agent_id is None, decision


RoutingMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=30, deadline=None)
TestRoutingMachine = RoutingMachine.TestCase
