"""Who may do what: the desk's roles applied to the agent behind a command or a query.

Every facade command an agent runs passes here: :meth:`Access.guard` checks the agent (it
exists, is active, its role grants the permission) when the command is built, and wraps the
command's decision so that, inside the pipeline, the tickets it loaded (or, for a new ticket,
the ticket it opens) are checked against the agent's group restriction before anything is
decided. A refusal is an :class:`~helpkit.errors.AccessDeniedError` and leaves no trace.
System actors (the sweep, triggers, automations, the operator) are not restricted; contacts
never run agent commands (the directory refuses them first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from helpkit.directory import Directory
from helpkit.errors import AccessDeniedError, ValidationError
from helpkit.outcomes import Outcome
from helpkit.people import Agent
from helpkit.pipeline import Decide
from helpkit.roles import Permission, Role, allowed, can_see, restricted
from helpkit.tickets import Actor, ActorKind, Ticket

__all__ = ["Access"]


class Access:
    """The roles of one desk over its directory of agents."""

    def __init__(self, directory: Directory, roles: Mapping[str, Role]) -> None:
        self._directory = directory
        self._roles = roles

    def check_role(self, name: object) -> None:
        """ValidationError unless ``name`` is a role of this desk."""
        if not isinstance(name, str) or name not in self._roles:
            known = ", ".join(sorted(self._roles))
            raise ValidationError(f"unknown role {name!r:.40} (roles: {known})")

    def role(self, agent: Agent) -> Role:
        """The agent's role; AccessDeniedError when the configuration no longer has it."""
        found = self._roles.get(agent.role)
        if found is None:
            raise AccessDeniedError(
                f"agent {agent.id!r} has the role {agent.role!r}, which is not configured"
            )
        return found

    def check(self, actor: Actor, *needs: Permission, agent: Agent | None = None) -> Agent | None:
        """Refuse an agent ``actor`` who may not do ``needs`` (on no ticket in particular);
        the agent read (or ``agent``, when it is the agent ``actor`` just read), or ``None``
        for a system actor."""
        checked = self._checked(actor, needs, agent)
        return None if checked is None else checked[0]

    def _checked(
        self, actor: Actor, needs: tuple[Permission, ...], agent: Agent | None
    ) -> tuple[Agent, Role] | None:
        """:meth:`check`: the agent and its role, or ``None`` for a system actor."""
        if not isinstance(actor, Actor):
            raise ValidationError(f"actor must be an Actor, e.g. Actor.agent('id'); got {actor!r}")
        if actor.kind is not ActorKind.AGENT:
            return None
        if agent is None or agent.id != actor.id:
            agent = self._directory.agent(actor.id)
        role = self.role(agent)
        for permission in needs:
            allowed(agent, role, permission)
        return agent, role

    def check_tickets(self, agent: Agent, tickets: Sequence[Ticket], *needs: Permission) -> None:
        """Refuse unless ``agent`` may do ``needs`` on every ticket of ``tickets``."""
        role = self.role(agent)
        for permission in needs:
            allowed(agent, role, permission, tickets)

    def groups_only(self, agent: Agent) -> frozenset[str] | None:
        """The groups whose tickets a restricted agent may see; ``None`` when unrestricted."""
        return frozenset(agent.group_ids) if restricted(agent, self.role(agent)) else None

    def visible(self, agent: Agent, ticket: Ticket) -> bool:
        """Whether ``agent`` may read ``ticket``."""
        found = self._roles.get(agent.role)
        return found is not None and can_see(agent, found, ticket)

    def guard(
        self, actor: Actor, decide: Decide, *needs: Permission, agent: Agent | None = None
    ) -> Decide:
        """``decide``, refused for an agent ``actor`` who may not do ``needs`` on the tickets
        the pipeline loads (or, when it loads none, on the tickets the decision opens).
        ``agent`` is the agent ``actor`` when the caller has just read it (else read here)."""
        checked = self._checked(actor, needs, agent)
        if checked is None:
            return decide
        agent, role = checked
        if not restricted(agent, role):
            # The checks of the tickets would be those ``check`` just passed (the agent is
            # active, its role grants ``needs``: both immutable), and none of the tickets'
            # groups: the decision needs no guard.
            return decide

        def guarded(tickets: Sequence[Ticket], now: datetime) -> Sequence[Outcome]:
            assert agent is not None
            self.check_tickets(agent, tickets, *needs)
            outcomes = decide(tickets, now)
            if not tickets:
                self.check_tickets(agent, [o.ticket for o in outcomes], *needs)
            return outcomes

        return guarded
