"""Desk configuration: priority matrix, workflow, custom fields, channels, calendars, SLA
policies, escalation tiers and rules, the blob store and attachment limits.

Build it in code (:class:`DeskConfig`) or load it from a ``helpkit.toml`` file / a mapping
(:meth:`DeskConfig.from_dict`, :meth:`DeskConfig.load`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from helpkit._records import frozen_mapping
from helpkit.attachments import AttachmentLimits
from helpkit.calendar import BusinessCalendar
from helpkit.errors import ConfigError, ValidationError
from helpkit.escalation import EscalationRules, TierLadder
from helpkit.fields import CustomField, FieldSet
from helpkit.priority import ITIL_MATRIX, PriorityMatrix
from helpkit.sla import SlaPolicySet
from helpkit.tickets import DEFAULT_WORKFLOW, Status, Workflow
from helpkit.webhook_events import Subscription

__all__ = ["DeskConfig"]


def _channel_options(
    value: Mapping[str, Mapping[str, Any]],
) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({str(k): MappingProxyType(dict(v)) for k, v in value.items()})


@attrs.frozen(kw_only=True)
class DeskConfig:
    """Everything a :class:`~helpkit.Helpdesk` needs besides its store, clock and plugins."""

    matrix: PriorityMatrix = ITIL_MATRIX
    workflow: Workflow = DEFAULT_WORKFLOW
    fields: FieldSet = attrs.field(factory=FieldSet)
    channels: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, converter=_channel_options, eq=False
    )
    """Channels to build from registered factories: ``{name: {"type": "email", ...options}}``
    (``type`` defaults to the name)."""
    reply_channel: str | None = None
    """The channel public replies leave through when the ticket's own channel has none."""
    webhooks: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, converter=_channel_options, eq=False
    )
    """Webhook endpoints (``[webhooks.NAME]``): ``{name: {"url": ..., "secret": ...,
    "events": [...], ...}}``, each sent the committed events it subscribes to (see
    :meth:`subscriptions`)."""
    calendars: Mapping[str, BusinessCalendar] = attrs.field(
        factory=dict, converter=frozen_mapping, eq=False
    )
    """Named business calendars (SLA policies refer to them by name in ``helpkit.toml``)."""
    sla: SlaPolicySet | None = None
    """SLA policies; ``None`` measures no SLA."""
    tiers: TierLadder | None = None
    """The escalation ladder; ``None`` derives it from the groups' ``tier`` in the store."""
    escalation: EscalationRules = attrs.field(factory=EscalationRules)
    """Rules bound to SLA thresholds (warn, escalate, raise priority)."""
    blobs: str | None = None
    """The URL of the blob store attachment bytes live in (``file:///srv/helpkit/blobs``);
    ``None``: the default for the desk's store (see :func:`helpkit.attachments.default_blobs`).
    ``Helpdesk(blobs=...)`` wins over it."""
    attachments: AttachmentLimits = attrs.field(factory=AttachmentLimits)
    """How many files, and how large, a comment may carry."""

    def __attrs_post_init__(self) -> None:
        clash = sorted(set(self.webhooks) & set(self.channels))
        if clash:
            raise ConfigError(
                f"{', '.join(map(repr, clash))} names both a channel and a webhook endpoint; "
                "the audit trail records deliveries by that name, so give each its own"
            )
        self.subscriptions()  # a mistake in a webhook's events is refused here, when loaded
        # A rule on a warning threshold only fires if some policy records that warning.
        if self.sla is None:
            return
        warned = {f for name in self.sla.names for f in self.sla.get(name).warn_at}
        for rule in self.escalation.rules:
            if rule.at < 1.0 and not any(abs(rule.at - f) < 1e-9 for f in warned):
                raise ConfigError(
                    f"escalation rule {rule.name!r} listens to {rule.at:g} of a target, but no "
                    f"SLA policy warns at {rule.at:g}; add it to a policy's warn_at"
                )

    def subscriptions(self) -> tuple[Subscription, ...]:
        """What each webhook endpoint subscribes to, in the configuration's order."""
        return tuple(
            Subscription.from_options(name, options) for name, options in self.webhooks.items()
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeskConfig:
        """Read the ``helpkit.toml`` layout (see the configuration docs)."""
        known = {
            "priority_matrix",
            "statuses",
            "merged_status",
            "fields",
            "channels",
            "reply_channel",
            "webhooks",
            "calendars",
            "sla",
            "tiers",
            "escalation",
            "blobs",
            "attachments",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        try:
            kwargs: dict[str, Any] = {}
            if "priority_matrix" in data:
                kwargs["matrix"] = PriorityMatrix.from_rows(data["priority_matrix"])
            if "statuses" in data:
                statuses = [
                    Status(str(item["name"]), item["category"], item.get("label"))
                    for item in data["statuses"]
                ]
                kwargs["workflow"] = Workflow(
                    statuses, merged_status=str(data.get("merged_status", "merged"))
                )
            if "fields" in data:
                kwargs["fields"] = FieldSet(
                    [
                        CustomField(
                            name=str(name),
                            kind=spec["kind"],
                            choices=tuple(spec.get("choices", ())),
                            required=bool(spec.get("required", False)),
                            label=spec.get("label"),
                        )
                        for name, spec in data["fields"].items()
                    ]
                )
            if "channels" in data:
                kwargs["channels"] = data["channels"]
            if "webhooks" in data:
                kwargs["webhooks"] = data["webhooks"]
            if "reply_channel" in data:
                kwargs["reply_channel"] = str(data["reply_channel"])
            calendars = {
                str(name): BusinessCalendar.from_dict(table)
                for name, table in dict(data.get("calendars", {})).items()
            }
            kwargs["calendars"] = calendars
            if "sla" in data:
                kwargs["sla"] = SlaPolicySet.from_dict(data["sla"], calendars)
            if "tiers" in data:
                kwargs["tiers"] = TierLadder.from_dict(data["tiers"])
            if "escalation" in data:
                rules = data["escalation"]
                if isinstance(rules, Mapping):
                    rules = rules.get("rules", [])
                kwargs["escalation"] = EscalationRules.from_list(rules)
            if "blobs" in data:
                blobs = data["blobs"]
                if not isinstance(blobs, str) or not blobs.strip():
                    raise ConfigError(f"blobs must be a blob store URL; got {blobs!r:.60}")
                kwargs["blobs"] = blobs
            if "attachments" in data:
                kwargs["attachments"] = AttachmentLimits.from_dict(data["attachments"])
            return cls(**kwargs)
        except ConfigError:
            raise
        except (ValidationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"invalid configuration: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> DeskConfig:
        """Read a TOML file."""
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        return cls.from_dict(data)
