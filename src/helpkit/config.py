# Over 600 lines: DeskConfig and the reading of each of its TOML tables, kept side by side so
# a key and its reader change together.
"""Desk configuration: priority matrix, workflow, custom fields, channels, calendars, SLA
policies, escalation tiers and rules, the blob store and attachment limits.

Build it in code (:class:`DeskConfig`) or load it from a ``helpkit.toml`` file / a mapping
(:meth:`DeskConfig.from_dict`, :meth:`DeskConfig.load`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import attrs

from helpkit._records import frozen_mapping
from helpkit.attachments import AttachmentLimits
from helpkit.calendar import BusinessCalendar
from helpkit.conditions import Vocabulary
from helpkit.errors import ConfigError, NotFoundError, ValidationError
from helpkit.escalation import EscalationRules, TierLadder
from helpkit.fields import CustomField, FieldSet
from helpkit.notifications import (
    MessageTemplate,
    NotificationRule,
    effective_rules,
    effective_templates,
    notifications_from_list,
    templates_from_table,
)
from helpkit.notifications import check as check_notifications
from helpkit.priority import ITIL_MATRIX, PriorityMatrix
from helpkit.roles import Role, builtin_roles, role_map, roles_from_table
from helpkit.routing import RoutingPolicies
from helpkit.rules import (
    Automation,
    CallWebhook,
    Macro,
    Trigger,
    action_to_data,
    automations_from_list,
    macros_from_list,
    parse_action,
    triggers_from_list,
)
from helpkit.satisfaction import BadRating, CsatConfig
from helpkit.scrubbers import PrivacyConfig  # privacy (issue #16)
from helpkit.sla import SlaPolicySet, parse_duration
from helpkit.tickets import DEFAULT_WORKFLOW, Status, Workflow
from helpkit.webhook_events import Subscription

__all__ = ["DeskConfig", "IntakeConfig", "MailboxConfig"]

_INTAKE_KEYS: Final = frozenset(
    {"addresses", "strangers", "cc_followers", "acknowledge", "acknowledge_limit", "desk_id"}
)
STRANGER_POLICIES: Final = ("new_ticket", "suspend")


def _channel_options(
    value: Mapping[str, Mapping[str, Any]],
) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({str(k): MappingProxyType(dict(v)) for k, v in value.items()})


def _addresses(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"intake.addresses is a list of email addresses; got {value!r:.80}")
    found: set[str] = set()
    for item in value:
        if (
            not isinstance(item, str)
            or "@" not in item.strip()
            or any(c.isspace() for c in item.strip())
        ):
            raise ConfigError(f"intake.addresses holds {item!r:.80}, not an email address")
        found.add(item.strip().lower())
    return frozenset(found)


def _strangers(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in STRANGER_POLICIES:
        raise ConfigError(
            f"intake.strangers is one of {', '.join(STRANGER_POLICIES)}; got {value!r:.40}"
        )


def _config_flag(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if value is not True and value is not False:
        raise ConfigError(f"intake.{attribute.name} is true or false; got {value!r:.40}")


def _limit(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000:
        raise ConfigError(
            f"intake.acknowledge_limit is a whole number from 0 to 10000; got {value!r:.40}"
        )


def _desk_id(instance: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (
        not isinstance(value, str) or not value or not value.isascii() or not value.isalnum()
    ):
        raise ConfigError(
            f"intake.desk_id is a word of ASCII letters and digits; got {value!r:.40}"
        )


def _rule_tuple(value: Iterable[NotificationRule]) -> tuple[NotificationRule, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class IntakeConfig:
    """How :meth:`~helpkit.Helpdesk.receive` treats inbound messages (``[intake]``; see the
    page *Intake*)."""

    addresses: frozenset[str] = attrs.field(default=frozenset(), converter=_addresses)
    """The desk's own addresses (``support@example.com``), lower-case: mail from them is a
    loop, and they never become contacts or followers."""
    strangers: str = attrs.field(default="new_ticket", validator=_strangers)
    """What a message that names a ticket its sender is no party of does: ``new_ticket``
    (it opens a ticket of its own) or ``suspend`` (it waits for an agent)."""
    cc_followers: bool = attrs.field(default=True, validator=_config_flag)
    """Whether the addresses a message is copied to follow its ticket."""
    acknowledge: bool = attrs.field(default=False, validator=_config_flag)
    """Whether a ticket a message opens is acknowledged to its requester automatically."""
    acknowledge_limit: int = attrs.field(default=3, validator=_limit)
    """At most this many acknowledgements to one requester per hour (0: none)."""
    desk_id: str | None = attrs.field(default=None, validator=_desk_id)
    """The id written in the ``X-Helpkit-Desk`` header of outbound mail; default: derived
    from the desk's secret, else ``helpkit``."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntakeConfig:
        """Read the ``[intake]`` table; an unknown key raises ConfigError naming it."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"[intake] is a table; got {data!r:.60}")
        unknown = sorted(set(data) - _INTAKE_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown [intake] keys: {', '.join(map(str, unknown))} "
                f"(known: {', '.join(sorted(_INTAKE_KEYS))})"
            )
        return cls(**{str(k): v for k, v in data.items()})


_MAILBOX_KEYS: Final = frozenset(
    {
        "host",
        "port",
        "security",
        "user",
        "password_env",
        "mailbox",
        "interval",
        "flag",
        "move_to",
        "batch",
        "timeout",
    }
)
MAILBOX_SECURITY: Final = ("ssl", "starttls", "plain")
DEFAULT_MAILBOX: Final = "default"
"""The name of the mailbox of the ``[mailbox]`` table."""


def _mailbox_text(where: str, key: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip() or any(ord(c) < 0x20 for c in value):
        raise ConfigError(f"{where}.{key} is a non-empty line of text; got {value!r:.60}")


def _seconds(where: str, key: str, value: object, high: float, *, text: bool = True) -> float:
    if isinstance(value, str) and text:
        try:
            value = parse_duration(value).total_seconds()
        except (ValidationError, ValueError):
            raise ConfigError(
                f"{where}.{key} is seconds or a duration (30s, 5m); got {value!r:.40}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
        raise ConfigError(f"{where}.{key} is seconds above 0, up to {high:g}; got {value!r:.40}")
    return float(value)


@attrs.frozen(kw_only=True)
class MailboxConfig:
    """An IMAP mailbox that ``helpkit mail poll`` reads (``[mailbox]``, or ``[imap.NAME]``
    for several; see the page *Email*, "Receiving"). The password is never in the file: it
    is read from the environment variable ``password_env`` names."""

    name: str
    """``default`` for ``[mailbox]``, else the ``NAME`` of ``[imap.NAME]``; it names the
    account in the mailbox's cursor."""
    host: str
    user: str
    password_env: str
    security: str = "ssl"
    """``ssl`` (port 993), ``starttls`` or ``plain`` (port 143)."""
    port: int | None = None
    mailbox: str = "INBOX"
    interval: float = 60.0
    """Seconds between two polls of ``helpkit mail poll --follow``."""
    flag: str | None = None
    """A flag set on each message ingested (``\\Seen``, or a keyword)."""
    move_to: str | None = None
    """A mailbox each message ingested is moved to."""
    batch: int = 50
    timeout: float = 30.0

    def password(self, environ: Mapping[str, str] | None = None) -> str:
        """The password, from the environment variable ``password_env`` (ConfigError when it
        is not set)."""
        env = os.environ if environ is None else environ
        value = env.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"the password of mailbox {self.name!r} is read from ${self.password_env}, "
                "which is not set"
            )
        return value

    def __attrs_post_init__(self) -> None:
        where = self.where
        for key in ("name", "host", "user", "password_env", "mailbox"):
            _mailbox_text(where, key, getattr(self, key))
        for key in ("flag", "move_to"):
            if getattr(self, key) is not None:
                _mailbox_text(where, key, getattr(self, key))
        if self.security not in MAILBOX_SECURITY:
            raise ConfigError(
                f"{where}.security is one of {', '.join(MAILBOX_SECURITY)}; "
                f"got {self.security!r:.40}"
            )
        port = self.port
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535
        ):
            raise ConfigError(f"{where}.port is a whole number from 1 to 65535; got {port!r:.40}")
        batch = self.batch
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1000:
            raise ConfigError(f"{where}.batch is a whole number from 1 to 1000; got {batch!r:.40}")
        _seconds(where, "interval", self.interval, 86400, text=False)
        _seconds(where, "timeout", self.timeout, 3600, text=False)

    @property
    def where(self) -> str:
        """The table it comes from: ``mailbox`` or ``imap.NAME``."""
        return "mailbox" if self.name == DEFAULT_MAILBOX else f"imap.{self.name}"

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> MailboxConfig:
        """Read a ``[mailbox]`` or ``[imap.NAME]`` table; an unknown key, a missing one or a
        bad value raises ConfigError naming it."""
        where = "mailbox" if name == DEFAULT_MAILBOX else f"imap.{name}"
        if not isinstance(data, Mapping):
            raise ConfigError(f"[{where}] is a table; got {data!r:.60}")
        unknown = sorted(set(map(str, data)) - _MAILBOX_KEYS)
        if unknown:
            raise ConfigError(
                f"unknown [{where}] keys: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(_MAILBOX_KEYS))})"
            )
        for key in ("host", "user", "password_env"):
            if key not in data:
                raise ConfigError(f"[{where}] needs {key}")
        values = dict(data)
        for key in ("host", "password_env"):
            if isinstance(values[key], str):
                values[key] = values[key].strip()
        for key, high in (("interval", 86400.0), ("timeout", 3600.0)):
            if key in values:
                values[key] = _seconds(where, key, values[key], high)
        return cls(name=name, **values)


def _mailboxes(data: Mapping[str, Any]) -> dict[str, MailboxConfig]:
    found: dict[str, MailboxConfig] = {}
    if "mailbox" in data:
        found[DEFAULT_MAILBOX] = MailboxConfig.from_dict(DEFAULT_MAILBOX, data["mailbox"])
    tables = data.get("imap", {})
    if not isinstance(tables, Mapping):
        raise ConfigError(f"[imap] holds one table per mailbox, [imap.NAME]; got {tables!r:.60}")
    for name, table in tables.items():
        if (
            not isinstance(name, str)
            or not name
            or not all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
        ):
            raise ConfigError(
                f"a mailbox name is ASCII letters, digits, '.', '_' or '-'; got {name!r:.40}"
            )
        if name in found:
            raise ConfigError(
                f"[imap.{name}] and [mailbox] both name mailbox {name!r}: rename the former"
            )
        found[name] = MailboxConfig.from_dict(name, table)
    return found


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
    intake: IntakeConfig = attrs.field(factory=IntakeConfig)
    """How inbound messages are received (``[intake]``)."""
    secret_file: str | None = None
    """A file holding the desk's secret (what ``helpkit`` passes as ``Helpdesk(secret=...)``
    when ``HELPKIT_SECRET`` is not set); relative to the configuration file's folder."""
    blobs: str | None = None
    """The URL of the blob store attachment bytes live in (``file:///srv/helpkit/blobs``);
    ``None``: the default for the desk's store (see :func:`helpkit.attachments.default_blobs`).
    ``Helpdesk(blobs=...)`` wins over it."""
    attachments: AttachmentLimits = attrs.field(factory=AttachmentLimits)
    """How many files, and how large, a comment may carry."""
    mailboxes: Mapping[str, MailboxConfig] = attrs.field(
        factory=dict, converter=frozen_mapping, eq=False
    )
    """The IMAP mailboxes ``helpkit mail poll`` reads, by name (``[mailbox]`` is
    ``default``, ``[imap.NAME]`` is ``NAME``)."""
    triggers: tuple[Trigger, ...] = attrs.field(default=(), converter=tuple)
    """Rules run on every command, in this order (``[[triggers]]``; see :mod:`helpkit.triggers`)."""
    macros: tuple[Macro, ...] = attrs.field(default=(), converter=tuple)
    """Named bundles of actions agents apply (``[[macros]]``)."""
    automations: tuple[Automation, ...] = attrs.field(default=(), converter=tuple)
    """Rules that fire when time has passed (``[[automations]]``; see
    :mod:`helpkit.automations`)."""
    notifications: tuple[NotificationRule, ...] = attrs.field(default=(), converter=_rule_tuple)
    """Notification rules (``[[notifications]]``): each replaces the default rule of its name
    or adds to them (see :meth:`notification_rules` and the page *Notifications*)."""
    templates: Mapping[str, MessageTemplate] = attrs.field(
        factory=dict, converter=frozen_mapping, eq=False
    )
    """Message templates by name (``[templates.NAME]``), replacing or adding to the defaults
    (see :meth:`message_templates`)."""
    routing: RoutingPolicies = attrs.field(factory=RoutingPolicies)
    """How routed groups hand their tickets to agents (``[routing.<group>]``; see the page
    *Routing*)."""
    roles: Mapping[str, Role] = attrs.field(factory=builtin_roles, converter=role_map, eq=False)
    """The agents' roles by name: the built-in ``admin``, ``agent`` and ``light_agent``, and
    those of ``[roles.NAME]`` (see :mod:`helpkit.roles` and the page *Access*)."""
    # --- customer satisfaction ---
    csat: CsatConfig = attrs.field(factory=CsatConfig)
    """Satisfaction surveys (``[csat]``; see the page *Customer satisfaction*)."""
    # --- end of customer satisfaction ---
    # --- privacy (issue #16)
    privacy: PrivacyConfig = attrs.field(factory=PrivacyConfig)
    """The scrubbers run before anything is stored (``[privacy]``; see the page *Privacy*)."""
    # --- end privacy

    def __attrs_post_init__(self) -> None:
        clash = sorted(set(self.webhooks) & set(self.channels))
        if clash:
            raise ConfigError(
                f"{', '.join(map(repr, clash))} names both a channel and a webhook endpoint; "
                "the audit trail records deliveries by that name, so give each its own"
            )
        self.subscriptions()  # a mistake in a webhook's events is refused here, when loaded
        self._check_rules()
        for policy in self.routing.groups.values():
            if policy.skills_field is not None and policy.skills_field not in self.fields.fields:
                raise ConfigError(
                    f"routing.{policy.group_id}.skills_field names {policy.skills_field!r}, "
                    "which is not a configured custom field"
                )
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

    def vocabulary(self) -> Vocabulary:
        """What this desk's conditions may name (its statuses, custom fields, calendars)."""
        return Vocabulary(self.workflow, self.fields, self.calendars)

    def notification_rules(self) -> tuple[NotificationRule, ...]:
        """The active notification rules: the defaults (replies, acknowledgements, SLA
        notices), each replaced by a configured rule of its name, then the other configured
        ones in their order."""
        rules = effective_rules(self.notifications)
        # --- customer satisfaction: its default rules follow [csat] (a configured rule of
        # their name is kept as configured) ---
        configured = {rule.name for rule in self.notifications}
        off = set()
        if not self.csat.enabled:
            off.add("csat_offer")
        if not self.csat.enabled or BadRating.NOTIFY not in self.csat.bad_rating:
            off.add("bad_ratings")
        return tuple(r for r in rules if r.name in configured or r.name not in off)
        # --- end of customer satisfaction ---

    def message_templates(self) -> dict[str, MessageTemplate]:
        """The message templates: the defaults, replaced or added to by configured ones."""
        return effective_templates(self.templates)

    def macro(self, name: str) -> Macro:
        """The macro called ``name``; NotFoundError naming the known ones."""
        for macro in self.macros:
            if macro.name == name:
                return macro
        known = ", ".join(m.name for m in self.macros) or "none configured"
        raise NotFoundError(f"unknown macro {name!r:.60} (known: {known})")

    def _check_rules(self) -> None:
        """Triggers and macros given as values (the Python API) are checked against this
        configuration, as the ones read from a file are."""
        vocabulary = self.vocabulary()
        commands = vocabulary.for_commands()
        if self.sla is not None:
            for name in self.sla.names:
                when = self.sla.get(name).when
                if when is not None:
                    try:
                        vocabulary.timeless().parse(when)
                    except ValidationError as exc:
                        raise ConfigError(f"SLA policy {name!r}: when: {exc}") from None
        for name, template in self.templates.items():
            if not isinstance(template, MessageTemplate) or template.name != name:
                raise ConfigError(
                    f"templates maps each name to its MessageTemplate; {name!r} does not"
                )
        check_notifications(self.notifications, self.message_templates(), vocabulary)
        for group_id, policy in self.routing.groups.items():
            try:
                vocabulary.timeless().parse(policy.when)
            except ValidationError as exc:
                raise ConfigError(f"[routing.{group_id}] when: {exc}") from None
        for kind, rules in (
            ("trigger", self.triggers),
            ("macro", self.macros),
            ("automation", self.automations),
        ):
            names: set[str] = set()
            for rule in rules:
                if not isinstance(rule, Trigger | Macro | Automation):
                    raise ConfigError(f"{kind}s must be {kind.title()} values; got {rule!r:.60}")
                if rule.name in names:
                    raise ConfigError(f"two {kind}s are called {rule.name!r}; names are unique")
                names.add(rule.name)
                try:
                    if isinstance(rule, Trigger):
                        commands.parse(rule.when)
                    elif isinstance(rule, Automation):
                        vocabulary.parse(rule.when)
                    for action in rule.actions:
                        parse_action(action_to_data(action), vocabulary)
                        if isinstance(action, CallWebhook) and action.endpoint not in self.webhooks:
                            known = ", ".join(self.webhooks) or "none configured"
                            raise ValidationError(
                                f"webhook {action.endpoint!r} is not an endpoint (known: {known})"
                            )
                except ValidationError as exc:
                    raise ConfigError(f"{kind} {rule.name!r}: {exc}") from None

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
            "intake",
            "secret_file",
            "blobs",
            "attachments",
            "mailbox",
            "imap",
            "triggers",
            "macros",
            "automations",
            "routing",
            "notifications",
            "templates",
            "roles",
            "csat",
            "privacy",  # privacy (issue #16)
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
                kwargs["sla"] = SlaPolicySet.from_dict(
                    data["sla"],
                    calendars,
                    Vocabulary(
                        kwargs.get("workflow", DEFAULT_WORKFLOW),
                        kwargs.get("fields", FieldSet()),
                        calendars,
                    ),
                )
            if "tiers" in data:
                kwargs["tiers"] = TierLadder.from_dict(data["tiers"])
            if "escalation" in data:
                rules = data["escalation"]
                if isinstance(rules, Mapping):
                    rules = rules.get("rules", [])
                kwargs["escalation"] = EscalationRules.from_list(rules)
            if "intake" in data:
                kwargs["intake"] = IntakeConfig.from_dict(data["intake"])
            if "mailbox" in data or "imap" in data:
                kwargs["mailboxes"] = _mailboxes(data)
            if "secret_file" in data:
                secret_file = data["secret_file"]
                if not isinstance(secret_file, str) or not secret_file.strip():
                    raise ConfigError(f"secret_file is a file name; got {secret_file!r:.60}")
                kwargs["secret_file"] = secret_file
            if "blobs" in data:
                blobs = data["blobs"]
                if not isinstance(blobs, str) or not blobs.strip():
                    raise ConfigError(f"blobs must be a blob store URL; got {blobs!r:.60}")
                kwargs["blobs"] = blobs
            if "attachments" in data:
                kwargs["attachments"] = AttachmentLimits.from_dict(data["attachments"])
            if "triggers" in data or "macros" in data or "automations" in data:
                vocabulary = Vocabulary(
                    kwargs.get("workflow", DEFAULT_WORKFLOW),
                    kwargs.get("fields", FieldSet()),
                    calendars,
                )
                kwargs["triggers"] = triggers_from_list(data.get("triggers", []), vocabulary)
                kwargs["macros"] = macros_from_list(data.get("macros", []), vocabulary)
                kwargs["automations"] = automations_from_list(
                    data.get("automations", []), vocabulary
                )
            if "notifications" in data:
                kwargs["notifications"] = notifications_from_list(
                    data["notifications"],
                    Vocabulary(
                        kwargs.get("workflow", DEFAULT_WORKFLOW),
                        kwargs.get("fields", FieldSet()),
                        calendars,
                    ),
                )
            if "templates" in data:
                kwargs["templates"] = templates_from_table(data["templates"])
            if "routing" in data:
                kwargs["routing"] = RoutingPolicies.from_dict(
                    data["routing"],
                    Vocabulary(
                        kwargs.get("workflow", DEFAULT_WORKFLOW),
                        kwargs.get("fields", FieldSet()),
                        calendars,
                    ),
                )
            if "roles" in data:
                kwargs["roles"] = roles_from_table(data["roles"])
            if "csat" in data:
                kwargs["csat"] = CsatConfig.from_dict(data["csat"])
            # --- privacy (issue #16)
            if "privacy" in data:
                kwargs["privacy"] = PrivacyConfig.from_dict(data["privacy"])
            # --- end privacy
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
        config = cls.from_dict(data)
        if config.secret_file is not None:
            config = attrs.evolve(
                config, secret_file=str(Path(path).parent / Path(config.secret_file).expanduser())
            )
        return config
