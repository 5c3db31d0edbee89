"""Encode and decode a ticket and a few events with the storage codec (a small timeit script).

Run ``python bench/bench_codec.py``. It times the compiled codec the stores use on every write
and read (``helpkit._codec.encoder``/``decoder``, ``event_to_dict``/``event_from_dict``) and,
when it exists, the public :mod:`helpkit.serialize` on the same values: the best of five
repeats, in microseconds per call. It prints Markdown and writes nothing.
"""

from __future__ import annotations

import importlib
import timeit
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs

from helpkit import lifecycle
from helpkit._codec import decoder, encoder
from helpkit.events import Event, event_from_dict, event_to_dict
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, Ticket

NOW = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
ANA = Actor.agent("ana")


def _history() -> tuple[Ticket, list[Event]]:
    """A ticket with tags, followers, custom fields and an SLA schedule, and its events."""
    opened = lifecycle.open_ticket(
        ticket_id="t-0001",
        number=42,
        at=NOW,
        actor=Actor.contact("c-1"),
        subject="The VPN drops every few minutes",
        requester_id="c-1",
        organization_id="o-1",
        impact=Impact.HIGH,
        urgency=Urgency.MEDIUM,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="email",
        tags=["vpn", "network"],
        custom_fields={"os": ("linux", "mac"), "seats": 12, "due": date(2026, 4, 1)},
    )
    events = list(opened.events)
    reply = Comment(
        id="m-1",
        author=ANA,
        body="Looking into it. Which client version do you run?",
        public=True,
        channel="email",
        created_at=NOW + timedelta(minutes=5),
        ticket_id="t-0001",
    )
    step = lifecycle.add_comment(
        opened.ticket, reply, at=reply.created_at, workflow=DEFAULT_WORKFLOW
    )
    events.extend(step.events)
    step = lifecycle.change_status(
        step.ticket, "pending", at=NOW + timedelta(minutes=6), actor=ANA, workflow=DEFAULT_WORKFLOW
    )
    events.extend(step.events)
    step = lifecycle.change_followers(
        step.ticket, at=NOW + timedelta(minutes=7), actor=ANA, add=[Actor.contact("c-2"), ANA]
    )
    events.extend(step.events)
    ticket = attrs.evolve(
        step.ticket,
        sla_policy="gold",
        next_deadline=NOW + timedelta(hours=4),
        next_check=NOW + timedelta(hours=3),
    )
    return ticket, events


def _best(call: Callable[[], Any], number: int) -> float:
    """Microseconds per call: the best of five repeats of ``number`` calls."""
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def main() -> None:
    ticket, events = _history()
    rows: list[tuple[str, float]] = []
    encode_ticket, decode_ticket = encoder(Ticket), decoder(Ticket)
    state = encode_ticket(ticket)
    assert decode_ticket(state) == ticket
    rows.append(("Ticket: encode (codec)", _best(lambda: encode_ticket(ticket), 20_000)))
    rows.append(("Ticket: decode (codec)", _best(lambda: decode_ticket(state), 20_000)))
    bodies = [event_to_dict(e) for e in events]
    assert [event_from_dict(b) for b in bodies] == events
    names = ", ".join(type(e).__name__ for e in events)
    rows.append(
        (
            f"{len(events)} events ({names}): event_to_dict",
            _best(lambda: [event_to_dict(e) for e in events], 5_000),
        )
    )
    rows.append(
        (
            f"{len(events)} events: event_from_dict",
            _best(lambda: [event_from_dict(b) for b in bodies], 5_000),
        )
    )
    try:
        serialize: Any = importlib.import_module("helpkit.serialize")
    except ImportError:
        serialize = None
    if serialize is not None:
        rows.append(("Ticket: serialize.to_data", _best(lambda: serialize.to_data(ticket), 20_000)))
        rows.append(
            (
                "Ticket: serialize.from_data",
                _best(lambda: serialize.from_data(Ticket, state), 20_000),
            )
        )
        rows.append(
            (
                f"{len(events)} events: serialize.to_data",
                _best(lambda: [serialize.to_data(e) for e in events], 5_000),
            )
        )
        rows.append(
            (
                f"{len(events)} events: serialize.from_data",
                _best(lambda: [serialize.from_data(Event, b) for b in bodies], 5_000),
            )
        )
    print("| operation | µs per call |")
    print("|---|---:|")
    for label, micros in rows:
        print(f"| {label} | {micros:.2f} |")


if __name__ == "__main__":
    main()
