"""The messages the notification rules (:mod:`helpkit.notifications`) call for, for one
committed event.

:class:`Notices` is used by the delivery planner (:class:`helpkit.delivery.Outbound`), which
hands it each event with the ticket as it was just before it and just after. For each active
rule listening to the event (in the rules' order) whose condition holds on the ticket after it
(tested as a trigger's, with the event as the command's), it finds the rule's audiences on the
ticket as it was when the event happened, each person once and never the comment's own
author, and renders the rule's template in each recipient's language: recipients sharing a
variant share one message. The message of the first variant has the rule's delivery id; the
others add ``-<locale>`` (``-default`` for the default text).

The defaults keep what helpkit has always sent, ids included: a public reply is of kind
``reply`` with the id ``<ticket>-<seq>-reply``, threaded on the ticket's last message and
carrying the comment's attachments; the acknowledgement ``acknowledgement``; SLA notices
``sla_notice``. Another rule's messages are of kind ``notification`` with the id
``<ticket>-<seq>-notification-<rule>`` and the header ``X-Helpkit-Rule``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final, TypeVar

from helpkit.conditions import ALWAYS, Subject
from helpkit.config import DeskConfig
from helpkit.errors import NotFoundError
from helpkit.escalation import Action
from helpkit.events import (
    CommentAdded,
    Event,
    SatisfactionOffered,
    SatisfactionRated,
    SlaBreached,
    SlaWarned,
    TicketOpened,
)
from helpkit.fold import apply
from helpkit.notifications import MessageTemplate, NotificationRule, On, To, mentions
from helpkit.people import Agent, Contact, Organization
from helpkit.ports import OutboundMessage, Recipient, Store
from helpkit.rules import fill_number, placeholder_values
from helpkit.tickets import Actor, ActorKind, Comment, Ticket

__all__ = [
    "ACKNOWLEDGEMENT",
    "CSAT_OFFER",
    "NOTIFICATION",
    "REPLY",
    "SLA_NOTICE",
    "Lookups",
    "Notices",
    "RatingLink",
]

REPLY: Final = "reply"
"""The kind of a public comment's delivery."""
SLA_NOTICE: Final = "sla_notice"
"""The kind of an SLA warning's or breach's delivery."""
ACKNOWLEDGEMENT: Final = "acknowledgement"
"""The kind of the automatic acknowledgement of a new request."""
CSAT_OFFER: Final = "csat_offer"
"""The kind of a satisfaction survey offer (one message per contact: each has their own link;
the first recipient's id is ``<ticket>-<seq>-csat_offer``, the others' add ``-<contact id>``)."""
NOTIFICATION: Final = "notification"
"""The kind of a rule's notification (a configured notification rule's, a trigger's or a
macro's ``notify`` action)."""

_DEFAULT_KINDS: Final = {
    "replies": REPLY,
    "acknowledgement": ACKNOWLEDGEMENT,
    "sla_warnings": SLA_NOTICE,
    "sla_breaches": SLA_NOTICE,
    "csat_offer": CSAT_OFFER,
}
"""The delivery kinds of the default rules (kept by a rule that replaces one)."""

_Rule = tuple[NotificationRule, Callable[[Subject], bool] | None]
"""A rule and its compiled condition (``None``: it always holds)."""

RatingLink = Callable[[str, str, datetime], str]
"""The rating link of ``(ticket id, contact id, expiry)`` (a desk with a secret)."""

Planned = tuple[str, str | None, OutboundMessage]
"""A message's kind, the channel it leaves through (``None``: no channel fits), the message."""


_T = TypeVar("_T")


def _once(cache: dict[str, _T | None], key: str, read: Callable[[str], _T]) -> _T | None:
    """``read(key)`` the first time (``None`` when there is nothing by that key), then what it
    gave."""
    if key not in cache:
        try:
            cache[key] = read(key)
        except NotFoundError:
            cache[key] = None
    return cache[key]


class Lookups:
    """The contacts, agents and organizations one planning batch looks up, each read once (a
    batch plans on the directory as it is when the batch is planned)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._contacts: dict[str, Contact | None] = {}
        self._agents: dict[str, Agent | None] = {}
        self._organizations: dict[str, Organization | None] = {}
        self._all_agents: list[Agent] | None = None
        self._addressed: dict[str, tuple[Recipient, str | None] | None] = {}

    def contact(self, contact_id: str) -> Contact | None:
        """The contact, or ``None`` when there is none by that id."""
        return _once(self._contacts, contact_id, self._store.get_contact)

    def addressed(self, contact_id: str) -> tuple[Recipient, str | None] | None:
        """The contact as a message's recipient, with their language; ``None`` when there is
        none by that id. Made once per contact (a recipient is a value: every message to the
        contact shares it)."""
        try:
            return self._addressed[contact_id]
        except KeyError:
            pass
        person = self.contact(contact_id)
        found = None
        if person is not None:
            recipient = Recipient("contact", person.id, person.name, person.email)
            found = (recipient, person.language)
        self._addressed[contact_id] = found
        return found

    def agent(self, agent_id: str) -> Agent | None:
        """The agent, or ``None`` when there is none by that id."""
        return _once(self._agents, agent_id, self._store.get_agent)

    def organization(self, organization_id: str) -> Organization | None:
        """The organization, or ``None`` when there is none by that id."""
        return _once(self._organizations, organization_id, self._store.get_organization)

    def group(self, group_id: str) -> list[Agent]:
        """The active agents of group ``group_id``."""
        if self._all_agents is None:
            self._all_agents = self._store.list_agents()
        return [a for a in self._all_agents if a.active and a.in_group(group_id)]

    def name(self, actor: Actor) -> str:
        """The display name of ``actor`` (its id when it is no person the desk knows)."""
        found: Agent | Contact | None = None
        if actor.kind is ActorKind.AGENT:
            found = self.agent(actor.id)
        elif actor.kind is ActorKind.CONTACT:
            found = self.contact(actor.id)
        return actor.id if found is None else found.name


class Notices:
    """A desk's notification rules, turned into messages event by event."""

    def __init__(
        self,
        config: DeskConfig,
        *,
        channel_for: Callable[[str], str | None],
        headers: Mapping[str, str],
        token: Callable[[str], str],
        rating_link: RatingLink | None = None,
    ) -> None:
        self._config = config
        self._rating_link = rating_link
        self._channel_for = channel_for
        self._token = token
        self._templates: dict[str, MessageTemplate] = config.message_templates()
        rules = config.notification_rules()
        self._rules: dict[On, list[_Rule]] = {}
        for rule in rules:
            test = None if rule.when == ALWAYS else rule.when.compiled()
            self._rules.setdefault(rule.on, []).append((rule, test))
        # A ticket received is also opened: its rules, then the receiving's.
        self._opened = [*self._rules.get(On.OPENED, ()), *self._rules.get(On.RECEIVED, ())]
        base = dict(headers)
        self._kind_headers = {
            REPLY: base,
            ACKNOWLEDGEMENT: {**base, "Auto-Submitted": "auto-replied"},
            SLA_NOTICE: {**base, "X-Helpkit-Notice": "sla", "Auto-Submitted": "auto-generated"},
            NOTIFICATION: {**base, "Auto-Submitted": "auto-generated"},
            CSAT_OFFER: {**base, "Auto-Submitted": "auto-generated"},
        }

    def rules_for(self, event: Event) -> Sequence[_Rule]:
        """The rules listening to ``event``, in order (none: planning need not know its
        ticket)."""
        kind = type(event)
        if kind is CommentAdded:
            assert isinstance(event, CommentAdded)
            on = On.PUBLIC_COMMENT if event.comment.public else On.INTERNAL_NOTE
            return self._rules.get(on, ())
        if kind is TicketOpened:
            assert isinstance(event, TicketOpened)
            return self._opened if event.acknowledge else self._rules.get(On.OPENED, ())
        if kind is SlaWarned:
            return self._rules.get(On.SLA_WARNING, ())
        if kind is SlaBreached:
            return self._rules.get(On.SLA_BREACH, ())
        if kind is SatisfactionOffered:
            return self._rules.get(On.SATISFACTION_OFFER, ())
        if kind is SatisfactionRated:
            assert isinstance(event, SatisfactionRated)
            return self._rules.get(On.BAD_RATING, ()) if event.rating == "bad" else ()
        return ()

    def plan(
        self,
        event: Event,
        rules: Sequence[_Rule],
        before: Ticket | None,
        now: datetime,
        people: Lookups,
    ) -> list[Planned]:
        """The messages ``rules`` (those :meth:`rules_for` ``event`` gave) call for on
        ``event`` (``before``: its ticket just before it, ``None`` for the opening event)."""
        planned: list[Planned] = []
        ticket = apply(None, event) if before is None else before
        subject: Subject | None = None
        values: dict[str, str] | None = None
        for rule, test in rules:
            if test is not None:
                if subject is None:
                    after = ticket if before is None else apply(before, event)
                    subject = _subject(event, before, after, people)
                if not test(subject):
                    continue
            recipients = self.audience(rule.to, event, ticket, people)
            if isinstance(event, SatisfactionOffered):
                # Only the contacts the offer names, each with their own link.
                recipients = [
                    (r, language)
                    for r, language in recipients
                    if r.actor_kind == "contact" and r.actor_id in event.recipients
                ]
            if not recipients:
                continue
            if values is None:
                values = _values(event, ticket, people)
            planned.extend(self._messages(rule, event, ticket, recipients, values, now, people))
        return planned

    # ------------------------------------------------------------ audiences

    def audience(
        self, to: Sequence[To], event: Event, ticket: Ticket, people: Lookups
    ) -> list[tuple[Recipient, str | None]]:
        """Who audiences ``to`` are on ``ticket`` for ``event``: each once, in their order,
        with their language; never the author of the comment the event adds. The people the
        ticket names (requester, followers) are addressed as they are; agents chosen by their
        role only with an email address."""
        author = event.comment.author if isinstance(event, CommentAdded) else None
        found: dict[tuple[str, str], tuple[Recipient, str | None]] = {}

        by_contact = author is not None and author.kind is ActorKind.CONTACT
        by_agent = author is not None and author.kind is ActorKind.AGENT

        def contact(contact_id: str) -> None:
            if by_contact and author is not None and author.id == contact_id:
                return
            addressed = people.addressed(contact_id)
            if addressed is not None:
                found.setdefault(("contact", addressed[0].actor_id), addressed)

        def agent(person: Agent | None, *, addressed: bool = True) -> None:
            if person is None or (by_agent and author is not None and author.id == person.id):
                return
            if addressed and not person.email:
                return
            found.setdefault(
                ("agent", person.id),
                (
                    Recipient("agent", person.id, person.name, person.email),
                    person.languages[0] if person.languages else None,
                ),
            )

        for audience in to:
            if audience is To.REQUESTER:
                contact(ticket.requester_id)
            elif audience is To.FOLLOWERS:  # the requester is an audience of their own
                for party in sorted(ticket.followers, key=str):
                    if party.kind is ActorKind.CONTACT and party.id != ticket.requester_id:
                        contact(party.id)
                    elif party.kind is ActorKind.AGENT:
                        agent(people.agent(party.id), addressed=False)
            elif audience is To.ASSIGNEE:
                if ticket.assignee_id is not None:
                    agent(people.agent(ticket.assignee_id))
            elif audience is To.GROUP:
                if ticket.group_id is not None:
                    for member in people.group(ticket.group_id):
                        agent(member)
            elif audience is To.MENTIONED:
                if isinstance(event, CommentAdded):
                    for agent_id in mentions(event.comment.body):
                        person = people.agent(agent_id)
                        if person is not None and person.active:
                            agent(person)
            elif audience is To.ESCALATION and isinstance(event, SlaWarned | SlaBreached):
                fraction = event.threshold if isinstance(event, SlaWarned) else 1.0
                actions = {
                    a for _, a in self._config.escalation.actions_for(event.metric, fraction)
                }
                if Action.NOTIFY_ASSIGNEE in actions and ticket.assignee_id is not None:
                    agent(people.agent(ticket.assignee_id))
                if Action.NOTIFY_GROUP in actions and ticket.group_id is not None:
                    for member in people.group(ticket.group_id):
                        agent(member)
        return list(found.values())

    # ------------------------------------------------------------ messages

    def _messages(
        self,
        rule: NotificationRule,
        event: Event,
        ticket: Ticket,
        recipients: Sequence[tuple[Recipient, str | None]],
        values: Mapping[str, str],
        now: datetime,
        people: Lookups,
    ) -> list[Planned]:
        template = self._templates[rule.template]
        variants: dict[str, list[Recipient]] = {}
        for recipient, language in recipients:
            variants.setdefault(template.variant(language), []).append(recipient)
        kind = _DEFAULT_KINDS.get(rule.name, NOTIFICATION)
        base = f"{event.ticket_id}-{event.seq}-{kind}"
        if kind == NOTIFICATION:
            base = f"{base}-{rule.name}"
        comment = event.comment if isinstance(event, CommentAdded) else None
        headers = self._kind_headers[kind]
        channel = self._channel_for(ticket.channel)
        author = "Support"
        thread: tuple[str, ...] = ()
        if kind == REPLY and comment is not None:
            channel = self._channel_for(comment.channel)
            author = people.name(comment.author)
            thread = _thread(ticket, comment)
            message_id = comment.id
        elif kind == ACKNOWLEDGEMENT:
            message_id = f"acknowledgement-{event.seq}"
        elif kind == SLA_NOTICE:
            author = "helpkit SLA"
            message_id = f"sla-{event.seq}"
        elif kind == CSAT_OFFER:
            return self._offers(template, event, ticket, recipients, values, now, channel)
        else:
            headers = {**headers, "X-Helpkit-Rule": rule.name}
            message_id = f"{rule.name}-{event.seq}"
        planned: list[Planned] = []
        for index, (variant, group) in enumerate(variants.items()):
            suffix = "" if index == 0 else f"-{variant or 'default'}"
            subject, body = template.texts(variant)
            planned.append(
                (
                    kind,
                    channel,
                    OutboundMessage(
                        ticket_id=ticket.id,
                        ticket_number=ticket.number,
                        subject=subject.render(values),
                        body=body.render(values),
                        comment_id=message_id + suffix,
                        author_name=author,
                        to=tuple(group),
                        sent_at=now,
                        in_reply_to=thread[-1] if thread else None,
                        references=thread,
                        headers=headers,
                        idempotency_key=base + suffix,
                        kind=kind,
                        attachments=comment.attachments if kind == REPLY and comment else (),
                        thread_token=self._token(ticket.id),
                    ),
                )
            )
        return planned

    def _offers(
        self,
        template: MessageTemplate,
        event: Event,
        ticket: Ticket,
        recipients: Sequence[tuple[Recipient, str | None]],
        values: Mapping[str, str],
        now: datetime,
        channel: str | None,
    ) -> list[Planned]:
        """A satisfaction offer: one message per contact, each with their own rating link."""
        if not isinstance(event, SatisfactionOffered) or self._rating_link is None:
            return []
        planned: list[Planned] = []
        base = f"{event.ticket_id}-{event.seq}-{CSAT_OFFER}"
        for index, (recipient, language) in enumerate(recipients):
            suffix = "" if index == 0 else f"-{recipient.actor_id}"
            link = self._rating_link(ticket.id, recipient.actor_id, event.expires_at)
            filled = {**values, "satisfaction.url": link}
            subject, body = template.texts(template.variant(language))
            planned.append(
                (
                    CSAT_OFFER,
                    channel,
                    OutboundMessage(
                        ticket_id=ticket.id,
                        ticket_number=ticket.number,
                        subject=subject.render(filled),
                        body=body.render(filled),
                        comment_id=f"csat-offer-{event.seq}{suffix}",
                        author_name="Support",
                        to=(recipient,),
                        sent_at=now,
                        headers=self._kind_headers[CSAT_OFFER],
                        idempotency_key=base + suffix,
                        kind=CSAT_OFFER,
                        thread_token=self._token(ticket.id),
                    ),
                )
            )
        return planned


def _subject(event: Event, before: Ticket | None, after: Ticket, people: Lookups) -> Subject:
    """What a rule's condition is tested on: the ticket after the event, as a trigger's is
    after a command of that one event (its instant is the event's, so planning again later
    decides the same)."""

    def organization() -> Organization | None:
        org_id = after.organization_id
        if org_id is None:
            requester = people.contact(after.requester_id)
            org_id = None if requester is None else requester.organization_id
        return None if org_id is None else people.organization(org_id)

    return Subject(
        ticket=after,
        now=event.at,
        before=before,
        events=(event,),
        find_requester=lambda: people.contact(after.requester_id),
        find_organization=organization,
    )


def _values(event: Event, ticket: Ticket, people: Lookups) -> dict[str, str]:
    """The placeholders' values for a message about ``event`` on ``ticket``."""
    assignee = None if ticket.assignee_id is None else people.agent(ticket.assignee_id)
    values = placeholder_values(ticket, people.contact(ticket.requester_id), assignee)
    if isinstance(event, CommentAdded):
        comment = event.comment
        values["comment.body"] = (
            fill_number(comment.body, ticket.number) if _system(comment) else comment.body
        )
        values["comment.author"] = people.name(comment.author)
    elif isinstance(event, SlaWarned | SlaBreached):
        values["sla.metric"] = event.metric.replace("_", " ")
        values["sla.threshold"] = (
            f"{event.threshold:.0%}" if isinstance(event, SlaWarned) else "100%"
        )
        values["sla.due"] = "paused" if event.due is None else f"due {event.due:%Y-%m-%d %H:%M} UTC"
        values["sla.policy"] = event.policy
    elif isinstance(event, SatisfactionOffered):
        values["satisfaction.expires"] = f"{event.expires_at:%Y-%m-%d %H:%M} UTC"
    elif isinstance(event, SatisfactionRated):
        values["satisfaction.rating"] = event.rating
        values["satisfaction.comment"] = event.comment or "-"
        values["satisfaction.rater"] = people.name(event.actor)
    return values


def _system(comment: Comment) -> bool:
    """Whether a rule wrote the comment (its text may wait for the ticket's number)."""
    return comment.author.kind is ActorKind.SYSTEM


def _thread(ticket: Ticket, comment: Comment) -> tuple[str, ...]:
    """The external ids a reply answers (email In-Reply-To and References, oldest first)."""
    found = []
    if comment.in_reply_to is not None:
        found.append(comment.in_reply_to)
    if ticket.last_message_id is not None and ticket.last_message_id not in found:
        found.append(ticket.last_message_id)
    return tuple(found)
