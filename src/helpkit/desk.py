"""The :class:`Helpdesk` facade: commands -> domain decisions -> one store commit -> observers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from helpkit import lifecycle
from helpkit._time import to_utc
from helpkit.calendar import BusinessCalendar
from helpkit.config import DeskConfig
from helpkit.errors import (
    HelpkitError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from helpkit.escalation import (
    DEFAULT_TIER_NAMES,
    Action,
    EscalationKind,
    Tier,
    TierLadder,
    escalation_target,
    tier_times,
)
from helpkit.events import Event, SlaBreached, SlaWarned
from helpkit.fields import FieldValue
from helpkit.ids import new_id
from helpkit.lifecycle import Outcome
from helpkit.people import Agent, Contact, Group, Organization, normalize_email
from helpkit.plugins import PluginHost
from helpkit.ports import (
    Channel,
    Clock,
    OutboundMessage,
    Recipient,
    Store,
    SystemClock,
    TicketChange,
)
from helpkit.priority import Impact, Urgency
from helpkit.queries import Page, SortOrder, TicketQuery
from helpkit.sla import SlaContext, SlaPolicy, SlaStatus, compute_sla, fired_checks
from helpkit.sweep import SWEEP_ACTOR, SweepReport
from helpkit.sweep import sweep as run_sweep
from helpkit.tickets import Actor, ActorKind, Comment, LinkKind, StatusCategory, Ticket

__all__ = ["UNSET", "Helpdesk", "TicketRef"]

log = logging.getLogger("helpkit")

TicketRef = Ticket | str | int
"""A ticket given as the object, its id, or its number (``1042`` or ``"#1042"``)."""


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Marks an argument that was not given (distinct from ``None``, which clears)."""

_MAX_MERGE_CHAIN = 1000
_ALWAYS = BusinessCalendar.always("UTC")
_DEFAULT_PAUSE = frozenset({StatusCategory.PENDING, StatusCategory.ON_HOLD})


def _check_written(
    store: Store, changes: Sequence[TicketChange], written: Sequence[TicketChange] | None
) -> None:
    """The store returned one numbered change per change (the Store contract of commit)."""
    name = type(store).__name__
    if not isinstance(written, Sequence) or len(written) != len(changes):
        raise StoreError(
            f"{name}.commit returned {written!r:.80} for {len(changes)} changes: a store's "
            "commit returns the changes as written (see the Store protocol); the commit may "
            "have been stored"
        )
    for change in written:
        if not isinstance(change, TicketChange) or change.ticket.number < 1:
            raise StoreError(
                f"{name}.commit returned a ticket without a number: a store numbers the "
                "tickets committed with number 0 (see the Store protocol)"
            )


class Helpdesk:
    """An embeddable helpdesk: tickets, conversation, people, queries and plugins.

    ``store`` is a URL (``"memory://"``, ``"sqlite:///desk.db"``) resolved through the
    registered store plugins, or a ready :class:`~helpkit.ports.Store`. Every command takes the
    ``actor`` doing it, reads "now" from ``clock``, validates before writing, writes events and
    state in one store commit, and then tells the ``helpkit_event`` observers.

    ``id_factory`` makes the ids of new tickets, comments, contacts and organizations; the
    default, :func:`helpkit.ids.new_id`, makes time-ordered UUIDs (version 7) as 32 hex digits.
    """

    def __init__(
        self,
        store: str | Store = "memory://",
        *,
        config: DeskConfig | Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        plugins: Sequence[object] = (),
        entry_points: bool = True,
        blocked_plugins: Iterable[str] = (),
        channels: Iterable[Channel] = (),
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        if config is None:
            config = DeskConfig()
        elif not isinstance(config, DeskConfig):
            config = DeskConfig.from_dict(config)
        self.config: DeskConfig = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.plugins = PluginHost(plugins, entry_points=entry_points, blocked=blocked_plugins)
        self._new_id = id_factory or new_id
        self.channels: dict[str, Channel] = {}
        for name, options in config.channels.items():
            kind = str(options.get("type", name))
            self.channels[name] = self.plugins.make_channel(kind, {"name": name, **options})
        for channel in channels:
            self.channels[channel.name] = channel
        if config.reply_channel is not None and config.reply_channel not in self.channels:
            raise ValidationError(f"reply_channel {config.reply_channel!r} is not configured")
        self.store: Store = self.plugins.open_store(store) if isinstance(store, str) else store

    # ------------------------------------------------------------------ plumbing

    def shutdown(self) -> None:
        """Close the store (``with Helpdesk(...) as desk:`` does it on exit)."""
        self.store.close()

    def __enter__(self) -> Helpdesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def now(self) -> datetime:
        """The clock's current instant, checked aware and in UTC."""
        return to_utc(self.clock.now(), "clock.now()")

    def _commit(self, outcomes: Sequence[Outcome]) -> list[Ticket]:
        return self.commit_outcomes(outcomes)

    def commit_outcomes(
        self,
        outcomes: Sequence[Outcome],
        *,
        known_events: Mapping[str, Sequence[Event]] | None = None,
    ) -> list[Ticket]:
        """Write the outcomes of domain decisions in one store commit, then tell the observers.

        Each changed ticket's SLA schedule (policy, next deadline, next check) is recomputed
        from its whole history first. ``known_events`` are histories the caller already loaded
        (before these outcomes), to save a read. Returns the tickets as stored, in order.
        """
        now = self.now()
        tickets: list[Ticket] = []
        changes: list[TicketChange] = []
        positions: list[int] = []  # where each change's ticket sits in ``tickets``
        for outcome in outcomes:
            ticket = outcome.ticket
            if outcome.changed:
                if self.config.sla is not None:
                    before: Sequence[Event] = ()
                    if outcome.previous_seq:
                        known = (known_events or {}).get(ticket.id)
                        before = known if known is not None else self.store.events(ticket.id)
                    ticket = self._schedule(ticket, [*before, *outcome.events], now)
                changes.append(TicketChange(ticket, outcome.events, outcome.previous_seq))
                positions.append(len(tickets))
            tickets.append(ticket)
        if changes:
            written = self.store.commit(changes)
            _check_written(self.store, changes, written)
            for position, change in zip(positions, written, strict=True):
                tickets[position] = change.ticket
            for change in written:
                for event in change.events:
                    self.plugins.notify(event, self)
        return tickets

    def _agent_actor(self, actor: Actor) -> Actor:
        if not isinstance(actor, Actor):
            raise ValidationError(f"actor must be an Actor, e.g. Actor.agent('id'); got {actor!r}")
        if actor.kind is ActorKind.CONTACT:
            raise ValidationError("this command is for agents or the system, not contacts")
        if actor.kind is ActorKind.AGENT:
            self.store.get_agent(actor.id)
        return actor

    # ------------------------------------------------------------------ agents, groups

    def add_group(
        self, group_id: str, name: str, *, tier: int | None = None, description: str | None = None
    ) -> Group:
        """Create or replace a group (``tier`` 1..4 = L1 service desk .. L4 vendor)."""
        group = Group(id=group_id, name=name, tier=tier, description=description)
        self.store.save_group(group)
        return group

    def add_agent(
        self,
        agent_id: str,
        name: str,
        *,
        email: str | None = None,
        groups: Iterable[str] = (),
        languages: Iterable[str] = (),
        active: bool = True,
    ) -> Agent:
        """Create or replace an agent; every group must exist."""
        group_ids = tuple(groups)
        for group_id in group_ids:
            self.store.get_group(group_id)
        agent = Agent(
            id=agent_id,
            name=name,
            email=email,
            group_ids=group_ids,
            languages=tuple(languages),
            active=active,
        )
        self.store.save_agent(agent)
        return agent

    def agent(self, agent_id: str) -> Agent:
        """An agent by id."""
        return self.store.get_agent(agent_id)

    def group(self, group_id: str) -> Group:
        """A group by id."""
        return self.store.get_group(group_id)

    def agents(self) -> list[Agent]:
        """All agents."""
        return self.store.list_agents()

    def groups(self) -> list[Group]:
        """All groups."""
        return self.store.list_groups()

    # ------------------------------------------------------------------ contacts, organizations

    def create_organization(
        self,
        name: str,
        *,
        domains: Iterable[str] = (),
        segment: str | None = None,
        region: str | None = None,
        vip: bool = False,
        organization_id: str | None = None,
    ) -> Organization:
        """Create an organization; its email domains must not belong to another one."""
        now = self.now()
        org = Organization(
            id=organization_id or self._new_id(),
            name=name,
            domains=tuple(domains),
            segment=segment,
            region=region,
            vip=vip,
            created_at=now,
            updated_at=now,
        )
        self.store.save_organization(org)
        return org

    def update_organization(self, organization: Organization | str, **changes: Any) -> Organization:
        """Change fields (name, domains, segment, region, vip) of an organization."""
        current = self.organization(organization)
        allowed = {"name", "domains", "segment", "region", "vip"}
        _check_changes(changes, allowed)
        updated = attrs.evolve(
            current, **changes, updated_at=self.now(), version=current.version + 1
        )
        self.store.save_organization(updated)
        return updated

    def organization(self, organization: Organization | str) -> Organization:
        """An organization by id (or the object, reloaded)."""
        org_id = organization.id if isinstance(organization, Organization) else organization
        return self.store.get_organization(org_id)

    def organization_by_domain(self, domain: str) -> Organization:
        """The organization that owns an email domain."""
        return self.store.organization_by_domain(domain)

    def find_organizations(self, text: str, *, limit: int = 50) -> list[Organization]:
        """Organizations whose name contains ``text`` (case- and accent-insensitive)."""
        return self.store.find_organizations(text, limit=limit)

    def create_contact(
        self,
        name: str,
        *,
        emails: Iterable[str] | str = (),
        phone: str | None = None,
        language: str | None = None,
        timezone: str | None = None,
        organization: Organization | str | _Unset | None = UNSET,
        vip: bool = False,
        segment: str | None = None,
        contact_id: str | None = None,
    ) -> Contact:
        """Create a contact. Without ``organization``, one owning the email's domain is used."""
        now = self.now()
        contact = Contact(
            id=contact_id or self._new_id(),
            name=name,
            emails=emails,
            phone=phone,
            language=language,
            timezone=timezone,
            vip=vip,
            segment=segment,
            created_at=now,
            updated_at=now,
        )
        org_id = self._organization_for(contact, organization)
        contact = attrs.evolve(contact, organization_id=org_id)
        self.store.save_contact(contact)
        return contact

    def _organization_for(
        self, contact: Contact, organization: Organization | str | _Unset | None
    ) -> str | None:
        if isinstance(organization, _Unset):
            for email in contact.emails:
                try:
                    return self.store.organization_by_domain(email.rpartition("@")[2]).id
                except NotFoundError:
                    continue
            return None
        if organization is None:
            return None
        return self.organization(organization).id

    def update_contact(self, contact: Contact | str, **changes: Any) -> Contact:
        """Change fields of a contact (name, emails, phone, language, timezone, organization...)."""
        current = self.contact(contact)
        allowed = {
            "name",
            "emails",
            "phone",
            "language",
            "timezone",
            "organization",
            "vip",
            "segment",
        }
        _check_changes(changes, allowed)
        if "organization" in changes:
            org = changes.pop("organization")
            changes["organization_id"] = None if org is None else self.organization(org).id
        updated = attrs.evolve(
            current, **changes, updated_at=self.now(), version=current.version + 1
        )
        self.store.save_contact(updated)
        return updated

    def contact(self, contact: Contact | str) -> Contact:
        """A contact by id (or the object, reloaded)."""
        return self.store.get_contact(contact.id if isinstance(contact, Contact) else contact)

    def contact_by_email(self, email: str) -> Contact:
        """The contact with that email address (case-insensitive)."""
        return self.store.contact_by_email(normalize_email(email))

    def find_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        """Contacts whose name contains ``text`` (case- and accent-insensitive)."""
        return self.store.find_contacts(text, limit=limit)

    def contact_for_email(self, email: str, *, name: str | None = None) -> Contact:
        """The contact owning ``email``, created (with its domain's organization) if new."""
        address = normalize_email(email)
        try:
            return self.store.contact_by_email(address)
        except NotFoundError:
            return self.create_contact(name or address.partition("@")[0], emails=(address,))

    def tickets_of_contact(
        self, contact: Contact | str, *, limit: int = 50, after: str | None = None, **filters: Any
    ) -> Page[Ticket]:
        """All tickets a person requested, newest first."""
        found = self.contact(contact)
        return self.tickets(
            requester_ids={found.id},
            sort=SortOrder.CREATED_DESC,
            limit=limit,
            after=after,
            **filters,
        )

    def tickets_of_organization(
        self,
        organization: Organization | str,
        *,
        limit: int = 50,
        after: str | None = None,
        **filters: Any,
    ) -> Page[Ticket]:
        """All tickets of an organization's people, newest first."""
        found = self.organization(organization)
        return self.tickets(
            organization_ids={found.id},
            sort=SortOrder.CREATED_DESC,
            limit=limit,
            after=after,
            **filters,
        )

    # ------------------------------------------------------------------ reads

    def ticket(self, ref: TicketRef) -> Ticket:
        """A ticket by object, id or number (``1042`` or ``"#1042"``)."""
        if isinstance(ref, Ticket):
            return self.store.get_ticket(ref.id)
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self.store.get_ticket_by_number(ref)
        if isinstance(ref, str):
            if ref.startswith("#") and ref[1:].isdigit():
                return self.store.get_ticket_by_number(int(ref[1:]))
            return self.store.get_ticket(ref)
        raise ValidationError(f"a ticket reference is a Ticket, an id or a number; got {ref!r}")

    def live_ticket(self, ref: TicketRef) -> Ticket:
        """The ticket, or the ticket it was merged into (following merge chains to the end)."""
        ticket = self.ticket(ref)
        seen = {ticket.id}
        while ticket.merged_into is not None:
            ticket = self.store.get_ticket(ticket.merged_into)
            if ticket.id in seen or len(seen) > _MAX_MERGE_CHAIN:
                raise HelpkitError(f"merge chain of {ref!r} loops")
            seen.add(ticket.id)
        return ticket

    def history(self, ref: TicketRef) -> list[Event]:
        """The audit trail: every event of the ticket, in order."""
        return self.store.events(self.ticket(ref).id)

    def conversation(self, ref: TicketRef, *, include_internal: bool = True) -> tuple[Comment, ...]:
        """The ticket's comments, oldest first, including those merged into it."""
        comments = lifecycle.conversation(self.history(ref))
        if include_internal:
            return comments
        return tuple(c for c in comments if c.public)

    def tickets(self, query: TicketQuery | None = None, **filters: Any) -> Page[Ticket]:
        """Tickets matching a :class:`~helpkit.queries.TicketQuery` (or its fields as keywords)."""
        if query is None:
            query = TicketQuery(**filters)
        elif filters:
            query = attrs.evolve(query, **filters)
        return self.store.query(query)

    # ------------------------------------------------------------------ ticket commands

    def open_ticket(
        self,
        actor: Actor,
        *,
        requester: Contact | str,
        subject: str,
        body: str | None = None,
        impact: Impact | str = Impact.MEDIUM,
        urgency: Urgency | str = Urgency.MEDIUM,
        channel: str = "web",
        tags: Iterable[str] = (),
        custom_fields: Mapping[str, object] | None = None,
        group: str | None = None,
        assignee: str | None = None,
        cc: Iterable[Contact | str] = (),
        external_id: str | None = None,
        public: bool = True,
    ) -> Ticket:
        """Open a ticket for ``requester`` (a contact, its id, or an email address).

        ``body`` becomes the first comment (public unless ``public=False``). An unknown email
        address creates the contact. Required custom fields must be given.
        """
        if not isinstance(actor, Actor):
            raise ValidationError("actor must be an Actor")
        acting = self.store.get_agent(actor.id) if actor.kind is ActorKind.AGENT else None
        contact = self._requester(requester)
        if actor.kind is ActorKind.CONTACT and actor.id != contact.id:
            raise ValidationError("a contact can only open tickets for themself")
        followers = frozenset(Actor.contact(self._requester(c).id) for c in cc) - {
            Actor.contact(contact.id)
        }
        fields = self.config.fields.validate(dict(custom_fields or {}), partial=False)
        self._check_assignment(assignee, group, acting)
        now = self.now()
        ticket_id = self._new_id()
        first = None
        if body is not None:
            first = Comment(
                id=self._new_id(),
                author=actor,
                body=body,
                public=public,
                channel=channel,
                created_at=now,
                external_id=external_id,
                ticket_id=ticket_id,
            )
        created = self._new_ticket(
            ticket_id=ticket_id,
            at=now,
            actor=actor,
            subject=subject,
            requester_id=contact.id,
            organization_id=contact.organization_id,
            impact=Impact.coerce(impact),
            urgency=Urgency.coerce(urgency),
            matrix=self.config.matrix,
            workflow=self.config.workflow,
            channel=_word(channel, "channel"),
            first_comment=first,
            tags=tags,
            followers=followers,
            custom_fields={k: v for k, v in fields.items() if v is not None},
            assignee_id=assignee,
            group_id=group,
        )
        return created

    def _requester(self, requester: Contact | str) -> Contact:
        if isinstance(requester, Contact):
            return self.contact(requester.id)
        if isinstance(requester, str) and "@" in requester:
            try:
                return self.store.get_contact(requester)
            except NotFoundError:
                return self.contact_for_email(requester)
        return self.contact(requester)

    def _check_assignment(
        self, assignee: str | None, group: str | None, *known: Agent | None
    ) -> None:
        """The group exists, and the assignee exists, is active and belongs to the group.

        ``known`` are agents the caller has just read (saves reading them again).
        """
        if group is not None:
            self.store.get_group(group)
        if assignee is None:
            return
        agent = next((a for a in known if a is not None and a.id == assignee), None)
        if agent is None:
            agent = self.store.get_agent(assignee)
        if not agent.active:
            raise ValidationError(f"agent {assignee!r} is inactive")
        if group is not None and not agent.in_group(group):
            raise ValidationError(f"agent {assignee!r} is not a member of group {group!r}")

    def _comment(
        self,
        ref: TicketRef,
        actor: Actor,
        body: str,
        *,
        public: bool,
        channel: str | None,
        status: str | None = None,
        external_id: str | None = None,
        in_reply_to: str | None = None,
    ) -> Ticket:
        ticket = self.ticket(ref)
        comment = Comment(
            id=self._new_id(),
            author=actor,
            body=body,
            public=public,
            channel=_word(channel or ticket.channel, "channel"),
            created_at=self.now(),
            external_id=external_id,
            in_reply_to=in_reply_to,
            ticket_id=ticket.id,
        )
        outcome = lifecycle.add_comment(
            ticket, comment, at=comment.created_at, workflow=self.config.workflow, status=status
        )
        return self._commit([outcome])[0]

    def reply(
        self,
        ref: TicketRef,
        actor: Actor,
        body: str,
        *,
        status: str | None = None,
        channel: str | None = None,
    ) -> Ticket:
        """A public reply from an agent; it is sent to the requester and followers.

        A new ticket becomes open; ``status`` submits the reply with a status (e.g. pending).
        """
        return self._comment(
            ref, self._agent_actor(actor), body, public=True, channel=channel, status=status
        )

    def note(self, ref: TicketRef, actor: Actor, body: str) -> Ticket:
        """An internal note: visible to agents only, never sent to the requester."""
        return self._comment(ref, self._agent_actor(actor), body, public=False, channel="internal")

    def requester_reply(
        self,
        ref: TicketRef,
        body: str,
        *,
        actor: Actor | None = None,
        channel: str | None = None,
        external_id: str | None = None,
        in_reply_to: str | None = None,
    ) -> Ticket:
        """A message from the requester (or a CC'd contact).

        It reopens a pending or solved ticket. A message to a merged ticket goes to the ticket
        it was merged into; a message to a closed ticket opens a follow-up ticket linked to it,
        which is returned.
        """
        ticket = self.live_ticket(ref)
        author = actor if actor is not None else Actor.contact(ticket.requester_id)
        if author.kind is not ActorKind.CONTACT:
            raise ValidationError("requester_reply is written by a contact")
        self.store.get_contact(author.id)
        if ticket.is_closed:
            return self._follow_up(ticket, author, body, channel, external_id)
        return self._comment(
            ticket,
            author,
            body,
            public=True,
            channel=channel,
            external_id=external_id,
            in_reply_to=in_reply_to,
        )

    def _follow_up(
        self,
        closed: Ticket,
        author: Actor,
        body: str,
        channel: str | None,
        external_id: str | None,
    ) -> Ticket:
        now = self.now()
        ticket_id = self._new_id()
        contact = self.store.get_contact(author.id)
        comment = Comment(
            id=self._new_id(),
            author=author,
            body=body,
            public=True,
            channel=channel or closed.channel,
            created_at=now,
            external_id=external_id,
            ticket_id=ticket_id,
        )
        created = self._new_ticket(
            ticket_id=ticket_id,
            at=now,
            actor=author,
            subject=closed.subject,
            requester_id=contact.id,
            organization_id=contact.organization_id,
            impact=closed.impact,
            urgency=closed.urgency,
            matrix=self.config.matrix,
            workflow=self.config.workflow,
            channel=channel or closed.channel,
            first_comment=comment,
            tags=closed.tags,
            group_id=closed.group_id,
            follow_up_of=closed.id,
        )
        return created

    def _new_ticket(self, **arguments: Any) -> Ticket:
        # Number 0: the store numbers the ticket inside its commit, so a refused ticket
        # spends no number and numbers follow commit order.
        return self._commit([lifecycle.open_ticket(number=0, **arguments)])[0]

    def assign(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        agent: str | _Unset | None = UNSET,
        group: str | _Unset | None = UNSET,
    ) -> Ticket:
        """Set the assignee and/or group (``None`` clears). The agent must be in the group.

        Giving only an agent keeps the group if the agent belongs to it, else takes the
        agent's first group.
        """
        self._agent_actor(actor)
        ticket = self.ticket(ref)
        new_group = ticket.group_id if isinstance(group, _Unset) else group
        new_agent = ticket.assignee_id if isinstance(agent, _Unset) else agent
        member: Agent | None = None
        if not isinstance(agent, _Unset) and agent is not None and isinstance(group, _Unset):
            member = self.store.get_agent(agent)
            if new_group is None or not member.in_group(new_group):
                new_group = member.group_ids[0] if member.group_ids else None
        if not isinstance(group, _Unset) and isinstance(agent, _Unset) and new_agent is not None:
            if group is None:
                new_agent = None  # no group, no assignee
            else:
                member = self.store.get_agent(new_agent)
                if not member.in_group(group):
                    new_agent = None  # the old assignee is not in the new group
        self._check_assignment(new_agent, new_group, member)
        outcome = lifecycle.assign(
            ticket, at=self.now(), actor=actor, assignee_id=new_agent, group_id=new_group
        )
        return self._commit([outcome])[0]

    def transfer(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        group: str,
        agent: str | None = None,
        reason: str | None = None,
    ) -> Ticket:
        """Hand the ticket to another group (and optionally one of its agents), with a reason."""
        self._agent_actor(actor)
        ticket = self.ticket(ref)
        self._check_assignment(agent, group)
        outcome = lifecycle.assign(
            ticket,
            at=self.now(),
            actor=actor,
            assignee_id=agent,
            group_id=group,
            transfer=True,
            reason=reason,
        )
        return self._commit([outcome])[0]

    def set_status(
        self, ref: TicketRef, actor: Actor, status: str, *, reason: str | None = None
    ) -> Ticket:
        """Move to a configured status, if its category allows the transition."""
        self._agent_actor(actor)
        return self._change_status(self.ticket(ref), actor, status, reason)

    def _change_status(
        self, ticket: Ticket, actor: Actor, status: str, reason: str | None
    ) -> Ticket:
        outcome = lifecycle.change_status(
            ticket,
            status,
            at=self.now(),
            actor=actor,
            workflow=self.config.workflow,
            reason=reason,
        )
        return self._commit([outcome])[0]

    def _to_category(
        self,
        ref: TicketRef,
        actor: Actor,
        category: StatusCategory,
        comment: str | None,
        reason: str | None,
    ) -> Ticket:
        self._agent_actor(actor)
        ticket = self.ticket(ref)
        status = self.config.workflow.default(category).name
        if comment is None:
            return self._change_status(ticket, actor, status, reason)
        note = Comment(
            id=self._new_id(),
            author=actor,
            body=comment,
            public=True,
            channel=ticket.channel,
            created_at=self.now(),
            ticket_id=ticket.id,
        )
        outcome = lifecycle.add_comment(
            ticket, note, at=note.created_at, workflow=self.config.workflow, status=status
        )
        return self._commit([outcome])[0]

    def resolve(
        self, ref: TicketRef, actor: Actor, *, comment: str | None = None, reason: str | None = None
    ) -> Ticket:
        """Mark solved (optionally with a public closing comment)."""
        return self._to_category(ref, actor, StatusCategory.SOLVED, comment, reason)

    def close(self, ref: TicketRef, actor: Actor, *, reason: str | None = None) -> Ticket:
        """Close: the ticket becomes read-only."""
        return self._to_category(ref, actor, StatusCategory.CLOSED, None, reason)

    def reopen(self, ref: TicketRef, actor: Actor, *, reason: str | None = None) -> Ticket:
        """Reopen a solved ticket."""
        self._agent_actor(actor)
        ticket = self.ticket(ref)
        target = lifecycle.reopen_target(ticket, self.config.workflow)
        return self._change_status(ticket, actor, target, reason)

    def prioritize(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        impact: Impact | str | None = None,
        urgency: Urgency | str | None = None,
        reason: str | None = None,
    ) -> Ticket:
        """Set impact and/or urgency; the priority is recomputed from the matrix."""
        self._agent_actor(actor)
        outcome = lifecycle.change_priority(
            self.ticket(ref),
            at=self.now(),
            actor=actor,
            matrix=self.config.matrix,
            impact=None if impact is None else Impact.coerce(impact),
            urgency=None if urgency is None else Urgency.coerce(urgency),
            reason=reason,
        )
        return self._commit([outcome])[0]

    def set_subject(self, ref: TicketRef, actor: Actor, subject: str) -> Ticket:
        """Edit the subject."""
        self._agent_actor(actor)
        outcome = lifecycle.change_subject(self.ticket(ref), subject, at=self.now(), actor=actor)
        return self._commit([outcome])[0]

    def tag(self, ref: TicketRef, actor: Actor, *tags: str) -> Ticket:
        """Add tags (lower-cased; spaces become underscores)."""
        self._agent_actor(actor)
        outcome = lifecycle.change_tags(self.ticket(ref), at=self.now(), actor=actor, add=tags)
        return self._commit([outcome])[0]

    def untag(self, ref: TicketRef, actor: Actor, *tags: str) -> Ticket:
        """Remove tags."""
        self._agent_actor(actor)
        outcome = lifecycle.change_tags(self.ticket(ref), at=self.now(), actor=actor, remove=tags)
        return self._commit([outcome])[0]

    def follow(self, ref: TicketRef, actor: Actor, follower: Actor | None = None) -> Ticket:
        """Add a follower (default: the actor): they receive public replies."""
        who = follower if follower is not None else actor
        self._check_party(who)
        outcome = lifecycle.change_followers(
            self.ticket(ref), at=self.now(), actor=actor, add=[who]
        )
        return self._commit([outcome])[0]

    def unfollow(self, ref: TicketRef, actor: Actor, follower: Actor | None = None) -> Ticket:
        """Remove a follower (default: the actor)."""
        who = follower if follower is not None else actor
        outcome = lifecycle.change_followers(
            self.ticket(ref), at=self.now(), actor=actor, remove=[who]
        )
        return self._commit([outcome])[0]

    def _check_party(self, who: Actor) -> None:
        if who.kind is ActorKind.AGENT:
            self.store.get_agent(who.id)
        elif who.kind is ActorKind.CONTACT:
            self.store.get_contact(who.id)
        else:
            raise ValidationError("followers are agents or contacts")

    def set_fields(self, ref: TicketRef, actor: Actor, values: Mapping[str, object]) -> Ticket:
        """Set typed custom fields (``None`` clears one)."""
        self._agent_actor(actor)
        checked: dict[str, FieldValue | None] = self.config.fields.validate(values)
        outcome = lifecycle.set_custom_fields(self.ticket(ref), checked, at=self.now(), actor=actor)
        return self._commit([outcome])[0]

    def link(
        self,
        ref: TicketRef,
        actor: Actor,
        other: TicketRef,
        kind: LinkKind | str = LinkKind.RELATED,
    ) -> Ticket:
        """Link two tickets (parent/child, related, duplicate); both record the link."""
        self._agent_actor(actor)
        first, second = lifecycle.link(
            self.ticket(ref), self.ticket(other), kind, at=self.now(), actor=actor
        )
        return self._commit([first, second])[0]

    def unlink(
        self,
        ref: TicketRef,
        actor: Actor,
        other: TicketRef,
        kind: LinkKind | str = LinkKind.RELATED,
    ) -> Ticket:
        """Remove a link from both tickets."""
        self._agent_actor(actor)
        first, second = lifecycle.unlink(
            self.ticket(ref), self.ticket(other), kind, at=self.now(), actor=actor
        )
        return self._commit([first, second])[0]

    def merge(self, source: TicketRef, target: TicketRef, actor: Actor) -> Ticket:
        """Merge ``source`` into ``target`` and return the target.

        Comments and followers move to the target; the source gets the merged status and a
        pointer to the target; both audit trails record it; both writes are one commit.
        """
        self._agent_actor(actor)
        src = self.ticket(source)
        dst = self.ticket(target)
        first, second = lifecycle.merge(
            src,
            dst,
            lifecycle.conversation(self.store.events(src.id)),
            at=self.now(),
            actor=actor,
            workflow=self.config.workflow,
        )
        return self._commit([first, second])[1]

    # ------------------------------------------------------------------ SLA and escalation

    def ladder(self) -> TierLadder:
        """The escalation ladder: configured tiers, else the groups' ``tier`` in the store."""
        if self.config.tiers is not None:
            return self.config.tiers
        by_level: dict[int, list[str]] = {}
        for group in self.store.list_groups():
            if group.tier is not None:
                by_level.setdefault(group.tier, []).append(group.id)
        levels = set(DEFAULT_TIER_NAMES) | set(by_level)
        return TierLadder(
            [
                Tier(
                    level,
                    DEFAULT_TIER_NAMES.get(level, f"L{level}"),
                    tuple(by_level.get(level, ())),
                )
                for level in sorted(levels)
            ]
        )

    def sla_context(self, ticket: Ticket) -> SlaContext:
        """What SLA conditions need about the requester and the organization."""
        segment = region = None
        vip = False
        try:
            contact = self.store.get_contact(ticket.requester_id)
            segment, vip = contact.segment, contact.vip
        except NotFoundError:
            pass
        if ticket.organization_id is not None:
            try:
                org = self.store.get_organization(ticket.organization_id)
                segment = org.segment or segment
                region = org.region
                vip = vip or org.vip
            except NotFoundError:
                pass
        return SlaContext(segment=segment, region=region, vip=vip)

    def sla_policy_for(self, ticket: Ticket) -> SlaPolicy | None:
        """The SLA policy that applies to ``ticket`` now (first match, else the default)."""
        if self.config.sla is None:
            return None
        return self.config.sla.select(ticket, self.sla_context(ticket))

    def _schedule(self, ticket: Ticket, events: Sequence[Event], now: datetime) -> Ticket:
        policy = self.sla_policy_for(ticket)
        if policy is None:
            schedule: tuple[str | None, datetime | None, datetime | None] = (None, None, None)
        else:
            status = compute_sla(events, policy, max(now, ticket.updated_at))
            fired = fired_checks(events, policy=policy.name)
            schedule = (policy.name, status.next_deadline, status.next_check(fired))
        if schedule == (ticket.sla_policy, ticket.next_deadline, ticket.next_check):
            return ticket
        return attrs.evolve(
            ticket, sla_policy=schedule[0], next_deadline=schedule[1], next_check=schedule[2]
        )

    def sla(self, ref: TicketRef, *, now: datetime | None = None) -> SlaStatus | None:
        """Every SLA clock of the ticket as of ``now`` (default: the clock), or ``None``."""
        ticket = self.ticket(ref)
        policy = self.sla_policy_for(ticket)
        if policy is None:
            return None
        at = self.now() if now is None else to_utc(now, "now")
        return compute_sla(self.store.events(ticket.id), policy, at)

    def reschedule_outcome(self, ticket: Ticket, events: Sequence[Event], now: datetime) -> Outcome:
        """An event recording a recomputed SLA schedule (when the configuration changed)."""
        policy = self.sla_policy_for(ticket)
        return lifecycle.record_sla_reschedule(
            ticket, at=now, actor=SWEEP_ACTOR, policy=None if policy is None else policy.name
        )

    def sweep(self, now: datetime | None = None, *, batch: int = 500) -> SweepReport:
        """Record due SLA warnings and breaches and run the escalation rules (idempotent)."""
        at = self.now() if now is None else to_utc(now, "now")
        return run_sweep(self, at, batch=batch)

    def escalate(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        group: str | None = None,
        functional: bool = False,
        reason: str | None = None,
    ) -> Ticket:
        """Escalate one tier up (or, with ``functional=True``, to another group of its tier)."""
        kind = EscalationKind.FUNCTIONAL if functional else EscalationKind.HIERARCHICAL
        return self._move_tier(ref, actor, kind, group, reason)

    def de_escalate(
        self, ref: TicketRef, actor: Actor, *, group: str | None = None, reason: str | None = None
    ) -> Ticket:
        """Hand the ticket back one tier down."""
        return self._move_tier(ref, actor, EscalationKind.DE_ESCALATION, group, reason)

    def _move_tier(
        self,
        ref: TicketRef,
        actor: Actor,
        kind: EscalationKind,
        group: str | None,
        reason: str | None,
    ) -> Ticket:
        self._agent_actor(actor)
        ticket = self.ticket(ref)
        if group is not None:
            self.store.get_group(group)
        target, new, old = escalation_target(self.ladder(), ticket.group_id, kind, group)
        outcome = lifecycle.escalate(
            ticket,
            at=self.now(),
            actor=actor,
            kind=kind.value,
            group_id=target,
            tier=None if new is None else new.level,
            previous_tier=None if old is None else old.level,
            reason=reason,
        )
        return self._commit([outcome])[0]

    def tier_times(self, ref: TicketRef, *, now: datetime | None = None) -> dict[int, timedelta]:
        """Business time the ticket spent in each tier (L1 = 1...), pauses excluded.

        Measured on the calendar of the ticket's SLA policy (24/7 UTC without one).
        """
        ticket = self.ticket(ref)
        policy = self.sla_policy_for(ticket)
        calendar = policy.calendar if policy is not None else _ALWAYS
        pause = policy.pause_categories if policy is not None else _DEFAULT_PAUSE
        at = self.now() if now is None else to_utc(now, "now")
        return tier_times(
            self.store.events(ticket.id), self.ladder(), calendar, at, pause_categories=pause
        )

    def deliver_sla_notice(self, event: SlaWarned | SlaBreached) -> str | None:
        """Tell the agents named by the escalation rules about a recorded warning or breach."""
        fraction = event.threshold if isinstance(event, SlaWarned) else 1.0
        actions = {a for _, a in self.config.escalation.actions_for(event.metric, fraction)}
        if not actions & {Action.NOTIFY_ASSIGNEE, Action.NOTIFY_GROUP}:
            return None
        ticket = self.store.get_ticket(event.ticket_id)
        agents: dict[str, Agent] = {}
        if Action.NOTIFY_ASSIGNEE in actions and ticket.assignee_id is not None:
            with contextlib.suppress(NotFoundError):
                agents[ticket.assignee_id] = self.store.get_agent(ticket.assignee_id)
        if Action.NOTIFY_GROUP in actions and ticket.group_id is not None:
            for agent in self.store.list_agents():
                if agent.active and agent.in_group(ticket.group_id):
                    agents[agent.id] = agent
        recipients = tuple(
            Recipient("agent", a.id, a.name, a.email) for a in agents.values() if a.email
        )
        channel = self.reply_channel_for(ticket)
        if channel is None or not recipients:
            return None
        metric = event.metric.replace("_", " ")
        due = "paused" if event.due is None else f"due {event.due:%Y-%m-%d %H:%M} UTC"
        what = (
            f"breached its {metric} target ({due})"
            if isinstance(event, SlaBreached)
            else f"reached {event.threshold:.0%} of its {metric} target ({due})"
        )
        message = OutboundMessage(
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            subject=f"[{ticket.reference}] SLA: {ticket.subject}",
            body=f"Ticket {ticket.reference} {what}.",
            comment_id=f"sla-{event.seq}",
            author_name="helpkit SLA",
            to=recipients,
            sent_at=self.now(),
            headers={"X-Helpkit-Notice": "sla"},
        )
        return channel.deliver(message)

    # ------------------------------------------------------------------ outbound

    def reply_channel_for(self, ticket: Ticket) -> Channel | None:
        """The channel a public reply on ``ticket`` leaves through, if any is configured."""
        channel = self.channels.get(ticket.channel)
        if channel is None and self.config.reply_channel is not None:
            channel = self.channels[self.config.reply_channel]
        if channel is None and len(self.channels) == 1:
            channel = next(iter(self.channels.values()))
        return channel

    def recipients(self, ticket: Ticket, *, exclude: Actor | None = None) -> tuple[Recipient, ...]:
        """Who hears about a public comment: the requester and the followers, minus ``exclude``."""
        parties = [Actor.contact(ticket.requester_id), *sorted(ticket.followers, key=str)]
        result: list[Recipient] = []
        for party in dict.fromkeys(parties):
            if party == exclude:
                continue
            try:
                if party.kind is ActorKind.CONTACT:
                    contact = self.store.get_contact(party.id)
                    result.append(Recipient("contact", contact.id, contact.name, contact.email))
                elif party.kind is ActorKind.AGENT:
                    agent = self.store.get_agent(party.id)
                    result.append(Recipient("agent", agent.id, agent.name, agent.email))
            except NotFoundError:
                log.warning("ticket %s: follower %s no longer exists", ticket.reference, party)
        return tuple(result)

    def deliver_comment(self, ticket_id: str, comment: Comment) -> str | None:
        """Send a public comment to the requester and followers through the reply channel."""
        if not comment.public or not self.channels:
            return None  # nothing to send through: skip the reads
        ticket = self.store.get_ticket(ticket_id)
        channel = self.reply_channel_for(ticket)
        if channel is None:
            return None
        recipients = self.recipients(ticket, exclude=comment.author)
        if not recipients:
            return None
        author = comment.author
        author_name = author.id
        try:
            if author.kind is ActorKind.AGENT:
                author_name = self.store.get_agent(author.id).name
            elif author.kind is ActorKind.CONTACT:
                author_name = self.store.get_contact(author.id).name
        except NotFoundError:
            pass
        message = OutboundMessage(
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            subject=f"[{ticket.reference}] {ticket.subject}",
            body=comment.body,
            comment_id=comment.id,
            author_name=author_name,
            to=recipients,
            sent_at=self.now(),
            in_reply_to=comment.in_reply_to,
        )
        return channel.deliver(message)


def _word(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValidationError(f"{what} must be a single word; got {value!r}")
    return value


def _check_changes(changes: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError(
            f"cannot change {', '.join(unknown)}; changeable: {', '.join(sorted(allowed))}"
        )
