"""Outbound webhooks through the outbox, against a real HTTP server on 127.0.0.1 that verifies
every request's Standard Webhooks signature (tests/webhook_receiver.py): delivery, retries,
dead letters, 410 Gone, timeouts, the same webhook-id on every attempt, event filters, secret
rotation, and configuration mistakes."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpkit import Actor, ConfigError, Helpdesk
from helpkit.channels.recording import RecordingChannel
from helpkit.channels.standard_webhooks import generate_secret
from helpkit.channels.webhook import WebhookChannel, WebhookDeliveryError, WebhookGoneError
from helpkit.errors import DeliveryRefusedError
from helpkit.events import DeliveryFailed, Event, MessageSent
from helpkit.ports import DeliveryState, OutboundMessage, Recipient
from helpkit.relay import RetryPolicy
from helpkit.serialize import from_data
from helpkit.testing.clock import FrozenClock
from postgres_fixtures import fresh_schema
from webhook_receiver import Receiver, webhook_receiver

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
SECRET = generate_secret()
OLD_SECRET = generate_secret()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver([SECRET]) as running:
        yield running


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":  # skipped without a server, failed without one under CI
        database: str = request.getfixturevalue("postgres_database")
        joiner = "&" if "?" in database else "?"
        return f"{database}{joiner}schema={fresh_schema()}"
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'desk.db'}"


def _desk(
    url: str,
    hooks: dict[str, dict[str, Any]],
    *,
    clock: FrozenClock | None = None,
    attempts: int = 8,
    channels: tuple[RecordingChannel, ...] = (),
    store: str = "memory://",
) -> Helpdesk:
    tables = {name: {"url": url, "secret": SECRET, **table} for name, table in hooks.items()}
    return Helpdesk(
        store,
        config={"webhooks": tables},
        clock=clock or FrozenClock(START),
        channels=channels,
        retry=RetryPolicy(attempts=attempts, first=timedelta(minutes=1), jitter=0.0),
    )


def _open(desk: Helpdesk) -> tuple[Any, Any]:
    desk.add_agent("ann", "Ann Agent", email="ann@help.example")
    bob = desk.create_contact("Bob Núñez", emails=["bob@acme.example"])
    ticket = desk.open_ticket(Actor.contact(bob.id), requester=bob, subject="VPN", body="down")
    return bob, ticket


def _records(desk: Helpdesk, ticket: Any) -> list[Event]:
    return [e for e in desk.history(ticket) if isinstance(e, MessageSent | DeliveryFailed)]


def test_events_are_posted_signed_with_the_payload(receiver: Receiver, store_url: str) -> None:
    hooks = {"crm": {"events": ["ticket_opened", "comment_added"]}}
    with _desk(receiver.url + "/hooks", hooks, store=store_url) as desk:
        _, ticket = _open(desk)
        desk.reply(ticket, Actor.agent("ann"), "Which client version?")
        report = desk.deliver_pending()
        # The opening (its event and its first comment) and the reply.
        assert (report.derived, report.sent, report.retried) == (3, 3, 0)
        assert [r.verified for r in receiver.requests] == [
            f"{ticket.id}-{seq}-webhook-crm" for seq in (1, 2, 3)
        ]
        opened, first, reply = receiver.requests
        assert first.payload["data"]["comment"]["body"] == "down"
        assert opened.path == "/hooks" and opened.headers["content-type"] == "application/json"
        assert opened.payload["type"] == "ticket_opened"
        assert opened.payload["timestamp"] == "2026-03-02T09:00:00+00:00"
        summary = opened.payload["data"]["ticket"]
        assert (summary["number"], summary["reference"], summary["subject"]) == (1, "#1", "VPN")
        assert summary["status"] == "new" and summary["seq"] == 1
        event = from_data(Event, {k: v for k, v in reply.payload["data"].items() if k != "ticket"})
        assert event == desk.history(ticket)[2]
        assert reply.payload["data"]["comment"]["body"] == "Which client version?"
        assert reply.payload["data"]["ticket"]["seq"] == 3
        # The audit trail records each delivery under its webhook-id; a webhook is no message
        # of the conversation, so replies do not thread on it.
        sent = [e for e in desk.history(ticket) if isinstance(e, MessageSent)]
        assert len(sent) == len(_records(desk, ticket))
        assert [(e.kind, e.channel, e.external_id, e.recipients) for e in sent] == [
            ("webhook", "crm", r.verified, ("webhook:crm",)) for r in receiver.requests
        ]
        assert desk.ticket(ticket).last_message_id is None
        # Its own records are not sent again (no loop): nothing more is derived.
        assert desk.deliver_pending().derived == 0
        assert len(receiver.requests) == 3


def test_failures_are_retried_with_the_same_id_and_body_then_sent(receiver: Receiver) -> None:
    receiver.script = [500, 502]
    clock = FrozenClock(START)
    with _desk(receiver.url, {"crm": {"events": ["ticket_opened"]}}, clock=clock) as desk:
        _, ticket = _open(desk)
        assert desk.deliver_pending().retried == 1
        clock.advance(minutes=1)
        assert desk.deliver_pending().retried == 1
        clock.advance(minutes=2)
        assert desk.deliver_pending().sent == 1
        ids = {r.verified for r in receiver.requests}
        assert ids == {f"{ticket.id}-1-webhook-crm"}
        assert len({r.body for r in receiver.requests}) == 1
        assert [r.status for r in receiver.requests] == [500, 502, 204]
        failed_1, failed_2, sent = _records(desk, ticket)
        assert isinstance(failed_1, DeliveryFailed) and "HTTP 500" in failed_1.reason
        assert isinstance(failed_2, DeliveryFailed) and "HTTP 502" in failed_2.reason
        assert failed_1.next_attempt_at == START + timedelta(minutes=1)
        assert isinstance(sent, MessageSent) and sent.attempt == 3


def test_an_endpoint_that_keeps_failing_is_dead_lettered(receiver: Receiver) -> None:
    receiver.default = 503
    clock = FrozenClock(START)
    with _desk(receiver.url, {"crm": {"events": ["ticket_opened"]}}, clock=clock, attempts=2) as d:
        _, ticket = _open(d)
        d.deliver_pending()
        clock.advance(minutes=1)
        assert d.deliver_pending().dead == 1
        (dead,) = d.deliveries(state="dead")
        assert dead.attempts == 2 and "HTTP 503" in (dead.last_error or "")
        last = _records(d, ticket)[-1]
        assert isinstance(last, DeliveryFailed) and last.final
        receiver.default = 200
        d.retry_delivery(dead.id)
        assert d.deliver_pending().sent == 1
        assert len({r.verified for r in receiver.requests}) == 1  # the same id, revived


def test_410_gone_gives_the_delivery_up_at_once(receiver: Receiver) -> None:
    receiver.script = [410]
    with _desk(receiver.url, {"crm": {"events": ["ticket_opened"]}}) as desk:
        _, ticket = _open(desk)
        report = desk.deliver_pending()
        assert (report.dead, report.retried) == (1, 0)
        (record,) = _records(desk, ticket)
        assert isinstance(record, DeliveryFailed) and record.final and record.attempt == 1
        assert "WebhookGoneError" in record.reason and "HTTP 410" in record.reason
        assert record.next_attempt_at is None


def test_a_slow_endpoint_times_out_and_is_tried_again(receiver: Receiver) -> None:
    receiver.script = [(204, 1.5)]
    clock = FrozenClock(START)
    hooks = {"crm": {"events": ["ticket_opened"], "timeout": 0.3}}
    with _desk(receiver.url, hooks, clock=clock) as desk:
        _, ticket = _open(desk)
        assert desk.deliver_pending().retried == 1
        (failed,) = _records(desk, ticket)
        assert isinstance(failed, DeliveryFailed) and "timed out" in failed.reason
        clock.advance(minutes=1)
        assert desk.deliver_pending().sent == 1
        assert len(receiver.verified) == 2


def test_an_unreachable_endpoint_is_a_failure_not_a_crash() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _desk(f"http://127.0.0.1:{port}/", {"crm": {"events": ["ticket_opened"]}}) as desk:
        _, ticket = _open(desk)
        assert desk.deliver_pending().retried == 1
        (failed,) = _records(desk, ticket)
        assert isinstance(failed, DeliveryFailed) and "ConnectionRefusedError" in failed.reason


def test_redirects_are_failures_not_followed(receiver: Receiver) -> None:
    receiver.script = [308]
    with _desk(receiver.url, {"crm": {"events": ["ticket_opened"]}}) as desk:
        _, ticket = _open(desk)
        assert desk.deliver_pending().retried == 1
        assert [r.path for r in receiver.requests] == ["/"]
        (failed,) = _records(desk, ticket)
        assert isinstance(failed, DeliveryFailed) and "HTTP 308" in failed.reason


def test_each_endpoint_gets_the_events_it_subscribes_to(receiver: Receiver) -> None:
    hooks: dict[str, dict[str, Any]] = {
        "all": {},
        "status": {"events": ["status_changed"]},
        "notes": {"events": ["comment_added"], "include_internal": True},
        "public": {"events": ["comment_added"]},
    }
    email = RecordingChannel("email")
    with _desk(receiver.url, hooks, channels=(email,)) as desk:
        _, ticket = _open(desk)
        desk.reply(ticket, Actor.agent("ann"), "On it")
        desk.note(ticket, Actor.agent("ann"), "internal: check the VPN logs")
        desk.set_status(ticket, Actor.agent("ann"), "open")
        desk.deliver_pending()
        assert desk.deliver_pending().derived == 0
        by_endpoint: dict[str, list[str]] = {}
        for event in desk.history(ticket):
            if isinstance(event, MessageSent) and event.kind == "webhook":
                by_endpoint.setdefault(event.channel, []).append(event.delivery_id)
        types = {r.verified: r.payload["type"] for r in receiver.requests}
        got = {name: [types[i] for i in ids] for name, ids in by_endpoint.items()}
        assert got == {
            "all": ["ticket_opened"] + ["comment_added"] * 2 + ["status_changed"],
            "status": ["status_changed"],
            "notes": ["comment_added"] * 3,
            "public": ["comment_added"] * 2,
        }
        # "*" leaves out the relay's bookkeeping: the email reply's message_sent went nowhere.
        assert "message_sent" not in types.values()
        assert len(email.messages) == 1


def test_bookkeeping_is_sent_when_asked_but_never_a_webhooks_own_record(
    receiver: Receiver,
) -> None:
    email = RecordingChannel("email")
    hooks = {"audit": {"events": ["message_sent", "delivery_failed"]}}
    with _desk(receiver.url, hooks, channels=(email,)) as desk:
        _, ticket = _open(desk)
        desk.reply(ticket, Actor.agent("ann"), "On it")
        for _ in range(3):
            desk.deliver_pending()
        (request,) = receiver.requests  # the email's message_sent, and nothing about itself
        assert request.payload["type"] == "message_sent"
        assert request.payload["data"]["channel"] == "email"
        assert desk.deliver_pending().derived == 0


def test_webhooks_leave_email_threading_alone(receiver: Receiver) -> None:
    email = RecordingChannel("email")
    with _desk(receiver.url, {"crm": {}}, channels=(email,)) as desk:
        desk.add_agent("ann", "Ann Agent", email="ann@help.example")
        bob = desk.create_contact("Bob", emails=["bob@acme.example"])
        ticket = desk.open_ticket(
            Actor.contact(bob.id),
            requester=bob,
            subject="VPN",
            body="down",
            external_id="<q1@acme.example>",
        )
        desk.deliver_pending()  # the webhooks of the opening are sent and recorded
        desk.reply(ticket, Actor.agent("ann"), "On it")
        desk.deliver_pending()
        (message,) = email.messages
        assert message.in_reply_to == "<q1@acme.example>"
        types = [r.payload["type"] for r in receiver.verified]
        assert types == ["ticket_opened", "comment_added", "comment_added", "status_changed"]


def test_a_rotated_secret_signs_with_both(receiver: Receiver) -> None:
    hooks = {"crm": {"events": ["ticket_opened"], "secret": [SECRET, OLD_SECRET]}}
    with _desk(receiver.url, hooks) as desk:
        _open(desk)
        receiver.secrets = [OLD_SECRET]  # a receiver still on the old secret
        desk.deliver_pending()
        (request,) = receiver.verified
        signatures = request.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)


def test_a_receiver_with_another_secret_refuses(receiver: Receiver) -> None:
    receiver.secrets = [OLD_SECRET]
    with _desk(receiver.url, {"crm": {"events": ["ticket_opened"]}}) as desk:
        _open(desk)
        desk.deliver_pending()
        (request,) = receiver.requests
        assert request.verified is None and request.refusal == "bad_signature"


def test_secret_env_reads_the_secrets_from_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HK_TEST_WEBHOOK_SECRET", f"{OLD_SECRET} {SECRET}")
    table = {"url": receiver.url, "secret_env": "HK_TEST_WEBHOOK_SECRET", "events": "ticket_opened"}
    config = {"webhooks": {"crm": table}}
    receiver.secrets = [SECRET]
    with Helpdesk(config=config, clock=FrozenClock(START)) as desk:
        _open(desk)
        desk.deliver_pending()
        assert len(receiver.verified) == 1
    monkeypatch.delenv("HK_TEST_WEBHOOK_SECRET")
    with pytest.raises(ConfigError, match="HK_TEST_WEBHOOK_SECRET is not set"):
        Helpdesk(config=config)


def test_a_desk_with_only_webhooks_sends_no_replies_anywhere(receiver: Receiver) -> None:
    with _desk(receiver.url, {"crm": {"events": ["comment_added"]}}) as desk:
        _, ticket = _open(desk)
        desk.reply(ticket, Actor.agent("ann"), "On it")
        assert desk.deliver_pending().sent == 2  # the two comments, to the endpoint only
        assert {d.kind for d in desk.deliveries()} == {"webhook"}
        assert desk.deliveries(state="dead") == []  # no reply dead for want of a channel


def test_sync_delivery_sends_before_the_command_returns(receiver: Receiver) -> None:
    table = {"url": receiver.url, "secret": SECRET, "events": ["ticket_opened"]}
    with Helpdesk(config={"webhooks": {"crm": table}}, delivery="sync") as desk:
        _open(desk)
        assert [r.payload["type"] for r in receiver.verified] == ["ticket_opened"]
        (delivery,) = desk.deliveries()
        assert delivery.state is DeliveryState.SENT and delivery.kind == "webhook"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"secret": SECRET}, "needs url"),
        ({"url": "ftp://x.example/", "secret": SECRET}, "http"),
        ({"url": "http://x.example/"}, "one of secret and secret_env"),
        ({"url": "http://x/", "secret": "hunter2"}, "whsec_"),
        ({"url": "http://x/", "secret": "whsec_aGk="}, "24 to 64 bytes"),
        ({"url": "http://x/", "secret": SECRET, "secret_env": "X"}, "one of secret"),
        ({"url": "http://x/", "secret": SECRET, "events": ["ticket_opend"]}, "ticket_opend"),
        ({"url": "http://x/", "secret": SECRET, "events": []}, "events is empty"),
        ({"url": "http://x/", "secret": SECRET, "events": "*", "include_internal": 1}, "true"),
        ({"url": "http://x/", "secret": SECRET, "timeout": 0}, "timeout"),
        ({"url": "http://x/", "secret": SECRET, "headers": {"webhook-id": "x"}}, "helpkit's"),
        ({"url": "http://x/", "secret": SECRET, "headers": {"X-A": "a\r\nB: c"}}, "printable"),
        ({"url": "http://x/", "secret": SECRET, "retries": 3}, "unknown option retries"),
    ],
)
def test_configuration_mistakes_are_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Helpdesk(config={"webhooks": {"crm": table}})


def test_endpoint_names_and_channels_are_checked() -> None:
    table = {"url": "http://x/", "secret": SECRET}
    with pytest.raises(ConfigError, match="letters, digits"):
        Helpdesk(config={"webhooks": {"crm.v2": table}})
    with pytest.raises(ConfigError, match="both a channel and a webhook"):
        Helpdesk(config={"webhooks": {"log": table}, "channels": {"log": {"type": "recording"}}})
    with pytest.raises(ConfigError, match=r"\[webhooks.crm\]"):
        Helpdesk(config={"channels": {"crm": {"type": "webhook", **table}}})


def test_the_channel_refuses_what_is_not_a_webhook_delivery(receiver: Receiver) -> None:
    channel = WebhookChannel("crm", receiver.url, SECRET)
    reply = OutboundMessage(
        ticket_id="t1",
        ticket_number=1,
        subject="s",
        body="b",
        comment_id="c1",
        author_name="Ann",
        to=[Recipient("contact", "c7", "Bob", "bob@acme.example")],
        sent_at=START,
        idempotency_key="t1-2-reply",
    )
    with pytest.raises(DeliveryRefusedError, match="only webhook deliveries"):
        channel.deliver(reply)
    assert receiver.requests == []
    assert "whsec" not in repr(channel)
    hook = OutboundMessage(**{**_fields(reply), "kind": "webhook", "body": "{}"})
    assert channel.deliver(hook) == "t1-2-reply" == receiver.verified[0].verified
    receiver.script = [410]
    with pytest.raises(WebhookGoneError) as gone:
        channel.deliver(hook)
    assert gone.value.status == 410 and isinstance(gone.value, WebhookDeliveryError)


def _fields(message: OutboundMessage) -> dict[str, Any]:
    import attrs

    return attrs.asdict(message, recurse=False)


def test_helpkit_deliver_sends_webhooks_from_the_command_line(
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from helpkit.cli import main

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("HELPKIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CRM_SECRET", SECRET)
    (tmp_path / "helpkit.toml").write_text(
        f'[webhooks.crm]\nurl = "{receiver.url}"\nsecret_env = "CRM_SECRET"\n'
        'events = ["ticket_opened"]\n',
        encoding="utf-8",
    )
    assert main(["init"]) == 0
    opened = ["open", "--requester", "zoe@acme.example", "--subject", "Printer", "--body", "x"]
    assert main(opened) == 0
    capsys.readouterr()
    assert main(["deliver"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("deliver: 1 derived, 1 sent") and "Traceback" not in err
    (request,) = receiver.verified
    assert request.payload["data"]["ticket"]["subject"] == "Printer"
