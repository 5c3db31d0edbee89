"""Attachments: files kept with a comment, their limits, and where the desk keeps their bytes.

:func:`keep` is the one way files become :class:`~helpkit.tickets.Attachment` descriptions:
it checks the limits (:class:`AttachmentLimits`) and every file's content type first, and
raises :class:`~helpkit.errors.AttachmentError` naming the file at fault before anything is
written; then it puts the bytes in the desk's :class:`~helpkit.ports.BlobStore` and returns
the descriptions the comment keeps (filenames made safe by :func:`safe_filename`). The facade
calls it for agents' and requesters' files; intake (``desk.receive``) for inbound messages.

Bytes are put before the comment is committed. Blobs are content-addressed, so a command
refused or lost after that leaves at most an unreferenced blob, never a comment naming bytes
that are not there.

(This module sits beside :mod:`helpkit.config`, one layer below the services, so that
``DeskConfig`` can hold an :class:`AttachmentLimits` read from ``[attachments]``.)
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl, unquote
from urllib.request import pathname2url

import attrs

from helpkit._checks import check_items, count
from helpkit.errors import AttachmentError, ConfigError, StoreError
from helpkit.ports import BlobStore, Capability, InboundAttachment, Store
from helpkit.tickets import Attachment

__all__ = [
    "MAX_FILENAME",
    "AttachmentError",
    "AttachmentLimits",
    "UnconfiguredBlobStore",
    "content_type_of",
    "default_blobs",
    "keep",
    "safe_filename",
]

MiB: Final = 1024 * 1024
MAX_FILENAME: Final = 200
"""The longest filename kept, in characters (an extension of up to 16 is kept whole)."""
_MAX_EXTENSION: Final = 16
_FALLBACK_NAME: Final = "attachment"
# Characters Windows refuses in a file name: a downloaded attachment must be savable.
_RESERVED: Final = dict.fromkeys(map(ord, '<>:"|?*'), "_")
# RFC 2045: type "/" subtype, each a token.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9a-z]+"
_CONTENT_TYPE: Final = re.compile(rf"{_TOKEN}/{_TOKEN}")


@attrs.frozen(kw_only=True)
class AttachmentLimits:
    """How much a comment may carry. ``[attachments]`` in ``helpkit.toml``::

        [attachments]
        max_file_bytes = 26214400     # 25 MiB per file
        max_files = 20                # files per comment
        max_total_bytes = 52428800    # 50 MiB per comment, all files together

    A limit of 0 refuses every file (``max_files = 0`` turns attachments off).
    """

    max_file_bytes: int = attrs.field(default=25 * MiB, validator=count)
    """The largest file, in bytes."""
    max_files: int = attrs.field(default=20, validator=count)
    """The most files on one comment."""
    max_total_bytes: int = attrs.field(default=50 * MiB, validator=count)
    """The most bytes of all the files of one comment together."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttachmentLimits:
        """Read the ``[attachments]`` table; unknown keys and bad values are ConfigErrors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"[attachments] must be a table; got {data!r:.60}")
        known = [f.name for f in attrs.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown [attachments] keys: {', '.join(map(str, unknown))} "
                f"(known: {', '.join(known)})"
            )
        try:
            return cls(**{str(k): v for k, v in data.items()})
        except ValueError as exc:
            raise ConfigError(f"[attachments]: {exc}") from exc

    def check(self, files: Sequence[InboundAttachment]) -> None:
        """Raise :class:`~helpkit.errors.AttachmentError` naming the first file that breaks a
        limit: one file too many, a file too large, or the file that takes the comment's
        total over."""
        if len(files) > self.max_files:
            extra = files[self.max_files]
            raise AttachmentError(
                f"too many attachments: {len(files)} files, at most {self.max_files} per "
                f"comment ({extra.filename!r:.80} is one too many)",
                filename=extra.filename,
            )
        total = 0
        for file in files:
            size = len(file.data)
            if size > self.max_file_bytes:
                raise AttachmentError(
                    f"attachment {file.filename!r:.80} is {size} bytes; the limit is "
                    f"{self.max_file_bytes} bytes per file",
                    filename=file.filename,
                )
            total += size
            if total > self.max_total_bytes:
                raise AttachmentError(
                    f"attachments are {sum(len(f.data) for f in files)} bytes together; the "
                    f"limit is {self.max_total_bytes} bytes per comment (reached at "
                    f"{file.filename!r:.80})",
                    filename=file.filename,
                )


def _visible(char: str) -> bool:
    # Control (Cc), format (Cf: bidi overrides, zero-width), surrogate (Cs), line and
    # paragraph separators: never kept in a name.
    return unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp")


def _tidy(name: str) -> str:
    # Windows drops trailing dots and spaces; any white space (a no-break space too) around a
    # name is trimmed, until neither is left at the end ("a\u00a0." becomes "a").
    while name != (trimmed := name.strip().rstrip(".")):
        name = trimmed
    if not name.strip("."):
        return ""
    return name


def safe_filename(name: str) -> str:
    """``name`` made safe to show and to save: the last part of a path only (no ``/`` or
    ``\\``), no control or invisible formatting characters, none of ``<>:"|?*`` (each
    becomes ``_``), no leading or trailing spaces or trailing dots, at most
    :data:`MAX_FILENAME` characters (keeping a short extension), and never empty (else
    ``attachment``). Applying it twice changes nothing more."""
    if not isinstance(name, str):
        raise AttachmentError(f"a filename is text; got {name!r:.60}")
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(c for c in base if _visible(c)).translate(_RESERVED)
    base = _tidy(base)
    if len(base) > MAX_FILENAME:
        stem, extension = os.path.splitext(base)
        if 1 < len(extension) <= _MAX_EXTENSION and _tidy(stem[: MAX_FILENAME - len(extension)]):
            base = _tidy(stem[: MAX_FILENAME - len(extension)]) + extension
        else:
            base = _tidy(base[:MAX_FILENAME])
    return base or _FALLBACK_NAME


def content_type_of(value: str, *, filename: str = "") -> str:
    """A content type as kept: ``type/subtype``, lower-case, without parameters (``Text/Plain;
    charset=utf-8`` is ``text/plain``); anything else raises AttachmentError naming
    ``filename``."""
    text = value.partition(";")[0].strip().lower() if isinstance(value, str) else ""
    if not text.isascii() or not _CONTENT_TYPE.fullmatch(text):
        raise AttachmentError(
            f"attachment {filename!r:.80} has content type {value!r:.60}, not type/subtype "
            "(e.g. application/pdf)",
            filename=filename or None,
        )
    return text


def _content_id(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip().removeprefix("<").removesuffix(">").strip()
    return stripped or None


def keep(
    blobs: BlobStore,
    files: Sequence[InboundAttachment],
    *,
    limits: AttachmentLimits,
    new_id: Callable[[], str],
) -> tuple[Attachment, ...]:
    """Put ``files`` in ``blobs`` and return their descriptions, in order, each with an id
    from ``new_id``.

    Everything is checked first (the limits, each content type): a refusal raises
    :class:`~helpkit.errors.AttachmentError` naming the file, and nothing is put. Filenames
    are made safe (:func:`safe_filename`); content types are kept as ``type/subtype``.
    """
    items = check_items(files, "attachments", InboundAttachment)
    if not isinstance(limits, AttachmentLimits):
        raise AttachmentError(f"limits must be AttachmentLimits; got {limits!r:.60}")
    limits.check(items)
    prepared = [
        (safe_filename(f.filename), content_type_of(f.content_type, filename=f.filename), f)
        for f in items
    ]
    kept = []
    for filename, content_type, file in prepared:
        expected = hashlib.sha256(file.data).hexdigest()
        address = blobs.put(file.data)
        if address != expected:
            raise StoreError(
                f"the blob store {blobs!r:.60} kept {filename!r:.80} under {address!r:.70}, "
                f"not under its SHA-256 {expected}"
            )
        kept.append(
            Attachment(
                id=new_id(),
                filename=filename,
                content_type=content_type,
                size=len(file.data),
                sha256=address,
                inline=file.inline,
                content_id=_content_id(file.content_id),
            )
        )
    return tuple(kept)


class UnconfiguredBlobStore:
    """The blob store of a desk that was given none and for which there is no safe default
    (a PostgreSQL store, a plugin's store): every use raises ConfigError saying how to
    configure one. A desk without attachments never notices it."""

    def _refuse(self) -> ConfigError:
        return ConfigError(
            "this desk has no blob store for attachment bytes: pass Helpdesk(blobs=...) "
            "(a URL such as 'file:///srv/helpkit/blobs', or a BlobStore) or set blobs in "
            "helpkit.toml"
        )

    def put(self, data: bytes) -> str:
        """Refuse (ConfigError)."""
        raise self._refuse()

    def get(self, sha256: str) -> bytes:
        """Refuse (ConfigError)."""
        raise self._refuse()

    def exists(self, sha256: str) -> bool:
        """Refuse (ConfigError)."""
        raise self._refuse()

    def delete(self, sha256: str) -> bool:
        """Refuse (ConfigError)."""
        raise self._refuse()

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "UnconfiguredBlobStore()"


def default_blobs(store: str | Store) -> str | None:
    """The blob store URL a desk on ``store`` uses when it is given none: ``memory://`` for a
    store that keeps nothing beyond the process (``memory://``, or any store without
    :attr:`~helpkit.ports.Capability.PERSISTENT`); for an SQLite file ``sqlite:///x.db``, the
    folder ``x.db.blobs`` beside it (made absolute, created at the first attachment), flushed
    to disk as the store's commits are: at every put for ``synchronous=FULL`` (the default),
    not at all (``?fsync=false``) for ``synchronous=NORMAL``, whose commits are not flushed
    either; otherwise ``None`` (no safe default: see :class:`UnconfiguredBlobStore`)."""
    if not isinstance(store, str):
        capabilities: frozenset[str] = getattr(store, "capabilities", frozenset())
        return None if Capability.PERSISTENT in capabilities else "memory://"
    scheme, _, rest = store.partition(":")
    if scheme.lower() == "memory":
        return "memory://"
    if scheme.lower() == "sqlite" and rest.startswith("///"):
        location, _, options = rest[3:].partition("?")
        path = unquote(location)
        if path and path != ":memory:" and "\x00" not in path:
            folder = os.path.abspath(path + ".blobs")
            normal = any(
                name == "synchronous" and value.strip().upper() == "NORMAL"
                for name, value in parse_qsl(options, keep_blank_values=True)
            )
            return "file://" + _url_path(folder) + ("?fsync=false" if normal else "")
    return None


def _url_path(path: str) -> str:
    # POSIX "/srv/x" stays; Windows "C:\\x" becomes "/C:/x" (pathname2url may give "///C:/x").
    return "/" + pathname2url(path).lstrip("/")
