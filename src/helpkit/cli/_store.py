"""What the command line checks about ``--store`` before opening it.

Only ``init`` and ``demo`` create a store: every other command on an SQLite file that does not
exist, or on a PostgreSQL schema that does not exist (or holds no helpkit tables), is a usage
error, and creates nothing. A path the system cannot take (a NUL character)
and a ``timeout`` that is not a finite number are refused here too, before the store sees them.
"""

from __future__ import annotations

import math
import os
from urllib.parse import parse_qsl, unquote

from helpkit.cli._errors import UsageError

CREATING_COMMANDS = frozenset({"init", "demo"})


def sqlite_path(url: str) -> str | None:
    """The file an ``sqlite:///path`` URL names (percent-decoded), else ``None``."""
    if url[:9].lower() != "sqlite://":
        return None
    rest = url[9:].partition("?")[0]
    if not rest.startswith("/"):
        return None  # the store explains what an SQLite URL looks like
    return unquote(rest[1:]) or None


def shown(url: str) -> str:
    """``url`` as the command line prints it: a password in it is masked."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.partition("@")
    if not sep or not at or ":" not in userinfo or "/" in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}"


def _is_postgres(url: str) -> bool:
    return url.partition(":")[0].lower() in ("postgresql", "postgres")


def check_store(url: str, command: str) -> None:
    """Refuse a store URL the command cannot use (see the module's docstring)."""
    if _is_postgres(url):
        if command not in CREATING_COMMANDS:
            # Imports no driver until it reads the schema (StoreError without psycopg).
            from helpkit.stores.postgres import parse_url, schema_exists

            if not schema_exists(url):
                raise UsageError(
                    f"no helpkit store in schema {parse_url(url).schema!r} of the database "
                    "--store names: run "
                    "'helpkit init' to create one (or 'helpkit demo' for a sample helpdesk), "
                    "or name another with --store"
                )
        return
    path = sqlite_path(url)
    if path is None:
        return
    if "\x00" in path:
        raise UsageError(f"the store path in {url!r} contains a NUL character")
    for name, value in parse_qsl(url.partition("?")[2], keep_blank_values=True):
        if name == "timeout":
            try:
                seconds = float(value)
            except ValueError:
                continue  # the store names the mistake
            if not math.isfinite(seconds):
                raise UsageError(f"timeout must be a finite number of seconds; got {value!r}")
    if os.path.isdir(path):
        raise UsageError(f"the store {path} is a directory; name an SQLite file")
    if command not in CREATING_COMMANDS and not os.path.exists(path):
        raise UsageError(
            f"no store at {path}: run 'helpkit init' to create one "
            "(or 'helpkit demo' for a sample helpdesk), or name another with --store"
        )
