"""The Message-IDs of email bytes already parsed, by the bytes' SHA-256.

A mail transport hands the desk the same bytes again when a delivery is retried (an MTA
that did not hear the answer, a poll that overlapped the last one, a folder imported twice).
The desk already ingests such a message once (the second ``receive`` returns the first
outcome, ``duplicate=True``), but only after the whole message was parsed again. A
:class:`ParsedIds` remembers, for the bytes it was shown, the external id that
:func:`helpkit.channels.email_in.parse` found in them: bytes equal to ones parsed before
parse alike (parse reads nothing but the bytes, the channel and the receiving time, and a
duplicate's outcome does not depend on the time), so :meth:`Helpdesk.received
<helpkit.desk.Helpdesk.received>` with that id answers for them without parsing. Only a
digest of the bytes is kept (32 bytes and the id, not the message), for the newest
``limit`` messages.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final

from helpkit._checks import check_int

__all__ = ["DEFAULT_LIMIT", "ParsedIds", "digest"]

DEFAULT_LIMIT: Final = 10_000
"""Messages remembered by default (about 4 MiB at most: a digest and an id each, with the
dictionary's own share)."""


def digest(raw: bytes | bytearray | memoryview) -> bytes:
    """The SHA-256 of ``raw``: what bytes are remembered by."""
    return hashlib.sha256(raw).digest()


class ParsedIds:
    """External ids of parsed email bytes, by :func:`digest`, the newest ``limit`` kept.
    Not thread-safe: one per transport loop."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = check_int(limit, "limit", minimum=1)
        self._ids: OrderedDict[bytes, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, key: bytes) -> str | None:
        """The external id parsed from the bytes of digest ``key``, or ``None``: not seen
        (or forgotten), or parsed without an id."""
        return self._ids.get(key)

    def add(self, key: bytes, external_id: str | None) -> None:
        """Remember that the bytes of digest ``key`` parsed to ``external_id`` (nothing is
        kept for a message without one: each of those is new to the desk)."""
        if external_id is None:
            return
        ids = self._ids
        ids[key] = external_id
        ids.move_to_end(key)
        if len(ids) > self.limit:
            ids.popitem(last=False)
