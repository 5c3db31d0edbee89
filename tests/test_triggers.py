"""Triggers (helpkit.triggers) and macros: worked examples on real stores, the evaluation order,
the loop guard, atomicity, configuration mistakes, and a property: any set of triggers ends,
each fires at most once per command, and the result is what a plain simulation of the
documented order gives."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.actions import Actions
from helpkit.channels.recording import RecordingChannel
from helpkit.config import DeskConfig
from helpkit.errors import ConfigError, NotFoundError
from helpkit.events import Notified, WebhookRequested
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor, Ticket
from open_desks import opened

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANA = Actor.agent("ana")


def _desk(config: dict[str, Any], store: str = "memory://", **kw: Any) -> Helpdesk:
    desk = Helpdesk(
        store,
        config=config,
        clock=FrozenClock(START),
        channels=[RecordingChannel("email")],
        **kw,
    )
    opened(desk)
    if not desk.groups():
        desk.add_group("l1", "Service desk", tier=1)
        desk.add_group("l2", "Specialists", tier=2)
        desk.add_agent("ana", "Ana Lopez", email="ana@help.example", groups=["l1"])
        desk.add_agent("bo", "Bo Chen", email="bo@help.example", groups=["l2"])
    return desk


def _open(desk: Helpdesk, *, vip: bool = False, **kw: Any) -> Ticket:
    email = f"c{len(desk.find_contacts('', limit=1000))}@client.example"
    contact = desk.create_contact("Carla Diaz", emails=[email], vip=vip)
    return desk.open_ticket(
        requester=contact,
        subject=kw.pop("subject", "Printer on fire"),
        body="It is on fire.",
        actor=Actor.contact(contact.id),
        **kw,
    )


VIP = {
    "name": "vip-first",
    "when": {
        "all": [
            {"field": "event", "has_any": ["ticket_opened"]},
            {"field": "requester.vip", "is": True},
        ]
    },
    "actions": [
        {"priority": "P1"},
        {"group": "l2"},
        {"add_tags": ["vip"]},
        {"note": "VIP request from {{requester.name}}"},
    ],
}
P1_NOTICE = {
    "name": "p1-notice",
    "when": {"field": "priority", "changed_to": "P1"},
    "actions": [
        {
            "notify": ["group"],
            "subject": "P1 {{ticket.reference}}: {{ticket.subject}}",
            "body": "Requested by {{requester.name}}",
        }
    ],
}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_vip_ticket_is_raised_routed_tagged_noted_and_announced(
    kind: str, tmp_path: Path
) -> None:
    store = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    desk = _desk({"triggers": [VIP, P1_NOTICE]}, store)
    ticket = _open(desk, vip=True)
    assert (ticket.priority.name, ticket.group_id) == ("P1", "l2")
    assert ticket.tags == {"vip"}
    history = desk.history(ticket)
    assert [(e.TYPE, str(e.actor)) for e in history[2:]] == [
        ("priority_changed", "system:trigger:vip-first"),
        ("assigned", "system:trigger:vip-first"),
        ("tags_changed", "system:trigger:vip-first"),
        ("comment_added", "system:trigger:vip-first"),
        ("notified", "system:trigger:p1-notice"),
    ]
    note = desk.conversation(ticket)[-1]
    assert (note.public, note.body) == (False, "VIP request from Carla Diaz")
    desk.deliver_pending()
    sent = desk.channels["email"].messages  # type: ignore[attr-defined]
    notice = [m for m in sent if m.kind == "notification"]
    assert len(notice) == 1
    assert notice[0].subject == f"P1 #{ticket.number}: Printer on fire"
    assert [r.address for r in notice[0].to] == ["bo@help.example"]
    assert notice[0].headers["Auto-Submitted"] == "auto-generated"
    # An ordinary requester gets none of it.
    plain = _open(desk)
    assert plain.tags == frozenset() and len(desk.history(plain)) == 2


def _bounded_actions(monkeypatch: pytest.MonkeyPatch, bound: int) -> list[str]:
    """Count the rules carried out; past ``bound`` of them, fail: a missing loop guard then
    fails the test instead of hanging it."""
    carried: list[str] = []
    carry_out = Actions.carry_out

    def counted(self: Actions, ticket: Ticket, *args: Any, **kwargs: Any) -> Any:
        carried.append(str(kwargs.get("rule")))
        assert len(carried) <= bound, f"the cascade did not stop: {carried}"
        return carry_out(self, ticket, *args, **kwargs)

    monkeypatch.setattr(Actions, "carry_out", counted)
    return carried


def test_triggers_see_what_earlier_ones_did_and_fire_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # b fires on a's tag; a and b would undo each other forever without the guard.
    carried = _bounded_actions(monkeypatch, bound=20)
    config = {
        "triggers": [
            {
                "name": "a",
                "when": {"field": "tags", "has_none": ["x"]},
                "actions": [{"add_tags": ["x"]}],
            },
            {
                "name": "b",
                "when": {"field": "tags", "has_any": ["x"]},
                "actions": [{"remove_tags": ["x"]}, {"add_tags": ["y"]}],
            },
        ]
    }
    desk = _desk(config)
    ticket = _open(desk)
    assert ticket.tags == {"y"}
    actors = [str(e.actor) for e in desk.history(ticket)[2:]]
    assert actors == ["system:trigger:a", "system:trigger:b", "system:trigger:b"]
    assert carried == ["a", "b"]
    # The next command runs them again, once each.
    seen = ticket.seq
    ticket = desk.note(ticket, ANA, "looked at it")
    assert ticket.tags == {"y"}
    # (b's second action changes nothing now: y is there already)
    assert [str(e.actor) for e in desk.history(ticket)[seen + 1 :]] == [
        "system:trigger:a",
        "system:trigger:b",
    ]


def test_a_trigger_that_cannot_act_is_skipped_and_the_command_goes_ahead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {
        "triggers": [
            {"name": "to-ghosts", "actions": [{"group": "ghosts"}]},
            {"name": "tag", "actions": [{"add_tags": ["seen"]}]},
        ]
    }
    desk = _desk(config)
    with caplog.at_level(logging.WARNING, logger="helpkit.triggers"):
        ticket = _open(desk)
    assert ticket.tags == {"seen"} and ticket.group_id is None
    assert "trigger 'to-ghosts' skipped" in caplog.text


def test_the_relays_records_run_no_triggers() -> None:
    config = {"triggers": [{"name": "count", "actions": [{"add_tags": ["touched"]}]}]}
    desk = _desk(config)
    ticket = _open(desk)
    desk.reply(ticket, ANA, "On it")
    desk.deliver_pending()
    types = [e.TYPE for e in desk.history(ticket)]
    assert "message_sent" in types
    assert types[-1] == "message_sent"  # no trigger event after the relay's record


def test_a_reply_trigger_answers_new_requests_with_the_ticket_number() -> None:
    config = {
        "triggers": [
            {
                "name": "auto-reply",
                "when": {"field": "event", "has_any": ["ticket_opened"]},
                "actions": [{"reply": "Thanks {{requester.first_name}}, see {{ticket.reference}}"}],
            }
        ]
    }
    desk = _desk(config)
    ticket = _open(desk)
    desk.deliver_pending()
    (reply,) = [m for m in desk.channels["email"].messages if m.kind == "reply"]  # type: ignore[attr-defined]
    assert reply.body == f"Thanks Carla, see #{ticket.number}"
    assert ticket.status == "open"  # a public reply opens a new ticket


def test_webhook_action_goes_through_the_outbox() -> None:
    config = {
        "webhooks": {
            "crm": {
                "url": "http://127.0.0.1:9/hook",
                "secret": "whsec_" + "A" * 32,
                "events": ["linked"],
            }
        },
        "triggers": [
            {
                "name": "crm",
                "when": {"field": "status", "changed_to": "solved"},
                "actions": [{"webhook": "crm"}],
            }
        ],
    }
    desk = _desk(config)
    ticket = desk.resolve(_open(desk), ANA)
    last = desk.history(ticket)[-1]
    assert isinstance(last, WebhookRequested) and last.endpoint == "crm"
    desk.deliver_pending()  # nothing listens on port 9: the attempt fails and waits to retry
    deliveries = desk.deliveries()
    assert [d.channel for d in deliveries if d.kind == "webhook"] == ["crm"]


def test_sweep_events_run_triggers() -> None:
    config = {
        "sla": {
            "policies": [
                {
                    "name": "std",
                    "calendar": {"timezone": "UTC", "hours": "mon-sun 00:00-24:00"},
                    "targets": {"P3": {"first_response": "1h"}},
                }
            ],
            "default": "std",
        },
        "triggers": [
            {
                "name": "breached",
                "when": {"field": "event", "has_any": ["sla_breached"]},
                "actions": [{"add_tags": ["breached"]}, {"priority": "P2"}],
            }
        ],
    }
    desk = _desk(config)
    ticket = _open(desk)
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(hours=2)
    desk.sweep()
    ticket = desk.ticket(ticket.id)
    assert "breached" in ticket.tags and ticket.priority.name == "P2"


def test_trigger_changes_commit_with_the_command_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    config = {"triggers": [{"name": "solve", "actions": [{"status": "closed"}]}]}
    desk = _desk(config, f"sqlite:///{path}")
    ticket = _open(desk)
    assert ticket.status == "closed"
    # A closed ticket is read-only: the trigger is skipped, a note is refused, the file is
    # untouched.
    before = path.read_bytes()
    with pytest.raises(Exception, match="closed"):
        desk.note(ticket, ANA, "late")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"triggers": [{"name": "t", "when": {"field": "priorty", "is": 1}, "actions": []}]},
            "trigger 't': unknown field 'priorty'",
        ),
        (
            {"triggers": [{"name": "t", "actions": [{"status": "gone"}]}]},
            "trigger 't': actions\\[0\\]: unknown status 'gone'",
        ),
        ({"triggers": [{"name": "t", "actions": [{"colour": "red"}]}]}, "exactly one of"),
        ({"triggers": [{"name": "t", "actions": [{"webhook": "crm"}]}]}, "webhook 'crm'"),
        (
            {"triggers": [{"name": "t", "actions": [{"note": "{{ticket.colour}}"}]}]},
            "unknown placeholder",
        ),
        ({"triggers": [{"name": "t", "actions": [{"notify": ["boss"]}]}]}, "unknown audience"),
        (
            {"triggers": [{"name": "t", "actions": [{"add_tags": ["x"]}], "on": "x"}]},
            "unknown keys",
        ),
        (
            {
                "triggers": [
                    {"name": "t", "actions": [{"add_tags": ["x"]}]},
                    {"name": "t", "actions": [{"add_tags": ["y"]}]},
                ]
            },
            "two triggers are called 't'",
        ),
        ({"macros": [{"name": "m", "actions": [{"fields": {"nope": 1}}]}]}, "macro 'm'"),
        ({"triggers": [{"name": "bad name!", "actions": [{"add_tags": ["x"]}]}]}, "name"),
    ],
)
def test_configuration_mistakes_are_refused_when_loaded(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        DeskConfig.from_dict(config)


def test_inactive_triggers_do_not_run() -> None:
    config = {"triggers": [{"name": "t", "active": False, "actions": [{"add_tags": ["x"]}]}]}
    assert _open(_desk(config)).tags == frozenset()


# ---------------------------------------------------------------- macros

CLOSE_DUPLICATE = {
    "name": "close-duplicate",
    "title": "Close as duplicate",
    "actions": [
        {"reply": "Hello {{requester.first_name}}, this is a duplicate.\n-- {{agent.first_name}}"},
        {"status": "solved"},
        {"add_tags": ["duplicate"]},
    ],
}


def test_a_macro_applies_its_actions_in_one_command(tmp_path: Path) -> None:
    desk = _desk({"macros": [CLOSE_DUPLICATE]}, f"sqlite:///{tmp_path / 'desk.db'}")
    ticket = _open(desk)
    seq = ticket.seq
    ticket = desk.apply_macro(ticket, "close-duplicate", ANA, expected_seq=seq)
    assert ticket.status == "solved"
    assert ticket.tags == {"duplicate"}
    new = desk.history(ticket)[seq:]
    assert {str(e.actor) for e in new} == {"agent:ana"}
    reply = desk.conversation(ticket)[-1]
    assert reply.public and reply.body == "Hello Carla, this is a duplicate.\n-- Ana"


def _stored(path: Path) -> tuple[dict[str, bytes], list[str]]:
    """The database file and its write-ahead log (a commit lands there first, not in the main
    file; the ``-shm`` index changes on every read, so it is left out), and the whole
    content, as SQL."""
    files = {f.name: f.read_bytes() for f in (path, path.with_name(path.name + "-wal"))}
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return files, list(conn.iterdump())


def test_a_macro_preview_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "desk.db"
    desk = _desk({"macros": [CLOSE_DUPLICATE], "triggers": [P1_NOTICE]}, f"sqlite:///{path}")
    ticket = _open(desk)
    before = _stored(path)
    preview = desk.preview_macro(ticket, "close-duplicate", ANA)
    assert [e.TYPE for e in preview.events] == [
        "comment_added",
        "status_changed",
        "status_changed",
        "tags_changed",
    ]
    assert preview.ticket.status == "solved"
    assert _stored(path) == before
    assert desk.ticket(ticket.id) == ticket


def test_unknown_macros_and_non_agents_are_refused() -> None:
    desk = _desk({"macros": [CLOSE_DUPLICATE]})
    ticket = _open(desk)
    with pytest.raises(NotFoundError, match="unknown macro 'nope'"):
        desk.apply_macro(ticket, "nope", ANA)
    with pytest.raises(NotFoundError):
        desk.apply_macro(ticket, "close-duplicate", Actor.agent("ghost"))


# ---------------------------------------------------------------- property: order and guard

_TAGS = ["a", "b", "c"]


@st.composite
def _trigger_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 6))
    triggers = []
    for index in range(count):
        test = draw(st.sampled_from(["has_any", "has_none"]))
        tag = draw(st.sampled_from(_TAGS))
        add = draw(st.sets(st.sampled_from(_TAGS), max_size=2))
        remove = draw(st.sets(st.sampled_from(_TAGS), max_size=2)) - add
        actions: list[dict[str, Any]] = []
        if add:
            actions.append({"add_tags": sorted(add)})
        if remove:
            actions.append({"remove_tags": sorted(remove)})
        if not actions:
            actions.append({"add_tags": [tag]})
        triggers.append(
            {"name": f"t{index}", "when": {"field": "tags", test: [tag]}, "actions": actions}
        )
    return triggers


def _simulate(triggers: list[dict[str, Any]], tags: set[str]) -> tuple[set[str], list[str]]:
    """The documented order: test in order, fire, start again; each at most once."""
    fired: list[str] = []
    again = True
    while again:
        again = False
        for trigger in triggers:
            if trigger["name"] in fired:
                continue
            (test, (tag,)), *_ = ((k, v) for k, v in trigger["when"].items() if k != "field")
            if (tag in tags) != (test == "has_any"):
                continue
            fired.append(trigger["name"])
            new = set(tags)
            for action in trigger["actions"]:
                new |= set(action.get("add_tags", ()))
                new -= set(action.get("remove_tags", ()))
            if new != tags:
                tags = new
                again = True
                break
    return tags, fired


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trigger_sets(), st.sets(st.sampled_from(_TAGS)))
def test_any_trigger_set_ends_each_firing_at_most_once(
    triggers: list[dict[str, Any]], start: set[str]
) -> None:
    desk = _desk({"triggers": triggers})
    contact = desk.create_contact("Carla", emails=["carla@client.example"])
    ticket = desk.open_ticket(
        requester=contact,
        subject="x",
        body="y",
        actor=Actor.contact(contact.id),
        tags=sorted(start),
    )
    expected, fired = _simulate(triggers, set(start))
    assert set(ticket.tags) == expected
    actors = [str(e.actor) for e in desk.history(ticket) if str(e.actor).startswith("system:")]
    changed = list(dict.fromkeys(actors))
    assert len(changed) <= len(triggers)
    assert all(name.removeprefix("system:trigger:") in fired for name in changed)
    assert not any(isinstance(e, Notified) for e in desk.history(ticket))
