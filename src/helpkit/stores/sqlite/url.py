"""The ``sqlite:`` URL: :func:`sqlite_store_factory` opens a :class:`SqliteStore` from one.

This is what the built-in plugin registers for the ``sqlite`` scheme.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from helpkit.errors import UnknownBackendError, ValidationError
from helpkit.stores.sqlite.store import SqliteStore


def sqlite_store_factory(url: str) -> SqliteStore:
    """A :class:`SqliteStore` for ``sqlite:///relative/path.db`` or ``sqlite:////abs/path.db``.

    The path is percent-decoded. Options go in the query string:
    ``?synchronous=NORMAL`` (default ``FULL``), ``?timeout=10`` (seconds, default 5),
    ``?cache=20000`` (decoded ticket states kept, default 8192) and
    ``?checkpoints=inline`` (default ``background``: WAL checkpoints on a thread of the store).
    """
    if not isinstance(url, str) or not url[:9].lower() == "sqlite://":
        raise UnknownBackendError(f"the SQLite store serves 'sqlite:///path' URLs, not {url!r}")
    rest, _, options = url[9:].partition("?")
    if not rest.startswith("/"):
        hint = " (for a store in memory use memory://)" if ":memory:" in rest else ""
        raise ValidationError(
            f"an SQLite URL has no host: use sqlite:///relative/path.db or "
            f"sqlite:////absolute/path.db, not {url!r}{hint}"
        )
    path = unquote(rest[1:])
    if not path:
        raise ValidationError(f"the SQLite URL {url!r} names no file; use sqlite:///desk.db")
    kwargs: dict[str, Any] = {}
    for name, value in parse_qsl(options, keep_blank_values=True, strict_parsing=False):
        if name in ("synchronous", "checkpoints"):
            kwargs[name] = value
        elif name == "cache":
            try:
                kwargs["cache"] = int(value)
            except ValueError:
                raise ValidationError(f"cache must be a number of tickets; got {value!r}") from None
        elif name == "timeout":
            try:
                kwargs["timeout"] = float(value)
            except ValueError:
                raise ValidationError(
                    f"timeout must be a number of seconds; got {value!r}"
                ) from None
        else:
            raise ValidationError(
                f"unknown SQLite store option {name!r} in {url!r} (known: synchronous, timeout, "
                "cache, checkpoints)"
            )
    return SqliteStore(path, **kwargs)
