"""The sweep's fast path on the PostgreSQL store: claims as timer rows, narrow commits.

The PostgreSQL store has due claims (several sweep workers share the due tickets) and, with
:attr:`~helpkit.ports.Capability.DUE_TIMER_CLAIMS`, a claim reads the tickets as timer rows:
a ticket whose kept fold is at its seq and on which only SLA warnings and breaches are due
is decided from that fold and written by :meth:`commit_timers`, its JSON state patched on
the server. Whatever that does must be what the general path does, byte for byte: the same
events, the same ticket rows (the JSON state's text included), the same kept timer states.
These tests make one desk's data in two schemas, sweep one with the fast path and the other
without, and compare every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from multiprocessing import get_context
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from psycopg import sql

from helpkit import Actor
from helpkit.sla import SlaPolicy
from helpkit.stores.postgres.store import PostgresStore
from postgres_fixtures import fresh_schema
from test_sweep_fast import (
    LIVES,
    MON,
    desk_on,
    make_policy,
    staff,
    sweep_counting,
)
from test_sweep_fast import (
    live as play_life,
)

H = timedelta(hours=1)
AGENT = Actor.agent("ana")


@pytest.fixture
def open_store(postgres_database: str) -> Iterator[Callable[..., PostgresStore]]:
    """Opens PostgresStores in fresh schemas (or the one named); closes them after."""
    opened: list[PostgresStore] = []

    def make(schema: str | None = None) -> PostgresStore:
        store = PostgresStore(postgres_database, schema=schema or fresh_schema(), pool_max=2)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def copy_schema(source: PostgresStore, target: PostgresStore) -> None:
    """Every row of ``source``'s schema into ``target``'s (a fresh schema of the same
    version): the same desk, twice. Triggers (the foreign keys' checks) are off meanwhile."""
    with psycopg.connect(source.conninfo, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY table_name",
                (source.schema,),
            )
        ]
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            for table in tables:
                if table == "meta":
                    continue
                names = {
                    "source": sql.Identifier(source.schema, table),
                    "target": sql.Identifier(target.schema, table),
                }
                conn.execute(sql.SQL("DELETE FROM {target}").format(**names))
                conn.execute(sql.SQL("INSERT INTO {target} SELECT * FROM {source}").format(**names))


def stored(store: PostgresStore) -> list[tuple[Any, ...]]:
    """Every row of the tickets, events and timer states of ``store``'s schema, texts as
    stored; events by ticket and seq (feed positions are in commit order: each ticket's
    events are checked to be in order, not compared)."""
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(store.schema)))
        tickets = conn.execute("SELECT * FROM tickets ORDER BY id").fetchall()
        events = conn.execute(
            "SELECT ticket_id, seq, type, at_us, actor, body FROM events ORDER BY ticket_id, seq"
        ).fetchall()
        states = conn.execute("SELECT * FROM timer_states ORDER BY ticket_id").fetchall()
        out_of_order = conn.execute(
            "SELECT count(*) FROM events a JOIN events b ON a.ticket_id = b.ticket_id "
            "AND a.seq < b.seq AND a.position > b.position"
        ).fetchone()
    assert out_of_order == (0,)
    return [*tickets, *events, *states]


def sweep(
    store: PostgresStore, fast: bool, instants: list[datetime], sla: SlaPolicy, rules: str
) -> tuple[list[Any], int]:
    """Sweep ``store``'s schema at each instant (a new desk each time: another process; on a
    store object of its own, which has kept no ticket), the fast path on or off: the reports
    and how many tickets the narrow commits wrote."""
    store = PostgresStore(store.conninfo, schema=store.schema, pool_max=2)
    try:
        return sweep_counting(store, fast, instants, sla, rules)
    finally:
        store.close()


def live(
    store: PostgresStore, sla: SlaPolicy, rules: str, script: list[tuple[int, int, str]]
) -> datetime:
    """:func:`test_sweep_fast.live` on ``store``, unpinning with PostgreSQL's SQL."""

    def unpin(ticket: str) -> None:
        # As a ticket stored before helpkit kept the requester's last update: its next event
        # pins it (the fast path must leave it to the general path).
        with store._transaction() as cur:
            cur.execute(
                "UPDATE tickets SET state = regexp_replace(state, "
                """',"requester_updated_at":"[^"]*"', '') WHERE id = %s""",
                (ticket,),
            )

    return play_life(store, sla, rules, script, unpin)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(**LIVES)
def test_the_claimed_fast_path_stores_what_the_general_path_stores(
    open_store: Callable[..., PostgresStore],
    calendar: str,
    hours: int,
    warn_at: tuple[float, ...],
    rules: str,
    script: list[tuple[int, int, str]],
    sweeps: list[int],
) -> None:
    """A random life of three tickets under a random policy and escalation rules, copied
    into a second schema, then sweeps at random later instants: one schema's with the fast
    path (its claims read timer rows), the other's without; every row is the same, byte for
    byte, and so are the reports."""
    if rules != "none":  # the rules listen to the 75% warning: a policy must warn there
        warn_at = tuple(sorted({0.75, *warn_at}))
    sla = make_policy(calendar, hours, warn_at)
    fast_store, general_store = open_store(), open_store()
    start = live(fast_store, sla, rules, script)
    copy_schema(fast_store, general_store)
    assert stored(fast_store) == stored(general_store)
    instants = sorted({start + timedelta(minutes=m) for m in sweeps})
    fast = sweep(fast_store, True, instants, sla, rules)
    general = sweep(general_store, False, instants, sla, rules)
    assert general[1] == 0
    assert fast[0] == general[0]
    assert stored(fast_store) == stored(general_store)


def due_desk(store: PostgresStore, count: int) -> tuple[SlaPolicy, datetime]:
    """``count`` tickets opened at MON, all due for their 50% warning by the instant returned."""
    sla = make_policy("always", 8, (0.5, 0.75))
    desk = desk_on(store, MON, sla, "notify")
    staff(desk)
    for i in range(count):
        desk.open_ticket(Actor.contact("bob"), requester="bob", subject=f"VPN {i}", body="x")
    return sla, MON + 4 * H + timedelta(minutes=1)


def test_a_claimed_sweep_takes_the_fast_path_and_releases_its_claims(
    open_store: Callable[..., PostgresStore],
) -> None:
    store = open_store()
    sla, late = due_desk(store, 7)
    reports, narrow = sweep(store, True, [late, late], sla, "notify")
    # Each ticket's first response (1h) warned at 50% and 75% and breached, and its
    # resolution (8h) warned at 50%: four events, all by narrow commits.
    assert narrow == 7
    assert (reports[0].examined, reports[0].warnings, reports[0].breaches) == (7, 21, 7)
    assert reports[1].examined == 0
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        claims = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(store.schema, "due_claims"))
        ).fetchone()
    assert claims == (0,)  # every claim released


def test_the_patched_state_keeps_every_other_byte_and_adds_a_missing_member(
    open_store: Callable[..., PostgresStore],
) -> None:
    """Texts the codec escapes (quotes, backslashes, characters beyond ASCII, a line
    separator) come through the server's patch as stored; a state lacking one of the
    members the narrow update writes (never written by helpkit) gets it at its end, as
    SQLite's ``json_set`` adds it."""
    sla = make_policy("always", 8, (0.5, 0.75))
    fast_store, general_store = open_store(), open_store()
    desk = desk_on(fast_store, MON, sla, "notify")
    staff(desk)
    odd = desk.open_ticket(
        Actor.contact("bob"),
        requester="bob",
        subject='Quote " backslash \\ caf\u00e9 \u2028 \U0001f600 "seq":1',
        body="x",
    ).id
    other = desk.open_ticket(Actor.contact("bob"), requester="bob", subject="plain", body="x").id
    copy_schema(fast_store, general_store)
    late = MON + 4 * H + timedelta(minutes=1)
    sweep(fast_store, True, [late], sla, "notify")
    sweep(general_store, False, [late], sla, "notify")
    assert stored(fast_store) == stored(general_store)
    # A state without its next_check member: the patch adds it at the end.
    with fast_store._transaction() as cur:
        cur.execute(
            "UPDATE tickets SET state = regexp_replace(state, ',\"next_check\":[^,]*', '') "
            "WHERE id = %s RETURNING state",
            (other,),
        )
        row = cur.fetchone()
    assert row is not None and '"next_check"' not in row[0]
    later = MON + 6 * H + timedelta(minutes=1)
    (due,) = [row for row in fast_store.due_timers(later, limit=10)[0] if row.ticket_id == other]
    assert due.plain  # decided by the fast path
    _, narrow = sweep(fast_store, True, [later], sla, "notify")
    assert narrow >= 1
    with fast_store._reading() as cur:
        found = cur.execute("SELECT state FROM tickets WHERE id = %s", (other,)).fetchone()
    check = open_store(fast_store.schema).get_ticket(other).next_check
    assert found is not None and check is not None and odd != other
    assert found[0].endswith(f',"next_check":"{check.isoformat()}"}}')


def sweep_worker(database: str, schema: str, now: datetime) -> dict[str, Any]:
    """One fast sweep in a process of its own: its report and the tickets it claimed."""
    store = PostgresStore(database, schema=schema, pool_min=0, pool_max=2)
    claimed: list[str] = []
    claim = store.claim_due_timers

    def recording(**kwargs: Any) -> Any:
        rows = claim(**kwargs)
        claimed.extend(row.ticket_id for row in rows)
        return rows

    store.claim_due_timers = recording  # type: ignore[method-assign]
    try:
        sla = make_policy("always", 8, (0.5, 0.75))
        report = desk_on(store, now, sla, "notify").sweep(now, batch=5)
        return {"report": report, "claimed": claimed}
    finally:
        store.close()


def test_fast_sweeps_in_several_processes_record_each_check_once(
    postgres_database: str, open_store: Callable[..., PostgresStore]
) -> None:
    """Three sweep processes at once on 60 due tickets: each ticket claimed by one of them,
    every warning and breach recorded once, by narrow commits."""
    store = open_store()
    _sla, late = due_desk(store, 60)
    spawn = get_context("spawn")
    with spawn.Pool(3) as pool:
        results = pool.starmap(sweep_worker, [(postgres_database, store.schema, late)] * 3)
    claimed = sorted(ticket for result in results for ticket in result["claimed"])
    assert len(claimed) == len(set(claimed)) == 60
    assert sum(result["report"].failures for result in results) == 0
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        counts = conn.execute(
            sql.SQL(
                "SELECT type, count(*), count(DISTINCT ticket_id) FROM {} "
                "WHERE type LIKE 'sla_%%' GROUP BY type ORDER BY type"
            ).format(sql.Identifier(store.schema, "events"))
        ).fetchall()
    assert counts == [("sla_breached", 60, 60), ("sla_warned", 180, 60)]
