"""The SMTP channel (helpkit.channels.smtp) against a real SMTP server on 127.0.0.1 (aiosmtpd):
plain, STARTTLS and implicit TLS with a certificate made for the test (trustme), AUTH, refusals,
connection failures the relay retries, and a desk whose replies arrive threaded and parse back.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from helpkit import Actor, Helpdesk
from helpkit.channels.email_in import parse
from helpkit.channels.mime import MissingBlobError
from helpkit.channels.smtp import SmtpChannel, SmtpError, smtp_channel_factory
from helpkit.errors import ConfigError, NotFoundError
from helpkit.events import MessageSent
from helpkit.ports import InboundAttachment, OutboundMessage, Recipient
from helpkit.testing.conformance.channels import (
    Arrival,
    ArrivedFactory,
    ChannelConformance,
    ChannelFactory,
    arrival_of,
)
from helpkit.tickets import Attachment

SENT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
USER, PASSWORD = "ann@help.example", "s3cret-pässword"


class Inbox:
    """An aiosmtpd handler that keeps what it is given, and refuses ``refused*`` recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.define
class Server:
    inbox: Inbox
    port: int
    ca_file: str


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def _authenticate(inbox: Inbox) -> Any:
    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        )
        if ok:
            inbox.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)  # handled=False: the server says 535

    return authenticator


def _run(controller: Controller) -> Iterator[None]:
    controller.start()
    try:
        yield
    finally:
        controller.stop()


@pytest.fixture
def starttls(ca: trustme.CA, ca_file: str) -> Iterator[Server]:
    """STARTTLS required, AUTH required (only over TLS)."""
    inbox, port = Inbox(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(ca),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=_authenticate(inbox),
    )
    yield from (Server(inbox, port, ca_file) for _ in _run(controller))


@pytest.fixture
def implicit_tls(ca: trustme.CA, ca_file: str) -> Iterator[Server]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=_server_context(ca),
        auth_required=True,
        # aiosmtpd does not count implicit TLS as TLS for AUTH (only STARTTLS): allow AUTH,
        # and the tests using this fixture ignore its warning about it.
        auth_require_tls=False,
        authenticator=_authenticate(inbox),
    )
    yield from (Server(inbox, port, ca_file) for _ in _run(controller))


@pytest.fixture
def plain() -> Iterator[Server]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    yield from (Server(inbox, port, "") for _ in _run(controller))


def outbound(**changes: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "ticket_id": "t1",
        "ticket_number": 42,
        "subject": "[#42] VPN down",
        "body": "We are on it.\n\nAna",
        "comment_id": "c9",
        "author_name": "Ana",
        "to": [
            Recipient("contact", "c1", "Bob Núñez", "bob@acme.example"),
            Recipient("contact", "c2", "Carol", "carol@acme.example"),
        ],
        "sent_at": SENT,
        "in_reply_to": "<CAF1@mail.acme.example>",
        "references": ["<first@acme.example>", "<CAF1@mail.acme.example>"],
        "idempotency_key": "t1-7-reply",
    }
    values.update(changes)
    return OutboundMessage(**values)


def test_starttls_with_auth_delivers_and_returns_the_message_id(
    starttls: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPKIT_TEST_SMTP_PASSWORD", PASSWORD)
    channel = smtp_channel_factory(
        {
            "name": "email",
            "type": "smtp",
            "host": "127.0.0.1",
            "port": starttls.port,
            "security": "starttls",
            "username": USER,
            "password_env": "HELPKIT_TEST_SMTP_PASSWORD",
            "ca_file": starttls.ca_file,
            "sender": "Acme Support <support@help.example>",
            "reply_to": "help@help.example",
            "timeout": 5,
        }
    )
    assert channel.deliver(outbound()) == "<t1-7-reply@help.example>"
    ((mail_from, rcpt, content),) = starttls.inbox.messages
    assert mail_from == "support@help.example"
    assert rcpt == ["bob@acme.example", "carol@acme.example"]
    assert starttls.inbox.logins
    back = parse(content, received_at=SENT, strip_quotes=False)
    assert (back.sender_address, back.sender_name) == ("support@help.example", "Acme Support")
    assert back.external_id == "t1-7-reply@help.example"
    assert back.in_reply_to == "CAF1@mail.acme.example"
    assert back.references == ("first@acme.example", "CAF1@mail.acme.example")
    assert (back.subject, back.ticket_number, back.body) == (
        "[#42] VPN down",
        42,
        "We are on it.\n\nAna",
    )
    assert back.headers["reply-to"] == "<help@help.example>"
    assert back.headers["content-type"].startswith("multipart/alternative")  # html = true


def test_a_retry_carries_the_same_message_id(starttls: Server) -> None:
    channel = SmtpChannel(
        "127.0.0.1",
        port=starttls.port,
        username=USER,
        password=PASSWORD,
        ca_file=starttls.ca_file,
        sender="support@help.example",
        domain="mail.help.example",
    )
    first = channel.deliver(outbound())
    again = channel.deliver(outbound(sent_at=datetime(2026, 3, 2, 10, tzinfo=UTC)))
    assert first == again == "<t1-7-reply@mail.help.example>"
    ids = [parse(c, received_at=SENT).external_id for _, _, c in starttls.inbox.messages]
    assert ids == ["t1-7-reply@mail.help.example"] * 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_implicit_tls_with_auth(implicit_tls: Server) -> None:
    channel = SmtpChannel(
        "127.0.0.1",
        port=implicit_tls.port,
        security="ssl",
        username=USER,
        password=PASSWORD,
        ca_file=implicit_tls.ca_file,
        sender="support@help.example",
        html=False,
    )
    channel.deliver(outbound())
    ((_, _, content),) = implicit_tls.inbox.messages
    back = parse(content, received_at=SENT)
    assert back.headers["content-type"].startswith("text/plain")


def test_no_security_for_a_local_relay_and_attachments(plain: Server) -> None:
    data = b"%PDF-1.4 receipt"
    blobs = DictBlobs()
    attachment = Attachment(
        id="a1",
        filename="reçu.pdf",
        content_type="application/pdf",
        size=len(data),
        sha256=blobs.put(data),
    )
    channel = SmtpChannel("127.0.0.1", port=plain.port, security="none", sender="s@help.example")
    with pytest.raises(MissingBlobError):
        channel.deliver(outbound(attachments=(attachment,)))
    assert plain.inbox.messages == []
    channel.blobs = blobs
    channel.deliver(outbound(attachments=(attachment,)))
    ((_, _, content),) = plain.inbox.messages
    (received,) = parse(content, received_at=SENT).attachments
    assert (received.filename, received.content_type, received.data) == (
        "reçu.pdf",
        "application/pdf",
        data,
    )


def test_wrong_credentials_and_missing_password_are_failures(
    starttls: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def channel(**options: Any) -> SmtpChannel:
        return SmtpChannel(
            "127.0.0.1",
            port=starttls.port,
            ca_file=starttls.ca_file,
            sender="support@help.example",
            **options,
        )

    with pytest.raises(SmtpError, match=r"answered 535"):
        channel(username=USER, password="wrong").deliver(outbound())
    monkeypatch.delenv("HELPKIT_TEST_SMTP_UNSET", raising=False)
    with pytest.raises(SmtpError, match=r"HELPKIT_TEST_SMTP_UNSET .* is not set"):
        channel(username=USER, password_env="HELPKIT_TEST_SMTP_UNSET").deliver(outbound())
    with pytest.raises(SmtpError, match=r"answered 530"):  # AUTH required
        channel().deliver(outbound())
    assert starttls.inbox.messages == []


def test_an_untrusted_certificate_is_refused(starttls: Server) -> None:
    channel = SmtpChannel(
        "127.0.0.1",
        port=starttls.port,
        username=USER,
        password=PASSWORD,
        sender="support@help.example",
    )
    with pytest.raises(SmtpError, match="certificate verify failed"):
        channel.deliver(outbound())


def test_starttls_missing_is_a_failure_not_plain_text(plain: Server) -> None:
    channel = SmtpChannel("127.0.0.1", port=plain.port, sender="support@help.example")
    with pytest.raises(SmtpError, match="does not offer STARTTLS"):
        channel.deliver(outbound())
    assert plain.inbox.messages == []


def test_refused_recipients(plain: Server, caplog: pytest.LogCaptureFixture) -> None:
    channel = SmtpChannel("127.0.0.1", port=plain.port, security="none", sender="s@help.example")
    some = [
        Recipient("contact", "c1", "Bob", "bob@acme.example"),
        Recipient("contact", "c2", "Gone", "refused@acme.example"),
    ]
    channel.deliver(outbound(to=some))
    assert "refused@acme.example (550 5.1.1 no such user)" in caplog.text
    assert [rcpt for _, rcpt, _ in plain.inbox.messages] == [["bob@acme.example"]]
    with pytest.raises(SmtpError, match="refused every recipient"):
        channel.deliver(outbound(to=[some[1]]))


def test_a_server_that_is_not_there_is_a_failure_the_relay_retries() -> None:
    channel = SmtpChannel(
        "127.0.0.1", port=_free_port(), security="none", sender="s@help.example", timeout=2
    )
    with pytest.raises(SmtpError, match=r"cannot send through the SMTP server 127\.0\.0\.1:"):
        channel.deliver(outbound())
    assert issubclass(SmtpError, OSError)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({}, "needs host and sender"),
        ({"host": "h.example"}, "needs sender"),
        ({"host": "h.example", "sender": "s@h.example", "tls": True}, "unknown option tls"),
        ({"host": "h.example", "sender": "s@h.example", "security": "tls"}, "security must be"),
        ({"host": "h.example", "sender": "s@h.example", "port": 0}, "port must be"),
        ({"host": "h.example", "sender": "s@h.example", "port": "25"}, "port must be"),
        ({"host": "h.example", "sender": "s@h.example", "timeout": 0}, "timeout"),
        ({"host": "h example", "sender": "s@h.example"}, "host must be"),
        ({"host": "h.example", "sender": "nobody"}, "sender"),
        ({"host": "h.example", "sender": "s@h.example", "password": "x"}, "needs a username"),
        (
            {
                "host": "h.example",
                "sender": "s@h.example",
                "username": "u",
                "password": "x",
                "password_env": "X",
            },
            "not both",
        ),
        ({"host": "h.example", "sender": "s@h.example", "html": "yes"}, "html must be"),
        ({"host": "h.example", "sender": "s@h.example", "reply_to": 3}, "reply_to must be"),
        (
            {"host": "h.example", "sender": "s@h.example", "security": "none", "ca_file": "x"},
            "needs security",
        ),
    ],
)
def test_configuration_mistakes(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        smtp_channel_factory({"name": "email", **options})


def test_default_ports_and_building_touches_nothing() -> None:
    for security, port in (("ssl", 465), ("starttls", 587), ("none", 25)):
        built = smtp_channel_factory(
            {"host": "smtp.invalid", "sender": "s@h.example", "security": security}
        )
        assert (built.port, built.security, built.name) == (port, security, "smtp")


def test_a_desk_reply_arrives_threaded_and_parses_back(
    starttls: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPKIT_TEST_SMTP_PASSWORD", PASSWORD)
    config = {
        "channels": {
            "email": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": starttls.port,
                "username": USER,
                "password_env": "HELPKIT_TEST_SMTP_PASSWORD",
                "ca_file": starttls.ca_file,
                "sender": "Acme Support <support@help.example>",
            }
        }
    }
    desk = Helpdesk("memory://", config=config, entry_points=False)
    try:
        desk.add_agent("ann", "Ann Agent", email="ann@help.example")
        bob = desk.create_contact("Bob Núñez", emails=["bob@acme.example"])
        ticket = desk.open_ticket(
            Actor.contact(bob.id), requester=bob, subject="VPN down", body="Help", channel="email"
        )
        desk.reply(ticket, Actor.agent("ann"), "Looking into it.")
        first = desk.deliver_pending()
        desk.reply(ticket, Actor.agent("ann"), "Fixed: please try again.\n\nAnn")
        second = desk.deliver_pending()
        assert (first.sent, second.sent) == (1, 1)
        sent = [e for e in desk.history(ticket) if isinstance(e, MessageSent)]
    finally:
        desk.shutdown()
    assert len(starttls.inbox.messages) == 2
    one, two = (parse(c, received_at=SENT) for _, _, c in starttls.inbox.messages)
    assert [f"<{one.external_id}>", f"<{two.external_id}>"] == [e.external_id for e in sent]
    assert one.in_reply_to is None
    assert two.in_reply_to == one.external_id
    assert two.references == (one.external_id,)
    assert (two.ticket_number, two.subject) == (ticket.number, f"[#{ticket.number}] VPN down")
    assert two.body == "Fixed: please try again.\n\nAnn"
    assert two.sender_name == "Acme Support"
    assert [a.address for a in two.to] == ["bob@acme.example"]


class DictBlobs:
    """A blob store in a dict (the BlobStore protocol)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        self.data[key] = data
        return key

    def get(self, sha256: str) -> bytes:
        if sha256 not in self.data:
            raise NotFoundError(sha256)
        return self.data[sha256]

    def exists(self, sha256: str) -> bool:
        return sha256 in self.data

    def delete(self, sha256: str) -> bool:
        return self.data.pop(sha256, None) is not None

    def close(self) -> None:
        self.data.clear()


def test_the_builtin_plugin_registers_the_smtp_type(tmp_path: Path) -> None:
    desk = Helpdesk(
        "memory://",
        config={"channels": {"out": {"type": "smtp", "host": "smtp.invalid", "sender": "s@x.io"}}},
        entry_points=False,
    )
    try:
        assert isinstance(desk.channels["out"], SmtpChannel)
        assert desk.channels["out"].name == "out"
    finally:
        desk.shutdown()


def test_a_replys_attachments_travel_with_its_outbound_message(plain: Server) -> None:
    """An agent's reply with a file, through a desk whose smtp channel comes from the
    configuration (its factory is given the desk's blob store): the file arrives."""
    config = {
        "channels": {
            "email": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": plain.port,
                "security": "none",
                "sender": "s@help.example",
            }
        }
    }
    desk = Helpdesk("memory://", config=config, entry_points=False)
    try:
        channel = desk.channels["email"]
        assert isinstance(channel, SmtpChannel) and channel.blobs is desk.blobs
        desk.add_agent("ann", "Ann Agent", email="ann@help.example")
        bob = desk.create_contact("Bob", emails=["bob@acme.example"])
        ticket = desk.open_ticket(Actor.contact(bob.id), requester=bob, subject="Screen", body="x")
        data = b"%PDF-1.4 manual"
        manual = InboundAttachment(filename="manual.pdf", content_type="application/pdf", data=data)
        desk.reply(ticket, Actor.agent("ann"), "The manual is attached.", attachments=[manual])
        assert desk.deliver_pending().sent == 1
        (delivery,) = [d for d in desk.deliveries(state="sent") if d.kind == "reply"]
        (attachment,) = delivery.message.attachments
        assert (attachment.filename, attachment.size) == ("manual.pdf", len(data))
    finally:
        desk.shutdown()
    ((_, _, content),) = plain.inbox.messages
    back = parse(content, received_at=SENT)
    assert back.body == "The manual is attached."
    assert [(a.filename, a.data) for a in back.attachments] == [("manual.pdf", data)]


class TestSmtpChannelConformance(ChannelConformance):
    """The channel conformance suite over a real SMTP server. SMTP cannot remember what it
    sent, so ``dedupes = False``: every repeat of a key must carry the same Message-ID."""

    dedupes = False

    @pytest.fixture
    def make_channel(self, plain: Server) -> ChannelFactory:
        return lambda: SmtpChannel(
            "127.0.0.1", port=plain.port, security="none", sender="Support <s@help.example>"
        )

    @pytest.fixture
    def arrived(self, plain: Server) -> ArrivedFactory:
        def read() -> list[Arrival]:
            return [
                arrival_of(parse(content, received_at=SENT, strip_quotes=False))
                for _, _, content in list(plain.inbox.messages)
            ]

        return read
