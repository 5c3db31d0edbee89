"""``helpkit agents`` and ``helpkit groups``: the support staff and its teams."""

from __future__ import annotations

import argparse

from helpkit import serialize
from helpkit.cli._errors import UsageError
from helpkit.cli._output import _emit_json
from helpkit.desk import Helpdesk
from helpkit.queries import TicketQuery
from helpkit.tickets import Actor, ActorKind, StatusCategory

UNSOLVED = frozenset(
    {StatusCategory.NEW, StatusCategory.OPEN, StatusCategory.PENDING, StatusCategory.ON_HOLD}
)


def require_staff(desk: Helpdesk, actor: Actor) -> None:
    """Changes to the staff are made by an existing agent or the system, not a contact."""
    if actor.kind is ActorKind.CONTACT:
        raise UsageError("only agents or the system change agents and groups, not contacts")
    if actor.kind is ActorKind.AGENT:
        desk.agent(actor.id)


def cmd_agents_list(desk: Helpdesk, args: argparse.Namespace) -> int:
    agents = sorted(desk.agents(), key=lambda a: a.id)
    if getattr(args, "json", False):
        _emit_json([serialize.to_data(a) for a in agents])
        return 0
    if not agents:
        print("no agents (add one: helpkit agents add ID NAME --group G)")
        return 0
    print(f"{'id':12}  {'name':24}  {'email':32}  {'groups':16}  active  role")
    for agent in agents:
        role = agent.role + (" (own groups only)" if agent.restricted else "")
        print(
            f"{agent.id:12}  {agent.name:24}  {agent.email or '-':32}  "
            f"{','.join(agent.group_ids) or '-':16}  {'yes' if agent.active else 'no':6}  {role}"
        )
    return 0


def cmd_agents_add(desk: Helpdesk, args: argparse.Namespace) -> int:
    require_staff(desk, args.actor)
    agent = desk.add_agent(
        args.id,
        args.name,
        email=args.email,
        groups=args.group or (),
        role=args.role,
        restricted=args.restricted,
    )
    print(
        f"agent {agent.id} ({agent.name}) saved, groups {', '.join(agent.group_ids) or '-'}, "
        f"role {agent.role}" + (" (own groups' tickets only)" if agent.restricted else "")
    )
    return 0


def cmd_agents_deactivate(desk: Helpdesk, args: argparse.Namespace) -> int:
    require_staff(desk, args.actor)
    agent = desk.deactivate_agent(args.id)
    print(f"agent {agent.id} deactivated: it can no longer be assigned")
    page = desk.tickets(TicketQuery(assignee_ids={agent.id}, categories=UNSOLVED, limit=1))
    if page.items:
        print(f"its unsolved tickets stay assigned: see helpkit queue --agent {agent.id}")
    return 0


def cmd_agents_activate(desk: Helpdesk, args: argparse.Namespace) -> int:
    require_staff(desk, args.actor)
    agent = desk.activate_agent(args.id)
    print(f"agent {agent.id} activated")
    return 0


def cmd_groups_list(desk: Helpdesk, args: argparse.Namespace) -> int:
    groups = sorted(desk.groups(), key=lambda g: (g.tier is None, g.tier or 0, g.id))
    if getattr(args, "json", False):
        _emit_json([serialize.to_data(g) for g in groups])
        return 0
    if not groups:
        print("no groups (add one: helpkit groups add ID NAME --tier 1)")
        return 0
    print(f"{'id':12}  {'name':24}  tier  description")
    for group in groups:
        tier = f"L{group.tier}" if group.tier is not None else "-"
        print(f"{group.id:12}  {group.name:24}  {tier:4}  {group.description or ''}".rstrip())
    return 0


def cmd_groups_add(desk: Helpdesk, args: argparse.Namespace) -> int:
    require_staff(desk, args.actor)
    group = desk.add_group(args.id, args.name, tier=args.tier, description=args.description)
    tier = f", tier L{group.tier}" if group.tier is not None else ""
    print(f"group {group.id} ({group.name}) saved{tier}")
    return 0
