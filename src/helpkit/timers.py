"""The timer index: each ticket's next check is the earliest instant any of its timers is due.

The command pipeline asks every :class:`TimerSource` about each ticket a command changed,
before the commit, and stores the earliest of their instants as ``Ticket.next_check``, the
index the sweep reads (so no feature scans all open tickets). Today the one source is the SLA
clock (:class:`SlaTimer`); automations, reminders and satisfaction offers will be more.

:class:`SlaTimer` keeps each ticket's :class:`~helpkit.sla.SlaFold` after a commit (a bounded,
thread-safe cache keyed by ticket and checked by seq), so the next command on that ticket folds
only its own events, plus any another process committed meanwhile, instead of re-reading and
re-folding the whole history: a command's cost does not grow with the ticket's history.

A store with :attr:`~helpkit.ports.Capability.TIMER_STATE` also keeps, beside each ticket,
what every source wants to find again in another process (:meth:`Timers.state`; for the SLA
clock, its fold as plain data under the policy's fingerprint): the sweep reads it with the
due tickets and hands it back (:meth:`Timers.restore`), so it reads no history either. What
is kept is only ever a shortcut: data that does not fit the ticket or its policy now is
ignored, and the history is folded as before.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from helpkit._codec.text import dumps as compact_dumps
from helpkit._records import replace_from
from helpkit.errors import ValidationError
from helpkit.events import Event
from helpkit.lifecycle import Outcome
from helpkit.ports import Store
from helpkit.service_levels import ServiceLevels
from helpkit.sla import SlaFold, SlaPolicy
from helpkit.tickets import Ticket

__all__ = ["FoldCache", "SlaTimer", "TimerPlan", "TimerSource", "Timers"]


@attrs.frozen
class TimerPlan:
    """What one source says about a changed ticket: fields to set, its next instant, and a
    memo it wants back once the change is committed."""

    fields: Mapping[str, Any]
    next_check: datetime | None
    memo: object | None = None


class TimerSource(Protocol):
    """A kind of timer (SLA checks today; automations and reminders later)."""

    key: str
    """The name of its part of a ticket's kept timer state."""

    def plan(self, outcome: Outcome) -> TimerPlan:
        """The timer fields and next instant of ``outcome.ticket`` after ``outcome``."""
        ...

    def committed(self, ticket: Ticket, memo: object | None) -> None:
        """``ticket`` was committed as planned (``memo`` is the plan's)."""
        ...

    def kept(self, memo: object | None) -> object | None:
        """What of a plan's ``memo`` the store keeps beside the ticket (JSON-safe data), or
        ``None`` for nothing."""
        ...

    def restore(self, ticket: Ticket, data: object) -> None:
        """``data`` that :meth:`kept` gave, read back with ``ticket`` (perhaps at a seq
        before the ticket's: committed since without a state)."""
        ...

    def forget(self) -> None:
        """Drop what :meth:`committed` and :meth:`restore` kept: commits it was told of
        were rolled back (a group commit that failed)."""
        ...


@attrs.frozen
class Planned:
    """A changed ticket with its timer fields set, and the sources' memos."""

    ticket: Ticket
    memos: tuple[object | None, ...]


class Timers:
    """Every timer source of a desk, combined into the one ``next_check`` index."""

    def __init__(self, sources: Sequence[TimerSource]) -> None:
        self._sources = tuple(sources)

    def plan(self, outcome: Outcome) -> Planned:
        """``outcome.ticket`` with every source's fields and the earliest next check."""
        sources = self._sources
        fields: dict[str, Any]
        if len(sources) == 1:  # (a desk's usual one source: the loop below, unrolled)
            plan = sources[0].plan(outcome)
            fields = dict(plan.fields)
            fields["next_check"] = plan.next_check
            memos: tuple[object | None, ...] = (plan.memo,)
        else:
            fields = {}
            instants: list[datetime] = []
            memo_list: list[object | None] = []
            for source in sources:
                plan = source.plan(outcome)
                fields.update(plan.fields)
                if plan.next_check is not None:
                    instants.append(plan.next_check)
                memo_list.append(plan.memo)
            fields["next_check"] = min(instants, default=None)
            memos = tuple(memo_list)
        ticket = outcome.ticket
        changed = {k: v for k, v in fields.items() if getattr(ticket, k) != v}
        return Planned(replace_from(ticket, changed) if changed else ticket, memos)

    def committed(self, planned: Planned, ticket: Ticket) -> None:
        """Tell the sources that ``planned`` was committed as ``ticket`` (numbered)."""
        sources, memos = self._sources, planned.memos
        if len(sources) == 1 and len(memos) == 1:  # (the usual one source, unrolled)
            sources[0].committed(ticket, memos[0])
            return
        for source, memo in zip(sources, memos, strict=True):
            source.committed(ticket, memo)

    def forget(self) -> None:
        """Tell every source to drop what it kept (:meth:`TimerSource.forget`)."""
        for source in self._sources:
            source.forget()

    @property
    def sources(self) -> tuple[TimerSource, ...]:
        """The sources, in order."""
        return self._sources

    def state(self, planned: Planned) -> str | None:
        """The timer state a store keeps beside ``planned.ticket`` (JSON text: each source's
        part under its key), or ``None`` when no source keeps anything."""
        return self.state_of(planned.memos)

    def state_of(self, memos: Sequence[object | None]) -> str | None:
        """:meth:`state` of a plan whose sources' memos are ``memos``."""
        sources = self._sources
        if len(sources) == 1 and len(memos) == 1:  # (the usual one source, unrolled)
            source = sources[0]
            data = source.kept(memos[0])
            return None if data is None else _dumps({source.key: data})
        parts: dict[str, object] = {}
        for source, memo in zip(sources, memos, strict=True):
            data = source.kept(memo)
            if data is not None:
                parts[source.key] = data
        return _dumps(parts) if parts else None

    @staticmethod
    def part(state: str, key: str) -> object | None:
        """The part of a kept timer ``state`` under ``key`` (``None`` when there is none, or
        the text is not a state)."""
        try:
            parts = json.loads(state)
        except (TypeError, ValueError):
            return None
        return parts.get(key) if isinstance(parts, dict) else None

    def restore(self, ticket: Ticket, state: str) -> None:
        """Hand each source its part of a kept timer ``state`` of ``ticket`` (text that is
        not a state is ignored: the sources then work from the history)."""
        try:
            parts = json.loads(state)
        except (TypeError, ValueError):
            return
        if not isinstance(parts, dict):
            return
        for source in self._sources:
            data = parts.get(source.key)
            if data is not None:
                source.restore(ticket, data)


_dumps = compact_dumps


class FoldCache:
    """The latest committed :class:`SlaFold` of recently changed tickets (least recently used
    out first; thread-safe; folds are immutable, so sharing them is safe)."""

    def __init__(self, size: int = 8192) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"a fold cache size is an integer >= 0; got {size!r}")
        self._size = size
        self._folds: OrderedDict[str, SlaFold] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ticket_id: str) -> SlaFold | None:
        """The fold kept for the ticket, if any."""
        with self._lock:
            fold = self._folds.get(ticket_id)
            if fold is not None:
                self._folds.move_to_end(ticket_id)
            return fold

    def put(self, fold: SlaFold) -> None:
        """Keep ``fold`` as its ticket's latest (an older one never replaces a newer one)."""
        if not self._size:
            return
        with self._lock:
            kept = self._folds.get(fold.ticket_id)
            if kept is not None and kept.seq > fold.seq:
                return
            self._folds[fold.ticket_id] = fold
            self._folds.move_to_end(fold.ticket_id)
            while len(self._folds) > self._size:
                self._folds.popitem(last=False)

    def refresh(self, fold: SlaFold) -> None:
        """Replace the fold kept for ``fold``'s ticket by ``fold`` when one is kept and is not
        newer; keep nothing for a ticket not kept (and move nothing out)."""
        with self._lock:
            kept = self._folds.get(fold.ticket_id)
            if kept is not None and kept.seq <= fold.seq:
                self._folds[fold.ticket_id] = fold

    def clear(self) -> None:
        """Forget every fold."""
        with self._lock:
            self._folds.clear()

    def __len__(self) -> int:
        return len(self._folds)

    def __contains__(self, ticket_id: object) -> bool:
        """Whether a fold of the ticket is kept (nothing moves)."""
        with self._lock:
            return ticket_id in self._folds


class SlaTimer:
    """The SLA clock as a timer source: policy, next deadline and next check of a ticket."""

    key = "sla"

    def __init__(self, store: Store, levels: ServiceLevels, cache: FoldCache) -> None:
        self._store = store
        self._levels = levels
        self._cache = cache

    def plan(self, outcome: Outcome) -> TimerPlan:
        """The ticket's SLA schedule after ``outcome`` (recomputed from its history)."""
        ticket = outcome.ticket
        policy = self._levels.policy_for(ticket)
        if policy is None:
            return TimerPlan({"sla_policy": None, "next_deadline": None}, None)
        fold = self.fold(ticket.id, outcome.previous_seq, policy, outcome.events)
        schedule = fold.schedule()
        return TimerPlan(
            {"sla_policy": policy.name, "next_deadline": schedule.next_deadline},
            schedule.next_check,
            fold,
        )

    def committed(self, ticket: Ticket, memo: object | None) -> None:
        """Keep the fold of the committed ticket for its next command."""
        if isinstance(memo, SlaFold) and memo.seq == ticket.seq:
            self._cache.put(memo)

    def forget(self) -> None:
        """Forget the kept folds (some were of commits rolled back)."""
        self._cache.clear()

    def kept(self, memo: object | None) -> object | None:
        """The fold of a plan, as ``[policy fingerprint, fold data]``."""
        if not isinstance(memo, SlaFold):
            return None
        return [memo.policy.fingerprint(), memo.to_data()]

    def restore(self, ticket: Ticket, data: object) -> None:
        """Keep a fold read back with ``ticket`` in the cache, when it was built under the
        policy that applies to the ticket now (the same fingerprint) and fits the ticket."""
        policy = self._levels.policy_for(ticket)
        if policy is None or not isinstance(data, list) or len(data) != 2:
            return
        fingerprint, folded = data
        if fingerprint != policy.fingerprint():
            return
        try:
            fold = SlaFold.from_data(folded, policy)
        except ValidationError:
            return
        if fold.ticket_id == ticket.id and fold.seq <= ticket.seq:
            self._cache.put(fold)

    @staticmethod
    def kept_fold(ticket_id: str, seq: int, policy: SlaPolicy, data: object) -> SlaFold | None:
        """The fold kept as ``data`` (:meth:`kept`'s form) for the ticket at exactly ``seq``
        under ``policy`` (the same fingerprint), or ``None`` when it is not that fold (the
        sweep's fast path then leaves the ticket to the general path)."""
        if not isinstance(data, list) or len(data) != 2 or data[0] != policy.fingerprint():
            return None
        try:
            fold = SlaFold.from_data(data[1], policy)
        except ValidationError:
            return None
        return fold if fold.ticket_id == ticket_id and fold.seq == seq else None

    def plan_kept(self, fold: SlaFold, events: Sequence[Event]) -> TimerPlan:
        """:meth:`plan` of a change that appends ``events`` (which select no other policy)
        to a ticket whose fold is ``fold``, without the ticket."""
        extended = fold.extend(events)
        schedule = extended.schedule()
        return TimerPlan(
            {"sla_policy": fold.policy.name, "next_deadline": schedule.next_deadline},
            schedule.next_check,
            extended,
        )

    def holds(self, ticket_id: str) -> bool:
        """Whether the cache holds a fold of the ticket (:meth:`committed_fold` refreshes
        only those; a plan's fold for another ticket need not be kept until its commit)."""
        return ticket_id in self._cache

    def committed_fold(self, memo: object | None) -> None:
        """Bring the cache up to date with the fold of a plan committed by the sweep's fast
        path (:meth:`plan_kept`): replaced when the ticket's fold is kept, else not added. A
        sweep of thousands of due tickets would otherwise push out the folds of the tickets
        being worked on, and keep thousands of folds alive for the garbage collector to walk;
        a command on a swept ticket reads its fold back from the kept state instead."""
        if isinstance(memo, SlaFold):
            self._cache.refresh(memo)

    def fold(
        self, ticket_id: str, seq: int, policy: SlaPolicy, new_events: Sequence[Event] = ()
    ) -> SlaFold:
        """The fold of the ticket's first ``seq`` committed events and ``new_events``.

        Taken from the cache when it holds this ticket under this policy (reading only the
        events committed since by others), else folded from the stored history.
        """
        kept = self._cache.get(ticket_id) if seq else None
        if kept is not None and kept.policy is policy and kept.seq <= seq:
            missing: Sequence[Event] = ()
            if kept.seq < seq:
                missing = [
                    e for e in self._store.events(ticket_id, after_seq=kept.seq) if e.seq <= seq
                ]
            if missing:
                kept = kept.extend(missing)
                self._cache.put(kept)  # committed by another writer: keep it too
            return kept.extend(new_events)
        if not seq:
            return SlaFold.of(new_events, policy)
        stored = SlaFold.of([e for e in self._store.events(ticket_id) if e.seq <= seq], policy)
        self._cache.put(stored)  # committed events: safe to keep for the next command
        return stored.extend(new_events)
