"""Privacy: redact a comment, erase a contact, purge old closed tickets, clean up after.

The decisions are the domain's (:mod:`helpkit.redaction`); this service carries them out on a
store with the ``redaction`` and ``purge`` capabilities (:class:`helpkit.ports.Redaction`,
:class:`helpkit.ports.Purge`) and on the blob store:

- **redact**: the pipeline commits a ``comment_redacted`` event (who, when, why; never the
  text), then every record that holds the comment is rewritten in place: its events on
  every ticket that carries it (the ticket it was written on, the tickets it was merged into),
  the notifications that quote it, the outbox deliveries made from it or quoting it (body
  ``[redacted]``, its files dropped; one still pending is given up, so it is never sent), and
  the receipt of the message it came in (its message dropped). Its attachments' bytes are
  deleted from the blob store unless another comment still refers to them. A redaction that
  stopped half-way (a crash after the event) is finished by asking again: the rewrite is
  idempotent and no second event is recorded.
- **erase a contact**: every comment it wrote on the tickets it is a party to (requester or
  follower) is redacted, a ``contact_erased`` event is recorded on each of those tickets, its
  suspended messages are discarded, the deliveries addressed to it lose its address (one still
  pending is given up), and the contact becomes a tombstone (:func:`helpkit.redaction.tombstone`).
- **purge**: closed tickets closed before a cutoff are deleted whole
  (:meth:`helpkit.ports.Purge.purge_tickets`), then the blobs only they referred to.
- **compact**: the store's cleanup step (:meth:`helpkit.ports.Redaction.compact`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final, cast

import attrs

from helpkit import redaction
from helpkit.errors import ConfigError, InvalidTransitionError, NotFoundError, ValidationError
from helpkit.events import (
    CommentAdded,
    ContactErased,
    Event,
    MergeReceived,
    SatisfactionRated,
)
from helpkit.lifecycle import Outcome
from helpkit.outcomes import Draft
from helpkit.pipeline import Pipeline
from helpkit.ports import (
    BlobStore,
    Capability,
    Delivery,
    DeliveryState,
    Inbox,
    OutboundMessage,
    Outbox,
    Purge,
    Receipt,
    Recipient,
    Redaction,
    Store,
    implements,
)
from helpkit.queries import SortOrder, TicketQuery
from helpkit.tickets import Actor, ActorKind, StatusCategory, Ticket

__all__ = ["Erasure", "Privacy", "PurgeReport", "Redacted", "redact_delivery"]

log = logging.getLogger("helpkit.privacy")

_PAGE: Final = 200
_PURGE_BATCH: Final = 500
GIVEN_UP: Final = "redacted"
"""The error a pending delivery is given up with when what it carries was redacted."""


@attrs.frozen
class Redacted:
    """What a redaction rewrote: the comment, and how many records of each kind."""

    ticket_id: str
    comment_id: str
    recorded: bool
    """Whether this call recorded the ``comment_redacted`` event (False: it was recorded
    before, and this call finished or repeated the rewrite)."""
    events: int
    deliveries: int
    receipts: int
    blobs: int
    """Attachment blobs deleted."""


@attrs.frozen
class Erasure:
    """What erasing a contact did."""

    contact_id: str
    tickets: tuple[str, ...]
    """The tickets it was a party to (each got a ``contact_erased`` event)."""
    comments: tuple[Redacted, ...]
    deliveries: int
    """Deliveries addressed to it, rewritten without its address."""
    suspended: int
    """Its suspended messages, discarded."""


@attrs.frozen
class PurgeReport:
    """What a purge deleted (or, on a dry run, would delete)."""

    cutoff: datetime
    dry_run: bool
    tickets: tuple[str, ...]
    """The ids of the tickets deleted (a dry run: those that qualify)."""
    kept: tuple[str, ...]
    """Qualifying tickets the store kept: the one holding the change feed's last position
    or the highest number (see :meth:`helpkit.ports.Purge.purge_tickets`)."""
    blobs: int


def redact_delivery(
    delivery: Delivery,
    *,
    comment_id: str,
    event_ids: frozenset[str],
    texts: Sequence[str],
    shas: frozenset[str],
    now: datetime,
) -> Delivery | None:
    """``delivery`` without the comment ``comment_id``, or None when it does not carry it.

    It carries it when it was made from one of the events ``event_ids`` (``<ticket>-<seq>``:
    the comment's own ``comment_added``, a webhook of it), when it is the comment's reply
    (its message's ``comment_id``), or when its subject or body quotes one of ``texts``. Its
    body becomes ``[redacted]``, a quoting subject too, and its files of ``shas`` go (all of
    them for the comment's own message). A pending one is given up (dead, error
    ``redacted``), so no relay sends it.
    """
    message = delivery.message
    own = (
        message.comment_id == comment_id
        or message.comment_id.startswith(f"{comment_id}-")
        or any(delivery.id.startswith(f"{e}-") for e in event_ids)
    )
    quoted = any(t in message.body or t in message.subject for t in texts)
    files = tuple(a for a in message.attachments if a.sha256 not in shas)
    if not (own or quoted or files != message.attachments):
        return None
    subject = redaction.REDACTED if any(t in message.subject for t in texts) else message.subject
    new_message = attrs.evolve(
        message,
        body=redaction.REDACTED if own or quoted else message.body,
        subject=subject,
        attachments=files,
    )
    if new_message == message and delivery.state is not DeliveryState.PENDING:
        return None
    return _given_up(attrs.evolve(delivery, message=new_message), now)


def _given_up(delivery: Delivery, now: datetime) -> Delivery:
    if delivery.state is not DeliveryState.PENDING:
        return attrs.evolve(delivery, updated_at=now)
    return attrs.evolve(
        delivery,
        state=DeliveryState.DEAD,
        last_error=GIVEN_UP,
        claimed_by=None,
        claimed_until=None,
        updated_at=now,
    )


def _without_recipient(delivery: Delivery, contact_id: str, now: datetime) -> Delivery | None:
    message = delivery.message
    if not any(r.actor_kind == "contact" and r.actor_id == contact_id for r in message.to):
        return None
    to = tuple(
        Recipient(r.actor_kind, r.actor_id, redaction.ERASED_NAME, None)
        if r.actor_kind == "contact" and r.actor_id == contact_id
        else r
        for r in message.to
    )
    new_message: OutboundMessage = attrs.evolve(message, to=to)
    return _given_up(attrs.evolve(delivery, message=new_message), now)


class Privacy:
    """Redaction, erasure, purge and cleanup for one desk's store and blob store."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        blobs: Callable[[], BlobStore],
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._pipeline = pipeline
        self._blobs = blobs
        self._now = now

    # ------------------------------------------------------------ capabilities

    def _redaction(self) -> Redaction:
        if Capability.REDACTION not in getattr(self._store, "capabilities", ()) or not (
            implements(self._store, Redaction)
        ):
            raise ConfigError(
                f"{type(self._store).__name__} cannot redact (it lacks the "
                f"{Capability.REDACTION!r} capability)"
            )
        return cast(Redaction, self._store)

    def _purge(self) -> Purge:
        if Capability.PURGE not in getattr(self._store, "capabilities", ()) or not (
            implements(self._store, Purge)
        ):
            raise ConfigError(
                f"{type(self._store).__name__} cannot purge tickets (it lacks the "
                f"{Capability.PURGE!r} capability)"
            )
        return cast(Purge, self._store)

    def _outbox(self) -> Outbox | None:
        return cast(Outbox, self._store) if implements(self._store, Outbox) else None

    # ------------------------------------------------------------ redaction

    def redact(
        self, ticket_id: str, comment_id: str, actor: Actor, *, reason: str, attachments: bool
    ) -> Redacted:
        """Redact comment ``comment_id`` of ticket ``ticket_id`` (see the module)."""
        rewriter = self._redaction()
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("a redaction needs a reason (who asked for it, or why)")
        if not isinstance(attachments, bool):
            raise ValidationError(f"attachments must be true or false; got {attachments!r:.40}")
        history = self._store.events(ticket_id)
        comment = redaction.find_comment(history, comment_id)
        recorded = comment.id not in redaction.redacted_comments(history)
        if recorded:

            def decide(tickets: Sequence[Ticket], now: datetime) -> list[Outcome]:
                ticket = tickets[0]
                return [
                    redaction.decide(
                        ticket,
                        self._store.events(ticket.id),
                        comment.id,
                        actor=actor,
                        at=now,
                        reason=reason,
                        attachments=attachments,
                    )
                ]

            try:
                self._pipeline.run([ticket_id], decide)
            except InvalidTransitionError:
                recorded = False  # another writer recorded it first: finish the rewrite
        texts = redaction.quoted_texts(comment)
        shas = frozenset(a.sha256 for a in comment.attachments) if attachments else frozenset()
        counts = [0, 0, 0]
        for carrier in self._carriers(ticket_id, self._origin(ticket_id, comment.id)):
            for index, count in enumerate(
                self._rewrite(rewriter, carrier, comment.id, texts, shas, attachments)
            ):
                counts[index] += count
        deleted = self._delete_unused(rewriter, shas)
        log.info(
            "comment %s of ticket %s redacted by %s (%s)", comment.id, ticket_id, actor, reason
        )
        return Redacted(ticket_id, comment.id, recorded, counts[0], counts[1], counts[2], deleted)

    def _origin(self, ticket_id: str, comment_id: str) -> str:
        """The ticket comment ``comment_id`` (seen on ``ticket_id``) was written on: back
        through the merges that copied it, to its ``comment_added``."""
        current = ticket_id
        seen = {current}
        while True:
            source = next(
                (
                    e.source_id
                    for e in self._store.events(current)
                    if isinstance(e, MergeReceived) and any(c.id == comment_id for c in e.comments)
                ),
                None,
            )
            if source is None or source in seen:
                return current
            try:
                self._store.get_ticket(source)
            except NotFoundError:
                return current  # the source was purged: its copy went with it
            seen.add(source)
            current = source

    def _carriers(self, ticket_id: str, origin: str | None) -> list[str]:
        """The tickets that may carry a comment seen on ``ticket_id`` and first written on
        ``origin``: those two and every ticket either was merged into."""
        found: list[str] = []
        for start in (ticket_id, origin):
            current = start
            while current is not None and current not in found:
                try:
                    ticket = self._store.get_ticket(current)
                except NotFoundError:
                    break  # the origin was purged
                found.append(current)
                current = ticket.merged_into
        return found

    def _rewrite(
        self,
        rewriter: Redaction,
        ticket_id: str,
        comment_id: str,
        texts: Sequence[str],
        shas: frozenset[str],
        attachments: bool,
    ) -> tuple[int, int, int]:
        history = self._store.events(ticket_id)
        events = redaction.redact_events(history, comment_id, attachments=attachments, texts=texts)
        event_ids = frozenset(f"{e.ticket_id}-{e.seq}" for e in history if _carries(e, comment_id))
        now = self._now()
        deliveries: list[Delivery] = []
        for delivery in self._deliveries_of(ticket_id):
            new = redact_delivery(
                delivery,
                comment_id=comment_id,
                event_ids=event_ids,
                texts=texts,
                shas=shas,
                now=now,
            )
            if new is not None:
                deliveries.append(new)
        receipts: list[Receipt] = [
            attrs.evolve(r, message=None, updated_at=max(now, r.updated_at))
            for r in rewriter.receipts_of(ticket_id)
            if r.comment_id == comment_id and r.message is not None
        ]
        if events or deliveries or receipts:
            rewriter.rewrite(events=events, deliveries=deliveries, receipts=receipts)
        return len(events), len(deliveries), len(receipts)

    def _deliveries_of(self, ticket_id: str) -> Iterable[Delivery]:
        outbox = self._outbox()
        if outbox is None:
            return
        after: str | None = None
        while True:
            page = outbox.deliveries(ticket_id=ticket_id, after=after, limit=_PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].id

    def _delete_unused(self, rewriter: Redaction, shas: frozenset[str]) -> int:
        if not shas:
            return 0
        blobs = self._blobs()
        deleted = 0
        for sha in sorted(shas - rewriter.blobs_in_use(sorted(shas))):
            if blobs.delete(sha):
                deleted += 1
        return deleted

    # ------------------------------------------------------------ erasure

    def erase_contact(self, contact_id: str, actor: Actor, *, reason: str) -> Erasure:
        """Erase contact ``contact_id`` (see the module)."""
        rewriter = self._redaction()
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("an erasure needs a reason (who asked for it, or why)")
        contact = self._store.get_contact(contact_id)
        party = Actor(ActorKind.CONTACT, contact.id)
        tickets = self._tickets_of(contact.id, party)
        why = f"erasure of contact {contact.id}: {reason.strip()}"
        redacted: list[Redacted] = []
        # The comments it left with its satisfaction ratings go too (the rating stays);
        # redacting comments and recording the erasure leave these events as they are.
        rated: list[Event] = []
        for ticket_id in tickets:
            events = self._store.events(ticket_id)
            rated.extend(
                attrs.evolve(event, comment=None)
                for event in events
                if isinstance(event, SatisfactionRated)
                and event.actor == party
                and event.comment is not None
            )
            for comment in redaction.comments_of(events):
                if comment.author == party and not comment.redacted:
                    redacted.append(
                        self.redact(ticket_id, comment.id, actor, reason=why, attachments=True)
                    )
        for ticket_id in tickets:

            def decide(found: Sequence[Ticket], now: datetime) -> list[Outcome]:
                ticket = found[0]
                if any(
                    isinstance(e, ContactErased) and e.contact_id == contact.id
                    for e in self._store.events(ticket.id)
                ):
                    return [Outcome(ticket, (), ticket.seq)]  # recorded by an earlier run
                draft = Draft(ticket, now, actor)
                draft.emit(ContactErased, ticket.id, contact_id=contact.id, reason=reason)
                return [draft.outcome()]

            self._pipeline.run([ticket_id], decide)
        if rated:
            rewriter.rewrite(events=rated)
        now = self._now()
        deliveries: list[Delivery] = []
        for ticket_id in tickets:
            for delivery in self._deliveries_of(ticket_id):
                new = _without_recipient(delivery, contact.id, now)
                if new is not None:
                    deliveries.append(new)
        if deliveries:
            rewriter.rewrite(deliveries=deliveries)
        suspended = self._discard_from(set(contact.emails), now)
        if not contact.erased:
            self._store.save_contact(redaction.tombstone(contact, now))
        log.info("contact %s erased by %s (%s)", contact.id, actor, reason)
        return Erasure(contact.id, tuple(tickets), tuple(redacted), len(deliveries), suspended)

    def _tickets_of(self, contact_id: str, party: Actor) -> list[str]:
        """The tickets ``contact_id`` is the requester of or follows (every ticket's state is
        read once: an erasure is rare)."""
        found: list[str] = []
        after: str | None = None
        while True:
            page = self._store.query(TicketQuery(sort=SortOrder.CREATED, limit=_PAGE, after=after))
            found.extend(
                t.id for t in page.items if t.requester_id == contact_id or party in t.followers
            )
            if page.next_cursor is None:
                return found
            after = page.next_cursor

    def _discard_from(self, emails: set[str], now: datetime) -> int:
        if not emails or not implements(self._store, Inbox):
            return 0
        inbox = cast(Inbox, self._store)
        keys: list[str] = []
        after: str | None = None
        while True:
            page = inbox.suspended(limit=_PAGE, after=after)
            keys.extend(
                r.key
                for r in page
                if r.message is not None and r.message.sender_address.lower() in emails
            )
            if len(page) < _PAGE:
                break
            after = page[-1].key
        for key in keys:
            inbox.discard(key, now=now)
        return len(keys)

    # ------------------------------------------------------------ purge

    def purge_closed(self, *, older_than: timedelta, dry_run: bool = False) -> PurgeReport:
        """Delete the tickets closed more than ``older_than`` ago (see the module)."""
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise ValidationError(f"older_than must be a positive duration; got {older_than!r}")
        if not isinstance(dry_run, bool):
            raise ValidationError(f"dry_run must be true or false; got {dry_run!r:.40}")
        purger = self._purge()
        cutoff = self._now() - older_than
        due = self._closed_before(cutoff)
        if dry_run:
            return PurgeReport(cutoff, True, tuple(due), (), 0)
        shas: set[str] = set()
        gone: list[str] = []
        for start in range(0, len(due), _PURGE_BATCH):
            batch = due[start : start + _PURGE_BATCH]
            for ticket_id in batch:
                shas |= redaction.attachments_in(self._store.events(ticket_id))
            gone.extend(purger.purge_tickets(batch))
        kept = tuple(sorted(set(due) - set(gone)))
        deleted = 0
        if shas and implements(self._store, Redaction):
            deleted = self._delete_unused(cast(Redaction, self._store), frozenset(shas))
        log.info("purged %d tickets closed before %s", len(gone), cutoff.isoformat())
        return PurgeReport(cutoff, False, tuple(sorted(gone)), kept, deleted)

    def _closed_before(self, cutoff: datetime) -> list[str]:
        found: list[str] = []
        after: str | None = None
        while True:
            page = self._store.query(
                TicketQuery(
                    categories={StatusCategory.CLOSED},
                    sort=SortOrder.CREATED,
                    limit=_PAGE,
                    after=after,
                )
            )
            found.extend(
                t.id for t in page.items if t.closed_at is not None and t.closed_at < cutoff
            )
            if page.next_cursor is None:
                return found
            after = page.next_cursor

    # ------------------------------------------------------------ cleanup

    def compact(self) -> None:
        """The store's cleanup step (:meth:`helpkit.ports.Redaction.compact`)."""
        self._redaction().compact()


def _carries(event: Event, comment_id: str) -> bool:
    if isinstance(event, CommentAdded):
        return event.comment.id == comment_id
    if isinstance(event, MergeReceived):
        return any(c.id == comment_id for c in event.comments)
    return False
