"""Routing under concurrent creates: threads sharing a desk, and processes each with its own
desk over one store, on a real SQLite file and a real PostgreSQL schema. Never over capacity,
never two agents for one ticket, round robin fair (every agent filled to capacity, the rest
waiting), and no create fails for routing's sake.

The PostgreSQL cases need a server (tests/postgres_fixtures.py says which, and when they skip).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest

from helpkit import Helpdesk
from helpkit.events import Assigned
from helpkit.ports import Store
from helpkit.tickets import Actor
from postgres_fixtures import fresh_schema

AGENTS = ("a", "b", "c")
CAPACITY = 7
ROUTING = {"support": {"capacity": CAPACITY}}
BOSS = Actor.agent("boss")


def _open_sqlite(path: str) -> Store:
    from helpkit.stores.sqlite import SqliteStore

    return SqliteStore(path, timeout=30)


def _open_postgres(url: str, schema: str) -> Store:
    from helpkit.stores.postgres.store import PostgresStore

    return PostgresStore(url, schema=schema)


def _prepare(store: Store) -> Helpdesk:
    desk = Helpdesk(store, config={"routing": ROUTING}, entry_points=False)
    desk.add_group("support", "Support")
    desk.add_agent("boss", "Boss")
    for agent in AGENTS:
        desk.add_agent(agent, agent.upper(), groups=["support"])
    return desk


def _create(desk: Helpdesk, name: str, count: int) -> list[str]:
    contact = desk.contact_for_email(f"{name}@example.com")
    return [
        desk.open_ticket(BOSS, requester=contact, subject=f"{name} {n}", group="support").id
        for n in range(count)
    ]


def _process(opener: Callable[[], Store], name: str, count: int, start: float) -> list[str]:
    """One process with its own desk creating ``count`` tickets from ``start``."""
    desk = Helpdesk(opener(), config={"routing": ROUTING}, entry_points=False)
    try:
        time.sleep(max(0.0, start - time.time()))
        return _create(desk, name, count)
    finally:
        desk.shutdown()


def _check(desk: Helpdesk, created: list[str]) -> None:
    """Every ticket made once; routing never gave a ticket twice nor went over capacity; once
    the waiting ones are routed, every agent is full (round robin fair) and the rest wait."""
    assert len(set(created)) == len(created)
    routed: Counter[str] = Counter()
    for ticket_id in created:
        assigned = [e for e in desk.history(ticket_id) if isinstance(e, Assigned)]
        assert len(assigned) <= 1, assigned
        if assigned:
            assert assigned[0].actor == Actor.system("routing")
            routed[assigned[0].assignee_id or ""] += 1
            assert desk.ticket(ticket_id).assignee_id == assigned[0].assignee_id
    assert all(n <= CAPACITY for n in routed.values()), routed
    desk.route_waiting()  # a create whose routing lost every time left its ticket waiting
    loads = Counter(desk.ticket(t).assignee_id for t in created)
    expected: dict[str | None, int] = dict.fromkeys(AGENTS, CAPACITY)
    expected[None] = len(created) - CAPACITY * len(AGENTS)
    assert loads == expected, loads


def _threads(desk: Helpdesk, workers: int, count: int) -> list[str]:
    created: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def work(n: int) -> None:
        barrier.wait()
        try:
            created.extend(_create(desk, f"t{n}", count))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return created


def _processes(opener: Callable[[], Store], workers: int, count: int) -> list[str]:
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(time.sleep, [0.0] * workers))  # warm up: each imports helpkit once
        start = time.time() + 1.0
        runs = pool.map(
            functools.partial(_process, opener, count=count, start=start),
            [f"p{n}" for n in range(workers)],
        )
        return [ticket for run in runs for ticket in run]


@pytest.fixture
def sqlite_path(tmp_path: Path) -> str:
    return str(tmp_path / "routing.db")


@pytest.fixture
def postgres(postgres_database: str) -> Callable[[], Store]:
    return functools.partial(_open_postgres, postgres_database, fresh_schema())


def test_threads_on_sqlite(sqlite_path: str) -> None:
    desk = _prepare(_open_sqlite(sqlite_path))
    try:
        _check(desk, _threads(desk, 8, 3))
    finally:
        desk.shutdown()


def test_processes_on_sqlite(sqlite_path: str) -> None:
    desk = _prepare(_open_sqlite(sqlite_path))
    try:
        _check(desk, _processes(functools.partial(_open_sqlite, sqlite_path), 4, 6))
    finally:
        desk.shutdown()


def test_threads_on_postgresql(postgres: Callable[[], Store]) -> None:
    desk = _prepare(postgres())
    try:
        _check(desk, _threads(desk, 8, 3))
    finally:
        desk.shutdown()


def test_processes_on_postgresql(postgres: Callable[[], Store]) -> None:
    desk = _prepare(postgres())
    try:
        _check(desk, _processes(postgres, 4, 6))
    finally:
        desk.shutdown()


def test_threads_on_memory() -> None:
    desk = _prepare(_open_memory())
    _check(desk, _threads(desk, 8, 3))


def _open_memory() -> Any:
    from helpkit.stores.memory import MemoryStore

    return MemoryStore()
