"""A contact's view of the desk: what a customer portal may show and do for one person.

:meth:`helpkit.Helpdesk.for_contact` returns a :class:`CustomerView`. It sees the tickets the
contact is a party of (requester or follower, i.e. in CC) and, when their organization shares
its tickets (``Organization.shared_tickets``), the organization's tickets, read only. It shows
them as :class:`CustomerTicket` and :class:`CustomerComment`: the customer-facing part of a
ticket (no requester or organization, assignee, group, tags, custom fields, links, SLA or
internal counts: a contact copied in on another customer's ticket learns nothing of that
customer but what the conversation says) and its
public comments only; never internal notes, their files, nor the audit trail. It replies only
where the contact is a party, and opens tickets as the contact.

Refusals: a ticket the contact may not see is a :class:`~helpkit.errors.NotFoundError` with
the message a missing ticket gets (so the view never tells that another customer's ticket
exists); a ticket the contact may see but not write to (an organization's ticket they are no
party of) is an :class:`~helpkit.errors.AccessDeniedError`.

The view works through the facade's own methods (the commands run through the pipeline like
any other); it imports nothing above it, and holds no state but the contact's id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from helpkit.errors import AccessDeniedError, NotFoundError, ValidationError
from helpkit.people import Contact, Organization
from helpkit.ports import BlobStore, InboundAttachment
from helpkit.priority import Priority
from helpkit.queries import Page, SortOrder
from helpkit.tickets import Actor, ActorKind, Attachment, Comment, StatusCategory, Ticket

__all__ = ["CustomerComment", "CustomerDesk", "CustomerTicket", "CustomerView"]


class CustomerDesk(Protocol):
    """What a :class:`CustomerView` uses of the desk (the facade has it all)."""

    blobs: BlobStore

    def contact(self, contact: Contact | str) -> Contact: ...

    def organization(self, organization: Organization | str) -> Organization: ...

    def ticket(self, ref: Ticket | str | int) -> Ticket: ...

    def live_ticket(self, ref: Ticket | str | int) -> Ticket: ...

    def conversation(
        self, ref: Ticket | str | int, *, include_internal: bool = True
    ) -> tuple[Comment, ...]: ...

    def tickets(self, query: None = None, **filters: object) -> Page[Ticket]: ...

    def requester_reply(
        self,
        ref: Ticket | str | int,
        body: str,
        *,
        actor: Actor | None = None,
        channel: str | None = None,
        attachments: Iterable[InboundAttachment] = (),
    ) -> Ticket: ...

    def open_ticket(
        self,
        actor: Actor,
        *,
        requester: Contact | str,
        subject: str,
        body: str | None = None,
        channel: str = "web",
        custom_fields: Mapping[str, object] | None = None,
        attachments: Iterable[InboundAttachment] = (),
    ) -> Ticket: ...


@attrs.frozen(kw_only=True)
class CustomerTicket:
    """The customer-facing part of a ticket."""

    id: str
    number: int
    subject: str
    status: str
    category: StatusCategory
    priority: Priority
    channel: str
    created_at: datetime
    updated_at: datetime
    solved_at: datetime | None
    closed_at: datetime | None
    public_comments: int
    yours: bool
    """The viewing contact is its requester."""
    party: bool
    """The viewing contact is its requester or a follower: they may reply."""

    @property
    def reference(self) -> str:
        """The human-friendly reference, ``#1042``."""
        return f"#{self.number}"


@attrs.frozen(kw_only=True)
class CustomerComment:
    """A public comment as a customer sees it: who wrote it is told only as "you" or "the
    support team" (another contact's comment is neither)."""

    id: str
    body: str
    created_at: datetime
    by_you: bool
    by_staff: bool
    attachments: tuple[Attachment, ...]


def _ref(ref: object) -> str | int:
    if isinstance(ref, CustomerTicket):
        return ref.id
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise ValidationError(
            f"a ticket reference is a CustomerTicket, an id or a number; got {ref!r:.60}"
        )
    return ref


class CustomerView:
    """What one contact may see and do (see the module's documentation)."""

    def __init__(self, desk: CustomerDesk, contact_id: str) -> None:
        self._desk = desk
        self._id = contact_id
        self._actor = Actor.contact(contact_id)

    @property
    def contact_id(self) -> str:
        """The id of the contact this view is for."""
        return self._id

    def contact(self) -> Contact:
        """The contact, as stored now."""
        return self._desk.contact(self._id)

    # ------------------------------------------------------------ what the contact sees

    def _shared_organization(self) -> str | None:
        """The contact's organization id, when it shares its tickets."""
        org_id = self.contact().organization_id
        if org_id is None:
            return None
        try:
            org = self._desk.organization(org_id)
        except NotFoundError:
            return None
        return org.id if org.shared_tickets else None

    def _can_see(self, ticket: Ticket) -> bool:
        if ticket.has_party(self._id):
            return True
        org_id = ticket.organization_id
        return org_id is not None and org_id == self._shared_organization()

    def _visible(self, ref: object) -> Ticket:
        """The ticket ``ref``, if the contact may see it; else the NotFoundError a missing
        ticket gets."""
        wanted = _ref(ref)
        try:
            ticket = self._desk.ticket(wanted)
        except NotFoundError:
            ticket = None
        if ticket is None or not self._can_see(ticket):
            raise NotFoundError(f"no ticket {wanted!r:.60}")
        return ticket

    def _project(self, ticket: Ticket) -> CustomerTicket:
        return CustomerTicket(
            id=ticket.id,
            number=ticket.number,
            subject=ticket.subject,
            status=ticket.status,
            category=ticket.category,
            priority=ticket.priority,
            channel=ticket.channel,
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            solved_at=ticket.solved_at,
            closed_at=ticket.closed_at,
            public_comments=ticket.public_comments,
            yours=ticket.requester_id == self._id,
            party=ticket.has_party(self._id),
        )

    def _page(self, page: Page[Ticket]) -> Page[CustomerTicket]:
        return Page(tuple(self._project(t) for t in page.items), page.next_cursor)

    def tickets(self, *, limit: int = 50, after: str | None = None) -> Page[CustomerTicket]:
        """The tickets the contact requested, newest first (``after``: the previous page's
        ``next_cursor``). Tickets they only follow are read by reference (:meth:`ticket`)."""
        return self._page(
            self._desk.tickets(
                requester_ids={self._id}, sort=SortOrder.CREATED_DESC, limit=limit, after=after
            )
        )

    def organization_tickets(
        self, *, limit: int = 50, after: str | None = None
    ) -> Page[CustomerTicket]:
        """The tickets of the contact's organization, newest first, when it shares them;
        AccessDeniedError when the contact has no organization or it does not share them."""
        org_id = self._shared_organization()
        if org_id is None:
            raise AccessDeniedError(
                f"contact {self._id!r} has no organization that shares its tickets"
            )
        return self._page(
            self._desk.tickets(
                organization_ids={org_id}, sort=SortOrder.CREATED_DESC, limit=limit, after=after
            )
        )

    def ticket(self, ref: CustomerTicket | str | int) -> CustomerTicket:
        """A ticket the contact may see, by id or number (``1042`` or ``"#1042"``)."""
        return self._project(self._visible(ref))

    def conversation(self, ref: CustomerTicket | str | int) -> tuple[CustomerComment, ...]:
        """The public comments of a ticket the contact may see, oldest first (those of
        tickets merged into it included); never internal notes."""
        ticket = self._visible(ref)
        return tuple(
            self._comment(c) for c in self._desk.conversation(ticket.id, include_internal=False)
        )

    def _comment(self, comment: Comment) -> CustomerComment:
        return CustomerComment(
            id=comment.id,
            body=comment.body,
            created_at=comment.created_at,
            by_you=comment.author == self._actor,
            by_staff=comment.author.kind is not ActorKind.CONTACT,
            attachments=comment.attachments,
        )

    def attachment_bytes(self, ref: CustomerTicket | str | int, attachment_id: str) -> bytes:
        """The bytes of a file on a public comment of a ticket the contact may see;
        NotFoundError for any other."""
        for comment in self._public(ref):
            for attachment in comment.attachments:
                if attachment.id == attachment_id:
                    return self._desk.blobs.get(attachment.sha256)
        raise NotFoundError(f"no attachment {attachment_id!r:.60} on ticket {_ref(ref)!r:.60}")

    def _public(self, ref: object) -> Sequence[Comment]:
        ticket = self._visible(ref)
        return self._desk.conversation(ticket.id, include_internal=False)

    # ------------------------------------------------------------ what the contact does

    def reply(
        self,
        ref: CustomerTicket | str | int,
        body: str,
        *,
        attachments: Iterable[InboundAttachment] = (),
    ) -> CustomerTicket:
        """Write to a ticket the contact is a party of (it reopens a pending or solved one;
        on a closed one it opens a follow-up, which is returned). A ticket they may see but
        are no party of (their organization's) is refused with AccessDeniedError."""
        ticket = self._visible(ref)
        live = self._desk.live_ticket(ticket.id)
        if not ticket.has_party(self._id):
            raise AccessDeniedError(
                f"contact {self._id!r} is no party of ticket {ticket.reference}: only its "
                "requester and followers write to it"
            )
        if not self._can_see(live):
            raise NotFoundError(f"no ticket {_ref(ref)!r:.60}")
        after = self._desk.requester_reply(
            ticket.id, body, actor=self._actor, channel="web", attachments=attachments
        )
        return self._project(after)

    def open_ticket(
        self,
        subject: str,
        *,
        body: str | None = None,
        custom_fields: Mapping[str, object] | None = None,
        attachments: Iterable[InboundAttachment] = (),
    ) -> CustomerTicket:
        """Open a ticket as the contact, its requester (channel ``web``)."""
        opened = self._desk.open_ticket(
            self._actor,
            requester=self._id,
            subject=subject,
            body=body,
            channel="web",
            custom_fields=custom_fields,
            attachments=attachments,
        )
        return self._project(opened)
