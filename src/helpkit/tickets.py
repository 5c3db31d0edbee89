"""Tickets, comments, actors, links, statuses and the workflow that governs transitions."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from helpkit._checks import (
    check_text,
    count,
    flag,
    ident,
    instance,
    instances_of,
    member_of,
    nonblank_text,
    optional_ident,
    optional_text,
    passes_when,
    text,
    text_set,
)
from helpkit._records import SINCE_LATER
from helpkit._time import optional_utc, to_utc
from helpkit.errors import InvalidTransitionError, ValidationError
from helpkit.fields import FieldValue, field_value_map
from helpkit.priority import Impact, Priority, Urgency

__all__ = [
    "DEFAULT_WORKFLOW",
    "Actor",
    "ActorKind",
    "Attachment",
    "Comment",
    "Link",
    "LinkKind",
    "Status",
    "StatusCategory",
    "Ticket",
    "Workflow",
]


class ActorKind(enum.Enum):
    """Who performs a command."""

    AGENT = "agent"
    CONTACT = "contact"
    SYSTEM = "system"


def _actor_kind(value: ActorKind | str) -> ActorKind:
    if isinstance(value, ActorKind):
        return value
    try:
        return ActorKind(value)
    except ValueError:
        raise ValidationError(
            f"actor kind must be agent, contact or system; got {value!r:.60}"
        ) from None


@attrs.frozen
class Actor:
    """The agent, contact or system process behind a change (written as ``kind:id``)."""

    kind: ActorKind = attrs.field(converter=_actor_kind)
    id: str = attrs.field(validator=nonblank_text)

    def __str__(self) -> str:
        return f"{self.kind._value_}:{self.id}"  # not .value: the enum property costs more

    @classmethod
    def agent(cls, agent_id: str) -> Actor:
        """An agent actor."""
        return cls(ActorKind.AGENT, agent_id)

    @classmethod
    def contact(cls, contact_id: str) -> Actor:
        """A contact (requester, CC) actor."""
        return cls(ActorKind.CONTACT, contact_id)

    @classmethod
    def system(cls, name: str = "helpkit") -> Actor:
        """An automated actor (the sweep, an integration, an import)."""
        return cls(ActorKind.SYSTEM, name)

    @classmethod
    def parse(cls, text: str) -> Actor:
        """Read ``agent:alice``, ``contact:42`` or ``system:sweep``."""
        kind, sep, name = check_text(text, "an actor").partition(":")
        if not sep:
            raise ValidationError(
                f"actor must look like 'agent:ID', 'contact:ID' or 'system:NAME'; got {text!r}"
            )
        try:
            actor_kind = ActorKind(kind)
        except ValueError:
            raise ValidationError(f"unknown actor kind {kind!r} in {text!r}") from None
        return cls(actor_kind, name)


class StatusCategory(enum.Enum):
    """The fixed category of a status; it decides transitions and SLA pausing."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"

    @property
    def is_active(self) -> bool:
        """Not solved and not closed."""
        return self not in (StatusCategory.SOLVED, StatusCategory.CLOSED)


# Allowed moves between categories. Nothing returns to NEW; CLOSED is final.
_ALLOWED: Mapping[StatusCategory, frozenset[StatusCategory]] = {
    StatusCategory.NEW: frozenset(
        {
            StatusCategory.OPEN,
            StatusCategory.PENDING,
            StatusCategory.ON_HOLD,
            StatusCategory.SOLVED,
            StatusCategory.CLOSED,
        }
    ),
    StatusCategory.OPEN: frozenset(
        {
            StatusCategory.OPEN,
            StatusCategory.PENDING,
            StatusCategory.ON_HOLD,
            StatusCategory.SOLVED,
            StatusCategory.CLOSED,
        }
    ),
    StatusCategory.PENDING: frozenset(
        {
            StatusCategory.OPEN,
            StatusCategory.PENDING,
            StatusCategory.ON_HOLD,
            StatusCategory.SOLVED,
            StatusCategory.CLOSED,
        }
    ),
    StatusCategory.ON_HOLD: frozenset(
        {
            StatusCategory.OPEN,
            StatusCategory.PENDING,
            StatusCategory.ON_HOLD,
            StatusCategory.SOLVED,
            StatusCategory.CLOSED,
        }
    ),
    StatusCategory.SOLVED: frozenset({StatusCategory.OPEN, StatusCategory.CLOSED}),
    StatusCategory.CLOSED: frozenset(),
}


def _category(value: StatusCategory | str) -> StatusCategory:
    if isinstance(value, StatusCategory):
        return value
    try:
        return StatusCategory(value)
    except ValueError:
        known = ", ".join(c.value for c in StatusCategory)
        raise ValidationError(
            f"status category must be one of {known}; got {value!r:.60}"
        ) from None


@attrs.frozen
class Status:
    """A named status belonging to one fixed category."""

    name: str = attrs.field(validator=text)
    category: StatusCategory = attrs.field(converter=_category)
    label: str | None = attrs.field(default=None, validator=optional_text)

    def __attrs_post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ValidationError(f"status name {self.name!r} must be a non-empty word")


def _status_tuple(statuses: Iterable[Status]) -> tuple[Status, ...]:
    return tuple(statuses)


@attrs.frozen
class Workflow:
    """The configured statuses and the transitions their categories allow.

    The first status of each category is that category's default (``resolve`` moves to the
    first solved status, for instance). ``merged_status`` names the closed status that merged
    tickets get.
    """

    statuses: tuple[Status, ...] = attrs.field(converter=_status_tuple)
    merged_status: str = attrs.field(default="merged", validator=nonblank_text)
    _by_name: Mapping[str, Status] = attrs.field(init=False, eq=False, repr=False)
    # The first status of each category (what default() finds), kept for default().
    _defaults: Mapping[StatusCategory, Status] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        defaults: dict[StatusCategory, Status] = {}
        for status in self.statuses:
            defaults.setdefault(status.category, status)
        object.__setattr__(self, "_defaults", MappingProxyType(defaults))
        by_name: dict[str, Status] = {}
        for status in self.statuses:
            if status.name in by_name:
                raise ValidationError(f"status {status.name!r} is defined twice")
            by_name[status.name] = status
        missing = [
            c.value for c in StatusCategory if not any(s.category is c for s in self.statuses)
        ]
        if missing:
            raise ValidationError(
                f"workflow needs at least one status in categories: {', '.join(missing)}"
            )
        merged = by_name.get(self.merged_status)
        if merged is None or merged.category is not StatusCategory.CLOSED:
            raise ValidationError(
                f"merged status {self.merged_status!r} must be a closed-category status"
            )
        if self.default(StatusCategory.CLOSED).name == self.merged_status:
            raise ValidationError("the merged status cannot be the first (default) closed status")
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))

    def status(self, name: str) -> Status:
        """The status called ``name``; raises ValidationError if unknown."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            known = ", ".join(self._by_name)
            raise ValidationError(f"unknown status {name!r} (known: {known})") from None

    def default(self, category: StatusCategory) -> Status:
        """The first status of a category."""
        found = self._defaults.get(category)
        if found is not None and found.category is category:
            return found
        return next(s for s in self.statuses if s.category is category)

    def in_category(self, category: StatusCategory) -> tuple[Status, ...]:
        """All statuses of a category, in configured order."""
        return tuple(s for s in self.statuses if s.category is category)

    def check_transition(self, current: Status, target: Status) -> None:
        """Raise InvalidTransitionError if moving from ``current`` to ``target`` is not allowed."""
        if target.name == self.merged_status:
            raise InvalidTransitionError("use merge to move a ticket to the merged status")
        if target.category not in _ALLOWED[current.category]:
            raise InvalidTransitionError(
                f"cannot move a ticket from {current.name} ({current.category.value}) "
                f"to {target.name} ({target.category.value})"
            )


DEFAULT_WORKFLOW = Workflow(
    (
        Status("new", StatusCategory.NEW),
        Status("open", StatusCategory.OPEN),
        Status("pending", StatusCategory.PENDING),
        Status("on_hold", StatusCategory.ON_HOLD),
        Status("solved", StatusCategory.SOLVED),
        Status("closed", StatusCategory.CLOSED),
        Status("merged", StatusCategory.CLOSED),
    )
)


_SPACE = re.compile(r"\s")


def _word(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    word = check_text(value, attribute.name)
    if not word or _SPACE.search(word):
        raise ValidationError(f"{attribute.name} must be a single word; got {word!r:.60}")


# (ASCII letters and digits only: a non-empty word without spaces or NUL.)
passes_when(_word, "{0}.__class__ is str and {0}.isascii() and {0}.isalnum()")


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _sha256(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise ValidationError(
            f"{attribute.name} must be 64 lower-case hex digits; got {value!r:.80}"
        )


@attrs.frozen(kw_only=True)
class Attachment:
    """A file attached to a comment. Its bytes live in a :class:`~helpkit.ports.BlobStore`,
    addressed by ``sha256``; the comment keeps only this description."""

    id: str = attrs.field(validator=ident)
    filename: str = attrs.field(validator=nonblank_text)
    content_type: str = attrs.field(validator=nonblank_text)
    """The MIME type, lower-case (``image/png``)."""
    size: int = attrs.field(validator=count)
    """The size in bytes."""
    sha256: str = attrs.field(validator=_sha256)
    """The SHA-256 of the bytes, lower-case hex: the blob's address."""
    inline: bool = attrs.field(default=False, validator=flag)
    """Shown inside the message (an image an HTML body refers to), not listed beside it."""
    content_id: str | None = attrs.field(default=None, validator=optional_text)
    """The ``Content-ID`` an HTML body refers to it by (``cid:...``), without angle brackets."""


def _attachments(value: Iterable[Attachment]) -> tuple[Attachment, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Comment:
    """A message in a ticket's conversation: a public reply or an internal note."""

    id: str = attrs.field(validator=ident)
    author: Actor = attrs.field(validator=instance(Actor))
    body: str = attrs.field(validator=nonblank_text)
    public: bool = attrs.field(validator=flag)
    channel: str = attrs.field(validator=_word)
    created_at: datetime = attrs.field(converter=to_utc)
    external_id: str | None = attrs.field(default=None, validator=optional_text)
    in_reply_to: str | None = attrs.field(default=None, validator=optional_text)
    ticket_id: str | None = attrs.field(default=None, validator=optional_ident)
    """The ticket the comment was first written on (differs from the ticket after a merge)."""
    attachments: tuple[Attachment, ...] = attrs.field(
        default=(),
        converter=_attachments,
        validator=instances_of(Attachment, container=tuple),
        metadata=SINCE_LATER,
    )
    """The files attached to it, in the order they came."""
    original: str | None = attrs.field(default=None, validator=optional_text, metadata=SINCE_LATER)
    """For a message that came in through a channel: its full text before the quoted history
    was stripped from ``body``, kept for audit (``None`` when nothing was stripped)."""
    # --- privacy (issue #16): redaction marker
    redacted: bool = attrs.field(default=False, validator=flag, metadata=SINCE_LATER)
    """Its content was redacted (:meth:`helpkit.Helpdesk.redact`): ``body`` is
    ``"[redacted]"``, ``original`` is gone, and so are its attachments when they were
    redacted too. The audit trail keeps a ``comment_redacted`` event saying who, when and why."""
    # --- end privacy


class LinkKind(enum.Enum):
    """How two tickets relate; every kind has an inverse recorded on the other ticket."""

    PARENT_OF = "parent_of"
    CHILD_OF = "child_of"
    RELATED = "related"
    DUPLICATE_OF = "duplicate_of"
    DUPLICATED_BY = "duplicated_by"
    FOLLOW_UP_OF = "follow_up_of"
    FOLLOWED_UP_BY = "followed_up_by"

    @property
    def inverse(self) -> LinkKind:
        """The kind seen from the other ticket."""
        return _INVERSE[self]


_INVERSE = {
    LinkKind.PARENT_OF: LinkKind.CHILD_OF,
    LinkKind.CHILD_OF: LinkKind.PARENT_OF,
    LinkKind.RELATED: LinkKind.RELATED,
    LinkKind.DUPLICATE_OF: LinkKind.DUPLICATED_BY,
    LinkKind.DUPLICATED_BY: LinkKind.DUPLICATE_OF,
    LinkKind.FOLLOW_UP_OF: LinkKind.FOLLOWED_UP_BY,
    LinkKind.FOLLOWED_UP_BY: LinkKind.FOLLOW_UP_OF,
}


def _link_kind(value: LinkKind | str) -> LinkKind:
    if isinstance(value, LinkKind):
        return value
    try:
        return LinkKind(value)
    except ValueError:
        known = ", ".join(k.value for k in LinkKind)
        raise ValidationError(f"unknown link kind {value!r:.60} (known: {known})") from None


@attrs.frozen
class Link:
    """A typed link from a ticket to another ticket."""

    kind: LinkKind = attrs.field(converter=_link_kind)
    target_id: str = attrs.field(validator=ident)


@attrs.frozen(kw_only=True)
class Ticket:
    """The current state of a ticket: the fold of its events (see :mod:`helpkit.lifecycle`)."""

    id: str = attrs.field(validator=ident)
    number: int = attrs.field(validator=count)
    subject: str = attrs.field(validator=nonblank_text)
    requester_id: str = attrs.field(validator=ident)
    organization_id: str | None = attrs.field(validator=optional_ident)
    status: str = attrs.field(validator=nonblank_text)
    category: StatusCategory = attrs.field(validator=member_of(StatusCategory))
    impact: Impact = attrs.field(validator=member_of(Impact))
    urgency: Urgency = attrs.field(validator=member_of(Urgency))
    priority: Priority = attrs.field(validator=member_of(Priority))
    channel: str = attrs.field(validator=_word)
    created_at: datetime = attrs.field(converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)
    seq: int = attrs.field(validator=count)
    """How many events the ticket has; the expected sequence number of the next write."""
    assignee_id: str | None = attrs.field(default=None, validator=optional_ident)
    group_id: str | None = attrs.field(default=None, validator=optional_ident)
    tags: frozenset[str] = attrs.field(default=frozenset(), validator=text_set)
    followers: frozenset[Actor] = attrs.field(default=frozenset(), validator=instances_of(Actor))
    custom_fields: Mapping[str, FieldValue] = attrs.field(factory=dict, converter=field_value_map)
    links: frozenset[Link] = attrs.field(default=frozenset(), validator=instances_of(Link))
    merged_into: str | None = attrs.field(default=None, validator=optional_ident)
    solved_at: datetime | None = attrs.field(default=None, converter=optional_utc)
    closed_at: datetime | None = attrs.field(default=None, converter=optional_utc)
    public_comments: int = attrs.field(default=0, validator=count)
    internal_notes: int = attrs.field(default=0, validator=count)
    sla_policy: str | None = attrs.field(default=None, validator=optional_text)
    """The SLA policy in force (set by the desk from its SLA configuration, not by events)."""
    next_deadline: datetime | None = attrs.field(default=None, converter=optional_utc)
    """The earliest due date among the running SLA clocks (past when breached)."""
    next_check: datetime | None = attrs.field(default=None, converter=optional_utc)
    """The earliest instant a timer wants the ticket back (an SLA warning or breach not yet
    recorded, ...); the sweep's index."""
    last_message_id: str | None = attrs.field(default=None, validator=optional_text)
    """The external id of the conversation's latest message (one received with an external
    id, or one a channel sent and named): what the next reply answers, for threading."""
    status_at: datetime | None = attrs.field(
        default=None, converter=optional_utc, metadata=SINCE_LATER
    )
    """When the ticket entered its current status (``None`` on a ticket stored before helpkit
    kept it, until its next status change)."""
    # --- customer satisfaction (see helpkit.satisfaction) ---
    satisfaction_offered_at: datetime | None = attrs.field(
        default=None, converter=optional_utc, metadata=SINCE_LATER
    )
    """When a satisfaction survey was last offered (``None``: never)."""
    satisfaction: str | None = attrs.field(
        default=None, validator=optional_text, metadata=SINCE_LATER
    )
    """The ticket's latest satisfaction rating (``good`` or ``bad``), ``None`` when unrated."""
    # --- end of customer satisfaction ---
    # --- the instants rules count from (issue #14); ``None`` on a ticket stored before
    # helpkit kept them (see helpkit.conditions.Anchor for how rules read such a ticket) ---
    assigned_at: datetime | None = attrs.field(
        default=None, converter=optional_utc, metadata=SINCE_LATER
    )
    """When the current assignee got the ticket (``None`` while it is unassigned). A change
    of group that keeps the assignee keeps the instant."""
    requester_updated_at: datetime | None = attrs.field(
        default=None, converter=optional_utc, metadata=SINCE_LATER
    )
    """When the requester last wrote a public comment on the ticket, or its creation if it
    has not since (comments merged in count at their own date)."""
    agent_updated_at: datetime | None = attrs.field(
        default=None, converter=optional_utc, metadata=SINCE_LATER
    )
    """When an agent last wrote a public reply on the ticket (``None`` before the first;
    internal notes and system messages do not count)."""
    unassigned_at: datetime | None = attrs.field(
        default=None, converter=optional_utc, metadata=SINCE_LATER
    )
    """When the ticket last became unassigned (its assignee removed, or an escalation or a
    transfer to a group leaving it without one), or its creation if it was opened without an
    assignee; ``None`` while it has an assignee. A change of group that leaves it unassigned
    keeps the instant."""
    assignee_updated_at: datetime | None = attrs.field(
        default=None, converter=optional_utc, metadata=SINCE_LATER
    )
    """When the current assignee last wrote a public reply on the ticket since they got it
    (``None`` while it is unassigned and before their first; a comment of theirs merged in
    from another ticket after they got it counts at the date they wrote it). Reassigning it
    to another agent clears it; a change of group that keeps the assignee keeps it."""
    # --- end of the instants rules count from ---

    def __hash__(self) -> int:
        return hash((self.id, self.seq))

    @property
    def is_closed(self) -> bool:
        """Closed (or merged) tickets are read-only."""
        return self.category is StatusCategory.CLOSED

    @property
    def is_merged(self) -> bool:
        """Whether this ticket was merged into another one."""
        return self.merged_into is not None

    @property
    def reference(self) -> str:
        """The human-friendly reference, ``#1042``."""
        return f"#{self.number}"

    def has_party(self, contact_id: str) -> bool:
        """Whether the contact ``contact_id`` is a party of the ticket: its requester or a
        follower (a CC'd contact)."""
        return self.requester_id == contact_id or Actor.contact(contact_id) in self.followers
