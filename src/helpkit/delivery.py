"""What leaves the desk: the deliveries a committed event calls for, and the channel that takes
each one.

A public comment goes to the ticket's requester and followers (never an internal note, never
back to its author); an SLA warning or breach goes to the agents the escalation rules name.
:meth:`Outbound.plan` turns committed events (with their change feed positions) into
:class:`~helpkit.ports.Delivery` values, deterministically, on the ticket as it was just before
each event (its followers, its channel, the last message of its thread then): the delivery's id,
which is also the message's idempotency key, is made of the ticket, the event's seq and the
kind, so deriving again after a crash finds the same delivery. :meth:`Outbound.send` hands one
to its channel. The relay (:mod:`helpkit.relay`) does the rest: the outbox, retries, dead
letters, the audit trail.

A reply carries the descriptions of the comment's attachments
(:attr:`~helpkit.ports.OutboundMessage.attachments`); the channel reads their bytes from the
desk's blob store, which its factory received as the option ``blobs``.

The channel of a reply is the comment's own channel when one is configured under that name
(``desk.reply(..., channel="sms")``), else the configured ``reply_channel``, else the desk's
only channel. When channels are configured but none fits, the delivery is still made, with no
channel: the relay records it as failed ("no channel") rather than dropping it in silence. A
desk without channels sends nothing.

A ticket opened with ``acknowledge`` (by :meth:`~helpkit.Helpdesk.receive`, on a desk with
``intake.acknowledge``) gets an acknowledgement to its requester. Every message to a person
(replies, notices, acknowledgements; webhooks aside) carries the desk's ``X-Helpkit-Desk``
header (the loop screen knows it again) and asks Microsoft's
auto-responders for silence (``X-Auto-Response-Suppress: All``); automatic ones say so, as RFC
3834 asks: ``Auto-Submitted: auto-generated`` on SLA notices, ``auto-replied`` on
acknowledgements. On a desk with a secret, every message carries the ticket's signed thread
token (:mod:`helpkit.thread_tokens`), which an email channel writes into its Message-ID.

Webhook endpoints (``[webhooks.NAME]``) are channels of their own: each committed event an
endpoint subscribes to (:class:`~helpkit.webhook_events.Subscription`) becomes one delivery to
it, of kind ``webhook``, whose message carries the event's JSON payload as its body (fixed when
it is planned, so every attempt sends the same bytes) and whose id, ``<ticket>-<seq>-webhook-
<name>``, is the ``webhook-id`` the receiver dedupes on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime

from helpkit._checks import check_text
from helpkit.config import DeskConfig
from helpkit.errors import ValidationError
from helpkit.events import (
    CommentAdded,
    Event,
    Notified,
    TicketOpened,
    WebhookRequested,
)
from helpkit.fold import apply
from helpkit.notices import (
    ACKNOWLEDGEMENT,
    CSAT_OFFER,
    NOTIFICATION,
    REPLY,
    SLA_NOTICE,
    Lookups,
    Notices,
)
from helpkit.notifications import To
from helpkit.ports import (
    Change,
    Channel,
    Delivery,
    OutboundMessage,
    Recipient,
    Store,
)
from helpkit.rating_tokens import RatingTokens
from helpkit.redaction import REDACTED
from helpkit.rules import fill_number
from helpkit.satisfaction import rating_url
from helpkit.thread_tokens import DESK_HEADER, ThreadTokens
from helpkit.tickets import Ticket
from helpkit.webhook_events import WEBHOOK, payload_text

__all__ = [
    "ACKNOWLEDGEMENT",
    "CSAT_OFFER",
    "NOTIFICATION",
    "REPLY",
    "SLA_NOTICE",
    "Outbound",
    "delivery_id",
    "webhook_delivery_id",
]

_Planned = tuple[str | None, OutboundMessage]
"""The channel a message leaves through (``None``: no channel fits), and the message."""

_STATES_KEPT = 4096
"""How many tickets' states the planning keeps between batches (about 2 KiB each)."""
_UNFOLDED_KEPT = 64
"""How many events a kept state may have waiting to be folded in."""


def _redacted(event: Event) -> bool:
    """Whether ``event`` is a comment, or a rule's notification, whose text was redacted."""
    if isinstance(event, CommentAdded):
        return event.comment.redacted
    return isinstance(event, Notified) and event.body == REDACTED


def delivery_id(event: Event, kind: str) -> str:
    """The id (and idempotency key) of the delivery ``kind`` that ``event`` calls for."""
    return f"{event.ticket_id}-{event.seq}-{kind}"


def webhook_delivery_id(event: Event, endpoint: str) -> str:
    """The id of the delivery of ``event`` to webhook endpoint ``endpoint``: its idempotency
    key and the ``webhook-id`` header (``<ticket>-<seq>-webhook-<endpoint>``)."""
    return f"{delivery_id(event, WEBHOOK)}-{endpoint}"


def _delivery(
    change: Change, kind: str, channel: str | None, message: OutboundMessage, now: datetime
) -> Delivery:
    return Delivery(
        id=message.idempotency_key,
        ticket_id=message.ticket_id,
        source=change.position,
        kind=kind,
        channel=channel,
        message=message,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


class Outbound:
    """Derives deliveries from committed events, and sends them through the desk's channels."""

    def __init__(
        self,
        store: Store,
        config: DeskConfig,
        channels: Mapping[str, Channel],
        webhooks: Mapping[str, Channel] | None = None,
        *,
        tokens: ThreadTokens | None = None,
        desk_id: str = "helpkit",
    ) -> None:
        self._store = store
        self._config = config
        self._channels = channels
        self._tokens = tokens
        self._headers = {DESK_HEADER: desk_id, "X-Auto-Response-Suppress": "All"}
        self._webhooks: Mapping[str, Channel] = webhooks or {}
        wanted = {s.name: s for s in config.subscriptions()}
        self._subscriptions = tuple(wanted[name] for name in self._webhooks if name in wanted)
        self._states = _States(store)
        self._rating_tokens = None if tokens is None else RatingTokens(tokens)
        self._notices = Notices(
            config,
            channel_for=self.channel_for,
            headers=self._headers,
            token=self._token,
            rating_link=None if self._rating_tokens is None else self.rating_link,
        )

    def rating_link(self, ticket_id: str, contact_id: str, expires_at: datetime) -> str:
        """The satisfaction rating link of ``contact_id`` for ``ticket_id`` (a desk with a
        secret; see :mod:`helpkit.rating_tokens`)."""
        if self._rating_tokens is None:
            raise ValidationError("a desk without a secret signs no rating links")
        token = self._rating_tokens.sign(ticket_id, contact_id, expires_at)
        return rating_url(self._config.csat, token)

    def _token(self, ticket_id: str) -> str:
        return "" if self._tokens is None else self._tokens.sign(ticket_id)

    @property
    def enabled(self) -> bool:
        """Whether the desk has channels or webhook endpoints (without, nothing is sent)."""
        return bool(self._channels or self._webhooks)

    def check_channel(self, name: str | None) -> None:
        """Refuse a channel named for a reply that no configured channel answers to."""
        if name is None or not self._channels:
            return
        check_text(name, "a channel")
        if name in self._channels:
            return
        known = ", ".join(sorted(self._channels))
        raise ValidationError(
            f"no channel {name!r} is configured (configured: {known}); a reply asked to leave "
            "through it would not leave at all"
        )

    # ------------------------------------------------------------ planning

    def plan(
        self, changes: Sequence[Change], now: datetime, people: Lookups | None = None
    ) -> list[Delivery]:
        """The deliveries the committed events of ``changes`` (in feed order) call for.

        Each is planned on the ticket as it was just before its event (who followed it then,
        its channel, the last message of the thread), however late the relay runs, and on the
        people of the directory as ``people`` read them (each read once: by default for this
        call; the relay shares one between the batches of a run).
        """
        if not self.enabled:
            return []
        states = self._states
        if people is None:
            people = Lookups(self._store)
        planned: list[Delivery] = []
        for change in changes:
            event = change.event
            before: Ticket | None = None
            if _redacted(event):
                # privacy (issue #16): what was redacted before the relay planned it is
                # never sent (not even as "[redacted]").
                states.follow(event)
                continue
            if self._channels:
                if isinstance(event, Notified):
                    before = states.before(event)
                    message = self._notification(event, before, now, people)
                    if message is not None:
                        planned.append(_delivery(change, NOTIFICATION, *message, now))
                elif rules := self._notices.rules_for(event):
                    if not isinstance(event, TicketOpened):
                        before = states.before(event)
                    for kind, channel, out in self._notices.plan(event, rules, before, now, people):
                        planned.append(_delivery(change, kind, channel, out, now))
            hooks = [s for s in self._subscriptions if s.matches(event)]
            if isinstance(event, WebhookRequested) and event.endpoint in self._webhooks:
                before = before or states.before(event)
                after = apply(before, event)
                out = self._webhook(event, after, event.endpoint, now, people)
                planned.append(_delivery(change, WEBHOOK, event.endpoint, out, now))
            if hooks:
                if isinstance(event, TicketOpened):
                    states.follow(event)
                    after = apply(None, event)
                else:
                    after = apply(before or states.before(event), event)
                for subscription in hooks:
                    out = self._webhook(event, after, subscription.name, now, people)
                    planned.append(_delivery(change, WEBHOOK, subscription.name, out, now))
            elif before is None:
                states.follow(event)
        return planned

    def _webhook(
        self, event: Event, ticket: Ticket, endpoint: str, now: datetime, people: Lookups
    ) -> OutboundMessage:
        """The message that tells endpoint ``endpoint`` of ``event`` (``ticket`` as it is just
        after it): the JSON payload as its body, the event's type as its subject."""
        comment_id = event.comment.id if isinstance(event, CommentAdded) else f"event-{event.seq}"
        return OutboundMessage(
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            subject=event.TYPE,
            body=payload_text(event, ticket),
            comment_id=comment_id,
            author_name=people.name(event.actor),
            to=(Recipient(WEBHOOK, endpoint, endpoint, None),),
            sent_at=now,
            idempotency_key=webhook_delivery_id(event, endpoint),
            kind=WEBHOOK,
        )

    def channel_for(self, preferred: str) -> str | None:
        """The name of the channel a message meant for ``preferred`` leaves through, if any."""
        if preferred in self._channels:
            return preferred
        if self._config.reply_channel is not None:
            return self._config.reply_channel
        if len(self._channels) == 1:
            return next(iter(self._channels))
        return None

    def _notification(
        self, event: Notified, ticket: Ticket, now: datetime, people: Lookups
    ) -> _Planned | None:
        """A rule's notification (a trigger's, a macro's) to its audiences."""
        wanted = [to for to in To if to.value in event.audiences]  # in the audiences' order
        found = self._notices.audience(wanted, event, ticket, people)
        recipients = tuple(recipient for recipient, _ in found if recipient.address)
        if not recipients:
            return None
        return self.channel_for(ticket.channel), OutboundMessage(
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            subject=fill_number(event.subject, ticket.number),
            body=fill_number(event.body, ticket.number),
            comment_id=f"notification-{event.seq}",
            author_name="Support",
            to=recipients,
            sent_at=now,
            headers={
                **self._headers,
                "X-Helpkit-Rule": event.rule,
                "Auto-Submitted": "auto-generated",
            },
            idempotency_key=delivery_id(event, NOTIFICATION),
            kind=NOTIFICATION,
            thread_token=self._token(ticket.id),
        )

    # ------------------------------------------------------------ sending

    def send(self, delivery: Delivery) -> str | None:
        """Hand ``delivery``'s message to its channel; the external id the channel gave it.

        Raises whatever the channel raises (the relay records it and retries).
        """
        if delivery.channel is None:
            raise LookupError("no channel")
        if delivery.kind == WEBHOOK:
            endpoint = self._webhooks.get(delivery.channel)
            if endpoint is None:
                raise LookupError(f"webhook {delivery.channel!r} is no longer configured")
            return endpoint.deliver(delivery.message)
        channel = self._channels.get(delivery.channel)
        if channel is None:
            raise LookupError(f"channel {delivery.channel!r} is no longer configured")
        return channel.deliver(delivery.message)


class _States:
    """Tickets as they were before given events, kept between planning batches.

    A ticket's state after its seq ``n`` is the fold of its first ``n`` events, which never
    change once committed, so the state reached for one event is folded forward by the next
    ones the feed brings (each ticket's in seq order), when a delivery needs it; where one is
    missing (a ticket not kept, or opened before the relay's cursor), the events the store
    holds after the state kept are read. The states of the ``size`` tickets seen most recently
    are kept (least recently used first out), so a ticket's history is read at most once while
    it stays busy.
    """

    def __init__(self, store: Store, size: int = _STATES_KEPT) -> None:
        self._store = store
        self._size = size
        # A state (None before the opening event) and the events after it, not folded yet.
        self._known: OrderedDict[str, tuple[Ticket | None, list[Event]]] = OrderedDict()
        self._lock = threading.Lock()

    def follow(self, event: Event) -> None:
        """Take a committed event that calls for no delivery: it follows its ticket's state,
        if kept (or starts the state of a ticket it opens)."""
        with self._lock:
            kept = self._known.get(event.ticket_id)
            if kept is None:
                if isinstance(event, TicketOpened):
                    self._keep(event.ticket_id, (None, [event]))
                return
            state, after = kept
            if _seq_of(state, after) + 1 != event.seq:
                return
            after.append(event)
            if len(after) >= _UNFOLDED_KEPT:
                self._keep(event.ticket_id, (_fold(state, after, event.seq + 1), []))
            else:
                self._known.move_to_end(event.ticket_id)

    def before(self, event: Event) -> Ticket:
        """The ticket of ``event`` as it was just before it."""
        ticket_id = event.ticket_id
        with self._lock:
            state, after = self._known.pop(ticket_id, (None, []))
        if state is not None and state.seq >= event.seq:
            state, after = None, []  # an older event (planned again): fold from the start
        state = _fold(state, after, event.seq)
        seq = 0 if state is None else state.seq
        if seq + 1 < event.seq:
            state = _fold(state, self._store.events(ticket_id, after_seq=seq), event.seq)
        if state is None:  # the opening event itself (it sends nothing)
            return self._store.get_ticket(ticket_id)
        with self._lock:
            self._keep(ticket_id, (state, [event]))
        return state

    def _keep(self, ticket_id: str, kept: tuple[Ticket | None, list[Event]]) -> None:
        known = self._known
        known[ticket_id] = kept
        known.move_to_end(ticket_id)
        while len(known) > self._size:
            known.popitem(last=False)


def _seq_of(state: Ticket | None, after: Sequence[Event]) -> int:
    if after:
        return after[-1].seq
    return 0 if state is None else state.seq


def _fold(state: Ticket | None, events: Sequence[Event], before: int) -> Ticket | None:
    """``state`` with ``events`` (those that follow it, in order) applied, up to seq ``before``
    (not included)."""
    for event in events:
        if event.seq >= before:
            break
        if state is None or event.seq > state.seq:
            state = apply(state, event)
    return state
