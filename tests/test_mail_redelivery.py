"""Bytes handed to ``helpkit mail``'s receiver again are not parsed again: their Message-ID,
kept by the bytes' SHA-256 (:class:`helpkit.channels.parsed_ids.ParsedIds`), finds the first
outcome through :meth:`Helpdesk.received`.

Held against the old receiver, kept here as the reference (parse every message, then
receive it): the same lines, the same desk afterwards, for any sequence of messages drawn
from a pool that holds redeliveries, other bytes under the same Message-ID (a message whose
text differs, bytes that are no usable email), messages without an id, screened ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.channels import parsed_ids
from helpkit.channels.email_in import EmailParseError, parse
from helpkit.channels.parsed_ids import ParsedIds, digest
from helpkit.cli._mail import Ingested, receiver
from helpkit.errors import ValidationError
from helpkit.testing.clock import FrozenClock

START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _email(
    *,
    sender: str = "ann@acme.example",
    message_id: str | None = "m1@acme.example",
    subject: str = "The printer",
    body: str = "It jams.",
    extra: str = "",
) -> bytes:
    head = f"From: Ann <{sender}>\r\n" if sender else ""
    head += "To: support@desk.example\r\n"
    if message_id is not None:
        head += f"Message-ID: <{message_id}>\r\n"
    head += f"Subject: {subject}\r\n{extra}"
    return (head + "\r\n" + body + "\r\n").encode()


POOL = [
    _email(),
    _email(body="It jams, again."),  # other bytes, the same Message-ID
    _email(sender="", body="no sender"),  # no usable email, the same Message-ID
    _email(sender="bob@acme.example", message_id="m2@acme.example", subject="VPN"),
    _email(
        sender="ann@acme.example",
        message_id="m3@acme.example",
        subject="Re: The printer",
        body="Still jams.",
        extra="In-Reply-To: <m1@acme.example>\r\n",
    ),
    _email(message_id=None, subject="No id", body="Who am I?"),
    _email(
        message_id="m4@acme.example",
        subject="Out of office",
        body="Away.",
        extra="Auto-Submitted: auto-replied\r\n",
    ),
    b"\x00\x01 not an email at all",
]


def _desk() -> Helpdesk:
    return Helpdesk(
        "memory://",
        config={"intake": {"addresses": ["support@desk.example"]}},
        clock=FrozenClock(START),
        entry_points=False,
    )


def reference_receiver(desk: Helpdesk, channel: str = "email") -> Callable[[bytes], Ingested]:
    """The receiver before: every message parsed, then received."""

    def handle(raw: bytes) -> Ingested:
        try:
            message = parse(raw, channel=channel, received_at=desk.now())
        except EmailParseError as exc:
            return Ingested(None, str(exc).strip() or "not an email")
        return Ingested(desk.receive(message))

    return handle


def _seen(result: Ingested) -> tuple[Any, ...]:
    """What a result says, without the random ids (a message without Message-ID is keyed
    by one)."""
    intake = result.intake
    if intake is None:
        return ("unparseable", result.error)
    key = intake.key if not intake.key.startswith("email:") or "@" in intake.key else "new"
    return (result.line(), intake.kind, intake.duplicate, intake.ticket_number, key)


def _state(desk: Helpdesk) -> list[tuple[Any, ...]]:
    out = []
    for ticket in desk.tickets(limit=1000).items:
        out.append(
            (
                ticket.number,
                ticket.subject,
                [(c.body, c.external_id) for c in desk.conversation(ticket.id)],
            )
        )
    suspended = [(r.key.startswith("email:"), r.reason) for r in desk.suspended()]
    return [*sorted(out), ("suspended", sorted(suspended))]


@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.integers(min_value=0, max_value=len(POOL) - 1), max_size=14),
    gaps=st.lists(st.sampled_from([0, 1, 3600]), min_size=14, max_size=14),
)
def test_the_receiver_answers_as_parsing_every_message_did(
    picks: list[int], gaps: list[int]
) -> None:
    new_desk, old_desk = _desk(), _desk()
    try:
        new, old = receiver(new_desk), reference_receiver(old_desk)
        for pick, gap in zip(picks, gaps, strict=False):
            for desk in (new_desk, old_desk):
                clock = desk.clock
                assert isinstance(clock, FrozenClock)
                clock.advance(timedelta(seconds=gap))
            assert _seen(new(POOL[pick])) == _seen(old(POOL[pick]))
        assert _state(new_desk) == _state(old_desk)
    finally:
        new_desk.shutdown()
        old_desk.shutdown()


def test_a_redelivery_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    desk = _desk()
    handle = receiver(desk)
    first = handle(POOL[0])
    assert first.line() == "created #1"
    calls: list[bytes] = []
    from helpkit.cli import _mail

    def counting(raw: bytes, **kwargs: Any) -> Any:
        calls.append(raw)
        return parse(raw, **kwargs)

    monkeypatch.setattr(_mail, "parse", counting)
    again = handle(POOL[0])
    assert again.line() == "duplicate (created #1)" and again.intake is not None
    assert again.intake.duplicate and calls == []
    # Other bytes under the same id are parsed (and are a duplicate all the same).
    assert handle(POOL[1]).line() == "duplicate (created #1)" and calls == [POOL[1]]
    # Bytes that are no email are parsed, whatever id they name.
    assert handle(POOL[2]).line().startswith("unparseable:") and calls[-1] == POOL[2]
    desk.shutdown()


def test_received_reads_the_inbox_alone() -> None:
    desk = _desk()
    assert desk.received("email", "m1@acme.example") is None
    intake = desk.receive(parse(POOL[0], received_at=START))
    again = desk.received("email", "<m1@acme.example>")
    assert again is not None and again.duplicate and again.ticket_id == intake.ticket_id
    assert again == desk.receive(parse(POOL[0], received_at=START))
    assert desk.received("web", "m1@acme.example") is None  # another channel's id
    assert desk.received("email", "  ") is None  # no id at all
    for bad in (None, 3):
        with pytest.raises(ValidationError):
            desk.received(bad, "m1@acme.example")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            desk.received("email", bad)  # type: ignore[arg-type]
    desk.shutdown()


def test_parsed_ids_keep_the_newest_and_no_id_is_kept_for_none() -> None:
    ids = ParsedIds(limit=2)
    keys = [digest(raw) for raw in POOL[:3]]
    assert keys[0] == digest(bytearray(POOL[0])) == digest(memoryview(POOL[0]))
    ids.add(keys[0], "a")
    ids.add(keys[1], None)
    assert len(ids) == 1 and ids.get(keys[1]) is None
    ids.add(keys[1], "b")
    ids.add(keys[0], "a")  # seen again: the newest now
    ids.add(keys[2], "c")  # over the limit: the oldest (keys[1]) goes
    assert [ids.get(k) for k in keys] == ["a", None, "c"]
    for bad in (0, -1, True, "2"):
        with pytest.raises(ValidationError):
            ParsedIds(limit=bad)  # type: ignore[arg-type]
    assert parsed_ids.DEFAULT_LIMIT >= 10_000
