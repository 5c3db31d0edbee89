"""The instants rules count from beyond creation, update and status (issue #14): ``assigned``,
``requester_updated`` and ``agent_updated``.

Worked examples of what moves each instant and what does not; automations firing at the
right second in business hours across a weekend, and a trigger testing one immediately; a
Hypothesis property that folding a history in two parts, through the stored form in between,
gives the instants of folding it at once, and that they are what their definitions say of the
history; tickets stored before helpkit kept them loading from real SQLite and PostgreSQL
stores; and an unknown instant refused when the configuration loads.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit._codec import decoder, encoder
from helpkit.channels.recording import RecordingChannel
from helpkit.conditions import Anchor
from helpkit.errors import ConfigError
from helpkit.events import Assigned, CommentAdded, Escalated, Event, MergeReceived, TicketOpened
from helpkit.lifecycle import apply, replay
from helpkit.testing.clock import FrozenClock
from helpkit.testing.strategies import ticket_histories
from helpkit.tickets import Actor, ActorKind, Ticket
from open_desks import opened
from postgres_fixtures import fresh_schema

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
NEXT_MONDAY = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
ANA, BO = Actor.agent("ana"), Actor.agent("bo")
OFFICE = {"office": {"timezone": "UTC", "hours": "mon-fri 09:00-17:00"}}
SECOND = timedelta(seconds=1)


def _desk(config: dict[str, Any], store: str = "memory://") -> tuple[Helpdesk, FrozenClock]:
    clock = FrozenClock(MONDAY)
    desk = Helpdesk(store, config=config, clock=clock, channels=[RecordingChannel("email")])
    opened(desk)
    desk.add_group("l1", "Service desk")
    desk.add_group("l2", "Experts")
    desk.add_agent("ana", "Ana Lopez", email="ana@help.example", groups=["l1", "l2"])
    desk.add_agent("bo", "Bo Berg", email="bo@help.example", groups=["l1"])
    return desk, clock


def _carla(desk: Helpdesk) -> Actor:
    return Actor.contact(desk.contact_for_email("carla@client.example", name="Carla Diaz").id)


def _open(desk: Helpdesk, **options: Any) -> Ticket:
    carla = _carla(desk)
    return desk.open_ticket(carla, requester=carla.id, subject="Printer", body="Broken", **options)


def _automation(name: str, *when: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "when": {"all": list(when)}, "actions": [{"add_tags": [name]}]}


def _fired(desk: Helpdesk, ticket: Ticket) -> list[tuple[str, datetime]]:
    return [
        (str(e.actor).removeprefix("system:automation:"), e.at)
        for e in desk.history(ticket.id)
        if str(e.actor).startswith("system:automation:")
    ]


def _sweep_at(desk: Helpdesk, clock: FrozenClock, when: datetime) -> int:
    clock.set(when)
    return desk.sweep().examined


# ------------------------------------------------------------------ what moves each instant


def test_assigned_is_when_the_current_assignee_got_the_ticket() -> None:
    desk, clock = _desk({})
    ticket = _open(desk)
    assert ticket.assigned_at is None and Anchor.ASSIGNED.of(ticket) is None
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent="ana", group="l1")
    got = MONDAY + timedelta(hours=1)
    assert ticket.assigned_at == Anchor.ASSIGNED.of(ticket) == got
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, group="l2")  # another group, the same assignee
    assert (ticket.group_id, ticket.assignee_id, ticket.assigned_at) == ("l2", "ana", got)
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent="bo", group="l1")
    assert ticket.assigned_at == MONDAY + timedelta(hours=3)
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent=None)
    assert ticket.assigned_at is None and Anchor.ASSIGNED.of(ticket) is None
    # Assigned when it opens: from its creation.
    born_assigned = _open(desk, assignee="ana")
    assert born_assigned.assigned_at == born_assigned.created_at


def test_an_escalation_moves_assigned_as_an_assignment_does() -> None:
    desk, _clock = _desk({})
    ticket = desk.assign(_open(desk), ANA, agent="ana", group="l1")
    later = MONDAY + timedelta(hours=1)

    def escalated(state: Ticket, assignee: str | None) -> Ticket:
        return apply(
            state,
            Escalated(
                ticket_id=state.id,
                at=later,
                actor=Actor.system("sweep"),
                seq=state.seq + 1,
                kind="hierarchical",
                group_id="l2",
                previous_group_id="l1",
                tier=2,
                previous_tier=1,
                rule="resolution-75",
                assignee_id=assignee,
            ),
        )

    assert escalated(ticket, None).assigned_at is None  # to a group, nobody in particular
    assert escalated(ticket, "ana").assigned_at == MONDAY  # the same agent keeps it
    assert escalated(ticket, "bo").assigned_at == later


def test_requester_updated_counts_the_requester_s_public_comments_only() -> None:
    desk, clock = _desk({})
    ticket = _open(desk)
    assert ticket.requester_updated_at == ticket.created_at == MONDAY
    clock.advance(hours=1)
    colleague = desk.contact_for_email("dan@client.example", name="Dan Diaz")
    ticket = desk.follow(ticket, ANA, Actor.contact(colleague.id))
    ticket = desk.requester_reply(
        ticket, "Me too", actor=Actor.contact(colleague.id)
    )  # a CC'd contact
    ticket = desk.reply(ticket, ANA, "Which model?")
    ticket = desk.note(ticket, ANA, "Probably the fuser")
    assert ticket.requester_updated_at == MONDAY
    clock.advance(hours=1)
    ticket = desk.requester_reply(ticket, "The LX-200")
    assert ticket.requester_updated_at == Anchor.REQUESTER_UPDATED.of(ticket)
    assert ticket.requester_updated_at == MONDAY + timedelta(hours=2)


def test_agent_updated_counts_agents_public_replies_only() -> None:
    desk, clock = _desk({})
    ticket = _open(desk)
    assert ticket.agent_updated_at is None and Anchor.AGENT_UPDATED.of(ticket) is None
    clock.advance(hours=1)
    ticket = desk.note(ticket, ANA, "Looking")
    ticket = desk.requester_reply(ticket, "Any news?")
    assert ticket.agent_updated_at is None
    clock.advance(hours=1)
    ticket = desk.reply(ticket, BO, "On it")  # any agent, not only the assignee
    assert ticket.agent_updated_at == MONDAY + timedelta(hours=2)
    clock.advance(hours=1)
    ticket = desk.note(ticket, ANA, "Ordered the part")
    assert ticket.agent_updated_at == MONDAY + timedelta(hours=2)


def test_comments_merged_in_count_at_the_date_they_were_written() -> None:
    desk, clock = _desk({})
    target = _open(desk)
    clock.advance(hours=1)
    source = _open(desk)
    clock.advance(hours=1)
    desk.requester_reply(source, "Also the scanner")
    clock.advance(hours=1)
    desk.reply(source, ANA, "Noted")
    desk.note(source, BO, "Same printer")
    clock.advance(hours=5)
    target = desk.merge(source, target.id, ANA)
    assert target.requester_updated_at == MONDAY + timedelta(hours=2)
    assert target.agent_updated_at == MONDAY + timedelta(hours=3)
    # A later comment of the target itself still wins; merging older ones never goes back.
    assert replay(desk.history(target)) == target


# ------------------------------------------------------------------ automations, business hours


def test_assigned_for_two_business_hours_fires_on_monday_at_ten() -> None:
    config = {
        "calendars": OFFICE,
        "automations": [
            _automation(
                "stuck",
                {"field": "assignee", "empty": False},
                {"field": "category", "in": ["new", "open"]},
                {"since": "assigned", "at_least": "2h", "calendar": "office"},
            )
        ],
    }
    desk, clock = _desk(config)
    clock.set(FRIDAY.replace(hour=15))
    ticket = _open(desk)
    assert ticket.next_check is None  # unassigned: no instant, nothing due
    clock.set(FRIDAY.replace(hour=16))
    ticket = desk.assign(ticket, ANA, agent="ana")
    due = NEXT_MONDAY.replace(hour=10)  # Friday 16-17, Monday 9-10
    assert ticket.next_check == due
    # Moved to another group, same assignee: the instant and the due instant stay.
    clock.set(FRIDAY.replace(hour=16, minute=30))
    assert desk.assign(ticket, ANA, group="l2").next_check == due
    assert _sweep_at(desk, clock, due - SECOND) == 0
    assert _sweep_at(desk, clock, due) == 1
    assert _fired(desk, ticket) == [("stuck", due)]
    # Another ticket given to bo before it was due starts again from bo.
    clock.set(FRIDAY.replace(hour=16))
    other = desk.assign(_open(desk), ANA, agent="ana", group="l1")
    clock.set(NEXT_MONDAY.replace(hour=9, minute=30))
    other = desk.assign(other, ANA, agent="bo")
    assert other.next_check == NEXT_MONDAY.replace(hour=11, minute=30)
    assert _sweep_at(desk, clock, NEXT_MONDAY.replace(hour=11, minute=29, second=59)) == 0
    assert _sweep_at(desk, clock, NEXT_MONDAY.replace(hour=11, minute=30)) == 1
    assert _fired(desk, other) == [("stuck", NEXT_MONDAY.replace(hour=11, minute=30))]


def test_requester_silent_for_eight_business_hours_fires_on_monday_afternoon() -> None:
    config = {
        "calendars": OFFICE,
        "automations": [
            {
                "name": "nudge",
                "when": {
                    "all": [
                        {"field": "category", "is": "pending"},
                        {"since": "requester_updated", "at_least": "8h", "calendar": "office"},
                    ]
                },
                "actions": [
                    {
                        "notify": ["requester"],
                        "subject": "Still need help with {{ticket.reference}}?",
                        "body": "We are waiting for your answer.",
                    }
                ],
            }
        ],
    }
    desk, clock = _desk(config)
    ticket = _open(desk)

    clock.set(FRIDAY.replace(hour=15, minute=30))
    ticket = desk.requester_reply(ticket, "It still jams")
    clock.set(FRIDAY.replace(hour=16))
    ticket = desk.reply(ticket, ANA, "Which tray?", status="pending")
    due = NEXT_MONDAY.replace(hour=15, minute=30)  # Friday 15:30-17:00, Monday 9:00-15:30
    assert ticket.next_check == due
    clock.set(NEXT_MONDAY.replace(hour=10))
    ticket = desk.note(ticket, ANA, "Chase her after lunch")  # not the requester: no change
    assert ticket.next_check == due
    assert _sweep_at(desk, clock, due - SECOND) == 0
    assert _sweep_at(desk, clock, due) == 1
    assert _fired(desk, ticket) == [("nudge", due)]
    desk.deliver_pending()
    (nudge,) = [m for m in desk.channels["email"].messages if m.kind == "notification"]  # type: ignore[attr-defined]
    assert [r.address for r in nudge.to] == ["carla@client.example"]
    assert _sweep_at(desk, clock, due + timedelta(days=3)) == 0  # once per due instant


def test_no_agent_follow_up_for_four_business_hours_fires_on_monday_at_ten() -> None:
    config = {
        "calendars": OFFICE,
        "automations": [
            _automation(
                "follow-up",
                {"field": "category", "is": "open"},
                {"since": "agent_updated", "at_least": "4h", "calendar": "office"},
            )
        ],
    }
    desk, clock = _desk(config)
    clock.set(FRIDAY.replace(hour=13))
    ticket = _open(desk)
    assert ticket.next_check is None  # no agent reply yet: no instant
    clock.set(FRIDAY.replace(hour=14))
    ticket = desk.reply(ticket, ANA, "Try restarting it")
    due = NEXT_MONDAY.replace(hour=10)  # Friday 14-17, Monday 9-10
    assert ticket.next_check == due
    clock.set(NEXT_MONDAY.replace(hour=9, minute=30))
    ticket = desk.note(ticket, BO, "Ana is on it")  # a note is not a reply
    ticket = desk.requester_reply(ticket, "Did not help")
    assert ticket.next_check == due
    assert _sweep_at(desk, clock, due - SECOND) == 0
    assert _sweep_at(desk, clock, due) == 1
    assert _fired(desk, ticket) == [("follow-up", due)]


def test_a_trigger_tests_an_instant_when_the_command_runs() -> None:
    config = {
        "triggers": [
            {
                "name": "chased",
                "when": {
                    "all": [
                        {"field": "comment.author", "is": "contact"},
                        {"since": "agent_updated", "at_least": "1d"},
                    ]
                },
                "actions": [{"add_tags": ["chased"]}],
            }
        ]
    }
    desk, clock = _desk(config)
    ticket = _open(desk)

    ticket = desk.requester_reply(ticket, "Hello?")  # no agent reply yet: no instant
    assert "chased" not in ticket.tags
    ticket = desk.reply(ticket, ANA, "Looking")
    clock.advance(hours=23, minutes=59)
    ticket = desk.requester_reply(ticket, "Any news?")
    assert "chased" not in ticket.tags
    clock.advance(minutes=1)
    ticket = desk.requester_reply(ticket, "Hello??")
    assert "chased" in ticket.tags


def test_an_unknown_instant_is_refused_naming_it_and_the_known_ones() -> None:
    config = {"automations": [_automation("x", {"since": "assignee_updated", "at_least": "1h"})]}
    with pytest.raises(ConfigError) as error:
        Helpdesk(config=config)
    message = str(error.value)
    assert "'assignee_updated'" in message
    assert "created, updated, status, solved, closed, assigned, requester_updated" in message
    assert "agent_updated" in message


# ------------------------------------------------------------------ the fold, a property


def rule_instants(events: list[Event]) -> tuple[datetime | None, datetime | None, datetime | None]:
    """The three instants as their definitions read the whole history (not the fold)."""
    opening = events[0]
    assert isinstance(opening, TicketOpened)
    requester = Actor.contact(opening.requester_id)
    written: list[tuple[Actor, datetime]] = []
    assignments: list[tuple[str | None, datetime]] = [(opening.assignee_id, opening.at)]
    for event in events:
        if isinstance(event, CommentAdded) and event.comment.public:
            written.append((event.comment.author, event.at))
        elif isinstance(event, MergeReceived):
            written += [(c.author, min(c.created_at, event.at)) for c in event.comments if c.public]
        elif isinstance(event, Assigned | Escalated):
            assignments.append((event.assignee_id, event.at))
    assignee = assignments[-1][0]
    assigned = None
    if assignee is not None:  # the first of the trailing run of assignments to that agent
        run = len(assignments)
        while run > 0 and assignments[run - 1][0] == assignee:
            run -= 1
        assigned = assignments[run][1]
    by_requester = [at for who, at in written if who == requester]
    by_agents = [at for who, at in written if who.kind is ActorKind.AGENT]
    return (
        assigned,
        max([opening.at, *by_requester]),
        max(by_agents, default=None),
    )


def _instants(ticket: Ticket) -> tuple[datetime | None, datetime | None, datetime | None]:
    return ticket.assigned_at, ticket.requester_updated_at, ticket.agent_updated_at


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=ticket_histories(max_commands=25), split=st.integers(min_value=1))
def test_folding_a_stored_prefix_then_the_rest_gives_the_instants_of_the_whole_history(
    events: list[Event], split: int
) -> None:
    whole = replay(events)
    assert _instants(whole) == rule_instants(events)
    cut = 1 + split % len(events)
    # The prefix as a store keeps it (JSON text), read back, then the rest event by event.
    stored = json.loads(json.dumps(encoder(Ticket)(replay(events[:cut]))))
    state = decoder(Ticket)(stored)
    for event in events[cut:]:
        state = apply(state, event)
    assert _instants(state) == _instants(whole)
    assert state == whole


# ------------------------------------------------------------------ tickets stored before


_NEW_KEYS = ("assigned_at", "requester_updated_at", "agent_updated_at")


def _strip_sqlite(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT id, state FROM tickets").fetchall()
        for ticket_id, text in rows:
            state = json.loads(text)
            for key in _NEW_KEYS:
                state.pop(key, None)
            db.execute(
                "UPDATE tickets SET state = ? WHERE id = ?",
                (json.dumps(state, separators=(",", ":")), ticket_id),
            )
        db.commit()


def _strip_postgres(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as db:
        tickets = sql.Identifier(schema, "tickets")
        rows = db.execute(sql.SQL("SELECT id, state FROM {}").format(tickets)).fetchall()
        for ticket_id, text in rows:
            state = json.loads(text)
            for key in _NEW_KEYS:
                state.pop(key, None)
            db.execute(
                sql.SQL("UPDATE {} SET state = %s WHERE id = %s").format(tickets),
                (json.dumps(state, separators=(",", ":")), ticket_id),
            )


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_ticket_stored_before_the_instants_loads_and_rules_count_late_not_early(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'desk.db'}"
    else:
        schema = fresh_schema()
        database = request.getfixturevalue("postgres_database")
        url = f"{database}?schema={schema}"
    desk, clock = _desk({}, url)
    ticket = desk.assign(_open(desk), ANA, agent="ana")
    clock.advance(hours=1)
    ticket = desk.reply(ticket, ANA, "Which model?")
    clock.advance(hours=1)
    ticket = desk.note(ticket, ANA, "Waiting")
    assert _instants(ticket) == (MONDAY, MONDAY, MONDAY + timedelta(hours=1))
    desk.shutdown()
    if kind == "sqlite":
        _strip_sqlite(tmp_path / "desk.db")
    else:
        _strip_postgres(database, schema)
    chase = {
        "automations": [
            {
                "name": "chase",
                "when": {"since": "assigned", "at_least": "2h"},
                "actions": [
                    {"notify": ["assignee"], "subject": "Still yours", "body": "{{ticket.subject}}"}
                ],
            }
        ]
    }
    again = opened(Helpdesk(url, config=chase, clock=clock, channels=[RecordingChannel("email")]))
    old = again.ticket(ticket.id)
    assert old == attrs.evolve(
        ticket, assigned_at=None, requester_updated_at=None, agent_updated_at=None
    )
    # Counted from its last change (the latest the instant can have been); no agent reply
    # known until the next one.
    late = MONDAY + timedelta(hours=2)
    assert Anchor.ASSIGNED.of(old) == Anchor.REQUESTER_UPDATED.of(old) == late
    assert Anchor.AGENT_UPDATED.of(old) is None
    # The history still folds to the instants.
    assert _instants(replay(again.history(ticket.id))) == _instants(ticket)
    # Its next event pins the unknown instants to that last change, so the automation due
    # at late + 2h fires once: its own change does not move the instant it counts from.
    clock.set(late + timedelta(hours=3))
    newer = again.requester_reply(old, "The LX-200")
    assert _instants(newer) == (late, late + timedelta(hours=3), None)
    clock.advance(hours=1)
    newer = again.reply(newer, ANA, "Thanks")
    assert _instants(newer) == (late, late + timedelta(hours=3), late + timedelta(hours=4))
    for _ in range(3):
        clock.advance(hours=3)
        again.sweep()
        newer = again.note(newer, ANA, "Waiting")
    assert [at for _, at in _fired(again, newer)] == [late + timedelta(hours=3)]
    assert again.ticket(ticket.id) == newer


def test_every_store_keeps_the_instants_and_the_due_instants_alike(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    config = {
        "calendars": OFFICE,
        "automations": [
            _automation("a", {"since": "assigned", "at_least": "4h", "calendar": "office"}),
            _automation("r", {"since": "requester_updated", "at_least": "5h"}),
            _automation("g", {"since": "agent_updated", "at_least": "5h", "calendar": "office"}),
        ],
    }
    database = request.getfixturevalue("postgres_database")
    urls = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path / 'desk.db'}",
        "postgres": f"{database}?schema={fresh_schema()}",
    }
    seen = {}
    for kind, url in urls.items():
        desk, clock = _desk(config, url)
        clock.set(FRIDAY.replace(hour=14))
        ticket = desk.assign(_open(desk), ANA, agent="ana")
        clock.advance(minutes=30)
        desk.reply(ticket, ANA, "Which model?")
        clock.advance(minutes=30)
        desk.requester_reply(ticket, "LX-200")
        steps = []
        for hour in (17, 20, 23):
            clock.set(FRIDAY.replace(hour=hour))
            desk.sweep()
            steps.append(desk.ticket(ticket.id))
        clock.set(NEXT_MONDAY.replace(hour=12))
        desk.sweep()
        other = desk if kind == "memory" else opened(Helpdesk(url, config=config, clock=clock))
        reread = other.ticket(ticket.id)  # read back by another desk on the same store
        seen[kind] = (
            [(_instants(t), t.next_check, t.tags) for t in steps],
            _fired(desk, ticket),
            _instants(reread),
        )
    assert seen["memory"] == seen["sqlite"] == seen["postgres"]
    fired = dict(seen["memory"][1])
    assert fired == {
        "r": FRIDAY.replace(hour=20),  # 15:00 + 5h, calendar time
        "a": NEXT_MONDAY.replace(hour=10),  # 14:00 + 4 business hours
        "g": NEXT_MONDAY.replace(hour=11, minute=30),  # 14:30 + 5 business hours
    }
