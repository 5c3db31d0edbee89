"""Blob addresses: the SHA-256 of the bytes, as 64 lower-case hex digits."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from helpkit.errors import ValidationError

__all__ = ["address_of", "check_address", "check_data"]

_ADDRESS: Final = re.compile(r"[0-9a-f]{64}")


def address_of(data: bytes) -> str:
    """The address of ``data``: its SHA-256 in lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def check_address(value: object) -> str:
    """``value`` if it is an address (64 lower-case hex digits), else ValidationError.

    Blob stores check every address they are given before using it (the folder store builds
    file names from it, so nothing else may reach the file system)."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValidationError(
            f"a blob address is a SHA-256 in 64 lower-case hex digits; got {value!r:.80}"
        )
    return value


def check_data(value: object) -> bytes:
    """``value`` if it is ``bytes``, else ValidationError."""
    if not isinstance(value, bytes):
        raise ValidationError(f"blob data must be bytes; got {type(value).__name__}")
    return value
