"""SLA policies and the SLA clock: a pure function of a ticket's events, a policy and ``now``.

Nothing here reads a clock, a store or a plugin. :func:`compute_sla` recomputes every metric
from the ticket's whole history each time it is called; nothing is patched or stored.

The clock of a metric **cycle** counts business time (the policy's calendar) while the cycle
is open and the ticket is *counting*: its status category is neither in the policy's
``pause_categories`` (pending and on_hold by default) nor solved nor closed. Paused time does
not count and is itself measured in business time: a cycle's ``elapsed`` is the sum of
``calendar.elapsed`` over its running intervals up to ``min(now, achieved/stopped)``.

Metrics:

* **first_response** -- one cycle (0) from the opening; achieved at the first public comment
  by an agent, including an agent's public opening message (achieved at once). Internal
  notes, contacts' messages and system messages never achieve it.
* **next_response** -- after the first public agent reply, each public comment by a contact
  that arrives while no next-response cycle is open starts a cycle (0, 1, 2...); the next
  public agent reply achieves it.
* **periodic_update** -- each public agent reply starts a cycle and achieves the previous one:
  the longest allowed gap between public agent replies while the ticket is active.
* **resolution** -- one cycle from the opening, achieved when the ticket becomes solved; a
  reopen (leaving solved for an active category) un-achieves it and resumes the same clock,
  the time spent solved not counting. Closing a solved ticket keeps it achieved.

Solved pauses the three response metrics. Closed (merged included) stops every open cycle for
good (``stopped_at``). Comments folded in by a merge (``MergeReceived``) neither start nor
achieve anything.

A cycle's target comes from the ticket's priority when the cycle ended (achieved or stopped)
or, for an open cycle, from the current priority: a priority change recomputes an open cycle
from its original start. A priority with no :class:`Targets` in the policy (or a ``None``
target) is not measured: that cycle has no clock. Breaches already recorded as
:class:`~helpkit.events.SlaBreached` events stay in the audit trail whatever happens later;
:func:`fired_checks` reads them.

``due`` is the earliest instant at which the cycle's counted business time reaches its
target: walking the running intervals in order, the first interval whose cumulative time
reaches the target ``X`` gives ``calendar.add(interval_start, X - counted_before)``; the last
interval of a running clock is open-ended, which projects the due date into the future. It is
``None`` when the cycle ended (achieved or stopped) or is paused without its counted time
having reached the target. Warning instants are computed the same way at ``fraction x target``.
A cycle is breached (``breached_at == due``) when ``due <= now`` and the cycle was not achieved
or stopped at or before ``due``; a late achievement keeps its ``breached_at`` (its ``state`` is
``achieved``).

The whole history is taken as given: ``now`` caps ``elapsed`` and decides whether a due date
has passed, but an event dated after ``now`` still counts (pass ``now`` at or after the last
event for a status "as of now"). Event times are read in sequence order and never go back (an
event dated before its predecessor is taken to happen at the predecessor's instant). Every
datetime returned is in UTC.
"""

from __future__ import annotations

import enum
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

import attrs

from helpkit._time import to_utc
from helpkit.calendar import BusinessCalendar
from helpkit.errors import CalendarError, ConfigError, NotFoundError, ValidationError
from helpkit.events import (
    CommentAdded,
    Event,
    MergedInto,
    PriorityChanged,
    SlaBreached,
    SlaWarned,
    StatusChanged,
    TicketOpened,
)
from helpkit.priority import Priority
from helpkit.tickets import ActorKind, StatusCategory, Ticket

__all__ = [
    "BREACH",
    "DEFAULT_PAUSE_CATEGORIES",
    "ClockState",
    "Metric",
    "MetricClock",
    "SlaCheck",
    "SlaCondition",
    "SlaContext",
    "SlaPolicy",
    "SlaPolicySet",
    "SlaStatus",
    "Targets",
    "Threshold",
    "compute_sla",
    "fired_checks",
    "parse_duration",
]

BREACH: Final = 1.0
"""The ``fraction`` of a check that stands for the breach itself (100 % of the target)."""

DEFAULT_PAUSE_CATEGORIES: Final = frozenset({StatusCategory.PENDING, StatusCategory.ON_HOLD})
"""The status categories that pause SLA clocks unless a policy says otherwise."""

ClockState = Literal["running", "paused", "achieved", "breached", "stopped"]


class Metric(enum.Enum):
    """What an SLA measures."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    PERIODIC_UPDATE = "periodic_update"
    RESOLUTION = "resolution"


_METRIC_ORDER: Final = {m: i for i, m in enumerate(Metric)}


# ---------------------------------------------------------------- durations


_SHORT = re.compile(
    r"(?:(?P<w>\d+)\s*w)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*"
    r"(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?",
    re.IGNORECASE,
)
_ISO = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?",
    re.IGNORECASE,
)
_UNIT_SECONDS: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Read a duration such as ``"4h"``, ``"1h30m"``, ``"2d"``, ``"90s"`` or ISO ``"PT1H30M"``.

    Units are ``w`` (7 days), ``d`` (24 hours), ``h``, ``m`` (minutes) and ``s``, in that
    order, each at most once, in whole numbers. ISO 8601 durations take the same units
    (``P1W``, ``P2DT4H``); years and months are refused because they have no fixed length.
    SLA targets count business time, so ``"2d"`` is 48 hours *of open time* (six days of an
    eight-hour calendar): write ``"16h"`` for two eight-hour working days.
    """
    if not isinstance(text, str):
        raise ConfigError(f"a duration must be text like '1h30m' or 'PT4H'; got {text!r}")
    stripped = text.strip()
    iso = stripped[:1] in ("P", "p")
    match = (_ISO if iso else _SHORT).fullmatch(stripped)
    if not stripped or match is None or not any(match.groupdict().values()):
        raise ConfigError(
            f"bad duration {text!r}: write e.g. '45m', '4h', '1h30m', '2d' (24 hours each) "
            "or ISO 8601 'PT1H30M' (no years or months)"
        )
    if iso and stripped.upper().endswith("T"):
        raise ConfigError(f"bad ISO 8601 duration {text!r}: nothing after 'T'")
    seconds = sum(int(v) * _UNIT_SECONDS[k] for k, v in match.groupdict().items() if v)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ConfigError(f"duration {text!r} is too long") from None


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
        return {
            Metric.FIRST_RESPONSE: self.first_response,
            Metric.NEXT_RESPONSE: self.next_response,
            Metric.PERIODIC_UPDATE: self.periodic_update,
            Metric.RESOLUTION: self.resolution,
        }[_metric(metric)]


def _metric(value: Metric | str) -> Metric:
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

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.calendar,
                tuple(self.targets.items()),
                self.conditions,
                self.warn_at,
                self.pause_categories,
            )
        )

    def applies_to(self, ticket: Ticket, context: SlaContext | None = None) -> bool:
        """Whether any condition matches (always true without conditions)."""
        return not self.conditions or any(c.matches(ticket, context) for c in self.conditions)

    def target(self, metric: Metric | str, priority: Priority) -> timedelta | None:
        """The target of ``metric`` for ``priority``, or ``None`` when it is not measured."""
        targets = self.targets.get(Priority.coerce(priority))
        return None if targets is None else targets.for_metric(metric)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], calendars: Mapping[str, BusinessCalendar]
    ) -> SlaPolicy:
        """Build a policy from a table of ``helpkit.toml`` (see the configuration reference).

        ``calendar`` names one of ``calendars`` or is an inline calendar table. Errors are
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
    {"name", "calendar", "targets", "conditions", "warn_at", "pause_categories"}
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

    def select(self, ticket: Ticket, context: SlaContext | None = None) -> SlaPolicy | None:
        """The first policy that applies to ``ticket``, else the default (or ``None``)."""
        for policy in self.policies:
            if policy.applies_to(ticket, context):
                return policy
        return self.default

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], calendars: Mapping[str, BusinessCalendar]
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
        policies = tuple(SlaPolicy.from_dict(p, calendars) for p in raw)
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


# ---------------------------------------------------------------- results


@attrs.frozen
class Threshold:
    """A warning threshold of a clock: the instant its counted time reaches ``fraction``.

    ``at`` follows the same rule as :attr:`MetricClock.due` (past, projected, or ``None``).
    """

    fraction: float
    at: datetime | None


class SlaCheck(NamedTuple):
    """A warning (``fraction < 1``) or breach (``fraction == 1.0``) instant of one cycle."""

    metric: Metric
    cycle: int
    fraction: float
    at: datetime

    @property
    def key(self) -> tuple[str, int, float]:
        """``(metric value, cycle, fraction)``: how :func:`fired_checks` names it."""
        return (self.metric.value, self.cycle, self.fraction)


@attrs.frozen(kw_only=True)
class MetricClock:
    """One cycle of one metric, as of ``now``.

    ``elapsed`` is the counted business time up to ``min(now, achieved/stopped)``;
    ``remaining = target - elapsed`` (negative past due). ``running`` and ``paused`` say
    whether an open cycle is counting at the end of the history; both are false once the
    cycle is achieved or stopped.
    """

    metric: Metric
    cycle: int
    started_at: datetime
    target: timedelta
    elapsed: timedelta
    remaining: timedelta
    running: bool
    paused: bool
    due: datetime | None
    achieved_at: datetime | None
    stopped_at: datetime | None
    breached_at: datetime | None
    warnings: tuple[Threshold, ...]

    @property
    def ended_at(self) -> datetime | None:
        """When the cycle was achieved or stopped, if it was."""
        return self.achieved_at if self.achieved_at is not None else self.stopped_at

    @property
    def state(self) -> ClockState:
        """``achieved`` or ``stopped`` once ended (see ``breached_at`` for a late one);
        otherwise ``breached`` if the target was reached, else ``running`` or ``paused``."""
        if self.achieved_at is not None:
            return "achieved"
        if self.stopped_at is not None:
            return "stopped"
        if self.breached_at is not None:
            return "breached"
        return "running" if self.running else "paused"

    def checks(self) -> tuple[SlaCheck, ...]:
        """The warnings and the breach crossed (or to be crossed) before the cycle ends."""
        end = self.ended_at
        out = [
            SlaCheck(self.metric, self.cycle, w.fraction, w.at)
            for w in self.warnings
            if w.at is not None and (end is None or w.at < end)
        ]
        if self.due is not None and (end is None or self.due < end):
            out.append(SlaCheck(self.metric, self.cycle, BREACH, self.due))
        return tuple(out)


Fired = tuple[str, int, float]


@attrs.frozen
class SlaStatus:
    """Every measured cycle of a ticket under ``policy``, as of ``now`` (UTC)."""

    policy: str
    now: datetime
    clocks: tuple[MetricClock, ...]

    def current(self, metric: Metric | str) -> MetricClock | None:
        """The latest cycle of ``metric``, or ``None`` if it has no measured cycle."""
        wanted = _metric(metric)
        found = [c for c in self.clocks if c.metric is wanted]
        return max(found, key=lambda c: c.cycle) if found else None

    def cycles(self, metric: Metric | str) -> tuple[MetricClock, ...]:
        """Every measured cycle of ``metric``, oldest first."""
        wanted = _metric(metric)
        return tuple(c for c in self.clocks if c.metric is wanted)

    @property
    def next_deadline(self) -> datetime | None:
        """The earliest ``due`` among cycles neither achieved nor stopped (past if breached)."""
        dues = [
            c.due
            for c in self.clocks
            if c.due is not None and c.achieved_at is None and c.stopped_at is None
        ]
        return min(dues, default=None)

    @property
    def breached(self) -> bool:
        """Whether any cycle has breached (as of ``now``)."""
        return any(c.breached_at is not None for c in self.clocks)

    def checks(self) -> tuple[SlaCheck, ...]:
        """Every warning and breach crossed or to be crossed, in time order."""
        found = [check for clock in self.clocks for check in clock.checks()]
        found.sort(key=lambda c: (c.at, _METRIC_ORDER[c.metric], c.cycle, c.fraction))
        return tuple(found)

    def pending_checks(self, fired: Iterable[Fired] = ()) -> tuple[SlaCheck, ...]:
        """The checks not yet recorded (``fired`` as from :func:`fired_checks`), in order.

        Past ones are due now; the sweep records them, then waits for :meth:`next_check`.
        """
        done = frozenset(fired)
        return tuple(c for c in self.checks() if c.key not in done)

    def next_check(self, fired: Iterable[Fired] = ()) -> datetime | None:
        """The instant of the earliest check not yet recorded (the sweep's index), or None."""
        pending = self.pending_checks(fired)
        return pending[0].at if pending else None


def fired_checks(events: Iterable[Event], *, policy: str | None = None) -> frozenset[Fired]:
    """The checks already recorded: ``(metric, cycle, threshold)`` of ``SlaWarned`` events and
    ``(metric, cycle, 1.0)`` of ``SlaBreached`` events (of ``policy`` only, if given)."""
    out: set[Fired] = set()
    for event in events:
        if isinstance(event, SlaWarned) and (policy is None or event.policy == policy):
            out.add((event.metric, event.cycle, float(event.threshold)))
        elif isinstance(event, SlaBreached) and (policy is None or event.policy == policy):
            out.add((event.metric, event.cycle, BREACH))
    return frozenset(out)


# ---------------------------------------------------------------- the clock


@attrs.define
class _Cycle:
    metric: Metric
    index: int
    start: datetime
    achieved_at: datetime | None = None
    stopped_at: datetime | None = None
    end_priority: Priority | None = None

    @property
    def end(self) -> datetime | None:
        return self.achieved_at if self.achieved_at is not None else self.stopped_at

    @property
    def is_open(self) -> bool:
        return self.achieved_at is None and self.stopped_at is None


class _Counted:
    """Counted business time since the opening, over the ticket's counting intervals.

    ``until(t)`` is the counted time up to ``t``; ``reach(v, limit)`` is the earliest instant
    at which it reaches ``v`` (``None`` if not by ``limit``, or never while paused).
    """

    def __init__(
        self, calendar: BusinessCalendar, intervals: list[tuple[datetime, datetime | None]]
    ) -> None:
        self.calendar = calendar
        self.starts = [s for s, _ in intervals]
        self.ends = [e for _, e in intervals]
        self.open_ended = bool(intervals) and intervals[-1][1] is None
        self.before: list[timedelta] = []  # counted before interval k
        self.after: list[timedelta] = []  # counted at the end of closed interval k
        total = timedelta(0)
        for s, e in intervals:
            self.before.append(total)
            if e is not None:
                total += calendar.elapsed(s, e)
                self.after.append(total)

    def until(self, t: datetime) -> timedelta:
        k = bisect_right(self.starts, t) - 1
        if k < 0:
            return timedelta(0)
        end = self.ends[k]
        if end is not None and t >= end:
            return self.after[k]
        return self.before[k] + self.calendar.elapsed(self.starts[k], t)

    def reach(self, value: timedelta, limit: datetime | None) -> datetime | None:
        k = bisect_left(self.after, value)
        if k == len(self.after) and not self.open_ended:
            return None  # paused (or stopped) for good without reaching it
        try:
            found = self.calendar.add(self.starts[k], value - self.before[k])
        except CalendarError:
            return None  # a calendar with no open time never gets there
        found = found.astimezone(UTC)
        if limit is not None and found > limit:
            return None
        return found


def _counts(category: StatusCategory, pause: frozenset[StatusCategory]) -> bool:
    return category.is_active and category not in pause


class _Fold:
    """Walks a ticket's events once, recording counting intervals, priorities and cycles."""

    def __init__(self, events: Sequence[Event], pause: frozenset[StatusCategory]) -> None:
        if not events or not isinstance(events[0], TicketOpened):
            raise ValidationError("an SLA clock needs the ticket's events, opening event first")
        opened = events[0]
        self.pause = pause
        self.ticket_id = opened.ticket_id
        self.t = opened.at
        self.category = opened.category
        self.priority = opened.priority
        self.intervals: list[tuple[datetime, datetime | None]] = []
        self.counting_since: datetime | None = None
        self.cycles: list[_Cycle] = []
        self.first = self._start(Metric.FIRST_RESPONSE)
        self.resolution = self._start(Metric.RESOLUTION)
        self.next: _Cycle | None = None
        self.periodic: _Cycle | None = None
        self.agent_replied = False
        self._count(_counts(self.category, pause))
        for event in events[1:]:
            self._apply(event)

    def _start(self, metric: Metric) -> _Cycle:
        index = sum(1 for c in self.cycles if c.metric is metric)
        cycle = _Cycle(metric, index, self.t)
        self.cycles.append(cycle)
        return cycle

    def _achieve(self, cycle: _Cycle | None) -> None:
        if cycle is not None and cycle.is_open:
            cycle.achieved_at = self.t
            cycle.end_priority = self.priority

    def _count(self, counting: bool) -> None:
        if counting and self.counting_since is None:
            self.counting_since = self.t
        elif not counting and self.counting_since is not None:
            if self.t > self.counting_since:
                self.intervals.append((self.counting_since, self.t))
            self.counting_since = None

    def finish(self) -> list[tuple[datetime, datetime | None]]:
        if self.counting_since is None:
            return self.intervals
        return [*self.intervals, (self.counting_since, None)]

    def _apply(self, event: Event) -> None:
        if event.ticket_id != self.ticket_id:
            raise ValidationError(
                f"event {event.TYPE} of ticket {event.ticket_id} among those of {self.ticket_id}"
            )
        self.t = max(self.t, event.at)
        if self.category is StatusCategory.CLOSED:
            return  # closed is final: nothing after it moves a clock
        if isinstance(event, CommentAdded) and event.comment.public:
            kind = event.comment.author.kind
            if kind is ActorKind.AGENT:
                self._achieve(self.first)
                self._achieve(self.next)
                self._achieve(self.periodic)
                self.periodic = self._start(Metric.PERIODIC_UPDATE)
                self.agent_replied = True
            elif kind is ActorKind.CONTACT and self.agent_replied and not self._next_open():
                self.next = self._start(Metric.NEXT_RESPONSE)
        elif isinstance(event, StatusChanged):
            self._category(event.category)
        elif isinstance(event, MergedInto):
            self._category(StatusCategory.CLOSED)
        elif isinstance(event, PriorityChanged):
            self.priority = event.priority

    def _next_open(self) -> bool:
        return self.next is not None and self.next.is_open

    def _category(self, category: StatusCategory) -> None:
        previous, self.category = self.category, category
        if category is StatusCategory.SOLVED:
            self._achieve(self.resolution)
        elif category is StatusCategory.CLOSED:
            for cycle in self.cycles:
                if cycle.is_open:
                    cycle.stopped_at = self.t
                    cycle.end_priority = self.priority
        elif previous is StatusCategory.SOLVED and self.resolution.achieved_at is not None:
            self.resolution.achieved_at = None  # a reopen resumes the same clock
            self.resolution.end_priority = None
        self._count(_counts(category, self.pause))


def compute_sla(events: Sequence[Event], policy: SlaPolicy, now: datetime) -> SlaStatus:
    """Every measured SLA cycle of one ticket under ``policy``, as of ``now``.

    ``events`` are the ticket's events in sequence order, its opening first. The result is a
    pure function of the arguments (see the module documentation for the exact rules).
    """
    if not isinstance(policy, SlaPolicy):
        raise ValidationError(f"policy must be an SlaPolicy; got {type(policy).__name__}")
    at = to_utc(now, "now")
    fold = _Fold(events, policy.pause_categories)
    counted = _Counted(policy.calendar, fold.finish())
    clocks: list[MetricClock] = []
    for cycle in fold.cycles:
        priority = cycle.end_priority if cycle.end_priority is not None else fold.priority
        target = policy.target(cycle.metric, priority)
        if target is not None:
            clocks.append(_clock(cycle, target, counted, at, policy.warn_at))
    clocks.sort(key=lambda c: (_METRIC_ORDER[c.metric], c.cycle))
    return SlaStatus(policy.name, at, tuple(clocks))


def _clock(
    cycle: _Cycle,
    target: timedelta,
    counted: _Counted,
    now: datetime,
    warn_at: tuple[float, ...],
) -> MetricClock:
    end = cycle.end
    base = counted.until(cycle.start)
    cap = now if end is None else min(now, end)
    elapsed = counted.until(max(cap, cycle.start)) - base
    due = counted.reach(base + target, end)
    warnings = tuple(Threshold(f, counted.reach(base + target * f, end)) for f in warn_at)
    crossed = due is not None and due <= now and (end is None or due < end)
    return MetricClock(
        metric=cycle.metric,
        cycle=cycle.index,
        started_at=cycle.start,
        target=target,
        elapsed=elapsed,
        remaining=target - elapsed,
        running=cycle.is_open and counted.open_ended,
        paused=cycle.is_open and not counted.open_ended,
        due=due,
        achieved_at=cycle.achieved_at,
        stopped_at=cycle.stopped_at,
        breached_at=due if crossed else None,
        warnings=warnings,
    )
