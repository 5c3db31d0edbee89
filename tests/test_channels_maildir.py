"""The Maildir channel, on the real file system: one file per message, whatever repeats it."""

from __future__ import annotations

import errno
import mailbox
import multiprocessing
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from helpkit import Actor, Helpdesk
from helpkit.channels.maildir import MaildirChannel, MaildirError, maildir_channel_factory
from helpkit.channels.mime import message_bytes, parse_sender, render
from helpkit.errors import ConfigError
from helpkit.ports import OutboundMessage, Recipient
from helpkit.relay import RetryPolicy
from helpkit.testing.clock import FrozenClock

SENT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def outbound(key: str = "t1-7-reply", **changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "ticket_id": "t1",
        "ticket_number": 42,
        "subject": "[#42] VPN down",
        "body": "Hello Bob",
        "comment_id": "c9",
        "author_name": "Ana",
        "to": [Recipient("contact", "c1", "Bob Núñez", "bob@acme.example")],
        "sent_at": SENT,
        "idempotency_key": key,
    }
    fields.update(changes)
    return OutboundMessage(**fields)


def channel(folder: Path, **options: Any) -> MaildirChannel:
    return MaildirChannel(folder, sender="Support <support@help.example>", **options)


def files(folder: Path, sub: str) -> list[str]:
    return sorted(os.listdir(folder / sub))


def read(path: Path) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def test_a_message_is_one_file_in_new(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    maildir = channel(folder)
    assert not folder.exists()  # building the channel creates nothing
    external_id = maildir.deliver(outbound())
    assert external_id == "<t1-7-reply@help.example>"
    assert files(folder, "new") == ["helpkit.t1-7-reply"]
    assert files(folder, "tmp") == files(folder, "cur") == []
    email = read(folder / "new" / "helpkit.t1-7-reply")
    assert email["Message-ID"] == external_id
    assert str(email["Subject"]) == "[#42] VPN down"
    assert email["From"].addresses[0].addr_spec == "support@help.example"
    assert email.get_content() == "Hello Bob\n"
    assert (folder / "new" / "helpkit.t1-7-reply").stat().st_mode & 0o777 == 0o600


def test_delivering_the_same_message_again_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    maildir = channel(folder)
    first = maildir.deliver(outbound())
    written = (folder / "new" / "helpkit.t1-7-reply").read_bytes()
    # a retry: another attempt, later, even with another body, is the same message
    again = maildir.deliver(outbound(body="changed", sent_at=SENT + timedelta(hours=1)))
    assert again == first
    assert files(folder, "new") == ["helpkit.t1-7-reply"]
    assert (folder / "new" / "helpkit.t1-7-reply").read_bytes() == written
    # read by a mail reader: moved to cur/ with its flags; still delivered
    os.rename(folder / "new" / "helpkit.t1-7-reply", folder / "cur" / "helpkit.t1-7-reply:2,S")
    assert maildir.deliver(outbound()) == first
    assert files(folder, "new") == [] and files(folder, "tmp") == []
    # another key is another message
    assert maildir.deliver(outbound("t1-9-reply")) == "<t1-9-reply@help.example>"
    assert files(folder, "new") == ["helpkit.t1-9-reply"]


def test_a_key_that_is_no_file_name_is_hashed(tmp_path: Path) -> None:
    maildir = channel(tmp_path)
    external_id = maildir.deliver(outbound("../../etc/passwd:2,S"))
    (name,) = files(tmp_path, "new")
    assert name.startswith("helpkit.x.") and ":" not in name and "/" not in name
    assert external_id == f"<{name.removeprefix('helpkit.')}@help.example>"
    assert maildir.deliver(outbound("../../etc/passwd:2,S")) == external_id
    assert len(files(tmp_path, "new")) == 1


def test_mailbox_maildir_reads_every_message(tmp_path: Path) -> None:
    maildir = channel(tmp_path / "mail", domain="mail.help.example")
    ids = [
        maildir.deliver(
            outbound(
                f"t1-{n}-reply",
                subject=f"[#42] Réponse {n} — 日本語",
                body=f"Ligne 1\nDeuxième ligne {n}: ça marche\n",
                to=[
                    Recipient("contact", "c1", "Zoë Müller", "zoe@acme.example"),
                    Recipient("contact", "c2", "Без адреса", None),
                ],
            )
        )
        for n in range(5)
    ]
    box = mailbox.Maildir(tmp_path / "mail", factory=None, create=False)
    assert sorted(box.keys()) == sorted(f"helpkit.t1-{n}-reply" for n in range(5))
    for key in box.iterkeys():
        with box.get_file(key) as handle:
            email = BytesParser(policy=policy.default).parsebytes(handle.read())
        assert isinstance(email, EmailMessage)
        n = int(key.split("-")[1])
        assert email["Message-ID"] == ids[n] == f"<t1-{n}-reply@mail.help.example>"
        assert str(email["Subject"]) == f"[#42] Réponse {n} — 日本語"
        assert [(a.display_name, a.addr_spec) for a in email["To"].addresses] == [
            ("Zoë Müller", "zoe@acme.example")
        ]
        assert email.get_content() == f"Ligne 1\nDeuxième ligne {n}: ça marche\n"
        assert box.get_message(key).get_subdir() == "new"
    data = (tmp_path / "mail" / "new" / "helpkit.t1-0-reply").read_bytes()
    assert data.isascii()  # encoded headers and body: any transport takes it


def test_a_non_ascii_address_is_written_in_utf8(tmp_path: Path) -> None:
    maildir = channel(tmp_path)
    maildir.deliver(outbound(to=[Recipient("contact", "c1", "Zoë", "zoë@example.com")]))
    data = (tmp_path / "new" / "helpkit.t1-7-reply").read_bytes()
    assert b"\nTo: =?utf-8?b?Wm/Dqw==?= <zo\xc3\xab@example.com>\n" in data  # RFC 6532


def _deliver_all(folder: str, keys: Sequence[str], barrier: Any) -> list[str]:
    maildir = MaildirChannel(folder, sender="support@help.example")
    barrier.wait()
    return [maildir.deliver(outbound(key)) for key in keys]


def _worker(folder: str, keys: Sequence[str], barrier: Any, results: Any) -> None:
    results.put(_deliver_all(folder, keys, barrier))


def test_processes_delivering_the_same_messages_at_once_write_each_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    keys = [f"t1-{n}-reply" for n in range(20)]
    workers = 6
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(str(tmp_path), keys, barrier, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    returned = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert all(ids == returned[0] for ids in returned)
    assert returned[0] == [f"<{key}@help.example>" for key in keys]
    assert files(tmp_path, "new") == sorted(f"helpkit.{key}" for key in keys)
    assert files(tmp_path, "tmp") == []
    sender = parse_sender("support@help.example")
    for key in keys:  # each file whole
        expected = message_bytes(render(outbound(key), sender=sender))
        assert (tmp_path / "new" / f"helpkit.{key}").read_bytes() == expected


def test_a_folder_that_cannot_be_written_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(MaildirError, match=r"cannot deliver to the Maildir .*a-file"):
        channel(blocker / "mail").deliver(outbound())
    with pytest.raises(MaildirError, match="is a file, not a folder"):
        channel(blocker).deliver(outbound())
    assert issubclass(MaildirError, OSError)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_raises(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    maildir = channel(folder)
    maildir.deliver(outbound())
    (folder / "tmp").chmod(0o500)
    try:
        with pytest.raises(MaildirError, match="Permission denied"):
            maildir.deliver(outbound("t1-8-reply"))
    finally:
        (folder / "tmp").chmod(0o700)


def test_without_hard_links_a_rename_delivers_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    maildir = channel(tmp_path)
    first = maildir.deliver(outbound())
    assert maildir.deliver(outbound()) == first
    assert files(tmp_path, "new") == ["helpkit.t1-7-reply"]
    assert files(tmp_path, "tmp") == []


def test_a_failing_link_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(source: object, target: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", broken)
    with pytest.raises(MaildirError, match="Input/output error"):
        channel(tmp_path).deliver(outbound())
    assert files(tmp_path, "tmp") == files(tmp_path, "new") == []


# ------------------------------------------------------------------ configuration


def test_the_factory_reads_its_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    made = maildir_channel_factory(
        {
            "name": "email",
            "type": "maildir",
            "directory": "helpkit-mail",
            "sender": "Support <support@help.example>",
            "domain": "mail.help.example",
            "fsync": False,
        }
    )
    assert made.name == "email" and made.fsync is False
    assert made.directory == tmp_path / "helpkit-mail"  # relative: to the current directory
    assert made.domain == "mail.help.example"
    monkeypatch.chdir(tmp_path.parent)  # resolved once, when built
    made.deliver(outbound())
    assert files(tmp_path / "helpkit-mail", "new") == ["helpkit.t1-7-reply"]
    home = maildir_channel_factory({"directory": "~/mail", "sender": "s@help.example"})
    assert home.directory == Path(os.path.expanduser("~/mail"))
    assert home.domain == "help.example"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"sender": "s@help.example"}, "needs directory"),
        ({"directory": "m"}, "needs sender"),
        ({"directory": "m", "sender": "s@help.example", "dir": "x"}, "unknown option dir"),
        ({"directory": 3, "sender": "s@help.example"}, "directory must be text"),
        ({"directory": "", "sender": "s@help.example"}, "must be a path"),
        ({"directory": "m\x00", "sender": "s@help.example"}, "must be a path"),
        ({"directory": "m", "sender": 1}, "sender must be text"),
        ({"directory": "m", "sender": "nobody"}, "not an email address"),
        ({"directory": "m", "sender": "s@help.example", "domain": 5}, "domain must be text"),
        ({"directory": "m", "sender": "s@help.example", "domain": "x"}, "DNS name"),
        ({"directory": "m", "sender": "s@help.example", "fsync": "yes"}, "fsync"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        maildir_channel_factory(options)


# ------------------------------------------------------------------ with the relay


def _desk(folder: Path, clock: FrozenClock) -> Helpdesk:
    config = {
        "channels": {
            "email": {"type": "maildir", "directory": str(folder), "sender": "s@help.example"}
        }
    }
    return Helpdesk("memory://", config=config, clock=clock, retry=RetryPolicy(jitter=0.0))


def test_the_relay_retries_a_folder_it_could_not_write(tmp_path: Path) -> None:
    clock = FrozenClock(SENT)
    blocker = tmp_path / "mail"
    blocker.write_text("a file where the Maildir should be")
    desk = _desk(blocker, clock)
    desk.add_agent("ana", "Ana", email="ana@help.example")
    bob = desk.create_contact("Bob Núñez", emails=["bob@acme.example"])
    ticket = desk.open_ticket(Actor.contact(bob.id), requester=bob, subject="VPN", body="down")
    desk.reply(ticket, Actor.agent("ana"), "Looking into it")
    report = desk.deliver_pending()
    assert (report.sent, report.retried, report.dead) == (0, 1, 0)
    (pending,) = desk.deliveries(state="pending")
    assert pending.attempts == 1 and "is a file, not a folder" in (pending.last_error or "")
    blocker.unlink()
    clock.advance(timedelta(minutes=5))
    report = desk.deliver_pending()
    assert (report.sent, report.retried) == (1, 0)
    (sent,) = desk.deliveries(state="sent")
    assert sent.external_id == f"<{sent.id}@help.example>"
    assert files(blocker, "new") == [f"helpkit.{sent.id}"]
    assert read(blocker / "new" / f"helpkit.{sent.id}")["To"].addresses[0].display_name == (
        "Bob Núñez"
    )


def test_a_desk_builds_the_maildir_channel_by_type(tmp_path: Path) -> None:
    desk = _desk(tmp_path / "mail", FrozenClock(SENT))
    assert isinstance(desk.channels["email"], MaildirChannel)
    assert not (tmp_path / "mail").exists()
