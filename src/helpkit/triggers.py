"""Triggers: rules that run on every command, in the command's own commit.

The command pipeline hands each command's outcomes to :meth:`Triggers.react` after the
decision and before the timers and the commit (every writer: the facade, inbound messages,
the sweep, macros). For each ticket the command changed, the active triggers are tested in
their configured order against the ticket as the command (and the triggers before) left it,
the ticket before the command, and the command's events. A trigger that matches carries out
its actions (:mod:`helpkit.actions`) as ``system:trigger:<name>``; its events join the
command's, and the pass starts again from the first trigger, so later rules see what earlier
ones did (Zendesk's order of evaluation). Each trigger fires at most once per command, so a
command's cascade ends after at most as many firings as there are triggers: that is the loop
guard. A trigger's changes are committed with the command, atomically, and audited as events
of their own actor.

Commands that only record deliveries (the relay's ``message_sent``, ``delivery_failed``:
:attr:`~helpkit.events.Event.BOOKKEEPING`) run no triggers.

A trigger whose actions cannot be carried out on this ticket (a group or agent that no longer
exists, a status the workflow does not allow from here, a closed ticket) is skipped, with a
warning in the ``helpkit.triggers`` log; the command and the other triggers go ahead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from helpkit import lifecycle
from helpkit.actions import Actions
from helpkit.conditions import Subject, first_match
from helpkit.directory import Directory
from helpkit.errors import ConflictError, HelpkitError, StoreError
from helpkit.lifecycle import Outcome
from helpkit.rules import Trigger
from helpkit.tickets import Actor

__all__ = ["Triggers"]

log = logging.getLogger("helpkit.triggers")


def trigger_actor(trigger: Trigger) -> Actor:
    """The actor a trigger's changes are recorded as: ``system:trigger:<name>``."""
    return Actor.system(f"trigger:{trigger.name}")


class Triggers:
    """The active triggers of a desk, run on the outcomes of every command."""

    def __init__(self, triggers: Sequence[Trigger], actions: Actions, directory: Directory) -> None:
        self._triggers = tuple(t for t in triggers if t.active)
        self._tests = tuple(t.when.compiled() for t in self._triggers)
        self._first = first_match([t.when for t in self._triggers])
        self._actions = actions
        self._directory = directory

    @property
    def enabled(self) -> bool:
        """Whether any trigger is active."""
        return bool(self._triggers)

    def react(self, outcomes: Sequence[Outcome], now: datetime) -> Sequence[Outcome]:
        """``outcomes`` with each changed ticket's triggers' changes chained on."""
        if not self._triggers:
            return outcomes
        result = list(outcomes)
        for index, outcome in enumerate(outcomes):
            if outcome.changed and not all(e.BOOKKEEPING for e in outcome.events):
                result[index] = self._run(outcome, now)
        return result

    def _run(self, outcome: Outcome, now: datetime) -> Outcome:
        fired: set[str] = set()
        current = outcome
        people = self._directory.lookups(outcome.ticket)
        again = True
        while again:
            again = False
            subject = Subject(
                ticket=current.ticket,
                now=now,
                before=current.before,
                events=current.events,
                find_requester=people.requester,
                find_organization=people.organization,
            )
            start = holds = 0
            if not fired:
                # The first pass (and, most often, the only one): one call finds the first
                # trigger that holds, or that none does.
                start = holds = self._first(subject)
                if start < 0:
                    break
            else:
                holds = -1  # known of none: test each
            for index in range(start, len(self._triggers)):
                trigger = self._triggers[index]
                if trigger.name in fired:
                    continue
                if index != holds and not self._tests[index](subject):
                    continue
                fired.add(trigger.name)
                try:
                    step = self._actions.carry_out(
                        current.ticket,
                        trigger.actions,
                        at=now,
                        actor=trigger_actor(trigger),
                        rule=trigger.name,
                    )
                except (ConflictError, StoreError):
                    raise
                except HelpkitError as exc:
                    log.warning(
                        "trigger %r skipped on ticket %s: %s",
                        trigger.name,
                        current.ticket.reference,
                        exc,
                    )
                    continue
                if step.changed:
                    current = lifecycle.chain([current, step])
                    again = True  # later triggers see this one's changes; start again
                    break
        return current
