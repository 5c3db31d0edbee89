# Over 600 lines: the whole of the rules stores apply before they write, one function each,
# kept in one place so that every store (and a third party's) agrees on them.
"""The rules every store applies before it writes, shared so that all stores agree.

A store calls :func:`validate_change` on each change before touching anything (it checks the
change's receipt too), :func:`receipt_keys` on a batch it commits, :func:`check_suspension`
on a receipt it suspends, :func:`discard_receipt` to discard one,
:func:`check_record` on each contact, organization, agent and group it saves,
:func:`check_version` for the versioning of contacts and organizations, and
:func:`check_limit` on search limits. Domain objects already refuse bad values when they are
built (see :mod:`helpkit._checks`); these checks make a store refuse one forged past them too,
with the same :class:`~helpkit.errors.ValidationError` whichever store it is.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from helpkit._checks import INT64_MAX, check_int, check_text
from helpkit._records import replace
from helpkit._time import to_utc
from helpkit.errors import (
    ConflictError,
    DuplicateError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from helpkit.events import Event, TicketOpened
from helpkit.knowledge import (
    Article,
    ArticleChange,
    ArticleLink,
    Category,
    Section,
    Suggestion,
    words,
)
from helpkit.locales import check_locale
from helpkit.people import Contact
from helpkit.ports import (
    EXTERNAL_CURSOR_PREFIXES,
    Delivery,
    DeliveryState,
    Receipt,
    ReceiptState,
    RoutingState,
    TicketChange,
)
from helpkit.redaction import attachments_in

_Row = typing.TypeVar("_Row")
_Made = typing.TypeVar("_Made")

__all__ = [
    "COMMITTED_RECEIPTS",
    "KnowledgeSearch",
    "asked_addresses",
    "asked_ids",
    "attachments_in",
    "check_article_save",
    "check_cursor",
    "check_delivery",
    "check_kb_record",
    "check_key",
    "check_limit",
    "check_position",
    "check_record",
    "check_rewritten_event",
    "check_same_event",
    "check_search",
    "check_suspension",
    "check_version",
    "count_arguments",
    "discard_receipt",
    "duplicate_receipt",
    "feed_bounded",
    "in_asked_order",
    "new_contacts",
    "receipt_keys",
    "routing_conflict",
    "routing_states",
    "validate_change",
]

_CURSOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


def check_record(value: object, expected: type | None = None) -> None:
    """Run the checks of an attrs record again, and of every record it holds.

    Raises ValidationError when a value was forged past them (or a datetime is naive), or
    when ``value`` is not an ``expected`` instance. The checks are the record's own: every
    field validator, and the converter of each field that has no validator.
    """
    if expected is not None and not isinstance(value, expected):
        raise ValidationError(f"expected a {expected.__name__}; got {value!r:.60}")
    kind: type = type(value)
    plan = _plan(kind)
    if plan is None:
        return  # not a record
    validated, converted, nested = plan
    try:
        for name, validator, attribute in validated:
            validator(value, attribute, getattr(value, name))
        for name, converter in converted:
            converter(getattr(value, name))
    except ValidationError:
        raise
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(f"{type(value).__name__} holds a bad value: {exc}") from exc
    for name in nested:
        item = getattr(value, name)
        if isinstance(item, tuple | frozenset):
            for entry in item:
                check_record(entry)
        else:
            check_record(item)


_Validated = tuple[tuple[str, Callable[[Any, Any, Any], object], Any], ...]
_Converted = tuple[tuple[str, Callable[[Any], object]], ...]


@functools.cache
def _plan(cls: type) -> tuple[_Validated, _Converted, tuple[str, ...]] | None:
    """For an attrs class: its fields' validators (with their attributes), the converters of
    fields without a validator, and the fields that may hold other records (by type hints);
    ``None`` for any other class."""
    if not attrs.has(cls):
        return None
    fields = attrs.fields(cls)
    hints = typing.get_type_hints(cls)
    validated = tuple((f.name, f.validator, f) for f in fields if f.validator is not None)
    converted = tuple(
        (f.name, f.converter) for f in fields if f.validator is None and callable(f.converter)
    )
    nested = tuple(f.name for f in fields if _holds_records(hints.get(f.name)))
    return validated, converted, nested


def _holds_records(hint: object) -> bool:
    if isinstance(hint, type):
        return attrs.has(hint)
    return any(_holds_records(arg) for arg in typing.get_args(hint))


def validate_change(change: TicketChange, *, check_values: bool = True) -> None:
    """Check that a change is internally consistent; raise ValidationError if not.

    Its events must belong to its ticket and carry the consecutive seqs
    ``expected_seq + 1, expected_seq + 2, ...``, and the new state's seq must be the last
    event's. A change without events only guards ``expected_seq`` (it writes nothing), so its
    state's seq must be ``expected_seq``. Every value of the state and the events must pass
    the domain's checks (:func:`check_record`; ``check_values=False`` leaves that to a store
    that runs them anyway, as the memory store does when it copies values through the
    codec, whose decoders run every check). Stores call this before touching anything; it
    does not look at stored data (that is the store's ``expected_seq`` check).

    A change's ``receipt`` (see :class:`~helpkit.ports.Inbox`) must be a valid
    :class:`~helpkit.ports.Receipt` of the change's ticket, ``created`` or ``commented``
    (:data:`COMMITTED_RECEIPTS`: a ``suspended`` one is kept by ``Inbox.suspend``, a
    ``discarded`` one only by ``Inbox.discard``), without its message (a receipt keeps the
    message only while it is suspended), on a change that has events.
    """
    if not isinstance(change, TicketChange):
        raise ValidationError(f"commit takes TicketChange objects, got {type(change).__name__}")
    ticket, expected = change.ticket, change.expected_seq
    if not isinstance(expected, int) or isinstance(expected, bool) or expected < 0:
        raise ValidationError(f"expected_seq must be an integer >= 0; got {expected!r}")
    number = ticket.number
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ValidationError(
            f"ticket {ticket.id!r} has number {number!r}: a ticket number is a positive "
            "integer, or 0 for the store to number it"
        )
    if change.receipt is not None:
        _check_committed_receipt(change)
    if change.routing:
        _check_routing(change)
    if change.contacts:
        _check_contacts(change)
    if not change.events:
        if expected == 0:
            raise ValidationError(f"new ticket {ticket.id!r} needs at least its opening event")
        if ticket.seq != expected:
            raise ValidationError(
                f"a change without events writes nothing; ticket {ticket.id!r} has seq "
                f"{ticket.seq} but expected_seq is {expected}"
            )
        return
    for offset, event in enumerate(change.events, start=1):
        if not isinstance(event, Event):
            raise ValidationError(f"not an event: {event!r}")
        if event.ticket_id != ticket.id:
            raise ValidationError(
                f"event {event.TYPE} for ticket {event.ticket_id!r} in a change of {ticket.id!r}"
            )
        if isinstance(event, TicketOpened) and event.number != number:
            raise ValidationError(
                f"ticket {ticket.id!r} has number {number} but its opening event says "
                f"{event.number}"
            )
        if event.seq != expected + offset:
            raise ValidationError(
                f"events of ticket {ticket.id!r} must have seqs {expected + 1}.."
                f"{expected + len(change.events)} in order; found seq {event.seq} at "
                f"position {offset}"
            )
    if ticket.seq != change.events[-1].seq:
        raise ValidationError(
            f"the state of ticket {ticket.id!r} has seq {ticket.seq}, but its last event "
            f"has seq {change.events[-1].seq}"
        )
    if check_values:
        check_record(ticket)
        for event in change.events:
            check_record(event)


def check_limit(limit: int) -> None:
    """A search ``limit`` is a positive integer; ValidationError if not."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= INT64_MAX:
        raise ValidationError(f"limit must be a positive integer; got {limit!r:.40}")


def check_version(kind: str, ident: str, stored: int | None, version: int) -> None:
    """The versioning rule of contacts and organizations, for any store.

    ``stored`` is the stored version (None when ``ident`` is new). A new one must be saved at
    version 1 (else NotFoundError); a known one at ``stored + 1`` (else ConflictError).
    """
    if stored is None:
        if version != 1:
            raise NotFoundError(
                f"cannot save {kind} {ident!r} at version {version}: it does not exist "
                "(a new one starts at version 1)"
            )
    elif version != stored + 1:
        raise ConflictError(
            f"{kind} {ident!r} is at version {stored}; saving version {version} would "
            f"overwrite a change you have not seen (expected version {stored + 1}). "
            "Reload and retry."
        )


def check_cursor(name: object) -> str:
    """A cursor name: letters, digits, ``.``, ``_``, ``:``, ``-`` (up to 200); else
    ValidationError."""
    if not isinstance(name, str) or not _CURSOR_NAME.fullmatch(name):
        raise ValidationError(
            f"a cursor name is letters, digits, '.', '_', ':' or '-'; got {name!r:.60}"
        )
    return name


def feed_bounded(name: str) -> bool:
    """Whether cursor ``name`` holds a change feed position (so never one beyond the last
    committed): every name but those of :data:`~helpkit.ports.EXTERNAL_CURSOR_PREFIXES`."""
    return not name.startswith(EXTERNAL_CURSOR_PREFIXES)


def check_position(position: object, what: str = "position") -> int:
    """A change feed position: an integer >= 0 that fits in 64 bits; else ValidationError."""
    if isinstance(position, bool) or not isinstance(position, int):
        raise ValidationError(f"{what} must be an integer >= 0; got {position!r:.40}")
    if not 0 <= position <= INT64_MAX:
        raise ValidationError(f"{what} must be in 0..{INT64_MAX}; got {position}")
    return position


def check_delivery(delivery: object, *, checked: bool = False) -> Delivery:
    """``delivery`` if it is a :class:`~helpkit.ports.Delivery` whose values pass their checks
    (and whose instants are aware); else ValidationError. ``checked=True`` (the relay's own
    deliveries, built by helpkit from checked values: see ``Outbox.enqueue``) only makes sure
    it is a Delivery."""
    if checked:
        if not isinstance(delivery, Delivery):
            raise ValidationError(f"expected a Delivery; got {delivery!r:.60}")
        return delivery
    check_record(delivery, Delivery)
    assert isinstance(delivery, Delivery)
    return delivery


def claimed_deliveries(
    deliveries: Sequence[Delivery],
    *,
    cursor: str,
    position: int,
    expected: int,
    owner: str,
    until: datetime,
    checked: bool = False,
) -> list[Delivery]:
    """The arguments of ``Outbox.enqueue_claimed`` checked, and ``deliveries`` as it stores
    them: each claimed by ``owner`` until ``until`` (one more claim); ValidationError on a bad
    cursor, position, owner, instant or delivery."""
    check_cursor(cursor)
    check_position(position)
    check_position(expected, "expected")
    check_text(owner, "owner")
    held_until = to_utc(until, "until")
    return [
        replace(
            check_delivery(d, checked=checked),
            claimed_by=owner,
            claimed_until=held_until,
            claims=d.claims + 1,
        )
        for d in deliveries
    ]


def revive_delivery(found: Delivery, at: datetime) -> Delivery:
    """What ``Outbox.revive`` stores for ``found`` at ``at``: pending again, due at once, with
    its attempts and claims reset and one more revival; InvalidTransitionError unless it is
    dead."""
    if found.state is not DeliveryState.DEAD:
        raise InvalidTransitionError(
            f"delivery {found.id!r} is {found.state.value}; only a dead one is revived"
        )
    return replace(
        found,
        state=DeliveryState.PENDING,
        attempts=0,
        claims=0,
        revivals=found.revivals + 1,
        next_attempt_at=at,
        claimed_by=None,
        claimed_until=None,
        updated_at=at,
    )


COMMITTED_RECEIPTS = frozenset({ReceiptState.CREATED, ReceiptState.COMMENTED})
"""The states of a receipt a commit writes (with the ticket change the message made)."""


def _check_committed_receipt(change: TicketChange) -> None:
    receipt, ticket_id = change.receipt, change.ticket.id
    check_record(receipt, Receipt)
    assert isinstance(receipt, Receipt)
    if receipt.state not in COMMITTED_RECEIPTS:
        raise ValidationError(
            f"receipt {receipt.key!r} is {receipt.state.value}: a commit writes a created or "
            "commented receipt (a suspended one is kept by Inbox.suspend, a discarded one by "
            "Inbox.discard)"
        )
    if receipt.ticket_id != ticket_id:
        raise ValidationError(
            f"receipt {receipt.key!r} names ticket {receipt.ticket_id!r} in a change of "
            f"ticket {ticket_id!r}"
        )
    if receipt.message is not None:
        raise ValidationError(
            f"receipt {receipt.key!r} is {receipt.state.value} but keeps its message: a "
            "receipt keeps the message only while it is suspended"
        )
    if not change.events:
        raise ValidationError(
            f"receipt {receipt.key!r} comes with a change of ticket {ticket_id!r} that has no "
            "events: a message that made no change has no receipt to commit"
        )


def receipt_keys(changes: Sequence[TicketChange]) -> dict[str, Receipt]:
    """The receipts of a batch of (validated) changes, by key; ValidationError when two
    changes of the batch carry the same key (one message makes one change)."""
    found: dict[str, Receipt] = {}
    for change in changes:
        receipt = change.receipt
        if receipt is None:
            continue
        if receipt.key in found:
            raise ValidationError(
                f"two changes of one commit carry receipt {receipt.key!r}: one message makes "
                "one change"
            )
        found[receipt.key] = receipt
    return found


def _check_contacts(change: TicketChange) -> None:
    contacts = change.contacts
    if not isinstance(contacts, tuple):
        raise ValidationError(f"a change's contacts are a tuple of Contact; got {contacts!r:.60}")
    for contact in contacts:
        check_record(contact, Contact)
        if contact.version != 1:
            raise ValidationError(
                f"contact {contact.id!r} comes with a ticket change at version "
                f"{contact.version}: a change carries new contacts only (version 1)"
            )
    if not change.events:
        raise ValidationError(
            f"contacts come with a change of ticket {change.ticket.id!r} that has no events: "
            "a change that writes nothing saves no contact"
        )


def new_contacts(changes: Sequence[TicketChange]) -> list[Contact]:
    """The new contacts of a batch of (validated) changes, in order; ValidationError when two
    of them share an id or an email address (each is saved once, owning its addresses)."""
    found: list[Contact] = []
    ids: set[str] = set()
    emails: set[str] = set()
    for change in changes:
        for contact in change.contacts:
            if contact.id in ids or emails.intersection(contact.emails):
                raise ValidationError(
                    f"contact {contact.id!r} shares its id or an address with another new "
                    "contact of the same commit"
                )
            ids.add(contact.id)
            emails.update(contact.emails)
            found.append(contact)
    return found


def _check_routing(change: TicketChange) -> None:
    states = change.routing
    if not isinstance(states, tuple):
        raise ValidationError(f"a change's routing is a tuple of RoutingState; got {states!r:.60}")
    for state in states:
        if not isinstance(state, RoutingState):
            raise ValidationError(f"a change's routing holds RoutingState; got {state!r:.60}")
        check_record(state, RoutingState)
        if state.version < 1:
            raise ValidationError(
                f"routing state of group {state.group_id!r} has version {state.version}: a "
                "commit writes the version it read plus one (1 or more)"
            )
    if not change.events:
        raise ValidationError(
            f"routing states come with a change of ticket {change.ticket.id!r} that has no "
            "events: a routing that changed nothing has nothing to commit"
        )


def routing_states(changes: Sequence[TicketChange]) -> list[RoutingState]:
    """The routing states of a batch of (validated) changes, in order; ValidationError when
    two of them name one group (a commit moves a group's state once)."""
    found: dict[str, RoutingState] = {}
    for change in changes:
        for state in change.routing:
            if state.group_id in found:
                raise ValidationError(
                    f"two routing states of group {state.group_id!r} in one commit: a commit "
                    "moves a group's routing state once"
                )
            found[state.group_id] = state
    return list(found.values())


def routing_conflict(state: RoutingState, stored: int) -> ConflictError:
    """The error a commit raises when the group's stored routing version is not the one the
    routing read (``state.version - 1``)."""
    return ConflictError(
        f"the routing state of group {state.group_id!r} is at version {stored}, not "
        f"{state.version - 1}: another routing decision was committed since it was read"
    )


def duplicate_receipt(stored: Receipt) -> DuplicateError:
    """The error a commit raises when the key of its receipt is taken by ``stored`` (a
    receipt that is not suspended)."""
    return DuplicateError(
        f"inbound message {stored.key!r} was received before ({stored.state.value}"
        + (f", ticket {stored.ticket_id!r}" if stored.ticket_id else "")
        + "): the commit is refused"
    )


def check_suspension(receipt: object) -> Receipt:
    """``receipt`` if it is a valid :class:`~helpkit.ports.Receipt` that
    ``Inbox.suspend`` may keep: ``suspended``, with its message and a reason; else
    ValidationError."""
    check_record(receipt, Receipt)
    assert isinstance(receipt, Receipt)
    if receipt.state is not ReceiptState.SUSPENDED:
        raise ValidationError(
            f"receipt {receipt.key!r} is {receipt.state.value}: suspend keeps suspended "
            "receipts (created and commented ones come with their commit)"
        )
    if receipt.message is None or receipt.reason is None:
        raise ValidationError(
            f"suspended receipt {receipt.key!r} needs its message and a reason (the message "
            "is what a release ingests)"
        )
    return receipt


def discard_receipt(found: Receipt | None, key: str, at: datetime) -> Receipt:
    """What ``Inbox.discard`` stores for ``found`` (the receipt under ``key``) at ``at``:
    discarded, without its message, updated at ``at``; NotFoundError when there is none,
    InvalidTransitionError unless it is suspended."""
    if found is None:
        raise NotFoundError(f"no inbound message with key {key!r:.200}")
    if found.state is not ReceiptState.SUSPENDED:
        raise InvalidTransitionError(
            f"inbound message {key!r:.200} is {found.state.value}; only a suspended one is "
            "discarded"
        )
    return replace(found, state=ReceiptState.DISCARDED, message=None, updated_at=at)


def check_key(key: object, what: str = "key") -> str:
    """An inbox key: non-blank text every store can hold; else ValidationError."""
    if not isinstance(key, str) or not check_text(key, what).strip():
        raise ValidationError(f"{what} must be a receipt key (non-blank text); got {key!r:.60}")
    return key


# --- privacy (issue #16): rewrites (helpkit.ports.Redaction)


def check_rewritten_event(event: object) -> Event:
    """An event handed to ``Redaction.rewrite``: an :class:`~helpkit.events.Event` whose
    values pass the domain's checks (ValidationError otherwise)."""
    if not isinstance(event, Event):
        raise ValidationError(f"rewrite takes events; got {event!r:.60}")
    check_record(event)
    return event


def check_same_event(stored: Event, new: Event) -> None:
    """Refuse (ValidationError) a rewrite that would change what an event is: its type,
    ticket, seq, time or actor."""
    if (type(stored), stored.ticket_id, stored.seq, stored.at, stored.actor) != (
        type(new),
        new.ticket_id,
        new.seq,
        new.at,
        new.actor,
    ):
        raise ValidationError(
            f"a rewrite keeps an event's type, ticket, seq, time and actor: "
            f"{stored.TYPE} {stored.ticket_id}/{stored.seq} cannot become {new.TYPE}"
        )


# --- end privacy
# ---------------------------------------------------------------- the knowledge base

_MAX_TERMS = 64


def check_kb_record(value: object, expected: type) -> None:
    """A category, section, link or suggestion checked again before a store keeps it."""
    if expected not in (Category, Section, ArticleLink, Suggestion):
        raise TypeError(f"not a knowledge base record: {expected!r}")
    check_record(value, expected)


def check_article_save(article: object, change: object) -> tuple[Article, ArticleChange]:
    """An article and the audit entry saved with it, checked again: the entry must be of
    that article and revision."""
    check_record(article, Article)
    check_record(change, ArticleChange)
    assert isinstance(article, Article) and isinstance(change, ArticleChange)
    try:
        Article(
            id=article.id,
            section_id=article.section_id,
            default_locale=article.default_locale,
            versions=article.versions,
            revision=article.revision,
            created_at=article.created_at,
            updated_at=article.updated_at,
        )  # the checks across versions, again
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"article {article.id!r} cannot be stored: {exc}") from exc
    if change.article_id != article.id or change.revision != article.revision:
        raise ValidationError(
            f"the audit entry of article {article.id!r} revision {article.revision} names "
            f"article {change.article_id!r} revision {change.revision}"
        )
    return article, change


@attrs.frozen
class KnowledgeSearch:
    """A search's arguments, checked: the terms, the locale and its primary language."""

    terms: tuple[str, ...]
    locale: str | None
    primary: str | None
    kind: str
    limit: int


def check_search(
    terms: Sequence[str], locale: str | None, drafts: bool, limit: int
) -> KnowledgeSearch:
    """A search's arguments checked: each term one word as
    :func:`~helpkit.knowledge.words` gives them (so no store reads it as query syntax), at
    most 64 of them; a language tag or None; a flag; a positive limit."""
    if isinstance(terms, str) or not isinstance(terms, Sequence):
        raise ValidationError(f"terms must be a list of words; got {terms!r:.60}")
    if len(terms) > _MAX_TERMS:
        raise ValidationError(f"a search takes at most {_MAX_TERMS} terms; got {len(terms)}")
    for term in terms:
        if not isinstance(term, str) or words(check_text(term, "a search term")) != [term]:
            raise ValidationError(
                f"a search term is one lower-case word without accents; got {term!r:.60}"
            )
    if drafts is not True and drafts is not False:
        raise ValidationError(f"drafts must be true or false; got {drafts!r:.60}")
    check_limit(limit)
    tag = None if locale is None else check_locale(locale)
    primary = None if tag is None else tag.split("-", 1)[0]
    return KnowledgeSearch(
        tuple(dict.fromkeys(terms)), tag, primary, "current" if drafts else "published", limit
    )


def asked_ids(ticket_ids: object) -> list[object]:
    """The ids a :meth:`helpkit.ports.TicketReads.get_tickets` call asks for, as a list; a
    :class:`~helpkit.errors.ValidationError` when ``ticket_ids`` is not a sequence of them (a
    bare string would otherwise be read character by character)."""
    if not isinstance(ticket_ids, Sequence) or isinstance(ticket_ids, (str, bytes, bytearray)):
        raise ValidationError(
            f"ticket ids are a list or tuple of ids, not {type(ticket_ids).__name__}"
        )
    return list(ticket_ids)


def asked_addresses(addresses: object) -> list[str]:
    """The addresses a :meth:`helpkit.ports.AgentEmails.agents_by_email` call asks for, each
    once, in their order; a :class:`~helpkit.errors.ValidationError` when ``addresses`` is not
    a collection of strings (a bare string would otherwise be read character by character)."""
    if not isinstance(addresses, Collection) or isinstance(addresses, (str, bytes, bytearray)):
        raise ValidationError(
            f"email addresses are a collection of strings, not {type(addresses).__name__}"
        )
    wanted = list(dict.fromkeys(addresses))
    for address in wanted:
        if not isinstance(address, str):
            raise ValidationError(f"an email address is a string, not {type(address).__name__}")
    return wanted


def count_arguments(
    requester_id: object, since: object, limit: object
) -> tuple[str, datetime, int]:
    """The arguments of a :meth:`helpkit.ports.RequesterCounts.count_recent_requests` call,
    checked: the requester id (text), ``since`` in UTC (aware: NaiveDatetimeError) and the
    limit (a positive integer); a :class:`~helpkit.errors.ValidationError` otherwise."""
    checked_id = check_text(requester_id, "requester_id")
    if not isinstance(since, datetime):
        raise ValidationError(f"since must be a datetime; got {since!r:.60}")
    return checked_id, to_utc(since, "since"), check_int(limit, "limit", minimum=1)


def in_asked_order(
    keys: Sequence[object], rows: Mapping[str, _Row], make: Callable[[_Row], _Made]
) -> list[_Made]:
    """``make(rows[key])`` for each of ``keys`` in their order (a key asked twice comes back
    twice): the answer of :meth:`helpkit.ports.TicketReads.get_tickets` from the rows a store
    read. :class:`~helpkit.errors.NotFoundError` for the first key with no row, a key that is
    not a string included."""
    found: list[_Made] = []
    for key in keys:
        row = rows.get(key) if isinstance(key, str) else None
        if row is None:
            raise NotFoundError(f"no ticket with id {key!r}")
        found.append(make(row))
    return found
