"""Hypothesis strategies for helpkit values, for your own test suites.

Every strategy takes keyword-only arguments, like Hypothesis' own, and generates values that
helpkit accepts. Tickets are never assembled field by field: :func:`tickets` and
:func:`ticket_histories` open a ticket and apply random commands through
:mod:`helpkit.lifecycle`, so every ticket is a state a real helpdesk can reach and every
history replays cleanly with :func:`helpkit.lifecycle.replay`.

Names and email addresses include accented and non-Latin characters now and then, because
real requesters have them.

This module needs Hypothesis (the ``testing`` extra); the runtime package never imports it.
"""

from __future__ import annotations

import contextlib
import functools
import string
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from helpkit.errors import HelpkitError
from helpkit.events import Event
from helpkit.fields import CustomField, FieldKind, FieldSet, FieldValue
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
from helpkit.people import Contact, Organization
from helpkit.priority import Impact, Priority, PriorityMatrix, Urgency
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

__all__ = [
    "actors",
    "comments",
    "contacts",
    "custom_fields",
    "emails",
    "field_values",
    "impacts",
    "organizations",
    "priorities",
    "priority_matrices",
    "ticket_histories",
    "tickets",
    "urgencies",
]

from helpkit.testing.calendar_strategies import (
    aware_datetimes,
    business_calendars,
    business_durations,
)

__all__ += ["aware_datetimes", "business_calendars", "business_durations"]


# ---------------------------------------------------------------- building blocks

_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
_SAMPLE_NAMES = (
    "José Ñúñez",
    "Zoë Saldaña",
    "Łukasz Żółć",
    "Søren Ødegård",
    "Chloé Dubois",
    "Jürgen Müller",
    "Nguyễn Văn An",
    "Ólafur Arnalds",
    "Renée O'Brien",
    "Ana-María Pérez",
    "李雷",
    "Αλέξανδρος",
    "Alice Smith",
    "Bob",
)
_LOCAL_CHARS = string.ascii_letters + string.digits + "._+-" + "éñüøçÉ"
_CHANNELS = ("email", "web", "chat", "phone", "api")
_TAGS = ("vpn", "billing", "Password Reset", "urgent", "été", "printer", "sso")


def _ident(prefix: str) -> st.SearchStrategy[str]:
    return st.integers(min_value=1, max_value=10**9).map(lambda n: f"{prefix}{n}")


def _instants() -> st.SearchStrategy[datetime]:
    # Hypothesis takes naive bounds and attaches the drawn zone itself.
    return st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2099, 12, 31),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Kolkata")]),
    )


# Drawn in several zones (DST folds and gaps included) but handed out in UTC: wall-clock
# arithmetic in a zone is not real elapsed time, so ``created + delta`` could go backwards.
_INSTANTS = _instants().map(lambda value: value.astimezone(UTC))


def _names() -> st.SearchStrategy[str]:
    letters = st.characters(categories=["L"]) | st.sampled_from("éñüøçÅ -'")
    free = st.text(letters, min_size=1, max_size=30).filter(lambda s: bool(s.strip()))
    return st.sampled_from(_SAMPLE_NAMES) | free


def _text() -> st.SearchStrategy[str]:
    # No NUL and no surrogates: PostgreSQL text and UTF-8 files cannot hold them.
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)


def _domains() -> st.SearchStrategy[str]:
    label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
    tld = st.from_regex(r"[a-z]{2,6}", fullmatch=True)
    return st.builds(
        lambda labels, top: ".".join([*labels, top]),
        st.lists(label, min_size=1, max_size=3),
        tld,
    )


def _check_strategy(name: str, value: object) -> None:
    if value is not None and not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(f"{name}={value!r} must be a Hypothesis strategy or None")


_MAYBE_PHONES = st.none() | st.from_regex(r"\+[1-9][0-9]{6,12}", fullmatch=True)
_MAYBE_LANGUAGES = st.none() | st.sampled_from(["en", "fr", "pt-BR", "de", "es_419"])
_MAYBE_ZONES = st.none() | st.sampled_from(_ZONES)
_MAYBE_SEGMENTS = st.none() | st.sampled_from(["enterprise", "smb", "free"])
_MAYBE_REGIONS = st.none() | st.sampled_from(["emea", "amer", "apac"])
_MAYBE_MESSAGE_IDS = st.none() | _ident("<msg-").map(lambda s: f"{s}@example.com>")
# Free text where the domain takes any text: every code point a store must keep (astral,
# combining, right-to-left, controls) but NUL and lone surrogates, which no store can.
_MAYBE_FREE_TEXT = st.none() | _text()
_LATER = st.timedeltas(timedelta(0), timedelta(days=400))
_DOMAINS = _domains()
_NAMES = _names()
_EMAILS = st.builds(
    lambda user, domain: f"{user}@{domain}",
    st.text(st.sampled_from(_LOCAL_CHARS), min_size=1, max_size=16),
    _DOMAINS,
)


def emails() -> st.SearchStrategy[str]:
    """Email addresses helpkit accepts, sometimes with upper case or accents in the local part.

    helpkit stores them lower-cased, so compare with
    :func:`helpkit.people.normalize_email`.
    """
    return _EMAILS


# ---------------------------------------------------------------- people


def contacts(
    *,
    ids: st.SearchStrategy[str] | None = None,
    organization_ids: st.SearchStrategy[str | None] | None = None,
    with_emails: bool = True,
    names: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Contact]:
    """Valid :class:`~helpkit.people.Contact` values.

    ``ids`` and ``names`` default to varied ids and names (accents, non-Latin scripts);
    ``organization_ids`` defaults to none or some id. With ``with_emails=True`` (the default)
    each contact has one to three addresses; with ``False`` it has none. Ids are not unique
    across draws: use ``st.lists(contacts(), unique_by=lambda c: c.id)`` when you need that.
    """
    _check_strategy("ids", ids)
    _check_strategy("organization_ids", organization_ids)
    _check_strategy("names", names)
    if not isinstance(with_emails, bool):
        raise InvalidArgument(f"with_emails={with_emails!r} must be a bool")
    email_lists = st.lists(_EMAILS, min_size=1, max_size=3) if with_emails else st.just([])
    return _contacts(
        ids if ids is not None else _ident("contact-"),
        organization_ids if organization_ids is not None else st.none() | _ident("org-"),
        email_lists,
        names if names is not None else _NAMES,
    )


@st.composite
def _contacts(
    draw: st.DrawFn,
    ids: st.SearchStrategy[str],
    organization_ids: st.SearchStrategy[str | None],
    email_lists: st.SearchStrategy[list[str]],
    names: st.SearchStrategy[str],
) -> Contact:
    created = draw(_INSTANTS)
    return Contact(
        id=draw(ids),
        name=draw(names),
        emails=draw(email_lists),
        phone=draw(_MAYBE_PHONES),
        language=draw(_MAYBE_LANGUAGES),
        timezone=draw(_MAYBE_ZONES),
        organization_id=draw(organization_ids),
        vip=draw(st.booleans()),
        segment=draw(_MAYBE_SEGMENTS),
        created_at=created,
        updated_at=created + draw(_LATER),
    )


def organizations(
    *,
    ids: st.SearchStrategy[str] | None = None,
    with_domains: bool = True,
    names: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Organization]:
    """Valid :class:`~helpkit.people.Organization` values (one to three domains by default)."""
    _check_strategy("ids", ids)
    _check_strategy("names", names)
    if not isinstance(with_domains, bool):
        raise InvalidArgument(f"with_domains={with_domains!r} must be a bool")
    domain_lists = st.lists(_DOMAINS, min_size=1, max_size=3) if with_domains else st.just([])
    return _organizations(
        ids if ids is not None else _ident("org-"),
        domain_lists,
        names if names is not None else _NAMES,
    )


@st.composite
def _organizations(
    draw: st.DrawFn,
    ids: st.SearchStrategy[str],
    domain_lists: st.SearchStrategy[list[str]],
    names: st.SearchStrategy[str],
) -> Organization:
    created = draw(_INSTANTS)
    return Organization(
        id=draw(ids),
        name=draw(names),
        domains=draw(domain_lists),
        segment=draw(_MAYBE_SEGMENTS),
        region=draw(_MAYBE_REGIONS),
        vip=draw(st.booleans()),
        created_at=created,
        updated_at=created + draw(_LATER),
    )


def actors(
    *,
    kinds: tuple[ActorKind, ...] | None = None,
    ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[Actor]:
    """:class:`~helpkit.tickets.Actor` values of the given ``kinds`` (default: all kinds)."""
    _check_strategy("ids", ids)
    chosen = tuple(ActorKind) if kinds is None else tuple(kinds)
    if not chosen or not all(isinstance(k, ActorKind) for k in chosen):
        raise InvalidArgument(f"kinds={kinds!r} must be a non-empty tuple of ActorKind")
    return st.builds(Actor, st.sampled_from(chosen), ids if ids is not None else _ident("id-"))


def comments(
    *,
    authors: st.SearchStrategy[Actor] | None = None,
    public: bool | None = None,
    ids: st.SearchStrategy[str] | None = None,
    ticket_ids: st.SearchStrategy[str | None] | None = None,
) -> st.SearchStrategy[Comment]:
    """Valid :class:`~helpkit.tickets.Comment` values.

    ``public=None`` (the default) mixes public replies and internal notes. A contact can only
    write public replies, so a contact author always gets a public comment, and
    ``public=False`` draws only agent or system authors.
    """
    _check_strategy("authors", authors)
    _check_strategy("ids", ids)
    _check_strategy("ticket_ids", ticket_ids)
    if public is not None and not isinstance(public, bool):
        raise InvalidArgument(f"public={public!r} must be a bool or None")
    if authors is None:
        kinds = (ActorKind.AGENT, ActorKind.SYSTEM) if public is False else tuple(ActorKind)
        authors = actors(kinds=kinds)
    elif public is False:
        authors = authors.filter(lambda a: a.kind is not ActorKind.CONTACT)
    return _comments(
        authors,
        st.booleans() if public is None else st.just(public),
        ids if ids is not None else _ident("comment-"),
        ticket_ids if ticket_ids is not None else st.none(),
    )


@st.composite
def _comments(
    draw: st.DrawFn,
    authors: st.SearchStrategy[Actor],
    publics: st.SearchStrategy[bool],
    ids: st.SearchStrategy[str],
    ticket_ids: st.SearchStrategy[str | None],
) -> Comment:
    author = draw(authors)
    is_public = draw(publics)
    return Comment(
        id=draw(ids),
        author=author,
        body=draw(_BODIES),
        public=is_public or author.kind is ActorKind.CONTACT,
        channel=draw(_CHANNEL_NAMES),
        created_at=draw(_INSTANTS),
        external_id=draw(_MAYBE_MESSAGE_IDS | _MAYBE_FREE_TEXT),
        in_reply_to=draw(_MAYBE_MESSAGE_IDS | _MAYBE_FREE_TEXT),
        ticket_id=draw(ticket_ids),
    )


# ---------------------------------------------------------------- priority


def impacts() -> st.SearchStrategy[Impact]:
    """Any :class:`~helpkit.priority.Impact`."""
    return st.sampled_from(Impact)


def urgencies() -> st.SearchStrategy[Urgency]:
    """Any :class:`~helpkit.priority.Urgency`."""
    return st.sampled_from(Urgency)


def priorities() -> st.SearchStrategy[Priority]:
    """Any :class:`~helpkit.priority.Priority`."""
    return st.sampled_from(Priority)


@st.composite
def _matrices(draw: st.DrawFn) -> PriorityMatrix:
    # Walk cells from most to least severe; a cell may be no more urgent than the cells that
    # dominate it (one step more severe in impact or urgency). Every monotone matrix is reachable.
    levels = list(Impact), list(Urgency)
    cells: dict[tuple[Impact, Urgency], Priority] = {}
    for i, impact in enumerate(levels[0]):
        for u, urgency in enumerate(levels[1]):
            floor = 1
            if i:
                floor = max(floor, cells[(levels[0][i - 1], urgency)])
            if u:
                floor = max(floor, cells[(impact, levels[1][u - 1])])
            cells[(impact, urgency)] = Priority(draw(st.integers(floor, 5)))
    return PriorityMatrix(cells)


def priority_matrices() -> st.SearchStrategy[PriorityMatrix]:
    """Valid custom :class:`~helpkit.priority.PriorityMatrix` values: complete and monotone."""
    return _matrices()


# ---------------------------------------------------------------- custom fields


def custom_fields(*, kinds: tuple[FieldKind, ...] | None = None) -> st.SearchStrategy[CustomField]:
    """Valid :class:`~helpkit.fields.CustomField` definitions of the given ``kinds``."""
    chosen = tuple(FieldKind) if kinds is None else tuple(kinds)
    if not chosen or not all(isinstance(k, FieldKind) for k in chosen):
        raise InvalidArgument(f"kinds={kinds!r} must be a non-empty tuple of FieldKind")
    return _custom_fields(st.sampled_from(chosen))


@st.composite
def _custom_fields(draw: st.DrawFn, kinds: st.SearchStrategy[FieldKind]) -> CustomField:
    kind = draw(kinds)
    wants_choices = kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE)
    choices = (
        draw(st.lists(_text().filter(bool), min_size=1, max_size=5, unique=True))
        if wants_choices
        else []
    )
    return CustomField(
        name=draw(st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)),
        kind=kind,
        choices=tuple(choices),
        required=draw(st.booleans()),
    )


def field_values(field: CustomField) -> st.SearchStrategy[FieldValue]:
    """Values that ``field.validate`` accepts, already in their validated form."""
    if not isinstance(field, CustomField):
        raise InvalidArgument(f"field={field!r} must be a CustomField")
    kind = field.kind
    strategy: st.SearchStrategy[FieldValue]
    if kind is FieldKind.TEXT:
        strategy = _text()
    elif kind is FieldKind.INTEGER:
        # 64-bit, so every store can hold it.
        strategy = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    elif kind is FieldKind.NUMBER:
        strategy = st.floats(allow_nan=False, allow_infinity=False)
    elif kind is FieldKind.BOOLEAN:
        strategy = st.booleans()
    elif kind is FieldKind.DATE:
        strategy = st.dates()
    elif kind is FieldKind.CHOICE:
        strategy = st.sampled_from(field.choices)
    else:
        choices = field.choices
        strategy = st.sets(st.sampled_from(choices)).map(
            lambda picked: tuple(c for c in choices if c in picked)
        )
    return strategy


_DEFAULT_FIELDS = FieldSet(
    [
        CustomField(name="product", kind=FieldKind.CHOICE, choices=("vpn", "mail", "crm")),
        CustomField(name="os", kind=FieldKind.MULTI_CHOICE, choices=("linux", "mac", "windows")),
        CustomField(name="asset_tag", kind=FieldKind.TEXT),
        CustomField(name="seats", kind=FieldKind.INTEGER),
        CustomField(name="cost", kind=FieldKind.NUMBER),
        CustomField(name="onsite", kind=FieldKind.BOOLEAN),
        CustomField(name="due", kind=FieldKind.DATE),
    ]
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
_BODIES = st.sampled_from(_SAMPLE_NAMES) | _text().filter(lambda s: bool(s.strip()))
_CHANNEL_NAMES = st.sampled_from(_CHANNELS)
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
