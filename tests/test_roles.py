"""Agent roles (helpkit.roles, helpkit.access): every agent command, per role; inactive and
restricted agents; configured roles; agents stored before roles existed."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from helpkit import Actor, DeskConfig, Helpdesk, NotFoundError, ValidationError
from helpkit.errors import AccessDeniedError, ConfigError
from helpkit.people import Agent
from helpkit.ports import InboundAttachment, Store
from helpkit.roles import BUILTIN_ROLES, Permission, Role, allowed, roles_from_table
from helpkit.serialize import dumps, loads
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Ticket
from postgres_fixtures import fresh_schema

ME = Actor.agent("me")
BOB = Actor.contact("bob")

CONFIG = {
    "macros": [{"name": "tag-it", "actions": [{"add_tags": ["macro"]}]}],
    "roles": {"triage": {"permissions": ["read", "assign", "note"]}},
}


def _desk(clock: FrozenClock, store: str | Store = "memory://") -> Helpdesk:
    desk = Helpdesk(store, clock=clock, config=CONFIG, entry_points=False)
    desk.add_group("l1", "Service desk", tier=1)
    desk.add_group("l2", "Technicians", tier=2)
    desk.add_agent("other", "Olga Other", groups=["l1", "l2"])
    desk.create_contact("Bob", emails=["bob@acme.example"], contact_id="bob")
    desk.create_contact("Dan", emails=["dan@other.example"], contact_id="dan")
    return desk


@pytest.fixture
def desk(helpkit_clock: FrozenClock) -> Helpdesk:
    return _desk(helpkit_clock)


def _ticket(desk: Helpdesk, group: str = "l1") -> str:
    return desk.open_ticket(BOB, requester="bob", subject="Printer", body="Help", group=group).id


Command = Callable[[Helpdesk, str, str], object]

# Each agent command the facade has, and the permission it needs (the second ticket is an
# open ticket of the same group, for the commands on two tickets).
COMMANDS: dict[str, tuple[Permission, Command]] = {
    "reply": (Permission.REPLY, lambda d, t, u: d.reply(t, ME, "On it")),
    "note": (Permission.NOTE, lambda d, t, u: d.note(t, ME, "internal")),
    "assign": (Permission.ASSIGN, lambda d, t, u: d.assign(t, ME, agent="other")),
    "transfer": (Permission.ASSIGN, lambda d, t, u: d.transfer(t, ME, group="l2")),
    "escalate": (Permission.ASSIGN, lambda d, t, u: d.escalate(t, ME)),
    "set_status": (Permission.EDIT, lambda d, t, u: d.set_status(t, ME, "pending")),
    "resolve": (Permission.EDIT, lambda d, t, u: d.resolve(t, ME)),
    "close": (Permission.EDIT, lambda d, t, u: d.close(t, ME)),
    "prioritize": (Permission.EDIT, lambda d, t, u: d.prioritize(t, ME, impact="high")),
    "set_subject": (Permission.EDIT, lambda d, t, u: d.set_subject(t, ME, "Printer (2)")),
    "tag": (Permission.EDIT, lambda d, t, u: d.tag(t, ME, "vip")),
    "follow_other": (Permission.EDIT, lambda d, t, u: d.follow(t, ME, Actor.contact("dan"))),
    "link": (Permission.EDIT, lambda d, t, u: d.link(t, ME, u)),
    "follow_self": (Permission.READ, lambda d, t, u: d.follow(t, ME)),
    "merge": (Permission.MERGE, lambda d, t, u: d.merge(t, u, ME)),
    "apply_macro": (Permission.MACRO, lambda d, t, u: d.apply_macro(t, "tag-it", ME)),
    "preview_macro": (Permission.MACRO, lambda d, t, u: d.preview_macro(t, "tag-it", ME)),
    "open_ticket": (
        Permission.OPEN,
        lambda d, t, u: d.open_ticket(ME, requester="bob", subject="Phoned in", group="l1"),
    ),
}


def _snapshot(desk: Helpdesk) -> list[tuple[Ticket, int]]:
    page = desk.tickets(limit=1000)
    return [(t, len(desk.history(t.id))) for t in page]


@pytest.mark.parametrize("role", [*sorted(BUILTIN_ROLES), "triage"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_role_runs_exactly_the_commands_it_is_granted(
    desk: Helpdesk, role: str, command: str
) -> None:
    desk.add_agent("me", "Mia Me", groups=["l1"], role=role)
    first, second = _ticket(desk), _ticket(desk)
    needs, run = COMMANDS[command]
    before = _snapshot(desk)
    if desk.config.roles[role].grants(needs):
        run(desk, first, second)
        assert command == "preview_macro" or _snapshot(desk) != before
    else:
        with pytest.raises(AccessDeniedError, match=f"role {role}"):
            run(desk, first, second)
        assert _snapshot(desk) == before


def test_the_built_in_roles() -> None:
    assert BUILTIN_ROLES["admin"].permissions == frozenset(Permission)
    assert BUILTIN_ROLES["agent"].permissions == frozenset(Permission) - {Permission.PRIVACY}
    assert BUILTIN_ROLES["light_agent"].permissions == {Permission.READ, Permission.NOTE}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_inactive_agent_is_refused_every_command(desk: Helpdesk, command: str) -> None:
    desk.add_agent("me", "Mia Me", groups=["l1"], role="admin")
    first, second = _ticket(desk), _ticket(desk)
    desk.deactivate_agent("me")
    before = _snapshot(desk)
    with pytest.raises(AccessDeniedError, match="inactive"):
        COMMANDS[command][1](desk, first, second)
    assert _snapshot(desk) == before


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"open_ticket"}))
def test_a_restricted_agent_acts_only_on_its_groups_tickets(desk: Helpdesk, command: str) -> None:
    desk.add_agent("me", "Mia Me", groups=["l1"], restricted=True)
    theirs, also_theirs = _ticket(desk, "l2"), _ticket(desk, "l2")
    before = _snapshot(desk)
    with pytest.raises(AccessDeniedError, match="restricted to their groups"):
        COMMANDS[command][1](desk, theirs, also_theirs)
    assert _snapshot(desk) == before
    COMMANDS[command][1](desk, _ticket(desk, "l1"), _ticket(desk, "l1"))


def test_a_restricted_agent_opens_tickets_only_in_its_groups(desk: Helpdesk) -> None:
    desk.add_agent("me", "Mia Me", groups=["l1"], restricted=True)
    for group in ("l2", None):
        with pytest.raises(AccessDeniedError, match="restricted"):
            desk.open_ticket(ME, requester="bob", subject="Phoned in", group=group)
    assert len(desk.tickets()) == 0
    assert desk.open_ticket(ME, requester="bob", subject="Phoned in", group="l1").group_id == "l1"


def test_a_restricted_role_and_an_admin_who_is_never_restricted(
    helpkit_clock: FrozenClock,
) -> None:
    config = {"roles": {"l1_only": {"permissions": ["read", "reply"], "restricted": True}}}
    desk = Helpdesk("memory://", clock=helpkit_clock, config=config, entry_points=False)
    desk.add_group("l1", "Service desk")
    desk.add_group("l2", "Technicians")
    desk.create_contact("Bob", emails=["bob@acme.example"], contact_id="bob")
    desk.add_agent("me", "Mia Me", groups=["l1"], role="l1_only")
    desk.add_agent("boss", "Bea Boss", groups=["l1"], role="admin", restricted=True)
    elsewhere = _ticket(desk, "l2")
    with pytest.raises(AccessDeniedError, match="restricted"):
        desk.reply(elsewhere, ME, "hi")
    desk.reply(elsewhere, Actor.agent("boss"), "hi")
    desk.update_agent("me", groups=["l1", "l2"])
    desk.reply(elsewhere, ME, "now mine")


def test_system_actors_are_not_restricted(desk: Helpdesk) -> None:
    ticket = _ticket(desk, "l2")
    robot = Actor.system("import")
    desk.note(ticket, robot, "imported")
    desk.close(ticket, robot)
    with pytest.raises(ConfigError, match="no channels"):
        desk.retry_delivery("nothing", Actor.system("operator"))


def test_inbox_and_deliveries_need_their_permissions(desk: Helpdesk) -> None:
    desk.add_agent("light", "Lee Light", groups=["l1"], role="light_agent")
    desk.add_agent("me", "Mia Me", groups=["l1"])
    desk.add_agent("boss", "Bea Boss", groups=["l1"], role="admin")
    with pytest.raises(AccessDeniedError, match="lacks the permission 'inbox'"):
        desk.discard("email:nothing", Actor.agent("light"))
    with pytest.raises(AccessDeniedError, match="lacks the permission 'deliveries'"):
        desk.retry_delivery("nothing", Actor.agent("light"))
    for allowed_agent in (ME, Actor.agent("boss")):
        with pytest.raises(ConfigError, match="no channels"):
            desk.retry_delivery("nothing", allowed_agent)


def test_unknown_roles_are_refused_and_a_role_removed_from_the_configuration_denies(
    desk: Helpdesk, helpkit_clock: FrozenClock
) -> None:
    with pytest.raises(ValidationError, match="unknown role 'boss'"):
        desk.add_agent("me", "Mia Me", role="boss")
    with pytest.raises(ValidationError, match="unknown role"):
        desk.update_agent("other", role="nope")
    desk.add_agent("me", "Mia Me", groups=["l1"], role="triage")
    ticket = _ticket(desk)
    plain = Helpdesk(desk.store, clock=helpkit_clock, entry_points=False)
    with pytest.raises(AccessDeniedError, match="'triage', which is not configured"):
        plain.note(ticket, ME, "hm")


def test_roles_from_the_configuration_file_are_checked() -> None:
    roles = DeskConfig.from_dict(CONFIG).roles
    assert roles["triage"] == Role(
        name="triage", permissions=frozenset({Permission.READ, Permission.ASSIGN, Permission.NOTE})
    )
    assert set(roles) == {"admin", "agent", "light_agent", "triage"}
    for bad, message in [
        ({"admin": {"permissions": ["read"]}}, "built in"),
        ({"x": {"permissions": ["fly"]}}, "unknown permission 'fly'"),
        ({"x": {}}, "needs permissions"),
        ({"x": {"permissions": ["read"], "color": "red"}}, "unknown .roles.x. keys: color"),
        ({"x": {"permissions": "read"}}, "a list of names"),
        ({"x": {"permissions": [], "restricted": "yes"}}, "restricted is true or false"),
        ({"no good": {"permissions": []}}, "a role name"),
    ]:
        with pytest.raises(ConfigError, match=message):
            DeskConfig.from_dict({"roles": bad})
    assert roles_from_table({"agent": {"permissions": ["read"]}})["agent"].permissions == {
        Permission.READ
    }


def test_allowed_is_the_one_decision() -> None:
    agent = Agent(id="a", name="A", group_ids=["l1"])
    allowed(agent, BUILTIN_ROLES["light_agent"], Permission.NOTE)
    with pytest.raises(AccessDeniedError, match="lacks the permission 'reply'"):
        allowed(agent, BUILTIN_ROLES["light_agent"], Permission.REPLY)


def test_agents_stored_before_roles_load_as_agents(tmp_path: Path) -> None:
    old: dict[str, object] = {
        "id": "a",
        "name": "Ann",
        "email": None,
        "group_ids": [],
        "languages": [],
    }
    agent = loads(Agent, json.dumps({**old, "active": True}))
    assert (agent.role, agent.restricted) == ("agent", False)
    assert "role" not in dumps(agent) and "restricted" not in dumps(agent)
    changed = Agent(id="a", name="Ann", role="light_agent", restricted=True)
    assert loads(Agent, dumps(changed)) == changed


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_role_and_restriction_are_kept_by_the_store(
    helpkit_clock: FrozenClock, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    store: str | Store
    if kind == "postgres":
        from helpkit.stores.postgres.store import PostgresStore

        store = PostgresStore(request.getfixturevalue("postgres_database"), schema=fresh_schema())
    else:
        store = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    desk = _desk(helpkit_clock, store)
    try:
        desk.add_agent("me", "Mia Me", groups=["l1"], role="light_agent", restricted=True)
        assert desk.agent("me").role == "light_agent" and desk.agent("me").restricted
        desk.update_agent("me", role="agent", restricted=False)
        assert (desk.agent("me").role, desk.agent("me").restricted) == ("agent", False)
        assert desk.store.get_agent("other") == Agent(
            id="other", name="Olga Other", group_ids=["l1", "l2"]
        )
        shared = desk.create_organization("Initech", shared_tickets=True)
        assert desk.organization(shared.id).shared_tickets
    finally:
        desk.shutdown()


def test_an_agent_row_written_before_roles_is_an_agent(
    helpkit_clock: FrozenClock, tmp_path: Path
) -> None:
    path = tmp_path / "desk.db"
    _desk(helpkit_clock, f"sqlite:///{path}").shutdown()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO agents (id, data) VALUES (?, ?)",
            ("old", json.dumps({"id": "old", "name": "Old Timer", "group_ids": ["l1"]})),
        )
    desk = Helpdesk(f"sqlite:///{path}", clock=helpkit_clock, entry_points=False)
    try:
        assert (desk.agent("old").role, desk.agent("old").restricted) == ("agent", False)
        ticket = _ticket(desk)
        desk.close(ticket, Actor.agent("old"))
    finally:
        desk.shutdown()


def test_an_agent_view_reads_what_the_agent_may(desk: Helpdesk) -> None:
    desk.add_agent("me", "Mia Me", groups=["l1"], restricted=True)
    mine, theirs = _ticket(desk, "l1"), _ticket(desk, "l2")
    log = InboundAttachment(filename="log.txt", content_type="text/plain", data=b"trace")
    desk.note(mine, Actor.agent("other"), "internal", attachments=[log])
    desk.note(theirs, Actor.agent("other"), "elsewhere", attachments=[log])
    view = desk.for_agent("me")
    [mine_file] = desk.conversation(mine)[-1].attachments
    [their_file] = desk.conversation(theirs)[-1].attachments
    assert view.attachment_bytes(mine, mine_file.id) == b"trace"
    with pytest.raises(AccessDeniedError):
        view.attachment_bytes(theirs, their_file.id)
    with pytest.raises(NotFoundError):
        view.attachment_bytes(mine, their_file.id)
    assert [t.id for t in view.tickets()] == [mine]
    assert [t.id for t in view.tickets(group_ids={"l2"})] == []
    assert [t.id for t in view.tickets(group_ids={"l1", "l2"})] == [mine]
    assert [c.body for c in view.conversation(mine)] == ["Help", "internal"]
    assert view.history(mine) == desk.history(mine)
    for read in (view.ticket, view.history, view.conversation):
        with pytest.raises(AccessDeniedError, match="restricted"):
            read(theirs)
    with pytest.raises(ValidationError, match="unknown ticket filter"):
        view.tickets(colour="red")
    everyone = desk.for_agent("other")
    assert {t.id for t in everyone.tickets()} == {mine, theirs}
    desk.update_agent("me", role="triage", restricted=False)
    assert len(view.tickets()) == 2
    desk.deactivate_agent("me")
    with pytest.raises(AccessDeniedError, match="inactive"):
        view.tickets()
    with pytest.raises(NotFoundError):
        desk.for_agent("ghost")
    config = {"roles": {"blind": {"permissions": ["note"]}}}
    blind_desk = Helpdesk(desk.store, config=config, entry_points=False)
    blind_desk.update_agent("other", role="blind")
    with pytest.raises(AccessDeniedError, match="lacks the permission 'read'"):
        blind_desk.for_agent("other").ticket(mine)
