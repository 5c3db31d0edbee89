"""Values a store could not read back are refused when a domain object is built (issue #9)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk, ValidationError, events, people, tickets
from helpkit._checks import (
    INT64_MAX,
    INT64_MIN,
    check_flag,
    check_int,
    check_items,
    check_text,
    instances_of,
)

_VALID_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@given(_VALID_TEXT)
def test_any_utf8_text_without_nul_is_storable(value: str) -> None:
    assert check_text(value, "x") == value


@given(_VALID_TEXT, _SURROGATES | st.just("\x00"), _VALID_TEXT)
def test_a_lone_surrogate_or_nul_anywhere_is_refused(before: str, bad: str, after: str) -> None:
    with pytest.raises(ValidationError, match="subject"):
        check_text(before + bad + after, "subject")


@pytest.mark.parametrize("value", [b"bytes", 5, None, 1.5, ["a"]])
def test_non_text_is_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="must be text"):
        check_text(value, "reason")


@pytest.mark.parametrize("value", ["yes", 0, 1, None, "true"])
def test_flags_are_real_bools(value: object) -> None:
    with pytest.raises(ValidationError, match="true or false"):
        check_flag(value, "vip")


@given(st.integers())
def test_integers_must_fit_in_64_bits(value: int) -> None:
    if INT64_MIN <= value <= INT64_MAX:
        assert check_int(value, "n") == value
    else:
        with pytest.raises(ValidationError):
            check_int(value, "n")


def test_bools_are_not_integers() -> None:
    with pytest.raises(ValidationError):
        check_int(True, "number")


def _domain_classes() -> Iterator[type]:
    for module in (people, tickets, events):
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, type) and attrs.has(value) and value.__module__ == module.__name__:
                yield value


@pytest.mark.parametrize("cls", list(_domain_classes()), ids=lambda c: c.__name__)
def test_every_field_of_a_domain_class_is_checked(cls: type) -> None:
    # A new field without a check would let a bad value through to the store again.
    unchecked = [
        f.name for f in attrs.fields(cls) if f.init and f.validator is None and f.converter is None
    ]
    assert unchecked == [], f"{cls.__name__} fields without a check: {unchecked}"


@pytest.fixture(params=["memory", "sqlite"])
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Helpdesk]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    with Helpdesk(url) as opened:
        opened.add_agent("ann", "Ann Agent")
        yield opened


def test_the_reported_calls_are_refused_and_reads_keep_working(desk: Helpdesk) -> None:
    ann = Actor.agent("ann")
    bob = desk.create_contact("Bob", emails=["bob@acme.example"])
    ticket = desk.open_ticket(ann, requester=bob, subject="VPN", body="It drops")
    for vip in ("yes", 0, None):
        with pytest.raises(ValidationError, match="vip"):
            desk.create_contact("Zed", emails=["z@acme.example"], vip=vip)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="vip"):
            desk.create_organization("Acme", vip=vip)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="reason"):
        desk.set_status(ticket, ann, "pending", reason=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="external_id"):
        desk.requester_reply(ticket, "Thanks", external_id=7)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="in_reply_to"):
        desk.requester_reply(ticket, "Thanks", in_reply_to=["<a@b>"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="lone surrogate"):
        desk.open_ticket(ann, requester=bob, subject="VPN \udcff", body="x")
    with pytest.raises(ValidationError, match="lone surrogate"):
        desk.reply(ticket, ann, "fixed \ud800")
    with pytest.raises(ValidationError, match="NUL"):
        desk.note(ticket, ann, "a\x00b")
    assert desk.find_contacts("") == [bob]
    assert [e.seq for e in desk.history(ticket)] == [1, 2]
    assert desk.tickets().items == (desk.ticket(ticket),)


def _instances_of_reference(cls: type, container: type, name: str, value: object) -> str | None:
    """The message the instances_of validator raised with before its loop (None: accepted)."""
    items = value if isinstance(value, container) else ()
    if not isinstance(value, container) or not all(isinstance(v, cls) for v in items):  # type: ignore[attr-defined]
        return f"{name} must be a {container.__name__} of {cls.__name__}; got {value!r:.60}"
    return None


_ITEMS = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.booleans())
_VALUES = st.one_of(
    _ITEMS,
    st.lists(_ITEMS, max_size=4).map(tuple),
    st.frozensets(_ITEMS, max_size=4),
    st.lists(_ITEMS, max_size=4),
)


@given(_VALUES, st.sampled_from([int, str, bool]), st.sampled_from([tuple, frozenset]))
def test_instances_of_accepts_and_refuses_as_before(
    value: object, cls: type, container: type
) -> None:
    validate = instances_of(cls, container=container)
    field = attrs.fields(_Holder).items
    expected = _instances_of_reference(cls, container, field.name, value)
    if expected is None:
        validate(None, field, value)
    else:
        with pytest.raises(ValidationError) as raised:
            validate(None, field, value)
        assert str(raised.value) == expected


@attrs.frozen
class _Holder:
    items: object


def _check_items_reference(value: object, what: str, kind: type) -> tuple[object, ...] | str:
    """check_items as it was before its tuple-and-list fast path: the items, or the message
    of the ValidationError it raised."""
    if isinstance(value, kind) and not isinstance(value, list | tuple | set | frozenset):
        return (value,)
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        return f"{what} must be a list of values; got {value!r:.60}"
    items = tuple(value)
    for item in items:
        if not isinstance(item, kind):
            return f"{what} holds {item!r:.60}, not a {getattr(kind, '__name__', kind)}"
    return items


class _TupleOfText(tuple):  # type: ignore[type-arg]
    """A tuple subclass: it takes the general path, not the fast one."""


_ITEM_ARGS = st.one_of(
    _VALUES,
    st.lists(_ITEMS, max_size=4).map(_TupleOfText),
    st.dictionaries(st.text(max_size=2), _ITEMS, max_size=2),
    st.binary(max_size=3),
    st.lists(_ITEMS, max_size=3).map(iter),
)


@given(
    _ITEM_ARGS,
    st.sampled_from([int, str, bool, object, tuple, list, str | int, frozenset]),
)
def test_check_items_answers_as_before(value: object, kind: type) -> None:
    copy = list(value) if isinstance(value, Iterator) else None
    assume(copy is None or kind is not object)  # an iterator is then one item: itself
    expected = _check_items_reference(iter(copy) if copy is not None else value, "tags", kind)
    arg = iter(copy) if copy is not None else value
    if isinstance(expected, str):
        with pytest.raises(ValidationError) as raised:
            check_items(arg, "tags", kind)
        assert str(raised.value) == expected
    else:
        got: tuple[object, ...] = check_items(arg, "tags", kind)
        assert type(got) is tuple
        assert got == expected
        assert [type(i) for i in got] == [type(i) for i in expected]
