"""The condition language (helpkit.conditions): what it refuses when loaded, what it matches,
and properties: the plain-data form reads back to an equal condition, the compiled tests agree
with a plain interpreter of that form, and a time condition turns true exactly at its due
instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import lifecycle
from helpkit._records import replace
from helpkit.calendar import BusinessCalendar
from helpkit.conditions import (
    ALWAYS,
    AllOf,
    AnyOf,
    Compare,
    NoneOf,
    Subject,
    Vocabulary,
    first_match,
    parse,
)
from helpkit.errors import ValidationError
from helpkit.fields import CustomField, FieldSet
from helpkit.people import Contact, Organization
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Ticket

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
FIELDS = FieldSet(
    [
        CustomField(name="product", kind="choice", choices=("mobile", "web")),
        CustomField(name="seats", kind="integer"),
        CustomField(name="areas", kind="multi_choice", choices=("billing", "login")),
    ]
)
OFFICE = BusinessCalendar.from_dict({"timezone": "UTC", "hours": "mon-fri 09:00-17:00"})
VOCABULARY = Vocabulary(DEFAULT_WORKFLOW, FIELDS, {"office": OFFICE})
COMMANDS = VOCABULARY.for_commands()


def _ticket(**changes: Any) -> Ticket:
    opened = lifecycle.open_ticket(
        ticket_id="t-1",
        number=7,
        at=NOW,
        actor=Actor.contact("c-1"),
        subject="Printer on fire",
        requester_id="c-1",
        organization_id="o-1",
        impact=Impact.HIGH,
        urgency=Urgency.MEDIUM,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="email",
        tags=["printer", "urgent"],
        custom_fields={"product": "web", "seats": 12, "areas": ("login",)},
        group_id="l1",
    )
    ticket = opened.ticket
    return replace(ticket, **changes) if changes else ticket


def _subject(ticket: Ticket | None = None, **kw: Any) -> Subject:
    requester = Contact(
        id="c-1",
        name="Ana",
        emails=["ana@Example.org"],
        language="fr",
        vip=True,
        created_at=NOW,
        updated_at=NOW,
    )
    organization = Organization(
        id="o-1",
        name="Example",
        domains=["example.org"],
        region="EU",
        created_at=NOW,
        updated_at=NOW,
    )
    return Subject(
        ticket=ticket or _ticket(),
        now=kw.pop("now", NOW),
        requester=kw.pop("requester", requester),
        organization=kw.pop("organization", organization),
        **kw,
    )


# ---------------------------------------------------------------- refused when loaded


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"field": "priorty", "is": 1}, "unknown field 'priorty'"),
        ({"field": "priority", "equals": 1}, "takes no operator 'equals'"),
        ({"field": "priority", "is": 1, "lt": 3}, "exactly one operator"),
        ({"field": "status", "is": "opened"}, "unknown value 'opened'"),
        ({"field": "fields.colour", "is": "red"}, "unknown field 'fields.colour'"),
        ({"field": "fields.product", "is": "desktop"}, "unknown value 'desktop'"),
        ({"field": "fields.seats", "gt": "ten"}, "expected a number"),
        ({"field": "tags", "has_any": []}, "at least one value"),
        ({"field": "tags", "has_any": "urgent"}, "takes a list"),
        ({"field": "vip", "is": "yes"}, "expected true or false"),
        ({"field": "event", "has_any": ["ticket_opened"]}, "only triggers"),
        ({"field": "status", "changed_to": "open"}, "for triggers only"),
        ({"since": "created", "at_least": "4h", "calendar": "support"}, "unknown calendar"),
        ({"since": "born", "at_least": "4h"}, "unknown instant 'born'"),
        ({"since": "created"}, "needs at_least and/or at_most"),
        ({"since": "created", "at_least": "4x"}, "bad duration"),
        ({"since": "created", "at_least": "4h", "at_most": "1h"}, "longer than at_least"),
        ({"any": []}, "at least one condition"),
        ({"all": [{"field": "vip", "is": True}], "any": []}, "stands alone"),
        ({"all": [{"field": "vip", "is": True}, {"field": "nope", "is": 1}]}, "all[1]: unknown"),
        ({"priority": 1}, "needs 'field'"),
        ("priority = 1", "a table or a list"),
    ],
)
def test_mistakes_are_refused_naming_them(data: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(data, VOCABULARY)


def test_commands_vocabulary_takes_the_command_fields() -> None:
    condition = COMMANDS.parse({"field": "event", "has_any": ["ticket_opened"]})
    assert "command" in condition.needs


def test_deep_nesting_is_refused() -> None:
    data: object = {"field": "vip", "is": True}
    for _ in range(40):
        data = {"not": data}
    with pytest.raises(ValidationError, match="nested more than"):
        parse(data, VOCABULARY)


# ---------------------------------------------------------------- what matches


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"field": "priority", "le": 2}, True),  # high x medium = P2
        ({"field": "priority", "lt": 2}, False),
        ({"field": "priority", "is": "P2"}, True),
        ({"field": "impact", "is": "H"}, True),
        ({"field": "status", "in": ["new", "open"]}, True),
        ({"field": "category", "is": "new"}, True),
        ({"field": "tags", "has_all": ["urgent", "printer"]}, True),
        ({"field": "tags", "has_none": ["Urgent"]}, False),
        ({"field": "subject", "contains": "ON FIRE"}, True),
        ({"field": "subject", "starts_with": "fire"}, False),
        ({"field": "assignee", "empty": True}, True),
        ({"field": "group", "is": "l1"}, True),
        ({"field": "requester.vip", "is": True}, True),
        ({"field": "requester.domain", "is": "EXAMPLE.org"}, True),
        ({"field": "requester.language", "in": ["fr", "de"]}, True),
        ({"field": "organization.region", "is": "EU"}, True),
        ({"field": "organization.domains", "has_any": ["example.org"]}, True),
        ({"field": "vip", "is": True}, True),
        ({"field": "fields.product", "is": "web"}, True),
        ({"field": "fields.seats", "ge": 12}, True),
        ({"field": "fields.areas", "has_any": ["billing"]}, False),
        ({"not": {"field": "channel", "is": "email"}}, False),
        ({"any": [{"field": "channel", "is": "chat"}, {"field": "number", "is": 7}]}, True),
        ([], True),
    ],
)
def test_examples(data: object, expected: bool) -> None:
    assert parse(data, VOCABULARY).matches(_subject()) is expected


def test_missing_requester_reads_as_empty() -> None:
    subject = _subject(requester=None, organization=None)
    assert parse({"field": "requester.language", "empty": True}, VOCABULARY).matches(subject)
    assert not parse({"field": "vip", "is": True}, VOCABULARY).matches(subject)


def test_changes_compare_the_ticket_before_the_command() -> None:
    before = _ticket()
    moved = lifecycle.change_status(
        before, "pending", at=NOW, actor=Actor.agent("ana"), workflow=DEFAULT_WORKFLOW
    )
    tagged = lifecycle.change_tags(moved.ticket, at=NOW, actor=Actor.agent("ana"), add=["vip"])
    outcome = lifecycle.chain([moved, tagged])
    subject = _subject(outcome.ticket, before=outcome.before, events=outcome.events)
    assert COMMANDS.parse({"field": "status", "changed_to": "pending"}).matches(subject)
    assert COMMANDS.parse({"field": "status", "changed_from": "new"}).matches(subject)
    assert not COMMANDS.parse({"field": "priority", "changed": True}).matches(subject)
    assert COMMANDS.parse({"field": "tags", "added": ["vip"]}).matches(subject)
    assert not COMMANDS.parse({"field": "tags", "removed": ["vip"]}).matches(subject)
    assert COMMANDS.parse({"field": "event", "has_all": ["status_changed"]}).matches(subject)
    assert COMMANDS.parse({"field": "actor", "is": "agent:ana"}).matches(subject)
    # Without a command nothing changed.
    assert not COMMANDS.parse({"field": "status", "changed": True}).matches(_subject())


def test_an_opening_command_changes_every_field_it_sets() -> None:
    opened = lifecycle.open_ticket(
        ticket_id="t-9",
        number=0,
        at=NOW,
        actor=Actor.contact("c-1"),
        subject="Hi",
        requester_id="c-1",
        organization_id=None,
        impact=Impact.LOW,
        urgency=Urgency.LOW,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="web",
    )
    subject = _subject(opened.ticket, before=None, events=opened.events)
    assert COMMANDS.parse({"field": "status", "changed_to": "new"}).matches(subject)
    assert not COMMANDS.parse({"field": "assignee", "changed": True}).matches(subject)
    assert not COMMANDS.parse({"field": "status", "changed_from": "new"}).matches(subject)


def test_since_in_business_hours() -> None:
    # Created Friday 16:00: 4 business hours later is Monday 12:00.
    friday = datetime(2026, 2, 27, 16, 0, tzinfo=UTC)
    ticket = _ticket(created_at=friday, updated_at=friday)
    condition = parse({"since": "created", "at_least": "4h", "calendar": "office"}, VOCABULARY)
    due = condition.due(_subject(ticket))
    assert due == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert not condition.matches(_subject(ticket, now=due - timedelta(seconds=1)))
    assert condition.matches(_subject(ticket, now=due))
    calendar = parse({"since": "created", "at_least": "4h"}, VOCABULARY)
    assert calendar.due(_subject(ticket)) == friday + timedelta(hours=4)


def test_since_an_instant_the_ticket_lacks_never_matches() -> None:
    condition = parse({"since": "solved", "at_least": "1h"}, VOCABULARY)
    assert not condition.matches(_subject(now=NOW + timedelta(days=30)))
    assert condition.due(_subject()) is None


# ---------------------------------------------------------------- properties

_TESTS = st.sampled_from(
    [
        {"field": "priority", "le": 2},
        {"field": "priority", "gt": 3},
        {"field": "tags", "has_any": ["urgent"]},
        {"field": "tags", "has_none": ["printer"]},
        {"field": "status", "is": "new"},
        {"field": "channel", "in": ["web", "chat"]},
        {"field": "vip", "is": True},
        {"field": "fields.seats", "lt": 10},
        {"field": "assignee", "empty": False},
        {"field": "subject", "contains": "FIRE"},
        {"field": "subject", "starts_with": "print"},
        {"since": "created", "at_least": "2h"},
        {"since": "updated", "at_least": "1h", "at_most": "3h", "calendar": "office"},
    ]
)
_TREES = st.recursive(
    _TESTS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: {"all": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    ),
    max_leaves=8,
)


@st.composite
def _subjects(draw: st.DrawFn) -> Subject:
    ticket = _ticket(
        tags=frozenset(draw(st.sets(st.sampled_from(["urgent", "printer", "x"])))),
        channel=draw(st.sampled_from(["web", "email", "chat"])),
        custom_fields={"seats": draw(st.integers(0, 20))},
        assignee_id=draw(st.sampled_from([None, "ana"])),
        subject=draw(st.sampled_from(["Printer on fire", "FIRE!", "printer", "Help"])),
    )
    vip = draw(st.booleans())
    subject = _subject(ticket, now=NOW + timedelta(minutes=draw(st.integers(0, 5000))))
    requester = subject.requester
    assert requester is not None
    return _subject(
        ticket,
        now=subject.now,
        requester=replace(requester, vip=vip),
        organization=None,
    )


def _interpret(data: Any, subject: Subject) -> bool:
    """A plain interpreter of the plain-data form: the reference for the compiled tests."""
    if isinstance(data, list):
        return all(_interpret(item, subject) for item in data)
    if "all" in data:
        return all(_interpret(item, subject) for item in data["all"])
    if "any" in data:
        return any(_interpret(item, subject) for item in data["any"])
    if "not" in data:
        items = data["not"] if isinstance(data["not"], list) else [data["not"]]
        return not any(_interpret(item, subject) for item in items)
    ticket = subject.ticket
    if "since" in data:
        start = ticket.created_at if data["since"] == "created" else ticket.updated_at
        if "calendar" in data:
            elapsed = OFFICE.elapsed(start, subject.now) if subject.now > start else timedelta(0)
        else:
            elapsed = max(subject.now - start, timedelta(0))
        low = _seconds(data.get("at_least"))
        high = _seconds(data.get("at_most"))
        return (low is None or elapsed >= low) and (high is None or elapsed < high)
    field = data["field"]
    values: dict[str, Any] = {
        "priority": int(ticket.priority),
        "tags": ticket.tags,
        "status": ticket.status,
        "channel": ticket.channel,
        "vip": bool(subject.requester and subject.requester.vip),
        "fields.seats": ticket.custom_fields.get("seats"),
        "assignee": ticket.assignee_id,
        "subject": ticket.subject,
    }
    value: Any = values[field]
    expected: Any
    (operator, expected), *_ = ((k, v) for k, v in data.items() if k != "field")
    if expected == "P2":
        expected = 2
    checks: dict[str, Callable[[], bool]] = {
        "le": lambda: value is not None and value <= expected,
        "gt": lambda: value is not None and value > expected,
        "lt": lambda: value is not None and value < expected,
        "is": lambda: value == expected,
        "in": lambda: value in expected,
        "has_any": lambda: bool(set(expected) & value),
        "has_none": lambda: not set(expected) & value,
        "empty": lambda: (value is None) is expected,
        "contains": lambda: expected.casefold() in value.casefold(),
        "starts_with": lambda: value.casefold().startswith(expected.casefold()),
    }
    return checks[operator]()


def _seconds(text: str | None) -> timedelta | None:
    if text is None:
        return None
    if text.endswith("s"):
        return timedelta(seconds=int(text[:-1]))
    return timedelta(hours=int(text[:-1]))


@settings(max_examples=300, deadline=None)
@given(_TREES, _subjects())
def test_compiled_conditions_agree_with_the_plain_form(data: Any, subject: Subject) -> None:
    condition = parse(data, VOCABULARY)
    assert condition.matches(subject) is _interpret(data, subject)
    assert condition.matches(subject) is _interpret(condition.to_data(), subject)
    assert bool(condition.compiled()(subject)) is condition.matches(subject)


@settings(max_examples=200, deadline=None)
@given(_TREES)
def test_the_plain_form_reads_back_to_an_equal_condition(data: Any) -> None:
    condition = parse(data, VOCABULARY)
    again = parse(condition.to_data(), VOCABULARY)
    assert again == condition
    assert again.needs == condition.needs


@settings(max_examples=200, deadline=None)
@given(_TREES, _subjects())
def test_combinators_follow_boolean_algebra(data: Any, subject: Subject) -> None:
    condition = parse(data, VOCABULARY)
    result = condition.matches(subject)
    assert NoneOf((condition,)).matches(subject) is not result
    assert AllOf((condition, ALWAYS)).matches(subject) is result
    assert AnyOf((condition, NoneOf((ALWAYS,)))).matches(subject) is result


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 60 * 40),
    st.integers(0, 60 * 24 * 9),
    st.booleans(),
)
def test_a_time_condition_turns_true_at_its_due_instant(
    minutes: int, offset: int, business: bool
) -> None:
    created = NOW + timedelta(minutes=offset)
    ticket = _ticket(created_at=created, updated_at=created)
    data: dict[str, object] = {"since": "created", "at_least": f"{minutes}m"}
    if business:
        data["calendar"] = "office"
    condition = parse(data, VOCABULARY)
    due = condition.due(_subject(ticket))
    assert due is not None
    assert condition.matches(_subject(ticket, now=due))
    assert not condition.matches(_subject(ticket, now=due - timedelta(seconds=1)))


def test_a_test_value_is_checked_once() -> None:
    condition = parse({"field": "tags", "has_any": ["Needs Review"]}, VOCABULARY)
    assert isinstance(condition, Compare)
    assert condition.value == frozenset({"needs_review"})


_CHANGE_TESTS = st.sampled_from(
    [
        {"field": "status", "changed": True},
        {"field": "status", "changed": False},
        {"field": "status", "changed_to": "pending"},
        {"field": "status", "changed_from": "new"},
        {"field": "assignee", "changed": True},
        {"field": "assignee", "changed_to": "ana"},
        {"field": "priority", "changed_to": "P2"},
        {"field": "tags", "added": ["vip"]},
        {"field": "tags", "removed": ["urgent", "vip"]},
        {"field": "group", "changed_from": "l1"},
        {"field": "event", "has_any": ["tags_changed"]},
    ]
)


@st.composite
def _commands(draw: st.DrawFn) -> Subject:
    """A subject of a command: the ticket before (or none: the command opened it), after,
    and the command's events (or none)."""
    before = _ticket(
        tags=frozenset(draw(st.sets(st.sampled_from(["urgent", "vip"])))),
        assignee_id=draw(st.sampled_from([None, "ana"])),
    )
    steps = []
    ticket = before
    if draw(st.booleans()):
        steps.append(
            lifecycle.change_status(
                ticket, "pending", at=NOW, actor=Actor.agent("ana"), workflow=DEFAULT_WORKFLOW
            )
        )
        ticket = steps[-1].ticket
    add = draw(st.sets(st.sampled_from(["urgent", "vip"])))
    remove = draw(st.sets(st.sampled_from(["urgent", "vip"]))) - add
    if add or remove:
        steps.append(
            lifecycle.change_tags(ticket, at=NOW, actor=Actor.agent("ana"), add=add, remove=remove)
        )
        ticket = steps[-1].ticket
    events = tuple(e for step in steps for e in step.events)
    opened = draw(st.booleans())
    return _subject(ticket, before=None if opened else before, events=events)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CHANGE_TESTS, min_size=1, max_size=3), _commands())
def test_compiled_changes_agree_with_the_tree(items: list[Any], subject: Subject) -> None:
    """Changes of the ticket's fields compiled inline (the ticket before read as ``b``) give
    the answers of the tree's own tests, alone, combined and negated."""
    for data in (*items, {"all": items}, {"any": items}, {"not": items}):
        condition = COMMANDS.parse(data)
        assert bool(condition.compiled()(subject)) is condition.matches(subject), data


@settings(max_examples=200, deadline=None)
@given(st.lists(_TREES, max_size=6), _subjects())
def test_the_first_match_is_the_first_condition_that_holds(
    trees: list[Any], subject: Subject
) -> None:
    conditions = [parse(data, VOCABULARY) for data in trees]
    expected = next((i for i, c in enumerate(conditions) if c.matches(subject)), -1)
    assert first_match(conditions)(subject) == expected
