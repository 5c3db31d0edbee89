"""Conformance cases for commits and optimistic concurrency.

What was committed loads back; stale and repeated writes conflict, and a batch is
written whole or not at all; malformed and forged changes are refused; any valid text
comes back unchanged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import attrs
import pytest

from helpkit import lifecycle
from helpkit.errors import ConflictError, NotFoundError, ValidationError
from helpkit.events import CommentAdded
from helpkit.people import Agent, Group
from helpkit.ports import Capability, Store, TicketChange, TicketReads, missing_members
from helpkit.queries import TicketQuery
from helpkit.testing.conformance.base import SuiteBase
from helpkit.testing.conformance.helpers import (
    _AGENT,
    _contact,
    _note,
    _open,
    _organization,
    _stale_tag,
    _Time,
    change_of,
    forged,
)
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment


class CommitCases(SuiteBase):
    """Commits load back; conflicts and refused changes write nothing."""

    # ------------------------------------------------------------ commit and load

    def test_commit_then_load_returns_what_was_committed(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick(), tags=["vpn"])
        store.commit([change_of(opened)])
        assert store.get_ticket("t1") == opened.ticket
        assert store.get_ticket_by_number(opened.ticket.number) == opened.ticket
        assert store.events("t1") == list(opened.events)

        noted = _note(opened.ticket, time.tick())
        store.commit([change_of(noted)])
        assert store.get_ticket("t1") == noted.ticket
        assert store.get_ticket("t1").seq == len(opened.events) + len(noted.events)
        assert store.events("t1") == list(opened.events + noted.events)
        assert [e.seq for e in store.events("t1")] == list(range(1, noted.ticket.seq + 1))

    def test_tickets_read_together(self, store: Store) -> None:
        """:attr:`Capability.TICKET_READS`: what reading each ticket gives, in the order
        asked (repeats included), the first missing id in that order refused; nothing kept
        from one call to the next. Skipped for stores without it."""
        if Capability.TICKET_READS not in store.capabilities:
            pytest.skip("the store does not declare Capability.TICKET_READS")
        assert missing_members(store, TicketReads) == ()
        reads = cast(TicketReads, store)
        time = _Time()
        opened = [_open(f"t{i}", i, time.tick()) for i in range(1, 4)]
        store.commit([change_of(o) for o in opened])
        assert reads.get_tickets([]) == []
        asked = ["t3", "t1", "t3", "t2"]
        assert reads.get_tickets(asked) == [store.get_ticket(i) for i in asked]
        noted = _note(opened[0].ticket, time.tick())
        store.commit([change_of(noted)])
        assert reads.get_tickets(["t2", "t1"]) == [opened[1].ticket, noted.ticket]
        for ids, missing in (
            (["t1", "nobody", "t\x00"], "nobody"),
            (["t\x00", "nobody"], "t\x00"),
            (["nobody"], "nobody"),
            ([1, "t1"], 1),
        ):
            with pytest.raises(NotFoundError, match=re.escape(f"no ticket with id {missing!r}")):
                reads.get_tickets(cast(Any, ids))
        # Not a sequence of ids: refused as such (a bare string is not read letter by letter).
        for wrong in (None, 5, "t1", b"t1", {"t1"}):
            with pytest.raises(ValidationError, match="ticket ids are a list or tuple"):
                reads.get_tickets(cast(Any, wrong))

    def test_events_after_seq(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        noted = _note(opened.ticket, time.tick())
        store.commit([change_of(opened), change_of(noted)])
        everything = list(opened.events + noted.events)
        for after in range(len(everything) + 2):
            assert store.events("t1", after_seq=after) == everything[after:], after

    def test_event_details_survive_storage(self, store: Store) -> None:
        time = _Time()
        opened = _open(
            "t1",
            1,
            time.tick(),
            tags=["vpn", "urgent"],
            assignee_id="a1",
            group_id="g1",
            organization_id="o1",
        )
        followed = lifecycle.change_followers(
            opened.ticket,
            at=time.tick(),
            actor=_AGENT,
            add=[Actor.contact("c9"), Actor.agent("a2")],
        )
        fields = lifecycle.set_custom_fields(
            followed.ticket, {"asset": "LAPTOP-42", "seats": 3}, at=time.tick(), actor=_AGENT
        )
        store.commit([change_of(opened), change_of(followed), change_of(fields)])
        assert store.get_ticket("t1") == fields.ticket
        assert store.events("t1") == list(opened.events + followed.events + fields.events)

    def test_several_changes_of_one_ticket_in_one_batch(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        noted = _note(opened.ticket, time.tick())
        tagged = lifecycle.change_tags(noted.ticket, at=time.tick(), actor=_AGENT, add=["x"])
        store.commit([change_of(opened), change_of(noted), change_of(tagged)])
        assert store.get_ticket("t1") == tagged.ticket
        assert store.events("t1") == list(opened.events + noted.events + tagged.events)

    def test_a_batch_of_stored_tickets_some_changed_twice(self, store: Store) -> None:
        """A sweep's commit: many stored tickets in one batch, one of them changed twice (its
        second change builds on the first, tags included)."""
        time = _Time()
        opened = [_open(f"t{i}", i, time.tick()) for i in range(1, 5)]
        store.commit([change_of(o) for o in opened])
        first = _note(opened[0].ticket, time.tick())
        tagged = lifecycle.change_tags(opened[1].ticket, at=time.tick(), actor=_AGENT, add=["x"])
        retagged = lifecycle.change_tags(
            tagged.ticket, at=time.tick(), actor=_AGENT, add=["y"], remove=["x"]
        )
        third = _note(opened[2].ticket, time.tick())
        again = _note(first.ticket, time.tick())
        store.commit([change_of(c) for c in (first, tagged, retagged, third, again)])
        assert store.get_ticket("t1") == again.ticket
        assert store.get_ticket("t2") == retagged.ticket
        assert store.get_ticket("t3") == third.ticket
        assert store.get_ticket("t4") == opened[3].ticket
        assert store.events("t1") == list(opened[0].events + first.events + again.events)
        assert store.events("t2") == list(opened[1].events + tagged.events + retagged.events)
        assert [t.id for t in store.query(TicketQuery(tags=["y"]))] == ["t2"]
        assert list(store.query(TicketQuery(tags=["x"]))) == []

    def test_an_empty_batch_writes_nothing(self, store: Store) -> None:
        store.commit([])
        assert store.query(TicketQuery()).items == ()

    def test_a_change_without_events_only_guards_its_seq(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        store.commit([TicketChange(opened.ticket, (), opened.ticket.seq)])
        assert store.get_ticket("t1") == opened.ticket
        assert store.events("t1") == list(opened.events)
        stale = lifecycle.replay(opened.events[:1])
        with pytest.raises(ConflictError):
            store.commit([TicketChange(stale, (), stale.seq)])

    # ------------------------------------------------------------ optimistic concurrency

    def test_stale_expected_seq_conflicts_and_changes_nothing(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        first = _note(opened.ticket, time.tick(), "first writer")
        second = _note(opened.ticket, time.tick(), "second writer, same starting seq")
        store.commit([change_of(first)])
        with pytest.raises(ConflictError):
            store.commit([change_of(second)])
        assert store.get_ticket("t1") == first.ticket
        assert store.events("t1") == list(opened.events + first.events)

    def test_expected_seq_ahead_of_the_store_conflicts(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        ahead = _note(_note(opened.ticket, time.tick()).ticket, time.tick())
        with pytest.raises(ConflictError):
            store.commit([change_of(ahead)])
        assert store.get_ticket("t1") == opened.ticket
        assert store.events("t1") == list(opened.events)

    def test_multi_ticket_commit_is_atomic(self, store: Store) -> None:
        time = _Time()
        a = _open("ta", 1, time.tick())
        b = _open("tb", 2, time.tick())
        store.commit([change_of(a), change_of(b)])
        b_moved = _note(b.ticket, time.tick())
        store.commit([change_of(b_moved)])

        a_change = _note(a.ticket, time.tick())
        b_stale = _note(b.ticket, time.tick())  # built on b's old seq
        with pytest.raises(ConflictError):
            store.commit([change_of(a_change), change_of(b_stale)])
        assert store.get_ticket("ta") == a.ticket, "the first change of a failed batch was written"
        assert store.events("ta") == list(a.events)
        assert store.get_ticket("tb") == b_moved.ticket
        assert store.events("tb") == list(b.events + b_moved.events)

    def test_a_failed_batch_does_not_create_new_tickets(self, store: Store) -> None:
        time = _Time()
        old = _open("t-old", 1, time.tick())
        store.commit([change_of(old)])
        new = _open("t-new", 2, time.tick())
        stale = _stale_tag(old.ticket, time.tick())
        store.commit([change_of(_note(old.ticket, time.tick()))])
        with pytest.raises(ConflictError):
            store.commit([change_of(new), change_of(stale)])
        with pytest.raises(NotFoundError):
            store.get_ticket("t-new")
        with pytest.raises(NotFoundError):
            store.get_ticket_by_number(new.ticket.number)
        assert [t.id for t in store.query(TicketQuery())] == ["t-old"]

    def test_opening_the_same_new_ticket_twice_in_a_batch_conflicts(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        with pytest.raises(ConflictError):
            store.commit([change_of(opened), change_of(opened)])
        with pytest.raises(NotFoundError):
            store.get_ticket("t1")
        assert store.query(TicketQuery()).items == ()

    def test_opening_an_existing_ticket_again_conflicts(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        again = _open("t1", opened.ticket.number, time.tick(), tags=["again"])
        with pytest.raises(ConflictError):
            store.commit([change_of(again)])
        unnumbered = _open("t1", 0, time.tick(), tags=["again"])  # numbered by the store
        with pytest.raises(ConflictError):
            store.commit([change_of(unnumbered)])
        assert store.get_ticket("t1") == opened.ticket
        assert store.events("t1") == list(opened.events)

    def test_concurrent_writers_from_one_seq_exactly_one_wins(self, store: Store) -> None:
        if not self.thread_safe:
            pytest.skip("the suite declares thread_safe = False for this store")
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        writers = 8
        changes = [
            change_of(_note(opened.ticket, time.tick(), f"writer {i}")) for i in range(writers)
        ]
        barrier = threading.Barrier(writers)
        results: list[str] = []
        errors: list[BaseException] = []
        guard = threading.Lock()

        def write(change: TicketChange) -> None:
            barrier.wait()
            try:
                store.commit([change])
                result = "ok"
            except ConflictError:
                result = "conflict"
            except BaseException as exc:  # reported below, with the test's failure
                with guard:
                    errors.append(exc)
                return
            with guard:
                results.append(result)

        threads = [threading.Thread(target=write, args=(c,)) for c in changes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert sorted(results) == ["conflict"] * (writers - 1) + ["ok"]
        stored = store.events("t1")
        assert len(stored) == len(opened.events) + 1
        assert store.get_ticket("t1").seq == len(stored)

    # ------------------------------------------------------------ malformed writes

    def test_malformed_changes_are_refused_and_write_nothing(self, store: Store) -> None:
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        good = _note(opened.ticket, time.tick())
        other = _open("t2", 2, time.tick())
        malformed = {
            "seq gap": TicketChange(good.ticket, good.events, good.previous_seq - 1),
            "state seq is not the last event's": TicketChange(
                opened.ticket, good.events, good.previous_seq
            ),
            "event of another ticket": TicketChange(good.ticket, other.events[:1], 0),
            "events out of order": TicketChange(other.ticket, tuple(reversed(other.events)), 0),
        }
        for reason, change in malformed.items():
            with pytest.raises(ValidationError):
                store.commit([change])
            assert store.get_ticket("t1") == opened.ticket, reason
            assert store.events("t1") == list(opened.events), reason
            with pytest.raises(NotFoundError):
                store.get_ticket("t2")

    def test_forged_values_are_refused_and_write_nothing(self, store: Store) -> None:
        # Values forged past the domain's checks (see helpkit._checks): every store refuses
        # them with ValidationError before writing, so what it holds stays readable.
        time = _Time()
        opened = _open("t1", 1, time.tick())
        store.commit([change_of(opened)])
        note = _note(opened.ticket, time.tick())
        (event,) = note.events
        assert isinstance(event, CommentAdded)
        forgeries = {
            "non-text subject": TicketChange(forged(note.ticket, subject=5), note.events, 1),
            "lone surrogate in a tag": TicketChange(
                forged(note.ticket, tags=frozenset({"ok\udc80"})), note.events, 1
            ),
            "NUL in a body": TicketChange(
                note.ticket,
                (forged(event, comment=forged(event.comment, body="a\x00b")),),
                1,
            ),
            "non-bool public flag": TicketChange(
                note.ticket, (forged(event, comment=forged(event.comment, public="no")),), 1
            ),
            "naive instant": TicketChange(
                forged(note.ticket, updated_at=datetime(2026, 1, 1)),  # noqa: DTZ001
                note.events,
                1,
            ),
        }
        reopened = lifecycle.change_status(
            opened.ticket, "open", at=time.tick(), actor=_AGENT, workflow=DEFAULT_WORKFLOW
        )
        forgeries["non-text reason"] = TicketChange(
            reopened.ticket, tuple(forged(e, reason=5) for e in reopened.events), 1
        )
        for reason, change in forgeries.items():
            with pytest.raises(ValidationError):
                store.commit([change])
            assert store.get_ticket("t1") == opened.ticket, reason
            assert store.events("t1") == list(opened.events), reason
        ann = _contact("c1", "Ann", ["ann@example.com"])
        store.save_contact(ann)
        bad_people: list[tuple[Callable[[Any], None], object]] = [
            (store.save_contact, forged(_contact("c2", "Zed", ["z@example.com"]), vip="yes")),
            (store.save_contact, forged(ann, version=2, name="Ann\udc80")),
            (store.save_contact, forged(_contact("c3", "Ed"), organization_id=7)),
            (store.save_organization, forged(_organization("o1", "Acme"), vip=0)),
            (store.save_agent, forged(Agent(id="a1", name="Ann"), active=None)),
            (store.save_group, forged(Group(id="g1", name="L1"), tier="1")),
            (store.save_contact, "not a contact"),
        ]
        for save, value in bad_people:
            with pytest.raises(ValidationError):
                save(value)
        assert store.find_contacts("") == [ann]
        assert store.find_organizations("") == []
        assert store.list_agents() == []
        assert store.list_groups() == []

    def test_any_valid_text_survives_storage(self, store: Store) -> None:
        # Text at the edges of what the domain accepts: astral, combining, right-to-left,
        # zero-width, control characters and long text all come back unchanged.
        awkward = "Zoë 👩🏽‍💻 e\u0301 שלום \u200b\u202e\x01\t\r\n" + "é" * 2000
        time = _Time()
        opened = _open("t1", 1, time.tick(), subject=awkward, tags=["été", "👍"])
        store.commit([change_of(opened)])
        comment = Comment(
            id="c-awkward",
            author=_AGENT,
            body=awkward,
            public=True,
            channel="email",
            created_at=time.tick(),
            external_id=awkward,
            in_reply_to="<\U0001f600@example.com>",
        )
        replied = lifecycle.add_comment(
            opened.ticket, comment, at=comment.created_at, workflow=DEFAULT_WORKFLOW
        )
        store.commit([change_of(replied)])
        assert store.get_ticket("t1") == replied.ticket
        assert store.events("t1") == [*opened.events, *replied.events]
        person = attrs.evolve(
            _contact("c1", awkward, ["zoë@example.com"]), phone="+33 6 12 34 56 78", vip=True
        )
        store.save_contact(person)
        assert store.get_contact("c1") == person
        assert store.find_contacts("ZOE") == [person]
