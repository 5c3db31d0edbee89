"""Folder import on the real file system: a Maildir (new/ and cur/, as the standard library's
``mailbox.Maildir`` writes it) and a folder of .eml files, into a desk on an SQLite file."""

from __future__ import annotations

import mailbox
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.channels.email_in import parse
from helpkit.channels.mail_folder import (
    Imported,
    MailFolderError,
    import_folder,
    is_maildir,
    message_files,
)
from helpkit.intake import Intake, IntakeKind
from helpkit.testing.clock import FrozenClock

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def email(n: int, *, reply_to: int | None = None) -> bytes:
    thread = f"In-Reply-To: <req-{reply_to}@customer.example>\r\n" if reply_to else ""
    subject = f"Re: Request {reply_to}" if reply_to else f"Request {n}"
    return (
        "From: Customer <ann@customer.example>\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <req-{n}@customer.example>\r\n{thread}"
        "\r\n"
        f"Body {n}.\r\n"
    ).encode()


def receiver(desk: Helpdesk) -> Callable[[bytes], Intake]:
    def handle(raw: bytes) -> Intake:
        return desk.receive(parse(raw, received_at=desk.now()))

    return handle


def maildir(folder: Path, messages: list[bytes], *, read: int = 0) -> list[str]:
    """A Maildir with ``messages`` (the first ``read`` of them moved to cur/ as seen)."""
    box = mailbox.Maildir(folder, create=True)
    keys = []
    for index, raw in enumerate(messages):
        message = mailbox.MaildirMessage(raw)
        if index < read:
            message.set_subdir("cur")
            message.add_flag("S")
        keys.append(box.add(message))
    return keys


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    instants=st.lists(
        st.tuples(
            # A few seconds, so that most files share one (ordered by their microseconds).
            st.integers(min_value=1_765_000_000, max_value=1_765_000_002),
            st.integers(min_value=0, max_value=999_999),
        ),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    read=st.sets(st.integers(min_value=0, max_value=7)),
)
def test_maildir_files_are_read_in_delivery_order_whatever_their_microseconds(
    tmp_path_factory: pytest.TempPathFactory,
    instants: list[tuple[int, int]],
    read: set[int],
) -> None:
    """Property: files named as Python's ``mailbox`` (and Dovecot) name them, the delivery
    time's microseconds not padded (``M99999`` sorts after ``M100000`` by name), are read in
    the order they were delivered, from ``new/`` and ``cur/`` alike."""
    folder = tmp_path_factory.mktemp("order") / "Maildir"
    mailbox.Maildir(folder, create=True)
    for index, (seconds, micros) in enumerate(instants):
        sub = "cur" if index in read else "new"
        name = f"{seconds}.M{micros}P{100 + index}Q{index}.host"
        (folder / sub / (name + (":2,S" if sub == "cur" else ""))).write_bytes(email(index))
    found = [_instant(f.name) for f in message_files(folder)]
    assert found == sorted(instants)


def _instant(name: str) -> tuple[int, int]:
    seconds, _, rest = name.partition(".M")
    return int(seconds), int(rest.partition("P")[0])


def desk_at(tmp_path: Path) -> Helpdesk:
    return Helpdesk(f"sqlite:///{tmp_path / 'desk.db'}", clock=FrozenClock(NOW), entry_points=False)


def test_a_maildir_is_imported_from_new_and_cur_in_delivery_order(tmp_path: Path) -> None:
    folder = tmp_path / "Maildir"
    maildir(folder, [email(1), email(2, reply_to=1), email(3)], read=1)
    (folder / "tmp" / "half-written").write_bytes(b"From: x")
    (folder / "new" / ".hidden").write_bytes(b"From: x")
    assert is_maildir(folder)
    assert [f.parent.name for f in message_files(folder)] == ["cur", "new", "new"]
    with desk_at(tmp_path) as desk:
        report = import_folder(folder, receiver(desk))
        assert report.maildir
        kinds = [i.result.kind for i in report.messages]
        assert kinds == [IntakeKind.CREATED, IntakeKind.COMMENTED, IntakeKind.CREATED]
        assert all(i.fate == "kept" and i.now_at == i.path for i in report.messages)
        again = import_folder(folder, receiver(desk))
        assert [i.result.duplicate for i in again.messages] == [True, True, True]
        assert len(desk.tickets().items) == 2


def test_move_marks_new_messages_seen_in_cur(tmp_path: Path) -> None:
    folder = tmp_path / "Maildir"
    maildir(folder, [email(1), email(2)], read=1)
    with desk_at(tmp_path) as desk:
        report = import_folder(folder, receiver(desk), after="move")
    assert sorted(os.listdir(folder / "new")) == []
    moved = [i for i in report.messages if i.fate == "moved"]
    assert len(moved) == 1 and moved[0].now_at is not None
    assert moved[0].now_at.parent.name == "cur" and moved[0].now_at.name.endswith(":2,S")
    box = mailbox.Maildir(folder, create=False)
    assert sorted(m.get_flags() for m in box) == ["S", "S"]  # a mail reader sees them read


def test_delete_removes_only_what_was_finished(tmp_path: Path) -> None:
    folder = tmp_path / "eml"
    folder.mkdir()
    (folder / "0001.eml").write_bytes(email(1))
    (folder / "0002.EML").write_bytes(b"not an email at all")
    (folder / "0003.eml").write_bytes(email(3))
    (folder / "notes.txt").write_bytes(email(4))
    (folder / "sub.eml").mkdir()
    ingest = receiver
    with desk_at(tmp_path) as desk:
        handle = ingest(desk)

        def tolerant(raw: bytes) -> Intake | None:
            try:
                return handle(raw)
            except ValueError:
                return None

        report = import_folder(
            folder, tolerant, after="delete", finished=lambda result: result is not None
        )
        assert [i.path.name for i in report.messages] == ["0001.eml", "0002.EML", "0003.eml"]
        assert [i.fate for i in report.messages] == ["deleted", "kept", "deleted"]
        assert not report.maildir
    assert sorted(os.listdir(folder)) == ["0002.EML", "notes.txt", "sub.eml"]


def test_mistakes_are_typed_errors(tmp_path: Path) -> None:
    eml = tmp_path / "eml"
    eml.mkdir()
    with pytest.raises(MailFolderError, match="no folder"):
        import_folder(tmp_path / "missing", len)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(MailFolderError, match="not a folder"):
        import_folder(tmp_path / "file", len)
    with pytest.raises(MailFolderError, match="not a Maildir"):
        import_folder(eml, len, after="move")
    with pytest.raises(MailFolderError, match="after"):
        import_folder(eml, len, after="archive")
    with pytest.raises(ValueError):  # MailFolderError is a ValidationError
        import_folder(str(tmp_path / "missing"), len)


def test_an_error_stops_the_import_with_what_was_done_settled(tmp_path: Path) -> None:
    folder = tmp_path / "Maildir"
    maildir(folder, [email(1), email(2), email(3)])
    seen: list[bytes] = []

    def fails_on_the_second(raw: bytes) -> int:
        seen.append(raw)
        if len(seen) == 2:
            raise OSError("the store went away")
        return len(raw)

    with pytest.raises(OSError, match="went away"):
        import_folder(folder, fails_on_the_second, after="delete")
    assert len(message_files(folder)) == 2  # the first deleted, the others untouched


def test_stop_and_on_file(tmp_path: Path) -> None:
    folder = tmp_path / "Maildir"
    maildir(folder, [email(1), email(2), email(3)])
    stop = threading.Event()
    told: list[str] = []

    def told_and_stop(imported: Imported[int]) -> None:
        told.append(imported.path.name)
        stop.set()

    report = import_folder(folder, len, stop=stop, on_file=told_and_stop)

    assert report.stopped and len(report.messages) == 1 and told == [report.messages[0].path.name]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["keep", "move", "delete"]), min_size=1, max_size=3))
def test_any_sequence_of_imports_reads_each_message_once_per_import_until_removed(
    tmp_path_factory: pytest.TempPathFactory, fates: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("md") / "Maildir"
    maildir(folder, [email(n) for n in range(5)], read=2)
    remaining = 5
    for after in fates:
        report = import_folder(folder, len, after=after)
        assert len(report.messages) == remaining
        if after == "delete":
            remaining = 0
        assert len(message_files(folder)) == remaining
        assert os.listdir(folder / "new") == [] or after != "move"
