"""Time-based automations: rules that fire when time has passed ("solved for 4 days ->
closed", "pending 2 days -> remind the requester", "unassigned for 2 business hours -> notify
the group").

An automation is a condition with at least one ``since ... at_least`` part, and actions. Its
*due instant* on a ticket is when its time parts pass (:meth:`~helpkit.conditions.Condition.due`,
on the ticket as it is). It fires at the first moment, at or after that instant, that the
desk looks at the ticket: the sweep, which finds the ticket through the timer index (each
ticket's ``next_check`` is the earliest instant any timer wants it back; :class:`Automations`
is one of those timers), or any command on the ticket meanwhile. It fires only if its whole
condition holds then, and only for a due instant after the ticket's last change before that
moment: once it has fired, its own changes are the ticket's last change, so it does not fire
again for the same instant; when the instant moves (a ticket solved again, a status entered
again, an update for ``since = "updated"``), it may fire again. No scan of the open tickets:
the sweep's cost is proportional to what is due.

Its changes are recorded as ``system:automation:<name>``, dated at its due instant (or at the
ticket's latest change, if later), in the same commit as the sweep's or the command's, and the
triggers run on them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from helpkit import lifecycle
from helpkit.actions import Actions
from helpkit.conditions import Subject
from helpkit.directory import Directory, RequesterLookups
from helpkit.errors import ConflictError, HelpkitError, StoreError
from helpkit.lifecycle import Outcome
from helpkit.rules import Automation
from helpkit.tickets import Actor, Ticket
from helpkit.timers import TimerPlan

__all__ = ["Automations", "automation_actor"]

log = logging.getLogger("helpkit.automations")


def automation_actor(automation: Automation) -> Actor:
    """The actor an automation's changes are recorded as: ``system:automation:<name>``."""
    return Actor.system(f"automation:{automation.name}")


class Automations:
    """The active automations of a desk: when each is due on a ticket, and firing them."""

    key = "automations"
    """The timer source's name (:class:`~helpkit.timers.TimerSource`)."""

    def __init__(
        self, automations: Sequence[Automation], actions: Actions, directory: Directory
    ) -> None:
        self._automations = tuple(a for a in automations if a.active)
        self._tests = tuple(a.when.compiled() for a in self._automations)
        self._actions = actions
        self._directory = directory

    @property
    def enabled(self) -> bool:
        """Whether any automation is active."""
        return bool(self._automations)

    # ------------------------------------------------------------ firing

    def react(self, outcomes: Sequence[Outcome], now: datetime) -> Sequence[Outcome]:
        """``outcomes`` with the automations due on each changed ticket fired (a command on a
        ticket fires what is overdue on it, as the sweep would)."""
        if not self._automations:
            return outcomes
        result = list(outcomes)
        for index, outcome in enumerate(outcomes):
            if outcome.changed and not all(e.BOOKKEEPING for e in outcome.events):
                result[index] = self.fire(outcome, now)
        return result

    def fire(self, outcome: Outcome, now: datetime) -> Outcome:
        """``outcome`` (of a command or a sweep) with every automation due by ``now`` fired:
        in configured order, starting again after each firing (so one automation's change can
        make another due), each at most once. Its events are dated at its due instant, or at
        the ticket's latest change if that is later (a command's, dated now), so the history
        stays in time order and how often the sweep runs changes nothing but when the work
        is done."""
        if not self._automations:
            return outcome
        last_change = outcome.before.updated_at if outcome.before is not None else None
        current = outcome
        people = self._directory.lookups(outcome.ticket)
        fired = {e.actor for e in outcome.events}
        again = True
        while again:
            again = False
            subject = self._subject(current.ticket, now, people)
            for automation, test in zip(self._automations, self._tests, strict=True):
                actor = automation_actor(automation)
                if actor in fired:
                    continue
                due = automation.when.due(subject)
                if due is None or due > now or (last_change is not None and due <= last_change):
                    continue
                if not test(subject):
                    continue
                fired.add(actor)
                try:
                    step = self._actions.carry_out(
                        current.ticket,
                        automation.actions,
                        at=max(due, current.ticket.updated_at),
                        actor=actor,
                        rule=automation.name,
                    )
                except (ConflictError, StoreError):
                    raise
                except HelpkitError as exc:
                    log.warning(
                        "automation %r skipped on ticket %s: %s",
                        automation.name,
                        current.ticket.reference,
                        exc,
                    )
                    continue
                if step.changed:
                    current = lifecycle.chain([current, step])
                    again = True
                    break
        return current

    # ------------------------------------------------------------ the timer

    def plan(self, outcome: Outcome) -> TimerPlan:
        """The earliest instant after this change that an automation is due on the ticket."""
        ticket = outcome.ticket
        return TimerPlan({}, self.next_due(ticket))

    def next_due(self, ticket: Ticket) -> datetime | None:
        """The earliest due instant, after the ticket's last change, of an automation whose
        condition will hold then."""
        if not self._automations:
            return None
        people = self._directory.lookups(ticket)
        earliest: datetime | None = None
        for automation, test in zip(self._automations, self._tests, strict=True):
            subject = self._subject(ticket, ticket.updated_at, people)
            due = automation.when.due(subject)
            if due is None or due <= ticket.updated_at:
                continue
            if earliest is not None and due >= earliest:
                continue
            if test(self._subject(ticket, due, people)):
                earliest = due
        return earliest

    def committed(self, ticket: Ticket, memo: object | None) -> None:
        """Nothing to remember: the due instants follow from the ticket."""

    def kept(self, memo: object | None) -> object | None:
        """Nothing is kept beside the ticket."""
        return None

    def restore(self, ticket: Ticket, data: object) -> None:
        """Nothing was kept."""

    def forget(self) -> None:
        """Nothing was kept."""

    # ------------------------------------------------------------ lookups

    @staticmethod
    def _subject(ticket: Ticket, now: datetime, people: RequesterLookups) -> Subject:
        return Subject(
            ticket=ticket,
            now=now,
            find_requester=people.requester,
            find_organization=people.organization,
        )
