"""``helpkit publish``: the store's change feed into a NATS JetStream stream.

Once (the default) it publishes everything committed after its cursor and stops; with
``--follow`` it keeps publishing what gets committed until SIGTERM (exit status 0) or SIGINT
(Ctrl-C, exit status 130), finishing the batch under way and saving its cursor first. A server
that cannot be reached is one line on stderr and exit status 1 (see :mod:`helpkit.sinks.nats`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta

from helpkit.cli._errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from helpkit.cli._stopping import run_until_signalled
from helpkit.desk import Helpdesk
from helpkit.errors import ConfigError
from helpkit.sinks.nats import (
    DEFAULT_CURSOR,
    DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_PREFIX,
    DEFAULT_STREAM,
    DEFAULT_URL,
    NatsSink,
    SinkReport,
)
from helpkit.sla import parse_duration

log = logging.getLogger("helpkit.cli")

URL_VARIABLE = "HELPKIT_NATS_URL"


def add_publish_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``publish`` to the parser (``command`` is the parser's command factory)."""
    p = command(
        "publish",
        cmd_publish,
        "publish the change feed to NATS JetStream (once, or --follow)",
        json_flag=True,
    )
    p.add_argument(
        "--to",
        metavar="URL",
        default=os.environ.get(URL_VARIABLE, DEFAULT_URL),
        help=f"the NATS server (default: ${URL_VARIABLE} or {DEFAULT_URL})",
    )
    p.add_argument(
        "--stream",
        default=DEFAULT_STREAM,
        help="the JetStream stream, created if missing (default %(default)s)",
    )
    p.add_argument(
        "--subject-prefix",
        default=DEFAULT_PREFIX,
        help="subjects are PREFIX.<event type>.<ticket id> (default %(default)s)",
    )
    p.add_argument(
        "--cursor",
        default=DEFAULT_CURSOR,
        help="the name of the sink's cursor on the change feed (default %(default)s)",
    )
    p.add_argument(
        "--duplicate-window",
        metavar="DURATION",
        help="how long a stream this command creates remembers message ids (default 1h)",
    )
    p.add_argument(
        "--batch", type=int, default=500, help="events per acknowledged batch (default 500)"
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep publishing what gets committed, until SIGTERM or Ctrl-C",
    )


def cmd_publish(desk: Helpdesk, args: argparse.Namespace) -> int:
    window = DEFAULT_DUPLICATE_WINDOW
    if args.duplicate_window is not None:
        window = _duration(args.duplicate_window)
    sink = NatsSink(
        desk.store,
        args.to,
        stream=args.stream,
        prefix=args.subject_prefix,
        cursor=args.cursor,
        duplicate_window=window,
        batch=args.batch,
    )
    status = EXIT_OK
    with sink:
        sink.start()  # an unreachable server stops the command here, before it follows
        if args.follow:
            log.info("publishing to NATS %s until SIGTERM or Ctrl-C", sink.where)
            report, received = run_until_signalled(
                lambda stop: sink.follow(stop, on_report=_log_batch), name="helpkit-publish"
            )
            if signal.SIGINT in received:
                status = EXIT_INTERRUPTED
        else:
            report = sink.run_once()
    _print(report, sink, args)
    if status == EXIT_INTERRUPTED:
        print("helpkit: interrupted", file=sys.stderr)
    return status


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise UsageError(f"--duplicate-window: {exc}") from None


def _log_batch(report: SinkReport) -> None:
    log.info(
        "published %s (%d already there); cursor at %d",
        _events(report.published),
        report.duplicates,
        report.position,
    )


def _events(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


def _print(report: SinkReport, sink: NatsSink, args: argparse.Namespace) -> None:
    if args.json:
        data = {
            "published": report.published,
            "duplicates": report.duplicates,
            "races": report.races,
            "position": report.position,
            "cursor": sink.cursor,
            "stream": sink.stream,
        }
        print(json.dumps(data, indent=2))
        return
    already = f" ({report.duplicates} already there)" if report.duplicates else ""
    print(
        f"published {_events(report.published)} to NATS {sink.where}{already}; "
        f"cursor {sink.cursor!r} at position {report.position}"
    )
