"""Conformance cases of due claims (:attr:`~helpkit.ports.Capability.DUE_CLAIMS`).

Sweep workers lease due tickets as relays lease deliveries: a claim takes the due tickets no
one holds (earliest check first), another worker gets none of them until the lease lapses or
its holder releases them, and only the holder releases. Skipped, with the reason shown, for
stores that do not declare the capability.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import cast

import attrs
import pytest

from helpkit.errors import ValidationError
from helpkit.ports import (
    Capability,
    DueClaims,
    DueTimerClaims,
    Store,
    TimerRows,
    TimerStates,
)
from helpkit.testing.conformance.helpers import (
    BASE_TIME,
    _note,
    _open,
    _Time,
    change_of,
    declared,
    with_schedule,
)
from helpkit.tickets import Ticket

_S = timedelta(seconds=1)


def _claims(store: Store) -> DueClaims:
    declared(store, Capability.DUE_CLAIMS, DueClaims)
    return cast(DueClaims, store)


def _scheduled(store: Store, checks: dict[str, datetime | None]) -> dict[str, Ticket]:
    """Commit a ticket per entry, its next check as given; the tickets as stored."""
    time = _Time()
    written = {}
    for ticket_id, check in checks.items():
        opened = with_schedule(
            _open(ticket_id, 0, time.tick()), policy="standard", deadline=check, check=check
        )
        (change,) = store.commit([change_of(opened)])
        written[ticket_id] = change.ticket
    return written


def _ids(claimed: tuple[list[Ticket], list[str | None]]) -> list[str]:
    tickets, states = claimed
    assert len(states) == len(tickets), "one timer state (or None) per claimed ticket"
    return [ticket.id for ticket in tickets]


class DueClaimCases:
    """Due tickets leased by one sweep worker at a time, released by their holder."""

    thread_safe: bool

    def test_claims_take_due_unheld_tickets_earliest_check_first(self, store: Store) -> None:
        claims = _claims(store)
        written = _scheduled(
            store,
            {
                "a-later": BASE_TIME + 60 * _S,
                "b-now": BASE_TIME,
                "c-soon": BASE_TIME + _S,
                "d-never": None,
                "e-soon": BASE_TIME + _S,
            },
        )
        now = BASE_TIME + 2 * _S
        tickets, states = claims.claim_due(owner="w1", now=now, until=now + 30 * _S, limit=10)
        assert [t.id for t in tickets] == ["b-now", "c-soon", "e-soon"]  # not later, not never
        assert tickets == [written[t.id] for t in tickets]  # the tickets as stored
        assert len(states) == 3
        # Held: another worker gets nothing until the claims lapse.
        assert _ids(claims.claim_due(owner="w2", now=now + 10 * _S, until=now, limit=10)) == []
        lapse = now + 30 * _S
        assert _ids(claims.claim_due(owner="w2", now=lapse, until=lapse + 30 * _S, limit=1)) == [
            "b-now"
        ]
        assert _ids(claims.claim_due(owner="w3", now=lapse, until=lapse + 60 * _S, limit=5)) == [
            "c-soon",
            "e-soon",
        ]
        # At a later now, the later ticket is due too; the others are still w2's and w3's.
        later = BASE_TIME + 60 * _S
        assert _ids(claims.claim_due(owner="w1", now=later, until=later + _S, limit=5)) == [
            "a-later"
        ]
        with pytest.raises(ValidationError):
            claims.claim_due(owner="w1", now=now, until=now, limit=0)
        with pytest.raises(ValidationError):
            claims.claim_due(owner=5, now=now, until=now, limit=1)  # type: ignore[arg-type]

    def test_only_the_holder_releases_and_releasing_frees_the_ticket(self, store: Store) -> None:
        claims = _claims(store)
        _scheduled(store, {"t1": BASE_TIME, "t2": BASE_TIME})
        until = BASE_TIME + 3600 * _S
        assert _ids(claims.claim_due(owner="w1", now=BASE_TIME, until=until, limit=5)) == [
            "t1",
            "t2",
        ]
        assert claims.release_due(["t1", "t2"], owner="w2") == 0  # not its claims
        assert _ids(claims.claim_due(owner="w2", now=BASE_TIME, until=until, limit=5)) == []
        assert claims.release_due(["t1", "unknown"], owner="w1") == 1
        assert claims.release_due(["t1"], owner="w1") == 0  # released already
        assert claims.release_due([], owner="w1") == 0
        assert _ids(claims.claim_due(owner="w2", now=BASE_TIME, until=until, limit=5)) == ["t1"]
        assert claims.release_due(["t2"], owner="w1") == 1
        assert _ids(claims.claim_due(owner="w3", now=BASE_TIME, until=until, limit=5)) == ["t2"]

    def test_a_lapsed_claim_is_no_longer_its_old_holders(self, store: Store) -> None:
        claims = _claims(store)
        _scheduled(store, {"t1": BASE_TIME})
        assert _ids(claims.claim_due(owner="w1", now=BASE_TIME, until=BASE_TIME + _S, limit=1))
        later = BASE_TIME + _S
        assert _ids(claims.claim_due(owner="w2", now=later, until=later + 60 * _S, limit=1)) == [
            "t1"
        ]
        assert claims.release_due(["t1"], owner="w1") == 0  # w2's now
        assert _ids(claims.claim_due(owner="w3", now=later, until=later, limit=1)) == []
        assert claims.release_due(["t1"], owner="w2") == 1

    def test_a_claim_is_advice_commits_go_through_and_move_the_schedule(self, store: Store) -> None:
        claims = _claims(store)
        written = _scheduled(store, {"t1": BASE_TIME, "t2": BASE_TIME})
        (held,), _ = claims.claim_due(owner="w1", now=BASE_TIME, until=BASE_TIME + _S, limit=1)
        # Anyone may commit a held ticket (commits are guarded by their seq, not by claims).
        note = with_schedule(
            _note(held, BASE_TIME + _S),
            policy="standard",
            deadline=BASE_TIME + 3600 * _S,
            check=BASE_TIME + 3600 * _S,
        )
        store.commit([change_of(note)])
        assert claims.release_due([held.id], owner="w1") == 1
        # No longer due: not claimed again; the other one still is.
        now = BASE_TIME + 2 * _S
        other = "t2" if held.id == "t1" else "t1"
        assert _ids(claims.claim_due(owner="w2", now=now, until=now, limit=5)) == [other]
        assert written[other] == store.get_ticket(other)

    def test_claims_carry_the_kept_timer_states(self, store: Store) -> None:
        claims = _claims(store)
        if Capability.TIMER_STATE not in store.capabilities:
            pytest.skip("the store does not declare Capability.TIMER_STATE")
        time = _Time()
        changes = [
            change_of(
                with_schedule(
                    _open(f"t{n}", 0, time.tick()),
                    policy="standard",
                    deadline=BASE_TIME,
                    check=BASE_TIME,
                )
            )
            for n in range(3)
        ]
        cast(TimerStates, store).commit_planned(changes, ["s0", None, "s2"])
        tickets, states = claims.claim_due(owner="w", now=BASE_TIME, until=BASE_TIME, limit=5)
        assert [t.id for t in tickets] == ["t0", "t1", "t2"]
        assert states == ["s0", None, "s2"]

    def test_concurrent_workers_never_hold_one_ticket_together(self, store: Store) -> None:
        claims = _claims(store)
        if not self.thread_safe:
            pytest.skip("the suite says this store must not be shared between threads")
        due = _scheduled(store, {f"t{n:03d}": BASE_TIME + (n % 7) * _S for n in range(90)})
        now = BASE_TIME + 10 * _S
        taken: dict[str, list[str]] = {}
        errors: list[BaseException] = []

        def worker(name: str) -> None:
            try:
                mine: list[str] = []
                for _ in range(len(due)):  # bounded: a store that hands out held tickets
                    batch = _ids(
                        claims.claim_due(owner=name, now=now, until=now + 3600 * _S, limit=4)
                    )
                    if not batch:
                        break
                    mine.extend(batch)
                taken[name] = mine
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        everything = [ticket for ids in taken.values() for ticket in ids]
        assert sorted(everything) == [f"t{n:03d}" for n in range(90)]

    # ------------------------------------------------------------ claims as timer rows

    def test_a_claim_as_timer_rows_claims_as_claim_due_and_reads_as_due_timers(
        self, store: Store
    ) -> None:
        if Capability.DUE_TIMER_CLAIMS not in store.capabilities:
            pytest.skip("the store does not declare Capability.DUE_TIMER_CLAIMS")
        claims = _claims(store)
        assert Capability.TIMER_ROWS in store.capabilities, "DUE_TIMER_CLAIMS needs TIMER_ROWS"
        declared(store, Capability.DUE_TIMER_CLAIMS, DueTimerClaims)
        timed = cast(DueTimerClaims, store)
        time = _Time()
        checks = {
            "a-later": BASE_TIME + 60 * _S,
            "b-now": BASE_TIME,
            "c-soon": BASE_TIME + _S,
            "d-never": None,
            "e-soon": BASE_TIME + _S,
        }
        changes = [
            change_of(
                with_schedule(
                    _open(ticket_id, 0, time.tick()), policy="standard", deadline=check, check=check
                )
            )
            for ticket_id, check in checks.items()
        ]
        cast(TimerStates, store).commit_planned(changes, ['{"a":1}', None, '{"c":3}', None, None])
        now = BASE_TIME + 2 * _S
        # What due_timers reads of the due tickets, before any claim.
        expected, _ = cast(TimerRows, store).due_timers(now, limit=10)
        rows = timed.claim_due_timers(owner="w1", now=now, until=now + 30 * _S, limit=2)
        assert [row.ticket_id for row in rows] == ["b-now", "c-soon"]  # earliest first, limit
        # The rows as due_timers reads them (the store's own handle aside).
        assert [attrs.evolve(row, handle=None) for row in rows] == [
            attrs.evolve(row, handle=None) for row in expected[:2]
        ]
        assert rows[0].timer_state is None and rows[1].timer_state == '{"c":3}'
        # Claimed as claim_due claims: held from the others, then released by the holder.

        def ids(owner: str, at: datetime) -> list[str]:
            claimed = timed.claim_due_timers(owner=owner, now=at, until=at + _S, limit=5)
            return [row.ticket_id for row in claimed]

        assert ids("w2", now) == ["e-soon"]  # the one due ticket w1 did not take
        assert _ids(claims.claim_due(owner="w3", now=now, until=now + _S, limit=5)) == []
        assert claims.release_due(["b-now", "c-soon"], owner="w1") == 2
        assert ids("w3", now) == ["b-now", "c-soon"]
        assert ids("w4", now + _S) == ["b-now", "c-soon", "e-soon"]  # w2's and w3's lapsed
        with pytest.raises(ValidationError):
            timed.claim_due_timers(owner="w1", now=now, until=now, limit=0)
        with pytest.raises(ValidationError):
            timed.claim_due_timers(owner=5, now=now, until=now, limit=1)  # type: ignore[arg-type]
