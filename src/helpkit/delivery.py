"""Delivery: what leaves the desk after a commit, and through which channel.

A public comment goes to the ticket's requester and followers (never an internal note); an SLA
warning or breach goes to the agents the escalation rules name. Application layer: the
pipeline hands every committed change to :meth:`Delivery.publish` before the ``helpkit_event``
observers see it. A channel that fails is logged (logger ``helpkit.delivery``) and never undoes
the command.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from helpkit.config import DeskConfig
from helpkit.errors import NotFoundError
from helpkit.escalation import Action
from helpkit.events import CommentAdded, Event, SlaBreached, SlaWarned
from helpkit.people import Agent
from helpkit.ports import Channel, OutboundMessage, Recipient, Store, TicketChange
from helpkit.tickets import Actor, ActorKind, Comment, Ticket

__all__ = ["Delivery"]

log = logging.getLogger("helpkit.delivery")


class Delivery:
    """Sends replies and SLA notices of committed events through the desk's channels."""

    def __init__(
        self,
        store: Store,
        config: DeskConfig,
        channels: Mapping[str, Channel],
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._config = config
        self._channels = channels
        self._now = now

    def publish(self, changes: Sequence[TicketChange]) -> None:
        """Deliver what the committed ``changes`` send out (each failure logged, isolated)."""
        if not self._channels:
            return  # nothing to send through: skip the reads
        for change in changes:
            for event in change.events:
                try:
                    self.deliver(event)
                except Exception:
                    log.exception(
                        "delivering %s #%s of ticket %s failed",
                        event.TYPE,
                        event.seq,
                        event.ticket_id,
                    )

    def deliver(self, event: Event) -> str | None:
        """Send what ``event`` sends out; the external id the channel gave, if any."""
        if isinstance(event, CommentAdded) and event.comment.public:
            return self._comment(event.ticket_id, event.comment)
        if isinstance(event, SlaWarned | SlaBreached):
            return self._sla_notice(event)
        return None

    def channel_for(self, ticket: Ticket) -> Channel | None:
        """The channel a public reply on ``ticket`` leaves through, if any is configured."""
        channel = self._channels.get(ticket.channel)
        if channel is None and self._config.reply_channel is not None:
            channel = self._channels[self._config.reply_channel]
        if channel is None and len(self._channels) == 1:
            channel = next(iter(self._channels.values()))
        return channel

    def recipients(self, ticket: Ticket, *, exclude: Actor | None = None) -> tuple[Recipient, ...]:
        """Who hears about a public comment: the requester and the followers, minus ``exclude``."""
        parties = [Actor.contact(ticket.requester_id), *sorted(ticket.followers, key=str)]
        result: list[Recipient] = []
        for party in dict.fromkeys(parties):
            if party == exclude:
                continue
            try:
                if party.kind is ActorKind.CONTACT:
                    contact = self._store.get_contact(party.id)
                    result.append(Recipient("contact", contact.id, contact.name, contact.email))
                elif party.kind is ActorKind.AGENT:
                    agent = self._store.get_agent(party.id)
                    result.append(Recipient("agent", agent.id, agent.name, agent.email))
            except NotFoundError:
                log.warning("ticket %s: follower %s no longer exists", ticket.reference, party)
        return tuple(result)

    def _author_name(self, author: Actor) -> str:
        try:
            if author.kind is ActorKind.AGENT:
                return self._store.get_agent(author.id).name
            if author.kind is ActorKind.CONTACT:
                return self._store.get_contact(author.id).name
        except NotFoundError:
            pass
        return author.id

    def _comment(self, ticket_id: str, comment: Comment) -> str | None:
        ticket = self._store.get_ticket(ticket_id)
        channel = self.channel_for(ticket)
        if channel is None:
            return None
        recipients = self.recipients(ticket, exclude=comment.author)
        if not recipients:
            return None
        message = OutboundMessage(
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            subject=f"[{ticket.reference}] {ticket.subject}",
            body=comment.body,
            comment_id=comment.id,
            author_name=self._author_name(comment.author),
            to=recipients,
            sent_at=self._now(),
            in_reply_to=comment.in_reply_to,
        )
        return channel.deliver(message)

    def _sla_notice(self, event: SlaWarned | SlaBreached) -> str | None:
        fraction = event.threshold if isinstance(event, SlaWarned) else 1.0
        actions = {a for _, a in self._config.escalation.actions_for(event.metric, fraction)}
        if not actions & {Action.NOTIFY_ASSIGNEE, Action.NOTIFY_GROUP}:
            return None
        ticket = self._store.get_ticket(event.ticket_id)
        agents: dict[str, Agent] = {}
        if Action.NOTIFY_ASSIGNEE in actions and ticket.assignee_id is not None:
            with contextlib.suppress(NotFoundError):
                agents[ticket.assignee_id] = self._store.get_agent(ticket.assignee_id)
        if Action.NOTIFY_GROUP in actions and ticket.group_id is not None:
            for agent in self._store.list_agents():
                if agent.active and agent.in_group(ticket.group_id):
                    agents[agent.id] = agent
        recipients = tuple(
            Recipient("agent", a.id, a.name, a.email) for a in agents.values() if a.email
        )
        channel = self.channel_for(ticket)
        if channel is None or not recipients:
            return None
        metric = event.metric.replace("_", " ")
        due = "paused" if event.due is None else f"due {event.due:%Y-%m-%d %H:%M} UTC"
        what = (
            f"breached its {metric} target ({due})"
            if isinstance(event, SlaBreached)
            else f"reached {event.threshold:.0%} of its {metric} target ({due})"
        )
        message = OutboundMessage(
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            subject=f"[{ticket.reference}] SLA: {ticket.subject}",
            body=f"Ticket {ticket.reference} {what}.",
            comment_id=f"sla-{event.seq}",
            author_name="helpkit SLA",
            to=recipients,
            sent_at=self._now(),
            headers={"X-Helpkit-Notice": "sla"},
        )
        return channel.deliver(message)
