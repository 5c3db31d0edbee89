"""``helpkit deliver``: the relay from the command line, its dead letters, and the worker that
stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import json
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpkit import DeskConfig, Helpdesk, serialize
from helpkit.cli import main
from helpkit.ports import Delivery
from helpkit.relay import RelayReport, RetryPolicy
from helpkit.testing.clock import FrozenClock


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("HELPKIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def mail(folder: Path = Path("helpkit-mail")) -> list[str]:
    new = folder / "new"
    return sorted(os.listdir(new)) if new.exists() else []


def desk_with_a_ticket(capsys: pytest.CaptureFixture[str], *, config: bool = True) -> None:
    """A store (with the template's Maildir channel when ``config``), agent ana, ticket #1."""
    assert run(capsys, "init", *(["--write-config"] if config else []))[0] == 0
    assert run(capsys, "agents", "add", "ana", "Ana", "--email", "ana@support.example")[0] == 0
    # opened by the requester: the first message is theirs, nothing is sent back for it
    opened = ["open", "--requester", "zoe@acme.example", "--subject", "Printer", "--body", "x"]
    assert run(capsys, *opened)[0] == 0


def test_deliver_sends_what_waits_and_says_what_it_did(
    capsys: pytest.CaptureFixture[str],
) -> None:
    desk_with_a_ticket(capsys)
    assert run(capsys, "--as", "agent:ana", "reply", "1", "Try turning it off and on")[0] == 0
    assert mail() == []  # the reply waits in the outbox
    status, out, _ = run(capsys, "deliver")
    assert (status, out) == (0, "deliver: 1 derived, 1 sent, 0 retried, 0 dead, 0 recovered\n")
    (name,) = mail()
    assert "Try turning it off and on" in (Path("helpkit-mail/new") / name).read_text()
    assert (
        run(capsys, "deliver")[1] == "deliver: 0 derived, 0 sent, 0 retried, 0 dead, 0 recovered\n"
    )
    status, out, _ = run(capsys, "deliver", "--json")
    assert status == 0 and serialize.from_data(RelayReport, json.loads(out)) == RelayReport()
    status, out, _ = run(capsys, "show", "1")
    sent = [line for line in out.splitlines() if "message_sent" in line]
    assert len(sent) == 1 and "system:relay" in sent[0]
    assert (
        f"reply sent to zoe via email <{name.removeprefix('helpkit.')}@support.example>"
        in (sent[0])
    )


def test_a_desk_without_channels_has_nothing_to_deliver(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desk_with_a_ticket(capsys, config=False)
    assert run(capsys, "--as", "agent:ana", "reply", "1", "Hello")[0] == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (["deliver"], ["deliver", "--follow"], ["deliver", "--retry", "x"]):
        status, out, err = run(capsys, *args)
        assert (status, out) == (2, ""), args
        assert err.startswith("helpkit: error: no channels are configured"), err
        assert err.count("\n") == 1
    assert run(capsys, "deliver", "--dead") == (0, "no dead deliveries\n", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_missing_store_is_not_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for args in (["deliver"], ["deliver", "--dead"], ["deliver", "--pending"]):
        status, _, err = run(capsys, *args)
        assert status == 2 and "no store at helpkit.db" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["deliver", "--poll", "1"], "--poll goes with --follow"),
        (["deliver", "--follow", "--poll", "0"], "between 0.01 and 3600"),
        (["deliver", "--follow", "--poll", "nan"], "between 0.01 and 3600"),
        (["deliver", "--follow", "--poll", "soon"], "seconds"),
        (["deliver", "--dead", "--follow"], "not allowed with argument"),
        (["deliver", "--retry", "nope"], "no delivery with id 'nope'"),
        (["deliver", "--limit", "0", "--dead"], "between 1 and"),
    ],
)
def test_mistakes_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    desk_with_a_ticket(capsys)
    status, out, err = run(capsys, *args)
    assert (status, out) == (2, "")
    assert err.startswith("helpkit: error: ") and says in err, err


def _blocked_config(folder: Path) -> Path:
    """A helpkit.toml whose Maildir is where a file stands."""
    (folder / "blocked").write_text("a file where the Maildir should be")
    text = (folder / "helpkit.toml").read_text()
    (folder / "helpkit.toml").write_text(text.replace('"helpkit-mail"', '"blocked"'))
    return folder / "blocked"


def _giving_up(config: DeskConfig) -> Helpdesk:
    """A desk on the same store that gives up after one attempt, an hour from now (past the
    first retry's due time)."""
    clock = FrozenClock(datetime.now(UTC) + timedelta(hours=1))
    return Helpdesk(
        "sqlite:///helpkit.db", config=config, clock=clock, retry=RetryPolicy(attempts=1)
    )


def test_failures_wait_as_pending_then_die_and_can_be_sent_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desk_with_a_ticket(capsys)
    blocked = _blocked_config(tmp_path)
    assert run(capsys, "--as", "agent:ana", "reply", "1", "Hello")[0] == 0
    status, out, _ = run(capsys, "deliver")
    assert (status, out) == (0, "deliver: 1 derived, 0 sent, 1 retried, 0 dead, 0 recovered\n")
    status, out, _ = run(capsys, "deliver", "--pending")
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == [
        "id",
        "ticket",
        "kind",
        "channel",
        "tries",
        "next",
        "attempt",
        "last",
        "error",
    ]
    assert "#1" in lines[1] and "reply" in lines[1] and "is a file, not a folder" in lines[1]
    status, out, _ = run(capsys, "show", "1")
    (failed,) = [line for line in out.splitlines() if "delivery_failed" in line]
    assert "reply via email failed (attempt 1, retry at " in failed
    assert "MaildirError: the Maildir" in failed

    # The relay gives up: here a desk with one attempt, on the same store and configuration.
    config = DeskConfig.load(tmp_path / "helpkit.toml")
    with _giving_up(config) as desk:
        assert desk.deliver_pending().dead == 1
    status, out, _ = run(capsys, "deliver", "--dead")
    assert status == 0 and "Send one again with: helpkit deliver --retry ID" in out
    dead = json.loads(run(capsys, "deliver", "--dead", "--json")[1])
    (delivery,) = [serialize.from_data(Delivery, d) for d in dead["deliveries"]]
    assert delivery.id in out and delivery.attempts == 2 and dead["next_cursor"] is None
    status, out, err = run(capsys, "show", "1")
    assert "(attempt 2, given up)" in out

    # Still blocked: sent again, failed again (a new round of attempts: pending)
    status, out, _ = run(capsys, "deliver", "--retry", delivery.id)
    assert status == 1
    assert f"{delivery.id} (#1 reply via email): failed again (attempt 1, retry at " in out
    status, _, err = run(capsys, "deliver", "--retry", delivery.id)
    assert (status, err.count("\n")) == (2, 1) and "only a dead one" in err

    # Once the folder can be written, a retry sends it.
    with _giving_up(config) as desk:
        assert desk.deliver_pending().dead == 1
    blocked.unlink()
    status, out, _ = run(capsys, "deliver", "--retry", delivery.id)
    assert status == 0
    assert out.startswith(f"{delivery.id} (#1 reply via email): sent <{delivery.id}@support.ex")
    assert mail(blocked) == [f"helpkit.{delivery.id}"]
    assert run(capsys, "deliver", "--dead")[1] == "no dead deliveries\n"


def test_a_message_no_channel_takes_is_dead_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    desk_with_a_ticket(capsys)
    text = (tmp_path / "helpkit.toml").read_text().replace('reply_channel = "email"\n', "")
    text += (
        '\n[channels.archive]\ntype = "maildir"\ndirectory = "archive"\nsender = "a@b.example"\n'
    )
    (tmp_path / "helpkit.toml").write_text(text)
    for n in range(3):
        assert run(capsys, "--as", "agent:ana", "reply", "1", f"Hello {n}")[0] == 0
    status, out, _ = run(capsys, "deliver")
    assert status == 1
    said = "deliver: 3 derived, 0 sent, 0 retried, 3 dead, 0 recovered"
    assert out == f"{said} (see helpkit deliver --dead)\n"
    status, out, _ = run(capsys, "deliver", "--dead", "--limit", "2")
    rows = out.splitlines()
    assert status == 0 and len([r for r in rows if "#1" in r]) == 2
    assert all("no channel" in r for r in rows if "#1" in r)
    (more,) = [r for r in rows if r.startswith("more: --after ")]
    status, out, _ = run(capsys, "deliver", "--dead", "--after", more.split()[-1])
    assert len([r for r in out.splitlines() if "#1" in r]) == 1
    status, out, _ = run(capsys, "show", "1")
    assert "reply via no channel failed (attempt 1, given up): no channel" in out


# ------------------------------------------------------------------ --follow, as a worker


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELPKIT_", "PYTHONIO"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    return env


def _wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_follow_delivers_what_another_process_commits_and_stops_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stop_with: signal.Signals
) -> None:
    desk_with_a_ticket(capsys)
    worker = subprocess.Popen(
        [sys.executable, "-m", "helpkit", "deliver", "--follow", "--poll", "0.05"],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        first = worker.stdout.readline()  # it is running
        assert first.startswith("deliver: following the outbox of sqlite:///helpkit.db"), first
        # another process (this one) commits a reply; the worker picks it up
        assert run(capsys, "--as", "agent:ana", "reply", "1", "On our way")[0] == 0
        _wait_for(lambda: len(mail()) == 1, "the reply's file")
        assert run(capsys, "--as", "agent:ana", "reply", "1", "Done")[0] == 0
        _wait_for(lambda: len(mail()) == 2, "the second reply's file")
        worker.send_signal(stop_with)
        out, err = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert lines[-1] == "deliver: stopped; in all 2 derived, 2 sent, 0 retried, 0 dead, 0 recovered"
    assert any(
        line.endswith("UTC: 1 derived, 1 sent, 0 retried, 0 dead, 0 recovered") for line in lines
    )
    assert run(capsys, "show", "1")[1].count("message_sent") == 2


def test_follow_stops_on_a_signal_in_process(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through main(): the handlers are restored afterwards."""
    desk_with_a_ticket(capsys)
    assert run(capsys, "--as", "agent:ana", "reply", "1", "Hello")[0] == 0
    before = signal.getsignal(signal.SIGTERM)
    reports: list[RelayReport] = []
    original = Helpdesk.follow_deliveries

    def follow(desk: Helpdesk, stop: Any, **kwargs: Any) -> RelayReport:
        printer = kwargs["on_report"]

        def on_report(report: RelayReport) -> None:
            printer(report)
            reports.append(report)
            os.kill(os.getpid(), signal.SIGTERM)  # as if sent from outside, once it worked

        kwargs["on_report"] = on_report
        return original(desk, stop, **kwargs)

    monkeypatch.setattr(Helpdesk, "follow_deliveries", follow)
    status, out, err = run(capsys, "deliver", "--follow", "--poll", "0.05", "--json")
    assert status == 0, err
    assert serialize.from_data(RelayReport, json.loads(out)).sent == 1
    assert [r.sent for r in reports] == [1]
    assert signal.getsignal(signal.SIGTERM) == before
    assert len(mail()) == 1


# ------------------------------------------------------------------ the demo


def test_the_demo_delivers_through_its_maildir_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, _ = run(capsys, "demo", "--tickets", "60")
    assert status == 0
    (said,) = [line for line in out.splitlines() if line.startswith("Relay: ")]
    match = re.fullmatch(
        r"Relay: (\d+) messages delivered to helpkit-mail \((\d+) satisfaction surveys, "
        r"(\d+) notifications, (\d+) replies, (\d+) SLA notices\), 0 retried, 0 dead",
        said,
    )
    assert match, said
    total, surveys, notifications, replies, notices = (int(n) for n in match.groups())
    assert total == surveys + notifications + replies + notices
    assert replies > 0 and notices > 0 and surveys > 0  # the demo offers CSAT surveys
    assert notifications > 0  # and its bad ratings are told to the agents (bad_ratings)
    assert "mutt -f helpkit-mail" in out and "helpkit deliver --dead" in out
    box = mailbox.Maildir(tmp_path / "helpkit-mail", create=False)
    assert len(box) == total
    kinds = {"sla" if m["X-Helpkit-Notice"] == "sla" else "reply" for m in box}
    assert kinds == {"sla", "reply"}
    # everything was delivered: nothing waits
    assert run(capsys, "deliver")[1].startswith("deliver: 0 derived, 0 sent")
    assert run(capsys, "deliver", "--pending")[1] == "no pending deliveries\n"
