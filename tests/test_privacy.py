"""Privacy through the facade: redaction, erasure, purge and the cleanup step, on the memory,
SQLite and PostgreSQL stores; the SQLite file itself is read for the redacted bytes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from helpkit import Actor, DeskConfig, Helpdesk, lifecycle, serialize
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import (
    AccessDeniedError,
    ConfigError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from helpkit.events import CommentRedacted, ContactErased, MergeReceived, event_to_dict
from helpkit.ports import (
    Delivery,
    DeliveryState,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    Recipient,
)
from helpkit.privacy import GIVEN_UP, redact_delivery
from helpkit.redaction import ERASED_NAME, REDACTED
from helpkit.roles import Role
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Ticket
from postgres_fixtures import fresh_schema

ANN = Actor.agent("ann")
MARK = "ZEBRA-7c1e-private-text"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "sqlite-blobs", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'desk.db'}"
    if request.param == "sqlite-blobs":  # attachment bytes in the same file (_desk)
        return f"sqlite:///{tmp_path / _BLOBS_INSIDE}"
    database: str = request.getfixturevalue("postgres_database")
    return f"{database}?schema={fresh_schema()}"


_BLOBS_INSIDE = "desk-with-blobs.db"


def _desk(url: str, tmp_path: Path, **options: Any) -> Helpdesk:
    options.setdefault("clock", FrozenClock(START))
    desk = Helpdesk(
        url,
        entry_points=False,
        channels=[RecordingChannel("email")],
        blobs=url if url.endswith(_BLOBS_INSIDE) else f"file://{tmp_path / 'blobs'}",
        **options,
    )
    desk.add_agent("ann", "Ann Agent", email="ann@help.example", role="admin")
    return desk


@pytest.fixture
def desk(store_url: str, tmp_path: Path) -> Iterator[Helpdesk]:
    with _desk(store_url, tmp_path) as made:
        yield made


def _file(data: bytes) -> InboundAttachment:
    return InboundAttachment(filename="card.txt", content_type="text/plain", data=data)


def _reads(desk: Helpdesk, ticket: Ticket) -> str:
    """Every read of the ticket (state, history, conversation, feed, deliveries), as text."""
    parts = [serialize.dumps(desk.ticket(ticket))]
    parts += [json.dumps(event_to_dict(e)) for e in desk.history(ticket)]
    parts += [serialize.dumps(c) for c in desk.conversation(ticket)]
    parts += [json.dumps(event_to_dict(c.event)) for c in desk.store.changes()]  # type: ignore[attr-defined]
    parts += [serialize.dumps(d) for d in desk.deliveries(ticket=ticket.id, limit=1000)]
    return "\n".join(parts)


def _secret_ticket(desk: Helpdesk) -> tuple[Ticket, str]:
    ticket = desk.open_ticket(
        ANN,
        requester="bob@example.com",
        subject="Card trouble",
        body=f"My details: {MARK}",
        attachments=[_file(MARK.encode() * 4)],
    )
    (comment,) = desk.conversation(ticket)
    ticket = desk.reply(ticket, ANN, f"You said {MARK}; we are on it")
    desk.deliver_pending()
    return ticket, comment.id


def test_a_redacted_comment_is_gone_from_every_read(desk: Helpdesk) -> None:
    ticket, comment_id = _secret_ticket(desk)
    (file,) = desk.conversation(ticket)[0].attachments
    assert desk.attachment_bytes(ticket, file.id) == MARK.encode() * 4
    reply = desk.conversation(ticket)[1]
    done = desk.redact(ticket, comment_id, ANN, reason="card number pasted")
    assert (done.recorded, done.blobs) == (True, 1)
    desk.redact(ticket, reply.id, ANN, reason="quotes the card number")
    reads = _reads(desk, ticket)
    assert MARK not in reads
    with pytest.raises(NotFoundError):
        desk.blobs.get(file.sha256)
    history = desk.history(ticket)
    assert lifecycle.replay(history) == desk.ticket(ticket)
    first, second = desk.conversation(ticket)
    assert (first.id, first.body, first.redacted, first.attachments) == (
        comment_id,
        REDACTED,
        True,
        (),
    )
    assert (second.body, second.redacted) == (REDACTED, True)
    records = [e for e in history if isinstance(e, CommentRedacted)]
    assert [(r.comment_id, r.actor, r.reason, r.attachments) for r in records] == [
        (comment_id, ANN, "card number pasted", (file.id,)),
        (reply.id, ANN, "quotes the card number", ()),
    ]
    assert all(r.at == START for r in records)


def test_asking_again_repeats_the_rewrite_without_a_second_event(desk: Helpdesk) -> None:
    ticket, comment_id = _secret_ticket(desk)
    desk.redact(ticket, comment_id, ANN, reason="gdpr")
    seq = desk.ticket(ticket).seq
    again = desk.redact(ticket, comment_id, ANN, reason="gdpr")
    assert (again.recorded, again.events) == (False, 0)
    assert desk.ticket(ticket).seq == seq


def test_bad_redactions_are_refused_and_write_nothing(desk: Helpdesk) -> None:
    ticket, comment_id = _secret_ticket(desk)
    before = _reads(desk, ticket)
    with pytest.raises(NotFoundError):
        desk.redact(ticket, "no-such-comment", ANN, reason="gdpr")
    with pytest.raises(ValidationError):
        desk.redact(ticket, comment_id, ANN, reason="  ")
    with pytest.raises(ValidationError):
        desk.redact(ticket, comment_id, Actor.contact(ticket.requester_id), reason="mine")
    with pytest.raises(ValidationError):
        desk.redact(ticket, comment_id, ANN, reason="gdpr", attachments="yes")  # type: ignore[arg-type]
    assert _reads(desk, ticket) == before


def test_only_a_role_holding_privacy_redacts_and_erases(desk: Helpdesk) -> None:
    ticket, comment_id = _secret_ticket(desk)
    desk.add_agent("eve", "Eve Agent")  # the built-in agent role
    desk.add_agent("rae", "Rae Admin", role="admin")
    before = _reads(desk, ticket)
    with pytest.raises(AccessDeniedError, match="privacy"):
        desk.redact(ticket, comment_id, Actor.agent("eve"), reason="gdpr")
    with pytest.raises(AccessDeniedError, match="privacy"):
        desk.erase_contact(ticket.requester_id, Actor.agent("eve"), reason="gdpr")
    desk.deactivate_agent("rae")
    with pytest.raises(AccessDeniedError, match="inactive"):
        desk.redact(ticket, comment_id, Actor.agent("rae"), reason="gdpr")
    assert _reads(desk, ticket) == before
    # A system actor (the CLI's operator) may.
    assert desk.redact(ticket, comment_id, Actor.system("operator"), reason="gdpr").recorded


def test_a_restricted_role_holding_privacy_redacts_only_in_its_groups(tmp_path: Path) -> None:
    config = DeskConfig(
        roles={"dpo": Role(name="dpo", permissions={"read", "privacy"}, restricted=True)}
    )
    with _desk("memory://", tmp_path, config=config) as desk:
        ticket, comment_id = _secret_ticket(desk)
        desk.add_group("l1", "Service desk")
        desk.add_agent("dee", "Dee DPO", groups=["l1"], role="dpo")
        with pytest.raises(AccessDeniedError):
            desk.redact(ticket, comment_id, Actor.agent("dee"), reason="gdpr")
        desk.transfer(ticket, ANN, group="l1")
        assert desk.redact(ticket, comment_id, Actor.agent("dee"), reason="gdpr").recorded


def test_a_closed_ticket_is_redacted_too(desk: Helpdesk) -> None:
    ticket, comment_id = _secret_ticket(desk)
    desk.close(ticket, ANN)
    desk.redact(ticket, comment_id, ANN, reason="gdpr", attachments=False)
    assert desk.ticket(ticket).is_closed
    (comment, _) = desk.conversation(ticket)
    assert comment.redacted and len(comment.attachments) == 1
    assert lifecycle.replay(desk.history(ticket)) == desk.ticket(ticket)


def test_a_comment_merged_into_another_ticket_is_redacted_there_too(desk: Helpdesk) -> None:
    source, comment_id = _secret_ticket(desk)
    target = desk.open_ticket(ANN, requester="bob@example.com", subject="Other", body="hello")
    desk.merge(source, target, ANN)
    assert any(isinstance(e, MergeReceived) for e in desk.history(target))
    assert MARK in _reads(desk, desk.ticket(target.id))
    desk.redact(source, comment_id, ANN, reason="gdpr")
    desk.redact(source, desk.conversation(source)[1].id, ANN, reason="gdpr")
    target = desk.ticket(target.id)
    assert MARK not in _reads(desk, target)
    assert lifecycle.replay(desk.history(target)) == target


def test_a_comment_redacted_before_the_relay_ran_is_never_sent(
    store_url: str, tmp_path: Path
) -> None:
    with _desk(store_url, tmp_path) as desk:
        ticket = desk.open_ticket(ANN, requester="bob@example.com", subject="Hi", body="hello")
        ticket = desk.reply(ticket, ANN, f"Your code is {MARK}")
        reply = desk.conversation(ticket)[-1]
        desk.redact(ticket, reply.id, ANN, reason="sent by mistake")
        desk.deliver_pending()
        channel = desk.channels["email"]
        assert isinstance(channel, RecordingChannel)
        assert [m.comment_id for m in channel.messages if m.comment_id == reply.id] == []
        assert not any(MARK in m.body or REDACTED in m.body for m in channel.messages)


def test_a_pending_delivery_of_a_redacted_comment_is_given_up() -> None:
    message = OutboundMessage(
        ticket_id="t1",
        ticket_number=1,
        subject="[#1] Hi",
        body=f"Your code is {MARK}",
        comment_id="c9",
        author_name="Ann",
        to=(Recipient("contact", "c1", "Bob", "bob@example.com"),),
        sent_at=START,
        idempotency_key="t1-4-reply",
    )
    pending = Delivery(
        id="t1-4-reply",
        ticket_id="t1",
        source=7,
        kind="reply",
        channel="email",
        message=message,
        next_attempt_at=START,
        created_at=START,
        updated_at=START,
    )
    later = START + timedelta(hours=1)
    kwargs: dict[str, Any] = {
        "comment_id": "c9",
        "event_ids": frozenset({"t1-4"}),
        "texts": (),
        "shas": frozenset(),
        "now": later,
    }
    given_up = redact_delivery(pending, **kwargs)
    assert given_up is not None
    assert (given_up.state, given_up.last_error, given_up.message.body) == (
        DeliveryState.DEAD,
        GIVEN_UP,
        REDACTED,
    )
    assert given_up.updated_at == later
    # Another comment's delivery is left alone, unless it quotes the text.
    other = attrs.evolve(pending, id="t1-6-reply", message=attrs.evolve(message, comment_id="c8"))
    assert redact_delivery(other, **kwargs) is None
    quoting = redact_delivery(other, **{**kwargs, "texts": (MARK,)})
    assert quoting is not None and MARK not in serialize.dumps(quoting)


def test_a_store_without_redaction_is_told_so(tmp_path: Path) -> None:
    class PlainStore(MemoryStore):
        capabilities = MemoryStore.capabilities - {"redaction", "purge"}

    with Helpdesk(PlainStore(), entry_points=False) as desk:
        desk.add_agent("ann", "Ann Agent", role="admin")
        ticket = desk.open_ticket(ANN, requester="bob@example.com", subject="Hi", body="x")
        with pytest.raises(ConfigError, match="redaction"):
            desk.redact(ticket, desk.conversation(ticket)[0].id, ANN, reason="gdpr")
        with pytest.raises(ConfigError, match="purge"):
            desk.purge_closed(timedelta(days=1))


# ---------------------------------------------------------------- the SQLite file


def _file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_on_sqlite_the_bytes_are_gone_from_the_file_after_the_cleanup(tmp_path: Path) -> None:
    db = tmp_path / "desk.db"
    with _desk(f"sqlite:///{db}", tmp_path) as desk:
        ticket, comment_id = _secret_ticket(desk)
        for _ in range(3):  # more pages, and older versions of them in the log
            ticket = desk.note(ticket, ANN, "padding " * 200)
        assert MARK.encode() in _file_bytes(db)
        desk.redact(ticket, comment_id, ANN, reason="gdpr")
        desk.redact(ticket, desk.conversation(ticket)[1].id, ANN, reason="gdpr")
        desk.compact()
        # Read while the desk is open: the -wal file exists, and is empty after the cleanup.
        assert MARK.encode() not in _file_bytes(db)
        assert MARK not in _reads(desk, ticket)
        assert lifecycle.replay(desk.history(ticket)) == desk.ticket(ticket)
        ticket = desk.note(ticket, ANN, "still writable")
    assert MARK.encode() not in _file_bytes(db)


# ---------------------------------------------------------------- erasure


def test_erasing_a_contact_redacts_its_comments_and_leaves_a_tombstone(desk: Helpdesk) -> None:
    contact = desk.create_contact("Bob", emails=["bob@example.com"], phone="+33 1 23 45 67 89")
    bob = Actor.contact(contact.id)
    ticket = desk.open_ticket(
        bob, requester=contact, subject="Card", body=f"Mine: {MARK}", attachments=[_file(b"id")]
    )
    ticket = desk.reply(ticket, ANN, "We are on it")
    ticket = desk.requester_reply(ticket, f"And again {MARK}")
    desk.deliver_pending()
    other = desk.open_ticket(ANN, requester="carol@example.com", subject="Carol's", body="hi")
    other = desk.follow(other, ANN, bob)
    other = desk.requester_reply(other, f"Bob chimes in: {MARK}", actor=bob)
    done = desk.erase_contact(contact, ANN, reason="GDPR request 42")
    assert set(done.tickets) == {ticket.id, other.id}
    assert len(done.comments) == 3  # the opening message, its reply, and the one as a follower
    tombstone = desk.contact(contact.id)
    assert (tombstone.name, tombstone.emails, tombstone.erased) == (ERASED_NAME, (), True)
    with pytest.raises(NotFoundError):
        desk.contact_by_email("bob@example.com")
    for found in (desk.ticket(ticket.id), desk.ticket(other.id)):
        reads = _reads(desk, found)
        assert MARK not in reads and "bob@example.com" not in reads
        (erased,) = [e for e in desk.history(found) if isinstance(e, ContactErased)]
        assert (erased.contact_id, erased.actor, erased.reason) == (
            contact.id,
            ANN,
            "GDPR request 42",
        )
        assert lifecycle.replay(desk.history(found)) == found
    # Erasing again records nothing more.
    again = desk.erase_contact(contact.id, ANN, reason="again")
    assert again.comments == ()
    assert sum(isinstance(e, ContactErased) for e in desk.history(ticket.id)) == 1
    # Agents' comments stay: Carol's opening message is not Bob's.
    assert desk.conversation(other)[0].body == "hi"
    # The same address later is a new contact.
    assert desk.contact_for_email("bob@example.com").id != contact.id


def test_erasing_discards_the_contacts_suspended_messages(tmp_path: Path) -> None:
    with _desk("memory://", tmp_path) as desk:
        contact = desk.create_contact("Bob", emails=["bob@example.com"])
        message = InboundMessage(
            channel="email",
            sender_address="bob@example.com",
            sender_name="Bob",
            subject="Out of office",
            body=f"Away: {MARK}",
            received_at=START,
            external_id="m1@example.com",
            headers={"auto-submitted": "auto-replied"},
        )
        assert desk.receive(message).kind.value == "suspended"
        done = desk.erase_contact(contact, ANN, reason="gdpr")
        assert done.suspended == 1
        assert desk.suspended() == []


# ---------------------------------------------------------------- purge


def test_purge_deletes_the_tickets_closed_before_the_cutoff(store_url: str, tmp_path: Path) -> None:
    clock = FrozenClock(START)
    with _desk(store_url, tmp_path, clock=clock) as desk:
        old = desk.open_ticket(
            ANN, requester="bob@example.com", subject="Old", body="x", attachments=[_file(b"old")]
        )
        shared = _file(b"shared")
        desk.note(old, ANN, "shared file", attachments=[shared])
        desk.close(old, ANN)
        clock.advance(days=400)
        recent = desk.open_ticket(ANN, requester="bob@example.com", subject="Recent", body="y")
        desk.close(recent, ANN)
        keeper = desk.open_ticket(
            ANN, requester="bob@example.com", subject="Open", body="z", attachments=[shared]
        )
        dry = desk.purge_closed(timedelta(days=365), dry_run=True)
        assert (dry.dry_run, dry.tickets) == (True, (old.id,))
        assert desk.ticket(old.id) == desk.ticket(old.id)  # still there
        report = desk.purge_closed(timedelta(days=365))
        assert (report.tickets, report.kept, report.blobs) == ((old.id,), (), 1)
        with pytest.raises(NotFoundError):
            desk.ticket(old.id)
        with pytest.raises(NotFoundError):
            desk.ticket(old.number)
        assert desk.deliveries(ticket=old.id) == []
        assert all(c.event.ticket_id != old.id for c in desk.store.changes())  # type: ignore[attr-defined]
        # The file another ticket uses stays; the next ticket gets a new number.
        assert desk.attachment_bytes(keeper, desk.conversation(keeper)[0].attachments[0].id)
        assert desk.open_ticket(ANN, requester="x@example.com", subject="N", body="n").number == 4
        desk.compact()
        assert desk.ticket(recent.id).is_closed


def test_purge_refuses_a_bad_age(desk: Helpdesk) -> None:
    for bad in (timedelta(0), timedelta(days=-1), 365):
        with pytest.raises(ValidationError):
            desk.purge_closed(bad)  # type: ignore[arg-type]


def test_redaction_refuses_what_is_already_redacted_in_the_domain() -> None:
    from helpkit import redaction

    with Helpdesk(entry_points=False) as desk:
        desk.add_agent("ann", "Ann Agent", role="admin")
        ticket = desk.open_ticket(ANN, requester="bob@example.com", subject="Hi", body="x")
        comment = desk.conversation(ticket)[0]
        desk.redact(ticket, comment.id, ANN, reason="gdpr")
        with pytest.raises(InvalidTransitionError):
            redaction.decide(
                desk.ticket(ticket),
                desk.history(ticket),
                comment.id,
                actor=ANN,
                at=START,
                reason="again",
                attachments=True,
            )


def test_two_threads_redacting_one_comment_record_it_once(tmp_path: Path) -> None:
    with _desk("memory://", tmp_path) as desk:
        ticket, comment_id = _secret_ticket(desk)
        start = threading.Barrier(4)
        done: list[bool] = []

        def redact() -> None:
            start.wait()
            done.append(desk.redact(ticket, comment_id, ANN, reason="gdpr").recorded)

        threads = [threading.Thread(target=redact) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(done) == [False, False, False, True]
        records = [e for e in desk.history(ticket) if isinstance(e, CommentRedacted)]
        assert len(records) == 1
        assert MARK not in desk.conversation(ticket)[0].body


def test_an_erased_contact_has_no_customer_view(desk: Helpdesk) -> None:
    contact = desk.create_contact("Bob", emails=["bob@example.com"])
    desk.open_ticket(ANN, requester=contact, subject="Hi", body="hello")
    assert len(desk.for_contact(contact.id).tickets().items) == 1
    desk.erase_contact(contact, ANN, reason="GDPR request")
    with pytest.raises(NotFoundError, match="erased"):
        desk.for_contact(contact.id)
