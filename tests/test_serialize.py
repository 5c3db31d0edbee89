"""helpkit.serialize: exact round trips, the documented form, SchemaError for bad data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec_reference import duration_text as reference_duration_text
from helpkit import serialize
from helpkit._codec.durations import duration_from_text, duration_text
from helpkit.calendar import BusinessCalendar
from helpkit.errors import SchemaError
from helpkit.events import EVENT_TYPES, CommentAdded, Event, TicketOpened, event_to_dict
from helpkit.lifecycle import replay
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.priority import Priority
from helpkit.sla import Metric, MetricClock, SlaPolicy, SlaStatus, Targets, Threshold, compute_sla
from helpkit.sweep import SweepReport
from helpkit.testing.strategies import (
    comments,
    contacts,
    organizations,
    ticket_histories,
    tickets,
)
from helpkit.tickets import Actor, Comment, Ticket
from test_events import every_event_type
from test_stored_form import _golden, _people, _privacy_events, _sla_events, _ticket

NOW = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
H = timedelta(hours=1)

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


def _exact(value: object) -> None:
    """to_data/from_data and dumps/loads give the value back, through JSON text too."""
    cls = type(value)
    data = serialize.to_data(value)
    assert json.loads(json.dumps(data)) == data  # JSON-safe: only JSON types inside
    assert serialize.from_data(cls, data) == value
    assert serialize.from_data(cls, json.loads(json.dumps(data))) == value
    text = serialize.dumps(value)
    assert text.isascii()
    assert serialize.loads(cls, text) == value
    assert serialize.loads(cls, text.encode()) == value


# ---------------------------------------------------------------- round trips


@st.composite
def _scheduled_tickets(draw: st.DrawFn) -> Ticket:
    ticket = draw(tickets(max_commands=10))
    instants = st.none() | st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    return attrs.evolve(
        ticket,
        sla_policy=draw(st.none() | st.sampled_from(["gold", "Été"])),
        next_deadline=draw(instants),
        next_check=draw(instants),
    )


@settings(max_examples=60, deadline=None)
@given(_scheduled_tickets())
def test_tickets_round_trip_exactly(ticket: Ticket) -> None:
    _exact(ticket)
    back = serialize.from_data(Ticket, serialize.to_data(ticket))
    assert {f.name: getattr(back, f.name) for f in attrs.fields(Ticket)} == {
        f.name: getattr(ticket, f.name) for f in attrs.fields(Ticket)
    }


@settings(max_examples=60, deadline=None)
@given(ticket_histories(max_commands=15))
def test_events_round_trip_exactly_as_events_and_as_their_class(history: list[Event]) -> None:
    for event in history:
        _exact(event)
        data = serialize.to_data(event)
        assert data == event_to_dict(event)
        assert serialize.from_data(Event, data) == event
    assert replay(serialize.loads(Event, serialize.dumps(e)) for e in history) == replay(history)


@settings(max_examples=40, deadline=None)
@given(contacts(), organizations(), comments())
def test_people_and_comments_round_trip_exactly(
    contact: Contact, organization: Organization, comment: Comment
) -> None:
    for value in (contact, organization, comment, comment.author):
        _exact(value)


@settings(max_examples=40, deadline=None)
@given(
    st.builds(
        Agent,
        id=st.sampled_from(["a1", "ana"]),
        name=st.sampled_from(["Ana", "José Ñúñez"]),
        email=st.none() | st.just("ana@example.com"),
        group_ids=st.lists(st.sampled_from(["l1", "l2", "l3"])),
        languages=st.lists(st.sampled_from(["en", "fr", "pt-BR"])),
        active=st.booleans(),
        role=st.sampled_from(["agent", "admin", "light_agent", "triage"]),
        restricted=st.booleans(),
    ),
    st.builds(
        Group,
        id=st.sampled_from(["l1", "g-2"]),
        name=st.sampled_from(["Service desk", "Réseau"]),
        tier=st.none() | st.integers(1, 9),
        description=st.none() | st.just("Specialists"),
    ),
)
def test_agents_and_groups_round_trip_exactly(agent: Agent, group: Group) -> None:
    _exact(agent)
    _exact(group)


_TARGETS = Targets(first_response=H, next_response=2 * H, periodic_update=3 * H, resolution=8 * H)
_POLICY = SlaPolicy(
    "gold", BusinessCalendar.always(), dict.fromkeys(Priority, _TARGETS), warn_at=(0.5, 0.75)
)


@settings(max_examples=40, deadline=None)
@given(
    ticket_histories(min_commands=1, max_commands=12),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)
def test_sla_statuses_round_trip_exactly(history: list[Event], later: timedelta) -> None:
    status = compute_sla(history, _POLICY, history[-1].at + later)
    _exact(status)
    for clock in status.clocks:
        _exact(clock)


@given(st.builds(SweepReport, now=st.datetimes(timezones=st.just(UTC))))
def test_sweep_reports_round_trip_exactly(report: SweepReport) -> None:
    _exact(report)


def test_the_stored_text_is_what_dumps_writes() -> None:
    values: list[object] = [
        _ticket(),
        *every_event_type(),
        *_sla_events(),
        *_people(),
    ]
    assert [serialize.dumps(v) for v in values] == _golden()


# ---------------------------------------------------------------- the form


def test_the_form_of_an_sla_status() -> None:
    clock = MetricClock(
        metric=Metric.RESOLUTION,
        cycle=0,
        started_at=NOW,
        target=8 * H,
        elapsed=timedelta(hours=9, minutes=30),
        remaining=timedelta(minutes=-90),
        running=True,
        paused=False,
        due=NOW + 8 * H,
        achieved_at=None,
        stopped_at=None,
        breached_at=NOW + 8 * H,
        warnings=(Threshold(0.75, NOW + 6 * H),),
    )
    assert serialize.to_data(SlaStatus("gold", NOW, (clock,))) == {
        "policy": "gold",
        "now": "2026-03-02T09:00:00.123456+00:00",
        "clocks": [
            {
                "metric": "resolution",
                "cycle": 0,
                "started_at": "2026-03-02T09:00:00.123456+00:00",
                "target": "PT8H",
                "elapsed": "PT9H30M",
                "remaining": "-PT1H30M",
                "running": True,
                "paused": False,
                "due": "2026-03-02T17:00:00.123456+00:00",
                "achieved_at": None,
                "stopped_at": None,
                "breached_at": "2026-03-02T17:00:00.123456+00:00",
                "warnings": [{"fraction": 0.75, "at": "2026-03-02T15:00:00.123456+00:00"}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(hours=4), "PT4H"),
        (timedelta(days=2, minutes=5), "PT48H5M"),
        (timedelta(seconds=90.5), "PT1M30.5S"),
        (timedelta(microseconds=1), "PT0.000001S"),
        (timedelta(hours=-1, seconds=-1), "-PT1H1S"),
        (timedelta(microseconds=-1), "-PT0.000001S"),
    ],
)
def test_durations_are_iso_8601_hours_minutes_seconds(value: timedelta, text: str) -> None:
    assert duration_text(value) == text
    assert duration_from_text(text) == value
    assert serialize.to_data(value) == text
    assert serialize.from_data(timedelta, text) == value


@given(st.timedeltas())
def test_every_duration_round_trips_exactly(value: timedelta) -> None:
    text = duration_text(value)
    assert text == reference_duration_text(value)
    assert duration_from_text(text) == value


def test_hand_written_durations_with_days_are_read() -> None:
    assert duration_from_text("P2D") == timedelta(days=2)
    assert duration_from_text("P1DT2H") == timedelta(hours=26)
    assert duration_from_text("-P1DT0.5S") == -timedelta(days=1, seconds=0.5)


@pytest.mark.parametrize(
    "bad",
    ["", "P", "PT", "P1DT", "PT1", "PT1.S", "PT0.1234567S", "P1H", "PT1S1M", "pt1h", "PT1h",
     "PT\u0661H", " PT1H", "PT99999999999999999999H", "+PT1H", 60, None, [1, 0, 0]],
)  # fmt: skip
def test_bad_durations_are_schema_errors(bad: object) -> None:
    with pytest.raises(SchemaError):
        duration_from_text(bad)
    with pytest.raises(SchemaError):
        serialize.from_data(timedelta, bad)


# ---------------------------------------------------------------- errors


def _forms() -> list[tuple[type, dict[str, Any]]]:
    samples: list[object] = [
        _ticket(),
        *every_event_type(),
        *_sla_events(),
        *_privacy_events(),
        *_people(),
    ]
    return [(type(v), serialize.to_data(v)) for v in samples]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_forms()), st.data())
def test_bad_data_raises_schema_error_and_nothing_else(
    form: tuple[type, dict[str, Any]], data: st.DataObject
) -> None:
    cls, good = form
    key = data.draw(st.sampled_from(sorted(good)))
    broken = dict(good)
    if data.draw(st.booleans()):
        del broken[key]
    else:
        broken[key] = data.draw(_json)
    for target in (cls, Event) if issubclass(cls, Event) else (cls,):
        try:
            value = serialize.from_data(target, broken)
        except SchemaError:
            continue
        assert isinstance(value, cls)


@pytest.mark.parametrize("cls", [Ticket, Contact, Event, TicketOpened, SlaStatus, timedelta])
@pytest.mark.parametrize("bad", [None, 5, "x", [], [{}], True])
def test_data_of_the_wrong_shape_is_a_schema_error(cls: type, bad: object) -> None:
    with pytest.raises(SchemaError):
        serialize.from_data(cls, bad)
    with pytest.raises(SchemaError):
        serialize.loads(cls, json.dumps(bad))


def test_schema_errors_name_what_failed_and_keep_the_cause() -> None:
    data = serialize.to_data(_ticket())
    with pytest.raises(SchemaError, match="cannot read Ticket: Ticket misses field 'subject'"):
        serialize.from_data(Ticket, {k: v for k, v in data.items() if k != "subject"})
    with pytest.raises(SchemaError, match=r"cannot read Ticket: .*subject") as caught:
        serialize.from_data(Ticket, {**data, "subject": "   "})
    assert type(caught.value.__cause__).__name__ == "ValidationError"
    with pytest.raises(SchemaError, match="not JSON text"):
        serialize.loads(Ticket, "{")
    with pytest.raises(SchemaError, match="unknown event type 'nope'"):
        serialize.from_data(Event, {"type": "nope"})


def test_an_event_class_reads_only_its_own_events() -> None:
    opened, added = every_event_type()[:2]
    assert isinstance(added, CommentAdded)
    data = serialize.to_data(opened)
    assert serialize.from_data(TicketOpened, data) == opened
    with pytest.raises(SchemaError, match="expected a CommentAdded event, found a 'ticket_opened'"):
        serialize.from_data(CommentAdded, data)
    unversioned = {k: v for k, v in serialize.to_data(added).items() if k != "v"}
    assert serialize.from_data(Event, unversioned) == added  # no "v": version 1


def test_every_event_type_is_covered() -> None:
    values = [*every_event_type(), *_sla_events(), *_privacy_events()]
    assert {type(e) for e in values} == set(EVENT_TYPES.values())


def test_values_without_a_form_are_refused_with_type_error() -> None:
    for value in ([_ticket()], object(), {1, 2}):
        with pytest.raises(TypeError):
            serialize.to_data(value)
    with pytest.raises(TypeError):
        serialize.from_data(object, {})
    assert serialize.to_data(Actor.agent("ana")) == {"kind": "agent", "id": "ana"}
