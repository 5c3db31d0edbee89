"""The protocols the application layer talks to: Store, Channel and Clock.

Host applications and plugins supply objects that satisfy these; helpkit ships an in-memory
and an SQLite store, a system clock, and channels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import attrs

from helpkit._records import replace
from helpkit.events import Event, TicketOpened
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.queries import Page, TicketQuery
from helpkit.tickets import Ticket

__all__ = [
    "Capability",
    "Change",
    "ChangeFeed",
    "Channel",
    "Clock",
    "DeskContext",
    "InboundMessage",
    "OutboundMessage",
    "Recipient",
    "Store",
    "SystemClock",
    "TicketChange",
]


@runtime_checkable
class Clock(Protocol):
    """Where "now" comes from. Inject a frozen clock in tests."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)


@attrs.frozen
class TicketChange:
    """Events to append to one ticket, the state after them, and the seq they build on.

    A new ticket may leave its number to the store: with ``ticket.number == 0`` (and 0 on
    its :class:`~helpkit.events.TicketOpened`), :meth:`Store.commit` gives it the next
    number inside the commit and returns the change with that number on both.
    """

    ticket: Ticket
    events: tuple[Event, ...]
    expected_seq: int
    """The ticket's seq before these events (0 for a new ticket)."""

    def with_number(self, number: int) -> TicketChange:
        """This change with ``number`` on its ticket and on its ``TicketOpened`` events.

        What a store returns for a change it numbered. The change must be one
        :func:`~helpkit.stores.memory.validate_change` accepts (its opening event then says
        its ticket's number), so a change that already carries ``number`` is returned as is.
        """
        if self.ticket.number == number:
            return self
        return TicketChange(
            replace(self.ticket, number=number),
            tuple(
                replace(e, number=number) if isinstance(e, TicketOpened) else e for e in self.events
            ),
            self.expected_seq,
        )


class Capability:
    """Names of optional store capabilities, declared in ``Store.capabilities``."""

    PERSISTENT = "persistent"
    """Data survives closing and reopening the store (the conformance suite checks it)."""
    MULTIPROCESS = "multiprocess"
    """Several processes may write at once; optimistic concurrency holds across them."""
    CHANGE_FEED = "change_feed"
    """Every committed event has a position in global commit order (:class:`ChangeFeed`)."""


@attrs.frozen
class Change:
    """A committed event and its position in its store's global commit order."""

    position: int
    event: Event


@runtime_checkable
class ChangeFeed(Protocol):
    """What a store with :attr:`Capability.CHANGE_FEED` adds: the change feed and cursors.

    Every committed event gets a position when its commit is made; positions increase in
    commit order, across threads and processes (there may be gaps, never a reordering: a
    reader that has seen position ``p`` never later finds a new event below ``p``). A refused
    or failed commit shows nothing. Events of one commit get consecutive positions in the
    order of the commit's changes and events.

    Cursors are named, durable positions consumers keep (the outbox relay, a broker sink, a
    projection): a consumer reads ``changes(after=cursor(name))``, handles them, then saves
    the position of the last one it handled.
    """

    def changes(self, *, after: int = 0, limit: int = 1000) -> list[Change]:
        """The committed events with a position above ``after``, in position order, at most
        ``limit`` of them."""
        ...

    def last_position(self) -> int:
        """The highest position committed so far (0 when nothing was committed)."""
        ...

    def cursor(self, name: str) -> int:
        """The position saved under ``name`` (0 if none was)."""
        ...

    def save_cursor(self, name: str, position: int, *, expected: int | None = None) -> None:
        """Save ``position`` under ``name``. With ``expected``, only if the saved position is
        still ``expected`` (else ConflictError): two consumers sharing a name cannot both
        move it from the same place."""
        ...


@runtime_checkable
class Store(Protocol):
    """Persistence for tickets (events + current state), contacts, organizations, agents, groups.

    ``commit`` is the only ticket write: it appends every change's events and stores its new
    state atomically, all changes or none, and raises :class:`~helpkit.errors.ConflictError`
    (writing nothing) when a ticket's stored seq is not the change's ``expected_seq``.
    Reads raise :class:`~helpkit.errors.NotFoundError` for unknown ids.

    Ticket numbers: a change whose ticket has number 0 is numbered by the store, inside the
    commit. A new ticket gets one more than the highest number stored (so numbers follow
    commit order, with no gaps, and a refused commit spends none); a ticket already stored
    keeps its number. A positive number is stored as given and must be free
    (:class:`~helpkit.errors.DuplicateError`), e.g. for an import that keeps its numbers.
    """

    capabilities: frozenset[str]

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        """Atomically append events and save states, guarded by each ``expected_seq``.

        Returns the changes as written, in order: those that left their number to the store
        carry it on their ticket and on its ``TicketOpened`` event; the others are returned
        as given.
        """
        ...

    def get_ticket(self, ticket_id: str) -> Ticket:
        """The current state of a ticket."""
        ...

    def get_ticket_by_number(self, number: int) -> Ticket:
        """The ticket with that number."""
        ...

    def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
        """A ticket's events with seq > ``after_seq``, in order."""
        ...

    def query(self, query: TicketQuery) -> Page[Ticket]:
        """Tickets matching ``query``, in its order, one page at a time."""
        ...

    def save_contact(self, contact: Contact) -> None:
        """Insert (version 1) or update (stored version + 1) a contact; emails are unique."""
        ...

    def get_contact(self, contact_id: str) -> Contact:
        """A contact by id."""
        ...

    def contact_by_email(self, email: str) -> Contact:
        """The contact owning ``email`` (case-insensitive)."""
        ...

    def find_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        """Contacts whose normalized name contains the normalized ``text``, by name."""
        ...

    def save_organization(self, organization: Organization) -> None:
        """Insert or update an organization (versioned like contacts); domains are unique."""
        ...

    def get_organization(self, organization_id: str) -> Organization:
        """An organization by id."""
        ...

    def organization_by_domain(self, domain: str) -> Organization:
        """The organization owning ``domain`` (case-insensitive)."""
        ...

    def find_organizations(self, text: str, *, limit: int = 50) -> list[Organization]:
        """Organizations whose normalized name contains the normalized ``text``, by name."""
        ...

    def save_agent(self, agent: Agent) -> None:
        """Insert or replace an agent."""
        ...

    def get_agent(self, agent_id: str) -> Agent:
        """An agent by id."""
        ...

    def list_agents(self) -> list[Agent]:
        """All agents, by id."""
        ...

    def save_group(self, group: Group) -> None:
        """Insert or replace a group."""
        ...

    def get_group(self, group_id: str) -> Group:
        """A group by id."""
        ...

    def list_groups(self) -> list[Group]:
        """All groups, by id."""
        ...

    def close(self) -> None:
        """Release resources; the store is unusable afterwards."""
        ...


@attrs.frozen
class Recipient:
    """Who an outbound message goes to."""

    actor_kind: str
    actor_id: str
    name: str
    address: str | None
    """The channel-specific address (an email address for email); ``None`` if unknown."""


@attrs.frozen(kw_only=True)
class OutboundMessage:
    """A public reply leaving the helpdesk through a channel."""

    ticket_id: str
    ticket_number: int
    subject: str
    body: str
    comment_id: str
    author_name: str
    to: tuple[Recipient, ...]
    sent_at: datetime
    in_reply_to: str | None = None
    """The external id of the message this answers, for threading (e.g. an email Message-ID)."""
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class InboundMessage:
    """A message arriving through a channel, before helpkit turns it into a ticket or reply."""

    channel: str
    sender_address: str
    sender_name: str | None
    subject: str
    body: str
    received_at: datetime
    external_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    ticket_number: int | None = None
    """A ticket number the channel found (e.g. "[#1042]" in an email subject)."""


@runtime_checkable
class Channel(Protocol):
    """A transport for messages (email, webhook, chat...).

    ``deliver`` sends one outbound message and returns the external id it got (or ``None``).
    Channels that accept inbound traffic also provide ``parse(raw) -> InboundMessage``.
    """

    name: str

    def deliver(self, message: OutboundMessage) -> str | None:
        """Send ``message``; return the external message id if the transport gives one."""
        ...


@runtime_checkable
class DeskContext(Protocol):
    """What observers and plugins see of the desk that committed an event.

    The :class:`~helpkit.Helpdesk` satisfies it; typing a plugin against this narrow view keeps
    it independent of the facade.
    """

    @property
    def store(self) -> Store:
        """The desk's store."""
        ...

    @property
    def clock(self) -> Clock:
        """The desk's clock."""
        ...

    def now(self) -> datetime:
        """The clock's current instant, in UTC."""
        ...

    def ticket(self, ref: Ticket | str | int) -> Ticket:
        """A ticket by object, id or number."""
        ...

    def history(self, ref: Ticket | str | int) -> list[Event]:
        """Every event of a ticket, in order."""
        ...
