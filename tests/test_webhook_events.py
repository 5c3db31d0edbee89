"""What a webhook endpoint hears of (helpkit.webhook_events): the subscription filter against a
reference predicate over random histories, the payload of every event (its JSON decodes back to
the event, beside the ticket as it is just after it), and the loop guard."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import ConfigError
from helpkit.events import (
    EVENT_TYPES,
    CommentAdded,
    DeliveryFailed,
    DeliveryRevived,
    Event,
    MessageSent,
)
from helpkit.fold import apply
from helpkit.serialize import from_data
from helpkit.testing.strategies import ticket_histories
from helpkit.tickets import Actor, Ticket
from helpkit.webhook_events import Subscription, payload, payload_text, ticket_summary

RELAY = Actor.system("relay")
AT = datetime(2026, 3, 2, 9, tzinfo=UTC)

subscriptions = st.builds(
    Subscription,
    st.just("crm"),
    st.sets(st.sampled_from([*sorted(EVENT_TYPES), "*"]), min_size=1),
    st.booleans(),
)


def _expected(subscription: Subscription, event: Event) -> bool:
    """The filter, as docs/webhooks.md states it."""
    if getattr(event, "kind", None) == "webhook" and event.BOOKKEEPING:
        return False
    named = event.TYPE in subscription.events
    everything = "*" in subscription.events and not event.BOOKKEEPING
    if not (named or everything):
        return False
    if isinstance(event, CommentAdded) and not event.comment.public:
        return subscription.include_internal
    return True


def _records(ticket_id: str, seq: int, kind: str) -> list[Event]:
    common: dict[str, Any] = {"ticket_id": ticket_id, "seq": seq, "at": AT, "actor": RELAY}
    return [
        MessageSent(
            delivery_id=f"d-{kind}", kind=kind, channel="x", external_id="HTTP 200", **common
        ),
        DeliveryFailed(
            delivery_id=f"d-{kind}",
            kind=kind,
            channel="x",
            reason="r",
            attempt=1,
            final=False,
            **common,
        ),
        DeliveryRevived(delivery_id=f"d-{kind}", kind=kind, **common),
    ]


@given(ticket_histories(max_commands=12), subscriptions, st.sampled_from(["reply", "webhook"]))
def test_the_filter_is_the_documented_rule(
    history: list[Event], subscription: Subscription, kind: str
) -> None:
    events = history + _records(history[0].ticket_id, len(history) + 1, kind)
    for event in events:
        assert subscription.matches(event) == _expected(subscription, event), event.TYPE


@given(ticket_histories(max_commands=12))
def test_a_webhooks_own_records_are_never_sent(history: list[Event]) -> None:
    everything = Subscription("all", set(EVENT_TYPES) | {"*"}, include_internal=True)
    for event in _records(history[0].ticket_id, len(history) + 1, "webhook"):
        assert not everything.matches(event)
    for event in _records(history[0].ticket_id, len(history) + 1, "reply"):
        assert everything.matches(event)


@given(ticket_histories(max_commands=12))
def test_each_payload_holds_the_event_and_the_ticket_after_it(history: list[Event]) -> None:
    state: Ticket | None = None
    for event in history:
        state = apply(state, event)
        text = payload_text(event, state)
        data = json.loads(text)
        assert data == payload(event, state)
        assert data["type"] == event.TYPE and set(data) == {"type", "timestamp", "data"}
        body = data["data"]
        assert body["ticket"] == ticket_summary(state) and body["ticket"]["seq"] == event.seq
        assert from_data(Event, {k: v for k, v in body.items() if k != "ticket"}) == event
        assert from_data(datetime, data["timestamp"]) == event.at


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("a.b", {}, "letters, digits"),
        ("", {}, "letters, digits"),
        ("crm", {"events": 3}, "list of event types"),
        ("crm", {"events": ["*", "nope"]}, "'nope'"),
        ("crm", {"events": []}, "empty"),
        ("crm", {"include_internal": "yes"}, "true or false"),
    ],
)
def test_subscription_options_are_checked(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Subscription.from_options(name, options)


def test_defaults() -> None:
    subscription = Subscription.from_options("crm", {"url": "ignored here"})
    assert subscription == Subscription("crm", {"*"}, False)
    assert Subscription.from_options("crm", {"events": "status_changed"}).events == {
        "status_changed"
    }
