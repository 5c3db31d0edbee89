"""SLA clocks, the sweep and escalation, driven through the Helpdesk."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import ConfigError, InvalidTransitionError
from helpkit.escalation import EscalationRules
from helpkit.events import Escalated, PriorityChanged, SlaBreached, SlaWarned
from helpkit.ports import Store
from helpkit.sla import Metric, SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.memory import MemoryStore
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock

H = timedelta(hours=1)
MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
FRI = MON + timedelta(days=4)
OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
POLICY = SlaPolicy(
    "standard",
    OFFICE,
    {
        Priority.P1: Targets(resolution=4 * H),
        Priority.P2: Targets(resolution=4 * H),
        Priority.P3: Targets(resolution=8 * H),
        Priority.P4: Targets(resolution=16 * H),
        Priority.P5: Targets(resolution=16 * H),
    },
)
RULES = EscalationRules.from_list(
    [
        {
            "name": "warn",
            "metric": "resolution",
            "at": 0.75,
            "actions": ["notify_assignee", "notify_group"],
        },
        {
            "name": "breach",
            "metric": "resolution",
            "at": "breach",
            "actions": ["escalate", "raise_priority"],
        },
    ]
)
AGENT = Actor.agent("ana")


_KIND = ["memory"]  # which store make_desk builds; switched by the ``store_kind`` fixture
_FOLDER: list[Path] = []
_OPENED: list[Store] = []  # closed after each test (Python 3.13 warns of unclosed SQLite files)


@pytest.fixture(autouse=True, params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test here runs on the in-memory store and on the SQLite store."""
    _KIND[:] = [request.param]
    _FOLDER[:] = [tmp_path]
    yield request.param
    _KIND[:] = ["memory"]
    while _OPENED:
        _OPENED.pop().close()


def new_store() -> Store:
    store: Store = MemoryStore()
    if _KIND[0] == "sqlite":
        store = SqliteStore(str(_FOLDER[0] / f"desk-{uuid.uuid4().hex}.db"), synchronous="NORMAL")
    _OPENED.append(store)
    return store


def make_desk(
    start: datetime = MON, *, store: Store | None = None, rules: EscalationRules = RULES
) -> tuple[Helpdesk, FrozenClock, RecordingChannel]:
    clock = FrozenClock(start)
    channel = RecordingChannel("email")
    config = DeskConfig(sla=SlaPolicySet((POLICY,)), escalation=rules)
    counter = iter(range(10**9))
    desk = Helpdesk(
        store if store is not None else new_store(),
        config=config,
        clock=clock,
        channels=[channel],
        entry_points=False,
        id_factory=lambda: f"id{next(counter)}",
        delivery="sync",
    )
    if store is None:
        desk.add_group("desk", "Service desk", tier=1)
        desk.add_group("tech", "Technicians", tier=2)
        desk.add_agent("ana", "Ana", email="ana@support.example", groups=["desk"])
        desk.add_agent("ben", "Ben", email="ben@support.example", groups=["desk"])
        desk.add_agent("tom", "Tom", email="tom@support.example", groups=["tech"])
        desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")
    return desk, clock, channel


def _open(desk: Helpdesk, impact: str = "medium", urgency: str = "medium") -> str:
    return desk.open_ticket(
        Actor.contact("bob"),
        requester="bob",
        subject="VPN",
        body="down",
        impact=impact,
        urgency=urgency,
    ).id


def test_pause_moves_the_due_date() -> None:
    """8h target, created Mon 09:00, pending Mon 16:00-18:00: due Tue 10:00."""
    desk, clock, _ = make_desk()
    ticket = _open(desk)  # P3: 8h
    assert desk.ticket(ticket).next_deadline == MON + 8 * H
    clock.set(MON + 7 * H)
    desk.reply(ticket, AGENT, "Can you send logs?", status="pending")
    assert desk.ticket(ticket).next_deadline is None  # paused: no due date
    clock.set(MON + 9 * H)
    desk.requester_reply(ticket, "Here")
    assert desk.ticket(ticket).next_deadline == MON + timedelta(days=1, hours=1)
    status = desk.sla(ticket)
    assert status is not None
    clock_ = status.current(Metric.RESOLUTION)
    assert clock_ is not None and clock_.elapsed == 7 * H and clock_.remaining == H


def test_pause_over_a_weekend() -> None:
    """4h target created Fri 15:00, paused Fri 16:00 to Mon 10:00: due Mon 13:00."""
    desk, clock, _ = make_desk(FRI + 6 * H)
    ticket = _open(desk, "high", "medium")  # P2: 4h
    clock.set(FRI + 7 * H)
    desk.set_status(ticket, AGENT, "on_hold")
    clock.set(MON + timedelta(days=7, hours=1))
    desk.set_status(ticket, AGENT, "open")
    assert desk.ticket(ticket).next_deadline == MON + timedelta(days=7, hours=4)


def test_priority_raise_recomputes_from_the_start_and_breaches_at_once() -> None:
    """Created Mon 09:00 as low (16h), raised to urgent (4h) at 15:00: due Mon 13:00, breached."""
    desk, clock, _ = make_desk()
    ticket = _open(desk, "low", "low")  # P5: 16h
    assert desk.ticket(ticket).next_deadline == MON + timedelta(days=1, hours=8)
    clock.set(MON + 6 * H)
    raised = desk.prioritize(ticket, AGENT, impact="high", urgency="high")
    assert raised.priority is Priority.P1
    assert raised.next_deadline == MON + 4 * H
    assert raised.next_check is not None and raised.next_check <= clock.now()
    report = desk.sweep()
    assert report.breaches == 1
    breaches = [e for e in desk.history(ticket) if isinstance(e, SlaBreached)]
    assert [(b.metric, b.due) for b in breaches] == [("resolution", MON + 4 * H)]


def test_sweep_fires_once_and_rules_escalate() -> None:
    desk, clock, channel = make_desk()
    ticket = _open(desk)  # P3, 8h resolution
    desk.assign(ticket, AGENT, agent="ana", group="desk")
    channel.clear()
    clock.set(MON + 6 * H + timedelta(minutes=1))  # past 75% (6h)
    first = desk.sweep()
    assert (first.examined, first.warnings, first.breaches) == (1, 1, 0)
    assert desk.sweep().warnings == 0  # idempotent
    [notice] = channel.messages
    assert {r.address for r in notice.to} == {"ana@support.example", "ben@support.example"}
    assert "75%" in notice.body
    clock.set(MON + 9 * H)  # Mon 18:00: breached at 17:00
    report = desk.sweep()
    assert (report.breaches, report.escalations, report.priority_raises) == (1, 1, 1)
    after = desk.ticket(ticket)
    assert (after.group_id, after.assignee_id, after.priority) == ("tech", None, Priority.P2)
    kinds = [type(e) for e in desk.history(ticket)[-3:]]
    assert kinds == [SlaBreached, Escalated, PriorityChanged]
    # Raising to P2 (4h) moves the due date before now: already recorded, nothing new fires.
    assert desk.sweep().breaches == 0
    assert desk.tier_times(ticket) == {1: 8 * H}


def test_sweep_reads_only_due_tickets() -> None:
    desk, clock, _ = make_desk()
    for _ in range(20):
        _open(desk, "low", "low")  # 16h: warnings at 12h
    urgent = [_open(desk, "high", "high") for _ in range(3)]  # 4h: warning at 3h
    clock.set(MON + 3 * H + timedelta(minutes=30))
    report = desk.sweep()
    assert report.examined == 3 and report.warnings == 3
    assert all(any(isinstance(e, SlaWarned) for e in desk.history(t)) for t in urgent)


def test_resolving_stops_the_clock_and_a_late_breach_is_still_recorded() -> None:
    desk, clock, _ = make_desk()
    ticket = _open(desk, "high", "high")  # 4h
    clock.set(MON + 5 * H)  # breached at 13:00, nobody swept
    solved = desk.resolve(ticket, AGENT)
    assert solved.next_deadline is None
    assert solved.next_check == MON + 3 * H  # the 75% warning is still unrecorded
    report = desk.sweep()
    assert (report.warnings, report.breaches, report.escalations) == (1, 1, 0)
    assert desk.ticket(ticket).next_check is None


def test_manual_escalation_and_de_escalation() -> None:
    desk, _, _ = make_desk()
    ticket = _open(desk)
    desk.assign(ticket, AGENT, group="desk")
    up = desk.escalate(ticket, AGENT, reason="needs a technician")
    assert up.group_id == "tech"
    with pytest.raises(InvalidTransitionError):
        desk.escalate(ticket, AGENT)  # no tier above L2 has groups
    down = desk.de_escalate(ticket, AGENT, reason="back to the desk")
    assert down.group_id == "desk"
    kinds = [e.kind for e in desk.history(ticket) if isinstance(e, Escalated)]
    assert kinds == ["hierarchical", "de-escalation"]


def test_concurrent_sweeps_record_each_check_once() -> None:
    desk, _, _ = make_desk()
    shared = desk.store
    tickets = [_open(desk, "high", "high") for _ in range(30)]
    late = MON + 5 * H
    desks = [make_desk(late, store=shared)[0] for _ in range(2)]
    threads = [threading.Thread(target=d.sweep) for d in desks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ticket in tickets:
        records = [
            (type(e).__name__, getattr(e, "metric", None))
            for e in desk.history(ticket)
            if isinstance(e, (SlaWarned, SlaBreached))
        ]
        assert sorted(records) == [("SlaBreached", "resolution"), ("SlaWarned", "resolution")]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.integers(min_value=0, max_value=48 * 60), max_size=6),
    st.sampled_from([("low", "low"), ("medium", "medium"), ("high", "high")]),
)
def test_outcome_does_not_depend_on_how_often_the_sweep_ran(
    minutes: list[int], level: tuple[str, str]
) -> None:
    end = MON + timedelta(hours=48)
    outcomes = []
    for sweeps in (sorted(minutes), []):
        desk, _, _ = make_desk()
        ticket = _open(desk, *level)
        desk.assign(ticket, AGENT, agent="ana", group="desk")
        for minute in sweeps:
            desk.sweep(MON + timedelta(minutes=minute))
        desk.sweep(end)
        final = desk.ticket(ticket)
        fired = sorted(
            (type(e).__name__, getattr(e, "metric", ""), getattr(e, "threshold", 1.0))
            for e in desk.history(ticket)
            if isinstance(e, (SlaWarned, SlaBreached))
        )
        per_tier = desk.tier_times(ticket, now=end)
        escalated = [(e.at, e.group_id) for e in desk.history(ticket) if isinstance(e, Escalated)]
        outcomes.append(
            (fired, final.priority, final.group_id, final.next_check, per_tier, escalated)
        )
        assert desk.sweep(end).examined == 0  # sweeping again changes nothing
    assert outcomes[0] == outcomes[1]


def test_rule_thresholds_must_be_warned_at() -> None:
    rules = EscalationRules.from_list([{"at": 0.5, "actions": ["notify_group"]}])
    with pytest.raises(ConfigError, match=r"0\.5"):
        DeskConfig(sla=SlaPolicySet((POLICY,)), escalation=rules)


def test_a_desk_without_sla_policies_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    desk = Helpdesk(entry_points=False)
    desk.add_agent("ann", "Ann")
    ticket = desk.open_ticket(Actor.agent("ann"), requester="bob@acme.example", subject="x")
    with caplog.at_level("WARNING", logger="helpkit"):
        assert desk.sla(ticket) is None
        assert desk.sla(ticket) is None
    said = [r for r in caplog.records if "no SLA policies" in r.getMessage()]
    assert len(said) == 1 and said[0].name == "helpkit"
