# Over 600 lines: one parse; the header decoding, the walk of the parts and the limits it
# keeps read as one and are used nowhere else.
"""Inbound email: raw RFC 5322 bytes to an :class:`~helpkit.ports.InboundMessage`.

:func:`parse` reads a message with the standard library's :mod:`email` package
(``email.policy.default``, through :mod:`helpkit.channels.email_structure`: the same tree of
parts and the same answers, without the standard library parsing a header again at every
fetch or reading each line of a base64 body on its own) and decodes what it needs itself, so
that no input makes it raise anything but :class:`EmailParseError`:

- headers: RFC 2047 encoded words in any charset (an unknown one is read as UTF-8, else
  Latin-1, with a note), raw 8-bit bytes (read as UTF-8, else Latin-1), folded lines unfolded;
  a line break inside a decoded value (``=0D=0A`` in an encoded word) becomes a space, so a
  header never spans lines. Every header is kept, names lower-case, repeated ones joined by
  ``\\n`` (``content-type`` shows ``multipart/report`` to a bounce screen);
- ``From`` (else ``Sender``, with a note) is the sender: no usable address is an error;
  ``To`` and ``Cc`` become :class:`~helpkit.ports.Address` es, unusable entries dropped;
- ``Message-ID``, ``In-Reply-To`` and ``References`` without angle brackets (``References``
  oldest first, at most 100, the newest kept);
- ``ticket_number`` from a subject tag, ``[#123]`` or ``[Ticket #123]``
  (:func:`subject_tag`), after any ``Re:``, ``AW:``, ``Fwd:``... prefixes;
- the body: quoted-printable and base64 decoded, the declared charset used (an unknown or
  wrong one degrades to UTF-8, else Latin-1, with a note); in ``multipart/alternative`` the
  ``text/plain`` part, else the HTML one as text (:mod:`helpkit.channels.html_text`); text
  parts of a ``multipart/mixed`` joined by a blank line; quoted history cut off
  (:mod:`helpkit.channels.quoting`) with the whole text kept in ``original``;
- attachments: parts with ``Content-Disposition: attachment``, and every part that is not
  text (images, PDFs, forwarded messages, delivery reports), each an
  :class:`~helpkit.ports.InboundAttachment` (file name decoded and cleaned of any path,
  content type lower-case, ``inline`` and ``Content-ID`` kept);
- limits (parameters): the whole message (``max_bytes``: :class:`EmailParseError` beyond),
  the nesting of multiparts (``max_depth``), the number of parts (``max_parts``) and the
  size of one decoded part (``max_part_bytes``): what lies beyond is dropped, with a note.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.message
import functools
import mimetypes
import quopri
import re
from collections.abc import Callable
from datetime import datetime
from email import policy as email_policy
from email.errors import MessageDefect
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Final

from helpkit._checks import check_text
from helpkit.channels.email_structure import (
    CACHED_HEADERS,
    MAX_CACHED_CHARS,
    plain_params,
    structure,
)
from helpkit.channels.html_text import to_text
from helpkit.channels.mime import file_name
from helpkit.channels.quoting import split_quoted
from helpkit.errors import HelpkitError, NaiveDatetimeError, ValidationError
from helpkit.ports import Address, InboundAttachment, InboundMessage

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_PARTS",
    "MAX_PART_BYTES",
    "EmailParseError",
    "decode_header_text",
    "parse",
    "subject_tag",
]

MAX_BYTES: Final = 40 * 1024 * 1024
"""The largest message :func:`parse` reads by default (40 MiB: 25 MiB of attachments,
base64-encoded)."""
MAX_PART_BYTES: Final = 25 * 1024 * 1024
"""The largest decoded part kept by default (a larger one is dropped with a note)."""
MAX_DEPTH: Final = 20
"""How deep multiparts may nest by default (deeper parts are dropped with a note)."""
MAX_PARTS: Final = 200
"""How many parts are read by default (the rest are dropped with a note)."""

_MAX_REFERENCES: Final = 100
_MAX_HEADER_CHARS: Final = 100_000
"""Characters of one header value kept (the rest is cut, with a note)."""
_MAX_TEXT_CHARS: Final = 2_000_000
"""Characters of body text kept (the rest is cut, with a note)."""


class EmailParseError(HelpkitError, ValueError):
    """Bytes that cannot be read as an email message (too large, no sender...): the message
    says why, on one line."""


# ------------------------------------------------------------------ text helpers

_UNSAFE_CODECS: Final = frozenset(
    {
        "idna",
        "punycode",
        "raw_unicode_escape",
        "unicode_escape",
        "undefined",
        "mbcs",
        "oem",
        "palmos",
    }
)
_LINE_BREAKS: Final = re.compile("\r\n|[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ENCODED_WORD: Final = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS: Final = re.compile(r"[ \t]+")
_NEEDS_DECODING: Final = re.compile("=\\?|[\r\n\x0b\x0c\x1c\x1d\x1e\x00]")
"""What :func:`_decode_header` has work for in an ASCII value: an encoded word's start, a line
break (:data:`_LINE_BREAKS`' ASCII ones) or a NUL."""
_FOLD: Final = re.compile(r"\r?\n(?=[ \t])")
_NOT_BASE64: Final = re.compile(rb"[^A-Za-z0-9+/]")
_MSG_ID: Final = re.compile(r"<([^<>\s]{1,900})>")
_BARE_ID: Final = re.compile(r"[^<>\s@]{1,500}@[^<>\s@]{1,400}")
_PREFIXES: Final = re.compile(
    r"^\s*(?:(?:re|aw|antw|antwort|sv|vs|ref|r[ée]f|rif|tr|wg|fwd?|fw|rv|enc|odp|ynt|vl|"
    r"res|r)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)
_TAG: Final = re.compile(r"\[\s*(?:ticket\s*)?#\s*(\d{1,18})\s*\]", re.IGNORECASE)
_ADDR_SPEC: Final = re.compile(r"[^\s@<>()\[\],;:\\\"]{1,64}@[^\s@<>()\[\],;:\\\"]{1,255}")


class _Notes:
    """What the parser repaired or dropped, once each, in order."""

    def __init__(self) -> None:
        self.items: dict[str, None] = {}

    def add(self, note: str) -> None:
        if len(self.items) < 50:
            self.items[_clean(note)[:300]] = None


class _Said(_Notes):
    """The notes one reading makes, each as it was given, to be told again."""

    def __init__(self) -> None:
        super().__init__()
        self.said: list[str] = []

    def add(self, note: str) -> None:
        self.said.append(note)


def _clean(text: str) -> str:
    """``text`` that every store can keep: no NUL, no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _codec(name: str | None) -> str | None:
    """The Python codec for a MIME charset name, or None when it is unknown or unsafe."""
    if not name:
        return None
    label = name.strip().strip('"').split("*", 1)[0].lower()
    if not label or len(label) > 40:
        return None
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _UNSAFE_CODECS:
        return None
    return info.name


def _decode_bytes(data: bytes, charset: str | None, notes: _Notes, what: str) -> str:
    """``data`` as text in ``charset``. An unknown charset, or bytes that are not in it,
    degrade (with a note): to UTF-8 if the bytes are UTF-8, else to Latin-1 (for a message
    that said nothing, ASCII or UTF-8: the usual mislabelled Western text), else to the
    declared charset with replacement characters."""
    codec = _codec(charset)
    if charset and codec is None:
        notes.add(f"{what}: unknown charset {charset.strip()[:40]!r}, read as UTF-8 or Latin-1")
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if codec is None or codec in {"utf-8", "ascii"}:
            notes.add(f"{what}: bytes that are not UTF-8, read as Latin-1")
            return data.decode("latin-1")
        notes.add(f"{what}: bytes that are not {charset!s:.40}, read with replacements")
        try:
            return data.decode(codec, "replace")
        except (UnicodeError, LookupError, ValueError, TypeError):
            return data.decode("latin-1")
    if codec is not None:
        notes.add(f"{what}: bytes that are not {charset!s:.40}, read as UTF-8")
    return text


def _raw_text(value: str, notes: _Notes, what: str) -> str:
    """A raw header value as the parser read it (8-bit bytes as surrogate escapes) as text."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        data = value.encode("utf-8", "surrogateescape")
        return _decode_bytes(data, None, notes, what)
    return value


def _word(charset: str, encoding: str, payload: str, notes: _Notes, what: str) -> str:
    if encoding in "bB":
        data = payload.encode("ascii", "replace")
        data = _NOT_BASE64.sub(b"", data)
        data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
        data += b"=" * (-len(data) % 4)
        try:
            raw = base64.b64decode(data)
        except (binascii.Error, ValueError):
            notes.add(f"{what}: an encoded word that is not base64, kept as it was")
            return f"=?{charset}?{encoding}?{payload}?="
    else:
        raw = quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"))
    return _decode_bytes(raw, charset, notes, what)


def decode_header_text(value: str) -> str:
    """A header's value as one line of text: unfolded, 8-bit bytes and RFC 2047 encoded words
    decoded (whitespace between two encoded words dropped), every line break a space; an
    unknown charset degrades to UTF-8, else Latin-1."""
    return _decode_header(value, _Notes(), "header")


def _decode_header(value: str, notes: _Notes, what: str) -> str:
    if len(value) <= _MAX_HEADER_CHARS and value.isascii() and not _NEEDS_DECODING.search(value):
        return value.strip(" \t")  # nothing to unfold, decode, break or clean
    if len(value) > MAX_CACHED_CHARS:
        return _decode_encoded(value, notes, what)
    text, said = _decoded_header(value, what)
    for note in said:
        notes.add(note)
    return text


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _decoded_header(value: str, what: str) -> tuple[str, tuple[str, ...]]:
    """:func:`_decode_encoded` of a value, with the notes it made, kept: the same encoded
    sender names (``From: =?utf-8?q?Chlo=C3=A9?= <...>``) come again and again, and the
    decoding of a value (with its notes) is the same each time."""
    said = _Said()
    text = _decode_encoded(value, said, what)
    return text, tuple(said.said)


def _decode_encoded(value: str, notes: _Notes, what: str) -> str:
    """:func:`_decode_header` for a value with something to decode, unfold or clean."""
    text = _raw_text(value, notes, what)
    text = _FOLD.sub("", text)
    pieces: list[str] = []
    last = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[last : match.start()]
        if not (last and _BETWEEN_WORDS.fullmatch(gap)):  # between two encoded words
            pieces.append(gap)
        pieces.append(_word(match[1], match[2], match[3], notes, what))
        last = match.end()
    pieces.append(text[last:])
    joined = _LINE_BREAKS.sub(" ", "".join(pieces))
    if len(joined) > _MAX_HEADER_CHARS:
        notes.add(f"{what}: cut to {_MAX_HEADER_CHARS} characters")
        joined = joined[:_MAX_HEADER_CHARS]
    return _clean(joined).strip(" \t")


def subject_tag(subject: str) -> tuple[int | None, str]:
    """The ticket number a subject's tag names (``[#123]``, ``[Ticket #123]``, after any
    reply or forward prefixes, or anywhere later in the subject), and the subject without
    those prefixes and that tag."""
    rest = _PREFIXES.sub("", subject, count=1)
    match = _TAG.search(rest)
    if match is None:
        return None, rest.strip()
    number = int(match[1])
    cleaned = (rest[: match.start()] + " " + rest[match.end() :]).strip()
    return number, re.sub(r"\s{2,}", " ", cleaned)


# ------------------------------------------------------------------ headers


_PLAIN_NAME: Final = re.compile(r"[!-~]{1,200}")
"""A header name in printable ASCII without spaces: nothing for :func:`_header_items` to
decode, clean, strip or refuse, only to lower."""
_ADDRESS_HEADERS: Final = frozenset({"from", "sender", "to", "cc"})


def _header_items(
    message: Message, notes: _Notes
) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The message's headers, names lower-case, unusable names dropped; and the raw values
    of the address headers (From, Sender, To, Cc), each name's in order."""
    items: list[tuple[str, str]] = []
    addresses: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        text = str(name)
        if _PLAIN_NAME.fullmatch(text):
            key = text.lower()
        else:
            if not text.isascii() or "\x00" in text:
                text = _clean(_raw_text(text, notes, "a header name"))
            key = text.strip().lower()
            if not key or _LINE_BREAKS.search(key) or len(key) > 200:
                notes.add("a header with an unusable name was dropped")
                continue
        raw = str(value)
        items.append((key, raw))
        if key in _ADDRESS_HEADERS:
            addresses.setdefault(key, []).append(raw)
    return items, addresses


def _headers(items: list[tuple[str, str]], notes: _Notes) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    for key, value in items:
        values = found.get(key)
        if values is None:
            if len(found) >= 500:
                notes.add("more than 500 distinct headers: the rest were dropped")
                break
            values = found[key] = []
        # The common value (ASCII, one line, nothing encoded) is _decode_header's first test,
        # made here without a call for each of a message's dozen headers.
        if (
            len(value) <= _MAX_HEADER_CHARS
            and value.isascii()
            and not _NEEDS_DECODING.search(value)
        ):
            values.append(value.strip(" \t"))
        else:
            values.append(_decode_header(value, notes, key))
    return {
        key: values[0] if len(values) == 1 else "\n".join(values) for key, values in found.items()
    }


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _address_pairs(raw: str) -> tuple[tuple[str, str], ...]:
    """``getaddresses`` of one header value, kept: a desk hears from the same senders again
    and again, at the same addresses."""
    return tuple(getaddresses([raw]))


def _addresses(values: list[str], notes: _Notes, what: str) -> list[Address]:
    found: list[Address] = []
    for value in values:
        if len(value) <= MAX_CACHED_CHARS:
            read, said = _value_addresses(value, what)
        else:
            read, said = _read_addresses(value, what)
        for note in said:
            notes.add(note)
        found += read
        if len(found) > 1000:
            notes.add(f"{what}: more than 1000 addresses, the rest dropped")
            return found[:1000]
    return found


@functools.lru_cache(maxsize=CACHED_HEADERS)
def _value_addresses(value: str, what: str) -> tuple[tuple[Address, ...], tuple[str, ...]]:
    """:func:`_read_addresses`, kept: a desk hears from the same senders again and again, at
    the same addresses, and an address's reading (its display name decoded, its spec checked,
    the :class:`~helpkit.ports.Address` built) gives the same frozen answer and notes each
    time."""
    return _read_addresses(value, what)


def _read_addresses(value: str, what: str) -> tuple[tuple[Address, ...], tuple[str, ...]]:
    """The addresses in one header value, and the notes their reading makes, in order."""
    notes = _Said()
    found: list[Address] = []
    raw = _raw_text(value, notes, what)
    raw = _LINE_BREAKS.sub(" ", raw)
    try:
        pairs = _address_pairs(raw) if len(raw) <= MAX_CACHED_CHARS else getaddresses([raw])
    except Exception:  # the standard library's address parser has had crashes
        notes.add(f"{what}: could not be read as addresses")
        return (), tuple(notes.said)
    for name, address in pairs:
        spec = address.strip()
        if not _ADDR_SPEC.fullmatch(spec):
            if spec or name:
                notes.add(f"{what}: {(spec or name)[:80]!r} is not an email address, dropped")
            continue
        display = _decode_header(name, notes, what) if name else ""
        found.append(Address(_clean(spec), display or None))
    return tuple(found), tuple(notes.said)


def _ids(value: str | None) -> list[str]:
    if not value:
        return []
    found = _MSG_ID.findall(value)
    if not found:
        bare = value.strip()
        found = [bare] if _BARE_ID.fullmatch(bare) else []
    return [_clean(i) for i in dict.fromkeys(found)]


# ------------------------------------------------------------------ body and attachments


class _Walk:
    """The state of one walk over a message's parts."""

    def __init__(self, notes: _Notes, *, max_depth: int, max_parts: int, max_part: int) -> None:
        self.notes = notes
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.max_part = max_part
        self.parts = 0
        self.texts: list[str] = []
        self.attachments: list[InboundAttachment] = []
        # Per part (alive for the whole walk, so its id is its key): its content type, and its
        # decoded bytes, each worked out once (an alternative's text/plain part is looked at to
        # choose it, then read).
        self._types: dict[int, str] = {}
        self._decoded: dict[int, bytes | None] = {}
        # The parts the walk made (a multipart without parts read as one text part) are held
        # here till it ends: a part freed earlier could leave its id, and its cached type and
        # bytes, to the next one made.
        self._made: list[Message] = []

    def _type(self, part: Message) -> str:
        found = self._types.get(id(part))
        if found is None:
            found = self._types[id(part)] = _content_type(part, self.notes)
        return found

    def _bytes(self, part: Message) -> bytes | None:
        key = id(part)
        if key not in self._decoded:
            self._decoded[key] = _payload(part, self.notes, self.max_part)
        return self._decoded[key]

    def visit(self, part: Message, depth: int, *, text_wanted: bool = True) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            if self.parts == self.max_parts + 1:
                self.notes.add(f"more than {self.max_parts} parts: the rest were dropped")
            return
        if depth > self.max_depth:
            self.notes.add(f"parts nested deeper than {self.max_depth} levels were dropped")
            return
        ctype = self._type(part)
        if ctype.startswith("multipart/"):
            children = _children(part, self.notes)
            self._made += children
            if ctype == "multipart/alternative":
                self._alternative(children, depth, text_wanted=text_wanted)
            elif ctype == "multipart/related":
                for index, child in enumerate(children):
                    self.visit(child, depth + 1, text_wanted=text_wanted and index == 0)
            else:
                for child in children:
                    self.visit(child, depth + 1, text_wanted=text_wanted)
            return
        disposition = _disposition(part)
        name = _filename(part)
        if ctype in {"text/plain", "text/html"} and disposition != "attachment" and not name:
            if text_wanted:
                text = self._text(part, ctype)
                if text is not None:
                    self.texts.append(text)
            return  # else the alternative not chosen
        self._attachment(part, ctype, disposition, name)

    def _alternative(self, children: list[Message], depth: int, *, text_wanted: bool) -> None:
        if not children:
            return
        types = [self._type(c) for c in children]
        chosen: int | None = None
        for wanted in ("text/plain", "multipart/", "text/html"):
            for index, ctype in enumerate(types):
                if ctype.startswith(wanted) and (
                    wanted != "text/plain" or self._has_text(children[index])
                ):
                    chosen = index
                    break
            if chosen is not None:
                break
        if chosen is None:
            chosen = len(children) - 1
        for index, child in enumerate(children):
            self.visit(child, depth + 1, text_wanted=text_wanted and index == chosen)

    def _has_text(self, part: Message) -> bool:
        data = self._bytes(part)
        return data is not None and bool(data.strip())

    def _text(self, part: Message, ctype: str) -> str | None:
        data = self._bytes(part)
        if data is None:
            return None
        text = _decode_bytes(data, _charset(part), self.notes, f"a {ctype} part")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if ctype == "text/html":
            text = to_text(text)
        return text

    def _attachment(self, part: Message, ctype: str, disposition: str | None, name: str) -> None:
        if ctype.startswith("message/") and part.is_multipart():
            data = _message_bytes(part, self.notes)
        else:
            data = self._bytes(part)
        if data is None:
            return
        if len(data) > self.max_part:
            self.notes.add(f"a {ctype} part of {len(data)} bytes was dropped (over the limit)")
            return
        filename = _safe_filename(_decode_header(name, self.notes, "a file name"), ctype)
        content_id = _ids(_header(part, "content-id"))
        self.attachments.append(
            InboundAttachment(
                filename=filename,
                content_type=ctype,
                data=data,
                inline=disposition == "inline" or (disposition is None and bool(content_id)),
                content_id=content_id[0] if content_id else None,
            )
        )


def _header(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if str(key).lower() == name:
            return str(value)
    return None


_CONTENT_TYPE: Final = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,127}")


def _content_type(part: Message, notes: _Notes) -> str:
    try:
        ctype = part.get_content_type()
    except Exception:
        notes.add("a part with an unreadable Content-Type was read as text/plain")
        return "text/plain"
    ctype = ctype.lower()
    if not _CONTENT_TYPE.fullmatch(ctype):
        return "application/octet-stream"
    return ctype


def _children(part: Message, notes: _Notes) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    notes.add("a multipart without parts (a broken boundary?) was read as text")
    return [_as_text_part(payload)]


def _as_text_part(payload: object) -> Message:
    made = Message()
    made["Content-Type"] = "text/plain"
    made.set_payload(payload if isinstance(payload, str) else "")
    return made


def _disposition(part: Message) -> str | None:
    try:
        found = part.get_content_disposition()
    except Exception:
        return None
    return found.lower() if isinstance(found, str) else None


def _filename(part: Message) -> str:
    if not _may_name(part):
        return ""
    value: object = None
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = part.get_param(param, header=header)
        except Exception:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, text)
            charset, _, text = value
            raw = str(text).encode("latin-1", "replace")
            value = _decode_bytes(raw, str(charset) if charset else None, _Notes(), "")
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _may_name(part: Message) -> bool:
    """Whether ``part``'s Content-Disposition or Content-Type may carry a file name: a
    ``filename`` or ``name`` parameter is spelled out in the raw value (RFC 2231's
    ``filename*0*`` too), unless an encoded word there decodes to one."""
    for key, value in part.raw_items():
        if str(key).lower() in ("content-disposition", "content-type"):
            raw = str(value).lower()
            if "name" in raw or "=?" in raw:
                return True
    return False


def _safe_filename(name: str, ctype: str) -> str:
    """A file name as :func:`helpkit.channels.mime.file_name` cleans it; a part without one
    is ``attachment`` with the extension of its type."""
    cleaned = file_name(name) if name.strip() else ""
    if cleaned and cleaned != "attachment":
        return cleaned
    if ctype == "message/rfc822":
        extension = ".eml"
    elif ctype.startswith(("text/", "message/")):
        extension = mimetypes.guess_extension(ctype, strict=False) or ".txt"
    else:
        extension = mimetypes.guess_extension(ctype, strict=False) or ".bin"
    return "attachment" + extension


def _charset(part: Message) -> str | None:
    try:
        # A Content-Type in plain form comes with its parameters read (most text parts):
        # get_param would look the header up twice and split and decode it again.
        params = plain_params(part.get("content-type"))
        if params is not None:
            return next((value for key, value in params if key == "charset"), None)
        found = part.get_param("charset")
    except Exception:
        return None
    if isinstance(found, tuple):
        found = found[2]
    return found if isinstance(found, str) else None


_DECODE_B: Final[Callable[[bytes], tuple[bytes, list[MessageDefect]]] | None] = getattr(
    email.message, "decode_b", None
)
"""The base64 decoder ``Message.get_payload(decode=True)`` calls, defects and all."""
_UUENCODED: Final = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})


def _payload(part: Message, notes: _Notes, limit: int) -> bytes | None:
    """A leaf part's decoded bytes (None for a part that has none)."""
    # The payload as the parser stored it, which get_payload() starts from: read here so that
    # an ASCII one (no surrogate escapes to decode) is not handed back by a call that looks up
    # the Content-Transfer-Encoding and scans the payload first. Anything else (a list, 8-bit
    # bytes, a missing attribute on some other Message) goes the standard library's way.
    stored = getattr(part, "_payload", None)
    if isinstance(stored, str) and stored.isascii():
        return _ascii_payload(part, stored, notes, limit)
    raw = part.get_payload()
    if isinstance(raw, list):
        return None
    if isinstance(raw, str) and _over_limit(raw, limit, notes):
        return None
    try:
        data = part.get_payload(decode=True)
    except Exception:
        notes.add("a part that could not be decoded was read as it came")
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else None
    if data is None:
        return None
    if not isinstance(data, bytes):
        return None
    _note_defects(part, notes)
    return data


def _over_limit(raw: str, limit: int, notes: _Notes) -> bool:
    """Whether a payload of text ``raw`` decodes to more than ``limit`` bytes, for sure (it
    is then dropped, and ``notes`` say so)."""
    if len(raw) > limit * 4 // 3 + 4096:
        notes.add(f"a part of about {len(raw)} bytes was dropped (over the limit)")
        return True
    return False


def _note_defects(part: Message, notes: _Notes) -> None:
    """Say in ``notes`` that the standard library found defects in ``part``, if it did."""
    if part.defects:
        kinds = ", ".join(sorted({type(d).__name__ for d in part.defects}))
        notes.add(f"a part had defects ({kinds[:200]}); read as well as could be")


def _ascii_payload(part: Message, raw: str, notes: _Notes, limit: int) -> bytes | None:
    """:func:`_payload` for a part whose payload is ASCII text (nearly every part: 8-bit
    bytes come as surrogate escapes): what ``get_payload()`` and ``get_payload(decode=True)``
    give, with the part's Content-Transfer-Encoding looked up once, not twice, and no scan of
    the payload for surrogates (``get_payload()`` gives an ASCII payload back as it is).
    Its steps are the standard library's, in its order, so that a header that cannot be read
    fails where it failed before."""
    cte = str(part.get("content-transfer-encoding", "")).lower()
    if _over_limit(raw, limit, notes):
        return None
    try:
        data = _decoded_ascii(part, raw, cte)
    except Exception:
        notes.add("a part that could not be decoded was read as it came")
        data = raw.encode("utf-8", "surrogateescape")
    if not isinstance(data, bytes):
        return None
    _note_defects(part, notes)
    return data


def _decoded_ascii(part: Message, raw: str, cte: str) -> object:
    """``part.get_payload(decode=True)`` for ``raw``, its ASCII payload, and ``cte``, its
    Content-Transfer-Encoding as ``get_payload`` reads it."""
    if cte == "base64" and _DECODE_B is not None:
        # get_payload joins bytes.splitlines(), which breaks lines at \r, \n and \r\n
        # only: deleting those gives the same bytes without a list of some 900 lines for a
        # 60 KB attachment.
        value, defects = _DECODE_B(raw.encode("ascii").replace(b"\r", b"").replace(b"\n", b""))
        for defect in defects:
            part.policy.handle_defect(part, defect)
        return value
    if cte == "quoted-printable":
        return quopri.decodestring(raw.encode("ascii"))
    if cte == "base64" or cte in _UUENCODED:
        return part.get_payload(decode=True)
    return raw.encode("ascii")


def _message_bytes(part: Message, notes: _Notes) -> bytes | None:
    """The bytes of a ``message/*`` part (a forwarded message, a delivery status)."""
    payload = part.get_payload()
    blocks = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    if not blocks:
        return None
    try:
        return b"\n".join(b.as_bytes(policy=email_policy.compat32) for b in blocks)
    except Exception:
        notes.add("an attached message could not be written back; dropped")
        return None


# ------------------------------------------------------------------ the message


def parse(
    raw: bytes,
    *,
    channel: str = "email",
    received_at: datetime,
    max_bytes: int = MAX_BYTES,
    max_part_bytes: int = MAX_PART_BYTES,
    max_depth: int = MAX_DEPTH,
    max_parts: int = MAX_PARTS,
    strip_quotes: bool = True,
) -> InboundMessage:
    """The :class:`~helpkit.ports.InboundMessage` in ``raw``, an email as bytes (see the
    module's description for every rule).

    Raises :class:`EmailParseError` (a :class:`ValueError`) for bytes that are not a usable
    message: over ``max_bytes``, without a sender address, not bytes; nothing else, whatever
    the bytes. What was repaired or dropped on the way is listed in the message's ``notes``.
    ``strip_quotes=False`` keeps the quoted history in ``body``.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise EmailParseError(f"an email is bytes; got {type(raw).__name__}")
    for what, value in (
        ("max_bytes", max_bytes),
        ("max_part_bytes", max_part_bytes),
        ("max_depth", max_depth),
        ("max_parts", max_parts),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValidationError(f"{what} must be a positive integer; got {value!r:.40}")
    if not isinstance(received_at, datetime) or received_at.utcoffset() is None:
        raise NaiveDatetimeError(f"received_at must be an aware datetime; got {received_at!r:.60}")
    check_text(channel, "channel")
    if not channel.strip():
        raise ValidationError("channel must not be blank")
    data = bytes(raw)
    if len(data) > max_bytes:
        raise EmailParseError(f"the message is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        return _parse(
            data,
            channel=channel,
            received_at=received_at,
            max_part_bytes=max_part_bytes,
            max_depth=max_depth,
            max_parts=max_parts,
            strip_quotes=strip_quotes,
        )
    except EmailParseError:
        raise
    except ValidationError as exc:
        raise EmailParseError(f"the message could not be read: {exc}") from exc
    except RecursionError as exc:
        raise EmailParseError("the message nests its parts too deeply to be read") from exc
    except Exception as exc:
        # The standard library's parser has raised on odd input in the past: never pass that
        # on as anything but this module's error.
        raise EmailParseError(
            f"the message could not be read ({type(exc).__name__}: {str(exc)[:120]})"
        ) from exc


def _parse(
    data: bytes,
    *,
    channel: str,
    received_at: datetime,
    max_part_bytes: int,
    max_depth: int,
    max_parts: int,
    strip_quotes: bool,
) -> InboundMessage:
    notes = _Notes()
    message = structure(data)
    if not isinstance(message, EmailMessage):
        raise EmailParseError("the bytes are not an email message")
    items, raw_values = _header_items(message, notes)
    if not items:
        raise EmailParseError("the message has no headers")
    headers = _headers(items, notes)

    senders = _addresses(raw_values.get("from", []), notes, "from")
    if not senders:
        senders = _addresses(raw_values.get("sender", []), notes, "sender")
        if not senders:
            raise EmailParseError("the message has no sender: no usable address in From")
        notes.add("no usable From: the Sender header was used")
    if len(senders) > 1:
        notes.add("From names several addresses: the first is the sender")
    sender = senders[0]

    subject = headers.get("subject", "").split("\n", 1)[0]
    number, _ = subject_tag(subject)
    external_ids = _ids(headers.get("message-id"))
    replied = _ids(headers.get("in-reply-to"))
    references = _ids(headers.get("references", "").replace("\n", " "))
    if len(references) > _MAX_REFERENCES:
        notes.add(f"References held {len(references)} ids: the newest {_MAX_REFERENCES} kept")
        references = references[-_MAX_REFERENCES:]

    walk = _Walk(notes, max_depth=max_depth, max_parts=max_parts, max_part=max_part_bytes)
    walk.visit(message, 0)
    text = "\n\n".join(t.strip("\n") for t in walk.texts if t.strip())
    if len(text) > _MAX_TEXT_CHARS:
        notes.add(f"the text was cut to {_MAX_TEXT_CHARS} characters")
        text = text[:_MAX_TEXT_CHARS]
    text = _clean(text)
    body, original = text, None
    if strip_quotes:
        split = split_quoted(text)
        if split.stripped:
            body, original = split.body, text
    for defect in message.defects:
        notes.add(f"the message had a defect: {type(defect).__name__}")

    return InboundMessage(
        channel=channel,
        sender_address=sender.address,
        sender_name=sender.name,
        subject=subject,
        body=body,
        received_at=received_at,
        external_id=external_ids[0] if external_ids else None,
        in_reply_to=replied[0] if replied else None,
        references=references,
        ticket_number=number,
        to=_addresses(raw_values.get("to", []), notes, "to"),
        cc=_addresses(raw_values.get("cc", []), notes, "cc"),
        headers=headers,
        original=original,
        attachments=walk.attachments,
        notes=tuple(notes.items),
    )
