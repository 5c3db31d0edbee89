# Over 600 lines: the condition language is one grammar; its parser, its checks of the names
# it uses and its compiled evaluator change together.
"""The condition language: one way to say *when*, shared by triggers, macros, SLA policies and
(later) automations, routing and notification rules.

A condition is a tree: :class:`Compare` compares one *field* of a ticket (or of its requester, its
organization, or the command that changed it) with a value; :class:`AllOf`, :class:`AnyOf` and
:class:`NoneOf` combine conditions; :class:`Since` tests the time since an instant of the ticket
(its creation, its last update, its solving, its assignment or unassignment, the requester's or
an agent's last public comment...), in calendar time or in the business hours of a
named calendar. :func:`parse` reads the plain-data form a TOML file holds, against a
:class:`Vocabulary` (the desk's statuses, custom fields and calendars), so that an unknown
field, operator, status, choice or calendar is refused when the configuration loads, naming it,
instead of a rule that never fires. :meth:`Condition.to_data` writes the same form back.

Pure: no I/O, no clock. What a condition reads is handed in as a :class:`Subject` (the ticket,
"now", and what the caller looked up: the requester and organization when
:attr:`Condition.needs` asks for them; the ticket before the command and the command's events
for a trigger).

The plain-data form::

    {all = [ {field = "priority", le = 2},
             {field = "requester.vip", is = true},
             {any = [ {field = "tags", has_any = ["outage"]},
                      {field = "status", changed_to = "open"} ]},
             {not = {field = "group", is = "tier2"}},
             {since = "updated", at_least = "8h", calendar = "support"} ]}

A list is read as ``all``. Each test is one ``field`` and exactly one operator.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

import attrs

from helpkit._time import parse_duration
from helpkit.calendar import BusinessCalendar
from helpkit.errors import ValidationError
from helpkit.events import EVENT_TYPES, CommentAdded, Event
from helpkit.fields import FieldKind, FieldSet
from helpkit.people import Contact, Organization
from helpkit.priority import Impact, Priority, Urgency
from helpkit.tickets import ActorKind, StatusCategory, Ticket, Workflow

__all__ = [
    "ALWAYS",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "Kind",
    "NoneOf",
    "Since",
    "Subject",
    "Vocabulary",
    "first_match",
    "parse",
]

REQUESTER: Final = "requester"
"""In :attr:`Condition.needs`: the requester's contact must be looked up."""
ORGANIZATION: Final = "organization"
"""In :attr:`Condition.needs`: the requester's organization must be looked up."""
COMMAND: Final = "command"
"""In :attr:`Condition.needs`: the condition reads the command (its events, the ticket before)."""


# ---------------------------------------------------------------- what a condition reads


@attrs.frozen(kw_only=True)
class Subject:
    """The facts a condition is tested against.

    ``before`` is the ticket before the command (``None`` for a command that opened it) and
    ``events`` the command's events: only triggers have them. ``requester`` and
    ``organization`` are the ticket's requester and their organization, looked up by the
    caller when the condition :attr:`~Condition.needs` them.
    """

    ticket: Ticket
    now: datetime
    before: Ticket | None = None
    events: tuple[Event, ...] = ()
    requester: Contact | None = None
    organization: Organization | None = None
    find_requester: Callable[[], Contact | None] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    """Looks the requester up, the first time a condition reads them (instead of
    ``requester``): a rule that fails on the ticket's own fields costs no lookup."""
    find_organization: Callable[[], Organization | None] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    """Looks the organization up, the first time a condition reads it."""
    _memo: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    def person(self) -> Contact | None:
        """The requester (given, or looked up once)."""
        if self.find_requester is None:
            return self.requester
        if "requester" not in self._memo:
            self._memo["requester"] = self.find_requester()
        found: Contact | None = self._memo["requester"]
        return found

    def company(self) -> Organization | None:
        """The requester's organization (given, or looked up once)."""
        if self.find_organization is None:
            return self.organization
        if "organization" not in self._memo:
            self._memo["organization"] = self.find_organization()
        found: Organization | None = self._memo["organization"]
        return found

    @property
    def event_types(self) -> frozenset[str]:
        """The types of the command's events (computed once)."""
        found = self._memo.get("event_types")
        if found is None:
            found = self._memo["event_types"] = frozenset(e.TYPE for e in self.events)
        return found

    @property
    def comment(self) -> CommentAdded | None:
        """The first comment the command added (before any rule's), if any."""
        if "comment" not in self._memo:
            self._memo["comment"] = next(
                (e for e in self.events if isinstance(e, CommentAdded)), None
            )
        return self._memo["comment"]  # type: ignore[no-any-return]


class Kind(enum.Enum):
    """What kind of value a field holds, which decides the operators it takes."""

    TEXT = "text"
    CHOICE = "choice"
    BOOLEAN = "boolean"
    NUMBER = "number"
    DATE = "date"
    SET = "set"


_OPERATORS: Final[Mapping[Kind, frozenset[str]]] = {
    Kind.TEXT: frozenset({"is", "is_not", "in", "not_in", "empty", "contains", "starts_with"}),
    Kind.CHOICE: frozenset({"is", "is_not", "in", "not_in", "empty"}),
    Kind.BOOLEAN: frozenset({"is", "is_not"}),
    Kind.NUMBER: frozenset({"is", "is_not", "in", "not_in", "empty", "lt", "le", "gt", "ge"}),
    Kind.DATE: frozenset({"is", "is_not", "empty", "lt", "le", "gt", "ge"}),
    Kind.SET: frozenset({"has_any", "has_all", "has_none", "empty"}),
}
_CHANGES: Final[Mapping[Kind, frozenset[str]]] = {
    Kind.TEXT: frozenset({"changed", "changed_to", "changed_from"}),
    Kind.CHOICE: frozenset({"changed", "changed_to", "changed_from"}),
    Kind.BOOLEAN: frozenset({"changed", "changed_to", "changed_from"}),
    Kind.NUMBER: frozenset({"changed", "changed_to", "changed_from"}),
    Kind.DATE: frozenset({"changed", "changed_to", "changed_from"}),
    Kind.SET: frozenset({"changed", "added", "removed"}),
}
"""Operators on what the command changed: for triggers only (they compare the ticket before
the command with the ticket after it)."""
_LISTS: Final = frozenset({"in", "not_in", "has_any", "has_all", "has_none", "added", "removed"})
_FLAGS: Final = frozenset({"empty", "changed"})


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class _Field:
    name: str
    kind: Kind
    read: Callable[[Subject, Ticket], object]
    """The field's value on the subject, for its ticket after (or, for changes, before)."""
    value: Callable[[object], object]
    """Checks and normalizes a value a rule compares the field with."""
    needs: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    choices: tuple[str, ...] = ()


def _text(value: object) -> object:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"expected non-empty text; got {value!r:.60}")
    return value.strip()


def _lower_text(value: object) -> object:
    return str(_text(value)).lower()


def _tag(value: object) -> object:
    return "_".join(str(_text(value)).lower().split())


def _boolean(value: object) -> object:
    if not isinstance(value, bool):
        raise ValidationError(f"expected true or false; got {value!r:.60}")
    return value


def _number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"expected a number; got {value!r:.60}")
    return value


def _date(value: object) -> object:
    if isinstance(value, datetime) or not isinstance(value, date | str):
        raise ValidationError(f"expected a date (YYYY-MM-DD); got {value!r:.60}")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(f"expected a date (YYYY-MM-DD); got {value!r:.60}") from None
    return value


def _choice(choices: Iterable[str], normalize: Callable[[object], str] | None = None) -> Any:
    known = tuple(choices)

    def check(value: object) -> object:
        try:
            chosen = normalize(value) if normalize is not None else value
        except ValidationError:
            chosen = None
        if chosen not in known:
            raise ValidationError(f"unknown value {value!r:.60} (known: {', '.join(known)})")
        return chosen

    return check


def _priority(value: object) -> object:
    return int(Priority.coerce(value))


def _ticket(read: Callable[[Ticket], object]) -> Callable[[Subject, Ticket], object]:
    return lambda _subject, ticket: read(ticket)


def _requester(read: Callable[[Contact], object]) -> Callable[[Subject, Ticket], object]:
    def get(subject: Subject, _ticket: Ticket) -> object:
        person = subject.person()
        return None if person is None else read(person)

    return get


def _organization(
    read: Callable[[Organization], object],
) -> Callable[[Subject, Ticket], object]:
    def get(subject: Subject, _ticket: Ticket) -> object:
        company = subject.company()
        return None if company is None else read(company)

    return get


def _domain(contact: Contact) -> object:
    return contact.emails[0].rpartition("@")[2] if contact.emails else None


def _vip(subject: Subject, _ticket: Ticket) -> object:
    person, company = subject.person(), subject.company()
    return bool((person is not None and person.vip) or (company is not None and company.vip))


def _comment(subject: Subject) -> CommentAdded | None:
    """The first comment the command added (before any trigger's)."""
    return subject.comment


def _comment_field(read: Callable[[CommentAdded], object]) -> Callable[[Subject, Ticket], object]:
    def get(subject: Subject, _ticket: Ticket) -> object:
        found = _comment(subject)
        return None if found is None else read(found)

    return get


_KINDS = tuple(k.value for k in ActorKind)


def _builtin_fields(workflow: Workflow) -> dict[str, _Field]:
    statuses = tuple(s.name for s in workflow.statuses)
    levels = tuple(i.value for i in Impact)
    fields = [
        _Field("subject", Kind.TEXT, _ticket(lambda t: t.subject), _text),
        _Field("status", Kind.CHOICE, _ticket(lambda t: t.status), _choice(statuses), (), statuses),
        _Field(
            "category",
            Kind.CHOICE,
            _ticket(lambda t: t.category.value),
            _choice(c.value for c in StatusCategory),
            (),
            tuple(c.value for c in StatusCategory),
        ),
        _Field("priority", Kind.NUMBER, _ticket(lambda t: int(t.priority)), _priority),
        _Field(
            "impact",
            Kind.CHOICE,
            _ticket(lambda t: t.impact.value),
            _choice(levels, lambda v: Impact.coerce(v).value),
            (),
            levels,
        ),
        _Field(
            "urgency",
            Kind.CHOICE,
            _ticket(lambda t: t.urgency.value),
            _choice(levels, lambda v: Urgency.coerce(v).value),
            (),
            levels,
        ),
        _Field("group", Kind.TEXT, _ticket(lambda t: t.group_id), _text),
        _Field("assignee", Kind.TEXT, _ticket(lambda t: t.assignee_id), _text),
        _Field("channel", Kind.TEXT, _ticket(lambda t: t.channel), _text),
        _Field("requester", Kind.TEXT, _ticket(lambda t: t.requester_id), _text),
        _Field("organization", Kind.TEXT, _ticket(lambda t: t.organization_id), _text),
        _Field("tags", Kind.SET, _ticket(lambda t: t.tags), _tag),
        _Field("number", Kind.NUMBER, _ticket(lambda t: t.number), _number),
        _Field("public_comments", Kind.NUMBER, _ticket(lambda t: t.public_comments), _number),
        _Field("internal_notes", Kind.NUMBER, _ticket(lambda t: t.internal_notes), _number),
        _Field("sla_policy", Kind.TEXT, _ticket(lambda t: t.sla_policy), _text),
        _Field("vip", Kind.BOOLEAN, _vip, _boolean, frozenset({REQUESTER, ORGANIZATION})),
        _Field("requester.vip", Kind.BOOLEAN, _requester(lambda c: c.vip), _boolean, {REQUESTER}),
        _Field(
            "requester.language",
            Kind.TEXT,
            _requester(lambda c: None if c.language is None else c.language.lower()),
            _lower_text,
            {REQUESTER},
        ),
        _Field("requester.domain", Kind.TEXT, _requester(_domain), _lower_text, {REQUESTER}),
        _Field(
            "requester.email",
            Kind.TEXT,
            _requester(lambda c: c.emails[0] if c.emails else None),
            _lower_text,
            {REQUESTER},
        ),
        _Field("requester.segment", Kind.TEXT, _requester(lambda c: c.segment), _text, {REQUESTER}),
        _Field(
            "organization.vip",
            Kind.BOOLEAN,
            _organization(lambda o: o.vip),
            _boolean,
            {ORGANIZATION},
        ),
        _Field(
            "organization.segment",
            Kind.TEXT,
            _organization(lambda o: o.segment),
            _text,
            {ORGANIZATION},
        ),
        _Field(
            "organization.region",
            Kind.TEXT,
            _organization(lambda o: o.region),
            _text,
            {ORGANIZATION},
        ),
        _Field(
            "organization.domains",
            Kind.SET,
            _organization(lambda o: frozenset(o.domains)),
            _lower_text,
            {ORGANIZATION},
        ),
        _Field(
            "event",
            Kind.SET,
            lambda subject, _t: subject.event_types,
            _choice(sorted(EVENT_TYPES)),
            {COMMAND},
        ),
        _Field(
            "actor.kind",
            Kind.CHOICE,
            lambda s, _t: None if not s.events else s.events[0].actor.kind.value,
            _choice(_KINDS),
            {COMMAND},
            _KINDS,
        ),
        _Field(
            "actor",
            Kind.TEXT,
            lambda s, _t: None if not s.events else str(s.events[0].actor),
            _text,
            {COMMAND},
        ),
        _Field(
            "comment.public",
            Kind.BOOLEAN,
            _comment_field(lambda e: e.comment.public),
            _boolean,
            {COMMAND},
        ),
        _Field(
            "comment.author",
            Kind.CHOICE,
            _comment_field(lambda e: e.comment.author.kind.value),
            _choice(_KINDS),
            {COMMAND},
            _KINDS,
        ),
        _Field(
            "comment.body", Kind.TEXT, _comment_field(lambda e: e.comment.body), _text, {COMMAND}
        ),
        _Field(
            "comment.channel",
            Kind.TEXT,
            _comment_field(lambda e: e.comment.channel),
            _text,
            {COMMAND},
        ),
    ]
    return {f.name: f for f in fields}


def _custom_field(name: str, kind: FieldKind, choices: tuple[str, ...]) -> _Field:
    def read(_subject: Subject, ticket: Ticket) -> object:
        value = ticket.custom_fields.get(name)
        if kind is FieldKind.MULTI_CHOICE and value is not None:
            return frozenset(value)  # type: ignore[arg-type]
        return value

    path = f"fields.{name}"
    if kind is FieldKind.TEXT:
        return _Field(path, Kind.TEXT, read, _text)
    if kind in (FieldKind.INTEGER, FieldKind.NUMBER):
        return _Field(path, Kind.NUMBER, read, _number)
    if kind is FieldKind.BOOLEAN:
        return _Field(path, Kind.BOOLEAN, read, _boolean)
    if kind is FieldKind.DATE:
        return _Field(path, Kind.DATE, read, _date)
    if kind is FieldKind.CHOICE:
        return _Field(path, Kind.CHOICE, read, _choice(choices), (), choices)
    return _Field(path, Kind.SET, read, _choice(choices), (), choices)


class Anchor(enum.Enum):
    """The instants a :class:`Since` counts from.

    A ticket stored before helpkit kept an instant (``status``, ``assigned``,
    ``unassigned``, ``requester_updated``) counts from its last change instead: the latest
    the instant can have been, so a rule fires late rather than early (the fold pins
    ``assigned``, ``unassigned`` and ``requester_updated`` there at the ticket's next event).
    ``agent_updated`` and ``assignee_updated`` have no such stand-in (whether an agent ever
    replied is unknown): such a ticket has none until the next public reply of an agent, or of
    its assignee."""

    CREATED = "created"
    UPDATED = "updated"
    STATUS = "status"
    """When the ticket entered its current status."""
    SOLVED = "solved"
    CLOSED = "closed"
    ASSIGNED = "assigned"
    """When the current assignee got the ticket (none while it is unassigned)."""
    UNASSIGNED = "unassigned"
    """When the ticket last became unassigned, or its creation if it was opened without an
    assignee (none while it has an assignee)."""
    REQUESTER_UPDATED = "requester_updated"
    """The requester's last public comment, or the ticket's creation."""
    AGENT_UPDATED = "agent_updated"
    """An agent's last public reply (none before the first)."""
    ASSIGNEE_UPDATED = "assignee_updated"
    """The current assignee's last public reply since they got the ticket (none while it is
    unassigned and before their first)."""

    def of(self, ticket: Ticket) -> datetime | None:
        """The ticket's instant (``None``: it has none, e.g. an unsolved ticket's solving)."""
        if self is Anchor.CREATED:
            return ticket.created_at
        if self is Anchor.UPDATED:
            return ticket.updated_at
        if self is Anchor.STATUS:
            return ticket.status_at or ticket.updated_at
        if self is Anchor.SOLVED:
            return ticket.solved_at
        if self is Anchor.CLOSED:
            return ticket.closed_at
        if self is Anchor.ASSIGNED:
            if ticket.assignee_id is None:
                return None
            return ticket.assigned_at or ticket.updated_at
        if self is Anchor.UNASSIGNED:
            if ticket.assignee_id is not None:
                return None
            return ticket.unassigned_at or ticket.updated_at
        if self is Anchor.REQUESTER_UPDATED:
            return ticket.requester_updated_at or ticket.updated_at
        if self is Anchor.AGENT_UPDATED:
            return ticket.agent_updated_at
        if ticket.assignee_id is None:
            return None
        return ticket.assignee_updated_at


# ---------------------------------------------------------------- the vocabulary


@attrs.frozen
class Vocabulary:
    """What a desk's conditions may name: its statuses, custom fields and calendars.

    ``command`` says whether the conditions are tested on a command (triggers: the operators on
    changes and the ``event``, ``actor`` and ``comment.*`` fields are allowed) or on a ticket as
    it is (SLA policies, routing, automations).
    """

    workflow: Workflow
    fields: FieldSet = attrs.field(factory=FieldSet)
    calendars: Mapping[str, BusinessCalendar] = attrs.field(factory=dict)
    command: bool = False
    timed: bool = True
    """Whether conditions may test time (``since``); not those that choose an SLA policy."""
    _known: Mapping[str, _Field] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        known = _builtin_fields(self.workflow)
        for name, custom in self.fields.fields.items():
            known[f"fields.{name}"] = _custom_field(name, custom.kind, custom.choices)
        object.__setattr__(self, "_known", known)

    def for_commands(self) -> Vocabulary:
        """The same vocabulary for conditions tested on a command (triggers)."""
        return Vocabulary(self.workflow, self.fields, self.calendars, command=True)

    def timeless(self) -> Vocabulary:
        """The same vocabulary for conditions that cannot depend on time (an SLA policy's:
        the policy that measures a ticket must not change while nothing happens to it)."""
        return Vocabulary(self.workflow, self.fields, self.calendars, timed=False)

    def field(self, name: object) -> _Field:
        """The field called ``name``; ValidationError naming the known ones if unknown."""
        found = self._known.get(name) if isinstance(name, str) else None
        if found is None:
            known = ", ".join(
                n for n, f in self._known.items() if self.command or COMMAND not in f.needs
            )
            raise ValidationError(f"unknown field {name!r:.60} (known: {known})")
        if COMMAND in found.needs and not self.command:
            raise ValidationError(
                f"field {found.name!r} describes a command: only triggers can test it"
            )
        return found

    def calendar(self, name: object) -> BusinessCalendar:
        """The calendar called ``name``."""
        found = self.calendars.get(name) if isinstance(name, str) else None
        if found is None:
            known = ", ".join(self.calendars) or "none configured"
            raise ValidationError(f"unknown calendar {name!r:.60} (known: {known})")
        return found

    def parse(self, data: object) -> Condition:
        """Read a condition's plain-data form (see the module's doc)."""
        return parse(data, self)


# ---------------------------------------------------------------- conditions


class Condition:
    """A test of a :class:`Subject`: a tree of :class:`Compare`, :class:`Since`,
    :class:`AllOf`, :class:`AnyOf` and :class:`NoneOf`."""

    __slots__ = ()

    needs: frozenset[str]
    """What the caller must look up for :meth:`matches`: :data:`REQUESTER`,
    :data:`ORGANIZATION`, :data:`COMMAND`."""

    def matches(self, subject: Subject) -> bool:
        """Whether the subject meets the condition."""
        raise NotImplementedError

    def to_data(self) -> object:
        """The plain-data form :func:`parse` reads back to an equal condition."""
        raise NotImplementedError

    def due(self, subject: Subject) -> datetime | None:
        """The earliest instant after which the condition may turn true by time alone (its
        :class:`Since` parts' thresholds), or ``None`` when time alone cannot change it."""
        return None

    def compiled(self) -> Callable[[Subject], bool]:
        """:meth:`matches` as one Python function (the tree written out as one expression,
        the ticket's fields read inline): what rules run on every command. It gives the
        same answers as :meth:`matches` (a Hypothesis property)."""
        namespace: dict[str, Any] = {"_empty": _empty, "_E": frozenset()}
        source = f"def test(s):\n    t = s.ticket\n    return {self._source(namespace)}\n"
        exec(compile(source, "<helpkit condition>", "exec"), namespace)
        test: Callable[[Subject], bool] = namespace["test"]
        return test

    def _source(self, namespace: dict[str, Any]) -> str:
        """A Python expression of ``s`` (the subject) and ``t`` (its ticket) for this
        condition; constants and functions it needs go into ``namespace``."""
        return f"{_constant(namespace, self.matches)}(s)"

    def _cost(self) -> int:
        """How dear the compiled test is (the ticket's fields 0, the command's 1, people 2,
        time 3): combinations test the cheap parts first (the answer is the same)."""
        return 3


def first_match(conditions: Sequence[Condition]) -> Callable[[Subject], int]:
    """One Python function giving the index of the first of ``conditions`` that holds on a
    subject (-1 for none): rules in order tested in one call, each written out as
    :meth:`Condition.compiled` writes it."""
    namespace: dict[str, Any] = {"_empty": _empty, "_E": frozenset()}
    lines = ["def first(s):", "    t = s.ticket"]
    for index, condition in enumerate(conditions):
        lines.append(f"    if {condition._source(namespace)}:")
        lines.append(f"        return {index}")
    lines.append("    return -1")
    exec(compile("\n".join(lines) + "\n", "<helpkit rules>", "exec"), namespace)
    first: Callable[[Subject], int] = namespace["first"]
    return first


def _cheap_first(items: Sequence[Condition]) -> list[Condition]:
    return sorted(items, key=lambda item: item._cost())


def _constant(namespace: dict[str, Any], value: object) -> str:
    name = f"K{len(namespace)}"
    namespace[name] = value
    return name


_INLINE: Final[Mapping[str, str]] = {
    "subject": "{t}.subject",
    "status": "{t}.status",
    "category": "{t}.category.value",
    "priority": "{t}.priority",
    "impact": "{t}.impact.value",
    "urgency": "{t}.urgency.value",
    "group": "{t}.group_id",
    "assignee": "{t}.assignee_id",
    "channel": "{t}.channel",
    "requester": "{t}.requester_id",
    "organization": "{t}.organization_id",
    "tags": "{t}.tags",
    "number": "{t}.number",
    "public_comments": "{t}.public_comments",
    "internal_notes": "{t}.internal_notes",
    "sla_policy": "{t}.sla_policy",
    "vip": "bool(((p := s.person()) is not None and p.vip)"
    " or ((o := s.company()) is not None and o.vip))",
    "requester.vip": "(None if (p := s.person()) is None else p.vip)",
    "requester.segment": "(None if (p := s.person()) is None else p.segment)",
    "organization.vip": "(None if (o := s.company()) is None else o.vip)",
    "organization.segment": "(None if (o := s.company()) is None else o.segment)",
    "organization.region": "(None if (o := s.company()) is None else o.region)",
    "event": "s.event_types",
    "actor.kind": "(s.events[0].actor.kind.value if s.events else None)",
    "comment.public": "(None if (c := s.comment) is None else c.comment.public)",
    "comment.author": "(None if (c := s.comment) is None else c.comment.author.kind.value)",
    "comment.channel": "(None if (c := s.comment) is None else c.comment.channel)",
}
"""How compiled conditions read fields inline (``{t}``: the ticket; the rest call the field's
reader)."""
_INLINE_OPERATORS: Final[Mapping[str, str]] = {
    "is": "({v} == {k})",
    "is_not": "({v} != {k})",
    "in": "({v} in {k})",
    "not_in": "({v} not in {k})",
    "empty": "(_empty({v}) is {k})",
    "lt": "((x := {v}) is not None and x < {k})",
    "le": "((x := {v}) is not None and x <= {k})",
    "gt": "((x := {v}) is not None and x > {k})",
    "ge": "((x := {v}) is not None and x >= {k})",
    "has_any": "bool({k} & ({v} or _E))",
    "has_all": "({k} <= ({v} or _E))",
    "has_none": "(not {k} & ({v} or _E))",
}


_INLINE_TEXT: Final[Mapping[str, str]] = {
    "contains": "(isinstance(x := {v}, str) and {k} in x.casefold())",
    "starts_with": "(isinstance(x := {v}, str) and x.casefold().startswith({k}))",
}
"""Text operators inline (``{k}``: the value, case-folded), as :func:`_compile` tests them."""
_CHANGED: Final = "(bool(s.events) and (_present({v}) if (b := s.before) is None else {w} != {v}))"
"""Whether a command changed a field of the ticket (``{v}`` its value now, ``{w}`` before,
read from ``b``, the ticket before): as :func:`_compile`'s ``changed``."""
_INLINE_CHANGES: Final[Mapping[str, str]] = {
    "changed": "({c} is {k})",
    "changed_to": "({c} and {v} == {k})",
    "changed_from": "(s.before is not None and {c} and {w} == {k})",
    "added": "(bool(s.events) and bool({k} & (({v} or _E)"
    " - ((None if (b := s.before) is None else {w}) or _E))))",
    "removed": "(bool(s.events) and bool({k} & (((None if (b := s.before) is None else {w})"
    " or _E) - ({v} or _E))))",
}
"""How compiled conditions test changes of a field of the ticket inline (``{c}``: whether it
changed)."""


def _empty(value: object) -> bool:
    return value is None or value == "" or value == frozenset()


def _present(value: object) -> bool:
    return not _empty(value)


@attrs.frozen(eq=False)
class Compare(Condition):
    """``field`` compared by ``operator`` with ``value`` (checked by the vocabulary)."""

    field: str
    operator: str
    value: object
    _check: Callable[[Subject], bool] = attrs.field(repr=False)
    needs: frozenset[str] = frozenset()
    _code: str | None = attrs.field(default=None, repr=False)
    """How a compiled condition reads the field inline (``{t}`` for the ticket), if it can."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Compare) and (self.field, self.operator, _key(self.value)) == (
            other.field,
            other.operator,
            _key(other.value),
        )

    def __hash__(self) -> int:
        return hash((self.field, self.operator, _key(self.value)))

    def matches(self, subject: Subject) -> bool:
        return self._check(subject)

    def _cost(self) -> int:
        if REQUESTER in self.needs or ORGANIZATION in self.needs:
            return 2
        return 1 if COMMAND in self.needs or self._code is None else 0

    def _source(self, namespace: dict[str, Any]) -> str:
        code = self._code
        template = _INLINE_OPERATORS.get(self.operator)
        if code is not None and template is not None:
            return template.format(v=code.format(t="t"), k=_constant(namespace, self.value))
        template = _INLINE_TEXT.get(self.operator)
        if code is not None and template is not None:
            needle = _constant(namespace, str(self.value).casefold())
            return template.format(v=code.format(t="t"), k=needle)
        template = _INLINE_CHANGES.get(self.operator)
        if code is not None and template is not None and "{t}" in code:
            # A field of the ticket: its value before the command is read inline too.
            namespace["_present"] = _present
            changed = _CHANGED.format(v=code.format(t="t"), w=code.format(t="b"))
            return template.format(
                c=changed,
                v=code.format(t="t"),
                w=code.format(t="b"),
                k=_constant(namespace, self.value),
            )
        return f"{_constant(namespace, self._check)}(s)"

    def to_data(self) -> object:
        value = self.value
        if isinstance(value, frozenset):
            value = sorted(value, key=str)
        elif isinstance(value, date):
            value = value.isoformat()
        return {"field": self.field, self.operator: value}


def _key(value: object) -> object:
    return tuple(sorted(value, key=str)) if isinstance(value, frozenset) else value


def _test(spec: _Field, operator: str, value: object, vocabulary: Vocabulary) -> Compare:
    kind = spec.kind
    allowed = _OPERATORS[kind] | (_CHANGES[kind] if vocabulary.command else frozenset())
    if operator not in allowed:
        extra = (
            "; the operators on changes are for triggers only" if operator in _CHANGES[kind] else ""
        )
        raise ValidationError(
            f"field {spec.name!r} ({kind.value}) takes no operator {operator!r}: use "
            f"{', '.join(sorted(allowed))}{extra}"
        )
    checked: object
    if operator in _FLAGS:
        checked = _boolean(value)
    elif operator in _LISTS:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValidationError(f"{operator!r} takes a list of values; got {value!r:.60}")
        items = list(value)
        if not items:
            raise ValidationError(f"{operator!r} needs at least one value")
        checked = frozenset(spec.value(item) for item in items)
    elif kind is Kind.SET:
        raise AssertionError(operator)  # pragma: no cover - every set operator takes a list
    else:
        checked = spec.value(value)
    needs = spec.needs | ({COMMAND} if operator in _CHANGES[kind] else set())
    code = _INLINE.get(spec.name)
    if code is None and spec.name.startswith("fields.") and spec.kind is not Kind.SET:
        code = "{t}.custom_fields.get(" + repr(spec.name.removeprefix("fields.")) + ")"
    return Compare(
        spec.name,
        operator,
        checked,
        _compile(spec, operator, checked),
        frozenset(needs),
        code,
    )


def _compile(spec: _Field, operator: str, value: Any) -> Callable[[Subject], bool]:
    read = spec.read

    def now(subject: Subject) -> Any:
        return read(subject, subject.ticket)

    def before(subject: Subject) -> Any:
        return None if subject.before is None else read(subject, subject.before)

    if operator == "is":
        return lambda s: bool(now(s) == value)
    if operator == "is_not":
        return lambda s: bool(now(s) != value)
    if operator == "in":
        return lambda s: now(s) in value
    if operator == "not_in":
        return lambda s: now(s) not in value
    if operator == "empty":
        return lambda s: _empty(now(s)) is value
    if operator == "contains":
        needle = str(value).casefold()
        return lambda s: isinstance(got := now(s), str) and needle in got.casefold()
    if operator == "starts_with":
        prefix = str(value).casefold()
        return lambda s: isinstance(got := now(s), str) and got.casefold().startswith(prefix)
    if operator in ("lt", "le", "gt", "ge"):
        compare: Callable[[Any, Any], bool] = {
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
            "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b,
        }[operator]
        return lambda s: (got := now(s)) is not None and compare(got, value)
    if operator == "has_any":
        return lambda s: bool(value & (now(s) or frozenset()))
    if operator == "has_all":
        return lambda s: value <= (now(s) or frozenset())
    if operator == "has_none":
        return lambda s: not value & (now(s) or frozenset())

    def changed(s: Subject) -> bool:
        if not s.events:
            return False  # no command: nothing changed
        if s.before is None:
            return _present(now(s))  # the command opened the ticket
        return bool(before(s) != now(s))

    if operator == "changed":
        return lambda s: changed(s) is value
    if operator == "changed_to":
        return lambda s: changed(s) and now(s) == value
    if operator == "changed_from":
        return lambda s: s.before is not None and changed(s) and before(s) == value
    if operator == "added":
        return lambda s: bool(s.events) and bool(value & ((now(s) or set()) - (before(s) or set())))
    if operator == "removed":
        return lambda s: bool(s.events) and bool(value & ((before(s) or set()) - (now(s) or set())))
    raise AssertionError(operator)  # pragma: no cover - _test checked it


@attrs.frozen
class Since(Condition):
    """The time since the ticket's ``anchor`` instant is at least ``at_least`` (and, if given,
    less than ``at_most``): calendar time, or the business time of ``calendar`` (named
    ``calendar_name`` in the configuration)."""

    anchor: Anchor
    at_least: timedelta | None = None
    at_most: timedelta | None = None
    calendar: BusinessCalendar | None = attrs.field(default=None, eq=False, repr=False)
    calendar_name: str | None = None
    needs: frozenset[str] = frozenset()

    def _elapsed(self, start: datetime, end: datetime) -> timedelta:
        if end <= start:
            return timedelta(0)
        if self.calendar is None:
            return end - start
        return self.calendar.elapsed(start, end)

    def matches(self, subject: Subject) -> bool:
        start = self.anchor.of(subject.ticket)
        if start is None:
            return False
        elapsed = self._elapsed(start, subject.now)
        return (self.at_least is None or elapsed >= self.at_least) and (
            self.at_most is None or elapsed < self.at_most
        )

    def due(self, subject: Subject) -> datetime | None:
        start = self.anchor.of(subject.ticket)
        if start is None or self.at_least is None:
            return None
        if self.calendar is None:
            return start + self.at_least
        return self.calendar.add(start, self.at_least)

    def to_data(self) -> object:
        data: dict[str, object] = {"since": self.anchor.value}
        if self.at_least is not None:
            data["at_least"] = _duration_text(self.at_least)
        if self.at_most is not None:
            data["at_most"] = _duration_text(self.at_most)
        if self.calendar_name is not None:
            data["calendar"] = self.calendar_name
        return data


def _duration_text(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


def _conditions(value: Iterable[Condition]) -> tuple[Condition, ...]:
    items = tuple(value)
    if not all(isinstance(item, Condition) for item in items):
        raise ValidationError("a combination holds conditions only")
    return items


def _needs_of(items: Sequence[Condition]) -> frozenset[str]:
    return frozenset().union(*(item.needs for item in items))


@attrs.frozen
class AllOf(Condition):
    """Every one of ``items`` (no items: always true)."""

    items: tuple[Condition, ...] = attrs.field(default=(), converter=_conditions)
    needs: frozenset[str] = attrs.field(init=False)

    @needs.default
    def _needs(self) -> frozenset[str]:
        return _needs_of(self.items)

    def matches(self, subject: Subject) -> bool:
        return all(item.matches(subject) for item in self.items)

    def _source(self, namespace: dict[str, Any]) -> str:
        if not self.items:
            return "True"
        parts = [item._source(namespace) for item in _cheap_first(self.items)]
        return "(" + " and ".join(parts) + ")"

    def _cost(self) -> int:
        return max((item._cost() for item in self.items), default=0)

    def to_data(self) -> object:
        return {"all": [item.to_data() for item in self.items]}

    def due(self, subject: Subject) -> datetime | None:
        # Time alone makes all true once every time part is due (and the rest holds).
        dues = [item.due(subject) for item in self.items]
        known = [d for d in dues if d is not None]
        return max(known) if known else None


@attrs.frozen
class AnyOf(Condition):
    """At least one of ``items``."""

    items: tuple[Condition, ...] = attrs.field(converter=_conditions)
    needs: frozenset[str] = attrs.field(init=False)

    @needs.default
    def _needs(self) -> frozenset[str]:
        return _needs_of(self.items)

    def __attrs_post_init__(self) -> None:
        if not self.items:
            raise ValidationError("'any' needs at least one condition (it would never match)")

    def matches(self, subject: Subject) -> bool:
        return any(item.matches(subject) for item in self.items)

    def _source(self, namespace: dict[str, Any]) -> str:
        parts = [item._source(namespace) for item in _cheap_first(self.items)]
        return "(" + " or ".join(parts) + ")"

    def _cost(self) -> int:
        return max(item._cost() for item in self.items)

    def to_data(self) -> object:
        return {"any": [item.to_data() for item in self.items]}

    def due(self, subject: Subject) -> datetime | None:
        known = [d for d in (item.due(subject) for item in self.items) if d is not None]
        return min(known) if known else None


@attrs.frozen
class NoneOf(Condition):
    """None of ``items`` (written ``not``; a single condition or a list)."""

    items: tuple[Condition, ...] = attrs.field(converter=_conditions)
    needs: frozenset[str] = attrs.field(init=False)

    @needs.default
    def _needs(self) -> frozenset[str]:
        return _needs_of(self.items)

    def __attrs_post_init__(self) -> None:
        if not self.items:
            raise ValidationError("'not' needs at least one condition")

    def matches(self, subject: Subject) -> bool:
        return not any(item.matches(subject) for item in self.items)

    def _source(self, namespace: dict[str, Any]) -> str:
        parts = [item._source(namespace) for item in _cheap_first(self.items)]
        return "(not (" + " or ".join(parts) + "))"

    def _cost(self) -> int:
        return max(item._cost() for item in self.items)

    def to_data(self) -> object:
        if len(self.items) == 1:
            return {"not": self.items[0].to_data()}
        return {"not": [item.to_data() for item in self.items]}


ALWAYS: Final[Condition] = AllOf(())
"""The condition that always holds (a rule without ``when``)."""

_MAX_DEPTH: Final = 32
_SINCE_KEYS: Final = frozenset({"since", "at_least", "at_most", "calendar"})


def parse(data: object, vocabulary: Vocabulary) -> Condition:
    """Read a condition's plain-data form; ValidationError naming the first mistake and where
    it is (``all[2].field``)."""
    return _parse(data, vocabulary, "", 0)


def _parse(data: object, vocabulary: Vocabulary, where: str, depth: int) -> Condition:
    if depth > _MAX_DEPTH:
        raise ValidationError(f"{where or 'condition'}: nested more than {_MAX_DEPTH} deep")
    try:
        if isinstance(data, Condition):
            return parse(data.to_data(), vocabulary)  # checked against this vocabulary
        if isinstance(data, list | tuple):
            return AllOf(
                _parse(item, vocabulary, f"{where}[{i}]", depth + 1) for i, item in enumerate(data)
            )
        if not isinstance(data, Mapping):
            raise ValidationError(f"a condition is a table or a list; got {data!r:.60}")
        keys = set(data)
        for combinator, make in (("all", AllOf), ("any", AnyOf), ("not", NoneOf)):
            if combinator in keys:
                if keys != {combinator}:
                    others = ", ".join(sorted(map(str, keys - {combinator})))
                    raise ValidationError(
                        f"{combinator!r} stands alone in its table (also found: {others}); "
                        "wrap the others in it"
                    )
                items = data[combinator]
                if combinator == "not" and isinstance(items, Mapping):
                    items = [items]
                if not isinstance(items, list | tuple):
                    raise ValidationError(f"{combinator!r} takes a list of conditions")
                return make(
                    _parse(item, vocabulary, f"{where}.{combinator}[{i}]", depth + 1)
                    for i, item in enumerate(items)
                )
        if "since" in keys:
            if not vocabulary.timed:
                raise ValidationError("this condition cannot depend on time ('since')")
            return _since(data, vocabulary)
        if "field" not in keys:
            raise ValidationError(
                "a condition needs 'field' and an operator, 'since', 'all', 'any' or 'not'; "
                f"got the keys {', '.join(sorted(map(str, keys))) or 'none'}"
            )
        spec = vocabulary.field(data["field"])
        operators = sorted(map(str, keys - {"field"}))
        if len(operators) != 1:
            raise ValidationError(
                f"a test of {spec.name!r} takes exactly one operator; got "
                f"{', '.join(operators) or 'none'}"
            )
        return _test(spec, operators[0], data[operators[0]], vocabulary)
    except ValidationError as exc:
        if where and not str(exc).startswith(where.lstrip(".")):
            raise ValidationError(f"{where.lstrip('.')}: {exc}") from None
        raise


def _since(data: Mapping[str, Any], vocabulary: Vocabulary) -> Since:
    unknown = sorted(map(str, set(data) - _SINCE_KEYS))
    if unknown:
        raise ValidationError(
            f"'since' takes at_least, at_most and calendar; unknown: {', '.join(unknown)}"
        )
    try:
        anchor = Anchor(data["since"])
    except (ValueError, TypeError):
        known = ", ".join(a.value for a in Anchor)
        raise ValidationError(f"unknown instant {data['since']!r:.60} (known: {known})") from None
    at_least = _duration(data.get("at_least"))
    at_most = _duration(data.get("at_most"))
    if at_least is None and at_most is None:
        raise ValidationError("'since' needs at_least and/or at_most")
    if at_least is not None and at_most is not None and at_most <= at_least:
        raise ValidationError("'since': at_most must be longer than at_least")
    name = data.get("calendar")
    calendar = None if name is None else vocabulary.calendar(name)
    return Since(anchor, at_least, at_most, calendar, None if name is None else str(name))


def _duration(value: object) -> timedelta | None:
    if value is None:
        return None
    result = value if isinstance(value, timedelta) else parse_duration(value)  # type: ignore[arg-type]
    if result <= timedelta(0):
        raise ValidationError(f"a duration must be positive; got {value!r:.60}")
    return result
