# Over 600 lines: MemoryStore is one class (the reference store of every capability) whose
# methods share one lock and its dictionaries.
"""The in-memory store: the reference implementation of :class:`helpkit.ports.Store`.

It keeps everything in dictionaries behind one lock, so it is thread-safe but neither
persistent nor shared between processes; it has the change feed, the outbox and the inbox.
Ticket states, events and receipts are copied through the same JSON-safe codec a persistent
store uses, so what it hands back is exactly what a database round trip would give, and
nothing a caller holds can change what it stores.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from helpkit._checks import check_text
from helpkit._codec import decoder, encoder
from helpkit._records import replace
from helpkit._time import to_utc
from helpkit.errors import (
    ConflictError,
    DuplicateError,
    NotFoundError,
    SchemaError,
    StoreError,
    UnknownBackendError,
    ValidationError,
)
from helpkit.events import Event, event_from_dict, event_to_dict
from helpkit.people import (
    Agent,
    Contact,
    Group,
    Organization,
    normalize_domain,
    normalize_email,
    normalize_name,
)
from helpkit.ports import (
    Capability,
    Change,
    Delivery,
    DeliveryState,
    Receipt,
    ReceiptState,
    RoutingState,
    TicketChange,
)
from helpkit.queries import Page, TicketQuery
from helpkit.stores.contract import (
    asked_addresses,
    asked_ids,
    attachments_in,
    check_cursor,
    check_delivery,
    check_key,
    check_limit,
    check_position,
    check_record,
    check_rewritten_event,
    check_same_event,
    check_suspension,
    check_version,
    claimed_deliveries,
    count_arguments,
    discard_receipt,
    duplicate_receipt,
    feed_bounded,
    new_contacts,
    receipt_keys,
    revive_delivery,
    routing_conflict,
    routing_states,
    validate_change,
)
from helpkit.stores.memory_knowledge import KnowledgeMixin
from helpkit.tickets import StatusCategory, Ticket

__all__ = ["MemoryStore", "check_limit", "check_version", "memory_store_factory", "validate_change"]


def _copy_ticket(ticket: Ticket) -> Ticket:
    # Round trip through the storage codec: the stored copy shares no mutable object with the
    # caller, and data a persistent store could not write is refused here too.
    try:
        data = encoder(Ticket)(ticket)
        copied: Ticket = decoder(Ticket)(data)
    except (SchemaError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ValidationError(f"ticket {ticket.id!r} cannot be stored: {exc}") from exc
    return copied


def _copy_receipt(receipt: Receipt) -> Receipt:
    try:
        copied: Receipt = decoder(Receipt)(encoder(Receipt)(receipt))
    except (SchemaError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ValidationError(f"receipt {receipt.key!r} cannot be stored: {exc}") from exc
    return copied


def _copy_event(event: Event) -> Event:
    try:
        return event_from_dict(event_to_dict(event))
    except (SchemaError, TypeError, ValueError, AttributeError, KeyError) as exc:
        raise ValidationError(f"event {event.TYPE} cannot be stored: {exc}") from exc


class MemoryStore(KnowledgeMixin):
    """A thread-safe, non-persistent store for tests, examples and single-process hosts."""

    capabilities: frozenset[str] = frozenset(
        {
            Capability.CHANGE_FEED,
            Capability.OUTBOX,
            Capability.CLAIMED_ENQUEUE,
            Capability.FEED_WAKEUP,
            Capability.INBOX,
            Capability.ROUTING,
            Capability.REDACTION,
            Capability.PURGE,
            Capability.KNOWLEDGE,
            Capability.NEW_CONTACTS,
            Capability.TICKET_READS,
            Capability.SETTLED_COMMIT,
            Capability.AGENT_EMAILS,
            Capability.REQUESTER_COUNTS,
        }
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Commits that add to the feed wake the threads waiting in wait_for_changes.
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self._next_number = 1
        self._tickets: dict[str, Ticket] = {}
        self._events: dict[str, list[Event]] = {}
        self._numbers: dict[int, str] = {}
        self._contacts: dict[str, Contact] = {}
        self._contact_emails: dict[str, str] = {}
        self._organizations: dict[str, Organization] = {}
        self._organization_domains: dict[str, str] = {}
        self._agents: dict[str, Agent] = {}
        self._groups: dict[str, Group] = {}
        # Position p is self._feed[p - 1]; None where a purged ticket's event was.
        self._feed: list[Event | None] = []
        self._cursors: dict[str, int] = {}
        self._outbox: dict[str, Delivery] = {}
        self._inbox: dict[str, Receipt] = {}
        self._routing: dict[str, RoutingState] = {}
        self._init_knowledge()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._tickets)} tickets"
        return f"<MemoryStore {state}>"

    def _check_open(self) -> None:
        # Called with the lock held.
        if self._closed:
            raise StoreError("this MemoryStore is closed")

    # ------------------------------------------------------------ tickets

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        """Append events and save states atomically; ConflictError on a stale ``expected_seq``.

        Changes apply in order, so a batch may carry several changes of one ticket, each
        building on the previous one's seq. A ticket with number 0 is numbered here (the
        next number after the highest stored, or its stored number); the changes are
        returned as written. A change's receipt is kept with it; DuplicateError (writing
        nothing) when its key is taken by a receipt that is not suspended. A change's
        routing states are kept with it, each only if the stored version is the one before
        it (else ConflictError, writing nothing); its new contacts are saved with it
        (DuplicateError, writing nothing, when another contact owns one of their addresses).
        """
        with self._lock:
            return self._commit_held(changes)

    def commit_settled(
        self,
        changes: Sequence[TicketChange],
        states: Sequence[str | None] | None,
        results: Sequence[Delivery],
        *,
        owner: str,
    ) -> tuple[list[TicketChange], int]:
        """:meth:`commit` and :meth:`settle` (of the relay's results, ``checked``) at once:
        the results are stored when the changes are, and not when the commit is refused (see
        :class:`helpkit.ports.SettledCommits`). The memory store keeps no timer states:
        ``states`` is not kept."""
        check_text(owner, "owner")
        valid = [check_delivery(d, checked=True) for d in results]
        if states is not None and (not isinstance(states, Sequence) or len(states) != len(changes)):
            raise ValidationError(
                f"commit_settled takes one state per change: {len(changes)} changes, "
                f"states {states!r:.60}"
            )
        with self._lock:
            written = self._commit_held(changes)
            return written, self._settle_held(valid, owner)

    def _commit_held(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        """:meth:`commit`, called with the lock held."""
        self._check_open()
        states: dict[str, Ticket] = {}
        appended: dict[str, list[Event]] = {}
        numbers: dict[int, str] = {}
        written: list[TicketChange] = []
        feed: list[Event] = []  # in commit order: change by change, event by event
        next_number = self._next_number
        for change in changes:
            # Values are checked by the copy below (the codec's decoders run every check).
            validate_change(change, check_values=False)
            ticket_id = change.ticket.id
            current = states.get(ticket_id) or self._tickets.get(ticket_id)
            current_seq = current.seq if current is not None else 0
            if current_seq != change.expected_seq:
                raise ConflictError(
                    f"ticket {ticket_id!r} is at seq {current_seq}, not "
                    f"{change.expected_seq}: it changed since it was read. Reload and retry."
                )
            if not change.events:
                # It writes nothing; a number left to the store is the stored one.
                if change.ticket.number == 0 and current is not None:
                    change = change.with_number(current.number)
                written.append(change)
                continue
            number = change.ticket.number
            if current is None:
                if number == 0:
                    number = next_number
                owner = numbers.get(number) or self._numbers.get(number)
                if owner is not None and owner != ticket_id:
                    raise DuplicateError(
                        f"ticket number {number} already belongs to ticket {owner!r}"
                    )
                numbers[number] = ticket_id
                next_number = max(next_number, number + 1)
            elif number == 0:
                number = current.number
            elif number != current.number:
                raise ValidationError(
                    f"ticket {ticket_id!r} has number {current.number}; it cannot change"
                )
            change = change.with_number(number)
            states[ticket_id] = _copy_ticket(change.ticket)
            copies = [_copy_event(e) for e in change.events]
            appended.setdefault(ticket_id, []).extend(copies)
            feed.extend(copies)
            written.append(change)
        receipts = receipt_keys(written)
        for key in receipts:
            stored = self._inbox.get(key)
            if stored is not None and stored.state is not ReceiptState.SUSPENDED:
                raise duplicate_receipt(stored)
        copied = [_copy_receipt(r) for r in receipts.values()]
        contacts = new_contacts(written)
        for contact in contacts:
            self._check_new_contact(contact)
        moved = routing_states(written)
        for routed in moved:
            stored_version = self._routing_version(routed.group_id)
            if stored_version != routed.version - 1:
                raise routing_conflict(routed, stored_version)
        # Everything is checked: from here on nothing can fail, so the write is all or none.
        for contact in contacts:
            for email in contact.emails:
                self._contact_emails[email] = contact.id
            self._contacts[contact.id] = contact
        for receipt in copied:
            self._inbox[receipt.key] = receipt
        for routed in moved:
            self._routing[routed.group_id] = routed
        for ticket_id, state in states.items():
            self._tickets[ticket_id] = state
            self._events.setdefault(ticket_id, []).extend(appended[ticket_id])
            self._numbers[state.number] = ticket_id
        self._next_number = next_number
        if feed:
            self._feed.extend(feed)
            self._changed.notify_all()
        return written

    def _routing_version(self, group_id: str) -> int:
        stored = self._routing.get(group_id)
        return 0 if stored is None else stored.version

    # ------------------------------------------------------------ routing

    def routing_states(self, group_ids: Sequence[str]) -> dict[str, RoutingState]:
        """The routing state of each group (version 0 for one never routed)."""
        wanted = [check_text(g, "a group id") for g in group_ids]
        with self._lock:
            self._check_open()
            return {g: self._routing.get(g) or RoutingState(group_id=g, version=0) for g in wanted}

    def agent_loads(
        self, agent_ids: Sequence[str], categories: frozenset[StatusCategory]
    ) -> dict[str, int]:
        """Tickets assigned to each agent whose category is one of ``categories``."""
        loads = {check_text(a, "an agent id"): 0 for a in agent_ids}
        wanted = frozenset(StatusCategory(c) for c in categories)
        with self._lock:
            self._check_open()
            for ticket in self._tickets.values():
                if ticket.assignee_id in loads and ticket.category in wanted:
                    loads[ticket.assignee_id] += 1
        return loads

    # ------------------------------------------------------------ change feed

    def changes(self, *, after: int = 0, limit: int = 1000) -> list[Change]:
        """Committed events with a position above ``after``, in order, at most ``limit``."""
        check_position(after, "after")
        check_limit(limit)
        with self._lock:
            self._check_open()
            found: list[Change] = []
            position = after
            while len(found) < limit and position < len(self._feed):
                event = self._feed[position]
                position += 1
                if event is not None:
                    found.append(Change(position, event))
        return found

    def wait_for_changes(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a commit to add a position above ``after``:
        True when the feed holds one (at once if it already does), False when the time ran
        out (or the store was closed meanwhile)."""
        check_position(after, "after")
        if (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not 0 <= timeout < float("inf")
        ):
            raise ValidationError(f"timeout must be a number of seconds >= 0; got {timeout!r}")
        with self._changed:
            self._check_open()
            self._changed.wait_for(lambda: self._closed or len(self._feed) > after, timeout)
            return not self._closed and len(self._feed) > after

    def last_position(self) -> int:
        """The highest position committed so far (0 when nothing was)."""
        with self._lock:
            self._check_open()
            return len(self._feed)

    def cursor(self, name: str) -> int:
        """The position saved under ``name`` (0 if none was)."""
        check_cursor(name)
        with self._lock:
            self._check_open()
            return self._cursors.get(name, 0)

    def cursors(self) -> dict[str, int]:
        """Every saved cursor, by name."""
        with self._lock:
            self._check_open()
            return dict(sorted(self._cursors.items()))

    def save_cursor(self, name: str, position: int, *, expected: int | None = None) -> None:
        """Save ``position`` under ``name`` (only if it still holds ``expected``, if given)."""
        check_cursor(name)
        check_position(position)
        if expected is not None:
            check_position(expected, "expected")
        with self._lock:
            self._check_open()
            if position > len(self._feed) and feed_bounded(name):
                raise ValidationError(
                    f"position {position} is beyond the last committed one ({len(self._feed)})"
                )
            stored = self._cursors.get(name, 0)
            if expected is not None and stored != expected:
                raise ConflictError(
                    f"cursor {name!r} is at {stored}, not {expected}: another consumer moved it"
                )
            self._cursors[name] = position

    def _ticket_exists(self, ticket_id: str) -> bool:
        # Called with the lock held (the knowledge base's links).
        return ticket_id in self._tickets

    def get_ticket(self, ticket_id: str) -> Ticket:
        """The current state of a ticket."""
        with self._lock:
            self._check_open()
            try:
                return self._tickets[ticket_id]
            except KeyError:
                raise NotFoundError(f"no ticket with id {ticket_id!r}") from None

    def get_tickets(self, ticket_ids: Sequence[str]) -> list[Ticket]:
        """The current states of ``ticket_ids``, in their order, read at once (see
        :class:`helpkit.ports.TicketReads`)."""
        asked = asked_ids(ticket_ids)
        with self._lock:
            self._check_open()
            tickets = []
            for ticket_id in asked:
                ticket = self._tickets.get(ticket_id) if isinstance(ticket_id, str) else None
                if ticket is None:
                    raise NotFoundError(f"no ticket with id {ticket_id!r}")
                tickets.append(ticket)
            return tickets

    def get_ticket_by_number(self, number: int) -> Ticket:
        """The ticket with that number."""
        with self._lock:
            self._check_open()
            ticket_id = self._numbers.get(number)
            if ticket_id is None:
                raise NotFoundError(f"no ticket #{number}")
            return self._tickets[ticket_id]

    def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
        """A ticket's events with seq > ``after_seq``, in order."""
        with self._lock:
            self._check_open()
            try:
                events = self._events[ticket_id]
            except KeyError:
                raise NotFoundError(f"no ticket with id {ticket_id!r}") from None
            # Seqs are 1, 2, 3, ... so the events after ``after_seq`` start at that index.
            return events[max(after_seq, 0) :]

    def query(self, query: TicketQuery) -> Page[Ticket]:
        """Tickets matching ``query``, in its order, one page at a time."""
        with self._lock:
            self._check_open()
            tickets = list(self._tickets.values())
        return query.page(tickets)

    # ------------------------------------------------------------ outbox

    def enqueue(
        self,
        deliveries: Sequence[Delivery],
        *,
        cursor: str,
        position: int,
        expected: int,
        checked: bool = False,
    ) -> int:
        """Add the new deliveries and move ``cursor`` from ``expected`` to ``position``."""
        check_cursor(cursor)
        check_position(position)
        check_position(expected, "expected")
        valid = [check_delivery(d, checked=checked) for d in deliveries]
        return len(self._add_deliveries(valid, cursor, position, expected))

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
        """:meth:`enqueue`, the new deliveries stored claimed by ``owner`` until ``until``;
        the deliveries added, as stored."""
        held = claimed_deliveries(
            deliveries,
            cursor=cursor,
            position=position,
            expected=expected,
            owner=owner,
            until=until,
            checked=checked,
        )
        return self._add_deliveries(held, cursor, position, expected)

    def _add_deliveries(
        self, deliveries: list[Delivery], cursor: str, position: int, expected: int
    ) -> list[Delivery]:
        """Store those of the checked ``deliveries`` not there yet and move ``cursor`` from
        ``expected`` to ``position``, atomically; the deliveries added."""
        with self._lock:
            self._check_open()
            if position > len(self._feed):
                raise ValidationError(
                    f"position {position} is beyond the last committed one ({len(self._feed)})"
                )
            stored = self._cursors.get(cursor, 0)
            if stored != expected:
                raise ConflictError(
                    f"cursor {cursor!r} is at {stored}, not {expected}: another relay moved it"
                )
            added = []
            for delivery in deliveries:
                if delivery.id not in self._outbox:
                    self._outbox[delivery.id] = delivery
                    added.append(delivery)
            self._cursors[cursor] = position
            return added

    def claim(self, *, owner: str, now: datetime, until: datetime, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` due, unheld pending deliveries for ``owner`` until ``until``."""
        check_text(owner, "owner")
        at, until = to_utc(now, "now"), to_utc(until, "until")
        check_limit(limit)
        with self._lock:
            self._check_open()
            due = sorted(
                (
                    d
                    for d in self._outbox.values()
                    if d.state is DeliveryState.PENDING
                    and d.next_attempt_at <= at
                    and (d.claimed_until is None or d.claimed_until <= at)
                ),
                key=lambda d: (d.next_attempt_at, d.id),
            )[:limit]
            claimed = []
            for delivery in due:
                held = replace(
                    delivery,
                    claimed_by=owner,
                    claimed_until=until,
                    claims=delivery.claims + 1,
                    updated_at=at,
                )
                self._outbox[delivery.id] = held
                claimed.append(held)
            return claimed

    def settle(self, results: Sequence[Delivery], *, owner: str, checked: bool = False) -> int:
        """Store the results of deliveries ``owner`` still holds, and release them."""
        check_text(owner, "owner")
        valid = [check_delivery(d, checked=checked) for d in results]
        with self._lock:
            return self._settle_held(valid, owner)

    def _settle_held(self, valid: Sequence[Delivery], owner: str) -> int:
        """:meth:`settle` of checked results, called with the lock held."""
        self._check_open()
        stored = 0
        for result in valid:
            held = self._outbox.get(result.id)
            if held is None or held.claimed_by != owner or held.state is not DeliveryState.PENDING:
                continue  # its claim lapsed and another relay took it
            self._outbox[result.id] = replace(result, claimed_by=None, claimed_until=None)
            stored += 1
        return stored

    def delivery(self, delivery_id: str) -> Delivery:
        """A delivery by id."""
        with self._lock:
            self._check_open()
            try:
                return self._outbox[delivery_id]
            except (KeyError, TypeError):
                raise NotFoundError(f"no delivery with id {delivery_id!r:.80}") from None

    def deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        ticket_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries (of one state, of one ticket), by id, those after id ``after``."""
        check_limit(limit)
        if state is not None and not isinstance(state, DeliveryState):
            raise ValidationError(f"state must be a DeliveryState; got {state!r:.40}")
        with self._lock:
            self._check_open()
            found = sorted(
                (
                    d
                    for d in self._outbox.values()
                    if (state is None or d.state is state)
                    and (ticket_id is None or d.ticket_id == ticket_id)
                    and (after is None or d.id > after)
                ),
                key=lambda d: d.id,
            )
            return found[:limit]

    def revive(self, delivery_id: str, *, now: datetime) -> Delivery:
        """Make a dead delivery pending again, due at ``now``, its attempts and claims reset."""
        at = to_utc(now, "now")
        with self._lock:
            self._check_open()
            found = self._outbox.get(delivery_id)
            if found is None:
                raise NotFoundError(f"no delivery with id {delivery_id!r:.80}")
            revived = revive_delivery(found, at)
            self._outbox[delivery_id] = revived
            return revived

    def purge(self, *, sent_before: datetime) -> int:
        """Forget the deliveries sent before ``sent_before``."""
        before = to_utc(sent_before, "sent_before")
        with self._lock:
            self._check_open()
            gone = [
                d.id
                for d in self._outbox.values()
                if d.state is DeliveryState.SENT and d.updated_at < before
            ]
            for delivery_id in gone:
                del self._outbox[delivery_id]
            return len(gone)

    # ------------------------------------------------------------ inbox

    def receipt(self, key: str) -> Receipt | None:
        """The receipt kept under ``key``, or ``None``."""
        check_key(key)
        with self._lock:
            self._check_open()
            return self._inbox.get(key)

    def suspend(self, receipt: Receipt) -> Receipt:
        """Keep a suspended receipt, unless its key is taken: then return the one there."""
        copied = _copy_receipt(check_suspension(receipt))
        with self._lock:
            self._check_open()
            return self._inbox.setdefault(copied.key, copied)

    def suspended(self, *, limit: int = 100, after: str | None = None) -> list[Receipt]:
        """Suspended receipts by ``received_at`` then key, those after key ``after``."""
        check_limit(limit)
        if after is not None:
            check_key(after, "after")
        with self._lock:
            self._check_open()
            waiting = [r for r in self._inbox.values() if r.state is ReceiptState.SUSPENDED]
            if after is not None:
                last = self._inbox.get(after)
                if last is None:
                    raise NotFoundError(f"no inbound message with key {after!r:.200}")
                waiting = [r for r in waiting if (r.received_at, r.key) > (last.received_at, after)]
        waiting.sort(key=lambda r: (r.received_at, r.key))
        return waiting[:limit]

    def discard(self, key: str, *, now: datetime) -> Receipt:
        """Mark a suspended receipt discarded, dropping its message."""
        check_key(key)
        at = to_utc(now, "now")
        with self._lock:
            self._check_open()
            discarded = discard_receipt(self._inbox.get(key), key, at)
            self._inbox[key] = discarded
            return discarded

    # ------------------------------------------------------------ privacy (issue #16)

    def rewrite(
        self,
        *,
        events: Sequence[Event] = (),
        deliveries: Sequence[Delivery] = (),
        receipts: Sequence[Receipt] = (),
    ) -> None:
        """Replace stored events (history and feed), deliveries and receipts by key."""
        new_events = [check_rewritten_event(e) for e in events]
        copies = [_copy_event(e) for e in new_events]
        new_deliveries = [check_delivery(d) for d in deliveries]
        new_receipts = [_copy_receipt(r) for r in receipts]
        with self._lock:
            self._check_open()
            for event in copies:
                history = self._events.get(event.ticket_id)
                if history is None or event.seq > len(history):
                    raise NotFoundError(f"no event {event.ticket_id}/{event.seq} is stored")
                check_same_event(history[event.seq - 1], event)
            for delivery in new_deliveries:
                stored_delivery = self._outbox.get(delivery.id)
                if stored_delivery is None:
                    raise NotFoundError(f"no delivery with id {delivery.id!r:.80}")
                if stored_delivery.ticket_id != delivery.ticket_id:
                    raise ValidationError(f"delivery {delivery.id!r} cannot change ticket")
            for receipt in new_receipts:
                if receipt.key not in self._inbox:
                    raise NotFoundError(f"no inbound message with key {receipt.key!r:.200}")
            # Everything is checked: from here on nothing can fail.
            wanted = {(e.ticket_id, e.seq): e for e in copies}
            for (ticket_id, seq), event in wanted.items():
                old = self._events[ticket_id][seq - 1]
                self._events[ticket_id][seq - 1] = event
                for index, kept in enumerate(self._feed):
                    if kept is old:
                        self._feed[index] = event
                        break
            for delivery in new_deliveries:
                self._outbox[delivery.id] = delivery
            for receipt in new_receipts:
                self._inbox[receipt.key] = receipt

    def receipts_of(self, ticket_id: str) -> list[Receipt]:
        """The receipts of the messages that made or commented on ``ticket_id``, by key."""
        wanted = check_text(ticket_id, "a ticket id")
        with self._lock:
            self._check_open()
            found = [r for r in self._inbox.values() if r.ticket_id == wanted]
        return sorted(found, key=lambda r: r.key)

    def blobs_in_use(self, sha256s: Sequence[str]) -> frozenset[str]:
        """Those of ``sha256s`` an attachment of a stored event refers to."""
        wanted = frozenset(check_text(s, "a SHA-256") for s in sha256s)
        with self._lock:
            self._check_open()
            histories = [list(h) for h in self._events.values()]
        used: set[str] = set()
        for history in histories:
            used |= attachments_in(history) & wanted
        return frozenset(used)

    def compact(self) -> None:
        """Nothing to do: rewritten and deleted records are gone once dropped (the memory is
        the process's)."""
        with self._lock:
            self._check_open()

    def purge_tickets(self, ticket_ids: Sequence[str]) -> list[str]:
        """Delete these tickets with their events, deliveries and receipts (the tickets
        holding the last feed position and the highest number stay)."""
        wanted = {check_text(t, "a ticket id") for t in ticket_ids}
        with self._lock:
            self._check_open()
            last = next((e for e in reversed(self._feed) if e is not None), None)
            if last is not None:
                wanted.discard(last.ticket_id)
            if self._numbers:
                wanted.discard(self._numbers[max(self._numbers)])
            gone = sorted(t for t in wanted if t in self._tickets)
            if not gone:
                return []
            dropped = {id(e) for t in gone for e in self._events[t]}
            for ticket_id in gone:
                ticket = self._tickets.pop(ticket_id)
                self._numbers.pop(ticket.number, None)
                del self._events[ticket_id]
            self._feed = [None if e is None or id(e) in dropped else e for e in self._feed]
            purged = set(gone)
            for key in [k for k, d in self._outbox.items() if d.ticket_id in purged]:
                del self._outbox[key]
            for key in [k for k, r in self._inbox.items() if r.ticket_id in purged]:
                del self._inbox[key]
            return gone

    # ------------------------------------------------------------ contacts

    def _check_new_contact(self, contact: Contact) -> None:
        """Under the lock: ConflictError if ``contact`` (version 1) is stored already,
        DuplicateError if another contact owns one of its addresses."""
        check_version("contact", contact.id, self._stored_contact_version(contact.id), 1)
        self._check_emails_free(contact)

    def _stored_contact_version(self, contact_id: str) -> int | None:
        stored = self._contacts.get(contact_id)
        return stored.version if stored else None

    def _check_emails_free(self, contact: Contact) -> None:
        for email in contact.emails:
            owner = self._contact_emails.get(email)
            if owner is not None and owner != contact.id:
                raise DuplicateError(f"email {email!r} already belongs to contact {owner!r}")

    def save_contact(self, contact: Contact) -> None:
        """Insert (version 1) or update (stored version + 1); emails belong to one contact."""
        check_record(contact, Contact)
        with self._lock:
            self._check_open()
            stored = self._contacts.get(contact.id)
            check_version(
                "contact", contact.id, stored.version if stored else None, contact.version
            )
            self._check_emails_free(contact)
            if stored is not None:
                for email in stored.emails:
                    del self._contact_emails[email]
            for email in contact.emails:
                self._contact_emails[email] = contact.id
            self._contacts[contact.id] = contact

    def get_contact(self, contact_id: str) -> Contact:
        """A contact by id."""
        with self._lock:
            self._check_open()
            try:
                return self._contacts[contact_id]
            except KeyError:
                raise NotFoundError(f"no contact with id {contact_id!r}") from None

    def contact_by_email(self, email: str) -> Contact:
        """The contact owning ``email`` (case-insensitive)."""
        try:
            key = normalize_email(email)
        except ValidationError:
            raise NotFoundError(f"no contact with email {email!r}") from None
        with self._lock:
            self._check_open()
            owner = self._contact_emails.get(key)
            if owner is None:
                raise NotFoundError(f"no contact with email {email!r}")
            return self._contacts[owner]

    def find_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        """Contacts whose normalized name contains the normalized ``text``, by name then id."""
        check_limit(limit)
        key = normalize_name(text)
        with self._lock:
            self._check_open()
            found = [c for c in self._contacts.values() if key in c.name_key]
        found.sort(key=lambda c: (c.name_key, c.id))
        return found[:limit]

    # ------------------------------------------------------------ organizations

    def save_organization(self, organization: Organization) -> None:
        """Insert or update (versioned like contacts); domains belong to one organization."""
        check_record(organization, Organization)
        with self._lock:
            self._check_open()
            org = organization
            stored = self._organizations.get(org.id)
            check_version("organization", org.id, stored.version if stored else None, org.version)
            for domain in org.domains:
                owner = self._organization_domains.get(domain)
                if owner is not None and owner != org.id:
                    raise DuplicateError(
                        f"domain {domain!r} already belongs to organization {owner!r}"
                    )
            if stored is not None:
                for domain in stored.domains:
                    del self._organization_domains[domain]
            for domain in org.domains:
                self._organization_domains[domain] = org.id
            self._organizations[org.id] = org

    def get_organization(self, organization_id: str) -> Organization:
        """An organization by id."""
        with self._lock:
            self._check_open()
            try:
                return self._organizations[organization_id]
            except KeyError:
                raise NotFoundError(f"no organization with id {organization_id!r}") from None

    def organization_by_domain(self, domain: str) -> Organization:
        """The organization owning ``domain`` (case-insensitive)."""
        try:
            key = normalize_domain(domain)
        except ValidationError:
            raise NotFoundError(f"no organization with domain {domain!r}") from None
        with self._lock:
            self._check_open()
            owner = self._organization_domains.get(key)
            if owner is None:
                raise NotFoundError(f"no organization with domain {domain!r}")
            return self._organizations[owner]

    def find_organizations(self, text: str, *, limit: int = 50) -> list[Organization]:
        """Organizations whose normalized name contains the normalized ``text``, by name."""
        check_limit(limit)
        key = normalize_name(text)
        with self._lock:
            self._check_open()
            found = [o for o in self._organizations.values() if key in o.name_key]
        found.sort(key=lambda o: (o.name_key, o.id))
        return found[:limit]

    # ------------------------------------------------------------ agents and groups

    def save_agent(self, agent: Agent) -> None:
        """Insert or replace an agent."""
        check_record(agent, Agent)
        with self._lock:
            self._check_open()
            self._agents[agent.id] = agent

    def get_agent(self, agent_id: str) -> Agent:
        """An agent by id."""
        with self._lock:
            self._check_open()
            try:
                return self._agents[agent_id]
            except KeyError:
                raise NotFoundError(f"no agent with id {agent_id!r}") from None

    def list_agents(self) -> list[Agent]:
        """All agents, by id."""
        with self._lock:
            self._check_open()
            return sorted(self._agents.values(), key=lambda a: a.id)

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        """The agents of those email addresses, by id (:class:`helpkit.ports.AgentEmails`)."""
        wanted = set(asked_addresses(addresses))
        with self._lock:
            self._check_open()
            found = [a for a in self._agents.values() if a.email is not None and a.email in wanted]
        return sorted(found, key=lambda a: a.id)

    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        """How many tickets of ``requester_id`` were created after ``since``, up to ``limit``
        (:class:`helpkit.ports.RequesterCounts`)."""
        requester_id, since, limit = count_arguments(requester_id, since, limit)
        with self._lock:
            self._check_open()
            found = sum(
                1
                for t in self._tickets.values()
                if t.requester_id == requester_id and t.created_at > since
            )
        return min(found, limit)

    def save_group(self, group: Group) -> None:
        """Insert or replace a group."""
        check_record(group, Group)
        with self._lock:
            self._check_open()
            self._groups[group.id] = group

    def get_group(self, group_id: str) -> Group:
        """A group by id."""
        with self._lock:
            self._check_open()
            try:
                return self._groups[group_id]
            except KeyError:
                raise NotFoundError(f"no group with id {group_id!r}") from None

    def list_groups(self) -> list[Group]:
        """All groups, by id."""
        with self._lock:
            self._check_open()
            return sorted(self._groups.values(), key=lambda g: g.id)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Drop all data; any later call raises StoreError. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            for table in self._tables():
                table.clear()
            self._feed.clear()
            self._clear_knowledge()
            self._changed.notify_all()

    def _tables(self) -> tuple[dict[Any, Any], ...]:
        return (
            self._tickets,
            self._events,
            self._numbers,
            self._contacts,
            self._contact_emails,
            self._organizations,
            self._organization_domains,
            self._agents,
            self._groups,
            self._cursors,
            self._outbox,
            self._inbox,
        )


def memory_store_factory(url: str) -> MemoryStore:
    """A new, empty :class:`MemoryStore` for the URL ``memory://`` (or ``memory:``)."""
    scheme, sep, rest = url.partition(":") if isinstance(url, str) else ("", "", "")
    if not sep or scheme.lower() != "memory":
        raise UnknownBackendError(f"the memory store serves 'memory://' URLs, not {url!r}")
    if rest not in ("", "//"):
        raise ValidationError(
            f"the memory store takes no path or options; use 'memory://' (got {url!r})"
        )
    return MemoryStore()
