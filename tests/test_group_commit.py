"""``Helpdesk.group_commit``: commands committed together, on the real SQLite file.

Grouped or not, the same commands leave the same desk (a Hypothesis property against running
each on its own); a block that raises leaves nothing, tells no observer, and the desk's
caches forget it (the same commands run again give what a fresh desk gives); a command that
fails inside leaves the others; observers hear after the commit, in order; the ``sqlite:``
blob store of the same file joins the block instead of waiting for its lock; a store without
group commits commits each command on its own; ``import_folder`` settles a batch's files
only once the batch is committed.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk, hookimpl
from helpkit.channels.mail_folder import import_folder
from helpkit.errors import ConflictError, HelpkitError, NotFoundError, ValidationError
from helpkit.events import Event
from helpkit.intake import Intake
from helpkit.ports import InboundAttachment, InboundMessage
from helpkit.testing.clock import FrozenClock

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
AGENT = Actor.agent("alice")
CONFIG: dict[str, Any] = {
    "intake": {"addresses": ["support@desk.example"]},
    "calendars": {"all": {"timezone": "UTC", "hours": "mon-fri 09:00-17:00"}},
    "sla": {
        "policies": [
            {
                "name": "std",
                "calendar": "all",
                "warn_at": [0.5],
                "targets": {
                    p: {"first_response": "2h", "resolution": "8h"}
                    for p in ("P1", "P2", "P3", "P4", "P5")
                },
            }
        ],
    },
}


class Heard:
    """An observer: the events it heard, and whether each ticket was committed then (read
    through another connection to the file)."""

    __name__ = "heard"

    def __init__(self, path: Path | None = None) -> None:
        self.events: list[Event] = []
        self.committed: list[bool] = []
        self.path = path

    @hookimpl
    def helpkit_event(self, event: Event) -> None:
        self.events.append(event)
        if self.path is not None:
            with contextlib.closing(sqlite3.connect(self.path)) as conn:
                row = conn.execute(
                    "SELECT 1 FROM tickets WHERE id = ?", (event.ticket_id,)
                ).fetchone()
            self.committed.append(row is not None)


class Ids:
    """Ids in order (``id00001``...), and how many were given."""

    def __init__(self) -> None:
        self.given = 0

    def __call__(self) -> str:
        self.given += 1
        return f"id{self.given:05d}"


def make_desk(
    store: str,
    *,
    blobs: str | None = None,
    plugins: tuple[object, ...] = (),
    ids: Ids | None = None,
) -> tuple[Helpdesk, FrozenClock]:
    clock = FrozenClock(START)
    desk = Helpdesk(
        store,
        config=CONFIG,
        clock=clock,
        entry_points=False,
        id_factory=ids or Ids(),
        blobs=blobs,
        plugins=plugins,
    )
    desk.add_group("l1", "Service desk", tier=1)
    desk.add_agent("alice", "Alice Agent", email="alice@desk.example", groups=["l1"])
    return desk, clock


def message(n: int, sender: int, subject: str = "The printer", **fields: Any) -> InboundMessage:
    values: dict[str, Any] = {
        "channel": "email",
        "sender_address": f"s{sender}@acme.example",
        "sender_name": f"Sender {sender}",
        "subject": subject,
        "body": f"Message {n}.",
        "received_at": START,
        "external_id": f"<m{n}@acme.example>",
    }
    values.update(fields)
    return InboundMessage(**values)


# ------------------------------------------------------------------ the same desk


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), st.integers(0, 3), st.integers(0, 6)),
        st.tuples(st.just("again"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("reply"), st.integers(0, 6), st.just(0)),
        st.tuples(st.just("resolve"), st.integers(0, 6), st.just(0)),
        st.tuples(st.just("bad"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=24,
)


def _apply(desk: Helpdesk, clock: FrozenClock, n: int, op: tuple[str, int, int]) -> object:
    """One command; what it answered (or the error's type)."""
    kind, a, b = op
    clock.advance(minutes=7)
    numbers = [t.number for t in desk.tickets(limit=100).items]
    try:
        if kind == "receive":
            # b > 0 and a ticket to name: the subject tags it (threaded for its parties).
            subject = f"Re: [#{numbers[b % len(numbers)]}] it" if b and numbers else f"Issue {n}"
            intake = desk.receive(message(n, a, subject))
            return ("intake", intake.kind.value, intake.ticket_number, intake.duplicate)
        if kind == "again":  # a message received before, delivered again
            intake = desk.receive(message(a, 0, f"Issue {a}"))
            return ("intake", intake.kind.value, intake.ticket_number, intake.duplicate)
        if kind == "bad":
            desk.reply(999_999, AGENT, "to no ticket")
        if not numbers:
            return None
        number = numbers[a % len(numbers)]
        if kind == "reply":
            return desk.reply(number, AGENT, f"Reply {n}").seq
        return desk.resolve(number, AGENT).seq
    except HelpkitError as exc:
        return type(exc).__name__


def _state(desk: Helpdesk) -> list[object]:
    rows: list[object] = []
    for ticket in desk.tickets(limit=1000).items:
        rows.append((ticket, desk.history(ticket.id), desk.sla(ticket.id)))
    return rows


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_OPS, sizes=st.lists(st.integers(1, 6), min_size=1, max_size=8))
def test_grouped_commands_leave_the_desk_they_leave_one_by_one(
    ops: list[tuple[str, int, int]], sizes: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        alone, alone_clock = make_desk(f"sqlite:///{folder}/alone.db")
        grouped, grouped_clock = make_desk(f"sqlite:///{folder}/grouped.db")
        try:
            expected = [_apply(alone, alone_clock, n, op) for n, op in enumerate(ops)]
            got: list[object] = []
            chunks = itertools.cycle(sizes)
            n = 0
            while n < len(ops):
                size = next(chunks)
                with grouped.group_commit():
                    for index in range(n, min(n + size, len(ops))):
                        got.append(_apply(grouped, grouped_clock, index, ops[index]))
                n += size
            assert got == expected
            assert _state(grouped) == _state(alone)
        finally:
            alone.shutdown()
            grouped.shutdown()


# ------------------------------------------------------------------ a block that raises


class _PlantedError(Exception):
    pass


def test_a_block_that_raises_leaves_nothing_and_is_forgotten(tmp_path: Path) -> None:
    heard = Heard()
    ids, fresh_ids = Ids(), Ids()
    desk, clock = make_desk(f"sqlite:///{tmp_path}/desk.db", plugins=(heard,), ids=ids)
    fresh, fresh_clock = make_desk(f"sqlite:///{tmp_path}/fresh.db", ids=fresh_ids)
    try:
        first = desk.receive(message(1, 0))
        fresh.receive(message(1, 0))
        heard.events.clear()
        clock.advance(minutes=30)

        def rolled_back() -> None:
            with desk.group_commit():
                desk.reply(first.ticket_number or 0, AGENT, "rolled back")
                desk.receive(message(2, 1))
                assert desk.ticket(1).seq > 2  # read back in the block
                raise _PlantedError

        with pytest.raises(_PlantedError):
            rolled_back()
        assert heard.events == []
        with pytest.raises(NotFoundError):
            desk.ticket(2)
        # The desk goes on as one that never ran the block: same seqs, numbers and SLA
        # (the fold the block kept for ticket 1 is gone).
        fresh_clock.advance(minutes=30)
        fresh_ids.given = ids.given  # the ids the block took are not given again
        for each, each_clock in ((desk, clock), (fresh, fresh_clock)):
            each_clock.advance(minutes=5)
            each.reply(1, AGENT, "the real reply")
            each.receive(message(3, 2))
        assert _state(desk) == _state(fresh)
    finally:
        desk.shutdown()
        fresh.shutdown()


def test_a_command_that_fails_in_a_block_leaves_the_others(tmp_path: Path) -> None:
    desk, _ = make_desk(f"sqlite:///{tmp_path}/desk.db")
    try:
        with desk.group_commit():
            desk.receive(message(1, 0))
            with pytest.raises(ValidationError):
                desk.reply(1, AGENT, "")  # an empty reply is refused
            with pytest.raises(NotFoundError):
                desk.reply(7, AGENT, "no such ticket")
            seq = desk.reply(1, AGENT, "first").seq
            with pytest.raises(ConflictError):  # decided on a version that moved on
                desk.reply(1, AGENT, "stale", expected_seq=seq - 1)
            desk.receive(message(2, 1))
        assert sorted(t.number for t in desk.tickets().items) == [1, 2]
        assert desk.ticket(1).seq == seq
    finally:
        desk.shutdown()


def test_observers_hear_after_the_commit_in_order(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    heard = Heard(path)
    desk, _ = make_desk(f"sqlite:///{path}", plugins=(heard,))
    try:
        with desk.group_commit():
            for n in range(3):
                desk.receive(message(n, n))
            assert heard.events == []
        assert [e.TYPE for e in heard.events].count("ticket_opened") == 3
        assert all(heard.committed)
        numbers = [desk.ticket(e.ticket_id).number for e in heard.events]
        assert numbers == sorted(numbers)
    finally:
        desk.shutdown()


def test_a_block_entered_again_joins_the_outer_one(tmp_path: Path) -> None:
    desk, _ = make_desk(f"sqlite:///{tmp_path}/desk.db")
    try:

        def rolled_back() -> None:
            with desk.group_commit():
                with desk.group_commit():
                    desk.receive(message(1, 0))
                raise _PlantedError

        with pytest.raises(_PlantedError):
            rolled_back()
        assert desk.tickets().items == ()
    finally:
        desk.shutdown()


def test_the_blob_store_of_the_same_file_joins_the_block(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/desk.db?timeout=0.2"
    desk, _ = make_desk(url, blobs=url)
    attachment = InboundAttachment(filename="a.txt", content_type="text/plain", data=b"kept")
    gone = InboundAttachment(filename="b.txt", content_type="text/plain", data=b"rolled back")
    try:
        with desk.group_commit():  # a put waiting for the block's lock would time out
            kept = desk.receive(message(1, 0, attachments=(attachment,)))

        def rolled_back() -> None:
            with desk.group_commit():
                desk.receive(message(2, 1, attachments=(gone,)))
                raise _PlantedError

        with pytest.raises(_PlantedError):
            rolled_back()
        comment = desk.conversation(kept.ticket_number or 0)[0]
        assert desk.attachment_bytes(1, comment.attachments[0].id) == b"kept"
        with contextlib.closing(sqlite3.connect(tmp_path / "desk.db")) as conn:
            assert conn.execute("SELECT count(*) FROM blobs").fetchone()[0] == 1
    finally:
        desk.shutdown()


def test_a_store_without_group_commits_commits_each_command() -> None:
    desk, _ = make_desk("memory://")
    try:

        def rolled_back() -> None:
            with desk.group_commit():
                desk.receive(message(1, 0))
                raise _PlantedError

        with pytest.raises(_PlantedError):
            rolled_back()
        assert [t.number for t in desk.tickets().items] == [1]
    finally:
        desk.shutdown()


# ------------------------------------------------------------------ importing a folder


@pytest.fixture
def mail_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    for n in range(1, 6):
        text = (
            f"From: s{n}@acme.example\r\nTo: support@desk.example\r\nSubject: Issue {n}\r\n"
            f"Message-ID: <f{n}@acme.example>\r\n\r\nBody {n}.\r\n"
        )
        (folder / f"{n:04d}.eml").write_bytes(text.encode())
    return folder


def test_an_import_settles_a_batch_only_once_it_is_committed(
    tmp_path: Path, mail_folder: Path
) -> None:
    from helpkit.cli._mail import receiver

    desk, _ = make_desk(f"sqlite:///{tmp_path}/desk.db")
    handle = receiver(desk)
    calls = 0

    def failing(raw: bytes) -> object:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise _PlantedError
        return handle(raw)

    try:
        with pytest.raises(_PlantedError):
            import_folder(mail_folder, failing, after="delete", group=desk.group_commit, batch=2)
        # The first batch (files 1 and 2) is committed and its files deleted; the second
        # (file 3 handled, file 4 raising) stored nothing and left its files.
        left = sorted(p.name for p in mail_folder.iterdir())
        assert left == ["0003.eml", "0004.eml", "0005.eml"]
        assert sorted(t.subject for t in desk.tickets().items) == ["Issue 1", "Issue 2"]
        group = desk.group_commit
        report = import_folder(mail_folder, handle, after="delete", group=group, batch=2)
        assert [m.fate for m in report.messages] == ["deleted"] * 3
        assert list(mail_folder.iterdir()) == []
        assert len(desk.tickets().items) == 5
    finally:
        desk.shutdown()


@pytest.mark.parametrize("batch", [0, -1, True, 10_001, "2"])
def test_an_import_refuses_a_bad_batch(mail_folder: Path, batch: object) -> None:
    with pytest.raises(ValidationError):
        import_folder(mail_folder, lambda raw: raw, batch=batch)  # type: ignore[arg-type]
    assert len(list(mail_folder.iterdir())) == 5


def test_each_command_is_published_even_after_one_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publisher that fails for the block's first command still hears of the second; the
    failure is raised once both ran, and the commit stands."""
    desk, _ = make_desk(f"sqlite:///{tmp_path}/desk.db")
    heard: list[str] = []

    def announce(events: Any, changes: Any) -> None:
        heard.append(events[0].ticket_id)
        if len(heard) == 1:
            raise RuntimeError("the first observer failed")

    monkeypatch.setattr(desk, "_announce", announce)
    try:
        intakes: list[Intake] = []

        def block() -> None:
            with desk.group_commit():
                intakes.extend(desk.receive(message(n, n)) for n in (1, 2))

        with pytest.raises(RuntimeError, match="first observer"):
            block()
        assert heard == [intakes[0].ticket_id, intakes[1].ticket_id]
        assert sorted(t.number for t in desk.tickets().items) == [1, 2]
    finally:
        desk.shutdown()
