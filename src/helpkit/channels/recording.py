"""A channel that keeps every outbound message in memory (for tests, demos and dry runs)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from helpkit.ports import OutboundMessage

__all__ = ["RecordingChannel", "recording_channel_factory"]


class RecordingChannel:
    """Records delivered messages in :attr:`messages` instead of sending them."""

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.messages: list[OutboundMessage] = []
        self._lock = threading.Lock()

    def deliver(self, message: OutboundMessage) -> str:
        """Record ``message``; return a made-up external id (``<n.ticket@name>``)."""
        with self._lock:
            self.messages.append(message)
            count = len(self.messages)
        return f"<{count}.{message.ticket_number}@{self.name}.helpkit.invalid>"

    def to_address(self, address: str) -> list[OutboundMessage]:
        """The messages sent to ``address`` (case-insensitive)."""
        wanted = address.lower()
        return [m for m in self.messages if any((r.address or "").lower() == wanted for r in m.to)]

    def clear(self) -> None:
        """Forget every recorded message."""
        with self._lock:
            self.messages.clear()


def recording_channel_factory(options: Mapping[str, Any]) -> RecordingChannel:
    """Build a recording channel; option ``name`` overrides its name."""
    return RecordingChannel(str(options.get("name", "recording")))
