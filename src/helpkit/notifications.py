"""Notification rules and message templates: who hears of what, in which words.

A :class:`NotificationRule` says that an event (:class:`On`: a public comment, an internal
note, a ticket opened or received, an SLA warning or breach), on a ticket meeting its optional
condition (the triggers' language: :mod:`helpkit.conditions`), is told to audiences
(:class:`To`: the requester, the followers, the assignee, the group, the agents mentioned in
the comment, the agents the escalation rules name) in the words of a :class:`MessageTemplate`.
A template has a subject and a body with ``{{ placeholders }}``, and variants per locale: each
recipient gets the variant of their language (a contact's ``language``, an agent's first of
``languages``): the exact tag, else its primary language (``pt`` for ``pt-BR``), else the
template's default text.

The desk's defaults (:data:`DEFAULT_RULES`, :data:`DEFAULT_TEMPLATES`) are what helpkit always
sent: public replies to the requester and followers, the acknowledgement of a ticket received
on a desk with ``intake.acknowledge``, SLA notices to whom the escalation rules name. A rule or
template configured under a default's name replaces it (``active = false`` turns a default rule
off); others add to them. Planning the messages is :mod:`helpkit.delivery`'s; this module is
pure data and its checks.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from helpkit.conditions import ALWAYS, Condition, Vocabulary
from helpkit.errors import ConfigError, ValidationError
from helpkit.locales import check_locale, choose_variant
from helpkit.rules import PLACEHOLDERS, Template

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TEMPLATES",
    "NOTICE_PLACEHOLDERS",
    "MessageTemplate",
    "NotificationRule",
    "On",
    "To",
    "check",
    "effective_rules",
    "effective_templates",
    "mentions",
    "notifications_from_list",
    "placeholders_for",
    "templates_from_table",
]


class On(enum.Enum):
    """The event a notification rule listens to."""

    PUBLIC_COMMENT = "public_comment"
    """A public comment (a reply) was added."""
    INTERNAL_NOTE = "internal_note"
    """An internal note was added."""
    OPENED = "opened"
    """A ticket was opened, however it came."""
    RECEIVED = "received"
    """A ticket was opened from an inbound message the desk acknowledges
    (``intake.acknowledge``, and the message is no auto-reply, bounce or loop)."""
    SLA_WARNING = "sla_warning"
    """An SLA target reached a warning threshold."""
    SLA_BREACH = "sla_breach"
    """An SLA target was breached."""
    SATISFACTION_OFFER = "satisfaction_offer"
    """A satisfaction survey was offered (``[csat]``): each contact it names gets their own
    rating link (``{{satisfaction.url}}``); audiences other than those contacts are ignored."""
    BAD_RATING = "bad_rating"
    """A contact rated the ticket ``bad``."""


class To(enum.Enum):
    """An audience of a notification rule."""

    REQUESTER = "requester"
    FOLLOWERS = "followers"
    ASSIGNEE = "assignee"
    GROUP = "group"
    """The active agents of the ticket's group."""
    MENTIONED = "mentioned"
    """The agents the comment names as ``@agent-id`` (comment events only)."""
    ESCALATION = "escalation"
    """The agents the escalation rules name for this metric and threshold (``notify_assignee``,
    ``notify_group``; SLA events only)."""


_COMMENTS: Final = frozenset({On.PUBLIC_COMMENT, On.INTERNAL_NOTE})
_SLA: Final = frozenset({On.SLA_WARNING, On.SLA_BREACH})

_BASE_PLACEHOLDERS: Final = PLACEHOLDERS - {"agent.name", "agent.first_name"}
_COMMENT_PLACEHOLDERS: Final = frozenset({"comment.body", "comment.author"})
_SLA_PLACEHOLDERS: Final = frozenset({"sla.metric", "sla.threshold", "sla.due", "sla.policy"})
_OFFER_PLACEHOLDERS: Final = frozenset({"satisfaction.url", "satisfaction.expires"})
_RATING_PLACEHOLDERS: Final = frozenset(
    {"satisfaction.rating", "satisfaction.comment", "satisfaction.rater"}
)
NOTICE_PLACEHOLDERS: Final = (
    _BASE_PLACEHOLDERS
    | _COMMENT_PLACEHOLDERS
    | _SLA_PLACEHOLDERS
    | _OFFER_PLACEHOLDERS
    | _RATING_PLACEHOLDERS
)
"""What a message template may name; which of them a rule's event has:
:func:`placeholders_for`."""


def placeholders_for(on: On) -> frozenset[str]:
    """The placeholders a message about an ``on`` event fills in: the ticket's, its
    requester's and assignee's; ``comment.body`` and ``comment.author`` (the author's name) for
    comments; ``sla.metric``, ``sla.threshold`` (``75%``), ``sla.due`` (``due 2026-12-07 09:00
    UTC``, or ``paused``) and ``sla.policy`` for SLA events; ``satisfaction.url`` (the
    recipient's own rating link) and ``satisfaction.expires`` (``2026-12-14 09:00 UTC``) for a
    satisfaction offer; ``satisfaction.rating``, ``satisfaction.comment`` (``-`` without one)
    and ``satisfaction.rater`` (the contact's name) for a bad rating."""
    if on in _COMMENTS:
        return _BASE_PLACEHOLDERS | _COMMENT_PLACEHOLDERS
    if on in _SLA:
        return _BASE_PLACEHOLDERS | _SLA_PLACEHOLDERS
    if on is On.SATISFACTION_OFFER:
        return _BASE_PLACEHOLDERS | _OFFER_PLACEHOLDERS
    if on is On.BAD_RATING:
        return _BASE_PLACEHOLDERS | _RATING_PLACEHOLDERS
    return _BASE_PLACEHOLDERS


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?)")


def mentions(text: str) -> tuple[str, ...]:
    """The ids ``text`` mentions as ``@id`` (each once, in order; not inside an address)."""
    return tuple(dict.fromkeys(m.group(1) for m in _MENTION.finditer(text)))


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            f"{what} is 1-64 letters, digits, '_', '-' or '.' (first a letter or digit); "
            f"got {value!r:.60}"
        )
    return value


def _text(value: object, what: str) -> Template:
    if isinstance(value, Template):
        value = value.text
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be non-empty text; got {value!r:.60}")
    try:
        return Template(value, known=NOTICE_PLACEHOLDERS)
    except ValidationError as exc:
        raise ValidationError(f"{what}: {exc}") from None


def _template_name(value: object) -> str:
    return _name(value, "a template's name")


def _rule_name(value: object) -> str:
    return _name(value, "a rule's name")


def _subject(value: object) -> Template:
    return _text(value, "subject")


def _body(value: object) -> Template:
    return _text(value, "body")


def _locale(value: object) -> str:
    return check_locale(value)


def _locales(value: Mapping[str, Sequence[Template | str]]) -> dict[str, tuple[Template, Template]]:
    """Locale variants checked: each tag once (lowercase), each with a subject and a body."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"locales map a language tag to (subject, body); got {value!r}")
    checked: dict[str, tuple[Template, Template]] = {}
    for tag, texts in value.items():
        key = _locale(tag)
        if not isinstance(texts, tuple | list) or len(texts) != 2:
            raise ValidationError(f"locale {tag!r} takes (subject, body); got {texts!r:.60}")
        if key in checked:
            raise ValidationError(f"locale {tag!r} is given twice")
        checked[key] = (
            _text(texts[0], f"locale {tag!r}: subject"),
            _text(texts[1], f"locale {tag!r}: body"),
        )
    return checked


@attrs.frozen
class MessageTemplate:
    """A message's subject and body, with variants per locale.

    ``locales`` maps a language tag to its ``(subject, body)``; the default text serves
    everyone whose language has no variant.
    """

    name: str = attrs.field(converter=_template_name)
    subject: Template = attrs.field(converter=_subject)
    body: Template = attrs.field(converter=_body)
    locales: Mapping[str, tuple[Template, Template]] = attrs.field(factory=dict, converter=_locales)

    def variant(self, language: str | None) -> str:
        """The variant a reader of ``language`` gets: a key of :attr:`locales` (the exact tag,
        else its primary language), or ``""`` for the default text."""
        return choose_variant(self.locales, language)

    def texts(self, variant: str) -> tuple[Template, Template]:
        """The subject and body of ``variant`` (as :meth:`variant` names it)."""
        return (self.subject, self.body) if variant == "" else self.locales[variant]

    def names(self) -> frozenset[str]:
        """Every placeholder any of its texts names."""
        found = set(self.subject.names | self.body.names)
        for subject, body in self.locales.values():
            found |= subject.names | body.names
        return frozenset(found)


def _audiences(value: object) -> tuple[To, ...]:
    if isinstance(value, str | To):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, bytes | Mapping):
        raise ValidationError(f"to takes a list of audiences; got {value!r:.60}")
    found: list[To] = []
    for item in value:
        try:
            found.append(item if isinstance(item, To) else To(item))
        except ValueError:
            known = ", ".join(t.value for t in To)
            raise ValidationError(f"unknown audience {item!r:.60} (known: {known})") from None
    if not found:
        raise ValidationError("to names at least one audience")
    return tuple(dict.fromkeys(found))


def _on(value: object) -> On:
    if isinstance(value, On):
        return value
    try:
        return On(value)
    except ValueError:
        known = ", ".join(o.value for o in On)
        raise ValidationError(f"unknown event {value!r:.60} for on (known: {known})") from None


@attrs.frozen(kw_only=True)
class NotificationRule:
    """When an ``on`` event happens on a ticket meeting ``when``, tell ``to`` in the words
    of template ``template``."""

    name: str = attrs.field(converter=_rule_name)
    on: On = attrs.field(converter=_on)
    to: tuple[To, ...] = attrs.field(converter=_audiences)
    template: str = attrs.field(converter=_template_name)
    when: Condition = ALWAYS
    description: str | None = None
    active: bool = True

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.when, Condition):
            raise ValidationError(f"when must be a Condition; got {self.when!r:.60}")
        if not isinstance(self.active, bool):
            raise ValidationError("active must be true or false")
        if To.MENTIONED in self.to and self.on not in _COMMENTS:
            raise ValidationError("'mentioned' is an audience of comment events only")
        if To.ESCALATION in self.to and self.on not in _SLA:
            raise ValidationError("'escalation' is an audience of SLA events only")


_THREAD_NOTE: Final = (
    "We will answer as soon as we can. To add to your request, reply to this message and keep "
    "the ticket number in the subject.\n"
)
DEFAULT_TEMPLATES: Final[Mapping[str, MessageTemplate]] = {
    t.name: t
    for t in (
        MessageTemplate("reply", "[{{ticket.reference}}] {{ticket.subject}}", "{{comment.body}}"),
        MessageTemplate(
            "acknowledgement",
            "[{{ticket.reference}}] {{ticket.subject}}",
            "We have received your request and opened ticket {{ticket.reference}}: "
            "{{ticket.subject}}\n\n" + _THREAD_NOTE,
        ),
        MessageTemplate(
            "sla_warning",
            "[{{ticket.reference}}] SLA: {{ticket.subject}}",
            "Ticket {{ticket.reference}} reached {{sla.threshold}} of its {{sla.metric}} target "
            "({{sla.due}}).",
        ),
        MessageTemplate(
            "csat_offer",
            "[{{ticket.reference}}] How did we do? {{ticket.subject}}",
            "Hello {{requester.first_name}},\n\nYour request {{ticket.reference}} "
            "({{ticket.subject}}) was solved. How would you rate the support you received?\n\n"
            "Rate it here: {{satisfaction.url}}\n\n"
            "The link is yours alone and works until {{satisfaction.expires}}.\n",
            {
                "de": (
                    "[{{ticket.reference}}] Wie waren wir? {{ticket.subject}}",
                    "Hallo {{requester.first_name}},\n\nIhre Anfrage {{ticket.reference}} "
                    "({{ticket.subject}}) wurde gelöst. Wie bewerten Sie unsere Hilfe?\n\n"
                    "Hier bewerten: {{satisfaction.url}}\n\n"
                    "Der Link gilt nur für Sie, bis {{satisfaction.expires}}.\n",
                ),
                "fr": (
                    "[{{ticket.reference}}] Votre avis : {{ticket.subject}}",
                    "Bonjour {{requester.first_name}},\n\nVotre demande {{ticket.reference}} "
                    "({{ticket.subject}}) a été résolue. Comment jugez-vous notre aide ?\n\n"
                    "Donnez votre avis ici : {{satisfaction.url}}\n\n"
                    "Ce lien personnel est valable jusqu'au {{satisfaction.expires}}.\n",
                ),
            },
        ),
        MessageTemplate(
            "bad_rating",
            "[{{ticket.reference}}] Bad satisfaction rating: {{ticket.subject}}",
            "{{satisfaction.rater}} rated ticket {{ticket.reference}} {{satisfaction.rating}}.\n\n"
            "Comment: {{satisfaction.comment}}\n",
        ),
        MessageTemplate(
            "sla_breach",
            "[{{ticket.reference}}] SLA: {{ticket.subject}}",
            "Ticket {{ticket.reference}} breached its {{sla.metric}} target ({{sla.due}}).",
        ),
    )
}
"""The words helpkit has always used (English); configure a template of the same name, or
add ``locales`` to it, to change them."""

DEFAULT_RULES: Final[tuple[NotificationRule, ...]] = (
    NotificationRule(
        name="replies",
        on=On.PUBLIC_COMMENT,
        to=(To.REQUESTER, To.FOLLOWERS),
        template="reply",
        description="a public comment goes to the requester and the followers",
    ),
    NotificationRule(
        name="acknowledgement",
        on=On.RECEIVED,
        to=(To.REQUESTER,),
        template="acknowledgement",
        description="a ticket received on a desk with intake.acknowledge is acknowledged",
    ),
    NotificationRule(
        name="sla_warnings",
        on=On.SLA_WARNING,
        to=(To.ESCALATION,),
        template="sla_warning",
        description="the agents the escalation rules name hear of a warning",
    ),
    NotificationRule(
        name="sla_breaches",
        on=On.SLA_BREACH,
        to=(To.ESCALATION,),
        template="sla_breach",
        description="the agents the escalation rules name hear of a breach",
    ),
    NotificationRule(
        name="csat_offer",
        on=On.SATISFACTION_OFFER,
        to=(To.REQUESTER, To.FOLLOWERS),
        template="csat_offer",
        description="a satisfaction survey goes to the contacts who may rate ([csat] enabled)",
    ),
    NotificationRule(
        name="bad_ratings",
        on=On.BAD_RATING,
        to=(To.ASSIGNEE, To.GROUP),
        template="bad_rating",
        description="a bad rating is told to the assignee and the group ([csat] bad_rating "
        'with "notify")',
    ),
)
"""The rules helpkit has always followed; a rule of the same name replaces one."""


def effective_rules(configured: Sequence[NotificationRule]) -> tuple[NotificationRule, ...]:
    """The defaults with ``configured`` ones replacing those of their name, then the others
    in their order; inactive ones left out."""
    given = {rule.name: rule for rule in configured}
    merged = [given.pop(rule.name, rule) for rule in DEFAULT_RULES]
    merged.extend(rule for rule in configured if rule.name in given)
    return tuple(rule for rule in merged if rule.active)


def effective_templates(configured: Mapping[str, MessageTemplate]) -> dict[str, MessageTemplate]:
    """The default templates, with ``configured`` ones replacing or adding to them."""
    return {**DEFAULT_TEMPLATES, **configured}


def check(
    rules: Sequence[NotificationRule],
    templates: Mapping[str, MessageTemplate],
    vocabulary: Vocabulary,
) -> None:
    """Refuse what would fail when a message is planned: a template no rule can find, a
    placeholder the rule's event does not have, a condition this desk cannot test."""
    commands = vocabulary.for_commands()
    seen: set[str] = set()
    for rule in rules:
        if not isinstance(rule, NotificationRule):
            raise ConfigError(f"notifications must be NotificationRule values; got {rule!r:.60}")
        if rule.name in seen:
            raise ConfigError(f"two notification rules are called {rule.name!r}; names are unique")
        seen.add(rule.name)
        where = f"notification rule {rule.name!r}"
        try:
            commands.parse(rule.when)
        except ValidationError as exc:
            raise ConfigError(f"{where}: when: {exc}") from None
        template = templates.get(rule.template)
        if template is None:
            known = ", ".join(sorted(templates))
            raise ConfigError(f"{where}: no template {rule.template!r} (known: {known})")
        extra = sorted(template.names() - placeholders_for(rule.on))
        if extra:
            raise ConfigError(
                f"{where}: template {rule.template!r} names {{{{{extra[0]}}}}}, which a message "
                f"about {rule.on.value!r} does not have"
            )


def notifications_from_list(data: object, vocabulary: Vocabulary) -> tuple[NotificationRule, ...]:
    """Read ``[[notifications]]`` tables (``name``, ``on``, ``to``, ``template``, ``when``,
    ``description``, ``active``); ConfigError naming the rule and the mistake."""
    if not isinstance(data, list | tuple):
        raise ConfigError("notifications is a list of tables ([[notifications]])")
    commands = vocabulary.for_commands()
    keys = {"name", "on", "to", "template", "when", "description", "active"}
    out: list[NotificationRule] = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise ConfigError(f"notifications[{index}] must be a table; got {item!r:.60}")
        label = f"notification rule {item.get('name', index + 1)!r}"
        try:
            unknown = sorted(set(item) - keys)
            if unknown:
                raise ValidationError(f"unknown keys {', '.join(map(str, unknown))}")
            missing = [k for k in ("name", "on", "to", "template") if k not in item]
            if missing:
                raise ValidationError(f"missing {', '.join(missing)}")
            description = item.get("description")
            if description is not None and not isinstance(description, str):
                raise ValidationError("description must be text")
            when = item.get("when")
            out.append(
                NotificationRule(
                    name=item["name"],
                    on=item["on"],
                    to=item["to"],
                    template=item["template"],
                    when=ALWAYS if when is None else commands.parse(when),
                    description=description,
                    active=item.get("active", True),
                )
            )
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    return tuple(out)


def templates_from_table(data: object) -> dict[str, MessageTemplate]:
    """Read ``[templates.NAME]`` tables (``subject``, ``body``, ``[templates.NAME.locales.TAG]``
    with ``subject`` and ``body``). A table named after a default template may leave out the
    default text (and only add locales)."""
    if not isinstance(data, Mapping):
        raise ConfigError("templates is a table of templates ([templates.NAME])")
    out: dict[str, MessageTemplate] = {}
    for name, table in data.items():
        label = f"template {name!r}"
        try:
            if not isinstance(table, Mapping):
                raise ValidationError(f"must be a table; got {table!r:.60}")
            unknown = sorted(set(table) - {"subject", "body", "locales"})
            if unknown:
                raise ValidationError(f"unknown keys {', '.join(map(str, unknown))}")
            base = DEFAULT_TEMPLATES.get(str(name))
            subject: Any = table.get("subject", base.subject if base else None)
            body: Any = table.get("body", base.body if base else None)
            if subject is None or body is None:
                raise ValidationError("needs a subject and a body")
            locales = table.get("locales", {})
            if not isinstance(locales, Mapping):
                raise ValidationError("locales is a table of [templates.NAME.locales.TAG]")
            pairs: dict[str, tuple[Any, Any]] = {}
            for tag, texts in locales.items():
                if not isinstance(texts, Mapping) or set(texts) != {"subject", "body"}:
                    raise ValidationError(f"locale {tag!r} takes a subject and a body, no more")
                pairs[str(tag)] = (texts["subject"], texts["body"])
            out[str(name)] = MessageTemplate(name, subject, body, pairs)
        except ValidationError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    return out
