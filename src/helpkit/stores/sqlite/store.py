# Over 600 lines: SqliteStore is one class (about 530 lines) whose methods share its pool.
"""The SQLite store itself: :class:`SqliteStore` and the connections it pools.

It borrows a pooled connection for every call, runs each write in one ``BEGIN IMMEDIATE``
transaction (``commit`` checks ``expected_seq`` and numbers new tickets under that lock),
writes only the ticket columns that changed (a commit of several changes, such as a sweep's
batch, reads their stored rows in one query per 500 and writes with one ``executemany`` per
statement), caches ticket states by (id, seq) (those it decoded
and those it committed) and the events it committed by their stored text (read back without
decoding), and saves and reads contacts, organizations, agents and groups.
"""

from __future__ import annotations

import functools
import itertools
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

from helpkit._checks import check_text
from helpkit.errors import (
    ConflictError,
    DuplicateError,
    NotFoundError,
    SchemaError,
    StoreError,
    ValidationError,
)
from helpkit.events import Event
from helpkit.people import (
    Agent,
    Contact,
    Group,
    Organization,
    normalize_domain,
    normalize_email,
    normalize_name,
)
from helpkit.ports import Capability, Delivery, TicketChange
from helpkit.queries import Page, TicketQuery
from helpkit.stores.contract import (
    asked_addresses,
    asked_ids,
    check_delivery,
    check_limit,
    check_record,
    check_version,
    count_arguments,
    in_asked_order,
    new_contacts,
    receipt_keys,
    routing_states,
)
from helpkit.stores.sqlite.blob_rows import BlobRowsMixin
from helpkit.stores.sqlite.checkpointer import Checkpointer
from helpkit.stores.sqlite.encoding import (
    _STATE,
    _TAGS,
    _TICKET_COLUMNS,
    EventTexts,
    _decode_agent,
    _decode_contact,
    _decode_group,
    _decode_organization,
    _decode_ticket,
    _decoded,
    _dumps,
    _encode_agent,
    _encode_contact,
    _encode_group,
    _encode_organization,
    _loads,
    _micros,
    _Prepared,
)
from helpkit.stores.sqlite.feed import LAST_POSITION as _LAST_POSITION
from helpkit.stores.sqlite.feed import FeedAndOutbox
from helpkit.stores.sqlite.inbox import InboxMixin, write_receipts
from helpkit.stores.sqlite.knowledge import KnowledgeMixin
from helpkit.stores.sqlite.privacy import PrivacyMixin
from helpkit.stores.sqlite.query_sql import _select
from helpkit.stores.sqlite.routing import RoutingMixin, write_routing
from helpkit.stores.sqlite.schema import (
    AGENT_EMAIL_KEY,
    _check_identity,
    _error_code,
    _identity_of,
    _inspect,
    _migrate,
)
from helpkit.stores.sqlite.timer_rows import TimerRowsMixin
from helpkit.tickets import Ticket

_MIN_SQLITE: Final = (3, 15, 0)  # row values, used for keyset pagination

_WAL_CHECKPOINT_PAGES: Final = 8192  # about 32 MiB of WAL at the default 4 KiB pages
# With checkpoints="background" the writers checkpoint themselves only when the WAL holds this
# many times the threshold (the checkpointer thread lags, or cannot read the WAL index).
_SAFETY_NET_FACTOR: Final = 4
_WAL_SIZE_LIMIT: Final = 64 * 1024 * 1024
# Decoded ticket states kept per store: enough for the first page of every queue of a
# helpdesk with ~150 agents (50 tickets each), so agents polling their queues decode only the
# tickets that changed. About 2 KiB each.
_CACHE_SIZE: Final = 8192
_PEOPLE_KEPT: Final = 4096  # contacts and agents kept decoded (by their stored text)
# Events kept by the text this store object committed them as (encoding.EventTexts; 16 MiB
# of text at most, none over 16 KiB): a relay reads its records back off the feed after the
# backlog it was draining, so a backlog of up to this many is read back without decoding.
_EVENTS_KEPT: Final = 8192

# SQLite's primary result codes for "cannot open or write this file".
_NOT_WRITABLE: Final = frozenset(
    {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM}
)

Synchronous = Literal["FULL", "NORMAL"]
Checkpoints = Literal["background", "inline"]

_INSERT_TICKET: Final = (
    f"INSERT INTO tickets ({', '.join(_TICKET_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_TICKET_COLUMNS))})"
)
_NEXT_NUMBER: Final = "SELECT coalesce(max(number), 0) + 1 FROM tickets"
# A kept timer state lives in its ticket's row (schema v10), written by the same statement
# as the ticket (a second statement would rewrite the row again).
_INSERT_KEPT: Final = (
    f"INSERT INTO tickets ({', '.join(_TICKET_COLUMNS)}, timer_state) "
    f"VALUES ({', '.join('?' * (len(_TICKET_COLUMNS) + 1))})"
)
# A requester's tickets created after an instant, counted up to a limit (the acknowledgement
# rate limit of intake): the tickets_requester index (requester_id, created_us, id) holds
# both columns, so the count reads no table row.
_COUNT_RECENT_REQUESTS: Final = (
    "SELECT count(*) FROM (SELECT 1 FROM tickets WHERE requester_id = ? AND created_us > ? LIMIT ?)"
)
# The agents whose JSON's address is one of a JSON list's, looked up in the agents_email index
# (schema v13), whose expression this one must be for SQLite to use it. A row that is not JSON
# is indexed under x'00' (json_extract would fail the statement on it): that key is asked too,
# so such a row is returned, for its decoding to fail as in list_agents.
_AGENTS_BY_EMAIL: Final = (
    f"SELECT data FROM agents WHERE {AGENT_EMAIL_KEY} IN "
    "(SELECT value FROM json_each(?) UNION ALL SELECT x'00') ORDER BY id"
)
_STATES_PER_QUERY: Final = 500  # bound parameters per query: far below SQLite's oldest limit
_SELECT_STORED: Final = f"SELECT rowid, {', '.join(_TICKET_COLUMNS[:-1])} FROM tickets WHERE id"
_SELECT_FOR_UPDATE: Final = f"{_SELECT_STORED} = ?"


def _background_threshold() -> int:
    """Bytes of WAL file past which the checkpointer checkpoints: the threshold's pages as
    WAL frames (a 24-byte header and a page of the default 4 KiB)."""
    return _WAL_CHECKPOINT_PAGES * (4096 + 24)


@functools.cache
def _update_sql(columns: tuple[int, ...], kept: bool = False) -> str:
    assigned = ", ".join(f"{_TICKET_COLUMNS[i]} = ?" for i in columns)
    if kept:
        assigned += ", timer_state = ?"
    return f"UPDATE tickets SET {assigned} WHERE rowid = ?"


_INSERT_EVENTS: Final = (
    "INSERT INTO events (ticket_id, seq, type, at_us, actor, body, position) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UNREAD: Final = object()  # a ticket whose stored row _Batch has not read (or has handed out)


class _Batch:
    """The writes of one commit, inside its transaction: the stored rows of the batch's
    tickets read in one query per 500 (not one per ticket), and the ticket updates and event
    inserts run together, one ``executemany`` per statement, instead of a few statements per
    ticket (a sweep commits hundreds of tickets at once).

    A stored row is handed out once: a second change of the same ticket in the batch reads
    its row again, after the updates so far are written (:meth:`stored`).
    """

    __slots__ = ("conn", "events", "rows", "updates")

    def __init__(self, conn: sqlite3.Connection, prepared: Sequence[_Prepared]) -> None:
        self.conn = conn
        self.rows: dict[str, tuple[Any, ...] | None] = {}
        self.updates: dict[str, list[tuple[Any, ...]]] = {}
        self.events: list[tuple[Any, ...]] = []
        if len(prepared) < 2:
            return  # a command's commit: one read, as before
        ids = list({item.change.ticket.id for item in prepared if item.invalid is None})
        for start in range(0, len(ids), _STATES_PER_QUERY):
            chunk = ids[start : start + _STATES_PER_QUERY]
            self.rows.update(dict.fromkeys(chunk))  # None: not stored (a new ticket)
            for row in conn.execute(
                f"{_SELECT_STORED} IN ({', '.join('?' * len(chunk))})", chunk
            ).fetchall():
                self.rows[row[1]] = row

    def stored(self, ticket_id: str) -> tuple[Any, ...] | None:
        """The stored row of ``ticket_id`` (rowid, then the columns from id to tags), or
        None when it is not stored."""
        row = self.rows.pop(ticket_id, _UNREAD)
        if row is not _UNREAD:
            return row  # type: ignore[return-value]
        self.flush()
        found: tuple[Any, ...] | None = self.conn.execute(
            _SELECT_FOR_UPDATE, (ticket_id,)
        ).fetchone()
        return found

    def unread(self, ticket_id: str) -> bool:
        """Whether the batch read no row for ``ticket_id`` (it read rows only for a batch
        of several changes)."""
        return ticket_id not in self.rows

    def update(self, sql: str, params: tuple[Any, ...]) -> None:
        """Update a stored ticket (written by the next :meth:`flush`)."""
        self.updates.setdefault(sql, []).append(params)

    def flush(self) -> None:
        """Write the updates and events so far."""
        for sql, rows in self.updates.items():
            self.conn.executemany(sql, rows)
        self.updates.clear()
        if self.events:
            self.conn.executemany(_INSERT_EVENTS, self.events)
            self.events.clear()


class _Settle:
    """The relay's results a commit settles in its transaction, and how many it stored."""

    __slots__ = ("owner", "results", "stored")

    def __init__(self, results: list[Delivery], owner: str) -> None:
        self.results = results
        self.owner = owner
        self.stored = 0


class _KeyedTable(NamedTuple):
    """A versioned table whose rows own unique keys kept in a second table."""

    name: str  # e.g. contacts
    kind: str  # what a row is, in messages: contact
    keys: str  # the table of keys: contact_emails
    key: str  # its key column: email
    owner: str  # its column naming the owning row: contact_id


_CONTACTS: Final = _KeyedTable("contacts", "contact", "contact_emails", "email", "contact_id")
_ORGANIZATIONS: Final = _KeyedTable(
    "organizations", "organization", "organization_domains", "domain", "organization_id"
)


def _write_keyed(
    conn: sqlite3.Connection,
    table: _KeyedTable,
    ident: str,
    version: int,
    columns: dict[str, object],
    keys: Sequence[str],
) -> None:
    """Inside a write transaction: save a versioned row and the unique keys it owns, or raise
    (ConflictError on a stale version, DuplicateError on a key another row owns) before
    writing anything."""
    row = conn.execute(f"SELECT version FROM {table.name} WHERE id = ?", (ident,)).fetchone()
    stored = row[0] if row is not None else None
    check_version(table.kind, ident, stored, version)
    for key in keys:
        owner = conn.execute(
            f"SELECT {table.owner} FROM {table.keys} WHERE {table.key} = ?", (key,)
        ).fetchone()
        if owner is not None and owner[0] != ident:
            raise DuplicateError(
                f"{table.key} {key!r} already belongs to {table.kind} {owner[0]!r}"
            )
    names = [*columns, "version"]
    values = (*columns.values(), version, ident)
    if stored is None:
        conn.execute(
            f"INSERT INTO {table.name} ({', '.join(names)}, id) "
            f"VALUES ({', '.join('?' * len(values))})",
            values,
        )
    else:
        assigned = ", ".join(f"{name} = ?" for name in names)
        conn.execute(f"UPDATE {table.name} SET {assigned} WHERE id = ?", values)
        conn.execute(f"DELETE FROM {table.keys} WHERE {table.owner} = ?", (ident,))
    conn.executemany(
        f"INSERT INTO {table.keys} ({table.key}, {table.owner}) VALUES (?, ?)",
        [(key, ident) for key in keys],
    )


def _insert_new(
    conn: sqlite3.Connection,
    table: _KeyedTable,
    ident: str,
    columns: dict[str, object],
    keys: Sequence[str],
) -> None:
    """Inside a write transaction: insert a new row (version 1) and its keys, without reading
    first: the primary keys refuse a stored id (ConflictError) or a key another row owns
    (DuplicateError), read then to say so; the caller's transaction rolls back."""
    names = [*columns, "version", "id"]
    try:
        conn.execute(
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            (*columns.values(), 1, ident),
        )
    except sqlite3.IntegrityError:
        row = conn.execute(f"SELECT version FROM {table.name} WHERE id = ?", (ident,)).fetchone()
        if row is None:
            raise
        check_version(table.kind, ident, row[0], 1)
        raise  # pragma: no cover - check_version refuses version 1 over a stored row
    for key in keys:
        try:
            conn.execute(
                f"INSERT INTO {table.keys} ({table.key}, {table.owner}) VALUES (?, ?)",
                (key, ident),
            )
        except sqlite3.IntegrityError:
            owner = conn.execute(
                f"SELECT {table.owner} FROM {table.keys} WHERE {table.key} = ?", (key,)
            ).fetchone()
            if owner is None:
                raise
            raise DuplicateError(
                f"{table.key} {key!r} already belongs to {table.kind} {owner[0]!r}"
            ) from None


def _contact_columns(contact: Contact) -> dict[str, object]:
    return {
        "name_key": contact.name_key,
        "organization_id": contact.organization_id,
        "data": _dumps(_encode_contact(contact)),
    }


_GROUPS: Final = threading.local()
"""Each file's group commit (:meth:`SqliteStore.group_commit`), by thread: every SqliteStore
of that file used by the thread (the store, the ``sqlite:`` blob store's) works inside the
group's transaction, instead of waiting for the write lock the thread holds."""


class _Group:
    """A group commit: its connection, and the store objects that opened it or wrote in it
    (whose caches are cleared if it rolls back)."""

    __slots__ = ("conn", "writers")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.writers: set[SqliteStore] = set()


def _groups() -> dict[str, _Group]:
    """This thread's group commits, by file."""
    groups: dict[str, _Group] | None = getattr(_GROUPS, "by_file", None)
    if groups is None:
        groups = _GROUPS.by_file = {}
    return groups


def _group(file: str) -> _Group | None:
    """This thread's group commit of ``file``, if one is open."""
    groups: dict[str, _Group] | None = getattr(_GROUPS, "by_file", None)
    return None if not groups else groups.get(file)


def _held(file: str) -> sqlite3.Connection | None:
    """The connection of this thread's group commit of ``file``, if one is open."""
    group = _group(file)
    return None if group is None else group.conn


def _rolled_back(group: _Group) -> None:
    """Roll a group commit back; every store object that wrote in it forgets the ticket
    states it cached (a state at a seq that was never stored must not answer a read)."""
    try:
        if group.conn.in_transaction:
            group.conn.execute("ROLLBACK")
    finally:
        for store in group.writers:
            store._forget_states()


class _Savepoint:
    """A savepoint of the transaction open on ``conn``: released when the block ends,
    rolled back to (and released) when it raises (a class, as :class:`_Borrowed`)."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        if not self.conn.in_transaction:
            # SQLite rolled the whole transaction back after an error (a full disk...): a
            # write now would commit on its own, outside the group.
            raise StoreError("the group commit's transaction was rolled back by SQLite")
        self.conn.execute("SAVEPOINT helpkit_write")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if not self.conn.in_transaction:
            return  # rolled back by SQLite with its error: the group's end says so
        if kind is not None:
            self.conn.execute("ROLLBACK TO helpkit_write")
        self.conn.execute("RELEASE helpkit_write")


class _Borrowed:
    """A pooled connection for the length of a ``with`` block (a class: a generator-based
    context manager costs several times more, and every store call takes one)."""

    __slots__ = ("conn", "store")

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.conn = self.store._borrow()
        return self.conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self.store._give_back(self.conn)
        if isinstance(exc, sqlite3.Error):
            raise self.store._error(exc) from exc


class SqliteStore(
    FeedAndOutbox,
    InboxMixin,
    RoutingMixin,
    PrivacyMixin,
    KnowledgeMixin,
    TimerRowsMixin,
    BlobRowsMixin,  # last: its placeholders for the methods above must not hide them
):
    """A :class:`helpkit.ports.Store` in one SQLite file, safe across threads and processes.

    ``timeout`` is how long (seconds) a write waits for another writer's lock before failing
    with :class:`~helpkit.errors.StoreError`. ``synchronous="FULL"`` (the default) makes every
    commit durable against power loss; ``"NORMAL"`` is much faster and still safe against a
    crash of the application, but a power cut may lose the last commits (never corrupting
    the file). ``cache`` is how many decoded ticket states the store keeps (least recently
    used first out; 0 keeps none). ``checkpoints="background"`` (the default) copies the WAL
    back into the file on a daemon thread of this store object (started by its first write,
    stopped by :meth:`close`), so commits do not wait on that disk write; a writer still
    checkpoints itself if the WAL grows to four times the threshold. ``"inline"`` lets the
    commit that crosses the threshold checkpoint, as SQLite does by default.
    """

    capabilities: frozenset[str] = frozenset(
        {
            Capability.PERSISTENT,
            Capability.MULTIPROCESS,
            Capability.CHANGE_FEED,
            Capability.OUTBOX,
            Capability.CLAIMED_ENQUEUE,
            Capability.TIMER_STATE,
            Capability.TIMER_ROWS,
            Capability.INBOX,
            Capability.ROUTING,
            Capability.REDACTION,
            Capability.PURGE,
            Capability.KNOWLEDGE,
            Capability.NEW_CONTACTS,
            Capability.TICKET_READS,
            Capability.SETTLED_COMMIT,
            Capability.AGENT_EMAILS,
            Capability.REQUESTER_COUNTS,
            Capability.GROUP_COMMIT,
        }
    )

    _MAX_IDLE: Final = 8

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        synchronous: str = "FULL",
        cache: int = _CACHE_SIZE,
        checkpoints: str = "background",
    ) -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"the SQLite store needs SQLite {'.'.join(map(str, _MIN_SQLITE))} or newer; "
                f"this Python has {sqlite3.sqlite_version}"
            )
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in ("FULL", "NORMAL"):
            raise ValidationError(f"synchronous must be 'FULL' or 'NORMAL'; got {synchronous!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout >= 0:
            raise ValidationError(f"timeout must be a number of seconds >= 0; got {timeout!r}")
        if checkpoints not in ("background", "inline"):
            raise ValidationError(
                f"checkpoints must be 'background' or 'inline'; got {checkpoints!r}"
            )
        if not isinstance(cache, int) or isinstance(cache, bool) or cache < 0:
            raise ValidationError(f"cache must be a number of tickets >= 0; got {cache!r}")
        self.path = os.fspath(path)
        if not isinstance(self.path, str) or not self.path or self.path == ":memory:":
            raise ValidationError(
                f"the SQLite store needs a file path, not {path!r} (use memory:// for a "
                "store that lives in memory)"
            )
        if "\0" in self.path:
            raise ValidationError(f"a file path cannot hold a NUL character: {path!r}")
        # The file, as group commits are found by it (_GROUPS).
        self._file = os.path.realpath(self.path)
        self.timeout = float(timeout)
        self.synchronous: Synchronous = "FULL" if mode == "FULL" else "NORMAL"
        self.checkpoints: Checkpoints = "inline" if checkpoints == "inline" else "background"
        self._checkpointer: Checkpointer | None = None  # started by the first write
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._open: set[sqlite3.Connection] = set()
        self._closed = False
        self.cache_size = cache
        self._cache: OrderedDict[tuple[str, int], Ticket] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Contacts and agents as decoded from their stored text, by that text: a relay planning
        # replies reads the same requesters again and again, and the same text always decodes
        # to the same (immutable) value, so only text not seen lately is decoded and checked.
        self._contact_of: Callable[[str], Contact] = functools.lru_cache(maxsize=_PEOPLE_KEPT)(
            functools.partial(_decoded, _decode_contact, what="contact")
        )
        self._agent_of: Callable[[str], Agent] = functools.lru_cache(maxsize=_PEOPLE_KEPT)(
            functools.partial(_decoded, _decode_agent, what="agent")
        )
        # Events by the text they were committed as: the feed and the histories read back what
        # this store object committed without decoding it (EventTexts says why that is safe).
        self._events = EventTexts(_EVENTS_KEPT if cache else 0)
        needs_schema = _inspect(self.path, self.timeout)
        conn = self._connect()
        try:
            # WAL is a property of the file and switching writes to it, so only now, after
            # _inspect found the file new, empty or ours. This first read is also where SQLite
            # rolls back a hot journal _inspect checked on a copy (schema.py says why).
            mode_row = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode_row is None or str(mode_row[0]).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode_row!r})")
            # Judged again on this connection, which sees the file as recovered (and whatever
            # another process did since _inspect); _migrate judges it once more under the lock.
            if needs_schema or _check_identity(self.path, *_identity_of(conn)):
                _migrate(conn, self.path)
        except sqlite3.Error as exc:
            self._discard(conn)
            raise self._error(exc) from exc
        except BaseException:
            self._discard(conn)
            raise
        self._idle.append(conn)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SqliteStore {self.path!r} {state}>"

    # ------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
                check_same_thread=False,  # pooled: used by one thread at a time, any thread
                cached_statements=256,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # Checkpoint less often than SQLite's default 1000 pages: a checkpoint costs two
            # fsyncs and copies pages that later commits would dirty again. The WAL file is
            # truncated back to the size limit after a checkpoint resets it. In the background
            # mode the checkpointer thread checkpoints at the threshold and this is the safety
            # net (checkpointer.py).
            # The checkpointer goes by the WAL file's size, so the file is truncated to its
            # threshold when the WAL starts again.
            pages, limit = _WAL_CHECKPOINT_PAGES, _WAL_SIZE_LIMIT
            if self.checkpoints == "background":
                pages *= _SAFETY_NET_FACTOR
                limit = _background_threshold()
            conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")
            conn.execute(f"PRAGMA journal_size_limit = {limit}")
        except sqlite3.Error as exc:
            conn.close()
            raise self._error(exc) from exc
        with self._lock:
            self._open.add(conn)
        return conn

    def _discard(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._open.discard(conn)
        conn.close()

    def _connection(self) -> _Borrowed:
        """Borrow a pooled connection (``with store._connection() as conn``).

        sqlite3 errors inside the block become StoreError.
        """
        return _Borrowed(self)

    def _borrow(self) -> sqlite3.Connection:
        held = _held(self._file)
        if held is not None:
            return held
        with self._lock:
            if self._closed:
                raise StoreError(f"this SqliteStore ({self.path}) is closed")
            conn = self._idle.pop() if self._idle else None
        return conn if conn is not None else self._connect()

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if conn is _held(self._file):
            return  # the group commit's: given back when the group ends
        with self._lock:
            keep = not self._closed and len(self._idle) < self._MAX_IDLE
            if keep:
                self._idle.append(conn)
            else:
                self._open.discard(conn)
        if not keep:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: the database write lock is held from the start. Inside a
        group commit of this thread, a savepoint of the group's transaction instead."""
        with self._connection() as conn:
            group = _group(self._file)
            if group is not None and conn is group.conn:
                group.writers.add(self)
                with _Savepoint(conn):
                    yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self._committed()

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """A block whose writes in this thread commit as one transaction (see
        :class:`helpkit.ports.GroupCommits`): one ``BEGIN IMMEDIATE`` at its start, so the
        database write lock is held for the whole block (other writers wait up to
        ``timeout``), a savepoint per write, one ``COMMIT`` (one flush to disk at
        ``synchronous=FULL``) at its end. A block that raises rolls back, and the ticket
        states cached meanwhile are dropped (a state at a seq that was never stored must not
        answer a read)."""
        if _held(self._file) is not None:
            yield  # joins the outer group
            return
        conn = self._borrow()
        groups = _groups()
        group = _Group(conn)
        group.writers.add(self)  # its reads in the block cached states too
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            groups[self._file] = group
            try:
                yield
            except BaseException:
                del groups[self._file]
                _rolled_back(group)
                raise
            del groups[self._file]
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rolled_back(group)
                raise self._error(exc) from exc
        finally:
            groups.pop(self._file, None)
            self._give_back(conn)
        self._committed()

    def _forget_states(self) -> None:
        """Forget the ticket states cached (some were of a group commit rolled back)."""
        with self._cache_lock:
            self._cache.clear()

    def _committed(self) -> None:
        """After a commit: wake the checkpointer (started here, by the first write)."""
        checkpointer = self._checkpointer
        if checkpointer is None:
            if self.checkpoints == "inline":
                return
            with self._lock:
                if self._closed:
                    return
                if self._checkpointer is None:
                    self._checkpointer = Checkpointer(self.path, _background_threshold())
                checkpointer = self._checkpointer
        checkpointer.wake()

    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
            return StoreError(
                f"{self.path} stayed locked by another writer for more than {self.timeout}s "
                f"({text}); retry, or open the store with a longer timeout"
            )
        if isinstance(exc, sqlite3.DatabaseError) and "malformed" in text:
            return SchemaError(f"{self.path} is corrupt ({text}); restore it from a backup")
        if _error_code(exc) & 0xFF in _NOT_WRITABLE:
            name = os.path.basename(self.path)
            return StoreError(
                f"this process cannot write {self.path} ({text}): check that it may write the "
                f"file and its folder (SQLite creates {name}-wal and {name}-shm beside it)"
            )
        return StoreError(f"SQLite error on {self.path}: {text}")

    # ------------------------------------------------------------ tickets

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        """Append events and save states in one transaction; ConflictError on a stale seq.

        Changes apply in order, so a batch may carry several changes of one ticket, each
        building on the previous one's seq. Nothing is written unless every change applies.
        A ticket with number 0 is numbered inside the transaction (the highest number
        stored, plus one), so numbers follow commit order across processes, without gaps.
        The changes' receipts are written in the same transaction, after the seq checks:
        DuplicateError (nothing written) when a key is held by a receipt not suspended; so
        are their routing states: ConflictError (nothing written) when a group's version is
        not the one before. Their new contacts are saved first, in the same transaction:
        DuplicateError (nothing written) when another contact owns one of their addresses.
        """
        return self._commit([_Prepared(change) for change in changes], ())

    def commit_settled(
        self,
        changes: Sequence[TicketChange],
        states: Sequence[str | None] | None,
        results: Sequence[Delivery],
        *,
        owner: str,
    ) -> tuple[list[TicketChange], int]:
        """:meth:`commit_planned` (:meth:`commit` without ``states``) and :meth:`settle` of
        the relay's results in one transaction (see :class:`helpkit.ports.SettledCommits`):
        the changes as written and how many results were stored."""
        check_text(owner, "owner")
        settle = _Settle([check_delivery(d, checked=True) for d in results], owner)
        if not changes:
            return [], self.settle(settle.results, owner=owner, checked=True)
        if states is None:
            written = self._commit([_Prepared(change) for change in changes], (), settle)
        else:
            written = self._commit(*self._planned(changes, states), settle)
        return written, settle.stored

    def commit_planned(
        self, changes: Sequence[TicketChange], states: Sequence[str | None]
    ) -> list[TicketChange]:
        """:meth:`commit` for the changes of helpkit's pipeline (their values are not checked
        again), keeping each ticket's timer state (see :class:`helpkit.ports.TimerStates`)."""
        return self._commit(*self._planned(changes, states))

    def _planned(
        self, changes: Sequence[TicketChange], states: Sequence[str | None]
    ) -> tuple[list[_Prepared], list[str | None]]:
        """The changes of :meth:`commit_planned` prepared, and the timer states kept."""
        if not isinstance(states, Sequence) or len(states) != len(changes):
            raise ValidationError(
                f"commit_planned takes one state per change: {len(changes)} changes, "
                f"states {states!r:.60}"
            )
        for state in states:
            if state is not None and not isinstance(state, str):
                raise ValidationError(f"a timer state is text or None; got {state!r:.60}")
        prepared = [_Prepared(change, checked=True) for change in changes]
        kept = [
            state if state is not None and item.change.events and item.invalid is None else None
            for item, state in zip(prepared, states, strict=True)
        ]
        try:
            for state in kept:
                if state is not None:
                    state.encode("utf-8")  # bound as UTF-8 inside the transaction: refuse here
        except UnicodeEncodeError as exc:
            raise ValidationError(f"a timer state cannot be stored: {exc}") from None
        return prepared, kept

    def _commit(
        self,
        prepared: list[_Prepared],
        states: Sequence[str | None],
        settle: _Settle | None = None,
    ) -> list[TicketChange]:
        """Write ``prepared`` in one transaction, with the timer state ``states`` holds for
        each (the same positions; ``None``, or no ``states`` at all, keeps none), settling
        ``settle``'s results in it last (how many were stored goes into ``settle``)."""
        if not prepared:
            with self._connection():
                return []
        contacts = new_contacts([item.change for item in prepared if item.invalid is None])
        with self._transaction() as conn:
            for contact in contacts:  # first: a change may name its new requester
                _insert_new(conn, _CONTACTS, contact.id, _contact_columns(contact), contact.emails)
            # Under the write lock: positions follow commit order, across processes.
            position = conn.execute(_LAST_POSITION).fetchone()[0]
            batch = _Batch(conn, prepared)
            numbers = []
            kept = states or itertools.repeat(None)
            for item, state in zip(prepared, kept, strict=False):
                number, position = self._apply(batch, item, position, state)
                numbers.append(number)
            batch.flush()
            receipts = receipt_keys([item.change for item in prepared])
            if receipts:
                write_receipts(conn, receipts.values())
            moved = routing_states([item.change for item in prepared])
            if moved:
                write_routing(conn, moved)
            stored = self._settle_in(conn, settle.results, settle.owner) if settle else 0
        if settle is not None:
            settle.stored = stored
        written = [
            item.change.with_number(number) for item, number in zip(prepared, numbers, strict=True)
        ]
        self._cache_written(written)
        # The events with the text they were stored as (an opening event numbered in the
        # transaction was stored with another text than its own: it has none here).
        self._events.keep(
            [
                (row[5], event)
                for item in prepared
                for row, event in zip(item.event_rows, item.change.events, strict=True)
                if row[5]
            ]
        )
        return written

    def _cache_written(self, written: Sequence[TicketChange]) -> None:
        """Keep the states just committed among the decoded ones: the next command on these
        tickets (the relay recording what it sent, an agent's next reply) decodes no JSON. A
        state at a given seq is committed once (the commit is guarded by the seq), and the
        stored form holds what the state holds, so it is what a read would decode."""
        if not self.cache_size:
            return
        cache = self._cache
        with self._cache_lock:
            for change in written:
                if change.events:
                    ticket_id = change.ticket.id
                    key = (ticket_id, change.ticket.seq)
                    cache[key] = change.ticket
                    cache.move_to_end(key)
                    # The state it replaces is no longer the stored one: its place goes to
                    # another ticket's (a read finds the new seq in the row).
                    cache.pop((ticket_id, change.expected_seq), None)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)

    def _apply(
        self, batch: _Batch, item: _Prepared, position: int, state: str | None = None
    ) -> tuple[int, int]:
        """Write one change after feed ``position`` (with its timer ``state``, when not
        ``None``); its ticket's number, the last position."""
        if item.invalid is not None:
            raise item.invalid
        change = item.change
        ticket_id = change.ticket.id
        conn = batch.conn
        # rowid, then the row's columns in the order of _TICKET_COLUMNS (from id on).
        # A new ticket (seq 0, events, rows encoded) is not read first: its insert finds a
        # stored one (the id is the primary key), read then to say so. One statement less
        # for every ticket opened.
        unread = (
            change.expected_seq == 0
            and bool(change.events)
            and item.rows_error is None
            and batch.unread(ticket_id)
        )
        stored = None if unread else batch.stored(ticket_id)
        current_seq = stored[3] if stored is not None else 0
        if current_seq != change.expected_seq:
            raise ConflictError(
                f"ticket {ticket_id!r} is at seq {current_seq}, not {change.expected_seq}: "
                "it changed since it was read. Reload and retry."
            )
        number = change.ticket.number
        if not change.events:
            return (stored[2] if number == 0 and stored is not None else number), position
        if stored is None:
            if number == 0:
                # Under the write lock: no other commit can take this number first.
                number = conn.execute(_NEXT_NUMBER).fetchone()[0]
            else:
                owner = conn.execute(
                    "SELECT id FROM tickets WHERE number = ?", (number,)
                ).fetchone()
                if owner is not None and owner[0] == ticket_id:  # stored, and not read
                    raise ConflictError(
                        f"ticket {ticket_id!r} is stored already, not at seq 0: it changed "
                        "since it was read. Reload and retry."
                    )
                if owner is not None:
                    raise DuplicateError(
                        f"ticket number {number} already belongs to ticket {owner[0]!r}"
                    )
        elif number == 0:
            number = stored[2]
        elif number != stored[2]:
            raise ValidationError(f"ticket {ticket_id!r} has number {stored[2]}; it cannot change")
        if item.rows_error is not None:
            raise item.rows_error
        row, event_rows = item.rows_with_number(number)
        if stored is None:
            try:
                if state is None:
                    conn.execute(_INSERT_TICKET, row)
                else:
                    conn.execute(_INSERT_KEPT, (*row, state))
            except sqlite3.IntegrityError:
                found = batch.stored(ticket_id) if unread else None
                if found is None:
                    raise
                raise ConflictError(
                    f"ticket {ticket_id!r} is at seq {found[3]}, not 0: it changed since it "
                    "was read. Reload and retry."
                ) from None
            old_tags: frozenset[str] = frozenset()
        else:
            # Only the columns that changed: SQLite rewrites every index that holds a column
            # named in SET, changed or not, and each rewritten index page is another page in
            # the WAL. A comment with a status change touches 4 of the 11 ticket indexes
            # (more when it moves the SLA schedule).
            # (stored holds the rowid first, then the columns from id to tags.)
            changed = [i for i in range(2, _STATE) if row[i] != stored[i + 1]]
            changed.append(_STATE)
            if state is None:
                batch.update(_update_sql(tuple(changed)), (*(row[i] for i in changed), stored[0]))
            else:
                batch.update(
                    _update_sql(tuple(changed), True),
                    (*(row[i] for i in changed), state, stored[0]),
                )
            stored_tags = stored[_TAGS + 1]
            old_tags = (
                item.tags if stored_tags == row[_TAGS] else frozenset(_loads(stored_tags, "tags"))
            )
        batch.events.extend(
            (*row, position + offset) for offset, row in enumerate(event_rows, start=1)
        )
        position += len(event_rows)
        if old_tags != item.tags:
            gone = old_tags - item.tags
            if gone:
                conn.executemany(
                    "DELETE FROM ticket_tags WHERE ticket_id = ? AND tag = ?",
                    [(ticket_id, tag) for tag in sorted(gone)],
                )
            conn.executemany(
                "INSERT INTO ticket_tags (ticket_id, tag) VALUES (?, ?)",
                [(ticket_id, tag) for tag in sorted(item.tags - old_tags)],
            )
        return number, position

    def get_ticket(self, ticket_id: str) -> Ticket:
        """The current state of a ticket."""
        with self._connection() as conn:
            row = (
                conn.execute(
                    "SELECT id, seq, state FROM tickets WHERE id = ?", (ticket_id,)
                ).fetchone()
                if isinstance(ticket_id, str)
                else None
            )
        if row is None:
            raise NotFoundError(f"no ticket with id {ticket_id!r}")
        return self._ticket(row)

    def get_tickets(self, ticket_ids: Sequence[str]) -> list[Ticket]:
        """The current states of ``ticket_ids``, in their order, read in one statement (a
        read transaction of its own); see :class:`helpkit.ports.TicketReads`."""
        keys = asked_ids(ticket_ids)
        wanted = list(dict.fromkeys(key for key in keys if isinstance(key, str)))
        rows: dict[str, tuple[Any, ...]] = {}
        if wanted:
            with self._connection() as conn:
                for start in range(0, len(wanted), _STATES_PER_QUERY):
                    chunk = wanted[start : start + _STATES_PER_QUERY]
                    marks = ",".join("?" * len(chunk))
                    for row in conn.execute(
                        f"SELECT id, seq, state FROM tickets WHERE id IN ({marks})", chunk
                    ):
                        rows[row[0]] = row
        return in_asked_order(keys, rows, self._ticket)

    def get_ticket_by_number(self, number: int) -> Ticket:
        """The ticket with that number."""
        with self._connection() as conn:
            row = (
                conn.execute(
                    "SELECT id, seq, state FROM tickets WHERE number = ?", (number,)
                ).fetchone()
                if isinstance(number, (int, float))
                else None
            )
        if row is None:
            raise NotFoundError(f"no ticket #{number}")
        return self._ticket(row)

    def _ticket(self, row: tuple[Any, ...]) -> Ticket:
        # A ticket's state at a given seq never changes (it is the fold of its first seq
        # events), so decoded states are cached by (id, seq): a queue polled again and again
        # costs no JSON decoding for the tickets that did not move.
        key = (row[-3], row[-2])
        cache = self._cache
        with self._cache_lock:
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                return hit
        ticket: Ticket = _decoded(_decode_ticket, row[-1], "ticket state")
        with self._cache_lock:
            cache[key] = ticket
            if len(cache) > self.cache_size:
                cache.popitem(last=False)
        return ticket

    def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
        """A ticket's events with seq > ``after_seq``, in order."""
        key: object = ticket_id
        with self._connection() as conn:
            if not isinstance(key, str):
                raise NotFoundError(f"no ticket with id {ticket_id!r}")
            rows = conn.execute(
                "SELECT body FROM events WHERE ticket_id = ? AND seq > ? ORDER BY seq",
                (key, after_seq),
            ).fetchall()
            if not rows and (
                conn.execute("SELECT 1 FROM tickets WHERE id = ?", (key,)).fetchone() is None
            ):
                raise NotFoundError(f"no ticket with id {ticket_id!r}")
        event = self._events.event
        return [event(row[0]) for row in rows]

    def query(self, query: TicketQuery) -> Page[Ticket]:
        """Tickets matching ``query``, in its order, one page at a time."""
        if not isinstance(query, TicketQuery):
            raise ValidationError(f"query takes a TicketQuery, got {type(query).__name__}")
        sql, params = _select(query)
        with self._connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return Page.cut([self._ticket(row) for row in rows], query)

    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        """How many tickets of ``requester_id`` were created after ``since``, counted up to
        ``limit`` (:class:`helpkit.ports.RequesterCounts`): one count over the index of a
        requester's tickets by creation, no ticket decoded."""
        requester_id, since, limit = count_arguments(requester_id, since, limit)
        with self._connection() as conn:
            row = conn.execute(_COUNT_RECENT_REQUESTS, (requester_id, _micros(since), limit))
            return int(row.fetchone()[0])

    def query_states(self, query: TicketQuery) -> tuple[Page[Ticket], list[str | None]]:
        """:meth:`query`, and the timer state kept for each ticket of the page (see
        :class:`helpkit.ports.TimerStates`), read in one more query per 500 tickets."""
        page = self.query(query)
        ids = [ticket.id for ticket in page]
        kept: dict[str, str] = {}
        with self._connection() as conn:
            for start in range(0, len(ids), _STATES_PER_QUERY):
                chunk = ids[start : start + _STATES_PER_QUERY]
                kept.update(
                    conn.execute(
                        "SELECT id, timer_state FROM tickets "
                        f"WHERE id IN ({', '.join('?' * len(chunk))}) "
                        "AND timer_state IS NOT NULL",
                        chunk,
                    ).fetchall()
                )
        return page, [kept.get(ticket_id) for ticket_id in ids]

    # ------------------------------------------------------------ contacts

    def save_contact(self, contact: Contact) -> None:
        """Insert (version 1) or update (stored version + 1); emails belong to one contact."""
        check_record(contact, Contact)
        self._save_keyed(
            _CONTACTS, contact.id, contact.version, _contact_columns(contact), contact.emails
        )

    def _save_keyed(
        self,
        table: _KeyedTable,
        ident: str,
        version: int,
        columns: dict[str, object],
        keys: Sequence[str],
    ) -> None:
        """Save a versioned row and the unique keys (emails, domains) it owns, in one
        transaction: nothing is written if the version is stale or a key is another's."""
        with self._transaction() as conn:
            _write_keyed(conn, table, ident, version, columns, keys)

    def get_contact(self, contact_id: str) -> Contact:
        """A contact by id."""
        row = self._fetch_one("SELECT data FROM contacts WHERE id = ?", contact_id)
        if row is None:
            raise NotFoundError(f"no contact with id {contact_id!r}")
        return self._contact_of(row[0])

    def contact_by_email(self, email: str) -> Contact:
        """The contact owning ``email`` (case-insensitive)."""
        try:
            key = normalize_email(email)
        except ValidationError:
            raise NotFoundError(f"no contact with email {email!r}") from None
        row = self._fetch_one(
            "SELECT c.data FROM contact_emails e JOIN contacts c ON c.id = e.contact_id "
            "WHERE e.email = ?",
            key,
        )
        if row is None:
            raise NotFoundError(f"no contact with email {email!r}")
        contact: Contact = _decoded(_decode_contact, row[0], "contact")
        return contact

    def find_contacts(self, text: str, *, limit: int = 50) -> list[Contact]:
        """Contacts whose normalized name contains the normalized ``text``, by name then id."""
        check_limit(limit)
        rows = self._search("contacts", normalize_name(text), limit)
        return [_decoded(_decode_contact, row[0], "contact") for row in rows]

    def _search(self, table: str, key: str, limit: int) -> list[tuple[str]]:
        # instr() is an exact substring test on the folded name: unlike LIKE it has no
        # wildcards to escape and no ASCII-only case folding of its own.
        with self._connection() as conn:
            rows: list[tuple[str]] = conn.execute(
                f"SELECT data FROM {table} WHERE instr(name_key, ?) > 0 "
                "ORDER BY name_key, id LIMIT ?",
                (key, limit),
            ).fetchall()
        return rows

    def _fetch_one(self, sql: str, key: object) -> tuple[str] | None:
        if not isinstance(key, str):
            return None
        with self._connection() as conn:
            row: tuple[str] | None = conn.execute(sql, (key,)).fetchone()
        return row

    # ------------------------------------------------------------ organizations

    def save_organization(self, organization: Organization) -> None:
        """Insert or update (versioned like contacts); domains belong to one organization."""
        check_record(organization, Organization)
        org = organization
        self._save_keyed(
            _ORGANIZATIONS,
            org.id,
            org.version,
            {"name_key": org.name_key, "data": _dumps(_encode_organization(org))},
            org.domains,
        )

    def get_organization(self, organization_id: str) -> Organization:
        """An organization by id."""
        row = self._fetch_one("SELECT data FROM organizations WHERE id = ?", organization_id)
        if row is None:
            raise NotFoundError(f"no organization with id {organization_id!r}")
        org: Organization = _decoded(_decode_organization, row[0], "organization")
        return org

    def organization_by_domain(self, domain: str) -> Organization:
        """The organization owning ``domain`` (case-insensitive)."""
        try:
            key = normalize_domain(domain)
        except ValidationError:
            raise NotFoundError(f"no organization with domain {domain!r}") from None
        row = self._fetch_one(
            "SELECT o.data FROM organization_domains d "
            "JOIN organizations o ON o.id = d.organization_id WHERE d.domain = ?",
            key,
        )
        if row is None:
            raise NotFoundError(f"no organization with domain {domain!r}")
        org: Organization = _decoded(_decode_organization, row[0], "organization")
        return org

    def find_organizations(self, text: str, *, limit: int = 50) -> list[Organization]:
        """Organizations whose normalized name contains the normalized ``text``, by name."""
        check_limit(limit)
        rows = self._search("organizations", normalize_name(text), limit)
        return [_decoded(_decode_organization, row[0], "organization") for row in rows]

    # ------------------------------------------------------------ agents and groups

    def save_agent(self, agent: Agent) -> None:
        """Insert or replace an agent."""
        check_record(agent, Agent)
        self._replace("agents", agent.id, _dumps(_encode_agent(agent)))

    def get_agent(self, agent_id: str) -> Agent:
        """An agent by id."""
        row = self._fetch_one("SELECT data FROM agents WHERE id = ?", agent_id)
        if row is None:
            raise NotFoundError(f"no agent with id {agent_id!r}")
        return self._agent_of(row[0])

    def list_agents(self) -> list[Agent]:
        """All agents, by id."""
        return self._list("agents", _decode_agent)

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        """The agents of those email addresses, by id (:class:`helpkit.ports.AgentEmails`):
        SQLite looks each address up in the index of the rows' addresses, and only the rows
        found are decoded (a row that is not JSON is returned too, for its decoding to fail as
        in list_agents). An address with a NUL names no agent (SQLite's comparison of text
        would stop at it)."""
        wanted = [a for a in asked_addresses(addresses) if "\x00" not in a]
        with self._connection() as conn:
            rows = conn.execute(_AGENTS_BY_EMAIL, (_dumps(wanted),)).fetchall()
        return [_decoded(_decode_agent, row[0], "agents") for row in rows]

    def save_group(self, group: Group) -> None:
        """Insert or replace a group."""
        check_record(group, Group)
        self._replace("groups", group.id, _dumps(_encode_group(group)))

    def get_group(self, group_id: str) -> Group:
        """A group by id."""
        row = self._fetch_one("SELECT data FROM groups WHERE id = ?", group_id)
        if row is None:
            raise NotFoundError(f"no group with id {group_id!r}")
        group: Group = _decoded(_decode_group, row[0], "group")
        return group

    def list_groups(self) -> list[Group]:
        """All groups, by id."""
        return self._list("groups", _decode_group)

    def _replace(self, table: str, ident: str, data: str) -> None:
        with self._transaction() as conn:
            conn.execute(f"INSERT OR REPLACE INTO {table} (id, data) VALUES (?, ?)", (ident, data))

    def _list(self, table: str, decode: Callable[[Any], Any]) -> list[Any]:
        with self._connection() as conn:
            rows = conn.execute(f"SELECT data FROM {table} ORDER BY id").fetchall()
        return [_decoded(decode, row[0], table) for row in rows]

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every connection; any later call raises StoreError. Closing twice is harmless.

        A connection another thread is using right now is closed when that call returns.
        """
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            for conn in idle:
                self._open.discard(conn)
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.close()
        with self._cache_lock:
            self._cache.clear()
        self._events.clear()
        for conn in idle:
            conn.close()
