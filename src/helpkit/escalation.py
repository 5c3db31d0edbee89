"""Escalation tiers (L1 service desk .. L4 external vendor) and SLA-bound escalation rules.

Pure: the ladder and the rules are values; :func:`escalation_target` and
:meth:`EscalationRules.actions_for` decide, the desk carries the decisions out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from helpkit.calendar import BusinessCalendar
from helpkit.errors import ConfigError, InvalidTransitionError, ValidationError
from helpkit.events import Assigned, Escalated, Event, MergedInto, StatusChanged, TicketOpened
from helpkit.sla.policies import Metric
from helpkit.tickets import StatusCategory

__all__ = [
    "DEFAULT_TIER_NAMES",
    "Action",
    "EscalationKind",
    "EscalationRule",
    "EscalationRules",
    "Tier",
    "TierLadder",
    "escalation_target",
    "tier_times",
]

DEFAULT_TIER_NAMES = {1: "Service desk", 2: "Technicians", 3: "Specialists", 4: "External vendor"}


class EscalationKind(enum.Enum):
    """How a ticket moves between groups."""

    HIERARCHICAL = "hierarchical"
    """Up one tier (L1 -> L2)."""
    FUNCTIONAL = "functional"
    """To another group of the same tier."""
    DE_ESCALATION = "de-escalation"
    """Down one tier."""


def _groups(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    result = tuple(dict.fromkeys(values))
    if not all(isinstance(g, str) and g for g in result):
        raise ValidationError("tier groups are non-empty group ids")
    return result


@attrs.frozen
class Tier:
    """One support level: its number (1 = L1), a name, and its groups (the first is the default)."""

    level: int
    name: str
    groups: tuple[str, ...] = attrs.field(default=(), converter=_groups)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.level, int) or isinstance(self.level, bool) or self.level < 1:
            raise ValidationError(f"tier levels are integers from 1 (L1); got {self.level!r}")

    @property
    def label(self) -> str:
        """``L1``, ``L2``..."""
        return f"L{self.level}"


def _tiers(values: Iterable[Tier]) -> tuple[Tier, ...]:
    return tuple(sorted(values, key=lambda t: t.level))


@attrs.frozen
class TierLadder:
    """The escalation ladder: tiers by level; a group belongs to at most one tier."""

    tiers: tuple[Tier, ...] = attrs.field(converter=_tiers)
    _tier_of: Mapping[str, Tier] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        levels = [t.level for t in self.tiers]
        if len(set(levels)) != len(levels):
            raise ValidationError("two tiers have the same level")
        owner: dict[str, Tier] = {}
        for tier in self.tiers:
            for group in tier.groups:
                if group in owner:
                    raise ValidationError(
                        f"group {group!r} is in both {owner[group].label} and {tier.label}"
                    )
                owner[group] = tier
        object.__setattr__(self, "_tier_of", owner)

    @classmethod
    def default(cls, groups: Mapping[int, Sequence[str]] | None = None) -> TierLadder:
        """L1 service desk, L2 technicians, L3 specialists, L4 external vendor."""
        groups = groups or {}
        return cls(
            [
                Tier(level, name, tuple(groups.get(level, ())))
                for level, name in DEFAULT_TIER_NAMES.items()
            ]
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TierLadder:
        """Read ``{"L1": {"name": "...", "groups": [...]}, ...}`` (keys ``L1`` or ``1``)."""
        tiers = []
        for key, spec in data.items():
            text = str(key).upper().removeprefix("L")
            if not text.isdigit():
                raise ConfigError(f"tier keys are L1, L2...; got {key!r}")
            level = int(text)
            if not isinstance(spec, Mapping):
                raise ConfigError(f"tier {key!r} must be a table")
            name = str(spec.get("name", DEFAULT_TIER_NAMES.get(level, f"L{level}")))
            try:
                tiers.append(Tier(level, name, tuple(spec.get("groups", ()))))
            except ValidationError as exc:
                raise ConfigError(f"tier {key!r}: {exc}") from exc
        try:
            return cls(tiers)
        except ValidationError as exc:
            raise ConfigError(str(exc)) from exc

    def tier_of(self, group_id: str | None) -> Tier | None:
        """The tier a group belongs to, if any."""
        return None if group_id is None else self._tier_of.get(group_id)

    def level(self, level: int) -> Tier | None:
        """The tier with that level, if configured."""
        return next((t for t in self.tiers if t.level == level), None)

    def above(self, tier: Tier | None) -> Tier | None:
        """The next tier up that has groups (L1 for a ticket in no tier)."""
        start = 0 if tier is None else tier.level
        return next((t for t in self.tiers if t.level > start and t.groups), None)

    def below(self, tier: Tier) -> Tier | None:
        """The next tier down that has groups."""
        return next((t for t in reversed(self.tiers) if t.level < tier.level and t.groups), None)


def escalation_target(
    ladder: TierLadder,
    current_group: str | None,
    kind: EscalationKind,
    group: str | None = None,
) -> tuple[str, Tier | None, Tier | None]:
    """Where an escalation goes: ``(group, new tier, old tier)``.

    ``group`` picks a specific group; it must be in the right tier for ``kind``.
    Raises InvalidTransitionError when there is nowhere to go.
    """
    old = ladder.tier_of(current_group)
    if kind is EscalationKind.HIERARCHICAL:
        new = ladder.above(old)
        if new is None:
            raise InvalidTransitionError(
                f"no tier above {old.label if old else 'the current group'} to escalate to"
            )
    elif kind is EscalationKind.DE_ESCALATION:
        if old is None:
            raise InvalidTransitionError("the ticket is not in a tier; nothing to de-escalate")
        new = ladder.below(old)
        if new is None:
            raise InvalidTransitionError(f"no tier below {old.label}")
    else:
        if old is None:
            raise InvalidTransitionError("functional escalation needs the ticket in a tier")
        new = old
    if group is not None:
        if ladder.tier_of(group) is not new:
            raise ValidationError(
                f"group {group!r} is not in {new.label} ({kind.value} escalation goes there)"
            )
        target = group
    else:
        candidates = [g for g in new.groups if g != current_group]
        if not candidates:
            raise InvalidTransitionError(f"{new.label} has no other group to move to")
        target = candidates[0]
    if target == current_group:
        raise InvalidTransitionError(f"the ticket is already in group {target!r}")
    return target, new, old


class Action(enum.Enum):
    """What an escalation rule does when its SLA threshold is crossed."""

    NOTIFY_ASSIGNEE = "notify_assignee"
    NOTIFY_GROUP = "notify_group"
    ESCALATE = "escalate"
    """Hierarchical escalation: one tier up."""
    RAISE_PRIORITY = "raise_priority"
    """One priority step more urgent (P3 -> P2)."""


def _actions(values: Iterable[Action | str]) -> tuple[Action, ...]:
    if isinstance(values, (str, Action)):
        values = (values,)
    try:
        result = tuple(dict.fromkeys(Action(v) for v in values))
    except ValueError as exc:
        known = ", ".join(a.value for a in Action)
        raise ValidationError(f"{exc} (known actions: {known})") from None
    if not result:
        raise ValidationError("an escalation rule needs at least one action")
    return result


def _fraction(value: float | str) -> float:
    if isinstance(value, str):
        if value.strip().lower() == "breach":
            return 1.0
        text = value.strip().removesuffix("%")
        try:
            number = float(text) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            raise ValidationError(
                f"threshold must be a fraction, a percentage or 'breach': {value!r}"
            ) from None
        value = number
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValidationError(f"threshold must be in (0, 1] (1 = breach); got {value!r}")
    return float(value)


def _rule_metric(value: object) -> str | None:
    if value is None:
        return None
    try:
        return Metric(value).value
    except ValueError:
        known = ", ".join(m.value for m in Metric)
        raise ValidationError(
            f"unknown SLA metric {value!r:.40} (known: {known}); a rule on it would never fire"
        ) from None


@attrs.frozen(kw_only=True)
class EscalationRule:
    """When ``metric`` (any metric if ``None``) crosses ``at`` (1.0 = breach), do ``actions``."""

    name: str
    at: float = attrs.field(converter=_fraction)
    actions: tuple[Action, ...] = attrs.field(converter=_actions)
    metric: str | None = attrs.field(default=None, converter=_rule_metric)
    """The SLA metric's name (see :class:`helpkit.sla.Metric`), or ``None`` for any."""

    def applies(self, metric: str, fraction: float) -> bool:
        """Whether this rule fires for that metric crossing that threshold."""
        return (self.metric is None or self.metric == metric) and abs(self.at - fraction) < 1e-9


@attrs.frozen
class EscalationRules:
    """An ordered list of escalation rules (configuration data)."""

    rules: tuple[EscalationRule, ...] = ()

    def __attrs_post_init__(self) -> None:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValidationError("escalation rule names must be unique")

    def thresholds(self) -> frozenset[float]:
        """Every threshold a rule listens to (the SLA warnings must include them)."""
        return frozenset(r.at for r in self.rules)

    def actions_for(self, metric: str, fraction: float) -> list[tuple[EscalationRule, Action]]:
        """The (rule, action) pairs to carry out, in rule order."""
        return [(r, a) for r in self.rules if r.applies(metric, fraction) for a in r.actions]

    @classmethod
    def from_list(cls, data: Sequence[Mapping[str, Any]]) -> EscalationRules:
        """Read ``[{name=..., metric="resolution", at=0.75, actions=["notify_assignee"]}, ...]``."""
        rules = []
        for index, item in enumerate(data):
            try:
                rules.append(
                    EscalationRule(
                        name=str(item.get("name", f"rule-{index + 1}")),
                        metric=item.get("metric"),
                        at=item["at"],
                        actions=item["actions"],
                    )
                )
            except (KeyError, ValidationError, TypeError) as exc:
                raise ConfigError(f"escalation rule {index + 1}: {exc}") from exc
        try:
            return cls(tuple(rules))
        except ValidationError as exc:
            raise ConfigError(str(exc)) from exc


def tier_times(
    events: Sequence[Event],
    ladder: TierLadder,
    calendar: BusinessCalendar,
    now: datetime,
    *,
    pause_categories: frozenset[StatusCategory] = frozenset(
        {StatusCategory.PENDING, StatusCategory.ON_HOLD}
    ),
) -> dict[int, timedelta]:
    """Business time the ticket spent in each tier (its own clock per tier), up to ``now``.

    Time counts while the ticket is in a tier's group, in business hours of ``calendar``, and
    not while its status is in ``pause_categories``, solved or closed. Events are taken in the
    order of their instants (a rule's escalation is dated at the crossing it follows). Tiers
    in which no business time was counted are left out.
    """
    totals: dict[int, timedelta] = {}
    group: str | None = None
    category: StatusCategory | None = None
    since: datetime | None = None

    def flush(until: datetime) -> None:
        if since is None or group is None or category is None:
            return
        tier = ladder.tier_of(group)
        counted = category not in pause_categories and category.is_active
        if tier is not None and counted and until > since:
            spent = calendar.elapsed(since, until)
            if spent:  # a tier with no business time in it is left out
                totals[tier.level] = totals.get(tier.level, timedelta(0)) + spent

    # In the order things happened: an escalation the sweep recorded later is dated at the
    # instant its threshold was crossed (ties keep the sequence order).
    for event in sorted(events, key=lambda e: e.at):
        if event.at > now:
            break
        if isinstance(event, TicketOpened):
            group, category, since = event.group_id, event.category, event.at
            continue
        if isinstance(event, (Assigned, Escalated, StatusChanged, MergedInto)):
            flush(event.at)
            since = event.at
            if isinstance(event, (Assigned, Escalated)):
                group = event.group_id
            elif isinstance(event, StatusChanged):
                category = event.category
            else:
                category = StatusCategory.CLOSED
    flush(now)
    return totals
