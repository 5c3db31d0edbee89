"""Signed rating tokens: the login-free link of a satisfaction survey.

A token names a ticket, the contact who may rate it and when it expires, signed with the desk's
secret (the helper the thread tokens use, :meth:`helpkit.thread_tokens.ThreadTokens.digest`,
under the purpose ``csat``), so no one can forge one or change what it says:

``hkr1.<payload>.<signature>``

- ``payload``: the JSON array ``[ticket id, contact id, expiry]`` (the expiry in integer
  microseconds since the epoch, UTC), in base64url without padding;
- ``signature``: the first 128 bits of HMAC-SHA256 of ``hkr1.<payload>`` (the text as
  written), in base64url without padding (22 characters). It is compared as text, in constant
  time, so any change to any character of the token is refused.

A token is valid strictly before its expiry. :meth:`RatingTokens.verify` raises
:class:`~helpkit.errors.RatingError` for anything else: malformed, another secret's, tampered
with, expired. Tokens are URL-safe (``A-Z a-z 0-9 - _ .``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from helpkit._checks import check_text
from helpkit._time import to_utc
from helpkit.errors import RatingError
from helpkit.thread_tokens import ThreadTokens

__all__ = ["PREFIX", "RatingToken", "RatingTokens"]

PREFIX: Final = "hkr1"
"""The first part of every rating token: the format's version."""
_PURPOSE: Final = "csat"
_SIGNATURE_BYTES: Final = 16
_MAX_LENGTH: Final = 4096
_TOKEN = re.compile(rf"{PREFIX}\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{{22}})")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _micros(instant: datetime) -> int:
    return (instant - _EPOCH) // timedelta(microseconds=1)


@attrs.frozen
class RatingToken:
    """What a verified token says."""

    ticket_id: str
    contact_id: str
    expires_at: datetime


class RatingTokens:
    """Signs and verifies the rating tokens of one desk's secret."""

    def __init__(self, tokens: ThreadTokens) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "RatingTokens(<secret>)"

    def _signature(self, signed: str) -> str:
        digest = self._tokens.digest(_PURPOSE, signed.encode("ascii"))
        return _b64(digest[:_SIGNATURE_BYTES])

    def sign(self, ticket_id: str, contact_id: str, expires_at: datetime) -> str:
        """The token letting contact ``contact_id`` rate ticket ``ticket_id`` until
        ``expires_at``."""
        ticket_id = check_text(ticket_id, "a ticket id")
        contact_id = check_text(contact_id, "a contact id")
        expires = _micros(to_utc(expires_at, "expires_at"))
        payload = json.dumps([ticket_id, contact_id, expires], separators=(",", ":"))
        signed = f"{PREFIX}.{_b64(payload.encode('utf-8'))}"
        return f"{signed}.{self._signature(signed)}"

    def verify(self, token: object, now: datetime) -> RatingToken:
        """What ``token`` says, when it is this desk's and valid at ``now``; RatingError
        otherwise (nothing else is said of why a signature does not match)."""
        if not isinstance(token, str) or len(token) > _MAX_LENGTH:
            raise RatingError("not a rating token")
        found = _TOKEN.fullmatch(token)
        if found is None:
            raise RatingError("not a rating token")
        signed = f"{PREFIX}.{found.group(1)}"
        if not hmac.compare_digest(self._signature(signed), found.group(2)):
            raise RatingError("the rating token is not valid (not signed by this desk)")
        try:
            data = json.loads(_unb64(found.group(1)).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise RatingError("not a rating token") from None
        if (
            not isinstance(data, list)
            or len(data) != 3
            or not all(isinstance(part, str) and part for part in data[:2])
            or not isinstance(data[2], int)
            or isinstance(data[2], bool)
        ):
            raise RatingError("not a rating token")
        try:
            expires_at = _EPOCH + timedelta(microseconds=data[2])
        except OverflowError:
            raise RatingError("not a rating token") from None
        if to_utc(now, "now") >= expires_at:
            raise RatingError(f"the rating link expired on {expires_at:%Y-%m-%d %H:%M} UTC")
        return RatingToken(data[0], data[1], expires_at)
