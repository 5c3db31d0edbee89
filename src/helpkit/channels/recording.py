"""A channel that keeps every outbound message in memory (for tests, demos and dry runs)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from helpkit.ports import OutboundMessage

__all__ = ["RecordingChannel", "recording_channel_factory"]


class RecordingChannel:
    """Records delivered messages in :attr:`messages` instead of sending them.

    Like a transport that honours idempotency keys, it keeps a message once: delivering again a
    message whose :attr:`~helpkit.ports.OutboundMessage.idempotency_key` it has seen returns the
    external id it gave the first time and records nothing (:attr:`attempts` counts every
    call). ``fail`` makes the next that many deliveries raise :class:`ConnectionError`, to
    test retries.
    """

    def __init__(self, name: str = "recording", *, fail: int = 0) -> None:
        self.name = name
        self.messages: list[OutboundMessage] = []
        """The messages delivered, once each, in order."""
        self.attempts = 0
        """Every call of :meth:`deliver`, repeats and failures included."""
        self.fail = fail
        """How many of the next deliveries fail."""
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def deliver(self, message: OutboundMessage) -> str:
        """Record ``message``; return a made-up external id (``<n.ticket@name...>``, with the
        message's thread token after the ticket number when it has one)."""
        with self._lock:
            self.attempts += 1
            if self.fail > 0:
                self.fail -= 1
                raise ConnectionError(f"{self.name}: delivery refused (a failure asked for)")
            key = message.idempotency_key
            if key and key in self._ids:
                return self._ids[key]
            self.messages.append(message)
            token = f".{message.thread_token}" if message.thread_token else ""
            external_id = (
                f"<{len(self.messages)}.{message.ticket_number}{token}@{self.name}.helpkit.invalid>"
            )
            if key:
                self._ids[key] = external_id
            return external_id

    def external_id(self, message: OutboundMessage) -> str | None:
        """The external id ``message`` was recorded under (``None`` if it was not)."""
        with self._lock:
            return self._ids.get(message.idempotency_key)

    def to_address(self, address: str) -> list[OutboundMessage]:
        """The messages sent to ``address`` (case-insensitive)."""
        wanted = address.lower()
        return [m for m in self.messages if any((r.address or "").lower() == wanted for r in m.to)]

    def clear(self) -> None:
        """Forget every recorded message (and the idempotency keys seen)."""
        with self._lock:
            self.messages.clear()
            self._ids.clear()


def recording_channel_factory(options: Mapping[str, Any]) -> RecordingChannel:
    """Build a recording channel; option ``name`` overrides its name."""
    return RecordingChannel(str(options.get("name", "recording")))
