"""One prepared statement sent through libpq with its parameters as text: the one-statement
commit's round trip, without psycopg's cursor.

``Cursor.execute(query, params, prepare=True)`` converts the query and adapts every parameter
on each call, looks the statement up in the connection's cache of prepared statements, and
checks and keeps the results in the cursor: about a quarter of the client's CPU of a round
trip that does little else (22 µs of 83 for the commit's 23 parameters, measured on the
project's bench machine). :func:`call` sends the statement, prepared once per connection
under a name of its own, with the parameters already text (:func:`text_values`), and reads
the first value of its one result, through the same libpq calls and the same wait of
psycopg's connection (its lock held), so a lost connection, an interruption and a server's
error raise what ``execute`` raises (an error the server raised: the same
``psycopg.errors`` class, built by the same function from the result).

It takes only parameters whose text form is certain (:func:`text_values`: ASCII text without
NUL, integers, None): any other value, which psycopg adapts by the connection's encoding and
checks (NUL refused), makes the caller use ``execute`` instead.

psycopg deallocates every prepared statement of a connection after a ``ROLLBACK`` (or a
``DROP``, ``DISCARD ALL``...) run while its own cache holds one: a statement prepared here
then no longer exists on the server (SQLSTATE 26000, raised before anything runs), and
:func:`call` prepares it again and sends it once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import ExecStatus

try:  # not a public API of psycopg: see usable()
    from psycopg.generators import execute
except ImportError:  # pragma: no cover - psycopg releases without it take the cursor
    execute = None

__all__ = ["USABLE", "call", "numbered", "text_values", "usable"]

_TESTED: Final = frozenset({(3, 2), (3, 3)})
"""The psycopg releases (major, minor) this module was written and tested against."""


def usable(version: str) -> bool:
    """Whether :func:`call` may be used with psycopg ``version``: one of the releases it was
    tested against (it relies on ``psycopg.generators.execute``, ``errors.error_from_result``,
    ``Connection.wait`` and ``Connection.lock``, not all of them public), whose internals are
    all there. Another release sends every statement through psycopg's cursor (slower, the
    same results), so a psycopg upgrade never breaks the store."""
    try:
        release = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (
        release in _TESTED
        and execute is not None
        and callable(getattr(pg_errors, "error_from_result", None))
        and callable(getattr(psycopg.Connection, "wait", None))
    )


USABLE: Final = usable(psycopg.__version__)
"""Whether this process's psycopg takes :func:`call` (see :func:`usable`)."""


def numbered(query: str, count: int) -> bytes:
    """``query`` written with psycopg's placeholders (``%s``, ``count`` of them, no other
    ``%``) in PostgreSQL's own (``$1``, ``$2``...), as the server takes it."""
    parts = query.split("%s")
    if len(parts) != count + 1 or any("%" in part for part in parts):
        raise ValueError(f"a query of {count} placeholders %s and no other %: {query[:60]!r}")
    text = parts[0]
    for index, part in enumerate(parts[1:], 1):
        text += f"${index}{part}"
    return text.encode("utf-8")


def text_values(params: Sequence[Any]) -> list[bytes | None] | None:
    """``params`` as libpq's text parameters: ASCII text without NUL as it is, integers
    (``int`` itself, not ``bool``) in decimal, None as NULL; None if any other value is
    among them (psycopg's adaptation then sends them). ASCII is the same bytes in every
    encoding a PostgreSQL client may use."""
    values: list[bytes | None] = []
    append = values.append
    for value in params:
        if value is None:
            append(None)
        elif value.__class__ is str:
            if not value.isascii() or "\x00" in value:
                return None
            append(value.encode("ascii"))
        elif value.__class__ is int:
            append(b"%d" % value)
        else:
            return None
    return values


def call(
    conn: psycopg.Connection[Any],
    prepared: set[bytes],
    name: bytes,
    query: bytes,
    values: list[bytes | None],
) -> bytes | None:
    """Run the statement ``query`` (in PostgreSQL's placeholders, see :func:`numbered`) as
    the prepared statement ``name`` of ``conn`` (autocommit, outside any pipeline), with
    ``values`` (:func:`text_values`); the first column of its first row as text (None: no
    row, or NULL). ``prepared`` holds the names prepared on ``conn`` (kept by the caller, one
    set per connection). A server's error raises as ``Cursor.execute`` raises it."""
    pgconn = conn.pgconn
    with conn.lock:
        if conn.closed:
            raise psycopg.OperationalError("the connection is closed")
        for attempt in (1, 2):
            if name not in prepared:
                pgconn.send_prepare(name, query)
                _result(conn, conn.wait(execute(pgconn)), ExecStatus.COMMAND_OK)
                prepared.add(name)
            pgconn.send_query_prepared(name, values)
            try:
                result = _result(conn, conn.wait(execute(pgconn)), ExecStatus.TUPLES_OK)
            except pg_errors.InvalidSqlStatementName:
                # Deallocated since (see the module's docs): prepared again, sent again.
                prepared.discard(name)
                if attempt == 2:
                    raise
                continue
            if result.ntuples == 0:
                return None
            value: bytes | None = result.get_value(0, 0)
            return value
    raise AssertionError("unreachable")  # pragma: no cover


def _result(conn: psycopg.Connection[Any], results: list[Any], expected: ExecStatus) -> Any:
    """The one result of a statement, checked as psycopg's cursor checks it."""
    for result in results:
        if result.status == ExecStatus.FATAL_ERROR:
            raise pg_errors.error_from_result(result, encoding=conn.info.encoding)
    if len(results) != 1 or results[0].status != expected:
        statuses = ", ".join(ExecStatus(r.status).name for r in results)
        raise psycopg.InternalError(f"unexpected result of a prepared statement: {statuses}")
    return results[0]
