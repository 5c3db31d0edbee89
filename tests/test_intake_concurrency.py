"""Exactly once under concurrency: the same message ingested at once by threads and by
processes (SQLite, and PostgreSQL when a server is there) makes one ticket; every caller
gets that ticket, and exactly one of them is not a duplicate."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpkit import Helpdesk
from helpkit.intake import Intake, IntakeKind
from helpkit.ports import Address, InboundMessage
from postgres_fixtures import fresh_schema

WORKERS = 6


def message(**fields: Any) -> InboundMessage:
    values: dict[str, Any] = {
        "channel": "email",
        "sender_address": "ann@acme.example",
        "sender_name": "Ann",
        "subject": "The printer",
        "body": "It jams.",
        "received_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
        "external_id": "<race@acme.example>",
        "cc": [Address("bob@acme.example")],
    }
    values.update(fields)
    return InboundMessage(**values)


def _in_threads(receive: Callable[[int], Intake]) -> list[Intake]:
    barrier = threading.Barrier(WORKERS)
    results: list[Intake | BaseException] = [RuntimeError("not run")] * WORKERS

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = receive(index)
        except BaseException as exc:  # reported below
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, Intake)]


def check_one_outcome(outcomes: list[Intake], desk: Helpdesk) -> None:
    assert len(outcomes) == WORKERS
    assert [o.duplicate for o in outcomes].count(False) == 1
    assert {(o.kind, o.ticket_id, o.ticket_number, o.comment_id) for o in outcomes} == {
        (IntakeKind.CREATED, outcomes[0].ticket_id, 1, outcomes[0].comment_id)
    }
    page = desk.tickets(limit=100)
    assert [t.id for t in page.items] == [outcomes[0].ticket_id]
    assert len(desk.conversation(1)) == 1
    bob = desk.contact_by_email("bob@acme.example")  # created once, whoever won
    assert len(desk.find_contacts(bob.name)) == 1


def test_threads_sharing_one_desk_on_sqlite(tmp_path: Path) -> None:
    with Helpdesk(f"sqlite:///{tmp_path / 'desk.db'}", entry_points=False) as desk:
        outcomes = _in_threads(lambda _: desk.receive(message()))
        check_one_outcome(outcomes, desk)


def test_threads_with_a_desk_each_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    desks = [Helpdesk(url, entry_points=False) for _ in range(WORKERS)]
    try:
        outcomes = _in_threads(lambda i: desks[i].receive(message()))
        check_one_outcome(outcomes, desks[0])
    finally:
        for desk in desks:
            desk.shutdown()


def test_threads_suspending_one_auto_reply_keep_one_receipt(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    desks = [Helpdesk(url, entry_points=False) for _ in range(WORKERS)]
    try:
        auto = message(headers={"Auto-Submitted": "auto-replied"})
        outcomes = _in_threads(lambda i: desks[i].receive(auto))
        assert {(o.kind, o.key, o.reason) for o in outcomes} == {
            (
                IntakeKind.SUSPENDED,
                "email:race@acme.example",
                "auto-reply: Auto-Submitted: auto-replied",
            )
        }
        assert [r.key for r in desks[0].suspended()] == ["email:race@acme.example"]
        assert not desks[0].tickets().items
    finally:
        for desk in desks:
            desk.shutdown()


def _receive_in_process(url: str, barrier: Any, results: Any) -> None:
    with Helpdesk(url, entry_points=False) as desk:
        barrier.wait(timeout=60)
        got = desk.receive(message())
        results.put(
            (got.kind.value, got.ticket_id, got.ticket_number, got.comment_id, got.duplicate)
        )


def _in_processes(url: str) -> list[Intake]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=_receive_in_process, args=(url, barrier, results))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    returned = [results.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return [
        Intake(
            kind=IntakeKind(kind),
            key="email:race@acme.example",
            ticket_id=ticket_id,
            ticket_number=number,
            comment_id=comment_id,
            duplicate=duplicate,
        )
        for kind, ticket_id, number, comment_id, duplicate in returned
    ]


def test_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    Helpdesk(url, entry_points=False).shutdown()  # created before the race
    outcomes = _in_processes(url)
    with Helpdesk(url, entry_points=False) as desk:
        check_one_outcome(outcomes, desk)


def test_processes_on_postgresql(postgres_database: str) -> None:
    url = f"{postgres_database}?schema={fresh_schema()}"
    Helpdesk(url, entry_points=False).shutdown()
    outcomes = _in_processes(url)
    with Helpdesk(url, entry_points=False) as desk:
        check_one_outcome(outcomes, desk)
