"""The SLA sweep: record due warnings and breaches, and carry out escalation rules.

Application layer, a writer like any other: it runs through the command pipeline. It reads
only the tickets whose stored ``next_check`` is due, a batch at a time in one query (with
their kept timer states when the store keeps them, see
:attr:`~helpkit.ports.Capability.TIMER_STATE`), takes each one's SLA fold (kept by the
timers, or folded from its history), and records every check crossed up to ``now`` exactly
once per metric cycle, in the order they were crossed, re-deciding after each escalation
action, so the outcome does not depend on how often the sweep ran.

Due tickets are committed a batch at a time, in one transaction per batch at the same
durability as a command. When a batch loses to a concurrent writer (a command, another
sweep), each of its tickets is redone on its own on fresh data, so a second sweep, or a
concurrent one in another process, finds the checks already recorded.

On a store with :attr:`~helpkit.ports.Capability.DUE_CLAIMS`, the sweep claims each batch of
due tickets for a while (a lease) instead of querying them, and releases them once swept:
sweeps running at once in several processes then share the due tickets, each ticket swept by
one of them, instead of all reading the same tickets and losing their commits to each other.
A ticket whose sweep failed stays held until its lease lapses, so the other workers do not
retry it in the same round. Commits stay optimistic: a lease that lapses in the middle of a
long batch costs a conflict, never a step recorded twice. A store that also claims as timer
rows (:attr:`~helpkit.ports.Capability.DUE_TIMER_CLAIMS`) gives each claimed batch to the fast
path (:meth:`Sweeper.decide_kept`, narrow commits), as a store with timer rows and no claims
gives each page of its due tickets.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import attrs

from helpkit import lifecycle
from helpkit.automations import Automations
from helpkit.config import DeskConfig
from helpkit.errors import ConflictError, HelpkitError, InvalidTransitionError, NotFoundError
from helpkit.escalation import Action, EscalationKind, EscalationRules, escalation_target
from helpkit.events import Event, SlaBreached
from helpkit.lifecycle import Outcome
from helpkit.pipeline import Pipeline
from helpkit.ports import (
    Capability,
    DueClaims,
    DueTimer,
    DueTimerClaims,
    Store,
    TimerRows,
    capable,
)
from helpkit.queries import SortOrder, TicketQuery
from helpkit.satisfaction_offers import SatisfactionOffers
from helpkit.service_levels import ServiceLevels
from helpkit.sla import BREACH, DueCheck, SlaFold, SlaPolicy
from helpkit.tickets import Actor, Ticket
from helpkit.timers import SlaTimer, Timers

__all__ = ["SWEEP_ACTOR", "SweepReport", "Sweeper"]

log = logging.getLogger("helpkit.sweep")

SWEEP_ACTOR: Final = Actor.system("sweep")
_MAX_STEPS: Final = 200  # checks + actions per ticket per sweep; far above any real policy
_RETRIES: Final = 5
LEASE: Final = timedelta(minutes=5)
"""How long a sweep holds the due tickets it claims (stores with due claims)."""


@attrs.frozen
class SweepReport:
    """What one sweep did."""

    now: datetime
    examined: int = 0
    """Tickets whose next check was due."""
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    priority_raises: int = 0
    conflicts: int = 0
    """Writes that lost to a concurrent writer and were redone on fresh data."""
    failures: int = 0
    """Tickets that could not be processed (logged on ``helpkit.sweep``)."""
    satisfaction_offers: int = 0
    """Satisfaction surveys offered (``[csat]``)."""

    def __add__(self, other: SweepReport) -> SweepReport:
        return SweepReport(
            now=self.now,
            examined=self.examined + other.examined,
            warnings=self.warnings + other.warnings,
            breaches=self.breaches + other.breaches,
            escalations=self.escalations + other.escalations,
            priority_raises=self.priority_raises + other.priority_raises,
            conflicts=self.conflicts + other.conflicts,
            failures=self.failures + other.failures,
            satisfaction_offers=self.satisfaction_offers + other.satisfaction_offers,
        )


class Sweeper:
    """Runs the sweep of one desk (see the module documentation)."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        levels: ServiceLevels,
        sla: SlaTimer,
        config: DeskConfig,
        automations: Automations | None = None,
        offers: SatisfactionOffers | None = None,
    ) -> None:
        self._automations = automations
        self._offers = offers if offers is not None and offers.enabled else None
        self._store = store
        self._pipeline = pipeline
        self._levels = levels
        self._sla = sla
        self._config = config
        self._claims = capable(store, Capability.DUE_CLAIMS, DueClaims)
        self._timer_claims = capable(store, Capability.DUE_TIMER_CLAIMS, DueTimerClaims)
        self.owner = f"sweep:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        """The name this sweeper claims due tickets under (stores with due claims)."""
        self.lease = LEASE
        self.fast = True
        # Whether an escalate or raise-priority rule acts on a check, by (metric, fraction),
        # for the (immutable) rules it was worked out for: the fast decision asks it of
        # every crossed check.
        self._acting: tuple[EscalationRules, dict[tuple[str, float], bool]] = (
            config.escalation,
            {},
        )
        """Whether the sweep takes its fast path where it can (see :meth:`_run_fast`); off,
        every due ticket goes through the general path (the tests compare the two)."""

    def run(self, now: datetime, *, batch: int = 500) -> SweepReport:
        """Process every ticket whose next check is at or before ``now``."""
        if self._claims is not None:
            fast = self._fast_path() if self._timer_claims is not None else None
            if fast is not None:
                assert self._timer_claims is not None
                return self._run_claimed_fast(self._claims, self._timer_claims, fast[1], now, batch)
            return self._run_claimed(self._claims, now, batch)
        fast = self._fast_path()
        if fast is not None:
            return self._run_fast(fast, now, batch)
        report = SweepReport(now=now)
        after: str | None = None
        states = self._pipeline.timer_states
        while True:
            query = TicketQuery(
                next_check_before=now, sort=SortOrder.NEXT_CHECK, limit=batch, after=after
            )
            kept: Sequence[str | None] = ()
            if states is not None:
                page, kept = states.query_states(query)
            else:
                page = self._store.query(query)
            report = report + self._batch(list(page), now, kept)[0]
            if page.next_cursor is None:
                return report
            after = page.next_cursor

    def _fast_path(self) -> tuple[TimerRows, SlaPolicy] | None:
        """The store's timer rows and the policy of every ticket, when the sweep may decide
        from the kept SLA folds alone (see :meth:`_run_fast`)."""
        if not self.fast:
            return None
        path = self._pipeline.timed_path()
        if path is None:
            return None
        policy = self._levels.uniform_policy()
        return None if policy is None else (path[0], policy)

    def _run_fast(
        self, fast: tuple[TimerRows, SlaPolicy], now: datetime, batch: int
    ) -> SweepReport:
        """:meth:`run` on the fast path: each batch of due tickets is read as timer rows
        (no ticket decoded); a ticket whose kept fold is at its seq, and on which only SLA
        warnings and breaches are due (no escalation action bound to them), is decided from
        its fold and committed as a narrow update (:meth:`Pipeline.commit_timed`); every
        other due ticket (no kept fold, an escalation, a stale schedule, a ticket to pin)
        goes through the general path, read whole, in the same round."""
        rows_of, policy = fast
        report = SweepReport(now=now)
        after: str | None = None
        while True:
            rows, cursor = rows_of.due_timers(now, limit=batch, after=after)
            report = report + self._sweep_rows(rows, policy, now)[0]
            if cursor is None:
                return report
            after = cursor

    def _run_claimed_fast(
        self, claims: DueClaims, timed: DueTimerClaims, policy: SlaPolicy, now: datetime, batch: int
    ) -> SweepReport:
        """:meth:`_run_claimed` on the fast path of :meth:`_run_fast`: each batch is claimed
        as timer rows (:class:`helpkit.ports.DueTimerClaims`), swept as :meth:`_run_fast`
        sweeps a page, and released (but for the tickets that could not be swept)."""
        report = SweepReport(now=now)
        swept: set[str] = set()
        while True:
            rows = timed.claim_due_timers(
                owner=self.owner, now=now, until=now + self.lease, limit=batch
            )
            if not rows:
                return report
            # As in _run_claimed: a ticket swept already in this run and still due stays held.
            fresh = [row for row in rows if row.ticket_id not in swept]
            swept.update(row.ticket_id for row in rows)
            if not fresh:
                continue
            done, failed = self._sweep_rows(fresh, policy, now)
            report = report + done
            claims.release_due(
                [row.ticket_id for row in fresh if row.ticket_id not in failed], owner=self.owner
            )

    def _sweep_rows(
        self, rows: Sequence[DueTimer], policy: SlaPolicy, now: datetime
    ) -> tuple[SweepReport, set[str]]:
        """Sweep the due tickets ``rows``: those decided from their kept folds in one narrow
        commit, the others read whole and swept in one commit of the general path (one by
        one when either fails). What was done, and the ids of the tickets that could not be
        swept."""
        decided: list[tuple[DueTimer, SlaFold, tuple[Event, ...]]] = []
        general: list[DueTimer] = []
        for row in rows:
            try:
                item = self.decide_kept(row, policy, now)
            except HelpkitError as exc:  # the general path decides again, and says so
                log.info("ticket %s: no fast decision (%s)", row.ticket_id, exc)
                item = None
            if item is None:
                general.append(row)
            else:
                decided.append(item)
        report = SweepReport(now=now)
        failed: set[str] = set()
        if decided:
            done, lost = self._commit_fast(decided, now)
            report, failed = report + done, failed | lost
        if general:
            tickets: list[Ticket] = []
            kept: list[str | None] = []
            for row in general:
                try:
                    tickets.append(self._store.get_ticket(row.ticket_id))
                except NotFoundError:
                    continue  # purged meanwhile
                kept.append(row.timer_state)
            done, lost = self._batch(tickets, now, kept)
            report, failed = report + done, failed | lost
        return report, failed

    def _commit_fast(
        self, decided: list[tuple[DueTimer, SlaFold, tuple[Event, ...]]], now: datetime
    ) -> tuple[SweepReport, set[str]]:
        try:
            self._pipeline.commit_timed(decided)
        except ConflictError:
            # A concurrent writer won one of them: redo each ticket on its own, on fresh data.
            redone, failed = self._one_by_one([row.ticket_id for row, _, _ in decided], now)
            return redone + SweepReport(now=now, conflicts=1), failed
        except HelpkitError as exc:
            log.info("sweep batch failed (%s); processing its tickets one by one", exc)
            return self._one_by_one([row.ticket_id for row, _, _ in decided], now)
        breaches = sum(isinstance(e, SlaBreached) for _, _, events in decided for e in events)
        recorded = sum(len(events) for _, _, events in decided)
        return SweepReport(
            now=now, examined=len(decided), warnings=recorded - breaches, breaches=breaches
        ), set()

    def decide_kept(
        self, row: DueTimer, policy: SlaPolicy, now: datetime
    ) -> tuple[DueTimer, SlaFold, tuple[Event, ...]] | None:
        """The fast decision on a due ticket: its row, its kept fold and the SLA warnings and
        breaches crossed up to ``now`` (the events :meth:`plan` records on it), or ``None``
        when the general path must decide (no kept fold at the row's seq under ``policy``,
        nothing due, an escalation action bound to a crossed check, a ticket its next event
        pins, too many steps)."""
        if row.timer_state is None or not row.plain:
            return None
        fold = SlaTimer.kept_fold(
            row.ticket_id, row.seq, policy, Timers.part(row.timer_state, SlaTimer.key)
        )
        if fold is None:
            return None
        due = fold.due_checks(now)
        if not due or len(due) > _MAX_STEPS:
            return None
        events: list[Event] = []
        seq = row.seq
        escalation = self._config.escalation
        rules, acting = self._acting
        if rules is not escalation:
            acting = {}
            self._acting = (escalation, acting)
        name = policy.name
        for item in due:
            check = item.check
            key = (check.metric._value_, check.fraction)
            acts = acting.get(key)
            if acts is None:
                acts = acting[key] = any(
                    action is Action.ESCALATE or action is Action.RAISE_PRIORITY
                    for _, action in escalation.actions_for(*key)
                )
            if acts:
                return None
            seq += 1
            events.append(
                lifecycle.sla_check_event(
                    row.ticket_id, seq, at=now, actor=SWEEP_ACTOR, policy=name, due=item
                )
            )
        return row, fold, tuple(events)

    def _run_claimed(self, claims: DueClaims, now: datetime, batch: int) -> SweepReport:
        """:meth:`run` on a store with due claims: claim a batch, sweep it, release it."""
        report = SweepReport(now=now)
        swept: set[str] = set()
        while True:
            tickets, kept = claims.claim_due(
                owner=self.owner, now=now, until=now + self.lease, limit=batch
            )
            if not tickets:
                return report
            # A ticket this run swept already and still due (stopped after _MAX_STEPS) is not
            # swept again: it stays held until its lease lapses, so the loop ends.
            fresh = [(t, k) for t, k in zip(tickets, kept, strict=True) if t.id not in swept]
            swept.update(ticket.id for ticket in tickets)
            if not fresh:
                continue
            done, failed = self._batch([t for t, _ in fresh], now, [k for _, k in fresh])
            report = report + done
            claims.release_due([t.id for t, _ in fresh if t.id not in failed], owner=self.owner)

    def _batch(
        self, tickets: list[Ticket], now: datetime, kept: Sequence[str | None] = ()
    ) -> tuple[SweepReport, set[str]]:
        """Sweep ``tickets`` in one commit (one by one when that fails): what was done, and
        the ids of the tickets that could not be swept."""
        outcomes: list[Outcome] = []
        reports: list[SweepReport] = []
        try:
            with self._levels.snapshot():
                for ticket, state in zip(tickets, kept, strict=False):
                    if state is not None:
                        self._pipeline.restore_timers(ticket, state)
                for ticket in tickets:
                    outcome, planned = self.plan(ticket, now)
                    outcomes.append(outcome)
                    reports.append(planned)
                self._pipeline.commit(outcomes)
        except ConflictError:
            # A concurrent writer won one of them: redo each ticket on its own, on fresh data.
            redone, failed = self._one_by_one(tickets, now)
            return redone + SweepReport(now=now, conflicts=1), failed
        except HelpkitError as exc:
            # One ticket cannot be processed: the others still go through, one by one.
            log.info("sweep batch failed (%s); processing its tickets one by one", exc)
            return self._one_by_one(tickets, now)
        return SweepReport(
            now=now,
            examined=len(tickets),
            warnings=sum(r.warnings for r in reports),
            breaches=sum(r.breaches for r in reports),
            escalations=sum(r.escalations for r in reports),
            priority_raises=sum(r.priority_raises for r in reports),
            satisfaction_offers=sum(r.satisfaction_offers for r in reports),
        ), set()

    def _one_by_one(
        self, tickets: Sequence[Ticket | str], now: datetime
    ) -> tuple[SweepReport, set[str]]:
        report = SweepReport(now=now)
        failed: set[str] = set()
        for ticket in tickets:
            ticket_id = ticket if isinstance(ticket, str) else ticket.id
            one = self._sweep_one(ticket_id, now)
            if one.failures:
                failed.add(ticket_id)
            report = report + one
        return report, failed

    def _sweep_one(self, ticket_id: str, now: datetime) -> SweepReport:
        conflicts = 0
        for _ in range(_RETRIES):
            try:
                ticket = self._store.get_ticket(ticket_id)
                if ticket.next_check is None or ticket.next_check > now:
                    # Another sweep got here first and left nothing due.
                    return SweepReport(now=now, examined=1, conflicts=conflicts)
                outcome, report = self.plan(ticket, now)
                self._pipeline.commit([outcome])
                return attrs.evolve(report, examined=1, conflicts=conflicts)
            except ConflictError:
                conflicts += 1
            except HelpkitError:
                log.exception("sweep failed on ticket %s", ticket_id)
                return SweepReport(now=now, examined=1, conflicts=conflicts, failures=1)
        log.error("ticket %s: gave up after %d conflicting writes", ticket_id, conflicts)
        return SweepReport(now=now, examined=1, conflicts=conflicts, failures=1)

    def plan(self, ticket: Ticket, now: datetime) -> tuple[Outcome, SweepReport]:
        """What a sweep at ``now`` records on ``ticket``.

        Without anything due (a schedule left stale by a configuration change), the outcome
        records that the schedule was recomputed, so the commit stores the fresh one.
        """
        outcomes: list[Outcome] = []
        state = ticket
        counts = {"warnings": 0, "breaches": 0, "escalations": 0, "priority_raises": 0}
        policy = self._levels.policy_for(state)
        fold: SlaFold | None = None
        due: tuple[DueCheck, ...] | None = None  # None: ask the fold
        unfolded: list[Event] = []  # recorded since the fold, folded in only when asked
        for _ in range(_MAX_STEPS):
            if policy is None:
                break
            if fold is None or fold.policy is not policy:
                fold = self._sla.fold(ticket.id, ticket.seq, policy, _events_of(outcomes))
                due, unfolded = None, []
            if due is None:
                fold, unfolded = fold.extend(unfolded), []
                due = fold.due_checks(now)
            if not due:
                break
            step = self._step(state, due[0], policy.name, now, counts)
            state = step[-1].ticket
            outcomes.extend(step)
            unfolded.extend(_events_of(step))
            if len(step) == 1:
                # A recorded check moves no clock: what is still due is the rest, in order.
                due = due[1:]
            else:
                # An escalation or a raised priority may select another policy, and a raised
                # priority moves the clocks; a recorded check alone changes neither.
                due = None
                policy = self._levels.policy_for(state)
        else:
            log.warning("ticket %s: sweep stopped after %d steps", ticket.reference, _MAX_STEPS)
        report = SweepReport(now=now, **counts)
        result = lifecycle.chain(outcomes) if outcomes else None
        if result is None and self._automations is not None and self._automations.enabled:
            # Due for an automation (the triggers and the automations run on the SLA steps
            # in the commit; without any, the automations are fired here).
            fired = self._automations.fire(Outcome(ticket, (), ticket.seq, ticket), now)
            if fired.changed:
                result = fired
        if self._offers is not None:
            # A satisfaction survey due: offered in the same commit.
            base = result if result is not None else Outcome(ticket, (), ticket.seq, ticket)
            offered = self._offers.fire(base, now)
            if offered is not base:
                result = offered
                report = attrs.evolve(report, satisfaction_offers=1)
        if result is None:
            policy = self._levels.policy_for(ticket)
            return lifecycle.record_sla_reschedule(
                ticket, at=now, actor=SWEEP_ACTOR, policy=None if policy is None else policy.name
            ), report
        return result, report

    def _step(
        self,
        state: Ticket,
        due: DueCheck,
        policy: str,
        now: datetime,
        counts: dict[str, int],
    ) -> list[Outcome]:
        """Record one crossed check, then carry out the rules bound to it.

        The check is recorded now (with the instant it was crossed); the rules' actions are
        dated at that instant, so the time a ticket spends in each tier does not depend on how
        often the sweep runs.
        """
        check = due.check
        metric = check.metric._value_  # not .value: the enum property costs more
        step = [
            lifecycle.record_sla_check(state, at=now, actor=SWEEP_ACTOR, policy=policy, due=due)
        ]
        counts["breaches" if check.fraction >= BREACH else "warnings"] += 1
        state = step[-1].ticket
        # Actions act on live tickets only: a clock that ended meanwhile is just recorded.
        if not state.category.is_active or due.ended_at is not None:
            return step
        for rule, action in self._config.escalation.actions_for(metric, check.fraction):
            reason = (
                f"SLA {metric} "
                + ("breached" if check.fraction >= BREACH else f"at {check.fraction:.0%}")
                + f" (rule {rule.name})"
            )
            if action is Action.ESCALATE:
                try:
                    group, new, old = escalation_target(
                        self._levels.ladder(), state.group_id, EscalationKind.HIERARCHICAL
                    )
                except (InvalidTransitionError, HelpkitError) as exc:
                    log.info(
                        "ticket %s: rule %s cannot escalate: %s", state.reference, rule.name, exc
                    )
                    continue
                step.append(
                    lifecycle.escalate(
                        state,
                        at=check.at,
                        actor=SWEEP_ACTOR,
                        kind=EscalationKind.HIERARCHICAL.value,
                        group_id=group,
                        tier=new.level if new else None,
                        previous_tier=old.level if old else None,
                        reason=reason,
                        rule=rule.name,
                    )
                )
                counts["escalations"] += 1
            elif action is Action.RAISE_PRIORITY:
                raised = state.priority.raised()
                if raised == state.priority:
                    continue
                step.append(
                    lifecycle.override_priority(
                        state, raised, at=check.at, actor=SWEEP_ACTOR, reason=reason
                    )
                )
                counts["priority_raises"] += 1
            else:
                continue  # notifications go out from the recorded event (see delivery)
            state = step[-1].ticket
        return step


def _events_of(outcomes: list[Outcome]) -> list[Event]:
    return [event for outcome in outcomes for event in outcome.events]
