# Over 600 lines: actions, templates, triggers and macros as data share one parsing and
# checking of actions.
"""Rules as data: the actions a rule carries out, the templates its messages use, and the two
kinds of rule that carry them: :class:`Trigger` (runs on every committed command whose ticket
meets its condition) and :class:`Macro` (a named bundle an agent applies in one command).

Pure: reading and checking rules when the configuration loads. Carrying actions out on a
ticket is :mod:`helpkit.actions`; running triggers in the command pipeline is
:mod:`helpkit.triggers`.

The plain-data form of an action is a table with one action key (``notify`` takes
``subject`` and ``body`` beside it)::

    {status = "solved"}                  {priority = "P1"}
    {impact = "high"}                    {urgency = "low"}
    {group = "tier2"}                    {assignee = "ana"}
    {unassign = true}                    {add_tags = ["vip"]}
    {remove_tags = ["new"]}              {fields = {product = "mobile"}}
    {note = "Internal: {{requester.name}} is a VIP"}
    {reply = "Hello {{requester.first_name}}, ..."}
    {notify = ["assignee", "group"], subject = "P1: {{ticket.subject}}", body = "..."}
    {webhook = "crm"}

Templates take ``{{ placeholder }}`` from :data:`PLACEHOLDERS`; an unknown one is refused when
the rule is read.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from helpkit.conditions import ALWAYS, AllOf, AnyOf, Condition, Since, Vocabulary
from helpkit.errors import ConfigError, ValidationError
from helpkit.fields import FieldValue
from helpkit.people import Agent, Contact
from helpkit.priority import Impact, Priority, Urgency
from helpkit.tickets import Ticket

__all__ = [
    "PLACEHOLDERS",
    "Action",
    "AddComment",
    "Audience",
    "Automation",
    "CallWebhook",
    "ChangeTags",
    "Macro",
    "Notify",
    "SetAssignee",
    "SetFields",
    "SetGroup",
    "SetImpactUrgency",
    "SetPriority",
    "SetStatus",
    "Template",
    "Trigger",
    "automations_from_list",
    "fill_number",
    "macros_from_list",
    "parse_actions",
    "placeholder_values",
    "triggers_from_list",
]

PLACEHOLDERS: Final = frozenset(
    {
        "ticket.number",
        "ticket.reference",
        "ticket.subject",
        "ticket.status",
        "ticket.priority",
        "ticket.group",
        "requester.name",
        "requester.first_name",
        "requester.email",
        "assignee.name",
        "agent.name",
        "agent.first_name",
    }
)
"""What a template may name: the ticket's, its requester's and its assignee's, and the agent
applying a macro (``agent.*``: empty for a trigger)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PLACEHOLDER_SPLIT = re.compile(r"(\{\{[^{}]*?\}\})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@attrs.frozen
class Template:
    """Text with ``{{ placeholder }}`` parts, filled in when a rule fires."""

    text: str
    known: frozenset[str] = attrs.field(default=PLACEHOLDERS, eq=False, repr=False)
    """The placeholders it may name (a notification template's depend on its rules' events)."""
    names: frozenset[str] = attrs.field(init=False)
    _parts: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    """The text split at its placeholders: literal text at even indexes, each placeholder as
    written at odd ones."""

    @names.default
    def _names(self) -> frozenset[str]:
        if not isinstance(self.text, str):
            raise ValidationError(f"a template is text; got {self.text!r:.60}")
        found = frozenset(m.group(1) for m in _PLACEHOLDER.finditer(self.text))
        unknown = sorted(found - self.known)
        if unknown:
            known = ", ".join(sorted(self.known))
            raise ValidationError(f"unknown placeholder {{{{{unknown[0]}}}}} (known: {known})")
        return found

    _named: tuple[str, ...] = attrs.field(init=False, eq=False, repr=False)
    """The name of each placeholder of ``_parts``, in order (as :meth:`render` looks it up)."""

    @_parts.default
    def _split(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER_SPLIT.split(self.text))

    @_named.default
    def _placeholder_names(self) -> tuple[str, ...]:
        return tuple(part[2:-2].strip() for part in self._parts[1::2])

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value (missing ones: empty), but
        for the ticket's number and reference on a ticket that has none yet (a rule firing in
        the command that opens it: the store numbers it in the commit), which stay for
        :func:`fill_number` to fill in when the message is planned."""
        parts = self._parts
        if len(parts) == 1:
            return parts[0]
        # The split alternates literal text and placeholders, and starts and ends with text.
        out = [parts[0]]
        for index, name in enumerate(self._named, 1):
            written = parts[2 * index - 1]
            out.append(values.get(name, written if name in NUMBERED else ""))
            out.append(parts[2 * index])
        return "".join(out)


NUMBERED: Final = frozenset({"ticket.number", "ticket.reference"})
"""The placeholders a ticket only has once committed."""


def placeholder_values(
    ticket: Ticket,
    requester: Contact | None,
    assignee: Agent | None,
    agent: Agent | None = None,
) -> dict[str, str]:
    """The values of the :data:`PLACEHOLDERS` for ``ticket``, its ``requester`` and
    ``assignee`` (``None``: gone, or none), and ``agent`` (the one applying a macro)."""
    values = {
        "ticket.subject": ticket.subject,
        "ticket.status": ticket.status,
        "ticket.priority": ticket.priority.name,
        "ticket.group": ticket.group_id or "",
    }
    if ticket.number:  # else the store numbers it in the commit: filled in when planned
        values["ticket.number"] = str(ticket.number)
        values["ticket.reference"] = ticket.reference
    if requester is not None:
        values["requester.name"] = requester.name
        values["requester.first_name"] = _first_name(requester.name)
        values["requester.email"] = requester.emails[0] if requester.emails else ""
    if assignee is not None:
        values["assignee.name"] = assignee.name
    if agent is not None:
        values["agent.name"] = agent.name
        values["agent.first_name"] = _first_name(agent.name)
    return values


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else name


def fill_number(text: str, number: int) -> str:
    """``text`` with ``{{ticket.number}}`` and ``{{ticket.reference}}`` filled in."""
    if "{{" not in text:
        return text
    values = {"ticket.number": str(number), "ticket.reference": f"#{number}"}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


class Audience(enum.Enum):
    """Who a :class:`Notify` action tells."""

    REQUESTER = "requester"
    FOLLOWERS = "followers"
    ASSIGNEE = "assignee"
    GROUP = "group"


@attrs.frozen
class SetStatus:
    """Move the ticket to a status of the workflow."""

    status: str


@attrs.frozen
class SetPriority:
    """Set the priority itself (impact and urgency stay as they are)."""

    priority: Priority


@attrs.frozen
class SetImpactUrgency:
    """Set impact and/or urgency; the priority follows from the matrix."""

    impact: Impact | None = None
    urgency: Urgency | None = None


@attrs.frozen
class SetGroup:
    """Hand the ticket to a group (its assignee stays only if they are a member)."""

    group: str


@attrs.frozen
class SetAssignee:
    """Assign the ticket to an agent (``None``: unassign); the group follows the agent's."""

    agent: str | None


@attrs.frozen
class ChangeTags:
    """Add and/or remove tags."""

    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()


@attrs.frozen
class SetFields:
    """Set custom fields (``None`` clears one; TOML cannot say it, the Python API can)."""

    values: Mapping[str, FieldValue | None]


@attrs.frozen
class AddComment:
    """Add a comment: an internal note, or a public reply (delivered as any reply)."""

    body: Template
    public: bool = False


@attrs.frozen
class Notify:
    """Tell ``audiences`` something (an email to them, through the outbox)."""

    audiences: tuple[Audience, ...]
    subject: Template
    body: Template


@attrs.frozen
class CallWebhook:
    """Send the ticket to a configured webhook endpoint (through the outbox)."""

    endpoint: str


Action = (
    SetStatus
    | SetPriority
    | SetImpactUrgency
    | SetGroup
    | SetAssignee
    | ChangeTags
    | SetFields
    | AddComment
    | Notify
    | CallWebhook
)
ACTION_TYPES: Final = (
    SetStatus,
    SetPriority,
    SetImpactUrgency,
    SetGroup,
    SetAssignee,
    ChangeTags,
    SetFields,
    AddComment,
    Notify,
    CallWebhook,
)
_ACTION_KEYS: Final = (
    "status",
    "priority",
    "impact",
    "urgency",
    "group",
    "assignee",
    "unassign",
    "add_tags",
    "remove_tags",
    "fields",
    "note",
    "reply",
    "notify",
    "webhook",
)


def _word(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be non-empty text; got {value!r:.60}")
    return value.strip()


def _tags(value: object, what: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, bytes | Mapping):
        raise ValidationError(f"{what} takes a list of tags; got {value!r:.60}")
    tags = frozenset("_".join(_word(t, "a tag").lower().split()) for t in value)
    if not tags:
        raise ValidationError(f"{what} needs at least one tag")
    return tags


def parse_action(data: object, vocabulary: Vocabulary) -> Action:
    """Read one action's plain-data form (see the module's doc), checked against the desk's
    statuses and custom fields."""
    if isinstance(data, ACTION_TYPES):
        return data
    if not isinstance(data, Mapping):
        raise ValidationError(f"an action is a table such as {{status = 'open'}}; got {data!r:.60}")
    keys = [k for k in data if k in _ACTION_KEYS]
    extra = sorted(map(str, set(data) - set(_ACTION_KEYS) - {"subject", "body"}))
    if set(keys) == {"impact", "urgency"} and not extra:
        return SetImpactUrgency(Impact.coerce(data["impact"]), Urgency.coerce(data["urgency"]))
    if set(keys) == {"add_tags", "remove_tags"} and not extra:
        return ChangeTags(
            _tags(data["add_tags"], "add_tags"), _tags(data["remove_tags"], "remove_tags")
        )
    if len(keys) != 1 or extra:
        found = ", ".join(sorted(map(str, data))) or "none"
        raise ValidationError(
            f"an action has exactly one of {', '.join(_ACTION_KEYS)}; got the keys {found}"
        )
    key = keys[0]
    value = data[key]
    if key != "notify" and set(data) & {"subject", "body"}:
        raise ValidationError(f"subject and body go with notify, not with {key}")
    if key == "status":
        return SetStatus(vocabulary.workflow.status(_word(value, "status")).name)
    if key == "priority":
        return SetPriority(Priority.coerce(value))
    if key == "impact":
        return SetImpactUrgency(impact=Impact.coerce(value))
    if key == "urgency":
        return SetImpactUrgency(urgency=Urgency.coerce(value))
    if key == "group":
        return SetGroup(_word(value, "group"))
    if key == "assignee":
        return SetAssignee(_word(value, "assignee"))
    if key == "unassign":
        if value is not True:
            raise ValidationError("write unassign = true")
        return SetAssignee(None)
    if key == "add_tags":
        return ChangeTags(add=_tags(value, key))
    if key == "remove_tags":
        return ChangeTags(remove=_tags(value, key))
    if key == "fields":
        if not isinstance(value, Mapping) or not value:
            raise ValidationError("fields takes a table of custom field values")
        return SetFields(vocabulary.fields.validate(dict(value)))
    if key in ("note", "reply"):
        return AddComment(Template(_word(value, key)), public=key == "reply")
    if key == "notify":
        return _notify(value, data)
    return CallWebhook(_word(value, "webhook"))


def _notify(value: object, data: Mapping[str, Any]) -> Notify:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise ValidationError("notify takes a list of audiences")
    audiences: list[Audience] = []
    for name in names:
        try:
            audiences.append(Audience(name))
        except ValueError:
            known = ", ".join(a.value for a in Audience)
            raise ValidationError(f"unknown audience {name!r:.60} (known: {known})") from None
    if "subject" not in data or "body" not in data:
        raise ValidationError("notify needs a subject and a body")
    return Notify(
        tuple(dict.fromkeys(audiences)),
        Template(_word(data["subject"], "subject")),
        Template(_word(data["body"], "body")),
    )


def parse_actions(data: object, vocabulary: Vocabulary) -> tuple[Action, ...]:
    """Read a list of actions (at least one)."""
    if not isinstance(data, list | tuple) or not data:
        raise ValidationError("actions is a list of at least one action")
    out = []
    for index, item in enumerate(data):
        try:
            out.append(parse_action(item, vocabulary))
        except ValidationError as exc:
            raise ValidationError(f"actions[{index}]: {exc}") from None
    return tuple(out)


def _rule_name(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            f"a rule's name is 1-64 letters, digits, '_', '-' or '.'; got {value!r:.60}"
        )


def _actions(value: Sequence[Action]) -> tuple[Action, ...]:
    items = tuple(value)
    if not items or not all(isinstance(a, ACTION_TYPES) for a in items):
        raise ValidationError("a rule needs at least one action, each an action value")
    return items


def _condition(value: Condition) -> Condition:
    if not isinstance(value, Condition):
        raise ValidationError(f"a trigger's condition must be a Condition; got {value!r:.60}")
    return value


@attrs.frozen(kw_only=True)
class Trigger:
    """When a committed command leaves a ticket meeting ``when``, carry out ``actions`` (as
    ``system:trigger:<name>``), in the same commit."""

    name: str = attrs.field(validator=_rule_name)
    when: Condition = attrs.field(default=ALWAYS, validator=lambda _i, _a, v: _condition(v))
    actions: tuple[Action, ...] = attrs.field(converter=_actions)
    description: str | None = None
    active: bool = True


def _timed(value: Condition) -> Condition:
    condition = _condition(value)
    if not _has_wait(condition):
        raise ValidationError(
            "an automation's condition needs a time part ({since = ..., at_least = ...}) "
            "that gates it; for a rule on every command, write a trigger"
        )
    return condition


def _has_wait(condition: Condition) -> bool:
    """Whether time alone can make ``condition`` hold: a ``since ... at_least`` that every
    way of holding it goes through (in an ``all``, one part; in an ``any``, every part)."""
    if isinstance(condition, Since):
        return condition.at_least is not None
    if isinstance(condition, AllOf):
        return any(_has_wait(item) for item in condition.items)
    if isinstance(condition, AnyOf):
        return all(_has_wait(item) for item in condition.items)
    return False


@attrs.frozen(kw_only=True)
class Automation:
    """When time has passed (``when`` holds a ``since ... at_least`` part), carry out
    ``actions`` (as ``system:automation:<name>``): see :mod:`helpkit.automations`."""

    name: str = attrs.field(validator=_rule_name)
    when: Condition = attrs.field(validator=lambda _i, _a, v: _timed(v))
    actions: tuple[Action, ...] = attrs.field(converter=_actions)
    description: str | None = None
    active: bool = True


@attrs.frozen(kw_only=True)
class Macro:
    """A named bundle of actions (often with a canned reply) an agent applies in one command."""

    name: str = attrs.field(validator=_rule_name)
    actions: tuple[Action, ...] = attrs.field(converter=_actions)
    title: str | None = None
    description: str | None = None


def _table(item: object, where: str) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a table; got {item!r:.60}")
    return item


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"two {what} are called {name!r}; names are unique")
        seen.add(name)


def _optional_text(value: object, what: str) -> str | None:
    if value is None:
        return None
    return _word(value, what)


def triggers_from_list(data: object, vocabulary: Vocabulary) -> tuple[Trigger, ...]:
    """Read ``[[triggers]]`` tables (``name``, ``when``, ``actions``, ``description``,
    ``active``); ConfigError naming the trigger and the mistake."""
    if not isinstance(data, list | tuple):
        raise ConfigError("triggers is a list of tables ([[triggers]])")
    commands = vocabulary.for_commands()
    out: list[Trigger] = []
    for index, item in enumerate(data):
        table = _table(item, f"triggers[{index}]")
        label = f"trigger {table.get('name', index + 1)!r}"
        try:
            unknown = sorted(set(table) - {"name", "when", "actions", "description", "active"})
            if unknown:
                raise ValidationError(f"unknown keys {', '.join(map(str, unknown))}")
            active = table.get("active", True)
            if not isinstance(active, bool):
                raise ValidationError("active must be true or false")
            when = table.get("when")
            out.append(
                Trigger(
                    name=table.get("name"),  # type: ignore[arg-type]  # checked by Trigger
                    when=ALWAYS if when is None else commands.parse(when),
                    actions=parse_actions(table.get("actions"), vocabulary),
                    description=_optional_text(table.get("description"), "description"),
                    active=active,
                )
            )
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    _unique([t.name for t in out], "triggers")
    return tuple(out)


def automations_from_list(data: object, vocabulary: Vocabulary) -> tuple[Automation, ...]:
    """Read ``[[automations]]`` tables (``name``, ``when`` with a time part, ``actions``,
    ``description``, ``active``)."""
    if not isinstance(data, list | tuple):
        raise ConfigError("automations is a list of tables ([[automations]])")
    out: list[Automation] = []
    for index, item in enumerate(data):
        table = _table(item, f"automations[{index}]")
        label = f"automation {table.get('name', index + 1)!r}"
        try:
            unknown = sorted(set(table) - {"name", "when", "actions", "description", "active"})
            if unknown:
                raise ValidationError(f"unknown keys {', '.join(map(str, unknown))}")
            active = table.get("active", True)
            if not isinstance(active, bool):
                raise ValidationError("active must be true or false")
            if "when" not in table:
                raise ValidationError("an automation needs a condition with a time part")
            out.append(
                Automation(
                    name=table.get("name"),  # type: ignore[arg-type]  # checked by Automation
                    when=vocabulary.parse(table["when"]),
                    actions=parse_actions(table.get("actions"), vocabulary),
                    description=_optional_text(table.get("description"), "description"),
                    active=active,
                )
            )
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    _unique([a.name for a in out], "automations")
    return tuple(out)


def macros_from_list(data: object, vocabulary: Vocabulary) -> tuple[Macro, ...]:
    """Read ``[[macros]]`` tables (``name``, ``actions``, ``title``, ``description``)."""
    if not isinstance(data, list | tuple):
        raise ConfigError("macros is a list of tables ([[macros]])")
    out: list[Macro] = []
    for index, item in enumerate(data):
        table = _table(item, f"macros[{index}]")
        label = f"macro {table.get('name', index + 1)!r}"
        try:
            unknown = sorted(set(table) - {"name", "actions", "title", "description"})
            if unknown:
                raise ValidationError(f"unknown keys {', '.join(map(str, unknown))}")
            out.append(
                Macro(
                    name=table.get("name"),  # type: ignore[arg-type]  # checked by Macro
                    actions=parse_actions(table.get("actions"), vocabulary),
                    title=_optional_text(table.get("title"), "title"),
                    description=_optional_text(table.get("description"), "description"),
                )
            )
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    _unique([m.name for m in out], "macros")
    return tuple(out)


def action_to_data(action: Action) -> dict[str, Any]:
    """An action's plain-data form (what :func:`parse_action` reads)."""
    if isinstance(action, SetStatus):
        return {"status": action.status}
    if isinstance(action, SetPriority):
        return {"priority": action.priority.name}
    if isinstance(action, SetImpactUrgency):
        data: dict[str, Any] = {}
        if action.impact is not None:
            data["impact"] = action.impact.value
        if action.urgency is not None:
            data["urgency"] = action.urgency.value
        return data
    if isinstance(action, SetGroup):
        return {"group": action.group}
    if isinstance(action, SetAssignee):
        return {"unassign": True} if action.agent is None else {"assignee": action.agent}
    if isinstance(action, ChangeTags):
        data = {}
        if action.add:
            data["add_tags"] = sorted(action.add)
        if action.remove:
            data["remove_tags"] = sorted(action.remove)
        return data
    if isinstance(action, SetFields):
        return {"fields": dict(action.values)}
    if isinstance(action, AddComment):
        return {"reply" if action.public else "note": action.body.text}
    if isinstance(action, Notify):
        return {
            "notify": [a.value for a in action.audiences],
            "subject": action.subject.text,
            "body": action.body.text,
        }
    return {"webhook": action.endpoint}
