"""The PostgreSQL store for several workers: timer states, due claims, sweeps in processes.

- Timer states (schema version 2): a schema of version 1 is upgraded in place, keeping its
  tickets; the sweep of a fresh desk then reads the due tickets with their kept states and no
  history, and records what a desk folding every history records.
- Due claims (schema version 3): the conformance cases catch a store whose claims do not
  exclude each other; four sweep processes share a few hundred due tickets, each ticket swept
  by one of them, each due step recorded once.
- Feed wake-ups: an idle relay following a PostgreSQL store with a long poll is woken by the
  notification of the next commit.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from typing import Any, ClassVar

import pytest

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.escalation import EscalationRules
from helpkit.events import Event, SlaBreached, SlaWarned
from helpkit.ports import Capability, Store
from helpkit.queries import SortOrder, TicketQuery
from helpkit.sla import SlaPolicy, SlaPolicySet, Targets
from helpkit.testing.clock import FrozenClock
from helpkit.testing.conformance import change_of
from helpkit.testing.conformance.helpers import _note, _open
from postgres_fixtures import fresh_schema

H = timedelta(hours=1)
MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
OFFICE = BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC")
AGENT = Actor.agent("ana")
RULES = EscalationRules.from_list(
    [
        {"name": "warn", "metric": "resolution", "at": 0.75, "actions": ["notify_group"]},
        {"name": "breach", "metric": "resolution", "at": "breach", "actions": ["escalate"]},
        {
            "name": "first",
            "metric": "first_response",
            "at": "breach",
            "actions": ["raise_priority"],
        },
    ]
)


def policy() -> SlaPolicy:
    every = Targets(first_response=H, next_response=2 * H, resolution=8 * H)
    return SlaPolicy("standard", OFFICE, dict.fromkeys(Priority, every), warn_at=(0.5, 0.75))


def desk_on(store: Store, now: datetime) -> Helpdesk:
    config = DeskConfig(sla=SlaPolicySet((policy(),)), escalation=RULES)
    return Helpdesk(store, config=config, clock=FrozenClock(now), entry_points=False)


def staff(desk: Helpdesk) -> None:
    desk.add_group("desk", "Service desk", tier=1)
    desk.add_group("tech", "Technicians", tier=2)
    desk.add_agent("ana", "Ana", groups=["desk"])
    desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")


def open_some(desk: Helpdesk, count: int) -> list[str]:
    return [
        desk.open_ticket(Actor.contact("bob"), requester="bob", subject=f"VPN {i}", body="down").id
        for i in range(count)
    ]


def recorded(desk: Helpdesk, ticket: str) -> list[tuple[Any, ...]]:
    """The SLA checks and escalations recorded on ``ticket``, and where it stands."""
    found: list[tuple[Any, ...]] = []
    for event in desk.history(ticket):
        if isinstance(event, SlaWarned | SlaBreached):
            found.append((event.TYPE, event.metric, event.cycle, getattr(event, "threshold", 1)))
        elif event.TYPE in ("escalated", "priority_changed"):
            found.append((event.TYPE, event.at))
    state = desk.ticket(ticket)
    return [*found, (state.group_id, state.priority, state.next_check, state.next_deadline)]


@pytest.fixture
def database(postgres_database: str) -> str:
    return postgres_database


@pytest.fixture
def open_store(database: str) -> Iterator[Callable[..., Any]]:
    """Opens PostgresStores (of a class, in a fresh schema unless one is named); closes them
    after."""
    from helpkit.stores.postgres.store import PostgresStore

    opened: list[Any] = []

    def make(schema: str | None = None, cls: type[Any] = PostgresStore, **options: Any) -> Any:
        store = cls(database, schema=schema or fresh_schema(), **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# ---------------------------------------------------------------- timer states


def test_a_version_1_schema_is_upgraded_to_keep_timer_states(
    database: str, open_store: Callable[..., Any]
) -> None:
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.schema import MIGRATIONS, SCHEMA_VERSION, inspect, migrate

    assert SCHEMA_VERSION >= 2
    schema = fresh_schema()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        migrate(conn, schema, MIGRATIONS[:1])
        assert inspect(conn, schema, 1) == "current"
        assert inspect(conn, schema) == "older"
    # A store of version 1 had no timer states: commit a ticket the way it did.
    opened = _open("t1", 0, MON)
    store = open_store(schema)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        assert inspect(conn, schema) == "current"
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    assert Capability.TIMER_STATE in store.capabilities
    (written,) = store.commit([change_of(opened)])
    assert store.query_states(TicketQuery(sort=SortOrder.CREATED))[1] == [None]
    note = _note(written.ticket, MON + H)
    store.commit_planned([change_of(note)], ['{"kept":1}'])
    page, states = store.query_states(TicketQuery(sort=SortOrder.CREATED))
    assert [t.id for t in page] == ["t1"] and states == ['{"kept":1}']
    assert store.events("t1") == [*written.events, *note.events]


def test_a_version_1_schema_with_tickets_keeps_them_when_upgraded(
    database: str, open_store: Callable[..., Any]
) -> None:
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres import schema as schema_module
    from helpkit.stores.postgres.commit import function_ddl

    schema = fresh_schema()
    old = open_store(schema)
    with psycopg.connect(database, autocommit=True) as conn:
        # Back to version 1, as a helpkit of before wrote it.
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("DROP TABLE timer_states")
        conn.execute("DROP TABLE IF EXISTS due_claims")  # version 3
        conn.execute("DROP TABLE IF EXISTS inbox")  # version 4
        conn.execute("DROP TABLE IF EXISTS routing")  # version 5
        conn.execute(  # version 7
            "DROP TABLE IF EXISTS kb_categories, kb_sections, kb_articles, kb_changes, kb_docs, "
            "kb_counts, kb_terms, kb_links, kb_suggestions"
        )
        conn.execute("DROP INDEX IF EXISTS agents_email")  # version 9
        # Version 11's listeners of the feed, and the commit_change of before them (which
        # the old store below commits through).
        conn.execute("DROP TABLE IF EXISTS feed_listeners")
        conn.execute(function_ddl(schema_module._FEED_LOCK_CLASS, 10))
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    (written,) = old.commit([change_of(_open("t1", 0, MON))])
    old.close()
    upgraded = open_store(schema)
    assert upgraded.get_ticket("t1") == written.ticket
    assert upgraded.query_states(TicketQuery())[1] == [None]
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        assert schema_module.inspect(conn, schema) == "current"


def test_a_timer_state_postgresql_cannot_hold_is_refused_before_writing(
    open_store: Callable[..., Any],
) -> None:
    from helpkit.errors import ValidationError

    store = open_store()
    opened = _open("t1", 0, MON)
    with pytest.raises(ValidationError, match="NUL"):
        store.commit_planned([change_of(opened)], ["a\x00b"])
    with pytest.raises(ValidationError):
        store.commit_planned([change_of(opened)], ["\ud800"])
    assert store.query(TicketQuery()).items == ()


def _counting(base: type[Any]) -> type[Any]:
    class Counting(base):  # type: ignore[misc]
        histories = 0

        def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
            type(self).histories += 1
            result: list[Event] = super().events(ticket_id, after_seq=after_seq)
            return result

    return Counting


def test_a_fresh_desk_sweeps_postgresql_without_reading_histories(
    database: str, open_store: Callable[..., Any]
) -> None:
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.store import PostgresStore

    counting = _counting(PostgresStore)
    kept, bare = fresh_schema(), fresh_schema()
    results = []
    for schema in (kept, bare):
        store = open_store(schema, counting)
        desk = desk_on(store, MON)
        staff(desk)
        tickets = open_some(desk, 10)
        for ticket in tickets[:4]:
            desk.assign(ticket, AGENT, agent="ana", group="desk")
            desk.reply(ticket, AGENT, "Looking", status="pending")
            desk.requester_reply(ticket, "Still down")
        if schema == bare:
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute(sql.SQL("DELETE FROM {}.timer_states").format(sql.Identifier(schema)))
        counting.histories = 0
        late = MON + 7 * H
        report = desk_on(store, late).sweep(batch=4)  # a new desk: an empty fold cache
        results.append((report, counting.histories, [recorded(desk, t) for t in tickets]))
    (with_states, read_with, trail_with), (without, read_without, trail_without) = results
    assert with_states.examined == 10 and with_states.warnings > 0
    assert with_states.failures == 0
    assert read_with == 0 and read_without >= 10
    assert with_states == without and trail_with == trail_without


# ---------------------------------------------------------------- due claims


class _CaseRunner:
    """The due claim conformance cases, run by hand against one store."""

    thread_safe = True


def _broken_claims(base: type[Any]) -> type[Any]:
    class ForgetfulClaims(base):  # type: ignore[misc]
        """Claims that hold nothing: every claim takes every due ticket (what two sweeps
        reading the same due list do)."""

        def claim_due(
            self, *, owner: str, now: datetime, until: datetime, limit: int
        ) -> tuple[list[Any], list[str | None]]:
            page, states = self.query_states(
                TicketQuery(next_check_before=now, sort=SortOrder.NEXT_CHECK, limit=limit)
            )
            return list(page), states

    return ForgetfulClaims


@pytest.mark.parametrize(
    "case",
    [
        "test_claims_take_due_unheld_tickets_earliest_check_first",
        "test_only_the_holder_releases_and_releasing_frees_the_ticket",
        "test_a_lapsed_claim_is_no_longer_its_old_holders",
        "test_concurrent_workers_never_hold_one_ticket_together",
    ],
)
def test_the_conformance_cases_catch_claims_that_hold_nothing(
    case: str, open_store: Callable[..., Any]
) -> None:
    from helpkit.stores.postgres.store import PostgresStore
    from helpkit.testing.conformance.due_claims import DueClaimCases

    good = type("Cases", (_CaseRunner, DueClaimCases), {})()
    getattr(good, case)(open_store())  # the real store passes
    broken = open_store(cls=_broken_claims(PostgresStore))
    with pytest.raises(AssertionError):
        getattr(good, case)(broken)


def sweep_worker(database: str, schema: str, now: datetime, start: Any) -> dict[str, Any]:
    """One sweep worker in a process of its own: sweeps at ``now`` once every worker is ready
    (``start``, a barrier of them all, so they begin together however long each took to
    start); its report and the tickets it claimed."""
    from helpkit.stores.postgres.store import PostgresStore

    class Recording(PostgresStore):
        claimed: ClassVar[list[str]] = []

        def claim_due(
            self, *, owner: str, now: datetime, until: datetime, limit: int
        ) -> tuple[list[Any], list[str | None]]:
            tickets, states = super().claim_due(owner=owner, now=now, until=until, limit=limit)
            self.claimed.extend(ticket.id for ticket in tickets)
            return tickets, states

        def claim_due_timers(
            self, *, owner: str, now: datetime, until: datetime, limit: int
        ) -> list[Any]:
            rows = super().claim_due_timers(owner=owner, now=now, until=until, limit=limit)
            self.claimed.extend(row.ticket_id for row in rows)
            return rows

    store = Recording(database, schema=schema, pool_min=0, pool_max=2)
    try:
        desk = desk_on(store, now)
        start.wait(120)
        report = desk.sweep(batch=8)
        return {"report": report, "claimed": list(store.claimed)}
    finally:
        store.close()


WORKERS = 4
DUE_TICKETS = 240


def test_four_sweep_processes_share_the_due_tickets_each_step_recorded_once(
    database: str, open_store: Callable[..., Any]
) -> None:
    store = open_store()
    desk = desk_on(store, MON)
    staff(desk)
    tickets = open_some(desk, DUE_TICKETS)
    # What one desk records on one such ticket, alone, in a schema of its own.
    alone = open_store()
    solo = desk_on(alone, MON)
    staff(solo)
    (reference,) = open_some(solo, 1)
    late = MON + 7 * H
    assert desk_on(alone, late).sweep().examined == 1
    expected = recorded(solo, reference)
    assert len(expected) > 3  # several warnings and breaches, and a raised priority

    spawn = get_context("spawn")
    with spawn.Manager() as manager, ProcessPoolExecutor(WORKERS, mp_context=spawn) as pool:
        start = manager.Barrier(WORKERS)  # the workers begin together, once all are ready
        results = list(
            pool.map(
                sweep_worker,
                [database] * WORKERS,
                [store.schema] * WORKERS,
                [late] * WORKERS,
                [start] * WORKERS,
            )
        )
    claimed = [ticket for result in results for ticket in result["claimed"]]
    # Every due ticket swept, each by one worker: no ticket claimed twice in the round.
    assert sorted(claimed) == sorted(tickets)
    assert sum(1 for result in results if result["claimed"]) >= 2  # the work was shared
    reports = [result["report"] for result in results]
    assert sum(r.examined for r in reports) == DUE_TICKETS
    assert sum(r.conflicts for r in reports) == 0 and sum(r.failures for r in reports) == 0
    # The audit trail: each due step recorded once, as one desk alone records it.
    trails = [recorded(desk, ticket) for ticket in tickets]
    assert all(trail == expected for trail in trails)
    steps = sum(
        isinstance(event, SlaWarned | SlaBreached)
        for ticket in tickets
        for event in desk.history(ticket)
    )
    assert steps == sum(r.warnings + r.breaches for r in reports)
    assert desk_on(store, late).sweep().examined == 0


# ---------------------------------------------------------------- feed wake-ups


def test_an_idle_relay_is_woken_by_the_notification_of_a_commit(
    open_store: Callable[..., Any],
) -> None:
    from helpkit.channels.recording import RecordingChannel

    store = open_store()
    channel = RecordingChannel()
    desk = Helpdesk(store, channels=[channel], entry_points=False)
    desk.add_agent("ann", "Ann", email="ann@help.example")
    carol = desk.create_contact("Carol", emails=["carol@example.com"])
    ticket = desk.open_ticket(Actor.agent("ann"), requester=carol.id, subject="VPN")
    stop = threading.Event()
    relay = threading.Thread(
        target=desk.follow_deliveries,
        args=(stop,),
        # Polling every 30 s, rechecking every minute: only a wake-up delivers within the wait.
        kwargs={"poll": 30, "recheck": 60},
        daemon=True,
    )
    relay.start()
    try:
        for _ in range(1000):  # idle: waiting (registered as a listener), nothing woke it yet
            if store._listening_as is not None:
                break
            stop.wait(0.01)
        assert store._listening_as is not None and store.wakeups == 0
        desk.reply(ticket.id, Actor.agent("ann"), "Fixed?")
        for _ in range(2000):  # 20 s at most, far below the poll; it takes one wake-up
            if channel.messages:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        relay.join(10)
    assert not relay.is_alive()
    assert [m.body for m in channel.messages] == ["Fixed?"]
    assert store.wakeups >= 1  # the wait ended on the notification, not on a poll
    # Recorded in the ticket's trail and settled in the outbox, in one transaction
    # (Capability.SETTLED_COMMIT).
    from helpkit.ports import Capability, DeliveryState

    assert Capability.SETTLED_COMMIT in store.capabilities
    (sent,) = store.deliveries(ticket_id=ticket.id)
    assert (sent.state, sent.attempts, sent.claimed_by) == (DeliveryState.SENT, 1, None)
    assert [e.TYPE for e in store.events(ticket.id)][-1] == "message_sent"


def test_a_wait_returns_at_once_for_a_commit_already_there_and_times_out_without(
    open_store: Callable[..., Any],
) -> None:
    store = open_store()
    other = open_store(store.schema)  # another process's store, as far as the server knows
    assert store.wait_for_changes(0, 0.01) is False
    other.commit([change_of(_open("t1", 0, MON))])
    assert store.wait_for_changes(0, 5) is True
    assert store.wakeups == 0  # found by its look at the feed, before any wait
    assert store.wait_for_changes(store.last_position(), 0.05) is False


def _listening(store: Any) -> Any:
    """A connection listening on ``store``'s channel that did not register as a consumer:
    it hears what commits send, and changes nothing of what they send."""
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.wakeup import channel

    conn = psycopg.connect(store.conninfo, autocommit=True)
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel(store.schema))))
    return conn


def _heard(conn: Any, wait: float = 0.3) -> int:
    return sum(1 for _ in conn.notifies(timeout=wait))


def _listeners(store: Any) -> list[tuple[int, int]]:
    with store._reading() as cur:
        return [tuple(row) for row in cur.execute("SELECT * FROM feed_listeners").fetchall()]


def _waiting(consumer: Any, after: int, timeout: float) -> tuple[threading.Thread, list[bool]]:
    """``consumer.wait_for_changes(after, timeout)`` in a thread, once it has registered."""
    result: list[bool] = []
    thread = threading.Thread(
        target=lambda: result.append(consumer.wait_for_changes(after, timeout)), daemon=True
    )
    thread.start()
    for _ in range(1000):
        if consumer._listening_as is not None or result:
            break
        time.sleep(0.005)
    return thread, result


def test_commits_notify_only_while_a_consumer_waits(open_store: Callable[..., Any]) -> None:
    store = open_store()
    consumer = open_store(store.schema)
    ear = _listening(store)
    try:
        # Nobody waits for the feed: neither the one-statement commit nor the batch path
        # (two changes) notifies.
        (first,) = store.commit([change_of(_open("t1", 0, MON))])
        store.commit([change_of(_open("t2", 0, MON)), change_of(_open("t3", 0, MON))])
        assert _heard(ear) == 0 and _listeners(store) == []
        # A wait with something to read already returns at once, registering nothing.
        assert consumer.wait_for_changes(0, 5) is True
        assert consumer.wakeups == 0 and _listeners(store) == []
        # A consumer waiting registers its listening connection, and the one-statement
        # commit notifies it.
        waiting, woken = _waiting(consumer, store.last_position(), 10)
        assert [pid for pid, _ in _listeners(store)] == [consumer._listener.info.backend_pid]
        (noted,) = store.commit([change_of(_note(first.ticket, MON + H))])
        waiting.join(10)
        assert woken == [True] and consumer.wakeups == 1 and _heard(ear) == 1
        assert _listeners(store) == []  # the wait over, its row is gone
        # So does the batch path.
        waiting, woken = _waiting(consumer, store.last_position(), 10)
        store.commit([change_of(_open("t4", 0, MON)), change_of(_open("t5", 0, MON))])
        waiting.join(10)
        assert woken == [True] and consumer.wakeups == 2 and _heard(ear) == 1
        # A wait that times out leaves no row either, and commits after it do not notify.
        assert consumer.wait_for_changes(store.last_position(), 0.05) is False
        assert _listeners(store) == []
        store.commit([change_of(_note(noted.ticket, MON + 2 * H))])
        assert _heard(ear) == 0
    finally:
        ear.close()


def test_a_listener_left_by_a_backend_gone_is_removed_by_the_next_registration(
    open_store: Callable[..., Any],
) -> None:
    store = open_store()
    with store._reading() as cur:  # a consumer that died: no backend has this pid and start
        cur.execute("INSERT INTO feed_listeners (pid, started_us) VALUES (1, 42)")
    ear = _listening(store)
    try:
        store.commit([change_of(_open("t1", 0, MON))])
        assert _heard(ear) == 1  # until it is removed, commits notify for nobody
        consumer = open_store(store.schema)
        waiting, _ = _waiting(consumer, store.last_position(), 0.3)
        assert [pid for pid, _ in _listeners(store)] == [consumer._listener.info.backend_pid]
        waiting.join(10)
        assert _listeners(store) == []
        store.commit([change_of(_open("t2", 0, MON))])
        assert _heard(ear) == 0
    finally:
        ear.close()


def test_a_registration_waits_for_the_commit_holding_the_feed_lock_and_its_look_sees_it(
    open_store: Callable[..., Any],
) -> None:
    """The race the registration closes: a commit that holds the feed lock, and has looked
    for listeners already (finding none, so it does not notify), commits while a consumer
    registers. The registration waits for it, and the consumer's look after it sees its
    events: the wait returns at once, without a notification."""
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.schema import FEED_LOCK

    store = open_store()
    store.commit([change_of(_open("t1", 0, MON))])  # positions 1 and 2
    consumer = open_store(store.schema)
    with psycopg.connect(store.conninfo) as producer:  # a transaction of its own
        producer.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(store.schema)))
        producer.execute(FEED_LOCK)
        producer.execute(
            "INSERT INTO events (ticket_id, seq, type, at_us, actor, body, position) "
            "VALUES ('t1', 3, 'note_added', 0, 'system', '{}', 3)"
        )
        waited: list[bool] = []
        waiting = threading.Thread(target=lambda: waited.append(consumer.wait_for_changes(2, 10)))
        started = time.monotonic()
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not waited  # registering: waiting for the feed lock
        producer.commit()
    waiting.join(10)
    assert waited == [True]
    assert time.monotonic() - started < 5  # seen by the look, not by a wait's end
    assert consumer.wakeups == 0


# ---------------------------------------------------------------- the wake-up cases catch


def _broken_wakeups(base: type[Any], kind: str) -> type[Any]:
    class BrokenWakeups(base):  # type: ignore[misc]
        """Wake-ups that are not: ``deaf`` never wakes (always False at once); ``eager``
        always says there is news; ``polling`` sleeps out its time and only then looks."""

        def wait_for_changes(self, after: int, timeout: float) -> bool:
            if kind == "deaf":
                return False
            if kind == "eager":
                return True
            time.sleep(timeout)
            return bool(self.last_position() > after)

    return BrokenWakeups


class _WakeupRunner:
    thread_safe = True


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("test_a_wait_returns_at_once_when_a_change_is_already_there", "deaf"),
        ("test_a_wait_with_nothing_new_runs_out_and_says_so", "eager"),
        ("test_a_commit_during_a_wait_ends_it", "deaf"),
        ("test_a_commit_during_a_wait_ends_it", "polling"),
    ],
)
def test_the_conformance_cases_catch_wakeups_that_do_not_wake(
    case: str, kind: str, open_store: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpkit.stores.postgres.store import PostgresStore
    from helpkit.testing.conformance import wakeup
    from helpkit.testing.conformance.wakeup import WakeupCases

    cases = type("Cases", (_WakeupRunner, WakeupCases), {})()
    getattr(cases, case)(open_store())  # the real store passes
    monkeypatch.setattr(wakeup, "_PATIENCE", 1.0)  # the polling store sleeps out this long
    broken = open_store(cls=_broken_wakeups(PostgresStore, kind))
    with pytest.raises(AssertionError):
        getattr(cases, case)(broken)
