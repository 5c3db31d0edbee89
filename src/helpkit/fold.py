"""The fold: a ticket's state is its events applied in order (events -> state).

Pure: :func:`apply` takes a state and the next event and returns the state after it;
:func:`replay` folds a whole history; :func:`conversation` collects a ticket's comments. The
decisions that produce events live in :mod:`helpkit.lifecycle`, which re-exports these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from helpkit._records import builder, replace, replace_from
from helpkit.errors import ValidationError
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
    MessageSent,
    PriorityChanged,
    SatisfactionOffered,
    SatisfactionRated,
    StatusChanged,
    SubjectChanged,
    TagsChanged,
    TicketOpened,
    Unlinked,
)
from helpkit.tickets import ActorKind, Comment, StatusCategory, Ticket
from helpkit.webhook_events import WEBHOOK

__all__ = ["apply", "apply_with_status", "conversation", "open_with_comment", "replay"]

_OPENED_NAMES = (
    "id",
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
    "created_at",
    "updated_at",
    "seq",
    "assignee_id",
    "group_id",
    "tags",
    "followers",
    "custom_fields",
    "status_at",
    "assigned_at",
    "unassigned_at",
    "requester_updated_at",
)
_OPENED = builder(Ticket, _OPENED_NAMES)
"""The ticket a ``TicketOpened`` opens, from its values in this order (``build(Ticket, ...)``
without a dictionary and a cache look-up per ticket)."""
_OPENED_WITH_COMMENT = builder(
    Ticket,
    (
        *_OPENED_NAMES,
        "public_comments",
        "internal_notes",
        "last_message_id",
        "agent_updated_at",
        "assignee_updated_at",
    ),
)
"""The same, with what its first comment changes (:func:`open_with_comment`)."""


def apply(state: Ticket | None, event: Event) -> Ticket:
    """The ticket after ``event``; ``state`` is ``None`` only for the opening event."""
    if isinstance(event, TicketOpened):
        if state is not None:
            raise ValidationError(f"ticket {event.ticket_id} is already open")
        if event.seq != 1:
            raise ValidationError("a ticket's first event must have seq 1")
        at = event.at
        assignee_id = event.assignee_id
        return _OPENED(
            event.ticket_id,
            event.number,
            event.subject,
            event.requester_id,
            event.organization_id,
            event.status,
            event.category,
            event.impact,
            event.urgency,
            event.priority,
            event.channel,
            at,
            at,
            1,
            assignee_id,
            event.group_id,
            event.tags,
            event.followers,
            event.custom_fields,
            at,
            None if assignee_id is None else at,
            at if assignee_id is None else None,
            at,
        )
    state, common = _changes(state, event)
    return replace_from(state, common)


def _changes(state: Ticket | None, event: Event) -> tuple[Ticket, dict[str, Any]]:
    """What :func:`apply` of an event other than ``TicketOpened`` checks and sets: the state
    it changes (``state``, or ``state`` pinned, see :func:`_pinned`) and its fields' new
    values."""
    if state is None:
        raise ValidationError(f"event {event.TYPE} needs an opened ticket")
    if event.ticket_id != state.id:
        raise ValidationError(f"event for ticket {event.ticket_id} applied to {state.id}")
    if event.seq != state.seq + 1:
        raise ValidationError(
            f"event seq {event.seq} does not follow ticket {state.id} seq {state.seq}"
        )
    if (
        state.requester_updated_at is None
        or (state.assigned_at is None and state.assignee_id is not None)
        or (state.unassigned_at is None and state.assignee_id is None)
    ):
        state = _pinned(state)
    common: dict[str, Any] = {"seq": event.seq, "updated_at": max(state.updated_at, event.at)}
    if isinstance(event, CommentAdded):
        if event.comment.public:
            common["public_comments"] = state.public_comments + 1
            _wrote(state, event.comment, event.at, common)
            if event.comment.external_id is not None:
                common["last_message_id"] = event.comment.external_id
        else:
            common["internal_notes"] = state.internal_notes + 1
    elif isinstance(event, MessageSent):
        # A webhook (its external id is the webhook-id) is not a message of the conversation:
        # later replies do not thread on it.
        if event.external_id is not None and event.kind != WEBHOOK:
            common["last_message_id"] = event.external_id
    elif isinstance(event, StatusChanged):
        _status_set(common, event.status, event.category, event.at)
    elif isinstance(event, Assigned | Escalated):
        common["assignee_id"] = event.assignee_id
        common["group_id"] = event.group_id
        common["assigned_at"] = _assigned_at(state, event.assignee_id, event.at)
        common["unassigned_at"] = _unassigned_at(state, event.assignee_id, event.at)
        if event.assignee_id != state.assignee_id:
            common["assignee_updated_at"] = None  # the new assignee has not written yet
    elif isinstance(event, PriorityChanged):
        common.update(impact=event.impact, urgency=event.urgency, priority=event.priority)
    elif isinstance(event, SubjectChanged):
        common["subject"] = event.subject
    elif isinstance(event, TagsChanged):
        common["tags"] = (state.tags - event.removed) | event.added
    elif isinstance(event, FollowersChanged):
        common["followers"] = (state.followers - event.removed) | event.added
    elif isinstance(event, CustomFieldsChanged):
        fields = dict(state.custom_fields)
        for name, value in event.values.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        common["custom_fields"] = fields
    elif isinstance(event, Linked):
        common["links"] = state.links | {event.link}
    elif isinstance(event, Unlinked):
        common["links"] = state.links - {event.link}
    elif isinstance(event, MergedInto):
        common.update(
            merged_into=event.target_id,
            status=event.status,
            category=StatusCategory.CLOSED,
            closed_at=event.at,
            status_at=event.at,
        )
    elif isinstance(event, MergeReceived):
        common["followers"] = state.followers | event.followers
        common["public_comments"] = state.public_comments + sum(c.public for c in event.comments)
        common["internal_notes"] = state.internal_notes + sum(not c.public for c in event.comments)
        # Merged comments were written on the other ticket, at their own dates.
        for comment in event.comments:
            _wrote(state, comment, min(comment.created_at, event.at), common)
    elif isinstance(event, SatisfactionOffered):
        common["satisfaction_offered_at"] = event.at
    elif isinstance(event, SatisfactionRated):
        common["satisfaction"] = event.rating
    # SLA warnings and breaches (and event types added by plugins) only bump seq/updated_at.
    return state, common


def apply_with_status(state: Ticket, added: CommentAdded, changed: StatusChanged) -> Ticket:
    """``apply(apply(state, added), changed)``: a comment and the status change right after
    it (a reply submitted with a status), with one copy of the ticket instead of two.

    ``changed`` sets what :func:`apply` sets for a status change on the ticket after the
    comment (a comment leaves no instant to pin, so none is pinned then); anything else
    than a ``CommentAdded`` and a ``StatusChanged`` of the same ticket, one seq after it, goes
    through :func:`apply` twice."""
    if added.__class__ is not CommentAdded or changed.__class__ is not StatusChanged:
        return apply(apply(state, added), changed)
    base, common = _changes(state, added)
    if changed.ticket_id != base.id or changed.seq != common["seq"] + 1:
        return apply(replace_from(base, common), changed)
    common["seq"] = changed.seq
    common["updated_at"] = max(common["updated_at"], changed.at)
    _status_set(common, changed.status, changed.category, changed.at)
    return replace_from(base, common)


def _status_set(
    common: dict[str, Any], status: str, category: StatusCategory, at: datetime
) -> None:
    """Record in ``common`` what a change to ``status`` (of ``category``) at ``at`` sets: the
    status, its category and instant, and the solved or closed instant (a status neither
    solved nor closed clears the solved one)."""
    common["status"] = status
    common["category"] = category
    common["status_at"] = at
    if category is StatusCategory.SOLVED:
        common["solved_at"] = at
    elif category is StatusCategory.CLOSED:
        common["closed_at"] = at
    else:
        common["solved_at"] = None


def open_with_comment(opened: TicketOpened, added: CommentAdded) -> Ticket:
    """``apply(apply(None, opened), added)``: the ticket ``opened`` opens with ``added`` (its
    first comment) applied, in one build instead of a build and a copy of every field.

    It sets what :func:`apply` sets for a comment on a ticket just opened (seq 2, the update
    instant, the comment counters, the last message id and the instants of
    :func:`_wrote`, against a ticket whose requester instant is its opening and whose agent
    instants are unset); the ticket's values are validated as that build validates them.
    Anything else than a ``TicketOpened`` of seq 1 and a ``CommentAdded`` of seq 2 on the same
    ticket carrying a plain :class:`~helpkit.tickets.Comment` goes through :func:`apply`."""
    comment = added.comment
    if (
        opened.__class__ is not TicketOpened
        or added.__class__ is not CommentAdded
        or comment.__class__ is not Comment
        or opened.seq != 1
        or added.seq != 2
        or added.ticket_id != opened.ticket_id
    ):
        return apply(apply(None, opened), added)
    at = opened.at
    when = added.at
    assignee_id = opened.assignee_id
    public = comment.public
    # _wrote's instants on a ticket just opened: the requester's at the opening, the agents'
    # and the assignee's unset.
    keys = _writer_keys(comment, opened.requester_id, assignee_id)
    requester_updated = when if "requester_updated_at" in keys and when > at else at
    agent_updated = when if "agent_updated_at" in keys else None
    assignee_updated = when if "assignee_updated_at" in keys else None
    return _OPENED_WITH_COMMENT(
        opened.ticket_id,
        opened.number,
        opened.subject,
        opened.requester_id,
        opened.organization_id,
        opened.status,
        opened.category,
        opened.impact,
        opened.urgency,
        opened.priority,
        opened.channel,
        at,
        max(at, when),
        2,
        assignee_id,
        opened.group_id,
        opened.tags,
        opened.followers,
        opened.custom_fields,
        at,
        None if assignee_id is None else at,
        at if assignee_id is None else None,
        requester_updated,
        1 if public else 0,
        0 if public else 1,
        comment.external_id if public else None,
        agent_updated,
        assignee_updated,
    )


def _pinned(state: Ticket) -> Ticket:
    """A ticket stored before helpkit kept its assignment, unassignment and requester
    instants, with each one it must have pinned to its last change: the latest it can have
    been, which is what rules counted from while it was unknown
    (:class:`helpkit.conditions.Anchor`). Pinned at its next event, so that an automation's
    own change does not move its due instant."""
    changes: dict[str, Any] = {}
    if state.requester_updated_at is None:
        changes["requester_updated_at"] = state.updated_at
    if state.assigned_at is None and state.assignee_id is not None:
        changes["assigned_at"] = state.updated_at
    if state.unassigned_at is None and state.assignee_id is None:
        changes["unassigned_at"] = state.updated_at
    return replace(state, **changes)


def _assigned_at(state: Ticket, assignee_id: str | None, at: datetime) -> datetime | None:
    """When the ticket's assignee (after an assignment to ``assignee_id`` at ``at``) got it."""
    if assignee_id is None:
        return None
    if assignee_id == state.assignee_id:
        return state.assigned_at  # the same assignee (maybe another group): not a new start
    return at


def _unassigned_at(state: Ticket, assignee_id: str | None, at: datetime) -> datetime | None:
    """When the ticket (after an assignment to ``assignee_id`` at ``at``) became unassigned."""
    if assignee_id is not None:
        return None
    if state.assignee_id is None:
        return state.unassigned_at  # already unassigned (maybe another group): no new start
    return at


def _wrote(state: Ticket, comment: Comment, when: datetime, common: dict[str, Any]) -> None:
    """Record in ``common`` what ``comment``, counted at ``when``, does to the requester's,
    agents' and assignee's last-update instants: only a public comment by the requester or by
    an agent counts (the assignee's: by the ticket's current assignee), and the instants never
    go back."""
    for key in _writer_keys(comment, state.requester_id, state.assignee_id):
        latest = common.get(key, getattr(state, key))
        if latest is None or when > latest:
            common[key] = when


def _writer_keys(comment: Comment, requester_id: str, assignee_id: str | None) -> tuple[str, ...]:
    """The last-update instants ``comment`` counts for on a ticket of that requester and
    assignee: only a public comment by the requester or by an agent counts (the assignee's
    instant: by the assignee)."""
    if not comment.public:
        return ()
    author = comment.author
    if author.kind is ActorKind.CONTACT and author.id == requester_id:
        return ("requester_updated_at",)
    if author.kind is ActorKind.AGENT:
        if author.id == assignee_id:
            return ("agent_updated_at", "assignee_updated_at")
        return ("agent_updated_at",)
    return ()


def replay(events: Iterable[Event]) -> Ticket:
    """The state of a ticket as the fold of all its events, in order."""
    state: Ticket | None = None
    for event in events:
        state = apply(state, event)
    if state is None:
        raise ValidationError("a ticket needs at least its opening event")
    return state


def conversation(events: Iterable[Event]) -> tuple[Comment, ...]:
    """The comments of a ticket (including those merged in), oldest first."""
    comments: list[Comment] = []
    for event in events:
        if isinstance(event, CommentAdded):
            comments.append(event.comment)
        elif isinstance(event, MergeReceived):
            comments.extend(event.comments)
    comments.sort(key=lambda c: c.created_at)  # stable: ties keep event order
    return tuple(comments)
