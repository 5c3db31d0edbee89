"""The one-statement commit sent through libpq (:mod:`helpkit.stores.postgres.call`): its
parameters' text is what psycopg would send (a property), it writes what ``Cursor.execute``
writes (a property, on a server), a statement psycopg deallocated is prepared again, and a
connection the server dropped is replaced before the next commit.

The server parts need a PostgreSQL server (tests/postgres_fixtures.py says which, and when
these tests skip).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpkit.ports import TicketChange
from helpkit.testing.conformance import change_of
from helpkit.testing.conformance.helpers import BASE_TIME, _note, _open
from postgres_fixtures import fresh_schema, ticket_rows

call_module = pytest.importorskip("helpkit.stores.postgres.call")
from helpkit.stores.postgres import store as store_module  # noqa: E402
from helpkit.stores.postgres.store import PostgresStore  # noqa: E402

H = timedelta(hours=1)

_SCALARS = (
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=12)
    | st.text(alphabet=st.characters(max_codepoint=127), max_size=12)
    | st.text(alphabet="a\x00\\'\"$é", max_size=6)  # NUL, quotes, a backslash, beyond ASCII
    | st.booleans()
    | st.floats(allow_nan=False)
)


@given(st.lists(_SCALARS, max_size=8))
def test_text_values_are_the_text_of_ascii_texts_and_integers_only(params: list[Any]) -> None:
    """Property: the text parameters of ASCII text without NUL, integers and None read back
    as those values; any other value (text beyond ASCII or with NUL, a bool, a float) gives
    None, for psycopg to adapt."""
    values = call_module.text_values(params)
    plain = all(
        p is None or (type(p) is str and p.isascii() and "\x00" not in p) or (type(p) is int)
        for p in params
    )
    if not plain:
        assert values is None
        return
    assert values is not None and len(values) == len(params)
    for value, param in zip(values, params, strict=True):
        if param is None:
            assert value is None
        elif type(param) is int:
            assert value is not None and int(value) == param
        else:
            assert value is not None and value.decode("ascii") == param


def test_numbered_writes_postgresql_placeholders() -> None:
    assert call_module.numbered("SELECT f(%s::text, %s)", 2) == b"SELECT f($1::text, $2)"
    for query, count in (("SELECT %s", 2), ("SELECT %s, 5 % 2", 1)):
        with pytest.raises(ValueError):
            call_module.numbered(query, count)


@pytest.fixture
def open_store(postgres_database: str) -> Iterator[Callable[..., Any]]:
    """Opens PostgresStores in fresh schemas; closes them after."""
    opened: list[Any] = []

    def make(**options: Any) -> Any:
        store = PostgresStore(postgres_database, schema=fresh_schema(), **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# ASCII with what needs care in text: quotes, backslashes, control characters, '$'.
_ASCII = (
    st.text(alphabet=string.printable + "\x01\x7f$", min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
)


def test_the_libpq_call_writes_what_the_cursor_writes(open_store: Callable[..., Any]) -> None:
    """Property: a ticket opened (numbered by the store or given a number) and noted with
    any ASCII texts and timer state is written through libpq (``call``) exactly as through
    ``Cursor.execute``, row for row, and returns the same changes."""
    sent, executed = open_store(), open_store()
    made = iter(range(10**6))
    numbers = iter(range(10**9, 0, -1))

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        subject=_ASCII,
        requester=_ASCII,
        note=_ASCII,
        tags=st.lists(_ASCII.map(str.lower).map(str.strip).filter(bool), max_size=3),
        numbered=st.booleans(),
        state=st.none() | _ASCII,
    )
    def run(
        subject: str, requester: str, note: str, tags: list[str], numbered: bool, state: Any
    ) -> None:
        ticket_id = f"c{next(made)}"
        number = next(numbers) if numbered else 0
        opening = change_of(
            _open(ticket_id, number, BASE_TIME, requester_id=requester, subject=subject, tags=tags)
        )
        written: list[list[TicketChange]] = []
        for store, through_libpq in ((sent, True), (executed, False)):
            block: Any = (
                _calls_counted()
                if through_libpq
                else patch.object(store_module, "text_values", return_value=None)
            )
            with block as counted:
                (opened,) = store.commit_planned([opening], [state])
                (noted,) = store.commit_planned(
                    [change_of(_note(opened.ticket, BASE_TIME + H, note))], [state]
                )
            if through_libpq:
                assert counted == [2]  # both went through call
            written.append([opened, noted])
        assert written[0] == written[1]
        assert ticket_rows(sent, ticket_id) == ticket_rows(executed, ticket_id)

    run()


class _calls_counted:  # noqa: N801 - a context manager named as one reads
    """Counts the calls of ``store.call`` in the block (a list of one count)."""

    def __enter__(self) -> list[int]:
        self.count = [0]
        real = call_module.call

        def counting(*args: Any) -> Any:
            self.count[0] += 1
            return real(*args)

        self.patch = patch.object(store_module, "call", counting)
        self.patch.start()
        return self.count

    def __exit__(self, *exc: object) -> None:
        self.patch.stop()


def test_a_statement_deallocated_is_prepared_again(open_store: Callable[..., Any]) -> None:
    """psycopg's ``DEALLOCATE ALL`` (after a rollback, when its own cache holds a statement)
    drops the statements ``call`` prepared: the next commit prepares its statement again."""
    store = open_store(pool_min=1, pool_max=1)
    (first,) = store.commit_planned([change_of(_open("d1", 0, BASE_TIME))], [None])
    with store._pool.connection() as conn:
        assert conn.prepared_statements() == {b"helpkit_commit_change"}
        conn.execute("DEALLOCATE ALL")
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
    (second,) = store.commit_planned([change_of(_open("d2", 0, BASE_TIME))], [None])
    assert (first.ticket.number, second.ticket.number) == (1, 2)
    with store._pool.connection() as conn:
        names = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
        assert names == [("helpkit_commit_change",)]
    assert store.get_ticket("d2") == second.ticket


def test_a_connection_the_server_dropped_is_replaced_before_the_next_commit(
    open_store: Callable[..., Any],
) -> None:
    import psycopg

    store = open_store(pool_min=1, pool_max=1)
    store.commit_planned([change_of(_open("k1", 0, BASE_TIME))], [None])
    with store._pool.connection() as conn:
        pid = conn.info.backend_pid
    with psycopg.connect(store.conninfo, autocommit=True) as admin:
        # Waits until the backend has exited (its farewell is then in the client's socket,
        # which the pool's check on borrowing finds; a drop the client has not heard of yet
        # fails the call that meets it, see docs/postgresql.md).
        assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone() == (True,)
    (second,) = store.commit_planned([change_of(_open("k2", 0, BASE_TIME))], [None])
    assert second.ticket.number == 2
    with store._pool.connection() as conn:
        assert conn.info.backend_pid != pid
    assert store.get_ticket("k2") == second.ticket


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.2.0", True),
        ("3.3.9", True),
        ("3.3.10.dev1", True),
        ("3.4.0", False),
        ("4.0.0", False),
        ("3.1.18", False),
        ("3", False),
        ("x.y", False),
    ],
)
def test_the_libpq_call_is_used_only_with_the_psycopg_releases_it_was_tested_on(
    version: str, expected: bool
) -> None:
    assert call_module.usable(version) is expected


def test_with_another_psycopg_release_the_commit_goes_through_the_cursor(
    open_store: Callable[..., Any],
) -> None:
    """A psycopg the libpq call was not tested on (``USABLE`` false): the store commits
    through psycopg's cursor, the same changes, and never calls ``call``."""
    store = open_store()
    with (
        patch.object(store_module, "CALLS_BY_LIBPQ", False),
        _calls_counted() as counted,
    ):
        (opened,) = store.commit_planned([change_of(_open("g1", 0, BASE_TIME))], [None])
        (noted,) = store.commit_planned(
            [change_of(_note(opened.ticket, BASE_TIME + H, "by the cursor"))], [None]
        )
    assert counted == [0]
    assert opened.ticket.number == 1
    assert store.get_ticket("g1") == noted.ticket
