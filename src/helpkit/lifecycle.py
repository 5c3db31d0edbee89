"""Ticket lifecycle: pure decisions (command -> events). Re-exported here: the fold (events ->
state, :mod:`helpkit.fold`), what a decision produces (:mod:`helpkit.outcomes`) and the
records of what the system observed (:mod:`helpkit.observations`).

Nothing here reads a clock, a store or a plugin: the time of a change (``at``), the ids and
the ticket number are passed in by the application layer. Every decision validates first and
raises before producing anything, so a refused command leaves no trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import attrs

from helpkit._records import builder
from helpkit.errors import (
    InvalidTransitionError,
    MergeError,
    ReadOnlyTicketError,
    ValidationError,
)
from helpkit.events import (
    Assigned,
    CommentAdded,
    CustomFieldsChanged,
    Escalated,
    Event,
    FollowersChanged,
    Linked,
    MergedInto,
    MergeReceived,
    PriorityChanged,
    StatusChanged,
    SubjectChanged,
    TagsChanged,
    TicketOpened,
    Unlinked,
)
from helpkit.fields import FieldValue
from helpkit.fold import apply, apply_with_status, conversation, open_with_comment, replay
from helpkit.observations import (
    record_failed,
    record_revived,
    record_sent,
    record_sla_check,
    record_sla_reschedule,
    sla_check_event,
)
from helpkit.outcomes import Draft, Outcome
from helpkit.priority import Impact, Priority, PriorityMatrix, Urgency
from helpkit.tickets import (
    Actor,
    ActorKind,
    Comment,
    Link,
    LinkKind,
    StatusCategory,
    Ticket,
    Workflow,
)

__all__ = [
    "Outcome",
    "add_comment",
    "apply",
    "assign",
    "chain",
    "change_followers",
    "change_priority",
    "change_status",
    "change_subject",
    "change_tags",
    "conversation",
    "escalate",
    "link",
    "merge",
    "normalize_tag",
    "open_ticket",
    "override_priority",
    "record_failed",
    "record_revived",
    "record_sent",
    "record_sla_check",
    "record_sla_reschedule",
    "reopen_target",
    "replay",
    "set_custom_fields",
    "sla_check_event",
    "unlink",
]


def _writable(ticket: Ticket) -> None:
    if ticket.is_merged:
        raise ReadOnlyTicketError(
            f"ticket {ticket.reference} was merged into another ticket and is read-only"
        )
    if ticket.is_closed:
        raise ReadOnlyTicketError(
            f"ticket {ticket.reference} is closed and read-only; a new message makes a follow-up"
        )


def normalize_tag(tag: str) -> str:
    """Tags are lower-case words; spaces become underscores."""
    if not isinstance(tag, str) or not tag.strip():
        raise ValidationError(f"a tag must be non-empty text; got {tag!r}")
    return "_".join(tag.strip().lower().split())


def _subject(subject: str) -> str:
    if not isinstance(subject, str) or not subject.strip():
        raise ValidationError("a ticket needs a non-empty subject")
    return " ".join(subject.split())


def open_ticket(
    *,
    ticket_id: str,
    number: int,
    at: datetime,
    actor: Actor,
    subject: str,
    requester_id: str,
    organization_id: str | None,
    impact: Impact,
    urgency: Urgency,
    matrix: PriorityMatrix,
    workflow: Workflow,
    channel: str,
    first_comment: Comment | None = None,
    tags: Iterable[str] = (),
    followers: Iterable[Actor] = (),
    custom_fields: Mapping[str, FieldValue] | None = None,
    assignee_id: str | None = None,
    group_id: str | None = None,
    follow_up_of: str | None = None,
    acknowledge: bool = False,
) -> Outcome:
    """Events for a new ticket, its first message if given, and its follow-up link if any.

    ``acknowledge`` marks the opening for an automatic acknowledgement to the requester."""
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ValidationError(
            "ticket numbers are positive integers (0 leaves the number to the store)"
        )
    follower_set = frozenset(followers)
    if any(f.kind is ActorKind.SYSTEM for f in follower_set):
        raise ValidationError("followers are agents or contacts")
    # (A workflow has a status in every category: the one not taken could not have raised.)
    status = workflow.default(StatusCategory.NEW if assignee_id is None else StatusCategory.OPEN)
    opened = _OPENING(
        ticket_id,
        1,
        at,
        actor,
        number,
        _subject(subject),
        requester_id,
        organization_id,
        status.name,
        status.category,
        impact,
        urgency,
        matrix.priority(impact, urgency),
        channel,
        assignee_id,
        group_id,
        frozenset(normalize_tag(t) for t in tags),
        follower_set,
        {k: v for k, v in (custom_fields or {}).items() if v is not None},
        acknowledge,
    )
    if follow_up_of is None:
        # The common cases, without a draft: with a first comment, the ticket opened with it
        # in one build (what the draft's two folds make, see helpkit.fold.open_with_comment).
        if first_comment is None:
            return Outcome(apply(None, opened), (opened,), 0)
        if first_comment.__class__ is Comment:
            added = _COMMENT_ADDED(ticket_id, 2, at, actor, first_comment)
            return Outcome(open_with_comment(opened, added), (opened, added), 0)
    draft = Draft(None, at, actor)
    draft.add(opened)
    if first_comment is not None:
        draft.emit(CommentAdded, ticket_id, comment=first_comment)
    if follow_up_of is not None:
        # The closed ticket stays read-only, so only the follow-up records the link.
        draft.emit(Linked, ticket_id, link=Link(LinkKind.FOLLOW_UP_OF, follow_up_of))
    return draft.outcome()


_OPENING = builder(
    TicketOpened,
    (
        "ticket_id",
        "seq",
        "at",
        "actor",
        "number",
        "subject",
        "requester_id",
        "organization_id",
        "status",
        "category",
        "impact",
        "urgency",
        "priority",
        "channel",
        "assignee_id",
        "group_id",
        "tags",
        "followers",
        "custom_fields",
        "acknowledge",
    ),
)
"""``build(TicketOpened, ...)`` of :func:`open_ticket`'s values, in this order."""
_COMMENT_ADDED = builder(CommentAdded, ("ticket_id", "seq", "at", "actor", "comment"))
"""``build(CommentAdded, ...)`` of :func:`open_ticket`'s first comment and of
:func:`add_comment`'s, in this order."""
_STATUS_CHANGED = builder(
    StatusChanged,
    ("ticket_id", "seq", "at", "actor", "old_status", "old_category", "status", "category"),
)
"""``build(StatusChanged, ...)`` of :func:`add_comment`'s status change, in this order."""


def add_comment(
    ticket: Ticket,
    comment: Comment,
    *,
    at: datetime,
    workflow: Workflow,
    status: str | None = None,
) -> Outcome:
    """Add a reply or note; apply the status rules of a conversation.

    A public message from a contact reopens a pending or solved ticket; an agent's public
    reply moves a new ticket to open. ``status`` (agents only) sets the status after the
    comment, like "submit as pending".
    """
    _writable(ticket)
    if comment.ticket_id is not None and comment.ticket_id != ticket.id:
        raise ValidationError(
            f"comment {comment.id!r} belongs to ticket {comment.ticket_id!r}, not {ticket.id!r}"
        )
    author = comment.author
    target = workflow.status(status) if status is not None else None
    if author.kind is ActorKind.CONTACT:
        if not comment.public:
            raise ValidationError("contacts cannot write internal notes")
        if target is not None:
            raise ValidationError("contacts cannot set a status")
        if ticket.category in (StatusCategory.PENDING, StatusCategory.SOLVED):
            target = workflow.default(StatusCategory.OPEN)
    elif comment.public and target is None and ticket.category is StatusCategory.NEW:
        target = workflow.default(StatusCategory.OPEN)
    current = workflow.status(ticket.status)
    if target is not None and target.name != current.name:
        workflow.check_transition(current, target)
    # What a draft emitting the comment, then the status change, makes (one copy of the
    # ticket for both: helpkit.fold.apply_with_status).
    seq = ticket.seq
    added = _COMMENT_ADDED(ticket.id, seq + 1, at, author, comment)
    if target is not None and target.name != current.name:
        changed = _STATUS_CHANGED(
            ticket.id,
            seq + 2,
            at,
            author,
            current.name,
            current.category,
            target.name,
            target.category,
        )
        return Outcome(apply_with_status(ticket, added, changed), (added, changed), seq, ticket)
    return Outcome(apply(ticket, added), (added,), seq, ticket)


def change_status(
    ticket: Ticket,
    status: str,
    *,
    at: datetime,
    actor: Actor,
    workflow: Workflow,
    reason: str | None = None,
) -> Outcome:
    """Move to ``status`` if the workflow allows it; the same status is a no-op."""
    _writable(ticket)
    current = workflow.status(ticket.status)
    target = workflow.status(status)
    draft = Draft(ticket, at, actor)
    if target.name != current.name:
        workflow.check_transition(current, target)
        draft.emit(
            StatusChanged,
            ticket.id,
            old_status=current.name,
            old_category=current.category,
            status=target.name,
            category=target.category,
            reason=reason,
        )
    return draft.outcome()


def reopen_target(ticket: Ticket, workflow: Workflow) -> str:
    """The status a reopen moves to (the default open status), or raise if not solved."""
    if ticket.category is not StatusCategory.SOLVED:
        raise InvalidTransitionError(
            f"only solved tickets can be reopened; {ticket.reference} is {ticket.status}"
        )
    return workflow.default(StatusCategory.OPEN).name


def assign(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    assignee_id: str | None,
    group_id: str | None,
    transfer: bool = False,
    reason: str | None = None,
) -> Outcome:
    """Set the assignee and group (membership is checked by the caller, who knows agents)."""
    _writable(ticket)
    draft = Draft(ticket, at, actor)
    if (assignee_id, group_id) != (ticket.assignee_id, ticket.group_id) or transfer:
        if transfer and group_id == ticket.group_id and assignee_id == ticket.assignee_id:
            raise ValidationError(f"ticket {ticket.reference} is already with that group/agent")
        draft.emit(
            Assigned,
            ticket.id,
            assignee_id=assignee_id,
            group_id=group_id,
            previous_assignee_id=ticket.assignee_id,
            previous_group_id=ticket.group_id,
            transfer=transfer,
            reason=reason,
        )
    return draft.outcome()


def change_priority(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    matrix: PriorityMatrix,
    impact: Impact | None = None,
    urgency: Urgency | None = None,
    reason: str | None = None,
) -> Outcome:
    """Set impact and/or urgency; the priority is recomputed from the matrix."""
    _writable(ticket)
    new_impact = impact if impact is not None else ticket.impact
    new_urgency = urgency if urgency is not None else ticket.urgency
    draft = Draft(ticket, at, actor)
    if (new_impact, new_urgency) != (ticket.impact, ticket.urgency):
        draft.emit(
            PriorityChanged,
            ticket.id,
            impact=new_impact,
            urgency=new_urgency,
            priority=matrix.priority(new_impact, new_urgency),
            previous_priority=ticket.priority,
            reason=reason,
        )
    return draft.outcome()


def change_subject(ticket: Ticket, subject: str, *, at: datetime, actor: Actor) -> Outcome:
    """Edit the subject."""
    _writable(ticket)
    new = _subject(subject)
    draft = Draft(ticket, at, actor)
    if new != ticket.subject:
        draft.emit(SubjectChanged, ticket.id, subject=new, previous_subject=ticket.subject)
    return draft.outcome()


def change_tags(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> Outcome:
    """Add and/or remove tags; tags already present or absent are ignored."""
    _writable(ticket)
    to_add = frozenset(normalize_tag(t) for t in add)
    to_remove = frozenset(normalize_tag(t) for t in remove)
    if to_add & to_remove:
        raise ValidationError(f"tags both added and removed: {sorted(to_add & to_remove)}")
    added = to_add - ticket.tags
    removed = to_remove & ticket.tags
    draft = Draft(ticket, at, actor)
    if added or removed:
        draft.emit(TagsChanged, ticket.id, added=added, removed=removed)
    return draft.outcome()


def change_followers(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    add: Iterable[Actor] = (),
    remove: Iterable[Actor] = (),
) -> Outcome:
    """Add and/or remove followers (contacts in CC, watching agents)."""
    _writable(ticket)
    added = frozenset(add) - ticket.followers
    removed = frozenset(remove) & ticket.followers
    if any(f.kind is ActorKind.SYSTEM for f in added):
        raise ValidationError("followers are agents or contacts")
    draft = Draft(ticket, at, actor)
    if added or removed:
        draft.emit(FollowersChanged, ticket.id, added=added, removed=removed)
    return draft.outcome()


def set_custom_fields(
    ticket: Ticket,
    values: Mapping[str, FieldValue | None],
    *,
    at: datetime,
    actor: Actor,
) -> Outcome:
    """Set (or with ``None`` clear) custom field values already validated by the caller."""
    _writable(ticket)
    changed = {
        name: value for name, value in values.items() if ticket.custom_fields.get(name) != value
    }
    draft = Draft(ticket, at, actor)
    if changed:
        draft.emit(CustomFieldsChanged, ticket.id, values=changed)
    return draft.outcome()


def _link_kind(kind: LinkKind | str) -> LinkKind:
    try:
        return LinkKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in LinkKind)
        raise ValidationError(f"unknown link kind {kind!r} (known: {known})") from None


def link(
    ticket: Ticket, other: Ticket, kind: LinkKind | str, *, at: datetime, actor: Actor
) -> tuple[Outcome, Outcome]:
    """Link two tickets; the inverse link is recorded on the other ticket."""
    link_kind = _link_kind(kind)
    if ticket.id == other.id:
        raise ValidationError("a ticket cannot be linked to itself")
    _writable(ticket)
    _writable(other)
    forward = Link(link_kind, other.id)
    backward = Link(link_kind.inverse, ticket.id)
    first = Draft(ticket, at, actor)
    second = Draft(other, at, actor)
    if forward not in ticket.links:
        first.emit(Linked, ticket.id, link=forward)
    if backward not in other.links:
        second.emit(Linked, other.id, link=backward)
    return first.outcome(), second.outcome()


def unlink(
    ticket: Ticket, other: Ticket, kind: LinkKind | str, *, at: datetime, actor: Actor
) -> tuple[Outcome, Outcome]:
    """Remove a link and its inverse."""
    link_kind = _link_kind(kind)
    _writable(ticket)
    _writable(other)
    forward = Link(link_kind, other.id)
    backward = Link(link_kind.inverse, ticket.id)
    if forward not in ticket.links:
        raise ValidationError(
            f"{ticket.reference} has no {link_kind.value} link to {other.reference}"
        )
    first = Draft(ticket, at, actor)
    second = Draft(other, at, actor)
    first.emit(Unlinked, ticket.id, link=forward)
    if backward in other.links:
        second.emit(Unlinked, other.id, link=backward)
    return first.outcome(), second.outcome()


def merge(
    source: Ticket,
    target: Ticket,
    source_comments: Sequence[Comment],
    *,
    at: datetime,
    actor: Actor,
    workflow: Workflow,
) -> tuple[Outcome, Outcome]:
    """Merge ``source`` into ``target``: comments and followers move, the source is merged.

    The source's requester becomes a follower of the target (so they keep hearing about it).
    """
    if source.id == target.id:
        raise MergeError(f"cannot merge ticket {source.reference} into itself")
    if target.is_merged:
        raise MergeError(
            f"ticket {target.reference} was itself merged; merge into the ticket it points to"
        )
    if target.is_closed:
        raise MergeError(f"cannot merge into closed ticket {target.reference}")
    if source.is_closed:
        raise MergeError(f"ticket {source.reference} is closed and cannot be merged")
    followers = set(source.followers)
    requester = Actor(ActorKind.CONTACT, source.requester_id)
    if source.requester_id != target.requester_id:
        followers.add(requester)
    moved = frozenset(followers) - target.followers
    merged = workflow.status(workflow.merged_status)
    src = Draft(source, at, actor)
    src.emit(
        MergedInto,
        source.id,
        target_id=target.id,
        target_number=target.number,
        old_status=source.status,
        status=merged.name,
    )
    dst = Draft(target, at, actor)
    dst.emit(
        MergeReceived,
        target.id,
        source_id=source.id,
        source_number=source.number,
        comments=tuple(
            attrs.evolve(c, ticket_id=c.ticket_id or source.id) for c in source_comments
        ),
        followers=moved,
    )
    return src.outcome(), dst.outcome()


def chain(outcomes: Sequence[Outcome]) -> Outcome:
    """One outcome from consecutive outcomes of the same ticket (each built on the previous)."""
    if not outcomes:
        raise ValidationError("nothing to chain")
    first, last = outcomes[0], outcomes[-1]
    events: list[Event] = []
    seq = first.previous_seq
    for outcome in outcomes:
        if outcome.ticket.id != first.ticket.id or outcome.previous_seq != seq:
            raise ValidationError("chained outcomes must follow each other on one ticket")
        events.extend(outcome.events)
        seq = outcome.ticket.seq
    return Outcome(last.ticket, tuple(events), first.previous_seq, first.before)


def escalate(
    ticket: Ticket,
    *,
    at: datetime,
    actor: Actor,
    kind: str,
    group_id: str,
    tier: int | None,
    previous_tier: int | None,
    assignee_id: str | None = None,
    reason: str | None = None,
    rule: str | None = None,
) -> Outcome:
    """Move the ticket to another group along the tier ladder (target chosen by the caller)."""
    _writable(ticket)
    if group_id == ticket.group_id and assignee_id == ticket.assignee_id:
        raise InvalidTransitionError(
            f"ticket {ticket.reference} is already with group {group_id!r}"
        )
    draft = Draft(ticket, at, actor)
    draft.emit(
        Escalated,
        ticket.id,
        kind=kind,
        group_id=group_id,
        previous_group_id=ticket.group_id,
        tier=tier,
        previous_tier=previous_tier,
        assignee_id=assignee_id,
        previous_assignee_id=ticket.assignee_id,
        reason=reason,
        rule=rule,
    )
    return draft.outcome()


def override_priority(
    ticket: Ticket,
    priority: Priority,
    *,
    at: datetime,
    actor: Actor,
    reason: str | None = None,
) -> Outcome:
    """Set the priority directly (e.g. an escalation rule raising it), keeping impact/urgency."""
    _writable(ticket)
    draft = Draft(ticket, at, actor)
    if priority != ticket.priority:
        draft.emit(
            PriorityChanged,
            ticket.id,
            impact=ticket.impact,
            urgency=ticket.urgency,
            priority=priority,
            previous_priority=ticket.priority,
            reason=reason,
        )
    return draft.outcome()
