"""Escalation tiers, rules and per-tier clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit.calendar import BusinessCalendar
from helpkit.errors import ConfigError, InvalidTransitionError, ValidationError
from helpkit.escalation import (
    Action,
    EscalationKind,
    EscalationRule,
    EscalationRules,
    Tier,
    TierLadder,
    escalation_target,
    tier_times,
)
from helpkit.events import Assigned, Escalated, StatusChanged, TicketOpened
from helpkit.priority import Impact, Priority, Urgency
from helpkit.tickets import Actor, StatusCategory

LADDER = TierLadder.default({1: ["desk"], 2: ["net", "apps"], 3: ["experts"], 4: ["vendor"]})
A = Actor.system("test")


def test_default_ladder_names_and_levels() -> None:
    assert [(t.label, t.name) for t in LADDER.tiers] == [
        ("L1", "Service desk"),
        ("L2", "Technicians"),
        ("L3", "Specialists"),
        ("L4", "External vendor"),
    ]
    assert LADDER.tier_of("apps") == LADDER.level(2)
    assert LADDER.tier_of("nowhere") is None


def test_hierarchical_functional_and_de_escalation() -> None:
    assert escalation_target(LADDER, "desk", EscalationKind.HIERARCHICAL)[0] == "net"
    group, new, old = escalation_target(LADDER, "net", EscalationKind.HIERARCHICAL)
    assert (group, new and new.level, old and old.level) == ("experts", 3, 2)
    assert escalation_target(LADDER, "net", EscalationKind.FUNCTIONAL)[0] == "apps"
    assert escalation_target(LADDER, "experts", EscalationKind.DE_ESCALATION)[0] == "net"
    assert escalation_target(LADDER, "experts", EscalationKind.DE_ESCALATION, "apps")[0] == "apps"
    assert escalation_target(LADDER, None, EscalationKind.HIERARCHICAL)[0] == "desk"
    with pytest.raises(InvalidTransitionError):
        escalation_target(LADDER, "vendor", EscalationKind.HIERARCHICAL)
    with pytest.raises(InvalidTransitionError):
        escalation_target(LADDER, "desk", EscalationKind.DE_ESCALATION)
    with pytest.raises(InvalidTransitionError):
        escalation_target(LADDER, "desk", EscalationKind.FUNCTIONAL)  # L1 has one group
    with pytest.raises(ValidationError):
        escalation_target(LADDER, "desk", EscalationKind.HIERARCHICAL, "experts")


def test_empty_tiers_are_skipped() -> None:
    ladder = TierLadder.default({1: ["desk"], 3: ["experts"]})
    assert escalation_target(ladder, "desk", EscalationKind.HIERARCHICAL)[0] == "experts"


def test_ladder_validation() -> None:
    with pytest.raises(ValidationError):
        TierLadder([Tier(1, "a", ["g"]), Tier(2, "b", ["g"])])
    with pytest.raises(ValidationError):
        TierLadder([Tier(1, "a"), Tier(1, "b")])
    with pytest.raises(ValidationError):
        Tier(0, "zero")
    ladder = TierLadder.from_dict(
        {"L1": {"groups": ["desk"]}, "2": {"name": "Tech", "groups": ["t"]}}
    )
    assert [(t.level, t.name, t.groups) for t in ladder.tiers] == [
        (1, "Service desk", ("desk",)),
        (2, "Tech", ("t",)),
    ]
    with pytest.raises(ConfigError):
        TierLadder.from_dict({"top": {}})


def test_rules_from_config() -> None:
    rules = EscalationRules.from_list(
        [
            {
                "name": "warn",
                "metric": "resolution",
                "at": "75%",
                "actions": ["notify_assignee", "notify_group"],
            },
            {
                "name": "breach",
                "metric": "resolution",
                "at": "breach",
                "actions": ["escalate", "raise_priority"],
            },
            {"name": "any", "at": 1.0, "actions": "notify_group"},
        ]
    )
    assert rules.thresholds() == {0.75, 1.0}
    assert [(r.name, a) for r, a in rules.actions_for("resolution", 0.75)] == [
        ("warn", Action.NOTIFY_ASSIGNEE),
        ("warn", Action.NOTIFY_GROUP),
    ]
    assert [a for _, a in rules.actions_for("first_response", 1.0)] == [Action.NOTIFY_GROUP]
    for bad in (
        [{"at": 0, "actions": ["escalate"]}],
        [{"at": 0.5, "actions": ["explode"]}],
        [{"at": 0.5, "actions": []}],
        [{"actions": ["escalate"]}],
        [
            {"name": "x", "at": 0.5, "actions": ["escalate"]},
            {"name": "x", "at": 1, "actions": ["escalate"]},
        ],
    ):
        with pytest.raises(ConfigError):
            EscalationRules.from_list(bad)


MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")


def _opened(group: str) -> TicketOpened:
    return TicketOpened(
        ticket_id="t",
        seq=1,
        at=MON,
        actor=A,
        number=1,
        subject="s",
        requester_id="c",
        organization_id=None,
        status="open",
        category=StatusCategory.OPEN,
        impact=Impact.LOW,
        urgency=Urgency.LOW,
        priority=Priority.P5,
        channel="web",
        group_id=group,
    )


def test_tier_times_count_business_hours_per_tier_and_skip_pauses() -> None:
    events = [
        _opened("desk"),
        Escalated(
            ticket_id="t",
            seq=2,
            at=MON + timedelta(hours=2),
            actor=A,
            kind="hierarchical",
            group_id="net",
            previous_group_id="desk",
            tier=2,
            previous_tier=1,
        ),
        StatusChanged(
            ticket_id="t",
            seq=3,
            at=MON + timedelta(hours=3),
            actor=A,
            old_status="open",
            old_category=StatusCategory.OPEN,
            status="pending",
            category=StatusCategory.PENDING,
        ),
        StatusChanged(
            ticket_id="t",
            seq=4,
            at=MON + timedelta(days=1),
            actor=A,
            old_status="pending",
            old_category=StatusCategory.PENDING,
            status="open",
            category=StatusCategory.OPEN,
        ),
        Assigned(
            ticket_id="t",
            seq=5,
            at=MON + timedelta(days=1, hours=4),
            actor=A,
            assignee_id=None,
            group_id="experts",
            previous_assignee_id=None,
            previous_group_id="net",
        ),
    ]
    now = MON + timedelta(days=4)  # Friday 09:00
    times = tier_times(events, LADDER, OFFICE, now)
    assert times == {
        1: timedelta(hours=2),
        2: timedelta(hours=1 + 4),
        3: timedelta(hours=4 + 8 * 2),
    }


@given(st.integers(min_value=0, max_value=24 * 14))
def test_tier_times_never_exceed_business_time(hours: int) -> None:
    now = MON + timedelta(hours=hours)
    total = sum(tier_times([_opened("desk")], LADDER, OFFICE, now).values(), timedelta(0))
    assert total == OFFICE.elapsed(MON, now)


def test_a_rule_on_an_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown SLA metric 'resolutoin'"):
        EscalationRules.from_list([{"metric": "resolutoin", "at": 1.0, "actions": ["escalate"]}])
    [rule] = EscalationRules.from_list(
        [{"metric": "first_response", "at": 1.0, "actions": ["escalate"]}]
    ).rules
    assert rule.metric == "first_response"


def test_a_rule_built_in_code_refuses_with_the_parent_error() -> None:
    """Built in code: ValidationError (not ConfigError, which names a place in a file)."""
    with pytest.raises(ValidationError, match="unknown SLA metric 'resolutoin'") as caught:
        EscalationRule(name="late", at=1.0, actions=("escalate",), metric="resolutoin")
    assert not isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, ValueError)
