"""Importing a folder of email files: a Maildir (``new/`` and ``cur/``) or a plain folder of
``.eml`` files, each message handed as raw bytes to a callback.

:func:`import_folder` reads the files in name order (a Maildir file's name starts with the
time it was delivered, so that is delivery order; name ``.eml`` files so that they sort in
the order they were received, e.g. ``0001.eml``), hands each to ``handle``, and then, for each
message ``handle`` finished with, does what ``after`` says: ``keep`` leaves the file (the
default: importing the folder again is harmless, the desk's receipts ingest a message once),
``move`` moves a Maildir's new message to ``cur/`` marked seen (``:2,S``, as a mail reader
does), ``delete`` removes the file. Hidden files, ``tmp/`` (messages still being written)
and sub-folders are not read.

The module reads files and imports only the ports and the domain; what ``handle`` does is up
to its caller (the page *Email*, "From a folder").
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final, Generic, TypeVar

import attrs

from helpkit.errors import ValidationError

__all__ = [
    "AFTER",
    "ImportReport",
    "Imported",
    "MailFolderError",
    "import_folder",
    "is_maildir",
    "message_files",
]

T = TypeVar("T")

AFTER: Final = ("keep", "move", "delete")
"""What :func:`import_folder` does with a file once its message is finished with."""

_SEEN_INFO: Final = ":2,S"


class MailFolderError(ValidationError):
    """The folder to import is missing or is not a folder, or ``after`` does not fit it."""


@attrs.frozen
class Imported(Generic[T]):
    """One file imported: where it was, what ``handle`` returned, and what became of the file
    (``kept``, ``moved`` with its new path in ``now_at``, or ``deleted``)."""

    path: Path
    result: T
    fate: str
    now_at: Path | None


@attrs.frozen(kw_only=True)
class ImportReport(Generic[T]):
    """What one import did."""

    folder: Path
    maildir: bool
    """Whether the folder was read as a Maildir."""
    messages: tuple[Imported[T], ...]
    stopped: bool = False
    """Whether ``stop`` ended the import before every file was read."""


def is_maildir(folder: Path) -> bool:
    """Whether ``folder`` is a Maildir (it has ``new/`` and ``cur/``)."""
    return (folder / "new").is_dir() and (folder / "cur").is_dir()


def _visible_files(folder: Path) -> list[Path]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return [
        Path(entry.path)
        for entry in entries
        if not entry.name.startswith(".") and entry.is_file(follow_symlinks=True)
    ]


def message_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The message files :func:`import_folder` reads in ``folder``, in the order it reads
    them: a Maildir's ``new/`` and ``cur/`` files by their delivery time (see
    :func:`_delivered_at`), else the ``.eml`` files (any case) by name."""
    path = _folder(folder)
    if is_maildir(path):
        files = _visible_files(path / "new") + _visible_files(path / "cur")
        return sorted(files, key=lambda f: (*_delivered_at(f.name), f.name, f.parent.name))
    return sorted(
        (f for f in _visible_files(path) if f.suffix.lower() == ".eml"), key=lambda f: f.name
    )


_MAILDIR_TIME: Final = re.compile(r"(\d+)(?:\.M(\d+))?")


def _delivered_at(name: str) -> tuple[int, int]:
    """When the Maildir file ``name`` was delivered, as its name says: (seconds, microseconds).

    A Maildir name begins with the delivery time in whole seconds, then a dot and a part
    unique within that second, which many writers (Python's ``mailbox``, Dovecot, Courier)
    begin with ``M`` and the microseconds, not padded to six digits: ``M99999`` comes after
    ``M100000`` by name, though delivered first. A name that does not begin with the seconds
    counts as delivered at 0; one without ``M`` microseconds, at 0 microseconds."""
    found = _MAILDIR_TIME.match(name)
    if found is None:
        return (0, 0)
    return (int(found[1]), int(found[2] or 0))


def _folder(folder: object) -> Path:
    if not isinstance(folder, str | os.PathLike):
        raise MailFolderError(f"folder must be a path; got {type(folder).__name__}")
    path = Path(folder)
    if "\x00" in str(path):
        raise MailFolderError(f"the folder name contains a NUL character: {str(path)!r}")
    if not path.exists():
        raise MailFolderError(f"no folder at {path}")
    if not path.is_dir():
        raise MailFolderError(f"{path} is not a folder (name a Maildir or a folder of .eml files)")
    return path


def _settle(path: Path, after: str) -> tuple[str, Path | None]:
    """Do ``after`` to the file at ``path``; return (its fate, where it is now)."""
    if after == "delete":
        path.unlink(missing_ok=True)
        return "deleted", None
    if after == "move" and path.parent.name == "new":
        name = path.name if ":2," in path.name else path.name + _SEEN_INFO
        target = path.parent.parent / "cur" / name
        os.replace(path, target)
        return "moved", target
    return "kept", path


def import_folder(
    folder: str | os.PathLike[str],
    handle: Callable[[bytes], T],
    *,
    after: str = "keep",
    finished: Callable[[T], bool] | None = None,
    stop: threading.Event | None = None,
    on_file: Callable[[Imported[T]], None] | None = None,
    group: Callable[[], AbstractContextManager[object]] | None = None,
    batch: int = 1,
) -> ImportReport[T]:
    """Hand the bytes of each message file of ``folder`` to ``handle``, in the order of
    :func:`message_files`; return what was done.

    ``finished(result)`` says whether ``after`` applies to that file (default: to every
    one); a file not finished is kept. ``after="move"`` needs a Maildir (a plain folder has no
    ``cur/``: :class:`MailFolderError`). ``stop`` (set by another thread) ends the import
    after the file at hand; ``on_file`` is called with each file once it was settled. An
    exception from ``handle`` stops the import and propagates: the
    files already handled were settled, the others are untouched. A file that vanished since
    the folder was listed (another import took it) is passed over.

    ``group`` (with ``batch`` > 1): the files are handled ``batch`` at a time inside
    ``with group():`` (:meth:`helpkit.Helpdesk.group_commit`: their messages are committed
    together when the block ends), and settled only after that block ended normally, so a
    file is moved or deleted only once its message is durable. An exception from ``handle``
    ends its block by raising (nothing of that batch is stored) and propagates: the files of
    earlier batches were settled, that batch's and the later ones are untouched.
    """
    if after not in AFTER:
        raise MailFolderError(f"after must be one of {', '.join(AFTER)}; got {after!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 10_000:
        raise MailFolderError(f"batch must be a whole number from 1 to 10000; got {batch!r}")
    path = _folder(folder)
    maildir = is_maildir(path)
    if after == "move" and not maildir:
        raise MailFolderError(
            f"{path} is not a Maildir (no new/ and cur/): its files can be kept or deleted, "
            "not moved to cur/"
        )
    done: list[Imported[T]] = []
    stopped = False
    files = message_files(path)
    size = batch if group is not None else 1
    for first in range(0, len(files), size):
        handled: list[tuple[Path, T]] = []
        with group() if group is not None and size > 1 else contextlib.nullcontext():
            for file in files[first : first + size]:
                if stop is not None and stop.is_set():
                    stopped = True
                    break
                try:
                    raw = file.read_bytes()
                except FileNotFoundError:
                    continue
                handled.append((file, handle(raw)))
        for file, result in handled:  # committed: now the files may go
            if finished is None or finished(result):
                fate, now_at = _settle(file, after)
            else:
                fate, now_at = "kept", file
            imported = Imported(file, result, fate, now_at)
            done.append(imported)
            if on_file is not None:
                on_file(imported)
        if stopped:
            break
    return ImportReport(folder=path, maildir=maildir, messages=tuple(done), stopped=stopped)
