"""IMAP polling: new messages of a mailbox, each handed as raw bytes to a callback, once.

An :class:`ImapPoller` logs in to an account (:class:`ImapAccount`: TLS from the first byte,
STARTTLS, or plain), selects the mailbox, reads its ``UIDVALIDITY``, searches the UIDs above
the last one it handled, fetches those messages (``BODY.PEEK[]``, so nothing is marked read) a
batch at a time, in UID order, and hands each one to ``handle`` (what the command line gives
it: parse the email and let the desk receive it). After each message it may flag it or move
it to another mailbox, then saves its UID as a cursor of the store's change feed
(:meth:`~helpkit.ports.ChangeFeed.save_cursor`, compare-and-set), named
``imap:<account>:<mailbox>:<UIDVALIDITY>`` (:func:`cursor_name`):

- the position survives restarts and is shared by every process polling that mailbox;
- a new ``UIDVALIDITY`` (the mailbox was recreated, the server renumbered it) is a new cursor,
  so the mailbox is read again from its first message: the desk's receipts make a message
  read twice ingested once (its ``Message-ID`` is the key);
- a callback that raises, or a connection that fails, stops the poll with the cursor on the
  last message handled, so nothing is skipped; a message handled again after a crash between
  its handling and its cursor is a duplicate the receipts absorb.

The module uses the standard library's :mod:`imaplib` and imports only the ports and the
domain; what ``handle`` does is up to its caller (the page *Email*, "Polling an IMAP mailbox").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import imaplib
import logging
import re
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final, Generic, TypeVar

import attrs

from helpkit._checks import nonblank_text, text
from helpkit.errors import ConfigError, ConflictError, HelpkitError, StoreError, ValidationError
from helpkit.ports import ChangeFeed, implements

__all__ = [
    "DEFAULT_PORTS",
    "SECURITY",
    "ImapAccount",
    "ImapError",
    "ImapPoller",
    "PollReport",
    "Polled",
    "cursor_name",
    "encode_mailbox",
]

T = TypeVar("T")

SECURITY: Final = ("ssl", "starttls", "plain")
"""How the connection is protected: ``ssl`` (TLS from the first byte, "IMAPS"), ``starttls``
(plain, then upgraded before the login; refused if the server cannot), ``plain`` (no TLS:
only for a server on the same machine)."""

DEFAULT_PORTS: Final = {"ssl": 993, "starttls": 143, "plain": 143}
"""The port of each ``security`` when none is given."""

_MAX_CURSOR: Final = 200
_FLAG: Final = re.compile(r"\\?[A-Za-z0-9$_.\-]+")
_log = logging.getLogger("helpkit.channels.imap")


class ImapError(HelpkitError):
    """The IMAP server could not be reached, refused the login or a command, or answered what
    the poller cannot read. Nothing is lost: the cursor stays on the last message handled."""


def _mailbox_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "move_to":
        return
    nonblank_text(instance, attribute, value)
    assert isinstance(value, str)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValidationError(f"{attribute.name} must hold no control characters; got {value!r}")


def _flag(instance: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _FLAG.fullmatch(value):
        raise ValidationError(
            f"flag must be an IMAP flag (\\Seen, \\Flagged...) or keyword (helpkit); got {value!r}"
        )


def _port(instance: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValidationError(f"port must be a whole number from 1 to 65535; got {value!r}")


def _security(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value not in SECURITY:
        raise ValidationError(f"security must be one of {', '.join(SECURITY)}; got {value!r}")


def _batch(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValidationError(f"batch must be a whole number from 1 to 1000; got {value!r}")


def _timeout(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= 3600  # refuses nan and inf too
    ):
        raise ValidationError(f"timeout must be seconds above 0, up to 3600; got {value!r}")


def _ssl_context(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, ssl.SSLContext):
        raise ValidationError(f"ssl_context must be an ssl.SSLContext; got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class ImapAccount:
    """Where to poll: the server, the login and the mailbox, and what to do after a message.

    ``name`` names the account in the cursor (default ``user@host``): polling the same mailbox
    under another name starts over (harmless, but slower). ``flag`` (``\\Seen``, or a keyword
    such as ``helpkit``) is set on each message handled, ``move_to`` moves it into that
    mailbox (with ``MOVE`` when the server has it, else copy, mark deleted and ``UID
    EXPUNGE``); with neither, the mailbox is opened read-only and left as it was.
    ``ssl_context`` verifies the server's certificate (default: the system's trusted
    authorities and the host name).
    """

    host: str = attrs.field(validator=nonblank_text)
    user: str = attrs.field(validator=nonblank_text)
    password: str = attrs.field(validator=text, repr=False)
    security: str = attrs.field(default="ssl", validator=_security)
    port: int | None = attrs.field(default=None, validator=_port)
    mailbox: str = attrs.field(default="INBOX", validator=_mailbox_name)
    name: str | None = attrs.field(default=None)
    batch: int = attrs.field(default=50, validator=_batch)
    """Messages fetched per ``UID FETCH``."""
    timeout: float = attrs.field(default=30.0, validator=_timeout)
    """Seconds to wait for the server (connecting and each answer)."""
    flag: str | None = attrs.field(default=None, validator=_flag)
    move_to: str | None = attrs.field(default=None, validator=_mailbox_name)
    ssl_context: ssl.SSLContext | None = attrs.field(
        default=None, validator=_ssl_context, eq=False, repr=False
    )

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str | None], value: object) -> None:
        if value is not None:
            nonblank_text(self, attribute, value)

    @property
    def account(self) -> str:
        """The account's name in the cursor: ``name``, else ``user@host``."""
        return self.name if self.name is not None else f"{self.user}@{self.host}"

    @property
    def effective_port(self) -> int:
        """``port``, else the default port of ``security``."""
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]


@attrs.frozen
class Polled(Generic[T]):
    """One message the poll handled: its UID and what ``handle`` returned."""

    uid: int
    result: T


@attrs.frozen(kw_only=True)
class PollReport(Generic[T]):
    """What one poll did."""

    account: str
    mailbox: str
    uidvalidity: int
    cursor: str
    """The cursor's name (see :func:`cursor_name`)."""
    before: int
    """The last UID handled before this poll (0: none under this ``uidvalidity``)."""
    after: int
    """The last UID handled after it."""
    messages: tuple[Polled[T], ...]
    """The messages handled, in UID order."""
    stopped: bool = False
    """Whether the poll was stopped (its ``stop`` event set) before it handled every message
    it found."""


def encode_mailbox(name: str) -> str:
    """``name`` in IMAP's modified UTF-7 (RFC 3501, 5.1.3), as mailbox names travel:
    printable ASCII stays, ``&`` is ``&-``, other text is ``&<modified base64 of UTF-16>-``."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (modified UTF-7 inside)."""
    encoded = encode_mailbox(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cursor_part(value: str) -> str:
    """Letters, digits, ``.`` and ``-`` as they are; every other byte of the UTF-8 text as
    ``_XX`` (so two different values never give the same part)."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        out.append(char if char.isascii() and (char.isalnum() or char in ".-") else f"_{byte:02X}")
    return "".join(out)


def cursor_name(account: str, mailbox: str, uidvalidity: int) -> str:
    """The change-feed cursor that keeps the last UID handled in ``mailbox`` of ``account``
    under ``uidvalidity``: ``imap:<account>:<mailbox>:<uidvalidity>``, each part with its
    characters a cursor cannot hold written ``_XX``; when that is longer than a cursor name
    may be, ``imap:<sha256 of account and mailbox, 40 hex digits>:<uidvalidity>``."""
    name = f"imap:{_cursor_part(account)}:{_cursor_part(mailbox)}:{uidvalidity}"
    if len(name) <= _MAX_CURSOR:
        return name
    digest = hashlib.sha256(f"{account}\0{mailbox}".encode()).hexdigest()[:40]
    return f"imap:{digest}:{uidvalidity}"


def _failure(what: str, exc: BaseException) -> ImapError:
    detail = str(exc).strip() or type(exc).__name__
    return ImapError(f"{what}: {detail}")


class ImapPoller:
    """Polls one mailbox of ``account`` and keeps its place in ``feed`` (the desk's store: it
    must have the change feed, :attr:`~helpkit.ports.Capability.CHANGE_FEED`)."""

    def __init__(self, account: ImapAccount, feed: object) -> None:
        if not isinstance(account, ImapAccount):
            raise ValidationError(f"account must be an ImapAccount; got {type(account).__name__}")
        if not implements(feed, ChangeFeed):
            raise ConfigError(
                f"{type(feed).__name__} keeps no cursors (it has no change feed, "
                "Capability.CHANGE_FEED): IMAP polling cannot remember where it stopped"
            )
        self.account = account
        self._feed: ChangeFeed = feed  # type: ignore[assignment]

    # ------------------------------------------------------------------ connection

    def _connect(self) -> imaplib.IMAP4:
        account = self.account
        where = f"IMAP server {account.host}:{account.effective_port}"
        context = account.ssl_context or ssl.create_default_context()
        try:
            client: imaplib.IMAP4
            if account.security == "ssl":
                client = imaplib.IMAP4_SSL(
                    account.host,
                    account.effective_port,
                    ssl_context=context,
                    timeout=account.timeout,
                )
            else:
                client = imaplib.IMAP4(
                    account.host, account.effective_port, timeout=account.timeout
                )
        except (OSError, imaplib.IMAP4.error) as exc:
            raise _failure(f"cannot connect to the {where}", exc) from exc
        try:
            if account.security == "starttls":
                try:
                    client.starttls(ssl_context=context)
                except (OSError, imaplib.IMAP4.error) as exc:
                    raise _failure(f"STARTTLS failed with the {where}", exc) from exc
            self._login(client, where)
        except BaseException:
            self._close(client)
            raise
        return client

    def _login(self, client: imaplib.IMAP4, where: str) -> None:
        account = self.account
        try:
            if account.user.isascii() and account.password.isascii():
                client.login(account.user, account.password)
            else:  # LOGIN takes ASCII only; AUTHENTICATE PLAIN carries UTF-8
                secret = b"\0" + account.user.encode() + b"\0" + account.password.encode()
                client.authenticate("PLAIN", lambda _challenge: secret)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise _failure(f"the {where} refused the login of {account.user!r}", exc) from exc

    @staticmethod
    def _close(client: imaplib.IMAP4) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error, ValueError):
            client.logout()

    @contextlib.contextmanager
    def _session(self) -> Iterator[imaplib.IMAP4]:
        client = self._connect()
        try:
            yield client
        finally:
            self._close(client)

    # ------------------------------------------------------------------ commands

    def _capabilities(self, client: imaplib.IMAP4) -> set[str]:
        """What the server can do once logged in (servers announce more than at the start)."""
        data = self._command("CAPABILITY", client.capability)
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace")
        return {word.upper() for word in words.split()}

    def _command(
        self, what: str, call: Callable[[], tuple[str, Sequence[object]]]
    ) -> Sequence[object]:
        try:
            typ, data = call()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise _failure(f"{what} failed", exc) from exc
        if typ != "OK":
            said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise ImapError(f"{what} was refused: {typ} {said}".rstrip())
        return data

    def _select(self, client: imaplib.IMAP4) -> int:
        account = self.account
        writable = account.flag is not None or account.move_to is not None
        self._command(
            f"SELECT {account.mailbox!r}",
            lambda: client.select(_quote(account.mailbox), readonly=not writable),
        )
        _, values = client.response("UIDVALIDITY")
        try:
            value = values[-1] if values else None
            uidvalidity = int(value) if isinstance(value, bytes | str) else 0
        except ValueError:
            uidvalidity = 0
        if uidvalidity <= 0:
            raise ImapError(f"the server gave mailbox {account.mailbox!r} no UIDVALIDITY")
        return uidvalidity

    def _search(self, client: imaplib.IMAP4, last: int) -> list[int]:
        data = self._command("UID SEARCH", lambda: client.uid("SEARCH", f"UID {last + 1}:*"))
        found: set[int] = set()
        for line in data:
            if isinstance(line, bytes):
                found.update(int(n) for n in line.split() if n.isdigit())
        # "n:*" always includes the highest UID, even one at or below n.
        return sorted(uid for uid in found if uid > last)

    def _fetch(self, client: imaplib.IMAP4, uids: Sequence[int]) -> dict[int, bytes]:
        data = self._command(
            "UID FETCH",
            lambda: client.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])"),
        )
        return _bodies(data)

    def _settle(self, client: imaplib.IMAP4, uid: int, capabilities: Iterable[str]) -> None:
        """Flag or move message ``uid`` as the account asks."""
        account = self.account
        if account.flag is not None:
            self._command(
                f"flagging message {uid} {account.flag}",
                lambda: client.uid("STORE", str(uid), "+FLAGS.SILENT", f"({account.flag})"),
            )
        if account.move_to is None:
            return
        target = _quote(account.move_to)
        what = f"moving message {uid} to {account.move_to!r}"
        if "MOVE" in capabilities:
            self._command(what, lambda: client.uid("MOVE", str(uid), target))
            return
        self._command(what, lambda: client.uid("COPY", str(uid), target))
        self._command(what, lambda: client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"))
        if "UIDPLUS" in capabilities:
            self._command(what, lambda: client.uid("EXPUNGE", str(uid)))

    # ------------------------------------------------------------------ the cursor

    def _advance(self, name: str, uid: int, expected: int) -> int:
        """Save ``uid`` under ``name`` (from ``expected``); return the saved position (another
        poller may have gone further meanwhile: its position is kept)."""
        while True:
            try:
                self._feed.save_cursor(name, uid, expected=expected)
                return uid
            except ConflictError:
                current = self._feed.cursor(name)
                if current >= uid:
                    return current
                expected = current

    # ------------------------------------------------------------------ polling

    def poll(
        self,
        handle: Callable[[bytes], T],
        *,
        finished: Callable[[T], bool] | None = None,
        stop: threading.Event | None = None,
        limit: int | None = None,
        on_message: Callable[[Polled[T]], None] | None = None,
        group: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> PollReport[T]:
        """Hand each new message to ``handle``, in UID order; return what was done.

        ``finished(result)`` says whether a handled message gets the account's ``flag`` and
        ``move_to`` (default: every one); a message not finished is left where it is, and
        its UID is passed all the same. ``stop`` (set by another thread) ends the poll after
        the message at hand; ``limit`` handles at most that many messages; ``on_message`` is
        called with each message handled, once its cursor was saved. An exception from
        ``handle`` stops the poll and propagates, the cursor on the message before; a failed
        connection or command raises :class:`ImapError`, likewise.

        ``group``: each fetched batch (the account's ``batch``) is handled inside
        ``with group():`` (:meth:`helpkit.Helpdesk.group_commit`), its cursor saved in the
        same block, so the batch's messages and the cursor past them are committed together;
        its messages are flagged or moved, and ``on_message`` called, once the block ended
        normally. An exception from ``handle`` ends the block by raising: nothing of that
        batch is stored, the cursor stays before it, and the exception propagates.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValidationError(f"limit must be a whole number; got {limit!r}")
        account = self.account
        with self._session() as client:
            capabilities = self._capabilities(client)
            if account.move_to is not None:
                self._command(
                    f"the mailbox to move to, {account.move_to!r}",
                    lambda: client.status(_quote(account.move_to or ""), "(MESSAGES)"),
                )
            uidvalidity = self._select(client)
            name = cursor_name(account.account, account.mailbox, uidvalidity)
            try:
                before = self._feed.cursor(name)
            except ValidationError as exc:  # a cursor name the store refuses: not ours to fix
                raise StoreError(f"cannot read the cursor {name}: {exc}") from exc
            position = before
            uids = self._search(client, before)
            if limit is not None:
                uids = uids[: max(limit, 0)]
            handled: list[Polled[T]] = []
            stopped = False
            for start in range(0, len(uids), account.batch):
                if stop is not None and stop.is_set():
                    stopped = True
                    break
                chunk = uids[start : start + account.batch]
                bodies = self._fetch(client, chunk)
                # With a group, the fetched batch and the cursor past it are one commit: its
                # messages are flagged, moved and reported once the block committed them.
                committed: list[Polled[T]] = []
                with group() if group is not None else contextlib.nullcontext():
                    for uid in chunk:
                        if stop is not None and stop.is_set():
                            stopped = True
                            break
                        if uid <= position:  # another poller handled it meanwhile
                            continue
                        raw = bodies.get(uid)
                        polled = None
                        if raw is not None:  # else expunged since the search: nothing to read
                            polled = Polled(uid, handle(raw))
                            if group is not None:
                                committed.append(polled)
                            else:
                                handled.append(polled)
                                if finished is None or finished(polled.result):
                                    self._settle(client, uid, capabilities)
                        position = self._advance(name, uid, position)
                        if polled is not None and group is None and on_message is not None:
                            on_message(polled)
                handled += committed
                for polled in committed:
                    if finished is None or finished(polled.result):
                        self._settle(client, polled.uid, capabilities)
                    if on_message is not None:
                        on_message(polled)
                if stopped:
                    break
        return PollReport(
            account=account.account,
            mailbox=account.mailbox,
            uidvalidity=uidvalidity,
            cursor=name,
            before=before,
            after=position,
            messages=tuple(handled),
            stopped=stopped,
        )

    def follow(
        self,
        handle: Callable[[bytes], T],
        stop: threading.Event,
        *,
        interval: float = 60.0,
        finished: Callable[[T], bool] | None = None,
        on_message: Callable[[Polled[T]], None] | None = None,
        on_report: Callable[[PollReport[T]], None] | None = None,
        on_error: Callable[[HelpkitError], None] | None = None,
        group: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> int:
        """Poll every ``interval`` seconds until ``stop`` is set; return the number of
        messages handled (``finished``, ``on_message`` and ``group`` as for :meth:`poll`;
        ``on_report`` gets each poll's report).

        A poll that fails with :class:`ImapError` or :class:`~helpkit.errors.StoreError` (a
        server down, a locked store) is given to ``on_error`` (default: logged as a warning)
        and tried again at the next interval; any other exception ends the loop.
        """
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise ValidationError(f"interval must be seconds; got {interval!r}")
        if not 0 < interval <= 86400:
            raise ValidationError(f"interval must be above 0 and up to a day; got {interval!r}")
        total = 0
        while not stop.is_set():
            try:
                report = self.poll(
                    handle, finished=finished, stop=stop, on_message=on_message, group=group
                )
            except (ImapError, StoreError) as exc:
                if on_error is not None:
                    on_error(exc)
                else:
                    _log.warning("polling %s failed: %s", self.account.account, exc)
            else:
                total += len(report.messages)
                if on_report is not None:
                    on_report(report)
            stop.wait(interval)
        return total


_UID: Final = re.compile(rb"\bUID (\d+)")


def _bodies(data: Sequence[object]) -> dict[int, bytes]:
    """The message bodies of a ``UID FETCH ... BODY.PEEK[]`` answer (as :mod:`imaplib` gives
    it: a ``(header, literal)`` pair per message, then its closing bytes), by UID. The UID may
    come before the body (``1 (UID 7 BODY[] {n}``) or after it (``UID 7)``)."""
    bodies: dict[int, bytes] = {}
    waiting: bytes | None = None  # a body whose UID comes in the closing bytes
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            header, literal = item
            if not isinstance(header, bytes) or not isinstance(literal, bytes):
                continue
            waiting = None
            if b"BODY[]" not in header.upper():
                continue  # a literal of another item (a flag update carries none)
            match = _UID.search(header)
            if match:
                bodies[int(match.group(1))] = literal
            else:
                waiting = literal
        elif isinstance(item, bytes) and waiting is not None:
            match = _UID.search(item)
            if match:
                bodies[int(match.group(1))] = waiting
            waiting = None
    return bodies
