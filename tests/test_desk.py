"""The Helpdesk facade, driven as an application developer would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import pytest

from helpkit import (
    Actor,
    ConflictError,
    CustomField,
    DeskConfig,
    FieldKind,
    Helpdesk,
    HelpkitError,
    InvalidTransitionError,
    MergeError,
    NaiveDatetimeError,
    NotFoundError,
    Priority,
    ReadOnlyTicketError,
    StatusCategory,
    ValidationError,
)
from helpkit.channels.recording import RecordingChannel
from helpkit.errors import StoreError
from helpkit.events import MergedInto, MergeReceived
from helpkit.fields import FieldSet
from helpkit.ports import TicketChange
from helpkit.stores.memory import MemoryStore
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import LinkKind


@pytest.fixture
def desk(helpkit_desk: Helpdesk, helpkit_agent: Actor) -> Helpdesk:
    helpkit_desk.add_group("l2", "Technicians", tier=2)
    helpkit_desk.add_agent("tech", "Tess Tech", email="tess@helpdesk.example", groups=["l2"])
    org = helpkit_desk.create_organization(
        "Acme Ltd", domains=["acme.example"], organization_id="acme"
    )
    helpkit_desk.create_contact("Bob Ñúñez", emails=["Bob@Acme.example"], contact_id="bob")
    helpkit_desk.create_contact("Carol Smith", emails=["carol@acme.example"], contact_id="carol")
    helpkit_desk.create_contact("Dan Other", emails=["dan@other.example"], contact_id="dan")
    assert org.id == "acme"
    return helpkit_desk


AGENT = Actor.agent("agent-1")
BOB = Actor.contact("bob")


def _open(desk: Helpdesk, **kwargs: object) -> str:
    defaults: dict[str, object] = {
        "requester": "bob",
        "subject": "Printer on fire",
        "body": "Help!",
    }
    defaults.update(kwargs)
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(minutes=1)  # distinct creation times make orders deterministic
    return desk.open_ticket(BOB, **defaults).id  # type: ignore[arg-type]


def test_open_ticket_numbers_priority_and_first_message(desk: Helpdesk) -> None:
    first = desk.open_ticket(
        BOB,
        requester="bob",
        subject="  Printer   on fire ",
        body="Help",
        impact="high",
        urgency="high",
    )
    second = desk.open_ticket(BOB, requester="bob", subject="Second", body="Again")
    assert (first.number, second.number) == (1, 2)
    assert first.subject == "Printer on fire"
    assert first.priority is Priority.P1 and second.priority is Priority.P3
    assert first.category is StatusCategory.NEW
    assert first.organization_id == "acme"  # from the contact, found by email domain
    assert desk.ticket(1) == desk.ticket("#1") == desk.ticket(first.id)
    [comment] = desk.conversation(first)
    assert comment.public and comment.body == "Help" and comment.author == BOB


def test_refused_open_spends_no_ticket_number(desk: Helpdesk) -> None:
    with pytest.raises(ValidationError):
        desk.open_ticket(BOB, requester="bob", subject="   ")
    with pytest.raises(ValidationError):
        desk.open_ticket(BOB, requester="bob", subject="x", tags=[""])
    assert desk.open_ticket(BOB, requester="bob", subject="ok").number == 1
    assert len(desk.tickets()) == 1


def test_open_for_unknown_email_creates_the_contact(desk: Helpdesk) -> None:
    ticket = desk.open_ticket(AGENT, requester="New.Person@acme.example", subject="Hi")
    contact = desk.contact_by_email("new.person@ACME.example")
    assert ticket.requester_id == contact.id
    assert contact.organization_id == "acme"


def test_public_reply_reaches_requester_and_followers_but_notes_do_not(
    desk: Helpdesk, helpkit_channel: RecordingChannel
) -> None:
    ticket = _open(desk, cc=["carol"])
    desk.follow(ticket, AGENT, Actor.agent("tech"))
    [opening] = helpkit_channel.messages  # bob's first message went to carol (CC) only
    assert [r.address for r in opening.to] == ["carol@acme.example"]
    desk.reply(ticket, AGENT, "We are on it")
    message = helpkit_channel.messages[-1]
    assert {r.address for r in message.to} == {
        "bob@acme.example",
        "carol@acme.example",
        "tess@helpdesk.example",
    }
    assert message.subject == "[#1] Printer on fire"
    desk.note(ticket, AGENT, "Secret: it is the toner")
    assert len(helpkit_channel.messages) == 2
    assert desk.ticket(ticket).internal_notes == 1
    public = desk.conversation(ticket, include_internal=False)
    assert [c.body for c in public] == ["Help!", "We are on it"]


def test_agent_reply_opens_and_can_set_pending(desk: Helpdesk) -> None:
    ticket = _open(desk)
    assert desk.reply(ticket, AGENT, "Looking").status == "open"
    assert desk.reply(ticket, AGENT, "Need logs", status="pending").status == "pending"


@pytest.mark.parametrize("status", ["pending", "solved"])
def test_requester_reply_reopens_pending_and_solved(desk: Helpdesk, status: str) -> None:
    ticket = _open(desk)
    desk.reply(ticket, AGENT, "Please confirm", status=status)
    reopened = desk.requester_reply(ticket, "Still broken")
    assert reopened.status == "open"
    assert reopened.solved_at is None


def test_requester_reply_to_on_hold_keeps_hold(desk: Helpdesk) -> None:
    ticket = _open(desk)
    desk.set_status(ticket, AGENT, "on_hold", reason="waiting for vendor")
    assert desk.requester_reply(ticket, "any news?").status == "on_hold"


def test_closed_ticket_is_read_only_and_a_message_makes_a_follow_up(
    desk: Helpdesk, helpkit_clock: FrozenClock
) -> None:
    ticket = _open(desk, tags=["printer"])
    desk.resolve(ticket, AGENT, comment="Replaced the toner")
    closed = desk.close(ticket, AGENT)
    assert closed.category is StatusCategory.CLOSED and closed.closed_at is not None
    before = desk.history(ticket)
    commands: list[Callable[[], object]] = [
        lambda: desk.reply(ticket, AGENT, "x"),
        lambda: desk.note(ticket, AGENT, "x"),
        lambda: desk.tag(ticket, AGENT, "x"),
        lambda: desk.assign(ticket, AGENT, agent="agent-1"),
        lambda: desk.prioritize(ticket, AGENT, impact="high"),
        lambda: desk.set_status(ticket, AGENT, "open"),
    ]
    for command in commands:
        with pytest.raises(ReadOnlyTicketError):
            command()
    with pytest.raises(InvalidTransitionError):
        desk.reopen(ticket, AGENT)
    assert desk.history(ticket) == before
    helpkit_clock.advance(days=3)
    follow_up = desk.requester_reply(ticket, "It is on fire again")
    assert follow_up.id != ticket and follow_up.number == 2
    assert {(link.kind, link.target_id) for link in follow_up.links} == {
        (LinkKind.FOLLOW_UP_OF, ticket)
    }
    assert follow_up.tags == frozenset({"printer"})
    assert desk.history(ticket) == before


def test_status_transitions_follow_categories(desk: Helpdesk) -> None:
    ticket = _open(desk)
    desk.resolve(ticket, AGENT)
    with pytest.raises(InvalidTransitionError):
        desk.set_status(ticket, AGENT, "pending")
    with pytest.raises(InvalidTransitionError):
        desk.set_status(ticket, AGENT, "new")
    with pytest.raises(InvalidTransitionError):
        desk.set_status(ticket, AGENT, "merged")
    with pytest.raises(ValidationError):
        desk.set_status(ticket, AGENT, "no-such-status")
    assert desk.reopen(ticket, AGENT, reason="customer disagreed").status == "open"
    unchanged = desk.ticket(ticket)
    assert desk.set_status(ticket, AGENT, "open") == unchanged  # same status: no event


def test_assign_and_transfer(desk: Helpdesk) -> None:
    ticket = _open(desk)
    assigned = desk.assign(ticket, AGENT, agent="agent-1")
    assert (assigned.assignee_id, assigned.group_id) == ("agent-1", "l1")
    with pytest.raises(ValidationError):
        desk.assign(ticket, AGENT, agent="tech", group="l1")  # tech is not in l1
    moved = desk.transfer(ticket, AGENT, group="l2", reason="needs a technician")
    assert (moved.assignee_id, moved.group_id) == (None, "l2")
    event = desk.history(ticket)[-1]
    assert (
        getattr(event, "transfer", False) and getattr(event, "reason", "") == "needs a technician"
    )
    taken = desk.assign(ticket, Actor.agent("tech"), agent="tech")
    assert (taken.assignee_id, taken.group_id) == ("tech", "l2")
    regrouped = desk.assign(ticket, AGENT, group="l1")
    assert (regrouped.assignee_id, regrouped.group_id) == (None, "l1")
    with pytest.raises(NotFoundError):
        desk.assign(ticket, AGENT, agent="ghost")


def test_priority_recomputed_from_matrix(desk: Helpdesk) -> None:
    ticket = _open(desk, impact="low", urgency="low")
    assert desk.ticket(ticket).priority is Priority.P5
    assert desk.prioritize(ticket, AGENT, urgency="high").priority is Priority.P3
    assert desk.prioritize(ticket, AGENT, impact="high").priority is Priority.P1


def test_tags_fields_links(desk: Helpdesk) -> None:
    desk_fields = DeskConfig(
        fields=FieldSet(
            [
                CustomField(name="product", kind=FieldKind.CHOICE, choices=("printer", "laptop")),
                CustomField(name="seats", kind=FieldKind.INTEGER),
            ]
        )
    )
    other = Helpdesk(store=desk.store, config=desk_fields, clock=desk.clock, entry_points=False)
    ticket = _open(other, custom_fields={"product": "printer"})
    assert other.tag(ticket, AGENT, "Hardware", "on site").tags == {"hardware", "on_site"}
    assert other.untag(ticket, AGENT, "hardware").tags == {"on_site"}
    updated = other.set_fields(ticket, AGENT, {"seats": 3, "product": None})
    assert dict(updated.custom_fields) == {"seats": 3}
    with pytest.raises(ValidationError):
        other.set_fields(ticket, AGENT, {"seats": "three"})
    with pytest.raises(ValidationError):
        other.set_fields(ticket, AGENT, {"colour": "red"})
    child = _open(other, subject="Child")
    other.link(child, AGENT, ticket, "child_of")
    assert {(x.kind, x.target_id) for x in other.ticket(child).links} == {
        (LinkKind.CHILD_OF, ticket)
    }
    assert {(x.kind, x.target_id) for x in other.ticket(ticket).links} == {
        (LinkKind.PARENT_OF, child)
    }
    other.unlink(child, AGENT, ticket, "child_of")
    assert not other.ticket(ticket).links and not other.ticket(child).links
    with pytest.raises(ValidationError):
        other.link(ticket, AGENT, ticket)


def test_merge_moves_comments_and_followers(desk: Helpdesk) -> None:
    target = _open(desk, subject="VPN down")
    source = desk.open_ticket(
        Actor.contact("dan"),
        requester="dan",
        subject="vpn broken",
        body="Cannot connect",
        cc=["carol"],
    ).id
    desk.note(source, AGENT, "same as the other one")
    merged_target = desk.merge(source, target, AGENT)
    assert {str(f) for f in merged_target.followers} == {"contact:dan", "contact:carol"}
    bodies = [c.body for c in desk.conversation(target)]
    assert bodies == ["Help!", "Cannot connect", "same as the other one"]
    src = desk.ticket(source)
    assert src.merged_into == target and src.status == "merged" and src.is_closed
    assert isinstance(desk.history(source)[-1], MergedInto)
    assert isinstance(desk.history(target)[-1], MergeReceived)
    # a message to the merged ticket lands on the target
    assert desk.requester_reply(source, "any news?", actor=Actor.contact("dan")).id == target
    assert desk.live_ticket(source).id == target


def test_merge_refusals_leave_everything_untouched(desk: Helpdesk) -> None:
    a, b, c = _open(desk), _open(desk), _open(desk)
    desk.merge(b, c, AGENT)
    closed = _open(desk)
    desk.close(closed, AGENT)
    snapshot = {t: desk.history(t) for t in (a, b, c, closed)}
    with pytest.raises(MergeError):
        desk.merge(a, a, AGENT)
    with pytest.raises(MergeError, match="merge into the ticket it points to"):
        desk.merge(a, b, AGENT)
    with pytest.raises(MergeError):
        desk.merge(a, closed, AGENT)
    with pytest.raises(MergeError):
        desk.merge(b, a, AGENT)
    assert {t: desk.history(t) for t in (a, b, c, closed)} == snapshot


def test_merge_chains_resolve_to_the_live_ticket(desk: Helpdesk) -> None:
    a, b, c = _open(desk), _open(desk), _open(desk)
    desk.merge(a, b, AGENT)
    desk.merge(b, c, AGENT)
    assert desk.live_ticket(a).id == c
    assert desk.requester_reply(a, "hello?").id == c


def test_queries_contacts_and_organizations(desk: Helpdesk, helpkit_clock: FrozenClock) -> None:
    t1 = _open(desk, impact="high", urgency="high")
    helpkit_clock.advance(minutes=1)
    t2 = desk.open_ticket(Actor.contact("dan"), requester="dan", subject="x").id
    t3 = _open(desk, tags=["vip"], impact="high")
    desk.assign(t3, AGENT, agent="agent-1")
    assert [t.id for t in desk.tickets(sort="priority")] == [t1, t3, t2]
    assert [t.id for t in desk.tickets(assignee_ids="agent-1")] == [t3]
    assert [t.id for t in desk.tickets(tags={"vip"})] == [t3]
    assert {t.id for t in desk.tickets(unassigned=True)} == {t1, t2}
    assert {t.id for t in desk.tickets_of_organization("acme")} == {t1, t3}
    assert {t.id for t in desk.tickets_of_contact("dan")} == {t2}
    first = desk.tickets(limit=2, sort="created")
    rest = desk.tickets(limit=2, sort="created", after=first.next_cursor)
    assert [t.id for t in [*first, *rest]] == [t1, t2, t3] and rest.next_cursor is None
    assert [c.id for c in desk.find_contacts("NUNEZ")] == ["bob"]
    assert [c.id for c in desk.find_contacts("jose")] == []
    assert desk.contact_by_email("BOB@acme.example").id == "bob"
    assert [o.id for o in desk.find_organizations("acmé")] == ["acme"]
    assert desk.organization_by_domain("ACME.example").id == "acme"


def test_update_contact_and_organization(desk: Helpdesk) -> None:
    bob = desk.update_contact("bob", name="Bob Nunez", vip=True, organization=None)
    assert bob.version == 2 and bob.vip and bob.organization_id is None
    with pytest.raises(ValidationError):
        desk.update_contact("bob", shoe_size=42)
    with pytest.raises(ValidationError):
        desk.update_contact("bob", emails=["not-an-email"])
    assert desk.contact("bob") == bob
    org = desk.update_organization("acme", region="EMEA", domains=["acme.example", "acme.test"])
    assert org.version == 2 and desk.organization_by_domain("acme.test").id == "acme"
    with pytest.raises(HelpkitError):
        desk.create_contact("Dup", emails=["bob@acme.example"])


def test_refused_commands_change_nothing(desk: Helpdesk) -> None:
    ticket = _open(desk)
    before = desk.history(ticket)
    with pytest.raises(ValidationError):
        desk.reply(ticket, BOB, "contacts cannot use reply")
    with pytest.raises(NotFoundError):
        desk.reply(ticket, Actor.agent("ghost"), "unknown agent")
    with pytest.raises(ValidationError):
        desk.reply(ticket, AGENT, "   ")
    with pytest.raises(NotFoundError):
        desk.reply("no-such-ticket", AGENT, "x")
    assert desk.history(ticket) == before


def test_naive_clock_is_refused() -> None:
    class NaiveClock:
        def now(self) -> datetime:
            return datetime(2026, 1, 1)

    desk = Helpdesk(clock=NaiveClock(), entry_points=False)
    with pytest.raises(NaiveDatetimeError):
        desk.create_organization("X")


def test_stale_write_conflicts(desk: Helpdesk) -> None:
    from helpkit import lifecycle
    from helpkit.ports import TicketChange

    ticket = desk.ticket(_open(desk))
    desk.tag(ticket, AGENT, "first")
    stale = lifecycle.change_tags(ticket, at=desk.now(), actor=AGENT, add=["second"])
    with pytest.raises(ConflictError):
        desk.store.commit([TicketChange(stale.ticket, stale.events, stale.previous_seq)])
    assert desk.ticket(ticket).tags == {"first"}


def test_history_is_the_fold(desk: Helpdesk) -> None:
    from helpkit.lifecycle import replay

    ticket = _open(desk)
    desk.reply(ticket, AGENT, "a", status="pending")
    desk.requester_reply(ticket, "b")
    desk.assign(ticket, AGENT, agent="agent-1")
    desk.resolve(ticket, AGENT)
    events = desk.history(ticket)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert replay(events) == desk.ticket(ticket)


def test_an_agent_saved_with_an_unknown_group_cannot_take_it(desk: Helpdesk) -> None:
    # Store.save_agent does not check groups (Helpdesk.add_agent does): the assignment check
    # still reads the group.
    from helpkit.people import Agent

    desk.store.save_agent(Agent(id="ghosty", name="Ghost", group_ids=("ghost",)))
    with pytest.raises(NotFoundError, match="ghost"):
        _open(desk, assignee="ghosty", group="ghost")
    ticket = _open(desk)
    with pytest.raises(NotFoundError, match="ghost"):
        desk.assign(ticket, AGENT, agent="ghosty")
    assert desk.ticket(ticket).assignee_id is None


def test_clearing_the_group_unassigns_even_a_departed_agent(desk: Helpdesk) -> None:
    ticket = _open(desk, assignee="tech", group="l2")
    store = desk.store
    assert isinstance(store, MemoryStore)
    del store._agents["tech"]  # the host removed the agent's record behind helpkit's back
    cleared = desk.assign(ticket, AGENT, group=None)
    assert (cleared.assignee_id, cleared.group_id) == (None, None)


class _OldProtocolStore(MemoryStore):
    """A store written for the old protocol: commit returns nothing."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        super().commit(changes)
        return None  # type: ignore[return-value]


class _NonNumberingStore(MemoryStore):
    """Stores number-0 tickets as they come, without numbering them."""

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        super().commit([c.with_number(7) for c in changes])
        return list(changes)


@pytest.mark.parametrize("store", [_OldProtocolStore, _NonNumberingStore])
def test_a_store_breaking_the_commit_contract_is_reported(store: type[MemoryStore]) -> None:
    desk = Helpdesk(store(), entry_points=False)
    desk.add_agent("ann", "Ann")
    with pytest.raises(StoreError, match="Store protocol"):
        desk.open_ticket(Actor.agent("ann"), requester="bob@example.com", subject="Hi")
