# Over 600 lines: the whole plugin contract (every Protocol a store, channel or clock
# implements, and the records they exchange) in one place a plugin author reads through.
"""The protocols the application layer talks to: Store, Channel and Clock.

Host applications and plugins supply objects that satisfy these; helpkit ships an in-memory
and an SQLite store, a system clock, and channels.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Final, Generic, Protocol, TypeVar, cast, runtime_checkable

import attrs

from helpkit._checks import (
    count,
    ident,
    instance,
    instances_of,
    member_of,
    nonblank_text,
    optional_count,
    optional_text,
    text,
)
from helpkit._records import SINCE_LATER, frozen_mapping, replace, replacer
from helpkit._time import optional_utc, to_utc
from helpkit.errors import ValidationError
from helpkit.events import Event, SlaBreached, SlaWarned, TicketOpened
from helpkit.knowledge import (
    Article,
    ArticleChange,
    ArticleHit,
    ArticleLink,
    Category,
    Section,
    Suggestion,
)
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.queries import Page, TicketQuery
from helpkit.tickets import Attachment, StatusCategory, Ticket

__all__ = [
    "EXTERNAL_CURSOR_PREFIXES",
    "Address",
    "AgentEmails",
    "BlobStore",
    "Capability",
    "Change",
    "ChangeFeed",
    "Channel",
    "ClaimedEnqueue",
    "Clock",
    "Delivery",
    "DeliveryState",
    "DeskContext",
    "DueClaims",
    "DueTimer",
    "DueTimerClaims",
    "FeedWakeup",
    "GroupCommits",
    "InboundAttachment",
    "InboundMessage",
    "Inbox",
    "IntakeContext",
    "KeptParties",
    "KnowledgeBase",
    "OutboundMessage",
    "Outbox",
    "PartyReads",
    "Purge",
    "Receipt",
    "ReceiptState",
    "RecentTickets",
    "Recipient",
    "Redaction",
    "RequesterCounts",
    "Routing",
    "RoutingState",
    "Store",
    "SystemClock",
    "TicketChange",
    "TimerRows",
    "TimerStates",
    "TimerUpdate",
    "capable",
    "implements",
    "missing_members",
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
    receipt: Receipt | None = None
    """For a change made from an inbound message: its receipt, written in the same
    transaction (a store with :attr:`Capability.INBOX`; see :class:`Inbox`)."""
    routing: tuple[RoutingState, ...] = ()
    """For a change routing made: the groups' routing states to write in the same
    transaction, each guarded by its version (a store with :attr:`Capability.ROUTING`; see
    :class:`Routing`)."""
    contacts: tuple[Contact, ...] = ()
    """New contacts (version 1) to save in the same transaction, before the change is
    written: the sender of an inbound message that opens a ticket, saved with it in one
    commit (a store with :attr:`Capability.NEW_CONTACTS` only). One of their addresses held
    by another contact refuses the whole commit with DuplicateError, writing nothing."""

    def with_number(self, number: int) -> TicketChange:
        """This change with ``number`` on its ticket and on its ``TicketOpened`` events.

        What a store returns for a change it numbered. The change must be one
        :func:`~helpkit.stores.memory.validate_change` accepts (its opening event then says
        its ticket's number), so a change that already carries ``number`` is returned as is.
        """
        ticket = self.ticket
        if ticket.number == number:
            return self
        events = [
            (
                _NUMBERED_OPENING(e, number)
                if e.__class__ is TicketOpened
                else replace(e, number=number)
            )
            if isinstance(e, TicketOpened)
            else e
            for e in self.events
        ]
        # A TicketChange of this one's other fields (of one of a subclass too, as before).
        return _NUMBERED_CHANGE(
            self,
            _NUMBERED(ticket, number)
            if ticket.__class__ is Ticket
            else replace(ticket, number=number),
            tuple(events),
        )


_NUMBERED = replacer(Ticket, ("number",))
"""``replace(ticket, number=...)`` of a :class:`~helpkit.tickets.Ticket`."""
_NUMBERED_OPENING = replacer(TicketOpened, ("number",))
"""``replace(event, number=...)`` of a :class:`~helpkit.events.TicketOpened`."""
_NUMBERED_CHANGE = replacer(TicketChange, ("ticket", "events"))
"""``TicketChange(ticket, events, change.expected_seq, change.receipt, change.routing,
change.contacts)`` of a change (a TicketChange, whatever the change's class): its fields
copied, without ``__init__``."""


class Capability:
    """Names of optional store capabilities, declared in ``Store.capabilities``."""

    PERSISTENT = "persistent"
    """Data survives closing and reopening the store (the conformance suite checks it)."""
    MULTIPROCESS = "multiprocess"
    """Several processes may write at once; optimistic concurrency holds across them."""
    CHANGE_FEED = "change_feed"
    """Every committed event has a position in global commit order (:class:`ChangeFeed`)."""
    OUTBOX = "outbox"
    """The store keeps the deliveries the relay derives from the change feed (:class:`Outbox`)."""
    CLAIMED_ENQUEUE = "claimed_enqueue"
    """The outbox adds new deliveries already claimed by the relay that derived them
    (:class:`ClaimedEnqueue`): the relay sends what it just derived without claiming it (a
    read, a decoding and a write of each delivery) in a transaction of its own."""
    TIMER_STATE = "timer_state"
    """The store keeps a timer state beside each ticket, written by the commits of helpkit's
    pipeline (:class:`TimerStates`), so the SLA sweep reads no history."""
    DUE_CLAIMS = "due_claims"
    """Sweep workers lease the tickets due for an SLA check (:class:`DueClaims`), so several
    of them share the due tickets without two holding one ticket at once."""
    FEED_WAKEUP = "feed_wakeup"
    """A consumer of the change feed can wait for the next commit instead of polling
    (:class:`FeedWakeup`)."""
    INBOX = "inbox"
    """The store keeps a receipt of every inbound message, keyed by channel and external id,
    written with the ticket change it made (:class:`Inbox`): a message is ingested once, and
    suspended messages wait there to be released."""
    ROUTING = "routing"
    """The store keeps each group's routing state (the round-robin cursor, under a version)
    and counts agents' loads (:class:`Routing`): a change routing made writes the states it
    read, guarded by their versions, so two routers never both fill an agent's last slot."""
    KNOWLEDGE = "knowledge"
    """The store keeps a knowledge base (:class:`KnowledgeBase`): categories, sections,
    articles with their versions and audit trail, ranked full-text search over them, links
    between tickets and articles, and the suggestions shown for deflection."""
    RECENT_TICKETS = "recent_tickets"
    """The store object remembers the last state of each ticket it committed or read
    (:class:`RecentTickets`): helpkit's pipeline decides a command on it without reading the
    ticket first, the commit guarded by that state's seq (a store whose reads cost a round
    trip to a server)."""
    # --- privacy (issue #16)
    REDACTION = "redaction"
    """The store rewrites what it keeps in place (:class:`Redaction`): events (in the history
    and the change feed), deliveries and receipts, so a redacted text is gone from every read;
    and it has a cleanup step (:meth:`Redaction.compact`) after which the old bytes are gone
    from its storage as far as it can tell (see the page *Privacy*)."""
    PURGE = "purge"
    """The store deletes whole tickets (:class:`Purge`): their state, events (their feed
    positions become gaps), timer states, deliveries and receipts."""
    # --- end privacy
    NEW_CONTACTS = "new_contacts"
    """A commit saves the new contacts its changes carry (:attr:`TicketChange.contacts`) in
    its transaction: an inbound message from a new sender costs one commit, not two (a
    contact, then its ticket), and a commit that fails saves no contact."""
    TIMER_ROWS = "timer_rows"
    """The store reads the due tickets' timer rows without their whole state, and writes a
    change that only records timer events (an SLA warning or breach) as a narrow update of
    the row (:class:`TimerRows`): the sweep's fast path, which decodes and encodes no whole
    ticket. Needs :attr:`TIMER_STATE`."""
    DUE_TIMER_CLAIMS = "due_timer_claims"
    """A claim of due tickets gives their timer rows, not the whole tickets
    (:class:`DueTimerClaims`): sweep workers sharing the due tickets take the fast path of
    :attr:`TIMER_ROWS`. Needs :attr:`DUE_CLAIMS` and :attr:`TIMER_ROWS`."""
    PARTY_READS = "party_reads"
    """The store reads an agent and a contact together, in one round trip
    (:class:`PartyReads`): opening a ticket reads the acting agent and the requester so (a
    store whose reads cost a round trip to a server)."""
    SETTLED_COMMIT = "settled_commit"
    """A commit also settles outbox deliveries, in its transaction (:class:`SettledCommits`):
    the relay records a batch's outcomes in the tickets' audit trails and stores them in the
    outbox in one transaction, not two."""
    TICKET_READS = "ticket_reads"
    """The store reads several tickets in one statement (:class:`TicketReads`): helpkit's
    pipeline loads a command's tickets so (the relay's record of a batch: one read, not one
    per ticket)."""
    KEPT_PARTIES = "kept_parties"
    """The store keeps the agents and contacts it last saved or read, and guards a commit by
    them (:class:`KeptParties`): opening a ticket decides on the kept acting agent and
    requester, and its commit writes only if they are still stored so (no read first)."""
    AGENT_EMAILS = "agent_emails"
    """The store finds the agents of some email addresses without decoding every agent
    (:class:`AgentEmails`): intake reads only the agents of an inbound message's sender and
    CCs, not the whole staff, for every message."""

    REQUESTER_COUNTS = "requester_counts"
    """The store counts a requester's tickets created since an instant without decoding them
    (:class:`RequesterCounts`): intake's acknowledgement rate limit asks it for every new
    request of a known sender."""
    GROUP_COMMIT = "group_commit"
    """The store makes the writes of a block durable in one transaction (:class:`GroupCommits`):
    ``helpkit mail import`` and ``poll`` commit a batch of messages with one flush to disk,
    acknowledging each message to its source only once its batch is committed."""


EXTERNAL_CURSOR_PREFIXES: Final = ("imap:",)
"""Cursor names that keep a place in another sequence than the change feed (``imap:...``: the
last UID handled in an IMAP mailbox, see :mod:`helpkit.channels.imap`): a store saves such a
cursor at any position, not only up to :meth:`ChangeFeed.last_position`."""


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

    def cursors(self) -> dict[str, int]:
        """Every saved cursor, by name (a consumer's lag is ``last_position()`` minus its
        cursor; a name never saved is absent, one saved at 0 is there)."""
        ...

    def save_cursor(self, name: str, position: int, *, expected: int | None = None) -> None:
        """Save ``position`` under ``name``. With ``expected``, only if the saved position is
        still ``expected`` (else ConflictError): two consumers sharing a name cannot both
        move it from the same place. A position beyond :meth:`last_position` is refused
        (ValidationError), except under a name of :data:`EXTERNAL_CURSOR_PREFIXES`."""
        ...


@runtime_checkable
class Outbox(Protocol):
    """What a store with :attr:`Capability.OUTBOX` adds: the deliveries waiting to go out.

    The relay derives deliveries from the change feed and :meth:`enqueue` s them together with
    its cursor, so each committed event is turned into deliveries once. Relays :meth:`claim`
    due deliveries for a while (a lease: two relays never hold one delivery at once), try
    them, and :meth:`settle` the results; a claim that lapses (a relay died) lets another relay
    take the delivery again.
    """

    def enqueue(
        self,
        deliveries: Sequence[Delivery],
        *,
        cursor: str,
        position: int,
        expected: int,
        checked: bool = False,
    ) -> int:
        """Add the deliveries whose id is new, and move cursor ``cursor`` from ``expected`` to
        ``position``, in one transaction (ConflictError, adding nothing, when the cursor is
        not at ``expected``). Returns how many were new.

        Each delivery's values pass their checks again (ValidationError, adding nothing, for
        one forged past them), unless ``checked`` is true: the relay's own deliveries, which
        helpkit built from checked values (their constructors ran every check), are only
        made sure to be deliveries. Everything else is the same."""
        ...

    def claim(self, *, owner: str, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` pending deliveries due at ``now`` (next attempt at or before it)
        that no one holds (or whose claim lapsed), for ``owner`` until ``until``; oldest due
        first. Each claimed delivery's ``claims`` goes up by one."""
        ...

    def settle(self, results: Sequence[Delivery], *, owner: str, checked: bool = False) -> int:
        """Store the results of attempts (state, attempts, next attempt, error, external id) of
        deliveries ``owner`` still holds, and release them; results of deliveries it no
        longer holds are ignored. Returns how many were stored. A result's other fields are
        those of the delivery as claimed (a store may keep them from its own row: the SQLite
        store writes only the attempt's fields). ``checked`` as in :meth:`enqueue` (the
        relay's results: the claimed deliveries, which the store read and checked, with the
        attempt's values checked by ``replace``)."""
        ...

    def delivery(self, delivery_id: str) -> Delivery:
        """A delivery by id (NotFoundError if unknown)."""
        ...

    def deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        ticket_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries (of one state, of one ticket), by id, those after id ``after``."""
        ...

    def revive(self, delivery_id: str, *, now: datetime) -> Delivery:
        """Make a dead delivery pending again, due at ``now``, its attempts and claims reset
        and its ``revivals`` one more: a new round (its first claim does not look for what an
        earlier relay recorded, which is the round given up)."""
        ...

    def purge(self, *, sent_before: datetime) -> int:
        """Forget the deliveries sent before ``sent_before`` (the audit trail keeps their
        ``message_sent`` record). Returns how many were forgotten."""
        ...


# --- privacy (issue #16)
@runtime_checkable
class Redaction(Protocol):
    """What a store with :attr:`Capability.REDACTION` adds: records rewritten in place.

    helpkit's privacy service (:mod:`helpkit.privacy`) computes what each record becomes
    (:mod:`helpkit.redaction`) and hands the rewritten records here; the store replaces the
    stored ones by key, in one transaction, and never looks into the text.
    """

    def rewrite(
        self,
        *,
        events: Sequence[Event] = (),
        deliveries: Sequence[Delivery] = (),
        receipts: Sequence[Receipt] = (),
    ) -> None:
        """Replace stored records in one transaction: each event by its ticket and seq (in the
        history and the change feed, at its position; the type may not change), each
        delivery by id (its ticket may not change), each receipt by key. A record not stored
        raises NotFoundError, a changed type or ticket ValidationError; either writes
        nothing. The old content is overwritten where the storage allows it (see
        :meth:`compact`)."""
        ...

    def receipts_of(self, ticket_id: str) -> list[Receipt]:
        """The receipts of inbound messages that made or commented on ticket ``ticket_id``
        (any state), by key."""
        ...

    def blobs_in_use(self, sha256s: Sequence[str]) -> frozenset[str]:
        """Those of ``sha256s`` that a stored event still refers to (an attachment of a comment
        not redacted): the blobs that may not be deleted."""
        ...

    def compact(self) -> None:
        """The cleanup step after redactions and purges: make the storage drop the bytes of
        rewritten and deleted records (what it guarantees is the store's to say)."""
        ...


@runtime_checkable
class Purge(Protocol):
    """What a store with :attr:`Capability.PURGE` adds: whole tickets deleted."""

    def purge_tickets(self, ticket_ids: Sequence[str]) -> list[str]:
        """Delete these tickets, in one transaction: their states, events (the change feed
        keeps their positions as gaps, which its contract allows), timer states, due
        claims, deliveries and receipts; returns the ids deleted, sorted. Ids not stored are
        skipped, and so are the ticket holding the last feed position and the one with the
        highest number: positions and numbers are never given twice (a later purge takes
        them, once newer tickets exist). Contacts, organizations, agents, groups and cursors
        are left."""
        ...


# --- end privacy


@runtime_checkable
class RecentTickets(Protocol):
    """What a store with :attr:`Capability.RECENT_TICKETS` adds: the last state of a ticket
    that this store object committed or read, from memory.

    It may be stale: another store object, in this process or another, may have committed
    since. So it is only for a command whose commit is guarded by the state's seq: helpkit's
    pipeline decides on it, and when the commit raises ConflictError, or the decision
    refuses, it decides again on the ticket read anew (:meth:`Store.get_ticket`). Neither a
    write nor an error then comes from a stale state.
    """

    def recent_ticket(self, ticket_id: str) -> Ticket | None:
        """The state of ``ticket_id`` this store object last committed or read (the one of
        the highest seq), or None when it keeps none."""
        ...


@runtime_checkable
class PartyReads(Protocol):
    """What a store with :attr:`Capability.PARTY_READS` adds: an agent and a contact read
    together (one statement, one round trip to a server), as they are then; nothing is kept
    from one call to the next."""

    def agent_and_contact(self, agent_id: str, contact_id: str) -> tuple[Agent, Contact]:
        """:meth:`Store.get_agent` of ``agent_id`` and :meth:`Store.get_contact` of
        ``contact_id``, read at once; NotFoundError for a missing agent first, then for a
        missing contact, as the two reads in that order raise."""
        ...


@runtime_checkable
class AgentEmails(Protocol):
    """What a store with :attr:`Capability.AGENT_EMAILS` adds: the agents of some email
    addresses, as they are then; nothing is kept from one call to the next."""

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        """The agents whose ``email`` is one of ``addresses`` (compared as stored: agents'
        addresses are normalized), active or not, by id: what :meth:`Store.list_agents`
        returns, filtered so. An empty ``addresses`` finds none."""
        ...


@runtime_checkable
class RequesterCounts(Protocol):
    """What a store with :attr:`Capability.REQUESTER_COUNTS` adds: a requester's recent
    tickets counted, not read, as they are then; nothing is kept from one call to the next."""

    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        """How many tickets of ``requester_id`` (their ``requester_id``, merged ones too) were
        created after ``since`` (strictly), counted up to ``limit`` (at least 1):
        ``min(limit, that number)``. ValidationError for a ``requester_id`` that is not text,
        a ``limit`` that is not a positive integer; NaiveDatetimeError for a naive ``since``."""
        ...


@runtime_checkable
class GroupCommits(Protocol):
    """What a store with :attr:`Capability.GROUP_COMMIT` adds: a block of writes committed as
    one transaction (a group commit).

    Inside ``with store.group_commit():``, every write the calling thread makes is applied at
    once as a nested unit: one that raises leaves nothing of itself and the earlier ones stand
    (its error propagates as usual, so a commit that lost its seq check is retried within the
    block). The thread's reads see the block's writes; other threads and processes see none
    of them until the block ends. When the block ends normally, every write in it is made
    durable by one commit (StoreError, nothing of the block stored, if that commit fails).
    When the block raises, nothing written in it is stored and the exception propagates. A
    block entered again in the same thread joins the outer one. The store may hold its write
    lock for the whole block, so other writers wait: keep blocks short. States the store
    keeps in memory from writes that were then rolled back are forgotten."""

    def group_commit(self) -> AbstractContextManager[None]:
        """The block (a context manager): see the class."""
        ...


@runtime_checkable
class TicketReads(Protocol):
    """What a store with :attr:`Capability.TICKET_READS` adds: several tickets read at once
    (one statement), as they are then; nothing is kept from one call to the next that
    :meth:`Store.get_ticket` would not keep."""

    def get_tickets(self, ticket_ids: Sequence[str]) -> list[Ticket]:
        """:meth:`Store.get_ticket` of each of ``ticket_ids``, in their order (an id given
        twice comes back twice), read at once; NotFoundError, naming the first missing id in
        that order, when one is missing."""
        ...


@runtime_checkable
class SettledCommits(Protocol):
    """What a store with :attr:`Capability.SETTLED_COMMIT` (and :attr:`Capability.OUTBOX`)
    adds: a commit that settles outbox deliveries in its transaction."""

    def commit_settled(
        self,
        changes: Sequence[TicketChange],
        states: Sequence[str | None] | None,
        results: Sequence[Delivery],
        *,
        owner: str,
    ) -> tuple[list[TicketChange], int]:
        """Commit ``changes`` (as :meth:`TimerStates.commit_planned` with ``states`` on a
        store with :attr:`Capability.TIMER_STATE`, else as :meth:`Store.commit`; a store
        without timer states ignores ``states``) and, in the same transaction, settle
        ``results`` as :meth:`Outbox.settle` with ``checked`` would (the relay's results):
        the changes as written and how many results were stored. The results are stored
        exactly when the changes are: a refused commit (ConflictError, DuplicateError,
        ValidationError...) stores none; results of deliveries ``owner`` no longer holds are
        ignored, as :meth:`Outbox.settle` ignores them, and the changes are written all the
        same."""
        ...


@runtime_checkable
class KeptParties(Protocol):
    """What a store with :attr:`Capability.KEPT_PARTIES` adds: the agent and the contact this
    store object last saved or read, from memory, and a guard that makes a commit check them
    (both, or the agent alone).

    Like :class:`RecentTickets`, a kept state may be stale (another store object may have
    saved since), so it is only for a decision whose commit is guarded by it: the commit
    writes only if both are still stored exactly as kept, else it raises ConflictError and
    writes nothing, and the caller decides again on reads. Neither a write nor an error then
    comes from a stale state.
    """

    def kept_parties(self, agent_id: str, contact_id: str) -> tuple[Agent, Contact] | None:
        """The agent and the contact as this store object last saved or read them, or None
        when it keeps either not."""
        ...

    def guard_parties(self, agent: Agent, contact: Contact) -> AbstractContextManager[None]:
        """A block in which the first commit of this thread writes only if ``agent`` and
        ``contact`` (as :meth:`kept_parties` gave them) are still stored as they were:
        ConflictError, nothing written, when either changed or is gone."""
        ...

    def kept_agent(self, agent_id: str) -> Agent | None:
        """The agent as this store object last saved or read it, or None when it keeps it
        not (a command on an existing ticket decides on the acting agent alone)."""
        ...

    def guard_agent(self, agent: Agent) -> AbstractContextManager[None]:
        """:meth:`guard_parties` for the agent alone (as :meth:`kept_agent` gave it)."""
        ...


@runtime_checkable
class TimerStates(Protocol):
    """What a store with :attr:`Capability.TIMER_STATE` adds: each ticket's timer state.

    A timer state is text that helpkit's timers write with a commit and read back (today the
    SLA clock's fold of the ticket's history, as JSON): the sweep then reads it with the due
    tickets instead of reading and folding each one's events. The store keeps the text as
    given and never looks into it. The text says which seq it describes: a ticket committed
    since without a state (by a plain :meth:`Store.commit`) keeps the older text, which
    helpkit brings up to date from the events after it.
    """

    def commit_planned(
        self, changes: Sequence[TicketChange], states: Sequence[str | None]
    ) -> list[TicketChange]:
        """:meth:`Store.commit` for changes helpkit's pipeline built, keeping ``states[i]``
        as the timer state of the ticket of ``changes[i]`` (``None`` leaves it as it is).

        Their values were built through the domain's checks, so the store need not run
        those again (:func:`~helpkit.stores.contract.validate_change` with
        ``check_values=False``); everything else is as in :meth:`Store.commit`: the shape of
        each change, ``expected_seq``, numbering, all or nothing (states included). A
        ``states`` of another length than ``changes`` raises ValidationError.
        """
        ...

    def query_states(self, query: TicketQuery) -> tuple[Page[Ticket], list[str | None]]:
        """:meth:`Store.query`, and the timer state kept for each ticket of the page, in
        the same order (``None`` for a ticket without one)."""
        ...


@runtime_checkable
class ClaimedEnqueue(Protocol):
    """What a store with :attr:`Capability.CLAIMED_ENQUEUE` adds to its :class:`Outbox`: new
    deliveries added already claimed, in the transaction that moves the relay's cursor."""

    def enqueue_claimed(
        self,
        deliveries: Sequence[Delivery],
        *,
        cursor: str,
        position: int,
        expected: int,
        owner: str,
        until: datetime,
        checked: bool = False,
    ) -> list[Delivery]:
        """:meth:`Outbox.enqueue`, each new delivery stored claimed by ``owner`` until
        ``until`` (``claimed_by``, ``claimed_until``, and ``claims`` one more, as
        :meth:`Outbox.claim` would have stored it; its other fields as given). Returns the
        deliveries added, as stored, in the order given: those whose id was already there are
        left as they are, and not returned (whoever holds them sends them)."""
        ...


@runtime_checkable
class DueClaims(Protocol):
    """What a store with :attr:`Capability.DUE_CLAIMS` adds: leases on due tickets.

    Sweep workers :meth:`claim_due` the tickets whose ``next_check`` is due for a while (a
    lease, as relays claim deliveries: two workers never hold one ticket at once), sweep them,
    and :meth:`release_due` them; a claim that lapses (a worker died) lets another worker take
    the ticket again. A claim is advice between sweeps, not a lock: commits go through as
    always (optimistic, by ``expected_seq``), whoever holds the ticket.
    """

    def claim_due(
        self, *, owner: str, now: datetime, until: datetime, limit: int
    ) -> tuple[list[Ticket], list[str | None]]:
        """Claim up to ``limit`` tickets whose ``next_check`` is at or before ``now`` that no
        one holds (or whose claim lapsed: held until ``now`` or before), for ``owner`` until
        ``until``; earliest ``next_check`` first, then by id. Returns them, and the timer
        state kept for each (see :class:`TimerStates`; ``None`` for one without, and for
        every ticket of a store without :attr:`Capability.TIMER_STATE`)."""
        ...

    def release_due(self, ticket_ids: Sequence[str], *, owner: str) -> int:
        """Release ``owner``'s claims on these tickets (those another holds, or no one, are
        left as they are). Returns how many were released."""
        ...


@attrs.frozen
class DueTimer:
    """A due ticket as the sweep's fast path reads it (:class:`TimerRows`): what its decision
    needs, not the whole ticket."""

    ticket_id: str
    seq: int
    updated_at: datetime
    sla_policy: str | None
    next_deadline: datetime | None
    next_check: datetime | None
    timer_state: str | None
    """The kept timer state (see :class:`TimerStates`), or ``None``."""
    plain: bool
    """Whether an event that changes nothing but ``seq`` and ``updated_at`` leaves the rest of
    the stored state as it is (false for a ticket stored before helpkit kept its requester,
    assignment and unassignment instants, which its next event pins: see
    :mod:`helpkit.fold`)."""
    handle: object = None
    """The store's own key of the row (SQLite: its rowid), or ``None``: a
    :class:`TimerUpdate` decided on this row carries it back (:attr:`TimerUpdate.row`)."""


_TIMER_EVENTS: Final = frozenset({SlaWarned, SlaBreached})
"""The timer events: they move nothing of a ticket but ``seq`` and ``updated_at``."""


def _timer_events(update: TimerUpdate, _attribute: object, events: tuple[Event, ...]) -> None:
    """A :class:`TimerUpdate`'s events: SLA warnings and breaches of its ticket, following
    its expected seq one by one (checked once, where an update is made, for every writer and
    store alike)."""
    if type(events) is not tuple or not events:
        raise ValidationError(f"a TimerUpdate takes a tuple of events; got {events!r:.60}")
    seq = update.expected_seq
    if type(seq) is not int:
        raise ValidationError(f"a TimerUpdate's expected seq is an integer; got {seq!r:.40}")
    for event in events:
        seq += 1
        if (
            event.__class__ not in _TIMER_EVENTS
            or event.ticket_id != update.ticket_id
            or event.seq != seq
        ):
            raise ValidationError(
                f"a TimerUpdate takes SLA warnings and breaches following ticket "
                f"{update.ticket_id!r} seq {update.expected_seq}; got {event!r:.80}"
            )


@attrs.frozen
class TimerUpdate:
    """A change that records timer events only (SLA warnings and breaches, which move no
    field of the ticket but ``seq`` and ``updated_at``), with the ticket's new timer fields
    and kept timer state: what :meth:`TimerRows.commit_timers` writes.

    Its events are checked when it is made (ValidationError): one or more SLA warnings and
    breaches of ``ticket_id``, numbered from ``expected_seq + 1`` on."""

    ticket_id: str
    expected_seq: int
    events: tuple[Event, ...] = attrs.field(validator=_timer_events)
    updated_at: datetime
    sla_policy: str | None
    next_deadline: datetime | None
    next_check: datetime | None
    timer_state: str
    row: DueTimer | None = None
    """The due row the update was decided on (from :meth:`TimerRows.due_timers`), or
    ``None``: the store may take the row's handle and stored SLA columns from it, which hold
    while the ticket is at ``expected_seq`` (the commit checks it all the same)."""


@runtime_checkable
class TimerRows(Protocol):
    """What a store with :attr:`Capability.TIMER_ROWS` adds: the sweep's narrow reads and
    writes.

    The ticket state after a :class:`TimerUpdate` is the stored one with ``seq`` (the last
    event's), ``updated_at``, ``sla_policy``, ``next_deadline`` and ``next_check`` replaced:
    exactly what :meth:`Store.commit` of the same events and that state would store.
    """

    def due_timers(
        self, now: datetime, *, limit: int, after: str | None = None
    ) -> tuple[list[DueTimer], str | None]:
        """Up to ``limit`` tickets whose ``next_check`` is at or before ``now``, earliest
        first, then by id (after the cursor ``after``); and the cursor of the next page, or
        ``None`` when this page is the last."""
        ...

    def commit_timers(self, updates: Sequence[TimerUpdate]) -> None:
        """Append each update's events and write its ticket's narrow update and timer state,
        all in one transaction; ConflictError (nothing written) when a ticket is not at its
        ``expected_seq``."""
        ...


@runtime_checkable
class DueTimerClaims(Protocol):
    """What a store with :attr:`Capability.DUE_TIMER_CLAIMS` adds to its :class:`DueClaims`:
    a claim that reads the claimed tickets as :class:`TimerRows` reads them."""

    def claim_due_timers(
        self, *, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[DueTimer]:
        """:meth:`DueClaims.claim_due` (the same tickets, claimed the same way, released by
        :meth:`DueClaims.release_due`), each claimed ticket read as
        :meth:`TimerRows.due_timers` reads it; earliest ``next_check`` first, then by id."""
        ...


@runtime_checkable
class FeedWakeup(Protocol):
    """What a store with :attr:`Capability.FEED_WAKEUP` adds to its change feed: a wait that a
    commit ends (in any process), so an idle consumer needs no polling."""

    def wait_for_changes(self, after: int, timeout: float) -> bool:
        """Wait until the feed may hold a position above ``after``, at most ``timeout``
        seconds: True when woken by a commit (or when such a position is already there),
        False when the time ran out. A wake-up may be lost (a dropped connection): a consumer
        still looks at the feed now and then."""
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

    actor_kind: str = attrs.field(validator=nonblank_text)
    actor_id: str = attrs.field(validator=ident)
    name: str = attrs.field(validator=text)
    address: str | None = attrs.field(validator=optional_text)
    """The channel-specific address (an email address for email); ``None`` if unknown."""


def _recipients(value: Iterable[Recipient]) -> tuple[Recipient, ...]:
    return tuple(value)


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _attachment_tuple(value: Iterable[Attachment]) -> tuple[Attachment, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class OutboundMessage:
    """A message leaving the helpdesk through a channel: a public reply, an SLA notice."""

    ticket_id: str = attrs.field(validator=ident)
    ticket_number: int = attrs.field(validator=count)
    subject: str = attrs.field(validator=text)
    body: str = attrs.field(validator=text)
    comment_id: str = attrs.field(validator=ident)
    """The comment it carries (for a notice: an id naming the notice)."""
    author_name: str = attrs.field(validator=text)
    to: tuple[Recipient, ...] = attrs.field(
        converter=_recipients, validator=instances_of(Recipient, container=tuple)
    )
    sent_at: datetime = attrs.field(converter=to_utc)
    """When it was handed to the channel (the first attempt's instant for a retry)."""
    in_reply_to: str | None = attrs.field(default=None, validator=optional_text)
    """The external id of the message this answers, for threading (e.g. an email Message-ID)."""
    references: tuple[str, ...] = attrs.field(
        default=(), converter=_texts, validator=instances_of(str, container=tuple)
    )
    """External ids of earlier messages of the conversation, oldest first (email References)."""
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_mapping)
    idempotency_key: str = attrs.field(default="", validator=text)
    """The same for every attempt to deliver this message: a channel that may see it twice
    (after a retry or a relay restart) sends it once by remembering the keys it sent."""
    kind: str = attrs.field(default="reply", validator=nonblank_text)
    """``reply`` (a public comment), ``sla_notice`` or ``acknowledgement`` (of a new request)."""
    thread_token: str = attrs.field(default="", validator=text, metadata=SINCE_LATER)
    """The ticket's signed thread token (:mod:`helpkit.thread_tokens`), ``""`` on a desk
    without a secret: an email channel writes it in the Message-ID, so a reply threads."""
    attachments: tuple[Attachment, ...] = attrs.field(
        default=(),
        converter=_attachment_tuple,
        validator=instances_of(Attachment, container=tuple),
        metadata=SINCE_LATER,
    )
    """The files of the comment it carries (their descriptions: a channel reads the bytes
    from the desk's blob store, given to its factory as the option ``blobs``)."""


class DeliveryState(enum.Enum):
    """Where a delivery stands in the outbox."""

    PENDING = "pending"
    """Waiting for its next attempt (or being attempted, while a relay holds its claim)."""
    SENT = "sent"
    """The channel took it."""
    DEAD = "dead"
    """Given up: every attempt failed, or no channel could take it. ``revive`` retries it."""


@attrs.frozen(kw_only=True)
class Delivery:
    """One message to deliver, in the outbox: what, through which channel, and how it went.

    ``id`` is the message's idempotency key, derived from the event it comes from, so deriving
    it again (after a crash) finds the same delivery. ``channel`` is ``None`` when no configured
    channel could take it (it is then dead at once, recorded with the reason "no channel").
    """

    id: str = attrs.field(validator=ident)
    ticket_id: str = attrs.field(validator=ident)
    source: int = attrs.field(validator=count)
    """The change feed position of the event it comes from."""
    kind: str = attrs.field(validator=nonblank_text)
    channel: str | None = attrs.field(validator=optional_text)
    message: OutboundMessage = attrs.field(validator=instance(OutboundMessage))
    state: DeliveryState = attrs.field(
        default=DeliveryState.PENDING, validator=member_of(DeliveryState)
    )
    attempts: int = attrs.field(default=0, validator=count)
    """Attempts made so far (failed ones, and the one that succeeded)."""
    claims: int = attrs.field(default=0, validator=count)
    """How many times a relay claimed it: more than one means an earlier relay may have sent
    it and stopped before it could say so."""
    revivals: int = attrs.field(default=0, validator=count)
    """How many times it was revived after it died: the outcomes its ticket's audit trail holds
    from before the last revival belong to attempts that ended in a dead letter."""
    next_attempt_at: datetime = attrs.field(converter=to_utc)
    claimed_by: str | None = attrs.field(default=None, validator=optional_text)
    claimed_until: datetime | None = attrs.field(default=None, converter=optional_utc)
    last_error: str | None = attrs.field(default=None, validator=optional_text)
    external_id: str | None = attrs.field(default=None, validator=optional_text)
    """The id the channel gave the message (an email Message-ID), once sent."""
    created_at: datetime = attrs.field(converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)


@attrs.frozen
class Address:
    """A person's address on a channel (an email address), with the name shown beside it."""

    address: str = attrs.field(validator=nonblank_text)
    name: str | None = attrs.field(default=None, validator=optional_text)


def _addresses(value: Iterable[Address]) -> tuple[Address, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class InboundAttachment:
    """A file that came with an inbound message, with its bytes (before it is stored)."""

    filename: str = attrs.field(validator=nonblank_text)
    content_type: str = attrs.field(validator=nonblank_text)
    data: bytes = attrs.field(validator=instance(bytes))
    inline: bool = attrs.field(default=False, validator=instance(bool))
    content_id: str | None = attrs.field(default=None, validator=optional_text)


def _inbound_attachments(value: Iterable[InboundAttachment]) -> tuple[InboundAttachment, ...]:
    return tuple(value)


def _header_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return frozen_mapping({str(k).lower(): v for k, v in dict(value).items()})


@attrs.frozen(kw_only=True)
class InboundMessage:
    """A message arriving through a channel, before :meth:`Helpdesk.receive` turns it into a
    new ticket, a comment on a ticket, or a suspended message.

    A channel's parser builds it (:func:`helpkit.channels.email_in.parse` for email, the
    webhook adapter for JSON); every field is checked when it is built.
    """

    channel: str = attrs.field(validator=nonblank_text)
    """The name of the channel it came through (``email``, ``web``...)."""
    sender_address: str = attrs.field(validator=nonblank_text)
    sender_name: str | None = attrs.field(validator=optional_text)
    subject: str = attrs.field(validator=text)
    body: str = attrs.field(validator=text)
    """The new text of the message (quoted history stripped)."""
    received_at: datetime = attrs.field(converter=to_utc)
    external_id: str | None = attrs.field(default=None, validator=optional_text)
    """The channel's id of the message (an email's Message-ID, without angle brackets): with
    ``channel`` it is the key that makes a message ingested once. ``None``: no dedupe."""
    in_reply_to: str | None = attrs.field(default=None, validator=optional_text)
    references: tuple[str, ...] = attrs.field(
        default=(), converter=_texts, validator=instances_of(str, container=tuple)
    )
    """External ids of earlier messages of the conversation, oldest first."""
    ticket_number: int | None = attrs.field(default=None, validator=optional_count)
    """A ticket number the channel found (``[#1042]`` in an email subject)."""
    to: tuple[Address, ...] = attrs.field(
        default=(), converter=_addresses, validator=instances_of(Address, container=tuple)
    )
    cc: tuple[Address, ...] = attrs.field(
        default=(), converter=_addresses, validator=instances_of(Address, container=tuple)
    )
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_header_map)
    """The transport's headers, names lower-case (repeated headers joined by ``\n``): what
    the screens read (``auto-submitted``, ``precedence``...)."""
    original: str | None = attrs.field(default=None, validator=optional_text)
    """The full text before the quoted history was stripped (``None``: nothing stripped)."""
    attachments: tuple[InboundAttachment, ...] = attrs.field(
        default=(),
        converter=_inbound_attachments,
        validator=instances_of(InboundAttachment, container=tuple),
    )
    notes: tuple[str, ...] = attrs.field(
        default=(), converter=_texts, validator=instances_of(str, container=tuple)
    )
    """What the parser had to repair or drop (an unknown charset, a broken part), for audit."""


class ReceiptState(enum.Enum):
    """What became of an inbound message."""

    CREATED = "created"
    """It opened a ticket."""
    COMMENTED = "commented"
    """It was added to a ticket's conversation."""
    SUSPENDED = "suspended"
    """A screen held it back (an auto-reply, a bounce, a loop, a stranger); it waits to be
    released or discarded."""
    DISCARDED = "discarded"
    """It was suspended, then thrown away by an agent."""


@attrs.frozen(kw_only=True)
class Receipt:
    """The record an :class:`Inbox` keeps of one inbound message, under its ``key``."""

    key: str = attrs.field(validator=nonblank_text)
    """``<channel>:<external id>`` (or a fresh id for a message without an external id)."""
    state: ReceiptState = attrs.field(validator=member_of(ReceiptState))
    received_at: datetime = attrs.field(converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)
    ticket_id: str | None = attrs.field(default=None, validator=optional_text)
    comment_id: str | None = attrs.field(default=None, validator=optional_text)
    reason: str | None = attrs.field(default=None, validator=optional_text)
    """Why it was suspended (kept after a release, for audit)."""
    message: InboundMessage | None = attrs.field(
        default=None, validator=attrs.validators.optional(instance(InboundMessage))
    )
    """The message itself, kept while it is suspended (``None`` once it was ingested)."""


@runtime_checkable
class Inbox(Protocol):
    """Receipts of inbound messages (:attr:`Capability.INBOX`).

    A :class:`TicketChange` with a ``receipt`` writes it in the commit's transaction: if a
    receipt with that key exists and is not ``suspended``, the whole commit is refused with
    :class:`~helpkit.errors.DuplicateError` and nothing is written (so two processes ingesting
    one message make one ticket); a ``suspended`` receipt with that key is replaced (a
    release). The conformance suite's ``InboxCases`` check it.
    """

    def receipt(self, key: str) -> Receipt | None:
        """The receipt kept under ``key``, or ``None``."""
        ...

    def suspend(self, receipt: Receipt) -> Receipt:
        """Keep a ``suspended`` receipt (with its message); if ``key`` is taken, keep nothing
        and return the receipt already there."""
        ...

    def suspended(self, *, limit: int = 100, after: str | None = None) -> list[Receipt]:
        """Suspended receipts, oldest first (by ``received_at``, then key); ``after`` is the
        last key of the previous page."""
        ...

    def discard(self, key: str, *, now: datetime) -> Receipt:
        """Mark a suspended receipt ``discarded`` (dropping its message); a receipt that is
        not suspended raises :class:`~helpkit.errors.InvalidTransitionError`, an unknown key
        :class:`~helpkit.errors.NotFoundError`."""
        ...


@attrs.frozen(kw_only=True)
class RoutingState:
    """A group's routing state (:class:`Routing`): its version and round-robin cursor."""

    group_id: str = attrs.field(validator=ident)
    version: int = attrs.field(validator=count)
    """0 for a group never routed; each routing commit writes the version it read plus one."""
    cursor: str | None = attrs.field(default=None, validator=optional_text)
    """The agent round-robin chose last in the group (``None``: none yet)."""


@runtime_checkable
class Routing(Protocol):
    """What a store with :attr:`Capability.ROUTING` adds: routing states and agents' loads.

    Routing (:mod:`helpkit.router`) reads the states of the groups it decides for, then the
    loads of the candidate agents, and commits the ticket's change with those states at
    their version plus one (:attr:`TicketChange.routing`). The commit writes each state only
    if the stored version is still the one read (0: none stored), else it raises
    :class:`~helpkit.errors.ConflictError` and writes nothing at all; so routing decisions
    that read the same group are serialized, across threads and processes, and a load read
    after a version is never stale for the routers of that group.
    """

    def routing_states(self, group_ids: Sequence[str]) -> dict[str, RoutingState]:
        """The state of each group (version 0 and no cursor for one never routed)."""
        ...

    def agent_loads(
        self, agent_ids: Sequence[str], categories: frozenset[StatusCategory]
    ) -> dict[str, int]:
        """How many tickets are assigned to each agent with a status of one of
        ``categories`` (0 for an agent with none), counted from the stored tickets."""
        ...


@runtime_checkable
class KnowledgeBase(Protocol):
    """What a store with :attr:`Capability.KNOWLEDGE` adds: the knowledge base.

    Articles are values of :mod:`helpkit.knowledge`, changed by its pure functions and saved
    whole with the :class:`~helpkit.knowledge.ArticleChange` that records the change:
    :meth:`save_article` writes the article, its search documents
    (:func:`~helpkit.knowledge.search_documents`) and the audit entry at once, guarded by the
    article's ``revision``. Search ranks the documents of one kind (the published texts, or
    with ``drafts`` the current ones) holding any of the terms; each article appears once, in
    the variant a reader of ``locale`` gets. The conformance suite's ``KnowledgeCases`` check
    it.
    """

    def save_category(self, category: Category) -> None:
        """Insert or replace a category."""
        ...

    def categories(self) -> list[Category]:
        """Every category, by position then id."""
        ...

    def save_section(self, section: Section) -> None:
        """Insert or replace a section; its category must exist (NotFoundError)."""
        ...

    def sections(self, category_id: str | None = None) -> list[Section]:
        """The sections (of one category), by category, position, then id."""
        ...

    def save_article(self, article: Article, change: ArticleChange) -> None:
        """Save ``article`` with the audit entry ``change`` (of that article and revision),
        all or nothing: ConflictError when the stored revision is not ``article.revision -
        1`` (0: none stored), NotFoundError when its section does not exist."""
        ...

    def article(self, article_id: str) -> Article:
        """An article by id (NotFoundError)."""
        ...

    def articles(
        self, *, section_id: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[Article]:
        """Articles (of one section) by id, those after id ``after``."""
        ...

    def article_changes(self, article_id: str) -> list[ArticleChange]:
        """An article's audit trail, oldest first (NotFoundError for an unknown article)."""
        ...

    def search_articles(
        self,
        terms: Sequence[str],
        *,
        locale: str | None = None,
        drafts: bool = False,
        limit: int = 10,
    ) -> list[ArticleHit]:
        """The best ``limit`` articles holding any of ``terms`` (words, as
        :func:`~helpkit.knowledge.query_terms` gives them), best first: with ``drafts``, in
        their current text (what agents search), else in their published text (what
        customers search). Each article is searched in the variant a reader of ``locale``
        gets (exact tag, primary language, default locale; None: the default locale)."""
        ...

    def link_article(self, link: ArticleLink) -> bool:
        """Record that a ticket cites an article; False when it already did. NotFoundError
        for an unknown ticket or article."""
        ...

    def unlink_article(self, ticket_id: str, article_id: str) -> bool:
        """Forget that link; whether there was one."""
        ...

    def ticket_articles(self, ticket_id: str) -> list[ArticleLink]:
        """The links of a ticket, oldest first (then by article id)."""
        ...

    def article_tickets(self, article_id: str) -> list[ArticleLink]:
        """The links to an article, oldest first (then by ticket id)."""
        ...

    def record_suggestion(self, suggestion: Suggestion) -> None:
        """Keep a suggestion shown (DuplicateError for an id kept before)."""
        ...

    def mark_suggestion(self, suggestion_id: str, ticket_id: str) -> Suggestion:
        """Record the ticket opened after a suggestion (the first one recorded stays);
        NotFoundError for an unknown suggestion."""
        ...

    def suggestions(self, *, since: datetime, until: datetime) -> list[Suggestion]:
        """The suggestions shown at or after ``since`` and before ``until``, by instant then
        id."""
        ...


@runtime_checkable
class BlobStore(Protocol):
    """Where attachment bytes live, addressed by their SHA-256 (content-addressed: putting the
    same bytes twice keeps them once). Built-ins: ``memory://``, ``file:///folder`` and
    ``sqlite:///desk.db`` (rows of an SQLite store's file);
    plugins register more schemes through ``helpkit_register_blob_stores``."""

    def put(self, data: bytes) -> str:
        """Keep ``data`` durably; return its SHA-256 (lower-case hex)."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes kept under ``sha256``; :class:`~helpkit.errors.NotFoundError` if none."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether bytes are kept under ``sha256``."""
        ...

    def delete(self, sha256: str) -> bool:
        """Forget the bytes kept under ``sha256``; whether there were any."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


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


@runtime_checkable
class IntakeContext(DeskContext, Protocol):
    """What an inbound screen (``helpkit_screen_inbound``) sees of the desk: the
    :class:`DeskContext`, and what tells the desk's own mail from a stranger's."""

    @property
    def desk_id(self) -> str:
        """The id the desk writes in the ``X-Helpkit-Desk`` header of every outbound message."""
        ...

    @property
    def own_addresses(self) -> frozenset[str]:
        """The desk's own addresses (``intake.addresses``), lower-case."""
        ...


@functools.cache
def _members(protocol: type) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for cls in reversed(protocol.__mro__):
        if cls in (object, Protocol, Generic) or not getattr(cls, "_is_protocol", False):
            continue
        for name in (*cls.__dict__, *inspect.get_annotations(cls)):
            if not name.startswith("_"):
                names[name] = None
    return tuple(names)


def missing_members(obj: object, protocol: type) -> tuple[str, ...]:
    """The members of ``protocol`` (one of this module's) that ``obj`` lacks.

    Members are looked up as attribute access does, so a proxy that forwards to another object
    through ``__getattr__`` has them, on every Python version (``isinstance`` against a
    runtime-checkable protocol ignores ``__getattr__`` since Python 3.12).
    """
    missing = []
    for name in _members(protocol):
        try:
            getattr(obj, name)
        except AttributeError:
            missing.append(name)
        except Exception:
            continue
    return tuple(missing)


_P = TypeVar("_P")


def capable(store: object, capability: str, protocol: Callable[..., _P], *also: str) -> _P | None:
    """``store`` as ``protocol`` (one of this module's) when it declares ``capability`` (and
    every one of ``also``) and has every member of ``protocol`` (see :func:`missing_members`);
    None otherwise. How helpkit's own modules take up a store's optional capabilities: a
    declared capability whose methods are missing is not taken."""
    declared = getattr(store, "capabilities", ())
    if capability not in declared or any(other not in declared for other in also):
        return None
    if missing_members(store, cast(type, protocol)):
        return None
    return cast(_P, store)


def implements(obj: object, protocol: type) -> bool:
    """Whether ``obj`` has every member of ``protocol`` (see :func:`missing_members`)."""
    return not missing_members(obj, protocol)
