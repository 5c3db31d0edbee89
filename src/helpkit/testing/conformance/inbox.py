"""Conformance cases of the inbox (:attr:`~helpkit.ports.Capability.INBOX`).

A change made from an inbound message carries its :class:`~helpkit.ports.Receipt`, which the
store writes in the commit's transaction: a key already held by a receipt that is not
suspended refuses the whole commit with DuplicateError and nothing is written (no ticket, no
event, no feed position, no number spent); a suspended receipt is replaced (a release). A
refused commit (a stale seq, a bad value) writes no receipt either. ``suspend`` keeps a
suspended receipt unless its key is taken, ``discard`` throws a suspended one away, and
``suspended`` lists them oldest first, a page at a time. Persistent stores keep receipts across
reopening; threads, and processes for a store whose suite names a ``reopen_elsewhere``
fixture, racing to ingest one message make one ticket. Skipped, with the reason shown, for
stores that do not declare the capability.
"""

from __future__ import annotations

import functools
import random
import threading
import time as _clock
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from multiprocessing import get_context
from typing import cast

import attrs
import pytest

from helpkit.errors import (
    ConflictError,
    DuplicateError,
    HelpkitError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from helpkit.ports import (
    Address,
    Capability,
    ChangeFeed,
    InboundAttachment,
    InboundMessage,
    Inbox,
    Receipt,
    ReceiptState,
    Store,
    TicketChange,
)
from helpkit.queries import TicketQuery
from helpkit.testing.conformance.helpers import (
    BASE_TIME,
    ReopenStore,
    StoreFactory,
    _note,
    _open,
    _stale_tag,
    _Time,
    change_of,
    declared,
    forged,
)

ReopenElsewhere = Callable[[Store], Callable[[], Store]]
"""Given a store, a picklable zero-argument callable that opens the same data in another
process (stores with :attr:`~helpkit.ports.Capability.MULTIPROCESS`)."""

__all__ = ["InboxCases", "ReopenElsewhere", "message", "receipt_of", "suspension"]

_S = timedelta(seconds=1)
_PROCESSES = 4


def _inbox(store: Store) -> Inbox:
    declared(store, Capability.INBOX, Inbox)
    return cast(Inbox, store)


def message(external_id: str, at: datetime = BASE_TIME, **fields: object) -> InboundMessage:
    """An inbound email with everything a receipt must keep: names with accents, several
    recipients, headers, quoted history, notes, and attachments whose bytes are not text."""
    values: dict[str, object] = {
        "channel": "email",
        "sender_address": "ana@example.com",
        "sender_name": "Ana Muñoz",
        "subject": "Re: VPN down [#12]",
        "body": "Still down.\n",
        "received_at": at,
        "external_id": external_id,
        "in_reply_to": "hk1-t1-abc@desk.example",
        "references": ("first@example.com", "hk1-t1-abc@desk.example"),
        "ticket_number": 12,
        "to": (Address("help@desk.example", "Help desk"),),
        "cc": (Address("bo@example.com"),),
        "headers": {"Auto-Submitted": "no", "Received": "from a\nfrom b"},
        "original": "Still down.\n\n> On Monday...\n",
        "attachments": (
            InboundAttachment(
                filename="trace.bin",
                content_type="application/octet-stream",
                data=bytes(range(256)),
            ),
            InboundAttachment(
                filename="logo.png",
                content_type="image/png",
                data=b"\x89PNG\r\n\x1a\n\x00",
                inline=True,
                content_id="logo@x",
            ),
            InboundAttachment(filename="empty.txt", content_type="text/plain", data=b""),
        ),
        "notes": ("unknown charset 'x-foo' read as UTF-8 with replacements",),
    }
    values.update(fields)
    return InboundMessage(**values)  # type: ignore[arg-type]


def receipt_of(
    change: TicketChange,
    key: str,
    *,
    state: ReceiptState = ReceiptState.CREATED,
    at: datetime | None = None,
    reason: str | None = None,
) -> TicketChange:
    """``change`` carrying a receipt under ``key`` for its ticket."""
    when = change.events[-1].at if change.events else BASE_TIME
    receipt = Receipt(
        key=key,
        state=state,
        received_at=at or when,
        updated_at=when,
        ticket_id=change.ticket.id,
        comment_id=f"{change.ticket.id}-m{change.ticket.seq}",
        reason=reason,
    )
    return attrs.evolve(change, receipt=receipt)


def suspension(
    key: str, at: datetime = BASE_TIME, reason: str = "auto-reply (Auto-Submitted)"
) -> Receipt:
    """A suspended receipt under ``key``, received at ``at``, with its whole message."""
    return Receipt(
        key=key,
        state=ReceiptState.SUSPENDED,
        received_at=at,
        updated_at=at,
        reason=reason,
        message=message(key.partition(":")[2] or key, at),
    )


def _fed(store: Store) -> int:
    if Capability.CHANGE_FEED in store.capabilities:
        return cast(ChangeFeed, store).last_position()
    return -1


def _everything(store: Store) -> tuple[object, ...]:
    """What a refused commit must leave as it was: every ticket with its history, and the
    feed's last position."""
    tickets = list(store.query(TicketQuery(limit=1000)))
    return (tickets, [store.events(t.id) for t in tickets], _fed(store))


def _race(opener: Callable[[], Store], ticket_id: str, key: str, start: float) -> str:
    """One process ingesting message ``key`` as a new ticket ``ticket_id``, from ``start``
    (a wall clock instant, so the processes commit together): ``won``, or the error's name."""
    store = opener()
    try:
        change = receipt_of(change_of(_open(ticket_id, 0, BASE_TIME)), key)
        _clock.sleep(max(0.0, start - _clock.time()))
        try:
            store.commit([change])
        except HelpkitError as exc:
            return type(exc).__name__
        return "won"
    finally:
        store.close()


def _race_threads(store: Store, key: str, round_: int, count: int = 6) -> list[str]:
    """``count`` threads ingesting message ``key`` at once, each as a new ticket: what each
    got (``won``, or the error's name)."""
    outcomes: list[str] = []
    barrier = threading.Barrier(count)

    def ingest(n: int) -> None:
        change = receipt_of(change_of(_open(f"r{round_}-{n}", 0, BASE_TIME)), key)
        barrier.wait()
        try:
            store.commit([change])
            outcomes.append("won")
        except HelpkitError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


class InboxCases:
    """Receipts of inbound messages: written with their commit, once per key."""

    thread_safe: bool

    @pytest.fixture
    def reopen_elsewhere(self) -> ReopenElsewhere | None:
        """Override for stores with :attr:`~helpkit.ports.Capability.MULTIPROCESS`: a callable
        that, given a store, returns a picklable zero-argument callable opening the same data
        in another process (``functools.partial(MyStore, store.path)``). ``None`` skips the
        case of processes racing to ingest one message."""
        return None

    # ------------------------------------------------------------ written with the commit

    def test_a_receipt_is_written_with_the_change_it_made(self, store: Store) -> None:
        inbox = _inbox(store)
        time = _Time()
        assert inbox.receipt("email:new@example.com") is None
        opening = receipt_of(change_of(_open("t1", 0, time.tick())), "email:new@example.com")
        (written,) = store.commit([opening])
        assert written.ticket.number == 1
        assert written.receipt == opening.receipt  # returned as written
        assert inbox.receipt("email:new@example.com") == opening.receipt
        reply = receipt_of(
            change_of(_note(written.ticket, time.tick())),
            "email:reply@example.com",
            state=ReceiptState.COMMENTED,
        )
        store.commit([reply])
        assert inbox.receipt("email:reply@example.com") == reply.receipt
        assert inbox.receipt("email:new@example.com") == opening.receipt
        assert inbox.suspended() == []
        # A commit without receipts touches none.
        store.commit([change_of(_note(store.get_ticket("t1"), time.tick()))])
        assert inbox.receipt("email:reply@example.com") == reply.receipt
        with pytest.raises(ValidationError):
            inbox.receipt("")
        with pytest.raises(ValidationError):
            inbox.receipt(7)  # type: ignore[arg-type]

    def test_a_key_received_before_refuses_the_whole_commit(self, store: Store) -> None:
        inbox = _inbox(store)
        time = _Time()
        (first,) = store.commit(
            [receipt_of(change_of(_open("t1", 0, time.tick())), "email:m1@example.com")]
        )
        kept = inbox.receipt("email:m1@example.com")
        before, position = _everything(store), _fed(store)
        # The same message again, in a batch with a change of another ticket: all refused.
        again = receipt_of(change_of(_open("t2", 0, time.tick())), "email:m1@example.com")
        other = change_of(_note(first.ticket, time.tick()))
        for batch in ([again], [other, again], [again, other]):
            with pytest.raises(DuplicateError):
                store.commit(batch)
            assert _everything(store) == before, "a refused commit wrote something"
            assert inbox.receipt("email:m1@example.com") == kept
        # As a comment on the ticket it made, too.
        commented = receipt_of(
            change_of(_note(first.ticket, time.tick())),
            "email:m1@example.com",
            state=ReceiptState.COMMENTED,
        )
        with pytest.raises(DuplicateError):
            store.commit([commented])
        assert _everything(store) == before
        with pytest.raises(NotFoundError):
            store.get_ticket("t2")
        # No number was spent, no position taken: the next ticket is number 2.
        (second,) = store.commit(
            [receipt_of(change_of(_open("t3", 0, time.tick())), "email:m2@example.com")]
        )
        assert second.ticket.number == 2
        if Capability.CHANGE_FEED in store.capabilities:
            feed = cast(ChangeFeed, store)
            assert [c.event.ticket_id for c in feed.changes(after=position)] == ["t3"] * len(
                second.events
            )

    def test_a_refused_commit_writes_no_receipt(self, store: Store) -> None:
        inbox = _inbox(store)
        time = _Time()
        (first,) = store.commit([change_of(_open("t1", 0, time.tick()))])
        store.commit([change_of(_note(first.ticket, time.tick()))])
        stale = change_of(_stale_tag(first.ticket, time.tick()))
        fresh = receipt_of(change_of(_open("t2", 0, time.tick())), "email:m1@example.com")
        before = _everything(store)
        for batch in ([fresh, stale], [stale, fresh]):
            with pytest.raises(ConflictError):
                store.commit(batch)
            assert inbox.receipt("email:m1@example.com") is None, (
                "a receipt was written by a commit refused for a stale seq"
            )
            assert _everything(store) == before
        # A stale change carrying the receipt itself.
        with pytest.raises(ConflictError):
            store.commit([receipt_of(stale, "email:m1@example.com", state=ReceiptState.COMMENTED)])
        assert inbox.receipt("email:m1@example.com") is None
        # Refused for a number already taken.
        taken = receipt_of(change_of(_open("t3", 1, time.tick())), "email:m1@example.com")
        with pytest.raises(DuplicateError):
            store.commit([taken])
        assert inbox.receipt("email:m1@example.com") is None
        assert _everything(store) == before
        # The message is still new: it can be committed now.
        store.commit([fresh])
        assert inbox.receipt("email:m1@example.com") == fresh.receipt

    def test_bad_receipts_are_refused_before_anything_is_written(self, store: Store) -> None:
        inbox = _inbox(store)
        time = _Time()
        opening = change_of(_open("t1", 0, time.tick()))
        good = receipt_of(opening, "email:m1@example.com")
        assert good.receipt is not None
        other = receipt_of(change_of(_open("t2", 0, time.tick())), "email:m1@example.com")
        bad: list[list[TicketChange]] = [
            # Only created and commented receipts come with a commit.
            [receipt_of(opening, "email:m1@example.com", state=ReceiptState.SUSPENDED)],
            [receipt_of(opening, "email:m1@example.com", state=ReceiptState.DISCARDED)],
            # It names the change's ticket.
            [attrs.evolve(opening, receipt=attrs.evolve(good.receipt, ticket_id="t9"))],
            [attrs.evolve(opening, receipt=attrs.evolve(good.receipt, ticket_id=None))],
            # It keeps no message once ingested.
            [attrs.evolve(opening, receipt=attrs.evolve(good.receipt, message=message("m1")))],
            # Values forged past their checks.
            [attrs.evolve(opening, receipt=forged(good.receipt, key=" "))],
            [attrs.evolve(opening, receipt=forged(good.receipt, received_at="2026-03-02"))],
            [attrs.evolve(opening, receipt=forged(good.receipt, state="created"))],
            [attrs.evolve(opening, receipt=cast(Receipt, "email:m1@example.com"))],
            # One message makes one change.
            [good, other],
        ]
        before = _everything(store)
        for batch in bad:
            with pytest.raises(ValidationError):
                store.commit(batch)
            assert inbox.receipt("email:m1@example.com") is None, batch
            assert _everything(store) == before
        # A receipt on a change that writes nothing.
        (written,) = store.commit([opening])
        guard = TicketChange(written.ticket, (), written.ticket.seq)
        with pytest.raises(ValidationError):
            store.commit([receipt_of(guard, "email:m1@example.com", state=ReceiptState.COMMENTED)])
        assert inbox.receipt("email:m1@example.com") is None

    # ------------------------------------------------------------ suspended messages

    def test_suspend_keeps_the_whole_message_and_never_overwrites(self, store: Store) -> None:
        inbox = _inbox(store)
        held = suspension("email:auto@example.com")
        assert inbox.suspend(held) == held
        assert inbox.receipt("email:auto@example.com") == held
        kept = inbox.receipt("email:auto@example.com")
        assert kept is not None and kept.message is not None
        assert [a.data for a in kept.message.attachments] == [
            bytes(range(256)),
            b"\x89PNG\r\n\x1a\n\x00",
            b"",
        ]
        # The key is taken: the receipt there is returned, nothing is kept.
        later = attrs.evolve(held, reason="bounce", updated_at=BASE_TIME + _S)
        assert inbox.suspend(later) == held
        assert inbox.receipt("email:auto@example.com") == held
        (written,) = store.commit(
            [receipt_of(change_of(_open("t1", 0, BASE_TIME)), "email:m1@example.com")]
        )
        assert inbox.suspend(suspension("email:m1@example.com")) == written.receipt
        assert inbox.receipt("email:m1@example.com") == written.receipt
        for bad in (
            attrs.evolve(held, key="email:x", state=ReceiptState.CREATED, message=None),
            attrs.evolve(held, key="email:x", message=None),
            attrs.evolve(held, key="email:x", reason=None),
            forged(held, key=""),
            "email:x",
        ):
            with pytest.raises(ValidationError):
                inbox.suspend(bad)  # type: ignore[arg-type]
            assert inbox.receipt("email:x") is None
        assert inbox.suspended() == [held]

    def test_a_release_replaces_the_suspended_receipt(self, store: Store) -> None:
        inbox = _inbox(store)
        held = suspension("email:stranger@example.com", reason="stranger")
        inbox.suspend(held)
        # A refused release leaves it suspended.
        (taken,) = store.commit([change_of(_open("t0", 0, BASE_TIME))])
        clash = receipt_of(
            change_of(_open("t1", taken.ticket.number, BASE_TIME)),
            held.key,
            at=held.received_at,
            reason="stranger",
        )
        with pytest.raises(DuplicateError):
            store.commit([clash])
        assert inbox.receipt(held.key) == held
        # Released: committed as a new ticket, replacing the suspended receipt.
        released = receipt_of(
            change_of(_open("t1", 0, BASE_TIME + _S)),
            held.key,
            at=held.received_at,
            reason="stranger",
        )
        (written,) = store.commit([released])
        assert inbox.receipt(held.key) == released.receipt
        assert inbox.suspended() == []
        assert store.get_ticket("t1") == written.ticket
        # Once released, it is a message received before.
        with pytest.raises(DuplicateError):
            store.commit([receipt_of(change_of(_open("t2", 0, BASE_TIME)), held.key)])
        with pytest.raises(NotFoundError):
            store.get_ticket("t2")
        assert inbox.suspend(held) == released.receipt

    def test_discard_throws_a_suspended_message_away(self, store: Store) -> None:
        inbox = _inbox(store)
        held = suspension("email:bounce@example.com", reason="bounce")
        inbox.suspend(held)
        inbox.suspend(suspension("email:other@example.com"))
        now = BASE_TIME + 3600 * _S
        discarded = inbox.discard(held.key, now=now)
        assert discarded == attrs.evolve(
            held, state=ReceiptState.DISCARDED, message=None, updated_at=now
        )
        assert inbox.receipt(held.key) == discarded
        assert [r.key for r in inbox.suspended()] == ["email:other@example.com"]
        with pytest.raises(InvalidTransitionError):
            inbox.discard(held.key, now=now)
        assert inbox.receipt(held.key) == discarded
        with pytest.raises(NotFoundError):
            inbox.discard("email:unknown@example.com", now=now)
        assert inbox.receipt("email:unknown@example.com") is None
        # A message ingested is not suspended: it cannot be discarded.
        (written,) = store.commit(
            [receipt_of(change_of(_open("t1", 0, BASE_TIME)), "email:m1@example.com")]
        )
        with pytest.raises(InvalidTransitionError):
            inbox.discard("email:m1@example.com", now=now)
        assert inbox.receipt("email:m1@example.com") == written.receipt
        # A discarded message is not ingested again.
        with pytest.raises(DuplicateError):
            store.commit([receipt_of(change_of(_open("t2", 0, BASE_TIME)), held.key)])
        with pytest.raises(ValidationError):
            inbox.discard("email:other@example.com", now=BASE_TIME.replace(tzinfo=None))  # naive
        with pytest.raises(ValidationError):
            inbox.discard("", now=now)
        assert [r.key for r in inbox.suspended()] == ["email:other@example.com"]

    def test_suspended_messages_are_listed_oldest_first_a_page_at_a_time(
        self, store: Store
    ) -> None:
        inbox = _inbox(store)
        shuffle = random.Random(13)
        # Several at one instant (ordered by key), some far apart, given in a random order.
        instants = [BASE_TIME + (n // 3) * _S for n in range(14)] + [
            BASE_TIME - 400 * 86400 * _S,
            BASE_TIME + 10 * 365 * 86400 * _S + 7 * timedelta(microseconds=1),
        ]
        # Keys compare by code point, as Python compares them ("B" before "a", "Z" before
        # "é"): a store sorting text by a language's collation gets the pages wrong.
        firsts = ["a", "B", "é", "Z", "b", "A"]
        held = [
            suspension(f"email:{firsts[n % 6]}{shuffle.random():.6f}-{n}", at)
            for n, at in enumerate(instants)
        ]
        order = list(held)
        shuffle.shuffle(order)
        for receipt in order:
            inbox.suspend(receipt)
        # One released and one discarded are listed no more.
        released, gone = order[0], order[1]
        store.commit(
            [
                receipt_of(
                    change_of(_open("t1", 0, BASE_TIME)), released.key, at=released.received_at
                )
            ]
        )
        inbox.discard(gone.key, now=BASE_TIME)
        expected = sorted(
            (r for r in held if r.key not in (released.key, gone.key)),
            key=lambda r: (r.received_at, r.key),
        )
        assert inbox.suspended(limit=100) == expected
        for size in (1, 3, 5):
            pages: list[list[Receipt]] = [inbox.suspended(limit=size)]
            while len(pages[-1]) == size:
                pages.append(inbox.suspended(limit=size, after=pages[-1][-1].key))
                assert len(pages) <= len(expected) + 1, "paging does not end"
            assert [r for page in pages for r in page] == expected
        # After a key no longer suspended: the ones after where it was.
        position = sorted(held, key=lambda r: (r.received_at, r.key)).index(released)
        after = [
            r for r in expected if (r.received_at, r.key) > (released.received_at, released.key)
        ]
        assert inbox.suspended(after=released.key) == after
        assert len(after) < len(expected) or position == 0
        with pytest.raises(NotFoundError):
            inbox.suspended(after="email:unknown@example.com")
        for limit in (0, -1, True, "5"):
            with pytest.raises(ValidationError):
                inbox.suspended(limit=limit)  # type: ignore[arg-type]

    # ------------------------------------------------------------ kept, and raced for

    def test_receipts_survive_reopening(
        self, make_store: StoreFactory, reopen_store: ReopenStore
    ) -> None:
        store = make_store()
        try:
            inbox = _inbox(store)
            if Capability.PERSISTENT not in store.capabilities:
                pytest.skip("the store does not declare Capability.PERSISTENT")
            (written,) = store.commit(
                [receipt_of(change_of(_open("t1", 0, BASE_TIME)), "email:m1@example.com")]
            )
            held = [suspension(f"email:s{n}@example.com", BASE_TIME + n * _S) for n in range(3)]
            for receipt in held:
                inbox.suspend(receipt)
            discarded = inbox.discard(held[1].key, now=BASE_TIME + 60 * _S)
        finally:
            store.close()
        reopened = reopen_store(store)
        try:
            inbox = cast(Inbox, reopened)
            assert inbox.receipt("email:m1@example.com") == written.receipt
            assert inbox.receipt(held[1].key) == discarded
            assert inbox.suspended() == [held[0], held[2]]
            with pytest.raises(DuplicateError):
                reopened.commit(
                    [receipt_of(change_of(_open("t2", 0, BASE_TIME)), "email:m1@example.com")]
                )
            reopened.commit([receipt_of(change_of(_open("t2", 0, BASE_TIME)), held[0].key)])
            assert inbox.suspended() == [held[2]]
        finally:
            reopened.close()

    def test_threads_ingesting_one_message_make_one_ticket(self, store: Store) -> None:
        inbox = _inbox(store)
        if not self.thread_safe:
            pytest.skip("the suite says this store must not be shared between threads")
        for round_ in range(3):
            key = f"email:race{round_}@example.com"
            if round_ == 2:
                inbox.suspend(suspension(key))  # a release raced for
            outcomes = _race_threads(store, key, round_)
            assert sorted(outcomes) == ["DuplicateError"] * 5 + ["won"], outcomes
            found = [
                t for t in store.query(TicketQuery(limit=100)) if t.id.startswith(f"r{round_}-")
            ]
            assert len(found) == 1
            kept = inbox.receipt(key)
            assert kept is not None and kept.ticket_id == found[0].id
        numbers = sorted(t.number for t in store.query(TicketQuery(limit=100)))
        assert numbers == [1, 2, 3], "a refused commit spent a number"

    def test_processes_ingesting_one_message_make_one_ticket(
        self, store: Store, reopen_elsewhere: ReopenElsewhere | None
    ) -> None:
        inbox = _inbox(store)
        if Capability.MULTIPROCESS not in store.capabilities:
            pytest.skip("the store does not declare Capability.MULTIPROCESS")
        if reopen_elsewhere is None:
            pytest.skip("the suite names no `reopen_elsewhere` fixture to open it in processes")
        opener = reopen_elsewhere(store)
        with ProcessPoolExecutor(_PROCESSES, mp_context=get_context("spawn")) as pool:
            # Warm the processes up (each imports helpkit once), then race.
            list(pool.map(_clock.sleep, [0.0] * _PROCESSES))
            start = _clock.time() + 1.0
            outcomes = list(
                pool.map(
                    functools.partial(_race, opener, key="email:race@example.com", start=start),
                    [f"p{n}" for n in range(_PROCESSES)],
                )
            )
        assert sorted(outcomes) == ["DuplicateError"] * (_PROCESSES - 1) + ["won"], outcomes
        tickets = list(store.query(TicketQuery(limit=100)))
        assert [t.number for t in tickets] == [1]
        kept = inbox.receipt("email:race@example.com")
        assert kept is not None and kept.ticket_id == tickets[0].id
