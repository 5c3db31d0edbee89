"""The PostgreSQL store's one-statement commit (``commit_change``, schema version 6, its
parameters as JSON text since version 8, the events' columns as parameters of their own since
version 10) beyond the conformance suite: it writes exactly the
rows the batch path writes (for any texts: a property), refuses with the same errors leaving
every table as it was, and older schemas are upgraded to have it.

Needs a PostgreSQL server (tests/postgres_fixtures.py says which, and when these tests skip).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit import lifecycle
from helpkit.errors import HelpkitError
from helpkit.events import TagsChanged
from helpkit.lifecycle import Outcome
from helpkit.ports import TicketChange
from helpkit.stores.sqlite.encoding import _dumps
from helpkit.testing.conformance import change_of
from helpkit.testing.conformance.helpers import BASE_TIME, _note, _open
from helpkit.tickets import Actor, Ticket
from postgres_fixtures import fresh_schema, ticket_rows

try:
    from helpkit.stores.postgres import commit as commit_module
    from helpkit.stores.postgres import store as store_module
    from helpkit.stores.postgres.commit import (
        EVENT_SLOTS,
        event_parameters,
        more_events_json,
        refusal,
        split_at_number,
    )
    from helpkit.stores.postgres.store import PostgresStore
except ImportError:  # without psycopg: the fixtures skip (or fail under CI) before any use
    PostgresStore = object  # type: ignore[assignment,misc]

H = timedelta(hours=1)
AGENT = Actor.agent("agent-1")

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(
    before=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "number"), _json),
    after=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "number"), _json),
    number=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_the_two_halves_around_the_number_make_the_stored_text(
    before: dict[str, Any], after: dict[str, Any], number: int
) -> None:
    data = {**before, "number": 0, **{k: v for k, v in after.items() if k not in before}}
    head, tail = split_at_number(data)
    assert head + str(number) + tail == _dumps({**data, "number": number})
    assert json.loads(head + str(number) + tail)["number"] == number


# Values and keys that put the marker split_at_number encodes elsewhere in the text: nested
# under a key "number", under a key ending in a quote and "number", or as a plain value.
_MARKER_KEYS = st.sampled_from(["number", 'x"number', "n", ""])
_marked = st.recursive(
    _json | st.just(commit_module._MARK),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_MARKER_KEYS | st.text(max_size=5), inner)
    ),
    max_leaves=8,
)


@given(
    before=st.dictionaries(
        (_MARKER_KEYS | st.text(max_size=6)).filter(lambda k: k != "number"), _marked
    ),
    after=st.dictionaries(
        (_MARKER_KEYS | st.text(max_size=6)).filter(lambda k: k != "number"), _marked
    ),
    value=_marked,
    numbered=st.booleans(),
)
def test_one_encoding_cut_at_the_marker_gives_the_halves_of_two_encodings(
    before: dict[str, Any], after: dict[str, Any], value: Any, numbered: bool
) -> None:
    """split_at_number encodes the data once, with a marker for the number, and cuts it
    there: the same halves as encoding the keys before and after the number apart (the
    reference, which it falls back to when the marker is in the text more than once); data
    without a number is refused alike."""
    data = {**before, **({"number": value} if numbered else {}), **after}
    try:
        expected = commit_module._halves(data)
    except ValueError:
        with pytest.raises(ValueError):
            split_at_number(data)
        return
    assert split_at_number(data) == expected


@pytest.fixture
def open_store(postgres_database: str) -> Iterator[Callable[..., Any]]:
    """Opens PostgresStores (in a fresh schema unless one is named); closes them after."""
    opened: list[Any] = []

    def make(schema: str | None = None) -> Any:
        store = PostgresStore(postgres_database, schema=schema or fresh_schema())
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _contents(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the store's schema, in key order."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                (store.schema,),
            )
        ]
        return {
            name: conn.execute(
                sql.SQL("SELECT * FROM {}.{} ORDER BY 1, 2").format(
                    sql.Identifier(store.schema), sql.Identifier(name)
                )
            ).fetchall()
            for name in names
        }


def _tags(ticket: Ticket, at: Any, added: set[str], removed: set[str]) -> Outcome:
    event = TagsChanged(
        ticket_id=ticket.id,
        seq=ticket.seq + 1,
        at=at,
        actor=AGENT,
        added=frozenset(added),
        removed=frozenset(removed),
    )
    return Outcome(lifecycle.apply(ticket, event), (event,), ticket.seq)


def _history(store: Any) -> list[tuple[str, Any]]:
    """A run of single-change commits touching every part of commit_change: numbered by the
    store and given a number, tags added and removed, timer states kept and left, a change
    of a numbered ticket whose number is left to the store (0); and the refusals: stale
    creates and updates, a number taken, a number changed. What each commit returned or
    raised."""
    seen: list[tuple[str, Any]] = []

    def commit(change: TicketChange, state: str | None = None) -> Ticket | None:
        try:
            (written,) = store.commit_planned([change], [state])
        except HelpkitError as exc:
            seen.append((type(exc).__name__, str(exc)))
            return None
        seen.append(("written", written))
        ticket: Ticket = written.ticket
        return ticket

    t1 = commit(change_of(_open("t1", 0, BASE_TIME, tags=["vpn", "b"])), '{"s":1}')
    t2 = commit(change_of(_open("t2", 7, BASE_TIME + H)))
    assert t1 is not None and t2 is not None
    t1b = commit(change_of(_tags(t1, BASE_TIME + 2 * H, {"a", "z"}, {"vpn"})), '{"s":2}')
    assert t1b is not None
    # A change of t2 built without its number: the store keeps the number it has.
    unnumbered = change_of(_note(t2, BASE_TIME + 3 * H))
    unnumbered = TicketChange(
        attrs.evolve(unnumbered.ticket, number=0), unnumbered.events, unnumbered.expected_seq
    )
    t2b = commit(unnumbered)
    assert t2b is not None
    commit(change_of(_note(t1, BASE_TIME + 4 * H)))  # stale: t1 moved on
    commit(change_of(_open("t2", 0, BASE_TIME + 4 * H)))  # stale create: t2 exists
    commit(change_of(_open("t3", 7, BASE_TIME + 4 * H)))  # number 7 is t2's
    renumbered = change_of(_note(t1b, BASE_TIME + 5 * H))
    commit(
        TicketChange(
            attrs.evolve(renumbered.ticket, number=99), renumbered.events, renumbered.expected_seq
        )
    )
    commit(change_of(_note(t1b, BASE_TIME + 6 * H)), None)
    commit(change_of(_open("t4", 0, BASE_TIME + 7 * H, tags=["x"])), '{"s":4}')
    return seen


def test_one_statement_writes_and_refuses_as_the_batch_path(
    open_store: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = open_store()
    direct_seen = _history(direct)
    # The one statement's parameters made through the batch path's rows (call_parameters).
    monkeypatch.setattr(store_module, "direct_parameters", lambda *args: None)
    one = open_store()
    one_seen = _history(one)
    monkeypatch.setattr(store_module, "takes_one_statement", lambda item: False)
    batch = open_store()
    batch_seen = _history(batch)
    assert direct_seen == one_seen == batch_seen
    assert _contents(direct) == _contents(batch)
    assert [kind for kind, _ in one_seen] == [
        "written",
        "written",
        "written",
        "written",
        "ConflictError",
        "ConflictError",
        "DuplicateError",
        "ValidationError",
        "written",
        "written",
    ]
    assert _contents(one) == _contents(batch)
    assert one.get_ticket("t2").number == 7 and one.get_ticket("t4").number == 8


def test_a_version_4_schema_is_upgraded_to_commit_in_one_statement(
    open_store: Callable[..., Any],
) -> None:
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.schema import SCHEMA_VERSION

    schema = fresh_schema()
    old = open_store(schema)
    (written,) = old.commit([change_of(_open("t1", 0, BASE_TIME))])
    old.close()
    with psycopg.connect(old.conninfo, autocommit=True) as conn:
        # Back to version 5, as a helpkit of before wrote it.
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("DROP FUNCTION commit_change")
        conn.execute(  # version 7's knowledge base
            "DROP TABLE kb_categories, kb_sections, kb_articles, kb_changes, kb_docs, "
            "kb_counts, kb_terms, kb_links, kb_suggestions"
        )
        conn.execute("DROP INDEX agents_email")  # version 9's index of agents by address
        conn.execute("DROP TABLE feed_listeners")  # version 11's listeners of the feed
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    upgraded = open_store(schema)
    assert SCHEMA_VERSION == 11
    assert _contents(upgraded)["meta"] == [
        ("application", "helpkit"),
        ("schema_version", str(SCHEMA_VERSION)),
    ]
    assert upgraded.get_ticket("t1") == written.ticket
    (noted,) = upgraded.commit([change_of(_note(written.ticket, BASE_TIME + H))])
    (opened,) = upgraded.commit([change_of(_open("t2", 0, BASE_TIME + H))])
    assert upgraded.events("t1") == [*written.events, *noted.events]
    assert opened.ticket.number == 2
    assert [c.position for c in upgraded.changes()] == [1, 2, 3, 4, 5]


# Any text PostgreSQL can hold (no NUL, no lone surrogate): quotes, backslashes, control
# characters, non-ASCII of every plane, which the JSON texts must carry exactly.
_TEXT = (
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
_TAGS = st.lists(_TEXT.map(lambda t: t.lower().strip()).filter(bool), max_size=3)


def test_any_texts_commit_in_one_statement_as_in_the_batch_path(
    open_store: Callable[..., Any],
) -> None:
    """Property: a ticket opened, noted and retagged with any texts (subject, requester id,
    so the events' actor, note, tags, timer state) and numbered by the store or given a
    number is written by ``commit_change`` exactly as by the batch path, row for row, and
    reads back equal to what was committed."""
    one, batch = open_store(), open_store()
    made = iter(range(10**6))
    numbers = iter(range(10**9, 0, -1))  # below the store's own: never taken by it

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        subject=_TEXT,
        requester=_TEXT,
        note=_TEXT,
        tags=_TAGS,
        retag=_TAGS,
        numbered=st.booleans(),
        state=st.none() | _TEXT,
    )
    def run(
        subject: str,
        requester: str,
        note: str,
        tags: list[str],
        retag: list[str],
        numbered: bool,
        state: str | None,
    ) -> None:
        ticket_id = f"p{next(made)}"
        number = next(numbers) if numbered else 0
        opening = change_of(
            _open(ticket_id, number, BASE_TIME, requester_id=requester, subject=subject, tags=tags)
        )
        written: list[TicketChange] = []
        for store, one_statement in ((one, True), (batch, False)):
            path = contextlib.ExitStack()
            if not one_statement:
                path.enter_context(
                    patch.object(store_module, "direct_parameters", return_value=None)
                )
                path.enter_context(
                    patch.object(store_module, "takes_one_statement", return_value=False)
                )
            with path:
                (opened,) = store.commit_planned([opening], [state])
                noting = change_of(_note(opened.ticket, BASE_TIME + H, note))
                (noted,) = store.commit_planned([noting], [None])
                retagged = change_of(
                    _tags(noted.ticket, BASE_TIME + 2 * H, set(retag), set(tags) - set(retag))
                )
                (done,) = store.commit_planned([retagged], [state])
            written.append(done)
            assert store.get_ticket(ticket_id) == done.ticket
            assert store.events(ticket_id) == [*opened.events, *noted.events, *done.events]
        assert written[0] == written[1]
        assert ticket_rows(one, ticket_id) == ticket_rows(batch, ticket_id)

    run()


_EVENT = st.tuples(
    _TEXT, st.integers(min_value=-(2**63), max_value=2**63 - 1), _TEXT, _TEXT, st.none() | _TEXT
)


@given(events=st.lists(_EVENT, max_size=3 * EVENT_SLOTS))
def test_the_event_parameters_carry_every_event_as_it_is(
    events: list[tuple[Any, ...]],
) -> None:
    """Property: the first EVENT_SLOTS events fill their slots in order, each as it is (the
    slots after them empty: all None), and the rest make the JSON text of p_more_events,
    which parses back to them (None when there are no more), whatever their characters."""
    values = event_parameters(events)
    width = 5  # type, at_us, actor, body, tail
    assert len(values) == EVENT_SLOTS * width + 1
    slots = [values[i * width : (i + 1) * width] for i in range(EVENT_SLOTS)]
    assert slots[: len(events)] == [tuple(e) for e in events[:EVENT_SLOTS]]
    assert all(slot == (None,) * width for slot in slots[len(events) :])
    more = values[-1]
    if len(events) <= EVENT_SLOTS:
        assert more is None
    else:
        assert more == more_events_json(events[EVENT_SLOTS:])
        parsed = json.loads(more)
        assert [
            tuple(e[k] for k in ("type", "at_us", "actor", "body", "tail")) for e in parsed
        ] == [tuple(e) for e in events[EVENT_SLOTS:]]


def _noted(outcome: Outcome, count: int, at: Any) -> Outcome:
    """``outcome`` followed by ``count`` notes, as one outcome (one change of all its
    events)."""
    ticket, events = outcome.ticket, list(outcome.events)
    for n in range(count):
        more = _note(ticket, at + n * timedelta(minutes=1), f'note {n} \u00e9"')
        ticket, events = more.ticket, [*events, *more.events]
    return Outcome(ticket, tuple(events), outcome.previous_seq)


def test_changes_of_more_events_than_slots_commit_in_one_statement_as_in_the_batch_path(
    open_store: Callable[..., Any],
) -> None:
    """Property: a create and then an update each of 1 to 3 * EVENT_SLOTS events (those past
    the slots go as p_more_events) are committed by ``commit_change`` exactly as by the batch
    path, row for row, with the feed positions in order, and read back as committed."""
    one, batch = open_store(), open_store()
    made = iter(range(10**6))

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        opened=st.integers(min_value=0, max_value=3 * EVENT_SLOTS - 2),
        updated=st.integers(min_value=1, max_value=3 * EVENT_SLOTS),
        numbered=st.booleans(),
    )
    def run(opened: int, updated: int, numbered: bool) -> None:
        ticket_id = f"m{next(made)}"
        number = 10**9 - next(made) if numbered else 0
        opening = change_of(_noted(_open(ticket_id, number, BASE_TIME), opened, BASE_TIME))
        results = []
        for store, one_statement in ((one, True), (batch, False)):
            path = contextlib.ExitStack()
            if one_statement:
                # The one statement only: the batch path would fail the test.
                path.enter_context(
                    patch.object(PostgresStore, "_pipelined", side_effect=AssertionError)
                )
            else:
                path.enter_context(
                    patch.object(store_module, "direct_parameters", return_value=None)
                )
                path.enter_context(
                    patch.object(store_module, "takes_one_statement", return_value=False)
                )
            with path:
                (first,) = store.commit_planned([opening], [None])
                later = change_of(
                    _noted(Outcome(first.ticket, (), first.ticket.seq), updated, BASE_TIME + H)
                )
                (second,) = store.commit_planned([later], ['{"s":1}'])
            assert store.get_ticket(ticket_id) == second.ticket
            assert store.events(ticket_id) == [*first.events, *second.events]
            results.append((first, second))
        assert results[0] == results[1]
        assert len(results[0][1].events) == updated
        rows = ticket_rows(one, ticket_id)
        assert rows == ticket_rows(batch, ticket_id)
        positions = [row[-1] for row in rows["events"]]
        assert positions == list(range(positions[0], positions[0] + len(positions)))

    run()


def test_a_unique_key_of_tickets_refuses_as_the_reference_store(
    open_store: Callable[..., Any],
) -> None:
    """commit_change (version 10) inserts a new ticket without looking first: a stored id or
    number breaks a unique key of tickets, and refusal() names what is in the way as the
    reference store does (read after the failed statement)."""
    import psycopg
    from psycopg import sql

    store = open_store()
    (t1,) = store.commit([change_of(_open("t1", 0, BASE_TIME))])
    store.commit([change_of(_note(t1.ticket, BASE_TIME + H))])
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(store.schema)))

        def read(query: str, value: Any) -> Any:
            row = conn.execute(query, (value,)).fetchone()
            return None if row is None else row[0]

        copy = "INSERT INTO tickets SELECT * FROM tickets WHERE id = 't1'"
        for query, change, expected in (
            (
                "INSERT INTO tickets (id, number, seq, status, category, priority, "
                "requester_id, created_us, updated_us, tags, state) "
                "SELECT 'x', 1, 1, status, category, priority, requester_id, created_us, "
                "updated_us, tags, state FROM tickets WHERE id = 't1'",
                change_of(_open("t9", 1, BASE_TIME)),
                "ticket number 1 already belongs to ticket 't1'",
            ),
            (
                copy.replace(
                    "SELECT *",
                    "SELECT id, 2, seq, status, category, priority, "
                    "assignee_id, group_id, requester_id, organization_id, created_us, updated_us, "
                    "sla_policy, next_deadline_us, next_check_us, tags, state",
                ),
                change_of(_open("t1", 0, BASE_TIME)),
                "ticket 't1' is at seq 3, not 0: it changed since it was read. Reload and retry.",
            ),
        ):
            with pytest.raises(psycopg.errors.UniqueViolation) as caught:
                conn.execute(query)
            refused = refusal(caught.value, change, read)
            assert refused is not None and str(refused) == expected
            assert refusal(caught.value, change) is None  # nothing to read it with


def test_a_version_9_schema_is_upgraded_to_version_10(
    open_store: Callable[..., Any], postgres_database: str
) -> None:
    """A schema at version 9 (commit_change of version 8) is upgraded when opened: version
    10's function replaces version 8's, the foreign keys stay, and what was written stays
    and goes on."""
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.schema import MIGRATIONS, migrate

    schema = fresh_schema()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        migrate(conn, schema, MIGRATIONS[:9])

    def foreign_keys() -> list[str]:
        with psycopg.connect(postgres_database, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT c.conrelid::regclass::text FROM pg_constraint c "
                "JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE n.nspname = %s AND c.contype = 'f' ORDER BY 1",
                (schema,),
            ).fetchall()
        return [str(row[0]).rpartition(".")[2] for row in rows]

    assert foreign_keys() == ["contact_emails", "events", "organization_domains", "ticket_tags"]
    # What version 9's helpkit wrote there: a ticket (with tags) through version 8's function
    # (its events as one JSON text).
    from helpkit.stores.sqlite.encoding import _Prepared

    item = _Prepared(change_of(_open("t0", 0, BASE_TIME, tags=["old"])), checked=True)
    params = commit_module.call_parameters(item, '{"s":0}', "c")
    slots = params[20 : 20 + 5 * EVENT_SLOTS]
    events = [slots[i : i + 5] for i in range(0, len(slots), 5) if slots[i] is not None]
    v8 = (*params[:20], more_events_json(events), *params[-2:])
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        (v8_arguments,) = _commit_change_arguments(conn, schema)
        assert "p_events text" in v8_arguments
        kinds = [part.split()[-1] for part in v8_arguments.split(", ")]
        call = "SELECT commit_change({})".format(", ".join(f"%s::{k}" for k in kinds))
        assert conn.execute(call, v8).fetchone() == (1,)
    store = open_store(schema)  # upgrades it
    assert foreign_keys() == ["contact_emails", "events", "organization_domains", "ticket_tags"]
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        found = _commit_change_arguments(conn, schema)
    assert len(found) == 1 and "p_type1 text" in found[0] and "p_more_events text" in found[0]
    assert store.get_ticket("t0").tags == frozenset({"old"})
    assert [e.seq for e in store.events("t0")] == [1, 2]
    (opened,) = store.commit([change_of(_open("t1", 0, BASE_TIME, tags=["vpn"]))])
    (noted,) = store.commit([change_of(_note(opened.ticket, BASE_TIME + H))])
    assert store.get_ticket("t1") == noted.ticket and opened.ticket.number == 2
    assert [c.position for c in store.changes()] == [1, 2, 3, 4, 5]


def _commit_change_arguments(conn: Any, schema: str) -> list[str]:
    """The argument lists of every ``commit_change`` function in ``schema``."""
    rows = conn.execute(
        "SELECT pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %s AND p.proname = 'commit_change'",
        (schema,),
    ).fetchall()
    return [row[0] for row in rows]


def test_a_version_7_schema_keeps_its_function_until_upgraded_to_version_8(
    open_store: Callable[..., Any], postgres_database: str
) -> None:
    """A schema at version 7 has version 6's ``commit_change`` (the event columns as
    arrays), which still commits there; opening it upgrades it to version 8, whose function
    replaces that one, and what was written stays."""
    import psycopg
    from psycopg import sql

    from helpkit.stores.postgres.schema import MIGRATIONS, migrate
    from helpkit.stores.sqlite.encoding import _Prepared

    schema = fresh_schema()
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        migrate(conn, schema, MIGRATIONS[:7])
        # Version 6's call, as a helpkit of version 7 sends it.
        item = _Prepared(change_of(_open("t1", 0, BASE_TIME, tags=["vpn"])), checked=True)
        assert item.pending_state is not None and item.row is not None
        head, tail = split_at_number(item.pending_state)
        bodies = [row[5] for row in item.event_rows]
        tails: list[str | None] = [None] * len(item.event_rows)
        for index, data in item.pending_events:
            bodies[index], tails[index] = split_at_number(data)
        rows = item.event_rows
        called = conn.execute(
            "SELECT commit_change(%s, 0::bigint, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[],"
            " %s::text[], NULL::text, 'c')",
            (
                *item.row[:16],
                head,
                tail,
                sorted(item.tags),
                [r[2] for r in rows],
                [r[3] for r in rows],
                [r[4] for r in rows],
                bodies,
                tails,
            ),
        ).fetchone()
        assert called == (1,)
        found = _commit_change_arguments(conn, schema)
        assert len(found) == 1 and "p_types text[]" in found[0]
    store = open_store(schema)
    opened = store.get_ticket("t1")
    assert opened.number == 1 and opened.tags == frozenset({"vpn"})
    (noted,) = store.commit([change_of(_note(opened, BASE_TIME + H))])
    assert [e.seq for e in store.events("t1")] == [1, 2, 3]
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        found = _commit_change_arguments(conn, schema)
    # Opening it upgraded it on to the current version, whose function replaced version 8's.
    assert len(found) == 1 and "p_more_events text" in found[0], found
    assert noted.ticket.seq == 3
