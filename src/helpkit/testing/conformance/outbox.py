"""Conformance cases of the outbox (:attr:`~helpkit.ports.Capability.OUTBOX`).

Skipped, with the reason shown, for stores that do not declare the capability.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import cast

import pytest

from helpkit._records import replace
from helpkit.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from helpkit.lifecycle import Outcome
from helpkit.ports import (
    Capability,
    ChangeFeed,
    ClaimedEnqueue,
    Delivery,
    DeliveryState,
    OutboundMessage,
    Outbox,
    Recipient,
    SettledCommits,
    Store,
    TicketChange,
    missing_members,
)
from helpkit.testing.conformance.helpers import (
    BASE_TIME,
    ReopenStore,
    StoreFactory,
    _note,
    _open,
    _Time,
    change_of,
    forged,
)

_S = timedelta(seconds=1)
_CURSOR = "relay"


def _outbox(store: Store) -> Outbox:
    if Capability.OUTBOX not in store.capabilities:
        pytest.skip("the store does not declare Capability.OUTBOX")
    assert missing_members(store, Outbox) == (), "a store with OUTBOX implements Outbox"
    assert Capability.CHANGE_FEED in store.capabilities, "the outbox follows the change feed"
    return cast(Outbox, store)


def delivery(
    delivery_id: str,
    *,
    ticket_id: str = "t1",
    due: datetime = BASE_TIME,
    source: int = 1,
    kind: str = "reply",
) -> Delivery:
    """A pending delivery of a one-line reply to one contact."""
    message = OutboundMessage(
        ticket_id=ticket_id,
        ticket_number=1,
        subject="[#1] VPN drops",
        body="Please try again.",
        comment_id=f"{delivery_id}-comment",
        author_name="Ann",
        to=(Recipient("contact", "c1", "Carol", "carol@example.com"),),
        sent_at=due,
        in_reply_to="<m1@example.com>",
        references=("<m0@example.com>", "<m1@example.com>"),
        headers={"X-Test": "1"},
        idempotency_key=delivery_id,
        kind=kind,
    )
    return Delivery(
        id=delivery_id,
        ticket_id=ticket_id,
        source=source,
        kind=kind,
        channel="email",
        message=message,
        next_attempt_at=due,
        created_at=due,
        updated_at=due,
    )


def _settling(store: Store) -> SettledCommits:
    _outbox(store)
    if Capability.SETTLED_COMMIT not in store.capabilities:
        pytest.skip("the store does not declare Capability.SETTLED_COMMIT")
    assert missing_members(store, SettledCommits) == ()
    return cast(SettledCommits, store)


def _no_states(store: Store, changes: list[TicketChange]) -> list[str | None] | None:
    """No timer state for any of ``changes`` (None on a store that keeps none)."""
    return [None] * len(changes) if Capability.TIMER_STATE in store.capabilities else None


def _attempted(held: list[Delivery], now: datetime) -> tuple[Delivery, Delivery]:
    """The results of attempting the first two ``held`` deliveries at ``now``: the first
    sent (with an external id), the second failed once and due again a minute later."""
    sent = replace(
        held[0],
        state=DeliveryState.SENT,
        attempts=1,
        external_id="<x@example.com>",
        updated_at=now,
    )
    retry = replace(
        held[1],
        attempts=1,
        last_error="SMTP 451",
        next_attempt_at=now + 60 * _S,
        updated_at=now,
    )
    return sent, retry


def _opened_with_deliveries(
    store: Store, *ids: str
) -> tuple[SettledCommits, Outbox, _Time, Outcome]:
    """For the settled-commit cases (skipped without Capability.SETTLED_COMMIT): ticket
    ``t1`` opened and committed, and deliveries ``ids`` derived up to its events; the store
    as settling commits and as outbox, the scenario's clock, the opening."""
    settling = _settling(store)
    outbox = cast(Outbox, store)
    time = _Time()
    opened = _open("t1", 1, time.tick())
    store.commit([change_of(opened)])
    last = cast(ChangeFeed, store).last_position()
    outbox.enqueue([delivery(i) for i in ids], cursor=_CURSOR, position=last, expected=0)
    return settling, outbox, time, opened


def _with_events(store: Store, count: int = 3) -> int:
    """Commit tickets until the feed has at least ``count`` positions; the last position."""
    time = _Time()
    number = 0
    while cast(ChangeFeed, store).last_position() < count:
        number += 1
        store.commit([change_of(_open(f"feed-{number}", number, time.tick()))])
    return cast(ChangeFeed, store).last_position()


class OutboxCases:
    """Deliveries derived once, claimed by one relay at a time, settled by their holder."""

    thread_safe: bool

    def test_enqueue_adds_new_deliveries_and_moves_the_cursor_in_one_step(
        self, store: Store
    ) -> None:
        outbox = _outbox(store)
        last = _with_events(store)
        first, second = delivery("d1"), delivery("d2", due=BASE_TIME + _S)
        assert outbox.enqueue([first, second], cursor=_CURSOR, position=2, expected=0) == 2
        assert cast(ChangeFeed, store).cursor(_CURSOR) == 2
        assert outbox.delivery("d1") == first
        # Deriving again after a crash finds the same ids: nothing is added twice.
        again = replace(first, kind="reply")
        assert outbox.enqueue([again, delivery("d3")], cursor=_CURSOR, position=last, expected=2)
        assert [d.id for d in outbox.deliveries()] == ["d1", "d2", "d3"]
        # A relay behind the cursor adds nothing and moves nothing.
        with pytest.raises(ConflictError):
            outbox.enqueue([delivery("d4")], cursor=_CURSOR, position=last, expected=2)
        with pytest.raises(ValidationError):
            outbox.enqueue([delivery("d5")], cursor=_CURSOR, position=last + 1, expected=last)
        with pytest.raises(ValidationError):
            outbox.enqueue(["not a delivery"], cursor=_CURSOR, position=last, expected=last)  # type: ignore[list-item]
        bad = forged(delivery("d6"), attempts=-1)
        with pytest.raises(ValidationError):
            outbox.enqueue([bad], cursor=_CURSOR, position=last, expected=last)
        assert [d.id for d in outbox.deliveries()] == ["d1", "d2", "d3"]
        assert cast(ChangeFeed, store).cursor(_CURSOR) == last
        with pytest.raises(NotFoundError):
            outbox.delivery("d4")

    def test_checked_deliveries_are_stored_as_the_others(self, store: Store) -> None:
        # ``checked=True`` (the relay's own deliveries) skips checking the values again, and
        # nothing else: the same rows, the same cursor rules, a non-delivery still refused.
        outbox = _outbox(store)
        last = _with_events(store)
        first = delivery("d1")
        assert outbox.enqueue([first], cursor=_CURSOR, position=1, expected=0, checked=True) == 1
        assert outbox.delivery("d1") == first
        with pytest.raises(ConflictError):
            outbox.enqueue(
                [delivery("d2")], cursor=_CURSOR, position=last, expected=0, checked=True
            )
        with pytest.raises(ValidationError):
            outbox.enqueue(
                ["not a delivery"],  # type: ignore[list-item]
                cursor=_CURSOR,
                position=last,
                expected=1,
                checked=True,
            )
        assert [d.id for d in outbox.deliveries()] == ["d1"]
        (held,) = outbox.claim(owner="r1", now=BASE_TIME, until=BASE_TIME + _S, limit=1)
        sent = replace(held, state=DeliveryState.SENT, attempts=1, external_id="<x@y>")
        assert outbox.settle([sent], owner="r2", checked=True) == 0  # not its claim
        assert outbox.settle([sent], owner="r1", checked=True) == 1
        assert outbox.delivery("d1") == replace(sent, claimed_by=None, claimed_until=None)
        with pytest.raises(ValidationError):
            outbox.settle(["not a delivery"], owner="r1", checked=True)  # type: ignore[list-item]

    def test_claimed_enqueue_adds_new_deliveries_held_by_the_relay(self, store: Store) -> None:
        if Capability.CLAIMED_ENQUEUE not in store.capabilities:
            pytest.skip("the store does not declare Capability.CLAIMED_ENQUEUE")
        outbox = _outbox(store)
        claimed = cast(ClaimedEnqueue, store)
        last = _with_events(store)
        until = BASE_TIME + 30 * _S
        first, second = delivery("d1"), delivery("d2", due=BASE_TIME + _S)
        held = claimed.enqueue_claimed(
            [first, second], cursor=_CURSOR, position=2, expected=0, owner="r1", until=until
        )
        assert held == [
            replace(d, claimed_by="r1", claimed_until=until, claims=1) for d in (first, second)
        ]
        assert cast(ChangeFeed, store).cursor(_CURSOR) == 2
        assert [outbox.delivery(d.id) for d in held] == held
        # Held: no other relay claims them until the claim lapses, then one does (claims 2).
        assert outbox.claim(owner="r2", now=BASE_TIME + _S, until=until, limit=5) == []
        retaken = outbox.claim(owner="r2", now=until, until=until + _S, limit=1)
        assert [(d.id, d.claimed_by, d.claims) for d in retaken] == [("d1", "r2", 2)]
        # The holder settles what it holds (d2); d1 is r2's now.
        sent = [replace(d, state=DeliveryState.SENT, attempts=1) for d in held]
        assert outbox.settle(sent, owner="r1", checked=True) == 1
        assert outbox.delivery("d2").state is DeliveryState.SENT
        # Ids already there are left as they are and not returned; a new one is held.
        again = claimed.enqueue_claimed(
            [delivery("d1"), delivery("d3")],
            cursor=_CURSOR,
            position=last,
            expected=2,
            owner="r3",
            until=until,
        )
        assert [(d.id, d.claimed_by) for d in again] == [("d3", "r3")]
        assert outbox.delivery("d1").claimed_by == "r2"
        # The cursor rules and the checks of ``enqueue``: nothing added, nothing moved.
        with pytest.raises(ConflictError):
            claimed.enqueue_claimed(
                [delivery("d4")], cursor=_CURSOR, position=last, expected=2, owner="r1", until=until
            )
        with pytest.raises(ValidationError):
            claimed.enqueue_claimed(
                [forged(delivery("d5"), attempts=-1)],
                cursor=_CURSOR,
                position=last,
                expected=last,
                owner="r1",
                until=until,
            )
        assert [d.id for d in outbox.deliveries()] == ["d1", "d2", "d3"]
        assert cast(ChangeFeed, store).cursor(_CURSOR) == last

    def test_claims_take_due_unheld_deliveries_oldest_first(self, store: Store) -> None:
        outbox = _outbox(store)
        last = _with_events(store)
        later = delivery("a-later", due=BASE_TIME + 60 * _S)
        outbox.enqueue(
            [later, delivery("b-now", due=BASE_TIME), delivery("c-soon", due=BASE_TIME + _S)],
            cursor=_CURSOR,
            position=last,
            expected=0,
        )
        now = BASE_TIME + 2 * _S
        claimed = outbox.claim(owner="r1", now=now, until=now + 30 * _S, limit=10)
        assert [d.id for d in claimed] == ["b-now", "c-soon"]  # not the later one
        assert all(d.claimed_by == "r1" and d.claims == 1 for d in claimed)
        assert all(d.claimed_until == now + 30 * _S for d in claimed)
        # Held: another relay gets nothing until the claim lapses.
        assert outbox.claim(owner="r2", now=now + 10 * _S, until=now + 40 * _S, limit=10) == []
        lapse = now + 30 * _S
        retaken = outbox.claim(owner="r2", now=lapse, until=lapse + 30 * _S, limit=1)
        assert [(d.id, d.claimed_by, d.claims) for d in retaken] == [("b-now", "r2", 2)]
        assert outbox.claim(owner="r3", now=lapse, until=lapse, limit=5)[0].id == "c-soon"
        with pytest.raises(ValidationError):
            outbox.claim(owner="r1", now=now, until=now, limit=0)

    def test_only_the_holder_settles_and_settling_releases(self, store: Store) -> None:
        outbox = _outbox(store)
        last = _with_events(store)
        outbox.enqueue([delivery("d1"), delivery("d2")], cursor=_CURSOR, position=last, expected=0)
        now = BASE_TIME + _S
        held = outbox.claim(owner="r1", now=now, until=now + 30 * _S, limit=2)
        sent, retry = _attempted(held, now)
        assert outbox.settle([sent, retry], owner="r2") == 0  # not its claim
        assert outbox.settle([sent, retry], owner="r1") == 2
        stored = outbox.delivery("d1")
        assert (stored.state, stored.external_id, stored.claimed_by) == (
            DeliveryState.SENT,
            "<x@example.com>",
            None,
        )
        waiting = outbox.delivery("d2")
        assert (waiting.state, waiting.attempts, waiting.claimed_by) == (
            DeliveryState.PENDING,
            1,
            None,
        )
        assert outbox.claim(owner="r1", now=now + 59 * _S, until=now + 90 * _S, limit=5) == []
        assert outbox.settle([sent], owner="r1") == 0  # settled already: nothing held
        again = outbox.claim(owner="r1", now=now + 60 * _S, until=now + 90 * _S, limit=5)
        assert [d.id for d in again] == ["d2"]

    def test_a_lapsed_claim_cannot_be_settled_by_its_old_holder(self, store: Store) -> None:
        outbox = _outbox(store)
        last = _with_events(store)
        outbox.enqueue([delivery("d1")], cursor=_CURSOR, position=last, expected=0)
        (mine,) = outbox.claim(owner="r1", now=BASE_TIME, until=BASE_TIME + _S, limit=1)
        (theirs,) = outbox.claim(owner="r2", now=BASE_TIME + _S, until=BASE_TIME + 9 * _S, limit=1)
        late = replace(mine, state=DeliveryState.SENT, attempts=1, updated_at=BASE_TIME)
        assert outbox.settle([late], owner="r1") == 0
        assert outbox.delivery("d1").claimed_by == "r2"
        done = replace(theirs, state=DeliveryState.DEAD, attempts=5, last_error="gave up")
        assert outbox.settle([done], owner="r2") == 1
        assert outbox.delivery("d1").state is DeliveryState.DEAD

    def test_a_settled_commit_settles_exactly_when_its_changes_commit(self, store: Store) -> None:
        """:attr:`Capability.SETTLED_COMMIT`: a refused commit settles nothing; a commit that
        goes through settles the results with it (skipped for stores without it)."""
        settling, outbox, time, opened = _opened_with_deliveries(store, "d1", "d2")
        now = BASE_TIME + _S
        held = outbox.claim(owner="r1", now=now, until=now + 30 * _S, limit=2)
        sent, retry = _attempted(held, now)
        noted = _note(opened.ticket, time.tick())
        store.commit([change_of(noted)])
        stale = [change_of(noted)]  # its seq is behind now: refused
        with pytest.raises(ConflictError):
            settling.commit_settled(stale, _no_states(store, stale), [sent, retry], owner="r1")
        for unsettled in (outbox.delivery("d1"), outbox.delivery("d2")):
            assert (unsettled.state, unsettled.attempts, unsettled.claimed_by) == (
                DeliveryState.PENDING,
                0,
                "r1",
            )
        assert store.get_ticket("t1") == noted.ticket
        again = _note(noted.ticket, time.tick())
        changes = [change_of(again)]
        written, stored = settling.commit_settled(
            changes, _no_states(store, changes), [sent, retry], owner="r1"
        )
        assert stored == 2
        assert [change.ticket for change in written] == [again.ticket]
        assert store.get_ticket("t1") == again.ticket
        assert store.events("t1")[-len(again.events) :] == list(again.events)
        done = outbox.delivery("d1")
        assert (done.state, done.external_id, done.claimed_by) == (
            DeliveryState.SENT,
            "<x@example.com>",
            None,
        )
        waiting = outbox.delivery("d2")
        assert (waiting.state, waiting.attempts, waiting.claimed_by) == (
            DeliveryState.PENDING,
            1,
            None,
        )

    def test_a_settled_commit_settles_no_lost_claim(self, store: Store) -> None:
        """A result of a delivery another relay holds now is not stored; the changes are
        committed all the same (skipped for stores without Capability.SETTLED_COMMIT)."""
        settling, outbox, time, opened = _opened_with_deliveries(store, "d1")
        (mine,) = outbox.claim(owner="r1", now=BASE_TIME, until=BASE_TIME + _S, limit=1)
        (theirs,) = outbox.claim(owner="r2", now=BASE_TIME + _S, until=BASE_TIME + 9 * _S, limit=1)
        late = replace(mine, state=DeliveryState.SENT, attempts=1, updated_at=BASE_TIME)
        noted = _note(opened.ticket, time.tick())
        changes = [change_of(noted)]
        written, stored = settling.commit_settled(
            changes, _no_states(store, changes), [late], owner="r1"
        )
        assert stored == 0
        assert [change.ticket for change in written] == [noted.ticket]
        assert store.get_ticket("t1") == noted.ticket
        still = outbox.delivery("d1")
        assert (still.state, still.attempts, still.claimed_by) == (DeliveryState.PENDING, 0, "r2")
        assert theirs.claimed_by == "r2"

    def test_dead_deliveries_are_listed_and_revived(self, store: Store) -> None:
        outbox = _outbox(store)
        last = _with_events(store)
        outbox.enqueue(
            [delivery("d1", ticket_id="t1"), delivery("d2", ticket_id="t2"), delivery("d3")],
            cursor=_CURSOR,
            position=last,
            expected=0,
        )
        held = outbox.claim(owner="r", now=BASE_TIME, until=BASE_TIME + _S, limit=3)
        dead = [replace(d, state=DeliveryState.DEAD, attempts=5, last_error="no") for d in held[:2]]
        outbox.settle(dead, owner="r")
        assert [d.id for d in outbox.deliveries(state=DeliveryState.DEAD)] == ["d1", "d2"]
        assert [d.id for d in outbox.deliveries(ticket_id="t1")] == ["d1", "d3"]
        assert [d.id for d in outbox.deliveries(after="d1", limit=1)] == ["d2"]
        revived = outbox.revive("d2", now=BASE_TIME + 5 * _S)
        assert (
            revived.state,
            revived.attempts,
            revived.claims,
            revived.revivals,
            revived.next_attempt_at,
        ) == (
            DeliveryState.PENDING,
            0,
            0,
            1,
            BASE_TIME + 5 * _S,
        )
        assert outbox.delivery("d2") == revived
        with pytest.raises(InvalidTransitionError):
            outbox.revive("d2", now=BASE_TIME)  # pending, not dead
        with pytest.raises(NotFoundError):
            outbox.revive("nope", now=BASE_TIME)
        assert [d.id for d in outbox.deliveries(state=DeliveryState.DEAD)] == ["d1"]

    def test_sent_deliveries_are_purged(self, store: Store) -> None:
        outbox = _outbox(store)
        last = _with_events(store)
        outbox.enqueue([delivery("d1"), delivery("d2")], cursor=_CURSOR, position=last, expected=0)
        (first, _) = outbox.claim(owner="r", now=BASE_TIME, until=BASE_TIME + _S, limit=2)
        sent = replace(first, state=DeliveryState.SENT, attempts=1, updated_at=BASE_TIME)
        outbox.settle([sent], owner="r")
        assert outbox.purge(sent_before=BASE_TIME) == 0
        assert outbox.purge(sent_before=BASE_TIME + _S) == 1
        assert [d.id for d in outbox.deliveries()] == ["d2"]

    def test_concurrent_relays_never_hold_one_delivery_together(self, store: Store) -> None:
        outbox = _outbox(store)
        if not self.thread_safe:
            pytest.skip("the suite says this store must not be shared between threads")
        last = _with_events(store)
        outbox.enqueue(
            [delivery(f"d{n:03d}") for n in range(120)], cursor=_CURSOR, position=last, expected=0
        )
        taken: dict[str, list[str]] = {}
        errors: list[BaseException] = []

        def relay(name: str) -> None:
            try:
                mine: list[str] = []
                while True:
                    batch = outbox.claim(
                        owner=name, now=BASE_TIME, until=BASE_TIME + 3600 * _S, limit=7
                    )
                    if not batch:
                        break
                    mine.extend(d.id for d in batch)
                taken[name] = mine
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=relay, args=(f"r{n}",)) for n in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        everything = [d for ids in taken.values() for d in ids]
        assert sorted(everything) == [f"d{n:03d}" for n in range(120)]

    def test_the_outbox_survives_reopening(
        self, make_store: StoreFactory, reopen_store: ReopenStore
    ) -> None:
        store = make_store()
        if Capability.PERSISTENT not in store.capabilities:
            store.close()
            pytest.skip("the store does not declare Capability.PERSISTENT")
        outbox = _outbox(store)
        try:
            last = _with_events(store)
            outbox.enqueue(
                [delivery("d1"), delivery("d2")], cursor=_CURSOR, position=last, expected=0
            )
            (held, _) = outbox.claim(owner="r", now=BASE_TIME, until=BASE_TIME + _S, limit=2)
            outbox.settle(
                [replace(held, state=DeliveryState.SENT, attempts=1, external_id="<e>")], owner="r"
            )
            before = outbox.deliveries()
        finally:
            store.close()
        reopened = reopen_store(store)
        try:
            again = _outbox(reopened)
            assert again.deliveries() == before
            assert cast(ChangeFeed, reopened).cursor(_CURSOR) == last
        finally:
            reopened.close()
