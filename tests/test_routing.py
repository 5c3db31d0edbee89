"""Routing through the desk: strategies, capacity, skills, language, VIP first, availability,
when it runs, what it records, its configuration, and the agents' new fields."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpkit import Helpdesk, serialize
from helpkit.config import DeskConfig
from helpkit.errors import ConfigError, ValidationError
from helpkit.events import Assigned
from helpkit.people import Agent
from helpkit.ports import Capability, Routing
from helpkit.routing import GroupRouting, RoutingPolicies, Strategy
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor, Ticket

MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BOSS = Actor.agent("boss")


def _desk(
    routing: dict[str, Any],
    agents: Iterable[tuple[str, dict[str, Any]]] = (("a", {}), ("b", {}), ("c", {})),
    *,
    store: Any = "memory://",
    **config: Any,
) -> Helpdesk:
    desk = Helpdesk(
        store,
        config={"routing": routing, **config},
        clock=FrozenClock(MONDAY_10),
    )
    desk.add_group("support", "Support")
    desk.add_group("other", "Other")
    desk.add_agent("boss", "Boss", groups=["other"])
    for agent_id, options in agents:
        desk.add_agent(agent_id, agent_id.upper(), **{"groups": ["support"], **options})
    return desk


def _open(desk: Helpdesk, n: int = 0, *, email: str | None = None, **options: Any) -> Ticket:
    requester = email or f"r{n}@example.com"
    return desk.open_ticket(
        BOSS,
        requester=requester,
        subject=f"Ticket {n}",
        body="Help",
        group=options.pop("group", "support"),
        **options,
    )


def _assigned(desk: Helpdesk, ticket: Ticket) -> Assigned:
    (event,) = [e for e in desk.history(ticket) if isinstance(e, Assigned)]
    return event


# ---------------------------------------------------------------- strategies


def test_round_robin_takes_turns_by_agent_id_and_is_audited() -> None:
    desk = _desk({"support": {}})
    tickets = [_open(desk, n) for n in range(7)]
    assert [t.assignee_id for t in tickets] == ["a", "b", "c", "a", "b", "c", "a"]
    event = _assigned(desk, tickets[0])
    assert event.actor == Actor.system("routing")
    assert event.reason == "routing round_robin: a (load 0, no limit)"
    assert [e.TYPE for e in desk.history(tickets[0])] == [
        "ticket_opened",
        "comment_added",
        "assigned",
    ]
    assert tickets[0].seq == 3  # opened and assigned in one command


def test_least_loaded_with_capacity_waits_then_routes_when_a_slot_frees() -> None:
    desk = _desk({"support": {"strategy": "least_loaded", "capacity": 2, "capacities": {"c": 1}}})
    first = [_open(desk, n) for n in range(5)]
    assert [t.assignee_id for t in first] == ["a", "b", "c", "a", "b"]
    waiting = _open(desk, 5)
    assert waiting.assignee_id is None and waiting.group_id == "support"
    assert not [e for e in desk.history(waiting) if isinstance(e, Assigned)]
    decision = desk.routing_decision(waiting)
    assert decision is not None and decision.agent_id is None
    assert decision.skipped == (
        ("a", "at capacity (2 of 2)"),
        ("b", "at capacity (2 of 2)"),
        ("c", "at capacity (1 of 1)"),
    )
    desk.resolve(first[2], Actor.agent("c"))  # c's slot frees: the waiting ticket goes to c
    assert desk.ticket(waiting).assignee_id == "c"
    reason = _assigned(desk, waiting).reason
    assert reason == (
        "routing least_loaded: c (load 0, capacity 1); skipped a: at capacity (2 of 2); "
        "b: at capacity (2 of 2)"
    )


def test_least_loaded_prefers_the_emptiest_agent() -> None:
    desk = _desk({"support": {"strategy": "least_loaded"}})
    manual = [_open(desk, n, group="other") for n in range(3)]
    for ticket in manual[:2]:
        desk.assign(ticket, BOSS, agent="a", group="support")
    desk.assign(manual[2], BOSS, agent="b", group="support")
    assert _open(desk, 10).assignee_id == "c"
    assert _open(desk, 11).assignee_id == "b"  # b and c at 1: after the cursor (c), b
    assert _open(desk, 12).assignee_id == "c"


def test_manual_assignment_and_explicit_assignees_are_left_alone() -> None:
    desk = _desk({"support": {}})
    ticket = _open(desk, assignee="c")
    assert ticket.assignee_id == "c"
    assert not [e for e in desk.history(ticket) if e.actor == Actor.system("routing")]
    assert _open(desk, 1, group="other").assignee_id is None  # not a routed group


def test_a_ticket_moved_into_a_routed_group_is_routed() -> None:
    desk = _desk({"support": {}})
    ticket = _open(desk, group="other")
    assert ticket.assignee_id is None
    moved = desk.transfer(ticket, BOSS, group="support", reason="belongs there")
    assert moved.assignee_id == "a"
    assert desk.history(moved)[-1].actor == Actor.system("routing")


# ---------------------------------------------------------------- who may take it


def test_skills_come_from_tags_and_a_custom_field() -> None:
    desk = _desk(
        {"support": {"skills_tag_prefix": "skill_", "skills_field": "product"}},
        [("a", {}), ("b", {"skills": ["billing"]}), ("c", {"skills": ["Billing", "VPN"]})],
        fields={"product": {"kind": "choice", "choices": ["vpn", "mail"]}},
    )
    assert _open(desk, tags=["skill_billing"]).assignee_id == "b"
    assert _open(desk, 1, tags=["skill_billing"]).assignee_id == "c"
    needs_two = _open(desk, 2, tags=["Skill Billing"], custom_fields={"product": "vpn"})
    assert needs_two.assignee_id == "c"
    nobody = _open(desk, 3, tags=["skill_billing", "skill_legal"])
    assert nobody.assignee_id is None
    decision = desk.routing_decision(nobody)
    assert decision is not None
    assert dict(decision.skipped) == {
        "a": "lacks billing, legal",
        "b": "lacks legal",
        "c": "lacks legal",
    }


def test_language_match_with_both_fallbacks() -> None:
    agents = [("a", {"languages": ["en"]}), ("b", {"languages": ["pt"]}), ("c", {})]
    desk = _desk({"support": {"language": True}}, agents)
    desk.create_contact("Ana", emails=["ana@example.com"], language="pt-BR")
    desk.create_contact("Hans", emails=["hans@example.com"], language="de")
    assert _open(desk, email="ana@example.com").assignee_id == "b"
    assert _open(desk, 1, email="ana@example.com").assignee_id == "b"
    fallback = _open(desk, 2, email="hans@example.com")
    assert fallback.assignee_id == "c"  # round robin after b, among everyone
    assert "nobody available speaks the requester's language" in (
        _assigned(desk, fallback).reason or ""
    )
    assert _open(desk, 3).assignee_id == "a"  # no language: everyone
    strict = _desk({"support": {"language": True, "fallback": "wait"}}, agents)
    strict.create_contact("Hans", emails=["hans@example.com"], language="de")
    waits = _open(strict, email="hans@example.com")
    assert waits.assignee_id is None
    decision = strict.routing_decision(waits)
    assert decision is not None and decision.waiting == "nobody available speaks de"


def test_unavailable_agents_are_never_chosen() -> None:
    calendars = {"day": {"timezone": "UTC", "hours": "mon-fri 09:00-17:00"}}
    desk = _desk(
        {"support": {}},
        [("a", {}), ("b", {"calendar": "day"}), ("c", {}), ("d", {"calendar": "day"})],
        calendars=calendars,
    )
    desk.set_away("a", MONDAY_10 + timedelta(hours=2))
    desk.deactivate_agent("c")
    assert [_open(desk, n).assignee_id for n in range(3)] == ["b", "d", "b"]
    assert isinstance(desk.clock, FrozenClock)
    desk.clock.advance(hours=8)  # 18:00: the shift is over, a is back
    assert [_open(desk, n).assignee_id for n in range(3, 5)] == ["a", "a"]
    desk.clock.advance(hours=1)
    desk.set_away("a", MONDAY_10 + timedelta(days=1))
    night = _open(desk, 9)
    assert night.assignee_id is None
    decision = desk.routing_decision(night)
    assert decision is not None
    assert dict(decision.skipped) == {
        "a": "away until 2026-03-03T10:00:00+00:00",
        "b": "off shift (day)",
        "c": "inactive",
        "d": "off shift (day)",
    }
    desk.clock.set(MONDAY_10 + timedelta(days=1))  # Tuesday 10:00: the shift starts again
    routed = desk.route_waiting("support")
    assert [t.id for t in routed] == [night.id]
    assert desk.ticket(night).assignee_id in {"a", "b", "d"}


def test_an_agent_coming_back_gets_the_waiting_tickets() -> None:
    desk = _desk({"support": {}}, [("a", {})])
    desk.set_away("a", MONDAY_10 + timedelta(days=1))
    waiting = [_open(desk, n) for n in range(2)]
    assert all(t.assignee_id is None for t in waiting)
    desk.set_away("a", None)
    assert [desk.ticket(t).assignee_id for t in waiting] == ["a", "a"]


# ---------------------------------------------------------------- VIP first, on demand


def test_waiting_tickets_are_routed_vip_first_then_priority_then_oldest() -> None:
    desk = _desk({"support": {"capacity": 1}}, [("a", {})])
    vip_org = desk.create_organization("Big", domains=["big.example"], vip=True)
    desk.create_contact("V", emails=["v@example.com"], vip=True)
    busy = _open(desk)
    assert busy.assignee_id == "a"
    plain_old = _open(desk, 1)
    urgent = _open(desk, 2, impact="high", urgency="high")
    vip_contact = _open(desk, email="v@example.com")
    vip_member = _open(desk, email="x@big.example")
    assert desk.ticket(vip_member).organization_id == vip_org.id
    order = []
    for _ in range(4):
        desk.resolve(_mine(desk, "a"), BOSS)
        order.append(_mine(desk, "a").id)
    assert order == [vip_contact.id, vip_member.id, urgent.id, plain_old.id]
    plain = _desk({"support": {"capacity": 1, "vip_first": False}}, [("a", {})])
    plain.create_contact("V", emails=["v@example.com"], vip=True)
    _open(plain)
    older = _open(plain, 1)
    _open(plain, email="v@example.com")
    plain.resolve(_mine(plain, "a"), BOSS)
    assert _mine(plain, "a").id == older.id


def _mine(desk: Helpdesk, agent: str) -> Ticket:
    (ticket,) = desk.tickets(assignee_ids={agent}, categories=["new", "open"])
    return ticket


def test_route_on_demand_and_route_waiting_limits() -> None:
    desk = _desk({"support": {"capacity": 1}}, [("a", {}), ("b", {})])
    desk.set_away("a", MONDAY_10 + timedelta(days=1))
    desk.set_away("b", MONDAY_10 + timedelta(days=1))
    waiting = [_open(desk, n) for n in range(3)]
    assert desk.route(waiting[0]).assignee_id is None  # nobody yet: unchanged
    assert desk.ticket(waiting[0]).seq == waiting[0].seq
    desk.update_agent("a", away_until=None)  # back: gets the oldest
    assert desk.ticket(waiting[0]).assignee_id == "a"
    assert desk.route_waiting("support") == []  # a is full, b away
    assert isinstance(desk.clock, FrozenClock)
    desk.clock.advance(days=1)  # b is back by time: nobody told the desk
    assert [t.id for t in desk.route_waiting(limit=1)] == [waiting[1].id]
    assert desk.route(waiting[2]).assignee_id is None
    assigned = desk.route(waiting[1])  # already assigned: left alone
    assert assigned.assignee_id == "b"
    with pytest.raises(ValidationError):
        desk.route_waiting("other")
    assert desk.routing_decision(waiting[1]) is None


# ---------------------------------------------------------------- configuration


def test_the_toml_layout_and_its_errors() -> None:
    config = DeskConfig.from_dict(
        {
            "fields": {"product": {"kind": "text"}},
            "routing": {
                "support": {
                    "strategy": "least_loaded",
                    "capacity": 5,
                    "capacities": {"alice": 8},
                    "skills_tag_prefix": "Skill ",
                    "skills_field": "product",
                    "language": True,
                    "fallback": "wait",
                    "vip_first": False,
                    "load": ["new", "open"],
                }
            },
        }
    )
    policy = config.routing.get("support")
    assert policy is not None
    assert policy.strategy is Strategy.LEAST_LOADED
    assert policy.capacity_of("alice") == 8 and policy.capacity_of("bob") == 5
    assert policy.skills_tag_prefix == "skill_"
    assert config.routing.get("other") is None and config.routing.get(None) is None
    assert RoutingPolicies.of(GroupRouting(group_id="g")).get("g") == GroupRouting(group_id="g")
    bad: list[tuple[dict[str, Any], str]] = [
        ({"support": {"strategy": "random"}}, "routing.support.strategy is one of"),
        ({"support": {"capacity": -1}}, "routing.support.capacity"),
        ({"support": {"capacity": True}}, "routing.support.capacity"),
        ({"support": {"capacities": {"a": "x"}}}, "routing.support.capacities.a"),
        ({"support": {"language": "yes"}}, "routing.support.language is true or false"),
        ({"support": {"fallback": "later"}}, "routing.support.fallback"),
        ({"support": {"load": []}}, "routing.support.load"),
        ({"support": {"load": ["busy"]}}, "routing.support.load"),
        ({"support": {"colour": "red"}}, "unknown [routing.support] keys: colour"),
        ({"support": {"skills_field": "nope"}}, "not a configured custom field"),
        ({"support": "round_robin"}, "[routing.support] is a table"),
        ({"support": {"when": {"field": "colour", "is": "red"}}}, "routing.support.when: unknown"),
        (
            {"support": {"when": {"since": "created", "at_least": "1h"}}},
            "routing.support.when: ",
        ),
    ]
    for routing, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
            DeskConfig.from_dict({"routing": routing})


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_group_routes_only_the_tickets_meeting_its_condition(store: str, tmp_path: Any) -> None:
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    routing = {
        "support": {
            "when": {
                "any": [
                    {"field": "priority", "in": ["P1", "P2"]},
                    {"field": "requester.vip", "is": True},
                ]
            }
        }
    }
    desk = _desk(routing, store=url)
    try:
        urgent = _open(desk, 1, impact="high", urgency="high")
        routine = _open(desk, 2)
        desk.create_contact("Vera", emails=["vera@example.com"], vip=True)
        vip = _open(desk, 3, email="vera@example.com")
        assert urgent.assignee_id is not None and vip.assignee_id is not None
        assert routine.assignee_id is None  # waits for someone to assign it
        assert desk.routing_decision(routine) is None
        raised = desk.prioritize(routine, BOSS, impact="high", urgency="high")
        assert raised.assignee_id is None  # routing runs when a ticket enters the group
        moved = desk.assign(desk.assign(raised, BOSS, group="other"), BOSS, group="support")
        assert moved.assignee_id is not None  # re-entering, it meets the condition now
    finally:
        desk.shutdown()


def test_a_groups_condition_given_as_a_value_is_checked() -> None:
    from helpkit.conditions import Vocabulary
    from helpkit.fields import CustomField, FieldSet
    from helpkit.tickets import DEFAULT_WORKFLOW

    elsewhere = Vocabulary(DEFAULT_WORKFLOW, FieldSet([CustomField(name="colour", kind="text")]))
    when = elsewhere.parse({"field": "fields.colour", "is": "red"})
    with pytest.raises(ConfigError, match=r"\[routing\.support\] when: unknown field"):
        DeskConfig(routing=RoutingPolicies.of(GroupRouting(group_id="support", when=when)))


class _NoRoutingStore(MemoryStore):
    capabilities = MemoryStore.capabilities - {Capability.ROUTING}


def test_routing_needs_a_store_that_keeps_routing_states() -> None:
    with pytest.raises(ConfigError, match=r"Capability\.ROUTING"):
        Helpdesk(_NoRoutingStore(), config={"routing": {"support": {}}})
    Helpdesk(_NoRoutingStore())  # without routing, any store


def test_agent_fields_are_checked_and_calendars_must_exist() -> None:
    desk = _desk(
        {"support": {}}, calendars={"day": {"timezone": "UTC", "hours": "mon-fri 09:00-17:00"}}
    )
    with pytest.raises(ValidationError, match="calendar 'night' is not configured"):
        desk.update_agent("a", calendar="night")
    with pytest.raises(ValidationError, match="unknown agent fields: colour"):
        desk.update_agent("a", colour="red")
    with pytest.raises(ValidationError):
        desk.set_away("a", datetime(2026, 3, 2, 12))  # naive
    with pytest.raises(ValidationError):
        desk.update_agent("a", skills=[""])
    updated = desk.update_agent("a", skills=["Spanish Law", "vpn"], calendar="day")
    assert updated.skills == ("spanish_law", "vpn") and updated.calendar == "day"
    assert desk.agent("a") == updated


def test_old_stored_agents_read_back_and_keep_their_text() -> None:
    old_text = (
        '{"id":"a","name":"A","email":null,"group_ids":["g"],"languages":["en"],"active":true}'
    )
    agent = serialize.loads(Agent, old_text)
    assert agent.skills == () and agent.away_until is None and agent.calendar is None
    assert serialize.dumps(agent) == old_text  # the new fields, at their defaults, are left out
    away = Agent(id="a", name="A", away_until=MONDAY_10, skills=["x"])
    assert serialize.loads(Agent, serialize.dumps(away)) == away


def test_the_routing_capability_is_declared_by_the_built_in_stores(tmp_path: Any) -> None:
    from helpkit.stores.sqlite import SqliteStore

    for store in (MemoryStore(), SqliteStore(tmp_path / "desk.db")):
        assert Capability.ROUTING in store.capabilities
        assert isinstance(store, Routing)
        store.close()


def test_routing_on_an_sqlite_file(tmp_path: Any) -> None:
    path = f"sqlite:///{tmp_path / 'desk.db'}"
    desk = _desk({"support": {"capacity": 1}}, store=path)
    assert [_open(desk, n).assignee_id for n in range(4)] == ["a", "b", "c", None]
    desk.shutdown()
    again = Helpdesk(path, config={"routing": {"support": {"capacity": 1}}})
    assert _open(again, 5).assignee_id is None
    again.resolve(_mine(again, "b"), BOSS)
    assert [t.assignee_id for t in again.tickets(unassigned=True, group_ids={"support"})] == [None]
    assert again.ticket(4).assignee_id == "b"  # the oldest waiting ticket got b's slot
    again.shutdown()
