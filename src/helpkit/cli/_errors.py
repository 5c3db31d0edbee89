"""The command line's exit statuses, and which errors are the user's and which the system's.

| status | meaning |
|---|---|
| 0 | done |
| 1 | a runtime failure: the store failed (locked, damaged, unreadable), a concurrent change
  won, a plugin failed, the sweep could not process some ticket, anything unexpected |
| 2 | a usage error: bad arguments, an unknown ticket or person, a refused command, a
  missing store for a command that does not create one, a bad configuration file |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

from typing import Final

from helpkit.errors import (
    AccessDeniedError,
    HelpkitError,
    InvalidTransitionError,
    NotFoundError,
    UnknownBackendError,
    ValidationError,
)

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class UsageError(HelpkitError):
    """A command-line mistake (reported on one line, exit status 2)."""


def exit_status(exc: HelpkitError) -> int:
    """2 for what the user typed wrong (or asked for and was refused), else 1."""
    usage = (
        UsageError,
        ValidationError,
        NotFoundError,
        UnknownBackendError,
        InvalidTransitionError,
        AccessDeniedError,
    )
    return EXIT_USAGE if isinstance(exc, usage) else EXIT_FAILURE


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its class name when it has none)."""
    text = str(exc).strip()
    if not text:
        return "not found" if isinstance(exc, NotFoundError) else type(exc).__name__
    return text.splitlines()[0]
