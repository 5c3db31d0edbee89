"""The ``helpkit`` command line (console script and ``python -m helpkit``).

The store comes from ``--store`` or ``HELPKIT_STORE`` (default: an SQLite file ``helpkit.db``
in the current directory); the configuration from ``--config`` or ``helpkit.toml`` in the
current directory when it exists. Commands act as ``--as`` / ``HELPKIT_ACTOR`` (default
``system:cli``). Mistakes print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from helpkit.cli._commands import cmd_plugins
from helpkit.cli._config import _CONFIG_TEMPLATE as _CONFIG_TEMPLATE
from helpkit.cli._config import _load_config
from helpkit.cli._demo import _SimClock
from helpkit.cli._parser import _build_parser
from helpkit.desk import Helpdesk
from helpkit.errors import HelpkitError, NotFoundError, ValidationError
from helpkit.tickets import Actor

__all__ = ["main"]


@contextmanager
def _desk(args: argparse.Namespace) -> Iterator[Helpdesk]:
    clock = None
    if args.command == "demo":
        # Last week's Monday 08:00 UTC: the simulated week is over before today, and runs in
        # the same week with the same seed give the same helpdesk.
        today = datetime.now(UTC).date()
        monday = today - timedelta(days=today.weekday() + 7)
        clock = _SimClock(datetime(monday.year, monday.month, monday.day, 8, tzinfo=UTC))
    config, args.wrote_config = _load_config(args.config, write_default=args.command == "demo")
    desk = Helpdesk(args.store, config=config, clock=clock)
    try:
        yield desk
    finally:
        desk.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 user mistake)."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "plugins":
            return cmd_plugins(args)
        args.actor = Actor.parse(args.actor_text)
        with _desk(args) as desk:
            result: int = args.handler(desk, args)
            return result
    except (HelpkitError, ValidationError, NotFoundError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, NotFoundError) and not str(exc):
            message = "not found"
        print(f"helpkit: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("helpkit: interrupted", file=sys.stderr)
        return 130
