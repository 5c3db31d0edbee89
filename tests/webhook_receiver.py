"""A real HTTP server on 127.0.0.1 that receives webhooks and verifies each one with
:func:`helpkit.channels.standard_webhooks.verify`, as a host receiving helpkit's webhooks would.

It answers each request with the next status of its ``script`` (then ``default``), after
``delay`` seconds when told, and keeps every request it got (headers, body, and what
verification said), so a test sees exactly what went over the wire.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from helpkit.channels.standard_webhooks import WebhookVerificationError, verify


@attrs.define
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: str | None
    """The webhook id when the signature verified; None when it did not."""
    refusal: str | None
    status: int

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """The server's state: what to answer, and what it received."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = list(secrets)
        self.script: list[int | tuple[int, float]] = []
        self.default = 204
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.url = ""

    def next_answer(self) -> tuple[int, float]:
        with self.lock:
            step = self.script.pop(0) if self.script else self.default
        return step if isinstance(step, tuple) else (step, 0.0)

    @property
    def verified(self) -> list[Received]:
        return [r for r in self.requests if r.verified is not None]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status, delay = receiver.next_answer()
            try:
                verified: str | None = verify(receiver.secrets, self.headers, body)
                refusal = None
            except WebhookVerificationError as exc:
                verified, refusal = None, exc.reason.value
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                receiver.requests.append(
                    Received(self.path, headers, body, verified, refusal, status)
                )
            if delay:
                time.sleep(delay)
            answer = b"gone for good" if status == 410 else b""
            try:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url + "/moved")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up waiting (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def webhook_receiver(secrets: Sequence[str]) -> Iterator[Receiver]:
    """Run a receiver on 127.0.0.1 (a free port) for the ``with`` block."""
    receiver = Receiver(secrets)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    receiver.url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
