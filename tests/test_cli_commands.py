"""The ``helpkit`` commands a support lead reaches for, and what the command line prints."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import helpkit.cli
from cli_demo import isolate, make_demo
from helpkit import Helpdesk, __version__, serialize
from helpkit.cli import config_template, main
from helpkit.cli._config import find_config, user_config_path
from helpkit.cli._output import _Progress, _when
from helpkit.events import Event
from helpkit.people import Agent, Contact, Group
from helpkit.sla import SlaStatus
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor, ActorKind, Comment, StatusCategory, Ticket


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo helpdesk (helpkit.db, helpkit.toml), copied by the tests that use it."""
    return make_demo(tmp_path_factory.mktemp("demo"), 40)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def demo(demo_folder: Path, tmp_path: Path) -> Path:
    """The demo helpkit.db and helpkit.toml in the current (temporary) folder."""
    shutil.copytree(demo_folder, tmp_path, dirs_exist_ok=True)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def json_of(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    status, out, err = run(capsys, *args, "--json")
    assert status == 0, err
    return json.loads(out)


def tickets_of(capsys: pytest.CaptureFixture[str], *args: str) -> list[Ticket]:
    data = json_of(capsys, *args)
    assert isinstance(data, dict)
    return [serialize.from_data(Ticket, t) for t in data["tickets"]]


# ------------------------------------------------------------------ global options


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"helpkit {__version__}\n", "")


def test_the_library_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("helpkit").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_verbosity_sets_the_helpkit_logger_level(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def noisy(args: object) -> int:
        log = logging.getLogger("helpkit.delivery")
        log.debug("a debug line")
        log.info("an info line")
        log.warning("a warning line")
        try:
            raise RuntimeError("channel down\nsecond line")
        except RuntimeError:
            log.exception("a failed delivery")
        return 0

    monkeypatch.setattr(helpkit.cli, "cmd_plugins", noisy)
    logger = logging.getLogger("helpkit")
    level, handlers = logger.level, list(logger.handlers)
    _, _, err = run(capsys, "plugins")
    assert err.splitlines() == [
        "helpkit: warning: a warning line",
        "helpkit: error: a failed delivery (RuntimeError: channel down)",
    ]
    _, _, err = run(capsys, "-q", "plugins")
    assert err.splitlines() == ["helpkit: error: a failed delivery (RuntimeError: channel down)"]
    assert main(["-v", "plugins"]) == 0
    err = capsys.readouterr().err
    assert "helpkit: info: an info line" in err and "debug" not in err
    assert "RuntimeError: channel down" in err  # -v: the traceback of a logged exception
    assert main(["-vv", "plugins"]) == 0
    err = capsys.readouterr().err
    assert "helpkit: debug: a debug line" in err
    assert (logger.level, logger.handlers) == (level, handlers)  # main() restores them


def test_an_unexpected_error_is_one_line_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: object) -> int:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(helpkit.cli, "cmd_plugins", broken)
    status = main(["plugins"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == (
        "helpkit: error: unexpected ZeroDivisionError: oops "
        "(-v or HELPKIT_DEBUG=1 shows the traceback)\n"
    )
    monkeypatch.setenv("HELPKIT_DEBUG", "1")
    assert main(["plugins"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith(
        "helpkit: error: unexpected ZeroDivisionError: oops\n"
    )


def test_main_leaves_the_streams_as_it_found_them(capsys: pytest.CaptureFixture[str]) -> None:
    errors = (sys.stdout.errors, sys.stderr.errors)
    assert main(["plugins"]) == 0
    assert (sys.stdout.errors, sys.stderr.errors) == errors


# ------------------------------------------------------------------ configuration


def _config_with_status(path: Path, status: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    hold = '{ name = "on_hold", category = "on_hold" },'
    extra = f'{{ name = "{status}", category = "open" }},'
    text = config_template().replace(hold, f"{hold}\n  {extra}")
    assert status in text
    path.write_text(text, encoding="utf-8")
    return path


def test_config_template_is_the_shipped_file() -> None:
    from importlib.resources import files

    shipped = files("helpkit.cli").joinpath("helpkit.toml").read_text(encoding="utf-8")
    assert config_template() == shipped


def test_config_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = _config_with_status(tmp_path / "xdg" / "helpkit" / "helpkit.toml", "user")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    assert find_config(None, env).path == user
    here = _config_with_status(tmp_path / "helpkit.toml", "here")
    assert find_config(None, env).path == Path("helpkit.toml")
    named = _config_with_status(tmp_path / "named.toml", "named")
    assert find_config(None, {**env, "HELPKIT_CONFIG": str(named)}).path == named
    explicit = _config_with_status(tmp_path / "explicit.toml", "explicit")
    choice = find_config(str(explicit), {**env, "HELPKIT_CONFIG": str(named)})
    assert (choice.path, choice.source) == (explicit, "--config")
    here.unlink()
    user.unlink()
    assert find_config(None, env).path is None


def test_the_per_user_location(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    assert user_config_path({"XDG_CONFIG_HOME": str(xdg), "HOME": "/h"}) == (
        xdg / "helpkit" / "helpkit.toml"
    )
    home = Path("/h/.config/helpkit/helpkit.toml")
    assert user_config_path({"HOME": "/h"}) == home
    assert user_config_path({"XDG_CONFIG_HOME": "relative", "HOME": "/h"}) == home


def test_helpkit_config_and_the_per_user_file_are_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "init")[0] == 0
    _config_with_status(tmp_path / "xdg" / "helpkit" / "helpkit.toml", "user_status")
    assert run(capsys, "list", "--status", "user_status") == (0, "no tickets\n", "")
    assert run(capsys, "list", "--status", "env_status")[0] == 2
    named = _config_with_status(tmp_path / "elsewhere" / "my.toml", "env_status")
    monkeypatch.setenv("HELPKIT_CONFIG", str(named))
    assert run(capsys, "list", "--status", "env_status")[0] == 0
    assert run(capsys, "list", "--status", "user_status")[0] == 2
    _, _, err = run(capsys, "-v", "list")
    assert f"helpkit: info: configuration: {named} ($HELPKIT_CONFIG)" in err
    monkeypatch.delenv("HELPKIT_CONFIG")
    monkeypatch.delenv("XDG_CONFIG_HOME")  # then ~/.config
    _config_with_status(tmp_path / "home" / ".config" / "helpkit" / "helpkit.toml", "home_status")
    assert run(capsys, "list", "--status", "home_status")[0] == 0


# ------------------------------------------------------------------ the store


def test_read_only_commands_on_a_missing_store_create_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = sorted(tmp_path.iterdir())
    for args in (
        ["list"],
        ["show", "1"],
        ["queue", "--agent", "ana"],
        ["contacts"],
        ["orgs"],
        ["agents"],
        ["groups", "list"],
        ["sweep"],
        ["--as", "agent:ana", "note", "1", "x"],
        ["agents", "add", "ana", "Ana"],
    ):
        status, _, err = run(capsys, *args)
        assert status == 2, args
        assert err.startswith("helpkit: error: no store at helpkit.db: run 'helpkit init'")
    assert sorted(tmp_path.iterdir()) == before
    assert run(capsys, "init")[0] == 0
    assert (tmp_path / "helpkit.db").exists()
    assert run(capsys, "list") == (0, "no tickets\n", "")


# ------------------------------------------------------------------ agents and groups


def test_agents_and_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "agents")[1].startswith("no agents")
    assert run(capsys, "groups", "add", "l1", "Service desk", "--tier", "1")[0] == 0
    assert run(capsys, "groups", "add", "vendor", "Vendor", "--description", "Acme")[0] == 0
    assert run(capsys, "agents", "add", "ana", "Ana Núñez", "--group", "l1")[0] == 0
    assert run(capsys, "agents", "add", "ben", "Ben", "--email", "Ben@Support.example")[0] == 0
    assert run(capsys, "agents", "add", "cy", "Cy", "--group", "nope")[0] == 2
    groups = json_of(capsys, "groups", "list")
    assert isinstance(groups, list)
    assert [serialize.from_data(Group, g).tier for g in groups] == [1, None]
    out = run(capsys, "groups")[1]
    assert "L1" in out and "Acme" in out
    agents = [serialize.from_data(Agent, a) for a in json_of(capsys, "agents", "list")]
    assert [(a.id, a.group_ids, a.email, a.active) for a in agents] == [
        ("ana", ("l1",), None, True),
        ("ben", (), "ben@support.example", True),
    ]
    opened = ["open", "--requester", "zoe@example.com", "--subject", "Printer"]
    assert run(capsys, *opened, "--assignee", "ana", "--group", "l1")[0] == 0
    status, out, _ = run(capsys, "agents", "deactivate", "ana")
    assert status == 0 and "helpkit queue --agent ana" in out
    db = Path("helpkit.db").read_bytes()
    status, _, err = run(capsys, "assign", "1", "--agent", "ana", "--group", "l1")
    assert (status, err) == (2, "helpkit: error: agent 'ana' is inactive\n")
    assert Path("helpkit.db").read_bytes() == db
    assert "no" in run(capsys, "agents")[1].splitlines()[1]
    assert run(capsys, "agents", "activate", "ana")[0] == 0
    assert run(capsys, "assign", "1", "--agent", "ana", "--group", "l1")[0] == 0
    assert run(capsys, "agents", "deactivate", "ghost")[0] == 2
    assert run(capsys, "--as", "contact:x", "agents", "add", "z", "Z")[0] == 2
    assert run(capsys, "--as", "agent:ghost", "groups", "add", "z", "Z")[0] == 2
    assert run(capsys, "--as", "agent:ben", "groups", "add", "z", "Z")[0] == 0


def test_agent_roles_and_refusals_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "init")[0] == 0
    assert run(capsys, "groups", "add", "l1", "Service desk")[0] == 0
    assert run(capsys, "groups", "add", "l2", "Technicians")[0] == 0
    status, out, _ = run(
        capsys, "agents", "add", "lee", "Lee", "--group", "l1", "--role", "light_agent"
    )
    assert status == 0 and "role light_agent" in out
    status, out, _ = run(capsys, "agents", "add", "mo", "Mo", "--group", "l1", "--restricted")
    assert status == 0 and "own groups' tickets only" in out
    status, _, err = run(capsys, "agents", "add", "x", "X", "--role", "boss")
    assert (status, err.count("\n")) == (2, 1) and "unknown role 'boss'" in err
    listed = run(capsys, "agents")[1]
    assert "light_agent" in listed and "agent (own groups only)" in listed
    opened = ["open", "--requester", "zoe@example.com", "--subject", "Printer", "--group", "l2"]
    assert run(capsys, *opened)[0] == 0
    db = Path("helpkit.db").read_bytes()
    status, _, err = run(capsys, "--as", "agent:lee", "reply", "1", "Hello")
    refused = "helpkit: error: agent 'lee' (role light_agent) lacks the permission 'reply'\n"
    assert (status, err) == (2, refused)
    status, _, err = run(capsys, "--as", "agent:mo", "note", "1", "mine?")
    assert status == 2 and "restricted to their groups' tickets" in err and err.count("\n") == 1
    assert Path("helpkit.db").read_bytes() == db
    assert run(capsys, "--as", "agent:lee", "note", "1", "checked")[0] == 0


# ------------------------------------------------------------------ list, queue, show


def test_queue_is_the_agents_unsolved_work_most_urgent_first(
    capsys: pytest.CaptureFixture[str], demo: Path
) -> None:
    queue = tickets_of(capsys, "queue", "--agent", "ana", "--limit", "1000")
    assert queue and {t.assignee_id for t in queue} == {"ana"}
    assert all(t.category not in (StatusCategory.SOLVED, StatusCategory.CLOSED) for t in queue)
    assert [t.priority for t in queue] == sorted(t.priority for t in queue)
    assert tickets_of(capsys, "--as", "agent:ana", "queue", "--limit", "1000") == queue
    _, out, _ = run(capsys, "--as", "agent:ana", "queue", "--limit", "1000")
    now = datetime.now(UTC)
    rows = {line.split()[0]: line for line in out.splitlines() if re.match(r"\s+#\d", line)}
    assert out.startswith("Queue of Ana (ana)") and set(rows) == {t.reference for t in queue}
    for ticket in queue:
        breached = ticket.next_deadline is not None and ticket.next_deadline <= now
        assert (" ! " in rows[ticket.reference]) == breached, rows[ticket.reference]
    if any(" ! " in row for row in rows.values()):
        assert "! = SLA breached" in out
    group = tickets_of(capsys, "queue", "--group", "l3", "--limit", "1000")
    assert {t.group_id for t in group} <= {"l3"}
    _, out, _ = run(capsys, "queue", "--agent", "farid", "--group", "l1")
    assert out == "no unsolved tickets for Farid (farid) in group Service desk (l1)\n"
    assert run(capsys, "queue")[0] == 2  # whose?


def test_dates_show_the_year_only_when_it_is_not_this_one() -> None:
    now = datetime(2027, 1, 3, 9, tzinfo=UTC)
    assert _when(datetime(2027, 1, 2, 17, tzinfo=UTC), now) == "01-02 17:00"
    assert _when(datetime(2026, 12, 31, 17, tzinfo=UTC), now) == "2026-12-31 17:00"


def test_breached_and_overdue_filters(capsys: pytest.CaptureFixture[str], demo: Path) -> None:
    now = datetime.now(UTC)
    breached = tickets_of(capsys, "list", "--breached", "--limit", "1000")
    assert breached and all(
        t.next_deadline is not None and t.next_deadline <= now for t in breached
    )
    everything = tickets_of(capsys, "list", "--limit", "1000")
    assert {t.id for t in breached} == {
        t.id for t in everything if t.next_deadline is not None and t.next_deadline <= now
    }
    overdue = tickets_of(capsys, "list", "--overdue", "--limit", "1000")
    assert all(t.next_check is not None and t.next_check <= datetime.now(UTC) for t in overdue)
    assert run(capsys, "sweep")[0] == 0
    assert run(capsys, "list", "--overdue") == (0, "no tickets\n", "")
    older = tickets_of(capsys, "list", "--breaching-within", "-1h", "--limit", "1000")
    assert {t.id for t in older} <= {t.id for t in breached}


def test_show_json_has_the_sla_block_and_the_history_its_changes(
    capsys: pytest.CaptureFixture[str], demo: Path
) -> None:
    desk = Helpdesk("sqlite:///helpkit.db", entry_points=False)
    with desk:
        pending = desk.tickets(statuses={"pending"}, limit=1).items[0]
    shown = json_of(capsys, "show", str(pending.number))
    assert isinstance(shown, dict)
    assert list(shown) == ["ticket", "sla", "tier_times", "conversation", "history"]
    sla = serialize.from_data(SlaStatus, shown["sla"])
    assert sla.policy == "standard" and serialize.to_data(sla) == shown["sla"]
    assert all(re.fullmatch(r"L\d", tier) for tier in shown["tier_times"])
    [serialize.from_data(Event, e) for e in shown["history"]]
    [serialize.from_data(Comment, c) for c in shown["conversation"]]
    text = run(capsys, "show", f"#{pending.number}")[1]
    assert "SLA (standard" in text
    assert re.search(r"status_changed  \w+ -> pending", text), text
    assert re.search(r"assigned  agent - -> \w+", text), text


def test_open_without_as_is_the_requesters_own_message(
    capsys: pytest.CaptureFixture[str], demo: Path
) -> None:
    for requester in ("new.person@example.com", "New.Person@example.com"):
        opened = json_of(capsys, "open", "--requester", requester, "--subject", "Hi", "--body", "x")
        ticket = serialize.from_data(Ticket, opened)
        shown = json_of(capsys, "show", str(ticket.number))
        assert isinstance(shown, dict)
        [first] = [serialize.from_data(Comment, c) for c in shown["conversation"]]
        assert first.author.kind is ActorKind.CONTACT
        assert first.author.id == ticket.requester_id
    contacts = [
        serialize.from_data(Contact, c)
        for c in json_of(capsys, "contacts", "--email", "new.person@example.com")
    ]
    assert len(contacts) == 1
    # a refused ticket for a new address leaves no contact (and nothing else) behind
    db = Path("helpkit.db").read_bytes()
    refused = ["open", "--requester", "other@example.com", "--subject", "Hi", "--group", "nope"]
    assert run(capsys, *refused)[0] == 2
    assert Path("helpkit.db").read_bytes() == db
    opened = json_of(
        capsys,
        "--as",
        "agent:ana",
        "open",
        "--requester",
        "x@example.com",
        "--subject",
        "S",
        "--body",
        "b",
    )
    number = serialize.from_data(Ticket, opened).number
    shown = json_of(capsys, "show", str(number))
    assert isinstance(shown, dict)
    assert shown["conversation"][0]["author"] == {"kind": "agent", "id": "ana"}
    status, _, err = run(capsys, "--as", "contact:someone", *refused[:5])
    assert status == 2 and "themself" in err


def test_escalate_down_says_so(capsys: pytest.CaptureFixture[str], demo: Path) -> None:
    desk = Helpdesk("sqlite:///helpkit.db", entry_points=False)
    with desk:
        up = desk.tickets(group_ids={"l2"}, categories={"open"}, limit=1).items[0]
    status, out, _ = run(capsys, "--as", "agent:dmitri", "escalate", str(up.number), "--down")
    assert status == 0 and f"{up.reference} de-escalated to l1" in out
    status, out, _ = run(capsys, "--as", "agent:ana", "escalate", str(up.number))
    assert status == 0 and f"{up.reference} escalated to l2" in out


# ------------------------------------------------------------------ the demo


def test_demo_emails_are_ascii_and_the_suggested_ticket_is_open(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "demo", "--tickets", "30")
    assert status == 0
    suggested = re.search(r"helpkit show (\d+)", out)
    assert suggested is not None, out
    number = int(suggested.group(1))
    shown = json_of(capsys, "show", str(number))
    assert isinstance(shown, dict)
    assert serialize.from_data(Ticket, shown["ticket"]).category in (
        StatusCategory.NEW,
        StatusCategory.OPEN,
    )
    contacts = [
        serialize.from_data(Contact, c) for c in json_of(capsys, "contacts", "--limit", "100")
    ]
    emails = [e for c in contacts for e in c.emails]
    assert len(emails) == 32 and all(e.isascii() for e in emails)
    assert any(e.startswith("tomas.okafor.") for e in emails)
    assert any(e.startswith("zoe.muller.") for e in emails)


def test_demo_refuses_before_writing_anything_and_force_adds(
    capsys: pytest.CaptureFixture[str], demo: Path
) -> None:
    (demo / "helpkit.toml").unlink()

    def snapshot() -> dict[str, bytes | None]:  # the files, and the folders (helpkit-mail)
        return {str(p): p.read_bytes() if p.is_file() else None for p in demo.rglob("*")}

    before = snapshot()
    assert (demo / "helpkit-mail" / "new").is_dir()
    status, _, err = run(capsys, "demo", "--tickets", "5")
    assert status == 2 and "--force" in err
    assert snapshot() == before  # no helpkit.toml either, no mail
    count = len(tickets_of(capsys, "list", "--limit", "1000"))
    status, _, err = run(capsys, "demo", "--tickets", "10", "--force")
    assert status == 0, err
    assert len(tickets_of(capsys, "list", "--limit", "1000")) == count + 10
    contacts = json_of(capsys, "contacts", "--limit", "100")
    assert isinstance(contacts, list) and len(contacts) == 32  # the former demo's, reused
    orgs = json_of(capsys, "orgs")
    assert isinstance(orgs, list) and len(orgs) == 4


def test_the_progress_bar_follows_stderr_not_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    terminal = Terminal()
    progress = _Progress(10, "demo", terminal)
    progress.step(10)
    assert progress.enabled and "10/10" in terminal.getvalue()
    quiet = io.StringIO()
    progress = _Progress(10, "demo", quiet)
    progress.step(10)
    assert not progress.enabled and quiet.getvalue() == ""


def test_route_hands_waiting_tickets_to_agents_back_in_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Capacity that comes back with time (an agent's away_until passing, a shift starting) is
    noticed by nothing: ``helpkit route`` (from cron, beside the sweep) routes what waits."""
    (tmp_path / "helpkit.toml").write_text(
        '[routing.support]\nstrategy = "round_robin"\n[routing.sales]\n', encoding="utf-8"
    )
    store = f"sqlite:///{tmp_path / 'desk.db'}"
    then = datetime(2020, 1, 6, 10, tzinfo=UTC)
    desk = Helpdesk(
        store,
        config={"routing": {"support": {"strategy": "round_robin"}, "sales": {}}},
        clock=FrozenClock(then),
        entry_points=False,
    )
    desk.add_group("support", "Support")
    desk.add_group("sales", "Sales")
    desk.add_agent("ana", "Ana", groups=["support"])
    desk.set_away("ana", datetime(2020, 1, 6, 11, tzinfo=UTC))  # back long before now
    boss = Actor.system("web")
    waiting = [
        desk.open_ticket(boss, requester=f"r{n}@example.com", subject="Help", group="support")
        for n in range(2)
    ]
    assert [t.assignee_id for t in waiting] == [None, None]
    desk.store.close()

    assert run(capsys, "--store", store, "route", "--group", "sales")[:2] == (
        0,
        "routed 0 waiting tickets\n",
    )
    status, out, _ = run(capsys, "--store", store, "route")
    assert status == 0
    assert out.splitlines() == [
        "routed 2 waiting tickets",
        f"  #{waiting[0].number} -> ana (support)",
        f"  #{waiting[1].number} -> ana (support)",
    ]
    assert json_of(capsys, "--store", store, "route") == []  # nothing waits any more
    status, _, err = run(capsys, "--store", store, "route", "--group", "nowhere")
    assert status == 2 and "no routing configured" in err
