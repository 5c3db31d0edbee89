"""IMAP polling against a real Dovecot on 127.0.0.1 (tests/imap_fixtures.py): messages
APPENDed to a mailbox become tickets once, across restarts, UIDVALIDITY changes, crashes
between ingest and cursor, failed connections and concurrent pollers; and the pure parts
(mailbox name encoding, cursor names, FETCH answers) as properties."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.channels.email_in import parse
from helpkit.channels.imap import (
    ImapAccount,
    ImapError,
    ImapPoller,
    _bodies,
    cursor_name,
    encode_mailbox,
)
from helpkit.errors import ConfigError, ValidationError
from helpkit.intake import Intake, IntakeKind
from helpkit.ports import ChangeFeed
from helpkit.stores.contract import check_cursor
from helpkit.testing.clock import FrozenClock
from imap_fixtures import ImapServer

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def email(n: int, *, sender: str = "ann@customer.example", subject: str | None = None) -> bytes:
    """A small new request, Message-ID ``<req-n@customer.example>``."""
    return (
        f"From: Customer <{sender}>\r\n"
        "To: support@help.example\r\n"
        f"Subject: {subject or f'Request {n}'}\r\n"
        f"Message-ID: <req-{n}@customer.example>\r\n"
        "Date: Mon, 07 Dec 2026 08:00:00 +0000\r\n"
        "\r\n"
        f"Body of request {n}.\r\n"
    ).encode()


def account(server: ImapServer, mailbox: str, **options: Any) -> ImapAccount:
    fields: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "plain",
        "user": server.user,
        "password": server.password,
        "mailbox": mailbox,
        "name": "support",
    }
    fields.update(options)
    return ImapAccount(**fields)


def open_desk(path: Path) -> Helpdesk:
    return Helpdesk(f"sqlite:///{path}", clock=FrozenClock(NOW), entry_points=False)


def receiver(desk: Helpdesk) -> Callable[[bytes], Intake]:
    def handle(raw: bytes) -> Intake:
        return desk.receive(parse(raw, received_at=desk.now()))

    return handle


def subjects(desk: Helpdesk) -> list[str]:
    return sorted(t.subject for t in desk.tickets(limit=500).items)


def feed(desk: Helpdesk) -> ChangeFeed:
    store = desk.store
    assert isinstance(store, ChangeFeed)
    return store


# ------------------------------------------------------------------ against Dovecot


def test_new_messages_become_tickets_once(imap_server: ImapServer, tmp_path: Path) -> None:
    box = imap_server.new_mailbox()
    uids = [imap_server.append(box, email(n)) for n in (1, 2, 3)]
    with open_desk(tmp_path / "desk.db") as desk:
        poller: ImapPoller = ImapPoller(account(imap_server, box, batch=2), desk.store)
        report = poller.poll(receiver(desk))
        assert [m.uid for m in report.messages] == uids
        assert [m.result.kind for m in report.messages] == [IntakeKind.CREATED] * 3
        assert (report.before, report.after) == (0, uids[-1])
        validity = imap_server.uidvalidity(box)
        assert report.uidvalidity == validity
        assert report.cursor == f"imap:support:{box.replace('_', '_5F')}:{validity}"
        assert feed(desk).cursor(report.cursor) == uids[-1]
        assert subjects(desk) == ["Request 1", "Request 2", "Request 3"]
        again = poller.poll(receiver(desk))
        assert again.messages == () and again.before == again.after == uids[-1]
    # Read-only: nothing was marked read or moved.
    assert imap_server.uids(box) == uids
    assert "\\Seen" not in imap_server.flags(box, uids[0])


def test_a_restart_ingests_nothing_twice_and_skips_nothing(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    box = imap_server.new_mailbox()
    for n in range(1, 6):
        imap_server.append(box, email(n))
    path = tmp_path / "desk.db"
    with open_desk(path) as desk:
        first = ImapPoller(account(imap_server, box), desk.store).poll(receiver(desk), limit=3)
        assert len(first.messages) == 3
    for n in range(6, 8):
        imap_server.append(box, email(n))
    with open_desk(path) as desk:  # a new process: a new desk, a new poller
        second = ImapPoller(account(imap_server, box), desk.store).poll(receiver(desk))
        assert [m.result.kind for m in second.messages] == [IntakeKind.CREATED] * 4
        assert second.before == first.after
        assert subjects(desk) == [f"Request {n}" for n in range(1, 8)]


def test_a_crash_between_ingest_and_cursor_is_absorbed_by_the_receipts(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    box = imap_server.new_mailbox()
    for n in (1, 2, 3):
        imap_server.append(box, email(n))
    with open_desk(tmp_path / "desk.db") as desk:
        poller: ImapPoller = ImapPoller(account(imap_server, box), desk.store)
        ingest = receiver(desk)
        seen: list[Intake] = []

        def dies_after_the_second(raw: bytes) -> Intake:
            outcome = ingest(raw)
            seen.append(outcome)
            if len(seen) == 2:
                raise RuntimeError("killed after ingesting, before the cursor")
            return outcome

        with pytest.raises(RuntimeError):
            poller.poll(dies_after_the_second)
        uids = imap_server.uids(box)
        name = cursor_name("support", box, imap_server.uidvalidity(box))
        assert feed(desk).cursor(name) == uids[0]  # the second message was not passed
        report = poller.poll(ingest)
        assert [m.uid for m in report.messages] == uids[1:]
        assert [m.result.duplicate for m in report.messages] == [True, False]
        assert report.messages[0].result.ticket_id == seen[1].ticket_id
        assert subjects(desk) == ["Request 1", "Request 2", "Request 3"]


def test_a_grouped_poll_commits_each_batch_with_its_cursor(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    """With ``group`` (what ``helpkit mail poll`` passes), each fetched batch and the cursor
    past it are one commit, and its messages are flagged only once it is committed: a
    handler that fails in the second batch leaves the first batch stored, flagged and passed,
    and nothing of the second."""
    box = imap_server.new_mailbox()
    for n in range(1, 6):
        imap_server.append(box, email(n))
    uids = imap_server.uids(box)
    with open_desk(tmp_path / "desk.db") as desk:
        poller: ImapPoller = ImapPoller(
            account(imap_server, box, batch=2, flag="helpkit"), desk.store
        )
        ingest = receiver(desk)
        calls = 0

        def dies_at_the_fourth(raw: bytes) -> Intake:
            nonlocal calls
            calls += 1
            if calls == 4:
                raise RuntimeError("killed in the second batch")
            return ingest(raw)

        with pytest.raises(RuntimeError):
            poller.poll(dies_at_the_fourth, group=desk.group_commit)
        name = cursor_name("support", box, imap_server.uidvalidity(box))
        assert feed(desk).cursor(name) == uids[1]
        assert subjects(desk) == ["Request 1", "Request 2"]
        assert ["helpkit" in imap_server.flags(box, uid) for uid in uids] == [
            True,
            True,
            False,
            False,
            False,
        ]
        report = poller.poll(ingest, group=desk.group_commit)
        assert [m.uid for m in report.messages] == uids[2:]
        assert [m.result.duplicate for m in report.messages] == [False] * 3
        assert feed(desk).cursor(name) == uids[-1]
        assert subjects(desk) == [f"Request {n}" for n in range(1, 6)]
        assert all("helpkit" in imap_server.flags(box, uid) for uid in uids)


def test_a_new_uidvalidity_reads_the_mailbox_again(imap_server: ImapServer, tmp_path: Path) -> None:
    box = imap_server.new_mailbox()
    for n in (1, 2):
        imap_server.append(box, email(n))
    with open_desk(tmp_path / "desk.db") as desk:
        poller: ImapPoller = ImapPoller(account(imap_server, box), desk.store)
        before = poller.poll(receiver(desk))
        validity = imap_server.recreate(box)  # emptied, renumbered
        for n in (2, 3):  # one old message (restored from a backup), one new
            imap_server.append(box, email(n))
        after = poller.poll(receiver(desk))
        assert after.uidvalidity == validity != before.uidvalidity
        assert after.cursor != before.cursor and after.before == 0
        assert [(m.result.kind, m.result.duplicate) for m in after.messages] == [
            (IntakeKind.CREATED, True),
            (IntakeKind.CREATED, False),
        ]
        assert subjects(desk) == ["Request 1", "Request 2", "Request 3"]
        cursors = feed(desk).cursors()
        assert cursors[before.cursor] == before.after and cursors[after.cursor] == after.after


def test_a_refused_connection_is_an_imap_error_and_moves_no_cursor(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    box = imap_server.new_mailbox()
    imap_server.append(box, email(1))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with open_desk(tmp_path / "desk.db") as desk:
        ImapPoller(account(imap_server, box), desk.store).poll(receiver(desk))
        cursors = feed(desk).cursors()
        imap_server.append(box, email(2))
        down = ImapPoller(account(imap_server, box, port=closed, timeout=5), desk.store)
        with pytest.raises(ImapError, match="cannot connect"):
            down.poll(receiver(desk))
        wrong = ImapPoller(account(imap_server, box, password="nope"), desk.store)
        with pytest.raises(ImapError, match="refused the login"):
            wrong.poll(receiver(desk))
        missing = ImapPoller(account(imap_server, "NoSuchBox"), desk.store)
        with pytest.raises(ImapError, match="SELECT"):
            missing.poll(receiver(desk))
        assert feed(desk).cursors() == cursors
        assert subjects(desk) == ["Request 1"]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_verifies_the_server(imap_server: ImapServer, tmp_path: Path, security: str) -> None:
    box = imap_server.new_mailbox()
    imap_server.append(box, email(1))
    port = imap_server.tls_port if security == "ssl" else imap_server.port
    with open_desk(tmp_path / "desk.db") as desk:
        untrusted = ImapPoller(account(imap_server, box, security=security, port=port), desk.store)
        with pytest.raises(ImapError, match=r"(?i)certificate"):
            untrusted.poll(receiver(desk))
        trusted = ImapPoller(
            account(
                imap_server,
                box,
                security=security,
                port=port,
                ssl_context=imap_server.ssl_context(),
            ),
            desk.store,
        )
        assert len(trusted.poll(receiver(desk)).messages) == 1


def test_flag_and_move_after_ingest(imap_server: ImapServer, tmp_path: Path) -> None:
    box = imap_server.new_mailbox()
    done = imap_server.new_mailbox("Done")
    for n in (1, 2):
        imap_server.append(box, email(n))
    with open_desk(tmp_path / "desk.db") as desk:
        flagged = ImapPoller(account(imap_server, box, flag="\\Seen"), desk.store)
        assert len(flagged.poll(receiver(desk)).messages) == 2
        assert all("\\Seen" in imap_server.flags(box, uid) for uid in imap_server.uids(box))
        imap_server.append(box, email(3))
        moving = ImapPoller(
            account(imap_server, box, name="mover", flag="helpkit", move_to=done), desk.store
        )
        report = moving.poll(receiver(desk))  # another account name: read from the start
        assert [m.result.duplicate for m in report.messages] == [True, True, False]
        assert imap_server.uids(box) == []
        moved = imap_server.uids(done)
        assert len(moved) == 3 and "helpkit" in imap_server.flags(done, moved[0])
        nowhere = ImapPoller(account(imap_server, done, move_to="Missing"), desk.store)
        imap_server.append(done, email(4))
        with pytest.raises(ImapError, match="Missing"):
            nowhere.poll(receiver(desk))
        assert subjects(desk) == ["Request 1", "Request 2", "Request 3"]


def test_a_message_not_finished_stays_where_it_is(imap_server: ImapServer, tmp_path: Path) -> None:
    box = imap_server.new_mailbox()
    done = imap_server.new_mailbox("Done")
    first, second = imap_server.append(box, email(1)), imap_server.append(box, b"garbage")
    with open_desk(tmp_path / "desk.db") as desk:
        poller: ImapPoller = ImapPoller(account(imap_server, box, move_to=done), desk.store)
        report = poller.poll(lambda raw: raw.startswith(b"From:"), finished=lambda ok: ok)
        assert [(m.uid, m.result) for m in report.messages] == [(first, True), (second, False)]
        assert imap_server.uids(box) == [second] and report.after == second


def test_stop_ends_the_poll_after_the_message_at_hand(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    box = imap_server.new_mailbox()
    for n in (1, 2, 3):
        imap_server.append(box, email(n))
    with open_desk(tmp_path / "desk.db") as desk:
        stop = threading.Event()
        ingest = receiver(desk)

        def stops(raw: bytes) -> Intake:
            stop.set()
            return ingest(raw)

        poller: ImapPoller = ImapPoller(account(imap_server, box), desk.store)
        report = poller.poll(stops, stop=stop)
        assert len(report.messages) == 1 and report.stopped
        assert len(poller.poll(ingest).messages) == 2


def test_a_non_ascii_mailbox_name(imap_server: ImapServer, tmp_path: Path) -> None:
    name = f"Équipe Café {imap_server.new_mailbox()}"
    with imap_server.session() as client:
        typ, data = client.create('"' + encode_mailbox(name) + '"')
        assert typ == "OK", data
    imap_server.append('"' + encode_mailbox(name) + '"', email(1))
    with open_desk(tmp_path / "desk.db") as desk:
        report = ImapPoller(account(imap_server, name), desk.store).poll(receiver(desk))
        assert len(report.messages) == 1
        check_cursor(report.cursor)


def test_pollers_racing_on_one_mailbox_make_each_ticket_once(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    box = imap_server.new_mailbox()
    for n in range(1, 13):
        imap_server.append(box, email(n))
    path = tmp_path / "desk.db"
    with open_desk(path):
        pass
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with open_desk(path) as desk:
                poller: ImapPoller = ImapPoller(account(imap_server, box, batch=3), desk.store)
                poller.poll(receiver(desk))
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with open_desk(path) as desk:
        assert subjects(desk) == sorted(f"Request {n}" for n in range(1, 13))
        name = cursor_name("support", box, imap_server.uidvalidity(box))
        assert feed(desk).cursor(name) == imap_server.uids(box)[-1]


def test_the_store_must_keep_cursors(imap_server: ImapServer) -> None:
    with pytest.raises(ConfigError, match="cursors"):
        ImapPoller(account(imap_server, "INBOX"), object())


# ------------------------------------------------------------------ the pure parts


def test_accounts_are_checked() -> None:
    good: dict[str, Any] = {"host": "imap.example", "user": "u", "password": "p"}
    assert ImapAccount(**good).effective_port == 993
    assert ImapAccount(**good, security="starttls").effective_port == 143
    assert ImapAccount(**good).account == "u@imap.example"
    for bad in (
        {"security": "tls"},
        {"port": 0},
        {"port": True},
        {"mailbox": ""},
        {"mailbox": "In\r\nbox"},
        {"flag": "\\Seen) (x"},
        {"batch": 0},
        {"timeout": float("nan")},
        {"ssl_context": "yes"},
        {"name": " "},
        {"host": ""},
    ):
        with pytest.raises(ValidationError):
            ImapAccount(**{**good, **bad})
    assert "hunter2" not in repr(ImapAccount(**{**good, "password": "hunter2"}))


def _decode_mailbox(encoded: str) -> str:
    """Modified UTF-7 back to text, through the standard library's UTF-7 codec."""
    out, index = [], 0
    while index < len(encoded):
        if encoded[index] == "&":
            end = encoded.index("-", index)
            chunk = encoded[index + 1 : end]
            out.append(
                "&" if not chunk else ("+" + chunk.replace(",", "/") + "-").encode().decode("utf-7")
            )
            index = end + 1
        else:
            out.append(encoded[index])
            index += 1
    return "".join(out)


@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_mailbox_names_round_trip_in_modified_utf7(name: str) -> None:
    encoded = encode_mailbox(name)
    assert encoded.isascii() and all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert _decode_mailbox(encoded) == name


def test_mailbox_name_examples() -> None:
    assert encode_mailbox("INBOX") == "INBOX"
    assert encode_mailbox("Café") == "Caf&AOk-"
    assert encode_mailbox("A&B") == "A&-B"
    assert encode_mailbox("日本語") == "&ZeVnLIqe-"


_names = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=120)


@given(_names, _names, st.integers(1, 2**32 - 1), _names, _names)
def test_cursor_names_are_valid_and_tell_mailboxes_apart(
    account_a: str, mailbox_a: str, validity: int, account_b: str, mailbox_b: str
) -> None:
    name = cursor_name(account_a, mailbox_a, validity)
    assert check_cursor(name) == name and name.startswith("imap:")
    assert name.endswith(f":{validity}")
    if (account_a, mailbox_a) != (account_b, mailbox_b):
        assert cursor_name(account_b, mailbox_b, validity) != name
    assert cursor_name(account_a, mailbox_a, validity + 1) != name


@given(
    st.lists(
        st.tuples(st.integers(1, 10**9), st.binary(max_size=60), st.booleans()),
        max_size=6,
        unique_by=lambda t: t[0],
    )
)
def test_fetch_answers_are_read_whichever_side_the_uid_is(
    messages: list[tuple[int, bytes, bool]],
) -> None:
    data: list[object] = [b"9 (FLAGS (\\Seen) UID 4242)"]  # an unrelated flag update
    for seq, (uid, body, uid_first) in enumerate(messages, 1):
        if uid_first:
            data.append((f"{seq} (UID {uid} BODY[] {{{len(body)}}}".encode(), body))
            data.append(b")")
        else:
            data.append((f"{seq} (BODY[] {{{len(body)}}}".encode(), body))
            data.append(f" UID {uid})".encode())
    assert _bodies(data) == {uid: body for uid, body, _ in messages}


def test_tls_context_is_checked_as_a_context() -> None:
    context = ssl.create_default_context()
    acct = ImapAccount(host="h", user="u", password="p", ssl_context=context)
    assert acct.ssl_context is context


def test_follow_keeps_going_through_failures_until_stopped(
    imap_server: ImapServer, tmp_path: Path
) -> None:
    box = imap_server.new_mailbox()
    imap_server.append(box, email(1))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with open_desk(tmp_path / "desk.db") as desk:
        stop = threading.Event()
        errors: list[Exception] = []

        def failed(exc: Exception) -> None:
            errors.append(exc)
            if len(errors) == 2:
                stop.set()

        down = ImapPoller(account(imap_server, box, port=closed, timeout=5), desk.store)
        assert down.follow(receiver(desk), stop, interval=0.01, on_error=failed) == 0
        assert [type(e) for e in errors] == [ImapError, ImapError]
        stop.clear()
        reports: list[int] = []

        def reported(report: Any) -> None:
            reports.append(len(report.messages))
            if len(reports) == 1:
                imap_server.append(box, email(2))
            else:
                stop.set()

        up = ImapPoller(account(imap_server, box), desk.store)
        total = up.follow(receiver(desk), stop, interval=0.01, on_report=reported)
        assert total == 2 and reports[:2] == [1, 1]
        with pytest.raises(ValidationError):
            up.follow(receiver(desk), stop, interval=0)
