"""The SQLite store's schema, its versions and migrations, and the checks that guard a file.

A helpkit file is recognized by its ``PRAGMA application_id`` (:data:`APPLICATION_ID`); its
schema version is ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`), upgraded by the steps in
:data:`MIGRATIONS` (the DDL of each version, and the functions that convert stored data). A file
that is not SQLite, not helpkit's, damaged, or written by a newer helpkit is refused before
anything is written to it (``_inspect``, ``_check_identity``).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

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

MIGRATIONS: Final[tuple[Migration, ...]] = (_V1, _V2, _V3)
"""The steps that bring a database from schema version ``i`` to ``i + 1``: SQL statements,
or functions of the connection for data a statement cannot convert. All run in one
transaction."""

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""The schema version this helpkit writes (``PRAGMA user_version``)."""


# ---------------------------------------------------------------- opening a file


def _inspect(path: str) -> bool:
    """Check an existing file before anything writes to it; True if it needs the schema.

    Raises SchemaError for a file that is not SQLite, not helpkit's, corrupt, or newer than
    this code. Only reads: the file is opened read-only (``mode=ro``), so SQLite does not
    even roll back a hot journal.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if not header:
        return True  # an empty file: a new database
    if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
        raise SchemaError(
            f"{path} is not an SQLite database, so not a helpkit database; "
            "helpkit refused it and left it untouched"
        )
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        probe = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    try:
        application_id = probe.execute("PRAGMA application_id").fetchone()[0]
        version = probe.execute("PRAGMA user_version").fetchone()[0]
        objects = probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise SchemaError(
            f"{path} cannot be read as an SQLite database ({exc}); it may be corrupt or "
            "not a database. helpkit refused it and left it untouched"
        ) from exc
    finally:
        probe.close()
    return _check_identity(path, application_id, version, objects)


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
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        # Checked again under the write lock: another process may have got here first.
        _check_identity(path, application_id, version, objects)
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
