"""The sweep's fast path (issue #10, item 3): deciding from the kept SLA fold, narrow commits.

On a store with :attr:`~helpkit.ports.Capability.TIMER_ROWS` (SQLite), a due ticket whose
kept fold is at its seq and on which only SLA warnings and breaches are due is decided from
that fold and written as a narrow update of its row (no ticket decoded or encoded). Whatever
it does must be what the general path does: the same events, the same ticket, the same kept
timer state, the same columns. These tests sweep copies of one file with the fast path on
and off and compare everything stored.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Actor, DeskConfig, Helpdesk, Priority
from helpkit.calendar import BusinessCalendar
from helpkit.errors import ConflictError
from helpkit.escalation import EscalationRules
from helpkit.events import SlaWarned
from helpkit.ports import Store, TimerUpdate
from helpkit.queries import TicketQuery
from helpkit.sla import SlaFold, SlaPolicy, SlaPolicySet, Targets
from helpkit.stores.sqlite import SqliteStore
from helpkit.testing.clock import FrozenClock
from helpkit.timers import FoldCache

H = timedelta(hours=1)
MON = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
AGENT = Actor.agent("ana")
CALENDARS = {
    "always": BusinessCalendar.always("UTC"),
    "office": BusinessCalendar.parse("mon-fri 09:00-17:00", timezone="UTC"),
}
RULE_SETS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "notify": [{"name": "warn", "metric": "resolution", "at": 0.75, "actions": ["notify_group"]}],
    "escalate": [
        {"name": "warn", "metric": "resolution", "at": 0.75, "actions": ["notify_group"]},
        {"name": "breach", "metric": "resolution", "at": "breach", "actions": ["escalate"]},
        {
            "name": "first",
            "metric": "first_response",
            "at": "breach",
            "actions": ["raise_priority"],
        },
    ],
}
COMMANDS = ("reply", "pending", "requester", "open", "solve", "raise", "note", "unpin")
LIVES: dict[str, st.SearchStrategy[Any]] = {
    "calendar": st.sampled_from(sorted(CALENDARS)),
    "hours": st.integers(2, 12),
    "warn_at": st.lists(st.sampled_from((0.5, 0.75, 0.9)), unique=True, max_size=3).map(
        lambda w: tuple(sorted(w))
    ),
    "rules": st.sampled_from(sorted(RULE_SETS)),
    "script": st.lists(
        st.tuples(st.integers(0, 4 * 60), st.integers(0, 2), st.sampled_from(COMMANDS)),
        max_size=10,
    ),
    "sweeps": st.lists(st.integers(0, 20 * 60), min_size=1, max_size=3),
}
"""The arguments of a random life and its sweeps (a policy, escalation rules, a script of
commands on three tickets, sweep instants in minutes after it), for ``@given(**LIVES)``."""


def make_policy(calendar: str, hours: int, warn_at: tuple[float, ...]) -> SlaPolicy:
    every = Targets(first_response=H, next_response=2 * H, resolution=hours * H)
    return SlaPolicy(
        "standard", CALENDARS[calendar], dict.fromkeys(Priority, every), warn_at=warn_at
    )


def desk_on(store: Store, now: datetime, sla: SlaPolicy, rules: str) -> Helpdesk:
    config = DeskConfig(
        sla=SlaPolicySet((sla,)), escalation=EscalationRules.from_list(RULE_SETS[rules])
    )
    return Helpdesk(store, config=config, clock=FrozenClock(now), entry_points=False)


def staff(desk: Helpdesk) -> None:
    desk.add_group("desk", "Service desk", tier=1)
    desk.add_group("tech", "Technicians", tier=2)
    desk.add_agent("ana", "Ana", groups=["desk"])
    desk.create_contact("Bob", emails=["bob@example.com"], contact_id="bob")


def live(
    store: Store,
    sla: SlaPolicy,
    rules: str,
    script: list[tuple[int, int, str]],
    unpin: Callable[[str], None],
) -> datetime:
    """Three tickets opened at MON on a staffed desk of ``store``, then ``script`` run on
    them (:func:`play`); the instant after."""
    clock = FrozenClock(MON)
    config = DeskConfig(
        sla=SlaPolicySet((sla,)), escalation=EscalationRules.from_list(RULE_SETS[rules])
    )
    desk = Helpdesk(store, config=config, clock=clock, entry_points=False)
    staff(desk)
    tickets = [
        desk.open_ticket(Actor.contact("bob"), requester="bob", subject=f"VPN {i}", body="x").id
        for i in range(3)
    ]
    play(desk, clock, tickets, script, unpin)
    return clock.now()


def play(
    desk: Helpdesk,
    clock: FrozenClock,
    tickets: list[str],
    script: list[tuple[int, int, str]],
    unpin: Callable[[str], None],
) -> None:
    """Run ``script`` on ``tickets``: each step moves the clock on by its minutes and runs one
    of :data:`COMMANDS` on one ticket (a transition the workflow refuses writes nothing);
    ``unpin`` removes a ticket's kept requester instant from its stored state."""
    for minutes, which, command in script:
        clock.set(clock.now() + timedelta(minutes=minutes))
        ticket = tickets[which]
        try:
            if command == "reply":
                desk.reply(ticket, AGENT, "Looking")
            elif command == "pending":
                desk.set_status(ticket, AGENT, "pending")
            elif command == "requester":
                desk.requester_reply(ticket, "Any news?")
            elif command == "open":
                desk.set_status(ticket, AGENT, "open")
            elif command == "solve":
                desk.resolve(ticket, AGENT)
            elif command == "raise" and desk.ticket(ticket).priority is not Priority.P1:
                desk.prioritize(ticket, AGENT, impact="high", urgency="high")
            elif command == "note":
                desk.note(ticket, AGENT, "internal")
            elif command == "unpin":
                unpin(ticket)
        except Exception:  # a transition the workflow refuses: nothing written
            pass


def stored(path: Path) -> list[tuple[Any, ...]]:
    """Everything the tickets table and the events table hold, the JSON texts decoded (the
    fast path's ``json_set`` and the codec may lay out the same JSON differently), events by
    ticket and seq. (Their feed positions are in commit order, one ticket's after another's:
    within a batch the fast path commits its tickets before those the general path takes,
    so positions are compared only as each ticket's order, below.)"""
    with sqlite3.connect(path) as conn:
        tickets = [
            (*row[:-2], json.loads(row[-2]), None if row[-1] is None else json.loads(row[-1]))
            for row in conn.execute(
                "SELECT id, number, seq, status, category, priority, assignee_id, group_id, "
                "updated_us, sla_policy, next_deadline_us, next_check_us, tags, state, "
                "timer_state FROM tickets ORDER BY id"
            )
        ]
        events = [
            (*row[:-1], json.loads(row[-1]))
            for row in conn.execute(
                "SELECT ticket_id, seq, type, at_us, actor, body FROM events "
                "ORDER BY ticket_id, seq"
            )
        ]
        in_order = conn.execute(
            "SELECT count(*) FROM events a JOIN events b ON a.ticket_id = b.ticket_id "
            "AND a.seq < b.seq AND a.position > b.position"
        ).fetchone()[0]
        assert in_order == 0
    conn.close()
    return [*tickets, *events]


@pytest.fixture
def stores() -> Iterator[list[SqliteStore]]:
    opened: list[SqliteStore] = []
    yield opened
    for store in opened:
        store.close()


def sweep_copy(
    source: Path, copy: Path, fast: bool, instants: list[datetime], sla: SlaPolicy, rules: str
) -> tuple[list[Any], list[tuple[Any, ...]], int]:
    """Sweep a copy of ``source`` at each instant (a new desk each time: another process),
    the fast path on or off: the reports, what is stored, and the narrow commits made."""
    shutil.copyfile(source, copy)
    store = SqliteStore(copy, synchronous="NORMAL")
    try:
        reports, narrow = sweep_counting(store, fast, instants, sla, rules)
    finally:
        store.close()
    return reports, stored(copy), narrow


def sweep_counting(
    store: Any, fast: bool, instants: list[datetime], sla: SlaPolicy, rules: str
) -> tuple[list[Any], int]:
    """Sweep ``store`` at each instant (a new desk each time: another process), the fast path
    on or off: the reports, and how many tickets the narrow commits (``commit_timers``)
    wrote."""
    narrow = [0]
    commit_timers = store.commit_timers

    def counted(updates: Any) -> None:
        narrow[0] += len(updates)
        commit_timers(updates)

    store.commit_timers = counted
    reports = []
    for now in instants:
        desk = desk_on(store, now, sla, rules)
        desk._sweeper.fast = fast
        reports.append(desk.sweep(now, batch=2))
    return reports, narrow[0]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(**LIVES)
def test_the_fast_path_stores_what_the_general_path_stores(
    tmp_path_factory: pytest.TempPathFactory,
    calendar: str,
    hours: int,
    warn_at: tuple[float, ...],
    rules: str,
    script: list[tuple[int, int, str]],
    sweeps: list[int],
) -> None:
    """A random life of three tickets under a random policy and escalation rules, then
    sweeps at random later instants: on one copy of the file with the fast path, on another
    without; every row of the tickets and events tables is the same."""
    folder = tmp_path_factory.mktemp("fast")
    if rules != "none":  # the rules listen to the 75% warning: a policy must warn there
        warn_at = tuple(sorted({0.75, *warn_at}))
    sla = make_policy(calendar, hours, warn_at)
    source = folder / "desk.db"
    store = SqliteStore(source, synchronous="NORMAL")
    try:

        def unpin(ticket: str) -> None:
            # As a ticket stored before helpkit kept the requester's last update: its next
            # event pins it (the fast path must leave it to the general path).
            with store._transaction() as conn:
                conn.execute(
                    "UPDATE tickets SET state = json_remove(state, "
                    "'$.requester_updated_at') WHERE id = ?",
                    (ticket,),
                )

        start = live(store, sla, rules, script, unpin)
    finally:
        store.close()
    instants = sorted({start + timedelta(minutes=m) for m in sweeps})
    fast = sweep_copy(source, folder / "fast.db", True, instants, sla, rules)
    general = sweep_copy(source, folder / "general.db", False, instants, sla, rules)
    assert general[2] == 0
    assert fast[0] == general[0]
    assert fast[1] == general[1]


def due_file(path: Path, count: int) -> tuple[SlaPolicy, datetime]:
    """``count`` tickets opened at MON, all due for their 50% warning by the instant returned."""
    sla = make_policy("always", 8, (0.5, 0.75))
    store = SqliteStore(path, synchronous="NORMAL")
    desk = desk_on(store, MON, sla, "notify")
    staff(desk)
    for i in range(count):
        desk.open_ticket(Actor.contact("bob"), requester="bob", subject=f"VPN {i}", body="x")
    store.close()
    return sla, MON + 4 * H + timedelta(minutes=1)


def test_the_fast_path_records_each_check_once_and_a_second_sweep_finds_nothing(
    tmp_path: Path,
) -> None:
    sla, late = due_file(tmp_path / "src.db", 7)
    reports, _rows, narrow = sweep_copy(
        tmp_path / "src.db", tmp_path / "a.db", True, [late, late], sla, "notify"
    )
    # Each ticket's first response (1h) warned at 50% and 75% and breached, and its
    # resolution (8h) warned at 50%: four events, in the order they were crossed.
    assert narrow == 7
    assert (reports[0].examined, reports[0].warnings, reports[0].breaches) == (7, 21, 7)
    assert reports[1].examined == 0
    store = SqliteStore(tmp_path / "a.db")
    try:
        desk = desk_on(store, late, sla, "notify")
        for ticket in store.query(TicketQuery(limit=50)):
            history = desk.history(ticket.id)
            assert [(e.TYPE, getattr(e, "metric", None)) for e in history] == [
                ("ticket_opened", None),
                ("comment_added", None),
                ("sla_warned", "first_response"),
                ("sla_warned", "first_response"),
                ("sla_breached", "first_response"),
                ("sla_warned", "resolution"),
            ]
            assert ticket.seq == 6 and ticket.updated_at == late
            assert ticket.next_check == MON + 6 * H  # the 75% warning
    finally:
        store.close()


def test_a_narrow_commit_on_a_ticket_that_moved_on_conflicts_and_writes_nothing(
    tmp_path: Path,
) -> None:
    _sla, late = due_file(tmp_path / "desk.db", 2)
    store = SqliteStore(tmp_path / "desk.db")
    try:
        rows, cursor = store.due_timers(late, limit=10)
        assert cursor is None and len(rows) == 2
        before = stored(tmp_path / "desk.db")
        updates = [
            TimerUpdate(
                ticket_id=row.ticket_id,
                expected_seq=row.seq - (index == 1),  # the second is stale
                events=(
                    SlaWarned(
                        ticket_id=row.ticket_id,
                        seq=row.seq - (index == 1) + 1,
                        at=late,
                        actor=Actor.system("sweep"),
                        policy="standard",
                        metric="resolution",
                        cycle=0,
                        threshold=0.5,
                        crossed_at=late,
                        due=late + 4 * H,
                    ),
                ),
                updated_at=late,
                sla_policy="standard",
                next_deadline=late + 4 * H,
                next_check=late + 2 * H,
                timer_state="{}",
            )
            for index, row in enumerate(rows)
        ]
        with pytest.raises(ConflictError):
            store.commit_timers(updates)
        assert stored(tmp_path / "desk.db") == before
    finally:
        store.close()


def test_the_fold_cache_refreshes_only_what_it_holds(tmp_path: Path) -> None:
    sla, late = due_file(tmp_path / "desk.db", 2)
    store = SqliteStore(tmp_path / "desk.db")
    try:
        desk = desk_on(store, late, sla, "notify")
        ids = sorted(t.id for t in store.query(TicketQuery(limit=50)))
        opened = [SlaFold.of(list(store.events(ticket_id)), sla) for ticket_id in ids]
        desk.note(ids[0], AGENT, "later")
        later = SlaFold.of(list(store.events(ids[0])), sla)
        assert later.seq > opened[0].seq
    finally:
        store.close()
    cache = FoldCache(4)
    cache.refresh(opened[0])
    assert len(cache) == 0  # not held: not added
    cache.put(opened[0])
    cache.put(opened[1])
    cache.refresh(later)
    assert cache.get(ids[0]) is later  # held and older: replaced
    cache.refresh(opened[0])
    assert cache.get(ids[0]) is later  # a newer one is never replaced
    assert cache.get(ids[1]) is opened[1] and len(cache) == 2


def test_a_command_after_a_fast_sweep_in_the_same_desk_stores_what_the_general_path_does(
    tmp_path: Path,
) -> None:
    """The fast path refreshes the desk's fold cache only for the tickets it holds (it adds
    none): a command on a swept ticket, held or not, then stores what it stores after a sweep
    by the general path."""
    sla, late = due_file(tmp_path / "src.db", 3)
    results = []
    for fast in (True, False):
        copy = tmp_path / f"{fast}.db"
        shutil.copyfile(tmp_path / "src.db", copy)
        store = SqliteStore(copy, synchronous="NORMAL")
        try:
            desk = desk_on(store, late, sla, "notify")
            desk._sweeper.fast = fast
            ids = sorted(t.id for t in store.query(TicketQuery(limit=50)))
            desk.note(ids[0], AGENT, "held")  # its fold is now in the desk's cache
            held = len(desk._sla._cache)
            report = desk.sweep(late, batch=2)
            assert report.warnings == 9
            if fast:
                assert len(desk._sla._cache) == held  # refreshed, none added
                kept = desk._sla._cache.get(ids[0])
                assert kept is not None and kept.seq == store.get_ticket(ids[0]).seq
            for ticket_id in ids:
                desk.reply(ticket_id, AGENT, "on it")
        finally:
            store.close()
        # Comments get new ids in each copy: compared without them.
        results.append(
            [
                row[:3] + row[9:12] + row[-1:]
                if len(row) > 6
                else (*row[:3], {k: v for k, v in row[-1].items() if k != "comment"})
                for row in stored(copy)
            ]
        )
    assert results[0] == results[1]


def test_due_timers_pages_in_next_check_order(tmp_path: Path) -> None:
    _sla, late = due_file(tmp_path / "desk.db", 5)
    store = SqliteStore(tmp_path / "desk.db")
    try:
        seen, after = [], None
        while True:
            rows, after = store.due_timers(late, limit=2, after=after)
            seen.extend(rows)
            if after is None:
                break
        assert len(seen) == 5 and len({row.ticket_id for row in seen}) == 5
        keys = [(row.next_check, row.ticket_id) for row in seen]
        assert keys == sorted(keys)
        assert all(row.plain and row.timer_state and row.sla_policy == "standard" for row in seen)
        assert store.due_timers(MON, limit=10) == ([], None)
    finally:
        store.close()


def test_concurrent_fast_sweeps_record_each_check_once(tmp_path: Path) -> None:
    """Four sweepers (each its own desk and store object: as many processes) on one file at
    once: every warning and breach is recorded once, whoever wins each batch."""
    sla, late = due_file(tmp_path / "desk.db", 40)
    reports: list[Any] = []
    failures: list[BaseException] = []

    def sweep() -> None:
        store = SqliteStore(tmp_path / "desk.db", synchronous="NORMAL")
        try:
            reports.append(desk_on(store, late, sla, "notify").sweep(late, batch=7))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert sum(r.failures for r in reports) == 0
    with sqlite3.connect(tmp_path / "desk.db") as conn:
        counts = conn.execute(
            "SELECT type, count(*), count(DISTINCT ticket_id) FROM events "
            "WHERE type LIKE 'sla_%' GROUP BY type ORDER BY type"
        ).fetchall()
        once = conn.execute(
            "SELECT count(*), count(DISTINCT ticket_id || json_extract(body, '$.metric') || "
            "coalesce(json_extract(body, '$.threshold'), 1)) FROM events WHERE type LIKE 'sla_%'"
        ).fetchone()
    conn.close()
    # Each ticket: the first response warned at 50% and 75% and breached, the resolution
    # warned at 50% (see the test above).
    assert counts == [("sla_breached", 40, 40), ("sla_warned", 120, 40)]
    assert once == (160, 160)
