# Over 600 lines: Receiver is one class (~530 lines); the six steps of an inbound message
# (key, screens, thread, people, decide, commit) share its lookups and its retry loop.
"""Intake: an inbound message becomes a new ticket, a comment on a ticket, or a suspended
message (what :meth:`helpkit.Helpdesk.receive` runs; the page *Intake* tells the rules).

1. **key**: ``<channel>:<external id>`` (:func:`receipt_key`); a receipt under it in the
   store's inbox means the message was received before: its outcome comes back again,
   ``duplicate=True``, and nothing is written.
2. **screens**: the first reason a ``helpkit_screen_inbound`` implementation gives suspends
   the message (kept whole in its receipt).
3. **thread**: a reference to a message of the desk that carries a thread token signed with
   the desk's secret threads onto that ticket. Unsigned hints (a ticket number in the subject,
   a reference to a message received on a ticket or to one the desk sent without a token)
   thread only when the sender is a party of the ticket: its requester, a follower, or an
   agent. A message whose hints name only tickets its sender is no party of is a stranger's:
   a new ticket, or suspended (``intake.strangers``).
4. **attachments** are checked against the limits (a message over them is suspended) and
   their bytes put in the desk's blob store, before anything is committed.
5. **people**: the sender's contact is got or created (its organization from the email's
   domain; a new sender's contact is saved in the commit of the ticket it opens, on a store
   with :attr:`~helpkit.ports.Capability.NEW_CONTACTS`, else just before it); the addresses
   in CC follow the ticket (``intake.cc_followers``), never the desk's own; an agent writes
   as the agent.
6. **commit**, through the pipeline, with the message's receipt: a concurrent ingest of the
   same message loses with DuplicateError, and the winner's outcome comes back.

Nothing here knows the facade: the store, the pipeline, the directory, the screens and the
thread tokens are handed in.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final, NoReturn, cast

import attrs

from helpkit import lifecycle
from helpkit._checks import check_text, count, optional_text
from helpkit.access import Access
from helpkit.config import DeskConfig
from helpkit.directory import Directory
from helpkit.errors import (
    AccessDeniedError,
    AttachmentError,
    ConfigError,
    DuplicateError,
    InvalidTransitionError,
    NotFoundError,
    ReadOnlyTicketError,
    ValidationError,
)
from helpkit.events import CommentAdded
from helpkit.lifecycle import Outcome
from helpkit.people import Agent, Contact, normalize_email
from helpkit.pipeline import Pipeline
from helpkit.ports import (
    AgentEmails,
    Capability,
    InboundAttachment,
    InboundMessage,
    Inbox,
    Receipt,
    ReceiptState,
    RequesterCounts,
    Store,
    capable,
)
from helpkit.priority import Impact, Urgency
from helpkit.queries import SortOrder, TicketQuery
from helpkit.roles import Permission, allowed
from helpkit.thread_tokens import ThreadTokens, parse_token, sent_ticket_id, tokens_in
from helpkit.tickets import Actor, ActorKind, Attachment, Comment, Ticket

__all__ = [
    "Intake",
    "IntakeKind",
    "Receiver",
    "clean_id",
    "receipt_key",
    "subject_ticket_number",
]

log = logging.getLogger("helpkit.intake")

_SUBJECT_TAG = re.compile(r"\[[^\[\]#]{0,40}#\s*([0-9]{1,19})\s*\]")
_MAX_FOLLOWERS: Final = 50
"""At most this many addresses of one message's CC become followers."""
_ACKNOWLEDGE_WINDOW: Final = timedelta(hours=1)
_ATTEMPTS: Final = 4
"""Times a message is threaded again when its ticket was merged under it meanwhile."""
_MAX_MERGE_CHAIN: Final = 1000
NO_SUBJECT: Final = "(no subject)"
NO_TEXT: Final = "(no text)"


class IntakeKind(enum.Enum):
    """What :meth:`Receiver.receive` made of a message."""

    CREATED = "created"
    """It opened a ticket (a follow-up, for a message to a closed ticket)."""
    COMMENTED = "commented"
    """It was added to a ticket's conversation."""
    SUSPENDED = "suspended"
    """A screen (or the stranger rule) held it back; it waits to be released or discarded."""
    DISCARDED = "discarded"
    """It had been suspended and then discarded (only as the outcome of a duplicate)."""


@attrs.frozen(kw_only=True)
class Intake:
    """What became of an inbound message."""

    kind: IntakeKind
    key: str
    """The message's receipt key (``<channel>:<external id>``)."""
    ticket_id: str | None = attrs.field(default=None, validator=optional_text)
    ticket_number: int | None = attrs.field(default=None)
    comment_id: str | None = attrs.field(default=None, validator=optional_text)
    reason: str | None = attrs.field(default=None, validator=optional_text)
    """Why it was suspended (for a released message: why it had been)."""
    duplicate: bool = False
    """The message had been received before: this is that first outcome again."""

    @ticket_number.validator
    def _number(self, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None:
            count(self, attribute, value)


# ------------------------------------------------------------------ pure helpers


def clean_id(value: str | None) -> str | None:
    """An external id as a key holds it: without angle brackets and surrounding white space
    (``None`` when nothing is left)."""
    if value is None:
        return None
    text = value.strip()
    while text != (bare := text.strip("<>").strip()):  # "< <id> >" too
        text = bare
    return text or None


def receipt_key(channel: str, external_id: str | None) -> str | None:
    """``<channel>:<external id>``, or ``None`` for a message without an external id."""
    cleaned = clean_id(external_id)
    return None if cleaned is None else f"{channel.strip()}:{cleaned}"


def subject_ticket_number(subject: str) -> int | None:
    """The ticket number a subject's tag names (``[#123]``, ``Re: [Ticket #123] ...``,
    ``[Acme Support #123]``), or ``None``: the first tag in square brackets whose ``#`` is
    followed by digits."""
    found = _SUBJECT_TAG.search(subject)
    if found is None:
        return None
    number = int(found.group(1))
    return number if 0 < number < 2**63 else None


def _cc_addresses(message: InboundMessage) -> list[str]:
    """The normalized addresses of ``message``'s CCs (those that are addresses)."""
    found: list[str] = []
    for copied in message.cc:
        try:
            found.append(normalize_email(copied.address))
        except ValidationError:
            continue
    return found


def _references(message: InboundMessage) -> list[str]:
    """The ids a message answers, the most recent first: In-Reply-To, then References from
    the last."""
    ids = [message.in_reply_to, *reversed(message.references)]
    found: list[str] = []
    for value in ids:
        cleaned = clean_id(value)
        if cleaned is not None and cleaned not in found:
            found.append(cleaned)
    return found


@attrs.frozen
class _Sender:
    address: str
    name: str | None
    agent: Agent | None
    contact: Contact | None
    """The sender's contact if there is one already (created only when writing)."""
    agents: Mapping[str, Agent]
    """The desk's active agents by email address: all of them, or (a store with
    :attr:`~helpkit.ports.Capability.AGENT_EMAILS`) those of the sender's and the CC'd
    addresses, the only ones looked up."""

    def is_party(self, ticket: Ticket) -> bool:
        if self.agent is not None:
            return True
        if self.contact is None:
            return False
        who = Actor.contact(self.contact.id)
        return ticket.requester_id == self.contact.id or who in ticket.followers


@attrs.frozen
class _Thread:
    ticket_id: str | None
    """The ticket to write on (before following merges), or None: a new ticket."""
    ticket: Ticket | None = None
    """That ticket as threading read it (the pipeline reads it again before deciding)."""
    stranger: str | None = None
    """Why the message is a stranger's (hints named tickets the sender is no party of)."""


class Receiver:
    """Receives the inbound messages of one desk."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        directory: Directory,
        config: DeskConfig,
        *,
        screen: Callable[[InboundMessage], str | None],
        keep_files: Callable[[Sequence[InboundAttachment]], tuple[Attachment, ...]],
        tokens: ThreadTokens | None,
        new_id: Callable[[], str],
        access: Access | None = None,
    ) -> None:
        self._access = access
        self._store = store
        self._pipeline = pipeline
        self._directory = directory
        self._config = config
        self._intake = config.intake
        self._screen = screen
        self._keep_files = keep_files
        self._tokens = tokens
        self._new_id = new_id
        self._inbox: Inbox | None = None
        # A store that finds agents by address: a message reads its sender's and CCs' agents,
        # not every agent of the desk.
        self._agent_emails = capable(store, Capability.AGENT_EMAILS, AgentEmails)
        # A store that counts a requester's recent tickets: the acknowledgement rate limit
        # decodes none of them.
        self._recent_requests = capable(store, Capability.REQUESTER_COUNTS, RequesterCounts)

    # ------------------------------------------------------------ the inbox

    def inbox(self) -> Inbox:
        """The store's inbox (ConfigError for a store without :attr:`Capability.INBOX`)."""
        if self._inbox is not None:
            return self._inbox
        store = self._store
        inbox = capable(store, Capability.INBOX, Inbox)
        if inbox is None:
            raise ConfigError(
                f"{type(store).__name__} keeps no inbox (Capability.INBOX): it cannot receive "
                "messages"
            )
        self._inbox = inbox
        return inbox

    def outcome(self, receipt: Receipt, *, duplicate: bool) -> Intake:
        """The :class:`Intake` a receipt tells of."""
        number = None
        if receipt.ticket_id is not None:
            try:
                number = self._store.get_ticket(receipt.ticket_id).number
            except NotFoundError:
                number = None
        return Intake(
            kind=IntakeKind(receipt.state.value),
            key=receipt.key,
            ticket_id=receipt.ticket_id,
            ticket_number=number,
            comment_id=receipt.comment_id,
            reason=receipt.reason,
            duplicate=duplicate,
        )

    # ------------------------------------------------------------ receive

    def receive(self, message: InboundMessage, *, screen: bool = True) -> Intake:
        """Ingest ``message`` (see the module's docstring); ``screen=False`` skips the
        screens (for a message an agent vouched for)."""
        if not isinstance(message, InboundMessage):
            raise ValidationError(f"receive takes an InboundMessage; got {message!r:.60}")
        if screen is not True and screen is not False:
            raise ValidationError(f"screen must be true or false; got {screen!r:.40}")
        inbox = self.inbox()
        key = receipt_key(message.channel, message.external_id)
        if key is not None:
            seen = inbox.receipt(key)
            if seen is not None:
                return self.outcome(seen, duplicate=True)
        else:
            key = f"{message.channel.strip()}:{self._new_id()}"
        return self._ingest(inbox, message, key, screen=screen, released=None)

    def received(self, channel: str, external_id: str) -> Intake | None:
        """What :meth:`receive` returns for a message of ``channel`` with ``external_id``
        that was received before (its first outcome, ``duplicate=True``), read from the
        inbox alone; ``None`` when the inbox holds no such message."""
        check_text(channel, "channel")
        check_text(external_id, "external_id")
        key = receipt_key(channel, external_id)
        if key is None:
            return None
        seen = self.inbox().receipt(key)
        return None if seen is None else self.outcome(seen, duplicate=True)

    def release(self, key: str, actor: Actor) -> Intake:
        """Ingest a suspended message without the screens (a stranger's opens a ticket of
        its own, whatever ``intake.strangers`` says); ``actor`` is the agent vouching."""
        self._directory.staff_actor(actor)
        inbox = self.inbox()
        receipt = inbox.receipt(_key(key))
        if receipt is None:
            raise NotFoundError(f"no inbound message is kept under {key!r:.80}")
        if receipt.state is not ReceiptState.SUSPENDED or receipt.message is None:
            raise InvalidTransitionError(
                f"message {key!r:.80} is {receipt.state.value}, not suspended: only a "
                "suspended message can be released"
            )
        log.info("%s releases inbound message %s (%s)", actor, receipt.key, receipt.reason)
        return self._ingest(inbox, receipt.message, receipt.key, screen=False, released=receipt)

    def discard(self, key: str, actor: Actor, now: datetime) -> Receipt:
        """Throw a suspended message away (its receipt stays, ``discarded``, so the same
        message coming again is not ingested)."""
        self._directory.staff_actor(actor)
        receipt = self.inbox().discard(_key(key), now=now)
        log.info("%s discards inbound message %s", actor, receipt.key)
        return receipt

    def _ingest(
        self,
        inbox: Inbox,
        message: InboundMessage,
        key: str,
        *,
        screen: bool,
        released: Receipt | None,
    ) -> Intake:
        channel = message.channel.strip()
        if not channel or any(c.isspace() for c in channel):
            raise ValidationError(f"an inbound message's channel is one word; got {channel!r:.40}")
        if screen:
            reason = self._screen(message)
            if reason is not None:
                return self._suspend(inbox, message, key, reason)
        try:
            address = normalize_email(message.sender_address)
        except ValidationError:
            return self._suspend(
                inbox,
                message,
                key,
                f"sender: {message.sender_address[:80]!r} is not an email address",
                force=released is not None,
            )
        if address in self._intake.addresses:
            # The desk's own address: a loop, even when the screens are skipped.
            return self._suspend(
                inbox,
                message,
                key,
                f"loop: sent from the desk's own address {address}",
                force=released is not None,
            )
        files: tuple[Attachment, ...] = ()
        if message.attachments:
            try:
                files = self._keep_files(message.attachments)
            except AttachmentError as exc:
                if released is not None:
                    raise  # an agent releasing it hears why it cannot be ingested
                return self._suspend(inbox, message, key, f"attachments: {exc}")
        reason = None if released is None else released.reason
        for _ in range(_ATTEMPTS):
            sender = self._sender(address, message)
            thread = self._thread(message, sender)
            if thread.stranger is not None and released is None:
                if self._intake.strangers == "suspend":
                    return self._suspend(inbox, message, key, thread.stranger)
                log.info("message %s: %s; it opens a ticket of its own", key, thread.stranger)
            refused = None if released is not None else self._refused(sender, thread)
            if refused is not None:
                return self._suspend(inbox, message, key, refused)
            try:
                return self._write(message, files, key, sender, thread, reason)
            except DuplicateError:
                winner = inbox.receipt(key)
                if winner is None or winner.state is ReceiptState.SUSPENDED:
                    raise
                return self.outcome(winner, duplicate=True)
            except _MergedError:
                continue  # merged while we decided: thread again onto the surviving ticket
            except _ContactTakenError:
                continue  # the sender's contact was saved meanwhile: write as that contact
        raise ReadOnlyTicketError(f"message {key}: its ticket keeps being merged; try again")

    def _suspend(
        self,
        inbox: Inbox,
        message: InboundMessage,
        key: str,
        reason: str,
        *,
        force: bool = False,
    ) -> Intake:
        if force:
            # A released message that cannot be ingested at all stays suspended.
            raise ValidationError(f"message {key} cannot be ingested: {reason}")
        now = self._pipeline.now()
        receipt = Receipt(
            key=key,
            state=ReceiptState.SUSPENDED,
            received_at=message.received_at,
            updated_at=now,
            reason=reason,
            message=message,
        )
        kept = inbox.suspend(receipt)
        ours = (kept.state, kept.updated_at, kept.reason, kept.message) == (
            receipt.state,
            receipt.updated_at,
            receipt.reason,
            receipt.message,
        )
        if ours:
            log.info("message %s suspended: %s", key, reason)
        return self.outcome(kept, duplicate=not ours)

    # ------------------------------------------------------------ who and where

    def _sender(self, address: str, message: InboundMessage) -> _Sender:
        if self._agent_emails is None:
            staff = self._store.list_agents()
        else:
            # The sender's and, when they may follow, the CC'd addresses (as _followers
            # reads them): the only agents this message can name.
            addresses = [address]
            if self._intake.cc_followers:
                addresses.extend(_cc_addresses(message))
            staff = self._agent_emails.agents_by_email(addresses)
        agents = {a.email: a for a in staff if a.active and a.email}
        try:
            contact: Contact | None = self._store.contact_by_email(address)
        except NotFoundError:
            contact = None
        return _Sender(address, message.sender_name, agents.get(address), contact, agents)

    def _ticket(self, ticket_id: str) -> Ticket | None:
        try:
            return self._store.get_ticket(ticket_id)
        except NotFoundError:
            return None

    def _thread(self, message: InboundMessage, sender: _Sender) -> _Thread:
        references = _references(message)
        tokens = tokens_in(references)
        hints: list[str] = []
        for token in tokens:
            signed = None if self._tokens is None else self._tokens.verify(token)
            found = None if signed is None else self._ticket(signed)
            if found is not None:
                return _Thread(found.id, found)
            parsed = parse_token(token)
            if parsed is not None:
                hints.append(parsed[0])  # not this desk's signature: a hint at most
        inbox = self.inbox()
        channel = message.channel.strip()
        for reference in references:
            received = inbox.receipt(f"{channel}:{reference}")
            if received is not None and received.ticket_id is not None:
                hints.append(received.ticket_id)
            sent = sent_ticket_id(reference)
            if sent is not None:
                hints.append(sent)
        number = message.ticket_number or subject_ticket_number(message.subject)
        if number is not None:
            with contextlib.suppress(NotFoundError):
                hints.append(self._store.get_ticket_by_number(number).id)
        named: list[Ticket] = []
        for ticket_id in dict.fromkeys(hints):
            ticket = self._ticket(ticket_id)
            if ticket is None:
                continue
            if sender.is_party(ticket) or sender.is_party(self._live(ticket)):
                return _Thread(ticket.id, ticket)
            named.append(ticket)
        if named:
            which = ", ".join(t.reference for t in named[:3])
            return _Thread(None, stranger=f"stranger: {sender.address} is no party of {which}")
        return _Thread(None)

    def _refused(self, sender: _Sender, thread: _Thread) -> str | None:
        """Why an agent's message may not be written as their public reply (their role lacks
        ``reply``, or the ticket is outside their groups while they are restricted): it is
        suspended, for an agent who may to release. ``None``: it may."""
        if self._access is None or sender.agent is None or thread.ticket_id is None:
            return None
        ticket = self._ticket(thread.ticket_id)
        if ticket is None:
            return None
        try:
            role = self._access.role(sender.agent)
            allowed(sender.agent, role, Permission.REPLY, [self._live(ticket)])
        except AccessDeniedError as exc:
            return f"access: {exc}"
        return None

    def _live(self, ticket: Ticket) -> Ticket:
        seen = {ticket.id}
        while ticket.merged_into is not None:
            found = self._ticket(ticket.merged_into)
            if found is None or found.id in seen or len(seen) > _MAX_MERGE_CHAIN:
                break
            ticket = found
            seen.add(ticket.id)
        return ticket

    def _followers(self, message: InboundMessage, sender: _Sender) -> list[Actor]:
        if not self._intake.cc_followers:
            return []
        own, agents = self._intake.addresses, sender.agents
        found: list[Actor] = []
        for copied in message.cc:
            try:
                address = normalize_email(copied.address)
            except ValidationError:
                log.info("CC %r is not an email address: it does not follow", copied.address)
                continue
            if address in own or address == sender.address:
                continue
            if len(found) >= _MAX_FOLLOWERS:
                log.info("more than %d addresses in CC: the rest do not follow", _MAX_FOLLOWERS)
                break
            agent = agents.get(address)
            if agent is not None:
                found.append(Actor.agent(agent.id))
            else:
                contact = self._directory.contact_for_email(address, name=copied.name)
                found.append(Actor.contact(contact.id))
        return list(dict.fromkeys(found))

    # ------------------------------------------------------------ writing

    def _write(
        self,
        message: InboundMessage,
        files: tuple[Attachment, ...],
        key: str,
        sender: _Sender,
        thread: _Thread,
        reason: str | None,
    ) -> Intake:
        contact, fresh = sender.contact, False
        made: tuple[Contact, ...] = ()
        if contact is None and thread.ticket_id is None and self._directory.saves_with_commit:
            # Saved in the ticket's own commit: one transaction, not two.
            contact, fresh = self._unsaved_contact(sender), True
            made = (contact,)
        elif contact is None and (sender.agent is None or thread.ticket_id is None):
            contact, fresh = self._new_contact(sender)
        followers = self._followers(message, sender)
        comment_id = self._new_id()
        make_receipt = _receipt_maker(key, message, reason)
        if thread.ticket_id is None:
            assert contact is not None
            decide = self._opening(message, files, contact, followers, comment_id, fresh=fresh)
            # Another writer saved the sender meanwhile: the pipeline calls _taken, and we
            # write again as that contact.
            opened = self._pipeline.run(
                [], decide, receipt=make_receipt, contacts=made, again=_taken
            )[0]
            return self._done(key, opened, comment_id, reason, created=True)
        target = thread.ticket or self._ticket(thread.ticket_id)
        if target is None:
            raise _MergedError  # gone meanwhile: thread again
        target = self._live(target)
        author = (
            Actor.agent(sender.agent.id)
            if sender.agent is not None
            else Actor.contact(cast(Contact, contact).id)
        )
        decide = self._reply(message, files, author, contact, followers, comment_id)
        written = self._pipeline.run([target.id], decide, receipt=make_receipt)[0]
        return self._done(key, written, comment_id, reason, created=written.id != target.id)

    def _unsaved_contact(self, sender: _Sender) -> Contact:
        address = sender.address
        return self._directory.new_contact(
            sender.name or address.partition("@")[0], emails=(address,)
        )

    def _new_contact(self, sender: _Sender) -> tuple[Contact, bool]:
        """The contact of a sender :meth:`_sender` found none for, saved now; and whether it
        is the one made here (False: another writer saved that address meanwhile)."""
        made = self._unsaved_contact(sender)
        saved = self._directory.save_new(made)
        return saved, saved is made

    def _done(
        self, key: str, ticket: Ticket, comment_id: str, reason: str | None, *, created: bool
    ) -> Intake:
        return Intake(
            kind=IntakeKind.CREATED if created else IntakeKind.COMMENTED,
            key=key,
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            comment_id=comment_id,
            reason=reason,
        )

    def _comment(
        self,
        message: InboundMessage,
        files: tuple[Attachment, ...],
        author: Actor,
        comment_id: str,
        ticket_id: str,
        at: datetime,
    ) -> Comment:
        return Comment(
            id=comment_id,
            author=author,
            body=message.body if message.body.strip() else NO_TEXT,
            public=True,
            channel=message.channel.strip(),
            created_at=at,
            external_id=clean_id(message.external_id),
            in_reply_to=clean_id(message.in_reply_to),
            ticket_id=ticket_id,
            original=message.original,
            attachments=files,
        )

    def _acknowledge(self, requester_id: str, at: datetime, *, fresh: bool = False) -> bool:
        """Whether a ticket of ``requester_id`` opened at ``at`` is acknowledged: with
        ``intake.acknowledge``, when fewer than ``intake.acknowledge_limit`` tickets of that
        requester were opened in the hour before (the count lives in the store's tickets, so
        it holds across processes). A ``fresh`` requester (a contact this message made, under
        an id new to every process) has none: nothing to count."""
        limit = self._intake.acknowledge_limit
        if not self._intake.acknowledge or limit == 0:
            return False
        if fresh:
            return True
        since = at - _ACKNOWLEDGE_WINDOW
        if self._recent_requests is not None:
            return self._recent_requests.count_recent_requests(requester_id, since, limit) < limit
        page = self._store.query(
            TicketQuery(requester_ids={requester_id}, sort=SortOrder.CREATED_DESC, limit=limit)
        )
        recent = [t for t in page.items if t.created_at > since]
        return len(recent) < limit

    def _open(
        self,
        message: InboundMessage,
        *,
        ticket_id: str,
        actor: Actor,
        requester_id: str,
        organization_id: str | None,
        first: Comment,
        followers: Iterable[Actor],
        at: datetime,
        closed: Ticket | None = None,
        fresh: bool = False,
    ) -> Outcome:
        config = self._config
        subject = " ".join(message.subject.split()) or NO_SUBJECT
        return lifecycle.open_ticket(
            ticket_id=ticket_id,
            number=0,
            at=at,
            actor=actor,
            subject=closed.subject if closed is not None else subject,
            requester_id=requester_id,
            organization_id=organization_id,
            impact=closed.impact if closed is not None else Impact.MEDIUM,
            urgency=closed.urgency if closed is not None else Urgency.MEDIUM,
            matrix=config.matrix,
            workflow=config.workflow,
            channel=first.channel,
            first_comment=first,
            tags=closed.tags if closed is not None else (),
            group_id=closed.group_id if closed is not None else None,
            followers=frozenset(followers) - {Actor.contact(requester_id)},
            follow_up_of=closed.id if closed is not None else None,
            acknowledge=actor == Actor.contact(requester_id)
            and self._acknowledge(requester_id, at, fresh=fresh),
        )

    def _opening(
        self,
        message: InboundMessage,
        files: tuple[Attachment, ...],
        contact: Contact,
        followers: Sequence[Actor],
        comment_id: str,
        *,
        fresh: bool,
    ) -> Callable[[Sequence[Ticket], datetime], Sequence[Outcome]]:
        ticket_id = self._new_id()
        author = Actor.contact(contact.id)

        def decide(_: Sequence[Ticket], at: datetime) -> list[Outcome]:
            first = self._comment(message, files, author, comment_id, ticket_id, at)
            return [
                self._open(
                    message,
                    ticket_id=ticket_id,
                    actor=author,
                    requester_id=contact.id,
                    organization_id=contact.organization_id,
                    first=first,
                    followers=followers,
                    at=at,
                    fresh=fresh,
                )
            ]

        return decide

    def _reply(
        self,
        message: InboundMessage,
        files: tuple[Attachment, ...],
        author: Actor,
        contact: Contact | None,
        followers: Sequence[Actor],
        comment_id: str,
    ) -> Callable[[Sequence[Ticket], datetime], Sequence[Outcome]]:
        follow_up_id = self._new_id()
        workflow = self._config.workflow

        def decide(tickets: Sequence[Ticket], at: datetime) -> list[Outcome]:
            ticket = tickets[0]
            if ticket.is_merged:
                raise _MergedError
            if ticket.is_closed:
                # A closed ticket is read-only: the message opens a follow-up linked to it.
                if author.kind is ActorKind.CONTACT and contact is not None:
                    requester, organization = contact.id, contact.organization_id
                else:
                    requester, organization = ticket.requester_id, ticket.organization_id
                first = self._comment(message, files, author, comment_id, follow_up_id, at)
                return [
                    self._open(
                        message,
                        ticket_id=follow_up_id,
                        actor=author,
                        requester_id=requester,
                        organization_id=organization,
                        first=first,
                        followers=followers,
                        at=at,
                        closed=ticket,
                    )
                ]
            comment = self._comment(message, files, author, comment_id, ticket.id, at)
            added = lifecycle.add_comment(ticket, comment, at=at, workflow=workflow)
            new = [f for f in followers if f not in added.ticket.followers]
            new = [f for f in new if f != Actor.contact(added.ticket.requester_id)]
            if not new:
                return [added]
            follow = lifecycle.change_followers(added.ticket, at=at, actor=author, add=new)
            return [lifecycle.chain([added, follow])]

        return decide


class _MergedError(Exception):
    """The ticket a message was threaded onto was merged (or vanished) meanwhile."""


class _ContactTakenError(Exception):
    """Another writer saved the new sender's address meanwhile (the commit that would have
    saved the sender's contact with the ticket refused, writing nothing)."""


def _taken() -> NoReturn:
    """The pipeline's ``again`` for a new sender: written again, from the sender on."""
    raise _ContactTakenError


def _key(key: object) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValidationError(f"a receipt key is non-empty text; got {key!r:.60}")
    return key


def _receipt_maker(
    key: str, message: InboundMessage, reason: str | None
) -> Callable[[Sequence[Outcome], datetime], Receipt]:
    def make(outcomes: Sequence[Outcome], now: datetime) -> Receipt:
        outcome = outcomes[0]
        comment_id = next(
            (e.comment.id for e in outcome.events if isinstance(e, CommentAdded)), None
        )
        return Receipt(
            key=key,
            state=ReceiptState.CREATED if outcome.previous_seq == 0 else ReceiptState.COMMENTED,
            received_at=message.received_at,
            updated_at=now,
            ticket_id=outcome.ticket.id,
            comment_id=comment_id,
            reason=reason,
        )

    return make
