"""helpkit._records.replace is attrs.evolve, converting only the changed fields."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import lifecycle
from helpkit._records import _replace_by_loop, build, replace
from helpkit.events import Event, TicketOpened
from helpkit.lifecycle import replay
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.testing.strategies import ticket_histories, tickets
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, Ticket

FIELDS = [f.name for f in attrs.fields(Ticket)]


@given(
    tickets(max_commands=8),
    tickets(max_commands=8),
    st.sets(st.sampled_from(FIELDS), max_size=6),
)
def test_replace_equals_evolve_on_tickets(one: Ticket, other: Ticket, names: set[str]) -> None:
    changes = {name: getattr(other, name) for name in names}
    fast, slow = replace(one, **changes), attrs.evolve(one, **changes)
    assert fast == slow
    assert hash(fast) == hash(slow)
    for name in FIELDS:
        assert type(getattr(fast, name)) is type(getattr(slow, name)), name


def test_changed_fields_are_converted() -> None:
    ticket = replay(_history())
    zone = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 2, 11, 0, tzinfo=zone)
    fast = replace(ticket, custom_fields={"plan": "gold"}, updated_at=local)
    assert fast == attrs.evolve(ticket, custom_fields={"plan": "gold"}, updated_at=local)
    assert fast.updated_at.tzinfo is UTC or fast.updated_at.utcoffset() == timedelta(0)
    with pytest.raises(TypeError):
        fast.custom_fields["plan"] = "silver"  # type: ignore[index]


@given(ticket_histories(max_commands=0), st.integers(1, 10**9))
def test_replace_equals_evolve_on_events(history: list[Event], number: int) -> None:
    opened = history[0]
    assert isinstance(opened, TicketOpened)
    assert replace(opened, number=number) == attrs.evolve(opened, number=number)


def test_unknown_fields_are_refused_like_evolve() -> None:
    ticket = replay(_history())
    with pytest.raises(TypeError):
        replace(ticket, nope=1)
    with pytest.raises(TypeError):
        attrs.evolve(ticket, nope=1)  # type: ignore[call-arg]


@attrs.frozen
class _Checked:
    value: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen
class _PostInit:
    low: int
    high: int

    def __attrs_post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low > high")


def test_classes_with_validation_go_through_evolve() -> None:
    with pytest.raises(ValueError):
        replace(_Checked(1), value=-1)
    with pytest.raises(ValueError, match="low > high"):
        replace(_PostInit(1, 2), low=3)
    assert replace(_PostInit(1, 2), low=2) == _PostInit(2, 2)


def _history() -> list[Event]:
    return list(
        lifecycle.open_ticket(
            ticket_id="t1",
            number=1,
            at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            actor=Actor.agent("ann"),
            subject="VPN drops",
            requester_id="c1",
            organization_id=None,
            impact=Impact.HIGH,
            urgency=Urgency.MEDIUM,
            matrix=ITIL_MATRIX,
            workflow=DEFAULT_WORKFLOW,
            channel="email",
        ).events
    )


@attrs.frozen(cache_hash=True)
class _CachedHash:
    value: int


@attrs.frozen
class _PreInit:
    value: int

    def __attrs_pre_init__(self) -> None:
        _PRE_INIT_CALLS.append(1)


_PRE_INIT_CALLS: list[int] = []


def test_cached_hashes_and_pre_init_hooks_go_through_evolve() -> None:
    copy = replace(_CachedHash(1), value=2)
    assert copy == _CachedHash(2) and hash(copy) == hash(_CachedHash(2))
    before = len(_PRE_INIT_CALLS)
    assert replace(_PreInit(1), value=2) == _PreInit(2)
    assert len(_PRE_INIT_CALLS) == before + 3  # both constructions and the copy ran the hook


def test_replace_works_with_attrs_releases_without_converter_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # attrs.Converter exists from attrs 24.1; helpkit supports older releases too.
    import importlib

    from helpkit import _records

    monkeypatch.delattr(attrs, "Converter")
    try:
        reloaded = importlib.reload(_records)
        ticket = replay(_history())
        assert reloaded.replace(ticket, subject="x") == attrs.evolve(ticket, subject="x")
    finally:
        monkeypatch.undo()
        importlib.reload(_records)


@given(ticket_histories(max_commands=8))
def test_copies_of_every_event_equal_the_event(history: list[Event]) -> None:
    # Each event class's copier (slot setters) copies every field: the copy with no change
    # equals the event, and so does the copy changing only its seq back.
    for event in history:
        assert replace(event) == attrs.evolve(event) == event
        assert replace(event, seq=event.seq) == event


@attrs.define(frozen=True, slots=False)
class _NoSlots:
    low: int
    high: str = attrs.field(converter=str)


@attrs.frozen
class _Base:
    low: int


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen
class _Derived(_Base):
    high: tuple[int, ...] = attrs.field(converter=_int_tuple)


@given(st.integers(), st.text(), st.integers(), st.lists(st.integers(), max_size=3))
def test_classes_without_slots_or_with_inherited_slots_copy_like_evolve(
    low: int, high: str, other: int, items: list[int]
) -> None:
    plain = _NoSlots(low, high)
    assert replace(plain, low=other) == attrs.evolve(plain, low=other)
    assert replace(plain, high=other) == attrs.evolve(plain, high=other)  # converted
    derived = _Derived(low, items)
    assert replace(derived, low=other) == attrs.evolve(derived, low=other)
    assert replace(derived, high=[other]) == attrs.evolve(derived, high=[other])


def _outcome(call: Callable[[], object]) -> object:
    try:
        return ("ok", call())
    except Exception as exc:  # the error is the answer compared
        return ("error", type(exc), str(exc))


_BAD_VALUES = (
    None,
    "",
    " x",
    -1,
    2**64,
    "a\x00b",
    1.5,
    (),
    "nope",
    True,
    frozenset({1}),
    (1,),
    "high",
)
_BAD = st.sampled_from(_BAD_VALUES)


@given(
    tickets(max_commands=6),
    tickets(max_commands=6),
    st.lists(st.sampled_from([*FIELDS, "nope"]), unique=True, max_size=6),
    st.data(),
)
def test_replace_by_generated_function_is_replace_by_the_loop(
    one: Ticket, other: Ticket, names: list[str], data: st.DataObject
) -> None:
    """The function made per class and names gives what the loop over the changes gave (the
    path before it), for good values, bad ones (the same error first) and unknown names."""
    changes = {
        name: data.draw(st.one_of(st.just(getattr(other, name, None)), _BAD), label=name)
        for name in names
    }
    fast = _outcome(lambda: replace(one, **changes))
    slow = _outcome(lambda: _replace_by_loop(one, *changes.values(), names=tuple(changes)))
    assert fast == slow
    if fast[0] == "ok":  # type: ignore[index]
        made = replace(one, **changes)
        assert all(type(getattr(made, f)) is type(getattr(slow[1], f)) for f in FIELDS)  # type: ignore[index]


def _init_args(value: Ticket | Event | Comment) -> dict[str, object]:
    return {f.alias: getattr(value, f.name) for f in attrs.fields(type(value))}


@settings(max_examples=300)
@given(
    st.one_of(tickets(max_commands=6), ticket_histories(max_commands=6).map(lambda h: h[-1])),
    st.data(),
)
def test_build_is_the_attrs_init(value: Ticket | Event, data: st.DataObject) -> None:
    """build(cls, **fields) gives what cls(**fields) gives: the same value, or the same error
    first, for good values, bad ones, fields left to their defaults, missing or unknown ones."""
    cls: Any = type(value)
    given_args = _init_args(value)
    names = sorted(given_args)
    bad = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=2), label="bad")
    for name in bad:
        given_args[name] = data.draw(_BAD, label=name)
    # Mostly fields with defaults left out; now and then a required one, or an unknown name.
    optional = sorted(f.alias for f in attrs.fields(cls) if f.default is not attrs.NOTHING)
    left = (
        data.draw(st.lists(st.sampled_from(optional), unique=True), label="left")
        if optional
        else []
    )
    if data.draw(st.integers(0, 9), label="odd") == 0:
        left.append(data.draw(st.sampled_from(names), label="required"))
    for name in set(left):
        del given_args[name]
    if data.draw(st.integers(0, 9), label="unknown") == 0:
        given_args["nope"] = 1
    order = data.draw(st.permutations(sorted(given_args)), label="order")
    kwargs = {name: given_args[name] for name in order}
    fast = _outcome(lambda: build(cls, **kwargs))
    slow = _outcome(lambda: cls(**kwargs))
    assert fast == slow
    if fast[0] == "ok":  # type: ignore[index]
        made = build(cls, **kwargs)
        expected = cls(**kwargs)
        assert _outcome(lambda: hash(made)) == _outcome(lambda: hash(expected))
        for field in attrs.fields(cls):
            assert type(getattr(made, field.name)) is type(getattr(expected, field.name))


def _each_kind() -> list[Ticket | Event | Comment]:
    """A ticket, its opening event, a comment and the event adding it."""
    opened = _history()[0]
    assert isinstance(opened, TicketOpened)
    note = Comment(
        id="m1", author=Actor.agent("ann"), body="Hi", public=False, channel="web",
        created_at=opened.at, ticket_id="t1",
    )  # fmt: skip
    added = lifecycle.add_comment(
        replay(_history()), note, at=opened.at, workflow=DEFAULT_WORKFLOW
    ).events[0]
    return [replay(_history()), opened, added, note]


def test_build_refuses_each_bad_value_of_each_field_as_the_init_does() -> None:
    """Every field of a ticket, an opening event and a comment, with each bad value in turn:
    build answers what the attrs __init__ answers (the inline checks call the validator)."""
    for value in _each_kind():
        cls: Any = type(value)
        for name in _init_args(value):
            for bad in _BAD_VALUES:
                kwargs = {**_init_args(value), name: bad}
                fast = _outcome(lambda: build(cls, **kwargs))  # noqa: B023
                assert fast == _outcome(lambda: cls(**kwargs)), (cls.__name__, name, bad)  # noqa: B023


def test_replace_refuses_each_bad_value_of_each_field_as_the_loop_does() -> None:
    """Every field of a ticket, an opening event, a comment and its event replaced by each bad
    value in turn: the generated function (inline checks) answers what the loop over the changes
    answers (each validator called)."""
    for value in _each_kind():
        for name in _init_args(value):
            for bad in _BAD_VALUES:
                fast = _outcome(lambda: replace(value, **{name: bad}))  # noqa: B023
                slow = _outcome(lambda: _replace_by_loop(value, bad, names=(name,)))  # noqa: B023
                assert fast == slow, (type(value).__name__, name, bad)
