# Over 600 lines: Pipeline is one class; its load, decide, timers, commit and publish steps
# share its store, its fold cache and its retry of conflicts.
"""The command pipeline: load -> decide -> timers -> commit -> publish.

Every writer of tickets runs through it: the :class:`~helpkit.Helpdesk` facade, the sweep, and
later inbound channels, triggers, automations and bulk operations. A command is a list of
tickets to load and a *decision*: a function of those tickets and "now" that returns what
:mod:`helpkit.lifecycle` decided (:class:`~helpkit.lifecycle.Outcome` values; no I/O beyond
reading). The pipeline then

0. **scrub** (a desk with ``[privacy] scrubbers``, :mod:`helpkit.scrubbers`): right before
   the timers and the commit (after the rules and routing), masks what must not be stored in
   each changed outcome's texts;
1. **timers**: sets each changed ticket's timer fields and its ``next_check`` index
   (:mod:`helpkit.timers`);
2. **route** (a desk with routed groups, :mod:`helpkit.router`): a ticket opened in (or
   moved into) a routed group without an assignee is handed to an agent, with the routing
   states it read committed with it;
3. **commit**: writes every change in one store commit, guarded by each ticket's seq (on a
   store with :attr:`~helpkit.ports.Capability.TIMER_STATE`, with each ticket's timer state,
   and without the store checking again the values the domain built and checked; on a store
   with :attr:`~helpkit.ports.Capability.SETTLED_COMMIT`, with the relay's outbox settlement
   the command hands it);
4. **publish**: hands the committed changes to the publisher (the ``helpkit_event``
   observers; messages leave later, through :mod:`helpkit.relay`), whose failures never undo
   the commit.

Inside :meth:`Pipeline.group_commit` (a store with
:attr:`~helpkit.ports.Capability.GROUP_COMMIT`), step 3 of each command is a nested unit of
the block's one transaction and step 4 waits until that transaction is committed.

Conflicts: a command given the version its caller saw (``expected``) raises
:class:`~helpkit.errors.ConflictError` carrying the events since when the ticket moved on
(bookkeeping events, such as the relay's record that a reply was sent, do not count: see
:attr:`helpkit.events.Event.BOOKKEEPING`).
Without it, a command lost to a concurrent writer is decided again on the fresh state (a few
times), as the caller asked for "this change to the ticket as it is now".

On a store with :attr:`~helpkit.ports.Capability.RECENT_TICKETS` a command first runs on the
states the store object last committed or read, without reading them (a round trip to a
database server saved); the commit is guarded by their seqs. If one was stale (the commit
raises ConflictError), or the decision refuses or changes nothing, the command runs as above
on the tickets read anew, so a stale state never writes, raises or answers "nothing to do".

Nothing here knows the facade: the store, the clock, the timers and the publisher are handed
in.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Final, cast

import attrs

from helpkit._time import to_utc
from helpkit.directory import Directory
from helpkit.errors import (
    ConflictError,
    DuplicateError,
    HelpkitError,
    StoreError,
    ValidationError,
)
from helpkit.events import Event
from helpkit.ids import new_id
from helpkit.lifecycle import Outcome
from helpkit.people import Contact
from helpkit.ports import (
    Capability,
    Clock,
    Delivery,
    DueTimer,
    GroupCommits,
    Receipt,
    RecentTickets,
    RoutingState,
    SettledCommits,
    Store,
    TicketChange,
    TicketReads,
    TimerRows,
    TimerStates,
    TimerUpdate,
    capable,
)
from helpkit.router import Router
from helpkit.scrubbers import Scrub, scrub_outcome
from helpkit.sla import SlaFold
from helpkit.tickets import Ticket
from helpkit.timers import Planned, SlaTimer, Timers

__all__ = ["Decide", "MakeReceipt", "Pipeline", "Prepare", "Publish", "PublishEvents", "React"]

log = logging.getLogger("helpkit.pipeline")

Decide = Callable[[Sequence[Ticket], datetime], Sequence[Outcome]]
"""A decision: the loaded tickets (in the order asked) and now -> the outcomes to write."""
Prepare = Callable[[], tuple[Decide, Sequence[Contact]]]
"""Makes a command anew: its decision and the new contacts it names (see :meth:`Pipeline.run`,
``again``)."""
Publish = Callable[[Sequence[TicketChange]], None]
"""Receives the changes of every commit, as written (numbered), after the commit."""
React = Callable[[Sequence[Outcome], datetime], Sequence[Outcome]]
"""Rules run on a command's outcomes before the commit (the desk's triggers): the outcomes,
now -> the outcomes with the rules' changes chained on."""
PublishEvents = Callable[[Sequence[Event]], None]
"""Receives the events of a commit of the fast path of timer events (:meth:`Pipeline.commit_timed`),
which builds no ticket: what :data:`Publish` does with a commit's events."""
MakeReceipt = Callable[[Sequence[Outcome], datetime], Receipt]
"""Makes the receipt of the inbound message a command comes from: the outcomes, now ->
the receipt to commit with them."""

_ATTEMPTS: Final = 8
# After the n-th lost attempt a command waits a random time up to min(_BACKOFF * 2**(n-1),
# _BACKOFF_CAP) seconds before deciding again, so writers racing for one ticket spread out
# instead of colliding again at once (8 threads on one ticket exhausted 5 immediate attempts
# now and then on a loaded machine).
_BACKOFF: Final = 0.001
_BACKOFF_CAP: Final = 0.05


def _backoff(attempt: int, *, uniform: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait after the ``attempt``-th lost attempt (full jitter, capped)."""
    return uniform(0.0, min(_BACKOFF * 2 ** (attempt - 1), _BACKOFF_CAP))


class Settlement:
    """Outbox results a command's commit settles in its transaction (a store with
    :attr:`~helpkit.ports.Capability.SETTLED_COMMIT`): ``settled`` is how many the commit
    stored, or None while no commit carried them."""

    __slots__ = ("owner", "results", "settled")

    def __init__(self, results: Sequence[Delivery], owner: str) -> None:
        self.results = results
        self.owner = owner
        self.settled: int | None = None


class _Grouped(threading.local):
    """Per thread: the publishing held back by its group commit (``held``, in order), or
    None outside one. None until set, as a class default: reading it in a thread that never
    set it finds that without raising AttributeError (which ``getattr(local, name, None)``
    paid on every command)."""

    held: list[Callable[[], None]] | None = None


class Pipeline:
    """Runs ticket commands for one store: load, decide, timers, commit, publish."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        timers: Timers,
        publish: Publish,
        *,
        attempts: int = _ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        react: React | None = None,
        router: Router | None = None,
        scrub: Scrub | None = None,
        directory: Directory | None = None,
        publish_events: PublishEvents | None = None,
    ) -> None:
        self._store = store
        # People: whether new contacts go with a commit, and whether one was saved meanwhile.
        self._directory = directory or Directory(store, self.now, new_id)
        self._publish_events = publish_events
        # privacy (issue #16): the desk's scrubbers, run on every outcome before the commit.
        self._scrub = scrub
        self._react = react
        self._router = router if router is not None and router.enabled else None
        # Routing decisions of one group in this process take turns too (after the tickets'
        # turns, so two commands never wait on each other): they never lose to each other.
        self._group_turns = Turns()
        self._clock = clock
        self._timers = timers
        self._publish = publish
        self._attempts = attempts
        self._sleep = sleep
        self._turns = Turns()
        self._states = capable(store, Capability.TIMER_STATE, TimerStates)
        self._rows = capable(store, Capability.TIMER_ROWS, TimerRows)
        self._recent = capable(store, Capability.RECENT_TICKETS, RecentTickets)
        self._settling = capable(
            store, Capability.SETTLED_COMMIT, SettledCommits, Capability.OUTBOX
        )
        self._groups = capable(store, Capability.GROUP_COMMIT, GroupCommits)
        # The publishing held back by this thread's group commit (group_commit), in order.
        self._grouped = _Grouped()
        self._reads = capable(store, Capability.TICKET_READS, TicketReads)

    def timed_path(self) -> tuple[TimerRows, SlaTimer] | None:
        """The store's narrow timer rows and the SLA timer, when changes that only record
        timer events may take the fast path (:meth:`commit_timed`): the store has
        :attr:`Capability.TIMER_ROWS` and :attr:`Capability.TIMER_STATE`, the SLA clock is
        the only timer source, no rules react to commands, nothing is routed or scrubbed,
        and the publisher takes bare events. ``None`` otherwise (the general path)."""
        sources = self._timers.sources
        if (
            self._rows is None
            or self._states is None
            or self._react is not None
            or self._router is not None
            or self._scrub is not None
            or self._publish_events is None
            or len(sources) != 1
            or not isinstance(sources[0], SlaTimer)
        ):
            return None
        return self._rows, sources[0]

    def commit_timed(self, decided: Sequence[tuple[DueTimer, SlaFold, tuple[Event, ...]]]) -> None:
        """The fast path of timer events (see :meth:`timed_path`, which must not be
        ``None``): timers, one commit, publish, for tickets whose decision took only their
        kept SLA fold. Each item is a ticket's due row, its fold (at the row's seq, under the
        policy that applies) and the SLA warnings and breaches decided on it: the SLA timer
        plans the ticket's timer fields from the fold (as :meth:`SlaTimer.plan` does from the
        ticket), the store writes each ticket's events and narrow update in one transaction
        (ConflictError, nothing written, when one moved on), and the publisher gets the
        events."""
        path = self.timed_path()
        if path is None:
            raise ValidationError("this pipeline has no fast path for timer events")
        rows, sla = path
        updates: list[TimerUpdate] = []
        memos: list[object | None] = []
        for due, fold, events in decided:
            # Timer events only, which move nothing but seq and updated_at: the TimerUpdate
            # made below checks them (ValidationError before anything is written).
            plan = sla.plan_kept(fold, events)
            updated = due.updated_at
            for event in events:
                if event.at > updated:  # as helpkit.fold applies each event
                    updated = event.at
            updates.append(
                TimerUpdate(
                    ticket_id=due.ticket_id,
                    expected_seq=due.seq,
                    events=events,
                    updated_at=updated,
                    sla_policy=plan.fields["sla_policy"],
                    next_deadline=plan.fields["next_deadline"],
                    next_check=plan.next_check,
                    timer_state=cast(str, self._timers.state_of((plan.memo,))),
                    row=due,
                )
            )
            if sla.holds(due.ticket_id):
                # Only a fold the cache holds is refreshed after the commit: the others are
                # not kept alive until then (less for the garbage collector to walk).
                memos.append(plan.memo)
        if not updates:
            return
        rows.commit_timers(updates)
        for memo in memos:
            sla.committed_fold(memo)
        assert self._publish_events is not None
        self._after_commit(
            functools.partial(
                self._publish_events, [event for update in updates for event in update.events]
            )
        )

    @property
    def timer_states(self) -> TimerStates | None:
        """The store, when it keeps timer states (:attr:`Capability.TIMER_STATE`)."""
        return self._states

    def restore_timers(self, ticket: Ticket, state: str) -> None:
        """Hand the timers a state the store kept beside ``ticket``."""
        self._timers.restore(ticket, state)

    def now(self) -> datetime:
        """The clock's current instant, checked aware and in UTC."""
        return to_utc(self._clock.now(), "clock.now()")

    def run(
        self,
        ticket_ids: Sequence[str],
        decide: Decide,
        *,
        expected: Mapping[str, int] | None = None,
        receipt: MakeReceipt | None = None,
        route: bool = False,
        contacts: Sequence[Contact] = (),
        settle: Settlement | None = None,
        again: Prepare | None = None,
    ) -> list[Ticket]:
        """Load ``ticket_ids``, decide, and commit; the tickets of the outcomes as stored.

        ``expected`` maps ticket ids to the seq the caller saw: a ticket that moved on raises
        ConflictError (with the events since) before anything is decided or written.
        ``receipt`` makes the receipt of the inbound message the command comes from, from
        the outcomes decided and "now"; it is committed with the change of its ticket (a
        store with :attr:`~helpkit.ports.Capability.INBOX`), so a message another writer
        ingested first makes the commit raise DuplicateError, writing nothing.

        On a desk with routed groups, the outcomes' tickets that want it are routed
        (``route=True``: every routable one, changed or not); a command whose routing lost to
        another routing decision is decided again, and its last attempt routes nothing (the
        ticket then waits in its group: a command never fails for routing's sake).

        ``contacts`` are new contacts the command names (an inbound message's new sender),
        saved in the commit's transaction with the first change (a store with
        :attr:`~helpkit.ports.Capability.NEW_CONTACTS`; the caller saves them first on any
        other): DuplicateError, nothing written, when another contact owns an address.
        When that owner was saved by another writer meanwhile (a get-or-create lost a race)
        and ``again`` is given, the command is made again by ``again`` (whose reads now find
        that contact) and run once more; a second DuplicateError is the caller's.

        ``settle``: outbox results (the relay's) stored in the commit's transaction, on a
        store with :attr:`~helpkit.ports.Capability.SETTLED_COMMIT`; its ``settled`` then
        says how many were stored. It stays None when no commit carried them (another
        store, or nothing to write): the caller settles them.
        """
        try:
            return self._run(ticket_ids, decide, expected, receipt, route, contacts, settle)
        except DuplicateError:
            if again is None or not contacts or not self._directory.saved_meanwhile(contacts):
                raise
        log.debug("a new contact's address was saved meanwhile; making the command again")
        decide, contacts = again()
        return self._run(ticket_ids, decide, expected, receipt, route, contacts, settle)

    def _run(
        self,
        ticket_ids: Sequence[str],
        decide: Decide,
        expected: Mapping[str, int] | None,
        receipt: MakeReceipt | None,
        route: bool,
        contacts: Sequence[Contact],
        settle: Settlement | None = None,
    ) -> list[Ticket]:
        """:meth:`run`, once for its contacts: the conflict retries."""
        if ticket_ids and self._recent is not None and not route:
            done = self._on_recent(
                self._recent, ticket_ids, decide, expected, receipt, tuple(contacts), settle
            )
            if done is not None:
                return done
        for attempt in range(1, self._attempts + 1):
            router = self._router if attempt < self._attempts else None
            groups: list[str] = []
            try:
                # Writers of one ticket in this process take turns from load to commit: they
                # never lose to each other, only to other processes (retried below).
                with self._turns.hold(ticket_ids):
                    tickets = self._load(ticket_ids)
                    if expected:
                        self._check_versions(tickets, expected)
                    now = self.now()
                    outcomes = decide(tickets, now)
                    if self._react is not None:
                        outcomes = self._react(outcomes, now)
                    if router is not None:
                        groups = router.groups(outcomes, force=route)
                    turns = (
                        self._group_turns.hold([f"routing:{g}" for g in groups])
                        if groups
                        else _NO_TURNS
                    )
                    with turns:
                        states: Mapping[str, tuple[RoutingState, ...]] = {}
                        if router is not None and groups:
                            routed = router.route(outcomes, now, force=route)
                            outcomes, states = routed.outcomes, routed.states
                        made = None if receipt is None else receipt(outcomes, now)
                        tickets, written = self._write(
                            outcomes,
                            receipt=made,
                            routing=states,
                            contacts=tuple(contacts),
                            settle=settle,
                        )
            except ConflictError as exc:
                # With versions, deciding again first checks them anew: a ticket that moved on
                # raises there, one that only got bookkeeping events goes ahead. A new ticket
                # is decided again only when its routing lost (its id cannot be taken).
                if attempt == self._attempts or not (ticket_ids or groups):
                    raise self._explained(exc, ticket_ids, expected) from None
                log.debug("command on %s lost to a concurrent write; deciding again", ticket_ids)
                self._sleep(_backoff(attempt))
                continue
            if written:
                # After the turn: observers and the relay may write.
                self._after_commit(functools.partial(self._publish, written))
            return tickets
        raise AssertionError("unreachable")  # pragma: no cover

    def run_on_recent(
        self,
        ticket_ids: Sequence[str],
        decide: Decide,
        *,
        expected: Mapping[str, int] | None = None,
    ) -> list[Ticket] | None:
        """:meth:`run` on the states the store keeps, once, and nothing else: the tickets as
        stored, or None (nothing written) where :meth:`run` would go on to read them (the
        store keeps none of them, or one was stale, or the decision refused or changed
        nothing). For a decision taken on other kept states too (the acting agent, see
        :meth:`helpkit.directory.Directory.kept_acting`), which the caller makes again on
        reads when this gives None."""
        if not ticket_ids or self._recent is None:
            return None
        return self._on_recent(self._recent, ticket_ids, decide, expected, None)

    def _load(self, ticket_ids: Sequence[str]) -> list[Ticket]:
        """The tickets ``ticket_ids``, in order: read at once on a store with
        :attr:`~helpkit.ports.Capability.TICKET_READS`, else one by one."""
        if self._reads is not None and len(ticket_ids) > 1:
            return self._reads.get_tickets(ticket_ids)
        return [self._store.get_ticket(ticket_id) for ticket_id in ticket_ids]

    def _on_recent(
        self,
        recent: RecentTickets,
        ticket_ids: Sequence[str],
        decide: Decide,
        expected: Mapping[str, int] | None,
        receipt: MakeReceipt | None,
        contacts: tuple[Contact, ...] = (),
        settle: Settlement | None = None,
    ) -> list[Ticket] | None:
        """:meth:`run` on the states the store keeps from memory, once; None (nothing
        written) when one is missing, is not the version the caller saw, was stale (the
        commit lost), or the decision refused or left a ticket unchanged: :meth:`run` then
        reads the tickets."""
        with self._turns.hold(ticket_ids):
            tickets = []
            for ticket_id in ticket_ids:
                kept = recent.recent_ticket(ticket_id)
                if kept is None or (expected and expected.get(ticket_id, kept.seq) != kept.seq):
                    return None
                tickets.append(kept)
            now = self.now()
            try:
                outcomes = decide(tickets, now)
                if self._react is not None:
                    outcomes = self._react(outcomes, now)
                made = None if receipt is None else receipt(outcomes, now)
            except HelpkitError:
                return None  # refused on states that may be stale: decided again on reads
            if self._router is not None and self._router.groups(outcomes, force=False):
                return None  # routing reads and writes its states: the full path does it
            if not all(outcome.changed for outcome in outcomes):
                # Nothing to write for a ticket is a finding on its state, which no commit
                # would check: only a state read anew says so.
                return None
            try:
                tickets, written = self._write(
                    outcomes, receipt=made, contacts=contacts, settle=settle
                )
            except ConflictError:
                log.debug("command on %s ran on a stale state; deciding on reads", ticket_ids)
                return None
        if written:
            self._after_commit(functools.partial(self._publish, written))
        return tickets

    def commit(
        self, outcomes: Sequence[Outcome], *, receipt: Receipt | None = None
    ) -> list[Ticket]:
        """Timers, one commit, publish: the tickets of ``outcomes`` as stored, in order.

        Outcomes without events write nothing (their ticket is returned as it is). A
        ``receipt`` goes with the change of its ticket (ValidationError when none changed).
        """
        if self._react is not None:
            outcomes = self._react(outcomes, self.now())
        tickets, written = self._write(outcomes, receipt=receipt)
        if written:
            self._after_commit(functools.partial(self._publish, written))
        return tickets

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """A block whose commands, in this thread, are committed together: on a store with
        :attr:`~helpkit.ports.Capability.GROUP_COMMIT`, in the store's group commit (one
        durable transaction at the block's end, see :class:`helpkit.ports.GroupCommits`),
        with the publishing of each command (observers, the relay) held back until that
        transaction is committed, in the commands' order. A block that raises stores
        nothing of its commands, publishes nothing of them, and the timers forget what
        they kept of them. A block entered again in the same thread joins the outer one.

        On any other store each command commits and publishes on its own, as outside a
        block."""
        if self._groups is None or self._grouped.held is not None:
            yield
            return
        held: list[Callable[[], None]] = []
        self._grouped.held = held
        try:
            with self._groups.group_commit():
                yield
        except BaseException:
            self._timers.forget()
            raise
        finally:
            self._grouped.held = None
        # Each command's publishing runs, as it would have after its own commit, even when one
        # before it failed (the first failure is raised afterwards: the commit stands).
        failure: BaseException | None = None
        for publish in held:
            try:
                publish()
            except Exception as exc:  # raised below, once the others ran
                failure = failure or exc
        if failure is not None:
            raise failure

    def _after_commit(self, publish: Callable[[], None]) -> None:
        """``publish()`` now, or when this thread's group commit is committed."""
        held = self._grouped.held
        if held is None:
            publish()
        else:
            held.append(publish)

    def preview(self, ticket_ids: Sequence[str], decide: Decide) -> list[Outcome]:
        """What ``decide`` would do to ``ticket_ids`` now, with the rules' changes, without
        writing anything (a macro's preview)."""
        tickets = [self._store.get_ticket(ticket_id) for ticket_id in ticket_ids]
        now = self.now()
        outcomes = decide(tickets, now)
        if self._react is not None:
            outcomes = self._react(outcomes, now)
        return list(outcomes)

    def _write(
        self,
        outcomes: Sequence[Outcome],
        *,
        receipt: Receipt | None,
        routing: Mapping[str, tuple[RoutingState, ...]] | None = None,
        contacts: tuple[Contact, ...] = (),
        settle: Settlement | None = None,
    ) -> tuple[list[Ticket], list[TicketChange]]:
        """Scrub, timers and one commit: the tickets of ``outcomes`` as stored, and the
        changes written (none when no outcome changed anything); ``settle`` settled in the
        commit on a store with :attr:`~helpkit.ports.Capability.SETTLED_COMMIT`."""
        if contacts and not self._directory.saves_with_commit:
            raise ValidationError(
                f"{type(self._store).__name__} saves no contacts with a commit "
                "(Capability.NEW_CONTACTS): save them first"
            )
        if self._scrub is not None:
            scrub = self._scrub
            outcomes = [scrub_outcome(o, scrub) if o.changed else o for o in outcomes]
        tickets = [outcome.ticket for outcome in outcomes]
        planned: list[Planned] = []
        positions: list[int] = []
        for position, outcome in enumerate(outcomes):
            if outcome.changed:
                planned.append(self._timers.plan(outcome))
                positions.append(position)
        if not planned:
            if contacts:
                raise ValidationError("a command that changes no ticket saves no new contact")
            return tickets, []
        changes = [
            TicketChange(plan.ticket, outcomes[position].events, outcomes[position].previous_seq)
            for plan, position in zip(planned, positions, strict=True)
        ]
        if receipt is not None:
            changes = _with_receipt(changes, receipt)
        if contacts:
            changes[0] = attrs.evolve(changes[0], contacts=contacts)
        if routing:
            changes = [
                attrs.evolve(c, routing=routing[c.ticket.id]) if c.ticket.id in routing else c
                for c in changes
            ]
        if settle is not None and self._settling is not None:
            kept = None
            if self._states is not None:
                kept = [self._timers.state(plan) for plan in planned]
            written, settled = self._settling.commit_settled(
                changes, kept, settle.results, owner=settle.owner
            )
            settle.settled = settled
        elif self._states is not None:
            states = [self._timers.state(plan) for plan in planned]
            written = self._states.commit_planned(changes, states)
        else:
            written = self._store.commit(changes)
        _check_written(self._store, changes, written)
        for plan, position, change in zip(planned, positions, written, strict=True):
            tickets[position] = change.ticket
            self._timers.committed(plan, change.ticket)
        return tickets, list(written)

    def _check_versions(self, tickets: Sequence[Ticket], expected: Mapping[str, int]) -> None:
        for ticket in tickets:
            seen = expected.get(ticket.id)
            if (
                seen is not None
                and seen != ticket.seq
                and not self._only_bookkeeping(ticket.id, seen, ticket.seq)
            ):
                raise self._conflict(ticket.id, seen, ticket.seq)

    def _only_bookkeeping(self, ticket_id: str, seen: int, current: int) -> bool:
        """Whether every event after ``seen`` is bookkeeping (a delivery's outcome, recorded
        by the relay meanwhile): the caller's version is then not stale."""
        if seen > current:
            return False
        return all(e.BOOKKEEPING for e in self._store.events(ticket_id, after_seq=seen))

    def _conflict(self, ticket_id: str, seen: int, current: int) -> ConflictError:
        events = self._store.events(ticket_id, after_seq=seen) if seen < current else []
        what = ", ".join(f"{e.TYPE} by {e.actor}" for e in events[:5])
        more = f" and {len(events) - 5} more" if len(events) > 5 else ""
        since = f": {what}{more}" if events else ""
        return ConflictError(
            f"ticket {ticket_id} changed since version {seen} (now {current}){since}; "
            "reload it and decide again",
            ticket_id=ticket_id,
            expected_seq=seen,
            current_seq=current,
            events=events,
        )

    def _explained(
        self, exc: ConflictError, ticket_ids: Sequence[str], expected: Mapping[str, int] | None
    ) -> ConflictError:
        """The store's ConflictError, with the events since when the caller gave versions."""
        for ticket_id in ticket_ids:
            seen = (expected or {}).get(ticket_id)
            if seen is None:
                continue
            current = self._store.get_ticket(ticket_id).seq
            if current != seen:
                return self._conflict(ticket_id, seen, current)
        return exc


class Turns:
    """Per-ticket turns for the writers of one process: a fixed set of locks, a ticket's lock
    chosen by its id's hash. A command holds the locks of its tickets (taken in one order, so
    two commands cannot wait on each other) from loading them to committing; two tickets
    sharing a lock only wait for each other a little."""

    STRIPES = 64

    def __init__(self) -> None:
        self._locks = [threading.RLock() for _ in range(self.STRIPES)]

    def hold(self, ticket_ids: Sequence[str]) -> AbstractContextManager[object]:
        """Hold the turns of ``ticket_ids`` (none for a command that opens a new ticket): a
        context manager taking their locks in stripe order, released in reverse (for one
        ticket, its lock itself: the same acquire and release, without a Held around it)."""
        if not ticket_ids:
            return _NO_TURNS
        if len(ticket_ids) == 1:
            return self._locks[hash(ticket_ids[0]) % self.STRIPES]
        stripes = sorted({hash(ticket_id) % self.STRIPES for ticket_id in ticket_ids})
        return Held(tuple(self._locks[stripe] for stripe in stripes))


class Held:
    """Locks held together, as a context manager: taken in order on entry (the ones taken
    released again if taking one fails), released in reverse order on exit. A plain class
    rather than a generator-based ``contextlib.contextmanager`` with an ``ExitStack``, which
    cost a command about as much as its own decision's bookkeeping."""

    __slots__ = ("_locks",)

    def __init__(self, locks: tuple[threading.RLock, ...]) -> None:
        self._locks = locks

    def __enter__(self) -> None:
        taken: list[threading.RLock] = []
        try:
            for lock in self._locks:
                lock.acquire()
                taken.append(lock)
        except BaseException:
            for lock in reversed(taken):
                lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        for lock in reversed(self._locks):
            lock.release()


_NO_TURNS: Final = Held(())


def _with_receipt(changes: list[TicketChange], receipt: Receipt) -> list[TicketChange]:
    """``changes``, the one of the receipt's ticket carrying it."""
    for index, change in enumerate(changes):
        if change.ticket.id == receipt.ticket_id:
            changes[index] = attrs.evolve(change, receipt=receipt)
            return changes
    raise ValidationError(
        f"receipt {receipt.key!r} names ticket {receipt.ticket_id!r}, which the command did "
        "not change"
    )


def _check_written(
    store: Store, changes: Sequence[TicketChange], written: Sequence[TicketChange] | None
) -> None:
    """The store returned one numbered change per change (the Store contract of commit)."""
    name = type(store).__name__
    listed = written.__class__ is list or isinstance(written, Sequence)  # a list: no ABC check
    returned: Sequence[TicketChange] = written  # type: ignore[assignment]
    if not listed or len(returned) != len(changes):
        raise StoreError(
            f"{name}.commit returned {written!r:.80} for {len(changes)} changes: a store's "
            "commit returns the changes as written (see the Store protocol); the commit may "
            "have been stored"
        )
    for change in returned:
        if not isinstance(change, TicketChange) or change.ticket.number < 1:
            raise StoreError(
                f"{name}.commit returned a ticket without a number: a store numbers the "
                "tickets committed with number 0 (see the Store protocol)"
            )
