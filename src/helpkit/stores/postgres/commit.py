"""A commit of one ticket change in one statement: the ``commit_change`` function's call.

Most commits carry one change (a command of the pipeline changes one ticket). The store sends
such a commit as one call of the schema's ``commit_change`` function (schema version 10's,
see :func:`function_ddl`), in autocommit mode: the statement is its own transaction, so
the commit is one round trip to the server, whose reply comes once the commit is durable (at
the connection's ``synchronous_commit``). The function does what the store's batch path does,
in the same order and under the same locks:

1. a new ticket takes its number from the counter row (locked until the transaction ends, so
   numbers follow commit order; a rollback gives the number back) and is inserted; a ticket
   that exists already is a stale create;
2. a ticket that exists is updated only at its expected seq (``WHERE seq = expected``: the
   update waits for a concurrent writer of the row and then finds its seq moved on);
3. its tags rows follow its tags, its timer state is kept;
4. its events are numbered after the last feed position under the feed lock, in a statement
   of its own (a PL/pgSQL statement takes its own snapshot, which sees every transaction that
   held the lock before), and the tenant's channel is notified.

A refusal raises a PostgreSQL error with one of helpkit's SQLSTATEs (``HK001`` stale seq,
``HK002`` a ticket number another ticket has, ``HK003`` a number that cannot change), or, for
a new ticket (inserted without ``ON CONFLICT`` since schema version 10), PostgreSQL's
unique_violation on ``tickets_pkey`` (the id is stored: stale) or ``tickets_number_key``: the
statement's transaction rolls back, and :func:`refusal` turns it into the error the reference
store raises (reading what is in the way, for the latter two). Values are sent as parameters
of a prepared statement, every one a scalar: since schema version 10 each event's columns are
parameters of their own, in :data:`EVENT_SLOTS` slots (:func:`event_parameters`; the events of
a change of more go as one JSON text, :func:`more_events_json`), so no text is escaped on the
client nor parsed on the server; the tag list is one JSON text (``json_array_elements_text``).
(Schema version 8's function took all the events as one JSON text, which the server parsed
twice and whose bodies the client escaped; version 6's took each event column as an array,
whose encoding cost the client more than the whole JSON text.)

The ticket number of a ticket the store numbers is also in its JSON state and opening event:
the client sends that text cut in two around the number's value (:func:`split_at_number`), and
the function joins the two halves around the number it gave, so the stored text is exactly the
one the batch path writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import psycopg

from helpkit._codec.text import dumps_unescaped as _dumps_unescaped
from helpkit.errors import ConflictError, DuplicateError, HelpkitError, SchemaError, ValidationError
from helpkit.events import TicketOpened, event_to_dict
from helpkit.ports import TicketChange
from helpkit.stores.contract import validate_change
from helpkit.stores.sqlite.encoding import (
    _NONE_LAST,
    _dumps,
    _encode_ticket,
    _micros,
    _Prepared,
)

__all__ = [
    "COMMIT_CHANGE",
    "EVENT_SLOTS",
    "PARAMETER_COUNT",
    "call_parameters",
    "direct_parameters",
    "drop_ddl",
    "event_parameters",
    "function_ddl",
    "more_events_json",
    "refusal",
    "split_at_number",
    "takes_one_statement",
]

# helpkit's SQLSTATEs (class "HK", not one of PostgreSQL's).
_STALE: Final = "HK001"
_NUMBER_TAKEN: Final = "HK002"
_NUMBER_FIXED: Final = "HK003"
# PostgreSQL's unique_violation.
_UNIQUE: Final = "23505"

_SCALARS: Final = (
    ("p_id", "text"),
    ("p_expected", "bigint"),
    ("p_number", "bigint"),
    ("p_seq", "bigint"),
    ("p_status", "text"),
    ("p_category", "text"),
    ("p_priority", "integer"),
    ("p_assignee_id", "text"),
    ("p_group_id", "text"),
    ("p_requester_id", "text"),
    ("p_organization_id", "text"),
    ("p_created_us", "bigint"),
    ("p_updated_us", "bigint"),
    ("p_sla_policy", "text"),
    ("p_next_deadline_us", "bigint"),
    ("p_next_check_us", "bigint"),
    ("p_tags", "text"),
    ("p_state", "text"),
    ("p_state_tail", "text"),
)
# Schema version 6's function (kept as it was: a schema at version 6 or 7 still has it, and
# the migration to version 8 drops it): the tag list and each event column as an array.
_V6_PARAMETERS: Final = (
    *_SCALARS,
    ("p_tag_list", "text[]"),
    ("p_types", "text[]"),
    ("p_at_us", "bigint[]"),
    ("p_actors", "text[]"),
    ("p_bodies", "text[]"),
    ("p_body_tails", "text[]"),
    ("p_timer_state", "text"),
    ("p_channel", "text"),
)
# Schema version 8's (kept as it was, like version 6's): the tag list and the events each as
# one JSON text.
_V8_PARAMETERS: Final = (
    *_SCALARS,
    ("p_tag_list", "text"),
    ("p_events", "text"),
    ("p_timer_state", "text"),
    ("p_channel", "text"),
)

EVENT_SLOTS: Final = 4
"""How many events schema version 10's ``commit_change`` takes as parameters of their own
(five each: type, at_us, actor, body, tail); a change of more sends the rest as one JSON text
(``p_more_events``, :func:`more_events_json`). Most of helpkit's commands make one to three."""

_EVENT_FIELDS: Final = (
    ("type", "text"),
    ("at_us", "bigint"),
    ("actor", "text"),
    ("body", "text"),
    ("tail", "text"),
)
# Schema version 10's: every event column a scalar parameter of its own, sent as it is (no
# JSON text to escape on the client and to parse twice on the server), the tag list as JSON.
_PARAMETERS: Final = (
    *_SCALARS,
    ("p_tag_list", "text"),
    *(
        (f"p_{field}{slot}", kind)
        for slot in range(1, EVENT_SLOTS + 1)
        for field, kind in _EVENT_FIELDS
    ),
    ("p_more_events", "text"),
    ("p_timer_state", "text"),
    ("p_channel", "text"),
)
_NO_EVENT: Final = (None,) * len(_EVENT_FIELDS)

PARAMETER_COUNT: Final = len(_PARAMETERS)
"""How many parameters :data:`COMMIT_CHANGE` takes."""

COMMIT_CHANGE: Final = "SELECT commit_change({})".format(
    ", ".join(f"%s::{kind}" for _, kind in _PARAMETERS)
)
"""The call (parameters: :func:`call_parameters`); returns the ticket's number."""


def function_ddl(feed_lock_class: int, version: int = 8) -> str:
    """The DDL of ``commit_change`` as schema version ``version`` (6, 8, 10 or 11) creates
    it, which takes the feed lock of class ``feed_lock_class`` (``schema.FEED_LOCK``'s), and
    from version 11 notifies only while a consumer waits. A later change
    of the function is a new migration step, like any other change of the schema; the DDL of
    an earlier version stays as it was (a new schema runs every step)."""
    if version not in (6, 8, 10, 11):
        raise ValueError(f"no commit_change of schema version {version}")
    parameters = {6: _V6_PARAMETERS, 8: _V8_PARAMETERS, 10: _PARAMETERS, 11: _PARAMETERS}[version]
    if version == 6:
        tag_list = "p_tag_list"
        events = """unnest(p_types, p_at_us, p_actors, p_bodies, p_body_tails)
                WITH ORDINALITY AS e(type, at_us, actor, body, tail, n)"""
    else:
        # One parse of each JSON text, into rows (the events in their order).
        tag_list = "ARRAY(SELECT json_array_elements_text(p_tag_list::json))"
        events = _json_events("p_events")
    if version >= 10:
        # The events of the slots (a slot of no event has no type), then those beyond them:
        # a statement of its own, whose snapshot sees the first ones (this transaction's),
        # so their positions follow on.
        slots = ",\n                ".join(
            "({}, {})".format(slot, ", ".join(f"p_{field}{slot}" for field, _ in _EVENT_FIELDS))
            for slot in range(1, EVENT_SLOTS + 1)
        )
        slot_rows = f"(VALUES {slots})\n                AS e(n, type, at_us, actor, body, tail)"
        more_rows = _json_events("p_more_events")
        insert_events = f"""{_insert_events("0", slot_rows)}
        WHERE e.type IS NOT NULL;
    IF p_more_events IS NOT NULL THEN
        {_insert_events(str(EVENT_SLOTS), more_rows)};
    END IF;"""
        # A ticket id stored already breaks the primary key (SQLSTATE 23505 on tickets_pkey):
        # a stale create, which the store reports as the reference store does (its seq read
        # after). No ON CONFLICT: a speculative insertion costs every create a lock and a
        # record more.
        on_conflict = ";"
    else:
        insert_events = f"{_insert_events('0', events)};"
        on_conflict = f"""
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
            SELECT seq INTO v_found FROM tickets WHERE id = p_id;
            RAISE EXCEPTION USING ERRCODE = '{_STALE}', DETAIL = coalesce(v_found, 0)::text,
                MESSAGE = format('ticket %s is at seq %s', p_id, v_found);
        END IF;"""
    columns = (
        "id, number, seq, status, category, priority, assignee_id, group_id, requester_id, "
        "organization_id, created_us, updated_us, sla_policy, next_deadline_us, "
        "next_check_us, tags, state"
    )
    updated = ", ".join(
        f"{column} = p_{column}"
        for column in (
            "seq",
            "status",
            "category",
            "priority",
            "assignee_id",
            "group_id",
            "requester_id",
            "organization_id",
            "created_us",
            "updated_us",
            "sla_policy",
            "next_deadline_us",
            "next_check_us",
            "tags",
        )
    )
    notify = "PERFORM pg_notify(p_channel, '');"
    if version >= 11:
        # Only while a consumer waits (a row of feed_listeners, registered under the feed
        # lock, which this transaction holds: see helpkit.stores.postgres.wakeup). A
        # statement of its own, whose snapshot sees every registration committed before
        # this transaction took the lock.
        notify = f"""IF EXISTS (SELECT 1 FROM feed_listeners) THEN
        {notify}
    END IF;"""
    signature = ", ".join(f"{name} {kind}" for name, kind in parameters)
    return f"""CREATE OR REPLACE FUNCTION commit_change({signature}) RETURNS bigint
LANGUAGE plpgsql AS $function$
DECLARE
    v_number bigint := p_number;
    v_found bigint;
    v_owner text;
    v_old_tags text := '[]';
BEGIN
    IF p_expected = 0 THEN
        IF p_number = 0 THEN
            UPDATE ticket_numbers SET last_number = last_number + 1
                RETURNING last_number INTO v_number;
        ELSE
            SELECT seq INTO v_found FROM tickets WHERE id = p_id;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = '{_STALE}', DETAIL = v_found::text,
                    MESSAGE = format('ticket %s is at seq %s', p_id, v_found);
            END IF;
            SELECT id INTO v_owner FROM tickets WHERE number = p_number;
            IF FOUND THEN
                RAISE EXCEPTION USING ERRCODE = '{_NUMBER_TAKEN}', DETAIL = v_owner,
                    MESSAGE = format('ticket number %s belongs to %s', p_number, v_owner);
            END IF;
            UPDATE ticket_numbers SET last_number = greatest(last_number, p_number);
        END IF;
        INSERT INTO tickets ({columns}) VALUES (
            p_id, v_number, p_seq, p_status, p_category, p_priority, p_assignee_id,
            p_group_id, p_requester_id, p_organization_id, p_created_us, p_updated_us,
            p_sla_policy, p_next_deadline_us, p_next_check_us, p_tags,
            CASE WHEN p_state_tail IS NULL THEN p_state
                ELSE p_state || v_number || p_state_tail END){on_conflict}
    ELSE
        -- The row as it was (o) beside the row updated (t): its number and its tags.
        UPDATE tickets AS t SET {updated},
            state = CASE WHEN p_state_tail IS NULL THEN p_state
                ELSE p_state || o.number || p_state_tail END
        FROM tickets AS o
        WHERE t.id = p_id AND t.seq = p_expected AND o.id = p_id
        RETURNING o.number, o.tags INTO v_found, v_old_tags;
        IF NOT FOUND THEN
            SELECT seq INTO v_found FROM tickets WHERE id = p_id;
            RAISE EXCEPTION USING ERRCODE = '{_STALE}', DETAIL = coalesce(v_found, 0)::text,
                MESSAGE = format('ticket %s is at seq %s', p_id, v_found);
        END IF;
        IF p_number <> 0 AND p_number <> v_found THEN
            RAISE EXCEPTION USING ERRCODE = '{_NUMBER_FIXED}', DETAIL = v_found::text,
                MESSAGE = format('ticket %s has number %s', p_id, v_found);
        END IF;
        v_number := v_found;
    END IF;
    IF v_old_tags <> p_tags THEN
        DELETE FROM ticket_tags WHERE ticket_id = p_id AND tag <> ALL ({tag_list});
        INSERT INTO ticket_tags (ticket_id, tag)
            SELECT p_id, tag FROM unnest({tag_list}) AS tag
            ON CONFLICT (ticket_id, tag) DO NOTHING;
    END IF;
    IF p_timer_state IS NOT NULL THEN
        INSERT INTO timer_states (ticket_id, state) VALUES (p_id, p_timer_state)
            ON CONFLICT (ticket_id) DO UPDATE SET state = excluded.state;
    END IF;
    -- The feed lock, then the positions in a statement of their own (see FEED_LOCK).
    PERFORM pg_advisory_xact_lock({feed_lock_class}, 'events'::regclass::oid::integer);
    {insert_events}
    {notify}
    RETURN v_number;
END
$function$"""


def _json_events(parameter: str) -> str:
    """The rows of the events in the JSON text ``parameter`` (one parse), in their order."""
    return f"""ROWS FROM (json_to_recordset({parameter}::json)
                AS (type text, at_us bigint, actor text, body text, tail text))
                WITH ORDINALITY AS e(type, at_us, actor, body, tail, n)"""


def _insert_events(before: str, rows: str) -> str:
    """The insert of the events ``rows`` (columns n, type, at_us, actor, body, tail; n from
    1), each the ``before + n``-th of the change, numbered after the last feed position."""
    seq = "p_expected + e.n" if before == "0" else f"p_expected + {before} + e.n"
    return f"""INSERT INTO events (ticket_id, seq, type, at_us, actor, body, position)
        SELECT p_id, {seq}, e.type, e.at_us, e.actor,
            CASE WHEN e.tail IS NULL THEN e.body ELSE e.body || v_number || e.tail END,
            last.position + e.n
        FROM (SELECT coalesce(max(position), 0) AS position FROM events) AS last,
            {rows}"""


def drop_ddl(version: int) -> str:
    """The DDL dropping schema version ``version``'s ``commit_change`` (6 or 8: the
    migrations to versions 8 and 10 replace them; a function of other parameters is another
    function in PostgreSQL)."""
    if version not in (6, 8):
        raise ValueError(f"no commit_change of schema version {version} to drop")
    parameters = _V6_PARAMETERS if version == 6 else _V8_PARAMETERS
    kinds = ", ".join(kind for _, kind in parameters)
    return f"DROP FUNCTION commit_change({kinds})"


# The value ``split_at_number`` encodes in place of the number, and the text it looks for: a
# key "number" with that value. Outside string values ``"number":`` is only ever a key (inside
# them every quote is escaped), so the text holds it once unless another key "number", or
# one ending in an escaped quote and "number", has the same value: then the halves are made
# by :func:`_halves` instead.
_MARK: Final = -7_305_226_118_840_919_517
_MARKED: Final = f'"number":{_MARK}'


def split_at_number(data: dict[str, Any]) -> tuple[str, str]:
    """The JSON text of ``data`` (as the stores write it) cut around the value of its
    ``number`` key: ``head + str(n) + tail`` is the text of ``data`` with ``number`` n.

    One encoding of ``data`` with a marker for the number, cut where the marker is
    (:func:`_halves` encodes the keys before and after the number apart, and is what this
    falls back to when the marker is not found exactly once)."""
    if "number" in data:
        marked = dict(data)
        marked["number"] = _MARK
        parts = _dumps(marked).split(_MARKED)
        if len(parts) == 2:
            return parts[0] + '"number":', parts[1]
    return _halves(data)


def _halves(data: dict[str, Any]) -> tuple[str, str]:
    """:func:`split_at_number` by encoding the keys before the number and those after it
    apart (two encodings)."""
    keys = list(data)
    at = keys.index("number")
    before = {key: data[key] for key in keys[:at]}
    after = {key: data[key] for key in keys[at + 1 :]}
    head = _dumps(before)[:-1] + (',"number":' if before else '"number":')
    tail = "," + _dumps(after)[1:] if after else "}"
    return head, tail


def takes_one_statement(item: _Prepared) -> bool:
    """Whether the change of ``item`` is committed by ``commit_change``: it is valid, has
    events and could be encoded, and carries no receipt, no routing states and no new
    contacts (those take the batch path, whose checks come in the reference store's order for
    them)."""
    change = item.change
    return (
        item.invalid is None
        and item.rows_error is None
        and bool(change.events)
        and change.receipt is None
        and not change.routing
        and not change.contacts
    )


def call_parameters(item: _Prepared, timer_state: str | None, channel: str) -> tuple[Any, ...]:
    """The parameters of :data:`COMMIT_CHANGE` for ``item`` (see :func:`takes_one_statement`)."""
    row = item.row
    assert row is not None
    state: str = row[16]
    state_tail = None
    if item.pending_state is not None:
        state, state_tail = split_at_number(item.pending_state)
    events: list[tuple[Any, ...]] = [
        (row[2], row[3], row[4], row[5], None) for row in item.event_rows
    ]
    for index, data in item.pending_events:
        events[index] = (*events[index][:3], *split_at_number(data))
    return (
        row[0],
        item.change.expected_seq,
        *row[1:16],
        state,
        state_tail,
        _dumps_unescaped(sorted(item.tags)) if item.tags else "[]",
        *event_parameters(events),
        timer_state,
        channel,
    )


def event_parameters(events: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The event parameters of :data:`COMMIT_CHANGE` for ``events`` (each ``(type, at_us,
    actor, body, tail)``, the tail of a body the store numbers, else None): the first
    :data:`EVENT_SLOTS` in their slots (an empty slot all None), then the rest as one JSON
    text (:func:`more_events_json`), None when there is none."""
    values: list[Any] = []
    for event in events[:EVENT_SLOTS]:
        values.extend(event)
    for _ in range(EVENT_SLOTS - len(events)):
        values.extend(_NO_EVENT)
    more = more_events_json(events[EVENT_SLOTS:]) if len(events) > EVENT_SLOTS else None
    values.append(more)
    return tuple(values)


def more_events_json(events: Sequence[tuple[Any, ...]]) -> str:
    """``events`` (as :func:`event_parameters` takes them) as the ``p_more_events`` text of
    :data:`COMMIT_CHANGE`: one JSON array of objects ``{"type", "at_us", "actor", "body",
    "tail"}`` in their order. Non-ASCII characters are sent as they are (see
    :data:`helpkit._codec.text.dumps_unescaped`)."""
    keys = [field for field, _ in _EVENT_FIELDS]
    return _dumps_unescaped([dict(zip(keys, event, strict=True)) for event in events])


def direct_parameters(
    change: TicketChange, timer_state: str | None, channel: str
) -> tuple[Any, ...] | None:
    """:func:`call_parameters` of ``change`` made straight from it, without a
    :class:`~helpkit.stores.sqlite.encoding._Prepared` (the batch path's rows): each value
    encoded once, where it goes. None when ``change`` does not take one statement (see
    :func:`takes_one_statement`) or is not one this encodes as the batch path would (invalid,
    a text that is not ASCII, a marker found twice, a value that cannot be encoded): the
    caller then takes the general path, which commits it or raises the error the reference
    store raises. Most changes of helpkit's pipeline are ASCII; a text beyond ASCII costs the
    general path's encoding, never another result."""
    if not change.events or change.receipt is not None or change.routing or change.contacts:
        return None
    try:
        validate_change(change, check_values=False)
        return _direct(change, timer_state, channel)
    except (SchemaError, TypeError, ValueError, AttributeError, KeyError, ValidationError):
        return None


def _direct(change: TicketChange, timer_state: str | None, channel: str) -> tuple[Any, ...] | None:
    ticket = change.ticket
    number = ticket.number
    unnumbered = number == 0
    category = ticket.category._value_  # .value is a Python-level property: slower
    # What _Prepared checks (its _check_text), only for ASCII: anything else, or a value that
    # is not text, takes the general path.
    for text in (
        ticket.id,
        ticket.status,
        category,
        ticket.assignee_id,
        ticket.group_id,
        ticket.requester_id,
        ticket.organization_id,
        ticket.sla_policy,
    ):
        if text is not None and not text.isascii():
            return None
    if ticket.tags:
        tags = sorted(ticket.tags)
        tag_list = _dumps_unescaped(tags)
        if not tag_list.isascii():
            return None
        tag_text = tag_list  # ASCII: the escaped encoding is the same text
    else:
        tag_text = tag_list = "[]"
    state = _encode_ticket(ticket)
    if unnumbered:
        head, tail = _marked_halves(state)
        if tail is None:
            return None
        state_text: str = head
    else:
        state_text, tail = _dumps(state), None
    events: list[tuple[Any, ...]] = []
    for event in change.events:
        kind = event.TYPE
        actor = str(event.actor)
        if not (event.ticket_id.isascii() and kind.isascii() and actor.isascii()):
            return None
        data = event_to_dict(event)
        if unnumbered and isinstance(event, TicketOpened):
            body, body_tail = _marked_halves(data)
            if body_tail is None:
                return None
        else:
            body, body_tail = _dumps(data), None
        events.append((kind, _micros(event.at), actor, body, body_tail))
    deadline = ticket.next_deadline
    check = ticket.next_check
    return (
        ticket.id,
        change.expected_seq,
        number,
        ticket.seq,
        ticket.status,
        category,
        int(ticket.priority),
        ticket.assignee_id,
        ticket.group_id,
        ticket.requester_id,
        ticket.organization_id,
        _micros(ticket.created_at),
        _micros(ticket.updated_at),
        ticket.sla_policy,
        _NONE_LAST if deadline is None else _micros(deadline),
        None if check is None else _micros(check),
        tag_text,
        state_text,
        tail,
        tag_list,
        *event_parameters(events),
        timer_state,
        channel,
    )


def _marked_halves(data: dict[str, Any]) -> tuple[str, str | None]:
    """:func:`split_at_number` of ``data`` (a dict of one's own, changed in place), or
    ``(text, None)`` when its marker is not found exactly once."""
    if "number" not in data:
        return "", None
    data["number"] = _MARK
    parts = _dumps(data).split(_MARKED)
    if len(parts) != 2:
        return "", None
    return parts[0] + '"number":', parts[1]


def refusal(
    exc: psycopg.Error, change: TicketChange, read: Callable[[str, Any], Any] | None = None
) -> HelpkitError | None:
    """The error the reference store raises for the refusal ``commit_change`` raised on
    ``change`` (None for any other error). ``read(query, value)`` reads one value after the
    statement failed (None: no row), for a refusal that a table's own constraint raised:
    what is stored in the way is read then, to be named as the reference store names it
    (schema version 10's create takes no look before it inserts)."""
    state = exc.sqlstate
    detail = exc.diag.message_detail or ""
    ticket_id = change.ticket.id
    if state == _UNIQUE and read is not None:
        constraint = exc.diag.constraint_name
        if constraint == "tickets_pkey":
            seq = read("SELECT seq FROM tickets WHERE id = %s", ticket_id)
            state, detail = _STALE, str(seq or 0)
        elif constraint == "tickets_number_key":
            owner = read("SELECT id FROM tickets WHERE number = %s", change.ticket.number)
            state, detail = _NUMBER_TAKEN, str(owner)
    if state == _STALE:
        return ConflictError(
            f"ticket {ticket_id!r} is at seq {detail}, not {change.expected_seq}: it changed "
            "since it was read. Reload and retry."
        )
    if state == _NUMBER_TAKEN:
        return DuplicateError(
            f"ticket number {change.ticket.number} already belongs to ticket {detail!r}"
        )
    if state == _NUMBER_FIXED:
        return ValidationError(f"ticket {ticket_id!r} has number {detail}; it cannot change")
    return None
