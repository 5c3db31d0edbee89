"""Carrying out rule actions on a ticket: what triggers and macros (and later automations) do.

:meth:`Actions.carry_out` turns :mod:`helpkit.rules` actions into one
:class:`~helpkit.lifecycle.Outcome` on one ticket, through the same :mod:`helpkit.lifecycle`
decisions the commands use: every change is an ordinary event (a status change, an
assignment, a comment...) whose actor is the rule's (``system:trigger:<name>``) or the agent
applying a macro. An action that changes nothing (a tag already there, the status it already
has) writes nothing. Groups and agents are checked here, when the rule fires (the configuration
cannot know them): an unknown group, an unknown or inactive agent, or one outside the group,
raises :class:`~helpkit.errors.ValidationError` / :class:`~helpkit.errors.NotFoundError`.

Templates are filled in from the ticket, its requester, its assignee and the agent applying a
macro (:meth:`Actions.placeholders`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime

from helpkit import lifecycle
from helpkit.config import DeskConfig
from helpkit.directory import Directory
from helpkit.errors import NotFoundError
from helpkit.events import Notified, WebhookRequested
from helpkit.lifecycle import Outcome
from helpkit.outcomes import Draft
from helpkit.people import Agent, Contact
from helpkit.rules import (
    Action,
    AddComment,
    CallWebhook,
    ChangeTags,
    Notify,
    SetAssignee,
    SetFields,
    SetGroup,
    SetImpactUrgency,
    SetPriority,
    SetStatus,
    placeholder_values,
)
from helpkit.tickets import Actor, Comment, Ticket

__all__ = ["Actions"]


class Actions:
    """Carries out rule actions for one desk (its configuration, people and ids)."""

    def __init__(self, config: DeskConfig, directory: Directory, new_id: Callable[[], str]) -> None:
        self._config = config
        self._directory = directory
        self._new_id = new_id

    def placeholders(self, ticket: Ticket, agent: Agent | None = None) -> dict[str, str]:
        """The values of every template placeholder for ``ticket`` (``agent``: the one
        applying a macro)."""
        requester: Contact | None = None
        with contextlib.suppress(NotFoundError):
            requester = self._directory.contact(ticket.requester_id)
        assignee: Agent | None = None
        if ticket.assignee_id is not None:
            with contextlib.suppress(NotFoundError):
                assignee = self._directory.agent(ticket.assignee_id)
        return placeholder_values(ticket, requester, assignee, agent)

    def carry_out(
        self,
        ticket: Ticket,
        actions: Sequence[Action],
        *,
        at: datetime,
        actor: Actor,
        rule: str,
        agent: Agent | None = None,
    ) -> Outcome:
        """``actions`` on ``ticket``, in order, as ``actor``: one outcome (perhaps without
        events). ``rule`` names the rule in the events that record a request (notifications,
        webhooks)."""
        steps: list[Outcome] = []
        current = ticket
        values: dict[str, str] | None = None
        for action in actions:
            if isinstance(action, AddComment | Notify) and values is None:
                values = self.placeholders(current, agent)
            step = self._one(current, action, at, actor, rule, values or {})
            if step.changed:
                steps.append(step)
                current = step.ticket
                if not isinstance(action, AddComment | Notify | CallWebhook):
                    values = None  # the ticket changed: placeholders are read again
        if not steps:
            return Outcome(ticket, (), ticket.seq, ticket)
        return lifecycle.chain(steps)

    def _one(
        self,
        ticket: Ticket,
        action: Action,
        at: datetime,
        actor: Actor,
        rule: str,
        values: dict[str, str],
    ) -> Outcome:
        config = self._config
        if isinstance(action, SetStatus):
            return lifecycle.change_status(
                ticket, action.status, at=at, actor=actor, workflow=config.workflow
            )
        if isinstance(action, SetPriority):
            return lifecycle.override_priority(ticket, action.priority, at=at, actor=actor)
        if isinstance(action, SetImpactUrgency):
            return lifecycle.change_priority(
                ticket,
                at=at,
                actor=actor,
                matrix=config.matrix,
                impact=action.impact,
                urgency=action.urgency,
            )
        if isinstance(action, SetGroup):
            return self._assign(ticket, at, actor, group=action.group)
        if isinstance(action, SetAssignee):
            return self._assign(ticket, at, actor, agent=action.agent)
        if isinstance(action, ChangeTags):
            return lifecycle.change_tags(
                ticket, at=at, actor=actor, add=action.add, remove=action.remove
            )
        if isinstance(action, SetFields):
            return lifecycle.set_custom_fields(ticket, action.values, at=at, actor=actor)
        if isinstance(action, AddComment):
            comment = Comment(
                id=self._new_id(),
                author=actor,
                body=action.body.render(values),
                public=action.public,
                channel=ticket.channel,
                created_at=at,
                ticket_id=ticket.id,
            )
            return lifecycle.add_comment(ticket, comment, at=at, workflow=config.workflow)
        draft = Draft(ticket, at, actor)
        if isinstance(action, Notify):
            draft.emit(
                Notified,
                ticket.id,
                rule=rule,
                audiences=tuple(a.value for a in action.audiences),
                subject=action.subject.render(values),
                body=action.body.render(values),
            )
        elif isinstance(action, CallWebhook):
            draft.emit(WebhookRequested, ticket.id, rule=rule, endpoint=action.endpoint)
        return draft.outcome()

    def _assign(
        self,
        ticket: Ticket,
        at: datetime,
        actor: Actor,
        *,
        group: str | None = None,
        agent: str | None = None,
    ) -> Outcome:
        directory = self._directory
        if group is not None:
            directory.group(group)
            assignee = ticket.assignee_id
            if assignee is not None and not directory.agent(assignee).in_group(group):
                assignee = None  # the assignee is not in the new group
            directory.check_assignment(assignee, group)
            return lifecycle.assign(
                ticket, at=at, actor=actor, assignee_id=assignee, group_id=group
            )
        if agent is None:
            return lifecycle.assign(
                ticket, at=at, actor=actor, assignee_id=None, group_id=ticket.group_id
            )
        member = directory.agent(agent)
        target = ticket.group_id
        if target is None or not member.in_group(target):
            target = member.group_ids[0] if member.group_ids else None
        directory.check_assignment(agent, target, member)
        return lifecycle.assign(ticket, at=at, actor=actor, assignee_id=agent, group_id=target)
