"""The domain's code before its CPU work (helpkit 2026-12, before the ``domaincpu`` branch),
kept verbatim as the reference the fast paths are held equal to
(``tests/test_domain_cpu_equivalence.py``): the fold of one event (``apply``), the opening and
the comment decisions through a :class:`~helpkit.outcomes.Draft` (``open_ticket``,
``add_comment``), ``Draft.emit`` building each event from keyword arguments, and
``Access.guard`` wrapping every agent's decision, and the opening and comment commands
building their comments from keyword arguments (``TicketCommands.open_ticket`` and
``comment``, here calling the reference decisions), ``TicketChange.with_number`` and
``Timers.plan``; and, from before the ``domcpu`` branch, ``Access.check``,
``Workflow.default``, ``field_value_map``, ``Timers.committed`` and
``Timers.state_of``, and ``Directory.check_assignment``.

Only the names the code uses are imported; helpers it calls that did not change (the fold's
``_pinned``... and lifecycle's checks) are the library's own. The fold's ``_wrote`` is kept
here too: the library's now shares its rule of who counts as a writer with the fast opening
(``fold._writer_keys``), which the reference must not share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from helpkit._checks import check_items, check_text
from helpkit._records import build, replace
from helpkit.access import Access
from helpkit.commands import TicketCommands, _attachments, _one
from helpkit.directory import Directory
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
from helpkit.fields import FieldValue, check_field_value
from helpkit.fold import _assigned_at, _pinned, _unassigned_at
from helpkit.lifecycle import _subject, _writable, normalize_tag
from helpkit.outcomes import Draft, Outcome
from helpkit.people import Agent, Contact
from helpkit.pipeline import Decide
from helpkit.ports import TicketChange
from helpkit.priority import Impact, PriorityMatrix, Urgency
from helpkit.roles import Permission, allowed
from helpkit.tickets import (
    Actor,
    ActorKind,
    Attachment,
    Comment,
    Link,
    LinkKind,
    Status,
    StatusCategory,
    Ticket,
    Workflow,
)
from helpkit.timers import Planned, Timers, _dumps
from helpkit.webhook_events import WEBHOOK


def apply(state: Ticket | None, event: Event) -> Ticket:
    """The ticket after ``event``; ``state`` is ``None`` only for the opening event."""
    if isinstance(event, TicketOpened):
        if state is not None:
            raise ValidationError(f"ticket {event.ticket_id} is already open")
        if event.seq != 1:
            raise ValidationError("a ticket's first event must have seq 1")
        return build(
            Ticket,
            id=event.ticket_id,
            number=event.number,
            subject=event.subject,
            requester_id=event.requester_id,
            organization_id=event.organization_id,
            status=event.status,
            category=event.category,
            impact=event.impact,
            urgency=event.urgency,
            priority=event.priority,
            channel=event.channel,
            created_at=event.at,
            updated_at=event.at,
            seq=1,
            assignee_id=event.assignee_id,
            group_id=event.group_id,
            tags=event.tags,
            followers=event.followers,
            custom_fields=event.custom_fields,
            status_at=event.at,
            assigned_at=None if event.assignee_id is None else event.at,
            unassigned_at=event.at if event.assignee_id is None else None,
            requester_updated_at=event.at,
        )
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
        common["status"] = event.status
        common["category"] = event.category
        common["status_at"] = event.at
        if event.category is StatusCategory.SOLVED:
            common["solved_at"] = event.at
        elif event.category is StatusCategory.CLOSED:
            common["closed_at"] = event.at
        else:
            common["solved_at"] = None
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
    return replace(state, **common)


def _wrote(state: Ticket, comment: Comment, when: datetime, common: dict[str, Any]) -> None:
    """Record in ``common`` what ``comment``, counted at ``when``, does to the requester's,
    agents' and assignee's last-update instants: only a public comment by the requester or by
    an agent counts (the assignee's: by the ticket's current assignee), and the instants never
    go back."""
    if not comment.public:
        return
    author = comment.author
    if author.kind is ActorKind.CONTACT and author.id == state.requester_id:
        keys: tuple[str, ...] = ("requester_updated_at",)
    elif author.kind is ActorKind.AGENT:
        if author.id == state.assignee_id:
            keys = ("agent_updated_at", "assignee_updated_at")
        else:
            keys = ("agent_updated_at",)
    else:
        return
    for key in keys:
        latest = common.get(key, getattr(state, key))
        if latest is None or when > latest:
            common[key] = when


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
    status = workflow.default(StatusCategory.NEW)
    if assignee_id is not None:
        status = workflow.default(StatusCategory.OPEN)
    draft = _Draft(None, at, actor)
    draft.emit(
        TicketOpened,
        ticket_id,
        number=number,
        subject=_subject(subject),
        requester_id=requester_id,
        organization_id=organization_id,
        status=status.name,
        category=status.category,
        impact=impact,
        urgency=urgency,
        priority=matrix.priority(impact, urgency),
        channel=channel,
        assignee_id=assignee_id,
        group_id=group_id,
        tags=frozenset(normalize_tag(t) for t in tags),
        followers=follower_set,
        custom_fields={k: v for k, v in (custom_fields or {}).items() if v is not None},
        acknowledge=acknowledge,
    )
    if first_comment is not None:
        draft.emit(CommentAdded, ticket_id, comment=first_comment)
    if follow_up_of is not None:
        # The closed ticket stays read-only, so only the follow-up records the link.
        draft.emit(Linked, ticket_id, link=Link(LinkKind.FOLLOW_UP_OF, follow_up_of))
    return draft.outcome()


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
    draft = _Draft(ticket, at, author)
    draft.emit(CommentAdded, ticket.id, comment=comment)
    if target is not None and target.name != current.name:
        draft.emit(
            StatusChanged,
            ticket.id,
            old_status=current.name,
            old_category=current.category,
            status=target.name,
            category=target.category,
        )
    return draft.outcome()


def emit(self: Draft, cls: type[Event], ticket_id: str, **fields: Any) -> None:
    seq = (self.ticket.seq if self.ticket is not None else 0) + 1
    event = build(cls, ticket_id=ticket_id, seq=seq, at=self.at, actor=self.actor, **fields)
    self.ticket = apply(self.ticket, event)
    self.events.append(event)


def guard(
    self: Access, actor: Actor, decide: Decide, *needs: Permission, agent: Agent | None = None
) -> Decide:
    """``decide``, refused for an agent ``actor`` who may not do ``needs`` on the tickets
    the pipeline loads (or, when it loads none, on the tickets the decision opens).
    ``agent`` is the agent ``actor`` when the caller has just read it (else read here)."""
    agent = self.check(actor, *needs, agent=agent)
    if agent is None:
        return decide

    def guarded(tickets: Sequence[Ticket], now: datetime) -> Sequence[Outcome]:
        assert agent is not None
        self.check_tickets(agent, tickets, *needs)
        outcomes = decide(tickets, now)
        if not tickets:
            self.check_tickets(agent, [o.ticket for o in outcomes], *needs)
        return outcomes

    return guarded


def commands_open_ticket(
    self: TicketCommands,
    actor: Actor,
    *,
    requester: Contact | str,
    subject: str,
    body: str | None,
    impact: Impact | str,
    urgency: Urgency | str,
    channel: str,
    tags: Iterable[str],
    custom_fields: Mapping[str, object] | None,
    group: str | None,
    assignee: str | None,
    cc: Iterable[Contact | str],
    external_id: str | None,
    public: bool,
    now: datetime,
    attachments: Sequence[Attachment] = (),
    parties: tuple[Agent | None, tuple[Contact, bool]] | None = None,
    unsaved: list[Contact] | None = None,
) -> Decide:
    """The decision opening a ticket; new requester and CC contacts are saved here, once
    the ticket was decided at ``now`` (a refused ticket leaves no contact behind).
    ``attachments`` (already kept) go on the first comment, so they need a ``body``.
    ``parties`` is what :meth:`Directory.acting_and_requester` returned for ``actor`` and
    ``requester`` when the caller has just called it (else it is called here).
    ``unsaved``, when given, receives the new contacts instead of their being saved here:
    the caller commits them with the ticket (a store with
    :attr:`~helpkit.ports.Capability.NEW_CONTACTS`)."""
    if not isinstance(actor, Actor):
        raise ValidationError("actor must be an Actor")
    if parties is None:
        parties = self._directory.acting_and_requester(actor, requester)
    acting, (contact, new_requester) = parties
    if actor.kind is ActorKind.CONTACT and actor.id != contact.id:
        raise ValidationError("a contact can only open tickets for themself")
    copied = [
        self._directory.requester(c)
        for c in check_items(cc, "cc", Contact | str)  # type: ignore[arg-type]
    ]
    if custom_fields is not None and not isinstance(custom_fields, Mapping):
        raise ValidationError(f"custom_fields must be a mapping; got {custom_fields!r:.60}")
    fields = self._config.fields.validate(dict(custom_fields or {}), partial=False)
    self._directory.check_assignment(assignee, group, acting)
    tag_list = check_items(tags, "tags", str)
    files = _attachments(attachments)
    if files and body is None:
        raise ValidationError("attachments go on the first comment: give a body too")
    config = self._config

    def opening(ticket_id: str, comment_id: str, requester_id: str, cc_ids: list[str]) -> Decide:
        def decide(_: Sequence[Ticket], at: datetime) -> list[Outcome]:
            first = None
            if body is not None:
                first = build(
                    Comment,
                    id=comment_id,
                    author=actor,
                    body=body,
                    public=public,
                    channel=channel,
                    created_at=at,
                    external_id=external_id,
                    ticket_id=ticket_id,
                    attachments=files,
                )
            followers: frozenset[Actor] = frozenset()
            if cc_ids:  # (without CCs, none: no actor to build)
                followers = frozenset(Actor.contact(c) for c in cc_ids) - {
                    Actor.contact(requester_id)
                }
            return [
                open_ticket(
                    ticket_id=ticket_id,
                    number=0,
                    at=at,
                    actor=actor,
                    subject=subject,
                    requester_id=requester_id,
                    organization_id=contact.organization_id,
                    impact=Impact.coerce(impact),
                    urgency=Urgency.coerce(urgency),
                    matrix=config.matrix,
                    workflow=config.workflow,
                    channel=channel,
                    first_comment=first,
                    tags=tag_list,
                    followers=followers,
                    custom_fields={k: v for k, v in fields.items() if v is not None},
                    assignee_id=assignee,
                    group_id=group,
                )
            ]

        return decide

    if unsaved is not None:
        # Committed with the ticket: a refused ticket saves none. One contact per new
        # address (the requester's may be a CC's too).
        by_email: dict[str, Contact] = {}
        ids = []
        for made, new in [(contact, new_requester), *copied]:
            if new:
                made = next((by_email[e] for e in made.emails if e in by_email), made)
                if made.id not in {c.id for c in unsaved}:
                    unsaved.append(made)
                    by_email.update(dict.fromkeys(made.emails, made))
            ids.append(made.id)
        return opening(self._new_id(), self._new_id(), ids[0], ids[1:])
    if new_requester or any(new for _, new in copied):
        # Decide once before saving new contacts: a refused ticket must leave none.
        opening("check", "check", contact.id, [c.id for c, _ in copied])([], now)
    if new_requester:
        contact = self._directory.save_new(contact)
    cc_ids = [self._directory.save_new(c).id if new else c.id for c, new in copied]
    return opening(self._new_id(), self._new_id(), contact.id, cc_ids)


def commands_comment(
    self: TicketCommands,
    actor: Actor,
    body: str,
    *,
    public: bool,
    channel: str | None,
    status: str | None = None,
    external_id: str | None = None,
    in_reply_to: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> Decide:
    """A reply (``public``) or an internal note; ``status`` goes with it (agents only);
    ``attachments`` are the descriptions of files already kept."""
    comment_id = self._new_id()
    files = _attachments(attachments)
    workflow = self._config.workflow

    def decide(ticket: Ticket, now: datetime) -> Outcome:
        comment = build(
            Comment,
            id=comment_id,
            author=actor,
            body=body,
            public=public,
            channel=channel or ticket.channel,
            created_at=now,
            external_id=external_id,
            in_reply_to=in_reply_to,
            ticket_id=ticket.id,
            attachments=files,
        )
        return add_comment(ticket, comment, at=now, workflow=workflow, status=status)

    return _one(decide)


def with_number(self: TicketChange, number: int) -> TicketChange:
    """This change with ``number`` on its ticket and on its ``TicketOpened`` events.

    What a store returns for a change it numbered. The change must be one
    :func:`~helpkit.stores.memory.validate_change` accepts (its opening event then says
    its ticket's number), so a change that already carries ``number`` is returned as is.
    """
    if self.ticket.number == number:
        return self
    return TicketChange(
        replace(self.ticket, number=number),
        tuple(replace(e, number=number) if isinstance(e, TicketOpened) else e for e in self.events),
        self.expected_seq,
        self.receipt,
        self.routing,
        self.contacts,
    )


def timers_plan(self: Timers, outcome: Outcome) -> Planned:
    """``outcome.ticket`` with every source's fields and the earliest next check."""
    fields: dict[str, Any] = {}
    instants: list[datetime] = []
    memos: list[object | None] = []
    for source in self._sources:
        plan = source.plan(outcome)
        fields.update(plan.fields)
        if plan.next_check is not None:
            instants.append(plan.next_check)
        memos.append(plan.memo)
    fields["next_check"] = min(instants, default=None)
    ticket = outcome.ticket
    changed = {k: v for k, v in fields.items() if getattr(ticket, k) != v}
    return Planned(replace(ticket, **changed) if changed else ticket, tuple(memos))


class _Draft(Draft):
    """A draft whose ``emit`` is the reference one (and so folds with the reference apply)."""

    emit = emit


# ---------------------------------------------------------------- the facade's path (domcpu)
# Kept verbatim from before the ``domcpu`` branch: ``Access.check`` (which ``guard`` used),
# ``Workflow.default``, ``field_value_map``, ``Timers.committed`` and
# ``Timers.state_of`` (before their one-source paths) and ``Directory.check_assignment``.


def access_check(
    self: Access, actor: Actor, *needs: Permission, agent: Agent | None = None
) -> Agent | None:
    """Refuse an agent ``actor`` who may not do ``needs`` (on no ticket in particular);
    the agent read (or ``agent``, when it is the agent ``actor`` just read), or ``None``
    for a system actor."""
    if not isinstance(actor, Actor):
        raise ValidationError(f"actor must be an Actor, e.g. Actor.agent('id'); got {actor!r}")
    if actor.kind is not ActorKind.AGENT:
        return None
    if agent is None or agent.id != actor.id:
        agent = self._directory.agent(actor.id)
    role = self.role(agent)
    for permission in needs:
        allowed(agent, role, permission)
    return agent


def workflow_default(self: Workflow, category: StatusCategory) -> Status:
    """The first status of a category."""
    return next(s for s in self.statuses if s.category is category)


def field_value_map(value: object) -> Mapping[str, FieldValue]:
    """A read-only copy of a ``name -> value`` mapping of checked custom field values."""
    kind = value.__class__
    if kind is not dict and kind is not MappingProxyType and not isinstance(value, Mapping):
        raise ValidationError(f"custom fields must be a mapping; got {value!r:.60}")
    mapping: Mapping[object, object] = value  # type: ignore[assignment]
    return MappingProxyType(
        {
            check_text(name, "a custom field name"): check_field_value(item, f"field {name!r}")
            for name, item in mapping.items()
        }
    )


def timers_committed(self: Timers, planned: Planned, ticket: Ticket) -> None:
    """Tell the sources that ``planned`` was committed as ``ticket`` (numbered)."""
    for source, memo in zip(self._sources, planned.memos, strict=True):
        source.committed(ticket, memo)


def timers_state_of(self: Timers, memos: Sequence[object | None]) -> str | None:
    """:meth:`state` of a plan whose sources' memos are ``memos``."""
    parts: dict[str, object] = {}
    for source, memo in zip(self._sources, memos, strict=True):
        data = source.kept(memo)
        if data is not None:
            parts[source.key] = data
    return _dumps(parts) if parts else None


def check_assignment(
    self: Directory, assignee: str | None, group: str | None, *known: Agent | None
) -> None:
    """The group exists, and the assignee exists, is active and belongs to the group.

    ``known`` are agents the caller has just read (saves reading them again).
    """
    if group is not None:
        self._group_exists(check_text(group, "a group id"))
    if assignee is None:
        return
    agent = next((a for a in known if a is not None and a.id == assignee), None)
    if agent is None:
        agent = self.agent(assignee)
    if not agent.active:
        raise ValidationError(f"agent {assignee!r} is inactive")
    if group is not None and not agent.in_group(group):
        raise ValidationError(f"agent {assignee!r} is not a member of group {group!r}")
