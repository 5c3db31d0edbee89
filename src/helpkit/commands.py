"""Ticket commands: each checks its arguments and returns the decision the pipeline runs.

A decision (:data:`helpkit.pipeline.Decide`) takes the loaded tickets and "now" and returns the
outcomes :mod:`helpkit.lifecycle` decided. Building it checks what can be checked without the
ticket (the actor, agents, groups, custom fields); running it checks the rest against the
ticket as loaded, so a command re-run after a lost race is decided on fresh data. The facade
runs these; inbound channels, rules, macros and bulk operations will run the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from helpkit import lifecycle
from helpkit._checks import check_items, check_text
from helpkit._records import builder
from helpkit.actions import Actions
from helpkit.config import DeskConfig
from helpkit.directory import Directory, Unset
from helpkit.errors import AccessDeniedError, ValidationError
from helpkit.escalation import EscalationKind, escalation_target
from helpkit.fields import FieldValue
from helpkit.lifecycle import Outcome
from helpkit.people import Agent, Contact
from helpkit.pipeline import Decide
from helpkit.ports import Store
from helpkit.priority import Impact, Urgency
from helpkit.rules import Macro
from helpkit.service_levels import ServiceLevels
from helpkit.tickets import (
    Actor,
    ActorKind,
    Attachment,
    Comment,
    LinkKind,
    StatusCategory,
    Ticket,
)

__all__ = ["TicketCommands"]

OneTicket = Callable[[Ticket, datetime], Outcome]

_COMMENT = builder(
    Comment,
    (
        "id",
        "author",
        "body",
        "public",
        "channel",
        "created_at",
        "external_id",
        "in_reply_to",
        "ticket_id",
        "attachments",
    ),
)
"""``build(Comment, ...)`` of a command's comment (an opening's first comment, in reply to
nothing, and :meth:`TicketCommands.comment`'s), its values in this order."""


def _attachments(value: Sequence[Attachment]) -> tuple[Attachment, ...]:
    return check_items(value, "attachments", Attachment) if value else ()


def _one(decide: OneTicket) -> Decide:
    """A decision about the one ticket a command loads."""
    return lambda tickets, now: [decide(tickets[0], now)]


class TicketCommands:
    """The ticket commands of one desk (its configuration, people and store)."""

    def __init__(
        self,
        config: DeskConfig,
        directory: Directory,
        levels: ServiceLevels,
        store: Store,
        new_id: Callable[[], str],
        actions: Actions | None = None,
    ) -> None:
        self._actions = actions or Actions(config, directory, new_id)
        self._config = config
        self._directory = directory
        self._levels = levels
        self._store = store
        self._new_id = new_id

    # ------------------------------------------------------------ opening

    def open_ticket(
        self,
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

        def opening(
            ticket_id: str, comment_id: str, requester_id: str, cc_ids: list[str]
        ) -> Decide:
            def decide(_: Sequence[Ticket], at: datetime) -> list[Outcome]:
                first = None
                if body is not None:
                    first = _COMMENT(
                        comment_id,
                        actor,
                        body,
                        public,
                        channel,
                        at,
                        external_id,
                        None,
                        ticket_id,
                        files,
                    )
                followers: frozenset[Actor] = frozenset()
                if cc_ids:  # (without CCs, none: no actor to build)
                    followers = frozenset(Actor.contact(c) for c in cc_ids) - {
                        Actor.contact(requester_id)
                    }
                return [
                    lifecycle.open_ticket(
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

    # ------------------------------------------------------------ conversation

    def comment(
        self,
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
            comment = _COMMENT(
                comment_id,
                actor,
                body,
                public,
                channel or ticket.channel,
                now,
                external_id,
                in_reply_to,
                ticket.id,
                files,
            )
            return lifecycle.add_comment(ticket, comment, at=now, workflow=workflow, status=status)

        return _one(decide)

    def requester_message(
        self,
        author: Actor,
        body: str,
        *,
        channel: str | None,
        external_id: str | None,
        in_reply_to: str | None,
        attachments: Sequence[Attachment] = (),
        party_of: Ticket | None = None,
    ) -> Decide:
        """A contact's message: a comment, or on a closed ticket a follow-up ticket (the
        ``attachments`` go with it either way). The author must be a party of the ticket
        (its requester or a follower) as loaded, or of ``party_of`` (the ticket the message
        was addressed to, merged into the one loaded): else AccessDeniedError."""
        files = _attachments(attachments)
        contact = self._directory.contact(author.id)
        comment_id, follow_up_id = self._new_id(), self._new_id()
        on_open = self.comment(
            author,
            body,
            public=True,
            channel=channel,
            external_id=external_id,
            in_reply_to=in_reply_to,
            attachments=files,
        )
        config = self._config

        vouched = party_of is not None and party_of.has_party(author.id)

        def decide(tickets: Sequence[Ticket], now: datetime) -> Sequence[Outcome]:
            closed = tickets[0]
            if not vouched and not closed.has_party(author.id):
                raise AccessDeniedError(
                    f"contact {author.id!r} is no party of ticket {closed.reference}: only its "
                    "requester and followers write to it"
                )
            if not closed.is_closed:
                return on_open(tickets, now)
            # A closed ticket is read-only: the message opens a follow-up linked to it.
            first = Comment(
                id=comment_id,
                author=author,
                body=body,
                public=True,
                channel=channel or closed.channel,
                created_at=now,
                external_id=external_id,
                ticket_id=follow_up_id,
                attachments=files,
            )
            return [
                lifecycle.open_ticket(
                    ticket_id=follow_up_id,
                    number=0,
                    at=now,
                    actor=author,
                    subject=closed.subject,
                    requester_id=contact.id,
                    organization_id=contact.organization_id,
                    impact=closed.impact,
                    urgency=closed.urgency,
                    matrix=config.matrix,
                    workflow=config.workflow,
                    channel=channel or closed.channel,
                    first_comment=first,
                    tags=closed.tags,
                    group_id=closed.group_id,
                    follow_up_of=closed.id,
                )
            ]

        return decide

    # ------------------------------------------------------------ assignment and status

    def assign(self, actor: Actor, agent: str | Unset | None, group: str | Unset | None) -> Decide:
        """Set the assignee and/or group (see :meth:`helpkit.Helpdesk.assign`)."""
        directory = self._directory

        def decide(ticket: Ticket, now: datetime) -> Outcome:
            new_group = ticket.group_id if isinstance(group, Unset) else group
            new_agent = ticket.assignee_id if isinstance(agent, Unset) else agent
            member: Agent | None = None
            if not isinstance(agent, Unset) and agent is not None and isinstance(group, Unset):
                member = directory.agent(agent)
                if new_group is None or not member.in_group(new_group):
                    new_group = member.group_ids[0] if member.group_ids else None
            if not isinstance(group, Unset) and isinstance(agent, Unset) and new_agent is not None:
                if group is None:
                    new_agent = None  # no group, no assignee
                else:
                    member = directory.agent(new_agent)
                    if not member.in_group(group):
                        new_agent = None  # the old assignee is not in the new group
            directory.check_assignment(new_agent, new_group, member)
            return lifecycle.assign(
                ticket, at=now, actor=actor, assignee_id=new_agent, group_id=new_group
            )

        return _one(decide)

    def transfer(self, actor: Actor, group: str, agent: str | None, reason: str | None) -> Decide:
        """Hand the ticket to another group (and maybe one of its agents)."""
        self._directory.check_assignment(agent, group)
        return _one(
            lambda ticket, now: lifecycle.assign(
                ticket,
                at=now,
                actor=actor,
                assignee_id=agent,
                group_id=group,
                transfer=True,
                reason=reason,
            )
        )

    def status(
        self,
        actor: Actor,
        target: Callable[[Ticket], str],
        *,
        reason: str | None = None,
        comment: str | None = None,
    ) -> Decide:
        """Move to the status ``target`` picks for the loaded ticket; with ``comment``, a
        public comment goes with it."""
        comment_id = self._new_id()
        workflow = self._config.workflow

        def decide(ticket: Ticket, now: datetime) -> Outcome:
            status = target(ticket)
            if comment is None:
                return lifecycle.change_status(
                    ticket, status, at=now, actor=actor, workflow=workflow, reason=reason
                )
            note = Comment(
                id=comment_id,
                author=actor,
                body=comment,
                public=True,
                channel=ticket.channel,
                created_at=now,
                ticket_id=ticket.id,
            )
            return lifecycle.add_comment(ticket, note, at=now, workflow=workflow, status=status)

        return _one(decide)

    def set_status(self, actor: Actor, status: str, reason: str | None) -> Decide:
        """Move to a named status."""
        name = check_text(status, "status")
        return self.status(actor, lambda _: name, reason=reason)

    def to_category(
        self,
        actor: Actor,
        category: StatusCategory,
        *,
        reason: str | None = None,
        comment: str | None = None,
    ) -> Decide:
        """Move to the default status of ``category`` (resolve, close)."""
        name = self._config.workflow.default(category).name
        return self.status(actor, lambda _: name, reason=reason, comment=comment)

    def reopen(self, actor: Actor, reason: str | None) -> Decide:
        """Reopen a solved ticket."""
        workflow = self._config.workflow
        return self.status(
            actor, lambda ticket: lifecycle.reopen_target(ticket, workflow), reason=reason
        )

    # ------------------------------------------------------------ ticket fields

    def prioritize(
        self,
        actor: Actor,
        impact: Impact | str | None,
        urgency: Urgency | str | None,
        reason: str | None,
    ) -> Decide:
        """Set impact and/or urgency; the priority follows from the matrix."""
        new_impact = None if impact is None else Impact.coerce(impact)
        new_urgency = None if urgency is None else Urgency.coerce(urgency)
        matrix = self._config.matrix
        return _one(
            lambda ticket, now: lifecycle.change_priority(
                ticket,
                at=now,
                actor=actor,
                matrix=matrix,
                impact=new_impact,
                urgency=new_urgency,
                reason=reason,
            )
        )

    def set_subject(self, actor: Actor, subject: str) -> Decide:
        """Edit the subject."""
        return _one(
            lambda ticket, now: lifecycle.change_subject(ticket, subject, at=now, actor=actor)
        )

    def tags(self, actor: Actor, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Decide:
        """Add and/or remove tags."""
        added, removed = check_items(add, "tags", str), check_items(remove, "tags", str)
        return _one(
            lambda ticket, now: lifecycle.change_tags(
                ticket, at=now, actor=actor, add=added, remove=removed
            )
        )

    def followers(
        self, actor: Actor, *, add: Iterable[Actor] = (), remove: Iterable[Actor] = ()
    ) -> Decide:
        """Add and/or remove followers (added ones must exist)."""
        added, removed = (
            check_items(add, "followers", Actor),
            check_items(remove, "followers", Actor),
        )
        for who in added:
            self._directory.check_party(who)
        return _one(
            lambda ticket, now: lifecycle.change_followers(
                ticket, at=now, actor=actor, add=added, remove=removed
            )
        )

    def set_fields(self, actor: Actor, values: Mapping[str, object]) -> Decide:
        """Set typed custom fields (``None`` clears one)."""
        if not isinstance(values, Mapping):
            raise ValidationError(f"custom field values must be a mapping; got {values!r:.60}")
        checked: dict[str, FieldValue | None] = self._config.fields.validate(values)
        return _one(
            lambda ticket, now: lifecycle.set_custom_fields(ticket, checked, at=now, actor=actor)
        )

    # ------------------------------------------------------------ two tickets

    def link(self, actor: Actor, kind: LinkKind | str, *, remove: bool = False) -> Decide:
        """Link (or unlink) the two loaded tickets; both record it."""
        decide = lifecycle.unlink if remove else lifecycle.link
        return lambda tickets, now: list(decide(tickets[0], tickets[1], kind, at=now, actor=actor))

    def merge(self, actor: Actor) -> Decide:
        """Merge the first loaded ticket into the second."""
        store, workflow = self._store, self._config.workflow

        def decide(tickets: Sequence[Ticket], now: datetime) -> list[Outcome]:
            source, target = tickets
            return list(
                lifecycle.merge(
                    source,
                    target,
                    lifecycle.conversation(store.events(source.id)),
                    at=now,
                    actor=actor,
                    workflow=workflow,
                )
            )

        return decide

    # ------------------------------------------------------------ macros

    def macro(self, actor: Actor, macro: Macro, agent: Agent | None) -> Decide:
        """Carry out ``macro``'s actions as ``actor`` (``agent``: the agent it is, for the
        ``agent.*`` placeholders)."""
        actions = self._actions
        rule = f"macro:{macro.name}"
        return _one(
            lambda ticket, now: actions.carry_out(
                ticket, macro.actions, at=now, actor=actor, rule=rule, agent=agent
            )
        )

    # ------------------------------------------------------------ tiers

    def move_tier(
        self, actor: Actor, kind: EscalationKind, group: str | None, reason: str | None
    ) -> Decide:
        """Escalate, move functionally, or de-escalate along the tier ladder."""
        if group is not None:
            self._directory.group(group)
        ladder = self._levels.ladder()

        def decide(ticket: Ticket, now: datetime) -> Outcome:
            target, new, old = escalation_target(ladder, ticket.group_id, kind, group)
            return lifecycle.escalate(
                ticket,
                at=now,
                actor=actor,
                kind=kind.value,
                group_id=target,
                tier=None if new is None else new.level,
                previous_tier=None if old is None else old.level,
                reason=reason,
            )

        return _one(decide)
