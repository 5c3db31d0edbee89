"""Notification rules and message templates (docs/notifications.md): the defaults send what
helpkit always sent; configured rules add audiences, conditions and words per locale."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.config import DeskConfig
from helpkit.errors import ConfigError, ValidationError
from helpkit.events import CommentAdded
from helpkit.notifications import (
    DEFAULT_RULES,
    MessageTemplate,
    NotificationRule,
    On,
    To,
    mentions,
)
from helpkit.ports import OutboundMessage
from helpkit.testing.clock import FrozenClock
from helpkit.tickets import Actor, Ticket
from open_desks import opened

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANA = Actor.agent("ana")


def _desk(config: dict[str, Any], store: str = "memory://") -> Helpdesk:
    desk = Helpdesk(
        store, config=config, clock=FrozenClock(START), channels=[RecordingChannel("email")]
    )
    opened(desk)
    desk.add_group("l1", "Service desk", tier=1)
    desk.add_agent("ana", "Ana Lopez", email="ana@help.example", groups=["l1"])
    desk.add_agent("bo", "Bo Chen", email="bo@help.example", groups=["l1"], languages=["de"])
    desk.add_agent("cy", "Cy Noaddress", groups=["l1"])
    return desk


def _open(desk: Helpdesk, *, language: str | None = None, **kw: Any) -> Ticket:
    email = f"c{len(desk.find_contacts('', limit=1000))}@client.example"
    contact = desk.create_contact("Carla Diaz", emails=[email], language=language)
    return desk.open_ticket(
        requester=contact,
        subject=kw.pop("subject", "Printer on fire"),
        body="It is on fire.",
        actor=Actor.contact(contact.id),
        **kw,
    )


def _sent(desk: Helpdesk) -> list[OutboundMessage]:
    desk.deliver_pending()
    return list(desk.channels["email"].messages)  # type: ignore[attr-defined]


def _seq(desk: Helpdesk, ticket: Ticket, body: str) -> int:
    """The seq of the event that added the comment ``body``."""
    return next(
        e.seq
        for e in desk.history(ticket)
        if isinstance(e, CommentAdded) and e.comment.body == body
    )


def _to(message: OutboundMessage) -> list[str]:
    return [r.actor_id for r in message.to]


MENTION = {
    "name": "mentions",
    "on": "internal_note",
    "to": ["mentioned"],
    "template": "mention",
}
MENTION_TEMPLATE = {
    "subject": "{{comment.author}} mentioned you on {{ticket.reference}}",
    "body": "{{comment.body}}",
    "locales": {"de": {"subject": "{{comment.author}} erwähnt dich", "body": "{{comment.body}}"}},
}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_mentioned_agents_hear_of_a_note_in_their_language(kind: str, tmp_path: Path) -> None:
    store = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"
    desk = _desk({"notifications": [MENTION], "templates": {"mention": MENTION_TEMPLATE}}, store)
    ticket = _open(desk)
    # ana mentions herself (the author hears nothing), bo (German) and cy (no address), and
    # someone who is no agent; an address is no mention.
    desk.note(ticket, ANA, "@ana @bo can you look? cc @cy @nobody, mail x@bo.example")
    notices = [m for m in _sent(desk) if m.kind == "notification"]
    assert len(notices) == 1
    (notice,) = notices
    assert _to(notice) == ["bo"]
    assert notice.subject == "Ana Lopez erwähnt dich"
    assert notice.body.startswith("@ana @bo can you look?")
    assert notice.idempotency_key == f"{ticket.id}-3-notification-mentions"
    assert notice.headers["X-Helpkit-Rule"] == "mentions"
    assert notice.headers["Auto-Submitted"] == "auto-generated"


def test_recipients_get_the_variant_of_their_language_each_in_one_message() -> None:
    config = {
        "notifications": [
            {
                "name": "solved",
                "on": "public_comment",
                "to": ["requester", "group"],
                "template": "heads-up",
                "when": {"field": "priority", "is": "P1"},
            }
        ],
        "templates": {
            "heads-up": {
                "subject": "Solved: {{ticket.subject}}",
                "body": "{{comment.body}}",
                "locales": {
                    "pt": {"subject": "Resolvido: {{ticket.subject}}", "body": "{{comment.body}}"},
                    "de": {"subject": "Gelöst: {{ticket.subject}}", "body": "{{comment.body}}"},
                },
            }
        },
    }
    desk = _desk(config)
    ticket = _open(desk, language="pt-BR")
    desk.assign(ticket, ANA, group="l1")
    desk.reply(ticket, ANA, "Not yet.")
    assert [m for m in _sent(desk) if m.kind == "notification"] == []  # the condition
    desk.prioritize(ticket, ANA, impact="high", urgency="high")
    desk.reply(ticket, ANA, "Fixed.", status="solved")
    notices = [m for m in _sent(desk) if m.kind == "notification"]
    by_subject = {m.subject: _to(m) for m in notices}
    # pt-BR falls back to pt; bo reads German; ana wrote the reply; cy has no address.
    assert by_subject == {
        "Resolvido: Printer on fire": [ticket.requester_id],
        "Gelöst: Printer on fire": ["bo"],
    }
    keys = sorted(m.idempotency_key for m in notices)
    base = f"{ticket.id}-{_seq(desk, ticket, 'Fixed.')}-notification-solved"
    assert keys == [base, f"{base}-de"]
    # the default reply went out as always
    assert any(m.kind == "reply" and m.body == "Fixed." for m in _sent(desk))


def test_the_defaults_can_be_turned_off_and_reworded() -> None:
    config = {
        "notifications": [
            {
                "name": "replies",
                "on": "public_comment",
                "to": ["requester"],
                "template": "reply",
                "active": False,
            }
        ],
        "templates": {"reply": {"subject": "Re: {{ticket.subject}}"}},
    }
    desk = _desk(config)
    ticket = _open(desk)
    desk.reply(ticket, ANA, "Hello")
    assert [m for m in _sent(desk) if m.kind == "reply"] == []
    assert desk.config.message_templates()["reply"].body.text == "{{comment.body}}"

    config["notifications"] = []
    desk = _desk(config)
    ticket = _open(desk)
    desk.reply(ticket, ANA, "Hello")
    (reply,) = [m for m in _sent(desk) if m.kind == "reply"]
    assert (reply.subject, reply.body) == ("Re: Printer on fire", "Hello")
    assert reply.idempotency_key == f"{ticket.id}-{_seq(desk, ticket, 'Hello')}-reply"


def test_every_new_ticket_can_be_acknowledged_in_the_requesters_language() -> None:
    config = {
        "notifications": [
            {"name": "welcome", "on": "opened", "to": ["requester"], "template": "acknowledgement"}
        ],
        "templates": {
            "acknowledgement": {
                "locales": {
                    "fr": {
                        "subject": "[{{ticket.reference}}] Reçu",
                        "body": "Bonjour {{requester.first_name}}",
                    }
                }
            }
        },
    }
    desk = _desk(config)
    french = _open(desk, language="fr-CA")
    other = _open(desk)
    sent = {m.ticket_id: m for m in _sent(desk)}
    assert (sent[french.id].subject, sent[french.id].body) == (
        f"[{french.reference}] Reçu",
        "Bonjour Carla",
    )
    assert sent[other.id].body.startswith(
        f"We have received your request and opened ticket {other.reference}: Printer on fire"
    )
    assert sent[other.id].kind == "notification"


def test_the_escalation_audience_is_who_the_escalation_rules_name() -> None:
    config = {
        "sla": {
            "policies": [
                {
                    "name": "std",
                    "calendar": {"timezone": "UTC", "hours": "mon-sun 00:00-24:00"},
                    "targets": {"P3": {"first_response": "1h"}},
                }
            ],
            "default": "std",
        },
        "escalation": [
            {"name": "tell", "metric": "first_response", "at": 1.0, "actions": ["notify_group"]}
        ],
        "templates": {
            "sla_breach": {
                "locales": {"de": {"subject": "SLA verletzt", "body": "{{sla.metric}} {{sla.due}}"}}
            }
        },
    }
    desk = _desk(config)
    ticket = _open(desk)
    desk.assign(ticket, ANA, group="l1")
    clock = desk.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(hours=2)
    desk.sweep()
    notices = [m for m in _sent(desk) if m.kind == "sla_notice"]
    assert {m.subject: _to(m) for m in notices} == {
        f"[{ticket.reference}] SLA: Printer on fire": ["ana"],
        "SLA verletzt": ["bo"],
    }
    german = next(m for m in notices if m.subject == "SLA verletzt")
    assert german.body == "first response due 2026-03-02 10:00 UTC"
    assert german.headers["X-Helpkit-Notice"] == "sla"


BAD = [
    (
        {
            "notifications": [
                {"name": "x", "on": "tweeted", "to": ["requester"], "template": "reply"}
            ]
        },
        "unknown event 'tweeted'",
    ),
    (
        {"notifications": [{"name": "x", "on": "opened", "to": ["boss"], "template": "reply"}]},
        "unknown audience 'boss'",
    ),
    (
        {"notifications": [{"name": "x", "on": "opened", "to": ["requester"], "template": "nope"}]},
        "no template 'nope'",
    ),
    (
        {
            "notifications": [
                {"name": "x", "on": "opened", "to": ["requester"], "template": "reply"}
            ]
        },
        "names {{comment.body}}",
    ),
    (
        {
            "notifications": [
                {"name": "x", "on": "opened", "to": ["mentioned"], "template": "acknowledgement"}
            ]
        },
        "comment events only",
    ),
    (
        {
            "notifications": [
                {"name": "x", "on": "opened", "to": ["escalation"], "template": "acknowledgement"}
            ]
        },
        "SLA events only",
    ),
    (
        {
            "notifications": [
                {
                    "name": "x",
                    "on": "opened",
                    "to": ["requester"],
                    "template": "acknowledgement",
                    "cc": 1,
                }
            ]
        },
        "unknown keys cc",
    ),
    ({"notifications": [{"name": "x", "on": "opened", "to": ["requester"]}]}, "missing template"),
    (
        {
            "notifications": [
                {
                    "name": "x",
                    "on": "opened",
                    "to": ["requester"],
                    "template": "acknowledgement",
                    "when": {"field": "colour", "is": 1},
                }
            ]
        },
        "unknown field 'colour'",
    ),
    (
        {
            "notifications": [
                {"name": "x", "on": "opened", "to": ["requester"], "template": "acknowledgement"}
            ]
            * 2
        },
        "two notification rules",
    ),
    ({"templates": {"t": {"subject": "s"}}}, "needs a subject and a body"),
    (
        {"templates": {"t": {"subject": "s", "body": "{{ticket.colour}}"}}},
        "unknown placeholder {{ticket.colour}}",
    ),
    (
        {
            "templates": {
                "t": {
                    "subject": "s",
                    "body": "b",
                    "locales": {"english!": {"subject": "s", "body": "b"}},
                }
            }
        },
        "language tag",
    ),
    (
        {"templates": {"t": {"subject": "s", "body": "b", "locales": {"de": {"subject": "s"}}}}},
        "takes a subject and a body",
    ),
]


@pytest.mark.parametrize(("config", "message"), BAD)
def test_mistakes_are_refused_when_the_configuration_loads(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        DeskConfig.from_dict(config)


def test_rules_given_as_values_are_checked_against_the_configuration() -> None:
    rule = NotificationRule(name="x", on=On.OPENED, to=[To.REQUESTER], template="reply")
    with pytest.raises(ConfigError, match="does not have"):
        DeskConfig(notifications=(rule,))
    with pytest.raises(ValidationError, match="comment events only"):
        NotificationRule(name="x", on="opened", to="mentioned", template="reply")
    welcome = MessageTemplate(
        "welcome", "Hi", "Hello {{requester.name}}", {"DE": ("Hallo", "Hallo")}
    )
    config = DeskConfig(
        notifications=(
            NotificationRule(name="x", on="opened", to="requester", template="welcome"),
        ),
        templates={"welcome": welcome},
    )
    # The satisfaction rules are defaults only on a desk with [csat] enabled.
    csat = {On.SATISFACTION_OFFER, On.BAD_RATING}
    assert [r.name for r in config.notification_rules()] == [
        *(r.name for r in DEFAULT_RULES if r.on not in csat),
        "x",
    ]
    assert welcome.variant("de-AT") == "de"


_TAG = st.from_regex(r"[a-z]{2,3}(-[A-Za-z0-9]{2,4})?", fullmatch=True)


@given(language=st.none() | _TAG, tags=st.sets(_TAG.map(str.lower), max_size=4))
def test_a_reader_gets_their_tag_else_its_language_else_the_default(
    language: str | None, tags: set[str]
) -> None:
    template = MessageTemplate("t", "s", "b", {tag: (tag, "b") for tag in tags})
    variant = template.variant(language)
    if language is None:
        assert variant == ""
    elif language.lower() in tags:
        assert variant == language.lower()
    elif language.lower().split("-")[0] in tags:
        assert variant == language.lower().split("-")[0]
    else:
        assert variant == ""
    subject, _ = template.texts(variant)
    assert subject.text == (variant or "s")


_ID = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,10}[A-Za-z0-9])?", fullmatch=True)


@given(ids=st.lists(_ID, max_size=5), filler=st.sampled_from([" ", ", ", "\n", " and "]))
def test_mentions_are_the_ids_written_after_an_at_sign(ids: list[str], filler: str) -> None:
    text = "Hi " + filler.join(f"@{i}" for i in ids) + "."
    assert mentions(text) == tuple(dict.fromkeys(ids))
    assert mentions(text.replace("@", "x@")) == ()  # inside an address, no mention


_PIECE = st.sampled_from(
    [
        "{{ticket.subject}}",
        "{{ ticket.number }}",
        "{{requester.name}}",
        "{{ticket.reference}}",
        "{",
        "}",
        "{{",
        "}}",
        "text ",
        "é",
        "{{}}",
    ]
)


@given(
    pieces=st.lists(_PIECE, max_size=8),
    values=st.dictionaries(
        st.sampled_from(["ticket.subject", "ticket.number", "requester.name"]),
        st.text(max_size=5),
    ),
)
def test_a_template_fills_in_as_a_plain_substitution_would(
    pieces: list[str], values: dict[str, str]
) -> None:
    """The split-once rendering agrees with one regular-expression substitution."""
    import re

    from helpkit.rules import NUMBERED, Template

    text = "".join(pieces)
    try:
        template = Template(text)
    except ValidationError:
        return  # {{}} names no known placeholder
    pattern = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
    expected = pattern.sub(
        lambda m: values.get(m.group(1), m.group(0) if m.group(1) in NUMBERED else ""), text
    )
    assert template.render(values) == expected
