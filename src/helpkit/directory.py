"""The directory of people: agents, groups, contacts and organizations.

Application layer over the store: it validates what a command gives (ids, emails, domains,
group membership, an agent's being active), builds the value objects, and saves them. Getting
the contact of an email address creates it when it is new, atomically: two threads or
processes asking for the same new address get the same contact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from helpkit._checks import check_items, check_text
from helpkit.errors import DuplicateError, NotFoundError, ValidationError
from helpkit.people import Agent, Contact, Group, Organization, normalize_email
from helpkit.ports import Capability, KeptParties, PartyReads, Store, capable
from helpkit.tickets import Actor, ActorKind, Ticket

__all__ = ["UNSET", "Directory", "Unset"]


class Unset:
    """The type of :data:`UNSET`."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()
"""Marks an argument that was not given (distinct from ``None``, which clears)."""

_CONTACT_CHANGES: Final = frozenset(
    {"name", "emails", "phone", "language", "timezone", "organization", "vip", "segment"}
)
_ORGANIZATION_CHANGES: Final = frozenset(
    {"name", "domains", "segment", "region", "vip", "shared_tickets"}
)


def _check_changes(changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError(
            f"cannot change {', '.join(unknown)}; changeable: {', '.join(sorted(allowed))}"
        )


class Directory:
    """Agents, groups, contacts and organizations of one store."""

    def __init__(
        self, store: Store, now: Callable[[], datetime], new_id: Callable[[], str]
    ) -> None:
        self._store = store
        self._now = now
        self._new_id = new_id
        # Agents and groups are saved or replaced, never deleted (no store can delete them):
        # an id found once exists for good. The checks that only need one to exist (the
        # staff actor, a group named) read it once, not at every command.
        self._agents_found: set[str] = set()
        self._groups_found: set[str] = set()
        self._parties = capable(store, Capability.PARTY_READS, PartyReads)
        self._kept = capable(store, Capability.KEPT_PARTIES, KeptParties)

    # ------------------------------------------------------------ agents and groups

    def add_group(
        self, group_id: str, name: str, *, tier: int | None = None, description: str | None = None
    ) -> Group:
        """Create or replace a group (``tier`` 1..4 = L1 service desk .. L4 vendor)."""
        group = Group(id=group_id, name=name, tier=tier, description=description)
        self._store.save_group(group)
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
        skills: Iterable[str] = (),
        calendar: str | None = None,
        role: str = "agent",
        restricted: bool = False,
    ) -> Agent:
        """Create or replace an agent; every group must exist."""
        agent = Agent(
            role=role,
            restricted=restricted,
            id=agent_id,
            name=name,
            email=email,
            group_ids=check_items(groups, "groups", str),
            languages=check_items(languages, "languages", str),
            active=active,
            skills=check_items(skills, "skills", str),
            calendar=calendar,
        )
        for group_id in agent.group_ids:
            self._group_exists(group_id)
        self._store.save_agent(agent)
        return agent

    _AGENT_FIELDS: Final = {
        "name": "name",
        "email": "email",
        "groups": "group_ids",
        "languages": "languages",
        "active": "active",
        "skills": "skills",
        "away_until": "away_until",
        "calendar": "calendar",
        "role": "role",
        "restricted": "restricted",
    }

    def update_agent(self, agent_id: str, changes: Mapping[str, Any]) -> Agent:
        """Change fields of an agent (name, email, groups, languages, active, skills,
        away_until, calendar, role, restricted); every group must exist. Returns it as saved."""
        unknown = sorted(set(changes) - set(self._AGENT_FIELDS))
        if unknown:
            raise ValidationError(
                f"unknown agent fields: {', '.join(map(str, unknown))} "
                f"(known: {', '.join(self._AGENT_FIELDS)})"
            )
        current = self.agent(agent_id)
        values = {self._AGENT_FIELDS[k]: v for k, v in changes.items()}
        try:
            agent = attrs.evolve(current, **values)
        except (TypeError, AttributeError) as exc:
            raise ValidationError(f"bad agent field: {exc}") from exc
        for group_id in agent.group_ids:
            self._store.get_group(group_id)
        self._store.save_agent(agent)
        return agent

    def set_agent_active(self, agent_id: str, active: bool) -> Agent:
        """Save the agent active or not (an inactive one cannot be assigned); returns it."""
        agent = attrs.evolve(self.agent(agent_id), active=active)
        self._store.save_agent(agent)
        return agent

    def agent(self, agent_id: str) -> Agent:
        """An agent by id."""
        agent = self._store.get_agent(check_text(agent_id, "an agent id"))
        self._agents_found.add(agent.id)
        return agent

    def group(self, group_id: str) -> Group:
        """A group by id."""
        group = self._store.get_group(check_text(group_id, "a group id"))
        self._groups_found.add(group.id)
        return group

    def _agent_exists(self, agent_id: str) -> None:
        """NotFoundError unless agent ``agent_id`` exists (read once: see ``__init__``)."""
        if agent_id not in self._agents_found:
            # One the store keeps was saved or read by it: it exists (and stays).
            if self._kept is None or self._kept.kept_agent(agent_id) is None:
                self._store.get_agent(agent_id)
            self._agents_found.add(agent_id)

    def _group_exists(self, group_id: str) -> None:
        """NotFoundError unless group ``group_id`` exists (read once: see ``__init__``)."""
        if group_id not in self._groups_found:
            self._store.get_group(group_id)
            self._groups_found.add(group_id)

    def staff_actor(self, actor: Actor) -> Actor:
        """``actor`` if it may run an agent command: an existing agent, or the system."""
        if not isinstance(actor, Actor):
            raise ValidationError(f"actor must be an Actor, e.g. Actor.agent('id'); got {actor!r}")
        if actor.kind is ActorKind.CONTACT:
            raise ValidationError("this command is for agents or the system, not contacts")
        if actor.kind is ActorKind.AGENT:
            self._agent_exists(actor.id)
        return actor

    def check_assignment(
        self, assignee: str | None, group: str | None, *known: Agent | None
    ) -> None:
        """The group exists, and the assignee exists, is active and belongs to the group.

        ``known`` are agents the caller has just read (saves reading them again).
        """
        if group is not None:
            self._group_exists(check_text(group, "a group id"))
        if assignee is None:
            return
        for agent in known:  # (a loop, not next() over a generator: no generator to make)
            if agent is not None and agent.id == assignee:
                break
        else:
            agent = self.agent(assignee)
        if not agent.active:
            raise ValidationError(f"agent {assignee!r} is inactive")
        if group is not None and not agent.in_group(group):
            raise ValidationError(f"agent {assignee!r} is not a member of group {group!r}")

    def check_party(self, who: Actor) -> None:
        """``who`` can follow a ticket: an existing agent or contact."""
        if not isinstance(who, Actor):
            raise ValidationError(f"a follower must be an Actor; got {who!r:.60}")
        if who.kind is ActorKind.AGENT:
            self._agent_exists(who.id)
        elif who.kind is ActorKind.CONTACT:
            self._store.get_contact(who.id)
        else:
            raise ValidationError("followers are agents or contacts")

    # ------------------------------------------------------------ organizations

    def create_organization(
        self,
        name: str,
        *,
        domains: Iterable[str] = (),
        segment: str | None = None,
        region: str | None = None,
        vip: bool = False,
        organization_id: str | None = None,
        shared_tickets: bool = False,
    ) -> Organization:
        """Create an organization; its email domains must not belong to another one."""
        now = self._now()
        org = Organization(
            shared_tickets=shared_tickets,
            id=organization_id or self._new_id(),
            name=name,
            domains=check_items(domains, "domains", str),
            segment=segment,
            region=region,
            vip=vip,
            created_at=now,
            updated_at=now,
        )
        self._store.save_organization(org)
        return org

    def update_organization(self, organization: Organization | str, **changes: Any) -> Organization:
        """Change fields (name, domains, segment, region, vip, shared_tickets) of an
        organization."""
        current = self.organization(organization)
        _check_changes(changes, _ORGANIZATION_CHANGES)
        updated = attrs.evolve(
            current, **changes, updated_at=self._now(), version=current.version + 1
        )
        self._store.save_organization(updated)
        return updated

    def organization(self, organization: Organization | str) -> Organization:
        """An organization by id (or the object, reloaded)."""
        org_id = organization.id if isinstance(organization, Organization) else organization
        return self._store.get_organization(check_text(org_id, "an organization id"))

    def organization_by_domain(self, domain: str) -> Organization:
        """The organization that owns an email domain."""
        return self._store.organization_by_domain(check_text(domain, "a domain"))

    def find_organizations(self, text: str, *, limit: int = 50) -> list[Organization]:
        """Organizations whose name contains ``text`` (case- and accent-insensitive)."""
        return self._store.find_organizations(check_text(text, "a search text"), limit=limit)

    # ------------------------------------------------------------ contacts

    def new_contact(
        self,
        name: str,
        *,
        emails: Iterable[str] | str = (),
        phone: str | None = None,
        language: str | None = None,
        timezone: str | None = None,
        organization: Organization | str | Unset | None = UNSET,
        vip: bool = False,
        segment: str | None = None,
        contact_id: str | None = None,
    ) -> Contact:
        """A checked contact, not saved yet (its organization looked up, from the email's
        domain unless given)."""
        now = self._now()
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
        return attrs.evolve(contact, organization_id=org_id)

    def create_contact(self, name: str, **fields: Any) -> Contact:
        """Create a contact. Without ``organization``, one owning the email's domain is used."""
        contact = self.new_contact(name, **fields)
        self._store.save_contact(contact)
        return contact

    def _organization_for(
        self, contact: Contact, organization: Organization | str | Unset | None
    ) -> str | None:
        if isinstance(organization, Unset):
            for email in contact.emails:
                try:
                    return self._store.organization_by_domain(email.rpartition("@")[2]).id
                except NotFoundError:
                    continue
            return None
        if organization is None:
            return None
        return self.organization(organization).id

    def update_contact(self, contact: Contact | str, **changes: Any) -> Contact:
        """Change fields of a contact (name, emails, phone, language, timezone, organization...)."""
        current = self.contact(contact)
        _check_changes(changes, _CONTACT_CHANGES)
        if "organization" in changes:
            org = changes.pop("organization")
            changes["organization_id"] = None if org is None else self.organization(org).id
        updated = attrs.evolve(
            current, **changes, updated_at=self._now(), version=current.version + 1
        )
        self._store.save_contact(updated)
        return updated

    def lookups(self, ticket: Ticket) -> RequesterLookups:
        """Lazy lookups of ``ticket``'s requester and organization (for rules)."""
        return RequesterLookups(self, ticket)

    def contact(self, contact: Contact | str) -> Contact:
        """A contact by id (or the object, reloaded)."""
        contact_id = contact.id if isinstance(contact, Contact) else contact
        return self._store.get_contact(check_text(contact_id, "a contact id"))

    def contact_by_email(self, email: str) -> Contact:
        """The contact with that email address (case-insensitive)."""
        return self._store.contact_by_email(normalize_email(email))

    def find_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        """Contacts whose name contains ``text`` (case- and accent-insensitive)."""
        return self._store.find_contacts(check_text(text, "a search text"), limit=limit)

    def contact_for_email(self, email: str, *, name: str | None = None) -> Contact:
        """The contact owning ``email``, created (with its domain's organization) if new.

        Atomic: when another thread or process creates the same address meanwhile, its
        contact is returned.
        """
        address = normalize_email(email)
        try:
            return self._store.contact_by_email(address)
        except NotFoundError:
            pass
        return self.save_new(self.new_contact(name or address.partition("@")[0], emails=(address,)))

    @property
    def saves_with_commit(self) -> bool:
        """Whether the store saves new contacts in a ticket commit's transaction
        (:attr:`~helpkit.ports.Capability.NEW_CONTACTS`); else they are saved before it."""
        return Capability.NEW_CONTACTS in getattr(self._store, "capabilities", ())

    def saved_meanwhile(self, contacts: Iterable[Contact]) -> bool:
        """Whether another writer has saved one of the addresses of ``contacts`` (new
        contacts a commit was refused for, with DuplicateError): the command, made again,
        finds that writer's contact."""
        for contact in contacts:
            for address in contact.emails:
                with contextlib.suppress(NotFoundError):
                    self._store.contact_by_email(address)
                    return True
        return False

    def save_new(self, contact: Contact) -> Contact:
        """Save a new contact; if another writer took one of its addresses meanwhile, the
        contact owning it (the one a get-or-create should return)."""
        try:
            self._store.save_contact(contact)
        except DuplicateError:
            for address in contact.emails:
                try:
                    return self._store.contact_by_email(address)
                except NotFoundError:
                    continue
            raise
        return contact

    def requester(self, requester: Contact | str) -> tuple[Contact, bool]:
        """A requester given as a contact, its id, or an email address, and whether it is
        new: a new address is *not* saved here; the checked contact comes back unsaved
        (save it with :meth:`save_new` once everything else is checked)."""
        if isinstance(requester, Contact):
            return self.contact(requester.id), False
        text = check_text(requester, "a requester (contact id or email)")
        if "@" in text:
            try:
                return self._store.get_contact(text), False
            except NotFoundError:
                pass
            address = normalize_email(text)
            try:
                return self._store.contact_by_email(address), False
            except NotFoundError:
                return self.new_contact(address.partition("@")[0], emails=(address,)), True
        return self.contact(text), False

    def acting_and_requester(
        self, actor: Actor, requester: Contact | str
    ) -> tuple[Agent | None, tuple[Contact, bool]]:
        """The agent ``actor`` (None for another kind of actor) and :meth:`requester`, read
        in that order; a requester given as a contact id is read with the agent in one read
        when the store has :attr:`~helpkit.ports.Capability.PARTY_READS`."""
        if (
            self._parties is not None
            and actor.kind is ActorKind.AGENT
            and isinstance(requester, str)
            and "@" not in requester
            and isinstance(actor.id, str)
        ):
            try:
                text = check_text(requester, "a requester (contact id or email)")
                agent_id = check_text(actor.id, "an agent id")
            except ValidationError:
                pass  # raised below, by the reads in order
            else:
                agent, contact = self._parties.agent_and_contact(agent_id, text)
                self._agents_found.add(agent.id)
                return agent, (contact, False)
        acting = self.agent(actor.id) if actor.kind is ActorKind.AGENT else None
        return acting, self.requester(requester)

    def kept_acting_and_requester(
        self, actor: Actor, requester: Contact | str
    ) -> tuple[Agent, tuple[Contact, bool]] | None:
        """:meth:`acting_and_requester` from what the store keeps (a store with
        :attr:`~helpkit.ports.Capability.KEPT_PARTIES`), without reading: an agent acting
        for a requester given as a contact id, both kept; else None. They may be stale: a
        decision on them is committed only inside :meth:`guarded`."""
        if (
            self._kept is None
            or not isinstance(actor, Actor)
            or actor.kind is not ActorKind.AGENT
            or not isinstance(actor.id, str)
            or not isinstance(requester, str)
            or "@" in requester
        ):
            return None
        kept = self._kept.kept_parties(actor.id, requester)
        if kept is None:
            return None
        agent, contact = kept
        return agent, (contact, False)

    def guarded(
        self, parties: tuple[Agent, tuple[Contact, bool]]
    ) -> contextlib.AbstractContextManager[None]:
        """A block whose first commit writes only if the agent and the contact of
        :meth:`kept_acting_and_requester`'s ``parties`` are still stored as kept
        (ConflictError, nothing written, otherwise)."""
        assert self._kept is not None
        agent, (contact, _) = parties
        return self._kept.guard_parties(agent, contact)

    def kept_acting(self, actor: Actor) -> Agent | None:
        """The agent ``actor`` as the store keeps it (a store with
        :attr:`~helpkit.ports.Capability.KEPT_PARTIES`), without reading; None when it is
        not an agent or not kept. It may be stale: a decision on it is committed only inside
        :meth:`guarded_agent`."""
        if (
            self._kept is None
            or not isinstance(actor, Actor)
            or actor.kind is not ActorKind.AGENT
            or not isinstance(actor.id, str)
        ):
            return None
        return self._kept.kept_agent(actor.id)

    def guarded_agent(self, agent: Agent) -> contextlib.AbstractContextManager[None]:
        """A block whose first commit writes only if ``agent`` (of :meth:`kept_acting`) is
        still stored as kept (ConflictError, nothing written, otherwise)."""
        assert self._kept is not None
        return self._kept.guard_agent(agent)


class RequesterLookups:
    """The requester and the organization of one ticket, each looked up when first asked for
    (rules' conditions read them only when they need them), the requester at most once."""

    def __init__(self, directory: Directory, ticket: Ticket) -> None:
        self._directory = directory
        self._ticket = ticket
        self._requester: Contact | None = None
        self._looked = False

    def requester(self) -> Contact | None:
        """The requester, or ``None`` if they no longer exist."""
        if not self._looked:
            self._looked = True
            with contextlib.suppress(NotFoundError):
                self._requester = self._directory.contact(self._ticket.requester_id)
        return self._requester

    def organization(self) -> Organization | None:
        """The ticket's (else the requester's) organization, or ``None``."""
        org_id = self._ticket.organization_id
        if org_id is None:
            requester = self.requester()
            org_id = None if requester is None else requester.organization_id
        if org_id is None:
            return None
        try:
            return self._directory.organization(org_id)
        except NotFoundError:
            return None
