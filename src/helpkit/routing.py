"""Routing: which agent of a group a ticket goes to (pure decisions; see the page *Routing*).

A group with routing (``[routing.<group>]``, :class:`GroupRouting`) hands each unassigned
ticket that enters it to one of its agents:

- **who may take it**: an active agent of the group, not away (``Agent.away_until``), in the
  working time of their shift calendar (``Agent.calendar``, a business calendar of the
  configuration), with every skill the ticket needs (:meth:`GroupRouting.required_skills`:
  from tags with a prefix and/or a custom field) and below their capacity (tickets assigned
  to them in the counted categories, every group included);
- **language**: with ``language = true``, among those, an agent who speaks the requester's
  language (same primary subtag: ``pt`` speaks ``pt-BR``); when none does, ``fallback`` says
  whether another agent takes it (``any``) or the ticket waits (``wait``);
- **which one**: ``round_robin`` takes the next agent after the group's cursor (the agent
  chosen last), by agent id, wrapping around; ``least_loaded`` the one with the fewest
  tickets, ties broken in the same rotation, so they take turns.

Nothing here reads the store or the clock: :mod:`helpkit.router` reads the states, loads and
people, calls :func:`choose`, and commits what it decided.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import attrs

from helpkit._records import frozen_mapping
from helpkit.calendar import BusinessCalendar
from helpkit.conditions import ALWAYS, Condition, Vocabulary
from helpkit.errors import ConfigError, ValidationError
from helpkit.people import Agent
from helpkit.tickets import DEFAULT_WORKFLOW, StatusCategory, Ticket

__all__ = [
    "DEFAULT_LOAD",
    "Decision",
    "GroupRouting",
    "LanguageFallback",
    "Request",
    "RoutingPolicies",
    "Strategy",
    "choose",
    "primary_language",
    "unavailable",
    "waiting_order",
]

DEFAULT_LOAD: Final = frozenset(
    {StatusCategory.NEW, StatusCategory.OPEN, StatusCategory.PENDING, StatusCategory.ON_HOLD}
)
"""The categories an agent's load counts by default: every ticket not solved or closed."""

_E = TypeVar("_E", bound=enum.Enum)

_MAX_LISTED: Final = 20
"""How many skipped agents the audit text names (then "and N more")."""


class Strategy(enum.Enum):
    """How routing picks among the agents who may take a ticket."""

    ROUND_ROBIN = "round_robin"
    """The next agent after the one chosen last (by id, wrapping around)."""
    LEAST_LOADED = "least_loaded"
    """The agent with the fewest counted tickets; ties in round-robin order."""


class LanguageFallback(enum.Enum):
    """What a ticket whose language no available agent speaks does."""

    ANY = "any"
    """Another available agent takes it."""
    WAIT = "wait"
    """It waits unassigned for a speaker."""


def _where(group_id: str, key: str) -> str:
    return f"routing.{group_id}.{key}"


def _prefix(value: str) -> str:
    """A tag prefix as tags are written: lower-case, each run of spaces one underscore
    (``"Skill "`` -> ``skill_``, as the tag ``"Skill Billing"`` is ``skill_billing``)."""
    return re.sub(r"\s+", "_", value.lstrip().lower())


def _capacity(group_id: str, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
        raise ConfigError(
            f"{_where(group_id, key)} is a whole number from 0 to 100000; got {value!r:.40}"
        )
    return value


def primary_language(tag: str) -> str:
    """The primary subtag of a BCP 47 tag, lower-case (``pt-BR`` -> ``pt``)."""
    return tag.replace("_", "-").split("-", 1)[0].lower()


_KEYS: Final = frozenset(
    {
        "strategy",
        "capacity",
        "capacities",
        "skills_tag_prefix",
        "skills_field",
        "language",
        "fallback",
        "vip_first",
        "load",
        "when",
    }
)


@attrs.frozen(kw_only=True)
class GroupRouting:
    """How one group routes its tickets (``[routing.<group>]``)."""

    group_id: str
    strategy: Strategy = Strategy.ROUND_ROBIN
    capacity: int | None = None
    """At most this many counted tickets per agent (``None``: no limit)."""
    capacities: Mapping[str, int] = attrs.field(factory=dict, converter=frozen_mapping)
    """Per-agent capacities, by agent id, overriding ``capacity``."""
    skills_tag_prefix: str | None = None
    """Tags starting with it name a skill the ticket needs (``skill_billing`` with the prefix
    ``skill_`` needs ``billing``)."""
    skills_field: str | None = None
    """A custom field whose value (a choice, a list of choices or text) names the skills the
    ticket needs."""
    language: bool = False
    """Prefer an agent who speaks the requester's language (``Contact.language``)."""
    fallback: LanguageFallback = LanguageFallback.ANY
    """When no available agent speaks it: ``any`` agent takes it, or it ``wait`` s."""
    vip_first: bool = True
    """Route waiting tickets of VIP requesters (or organizations) before the others."""
    load: frozenset[StatusCategory] = DEFAULT_LOAD
    """The categories of the tickets an agent's load counts."""
    when: Condition = ALWAYS
    """Which of the group's tickets routing takes (a condition without time: the rest wait
    for someone to assign them); every one by default."""

    def __attrs_post_init__(self) -> None:
        group = self.group_id
        if not isinstance(group, str) or not group.strip():
            raise ConfigError(f"a routed group is named by its id; got {group!r:.40}")
        if not isinstance(self.strategy, Strategy):
            raise ConfigError(f"{_where(group, 'strategy')} must be a Strategy")
        if self.capacity is not None:
            _capacity(group, "capacity", self.capacity)
        for agent_id, value in self.capacities.items():
            if not isinstance(agent_id, str) or not agent_id.strip():
                raise ConfigError(f"{_where(group, 'capacities')} is keyed by agent ids")
            _capacity(group, f"capacities.{agent_id}", value)
        for key in ("skills_tag_prefix", "skills_field"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{_where(group, key)} is a non-empty word; got {value!r:.40}")
        for key in ("language", "vip_first"):
            if getattr(self, key) not in (True, False):
                raise ConfigError(f"{_where(group, key)} is true or false")
        if not isinstance(self.fallback, LanguageFallback):
            raise ConfigError(f"{_where(group, 'fallback')} must be a LanguageFallback")
        if not self.load or not all(isinstance(c, StatusCategory) for c in self.load):
            raise ConfigError(f"{_where(group, 'load')} is a non-empty list of categories")
        if not isinstance(self.when, Condition):
            raise ConfigError(f"{_where(group, 'when')} must be a Condition")

    def capacity_of(self, agent_id: str) -> int | None:
        """The agent's capacity in this group (``None``: no limit)."""
        return self.capacities.get(agent_id, self.capacity)

    def required_skills(self, ticket: Ticket) -> frozenset[str]:
        """The skills ``ticket`` needs: its tags with the prefix (prefix removed) and the
        value of the skills field, lower-case."""
        found: set[str] = set()
        prefix = self.skills_tag_prefix
        if prefix is not None:
            cut = prefix.lower()
            found.update(t[len(cut) :] for t in ticket.tags if t.startswith(cut) and t != cut)
        if self.skills_field is not None:
            value = ticket.custom_fields.get(self.skills_field)
            values: Iterable[object] = (
                value if isinstance(value, tuple | list | frozenset | set) else (value,)
            )
            found.update(
                "_".join(v.strip().lower().split())
                for v in values
                if isinstance(v, str) and v.strip()
            )
        return frozenset(found)

    @classmethod
    def from_dict(
        cls, group_id: str, data: Mapping[str, Any], vocabulary: Vocabulary | None = None
    ) -> GroupRouting:
        """Read a ``[routing.<group>]`` table; an unknown key or a bad value raises
        ConfigError naming it. ``when`` is read against ``vocabulary`` (the desk's, without
        time; without one, the default workflow's)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"[routing.{group_id}] is a table; got {data!r:.60}")
        unknown = sorted(set(map(str, data)) - _KEYS)
        if unknown:
            raise ConfigError(
                f"unknown [routing.{group_id}] keys: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_KEYS))})"
            )
        values: dict[str, Any] = {}
        if "strategy" in data:
            values["strategy"] = _member(Strategy, group_id, "strategy", data["strategy"])
        if "fallback" in data:
            values["fallback"] = _member(LanguageFallback, group_id, "fallback", data["fallback"])
        if "capacity" in data:
            values["capacity"] = _capacity(group_id, "capacity", data["capacity"])
        if "capacities" in data:
            table = data["capacities"]
            if not isinstance(table, Mapping):
                raise ConfigError(
                    f"{_where(group_id, 'capacities')} is a table of agent id = capacity"
                )
            values["capacities"] = {
                str(k): _capacity(group_id, f"capacities.{k}", v) for k, v in table.items()
            }
        for key in ("skills_tag_prefix", "skills_field"):
            if key in data:
                value = data[key]
                if not isinstance(value, str) or not value.strip():
                    raise ConfigError(
                        f"{_where(group_id, key)} is a non-empty word; got {value!r:.40}"
                    )
                values[key] = value.strip() if key == "skills_field" else _prefix(value)
        for key in ("language", "vip_first"):
            if key in data:
                if data[key] is not True and data[key] is not False:
                    raise ConfigError(
                        f"{_where(group_id, key)} is true or false; got {data[key]!r:.40}"
                    )
                values[key] = data[key]
        if "load" in data:
            items = data["load"]
            if isinstance(items, str) or not isinstance(items, list | tuple) or not items:
                raise ConfigError(
                    f"{_where(group_id, 'load')} is a non-empty list of status categories"
                )
            values["load"] = frozenset(
                _member(StatusCategory, group_id, "load", item) for item in items
            )
        if "when" in data:
            values["when"] = _when(group_id, data["when"], vocabulary)
        return cls(group_id=group_id, **values)


def _when(group_id: str, data: object, vocabulary: Vocabulary | None) -> Condition:
    if vocabulary is None:
        vocabulary = Vocabulary(DEFAULT_WORKFLOW)
    try:
        return vocabulary.timeless().parse(data)
    except ValidationError as exc:
        raise ConfigError(f"{_where(group_id, 'when')}: {exc}") from None


def _member(kind: type[_E], group_id: str, key: str, value: object) -> _E:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(str(m.value) for m in kind)
        raise ConfigError(f"{_where(group_id, key)} is one of {known}; got {value!r:.40}") from None


@attrs.frozen
class RoutingPolicies:
    """The routing of every routed group (``[routing]``), by group id."""

    groups: Mapping[str, GroupRouting] = attrs.field(factory=dict, converter=frozen_mapping)

    def __attrs_post_init__(self) -> None:
        for group_id, policy in self.groups.items():
            if not isinstance(policy, GroupRouting) or policy.group_id != group_id:
                raise ConfigError(f"routing of group {group_id!r} must be its GroupRouting")

    def __contains__(self, group_id: object) -> bool:
        return group_id in self.groups

    def __bool__(self) -> bool:
        return bool(self.groups)

    def get(self, group_id: str | None) -> GroupRouting | None:
        """The group's routing, or ``None`` when it has none."""
        return None if group_id is None else self.groups.get(group_id)

    @classmethod
    def of(cls, *policies: GroupRouting) -> RoutingPolicies:
        """The policies given, each under its group."""
        return cls({p.group_id: p for p in policies})

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], vocabulary: Vocabulary | None = None
    ) -> RoutingPolicies:
        """Read the ``[routing]`` table: one ``[routing.<group>]`` table per routed group
        (their ``when`` against ``vocabulary``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"[routing] holds one table per group; got {data!r:.60}")
        return cls({str(k): GroupRouting.from_dict(str(k), v, vocabulary) for k, v in data.items()})


@attrs.frozen
class Request:
    """What routing needs to know of a ticket besides its group."""

    skills: frozenset[str] = frozenset()
    language: str | None = None
    """The requester's language (``None``: no preference)."""


@attrs.frozen
class Decision:
    """What :func:`choose` decided, and why (the audit trail's reason)."""

    strategy: Strategy
    agent_id: str | None
    """The agent chosen (``None``: the ticket waits)."""
    cursor: str | None
    """The group's round-robin cursor after this decision."""
    load: int | None = None
    """The chosen agent's load before this ticket."""
    capacity: int | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    """The agents of the group not chosen for a reason, with it, by agent id."""
    fallback: bool = False
    """Nobody available spoke the requester's language: another agent was chosen."""
    waiting: str | None = None
    """Why nobody was chosen."""

    def reason(self) -> str:
        """The audit text: strategy, who was chosen with their load, who was skipped and why."""
        if self.agent_id is None:
            head = f"routing {self.strategy.value}: nobody chosen ({self.waiting})"
        else:
            limit = "no limit" if self.capacity is None else f"capacity {self.capacity}"
            head = f"routing {self.strategy.value}: {self.agent_id} (load {self.load}, {limit})"
            if self.fallback:
                head += "; nobody available speaks the requester's language"
        if not self.skipped:
            return head
        listed = "; ".join(f"{a}: {why}" for a, why in self.skipped[:_MAX_LISTED])
        more = len(self.skipped) - _MAX_LISTED
        return f"{head}; skipped {listed}" + (f"; and {more} more" if more > 0 else "")


def unavailable(
    agent: Agent, now: datetime, calendars: Mapping[str, BusinessCalendar]
) -> str | None:
    """Why ``agent`` cannot take a ticket at ``now`` (inactive, away, off shift), or ``None``."""
    if not agent.active:
        return "inactive"
    if agent.away_until is not None and agent.away_until > now:
        return f"away until {agent.away_until.isoformat()}"
    if agent.calendar is not None:
        calendar = calendars.get(agent.calendar)
        if calendar is None:
            return f"unknown calendar {agent.calendar!r}"
        if not calendar.is_open(now):
            return f"off shift ({agent.calendar})"
    return None


def _rotation(agents: Sequence[Agent], cursor: str | None) -> list[Agent]:
    ordered = sorted(agents, key=lambda a: a.id)
    if cursor is None:
        return ordered
    return [a for a in ordered if a.id > cursor] + [a for a in ordered if a.id <= cursor]


def choose(
    policy: GroupRouting,
    agents: Sequence[Agent],
    loads: Mapping[str, int],
    cursor: str | None,
    request: Request,
    *,
    now: datetime,
    calendars: Mapping[str, BusinessCalendar],
) -> Decision:
    """Choose the agent of ``agents`` (the group's members) to take a ticket.

    ``loads`` are the agents' counted tickets (a missing agent counts 0), ``cursor`` the
    group's round-robin cursor. Deterministic: the same arguments give the same decision.
    """
    skipped: dict[str, str] = {}
    able: list[Agent] = []
    members = [a for a in agents if a.in_group(policy.group_id)]
    for agent in sorted(members, key=lambda a: a.id):
        why = unavailable(agent, now, calendars)
        if why is None:
            missing = sorted(request.skills - set(agent.skills))
            if missing:
                why = f"lacks {', '.join(missing)}"
        if why is None:
            limit = policy.capacity_of(agent.id)
            load = loads.get(agent.id, 0)
            if limit is not None and load >= limit:
                why = f"at capacity ({load} of {limit})"
        if why is None:
            able.append(agent)
        else:
            skipped[agent.id] = why
    fallback = False
    if policy.language and request.language is not None:
        wanted = primary_language(request.language)
        speakers = [a for a in able if wanted in {primary_language(x) for x in a.languages}]
        if speakers:
            for agent in able:
                if agent not in speakers:
                    skipped[agent.id] = f"does not speak {request.language}"
            able = speakers
        elif able and policy.fallback is LanguageFallback.ANY:
            fallback = True
        elif able:
            for agent in able:
                skipped[agent.id] = f"does not speak {request.language}"
            return Decision(
                policy.strategy,
                None,
                cursor,
                skipped=tuple(sorted(skipped.items())),
                waiting=f"nobody available speaks {request.language}",
            )
    listed = tuple(sorted(skipped.items()))
    if not able:
        why = "no agent in the group" if not members else "no agent available with capacity"
        return Decision(policy.strategy, None, cursor, skipped=listed, waiting=why)
    rotation = _rotation(able, cursor)
    if policy.strategy is Strategy.LEAST_LOADED:
        chosen = min(rotation, key=lambda a: loads.get(a.id, 0))  # first of the fewest
    else:
        chosen = rotation[0]
    return Decision(
        policy.strategy,
        chosen.id,
        chosen.id,
        load=loads.get(chosen.id, 0),
        capacity=policy.capacity_of(chosen.id),
        skipped=listed,
        fallback=fallback,
    )


def waiting_order(
    tickets: Iterable[Ticket], vip: frozenset[str], *, vip_first: bool = True
) -> list[Ticket]:
    """Waiting tickets in the order routing takes them: those whose id is in ``vip`` first
    (with ``vip_first``), then by priority (P1 first), then oldest first, then by id."""
    return sorted(
        tickets,
        key=lambda t: (
            vip_first and t.id not in vip,
            t.priority.value,
            t.created_at,
            t.id,
        ),
    )
