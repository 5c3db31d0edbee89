"""The PostgreSQL store's schema, its versions and migrations, and the checks that guard a schema.

One helpdesk (one tenant) is one PostgreSQL schema (a namespace inside a database), named in
the store's URL. Every statement helpkit runs names its tables unqualified: the connection's
``search_path`` is that schema and nothing else, so the same SQL serves every tenant and cannot
reach another one.

A helpkit schema is recognized by its ``meta`` table: the row ``application`` holds
:data:`APPLICATION` and the row ``schema_version`` the version of its tables
(:data:`SCHEMA_VERSION`), upgraded by the steps of :data:`MIGRATIONS`. Before anything writes,
:func:`inspect` finds out what the schema is, writing nothing: missing, empty (ours to fill),
helpkit's (current, or older and to be upgraded), or refused untouched (a schema holding
other tables, one whose ``meta`` says another application, one written by a newer helpkit).

:func:`migrate` creates or upgrades a schema in one transaction under an advisory lock keyed by
the schema's name, so two processes opening a new database at once do not both create it: the
second waits, then finds the schema current. PostgreSQL's DDL is transactional, so a migration
that fails leaves nothing half done.
"""

from __future__ import annotations

import zlib
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from helpkit.errors import SchemaError
from helpkit.queries import NONE_LAST
from helpkit.stores.postgres.commit import drop_ddl, function_ddl

__all__ = [
    "AGENT_EMAIL_KEY",
    "APPLICATION",
    "FEED_LOCK",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SchemaState",
    "inspect",
    "migrate",
]

APPLICATION: Final = "helpkit"
"""What the ``application`` row of a helpkit schema's ``meta`` table holds."""

# The classes of helpkit's advisory locks (the first key of the two-key form), so they do not
# collide with the locks of an application sharing the database: "HK" + a letter.
_MIGRATION_LOCK_CLASS: Final = 0x484B4D  # HKM
_FEED_LOCK_CLASS: Final = 0x484B46  # HKF

FEED_LOCK: Final = (
    f"SELECT pg_advisory_xact_lock({_FEED_LOCK_CLASS}, 'events'::regclass::oid::integer)"
)
"""Taken by every commit just before it gives its events their feed positions, held until the
transaction ends (a transaction-scoped advisory lock). Keyed by the oid of this schema's
``events`` table, so each tenant has its own: the tenants of one database do not wait for each
other. Why it makes positions follow commit order: docs/postgresql.md, "The change feed"."""

# Text columns compare as "C" (code point order, as Python compares strings), whatever the
# database's default collation: ORDER BY id and keyset cursors must agree with the reference
# store, and "C" comparisons are also the cheapest.
_C: Final = 'COLLATE "C"'

Migration = tuple[str, ...]

_V1: Final[Migration] = (
    # What this schema is: application and schema_version.
    f"""CREATE TABLE meta (
        key text {_C} PRIMARY KEY,
        value text NOT NULL
    )""",
    # The highest ticket number given so far, in one row: a commit that numbers a ticket
    # updates it (n = n + 1) in its own transaction, so a rolled-back create spends no number
    # and concurrent creates wait for each other's commit (numbers follow commit order).
    """CREATE TABLE ticket_numbers (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        last_number bigint NOT NULL
    )""",
    "INSERT INTO ticket_numbers (singleton, last_number) VALUES (true, 0)",
    # Current state: one row per ticket, the full state as JSON text plus a column for every
    # filter and sort key (instants as integer microseconds since the epoch, UTC), as in the
    # SQLite store.
    f"""CREATE TABLE tickets (
        id text {_C} PRIMARY KEY,
        number bigint NOT NULL UNIQUE,
        seq bigint NOT NULL,
        status text {_C} NOT NULL,
        category text {_C} NOT NULL,
        priority integer NOT NULL,
        assignee_id text {_C},
        group_id text {_C},
        requester_id text {_C} NOT NULL,
        organization_id text {_C},
        created_us bigint NOT NULL,
        updated_us bigint NOT NULL,
        sla_policy text {_C},
        next_deadline_us bigint NOT NULL DEFAULT {NONE_LAST},
        next_check_us bigint,
        tags text NOT NULL,
        state text NOT NULL
    )""",
    # The agent queues, the SLA orders and the lists: the SQLite store's indexes.
    """CREATE INDEX tickets_assignee_queue ON tickets
        (assignee_id, category, priority, next_deadline_us, created_us, id, group_id)""",
    """CREATE INDEX tickets_group_queue ON tickets
        (group_id, category, priority, next_deadline_us, created_us, id, assignee_id)""",
    """CREATE INDEX tickets_category_queue ON tickets
        (category, priority, next_deadline_us, created_us, id)""",
    """CREATE INDEX tickets_deadline ON tickets
        (category, next_deadline_us, priority, created_us, id)""",
    """CREATE INDEX tickets_next_check ON tickets (next_check_us, id)
        WHERE next_check_us IS NOT NULL""",
    "CREATE INDEX tickets_requester ON tickets (requester_id, created_us, id)",
    """CREATE INDEX tickets_organization ON tickets (organization_id, created_us, id)
        WHERE organization_id IS NOT NULL""",
    "CREATE INDEX tickets_created ON tickets (created_us, id)",
    "CREATE INDEX tickets_updated ON tickets (updated_us, id)",
    f"""CREATE TABLE ticket_tags (
        ticket_id text {_C} NOT NULL REFERENCES tickets (id),
        tag text {_C} NOT NULL,
        PRIMARY KEY (ticket_id, tag)
    )""",
    "CREATE INDEX ticket_tags_tag ON ticket_tags (tag, ticket_id)",
    # The audit trail, and the change feed: every event's position in commit order.
    f"""CREATE TABLE events (
        ticket_id text {_C} NOT NULL REFERENCES tickets (id),
        seq bigint NOT NULL,
        type text {_C} NOT NULL,
        at_us bigint NOT NULL,
        actor text {_C} NOT NULL,
        body text NOT NULL,
        position bigint NOT NULL,
        PRIMARY KEY (ticket_id, seq)
    )""",
    "CREATE UNIQUE INDEX events_position ON events (position)",
    f"""CREATE TABLE cursors (
        name text {_C} PRIMARY KEY,
        position bigint NOT NULL
    )""",
    f"""CREATE TABLE contacts (
        id text {_C} PRIMARY KEY,
        name_key text {_C} NOT NULL,
        organization_id text {_C},
        version bigint NOT NULL,
        data text NOT NULL
    )""",
    "CREATE INDEX contacts_name ON contacts (name_key, id)",
    f"""CREATE TABLE contact_emails (
        email text {_C} PRIMARY KEY,
        contact_id text {_C} NOT NULL REFERENCES contacts (id) ON DELETE CASCADE
    )""",
    "CREATE INDEX contact_emails_contact ON contact_emails (contact_id)",
    f"""CREATE TABLE organizations (
        id text {_C} PRIMARY KEY,
        name_key text {_C} NOT NULL,
        version bigint NOT NULL,
        data text NOT NULL
    )""",
    "CREATE INDEX organizations_name ON organizations (name_key, id)",
    f"""CREATE TABLE organization_domains (
        domain text {_C} PRIMARY KEY,
        organization_id text {_C} NOT NULL REFERENCES organizations (id) ON DELETE CASCADE
    )""",
    """CREATE INDEX organization_domains_organization
        ON organization_domains (organization_id)""",
    f"CREATE TABLE agents (id text {_C} PRIMARY KEY, data text NOT NULL)",
    f"CREATE TABLE groups (id text {_C} PRIMARY KEY, data text NOT NULL)",
    # The outbox: the deliveries the relay derives from the change feed.
    f"""CREATE TABLE outbox (
        id text {_C} PRIMARY KEY,
        ticket_id text {_C} NOT NULL,
        state text {_C} NOT NULL,
        next_attempt_us bigint NOT NULL,
        claimed_until_us bigint,
        claimed_by text {_C},
        updated_us bigint NOT NULL,
        body text NOT NULL
    )""",
    "CREATE INDEX outbox_due ON outbox (next_attempt_us, id) WHERE state = 'pending'",
    "CREATE INDEX outbox_state ON outbox (state, id)",
    "CREATE INDEX outbox_ticket ON outbox (ticket_id, id)",
)

_V2: Final[Migration] = (
    # Timer states (helpkit.ports.TimerStates): what helpkit's timers keep beside a ticket,
    # written by the pipeline's commits (the SLA clock's fold as JSON, which says its own seq),
    # read by the sweep with each batch of due tickets instead of their histories. As in the
    # SQLite store, no foreign key: the commit that writes a state has just written its ticket.
    f"""CREATE TABLE timer_states (
        ticket_id text {_C} PRIMARY KEY,
        state text NOT NULL
    )""",
)

_V3: Final[Migration] = (
    # Due claims (helpkit.ports.DueClaims): which sweep worker holds a due ticket, until when.
    # A row per ticket claimed at least once; a released claim is deleted, a lapsed one is
    # taken over by the next claim.
    f"""CREATE TABLE due_claims (
        ticket_id text {_C} PRIMARY KEY,
        claimed_by text {_C} NOT NULL,
        claimed_until_us bigint NOT NULL
    )""",
)

_V4: Final[Migration] = (
    # The inbox (helpkit.ports.Inbox): a receipt per inbound message, keyed by channel and
    # external id, written by the commit of the change the message made (INSERT ... ON
    # CONFLICT on the primary key: of two commits carrying one key, one wins) or by suspend.
    # The receipt as JSON (a suspended one holds its whole message); its state and the
    # instant received as columns, for the list of suspended messages, oldest first, which
    # walks a partial index holding only those.
    f"""CREATE TABLE inbox (
        key text {_C} PRIMARY KEY,
        state text {_C} NOT NULL,
        received_us bigint NOT NULL,
        body text NOT NULL
    )""",
    "CREATE INDEX inbox_suspended ON inbox (received_us, key) WHERE state = 'suspended'",
)

_V5: Final[Migration] = (
    # Routing states (helpkit.ports.Routing): a routed group's version and round-robin
    # cursor, written by the commit of the change routing made, only over the version it
    # read. Loads are counted from the tickets, through their assignee index.
    f"""CREATE TABLE routing (
        group_id text {_C} PRIMARY KEY,
        version bigint NOT NULL,
        cursor text {_C}
    )""",
)

_V6: Final[Migration] = (
    # One ticket change committed in one statement (helpkit.stores.postgres.commit): the
    # writes of a commit of one change, as the store's batch path makes them, in a function.
    function_ddl(_FEED_LOCK_CLASS, 6),
)

_V7: Final[Migration] = (
    # The knowledge base (helpkit.ports.KnowledgeBase), as in the SQLite store (schema
    # version 9), full-text search by a tsvector per search document under a GIN index.
    f"""CREATE TABLE kb_categories (
        id text {_C} PRIMARY KEY,
        position bigint NOT NULL,
        body text NOT NULL
    )""",
    f"""CREATE TABLE kb_sections (
        id text {_C} PRIMARY KEY,
        category_id text {_C} NOT NULL,
        position bigint NOT NULL,
        body text NOT NULL
    )""",
    "CREATE INDEX kb_sections_category ON kb_sections (category_id, position, id)",
    f"""CREATE TABLE kb_articles (
        id text {_C} PRIMARY KEY,
        section_id text {_C},
        revision bigint NOT NULL,
        body text NOT NULL
    )""",
    "CREATE INDEX kb_articles_section ON kb_articles (section_id, id)",
    f"""CREATE TABLE kb_changes (
        article_id text {_C} NOT NULL,
        revision bigint NOT NULL,
        body text NOT NULL,
        PRIMARY KEY (article_id, revision)
    )""",
    f"""CREATE TABLE kb_docs (
        article_id text {_C} NOT NULL,
        kind text {_C} NOT NULL,
        locale text {_C} NOT NULL,
        is_default boolean NOT NULL,
        version bigint NOT NULL,
        title text NOT NULL,
        body text NOT NULL,
        tsv tsvector NOT NULL,
        terms text NOT NULL,
        PRIMARY KEY (article_id, kind, locale)
    )""",
    # How many documents of each kind there are, and hold each index term
    # (helpkit.knowledge.index_terms), kept by each save: a search looks up only its
    # selective terms (helpkit.knowledge.selective) without reading the index.
    f"""CREATE TABLE kb_counts (
        kind text {_C} PRIMARY KEY,
        documents bigint NOT NULL
    )""",
    "INSERT INTO kb_counts (kind, documents) VALUES ('published', 0), ('current', 0)",
    f"""CREATE TABLE kb_terms (
        kind text {_C} NOT NULL,
        term text {_C} NOT NULL,
        documents bigint NOT NULL,
        PRIMARY KEY (kind, term)
    )""",
    "CREATE INDEX kb_docs_tsv ON kb_docs USING gin (tsv)",
    f"""CREATE TABLE kb_links (
        ticket_id text {_C} NOT NULL,
        article_id text {_C} NOT NULL,
        linked_us bigint NOT NULL,
        body text NOT NULL,
        PRIMARY KEY (ticket_id, article_id)
    )""",
    "CREATE INDEX kb_links_article ON kb_links (article_id, linked_us, ticket_id)",
    f"""CREATE TABLE kb_suggestions (
        id text {_C} PRIMARY KEY,
        shown_us bigint NOT NULL,
        body text NOT NULL
    )""",
    "CREATE INDEX kb_suggestions_shown ON kb_suggestions (shown_us, id)",
)

_V8: Final[Migration] = (
    # commit_change takes the events and the tag list as JSON text instead of arrays (see
    # helpkit.stores.postgres.commit): the function of version 6 is dropped, the new one
    # created, in the migration's transaction (a schema not yet migrated keeps the old one).
    drop_ddl(6),
    function_ddl(_FEED_LOCK_CLASS, 8),
)

AGENT_EMAIL_KEY: Final = "(data::json ->> 'email')"
"""An agent row's address as the ``agents_email`` index (schema version 9) holds it. A query
must spell the expression the same way for PostgreSQL to use the index, so the store reads it
from here; changing it needs a new index in a new schema version."""

_V9: Final[Migration] = (
    # Agents found by address (helpkit.ports.AgentEmails) through an index on the address in
    # each row's JSON, instead of the server reading every agent's JSON for every inbound
    # message. PostgreSQL computes the indexed value as rows are written, and here for the
    # rows already there, so nothing else keeps it. A row that is not JSON cannot be indexed:
    # such a row (never written by helpkit; agents_by_email already failed on it) now stops
    # the write that makes it, and the upgrade of a schema holding one, rolled back with the
    # schema left at version 8. The check first names the row, so the error says what to fix
    # (the index's own error would not); only a schema holding such a row pays for the
    # row-by-row search.
    """DO $check$
    DECLARE
        agent record;
    BEGIN
        PERFORM data::json FROM agents;
    EXCEPTION WHEN invalid_text_representation THEN
        FOR agent IN SELECT id, data FROM agents ORDER BY id LOOP
            BEGIN
                PERFORM agent.data::json;
            EXCEPTION WHEN invalid_text_representation THEN
                RAISE EXCEPTION USING ERRCODE = 'data_corrupted', MESSAGE = format(
                    'the agents row %L is not JSON (changed outside helpkit?); helpkit '
                    'schema version 9 indexes each agent''s address, so it cannot upgrade '
                    'the schema (left at version 8): fix or delete that row, then open the '
                    'store again', agent.id);
            END;
        END LOOP;
        RAISE;
    END
    $check$""",
    f"CREATE INDEX agents_email ON agents ({AGENT_EMAIL_KEY})",
)

_V10: Final[Migration] = (
    # commit_change takes each event's columns as parameters of their own (helpkit.stores.
    # postgres.commit: no JSON text of the events to escape and parse on a commit of up to
    # EVENT_SLOTS events), and a create inserts its ticket without ON CONFLICT (the primary
    # key refuses an id stored already). Version 8's function is dropped, the new one created.
    # (The foreign keys of events and ticket_tags on tickets stay, as in the SQLite store:
    # the database holds its own references, whoever writes to it.)
    drop_ddl(8),
    function_ddl(_FEED_LOCK_CLASS, 10),
)

_V11: Final[Migration] = (
    # The consumers waiting for the feed's notifications, one row per waiting connection
    # (its backend's pid and start): commit_change, and the batch path's commits, send
    # pg_notify only while a row is here. A transaction that notifies holds PostgreSQL's
    # notification lock, one for the whole server, from before its commit record until it
    # is flushed: commits that notify cannot share a WAL flush. A row is written under the
    # feed lock, before the consumer's look at the feed (helpkit.stores.postgres.wakeup),
    # so no commit is left both unnotified and unseen.
    """CREATE TABLE feed_listeners (
        pid integer NOT NULL,
        started_us bigint NOT NULL,
        PRIMARY KEY (pid, started_us)
    )""",
    function_ddl(_FEED_LOCK_CLASS, 11),
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
)
"""The statements that bring a schema from version ``i`` to ``i + 1``. All run in one
transaction."""

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""The schema version this helpkit writes (the ``schema_version`` row of ``meta``)."""

SchemaState = Literal["missing", "empty", "current", "older"]
"""What :func:`inspect` found: no such schema, a schema without tables, a helpkit schema of
this version, or of an older one (to upgrade)."""


def _migration_lock_key(schema: str) -> int:
    # A signed 32-bit key from the name: the lock must exist before the schema does.
    key = zlib.crc32(schema.encode("ascii"))
    return key - 2**32 if key >= 2**31 else key


def inspect(
    conn: psycopg.Connection[Any], schema: str, target: int = SCHEMA_VERSION
) -> SchemaState:
    """What ``schema`` is, read without writing anything; SchemaError for a schema helpkit
    refuses (another application's tables, a newer helpkit's, a damaged ``meta``).

    ``conn``'s ``search_path`` is ``schema`` (the store's connections are set up so);
    ``target`` is the version this code writes."""
    exists = conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
    ).fetchone()
    if exists is None or exists[0] == 0:
        return "missing"
    found = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        (schema,),
    ).fetchall()
    tables = {str(row[0]) for row in found}
    if not tables:
        return "empty"
    if "meta" not in tables:
        raise SchemaError(
            f"the schema {schema!r} holds tables but is not a helpkit schema (it has no meta "
            f"table; {len(tables)} tables); helpkit refused it and left it untouched. Name "
            "another schema with ?schema=... in the store URL."
        )
    rows = conn.execute("SELECT key, value FROM meta").fetchall()
    meta = {str(key): str(value) for key, value in rows}
    if meta.get("application") != APPLICATION:
        raise SchemaError(
            f"the schema {schema!r} has a meta table but is not a helpkit schema "
            f"(application {meta.get('application')!r}); helpkit refused it and left it "
            "untouched"
        )
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise SchemaError(
            f"the helpkit schema {schema!r} has no readable schema version "
            f"({meta.get('schema_version')!r}); helpkit refused it and left it untouched"
        ) from None
    if version > target:
        raise SchemaError(
            f"the schema {schema!r} has helpkit schema version {version}, newer than this "
            f"helpkit understands ({target}); it was written by a newer helpkit. "
            "Upgrade helpkit to open it (the schema was left untouched)."
        )
    if version < 1:
        raise SchemaError(f"the helpkit schema {schema!r} has schema version {version}")
    return "current" if version == target else "older"


def migrate(
    conn: psycopg.Connection[Any],
    schema: str,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> None:
    """Create or upgrade ``schema`` (creating the schema itself if missing) to the version of
    ``migrations``, in one transaction under the schema's migration lock; a no-op when it is
    current. ``conn`` is in autocommit mode and its ``search_path`` is ``schema``: the tables
    are created in it, unqualified."""
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            (_MIGRATION_LOCK_CLASS, _migration_lock_key(schema)),
        )
        # Judged again under the lock: another process may have got here first.
        state = inspect(conn, schema, len(migrations))
        if state == "current":
            return
        if state == "missing":
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        version = 0
        if state in ("current", "older"):
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(str(row[0])) if row is not None else 0
        for steps in migrations[version:]:
            for step in steps:
                conn.execute(step)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('application', %s), ('schema_version', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (APPLICATION, str(len(migrations))),
        )
