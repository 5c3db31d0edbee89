"""Satisfaction survey offers as a timer: the sweep offers the survey when it is due.

:class:`SatisfactionOffers` is a timer source (:class:`~helpkit.timers.TimerSource`): each
ticket's next check includes the instant its offer is due (``offer_after`` after it was solved,
:func:`helpkit.satisfaction.offer_due`), so the sweep finds it through the timer index and
scans nothing. The sweep records the offer (a
:class:`~helpkit.events.SatisfactionOffered` event by ``system:csat``, dated when the sweep
runs, its links expiring ``expires_after`` later) in the same commit as anything else due on
the ticket; the relay sends the ``csat_offer`` messages from the outbox.

Once, whatever happens: the offer sets the ticket's ``satisfaction_offered_at``, after which no
offer is due for that solving; the commit is guarded by the ticket's seq, so of two sweeps
racing on the ticket one commits and the other, redoing the ticket on fresh data, finds nothing
due. A reopened ticket has no offer due (its solving is undone); one solved again is offered
again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from helpkit import lifecycle
from helpkit.lifecycle import Outcome
from helpkit.satisfaction import CsatConfig, offer, offer_due
from helpkit.tickets import Actor, Ticket
from helpkit.timers import TimerPlan

__all__ = ["OFFER_ACTOR", "SatisfactionOffers"]

OFFER_ACTOR: Final = Actor.system("csat")
"""The actor satisfaction offers are recorded as."""


class SatisfactionOffers:
    """The satisfaction offers of a desk: when each ticket's is due, and making it."""

    key = "csat"
    """The timer source's name (:class:`~helpkit.timers.TimerSource`)."""

    def __init__(self, config: CsatConfig) -> None:
        self._config = config

    @property
    def enabled(self) -> bool:
        """Whether the desk offers surveys (``[csat] enabled``)."""
        return self._config.enabled

    def due(self, ticket: Ticket) -> datetime | None:
        """When the ticket's offer is due (``None``: none is)."""
        return offer_due(ticket, self._config)

    def fire(self, outcome: Outcome, now: datetime) -> Outcome:
        """``outcome`` with the offer of its ticket recorded, when one is due by ``now``."""
        due = offer_due(outcome.ticket, self._config)
        if due is None or due > now:
            return outcome
        at = max(now, outcome.ticket.updated_at)
        step = offer(outcome.ticket, at=at, actor=OFFER_ACTOR, config=self._config)
        return lifecycle.chain([outcome, step]) if outcome.changed else step

    # ------------------------------------------------------------ the timer

    def plan(self, outcome: Outcome) -> TimerPlan:
        """The instant the ticket's offer is due, after this change."""
        return TimerPlan({}, offer_due(outcome.ticket, self._config))

    def committed(self, ticket: Ticket, memo: object | None) -> None:
        """Nothing to remember: the due instant follows from the ticket."""

    def kept(self, memo: object | None) -> object | None:
        """Nothing is kept beside the ticket."""
        return None

    def restore(self, ticket: Ticket, data: object) -> None:
        """Nothing was kept."""

    def forget(self) -> None:
        """Nothing was kept."""
