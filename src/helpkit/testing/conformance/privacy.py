"""Conformance cases of redaction (:attr:`~helpkit.ports.Capability.REDACTION`) and purge
(:attr:`~helpkit.ports.Capability.PURGE`).

After a rewrite no read returns the old text: not the history, not the change feed, not the
outbox, not the inbox; the ticket's state is still the fold of its (rewritten) history. A
rewrite of a record that is not stored, or that would change what an event is, writes
nothing. A purge deletes whole tickets (state, history, feed entries, deliveries, receipts)
and keeps the ticket holding the last feed position and the one with the highest number, so
neither is given twice. Skipped, with the reason shown, for stores without the capability.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import cast

import pytest

from helpkit import lifecycle, redaction, serialize
from helpkit._records import replace
from helpkit.errors import NotFoundError, ValidationError
from helpkit.events import CommentAdded, Event, event_to_dict
from helpkit.lifecycle import Outcome
from helpkit.ports import (
    Capability,
    ChangeFeed,
    DeliveryState,
    Inbox,
    Outbox,
    Purge,
    Receipt,
    ReceiptState,
    Redaction,
    Store,
    TicketChange,
    missing_members,
)
from helpkit.testing.conformance.helpers import _AGENT, _open, _Time, change_of
from helpkit.testing.conformance.outbox import delivery
from helpkit.tickets import DEFAULT_WORKFLOW as _WORKFLOW
from helpkit.tickets import Actor, Attachment, Comment, Ticket

MARK = "MARKER-5f3a9c-do-not-keep"
"""The text the cases redact: found nowhere once it is rewritten away."""

_SHA_A = "a" * 64
_SHA_B = "b" * 64


def _redaction(store: Store) -> Redaction:
    if Capability.REDACTION not in store.capabilities:
        pytest.skip("the store does not declare Capability.REDACTION")
    assert missing_members(store, Redaction) == (), "a store with REDACTION implements Redaction"
    return cast(Redaction, store)


def _purge(store: Store) -> Purge:
    if Capability.PURGE not in store.capabilities:
        pytest.skip("the store does not declare Capability.PURGE")
    assert missing_members(store, Purge) == (), "a store with PURGE implements Purge"
    return cast(Purge, store)


def _secret_note(ticket: Ticket, time: _Time, *, sha: str | None = None) -> Outcome:
    at = time.tick()
    files = (
        (Attachment(id="f1", filename="card.png", content_type="image/png", size=3, sha256=sha),)
        if sha
        else ()
    )
    comment = Comment(
        id=f"{ticket.id}-secret",
        author=_AGENT,
        body=f"The card is {MARK}",
        public=True,
        channel="web",
        created_at=at,
        original=f"The card is {MARK}\n> quoted",
        attachments=files,
    )
    return lifecycle.add_comment(ticket, comment, at=at, workflow=_WORKFLOW)


def _everything(store: Store, ticket_id: str) -> str:
    """Every read of the ticket's records, as one text."""
    parts = [serialize.dumps(store.get_ticket(ticket_id))]
    parts += [json.dumps(event_to_dict(e)) for e in store.events(ticket_id)]
    if Capability.CHANGE_FEED in store.capabilities:
        parts += [json.dumps(event_to_dict(c.event)) for c in cast(ChangeFeed, store).changes()]
    if Capability.OUTBOX in store.capabilities:
        outbox = cast(Outbox, store)
        for found in outbox.deliveries(ticket_id=ticket_id, limit=1000):
            parts += [serialize.dumps(found), serialize.dumps(outbox.delivery(found.id))]
    if Capability.INBOX in store.capabilities:
        parts += [serialize.dumps(r) for r in cast(Redaction, store).receipts_of(ticket_id)]
    return "\n".join(parts)


def _secret_ticket(store: Store, time: _Time, *, sha: str | None = None) -> tuple[Ticket, Event]:
    (opened,) = store.commit([change_of(_open("t1", 0, time.tick()))])
    (noted,) = store.commit([change_of(_secret_note(opened.ticket, time, sha=sha))])
    event = next(e for e in noted.events if isinstance(e, CommentAdded))
    return noted.ticket, event


class RedactionCases:
    """Records rewritten in place: gone from every read, the history still folding."""

    def test_after_a_rewrite_no_read_returns_the_text(self, store: Store) -> None:
        rewriter = _redaction(store)
        time = _Time()
        ticket, event = _secret_ticket(store, time)
        assert isinstance(event, CommentAdded)
        deliveries = []
        if Capability.OUTBOX in store.capabilities:
            outbox = cast(Outbox, store)
            sent = delivery("t1-2-reply", source=2)
            pending = delivery("t1-2-notice", source=2)
            sent = replace(sent, message=replace(sent.message, body=f"You wrote: {MARK}"))
            pending = replace(pending, message=replace(pending.message, subject=MARK))
            feed = cast(ChangeFeed, store)
            outbox.enqueue(
                [sent, pending], cursor="relay", position=feed.last_position(), expected=0
            )
            redacted = replace(sent.message, body=redaction.REDACTED)
            deliveries = [
                replace(sent, message=redacted, state=DeliveryState.SENT),
                replace(
                    pending, message=replace(pending.message, subject="x"), state=DeliveryState.DEAD
                ),
            ]
        assert MARK in _everything(store, "t1")
        events = redaction.redact_events(
            store.events("t1"), event.comment.id, attachments=True, texts=(MARK,)
        )
        rewriter.rewrite(events=events, deliveries=deliveries)
        text = _everything(store, "t1")
        assert MARK not in text
        history = store.events("t1")
        assert len(history) == ticket.seq
        assert lifecycle.replay(history) == store.get_ticket("t1") == ticket
        (comment,) = [c for c in lifecycle.conversation(history) if c.id == event.comment.id]
        assert (comment.body, comment.original, comment.redacted) == (
            redaction.REDACTED,
            None,
            True,
        )
        if Capability.OUTBOX in store.capabilities:
            outbox = cast(Outbox, store)
            assert outbox.delivery("t1-2-notice").state is DeliveryState.DEAD
            assert outbox.delivery("t1-2-reply").message.body == redaction.REDACTED

    def test_a_rewrite_is_all_or_nothing(self, store: Store) -> None:
        rewriter = _redaction(store)
        time = _Time()
        _, event = _secret_ticket(store, time)
        assert isinstance(event, CommentAdded)
        (good,) = redaction.redact_events(
            store.events("t1"), event.comment.id, attachments=True, texts=()
        )
        missing = replace(good, seq=9)
        with pytest.raises(NotFoundError):
            rewriter.rewrite(events=[good, missing])
        other_actor = replace(good, actor=Actor.system("forger"))
        with pytest.raises(ValidationError):
            rewriter.rewrite(events=[good, other_actor])
        with pytest.raises(NotFoundError):
            rewriter.rewrite(events=[good], deliveries=[delivery("not-stored")])
        assert MARK in json.dumps(event_to_dict(store.events("t1")[good.seq - 1]))
        rewriter.rewrite(events=[good])
        assert store.events("t1")[good.seq - 1] == good

    def test_blobs_in_use_are_those_an_event_still_refers_to(self, store: Store) -> None:
        rewriter = _redaction(store)
        time = _Time()
        _, event = _secret_ticket(store, time, sha=_SHA_A)
        assert isinstance(event, CommentAdded)
        assert rewriter.blobs_in_use([_SHA_A, _SHA_B]) == frozenset({_SHA_A})
        events = redaction.redact_events(
            store.events("t1"), event.comment.id, attachments=True, texts=()
        )
        rewriter.rewrite(events=events)
        assert rewriter.blobs_in_use([_SHA_A, _SHA_B]) == frozenset()
        rewriter.compact()
        assert store.events("t1")[events[0].seq - 1] == events[0]

    def test_receipts_of_a_ticket_are_found_and_rewritten(self, store: Store) -> None:
        rewriter = _redaction(store)
        if Capability.INBOX not in store.capabilities:
            pytest.skip("the store does not declare Capability.INBOX")
        time = _Time()
        at = time.tick()
        receipt = Receipt(
            key="email:m1",
            state=ReceiptState.CREATED,
            received_at=at,
            updated_at=at,
            ticket_id="t1",
            comment_id="t1-m1",
            reason=f"stranger {MARK}",
        )
        opened = _open("t1", 0, at)
        store.commit([TicketChange(opened.ticket, opened.events, 0, receipt)])
        store.commit([change_of(_open("t2", 0, time.tick()))])
        assert rewriter.receipts_of("t1") == [receipt]
        assert rewriter.receipts_of("t2") == []
        cleaned = replace(receipt, reason="stranger")
        rewriter.rewrite(receipts=[cleaned])
        assert rewriter.receipts_of("t1") == [cleaned]
        assert cast(Inbox, store).receipt("email:m1") == cleaned
        with pytest.raises(NotFoundError):
            rewriter.rewrite(receipts=[replace(receipt, key="email:nope")])


class PurgeCases:
    """Whole tickets deleted; the feed keeps gaps, never a position or number given twice."""

    def test_a_purge_deletes_tickets_and_what_they_hold(self, store: Store) -> None:
        purger = _purge(store)
        time = _Time()
        for ticket_id in ("t1", "t2", "t3"):
            store.commit([change_of(_open(ticket_id, 0, time.tick()))])
        feed = cast(ChangeFeed, store) if Capability.CHANGE_FEED in store.capabilities else None
        last = feed.last_position() if feed is not None else 0
        if Capability.OUTBOX in store.capabilities:
            cast(Outbox, store).enqueue(
                [delivery("t1-1-reply", ticket_id="t1"), delivery("t2-1-reply", ticket_id="t2")],
                cursor="relay",
                position=last,
                expected=0,
            )
        # t3 holds the last position and the highest number: it stays.
        assert purger.purge_tickets(["t1", "t3", "nope"]) == ["t1"]
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        with pytest.raises(NotFoundError):
            store.events("t1")
        with pytest.raises(NotFoundError):
            store.get_ticket_by_number(1)
        assert store.get_ticket("t3").number == 3
        assert [e.ticket_id for e in store.events("t2")] == ["t2", "t2"]
        if feed is not None:
            assert feed.last_position() == last
            assert {c.event.ticket_id for c in feed.changes()} == {"t2", "t3"}
        if Capability.OUTBOX in store.capabilities:
            outbox = cast(Outbox, store)
            assert [d.id for d in outbox.deliveries()] == ["t2-1-reply"]
        # Nothing is given twice: the next ticket and event come after the kept ones.
        (opened,) = store.commit([change_of(_open("t4", 0, time.tick()))])
        assert opened.ticket.number == 4
        if feed is not None:
            assert min(c.position for c in feed.changes(after=last)) > last
        assert purger.purge_tickets(["t3", "t2"]) == ["t2", "t3"]
        assert purger.purge_tickets([]) == []

    def test_a_purged_tickets_receipts_go_with_it(self, store: Store) -> None:
        purger = _purge(store)
        if Capability.INBOX not in store.capabilities:
            pytest.skip("the store does not declare Capability.INBOX")
        time = _Time()
        at = time.tick()
        receipt = Receipt(
            key="email:m1",
            state=ReceiptState.CREATED,
            received_at=at,
            updated_at=at,
            ticket_id="t1",
            comment_id="t1-m1",
        )
        opened = _open("t1", 0, at)
        store.commit([TicketChange(opened.ticket, opened.events, 0, receipt)])
        store.commit([change_of(_open("t2", 0, at + timedelta(seconds=1)))])
        assert purger.purge_tickets(["t1"]) == ["t1"]
        assert cast(Inbox, store).receipt("email:m1") is None
