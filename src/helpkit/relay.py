# Over 600 lines: Relay is one class; its derive, claim, send, record and settle steps share
# its state (the cursor, the lease owner, the run's lookups).
"""The relay: follows the change feed, keeps the outbox, and delivers it, never on the request
path.

1. **Derive.** Read the change feed after the relay's cursor (``outbox``), turn each committed
   event into the deliveries it calls for (:meth:`helpkit.delivery.Outbound.plan`), and add
   them to the outbox in the same transaction that moves the cursor: every committed event is
   derived once, even when the relay dies half-way or two relays run.
2. **Claim.** Take the due deliveries for a lease (another relay cannot hold them meanwhile;
   if this one dies, the lease lapses and another takes them).
3. **Send.** Hand each to its channel with its idempotency key. A failure is retried with
   exponential backoff and jitter, up to :attr:`RetryPolicy.attempts`, then dead-lettered.
4. **Record.** Each outcome goes into the ticket's audit trail through the command pipeline:
   ``message_sent`` (channel, recipients, the external id that later replies thread on) or
   ``delivery_failed`` (reason, attempt, final), in one commit per batch.
5. **Settle.** Store the results in the outbox and release the claims: in the record's
   transaction on a store with :attr:`Capability.SETTLED_COMMIT`, else in one of their own.

Delivery is at least once: a relay killed between sending and recording sends again when the
delivery is claimed anew (a channel that remembers idempotency keys sends it once). When a
delivery is claimed a second time, the relay first looks in the ticket's audit trail for what
an earlier relay recorded, so an outcome recorded before the crash is not recorded twice.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final, cast

import attrs

from helpkit import lifecycle
from helpkit._checks import check_int
from helpkit._records import replace
from helpkit.delivery import Outbound
from helpkit.errors import (
    ConfigError,
    ConflictError,
    DeliveryRefusedError,
    HelpkitError,
    InvalidTransitionError,
    StoreError,
    ValidationError,
)
from helpkit.events import DeliveryFailed, DeliveryRevived, Event, MessageSent, TicketOpened
from helpkit.ids import new_id
from helpkit.lifecycle import Outcome
from helpkit.notices import Lookups
from helpkit.pipeline import Pipeline, Settlement
from helpkit.ports import (
    Capability,
    Change,
    ChangeFeed,
    ClaimedEnqueue,
    Delivery,
    DeliveryState,
    Outbox,
    Store,
    implements,
)
from helpkit.tickets import Actor, Ticket

__all__ = ["RELAY_ACTOR", "Relay", "RelayReport", "RetryPolicy"]

log = logging.getLogger("helpkit.relay")

RELAY_ACTOR: Final = Actor.system("relay")
CURSOR: Final = "outbox"
"""The relay's cursor on the change feed."""
_RECORD_ROUNDS: Final = 20
"""How many times the relay runs the pipeline (each deciding again a few times) to record a
batch's outcomes while tickets keep changing under it."""
_TRAILS_KEPT: Final = 4096
"""How many tickets' audit trails (what they say of deliveries) the relay keeps between batches."""


def _positive_delta(instance: object, attribute: attrs.Attribute[timedelta], value: object) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ConfigError(f"{attribute.name} must be a positive timedelta; got {value!r:.40}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When to try a failed delivery again: ``first`` after the first failure, multiplied by
    ``factor`` after each further one, never more than ``longest``, each wait shortened by a
    random part up to ``jitter`` (so relays retrying together spread out); after ``attempts``
    failed attempts the delivery is dead."""

    attempts: int = 8
    first: timedelta = attrs.field(default=timedelta(seconds=30), validator=_positive_delta)
    factor: float = 2.0
    longest: timedelta = attrs.field(default=timedelta(hours=1), validator=_positive_delta)
    jitter: float = 0.2

    def __attrs_post_init__(self) -> None:
        check_int(self.attempts, "attempts", minimum=1, maximum=1000)
        if not 1.0 <= self.factor <= 100.0:
            raise ConfigError(f"factor must be in [1, 100]; got {self.factor!r}")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigError(f"jitter must be in [0, 1); got {self.jitter!r}")

    def delay(self, failures: int, draw: Callable[[], float] = random.random) -> timedelta:
        """How long to wait after the ``failures``-th failed attempt."""
        base = self.first * (self.factor ** (failures - 1))
        wait = min(base, self.longest)
        return wait * (1.0 - self.jitter * draw())


@attrs.frozen
class RelayReport:
    """What a relay run did."""

    derived: int = 0
    """Deliveries added to the outbox from the change feed."""
    sent: int = 0
    retried: int = 0
    """Failed attempts that will be tried again."""
    dead: int = 0
    recovered: int = 0
    """Deliveries an earlier relay had sent (or given up) before it stopped: settled from the
    audit trail, not sent again."""
    lost_claims: int = 0
    """Results not stored because the claim lapsed meanwhile (another relay took over)."""

    def __add__(self, other: RelayReport) -> RelayReport:
        mine, theirs = attrs.astuple(self), attrs.astuple(other)
        return RelayReport(*(a + b for a, b in zip(mine, theirs, strict=True)))

    @property
    def handled(self) -> int:
        """Deliveries this run finished with (sent, retried, dead or recovered)."""
        return self.sent + self.retried + self.dead + self.recovered


class Relay:
    """Derives, claims, sends, records and settles the deliveries of one store."""

    def __init__(
        self,
        store: Store,
        outbound: Outbound,
        pipeline: Pipeline,
        *,
        owner: str | None = None,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=5),
        batch: int = 200,
        draw: Callable[[], float] = random.random,
    ) -> None:
        able: frozenset[str] = getattr(store, "capabilities", frozenset())
        if (
            not implements(store, ChangeFeed)
            or not implements(store, Outbox)
            or Capability.CHANGE_FEED not in able
            or Capability.OUTBOX not in able
        ):
            raise ConfigError(
                f"{type(store).__name__} has no change feed or no outbox "
                "(Capability.CHANGE_FEED, Capability.OUTBOX): it cannot deliver messages"
            )
        self._store = store
        self._feed = cast(ChangeFeed, store)
        self._outbox = cast(Outbox, store)
        self._claimed: ClaimedEnqueue | None = None
        if Capability.CLAIMED_ENQUEUE in able and implements(store, ClaimedEnqueue):
            self._claimed = cast(ClaimedEnqueue, store)
        self._outbound = outbound
        self._pipeline = pipeline
        self.owner = owner or f"relay-{new_id()[-12:]}"
        self.policy = policy or RetryPolicy()
        self._lease = lease
        self._batch = check_int(batch, "batch", minimum=1, maximum=10_000)
        self._draw = draw
        self._lock = threading.Lock()
        self._begun = False
        self._trails = _Trails(store)

    # ------------------------------------------------------------ the steps

    def derive(self, *, limit: int = 1000, people: Lookups | None = None) -> int:
        """Turn the next committed events into deliveries; how many were added. ``people``:
        the directory's people as read so far in this run (each read once per run, so a run
        plans on the directory as it was when it first needed each person); by default
        read for this call."""
        added, _ = self._derive(limit=limit, people=people, hold=None)
        return added

    def _derive(
        self, *, limit: int, people: Lookups | None, hold: datetime | None
    ) -> tuple[int, list[Delivery]]:
        """:meth:`derive`; with ``hold`` (a store with :attr:`Capability.CLAIMED_ENQUEUE`),
        the new deliveries are added claimed by this relay until ``hold``, and returned."""
        self.begin()
        cursor = self._feed.cursor(CURSOR)
        changes = self._feed.changes(after=cursor, limit=limit)
        if not changes:
            return 0, []
        self._trails.follow(changes)
        now = self._pipeline.now()
        planned = self._outbound.plan(changes, now, people)
        position = changes[-1].position
        try:
            # Built by the planner through the records' constructors (every check ran).
            if hold is not None and self._claimed is not None:
                held = self._claimed.enqueue_claimed(
                    planned,
                    cursor=CURSOR,
                    position=position,
                    expected=cursor,
                    owner=self.owner,
                    until=hold,
                    checked=True,
                )
                return len(held), held
            added = self._outbox.enqueue(
                planned, cursor=CURSOR, position=position, expected=cursor, checked=True
            )
            return added, []
        except ConflictError:
            return 0, []  # another relay derived these meanwhile

    def begin(self) -> None:
        """Start the relay's cursor, the first time a relay (a desk with channels) opens the
        store, at the last committed position: events committed before, when no channel could
        send them (a store used without channels, or a file from before the outbox, whose
        messages were sent then), are not sent now. A store that cannot be written yet
        (read-only) is started by the next relay that can."""
        if self._begun:
            return
        if CURSOR not in self._feed.cursors():
            try:
                self._feed.save_cursor(CURSOR, self._feed.last_position(), expected=0)
            except ConflictError:
                pass  # another relay started it meanwhile
            except StoreError as exc:
                log.debug("could not start the relay's cursor: %s", exc)
                return
        self._begun = True

    def deliver(self, *, limit: int | None = None) -> RelayReport:
        """Claim due deliveries, send them, record and settle the outcomes (one batch)."""
        now = self._pipeline.now()
        until = now + self._lease
        claimed = self._outbox.claim(
            owner=self.owner, now=now, until=until, limit=self._batch if limit is None else limit
        )
        if not claimed:
            return RelayReport()
        return self._deliver_held(claimed, now=now, until=until)

    def _deliver_held(
        self, claimed: Sequence[Delivery], *, now: datetime, until: datetime
    ) -> RelayReport:
        """Send the deliveries this relay holds until ``until``, record and settle the
        outcomes."""
        results: list[tuple[Delivery, Record | None]] = []
        counts = dict.fromkeys(DeliveryState, 0)
        recovered = 0
        last_call = until - self._lease / 10
        for delivery in claimed:
            if self._pipeline.now() >= last_call:
                # A slow channel used up the lease: leave the rest to lapse (another relay, or
                # this one's next batch, takes them) rather than send what another may send.
                log.info("lease nearly over: %d deliveries left for later", len(claimed))
                break
            if delivery.claims > 1:
                # Claimed before by a relay that may have stopped after sending: what did it
                # record? An outcome is settled as recorded; failures are carried on from.
                delivery, settled = self._recorded(delivery)
                if settled:
                    results.append((delivery, None))
                    recovered += 1
                    continue
            result, record = self._attempt(delivery, now)
            results.append((result, record))
            counts[result.state] += 1
        report = RelayReport(
            sent=counts[DeliveryState.SENT],
            retried=counts[DeliveryState.PENDING],
            dead=counts[DeliveryState.DEAD],
            recovered=recovered,
        )
        by_commit: dict[str, int] = {}
        unrecorded = self._record_while_held(results, until=until, settled=by_commit)
        # A delivery whose outcome could not be recorded stays claimed: when the lease lapses
        # it is claimed again, found unrecorded, and sent again (at least once).
        done = [r for r, _ in results if r.ticket_id not in unrecorded]
        # Those the records' commits did not settle (a store without
        # Capability.SETTLED_COMMIT, a ticket with nothing to record): the claimed deliveries
        # as the store read them, with the attempt's values (checked by ``replace``).
        rest = [r for r in done if r.ticket_id not in by_commit]
        stored = sum(by_commit.values())
        if rest:
            stored += self._outbox.settle(rest, owner=self.owner, checked=True)
        return report + RelayReport(lost_claims=len(done) - stored)

    def run_once(self) -> RelayReport:
        """Derive everything committed so far (up to the last position as the run starts:
        later commits are the next run's), then deliver everything due now. On a store with
        :attr:`Capability.CLAIMED_ENQUEUE`, what each batch derives is added claimed by this
        relay and sent at once."""
        with self._lock:
            report = RelayReport()
            people = Lookups(self._store)
            target = self._feed.last_position()
            while True:
                if self._claimed is None:
                    added = self.derive(people=people)
                    report = report + RelayReport(derived=added)
                else:
                    # What was just derived is held by this relay: sent at once, without a
                    # claim of its own, under the lease taken as it was derived.
                    until = self._pipeline.now() + self._lease
                    added, held = self._derive(limit=self._batch, people=people, hold=until)
                    report = report + RelayReport(derived=added)
                    for start in range(0, len(held), self._batch):
                        report = report + self._deliver_held(
                            held[start : start + self._batch], now=self._pipeline.now(), until=until
                        )
                if self._feed.cursor(CURSOR) >= target:
                    break
            while True:
                batch = self.deliver()
                report = report + batch
                if batch.handled + batch.lost_claims == 0:
                    return report

    def follow(
        self,
        stop: threading.Event,
        *,
        poll: float = 0.05,
        recheck: float = 1.0,
        on_report: Callable[[RelayReport], None] | None = None,
    ) -> RelayReport:
        """Run until ``stop`` is set: deliver what is due, then wait for new commits (checking
        the feed every ``poll`` seconds) or for retries falling due (looked for every
        ``recheck`` seconds)."""
        for name, value in (("poll", poll), ("recheck", recheck)):
            if not isinstance(value, int | float) or not 0.001 <= value <= 3600:
                raise ValidationError(f"{name} is a number of seconds in [0.001, 3600]")
        total = RelayReport()
        seen = -1
        while not stop.is_set():
            try:
                # Read before the run: a commit that lands while the run ends (after its last
                # look at the feed) moves the position past ``seen`` and wakes the wait below.
                # Read after, it would be taken as seen and wait for the next commit.
                seen = self._feed.last_position()
                report = self.run_once()
            except HelpkitError:
                log.exception("relay run failed; trying again")
                report = RelayReport()
            total = total + report
            if report.handled or report.derived:
                if on_report is not None:
                    on_report(report)
                continue
            if Capability.FEED_WAKEUP in getattr(self._feed, "capabilities", ()):
                from helpkit.ports import FeedWakeup

                # Woken by the next commit; ``recheck`` bounds what a lost wake-up costs. Waits
                # of at most a second, so ``stop`` is seen.
                waited = 0.0
                while not stop.is_set() and waited < recheck:
                    step = min(1.0, recheck - waited)
                    waited += step
                    try:
                        if cast(FeedWakeup, self._feed).wait_for_changes(seen, step):
                            break
                    except HelpkitError:
                        stop.wait(poll)  # the next run logs it
                continue
            waited = 0.0
            while not stop.wait(poll) and waited < recheck:
                waited += poll
                try:
                    if self._feed.last_position() != seen:
                        break
                except HelpkitError:
                    continue  # the next run logs it
        return total

    def revive(self, delivery_id: str, actor: Actor) -> Delivery:
        """Put a dead delivery back in the outbox, due now, its attempts starting again; the
        ticket's audit trail records who did (``delivery_revived``)."""
        found = self._outbox.delivery(delivery_id)
        if found.state is not DeliveryState.DEAD:
            raise InvalidTransitionError(
                f"delivery {found.id} is {found.state.value}; only a dead one is sent again"
            )

        def decide(tickets: Sequence[Ticket], now: datetime) -> list[Outcome]:
            return [
                lifecycle.record_revived(
                    tickets[0],
                    at=now,
                    actor=actor,
                    delivery_id=found.id,
                    kind=found.kind,
                    comment_id=_comment_of(found),
                )
            ]

        # Recorded first: a relay recovering the delivery later reads the trail from there.
        self._pipeline.run([found.ticket_id], decide)
        return self._outbox.revive(found.id, now=self._pipeline.now())

    # ------------------------------------------------------------ details

    def _attempt(self, delivery: Delivery, now: datetime) -> tuple[Delivery, Record]:
        """Send ``delivery`` once: its new state, and how to record the attempt."""
        attempt = delivery.attempts + 1
        if delivery.channel is None:
            reason = "no channel: no configured channel answers to this ticket"
            dead = replace(
                delivery,
                state=DeliveryState.DEAD,
                attempts=attempt,
                last_error=reason,
                updated_at=now,
            )
            return dead, _failure(delivery, reason, attempt, final=True, retry_at=None)
        try:
            external_id = self._outbound.send(delivery)
        except Exception as exc:  # a channel may raise anything: it is recorded, not raised
            reason = f"{type(exc).__name__}: {exc}"[:500]
            # A receiver that refused the message for good (410 Gone) is not asked again.
            final = attempt >= self.policy.attempts or isinstance(exc, DeliveryRefusedError)
            retry_at = None if final else now + self.policy.delay(attempt, self._draw)
            log.warning(
                "delivery %s through %s failed (attempt %d%s): %s",
                delivery.id,
                delivery.channel,
                attempt,
                ", giving up" if final else "",
                reason,
            )
            failed = replace(
                delivery,
                state=DeliveryState.DEAD if final else DeliveryState.PENDING,
                attempts=attempt,
                last_error=reason,
                next_attempt_at=retry_at or delivery.next_attempt_at,
                updated_at=now,
            )
            return failed, _failure(delivery, reason, attempt, final=final, retry_at=retry_at)
        sent = replace(
            delivery,
            state=DeliveryState.SENT,
            attempts=attempt,
            external_id=external_id,
            last_error=None,
            updated_at=now,
        )
        return sent, _success(delivery, attempt, external_id)

    def _recorded(self, delivery: Delivery) -> tuple[Delivery, bool]:
        """What an earlier relay recorded of ``delivery`` before it stopped (since the delivery
        was last revived): the delivery as settled and True when it recorded an outcome (sent,
        or given up); else the delivery with the failed attempts it recorded, and False."""
        now = self._pipeline.now()
        attempts = delivery.attempts
        # Up to date: what the other relay recorded came after what this one read last.
        trail = self._trails.take(delivery.ticket_id).read(self._store)
        self._trails.keep([trail])
        for event in trail.outcomes.get(delivery.id, ()):
            if isinstance(event, MessageSent):
                sent = replace(
                    delivery,
                    state=DeliveryState.SENT,
                    attempts=event.attempt,
                    external_id=event.external_id,
                    updated_at=now,
                )
                return sent, True
            if isinstance(event, DeliveryFailed):
                if event.final:
                    dead = replace(
                        delivery,
                        state=DeliveryState.DEAD,
                        attempts=event.attempt,
                        last_error=event.reason,
                        updated_at=now,
                    )
                    return dead, True
                attempts = max(attempts, event.attempt)
        return replace(delivery, attempts=attempts), False

    def _record_while_held(
        self,
        results: Sequence[tuple[Delivery, Record | None]],
        *,
        until: datetime,
        settled: dict[str, int],
    ) -> set[str]:
        """Record the outcomes; the ids of the tickets whose outcomes could not be recorded.

        Tickets whose records keep losing to concurrent writers are tried again while the
        claims hold (``until``): the messages left, and outcomes left unrecorded are sent again
        by the relay that claims them once the claims lapse. ``settled`` receives, by ticket,
        how many of its deliveries the records' commit settled (see :meth:`_run`)."""
        pending = list(results)
        unrecorded: set[str] = set()
        for _ in range(_RECORD_ROUNDS):
            unrecorded = self._record(pending, until=until, settled=settled)
            if not unrecorded or self._pipeline.now() >= until:
                break
            log.info("recording outcomes of %d tickets lost to writers; again", len(unrecorded))
            pending = [(d, r) for d, r in pending if d.ticket_id in unrecorded]
        return unrecorded

    def _record(
        self,
        results: Sequence[tuple[Delivery, Record | None]],
        *,
        until: datetime,
        settled: dict[str, int],
    ) -> set[str]:
        """Record the outcomes in the tickets' audit trails, in one commit for the batch; the
        ids of the tickets whose outcomes could not be recorded.

        A batch that keeps losing to concurrent writers is recorded ticket by ticket (each
        decided again on its fresh state), so one busy ticket does not hold back the others.
        An outcome the trail already holds is not recorded again: this relay's lease may have
        lapsed while it sent, and the relay that took the delivery over recorded it first (if
        that one commits later, its commit loses to this one and it decides again). The trails
        are read before the decision (only what was added since this relay last read them, see
        :class:`_Trails`), which only reads what was added since, up to the seq of the ticket
        it decides on: the less it reads, the less often it loses to a writer."""
        by_ticket: dict[str, list[tuple[Delivery, Record]]] = {}
        held: dict[str, list[Delivery]] = {}
        for delivery, record in results:
            held.setdefault(delivery.ticket_id, []).append(delivery)
            if record is not None:
                by_ticket.setdefault(delivery.ticket_id, []).append((delivery, record))
        if not by_ticket:
            return set()
        trails = {ticket_id: self._trails.take(ticket_id) for ticket_id in by_ticket}
        try:
            try:
                self._run(by_ticket, trails, until, held, settled)
                return set()
            except ConflictError:
                if len(by_ticket) == 1:
                    return set(by_ticket)
            unrecorded: set[str] = set()
            for ticket_id, records in by_ticket.items():
                try:
                    self._run({ticket_id: records}, trails, until, held, settled)
                except ConflictError as exc:
                    log.info("could not record deliveries of %s yet: %s", ticket_id, exc)
                    unrecorded.add(ticket_id)
            return unrecorded
        finally:
            self._trails.keep(trails.values())

    def _run(
        self,
        by_ticket: dict[str, list[tuple[Delivery, Record]]],
        trails: dict[str, _Trail],
        until: datetime,
        held: dict[str, list[Delivery]],
        settled: dict[str, int],
    ) -> None:
        """Record the outcomes of ``by_ticket`` through the pipeline; the trails then hold
        them (the outcomes of the decision committed: the last one the pipeline made).

        The deliveries of these tickets (``held``, by ticket: their results) are settled in
        the records' commit on a store with :attr:`Capability.SETTLED_COMMIT`: stored in the
        outbox exactly when their outcomes are in the trails, in one transaction. ``settled``
        then receives each ticket's share of what was stored (its deliveries; of a lost
        claim, none, as :meth:`Outbox.settle` counts; the total is what counts)."""
        decided: list[Outcome] = []
        results = [delivery for ticket_id in by_ticket for delivery in held[ticket_id]]
        settlement = Settlement(results, self.owner)
        self._pipeline.run(
            list(by_ticket), self._decide(by_ticket, trails, decided, until), settle=settlement
        )
        for outcome in decided:
            trails[outcome.ticket.id].committed(outcome)
        if settlement.settled is not None:
            # How many were stored, put on the first ticket: only the total is read.
            settled.update(dict.fromkeys(by_ticket, 0))
            settled[next(iter(by_ticket))] += settlement.settled

    def _decide(
        self,
        by_ticket: dict[str, list[tuple[Delivery, Record]]],
        trails: dict[str, _Trail],
        decided: list[Outcome],
        until: datetime,
    ) -> Callable[[Sequence[Ticket], datetime], list[Outcome]]:
        """The decision recording each ticket's outcomes, in order, on its state as loaded,
        leaving out those its trail (read up to that state) already holds; ``decided`` holds
        the outcomes of its last call.

        The trail is not read for a ticket whose deliveries were all claimed for the first time
        (``claims`` 1) while the claims still hold (``until``, less the margin the sending
        keeps): no other relay ever held them, so none can have recorded their outcomes."""
        held = until - self._lease / 10

        def decide(tickets: Sequence[Ticket], now: datetime) -> list[Outcome]:
            outcomes = []
            first = now < held
            for ticket in tickets:
                trail = trails[ticket.id]
                records = by_ticket[ticket.id]
                unheard = first and all(result.claims == 1 for result, _ in records)
                if not unheard and ticket.seq > trail.seq:
                    trail.read(self._store)
                steps: list[Outcome] = []
                state = ticket
                for result, record in records:
                    if not unheard and _told(result, trail.outcomes.get(result.id, ())):
                        continue
                    steps.append(record(state, now))
                    state = steps[-1].ticket
                unchanged = Outcome(ticket, (), ticket.seq)
                outcomes.append(lifecycle.chain(steps) if steps else unchanged)
            decided[:] = outcomes
            return outcomes

        return decide


class _Trail:
    """What one ticket's audit trail says of its deliveries, up to ``seq``: the outcomes of
    each delivery's attempts since it was last revived (``delivery_revived``; those before
    belong to a round given up), by delivery id."""

    __slots__ = ("outcomes", "seq", "ticket_id")

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        self.seq = 0
        self.outcomes: dict[str, list[MessageSent | DeliveryFailed]] = {}

    def read(self, store: Store) -> _Trail:
        """Bring it up to date: read the events the store holds after ``seq``."""
        self.add(store.events(self.ticket_id, after_seq=self.seq))
        return self

    def committed(self, outcome: Outcome) -> None:
        """``outcome`` was committed: its events follow ``outcome.previous_seq`` in the trail
        (when the trail was read up to there; else the next read finds them)."""
        if outcome.events and outcome.previous_seq == self.seq:
            self.add(outcome.events)

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, DeliveryRevived):
                self.outcomes.pop(event.delivery_id, None)
            elif isinstance(event, MessageSent | DeliveryFailed):
                self.outcomes.setdefault(event.delivery_id, []).append(event)
            self.seq = event.seq


class _Trails:
    """The audit trails the relay has read, kept between batches: a ticket's events never
    change once committed, so the relay reads each trail once, then only what was added since.
    The trails of the ``size`` tickets recorded on most recently are kept (least recently used
    first out). A trail in use is taken out (by one thread at a time) and kept again after."""

    def __init__(self, store: Store, size: int = _TRAILS_KEPT) -> None:
        self._store = store
        self._size = size
        self._kept: OrderedDict[str, _Trail] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, ticket_id: str) -> _Trail:
        """The trail of ``ticket_id``, as kept (the caller reads what was added since, if the
        ticket moved on), or read from the store when it was not kept."""
        with self._lock:
            trail = self._kept.pop(ticket_id, None)
        return trail or _Trail(ticket_id).read(self._store)

    def follow(self, changes: Sequence[Change]) -> None:
        """Take in committed events (in feed order): a ticket they open starts an empty trail,
        and a kept trail takes the events that follow it on (the others are read when used)."""
        with self._lock:
            kept = self._kept
            for change in changes:
                event = change.event
                trail = kept.get(event.ticket_id)
                if trail is not None:
                    if event.seq == trail.seq + 1:
                        trail.add((event,))
                elif isinstance(event, TicketOpened):
                    trail = kept[event.ticket_id] = _Trail(event.ticket_id)
                    trail.add((event,))
            while len(kept) > self._size:
                kept.popitem(last=False)

    def keep(self, trails: Iterable[_Trail]) -> None:
        with self._lock:
            for trail in trails:
                self._kept[trail.ticket_id] = trail
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)


Record = Callable[[Ticket, datetime], Outcome]
"""How an attempt goes into its ticket's audit trail: a decision on the ticket and now."""


def _told(result: Delivery, outcomes: Sequence[MessageSent | DeliveryFailed]) -> bool:
    """Whether ``outcomes`` already tell what recording ``result`` would: that the delivery was
    sent; or, for a failed attempt, that it was given up or that this attempt failed."""
    for event in outcomes:
        if isinstance(event, MessageSent):
            return True
        if result.state is not DeliveryState.SENT and (
            event.final or event.attempt == result.attempts
        ):
            return True
    return False


def _comment_of(delivery: Delivery) -> str | None:
    return delivery.message.comment_id if delivery.kind == "reply" else None


def _failure(
    delivery: Delivery, reason: str, attempt: int, *, final: bool, retry_at: datetime | None
) -> Record:
    def record(ticket: Ticket, at: datetime) -> Outcome:
        return lifecycle.record_failed(
            ticket,
            at=at,
            actor=RELAY_ACTOR,
            delivery_id=delivery.id,
            kind=delivery.kind,
            channel=delivery.channel,
            reason=reason,
            attempt=attempt,
            final=final,
            next_attempt_at=retry_at,
            comment_id=_comment_of(delivery),
        )

    return record


def _success(delivery: Delivery, attempt: int, external_id: str | None) -> Record:
    channel = delivery.channel
    assert channel is not None
    recipients = tuple(f"{r.actor_kind}:{r.actor_id}" for r in delivery.message.to)

    def record(ticket: Ticket, at: datetime) -> Outcome:
        return lifecycle.record_sent(
            ticket,
            at=at,
            actor=RELAY_ACTOR,
            delivery_id=delivery.id,
            kind=delivery.kind,
            channel=channel,
            recipients=recipients,
            attempt=attempt,
            external_id=external_id,
            comment_id=_comment_of(delivery),
        )

    return record
