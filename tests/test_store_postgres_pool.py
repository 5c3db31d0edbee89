"""The store's pool lends the idle connection given back last
(:mod:`helpkit.stores.postgres.pool`): any sequence of borrows and returns against a stack,
on real connections to a server; the one idle longest is the one the pool closes when it
shrinks; a store's commands, one after another, keep to one server backend; and the release
check.

The server parts need a PostgreSQL server (tests/postgres_fixtures.py says which, and when
these tests skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit.testing.conformance import change_of
from helpkit.testing.conformance.helpers import BASE_TIME, _open
from postgres_fixtures import fresh_schema

pool_module = pytest.importorskip("helpkit.stores.postgres.pool")
from helpkit.stores.postgres.store import PostgresStore  # noqa: E402

SIZE = 4


@pytest.fixture(scope="module")
def pool(postgres_database: str) -> Iterator[Any]:
    """A pool of :data:`SIZE` connections, all open before the tests take any."""
    lent = pool_module.RecentFirstPool(
        postgres_database, min_size=SIZE, max_size=SIZE, open=False, kwargs={"autocommit": True}
    )
    lent.open(wait=True, timeout=30)
    try:
        yield lent
    finally:
        lent.close()


# A step: True borrows a connection (when one is idle), an integer gives back the one held
# at that index (modulo how many are held; nothing when none is).
_STEPS = st.lists(st.booleans() | st.integers(0, SIZE - 1), max_size=30)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_STEPS)
def test_the_pool_lends_the_connection_given_back_last(pool: Any, steps: list[Any]) -> None:
    """Property: whatever the order of borrows and returns, each borrow gets the idle
    connection given back most recently (a stack of the idle ones; at first, the pool's
    own order)."""
    idle: list[Any] = list(pool._pool)  # the model: the next to lend at the end
    assert len(idle) == SIZE
    held: list[Any] = []
    try:
        for step in steps:
            if step is True:
                if not idle:
                    continue
                conn = pool.getconn(timeout=5)
                held.append(conn)
                assert conn is idle.pop()
            elif held:
                conn = held.pop(step % len(held))
                pool.putconn(conn)
                idle.append(conn)
    finally:
        for conn in held:
            pool.putconn(conn)


def test_the_one_idle_longest_is_closed_first_when_the_pool_shrinks(
    postgres_database: str,
) -> None:
    """After a burst, the connections given back first stay at the far end: the pool's
    shrinking (``max_idle``) closes those, and a quiet thread keeps to the last one."""
    lent = pool_module.RecentFirstPool(
        postgres_database, min_size=1, max_size=3, open=False, kwargs={"autocommit": True}
    )
    lent.open(wait=True, timeout=30)
    try:
        burst = [lent.getconn(timeout=10) for _ in range(3)]  # the pool grows to three
        for conn in burst:
            lent.putconn(conn)
        # What the pool's scheduler runs every max_idle seconds: this first run only notes
        # how many connections are idle now (the burst left none idle since the last one).
        lent._shrink_pool()
        for _ in range(5):  # a quiet thread: always the connection given back last
            conn = lent.getconn(timeout=5)
            assert conn is burst[-1]
            lent.putconn(conn)
        lent._shrink_pool()  # two stayed idle all along: one of them is closed
        # The first connection given back, idle longest, was closed; the others remain.
        assert burst[0].closed
        assert list(lent._pool) == [burst[1], burst[2]]
    finally:
        lent.close()


def test_a_stores_commands_one_after_another_keep_to_one_backend(
    postgres_database: str,
) -> None:
    """Commits made one after another by one thread go to the same server backend process,
    though the store's pool holds several idle connections."""
    store = PostgresStore(postgres_database, schema=fresh_schema(), pool_min=3, pool_max=3)
    try:
        store._pool.wait(timeout=30)
        assert store._pool.get_stats()["pool_available"] == 3
        backends = set()
        for n in range(6):
            store.commit([change_of(_open(f"t{n}", n + 1, BASE_TIME))])
            with store._pool.connection() as conn:
                backends.add(conn.info.backend_pid)
        assert len(backends) == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.2.0", True),
        ("3.2.8", True),
        ("3.3.3", True),
        ("3.1.18", False),
        ("3.4.0", False),
        ("4.0", False),
        ("3", False),
        ("3.x", False),
        ("", False),
    ],
)
def test_the_pool_is_used_only_with_the_releases_it_was_tested_against(
    version: str, expected: bool
) -> None:
    """Another psycopg_pool release gets its own pool (connections lent in turn), so an
    upgrade whose internals moved never breaks the store."""
    assert pool_module.usable(version) is expected


def test_the_store_opens_the_pool_this_release_takes() -> None:
    """The store's pool class follows the check: the reordering pool where it may be used."""
    from psycopg_pool import ConnectionPool

    assert pool_module.POOL is (
        pool_module.RecentFirstPool if pool_module.USABLE else ConnectionPool
    )
