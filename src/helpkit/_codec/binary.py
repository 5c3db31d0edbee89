"""Bytes as standard base64 text (RFC 4648, section 4, with padding): ``b"hi"`` is ``"aGk="``.

The form is canonical: reading takes only the text :func:`bytes_text` writes for some bytes
(the standard alphabet, the padding it needs, no whitespace, no stray bits in the last
character), so one value has one stored text; anything else raises
:class:`~helpkit.errors.SchemaError`.
"""

from __future__ import annotations

import base64
import binascii

from helpkit.errors import SchemaError

__all__ = ["bytes_from_text", "bytes_text"]


def bytes_text(value: bytes) -> str:
    """The standard base64 text of ``value``."""
    return base64.b64encode(value).decode("ascii")


def bytes_from_text(text: object) -> bytes:
    """The bytes whose :func:`bytes_text` is ``text``; else SchemaError."""
    if not isinstance(text, str):
        raise SchemaError(f"expected base64 text, found {text!r:.60}")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise SchemaError(f"expected base64 text, found {text!r:.60}: {exc}") from None
    if bytes_text(data) != text:
        raise SchemaError(f"expected canonical base64 text, found {text!r:.60}")
    return data
