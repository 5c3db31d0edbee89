"""Ticket histories for helpkit's Hypothesis strategies: a ticket opened and driven by random
commands through :mod:`helpkit.lifecycle` (public through :mod:`helpkit.testing.strategies`)."""

from __future__ import annotations

import contextlib
import functools
from datetime import datetime, timedelta

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from helpkit.errors import HelpkitError
from helpkit.events import Event
from helpkit.fields import FieldSet, FieldValue
from helpkit.lifecycle import (
    Outcome,
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
    reopen_target,
    replay,
    set_custom_fields,
    unlink,
)
from helpkit.priority import Impact, PriorityMatrix, Urgency
from helpkit.testing._basics import (
    _ATTACHMENT_TUPLES,
    _BODIES,
    _CHANNEL_NAMES,
    _DEFAULT_FIELDS,
    _INSTANTS,
    _MAYBE_FREE_TEXT,
    _MAYBE_MESSAGE_IDS,
    _TAGS,
    _check_strategy,
    _ident,
    actors,
    field_values,
    impacts,
    priority_matrices,
    urgencies,
)
from helpkit.tickets import (
    DEFAULT_WORKFLOW,
    Actor,
    ActorKind,
    Comment,
    LinkKind,
    StatusCategory,
    Ticket,
    Workflow,
)

# ---------------------------------------------------------------- tickets


# Weighted: conversation is common, merging a ticket away (which ends it) is rare.
_COMMANDS = (
    *("agent_reply",) * 4,
    *("requester_reply",) * 2,
    *("note",) * 2,
    *("status",) * 5,
    *("reopen",) * 2,
    *("assign",) * 2,
    *("priority",) * 2,
    "subject",
    *("tags",) * 2,
    *("followers",) * 2,
    *("fields",) * 2,
    *("link",) * 2,
    "unlink",
    "merge_in",
    "merge_into",
)


def _check_options(
    workflow: Workflow,
    matrix: PriorityMatrix | None,
    fields: FieldSet | None,
    min_commands: int,
    max_commands: int,
) -> None:
    if not isinstance(workflow, Workflow):
        raise InvalidArgument(f"workflow={workflow!r} must be a Workflow")
    if matrix is not None and not isinstance(matrix, PriorityMatrix):
        raise InvalidArgument(f"matrix={matrix!r} must be a PriorityMatrix or None")
    if fields is not None and not isinstance(fields, FieldSet):
        raise InvalidArgument(f"fields={fields!r} must be a FieldSet or None")
    for name, value in (("min_commands", min_commands), ("max_commands", max_commands)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidArgument(f"{name}={value!r} must be a non-negative integer")
    if min_commands > max_commands:
        raise InvalidArgument(f"min_commands={min_commands} > max_commands={max_commands}")


def ticket_histories(
    *,
    ids: st.SearchStrategy[str] | None = None,
    workflow: Workflow = DEFAULT_WORKFLOW,
    matrix: PriorityMatrix | None = None,
    fields: FieldSet | None = None,
    min_commands: int = 0,
    max_commands: int = 20,
) -> st.SearchStrategy[list[Event]]:
    """The events of one ticket, oldest first, as a helpdesk would record them.

    A ticket is opened with :func:`helpkit.lifecycle.open_ticket`, then between
    ``min_commands`` and ``max_commands`` random commands (replies, notes, status changes,
    assignment, priority, tags, followers, custom fields, links, merges) are tried; commands
    the lifecycle refuses are skipped, so the history always replays. ``matrix`` defaults to a
    random valid matrix; ``fields`` to a small set with one field of every kind (pass
    ``FieldSet()`` for none). Time moves forward between commands.
    """
    _check_strategy("ids", ids)
    _check_options(workflow, matrix, fields, min_commands, max_commands)
    return _histories(
        ids if ids is not None else _ident("ticket-"),
        workflow,
        st.just(matrix) if matrix is not None else priority_matrices(),
        _DEFAULT_FIELDS if fields is None else fields,
        min_commands,
        max_commands,
    )


def tickets(
    *,
    ids: st.SearchStrategy[str] | None = None,
    workflow: Workflow = DEFAULT_WORKFLOW,
    matrix: PriorityMatrix | None = None,
    fields: FieldSet | None = None,
    min_commands: int = 0,
    max_commands: int = 20,
) -> st.SearchStrategy[Ticket]:
    """Reachable :class:`~helpkit.tickets.Ticket` states: the replay of a :func:`ticket_histories`.

    Takes the same arguments. To get, say, only solved tickets, filter:
    ``tickets().filter(lambda t: t.category is StatusCategory.SOLVED)``.
    """
    return ticket_histories(
        ids=ids,
        workflow=workflow,
        matrix=matrix,
        fields=fields,
        min_commands=min_commands,
        max_commands=max_commands,
    ).map(replay)


# Strategies used while building tickets, made once: building a strategy is far costlier
# than drawing from it, and a history draws hundreds of values.
_AGENT_IDS = st.sampled_from(["agent-1", "agent-2", "agent-3"])
_MAYBE_AGENT_IDS = st.none() | _AGENT_IDS
_MAYBE_GROUPS = st.none() | st.sampled_from(["l1", "l2", "l3"])
_NUMBERS = st.integers(1, 10**6)
_TAG_LISTS = st.lists(st.sampled_from(_TAGS), max_size=3)
_FOLLOWER_LISTS = st.lists(
    actors(kinds=(ActorKind.AGENT, ActorKind.CONTACT), ids=st.sampled_from(["1", "2", "3"])),
    max_size=3,
)
_MAYBE_IMPACTS = st.none() | impacts()
_MAYBE_URGENCIES = st.none() | urgencies()
_LINK_KINDS = st.sampled_from(LinkKind)
_LINK_TARGETS = st.sampled_from(["ticket-a", "ticket-b"])
_STEPS = st.timedeltas(timedelta(0), timedelta(days=3))
_COMMAND_NAMES = st.sampled_from(_COMMANDS)


@functools.cache
def _status_names(workflow: Workflow) -> st.SearchStrategy[str]:
    return st.sampled_from([s.name for s in workflow.statuses])


@functools.cache
def _settle_targets(workflow: Workflow) -> st.SearchStrategy[str | None]:
    # Half the histories end with a deliberate status change, so that waiting and solved
    # states, which later replies tend to leave again, are common among final states.
    names = [
        s.name
        for s in workflow.statuses
        if s.category is not StatusCategory.NEW and s.name != workflow.merged_status
    ]
    return st.none() | st.sampled_from(names)


@functools.cache
def _field_value_maps(fields: FieldSet) -> st.SearchStrategy[dict[str, FieldValue | None]]:
    parts = {
        name: field_values(field) if field.required else st.none() | field_values(field)
        for name, field in fields.fields.items()
    }
    return st.fixed_dictionaries({}, optional=parts).filter(bool)


class _Builder:
    """Applies drawn commands to one ticket, keeping its events."""

    def __init__(
        self,
        draw: st.DrawFn,
        ticket: Ticket,
        events: list[Event],
        workflow: Workflow,
        matrix: PriorityMatrix,
        fields: FieldSet,
        now: datetime,
    ) -> None:
        self.draw = draw
        self.ticket = ticket
        self.events = events
        self.workflow = workflow
        self.matrix = matrix
        self.fields = fields
        self.now = now
        self.counter = 0

    def take(self, outcome: Outcome) -> None:
        self.ticket = outcome.ticket
        self.events.extend(outcome.events)

    def new_id(self, kind: str) -> str:
        self.counter += 1
        return f"{self.ticket.id}-{kind}{self.counter}"

    def agent(self) -> Actor:
        return Actor.agent(self.draw(_AGENT_IDS))

    def comment(self, author: Actor, public: bool) -> Comment:
        return Comment(
            id=self.new_id("c"),
            author=author,
            body=self.draw(_BODIES),
            public=public,
            channel=self.draw(_CHANNEL_NAMES),
            created_at=self.now,
            external_id=self.draw(_MAYBE_MESSAGE_IDS | _MAYBE_FREE_TEXT),
            in_reply_to=self.draw(_MAYBE_MESSAGE_IDS | _MAYBE_FREE_TEXT),
            ticket_id=self.ticket.id,
            attachments=self.draw(_ATTACHMENT_TUPLES),
            original=self.draw(_MAYBE_FREE_TEXT),
        )

    def other_ticket(self, ticket_id: str) -> Ticket:
        return open_ticket(
            ticket_id=ticket_id,
            number=self.draw(_NUMBERS),
            at=self.now,
            actor=self.agent(),
            subject="other",
            requester_id=self.ticket.requester_id if self.draw(st.booleans()) else "contact-other",
            organization_id=None,
            impact=Impact.LOW,
            urgency=Urgency.LOW,
            matrix=self.matrix,
            workflow=self.workflow,
            channel="web",
        ).ticket

    def run_status(self, status: str) -> None:
        ticket, workflow = self.ticket, self.workflow
        self.take(change_status(ticket, status, at=self.now, actor=self.agent(), workflow=workflow))

    def run(self, command: str) -> None:
        draw, ticket, now, workflow = self.draw, self.ticket, self.now, self.workflow
        if command == "agent_reply":
            status = draw(st.none() | _status_names(workflow))
            comment = self.comment(self.agent(), True)
            outcome = add_comment(ticket, comment, at=now, workflow=workflow, status=status)
        elif command == "requester_reply":
            comment = self.comment(Actor.contact(ticket.requester_id), True)
            outcome = add_comment(ticket, comment, at=now, workflow=workflow)
        elif command == "note":
            comment = self.comment(self.agent(), False)
            outcome = add_comment(ticket, comment, at=now, workflow=workflow)
        elif command == "status":
            status = draw(_status_names(workflow))
            outcome = change_status(
                ticket,
                status,
                at=now,
                actor=self.agent(),
                workflow=workflow,
                reason=draw(_MAYBE_FREE_TEXT),
            )
        elif command == "reopen":
            outcome = change_status(
                ticket,
                reopen_target(ticket, workflow),
                at=now,
                actor=Actor.contact(ticket.requester_id),
                workflow=workflow,
            )
        elif command == "assign":
            outcome = assign(
                ticket,
                at=now,
                actor=self.agent(),
                assignee_id=draw(_MAYBE_AGENT_IDS),
                group_id=draw(_MAYBE_GROUPS),
                transfer=draw(st.booleans()),
                reason=draw(_MAYBE_FREE_TEXT),
            )
        elif command == "priority":
            outcome = change_priority(
                ticket,
                at=now,
                actor=self.agent(),
                matrix=self.matrix,
                impact=draw(_MAYBE_IMPACTS),
                urgency=draw(_MAYBE_URGENCIES),
                reason=draw(_MAYBE_FREE_TEXT),
            )
        elif command == "subject":
            outcome = change_subject(ticket, draw(_BODIES), at=now, actor=self.agent())
        elif command == "tags":
            add, remove = draw(_TAG_LISTS), draw(_TAG_LISTS)
            outcome = change_tags(ticket, at=now, actor=self.agent(), add=add, remove=remove)
        elif command == "followers":
            add_f, remove_f = draw(_FOLLOWER_LISTS), draw(_FOLLOWER_LISTS)
            outcome = change_followers(
                ticket, at=now, actor=self.agent(), add=add_f, remove=remove_f
            )
        elif command == "fields":
            if not self.fields.fields:
                return
            values = draw(_field_value_maps(self.fields))
            outcome = set_custom_fields(ticket, values, at=now, actor=self.agent())
        elif command == "link":
            other = self.other_ticket(draw(_LINK_TARGETS))
            outcome = link(ticket, other, draw(_LINK_KINDS), at=now, actor=self.agent())[0]
        elif command == "unlink":
            if not ticket.links:
                return
            # Links do not order (their kinds are enums): sort by value for a stable choice.
            choices = sorted(ticket.links, key=lambda k: (k.kind.value, k.target_id))
            existing = choices[draw(st.integers(0, len(choices) - 1))]
            other = self.other_ticket(existing.target_id)
            outcome = unlink(ticket, other, existing.kind, at=now, actor=self.agent())[0]
        elif command == "merge_in":
            source = self.other_ticket(self.new_id("src"))
            moved = [self.comment(Actor.contact(source.requester_id), True)]
            outcome = merge(source, ticket, moved, at=now, actor=self.agent(), workflow=workflow)[1]
        else:
            target = self.other_ticket(self.new_id("dst"))
            outcome = merge(ticket, target, [], at=now, actor=self.agent(), workflow=workflow)[0]
        self.take(outcome)


_OPENERS_FIRST = st.booleans()
_REQUESTERS = _ident("contact-")
_MAYBE_ORGS = st.none() | _ident("org-")
_MAYBE_FIRST_ASSIGNEE = st.none() | st.just("agent-1")
_MAYBE_FIRST_GROUP = st.none() | st.sampled_from(["l1", "l2"])


@st.composite
def _histories(
    draw: st.DrawFn,
    ids: st.SearchStrategy[str],
    workflow: Workflow,
    matrices: st.SearchStrategy[PriorityMatrix],
    fields: FieldSet,
    min_commands: int,
    max_commands: int,
) -> list[Event]:
    matrix = draw(matrices)
    now = draw(_INSTANTS)
    ticket_id = draw(ids)
    requester = draw(_REQUESTERS)
    opener = Actor.contact(requester) if draw(st.booleans()) else Actor.agent("agent-1")
    first = (
        Comment(
            id=f"{ticket_id}-c0",
            author=opener,
            body="Hello, it does not work.",
            public=True,
            channel="email",
            created_at=now,
            ticket_id=ticket_id,
        )
        if draw(_OPENERS_FIRST)
        else None
    )
    opened = open_ticket(
        ticket_id=ticket_id,
        number=draw(_NUMBERS),
        at=now,
        actor=opener,
        subject=draw(_BODIES),
        requester_id=requester,
        organization_id=draw(_MAYBE_ORGS),
        impact=draw(impacts()),
        urgency=draw(urgencies()),
        matrix=matrix,
        workflow=workflow,
        channel=draw(_CHANNEL_NAMES),
        first_comment=first,
        tags=draw(_TAG_LISTS),
        assignee_id=draw(_MAYBE_FIRST_ASSIGNEE),
        group_id=draw(_MAYBE_FIRST_GROUP),
    )
    builder = _Builder(draw, opened.ticket, list(opened.events), workflow, matrix, fields, now)
    for _ in range(draw(st.integers(min_commands, max_commands))):
        builder.now += draw(_STEPS)
        try:
            builder.run(draw(_COMMAND_NAMES))
        except HelpkitError:
            continue  # refused in this state: a real helpdesk would have said no too
    settle = draw(_settle_targets(workflow))
    if settle is not None and not builder.ticket.is_closed:
        builder.now += draw(_STEPS)
        with contextlib.suppress(HelpkitError):  # e.g. a solved ticket cannot go to pending
            builder.run_status(settle)
    return builder.events
