"""``helpkit redact``, ``helpkit erase`` and ``helpkit purge``: the privacy commands.

Each runs :mod:`helpkit.privacy` through the facade, then the store's cleanup step
(:meth:`helpkit.desk.Helpdesk.compact`) unless ``--no-compact`` is given, so that on SQLite
the old bytes are gone from the file when the command returns.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import timedelta

from helpkit import serialize
from helpkit.cli._commands import _ticket_ref
from helpkit.cli._output import _emit_json
from helpkit.desk import Helpdesk

__all__ = ["add_privacy_commands", "parse_age"]

_AGE = re.compile(r"\s*([0-9]{1,6})\s*([dhwm])\s*")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_UNITS["w"] = timedelta(weeks=1)


def parse_age(text: str) -> timedelta:
    """``365d``, ``12w``, ``48h``, ``90m``: a positive duration."""
    match = _AGE.fullmatch(text)
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive age such as 365d, 12w, 48h or 90m; got {text!r}"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


parse_age.__name__ = "age"  # argparse names the type in its messages


def add_privacy_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``redact``, ``erase`` and ``purge`` (``command`` is the parser's command factory)."""
    p = command(
        "redact",
        cmd_redact,
        "redact a comment's text (and files): gone from every read, the event kept",
        json_flag=True,
    )
    p.add_argument("ticket", help="number (42 or #42) or id")
    p.add_argument("comment", help="comment id (helpkit show --json lists them)")
    p.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    p.add_argument("--keep-attachments", action="store_true", help="keep the comment's files")
    _compact_flag(p)
    p = command(
        "erase",
        cmd_erase,
        "erase a contact: its comments redacted everywhere, the contact a tombstone",
        json_flag=True,
    )
    p.add_argument("contact", help="contact id or email")
    p.add_argument("--reason", required=True, help="why (recorded on each of its tickets)")
    _compact_flag(p)
    p = command(
        "purge",
        cmd_purge,
        "delete the tickets closed more than --older-than ago, with everything they hold",
        json_flag=True,
    )
    p.add_argument(
        "--older-than", required=True, type=parse_age, help="age since closed: 365d, 12w, 48h"
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    _compact_flag(p)


def _compact_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-compact",
        action="store_true",
        help="skip the store's cleanup step (run it later: the old bytes stay until then)",
    )


def _compact(desk: Helpdesk, args: argparse.Namespace) -> None:
    if not args.no_compact:
        desk.compact()


def cmd_redact(desk: Helpdesk, args: argparse.Namespace) -> int:
    done = desk.redact(
        _ticket_ref(args.ticket),
        args.comment,
        args.actor,
        reason=args.reason,
        attachments=not args.keep_attachments,
    )
    _compact(desk, args)
    if args.json:
        _emit_json(serialize.to_data(done))
    else:
        print(
            f"comment {done.comment_id} redacted"
            + ("" if done.recorded else " (already recorded; rewrite repeated)")
            + f": {done.events} events, {done.deliveries} deliveries, {done.receipts} "
            f"receipts rewritten, {done.blobs} files deleted"
        )
    return 0


def cmd_erase(desk: Helpdesk, args: argparse.Namespace) -> int:
    text = args.contact.strip()
    contact = desk.contact_by_email(text) if "@" in text else desk.contact(text)
    done = desk.erase_contact(contact, args.actor, reason=args.reason)
    _compact(desk, args)
    if args.json:
        _emit_json(serialize.to_data(done))
    else:
        print(
            f"contact {done.contact_id} erased: {len(done.comments)} comments redacted on "
            f"{len(done.tickets)} tickets, {done.deliveries} deliveries rewritten, "
            f"{done.suspended} suspended messages discarded"
        )
    return 0


def cmd_purge(desk: Helpdesk, args: argparse.Namespace) -> int:
    report = desk.purge_closed(args.older_than, dry_run=args.dry_run)
    if not args.dry_run:
        _compact(desk, args)
    if args.json:
        _emit_json(serialize.to_data(report))
    elif args.dry_run:
        print(
            f"{len(report.tickets)} tickets closed before {report.cutoff:%Y-%m-%d %H:%M:%S} "
            "UTC would be purged (dry run)"
        )
        for ticket_id in report.tickets:
            print(f"  {ticket_id}")
    else:
        print(
            f"purged {len(report.tickets)} tickets closed before "
            f"{report.cutoff:%Y-%m-%d %H:%M:%S} UTC, {report.blobs} files deleted"
            + (
                f"; kept {len(report.kept)} for now (the newest feed position or number)"
                if report.kept
                else ""
            )
        )
    return 0
