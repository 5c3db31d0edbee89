# Over 600 lines: one rendering; the header folding and encoding, the address checks and the
# MIME tree it builds are the parts of one RFC 5322 writer, used nowhere else.
"""Outbound messages as email: the message an email channel (Maildir, SMTP) hands on.

:func:`render` turns an :class:`~helpkit.ports.OutboundMessage` into an
:class:`email.message.EmailMessage`:

- ``From``: the configured sender (its display name, else the author's name);
- ``To``: the recipients that have an address, with their names (those without one are
  skipped; with none left, :class:`NoRecipientError`);
- ``Subject``, ``Date`` (the message's ``sent_at``), the extra ``headers``;
- ``Message-ID``: ``<key@domain>``, made of the message's idempotency key, so every attempt to
  deliver the same message carries the same id (and a channel can tell a repeat); with the
  ticket's signed thread token, ``<key.token@domain>`` (:func:`outbound_message_id`), which
  threads the replies that name it;
- ``In-Reply-To`` and ``References`` from the message, for threading;
- ``Reply-To`` when the channel gives one;
- a ``text/plain`` UTF-8 body; with ``html=True`` also a ``text/html`` alternative (the text
  escaped, its paragraphs kept: :func:`helpkit.channels.html_text.to_html`);
- the message's attachments, their bytes read from a :class:`~helpkit.ports.BlobStore` by
  their SHA-256 (``multipart/mixed``; inline ones with their ``Content-ID``). Bytes that are
  missing, or whose SHA-256 is not the one described, raise :class:`MissingBlobError`, which
  the relay records and retries.

Header text is written by this module, not folded by :mod:`email`: the standard library's
folder drops the spaces between encoded words in some long non-ASCII headers. Text that is
printable ASCII is folded at its spaces; any other text is written as RFC 2047 encoded words
(``=?utf-8?b?...?=``) that carry their own spaces. Line breaks in a subject, a name or a
header value become spaces (:func:`header_text`), so no input can add a header line. Reading
the message back with :mod:`email` and ``email.policy.default`` gives back exactly
:func:`header_text` of each input, the body with its line ends made ``\\n``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Final

import attrs

from helpkit.channels.html_text import to_html
from helpkit.errors import ConfigError, NotFoundError, ValidationError
from helpkit.ports import BlobStore, OutboundMessage, Recipient
from helpkit.tickets import Attachment

__all__ = [
    "POLICY",
    "RESERVED_HEADERS",
    "EmailRenderError",
    "Mailbox",
    "MissingBlobError",
    "NoRecipientError",
    "blob_store_option",
    "body_text",
    "check_domain",
    "file_name",
    "header_text",
    "message_bytes",
    "message_id",
    "message_key",
    "name_text",
    "needs_utf8",
    "outbound_message_id",
    "parse_sender",
    "render",
    "to_mailbox",
    "token",
]

log = logging.getLogger("helpkit.channels")

POLICY: Final = email_policy.default.clone(refold_source="none", cte_type="7bit")
"""The policy of rendered messages: ``email.policy.default``, except that header lines written
here are never folded again, and a body that is not short-lined ASCII is encoded
(quoted-printable or base64), so it passes any mail transport."""

_LINE_BREAKS = re.compile("\r\n|[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""Every character :meth:`str.splitlines` breaks a line at."""
_PRINTABLE = re.compile(r"[ \t!-~]*")
_BODY_BREAKS = re.compile("\r\n|\r|\n")
_BLANKS = re.compile(r"[ \t]\s*")
_WORDS = re.compile(r"[ \t]*[^ \t]+")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_MSG_ID = re.compile(r"<[!-;=?-~]+>")
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")

_FOLD_AT: Final = 78
"""Lines are folded to this length where the text allows (RFC 5322 "should")."""
_LONGEST: Final = 998
"""No line may be longer (RFC 5322 "must")."""
_LONGEST_NAME: Final = 600
"""UTF-8 bytes of a name a header writes (as one encoded word: about 800 characters)."""
_CHUNK: Final = 30
"""UTF-8 bytes per encoded word: ``=?utf-8?b?`` and 40 base64 characters and ``?=``."""

RESERVED_HEADERS: Final = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "reply-to",
        "mime-version",
    }
)
"""Headers :func:`render` writes itself (``Content-*`` too): extra headers may not set them."""


class EmailRenderError(ValidationError):
    """An outbound message cannot be written as an email."""


class NoRecipientError(EmailRenderError):
    """None of an outbound message's recipients has a usable email address."""


class MissingBlobError(NotFoundError):
    """An attachment's bytes are not in the blob store (or no blob store was given, or the
    bytes there are not the ones described): the message is not sent, and the relay tries
    again later."""


# ------------------------------------------------------------------ text


def header_text(value: str) -> str:
    """What a header carries of ``value``: every line break a space, the spaces and tabs at
    both ends removed (a header cannot keep them)."""
    return _LINE_BREAKS.sub(" ", value).strip(" \t")


def body_text(value: str) -> str:
    """What the body carries of ``value``: its lines (ended by ``\\r\\n``, ``\\r`` or
    ``\\n``), each ended by ``\\n``."""
    lines = _BODY_BREAKS.split(value)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return "".join(line + "\n" for line in lines)


def name_text(value: str) -> str:
    """What an address header carries of a name: :func:`header_text`, where each run of white
    space that starts with a space or a tab is one space (what readers of address headers
    make of it), and no space at either end."""
    return _BLANKS.sub(" ", header_text(value)).strip(" ")


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 encoded words (UTF-8, base64), each on whole characters."""
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if chunk and len(chunk) + len(data) > _CHUNK:
            words.append(_encoded_word(bytes(chunk)))
            chunk.clear()
        chunk += data
    if chunk:
        words.append(_encoded_word(bytes(chunk)))
    return words


def _encoded_word(data: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="


def _fold(name: str, pieces: Iterable[str]) -> str:
    """The value of header ``name`` made of ``pieces``, one folded line per few pieces.

    A piece after the first starts with a space or a tab, where a line may be folded (the
    fold keeps it: unfolding gives back the pieces joined).
    """
    lines: list[str] = []
    line = ""
    room = _FOLD_AT - len(name) - 2
    for piece in pieces:
        if line and len(line) + len(piece) > room:
            lines.append(line)
            line = ""
            room = _FOLD_AT
        line += piece
    lines.append(line)
    return "\n".join(lines)


def _unstructured(name: str, value: str) -> str:
    """The folded value of an unstructured header (a subject) carrying ``header_text(value)``:
    its printable ASCII words as they are, each run of other words as encoded words."""
    pieces: list[str] = []
    run: list[str] = []
    longest = _LONGEST - len(name) - 4

    def encode_run() -> None:
        if run:
            first = run[0]
            lead = first[: len(first) - len(first.lstrip(" \t"))]
            words = _encoded_words("".join(run)[len(lead) :])
            pieces.append(lead + words[0])
            pieces.extend(" " + word for word in words[1:])
            run.clear()

    for word in _WORDS.findall(header_text(value)):
        if _PRINTABLE.fullmatch(word) and "=?" not in word and len(word) < longest:
            encode_run()
            pieces.append(word)
        else:
            run.append(word)
    encode_run()
    return _fold(name, pieces)


def _spaced(words: list[str]) -> Iterator[str]:
    """``words`` as the pieces of a header: separated by a space each."""
    for index, word in enumerate(words):
        yield word if index == 0 else " " + word


# ------------------------------------------------------------------ addresses


@attrs.frozen
class Mailbox:
    """A name and an email address, as a header writes them."""

    name: str
    address: str

    @property
    def local_part(self) -> str:
        """The part of the address before its last ``@``."""
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        """The part of the address after its last ``@``."""
        return self.address.rpartition("@")[2]

    def pieces(self) -> list[str]:
        """The mailbox as the pieces of a header: the name, then `` <address>``.

        A printable ASCII name is quoted; any other is one encoded word, even past RFC 2047's
        75 characters: readers disagree on two encoded words side by side in a name (the
        RFC joins them, the standard library puts a space between them).
        """
        name = name_text(self.name)
        spec = f"<{_local_text(self.local_part)}@{self.domain}>"
        if not name:
            return [spec]
        if _PRINTABLE.fullmatch(name) and "=?" not in name and len(_quoted(name)) <= _LONGEST_NAME:
            return [_quoted(name), " " + spec]
        return [_encoded_word(_shortened(name).encode("utf-8")), " " + spec]


def _shortened(name: str) -> str:
    """``name``, cut short (ending with "...") when it is longer than a header line holds."""
    if len(name.encode("utf-8")) <= _LONGEST_NAME:
        return name
    cut = name.encode("utf-8")[: _LONGEST_NAME - 3].decode("utf-8", "ignore")
    return cut + "..."


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _local_text(local: str) -> str:
    """A local part as written: a dot-atom as it is, anything else quoted."""
    atom = rf"(?:{_ATEXT}|[^\x00-\x7f])+"
    if re.fullmatch(rf"{atom}(?:\.{atom})*", local):
        return local
    return _quoted(local)


def _domain(text: str) -> str | None:
    """An address's domain in ASCII (an internationalized one in IDNA form), or None."""
    try:
        ascii_domain = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if (
        len(ascii_domain) > 253
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        return None
    return ascii_domain


def to_mailbox(name: str, address: str) -> Mailbox | None:
    """``name <address>`` when ``address`` can be written in a header, else ``None``.

    The local part may be anything without control characters or line breaks (non-ASCII
    ones make the message need UTF-8 headers, RFC 6532); the domain must be a DNS name
    (non-ASCII ones are written in IDNA form).
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or _LINE_BREAKS.search(local):
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in local) or len(local.encode()) > 64:
        return None
    ascii_domain = _domain(domain)
    if ascii_domain is None:
        return None
    return Mailbox(name, f"{local}@{ascii_domain}")


def parse_sender(text: str) -> Mailbox:
    """A configured sender, ``support@example.com`` or ``Support <support@example.com>``."""
    if not isinstance(text, str) or not text.strip() or _LINE_BREAKS.search(text):
        raise ConfigError(f"sender must be an email address on one line; got {text!r:.80}")
    name, address = parseaddr(text)
    found = to_mailbox(name, address) if address else None
    if found is None:
        raise ConfigError(
            f"sender {text!r:.80} is not an email address (e.g. 'Support <support@example.com>')"
        )
    return found


def _recipients(message: OutboundMessage) -> list[Mailbox]:
    found: list[Mailbox] = []
    skipped: list[Recipient] = []
    for recipient in message.to:
        box = None if recipient.address is None else to_mailbox(recipient.name, recipient.address)
        if box is None:
            skipped.append(recipient)
        else:
            found.append(box)
    for recipient in skipped:
        log.warning(
            "message %s: %s %s (%s) has no usable email address (%r); not sent to them",
            message.idempotency_key or message.comment_id,
            recipient.actor_kind,
            recipient.actor_id,
            recipient.name,
            recipient.address,
        )
    if not found:
        who = ", ".join(f"{r.name} ({r.actor_kind}:{r.actor_id})" for r in message.to) or "none"
        raise NoRecipientError(
            f"ticket #{message.ticket_number}: no recipient has a usable email address "
            f"(recipients: {who})"
        )
    return found


def _address_list(name: str, boxes: list[Mailbox]) -> str:
    pieces: list[str] = []
    for index, box in enumerate(boxes):
        parts = box.pieces()
        if index:
            parts[0] = " " + parts[0]
        if index < len(boxes) - 1:
            parts[-1] += ","
        pieces.extend(parts)
    return _fold(name, pieces)


# ------------------------------------------------------------------ ids


def token(key: str) -> str:
    """A name made of an idempotency key, usable in a Message-ID and a file name.

    A key of ASCII letters, digits, ``-`` and ``_`` (what helpkit makes) is its own token;
    any other is hashed (``x.`` and 40 hex digits, which no such key can be).
    """
    if _SAFE_KEY.fullmatch(key):
        return key
    return "x." + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def message_key(message: OutboundMessage) -> str:
    """The message's idempotency key, or (without one) its ticket and comment, which every
    attempt to deliver it shares too."""
    return message.idempotency_key or f"{message.ticket_id}.{message.comment_id}"


def message_id(key: str, domain: str, thread_token: str = "") -> str:
    """The Message-ID of the message with idempotency key ``key``: ``<token@domain>``, or
    with the ticket's thread token (:attr:`OutboundMessage.thread_token`, letters, digits,
    ``-`` and ``_``; another is left out) ``<token.thread_token@domain>``, so a reply naming
    it threads onto its ticket."""
    if thread_token and _SAFE_KEY.fullmatch(thread_token):
        return f"<{token(key)}.{thread_token}@{domain}>"
    return f"<{token(key)}@{domain}>"


def outbound_message_id(message: OutboundMessage, domain: str) -> str:
    """The Message-ID an email channel gives ``message`` (every attempt the same):
    :func:`message_id` of its :func:`message_key` and its thread token."""
    return message_id(message_key(message), domain, message.thread_token)


def _thread_ids(values: Iterable[str]) -> list[str]:
    """The Message-IDs among ``values`` (a bare ``id@host`` gets its ``<>``); the others are
    left out (they could not thread, and could break the header)."""
    found: list[str] = []
    for value in values:
        text = value.strip()
        if not text.startswith("<"):
            text = f"<{text}>"
        usable = _MSG_ID.fullmatch(text) and "=?" not in text and len(text) < _LONGEST - 20
        if usable and text not in found:
            found.append(text)
        else:
            log.debug("not a Message-ID, left out of the threading headers: %r", value[:80])
    return found


# ------------------------------------------------------------------ the message


_TOKEN: Final = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}")
_CONTENT_ID: Final = re.compile(r"[!-;=?-~]{1,200}")
_NOT_IN_FILE_NAMES: Final = frozenset('<>:"|?*')
"""Characters some file systems refuse in a name (the path separators go too)."""
_LONGEST_FILE_NAME: Final = 200
"""Characters of an attachment's file name a message carries (longer ones are cut)."""


def file_name(name: str) -> str:
    """What a message carries of an attachment's file name: its last path segment, control
    characters and line breaks made spaces, ``<>:"|?*`` (which some file systems refuse)
    made ``_``, without white space or dots at its ends, at most 200 characters
    (``attachment`` when nothing is left)."""
    text = header_text(name).replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(
        " "
        if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"}
        else "_"
        if c in _NOT_IN_FILE_NAMES
        else c
        for c in text
    )
    kept = kept.strip().strip(".").strip()[:_LONGEST_FILE_NAME].strip()
    return kept or "attachment"


def _content_type(text: str) -> tuple[str, str]:
    """A type an attachment can be sent as: ``message/*`` and ``multipart/*`` (which cannot
    be sent base64-encoded) and anything malformed are ``application/octet-stream``."""
    maintype, _, subtype = text.strip().lower().partition("/")
    if (
        not _TOKEN.fullmatch(maintype)
        or not _TOKEN.fullmatch(subtype)
        or maintype in {"message", "multipart"}
    ):
        return "application", "octet-stream"
    return maintype, subtype


def _blob(attachment: Attachment, blobs: BlobStore | None, key: str) -> bytes:
    where = f"message {key}: attachment {attachment.filename!r} (sha256 {attachment.sha256})"
    if blobs is None:
        raise MissingBlobError(f"{where}: the channel has no blob store to read it from")
    try:
        data = blobs.get(attachment.sha256)
    except NotFoundError as exc:
        raise MissingBlobError(f"{where} is not in the blob store") from exc
    if not isinstance(data, bytes) or hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise MissingBlobError(f"{where}: the blob store holds other bytes under that address")
    return data


def _attach(email: EmailMessage, attachment: Attachment, data: bytes) -> None:
    maintype, subtype = _content_type(attachment.content_type)
    cid = attachment.content_id
    usable_cid = cid is not None and _CONTENT_ID.fullmatch(cid.strip("<>")) is not None
    email.add_attachment(
        data,
        maintype,
        subtype,
        disposition="inline" if attachment.inline else "attachment",
        cid=f"<{cid.strip('<>')}>" if usable_cid and cid is not None else None,
    )
    payload = email.get_payload()
    part = payload[-1] if isinstance(payload, list) else None
    if isinstance(part, EmailMessage):  # always: add_attachment appended it
        del part["Content-Disposition"]
        kind = "inline" if attachment.inline else "attachment"
        part.set_raw("Content-Disposition", _disposition(kind, file_name(attachment.filename)))


_ATTR_CHAR: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)


def _disposition(kind: str, name: str) -> str:
    """A ``Content-Disposition`` value naming file ``name``: a quoted string when the name is
    printable ASCII without quotes or backslashes, else RFC 2231 continuations
    (``filename*0*=utf-8''...``), so that no reader takes part of it for an encoded word and
    every line stays short."""
    if _PRINTABLE.fullmatch(name) and "=?" not in name and not {'"', "\\"} & set(name):
        return _fold("Content-Disposition", [f"{kind};", f' filename="{name}"'])
    encoded = [chr(b) if b in _ATTR_CHAR else f"%{b:02X}" for b in name.encode("utf-8")]
    chunks: list[str] = []
    for piece in encoded:
        if not chunks or len(chunks[-1]) + len(piece) > 60:
            chunks.append("")
        chunks[-1] += piece
    pieces = [f"{kind};"]
    for index, chunk in enumerate(chunks):
        start = "utf-8''" if index == 0 else ""
        end = ";" if index < len(chunks) - 1 else ""
        pieces.append(f" filename*{index}*={start}{chunk}{end}")
    return _fold("Content-Disposition", pieces)


def render(
    message: OutboundMessage,
    *,
    sender: Mailbox,
    domain: str | None = None,
    reply_to: Mailbox | None = None,
    html: bool = False,
    blobs: BlobStore | None = None,
) -> EmailMessage:
    """``message`` as an email from ``sender``; its Message-ID's right part is ``domain``
    (default: the sender's domain). ``reply_to`` adds a ``Reply-To`` header; ``html`` an
    HTML alternative of the body; ``blobs`` is where the attachments' bytes are read.

    Raises :class:`NoRecipientError` when no recipient has a usable address,
    :class:`EmailRenderError` for an extra header that is not a header name or that sets one
    of :data:`RESERVED_HEADERS` (or ``Content-*``), and :class:`MissingBlobError` when an
    attachment's bytes cannot be read.
    """
    right = sender.domain if domain is None else domain
    datas = [_blob(a, blobs, message_key(message)) for a in message.attachments]
    email = EmailMessage(policy=POLICY)
    from_box = Mailbox(sender.name or message.author_name, sender.address)
    email.set_raw("From", _address_list("From", [from_box]))
    email.set_raw("To", _address_list("To", _recipients(message)))
    if reply_to is not None:
        email.set_raw("Reply-To", _address_list("Reply-To", [reply_to]))
    email.set_raw("Subject", _unstructured("Subject", message.subject))
    email.set_raw("Date", format_datetime(message.sent_at))
    email.set_raw("Message-ID", outbound_message_id(message, right))
    replied = _thread_ids([message.in_reply_to] if message.in_reply_to else [])
    if replied:
        email.set_raw("In-Reply-To", replied[0])
    references = _thread_ids(message.references)
    if references:
        email.set_raw("References", _fold("References", _spaced(references)))
    for name, value in message.headers.items():
        if not _FIELD_NAME.fullmatch(name) or len(name) > 76:
            raise EmailRenderError(f"{name!r:.80} is not a header name")
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("content-"):
            raise EmailRenderError(f"the header {name} is written by helpkit, not by a message")
        email.set_raw(name, _unstructured(name, value))
    email.set_content(body_text(message.body), charset="utf-8")
    if html:
        email.add_alternative(to_html(message.body), subtype="html", charset="utf-8")
    for attachment, data in zip(message.attachments, datas, strict=True):
        _attach(email, attachment, data)
    for part in email.walk():
        if part is not email:
            del part["MIME-Version"]
    return email


def needs_utf8(email: EmailMessage) -> bool:
    """Whether the message's headers hold UTF-8 (an address with a non-ASCII local part):
    it then needs a transport that takes UTF-8 headers (RFC 6531 ``SMTPUTF8``)."""
    return not all(value.isascii() for _, value in email.raw_items())


def message_bytes(email: EmailMessage, *, linesep: str = "\n") -> bytes:
    """The message as bytes with ``\\n`` line ends (what a Maildir file holds; ``\\r\\n``
    for SMTP): ASCII headers, or UTF-8 ones (RFC 6532) when an address needs them."""
    return email.as_bytes(policy=POLICY.clone(utf8=needs_utf8(email), linesep=linesep))


def check_domain(text: object) -> str:
    """A Message-ID domain from the configuration (a DNS name, in ASCII)."""
    found = _domain(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ConfigError(f"domain must be a DNS name such as example.com; got {text!r:.80}")
    return found


def blob_store_option(name: str, blobs: object) -> BlobStore | None:
    """The ``blobs`` option a desk gives an email channel's factory (its blob store), checked."""
    if blobs is not None and not isinstance(blobs, BlobStore):
        raise ConfigError(f"channel {name!r}: blobs must be a BlobStore; got {blobs!r:.80}")
    return blobs
