"""Immutable event records (the audit trail) and their JSON-safe, versioned form.

Every change to a ticket is one event. A ticket's state is the fold of its events
(:func:`helpkit.lifecycle.replay`). Events serialize to plain dicts with a ``type`` and a
schema version ``v``; :data:`UPCASTERS` turn old versions into current ones so stored
audit trails stay readable after upgrades.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from helpkit._codec import decoder, encoder
from helpkit._records import frozen_mapping
from helpkit._time import to_utc
from helpkit.errors import SchemaError, ValidationError
from helpkit.fields import FieldValue
from helpkit.priority import Impact, Priority, Urgency
from helpkit.tickets import Actor, Comment, Link, StatusCategory

__all__ = [
    "EVENT_TYPES",
    "UPCASTERS",
    "Assigned",
    "CommentAdded",
    "CustomFieldsChanged",
    "Escalated",
    "Event",
    "FollowersChanged",
    "Linked",
    "MergeReceived",
    "MergedInto",
    "PriorityChanged",
    "SlaBreached",
    "SlaRescheduled",
    "SlaWarned",
    "StatusChanged",
    "SubjectChanged",
    "TagsChanged",
    "TicketOpened",
    "Unlinked",
    "event_from_dict",
    "event_to_dict",
]


def _seq(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError("event sequence numbers start at 1")
    return value


@attrs.frozen(kw_only=True)
class Event:
    """What every event carries: the ticket, its per-ticket sequence number, when, and who."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    ticket_id: str
    seq: int = attrs.field(converter=_seq)
    at: datetime = attrs.field(converter=to_utc)
    actor: Actor


@attrs.frozen(kw_only=True)
class TicketOpened(Event):
    """A ticket was created."""

    TYPE: ClassVar[str] = "ticket_opened"

    number: int
    subject: str
    requester_id: str
    organization_id: str | None
    status: str
    category: StatusCategory
    impact: Impact
    urgency: Urgency
    priority: Priority
    channel: str
    assignee_id: str | None = None
    group_id: str | None = None
    tags: frozenset[str] = frozenset()
    followers: frozenset[Actor] = frozenset()
    custom_fields: Mapping[str, FieldValue] = attrs.field(factory=dict, converter=frozen_mapping)


@attrs.frozen(kw_only=True)
class CommentAdded(Event):
    """A public reply or an internal note was added."""

    TYPE: ClassVar[str] = "comment_added"

    comment: Comment


@attrs.frozen(kw_only=True)
class StatusChanged(Event):
    """The status changed (resolve, close, reopen, pending, hold...)."""

    TYPE: ClassVar[str] = "status_changed"

    old_status: str
    old_category: StatusCategory
    status: str
    category: StatusCategory
    reason: str | None = None


@attrs.frozen(kw_only=True)
class Assigned(Event):
    """The assignee and/or group changed; ``transfer`` marks a hand-over to another group."""

    TYPE: ClassVar[str] = "assigned"

    assignee_id: str | None
    group_id: str | None
    previous_assignee_id: str | None
    previous_group_id: str | None
    transfer: bool = False
    reason: str | None = None


@attrs.frozen(kw_only=True)
class PriorityChanged(Event):
    """Impact and/or urgency changed, and with them the priority."""

    TYPE: ClassVar[str] = "priority_changed"

    impact: Impact
    urgency: Urgency
    priority: Priority
    previous_priority: Priority
    reason: str | None = None


@attrs.frozen(kw_only=True)
class SubjectChanged(Event):
    """The subject was edited."""

    TYPE: ClassVar[str] = "subject_changed"

    subject: str
    previous_subject: str


@attrs.frozen(kw_only=True)
class TagsChanged(Event):
    """Tags were added and/or removed."""

    TYPE: ClassVar[str] = "tags_changed"

    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()


@attrs.frozen(kw_only=True)
class FollowersChanged(Event):
    """Followers (CCs and watching agents) were added and/or removed."""

    TYPE: ClassVar[str] = "followers_changed"

    added: frozenset[Actor] = frozenset()
    removed: frozenset[Actor] = frozenset()


@attrs.frozen(kw_only=True)
class CustomFieldsChanged(Event):
    """Custom field values were set (a ``None`` value clears the field)."""

    TYPE: ClassVar[str] = "custom_fields_changed"

    values: Mapping[str, FieldValue | None] = attrs.field(converter=frozen_mapping)


@attrs.frozen(kw_only=True)
class Linked(Event):
    """A link to another ticket was added."""

    TYPE: ClassVar[str] = "linked"

    link: Link


@attrs.frozen(kw_only=True)
class Unlinked(Event):
    """A link to another ticket was removed."""

    TYPE: ClassVar[str] = "unlinked"

    link: Link


@attrs.frozen(kw_only=True)
class MergedInto(Event):
    """This ticket was merged into ``target_id`` (it now has the merged status)."""

    TYPE: ClassVar[str] = "merged_into"

    target_id: str
    target_number: int
    old_status: str
    status: str


@attrs.frozen(kw_only=True)
class MergeReceived(Event):
    """Another ticket was merged into this one; its comments and followers moved here."""

    TYPE: ClassVar[str] = "merge_received"

    source_id: str
    source_number: int
    comments: tuple[Comment, ...] = ()
    followers: frozenset[Actor] = frozenset()


@attrs.frozen(kw_only=True)
class SlaWarned(Event):
    """An SLA metric crossed a warning threshold (a fraction of its target)."""

    TYPE: ClassVar[str] = "sla_warned"

    policy: str
    metric: str
    cycle: int
    """Which cycle of the metric (0 for the first; next-response cycles count up)."""
    threshold: float
    crossed_at: datetime = attrs.field(converter=to_utc)
    """The instant the business time elapsed reached ``threshold`` x target."""
    due: datetime | None = attrs.field(default=None, converter=attrs.converters.optional(to_utc))
    """The metric's due date when the warning was recorded (``None`` if its clock is paused)."""


@attrs.frozen(kw_only=True)
class SlaBreached(Event):
    """An SLA metric reached its target before being achieved."""

    TYPE: ClassVar[str] = "sla_breached"

    policy: str
    metric: str
    cycle: int
    due: datetime = attrs.field(converter=to_utc)
    """The instant of the breach (the metric's due date)."""


@attrs.frozen(kw_only=True)
class Escalated(Event):
    """The ticket moved between support groups along the tier ladder.

    ``kind`` is ``hierarchical`` (up a tier), ``functional`` (another group, same tier) or
    ``de-escalation`` (down a tier).
    """

    TYPE: ClassVar[str] = "escalated"

    kind: str
    group_id: str
    previous_group_id: str | None
    tier: int | None
    previous_tier: int | None
    assignee_id: str | None = None
    previous_assignee_id: str | None = None
    reason: str | None = None
    rule: str | None = None
    """The escalation rule that fired, or ``None`` for a manual escalation."""


@attrs.frozen(kw_only=True)
class SlaRescheduled(Event):
    """The ticket's SLA schedule was recomputed after the SLA configuration changed."""

    TYPE: ClassVar[str] = "sla_rescheduled"

    policy: str | None
    previous_policy: str | None


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
    return cls


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
    """Read an event written by :func:`event_to_dict`, by this or an older helpkit."""
    body = dict(data)
    type_name = body.pop("type", None)
    version = body.pop("v", 1)
    cls = EVENT_TYPES.get(str(type_name))
    if cls is None:
        raise SchemaError(f"unknown event type {type_name!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SchemaError(f"bad schema version {version!r} for event {type_name!r}")
    if version > cls.VERSION:
        raise SchemaError(
            f"event {type_name!r} has schema version {version}, newer than this helpkit "
            f"understands ({cls.VERSION}); upgrade helpkit"
        )
    while version < cls.VERSION:
        upcast = UPCASTERS.get((cls.TYPE, version))
        if upcast is None:
            raise SchemaError(f"no upcaster for event {type_name!r} version {version}")
        body = upcast(body)
        version += 1
    try:
        event: Event = decoder(cls)(body)
    except SchemaError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SchemaError(f"cannot read event {type_name!r}: {exc}") from exc
    return event
