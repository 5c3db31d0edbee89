"""Time-based automations (helpkit.automations): the timer index finds them, they fire once
per due instant, from the sweep or from a command, on real stores, safely with concurrent
sweepers; and a property: how often the sweep runs does not change what fires."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.config import DeskConfig
from helpkit.errors import ConfigError
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor, Ticket
from open_desks import opened

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
ANA = Actor.agent("ana")

PENDING_FLOW = {
    "calendars": {"office": {"timezone": "UTC", "hours": "mon-fri 09:00-17:00"}},
    "automations": [
        {
            "name": "close-solved",
            "when": {
                "all": [
                    {"field": "category", "is": "solved"},
                    {"since": "status", "at_least": "4d"},
                ]
            },
            "actions": [{"status": "closed"}],
        },
        {
            "name": "remind",
            "when": {
                "all": [
                    {"field": "category", "is": "pending"},
                    {"since": "status", "at_least": "2d"},
                ]
            },
            "actions": [
                {
                    "notify": ["requester"],
                    "subject": "Still need help with {{ticket.reference}}?",
                    "body": "Hello {{requester.first_name}}, we are waiting for your answer.",
                }
            ],
        },
        {
            "name": "auto-solve",
            "when": {
                "all": [
                    {"field": "category", "is": "pending"},
                    {"since": "status", "at_least": "4d"},
                ]
            },
            "actions": [{"status": "solved"}, {"add_tags": ["auto_solved"]}],
        },
        {
            "name": "unassigned",
            "when": {
                "all": [
                    {"field": "assignee", "empty": True},
                    {"field": "category", "in": ["new", "open"]},
                    {"since": "created", "at_least": "2h", "calendar": "office"},
                ]
            },
            "actions": [{"add_tags": ["unassigned_2h"]}],
        },
    ],
}


def _desk(config: dict[str, Any], store: str = "memory://") -> tuple[Helpdesk, FrozenClock]:
    clock = FrozenClock(START)
    desk = Helpdesk(store, config=config, clock=clock, channels=[RecordingChannel("email")])
    opened(desk)
    if not desk.agents():
        desk.add_group("l1", "Service desk")
        desk.add_agent("ana", "Ana Lopez", email="ana@help.example", groups=["l1"])
    return desk, clock


def _open(desk: Helpdesk) -> Ticket:
    contact = desk.contact_for_email("carla@client.example", name="Carla Diaz")
    return desk.open_ticket(
        requester=contact, subject="Printer", body="Broken", actor=Actor.contact(contact.id)
    )


def _fired(desk: Helpdesk, ticket: Ticket) -> list[tuple[str, datetime]]:
    return [
        (str(e.actor).removeprefix("system:automation:"), e.at)
        for e in desk.history(ticket.id)
        if str(e.actor).startswith("system:automation:")
    ]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_pending_reminder_then_solved_then_closed(kind: str, tmp_path: Path) -> None:
    store = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    desk, clock = _desk(PENDING_FLOW, store)
    ticket = desk.reply(_open(desk), ANA, "Which model?", status="pending")
    # The timer index holds the earliest due instant: the reminder, two days on.
    assert ticket.next_check == START + timedelta(days=2)
    for _ in range(12):
        clock.advance(days=1)
        desk.sweep()
    ticket = desk.ticket(ticket.id)
    assert ticket.status == "closed" and "auto_solved" in ticket.tags
    day = timedelta(days=1)
    assert _fired(desk, ticket) == [
        ("remind", START + 2 * day),
        ("auto-solve", START + 4 * day),  # counted from entering pending, not the reminder
        ("auto-solve", START + 4 * day),
        ("close-solved", START + 8 * day),
    ]
    assert ticket.next_check is None
    desk.deliver_pending()
    (reminder,) = [m for m in desk.channels["email"].messages if m.kind == "notification"]  # type: ignore[attr-defined]
    assert reminder.subject == f"Still need help with #{ticket.number}?"
    assert [r.address for r in reminder.to] == ["carla@client.example"]


def test_business_hours_and_nullified_conditions() -> None:
    desk, clock = _desk(PENDING_FLOW)
    clock.set(datetime(2026, 3, 6, 16, 0, tzinfo=UTC))  # Friday 16:00
    ticket = _open(desk)
    # Two business hours after Friday 16:00 is Monday 10:00.
    assert ticket.next_check == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    clock.set(datetime(2026, 3, 9, 9, 59, tzinfo=UTC))
    assert desk.sweep().examined == 0
    clock.set(datetime(2026, 3, 9, 10, 0, tzinfo=UTC))
    desk.sweep()
    assert "unassigned_2h" in desk.ticket(ticket.id).tags
    # Assigned before it is due, another ticket never gets the tag.
    clock.set(datetime(2026, 3, 9, 11, 0, tzinfo=UTC))
    other = desk.assign(_open(desk), ANA, agent="ana")
    assert other.next_check is None
    clock.advance(hours=5)
    desk.sweep()
    assert "unassigned_2h" not in desk.ticket(other.id).tags


def test_an_automation_fires_once_per_due_instant() -> None:
    config = {
        "automations": [
            {
                "name": "stale",
                "when": {"since": "created", "at_least": "1h"},
                "actions": [{"add_tags": ["stale"]}],
            }
        ]
    }
    desk, clock = _desk(config)
    ticket = _open(desk)
    clock.advance(hours=2)
    desk.sweep()
    seen = desk.ticket(ticket.id).seq
    for _ in range(3):
        clock.advance(hours=5)
        assert desk.sweep().examined == 0
    desk.untag(ticket.id, ANA, "stale")  # its own change is not undone again: same instant
    clock.advance(hours=5)
    desk.sweep()
    ticket = desk.ticket(ticket.id)
    assert "stale" not in ticket.tags and ticket.seq == seen + 1


def test_a_command_fires_what_is_overdue_before_the_sweep_does() -> None:
    desk, clock = _desk(PENDING_FLOW)
    ticket = desk.reply(_open(desk), ANA, "Which model?", status="pending")
    clock.advance(days=2, minutes=5)
    ticket = desk.note(ticket, ANA, "Still waiting")  # the reminder fires in this command,
    # dated after the note (the history stays in time order)
    assert _fired(desk, ticket) == [("remind", START + timedelta(days=2, minutes=5))]
    desk.sweep()
    assert len(_fired(desk, ticket)) == 1


def test_concurrent_sweepers_fire_each_automation_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    desk, _clock = _desk(PENDING_FLOW, url)
    tickets = [desk.reply(_open(desk), ANA, "?", status="pending") for _ in range(30)]
    later = START + timedelta(days=2, hours=1)
    desks = [
        Helpdesk(url, config=PENDING_FLOW, clock=FrozenClock(later), channels=[]) for _ in range(4)
    ]
    for desk in desks:
        opened(desk)
    threads = [threading.Thread(target=d.sweep) for d in desks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ticket in tickets:
        assert [name for name, _ in _fired(desk, ticket)] == ["remind"]


@pytest.mark.parametrize(
    ("automation", "message"),
    [
        (
            {"name": "a", "when": {"field": "vip", "is": True}, "actions": [{"status": "open"}]},
            "time part",
        ),
        (
            {
                "name": "a",
                "when": {"since": "created", "at_most": "1h"},
                "actions": [{"status": "open"}],
            },
            "time part",
        ),
        (
            {
                "name": "a",
                "when": {
                    "any": [{"since": "created", "at_least": "1h"}, {"field": "vip", "is": True}]
                },
                "actions": [{"status": "open"}],
            },
            "time part",
        ),
        ({"name": "a", "actions": [{"status": "open"}]}, "needs a condition"),
        (
            {
                "name": "a",
                "when": {
                    "all": [
                        {"field": "event", "has_any": ["ticket_opened"]},
                        {"since": "created", "at_least": "1h"},
                    ]
                },
                "actions": [{"status": "open"}],
            },
            "only triggers",
        ),
    ],
)
def test_automation_mistakes_are_refused(automation: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DeskConfig.from_dict({"automations": [automation]})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 60 * 60), min_size=1, max_size=30))
def test_how_often_the_sweep_runs_does_not_change_what_fires(gaps: list[int]) -> None:
    """Sweeping at any times gives the same automations, in the same order and dated the
    same, as sweeping at every due instant (the reference)."""
    desk, clock = _desk(PENDING_FLOW)
    ticket = desk.reply(_open(desk), ANA, "Which model?", status="pending")
    for gap in gaps:
        clock.advance(minutes=gap * 10)
        desk.sweep()
    end = clock.now()
    reference, ref_clock = _desk(PENDING_FLOW)
    ref_ticket = reference.reply(_open(reference), ANA, "Which model?", status="pending")
    while True:
        due = reference.ticket(ref_ticket.id).next_check
        if due is None or due > end:
            break
        ref_clock.set(due)
        reference.sweep()
    assert _fired(desk, ticket) == _fired(reference, ref_ticket)
    assert desk.ticket(ticket.id).status == reference.ticket(ref_ticket.id).status


def test_one_late_sweep_does_everything_dated_when_it_was_due() -> None:
    desk, clock = _desk(PENDING_FLOW)
    ticket = desk.reply(_open(desk), ANA, "Which model?", status="pending")
    clock.advance(days=30)
    desk.sweep()
    day = timedelta(days=1)
    assert _fired(desk, ticket) == [
        ("remind", START + 2 * day),
        ("auto-solve", START + 4 * day),
        ("auto-solve", START + 4 * day),
        ("close-solved", START + 8 * day),
    ]


def test_the_next_check_is_the_earliest_of_the_sla_and_the_automations(tmp_path: Path) -> None:
    """One index for every timer: a ticket's next check is the SLA clock's next check or an
    automation's due instant, whichever comes first; the sweep finds each at its turn."""
    config = {
        "calendars": {"all": {"timezone": "UTC", "hours": "mon-sun 00:00-24:00"}},
        "sla": {
            "policies": [
                {
                    "name": "std",
                    "calendar": "all",
                    "warn_at": [0.5],
                    "targets": {p: {"resolution": "8h"} for p in ("P1", "P2", "P3", "P4", "P5")},
                }
            ],
        },
        "automations": [
            {
                "name": "nudge",
                "when": {
                    "all": [
                        {"field": "category", "is": "new"},
                        {"since": "created", "at_least": "1h"},
                    ]
                },
                "actions": [{"add_tags": ["nudged"]}],
            },
            {
                "name": "stale",
                "when": {
                    "all": [
                        {"field": "category", "is": "open"},
                        {"field": "tags", "has_none": ["stale"]},
                        {"since": "updated", "at_least": "2h"},
                    ]
                },
                "actions": [{"add_tags": ["stale"]}],
            },
        ],
    }
    desk, clock = _desk(config, f"sqlite:///{tmp_path / 'desk.db'}")
    ticket = _open(desk)
    assert ticket.next_check == START + timedelta(hours=1)  # the automation, before the SLA's 4h
    clock.advance(hours=1)
    assert desk.sweep().examined == 1
    ticket = desk.ticket(ticket.id)
    assert ticket.tags == {"nudged"}
    assert ticket.next_check == START + timedelta(hours=4)  # now the SLA warning (50% of 8h)
    ticket = desk.reply(ticket, ANA, "Looking into it")  # opens it; an update at 1h
    assert ticket.next_check == START + timedelta(hours=3)  # "stale", before the SLA's 4h
    clock.advance(hours=2)
    desk.sweep()
    ticket = desk.ticket(ticket.id)
    assert ticket.tags == {"nudged", "stale"}
    assert ticket.next_check == START + timedelta(hours=4)  # the SLA warning
    clock.advance(hours=1)
    desk.sweep()
    ticket = desk.ticket(ticket.id)
    assert [e.TYPE for e in desk.history(ticket)][-1] == "sla_warned"
    assert ticket.next_check == START + timedelta(hours=8)  # the breach; no automation is due
