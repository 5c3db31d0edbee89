"""The :class:`Helpdesk` facade: friendly methods over the services below it.

(Over 600 lines on purpose: it is the public surface, some sixty methods that are each a
signature, a docstring and a delegation to the service that does the work.)

It is the composition root: it builds the store (from a URL, through the store plugins), the
directory of people, the service levels, the timers, delivery, the command pipeline and the
sweep, and hands each what it needs. Every ticket command becomes a decision run by the
:class:`~helpkit.pipeline.Pipeline` (load, decide, timers, commit, publish); nothing below the
facade knows it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, cast

import attrs

from helpkit import lifecycle
from helpkit._checks import check_int, check_items, check_text
from helpkit._time import to_utc
from helpkit.access import Access
from helpkit.actions import Actions
from helpkit.agent_view import AgentView
from helpkit.attachments import UnconfiguredBlobStore, default_blobs, keep
from helpkit.automations import Automations
from helpkit.commands import TicketCommands
from helpkit.config import DeskConfig
from helpkit.delivery import Outbound
from helpkit.directory import UNSET, Directory, Unset
from helpkit.errors import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    HelpkitError,
    InvalidTransitionError,
    NotFoundError,
    RatingError,
    ValidationError,
)
from helpkit.escalation import EscalationKind
from helpkit.events import Assigned, Event, SatisfactionOffered, StatusChanged
from helpkit.ids import new_id
from helpkit.intake import Intake, Receiver
from helpkit.knowledge_base import KnowledgeBaseService
from helpkit.kpis import KpiFilter, KpiReport, Period
from helpkit.outcomes import Outcome
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.pipeline import Decide, Pipeline, React
from helpkit.plugins import PluginHost
from helpkit.portal import CustomerView
from helpkit.ports import (
    BlobStore,
    Channel,
    Clock,
    Delivery,
    DeliveryState,
    InboundAttachment,
    InboundMessage,
    Outbox,
    Receipt,
    Store,
    SystemClock,
    TicketChange,
    implements,
)
from helpkit.priority import Impact, Priority, Urgency
from helpkit.privacy import Erasure, Privacy, PurgeReport, Redacted
from helpkit.queries import Page, SortOrder, TicketQuery
from helpkit.rating_tokens import RatingTokens
from helpkit.relay import Relay, RelayReport, RetryPolicy
from helpkit.reports import (
    KpiProjection,
    KpiReader,
    OutdatedCheckpointError,
    report_from_checkpoint,
)
from helpkit.roles import Permission
from helpkit.router import Router
from helpkit.routing import Decision
from helpkit.rules import Macro
from helpkit.satisfaction import Rating, rating_url
from helpkit.satisfaction import rate as rate_ticket
from helpkit.satisfaction_offers import SatisfactionOffers
from helpkit.scrubbers import Scrub
from helpkit.scrubbers import chain as scrub_chain
from helpkit.service_levels import ServiceLevels
from helpkit.sla import SlaStatus
from helpkit.sweep import Sweeper, SweepReport
from helpkit.thread_tokens import ThreadTokens
from helpkit.tickets import (
    Actor,
    ActorKind,
    Attachment,
    Comment,
    LinkKind,
    StatusCategory,
    Ticket,
)
from helpkit.timers import FoldCache, SlaTimer, Timers, TimerSource
from helpkit.triggers import Triggers

__all__ = ["UNSET", "Helpdesk", "TicketRef"]

TicketRef = Ticket | str | int
"""A ticket given as the object, its id, or its number (``1042`` or ``"#1042"``)."""

log = logging.getLogger("helpkit")

_MAX_MERGE_CHAIN: Final = 1000


class _RefusedOnKeptError(Exception):
    """A decision on kept parties refused (inside the pipeline): decided again on reads."""


def _unchanged(tickets: Sequence[Ticket], now: datetime) -> list[Outcome]:
    """A decision that changes nothing (routing, run with it, may assign the ticket)."""
    return [Outcome(tickets[0], (), tickets[0].seq)]


def _delivery_state(value: DeliveryState | str) -> DeliveryState:
    try:
        return DeliveryState(value)
    except ValueError:
        known = ", ".join(s.value for s in DeliveryState)
        raise ValidationError(f"a delivery state is one of {known}; got {value!r:.40}") from None


_QUERY_FIELDS: Final = frozenset(f.alias or f.name for f in attrs.fields(TicketQuery))


def _rules(automations: Automations, triggers: Triggers) -> React | None:
    """What runs on every command's outcomes: the automations it finds overdue, then the
    triggers (which see the automations' changes)."""
    if automations.enabled and triggers.enabled:
        return lambda outcomes, now: triggers.react(automations.react(outcomes, now), now)
    if automations.enabled:
        return automations.react
    if triggers.enabled:
        return triggers.react
    return None


class _Relaying(threading.local):
    """Per thread: whether this thread is running the relay (``on``) and whether the relay
    recorded a command's messages since (``recorded``). False until set, as class defaults:
    reading an attribute a thread never set finds them without raising AttributeError
    (which ``getattr(local, name, False)`` paid on every command)."""

    on: bool = False
    recorded: bool = False


class Helpdesk:
    """An embeddable helpdesk: tickets, conversation, people, queries and plugins.

    ``store`` is a URL (``"memory://"``, ``"sqlite:///desk.db"``) resolved through the
    registered store plugins, or a ready :class:`~helpkit.ports.Store`. Every command takes the
    ``actor`` doing it, reads "now" from ``clock``, validates before writing, writes events and
    state in one store commit, and then delivers replies and tells the ``helpkit_event``
    observers.

    Every ticket command accepts ``expected_seq``, the ticket's ``seq`` when the caller read
    it: if the ticket changed since, it raises :class:`~helpkit.errors.ConflictError` with the
    events since, and writes nothing. With ``strict_versions=True``, a :class:`Ticket` object
    given as the ticket stands for that version too. Without a version, a command that loses
    to a concurrent writer is decided again on the fresh ticket.

    One desk may be shared by the threads of a web server: commands, reads and the sweep are
    safe to call concurrently (on the built-in stores), and getting the contact of a new
    email address from several threads at once creates it once.

    ``id_factory`` makes the ids of new tickets, comments, contacts and organizations; the
    default, :func:`helpkit.ids.new_id`, makes time-ordered UUIDs (version 7) as 32 hex digits.
    ``fold_cache`` is how many tickets' SLA folds the desk keeps between commands (0: none).

    Messages (public replies, SLA notices, the events webhook endpoints subscribe to) leave
    through a relay that follows the change feed (:mod:`helpkit.relay`), never on the request
    path. With ``delivery="outbox"`` (the
    default) they wait in the outbox until :meth:`deliver_pending` runs (or ``helpkit deliver
    --follow``, a worker); with ``delivery="sync"`` the desk runs the relay itself after each
    command, so a command returns once its messages went out (for tests and small
    single-process hosts). ``retry`` is the relay's :class:`~helpkit.relay.RetryPolicy`.

    ``secret`` (text or bytes, at least 16 bytes) signs the thread tokens of outbound
    messages, so replies thread onto their ticket safely (:meth:`receive`); without it no
    token is written or trusted.

    ``blobs`` is where attachment bytes live: a blob store URL (``"memory://"``,
    ``"file:///srv/helpkit/blobs"``, a plugin's scheme) or a ready
    :class:`~helpkit.ports.BlobStore`; without it, ``config.blobs``; without that, the default
    for the store (:func:`helpkit.attachments.default_blobs`: memory for a memory store, the
    folder ``x.db.blobs`` beside an SQLite file ``x.db``, else none, and attachments are then
    refused with a ConfigError). Channel factories receive it as the option ``blobs``.
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
        strict_versions: bool = False,
        fold_cache: int = 8192,
        delivery: str = "outbox",
        retry: RetryPolicy | None = None,
        secret: str | bytes | None = None,
        blobs: str | BlobStore | None = None,
    ) -> None:
        if config is None:
            config = DeskConfig()
        elif not isinstance(config, DeskConfig):
            config = DeskConfig.from_dict(config)
        if strict_versions is not True and strict_versions is not False:
            raise ValidationError(f"strict_versions must be true or false; got {strict_versions!r}")
        self.config: DeskConfig = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.plugins = PluginHost(plugins, entry_points=entry_points, blocked=blocked_plugins)
        self._new_id = id_factory or new_id
        self._strict = strict_versions
        self._said_no_sla = False
        # Checked before the store is opened: a bad secret leaves no connection open.
        self._tokens = None if secret is None else ThreadTokens(secret)
        if config.csat.enabled and self._tokens is None:
            raise ConfigError(
                "[csat] enabled needs a desk secret: the rating links are signed with it"
            )
        # --- privacy (issue #16): the scrubbers [privacy] names, run before every commit
        # (checked before the store is opened, like the secret)
        scrubbers = self.plugins.scrubbers(config.privacy.scrubbers)
        self._scrub: Scrub | None = scrub_chain(scrubbers) if scrubbers else None
        # --- end privacy
        self.blobs: BlobStore = self._open_blobs(blobs, store)
        self.channels: dict[str, Channel] = {}
        for name, options in config.channels.items():
            kind = str(options.get("type", name))
            if kind == "webhook":
                raise ConfigError(
                    f"channel {name!r}: a webhook endpoint is configured as [webhooks.{name}], "
                    "where it is sent the events it subscribes to"
                )
            self.channels[name] = self.plugins.make_channel(
                kind, {"name": name, **options, "blobs": self.blobs}
            )
        for channel in channels:
            self.channels[channel.name] = channel
        if config.reply_channel is not None and config.reply_channel not in self.channels:
            raise ValidationError(f"reply_channel {config.reply_channel!r} is not configured")
        self.webhooks: dict[str, Channel] = {}
        """The webhook endpoints (``[webhooks.NAME]``), built by the channel type ``webhook``."""
        for name, options in config.webhooks.items():
            self.webhooks[name] = self.plugins.make_channel("webhook", {"name": name, **options})
        self.store: Store = self.plugins.open_store(store) if isinstance(store, str) else store
        self._directory = Directory(self.store, self.now, self._new_id)
        self._access = Access(self._directory, config.roles)
        self._levels = ServiceLevels(self.store, config)
        self._sla = SlaTimer(self.store, self._levels, FoldCache(fold_cache))
        if delivery not in ("outbox", "sync"):
            raise ValidationError(f"delivery is 'outbox' or 'sync'; got {delivery!r:.40}")
        self._sync = delivery == "sync"
        self._desk_id = config.intake.desk_id or (
            self._tokens.desk_id if self._tokens is not None else "helpkit"
        )
        self._outbound = Outbound(
            self.store,
            config,
            self.channels,
            self.webhooks,
            tokens=self._tokens,
            desk_id=self._desk_id,
        )
        self._actions = Actions(config, self._directory, self._new_id)
        triggers = Triggers(config.triggers, self._actions, self._directory)
        self._automations = Automations(config.automations, self._actions, self._directory)
        self._router = Router(self.store, config, self._directory.lookups)
        # --- customer satisfaction ---
        self._offers = SatisfactionOffers(config.csat)
        self._rating_tokens = None if self._tokens is None else RatingTokens(self._tokens)
        timer_sources: list[TimerSource] = [self._sla]
        if self._automations.enabled:
            timer_sources.append(self._automations)
        if self._offers.enabled:
            timer_sources.append(self._offers)
        # --- end of customer satisfaction ---
        self._pipeline = Pipeline(
            self.store,
            self.clock,
            Timers(timer_sources),
            self._publish,
            react=_rules(self._automations, triggers),
            router=self._router,
            scrub=self._scrub,
            directory=self._directory,
            publish_events=self._publish_events,
        )
        self._privacy = Privacy(self.store, self._pipeline, lambda: self.blobs, self.now)
        self._routing_waiting = threading.local()
        self._relay: Relay | None = None
        if self._outbound.enabled:
            # A desk with channels must be able to deliver: its store keeps the outbox.
            self._relay = Relay(self.store, self._outbound, self._pipeline, policy=retry)
            self._relay.begin()  # what this store committed before it had channels stays unsent
        self._relaying = _Relaying()
        self._sweeper = Sweeper(
            self.store,
            self._pipeline,
            self._levels,
            self._sla,
            config,
            self._automations,
            self._offers,
        )
        self._commands = TicketCommands(
            config, self._directory, self._levels, self.store, self._new_id, self._actions
        )
        self._receiver = Receiver(
            self.store,
            self._pipeline,
            self._directory,
            config,
            screen=lambda message: self.plugins.screen_inbound(message, self),
            keep_files=self._keep,
            tokens=self._tokens,
            new_id=self._new_id,
            access=self._access,
        )
        # -- knowledge base (issue #16): desk.kb, its own service (helpkit.knowledge_base)
        self.kb: KnowledgeBaseService = KnowledgeBaseService(
            self,
            self._new_id,
            authorize=lambda actor: self._access.check(actor, Permission.KNOWLEDGE),
        )
        """The knowledge base: articles, search, suggestions, deflection (a store with the
        ``knowledge`` capability; every built-in store has it)."""
        # -- end knowledge base

    # ------------------------------------------------------------------ plumbing

    def _open_blobs(self, blobs: str | BlobStore | None, store: str | Store) -> BlobStore:
        source = blobs if blobs is not None else self.config.blobs
        if source is None:
            source = default_blobs(store)
        if source is None:
            return UnconfiguredBlobStore()
        if isinstance(source, str):
            return self.plugins.open_blob_store(source)
        if not implements(source, BlobStore):
            raise ValidationError(
                f"blobs must be a blob store URL or a BlobStore; got {source!r:.60}"
            )
        return source

    def shutdown(self) -> None:
        """Close the store and the blob store (``with Helpdesk(...) as desk:`` does it on
        exit)."""
        try:
            self.store.close()
        finally:
            self.blobs.close()

    def __enter__(self) -> Helpdesk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def now(self) -> datetime:
        """The clock's current instant, checked aware and in UTC."""
        return to_utc(self.clock.now(), "clock.now()")

    @property
    def desk_id(self) -> str:
        """The desk's id, in the ``X-Helpkit-Desk`` header of every outbound message:
        ``intake.desk_id``, else derived from the secret, else ``helpkit``."""
        return self._desk_id

    @property
    def own_addresses(self) -> frozenset[str]:
        """The desk's own addresses (``intake.addresses``)."""
        return self.config.intake.addresses

    def _publish(self, changes: Sequence[TicketChange]) -> None:
        self._announce([event for change in changes for event in change.events], changes)

    def _publish_events(self, events: Sequence[Event]) -> None:
        """:meth:`_publish` of a commit of the sweep's fast path (events, no tickets; the
        pipeline takes that path only on a desk without routing)."""
        self._announce(events, ())

    def _announce(self, events: Sequence[Event], changes: Sequence[TicketChange]) -> None:
        for event in events:
            self.plugins.notify(event, self)
        if changes and self._router.enabled:
            self._route_freed(changes)
        sync = self._sync and self._relay is not None
        if sync and not getattr(self._relaying, "on", False) and self.deliver_pending().handled:
            self._relaying.recorded = True

    def group_commit(self) -> contextlib.AbstractContextManager[None]:
        """A block whose commands, in this thread, commit together (a group commit)::

            with desk.group_commit():
                for message in batch:
                    desk.receive(message)
            # now every message of the batch is durable: acknowledge them to their source

        On a store with :attr:`~helpkit.ports.Capability.GROUP_COMMIT` (SQLite) the block is
        one transaction: each command inside is applied at once (one that fails leaves
        nothing of itself and the block goes on), this thread reads what the block wrote,
        other threads and processes see none of it until the block ends, and the end
        flushes it to disk once instead of once per command. Observers, the relay and
        ``delivery="sync"`` hear of the commands when the block is committed. A block that
        raises stores nothing of its commands. The store's write lock is held for the whole
        block, so other writers wait: keep a block to a batch of commands, not a session.
        ``helpkit mail import`` and ``poll`` commit each batch of messages so and acknowledge
        a message to its source only after its batch is committed.

        On another store each command commits on its own, as outside a block."""
        return self._pipeline.group_commit()

    def _synced(self, tickets: list[Ticket]) -> list[Ticket]:
        """In sync mode, the tickets as they are once the relay recorded their messages (so
        the caller sees ``message_sent`` in their seq and ``last_message_id``)."""
        if not getattr(self._relaying, "recorded", False):
            return tickets
        self._relaying.recorded = False
        return [self.store.get_ticket(ticket.id) for ticket in tickets]

    # ------------------------------------------------------------------ delivery

    def deliver_pending(self) -> RelayReport:
        """Run the relay once: turn everything committed into deliveries, then send (or
        retry) every delivery due now, recording each outcome in its ticket's audit trail.
        Returns what it did; a desk without channels does nothing."""
        if self._relay is None:
            return RelayReport()
        self._relaying.on = True
        try:
            return self._relay.run_once()
        finally:
            self._relaying.on = False

    def follow_deliveries(
        self,
        stop: threading.Event,
        *,
        poll: float = 0.05,
        recheck: float = 1.0,
        on_report: Callable[[RelayReport], None] | None = None,
    ) -> RelayReport:
        """Deliver as commits come, until ``stop`` is set (what ``helpkit deliver --follow``
        runs): new commits of this or any process are picked up within ``poll`` seconds,
        retries that fell due within ``recheck`` seconds. ``on_report`` hears what each run
        that did something did; the total is returned."""
        if self._relay is None:
            raise ConfigError("this desk has no channels: there is nothing to deliver")
        self._relaying.on = True
        try:
            return self._relay.follow(stop, poll=poll, recheck=recheck, on_report=on_report)
        finally:
            self._relaying.on = False

    def deliveries(
        self,
        *,
        state: DeliveryState | str | None = None,
        ticket: TicketRef | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries in the outbox (``state="dead"`` for the dead letters), by id."""
        outbox = self._outbox()
        wanted = None if state is None else _delivery_state(state)
        ticket_id = None if ticket is None else self._ticket_id(ticket)
        return outbox.deliveries(state=wanted, ticket_id=ticket_id, after=after, limit=limit)

    def retry_delivery(self, delivery_id: str, actor: Actor | None = None) -> Delivery:
        """Send a dead delivery again (at the next :meth:`deliver_pending`; at once with
        ``delivery="sync"``), its attempts starting from one. The ticket's audit trail records
        ``delivery_revived`` by ``actor`` (an agent, or the system's ``operator``)."""
        delivery_id = check_text(delivery_id, "a delivery id")
        who = Actor.system("operator") if actor is None else actor
        if not (isinstance(who, Actor) and who.kind is ActorKind.SYSTEM):
            self._staff(who)
            self._access.check(who, Permission.DELIVERIES)
        if self._relay is None:
            raise ConfigError("this desk has no channels: there is nothing to deliver")
        revived = self._relay.revive(delivery_id, who)
        if self._sync:
            self.deliver_pending()
            return self._outbox().delivery(revived.id)
        return revived

    def _outbox(self) -> Outbox:
        if not implements(self.store, Outbox):
            raise ConfigError(f"{type(self.store).__name__} keeps no outbox")
        return cast(Outbox, self.store)

    def _run(
        self,
        refs: Sequence[TicketRef],
        decide: Decide,
        expected_seq: int | None,
        actor: Actor | None = None,
        *needs: Permission,
    ) -> list[Ticket]:
        """Run ``decide`` over the tickets ``refs`` through the pipeline.

        ``expected_seq`` is the version of the first ticket the caller saw; in strict mode a
        Ticket object stands for its own version. An agent ``actor`` must be allowed ``needs``
        on the tickets loaded (:class:`~helpkit.access.Access`).
        """
        # An agent the store keeps is not read: the command is decided on it and committed
        # only if it is still stored so (else decided again on it read anew, below).
        kept = None if actor is None else self._directory.kept_acting(actor)
        on_kept: Decide | None = None
        if kept is not None:
            with contextlib.suppress(HelpkitError):  # refused on a state that may be stale
                on_kept = self._access.guard(cast(Actor, actor), decide, *needs, agent=kept)
        if actor is not None and on_kept is None:
            decide = self._access.guard(actor, decide, *needs)
        try:
            ids = [self._ticket_id(ref) for ref in refs]
            expected: dict[str, int] = {}
            if self._strict:
                expected.update(
                    (ticket_id, ref.seq)
                    for ticket_id, ref in zip(ids, refs, strict=True)
                    if isinstance(ref, Ticket)
                )
            if expected_seq is not None:
                expected[ids[0]] = check_int(expected_seq, "expected_seq", minimum=0)
        except HelpkitError:
            if on_kept is not None:
                # The agent read anew is checked first, as when it is read first.
                self._access.guard(cast(Actor, actor), decide, *needs)
            raise
        if on_kept is not None and kept is not None:
            with self._directory.guarded_agent(kept):
                done = self._pipeline.run_on_recent(ids, on_kept, expected=expected or None)
            if done is not None:
                return self._synced(done)
            log.debug("a command decided on the kept agent %r did not write; reading it", kept.id)
            decide = self._access.guard(cast(Actor, actor), decide, *needs)
        return self._synced(self._pipeline.run(ids, decide, expected=expected or None))

    def _staff(self, actor: Actor) -> None:
        self._directory.staff_actor(actor)

    def _ticket_id(self, ref: TicketRef) -> str:
        if isinstance(ref, Ticket):
            return ref.id
        if isinstance(ref, str) and not ref.startswith("#"):
            return check_text(ref, "a ticket id")
        return self.ticket(ref).id

    # ------------------------------------------------------------------ agents, groups

    def add_group(
        self, group_id: str, name: str, *, tier: int | None = None, description: str | None = None
    ) -> Group:
        """Create or replace a group (``tier`` 1..4 = L1 service desk .. L4 vendor)."""
        return self._directory.add_group(group_id, name, tier=tier, description=description)

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
        """Create or replace an agent; every group must exist. ``skills`` and ``calendar``
        (the name of a configured calendar: the agent's shifts) are read by routing.
        ``role`` (a role of ``config.roles``) says what they may do; ``restricted=True``
        keeps them to their groups' tickets (see the page *Access*)."""
        self._check_calendar(calendar)
        self._access.check_role(role)
        return self._directory.add_agent(
            agent_id,
            name,
            email=email,
            groups=groups,
            languages=languages,
            active=active,
            skills=skills,
            calendar=calendar,
            role=role,
            restricted=restricted,
        )

    def update_agent(self, agent_id: str, **changes: Any) -> Agent:
        """Change fields of an agent: ``name``, ``email``, ``groups``, ``languages``,
        ``active``, ``skills``, ``away_until``, ``calendar``, ``role``, ``restricted``. An
        agent who becomes available (back, active, a new group) gets the waiting tickets of
        their routed groups."""
        if "calendar" in changes:
            self._check_calendar(changes["calendar"])
        if "role" in changes:
            self._access.check_role(changes["role"])
        agent = self._directory.update_agent(agent_id, changes)
        self._route_for(agent)
        return agent

    def set_away(self, agent_id: str, until: datetime | None) -> Agent:
        """Mark an agent away until ``until`` (``None``: back now): routing skips them
        until then. Coming back routes the waiting tickets of their groups to them."""
        when = None if until is None else to_utc(until, "until")
        return self.update_agent(agent_id, away_until=when)

    def _check_calendar(self, calendar: object) -> None:
        if calendar is not None and calendar not in self.config.calendars:
            known = ", ".join(sorted(self.config.calendars)) or "none"
            raise ValidationError(
                f"calendar {calendar!r:.40} is not configured (calendars: {known})"
            )

    def deactivate_agent(self, agent_id: str) -> Agent:
        """Mark an agent inactive: it can no longer be assigned (its tickets stay assigned)."""
        return self._directory.set_agent_active(agent_id, False)

    def activate_agent(self, agent_id: str) -> Agent:
        """Mark an agent active again: it can be assigned (and routing gives them the waiting
        tickets of their groups)."""
        agent = self._directory.set_agent_active(agent_id, True)
        self._route_for(agent)
        return agent

    # ------------------------------------------------------------------ routing

    def route(self, ref: TicketRef) -> Ticket:
        """Route the ticket now (an unassigned, active ticket of a routed group): it goes
        to the agent routing chooses, by ``system:routing``, or stays waiting when nobody
        can take it. Any other ticket is returned unchanged."""
        ticket_id = self._ticket_id(ref)
        return self._synced(self._pipeline.run([ticket_id], _unchanged, route=True))[0]

    def route_waiting(self, group: str | None = None, *, limit: int = 100) -> list[Ticket]:
        """Route the tickets waiting in a routed group (every routed group without
        ``group``): VIP first, then by priority, then oldest first, until one has to wait
        or ``limit`` were routed. Returns the tickets routed. Run it when capacity frees up
        with time (shifts starting, absences ending): the desk runs it itself after a
        command that frees an agent's slot or brings an agent back."""
        check_int(limit, "limit", minimum=1, maximum=10_000)
        if group is not None:
            check_text(group, "a group id")
            if self._router.policy(group) is None:
                raise ValidationError(f"group {group!r:.40} has no routing configured")
            groups = [group]
        else:
            groups = sorted(self.config.routing.groups)
        routed: list[Ticket] = []
        for group_id in groups:
            for ticket in self._router.waiting(group_id, limit=limit - len(routed)):
                after = self._synced(self._pipeline.run([ticket.id], _unchanged, route=True))[0]
                if after.assignee_id is None:
                    break  # nobody can take it (the ones after it wait behind it)
                routed.append(after)
            if len(routed) >= limit:
                break
        return routed

    def routing_decision(self, ref: TicketRef) -> Decision | None:
        """What routing would decide for the ticket now, changing nothing (``None`` for a
        ticket it would not route): who, and why the others were skipped."""
        ticket = self.ticket(ref)
        policy = self._router.policy(ticket.group_id)
        if policy is None or not self._router.routable(ticket):
            return None
        return self._router.decide(policy, ticket, self.now())[0]

    def _route_for(self, agent: Agent) -> None:
        if self._router.enabled and agent.available(self.now()):
            self._route_groups({g for g in agent.group_ids if self._router.policy(g)})

    def _route_freed(self, changes: Sequence[TicketChange]) -> None:
        """After a commit that may have freed an agent's slot (a status change of an
        assigned ticket, an assignment away from an agent), route their groups' waiting
        tickets. Failures are logged: they never undo the commit."""
        freed: set[str] = set()
        for change in changes:
            for event in change.events:
                if isinstance(event, StatusChanged) and change.ticket.assignee_id is not None:
                    freed.add(change.ticket.assignee_id)
                elif (
                    isinstance(event, Assigned)
                    and event.previous_assignee_id is not None
                    and event.previous_assignee_id != event.assignee_id
                ):
                    freed.add(event.previous_assignee_id)
        if not freed:
            return
        groups: set[str] = set()
        for agent_id in freed:
            try:
                agent = self.store.get_agent(agent_id)
            except NotFoundError:
                continue
            groups.update(g for g in agent.group_ids if self._router.policy(g) is not None)
        self._route_groups(groups)

    def _route_groups(self, groups: Iterable[str]) -> None:
        if not groups or getattr(self._routing_waiting, "on", False):
            return  # routing waiting tickets frees nothing: no need to go round again
        self._routing_waiting.on = True
        try:
            for group_id in sorted(groups):
                self.route_waiting(group_id)
        except HelpkitError:
            log.exception("routing the waiting tickets of %s failed", sorted(groups))
        finally:
            self._routing_waiting.on = False

    def agent(self, agent_id: str) -> Agent:
        """An agent by id."""
        return self._directory.agent(agent_id)

    def group(self, group_id: str) -> Group:
        """A group by id."""
        return self._directory.group(group_id)

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
        shared_tickets: bool = False,
    ) -> Organization:
        """Create an organization; its email domains must not belong to another one.
        ``shared_tickets``: its people see each other's tickets (see :meth:`for_contact`)."""
        return self._directory.create_organization(
            name,
            shared_tickets=shared_tickets,
            domains=domains,
            segment=segment,
            region=region,
            vip=vip,
            organization_id=organization_id,
        )

    def update_organization(self, organization: Organization | str, **changes: Any) -> Organization:
        """Change fields (name, domains, segment, region, vip, shared_tickets) of an
        organization."""
        return self._directory.update_organization(organization, **changes)

    def organization(self, organization: Organization | str) -> Organization:
        """An organization by id (or the object, reloaded)."""
        return self._directory.organization(organization)

    def organization_by_domain(self, domain: str) -> Organization:
        """The organization that owns an email domain."""
        return self._directory.organization_by_domain(domain)

    def find_organizations(self, text: str, *, limit: int = 50) -> list[Organization]:
        """Organizations whose name contains ``text`` (case- and accent-insensitive)."""
        return self._directory.find_organizations(text, limit=limit)

    def create_contact(
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
        """Create a contact. Without ``organization``, one owning the email's domain is used."""
        return self._directory.create_contact(
            name,
            emails=emails,
            phone=phone,
            language=language,
            timezone=timezone,
            organization=organization,
            vip=vip,
            segment=segment,
            contact_id=contact_id,
        )

    def update_contact(self, contact: Contact | str, **changes: Any) -> Contact:
        """Change fields of a contact (name, emails, phone, language, timezone, organization...)."""
        return self._directory.update_contact(contact, **changes)

    def contact(self, contact: Contact | str) -> Contact:
        """A contact by id (or the object, reloaded)."""
        return self._directory.contact(contact)

    def contact_by_email(self, email: str) -> Contact:
        """The contact with that email address (case-insensitive)."""
        return self._directory.contact_by_email(email)

    def find_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        """Contacts whose name contains ``text`` (case- and accent-insensitive)."""
        return self._directory.find_contacts(text, limit=limit)

    def contact_for_email(self, email: str, *, name: str | None = None) -> Contact:
        """The contact owning ``email``, created (with its domain's organization) if new.

        Atomic: two threads or processes asking for the same new address get one contact.
        """
        return self._directory.contact_for_email(email, name=name)

    def for_agent(self, agent: Agent | str) -> AgentView:
        """The reads an agent may make (``read`` permission, their groups' tickets when
        restricted), for a staff console; see :class:`~helpkit.agent_view.AgentView`."""
        agent_id = agent.id if isinstance(agent, Agent) else agent
        return AgentView(self, self._access, self._directory.agent(agent_id).id)

    def for_contact(self, contact: Contact | str) -> CustomerView:
        """What ``contact`` may see and do, for a customer portal: their own tickets (and
        their organization's, where it shares them), public comments only, replies where
        they are a party, new tickets as themself. See :class:`~helpkit.portal.CustomerView`
        and the page *Access*. An erased contact has no view (``NotFoundError``)."""
        found = self.contact(contact)
        if found.erased:
            raise NotFoundError(f"contact {found.id!r} was erased")
        return CustomerView(self, found.id)

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
            return self.store.get_ticket_by_number(check_int(ref, "a ticket number", minimum=1))
        if isinstance(ref, str):
            text = check_text(ref, "a ticket reference")
            if text.startswith("#") and text[1:].isdigit() and text[1:].isascii():
                return self.store.get_ticket_by_number(
                    check_int(int(text[1:]), "a ticket number", minimum=1)
                )
            return self.store.get_ticket(text)
        raise ValidationError(f"a ticket reference is a Ticket, an id or a number; got {ref!r:.60}")

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

    def attachment(self, ref: TicketRef, attachment_id: str) -> Attachment:
        """The description of a file attached to one of the ticket's comments (merged-in
        comments included); NotFoundError if no comment of that ticket has it."""
        wanted = check_text(attachment_id, "an attachment id")
        for comment in self.conversation(ref):
            for attachment in comment.attachments:
                if attachment.id == wanted:
                    return attachment
        raise NotFoundError(f"ticket {ref!r:.40} has no attachment {wanted!r:.60}")

    def attachment_bytes(self, ref: TicketRef, attachment_id: str) -> bytes:
        """The bytes of a file attached to one of the ticket's comments, read from the blob
        store; NotFoundError if no comment of that ticket has it (or its bytes were deleted),
        :class:`~helpkit.errors.BlobCorruptionError` if the stored copy was damaged."""
        return self.blobs.get(self.attachment(ref, attachment_id).sha256)

    def _keep(self, attachments: Iterable[InboundAttachment]) -> tuple[Attachment, ...]:
        """Check ``attachments`` against the limits (AttachmentError: nothing written), then
        put their bytes in the blob store; their descriptions."""
        items = check_items(attachments, "attachments", InboundAttachment)
        if not items:
            return ()
        return keep(self.blobs, items, limits=self.config.attachments, new_id=self._new_id)

    def tickets(self, query: TicketQuery | None = None, **filters: Any) -> Page[Ticket]:
        """Tickets matching a :class:`~helpkit.queries.TicketQuery` (or its fields as keywords)."""
        unknown = sorted(set(filters) - _QUERY_FIELDS)
        if unknown:
            raise ValidationError(
                f"unknown ticket filter(s) {', '.join(unknown)}; known: "
                + ", ".join(sorted(_QUERY_FIELDS))
            )
        if query is None:
            query = TicketQuery(**filters)
        elif not isinstance(query, TicketQuery):
            raise ValidationError(f"query must be a TicketQuery; got {query!r:.60}")
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
        attachments: Iterable[InboundAttachment] = (),
    ) -> Ticket:
        """Open a ticket for ``requester`` (a contact, its id, or an email address).

        ``body`` becomes the first comment (public unless ``public=False``), with the files
        ``attachments`` (checked against the limits before anything is written; they need a
        ``body``). An unknown email address creates the contact, once everything else was
        checked: a refused ticket creates no contact. Required custom fields must be given.
        """
        items = check_items(attachments, "attachments", InboundAttachment)
        if items and body is None:
            raise ValidationError("attachments go on the first comment: give a body too")
        files = self._keep(items) if items else ()
        # New contacts go with the ticket's commit when the store can (one transaction).
        with_commit = self._directory.saves_with_commit
        command: dict[str, Any] = {
            "attachments": files,
            "subject": subject,
            "body": body,
            "impact": impact,
            "urgency": urgency,
            "channel": channel,
            "tags": tags,
            "custom_fields": custom_fields,
            "group": group,
            "assignee": assignee,
            "cc": cc,
            "external_id": external_id,
            "public": public,
        }

        if isinstance(cc, tuple | list) and not cc:
            opened = self._open_on_kept(actor, requester, command)
            if opened is not None:
                return self._synced(opened)[0]

        def prepare() -> tuple[Decide, Sequence[Contact]]:
            # Made again (by the pipeline) when another writer saved a new address meanwhile:
            # the ticket is then that contact's (an address's contact is got or created at once).
            unsaved: list[Contact] | None = [] if with_commit else None
            decide = self._opening(actor, requester, unsaved, command, self.now())
            return decide, tuple(unsaved or ())

        decide, contacts = prepare()
        return self._synced(self._pipeline.run([], decide, contacts=contacts, again=prepare))[0]

    def _open_on_kept(
        self, actor: Actor, requester: Contact | str, command: dict[str, Any]
    ) -> list[Ticket] | None:
        """:meth:`open_ticket` (no CCs) decided on the acting agent and the requester the
        store keeps (no read before the commit), committed only if both are still stored so;
        None, nothing written, when the store keeps none, a group is routed, the decision
        refused (maybe for a stale state), or the commit found either changed: the caller
        then decides on them read anew. No write or error comes from a stale state."""
        if self._router.enabled:
            return None  # routing reads and writes its states: the full path does it
        parties = self._directory.kept_acting_and_requester(actor, requester)
        if parties is None:
            return None
        unsaved: list[Contact] = []
        try:
            decide = self._opening(actor, requester, unsaved, command, self.now(), parties)
        except HelpkitError:
            return None  # refused on states that may be stale: decided again on reads
        if unsaved:  # pragma: no cover - a kept requester and no CCs name no new contact
            return None

        def on_kept(tickets: Sequence[Ticket], now: datetime) -> Sequence[Outcome]:
            try:
                return decide(tickets, now)
            except HelpkitError as exc:
                raise _RefusedOnKeptError from exc

        try:
            with self._directory.guarded(parties):
                return self._pipeline.run([], on_kept)
        except (_RefusedOnKeptError, ConflictError):
            log.debug("open_ticket decided on kept parties that moved; deciding on reads")
            return None

    def _opening(
        self,
        actor: Actor,
        requester: Contact | str,
        unsaved: list[Contact] | None,
        command: dict[str, Any],
        now: datetime,
        parties: tuple[Agent | None, tuple[Contact, bool]] | None = None,
    ) -> Decide:
        """:meth:`open_ticket`'s decision at ``now`` on ``command`` (its keyword arguments
        for :meth:`TicketCommands.open_ticket`, handed on once); ``unsaved`` (a list: the new
        contacts, committed with the ticket) or None (saved before, by the command);
        ``parties`` the acting agent and the requester when the caller has them (else they
        are read)."""
        # The acting agent and the requester, read once (in one read when the store can):
        # the command decides on them and the access guard checks the same agent.
        if parties is None and isinstance(actor, Actor):
            parties = self._directory.acting_and_requester(actor, requester)
        decide = self._commands.open_ticket(
            actor, requester=requester, parties=parties, unsaved=unsaved, now=now, **command
        )
        if isinstance(actor, Actor) and actor.kind is ActorKind.AGENT:
            agent = None if parties is None else parties[0]
            decide = self._access.guard(actor, decide, Permission.OPEN, agent=agent)
        return decide

    def reply(
        self,
        ref: TicketRef,
        actor: Actor,
        body: str,
        *,
        status: str | None = None,
        channel: str | None = None,
        expected_seq: int | None = None,
        attachments: Iterable[InboundAttachment] = (),
    ) -> Ticket:
        """A public reply from an agent; it is sent to the requester and followers, with the
        files ``attachments`` (checked against the limits before anything is written).

        A new ticket becomes open; ``status`` submits the reply with a status (e.g. pending).
        """
        self._staff(actor)
        self._outbound.check_channel(channel)
        files = self._keep(attachments)
        decide = self._commands.comment(
            actor, body, public=True, channel=channel, status=status, attachments=files
        )
        needs = (Permission.REPLY,) if status is None else (Permission.REPLY, Permission.EDIT)
        return self._run([ref], decide, expected_seq, actor, *needs)[0]

    def note(
        self,
        ref: TicketRef,
        actor: Actor,
        body: str,
        *,
        expected_seq: int | None = None,
        attachments: Iterable[InboundAttachment] = (),
    ) -> Ticket:
        """An internal note (with the files ``attachments``): visible to agents only, never
        sent to the requester."""
        self._staff(actor)
        files = self._keep(attachments)
        decide = self._commands.comment(
            actor, body, public=False, channel="internal", attachments=files
        )
        return self._run([ref], decide, expected_seq, actor, Permission.NOTE)[0]

    def _macro(self, macro: str | Macro, actor: Actor) -> tuple[Macro, Agent | None]:
        self._staff(actor)
        found = (
            macro if isinstance(macro, Macro) else self.config.macro(check_text(macro, "a macro"))
        )
        agent = self._directory.agent(actor.id) if actor.kind is ActorKind.AGENT else None
        return found, agent

    def apply_macro(
        self,
        ref: TicketRef,
        macro: str | Macro,
        actor: Actor,
        *,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Carry out a macro's actions (its canned reply, status, tags...) on the ticket in one
        command, as ``actor`` (an agent, or the system). ``macro`` is a configured macro's
        name (``[[macros]]``) or a :class:`~helpkit.rules.Macro`."""
        found, agent = self._macro(macro, actor)
        decide = self._commands.macro(actor, found, agent)
        return self._run([ref], decide, expected_seq, actor, Permission.MACRO)[0]

    def preview_macro(self, ref: TicketRef, macro: str | Macro, actor: Actor) -> lifecycle.Outcome:
        """What :meth:`apply_macro` would do now: the ticket after it and the events it would
        record (the triggers' included), the reply's text filled in. Nothing is written."""
        found, agent = self._macro(macro, actor)
        decide = self._access.guard(
            actor, self._commands.macro(actor, found, agent), Permission.MACRO
        )
        return self._pipeline.preview([self._ticket_id(ref)], decide)[0]

    def requester_reply(
        self,
        ref: TicketRef,
        body: str,
        *,
        actor: Actor | None = None,
        channel: str | None = None,
        external_id: str | None = None,
        in_reply_to: str | None = None,
        attachments: Iterable[InboundAttachment] = (),
    ) -> Ticket:
        """A message from the requester (or a CC'd contact), with the files ``attachments``.
        ``actor`` (default: the requester) must be a party of the ticket, its requester or a
        follower (of the ticket addressed, or of the one it was merged into): another
        contact's message is refused with :class:`~helpkit.errors.AccessDeniedError`.

        It reopens a pending or solved ticket. A message to a merged ticket goes to the ticket
        it was merged into; a message to a closed ticket opens a follow-up ticket linked to it,
        which is returned.
        """
        addressed = self.ticket(ref)
        ticket = self.live_ticket(addressed)
        author = actor if actor is not None else Actor.contact(ticket.requester_id)
        if not isinstance(author, Actor) or author.kind is not ActorKind.CONTACT:
            raise ValidationError("requester_reply is written by a contact")
        if not (addressed.has_party(author.id) or ticket.has_party(author.id)):
            # Refused before the files are kept; the decision checks again on the fresh ticket.
            raise AccessDeniedError(
                f"contact {author.id!r} is no party of ticket {addressed.reference}: only its "
                "requester and followers write to it"
            )
        files = self._keep(attachments)
        decide = self._commands.requester_message(
            author,
            body,
            channel=channel,
            external_id=external_id,
            in_reply_to=in_reply_to,
            attachments=files,
            party_of=addressed,
        )
        return self._synced(self._pipeline.run([ticket.id], decide))[0]

    def assign(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        agent: str | Unset | None = UNSET,
        group: str | Unset | None = UNSET,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Set the assignee and/or group (``None`` clears). The agent must be in the group.

        Giving only an agent keeps the group if the agent belongs to it, else takes the
        agent's first group.
        """
        self._staff(actor)
        return self._run(
            [ref],
            self._commands.assign(actor, agent, group),
            expected_seq,
            actor,
            Permission.ASSIGN,
        )[0]

    def transfer(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        group: str,
        agent: str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Hand the ticket to another group (and optionally one of its agents), with a reason."""
        self._staff(actor)
        decide = self._commands.transfer(actor, group, agent, reason)
        return self._run([ref], decide, expected_seq, actor, Permission.ASSIGN)[0]

    def set_status(
        self,
        ref: TicketRef,
        actor: Actor,
        status: str,
        *,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Move to a configured status, if its category allows the transition."""
        self._staff(actor)
        decide = self._commands.set_status(actor, status, reason)
        return self._run([ref], decide, expected_seq, actor, Permission.EDIT)[0]

    def resolve(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        comment: str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Mark solved (optionally with a public closing comment)."""
        self._staff(actor)
        decide = self._commands.to_category(
            actor, StatusCategory.SOLVED, reason=reason, comment=comment
        )
        needs = (Permission.EDIT,) if comment is None else (Permission.EDIT, Permission.REPLY)
        return self._run([ref], decide, expected_seq, actor, *needs)[0]

    def close(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Close: the ticket becomes read-only."""
        self._staff(actor)
        decide = self._commands.to_category(actor, StatusCategory.CLOSED, reason=reason)
        return self._run([ref], decide, expected_seq, actor, Permission.EDIT)[0]

    def reopen(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Reopen a solved ticket."""
        self._staff(actor)
        return self._run(
            [ref], self._commands.reopen(actor, reason), expected_seq, actor, Permission.EDIT
        )[0]

    def prioritize(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        impact: Impact | str | None = None,
        urgency: Urgency | str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Set impact and/or urgency; the priority is recomputed from the matrix."""
        self._staff(actor)
        decide = self._commands.prioritize(actor, impact, urgency, reason)
        return self._run([ref], decide, expected_seq, actor, Permission.EDIT)[0]

    def set_subject(
        self, ref: TicketRef, actor: Actor, subject: str, *, expected_seq: int | None = None
    ) -> Ticket:
        """Edit the subject."""
        self._staff(actor)
        return self._run(
            [ref], self._commands.set_subject(actor, subject), expected_seq, actor, Permission.EDIT
        )[0]

    def tag(
        self, ref: TicketRef, actor: Actor, *tags: str, expected_seq: int | None = None
    ) -> Ticket:
        """Add tags (lower-cased; spaces become underscores)."""
        self._staff(actor)
        return self._run(
            [ref], self._commands.tags(actor, add=tags), expected_seq, actor, Permission.EDIT
        )[0]

    def untag(
        self, ref: TicketRef, actor: Actor, *tags: str, expected_seq: int | None = None
    ) -> Ticket:
        """Remove tags."""
        self._staff(actor)
        return self._run(
            [ref], self._commands.tags(actor, remove=tags), expected_seq, actor, Permission.EDIT
        )[0]

    def follow(
        self,
        ref: TicketRef,
        actor: Actor,
        follower: Actor | None = None,
        *,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Add a follower (default: the actor): they receive public replies."""
        who = follower if follower is not None else actor
        decide = self._commands.followers(actor, add=[who])
        return self._run([ref], decide, expected_seq, *self._following(actor, who))[0]

    def unfollow(
        self,
        ref: TicketRef,
        actor: Actor,
        follower: Actor | None = None,
        *,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Remove a follower (default: the actor)."""
        who = follower if follower is not None else actor
        decide = self._commands.followers(actor, remove=[who])
        return self._run([ref], decide, expected_seq, *self._following(actor, who))[0]

    @staticmethod
    def _following(actor: Actor, who: Actor) -> tuple[Actor, Permission]:
        """An agent follows or unfollows a ticket they may read; changing someone else's
        following is an edit."""
        return actor, Permission.READ if who == actor else Permission.EDIT

    def set_fields(
        self,
        ref: TicketRef,
        actor: Actor,
        values: Mapping[str, object],
        *,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Set typed custom fields (``None`` clears one)."""
        self._staff(actor)
        return self._run(
            [ref], self._commands.set_fields(actor, values), expected_seq, actor, Permission.EDIT
        )[0]

    def link(
        self,
        ref: TicketRef,
        actor: Actor,
        other: TicketRef,
        kind: LinkKind | str = LinkKind.RELATED,
        *,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Link two tickets (parent/child, related, duplicate); both record the link."""
        self._staff(actor)
        return self._run(
            [ref, other], self._commands.link(actor, kind), expected_seq, actor, Permission.EDIT
        )[0]

    def unlink(
        self,
        ref: TicketRef,
        actor: Actor,
        other: TicketRef,
        kind: LinkKind | str = LinkKind.RELATED,
        *,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Remove a link from both tickets."""
        self._staff(actor)
        decide = self._commands.link(actor, kind, remove=True)
        return self._run([ref, other], decide, expected_seq, actor, Permission.EDIT)[0]

    def merge(
        self,
        source: TicketRef,
        target: TicketRef,
        actor: Actor,
        *,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Merge ``source`` into ``target`` and return the target.

        Comments and followers move to the target; the source gets the merged status and a
        pointer to the target; both audit trails record it; both writes are one commit.
        ``expected_seq`` is the version of the source the caller saw.
        """
        self._staff(actor)
        return self._run(
            [source, target], self._commands.merge(actor), expected_seq, actor, Permission.MERGE
        )[1]

    # ------------------------------------------------------------------ inbound messages

    def receive(self, message: InboundMessage, *, screen: bool = True) -> Intake:
        """Take an inbound message: it opens a ticket, comments on one, or is suspended.

        The same message twice (same channel and external id) is ingested once: the second
        call returns the first outcome with ``duplicate=True``. ``screen=False`` skips the
        ``helpkit_screen_inbound`` screens. The page *Intake* tells the threading rules.
        The store needs :attr:`~helpkit.ports.Capability.INBOX`.
        """
        if self._scrub is not None:  # privacy (issue #16): scrubbed before it is screened
            message = self._scrubbed(message)
        return self._synced_intake(self._receiver.receive(message, screen=screen))

    def received(self, channel: str, external_id: str) -> Intake | None:
        """What :meth:`receive` would return for a message of ``channel`` with
        ``external_id`` (its Message-ID) that the desk received before: the first outcome,
        ``duplicate=True``; ``None`` when it holds none (receive the message then). A
        transport that knows a message's id before parsing it (``helpkit mail`` keeps the
        ids of the bytes it parsed) asks this first and skips the parse of a redelivery."""
        return self._receiver.received(channel, external_id)

    def suspended(self, *, limit: int = 100, after: str | None = None) -> list[Receipt]:
        """Suspended inbound messages, oldest first; ``after`` is the last key of the
        previous page."""
        check_int(limit, "limit", minimum=1, maximum=10_000)
        return self._receiver.inbox().suspended(limit=limit, after=after)

    def release(self, key: str, actor: Actor) -> Intake:
        """Ingest a suspended message as if it passed the screens (a stranger's opens a
        ticket of its own); ``actor`` is the agent (or system) releasing it."""
        self._inbox_actor(actor)
        return self._synced_intake(self._receiver.release(key, actor))

    def discard(self, key: str, actor: Actor) -> Receipt:
        """Throw a suspended message away; its receipt stays (``discarded``), so the same
        message is not ingested if it comes again."""
        self._inbox_actor(actor)
        return self._receiver.discard(key, actor, self.now())

    def _inbox_actor(self, actor: Actor) -> None:
        if isinstance(actor, Actor) and actor.kind is ActorKind.AGENT:
            self._access.check(actor, Permission.INBOX)

    def _synced_intake(self, intake: Intake) -> Intake:
        if getattr(self._relaying, "recorded", False):
            self._relaying.recorded = False
        return intake

    # ------------------------------------------------------------------ privacy (issue #16)

    def _scrubbed(self, message: InboundMessage) -> InboundMessage:
        scrub = self._scrub
        assert scrub is not None
        original = None if message.original is None else scrub(message.original)
        return attrs.evolve(
            message, subject=scrub(message.subject), body=scrub(message.body), original=original
        )

    def redact(
        self,
        ref: TicketRef,
        comment_id: str,
        actor: Actor,
        *,
        reason: str,
        attachments: bool = True,
    ) -> Redacted:
        """Redact a comment of the ticket: its text (and, with ``attachments``, its files) is
        gone from every read, the history keeps that it existed, and a ``comment_redacted``
        event records who, when and ``reason`` (see the page *Privacy*). Closed tickets too.
        Asking again for a redacted comment repeats the rewrite without a second event (it
        finishes a redaction a crash cut short). The store needs the ``redaction``
        capability; run :meth:`compact` afterwards to drop the old bytes from its files."""
        self._staff(actor)
        agent = self._access.check(actor, Permission.PRIVACY)
        if agent is not None:  # a restricted role's agent: only their groups' tickets
            self._access.check_tickets(agent, [self.ticket(ref)], Permission.PRIVACY)
        return self._privacy.redact(
            self._ticket_id(ref),
            check_text(comment_id, "a comment id"),
            actor,
            reason=reason,
            attachments=attachments,
        )

    def erase_contact(self, contact: Contact | str, actor: Actor, *, reason: str) -> Erasure:
        """Erase a contact: its comments on the tickets it is a party to are redacted, each
        such ticket records a ``contact_erased`` event, its suspended messages are discarded,
        deliveries addressed to it lose its address, and the contact becomes a tombstone (its
        id kept, nothing else; looking it up by email finds nothing)."""
        self._staff(actor)
        self._access.check(actor, Permission.PRIVACY)
        contact_id = (
            contact.id if isinstance(contact, Contact) else check_text(contact, "a contact")
        )
        return self._privacy.erase_contact(contact_id, actor, reason=reason)

    def purge_closed(self, older_than: timedelta, *, dry_run: bool = False) -> PurgeReport:
        """Delete the tickets closed more than ``older_than`` ago, with their events,
        deliveries, receipts and the attachment bytes only they used (``dry_run``: only say
        which). The store needs the ``purge`` capability."""
        return self._privacy.purge_closed(older_than=older_than, dry_run=dry_run)

    def compact(self) -> None:
        """The store's cleanup step after redactions, erasures and purges (SQLite: the
        write-ahead log checkpointed and truncated, the file vacuumed; PostgreSQL: VACUUM)."""
        self._privacy.compact()

    # ------------------------------------------------------------------ SLA and escalation

    def sla(self, ref: TicketRef, *, now: datetime | None = None) -> SlaStatus | None:
        """Every SLA clock of the ticket as of ``now`` (default: the clock), or ``None``.

        ``None`` when no policy applies to the ticket; on a desk with no SLA policies at all,
        the first call also logs a warning on the ``helpkit`` logger saying so.
        """
        ticket = self.ticket(ref)
        at = self.now() if now is None else to_utc(now, "now")
        if self.config.sla is None and not self._said_no_sla:
            self._said_no_sla = True  # once per desk: a desk may well not measure SLAs
            log.warning(
                "this desk has no SLA policies (DeskConfig.sla is None), so desk.sla() returns "
                "None for every ticket; configure [sla] in helpkit.toml to measure them"
            )
        policy = self._levels.policy_for(ticket)
        if policy is None:
            return None
        return self._sla.fold(ticket.id, ticket.seq, policy).status(at)

    def sweep(self, now: datetime | None = None, *, batch: int = 500) -> SweepReport:
        """Record due SLA warnings and breaches and run the escalation rules (idempotent).

        Due tickets are committed ``batch`` at a time, one transaction per batch.
        """
        at = self.now() if now is None else to_utc(now, "now")
        check_int(batch, "batch", minimum=1, maximum=100_000)
        return self._sweeper.run(at, batch=batch)

    def escalate(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        group: str | None = None,
        functional: bool = False,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Escalate one tier up (or, with ``functional=True``, to another group of its tier)."""
        self._staff(actor)
        kind = EscalationKind.FUNCTIONAL if functional else EscalationKind.HIERARCHICAL
        decide = self._commands.move_tier(actor, kind, group, reason)
        return self._run([ref], decide, expected_seq, actor, Permission.ASSIGN)[0]

    def de_escalate(
        self,
        ref: TicketRef,
        actor: Actor,
        *,
        group: str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> Ticket:
        """Hand the ticket back one tier down."""
        self._staff(actor)
        decide = self._commands.move_tier(actor, EscalationKind.DE_ESCALATION, group, reason)
        return self._run([ref], decide, expected_seq, actor, Permission.ASSIGN)[0]

    # ------------------------------------------------------------------ satisfaction

    def rate(self, token: str, rating: Rating | str, comment: str | None = None) -> Ticket:
        """Record the rating (``good`` or ``bad``) a contact gave through their signed rating
        link (``token``, from the survey offer), with an optional comment; the ticket after it.

        The latest rating of a ticket counts; each one stays in its audit trail. RatingError
        (a ValidationError) when the token is not this desk's, was tampered with or expired,
        or names a contact who may not rate the ticket now; ValidationError for another
        rating; the store is left as it was. See the page *Customer satisfaction*.
        """
        value = Rating.coerce(rating)
        if comment is not None:
            comment = check_text(comment, "a rating's comment")
        if self._rating_tokens is None:
            raise RatingError("this desk has no secret: it signs and accepts no rating links")
        found = self._rating_tokens.verify(token, self.now())
        config = self.config

        def decide(tickets: Sequence[Ticket], now: datetime) -> Sequence[Outcome]:
            if now >= found.expires_at:
                raise RatingError(f"the rating link expired on {found.expires_at:%Y-%m-%d %H:%M}")
            return [
                rate_ticket(
                    tickets[0],
                    found.contact_id,
                    value,
                    at=now,
                    comment=comment,
                    config=config.csat,
                    workflow=config.workflow,
                )
            ]

        try:
            return self._run([found.ticket_id], decide, None)[0]
        except NotFoundError:
            raise RatingError("the rating link names no ticket of this desk") from None

    def rating_link(self, ref: TicketRef, contact_id: str | None = None) -> str:
        """The rating link of the ticket's latest survey offer for ``contact_id`` (default: the
        requester), as the offer sent it (valid until the offer's expiry): ``[csat] url`` with
        the token, or ``helpkit-rate:<token>``.

        InvalidTransitionError when no survey was offered; RatingError when the contact is not
        one the offer went to; ConfigError on a desk without a secret.
        """
        return rating_url(self.config.csat, self.rating_token(ref, contact_id))

    def rating_token(self, ref: TicketRef, contact_id: str | None = None) -> str:
        """The token of :meth:`rating_link` (what :meth:`rate` takes)."""
        if self._rating_tokens is None:
            raise ConfigError("a desk without a secret signs no rating links")
        ticket = self.ticket(ref)
        offered = [e for e in self.history(ticket) if isinstance(e, SatisfactionOffered)]
        if not offered:
            raise InvalidTransitionError(
                f"no satisfaction survey was offered on {ticket.reference}"
            )
        latest = offered[-1]
        who = ticket.requester_id if contact_id is None else check_text(contact_id, "a contact")
        if who not in latest.recipients:
            raise RatingError(f"the survey of {ticket.reference} was not offered to {who!r:.60}")
        return self._rating_tokens.sign(ticket.id, who, latest.expires_at)

    def tier_times(self, ref: TicketRef, *, now: datetime | None = None) -> dict[int, timedelta]:
        """Business time the ticket spent in each tier (L1 = 1...), pauses excluded.

        Measured on the calendar of the ticket's SLA policy (24/7 UTC without one).
        """
        ticket = self.ticket(ref)
        at = self.now() if now is None else to_utc(now, "now")
        return self._levels.tier_times(ticket, self.store.events(ticket.id), at)

    # ------------------------------------------------------------------ KPIs

    def kpis(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        group: str | Iterable[str] | None = None,
        agent: str | Iterable[str] | None = None,
        organization: str | Iterable[str] | None = None,
        priority: Priority | int | str | Iterable[Priority | int | str] | None = None,
        channel: str | Iterable[str] | None = None,
        tags: str | Iterable[str] = (),
        period: Period | str = Period.DAY,
        now: datetime | None = None,
        projection: KpiProjection | None = None,
        fields: str | Iterable[str] = (),
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> KpiReport:
        """The desk's KPIs as of ``now`` (default: the clock), computed from events.

        ``since`` (included) and ``until`` (excluded) select the tickets opened in that range;
        the other filters match the tickets' state as of ``now`` (any of the values given; all
        of ``tags``). ``period`` (``day`` or ``week``) buckets the volume over time; ``fields``
        names custom fields to count the volume by too (a ``form`` field: volume by form).
        Every ticket is read, a page at a time; see :doc:`/kpis` for each KPI's definition.

        With ``projection`` (see :meth:`kpi_projection`), it is first brought up to date
        from the change feed and the report adds up its kept facts instead (the same
        figures); a ``now`` before its latest event is refused (ValidationError).

        With ``checkpoint`` instead (a file :meth:`KpiProjection.save` wrote, with this desk's
        SLA policies and tier ladder), the report streams the file's compact records a chunk
        at a time, folding only the tickets changed since it was saved from their histories
        (the same figures, in memory that does not grow with the tickets: see
        :func:`helpkit.reports.report_from_checkpoint`).
        """
        at = self.now() if now is None else to_utc(now, "now")
        kpi_filter = KpiFilter(
            since=since,
            until=until,
            groups=group,
            agents=agent,
            organizations=organization,
            priorities=priority,
            channels=channel,
            tags=tags,
        )
        if projection is not None and checkpoint is not None:
            raise ValidationError("a report is from a projection or from a checkpoint, not both")
        if projection is not None:
            projection.update(self.store)
            return projection.report(at, kpi_filter, Period.coerce(period), fields)
        if checkpoint is not None:
            return report_from_checkpoint(
                checkpoint,
                self.store,
                at,
                kpi_filter,
                Period.coerce(period),
                fields,
                policies=self.config.sla,
                ladder=self._levels.ladder(),
            )
        reader = KpiReader(self.store, self.config.sla, self._levels.ladder())
        return reader.report(at, kpi_filter, Period.coerce(period), fields)

    def build_kpi_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Build a KPI projection checkpoint at ``path`` from the whole change feed, made with
        this desk's SLA policies and tier ladder, streamed to the file (see
        :meth:`KpiProjection.build_checkpoint <helpkit.reports.KpiProjection.build_checkpoint>`):
        the same file as ``kpi_projection().save(path, store)``, at a memory that does not
        grow with the number of tickets. Then report from it with
        ``kpis(checkpoint=path)``, or load it with :meth:`kpi_projection`."""
        KpiProjection.build_checkpoint(path, self.store, self.config.sla, self._levels.ladder())

    def kpi_projection(self, checkpoint: str | os.PathLike[str] | None = None) -> KpiProjection:
        """A KPI projection made with this desk's SLA policies and tier ladder, up to date:
        from the checkpoint file ``checkpoint`` (see :meth:`KpiProjection.save`) when given
        and present, else (or when an earlier helpkit wrote it, in another checkpoint format)
        built from the whole change feed. Keep it, and pass it to :meth:`kpis`; it needs a
        store with ``Capability.CHANGE_FEED``."""
        ladder = self._levels.ladder()
        projection = None
        if checkpoint is not None and os.path.exists(checkpoint):
            try:
                projection = KpiProjection.load(checkpoint, self.config.sla, ladder)
            except OutdatedCheckpointError:
                projection = None  # an earlier helpkit's checkpoint: build anew
        if projection is None:
            projection = KpiProjection(self.config.sla, ladder)
        projection.update(self.store)
        return projection
