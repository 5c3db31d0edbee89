"""How the SQLite store turns helpkit's objects into stored values and back.

Tickets, events, contacts, organizations, agents and groups are kept as JSON (one encoder and
decoder per class); instants as integer microseconds since the epoch. A ticket change becomes
one row of the tickets table (in the order of ``_TICKET_COLUMNS``) and one row per event,
prepared before the write lock is taken (:class:`_Prepared`). A stored value that cannot be
read back is the file's fault and raises :class:`~helpkit.errors.SchemaError`.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from helpkit._codec import decoder, encoder
from helpkit._codec.text import dumps as compact_dumps
from helpkit.errors import HelpkitError, SchemaError, ValidationError
from helpkit.events import Event, TicketOpened, event_from_dict, event_to_dict
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.ports import TicketChange
from helpkit.queries import NONE_LAST
from helpkit.stores.contract import validate_change
from helpkit.tickets import Ticket

_NONE_LAST: Final = NONE_LAST  # a missing next deadline, as stored (and in sort keys)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_encode_ticket = encoder(Ticket)
_decode_ticket = decoder(Ticket)
_encode_contact = encoder(Contact)
_decode_contact = decoder(Contact)
_encode_organization = encoder(Organization)
_decode_organization = decoder(Organization)
_encode_agent = encoder(Agent)
_decode_agent = decoder(Agent)
_encode_group = encoder(Group)
_decode_group = decoder(Group)


def _micros(value: datetime) -> int:
    # The same integer as helpkit.queries' sort keys: exact microseconds since the epoch,
    # ``(value - _EPOCH) // timedelta(microseconds=1)`` in integer arithmetic (the timedelta
    # division converts both operands to microseconds through Python integers: slower).
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# Compact JSON from one C encoder made once (helpkit._codec.text). It escapes every non-ASCII
# character (ensure_ascii), so its output is always valid UTF-8.
_dumps: Final[Callable[[Any], str]] = compact_dumps


_T = TypeVar("_T")


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"stored {what} is not valid JSON: {exc}") from None


def _decoded(decode: Callable[[Any], _T], text: str, what: str) -> _T:
    """A stored value read back; a value that is not one is the file's fault: SchemaError."""
    data = _loads(text, what)
    try:
        return decode(data)
    except (HelpkitError, TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise SchemaError(
            f"stored {what} cannot be read ({type(exc).__name__}: {exc}): the file was "
            "changed outside helpkit or is damaged"
        ) from exc


_TicketRow = tuple[
    str,  # id
    int,  # number
    int,  # seq
    str,  # status
    str,  # category
    int,  # priority
    str | None,  # assignee_id
    str | None,  # group_id
    str,  # requester_id
    str | None,  # organization_id
    int,  # created_us
    int,  # updated_us
    str | None,  # sla_policy
    int,  # next_deadline_us
    int | None,  # next_check_us
    str,  # tags
    str,  # state
]
_EventRow = tuple[str, int, str, int, str, str]  # ticket_id, seq, type, at_us, actor, body


class _Prepared:
    """One change of a batch, encoded before the write lock is taken.

    Errors are kept, not raised, so they surface in the order the reference store raises
    them (validation, then the seq check, then the number check, then encoding). A ticket
    the store numbers (number 0) keeps its state and opening events as dicts until the
    commit knows the number; they are serialized once, with it.
    """

    __slots__ = (
        "change",
        "event_rows",
        "invalid",
        "pending_events",
        "pending_state",
        "row",
        "rows_error",
        "tags",
    )

    def __init__(self, change: TicketChange, *, checked: bool = False) -> None:
        # checked: the change comes from helpkit's pipeline, whose values the domain built
        # and checked (TimerStates.commit_planned); its shape is still checked here.
        self.change = change
        self.invalid: ValidationError | None = None
        self.rows_error: ValidationError | None = None
        self.row: _TicketRow | None = None
        self.event_rows: list[_EventRow] = []
        self.tags: frozenset[str] = frozenset()
        self.pending_state: dict[str, Any] | None = None
        self.pending_events: list[tuple[int, dict[str, Any]]] = []
        try:
            validate_change(change, check_values=not checked)
        except ValidationError as exc:
            self.invalid = exc
            return
        if change.events:
            try:
                self._encode()
            except ValidationError as exc:
                self.rows_error = exc

    def _encode(self) -> None:
        ticket = self.change.ticket
        unnumbered = ticket.number == 0
        try:
            tags = sorted(ticket.tags)
            state = _encode_ticket(ticket)
            if unnumbered:
                self.pending_state = state
            self.row = (
                ticket.id,
                ticket.number,
                ticket.seq,
                ticket.status,
                ticket.category._value_,  # .value is a Python-level property: slower
                int(ticket.priority),
                ticket.assignee_id,
                ticket.group_id,
                ticket.requester_id,
                ticket.organization_id,
                _micros(ticket.created_at),
                _micros(ticket.updated_at),
                ticket.sla_policy,
                _NONE_LAST if ticket.next_deadline is None else _micros(ticket.next_deadline),
                None if ticket.next_check is None else _micros(ticket.next_check),
                _dumps(tags) if tags else "[]",
                "" if unnumbered else _dumps(state),
            )
            _check_text(self.row[:_TAGS])  # tags and state are JSON: ASCII by construction
            if tags:
                _check_text(tuple(tags))  # but each tag is also a row of ticket_tags, as text
            self.tags = frozenset(tags)
        except (SchemaError, TypeError, ValueError, AttributeError, KeyError) as exc:
            raise ValidationError(f"ticket {ticket.id!r} cannot be stored: {exc}") from exc
        for event in self.change.events:
            try:
                data = event_to_dict(event)
                if unnumbered and isinstance(event, TicketOpened):
                    self.pending_events.append((len(self.event_rows), data))
                    body = ""
                else:
                    body = _dumps(data)
                row = (
                    event.ticket_id,
                    event.seq,
                    event.TYPE,
                    _micros(event.at),
                    str(event.actor),
                    body,
                )
                _check_text(row[:5])  # the body is JSON: ASCII by construction
            except (SchemaError, TypeError, ValueError, AttributeError, KeyError) as exc:
                raise ValidationError(f"event {event.TYPE} cannot be stored: {exc}") from exc
            self.event_rows.append(row)

    def rows_with_number(self, number: int) -> tuple[_TicketRow, list[_EventRow]]:
        """The ticket row and event rows, with ``number`` filled in where it was left to us."""
        row = self.row
        assert row is not None
        if self.pending_state is None:
            return row, self.event_rows
        # Serialized here, inside the transaction: an error is the encoding error the reference
        # store raises at this point of the checks, and the transaction rolls back.
        self.pending_state["number"] = number
        try:
            state = _dumps(self.pending_state)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"ticket {row[0]!r} cannot be stored: {exc}") from exc
        row = (row[0], number, *row[2:_STATE], state)  # type: ignore[assignment]
        events = list(self.event_rows)
        for index, data in self.pending_events:
            data["number"] = number
            ticket_id, seq, kind, at_us, actor, _ = events[index]
            try:
                body = _dumps(data)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"event {kind} cannot be stored: {exc}") from exc
            events[index] = (ticket_id, seq, kind, at_us, actor, body)
        return row, events


_TICKET_COLUMNS: Final = (
    "id",
    "number",
    "seq",
    "status",
    "category",
    "priority",
    "assignee_id",
    "group_id",
    "requester_id",
    "organization_id",
    "created_us",
    "updated_us",
    "sla_policy",
    "next_deadline_us",
    "next_check_us",
    "tags",
    "state",
)
_TAGS: Final = _TICKET_COLUMNS.index("tags")
_STATE: Final = _TICKET_COLUMNS.index("state")


def _check_text(row: tuple[object, ...]) -> None:
    # SQLite stores UTF-8; a lone surrogate in an id would fail only when bound, inside the
    # transaction. Refuse it here, with the other encoding errors.
    # (ASCII text, which isascii() tells without reading it, encodes by construction.)
    for value in row:
        if isinstance(value, str) and not value.isascii():
            value.encode("utf-8")


class EventTexts:
    """Events by their stored text, as this store object committed them.

    A relay reads back off the change feed the records it has just committed (and a relay
    following the feed in the writer's process reads every event just committed), and an
    event's text always decodes to the same (immutable) value: the event committed with
    that text is that value. So reads look a row's text up here first and decode only text
    not committed lately. Keyed by the whole text, never by (ticket, seq): a rewritten
    (redacted) event has another text, so it is decoded from what is stored.

    The texts committed last are kept (first in, first out), at most ``size`` of them and
    ``chars`` characters in all; a text longer than ``longest`` (a long comment, whose
    decoding costs little beside its reading) is not kept."""

    __slots__ = ("_chars", "_kept", "_limit", "_lock", "_longest", "_size")

    def __init__(self, size: int, *, chars: int = 16 << 20, longest: int = 16 << 10) -> None:
        self._size = size
        self._limit = chars
        self._longest = longest
        self._chars = 0
        self._kept: dict[str, Event] = {}
        self._lock = threading.Lock()

    def keep(self, pairs: Sequence[tuple[str, Event]]) -> None:
        """Keep each ``(text, event)``: ``text`` is what ``event`` was stored as."""
        if not self._size or not pairs:
            return
        longest = self._longest
        with self._lock:
            kept = self._kept
            for text, event in pairs:
                if len(text) <= longest and text not in kept:
                    kept[text] = event
                    self._chars += len(text)
            if len(kept) > self._size or self._chars > self._limit:
                gone = 0
                for text in kept:  # the oldest first
                    if len(kept) - gone <= self._size and self._chars <= self._limit:
                        break
                    gone += 1
                    self._chars -= len(text)
                for text in list(itertools.islice(kept, gone)):
                    del kept[text]

    def event(self, text: str) -> Event:
        """The event stored as ``text``: the one committed with it, else decoded (and
        checked) from it."""
        hit = self._kept.get(text)  # one dict read: safe beside a writer holding the lock
        if hit is not None:
            return hit
        event: Event = _decoded(event_from_dict, text, "event")
        return event

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._chars = 0
