# Over 600 lines: a policy, its targets, its conditions and their TOML reading are read and
# checked together.
"""SLA policies: what is measured (metrics and targets per priority), on which business
calendar, which statuses pause the clock, and when a policy applies to a ticket.

Pure values, built in code or read from the ``[sla]`` table of ``helpkit.toml``; the clock that
measures a ticket against a policy is :mod:`helpkit.sla.clock`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Final

import attrs

from helpkit._time import parse_duration
from helpkit.calendar import BusinessCalendar
from helpkit.conditions import Condition, Subject, Vocabulary
from helpkit.errors import ConfigError, NotFoundError, ValidationError
from helpkit.priority import Priority
from helpkit.tickets import DEFAULT_WORKFLOW, StatusCategory, Ticket

__all__ = [
    "DEFAULT_PAUSE_CATEGORIES",
    "Metric",
    "SlaCondition",
    "SlaContext",
    "SlaPolicy",
    "SlaPolicySet",
    "Targets",
    "parse_duration",
]

DEFAULT_PAUSE_CATEGORIES: Final = frozenset({StatusCategory.PENDING, StatusCategory.ON_HOLD})
"""The status categories that pause SLA clocks unless a policy says otherwise."""


class Metric(enum.Enum):
    """What an SLA measures."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    PERIODIC_UPDATE = "periodic_update"
    RESOLUTION = "resolution"


# ---------------------------------------------------------------- durations


def _duration_from(value: object, where: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    raise ConfigError(f"{where}: a duration must be text like '4h' or 'PT4H'; got {value!r}")


# ---------------------------------------------------------------- policies


def _positive_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ValidationError(
            f"SLA target {attribute.name} must be a positive timedelta or None; got {value!r}"
        )


@attrs.frozen(kw_only=True)
class Targets:
    """The target of each metric for one priority; ``None`` means the metric is not measured."""

    first_response: timedelta | None = attrs.field(default=None, validator=_positive_or_none)
    next_response: timedelta | None = attrs.field(default=None, validator=_positive_or_none)
    periodic_update: timedelta | None = attrs.field(default=None, validator=_positive_or_none)
    resolution: timedelta | None = attrs.field(default=None, validator=_positive_or_none)

    def for_metric(self, metric: Metric | str) -> timedelta | None:
        """The target of ``metric`` (a :class:`Metric` or its value), or ``None``."""
        # Fields named so; _value_, not .value: the enum property costs more than the lookup.
        found: timedelta | None = getattr(self, _metric(metric)._value_)
        return found


def _metric(value: Metric | str) -> Metric:
    if isinstance(value, Metric):
        return value
    try:
        return Metric(value)
    except ValueError:
        known = ", ".join(m.value for m in Metric)
        raise ValidationError(f"unknown SLA metric {value!r} (known: {known})") from None


def _is_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"{attribute.name} must be true or false; got {value!r}")


def _optional_text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"expected non-empty text or None; got {value!r}")
    return value.strip()


@attrs.frozen(kw_only=True)
class SlaContext:
    """Facts about the requester and their organization that policy conditions test.

    The desk looks them up (from the contact and organization); this module never does.
    """

    segment: str | None = attrs.field(default=None, converter=_optional_text)
    region: str | None = attrs.field(default=None, converter=_optional_text)
    vip: bool = attrs.field(default=False, validator=_is_bool)


def _items(value: object, what: str) -> list[object]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError(f"condition {what} must be a list (or set) of values; got {value!r}")
    items = list(value)
    if not items:
        raise ValidationError(f"condition {what} is empty and would never match; omit it")
    return items


def _text_set(value: object, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    out: set[str] = set()
    for item in _items(value, what):
        text = _optional_text(item)
        if text is None:
            raise ValidationError(f"condition {what} holds an empty value")
        out.add(text)
    return frozenset(out)


def _segments(value: object) -> frozenset[str] | None:
    return _text_set(value, "segments")


def _regions(value: object) -> frozenset[str] | None:
    return _text_set(value, "regions")


def _channels(value: object) -> frozenset[str] | None:
    return _text_set(value, "channels")


def _groups(value: object) -> frozenset[str] | None:
    return _text_set(value, "groups")


def _tag_set(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    out: set[str] = set()
    for item in _items(value, "tags"):
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"condition tags hold a bad tag {item!r}")
        out.add("_".join(item.strip().lower().split()))  # the lifecycle's tag normal form
    return frozenset(out)


def _priority_set(value: object) -> frozenset[Priority] | None:
    if value is None:
        return None
    return frozenset(Priority.coerce(item) for item in _items(value, "priorities"))


def _optional_bool(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise ValidationError(f"condition {attribute.name} must be true, false or None")


@attrs.frozen(kw_only=True)
class SlaCondition:
    """When a policy applies: every filter given must match (``None`` means "any").

    ``tags`` matches when the ticket has any of them; the other sets match when the ticket's
    (or the context's) value is one of them. ``vip`` matches the context's VIP flag.
    """

    priorities: frozenset[Priority] | None = attrs.field(default=None, converter=_priority_set)
    segments: frozenset[str] | None = attrs.field(default=None, converter=_segments)
    regions: frozenset[str] | None = attrs.field(default=None, converter=_regions)
    channels: frozenset[str] | None = attrs.field(default=None, converter=_channels)
    groups: frozenset[str] | None = attrs.field(default=None, converter=_groups)
    tags: frozenset[str] | None = attrs.field(default=None, converter=_tag_set)
    vip: bool | None = attrs.field(default=None, validator=_optional_bool)

    def matches(self, ticket: Ticket, context: SlaContext | None = None) -> bool:
        """Whether ``ticket`` (with facts ``context`` about its requester) meets this condition."""
        ctx = context if context is not None else SlaContext()
        return (
            (self.priorities is None or ticket.priority in self.priorities)
            and (self.segments is None or ctx.segment in self.segments)
            and (self.regions is None or ctx.region in self.regions)
            and (self.channels is None or ticket.channel in self.channels)
            and (self.groups is None or ticket.group_id in self.groups)
            and (self.tags is None or bool(self.tags & ticket.tags))
            and (self.vip is None or ctx.vip is self.vip)
        )


def _name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValidationError(f"an SLA policy needs a non-empty name; got {value!r}")


def _is_calendar(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, BusinessCalendar):
        raise ValidationError(f"an SLA policy needs a BusinessCalendar; got {value!r}")


def _targets_map(value: object) -> Mapping[Priority, Targets]:
    if not isinstance(value, Mapping):
        raise ValidationError("SLA targets must map priorities to Targets")
    out: dict[Priority, Targets] = {}
    for key, targets in value.items():
        priority = Priority.coerce(key)
        if priority in out:
            raise ValidationError(f"SLA targets for {priority.name} are given twice")
        if not isinstance(targets, Targets):
            raise ValidationError(f"SLA targets for {priority.name} must be a Targets value")
        out[priority] = targets
    return MappingProxyType(dict(sorted(out.items())))


def _optional_condition(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Condition):
        raise ValidationError(f"an SLA policy's when must be a Condition; got {value!r:.60}")


def _conditions(value: object) -> tuple[SlaCondition, ...]:
    if isinstance(value, SlaCondition):
        return (value,)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("SLA policy conditions must be a sequence of SlaCondition")
    out = tuple(value)
    if not all(isinstance(c, SlaCondition) for c in out):
        raise ValidationError("SLA policy conditions must be SlaCondition values")
    return out


def _fractions(value: object) -> tuple[float, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("warn_at must be a sequence of fractions such as (0.5, 0.75)")
    out: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise ValidationError(f"warn_at values are fractions in (0, 1); got {item!r}")
        fraction = float(item)
        if not (0.0 < fraction < 1.0) or math.isnan(fraction):
            raise ValidationError(f"warn_at values are fractions in (0, 1); got {item!r}")
        out.append(fraction)
    if len(set(out)) != len(out):
        raise ValidationError(f"warn_at has duplicate thresholds: {sorted(out)}")
    return tuple(sorted(out))


def _categories(value: object) -> frozenset[StatusCategory]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("pause_categories must be a set of status categories")
    out: set[StatusCategory] = set()
    for item in value:
        try:
            category = StatusCategory(item)
        except ValueError:
            known = ", ".join(c.value for c in StatusCategory)
            raise ValidationError(f"unknown status category {item!r} (known: {known})") from None
        if not category.is_active:
            raise ValidationError(
                f"{category.value} cannot be a pause category: solved already pauses the "
                "response metrics (and achieves resolution), closed stops every clock"
            )
        out.add(category)
    return frozenset(out)


@attrs.frozen
class SlaPolicy:
    """Targets per priority, the calendar they count in, and when the policy applies.

    The policy applies when any of its ``conditions`` matches (no conditions: always).
    ``warn_at`` are warning thresholds as fractions of a target, in (0, 1); they are kept
    sorted. A priority missing from ``targets`` is not measured at all. ``pause_categories``
    are the status categories whose time does not count (pending and on_hold by default).
    """

    name: str = attrs.field(validator=_name)
    calendar: BusinessCalendar = attrs.field(validator=_is_calendar)
    targets: Mapping[Priority, Targets] = attrs.field(converter=_targets_map)
    conditions: tuple[SlaCondition, ...] = attrs.field(
        default=(), converter=_conditions, kw_only=True
    )
    warn_at: tuple[float, ...] = attrs.field(default=(0.75,), converter=_fractions, kw_only=True)
    pause_categories: frozenset[StatusCategory] = attrs.field(
        default=DEFAULT_PAUSE_CATEGORIES, converter=_categories, kw_only=True
    )
    when: Condition | None = attrs.field(default=None, kw_only=True, validator=_optional_condition)
    """A condition in the rules' language (see :mod:`helpkit.conditions`) the ticket must
    also meet, beside ``conditions``; it cannot depend on time."""

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.calendar,
                tuple(self.targets.items()),
                self.conditions,
                self.warn_at,
                self.pause_categories,
                self.when,
            )
        )

    def applies_to(
        self, ticket: Ticket, context: SlaContext | None = None, subject: Subject | None = None
    ) -> bool:
        """Whether any of ``conditions`` matches (always true without any) and ``when`` holds
        (tested on ``subject``, which gives the requester and organization; without it, on
        the ticket alone)."""
        if self.conditions and not any(c.matches(ticket, context) for c in self.conditions):
            return False
        if self.when is None:
            return True
        if subject is None:
            subject = Subject(ticket=ticket, now=ticket.updated_at)
        return self.when.matches(subject)

    def target(self, metric: Metric | str, priority: Priority) -> timedelta | None:
        """The target of ``metric`` for ``priority``, or ``None`` when it is not measured."""
        # Looked up by identity too (as fingerprint): a sweep asks it a few times per ticket.
        # Keyed by the members' identities (an enum member's hash runs Python code); other
        # values (a metric's name, a priority's number) are not kept.
        key: tuple[int, int, int] | None = None
        if metric.__class__ is Metric and priority.__class__ is Priority:
            key = (id(self), id(metric), id(priority))
            kept = _TARGETS.get(key)
            if kept is not None and kept[0] is self:
                return kept[1]
        targets = self.targets.get(
            priority if isinstance(priority, Priority) else Priority.coerce(priority)
        )
        found = None if targets is None else targets.for_metric(metric)
        if key is not None:
            if len(_TARGETS) >= 4096:
                _TARGETS.clear()
            _TARGETS[key] = (self, found)
        return found

    def fingerprint(self) -> str:
        """A digest of everything that shapes this policy's clock: its name, calendar,
        targets, warnings and pauses (not its conditions, which only choose the policy).

        The same in every process, so a fold kept by a store under one fingerprint is read
        back only while the policy of that name is still the same (see
        :meth:`~helpkit.sla.SlaFold.to_data`).
        """
        # Looked up by identity: hashing a policy (its calendar, its targets) costs more than
        # a sweep can spend per ticket. A policy is immutable, so its digest never changes.
        kept = _FINGERPRINTS.get(id(self))
        if kept is not None and kept[0] is self:
            return kept[1]
        digest = _fingerprint(self)
        if len(_FINGERPRINTS) >= 256:
            _FINGERPRINTS.clear()
        _FINGERPRINTS[id(self)] = (self, digest)
        return digest

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        calendars: Mapping[str, BusinessCalendar],
        vocabulary: Vocabulary | None = None,
    ) -> SlaPolicy:
        """Build a policy from a table of ``helpkit.toml`` (see the configuration reference).

        ``calendar`` names one of ``calendars`` or is an inline calendar table; ``when`` is a
        condition read with ``vocabulary`` (the desk's statuses and custom fields; default:
        the default workflow, no custom fields). Errors are
        :class:`~helpkit.errors.ConfigError` naming the offending key.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"an SLA policy must be a table; got {type(data).__name__}")
        label = f"SLA policy {data.get('name')!r}"
        unknown = set(data) - _POLICY_KEYS
        if unknown:
            raise ConfigError(
                f"{label}: unknown keys {sorted(unknown)}; allowed: {sorted(_POLICY_KEYS)}"
            )
        for key in ("name", "calendar", "targets"):
            if key not in data:
                raise ConfigError(f"{label}: missing key {key!r}")
        calendar = _calendar_from(data["calendar"], calendars, label)
        raw_targets = data["targets"]
        if not isinstance(raw_targets, Mapping):
            raise ConfigError(f"{label}: 'targets' must be a table of priorities (P1..P5)")
        targets: dict[object, Targets] = {}
        for key, row in raw_targets.items():
            targets[key] = _targets_from(row, f"{label}: targets.{key}")
        raw_conditions = data.get("conditions", [])
        if not isinstance(raw_conditions, list | tuple):
            raise ConfigError(f"{label}: 'conditions' must be a list of tables")
        conditions = [
            _condition_from(c, f"{label}: conditions[{i}]") for i, c in enumerate(raw_conditions)
        ]
        kwargs: dict[str, Any] = {"conditions": conditions}
        if "when" in data:
            words = vocabulary or Vocabulary(DEFAULT_WORKFLOW, calendars=calendars)
            try:
                kwargs["when"] = words.timeless().parse(data["when"])
            except ValidationError as exc:
                raise ConfigError(f"{label}: when: {exc}") from None
        if "warn_at" in data:
            kwargs["warn_at"] = data["warn_at"]
        if "pause_categories" in data:
            kwargs["pause_categories"] = data["pause_categories"]
        try:
            return cls(data["name"], calendar, targets, **kwargs)
        except ConfigError:
            raise
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc}") from None


_POLICY_KEYS: Final = frozenset(
    {"name", "calendar", "targets", "conditions", "when", "warn_at", "pause_categories"}
)
_CONDITION_KEYS: Final = frozenset(f.name for f in attrs.fields(SlaCondition))


def _calendar_from(
    value: object, calendars: Mapping[str, BusinessCalendar], label: str
) -> BusinessCalendar:
    if isinstance(value, BusinessCalendar):
        return value
    if isinstance(value, str):
        try:
            return calendars[value]
        except KeyError:
            known = ", ".join(sorted(calendars)) or "none"
            raise ConfigError(f"{label}: unknown calendar {value!r} (known: {known})") from None
    if isinstance(value, Mapping):
        try:
            return BusinessCalendar.from_dict(value)
        except ValidationError as exc:
            raise ConfigError(f"{label}: inline calendar: {exc}") from None
    raise ConfigError(f"{label}: 'calendar' must name a calendar or be a calendar table")


def _targets_from(value: object, where: str) -> Targets:
    if isinstance(value, Targets):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table of metric = duration")
    unknown = set(value) - {m.value for m in Metric}
    if unknown:
        known = ", ".join(m.value for m in Metric)
        raise ConfigError(f"{where}: unknown metrics {sorted(unknown)} (known: {known})")
    durations = {k: _duration_from(v, f"{where}.{k}") for k, v in value.items()}
    try:
        return Targets(**durations)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _condition_from(value: object, where: str) -> SlaCondition:
    if isinstance(value, SlaCondition):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(value) - _CONDITION_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_CONDITION_KEYS)}"
        )
    try:
        return SlaCondition(**value)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _policies(value: object) -> tuple[SlaPolicy, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("policies must be a sequence of SlaPolicy")
    out = tuple(value)
    if not all(isinstance(p, SlaPolicy) for p in out):
        raise ValidationError("policies must be SlaPolicy values")
    return out


_FINGERPRINTS: dict[int, tuple[SlaPolicy, str]] = {}
_TARGETS: dict[tuple[int, int, int], tuple[SlaPolicy, timedelta | None]] = {}


def _fingerprint(policy: SlaPolicy) -> str:
    micro = timedelta(microseconds=1)

    def us(value: timedelta | None) -> int | None:
        return None if value is None else value // micro

    data = [
        policy.name,
        policy.calendar.to_dict(),
        sorted([int(p), *(us(t.for_metric(m)) for m in Metric)] for p, t in policy.targets.items()),
        list(policy.warn_at),
        sorted(c.value for c in policy.pause_categories),
    ]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@attrs.frozen
class SlaPolicySet:
    """Ordered policies (the first that applies wins) and an optional default.

    Names are unique. The default may also appear in ``policies`` (then it is the same
    policy); it is chosen when no policy applies, whatever its own conditions say.
    """

    policies: tuple[SlaPolicy, ...] = attrs.field(converter=_policies)
    default: SlaPolicy | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        seen: dict[str, SlaPolicy] = {}
        for policy in self.policies:
            if policy.name in seen:
                raise ValidationError(f"SLA policy {policy.name!r} is defined twice")
            seen[policy.name] = policy
        if self.default is not None:
            if not isinstance(self.default, SlaPolicy):
                raise ValidationError("the default SLA policy must be an SlaPolicy")
            same = seen.get(self.default.name)
            if same is not None and same != self.default:
                raise ValidationError(
                    f"the default SLA policy {self.default.name!r} differs from the listed "
                    "policy of the same name"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Every policy name, in order, the default last if it is not listed."""
        names = [p.name for p in self.policies]
        if self.default is not None and self.default.name not in names:
            names.append(self.default.name)
        return tuple(names)

    def get(self, name: str) -> SlaPolicy:
        """The policy called ``name``; raises NotFoundError if there is none."""
        for policy in self.policies:
            if policy.name == name:
                return policy
        if self.default is not None and self.default.name == name:
            return self.default
        raise NotFoundError(f"no SLA policy {name!r} (known: {', '.join(self.names) or 'none'})")

    def select(
        self, ticket: Ticket, context: SlaContext | None = None, subject: Subject | None = None
    ) -> SlaPolicy | None:
        """The first policy that applies to ``ticket``, else the default (or ``None``)."""
        for policy in self.policies:
            if policy.applies_to(ticket, context, subject):
                return policy
        return self.default

    @property
    def reads_people(self) -> bool:
        """Whether a policy's ``when`` may read the requester or their organization."""
        return any(p.when is not None and p.when.needs for p in self.policies)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        calendars: Mapping[str, BusinessCalendar],
        vocabulary: Vocabulary | None = None,
    ) -> SlaPolicySet:
        """Build from the ``[sla]`` table of ``helpkit.toml``: ``policies`` and ``default``.

        ``policies`` is a list of policy tables (:meth:`SlaPolicy.from_dict`); ``default``
        names one of them. ``calendars`` are the named calendars policies refer to.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"the [sla] table must be a mapping; got {type(data).__name__}")
        unknown = set(data) - {"policies", "default"}
        if unknown:
            raise ConfigError(
                f"[sla]: unknown keys {sorted(unknown)}; allowed: ['default', 'policies']"
            )
        raw = data.get("policies", [])
        if not isinstance(raw, list | tuple):
            raise ConfigError("[sla]: 'policies' must be a list of tables ([[sla.policies]])")
        policies = tuple(SlaPolicy.from_dict(p, calendars, vocabulary) for p in raw)
        default_name = data.get("default")
        default: SlaPolicy | None = None
        if default_name is not None:
            matches = [p for p in policies if p.name == default_name]
            if not matches:
                raise ConfigError(f"[sla]: default policy {default_name!r} is not defined")
            default = matches[0]
        try:
            return cls(policies, default=default)
        except ValidationError as exc:
            raise ConfigError(f"[sla]: {exc}") from None
