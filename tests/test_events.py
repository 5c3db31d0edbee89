"""Events: JSON round trips, schema versions and upcasters."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit.errors import HelpkitError, SchemaError
from helpkit.events import (
    EVENT_TYPES,
    UPCASTERS,
    Event,
    TicketOpened,
    event_from_dict,
    event_to_dict,
    register_event_type,
)
from helpkit.lifecycle import (
    add_comment,
    assign,
    change_followers,
    change_priority,
    change_status,
    change_subject,
    change_tags,
    link,
    merge,
    open_ticket,
    set_custom_fields,
    unlink,
)
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.testing.strategies import ticket_histories
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, LinkKind, Ticket

T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
AGENT = Actor.agent("ana")
CORE_TYPES = {
    "ticket_opened",
    "comment_added",
    "status_changed",
    "assigned",
    "priority_changed",
    "subject_changed",
    "tags_changed",
    "followers_changed",
    "custom_fields_changed",
    "linked",
    "unlinked",
    "merged_into",
    "merge_received",
}


def round_trip(event: Event) -> Event:
    return event_from_dict(json.loads(json.dumps(event_to_dict(event))))


def _open(ticket_id: str, number: int, requester: str = "c-1") -> Ticket:
    return open_ticket(
        ticket_id=ticket_id,
        number=number,
        at=T0,
        actor=Actor.contact(requester),
        subject="Ça ne marche pas",
        requester_id=requester,
        organization_id="org-1",
        impact=Impact.HIGH,
        urgency=Urgency.MEDIUM,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="email",
        tags=["VPN"],
        followers=[Actor.agent("bo")],
        custom_fields={"due": date(2026, 4, 1), "os": ("linux",), "cost": 1.5},
    ).ticket


def every_event_type() -> list[Event]:
    """One history (plus the merged ticket's) that contains every core event type."""
    events: list[Event] = []
    t = _open("t-1", 1)
    other = _open("t-2", 2, requester="c-2")
    events.append(
        open_ticket(
            ticket_id="t-9",
            number=9,
            at=T0,
            actor=AGENT,
            subject="x",
            requester_id="c",
            organization_id=None,
            impact=Impact.LOW,
            urgency=Urgency.LOW,
            matrix=ITIL_MATRIX,
            workflow=DEFAULT_WORKFLOW,
            channel="web",
        ).events[0]
    )

    def take(outcome: Any) -> None:
        nonlocal t
        t = outcome.ticket
        events.extend(outcome.events)

    reply = Comment(
        id="m1",
        author=AGENT,
        body="On it — merci",
        public=True,
        channel="email",
        created_at=T0,
        external_id="<a@b>",
        ticket_id="t-1",
    )
    take(add_comment(t, reply, at=T0, workflow=DEFAULT_WORKFLOW))
    take(assign(t, at=T0, actor=AGENT, assignee_id="ana", group_id="l2", transfer=True))
    take(change_priority(t, at=T0, actor=AGENT, matrix=ITIL_MATRIX, urgency=Urgency.HIGH))
    take(change_subject(t, "VPN down", at=T0, actor=AGENT))
    take(change_tags(t, at=T0, actor=AGENT, add=["Été"], remove=["vpn"]))
    take(change_followers(t, at=T0, actor=AGENT, add=[Actor.contact("c-9")]))
    take(set_custom_fields(t, {"due": None, "seats": 3}, at=T0, actor=AGENT))
    take(link(t, other, LinkKind.RELATED, at=T0, actor=AGENT)[0])
    take(unlink(t, other, "related", at=T0, actor=AGENT)[0])
    take(change_status(t, "pending", at=T0, actor=AGENT, workflow=DEFAULT_WORKFLOW, reason="r"))
    source_out, target_out = merge(other, t, [reply], at=T0, actor=AGENT, workflow=DEFAULT_WORKFLOW)
    take(target_out)
    events.extend(source_out.events)
    return events


def test_every_core_event_type_round_trips() -> None:
    events = every_event_type()
    assert {e.TYPE for e in events} == CORE_TYPES
    assert set(EVENT_TYPES) >= CORE_TYPES
    for event in events:
        back = round_trip(event)
        assert back == event
        assert type(back) is type(event)


def test_dict_form_is_plain_and_versioned() -> None:
    opened = every_event_type()[0]
    data = event_to_dict(opened)
    assert data["type"] == "ticket_opened"
    assert data["v"] == 1
    assert data["at"] == "2026-03-02T09:00:00.123456+00:00"
    assert data["actor"] == {"kind": "agent", "id": "ana"}
    assert data["impact"] == "low"
    assert data["priority"] == 5


@settings(max_examples=60, deadline=None)
@given(ticket_histories(max_commands=15))
def test_histories_round_trip_through_json(history: list[Event]) -> None:
    for event in history:
        data = event_to_dict(event)
        text = json.dumps(data, ensure_ascii=False)
        back = event_from_dict(json.loads(text))
        assert back == event
        # Deterministic: the same event always serializes to the same text (sets are sorted),
        # so stores can compare or hash stored events.
        assert json.dumps(event_to_dict(back), ensure_ascii=False) == text


def test_unknown_type_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unknown event type 'ticket_exploded'"):
        event_from_dict({"type": "ticket_exploded", "v": 1})
    with pytest.raises(SchemaError, match="unknown event type None"):
        event_from_dict({"v": 1})


def test_newer_schema_version_is_refused_with_upgrade_hint() -> None:
    data = event_to_dict(every_event_type()[0])
    data["v"] = TicketOpened.VERSION + 1
    with pytest.raises(SchemaError, match="upgrade helpkit"):
        event_from_dict(data)


@pytest.mark.parametrize("version", [0, -1, "1", None, 1.0])
def test_bad_versions(version: object) -> None:
    data = event_to_dict(every_event_type()[0])
    data["v"] = version
    with pytest.raises(SchemaError):
        event_from_dict(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", "1"),
        ("seq", 0),
        ("at", "2026-03-02T09:00:00"),  # naive
        ("at", "yesterday"),
        ("at", 12),
        ("impact", "huge"),
        ("priority", 9),
        ("actor", "agent:ana"),
        ("actor", {"kind": "robot", "id": "x"}),
        ("tags", 5),
        ("custom_fields", ["not", "a", "mapping"]),  # used to escape as AttributeError
        ("custom_fields", {"due": {"when": "2026-01-01"}}),
        ("number", True),
    ],
)
def test_corrupt_fields_are_schema_errors(field: str, value: object) -> None:
    data = json.loads(json.dumps(event_to_dict(every_event_type()[0])))
    data[field] = value
    with pytest.raises(SchemaError):
        event_from_dict(data)


def test_missing_required_field_is_named() -> None:
    data = event_to_dict(every_event_type()[0])
    del data["subject"]
    with pytest.raises(SchemaError, match="subject"):
        event_from_dict(data)


@pytest.mark.parametrize("data", [5, None, "ticket_opened", [("type", "assigned")]])
def test_data_that_is_not_an_object_is_a_schema_error(data: Any) -> None:
    with pytest.raises(SchemaError, match="expected an object for an event"):
        event_from_dict(data)


@attrs.frozen(kw_only=True)
class _Escalated(Event):
    """A test-only event whose schema evolved: v1 had ``level``, v2 has ``tier`` and ``note``."""

    TYPE: ClassVar[str] = "test_escalated"
    VERSION: ClassVar[int] = 2

    tier: int
    note: str


@pytest.fixture
def escalated() -> Iterator[type[_Escalated]]:
    register_event_type(_Escalated)
    try:
        yield _Escalated
    finally:
        EVENT_TYPES.pop(_Escalated.TYPE, None)
        for key in [k for k in UPCASTERS if k[0] == _Escalated.TYPE]:
            del UPCASTERS[key]


def _v1() -> dict[str, Any]:
    return {
        "type": "test_escalated",
        "v": 1,
        "ticket_id": "t-1",
        "seq": 4,
        "at": "2026-03-02T10:00:00+01:00",
        "actor": {"kind": "system", "id": "sweep"},
        "level": "L2",
    }


def _level_to_tier(old: dict[str, Any]) -> dict[str, Any]:
    new = dict(old)
    new["tier"] = int(new.pop("level").removeprefix("L"))
    new["note"] = ""
    return new


def test_upcaster_upgrades_an_old_dict(escalated: type[_Escalated]) -> None:
    with pytest.raises(SchemaError, match="no upcaster"):
        event_from_dict(_v1())
    UPCASTERS[("test_escalated", 1)] = _level_to_tier
    event = event_from_dict(_v1())
    assert event == escalated(
        ticket_id="t-1",
        seq=4,
        at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        actor=Actor.system("sweep"),
        tier=2,
        note="",
    )
    # Written back, it is current.
    assert event_to_dict(event)["v"] == 2
    assert round_trip(event) == event


def test_upcasters_chain(escalated: type[_Escalated], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(escalated, "VERSION", 3)

    def add_note(old: dict[str, Any]) -> dict[str, Any]:
        return {**old, "note": old["note"] or "upgraded twice"}

    UPCASTERS[("test_escalated", 1)] = _level_to_tier
    UPCASTERS[("test_escalated", 2)] = add_note
    event = event_from_dict(_v1())
    assert isinstance(event, _Escalated)
    assert (event.tier, event.note) == (2, "upgraded twice")


def test_event_types_cannot_be_taken_twice(escalated: type[_Escalated]) -> None:
    register_event_type(escalated)  # idempotent for the same class

    @attrs.frozen(kw_only=True)
    class Impostor(Event):
        TYPE: ClassVar[str] = "test_escalated"

    with pytest.raises(ValueError, match="already registered"):
        register_event_type(Impostor)
    assert EVENT_TYPES["test_escalated"] is escalated


def test_events_are_immutable_and_aware() -> None:
    opened = every_event_type()[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        opened.seq = 2  # type: ignore[misc]
    assert opened.at.tzinfo is UTC


def test_an_upcaster_that_fails_on_bad_data_gives_a_schema_error(
    escalated: type[_Escalated],
) -> None:
    UPCASTERS[("test_escalated", 1)] = _level_to_tier
    broken = {k: v for k, v in _v1().items() if k != "level"}
    with pytest.raises(SchemaError, match="cannot read event 'test_escalated'") as caught:
        event_from_dict(broken)  # the upcaster's KeyError, no longer raw
    assert isinstance(caught.value.__cause__, KeyError)


def _event_from_dict_by_copy(data: Any) -> Event:
    """event_from_dict as it was before it read a current dict in place: always on a copy
    without ``type`` and ``v``."""
    from helpkit._codec import decoder
    from helpkit.events import EVENT_TYPES, UPCASTERS

    if not isinstance(data, Mapping):
        raise SchemaError(f"expected an object for an event, found {data!r:.60}")
    body = dict(data)
    type_name = body.pop("type", None)
    version = body.pop("v", 1)
    cls = EVENT_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise SchemaError(f"unknown event type {type_name!r:.60}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SchemaError(f"bad schema version {version!r:.60} for event {type_name!r}")
    if version > cls.VERSION:
        raise SchemaError(
            f"event {type_name!r} has schema version {version}, newer than this helpkit "
            f"understands ({cls.VERSION}); upgrade helpkit"
        )
    try:
        while version < cls.VERSION:
            upcast = UPCASTERS.get((cls.TYPE, version))
            if upcast is None:
                raise SchemaError(f"no upcaster for event {type_name!r} version {version}")
            body = upcast(body)
            version += 1
        event: Event = decoder(cls)(body)
    except SchemaError:
        raise
    except (
        HelpkitError,
        TypeError,
        ValueError,
        LookupError,
        AttributeError,
        ArithmeticError,
    ) as exc:
        raise SchemaError(f"cannot read event {type_name!r}: {exc}") from exc
    return event


def _read(read: Any, data: Any) -> object:
    try:
        return ("ok", read(data))
    except SchemaError as exc:
        return ("error", str(exc))


@given(
    ticket_histories(max_commands=6),
    st.data(),
)
def test_event_from_dict_reads_in_place_what_it_read_from_a_copy(
    history: list[Event], data: st.DataObject
) -> None:
    for event in history:
        raw = event_to_dict(event)
        change = data.draw(st.integers(0, 6), label="change")
        key = data.draw(st.sampled_from(sorted(raw)), label="key")
        if change == 1:
            raw["v"] = data.draw(st.sampled_from([0, 2, 1.0, True, "1", None, [1]]), label="v")
        elif change == 2:
            raw["type"] = data.draw(st.sampled_from(["nope", 5, None, ["x"], "comment_added"]))
        elif change == 3:
            raw[key] = data.draw(st.sampled_from([None, "", " x", -1, [], {}, "a\x00b"]))
        elif change == 4:
            del raw[key]
        elif change == 5:
            del raw["v"]
        fast = _read(event_from_dict, raw)
        slow = _read(_event_from_dict_by_copy, raw)
        assert fast == slow


@given(st.one_of(st.integers(), st.booleans(), st.floats(), st.none(), st.text(max_size=2)))
def test_a_seq_is_checked_as_before_its_fast_path(value: Any) -> None:
    from helpkit.errors import ValidationError
    from helpkit.events import _seq

    valid = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if valid:
        assert _seq(value) is value
    else:
        with pytest.raises(ValidationError, match="start at 1"):
            _seq(value)
