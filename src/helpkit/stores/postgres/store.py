# Over 400 lines: PostgresStore is one class whose methods share its pool.
"""The PostgreSQL store itself: :class:`PostgresStore` and its connection pool.

Each call borrows a connection from a psycopg pool, whose connections are set up once
(``search_path`` is the tenant's schema and nothing else; ``synchronous_commit`` as the URL
says) and checked when borrowed, without a round trip (:func:`_check_borrowed`), so a
connection the server dropped (a restart) is replaced before a call uses it. Writes are
transactions; reads are single statements in autocommit.

A commit of one change (what a command makes) is one statement, the schema's
``commit_change`` function, in autocommit: one round trip (see
:mod:`helpkit.stores.postgres.commit`). A batch of several changes locks each ticket's row as
it reads it (``FOR UPDATE``), checks its ``expected_seq``, numbers new tickets from a counter
row updated in the same transaction, and gives the events their feed positions last, under the
feed lock; it runs in pipeline mode (a statement whose result is not needed is sent without
waiting for it): two round trips, and one more per further change. The store keeps the states
it committed or read, decoded, and the last one of each ticket for the pipeline
(:class:`helpkit.ports.RecentTickets`).
"""

from __future__ import annotations

import select as _select
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import partial
from typing import Any, Final, cast

import attrs
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import ConnStatus
from psycopg_pool import ConnectionPool

from helpkit._checks import check_text
from helpkit.errors import (
    ConflictError,
    DuplicateError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from helpkit.events import Event, event_from_dict
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
from helpkit.stores.postgres.call import USABLE as CALLS_BY_LIBPQ
from helpkit.stores.postgres.call import call, numbered, text_values
from helpkit.stores.postgres.claims import DueClaimsMixin
from helpkit.stores.postgres.commit import (
    COMMIT_CHANGE,
    PARAMETER_COUNT,
    call_parameters,
    direct_parameters,
    refusal,
    takes_one_statement,
)
from helpkit.stores.postgres.errors import TRANSLATED as _TRANSLATED
from helpkit.stores.postgres.errors import translate, translated
from helpkit.stores.postgres.feed import (
    INSERT_EVENTS,
    SETTLE,
    FeedAndOutbox,
    events_json,
    settle_parameters,
)
from helpkit.stores.postgres.inbox import InboxMixin, write_receipts
from helpkit.stores.postgres.knowledge import KnowledgeMixin
from helpkit.stores.postgres.parties import (
    GUARDED_COMMIT,
    PARTIES_STILL,
    Guard,
    KeptPartiesMixin,
    parties_moved,
)
from helpkit.stores.postgres.pool import POOL
from helpkit.stores.postgres.privacy import PrivacyMixin
from helpkit.stores.postgres.query_sql import select
from helpkit.stores.postgres.routing import RoutingMixin, write_routing
from helpkit.stores.postgres.schema import AGENT_EMAIL_KEY, FEED_LOCK, inspect, migrate
from helpkit.stores.postgres.timer_rows import TimerRowsMixin
from helpkit.stores.postgres.url import check_schema_name
from helpkit.stores.postgres.wakeup import NOTIFY, WakeupMixin, channel
from helpkit.stores.sqlite.encoding import (
    _TAGS,
    _TICKET_COLUMNS,
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
from helpkit.tickets import Ticket

__all__ = ["PostgresStore", "schema_exists"]

# Decoded ticket states kept per store (as in the SQLite store: a queue polled again and again
# decodes only the tickets that changed).
_CACHE_SIZE: Final = 8192

_INSERT_TICKET: Final = (
    f"INSERT INTO tickets ({', '.join(_TICKET_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_TICKET_COLUMNS))})"
)
# A ticket's row, locked until the commit ends: its seq cannot change after it was checked.
_READ_TICKET: Final = "SELECT number, seq, tags FROM tickets WHERE id = %s FOR UPDATE"
# Every column but the id (the row is locked, and its seq was checked under the lock).
_UPDATE_TICKET: Final = (
    f"UPDATE tickets SET {', '.join(f'{c} = %s' for c in _TICKET_COLUMNS[1:])} "
    "WHERE id = %s AND seq = %s"
)
# A commit's events in one statement, numbered after the last position in the order given.
# Run under the feed lock, in a statement of its own after the lock's: the statement's
# snapshot then sees every transaction that held the lock before.
_NEXT_NUMBER: Final = (
    "UPDATE ticket_numbers SET last_number = last_number + 1 RETURNING last_number"
)
_KEEP_NUMBER: Final = "UPDATE ticket_numbers SET last_number = greatest(last_number, %s)"
# A new contact and its addresses in one statement, refusing nothing: whether the contact row
# was inserted (not if its id is stored) and the addresses inserted (not those another
# contact owns). The caller says why, and its transaction rolls back.
_INSERT_NEW_CONTACT: Final = (
    "WITH c AS (INSERT INTO contacts (id, name_key, organization_id, version, data) "
    "VALUES (%s, %s, %s, 1, %s) ON CONFLICT (id) DO NOTHING RETURNING id), "
    "e AS (INSERT INTO contact_emails (email, contact_id) "
    "SELECT email, c.id FROM c, unnest(%s::text[]) AS email "
    "ON CONFLICT (email) DO NOTHING RETURNING email) "
    "SELECT EXISTS (SELECT 1 FROM c), ARRAY(SELECT email FROM e)"
)
# An agent's and a contact's data in one statement (one snapshot): NULL for a missing one.
_AGENT_AND_CONTACT: Final = (
    "SELECT (SELECT data FROM agents WHERE id = %s), (SELECT data FROM contacts WHERE id = %s)"
)
# The agents whose JSON's address is one of an array's, looked up in the agents_email index
# (schema version 9), whose expression this one must be for PostgreSQL to use it.
_AGENTS_BY_EMAIL: Final = (
    f"SELECT data FROM agents WHERE {AGENT_EMAIL_KEY} = ANY(%s::text[]) ORDER BY id"
)
# A requester's tickets created after an instant, counted up to a limit: the tickets_requester
# index (requester_id, created_us, id) holds both columns.
_COUNT_RECENT_REQUESTS: Final = (
    "SELECT count(*) FROM (SELECT 1 FROM tickets WHERE requester_id = %s AND created_us > %s "
    "LIMIT %s) AS recent"
)
_KEEP_STATE: Final = (
    "INSERT INTO timer_states (ticket_id, state) VALUES (%s, %s) "
    "ON CONFLICT (ticket_id) DO UPDATE SET state = excluded.state"
)


class _KeyedTable:
    """A versioned table whose rows own unique keys kept in a second table."""

    __slots__ = ("key", "keys", "kind", "name", "owner")

    def __init__(self, name: str, kind: str, keys: str, key: str, owner: str) -> None:
        self.name = name  # e.g. contacts
        self.kind = kind  # what a row is, in messages: contact
        self.keys = keys  # the table of keys: contact_emails
        self.key = key  # its key column: email
        self.owner = owner  # its column naming the owning row: contact_id


_CONTACTS: Final = _KeyedTable("contacts", "contact", "contact_emails", "email", "contact_id")
_ORGANIZATIONS: Final = _KeyedTable(
    "organizations", "organization", "organization_domains", "domain", "organization_id"
)


def _storable(key: object) -> bool:
    """Whether ``key`` can be looked up: text PostgreSQL can hold (no NUL). Anything else
    names nothing stored (the domain refuses such ids), so the lookup finds nothing."""
    return isinstance(key, str) and "\x00" not in key


def _where(conninfo: str, schema: str) -> str:
    """The database and schema, for messages (never the password)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return f"schema {schema!r}"
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    return f"postgresql://{host}:{port}/{params.get('dbname', '')} (schema {schema!r})"


def _set_search_path(conn: psycopg.Connection[Any], schema: str) -> None:
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


_POLL: Final = hasattr(_select, "poll")


def _readable(fd: int) -> bool:
    """Whether the socket ``fd`` has something to read (or is at its end), without waiting."""
    if _POLL:
        poller = _select.poll()
        poller.register(fd, _select.POLLIN)
        return bool(poller.poll(0))
    ready, _, _ = _select.select([fd], [], [], 0)
    return bool(ready)


def _check_borrowed(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it is about to hand out, without a round trip.

    An idle connection has nothing to read: one the server dropped (a restart, a terminated
    backend) has the server's last message or the end of the stream. Only then is it asked
    (a round trip), which raises for a broken connection, and the pool replaces it. (A
    closed connection's status is not OK either.) The store's own connections
    (:class:`_Connection`) keep the poll object of their socket, made on their first check
    (a connection keeps its socket while it is open).
    """
    pgconn = conn.pgconn
    if pgconn.status != ConnStatus.OK:
        ConnectionPool.check_connection(conn)
    elif _POLL and type(conn) is _Connection:
        poller = conn._poller
        if poller is None:
            poller = conn._poller = _select.poll()
            poller.register(pgconn.socket, _select.POLLIN)
        if poller.poll(0):
            ConnectionPool.check_connection(conn)
    elif _readable(pgconn.socket):
        ConnectionPool.check_connection(conn)


# The one-statement commits sent through libpq (helpkit.stores.postgres.call), by their
# psycopg text: the name they are prepared under on each connection, and their text in
# PostgreSQL's placeholders.
_CALLS: Final = {
    COMMIT_CHANGE: (b"helpkit_commit_change", numbered(COMMIT_CHANGE, PARAMETER_COUNT)),
    GUARDED_COMMIT: (b"helpkit_guarded_commit", numbered(GUARDED_COMMIT, PARAMETER_COUNT + 4)),
}


def _planned(
    changes: Sequence[TicketChange], states: Sequence[str | None]
) -> tuple[list[_Prepared], list[tuple[str, str]]]:
    """The changes of helpkit's pipeline prepared for the batch path (their values not
    checked again), and the timer states to keep (ticket id, state); ValidationError for a
    state PostgreSQL text cannot hold."""
    prepared = [_Prepared(change, checked=True) for change in changes]
    kept = [
        (item.change.ticket.id, state)
        for item, state in zip(prepared, states, strict=True)
        if state is not None and item.change.events and item.invalid is None
    ]
    for _, state in kept:
        # PostgreSQL text is UTF-8 without NUL: refuse what it cannot hold here, not inside
        # the transaction.
        try:
            state.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(f"a timer state cannot be stored: {exc}") from None
        if "\x00" in state:
            raise ValidationError("a timer state cannot be stored: it holds a NUL character")
    return prepared, kept


@attrs.define
class _Settlement:
    """The relay's results a commit settles (:meth:`PostgresStore.commit_settled`), and how
    many it stored once committed."""

    results: list[Delivery]
    owner: str
    stored: int = 0


def _read_one(conn: psycopg.Connection[Any], query: str, value: Any) -> Any:
    """The first column of the first row ``query`` (of one parameter, ``value``) reads on
    ``conn`` (autocommit), or None."""
    row = conn.execute(query, (value,)).fetchone()
    return None if row is None else row[0]


def _storable_state(state: object) -> bool:
    """Whether the timer state ``state`` is text PostgreSQL holds as it is (ASCII without
    NUL): the one-statement path's quick check; anything else goes the general way, which
    checks it (and says why it cannot be stored)."""
    return isinstance(state, str) and state.isascii() and "\x00" not in state


def _check_new_contact(
    conn: psycopg.Connection[Any], contact: Contact, row: tuple[Any, ...] | None
) -> None:
    """Refuse the new ``contact`` whose insert (``_INSERT_NEW_CONTACT``) gave ``row``:
    ConflictError for a stored id, DuplicateError for an address another contact owns."""
    assert row is not None
    inserted, emails = row
    if not inserted:
        stored = conn.execute(
            "SELECT version FROM contacts WHERE id = %s", (contact.id,)
        ).fetchone()
        check_version(_CONTACTS.kind, contact.id, None if stored is None else stored[0], 1)
        raise ConflictError(f"contact {contact.id!r} changed while it was saved")
    taken = [email for email in contact.emails if email not in set(emails)]
    if taken:
        owner = conn.execute(
            "SELECT contact_id FROM contact_emails WHERE email = %s", (taken[0],)
        ).fetchone()
        raise DuplicateError(
            f"email {taken[0]!r} already belongs to contact {None if owner is None else owner[0]!r}"
        )


class _Connection(psycopg.Connection[tuple[Any, ...]]):
    """A pooled connection that keeps one cursor for the store's single statements: a
    cursor's adapters remember how each parameter type is sent, which a new cursor works out
    again."""

    _kept: psycopg.Cursor[tuple[Any, ...]] | None = None
    _statements: set[bytes] | None = None
    _poller: Any = None  # the poll object of its socket (see _check_borrowed)

    def prepared_statements(self) -> set[bytes]:
        """The names of the statements :func:`~helpkit.stores.postgres.call.call` prepared
        on this connection."""
        statements = self._statements
        if statements is None:
            statements = self._statements = set()
        return statements

    def kept_cursor(self) -> psycopg.Cursor[tuple[Any, ...]]:
        """The connection's kept cursor (only its borrower uses it, one statement at a time)."""
        kept = self._kept
        if kept is None or kept.closed:
            kept = self._kept = self.cursor()
        return kept


def schema_exists(conninfo: str, schema: str, *, connect_timeout: int = 10) -> bool:
    """Whether ``schema`` holds helpkit's tables (of a version this helpkit reads); reads
    only. SchemaError for a schema helpkit refuses, StoreError when the server cannot be
    reached."""
    check_schema_name(schema)
    with translated(_where(conninfo, schema)):
        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=connect_timeout)
        try:
            _set_search_path(conn, schema)
            return inspect(conn, schema) in ("current", "older")
        finally:
            conn.close()


class PostgresStore(
    FeedAndOutbox,
    DueClaimsMixin,
    TimerRowsMixin,
    WakeupMixin,
    InboxMixin,
    RoutingMixin,
    PrivacyMixin,
    KnowledgeMixin,
    KeptPartiesMixin,
):
    """A :class:`helpkit.ports.Store` in one schema of a PostgreSQL database.

    ``conninfo`` is a libpq connection string or URL (``postgresql://user@host:5432/db``);
    ``schema`` the tenant's schema (created with its tables when missing, if ``create``).
    ``pool_min`` and ``pool_max`` bound the pool's connections; ``timeout`` is how long
    (seconds) a call waits for a free connection before StoreError. ``synchronous_commit``
    False sets PostgreSQL's ``synchronous_commit = off``: commits return before their WAL
    reaches the disk, so a server crash may lose the last ones (never corrupting anything).
    ``cache`` is how many decoded ticket states the store keeps.
    """

    capabilities: frozenset[str] = frozenset(
        {
            Capability.PERSISTENT,
            Capability.MULTIPROCESS,
            Capability.CHANGE_FEED,
            Capability.OUTBOX,
            Capability.SETTLED_COMMIT,
            Capability.CLAIMED_ENQUEUE,
            Capability.TIMER_STATE,
            Capability.DUE_CLAIMS,
            Capability.TIMER_ROWS,
            Capability.DUE_TIMER_CLAIMS,
            Capability.FEED_WAKEUP,
            Capability.INBOX,
            Capability.ROUTING,
            Capability.RECENT_TICKETS,
            Capability.REDACTION,
            Capability.PURGE,
            Capability.KNOWLEDGE,
            Capability.PARTY_READS,
            Capability.NEW_CONTACTS,
            Capability.TICKET_READS,
            Capability.KEPT_PARTIES,
            Capability.AGENT_EMAILS,
            Capability.REQUESTER_COUNTS,
        }
    )

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "helpkit",
        pool_min: int = 1,
        pool_max: int = 10,
        timeout: float = 10.0,
        connect_timeout: int = 10,
        synchronous_commit: bool = True,
        cache: int = _CACHE_SIZE,
        create: bool = True,
    ) -> None:
        if not isinstance(conninfo, str):
            raise ValidationError(f"conninfo must be a string; got {type(conninfo).__name__}")
        self.schema = check_schema_name(schema)
        for name, value, low in (("pool_min", pool_min, 0), ("pool_max", pool_max, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValidationError(f"{name} must be an integer >= {low}; got {value!r}")
        if pool_max < pool_min:
            raise ValidationError(f"pool_max ({pool_max}) is below pool_min ({pool_min})")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not timeout > 0:
            raise ValidationError(f"timeout must be a number of seconds > 0; got {timeout!r}")
        if not isinstance(cache, int) or isinstance(cache, bool) or cache < 0:
            raise ValidationError(f"cache must be a number of tickets >= 0; got {cache!r}")
        self.conninfo = conninfo
        self.synchronous_commit = bool(synchronous_commit)
        self.cache_size = cache
        self._cache: OrderedDict[tuple[str, int], Ticket] = OrderedDict()
        # The state of the highest seq this store object committed or read, per ticket.
        self._recent: OrderedDict[str, Ticket] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._init_parties()  # the agents and contacts kept (as many as tickets)
        self._listener = None
        self._listener_lock = threading.Lock()
        self._channel = channel(self.schema)
        self.wakeups = 0
        self._where = _where(conninfo, self.schema)
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": connect_timeout,
        }
        self._prepare_schema(create)
        # The connection given back last is lent first (see helpkit.stores.postgres.pool).
        self._pool: ConnectionPool[_Connection] = POOL(
            conninfo,
            connection_class=_Connection,
            kwargs=self._connect_kwargs,
            min_size=pool_min,
            max_size=pool_max,
            timeout=float(timeout),
            configure=self._configure,
            check=_check_borrowed,
            name=f"helpkit-{self.schema}",
            open=False,
        )
        with translated(self._where):
            self._pool.open()

    def __repr__(self) -> str:
        state = "closed" if self._pool.closed else "open"
        return f"<PostgresStore {self._where} {state}>"

    # ------------------------------------------------------------ connections

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Set up a new connection: the tenant's schema alone on the search path (no
        ``public``: an unqualified name is this schema's table or nothing)."""
        _set_search_path(conn, self.schema)
        if not self.synchronous_commit:
            conn.execute("SET synchronous_commit TO off")

    def _prepare_schema(self, create: bool) -> None:
        """Check the schema before anything writes to it; create or upgrade it (if
        ``create``) under the migration lock."""
        with translated(self._where):
            conn = psycopg.connect(self.conninfo, **self._connect_kwargs)
            try:
                self._configure(conn)
                state = inspect(conn, self.schema)
                if state in ("missing", "empty") and not create:
                    raise StoreError(
                        f"no helpkit schema at {self._where}: run 'helpkit init' to create "
                        "it, or name another with ?schema=..."
                    )
                if state != "current":
                    migrate(conn, self.schema)
            finally:
                conn.close()

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Cursor[Any]]:
        """A pooled connection's cursor for reads (each statement its own transaction)."""
        with translated(self._where), self._pool.connection() as conn:
            yield conn.kept_cursor()

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A pooled connection's cursor inside one transaction (rolled back on any error)."""
        with translated(self._where), self._pool.connection() as conn, conn.transaction():
            yield conn.cursor()

    @contextmanager
    def _pipelined(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in pipeline mode inside one transaction: each statement is sent
        without waiting for its result, until a result is read (which waits for it and every
        statement before) or the block ends (the COMMIT is sent with the last writes, and
        waited for). An error raises where the results are read, at the latest on leaving the
        block, and everything is rolled back.

        ``BEGIN`` and ``COMMIT`` are plain statements of the pipeline, not psycopg's
        ``transaction()``, which would wait for the ``BEGIN`` and again before the ``COMMIT``
        (two more round trips)."""
        with translated(self._where), self._pool.connection() as conn:
            try:
                with conn.pipeline():
                    conn.execute("BEGIN")
                    yield conn
                    conn.execute("COMMIT")
            except BaseException:
                # A no-op if the transaction ended; on a lost connection the pool discards it.
                with suppress(psycopg.Error):
                    conn.rollback()
                raise

    # ------------------------------------------------------------ tickets

    def commit(self, changes: Sequence[TicketChange]) -> list[TicketChange]:
        """Append events and save states in one transaction; ConflictError on a stale seq.

        Changes apply in order, so a batch may carry several changes of one ticket. Nothing
        is written unless every change applies. The events get their feed positions last,
        under the feed lock, which the transaction holds until it has committed: a
        transaction that takes positions after another therefore commits after it. The
        changes' receipts are written in the same transaction (DuplicateError, nothing
        written, when a key is held by a receipt not suspended).
        """
        return self._commit([_Prepared(change) for change in changes], ())

    def commit_planned(
        self, changes: Sequence[TicketChange], states: Sequence[str | None]
    ) -> list[TicketChange]:
        """:meth:`commit` for the changes of helpkit's pipeline (their values are not checked
        again), keeping each ticket's timer state (see :class:`helpkit.ports.TimerStates`)."""
        if not isinstance(states, Sequence) or len(states) != len(changes):
            raise ValidationError(
                f"commit_planned takes one state per change: {len(changes)} changes, "
                f"states {states!r:.60}"
            )
        for state in states:
            if state is not None and not isinstance(state, str):
                raise ValidationError(f"a timer state is text or None; got {state!r:.60}")
        if len(changes) == 1:
            # Most commits of the pipeline: one change, encoded straight into the call of
            # commit_change (direct_parameters; None sends it the general way).
            timer_state = states[0]
            if timer_state is None or _storable_state(timer_state):
                params = direct_parameters(changes[0], timer_state, self._channel)
                if params is not None:
                    guard = self._take_guard()
                    number = self._commit_one(params, changes[0], guard)
                    written = [changes[0].with_number(number)]
                    self._cache_written(written)
                    return written
        return self._commit(*_planned(changes, states))

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
        the changes as written and how many results were stored. The results are settled in
        the commit's transaction after its seq checks, before the feed lock: a refused
        commit stores none of them."""
        check_text(owner, "owner")
        valid = [check_delivery(d, checked=True) for d in results]
        if not changes:
            return [], self.settle(valid, owner=owner, checked=True)
        kept: list[tuple[str, str]] = []
        if states is None:
            prepared = [_Prepared(change) for change in changes]
        else:
            prepared, kept = _planned(changes, states)
        settlement = _Settlement(valid, owner)
        return self._commit(prepared, kept, settlement), settlement.stored

    def _commit(
        self,
        prepared: list[_Prepared],
        states: Sequence[tuple[str, str]],
        settlement: _Settlement | None = None,
    ) -> list[TicketChange]:
        guard = self._take_guard()
        if not prepared:
            with self._reading():
                return []
        if settlement is None and len(prepared) == 1 and takes_one_statement(prepared[0]):
            item = prepared[0]
            params = call_parameters(item, states[0][1] if states else None, self._channel)
            number = self._commit_one(params, item.change, guard)
            written = [item.change.with_number(number)]
            self._cache_written(written)
            return written
        contacts = new_contacts([item.change for item in prepared if item.invalid is None])
        with self._pipelined() as conn:
            # A decision on kept parties: checked first, its result read before the COMMIT.
            still = None
            if guard is not None:
                still = conn.execute(PARTIES_STILL, (guard[1], guard[3], guard[0], guard[2]))
            # First: a change may name its new requester. Their results are read with the
            # first change's row (no round trip of their own), and said before its errors.
            check = self._insert_new_contacts(conn, contacts) if contacts else None
            numbers = []
            events: list[tuple[object, ...]] = []
            for item in prepared:
                try:
                    number, rows = self._apply(conn, item)
                finally:
                    if check is not None:
                        checking, check = check, None
                        checking()
                numbers.append(number)
                events.extend(rows)
            if states:
                conn.cursor().executemany(_KEEP_STATE, states)
            receipts = receipt_keys([item.change for item in prepared])
            if receipts:
                # After the seq checks, before the feed lock (held for as short a time as
                # possible): a key held by a receipt not suspended rolls everything back.
                write_receipts(conn, receipts.values())
            moved = routing_states([item.change for item in prepared])
            if moved:
                # Likewise: a group whose version moved since it was read rolls back all.
                write_routing(conn, moved)
            settled = []
            if settlement is not None:
                # Likewise: the relay's results, stored exactly when the changes are (a
                # result of a delivery the owner no longer holds updates no row).
                settled = [
                    conn.execute(SETTLE, settle_parameters(result, settlement.owner))
                    for result in settlement.results
                ]
            if still is not None:
                # Read before the feed lock is taken (it is held for as short as possible).
                row = still.fetchone()
                if row is None or not row[0]:
                    raise parties_moved(cast(Guard, guard))
            if events:
                conn.execute(FEED_LOCK)
                conn.execute(INSERT_EVENTS, (events_json(events),))
                # Delivered to the listeners when (and only if) this transaction commits.
                conn.execute(NOTIFY, (self._channel,))
        if settlement is not None:
            # Read once the pipeline has given every result (the block has ended).
            settlement.stored = sum(max(cursor.rowcount, 0) for cursor in settled)
        written = [
            item.change.with_number(number) for item, number in zip(prepared, numbers, strict=True)
        ]
        self._cache_written(written)
        return written

    @staticmethod
    def _insert_new_contacts(
        conn: psycopg.Connection[Any], contacts: Sequence[Contact]
    ) -> Callable[[], None]:
        """Inside a commit's transaction (pipeline mode): send the inserts of new contacts
        (version 1) and their addresses, without reading their results; the check to call
        once they are read: ConflictError for a stored id, DuplicateError for an address
        another contact owns (the transaction then rolls back)."""
        sent = [
            (
                contact,
                conn.execute(
                    _INSERT_NEW_CONTACT,
                    (
                        contact.id,
                        contact.name_key,
                        contact.organization_id,
                        _dumps(_encode_contact(contact)),
                        list(contact.emails),
                    ),
                ),
            )
            for contact in contacts
        ]

        def check() -> None:
            for contact, cursor in sent:
                _check_new_contact(conn, contact, cursor.fetchone())

        return check

    def _cache_written(self, written: Sequence[TicketChange]) -> None:
        """Keep the states just committed among the decoded ones (as the SQLite store does):
        the next command on these tickets decodes no JSON. A state at a given seq is committed
        once (the commit is guarded by the seq), and the stored form holds what the state
        holds, so it is what a read would decode."""
        if not self.cache_size:
            return
        cache = self._cache
        with self._cache_lock:
            for change in written:
                if change.events:
                    key = (change.ticket.id, change.ticket.seq)
                    cache[key] = change.ticket
                    cache.move_to_end(key)
                    self._remember(change.ticket)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)

    def _remember(self, ticket: Ticket) -> None:
        """Keep ``ticket`` as the recent state of its id unless one of a higher seq is kept
        (under the cache lock)."""
        recent = self._recent
        kept = recent.get(ticket.id)
        if kept is None or kept.seq <= ticket.seq:
            recent[ticket.id] = ticket
            recent.move_to_end(ticket.id)
            if len(recent) > self.cache_size:
                recent.popitem(last=False)

    def _forget(self, ticket_ids: Sequence[str]) -> None:
        """Drop what this store object keeps of purged tickets (their recent states)."""
        with self._cache_lock:
            for ticket_id in ticket_ids:
                self._recent.pop(ticket_id, None)

    def recent_ticket(self, ticket_id: str) -> Ticket | None:
        """The state of ``ticket_id`` this store object last committed or read (of the
        highest seq), from memory: possibly stale (see :class:`helpkit.ports.RecentTickets`)."""
        with self._cache_lock:
            return self._recent.get(ticket_id) if isinstance(ticket_id, str) else None

    def _commit_one(
        self, params: tuple[Any, ...], change: TicketChange, guard: Guard | None
    ) -> int:
        """Commit ``change`` in one statement of parameters ``params`` (``call_parameters``'),
        its own transaction (see :mod:`helpkit.stores.postgres.commit`), guarded by the kept
        parties ``guard`` (see :mod:`helpkit.stores.postgres.parties`); the ticket's number.

        The connection is taken from the pool and given back without the pool's context
        (``connection()``), whose connection block would end the statement's transaction:
        in autocommit mode there is none to end, the server's reply has ended it (and
        ``putconn`` rolls back and replaces a connection left in any other state)."""
        statement = COMMIT_CHANGE
        if guard is not None:
            statement = GUARDED_COMMIT
            params = (guard[0], guard[2], *params, guard[1], guard[3])
        values = text_values(params) if CALLS_BY_LIBPQ else None
        # What translated(self._where) does, without a context manager's objects per call.
        try:
            pool = self._pool
            conn = pool.getconn()
            try:
                if values is None:
                    row = conn.kept_cursor().execute(statement, params, prepare=True).fetchone()
                    number = None if row is None else row[0]
                else:
                    name, query = _CALLS[statement]
                    text = call(conn, conn.prepared_statements(), name, query, values)
                    number = None if text is None else int(text)
            except psycopg.Error as exc:
                refused = refusal(exc, change, partial(_read_one, conn))
                if refused is None:
                    raise
                raise refused from None
            finally:
                pool.putconn(conn)
        except _TRANSLATED as exc:
            raise translate(exc, self._where) from exc
        if number is None:
            assert guard is not None  # commit_change returns a row; no row: not called
            raise parties_moved(guard)
        return int(number)

    def _apply(
        self, conn: psycopg.Connection[Any], item: _Prepared
    ) -> tuple[int, list[tuple[object, ...]]]:
        """Write one change's ticket row and tags (in pipeline mode: sent, not waited for);
        its number and its event rows (positions are given by ``commit``). The checks come in
        the reference store's order."""
        if item.invalid is not None:
            raise item.invalid
        change = item.change
        ticket_id = change.ticket.id
        reading = conn.execute(_READ_TICKET, (ticket_id,))
        numbering = None
        if change.expected_seq == 0 and change.ticket.number == 0 and change.events:
            # Most likely a new ticket: its number is taken in the same round trip as the
            # read. If the ticket exists after all, the stale check below raises and the
            # rollback gives the number back.
            numbering = conn.execute(_NEXT_NUMBER)
        stored = reading.fetchone()
        current_seq = stored[1] if stored is not None else 0
        if current_seq != change.expected_seq:
            raise self._stale(ticket_id, current_seq, change.expected_seq)
        number = change.ticket.number
        if not change.events:
            return (stored[0] if number == 0 and stored is not None else number), []
        if stored is None:
            if number == 0:
                # The counter row stays locked until this transaction ends: a concurrent
                # create waits, and a rollback gives the number back.
                counter = (numbering or conn.execute(_NEXT_NUMBER)).fetchone()
                assert counter is not None
                number = int(counter[0])
            else:
                owner = conn.execute(
                    "SELECT id FROM tickets WHERE number = %s", (number,)
                ).fetchone()
                if owner is not None:
                    raise DuplicateError(
                        f"ticket number {number} already belongs to ticket {owner[0]!r}"
                    )
                conn.execute(_KEEP_NUMBER, (number,))
        elif number == 0:
            number = stored[0]
        elif number != stored[0]:
            raise ValidationError(f"ticket {ticket_id!r} has number {stored[0]}; it cannot change")
        if item.rows_error is not None:
            raise item.rows_error
        row, event_rows = item.rows_with_number(number)
        if stored is None:
            # A concurrent create of the same id fails on the primary key (ConflictError).
            conn.execute(_INSERT_TICKET, row)
            old_tags: frozenset[str] = frozenset()
        else:
            # The row is locked since it was read at the expected seq, so this updates it
            # (its result is not waited for). Were that ever not so, the events' primary key
            # (ticket, seq) would still refuse a second writer of the same seqs.
            conn.execute(_UPDATE_TICKET, (*row[1:], ticket_id, change.expected_seq))
            old_tags = (
                item.tags if stored[2] == row[_TAGS] else frozenset(_loads(stored[2], "tags"))
            )
        if old_tags != item.tags:
            gone = old_tags - item.tags
            if gone:
                conn.cursor().executemany(
                    "DELETE FROM ticket_tags WHERE ticket_id = %s AND tag = %s",
                    [(ticket_id, tag) for tag in sorted(gone)],
                )
            added = item.tags - old_tags
            if added:
                conn.cursor().executemany(
                    "INSERT INTO ticket_tags (ticket_id, tag) VALUES (%s, %s)",
                    [(ticket_id, tag) for tag in sorted(added)],
                )
        return number, list(event_rows)

    @staticmethod
    def _stale(ticket_id: str, current: int | None, expected: int) -> ConflictError:
        at = "" if current is None else f"is at seq {current}, not {expected}: it "
        return ConflictError(
            f"ticket {ticket_id!r} {at}changed since it was read. Reload and retry."
        )

    def get_ticket(self, ticket_id: str) -> Ticket:
        """The current state of a ticket."""
        key: object = ticket_id
        row = None
        if _storable(key):
            with self._reading() as cur:
                row = cur.execute(
                    "SELECT id, seq, state FROM tickets WHERE id = %s", (key,)
                ).fetchone()
        else:
            self._check_open()
        if row is None:
            raise NotFoundError(f"no ticket with id {ticket_id!r}")
        return self._ticket(row)

    def get_tickets(self, ticket_ids: Sequence[str]) -> list[Ticket]:
        """The current states of ``ticket_ids``, in their order, read in one statement (one
        round trip); see :class:`helpkit.ports.TicketReads`."""
        keys = asked_ids(ticket_ids)
        wanted = list(dict.fromkeys(key for key in keys if _storable(key)))
        rows: dict[str, tuple[Any, ...]] = {}
        if wanted:
            with self._reading() as cur:
                for row in cur.execute(
                    "SELECT id, seq, state FROM tickets WHERE id = ANY(%s)", (wanted,)
                ).fetchall():
                    rows[row[0]] = row
        else:
            self._check_open()
        return in_asked_order(keys, rows, self._ticket)

    def get_ticket_by_number(self, number: int) -> Ticket:
        """The ticket with that number."""
        key: object = number
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        row = None
        if isinstance(key, int):
            with self._reading() as cur:
                row = cur.execute(
                    "SELECT id, seq, state FROM tickets WHERE number = %s", (int(key),)
                ).fetchone()
        else:
            self._check_open()
        if row is None:
            raise NotFoundError(f"no ticket #{number}")
        return self._ticket(row)

    def _check_open(self) -> None:
        if self._pool.closed:
            raise StoreError(f"this PostgresStore ({self._where}) is closed")

    def _ticket(self, row: tuple[Any, ...]) -> Ticket:
        # A ticket's state at a given seq never changes, so decoded states are cached by
        # (id, seq).
        key = (row[-3], row[-2])
        cache = self._cache
        with self._cache_lock:
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                if self.cache_size:
                    self._remember(hit)
                return hit
        ticket: Ticket = _decoded(_decode_ticket, row[-1], "ticket state")
        if not self.cache_size:
            return ticket
        with self._cache_lock:
            cache[key] = ticket
            self._remember(ticket)
            if len(cache) > self.cache_size:
                cache.popitem(last=False)
        return ticket

    def events(self, ticket_id: str, *, after_seq: int = 0) -> list[Event]:
        """A ticket's events with seq > ``after_seq``, in order."""
        key: object = ticket_id
        if not _storable(key):
            self._check_open()
            raise NotFoundError(f"no ticket with id {ticket_id!r}")
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT body FROM events WHERE ticket_id = %s AND seq > %s ORDER BY seq",
                (key, after_seq),
            ).fetchall()
            if not rows and (
                cur.execute("SELECT 1 FROM tickets WHERE id = %s", (ticket_id,)).fetchone() is None
            ):
                raise NotFoundError(f"no ticket with id {ticket_id!r}")
        return [_decoded(event_from_dict, row[0], "event") for row in rows]

    def query(self, query: TicketQuery) -> Page[Ticket]:
        """Tickets matching ``query``, in its order, one page at a time."""
        if not isinstance(query, TicketQuery):
            raise ValidationError(f"query takes a TicketQuery, got {type(query).__name__}")
        statement = select(query)
        if statement is None:
            self._check_open()
            return Page.cut([], query)
        text, params = statement
        with self._reading() as cur:
            rows = cur.execute(text, params).fetchall()
        return Page.cut([self._ticket(row) for row in rows], query)

    def query_states(self, query: TicketQuery) -> tuple[Page[Ticket], list[str | None]]:
        """:meth:`query`, and the timer state kept for each ticket of the page (see
        :class:`helpkit.ports.TimerStates`), read in one more statement."""
        page = self.query(query)
        ids = [ticket.id for ticket in page]
        if not ids:
            return page, []
        with self._reading() as cur:
            rows = cur.execute(
                "SELECT ticket_id, state FROM timer_states WHERE ticket_id = ANY(%s)", (ids,)
            ).fetchall()
        kept = {str(ticket_id): str(state) for ticket_id, state in rows}
        return page, [kept.get(ticket_id) for ticket_id in ids]

    # ------------------------------------------------------------ contacts

    def save_contact(self, contact: Contact) -> None:
        """Insert (version 1) or update (stored version + 1); emails belong to one contact."""
        check_record(contact, Contact)
        text = _dumps(_encode_contact(contact))
        self._save_keyed(
            _CONTACTS,
            contact.id,
            contact.version,
            {
                "name_key": contact.name_key,
                "organization_id": contact.organization_id,
                "data": text,
            },
            contact.emails,
        )
        # Kept as a read of the row gives it back.
        self._keep_contact(_decoded(_decode_contact, text, "contact"), text)

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
        with self._transaction() as cur:
            row = cur.execute(
                f"SELECT version FROM {table.name} WHERE id = %s FOR UPDATE", (ident,)
            ).fetchone()
            stored = row[0] if row is not None else None
            check_version(table.kind, ident, stored, version)
            for key in keys:
                owner = cur.execute(
                    f"SELECT {table.owner} FROM {table.keys} WHERE {table.key} = %s", (key,)
                ).fetchone()
                if owner is not None and owner[0] != ident:
                    raise DuplicateError(
                        f"{table.key} {key!r} already belongs to {table.kind} {owner[0]!r}"
                    )
            names = [*columns, "version"]
            values = (*columns.values(), version, ident)
            if stored is None:
                cur.execute(
                    f"INSERT INTO {table.name} ({', '.join(names)}, id) "
                    f"VALUES ({', '.join(['%s'] * len(values))})",
                    values,
                )
            else:
                assigned = ", ".join(f"{name} = %s" for name in names)
                cur.execute(f"UPDATE {table.name} SET {assigned} WHERE id = %s", values)
                cur.execute(f"DELETE FROM {table.keys} WHERE {table.owner} = %s", (ident,))
            if keys:
                cur.executemany(
                    f"INSERT INTO {table.keys} ({table.key}, {table.owner}) VALUES (%s, %s)",
                    [(key, ident) for key in keys],
                )

    def get_contact(self, contact_id: str) -> Contact:
        """A contact by id."""
        row = self._fetch_one("SELECT data FROM contacts WHERE id = %s", contact_id)
        if row is None:
            raise NotFoundError(f"no contact with id {contact_id!r}")
        contact: Contact = _decoded(_decode_contact, row[0], "contact")
        self._keep_contact(contact, row[0])
        return contact

    def contact_by_email(self, email: str) -> Contact:
        """The contact owning ``email`` (case-insensitive)."""
        try:
            key = normalize_email(email)
        except ValidationError:
            self._check_open()
            raise NotFoundError(f"no contact with email {email!r}") from None
        row = self._fetch_one(
            "SELECT c.data FROM contact_emails e JOIN contacts c ON c.id = e.contact_id "
            "WHERE e.email = %s",
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
        # strpos() is an exact substring test on the folded name: unlike LIKE it has no
        # wildcards to escape. A NUL cannot be in a stored name, so nothing contains it.
        if "\x00" in key:
            self._check_open()
            return []
        with self._reading() as cur:
            rows: list[tuple[str]] = cur.execute(
                f"SELECT data FROM {table} WHERE strpos(name_key, %s) > 0 "
                "ORDER BY name_key, id LIMIT %s",
                (key, limit),
            ).fetchall()
        return rows

    def _fetch_one(self, statement: str, key: object) -> tuple[str] | None:
        if not _storable(key):
            self._check_open()
            return None
        with self._reading() as cur:
            row: tuple[str] | None = cur.execute(statement, (key,)).fetchone()
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
        row = self._fetch_one("SELECT data FROM organizations WHERE id = %s", organization_id)
        if row is None:
            raise NotFoundError(f"no organization with id {organization_id!r}")
        org: Organization = _decoded(_decode_organization, row[0], "organization")
        return org

    def organization_by_domain(self, domain: str) -> Organization:
        """The organization owning ``domain`` (case-insensitive)."""
        try:
            key = normalize_domain(domain)
        except ValidationError:
            self._check_open()
            raise NotFoundError(f"no organization with domain {domain!r}") from None
        row = self._fetch_one(
            "SELECT o.data FROM organization_domains d "
            "JOIN organizations o ON o.id = d.organization_id WHERE d.domain = %s",
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
        text = _dumps(_encode_agent(agent))
        self._replace("agents", agent.id, text)
        self._keep_agent(_decoded(_decode_agent, text, "agent"), text)  # as a read gives it

    def get_agent(self, agent_id: str) -> Agent:
        """An agent by id."""
        row = self._fetch_one("SELECT data FROM agents WHERE id = %s", agent_id)
        if row is None:
            raise NotFoundError(f"no agent with id {agent_id!r}")
        agent: Agent = _decoded(_decode_agent, row[0], "agent")
        self._keep_agent(agent, row[0])
        return agent

    def agent_and_contact(self, agent_id: str, contact_id: str) -> tuple[Agent, Contact]:
        """An agent and a contact read in one statement (:class:`helpkit.ports.PartyReads`);
        NotFoundError for a missing agent first, then for a missing contact."""
        keys: tuple[object, object] = (agent_id, contact_id)
        if not _storable(keys[0]):
            self._check_open()
            raise NotFoundError(f"no agent with id {agent_id!r}")
        if not _storable(keys[1]):
            self.get_agent(agent_id)
            raise NotFoundError(f"no contact with id {contact_id!r}")
        with self._reading() as cur:
            row = cur.execute(_AGENT_AND_CONTACT, keys).fetchone()
        assert row is not None  # two scalar subqueries: always one row
        if row[0] is None:
            raise NotFoundError(f"no agent with id {agent_id!r}")
        if row[1] is None:
            raise NotFoundError(f"no contact with id {contact_id!r}")
        agent: Agent = _decoded(_decode_agent, row[0], "agent")
        contact: Contact = _decoded(_decode_contact, row[1], "contact")
        self._keep_agent(agent, row[0])
        self._keep_contact(contact, row[1])
        return agent, contact

    def list_agents(self) -> list[Agent]:
        """All agents, by id."""
        return self._list("agents", _decode_agent)

    def agents_by_email(self, addresses: Collection[str]) -> list[Agent]:
        """The agents of those email addresses, by id (:class:`helpkit.ports.AgentEmails`):
        the server looks each address up in the index of the rows' addresses, and only the
        rows found are sent and decoded. An address PostgreSQL cannot hold (a NUL) names no
        agent."""
        wanted = [a for a in asked_addresses(addresses) if _storable(a)]
        with self._reading() as cur:
            rows = cur.execute(_AGENTS_BY_EMAIL, (wanted,)).fetchall()
        return [_decoded(_decode_agent, row[0], "agents") for row in rows]

    def count_recent_requests(self, requester_id: str, since: datetime, limit: int) -> int:
        """How many tickets of ``requester_id`` were created after ``since``, counted up to
        ``limit`` (:class:`helpkit.ports.RequesterCounts`): one count over the index of a
        requester's tickets by creation, no ticket sent or decoded."""
        requester_id, since, limit = count_arguments(requester_id, since, limit)
        with self._reading() as cur:
            row = cur.execute(_COUNT_RECENT_REQUESTS, (requester_id, _micros(since), limit))
            found = row.fetchone()
        return int(found[0]) if found is not None else 0

    def save_group(self, group: Group) -> None:
        """Insert or replace a group."""
        check_record(group, Group)
        self._replace("groups", group.id, _dumps(_encode_group(group)))

    def get_group(self, group_id: str) -> Group:
        """A group by id."""
        row = self._fetch_one("SELECT data FROM groups WHERE id = %s", group_id)
        if row is None:
            raise NotFoundError(f"no group with id {group_id!r}")
        group: Group = _decoded(_decode_group, row[0], "group")
        return group

    def list_groups(self) -> list[Group]:
        """All groups, by id."""
        return self._list("groups", _decode_group)

    def _replace(self, table: str, ident: str, data: str) -> None:
        with self._transaction() as cur:
            cur.execute(
                f"INSERT INTO {table} (id, data) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (ident, data),
            )

    def _list(self, table: str, decode: Callable[[Any], Any]) -> list[Any]:
        with self._reading() as cur:
            rows = cur.execute(f"SELECT data FROM {table} ORDER BY id").fetchall()
        return [_decoded(decode, row[0], table) for row in rows]

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the pool and its connections; any later call raises StoreError. Closing
        twice is harmless."""
        self._pool.close()
        self._stop_listening()
        with self._cache_lock:
            self._cache.clear()
            self._recent.clear()
