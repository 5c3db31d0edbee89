# Over 600 lines: the DDL of every schema version, and the checks that guard a file before
# anything writes to it (why each is safe is explained next to it).
"""The SQLite store's schema, its versions and migrations, and the checks that guard a file.

A helpkit file is recognized by its ``PRAGMA application_id`` (:data:`APPLICATION_ID`); its
schema version is ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`), upgraded by the steps in
:data:`MIGRATIONS` (the DDL of each version, and the functions that convert stored data).

Before a file is opened for writing, ``_inspect`` finds out what it is, writing nothing and
creating nothing beside it: a path that is not a regular file (a FIFO, a directory, a device, a
socket), a file that is not SQLite, not helpkit's, damaged, or written by a newer helpkit, is
refused untouched (``_check_identity``); a file this process may not write, or in a folder it
may not write, is refused saying so. A file left with an unfinished transaction by a process
killed mid-write (a hot rollback journal, a WAL without its index) is checked on a private copy
that SQLite recovers, and only a file that proves to be new, empty or helpkit's is then
recovered for real. The comments above ``_inspect`` give the reasons.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final, NamedTuple

from helpkit._time import to_utc
from helpkit.errors import SchemaError, StoreError
from helpkit.queries import NONE_LAST
from helpkit.stores.sqlite.encoding import _NONE_LAST, _loads, _micros

APPLICATION_ID: Final = 0x484B4954
"""``PRAGMA application_id`` of a helpkit database (the bytes ``HKIT``)."""

_SQLITE_HEADER: Final = b"SQLite format 3\x00"

_V1: Final = (
    # The ticket number sequence: a single row (dropped in v3).
    """CREATE TABLE ticket_numbers (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        next_number INTEGER NOT NULL
    )""",
    "INSERT INTO ticket_numbers (singleton, next_number) VALUES (1, 1)",
    # Current state: one row per ticket, the full state as JSON plus a column for every
    # filter and sort key (instants as integer microseconds since the epoch, UTC).
    """CREATE TABLE tickets (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        number INTEGER NOT NULL UNIQUE,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        category TEXT NOT NULL,
        priority INTEGER NOT NULL,
        assignee_id TEXT,
        group_id TEXT,
        requester_id TEXT NOT NULL,
        organization_id TEXT,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        tags TEXT NOT NULL,
        state TEXT NOT NULL
    )""",
    # The agent queue: open tickets of an assignee / of a group / of everyone, by priority.
    # The trailing column lets "unassigned tickets of a group" (and "an assignee's tickets
    # in a group") filter inside the index, without reading each skipped row.
    """CREATE INDEX tickets_assignee_queue
        ON tickets (assignee_id, category, priority, created_us, id, group_id)""",
    """CREATE INDEX tickets_group_queue
        ON tickets (group_id, category, priority, created_us, id, assignee_id)""",
    "CREATE INDEX tickets_category_queue ON tickets (category, priority, created_us, id)",
    # A person's and an organization's tickets, newest or oldest first.
    "CREATE INDEX tickets_requester ON tickets (requester_id, created_us, id)",
    "CREATE INDEX tickets_organization ON tickets (organization_id, created_us, id)",
    # Unfiltered lists by creation and by last update.
    "CREATE INDEX tickets_created ON tickets (created_us, id)",
    "CREATE INDEX tickets_updated ON tickets (updated_us, id)",
    """CREATE TABLE ticket_tags (
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        tag TEXT NOT NULL,
        PRIMARY KEY (ticket_id, tag)
    ) WITHOUT ROWID""",
    "CREATE INDEX ticket_tags_tag ON ticket_tags (tag, ticket_id)",
    # The audit trail, clustered by ticket so a history is one range read.
    """CREATE TABLE events (
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        actor TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (ticket_id, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE contacts (
        id TEXT PRIMARY KEY,
        name_key TEXT NOT NULL,
        organization_id TEXT,
        version INTEGER NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX contacts_name ON contacts (name_key, id)",
    """CREATE TABLE contact_emails (
        email TEXT PRIMARY KEY,
        contact_id TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE
    ) WITHOUT ROWID""",
    "CREATE INDEX contact_emails_contact ON contact_emails (contact_id)",
    """CREATE TABLE organizations (
        id TEXT PRIMARY KEY,
        name_key TEXT NOT NULL,
        version INTEGER NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX organizations_name ON organizations (name_key, id)",
    """CREATE TABLE organization_domains (
        domain TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE
    ) WITHOUT ROWID""",
    "CREATE INDEX organization_domains_organization ON organization_domains (organization_id)",
    "CREATE TABLE agents (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE groups (id TEXT PRIMARY KEY, data TEXT NOT NULL)",
)


# A state whose SLA fields are all null or absent needs no update (the new columns' defaults
# say the same). A string value, or anything else that is not null, needs reading.
_HAS_SLA_VALUE: Final = re.compile(r'"(?:sla_policy|next_deadline|next_check)"\s*:\s*[^n\s]')
_MIGRATION_BATCH: Final = 2000


def _fill_sla_columns(conn: sqlite3.Connection) -> None:
    """Fill the v2 SLA columns of existing tickets from their stored JSON state.

    States written before the ticket had SLA fields have none of the keys: no policy, no
    deadline, no check. Only the three fields are read (not the whole state), so an upgrade
    does not depend on the rest of today's ticket format; rows are read in batches, so memory
    stays flat however large the file.
    """
    last = 0
    while True:
        rows = conn.execute(
            "SELECT rowid, state FROM tickets WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (last, _MIGRATION_BATCH),
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        updates = [_sla_columns(rowid, text) for rowid, text in rows if _HAS_SLA_VALUE.search(text)]
        conn.executemany(
            "UPDATE tickets SET sla_policy = ?, next_deadline_us = ?, next_check_us = ? "
            "WHERE rowid = ?",
            updates,
        )


def _sla_columns(rowid: int, text: str) -> tuple[str | None, int, int | None, int]:
    state = _loads(text, "ticket state")
    if not isinstance(state, dict):
        raise SchemaError(f"stored ticket state (row {rowid}) is not an object")
    try:
        policy = state.get("sla_policy")
        if policy is not None and not isinstance(policy, str):
            raise TypeError(f"sla_policy {policy!r} is not a string")
        deadline = _stored_instant(state.get("next_deadline"))
        check = _stored_instant(state.get("next_check"))
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"stored ticket state (row {rowid}) has a bad SLA field: {exc}") from exc
    return (policy, _NONE_LAST if deadline is None else deadline, check, rowid)


def _stored_instant(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO instant, found {value!r}")
    return _micros(to_utc(datetime.fromisoformat(value)))


_V2: Final[tuple[str | Callable[[sqlite3.Connection], None], ...]] = (
    # The SLA schedule the desk derives before each commit. A missing next deadline is stored
    # as helpkit.queries.NONE_LAST, above every real instant, so the index order is the
    # reference order (none last) and "deadline <= t" needs no NULL test. A missing next
    # check is NULL, so the sweep's index holds only the tickets that have a check at all.
    "ALTER TABLE tickets ADD COLUMN sla_policy TEXT",
    f"ALTER TABLE tickets ADD COLUMN next_deadline_us INTEGER NOT NULL DEFAULT {NONE_LAST}",
    "ALTER TABLE tickets ADD COLUMN next_check_us INTEGER",
    _fill_sla_columns,
    # The queues now order by priority, then next deadline (none last), then age.
    "DROP INDEX tickets_assignee_queue",
    "DROP INDEX tickets_group_queue",
    "DROP INDEX tickets_category_queue",
    """CREATE INDEX tickets_assignee_queue ON tickets
        (assignee_id, category, priority, next_deadline_us, created_us, id, group_id)""",
    """CREATE INDEX tickets_group_queue ON tickets
        (group_id, category, priority, next_deadline_us, created_us, id, assignee_id)""",
    """CREATE INDEX tickets_category_queue ON tickets
        (category, priority, next_deadline_us, created_us, id)""",
    # "Breaching within" and the deadline order, one index walk per category (merged).
    """CREATE INDEX tickets_deadline ON tickets
        (category, next_deadline_us, priority, created_us, id)""",
    # The sweep: only tickets with a pending check, earliest first. Its cost is the number of
    # tickets due, whatever the number open.
    """CREATE INDEX tickets_next_check ON tickets (next_check_us, id)
        WHERE next_check_us IS NOT NULL""",
)

Migration = tuple[str | Callable[[sqlite3.Connection], None], ...]

_V3: Final[Migration] = (
    # Ticket numbers are given inside the commit that stores the ticket (the highest number
    # plus one, under the write lock), so the separate sequence row is gone. A file at v3 is
    # refused by the helpkit versions that still allocated numbers from it.
    "DROP TABLE ticket_numbers",
    # Only tickets of an organization are looked up by organization: a ticket without one
    # (most tickets of a consumer helpdesk) no longer writes an index entry.
    "DROP INDEX tickets_organization",
    """CREATE INDEX tickets_organization ON tickets (organization_id, created_us, id)
        WHERE organization_id IS NOT NULL""",
)


def _number_existing_events(conn: sqlite3.Connection) -> None:
    """Give the events of a file from before v4 feed positions: their commit order is not
    known, so in the order of their instants (then ticket and seq, as each ticket's events
    were committed in seq order)."""
    keys = conn.execute("SELECT ticket_id, seq FROM events ORDER BY at_us, ticket_id, seq")
    conn.executemany(
        "UPDATE events SET position = ? WHERE ticket_id = ? AND seq = ?",
        ((position, ticket_id, seq) for position, (ticket_id, seq) in enumerate(keys, start=1)),
    )


_V4: Final[Migration] = (
    # The change feed: every event's position in global commit order, given inside the commit
    # (the highest position plus one, under the write lock), and the consumers' cursors.
    "ALTER TABLE events ADD COLUMN position INTEGER",
    _number_existing_events,
    "CREATE UNIQUE INDEX events_position ON events (position)",
    """CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
    ) WITHOUT ROWID""",
)

_V5: Final[Migration] = (
    # The outbox: the deliveries the relay derives from the change feed. Columns for what
    # claims select on; the delivery itself as JSON (helpkit.serialize form).
    """CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        ticket_id TEXT NOT NULL,
        state TEXT NOT NULL,
        next_attempt_us INTEGER NOT NULL,
        claimed_until_us INTEGER,
        claimed_by TEXT,
        updated_us INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    # Due pending deliveries, oldest first: what a relay claims.
    """CREATE INDEX outbox_due ON outbox (next_attempt_us, id) WHERE state = 'pending'""",
    "CREATE INDEX outbox_state ON outbox (state, id)",
    "CREATE INDEX outbox_ticket ON outbox (ticket_id, id)",
)

_V6: Final[Migration] = (
    # Timer states (helpkit.ports.TimerStates): what helpkit's timers keep beside a ticket,
    # written by the pipeline's commits (the SLA clock's fold as JSON, which says its own
    # seq), read by the sweep with each batch of due tickets instead of their histories. No
    # foreign key: the commit that writes a state has just written its ticket, and a lookup
    # per state would cost the sweep more than it checks.
    """CREATE TABLE timer_states (
        ticket_id TEXT PRIMARY KEY,
        state TEXT NOT NULL
    ) WITHOUT ROWID""",
)

_V7: Final[Migration] = (
    # The inbox (helpkit.ports.Inbox): a receipt per inbound message, keyed by channel and
    # external id, written by the commit of the change the message made (or by suspend). The
    # receipt as JSON (a suspended one holds its whole message); its state and the instant it
    # was received as columns, for the list of suspended messages, oldest first, which walks
    # a partial index holding only those.
    """CREATE TABLE inbox (
        key TEXT NOT NULL PRIMARY KEY,
        state TEXT NOT NULL,
        received_us INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
    """CREATE INDEX inbox_suspended ON inbox (received_us, key) WHERE state = 'suspended'""",
)

_V8: Final[Migration] = (
    # Routing states (helpkit.ports.Routing): a routed group's version and round-robin
    # cursor, written by the commit of the change routing made, only over the version it read
    # (under the write lock). Loads are counted from the tickets, through their assignee index.
    """CREATE TABLE routing (
        group_id TEXT NOT NULL PRIMARY KEY,
        version INTEGER NOT NULL,
        cursor TEXT
    ) WITHOUT ROWID""",
)

_V9: Final[Migration] = (
    # The knowledge base (helpkit.ports.KnowledgeBase). Categories, sections, articles (each
    # whole, as JSON, with its revision as a column for the save's guard) and their audit
    # entries; links between tickets and articles; suggestions shown, by instant.
    """CREATE TABLE kb_categories (
        id TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE kb_sections (
        id TEXT PRIMARY KEY,
        category_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX kb_sections_category ON kb_sections (category_id, position, id)",
    """CREATE TABLE kb_articles (
        id TEXT PRIMARY KEY,
        section_id TEXT,
        revision INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX kb_articles_section ON kb_articles (section_id, id)",
    """CREATE TABLE kb_changes (
        article_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (article_id, revision)
    ) WITHOUT ROWID""",
    # Search documents (helpkit.knowledge.search_documents): one row per article, kind
    # (published, current) and locale, replaced by each save, with their index terms
    # (helpkit.knowledge.index_terms: case and accents folded, stopwords out, lightly stemmed,
    # as the memory store ranks them). A full-text index per kind, an FTS5 table over those
    # terms (external content, kept in step by the triggers), ranked by bm25 with the title
    # weighing twice the body (its rank). kb_terms says how many documents of each kind hold
    # a term, and kb_counts how many documents of each kind there are (both kept by each
    # save), so a search looks up only its selective terms (helpkit.knowledge.selective)
    # without walking the index (fts5vocab counts a term's documents by reading them all).
    """CREATE TABLE kb_docs (
        rowid INTEGER PRIMARY KEY,
        article_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        locale TEXT NOT NULL,
        is_default INTEGER NOT NULL,
        version INTEGER NOT NULL,
        title TEXT NOT NULL,
        title_terms TEXT NOT NULL,
        body_terms TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX kb_docs_article ON kb_docs (article_id, kind, locale, is_default)",
    "CREATE TABLE kb_counts (kind TEXT PRIMARY KEY, documents INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO kb_counts (kind, documents) VALUES ('published', 0), ('current', 0)",
    """CREATE TABLE kb_terms (
        kind TEXT NOT NULL,
        term TEXT NOT NULL,
        documents INTEGER NOT NULL,
        PRIMARY KEY (kind, term)
    ) WITHOUT ROWID""",
    *(
        statement
        for kind in ("published", "current")
        for statement in (
            f"""CREATE VIRTUAL TABLE kb_fts_{kind} USING fts5 (
                title_terms, body_terms, content = 'kb_docs', content_rowid = 'rowid',
                tokenize = 'unicode61 remove_diacritics 0'
            )""",
            f"INSERT INTO kb_fts_{kind} (kb_fts_{kind}, rank) VALUES ('rank', 'bm25(2.0, 1.0)')",
            f"""CREATE TRIGGER kb_docs_added_{kind} AFTER INSERT ON kb_docs
                WHEN new.kind = '{kind}' BEGIN
                INSERT INTO kb_fts_{kind} (rowid, title_terms, body_terms)
                    VALUES (new.rowid, new.title_terms, new.body_terms);
            END""",
            f"""CREATE TRIGGER kb_docs_removed_{kind} AFTER DELETE ON kb_docs
                WHEN old.kind = '{kind}' BEGIN
                INSERT INTO kb_fts_{kind} (kb_fts_{kind}, rowid, title_terms, body_terms)
                    VALUES ('delete', old.rowid, old.title_terms, old.body_terms);
            END""",
        )
    ),
    """CREATE TABLE kb_links (
        ticket_id TEXT NOT NULL,
        article_id TEXT NOT NULL,
        linked_us INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (ticket_id, article_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX kb_links_article ON kb_links (article_id, linked_us, ticket_id)",
    """CREATE TABLE kb_suggestions (
        id TEXT PRIMARY KEY,
        shown_us INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX kb_suggestions_shown ON kb_suggestions (shown_us, id)",
)

_V10: Final[Migration] = (
    # Timer states move into their ticket's row: the sweep's commit rewrites the row anyway,
    # so keeping the state there writes no page of another table (at a million tickets that
    # table's pages were one more random page per due ticket, about a third of the sweep's
    # SQL). One pass over the kept states; tickets without one read NULL.
    "ALTER TABLE tickets ADD COLUMN timer_state TEXT",
    """UPDATE tickets SET timer_state = (
        SELECT state FROM timer_states WHERE timer_states.ticket_id = tickets.id
    ) WHERE id IN (SELECT ticket_id FROM timer_states)""",
    "DROP TABLE timer_states",
)

_V11: Final[Migration] = (
    # The outbox kept in the order deliveries are added (a rowid table, the id a unique key)
    # instead of in id order: a delivery's id starts with its ticket's, so a batch the relay
    # derives lands all over an id-ordered table, and its enqueue and its settlement each
    # rewrote a page per delivery (rows of about 1 KiB, three to a page); in the order added,
    # a batch's rows share pages. Measured on 10,000 deliveries: 112 to 33 µs of CPU per
    # insert, 90 to 25 per settlement (bench/results/relay.md).
    "DROP INDEX outbox_due",
    "DROP INDEX outbox_state",
    "DROP INDEX outbox_ticket",
    "ALTER TABLE outbox RENAME TO outbox_v9",
    """CREATE TABLE outbox (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        ticket_id TEXT NOT NULL,
        state TEXT NOT NULL,
        next_attempt_us INTEGER NOT NULL,
        claimed_until_us INTEGER,
        claimed_by TEXT,
        updated_us INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
    """INSERT INTO outbox (id, ticket_id, state, next_attempt_us, claimed_until_us, claimed_by,
        updated_us, body)
        SELECT id, ticket_id, state, next_attempt_us, claimed_until_us, claimed_by, updated_us,
        body FROM outbox_v9 ORDER BY updated_us, id""",
    "DROP TABLE outbox_v9",
    """CREATE INDEX outbox_due ON outbox (next_attempt_us, id) WHERE state = 'pending'""",
    "CREATE INDEX outbox_state ON outbox (state, id)",
    "CREATE INDEX outbox_ticket ON outbox (ticket_id, id)",
)

_V12: Final[Migration] = (
    # Attachment bytes kept in the database itself (the ``sqlite:`` blob store,
    # helpkit.blobs.sqlite), content-addressed by their SHA-256 in lower-case hex: a blob is
    # one row, written in one transaction, durable as the store's commits are, with no file
    # of its own to create and flush.
    """CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        data BLOB NOT NULL
    )""",
)

AGENT_EMAIL_KEY: Final = (
    "CASE WHEN json_valid(data) THEN json_extract(data, '$.email') ELSE x'00' END"
)
"""An agent row's address as the ``agents_email`` index (schema version 13) holds it: the
``email`` of its JSON, or the blob ``x'00'`` for a row that is not JSON. A query must spell the
expression the same way for SQLite to use the index, so the store reads it from here; changing
it needs a new index in a new schema version."""

_V13: Final[Migration] = (
    # Agents found by address (helpkit.ports.AgentEmails) through an index on the address in
    # each row's JSON, instead of reading every agent's JSON for every inbound message (at
    # 1,000 agents that read was most of intake's CPU). SQLite computes the indexed value as
    # rows are written, and here for the rows already there, so nothing else keeps it. The
    # json_valid guard keeps a row that is not JSON writable (json_extract would fail the
    # write); such a row is indexed under a blob, which no address (text) equals, so a lookup
    # adds that one key to find those rows, whose decoding then fails as in list_agents.
    f"CREATE INDEX agents_email ON agents ({AGENT_EMAIL_KEY})",
)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    _V1,
    _V2,
    _V3,
    _V4,
    _V5,
    _V6,
    _V7,
    _V8,
    _V9,
    _V10,
    _V11,
    _V12,
    _V13,
)
"""The steps that bring a database from schema version ``i`` to ``i + 1``: SQL statements,
or functions of the connection for data a statement cannot convert. All run in one
transaction."""

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""The schema version this helpkit writes (``PRAGMA user_version``)."""


# ---------------------------------------------------------------- opening a file
#
# Before anything writes to an existing file, helpkit finds out what it is, without writing to
# the file and without creating anything beside it:
#
# - The path must be a regular file: reading the header of a FIFO waits forever for a writer,
#   and a directory, a device or a socket is no database. ``os.stat`` says what it is; the
#   header is then read with O_NONBLOCK and checked again on the open descriptor, so a FIFO
#   put in its place meanwhile cannot block either. ``-journal``, ``-wal`` and ``-shm``
#   beside it, when present, must be regular files too.
# - Its first 100 bytes must be SQLite's header.
# - SQLite reads its identity (application_id, user_version, the number of schema objects),
#   through a connection chosen by the journal mode (header bytes 18-19) and what lies beside:
#   * WAL mode without both ``-wal`` and ``-shm``, and no journal or WAL content: nobody has
#     the file open (SQLite creates both when it opens such a database, and removes them when
#     the last connection closes), so the file alone is the database. It is read with
#     ``immutable=1``: no lock, no shared memory, nothing created. A ``mode=ro`` connection
#     would create an empty ``-wal`` and a ``-shm``, and leave them beside a refused file. If
#     either appears meanwhile, another process opened the file: the check starts again.
#   * Rollback mode, or WAL mode with both ``-wal`` and ``-shm``: a read-only connection
#     (``mode=ro``), which then creates nothing and takes part in SQLite's locking with the
#     processes that may have the file open. (Like every reader of a WAL database, it may
#     write the ``-shm``, the shared-memory index; never the file, its journal or its WAL.)
#   * Anything SQLite must recover before it can be read: on a private copy, below.
#
# Recovery. A process killed in the middle of a write leaves its transaction behind: a "hot"
# rollback journal, or a ``-wal`` whose ``-shm`` index is gone. helpkit's own creation leaves a
# hot journal when it is killed while it switches a new file to WAL: the file then holds a
# first page, and the journal says that the file was empty before. SQLite recovers such a file
# when a connection that may write first reads it: it writes the journal's original pages back
# (the transaction never committed, so this gives the file as it was before it began), or
# rebuilds the index of the WAL. A read-only connection cannot, and fails
# (SQLITE_READONLY_ROLLBACK, "attempt to write a readonly database"): such a file used to be
# refused as "may be corrupt", at every open.
#
# Recovery writes to the file: allowed for a file that is ours, not for another application's
# file, which is refused untouched, journal included (its own application recovers it). And
# which one it is can only be told after recovery: the header on disk may be the unfinished
# transaction's (its original is in the journal), or the committed tables may be in the WAL
# only; helpkit does not parse journals itself. So it copies the file with its journal and WAL
# into a private temporary folder, lets SQLite recover the copy, and reads the identity there.
# Only when the copy is new, empty or helpkit's is the real file opened by a connection that
# may write, where SQLite recovers it the same way (and the identity is read again there). If
# the file, its journal or its WAL change while they are copied (another process recovered the
# file meanwhile), the check starts again. The copy costs one read of the file; a file larger
# than _RECOVERY_COPY_LIMIT is refused, with the way to recover it by hand, instead.
#
# Writing. The checks end by making sure this process may write the file and its folder
# (SQLite creates ``-journal``, ``-wal`` and ``-shm`` beside it), so that a helpkit file in a
# read-only folder is reported as such rather than as damaged.

_RECOVERY_COPY_LIMIT: Final = 64 * 1024 * 1024
"""The largest file (with its journal or WAL) that is copied to be checked before recovery."""

_ATTEMPTS: Final = 3
_SIDECARS: Final = ("-journal", "-wal", "-shm")
_OPEN_HEADER: Final[int] = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_EFFECTIVE_IDS: Final = os.access in os.supports_effective_ids
# What a read-only connection cannot read until a connection that may write has recovered it.
_NEEDS_RECOVERY: Final = frozenset(
    {
        sqlite3.SQLITE_READONLY_ROLLBACK,
        sqlite3.SQLITE_READONLY_RECOVERY,
        sqlite3.SQLITE_READONLY_CANTINIT,
    }
)
_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class _Identity(NamedTuple):
    application_id: int
    version: int
    objects: int


class _ChangedError(Exception):
    """The file, or what lies beside it, changed while it was checked: check again."""


def _inspect(path: str, timeout: float = 5.0) -> bool:
    """Check a file before anything writes to it; True if it needs the schema or an upgrade.

    Raises SchemaError for a file that is not SQLite, not helpkit's, damaged or newer than
    this code; StoreError for a path that is not a regular file, a file or folder this process
    may not write, or a file that stays locked. Writes nothing and creates nothing beside the
    file (a file that needs recovery is checked on a private copy).
    """
    for _attempt in range(_ATTEMPTS):
        try:
            return _inspect_once(path, timeout)
        except _ChangedError:
            continue
    raise StoreError(
        f"{path} kept changing while helpkit checked it (another process is writing or "
        "recovering it); try again"
    )


def _inspect_once(path: str, timeout: float) -> bool:
    if _stat(path) is None:
        _check_folder(path)
        return True  # a new file
    header = _read_header(path)
    beside = _beside(path)
    if not header:
        needs_schema = True  # an empty file: a new database
    elif len(header) == 100 and header.startswith(_SQLITE_HEADER):
        needs_schema = _check_identity(path, *_identity(path, header, beside, timeout))
    elif header == bytes(100) and _size(beside, "-journal"):
        # A first page never written, and a journal: the first transaction on an empty file,
        # killed after SQLite wrote some of its pages but not yet the first. (A journal beside
        # anything else is not recovered: a text file must not be truncated to an empty one.)
        needs_schema = _check_identity(path, *_identity_after_recovery(path, timeout))
    else:
        raise SchemaError(
            f"{path} is not an SQLite database, so not a helpkit database; "
            "helpkit refused it and left it untouched"
        )
    _check_writable(path, header, beside)
    return needs_schema


def _identity(
    path: str, header: bytes, beside: dict[str, os.stat_result], timeout: float
) -> _Identity:
    """The identity of an SQLite file, read without writing anything (see above)."""
    try:
        uri = Path(path).resolve().as_uri()
    except (OSError, RuntimeError, ValueError) as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    if 2 in header[18:20] and not ("-wal" in beside and "-shm" in beside):
        if _size(beside, "-journal") or _size(beside, "-wal"):
            return _identity_after_recovery(path, timeout)
        try:
            identity = _read_identity(f"{uri}?mode=ro&immutable=1", timeout)
        except sqlite3.Error as exc:
            _same_beside(path, beside)
            raise _unreadable(path, exc) from exc
        _same_beside(path, beside)
        return identity
    try:
        return _read_identity(f"{uri}?mode=ro", timeout)
    except sqlite3.Error as exc:
        if _error_code(exc) in _NEEDS_RECOVERY:
            return _identity_after_recovery(path, timeout)
        raise _unreadable(path, exc) from exc


def _identity_after_recovery(path: str, timeout: float) -> _Identity:
    """The identity ``path`` will have once SQLite has recovered it, read on a private copy."""
    before = _snapshot(path)
    if "" not in before:
        raise _ChangedError
    size = sum(size for _inode, size, _mtime in before.values())
    if size > _RECOVERY_COPY_LIMIT:
        left = " and ".join(f"{path}{suffix}" for suffix in before if suffix)
        raise SchemaError(
            f"{path} holds a transaction that a process stopped in the middle of writing "
            f"({left}); helpkit checks such a file on a copy before it lets SQLite recover "
            f"it, and this one is larger than {_RECOVERY_COPY_LIMIT // 2**20} MiB. If it is a "
            f"helpkit file, let SQLite recover it (sqlite3 '{path}' 'PRAGMA quick_check') and "
            "open it again; helpkit left it untouched."
        )
    try:
        with tempfile.TemporaryDirectory(prefix="helpkit-check-") as folder:
            copy = os.path.join(folder, "check.db")
            try:
                for suffix in before:
                    shutil.copyfile(path + suffix, copy + suffix)
            except FileNotFoundError as exc:  # recovered meanwhile: the journal is gone
                raise _ChangedError from exc
            if _snapshot(path) != before:
                raise _ChangedError
            try:
                # A connection that may write: SQLite recovers the copy before reading it.
                return _read_identity(Path(copy).as_uri(), timeout)
            except sqlite3.Error as exc:
                raise _unreadable(path, exc) from exc
    except OSError as exc:
        raise StoreError(f"cannot copy {path} to check it before recovery: {exc}") from exc


def _read_identity(uri: str, timeout: float) -> _Identity:
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    try:
        return _identity_of(conn)
    finally:
        conn.close()


def _identity_of(conn: sqlite3.Connection) -> _Identity:
    return _Identity(
        conn.execute("PRAGMA application_id").fetchone()[0],
        conn.execute("PRAGMA user_version").fetchone()[0],
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0],
    )


def _error_code(exc: sqlite3.Error) -> int:
    """SQLite's extended result code (0 for the errors the sqlite3 module raises itself)."""
    code: int = getattr(exc, "sqlite_errorcode", None) or 0
    return code


def _unreadable(path: str, exc: sqlite3.Error) -> StoreError:
    code = _error_code(exc) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(
            f"{path} stayed locked by another process while helpkit checked it ({exc}); try "
            "again, or open the store with a longer timeout"
        )
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR):
        return StoreError(f"cannot read {path} ({exc}); helpkit left it untouched")
    return SchemaError(
        f"{path} cannot be read as an SQLite database ({exc}); it may be corrupt or not a "
        "database. helpkit refused it and left it untouched"
    )


# ---------------------------------------------------------------- what the path is


def _kind(mode: int) -> str | None:
    """What a file of this mode is, when it is not a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def _stat(path: str) -> os.stat_result | None:
    """``path``'s status (links followed), None if there is nothing; only a regular file passes."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot open {path}: {exc.strerror or exc}") from exc
    _require_regular(path, status.st_mode)
    return status


def _require_regular(path: str, mode: int) -> None:
    kind = _kind(mode)
    if kind is not None:
        raise StoreError(
            f"{path} is {kind}, not a database file; helpkit needs a regular file (or a path "
            "where it may create one) and left it untouched"
        )


def _read_header(path: str) -> bytes:
    """The first 100 bytes (fewer for a shorter file); never blocks, even on a FIFO."""
    try:
        fd = os.open(path, _OPEN_HEADER)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        _require_regular(path, os.fstat(fd).st_mode)  # it may have been replaced since
        header = b""
        while len(header) < 100:
            chunk = os.read(fd, 100 - len(header))
            if not chunk:
                break
            header += chunk
        return header
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _beside(path: str) -> dict[str, os.stat_result]:
    """The files SQLite keeps beside ``path`` that exist, by suffix; each must be a regular file."""
    found: dict[str, os.stat_result] = {}
    for suffix in _SIDECARS:
        try:
            status = os.stat(path + suffix)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot check {path}{suffix}: {exc.strerror or exc}") from exc
        kind = _kind(status.st_mode)
        if kind is not None:
            raise StoreError(
                f"{path}{suffix} is {kind}, where SQLite keeps a file of {path}; helpkit "
                "refused both and left them untouched. Move it away if no program uses it."
            )
        found[suffix] = status
    return found


def _same_beside(path: str, beside: dict[str, os.stat_result]) -> None:
    if _beside(path).keys() != beside.keys():
        raise _ChangedError


def _size(beside: dict[str, os.stat_result], suffix: str) -> int:
    status = beside.get(suffix)
    return 0 if status is None else status.st_size


def _snapshot(path: str) -> dict[str, tuple[int, int, int]]:
    """Inode, size and modification time of the file, its journal and its WAL, when present."""
    found: dict[str, tuple[int, int, int]] = {}
    for suffix in ("", "-journal", "-wal"):
        try:
            status = os.stat(path + suffix)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot check {path}{suffix}: {exc.strerror or exc}") from exc
        found[suffix] = (status.st_ino, status.st_size, status.st_mtime_ns)
    return found


# ---------------------------------------------------------------- may this process write it


def _may_write(path: str) -> bool:
    return os.access(path, os.W_OK, effective_ids=_EFFECTIVE_IDS)


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def _check_folder(path: str) -> None:
    """A new file: its folder must exist and be writable."""
    folder = _folder(path)
    try:
        is_folder = stat.S_ISDIR(os.stat(folder).st_mode)
    except OSError:
        is_folder = False
    if not is_folder:
        raise StoreError(f"cannot open {path}: the folder {folder} does not exist")
    if not _may_write(folder):
        raise StoreError(
            f"cannot create {path}: this process may not write the folder {folder}. Give "
            "this user write permission on it, or choose another path."
        )


def _check_writable(path: str, header: bytes, beside: dict[str, os.stat_result]) -> None:
    """Refuse, saying what to do, a file this process may read but not open for writing."""
    if not _may_write(path):
        raise StoreError(
            f"{path} is read-only for this process, and helpkit opens its file for reading "
            "and writing. Give this user write permission on the file (or work on a copy)."
        )
    # A file in WAL mode whose -wal and -shm exist and may be written needs nothing created.
    ready = 2 in header[18:20] and all(
        suffix in beside and _may_write(path + suffix) for suffix in ("-wal", "-shm")
    )
    if not ready and not _may_write(_folder(path)):
        name = os.path.basename(path)
        raise StoreError(
            f"{path} is in a folder this process may not write ({_folder(path)}), and SQLite "
            f"creates {name}-wal and {name}-shm beside the file to open it. Give this user "
            "write permission on the folder (or copy the file to a folder it may write)."
        )


def _check_identity(path: str, application_id: int, version: int, objects: int) -> bool:
    if application_id == 0 and version == 0 and objects == 0:
        return True  # an empty SQLite database: ours to initialize
    if application_id != APPLICATION_ID:
        raise SchemaError(
            f"{path} is an SQLite database but not a helpkit database (application_id "
            f"{application_id:#x}, {objects} schema objects); helpkit refused it and left it "
            "untouched. Use a new file for helpkit."
        )
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path} has helpkit schema version {version}, newer than this helpkit "
            f"understands ({SCHEMA_VERSION}); it was written by a newer helpkit. Upgrade "
            "helpkit to open it (the file was left untouched)."
        )
    if version < 1:
        raise SchemaError(f"{path} carries helpkit's application_id but no schema version")
    return version < SCHEMA_VERSION


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Create or upgrade the schema, in one transaction; a no-op when it is current."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        identity = _identity_of(conn)
        # Checked again under the write lock: another process may have got here first.
        _check_identity(path, *identity)
        version = identity.version
        for steps in MIGRATIONS[version:]:
            for step in steps:
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
