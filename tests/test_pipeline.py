"""The command pipeline under the facade (issue #10): versions, conflicts, retries, and a
command cost that does not grow with the ticket's history."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpkit import (
    Actor,
    BusinessCalendar,
    ConflictError,
    DeskConfig,
    Helpdesk,
    Priority,
    ReadOnlyTicketError,
    StoreError,
    Ticket,
    ValidationError,
    retry_on_conflict,
)
from helpkit.events import CommentAdded, Event
from helpkit.pipeline import Turns
from helpkit.ports import Store, TicketChange
from helpkit.sla import SlaFold, SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock

ANN = Actor.agent("ann")
BOB = Actor.agent("bob")
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
POLICY = SlaPolicy(
    "std",
    BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="Europe/Paris"),
    dict.fromkeys(
        Priority,
        Targets(
            first_response=timedelta(hours=4),
            next_response=timedelta(hours=8),
            periodic_update=timedelta(hours=16),
            resolution=timedelta(hours=40),
        ),
    ),
    warn_at=(0.5, 0.75),
)


class CountingStore(MemoryStore):
    """The reference store, counting the events it hands out and the commits it takes."""

    def __init__(self) -> None:
        super().__init__()
        self.events_read = 0
        self.commits = 0

    def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
        found = super().events(ticket_id, after_seq=after_seq)
        self.events_read += len(found)
        return found

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        self.commits += 1
        return super().commit(changes)


def _desk(store: str | Store = "memory://", **options: Any) -> Helpdesk:
    desk = Helpdesk(
        store,
        config=DeskConfig(sla=SlaPolicySet([POLICY])),
        clock=FrozenClock(START),
        entry_points=False,
        **options,
    )
    desk.add_agent("ann", "Ann")
    desk.add_agent("bob", "Bob")
    desk.create_contact("Carol", emails=["carol@acme.example"], contact_id="carol")
    return desk


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Helpdesk]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    with _desk(url) as opened:
        yield opened


# ---------------------------------------------------------------- versions and conflicts


def test_a_stale_version_raises_with_the_events_since(desk: Helpdesk) -> None:
    seen = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    desk.reply(seen, BOB, "On it")  # a colleague, meanwhile
    with pytest.raises(ConflictError) as caught:
        desk.reply(seen, ANN, "Looking", expected_seq=seen.seq)
    error = caught.value
    assert (error.ticket_id, error.expected_seq, error.current_seq) == (seen.id, 2, 4)
    assert [e.TYPE for e in error.events] == ["comment_added", "status_changed"]
    assert error.events[0].actor == BOB
    assert "comment_added by agent:bob" in str(error)
    assert len(desk.history(seen)) == 4  # nothing written


def test_the_current_version_writes(desk: Helpdesk) -> None:
    seen = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    after = desk.note(seen, ANN, "checked the logs", expected_seq=seen.seq)
    assert after.seq == seen.seq + 1
    tagged = desk.tag(after, ANN, "vpn", expected_seq=after.seq)
    assert tagged.tags == {"vpn"}


def test_every_ticket_command_takes_a_version(desk: Helpdesk) -> None:
    seen = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    other = desk.open_ticket(ANN, requester="carol", subject="Mail", body="slow")
    desk.note(seen, BOB, "moved on")
    stale = seen.seq
    calls: list[Callable[[], object]] = [
        lambda: desk.reply(seen, ANN, "x", expected_seq=stale),
        lambda: desk.note(seen, ANN, "x", expected_seq=stale),
        lambda: desk.assign(seen, ANN, agent="ann", expected_seq=stale),
        lambda: desk.set_status(seen, ANN, "pending", expected_seq=stale),
        lambda: desk.resolve(seen, ANN, expected_seq=stale),
        lambda: desk.close(seen, ANN, expected_seq=stale),
        lambda: desk.prioritize(seen, ANN, impact="high", expected_seq=stale),
        lambda: desk.set_subject(seen, ANN, "VPN down", expected_seq=stale),
        lambda: desk.tag(seen, ANN, "x", expected_seq=stale),
        lambda: desk.untag(seen, ANN, "x", expected_seq=stale),
        lambda: desk.follow(seen, ANN, expected_seq=stale),
        lambda: desk.unfollow(seen, ANN, expected_seq=stale),
        lambda: desk.set_fields(seen, ANN, {}, expected_seq=stale),
        lambda: desk.link(seen, ANN, other, expected_seq=stale),
        lambda: desk.unlink(seen, ANN, other, expected_seq=stale),
        lambda: desk.merge(seen, other, ANN, expected_seq=stale),
    ]
    before = desk.history(seen)
    for call in calls:
        with pytest.raises(ConflictError):
            call()
    assert desk.history(seen) == before


def test_bad_versions_are_validation_errors(desk: Helpdesk) -> None:
    seen = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    for bad in (-1, True, "2", 2**64, 1.0):
        with pytest.raises(ValidationError, match="expected_seq"):
            desk.note(seen, ANN, "x", expected_seq=bad)  # type: ignore[arg-type]


def test_strict_versions_take_a_ticket_object_as_its_version(tmp_path: Path) -> None:
    desk = _desk(strict_versions=True)
    seen = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    desk.note(seen, BOB, "meanwhile")
    with pytest.raises(ConflictError) as caught:
        desk.reply(seen, ANN, "stale page")
    assert [e.actor for e in caught.value.events] == [BOB]
    # An id or a number means "the ticket as it is now", strict or not.
    assert desk.reply(seen.id, ANN, "fresh").seq == 5
    with pytest.raises(ValidationError, match="strict_versions"):
        _desk(strict_versions="yes")


def test_without_a_version_a_lost_race_is_decided_again() -> None:
    class RacingStore(MemoryStore):
        """Another writer gets in between the first read and the first commit."""

        raced = False

        def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
            if not self.raced and changes and changes[0].expected_seq > 0:
                self.raced = True
                ticket = self.get_ticket(changes[0].ticket.id)
                other.note(ticket.id, BOB, "sneaked in")
            return super().commit(changes)

    store = RacingStore()
    desk = _desk(store)
    other = Helpdesk(store, clock=FrozenClock(START), entry_points=False)
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    after = desk.reply(ticket, ANN, "Looking")
    assert [e.TYPE for e in desk.history(ticket)[-3:]] == [
        "comment_added",
        "comment_added",
        "status_changed",
    ]
    assert after.public_comments == 2 and after.internal_notes == 1


def test_a_decision_is_made_again_on_the_fresh_state() -> None:
    class ClosingStore(MemoryStore):
        """A colleague closes the ticket just before our commit."""

        closed = False

        def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
            if not self.closed and changes and changes[0].expected_seq > 0:
                self.closed = True
                other.close(changes[0].ticket.id, BOB)
            return super().commit(changes)

    store = ClosingStore()
    desk = _desk(store)
    other = Helpdesk(store, clock=FrozenClock(START), entry_points=False)
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    with pytest.raises(ReadOnlyTicketError):
        desk.tag(ticket, ANN, "late")


def test_retry_on_conflict_decides_again_until_it_wins(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    seen: list[ConflictError] = []
    interference = iter([True, True, False])

    def tag_as_seen() -> Ticket:
        current = desk.ticket(ticket.id)
        if next(interference):
            desk.note(ticket.id, BOB, "meanwhile")
        return desk.tag(current, ANN, "vip", expected_seq=current.seq)

    tagged = retry_on_conflict(tag_as_seen, attempts=3, on_conflict=seen.append)
    assert tagged.tags == {"vip"}
    assert len(seen) == 2
    assert all(e.events[0].TYPE == "comment_added" for e in seen)


def test_retry_on_conflict_gives_up_with_the_last_conflict(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")

    def always_stale() -> Ticket:
        current = desk.ticket(ticket.id)
        desk.note(ticket.id, BOB, "meanwhile")
        return desk.tag(current, ANN, "vip", expected_seq=current.seq)

    with pytest.raises(ConflictError):
        retry_on_conflict(always_stale, attempts=2)
    assert desk.ticket(ticket).tags == frozenset()
    with pytest.raises(ValidationError):
        retry_on_conflict(always_stale, attempts=0)


# ---------------------------------------------------------------- cost and history


def _long_ticket(desk: Helpdesk, events: int) -> Ticket:
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    while ticket.seq < events:
        ticket = desk.reply(ticket, ANN, "Any news?", status="pending")
        ticket = desk.requester_reply(ticket, "Still broken")
        ticket = desk.note(ticket, BOB, "escalating soon")
    return ticket


def test_a_command_on_a_long_ticket_reads_no_history() -> None:
    store = CountingStore()
    desk = _desk(store)
    ticket = _long_ticket(desk, 300)
    store.events_read = 0
    for _ in range(5):
        ticket = desk.reply(ticket, ANN, "Update", status="pending")
        ticket = desk.requester_reply(ticket, "Thanks")
    assert store.events_read == 0


def test_a_new_desk_reads_a_long_history_once_then_only_what_others_wrote() -> None:
    store = CountingStore()
    first = _desk(store)
    ticket = _long_ticket(first, 120)
    second = Helpdesk(
        store,
        config=DeskConfig(sla=SlaPolicySet([POLICY])),
        clock=FrozenClock(START),
        entry_points=False,
    )
    store.events_read = 0
    ticket = second.note(ticket, ANN, "first command of this process")
    assert store.events_read == ticket.seq - 1  # the history, once
    first.note(ticket, BOB, "another process writes")
    first.note(ticket, BOB, "and again")
    store.events_read = 0
    second.note(ticket.id, ANN, "back here")
    assert store.events_read == 2  # only what the other desk wrote


def test_the_kept_fold_gives_the_schedule_of_the_whole_history() -> None:
    store = CountingStore()
    desk = _desk(store)
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    for step in range(40):
        clock.advance(timedelta(minutes=47))
        if step % 4 == 0:
            ticket = desk.reply(ticket, ANN, "Any news?", status="pending")
        elif step % 4 == 1:
            ticket = desk.requester_reply(ticket, "Still broken")
        elif step % 4 == 2:
            ticket = desk.prioritize(ticket, ANN, impact="high" if step % 8 == 2 else "low")
        else:
            desk.sweep()
            ticket = desk.ticket(ticket)
        whole = SlaFold.of(store.events(ticket.id), POLICY).schedule()
        assert (ticket.next_deadline, ticket.next_check) == whole


def test_no_fold_cache_still_gives_the_same_schedule() -> None:
    cached, uncached = _desk(), _desk(fold_cache=0)
    for desk in (cached, uncached):
        ticket = _long_ticket(desk, 30)
        desk.reply(ticket, ANN, "done", status="solved")
    a = cached.tickets().items[0]
    b = uncached.tickets().items[0]
    assert (a.next_deadline, a.next_check, a.sla_policy) == (
        b.next_deadline,
        b.next_check,
        b.sla_policy,
    )


def test_one_commit_per_command_and_per_sweep_batch() -> None:
    store = CountingStore()
    desk = _desk(store)
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    for _ in range(12):
        desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    store.commits = 0
    desk.reply(desk.tickets().items[0], ANN, "hello")
    assert store.commits == 1
    clock.advance(timedelta(days=3))
    store.commits = 0
    report = desk.sweep(batch=5)
    assert report.examined == 12
    assert store.commits == 3  # 12 due tickets, 5 a batch
    assert desk.sweep(batch=5).examined == 0


def test_a_sweep_batch_that_loses_a_race_redoes_its_tickets_one_by_one() -> None:
    class RacingStore(CountingStore):
        armed = True

        def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
            if self.armed and len(changes) > 1:
                self.armed = False
                other.note(changes[1].ticket.id, BOB, "meanwhile")
            return super().commit(changes)

    store = RacingStore()
    desk = _desk(store)
    other = Helpdesk(store, clock=FrozenClock(START), entry_points=False)
    for _ in range(4):
        desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(days=3))
    report = desk.sweep(batch=10)
    assert report.examined == 4 and report.conflicts == 1
    again = desk.sweep()
    assert again.examined == 0
    for ticket in desk.tickets().items:
        breached = [e for e in desk.history(ticket) if e.TYPE == "sla_breached"]
        assert len({(e.metric, e.cycle) for e in breached}) == len(breached)  # type: ignore[attr-defined]


def test_comments_keep_their_order_through_retries() -> None:
    desk = _desk()
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    desk.note(ticket, ANN, "one")
    desk.note(ticket, ANN, "two")
    bodies = [e.comment.body for e in desk.history(ticket) if isinstance(e, CommentAdded)]
    assert bodies == ["drops", "one", "two"]


# ---------------------------------------------------------------- lost attempts


class LosingStore(MemoryStore):
    """The reference store, refusing the next ``losses`` commits as a concurrent writer would."""

    def __init__(self) -> None:
        super().__init__()
        self.losses = 0

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        if self.losses:
            self.losses -= 1
            raise ConflictError("a concurrent write won")
        return super().commit(changes)


@pytest.mark.parametrize("losses", [1, 3, 7])
def test_a_lost_command_waits_longer_each_time_then_lands(losses: int) -> None:
    store = LosingStore()
    desk = _desk(store)
    waits: list[float] = []
    desk._pipeline._sleep = waits.append
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    store.losses = losses
    after = desk.note(ticket, ANN, "checked")
    assert after.internal_notes == 1
    assert len(waits) == losses
    for attempt, wait in enumerate(waits, start=1):
        assert 0.0 <= wait <= min(0.001 * 2 ** (attempt - 1), 0.05)


def test_a_command_losing_every_attempt_raises_after_eight_and_writes_nothing() -> None:
    store = LosingStore()
    desk = _desk(store)
    waits: list[float] = []
    desk._pipeline._sleep = waits.append
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    store.losses = 8
    with pytest.raises(ConflictError):
        desk.note(ticket, ANN, "checked")
    assert len(waits) == 7  # no wait after the last attempt
    assert store.losses == 0
    assert desk.ticket(ticket).seq == ticket.seq


def test_writers_of_one_ticket_in_one_process_take_turns_and_never_conflict() -> None:
    class SlowReadingStore(MemoryStore):
        """Reads take a moment (as a real database's do), so without turns every thread's
        command would load the same version and all but one would lose at commit."""

        conflicts = 0

        def get_ticket(self, ticket_id: str) -> Ticket:
            ticket = super().get_ticket(ticket_id)
            time.sleep(0.001)  # the answer travels back; other writers move on meanwhile
            return ticket

        def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
            try:
                return super().commit(changes)
            except ConflictError:
                self.conflicts += 1
                raise

    store = SlowReadingStore()
    desk = _desk(store)
    ticket = desk.open_ticket(ANN, requester="carol", subject="VPN", body="drops")
    other = desk.open_ticket(ANN, requester="carol", subject="Printer", body="jams")

    def work(index: int) -> None:
        for step in range(5):
            desk.note(ticket, ANN, f"{index}.{step}")
            desk.tag(other, ANN, f"t{index}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert store.conflicts == 0
    assert desk.ticket(ticket).internal_notes == 40
    assert desk.ticket(other).tags == {f"t{i}" for i in range(8)}


def _free(lock: Any) -> bool:
    """Whether another thread can take ``lock`` now (it then gives it back)."""
    got: list[bool] = []

    def take() -> None:
        got.append(lock.acquire(timeout=0.05))
        if got[-1]:
            lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(5)
    return got == [True]


@pytest.mark.parametrize("ids", [[], ["t1"], ["t1", "t2", "t1"], [f"t{i}" for i in range(200)]])
def test_turns_hold_the_stripes_of_their_tickets_until_the_end_and_no_other(
    ids: list[str],
) -> None:
    turns = Turns()
    wanted = {hash(ticket_id) % Turns.STRIPES for ticket_id in ids}
    locks = turns._locks
    with turns.hold(ids):
        assert [not _free(lock) for lock in locks] == [i in wanted for i in range(len(locks))]
        with turns.hold(ids):  # the same thread may take its turns again (nested commands)
            pass
        assert [not _free(lock) for lock in locks] == [i in wanted for i in range(len(locks))]
    assert all(_free(lock) for lock in locks)


def test_turns_given_back_when_a_command_fails_or_taking_one_fails() -> None:
    turns = Turns()
    ids = [f"t{i}" for i in range(10)]
    with pytest.raises(ValidationError), turns.hold(ids):
        raise ValidationError("refused")
    assert all(_free(lock) for lock in turns._locks)

    class Failing:
        def acquire(self) -> None:
            raise KeyboardInterrupt

    stripes = sorted({hash(ticket_id) % Turns.STRIPES for ticket_id in ids})
    turns._locks[stripes[-1]] = Failing()  # type: ignore[call-overload]
    with pytest.raises(KeyboardInterrupt), turns.hold(ids):
        pass
    assert all(_free(turns._locks[s]) for s in stripes[:-1])


class _Answering(MemoryStore):
    """A store whose commit returns ``answer`` (of the changes it wrote)."""

    def __init__(self, answer: Callable[[list[TicketChange]], object]) -> None:
        super().__init__()
        self.answer = answer

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        return self.answer(super().commit(changes))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        (lambda written: written, True),
        (tuple, True),
        (lambda written: None, False),
        (lambda written: iter(written), False),
        (lambda written: {0: written[0]}, False),
        (lambda written: written * 2, False),
        (lambda written: [], False),
        (lambda written: ["x"], False),
    ],
)
def test_what_a_store_commit_returns_is_checked_whatever_its_type(
    answer: Callable[[list[TicketChange]], object], accepted: bool
) -> None:
    desk = _desk(_Answering(answer))
    if accepted:
        assert desk.open_ticket(ANN, requester="carol", subject="VPN").number == 1
    else:
        with pytest.raises(StoreError, match=r"\.commit returned"):
            desk.open_ticket(ANN, requester="carol", subject="VPN")
