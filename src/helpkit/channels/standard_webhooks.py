"""Standard Webhooks signatures (https://www.standardwebhooks.com/, version 1.0.0): signing
what helpkit sends, verifying what a host receives.

A message carries three headers: ``webhook-id`` (the same on every attempt: the receiver's
idempotency key), ``webhook-timestamp`` (the attempt's instant, integer Unix seconds) and
``webhook-signature``, a space-separated list of ``v1,<base64 HMAC-SHA256>`` of
``"{id}.{timestamp}.{body}"``, one per secret (two while a secret is being rotated). Secrets
are ``whsec_`` followed by the base64 of 24 to 64 random bytes.

:func:`verify` checks a received message: the headers are there and well formed, the timestamp
is within ``tolerance`` of now (either way), one of the ``v1`` signatures matches one of the
secrets (compared in constant time), and the id was not seen before (a :class:`SeenIds` store,
remembering each id until its timestamp leaves the tolerance window, after which the timestamp
check refuses it anyway). Every refusal is a :class:`WebhookVerificationError` with a
:class:`Reason`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, runtime_checkable

from helpkit._time import to_utc
from helpkit.errors import ConfigError, HelpkitError

__all__ = [
    "DEFAULT_TOLERANCE",
    "Headers",
    "MemorySeenIds",
    "Reason",
    "SeenIds",
    "WebhookVerificationError",
    "generate_secret",
    "parse_secret",
    "sign",
    "signature_header",
    "verify",
]

PREFIX: Final = "whsec_"
DEFAULT_TOLERANCE: Final = timedelta(minutes=5)
"""How far a message's timestamp may be from now, either way (the spec's recommendation)."""
_MIN_KEY, _MAX_KEY = 24, 64
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_ID_MAX = 256
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


class Reason(enum.Enum):
    """Why a message was refused."""

    MISSING_HEADER = "missing_header"
    """``webhook-id``, ``webhook-timestamp`` or ``webhook-signature`` is absent or empty."""
    BAD_ID = "bad_id"
    """The id holds a ``.``, white space or a control character, or is longer than 256."""
    BAD_TIMESTAMP = "bad_timestamp"
    """The timestamp is not integer Unix seconds (ASCII digits)."""
    TOO_OLD = "too_old"
    """The timestamp is more than ``tolerance`` before now."""
    TOO_NEW = "too_new"
    """The timestamp is more than ``tolerance`` after now."""
    BAD_SIGNATURE = "bad_signature"
    """No ``v1`` signature matches any of the secrets."""
    REPLAYED = "replayed"
    """The id was seen before (within the tolerance window)."""


class Headers(Protocol):
    """A request's headers: a mapping of names to values, or the ``email.message.Message``
    that ``http.server`` and ``urllib`` give (anything with ``items()``)."""

    def items(self) -> Iterable[tuple[str, Any]]:
        """The ``(name, value)`` pairs."""
        ...


class WebhookVerificationError(HelpkitError, ValueError):
    """A received webhook failed verification; ``reason`` says why."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


def generate_secret(size: int = 32) -> str:
    """A new random secret, ``whsec_`` and the base64 of ``size`` bytes (24 to 64)."""
    if not isinstance(size, int) or not _MIN_KEY <= size <= _MAX_KEY:
        raise ConfigError(f"a webhook secret has {_MIN_KEY} to {_MAX_KEY} bytes; got {size!r}")
    return PREFIX + base64.b64encode(os.urandom(size)).decode("ascii")


def parse_secret(secret: str | bytes) -> bytes:
    """The HMAC key of ``secret``: ``whsec_<base64>`` text, or the key's bytes themselves.

    Raises ConfigError for text without the prefix, that is not base64, or a key of fewer than
    24 or more than 64 bytes. The message never repeats the secret.
    """
    if isinstance(secret, bytes):
        key = secret
    elif isinstance(secret, str):
        if not secret.startswith(PREFIX):
            raise ConfigError(f"a webhook secret is {PREFIX}<base64> (it does not start so)")
        try:
            key = base64.b64decode(secret[len(PREFIX) :].encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise ConfigError(f"a webhook secret is {PREFIX}<base64> (not base64)") from None
    else:
        raise ConfigError(f"a webhook secret is text or bytes; got {type(secret).__name__}")
    if not _MIN_KEY <= len(key) <= _MAX_KEY:
        raise ConfigError(
            f"a webhook secret's key has {_MIN_KEY} to {_MAX_KEY} bytes; this one has {len(key)}"
        )
    return key


def _keys(secrets: str | bytes | Iterable[str | bytes]) -> list[bytes]:
    if isinstance(secrets, str | bytes):
        return [parse_secret(secrets)]
    keys = [parse_secret(s) for s in secrets]
    if not keys:
        raise ConfigError("no webhook secret given")
    return keys


def _body(body: bytes | str) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"a webhook body is bytes or text; got {type(body).__name__}")


def _check_id(msg_id: str) -> str | None:
    """What is wrong with ``msg_id``, or None."""
    if not msg_id or len(msg_id) > _ID_MAX:
        return f"an id has 1 to {_ID_MAX} characters; got {len(msg_id)}"
    if not msg_id.isascii() or not msg_id.isprintable() or "." in msg_id or " " in msg_id:
        return "an id is printable ASCII without '.' or spaces"
    return None


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The signature ``v1,<base64>`` of a message under one secret (``timestamp``: Unix
    seconds). Raises ValueError for an id a receiver would refuse."""
    problem = _check_id(msg_id) if isinstance(msg_id, str) else "an id is text"
    if problem is not None:
        raise ValueError(problem)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise ValueError(f"a timestamp is a non-negative integer; got {timestamp!r:.40}")
    return "v1," + _digest(parse_secret(secret), msg_id, str(timestamp), _body(body))


def signature_header(
    secrets: str | bytes | Iterable[str | bytes], msg_id: str, timestamp: int, body: bytes | str
) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated (sign with
    the new and the old secret while rotating, so receivers holding either accept it)."""
    if isinstance(secrets, str | bytes):
        secrets = [secrets]
    signatures = [sign(s, msg_id, timestamp, body) for s in secrets]
    if not signatures:
        raise ConfigError("no webhook secret given")
    return " ".join(signatures)


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = msg_id.encode("ascii") + b"." + timestamp.encode("ascii") + b"." + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


@runtime_checkable
class SeenIds(Protocol):
    """Where :func:`verify` remembers the ids it accepted, for replay protection. Share one
    across the processes that receive for one sender (e.g. backed by Redis ``SET NX EX``, or a
    table with a unique key) so that a replay to another process is refused too."""

    def add(self, key: str, *, now: datetime, expires: datetime) -> bool:
        """Remember ``key`` until ``expires``; False (and nothing changed) when it is already
        remembered and has not expired at ``now``. Atomic: of two concurrent adds of one key,
        one returns True."""
        ...


class MemorySeenIds:
    """A :class:`SeenIds` in this process's memory (thread-safe): forgets each id once it
    expired, and holds at most ``limit`` (the oldest forgotten first, when full)."""

    def __init__(self, limit: int = 100_000) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"limit is a positive integer; got {limit!r:.40}")
        self._limit = limit
        self._expires: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def add(self, key: str, *, now: datetime, expires: datetime) -> bool:
        """See :meth:`SeenIds.add`."""
        with self._lock:
            known = self._expires.get(key)
            if known is not None and known > now:
                return False
            self._expires.pop(key, None)
            if len(self._expires) >= self._limit:
                self._forget(now)
            self._expires[key] = expires
            return True

    def __len__(self) -> int:
        return len(self._expires)

    def _forget(self, now: datetime) -> None:
        live = {k: v for k, v in self._expires.items() if v > now}
        while len(live) >= self._limit:
            live.pop(next(iter(live)))
        self._expires = live


def _header(headers: Headers, name: str) -> str:
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            if isinstance(value, str) and value.strip():
                return value.strip()
            break
    raise WebhookVerificationError(Reason.MISSING_HEADER, f"no {name} header")


def verify(
    secret: str | bytes | Iterable[str | bytes],
    headers: Headers,
    body: bytes | str,
    *,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    now: datetime | None = None,
    seen: SeenIds | None = None,
) -> str:
    """Check a received webhook; its id (``webhook-id``) when it is authentic and new.

    ``secret`` is one secret or several (a receiver rotating its secret accepts both for a
    while); ``headers`` the request's headers (any mapping; names in any case); ``body`` the
    raw request body exactly as received (parse it only after). ``now`` defaults to the system
    clock; ``seen`` remembers accepted ids (``None``: no replay protection). Raises
    :class:`WebhookVerificationError` (a ValueError) with its :class:`Reason`, ConfigError for
    a malformed secret.
    """
    keys = _keys(secret)
    if not isinstance(tolerance, timedelta) or tolerance < timedelta(0):
        raise ConfigError(f"tolerance is a timedelta of zero or more; got {tolerance!r:.40}")
    instant = datetime.fromtimestamp(time.time(), UTC) if now is None else to_utc(now, "now")
    data = _body(body)
    msg_id = _header(headers, "webhook-id")
    problem = _check_id(msg_id)
    if problem is not None:
        raise WebhookVerificationError(Reason.BAD_ID, problem)
    stamp = _header(headers, "webhook-timestamp")
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError(
            Reason.BAD_TIMESTAMP, f"webhook-timestamp is integer Unix seconds; got {stamp!r:.40}"
        )
    offset = int(stamp) * 1_000_000 - (instant - _EPOCH) // _MICROSECOND  # exact, in µs
    if abs(offset) > tolerance // _MICROSECOND:
        reason = Reason.TOO_NEW if offset > 0 else Reason.TOO_OLD
        away = timedelta(microseconds=abs(offset))
        raise WebhookVerificationError(
            reason, f"webhook-timestamp is {away} from now (tolerance {tolerance})"
        )
    given = [
        part[3:].encode("ascii")
        for part in _header(headers, "webhook-signature").split(" ")
        if part.startswith("v1,") and part.isascii()
    ]
    expected = [_digest(key, msg_id, stamp, data).encode("ascii") for key in keys]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise WebhookVerificationError(Reason.BAD_SIGNATURE, "no v1 signature matches")
    if seen is not None:
        try:
            until = _EPOCH + timedelta(seconds=int(stamp)) + tolerance
        except OverflowError:
            until = datetime.max.replace(tzinfo=UTC)
        if not seen.add(msg_id, now=instant, expires=until):
            raise WebhookVerificationError(Reason.REPLAYED, f"webhook {msg_id} was seen before")
    return msg_id
