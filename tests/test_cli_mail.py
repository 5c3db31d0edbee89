"""``helpkit mail``: an email on standard input (as a mail server's pipe runs it, with the
mail server's exit statuses), a folder import, IMAP polling from the configuration (once and
as a worker stopped by a signal, against the private Dovecot), and the suspended messages;
run as a separate process on a real SQLite file, and in process for many inputs."""

from __future__ import annotations

import contextlib
import io
import json
import mailbox
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit.cli import main
from imap_fixtures import ImapServer

REQUEST = (
    b"From: Ann <ann@customer.example>\r\n"
    b"To: support@help.example\r\n"
    b"Subject: Printer on fire\r\n"
    b"Message-ID: <p1@customer.example>\r\n"
    b"Date: Mon, 07 Dec 2026 08:00:00 +0000\r\n"
    b"\r\n"
    b"It is on fire.\r\n"
)
REPLY = (
    b"From: Ann <ann@customer.example>\r\n"
    b"Subject: Re: [#1] Printer on fire\r\n"
    b"Message-ID: <p2@customer.example>\r\n"
    b"In-Reply-To: <p1@customer.example>\r\n"
    b"\r\n"
    b"Still burning.\r\n"
)
BOUNCE = (
    b"From: MAILER-DAEMON@customer.example\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <b1@customer.example>\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"\r\n"
    b"It did not arrive.\r\n"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELPKIT_", "PYTHONIO"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"), **extra)
    return env


def helpkit(
    tmp_path: Path, *args: str, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[str]:
    """``helpkit ARGS`` in ``tmp_path`` as its own process; never a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "helpkit", *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        input=stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        encoding="latin-1",
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def init(tmp_path: Path) -> None:
    assert helpkit(tmp_path, "init").returncode == 0


def ticket_count(tmp_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(tmp_path / "helpkit.db")) as conn:
        count: int = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        return count


# ------------------------------------------------------------------ ingest


def test_ingest_creates_threads_dedupes_and_suspends(tmp_path: Path) -> None:
    init(tmp_path)
    first = helpkit(tmp_path, "mail", "ingest", stdin=REQUEST)
    assert (first.returncode, first.stdout) == (0, "created #1\n")
    again = helpkit(tmp_path, "mail", "ingest", stdin=REQUEST)
    assert (again.returncode, again.stdout) == (0, "duplicate (created #1)\n")
    reply = helpkit(tmp_path, "mail", "ingest", "--json", stdin=REPLY)
    assert reply.returncode == 0
    data = json.loads(reply.stdout)
    assert (data["kind"], data["ticket_number"], data["key"]) == (
        "commented",
        1,
        "email:p2@customer.example",
    )
    bounce = helpkit(tmp_path, "mail", "ingest", stdin=BOUNCE)
    assert bounce.returncode == 0 and bounce.stdout.startswith("suspended: bounce")
    assert ticket_count(tmp_path) == 1


def test_ingest_speaks_the_mail_servers_exit_statuses(tmp_path: Path) -> None:
    missing = helpkit(tmp_path, "mail", "ingest", stdin=REQUEST)
    assert missing.returncode == 78  # EX_CONFIG: no store yet; the mail server retries
    assert missing.stderr.startswith("helpkit: error: no store at")
    init(tmp_path)
    for garbage in (b"", b"garbage\n", b"\x00\xff" * 100, b"Subject: no sender\r\n\r\nx\r\n"):
        refused = helpkit(tmp_path, "mail", "ingest", stdin=garbage)
        assert refused.returncode == 65, refused  # EX_DATAERR: it bounces
        assert refused.stderr.startswith("helpkit: error: not a usable email")
        assert len(refused.stderr.splitlines()) == 1
    (tmp_path / "bad.toml").write_text(
        '[mailbox]\nhost = "h"\nuser = "u"\npassword_env = "P"\nx = 1\n'
    )
    bad = helpkit(tmp_path, "--config", "bad.toml", "mail", "ingest", stdin=REQUEST)
    assert bad.returncode == 78 and "unknown [mailbox] keys: x" in bad.stderr
    # A store another process holds locked: EX_TEMPFAIL, nothing written; the retry works.
    holder = sqlite3.connect(tmp_path / "helpkit.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        locked = helpkit(
            tmp_path, "--store", "sqlite:///helpkit.db?timeout=0.2", "mail", "ingest", stdin=REQUEST
        )
        assert locked.returncode == 75, locked  # EX_TEMPFAIL: the mail server keeps it
        assert len(locked.stderr.strip().splitlines()) == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ticket_count(tmp_path) == 0
    retried = helpkit(tmp_path, "mail", "ingest", stdin=REQUEST)
    assert (retried.returncode, retried.stdout) == (0, "created #1\n")


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("HELPKIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert main(["init"]) == 0
    return tmp_path


_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"From: a@b.example",
                b"From: \xff\xfe",
                b"Subject: =?utf-8?B?////?=",
                b"Content-Type: multipart/mixed; boundary=x",
                b"--x",
                b"Content-Transfer-Encoding: base64",
                b"Message-ID: <m@x>",
                b"In-Reply-To: <hk1-1-abc@help.example>",
                b"",
            ]
        ),
        st.binary(max_size=40),
    ),
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(_lines)
def test_any_bytes_on_stdin_get_a_clear_outcome(
    in_process: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lines: list[bytes],
) -> None:
    raw = b"\r\n".join(lines)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    status = main(["mail", "ingest"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if status == 0:
        outcome = out.strip()
        assert outcome.startswith(("created #", "commented #", "suspended: ", "duplicate ("))
    else:
        assert status == 65, err
        assert err.startswith("helpkit: error: not a usable email") and out == ""


# ------------------------------------------------------------------ import


def test_import_a_maildir(tmp_path: Path) -> None:
    init(tmp_path)
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for raw in (REQUEST, REPLY, b"not mail\r\n"):
        box.add(mailbox.MaildirMessage(raw))
    done = helpkit(tmp_path, "mail", "import", "Maildir", "--move")
    assert done.returncode == 1  # one file could not be read as an email: it stays
    lines = done.stdout.splitlines()
    outcomes = sorted(line.split(": ", 1)[1] for line in lines[:-1])
    assert outcomes == ["commented #1", "created #1", "unparseable: the message has no headers"]
    assert lines[-1].startswith("import: 3 messages from Maildir")
    assert lines[-1].endswith("1 unparseable (kept)")
    assert len(os.listdir(tmp_path / "Maildir" / "new")) == 1
    assert len(os.listdir(tmp_path / "Maildir" / "cur")) == 2
    again = helpkit(tmp_path, "mail", "import", "Maildir", "--json")
    rows = [json.loads(line) for line in again.stdout.splitlines()]
    assert sorted(r["kind"] for r in rows) == ["commented", "created", "unparseable"]
    assert all(r.get("duplicate", True) for r in rows)
    missing = helpkit(tmp_path, "mail", "import", "nowhere")
    assert missing.returncode == 2 and missing.stderr == "helpkit: error: no folder at nowhere\n"
    plain = tmp_path / "eml"
    plain.mkdir()
    refused = helpkit(tmp_path, "mail", "import", "eml", "--move")
    assert refused.returncode == 2 and "not a Maildir" in refused.stderr


# ------------------------------------------------------------------ poll


def test_import_in_batches_deletes_each_file_once_committed(tmp_path: Path) -> None:
    init(tmp_path)
    folder = tmp_path / "eml"
    folder.mkdir()
    for n in range(1, 6):
        raw = (
            f"From: c{n}@customer.example\r\nTo: support@help.example\r\n"
            f"Subject: Request {n}\r\nMessage-ID: <b{n}@customer.example>\r\n\r\nBody.\r\n"
        )
        (folder / f"{n:04d}.eml").write_text(raw, encoding="ascii")
    done = helpkit(tmp_path, "mail", "import", "eml", "--delete", "--batch", "2")
    assert done.returncode == 0, done.stderr
    assert [line.split(": ", 1)[1] for line in done.stdout.splitlines()[:-1]] == [
        f"created #{n}" for n in range(1, 6)
    ]
    assert list(folder.iterdir()) == []
    assert ticket_count(tmp_path) == 5
    for bad in ("0", "10001", "two"):
        refused = helpkit(tmp_path, "mail", "import", "eml", "--batch", bad)
        assert refused.returncode == 2 and "--batch" in refused.stderr, refused.stderr


def _config(
    tmp_path: Path, server: ImapServer, mailbox_name: str, *, port: int | None = None
) -> None:
    (tmp_path / "helpkit.toml").write_text(
        "[mailbox]\n"
        f'host = "{server.host}"\n'
        f"port = {port or server.port}\n"
        'security = "plain"\n'
        f'user = "{server.user}"\n'
        'password_env = "SUPPORT_IMAP_PASSWORD"\n'
        f'mailbox = "{mailbox_name}"\n'
        'interval = "1s"\n'
        'flag = "\\\\Seen"\n'
        "timeout = 5\n"
    )


def test_poll_once(imap_server: ImapServer, tmp_path: Path) -> None:
    box = imap_server.new_mailbox()
    init(tmp_path)
    _config(tmp_path, imap_server, box)
    first_uid = imap_server.append(box, REQUEST)
    bad_uid = imap_server.append(box, b"no headers at all")
    reply_uid = imap_server.append(box, REPLY)
    done = helpkit(tmp_path, "mail", "poll", SUPPORT_IMAP_PASSWORD=imap_server.password)
    assert done.returncode == 1, done.stderr  # one message could not be read
    assert done.stdout.splitlines()[:3] == [
        f"{box} uid {first_uid}: created #1",
        f"{box} uid {bad_uid}: unparseable: the message has no headers",
        f"{box} uid {reply_uid}: commented #1",
    ]
    assert "3 new messages" in done.stdout and "1 unparseable" in done.stdout
    assert "\\Seen" in imap_server.flags(box, first_uid)
    assert "\\Seen" not in imap_server.flags(box, bad_uid)  # left for a person to look at
    imap_server.append(box, BOUNCE)
    again = helpkit(tmp_path, "mail", "poll", "--json", SUPPORT_IMAP_PASSWORD=imap_server.password)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["before"] == reply_uid and [m["kind"] for m in data["messages"]] == ["suspended"]
    nothing = helpkit(tmp_path, "mail", "poll", SUPPORT_IMAP_PASSWORD=imap_server.password)
    assert nothing.returncode == 0 and "0 new messages" in nothing.stdout
    assert ticket_count(tmp_path) == 1


def test_poll_mistakes_and_failures(imap_server: ImapServer, tmp_path: Path) -> None:
    init(tmp_path)
    none = helpkit(tmp_path, "mail", "poll")
    assert none.returncode == 2 and "no mailbox is configured" in none.stderr
    _config(tmp_path, imap_server, "INBOX")
    unset = helpkit(tmp_path, "mail", "poll")
    assert unset.returncode == 2 and "$SUPPORT_IMAP_PASSWORD, which is not set" in unset.stderr
    wrong = helpkit(tmp_path, "mail", "poll", SUPPORT_IMAP_PASSWORD="wrong")
    assert wrong.returncode == 1 and "refused the login" in wrong.stderr
    other = helpkit(tmp_path, "mail", "poll", "sales", SUPPORT_IMAP_PASSWORD="x")
    assert other.returncode == 2 and "no mailbox 'sales'" in other.stderr
    with open(tmp_path / "helpkit.toml", "a") as config:
        config.write('passwd = "oops"\n')
    unknown = helpkit(tmp_path, "mail", "poll")
    assert unknown.returncode == 2 and "unknown [mailbox] keys: passwd" in unknown.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    _config(tmp_path, imap_server, "INBOX", port=closed)
    down = helpkit(tmp_path, "mail", "poll", SUPPORT_IMAP_PASSWORD="x")
    assert down.returncode == 1 and down.stderr.startswith("helpkit: error: cannot connect")
    assert len(down.stderr.splitlines()) == 1


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_poll_follow_ingests_as_mail_arrives_and_stops_cleanly(
    imap_server: ImapServer, tmp_path: Path, stop_with: signal.Signals
) -> None:
    box = imap_server.new_mailbox()
    init(tmp_path)
    _config(tmp_path, imap_server, box)
    worker = subprocess.Popen(
        [sys.executable, "-m", "helpkit", "mail", "poll", "--follow", "--interval", "0.1"],
        cwd=tmp_path,
        env=_env(tmp_path, SUPPORT_IMAP_PASSWORD=imap_server.password),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        first = worker.stdout.readline()
        assert first.startswith(f"poll: following default ({imap_server.user}@"), first
        uid = imap_server.append(box, REQUEST)
        assert worker.stdout.readline() == f"{box} uid {uid}: created #1\n"
        uid = imap_server.append(box, REPLY)
        assert worker.stdout.readline() == f"{box} uid {uid}: commented #1\n"
        worker.send_signal(stop_with)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    assert out.splitlines()[-1] == "poll: stopped; 2 messages in all"
    assert ticket_count(tmp_path) == 1


# ------------------------------------------------------------------ suspended messages


def test_suspended_release_and_discard(tmp_path: Path) -> None:
    init(tmp_path)
    assert helpkit(tmp_path, "mail", "suspended").stdout == "no suspended messages\n"
    assert helpkit(tmp_path, "mail", "ingest", stdin=BOUNCE).returncode == 0
    other = BOUNCE.replace(b"<b1@", b"<b2@")
    assert helpkit(tmp_path, "mail", "ingest", stdin=other).returncode == 0
    listed = helpkit(tmp_path, "mail", "suspended")
    assert "email:b1@customer.example" in listed.stdout
    assert "suspended: bounce" in listed.stdout
    data = json.loads(helpkit(tmp_path, "mail", "suspended", "--json").stdout)
    keys = [r["key"] for r in data["suspended"]]
    assert keys == ["email:b1@customer.example", "email:b2@customer.example"]
    discarded = helpkit(tmp_path, "mail", "discard", "email:b1@customer.example")
    assert discarded.stdout == "email:b1@customer.example: discarded\n"
    released = helpkit(tmp_path, "--as", "system:ops", "mail", "release", keys[1])
    assert released.returncode == 0
    assert released.stdout == "email:b2@customer.example: released: created #1\n"
    again = helpkit(tmp_path, "mail", "ingest", stdin=BOUNCE)
    assert (again.returncode, again.stdout) == (0, "duplicate (discarded)\n")
    unknown = helpkit(tmp_path, "mail", "release", "email:nope")
    assert unknown.returncode == 2 and unknown.stderr.startswith("helpkit: error:")
    assert helpkit(tmp_path, "mail", "suspended").stdout == "no suspended messages\n"
    bare = helpkit(tmp_path, "mail")
    assert bare.returncode == 2 and "name an action" in bare.stderr
