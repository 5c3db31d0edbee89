"""A channel that delivers email into a Maildir folder (read it with ``mutt -f DIR``).

Each message is rendered by :mod:`helpkit.channels.mime`, written to ``tmp/`` and then linked
into ``new/`` under a name made of its idempotency key: a reader never sees half a message,
and delivering the same message again (a retry, a relay that restarted, two relays at once, in
any number of processes) finds the name taken and writes nothing. Either way ``deliver``
returns the message's Message-ID, the same for every attempt. A message a mail reader has
moved to ``cur/`` (read, flagged) counts as delivered too.

The folder (and its ``tmp``, ``new`` and ``cur``) is created at the first delivery, not when
the channel is built: building a desk creates nothing. A folder that cannot be written raises
:class:`MaildirError` from ``deliver``; the relay records the failure and tries again later.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from helpkit.channels.mime import (
    blob_store_option,
    check_domain,
    message_bytes,
    message_key,
    outbound_message_id,
    parse_sender,
    render,
    token,
)
from helpkit.errors import ConfigError
from helpkit.ports import BlobStore, OutboundMessage

__all__ = ["MaildirChannel", "MaildirError", "maildir_channel_factory"]

PREFIX: Final = "helpkit."
"""The start of the name of every file this channel delivers."""

_NO_LINKS: Final = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}
)
"""What ``link()`` answers on a file system without hard links (FAT, some network shares)."""


class MaildirError(OSError):
    """A message could not be written into the Maildir (the relay retries it)."""


class MaildirChannel:
    """Delivers each :class:`~helpkit.ports.OutboundMessage` as an email file in ``directory``.

    ``sender`` is the ``From`` address (``support@example.com`` or ``Support
    <support@example.com>``; without a name, the author's name is shown); ``domain`` the right
    part of the Message-IDs (default: the sender's domain). A relative ``directory`` is taken
    from the current directory when the channel is built, like the SQLite store's
    ``sqlite:///helpkit.db`` (``~`` is the user's home). ``fsync`` (default true) makes each
    message durable before ``deliver`` returns. ``reply_to`` adds a ``Reply-To`` header,
    ``html`` (default false) an HTML alternative of the body; ``blobs`` is where attachments'
    bytes are read (the desk's blob store).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        sender: str,
        domain: str | None = None,
        name: str = "maildir",
        fsync: bool = True,
        reply_to: str | None = None,
        html: bool = False,
        blobs: BlobStore | None = None,
    ) -> None:
        text = os.fspath(directory)
        if not isinstance(text, str) or not text.strip() or "\x00" in text:
            raise ConfigError(f"a Maildir directory must be a path; got {directory!r:.80}")
        if fsync is not True and fsync is not False:
            raise ConfigError(f"fsync must be true or false; got {fsync!r:.40}")
        self.name = name
        self.directory = Path(os.path.abspath(os.path.expanduser(text)))
        self.sender = parse_sender(sender)
        self.domain = self.sender.domain if domain is None else check_domain(domain)
        self.fsync = fsync
        if html is not True and html is not False:
            raise ConfigError(f"html must be true or false; got {html!r:.40}")
        self.reply_to = None if reply_to is None else parse_sender(reply_to)
        self.html = html
        self.blobs = blobs
        """Where attachments' bytes are read (``None``: a message with attachments fails
        with :class:`~helpkit.channels.mime.MissingBlobError`)."""

    def __repr__(self) -> str:
        return f"MaildirChannel({str(self.directory)!r}, name={self.name!r})"

    def file_name(self, message: OutboundMessage) -> str:
        """The name of ``message``'s file in ``new/`` (``cur/`` adds the reader's flags)."""
        return PREFIX + token(message_key(message))

    def deliver(self, message: OutboundMessage) -> str:
        """Write ``message`` into ``new/`` unless it is there (or in ``cur/``) already; return
        its Message-ID either way."""
        email = render(
            message,
            sender=self.sender,
            domain=self.domain,
            reply_to=self.reply_to,
            html=self.html,
            blobs=self.blobs,
        )
        external_id = outbound_message_id(message, self.domain)
        name = self.file_name(message)
        try:
            self._prepare()
            if self._delivered(name):
                return external_id
            temporary = self._write(name, message_bytes(email))
            try:
                self._publish(temporary, name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
        except MaildirError:
            raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise MaildirError(
                f"cannot deliver to the Maildir {self.directory}: {exc.strerror or exc}{where}"
            ) from exc
        return external_id

    # ------------------------------------------------------------ details

    def _prepare(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise MaildirError(f"the Maildir {self.directory} is a file, not a folder")
        for sub in ("tmp", "new", "cur"):
            os.makedirs(self.directory / sub, mode=0o700, exist_ok=True)

    def _delivered(self, name: str) -> bool:
        return os.path.lexists(self.directory / "new" / name) or self._read(name)

    def _read(self, name: str) -> bool:
        """Whether a reader moved the message to ``cur/`` (its name, maybe with ``:2,FLAGS``;
        ``!`` where ``:`` cannot be in a file name)."""
        marks = (name + ":", name + "!")
        with os.scandir(self.directory / "cur") as entries:
            return any(e.name == name or e.name.startswith(marks) for e in entries)

    def _write(self, name: str, data: bytes) -> Path:
        """``data`` in a new file of ``tmp/``, on disk (with ``fsync``) when this returns."""
        path = self.directory / "tmp" / f"{name}.{os.getpid()}.{secrets.token_hex(6)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        handle = os.open(path, flags, 0o600)
        try:
            with open(handle, "wb", closefd=False) as stream:
                stream.write(data)
                stream.flush()
                if self.fsync:
                    os.fsync(handle)
        except BaseException:
            os.close(handle)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(handle)
        return path

    def _publish(self, temporary: Path, name: str) -> None:
        """Link ``temporary`` into ``new/`` as ``name``, unless a delivery got there first."""
        target = self.directory / "new" / name
        try:
            os.link(temporary, target)
        except FileExistsError:
            return  # delivered meanwhile, by another relay or process
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            self._publish_without_links(temporary, name)
            return
        if self._read(name):
            # A reader moved an earlier copy to cur/ between the check and the link.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
            return
        self._sync(target.parent)

    def _publish_without_links(self, temporary: Path, name: str) -> None:
        """Where hard links are refused: rename into ``new/``. Two deliveries of the same
        message at once still leave one file (the same name, the same bytes)."""
        if self._delivered(name):
            return
        try:
            os.rename(temporary, self.directory / "new" / name)
        except FileExistsError:  # Windows: rename does not replace
            return
        self._sync(self.directory / "new")

    def _sync(self, folder: Path) -> None:
        """Make a new entry of ``folder`` durable (where folders can be opened and synced)."""
        if not self.fsync:
            return
        try:
            handle = os.open(folder, os.O_RDONLY)
        except OSError:
            return  # Windows cannot open a folder; its renames are durable as they are
        try:
            with contextlib.suppress(OSError):
                os.fsync(handle)
        finally:
            os.close(handle)


_OPTIONS: Final = ("directory", "sender", "domain", "fsync", "reply_to", "html")


def maildir_channel_factory(options: Mapping[str, Any]) -> MaildirChannel:
    """Build a Maildir channel from its configuration table::

    [channels.email]
    type = "maildir"
    directory = "helpkit-mail"             # relative: to the current directory
    sender = "Support <support@example.com>"
    domain = "example.com"                 # optional: the Message-IDs' right part
    fsync = true                           # optional
    reply_to = "help@example.com"          # optional: a Reply-To header
    html = false                           # optional: an HTML alternative of the body
    """
    name = str(options.get("name", "maildir"))
    # "name", "type" and "blobs" (the desk's blob store) come from the desk, not the table.
    unknown = sorted(set(options) - {"name", "type", "blobs", *_OPTIONS})
    if unknown:
        raise ConfigError(
            f"channel {name!r} (maildir): unknown option {', '.join(unknown)} "
            f"(known: {', '.join(_OPTIONS)})"
        )
    missing = [key for key in ("directory", "sender") if key not in options]
    if missing:
        raise ConfigError(f"channel {name!r} (maildir) needs {' and '.join(missing)}")
    directory, sender, domain = options["directory"], options["sender"], options.get("domain")
    if not isinstance(directory, str):
        raise ConfigError(f"channel {name!r}: directory must be text; got {directory!r:.80}")
    if not isinstance(sender, str):
        raise ConfigError(f"channel {name!r}: sender must be text; got {sender!r:.80}")
    if domain is not None and not isinstance(domain, str):
        raise ConfigError(f"channel {name!r}: domain must be text; got {domain!r:.80}")
    reply_to = options.get("reply_to")
    if reply_to is not None and not isinstance(reply_to, str):
        raise ConfigError(f"channel {name!r}: reply_to must be text; got {reply_to!r:.80}")
    return MaildirChannel(
        directory,
        sender=sender,
        domain=domain,
        name=name,
        fsync=options.get("fsync", True),
        reply_to=reply_to,
        html=options.get("html", False),
        blobs=blob_store_option(name, options.get("blobs")),
    )
