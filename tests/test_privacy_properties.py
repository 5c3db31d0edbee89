"""Redaction as a property: for random ticket histories (comments, replies, merges, closes)
with redactions in between, every ticket's stored state is the fold of its history, no read
returns a redacted text, and every text not redacted is still there."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import Actor, Helpdesk, lifecycle, serialize
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import HelpkitError
from helpkit.events import event_to_dict
from helpkit.testing.clock import FrozenClock

ANN = Actor.agent("ann")


@dataclass(frozen=True)
class Step:
    kind: str
    ticket: int
    other: int
    pick: int


steps = st.lists(
    st.builds(
        Step,
        kind=st.sampled_from(
            ["open", "note", "reply", "customer", "close", "merge", "redact", "redact", "deliver"]
        ),
        ticket=st.integers(0, 3),
        other=st.integers(0, 3),
        pick=st.integers(0, 20),
    ),
    min_size=1,
    max_size=25,
)


def _reads(desk: Helpdesk, ids: list[str]) -> str:
    parts: list[str] = []
    for ticket_id in ids:
        parts.append(serialize.dumps(desk.ticket(ticket_id)))
        parts += [json.dumps(event_to_dict(e)) for e in desk.history(ticket_id)]
        parts += [serialize.dumps(d) for d in desk.deliveries(ticket=ticket_id, limit=1000)]
    parts += [json.dumps(event_to_dict(c.event)) for c in desk.store.changes(limit=10_000)]  # type: ignore[attr-defined]
    return "\n".join(parts)


def _run(desk: Helpdesk, plan: list[Step], clock: FrozenClock) -> None:
    desk.add_agent("ann", "Ann Agent", email="ann@help.example", role="admin")
    ids: list[str] = []
    texts: dict[str, str] = {}  # comment text -> the comment id
    redacted: set[str] = set()
    counter = 0

    def text() -> str:
        nonlocal counter
        counter += 1
        return f"secret-{counter:04d}-text"

    for step in plan:
        clock.advance(minutes=5)
        try:
            if step.kind == "open" or not ids:
                body = text()
                ticket = desk.open_ticket(
                    ANN, requester=f"c{step.ticket}@example.com", subject="Hello", body=body
                )
                ids.append(ticket.id)
                texts[body] = desk.conversation(ticket)[0].id
                continue
            ticket_id = ids[step.ticket % len(ids)]
            if step.kind in ("note", "reply", "customer"):
                body = text()
                if step.kind == "note":
                    written = desk.note(ticket_id, ANN, body)
                elif step.kind == "reply":
                    written = desk.reply(ticket_id, ANN, body)
                else:  # on a closed ticket, this opens a follow-up
                    written = desk.requester_reply(ticket_id, body)
                if written.id not in ids:
                    ids.append(written.id)
                (texts[body],) = [c.id for c in desk.conversation(written) if c.body == body]
            elif step.kind == "close":
                desk.close(ticket_id, ANN)
            elif step.kind == "merge":
                desk.merge(ticket_id, ids[step.other % len(ids)], ANN)
            elif step.kind == "deliver":
                desk.deliver_pending()
            else:
                comments = desk.conversation(ticket_id)
                comment = comments[step.pick % len(comments)]
                desk.redact(ticket_id, comment.id, ANN, reason="asked", attachments=True)
                redacted.add(comment.id)
        except HelpkitError:
            continue  # refused commands leave no trace; the checks below still hold
    reads = _reads(desk, ids)
    for body, comment_id in texts.items():
        if comment_id in redacted:
            assert body not in reads, f"{body} is still readable"
        else:
            assert body in reads, f"{body} was lost"
    for ticket_id in ids:
        history = desk.history(ticket_id)
        assert lifecycle.replay(history) == desk.ticket(ticket_id)
        for comment in lifecycle.conversation(history):
            assert comment.redacted == (comment.id in redacted)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_redacted_text_is_never_read_again_and_histories_still_fold(plan: list[Step]) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with Helpdesk(
        "memory://", clock=clock, entry_points=False, channels=[RecordingChannel("email")]
    ) as desk:
        _run(desk, plan, clock)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_the_same_on_sqlite(plan: list[Step], tmp_path_factory: pytest.TempPathFactory) -> None:
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    folder: Path = tmp_path_factory.mktemp("desk")
    with Helpdesk(
        f"sqlite:///{folder / 'desk.db'}?synchronous=NORMAL",
        clock=clock,
        entry_points=False,
        channels=[RecordingChannel("email")],
    ) as desk:
        _run(desk, plan, clock)
