"""The relay and the outbox through the facade: what is derived, sent, retried, dead-lettered,
revived and recorded (docs/delivery.md). Reliability under crashes and concurrent relays is in
tests/test_relay_reliability.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import (
    Actor,
    ConfigError,
    ConflictError,
    Helpdesk,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from helpkit.channels.recording import RecordingChannel
from helpkit.config import DeskConfig
from helpkit.events import DeliveryFailed, DeliveryRevived, MessageSent
from helpkit.ports import DeliveryState, TicketChange
from helpkit.relay import RetryPolicy
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock

MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ANN = Actor.agent("ann")
QUICK = RetryPolicy(attempts=3, first=timedelta(minutes=1), factor=2.0, jitter=0.0)


def make(
    *channels: RecordingChannel,
    store: str = "memory://",
    retry: RetryPolicy = QUICK,
    delivery: str = "outbox",
    reply_channel: str | None = None,
) -> tuple[Helpdesk, FrozenClock]:
    clock = FrozenClock(MON)
    desk = Helpdesk(
        store,
        clock=clock,
        channels=list(channels) or [RecordingChannel("email")],
        entry_points=False,
        retry=retry,
        delivery=delivery,
        config=DeskConfig(reply_channel=reply_channel),
    )
    desk.add_agent("ann", "Ann Agent", email="ann@help.example")
    desk.add_agent("tom", "Tom Tech", email="tom@help.example")
    return desk, clock


def ticket_for(desk: Helpdesk, *, channel: str = "email", body: str = "VPN down") -> str:
    bob = desk.create_contact("Bob", emails=["bob@example.com"])
    ticket = desk.open_ticket(
        Actor.contact(bob.id), requester=bob, subject="VPN", body=body, channel=channel
    )
    return ticket.id


def types(desk: Helpdesk, ticket: str) -> list[str]:
    return [e.TYPE for e in desk.history(ticket)]


def test_a_reply_waits_in_the_outbox_until_the_relay_runs() -> None:
    email = RecordingChannel("email")
    desk, _ = make(email)
    ticket = ticket_for(desk)
    desk.reply(ticket, ANN, "Looking into it")
    assert email.messages == []
    # Deliveries are derived from the change feed by the relay, not by the command.
    assert desk.deliveries() == []
    report = desk.deliver_pending()
    assert (report.derived, report.sent, report.retried, report.dead) == (1, 1, 0, 0)
    [message] = email.messages
    assert [r.address for r in message.to] == ["bob@example.com"]
    assert message.body == "Looking into it" and message.kind == "reply"
    sent = desk.history(ticket)[-1]
    assert isinstance(sent, MessageSent)
    assert sent.channel == "email" and sent.attempt == 1 and sent.actor.id == "relay"
    assert sent.external_id is not None and sent.delivery_id == message.idempotency_key
    [delivery] = desk.deliveries(ticket=ticket)
    assert (delivery.state, delivery.kind, delivery.channel) == (
        DeliveryState.SENT,
        "reply",
        "email",
    )
    assert delivery.external_id == sent.external_id and delivery.id.startswith(ticket)
    assert desk.deliver_pending().handled == 0  # nothing twice


def test_notes_are_never_sent_and_the_author_does_not_hear_himself() -> None:
    email = RecordingChannel("email")
    desk, _ = make(email)
    ticket = ticket_for(desk)
    desk.note(ticket, ANN, "internal")
    desk.follow(ticket, ANN)
    desk.follow(ticket, ANN, Actor.agent("tom"))
    desk.reply(ticket, ANN, "public")
    desk.requester_reply(ticket, "thanks")
    desk.deliver_pending()
    to = [sorted(r.address or "" for r in m.to) for m in email.messages]
    # Ann's reply: Bob and Tom (not Ann); Bob's message: Ann and Tom (not Bob); the opening
    # message by Bob had no one else to tell.
    assert to == [
        ["bob@example.com", "tom@help.example"],
        ["ann@help.example", "tom@help.example"],
    ]
    assert all(m.body != "internal" for m in email.messages)


def test_replies_thread_on_the_ids_the_channel_gave() -> None:
    email = RecordingChannel("email")
    desk, _ = make(email)
    ticket = ticket_for(desk)
    desk.requester_reply(ticket, "more detail", external_id="<m1@example.com>")
    desk.reply(ticket, ANN, "first answer")
    desk.deliver_pending()
    first = email.messages[-1]
    assert first.in_reply_to == "<m1@example.com>"
    assert first.references == ("<m1@example.com>",)
    sent = [e for e in desk.history(ticket) if isinstance(e, MessageSent)]
    assert desk.ticket(ticket).last_message_id == sent[-1].external_id
    desk.reply(ticket, ANN, "second answer")
    desk.deliver_pending()
    assert email.messages[-1].in_reply_to == sent[-1].external_id


def test_the_comments_channel_is_honoured() -> None:
    email, sms = RecordingChannel("email"), RecordingChannel("sms")
    desk, _ = make(email, sms)
    ticket = ticket_for(desk)
    desk.reply(ticket, ANN, "by text", channel="sms")
    desk.reply(ticket, ANN, "by mail")  # the reply's channel defaults to the ticket's
    desk.deliver_pending()
    assert [m.body for m in sms.messages] == ["by text"]
    assert [m.body for m in email.messages] == ["by mail"]
    sent = [e.channel for e in desk.history(ticket) if isinstance(e, MessageSent)]
    assert sent == ["sms", "email"]


def test_a_reply_through_an_unknown_channel_is_refused_before_anything_is_written() -> None:
    desk, _ = make(RecordingChannel("email"))
    ticket = ticket_for(desk)
    before = desk.ticket(ticket)
    with pytest.raises(ValidationError, match="no channel 'fax'"):
        desk.reply(ticket, ANN, "hello", channel="fax")
    assert desk.ticket(ticket) == before


def test_no_matching_channel_is_a_recorded_dead_letter_never_silence() -> None:
    email, chat = RecordingChannel("email"), RecordingChannel("chat")
    desk, _ = make(email, chat)
    ticket = ticket_for(desk, channel="web")
    desk.reply(ticket, ANN, "hello")
    report = desk.deliver_pending()
    assert (report.sent, report.dead) == (0, 1)
    failed = desk.history(ticket)[-1]
    assert isinstance(failed, DeliveryFailed)
    assert failed.final and failed.channel is None and failed.reason.startswith("no channel")
    [dead] = desk.deliveries(state="dead")
    assert dead.last_error is not None and dead.last_error.startswith("no channel")
    assert email.attempts == chat.attempts == 0


def test_the_reply_channel_takes_what_no_channel_answers() -> None:
    email, chat = RecordingChannel("email"), RecordingChannel("chat")
    desk, _ = make(email, chat, reply_channel="email")
    ticket = ticket_for(desk, channel="web")
    desk.reply(ticket, ANN, "hello")
    assert desk.deliver_pending().sent == 1
    assert [m.body for m in email.messages] == ["hello"]


def test_a_transient_failure_is_retried_with_backoff_then_sent() -> None:
    email = RecordingChannel("email", fail=2)
    desk, clock = make(email)
    ticket = ticket_for(desk)
    desk.reply(ticket, ANN, "hello")
    assert desk.deliver_pending().retried == 1
    first = desk.history(ticket)[-1]
    assert isinstance(first, DeliveryFailed) and not first.final and first.attempt == 1
    assert first.next_attempt_at == MON + timedelta(minutes=1)
    assert "ConnectionError" in first.reason
    assert desk.deliver_pending().handled == 0  # not due yet
    clock.advance(minutes=1)
    assert desk.deliver_pending().retried == 1
    second = desk.history(ticket)[-1]
    assert isinstance(second, DeliveryFailed) and second.attempt == 2
    assert second.next_attempt_at == MON + timedelta(minutes=3)  # 1 min, then 2 min
    clock.advance(minutes=2)
    assert desk.deliver_pending().sent == 1
    sent = desk.history(ticket)[-1]
    assert isinstance(sent, MessageSent) and sent.attempt == 3
    assert len(email.messages) == 1 and email.attempts == 3


def test_a_delivery_that_always_fails_is_dead_then_revived_and_sent() -> None:
    email = RecordingChannel("email", fail=10**6)
    desk, clock = make(email)
    ticket = ticket_for(desk)
    desk.reply(ticket, ANN, "hello")
    for _ in range(3):
        desk.deliver_pending()
        clock.advance(hours=1)
    failures = [e for e in desk.history(ticket) if isinstance(e, DeliveryFailed)]
    assert [(f.attempt, f.final) for f in failures] == [(1, False), (2, False), (3, True)]
    assert failures[-1].next_attempt_at is None
    [dead] = desk.deliveries(state="dead")
    assert dead.attempts == 3
    assert desk.deliver_pending().handled == 0  # the dead stay dead
    email.fail = 0
    revived = desk.retry_delivery(dead.id, ANN)
    assert revived.state is DeliveryState.PENDING and revived.attempts == 0
    record = desk.history(ticket)[-1]
    assert isinstance(record, DeliveryRevived) and record.actor == ANN
    report = desk.deliver_pending()
    # Claimed a second time, the delivery is checked against the audit trail: the final
    # failure before the revival does not count.
    assert (report.sent, report.recovered) == (1, 0)
    sent = desk.history(ticket)[-1]
    assert isinstance(sent, MessageSent) and sent.attempt == 1
    assert desk.deliveries(state="dead") == []


def test_retry_refuses_what_is_not_dead() -> None:
    desk, _ = make()
    ticket = ticket_for(desk)
    desk.reply(ticket, ANN, "hello")
    desk.deliver_pending()
    [sent] = desk.deliveries()
    with pytest.raises(InvalidTransitionError, match="only a dead one"):
        desk.retry_delivery(sent.id)
    with pytest.raises(NotFoundError):
        desk.retry_delivery("no-such-delivery")
    with pytest.raises(ValidationError):
        desk.deliveries(state="lost")
    with pytest.raises(NotFoundError):
        desk.retry_delivery(sent.id, Actor.agent("nobody"))


def test_sync_delivery_sends_before_the_command_returns() -> None:
    email = RecordingChannel("email")
    desk, _ = make(email, delivery="sync")
    ticket = ticket_for(desk)
    replied = desk.reply(ticket, ANN, "hello")
    assert [m.body for m in email.messages] == ["hello"]
    # The ticket returned already holds the relay's record.
    assert replied == desk.ticket(ticket)
    assert replied.last_message_id is not None


def test_relay_records_never_make_a_callers_version_stale() -> None:
    desk, _ = make()
    ticket = ticket_for(desk)
    seen = desk.reply(ticket, ANN, "hello")
    desk.deliver_pending()  # records message_sent: the ticket's seq moves on
    assert desk.ticket(ticket).seq == seen.seq + 1
    resolved = desk.resolve(ticket, ANN, expected_seq=seen.seq)
    assert resolved.status == "solved"
    # A change a person made still conflicts.
    with pytest.raises(ConflictError):
        desk.note(ticket, ANN, "late", expected_seq=seen.seq)


def test_sla_notices_go_to_the_agents_the_rules_name() -> None:
    from helpkit.calendar import BusinessCalendar
    from helpkit.escalation import EscalationRules
    from helpkit.priority import Priority
    from helpkit.sla import SlaPolicy, SlaPolicySet, Targets

    office = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
    policy = SlaPolicy("std", office, {p: Targets(resolution=timedelta(hours=8)) for p in Priority})
    rules = EscalationRules.from_list(
        [{"name": "warn", "metric": "resolution", "at": 0.75, "actions": ["notify_assignee"]}]
    )
    email = RecordingChannel("email")
    clock = FrozenClock(MON)
    desk = Helpdesk(
        clock=clock,
        channels=[email],
        entry_points=False,
        config=DeskConfig(sla=SlaPolicySet([policy]), escalation=rules),
    )
    desk.add_agent("ann", "Ann Agent", email="ann@help.example")
    ticket = ticket_for(desk)
    desk.assign(ticket, ANN, agent="ann")
    clock.advance(hours=7)
    assert desk.sweep().warnings == 1
    assert desk.deliver_pending().sent == 1
    [notice] = email.messages
    assert notice.kind == "sla_notice" and [r.address for r in notice.to] == ["ann@help.example"]
    assert "75%" in notice.body


def test_a_desk_without_channels_delivers_nothing_and_needs_no_outbox() -> None:
    desk = Helpdesk(clock=FrozenClock(MON), entry_points=False)
    desk.add_agent("ann", "Ann Agent", email="ann@help.example")
    ticket = ticket_for(desk)
    desk.reply(ticket, ANN, "hello")
    assert desk.deliver_pending().handled == 0
    assert "message_sent" not in types(desk, ticket)
    with pytest.raises(ConfigError):
        desk.follow_deliveries(__import__("threading").Event())


def test_a_store_without_an_outbox_cannot_deliver() -> None:
    class NoOutbox(MemoryStore):
        capabilities = frozenset()

    with pytest.raises(ConfigError, match="no change feed or no outbox"):
        Helpdesk(NoOutbox(), channels=[RecordingChannel("email")], entry_points=False)


def test_the_sqlite_outbox_survives_the_process(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path}/desk.db"
    email = RecordingChannel("email")
    desk, _ = make(email, store=url)
    ticket = ticket_for(desk)
    desk.reply(ticket, ANN, "hello")
    desk.__exit__(None, None, None)
    with Helpdesk(url, clock=FrozenClock(MON), channels=[email], entry_points=False) as again:
        assert again.deliver_pending().sent == 1
        assert [m.body for m in email.messages] == ["hello"]
        assert types(again, ticket)[-1] == "message_sent"


@given(st.integers(1, 20), st.floats(1.0, 4.0), st.floats(0.0, 0.99), st.floats(0.0, 0.999))
def test_backoff_grows_stays_bounded_and_jitter_only_shortens(
    failures: int, factor: float, jitter: float, draw: float
) -> None:
    policy = RetryPolicy(
        first=timedelta(seconds=30), factor=factor, longest=timedelta(hours=1), jitter=jitter
    )
    wait = policy.delay(failures, lambda: draw)
    full = min(timedelta(seconds=30) * factor ** (failures - 1), timedelta(hours=1))
    assert full * (1 - jitter) - timedelta(microseconds=1) <= wait <= full
    assert policy.delay(failures + 1, lambda: 0.0) >= policy.delay(failures, lambda: 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"first": timedelta(0)},
        {"longest": timedelta(seconds=-1)},
        {"factor": 0.5},
        {"jitter": 1.0},
    ],
)
def test_a_bad_retry_policy_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises((ConfigError, ValidationError)):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_the_delivery_mode_is_checked() -> None:
    with pytest.raises(ValidationError, match="'outbox' or 'sync'"):
        Helpdesk(delivery="later", entry_points=False)


@pytest.mark.parametrize("settled_commit", [True, False])
def test_an_outcome_that_cannot_be_recorded_is_sent_again_after_the_lease(
    settled_commit: bool,
) -> None:
    """The records' commit settling the deliveries (Capability.SETTLED_COMMIT), and a store
    without it (settled in a transaction of their own): the same."""
    from helpkit.events import Event
    from helpkit.ports import Capability

    class Busy(MemoryStore):
        """Refuses any commit of the relay's records for one ticket, as if it kept changing."""

        busy: str | None = None
        if not settled_commit:
            capabilities = MemoryStore.capabilities - {Capability.SETTLED_COMMIT}

        def _refuse(self, changes: Sequence[TicketChange]) -> None:
            for change in changes:
                if change.ticket.id == self.busy and any(
                    isinstance(e, Event) and e.BOOKKEEPING for e in change.events
                ):
                    raise ConflictError(f"ticket {self.busy} changed meanwhile")

        def commit(self, changes):  # type: ignore[no-untyped-def]
            self._refuse(changes)
            return super().commit(changes)

        def commit_settled(self, changes, states, results, *, owner):  # type: ignore[no-untyped-def]
            self._refuse(changes)
            return super().commit_settled(changes, states, results, owner=owner)

    store = Busy()
    email = RecordingChannel("email")
    clock = FrozenClock(MON)
    desk = Helpdesk(store, clock=clock, channels=[email], entry_points=False)
    desk.add_agent("ann", "Ann Agent", email="ann@help.example")
    first = ticket_for(desk)
    carol = desk.create_contact("Carol", emails=["carol@example.com"])
    second = desk.open_ticket(Actor.contact(carol.id), requester=carol, subject="Printer").id
    desk.reply(first, ANN, "to Bob")
    desk.reply(second, ANN, "to Carol")
    store.busy = first
    report = desk.deliver_pending()
    assert report.sent == 2 and len(email.messages) == 2
    # Carol's is recorded and settled; Bob's could not be recorded: it stays claimed.
    assert types(desk, second)[-1] == "message_sent"
    assert "message_sent" not in types(desk, first)
    [held] = desk.deliveries(ticket=first)
    assert held.state is DeliveryState.PENDING and held.claimed_by is not None
    store.busy = None
    assert desk.deliver_pending().handled == 0  # still leased
    clock.advance(minutes=6)
    again = desk.deliver_pending()
    assert again.sent == 1
    # Sent again (at least once); the channel saw the same idempotency key and kept it once.
    assert email.attempts == 3 and len(email.messages) == 2
    assert types(desk, first)[-1] == "message_sent"
    assert desk.deliveries(ticket=first)[0].state is DeliveryState.SENT


def test_following_delivers_new_commits_and_retries_as_they_fall_due() -> None:
    import threading
    import time

    email = RecordingChannel("email", fail=1)
    desk, clock = make(email)
    ticket = ticket_for(desk)
    stop = threading.Event()
    worker = threading.Thread(
        target=desk.follow_deliveries, args=(stop,), kwargs={"poll": 0.01, "recheck": 0.05}
    )
    worker.start()
    try:
        desk.reply(ticket, ANN, "hello")

        def wait_for(condition: object) -> None:
            deadline = time.monotonic() + 10
            while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
                time.sleep(0.01)

        wait_for(lambda: email.attempts == 1)  # failed: retry in a minute
        assert email.messages == []
        clock.advance(minutes=1)  # the retry falls due: picked up without a new commit
        wait_for(lambda: len(email.messages) == 1)
        assert [m.body for m in email.messages] == ["hello"]
    finally:
        stop.set()
        worker.join(10)
    assert not worker.is_alive()
    assert types(desk, ticket)[-2:] == ["delivery_failed", "message_sent"]


def test_follow_checks_its_intervals() -> None:
    import threading

    desk, _ = make()
    with pytest.raises(ValidationError, match="poll"):
        desk.follow_deliveries(threading.Event(), poll=0)


def test_what_was_committed_before_the_store_had_channels_is_not_sent() -> None:
    store = MemoryStore()
    quiet = Helpdesk(store, clock=FrozenClock(MON), entry_points=False)  # no channels
    quiet.add_agent("ann", "Ann Agent", email="ann@help.example")
    old = ticket_for(quiet)
    quiet.reply(old, ANN, "answered a year ago, never sent")
    email = RecordingChannel("email")
    desk = Helpdesk(store, clock=FrozenClock(MON), channels=[email], entry_points=False)
    assert store.cursors() == {"outbox": store.last_position()}
    desk.reply(old, ANN, "new answer")
    quiet.reply(old, ANN, "from a process without channels, after they were configured")
    assert desk.deliver_pending().sent == 2
    assert [m.body for m in email.messages] == [
        "new answer",
        "from a process without channels, after they were configured",
    ]


def test_a_second_desk_delivers_what_the_first_committed() -> None:
    store = MemoryStore()
    first = Helpdesk(
        store, clock=FrozenClock(MON), channels=[RecordingChannel()], entry_points=False
    )
    assert store.cursors() == {"outbox": 0}  # started, at the beginning
    first.add_agent("ann", "Ann Agent", email="ann@help.example")
    ticket = ticket_for(first)
    first.reply(ticket, ANN, "hello")
    email = RecordingChannel("email")
    second = Helpdesk(store, clock=FrozenClock(MON), channels=[email], entry_points=False)
    assert second.deliver_pending().sent == 1
    assert [m.body for m in email.messages] == ["hello"]


def test_a_slow_channel_does_not_send_past_the_lease() -> None:
    clock = FrozenClock(MON)

    class Slow(RecordingChannel):
        def deliver(self, message):  # type: ignore[no-untyped-def]
            clock.advance(minutes=3)  # each send takes 3 minutes of the 5-minute lease
            return super().deliver(message)

    email = Slow("email")
    desk = Helpdesk(clock=clock, channels=[email], entry_points=False)
    desk.add_agent("ann", "Ann Agent", email="ann@help.example")
    tickets = [ticket_for_contact(desk, n) for n in range(3)]
    for ticket in tickets:
        desk.reply(ticket, ANN, "hello")
    desk._relay.derive()  # type: ignore[union-attr]
    first = desk._relay.deliver()  # type: ignore[union-attr]
    # Two sends fit before the last tenth of the lease; the third is left to lapse.
    assert first.sent == 2 and email.attempts == 2
    clock.advance(minutes=5)
    assert desk.deliver_pending().sent == 1
    assert len(email.messages) == 3


def ticket_for_contact(desk: Helpdesk, n: int) -> str:
    contact = desk.create_contact(f"C{n}", emails=[f"c{n}@example.com"])
    return desk.open_ticket(Actor.contact(contact.id), requester=contact, subject="Hi").id


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_each_reply_is_planned_on_its_own_state_across_batches_and_relays(
    backend: str, tmp_path: pytest.TempPathFactory
) -> None:
    """The relay keeps the ticket states it planned on between batches (and folds the events
    between forward); a reply is still planned on its ticket as it was just before it,
    whether the relay saw the events between, or another relay committed them, or the same
    events are planned again."""
    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path}/desk.db"
    email = RecordingChannel("email")
    desk, _ = make(email, store=url)
    ticket = ticket_for(desk)
    tom = Actor.agent("tom")
    desk.reply(ticket, ANN, "one")
    assert desk.deliver_pending().sent == 1
    desk.follow(ticket, ANN, tom)
    desk.note(ticket, ANN, "internal")
    desk.reply(ticket, ANN, "two")
    desk.unfollow(ticket, ANN, tom)
    assert desk.deliver_pending().sent == 1
    desk.reply(ticket, ANN, "three")
    desk.follow(ticket, ANN, tom)
    assert desk.deliver_pending().sent == 1
    to = {m.body: sorted(r.address or "" for r in m.to) for m in email.messages}
    assert to == {
        "one": ["bob@example.com"],
        "two": ["bob@example.com", "tom@help.example"],
        "three": ["bob@example.com"],
    }
    # Planned again, out of order and from a cold relay's states: the same deliveries.
    relay = desk._relay
    assert relay is not None
    changes = desk.store.changes(after=0, limit=1000)  # type: ignore[attr-defined]
    outbound = relay._outbound
    again = outbound.plan(list(reversed(changes)), MON) + outbound.plan(changes, MON)
    fresh = Helpdesk(desk.store, clock=FrozenClock(MON), channels=[email], entry_points=False)
    cold = fresh._outbound.plan(changes, MON)
    planned = {d.id: d.message.to for d in desk.deliveries()}
    assert {d.id: d.message.to for d in again} == planned
    assert {d.id: d.message.to for d in cold} == planned
    fresh.shutdown()
    desk.shutdown()
