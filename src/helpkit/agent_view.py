"""An agent's reads of the desk, checked against their role and group restriction.

The facade's queries (``desk.ticket``, ``desk.tickets``, ``desk.history``...) take no actor:
they are the host's own reads. A host that reads on an agent's behalf (a staff console) asks
:meth:`helpkit.Helpdesk.for_agent` for an :class:`AgentView`: each read needs the ``read``
permission of the agent's role, is refused to an inactive agent, and, for a restricted
agent, covers only the tickets of their groups (a listing is narrowed to those groups; a
ticket of another group is refused). Refusals are
:class:`~helpkit.errors.AccessDeniedError`: ticket numbers are no secret among the staff.
The agent is read again at every call, so a deactivation or a new role counts at once.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import attrs

from helpkit.access import Access
from helpkit.errors import NotFoundError, ValidationError
from helpkit.events import Event
from helpkit.people import Agent
from helpkit.ports import BlobStore
from helpkit.queries import Page, TicketQuery
from helpkit.roles import Permission
from helpkit.tickets import Actor, Comment, Ticket

__all__ = ["AgentDesk", "AgentView"]

_QUERY_FIELDS: Final = frozenset(f.alias or f.name for f in attrs.fields(TicketQuery))


class AgentDesk(Protocol):
    """What an :class:`AgentView` uses of the desk (the facade has it all)."""

    blobs: BlobStore

    def ticket(self, ref: Ticket | str | int) -> Ticket: ...

    def history(self, ref: Ticket | str | int) -> list[Event]: ...

    def conversation(
        self, ref: Ticket | str | int, *, include_internal: bool = True
    ) -> tuple[Comment, ...]: ...

    def tickets(self, query: TicketQuery | None = None, **filters: Any) -> Page[Ticket]: ...


class AgentView:
    """What one agent may read (see the module's documentation)."""

    def __init__(self, desk: AgentDesk, access: Access, agent_id: str) -> None:
        self._desk = desk
        self._access = access
        self._actor = Actor.agent(agent_id)

    @property
    def agent_id(self) -> str:
        """The id of the agent this view is for."""
        return self._actor.id

    def _agent(self) -> Agent:
        agent = self._access.check(self._actor, Permission.READ)
        assert agent is not None  # an agent actor always reads an agent
        return agent

    def ticket(self, ref: Ticket | str | int) -> Ticket:
        """A ticket the agent may read."""
        agent = self._agent()
        ticket = self._desk.ticket(ref)
        self._access.check_tickets(agent, [ticket], Permission.READ)
        return ticket

    def tickets(self, query: TicketQuery | None = None, **filters: Any) -> Page[Ticket]:
        """Tickets matching the query (as :meth:`helpkit.Helpdesk.tickets`), narrowed to the
        agent's groups when they are restricted."""
        agent = self._agent()
        groups = self._access.groups_only(agent)
        if groups is None:
            return self._desk.tickets(query, **filters)
        unknown = sorted(set(filters) - _QUERY_FIELDS)
        if unknown:
            raise ValidationError(f"unknown ticket filter(s) {', '.join(unknown)}")
        if query is None:
            query = TicketQuery(**filters)
        elif not isinstance(query, TicketQuery):
            raise ValidationError(f"query must be a TicketQuery; got {query!r:.60}")
        elif filters:
            query = attrs.evolve(query, **filters)
        wanted = groups if query.group_ids is None else groups & query.group_ids
        if not wanted:
            return Page((), None)
        return self._desk.tickets(attrs.evolve(query, group_ids=wanted))

    def history(self, ref: Ticket | str | int) -> list[Event]:
        """The audit trail of a ticket the agent may read."""
        return self._desk.history(self.ticket(ref).id)

    def conversation(
        self, ref: Ticket | str | int, *, include_internal: bool = True
    ) -> tuple[Comment, ...]:
        """The comments of a ticket the agent may read (internal notes included)."""
        ticket = self.ticket(ref)
        return self._desk.conversation(ticket.id, include_internal=include_internal)

    def attachment_bytes(self, ref: Ticket | str | int, attachment_id: str) -> bytes:
        """The bytes of a file on a comment of a ticket the agent may read."""
        for comment in self.conversation(ref):
            for attachment in comment.attachments:
                if attachment.id == attachment_id:
                    return self._desk.blobs.get(attachment.sha256)
        raise NotFoundError(f"ticket {ref!r:.40} has no attachment {attachment_id!r:.60}")
