"""The ``postgresql:`` URL: :func:`postgres_store_factory` opens a store from one.

This is what the built-in plugin registers for the ``postgresql`` and ``postgres`` schemes.
This module does not import psycopg: parsing a URL needs no driver, and opening a store
without one raises :class:`~helpkit.errors.StoreError` saying how to install it.
"""

from __future__ import annotations

import importlib
import math
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from helpkit.errors import StoreError, UnknownBackendError, ValidationError
from helpkit.ports import Store

__all__ = [
    "PostgresUrl",
    "check_schema_name",
    "parse_url",
    "postgres_store_factory",
    "schema_exists",
]

SCHEMES: Final = ("postgresql", "postgres")
"""The URL schemes of the PostgreSQL store."""

DEFAULT_SCHEMA: Final = "helpkit"

_INSTALL: Final = (
    "the PostgreSQL store needs psycopg 3 and psycopg-pool, which are not installed: "
    "pip install 'helpkit[postgres]'"
)


@attrs.frozen
class PostgresUrl:
    """What a ``postgresql://`` URL says: where to connect (the URL without helpkit's
    options, handed to libpq as is) and the store's options."""

    conninfo: str
    schema: str = DEFAULT_SCHEMA
    pool_min: int = 1
    pool_max: int = 10
    timeout: float = 10.0
    connect_timeout: int = 10
    synchronous_commit: bool = True
    cache: int = 8192

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~helpkit.stores.postgres.store.PostgresStore`."""
        return {
            "schema": self.schema,
            "pool_min": self.pool_min,
            "pool_max": self.pool_max,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "synchronous_commit": self.synchronous_commit,
            "cache": self.cache,
        }


def check_schema_name(name: object) -> str:
    """A schema name helpkit accepts: lower-case letters, digits and ``_``, starting with a
    letter or ``_``, at most 63 characters, and not ``pg_*`` (PostgreSQL's own); else
    ValidationError."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= 63
        or not (name[0].isascii() and (name[0].islower() or name[0] == "_"))
        or not all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in name)
        or name.startswith("pg_")
    ):
        raise ValidationError(
            f"a schema name is lower-case letters, digits and '_' (at most 63, not starting "
            f"with a digit or 'pg_'); got {name!r:.80}"
        )
    return name


def _integer(name: str, value: str, low: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(f"{name} must be an integer; got {value!r}") from None
    if number < low:
        raise ValidationError(f"{name} must be at least {low}; got {number}")
    return number


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValidationError(f"{name} must be a number of seconds; got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValidationError(f"{name} must be a number of seconds > 0; got {value!r}")
    return seconds


def _on_off(name: str, value: str) -> bool:
    word = value.lower()
    if word in ("on", "true", "1"):
        return True
    if word in ("off", "false", "0"):
        return False
    raise ValidationError(f"{name} must be 'on' or 'off'; got {value!r}")


def parse_url(url: str) -> PostgresUrl:
    """Read ``postgresql://[user[:password]@][host][:port]/[dbname][?options]``.

    helpkit's options (taken out of the URL before it goes to libpq): ``schema`` (the tenant's
    schema, default ``helpkit``), ``pool_min`` and ``pool_max`` (connections, default 1 and
    10), ``timeout`` (seconds a call waits for a free connection, default 10),
    ``synchronous_commit`` (``on``, the default, or ``off``: faster, but a server crash may
    lose the last acknowledged commits) and ``cache`` (decoded ticket states kept, default
    8192). ``connect_timeout`` (seconds, default 10) goes to libpq too. Every other option is
    libpq's (``sslmode``, ``application_name``...) and is passed on as given.
    """
    if not isinstance(url, str):
        raise UnknownBackendError(f"a PostgreSQL URL is a string, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValidationError(f"bad PostgreSQL URL {url!r}: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise UnknownBackendError(
            f"the PostgreSQL store serves 'postgresql://' URLs, not {url!r:.80}"
        )
    if "\x00" in url:
        raise ValidationError("a PostgreSQL URL cannot hold a NUL character")
    found: dict[str, Any] = {}
    passed: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "schema":
            found["schema"] = check_schema_name(value)
        elif name in ("pool_min", "pool_max"):
            found[name] = _integer(name, value, 0 if name == "pool_min" else 1)
        elif name == "cache":
            found[name] = _integer(name, value, 0)
        elif name == "timeout":
            found[name] = _seconds(name, value)
        elif name == "connect_timeout":
            found[name] = _integer(name, value, 1)
        elif name == "synchronous_commit":
            found[name] = _on_off(name, value)
        else:
            passed.append((name, value))
    conninfo = urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(passed), parts.fragment)
    )
    if found.get("pool_max", 10) < found.get("pool_min", 1):
        raise ValidationError(
            f"pool_max ({found.get('pool_max', 10)}) is below pool_min ({found.get('pool_min', 1)})"
        )
    return PostgresUrl(conninfo, **found)


def _store_module() -> Any:
    """``helpkit.stores.postgres.store``, or StoreError saying how to install its driver."""
    try:
        return importlib.import_module("helpkit.stores.postgres.store")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.partition(".")[0] in ("psycopg", "psycopg_pool"):
            raise StoreError(_INSTALL) from exc
        raise


def postgres_store_factory(url: str, *, create: bool = True) -> Store:
    """A :class:`~helpkit.stores.postgres.store.PostgresStore` for a ``postgresql://`` URL
    (see :func:`parse_url`); ``create=False`` refuses a missing schema instead of creating
    it. StoreError when psycopg is not installed."""
    parsed = parse_url(url)
    store: Store = _store_module().PostgresStore(parsed.conninfo, **parsed.options(), create=create)
    return store


def schema_exists(url: str) -> bool:
    """Whether the URL's schema holds helpkit's tables (of any version this helpkit reads);
    reads only. SchemaError for a schema helpkit refuses; StoreError when the server cannot
    be reached or psycopg is not installed."""
    parsed = parse_url(url)
    exists: bool = _store_module().schema_exists(parsed.conninfo, parsed.schema)
    return exists
