"""The command line's desk secret: ``$HELPKIT_SECRET`` or the configuration's
``secret_file``; with it, every email the relay writes carries the ticket's signed token."""

from __future__ import annotations

import mailbox
import os
from pathlib import Path

import pytest

from helpkit import DeskConfig
from helpkit.cli import main
from helpkit.cli._config import desk_secret
from helpkit.cli._errors import UsageError
from helpkit.thread_tokens import ThreadTokens, tokens_in

SECRET = "a secret read from the environment"


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


def sent_message_ids() -> list[str]:
    return [str(m["Message-ID"]) for m in mailbox.Maildir("helpkit-mail", create=False)]


def reply_and_deliver(capsys: pytest.CaptureFixture[str], *, init: bool = True) -> list[str]:
    if init:
        assert run(capsys, "init", "--write-config")[0] == 0
    assert run(capsys, "agents", "add", "ana", "Ana", "--email", "ana@support.example")[0] == 0
    opened = ["open", "--requester", "zoe@acme.example", "--subject", "Printer", "--body", "x"]
    assert run(capsys, *opened)[0] == 0
    assert run(capsys, "--as", "agent:ana", "reply", "1", "Try it again")[0] == 0
    assert run(capsys, "deliver")[0] == 0
    return sent_message_ids()


def test_the_environment_secret_signs_outbound_message_ids(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPKIT_SECRET", SECRET)
    (message_id,) = reply_and_deliver(capsys)
    (token,) = tokens_in([message_id])
    ticket_id = ThreadTokens(SECRET).verify(token)
    assert ticket_id is not None and message_id.startswith(f"<{ticket_id}-")


def test_a_secret_file_next_to_the_configuration(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "init", "--write-config")[0] == 0
    config = tmp_path / "helpkit.toml"
    config.write_text('secret_file = "desk.secret"\n' + config.read_text())
    (tmp_path / "desk.secret").write_text(f"{SECRET}\n")
    (message_id,) = reply_and_deliver(capsys, init=False)
    assert ThreadTokens(SECRET).verify(tokens_in([message_id])[0]) is not None


def test_without_a_secret_no_token(capsys: pytest.CaptureFixture[str]) -> None:
    (message_id,) = reply_and_deliver(capsys)
    assert tokens_in([message_id]) == []


def test_a_short_secret_is_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPKIT_SECRET", "short")
    status, _, err = run(capsys, "init")
    assert status == 2 and "at least 16 bytes" in err and err.count("\n") == 1


def test_desk_secret_lookup(tmp_path: Path) -> None:
    plain = DeskConfig()
    assert desk_secret(plain, {}) is None
    assert desk_secret(plain, {"HELPKIT_SECRET": "  from env  "}) == "from env"
    with_file = DeskConfig(secret_file=str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="cannot read secret_file"):
        desk_secret(with_file, {})
    assert desk_secret(with_file, {"HELPKIT_SECRET": "wins"}) == "wins"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        desk_secret(DeskConfig(secret_file=str(tmp_path / "empty")), {})
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="not UTF-8"):
        desk_secret(DeskConfig(secret_file=str(tmp_path / "binary")), {})
