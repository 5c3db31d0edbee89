"""A web form posting to a host's endpoint becomes a ticket: the host verifies the Standard
Webhooks signature, turns the JSON into an InboundMessage and hands it to ``desk.receive``.

A real HTTP server on 127.0.0.1 plays the host (a few lines, as a host would write them); the
form's backend signs and posts with the standard library. A replayed request, a forged one and
a second delivery of the same submission (a new webhook-id, the same payload id) change
nothing.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from helpkit import Helpdesk
from helpkit.channels import json_in
from helpkit.channels.standard_webhooks import (
    MemorySeenIds,
    WebhookVerificationError,
    generate_secret,
    signature_header,
    verify,
)
from helpkit.errors import HelpkitError

SECRET = generate_secret()


class Host:
    """A host application's endpoint: verify, adapt, receive; answer with the outcome."""

    def __init__(self, desk: Helpdesk) -> None:
        self.desk = desk
        self.seen = MemorySeenIds()
        self.lock = threading.Lock()

    def handle(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            webhook_id = verify(SECRET, headers, body, seen=self.seen)
            message = json_in.parse(body, received_at=datetime.now(UTC), external_id=webhook_id)
            intake = self.desk.receive(message)
        except WebhookVerificationError as exc:
            return 401, {"error": str(exc)}
        except HelpkitError as exc:
            return 422, {"error": str(exc)}
        return 200, {
            "outcome": intake.kind.value,
            "ticket": intake.ticket_number,
            "duplicate": intake.duplicate,
        }


@pytest.fixture
def served() -> Iterator[tuple[str, Helpdesk]]:
    desk = Helpdesk("memory://", entry_points=False)
    host = Host(desk)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, answer = host.handle(self.headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/support", desk
    finally:
        server.shutdown()
        server.server_close()
        desk.shutdown()


def post(
    url: str,
    payload: dict[str, Any],
    webhook_id: str,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload).encode()
    ts = int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": signature_header(secret, webhook_id, ts, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


FORM = {
    "from": {"email": "bob@acme.example", "name": "Bob Núñez"},
    "subject": "VPN drops",
    "body": "It drops every 10 minutes.",
    "id": "form-7f3a",
}


def test_a_signed_form_submission_becomes_a_ticket_once(served: tuple[str, Helpdesk]) -> None:
    url, desk = served
    status, answer = post(url, FORM, "msg_1")
    assert (status, answer["outcome"], answer["duplicate"]) == (200, "created", False)
    ticket = desk.ticket(answer["ticket"])
    assert ticket.subject == "VPN drops" and ticket.channel == "web"
    assert desk.contact(ticket.requester_id).emails == ("bob@acme.example",)
    (comment,) = desk.conversation(ticket)
    assert comment.body == "It drops every 10 minutes." and comment.external_id == "form-7f3a"

    # The form's backend retries with a new webhook-id: the payload id makes it the same
    # submission, and the first outcome comes back.
    status, again = post(url, FORM, "msg_2")
    assert (status, again["ticket"], again["duplicate"]) == (200, answer["ticket"], True)
    # A captured request replayed verbatim is refused by the verify helper.
    assert post(url, FORM, "msg_1")[0] == 401
    # A forged signature and a stale timestamp are refused before anything is read.
    assert post(url, FORM, "msg_3", secret=generate_secret())[0] == 401
    assert post(url, FORM, "msg_4", timestamp=1_000_000_000)[0] == 401
    assert len(desk.tickets().items) == 1


def test_a_follow_up_from_the_requester_threads_by_ticket_number(
    served: tuple[str, Helpdesk],
) -> None:
    url, desk = served
    _, first = post(url, FORM, "msg_1")
    follow = {**FORM, "id": "form-7f3b", "body": "Still dropping.", "ticket": first["ticket"]}
    status, answer = post(url, follow, "msg_2")
    assert (status, answer["outcome"], answer["ticket"]) == (200, "commented", first["ticket"])
    # A stranger naming the same ticket number gets a ticket of their own.
    stranger = {**follow, "id": "form-9", "from": {"email": "eve@evil.example"}}
    _, other = post(url, stranger, "msg_3")
    assert other["outcome"] == "created" and other["ticket"] != first["ticket"]
    assert [c.body for c in desk.conversation(first["ticket"])] == [
        "It drops every 10 minutes.",
        "Still dropping.",
    ]


def test_a_malformed_payload_is_refused_with_a_reason(served: tuple[str, Helpdesk]) -> None:
    url, desk = served
    status, answer = post(url, {"subject": "no sender"}, "msg_1")
    assert status == 422 and "from" in answer["error"]
    assert desk.tickets().items == ()
