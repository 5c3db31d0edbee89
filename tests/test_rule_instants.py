"""The instants rules count from beyond creation, update and status (issue #14): ``assigned``,
``unassigned``, ``requester_updated``, ``agent_updated`` and ``assignee_updated``.

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
from collections.abc import Callable
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


def test_unassigned_is_when_the_ticket_last_lost_its_assignee() -> None:
    desk, clock = _desk({})
    ticket = _open(desk)  # opened without an assignee: from its creation
    assert ticket.unassigned_at == Anchor.UNASSIGNED.of(ticket) == MONDAY
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, group="l1")  # a group, still nobody
    assert (ticket.group_id, ticket.assignee_id, ticket.unassigned_at) == ("l1", None, MONDAY)
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent="ana")
    assert ticket.unassigned_at is None and Anchor.UNASSIGNED.of(ticket) is None
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent="bo", group="l1")  # another agent: still assigned
    assert ticket.unassigned_at is None
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent=None)
    lost = MONDAY + timedelta(hours=4)
    assert ticket.unassigned_at == Anchor.UNASSIGNED.of(ticket) == lost
    clock.advance(hours=1)
    ticket = desk.transfer(ticket, ANA, group="l2", reason="Hardware")  # nobody in l2 either
    ticket = desk.reply(ticket, ANA, "Passed to the experts")
    ticket = desk.set_status(ticket, ANA, "pending")
    assert (ticket.group_id, ticket.assignee_id, ticket.unassigned_at) == ("l2", None, lost)
    # A transfer that leaves it without an assignee is when it became unassigned.
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent="ana")
    clock.advance(hours=1)
    ticket = desk.transfer(ticket, ANA, group="l1")
    assert ticket.unassigned_at == MONDAY + timedelta(hours=7)
    # Opened with an assignee: none.
    born_assigned = _open(desk, assignee="ana")
    assert born_assigned.unassigned_at is None and Anchor.UNASSIGNED.of(born_assigned) is None


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
    # ... and unassigned: an escalation leaving it without an assignee is when it lost it;
    # escalating a ticket that had none already keeps the instant.
    assert escalated(ticket, None).unassigned_at == later
    assert escalated(ticket, "bo").unassigned_at is None
    nobody = desk.assign(_open(desk), ANA, group="l1")
    assert escalated(nobody, None).unassigned_at == nobody.unassigned_at == MONDAY
    assert escalated(nobody, "bo").unassigned_at is None


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


def test_assignee_updated_counts_the_current_assignees_public_replies_since_they_got_it() -> None:
    desk, clock = _desk({})
    ticket = _open(desk)
    assert Anchor.ASSIGNEE_UPDATED.of(ticket) is None  # unassigned
    clock.advance(hours=1)
    ticket = desk.reply(ticket, ANA, "Which model?")  # not (yet) the assignee's
    assert ticket.agent_updated_at == MONDAY + timedelta(hours=1)
    ticket = desk.assign(ticket, BO, agent="bo")
    assert ticket.assignee_updated_at is None and Anchor.ASSIGNEE_UPDATED.of(ticket) is None
    clock.advance(hours=1)
    ticket = desk.reply(ticket, ANA, "Bo takes it from here")  # another agent's reply
    ticket = desk.note(ticket, BO, "Ordered the part")  # the assignee's note
    assert ticket.assignee_updated_at is None
    clock.advance(hours=1)
    ticket = desk.reply(ticket, BO, "The part is on its way")
    assert Anchor.ASSIGNEE_UPDATED.of(ticket) == MONDAY + timedelta(hours=3)
    clock.advance(hours=1)
    ticket = desk.assign(ticket, BO, group="l1", agent="bo")  # another group, same assignee
    assert ticket.assignee_updated_at == MONDAY + timedelta(hours=3)
    ticket = desk.assign(ticket, ANA, agent="ana")  # to another agent: cleared
    assert ticket.assignee_updated_at is None
    assert ticket.agent_updated_at == MONDAY + timedelta(hours=3)
    assert replay(desk.history(ticket)) == ticket


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


def test_unassigned_for_two_business_hours_notifies_the_group_on_monday_at_ten() -> None:
    # The issue's own example, counted from when the ticket lost its assignee (not from its
    # creation, a week earlier, which would have been due long ago).
    config = {
        "calendars": OFFICE,
        "automations": [
            {
                "name": "unassigned-2h",
                "when": {
                    "all": [
                        {"field": "category", "in": ["new", "open"]},
                        {"since": "unassigned", "at_least": "2h", "calendar": "office"},
                    ]
                },
                "actions": [
                    {
                        "notify": ["group"],
                        "subject": "Unassigned for 2 hours: {{ticket.reference}}",
                        "body": "{{ticket.subject}}",
                    }
                ],
            }
        ],
    }
    desk, clock = _desk(config)
    ticket = desk.assign(_open(desk), ANA, agent="ana", group="l1")  # Monday, a week before
    assert ticket.next_check is None  # assigned: no instant, nothing due
    clock.set(FRIDAY.replace(hour=16))
    ticket = desk.assign(ticket, ANA, agent=None)
    due = NEXT_MONDAY.replace(hour=10)  # Friday 16-17, Monday 9-10
    assert ticket.next_check == due
    # Moved to another group, still nobody's, and talked to: the due instant stays.
    clock.set(FRIDAY.replace(hour=16, minute=30))
    ticket = desk.transfer(ticket, ANA, group="l2")
    ticket = desk.requester_reply(ticket, "Anyone?")
    assert ticket.next_check == due
    # Opened unassigned on Friday at 16:30: from its creation. Taken before it is due, then
    # dropped again on Monday at 9:30: from then.
    other = _open(desk)
    assert other.next_check == NEXT_MONDAY.replace(hour=10, minute=30)
    clock.set(NEXT_MONDAY.replace(hour=9))
    other = desk.assign(other, ANA, agent="bo")
    assert other.next_check is None
    clock.set(NEXT_MONDAY.replace(hour=9, minute=30))
    other = desk.assign(other, ANA, agent=None)
    again = NEXT_MONDAY.replace(hour=11, minute=30)
    assert other.next_check == again

    assert _sweep_at(desk, clock, due - SECOND) == 0
    assert _sweep_at(desk, clock, due) == 1
    assert _fired(desk, ticket) == [("unassigned-2h", due)]
    desk.deliver_pending()
    (told,) = [m for m in desk.channels["email"].messages if m.kind == "notification"]  # type: ignore[attr-defined]
    assert told.subject == f"Unassigned for 2 hours: #{ticket.number}"
    assert [r.address for r in told.to] == ["ana@help.example"]  # l2's agents
    assert _sweep_at(desk, clock, again - SECOND) == 0
    assert _sweep_at(desk, clock, again) == 1
    assert _fired(desk, other) == [("unassigned-2h", again)]
    assert _fired(desk, ticket) == [("unassigned-2h", due)]
    assert _sweep_at(desk, clock, again + timedelta(days=3)) == 0  # once per due instant


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
    config = {"automations": [_automation("x", {"since": "assignee_replied", "at_least": "1h"})]}
    with pytest.raises(ConfigError) as error:
        Helpdesk(config=config)
    message = str(error.value)
    assert "'assignee_replied'" in message
    assert (
        "(known: created, updated, status, solved, closed, assigned, unassigned, "
        "requester_updated, agent_updated, assignee_updated)"
    ) in message


# ------------------------------------------------------------------ the fold, a property


Instants = tuple[
    datetime | None, datetime | None, datetime | None, datetime | None, datetime | None
]


def rule_instants(events: list[Event]) -> Instants:
    """The five instants (assigned, requester_updated, agent_updated, unassigned,
    assignee_updated) as their definitions read the whole history (not the fold)."""
    opening = events[0]
    assert isinstance(opening, TicketOpened)
    requester = Actor.contact(opening.requester_id)
    written: list[tuple[Actor, datetime, int]] = []  # author, instant, index of the event
    assignments: list[tuple[str | None, datetime, int]] = [(opening.assignee_id, opening.at, 0)]
    for index, event in enumerate(events):
        if isinstance(event, CommentAdded) and event.comment.public:
            written.append((event.comment.author, event.at, index))
        elif isinstance(event, MergeReceived):
            written += [
                (c.author, min(c.created_at, event.at), index) for c in event.comments if c.public
            ]
        elif isinstance(event, Assigned | Escalated):
            assignments.append((event.assignee_id, event.at, index))
    # The first of the trailing run of assignments to the current assignee, or to nobody.
    assignee = assignments[-1][0]
    run = len(assignments)
    while run > 0 and assignments[run - 1][0] == assignee:
        run -= 1
    since, given = assignments[run][1], assignments[run][2]
    assigned, unassigned = (None, since) if assignee is None else (since, None)
    by_requester = [at for who, at, _ in written if who == requester]
    by_agents = [at for who, at, _ in written if who.kind is ActorKind.AGENT]
    # The current assignee's, in events after the one that gave them the ticket.
    by_assignee = [
        at
        for who, at, index in written
        if index > given and who.kind is ActorKind.AGENT and who.id == assignee
    ]
    return (
        assigned,
        max([opening.at, *by_requester]),
        max(by_agents, default=None),
        unassigned,
        None if assignee is None else max(by_assignee, default=None),
    )


def _instants(ticket: Ticket) -> Instants:
    return (
        ticket.assigned_at,
        ticket.requester_updated_at,
        ticket.agent_updated_at,
        ticket.unassigned_at,
        ticket.assignee_updated_at,
    )


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


_NEW_KEYS = (
    "assigned_at",
    "requester_updated_at",
    "agent_updated_at",
    "unassigned_at",
    "assignee_updated_at",
)


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


def _stored_before(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, Callable[[], None]]:
    """A real store's URL, and what takes the instants out of the tickets it keeps (as
    helpkit stored them before it kept them)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'desk.db'}", lambda: _strip_sqlite(tmp_path / "desk.db")
    schema = fresh_schema()
    database = request.getfixturevalue("postgres_database")
    return f"{database}?schema={schema}", lambda: _strip_postgres(database, schema)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_ticket_stored_before_the_instants_loads_and_rules_count_late_not_early(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, strip = _stored_before(kind, tmp_path, request)
    desk, clock = _desk({}, url)
    ticket = desk.assign(_open(desk), ANA, agent="ana")
    clock.advance(hours=1)
    ticket = desk.reply(ticket, ANA, "Which model?")
    clock.advance(hours=1)
    ticket = desk.note(ticket, ANA, "Waiting")
    hour = MONDAY + timedelta(hours=1)
    assert _instants(ticket) == (MONDAY, MONDAY, hour, None, hour)
    desk.shutdown()
    strip()
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
        ticket,
        assigned_at=None,
        requester_updated_at=None,
        agent_updated_at=None,
        assignee_updated_at=None,
    )
    # Counted from its last change (the latest the instant can have been); no agent reply
    # known until the next one.
    late = MONDAY + timedelta(hours=2)
    assert Anchor.ASSIGNED.of(old) == Anchor.REQUESTER_UPDATED.of(old) == late
    assert Anchor.AGENT_UPDATED.of(old) is None
    assert Anchor.ASSIGNEE_UPDATED.of(old) is None
    assert Anchor.UNASSIGNED.of(old) is None  # it has an assignee
    # The history still folds to the instants.
    assert _instants(replay(again.history(ticket.id))) == _instants(ticket)
    # Its next event pins the unknown instants to that last change, so the automation due
    # at late + 2h fires once: its own change does not move the instant it counts from.
    clock.set(late + timedelta(hours=3))
    newer = again.requester_reply(old, "The LX-200")
    assert _instants(newer) == (late, late + timedelta(hours=3), None, None, None)
    clock.advance(hours=1)
    newer = again.reply(newer, ANA, "Thanks")
    assert _instants(newer) == (
        late,
        late + timedelta(hours=3),
        late + timedelta(hours=4),
        None,
        late + timedelta(hours=4),
    )
    for _ in range(3):
        clock.advance(hours=3)
        again.sweep()
        newer = again.note(newer, ANA, "Waiting")
    assert [at for _, at in _fired(again, newer)] == [late + timedelta(hours=3)]
    assert again.ticket(ticket.id) == newer


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_unassigned_ticket_stored_before_counts_from_its_last_change_and_fires_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url, strip = _stored_before(kind, tmp_path, request)
    desk, clock = _desk({}, url)
    ticket = desk.assign(_open(desk), ANA, agent="ana")
    clock.advance(hours=1)
    ticket = desk.assign(ticket, ANA, agent=None)
    clock.advance(hours=1)
    ticket = desk.note(ticket, ANA, "Who takes it?")
    assert _instants(ticket) == (None, MONDAY, None, MONDAY + timedelta(hours=1), None)
    desk.shutdown()
    strip()
    config = {"automations": [_automation("unclaimed", {"since": "unassigned", "at_least": "2h"})]}
    again = opened(Helpdesk(url, config=config, clock=clock))
    old = again.ticket(ticket.id)
    assert old == attrs.evolve(ticket, requester_updated_at=None, unassigned_at=None)
    # Counted from its last change, the latest it can have lost its assignee.
    late = MONDAY + timedelta(hours=2)
    assert Anchor.UNASSIGNED.of(old) == late
    assert Anchor.ASSIGNED.of(old) is None
    assert _instants(replay(again.history(ticket.id))) == _instants(ticket)
    # Its next event pins it there: the automation fires once, its own change (a tag) and
    # later notes moving nothing.
    clock.set(late + timedelta(hours=1))
    newer = again.requester_reply(old, "Hello?")
    assert newer.unassigned_at == late
    assert newer.next_check == late + timedelta(hours=2)
    for _ in range(3):
        clock.advance(hours=3)
        again.sweep()
        newer = again.note(newer, ANA, "Still nobody")
    assert _fired(again, newer) == [("unclaimed", late + timedelta(hours=2))]
    assert newer.unassigned_at == late
    # Assigning it clears the instant; unassigning it again starts from then.
    newer = again.assign(newer, ANA, agent="bo")
    assert (newer.unassigned_at, Anchor.UNASSIGNED.of(newer)) == (None, None)
    newer = again.assign(newer, ANA, agent=None)
    assert newer.unassigned_at == clock.now()


def test_every_store_keeps_the_instants_and_the_due_instants_alike(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    config = {
        "calendars": OFFICE,
        "automations": [
            # Due first, listed first (a later-listed one due earlier is dated at the change
            # before it, as events never go back).
            _automation("e", {"since": "assignee_updated", "at_least": "3h", "calendar": "office"}),
            _automation("a", {"since": "assigned", "at_least": "4h", "calendar": "office"}),
            _automation("r", {"since": "requester_updated", "at_least": "5h"}),
            _automation("g", {"since": "agent_updated", "at_least": "5h", "calendar": "office"}),
            _automation("u", {"since": "unassigned", "at_least": "2h", "calendar": "office"}),
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
        dropped = desk.assign(_open(desk), ANA, agent="bo")
        clock.advance(minutes=30)
        desk.reply(ticket, ANA, "Which model?")
        clock.advance(minutes=30)
        desk.requester_reply(ticket, "LX-200")
        clock.advance(hours=1)
        desk.assign(dropped, ANA, agent=None)  # bo lets it go at 16:00
        steps = []
        for hour in (17, 20, 23):
            clock.set(FRIDAY.replace(hour=hour))
            desk.sweep()
            steps += [desk.ticket(ticket.id), desk.ticket(dropped.id)]
        clock.set(NEXT_MONDAY.replace(hour=12))
        desk.sweep()
        other = desk if kind == "memory" else opened(Helpdesk(url, config=config, clock=clock))
        rereads = [other.ticket(t.id) for t in (ticket, dropped)]  # another desk, same store
        seen[kind] = (
            [(_instants(t), t.next_check, t.tags) for t in steps],
            _fired(desk, ticket),
            _fired(desk, dropped),
            [_instants(t) for t in rereads],
        )
    assert seen["memory"] == seen["sqlite"] == seen["postgres"]
    assert dict(seen["memory"][1]) == {
        "r": FRIDAY.replace(hour=20),  # 15:00 + 5h, calendar time
        "a": NEXT_MONDAY.replace(hour=10),  # 14:00 + 4 business hours
        "g": NEXT_MONDAY.replace(hour=11, minute=30),  # 14:30 + 5 business hours
        "e": NEXT_MONDAY.replace(hour=9, minute=30),  # ana's 14:30 + 3 business hours
    }
    assert dict(seen["memory"][2]) == {
        "r": FRIDAY.replace(hour=19),  # opened at 14:00 + 5h
        "u": NEXT_MONDAY.replace(hour=10),  # unassigned at 16:00 + 2 business hours
    }
    assert seen["memory"][3][1] == (
        None,
        FRIDAY.replace(hour=14),
        None,
        FRIDAY.replace(hour=16),
        None,
    )
