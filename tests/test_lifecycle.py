"""The ticket lifecycle: worked examples of the conversation and merge rules, and a state
machine that throws random (valid and invalid) commands at the pure decisions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
)

from helpkit.errors import (
    HelpkitError,
    InvalidTransitionError,
    MergeError,
    ReadOnlyTicketError,
    ValidationError,
)
from helpkit.events import (
    CommentAdded,
    Event,
    MergedInto,
    MergeReceived,
    StatusChanged,
    TicketOpened,
)
from helpkit.lifecycle import (
    Outcome,
    add_comment,
    apply,
    assign,
    change_followers,
    change_priority,
    change_status,
    change_subject,
    change_tags,
    conversation,
    link,
    merge,
    open_ticket,
    reopen_target,
    replay,
    set_custom_fields,
    unlink,
)
from helpkit.priority import ITIL_MATRIX, Impact, Priority, Urgency
from helpkit.testing.strategies import impacts, urgencies
from helpkit.tickets import (
    DEFAULT_WORKFLOW,
    Actor,
    Comment,
    Link,
    LinkKind,
    StatusCategory,
    Ticket,
)
from test_rule_instants import rule_instants

C = StatusCategory
WF = DEFAULT_WORKFLOW
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Actor.agent("ana")
REQUESTER = Actor.contact("c-1")


def new_ticket(
    ticket_id: str = "t-1", number: int = 1, requester: str = "c-1", **kwargs: object
) -> Outcome:
    return open_ticket(
        ticket_id=ticket_id,
        number=number,
        at=T0,
        actor=Actor.contact(requester),
        subject="  Printer   on fire ",
        requester_id=requester,
        organization_id="org-1",
        impact=Impact.MEDIUM,
        urgency=Urgency.HIGH,
        matrix=ITIL_MATRIX,
        workflow=WF,
        channel="email",
        **kwargs,  # type: ignore[arg-type]
    )


_counter = iter(range(1, 10**9))


def msg(
    author: Actor, *, public: bool = True, at: datetime = T0, ticket_id: str = "t-1"
) -> Comment:
    return Comment(
        id=f"m{next(_counter)}",
        author=author,
        body="Bonjour, ça ne marche toujours pas",
        public=public,
        channel="email",
        created_at=at,
        ticket_id=ticket_id,
    )


def in_status(status: str, ticket: Ticket | None = None) -> Ticket:
    t = ticket if ticket is not None else new_ticket().ticket
    if t.status != status:
        t = change_status(t, "open", at=T0, actor=AGENT, workflow=WF).ticket
        if status != "open":
            t = change_status(t, status, at=T0, actor=AGENT, workflow=WF).ticket
    assert t.status == status
    return t


# ---------------------------------------------------------------- opening


def test_open_ticket() -> None:
    first = msg(REQUESTER)
    out = new_ticket(first_comment=first, tags=["Password Reset", "vpn", "VPN"])
    t = out.ticket
    assert [type(e) for e in out.events] == [TicketOpened, CommentAdded]
    assert out.previous_seq == 0
    assert (t.seq, t.status, t.category) == (2, "new", C.NEW)
    assert t.subject == "Printer on fire"
    assert t.priority is Priority.P2  # medium impact, high urgency
    assert t.tags == frozenset({"password_reset", "vpn"})
    assert (t.public_comments, t.internal_notes) == (1, 0)
    assert t.reference == "#1"
    assert conversation(out.events) == (first,)


def test_open_with_assignee_starts_open() -> None:
    assert new_ticket(assignee_id="ana").ticket.category is C.OPEN


@pytest.mark.parametrize("number", [-1, -3, True])
def test_ticket_numbers_are_positive(number: int) -> None:
    with pytest.raises(ValidationError, match="positive"):
        new_ticket(number=number)


def test_number_zero_leaves_the_number_to_the_store() -> None:
    out = new_ticket(number=0)
    assert out.ticket.number == 0
    opened = out.events[0]
    assert isinstance(opened, TicketOpened) and opened.number == 0


def test_subject_required() -> None:
    with pytest.raises(ValidationError, match="subject"):
        open_ticket(
            ticket_id="t",
            number=1,
            at=T0,
            actor=AGENT,
            subject=" \n",
            requester_id="c",
            organization_id=None,
            impact=Impact.LOW,
            urgency=Urgency.LOW,
            matrix=ITIL_MATRIX,
            workflow=WF,
            channel="web",
        )


# ---------------------------------------------------------------- conversation rules


@pytest.mark.parametrize("status", ["pending", "solved"])
def test_requester_reply_reopens_pending_and_solved(status: str) -> None:
    t = in_status(status)
    out = add_comment(t, msg(REQUESTER), at=T0 + timedelta(hours=1), workflow=WF)
    assert out.ticket.status == "open"
    change = out.events[-1]
    assert isinstance(change, StatusChanged)
    assert (change.old_status, change.status, change.actor) == (status, "open", REQUESTER)
    assert out.ticket.solved_at is None
    assert out.ticket.updated_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize("status", ["new", "open", "on_hold"])
def test_requester_reply_leaves_other_statuses(status: str) -> None:
    t = in_status(status)
    out = add_comment(t, msg(REQUESTER), at=T0, workflow=WF)
    assert out.ticket.status == status
    assert [type(e) for e in out.events] == [CommentAdded]


def test_agent_public_reply_moves_new_to_open_only() -> None:
    t = new_ticket().ticket
    out = add_comment(t, msg(AGENT), at=T0, workflow=WF)
    assert out.ticket.status == "open"
    pending = in_status("pending")
    assert add_comment(pending, msg(AGENT), at=T0, workflow=WF).ticket.status == "pending"


def test_agent_reply_can_set_status() -> None:
    t = new_ticket().ticket
    out = add_comment(t, msg(AGENT), at=T0, workflow=WF, status="pending")
    assert out.ticket.status == "pending"
    with pytest.raises(InvalidTransitionError):
        add_comment(t, msg(AGENT), at=T0, workflow=WF, status="merged")


@pytest.mark.parametrize("status", ["new", "open", "pending", "on_hold", "solved"])
def test_internal_notes_never_change_status(status: str) -> None:
    t = in_status(status)
    out = add_comment(t, msg(AGENT, public=False), at=T0, workflow=WF)
    assert out.ticket.status == status
    assert out.ticket.internal_notes == t.internal_notes + 1
    assert out.ticket.public_comments == t.public_comments


def test_contacts_cannot_write_notes_or_set_status() -> None:
    t = new_ticket().ticket
    with pytest.raises(ValidationError, match="internal notes"):
        add_comment(t, msg(REQUESTER, public=False), at=T0, workflow=WF)
    with pytest.raises(ValidationError, match="status"):
        add_comment(t, msg(REQUESTER), at=T0, workflow=WF, status="open")


def test_solve_close_and_timestamps() -> None:
    t = in_status("open")
    solved = change_status(t, "solved", at=T0 + timedelta(hours=2), actor=AGENT, workflow=WF).ticket
    assert solved.solved_at == T0 + timedelta(hours=2)
    assert reopen_target(solved, WF) == "open"
    closed = change_status(solved, "closed", at=T0 + timedelta(days=4), actor=AGENT, workflow=WF)
    assert closed.ticket.closed_at == T0 + timedelta(days=4)
    assert closed.ticket.solved_at == T0 + timedelta(hours=2)
    with pytest.raises(InvalidTransitionError, match="only solved"):
        reopen_target(t, WF)


def test_same_status_is_a_no_op() -> None:
    t = in_status("pending")
    out = change_status(t, "pending", at=T0, actor=AGENT, workflow=WF)
    assert not out.changed
    assert out.ticket is t
    assert out.previous_seq == t.seq


def test_nothing_returns_to_new_and_solved_cannot_pend() -> None:
    with pytest.raises(InvalidTransitionError):
        change_status(in_status("open"), "new", at=T0, actor=AGENT, workflow=WF)
    with pytest.raises(InvalidTransitionError):
        change_status(in_status("solved"), "pending", at=T0, actor=AGENT, workflow=WF)


# ---------------------------------------------------------------- closed is read-only


def _every_command(t: Ticket, other: Ticket) -> list[Callable[[], object]]:
    return [
        lambda: add_comment(t, msg(REQUESTER), at=T0, workflow=WF),
        lambda: add_comment(t, msg(AGENT, public=False), at=T0, workflow=WF),
        lambda: change_status(t, "open", at=T0, actor=AGENT, workflow=WF),
        lambda: assign(t, at=T0, actor=AGENT, assignee_id="bo", group_id=None),
        lambda: change_priority(t, at=T0, actor=AGENT, matrix=ITIL_MATRIX, impact=Impact.HIGH),
        lambda: change_subject(t, "new subject", at=T0, actor=AGENT),
        lambda: change_tags(t, at=T0, actor=AGENT, add=["x"]),
        lambda: change_followers(t, at=T0, actor=AGENT, add=[Actor.agent("bo")]),
        lambda: set_custom_fields(t, {"seats": 2}, at=T0, actor=AGENT),
        lambda: link(t, other, LinkKind.RELATED, at=T0, actor=AGENT),
        lambda: link(other, t, LinkKind.RELATED, at=T0, actor=AGENT),
    ]


def test_closed_ticket_is_read_only() -> None:
    closed = in_status("closed")
    other = new_ticket("t-2", 2).ticket
    for command in _every_command(closed, other):
        with pytest.raises(ReadOnlyTicketError, match="read-only"):
            command()
    with pytest.raises(ReadOnlyTicketError, match="follow-up"):
        add_comment(closed, msg(REQUESTER), at=T0, workflow=WF)
    with pytest.raises(MergeError, match="closed"):
        merge(closed, other, [], at=T0, actor=AGENT, workflow=WF)


# ---------------------------------------------------------------- merge


def test_merge_moves_comments_and_followers_and_leaves_a_pointer() -> None:
    src_open = new_ticket("t-1", 1, requester="c-1", followers=[Actor.contact("c-cc")])
    source, source_events = src_open.ticket, list(src_open.events)
    reply = add_comment(source, msg(AGENT, ticket_id="t-1"), at=T0, workflow=WF)
    source = reply.ticket
    source_events += reply.events
    target = new_ticket("t-2", 2, requester="c-2").ticket

    moved_comments = conversation(source_events)
    src_out, dst_out = merge(
        source, target, moved_comments, at=T0 + timedelta(hours=1), actor=AGENT, workflow=WF
    )
    merged = src_out.ticket
    assert (merged.status, merged.category, merged.merged_into) == ("merged", C.CLOSED, "t-2")
    assert merged.is_merged
    assert merged.is_closed
    assert merged.closed_at == T0 + timedelta(hours=1)
    (pointer,) = src_out.events
    assert isinstance(pointer, MergedInto)
    assert (pointer.target_id, pointer.target_number, pointer.old_status) == ("t-2", 2, "open")

    (received,) = dst_out.events
    assert isinstance(received, MergeReceived)
    assert (received.source_id, received.source_number) == ("t-1", 1)
    assert [c.id for c in received.comments] == [c.id for c in moved_comments]
    assert all(c.ticket_id == "t-1" for c in received.comments)
    after = dst_out.ticket
    # The source's requester and followers now follow the target.
    assert after.followers == frozenset({Actor.contact("c-1"), Actor.contact("c-cc")})
    assert after.public_comments == target.public_comments + 1
    assert after.status == target.status  # a merge into the target does not change its status
    assert conversation([*dst_out.events]) == received.comments

    with pytest.raises(ReadOnlyTicketError, match="merged"):
        add_comment(merged, msg(REQUESTER), at=T0, workflow=WF)


def test_merge_with_same_requester_adds_no_follower() -> None:
    a = new_ticket("t-1", 1, requester="c-1").ticket
    b = new_ticket("t-2", 2, requester="c-1").ticket
    _, dst = merge(a, b, [], at=T0, actor=AGENT, workflow=WF)
    assert dst.ticket.followers == frozenset()


def test_merge_refusals() -> None:
    a = new_ticket("t-1", 1).ticket
    b = new_ticket("t-2", 2).ticket
    c = new_ticket("t-3", 3).ticket
    with pytest.raises(MergeError, match="itself"):
        merge(a, a, [], at=T0, actor=AGENT, workflow=WF)
    closed = in_status("closed", b)
    with pytest.raises(MergeError, match="closed ticket"):
        merge(a, closed, [], at=T0, actor=AGENT, workflow=WF)
    merged_c = merge(c, a, [], at=T0, actor=AGENT, workflow=WF)[0].ticket
    with pytest.raises(MergeError, match="merge into the ticket it points to"):
        merge(a, merged_c, [], at=T0, actor=AGENT, workflow=WF)
    with pytest.raises(MergeError):
        merge(merged_c, a, [], at=T0, actor=AGENT, workflow=WF)


# ---------------------------------------------------------------- other commands


def test_assign_and_transfer() -> None:
    t = new_ticket().ticket
    out = assign(t, at=T0, actor=AGENT, assignee_id="ana", group_id="l1")
    assert (out.ticket.assignee_id, out.ticket.group_id) == ("ana", "l1")
    assert not assign(out.ticket, at=T0, actor=AGENT, assignee_id="ana", group_id="l1").changed
    with pytest.raises(ValidationError, match="already with"):
        assign(out.ticket, at=T0, actor=AGENT, assignee_id="ana", group_id="l1", transfer=True)
    moved = assign(out.ticket, at=T0, actor=AGENT, assignee_id=None, group_id="l2", transfer=True)
    (event,) = moved.events
    assert (event.previous_assignee_id, event.previous_group_id, event.transfer) == (  # type: ignore[attr-defined]
        "ana",
        "l1",
        True,
    )


def test_priority_recomputed_from_matrix() -> None:
    t = new_ticket().ticket  # medium/high -> P2
    out = change_priority(t, at=T0, actor=AGENT, matrix=ITIL_MATRIX, impact=Impact.HIGH)
    assert out.ticket.priority is Priority.P1
    assert out.events[0].previous_priority is Priority.P2  # type: ignore[attr-defined]
    assert not change_priority(out.ticket, at=T0, actor=AGENT, matrix=ITIL_MATRIX).changed


def test_tags_and_followers() -> None:
    t = new_ticket(tags=["a"]).ticket
    out = change_tags(t, at=T0, actor=AGENT, add=["B c", "a"], remove=["zzz"])
    assert out.ticket.tags == {"a", "b_c"}
    assert not change_tags(out.ticket, at=T0, actor=AGENT, add=["a"]).changed
    with pytest.raises(ValidationError, match="both added and removed"):
        # Asking for both is a contradiction, whether or not the tag is there now (it used to
        # be silently added when absent: the check ran after filtering against current tags).
        change_tags(out.ticket, at=T0, actor=AGENT, add=["zz"], remove=["ZZ"])
    with pytest.raises(ValidationError, match="both added and removed"):
        change_tags(out.ticket, at=T0, actor=AGENT, add=["a"], remove=["a"])
    with pytest.raises(ValidationError, match="tag"):
        change_tags(t, at=T0, actor=AGENT, add=["  "])
    with pytest.raises(ValidationError, match="agents or contacts"):
        change_followers(t, at=T0, actor=AGENT, add=[Actor.system("bot")])
    f = change_followers(t, at=T0, actor=AGENT, add=[Actor.agent("bo"), Actor.contact("c-2")])
    g = change_followers(f.ticket, at=T0, actor=AGENT, remove=[Actor.agent("bo")])
    assert g.ticket.followers == {Actor.contact("c-2")}


def test_custom_fields_set_and_clear() -> None:
    t = new_ticket(custom_fields={"seats": 3, "cost": None}).ticket
    assert dict(t.custom_fields) == {"seats": 3}
    out = set_custom_fields(t, {"seats": 3, "os": ("mac",), "cost": None}, at=T0, actor=AGENT)
    assert out.events[0].values == {"os": ("mac",)}  # type: ignore[attr-defined]
    cleared = set_custom_fields(out.ticket, {"seats": None}, at=T0, actor=AGENT)
    assert dict(cleared.ticket.custom_fields) == {"os": ("mac",)}


def test_links_record_the_inverse() -> None:
    a = new_ticket("t-1", 1).ticket
    b = new_ticket("t-2", 2).ticket
    fwd, back = link(a, b, "parent_of", at=T0, actor=AGENT)
    assert fwd.ticket.links == {Link(LinkKind.PARENT_OF, "t-2")}
    assert back.ticket.links == {Link(LinkKind.CHILD_OF, "t-1")}
    again = link(fwd.ticket, back.ticket, LinkKind.PARENT_OF, at=T0, actor=AGENT)
    assert not again[0].changed
    assert not again[1].changed
    gone = unlink(fwd.ticket, back.ticket, LinkKind.PARENT_OF, at=T0, actor=AGENT)
    assert gone[0].ticket.links == frozenset()
    assert gone[1].ticket.links == frozenset()
    with pytest.raises(ValidationError, match="no parent_of link"):
        unlink(gone[0].ticket, gone[1].ticket, LinkKind.PARENT_OF, at=T0, actor=AGENT)
    with pytest.raises(ValidationError, match="itself"):
        link(a, a, LinkKind.RELATED, at=T0, actor=AGENT)


@pytest.mark.parametrize("kind", ["sibling_of", "", "PARENT_OF"])
def test_unknown_link_kind_is_a_validation_error(kind: str) -> None:
    a = new_ticket("t-1", 1).ticket
    b = new_ticket("t-2", 2).ticket
    with pytest.raises(ValidationError, match="link kind"):
        link(a, b, kind, at=T0, actor=AGENT)
    with pytest.raises(ValidationError, match="link kind"):
        unlink(a, b, kind, at=T0, actor=AGENT)


def test_fold_refuses_out_of_order_events() -> None:
    out = new_ticket(first_comment=msg(REQUESTER))
    opened, commented = out.events
    with pytest.raises(ValidationError, match="needs an opened ticket"):
        apply(None, commented)
    with pytest.raises(ValidationError, match="already open"):
        apply(out.ticket, opened)
    with pytest.raises(ValidationError, match="does not follow"):
        replay([opened, commented, commented])
    other = new_ticket("t-9", 9).ticket
    with pytest.raises(ValidationError, match="applied to"):
        apply(other, commented)
    with pytest.raises(ValidationError, match="at least"):
        replay([])


def test_updated_at_never_goes_back() -> None:
    t = new_ticket().ticket
    earlier = add_comment(t, msg(AGENT), at=T0 - timedelta(hours=1), workflow=WF)
    assert earlier.ticket.updated_at == T0


# ---------------------------------------------------------------- the state machine

STATUS_NAMES = [s.name for s in WF.statuses] + ["bogus"]
LINK_KINDS: list[LinkKind | str] = [*LinkKind, "sibling_of"]


def allowed(current: StatusCategory, target_name: str) -> bool:
    """docs/helpdesk.md's transition rules, independent of the implementation's table."""
    if target_name == WF.merged_status:
        return False
    target = WF.status(target_name).category
    if current is C.CLOSED or target is C.NEW:
        return False
    if current is C.SOLVED:
        return target in (C.OPEN, C.CLOSED)
    return True


class LifecycleMachine(RuleBasedStateMachine):
    """Random commands against several tickets; every outcome is checked against a model."""

    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.state: dict[str, Ticket] = {}
        self.history: dict[str, list[Event]] = {}
        self.seen_updated: dict[str, datetime] = {}
        self.closed_snapshot: dict[str, Ticket] = {}
        self.numbers = iter(range(1, 10**6))
        self.comment_ids = iter(range(1, 10**6))

    # -- helpers

    def comment(self, tid: str, author: Actor, public: bool) -> Comment:
        return Comment(
            id=f"m{next(self.comment_ids)}",
            author=author,
            body="texte — ñ",
            public=public,
            channel="web",
            created_at=self.now,
            ticket_id=tid,
        )

    def attempt(self, command: Callable[[], Outcome | tuple[Outcome, Outcome]]) -> bool:
        """Run a command; a refusal must be a HelpkitError. Record and check what it produced."""
        try:
            result = command()
        except HelpkitError:
            return False  # decisions raise before producing anything: nothing to record
        outcomes = result if isinstance(result, tuple) else (result,)
        for outcome in outcomes:
            tid = outcome.ticket.id
            before = self.state[tid]
            assert outcome.previous_seq == before.seq
            if outcome.events:
                assert not before.is_closed, "a closed ticket changed"
            for offset, event in enumerate(outcome.events, start=1):
                assert (event.ticket_id, event.seq, event.at) == (
                    tid,
                    before.seq + offset,
                    self.now,
                )
                if isinstance(event, StatusChanged):
                    assert (
                        event.old_category is not event.category or event.old_status != event.status
                    )
                    assert allowed(event.old_category, event.status), event
            self.state[tid] = outcome.ticket
            self.history[tid].extend(outcome.events)
        return True

    # -- rules

    @rule(
        target=tickets,
        impact=impacts(),
        urgency=urgencies(),
        assigned=st.booleans(),
        with_comment=st.booleans(),
    )
    def open(self, impact: Impact, urgency: Urgency, assigned: bool, with_comment: bool) -> str:
        number = next(self.numbers)
        tid = f"t-{number}"
        requester = f"c-{number % 3}"
        out = open_ticket(
            ticket_id=tid,
            number=number,
            at=self.now,
            actor=Actor.contact(requester),
            subject=f"Ticket {number}",
            requester_id=requester,
            organization_id=None,
            impact=impact,
            urgency=urgency,
            matrix=ITIL_MATRIX,
            workflow=WF,
            channel="web",
            first_comment=self.comment(tid, Actor.contact(requester), True)
            if with_comment
            else None,
            assignee_id="ana" if assigned else None,
        )
        assert out.ticket.priority is ITIL_MATRIX.priority(impact, urgency)
        assert out.ticket.category is (C.OPEN if assigned else C.NEW)
        self.state[tid] = out.ticket
        self.history[tid] = list(out.events)
        return tid

    @rule(delta=st.timedeltas(min_value=timedelta(hours=-2), max_value=timedelta(days=2)))
    def time_passes(self, delta: timedelta) -> None:
        # Occasionally backwards: clocks of different processes disagree.
        self.now += delta

    @rule(tid=tickets)
    def requester_replies(self, tid: str) -> None:
        before = self.state[tid]
        author = Actor.contact(before.requester_id)
        ok = self.attempt(
            lambda: add_comment(before, self.comment(tid, author, True), at=self.now, workflow=WF)
        )
        assert ok is not before.is_closed
        if ok:
            after = self.state[tid]
            expected = C.OPEN if before.category in (C.PENDING, C.SOLVED) else before.category
            assert after.category is expected
            assert after.public_comments == before.public_comments + 1

    @rule(tid=tickets, public=st.booleans(), status=st.none() | st.sampled_from(STATUS_NAMES))
    def agent_writes(self, tid: str, public: bool, status: str | None) -> None:
        before = self.state[tid]
        ok = self.attempt(
            lambda: add_comment(
                before, self.comment(tid, AGENT, public), at=self.now, workflow=WF, status=status
            )
        )
        if before.is_closed or status == "bogus":
            assert not ok
            return
        after = self.state[tid] if ok else before
        if status is None:
            assert ok
            if public and before.category is C.NEW:
                assert after.category is C.OPEN
            else:
                assert after.status == before.status  # notes never move the status
        else:
            assert ok is (status == before.status or allowed(before.category, status))
            if ok:
                assert after.status == status

    @rule(tid=tickets, status=st.sampled_from(STATUS_NAMES))
    def set_status(self, tid: str, status: str) -> None:
        before = self.state[tid]
        ok = self.attempt(
            lambda: change_status(before, status, at=self.now, actor=AGENT, workflow=WF)
        )
        if before.is_closed or status == "bogus":
            assert not ok
        else:
            assert ok is (status == before.status or allowed(before.category, status))

    @rule(tid=tickets)
    def resolve(self, tid: str) -> None:
        before = self.state[tid]
        ok = self.attempt(
            lambda: change_status(before, "solved", at=self.now, actor=AGENT, workflow=WF)
        )
        assert ok is (before.category not in (C.CLOSED,))
        if ok:
            assert self.state[tid].solved_at is not None

    @rule(tid=tickets)
    def reopen(self, tid: str) -> None:
        before = self.state[tid]

        def command() -> Outcome:
            return change_status(
                before, reopen_target(before, WF), at=self.now, actor=AGENT, workflow=WF
            )

        assert self.attempt(command) is (before.category is C.SOLVED)

    @rule(
        tid=tickets,
        assignee=st.sampled_from([None, "ana", "bo"]),
        group=st.sampled_from([None, "l1", "l2"]),
        transfer=st.booleans(),
    )
    def assign(self, tid: str, assignee: str | None, group: str | None, transfer: bool) -> None:
        before = self.state[tid]
        ok = self.attempt(
            lambda: assign(
                before,
                at=self.now,
                actor=AGENT,
                assignee_id=assignee,
                group_id=group,
                transfer=transfer,
            )
        )
        if ok:
            assert (self.state[tid].assignee_id, self.state[tid].group_id) == (assignee, group)
        elif not before.is_closed:
            assert transfer
            assert (assignee, group) == (before.assignee_id, before.group_id)

    @rule(tid=tickets, impact=st.none() | impacts(), urgency=st.none() | urgencies())
    def reprioritize(self, tid: str, impact: Impact | None, urgency: Urgency | None) -> None:
        before = self.state[tid]
        ok = self.attempt(
            lambda: change_priority(
                before, at=self.now, actor=AGENT, matrix=ITIL_MATRIX, impact=impact, urgency=urgency
            )
        )
        assert ok is not before.is_closed
        after = self.state[tid]
        assert after.priority is ITIL_MATRIX.priority(after.impact, after.urgency)

    @rule(tid=tickets, subject=st.sampled_from(["VPN down", "  ", "Ça coince", "VPN   down"]))
    def edit_subject(self, tid: str, subject: str) -> None:
        before = self.state[tid]
        ok = self.attempt(lambda: change_subject(before, subject, at=self.now, actor=AGENT))
        assert ok is (not before.is_closed and bool(subject.strip()))

    @rule(
        tid=tickets,
        add=st.lists(st.sampled_from(["vpn", "VPN", "été", " ", "x y"]), max_size=2),
        remove=st.lists(st.sampled_from(["vpn", "x_y", "other"]), max_size=2),
    )
    def retag(self, tid: str, add: list[str], remove: list[str]) -> None:
        before = self.state[tid]
        if self.attempt(
            lambda: change_tags(before, at=self.now, actor=AGENT, add=add, remove=remove)
        ):
            assert all(t == t.lower() and " " not in t for t in self.state[tid].tags)

    @rule(
        tid=tickets,
        add=st.lists(
            st.sampled_from([Actor.agent("bo"), Actor.contact("c-7"), Actor.system("bot")]),
            max_size=2,
        ),
        remove=st.lists(st.sampled_from([Actor.agent("bo"), Actor.contact("c-1")]), max_size=2),
    )
    def refollow(self, tid: str, add: list[Actor], remove: list[Actor]) -> None:
        before = self.state[tid]
        self.attempt(
            lambda: change_followers(before, at=self.now, actor=AGENT, add=add, remove=remove)
        )

    @rule(
        tid=tickets,
        values=st.dictionaries(
            st.sampled_from(["seats", "os"]), st.none() | st.sampled_from([1, 2, ("mac",)])
        ),
    )
    def set_fields(self, tid: str, values: dict[str, object]) -> None:
        before = self.state[tid]
        ok = self.attempt(lambda: set_custom_fields(before, values, at=self.now, actor=AGENT))  # type: ignore[arg-type]
        assert ok is not before.is_closed

    @rule(a=tickets, b=tickets, kind=st.sampled_from(LINK_KINDS), remove=st.booleans())
    def relink(self, a: str, b: str, kind: LinkKind | str, remove: bool) -> None:
        ta, tb = self.state[a], self.state[b]
        command = unlink if remove else link
        ok = self.attempt(lambda: command(ta, tb, kind, at=self.now, actor=AGENT))
        if kind == "sibling_of" or a == b or ta.is_closed or tb.is_closed:
            assert not ok
        if ok and not remove:
            k = LinkKind(kind)
            assert Link(k, b) in self.state[a].links
            assert Link(k.inverse, a) in self.state[b].links

    @rule(a=tickets, b=tickets)
    def merge_tickets(self, a: str, b: str) -> None:
        source, target = self.state[a], self.state[b]
        moved = conversation(self.history[a])
        ok = self.attempt(
            lambda: merge(source, target, moved, at=self.now, actor=AGENT, workflow=WF)
        )
        assert ok is (a != b and not source.is_closed and not target.is_closed)
        if ok:
            assert self.state[a].merged_into == b
            assert self.state[a].status == WF.merged_status
            target_comments = {c.id for c in conversation(self.history[b])}
            assert {c.id for c in moved} <= target_comments
            assert source.followers <= self.state[b].followers
            if source.requester_id != target.requester_id:
                assert Actor.contact(source.requester_id) in self.state[b].followers

    # -- invariants

    @invariant()
    def state_is_the_fold_of_the_history(self) -> None:
        for tid, ticket in self.state.items():
            events = self.history[tid]
            assert ticket.seq == len(events)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert replay(events) == ticket
            assert ticket.public_comments + ticket.internal_notes == len(conversation(events))

    @invariant()
    def rule_instants_are_their_definitions(self) -> None:
        # Clocks that go back, merges between tickets of one requester: still the definition.
        for tid, ticket in self.state.items():
            instants = (
                ticket.assigned_at,
                ticket.requester_updated_at,
                ticket.agent_updated_at,
                ticket.unassigned_at,
                ticket.assignee_updated_at,
            )
            assert instants == rule_instants(self.history[tid])

    @invariant()
    def updated_at_is_monotone(self) -> None:
        for tid, ticket in self.state.items():
            assert ticket.updated_at >= self.seen_updated.get(tid, ticket.created_at)
            self.seen_updated[tid] = ticket.updated_at

    @invariant()
    def closed_tickets_never_change(self) -> None:
        for tid, ticket in self.state.items():
            if ticket.is_closed:
                assert self.closed_snapshot.setdefault(tid, ticket) == ticket
                assert ticket.closed_at is not None


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
