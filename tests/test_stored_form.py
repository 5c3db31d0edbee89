"""The JSON text stores keep, pinned: tickets, every event type and people.

``stored_form.jsonl`` was written by helpkit before the codec was reorganised (one compiled
codec, ``helpkit.serialize``). Stores must keep writing exactly this text, and read it back,
so files written by earlier versions stay readable and unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs

from helpkit import lifecycle
from helpkit._codec import decoder, encoder
from helpkit.events import (
    CommentRedacted,
    ContactErased,
    DeliveryFailed,
    DeliveryRevived,
    Escalated,
    Event,
    MessageSent,
    Notified,
    SatisfactionOffered,
    SatisfactionRated,
    SlaBreached,
    SlaRescheduled,
    SlaWarned,
    WebhookRequested,
    event_from_dict,
    event_to_dict,
)
from helpkit.people import Agent, Contact, Group, Organization
from helpkit.priority import ITIL_MATRIX, Impact, Urgency
from helpkit.stores.sqlite.encoding import _dumps
from helpkit.tickets import DEFAULT_WORKFLOW, Actor, Comment, LinkKind, Ticket
from test_events import every_event_type

GOLDEN = Path(__file__).with_name("stored_form.jsonl")
NOW = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
ANA = Actor.agent("ana")


def _ticket() -> Ticket:
    """A ticket with every kind of field set: tags, followers, custom fields, links, SLA."""
    opened = lifecycle.open_ticket(
        ticket_id="t-0001",
        number=42,
        at=NOW,
        actor=Actor.contact("c-1"),
        subject="The VPN drops — «again»",
        requester_id="c-1",
        organization_id="o-1",
        impact=Impact.HIGH,
        urgency=Urgency.MEDIUM,
        matrix=ITIL_MATRIX,
        workflow=DEFAULT_WORKFLOW,
        channel="email",
        tags=["vpn", "network", "Été"],
        followers=[Actor.contact("c-2"), ANA],
        custom_fields={"os": ("linux", "mac"), "seats": 12, "due": date(2026, 4, 1), "cost": 1.5},
    )
    other = attrs.evolve(opened.ticket, id="t-0002", number=43)
    linked, _ = lifecycle.link(opened.ticket, other, LinkKind.RELATED, at=NOW, actor=ANA)
    return attrs.evolve(
        linked.ticket,
        sla_policy="gold",
        next_deadline=(NOW + timedelta(hours=4)).astimezone(PARIS),
        next_check=NOW + timedelta(hours=3),
        status_at=None,  # as tickets were stored before status_at was kept (see below)
        requester_updated_at=None,  # ... and before the rules' instants of issue #14 were
        unassigned_at=None,
    )


def test_a_ticket_with_its_status_instant_keeps_it_and_old_text_reads_without() -> None:
    ticket = attrs.evolve(_ticket(), status_at=NOW.astimezone(PARIS))
    data = encoder(Ticket)(ticket)
    assert data["status_at"] == "2026-03-02T09:00:00.123456+00:00"
    assert decoder(Ticket)(json.loads(_dumps(data))) == ticket
    assert "status_at" not in _dumps(encoder(Ticket)(_ticket()))


def test_a_ticket_with_the_rules_instants_keeps_them_and_old_text_reads_without() -> None:
    ticket = attrs.evolve(
        _ticket(),
        assignee_id="ana",
        assigned_at=NOW.astimezone(PARIS),
        requester_updated_at=NOW - timedelta(hours=1),
        agent_updated_at=NOW,
        assignee_updated_at=NOW - timedelta(minutes=30),
    )
    data = encoder(Ticket)(ticket)
    assert (data["assigned_at"], data["requester_updated_at"], data["agent_updated_at"]) == (
        "2026-03-02T09:00:00.123456+00:00",
        "2026-03-02T08:00:00.123456+00:00",
        "2026-03-02T09:00:00.123456+00:00",
    )
    assert data["assignee_updated_at"] == "2026-03-02T08:30:00.123456+00:00"
    assert decoder(Ticket)(json.loads(_dumps(data))) == ticket
    assert "unassigned_at" not in data  # assigned: left out
    dropped = attrs.evolve(
        ticket, assignee_id=None, assigned_at=None, unassigned_at=NOW, assignee_updated_at=None
    )
    data = encoder(Ticket)(dropped)
    assert data["unassigned_at"] == "2026-03-02T09:00:00.123456+00:00"
    assert "assigned_at" not in data and "assignee_updated_at" not in data
    assert decoder(Ticket)(json.loads(_dumps(data))) == dropped
    # The text stored before: none of them, and it reads as a ticket without them.
    old = json.loads(GOLDEN.read_text(encoding="utf-8").splitlines()[0])
    new_keys = {
        "assigned_at",
        "requester_updated_at",
        "agent_updated_at",
        "unassigned_at",
        "assignee_updated_at",
    }
    assert not new_keys & set(old)
    loaded = decoder(Ticket)(old)
    assert (
        loaded.assigned_at,
        loaded.requester_updated_at,
        loaded.agent_updated_at,
        loaded.unassigned_at,
        loaded.assignee_updated_at,
    ) == (None, None, None, None, None)


def _sla_events() -> list[Event]:
    sweep = Actor.system("sweep")
    return [
        SlaWarned(
            ticket_id="t-1",
            at=NOW,
            actor=sweep,
            seq=20,
            policy="gold",
            metric="resolution",
            cycle=0,
            threshold=0.75,
            crossed_at=NOW,
            due=NOW + timedelta(hours=1),
        ),
        SlaBreached(
            ticket_id="t-1",
            at=NOW,
            actor=sweep,
            seq=21,
            policy="gold",
            metric="first_response",
            cycle=2,
            due=NOW,
        ),
        Escalated(
            ticket_id="t-1",
            at=NOW,
            actor=sweep,
            seq=22,
            kind="hierarchical",
            group_id="l2",
            previous_group_id="l1",
            tier=2,
            previous_tier=1,
            rule="resolution-75",
        ),
        SlaRescheduled(
            ticket_id="t-1", at=NOW, actor=sweep, seq=23, policy=None, previous_policy="gold"
        ),
        # The relay's records of what went out (issue #11).
        MessageSent(
            ticket_id="t-1",
            at=NOW,
            actor=Actor.system("relay"),
            seq=24,
            delivery_id="t-1-2-reply",
            kind="reply",
            channel="email",
            recipients=("contact:c-1", "agent:ana"),
            attempt=2,
            external_id="<m-1@help.example>",
            comment_id="m1",
        ),
        DeliveryFailed(
            ticket_id="t-1",
            at=NOW,
            actor=Actor.system("relay"),
            seq=25,
            delivery_id="t-1-20-sla_notice",
            kind="sla_notice",
            channel="email",
            reason="SMTP 451: try again later",
            attempt=1,
            final=False,
            next_attempt_at=NOW + timedelta(seconds=30),
        ),
        DeliveryRevived(
            ticket_id="t-1",
            at=NOW,
            actor=Actor.system("operator"),
            seq=26,
            delivery_id="t-1-20-sla_notice",
            kind="sla_notice",
        ),
        # What rules ask for (issue #14).
        Notified(
            ticket_id="t-1",
            at=NOW,
            actor=Actor.system("trigger:p1"),
            seq=27,
            rule="p1",
            audiences=("assignee", "group"),
            subject="P1: {{ticket.reference}}",
            body="Résumé\nline two",
        ),
        WebhookRequested(
            ticket_id="t-1",
            at=NOW,
            actor=Actor.system("trigger:crm"),
            seq=28,
            rule="crm",
            endpoint="crm",
        ),
        # Customer satisfaction (issue #15).
        SatisfactionOffered(
            ticket_id="t-1",
            at=NOW,
            actor=Actor.system("csat"),
            seq=29,
            recipients=("c-1", "c-9"),
            expires_at=NOW + timedelta(days=7),
        ),
        SatisfactionRated(
            ticket_id="t-1",
            at=NOW,
            actor=Actor.contact("c-1"),
            seq=30,
            rating="bad",
            comment="Trop lent",
            previous="good",
        ),
    ]


def _people() -> list[object]:
    return [
        Contact(
            id="c-1",
            name="José Ñúñez",
            emails=["Jose@Example.com", "j@ex.org"],
            phone="+33 1",
            language="fr",
            timezone="Europe/Paris",
            organization_id="o-1",
            vip=True,
            segment="gold",
            created_at=NOW,
            updated_at=NOW.astimezone(PARIS),
            version=2,
        ),
        Organization(
            id="o-1",
            name="Example",
            domains=["example.com"],
            segment="gold",
            region="EU",
            created_at=NOW,
            updated_at=NOW,
        ),
        Agent(
            id="ana", name="Ana", email="ana@example.com", group_ids=["l1", "l2"], languages=["fr"]
        ),
        Group(id="l2", name="Second line", tier=2, description="Specialists"),
        Comment(
            id="m-1",
            author=ANA,
            body="Line one\nline two\x01",
            public=False,
            channel="web",
            created_at=NOW,
            external_id="<a@b>",
            in_reply_to="<c@d>",
            ticket_id="t-0001",
        ),
    ]


def _privacy_events() -> list[Event]:
    """The events of privacy (#16): kept out of the golden file above (whose layout is
    fixed); their stored text is pinned by ``test_privacy_events_have_a_fixed_stored_text``."""
    admin = Actor.agent("ann")
    return [
        CommentRedacted(
            ticket_id="t-1",
            seq=22,
            at=NOW,
            actor=admin,
            comment_id="m-1",
            reason="GDPR",
            attachments=("f-1",),
        ),
        ContactErased(
            ticket_id="t-1", seq=23, at=NOW, actor=admin, contact_id="c-1", reason="GDPR"
        ),
    ]


def test_privacy_events_have_a_fixed_stored_text() -> None:
    texts = [_dumps(event_to_dict(e)) for e in _privacy_events()]
    at = json.dumps(NOW.isoformat())
    assert [json.loads(t) for t in texts] == [
        {
            "type": "comment_redacted",
            "v": 1,
            "ticket_id": "t-1",
            "seq": 22,
            "at": json.loads(at),
            "actor": {"kind": "agent", "id": "ann"},
            "comment_id": "m-1",
            "reason": "GDPR",
            "attachments": ["f-1"],
        },
        {
            "type": "contact_erased",
            "v": 1,
            "ticket_id": "t-1",
            "seq": 23,
            "at": json.loads(at),
            "actor": {"kind": "agent", "id": "ann"},
            "contact_id": "c-1",
            "reason": "GDPR",
        },
    ]
    assert [event_from_dict(json.loads(t)) for t in texts] == _privacy_events()
    # A comment stored before the redaction marker reads as not redacted, and one not redacted
    # is stored as before (the marker is left out while it is False).
    comment = Comment(
        id="m-1", author=Actor.agent("ann"), body="Hi", public=True, channel="web", created_at=NOW
    )
    assert "redacted" not in json.loads(_dumps(encoder(Comment)(comment)))
    redacted = attrs.evolve(comment, body="[redacted]", redacted=True)
    assert json.loads(_dumps(encoder(Comment)(redacted)))["redacted"] is True


def _texts() -> list[str]:
    texts = [_dumps(encoder(Ticket)(_ticket()))]
    texts += [_dumps(event_to_dict(e)) for e in every_event_type() + _sla_events()]
    texts += [_dumps(encoder(type(v))(v)) for v in _people()]
    return texts


def _golden() -> list[str]:
    return GOLDEN.read_text(encoding="ascii").splitlines()


def test_stores_write_the_same_text_as_before() -> None:
    assert _texts() == _golden()


def test_text_written_before_reads_back_to_the_same_values() -> None:
    golden = _golden()
    events = every_event_type() + _sla_events()
    people = _people()
    assert decoder(Ticket)(json.loads(golden[0])) == _ticket()
    assert [event_from_dict(json.loads(t)) for t in golden[1 : 1 + len(events)]] == events
    rest = golden[1 + len(events) :]
    assert [decoder(type(v))(json.loads(t)) for v, t in zip(people, rest, strict=True)] == people


def test_a_ticket_written_before_last_message_id_reads_back() -> None:
    # Tickets stored before the field existed have no "last_message_id": it reads as None.
    text = GOLDEN.with_name("stored_ticket_before_last_message_id.json").read_text("ascii")
    assert "last_message_id" not in text
    assert decoder(Ticket)(json.loads(text)) == _ticket()


if __name__ == "__main__":  # regenerate (only when the stored form changes on purpose)
    GOLDEN.write_text("\n".join(_texts()) + "\n", encoding="ascii")
