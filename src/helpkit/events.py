"""Immutable event records (the audit trail) and their JSON-safe, versioned form.

Every change to a ticket is one event. A ticket's state is the fold of its events
(:func:`helpkit.lifecycle.replay`). Events serialize to plain dicts with a ``type`` and a
schema version ``v``; :data:`UPCASTERS` turn old versions into current ones so stored
audit trails stay readable after upgrades.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Final

import attrs

from helpkit._checks import (
    count,
    flag,
    fraction,
    ident,
    instance,
    instances_of,
    member_of,
    nonblank_text,
    optional_count,
    optional_ident,
    optional_text,
    text,
    text_set,
)
from helpkit._codec import decoder, encoder
from helpkit._records import SINCE_LATER
from helpkit._time import optional_utc, to_utc
from helpkit.errors import HelpkitError, SchemaError, ValidationError
from helpkit.fields import FieldValue, field_value_map, optional_field_value_map
from helpkit.priority import Impact, Priority, Urgency
from helpkit.tickets import Actor, Comment, Link, StatusCategory

__all__ = [
    "EVENT_TYPES",
    "UPCASTERS",
    "Assigned",
    "CommentAdded",
    "CommentRedacted",
    "ContactErased",
    "CustomFieldsChanged",
    "DeliveryFailed",
    "DeliveryRevived",
    "Escalated",
    "Event",
    "FollowersChanged",
    "Linked",
    "MergeReceived",
    "MergedInto",
    "MessageSent",
    "Notified",
    "PriorityChanged",
    "SatisfactionOffered",
    "SatisfactionRated",
    "SlaBreached",
    "SlaRescheduled",
    "SlaWarned",
    "StatusChanged",
    "SubjectChanged",
    "TagsChanged",
    "TicketOpened",
    "Unlinked",
    "WebhookRequested",
    "event_from_dict",
    "event_to_dict",
]


def _seq(value: int) -> int:
    if value.__class__ is int and value >= 1:
        return value  # the common case, at once (a bool's class is not int)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError("event sequence numbers start at 1")
    return value


@attrs.frozen(kw_only=True)
class Event:
    """What every event carries: the ticket, its per-ticket sequence number, when, and who."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    BOOKKEEPING: ClassVar[bool] = False
    """Whether the event only records what happened outside the ticket (a delivery's outcome):
    it changes nothing a person decides on, so it does not make a caller's version stale (a
    command given ``expected_seq`` goes ahead over it)."""

    ticket_id: str = attrs.field(validator=ident)
    seq: int = attrs.field(converter=_seq, validator=count)
    at: datetime = attrs.field(converter=to_utc)
    actor: Actor = attrs.field(validator=instance(Actor))


@attrs.frozen(kw_only=True)
class TicketOpened(Event):
    """A ticket was created."""

    TYPE: ClassVar[str] = "ticket_opened"

    number: int = attrs.field(validator=count)
    subject: str = attrs.field(validator=nonblank_text)
    requester_id: str = attrs.field(validator=ident)
    organization_id: str | None = attrs.field(validator=optional_ident)
    status: str = attrs.field(validator=nonblank_text)
    category: StatusCategory = attrs.field(validator=member_of(StatusCategory))
    impact: Impact = attrs.field(validator=member_of(Impact))
    urgency: Urgency = attrs.field(validator=member_of(Urgency))
    priority: Priority = attrs.field(validator=member_of(Priority))
    channel: str = attrs.field(validator=nonblank_text)
    assignee_id: str | None = attrs.field(default=None, validator=optional_ident)
    group_id: str | None = attrs.field(default=None, validator=optional_ident)
    tags: frozenset[str] = attrs.field(default=frozenset(), validator=text_set)
    followers: frozenset[Actor] = attrs.field(default=frozenset(), validator=instances_of(Actor))
    custom_fields: Mapping[str, FieldValue] = attrs.field(factory=dict, converter=field_value_map)
    acknowledge: bool = attrs.field(default=False, validator=flag, metadata=SINCE_LATER)
    """Whether the desk acknowledges the request to its requester automatically (a ticket an
    inbound message opened, on a desk with ``intake.acknowledge``, within the rate limit)."""


@attrs.frozen(kw_only=True)
class CommentAdded(Event):
    """A public reply or an internal note was added."""

    TYPE: ClassVar[str] = "comment_added"

    comment: Comment = attrs.field(validator=instance(Comment))


@attrs.frozen(kw_only=True)
class StatusChanged(Event):
    """The status changed (resolve, close, reopen, pending, hold...)."""

    TYPE: ClassVar[str] = "status_changed"

    old_status: str = attrs.field(validator=nonblank_text)
    old_category: StatusCategory = attrs.field(validator=member_of(StatusCategory))
    status: str = attrs.field(validator=nonblank_text)
    category: StatusCategory = attrs.field(validator=member_of(StatusCategory))
    reason: str | None = attrs.field(default=None, validator=optional_text)


@attrs.frozen(kw_only=True)
class Assigned(Event):
    """The assignee and/or group changed; ``transfer`` marks a hand-over to another group."""

    TYPE: ClassVar[str] = "assigned"

    assignee_id: str | None = attrs.field(validator=optional_ident)
    group_id: str | None = attrs.field(validator=optional_ident)
    previous_assignee_id: str | None = attrs.field(validator=optional_ident)
    previous_group_id: str | None = attrs.field(validator=optional_ident)
    transfer: bool = attrs.field(default=False, validator=flag)
    reason: str | None = attrs.field(default=None, validator=optional_text)


@attrs.frozen(kw_only=True)
class PriorityChanged(Event):
    """Impact and/or urgency changed, and with them the priority."""

    TYPE: ClassVar[str] = "priority_changed"

    impact: Impact = attrs.field(validator=member_of(Impact))
    urgency: Urgency = attrs.field(validator=member_of(Urgency))
    priority: Priority = attrs.field(validator=member_of(Priority))
    previous_priority: Priority = attrs.field(validator=member_of(Priority))
    reason: str | None = attrs.field(default=None, validator=optional_text)


@attrs.frozen(kw_only=True)
class SubjectChanged(Event):
    """The subject was edited."""

    TYPE: ClassVar[str] = "subject_changed"

    subject: str = attrs.field(validator=nonblank_text)
    previous_subject: str = attrs.field(validator=text)


@attrs.frozen(kw_only=True)
class TagsChanged(Event):
    """Tags were added and/or removed."""

    TYPE: ClassVar[str] = "tags_changed"

    added: frozenset[str] = attrs.field(default=frozenset(), validator=text_set)
    removed: frozenset[str] = attrs.field(default=frozenset(), validator=text_set)


@attrs.frozen(kw_only=True)
class FollowersChanged(Event):
    """Followers (CCs and watching agents) were added and/or removed."""

    TYPE: ClassVar[str] = "followers_changed"

    added: frozenset[Actor] = attrs.field(default=frozenset(), validator=instances_of(Actor))
    removed: frozenset[Actor] = attrs.field(default=frozenset(), validator=instances_of(Actor))


@attrs.frozen(kw_only=True)
class CustomFieldsChanged(Event):
    """Custom field values were set (a ``None`` value clears the field)."""

    TYPE: ClassVar[str] = "custom_fields_changed"

    values: Mapping[str, FieldValue | None] = attrs.field(converter=optional_field_value_map)


@attrs.frozen(kw_only=True)
class Linked(Event):
    """A link to another ticket was added."""

    TYPE: ClassVar[str] = "linked"

    link: Link = attrs.field(validator=instance(Link))


@attrs.frozen(kw_only=True)
class Unlinked(Event):
    """A link to another ticket was removed."""

    TYPE: ClassVar[str] = "unlinked"

    link: Link = attrs.field(validator=instance(Link))


@attrs.frozen(kw_only=True)
class MergedInto(Event):
    """This ticket was merged into ``target_id`` (it now has the merged status)."""

    TYPE: ClassVar[str] = "merged_into"

    target_id: str = attrs.field(validator=ident)
    target_number: int = attrs.field(validator=count)
    old_status: str = attrs.field(validator=nonblank_text)
    status: str = attrs.field(validator=nonblank_text)


@attrs.frozen(kw_only=True)
class MergeReceived(Event):
    """Another ticket was merged into this one; its comments and followers moved here."""

    TYPE: ClassVar[str] = "merge_received"

    source_id: str = attrs.field(validator=ident)
    source_number: int = attrs.field(validator=count)
    comments: tuple[Comment, ...] = attrs.field(
        default=(), validator=instances_of(Comment, container=tuple)
    )
    followers: frozenset[Actor] = attrs.field(default=frozenset(), validator=instances_of(Actor))


@attrs.frozen(kw_only=True)
class SlaWarned(Event):
    """An SLA metric crossed a warning threshold (a fraction of its target)."""

    TYPE: ClassVar[str] = "sla_warned"

    policy: str = attrs.field(validator=nonblank_text)
    metric: str = attrs.field(validator=nonblank_text)
    cycle: int = attrs.field(validator=count)
    """Which cycle of the metric (0 for the first; next-response cycles count up)."""
    threshold: float = attrs.field(validator=fraction)
    crossed_at: datetime = attrs.field(converter=to_utc)
    """The instant the business time elapsed reached ``threshold`` x target."""
    due: datetime | None = attrs.field(default=None, converter=attrs.converters.optional(to_utc))
    """The metric's due date when the warning was recorded (``None`` if its clock is paused)."""


@attrs.frozen(kw_only=True)
class SlaBreached(Event):
    """An SLA metric reached its target before being achieved."""

    TYPE: ClassVar[str] = "sla_breached"

    policy: str = attrs.field(validator=nonblank_text)
    metric: str = attrs.field(validator=nonblank_text)
    cycle: int = attrs.field(validator=count)
    due: datetime = attrs.field(converter=to_utc)
    """The instant of the breach (the metric's due date)."""


@attrs.frozen(kw_only=True)
class Escalated(Event):
    """The ticket moved between support groups along the tier ladder.

    ``kind`` is ``hierarchical`` (up a tier), ``functional`` (another group, same tier) or
    ``de-escalation`` (down a tier).
    """

    TYPE: ClassVar[str] = "escalated"

    kind: str = attrs.field(validator=nonblank_text)
    group_id: str = attrs.field(validator=ident)
    previous_group_id: str | None = attrs.field(validator=optional_ident)
    tier: int | None = attrs.field(validator=optional_count)
    previous_tier: int | None = attrs.field(validator=optional_count)
    assignee_id: str | None = attrs.field(default=None, validator=optional_ident)
    previous_assignee_id: str | None = attrs.field(default=None, validator=optional_ident)
    reason: str | None = attrs.field(default=None, validator=optional_text)
    rule: str | None = attrs.field(default=None, validator=optional_text)
    """The escalation rule that fired, or ``None`` for a manual escalation."""


@attrs.frozen(kw_only=True)
class SlaRescheduled(Event):
    """The ticket's SLA schedule was recomputed after the SLA configuration changed."""

    TYPE: ClassVar[str] = "sla_rescheduled"

    policy: str | None = attrs.field(validator=optional_text)
    previous_policy: str | None = attrs.field(validator=optional_text)


@attrs.frozen(kw_only=True)
class Notified(Event):
    """A rule (a trigger, a macro) asked for a notification: ``audiences`` (``requester``,
    ``followers``, ``assignee``, ``group``) are told ``subject`` and ``body``, rendered when the
    rule fired. The relay delivers it (see :mod:`helpkit.delivery`)."""

    TYPE: ClassVar[str] = "notified"

    rule: str = attrs.field(validator=nonblank_text)
    audiences: tuple[str, ...] = attrs.field(validator=instances_of(str, container=tuple))
    subject: str = attrs.field(validator=nonblank_text)
    body: str = attrs.field(validator=text)


@attrs.frozen(kw_only=True)
class WebhookRequested(Event):
    """A rule asked for the ticket to be sent to webhook endpoint ``endpoint`` (through the
    outbox, as the endpoint's subscriptions are)."""

    TYPE: ClassVar[str] = "webhook_requested"

    rule: str = attrs.field(validator=nonblank_text)
    endpoint: str = attrs.field(validator=nonblank_text)


@attrs.frozen(kw_only=True)
class MessageSent(Event):
    """A channel took a message of this ticket (a reply, a notice): the audit trail's record
    that it went out, with the id the channel gave it (used to thread later messages)."""

    TYPE: ClassVar[str] = "message_sent"
    BOOKKEEPING: ClassVar[bool] = True

    delivery_id: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=nonblank_text)
    channel: str = attrs.field(validator=nonblank_text)
    recipients: tuple[str, ...] = attrs.field(
        default=(), validator=instances_of(str, container=tuple)
    )
    """Who it went to, as ``kind:id`` of each recipient."""
    attempt: int = attrs.field(default=1, validator=count)
    external_id: str | None = attrs.field(default=None, validator=optional_text)
    comment_id: str | None = attrs.field(default=None, validator=optional_text)


@attrs.frozen(kw_only=True)
class DeliveryFailed(Event):
    """An attempt to send a message of this ticket failed; ``final`` when it was given up
    (dead-lettered: every attempt failed, or no channel could take it)."""

    TYPE: ClassVar[str] = "delivery_failed"
    BOOKKEEPING: ClassVar[bool] = True

    delivery_id: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=nonblank_text)
    channel: str | None = attrs.field(validator=optional_text)
    reason: str = attrs.field(validator=text)
    attempt: int = attrs.field(validator=count)
    final: bool = attrs.field(validator=flag)
    next_attempt_at: datetime | None = attrs.field(default=None, converter=optional_utc)
    comment_id: str | None = attrs.field(default=None, validator=optional_text)


@attrs.frozen(kw_only=True)
class DeliveryRevived(Event):
    """A dead delivery was put back in the outbox to be sent again (``helpkit deliver --retry``):
    its attempts start again from one."""

    TYPE: ClassVar[str] = "delivery_revived"
    BOOKKEEPING: ClassVar[bool] = True

    delivery_id: str = attrs.field(validator=ident)
    kind: str = attrs.field(validator=nonblank_text)
    comment_id: str | None = attrs.field(default=None, validator=optional_text)


# --- customer satisfaction (CSAT; see helpkit.satisfaction) ---------------------------------


@attrs.frozen(kw_only=True)
class SatisfactionOffered(Event):
    """A satisfaction survey was offered for the ticket's latest solving: ``recipients`` (the
    contact ids who may rate) each get a signed rating link valid until ``expires_at``."""

    TYPE: ClassVar[str] = "satisfaction_offered"

    recipients: tuple[str, ...] = attrs.field(validator=instances_of(str, container=tuple))
    expires_at: datetime = attrs.field(converter=to_utc)


@attrs.frozen(kw_only=True)
class SatisfactionRated(Event):
    """A contact rated the support they got (``good`` or ``bad``), with an optional comment;
    ``previous`` is the ticket's rating this one replaces (the latest rating counts)."""

    TYPE: ClassVar[str] = "satisfaction_rated"

    rating: str = attrs.field(validator=nonblank_text)
    comment: str | None = attrs.field(default=None, validator=optional_text)
    previous: str | None = attrs.field(default=None, validator=optional_text)


# --- end of customer satisfaction ------------------------------------------------------------


# --- privacy (issue #16): the audit record of a redaction
@attrs.frozen(kw_only=True)
class CommentRedacted(Event):
    """The content of comment ``comment_id`` was redacted (:mod:`helpkit.redaction`): who
    (``actor``), when (``at``) and why (``reason``), never the text. ``attachments`` are the
    ids of the files redacted with it (empty when its files were kept).

    Bookkeeping: it changes nothing a person decides on, runs no triggers, and does not make
    a caller's version stale. The stored comment itself was rewritten in place (its body
    ``"[redacted]"``, ``redacted`` set), so the trail keeps that a comment existed, not what
    it said.
    """

    TYPE: ClassVar[str] = "comment_redacted"
    BOOKKEEPING: ClassVar[bool] = True

    comment_id: str = attrs.field(validator=ident)
    reason: str = attrs.field(validator=nonblank_text)
    attachments: tuple[str, ...] = attrs.field(
        default=(), validator=instances_of(str, container=tuple)
    )


@attrs.frozen(kw_only=True)
class ContactErased(Event):
    """Contact ``contact_id``, a party to this ticket, was erased
    (:meth:`helpkit.Helpdesk.erase_contact`): its comments here were redacted (each with its
    own ``comment_redacted``) and the contact is a tombstone. Who, when and why; bookkeeping,
    like :class:`CommentRedacted`."""

    TYPE: ClassVar[str] = "contact_erased"
    BOOKKEEPING: ClassVar[bool] = True

    contact_id: str = attrs.field(validator=ident)
    reason: str = attrs.field(validator=nonblank_text)


# --- end privacy

EVENT_TYPES: dict[str, type[Event]] = {}
"""Event classes by their ``TYPE`` name. Later modules (SLA, escalation) register more."""


def register_event_type(cls: type[Event]) -> type[Event]:
    """Make an event class known to :func:`event_from_dict` (usable as a decorator)."""
    if not cls.TYPE:
        raise ValidationError(f"{cls.__name__} has no TYPE")
    existing = EVENT_TYPES.get(cls.TYPE)
    if existing is not None and existing is not cls:
        raise ValidationError(f"event type {cls.TYPE!r} is already registered")
    EVENT_TYPES[cls.TYPE] = cls
    if {"type", "v"} & {f.alias for f in attrs.fields(cls)}:
        _HOLDS_TYPE_OR_V.add(cls)
    return cls


_HOLDS_TYPE_OR_V: set[type[Event]] = set()
"""Registered event types with a field named ``type`` or ``v`` (none of helpkit's): their
dicts are read as a copy without those keys (see :func:`event_from_dict`)."""


for _cls in (
    TicketOpened,
    CommentAdded,
    StatusChanged,
    Assigned,
    PriorityChanged,
    SubjectChanged,
    TagsChanged,
    FollowersChanged,
    CustomFieldsChanged,
    Linked,
    Unlinked,
    MergedInto,
    MergeReceived,
    SlaWarned,
    SlaBreached,
    SlaRescheduled,
    Escalated,
    MessageSent,
    DeliveryFailed,
    DeliveryRevived,
    Notified,
    WebhookRequested,
    SatisfactionOffered,
    SatisfactionRated,
    CommentRedacted,
    ContactErased,
):
    register_event_type(_cls)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""``(type, version) -> function`` that rewrites a version-``n`` dict into version ``n + 1``."""


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-safe dict with ``type`` and schema version ``v``."""
    data: dict[str, Any] = {"type": event.TYPE, "v": event.VERSION}
    data.update(encoder(type(event))(event))
    return data


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Read an event written by :func:`event_to_dict`, by this or an older helpkit.

    Data that is not such an event raises :class:`~helpkit.errors.SchemaError` (naming the
    value that failed, the original error chained as its cause).
    """
    if data.__class__ is dict:
        # The common case, read in place: a dict of the current version, of a type with no
        # field named "type" or "v" (its decoder reads its fields and nothing else).
        type_name, version = data.get("type"), data.get("v", 1)
        cls = EVENT_TYPES.get(type_name) if type_name.__class__ is str else None
        if (
            cls is not None
            and version.__class__ is int
            and version == cls.VERSION
            and cls not in _HOLDS_TYPE_OR_V
        ):
            event: Event = _read_event(str(type_name), data, decoder(cls))
            return event
    elif not isinstance(data, Mapping):
        raise SchemaError(f"expected an object for an event, found {data!r:.60}")
    body = dict(data)
    type_name = body.pop("type", None)
    version = body.pop("v", 1)
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise SchemaError(f"unknown event type {type_name!r:.60}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SchemaError(f"bad schema version {version!r:.60} for event {type_name!r}")
    if version > cls.VERSION:
        raise SchemaError(
            f"event {type_name!r} has schema version {version}, newer than this helpkit "
            f"understands ({cls.VERSION}); upgrade helpkit"
        )
    while version < cls.VERSION:
        upcast = UPCASTERS.get((cls.TYPE, version))
        if upcast is None:
            raise SchemaError(f"no upcaster for event {type_name!r} version {version}")
        body = _read_event(type_name, body, upcast)
        version += 1
    read: Event = _read_event(type_name, body, decoder(cls))
    return read


READ_ERRORS: Final = (
    HelpkitError,
    TypeError,
    ValueError,
    LookupError,
    AttributeError,
    ArithmeticError,
)
"""What reading an event's dict may raise besides SchemaError (a field the decoder or an
upcaster refuses): each becomes a SchemaError naming the event's type."""


def _read_event(type_name: str, body: Any, read: Callable[[Any], Any]) -> Any:
    """``read(body)``, any error of reading the event of type ``type_name`` a SchemaError."""
    try:
        return read(body)
    except SchemaError:
        raise
    except READ_ERRORS as exc:
        raise SchemaError(f"cannot read event {type_name!r}: {exc}") from exc
