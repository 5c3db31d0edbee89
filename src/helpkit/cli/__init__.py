"""The ``helpkit`` command line (console script and ``python -m helpkit``).

The store comes from ``--store`` or ``HELPKIT_STORE`` (default: an SQLite file ``helpkit.db``
in the current directory); the configuration from ``--config``, ``HELPKIT_CONFIG``,
``./helpkit.toml`` or the per-user file (see :func:`config_template` for the shipped one).
Commands act as ``--as`` / ``HELPKIT_ACTOR`` (default ``system:cli``; ``open`` without either:
the requester). A mistake prints one line on stderr and exits with status 2, a runtime failure
with 1; no traceback reaches the user (``-v`` or ``HELPKIT_DEBUG=1`` shows an unexpected
error's).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import secrets
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TextIO

from helpkit.cli._commands import check_init, cmd_plugins
from helpkit.cli._config import (
    DEMO_SECRET_FILE,
    SECRET_ENV,
    config_template,
    desk_secret,
    load_config,
)
from helpkit.cli._demo import _SimClock
from helpkit.cli._errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    exit_status,
    one_line,
)
from helpkit.cli._parser import parse_args
from helpkit.cli._store import check_store
from helpkit.desk import Helpdesk
from helpkit.errors import HelpkitError
from helpkit.ids import new_id
from helpkit.tickets import Actor

__all__ = ["config_template", "main"]

_DEFAULT_ACTOR = "system:cli"


@contextmanager
def _desk(args: argparse.Namespace) -> Iterator[Helpdesk]:
    clock = None
    if args.command == "demo":
        # The Monday 08:00 UTC two weeks before this week's: the simulated week (its random
        # gaps may stretch it to 12.6 days) is over before this week starts, whatever the day
        # and hour (from last week's Monday, a run early on a Monday simulated past now), and
        # runs in the same week with the same seed give the same helpdesk.
        today = datetime.now(UTC).date()
        monday = today - timedelta(days=today.weekday() + 14)
        clock = _SimClock(datetime(monday.year, monday.month, monday.day, 8, tzinfo=UTC))
    config, write_template = load_config(args.config, demo=args.command == "demo")
    if args.command == "demo":
        args.write_config = write_template  # the demo writes it once its checks passed
    check_store(args.store, args.command)
    reserved: list[str] = args.reserved_ids

    def ids() -> str:
        return reserved.pop(0) if reserved else new_id()

    args.demo_secret = None
    env_secret = os.environ.get(SECRET_ENV, "").strip()
    if write_template and not env_secret and not os.path.exists(DEMO_SECRET_FILE):
        # The demo's own setup: its secret file is written with its configuration.
        args.demo_secret = secrets.token_urlsafe(32)
    secret = args.demo_secret or desk_secret(config)
    desk = Helpdesk(args.store, config=config, clock=clock, id_factory=ids, secret=secret)
    try:
        yield desk
    finally:
        desk.shutdown()


def _actor(args: argparse.Namespace) -> None:
    """``args.actor`` (who acts) and ``args.explicit_actor`` (``None`` unless named)."""
    text = args.actor_text or os.environ.get("HELPKIT_ACTOR") or None
    args.explicit_actor = None if text is None else Actor.parse(text)
    args.actor = args.explicit_actor or Actor.parse(_DEFAULT_ACTOR)
    args.reserved_ids = []


def _run(args: argparse.Namespace) -> int:
    _actor(args)
    if args.command == "plugins":
        return cmd_plugins(args)
    if args.command == "init":
        check_init(args)
    with _desk(args) as desk:
        result: int = args.handler(desk, args)
    return result


@contextmanager
def _forgiving_streams() -> Iterator[None]:
    """Text a stream cannot encode (``PYTHONIOENCODING=ascii``) is escaped, not fatal."""
    changed: list[tuple[io.TextIOWrapper, str]] = []
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            try:
                stream.reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                continue
            changed.append((stream, "strict"))
    try:
        yield
    finally:
        for stream, errors in changed:
            with suppress(OSError, ValueError):
                stream.reconfigure(errors=errors)


class _LogFormat(logging.Formatter):
    """``helpkit: warning: message`` (the level in lower case, like ``helpkit: error:``); a
    logged exception adds its first line, or its traceback when ``tracebacks``."""

    def __init__(self, tracebacks: bool) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        text = f"helpkit: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            if self.tracebacks:
                text += "\n" + self.formatException(record.exc_info)
            else:
                exc = record.exc_info[1]
                text += f" ({type(exc).__name__}: {one_line(exc)})"
        return text


@contextmanager
def _logging(verbose: int, quiet: bool, debug: bool, stream: TextIO) -> Iterator[None]:
    """The ``helpkit`` logger's records on stderr: warnings (``-q`` errors, ``-v`` info,
    ``-vv`` debug), as ``helpkit: warning: ...``."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbose, 1)]
    if verbose >= 2:
        level = logging.DEBUG
    logger = logging.getLogger("helpkit")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_LogFormat(tracebacks=debug))
    handler.setLevel(level)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _quiet_stdout() -> None:
    """After a broken pipe (``helpkit list | head -1``): what is left goes nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _say(line: str) -> None:
    with suppress(OSError, ValueError):
        print(line, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    0 done; 1 a runtime failure (the store, a conflict, a plugin, a sweep that could not
    process some ticket, anything unexpected); 2 a usage error (bad arguments, an unknown
    ticket or person, a refused command, a missing store, a bad configuration file); 130
    interrupted. A broken pipe on stdout (the reader stopped reading) ends quietly with 0.
    """
    with _forgiving_streams():
        try:
            args = parse_args(argv)
        except SystemExit as done:  # --help, --version, or argparse's usage error
            code = done.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_FAILURE)
        except BrokenPipeError:  # helpkit --help | head -1
            _quiet_stdout()
            return EXIT_OK
        debug = args.verbose > 0 or os.environ.get("HELPKIT_DEBUG", "") not in ("", "0")
        with _logging(args.verbose, args.quiet, debug, sys.stderr):
            status = _guarded(args, debug)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
            return EXIT_OK
        except (OSError, ValueError):
            pass
        return status


def _guarded(args: argparse.Namespace, debug: bool) -> int:
    """Run the command: every error becomes one line on stderr and an exit status (the
    command's own ``failure_status(error)`` when it has one: ``mail ingest`` speaks the mail
    server's exit statuses)."""
    failure_status = getattr(args, "failure_status", None)

    def status_of(exc: BaseException, default: int) -> int:
        return int(failure_status(exc)) if failure_status is not None else default

    try:
        status = _run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        _say("helpkit: interrupted")
        return EXIT_INTERRUPTED
    except HelpkitError as exc:
        _say(f"helpkit: error: {one_line(exc)}")
        return status_of(exc, exit_status(exc))
    except OSError as exc:
        _say(f"helpkit: error: {one_line(exc)}")
        return status_of(exc, EXIT_FAILURE)
    except Exception as exc:  # the last resort: never a traceback, unless asked for
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (-v or HELPKIT_DEBUG=1 shows the traceback)"
        _say(f"helpkit: error: unexpected {type(exc).__name__}: {one_line(exc)}{hint}")
        return status_of(exc, EXIT_FAILURE)
    return status
