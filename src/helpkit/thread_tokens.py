"""Thread tokens: which ticket a reply answers, signed so that no one can forge one.

Every outbound message of a desk with a secret carries a token in the local part of its
Message-ID (``<key.hk1-<ticket id>-<signature>@domain>``, see
:func:`helpkit.channels.mime.message_id`). A reply names that Message-ID in ``In-Reply-To``
or ``References``; :meth:`ThreadTokens.verify` gives back the ticket id only when the
signature is the desk's, so a stranger who writes ``hk1-<someone else's ticket>-...`` by hand
lands nowhere.

- ``signature``: HMAC-SHA256 of the ticket id (UTF-8) under the desk's secret, the first 80
  bits written in lower-case base32 (16 characters ``a-z2-7``: safe in a Message-ID, a file
  name, a URL). Checked in constant time (:func:`hmac.compare_digest`).
- Only ticket ids of letters, digits, ``_`` and ``-`` (at most 128 of them: helpkit's own
  ids are 32 hex digits) get a token; another id has none, and its replies thread as
  unsigned ones do.
- A secret is at least 16 bytes (``str`` secrets count their UTF-8 bytes); a shorter one is
  refused with :class:`~helpkit.errors.ConfigError`.

The desk's id (:attr:`ThreadTokens.desk_id`, written in the ``X-Helpkit-Desk`` header of every
outbound message, which the loop screen looks for) is derived from the secret the same way,
so it names the desk without telling anything of the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Final

from helpkit.errors import ConfigError

__all__ = [
    "DESK_HEADER",
    "MIN_SECRET_BYTES",
    "PREFIX",
    "ThreadTokens",
    "message_id_parts",
    "parse_token",
    "sent_ticket_id",
    "tokens_in",
]

DESK_HEADER: Final = "X-Helpkit-Desk"
"""The header every outbound message of a desk carries, with the desk's id."""
PREFIX: Final = "hk1"
"""The first part of every token: the token format's version."""
MIN_SECRET_BYTES: Final = 16
"""The shortest secret accepted, in bytes."""
_SIGNATURE_CHARS: Final = 16
"""Base32 characters of signature kept: 80 bits."""
_TICKET_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_TOKEN = re.compile(rf"{PREFIX}-([A-Za-z0-9_-]{{1,128}})-([A-Za-z2-7]{{{_SIGNATURE_CHARS}}})")
_SENT_KEY = re.compile(r"(.+)-[0-9]+-(?:reply|sla_notice|acknowledgement|csat_offer)")
_DESK_ID_LABEL: Final = b"helpkit desk id"


def _base32(digest: bytes, chars: int) -> str:
    return base64.b32encode(digest).decode("ascii").lower()[:chars]


class ThreadTokens:
    """Signs and verifies the thread tokens of one desk's secret."""

    def __init__(self, secret: str | bytes) -> None:
        if isinstance(secret, str):
            key = secret.encode("utf-8", "surrogatepass")
        elif isinstance(secret, bytes | bytearray):
            key = bytes(secret)
        else:
            raise ConfigError(f"a desk secret is text or bytes; got {type(secret).__name__}")
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"a desk secret must be at least {MIN_SECRET_BYTES} bytes long (got {len(key)}); "
                "use e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        self._key = key

    def __repr__(self) -> str:
        return "ThreadTokens(<secret>)"

    def digest(self, purpose: str, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the desk's secret, for another signed value of the
        desk (``purpose`` names it, e.g. ``"csat"``): the message signed is ``purpose``, a NUL
        byte and ``message``, so a value signed for one purpose is never valid for another, nor
        as a thread token (ticket ids hold no NUL)."""
        data = purpose.encode("utf-8") + b"\x00" + message
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def _signature(self, ticket_id: str) -> str:
        digest = hmac.new(self._key, ticket_id.encode("utf-8"), hashlib.sha256).digest()
        return _base32(digest, _SIGNATURE_CHARS)

    @property
    def desk_id(self) -> str:
        """An id of the desk derived from its secret (16 base32 characters)."""
        digest = hmac.new(self._key, _DESK_ID_LABEL, hashlib.sha256).digest()
        return _base32(digest, 16)

    def sign(self, ticket_id: str) -> str:
        """The token of ``ticket_id``, ``hk1-<ticket id>-<signature>``; ``""`` for an id that
        cannot be written in a Message-ID (see the module's docstring)."""
        if not isinstance(ticket_id, str) or not _TICKET_ID.fullmatch(ticket_id):
            return ""
        return f"{PREFIX}-{ticket_id}-{self._signature(ticket_id)}"

    def verify(self, token: str) -> str | None:
        """The ticket id ``token`` was signed for, or ``None`` when it is not a token of this
        desk (malformed, or its signature is not this secret's)."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        ticket_id, signature = parsed
        if hmac.compare_digest(self._signature(ticket_id), signature.lower()):
            return ticket_id
        return None


def parse_token(token: object) -> tuple[str, str] | None:
    """A token's ticket id and signature as written (not verified), or ``None`` when
    ``token`` does not have a token's form."""
    if not isinstance(token, str):
        return None
    found = _TOKEN.fullmatch(token)
    if found is None:
        return None
    return found.group(1), found.group(2)


def message_id_parts(message_id: str) -> list[str]:
    """The dot-separated parts of a Message-ID's local part (``<a.b@host>`` -> ``a``, ``b``);
    angle brackets and spaces around it are ignored."""
    text = message_id.strip().strip("<>").strip()
    local, at, _ = text.rpartition("@")
    return (local if at else text).split(".")


def tokens_in(message_ids: Iterable[str]) -> list[str]:
    """The parts of ``message_ids`` that have a token's form, in order, each once."""
    found: list[str] = []
    for message_id in message_ids:
        for part in message_id_parts(message_id):
            if parse_token(part) is not None and part not in found:
                found.append(part)
    return found


def sent_ticket_id(message_id: str) -> str | None:
    """The ticket id in the Message-ID of a message helpkit sent (its first part is the
    delivery's key, ``<ticket id>-<seq>-<kind>``), unsigned: only a hint, which threads a
    reply only when its sender is a party of the ticket. ``None`` when it has not that form."""
    found = _SENT_KEY.fullmatch(message_id_parts(message_id)[0])
    return None if found is None else found.group(1)
